/*
 * ref: the reference data that validation and matching look things up in:
 * the administrative divisions (GB/T 2260 codes, province / city / county)
 * and the major catalogue (discipline 08 / class 0809 / major 080901).
 *
 * Loaded once at start-up from data/divisions.tsv and data/majors.tsv, then
 * read-only: every function below is safe from any thread without locks.
 */
#ifndef MATCHD_REF_H
#define MATCHD_REF_H

#include <stdbool.h>
#include <stddef.h>

struct ref;

enum ref_level {
	REF_NONE = 0,     /* not a known code */
	REF_PROVINCE = 1, /* "440000" */
	REF_CITY = 2,     /* "440100" */
	REF_COUNTY = 3,   /* "440106" */
};

/*
 * Loads dir/divisions.tsv and dir/majors.tsv.  On success *out owns the
 * tables and 0 is returned; on failure -errno (-ENOENT, -EINVAL for a
 * malformed line, -ENOMEM) and a sentence in errbuf naming file and line.
 */
int ref_load(struct ref **out, const char *dir, char *errbuf,
	     size_t errbuf_len);
void ref_free(struct ref *ref);

/* The level of a 6-digit division code, REF_NONE when unknown or when code
 * is not exactly six digits. */
enum ref_level ref_division_level(const struct ref *ref, const char *code,
				  size_t len);

/* The name of a known division ("番禺区"), or NULL. */
const char *ref_division_name(const struct ref *ref, const char *code,
			      size_t len);

/*
 * True when code is precise enough for an origin place: a county-level
 * code, or a city-level code of a city that has no counties (441900,
 * 442000, 620200, 460400 and their like).
 */
bool ref_division_origin_ok(const struct ref *ref, const char *code,
			    size_t len);

/*
 * True when division code lies inside region: equal to it or below it.
 * 440106 is inside 440100 and 440000; 440100 is not inside 440106.  Both
 * are 6-digit codes; unknown codes are inside nothing.
 */
bool ref_division_inside(const struct ref *ref, const char *code,
			 const char *region);

/* Number of known divisions, and the i-th one (0 <= i < count), in code
 * order; for generators and tests. */
size_t ref_division_count(const struct ref *ref);
void ref_division_at(const struct ref *ref, size_t i, const char **code,
		     const char **name, enum ref_level *level);

/*
 * True when code is a well-formed major code known to the catalogue:
 * 2 digits (a discipline), 4 digits (a class) or 6 digits (a major), the
 * 6-digit form optionally followed by its catalogue letters (K, T, TK).
 * A 6-digit code is known when it is listed, or when its 4-digit class is.
 */
bool ref_major_known(const struct ref *ref, const char *code, size_t len);

/* The catalogue name of a code ("计算机科学与技术"), or NULL. */
const char *ref_major_name(const struct ref *ref, const char *code,
			   size_t len);

/*
 * True when a posting's major code (a 2-, 4- or 6-digit code) accepts a
 * student's major code: equal, or a prefix of it, trailing catalogue
 * letters ignored on both sides ("020301" accepts "020301K").  Pure string
 * logic; needs no table.
 */
bool ref_major_accepts(const char *posting_code, size_t posting_len,
		       const char *student_code, size_t student_len);

/* Number of listed majors and classes and disciplines, and the i-th entry
 * in code order; for generators and tests. */
size_t ref_major_count(const struct ref *ref);
void ref_major_at(const struct ref *ref, size_t i, const char **code,
		  const char **name);

#endif
