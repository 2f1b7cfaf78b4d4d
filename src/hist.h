/*
 * hist: a latency histogram with log-linear buckets, in the manner of
 * HdrHistogram.  Values are nanoseconds.  Below 128 ns every value has its
 * own bucket; above, each power-of-two range is split into 64 equal
 * sub-buckets, so a value is known to within 1/64 (1.6%) of itself.  The
 * tracked range runs to HIST_VALUE_MAX_NS (60 s); larger values are
 * counted in one overflow bucket and still set the exact maximum.
 *
 * A struct hist is a fixed 16 KB with no pointers: never resized, and
 * safe to copy.  It has no lock; the load generator
 * keeps one per thread and merges them once the threads are done, and any
 * other user does the same or brings its own lock.
 */
#ifndef MATCHD_HIST_H
#define MATCHD_HIST_H

#include <stdbool.h>
#include <stdint.h>

/* Values below 2^HIST_SUB_BITS ns are exact; see the comment above. */
#define HIST_SUB_BITS 7
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)
#define HIST_HALF_COUNT (HIST_SUB_COUNT / 2)

/* The top of the tracked range: 60 s. */
#define HIST_VALUE_MAX_NS 60000000000ull

/* Buckets up to and including the one that holds HIST_VALUE_MAX_NS:
 * 2^35 <= 60 s < 2^36, so 60 s sits in range 29 (sub-buckets 2^29 ns
 * wide) at index 29 * 64 + (60 s >> 29) = 1856 + 111. */
#define HIST_BUCKETS 1968u

struct hist {
	uint64_t counts[HIST_BUCKETS];
	uint64_t overflow;      /* values above HIST_VALUE_MAX_NS */
	uint64_t count;         /* every value recorded, overflow included */
	uint64_t sum_ns;        /* saturates instead of wrapping */
	uint64_t min_ns;        /* UINT64_MAX while empty */
	uint64_t max_ns;        /* exact, even past the tracked range */
};

/* Empties h.  Never fails, never allocates. */
void hist_init(struct hist *h);

/* Records one value.  O(1), never allocates. */
void hist_record(struct hist *h, uint64_t value_ns);

/* Records the same value n times (n may be 0). */
void hist_record_n(struct hist *h, uint64_t value_ns, uint64_t n);

/* Adds every value of src to dst.  src is unchanged; dst may not be src. */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The value at percentile pct (0 < pct <= 100): the smallest recorded
 * value v such that at least pct% of the values are <= v, given as the
 * upper end of v's bucket and clamped to the recorded min and max, so it
 * is never below the exact answer and above it by less than 1/64 of it.
 * A percentile that falls among the overflow values answers the maximum.
 * pct <= 0 answers the minimum.  Answers 0 for an empty histogram.
 */
uint64_t hist_percentile(const struct hist *h, double pct);

/* The mean in nanoseconds; 0 for an empty histogram. */
double hist_mean_ns(const struct hist *h);

/* Exact extremes; both 0 for an empty histogram. */
uint64_t hist_min_ns(const struct hist *h);
uint64_t hist_max_ns(const struct hist *h);

/* Values recorded, overflow included. */
uint64_t hist_count(const struct hist *h);

/*
 * The bucket that holds value_ns and the range of values it stands for,
 * [*low_ns, *high_ns].  For the overflow bucket the answer is
 * HIST_BUCKETS, with the range (HIST_VALUE_MAX_NS, UINT64_MAX].  Exposed
 * so that tests and reports can state the precision of a figure.
 */
uint32_t hist_bucket_of(uint64_t value_ns, uint64_t *low_ns,
			uint64_t *high_ns);

#endif
