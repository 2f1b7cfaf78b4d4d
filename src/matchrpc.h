/*
 * matchrpc: the matching methods of the protocol, as rpc handlers:
 * match.get, match.explain, candidates.get and rerank.
 *
 * Handlers run on the network thread that owns the connection.  A
 * match.get for a built list is answered there at once from the lists
 * (match_get); everything that needs the model (an explained match.get, a
 * list not built yet, explanations, candidate lists, re-ranks) becomes a
 * job for the match thread, and the answer is posted back to the
 * connection's thread when the job is done.  The handlers reach the match
 * through struct api (rpc_server.app), whose `match` member the daemon
 * sets.
 */
#ifndef MATCHD_MATCHRPC_H
#define MATCHD_MATCHRPC_H

#include "rpc.h"

/* The method table, for rpc_server_add(). */
extern const struct rpc_method matchrpc_methods[];
extern const unsigned matchrpc_methods_len;

#endif
