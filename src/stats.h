/*
 * stats: counters kept per network thread and summed by the `stats`
 * method.  Each counter has one writer (its thread) and is read by any
 * thread with relaxed atomic loads, so counting costs a plain add and
 * needs no lock; a sum read while requests run is approximate.
 */
#ifndef MATCHD_STATS_H
#define MATCHD_STATS_H

#include <stdint.h>

#include "proto.h"

/* Room for every method of the table (rpc checks it at start-up). */
#define STATS_METHODS_MAX 64
#define STATS_CODES (PROTO_INTERNAL + 1)

/* Latency buckets: bucket i counts requests that took < 2^i microseconds
 * (the last one everything slower), enough for percentiles to a factor of
 * two in `stats`; bench/ measures precisely from the client side. */
#define STATS_LATENCY_BUCKETS 32

struct stats_worker {
	uint64_t requests[STATS_METHODS_MAX];
	uint64_t latency_us[STATS_LATENCY_BUCKETS];
	uint64_t errors[STATS_CODES];
	uint64_t conns_accepted;
	uint64_t conns_refused;    /* over the connection limit */
	uint64_t conns_closed;
	uint64_t conns_idle;       /* closed by the idle timeout */
	uint64_t conns_slow;       /* dropped for not reading replies */
	uint64_t conns_bad_stream; /* closed on a malformed stream */
	uint64_t conns_open;
	uint64_t bytes_in;
	uint64_t bytes_out;
};

#define STATS_ADD(field, n)                                               \
	__atomic_store_n(&(field), __atomic_load_n(&(field),              \
			 __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
#define STATS_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* Counts one request of method index m that took us microseconds. */
void stats_request(struct stats_worker *w, unsigned m, uint64_t us);

/* Adds every counter of src into dst (dst is a private copy). */
void stats_sum(struct stats_worker *dst, const struct stats_worker *src);

/* The latency below which the fraction q (0..1) of requests finished, in
 * microseconds, from summed buckets; 0 when there were none. */
uint64_t stats_latency_quantile_us(const struct stats_worker *sum,
				   double q);

/* Resident memory of this process in bytes, from /proc/self/statm. */
uint64_t stats_rss_bytes(void);

#endif
