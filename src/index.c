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
 * the doc is in.
 *
 * Lists.  A term's postings list holds (doc, weighted term frequency)
 * pairs in doc order, cut into blocks of at most BLOCK_ENTRIES_MAX
 * entries with a directory of each block's last doc, so a cursor skips by
 * galloping over the directory and an update touches one block.  Each
 * block keeps the largest weighted frequency and the smallest document
 * length of its entries: with them a search bounds the score any doc in
 * the block can get from this term (block-max pruning).  Deletes leave
 * the bounds as they were; a stale bound is larger than the truth, so it
 * only prunes less.  Filters are lists too: every posting is in the list
 * of each division it lies inside (county, city, province) and of its
 * category, under term ids no token can have (they start with a byte
 * 0x01 that text never yields).
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
 * microseconds), a search for its run.  The writer mutex serialises
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

struct plist {
	uint64_t term_id;
	uint32_t df;            /* entries */
	uint32_t nblocks;
	uint32_t blocks_cap;
	uint32_t min_dl;        /* bounds over the list, never loosened */
	uint8_t max_wtf;
	uint32_t *last;         /* last doc of each block */
	struct pblock **blocks;
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
	uint32_t *slots;        /* term id -> terms index + 1 */
	uint32_t slots_cap;     /* a power of two */
	uint32_t weight;        /* of the field being tokenised */
	uint32_t *old;          /* decoded forward list of the old version */
	uint32_t old_cap;
	uint64_t *bits;         /* one bit per term number, for sorting */
	uint8_t *bits_wtf;      /* weight by term number, for sorting */
	uint32_t bits_cap;      /* terms the two have room for */
	msgpack_zone zone;
};

struct index {
	const struct ref *ref;
	pthread_rwlock_t lock;
	pthread_mutex_t writer;
	/* terms: open addressing from term id to term number + 1 */
	uint32_t *term_slots;
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
};

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

/* Makes room for one more entry in the block that doc, which is not
 * past the list's last doc, goes to; returns the block's number, or
 * -ENOMEM.  A full block is split in two. */
static int64_t plist_room(struct index *idx, struct plist *pl, uint32_t doc)
{
	uint32_t b = plist_block_for(pl, doc);
	struct pblock *blk = pl->blocks[b];

	if (blk->n < blk->cap)
		return b;
	if (blk->cap < BLOCK_ENTRIES_MAX) {
		blk = pblock_resize(idx, blk, (uint16_t)(blk->cap * 2));
		if (!blk)
			return -ENOMEM;
		pl->blocks[b] = blk;
		return b;
	}
	if (plist_split(idx, pl, b))
		return -ENOMEM;
	return doc > pl->last[b] ? b + 1 : b;
}

/* The block an append past the last doc goes to, with room made; or
 * -ENOMEM. */
static int64_t plist_tail(struct index *idx, struct plist *pl)
{
	uint32_t b = pl->nblocks - 1;
	struct pblock *blk = pl->blocks[b];

	if (blk->n < blk->cap)
		return b;
	if (blk->cap < BLOCK_ENTRIES_MAX) {
		blk = pblock_resize(idx, blk, (uint16_t)(blk->cap * 2));
		if (!blk)
			return -ENOMEM;
		pl->blocks[b] = blk;
		return b;
	}
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

static void plist_widen(struct plist *pl, struct pblock *blk, uint8_t wtf,
			uint32_t dl)
{
	if (wtf > blk->max_wtf)
		blk->max_wtf = wtf;
	if (dl < blk->min_dl)
		blk->min_dl = dl;
	if (wtf > pl->max_wtf)
		pl->max_wtf = wtf;
	if (dl < pl->min_dl)
		pl->min_dl = dl;
}

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
	plist_widen(pl, blk, wtf, dl);
	pl->df++;
	idx->entries++;
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

static void plist_remove(struct index *idx, struct plist *pl, uint32_t doc)
{
	struct pblock *blk;
	uint32_t b, at;
	uint8_t *w;

	if (!plist_find(pl, doc, &b, &at))
		return;
	blk = pl->blocks[b];
	w = pblock_wtf(blk);
	memmove(blk->doc + at, blk->doc + at + 1,
		(blk->n - at - 1) * sizeof(uint32_t));
	memmove(w + at, w + at + 1, blk->n - at - 1);
	blk->n--;
	pl->df--;
	idx->entries--;
	if (blk->n > 0) {
		pl->last[b] = blk->doc[blk->n - 1];
		return;
	}
	pblock_free(idx, blk);
	memmove(pl->last + b, pl->last + b + 1,
		(pl->nblocks - b - 1) * sizeof(*pl->last));
	memmove(pl->blocks + b, pl->blocks + b + 1,
		(pl->nblocks - b - 1) * sizeof(*pl->blocks));
	pl->nblocks--;
	if (pl->nblocks == 0) {
		pl->max_wtf = 0;
		pl->min_dl = UINT32_MAX;
	}
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
	plist_widen(pl, blk, wtf, dl);
}

static void plist_destroy(struct plist *pl)
{
	for (uint32_t b = 0; b < pl->nblocks; b++)
		free(pl->blocks[b]);
	free(pl->blocks);
	free(pl->last);
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
		uint32_t v = idx->term_slots[s];

		if (v == 0)
			return UINT32_MAX;
		if (idx->lists[v - 1].term_id == id)
			return v - 1;
		s = (s + 1) & mask;
	}
}

static void term_slot_set(uint32_t *slots, uint32_t cap, uint64_t id,
			  uint32_t term)
{
	uint32_t s = (uint32_t)id & (cap - 1);

	while (slots[s])
		s = (s + 1) & (cap - 1);
	slots[s] = term + 1;
}

/* Keeps the term table at most half full. */
static int term_table_grow(struct index *idx)
{
	uint32_t cap = idx->term_slots_cap ? idx->term_slots_cap * 2 : 1024;
	uint32_t *slots;

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
	uint32_t cap = p->slots_cap ? p->slots_cap * 2 : 1024;
	uint32_t *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < p->nterms; i++) {
		uint32_t s = (uint32_t)p->terms[i].id & (cap - 1);

		while (slots[s])
			s = (s + 1) & (cap - 1);
		slots[s] = i + 1;
	}
	free(p->slots);
	p->slots = slots;
	p->slots_cap = cap;
	return 0;
}

/* Adds weight to term id's frequency, adding the term when new. */
static int prep_add(struct prep *p, uint64_t id, uint32_t weight)
{
	uint32_t s, v;

	if ((uint64_t)(p->nterms + 1) * 2 > p->slots_cap && prep_slots_grow(p))
		return -ENOMEM;
	s = (uint32_t)id & (p->slots_cap - 1);
	while ((v = p->slots[s]) != 0) {
		if (p->terms[v - 1].id == id) {
			p->terms[v - 1].wtf += weight;
			return 0;
		}
		s = (s + 1) & (p->slots_cap - 1);
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
	p->slots[s] = ++p->nterms;
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

static void prep_reset(struct prep *p)
{
	if (p->slots_cap > PREP_SLOTS_KEEP) {
		free(p->slots);
		p->slots = NULL;
		p->slots_cap = 0;
	} else if (p->slots) {
		memset(p->slots, 0, (size_t)p->slots_cap * sizeof(*p->slots));
	}
	p->nterms = 0;
	p->id_len = 0;
	p->city = 0;
	p->category = NULL;
	p->category_len = 0;
	memset(&p->hot, 0, sizeof(p->hot));
	p->hot.expires_at = INT64_MAX;
	p->hot.flags = DOC_LIVE;
}

/* Parses and tokenises stored into p.  Outside every lock. */
static int prep_posting(struct prep *p, const struct ref *ref,
			const void *stored, size_t len)
{
	int64_t smin = -1, smax = -1;
	msgpack_object map;
	size_t off = 0;
	int rc = 0;

	prep_reset(p);
	msgpack_zone_clear(&p->zone);
	if (msgpack_unpack(stored, len, &off, &p->zone, &map) !=
	    MSGPACK_UNPACK_SUCCESS || map.type != MSGPACK_OBJECT_MAP)
		return -EINVAL;
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
	uint8_t *buf = malloc((size_t)n * 5 + 1);
	uint32_t prev = 0;
	size_t len = 0;

	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		len += varint_put(buf + len, terms[i].term - prev);
		prev = terms[i].term;
	}
	idx->bytes -= c->fwd_len;
	free(c->fwd);
	c->fwd = realloc(buf, len ? len : 1);
	if (!c->fwd)
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
	if (idx->nlists > p->bits_cap) {
		uint32_t cap = words * 64 * 2;
		uint64_t *bits = calloc(cap / 64, sizeof(*bits));
		uint8_t *w = malloc(cap);

		if (!bits || !w) {
			free(bits);
			free(w);
			return -ENOMEM;
		}
		free(p->bits);
		free(p->bits_wtf);
		p->bits = bits;
		p->bits_wtf = w;
		p->bits_cap = cap;
	}
	for (uint32_t i = 0; i < p->nterms; i++) {
		uint32_t t = p->terms[i].term;

		p->bits[t / 64] |= 1ull << (t % 64);
		p->bits_wtf[t] = (uint8_t)p->terms[i].wtf;
	}
	for (uint32_t w = 0; w < words; w++) {
		uint64_t b = p->bits[w];

		p->bits[w] = 0;
		while (b) {
			uint32_t t = w * 64 + (uint32_t)__builtin_ctzll(b);

			b &= b - 1;
			p->terms[n].term = t;
			p->terms[n++].wtf = p->bits_wtf[t];
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
	uint32_t cap = idx->docs_cap;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *p;

		cap = idx->docs_cap;
		p = grow_array(*cols[i], &cap, need, sizes[i], &idx->bytes);
		if (!p)
			return -ENOMEM;
		*cols[i] = p;
	}
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
			plist_remove(idx, &idx->lists[t], doc);
	}
	for (int64_t i = 0; i < n; i++)
		plist_remove(idx, &idx->lists[p->old[i]], doc);
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
	idx->dl[doc] = h->dl;
	idx->posted_at[doc] = h->posted_at;
	idx->salary[doc] = h->salary;
	idx->edu[doc] = h->edu;
	idx->flags[doc] = h->flags;
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
			plist_remove(idx, &idx->lists[ot], doc);
			j++;
			continue;
		}
		if (ot == nt) {
			plist_update(&idx->lists[nt], doc,
				     (uint8_t)p->terms[i].wtf, dl);
			j++;
		} else {
			rc = plist_insert(idx, &idx->lists[nt], doc,
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
			plist_remove(idx, &idx->lists[p->terms[i].term], doc);
		doc_forget(idx, doc);
	}
	return rc;
}

int index_put(struct index *idx, const void *stored, size_t len)
{
	int rc;

	pthread_mutex_lock(&idx->writer);
	rc = prep_posting(&idx->prep, idx->ref, stored, len);
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
	uint32_t slot;          /* the order it was added in */
};

struct search {
	struct index *idx;
	const struct index_query *q;
	struct cursor cur[INDEX_QUERY_TERMS_MAX + 2];
	uint32_t ncur;
	uint32_t order[INDEX_QUERY_TERMS_MAX]; /* query term -> cursor */
	uint32_t nscore;        /* scoring cursors */
	uint64_t qterm[INDEX_QUERY_TERMS_MAX];
	uint32_t nq;
	double avgdl;
	double norm;            /* the score of unbounded frequencies */
	uint32_t now;           /* the query's clock, as open_until holds it */
	bool empty;             /* some list is missing: nothing matches */
	/* the ranking: a heap whose top is the worst kept */
	struct rank *heap;
	uint32_t heap_len;
	uint32_t heap_max;
	uint64_t total;
	/* lead-block skipping, allowed for long lead lists only */
	bool may_skip;
	double rest_ub;         /* list bounds of the terms but the lead */
	uint32_t lead_block;    /* the block the lead was last checked in */
	uint64_t skipped;       /* lead entries skipped uncounted */
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

static bool doc_passes(const struct search *s, uint32_t doc)
{
	const struct index *idx = s->idx;
	const struct index_query *q = s->q;

	if (q->open_only && idx->open_until[doc] <= s->now)
		return false;
	if (q->education != INDEX_EDU_ANY &&
	    idx->edu[doc] > (uint8_t)q->education)
		return false;
	return q->salary_min < 0 || idx->salary[doc] >= q->salary_min;
}

/* Scores the doc every cursor stands on, unless its bound shows it
 * cannot enter a full ranking. */
static void take_scored(struct search *s, uint32_t doc)
{
	struct rank r = { .doc = doc };
	double kd;

	if (s->heap_len == s->heap_max) {
		double ub = 0;

		for (uint32_t t = 0; t < s->nscore; t++)
			ub += s->cur[t].ub;
		if (ub * PRUNE_SLACK < s->heap[0].score)
			return;
	}
	kd = doc_k(s->idx->dl[doc], s->avgdl);
	for (uint32_t t = 0; t < s->nq; t++) {
		const struct cursor *c = &s->cur[s->order[t]];

		r.score += term_part(c->idf, c->wtf[c->i], kd);
	}
	r.posted_at = s->idx->posted_at[doc];
	heap_offer(s, &r);
}

static void take(struct search *s, uint32_t doc)
{
	if (!doc_passes(s, doc))
		return;
	s->total++;
	if (s->nscore) {
		take_scored(s, doc);
	} else {
		struct rank r = { .posted_at = s->idx->posted_at[doc],
				  .doc = doc };

		heap_offer(s, &r);
	}
}

/*
 * Called when the lead cursor stands in a block it has not stood in
 * before.  When no doc of that block can enter the full ranking (the
 * block's bound plus every other term's list bound is below the
 * threshold), skips the rest of the block, uncounted, and returns true.
 */
static bool skip_lead_block(struct search *s)
{
	struct cursor *lead = &s->cur[0];
	double ub;

	s->lead_block = lead->b;
	if (!s->may_skip || s->heap_len < s->heap_max)
		return false;
	ub = s->rest_ub + lead->ub;
	if (ub * PRUNE_SLACK >= s->heap[0].score)
		return false;
	s->skipped += lead->n - lead->i;
	cursor_block(s, lead, lead->b + 1);
	return true;
}

/* Moves the lead to its next doc not in a skipped block. */
static uint32_t lead_settle(struct search *s)
{
	struct cursor *lead = &s->cur[0];

	while (lead->cur != DOC_END && lead->b != s->lead_block &&
	       skip_lead_block(s))
		;
	return lead->cur;
}

/* Leapfrog intersection: cursors sorted by length, the shortest leads. */
static void run_lists(struct search *s)
{
	struct cursor *c = s->cur;
	uint32_t doc;

	s->lead_block = UINT32_MAX;
	doc = lead_settle(s);
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
			doc = lead_settle(s);
			continue;
		}
		take(s, doc);
		cursor_next(s, &c[0]);
		doc = lead_settle(s);
	}
}

static void run_scan(struct search *s)
{
	for (uint32_t doc = 0; doc < s->idx->ndocs; doc++) {
		if (s->idx->flags[doc] & DOC_LIVE)
			take(s, doc);
	}
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

/* Adds a cursor over the list of term id; marks the search empty when
 * no posting has the term. */
static struct cursor *add_cursor(struct search *s, uint64_t id, double idf)
{
	uint32_t t = term_lookup(s->idx, id);
	struct cursor *c = &s->cur[s->ncur];

	if (t == UINT32_MAX || s->idx->lists[t].df == 0) {
		s->empty = true;
		return NULL;
	}
	memset(c, 0, sizeof(*c));
	c->pl = &s->idx->lists[t];
	c->idf = idf;
	c->slot = s->ncur;
	s->ncur++;
	return c;
}

static double idf_of(uint32_t df, uint32_t n)
{
	return log(1.0 + ((double)n - df + 0.5) / ((double)df + 0.5));
}

static void add_term_cursors(struct search *s)
{
	uint32_t n = s->idx->live;

	for (uint32_t i = 0; i < s->nq && !s->empty; i++) {
		uint32_t t = term_lookup(s->idx, s->qterm[i]);
		double idf;

		if (t == UINT32_MAX || s->idx->lists[t].df == 0) {
			s->empty = true;
			return;
		}
		idf = idf_of(s->idx->lists[t].df, n);
		add_cursor(s, s->qterm[i], idf);
		s->norm += idf * (BM25_K1 + 1.0);
	}
	s->nscore = s->ncur;
}

static int cursor_df_cmp(const void *a, const void *b)
{
	const struct cursor *x = a, *y = b;

	return (x->pl->df > y->pl->df) - (x->pl->df < y->pl->df);
}

/* Sorts the cursors by list length and positions them; scoring cursors
 * first in the array keep their order map. */
static void order_cursors(struct search *s)
{
	uint32_t where[INDEX_QUERY_TERMS_MAX + 2];

	qsort(s->cur, s->ncur, sizeof(s->cur[0]), cursor_df_cmp);
	for (uint32_t i = 0; i < s->ncur; i++)
		where[s->cur[i].slot] = i;
	for (uint32_t t = 0; t < s->nq; t++)
		s->order[t] = where[t];
	/* take_scored sums bounds over the first nscore slots, so every
	 * filter cursor's bound is 0 and every cursor is summed. */
	s->nscore = s->nq ? s->ncur : 0;
	for (uint32_t i = 0; i < s->ncur; i++)
		cursor_block(s, &s->cur[i], 0);
	s->may_skip = s->nscore && s->cur[0].pl->df > INDEX_EXACT_LEAD_MAX;
	for (uint32_t i = 1; i < s->ncur && s->may_skip; i++) {
		const struct plist *pl = s->cur[i].pl;

		if (s->cur[i].idf > 0)
			s->rest_ub += term_part(s->cur[i].idf, pl->max_wtf,
						doc_k(pl->min_dl, s->avgdl));
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
	res->total_exact = s->skipped == 0;
	if (s->skipped) {
		/* Skipped entries are assumed to match as often as the
		 * lead's entries that were looked at. */
		uint64_t seen = s->cur[0].pl->df - s->skipped;

		res->total += seen ? (uint64_t)((double)s->total *
					       (double)s->skipped / seen + 0.5)
				   : 0;
	}
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
	add_term_cursors(s);
	if (!s->empty && q->city)
		add_cursor(s, filter_key(KEY_DIVISION, q->city, 6), 0);
	if (!s->empty && q->category)
		add_cursor(s, filter_key(KEY_CATEGORY, q->category,
					 q->category_len), 0);
	if (s->empty)
		return;
	if (s->ncur == 0) {
		run_scan(s);
		return;
	}
	order_cursors(s);
	run_lists(s);
}

int index_search(struct index *idx, const struct index_query *q,
		 struct index_hit *hits, struct index_result *res)
{
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
	s.heap = malloc(s.heap_max * sizeof(*s.heap));
	if (!s.heap)
		return -ENOMEM;
	pthread_rwlock_rdlock(&idx->lock);
	search_locked(&s);
	fill_hits(&s, hits, res);
	pthread_rwlock_unlock(&idx->lock);
	free(s.heap);
	return 0;
}

/* ---- loading ------------------------------------------------------------- */

/*
 * A load overlaps the two halves of a put: a helper thread parses and
 * tokenises one batch while the loading thread applies the batch before
 * it, one posting per hold of the write lock.  Stored bytes are copied
 * into the batch, since the caller's (an LMDB scan's) live only for the
 * call.
 */
#define LOAD_BATCH_POSTINGS 256

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
	struct load_batch batch[2];
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
			b->rc[i] = prep_posting(&b->preps[i], l->idx->ref,
						b->raw + b->off[i], b->len[i]);
		pthread_mutex_lock(&l->lock);
		l->done = b;
		pthread_cond_broadcast(&l->cond);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* Applies a prepared batch.  The writer mutex is held by the loader. */
static void load_apply(struct index_loader *l, struct load_batch *b)
{
	struct index *idx = l->idx;

	for (uint32_t i = 0; i < b->n && l->rc == 0; i++) {
		struct prep mine = idx->prep;
		int rc;

		if (b->rc[i]) {
			l->invalid += b->rc[i] == -EINVAL;
			if (b->rc[i] != -EINVAL)
				l->rc = b->rc[i];
			continue;
		}
		/* put_locked works on idx->prep: lend it this one. */
		idx->prep = b->preps[i];
		pthread_rwlock_wrlock(&idx->lock);
		rc = put_locked(idx);
		pthread_rwlock_unlock(&idx->lock);
		b->preps[i] = idx->prep;
		idx->prep = mine;
		if (rc)
			l->rc = rc;
	}
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
	free(p->slots);
	free(p->old);
	free(p->bits);
	free(p->bits_wtf);
	msgpack_zone_destroy(&p->zone);
}

static void loader_free(struct index_loader *l)
{
	for (uint32_t z = 0; z < l->zones; z++)
		prep_destroy(&l->batch[z / LOAD_BATCH_POSTINGS]
				      .preps[z % LOAD_BATCH_POSTINGS]);
	free(l->batch[0].raw);
	free(l->batch[1].raw);
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
	*out = idx;
	return 0;
}

void index_free(struct index *idx)
{
	if (!idx)
		return;
	for (uint32_t t = 0; t < idx->nlists; t++)
		plist_destroy(&idx->lists[t]);
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
	free(idx->free_docs);
	free(idx->id_slots);
	free(idx->id_hash);
	free(idx->prep.terms);
	free(idx->prep.slots);
	free(idx->prep.old);
	free(idx->prep.bits);
	free(idx->prep.bits_wtf);
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
