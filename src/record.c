/*
 * record: validation and the canonical stored form of the four record kinds.
 *
 * The rpc layer calls record_validate() for every put (and put_many item)
 * and record_key() for every get and delete; the storage layer calls
 * record_posting_merge() and record_posting_close() inside its write
 * transaction.  Everything here is a pure function over caller memory, safe
 * from any thread.
 *
 * One validator serves all kinds: each kind is a fixed table of fields in
 * canonical order, with a type, a check and flags.  A request map is first
 * sorted into one slot per table field (unknown keys are dropped there),
 * then the fields are checked and packed in table order, so the first bad
 * field reported is the first in canonical order and the stored form comes
 * out in that order with no second pass.  Strings are copied into the
 * output buffer and normalised in place, so a put costs no allocation
 * beyond the output buffer's growth.  Map, array and string headers
 * depend on counts known only afterwards (absent fields, dropped
 * duplicates, trimmed lengths); they are inserted in front of their body
 * once the body is packed, which moves that body by a few bytes.
 */
#include "record.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "ref.h"
#include "text.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The most fields any kind's table has; slots live on the stack. */
#define FIELDS_MAX 24

/* A student id is at most 32 bytes, any other id at most 64. */
#define STUDENT_ID_BYTES_MAX 32

/*
 * An id's raw bytes before folding and trimming.  A valid id of 64 bytes
 * may arrive as 192 bytes of full-width forms, plus surrounding white
 * space; over 1 KiB is refused as an invalid id whatever it would trim to,
 * both here and in record_key(), which normalises into a stack buffer of
 * this size.
 */
#define ID_RAW_BYTES_MAX 1024

/* Room reserved in front of a string body for its header (str32). */
#define STR_HEADER_BYTES_MAX 5

/* Lists up to half this many elements check duplicates without an
 * allocation; longer ones allocate one hash table for the check. */
#define DEDUP_STACK_SLOTS 128

enum field_type {
	FT_STR,
	FT_INT,
	FT_BOOL,
	FT_STRS,  /* [str] */
	FT_INTS,  /* [int] */
	FT_MAPS,  /* [map], each checked against field.sub */
};

/* What a string (or each string of a list) must be, after normalising. */
enum field_check {
	FC_TEXT,        /* anything */
	FC_STUDENT_ID,  /* 1-32 printable ASCII */
	FC_ANY_ID,      /* 1-64 bytes, no control characters */
	FC_EDUCATION,
	FC_MAJOR,       /* ref_major_known */
	FC_DIVISION,    /* any known division code */
	FC_ORIGIN,      /* ref_division_origin_ok */
	FC_POLITICAL,
	FC_REGION,
	FC_EXP_KIND,
};

#define FF_REQUIRED    0x01u
#define FF_DEFAULT     0x02u /* absent: pack def_str / def_int */
#define FF_NOW         0x04u /* absent: pack the server's clock */
#define FF_KEY         0x08u /* the record's id: copied to out->id */
#define FF_REF         0x10u /* the record referred to: out->ref_id */
#define FF_DEDUP       0x20u /* a string list: later duplicates dropped */
#define FF_MAINLAND    0x40u /* required when region is mainland */
#define FF_STORED_ONLY 0x80u /* never read from a request */

/* How an integer field compares with an earlier field of the same map,
 * when both were given. */
enum pair_rule {
	PAIR_NONE,
	PAIR_NOT_BELOW, /* this >= pair, else the pair field is blamed */
	PAIR_ABOVE,     /* this > pair, else this field is blamed */
};

struct table;

struct field {
	const char *name;
	enum field_type type;
	enum field_check check;
	unsigned flags;
	int64_t min, max;          /* integers and integer lists */
	int64_t def_int;           /* FF_DEFAULT integers and bools */
	const char *def_str;       /* FF_DEFAULT strings */
	const char *pair;          /* name of the field compared with this */
	enum pair_rule rule;
	enum record_kind ref_kind; /* FF_REF */
	const struct table *sub;   /* FT_MAPS */
};

struct table {
	const struct field *fields;
	size_t count;
};

#define TEXT(n) { .name = n, .type = FT_STR, .check = FC_TEXT }
#define TEXTS(n, fl) { .name = n, .type = FT_STRS, .check = FC_TEXT, \
		       .flags = fl }
#define STR(n, c, fl) { .name = n, .type = FT_STR, .check = c, .flags = fl }
#define TIME(n) { .name = n, .type = FT_INT, .min = 0, .max = INT64_MAX }
#define SALARY_MAX 1000000

static const struct field experience_fields[] = {
	STR("kind", FC_EXP_KIND, FF_REQUIRED),
	TEXT("title"),
	TEXT("org"),
	TEXT("desc"),
	TIME("start"),
	{ .name = "end", .type = FT_INT, .min = 0, .max = INT64_MAX,
	  .pair = "start", .rule = PAIR_NOT_BELOW },
};

static const struct field language_fields[] = {
	STR("name", FC_TEXT, FF_REQUIRED),
	TEXT("level"),
};

static const struct table experience_table = {
	experience_fields, ARRAY_LEN(experience_fields)
};
static const struct table language_table = {
	language_fields, ARRAY_LEN(language_fields)
};

static const struct field student_fields[] = {
	STR("id", FC_STUDENT_ID, FF_REQUIRED | FF_KEY),
	STR("education", FC_EDUCATION, FF_REQUIRED),
	STR("major_code", FC_MAJOR, FF_REQUIRED),
	TEXT("major"),
	TEXT("school"),
	TEXT("college"),
	{ .name = "grad_year", .type = FT_INT, .min = 2000, .max = 2100,
	  .flags = FF_REQUIRED },
	{ .name = "grad_month", .type = FT_INT, .min = 1, .max = 12,
	  .flags = FF_DEFAULT, .def_int = 6 },
	STR("origin", FC_ORIGIN, FF_MAINLAND),
	STR("political", FC_POLITICAL, 0),
	{ .name = "region", .type = FT_STR, .check = FC_REGION,
	  .flags = FF_DEFAULT, .def_str = "mainland" },
	{ .name = "bound", .type = FT_BOOL, .flags = FF_DEFAULT },
	STR("directed_region", FC_DIVISION, 0),
};

static const struct field resume_fields[] = {
	{ .name = "student_id", .type = FT_STR, .check = FC_STUDENT_ID,
	  .flags = FF_REQUIRED | FF_KEY | FF_REF,
	  .ref_kind = RECORD_STUDENT },
	{ .name = "has_photo", .type = FT_BOOL, .flags = FF_DEFAULT },
	TEXT("intro"),
	TEXTS("skills", FF_DEDUP),
	TEXTS("desired_categories", FF_DEDUP),
	{ .name = "desired_cities", .type = FT_STRS, .check = FC_DIVISION,
	  .flags = FF_DEDUP },
	{ .name = "salary_min", .type = FT_INT, .max = SALARY_MAX },
	{ .name = "salary_max", .type = FT_INT, .max = SALARY_MAX,
	  .pair = "salary_min", .rule = PAIR_NOT_BELOW },
	{ .name = "experiences", .type = FT_MAPS, .sub = &experience_table },
	TEXTS("certificates", 0),
	TEXTS("awards", 0),
	{ .name = "languages", .type = FT_MAPS, .sub = &language_table },
};

static const struct field company_fields[] = {
	STR("id", FC_ANY_ID, FF_REQUIRED | FF_KEY),
	STR("name", FC_TEXT, FF_REQUIRED),
	TEXT("industry"),
	TEXT("size"),
	STR("city", FC_DIVISION, 0),
};

static const struct field posting_fields[] = {
	STR("id", FC_ANY_ID, FF_REQUIRED | FF_KEY),
	{ .name = "company_id", .type = FT_STR, .check = FC_ANY_ID,
	  .flags = FF_REQUIRED | FF_REF, .ref_kind = RECORD_COMPANY },
	STR("title", FC_TEXT, FF_REQUIRED),
	TEXT("category"),
	TEXT("description"),
	TEXTS("skills", FF_DEDUP),
	STR("city", FC_DIVISION, FF_REQUIRED),
	{ .name = "education_min", .type = FT_STR, .check = FC_EDUCATION,
	  .flags = FF_DEFAULT, .def_str = "专科" },
	{ .name = "majors", .type = FT_STRS, .check = FC_MAJOR },
	{ .name = "cohorts", .type = FT_INTS, .min = 2000, .max = 2100 },
	STR("political", FC_POLITICAL, 0),
	{ .name = "salary_min", .type = FT_INT, .max = SALARY_MAX },
	{ .name = "salary_max", .type = FT_INT, .max = SALARY_MAX,
	  .pair = "salary_min", .rule = PAIR_NOT_BELOW },
	{ .name = "headcount", .type = FT_INT, .min = 1, .max = 100000,
	  .flags = FF_DEFAULT, .def_int = 1 },
	{ .name = "posted_at", .type = FT_INT, .max = INT64_MAX,
	  .flags = FF_NOW },
	{ .name = "expires_at", .type = FT_INT, .max = INT64_MAX,
	  .pair = "posted_at", .rule = PAIR_ABOVE },
	{ .name = "closed", .type = FT_BOOL,
	  .flags = FF_DEFAULT | FF_STORED_ONLY },
};

_Static_assert(ARRAY_LEN(student_fields) <= FIELDS_MAX, "student fields");
_Static_assert(ARRAY_LEN(resume_fields) <= FIELDS_MAX, "resume fields");
_Static_assert(ARRAY_LEN(company_fields) <= FIELDS_MAX, "company fields");
_Static_assert(ARRAY_LEN(posting_fields) <= FIELDS_MAX, "posting fields");

static const struct table kind_tables[RECORD_KINDS] = {
	[RECORD_STUDENT] = { student_fields, ARRAY_LEN(student_fields) },
	[RECORD_RESUME] = { resume_fields, ARRAY_LEN(resume_fields) },
	[RECORD_COMPANY] = { company_fields, ARRAY_LEN(company_fields) },
	[RECORD_POSTING] = { posting_fields, ARRAY_LEN(posting_fields) },
};

static const char *const education_values[] = {
	"专科", "本科", "硕士", "博士", NULL
};
static const char *const political_values[] = {
	"中共党员", "中共预备党员", "共青团员", "民革党员", "民盟盟员",
	"民建会员", "民进会员", "农工党党员", "致公党党员", "九三学社社员",
	"台盟盟员", "无党派人士", "群众", NULL
};
static const char *const region_values[] = {
	"mainland", "hk", "mo", "tw", NULL
};
static const char *const exp_kind_values[] = {
	"internship", "project", "campus", "work", NULL
};

/* One validation: where it packs, what it checks against, where it is. */
struct vctx {
	const struct ref *ref;
	const struct proto_limits *limits;
	struct proto_error *err;
	struct record_out *out;
	msgpack_sbuffer *sb;
	msgpack_packer pk;
	int64_t now;
	bool mainland;                  /* the student's region */
	bool posted_at_given;
	const struct field *parent;     /* the list a nested map is in */
	uint32_t parent_index;
};

/* A request map sorted by table field. */
struct slots {
	const msgpack_object *val[FIELDS_MAX];
	bool dup[FIELDS_MAX];
	bool given[FIELDS_MAX];         /* an integer was given */
	int64_t num[FIELDS_MAX];
};

/* A normalised string packed in the output: body offset and length. */
struct span {
	size_t off;
	size_t len;
};

const char *record_kind_name(enum record_kind kind)
{
	switch (kind) {
	case RECORD_STUDENT: return "student";
	case RECORD_RESUME: return "resume";
	case RECORD_COMPANY: return "company";
	case RECORD_POSTING: return "posting";
	}
	return "unknown";
}

void record_out_init(struct record_out *out)
{
	memset(out, 0, sizeof(*out));
	msgpack_sbuffer_init(&out->stored);
}

void record_out_destroy(struct record_out *out)
{
	msgpack_sbuffer_destroy(&out->stored);
	record_out_init(out);
}

/* ---- errors ---- */

/* The request path of field f (element index, or -1) in v's map. */
static void field_path(const struct vctx *v, const struct field *f,
		       long index, char *buf, size_t len)
{
	int n = 0;

	buf[0] = '\0';
	if (v->parent)
		n = snprintf(buf, len, "%s[%u]%s", v->parent->name,
			     v->parent_index, f ? "." : "");
	if (n < 0 || (size_t)n >= len || !f)
		return;
	if (index >= 0)
		snprintf(buf + n, len - (size_t)n, "%s[%ld]", f->name, index);
	else
		snprintf(buf + n, len - (size_t)n, "%s", f->name);
}

/* Fails with a message that starts with the field's path: "grad_year must
 * be between 2000 and 2100".  f NULL names the map itself. */
__attribute__((format(printf, 5, 6)))
static int fail(struct vctx *v, const struct field *f, long index,
		enum proto_code code, const char *fmt, ...)
{
	char path[PROTO_FIELD_MAX];
	char what[PROTO_MESSAGE_MAX];
	va_list ap;

	field_path(v, f, index, path, sizeof(path));
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return proto_fail(v->err, code, path, "%s %s",
			  path[0] ? path : "the record", what);
}

static int fail_memory(struct vctx *v)
{
	return proto_fail(v->err, PROTO_INTERNAL, NULL,
			  "out of memory while packing a record");
}

/* Checks a packer or sbuffer return. */
static int packed(struct vctx *v, int rc)
{
	return rc ? fail_memory(v) : 0;
}

/* ---- packing helpers ---- */

struct header {
	char bytes[9];
	size_t len;
};

static int header_write(void *data, const char *buf, size_t len)
{
	struct header *h = data;

	if (len > sizeof(h->bytes) - h->len)
		return -1;
	memcpy(h->bytes + h->len, buf, len);
	h->len += len;
	return 0;
}

enum header_kind { HDR_MAP, HDR_ARRAY, HDR_STR };

/* The msgpack header for n entries, exactly as msgpack_pack_* writes it,
 * so the stored form equals what a plain packer would have produced. */
static void header_make(enum header_kind kind, size_t n, struct header *h)
{
	msgpack_packer pk;

	h->len = 0;
	msgpack_packer_init(&pk, h, header_write);
	/* Cannot fail: no header is longer than h->bytes. */
	if (kind == HDR_MAP)
		(void)msgpack_pack_map(&pk, n);
	else if (kind == HDR_ARRAY)
		(void)msgpack_pack_array(&pk, n);
	else
		(void)msgpack_pack_str(&pk, n);
}

/* Inserts the header of a map or array of n entries in front of the body
 * that starts at offset at. */
static int header_insert(struct vctx *v, size_t at, enum header_kind kind,
			 size_t n)
{
	msgpack_sbuffer *sb = v->sb;
	size_t body_len = sb->size - at;
	struct header h;

	header_make(kind, n, &h);
	if (packed(v, msgpack_sbuffer_write(sb, h.bytes, h.len)))
		return -1;
	memmove(sb->data + at + h.len, sb->data + at, body_len);
	memcpy(sb->data + at, h.bytes, h.len);
	return 0;
}

static int put_str(struct vctx *v, const char *s, size_t len)
{
	if (packed(v, msgpack_pack_str(&v->pk, len)))
		return -1;
	return packed(v, msgpack_pack_str_body(&v->pk, s, len));
}

static int put_key(struct vctx *v, const struct field *f)
{
	return put_str(v, f->name, strlen(f->name));
}

static int put_bool(struct vctx *v, bool b)
{
	return packed(v, b ? msgpack_pack_true(&v->pk)
			   : msgpack_pack_false(&v->pk));
}

static int put_int(struct vctx *v, int64_t x)
{
	return packed(v, msgpack_pack_int64(&v->pk, x));
}

/* ---- strings ---- */

static bool raw_str(const msgpack_object *o, const char **s, uint32_t *len)
{
	if (o->type == MSGPACK_OBJECT_STR) {
		*s = o->via.str.ptr;
		*len = o->via.str.size;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_BIN) {
		*s = o->via.bin.ptr;
		*len = o->via.bin.size;
		return true;
	}
	return false;
}

static bool is_id_check(enum field_check check)
{
	return check == FC_STUDENT_ID || check == FC_ANY_ID;
}

static const char *id_rule(enum field_check check)
{
	return check == FC_STUDENT_ID
	       ? "must be 1 to 32 printable ASCII characters"
	       : "must be 1 to 64 bytes";
}

/*
 * Appends o (str or bin) normalised, as a msgpack str, and reports where
 * its body landed.  The raw bytes are copied behind room for the largest
 * header, folded in place, then slid up against the real header.
 */
static int str_in(struct vctx *v, const struct field *f, long index,
		  const msgpack_object *o, struct span *sp)
{
	static const char room[STR_HEADER_BYTES_MAX];
	msgpack_sbuffer *sb = v->sb;
	size_t mark = sb->size;
	const char *s;
	uint32_t len;
	struct header h;
	char *body;
	size_t n;

	if (!raw_str(o, &s, &len))
		return fail(v, f, index, PROTO_INVALID_ARGUMENT,
			    "must be a string");
	if (len > v->limits->string_bytes_max)
		return fail(v, f, index, PROTO_TOO_LARGE,
			    "is longer than %u bytes",
			    v->limits->string_bytes_max);
	if (is_id_check(f->check) && len > ID_RAW_BYTES_MAX)
		return fail(v, f, index, PROTO_INVALID_ARGUMENT, "%s",
			    id_rule(f->check));
	if (!text_utf8_valid(s, len))
		return fail(v, f, index, PROTO_INVALID_ARGUMENT,
			    "is not valid UTF-8");
	if (packed(v, msgpack_sbuffer_write(sb, room, sizeof(room))))
		return -1;
	if (len && packed(v, msgpack_sbuffer_write(sb, s, len)))
		return -1;
	body = sb->data + mark + sizeof(room);
	n = text_normalize(body, len, body);
	header_make(HDR_STR, n, &h);
	memmove(sb->data + mark + h.len, body, n);
	memcpy(sb->data + mark, h.bytes, h.len);
	sb->size = mark + h.len + n;
	sp->off = mark + h.len;
	sp->len = n;
	return 0;
}

static bool in_set(const char *const *set, const char *s, size_t len)
{
	for (; *set; set++)
		if (strlen(*set) == len && !memcmp(*set, s, len))
			return true;
	return false;
}

static bool student_id_ok(const char *s, size_t len)
{
	if (len < 1 || len > STUDENT_ID_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* C0 controls, DEL, and C1 controls (U+0080..U+009F, 0xC2 0x80..0x9F). */
static bool has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return true;
		if (c == 0xc2 && i + 1 < len &&
		    (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			return true;
	}
	return false;
}

/* What is wrong with a normalised string under check, or NULL.  ref may be
 * NULL for the id checks. */
static const char *str_problem(const struct ref *ref, enum field_check check,
			       const char *s, size_t len)
{
	switch (check) {
	case FC_TEXT:
		return NULL;
	case FC_STUDENT_ID:
		return student_id_ok(s, len) ? NULL : id_rule(check);
	case FC_ANY_ID:
		if (len < 1 || len > RECORD_ID_BYTES_MAX)
			return id_rule(check);
		return has_control(s, len)
		       ? "must not contain control characters" : NULL;
	case FC_EDUCATION:
		return in_set(education_values, s, len) ? NULL
		       : "must be one of 专科, 本科, 硕士, 博士";
	case FC_MAJOR:
		return ref_major_known(ref, s, len) ? NULL
		       : "is not a known major code";
	case FC_DIVISION:
		return ref_division_level(ref, s, len) != REF_NONE ? NULL
		       : "is not a known division code";
	case FC_ORIGIN:
		if (ref_division_level(ref, s, len) == REF_NONE)
			return "is not a known division code";
		return ref_division_origin_ok(ref, s, len) ? NULL
		       : "must be a county-level division code";
	case FC_POLITICAL:
		return in_set(political_values, s, len) ? NULL
		       : "is not a known political status";
	case FC_REGION:
		return in_set(region_values, s, len) ? NULL
		       : "must be one of mainland, hk, mo, tw";
	case FC_EXP_KIND:
		return in_set(exp_kind_values, s, len) ? NULL
		       : "must be one of internship, project, campus, work";
	}
	return "has an unknown check";
}

static int str_check(struct vctx *v, const struct field *f, long index,
		     const struct span *sp)
{
	const char *msg = str_problem(v->ref, f->check, v->sb->data + sp->off,
				      sp->len);

	if (msg)
		return fail(v, f, index, PROTO_INVALID_ARGUMENT, "%s", msg);
	return 0;
}

static void id_copy(char *dst, size_t *dst_len, const char *s, size_t len)
{
	memcpy(dst, s, len);
	dst[len] = '\0';
	*dst_len = len;
}

/* Packs a string field's value.  Returns 1, 0 when an optional text
 * trimmed to nothing (absent), or -1. */
static int pack_str_field(struct vctx *v, const struct field *f,
			  const msgpack_object *o)
{
	struct record_out *out = v->out;
	const char *s;
	struct span sp;

	if (str_in(v, f, -1, o, &sp))
		return -1;
	if (sp.len == 0 && (f->flags & FF_REQUIRED))
		return fail(v, f, -1, PROTO_INVALID_ARGUMENT,
			    "must not be empty");
	if (sp.len == 0 && f->check == FC_TEXT)
		return 0;
	if (str_check(v, f, -1, &sp))
		return -1;
	s = v->sb->data + sp.off;
	if (f->flags & FF_KEY)
		id_copy(out->id, &out->id_len, s, sp.len);
	if (f->flags & FF_REF) {
		id_copy(out->ref_id, &out->ref_id_len, s, sp.len);
		out->has_ref = true;
		out->ref_kind = f->ref_kind;
		out->ref_field = f->name;
	}
	return 1;
}

/* ---- integers and booleans ---- */

/* An integer outside f's range; above tells which side.  Times have no
 * upper bound but int64's, which is no sentence worth printing. */
static int int_range_fail(struct vctx *v, const struct field *f, long index,
			  bool above)
{
	if (f->max < INT64_MAX)
		return fail(v, f, index, PROTO_INVALID_ARGUMENT,
			    "must be between %lld and %lld",
			    (long long)f->min, (long long)f->max);
	if (above)
		return fail(v, f, index, PROTO_INVALID_ARGUMENT,
			    "is too large");
	return fail(v, f, index, PROTO_INVALID_ARGUMENT,
		    "must be at least %lld", (long long)f->min);
}

/* Reads an integer, or a float with an integral value, within f's range. */
static int int_in(struct vctx *v, const struct field *f, long index,
		  const msgpack_object *o, int64_t *x)
{
	double d;

	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > (uint64_t)f->max)
			return int_range_fail(v, f, index, true);
		*x = (int64_t)o->via.u64;
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*x = o->via.i64;
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		d = o->via.f64;
		if (!isfinite(d) || d != floor(d))
			return fail(v, f, index, PROTO_INVALID_ARGUMENT,
				    "must be an integer");
		/* Outside int64 the conversion below would be undefined. */
		if (d < -0x1p63 || d >= 0x1p63)
			return int_range_fail(v, f, index, d > 0);
		*x = (int64_t)d;
		break;
	default:
		return fail(v, f, index, PROTO_INVALID_ARGUMENT,
			    "must be an integer");
	}
	if (*x < f->min || *x > f->max)
		return int_range_fail(v, f, index, *x > f->max);
	return 0;
}

static int table_find(const struct table *tab, const char *name, size_t len)
{
	for (size_t i = 0; i < tab->count; i++) {
		const struct field *f = &tab->fields[i];

		if (f->flags & FF_STORED_ONLY)
			continue;
		if (strlen(f->name) == len && !memcmp(f->name, name, len))
			return (int)i;
	}
	return -1;
}

/* Compares x, the value of f, with the earlier field f->pair. */
static int pair_check(struct vctx *v, const struct table *tab,
		      const struct slots *s, const struct field *f, int64_t x)
{
	int j = table_find(tab, f->pair, strlen(f->pair));
	char path[PROTO_FIELD_MAX];

	if (j < 0 || !s->given[j])
		return 0;
	if (f->rule == PAIR_NOT_BELOW && x < s->num[j]) {
		field_path(v, f, -1, path, sizeof(path));
		return fail(v, &tab->fields[j], -1, PROTO_INVALID_ARGUMENT,
			    "must not be greater than %s", path);
	}
	if (f->rule == PAIR_ABOVE && x <= s->num[j]) {
		field_path(v, &tab->fields[j], -1, path, sizeof(path));
		return fail(v, f, -1, PROTO_INVALID_ARGUMENT,
			    "must be greater than %s", path);
	}
	return 0;
}

static int pack_int_field(struct vctx *v, const struct table *tab,
			  struct slots *s, size_t i, const msgpack_object *o)
{
	const struct field *f = &tab->fields[i];
	int64_t x;

	if (int_in(v, f, -1, o, &x))
		return -1;
	s->num[i] = x;
	s->given[i] = true;
	if (f->rule != PAIR_NONE && pair_check(v, tab, s, f, x))
		return -1;
	if (f->flags & FF_NOW)
		v->posted_at_given = true;
	return put_int(v, x) ? -1 : 1;
}

static int pack_bool_field(struct vctx *v, const struct field *f,
			   const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return fail(v, f, -1, PROTO_INVALID_ARGUMENT,
			    "must be true or false");
	return put_bool(v, o->via.boolean) ? -1 : 1;
}

/* ---- lists ---- */

/* Open-addressing set of the strings kept so far in one list, by their
 * offsets in the output buffer (which may move as it grows). */
struct dedup {
	struct span *slots;
	size_t mask;
	struct span local[DEDUP_STACK_SLOTS];
};

static int dedup_init(struct vctx *v, struct dedup *d, size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n)
		cap *= 2;
	d->slots = d->local;
	if (cap > DEDUP_STACK_SLOTS) {
		d->slots = malloc(cap * sizeof(*d->slots));
		if (!d->slots)
			return fail_memory(v);
	}
	d->mask = cap - 1;
	for (size_t i = 0; i < cap; i++)
		d->slots[i].off = SIZE_MAX;
	return 0;
}

static void dedup_free(struct dedup *d)
{
	if (d->slots != d->local)
		free(d->slots);
}

/* True when the string at sp was kept before; otherwise remembers it.  The
 * table holds at least twice as many slots as the list has elements, so a
 * probe always ends. */
static bool dedup_seen(struct dedup *d, const char *base, const struct span *sp)
{
	size_t i = XXH3_64bits(base + sp->off, sp->len) & d->mask;

	for (; d->slots[i].off != SIZE_MAX; i = (i + 1) & d->mask) {
		const struct span *k = &d->slots[i];

		if (k->len == sp->len &&
		    !memcmp(base + k->off, base + sp->off, sp->len))
			return true;
	}
	d->slots[i] = *sp;
	return false;
}

static int list_in(struct vctx *v, const struct field *f,
		   const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return fail(v, f, -1, PROTO_INVALID_ARGUMENT,
			    "must be a list");
	if (o->via.array.size > v->limits->list_len_max)
		return fail(v, f, -1, PROTO_TOO_LARGE,
			    "has more than %u elements",
			    v->limits->list_len_max);
	return 0;
}

/* Packs the elements of a string list, dropping later duplicates when the
 * field asks for it; returns the number kept or -1. */
static long pack_strs_body(struct vctx *v, const struct field *f,
			   const msgpack_object_array *a, struct dedup *d)
{
	long kept = 0;

	for (uint32_t i = 0; i < a->size; i++) {
		size_t mark = v->sb->size;
		struct span sp;

		if (str_in(v, f, i, &a->ptr[i], &sp))
			return -1;
		if (sp.len == 0)
			return fail(v, f, i, PROTO_INVALID_ARGUMENT,
				    "must not be empty");
		if (str_check(v, f, i, &sp))
			return -1;
		if (d && dedup_seen(d, v->sb->data, &sp)) {
			v->sb->size = mark;
			continue;
		}
		kept++;
	}
	return kept;
}

static int pack_strs_field(struct vctx *v, const struct field *f,
			   const msgpack_object *o)
{
	size_t start = v->sb->size;
	struct dedup d;
	long kept;

	if (list_in(v, f, o))
		return -1;
	if ((f->flags & FF_DEDUP) && dedup_init(v, &d, o->via.array.size))
		return -1;
	kept = pack_strs_body(v, f, &o->via.array,
			      (f->flags & FF_DEDUP) ? &d : NULL);
	if (f->flags & FF_DEDUP)
		dedup_free(&d);
	if (kept < 0)
		return -1;
	return header_insert(v, start, HDR_ARRAY, (size_t)kept) ? -1 : 1;
}

static int pack_ints_field(struct vctx *v, const struct field *f,
			   const msgpack_object *o)
{
	const msgpack_object_array *a = &o->via.array;

	if (list_in(v, f, o))
		return -1;
	if (packed(v, msgpack_pack_array(&v->pk, a->size)))
		return -1;
	for (uint32_t i = 0; i < a->size; i++) {
		int64_t x;

		if (int_in(v, f, i, &a->ptr[i], &x) || put_int(v, x))
			return -1;
	}
	return 1;
}

static int pack_map(struct vctx *v, const struct table *tab,
		    const msgpack_object *obj);

static int pack_maps_field(struct vctx *v, const struct field *f,
			   const msgpack_object *o)
{
	const msgpack_object_array *a = &o->via.array;
	const struct field *outer = v->parent;
	uint32_t outer_index = v->parent_index;
	int rc = 0;

	if (list_in(v, f, o))
		return -1;
	if (packed(v, msgpack_pack_array(&v->pk, a->size)))
		return -1;
	for (uint32_t i = 0; i < a->size && rc == 0; i++) {
		if (a->ptr[i].type != MSGPACK_OBJECT_MAP)
			return fail(v, f, i, PROTO_INVALID_ARGUMENT,
				    "must be a map");
		v->parent = f;
		v->parent_index = i;
		rc = pack_map(v, f->sub, &a->ptr[i]);
		v->parent = outer;
		v->parent_index = outer_index;
	}
	return rc ? -1 : 1;
}

/* ---- fields and maps ---- */

/* An absent field: its default, or an error when it is required.
 * Returns 1 when something was packed, 0 when nothing was, or -1. */
static int pack_absent(struct vctx *v, const struct field *f)
{
	int rc;

	if (f->flags & FF_REQUIRED)
		return fail(v, f, -1, PROTO_INVALID_ARGUMENT, "is required");
	if ((f->flags & FF_MAINLAND) && v->mainland)
		return fail(v, f, -1, PROTO_INVALID_ARGUMENT,
			    "is required for mainland students");
	if (!(f->flags & (FF_DEFAULT | FF_NOW)))
		return 0;
	if (put_key(v, f))
		return -1;
	if (f->flags & FF_NOW)
		rc = put_int(v, v->now);
	else if (f->type == FT_STR)
		rc = put_str(v, f->def_str, strlen(f->def_str));
	else if (f->type == FT_BOOL)
		rc = put_bool(v, f->def_int != 0);
	else
		rc = put_int(v, f->def_int);
	return rc ? -1 : 1;
}

static int pack_field(struct vctx *v, const struct table *tab,
		      struct slots *s, size_t i)
{
	const struct field *f = &tab->fields[i];
	const msgpack_object *o = s->val[i];
	size_t mark = v->sb->size;
	int rc;

	if (s->dup[i])
		return fail(v, f, -1, PROTO_INVALID_ARGUMENT,
			    "is given twice");
	if (!o || o->type == MSGPACK_OBJECT_NIL)
		return pack_absent(v, f);
	if (put_key(v, f))
		return -1;
	switch (f->type) {
	case FT_STR: rc = pack_str_field(v, f, o); break;
	case FT_INT: rc = pack_int_field(v, tab, s, i, o); break;
	case FT_BOOL: rc = pack_bool_field(v, f, o); break;
	case FT_STRS: rc = pack_strs_field(v, f, o); break;
	case FT_INTS: rc = pack_ints_field(v, f, o); break;
	case FT_MAPS: rc = pack_maps_field(v, f, o); break;
	default: rc = fail(v, f, -1, PROTO_INTERNAL, "has no type");
	}
	if (rc == 0)
		v->sb->size = mark;
	return rc;
}

/* Sorts the keys of obj into table slots.  Unknown keys, repeated or not,
 * are ignored; a known key given twice is reported at its field. */
static int slots_fill(struct vctx *v, const struct table *tab,
		      const msgpack_object *obj, struct slots *s)
{
	const msgpack_object_map *m = &obj->via.map;

	memset(s, 0, sizeof(*s));
	if (m->size > v->limits->list_len_max)
		return fail(v, NULL, -1, PROTO_TOO_LARGE,
			    "has more than %u fields",
			    v->limits->list_len_max);
	for (uint32_t i = 0; i < m->size; i++) {
		const char *name;
		uint32_t len;
		int j;

		if (!raw_str(&m->ptr[i].key, &name, &len))
			return fail(v, NULL, -1, PROTO_INVALID_ARGUMENT,
				    "has a key that is not a string");
		j = table_find(tab, name, len);
		if (j < 0)
			continue;
		if (s->val[j])
			s->dup[j] = true;
		else
			s->val[j] = &m->ptr[i].val;
	}
	return 0;
}

/* Whether the region field of the map says mainland (absent does).  The
 * origin field, checked before region in canonical order, needs to know.
 * An invalid region counts as not mainland; region reports it itself. */
static bool region_mainland(struct vctx *v, const struct table *tab,
			    const struct slots *s)
{
	size_t mark = v->sb->size;
	struct span sp;
	bool mainland;

	for (size_t i = 0; i < tab->count; i++) {
		const msgpack_object *o = s->val[i];

		if (tab->fields[i].check != FC_REGION)
			continue;
		if (!o || o->type == MSGPACK_OBJECT_NIL)
			return true;
		if (str_in(v, &tab->fields[i], -1, o, &sp))
			return false;
		mainland = sp.len == 8 &&
			   !memcmp(v->sb->data + sp.off, "mainland", 8);
		v->sb->size = mark;
		return mainland;
	}
	return false;
}

static int pack_map(struct vctx *v, const struct table *tab,
		    const msgpack_object *obj)
{
	size_t start = v->sb->size;
	size_t count = 0;
	struct slots s;

	if (slots_fill(v, tab, obj, &s))
		return -1;
	v->mainland = region_mainland(v, tab, &s);
	for (size_t i = 0; i < tab->count; i++) {
		int rc = pack_field(v, tab, &s, i);

		if (rc < 0)
			return -1;
		count += (size_t)rc;
	}
	return header_insert(v, start, HDR_MAP, count);
}

int record_validate(enum record_kind kind, const msgpack_object *obj,
		    const struct ref *ref, const struct proto_limits *limits,
		    int64_t now, struct record_out *out,
		    struct proto_error *err)
{
	struct vctx v = {
		.ref = ref, .limits = limits, .err = err, .out = out,
		.sb = &out->stored, .now = now,
	};

	msgpack_sbuffer_clear(&out->stored);
	out->id[0] = '\0';
	out->id_len = 0;
	out->has_ref = false;
	out->ref_id[0] = '\0';
	out->ref_id_len = 0;
	out->ref_field = NULL;
	out->posted_at_given = false;
	if ((unsigned)kind >= RECORD_KINDS)
		return proto_fail(err, PROTO_INTERNAL, NULL,
				  "unknown record kind %d", (int)kind);
	if (obj->type != MSGPACK_OBJECT_MAP)
		return proto_fail(err, PROTO_INVALID_ARGUMENT, NULL,
				  "a %s must be a map",
				  record_kind_name(kind));
	msgpack_packer_init(&v.pk, v.sb, msgpack_sbuffer_write);
	if (pack_map(&v, &kind_tables[kind], obj)) {
		msgpack_sbuffer_clear(&out->stored);
		return -1;
	}
	out->posted_at_given = v.posted_at_given;
	return 0;
}

/* ---- keys ---- */

static bool key_is(const msgpack_object *key, const char *name, size_t len)
{
	const char *s;
	uint32_t n;

	return raw_str(key, &s, &n) && n == len && !memcmp(s, name, len);
}

/* For "student_id" the student id rule applies.  For "id" the kind is not
 * known here, so the looser rule every kind's id meets applies (1-64
 * bytes, no control characters); a student id outside its own rule then
 * simply finds nothing. */
int record_key(const msgpack_object *obj, const char *field, char *id,
	       size_t *id_len, struct proto_error *err)
{
	enum field_check check = strcmp(field, "student_id") == 0
				 ? FC_STUDENT_ID : FC_ANY_ID;
	size_t flen = strlen(field);
	const msgpack_object *val = NULL;
	char buf[ID_RAW_BYTES_MAX];
	const char *s, *msg;
	uint32_t len;
	size_t n;

	if (obj->type != MSGPACK_OBJECT_MAP)
		return proto_fail(err, PROTO_INVALID_ARGUMENT, NULL,
				  "the arguments must be a map");
	for (uint32_t i = 0; i < obj->via.map.size; i++) {
		if (!key_is(&obj->via.map.ptr[i].key, field, flen))
			continue;
		if (val)
			return proto_fail(err, PROTO_INVALID_ARGUMENT, field,
					  "%s is given twice", field);
		val = &obj->via.map.ptr[i].val;
	}
	if (!val || val->type == MSGPACK_OBJECT_NIL)
		return proto_fail(err, PROTO_INVALID_ARGUMENT, field,
				  "%s is required", field);
	if (!raw_str(val, &s, &len))
		return proto_fail(err, PROTO_INVALID_ARGUMENT, field,
				  "%s must be a string", field);
	if (len > sizeof(buf))
		return proto_fail(err, PROTO_INVALID_ARGUMENT, field, "%s %s",
				  field, id_rule(check));
	if (!text_utf8_valid(s, len))
		return proto_fail(err, PROTO_INVALID_ARGUMENT, field,
				  "%s is not valid UTF-8", field);
	n = text_normalize(s, len, buf);
	if (n == 0)
		return proto_fail(err, PROTO_INVALID_ARGUMENT, field,
				  "%s must not be empty", field);
	msg = str_problem(NULL, check, buf, n);
	if (msg)
		return proto_fail(err, PROTO_INVALID_ARGUMENT, field, "%s %s",
				  field, msg);
	id_copy(id, id_len, buf, n);
	return 0;
}

/* ---- stored postings ---- */

/* A value that replaces (or, when the map lacks the key, is appended as)
 * one entry while a stored map is copied. */
struct override {
	const char *key;
	const msgpack_object *val;
	bool seen;
};

static int unpack_map(const char *buf, size_t len, msgpack_zone *zone,
		      msgpack_object *obj)
{
	size_t off = 0;

	if (msgpack_unpack(buf, len, &off, zone, obj) !=
	    MSGPACK_UNPACK_SUCCESS || obj->type != MSGPACK_OBJECT_MAP)
		return -EINVAL;
	return 0;
}

static const msgpack_object *map_get(const msgpack_object *map,
				     const char *key)
{
	for (uint32_t i = 0; i < map->via.map.size; i++)
		if (key_is(&map->via.map.ptr[i].key, key, strlen(key)))
			return &map->via.map.ptr[i].val;
	return NULL;
}

static struct override *override_find(struct override *ov, size_t n,
				      const msgpack_object *key)
{
	for (size_t i = 0; i < n; i++)
		if (key_is(key, ov[i].key, strlen(ov[i].key)))
			return &ov[i];
	return NULL;
}

/* Packs map into dst with the overrides applied.  -ENOMEM on failure. */
static int repack(msgpack_sbuffer *dst, const msgpack_object *map,
		  struct override *ov, size_t ov_count)
{
	const msgpack_object_map *m = &map->via.map;
	size_t extra = 0;
	msgpack_packer pk;
	int rc = 0;

	msgpack_packer_init(&pk, dst, msgpack_sbuffer_write);
	for (uint32_t i = 0; i < m->size; i++) {
		struct override *o = override_find(ov, ov_count,
						   &m->ptr[i].key);
		if (o)
			o->seen = true;
	}
	for (size_t i = 0; i < ov_count; i++)
		extra += !ov[i].seen;
	rc |= msgpack_pack_map(&pk, m->size + extra);
	for (uint32_t i = 0; i < m->size && !rc; i++) {
		struct override *o = override_find(ov, ov_count,
						   &m->ptr[i].key);

		rc |= msgpack_pack_object(&pk, m->ptr[i].key);
		rc |= msgpack_pack_object(&pk, o ? *o->val : m->ptr[i].val);
	}
	for (size_t i = 0; i < ov_count && !rc; i++) {
		if (ov[i].seen)
			continue;
		rc |= msgpack_pack_str(&pk, strlen(ov[i].key));
		rc |= msgpack_pack_str_body(&pk, ov[i].key,
					    strlen(ov[i].key));
		rc |= msgpack_pack_object(&pk, *ov[i].val);
	}
	return rc ? -ENOMEM : 0;
}

int record_posting_merge(struct record_out *out, const char *old,
			 size_t old_len)
{
	msgpack_object old_map, new_map;
	const msgpack_object *posted, *closed;
	struct override ov[2];
	size_t ov_count = 0;
	msgpack_sbuffer merged;
	msgpack_zone zone;
	int rc;

	if (!msgpack_zone_init(&zone, 2048))
		return -ENOMEM;
	rc = unpack_map(old, old_len, &zone, &old_map);
	if (rc == 0)
		rc = unpack_map(out->stored.data, out->stored.size, &zone,
				&new_map);
	if (rc)
		goto done;
	posted = map_get(&old_map, "posted_at");
	closed = map_get(&old_map, "closed");
	if (!out->posted_at_given && posted &&
	    posted->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		ov[ov_count++] = (struct override){ "posted_at", posted, 0 };
	if (closed && closed->type == MSGPACK_OBJECT_BOOLEAN)
		ov[ov_count++] = (struct override){ "closed", closed, 0 };
	msgpack_sbuffer_init(&merged);
	rc = repack(&merged, &new_map, ov, ov_count);
	if (rc) {
		msgpack_sbuffer_destroy(&merged);
		goto done;
	}
	msgpack_sbuffer_destroy(&out->stored);
	out->stored = merged;
done:
	msgpack_zone_destroy(&zone);
	return rc;
}

int record_posting_close(const char *old, size_t old_len,
			 msgpack_sbuffer *dst, bool *was_closed)
{
	msgpack_object map, yes = { .type = MSGPACK_OBJECT_BOOLEAN };
	struct override ov = { "closed", &yes, false };
	const msgpack_object *closed;
	msgpack_zone zone;
	int rc;

	yes.via.boolean = true;
	if (!msgpack_zone_init(&zone, 2048))
		return -ENOMEM;
	rc = unpack_map(old, old_len, &zone, &map);
	if (rc == 0) {
		closed = map_get(&map, "closed");
		*was_closed = closed &&
			      closed->type == MSGPACK_OBJECT_BOOLEAN &&
			      closed->via.boolean;
		msgpack_sbuffer_clear(dst);
		rc = repack(dst, &map, &ov, 1);
	}
	msgpack_zone_destroy(&zone);
	return rc;
}
