/*
 * test_ref: the reference tables.  Loads the shipped data/ and checks the
 * divisions and majors the rest of the daemon relies on, the containment
 * and origin rules at every level, major codes with and without catalogue
 * letters, the prefix rule for postings, that the files are complete
 * enough, and that malformed files are refused with file and line named.
 */
#include "check.h"
#include "ref.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S(lit) (lit), (sizeof(lit) - 1)

static struct ref *ref;

static void test_division_examples(void)
{
	CHECK_EQ_STR(ref_division_name(ref, S("440000")), "广东省");
	CHECK_EQ_STR(ref_division_name(ref, S("440100")), "广州市");
	CHECK_EQ_STR(ref_division_name(ref, S("440113")), "番禺区");
	CHECK_EQ_STR(ref_division_name(ref, S("441900")), "东莞市");
	CHECK_EQ_STR(ref_division_name(ref, S("442000")), "中山市");
	CHECK_EQ_STR(ref_division_name(ref, S("620200")), "嘉峪关市");
	CHECK_EQ_STR(ref_division_name(ref, S("460400")), "儋州市");
	CHECK_EQ_STR(ref_division_name(ref, S("110101")), "东城区");
	CHECK_EQ_STR(ref_division_name(ref, S("110000")), "北京市");
	CHECK_EQ_INT(ref_division_level(ref, S("440000")), REF_PROVINCE);
	CHECK_EQ_INT(ref_division_level(ref, S("440100")), REF_CITY);
	CHECK_EQ_INT(ref_division_level(ref, S("440113")), REF_COUNTY);
	CHECK_EQ_INT(ref_division_level(ref, S("441900")), REF_CITY);
	CHECK_EQ_INT(ref_division_level(ref, S("110101")), REF_COUNTY);
	CHECK_EQ_INT(ref_division_level(ref, S("419000")), REF_CITY);
	CHECK_EQ_INT(ref_division_level(ref, S("419001")), REF_COUNTY);
	/* Placeholders and functional zones were dropped from the source. */
	CHECK_EQ_INT(ref_division_level(ref, S("130101")), REF_NONE);
	CHECK_EQ_INT(ref_division_level(ref, S("130171")), REF_NONE);
	CHECK(ref_division_name(ref, S("449999")) == NULL);
}

static void test_division_malformed(void)
{
	CHECK_EQ_INT(ref_division_level(ref, S("44010")), REF_NONE);
	CHECK_EQ_INT(ref_division_level(ref, S("44010a")), REF_NONE);
	CHECK_EQ_INT(ref_division_level(ref, S("")), REF_NONE);
	CHECK_EQ_INT(ref_division_level(ref, S("4401130")), REF_NONE);
	CHECK_EQ_INT(ref_division_level(ref, S(" 44011")), REF_NONE);
	CHECK_EQ_INT(ref_division_level(ref, "440113", 5), REF_NONE);
	CHECK_EQ_INT(ref_division_level(ref, NULL, 0), REF_NONE);
	CHECK(ref_division_name(ref, S("44010a")) == NULL);
	CHECK(!ref_division_origin_ok(ref, S("44011")));
	CHECK(!ref_division_origin_ok(ref, S("")));
	CHECK(!ref_division_inside(ref, "44010", "440000"));
	CHECK(!ref_division_inside(ref, "44010a", "440000"));
	CHECK(!ref_division_inside(ref, "", "440000"));
	CHECK(!ref_division_inside(ref, "440106", "44"));
	CHECK(!ref_division_inside(ref, "440106", "4401060"));
	CHECK(!ref_division_inside(ref, NULL, "440000"));
	CHECK(!ref_division_inside(ref, "440106", NULL));
}

static void test_division_inside(void)
{
	CHECK(ref_division_inside(ref, "440106", "440106"));
	CHECK(ref_division_inside(ref, "440106", "440100"));
	CHECK(ref_division_inside(ref, "440106", "440000"));
	CHECK(ref_division_inside(ref, "440100", "440100"));
	CHECK(ref_division_inside(ref, "440100", "440000"));
	CHECK(ref_division_inside(ref, "440000", "440000"));
	CHECK(!ref_division_inside(ref, "440100", "440106"));
	CHECK(!ref_division_inside(ref, "440000", "440100"));
	CHECK(!ref_division_inside(ref, "440000", "440106"));
	CHECK(!ref_division_inside(ref, "440106", "450000"));
	CHECK(!ref_division_inside(ref, "440106", "440300"));
	CHECK(!ref_division_inside(ref, "440106", "440113"));
	CHECK(ref_division_inside(ref, "441900", "440000"));
	CHECK(ref_division_inside(ref, "110101", "110000"));
	CHECK(ref_division_inside(ref, "419001", "419000"));
	CHECK(ref_division_inside(ref, "419001", "410000"));
	CHECK(ref_division_inside(ref, "810001", "810000"));
	/* Unknown codes are inside nothing, and nothing is inside them. */
	CHECK(!ref_division_inside(ref, "440199", "440100"));
	CHECK(!ref_division_inside(ref, "440199", "440000"));
	CHECK(!ref_division_inside(ref, "440106", "440190"));
	CHECK(!ref_division_inside(ref, "449999", "449999"));
}

static void test_division_origin(void)
{
	CHECK(ref_division_origin_ok(ref, S("440113")));
	CHECK(ref_division_origin_ok(ref, S("110101")));
	CHECK(ref_division_origin_ok(ref, S("419001")));
	CHECK(ref_division_origin_ok(ref, S("441900")));
	CHECK(ref_division_origin_ok(ref, S("442000")));
	CHECK(ref_division_origin_ok(ref, S("620200")));
	CHECK(ref_division_origin_ok(ref, S("460400")));
	CHECK(!ref_division_origin_ok(ref, S("440000")));
	CHECK(!ref_division_origin_ok(ref, S("110000")));
	CHECK(!ref_division_origin_ok(ref, S("440100")));
	CHECK(!ref_division_origin_ok(ref, S("419000")));
	CHECK(!ref_division_origin_ok(ref, S("449999")));
}

/* Walks the whole table: order, counts per level, childless cities. */
static void test_division_table(void)
{
	static const char *const childless[] = {
		"4419", "4420", "6202", "4604",
	};
	size_t n = ref_division_count(ref);
	size_t per_level[4] = { 0 };
	int out_of_order = 0, under_childless = 0;
	const char *prev = "";

	for (size_t i = 0; i < n; i++) {
		const char *code, *name;
		enum ref_level level;

		ref_division_at(ref, i, &code, &name, &level);
		if (strcmp(prev, code) >= 0)
			out_of_order++;
		prev = code;
		per_level[level]++;
		for (size_t k = 0; k < 4; k++)
			if (level == REF_COUNTY &&
			    !strncmp(code, childless[k], 4))
				under_childless++;
		CHECK(name && name[0]);
	}
	CHECK_EQ_INT(out_of_order, 0);
	CHECK_EQ_INT(under_childless, 0);
	CHECK_EQ_INT(per_level[REF_NONE], 0);
	CHECK(per_level[REF_PROVINCE] >= 31);
	CHECK(per_level[REF_CITY] >= 300);
	CHECK(per_level[REF_COUNTY] >= 2800);
}

static void test_major_known(void)
{
	CHECK(ref_major_known(ref, S("08")));
	CHECK(ref_major_known(ref, S("0809")));
	CHECK(ref_major_known(ref, S("080901")));
	CHECK(ref_major_known(ref, S("080910T")));
	CHECK(ref_major_known(ref, S("080910")));
	CHECK(ref_major_known(ref, S("020301K")));
	CHECK(ref_major_known(ref, S("080911TK")));
	CHECK(ref_major_known(ref, S("0835")));
	CHECK(ref_major_known(ref, S("510201")));
	CHECK(ref_major_known(ref, S("51")));
	/* Unlisted major under a listed class. */
	CHECK(ref_major_known(ref, S("080999")));
	CHECK(ref_major_known(ref, S("080999T")));
	CHECK(!ref_major_known(ref, S("089999")));
	CHECK(!ref_major_known(ref, S("0899")));
	CHECK(!ref_major_known(ref, S("99")));
	CHECK(!ref_major_known(ref, S("")));
	CHECK(!ref_major_known(ref, S("0")));
	CHECK(!ref_major_known(ref, S("080")));
	CHECK(!ref_major_known(ref, S("08090")));
	CHECK(!ref_major_known(ref, S("0809011")));
	CHECK(!ref_major_known(ref, S("080901k")));
	CHECK(!ref_major_known(ref, S("080901KK")));
	CHECK(!ref_major_known(ref, S("080901TKK")));
	CHECK(!ref_major_known(ref, S("0809T")));
	CHECK(!ref_major_known(ref, S("08T")));
	CHECK(!ref_major_known(ref, S("08090a")));
	CHECK(!ref_major_known(ref, "080901", 5));
	CHECK(!ref_major_known(ref, NULL, 0));
}

static void test_major_names(void)
{
	CHECK_EQ_STR(ref_major_name(ref, S("08")), "工学");
	CHECK_EQ_STR(ref_major_name(ref, S("080901")), "计算机科学与技术");
	CHECK_EQ_STR(ref_major_name(ref, S("080910T")), "数据科学与大数据技术");
	CHECK_EQ_STR(ref_major_name(ref, S("080910")), "数据科学与大数据技术");
	CHECK_EQ_STR(ref_major_name(ref, S("020301K")), "金融学");
	CHECK_EQ_STR(ref_major_name(ref, S("080911TK")), "网络空间安全");
	/* 0809 is a class for 本科 and a discipline for 研究生: bk wins. */
	CHECK_EQ_STR(ref_major_name(ref, S("0809")), "计算机类");
	/* 0812 is 计算机科学与技术 only for 研究生. */
	CHECK_EQ_STR(ref_major_name(ref, S("0812")), "测绘类");
	CHECK_EQ_STR(ref_major_name(ref, S("0835")), "软件工程");
	CHECK_EQ_STR(ref_major_name(ref, S("0854")), "电子信息");
	CHECK_EQ_STR(ref_major_name(ref, S("14")), "交叉学科");
	CHECK_EQ_STR(ref_major_name(ref, S("5102")), "计算机类");
	CHECK_EQ_STR(ref_major_name(ref, S("510201")), "计算机应用技术");
	CHECK(ref_major_name(ref, S("080999")) == NULL);
	CHECK(ref_major_name(ref, S("0809x")) == NULL);
}

static void test_major_accepts(void)
{
	CHECK(ref_major_accepts(S("020301"), S("020301K")));
	CHECK(ref_major_accepts(S("020301K"), S("020301")));
	CHECK(ref_major_accepts(S("020301K"), S("020301K")));
	CHECK(ref_major_accepts(S("0809"), S("080901")));
	CHECK(ref_major_accepts(S("0809"), S("080911TK")));
	CHECK(ref_major_accepts(S("08"), S("080901")));
	CHECK(ref_major_accepts(S("08"), S("0809")));
	CHECK(ref_major_accepts(S("080901"), S("080901")));
	CHECK(!ref_major_accepts(S("080901"), S("080902")));
	CHECK(!ref_major_accepts(S("0809"), S("0810")));
	CHECK(!ref_major_accepts(S("0809"), S("081001")));
	CHECK(!ref_major_accepts(S("080901"), S("0809")));
	CHECK(!ref_major_accepts(S("08"), S("09")));
	CHECK(!ref_major_accepts(S(""), S("080901")));
	CHECK(!ref_major_accepts(S("0809"), S("")));
	CHECK(!ref_major_accepts(S("080"), S("080901")));
	CHECK(!ref_major_accepts(S("0809"), S("080901x")));
	CHECK(!ref_major_accepts(NULL, 0, S("080901")));
}

/* Complete enough: the undergraduate catalogue's classes and majors. */
static void test_major_table(void)
{
	size_t n = ref_major_count(ref);
	size_t bk_classes = 0, bk_majors = 0, zk_groups = 0;
	const char *prev = "";
	int out_of_order = 0;

	for (size_t i = 0; i < n; i++) {
		const char *code, *name;
		size_t digits;

		ref_major_at(ref, i, &code, &name);
		digits = strspn(code, "0123456789");
		/* Equal codes from two catalogues sit side by side. */
		if (strncmp(prev, code, 6) > 0)
			out_of_order++;
		prev = code;
		CHECK(name && name[0]);
		if (strncmp(code, "41", 2) >= 0) {
			zk_groups += digits == 2;
			continue;
		}
		/* Graduate 4-digit names never end in 类; class names do. */
		if (digits == 4 && strlen(name) > 3 &&
		    !strcmp(name + strlen(name) - 3, "类"))
			bk_classes++;
		bk_majors += digits == 6;
	}
	CHECK_EQ_INT(out_of_order, 0);
	CHECK(bk_classes >= 90);
	CHECK(bk_majors >= 600);
	CHECK_EQ_INT(zk_groups, 19);
}

static void test_at_out_of_range(void)
{
	const char *code = "x", *name = "x";
	enum ref_level level = REF_COUNTY;

	ref_division_at(ref, ref_division_count(ref), &code, &name, &level);
	CHECK(code == NULL && name == NULL && level == REF_NONE);
	code = name = "x";
	ref_major_at(ref, ref_major_count(ref), &code, &name);
	CHECK(code == NULL && name == NULL);
}

/*
 * Temporary data directories
 */

static char tmp_dir[64];

static void write_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fputs(text, f);
	CHECK(fclose(f) == 0);
}

static void remove_files(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/divisions.tsv", tmp_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/majors.tsv", tmp_dir);
	unlink(path);
}

static const char good_divisions[] =
	"# comment\r\n"
	"440000\t广东省\t1\r\n"
	"\n"
	"440100\t广州市\t2\n"
	"440106\t天河区\t3\n"
	"441900\t东莞市\t2\n";
static const char good_majors[] =
	"08\t工学\tbk\n"
	"0809\t计算机类\tbk\n"
	"0809\t电子科学与技术\tyjs\n"
	"080911TK\t网络空间安全\tbk\n";

/* Loads tmp_dir; expects rc and, on failure, where in errbuf. */
static void expect_load(int rc_want, const char *where)
{
	char err[256] = "untouched";
	struct ref *r = NULL;
	int rc = ref_load(&r, tmp_dir, err, sizeof(err));

	CHECK_EQ_INT(rc, rc_want);
	if (rc_want == 0) {
		CHECK(r != NULL);
		CHECK_EQ_STR(err, "");
		ref_free(r);
		return;
	}
	CHECK(r == NULL);
	if (!strstr(err, where))
		fprintf(stderr, "  errbuf \"%s\" lacks \"%s\"\n", err, where);
	CHECK(strstr(err, where) != NULL);
}

static void expect_bad_divisions(const char *text, const char *where)
{
	write_file("divisions.tsv", text);
	write_file("majors.tsv", good_majors);
	expect_load(-EINVAL, where);
}

static void expect_bad_majors(const char *text, const char *where)
{
	write_file("divisions.tsv", good_divisions);
	write_file("majors.tsv", text);
	expect_load(-EINVAL, where);
}

static void test_small_files(void)
{
	struct ref *r = NULL;
	char err[256];

	write_file("divisions.tsv", good_divisions);
	write_file("majors.tsv", good_majors);
	CHECK_EQ_INT(ref_load(&r, tmp_dir, err, sizeof(err)), 0);
	if (!r)
		return;
	CHECK_EQ_INT(ref_division_count(r), 4);
	CHECK_EQ_STR(ref_division_name(r, S("440000")), "广东省");
	CHECK(ref_division_origin_ok(r, S("441900")));
	CHECK(!ref_division_origin_ok(r, S("440100")));
	CHECK(ref_division_inside(r, "440106", "440100"));
	CHECK_EQ_INT(ref_major_count(r), 4);
	CHECK_EQ_STR(ref_major_name(r, S("0809")), "计算机类");
	CHECK(ref_major_known(r, S("080911")));
	CHECK(ref_major_known(r, S("080901")));
	CHECK(!ref_major_known(r, S("0810")));
	ref_free(r);
}

static void test_malformed_files(void)
{
	expect_bad_divisions("440000\t广东省\t1\n440100\t广州市\n",
			     "divisions.tsv:2: expected 3 fields");
	expect_bad_divisions("440000\t广东省\t1\n# x\n440100\t广州市\t2\t9\n",
			     "divisions.tsv:3:");
	expect_bad_divisions("440000\t广东省\t1\n44010\t广州市\t2\n",
			     "divisions.tsv:2: code");
	expect_bad_divisions("440000\t广东省\t1\n44010a\t广州市\t2\n",
			     "divisions.tsv:2: code");
	expect_bad_divisions("440000\t广东省\t4\n", "divisions.tsv:1: level");
	expect_bad_divisions("440000\t广东省\t1\n440100\t广州市\t3\n",
			     "divisions.tsv:2: level 3 does not fit");
	expect_bad_divisions("440000\t\t1\n", "divisions.tsv:1: name");
	expect_bad_divisions("440000\t广东省\t1\n440100\t广州市\t2\n"
			     "440100\t广州市\t2\n",
			     "divisions.tsv:3: code 440100 already on line 2");
	expect_bad_divisions("440100\t广州市\t2\n",
			     "divisions.tsv:1: province of 440100");
	expect_bad_divisions("# nothing\n", "no divisions");
	expect_bad_majors("08\t工学\tbk\n0809\t计算机类\txx\n",
			  "majors.tsv:2: catalogue");
	expect_bad_majors("08\t工学\tbk\n\n080901X1\t计算机\tbk\n",
			  "majors.tsv:3: code");
	expect_bad_majors("08\t工学\tbk\n08\t工学\tbk\n",
			  "majors.tsv:2: code 08 in the same catalogue");
	expect_bad_majors("08 工学 bk\n", "majors.tsv:1: expected 3 fields");
}

static void test_missing_files(void)
{
	remove_files();
	expect_load(-ENOENT, "divisions.tsv");
	write_file("divisions.tsv", good_divisions);
	expect_load(-ENOENT, "majors.tsv");
	CHECK(ref_load(&(struct ref *){ NULL }, "/nonexistent/matchd", NULL,
		       0) == -ENOENT);
}

int main(void)
{
	char err[256];
	int rc = ref_load(&ref, "data", err, sizeof(err));

	CHECK_EQ_INT(rc, 0);
	if (rc) {
		fprintf(stderr, "ref_load: %s\n", err);
		return check_exit("test_ref");
	}
	test_division_examples();
	test_division_malformed();
	test_division_inside();
	test_division_origin();
	test_division_table();
	test_major_known();
	test_major_names();
	test_major_accepts();
	test_major_table();
	test_at_out_of_range();
	ref_free(ref);

	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/test_ref.XXXXXX");
	CHECK(mkdtemp(tmp_dir) != NULL);
	test_small_files();
	test_malformed_files();
	test_missing_files();
	remove_files();
	rmdir(tmp_dir);
	return check_exit("test_ref");
}
