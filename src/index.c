/*
 * index: postings lists, the document table and the search over them.
 * See index.h for who calls what and on which thread.
 *
 * Documents.  Every posting gets a dense document number (doc); a
 * removed posting's number goes on a free list and is reused, so the
 * tables never grow past the most postings held at once.  Per doc the
 * index keeps the fields filters and ranking read, one array per field
 * (the open-until time is 4 bytes, so the check nearly every search
 * makes runs over 1 MB at 200,000 postings and stays in cache), and the
 * id and the forward list: the doc's term numbers, sorted and delta-coded
 * as varints, which is what a re-put or a remove walks to find the lists
 * the doc is in.  A bitmap of the docs open at some clock answers the
 * open-only filter with a bit, or an AND of words, while the searches'
 * clocks stay between the expiries around it; a search whose clock has
 * moved past one brings it forward for the next ones.
 *
 * Lists.  A term's postings list holds (doc, weighted term frequency)
 * pairs in doc order, in one of two forms.  A sparse list (a term in
 * fewer than one posting in DENSE_PROMOTE) is cut into blocks of at most
 * BLOCK_ENTRIES_MAX entries with a directory of each block's last doc,
 * so a cursor skips by galloping over the directory and an update
 * touches one block; each block keeps the largest weight and the
 * smallest document length of its entries.  A dense list is a bitmap
 * over doc numbers with the weights beside it, per segment of 4,096
 * docs (struct dseg), and keeps the largest weight per window of 512
 * docs; the index keeps the smallest document length per window.  With
 * those a search bounds the score any doc of a block or window can get
 * (block-max pruning).  Deletes leave the bounds as they were; a stale
 * bound is larger than the truth, so it only prunes less.  Filters are
 * lists too: every posting is in the list of each division it lies
 * inside (county, city, province) and of its category, under term ids
 * no token can have (they start with a byte 0x01 that text never
 * yields).
 *
 * Search.  With a sparse list among the query's lists, the sparse lists
 * are intersected by leapfrogging, the shortest leading, and each doc
 * they agree on is looked up in the dense lists' bitmaps.  With dense
 * lists only, the bitmaps are ANDed a window at a time; once the ranking
 * is full, the window's weight bounds give the longest document that can
 * still enter it, and the others are counted without being scored.
 * Totals are always exact.
 *
 * Scoring is BM25 with k1 = 1.2, b = 0.75 over weighted frequencies
 * w = min(255, 3 * tf_title + 2 * tf_skills + tf_description) and the
 * weighted length dl = 3 * len_title + 2 * len_skills + len_description
 * (tokens, TEXT_INDEX mode):
 *
 *   idf(t)  = ln(1 + (N - df + 0.5) / (df + 0.5))
 *   K(d)    = k1 * (1 - b + b * dl / avgdl)
 *   s(d)    = sum over query terms, in query order, of
 *             idf(t) * (w * (k1 + 1)) / (w + K(d))
 *   score   = s(d) / sum over query terms of idf(t) * (k1 + 1)
 *
 * N, df and avgdl are those of the postings held now, open or not.  The
 * score lies in [0, 1): the divisor is what s would be if every term's
 * frequency were unbounded.
 *
 * Query semantics: every query term must occur in the posting (title,
 * skills or description), with the tokens of text.h in TEXT_QUERY mode:
 * a CJK word of two or more characters is the AND of its bigrams, a lone
 * CJK character its unigram (documents index unigrams too), and ASCII
 * words whole.  Bigrams need not be adjacent in the posting.  A query
 * whose text yields no token is a search without text.
 *
 * Locking: a pthread rwlock that prefers writers, so a stream of searches
 * cannot starve an update; an update holds it for one posting (tens of
 * microseconds), the bulk loader for one batch of postings (a few
 * milliseconds), a search for its run.  The writer mutex serialises
 * writers and guards the writer's scratch; a writer reads the tables
 * without the rwlock, since only writers change them.
 */
#include "index.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "ref.h"
#include "text.h"

#define BLOCK_ENTRIES_MAX 128
#define BLOCK_ENTRIES_MIN 4
#define WTF_MAX 255
#define DOC_END UINT32_MAX

#define WEIGHT_TITLE 3
#define WEIGHT_SKILLS 2
#define WEIGHT_DESCRIPTION 1

#define BM25_K1 1.2
#define BM25_B 0.75

/* A pruning bound is used only when it is below the threshold by more
 * than rounding could account for. */
#define PRUNE_SLACK (1.0 + 1e-9)

/* Filter list keys: a marker byte no token has, a kind, then the value. */
#define KEY_MARK '\x01'
#define KEY_DIVISION 'd'
#define KEY_CATEGORY 'c'
#define KEY_BYTES_MAX 256

/* A category longer than this is indexed by its first this many bytes. */
#define CATEGORY_BYTES_MAX (KEY_BYTES_MAX - 2)

#define DOC_LIVE 0x01u
#define DOC_CLOSED 0x02u

struct pblock {
	uint16_t n;
	uint16_t cap;
	uint8_t max_wtf;
	uint32_t min_dl;
	uint32_t doc[];         /* cap docs, then cap weight bytes */
};

/*
 * Dense lists.  A term in a sizeable share of the postings keeps, per
 * segment of SEG_DOCS doc numbers, a bitmap of the docs that have it and
 * their weights in doc order; off[] counts the weights before each bitmap
 * word, so the weight of a doc is one popcount away.  An intersection of
 * dense lists is an AND of bitmap words, and an update moves at most one
 * segment's weights.  maxw[] bounds the weights of each window of
 * WIN_DOCS docs, for block-max pruning.
 */
#ifndef SEG_SHIFT              /* overridable, to test small segments */
#define SEG_SHIFT 12
#endif
#define SEG_DOCS (1u << SEG_SHIFT)
#define SEG_WORDS (SEG_DOCS / 64)
#define WIN_SHIFT 9
#define WIN_DOCS (1u << WIN_SHIFT)
#define WIN_WORDS (WIN_DOCS / 64)
#define SEG_WINS (SEG_DOCS / WIN_DOCS)
_Static_assert(SEG_SHIFT >= WIN_SHIFT && SEG_SHIFT <= 15,
	       "a segment holds whole windows and its counts fit 16 bits");
#define DSEG_CAP_MIN 64

struct dseg {
	uint16_t n;               /* entries */
	uint16_t cap;
	uint16_t top;             /* words from top on are empty */
	uint8_t maxw[SEG_WINS];   /* bound of each window's weights */
	uint16_t off[SEG_WORDS];  /* weights before each word below top */
	uint64_t bits[SEG_WORDS];
	uint8_t w[];              /* cap weights, the first n in doc order */
};

/*
 * A list turns dense when it holds at least DENSE_DF_MIN entries and one
 * posting in DENSE_PROMOTE or more, and sparse again below half that
 * count or one in DENSE_DEMOTE.  Around one in 26 the two forms cost the
 * same memory; lists down to one in 64 are dense all the same, since
 * the bitmaps make searches cheap and the sparse lists left are short
 * enough to lead a search.  The gap between the thresholds keeps a list
 * near them from converting back and forth.
 */
#ifndef DENSE_DF_MIN           /* overridable, to test either form */
#define DENSE_DF_MIN 128
#define DENSE_PROMOTE 64
#define DENSE_DEMOTE 160
#endif

struct plist {
	uint64_t term_id;
	uint32_t df;            /* entries */
	uint32_t min_dl;        /* bounds over the list, never loosened */
	uint8_t max_wtf;
	/* sparse form: blocks of entries */
	uint32_t nblocks;
	uint32_t blocks_cap;
	uint32_t *last;         /* last doc of each block */
	struct pblock **blocks;
	/* dense form, when segs is not NULL: segment k holds docs
	 * [k * SEG_DOCS, (k + 1) * SEG_DOCS); NULL when it has none */
	struct dseg **segs;
	uint32_t nsegs;
	uint32_t segs_cap;
};

/* A slot of the term table: the id beside its number, so that a probe
 * reads one cache line. */
struct term_slot {
	uint64_t id;
	uint32_t term;          /* term number + 1; 0: empty */
};

/* A posting's fields as parsed, before they go to the doc columns. */
struct doc_hot {
	int64_t posted_at;
	int64_t expires_at;     /* INT64_MAX: never expires */
	int32_t salary;         /* salary_max, else salary_min, else -1 */
	uint32_t dl;
	uint8_t edu;
	uint8_t flags;
};

/* open_until: open while the clock is before it.  Unix seconds held in
 * 32 bits: 0 for a closed posting (and a free doc number), OPEN_FOREVER
 * for one without expires_at or expiring after early 2106. */
#define OPEN_FOREVER UINT32_MAX

struct doc_cold {
	char *id;
	uint8_t *fwd;           /* delta varints of sorted term numbers */
	uint32_t fwd_len;
	uint32_t nterms;
};

/* One distinct term of a posting being put. */
struct pterm {
	uint64_t id;
	uint32_t wtf;
	uint32_t term;          /* term number, once resolved */
};

/*
 * The table that merges a posting's repeated tokens while it is
 * tokenised: term id -> terms index + 1.  One per tokenising thread, not
 * per posting, so that it stays in cache; empty between postings.
 */
struct prep_slots {
	uint32_t *v;
	uint32_t cap;           /* a power of two */
};

/* The writer's scratch: the posting being put, parsed and tokenised. */
struct prep {
	char id[INDEX_ID_BYTES_MAX + 1];
	size_t id_len;
	struct doc_hot hot;
	uint32_t city;
	const char *category;
	size_t category_len;
	struct pterm *terms;
	uint32_t nterms;
	uint32_t terms_cap;
	struct prep_slots *slots; /* the tokenising thread's, meanwhile */
	uint32_t weight;        /* of the field being tokenised */
	uint32_t *old;          /* decoded forward list of the old version */
	uint32_t old_cap;
	msgpack_zone zone;
};

struct index {
	const struct ref *ref;
	pthread_rwlock_t lock;
	pthread_mutex_t writer;
	/* terms: open addressing from term id to term number + 1 */
	struct term_slot *term_slots;
	uint32_t term_slots_cap;
	struct plist *lists;
	uint32_t nlists;
	uint32_t lists_cap;
	/* documents, one column per field so that a filter reads only the
	 * field it checks: open_until is 4 bytes a doc and stays in cache */
	uint32_t *open_until;
	uint32_t *dl;
	int64_t *posted_at;
	int32_t *salary;
	uint8_t *edu;
	uint8_t *flags;
	struct doc_cold *cold;
	/* the smallest dl of each window of WIN_DOCS doc numbers, never
	 * raised: with a dense list's maxw it bounds a window's scores */
	uint32_t *win_min_dl;
	uint32_t wins_cap;
	/* the docs open at clock open_at, a bit each (docs_cap bits, in
	 * whole segments): writers keep it, and it holds for every clock in
	 * [open_lo, open_hi), between the expiries around open_at */
	uint64_t *open_bits;
	uint32_t open_at;
	uint32_t open_lo;
	uint32_t open_hi;
	uint32_t ndocs;         /* numbers handed out */
	uint32_t docs_cap;
	uint32_t *free_docs;
	uint32_t nfree;
	uint32_t live;
	uint64_t total_dl;
	uint64_t entries;
	uint64_t bytes;
	/* ids: open addressing from id hash to doc + 1 */
	uint32_t *id_slots;
	uint32_t *id_hash;
	uint32_t id_slots_cap;
	struct prep prep;
	struct prep_slots slots;  /* index_put's, under the writer mutex */
	/* sort_terms' scratch, under the writer mutex */
	uint64_t *sort_bits;      /* one bit per term number */
	uint8_t *sort_wtf;        /* weight by term number */
	uint32_t sort_cap;        /* terms the two have room for */
	uint8_t *fwd_buf;         /* fwd_encode's scratch, likewise */
	size_t fwd_cap;
};

/*
 * The bitmap walks count bits at every step.  The build flags target
 * the x86-64 baseline, whose popcount is a library call, so each walk is
 * compiled twice, once for the POPCNT instruction, and a search takes
 * that one on CPUs that have it.  (A plain test and call rather than an
 * ifunc, which sanitizer runtimes do not all support.)  What a walk calls
 * must be inlined into it to be compiled for POPCNT too.
 */
#if defined(__x86_64__) && !defined(__POPCNT__)
#define POPCNT_TARGET __attribute__((target("popcnt")))
#define HAVE_POPCNT() __builtin_cpu_supports("popcnt")
#else
#define POPCNT_TARGET
#define HAVE_POPCNT() 0
#endif
#define WALK_INLINE inline __attribute__((always_inline))

/* ---- memory ---------------------------------------------------------- */

static void *grow_array(void *p, uint32_t *cap, uint32_t need, size_t size,
			uint64_t *bytes)
{
	uint32_t n = *cap ? *cap : 8;
	void *q;

	while (n < need)
		n *= 2;
	if (n == *cap)
		return p;
	q = realloc(p, (size_t)n * size);
	if (!q)
		return NULL;
	*bytes += (uint64_t)(n - *cap) * size;
	*cap = n;
	return q;
}

/* ---- postings lists ---------------------------------------------------- */

static inline uint8_t *pblock_wtf(struct pblock *b)
{
	return (uint8_t *)(b->doc + b->cap);
}

static size_t pblock_size(uint16_t cap)
{
	return sizeof(struct pblock) + (size_t)cap * 5;
}

static struct pblock *pblock_new(struct index *idx, uint16_t cap)
{
	struct pblock *b = malloc(pblock_size(cap));

	if (!b)
		return NULL;
	b->n = 0;
	b->cap = cap;
	b->max_wtf = 0;
	b->min_dl = UINT32_MAX;
	idx->bytes += pblock_size(cap);
	return b;
}

static void pblock_free(struct index *idx, struct pblock *b)
{
	idx->bytes -= pblock_size(b->cap);
	free(b);
}

/* A copy of b with room for cap entries; b is freed. */
static struct pblock *pblock_resize(struct index *idx, struct pblock *b,
				    uint16_t cap)
{
	struct pblock *nb = pblock_new(idx, cap);

	if (!nb)
		return NULL;
	nb->n = b->n;
	nb->max_wtf = b->max_wtf;
	nb->min_dl = b->min_dl;
	memcpy(nb->doc, b->doc, (size_t)b->n * sizeof(uint32_t));
	memcpy(pblock_wtf(nb), pblock_wtf(b), b->n);
	pblock_free(idx, b);
	return nb;
}

/* First position in doc[0..n) holding a value >= target. */
static inline uint32_t lower_bound(const uint32_t *doc, uint32_t n,
				   uint32_t target)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (doc[mid] < target)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The block that holds, or would hold, doc: the first whose last doc is
 * >= doc, else the last block. */
static uint32_t plist_block_for(const struct plist *pl, uint32_t doc)
{
	uint32_t b = lower_bound(pl->last, pl->nblocks, doc);

	return b < pl->nblocks ? b : pl->nblocks - 1;
}

static int plist_insert_block(struct index *idx, struct plist *pl,
			      uint32_t at, struct pblock *b)
{
	uint32_t need = pl->nblocks + 1;
	uint32_t cap = pl->blocks_cap;
	uint32_t *last;
	struct pblock **blocks;

	if (need > cap) {
		last = grow_array(pl->last, &cap, need, sizeof(*last),
				  &idx->bytes);
		if (!last)
			return -ENOMEM;
		pl->last = last;
		cap = pl->blocks_cap;
		blocks = grow_array(pl->blocks, &cap, need, sizeof(*blocks),
				    &idx->bytes);
		if (!blocks)
			return -ENOMEM;
		pl->blocks = blocks;
		pl->blocks_cap = cap;
	}
	memmove(pl->last + at + 1, pl->last + at,
		(pl->nblocks - at) * sizeof(*pl->last));
	memmove(pl->blocks + at + 1, pl->blocks + at,
		(pl->nblocks - at) * sizeof(*pl->blocks));
	pl->blocks[at] = b;
	pl->last[at] = b->n ? b->doc[b->n - 1] : 0;
	pl->nblocks++;
	return 0;
}

static void pblock_bounds(struct index *idx, struct pblock *b)
{
	const uint8_t *w = pblock_wtf(b);

	b->max_wtf = 0;
	b->min_dl = UINT32_MAX;
	for (uint32_t i = 0; i < b->n; i++) {
		uint32_t dl = idx->dl[b->doc[i]];

		if (w[i] > b->max_wtf)
			b->max_wtf = w[i];
		if (dl < b->min_dl)
			b->min_dl = dl;
	}
}

/* Splits the full block at b into two halves; returns 0 or -ENOMEM. */
static int plist_split(struct index *idx, struct plist *pl, uint32_t b)
{
	struct pblock *lo = pl->blocks[b];
	uint16_t half = lo->n / 2;
	struct pblock *hi = pblock_new(idx, BLOCK_ENTRIES_MAX);

	if (!hi)
		return -ENOMEM;
	hi->n = (uint16_t)(lo->n - half);
	memcpy(hi->doc, lo->doc + half, hi->n * sizeof(uint32_t));
	memcpy(pblock_wtf(hi), pblock_wtf(lo) + half, hi->n);
	lo->n = half;
	if (plist_insert_block(idx, pl, b + 1, hi)) {
		lo->n = (uint16_t)(half + hi->n);
		pblock_free(idx, hi);
		return -ENOMEM;
	}
	pl->last[b] = lo->doc[half - 1];
	pblock_bounds(idx, lo);
	pblock_bounds(idx, hi);
	return 0;
}

/* Makes room in block b by doubling it while it is under the largest
 * size.  Returns 1 when b has room, 0 when it is full at the largest
 * size (the caller splits or appends), or -ENOMEM. */
static int plist_grow(struct index *idx, struct plist *pl, uint32_t b)
{
	struct pblock *blk = pl->blocks[b];

	if (blk->n < blk->cap)
		return 1;
	if (blk->cap >= BLOCK_ENTRIES_MAX)
		return 0;
	blk = pblock_resize(idx, blk, (uint16_t)(blk->cap * 2));
	if (!blk)
		return -ENOMEM;
	pl->blocks[b] = blk;
	return 1;
}

/* Makes room for one more entry in the block that doc, which is not
 * past the list's last doc, goes to; returns the block's number, or
 * -ENOMEM.  A full block is split in two. */
static int64_t plist_room(struct index *idx, struct plist *pl, uint32_t doc)
{
	uint32_t b = plist_block_for(pl, doc);
	int rc = plist_grow(idx, pl, b);

	if (rc)
		return rc < 0 ? (int64_t)rc : (int64_t)b;
	if (plist_split(idx, pl, b))
		return -ENOMEM;
	return doc > pl->last[b] ? b + 1 : b;
}

/* The block an append past the last doc goes to, with room made; or
 * -ENOMEM. */
static int64_t plist_tail(struct index *idx, struct plist *pl)
{
	uint32_t b = pl->nblocks - 1;
	struct pblock *blk;
	int rc = plist_grow(idx, pl, b);

	if (rc)
		return rc < 0 ? (int64_t)rc : (int64_t)b;
	/* A full last block is left full, so lists built in doc order keep
	 * their blocks full; a list that filled one block is long enough
	 * to fill the next, which starts at full size. */
	blk = pblock_new(idx, BLOCK_ENTRIES_MAX);
	if (!blk || plist_insert_block(idx, pl, b + 1, blk)) {
		if (blk)
			pblock_free(idx, blk);
		return -ENOMEM;
	}
	return b + 1;
}

static void pblock_widen(struct pblock *blk, uint8_t wtf, uint32_t dl)
{
	if (wtf > blk->max_wtf)
		blk->max_wtf = wtf;
	if (dl < blk->min_dl)
		blk->min_dl = dl;
}

/* Adds doc, not in pl, to the sparse list pl. */
static int plist_insert(struct index *idx, struct plist *pl, uint32_t doc,
			uint8_t wtf, uint32_t dl)
{
	struct pblock *blk;
	int64_t b;
	uint32_t at;
	uint8_t *w;

	if (pl->nblocks == 0) {
		blk = pblock_new(idx, BLOCK_ENTRIES_MIN);
		if (!blk || plist_insert_block(idx, pl, 0, blk)) {
			if (blk)
				pblock_free(idx, blk);
			return -ENOMEM;
		}
	}
	if (pl->blocks[pl->nblocks - 1]->n == 0 ||
	    doc > pl->last[pl->nblocks - 1])
		b = plist_tail(idx, pl);
	else
		b = plist_room(idx, pl, doc);
	if (b < 0)
		return (int)b;
	blk = pl->blocks[b];
	w = pblock_wtf(blk);
	at = blk->n && doc > blk->doc[blk->n - 1] ? blk->n :
	     lower_bound(blk->doc, blk->n, doc);
	memmove(blk->doc + at + 1, blk->doc + at,
		(blk->n - at) * sizeof(uint32_t));
	memmove(w + at + 1, w + at, blk->n - at);
	blk->doc[at] = doc;
	w[at] = wtf;
	blk->n++;
	pl->last[b] = blk->doc[blk->n - 1];
	pblock_widen(blk, wtf, dl);
	return 0;
}

/* Position of doc in pl: block in *b, entry in *at; false when absent. */
static bool plist_find(const struct plist *pl, uint32_t doc, uint32_t *b,
		       uint32_t *at)
{
	const struct pblock *blk;

	if (pl->nblocks == 0)
		return false;
	*b = plist_block_for(pl, doc);
	blk = pl->blocks[*b];
	*at = lower_bound(blk->doc, blk->n, doc);
	return *at < blk->n && blk->doc[*at] == doc;
}

/* Takes doc out of the sparse list pl; false when it was not there. */
static bool plist_remove(struct index *idx, struct plist *pl, uint32_t doc)
{
	struct pblock *blk;
	uint32_t b, at;
	uint8_t *w;

	if (!plist_find(pl, doc, &b, &at))
		return false;
	blk = pl->blocks[b];
	w = pblock_wtf(blk);
	memmove(blk->doc + at, blk->doc + at + 1,
		(blk->n - at - 1) * sizeof(uint32_t));
	memmove(w + at, w + at + 1, blk->n - at - 1);
	blk->n--;
	if (blk->n > 0) {
		pl->last[b] = blk->doc[blk->n - 1];
		return true;
	}
	pblock_free(idx, blk);
	memmove(pl->last + b, pl->last + b + 1,
		(pl->nblocks - b - 1) * sizeof(*pl->last));
	memmove(pl->blocks + b, pl->blocks + b + 1,
		(pl->nblocks - b - 1) * sizeof(*pl->blocks));
	pl->nblocks--;
	return true;
}

/* Sets the weight of doc, already in pl, and widens the bounds. */
static void plist_update(struct plist *pl, uint32_t doc, uint8_t wtf,
			 uint32_t dl)
{
	struct pblock *blk;
	uint32_t b, at;

	if (!plist_find(pl, doc, &b, &at))
		return;
	blk = pl->blocks[b];
	pblock_wtf(blk)[at] = wtf;
	pblock_widen(blk, wtf, dl);
}

/* Frees the sparse form of pl and empties it. */
static void plist_clear(struct index *idx, struct plist *pl)
{
	for (uint32_t b = 0; b < pl->nblocks; b++)
		pblock_free(idx, pl->blocks[b]);
	idx->bytes -= (uint64_t)pl->blocks_cap *
		      (sizeof(*pl->last) + sizeof(*pl->blocks));
	free(pl->blocks);
	free(pl->last);
	pl->blocks = NULL;
	pl->last = NULL;
	pl->nblocks = 0;
	pl->blocks_cap = 0;
}


/* ---- dense lists ------------------------------------------------------ */

static size_t dseg_size(uint32_t cap)
{
	return sizeof(struct dseg) + cap;
}

static struct dseg *dseg_new(struct index *idx, uint32_t cap)
{
	struct dseg *g = calloc(1, dseg_size(cap));

	if (!g)
		return NULL;
	g->cap = (uint16_t)cap;
	idx->bytes += dseg_size(cap);
	return g;
}

static void dseg_free(struct index *idx, struct dseg *g)
{
	idx->bytes -= dseg_size(g->cap);
	free(g);
}

/* Entries of g before bit (0 .. SEG_DOCS - 1): the place of its weight. */
static WALK_INLINE uint32_t dseg_rank(const struct dseg *g, uint32_t bit)
{
	uint64_t below = g->bits[bit / 64] & ((1ull << (bit % 64)) - 1);

	return g->off[bit / 64] + (uint32_t)__builtin_popcountll(below);
}

static inline bool dseg_has(const struct dseg *g, uint32_t bit)
{
	return g->bits[bit / 64] >> (bit % 64) & 1;
}

/* The segment of pl that holds doc, or NULL when it has none there. */
static inline const struct dseg *dense_seg(const struct plist *pl,
					   uint32_t doc)
{
	uint32_t k = doc >> SEG_SHIFT;

	return k < pl->nsegs ? pl->segs[k] : NULL;
}

/* Segment k of pl with room for more entries (docs of the segment not
 * in pl yet), created or grown as needed; NULL for -ENOMEM. */
static struct dseg *dense_room(struct index *idx, struct plist *pl,
			       uint32_t k, uint32_t more)
{
	struct dseg *g;
	uint32_t cap = DSEG_CAP_MIN;

	if (k >= pl->nsegs) {
		uint32_t scap = pl->segs_cap;
		struct dseg **segs = grow_array(pl->segs, &scap, k + 1,
						sizeof(*segs), &idx->bytes);

		if (!segs)
			return NULL;
		memset(segs + pl->nsegs, 0,
		       (scap - pl->nsegs) * sizeof(*segs));
		pl->segs = segs;
		pl->segs_cap = scap;
		pl->nsegs = k + 1;
	}
	g = pl->segs[k];
	while (cap < (g ? g->n : 0) + more)
		cap *= 2;
	if (!g)
		return pl->segs[k] = dseg_new(idx, cap);
	if (cap > g->cap) {
		g = realloc(g, dseg_size(cap));
		if (!g)
			return NULL;
		idx->bytes += cap - g->cap;
		g->cap = (uint16_t)cap;
		pl->segs[k] = g;
	}
	return g;
}

/*
 * Puts bit (a doc not in g yet) into g, which has room.  Docs mostly
 * come in ascending order (a load, new postings), so the common case
 * appends: it touches the word's count only, as words past top keep
 * none.
 */
static inline void dseg_put(struct dseg *g, uint32_t bit, uint8_t wtf)
{
	uint32_t wi = bit / 64, at;

	for (; g->top <= wi; g->top++)
		g->off[g->top] = g->n;
	if (wi + 1u == g->top && !(g->bits[wi] >> (bit % 64))) {
		at = g->n;
	} else {
		at = dseg_rank(g, bit);
		memmove(g->w + at + 1, g->w + at, g->n - at);
	}
	g->w[at] = wtf;
	g->n++;
	g->bits[wi] |= 1ull << (bit % 64);
	for (uint32_t i = wi + 1; i < g->top; i++)
		g->off[i]++;
	if (wtf > g->maxw[bit / WIN_DOCS])
		g->maxw[bit / WIN_DOCS] = wtf;
}

/* Adds doc, not in pl, to the dense list pl. */
static int dense_insert(struct index *idx, struct plist *pl, uint32_t doc,
			uint8_t wtf)
{
	struct dseg *g = dense_room(idx, pl, doc >> SEG_SHIFT, 1);

	if (!g)
		return -ENOMEM;
	dseg_put(g, doc & (SEG_DOCS - 1), wtf);
	return 0;
}

/* Takes doc out of the dense list pl; false when it was not there.  An
 * emptied segment is freed. */
static bool dense_remove(struct index *idx, struct plist *pl, uint32_t doc)
{
	uint32_t k = doc >> SEG_SHIFT, bit = doc & (SEG_DOCS - 1), at;
	struct dseg *g = k < pl->nsegs ? pl->segs[k] : NULL;

	if (!g || !dseg_has(g, bit))
		return false;
	at = dseg_rank(g, bit);
	memmove(g->w + at, g->w + at + 1, g->n - at - 1u);
	g->n--;
	g->bits[bit / 64] &= ~(1ull << (bit % 64));
	for (uint32_t i = bit / 64 + 1; i < g->top; i++)
		g->off[i]--;
	if (g->n == 0) {
		dseg_free(idx, g);
		pl->segs[k] = NULL;
	}
	return true;
}

static void dense_update(struct plist *pl, uint32_t doc, uint8_t wtf)
{
	uint32_t k = doc >> SEG_SHIFT, bit = doc & (SEG_DOCS - 1);
	struct dseg *g = k < pl->nsegs ? pl->segs[k] : NULL;

	if (!g || !dseg_has(g, bit))
		return;
	g->w[dseg_rank(g, bit)] = wtf;
	if (wtf > g->maxw[bit / WIN_DOCS])
		g->maxw[bit / WIN_DOCS] = wtf;
}

/* Frees the dense form of pl and empties it. */
static void dense_clear(struct index *idx, struct plist *pl)
{
	for (uint32_t k = 0; k < pl->nsegs; k++) {
		if (pl->segs[k])
			dseg_free(idx, pl->segs[k]);
	}
	idx->bytes -= (uint64_t)pl->segs_cap * sizeof(*pl->segs);
	free(pl->segs);
	pl->segs = NULL;
	pl->nsegs = 0;
	pl->segs_cap = 0;
}

/* ---- lists in either form ---------------------------------------------- */

/*
 * Rebuilds pl in the other form, entry by entry in doc order, into a
 * scratch list, then frees the old form.  Without memory for the new
 * form the list stays as it is, which is correct, only slower or larger.
 */
static void list_densify(struct index *idx, struct plist *pl)
{
	struct plist d = { .segs = NULL };

	for (uint32_t b = 0; b < pl->nblocks; b++) {
		struct pblock *blk = pl->blocks[b];
		const uint8_t *w = pblock_wtf(blk);

		for (uint32_t i = 0; i < blk->n; i++) {
			if (dense_insert(idx, &d, blk->doc[i], w[i])) {
				dense_clear(idx, &d);
				return;
			}
		}
	}
	plist_clear(idx, pl);
	pl->segs = d.segs;
	pl->nsegs = d.nsegs;
	pl->segs_cap = d.segs_cap;
}

static void list_sparsify(struct index *idx, struct plist *pl)
{
	struct plist p = { .nblocks = 0 };

	for (uint32_t k = 0; k < pl->nsegs; k++) {
		const struct dseg *g = pl->segs[k];

		for (uint32_t i = 0, e = 0; g && i < SEG_WORDS; i++) {
			for (uint64_t m = g->bits[i]; m; m &= m - 1, e++) {
				uint32_t doc = (k << SEG_SHIFT) + i * 64 +
					       (uint32_t)__builtin_ctzll(m);

				if (plist_insert(idx, &p, doc, g->w[e],
						 idx->dl[doc]) == 0)
					continue;
				plist_clear(idx, &p);
				return;
			}
		}
	}
	dense_clear(idx, pl);
	pl->nblocks = p.nblocks;
	pl->blocks_cap = p.blocks_cap;
	pl->last = p.last;
	pl->blocks = p.blocks;
}

/* Moves pl to the form its share of the postings calls for. */
static void list_reform(struct index *idx, struct plist *pl)
{
	uint64_t df = pl->df, n = idx->live;

	if (!pl->segs && df >= DENSE_DF_MIN && df * DENSE_PROMOTE >= n)
		list_densify(idx, pl);
	else if (pl->segs && (df < DENSE_DF_MIN / 2 || df * DENSE_DEMOTE < n))
		list_sparsify(idx, pl);
}

static int list_insert(struct index *idx, struct plist *pl, uint32_t doc,
		       uint8_t wtf, uint32_t dl)
{
	int rc = pl->segs ? dense_insert(idx, pl, doc, wtf) :
			    plist_insert(idx, pl, doc, wtf, dl);

	if (rc)
		return rc;
	if (wtf > pl->max_wtf)
		pl->max_wtf = wtf;
	if (dl < pl->min_dl)
		pl->min_dl = dl;
	pl->df++;
	idx->entries++;
	list_reform(idx, pl);
	return 0;
}

static void list_remove(struct index *idx, struct plist *pl, uint32_t doc)
{
	bool had = pl->segs ? dense_remove(idx, pl, doc) :
			      plist_remove(idx, pl, doc);

	if (!had)
		return;
	pl->df--;
	idx->entries--;
	if (pl->df == 0) {
		pl->max_wtf = 0;
		pl->min_dl = UINT32_MAX;
	}
	list_reform(idx, pl);
}

/* Sets the weight of doc, already in pl, and widens the bounds. */
static void list_update(struct plist *pl, uint32_t doc, uint8_t wtf,
			uint32_t dl)
{
	if (pl->segs)
		dense_update(pl, doc, wtf);
	else
		plist_update(pl, doc, wtf, dl);
	if (wtf > pl->max_wtf)
		pl->max_wtf = wtf;
	if (dl < pl->min_dl)
		pl->min_dl = dl;
}

static void list_destroy(struct index *idx, struct plist *pl)
{
	plist_clear(idx, pl);
	dense_clear(idx, pl);
}

/* ---- terms ------------------------------------------------------------- */

/* Term ids are XXH3 hashes: their low bits index the table directly. */
static uint32_t term_lookup(const struct index *idx, uint64_t id)
{
	uint32_t mask = idx->term_slots_cap - 1;
	uint32_t s = (uint32_t)id & mask;

	if (idx->term_slots_cap == 0)
		return UINT32_MAX;
	for (;;) {
		const struct term_slot *t = &idx->term_slots[s];

		if (t->term == 0)
			return UINT32_MAX;
		if (t->id == id)
			return t->term - 1;
		s = (s + 1) & mask;
	}
}

static void term_slot_set(struct term_slot *slots, uint32_t cap, uint64_t id,
			  uint32_t term)
{
	uint32_t s = (uint32_t)id & (cap - 1);

	while (slots[s].term)
		s = (s + 1) & (cap - 1);
	slots[s].id = id;
	slots[s].term = term + 1;
}

/* Keeps the term table at most half full. */
static int term_table_grow(struct index *idx)
{
	uint32_t cap = idx->term_slots_cap ? idx->term_slots_cap * 2 : 1024;
	struct term_slot *slots;

	if ((uint64_t)(idx->nlists + 1) * 2 <= idx->term_slots_cap)
		return 0;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (uint32_t t = 0; t < idx->nlists; t++)
		term_slot_set(slots, cap, idx->lists[t].term_id, t);
	free(idx->term_slots);
	idx->bytes += (uint64_t)(cap - idx->term_slots_cap) * sizeof(*slots);
	idx->term_slots = slots;
	idx->term_slots_cap = cap;
	return 0;
}

/* Under the write lock: adds a term with an empty list. */
static int64_t term_add(struct index *idx, uint64_t id)
{
	struct plist *lists;
	uint32_t cap = idx->lists_cap;

	if (term_table_grow(idx))
		return -ENOMEM;
	lists = grow_array(idx->lists, &cap, idx->nlists + 1,
			   sizeof(*lists), &idx->bytes);
	if (!lists)
		return -ENOMEM;
	idx->lists = lists;
	idx->lists_cap = cap;
	memset(&lists[idx->nlists], 0, sizeof(*lists));
	lists[idx->nlists].term_id = id;
	lists[idx->nlists].min_dl = UINT32_MAX;
	term_slot_set(idx->term_slots, idx->term_slots_cap, id, idx->nlists);
	return idx->nlists++;
}

static uint64_t filter_key(char kind, const char *value, size_t len)
{
	char key[KEY_BYTES_MAX];

	if (len > CATEGORY_BYTES_MAX)
		len = CATEGORY_BYTES_MAX;
	key[0] = KEY_MARK;
	key[1] = kind;
	memcpy(key + 2, value, len);
	return text_term_id(key, len + 2);
}

/* ---- ids --------------------------------------------------------------- */

static uint32_t id_hash(const char *id, size_t len)
{
	return (uint32_t)text_term_id(id, len);
}

/* The slot holding id, or the empty slot where it would go. */
static uint32_t id_slot(const struct index *idx, const char *id, size_t len,
			uint32_t h)
{
	uint32_t mask = idx->id_slots_cap - 1;
	uint32_t s = h & mask;

	for (;;) {
		uint32_t v = idx->id_slots[s];

		if (v == 0)
			return s;
		if (idx->id_hash[s] == h) {
			const char *have = idx->cold[v - 1].id;

			if (strlen(have) == len && memcmp(have, id, len) == 0)
				return s;
		}
		s = (s + 1) & mask;
	}
}

static uint32_t id_find(const struct index *idx, const char *id, size_t len)
{
	uint32_t s;

	if (idx->id_slots_cap == 0)
		return DOC_END;
	s = id_slot(idx, id, len, id_hash(id, len));
	return idx->id_slots[s] ? idx->id_slots[s] - 1 : DOC_END;
}

/* Keeps the id table at most half full. */
static int id_table_grow(struct index *idx)
{
	uint32_t cap = idx->id_slots_cap ? idx->id_slots_cap * 2 : 1024;
	uint32_t *slots, *hash;

	if ((uint64_t)(idx->live + 1) * 2 <= idx->id_slots_cap)
		return 0;
	slots = calloc(cap, sizeof(*slots));
	hash = calloc(cap, sizeof(*hash));
	if (!slots || !hash) {
		free(slots);
		free(hash);
		return -ENOMEM;
	}
	for (uint32_t s = 0; s < idx->id_slots_cap; s++) {
		uint32_t v = idx->id_slots[s], t;

		if (!v)
			continue;
		t = idx->id_hash[s] & (cap - 1);
		while (slots[t])
			t = (t + 1) & (cap - 1);
		slots[t] = v;
		hash[t] = idx->id_hash[s];
	}
	free(idx->id_slots);
	free(idx->id_hash);
	idx->bytes += (uint64_t)(cap - idx->id_slots_cap) * 8;
	idx->id_slots = slots;
	idx->id_hash = hash;
	idx->id_slots_cap = cap;
	return 0;
}

/* Linear probing deletion by shifting back the entries that follow, so
 * the table needs no tombstones. */
static void id_delete(struct index *idx, uint32_t s)
{
	uint32_t mask = idx->id_slots_cap - 1;
	uint32_t hole = s;

	for (uint32_t t = (s + 1) & mask; idx->id_slots[t];
	     t = (t + 1) & mask) {
		uint32_t home = idx->id_hash[t] & mask;

		/* t's entry may move to the hole when its home is not in
		 * the cyclic range (hole, t]. */
		if (((t - home) & mask) >= ((t - hole) & mask)) {
			idx->id_slots[hole] = idx->id_slots[t];
			idx->id_hash[hole] = idx->id_hash[t];
			hole = t;
		}
	}
	idx->id_slots[hole] = 0;
}

/* ---- parsing a stored posting ----------------------------------------- */

static bool key_is(const msgpack_object *k, const char *name)
{
	size_t len = strlen(name);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == len &&
	       memcmp(k->via.str.ptr, name, len) == 0;
}

static bool obj_int(const msgpack_object *o, int64_t *out)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->via.u64 <= INT64_MAX) {
		*out = (int64_t)o->via.u64;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = o->via.i64;
		return true;
	}
	return false;
}

enum index_education index_education_parse(const char *s, size_t len)
{
	static const char *const names[] = { "专科", "本科", "硕士", "博士" };

	for (int i = 0; i < 4; i++) {
		if (s && strlen(names[i]) == len && memcmp(s, names[i], len) == 0)
			return (enum index_education)i;
	}
	return INDEX_EDU_ANY;
}

static int prep_slots_grow(struct prep *p)
{
	struct prep_slots *sl = p->slots;
	uint32_t cap = sl->cap ? sl->cap * 2 : 1024;
	uint32_t *v = calloc(cap, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < p->nterms; i++) {
		uint32_t s = (uint32_t)p->terms[i].id & (cap - 1);

		while (v[s])
			s = (s + 1) & (cap - 1);
		v[s] = i + 1;
	}
	free(sl->v);
	sl->v = v;
	sl->cap = cap;
	return 0;
}

/* Adds weight to term id's frequency, adding the term when new. */
static int prep_add(struct prep *p, uint64_t id, uint32_t weight)
{
	struct prep_slots *sl = p->slots;
	uint32_t s, v;

	if ((uint64_t)(p->nterms + 1) * 2 > sl->cap && prep_slots_grow(p))
		return -ENOMEM;
	s = (uint32_t)id & (sl->cap - 1);
	while ((v = sl->v[s]) != 0) {
		if (p->terms[v - 1].id == id) {
			p->terms[v - 1].wtf += weight;
			return 0;
		}
		s = (s + 1) & (sl->cap - 1);
	}
	if (p->nterms == p->terms_cap) {
		uint32_t cap = p->terms_cap ? p->terms_cap * 2 : 256;
		struct pterm *t = realloc(p->terms, cap * sizeof(*t));

		if (!t)
			return -ENOMEM;
		p->terms = t;
		p->terms_cap = cap;
	}
	p->terms[p->nterms] = (struct pterm){ .id = id, .wtf = weight };
	sl->v[s] = ++p->nterms;
	return 0;
}

static int on_token(void *ctx, uint64_t term_id, const char *term,
		    size_t term_len, uint32_t position)
{
	struct prep *p = ctx;

	(void)term;
	(void)term_len;
	(void)position;
	p->hot.dl += p->weight;
	return prep_add(p, term_id, p->weight);
}

static int prep_text(struct prep *p, const msgpack_object *o,
		     uint32_t weight)
{
	p->weight = weight;
	if (o->type != MSGPACK_OBJECT_STR)
		return 0;
	return text_tokenize(o->via.str.ptr, o->via.str.size, TEXT_INDEX,
			     on_token, p);
}

static int prep_skills(struct prep *p, const msgpack_object *o)
{
	int rc = 0;

	if (o->type != MSGPACK_OBJECT_ARRAY)
		return 0;
	for (uint32_t i = 0; i < o->via.array.size && !rc; i++)
		rc = prep_text(p, &o->via.array.ptr[i], WEIGHT_SKILLS);
	return rc;
}

/* The filter lists a posting belongs to: its division and the divisions
 * above it, and its category. */
static int prep_filters(struct prep *p, const struct ref *ref)
{
	uint32_t codes[3] = { p->city, p->city / 100 * 100,
			      p->city / 10000 * 10000 };
	char text[8];
	int rc = 0;

	for (int i = 0; i < 3 && !rc && p->city; i++) {
		if (i > 0 && codes[i] == codes[i - 1])
			continue;
		snprintf(text, sizeof(text), "%06u", codes[i]);
		if (ref_division_level(ref, text, 6) == REF_NONE)
			continue;
		rc = prep_add(p, filter_key(KEY_DIVISION, text, 6), 0);
	}
	if (!rc && p->category && p->category_len)
		rc = prep_add(p, filter_key(KEY_CATEGORY, p->category,
					    p->category_len), 0);
	return rc;
}

/* An unknown level reads as the lowest, as a missing one does. */
static uint8_t edu_level(const msgpack_object *v)
{
	enum index_education e = index_education_parse(v->via.str.ptr,
							v->via.str.size);

	return e == INDEX_EDU_ANY ? 0 : (uint8_t)e;
}

static void prep_scalar(struct prep *p, const msgpack_object_kv *kv,
			int64_t *salary_min, int64_t *salary_max)
{
	const msgpack_object *v = &kv->val;
	int64_t n;

	if (key_is(&kv->key, "posted_at") && obj_int(v, &n))
		p->hot.posted_at = n;
	else if (key_is(&kv->key, "expires_at") && obj_int(v, &n))
		p->hot.expires_at = n;
	else if (key_is(&kv->key, "salary_min") && obj_int(v, &n))
		*salary_min = n;
	else if (key_is(&kv->key, "salary_max") && obj_int(v, &n))
		*salary_max = n;
	else if (key_is(&kv->key, "closed") &&
		 v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean)
		p->hot.flags |= DOC_CLOSED;
	else if (key_is(&kv->key, "education_min") &&
		 v->type == MSGPACK_OBJECT_STR)
		p->hot.edu = edu_level(v);
	else if (key_is(&kv->key, "category") &&
		 v->type == MSGPACK_OBJECT_STR) {
		p->category = v->via.str.ptr;
		p->category_len = v->via.str.size;
	} else if (key_is(&kv->key, "city") && v->type == MSGPACK_OBJECT_STR &&
		   v->via.str.size == 6) {
		char code[7];

		memcpy(code, v->via.str.ptr, 6);
		code[6] = '\0';
		p->city = (uint32_t)strtoul(code, NULL, 10);
	}
}

static int prep_id(struct prep *p, const msgpack_object *v)
{
	if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
	    v->via.str.size > INDEX_ID_BYTES_MAX ||
	    memchr(v->via.str.ptr, '\0', v->via.str.size))
		return -EINVAL;
	memcpy(p->id, v->via.str.ptr, v->via.str.size);
	p->id[v->via.str.size] = '\0';
	p->id_len = v->via.str.size;
	return 0;
}

/* Slot tables above this size, grown for one huge posting, are dropped
 * rather than cleared for every posting after it. */
#define PREP_SLOTS_KEEP 8192

/* Empties the slot table, which only the terms of the posting just
 * tokenised occupy (their ids are still in place): cheaper than clearing
 * all of it for a posting of a few hundred terms. */
static void prep_slots_clear(struct prep *p)
{
	struct prep_slots *sl = p->slots;
	uint32_t mask = sl->cap - 1;

	if (sl->cap > PREP_SLOTS_KEEP) {
		free(sl->v);
		sl->v = NULL;
		sl->cap = 0;
		return;
	}
	for (uint32_t i = 0; i < p->nterms; i++) {
		uint32_t s = (uint32_t)p->terms[i].id & mask;

		while (sl->v[s] != i + 1)
			s = (s + 1) & mask;
		sl->v[s] = 0;
	}
	p->slots = NULL;
}

static void prep_reset(struct prep *p)
{
	p->nterms = 0;
	p->id_len = 0;
	p->city = 0;
	p->category = NULL;
	p->category_len = 0;
	memset(&p->hot, 0, sizeof(p->hot));
	p->hot.expires_at = INT64_MAX;
	p->hot.flags = DOC_LIVE;
}

/* Parses and tokenises stored into p, with the calling thread's slots.
 * Outside every lock. */
static int prep_posting(struct prep *p, struct prep_slots *slots,
			const struct ref *ref, const void *stored, size_t len)
{
	int64_t smin = -1, smax = -1;
	msgpack_object map;
	size_t off = 0;
	int rc = 0;

	prep_reset(p);
	p->slots = slots;
	msgpack_zone_clear(&p->zone);
	if (msgpack_unpack(stored, len, &off, &p->zone, &map) !=
	    MSGPACK_UNPACK_SUCCESS || map.type != MSGPACK_OBJECT_MAP) {
		p->slots = NULL;
		return -EINVAL;
	}
	for (uint32_t i = 0; i < map.via.map.size && !rc; i++) {
		const msgpack_object_kv *kv = &map.via.map.ptr[i];

		if (key_is(&kv->key, "id"))
			rc = prep_id(p, &kv->val);
		else if (key_is(&kv->key, "title"))
			rc = prep_text(p, &kv->val, WEIGHT_TITLE);
		else if (key_is(&kv->key, "skills"))
			rc = prep_skills(p, &kv->val);
		else if (key_is(&kv->key, "description"))
			rc = prep_text(p, &kv->val, WEIGHT_DESCRIPTION);
		else
			prep_scalar(p, kv, &smin, &smax);
	}
	if (!rc && p->id_len == 0)
		rc = -EINVAL;
	if (!rc)
		rc = prep_filters(p, ref);
	prep_slots_clear(p);
	if (smax < 0)
		smax = smin;
	p->hot.salary = (int32_t)(smax > INT32_MAX ? INT32_MAX : smax);
	for (uint32_t i = 0; i < p->nterms; i++) {
		if (p->terms[i].wtf > WTF_MAX)
			p->terms[i].wtf = WTF_MAX;
	}
	return rc;
}

/* ---- forward lists ------------------------------------------------------ */

static size_t varint_put(uint8_t *out, uint32_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

/* Decodes a doc's forward list into prep->old; returns the count. */
static int64_t fwd_decode(struct prep *p, const struct doc_cold *c)
{
	uint32_t term = 0, n = 0;
	size_t at = 0;

	if (c->nterms > p->old_cap) {
		uint32_t *old = realloc(p->old, c->nterms * sizeof(*old));

		if (!old)
			return -ENOMEM;
		p->old = old;
		p->old_cap = c->nterms;
	}
	while (at < c->fwd_len && n < c->nterms) {
		uint32_t v = 0;

		for (unsigned shift = 0; at < c->fwd_len; shift += 7) {
			uint8_t byte = c->fwd[at++];

			v |= (uint32_t)(byte & 0x7f) << shift;
			if (!(byte & 0x80))
				break;
		}
		term += v;
		p->old[n++] = term;
	}
	return n;
}

static int fwd_encode(struct index *idx, struct doc_cold *c,
		      const struct pterm *terms, uint32_t n)
{
	size_t need = (size_t)n * 5 + 1, len = 0;
	uint32_t prev = 0;
	uint8_t *buf;

	/* Encoded into scratch first, so the list is allocated once at its
	 * size. */
	if (need > idx->fwd_cap) {
		buf = realloc(idx->fwd_buf, need);
		if (!buf)
			return -ENOMEM;
		idx->fwd_buf = buf;
		idx->fwd_cap = need;
	}
	for (uint32_t i = 0; i < n; i++) {
		len += varint_put(idx->fwd_buf + len, terms[i].term - prev);
		prev = terms[i].term;
	}
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, idx->fwd_buf, len);
	idx->bytes -= c->fwd_len;
	free(c->fwd);
	c->fwd = buf;
	c->fwd_len = (uint32_t)len;
	c->nterms = n;
	idx->bytes += len;
	return 0;
}

/* ---- documents ---------------------------------------------------------- */

static void pterm_swap(struct pterm *a, struct pterm *b)
{
	struct pterm t = *a;

	*a = *b;
	*b = t;
}

/* Sorts by term number: quicksort down to short runs, then insertion
 * sort.  The recursion goes into the smaller side, so its depth is at
 * most log2(n). */
static void pterm_sort(struct pterm *t, uint32_t n)
{
	while (n > 16) {
		uint32_t pivot = t[n / 2].term, i = 0, j = n - 1;

		for (;;) {
			while (t[i].term < pivot)
				i++;
			while (t[j].term > pivot)
				j--;
			if (i >= j)
				break;
			pterm_swap(&t[i++], &t[j--]);
		}
		if (j + 1 < n - j - 1) {
			pterm_sort(t, j + 1);
			t += j + 1;
			n -= j + 1;
		} else {
			pterm_sort(t + j + 1, n - j - 1);
			n = j + 1;
		}
	}
	for (uint32_t i = 1; i < n; i++) {
		for (uint32_t k = i; k > 0 && t[k - 1].term > t[k].term; k--)
			pterm_swap(&t[k - 1], &t[k]);
	}
}

/*
 * Sorts the prep's terms by number.  Term numbers are dense, so when the
 * vocabulary is small next to the posting's term count, setting one bit
 * per term and reading the bits back in order beats comparing: with a few
 * thousand terms, most postings of a few hundred terms go this way.
 */
static int sort_terms(struct index *idx)
{
	struct prep *p = &idx->prep;
	uint32_t words = (idx->nlists + 63) / 64, n = 0;

	if ((uint64_t)words > (uint64_t)p->nterms * 4) {
		pterm_sort(p->terms, p->nterms);
		return 0;
	}
	if (idx->nlists > idx->sort_cap) {
		uint32_t cap = words * 64 * 2;
		uint64_t *bits = calloc(cap / 64, sizeof(*bits));
		uint8_t *w = malloc(cap);

		if (!bits || !w) {
			free(bits);
			free(w);
			return -ENOMEM;
		}
		free(idx->sort_bits);
		free(idx->sort_wtf);
		idx->sort_bits = bits;
		idx->sort_wtf = w;
		idx->sort_cap = cap;
	}
	for (uint32_t i = 0; i < p->nterms; i++) {
		uint32_t t = p->terms[i].term;

		idx->sort_bits[t / 64] |= 1ull << (t % 64);
		idx->sort_wtf[t] = (uint8_t)p->terms[i].wtf;
	}
	for (uint32_t w = 0; w < words; w++) {
		uint64_t b = idx->sort_bits[w];

		idx->sort_bits[w] = 0;
		while (b) {
			uint32_t t = w * 64 + (uint32_t)__builtin_ctzll(b);

			b &= b - 1;
			p->terms[n].term = t;
			p->terms[n++].wtf = idx->sort_wtf[t];
		}
	}
	return 0;
}

/* Resolves the prep's term ids to numbers, adding new terms, and sorts
 * them by number.  Under the write lock. */
static int resolve_terms(struct index *idx)
{
	struct prep *p = &idx->prep;

	for (uint32_t i = 0; i < p->nterms; i++) {
		uint32_t t = term_lookup(idx, p->terms[i].id);

		if (t == UINT32_MAX) {
			int64_t added = term_add(idx, p->terms[i].id);

			if (added < 0)
				return -ENOMEM;
			t = (uint32_t)added;
		}
		p->terms[i].term = t;
	}
	return sort_terms(idx);
}

/* Grows the open bitmap from docs_cap docs to cap, in whole segments so
 * that a walk over a dense list's segment may read it too. */
static int open_grow(struct index *idx, uint32_t cap)
{
	size_t had = ((size_t)idx->docs_cap + SEG_DOCS - 1) / SEG_DOCS *
		     SEG_WORDS;
	size_t words = ((size_t)cap + SEG_DOCS - 1) / SEG_DOCS * SEG_WORDS;
	uint64_t *bits;

	if (words == had && idx->open_bits)
		return 0;
	bits = realloc(idx->open_bits, words * sizeof(*bits));
	if (!bits)
		return -ENOMEM;
	memset(bits + had, 0, (words - had) * sizeof(*bits));
	idx->bytes += (words - had) * sizeof(*bits);
	idx->open_bits = bits;
	return 0;
}

/* Keeps the open bitmap true after open_until[doc] changed.  Under the
 * write lock. */
static void open_note(struct index *idx, uint32_t doc)
{
	uint32_t u = idx->open_until[doc];
	uint64_t bit = 1ull << (doc % 64);

	if (u > idx->open_at) {
		idx->open_bits[doc / 64] |= bit;
		if (u < idx->open_hi)
			idx->open_hi = u;
	} else {
		idx->open_bits[doc / 64] &= ~bit;
		if (u > idx->open_lo)
			idx->open_lo = u;
	}
}

/* Recomputes the open bitmap for clock t.  Under the write lock. */
static void open_rebuild(struct index *idx, uint32_t t)
{
	uint32_t lo = 0, hi = UINT32_MAX;

	memset(idx->open_bits, 0, ((size_t)idx->ndocs + 63) / 64 * 8);
	for (uint32_t d = 0; d < idx->ndocs; d++) {
		uint32_t u = idx->open_until[d];

		if (u > t) {
			idx->open_bits[d / 64] |= 1ull << (d % 64);
			hi = u < hi ? u : hi;
		} else {
			lo = u > lo ? u : lo;
		}
	}
	idx->open_at = t;
	idx->open_lo = lo;
	idx->open_hi = hi;
}

/* Grows every doc column to hold need docs; 0 or -ENOMEM. */
static int docs_grow(struct index *idx, uint32_t need)
{
	void **cols[] = {
		(void **)&idx->open_until, (void **)&idx->dl,
		(void **)&idx->posted_at, (void **)&idx->salary,
		(void **)&idx->edu, (void **)&idx->flags, (void **)&idx->cold,
		(void **)&idx->free_docs,
	};
	size_t sizes[] = {
		sizeof(*idx->open_until), sizeof(*idx->dl),
		sizeof(*idx->posted_at), sizeof(*idx->salary),
		sizeof(*idx->edu), sizeof(*idx->flags), sizeof(*idx->cold),
		sizeof(*idx->free_docs),
	};
	uint32_t cap = idx->docs_cap, wins = idx->wins_cap;
	uint32_t *win;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *p;

		cap = idx->docs_cap;
		p = grow_array(*cols[i], &cap, need, sizes[i], &idx->bytes);
		if (!p)
			return -ENOMEM;
		*cols[i] = p;
	}
	win = grow_array(idx->win_min_dl, &wins,
			 (cap + WIN_DOCS - 1) / WIN_DOCS, sizeof(*win),
			 &idx->bytes);
	if (!win)
		return -ENOMEM;
	memset(win + idx->wins_cap, 0xff,
	       (wins - idx->wins_cap) * sizeof(*win));
	idx->win_min_dl = win;
	idx->wins_cap = wins;
	if (open_grow(idx, cap))
		return -ENOMEM;
	idx->docs_cap = cap;
	return 0;
}

/* A fresh doc number: a freed one, else the next. */
static int64_t doc_alloc(struct index *idx)
{
	if (idx->nfree)
		return idx->free_docs[--idx->nfree];
	if (idx->ndocs == DOC_END - 1)
		return -ENOMEM;
	if (idx->ndocs == idx->docs_cap && docs_grow(idx, idx->ndocs + 1))
		return -ENOMEM;
	memset(&idx->cold[idx->ndocs], 0, sizeof(idx->cold[0]));
	idx->flags[idx->ndocs] = 0;
	idx->open_until[idx->ndocs] = 0;
	return idx->ndocs++;
}

/* Takes doc out of every list it is in and frees its number.  Under the
 * write lock. */
static void doc_drop(struct index *idx, uint32_t doc)
{
	struct doc_cold *c = &idx->cold[doc];
	struct prep *p = &idx->prep;
	int64_t n = fwd_decode(p, c);

	/* Without room to decode, walk every list: slow, but exact. */
	if (n < 0) {
		for (uint32_t t = 0; t < idx->nlists; t++)
			list_remove(idx, &idx->lists[t], doc);
	}
	for (int64_t i = 0; i < n; i++)
		list_remove(idx, &idx->lists[p->old[i]], doc);
	if (idx->flags[doc] & DOC_LIVE) {
		idx->live--;
		idx->total_dl -= idx->dl[doc];
	}
	idx->bytes -= c->fwd_len + (c->id ? strlen(c->id) + 1 : 0);
	free(c->fwd);
	free(c->id);
	memset(c, 0, sizeof(*c));
	idx->flags[doc] = 0;
	idx->open_until[doc] = 0;
	open_note(idx, doc);
	idx->free_docs[idx->nfree++] = doc;
}

static uint32_t open_until_of(const struct doc_hot *h)
{
	if (h->flags & DOC_CLOSED || h->expires_at <= 0)
		return 0;
	if (h->expires_at >= (int64_t)OPEN_FOREVER)
		return OPEN_FOREVER;
	return (uint32_t)h->expires_at;
}

static void doc_set(struct index *idx, uint32_t doc, const struct doc_hot *h)
{
	idx->open_until[doc] = open_until_of(h);
	open_note(idx, doc);
	idx->dl[doc] = h->dl;
	idx->posted_at[doc] = h->posted_at;
	idx->salary[doc] = h->salary;
	idx->edu[doc] = h->edu;
	idx->flags[doc] = h->flags;
	if (h->dl < idx->win_min_dl[doc / WIN_DOCS])
		idx->win_min_dl[doc / WIN_DOCS] = h->dl;
}

/* Brings doc's lists from its old terms (prep->old, n of them) to the
 * prep's terms: a merge of two sorted term lists. */
static int doc_relist(struct index *idx, uint32_t doc, int64_t n_old)
{
	struct prep *p = &idx->prep;
	uint32_t dl = p->hot.dl;
	uint32_t i = 0;
	int64_t j = 0;
	int rc = 0;

	while (!rc && (i < p->nterms || j < n_old)) {
		uint32_t nt = i < p->nterms ? p->terms[i].term : UINT32_MAX;
		uint32_t ot = j < n_old ? p->old[j] : UINT32_MAX;

		if (ot < nt) {
			list_remove(idx, &idx->lists[ot], doc);
			j++;
			continue;
		}
		if (ot == nt) {
			list_update(&idx->lists[nt], doc,
				     (uint8_t)p->terms[i].wtf, dl);
			j++;
		} else {
			rc = list_insert(idx, &idx->lists[nt], doc,
					  (uint8_t)p->terms[i].wtf, dl);
		}
		i++;
	}
	return rc;
}

/* Applies the prep to doc (existing when old, else fresh).  Under the
 * write lock. */
static int doc_apply(struct index *idx, uint32_t doc, bool old)
{
	struct prep *p = &idx->prep;
	struct doc_cold *c = &idx->cold[doc];
	int64_t n_old = 0;
	int rc;

	if (old) {
		n_old = fwd_decode(p, c);
		if (n_old < 0)
			return -ENOMEM;
		idx->live--;
		idx->total_dl -= idx->dl[doc];
	}
	/* The lists read dl from here when a block is split. */
	doc_set(idx, doc, &p->hot);
	idx->live++;
	idx->total_dl += p->hot.dl;
	rc = doc_relist(idx, doc, n_old);
	if (!rc)
		rc = fwd_encode(idx, c, p->terms, p->nterms);
	return rc;
}

/* Registers a new doc under the prep's id. */
static int64_t doc_add(struct index *idx)
{
	struct prep *p = &idx->prep;
	uint32_t s, h = id_hash(p->id, p->id_len);
	char *id;
	int64_t doc;

	if (id_table_grow(idx))
		return -ENOMEM;
	id = malloc(p->id_len + 1);
	if (!id)
		return -ENOMEM;
	doc = doc_alloc(idx);
	if (doc < 0) {
		free(id);
		return -ENOMEM;
	}
	memcpy(id, p->id, p->id_len + 1);
	idx->cold[doc].id = id;
	idx->bytes += p->id_len + 1;
	s = id_slot(idx, p->id, p->id_len, h);
	idx->id_slots[s] = (uint32_t)doc + 1;
	idx->id_hash[s] = h;
	return doc;
}

static void doc_forget(struct index *idx, uint32_t doc)
{
	const char *id = idx->cold[doc].id;
	size_t len = strlen(id);

	id_delete(idx, id_slot(idx, id, len, id_hash(id, len)));
	doc_drop(idx, doc);
}

/* Under the write lock.  A failure leaves the posting out of the index
 * altogether rather than half in it. */
static int put_locked(struct index *idx)
{
	struct prep *p = &idx->prep;
	uint32_t doc = id_find(idx, p->id, p->id_len);
	bool old = doc != DOC_END;
	int64_t added;
	int rc;

	rc = resolve_terms(idx);
	if (rc)
		return rc;
	if (!old) {
		added = doc_add(idx);
		if (added < 0)
			return (int)added;
		doc = (uint32_t)added;
	}
	rc = doc_apply(idx, doc, old);
	if (rc) {
		/* The doc may be in lists of both versions by now. */
		for (uint32_t i = 0; i < p->nterms; i++)
			list_remove(idx, &idx->lists[p->terms[i].term], doc);
		doc_forget(idx, doc);
	}
	return rc;
}

int index_put(struct index *idx, const void *stored, size_t len)
{
	int rc;

	pthread_mutex_lock(&idx->writer);
	rc = prep_posting(&idx->prep, &idx->slots, idx->ref, stored, len);
	if (rc == 0) {
		pthread_rwlock_wrlock(&idx->lock);
		rc = put_locked(idx);
		pthread_rwlock_unlock(&idx->lock);
	}
	pthread_mutex_unlock(&idx->writer);
	return rc;
}

int index_remove(struct index *idx, const char *id, size_t len)
{
	uint32_t doc;
	int rc = -ENOENT;

	pthread_mutex_lock(&idx->writer);
	doc = id_find(idx, id, len);
	if (doc != DOC_END) {
		pthread_rwlock_wrlock(&idx->lock);
		doc_forget(idx, doc);
		pthread_rwlock_unlock(&idx->lock);
		rc = 0;
	}
	pthread_mutex_unlock(&idx->writer);
	return rc;
}

bool index_contains(struct index *idx, const char *id, size_t len)
{
	bool found;

	pthread_rwlock_rdlock(&idx->lock);
	found = id_find(idx, id, len) != DOC_END;
	pthread_rwlock_unlock(&idx->lock);
	return found;
}

/* ---- search: cursors ---------------------------------------------------- */

/* A walk over a sparse list. */
struct cursor {
	const struct plist *pl;
	const uint32_t *doc;    /* the current block */
	const uint8_t *wtf;
	uint32_t n;
	uint32_t i;
	uint32_t b;
	uint32_t cur;           /* current doc, DOC_END past the end */
	double idf;             /* 0 for a filter list */
	double ub;              /* bound of this term over the block */
};

/* A dense list in a search: read at the doc in hand, not walked. */
struct dterm {
	const struct plist *pl;
	const struct dseg *g;   /* the segment of the doc in hand */
	uint32_t k;             /* g's number; UINT32_MAX: none yet */
	double idf;             /* 0 for a filter list */
	uint32_t win;           /* the window ub is for; UINT32_MAX: none */
	double ub;              /* bound of this term over that window */
};

/* A list the search reads, before it is placed as a cursor or dterm. */
struct slot {
	const struct plist *pl;
	double idf;
	uint32_t q;             /* query term, or UINT32_MAX for a filter */
};

/* src[] of a query term read from a dterm, not a cursor */
#define SRC_DENSE 0x80u
#define SLOTS_MAX (INDEX_QUERY_TERMS_MAX + 2)
/* Rankings of up to this many entries live on the stack. */
#define RANK_STACK 128

struct search {
	struct index *idx;
	const struct index_query *q;
	struct slot slot[SLOTS_MAX];
	uint32_t nslot;
	struct cursor cur[SLOTS_MAX];  /* by length, the shortest leads */
	uint32_t ncur;
	struct dterm dn[SLOTS_MAX];    /* by length, the shortest first */
	uint32_t ndn;
	uint64_t qterm[INDEX_QUERY_TERMS_MAX];
	double qidf[INDEX_QUERY_TERMS_MAX];
	uint8_t src[INDEX_QUERY_TERMS_MAX]; /* query term -> cursor or dterm */
	uint32_t nq;
	double avgdl;
	double norm;            /* the score of unbounded frequencies */
	uint32_t now;           /* the query's clock, as open_until holds it */
	/* the index's open bitmap when it holds for now and the query asks
	 * for open postings: the open check is then a bit, or part of an AND */
	const uint64_t *open_bits;
	bool open_stale;        /* it would, were it brought to now */
	bool doc_check;         /* doc_passes has more than open_bits to do */
	bool empty;             /* some list is missing: nothing matches */
	/* the ranking: a heap whose top is the worst kept */
	struct rank *heap;
	uint32_t heap_len;
	uint32_t heap_max;
	uint64_t total;
};

struct rank {
	double score;
	int64_t posted_at;
	uint32_t doc;
};

static inline double term_part(double idf, uint32_t w, double kd)
{
	return idf * ((double)w * (BM25_K1 + 1.0)) / ((double)w + kd);
}

static inline double doc_k(uint32_t dl, double avgdl)
{
	return BM25_K1 * (1.0 - BM25_B + BM25_B * (double)dl / avgdl);
}

static void cursor_block(struct search *s, struct cursor *c, uint32_t b)
{
	struct pblock *blk;

	c->b = b;
	c->i = 0;
	if (b >= c->pl->nblocks) {
		c->cur = DOC_END;
		c->n = 0;
		return;
	}
	blk = c->pl->blocks[b];
	c->doc = blk->doc;
	c->wtf = pblock_wtf(blk);
	c->n = blk->n;
	c->cur = c->doc[0];
	/* Blocks lie anywhere in memory: fetch the next one's head while
	 * this one is read, so a scan does not stall at every block. */
	if (b + 1 < c->pl->nblocks)
		__builtin_prefetch(c->pl->blocks[b + 1]);
	if (c->idf > 0)
		c->ub = term_part(c->idf, blk->max_wtf,
				  doc_k(blk->min_dl, s->avgdl));
}

static inline void cursor_next(struct search *s, struct cursor *c)
{
	if (++c->i < c->n)
		c->cur = c->doc[c->i];
	else
		cursor_block(s, c, c->b + 1);
}

/* Moves c to its first doc >= target. */
static void cursor_seek(struct search *s, struct cursor *c, uint32_t target)
{
	const uint32_t *last = c->pl->last;
	uint32_t nb = c->pl->nblocks;
	uint32_t i;

	if (c->cur >= target)
		return;
	if (last[c->b] < target) {
		uint32_t lo = c->b + 1, step = 1, hi;

		/* Gallop, then bisect, over the block directory. */
		while (lo + step < nb && last[lo + step] < target) {
			lo += step;
			step *= 2;
		}
		hi = lo + step < nb ? lo + step : nb;
		lo += lower_bound(last + lo, hi - lo, target);
		cursor_block(s, c, lo);
		if (c->cur >= target)
			return;
	}
	i = c->i + 1;
	while (i < c->n && i < c->i + 8 && c->doc[i] < target)
		i++;
	if (i < c->n && c->doc[i] < target)
		i += lower_bound(c->doc + i, c->n - i, target);
	c->i = i;
	c->cur = c->doc[i];
}

/* The bound of d's term over the window of doc; d->g is doc's segment.
 * Cached per window: one division per term and window. */
static double dterm_ub(const struct search *s, struct dterm *d, uint32_t doc)
{
	uint32_t win = doc / WIN_DOCS;

	if (d->win != win) {
		uint8_t w = d->g->maxw[(doc & (SEG_DOCS - 1)) / WIN_DOCS];

		d->win = win;
		d->ub = d->idf > 0 ? term_part(d->idf, w,
			doc_k(s->idx->win_min_dl[win], s->avgdl)) : 0;
	}
	return d->ub;
}

/* ---- search: ranking ----------------------------------------------------- */

/* True when a ranks below b. */
static bool rank_worse(const struct index *idx, const struct rank *a,
		       const struct rank *b)
{
	if (a->score != b->score)
		return a->score < b->score;
	if (a->posted_at != b->posted_at)
		return a->posted_at < b->posted_at;
	return strcmp(idx->cold[a->doc].id, idx->cold[b->doc].id) > 0;
}

static void heap_down(struct search *s, uint32_t i)
{
	struct rank *h = s->heap;

	for (;;) {
		uint32_t l = 2 * i + 1, w = i;

		if (l < s->heap_len && rank_worse(s->idx, &h[l], &h[w]))
			w = l;
		if (l + 1 < s->heap_len && rank_worse(s->idx, &h[l + 1], &h[w]))
			w = l + 1;
		if (w == i)
			return;
		struct rank t = h[i];

		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

static void heap_offer(struct search *s, const struct rank *r)
{
	struct rank *h = s->heap;
	uint32_t i;

	if (s->heap_len == s->heap_max) {
		if (!rank_worse(s->idx, &h[0], r))
			return;
		h[0] = *r;
		heap_down(s, 0);
		return;
	}
	i = s->heap_len++;
	h[i] = *r;
	while (i > 0 && rank_worse(s->idx, &h[i], &h[(i - 1) / 2])) {
		struct rank t = h[i];

		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static inline bool doc_passes(const struct search *s, uint32_t doc)
{
	const struct index *idx = s->idx;
	const struct index_query *q = s->q;

	if (s->open_bits) {
		if (!(s->open_bits[doc / 64] >> (doc % 64) & 1))
			return false;
	} else if (q->open_only && idx->open_until[doc] <= s->now) {
		return false;
	}
	if (q->education != INDEX_EDU_ANY &&
	    idx->edu[doc] > (uint8_t)q->education)
		return false;
	return q->salary_min < 0 || idx->salary[doc] >= q->salary_min;
}

/* The weight of query term t in doc, which every list stands on (each
 * cursor at doc, each dterm at doc's segment). */
static WALK_INLINE uint32_t doc_wtf(const struct search *s, uint32_t t,
				      uint32_t doc)
{
	if (s->src[t] & SRC_DENSE) {
		const struct dseg *g = s->dn[s->src[t] & ~SRC_DENSE].g;

		return g->w[dseg_rank(g, doc & (SEG_DOCS - 1))];
	} else {
		const struct cursor *c = &s->cur[s->src[t]];

		return c->wtf[c->i];
	}
}

/* Offers doc to the ranking with the query terms' weights w: its score,
 * the terms summed in query order. */
static WALK_INLINE void offer_weighed(struct search *s, uint32_t doc,
					const uint32_t *w)
{
	double kd = doc_k(s->idx->dl[doc], s->avgdl);
	struct rank r = { .doc = doc };

	for (uint32_t t = 0; t < s->nq; t++)
		r.score += term_part(s->qidf[t], w[t], kd);
	/* A full ranking takes no lower score: posted_at need not be read. */
	if (s->heap_len == s->heap_max && r.score < s->heap[0].score)
		return;
	r.posted_at = s->idx->posted_at[doc];
	heap_offer(s, &r);
}

/* Offers doc, which every list stands on, to the ranking. */
static WALK_INLINE void offer_scored(struct search *s, uint32_t doc)
{
	uint32_t w[INDEX_QUERY_TERMS_MAX];

	for (uint32_t t = 0; t < s->nq; t++)
		w[t] = doc_wtf(s, t, doc);
	offer_weighed(s, doc, w);
}

/* Offers doc to the ranking of a search without text. */
static inline void offer_browse(struct search *s, uint32_t doc)
{
	struct rank r = { .posted_at = s->idx->posted_at[doc], .doc = doc };

	heap_offer(s, &r);
}

/* Scores doc unless its bound shows it cannot enter a full ranking. */
static WALK_INLINE void take_scored(struct search *s, uint32_t doc)
{
	if (s->heap_len == s->heap_max) {
		double ub = 0;

		for (uint32_t i = 0; i < s->ncur; i++)
			ub += s->cur[i].ub;
		for (uint32_t i = 0; i < s->ndn; i++)
			ub += dterm_ub(s, &s->dn[i], doc);
		if (ub * PRUNE_SLACK < s->heap[0].score)
			return;
	}
	offer_scored(s, doc);
}

static WALK_INLINE void take(struct search *s, uint32_t doc)
{
	if (!doc_passes(s, doc))
		return;
	s->total++;
	if (s->nq)
		take_scored(s, doc);
	else
		offer_browse(s, doc);
}

/* ---- search: the walks -------------------------------------------------- */

/* True when every dense list holds doc; points each dterm at the segment
 * that holds it.  Docs come in ascending order, so a dterm keeps its
 * segment while the docs stay in it. */
static WALK_INLINE bool dense_all(struct search *s, uint32_t doc)
{
	uint32_t bit = doc & (SEG_DOCS - 1), k = doc >> SEG_SHIFT;

	for (uint32_t i = 0; i < s->ndn; i++) {
		struct dterm *d = &s->dn[i];

		if (d->k != k) {
			d->k = k;
			d->g = dense_seg(d->pl, doc);
		}
		if (!d->g || !dseg_has(d->g, bit))
			return false;
	}
	return true;
}

/* With sparse lists: leapfrog over them, the shortest leading, and look
 * each doc they agree on up in the dense lists. */
static WALK_INLINE void run_lists(struct search *s)
{
	struct cursor *c = s->cur;
	uint32_t doc = c[0].cur;

	while (doc != DOC_END) {
		uint32_t j;

		for (j = 1; j < s->ncur; j++) {
			cursor_seek(s, &c[j], doc);
			if (c[j].cur != doc)
				break;
		}
		if (j < s->ncur) {
			doc = c[j].cur;
			if (doc == DOC_END)
				break;
			cursor_seek(s, &c[0], doc);
			doc = c[0].cur;
			continue;
		}
		if (dense_all(s, doc))
			take(s, doc);
		cursor_next(s, &c[0]);
		doc = c[0].cur;
	}
}

/* Points every dterm at its list's segment k; false when one list has
 * nothing there. */
static bool dense_bind(struct search *s, uint32_t k)
{
	for (uint32_t i = 0; i < s->ndn; i++) {
		const struct plist *pl = s->dn[i].pl;
		const struct dseg *g = k < pl->nsegs ? pl->segs[k] : NULL;

		if (!g)
			return false;
		s->dn[i].g = g;
		s->dn[i].k = k;
	}
	return true;
}

/* The bound f(k) of the scores of docs with k = doc_k(dl) >= k, from
 * each term's largest weight w[i] (c[i] = idf * (k1 + 1)). */
static double bound_at(const double *c, const double *w, uint32_t n,
		       double k)
{
	double f = 0;

	for (uint32_t i = 0; i < n; i++)
		f += c[i] * w[i] / (w[i] + k);
	return f;
}

/*
 * The longest doc of the window at base that can still enter the full
 * ranking: -1 when none can.  A doc's score is at most f(doc_k(dl)), the
 * sum over the terms of idf * m * (k1 + 1) / (m + doc_k(dl)) with m the
 * term's largest weight in the window.  f falls as k grows and is convex,
 * so with A = sum of idf * m * (k1 + 1), its root k* (where f meets the
 * threshold t) lies in [A / t - max m, A / t - min m], and a chord across
 * that bracket meets t at or beyond k*: two chord steps give a k >= k*,
 * exact when every m is the same.
 */
static int64_t window_dl_max(const struct search *s, uint32_t base)
{
	double c[SLOTS_MAX], w[SLOTS_MAX], a = 0, lo_m = WTF_MAX, hi_m = 0;
	double t = s->heap[0].score / PRUNE_SLACK, k_lo, k_hi, f_lo, f_hi, dl;
	double k_min = BM25_K1 * (1.0 - BM25_B);
	uint32_t n = 0, win = (base & (SEG_DOCS - 1)) / WIN_DOCS;

	for (uint32_t i = 0; i < s->ndn; i++) {
		if (s->dn[i].idf <= 0)
			continue;
		c[n] = s->dn[i].idf * (BM25_K1 + 1.0);
		w[n] = s->dn[i].g->maxw[win];
		a += c[n] * w[n];
		lo_m = w[n] < lo_m ? w[n] : lo_m;
		hi_m = w[n] > hi_m ? w[n] : hi_m;
		n++;
	}
	if (n == 0 || t <= 0)
		return INT64_MAX;
	k_hi = a / t - lo_m;
	if (hi_m > lo_m) {
		k_lo = a / t - hi_m;
		k_lo = k_lo < k_min ? k_min : k_lo;
		f_lo = bound_at(c, w, n, k_lo);
		if (f_lo < t)
			return -1;
		f_hi = bound_at(c, w, n, k_hi);
		for (int step = 0; step < 2 && f_lo > f_hi; step++) {
			double k = k_lo + (f_lo - t) * (k_hi - k_lo) /
					  (f_lo - f_hi);

			if (!(k < k_hi))
				break;
			k_hi = k;
			f_hi = bound_at(c, w, n, k);
		}
	}
	dl = (k_hi / BM25_K1 - 1.0 + BM25_B) * s->avgdl / BM25_B;
	if (dl < 0)
		return -1;
	return dl < 4e9 ? (int64_t)dl + 1 : INT64_MAX;
}

/* Counts the docs of m (a window's, from doc base on) that pass. */
static WALK_INLINE void window_count(struct search *s, uint32_t base,
				       const uint64_t *m)
{
	for (uint32_t i = 0; i < WIN_WORDS; i++) {
		if (!s->doc_check) {
			s->total += (uint32_t)__builtin_popcountll(m[i]);
			continue;
		}
		for (uint64_t b = m[i]; b; b &= b - 1)
			s->total += doc_passes(s, base + i * 64 +
				(uint32_t)__builtin_ctzll(b));
	}
}

/*
 * The docs of one window that every list holds (m, a bitmap from doc
 * base on).  Once the ranking is full, a doc longer than the window's
 * bound allows is only counted, not scored.
 */
static WALK_INLINE void run_window(struct search *s, uint32_t base,
				     const uint64_t *m)
{
	int64_t dl_max = INT64_MAX;

	if (s->nq && s->heap_len == s->heap_max)
		dl_max = window_dl_max(s, base);
	if (dl_max < (int64_t)s->idx->win_min_dl[base / WIN_DOCS]) {
		window_count(s, base, m);
		return;
	}
	for (uint32_t i = 0; i < WIN_WORDS; i++) {
		for (uint64_t b = m[i]; b; b &= b - 1) {
			uint32_t doc = base + i * 64 +
				       (uint32_t)__builtin_ctzll(b);

			if (!doc_passes(s, doc))
				continue;
			s->total++;
			if (!s->nq)
				offer_browse(s, doc);
			else if (s->idx->dl[doc] <= dl_max)
				offer_scored(s, doc);
		}
	}
}

/*
 * ANDs the words of window w (a word number in segment k) of every
 * dterm's segment, and of the open bitmap, into m; false when that
 * leaves no doc.  A list at a
 * time over the window's words, not a word at a time over the lists, so
 * that the inner loop has no branch that depends on the data.
 */
static WALK_INLINE bool window_and(const struct search *s, uint32_t k,
				     uint32_t w, uint64_t *m)
{
	uint64_t any = 0;

	if (s->open_bits) {
		const uint64_t *open = s->open_bits + (size_t)k * SEG_WORDS + w;

		for (uint32_t i = 0; i < WIN_WORDS; i++) {
			m[i] = s->dn[0].g->bits[w + i] & open[i];
			any |= m[i];
		}
	} else {
		for (uint32_t i = 0; i < WIN_WORDS; i++) {
			m[i] = s->dn[0].g->bits[w + i];
			any |= m[i];
		}
	}
	for (uint32_t d = 1; d < s->ndn && any; d++) {
		const uint64_t *bits = s->dn[d].g->bits + w;

		any = 0;
		for (uint32_t i = 0; i < WIN_WORDS; i++) {
			m[i] &= bits[i];
			any |= m[i];
		}
	}
	return any != 0;
}

/* With dense lists only: AND their bitmaps, a window at a time. */
static WALK_INLINE void run_bitmaps(struct search *s)
{
	uint32_t nsegs = UINT32_MAX;

	for (uint32_t i = 0; i < s->ndn; i++) {
		if (s->dn[i].pl->nsegs < nsegs)
			nsegs = s->dn[i].pl->nsegs;
	}
	for (uint32_t k = 0; k < nsegs; k++) {
		if (!dense_bind(s, k))
			continue;
		for (uint32_t w = 0; w < SEG_WORDS; w += WIN_WORDS) {
			uint64_t m[WIN_WORDS];

			if (window_and(s, k, w, m))
				run_window(s, (k << SEG_SHIFT) + w * 64, m);
		}
	}
}

/* Without any list: every live doc (every open one, from the bitmap). */
static WALK_INLINE void run_scan(struct search *s)
{
	if (s->open_bits) {
		for (uint32_t w = 0; w < (s->idx->ndocs + 63) / 64; w++) {
			for (uint64_t b = s->open_bits[w]; b; b &= b - 1)
				take(s, w * 64 + (uint32_t)__builtin_ctzll(b));
		}
		return;
	}
	for (uint32_t doc = 0; doc < s->idx->ndocs; doc++) {
		if (s->idx->flags[doc] & DOC_LIVE)
			take(s, doc);
	}
}

/* The walk for the lists placed: sparse ones lead, else the bitmaps. */
static WALK_INLINE void run(struct search *s)
{
	if (s->nslot == 0)
		run_scan(s);
	else if (s->ncur)
		run_lists(s);
	else
		run_bitmaps(s);
}

POPCNT_TARGET
static void run_popcnt(struct search *s)
{
	run(s);
}

static void run_plain(struct search *s)
{
	run(s);
}

/* ---- search: setup -------------------------------------------------------- */

static int on_query_token(void *ctx, uint64_t term_id, const char *term,
			  size_t term_len, uint32_t position)
{
	struct search *s = ctx;

	(void)term;
	(void)term_len;
	(void)position;
	for (uint32_t i = 0; i < s->nq; i++) {
		if (s->qterm[i] == term_id)
			return 0;
	}
	if (s->nq == INDEX_QUERY_TERMS_MAX)
		return -E2BIG;
	s->qterm[s->nq++] = term_id;
	return 0;
}

/* Adds the list of term id to the search; marks the search empty when no
 * posting has the term. */
static void add_slot(struct search *s, uint64_t id, double idf, uint32_t q)
{
	uint32_t t = term_lookup(s->idx, id);

	if (t == UINT32_MAX || s->idx->lists[t].df == 0) {
		s->empty = true;
		return;
	}
	s->slot[s->nslot++] = (struct slot){
		.pl = &s->idx->lists[t], .idf = idf, .q = q,
	};
}

static double idf_of(uint32_t df, uint32_t n)
{
	return log(1.0 + ((double)n - df + 0.5) / ((double)df + 0.5));
}

static void add_term_slots(struct search *s)
{
	uint32_t n = s->idx->live;

	for (uint32_t i = 0; i < s->nq && !s->empty; i++) {
		uint32_t t = term_lookup(s->idx, s->qterm[i]);

		if (t == UINT32_MAX || s->idx->lists[t].df == 0) {
			s->empty = true;
			return;
		}
		s->qidf[i] = idf_of(s->idx->lists[t].df, n);
		add_slot(s, s->qterm[i], s->qidf[i], i);
		s->norm += s->qidf[i] * (BM25_K1 + 1.0);
	}
}

static int slot_df_cmp(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;

	return (x->pl->df > y->pl->df) - (x->pl->df < y->pl->df);
}

/* Sorts the lists by length and makes each a cursor (sparse) or a dterm
 * (dense); src[] says where each query term's weight is read. */
static void place_slots(struct search *s)
{
	qsort(s->slot, s->nslot, sizeof(s->slot[0]), slot_df_cmp);
	for (uint32_t i = 0; i < s->nslot; i++) {
		const struct slot *sl = &s->slot[i];
		uint32_t src;

		if (sl->pl->segs) {
			s->dn[s->ndn] = (struct dterm){
				.pl = sl->pl, .idf = sl->idf,
				.k = UINT32_MAX, .win = UINT32_MAX,
			};
			src = SRC_DENSE | s->ndn++;
		} else {
			struct cursor *c = &s->cur[s->ncur];

			memset(c, 0, sizeof(*c));
			c->pl = sl->pl;
			c->idf = sl->idf;
			cursor_block(s, c, 0);
			src = s->ncur++;
		}
		if (sl->q != UINT32_MAX)
			s->src[sl->q] = (uint8_t)src;
	}
}

static int check_query(const struct index *idx, const struct index_query *q)
{
	if (q->k < 1 || q->k > INDEX_K_MAX || q->offset > INDEX_OFFSET_MAX)
		return -EINVAL;
	if (q->education < INDEX_EDU_ANY || q->education > INDEX_EDU_BOSHI)
		return -EINVAL;
	if (q->city && (strlen(q->city) != 6 ||
			ref_division_level(idx->ref, q->city, 6) == REF_NONE))
		return -EINVAL;
	return 0;
}

static int rank_cmp_best(const void *a, const void *b, void *ctx)
{
	const struct rank *x = a, *y = b;

	if (rank_worse(ctx, y, x))
		return -1;
	return rank_worse(ctx, x, y) ? 1 : 0;
}

static void fill_hits(struct search *s, struct index_hit *hits,
		      struct index_result *res)
{
	qsort_r(s->heap, s->heap_len, sizeof(*s->heap), rank_cmp_best, s->idx);
	res->total = s->total;
	res->total_exact = true;
	res->hits_len = 0;
	for (uint32_t i = s->q->offset; i < s->heap_len; i++) {
		struct index_hit *h = &hits[res->hits_len++];
		const char *id = s->idx->cold[s->heap[i].doc].id;

		snprintf(h->id, sizeof(h->id), "%s", id);
		h->score = s->norm > 0 ? s->heap[i].score / s->norm : 0.0;
		if (h->score > 1.0)
			h->score = 1.0;
	}
}

static void search_locked(struct search *s)
{
	const struct index_query *q = s->q;
	struct index *idx = s->idx;

	s->now = q->now < 0 ? 0 : q->now >= (int64_t)OPEN_FOREVER ?
		 OPEN_FOREVER - 1 : (uint32_t)q->now;
	s->avgdl = idx->live ? (double)idx->total_dl / idx->live : 1.0;
	if (s->avgdl <= 0)
		s->avgdl = 1.0;
	if (q->open_only && idx->open_lo <= s->now && s->now < idx->open_hi)
		s->open_bits = idx->open_bits;
	/* Bringing the bitmap back is worth it for a clock moving forward,
	 * not for every caller's clock. */
	s->open_stale = q->open_only && !s->open_bits &&
			(s->now > idx->open_at || idx->open_lo > idx->open_hi);
	s->doc_check = (q->open_only && !s->open_bits) ||
		       q->education != INDEX_EDU_ANY || q->salary_min >= 0;
	add_term_slots(s);
	if (!s->empty && q->city)
		add_slot(s, filter_key(KEY_DIVISION, q->city, 6), 0,
			 UINT32_MAX);
	if (!s->empty && q->category)
		add_slot(s, filter_key(KEY_CATEGORY, q->category,
				       q->category_len), 0, UINT32_MAX);
	if (s->empty)
		return;
	place_slots(s);
	if (HAVE_POPCNT())
		run_popcnt(s);
	else
		run_plain(s);
}

/*
 * Brings the open bitmap to clock t for the searches after this one,
 * unless a writer is busy: it takes the writer mutex without waiting,
 * then the write lock, like an update of one posting.
 */
static void open_refresh(struct index *idx, uint32_t t)
{
	if (pthread_mutex_trylock(&idx->writer))
		return;
	pthread_rwlock_wrlock(&idx->lock);
	if (!(idx->open_lo <= t && t < idx->open_hi) && idx->open_bits)
		open_rebuild(idx, t);
	pthread_rwlock_unlock(&idx->lock);
	pthread_mutex_unlock(&idx->writer);
}

int index_search(struct index *idx, const struct index_query *q,
		 struct index_hit *hits, struct index_result *res)
{
	struct rank stack[RANK_STACK];
	struct search s = { .idx = idx, .q = q };
	int rc = check_query(idx, q);

	res->total = 0;
	res->total_exact = true;
	res->hits_len = 0;
	if (rc)
		return rc;
	if (q->q && q->q_len) {
		rc = text_tokenize(q->q, q->q_len, TEXT_QUERY, on_query_token,
				   &s);
		if (rc)
			return rc;
	}
	s.heap_max = q->k + q->offset;
	s.heap = s.heap_max <= RANK_STACK ? stack :
		 malloc(s.heap_max * sizeof(*s.heap));
	if (!s.heap)
		return -ENOMEM;
	pthread_rwlock_rdlock(&idx->lock);
	search_locked(&s);
	fill_hits(&s, hits, res);
	pthread_rwlock_unlock(&idx->lock);
	if (s.heap != stack)
		free(s.heap);
	if (s.open_stale)
		open_refresh(idx, s.now);
	return 0;
}

/* ---- loading ------------------------------------------------------------- */

/*
 * A load overlaps the two halves of a put: a helper thread parses and
 * tokenises one batch while the loading thread applies the batch before
 * it.  Stored bytes are copied into the batch, since the caller's (an
 * LMDB scan's) live only for the call.
 *
 * A batch is applied under one hold of the write lock, and its list
 * entries term by term rather than posting by posting: a posting has
 * entries in a few hundred lists, and making them one posting at a time
 * would touch the end of each of those lists once per posting, each a
 * cache miss; grouped, a list's end is fetched once per batch.  New
 * postings take their doc numbers, columns and forward lists at once,
 * and their entries wait in the loader until the batch ends (or until
 * a re-put, which goes the way of index_put, needs them made).
 */
#define LOAD_BATCH_POSTINGS 256
_Static_assert(LOAD_BATCH_POSTINGS <= UINT16_MAX + 1, "load_entry.at");

/* One list entry the loader has yet to make: 8 bytes, so that a batch's
 * entries stay in cache while they are sorted and made. */
struct load_entry {
	uint32_t term;
	uint16_t at;            /* the posting's place in pend[] */
	uint8_t wtf;
};

/* Entries are sorted by term with radix passes of this many bits. */
#define LOAD_RADIX_BITS 16

struct load_batch {
	char *raw;
	size_t raw_len;
	size_t raw_cap;
	size_t off[LOAD_BATCH_POSTINGS];
	size_t len[LOAD_BATCH_POSTINGS];
	int rc[LOAD_BATCH_POSTINGS];
	struct prep preps[LOAD_BATCH_POSTINGS];
	uint32_t n;
};

struct index_loader {
	struct index *idx;
	pthread_t helper;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct load_batch *todo;   /* handed to the helper */
	struct load_batch *done;   /* prepared, for the loading thread */
	struct load_batch *filling;
	bool quit;
	int rc;                    /* the first failure */
	uint64_t invalid;
	uint32_t zones;            /* preps with a zone to destroy */
	struct prep_slots slots;   /* the helper's */
	struct load_batch batch[2];
	/* entries of the postings in pend[], in posting order, and a
	 * second array to sort them into */
	struct load_entry *ent;
	struct load_entry *sorted;
	uint32_t nent;
	uint32_t ent_cap;
	uint32_t *counts;          /* one per radix digit value */
	uint32_t pend[LOAD_BATCH_POSTINGS];
	uint32_t npend;
};

static void *load_helper(void *arg)
{
	struct index_loader *l = arg;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		struct load_batch *b;

		while (!l->todo && !l->quit)
			pthread_cond_wait(&l->cond, &l->lock);
		if (!l->todo)
			break;
		b = l->todo;
		l->todo = NULL;
		pthread_mutex_unlock(&l->lock);
		for (uint32_t i = 0; i < b->n; i++)
			b->rc[i] = prep_posting(&b->preps[i], &l->slots,
						l->idx->ref,
						b->raw + b->off[i], b->len[i]);
		pthread_mutex_lock(&l->lock);
		l->done = b;
		pthread_cond_broadcast(&l->cond);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* Makes room for n more entries; 0 or -ENOMEM. */
static int load_room(struct index_loader *l, uint32_t n)
{
	uint32_t cap = l->ent_cap;
	struct load_entry *e;

	if ((uint64_t)l->nent + n > UINT32_MAX / 2)
		return -ENOMEM;
	if (l->nent + n <= cap)
		return 0;
	while (cap < l->nent + n)
		cap = cap ? cap * 2 : 65536;
	e = realloc(l->ent, (size_t)cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	l->ent = e;
	e = realloc(l->sorted, (size_t)cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	l->sorted = e;
	l->ent_cap = cap;
	return 0;
}

/* Sorts l->ent by term, keeping posting order within a term: LSD radix,
 * one pass while term numbers fit a digit. */
static void load_sort(struct index_loader *l, uint32_t nterms)
{
	uint32_t digit = 1u << LOAD_RADIX_BITS;

	for (uint32_t shift = 0; shift < 32; shift += LOAD_RADIX_BITS) {
		uint32_t values = nterms <= digit ? nterms : digit, at = 0;
		struct load_entry *t;

		memset(l->counts, 0, values * sizeof(*l->counts));
		for (uint32_t i = 0; i < l->nent; i++)
			l->counts[(l->ent[i].term >> shift) & (digit - 1)]++;
		for (uint32_t v = 0; v < values; v++) {
			uint32_t c = l->counts[v];

			l->counts[v] = at;
			at += c;
		}
		for (uint32_t i = 0; i < l->nent; i++) {
			uint32_t v = (l->ent[i].term >> shift) & (digit - 1);

			l->sorted[l->counts[v]++] = l->ent[i];
		}
		t = l->ent;
		l->ent = l->sorted;
		l->sorted = t;
		if (((nterms - 1) >> shift) < digit)
			break;
	}
}

/* Puts the leading entries of e[0..n) that fall in one segment into the
 * dense list pl; returns how many, 0 for -ENOMEM. */
static uint32_t load_dense_run(struct index_loader *l, struct plist *pl,
			       const struct load_entry *e, uint32_t n)
{
	uint32_t k = l->pend[e[0].at] >> SEG_SHIFT, m = 1;
	struct dseg *g;

	while (m < n && l->pend[e[m].at] >> SEG_SHIFT == k)
		m++;
	g = dense_room(l->idx, pl, k, m);
	if (!g)
		return 0;
	for (uint32_t i = 0; i < m; i++)
		dseg_put(g, l->pend[e[i].at] & (SEG_DOCS - 1), e[i].wtf);
	return m;
}

/*
 * Adds the n entries e of pl's term, in ascending doc order and none in
 * pl yet: what list_insert does for each, with the work of a dense list
 * shared along each segment's run.
 */
static int load_run(struct index_loader *l, struct plist *pl,
		    const struct load_entry *e, uint32_t n)
{
	struct index *idx = l->idx;

	for (uint32_t i = 0, m; i < n; i += m) {
		if (pl->segs) {
			m = load_dense_run(l, pl, e + i, n - i);
			if (!m)
				return -ENOMEM;
		} else {
			uint32_t doc = l->pend[e[i].at];

			m = 1;
			if (plist_insert(idx, pl, doc, e[i].wtf, idx->dl[doc]))
				return -ENOMEM;
		}
		for (uint32_t j = i; j < i + m; j++) {
			uint32_t dl = idx->dl[l->pend[e[j].at]];

			if (e[j].wtf > pl->max_wtf)
				pl->max_wtf = e[j].wtf;
			if (dl < pl->min_dl)
				pl->min_dl = dl;
		}
		pl->df += m;
		idx->entries += m;
		list_reform(idx, pl);
	}
	return 0;
}

/*
 * Makes the pending entries, term by term.  On failure every pending
 * posting is taken out again, so each posting is in the index whole or
 * not at all.  Under the write lock.
 */
static int load_flush(struct index_loader *l)
{
	struct index *idx = l->idx;
	int rc = 0;

	if (l->nent)
		load_sort(l, idx->nlists);
	for (uint32_t i = 0, j; i < l->nent && !rc; i = j) {
		for (j = i + 1; j < l->nent && l->ent[j].term == l->ent[i].term;
		     j++)
			;
		rc = load_run(l, &idx->lists[l->ent[i].term], l->ent + i,
			      j - i);
	}
	for (uint32_t i = 0; i < l->npend && rc; i++)
		doc_forget(idx, l->pend[i]);
	l->nent = 0;
	l->npend = 0;
	return rc;
}

/*
 * Applies idx->prep: a new posting gets its doc and leaves its entries
 * pending; a re-put first makes the pending entries, then goes the way
 * of index_put.  Under the write lock.
 */
static int load_one(struct index_loader *l)
{
	struct index *idx = l->idx;
	struct prep *p = &idx->prep;
	int64_t doc;
	int rc;

	if (id_find(idx, p->id, p->id_len) != DOC_END) {
		rc = load_flush(l);
		return rc ? rc : put_locked(idx);
	}
	rc = resolve_terms(idx);
	if (!rc)
		rc = load_room(l, p->nterms);
	if (rc)
		return rc;
	doc = doc_add(idx);
	if (doc < 0)
		return (int)doc;
	doc_set(idx, (uint32_t)doc, &p->hot);
	idx->live++;
	idx->total_dl += p->hot.dl;
	rc = fwd_encode(idx, &idx->cold[doc], p->terms, p->nterms);
	if (rc) {
		doc_forget(idx, (uint32_t)doc);
		return rc;
	}
	for (uint32_t i = 0; i < p->nterms; i++)
		l->ent[l->nent++] = (struct load_entry){
			.term = p->terms[i].term, .at = (uint16_t)l->npend,
			.wtf = (uint8_t)p->terms[i].wtf,
		};
	l->pend[l->npend++] = (uint32_t)doc;
	return 0;
}

/* Applies a prepared batch under one hold of the write lock.  The
 * writer mutex is held by the loader. */
static void load_apply(struct index_loader *l, struct load_batch *b)
{
	struct index *idx = l->idx;
	int rc;

	pthread_rwlock_wrlock(&idx->lock);
	for (uint32_t i = 0; i < b->n && l->rc == 0; i++) {
		struct prep mine = idx->prep;

		if (b->rc[i]) {
			l->invalid += b->rc[i] == -EINVAL;
			if (b->rc[i] != -EINVAL)
				l->rc = b->rc[i];
			continue;
		}
		/* The put code works on idx->prep: lend it this one. */
		idx->prep = b->preps[i];
		rc = load_one(l);
		b->preps[i] = idx->prep;
		idx->prep = mine;
		if (rc)
			l->rc = rc;
	}
	rc = load_flush(l);
	if (rc && l->rc == 0)
		l->rc = rc;
	pthread_rwlock_unlock(&idx->lock);
}

/* Hands the filling batch to the helper, takes back the one it prepared
 * before, and applies that. */
static void load_step(struct index_loader *l)
{
	struct load_batch *ready;

	pthread_mutex_lock(&l->lock);
	while (!l->done)
		pthread_cond_wait(&l->cond, &l->lock);
	ready = l->done;
	l->done = NULL;
	l->todo = l->filling;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	load_apply(l, ready);
	ready->n = 0;
	ready->raw_len = 0;
	l->filling = ready;
}

static void prep_destroy(struct prep *p)
{
	free(p->terms);
	free(p->old);
	msgpack_zone_destroy(&p->zone);
}

static void loader_free(struct index_loader *l)
{
	for (uint32_t z = 0; z < l->zones; z++)
		prep_destroy(&l->batch[z / LOAD_BATCH_POSTINGS]
				      .preps[z % LOAD_BATCH_POSTINGS]);
	free(l->batch[0].raw);
	free(l->batch[1].raw);
	free(l->ent);
	free(l->sorted);
	free(l->counts);
	free(l->slots.v);
	free(l);
}

int index_load_begin(struct index *idx, struct index_loader **out)
{
	struct index_loader *l = calloc(1, sizeof(*l));
	int rc;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->idx = idx;
	l->counts = malloc(sizeof(*l->counts) << LOAD_RADIX_BITS);
	if (!l->counts) {
		free(l);
		return -ENOMEM;
	}
	for (; l->zones < 2 * LOAD_BATCH_POSTINGS; l->zones++) {
		struct prep *p = &l->batch[l->zones / LOAD_BATCH_POSTINGS]
				  .preps[l->zones % LOAD_BATCH_POSTINGS];

		if (!msgpack_zone_init(&p->zone, 4096)) {
			loader_free(l);
			return -ENOMEM;
		}
	}
	/* The helper starts as if it had prepared an empty batch. */
	l->filling = &l->batch[0];
	l->done = &l->batch[1];
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	rc = pthread_create(&l->helper, NULL, load_helper, l);
	if (rc) {
		pthread_mutex_destroy(&l->lock);
		pthread_cond_destroy(&l->cond);
		loader_free(l);
		return -rc;
	}
	pthread_mutex_lock(&idx->writer);
	*out = l;
	return 0;
}

int index_load_add(struct index_loader *l, const void *stored, size_t len)
{
	struct load_batch *b = l->filling;

	if (l->rc)
		return l->rc;
	if (b->raw_len + len > b->raw_cap) {
		size_t cap = (b->raw_len + len) * 2;
		char *raw = realloc(b->raw, cap);

		if (!raw)
			return -ENOMEM;
		b->raw = raw;
		b->raw_cap = cap;
	}
	memcpy(b->raw + b->raw_len, stored, len);
	b->off[b->n] = b->raw_len;
	b->len[b->n++] = len;
	b->raw_len += len;
	if (b->n == LOAD_BATCH_POSTINGS)
		load_step(l);
	return l->rc;
}

int index_load_end(struct index_loader *l, uint64_t *invalid)
{
	int rc;

	/* The partial batch goes to the helper, then comes back. */
	load_step(l);
	load_step(l);
	pthread_mutex_unlock(&l->idx->writer);
	pthread_mutex_lock(&l->lock);
	l->quit = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->helper, NULL);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	rc = l->rc;
	if (invalid)
		*invalid = l->invalid;
	loader_free(l);
	return rc;
}

/* ---- life ----------------------------------------------------------------- */

int index_new(struct index **out, const struct ref *ref)
{
	struct index *idx = calloc(1, sizeof(*idx));
	pthread_rwlockattr_t attr;

	*out = NULL;
	if (!idx)
		return -ENOMEM;
	if (!msgpack_zone_init(&idx->prep.zone, 4096)) {
		free(idx);
		return -ENOMEM;
	}
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
		PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&idx->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&idx->writer, NULL);
	idx->ref = ref;
	idx->bytes = sizeof(*idx);
	/* no clock yet: the open bitmap holds for none */
	idx->open_lo = UINT32_MAX;
	*out = idx;
	return 0;
}

void index_free(struct index *idx)
{
	if (!idx)
		return;
	for (uint32_t t = 0; t < idx->nlists; t++)
		list_destroy(idx, &idx->lists[t]);
	for (uint32_t d = 0; d < idx->ndocs; d++) {
		free(idx->cold[d].id);
		free(idx->cold[d].fwd);
	}
	free(idx->lists);
	free(idx->term_slots);
	free(idx->open_until);
	free(idx->dl);
	free(idx->posted_at);
	free(idx->salary);
	free(idx->edu);
	free(idx->flags);
	free(idx->cold);
	free(idx->win_min_dl);
	free(idx->open_bits);
	free(idx->free_docs);
	free(idx->id_slots);
	free(idx->id_hash);
	free(idx->prep.terms);
	free(idx->prep.old);
	free(idx->slots.v);
	free(idx->sort_bits);
	free(idx->sort_wtf);
	free(idx->fwd_buf);
	msgpack_zone_destroy(&idx->prep.zone);
	pthread_rwlock_destroy(&idx->lock);
	pthread_mutex_destroy(&idx->writer);
	free(idx);
}

void index_stats_get(struct index *idx, struct index_stats *out)
{
	pthread_rwlock_rdlock(&idx->lock);
	out->postings = idx->live;
	out->terms = idx->nlists;
	out->entries = idx->entries;
	out->bytes = idx->bytes;
	pthread_rwlock_unlock(&idx->lock);
}
