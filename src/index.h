/*
 * index: the in-memory inverted index over postings that answers
 * posting.search.
 *
 * It holds every stored posting (open, closed and expired alike: open is
 * decided per query against the caller's clock), fed one stored posting
 * at a time: at start-up from a scan of the store, then after every
 * committed put, close and delete.  Ranking is BM25 over weighted term
 * frequencies (title 3, skills 2, description 1); filters are the
 * division at any level, the category, the education level, a salary
 * floor and open-only.  docs/search.md gives the query semantics, the
 * scoring formula and the measured costs.
 *
 * Threads: one writer at a time (index_put, index_remove; concurrent
 * callers are serialised by a mutex) and any number of searching threads.
 * A writer parses and tokenises outside every lock, then holds the write
 * side of a reader-writer lock only while it applies that one posting
 * (the bulk loader: one batch of postings).  A search holds the read side
 * for its whole run, so it sees each posting either before or after an
 * update, never half of one.
 */
#ifndef MATCHD_INDEX_H
#define MATCHD_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct index;
struct ref;

/* Distinct terms a query may hold; a longer one is refused (-E2BIG). */
#define INDEX_QUERY_TERMS_MAX 32
/* The page a search may ask for: k results after offset. */
#define INDEX_K_MAX 100
#define INDEX_OFFSET_MAX 10000
/*
 * A search with text counts its matches exactly while the shortest list
 * it walks has at most this many entries; beyond, it may skip blocks of
 * that list whose postings cannot enter the page, and then estimates the
 * total (index_result.total_exact is false).  The present index counts
 * every search exactly.
 */
#define INDEX_EXACT_LEAD_MAX 10000
/* Posting ids are at most this many bytes (as record ids). */
#define INDEX_ID_BYTES_MAX 64

/* Education levels in their order; a posting's education_min and the
 * education filter use them. */
enum index_education {
	INDEX_EDU_ANY = -1, /* no filter */
	INDEX_EDU_ZHUANKE = 0, /* 专科 */
	INDEX_EDU_BENKE,       /* 本科 */
	INDEX_EDU_SHUOSHI,     /* 硕士 */
	INDEX_EDU_BOSHI,       /* 博士 */
};

/*
 * The level of an education name ("本科"), or INDEX_EDU_ANY when s is not
 * one of the four.  Pure.
 */
enum index_education index_education_parse(const char *s, size_t len);

struct index_query {
	const char *q;            /* UTF-8 text; NULL or empty: no text */
	size_t q_len;
	const char *city;         /* a known 6-digit code, or NULL */
	const char *category;     /* normalised category name, or NULL */
	size_t category_len;
	enum index_education education; /* postings with education_min <= it */
	int64_t salary_min;       /* < 0: no floor */
	bool open_only;
	int64_t now;              /* Unix seconds, for open_only */
	uint32_t k;               /* 1..INDEX_K_MAX */
	uint32_t offset;          /* 0..INDEX_OFFSET_MAX */
};

struct index_hit {
	char id[INDEX_ID_BYTES_MAX + 1]; /* NUL-terminated copy */
	double score;             /* in [0, 1]; 0 for a search without text */
};

struct index_result {
	uint64_t total;           /* matching postings */
	bool total_exact;         /* false: total is an estimate */
	uint32_t hits_len;        /* hits filled, at most k */
};

/*
 * Creates an empty index.  ref gives division levels and must outlive the
 * index.  Returns 0 or -ENOMEM.
 */
int index_new(struct index **out, const struct ref *ref);

/* Frees the index.  No search or update may be running. */
void index_free(struct index *idx);

/*
 * Adds the posting in stored (its stored msgpack form, record.h), or
 * replaces the posting of the same id in place: the entries of terms it
 * no longer has are removed, the others updated or added.  Copies what it
 * keeps; stored may be freed on return.  Allocates; holds the write lock
 * for this one posting only.  Returns 0, -EINVAL when stored is not a
 * posting map with a string id, or -ENOMEM (the index is then unchanged).
 */
int index_put(struct index *idx, const void *stored, size_t len);

/*
 * Bulk loading, for start-up: the same result as index_put for every
 * posting, about twice as fast on two cores, since a helper thread parses
 * and tokenises while the calling thread applies, a batch of 256
 * postings at a time.  index_load_begin() starts the helper and takes
 * the writer mutex (other index_put and index_remove calls wait until
 * index_load_end); searches go on, each waiting at most for the batch
 * being applied (a few milliseconds).
 * index_load_add() copies stored, so it may be called from inside an
 * LMDB scan callback.  It returns 0, or the first -ENOMEM, after which
 * the remaining adds do nothing and the caller should go to
 * index_load_end().  index_load_end() applies what is left, stops the
 * helper, frees the loader and returns 0 or the first -ENOMEM; *invalid
 * (may be NULL) counts the stored postings refused as -EINVAL.  All three
 * run on one thread.
 */
struct index_loader;
int index_load_begin(struct index *idx, struct index_loader **out);
int index_load_add(struct index_loader *l, const void *stored, size_t len);
int index_load_end(struct index_loader *l, uint64_t *invalid);

/*
 * Removes the posting with this id.  Returns 0, or -ENOENT when the index
 * has no such posting.  Frees; never fails otherwise.
 */
int index_remove(struct index *idx, const char *id, size_t len);

/*
 * Runs q and fills hits (room for q->k entries) with page
 * [offset, offset + k) of the ranking, and res with the total and the
 * number of hits.  With text: score descending; without: newest first.
 * Ties: newer posted_at, then id ascending.  Allocates a ranking buffer
 * of k + offset entries when that is over 128 (fewer fit on the stack).
 * Holds the read lock; besides, an open_only search whose clock has
 * passed an expiry since the index last looked then brings the index's
 * bitmap of open postings forward under the write lock (about 0.2 ms at
 * 200,000 postings), unless a writer is busy.  Returns 0, -EINVAL for k,
 * offset, city or education out of range, -E2BIG for a query of more
 * than INDEX_QUERY_TERMS_MAX distinct terms, or -ENOMEM.
 */
int index_search(struct index *idx, const struct index_query *q,
		 struct index_hit *hits, struct index_result *res);

/* What the index holds, for stats and benchmarks; read under the lock. */
struct index_stats {
	uint64_t postings;        /* live documents */
	uint64_t terms;           /* distinct terms ever seen */
	uint64_t entries;         /* postings-list entries */
	uint64_t bytes;           /* heap memory held, approximately */
};
void index_stats_get(struct index *idx, struct index_stats *out);

/* True when the index holds a posting with this id. */
bool index_contains(struct index *idx, const char *id, size_t len);

#endif
