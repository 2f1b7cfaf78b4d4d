/*
 * score: the matching model.  One function scores a student against a
 * posting in [0, 1] under hard filters, the same in both directions (a
 * student's list of postings, a posting's list of students); another
 * explains a score feature by feature.
 *
 * The model sees compact profiles that the match module builds from the
 * stored records: codes as integers, skills and categories as small ids,
 * texts as short weighted term vectors.  Names, gender, ethnicity and ID
 * numbers are never inputs (the daemon does not even store them).
 *
 * Pure functions over caller memory: no allocation, no global state, safe
 * from any thread.  docs/matching.md gives the model with its defaults.
 */
#ifndef MATCHD_SCORE_H
#define MATCHD_SCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum score_feature {
	SCORE_TEXT,       /* resume text against posting text, BM25 cosine */
	SCORE_SKILLS,     /* share of the posting's skills the student has */
	SCORE_MAJOR,      /* exact major > class > discipline; any major */
	SCORE_LOCATION,   /* desired cities, else origin place */
	SCORE_CATEGORY,   /* posting category among the desired ones */
	SCORE_SALARY,     /* how far the posting's pay reaches the wish */
	SCORE_FRESHNESS,  /* exponential decay of the posting's age */
};
#define SCORE_FEATURES 7

/* The hard filters, in the order explanations list them. */
enum score_filter {
	SCORE_OPEN,       /* not closed, not expired */
	SCORE_EDUCATION,  /* student education >= posting education_min */
	SCORE_COHORT,     /* posting cohorts empty or holding grad_year */
	SCORE_MAJORS,     /* posting majors empty or one accepts the major */
	SCORE_POLITICAL,  /* the posting's political requirement is met */
	SCORE_DIRECTED,   /* a directed student stays in the directed region */
};
#define SCORE_FILTERS 6

/* "text", "skills", ... and "open", "education", ...: wire names. */
const char *score_feature_name(enum score_feature f);
const char *score_filter_name(enum score_filter f);

struct score_config {
	float weight[SCORE_FEATURES];  /* >= 0; the score divides by the sum */
	int64_t half_life_s;           /* freshness halves every this long */
	float origin_scale;            /* origin-place fit relative to cities */
};

/* The documented defaults: text .25, skills .20, major .10, location .15,
 * category .15, salary .05, freshness .10; half-life 14 days; origin 0.8. */
void score_config_default(struct score_config *cfg);

/* Education levels, in order. */
enum score_education {
	SCORE_ZHUANKE,  /* 专科 */
	SCORE_BENKE,    /* 本科 */
	SCORE_SHUOSHI,  /* 硕士 */
	SCORE_BOSHI,    /* 博士 */
};

/* The level of an education name, or -1 when it is not one. */
int score_education_parse(const char *s, size_t len);

/* Political statuses: 0 is "none given"; these two are the ones a party
 * membership requirement accepts.  The other official values get codes
 * above them. */
#define SCORE_POLITICAL_NONE 0
#define SCORE_POLITICAL_CPC 1        /* 中共党员 */
#define SCORE_POLITICAL_CPC_PROB 2   /* 中共预备党员 */

/* The code of a political status name, or -1 when it is not one. */
int score_political_parse(const char *s, size_t len);

/*
 * A 6-digit division code as an integer, 0 when s is not six digits.
 * The hierarchy is the code's prefix (GB/T 2260): a province ends in
 * 0000, a city in 00, anything else is a county.
 */
uint32_t score_division_parse(const char *s, size_t len);

/* code is region or lies below it (440106 inside 440100 and 440000). */
bool score_division_inside(uint32_t code, uint32_t region);

/* Location fit of a posting at code for a wish for region: 1 inside it,
 * SCORE_FIT_CITY in the same city, SCORE_FIT_PROVINCE in the same
 * province, else 0. */
#define SCORE_FIT_CITY 0.7f
#define SCORE_FIT_PROVINCE 0.4f
float score_location_fit(uint32_t code, uint32_t region);

/* Major fit of the posting code that accepts a student's major. */
#define SCORE_MAJOR_EXACT 1.0f
#define SCORE_MAJOR_CLASS 0.75f       /* a 4-digit class code */
#define SCORE_MAJOR_DISCIPLINE 0.6f   /* a 2-digit discipline code */
#define SCORE_MAJOR_ANY 0.5f          /* the posting names no major */

/*
 * A major code as the model compares it: its digits as a number and how
 * many there are (2 for a discipline, 4 for a class, 6 for a major); the
 * catalogue letters (K, T) are not part of the match.
 */
struct score_major {
	uint32_t code;
	uint8_t digits;                  /* 0: no code */
};

/* Parses "080901", "0809", "020301K"; digits 0 when s is not a code. */
struct score_major score_major_parse(const char *s, size_t len);

/* A posting code accepts a student's major: equal, or a prefix of it. */
bool score_major_accepts(struct score_major posting,
			 struct score_major student);

/* A term of a text vector: an id and its weight; a vector's weights have
 * unit Euclidean length, so a dot product is a cosine. */
struct score_term {
	uint32_t id;
	float weight;
};

/* Most terms, skills, cities and categories a profile keeps. */
#define SCORE_TERMS_MAX 32
#define SCORE_SKILLS_MAX 32
#define SCORE_CITIES_MAX 8
#define SCORE_CATEGORIES_MAX 8

/* A student and their resume, as the model sees them.  Arrays are owned
 * by whoever built the profile. */
struct score_student {
	const uint32_t *skills;          /* ids, ascending, distinct */
	const struct score_term *terms;  /* ascending by id */
	const uint32_t *cities;          /* desired cities, division codes */
	const uint16_t *categories;      /* desired category ids (not 0) */
	uint32_t origin;                 /* division code, 0: none */
	uint32_t directed;               /* directed region, 0: none */
	int32_t salary_min, salary_max;  /* yuan per month, -1: not given */
	uint16_t grad_year;
	uint8_t education;               /* enum score_education */
	uint8_t political;               /* SCORE_POLITICAL_* or above */
	uint8_t skills_len, terms_len, cities_len, categories_len;
	struct score_major major;        /* major_code */
};

/* A posting as the model sees it. */
struct score_posting {
	const uint32_t *skills;          /* ids, ascending, distinct */
	const struct score_term *terms;  /* ascending by id */
	const struct score_major *majors; /* accepted major codes */
	uint64_t cohorts[2];             /* bit y - 2000; none set: any */
	int64_t posted_at;               /* Unix seconds */
	int64_t expires_at;              /* Unix seconds, 0: never */
	uint32_t city;                   /* division code */
	int32_t salary_min, salary_max;  /* -1: not given */
	uint16_t category;               /* id, 0: none */
	uint16_t majors_len;
	uint8_t education_min;
	uint8_t political;               /* required status, 0: none */
	uint8_t skills_len, terms_len;
	bool closed;
};

/* Marks year as accepted in a cohort mask; years outside 2000..2127 are
 * ignored (validation keeps them within 2000..2100). */
void score_cohort_add(uint64_t cohorts[2], int year);

/*
 * The clock a score is taken at: now decides whether a posting is open,
 * fresh_at is the time freshness is measured at.  The match module keeps
 * fresh_at still between full rebuilds so that scores taken at different
 * moments stay comparable.
 */
struct score_time {
	int64_t now;
	int64_t fresh_at;
};

/*
 * What the student-side filters read, with the wished pay and the
 * provinces the location feature can find, packed into 32 bytes so that
 * a caller testing many students against one posting can keep them apart
 * from the rest of each profile.
 */
struct score_gate {
	struct score_major major;
	uint32_t directed;
	int32_t salary_min, salary_max;
	uint16_t grad_year;
	uint8_t education, political;
	uint64_t provinces;   /* bit province code % 64 of every place */
};

struct score_gate score_gate_of(const struct score_student *s);

/* Every filter but SCORE_OPEN passes: the same answer as score_filters()
 * without that bit, from the packed facts alone. */
bool score_gate_pass(const struct score_gate *g,
		     const struct score_posting *p);

/*
 * What major, salary and freshness add for the student g stands for,
 * exactly, plus the location feature at province fit when p lies in a
 * province of g: at most score_bound_unreached(), and like it a bound of
 * the rest for a student sharing no term, skill, category or city key
 * with p.
 */
float score_gate_bound(const struct score_config *cfg,
		       const struct score_gate *g,
		       const struct score_posting *p, int64_t fresh_at);

/* A bit per failed filter (1u << enum score_filter); 0 when all pass. */
uint32_t score_filters(const struct score_student *s,
		       const struct score_posting *p, int64_t now);

/* The score in [0, 1], or -1 when a hard filter fails. */
float score_pair(const struct score_config *cfg,
		 const struct score_student *s, const struct score_posting *p,
		 const struct score_time *t);

/*
 * As score_pair(), but gives up once the score cannot reach floor: the
 * cheap features are taken first, and when they plus text_skills_max (an
 * upper bound of what text and skills together add, in score units) stay
 * below floor, -2 is returned without computing text and skills.  A score
 * it does return is exactly score_pair()'s.
 */
float score_pair_above(const struct score_config *cfg,
		       const struct score_student *s,
		       const struct score_posting *p,
		       const struct score_time *t, float text_skills_max,
		       float floor);

/* One score, feature by feature. */
struct score_explain {
	float score;                     /* 0 when a filter failed */
	uint32_t failed;                 /* as score_filters() */
	float value[SCORE_FEATURES];     /* each in [0, 1] */
	float contribution[SCORE_FEATURES]; /* weight * value / sum of
					       weights; all 0 when a filter
					       failed, so they sum to score */
};

void score_explain(const struct score_config *cfg,
		   const struct score_student *s,
		   const struct score_posting *p, const struct score_time *t,
		   struct score_explain *out);

/* The single features, for bounds and tests. */
float score_text(const struct score_student *s,
		 const struct score_posting *p);
float score_skills(const struct score_student *s,
		   const struct score_posting *p);
float score_major(const struct score_student *s,
		  const struct score_posting *p);
float score_location(const struct score_config *cfg,
		     const struct score_student *s,
		     const struct score_posting *p);
float score_category(const struct score_student *s,
		     const struct score_posting *p);
float score_salary(const struct score_student *s,
		   const struct score_posting *p);
float score_freshness(const struct score_config *cfg,
		      const struct score_posting *p, int64_t fresh_at);

/* weight[f] divided by the sum of weights (0 when they sum to 0). */
float score_weight_share(const struct score_config *cfg,
			 enum score_feature f);

/*
 * An upper bound of p's score for any student who shares no term, skill
 * or category with it and whose location fit is at most
 * SCORE_FIT_PROVINCE: the match module's bound for students (or
 * postings) its reverse indexes do not reach.
 */
float score_bound_unreached(const struct score_config *cfg,
			    const struct score_posting *p, int64_t fresh_at);

#endif
