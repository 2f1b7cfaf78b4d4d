/*
 * ref: the division and major tables.  ref_load() reads data/divisions.tsv
 * and data/majors.tsv once, on the thread that starts the daemon or the data
 * generator; afterwards nothing writes the tables, so every look-up below is
 * safe from any thread.  See ref.h for the contract and data/README.md for
 * where the data comes from.
 *
 * Each file is read whole into one buffer and split in place: names are
 * NUL-terminated inside that buffer and the tables point into it.  The
 * tables are arrays sorted by code and searched by bisection, which for
 * about 3,300 divisions and 1,200 majors costs a dozen comparisons and no
 * allocation per look-up.
 */
#include "ref.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The shipped files are below 100 KiB; anything past this is not ours. */
#define REF_FILE_BYTES_MAX (4u << 20)
/* Longest name in either file is about 30 bytes of UTF-8. */
#define REF_NAME_BYTES_MAX 128u
#define REF_DIVISION_DIGITS 6u
#define REF_MAJOR_DIGITS_MAX 6u

enum ref_catalogue {
	/* Sort order among equal codes: name look-ups prefer the first. */
	REF_CAT_BK = 0,
	REF_CAT_YJS = 1,
	REF_CAT_ZK = 2,
};

struct ref_division {
	uint32_t code;          /* 440113 */
	uint32_t line;          /* in divisions.tsv, for load errors */
	char text[REF_DIVISION_DIGITS + 1];
	uint8_t level;          /* enum ref_level */
	bool has_county;        /* level 2: some level-3 code lies under it */
	const char *name;
};

struct ref_major {
	char key[REF_MAJOR_DIGITS_MAX + 1]; /* digits only: "080911" */
	uint8_t key_len;
	uint8_t catalogue;      /* enum ref_catalogue */
	uint32_t line;          /* in majors.tsv, for load errors */
	const char *code;       /* as listed: "080911TK" */
	const char *name;
};

struct ref {
	char *division_buf;
	struct ref_division *divisions;
	size_t division_count;
	char *major_buf;
	struct ref_major *majors;
	size_t major_count;
};

/* One file being loaded: where errors go and where the reader is. */
struct ref_loader {
	char *errbuf;
	size_t errbuf_len;
	char path[PATH_MAX];    /* "data/divisions.tsv" */
	uint32_t line;          /* 0 when the error is not about one line */
};

__attribute__((format(printf, 3, 4)))
static int load_fail(struct ref_loader *ld, int rc, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!ld->errbuf || ld->errbuf_len == 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!ld->path[0])
		snprintf(ld->errbuf, ld->errbuf_len, "%s", msg);
	else if (ld->line)
		snprintf(ld->errbuf, ld->errbuf_len, "%s:%u: %s", ld->path,
			 (unsigned)ld->line, msg);
	else
		snprintf(ld->errbuf, ld->errbuf_len, "%s: %s", ld->path, msg);
	return rc;
}

static bool all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Reads ld->path whole into a NUL-terminated buffer the caller frees. */
static int read_whole(struct ref_loader *ld, char **out, size_t *len_out)
{
	struct stat st;
	size_t got = 0;
	char *buf;
	int fd, rc = 0;

	fd = open(ld->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return load_fail(ld, -errno, "%s", strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = load_fail(ld, -errno, "%s", strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)REF_FILE_BYTES_MAX) {
		rc = load_fail(ld, -EINVAL, "not a regular file of at most "
			       "%u bytes", REF_FILE_BYTES_MAX);
		goto out_close;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = load_fail(ld, -ENOMEM, "out of memory");
		goto out_close;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = load_fail(ld, -errno, "%s", strerror(errno));
			free(buf);
			goto out_close;
		}
		if (n == 0)
			break;  /* shrank under us: take what is there */
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len_out = got;
out_close:
	close(fd);
	return rc;
}

/* Upper bound on the entries a buffer can hold: one per line. */
static size_t count_lines(const char *buf, size_t len)
{
	const char *end = buf + len;
	size_t n = 1;

	for (const char *p = buf; (p = memchr(p, '\n', (size_t)(end - p))); p++)
		n++;
	return n;
}

/*
 * Cuts the next line out of *cursor (NUL-terminating it in place, dropping
 * a trailing CR) and advances *cursor.  Returns NULL at the end.
 */
static char *next_line(char **cursor, char *end)
{
	char *line = *cursor, *nl, *cr;

	if (line >= end)
		return NULL;
	nl = memchr(line, '\n', (size_t)(end - line));
	if (!nl)
		nl = end;
	*nl = '\0';
	*cursor = nl + 1;
	cr = nl > line ? nl - 1 : NULL;
	if (cr && *cr == '\r')
		*cr = '\0';
	return line;
}

/* Splits line in place into exactly three tab-separated fields. */
static int split3(struct ref_loader *ld, char *line, char *field[3])
{
	char *tab;

	field[0] = line;
	for (int i = 1; i < 3; i++) {
		tab = strchr(field[i - 1], '\t');
		if (!tab)
			return load_fail(ld, -EINVAL, "expected 3 fields "
					 "separated by tabs, found %d", i);
		*tab = '\0';
		field[i] = tab + 1;
	}
	if (strchr(field[2], '\t'))
		return load_fail(ld, -EINVAL, "expected 3 fields "
				 "separated by tabs, found more");
	return 0;
}

static int check_name(struct ref_loader *ld, const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > REF_NAME_BYTES_MAX)
		return load_fail(ld, -EINVAL, "name must be 1 to %u bytes",
				 REF_NAME_BYTES_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return load_fail(ld, -EINVAL, "control character in "
					 "name");
	return 0;
}

/*
 * Divisions
 */

/* The level a code's shape allows: XX0000 province, XXYY00 city, else
 * county (Hong Kong and Macau districts, 810001, have city digits 00). */
static enum ref_level division_shape(uint32_t code)
{
	if (code % 10000 == 0)
		return REF_PROVINCE;
	if (code % 100 == 0)
		return REF_CITY;
	return REF_COUNTY;
}

static int parse_division(struct ref_loader *ld, char *line,
			  struct ref_division *d)
{
	char *f[3];
	int rc;

	rc = split3(ld, line, f);
	if (rc)
		return rc;
	if (strlen(f[0]) != REF_DIVISION_DIGITS ||
	    !all_digits(f[0], REF_DIVISION_DIGITS) || f[0][0] == '0')
		return load_fail(ld, -EINVAL, "code \"%s\" is not 6 digits",
				 f[0]);
	rc = check_name(ld, f[1]);
	if (rc)
		return rc;
	if (strlen(f[2]) != 1 || f[2][0] < '1' || f[2][0] > '3')
		return load_fail(ld, -EINVAL, "level \"%s\" is not 1, 2 or 3",
				 f[2]);
	memcpy(d->text, f[0], REF_DIVISION_DIGITS + 1);
	d->code = (uint32_t)strtoul(f[0], NULL, 10);
	d->level = (uint8_t)(f[2][0] - '0');
	d->has_county = false;
	d->name = f[1];
	d->line = ld->line;
	if (division_shape(d->code) != d->level)
		return load_fail(ld, -EINVAL, "level %u does not fit code %s",
				 (unsigned)d->level, d->text);
	return 0;
}

/* By code; duplicates by line, so the later one is reported. */
static int division_cmp(const void *a, const void *b)
{
	const struct ref_division *x = a, *y = b;

	if (x->code != y->code)
		return (x->code > y->code) - (x->code < y->code);
	return (x->line > y->line) - (x->line < y->line);
}

static struct ref_division *division_find(const struct ref *ref,
					  uint32_t code)
{
	size_t lo = 0, hi = ref->division_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t c = ref->divisions[mid].code;

		if (c == code)
			return &ref->divisions[mid];
		if (c < code)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * After sorting: rejects duplicates and orphans (a city or county whose
 * province is not listed), and marks the cities that have counties.
 */
static int link_divisions(struct ref_loader *ld, struct ref *ref)
{
	struct ref_division *d = ref->divisions;

	for (size_t i = 0; i < ref->division_count; i++) {
		struct ref_division *city;

		ld->line = d[i].line;
		if (i > 0 && d[i].code == d[i - 1].code)
			return load_fail(ld, -EINVAL, "code %s already on "
					 "line %u", d[i].text,
					 (unsigned)d[i - 1].line);
		if (d[i].level != REF_PROVINCE &&
		    !division_find(ref, d[i].code / 10000 * 10000))
			return load_fail(ld, -EINVAL, "province of %s is not "
					 "listed", d[i].text);
		if (d[i].level != REF_COUNTY)
			continue;
		city = division_find(ref, d[i].code / 100 * 100);
		if (city && city->level == REF_CITY)
			city->has_county = true;
	}
	return 0;
}

static int load_divisions(struct ref *ref, struct ref_loader *ld)
{
	char *cursor, *end, *line;
	size_t len;
	int rc;

	rc = read_whole(ld, &ref->division_buf, &len);
	if (rc)
		return rc;
	ref->divisions = calloc(count_lines(ref->division_buf, len),
				sizeof(*ref->divisions));
	if (!ref->divisions)
		return load_fail(ld, -ENOMEM, "out of memory");
	cursor = ref->division_buf;
	end = ref->division_buf + len;
	while ((line = next_line(&cursor, end))) {
		ld->line++;
		if (line[0] == '\0' || line[0] == '#')
			continue;
		rc = parse_division(ld, line,
				    &ref->divisions[ref->division_count]);
		if (rc)
			return rc;
		ref->division_count++;
	}
	ld->line = 0;
	if (ref->division_count == 0)
		return load_fail(ld, -EINVAL, "no divisions listed");
	qsort(ref->divisions, ref->division_count, sizeof(*ref->divisions),
	      division_cmp);
	return link_divisions(ld, ref);
}

/*
 * Majors
 */

/*
 * The number of leading digits of a well-formed major code, or 0 when it
 * is malformed.  Well-formed: 2, 4 or 6 digits, the 6-digit form followed
 * by nothing, one uppercase letter, or "TK".  The catalogue's own codes
 * carry "TK" (080911TK 网络空间安全, 100202TK 麻醉学), so a one-letter rule
 * alone would reject real majors.
 */
static size_t major_digits(const char *code, size_t len)
{
	size_t d = 0;

	while (d < len && d <= REF_MAJOR_DIGITS_MAX && code[d] >= '0' &&
	       code[d] <= '9')
		d++;
	if (d != 2 && d != 4 && d != 6)
		return 0;
	if (d == len)
		return d;
	if (d < 6)
		return 0;
	if (len == d + 1 && code[d] >= 'A' && code[d] <= 'Z')
		return d;
	if (len == d + 2 && code[d] == 'T' && code[d + 1] == 'K')
		return d;
	return 0;
}

static int parse_catalogue(const char *s)
{
	if (!strcmp(s, "bk"))
		return REF_CAT_BK;
	if (!strcmp(s, "yjs"))
		return REF_CAT_YJS;
	if (!strcmp(s, "zk"))
		return REF_CAT_ZK;
	return -1;
}

static int parse_major(struct ref_loader *ld, char *line, struct ref_major *m)
{
	char *f[3];
	size_t digits;
	int rc, cat;

	rc = split3(ld, line, f);
	if (rc)
		return rc;
	digits = major_digits(f[0], strlen(f[0]));
	if (!digits)
		return load_fail(ld, -EINVAL, "code \"%s\" is not a major code",
				 f[0]);
	rc = check_name(ld, f[1]);
	if (rc)
		return rc;
	cat = parse_catalogue(f[2]);
	if (cat < 0)
		return load_fail(ld, -EINVAL, "catalogue \"%s\" is not bk, yjs "
				 "or zk", f[2]);
	memcpy(m->key, f[0], digits);
	m->key[digits] = '\0';
	m->key_len = (uint8_t)digits;
	m->catalogue = (uint8_t)cat;
	m->line = ld->line;
	m->code = f[0];
	m->name = f[1];
	return 0;
}

/* By digits, then catalogue (bk first), then line. */
static int major_cmp(const void *a, const void *b)
{
	const struct ref_major *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	if (x->catalogue != y->catalogue)
		return x->catalogue > y->catalogue ? 1 : -1;
	return (x->line > y->line) - (x->line < y->line);
}

/* The first entry (so the bk one, if any) whose digits are key[0..len). */
static const struct ref_major *major_find(const struct ref *ref,
					  const char *key, size_t len)
{
	size_t lo = 0, hi = ref->major_count;
	char k[REF_MAJOR_DIGITS_MAX + 1];

	if (len > REF_MAJOR_DIGITS_MAX)
		return NULL;
	memcpy(k, key, len);
	k[len] = '\0';
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(ref->majors[mid].key, k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ref->major_count && !strcmp(ref->majors[lo].key, k))
		return &ref->majors[lo];
	return NULL;
}

static int check_majors(struct ref_loader *ld, const struct ref *ref)
{
	const struct ref_major *m = ref->majors;

	for (size_t i = 1; i < ref->major_count; i++) {
		if (strcmp(m[i].key, m[i - 1].key) ||
		    m[i].catalogue != m[i - 1].catalogue)
			continue;
		ld->line = m[i].line;
		return load_fail(ld, -EINVAL, "code %s in the same catalogue "
				 "already on line %u", m[i].key,
				 (unsigned)m[i - 1].line);
	}
	return 0;
}

static int load_majors(struct ref *ref, struct ref_loader *ld)
{
	char *cursor, *end, *line;
	size_t len;
	int rc;

	rc = read_whole(ld, &ref->major_buf, &len);
	if (rc)
		return rc;
	ref->majors = calloc(count_lines(ref->major_buf, len),
			     sizeof(*ref->majors));
	if (!ref->majors)
		return load_fail(ld, -ENOMEM, "out of memory");
	cursor = ref->major_buf;
	end = ref->major_buf + len;
	while ((line = next_line(&cursor, end))) {
		ld->line++;
		if (line[0] == '\0' || line[0] == '#')
			continue;
		rc = parse_major(ld, line, &ref->majors[ref->major_count]);
		if (rc)
			return rc;
		ref->major_count++;
	}
	ld->line = 0;
	if (ref->major_count == 0)
		return load_fail(ld, -EINVAL, "no majors listed");
	qsort(ref->majors, ref->major_count, sizeof(*ref->majors), major_cmp);
	return check_majors(ld, ref);
}

/*
 * Public functions
 */

/* Points ld at dir/name, line 0. */
static int loader_open(struct ref_loader *ld, const char *dir,
		       const char *name)
{
	int n = snprintf(ld->path, sizeof(ld->path), "%s/%s", dir, name);

	ld->line = 0;
	if (n < 0 || (size_t)n >= sizeof(ld->path))
		return load_fail(ld, -ENAMETOOLONG, "path too long");
	return 0;
}

int ref_load(struct ref **out, const char *dir, char *errbuf,
	     size_t errbuf_len)
{
	struct ref_loader ld = { .errbuf = errbuf, .errbuf_len = errbuf_len };
	struct ref *ref;
	int rc;

	*out = NULL;
	if (errbuf && errbuf_len)
		errbuf[0] = '\0';
	ref = calloc(1, sizeof(*ref));
	if (!ref)
		return load_fail(&ld, -ENOMEM, "out of memory");
	rc = loader_open(&ld, dir, "divisions.tsv");
	if (rc == 0)
		rc = load_divisions(ref, &ld);
	if (rc == 0)
		rc = loader_open(&ld, dir, "majors.tsv");
	if (rc == 0)
		rc = load_majors(ref, &ld);
	if (rc) {
		ref_free(ref);
		return rc;
	}
	*out = ref;
	return 0;
}

void ref_free(struct ref *ref)
{
	if (!ref)
		return;
	free(ref->majors);
	free(ref->major_buf);
	free(ref->divisions);
	free(ref->division_buf);
	free(ref);
}

/* The known division with that code, or NULL (also for malformed codes). */
static const struct ref_division *division_get(const struct ref *ref,
					       const char *code, size_t len)
{
	uint32_t n = 0;

	if (!code || len != REF_DIVISION_DIGITS || !all_digits(code, len))
		return NULL;
	for (size_t i = 0; i < len; i++)
		n = n * 10 + (uint32_t)(code[i] - '0');
	return division_find(ref, n);
}

enum ref_level ref_division_level(const struct ref *ref, const char *code,
				  size_t len)
{
	const struct ref_division *d = division_get(ref, code, len);

	return d ? (enum ref_level)d->level : REF_NONE;
}

const char *ref_division_name(const struct ref *ref, const char *code,
			      size_t len)
{
	const struct ref_division *d = division_get(ref, code, len);

	return d ? d->name : NULL;
}

bool ref_division_origin_ok(const struct ref *ref, const char *code,
			    size_t len)
{
	const struct ref_division *d = division_get(ref, code, len);

	if (!d)
		return false;
	return d->level == REF_COUNTY ||
	       (d->level == REF_CITY && !d->has_county);
}

bool ref_division_inside(const struct ref *ref, const char *code,
			 const char *region)
{
	const struct ref_division *c, *r;

	if (!code || !region)
		return false;
	c = division_get(ref, code, strnlen(code, REF_DIVISION_DIGITS + 1));
	r = division_get(ref, region,
			 strnlen(region, REF_DIVISION_DIGITS + 1));
	if (!c || !r)
		return false;
	switch (r->level) {
	case REF_PROVINCE:
		return c->code / 10000 == r->code / 10000;
	case REF_CITY:
		return c->code / 100 == r->code / 100;
	default:
		return c->code == r->code;
	}
}

size_t ref_division_count(const struct ref *ref)
{
	return ref->division_count;
}

void ref_division_at(const struct ref *ref, size_t i, const char **code,
		     const char **name, enum ref_level *level)
{
	const struct ref_division *d;

	if (i >= ref->division_count) {
		*code = NULL;
		*name = NULL;
		*level = REF_NONE;
		return;
	}
	d = &ref->divisions[i];
	*code = d->text;
	*name = d->name;
	*level = (enum ref_level)d->level;
}

bool ref_major_known(const struct ref *ref, const char *code, size_t len)
{
	size_t digits;

	if (!code)
		return false;
	digits = major_digits(code, len);
	if (!digits)
		return false;
	if (major_find(ref, code, digits))
		return true;
	return digits == 6 && major_find(ref, code, 4);
}

const char *ref_major_name(const struct ref *ref, const char *code,
			   size_t len)
{
	const struct ref_major *m;
	size_t digits;

	if (!code)
		return NULL;
	digits = major_digits(code, len);
	if (!digits)
		return NULL;
	m = major_find(ref, code, digits);
	return m ? m->name : NULL;
}

bool ref_major_accepts(const char *posting_code, size_t posting_len,
		       const char *student_code, size_t student_len)
{
	size_t p, s;

	if (!posting_code || !student_code)
		return false;
	p = major_digits(posting_code, posting_len);
	s = major_digits(student_code, student_len);
	return p && s && p <= s && memcmp(posting_code, student_code, p) == 0;
}

size_t ref_major_count(const struct ref *ref)
{
	return ref->major_count;
}

void ref_major_at(const struct ref *ref, size_t i, const char **code,
		  const char **name)
{
	if (i >= ref->major_count) {
		*code = NULL;
		*name = NULL;
		return;
	}
	*code = ref->majors[i].code;
	*name = ref->majors[i].name;
}
