/*
 * gen: the synthetic data set behind bin/matchgen.  It makes companies,
 * students, resumes, postings and closes that look like a Guangdong
 * graduate-employment platform's (real division codes, the real major
 * catalogue, category vocabularies from data/categories.tsv, Zipf-like
 * popularity) and writes them as JSON Lines, one record per line, in the
 * order an importer needs: companies, students, resumes, postings, closes.
 *
 * Every record is a pure function of the seed, the clock `now`, its index
 * and the reference data, so the same inputs give the same bytes.  Used by
 * matchgen's main thread and by tests; one struct gen is not shared
 * between threads.  docs/data.md describes the model.
 */
#ifndef MATCHD_GEN_H
#define MATCHD_GEN_H

#include <stddef.h>
#include <stdint.h>

struct ref;
struct gen;

/* What to make.  postings counts the open ones; expired and closed ones
 * come on top (GEN_EXPIRED_PERCENT and GEN_CLOSED_PERCENT of it). */
struct gen_config {
	uint64_t seed;
	int64_t now;         /* Unix seconds: "today" for dates and cohorts */
	uint32_t students;   /* each with one resume */
	uint32_t postings;   /* open postings */
	uint32_t companies;  /* at least 1 when postings > 0 */
};

#define GEN_EXPIRED_PERCENT 10
#define GEN_CLOSED_PERCENT 5

/* Upper bounds on the sizes, so that every id fits its format. */
#define GEN_STUDENTS_MAX 99999999u
#define GEN_POSTINGS_MAX 9999999u
#define GEN_COMPANIES_MAX 9999999u

/* What one run wrote. */
struct gen_counts {
	uint64_t companies;
	uint64_t students;
	uint64_t resumes;
	uint64_t postings;          /* all of them, open or not */
	uint64_t postings_expired;  /* expires_at before now */
	uint64_t postings_closed;   /* followed by a posting.close line */
	uint64_t lines;
	uint64_t bytes;
};

/*
 * Fills the sizes of a named scale: "demo" (500 students, 200 open
 * postings, 60 companies) or "guangdong" (1,000,000 students, 200,000 open
 * postings, 30,000 companies).  Leaves seed and now alone.  Returns 0, or
 * -EINVAL for an unknown name.
 */
int gen_scale(const char *name, struct gen_config *cfg);

/*
 * Prepares a generator: reads data_dir/categories.tsv and
 * data_dir/completeness.tsv and indexes the divisions and majors of ref,
 * which must outlive the generator.  Every completeness item must be one
 * the completeness module knows, so the generator can fill it the way the
 * daemon scores it.  Returns 0 with *out owned by the caller (gen_free),
 * or -errno (-ENOENT, -EINVAL for a malformed line, an unknown item or a
 * size over the limits, -ENOMEM) with a sentence in errbuf.  Allocates.
 */
int gen_open(struct gen **out, const struct gen_config *cfg,
	     const struct ref *ref, const char *data_dir, char *errbuf,
	     size_t errbuf_len);
void gen_free(struct gen *g);

/*
 * Receives the output in order, in pieces of up to GEN_CHUNK_BYTES that
 * need not end on a line boundary.  Returns 0, or a negative value that
 * stops the run.
 */
typedef int (*gen_write_fn)(void *ctx, const char *buf, size_t len);

#define GEN_CHUNK_BYTES (1u << 20)

/*
 * Writes the whole data set through fn.  Returns 0, -ENOMEM, or the first
 * negative value fn returned; counts (may be NULL) says what was written.
 * Allocates one GEN_CHUNK_BYTES buffer for the run; never blocks except
 * inside fn.
 */
int gen_run(struct gen *g, gen_write_fn fn, void *ctx,
	    struct gen_counts *counts);

/*
 * Writes s[0..len) as the body of a JSON string (no surrounding quotes)
 * into out, which needs 6 * len bytes: '"' and '\' are escaped, control
 * characters become \n, \t, \r, \b, \f or \u00XX, everything else (UTF-8
 * included) is copied.  Returns the number of bytes written.
 */
size_t gen_json_escape(const char *s, size_t len, char *out);

#endif
