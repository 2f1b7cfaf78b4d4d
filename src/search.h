/*
 * search: the `posting.search` method, an rpc handler over the posting
 * index.
 *
 * It checks and reads the parameters of PROTOCOL.md (q, city, category,
 * education, salary_min, open_only, k, offset), runs the query against
 * the index held in struct api (field `index`) with the server's clock,
 * and answers {total, total_exact, items: [{posting_id, score}]}.  Runs
 * on the network thread that received the call, without touching the
 * store; the index takes its own read lock.  docs/search.md describes
 * the parameters, their limits and the ranking.
 */
#ifndef MATCHD_SEARCH_H
#define MATCHD_SEARCH_H

#include "rpc.h"

/* The method table: posting.search.  rpc_server.app must point to a
 * struct api whose index is set. */
extern const struct rpc_method search_methods[];
extern const unsigned search_methods_len;

#endif
