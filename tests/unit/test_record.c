/*
 * test_record: record_validate(), record_key() and the stored-posting
 * rewrites.  Requests are packed with msgpack_pack into an sbuffer from a
 * base record per kind plus a few overridden keys, unpacked to an object
 * and validated; errors are compared by code and field path, stored forms
 * byte for byte against maps packed by hand in canonical order.  Reads
 * data/ (the division and major tables), so it runs from the checkout top.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "check.h"
#include "proto.h"
#include "record.h"
#include "ref.h"

#define NOW 1750000000

enum vtype { V_STR, V_BIN, V_INT, V_F64, V_F32, V_BOOL, V_NIL, V_FN, V_OMIT };

struct val {
	enum vtype t;
	const char *s;
	int64_t i;
	double d;
	void (*fn)(msgpack_packer *pk);
};

/* One map entry.  dup: appended even when the base has the key. */
struct kv {
	const char *key;
	struct val v;
	bool dup;
};

#define S(x) { .t = V_STR, .s = (x) }
#define B(x) { .t = V_BIN, .s = (x) }
#define I(x) { .t = V_INT, .i = (x) }
#define F(x) { .t = V_F64, .d = (x) }
#define F32(x) { .t = V_F32, .d = (x) }
#define BOOL(x) { .t = V_BOOL, .i = (x) }
#define NIL { .t = V_NIL }
#define FN(x) { .t = V_FN, .fn = (x) }
#define OMIT { .t = V_OMIT }
#define KV(k_, v_) { .key = (k_), .v = v_ }
#define DUP(k_, v_) { .key = (k_), .v = v_, .dup = true }
#define END { .key = NULL }

static struct ref *ref;
static int64_t now = NOW; /* the server clock record_validate() is given */
static struct proto_limits small; /* strings 100 bytes, lists 12 */

/* ---- packing requests ---- */

static void pstr(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static void pack_val(msgpack_packer *pk, const struct val *v)
{
	switch (v->t) {
	case V_STR: pstr(pk, v->s); break;
	case V_BIN:
		msgpack_pack_bin(pk, strlen(v->s));
		msgpack_pack_bin_body(pk, v->s, strlen(v->s));
		break;
	case V_INT: msgpack_pack_int64(pk, v->i); break;
	case V_F64: msgpack_pack_double(pk, v->d); break;
	case V_F32: msgpack_pack_float(pk, (float)v->d); break;
	case V_BOOL:
		if (v->i)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case V_NIL: msgpack_pack_nil(pk); break;
	case V_FN: v->fn(pk); break;
	case V_OMIT: break;
	}
}

static size_t kv_count(const struct kv *a)
{
	size_t n = 0;

	while (a && a[n].key)
		n++;
	return n;
}

static const struct kv *kv_find(const struct kv *a, const char *key)
{
	for (size_t i = 0; a && a[i].key; i++)
		if (!a[i].dup && !strcmp(a[i].key, key))
			return &a[i];
	return NULL;
}

/* Packs base with over applied: replaced, omitted or appended keys. */
static void pack_request(msgpack_sbuffer *sb, const struct kv *base,
			 const struct kv *over)
{
	msgpack_packer pk;
	size_t n = 0;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	for (size_t i = 0; i < kv_count(base); i++) {
		const struct kv *o = kv_find(over, base[i].key);

		n += !(o && o->v.t == V_OMIT);
	}
	for (size_t i = 0; i < kv_count(over); i++)
		n += over[i].v.t != V_OMIT &&
		     (over[i].dup || !kv_find(base, over[i].key));
	msgpack_pack_map(&pk, n);
	for (size_t i = 0; i < kv_count(base); i++) {
		const struct kv *o = kv_find(over, base[i].key);
		const struct val *v = o ? &o->v : &base[i].v;

		if (v->t == V_OMIT)
			continue;
		pstr(&pk, base[i].key);
		pack_val(&pk, v);
	}
	for (size_t i = 0; i < kv_count(over); i++) {
		if (over[i].v.t == V_OMIT ||
		    (!over[i].dup && kv_find(base, over[i].key)))
			continue;
		pstr(&pk, over[i].key);
		pack_val(&pk, &over[i].v);
	}
}

/* Validates the packed request; the unpacked object lives in zone. */
static int run(enum record_kind kind, const msgpack_sbuffer *req,
	       const struct proto_limits *lim, struct record_out *out,
	       struct proto_error *err)
{
	msgpack_object obj;
	msgpack_zone zone;
	size_t off = 0;
	int rc;

	msgpack_zone_init(&zone, 1024);
	CHECK_EQ_INT(msgpack_unpack(req->data, req->size, &off, &zone, &obj),
		     MSGPACK_UNPACK_SUCCESS);
	memset(err, 0, sizeof(*err));
	rc = record_validate(kind, &obj, ref, lim, now, out, err);
	msgpack_zone_destroy(&zone);
	return rc;
}

static int validate(enum record_kind kind, const struct kv *base,
		    const struct kv *over, const struct proto_limits *lim,
		    struct record_out *out, struct proto_error *err)
{
	msgpack_sbuffer req;
	int rc;

	msgpack_sbuffer_init(&req);
	pack_request(&req, base, over);
	rc = run(kind, &req, lim, out, err);
	msgpack_sbuffer_destroy(&req);
	return rc;
}

/* ---- base records ---- */

static const struct kv student_base[] = {
	KV("id", S("S2024001")),
	KV("education", S("本科")),
	KV("major_code", S("080901")),
	KV("major", S("计算机科学与技术")),
	KV("school", S("中山大学")),
	KV("grad_year", I(2025)),
	KV("origin", S("440106")),
	KV("bound", BOOL(1)),
	END,
};

static void exp_one(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 3);
	pstr(pk, "kind"); pstr(pk, "internship");
	pstr(pk, "org"); pstr(pk, "某银行");
	pstr(pk, "start"); msgpack_pack_int(pk, 1700000000);
}

static void skills_two(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	pstr(pk, "C");
	pstr(pk, "Python");
}

static const struct kv resume_base[] = {
	KV("student_id", S("S2024001")),
	KV("intro", S("喜欢写代码")),
	KV("skills", FN(skills_two)),
	KV("experiences", FN(exp_one)),
	KV("salary_min", I(5000)),
	KV("salary_max", I(8000)),
	END,
};

static const struct kv company_base[] = {
	KV("id", S("C001")),
	KV("name", S("某某科技有限公司")),
	KV("city", S("440100")),
	END,
};

static void majors_one(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	pstr(pk, "0809");
}

static const struct kv posting_base[] = {
	KV("id", S("P001")),
	KV("company_id", S("C001")),
	KV("title", S("Java 开发工程师")),
	KV("city", S("440106")),
	KV("majors", FN(majors_one)),
	KV("salary_min", I(8000)),
	KV("salary_max", I(12000)),
	KV("posted_at", I(1700000000)),
	KV("expires_at", I(1800000000)),
	END,
};

static const struct kv *const bases[RECORD_KINDS] = {
	[RECORD_STUDENT] = student_base,
	[RECORD_RESUME] = resume_base,
	[RECORD_COMPANY] = company_base,
	[RECORD_POSTING] = posting_base,
};

/* ---- list values for the error table ---- */

static void strs(msgpack_packer *pk, const char *const *v, size_t n)
{
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		pstr(pk, v[i]);
}

#define STRS_FN(name, ...)                                             \
	static void name(msgpack_packer *pk)                           \
	{                                                              \
		static const char *const v_[] = { __VA_ARGS__ };       \
		strs(pk, v_, sizeof(v_) / sizeof(v_[0]));              \
	}

STRS_FN(skills_empty3, "a", "b", "c", " ")
STRS_FN(skills_13, "1", "2", "3", "4", "5", "6", "7", "8", "9", "10",
	"11", "12", "13")
STRS_FN(skills_long1, "a",
	"0123456789012345678901234567890123456789012345678901234567890"
	"12345678901234567890123456789012345678901234567890")
STRS_FN(cities_bad1, "440100", "123456")
STRS_FN(cats_empty0, "")
STRS_FN(majors_bad1, "0809", "99")

static void skills_int1(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	pstr(pk, "a");
	msgpack_pack_int(pk, 5);
}

static void certs_int0(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_int(pk, 1);
}

static void exp_empty(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 0);
}

static void exp_kind_bad(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 1);
	pstr(pk, "kind"); pstr(pk, "job");
}

static void exp_not_map(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_int(pk, 5);
}

static void exp_start_after_end(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	msgpack_pack_map(pk, 1);
	pstr(pk, "kind"); pstr(pk, "campus");
	msgpack_pack_map(pk, 3);
	pstr(pk, "kind"); pstr(pk, "project");
	pstr(pk, "start"); msgpack_pack_int(pk, 200);
	pstr(pk, "end"); msgpack_pack_int(pk, 100);
}

static void exp_start_negative(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 2);
	pstr(pk, "kind"); pstr(pk, "work");
	pstr(pk, "start"); msgpack_pack_int(pk, -1);
}

static void exp_title_int(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 2);
	pstr(pk, "kind"); pstr(pk, "work");
	pstr(pk, "title"); msgpack_pack_int(pk, 5);
}

static void exp_kind_twice(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 2);
	pstr(pk, "kind"); pstr(pk, "work");
	pstr(pk, "kind"); pstr(pk, "work");
}

static void exp_as_map(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	pstr(pk, "kind"); pstr(pk, "work");
}

static void lang_no_name(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 1);
	pstr(pk, "level"); pstr(pk, "CET-6");
}

static void lang_empty_name1(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	msgpack_pack_map(pk, 1);
	pstr(pk, "name"); pstr(pk, "英语");
	msgpack_pack_map(pk, 1);
	pstr(pk, "name"); pstr(pk, "　");
}

static void cohorts_bad1(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	msgpack_pack_int(pk, 2025);
	msgpack_pack_int(pk, 1999);
}

static void cohorts_str1(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	msgpack_pack_double(pk, 2025.0);
	pstr(pk, "2026");
}

/* ---- the error table ---- */

#define X (PROTO_INVALID_ARGUMENT)
#define L (PROTO_TOO_LARGE)

struct err_case {
	enum record_kind kind;
	struct kv over[3];
	enum proto_code code;
	const char *field;
};

#define ST RECORD_STUDENT
#define RE RECORD_RESUME
#define CO RECORD_COMPANY
#define PO RECORD_POSTING

static const struct err_case err_cases[] = {
	/* student */
	{ ST, { KV("id", OMIT) }, X, "id" },
	{ ST, { KV("id", I(42)) }, X, "id" },
	{ ST, { KV("id", NIL) }, X, "id" },
	{ ST, { KV("id", S("")) }, X, "id" },
	{ ST, { KV("id", S(" \t　")) }, X, "id" },
	{ ST, { KV("id", S("123456789012345678901234567890123")) }, X, "id" },
	{ ST, { KV("id", S("学号1")) }, X, "id" },
	{ ST, { KV("id", S("a\tb")) }, X, "id" },
	{ ST, { DUP("id", S("x")) }, X, "id" },
	{ ST, { KV("education", S("小学")) }, X, "education" },
	{ ST, { KV("education", OMIT) }, X, "education" },
	{ ST, { KV("education", B("\xff")) }, X, "education" },
	{ ST, { KV("major_code", S("999999")) }, X, "major_code" },
	{ ST, { KV("major_code", I(80901)) }, X, "major_code" },
	{ ST, { KV("major_code", OMIT) }, X, "major_code" },
	{ ST, { KV("major", I(1)) }, X, "major" },
	{ ST, { KV("major", S("计算机\xe8")) }, X, "major" },
	{ ST, { KV("school", S("0123456789012345678901234567890123456789"
			      "0123456789012345678901234567890123456789"
			      "01234567890123456789X")) }, L, "school" },
	{ ST, { KV("college", BOOL(1)) }, X, "college" },
	{ ST, { KV("grad_year", I(1999)) }, X, "grad_year" },
	{ ST, { KV("grad_year", I(2101)) }, X, "grad_year" },
	{ ST, { KV("grad_year", I(-5)) }, X, "grad_year" },
	{ ST, { KV("grad_year", S("2025")) }, X, "grad_year" },
	{ ST, { KV("grad_year", F(2025.5)) }, X, "grad_year" },
	{ ST, { KV("grad_year", F(NAN)) }, X, "grad_year" },
	{ ST, { KV("grad_year", F(INFINITY)) }, X, "grad_year" },
	{ ST, { KV("grad_year", F32(-INFINITY)) }, X, "grad_year" },
	{ ST, { KV("grad_year", F(1e300)) }, X, "grad_year" },
	{ ST, { KV("grad_year", OMIT) }, X, "grad_year" },
	{ ST, { KV("grad_month", I(0)) }, X, "grad_month" },
	{ ST, { KV("grad_month", I(13)) }, X, "grad_month" },
	{ ST, { KV("origin", S("440000")) }, X, "origin" },
	{ ST, { KV("origin", S("440100")) }, X, "origin" },
	{ ST, { KV("origin", S("999999")) }, X, "origin" },
	{ ST, { KV("origin", OMIT) }, X, "origin" },
	{ ST, { KV("origin", NIL) }, X, "origin" },
	{ ST, { KV("origin", OMIT), KV("region", S("mainland")) }, X,
	  "origin" },
	{ ST, { KV("origin", S("440000")), KV("region", S("hk")) }, X,
	  "origin" },
	{ ST, { KV("political", S("党员")) }, X, "political" },
	{ ST, { KV("region", S("cn")) }, X, "region" },
	{ ST, { KV("origin", OMIT), KV("region", S("cn")) }, X, "region" },
	{ ST, { KV("bound", I(1)) }, X, "bound" },
	{ ST, { KV("bound", S("true")) }, X, "bound" },
	{ ST, { KV("directed_region", S("12")) }, X, "directed_region" },
	/* first bad field in canonical order, whatever the request order */
	{ ST, { KV("bound", I(1)), KV("grad_year", I(1)) }, X, "grad_year" },
	/* resume */
	{ RE, { KV("student_id", OMIT) }, X, "student_id" },
	{ RE, { KV("student_id", S("学生")) }, X, "student_id" },
	{ RE, { KV("has_photo", I(1)) }, X, "has_photo" },
	{ RE, { KV("intro", I(5)) }, X, "intro" },
	{ RE, { KV("skills", S("C")) }, X, "skills" },
	{ RE, { KV("skills", FN(skills_empty3)) }, X, "skills[3]" },
	{ RE, { KV("skills", FN(skills_int1)) }, X, "skills[1]" },
	{ RE, { KV("skills", FN(skills_13)) }, L, "skills" },
	{ RE, { KV("skills", FN(skills_long1)) }, L, "skills[1]" },
	{ RE, { KV("desired_cities", FN(cities_bad1)) }, X,
	  "desired_cities[1]" },
	{ RE, { KV("desired_categories", FN(cats_empty0)) }, X,
	  "desired_categories[0]" },
	{ RE, { KV("salary_min", I(-1)) }, X, "salary_min" },
	{ RE, { KV("salary_max", I(1000001)) }, X, "salary_max" },
	{ RE, { KV("salary_min", I(9000)) }, X, "salary_min" },
	{ RE, { KV("salary_min", F(5000.25)) }, X, "salary_min" },
	{ RE, { KV("experiences", FN(exp_empty)) }, X, "experiences[0].kind" },
	{ RE, { KV("experiences", FN(exp_kind_bad)) }, X,
	  "experiences[0].kind" },
	{ RE, { KV("experiences", FN(exp_not_map)) }, X, "experiences[0]" },
	{ RE, { KV("experiences", FN(exp_start_after_end)) }, X,
	  "experiences[1].start" },
	{ RE, { KV("experiences", FN(exp_start_negative)) }, X,
	  "experiences[0].start" },
	{ RE, { KV("experiences", FN(exp_title_int)) }, X,
	  "experiences[0].title" },
	{ RE, { KV("experiences", FN(exp_kind_twice)) }, X,
	  "experiences[0].kind" },
	{ RE, { KV("experiences", FN(exp_as_map)) }, X, "experiences" },
	{ RE, { KV("certificates", FN(certs_int0)) }, X, "certificates[0]" },
	{ RE, { KV("awards", S("x")) }, X, "awards" },
	{ RE, { KV("languages", FN(lang_no_name)) }, X, "languages[0].name" },
	{ RE, { KV("languages", FN(lang_empty_name1)) }, X,
	  "languages[1].name" },
	/* company */
	{ CO, { KV("id", OMIT) }, X, "id" },
	{ CO, { KV("id", S("0123456789012345678901234567890123456789"
			  "0123456789012345678901234")) }, X, "id" },
	{ CO, { KV("id", S("C\x01")) }, X, "id" },
	{ CO, { KV("id", S("C\xc2\x85")) }, X, "id" },
	{ CO, { KV("name", OMIT) }, X, "name" },
	{ CO, { KV("name", S("  ")) }, X, "name" },
	{ CO, { KV("industry", I(5)) }, X, "industry" },
	{ CO, { KV("city", S("440199")) }, X, "city" },
	/* posting */
	{ PO, { KV("company_id", OMIT) }, X, "company_id" },
	{ PO, { KV("title", OMIT) }, X, "title" },
	{ PO, { KV("city", OMIT) }, X, "city" },
	{ PO, { KV("city", S("000000")) }, X, "city" },
	{ PO, { KV("education_min", S("高中")) }, X, "education_min" },
	{ PO, { KV("majors", FN(majors_bad1)) }, X, "majors[1]" },
	{ PO, { KV("cohorts", FN(cohorts_bad1)) }, X, "cohorts[1]" },
	{ PO, { KV("cohorts", FN(cohorts_str1)) }, X, "cohorts[1]" },
	{ PO, { KV("political", S("abc")) }, X, "political" },
	{ PO, { KV("headcount", I(0)) }, X, "headcount" },
	{ PO, { KV("headcount", I(100001)) }, X, "headcount" },
	{ PO, { KV("posted_at", I(-1)) }, X, "posted_at" },
	{ PO, { KV("expires_at", I(1700000000)) }, X, "expires_at" },
	{ PO, { KV("expires_at", F(1.5)) }, X, "expires_at" },
	{ PO, { KV("salary_min", I(20000)) }, X, "salary_min" },
	{ PO, { KV("closed", S("not a bool, but ignored")),
		KV("salary_max", I(-3)) }, X, "salary_max" },
};

static void test_errors(void)
{
	size_t n = sizeof(err_cases) / sizeof(err_cases[0]);
	struct record_out out;
	struct proto_error err;

	record_out_init(&out);
	for (size_t i = 0; i < n; i++) {
		const struct err_case *c = &err_cases[i];
		int rc = validate(c->kind, bases[c->kind], c->over, &small,
				  &out, &err);

		CHECK_EQ_INT(rc, -1);
		CHECK_EQ_INT(err.code, c->code);
		CHECK_EQ_STR(err.field, c->field);
		CHECK(strlen(err.message) > strlen(err.field));
		if (rc != -1 || err.code != c->code ||
		    strcmp(err.field, c->field))
			fprintf(stderr, "  error case %zu: got %d \"%s\" %s\n",
				i, (int)err.code, err.field, err.message);
	}
	record_out_destroy(&out);
}

static void test_messages(void)
{
	static const struct kv over[] = { KV("grad_year", I(1999)), END };
	struct record_out out;
	struct proto_error err;

	record_out_init(&out);
	CHECK_EQ_INT(validate(ST, student_base, over, &small, &out, &err), -1);
	CHECK_EQ_STR(err.message, "grad_year must be between 2000 and 2100");
	record_out_destroy(&out);
}

/* ---- stored forms ---- */

static void check_stored(const struct record_out *out,
			 const msgpack_sbuffer *want, const char *what)
{
	bool same = out->stored.size == want->size &&
		    !memcmp(out->stored.data, want->data, want->size);

	CHECK(same);
	if (!same)
		fprintf(stderr, "  stored form of %s differs (%zu vs %zu "
			"bytes)\n", what, out->stored.size, want->size);
}

/* A stored form, validated again as a request, comes back unchanged. */
static void check_fixed_point(enum record_kind kind,
			      const struct record_out *out)
{
	struct record_out again;
	struct proto_error err;

	record_out_init(&again);
	CHECK_EQ_INT(run(kind, &out->stored, &small, &again, &err), 0);
	check_stored(&again, &out->stored, record_kind_name(kind));
	record_out_destroy(&again);
}

static void kstr(msgpack_packer *pk, const char *k, const char *v)
{
	pstr(pk, k);
	pstr(pk, v);
}

static void kint(msgpack_packer *pk, const char *k, int64_t v)
{
	pstr(pk, k);
	msgpack_pack_int64(pk, v);
}

static void kbool(msgpack_packer *pk, const char *k, bool v)
{
	pstr(pk, k);
	if (v)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

/* Full-width folding, trimming, bin strings, integral floats, unknown
 * fields and defaults, all in one student. */
static void test_student_stored(void)
{
	static const struct kv req[] = {
		KV("name", S("张三")),
		KV("bound", BOOL(1)),
		KV("grad_year", F(2025.0)),
		KV("school", S(" 中山大学（南校区）　")),
		KV("major_code", B("０８０９０１")),
		KV("education", S("　本科")),
		KV("id", S("Ａ１２３")),
		KV("college", S("   ")),
		KV("political", NIL),
		KV("id_number", S("440106200001011234")),
		KV("origin", S("441900")),
		END,
	};
	msgpack_sbuffer want;
	msgpack_packer pk;
	struct record_out out;
	struct proto_error err;

	record_out_init(&out);
	CHECK_EQ_INT(validate(ST, req, NULL, &small, &out, &err), 0);
	CHECK_EQ_STR(out.id, "A123");
	CHECK_EQ_INT(out.id_len, 4);
	CHECK(!out.has_ref);
	msgpack_sbuffer_init(&want);
	msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 9);
	kstr(&pk, "id", "A123");
	kstr(&pk, "education", "本科");
	kstr(&pk, "major_code", "080901");
	kstr(&pk, "school", "中山大学(南校区)");
	kint(&pk, "grad_year", 2025);
	kint(&pk, "grad_month", 6);
	kstr(&pk, "origin", "441900");
	kstr(&pk, "region", "mainland");
	kbool(&pk, "bound", true);
	check_stored(&out, &want, "student");
	check_fixed_point(ST, &out);
	msgpack_sbuffer_destroy(&want);
	record_out_destroy(&out);
}

static void skills_dup(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 5);
	pstr(pk, "C");
	pstr(pk, "Python");
	pstr(pk, "Ｃ");
	pstr(pk, " Python ");
	pstr(pk, "Go");
}

static void langs_one(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 2);
	pstr(pk, "level"); pstr(pk, "CET-6");
	pstr(pk, "name"); pstr(pk, "英语");
}

static void cities_dup(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 3);
	pstr(pk, "440100");
	pstr(pk, "440106");
	pstr(pk, "４４０１００");
}

static void test_resume_stored(void)
{
	static const struct kv over[] = {
		KV("skills", FN(skills_dup)),
		KV("languages", FN(langs_one)),
		KV("desired_cities", FN(cities_dup)),
		KV("salary_max", F32(8000.0)),
		KV("photo_url", S("dropped")),
		END,
	};
	msgpack_sbuffer want;
	msgpack_packer pk;
	struct record_out out;
	struct proto_error err;

	record_out_init(&out);
	CHECK_EQ_INT(validate(RE, resume_base, over, &small, &out, &err), 0);
	CHECK_EQ_STR(out.id, "S2024001");
	CHECK(out.has_ref);
	CHECK_EQ_INT(out.ref_kind, RECORD_STUDENT);
	CHECK_EQ_STR(out.ref_id, "S2024001");
	CHECK_EQ_STR(out.ref_field, "student_id");
	msgpack_sbuffer_init(&want);
	msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 9);
	kstr(&pk, "student_id", "S2024001");
	kbool(&pk, "has_photo", false);
	kstr(&pk, "intro", "喜欢写代码");
	pstr(&pk, "skills");
	msgpack_pack_array(&pk, 3);
	pstr(&pk, "C");
	pstr(&pk, "Python");
	pstr(&pk, "Go");
	pstr(&pk, "desired_cities");
	msgpack_pack_array(&pk, 2);
	pstr(&pk, "440100");
	pstr(&pk, "440106");
	kint(&pk, "salary_min", 5000);
	kint(&pk, "salary_max", 8000);
	pstr(&pk, "experiences");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 3);
	kstr(&pk, "kind", "internship");
	kstr(&pk, "org", "某银行");
	kint(&pk, "start", 1700000000);
	pstr(&pk, "languages");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 2);
	kstr(&pk, "name", "英语");
	kstr(&pk, "level", "CET-6");
	check_stored(&out, &want, "resume");
	check_fixed_point(RE, &out);
	msgpack_sbuffer_destroy(&want);
	record_out_destroy(&out);
}

static void test_company_stored(void)
{
	static const struct kv over[] = {
		KV("id", S(" （香港）Ｃ１ ")),
		KV("size", S("100-499人")),
		KV("industry", NIL),
		END,
	};
	msgpack_sbuffer want;
	msgpack_packer pk;
	struct record_out out;
	struct proto_error err;

	record_out_init(&out);
	CHECK_EQ_INT(validate(CO, company_base, over, &small, &out, &err), 0);
	CHECK_EQ_STR(out.id, "(香港)C1");
	CHECK(!out.has_ref);
	msgpack_sbuffer_init(&want);
	msgpack_packer_init(&pk, &want, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	kstr(&pk, "id", "(香港)C1");
	kstr(&pk, "name", "某某科技有限公司");
	kstr(&pk, "size", "100-499人");
	kstr(&pk, "city", "440100");
	check_stored(&out, &want, "company");
	check_fixed_point(CO, &out);
	msgpack_sbuffer_destroy(&want);
	record_out_destroy(&out);
}

static void cohorts_two(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	msgpack_pack_int(pk, 2025);
	msgpack_pack_float(pk, 2026.0f);
}

/* The posting stored form without posted_at given: now, closed false. */
static void posting_want(msgpack_sbuffer *want, int64_t posted_at,
			 bool closed)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(want);
	msgpack_packer_init(&pk, want, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 12);
	kstr(&pk, "id", "P001");
	kstr(&pk, "company_id", "C001");
	kstr(&pk, "title", "Java 开发工程师");
	kstr(&pk, "city", "440106");
	kstr(&pk, "education_min", "专科");
	pstr(&pk, "majors");
	msgpack_pack_array(&pk, 1);
	pstr(&pk, "0809");
	pstr(&pk, "cohorts");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 2025);
	msgpack_pack_int(&pk, 2026);
	kint(&pk, "salary_min", 8000);
	kint(&pk, "salary_max", 12000);
	kint(&pk, "headcount", 1);
	kint(&pk, "posted_at", posted_at);
	kbool(&pk, "closed", closed);
}

static const struct kv posting_now[] = {
	KV("posted_at", OMIT),
	KV("expires_at", OMIT),
	KV("cohorts", FN(cohorts_two)),
	KV("closed", BOOL(1)),
	END,
};

static void test_posting_stored(void)
{
	msgpack_sbuffer want;
	struct record_out out;
	struct proto_error err;

	record_out_init(&out);
	CHECK_EQ_INT(validate(PO, posting_base, posting_now, &small, &out,
			      &err), 0);
	CHECK_EQ_STR(out.id, "P001");
	CHECK(out.has_ref);
	CHECK_EQ_INT(out.ref_kind, RECORD_COMPANY);
	CHECK_EQ_STR(out.ref_id, "C001");
	CHECK_EQ_STR(out.ref_field, "company_id");
	CHECK(!out.posted_at_given);
	posting_want(&want, NOW, false);
	check_stored(&out, &want, "posting");
	check_fixed_point(PO, &out);
	msgpack_sbuffer_destroy(&want);
	record_out_destroy(&out);
}

/* ---- accepted variants ---- */

struct ok_case {
	enum record_kind kind;
	struct kv over[3];
};

static const struct ok_case ok_cases[] = {
	{ ST, { KV("origin", OMIT), KV("region", S("hk")) } },
	{ ST, { KV("origin", OMIT), KV("region", S("ｍｏ")) } },
	{ ST, { KV("origin", OMIT), KV("region", S("tw")) } },
	{ ST, { KV("origin", S("441900")) } },
	{ ST, { KV("origin", S("440106")), KV("region", S("hk")) } },
	{ ST, { KV("id", B("S1")), KV("grad_year", F32(2030.0)) } },
	{ ST, { KV("grad_year", F(2100.0)), KV("grad_month", I(12)) } },
	{ ST, { KV("political", S("中共预备党员")) } },
	{ ST, { KV("political", S("九三学社社员")) } },
	{ ST, { KV("directed_region", S("440000")) } },
	{ ST, { KV("education", S("博士")), KV("major_code", S("08")) } },
	{ ST, { KV("id", S("  !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~  ")) } },
	{ RE, { KV("salary_min", I(8000)) } },
	{ RE, { KV("skills", NIL), KV("intro", S("　")) } },
	{ RE, { KV("salary_min", F(-0.0)) } },
	{ CO, { KV("id", S("0123456789012345678901234567890123456789"
			  "012345678901234567890123")) } },
	{ CO, { KV("id", S("公司\t")), KV("city", S("440000")) } },
	{ PO, { KV("expires_at", I(1700000001)) } },
	{ PO, { KV("posted_at", F(1.7e9)), KV("headcount", I(100000)) } },
};

static void test_accepted(void)
{
	size_t n = sizeof(ok_cases) / sizeof(ok_cases[0]);
	struct record_out out;
	struct proto_error err;

	record_out_init(&out);
	for (size_t i = 0; i < n; i++) {
		const struct ok_case *c = &ok_cases[i];
		int rc = validate(c->kind, bases[c->kind], c->over, &small,
				  &out, &err);

		CHECK_EQ_INT(rc, 0);
		CHECK(out.stored.size > 0);
		if (rc)
			fprintf(stderr, "  ok case %zu: \"%s\" %s\n", i,
				err.field, err.message);
	}
	record_out_destroy(&out);
}

/* ---- whole-map errors ---- */

static void test_map_errors(void)
{
	static const struct kv many[] = {
		KV("a", I(1)), KV("b", I(1)),
		KV("c", I(1)), KV("d", I(1)),
		KV("e", I(1)), KV("f", I(1)),
		KV("g", I(1)), KV("h", I(1)),
		KV("i", I(1)), KV("j", I(1)),
		END,
	};
	msgpack_sbuffer req;
	msgpack_packer pk;
	struct record_out out;
	struct proto_error err;

	record_out_init(&out);
	msgpack_sbuffer_init(&req);
	msgpack_packer_init(&pk, &req, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 0);
	CHECK_EQ_INT(run(ST, &req, &small, &out, &err), -1);
	CHECK_EQ_INT(err.code, PROTO_INVALID_ARGUMENT);
	CHECK_EQ_STR(err.field, "");

	msgpack_sbuffer_clear(&req);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_int(&pk, 1);
	pstr(&pk, "x");
	CHECK_EQ_INT(run(CO, &req, &small, &out, &err), -1);
	CHECK_EQ_INT(err.code, PROTO_INVALID_ARGUMENT);

	/* 3 + 10 keys: over the limit of 12 even though most are unknown */
	CHECK_EQ_INT(validate(CO, company_base, many, &small, &out, &err), -1);
	CHECK_EQ_INT(err.code, PROTO_TOO_LARGE);
	CHECK_EQ_INT(out.stored.size, 0);
	msgpack_sbuffer_destroy(&req);
	record_out_destroy(&out);
}

/* Long lists take the allocated duplicate table; the first copy is kept. */
static void skills_300(msgpack_packer *pk)
{
	char s[16];

	msgpack_pack_array(pk, 300);
	for (int i = 0; i < 300; i++) {
		snprintf(s, sizeof(s), "skill%d", i % 100);
		pstr(pk, s);
	}
}

static void test_long_dedup(void)
{
	static const struct kv over[] = {
		KV("skills", FN(skills_300)), END,
	};
	struct proto_limits lim;
	struct record_out out;
	struct proto_error err;
	msgpack_object obj;
	msgpack_zone zone;
	size_t off = 0;

	proto_limits_default(&lim);
	record_out_init(&out);
	CHECK_EQ_INT(validate(RE, resume_base, over, &lim, &out, &err), 0);
	msgpack_zone_init(&zone, 1024);
	CHECK_EQ_INT(msgpack_unpack(out.stored.data, out.stored.size, &off,
				    &zone, &obj), MSGPACK_UNPACK_SUCCESS);
	CHECK_EQ_INT(obj.type, MSGPACK_OBJECT_MAP);
	CHECK(obj.via.map.ptr[3].key.via.str.size == 6 &&
	      !memcmp(obj.via.map.ptr[3].key.via.str.ptr, "skills", 6));
	CHECK_EQ_INT(obj.via.map.ptr[3].val.via.array.size, 100);
	CHECK(!memcmp(obj.via.map.ptr[3].val.via.array.ptr[99].via.str.ptr,
		      "skill99", 7));
	msgpack_zone_destroy(&zone);
	record_out_destroy(&out);
}

/* ---- keys ---- */

static int key_of(const struct kv *req, const char *field, char *id,
		  size_t *len, struct proto_error *err)
{
	msgpack_sbuffer sb;
	msgpack_object obj;
	msgpack_zone zone;
	size_t off = 0;
	int rc;

	msgpack_sbuffer_init(&sb);
	pack_request(&sb, req, NULL);
	msgpack_zone_init(&zone, 256);
	msgpack_unpack(sb.data, sb.size, &off, &zone, &obj);
	rc = record_key(&obj, field, id, len, err);
	msgpack_zone_destroy(&zone);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static void test_keys(void)
{
	static const struct kv fw[] = { KV("id", S(" Ａ１（香港）　")),
					KV("x", I(1)), END };
	static const struct kv sid[] = { KV("student_id", B("S2024001")),
					 END };
	static const struct kv sid_bad[] = {
		KV("student_id", S("学生")), END };
	static const struct kv id_cjk[] = {
		KV("id", S("学生")), END };
	static const struct kv none[] = { KV("x", S("1")), END };
	static const struct kv num[] = { KV("id", I(5)), END };
	static const struct kv blank[] = { KV("id", S("　")), END };
	static const struct kv twice[] = { KV("id", S("a")),
					   DUP("id", S("b")), END };
	char id[RECORD_ID_BYTES_MAX + 1];
	struct proto_error err;
	size_t len;

	CHECK_EQ_INT(key_of(fw, "id", id, &len, &err), 0);
	CHECK_EQ_STR(id, "A1(香港)");
	CHECK_EQ_INT(len, strlen("A1(香港)"));
	CHECK_EQ_INT(key_of(sid, "student_id", id, &len, &err), 0);
	CHECK_EQ_STR(id, "S2024001");
	CHECK_EQ_INT(key_of(sid_bad, "student_id", id, &len, &err), -1);
	CHECK_EQ_STR(err.field, "student_id");
	/* the generic id rule accepts what the student rule refuses */
	CHECK_EQ_INT(key_of(id_cjk, "id", id, &len, &err), 0);
	CHECK_EQ_INT(key_of(none, "id", id, &len, &err), -1);
	CHECK_EQ_INT(err.code, PROTO_INVALID_ARGUMENT);
	CHECK_EQ_STR(err.field, "id");
	CHECK_EQ_INT(key_of(num, "id", id, &len, &err), -1);
	CHECK_EQ_INT(key_of(blank, "id", id, &len, &err), -1);
	CHECK_EQ_INT(key_of(twice, "id", id, &len, &err), -1);
}

/* ---- stored postings ---- */

static void test_merge_close(void)
{
	static const struct kv given[] = {
		KV("posted_at", I(1600000000)), KV("expires_at", OMIT),
		KV("cohorts", FN(cohorts_two)), END,
	};
	msgpack_sbuffer closed, want, again;
	struct record_out out;
	struct proto_error err;
	bool was;

	record_out_init(&out);
	msgpack_sbuffer_init(&closed);
	msgpack_sbuffer_init(&again);
	CHECK_EQ_INT(validate(PO, posting_base, posting_now, &small, &out,
			      &err), 0);
	CHECK_EQ_INT(record_posting_close(out.stored.data, out.stored.size,
					  &closed, &was), 0);
	CHECK(!was);
	posting_want(&want, NOW, true);
	CHECK(closed.size == want.size &&
	      !memcmp(closed.data, want.data, want.size));
	msgpack_sbuffer_destroy(&want);
	CHECK_EQ_INT(record_posting_close(closed.data, closed.size, &again,
					  &was), 0);
	CHECK(was);
	CHECK(again.size == closed.size &&
	      !memcmp(again.data, closed.data, closed.size));

	/* A later put without posted_at keeps the first time and closed. */
	now = NOW + 500;
	CHECK_EQ_INT(validate(PO, posting_base, posting_now, &small, &out,
			      &err), 0);
	now = NOW;
	CHECK_EQ_INT(record_posting_merge(&out, closed.data, closed.size), 0);
	CHECK(out.stored.size == closed.size &&
	      !memcmp(out.stored.data, closed.data, closed.size));

	/* One that gives posted_at keeps its own, and still closed. */
	CHECK_EQ_INT(validate(PO, posting_base, given, &small, &out, &err),
		     0);
	CHECK(out.posted_at_given);
	CHECK_EQ_INT(record_posting_merge(&out, closed.data, closed.size), 0);
	posting_want(&want, 1600000000, true);
	check_stored(&out, &want, "merged posting");
	msgpack_sbuffer_destroy(&want);

	/* Undecodable old records leave out unchanged. */
	posting_want(&want, 1600000000, true);
	CHECK_EQ_INT(record_posting_merge(&out, "\xc1", 1), -EINVAL);
	CHECK_EQ_INT(record_posting_merge(&out, "\x93\x01\x02\x03", 4),
		     -EINVAL);
	check_stored(&out, &want, "posting after a failed merge");
	CHECK_EQ_INT(record_posting_close("\x01", 1, &again, &was), -EINVAL);
	CHECK_EQ_INT(record_posting_close(closed.data, closed.size - 1,
					  &again, &was), -EINVAL);
	msgpack_sbuffer_destroy(&want);
	msgpack_sbuffer_destroy(&again);
	msgpack_sbuffer_destroy(&closed);
	record_out_destroy(&out);
}

static void test_kind_names(void)
{
	CHECK_EQ_STR(record_kind_name(RECORD_STUDENT), "student");
	CHECK_EQ_STR(record_kind_name(RECORD_RESUME), "resume");
	CHECK_EQ_STR(record_kind_name(RECORD_COMPANY), "company");
	CHECK_EQ_STR(record_kind_name(RECORD_POSTING), "posting");
}

int main(void)
{
	char errbuf[256];
	int rc = ref_load(&ref, "data", errbuf, sizeof(errbuf));

	CHECK_EQ_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "test_record: %s\n", errbuf);
		return check_exit("test_record");
	}
	proto_limits_default(&small);
	small.string_bytes_max = 100;
	small.list_len_max = 12;
	test_errors();
	test_messages();
	test_student_stored();
	test_resume_stored();
	test_company_stored();
	test_posting_stored();
	test_accepted();
	test_map_errors();
	test_long_dedup();
	test_keys();
	test_merge_close();
	test_kind_names();
	ref_free(ref);
	return check_exit("test_record");
}
