/*
 * test_gen: the data generator.  Runs gen into memory and checks the
 * bytes: the same seed and clock give the same output and another seed
 * another; every line parses as JSON (jansson) and, stripped of its
 * metadata, passes record_validate() as the daemon would run it; codes
 * are known to ref.h; the completeness mix, computed by the completeness
 * module itself, is near the intended 70%; the scale sizes.  Reads data/,
 * so it runs from the top of the checkout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "check.h"
#include "completeness.h"
#include "gen.h"
#include "jsonmp.h"
#include "proto.h"
#include "record.h"
#include "ref.h"

/* 2026-01-01 00:00 UTC: a fixed clock keeps the output fixed. */
#define NOW 1767225600

static struct ref *ref;
static struct completeness *compl;

/* ---- running gen into memory ---- */

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_write(void *ctx, const char *s, size_t n)
{
	struct buf *b = ctx;

	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1 << 20;
		char *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}

static void config(struct gen_config *cfg, uint64_t seed, uint32_t students,
		   uint32_t postings, uint32_t companies)
{
	cfg->seed = seed;
	cfg->now = NOW;
	cfg->students = students;
	cfg->postings = postings;
	cfg->companies = companies;
}

/* Runs a generator for cfg into b.  Returns gen's result. */
static int run(const struct gen_config *cfg, struct buf *b,
	       struct gen_counts *counts)
{
	struct gen *g = NULL;
	char err[256];
	int rc = gen_open(&g, cfg, ref, "data", err, sizeof(err));

	if (rc) {
		fprintf(stderr, "gen_open: %s\n", err);
		return rc;
	}
	memset(b, 0, sizeof(*b));
	rc = gen_run(g, buf_write, b, counts);
	gen_free(g);
	return rc;
}

/* ---- sizes and determinism ---- */

static void test_scales(void)
{
	struct gen_config cfg = { 0 };

	CHECK_EQ_INT(gen_scale("demo", &cfg), 0);
	CHECK_EQ_INT(cfg.students, 500);
	CHECK_EQ_INT(cfg.postings, 200);
	CHECK_EQ_INT(cfg.companies, 60);
	CHECK_EQ_INT(gen_scale("guangdong", &cfg), 0);
	CHECK_EQ_INT(cfg.students, 1000000);
	CHECK_EQ_INT(cfg.postings, 200000);
	CHECK_EQ_INT(cfg.companies, 30000);
	CHECK_EQ_INT(gen_scale("beijing", &cfg), -EINVAL);
	CHECK_EQ_INT(cfg.students, 1000000);
}

static void test_demo_counts(void)
{
	struct gen_config cfg = { 0 };
	struct gen_counts c;
	struct buf b;
	size_t lines = 0;

	CHECK_EQ_INT(gen_scale("demo", &cfg), 0);
	cfg.seed = 1;
	cfg.now = NOW;
	CHECK_EQ_INT(run(&cfg, &b, &c), 0);
	CHECK_EQ_INT(c.companies, 60);
	CHECK_EQ_INT(c.students, 500);
	CHECK_EQ_INT(c.resumes, 500);
	CHECK_EQ_INT(c.postings, 230);
	CHECK_EQ_INT(c.postings_expired, 20);
	CHECK_EQ_INT(c.postings_closed, 10);
	CHECK_EQ_INT(c.lines, 60 + 500 + 500 + 230 + 10);
	CHECK_EQ_INT(c.bytes, b.len);
	for (size_t i = 0; i < b.len; i++)
		lines += b.p[i] == '\n';
	CHECK_EQ_INT(lines, c.lines);
	CHECK(b.len > 0 && b.p[b.len - 1] == '\n');
	free(b.p);
}

static void test_determinism(void)
{
	struct gen_config cfg;
	struct buf a, b, c;

	config(&cfg, 42, 400, 150, 40);
	CHECK_EQ_INT(run(&cfg, &a, NULL), 0);
	CHECK_EQ_INT(run(&cfg, &b, NULL), 0);
	CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
	cfg.seed = 43;
	CHECK_EQ_INT(run(&cfg, &c, NULL), 0);
	CHECK(a.len != c.len || memcmp(a.p, c.p, a.len) != 0);
	free(a.p);
	free(b.p);
	free(c.p);
}

/* A write function that fails stops the run with its error. */
static int fail_write(void *ctx, const char *s, size_t n)
{
	(void)s;
	(void)n;
	++*(int *)ctx;
	return -ENOSPC;
}

static void test_write_error(void)
{
	struct gen_config cfg;
	struct gen *g = NULL;
	char err[256];
	int calls = 0;

	config(&cfg, 1, 3000, 100, 10);
	CHECK_EQ_INT(gen_open(&g, &cfg, ref, "data", err, sizeof(err)), 0);
	CHECK_EQ_INT(gen_run(g, fail_write, &calls, NULL), -ENOSPC);
	CHECK_EQ_INT(calls, 1);
	gen_free(g);
}

static void test_bad_config(void)
{
	struct gen_config cfg;
	struct gen *g = NULL;
	char err[256] = "";

	config(&cfg, 1, 10, 10, 0);
	CHECK_EQ_INT(gen_open(&g, &cfg, ref, "data", err, sizeof(err)),
		     -EINVAL);
	CHECK(err[0] != '\0');
	config(&cfg, 1, 10, 10, 1);
	CHECK_EQ_INT(gen_open(&g, &cfg, ref, "no-such-dir", err,
			      sizeof(err)), -ENOENT);
}

/* ---- escaping ---- */

static void check_escape_round_trip(const char *s, size_t len)
{
	char *esc = malloc(6 * len + 16);
	char *doc = malloc(6 * len + 32);
	json_error_t jerr;
	json_t *v, *x;
	size_t n;

	n = gen_json_escape(s, len, esc);
	snprintf(doc, 6 * len + 32, "{\"v\":\"%.*s\"}", (int)n, esc);
	v = json_loads(doc, JSON_ALLOW_NUL, &jerr);
	CHECK(v != NULL);
	x = v ? json_object_get(v, "v") : NULL;
	CHECK(x && json_string_length(x) == len &&
	      memcmp(json_string_value(x), s, len) == 0);
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)esc[i] >= 0x20);
	json_decref(v);
	free(esc);
	free(doc);
}

static void test_escape(void)
{
	static const char quoted[] = "say \"hi\" \\ back\\slash";
	static const char ctl[] = "a\nb\tc\rd\be\ff\x01g\x1fh\x7f";
	static const char cjk[] = "深圳市南山区“腾讯”（中国）";
	static const char nul[] = { 'a', '\0', 'b' };
	char out[16];

	check_escape_round_trip(quoted, strlen(quoted));
	check_escape_round_trip(ctl, strlen(ctl));
	check_escape_round_trip(cjk, strlen(cjk));
	check_escape_round_trip(nul, sizeof(nul));
	check_escape_round_trip("", 0);
	CHECK_EQ_INT(gen_json_escape("\"", 1, out), 2);
	CHECK(memcmp(out, "\\\"", 2) == 0);
	CHECK_EQ_INT(gen_json_escape("\x01", 1, out), 6);
	CHECK(memcmp(out, "\\u0001", 6) == 0);
	CHECK_EQ_INT(gen_json_escape("\\", 1, out), 2);
	CHECK(memcmp(out, "\\\\", 2) == 0);
}

/* ---- every record as the daemon sees it ---- */

/* What a pass over a generated data set saw. */
struct tally {
	size_t lines, bad_json, bad_record;
	size_t students, mainland, origin_bad, major_bad, directed;
	size_t hk_mo_tw, bound;
	size_t resumes, complete, truth_bad, student_mismatch;
	size_t companies, postings, salary_bad, codes_bad, closes;
	size_t quotes;  /* lines whose text needed \" */
	char **student_ids;
	msgpack_sbuffer *stored_students;  /* by index, for completeness */
	size_t student_cap;
	char **company_ids;
	size_t company_count, company_cap;
};

static enum record_kind kind_of(const char *k, bool *ok)
{
	*ok = true;
	if (strcmp(k, "student") == 0)
		return RECORD_STUDENT;
	if (strcmp(k, "resume") == 0)
		return RECORD_RESUME;
	if (strcmp(k, "company") == 0)
		return RECORD_COMPANY;
	if (strcmp(k, "posting") == 0)
		return RECORD_POSTING;
	*ok = false;
	return RECORD_STUDENT;
}

/* Drops "kind" and the generator's "_" metadata, as the importer does. */
static void strip_meta(json_t *obj)
{
	const char *key;
	json_t *val;
	void *tmp;

	json_object_del(obj, "kind");
	json_object_foreach_safe(obj, tmp, key, val) {
		(void)val;
		if (key[0] == '_')
			json_object_del(obj, key);
	}
}

static bool code_known(const char *code)
{
	return code && ref_division_level(ref, code, strlen(code)) != REF_NONE;
}

static bool category_known(const char *name)
{
	static const char *const names[] = {
		"软件开发", "数据分析", "硬件/嵌入式", "电子/通信", "机械/制造",
		"财务/会计", "金融", "市场营销", "销售", "人力资源", "行政/文秘",
		"教育/培训", "医疗/医药", "建筑/土木", "设计", "法务",
		"物流/供应链", "电商运营", "新媒体/传媒", "公务员/事业单位",
	};

	for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

static void check_student(struct tally *t, json_t *line,
			  const struct record_out *out)
{
	const char *origin = json_string_value(json_object_get(line,
							       "origin"));
	const char *region = json_string_value(json_object_get(line,
							       "region"));
	const char *major = json_string_value(json_object_get(line,
							      "major_code"));
	json_t *directed = json_object_get(line, "directed_region");
	size_t i = t->students++;

	if (!region) {
		t->mainland++;
		if (!origin || !ref_division_origin_ok(ref, origin,
						       strlen(origin)))
			t->origin_bad++;
	} else {
		t->hk_mo_tw += origin == NULL;
	}
	if (!major || strlen(major) < 6 ||
	    !ref_major_known(ref, major, strlen(major)) ||
	    !ref_major_name(ref, major, strlen(major)))
		t->major_bad++;
	if (directed) {
		t->directed++;
		t->codes_bad += !code_known(json_string_value(directed));
	}
	t->bound += json_is_true(json_object_get(line, "bound"));
	if (i < t->student_cap) {
		t->student_ids[i] = strdup(out->id);
		msgpack_sbuffer_write(&t->stored_students[i],
				      out->stored.data, out->stored.size);
	}
}

static void check_resume(struct tally *t, json_t *line,
			 const struct record_out *out)
{
	size_t i = t->resumes++;
	json_t *truth = json_object_get(line, "_truth");
	json_t *cities = json_object_get(line, "desired_cities");
	struct completeness_result res;
	msgpack_unpacked r, s;
	json_t *v;
	size_t k;

	if (!truth || !category_known(json_string_value(
			      json_object_get(truth, "category"))) ||
	    !code_known(json_string_value(json_object_get(truth, "city"))))
		t->truth_bad++;
	json_array_foreach(cities, k, v)
		t->codes_bad += !code_known(json_string_value(v));
	if (i >= t->student_cap || !t->student_ids[i] ||
	    strcmp(t->student_ids[i], out->id) != 0) {
		t->student_mismatch++;
		return;
	}
	msgpack_unpacked_init(&r);
	msgpack_unpacked_init(&s);
	if (msgpack_unpack_next(&r, out->stored.data, out->stored.size,
				NULL) == MSGPACK_UNPACK_SUCCESS &&
	    msgpack_unpack_next(&s, t->stored_students[i].data,
				t->stored_students[i].size, NULL) ==
		    MSGPACK_UNPACK_SUCCESS) {
		completeness_eval(compl, &r.data, &s.data, &res);
		t->complete += res.percent >= 60;
	}
	msgpack_unpacked_destroy(&r);
	msgpack_unpacked_destroy(&s);
}

static bool seen_company(const struct tally *t, const char *id)
{
	for (size_t i = 0; id && i < t->company_count; i++)
		if (strcmp(t->company_ids[i], id) == 0)
			return true;
	return false;
}

static void check_company(struct tally *t, json_t *line)
{
	const char *id = json_string_value(json_object_get(line, "id"));

	t->companies++;
	t->codes_bad += !code_known(json_string_value(
		json_object_get(line, "city")));
	if (id && t->company_count < t->company_cap)
		t->company_ids[t->company_count++] = strdup(id);
}

static void check_posting(struct tally *t, json_t *line)
{
	json_t *lo = json_object_get(line, "salary_min");
	json_t *hi = json_object_get(line, "salary_max");
	json_t *majors = json_object_get(line, "majors");
	json_t *v;
	size_t k;

	t->postings++;
	if (!json_is_integer(lo) || !json_is_integer(hi) ||
	    json_integer_value(lo) > json_integer_value(hi) ||
	    json_integer_value(lo) <= 0)
		t->salary_bad++;
	t->codes_bad += !code_known(json_string_value(
		json_object_get(line, "city")));
	json_array_foreach(majors, k, v) {
		const char *m = json_string_value(v);

		t->codes_bad += !m || !ref_major_known(ref, m, strlen(m));
	}
	if (!seen_company(t, json_string_value(json_object_get(line,
							       "company_id"))))
		t->codes_bad++;
}

/* Validates one parsed line as its record kind, then kind checks. */
static void check_record(struct tally *t, json_t *line, const char *kind)
{
	struct proto_limits limits;
	struct proto_error err;
	struct record_out out;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
	json_t *copy = json_deep_copy(line);
	bool ok;
	enum record_kind rk = kind_of(kind, &ok);

	proto_limits_default(&limits);
	strip_meta(copy);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_unpacked_init(&u);
	record_out_init(&out);
	if (!ok || jsonmp_pack(&pk, copy, limits.depth_max) != 0 ||
	    msgpack_unpack_next(&u, sb.data, sb.size, NULL) !=
		    MSGPACK_UNPACK_SUCCESS ||
	    record_validate(rk, &u.data, ref, &limits, NOW, &out, &err)) {
		if (t->bad_record++ < 5)
			fprintf(stderr, "rejected %s: %s %s\n", kind,
				err.field, err.message);
	} else if (rk == RECORD_STUDENT) {
		check_student(t, line, &out);
	} else if (rk == RECORD_RESUME) {
		check_resume(t, line, &out);
	} else if (rk == RECORD_COMPANY) {
		check_company(t, line);
	} else {
		check_posting(t, line);
	}
	record_out_destroy(&out);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	json_decref(copy);
}

static void check_line(struct tally *t, const char *s, size_t len)
{
	json_error_t jerr;
	json_t *line = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *kind;

	t->lines++;
	if (!line || !json_is_object(line)) {
		t->bad_json++;
		json_decref(line);
		return;
	}
	t->quotes += memmem(s, len, "\\\"", 2) != NULL;
	kind = json_string_value(json_object_get(line, "kind"));
	if (kind && strcmp(kind, "posting.close") == 0)
		t->closes++;
	else
		check_record(t, line, kind ? kind : "");
	json_decref(line);
}

static void tally_init(struct tally *t, size_t students, size_t companies)
{
	memset(t, 0, sizeof(*t));
	t->student_cap = students;
	t->student_ids = calloc(students, sizeof(*t->student_ids));
	t->stored_students = calloc(students, sizeof(*t->stored_students));
	t->company_cap = companies;
	t->company_ids = calloc(companies, sizeof(*t->company_ids));
	for (size_t i = 0; i < students; i++)
		msgpack_sbuffer_init(&t->stored_students[i]);
}

static void tally_free(struct tally *t)
{
	for (size_t i = 0; i < t->student_cap; i++) {
		free(t->student_ids[i]);
		msgpack_sbuffer_destroy(&t->stored_students[i]);
	}
	for (size_t i = 0; i < t->company_count; i++)
		free(t->company_ids[i]);
	free(t->student_ids);
	free(t->stored_students);
	free(t->company_ids);
}

static int cmp_str(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;

	return strcmp(x ? x : "", y ? y : "");
}

static size_t duplicates(char **ids, size_t n)
{
	size_t d = 0;

	qsort(ids, n, sizeof(*ids), cmp_str);
	for (size_t i = 1; i < n; i++)
		d += ids[i] && ids[i - 1] && strcmp(ids[i], ids[i - 1]) == 0;
	return d;
}

#define STUDENTS 4000
#define POSTINGS 1000
#define COMPANIES 120

static void test_records(void)
{
	struct gen_config cfg;
	struct gen_counts c;
	struct tally t;
	struct buf b;
	double share;

	config(&cfg, 2024, STUDENTS, POSTINGS, COMPANIES);
	CHECK_EQ_INT(run(&cfg, &b, &c), 0);
	tally_init(&t, STUDENTS, COMPANIES);
	for (size_t at = 0; at < b.len; ) {
		char *nl = memchr(b.p + at, '\n', b.len - at);
		size_t end = nl ? (size_t)(nl - b.p) : b.len;

		check_line(&t, b.p + at, end - at);
		at = end + 1;
	}
	CHECK_EQ_INT(t.lines, c.lines);
	CHECK_EQ_INT(t.bad_json, 0);
	CHECK_EQ_INT(t.bad_record, 0);
	CHECK_EQ_INT(t.students, STUDENTS);
	CHECK_EQ_INT(t.resumes, STUDENTS);
	CHECK_EQ_INT(t.companies, COMPANIES);
	CHECK_EQ_INT(t.postings, c.postings);
	CHECK_EQ_INT(t.closes, c.postings_closed);
	CHECK_EQ_INT(t.origin_bad, 0);
	CHECK_EQ_INT(t.major_bad, 0);
	CHECK_EQ_INT(t.codes_bad, 0);
	CHECK_EQ_INT(t.salary_bad, 0);
	CHECK_EQ_INT(t.truth_bad, 0);
	CHECK_EQ_INT(t.student_mismatch, 0);
	CHECK_EQ_INT(t.hk_mo_tw, t.students - t.mainland);
	/* A few students of each rarer kind: directed, hk/mo/tw. */
	CHECK(t.directed > 0 && t.directed < STUDENTS / 20);
	CHECK(t.mainland < t.students && t.mainland > STUDENTS * 95 / 100);
	CHECK(t.bound > STUDENTS * 85 / 100 && t.bound < STUDENTS * 95 / 100);
	CHECK(t.quotes > 0);
	share = (double)t.complete / (double)t.resumes;
	printf("test_gen: %.1f%% of %zu resumes at or above 60%%\n",
	       share * 100, t.resumes);
	CHECK(share >= 0.60 && share <= 0.80);
	CHECK_EQ_INT(duplicates(t.student_ids, t.student_cap), 0);
	tally_free(&t);
	free(b.p);
}

int main(void)
{
	char err[256];

	if (ref_load(&ref, "data", err, sizeof(err)) ||
	    completeness_load(&compl, "data/completeness.tsv", err,
			      sizeof(err))) {
		fprintf(stderr, "test_gen: %s\n", err);
		return 1;
	}
	test_scales();
	test_demo_counts();
	test_determinism();
	test_write_error();
	test_bad_config();
	test_escape();
	test_records();
	completeness_free(compl);
	ref_free(ref);
	return check_exit("test_gen");
}
