/*
 * index_bench: the posting index measured in-process, and the maker of the
 * query set that the anchors (anchor_fts5, anchor_xapian) run too.
 *
 * It reads a matchgen JSON Lines data set, turns every posting into its
 * stored form through record_validate() (and applies the posting.close
 * lines), then times index_put over all of them on one thread, reports
 * the index's size, and runs the query set single-threaded through
 * index_search, printing build time, queries/s and p50/p99 latency.
 * --load builds through the bulk loader (index_load_*, two threads, as
 * the daemon does at start-up) instead; --slow N lists the N slowest
 * queries of the last run with their totals; --results FILE writes every
 * query's total and page (ids and scores), so that two builds of the
 * index can be compared with diff.
 * bench/search-anchors builds and runs it; docs/search.md has results.
 *
 * Query file: one query per line, `words<TAB>city` (city may be empty).
 * --make-queries writes one: 1-3 words drawn Zipf-like (s = 1) from the
 * postings' skills and title words ranked by how many postings use them,
 * and for every other query the division of a random posting at a random
 * level (county, city or province).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <msgpack.h>
#include <xxhash.h>

#include "index.h"
#include "jsonmp.h"
#include "proto.h"
#include "record.h"
#include "ref.h"

#define QUERIES_MAX 100000
#define LINE_BYTES_MAX (1u << 20)
#define WORDS_MAX 200000
#define RUNS_MAX 50

struct stored {
	char *data;
	size_t len;
	char id[RECORD_ID_BYTES_MAX + 1];
};

struct word {
	char *text;
	uint32_t count;
};

struct bench {
	struct ref *ref;
	struct stored *posts;
	size_t nposts;
	size_t posts_cap;
	struct word *words;
	size_t nwords;
	char (*cities)[7];
	size_t ncities;
	int64_t now;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = atol(line + 6);
	}
	fclose(f);
	return kb;
}

/* ---- data set ---------------------------------------------------------- */

/* Open addressing over word indexes + 1; WORD_SLOTS > 2 * WORDS_MAX. */
#define WORD_SLOTS (1u << 19)
static uint32_t word_slots[WORD_SLOTS];

static int add_word(struct bench *b, const char *w, size_t len)
{
	uint32_t s = (uint32_t)XXH3_64bits(w, len) & (WORD_SLOTS - 1);

	for (; word_slots[s]; s = (s + 1) & (WORD_SLOTS - 1)) {
		struct word *have = &b->words[word_slots[s] - 1];

		if (strlen(have->text) == len &&
		    memcmp(have->text, w, len) == 0) {
			have->count++;
			return 0;
		}
	}
	if (b->nwords == WORDS_MAX)
		return 0;
	b->words[b->nwords].text = strndup(w, len);
	b->words[b->nwords].count = 1;
	if (!b->words[b->nwords].text)
		return -ENOMEM;
	word_slots[s] = (uint32_t)++b->nwords;
	return 0;
}

/* Length of the title word that starts t: up to a space, a hyphen, a
 * slash or a parenthesis, ASCII or full-width. */
static size_t title_word(const char *t)
{
	static const char *const seps[] = { "（", "）", "、", "，", "·" };
	size_t n = 0;

	while (t[n] && !strchr(" -/()", t[n])) {
		for (size_t k = 0; k < sizeof(seps) / sizeof(seps[0]); k++) {
			if (strncmp(t + n, seps[k], strlen(seps[k])) == 0)
				return n;
		}
		n++;
	}
	return n;
}

static size_t title_gap(const char *t)
{
	size_t n = 0;

	while (t[n] && title_word(t + n) == 0)
		n += (unsigned char)t[n] < 0x80 ? 1 : strlen("（");
	return n;
}

/* Title words are the title's parts between separators. */
static void note_words(struct bench *b, json_t *post)
{
	const char *t = json_string_value(json_object_get(post, "title"));
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(post, "skills"), i, v) {
		const char *s = json_string_value(v);

		if (s)
			add_word(b, s, strlen(s));
	}
	while (t && *t) {
		size_t n;

		t += title_gap(t);
		n = title_word(t);
		if (n)
			add_word(b, t, n);
		t += n;
	}
}

static int keep_stored(struct bench *b, const struct record_out *out)
{
	struct stored *s;

	if (b->nposts == b->posts_cap) {
		size_t cap = b->posts_cap ? b->posts_cap * 2 : 1024;

		s = realloc(b->posts, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		b->posts = s;
		b->posts_cap = cap;
	}
	s = &b->posts[b->nposts++];
	s->len = out->stored.size;
	s->data = malloc(s->len);
	if (!s->data)
		return -ENOMEM;
	memcpy(s->data, out->stored.data, s->len);
	snprintf(s->id, sizeof(s->id), "%s", out->id);
	return 0;
}

/* Open addressing from id hash to posting index + 1, for the closes. */
#define POST_SLOTS (1u << 23)
static uint32_t *post_slots;

static void note_post(struct bench *b)
{
	const char *id = b->posts[b->nposts - 1].id;
	uint32_t s = (uint32_t)XXH3_64bits(id, strlen(id)) & (POST_SLOTS - 1);

	while (post_slots[s])
		s = (s + 1) & (POST_SLOTS - 1);
	post_slots[s] = (uint32_t)b->nposts;
}

static int add_posting(struct bench *b, json_t *post, bool words)
{
	struct proto_limits limits;
	struct record_out out;
	struct proto_error err;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
	size_t off = 0;
	int rc = -EINVAL;

	proto_limits_default(&limits);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_unpacked_init(&u);
	record_out_init(&out);
	if (jsonmp_pack(&pk, post, JSONMP_DEPTH_MAX) == 0 &&
	    msgpack_unpack_next(&u, sb.data, sb.size, &off) ==
		    MSGPACK_UNPACK_SUCCESS &&
	    record_validate(RECORD_POSTING, &u.data, b->ref, &limits, b->now,
			    &out, &err) == 0)
		rc = keep_stored(b, &out);
	if (rc == 0)
		note_post(b);
	if (rc == 0 && words)
		note_words(b, post);
	record_out_destroy(&out);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static void close_posting(struct bench *b, const char *id)
{
	uint32_t h = (uint32_t)XXH3_64bits(id, strlen(id));
	msgpack_sbuffer sb;
	bool was;

	for (uint32_t k = h & (POST_SLOTS - 1); post_slots[k];
	     k = (k + 1) & (POST_SLOTS - 1)) {
		struct stored *s = &b->posts[post_slots[k] - 1];

		if (strcmp(s->id, id))
			continue;
		msgpack_sbuffer_init(&sb);
		if (record_posting_close(s->data, s->len, &sb, &was) == 0) {
			free(s->data);
			s->data = sb.data;
			s->len = sb.size;
		} else {
			msgpack_sbuffer_destroy(&sb);
		}
		return;
	}
}

static int load_data(struct bench *b, const char *path, bool words)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return -errno;
	while ((n = getline(&line, &cap, f)) > 0) {
		json_t *j;
		const char *kind;

		if (!strstr(line, "\"kind\":\"posting"))
			continue;
		j = json_loadb(line, (size_t)n, 0, NULL);
		kind = json_string_value(json_object_get(j, "kind"));
		if (kind && strcmp(kind, "posting") == 0)
			add_posting(b, j, words);
		else if (kind && strcmp(kind, "posting.close") == 0)
			close_posting(b, json_string_value(
					      json_object_get(j, "id")));
		json_decref(j);
	}
	free(line);
	fclose(f);
	return 0;
}

/* ---- query set --------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rng_unit(void)
{
	return (double)(rng_next() >> 11) * 0x1p-53;
}

/* Rank r drawn with weight about 1 / (r + 1). */
static size_t zipf(size_t n)
{
	double x = exp(rng_unit() * log((double)n + 1.0)) - 1.0;

	return x >= (double)n ? n - 1 : (size_t)x;
}

static int word_cmp(const void *a, const void *c)
{
	const struct word *x = a, *y = c;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->text, y->text);
}

static void post_city(struct bench *b, char out[7])
{
	const struct stored *s = &b->posts[rng_next() % b->nposts];
	msgpack_unpacked u;
	size_t off = 0;
	unsigned long code = 0;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, s->data, s->len, &off) ==
	    MSGPACK_UNPACK_SUCCESS) {
		for (uint32_t i = 0; i < u.data.via.map.size; i++) {
			msgpack_object_kv *kv = &u.data.via.map.ptr[i];

			if (kv->key.via.str.size == 4 &&
			    memcmp(kv->key.via.str.ptr, "city", 4) == 0)
				code = strtoul(kv->val.via.str.ptr, NULL, 10);
		}
	}
	msgpack_unpacked_destroy(&u);
	code %= 1000000;
	switch (rng_next() % 3) {
	case 1: code = code / 100 * 100; break;
	case 2: code = code / 10000 * 10000; break;
	}
	snprintf(out, 7, "%06u", (unsigned)code % 1000000u);
	if (ref_division_level(b->ref, out, 6) == REF_NONE)
		snprintf(out, 7, "%06u", (unsigned)(code / 10000 % 100) * 10000u);
}

static int make_queries(struct bench *b, const char *path, unsigned count)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	qsort(b->words, b->nwords, sizeof(*b->words), word_cmp);
	for (unsigned i = 0; i < count; i++) {
		unsigned nw = 1 + (unsigned)(rng_next() % 3);
		char city[7] = "";

		for (unsigned w = 0; w < nw; w++)
			fprintf(f, "%s%s", w ? " " : "",
				b->words[zipf(b->nwords)].text);
		if (i % 2)
			post_city(b, city);
		fprintf(f, "\t%s\n", city);
	}
	fclose(f);
	return 0;
}

/* ---- measuring ---------------------------------------------------------- */

struct query {
	char *q;
	char city[7];
};

static size_t read_queries(const char *path, struct query *qs)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	size_t n = 0;

	if (!f)
		return 0;
	while (n < QUERIES_MAX && fgets(line, sizeof(line), f)) {
		char *tab = strchr(line, '\t');

		line[strcspn(line, "\n")] = '\0';
		if (!tab)
			continue;
		*tab = '\0';
		qs[n].q = strdup(line);
		snprintf(qs[n].city, sizeof(qs[n].city), "%s", tab + 1);
		n++;
	}
	fclose(f);
	return n;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Builds the index with index_put on this thread, or with the bulk
 * loader (two threads) when load is set; returns the seconds taken. */
static double build(struct bench *b, struct index **idx, bool load)
{
	struct index_loader *l;
	uint64_t invalid = 0;
	double t0, t1;

	if (index_new(idx, b->ref))
		return -1;
	t0 = now_s();
	if (load && index_load_begin(*idx, &l) == 0) {
		for (size_t i = 0; i < b->nposts; i++)
			index_load_add(l, b->posts[i].data, b->posts[i].len);
		if (index_load_end(l, &invalid) || invalid)
			fprintf(stderr, "index_load failed\n");
	} else {
		for (size_t i = 0; i < b->nposts; i++) {
			if (index_put(*idx, b->posts[i].data,
				      b->posts[i].len))
				fprintf(stderr, "index_put %s failed\n",
					b->posts[i].id);
		}
	}
	t1 = now_s();
	return t1 - t0;
}

struct opts {
	unsigned runs;
	bool load;              /* build with the bulk loader */
	unsigned slow;          /* slowest queries of the last run to list */
	const char *results;    /* file for every query's page, or NULL */
};

/* One query's outcome in the last run, for --slow and --results. */
struct outcome {
	double us;
	uint64_t total;
	bool exact;
	uint32_t hits_len;
	struct index_hit hits[20];
};

/* One pass over the queries; fills out and returns queries/s. */
static double run_queries(struct bench *b, struct index *idx,
			  const struct query *qs, size_t n,
			  struct outcome *out)
{
	struct index_result res;
	double t0 = now_s();

	for (size_t i = 0; i < n; i++) {
		struct index_query q = {
			.q = qs[i].q, .q_len = strlen(qs[i].q),
			.city = qs[i].city[0] ? qs[i].city : NULL,
			.education = INDEX_EDU_ANY, .salary_min = -1,
			.open_only = true, .now = b->now, .k = 20,
		};
		double s = now_s();

		if (index_search(idx, &q, out[i].hits, &res))
			fprintf(stderr, "query %zu failed\n", i);
		out[i].us = (now_s() - s) * 1e6;
		out[i].total = res.total;
		out[i].exact = res.total_exact;
		out[i].hits_len = res.hits_len;
	}
	return (double)n / (now_s() - t0);
}

static int outcome_cmp(const void *a, const void *b)
{
	const struct outcome *const *x = a, *const *y = b;

	return ((*x)->us < (*y)->us) - ((*x)->us > (*y)->us);
}

/* Lists the slowest queries of the last run, slowest first. */
static void print_slow(const struct query *qs, const struct outcome *out,
		       size_t n, unsigned slow)
{
	const struct outcome **by = malloc(n * sizeof(*by));

	if (!by)
		return;
	for (size_t i = 0; i < n; i++)
		by[i] = &out[i];
	qsort(by, n, sizeof(*by), outcome_cmp);
	for (size_t i = 0; i < n && i < slow; i++) {
		size_t at = (size_t)(by[i] - out);

		printf("slow %zu: %.1f us, total %llu%s, \"%s\" %s\n", i + 1,
		       by[i]->us, (unsigned long long)by[i]->total,
		       by[i]->exact ? "" : " (estimate)", qs[at].q,
		       qs[at].city[0] ? qs[at].city : "-");
	}
	free(by);
}

/* Writes every query's total and page, to compare two builds. */
static void write_results(const char *path, const struct outcome *out,
			  size_t n)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		fprintf(stderr, "index_bench: cannot write %s\n", path);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%zu\t%llu\t%d", i,
			(unsigned long long)out[i].total, out[i].exact);
		for (uint32_t h = 0; h < out[i].hits_len; h++)
			fprintf(f, "\t%s %.17g", out[i].hits[h].id,
				out[i].hits[h].score);
		fputc('\n', f);
	}
	fclose(f);
}

static void print_index(const struct bench *b, struct index *idx,
			double build_s, long rss0, bool load)
{
	struct index_stats st;

	index_stats_get(idx, &st);
	printf("matchd index: %zu postings built in %.3f s (%.0f/s, %s), "
	       "%llu terms, %llu entries, %.1f MB held (%.0f bytes/posting), "
	       "RSS +%.1f MB\n", b->nposts, build_s, b->nposts / build_s,
	       load ? "index_load" : "index_put",
	       (unsigned long long)st.terms,
	       (unsigned long long)st.entries, st.bytes / 1048576.0,
	       (double)st.bytes / (double)(st.postings ? st.postings : 1),
	       (rss_kb() - rss0) / 1024.0);
}

static void measure(struct bench *b, const char *qpath, const struct opts *o)
{
	static struct query qs[QUERIES_MAX];
	double qps[RUNS_MAX], p50[RUNS_MAX], p99[RUNS_MAX];
	struct index *idx;
	long rss0 = rss_kb();
	double build_s = build(b, &idx, o->load);
	size_t n = qpath ? read_queries(qpath, qs) : 0;
	struct outcome *out = calloc(n ? n : 1, sizeof(*out));
	double *lat = calloc(n ? n : 1, sizeof(*lat));
	unsigned runs = o->runs;
	uint64_t total = 0;
	size_t nonempty = 0;

	print_index(b, idx, build_s, rss0, o->load);
	for (unsigned r = 0; r < runs && n; r++) {
		qps[r] = run_queries(b, idx, qs, n, out);
		total = 0;
		nonempty = 0;
		for (size_t i = 0; i < n; i++) {
			lat[i] = out[i].us;
			total += out[i].total;
			nonempty += out[i].total > 0;
		}
		qsort(lat, n, sizeof(*lat), dbl_cmp);
		p50[r] = lat[n / 2];
		p99[r] = lat[n * 99 / 100];
		printf("run %u: %.0f queries/s, p50 %.1f us, p99 %.1f us\n",
		       r + 1, qps[r], p50[r], p99[r]);
	}
	if (n && runs) {
		qsort(qps, runs, sizeof(double), dbl_cmp);
		qsort(p50, runs, sizeof(double), dbl_cmp);
		qsort(p99, runs, sizeof(double), dbl_cmp);
		printf("matchd in-process: %zu queries (%zu with results, "
		       "mean total %.0f), median of %u runs: %.0f queries/s, "
		       "p50 %.1f us, p99 %.1f us, build %.3f s\n", n, nonempty,
		       (double)total / n, runs, qps[runs / 2], p50[runs / 2],
		       p99[runs / 2], build_s);
		if (o->slow)
			print_slow(qs, out, n, o->slow);
		if (o->results)
			write_results(o->results, out, n);
	}
	free(out);
	free(lat);
	index_free(idx);
}

static void usage(void)
{
	fputs("usage: index_bench --data FILE [--queries FILE] [--runs N]\n"
	      "                   [--now UNIX] [--ref DIR] [--load]\n"
	      "                   [--slow N] [--results FILE]\n"
	      "       index_bench --data FILE --make-queries FILE\n"
	      "                   [--count N] [--seed N]\n", stderr);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "queries", required_argument, NULL, 'q' },
		{ "make-queries", required_argument, NULL, 'm' },
		{ "count", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 's' },
		{ "runs", required_argument, NULL, 'r' },
		{ "now", required_argument, NULL, 'n' },
		{ "ref", required_argument, NULL, 'R' },
		{ "load", no_argument, NULL, 'L' },
		{ "slow", required_argument, NULL, 'S' },
		{ "results", required_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 },
	};
	const char *data = NULL, *queries = NULL, *make = NULL;
	const char *ref_dir = "data";
	struct bench b = { .now = (int64_t)time(NULL) };
	struct opts o = { .runs = 5 };
	unsigned count = 1000;
	char err[256];
	int opt;

	rng_state = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': data = optarg; break;
		case 'q': queries = optarg; break;
		case 'm': make = optarg; break;
		case 'c': count = (unsigned)atoi(optarg); break;
		case 's': rng_state = strtoull(optarg, NULL, 10); break;
		case 'r': o.runs = (unsigned)atoi(optarg); break;
		case 'n': b.now = strtoll(optarg, NULL, 10); break;
		case 'R': ref_dir = optarg; break;
		case 'L': o.load = true; break;
		case 'S': o.slow = (unsigned)atoi(optarg); break;
		case 'W': o.results = optarg; break;
		default: usage(); return 2;
		}
	}
	if (!data || o.runs > RUNS_MAX || count > QUERIES_MAX) {
		usage();
		return 2;
	}
	if (ref_load(&b.ref, ref_dir, err, sizeof(err))) {
		fprintf(stderr, "index_bench: %s\n", err);
		return 1;
	}
	b.words = calloc(WORDS_MAX, sizeof(*b.words));
	post_slots = calloc(POST_SLOTS, sizeof(*post_slots));
	if (!b.words || !post_slots || load_data(&b, data, make != NULL)) {
		fprintf(stderr, "index_bench: cannot read %s\n", data);
		return 1;
	}
	if (make)
		return make_queries(&b, make, count) ? 1 : 0;
	measure(&b, queries, &o);
	return 0;
}
