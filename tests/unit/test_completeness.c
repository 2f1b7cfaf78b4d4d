/*
 * test_completeness: the default item list in data/completeness.tsv, the
 * percentage and missing set of resumes packed by hand in stored form, and
 * the load errors of malformed item files written to a temporary directory.
 * Runs from the checkout top.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "check.h"
#include "completeness.h"

#define ALL_MISSING 0x3ffu /* the ten default items */

/* Which parts a packed resume has. */
enum part {
	P_PHOTO = 1 << 0,
	P_INTRO = 1 << 1,
	P_SKILLS = 1 << 2,
	P_EXPERIENCES = 1 << 3,
	P_CATEGORIES = 1 << 4,
	P_CITIES = 1 << 5,
	P_SALARY = 1 << 6,
	P_AWARDS = 1 << 7,
	P_LANGUAGES = 1 << 8,
};

static void pstr(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static void plist(msgpack_packer *pk, const char *key, const char *one)
{
	pstr(pk, key);
	msgpack_pack_array(pk, one ? 1 : 0);
	if (one)
		pstr(pk, one);
}

static unsigned popcount(unsigned x)
{
	unsigned n = 0;

	for (; x; x &= x - 1)
		n++;
	return n;
}

/*
 * A stored resume with the given parts.  Absent parts are packed as their
 * empty forms where a stored resume can hold them (has_photo false, empty
 * lists), so that only content counts.
 */
static void resume_pack(msgpack_sbuffer *sb, unsigned parts)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 8 + popcount(parts & (P_INTRO | P_SALARY)));
	pstr(&pk, "student_id");
	pstr(&pk, "S1");
	pstr(&pk, "has_photo");
	if (parts & P_PHOTO)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	if (parts & P_INTRO) {
		pstr(&pk, "intro");
		pstr(&pk, "认真负责");
	}
	plist(&pk, "skills", parts & P_SKILLS ? "Java" : NULL);
	plist(&pk, "desired_categories",
	      parts & P_CATEGORIES ? "软件开发" : NULL);
	plist(&pk, "desired_cities", parts & P_CITIES ? "440100" : NULL);
	if (parts & P_SALARY) {
		pstr(&pk, "salary_max");
		msgpack_pack_int(&pk, 9000);
	}
	pstr(&pk, "experiences");
	if (parts & P_EXPERIENCES) {
		msgpack_pack_array(&pk, 1);
		msgpack_pack_map(&pk, 1);
		pstr(&pk, "kind");
		pstr(&pk, "project");
	} else {
		msgpack_pack_array(&pk, 0);
	}
	plist(&pk, "awards", parts & P_AWARDS ? "国家奖学金" : NULL);
	pstr(&pk, "languages");
	if (parts & P_LANGUAGES) {
		msgpack_pack_array(&pk, 1);
		msgpack_pack_map(&pk, 1);
		pstr(&pk, "name");
		pstr(&pk, "英语");
	} else {
		msgpack_pack_array(&pk, 0);
	}
}

static void student_pack(msgpack_sbuffer *sb, const char *school,
			 const char *major)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	pstr(&pk, "id");
	pstr(&pk, "S1");
	pstr(&pk, "school");
	pstr(&pk, school);
	pstr(&pk, "major");
	pstr(&pk, major);
}

/* Evaluates packed bytes; student_sb NULL means no student. */
static void eval(const struct completeness *c, const msgpack_sbuffer *res_sb,
		 const msgpack_sbuffer *student_sb,
		 struct completeness_result *out)
{
	msgpack_object resume, student;
	msgpack_zone zone;
	size_t off = 0;

	msgpack_zone_init(&zone, 1024);
	CHECK_EQ_INT(msgpack_unpack(res_sb->data, res_sb->size, &off, &zone,
				    &resume), MSGPACK_UNPACK_SUCCESS);
	off = 0;
	if (student_sb)
		CHECK_EQ_INT(msgpack_unpack(student_sb->data, student_sb->size,
					    &off, &zone, &student),
			     MSGPACK_UNPACK_SUCCESS);
	completeness_eval(c, &resume, student_sb ? &student : NULL, out);
	msgpack_zone_destroy(&zone);
}

static unsigned item_bit(const struct completeness *c, const char *name)
{
	for (size_t i = 0; i < completeness_item_count(c); i++)
		if (!strcmp(completeness_item_name(c, i), name))
			return 1u << i;
	CHECK(!"item name not found");
	return 0;
}

static void test_default_items(const struct completeness *c)
{
	static const char *const names[] = {
		"photo", "intro", "skills", "experiences",
		"desired_categories", "desired_cities", "salary",
		"certificates", "languages", "education",
	};

	CHECK_EQ_INT(completeness_item_count(c), 10);
	for (size_t i = 0; i < 10; i++)
		CHECK_EQ_STR(completeness_item_name(c, i), names[i]);
	CHECK(completeness_item_name(c, 10) == NULL);
}

static void test_empty_and_full(const struct completeness *c)
{
	msgpack_sbuffer resume, student;
	struct completeness_result res;

	resume_pack(&resume, 0);
	student_pack(&student, "", "");
	eval(c, &resume, &student, &res);
	CHECK_EQ_INT(res.percent, 0);
	CHECK_EQ_INT(res.missing, ALL_MISSING);
	msgpack_sbuffer_destroy(&resume);
	msgpack_sbuffer_destroy(&student);

	resume_pack(&resume, 0x1ff);
	student_pack(&student, "中山大学", "计算机科学与技术");
	eval(c, &resume, &student, &res);
	CHECK_EQ_INT(res.percent, 100);
	CHECK_EQ_INT(res.missing, 0);

	/* The same resume with no student known: education is missing. */
	eval(c, &resume, NULL, &res);
	CHECK_EQ_INT(res.percent, 90);
	CHECK_EQ_INT(res.missing, item_bit(c, "education"));
	msgpack_sbuffer_destroy(&resume);
	msgpack_sbuffer_destroy(&student);
}

/* Around the 60% gate: 55 without the student's education, 65 with it;
 * exactly 60 with a salary instead of categories. */
static void test_boundary(const struct completeness *c)
{
	msgpack_sbuffer resume, student, half;
	struct completeness_result res;

	student_pack(&student, "中山大学", "计算机科学与技术");
	student_pack(&half, "中山大学", "");
	resume_pack(&resume, P_INTRO | P_SKILLS | P_EXPERIENCES |
			     P_CATEGORIES);
	eval(c, &resume, NULL, &res);
	CHECK_EQ_INT(res.percent, 55);
	eval(c, &resume, &half, &res);
	CHECK_EQ_INT(res.percent, 55);
	CHECK(res.missing & item_bit(c, "education"));
	eval(c, &resume, &student, &res);
	CHECK_EQ_INT(res.percent, 65);
	CHECK_EQ_INT(res.missing, item_bit(c, "photo") |
		     item_bit(c, "desired_cities") | item_bit(c, "salary") |
		     item_bit(c, "certificates") | item_bit(c, "languages"));
	msgpack_sbuffer_destroy(&resume);

	resume_pack(&resume, P_INTRO | P_SKILLS | P_EXPERIENCES | P_SALARY);
	eval(c, &resume, &student, &res);
	CHECK_EQ_INT(res.percent, 60);
	msgpack_sbuffer_destroy(&resume);

	resume_pack(&resume, P_PHOTO | P_INTRO | P_SKILLS | P_AWARDS |
			     P_LANGUAGES);
	eval(c, &resume, &half, &res);
	CHECK_EQ_INT(res.percent, 50);
	CHECK(!(res.missing & item_bit(c, "certificates")));
	CHECK(!(res.missing & item_bit(c, "languages")));
	msgpack_sbuffer_destroy(&resume);
	msgpack_sbuffer_destroy(&half);
	msgpack_sbuffer_destroy(&student);
}

/* ---- custom and malformed files ---- */

static char dir[40]; /* a fresh directory under /tmp */

static int load_text(const char *text, struct completeness **c,
		     char *errbuf, size_t errbuf_len)
{
	char path[sizeof(dir) + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/items.tsv", dir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return -EIO;
	fputs(text, f);
	fclose(f);
	return completeness_load(c, path, errbuf, errbuf_len);
}

/* Weights 1 and 2: one of three present is 33%, rounded down. */
static void test_rounding(void)
{
	struct completeness *c = NULL;
	struct completeness_result res;
	msgpack_sbuffer resume;
	char errbuf[160];

	CHECK_EQ_INT(load_text("# two items\nintro\t1\tintro\n\n"
			       "skills\t2\r\n", &c, errbuf, sizeof(errbuf)),
		     0);
	if (!c)
		return;
	resume_pack(&resume, P_INTRO);
	eval(c, &resume, NULL, &res);
	CHECK_EQ_INT(res.percent, 33);
	CHECK_EQ_INT(res.missing, 2);
	msgpack_sbuffer_destroy(&resume);
	resume_pack(&resume, P_SKILLS);
	eval(c, &resume, NULL, &res);
	CHECK_EQ_INT(res.percent, 66);
	CHECK_EQ_INT(res.missing, 1);
	msgpack_sbuffer_destroy(&resume);
	completeness_free(c);
}

static const struct {
	const char *text;
	const char *where; /* expected in the message */
} bad_files[] = {
	{ "photo\t10\tx\nvideo\t10\tx\n", ":2: unknown item" },
	{ "# h\nphoto\t0\tx\n", ":2: weight" },
	{ "photo\t101\tx\n", ":1: weight" },
	{ "photo\t1000\tx\n", ":1: weight" },
	{ "photo\tten\tx\n", ":1: weight" },
	{ "photo\t\tx\n", ":1: weight" },
	{ "photo\t-5\tx\n", ":1: weight" },
	{ "photo 10 x\n", ":1: expected" },
	{ "photo\t10\tx\nskills\t5\tx\nphoto\t5\tx\n", ":3: item listed" },
	{ "# only a header\n\n", ":2: no items" },
	{ "", ":0: no items" },
};

static void test_bad_files(void)
{
	size_t n = sizeof(bad_files) / sizeof(bad_files[0]);
	char errbuf[160];

	for (size_t i = 0; i < n; i++) {
		struct completeness *c = NULL;
		int rc = load_text(bad_files[i].text, &c, errbuf,
				   sizeof(errbuf));

		CHECK_EQ_INT(rc, -EINVAL);
		CHECK(c == NULL);
		CHECK(strstr(errbuf, "items.tsv") != NULL);
		CHECK(strstr(errbuf, bad_files[i].where) != NULL);
		if (!strstr(errbuf, bad_files[i].where))
			fprintf(stderr, "  bad file %zu: %s\n", i, errbuf);
	}
}

static void test_missing_file(void)
{
	struct completeness *c;
	char errbuf[160];

	CHECK_EQ_INT(completeness_load(&c, "/nonexistent/items.tsv", errbuf,
				       sizeof(errbuf)), -ENOENT);
	CHECK(strstr(errbuf, "/nonexistent/items.tsv") != NULL);
}

int main(void)
{
	struct completeness *c = NULL;
	char errbuf[160];
	char path[sizeof(dir) + 16];
	size_t len;
	int rc;

	rc = completeness_load(&c, "data/completeness.tsv", errbuf,
			       sizeof(errbuf));
	CHECK_EQ_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "test_completeness: %s\n", errbuf);
		return check_exit("test_completeness");
	}
	test_default_items(c);
	test_empty_and_full(c);
	test_boundary(c);
	completeness_free(c);

	/* mkdtemp() replaces the six 'X' that end its template. */
	len = strlen(strcpy(dir, "/tmp/test_completeness."));
	memset(dir + len, 'X', 6);
	dir[len + 6] = '\0';
	CHECK(mkdtemp(dir) != NULL);
	test_rounding();
	test_bad_files();
	test_missing_file();
	snprintf(path, sizeof(path), "%s/items.tsv", dir);
	unlink(path);
	rmdir(dir);
	return check_exit("test_completeness");
}
