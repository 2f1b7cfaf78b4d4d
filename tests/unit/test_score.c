/*
 * test_score: the matching model on hand-built profiles: every hard
 * filter, every feature's value, the weights, and explanations that add
 * up to the score.  Also checks that the integer division hierarchy the
 * model uses agrees with the reference data's.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ref.h"
#include "score.h"

#define NEAR(a, b) (fabs((double)(a) - (double)(b)) < 1e-5)

static const int64_t NOW = 1796320000;

static const uint32_t s_skills[] = { 3, 5, 9 };
static const struct score_term s_terms[] = {
	{ 1, 0.6f }, { 4, 0.8f },
};
static const uint32_t s_cities[] = { 440106 };
static const uint16_t s_categories[] = { 2, 7 };

static const uint32_t p_skills[] = { 3, 4, 5, 8 };
static const struct score_term p_terms[] = {
	{ 1, 0.8f }, { 2, 0.6f },
};
static struct score_major p_majors[2];

static struct score_major major(const char *code)
{
	return score_major_parse(code, strlen(code));
}

static void student_base(struct score_student *s)
{
	memset(s, 0, sizeof(*s));
	s->skills = s_skills;
	s->skills_len = 3;
	s->terms = s_terms;
	s->terms_len = 2;
	s->cities = s_cities;
	s->cities_len = 1;
	s->categories = s_categories;
	s->categories_len = 2;
	s->origin = 440113;
	s->salary_min = 8000;
	s->salary_max = 12000;
	s->grad_year = 2026;
	s->education = SCORE_BENKE;
	s->political = 3; /* 共青团员 */
	s->major = major("080901");
}

static void posting_base(struct score_posting *p)
{
	p_majors[0] = major("0809");
	p_majors[1] = major("0710");
	memset(p, 0, sizeof(*p));
	p->skills = p_skills;
	p->skills_len = 4;
	p->terms = p_terms;
	p->terms_len = 2;
	p->majors = p_majors;
	p->majors_len = 2;
	p->posted_at = NOW;
	p->expires_at = NOW + 86400;
	p->city = 440106;
	p->salary_min = 10000;
	p->salary_max = 12000;
	p->category = 7;
	p->education_min = SCORE_BENKE;
}

static void test_parsers(void)
{
	CHECK_EQ_INT(score_education_parse("专科", strlen("专科")), 0);
	CHECK_EQ_INT(score_education_parse("博士", strlen("博士")), 3);
	CHECK_EQ_INT(score_education_parse("小学", strlen("小学")), -1);
	CHECK_EQ_INT(score_political_parse("中共党员", strlen("中共党员")),
		     SCORE_POLITICAL_CPC);
	CHECK_EQ_INT(score_political_parse("中共预备党员",
					   strlen("中共预备党员")),
		     SCORE_POLITICAL_CPC_PROB);
	CHECK(score_political_parse("群众", strlen("群众")) > 2);
	CHECK_EQ_INT(score_political_parse("路人", strlen("路人")), -1);
	CHECK_EQ_INT(score_division_parse("440106", 6), 440106);
	CHECK_EQ_INT(score_division_parse("44010", 5), 0);
	CHECK_EQ_INT(score_division_parse("44O106", 6), 0);
	CHECK_EQ_STR(score_feature_name(SCORE_FRESHNESS), "freshness");
	CHECK_EQ_STR(score_filter_name(SCORE_DIRECTED), "directed_region");
}

static void test_divisions(void)
{
	CHECK(score_division_inside(440106, 440106));
	CHECK(score_division_inside(440106, 440100));
	CHECK(score_division_inside(440106, 440000));
	CHECK(!score_division_inside(440100, 440106));
	CHECK(!score_division_inside(440000, 440100));
	CHECK(!score_division_inside(440306, 440100));
	CHECK(NEAR(score_location_fit(440106, 440106), 1));
	CHECK(NEAR(score_location_fit(440113, 440106), SCORE_FIT_CITY));
	CHECK(NEAR(score_location_fit(440100, 440106), SCORE_FIT_CITY));
	CHECK(NEAR(score_location_fit(440306, 440106), SCORE_FIT_PROVINCE));
	CHECK(NEAR(score_location_fit(440000, 440106), SCORE_FIT_PROVINCE));
	CHECK(NEAR(score_location_fit(440000, 440100), SCORE_FIT_PROVINCE));
	CHECK(NEAR(score_location_fit(110105, 440106), 0));
	CHECK(NEAR(score_location_fit(110105, 110101), SCORE_FIT_CITY));
}

/* The prefix rule agrees with the reference tables on every pair of a
 * sample of real codes. */
static void test_divisions_match_ref(void)
{
	struct ref *ref = NULL;
	char err[256];
	size_t n, step;

	if (ref_load(&ref, "data", err, sizeof(err)) != 0) {
		fprintf(stderr, "reference data: %s\n", err);
		CHECK(0);
		return;
	}
	n = ref_division_count(ref);
	step = n / 97 + 1;
	for (size_t i = 0; i < n; i += step) {
		for (size_t j = 0; j < n; j += 7) {
			const char *a, *b, *name;
			enum ref_level la, lb;

			ref_division_at(ref, i, &a, &name, &la);
			ref_division_at(ref, j, &b, &name, &lb);
			CHECK(ref_division_inside(ref, a, b) ==
			      score_division_inside(
				      score_division_parse(a, 6),
				      score_division_parse(b, 6)));
		}
	}
	ref_free(ref);
}

static void test_filters(void)
{
	struct score_student s;
	struct score_posting p;

	student_base(&s);
	posting_base(&p);
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 0);

	p.closed = true;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 1u << SCORE_OPEN);
	posting_base(&p);
	CHECK_EQ_INT(score_filters(&s, &p, NOW + 86400), 1u << SCORE_OPEN);
	CHECK_EQ_INT(score_filters(&s, &p, NOW + 86399), 0);
	p.expires_at = 0;
	CHECK_EQ_INT(score_filters(&s, &p, NOW + 86400 * 365), 0);

	posting_base(&p);
	p.education_min = SCORE_SHUOSHI;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 1u << SCORE_EDUCATION);
	s.education = SCORE_BOSHI;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 0);

	student_base(&s);
	posting_base(&p);
	score_cohort_add(p.cohorts, 2025);
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 1u << SCORE_COHORT);
	score_cohort_add(p.cohorts, 2026);
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 0);
	score_cohort_add(p.cohorts, 2100);
	s.grad_year = 2100;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 0);
}

static void test_filter_majors(void)
{
	struct score_major other[2] = { major("0710"), major("020301") };
	struct score_student s;
	struct score_posting p;

	student_base(&s);
	posting_base(&p);
	p.majors = other;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 1u << SCORE_MAJORS);
	s.major = major("020301K");
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 0);
	p.majors_len = 0;
	s.major = major("120201K");
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 0);
}

/* The packed gate answers as the filters do, but for the open filter,
 * over every combination of a few values of each fact. */
static void test_gate(void)
{
	static const char *const smajors[] = { "", "080901", "0809",
					       "071001", "020301K" };
	static const uint32_t directed[] = { 0, 440000, 440100, 450000 };
	struct score_major pm[2];
	struct score_student s;
	struct score_posting p;
	unsigned n = 0, passed = 0;

	for (unsigned c = 0; c < 5 * 4 * 4 * 3 * 3 * 4; c++) {
		unsigned x = c;
		struct score_gate g;
		bool want;

		student_base(&s);
		posting_base(&p);
		s.major = major(smajors[x % 5]);
		x /= 5;
		s.directed = directed[x % 4];
		x /= 4;
		s.education = (uint8_t)(x % 4);
		x /= 4;
		s.political = (uint8_t)(x % 3);
		x /= 3;
		p.political = (uint8_t)(x % 3);
		x /= 3;
		switch (x % 4) {
		case 0: p.majors_len = 0; break;
		case 1: pm[0] = major("0809"); p.majors = pm;
			p.majors_len = 1; break;
		case 2: pm[0] = major("08"); pm[1] = major("020301");
			p.majors = pm; p.majors_len = 2; break;
		default: score_cohort_add(p.cohorts, 2025); break;
		}
		p.closed = c % 2;
		g = score_gate_of(&s);
		want = !(score_filters(&s, &p, NOW) & ~(1u << SCORE_OPEN));
		CHECK(score_gate_pass(&g, &p) == want);
		passed += want;
		n++;
	}
	/* Both answers occur. */
	CHECK(passed > 0 && passed < n);
}

/* The integer form agrees with the reference module's string rule. */
static void test_major_parse(void)
{
	static const char *const codes[] = {
		"08", "0809", "080901", "080910T", "080911TK", "020301K",
		"0203", "02", "12", "120203K", "0812", "081200",
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);

	CHECK_EQ_INT(major("080910T").code, 80910);
	CHECK_EQ_INT(major("080910T").digits, 6);
	CHECK_EQ_INT(major("0809").digits, 4);
	CHECK_EQ_INT(major("080").digits, 0);
	CHECK_EQ_INT(major("08x901").digits, 0);
	CHECK_EQ_INT(major("").digits, 0);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++)
			CHECK(score_major_accepts(major(codes[i]),
						  major(codes[j])) ==
			      ref_major_accepts(codes[i], strlen(codes[i]),
						codes[j], strlen(codes[j])));
	}
}

static void test_filter_political(void)
{
	struct score_student s;
	struct score_posting p;

	student_base(&s);
	posting_base(&p);
	p.political = SCORE_POLITICAL_CPC;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 1u << SCORE_POLITICAL);
	s.political = SCORE_POLITICAL_CPC;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 0);
	s.political = SCORE_POLITICAL_CPC_PROB;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 0);
	s.political = SCORE_POLITICAL_NONE;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 1u << SCORE_POLITICAL);
	/* Any other requirement is met by that status only. */
	p.political = (uint8_t)score_political_parse("群众", strlen("群众"));
	s.political = p.political;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 0);
	s.political = SCORE_POLITICAL_CPC;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 1u << SCORE_POLITICAL);
}

static void test_filter_directed(void)
{
	struct score_student s;
	struct score_posting p;

	student_base(&s);
	posting_base(&p);
	s.directed = 650000;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 1u << SCORE_DIRECTED);
	p.city = 650102;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 0);
	s.directed = 650100;
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 0);
	p.city = 650000; /* the province, not inside the city */
	CHECK_EQ_INT(score_filters(&s, &p, NOW), 1u << SCORE_DIRECTED);
	/* Several failures at once. */
	p.closed = true;
	p.education_min = SCORE_BOSHI;
	CHECK_EQ_INT(score_filters(&s, &p, NOW),
		     1u << SCORE_OPEN | 1u << SCORE_EDUCATION |
		     1u << SCORE_DIRECTED);
}

static void test_text_and_skills(void)
{
	static const struct score_term same[] = { { 1, 0.6f }, { 4, 0.8f } };
	struct score_student s;
	struct score_posting p;

	student_base(&s);
	posting_base(&p);
	CHECK(NEAR(score_text(&s, &p), 0.48));
	p.terms = same;
	CHECK(NEAR(score_text(&s, &p), 1));
	p.terms_len = 0;
	CHECK(NEAR(score_text(&s, &p), 0));

	posting_base(&p);
	CHECK(NEAR(score_skills(&s, &p), 0.5)); /* 3 and 5 of 4 */
	s.skills_len = 0;
	CHECK(NEAR(score_skills(&s, &p), 0));
	s.skills_len = 3;
	p.skills_len = 0;
	CHECK(NEAR(score_skills(&s, &p), 0));
}

static void test_major_fit(void)
{
	struct score_major exact[1] = { major("080901") };
	struct score_major lettered[1] = { major("020301") };
	struct score_major discipline[1] = { major("08") };
	struct score_major several[3] = {
		major("08"), major("080901"), major("0809"),
	};
	struct score_student s;
	struct score_posting p;

	student_base(&s);
	posting_base(&p);
	CHECK(NEAR(score_major(&s, &p), SCORE_MAJOR_CLASS));
	p.majors = exact;
	p.majors_len = 1;
	CHECK(NEAR(score_major(&s, &p), SCORE_MAJOR_EXACT));
	p.majors = discipline;
	CHECK(NEAR(score_major(&s, &p), SCORE_MAJOR_DISCIPLINE));
	p.majors = several;
	p.majors_len = 3;
	CHECK(NEAR(score_major(&s, &p), SCORE_MAJOR_EXACT));
	p.majors_len = 0;
	CHECK(NEAR(score_major(&s, &p), SCORE_MAJOR_ANY));
	p.majors = lettered;
	p.majors_len = 1;
	s.major = major("020301K");
	CHECK(NEAR(score_major(&s, &p), SCORE_MAJOR_EXACT));
	s.major = major("020302");
	CHECK(NEAR(score_major(&s, &p), 0));
}

static void test_location(void)
{
	static const uint32_t several[] = { 440300, 440100 };
	struct score_config cfg;
	struct score_student s;
	struct score_posting p;

	score_config_default(&cfg);
	student_base(&s);
	posting_base(&p);
	CHECK(NEAR(score_location(&cfg, &s, &p), 1));
	p.city = 440113;
	CHECK(NEAR(score_location(&cfg, &s, &p), SCORE_FIT_CITY));
	p.city = 440303;
	CHECK(NEAR(score_location(&cfg, &s, &p), SCORE_FIT_PROVINCE));
	p.city = 110105;
	CHECK(NEAR(score_location(&cfg, &s, &p), 0));
	/* The best of several wishes. */
	s.cities = several;
	s.cities_len = 2;
	p.city = 440113;
	CHECK(NEAR(score_location(&cfg, &s, &p), 1));
	/* No wish: the origin place, scaled down. */
	s.cities_len = 0;
	CHECK(NEAR(score_location(&cfg, &s, &p), 0.8));
	p.city = 440106;
	CHECK(NEAR(score_location(&cfg, &s, &p), 0.8 * SCORE_FIT_CITY));
	s.origin = 0;
	CHECK(NEAR(score_location(&cfg, &s, &p), 0));
}

static void test_category_salary_freshness(void)
{
	struct score_config cfg;
	struct score_student s;
	struct score_posting p;

	score_config_default(&cfg);
	student_base(&s);
	posting_base(&p);
	CHECK(NEAR(score_category(&s, &p), 1));
	p.category = 3;
	CHECK(NEAR(score_category(&s, &p), 0));
	p.category = 0;
	CHECK(NEAR(score_category(&s, &p), 0));

	/* Wish 8000-12000: a top of 12000 reaches it; 10000 halfway-ish. */
	CHECK(NEAR(score_salary(&s, &p), 1));
	p.salary_max = 10000;
	CHECK(NEAR(score_salary(&s, &p), 3000.0 / 5000.0));
	p.salary_max = 8000;
	CHECK(NEAR(score_salary(&s, &p), 1000.0 / 5000.0));
	p.salary_max = 6000;
	CHECK(NEAR(score_salary(&s, &p), 0));
	p.salary_max = 30000;
	CHECK(NEAR(score_salary(&s, &p), 1));
	p.salary_min = p.salary_max = -1;
	CHECK(NEAR(score_salary(&s, &p), 0.5));
	posting_base(&p);
	s.salary_min = s.salary_max = -1;
	CHECK(NEAR(score_salary(&s, &p), 0.5));

	CHECK(NEAR(score_freshness(&cfg, &p, NOW), 1));
	CHECK(NEAR(score_freshness(&cfg, &p, NOW - 3600), 1));
	CHECK(NEAR(score_freshness(&cfg, &p, NOW + 14 * 86400), 0.5));
	CHECK(NEAR(score_freshness(&cfg, &p, NOW + 28 * 86400), 0.25));
}

static void test_score_and_explain(void)
{
	struct score_time t = { NOW, NOW };
	struct score_config cfg;
	struct score_student s;
	struct score_posting p;
	struct score_explain ex;
	float sum = 0, want;

	score_config_default(&cfg);
	student_base(&s);
	posting_base(&p);
	want = 0.25f * 0.48f + 0.20f * 0.5f + 0.10f * 0.75f + 0.15f * 1 +
	       0.15f * 1 + 0.05f * 1 + 0.10f * 1;
	CHECK(NEAR(score_pair(&cfg, &s, &p, &t), want));
	score_explain(&cfg, &s, &p, &t, &ex);
	CHECK_EQ_INT(ex.failed, 0);
	CHECK(ex.score == score_pair(&cfg, &s, &p, &t));
	for (int f = 0; f < SCORE_FEATURES; f++) {
		CHECK(ex.value[f] >= 0 && ex.value[f] <= 1);
		sum += ex.contribution[f];
	}
	CHECK(NEAR(sum, ex.score));
	CHECK(NEAR(ex.contribution[SCORE_TEXT], 0.25 * 0.48));

	/* A failed filter: -1 from score_pair, 0 and no contributions from
	 * the explanation, which still shows the values. */
	p.closed = true;
	CHECK(score_pair(&cfg, &s, &p, &t) < 0);
	score_explain(&cfg, &s, &p, &t, &ex);
	CHECK_EQ_INT(ex.failed, 1u << SCORE_OPEN);
	CHECK(ex.score == 0);
	CHECK(NEAR(ex.value[SCORE_CATEGORY], 1));
	CHECK(ex.contribution[SCORE_CATEGORY] == 0);
}

static void test_weights(void)
{
	struct score_time t = { NOW, NOW };
	struct score_config cfg;
	struct score_student s;
	struct score_posting p;

	score_config_default(&cfg);
	student_base(&s);
	posting_base(&p);
	/* Only one feature weighs: the score is that feature. */
	memset(cfg.weight, 0, sizeof(cfg.weight));
	cfg.weight[SCORE_SKILLS] = 3;
	CHECK(NEAR(score_pair(&cfg, &s, &p, &t), 0.5));
	CHECK(NEAR(score_weight_share(&cfg, SCORE_SKILLS), 1));
	cfg.weight[SCORE_CATEGORY] = 1;
	CHECK(NEAR(score_pair(&cfg, &s, &p, &t), (3 * 0.5 + 1) / 4.0));
	CHECK(NEAR(score_weight_share(&cfg, SCORE_CATEGORY), 0.25));
	memset(cfg.weight, 0, sizeof(cfg.weight));
	CHECK(NEAR(score_pair(&cfg, &s, &p, &t), 0));
	/* Freshness moves with fresh_at, not with now. */
	score_config_default(&cfg);
	t.fresh_at = NOW + 14 * 86400;
	CHECK(NEAR(score_pair(&cfg, &s, &p, &t),
		   score_pair(&cfg, &s, &p, &(struct score_time){ NOW, NOW })
		   - 0.05));
}

/* Giving up early never changes a score it returns. */
static void test_pair_above(void)
{
	struct score_time t = { NOW, NOW };
	struct score_config cfg;
	struct score_student s;
	struct score_posting p;
	float full;

	score_config_default(&cfg);
	student_base(&s);
	posting_base(&p);
	full = score_pair(&cfg, &s, &p, &t);
	CHECK(score_pair_above(&cfg, &s, &p, &t, 1, 0) == full);
	CHECK(score_pair_above(&cfg, &s, &p, &t,
			       0.25f * 0.48f + 0.2f * 0.5f + 1e-4f,
			       full) == full);
	/* Text and skills bounded at 0: the cheap part alone is short. */
	CHECK(score_pair_above(&cfg, &s, &p, &t, 0, full) == -2);
	p.closed = true;
	CHECK(score_pair_above(&cfg, &s, &p, &t, 1, 0) == -1);
}

/* A student sharing no key (skill, term, category, desired city) with
 * any posting. */
static void student_unreached(struct score_student *s)
{
	student_base(s);
	s->skills_len = 0;
	s->terms_len = 0;
	s->categories_len = 0;
	s->cities_len = 0;
}

/* The unreached bound holds for a student who shares nothing. */
static void test_bound(void)
{
	struct score_time t = { NOW, NOW };
	struct score_config cfg;
	struct score_student s;
	struct score_posting p;
	float bound;

	score_config_default(&cfg);
	student_unreached(&s);
	posting_base(&p);
	s.origin = 440303; /* same province only */
	s.major = major("0809");
	bound = score_bound_unreached(&cfg, &p, NOW);
	CHECK(score_pair(&cfg, &s, &p, &t) <= bound);
	CHECK(NEAR(bound, 0.15 * 0.4 + 0.10 + 0.05 + 0.10));
	p.majors_len = 0;
	CHECK(NEAR(score_bound_unreached(&cfg, &p, NOW),
		   0.15 * 0.4 + 0.05 + 0.05 + 0.10));
}

/* The gated bound lies between the true score of a student sharing no
 * key with the posting and the bound for any such student. */
static void test_gate_bound(void)
{
	static const uint32_t places[] = { 440303, 450100, 0 };
	static const char *const majors[] = { "0809", "080901", "071001" };
	struct score_time t = { NOW, NOW };
	struct score_config cfg;
	struct score_student s;
	struct score_posting p;

	score_config_default(&cfg);
	for (unsigned c = 0; c < 3 * 3 * 3 * 2; c++) {
		struct score_gate g;
		float gb, score;

		student_unreached(&s);
		posting_base(&p);
		s.origin = places[c % 3];
		s.major = major(majors[c / 3 % 3]);
		s.salary_min = c / 9 % 3 == 0 ? -1 : 3000 * (int)(c / 9 % 3);
		s.salary_max = s.salary_min < 0 ? -1 : s.salary_min + 4000;
		p.majors_len = (uint16_t)(c / 27 % 2 ? 2 : 0);
		g = score_gate_of(&s);
		gb = score_gate_bound(&cfg, &g, &p, NOW);
		score = score_pair(&cfg, &s, &p, &t);
		CHECK(score <= gb + 1e-6f);
		CHECK(gb <= score_bound_unreached(&cfg, &p, NOW) + 1e-6f);
		if (!s.origin)
			CHECK(NEAR(gb, score));
	}
	/* Another province: nothing for the place. */
	student_base(&s);
	posting_base(&p);
	s.cities_len = 0;
	s.origin = 450100;
	{
		struct score_gate g = score_gate_of(&s);

		CHECK(NEAR(score_gate_bound(&cfg, &g, &p, NOW),
			   0.10 * 0.75 + 0.05 * score_salary(&s, &p) + 0.10));
	}
}

int main(void)
{
	test_parsers();
	test_divisions();
	test_divisions_match_ref();
	test_filters();
	test_filter_majors();
	test_major_parse();
	test_gate();
	test_filter_political();
	test_filter_directed();
	test_text_and_skills();
	test_major_fit();
	test_location();
	test_category_salary_freshness();
	test_score_and_explain();
	test_weights();
	test_pair_above();
	test_bound();
	test_gate_bound();
	return check_exit("test_score");
}
