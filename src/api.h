/*
 * api: the record methods (put, get, delete, put_many, posting.close,
 * scan) and `stats`, as rpc method handlers over the store, record
 * validation and completeness.
 *
 * Reads are answered on the calling network thread from its own store
 * reader.  Writes are validated on the calling thread, queued to the
 * store's writer as one store_op, and answered from a task posted back to
 * the calling thread once the group commit holding them is durable.
 */
#ifndef MATCHD_API_H
#define MATCHD_API_H

#include "rpc.h"

struct store;
struct ref;
struct completeness;
struct push;
struct index;
struct match;

struct api {
	struct store *store;
	const struct ref *ref;
	const struct completeness *completeness;
	struct push *push;
	struct index *index;          /* postings for search */
	struct match *match;          /* per-student lists */
	unsigned completeness_threshold; /* percent, for `eligible` */
	struct proto_limits limits;
	unsigned threads;
};

/* The method table; rpc_server.app must point to a struct api. */
extern const struct rpc_method api_methods[];
extern const unsigned api_methods_len;

#endif
