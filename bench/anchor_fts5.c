/*
 * anchor_fts5: the SQLite FTS5 side of the posting search comparison.
 * Not part of the daemon; bench/search-anchors builds and runs it.
 *
 * Reads a matchgen JSON Lines data set and loads the postings open at
 * --now (closes applied) into an in-memory FTS5 table: title, skills and
 * description pre-tokenised by text.c (TEXT_INDEX), space-joined so that
 * FTS5's unicode61 tokeniser (with '.', '+' and '#' as token characters)
 * splits them back into the same tokens, and three columns holding the
 * posting's county, city and province code.  Then runs the query file
 * (index_bench.c) single-threaded: the query's TEXT_QUERY tokens ANDed,
 * restricted to the text columns, the division as a column filter,
 * ranked by bm25() with column weights 3, 2, 1, top 20.  Prints build
 * time, queries/s and p50/p99 latency, median of --runs passes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sqlite3.h>

#include "text.h"

#define QUERIES_MAX 100000
#define RUNS_MAX 50
#define TEXT_BYTES_MAX (1u << 20)

struct buf {
	char *s;
	size_t len;
	size_t cap;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void buf_add(struct buf *b, const char *s, size_t len)
{
	if (b->len + len + 2 > b->cap) {
		b->cap = (b->len + len + 2) * 2;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			abort();
	}
	memcpy(b->s + b->len, s, len);
	b->len += len;
	b->s[b->len] = '\0';
}

/* Appends the token, space-separated; quoted for a query. */
static int on_token(void *ctx, uint64_t id, const char *t, size_t len,
		    uint32_t pos)
{
	struct buf *b = ctx;

	(void)id;
	(void)pos;
	if (b->len)
		buf_add(b, " ", 1);
	buf_add(b, t, len);
	return 0;
}

static void tokens(struct buf *b, const char *s, enum text_mode mode)
{
	if (s)
		text_tokenize(s, strlen(s), mode, on_token, b);
}

static const char *str_of(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* closed is sorted. */
static int is_closed(char **closed, size_t n, const char *id)
{
	return id && bsearch(&id, closed, n, sizeof(*closed), str_cmp);
}

static void bind_code(sqlite3_stmt *st, int col, const char *code, int keep)
{
	char text[8];

	if (keep && code) {
		snprintf(text, sizeof(text), "d%.6s", code);
		sqlite3_bind_text(st, col, text, -1, SQLITE_TRANSIENT);
	} else {
		sqlite3_bind_null(st, col);
	}
}

static void insert(sqlite3_stmt *st, json_t *j)
{
	struct buf t = { 0 }, k = { 0 }, d = { 0 };
	const char *city = str_of(j, "city");
	char c[7] = "", p[7] = "";
	json_t *v;
	size_t i;

	tokens(&t, str_of(j, "title"), TEXT_INDEX);
	json_array_foreach(json_object_get(j, "skills"), i, v)
		tokens(&k, json_string_value(v), TEXT_INDEX);
	tokens(&d, str_of(j, "description"), TEXT_INDEX);
	sqlite3_bind_text(st, 1, t.s ? t.s : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, k.s ? k.s : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, d.s ? d.s : "", -1, SQLITE_TRANSIENT);
	if (city && strlen(city) == 6) {
		snprintf(c, sizeof(c), "%.4s00", city);
		snprintf(p, sizeof(p), "%.2s0000", city);
	}
	bind_code(st, 4, city, city && strcmp(city, c) && strcmp(city, p));
	bind_code(st, 5, c, c[0] && strcmp(c, p));
	bind_code(st, 6, p, p[0]);
	sqlite3_bind_text(st, 7, str_of(j, "id"), -1, SQLITE_TRANSIENT);
	sqlite3_step(st);
	sqlite3_reset(st);
	free(t.s);
	free(k.s);
	free(d.s);
}

static size_t load(sqlite3 *db, const char *path, long long now)
{
	static char *closed[100000];
	size_t nclosed = 0, n = 0, cap = 0;
	char *line = NULL;
	sqlite3_stmt *st;
	FILE *f = fopen(path, "r");
	ssize_t len;

	if (!f)
		return 0;
	while ((len = getline(&line, &cap, f)) > 0 && nclosed < 100000) {
		if (strstr(line, "\"kind\":\"posting.close\"")) {
			json_t *j = json_loadb(line, (size_t)len, 0, NULL);

			closed[nclosed++] = strdup(str_of(j, "id"));
			json_decref(j);
		}
	}
	rewind(f);
	qsort(closed, nclosed, sizeof(*closed), str_cmp);
	sqlite3_exec(db, "CREATE VIRTUAL TABLE p USING fts5(title, skills, "
		     "description, county, city, province, id UNINDEXED, "
		     "tokenize = \"unicode61 tokenchars '.+#'\")",
		     NULL, NULL, NULL);
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO p VALUES (?, ?, ?, ?, ?, ?, ?)",
			   -1, &st, NULL);
	while ((len = getline(&line, &cap, f)) > 0) {
		json_t *j, *exp;

		if (!strstr(line, "\"kind\":\"posting\""))
			continue;
		j = json_loadb(line, (size_t)len, 0, NULL);
		exp = json_object_get(j, "expires_at");
		if (!is_closed(closed, nclosed, str_of(j, "id")) &&
		    (!exp || json_integer_value(exp) > now)) {
			insert(st, j);
			n++;
		}
		json_decref(j);
	}
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_exec(db, "INSERT INTO p(p) VALUES ('optimize')", NULL, NULL,
		     NULL);
	free(line);
	fclose(f);
	return n;
}

/* The MATCH expression: every token quoted and ANDed within the text
 * columns, and the division as a column filter. */
static void match_expr(struct buf *m, const char *words, const char *city)
{
	struct buf q = { 0 };
	tokens(&q, words, TEXT_QUERY);
	m->len = 0;
	buf_add(m, "", 0);
	if (q.len) {
		buf_add(m, "{title skills description} : (\"", 31);
		for (size_t i = 0; i < q.len; i++) {
			if (q.s[i] == ' ')
				buf_add(m, "\" AND \"", 7);
			else if (q.s[i] == '"')
				buf_add(m, "\"\"", 2);
			else
				buf_add(m, q.s + i, 1);
		}
		buf_add(m, "\")", 2);
	}
	if (city && city[0]) {
		const char *col = strcmp(city + 2, "0000") == 0 ? "province" :
				  strcmp(city + 4, "00") == 0 ? "city" :
				  "county";
		char f[64];

		snprintf(f, sizeof(f), "%s%s : d%s", m->len ? " AND " : "",
			 col, city);
		buf_add(m, f, strlen(f));
	}
	free(q.s);
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static char *qw[QUERIES_MAX], *qc[QUERIES_MAX];
	static double lat[QUERIES_MAX];
	const char *data = NULL, *queries = NULL;
	double qps[RUNS_MAX], p50[RUNS_MAX], p99[RUNS_MAX], t0, build_s;
	long long now = (long long)time(NULL);
	int runs = 5, nonempty = 0;
	size_t nq = 0, n;
	struct buf m = { 0 };
	char line[4096];
	sqlite3_stmt *st;
	sqlite3 *db;
	FILE *f;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--data"))
			data = argv[i + 1];
		else if (!strcmp(argv[i], "--queries"))
			queries = argv[i + 1];
		else if (!strcmp(argv[i], "--now"))
			now = atoll(argv[i + 1]);
		else if (!strcmp(argv[i], "--runs"))
			runs = atoi(argv[i + 1]);
	}
	f = queries ? fopen(queries, "r") : NULL;
	if (!data || !f || runs < 1 || runs > RUNS_MAX) {
		fprintf(stderr, "usage: anchor_fts5 --data FILE --queries FILE "
			"[--now UNIX] [--runs N]\n");
		return 2;
	}
	while (nq < QUERIES_MAX && fgets(line, sizeof(line), f)) {
		char *tab = strchr(line, '\t');

		line[strcspn(line, "\n")] = '\0';
		if (!tab)
			continue;
		*tab = '\0';
		qw[nq] = strdup(line);
		qc[nq++] = strdup(tab + 1);
	}
	fclose(f);
	sqlite3_open(":memory:", &db);
	t0 = now_s();
	n = load(db, data, now);
	build_s = now_s() - t0;
	sqlite3_prepare_v2(db, "SELECT id FROM p WHERE p MATCH ? ORDER BY "
			   "bm25(p, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0) LIMIT 20",
			   -1, &st, NULL);
	for (int r = 0; r < runs; r++) {
		double start = now_s();

		nonempty = 0;
		for (size_t i = 0; i < nq; i++) {
			double s = now_s();
			int rows = 0;

			match_expr(&m, qw[i], qc[i]);
			if (m.len) {
				sqlite3_bind_text(st, 1, m.s, -1,
						  SQLITE_TRANSIENT);
				while (sqlite3_step(st) == SQLITE_ROW)
					rows++;
				sqlite3_reset(st);
			}
			nonempty += rows > 0;
			lat[i] = (now_s() - s) * 1e6;
		}
		qps[r] = (double)nq / (now_s() - start);
		qsort(lat, nq, sizeof(double), dbl_cmp);
		p50[r] = lat[nq / 2];
		p99[r] = lat[nq * 99 / 100];
		printf("run %d: %.0f queries/s, p50 %.1f us, p99 %.1f us\n",
		       r + 1, qps[r], p50[r], p99[r]);
	}
	qsort(qps, (size_t)runs, sizeof(double), dbl_cmp);
	qsort(p50, (size_t)runs, sizeof(double), dbl_cmp);
	qsort(p99, (size_t)runs, sizeof(double), dbl_cmp);
	printf("sqlite %s fts5: %zu postings built in %.3f s; %zu queries "
	       "(%d with results), median of %d runs: %.0f queries/s, p50 "
	       "%.1f us, p99 %.1f us\n", sqlite3_libversion(), n, build_s, nq,
	       nonempty, runs, qps[runs / 2], p50[runs / 2], p99[runs / 2]);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(m.s);
	return 0;
}
