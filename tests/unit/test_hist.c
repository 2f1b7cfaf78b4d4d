/*
 * test_hist: the histogram's arithmetic.  Bucket edges tile the range
 * without gaps, percentiles of known distributions come out exact within
 * the stated 1/64 precision, merging equals recording everything in one,
 * and the empty and overflow cases answer what hist.h promises.
 */
#include "check.h"
#include "hist.h"

#include <stdint.h>
#include <stdlib.h>

static struct hist h_a;
static struct hist h_b;
static struct hist h_all;

/* True when got is the exact answer or above it by less than 1/64. */
static int within_precision(uint64_t got, uint64_t exact)
{
	return got >= exact && got - exact <= exact / 64;
}

static void test_empty(void)
{
	hist_init(&h_a);
	CHECK_EQ_INT(hist_count(&h_a), 0);
	CHECK_EQ_INT(hist_percentile(&h_a, 50.0), 0);
	CHECK_EQ_INT(hist_percentile(&h_a, 100.0), 0);
	CHECK_EQ_INT(hist_max_ns(&h_a), 0);
	CHECK_EQ_INT(hist_min_ns(&h_a), 0);
	CHECK(hist_mean_ns(&h_a) == 0.0);
}

/* Walking from 0 by "high + 1" must visit every bucket once, in order. */
static void test_buckets_tile_the_range(void)
{
	uint64_t value_ns = 0;
	uint32_t expected = 0;
	int gaps = 0;
	int too_wide = 0;

	while (value_ns <= HIST_VALUE_MAX_NS && expected <= HIST_BUCKETS) {
		uint64_t low_ns;
		uint64_t high_ns;
		uint32_t index = hist_bucket_of(value_ns, &low_ns, &high_ns);

		if (index != expected || low_ns != value_ns || high_ns < low_ns)
			gaps++;
		if (high_ns - low_ns > low_ns / 64)
			too_wide++;
		expected++;
		value_ns = high_ns + 1;
	}
	CHECK_EQ_INT(gaps, 0);
	CHECK_EQ_INT(too_wide, 0);
	CHECK_EQ_INT(expected, HIST_BUCKETS);
	CHECK_EQ_INT(value_ns, HIST_VALUE_MAX_NS + 1);
}

static void test_bucket_edges(void)
{
	uint64_t low_ns;
	uint64_t high_ns;

	CHECK_EQ_INT(hist_bucket_of(127, &low_ns, &high_ns), 127);
	CHECK_EQ_INT(low_ns, 127);
	CHECK_EQ_INT(high_ns, 127);
	CHECK_EQ_INT(hist_bucket_of(128, &low_ns, &high_ns), 128);
	CHECK_EQ_INT(low_ns, 128);
	CHECK_EQ_INT(high_ns, 129);
	CHECK(hist_bucket_of(HIST_VALUE_MAX_NS, &low_ns, &high_ns) <
	      HIST_BUCKETS);
	CHECK_EQ_INT(high_ns, HIST_VALUE_MAX_NS);
	CHECK_EQ_INT(hist_bucket_of(HIST_VALUE_MAX_NS + 1, &low_ns, &high_ns),
		     HIST_BUCKETS);
	CHECK_EQ_INT(low_ns, HIST_VALUE_MAX_NS + 1);
	CHECK(high_ns == UINT64_MAX);
}

/* 1..100 ns all fall in exact buckets, so every percentile is exact. */
static void test_exact_small_values(void)
{
	hist_init(&h_a);
	for (uint64_t v = 1; v <= 100; v++)
		hist_record(&h_a, v);
	CHECK_EQ_INT(hist_count(&h_a), 100);
	CHECK_EQ_INT(hist_percentile(&h_a, 50.0), 50);
	CHECK_EQ_INT(hist_percentile(&h_a, 90.0), 90);
	CHECK_EQ_INT(hist_percentile(&h_a, 99.0), 99);
	CHECK_EQ_INT(hist_percentile(&h_a, 100.0), 100);
	CHECK_EQ_INT(hist_percentile(&h_a, 0.5), 1);
	CHECK_EQ_INT(hist_percentile(&h_a, 0.0), 1);
	CHECK_EQ_INT(hist_min_ns(&h_a), 1);
	CHECK_EQ_INT(hist_max_ns(&h_a), 100);
	CHECK(hist_mean_ns(&h_a) == 50.5);
}

/* p99.9 of 1..1000 is the 999th value, not the 1000th. */
static void test_rank_rounding(void)
{
	hist_init(&h_a);
	for (uint64_t v = 1; v <= 1000; v++)
		hist_record(&h_a, v);
	CHECK_EQ_INT(hist_percentile(&h_a, 99.9), 999);
	CHECK_EQ_INT(hist_percentile(&h_a, 100.0), 1000);
	CHECK_EQ_INT(hist_percentile(&h_a, 50.0), 503);
}

/* 1 us .. 10 ms in 1 us steps: answers within 1/64 of the exact ones. */
static void test_uniform_microseconds(void)
{
	hist_init(&h_a);
	for (uint64_t us = 1; us <= 10000; us++)
		hist_record(&h_a, us * 1000);
	CHECK(within_precision(hist_percentile(&h_a, 50.0), 5000000));
	CHECK(within_precision(hist_percentile(&h_a, 90.0), 9000000));
	CHECK(within_precision(hist_percentile(&h_a, 99.0), 9900000));
	CHECK(within_precision(hist_percentile(&h_a, 99.9), 9990000));
	CHECK_EQ_INT(hist_percentile(&h_a, 100.0), 10000000);
	CHECK_EQ_INT(hist_max_ns(&h_a), 10000000);
	CHECK_EQ_INT(hist_min_ns(&h_a), 1000);
	CHECK(hist_mean_ns(&h_a) == 5000500.0);
}

/* A single value answers itself at every percentile. */
static void test_single_value(void)
{
	hist_init(&h_a);
	hist_record(&h_a, 123456789);
	CHECK_EQ_INT(hist_percentile(&h_a, 1.0), 123456789);
	CHECK_EQ_INT(hist_percentile(&h_a, 50.0), 123456789);
	CHECK_EQ_INT(hist_percentile(&h_a, 99.99), 123456789);
	CHECK_EQ_INT(hist_max_ns(&h_a), 123456789);
}

static uint64_t lcg_next(uint64_t *state)
{
	*state = *state * 6364136223846793005ull + 1442695040888963407ull;
	return *state >> 11;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Values spread log-uniformly over 1 us .. 60 s, checked against a sort. */
static void test_against_sorted(void)
{
	enum { N = 20000 };
	static uint64_t values[N];
	static const double pcts[] = { 1, 10, 50, 90, 99, 99.9, 99.99 };
	uint64_t state = 42;
	int off = 0;

	hist_init(&h_a);
	for (int i = 0; i < N; i++) {
		uint64_t bits = lcg_next(&state);
		uint32_t shift = 10 + (uint32_t)(bits % 26);

		values[i] = (1ull << shift) + (bits >> 8) % (1ull << shift);
		if (values[i] > HIST_VALUE_MAX_NS)
			values[i] = HIST_VALUE_MAX_NS;
		hist_record(&h_a, values[i]);
	}
	qsort(values, N, sizeof(values[0]), cmp_u64);
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		uint64_t rank = (uint64_t)(pcts[i] * N / 100.0 + 0.999999);
		uint64_t exact = values[rank - 1];

		if (!within_precision(hist_percentile(&h_a, pcts[i]), exact))
			off++;
	}
	CHECK_EQ_INT(off, 0);
	CHECK_EQ_INT(hist_max_ns(&h_a), values[N - 1]);
	CHECK_EQ_INT(hist_min_ns(&h_a), values[0]);
}

static void test_merge(void)
{
	hist_init(&h_a);
	hist_init(&h_b);
	hist_init(&h_all);
	for (uint64_t us = 1; us <= 5000; us++) {
		hist_record(us % 2 ? &h_a : &h_b, us * 997);
		hist_record(&h_all, us * 997);
	}
	hist_record(&h_b, 90000000000ull);
	hist_record(&h_all, 90000000000ull);
	hist_merge(&h_a, &h_b);
	CHECK(memcmp(h_a.counts, h_all.counts, sizeof(h_a.counts)) == 0);
	CHECK_EQ_INT(hist_count(&h_a), hist_count(&h_all));
	CHECK_EQ_INT(h_a.overflow, 1);
	CHECK_EQ_INT(hist_max_ns(&h_a), 90000000000ull);
	CHECK_EQ_INT(hist_min_ns(&h_a), 997);
	CHECK_EQ_INT(hist_percentile(&h_a, 99.0),
		     hist_percentile(&h_all, 99.0));
	CHECK(hist_mean_ns(&h_a) == hist_mean_ns(&h_all));

	/* Merging an empty histogram changes nothing, either way round. */
	hist_init(&h_b);
	hist_merge(&h_a, &h_b);
	CHECK_EQ_INT(hist_count(&h_a), hist_count(&h_all));
	CHECK_EQ_INT(hist_min_ns(&h_a), 997);
	hist_merge(&h_b, &h_all);
	CHECK_EQ_INT(hist_percentile(&h_b, 50.0),
		     hist_percentile(&h_all, 50.0));
	CHECK_EQ_INT(hist_min_ns(&h_b), 997);
}

static void test_past_the_top(void)
{
	hist_init(&h_a);
	hist_record_n(&h_a, 1000000, 98);
	hist_record(&h_a, 61000000000ull);
	hist_record(&h_a, 120000000000ull);
	CHECK_EQ_INT(hist_count(&h_a), 100);
	CHECK_EQ_INT(h_a.overflow, 2);
	CHECK(within_precision(hist_percentile(&h_a, 98.0), 1000000));
	CHECK_EQ_INT(hist_percentile(&h_a, 99.0), 120000000000ull);
	CHECK_EQ_INT(hist_percentile(&h_a, 100.0), 120000000000ull);
	CHECK_EQ_INT(hist_max_ns(&h_a), 120000000000ull);

	/* 60 s itself is still tracked. */
	hist_init(&h_a);
	hist_record(&h_a, HIST_VALUE_MAX_NS);
	CHECK_EQ_INT(h_a.overflow, 0);
	CHECK_EQ_INT(hist_percentile(&h_a, 50.0), HIST_VALUE_MAX_NS);
}

static void test_record_n_and_saturation(void)
{
	hist_init(&h_a);
	hist_init(&h_b);
	hist_record_n(&h_a, 5000, 3);
	hist_record_n(&h_a, 7000, 0);
	for (int i = 0; i < 3; i++)
		hist_record(&h_b, 5000);
	CHECK(memcmp(&h_a, &h_b, sizeof(h_a)) == 0);

	/* A sum that would wrap sticks at the top instead. */
	hist_init(&h_a);
	hist_record_n(&h_a, UINT64_MAX / 2, 4);
	CHECK(h_a.sum_ns == UINT64_MAX);
	CHECK_EQ_INT(h_a.overflow, 4);
}

int main(void)
{
	test_empty();
	test_buckets_tile_the_range();
	test_bucket_edges();
	test_exact_small_values();
	test_rank_rounding();
	test_uniform_microseconds();
	test_single_value();
	test_against_sorted();
	test_merge();
	test_past_the_top();
	test_record_n_and_saturation();
	return check_exit("test_hist");
}
