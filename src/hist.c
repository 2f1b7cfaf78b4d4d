/*
 * hist: log-linear latency buckets.  See hist.h for the layout; the
 * arithmetic is here.  Called from the load generator's threads, one
 * histogram per thread, and from whoever merges them.
 */
#include "hist.h"

#include <string.h>

/*
 * A value v >= 128 with top bit e lands in range shift = e - 6, where the
 * 64 sub-buckets are 2^shift wide; v >> shift is then in [64, 128), which
 * numbers the sub-bucket.  Values below 128 are their own index, and the
 * two formulas meet without a gap at 128.
 */
static uint32_t bucket_index(uint64_t value_ns)
{
	uint32_t top_bit;
	uint32_t shift;

	if (value_ns < HIST_SUB_COUNT)
		return (uint32_t)value_ns;
	top_bit = 63u - (uint32_t)__builtin_clzll(value_ns);
	shift = top_bit - (HIST_SUB_BITS - 1);
	return shift * HIST_HALF_COUNT + (uint32_t)(value_ns >> shift);
}

static uint64_t bucket_low(uint32_t index)
{
	uint32_t shift;

	if (index < HIST_SUB_COUNT)
		return index;
	shift = index / HIST_HALF_COUNT - 1;
	return (uint64_t)(index % HIST_HALF_COUNT + HIST_HALF_COUNT) << shift;
}

static uint64_t bucket_high(uint32_t index)
{
	uint64_t high;

	if (index < HIST_SUB_COUNT)
		return index;
	high = bucket_low(index + 1) - 1;
	return high > HIST_VALUE_MAX_NS ? HIST_VALUE_MAX_NS : high;
}

_Static_assert(HIST_VALUE_MAX_NS >> 35 == 1, "60 s has its top bit at 35");
_Static_assert(HIST_BUCKETS ==
	       29 * HIST_HALF_COUNT + (HIST_VALUE_MAX_NS >> 29) + 1,
	       "the last bucket is the one that holds HIST_VALUE_MAX_NS");

uint32_t hist_bucket_of(uint64_t value_ns, uint64_t *low_ns,
			uint64_t *high_ns)
{
	uint32_t index;

	if (value_ns > HIST_VALUE_MAX_NS) {
		*low_ns = HIST_VALUE_MAX_NS + 1;
		*high_ns = UINT64_MAX;
		return HIST_BUCKETS;
	}
	index = bucket_index(value_ns);
	*low_ns = bucket_low(index);
	*high_ns = bucket_high(index);
	return index;
}

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min_ns = UINT64_MAX;
}

static uint64_t add_saturating(uint64_t a, uint64_t b)
{
	uint64_t sum;

	if (__builtin_add_overflow(a, b, &sum))
		return UINT64_MAX;
	return sum;
}

static uint64_t mul_saturating(uint64_t a, uint64_t b)
{
	uint64_t product;

	if (__builtin_mul_overflow(a, b, &product))
		return UINT64_MAX;
	return product;
}

void hist_record_n(struct hist *h, uint64_t value_ns, uint64_t n)
{
	if (n == 0)
		return;
	if (value_ns > HIST_VALUE_MAX_NS)
		h->overflow += n;
	else
		h->counts[bucket_index(value_ns)] += n;
	h->count += n;
	h->sum_ns = add_saturating(h->sum_ns, mul_saturating(value_ns, n));
	if (value_ns < h->min_ns)
		h->min_ns = value_ns;
	if (value_ns > h->max_ns)
		h->max_ns = value_ns;
}

void hist_record(struct hist *h, uint64_t value_ns)
{
	hist_record_n(h, value_ns, 1);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	for (uint32_t i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->overflow += src->overflow;
	dst->count += src->count;
	dst->sum_ns = add_saturating(dst->sum_ns, src->sum_ns);
	if (src->min_ns < dst->min_ns)
		dst->min_ns = src->min_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

static uint64_t clamp_to_recorded(const struct hist *h, uint64_t value_ns)
{
	if (value_ns < h->min_ns)
		return h->min_ns;
	if (value_ns > h->max_ns)
		return h->max_ns;
	return value_ns;
}

/*
 * The 1-based rank of the value at pct: ceil(pct% of count).  pct is a
 * decimal fraction such as 99.9 that a double holds only approximately, so
 * a product a hair above an integer is taken as that integer; otherwise
 * p99.9 of 1000 values could ask for the 1000th instead of the 999th.
 */
static uint64_t percentile_rank(uint64_t count, double pct)
{
	double exact = (double)count * pct / 100.0;
	double slack = exact * 1e-12;
	uint64_t rank = (uint64_t)exact;

	if ((double)rank < exact - slack)
		rank++;
	return rank ? rank : 1;
}

uint64_t hist_percentile(const struct hist *h, double pct)
{
	uint64_t rank;
	uint64_t seen = 0;

	if (h->count == 0)
		return 0;
	if (!(pct > 0.0))
		return h->min_ns;
	if (pct >= 100.0)
		return h->max_ns;
	rank = percentile_rank(h->count, pct);
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank)
			return clamp_to_recorded(h, bucket_high(i));
	}
	return h->max_ns;
}

double hist_mean_ns(const struct hist *h)
{
	if (h->count == 0)
		return 0.0;
	return (double)h->sum_ns / (double)h->count;
}

uint64_t hist_min_ns(const struct hist *h)
{
	return h->count ? h->min_ns : 0;
}

uint64_t hist_max_ns(const struct hist *h)
{
	return h->max_ns;
}

uint64_t hist_count(const struct hist *h)
{
	return h->count;
}
