/*
 * score: the matching model.  See score.h for the interface and
 * docs/matching.md for the model and the reasons behind its constants.
 *
 * The match module calls score_pair() millions of times during a rebuild,
 * so the features work on sorted id arrays and integer codes and never
 * touch strings except the few major codes of a posting.  Everything here
 * is a pure function; the only state is the caller's.
 */
#include "score.h"

#include <math.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A salary wish narrower than this counts as this wide, so that a single
 * figure still gives a graded fit instead of all or nothing. */
#define SALARY_SPAN_MIN 1000.0

static const char *const feature_names[SCORE_FEATURES] = {
	"text", "skills", "major", "location", "category", "salary",
	"freshness",
};

static const char *const filter_names[SCORE_FILTERS] = {
	"open", "education", "cohort", "major", "political",
	"directed_region",
};

static const char *const education_names[] = {
	"专科", "本科", "硕士", "博士",
};

/* Index + 1 is the code; the first two are SCORE_POLITICAL_CPC and
 * SCORE_POLITICAL_CPC_PROB.  The list is record.c's, in its order. */
static const char *const political_names[] = {
	"中共党员", "中共预备党员", "共青团员", "民革党员", "民盟盟员",
	"民建会员", "民进会员", "农工党党员", "致公党党员", "九三学社社员",
	"台盟盟员", "无党派人士", "群众",
};

const char *score_feature_name(enum score_feature f)
{
	return (unsigned)f < SCORE_FEATURES ? feature_names[f] : "unknown";
}

const char *score_filter_name(enum score_filter f)
{
	return (unsigned)f < SCORE_FILTERS ? filter_names[f] : "unknown";
}

void score_config_default(struct score_config *cfg)
{
	static const float weights[SCORE_FEATURES] = {
		[SCORE_TEXT] = 0.25f, [SCORE_SKILLS] = 0.20f,
		[SCORE_MAJOR] = 0.10f, [SCORE_LOCATION] = 0.15f,
		[SCORE_CATEGORY] = 0.15f, [SCORE_SALARY] = 0.05f,
		[SCORE_FRESHNESS] = 0.10f,
	};

	memcpy(cfg->weight, weights, sizeof(weights));
	cfg->half_life_s = 14 * 86400;
	cfg->origin_scale = 0.8f;
}

static int name_index(const char *const *names, size_t n, const char *s,
		      size_t len)
{
	for (size_t i = 0; i < n; i++) {
		if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
			return (int)i;
	}
	return -1;
}

int score_education_parse(const char *s, size_t len)
{
	return name_index(education_names, ARRAY_LEN(education_names), s,
			  len);
}

int score_political_parse(const char *s, size_t len)
{
	int i = name_index(political_names, ARRAY_LEN(political_names), s,
			   len);

	return i < 0 ? -1 : i + 1;
}

uint32_t score_division_parse(const char *s, size_t len)
{
	uint32_t v = 0;

	if (len != 6)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	return v;
}

bool score_division_inside(uint32_t code, uint32_t region)
{
	if (!code || !region)
		return false;
	if (region % 10000 == 0)
		return code / 10000 == region / 10000;
	if (region % 100 == 0)
		return code / 100 == region / 100;
	return code == region;
}

float score_location_fit(uint32_t code, uint32_t region)
{
	if (!code || !region)
		return 0;
	if (score_division_inside(code, region))
		return 1;
	/* A province-level code names no city, so it shares none. */
	if (code % 10000 && region % 10000 && code / 100 == region / 100)
		return SCORE_FIT_CITY;
	if (code / 10000 == region / 10000)
		return SCORE_FIT_PROVINCE;
	return 0;
}

void score_cohort_add(uint64_t cohorts[2], int year)
{
	int bit = year - 2000;

	if (bit >= 0 && bit < 128)
		cohorts[bit / 64] |= UINT64_C(1) << (bit % 64);
}

static bool cohort_has(const uint64_t cohorts[2], int year)
{
	int bit = year - 2000;

	if (!cohorts[0] && !cohorts[1])
		return true;
	if (bit < 0 || bit >= 128)
		return false;
	return cohorts[bit / 64] >> (bit % 64) & 1u;
}

struct score_major score_major_parse(const char *s, size_t len)
{
	struct score_major m = { 0, 0 };
	size_t n = 0;

	while (n < len && n < 6 && s[n] >= '0' && s[n] <= '9') {
		m.code = m.code * 10 + (uint32_t)(s[n] - '0');
		n++;
	}
	/* Only letters may follow the digits. */
	for (size_t i = n; i < len; i++) {
		if (s[i] < 'A' || s[i] > 'Z')
			return (struct score_major){ 0, 0 };
	}
	if (n == 2 || n == 4 || n == 6)
		m.digits = (uint8_t)n;
	else
		m.code = 0;
	return m;
}

bool score_major_accepts(struct score_major posting,
			 struct score_major student)
{
	static const uint32_t scale[] = { 1, 10, 100, 1000, 10000, 100000,
					  1000000 };

	uint64_t lo;

	if (!posting.digits || !student.digits ||
	    posting.digits > student.digits)
		return false;
	/* The same test as code / scale == posting.code, without the
	 * division, which is most of the cost of a pair. */
	lo = (uint64_t)posting.code * scale[student.digits - posting.digits];
	return student.code >= lo &&
	       student.code - lo < scale[student.digits - posting.digits];
}

/* The fit of one posting code for the student's major: 0 when the code
 * does not accept it. */
static float major_code_fit(struct score_major code, struct score_major major)
{
	if (!score_major_accepts(code, major))
		return 0;
	if (code.digits >= major.digits)
		return SCORE_MAJOR_EXACT;
	return code.digits >= 4 ? SCORE_MAJOR_CLASS : SCORE_MAJOR_DISCIPLINE;
}

float score_major(const struct score_student *s,
		  const struct score_posting *p)
{
	float best = 0;

	if (p->majors_len == 0)
		return SCORE_MAJOR_ANY;
	if (!s->major.digits)
		return 0;
	for (uint16_t i = 0; i < p->majors_len && best < 1; i++) {
		float fit = major_code_fit(p->majors[i], s->major);

		if (fit > best)
			best = fit;
	}
	return best;
}

static bool political_met(uint8_t required, uint8_t have)
{
	if (required == SCORE_POLITICAL_NONE)
		return true;
	if (required == SCORE_POLITICAL_CPC)
		return have == SCORE_POLITICAL_CPC ||
		       have == SCORE_POLITICAL_CPC_PROB;
	return have == required;
}

uint32_t score_filters(const struct score_student *s,
		       const struct score_posting *p, int64_t now)
{
	uint32_t failed = 0;

	if (p->closed || (p->expires_at && now >= p->expires_at))
		failed |= 1u << SCORE_OPEN;
	if (s->education < p->education_min)
		failed |= 1u << SCORE_EDUCATION;
	if (!cohort_has(p->cohorts, s->grad_year))
		failed |= 1u << SCORE_COHORT;
	if (p->majors_len && score_major(s, p) <= 0)
		failed |= 1u << SCORE_MAJORS;
	if (!political_met(p->political, s->political))
		failed |= 1u << SCORE_POLITICAL;
	if (s->directed && !score_division_inside(p->city, s->directed))
		failed |= 1u << SCORE_DIRECTED;
	return failed;
}

static uint64_t province_bit(uint32_t code)
{
	return 1ull << (code / 10000 % 64);
}

struct score_gate score_gate_of(const struct score_student *s)
{
	struct score_gate g = {
		.major = s->major,
		.directed = s->directed,
		.salary_min = s->salary_min,
		.salary_max = s->salary_max,
		.grad_year = s->grad_year,
		.education = s->education,
		.political = s->political,
	};

	for (uint8_t i = 0; i < s->cities_len; i++)
		g.provinces |= province_bit(s->cities[i]);
	if (!s->cities_len && s->origin)
		g.provinces |= province_bit(s->origin);
	return g;
}

bool score_gate_pass(const struct score_gate *g,
		     const struct score_posting *p)
{
	bool major = !p->majors_len;

	if (g->education < p->education_min ||
	    !cohort_has(p->cohorts, g->grad_year) ||
	    !political_met(p->political, g->political) ||
	    (g->directed && !score_division_inside(p->city, g->directed)))
		return false;
	for (uint16_t i = 0; i < p->majors_len && !major; i++)
		major = score_major_accepts(p->majors[i], g->major);
	return major;
}

float score_text(const struct score_student *s,
		 const struct score_posting *p)
{
	uint8_t i = 0, j = 0;
	float dot = 0;

	while (i < s->terms_len && j < p->terms_len) {
		uint32_t a = s->terms[i].id, b = p->terms[j].id;

		if (a == b)
			dot += s->terms[i++].weight * p->terms[j++].weight;
		else if (a < b)
			i++;
		else
			j++;
	}
	/* Unit vectors: the cosine is at most 1 but for rounding. */
	return dot > 1 ? 1 : dot < 0 ? 0 : dot;
}

float score_skills(const struct score_student *s,
		   const struct score_posting *p)
{
	uint8_t i = 0, j = 0, shared = 0;

	if (p->skills_len == 0)
		return 0;
	while (i < s->skills_len && j < p->skills_len) {
		if (s->skills[i] == p->skills[j]) {
			shared++;
			i++;
			j++;
		} else if (s->skills[i] < p->skills[j]) {
			i++;
		} else {
			j++;
		}
	}
	return (float)shared / (float)p->skills_len;
}

float score_location(const struct score_config *cfg,
		     const struct score_student *s,
		     const struct score_posting *p)
{
	float best = 0;

	if (s->cities_len == 0)
		return cfg->origin_scale * score_location_fit(p->city,
							      s->origin);
	for (uint8_t i = 0; i < s->cities_len && best < 1; i++) {
		float fit = score_location_fit(p->city, s->cities[i]);

		if (fit > best)
			best = fit;
	}
	return best;
}

float score_category(const struct score_student *s,
		     const struct score_posting *p)
{
	if (!p->category)
		return 0;
	for (uint8_t i = 0; i < s->categories_len; i++) {
		if (s->categories[i] == p->category)
			return 1;
	}
	return 0;
}

/*
 * How far the posting's top pay reaches into the student's wished range:
 * 1 when it reaches the top of the wish, falling linearly to 0 at one
 * span below the bottom.  Neutral 0.5 when either side names no pay.
 */
float score_salary(const struct score_student *s,
		   const struct score_posting *p)
{
	double lo, hi, top, span, fit;

	if ((s->salary_min < 0 && s->salary_max < 0) ||
	    (p->salary_min < 0 && p->salary_max < 0))
		return 0.5f;
	lo = s->salary_min >= 0 ? s->salary_min : s->salary_max;
	hi = s->salary_max >= 0 ? s->salary_max : s->salary_min;
	top = p->salary_max >= 0 ? p->salary_max : p->salary_min;
	span = hi - lo > SALARY_SPAN_MIN ? hi - lo : SALARY_SPAN_MIN;
	fit = (top - lo + SALARY_SPAN_MIN) / (span + SALARY_SPAN_MIN);
	return fit >= 1 ? 1.0f : fit <= 0 ? 0.0f : (float)fit;
}

float score_freshness(const struct score_config *cfg,
		      const struct score_posting *p, int64_t fresh_at)
{
	int64_t age_s = fresh_at - p->posted_at;

	if (age_s <= 0 || cfg->half_life_s <= 0)
		return 1;
	return (float)exp2(-(double)age_s / (double)cfg->half_life_s);
}

static float weight_sum(const struct score_config *cfg)
{
	float sum = 0;

	for (int f = 0; f < SCORE_FEATURES; f++)
		sum += cfg->weight[f];
	return sum;
}

float score_weight_share(const struct score_config *cfg,
			 enum score_feature f)
{
	float sum = weight_sum(cfg);

	return sum > 0 ? cfg->weight[f] / sum : 0;
}

static void features(const struct score_config *cfg,
		     const struct score_student *s,
		     const struct score_posting *p, int64_t fresh_at,
		     float value[SCORE_FEATURES])
{
	value[SCORE_TEXT] = score_text(s, p);
	value[SCORE_SKILLS] = score_skills(s, p);
	value[SCORE_MAJOR] = score_major(s, p);
	value[SCORE_LOCATION] = score_location(cfg, s, p);
	value[SCORE_CATEGORY] = score_category(s, p);
	value[SCORE_SALARY] = score_salary(s, p);
	value[SCORE_FRESHNESS] = score_freshness(cfg, p, fresh_at);
}

/* Sums in feature order, so every caller gets the same float. */
static float combine(const struct score_config *cfg,
		     const float value[SCORE_FEATURES],
		     float contribution[SCORE_FEATURES])
{
	float sum = weight_sum(cfg), score = 0;

	for (int f = 0; f < SCORE_FEATURES; f++) {
		contribution[f] = sum > 0 ? cfg->weight[f] * value[f] / sum
					  : 0;
		score += contribution[f];
	}
	return score > 1 ? 1 : score;
}

/*
 * The filters in the order of their cost, stopping at the first that
 * fails; the major fit they need is kept for the feature.  Returns true
 * when every filter passes.
 */
static bool filters_pass(const struct score_student *s,
			 const struct score_posting *p, int64_t now,
			 float *major)
{
	if (p->closed || (p->expires_at && now >= p->expires_at) ||
	    s->education < p->education_min ||
	    !cohort_has(p->cohorts, s->grad_year) ||
	    !political_met(p->political, s->political) ||
	    (s->directed && !score_division_inside(p->city, s->directed)))
		return false;
	*major = score_major(s, p);
	return !p->majors_len || *major > 0;
}

/* The features but text, skills and major (known already). */
static void cheap_features(const struct score_config *cfg,
			   const struct score_student *s,
			   const struct score_posting *p, int64_t fresh_at,
			   float value[SCORE_FEATURES])
{
	value[SCORE_LOCATION] = score_location(cfg, s, p);
	value[SCORE_CATEGORY] = score_category(s, p);
	value[SCORE_SALARY] = score_salary(s, p);
	value[SCORE_FRESHNESS] = score_freshness(cfg, p, fresh_at);
}

float score_pair(const struct score_config *cfg,
		 const struct score_student *s, const struct score_posting *p,
		 const struct score_time *t)
{
	float value[SCORE_FEATURES], contribution[SCORE_FEATURES];

	if (!filters_pass(s, p, t->now, &value[SCORE_MAJOR]))
		return -1;
	cheap_features(cfg, s, p, t->fresh_at, value);
	value[SCORE_TEXT] = score_text(s, p);
	value[SCORE_SKILLS] = score_skills(s, p);
	return combine(cfg, value, contribution);
}

float score_pair_above(const struct score_config *cfg,
		       const struct score_student *s,
		       const struct score_posting *p,
		       const struct score_time *t, float text_skills_max,
		       float floor)
{
	float value[SCORE_FEATURES], contribution[SCORE_FEATURES];
	float sum = weight_sum(cfg), cheap = 0;

	if (!filters_pass(s, p, t->now, &value[SCORE_MAJOR]))
		return -1;
	cheap_features(cfg, s, p, t->fresh_at, value);
	for (int f = SCORE_MAJOR; f < SCORE_FEATURES; f++)
		cheap += sum > 0 ? cfg->weight[f] * value[f] / sum : 0;
	if (cheap + text_skills_max < floor)
		return -2;
	value[SCORE_TEXT] = score_text(s, p);
	value[SCORE_SKILLS] = score_skills(s, p);
	return combine(cfg, value, contribution);
}

void score_explain(const struct score_config *cfg,
		   const struct score_student *s,
		   const struct score_posting *p, const struct score_time *t,
		   struct score_explain *out)
{
	out->failed = score_filters(s, p, t->now);
	features(cfg, s, p, t->fresh_at, out->value);
	out->score = combine(cfg, out->value, out->contribution);
	if (out->failed) {
		out->score = 0;
		memset(out->contribution, 0, sizeof(out->contribution));
	}
}

float score_gate_bound(const struct score_config *cfg,
		       const struct score_gate *g,
		       const struct score_posting *p, int64_t fresh_at)
{
	struct score_student s = {
		.salary_min = g->salary_min,
		.salary_max = g->salary_max,
		.major = g->major,
	};
	float sum = weight_sum(cfg), bound;

	if (sum <= 0)
		return 0;
	bound = cfg->weight[SCORE_MAJOR] * score_major(&s, p) +
		cfg->weight[SCORE_SALARY] * score_salary(&s, p) +
		cfg->weight[SCORE_FRESHNESS] *
			score_freshness(cfg, p, fresh_at);
	if (p->city && (g->provinces & province_bit(p->city)))
		bound += cfg->weight[SCORE_LOCATION] * SCORE_FIT_PROVINCE;
	return bound / sum;
}

float score_bound_unreached(const struct score_config *cfg,
			    const struct score_posting *p, int64_t fresh_at)
{
	float sum = weight_sum(cfg);
	float major = p->majors_len ? 1 : SCORE_MAJOR_ANY;
	float bound;

	if (sum <= 0)
		return 0;
	bound = cfg->weight[SCORE_LOCATION] * SCORE_FIT_PROVINCE +
		cfg->weight[SCORE_MAJOR] * major +
		cfg->weight[SCORE_SALARY] +
		cfg->weight[SCORE_FRESHNESS] *
			score_freshness(cfg, p, fresh_at);
	return bound / sum;
}
