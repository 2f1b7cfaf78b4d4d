/*
 * stats: per-thread counters.  See stats.h.
 */
#include "stats.h"

#include <stdio.h>
#include <unistd.h>

void stats_request(struct stats_worker *w, unsigned m, uint64_t us)
{
	unsigned b = 0;

	while (b + 1 < STATS_LATENCY_BUCKETS && (1ull << b) <= us)
		b++;
	if (m < STATS_METHODS_MAX)
		STATS_ADD(w->requests[m], 1);
	STATS_ADD(w->latency_us[b], 1);
}

void stats_sum(struct stats_worker *dst, const struct stats_worker *src)
{
	const uint64_t *s = (const uint64_t *)src;
	uint64_t *d = (uint64_t *)dst;

	_Static_assert(sizeof(struct stats_worker) % sizeof(uint64_t) == 0,
		       "stats_worker is summed as an array of counters");
	for (size_t i = 0; i < sizeof(*src) / sizeof(uint64_t); i++)
		d[i] += __atomic_load_n(&s[i], __ATOMIC_RELAXED);
}

uint64_t stats_latency_quantile_us(const struct stats_worker *sum, double q)
{
	uint64_t total = 0;
	uint64_t seen = 0;

	for (int b = 0; b < STATS_LATENCY_BUCKETS; b++)
		total += sum->latency_us[b];
	if (total == 0)
		return 0;
	for (int b = 0; b < STATS_LATENCY_BUCKETS; b++) {
		seen += sum->latency_us[b];
		if ((double)seen >= q * (double)total)
			return 1ull << b;
	}
	return 1ull << (STATS_LATENCY_BUCKETS - 1);
}

uint64_t stats_rss_bytes(void)
{
	unsigned long pages_total = 0;
	unsigned long pages_rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &pages_total, &pages_rss) != 2)
		pages_rss = 0;
	fclose(f);
	return (uint64_t)pages_rss * (uint64_t)sysconf(_SC_PAGESIZE);
}
