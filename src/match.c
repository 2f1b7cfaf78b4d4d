/*
 * match: profiles, reverse indexes, per-student lists, the match thread.
 * See match.h for the interface and docs/matching.md for the design.
 *
 * Who touches what:
 *   - The match thread (or, before match_start and in match_drain, the
 *     thread that owns the match) is the only writer of everything here.
 *   - Network threads read a student's state and list in match_get()
 *     under the directory read lock (which keeps the student table and its
 *     id map still) and the student's stripe lock (which keeps the list
 *     still); they read posting ids and two atomic flags through list
 *     entries, which stay valid because a posting's slot is not reused
 *     while any list can still name it (see posting_release()).
 *   - The storage writer thread calls match_on_*(): a copy into the queue
 *     under the queue lock, and for a closed or deleted posting one atomic
 *     store under the posting directory lock, so that readers hide it from
 *     the next answer on.
 *
 * The lists are exact.  Each fresh list holds the top n postings under
 * the list order (score, then newer, then id) for some n <= k + reserve,
 * and every qualifying posting not in it ranks after its last entry; when
 * `all` is set it holds every qualifying posting.  A new posting is
 * offered to every student who could rank it at least as high as their
 * last entry: the students its reverse indexes reach (with an upper bound
 * of the score accumulated on the way), and the students whose last entry
 * scores no more than the posting's bound for students it does not reach
 * (found through buckets of students by last score).  A posting that
 * leaves is looked for in exactly the same students, since holding it
 * means ranking it at least as high as the last entry.
 */
#include "match.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <xxhash.h>

#include "completeness.h"
#include "ref.h"
#include "store.h"
#include "text.h"

#define NONE UINT32_MAX

/* Slack on every bound comparison: bounds are sums taken in another order
 * than the exact score, so they may differ from it in the last bits. */
#define EPS 1e-4f

/* Stripe locks guarding the students' lists and states. */
#define STRIPES 256

/* Students are bucketed by the score of their list's last entry; a list
 * holding every qualifying posting goes to WEAK_ALL. */
#define WEAK_BUCKETS 64
#define WEAK_ALL WEAK_BUCKETS
#define WEAK_NONE 0xff

/* Postings are bucketed by their bound for students they do not reach. */
#define BASE_BUCKETS 64
#define BASE_NONE 0xff

/* Posting slots live in chunks that never move, so a reader can follow a
 * list entry to its posting while the table grows: at most
 * POSTING_CHUNK * POSTING_CHUNKS_MAX postings in memory at once. */
#define POSTING_CHUNK 16384u
#define POSTING_CHUNKS_MAX 256u

/* Tokens weighed from one record's text; the rest is ignored. */
#define TOKENS_MAX 8192u

/* The table tokens_fold() finds a record's repeated tokens with. */
#define FOLD_SLOTS (2 * TOKENS_MAX)
_Static_assert((FOLD_SLOTS & (FOLD_SLOTS - 1)) == 0, "a power of two");

struct fold_slot {
	uint32_t epoch;
	uint32_t at;                       /* index into the tf array */
};

struct fold {
	struct fold_slot *slot;
	uint32_t epoch;
};

/* Records read in one read transaction when loading from the store. */
#define LOAD_PAGE 4096u

/* BM25 constants: term frequency saturation and length normalisation. */
#define BM25_K1 1.2
#define BM25_B 0.75
/* Cosine a traversal may leave out by skipping its least useful terms;
 * see terms_prune(). */
#define TEXT_SLACK 0.15f

/* How many slots ahead a walk in no order asks for the cache lines it
 * will read: the slots come from lists, the lines from arrays far larger
 * than the caches. */
#define PREFETCH_AHEAD 16u
/* The same for the students a posting is offered to (a power of two). */
#define OFFER_AHEAD 8u

/* Postings after which resume terms no posting has are left out. */
#define UNSEEN_DOCS_MAX 1000

/* Title terms count this many times in a posting. */
#define TITLE_BOOST 2

/* ---- small containers ---- */

struct u32vec {
	uint32_t *v;
	uint32_t len, cap;
};

static int u32vec_push(struct u32vec *a, uint32_t x)
{
	if (a->len == a->cap) {
		uint32_t cap = a->cap ? a->cap * 2 : 8;
		uint32_t *v = realloc(a->v, (size_t)cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->len++] = x;
	return 0;
}

/* Removes the element at pos by moving the last one into its place;
 * returns the moved element, or NONE when pos was the last. */
static uint32_t u32vec_swap_out(struct u32vec *a, uint32_t pos)
{
	uint32_t moved = a->v[--a->len];

	if (pos == a->len)
		return NONE;
	a->v[pos] = moved;
	return moved;
}

static void u32vec_free(struct u32vec *a)
{
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* Grows an array of elem-byte elements to hold at least need. */
static int grow(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
	uint32_t n = *cap ? *cap : 64;
	void *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*arr, (size_t)n * elem);
	if (!p)
		return -ENOMEM;
	memset((char *)p + (size_t)*cap * elem, 0, (size_t)(n - *cap) * elem);
	*arr = p;
	*cap = n;
	return 0;
}

/*
 * imap: 64-bit key to 32-bit value, open addressing with linear probing.
 * Used for the dictionaries (terms, skills, categories, location keys),
 * which only ever grow.
 */
struct imap {
	uint64_t *keys;
	uint32_t *vals;   /* NONE: empty */
	uint32_t cap, len;
};

static uint32_t imap_get(const struct imap *t, uint64_t key)
{
	uint32_t mask = t->cap - 1;

	if (!t->cap)
		return NONE;
	for (uint32_t i = (uint32_t)(key * 0x9E3779B97F4A7C15u >> 32) & mask;;
	     i = (i + 1) & mask) {
		if (t->vals[i] == NONE)
			return NONE;
		if (t->keys[i] == key)
			return t->vals[i];
	}
}

static int imap_put(struct imap *t, uint64_t key, uint32_t val);

static int imap_grow(struct imap *t)
{
	struct imap n = { 0 };

	n.cap = t->cap ? t->cap * 2 : 1024;
	n.keys = malloc((size_t)n.cap * sizeof(*n.keys));
	n.vals = malloc((size_t)n.cap * sizeof(*n.vals));
	if (!n.keys || !n.vals) {
		free(n.keys);
		free(n.vals);
		return -ENOMEM;
	}
	memset(n.vals, 0xff, (size_t)n.cap * sizeof(*n.vals));
	for (uint32_t i = 0; i < t->cap; i++) {
		if (t->vals[i] != NONE)
			imap_put(&n, t->keys[i], t->vals[i]);
	}
	free(t->keys);
	free(t->vals);
	*t = n;
	return 0;
}

/* Inserts or replaces. */
static int imap_put(struct imap *t, uint64_t key, uint32_t val)
{
	uint32_t mask;

	if ((t->len + 1) * 2 > t->cap && imap_grow(t))
		return -ENOMEM;
	mask = t->cap - 1;
	for (uint32_t i = (uint32_t)(key * 0x9E3779B97F4A7C15u >> 32) & mask;;
	     i = (i + 1) & mask) {
		if (t->vals[i] == NONE) {
			t->keys[i] = key;
			t->vals[i] = val;
			t->len++;
			return 0;
		}
		if (t->keys[i] == key) {
			t->vals[i] = val;
			return 0;
		}
	}
}

static void imap_free(struct imap *t)
{
	free(t->keys);
	free(t->vals);
	memset(t, 0, sizeof(*t));
}

/*
 * idmap: a record id to its slot number.  The hash finds the entry, the
 * id itself (owned by the slot) settles it, so two ids never merge.
 * Deletion shifts later entries back, so there are no tombstones.
 */
struct identry {
	uint64_t hash;
	const char *id;   /* NULL: empty */
	uint32_t num;
};

struct idmap {
	struct identry *e;
	uint32_t cap, len;
};

static uint64_t id_hash(const char *id, size_t len)
{
	return XXH3_64bits(id, len);
}

static uint32_t idmap_home(const struct idmap *t, uint64_t hash)
{
	return (uint32_t)(hash >> 32) & (t->cap - 1);
}

static bool id_equal(const char *a, const char *b, size_t b_len)
{
	return strncmp(a, b, b_len) == 0 && a[b_len] == '\0';
}

static uint32_t idmap_get(const struct idmap *t, const char *id, size_t len)
{
	uint64_t h = id_hash(id, len);

	if (!t->cap)
		return NONE;
	for (uint32_t i = idmap_home(t, h);; i = (i + 1) & (t->cap - 1)) {
		const struct identry *e = &t->e[i];

		if (!e->id)
			return NONE;
		if (e->hash == h && id_equal(e->id, id, len))
			return e->num;
	}
}

static void idmap_place(struct idmap *t, struct identry ent)
{
	uint32_t i = idmap_home(t, ent.hash);

	while (t->e[i].id)
		i = (i + 1) & (t->cap - 1);
	t->e[i] = ent;
}

/* Adds id (which must be absent; the map keeps the pointer). */
static int idmap_add(struct idmap *t, const char *id, uint32_t num)
{
	if ((t->len + 1) * 2 > t->cap) {
		struct idmap n = { NULL, t->cap ? t->cap * 2 : 1024, 0 };

		n.e = calloc(n.cap, sizeof(*n.e));
		if (!n.e)
			return -ENOMEM;
		for (uint32_t i = 0; i < t->cap; i++) {
			if (t->e[i].id)
				idmap_place(&n, t->e[i]);
		}
		free(t->e);
		t->e = n.e;
		t->cap = n.cap;
	}
	idmap_place(t, (struct identry){ id_hash(id, strlen(id)), id, num });
	t->len++;
	return 0;
}

static void idmap_del(struct idmap *t, const char *id)
{
	uint64_t h = id_hash(id, strlen(id));
	uint32_t mask = t->cap - 1, i, j;

	if (!t->cap)
		return;
	for (i = idmap_home(t, h); t->e[i].id; i = (i + 1) & mask) {
		if (t->e[i].id == id)
			break;
	}
	if (!t->e[i].id)
		return;
	/* Backward shift: move up every later entry whose home is not
	 * between the hole and itself. */
	for (j = (i + 1) & mask; t->e[j].id; j = (j + 1) & mask) {
		uint32_t home = idmap_home(t, t->e[j].hash);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->e[i] = t->e[j];
			i = j;
		}
	}
	t->e[i].id = NULL;
	t->len--;
}

/* ---- the model's state ---- */

/* One list entry: a posting slot and its score for the student. */
struct mentry {
	uint32_t posting;
	float score;
};
_Static_assert(sizeof(struct mentry) == 8, "a list entry is 8 bytes");

/* A student's list; replaced or edited only under the stripe lock. */
struct mlist {
	uint32_t len, cap;
	bool all;              /* holds every qualifying posting */
	struct mentry e[];
};

struct mstudent {
	char *id;                  /* NULL: a free slot */
	struct score_student sp;   /* arrays in blk */
	void *blk;
	struct mlist *list;        /* stripe lock */
	/* Stored bytes, kept only when no store is configured. */
	char *student_bytes, *resume_bytes;
	uint32_t student_len, resume_len;
	uint32_t missing;          /* stripe lock */
	uint32_t wpos;             /* position in its weak bucket */
	uint32_t seen;             /* reload round that last saw it */
	uint32_t rseen;            /* the same for the resume */
	uint8_t percent;           /* stripe lock */
	uint8_t reason;            /* stripe lock; enum match_reason */
	uint8_t wbucket;           /* WEAK_NONE when not in one */
	bool bound;
	bool has_resume;
	bool stale;                /* the list waits for a rebuild */
};

struct mposting {
	char *id;                  /* NULL: a free slot */
	struct score_posting pp;   /* arrays in blk */
	void *blk;
	/* What readers check through list entries: hidden is set when the
	 * posting closes, is deleted or leaves memory; open_until is its
	 * expires_at (INT64_MAX when none). */
	atomic_bool hidden;
	_Atomic int64_t open_until;
	uint32_t gen;              /* bumped on every change: expiry check */
	uint32_t bpos;             /* position in its base bucket */
	float base;                /* score_bound_unreached() when filed */
	uint32_t seen;
	uint8_t bucket;            /* base bucket, BASE_NONE when none */
	bool live;                 /* open and indexed */
	bool df_counted;
};

/*
 * The reverse indexes: one list of slot numbers per key, and for terms
 * the slot's weight for the term beside each.  Entries are removed
 * lazily: a slot that drops a key (or changes a term's weight) only adds
 * to the list's dead count, and the list is compacted when half of it is
 * dead.  Traversals do not check entries: a dead entry can only add to an
 * upper bound, never take from one, since the slot's current keys always
 * have entries of their own.
 */
enum ix_kind { IX_CAT, IX_SKILL, IX_TERM, IX_LOC };
#define IX_KINDS 4

struct rlist {
	uint32_t *v;
	float *w;                  /* term lists only */
	uint32_t len, cap, dead;
};

struct rindex {
	struct rlist *l;
	uint32_t cap;
	bool weighted;
};

struct expiry {
	int64_t at;
	uint32_t posting, gen;
};

/* One slot's accumulator; the three fields share a cache line, since
 * traversals reach slots in no order. */
struct macc {
	uint32_t stamp;            /* valid when it equals the epoch */
	float sum;                 /* every reached feature */
	float ts;                  /* the text and skills part of it */
};

/* Scratch for one thread computing lists: an accumulator per slot of the
 * other side, stamped with an epoch so that it never needs clearing. */
struct mscratch {
	struct macc *a;
	uint32_t cap, epoch;
	struct u32vec touched;
	struct mentry *heap;
	uint32_t heap_len;
	struct u32vec bins[WEAK_BUCKETS];
	float slack;               /* added to every bound by pruning */
	bool oom;
};

/* A queued change. */
enum ev_kind { EV_STUDENT, EV_RESUME, EV_POSTING };

struct mevent {
	struct mevent *next;
	uint64_t queued_us;
	uint32_t id_len, len;
	uint8_t kind;
	bool deleted;
	char *id;                 /* NUL-terminated, in the same block */
	char *data;
};

struct waiter {
	struct waiter *next;
	struct match_job *job;
	void (*done)(struct match_job *job, const struct match_rerank *r);
};

struct match {
	struct match_config cfg;
	const struct ref *ref;
	const struct completeness *comp;
	uint32_t list_cap;                 /* k + reserve */
	float share[SCORE_FEATURES];       /* weight / sum of weights */

	/* Students: slots, ids, locks. */
	pthread_rwlock_t dir_lock;
	struct mstudent *st;
	uint32_t st_len, st_cap;
	struct u32vec st_free;
	struct idmap st_ids;
	pthread_mutex_t stripe[STRIPES];
	struct u32vec weak[WEAK_BUCKETS + 1];
	/* By student: the score an offer must reach (a list's last entry;
	 * -1 when it takes anything; FLT_MAX when it takes nothing), kept
	 * apart so that most offers are refused without touching a slot. */
	float *sfloor;
	/* By student: what the hard filters read, kept apart for the same
	 * reason. */
	struct score_gate *sgate;
	/* Students by each major code that accepts theirs (a major, its
	 * class, its discipline), so that a posting naming majors reaches
	 * only the students it can take: sbits marks them while the posting
	 * is offered.  majors_off: an allocation failed, the lists may miss
	 * students, and every posting reaches everyone. */
	struct imap majors;
	struct u32vec *mlists;
	uint32_t mlists_len, mlists_cap;
	uint64_t *sbits;
	uint32_t sbits_cap;
	bool majors_off;

	/* Postings.  pdir_lock guards p_ids and pending_hides, which the
	 * writer thread reads. */
	pthread_mutex_t pdir_lock;
	/* Ids hidden by a close or delete whose earlier put the match thread
	 * has not applied yet: that put's slot starts hidden. */
	char **pending_hides;
	uint32_t pending_len, pending_cap;
	struct mposting *pchunk[POSTING_CHUNKS_MAX];
	/* Each slot's base bound again, packed, for the traversals that
	 * read it for every posting they reach. */
	float *bchunk[POSTING_CHUNKS_MAX];
	uint32_t p_len;
	struct u32vec p_free, p_limbo;
	struct idmap p_ids;
	struct u32vec base[BASE_BUCKETS];
	struct expiry *heap;
	uint32_t heap_len, heap_cap;

	/* Dictionaries. */
	struct imap terms, skills, cats, locs;
	uint32_t *df;                      /* by term index */
	float *tmax_s, *tmax_p;            /* largest weight of a term */
	uint32_t tmax_s_cap, tmax_p_cap;
	uint32_t df_cap, terms_len, skills_len, cats_len, locs_len;
	uint32_t *loc_code;                /* by location index */
	uint32_t loc_cap;
	uint64_t docs, doc_tokens;         /* postings counted, their length */
	bool df_preloaded;

	/* Reverse indexes: students (for postings) and postings. */
	struct rindex sidx[IX_KINDS], pidx[IX_KINDS];

	/* Clocks and cohorts. */
	int64_t fresh_at;
	int64_t next_rebuild;
	int cohort_lo, cohort_hi, year;

	/* Stale lists and full rebuilds. */
	uint32_t stale_count, stale_cursor;
	uint64_t round_rebuilt;
	struct waiter *waiters;
	uint32_t reload_round;

	/* The thread and its queue. */
	pthread_t thread;
	bool running;
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	struct mevent *q_head, *q_tail;
	struct match_job *j_head, *j_tail;
	uint32_t q_len, j_len;
	size_t q_bytes;
	bool stopping;                     /* q_lock */
	atomic_bool overflow;
	struct store_reader *rd;

	struct mscratch ps;                /* over postings */
	struct mscratch ss;                /* over students */
	struct u32vec refill;              /* lists left short */
	char *half;                        /* the other half's bytes */
	size_t half_cap;
	bool rd_in_txn;                    /* a load holds m->rd open */
	bool loading;                      /* profiles only, no lists */
	bool rebuild_wanted;               /* after running out of memory */

	/* Tokenising buffers of the one thread that decodes records. */
	uint64_t *tok_buf;
	struct tf *tf_buf;
	struct fold fold;

	struct match_stats stats;
	bool started;                      /* built or started */
};

static const char *const reason_names[] = {
	"eligible", "not_bound", "cohort_inactive", "no_resume",
	"resume_incomplete",
};

const char *match_reason_name(enum match_reason reason)
{
	return (unsigned)reason < sizeof(reason_names) / sizeof(*reason_names)
		       ? reason_names[reason]
		       : "unknown";
}

static int64_t now_s(const struct match *m)
{
	return m->cfg.clock ? m->cfg.clock(m->cfg.clock_ctx)
			    : (int64_t)time(NULL);
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct mposting *posting_at(const struct match *m, uint32_t num)
{
	return &m->pchunk[num / POSTING_CHUNK][num % POSTING_CHUNK];
}

static float posting_base(const struct match *m, uint32_t num)
{
	return m->bchunk[num / POSTING_CHUNK][num % POSTING_CHUNK];
}

static pthread_mutex_t *stripe_of(struct match *m, uint32_t num)
{
	return &m->stripe[num % STRIPES];
}

static void stat_add(uint64_t *field, uint64_t n)
{
	__atomic_fetch_add(field, n, __ATOMIC_RELAXED);
}

static void stat_set(uint64_t *field, uint64_t v)
{
	__atomic_store_n(field, v, __ATOMIC_RELAXED);
}

/* ---- dictionaries and text ---- */

static int dict_intern(struct imap *t, uint64_t key, uint32_t *len,
		       uint32_t *out)
{
	uint32_t v = imap_get(t, key);

	if (v == NONE) {
		if (imap_put(t, key, *len))
			return -ENOMEM;
		v = (*len)++;
	}
	*out = v;
	return 0;
}

static int term_intern(struct match *m, uint64_t term, uint32_t *idx)
{
	if (dict_intern(&m->terms, term, &m->terms_len, idx))
		return -ENOMEM;
	return grow((void **)&m->df, &m->df_cap, m->terms_len,
		    sizeof(*m->df));
}

/* BM25's idf, always positive. */
static double idf(const struct match *m, uint32_t idx)
{
	double n = (double)m->docs, df = m->df[idx];

	if (df > n)
		df = n;
	return log(1.0 + (n - df + 0.5) / (df + 0.5));
}

/* A skill's id: folded, ASCII lower-cased, spaces dropped ("Spring Boot"
 * and "springboot" are one skill). */
static int skill_intern(struct match *m, const char *s, size_t len,
			uint32_t *idx)
{
	char buf[256];
	size_t n = 0;

	for (size_t i = 0; i < len && n < sizeof(buf); i++) {
		char c = s[i];

		if (c == ' ' || c == '\t')
			continue;
		buf[n++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	return dict_intern(&m->skills, XXH3_64bits(buf, n), &m->skills_len,
			   idx);
}

/* A category's id, 1..65535; 0 when the dictionary is full. */
static uint16_t category_intern(struct match *m, const char *s, size_t len)
{
	uint32_t idx;

	if (dict_intern(&m->cats, XXH3_64bits(s, len), &m->cats_len, &idx))
		return 0;
	return idx + 1 <= UINT16_MAX ? (uint16_t)(idx + 1) : 0;
}

/* The reverse-index key of a wished region or a posting's place: the
 * province for a province, else the city the code is in. */
static uint32_t loc_key_of(uint32_t code)
{
	return code % 10000 == 0 ? code : code / 100 * 100;
}

static int loc_intern(struct match *m, uint32_t code, uint32_t *idx)
{
	if (dict_intern(&m->locs, code, &m->locs_len, idx))
		return -ENOMEM;
	if (grow((void **)&m->loc_code, &m->loc_cap, m->locs_len,
		 sizeof(*m->loc_code)))
		return -ENOMEM;
	m->loc_code[*idx] = code;
	return 0;
}

/* The tokens of one record, title tokens repeated. */
struct tokens {
	uint64_t *t;
	uint32_t len;
	uint32_t repeat;
};

static int token_add(void *ctx, uint64_t term_id, const char *term,
		     size_t term_len, uint32_t position)
{
	struct tokens *tk = ctx;

	(void)term;
	(void)term_len;
	(void)position;
	for (uint32_t r = 0; r < tk->repeat; r++) {
		if (tk->len == TOKENS_MAX)
			return 1;
		tk->t[tk->len++] = term_id;
	}
	return 0;
}

static void tokens_add(struct tokens *tk, const char *s, size_t len,
		       uint32_t repeat)
{
	if (!s || !len || tk->len == TOKENS_MAX)
		return;
	tk->repeat = repeat;
	text_tokenize(s, len, TEXT_QUERY, token_add, tk);
}

/* A distinct term of a record with its count. */
struct tf {
	uint64_t term;
	uint32_t count;
	uint32_t idx;
	float w;
};

/*
 * Folds the tokens into distinct terms with their counts, in the order
 * of first appearance, through an open-addressing table of token
 * positions stamped with an epoch (so it is never cleared): sorting every
 * record's tokens was most of the start-up.  Returns how many terms (at
 * most tk->len, so tf needs that room).
 */
static uint32_t tokens_fold(struct tokens *tk, struct tf *tf,
			    struct fold *fo)
{
	uint32_t n = 0;

	if (++fo->epoch == 0) {
		memset(fo->slot, 0, FOLD_SLOTS * sizeof(*fo->slot));
		fo->epoch = 1;
	}
	for (uint32_t i = 0; i < tk->len; i++) {
		uint64_t term = tk->t[i];
		uint32_t h = (uint32_t)(term >> 32 ^ term) & (FOLD_SLOTS - 1);

		for (;; h = (h + 1) & (FOLD_SLOTS - 1)) {
			struct fold_slot *sl = &fo->slot[h];

			if (sl->epoch != fo->epoch) {
				*sl = (struct fold_slot){ fo->epoch, n };
				tf[n++] = (struct tf){ term, 1, NONE, 0 };
				break;
			}
			if (tf[sl->at].term == term) {
				tf[sl->at].count++;
				break;
			}
		}
	}
	return n;
}

/* Heavier first; ties to the smaller term index. */
static bool tf_before(const struct tf *x, const struct tf *y)
{
	return x->w != y->w ? x->w > y->w : x->idx < y->idx;
}

/*
 * Keeps the SCORE_TERMS_MAX heaviest terms of tf (weights set), scaled to
 * unit length and sorted by id, in out.  Returns how many.  Selection by
 * insertion into the kept few: most terms fall below the lightest kept
 * one at the first comparison.
 */
static uint8_t terms_keep(const struct tf *tf, uint32_t n,
			  struct score_term *out)
{
	const struct tf *best[SCORE_TERMS_MAX];
	uint32_t keep = 0;
	double norm = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t j;

		if (tf[i].w <= 0 || (keep == SCORE_TERMS_MAX &&
				     !tf_before(&tf[i], best[keep - 1])))
			continue;
		j = keep < SCORE_TERMS_MAX ? keep++ : keep - 1;
		for (; j > 0 && tf_before(&tf[i], best[j - 1]); j--)
			best[j] = best[j - 1];
		best[j] = &tf[i];
	}
	for (uint32_t i = 0; i < keep; i++)
		norm += (double)best[i]->w * best[i]->w;
	norm = sqrt(norm);
	/* Into out by id, again by insertion: at most SCORE_TERMS_MAX. */
	for (uint32_t i = 0; i < keep; i++) {
		struct score_term t = { best[i]->idx,
					(float)(best[i]->w / norm) };
		uint32_t j = i;

		for (; j > 0 && out[j - 1].id > t.id; j--)
			out[j] = out[j - 1];
		out[j] = t;
	}
	return (uint8_t)keep;
}

/* Weighs a posting's terms: BM25 term frequency against the average
 * posting length, times idf. */
static void weigh_posting(const struct match *m, struct tf *tf, uint32_t n,
			  uint32_t doc_len)
{
	double avg = m->docs ? (double)m->doc_tokens / (double)m->docs
			     : (double)doc_len;
	double norm = BM25_K1 * (1 - BM25_B + BM25_B * doc_len /
				 (avg > 0 ? avg : 1));

	for (uint32_t i = 0; i < n; i++) {
		double c = tf[i].count;

		tf[i].w = tf[i].idx == NONE ? 0 : (float)(idf(m, tf[i].idx) *
			  c * (BM25_K1 + 1) / (c + norm));
	}
}

/*
 * Weighs a resume's terms as a BM25 query: saturated frequency times the
 * idf over postings.  Once there are UNSEEN_DOCS_MAX postings, a term no
 * posting has is left out, as it cannot match and would take a slot;
 * before that (a new installation importing resumes before postings)
 * every term is kept, since most postings are yet to come.
 */
static int weigh_resume(struct match *m, struct tf *tf, uint32_t n)
{
	bool keep_unseen = m->docs < UNSEEN_DOCS_MAX;

	for (uint32_t i = 0; i < n; i++) {
		double c = tf[i].count;

		if (keep_unseen) {
			if (term_intern(m, tf[i].term, &tf[i].idx))
				return -ENOMEM;
		} else {
			tf[i].idx = imap_get(&m->terms, tf[i].term);
		}
		if (tf[i].idx == NONE ||
		    (!keep_unseen && m->df[tf[i].idx] == 0)) {
			tf[i].w = 0;
			continue;
		}
		tf[i].w = (float)(idf(m, tf[i].idx) * c * (BM25_K1 + 1) /
				  (c + BM25_K1));
	}
	return 0;
}

/* Counts a posting's distinct terms into the document frequencies. */
static int count_terms(struct match *m, struct tf *tf, uint32_t n,
		       uint32_t doc_len)
{
	for (uint32_t i = 0; i < n; i++) {
		if (term_intern(m, tf[i].term, &tf[i].idx))
			return -ENOMEM;
		m->df[tf[i].idx]++;
	}
	m->docs++;
	m->doc_tokens += doc_len;
	return 0;
}

/* Interns every term of tf (postings only). */
static int intern_terms(struct match *m, struct tf *tf, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (term_intern(m, tf[i].term, &tf[i].idx))
			return -ENOMEM;
	}
	return 0;
}

/* ---- reading stored records ---- */

/* One decoded stored record; the zone lives as long as this. */
struct doc {
	msgpack_unpacked u;
	const msgpack_object *map;
};

static int doc_open(struct doc *d, const void *stored, size_t len)
{
	size_t off = 0;

	msgpack_unpacked_init(&d->u);
	d->map = NULL;
	if (!stored || msgpack_unpack_next(&d->u, stored, len, &off) !=
		       MSGPACK_UNPACK_SUCCESS ||
	    d->u.data.type != MSGPACK_OBJECT_MAP)
		return -EINVAL;
	d->map = &d->u.data;
	return 0;
}

static void doc_close(struct doc *d)
{
	msgpack_unpacked_destroy(&d->u);
}

static const msgpack_object *mp_get(const msgpack_object *map,
				    const char *key)
{
	size_t len = strlen(key);

	for (uint32_t i = 0; map && i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == len &&
		    memcmp(kv->key.via.str.ptr, key, len) == 0)
			return &kv->val;
	}
	return NULL;
}

static bool mp_str(const msgpack_object *o, const char **s, size_t *len)
{
	if (!o || o->type != MSGPACK_OBJECT_STR)
		return false;
	*s = o->via.str.ptr;
	*len = o->via.str.size;
	return true;
}

static bool mp_int(const msgpack_object *o, int64_t *v)
{
	if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->via.u64 <= INT64_MAX) {
		*v = (int64_t)o->via.u64;
		return true;
	}
	if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return true;
	}
	return false;
}

static int64_t mp_int_or(const msgpack_object *map, const char *key,
			 int64_t def)
{
	int64_t v;

	return mp_int(mp_get(map, key), &v) ? v : def;
}

static bool mp_true(const msgpack_object *map, const char *key)
{
	const msgpack_object *o = mp_get(map, key);

	return o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

static uint32_t mp_division(const msgpack_object *map, const char *key)
{
	const char *s;
	size_t len;

	return mp_str(mp_get(map, key), &s, &len) ? score_division_parse(s, len)
						   : 0;
}

static uint8_t mp_political(const msgpack_object *map)
{
	const char *s;
	size_t len;
	int p;

	if (!mp_str(mp_get(map, "political"), &s, &len))
		return SCORE_POLITICAL_NONE;
	p = score_political_parse(s, len);
	return p > 0 ? (uint8_t)p : SCORE_POLITICAL_NONE;
}

static uint8_t mp_education(const msgpack_object *map, const char *key)
{
	const char *s;
	size_t len;
	int e;

	if (!mp_str(mp_get(map, key), &s, &len))
		return SCORE_ZHUANKE;
	e = score_education_parse(s, len);
	return e > 0 ? (uint8_t)e : SCORE_ZHUANKE;
}

static struct score_major mp_major(const msgpack_object *o)
{
	const char *s;
	size_t len;

	if (!mp_str(o, &s, &len))
		return (struct score_major){ 0, 0 };
	return score_major_parse(s, len);
}

/* The array under key, or NULL. */
static const msgpack_object_array *mp_array(const msgpack_object *map,
					    const char *key)
{
	const msgpack_object *o = mp_get(map, key);

	return o && o->type == MSGPACK_OBJECT_ARRAY ? &o->via.array : NULL;
}

static int mp_id(const msgpack_object *map, const char *key,
		 char id[MATCH_ID_BYTES])
{
	const char *s;
	size_t len;

	if (!mp_str(mp_get(map, key), &s, &len) || len == 0 ||
	    len >= MATCH_ID_BYTES || memchr(s, '\0', len))
		return -EINVAL;
	memcpy(id, s, len);
	id[len] = '\0';
	return 0;
}

/* ---- profiles ---- */

/* What a student record gives the profile. */
struct sfacts {
	char id[MATCH_ID_BYTES];
	struct score_major major;
	uint32_t origin, directed;
	uint16_t grad_year;
	uint8_t education, political;
	bool bound;
};

static int student_facts(const msgpack_object *map, struct sfacts *f)
{
	if (mp_id(map, "id", f->id))
		return -EINVAL;
	f->major = mp_major(mp_get(map, "major_code"));
	f->origin = mp_division(map, "origin");
	f->directed = mp_division(map, "directed_region");
	f->grad_year = (uint16_t)mp_int_or(map, "grad_year", 0);
	f->education = mp_education(map, "education");
	f->political = mp_political(map);
	f->bound = mp_true(map, "bound");
	return 0;
}

static void student_apply_facts(struct mstudent *s, const struct sfacts *f)
{
	s->sp.major = f->major;
	s->sp.origin = f->origin;
	s->sp.directed = f->directed;
	s->sp.grad_year = f->grad_year;
	s->sp.education = f->education;
	s->sp.political = f->political;
	s->bound = f->bound;
}

/* What a resume gives the profile, before it is packed into one block. */
struct rfacts {
	uint32_t skills[SCORE_SKILLS_MAX];
	struct score_term terms[SCORE_TERMS_MAX];
	uint32_t cities[SCORE_CITIES_MAX];
	uint16_t cats[SCORE_CATEGORIES_MAX];
	int32_t salary_min, salary_max;
	uint8_t skills_len, terms_len, cities_len, cats_len;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts ids and drops repeats; returns the new count. */
static uint8_t ids_sort_unique(uint32_t *ids, uint8_t n)
{
	uint8_t out = 0;

	qsort(ids, n, sizeof(*ids), cmp_u32);
	for (uint8_t i = 0; i < n; i++) {
		if (!out || ids[out - 1] != ids[i])
			ids[out++] = ids[i];
	}
	return out;
}

/* Reads up to max skill ids from the string array under key. */
static int skills_read(struct match *m, const msgpack_object *map,
		       uint32_t *ids, uint8_t *n)
{
	const msgpack_object_array *a = mp_array(map, "skills");
	const char *s;
	size_t len;

	*n = 0;
	for (uint32_t i = 0; a && i < a->size && *n < SCORE_SKILLS_MAX; i++) {
		if (!mp_str(&a->ptr[i], &s, &len))
			continue;
		if (skill_intern(m, s, len, &ids[*n]))
			return -ENOMEM;
		(*n)++;
	}
	*n = ids_sort_unique(ids, *n);
	return 0;
}

static void salary_read(const msgpack_object *map, int32_t *lo, int32_t *hi)
{
	*lo = (int32_t)mp_int_or(map, "salary_min", -1);
	*hi = (int32_t)mp_int_or(map, "salary_max", -1);
}

static void strings_tokens(const msgpack_object_array *a,
			   struct tokens *tk)
{
	const char *s;
	size_t len;

	for (uint32_t i = 0; a && i < a->size; i++) {
		if (mp_str(&a->ptr[i], &s, &len))
			tokens_add(tk, s, len, 1);
	}
}

/* Intro, skills, and every experience's title and description. */
static void resume_tokens(const msgpack_object *map, struct tokens *tk)
{
	const msgpack_object_array *ex = mp_array(map, "experiences");
	const char *s;
	size_t len;

	if (mp_str(mp_get(map, "intro"), &s, &len))
		tokens_add(tk, s, len, 1);
	strings_tokens(mp_array(map, "skills"), tk);
	for (uint32_t i = 0; ex && i < ex->size; i++) {
		const msgpack_object *e = &ex->ptr[i];

		if (e->type != MSGPACK_OBJECT_MAP)
			continue;
		if (mp_str(mp_get(e, "title"), &s, &len))
			tokens_add(tk, s, len, 1);
		if (mp_str(mp_get(e, "desc"), &s, &len))
			tokens_add(tk, s, len, 1);
	}
}

static int resume_terms(struct match *m, const msgpack_object *map,
			struct rfacts *r)
{
	struct tokens tk = { m->tok_buf, 0, 1 };
	uint32_t n;

	resume_tokens(map, &tk);
	n = tokens_fold(&tk, m->tf_buf, &m->fold);
	if (weigh_resume(m, m->tf_buf, n))
		return -ENOMEM;
	r->terms_len = terms_keep(m->tf_buf, n, r->terms);
	return 0;
}

static void resume_places(struct match *m, const msgpack_object *map,
			  struct rfacts *r)
{
	const msgpack_object_array *a = mp_array(map, "desired_cities");
	const msgpack_object_array *c = mp_array(map, "desired_categories");
	const char *s;
	size_t len;

	r->cities_len = 0;
	for (uint32_t i = 0; a && i < a->size &&
			     r->cities_len < SCORE_CITIES_MAX; i++) {
		uint32_t code;

		if (!mp_str(&a->ptr[i], &s, &len))
			continue;
		code = score_division_parse(s, len);
		if (code)
			r->cities[r->cities_len++] = code;
	}
	r->cats_len = 0;
	for (uint32_t i = 0; c && i < c->size &&
			     r->cats_len < SCORE_CATEGORIES_MAX; i++) {
		uint16_t id;

		if (!mp_str(&c->ptr[i], &s, &len))
			continue;
		id = category_intern(m, s, len);
		if (id)
			r->cats[r->cats_len++] = id;
	}
}

static int resume_facts(struct match *m, const msgpack_object *map,
			struct rfacts *r)
{
	memset(r, 0, sizeof(*r));
	if (skills_read(m, map, r->skills, &r->skills_len))
		return -ENOMEM;
	resume_places(m, map, r);
	salary_read(map, &r->salary_min, &r->salary_max);
	return resume_terms(m, map, r);
}

/* Packs a resume's arrays into one block and points sp at them. */
static void *resume_block(const struct rfacts *r, struct score_student *sp)
{
	size_t terms = r->terms_len * sizeof(struct score_term);
	size_t skills = r->skills_len * sizeof(uint32_t);
	size_t cities = r->cities_len * sizeof(uint32_t);
	size_t cats = r->cats_len * sizeof(uint16_t);
	char *blk = malloc(terms + skills + cities + cats + 1);

	if (!blk)
		return NULL;
	memcpy(blk, r->terms, terms);
	memcpy(blk + terms, r->skills, skills);
	memcpy(blk + terms + skills, r->cities, cities);
	memcpy(blk + terms + skills + cities, r->cats, cats);
	sp->terms = (const struct score_term *)blk;
	sp->skills = (const uint32_t *)(blk + terms);
	sp->cities = (const uint32_t *)(blk + terms + skills);
	sp->categories = (const uint16_t *)(blk + terms + skills + cities);
	sp->terms_len = r->terms_len;
	sp->skills_len = r->skills_len;
	sp->cities_len = r->cities_len;
	sp->categories_len = r->cats_len;
	sp->salary_min = r->salary_min;
	sp->salary_max = r->salary_max;
	return blk;
}

static void resume_clear(struct score_student *sp)
{
	sp->terms = NULL;
	sp->skills = NULL;
	sp->cities = NULL;
	sp->categories = NULL;
	sp->terms_len = sp->skills_len = 0;
	sp->cities_len = sp->categories_len = 0;
	sp->salary_min = sp->salary_max = -1;
}

/* A decoded posting, before its arrays are packed into one block. */
struct pfacts {
	char id[MATCH_ID_BYTES];
	struct score_posting pp;
	uint32_t skills[SCORE_SKILLS_MAX];
	struct score_term terms[SCORE_TERMS_MAX];
	const msgpack_object_array *majors;
};

/* Title twice, skills, description. */
static uint32_t posting_tokens(const msgpack_object *map, struct tokens *tk)
{
	const char *s;
	size_t len;

	if (mp_str(mp_get(map, "title"), &s, &len))
		tokens_add(tk, s, len, TITLE_BOOST);
	strings_tokens(mp_array(map, "skills"), tk);
	if (mp_str(mp_get(map, "description"), &s, &len))
		tokens_add(tk, s, len, 1);
	return tk->len;
}

/* Tokenises a posting into m->tf_buf; returns the distinct terms. */
static uint32_t posting_tf(struct match *m, const msgpack_object *map,
			   uint32_t *doc_len)
{
	struct tokens tk = { m->tok_buf, 0, 1 };

	*doc_len = posting_tokens(map, &tk);
	return tokens_fold(&tk, m->tf_buf, &m->fold);
}

static void posting_scalars(struct match *m, const msgpack_object *map,
			    struct score_posting *pp)
{
	const msgpack_object_array *co = mp_array(map, "cohorts");
	const char *s;
	size_t len;
	int64_t year;

	memset(pp, 0, sizeof(*pp));
	if (mp_str(mp_get(map, "category"), &s, &len))
		pp->category = category_intern(m, s, len);
	pp->city = mp_division(map, "city");
	pp->education_min = mp_education(map, "education_min");
	pp->political = mp_political(map);
	salary_read(map, &pp->salary_min, &pp->salary_max);
	pp->posted_at = mp_int_or(map, "posted_at", 0);
	pp->expires_at = mp_int_or(map, "expires_at", 0);
	pp->closed = mp_true(map, "closed");
	for (uint32_t i = 0; co && i < co->size; i++) {
		if (mp_int(&co->ptr[i], &year))
			score_cohort_add(pp->cohorts, (int)year);
	}
}

/*
 * Decodes a posting.  count: add its terms to the document frequencies
 * first.  The terms are weighed with the frequencies as they are then.
 */
static int posting_facts(struct match *m, const msgpack_object *map,
			 bool count, struct pfacts *f)
{
	uint32_t doc_len, n;
	uint8_t skills_len;

	if (mp_id(map, "id", f->id))
		return -EINVAL;
	posting_scalars(m, map, &f->pp);
	if (skills_read(m, map, f->skills, &skills_len))
		return -ENOMEM;
	f->pp.skills_len = skills_len;
	n = posting_tf(m, map, &doc_len);
	if (count ? count_terms(m, m->tf_buf, n, doc_len)
		  : intern_terms(m, m->tf_buf, n))
		return -ENOMEM;
	weigh_posting(m, m->tf_buf, n, doc_len);
	f->pp.terms_len = terms_keep(m->tf_buf, n, f->terms);
	f->majors = mp_array(map, "majors");
	return 0;
}

static void *posting_block(const struct pfacts *f, struct score_posting *pp)
{
	size_t terms = f->pp.terms_len * sizeof(struct score_term);
	size_t skills = f->pp.skills_len * sizeof(uint32_t);
	uint32_t nmaj = f->majors ? f->majors->size : 0;
	char *blk = malloc(terms + skills + nmaj * sizeof(struct score_major)
			   + 1);
	struct score_major *maj;
	uint16_t kept = 0;

	if (!blk)
		return NULL;
	*pp = f->pp;
	memcpy(blk, f->terms, terms);
	memcpy(blk + terms, f->skills, skills);
	maj = (struct score_major *)(blk + terms + skills);
	for (uint32_t i = 0; i < nmaj && kept < UINT16_MAX; i++) {
		maj[kept] = mp_major(&f->majors->ptr[i]);
		if (maj[kept].digits)
			kept++;
	}
	pp->terms = (const struct score_term *)blk;
	pp->skills = (const uint32_t *)(blk + terms);
	pp->majors = maj;
	pp->majors_len = kept;
	return blk;
}

/* ---- reverse indexes ---- */

enum side { SIDE_STUDENT, SIDE_POSTING };

/* The keys of one profile, per index kind, ascending and distinct. */
struct keyset {
	uint32_t k[IX_KINDS][SCORE_TERMS_MAX];
	float w[IX_KINDS][SCORE_TERMS_MAX]; /* what an entry carries: a
					       term's weight, a posting
					       skill's share; else 0 */
	uint8_t n[IX_KINDS];
};
_Static_assert(SCORE_SKILLS_MAX <= SCORE_TERMS_MAX &&
	       SCORE_CATEGORIES_MAX <= SCORE_TERMS_MAX &&
	       SCORE_CITIES_MAX + 1 <= SCORE_TERMS_MAX,
	       "every key kind fits a keyset row");

/* Terms come sorted and distinct from their vectors; the rest not. */
static void keys_finish(struct keyset *ks)
{
	for (int k = 0; k < IX_KINDS; k++) {
		if (k != IX_TERM)
			ks->n[k] = ids_sort_unique(ks->k[k], ks->n[k]);
	}
}

/* A location key's index: interned when writing, looked up (NONE when
 * unknown) when reading, which may happen on several threads at once. */
static int loc_index(struct match *m, uint32_t code, bool intern,
		     uint32_t *idx)
{
	if (intern)
		return loc_intern(m, code, idx);
	*idx = imap_get(&m->locs, code);
	return 0;
}

/* A student's keys. */
static int student_keys(struct match *m, const struct score_student *sp,
			bool intern, struct keyset *ks)
{
	uint32_t loc;

	memset(ks->n, 0, sizeof(ks->n));
	memset(ks->w, 0, sizeof(ks->w));
	for (uint8_t i = 0; i < sp->categories_len; i++)
		ks->k[IX_CAT][ks->n[IX_CAT]++] = sp->categories[i];
	memcpy(ks->k[IX_SKILL], sp->skills, sp->skills_len * sizeof(uint32_t));
	ks->n[IX_SKILL] = sp->skills_len;
	for (uint8_t i = 0; i < sp->terms_len; i++) {
		ks->k[IX_TERM][i] = sp->terms[i].id;
		ks->w[IX_TERM][i] = sp->terms[i].weight;
	}
	ks->n[IX_TERM] = sp->terms_len;
	for (uint8_t i = 0; i < sp->cities_len; i++) {
		if (loc_index(m, loc_key_of(sp->cities[i]), intern, &loc))
			return -ENOMEM;
		if (loc != NONE)
			ks->k[IX_LOC][ks->n[IX_LOC]++] = loc;
	}
	if (!sp->cities_len && sp->origin) {
		if (loc_index(m, loc_key_of(sp->origin), intern, &loc))
			return -ENOMEM;
		if (loc != NONE)
			ks->k[IX_LOC][ks->n[IX_LOC]++] = loc;
	}
	keys_finish(ks);
	return 0;
}

/* A posting's place gives two keys: its city (unless it is a province)
 * and its province. */
static int posting_keys(struct match *m, const struct score_posting *pp,
			struct keyset *ks)
{
	uint32_t loc;

	memset(ks->n, 0, sizeof(ks->n));
	memset(ks->w, 0, sizeof(ks->w));
	if (pp->category)
		ks->k[IX_CAT][ks->n[IX_CAT]++] = pp->category;
	memcpy(ks->k[IX_SKILL], pp->skills, pp->skills_len * sizeof(uint32_t));
	ks->n[IX_SKILL] = pp->skills_len;
	for (uint8_t i = 0; i < pp->skills_len; i++)
		ks->w[IX_SKILL][i] = 1.0f / (float)pp->skills_len;
	for (uint8_t i = 0; i < pp->terms_len; i++) {
		ks->k[IX_TERM][i] = pp->terms[i].id;
		ks->w[IX_TERM][i] = pp->terms[i].weight;
	}
	ks->n[IX_TERM] = pp->terms_len;
	if (pp->city % 10000) {
		if (loc_intern(m, pp->city / 100 * 100, &loc))
			return -ENOMEM;
		ks->k[IX_LOC][ks->n[IX_LOC]++] = loc;
	}
	if (pp->city) {
		if (loc_intern(m, pp->city / 10000 * 10000, &loc))
			return -ENOMEM;
		ks->k[IX_LOC][ks->n[IX_LOC]++] = loc;
	}
	keys_finish(ks);
	return 0;
}

static float term_weight(const struct score_term *t, uint8_t n, uint32_t id)
{
	uint8_t lo = 0, hi = n;

	while (lo < hi) {
		uint8_t mid = (uint8_t)((lo + hi) / 2);

		if (t[mid].id == id)
			return t[mid].weight;
		if (t[mid].id < id)
			lo = (uint8_t)(mid + 1);
		else
			hi = mid;
	}
	return -1;
}

static bool has_u32(const uint32_t *a, uint8_t n, uint32_t x)
{
	return n && bsearch(&x, a, n, sizeof(*a), cmp_u32) != NULL;
}

/* Does a student's indexed profile (eligible ones only) hold key?  For
 * terms, *w gets the student's weight.  Compaction's test of an entry. */
static bool student_has(const struct match *m, uint32_t num,
			enum ix_kind kind, uint32_t key, float *w)
{
	const struct mstudent *s;
	const struct score_student *sp;
	uint32_t code;

	if (num >= m->st_len)
		return false;
	s = &m->st[num];
	sp = &s->sp;
	if (!s->id || s->reason != MATCH_ELIGIBLE)
		return false;
	switch (kind) {
	case IX_CAT:
		for (uint8_t i = 0; i < sp->categories_len; i++)
			if (sp->categories[i] == key)
				return true;
		return false;
	case IX_SKILL:
		return has_u32(sp->skills, sp->skills_len, key);
	case IX_TERM:
		*w = term_weight(sp->terms, sp->terms_len, key);
		return *w >= 0;
	case IX_LOC:
		code = m->loc_code[key];
		for (uint8_t i = 0; i < sp->cities_len; i++)
			if (loc_key_of(sp->cities[i]) == code)
				return true;
		return !sp->cities_len && sp->origin &&
		       loc_key_of(sp->origin) == code;
	}
	return false;
}

/* The same for a live posting; for skills *w gets its share. */
static bool posting_has(const struct match *m, uint32_t num,
			enum ix_kind kind, uint32_t key, float *w)
{
	const struct mposting *p = posting_at(m, num);
	const struct score_posting *pp = &p->pp;
	uint32_t code;

	if (!p->live)
		return false;
	switch (kind) {
	case IX_CAT:
		return pp->category == key;
	case IX_SKILL:
		*w = pp->skills_len ? 1.0f / (float)pp->skills_len : 0;
		return has_u32(pp->skills, pp->skills_len, key);
	case IX_TERM:
		*w = term_weight(pp->terms, pp->terms_len, key);
		return *w >= 0;
	case IX_LOC:
		code = m->loc_code[key];
		return code == pp->city / 10000 * 10000 ||
		       (pp->city % 10000 && code == pp->city / 100 * 100);
	}
	return false;
}

static bool side_has(const struct match *m, enum side side, uint32_t num,
		     enum ix_kind kind, uint32_t key, float *w)
{
	return side == SIDE_STUDENT ? student_has(m, num, kind, key, w)
				    : posting_has(m, num, kind, key, w);
}

static struct rindex *index_of(struct match *m, enum side side,
			       enum ix_kind kind)
{
	return side == SIDE_STUDENT ? &m->sidx[kind] : &m->pidx[kind];
}

static int rlist_grow(struct rlist *l, bool weighted)
{
	uint32_t cap = l->cap ? l->cap * 2 : 4;
	uint32_t *v = realloc(l->v, (size_t)cap * sizeof(*v));
	float *w;

	if (!v)
		return -ENOMEM;
	l->v = v;
	if (weighted) {
		w = realloc(l->w, (size_t)cap * sizeof(*w));
		if (!w)
			return -ENOMEM;
		l->w = w;
	}
	l->cap = cap;
	return 0;
}

static int rindex_add(struct rindex *ix, uint32_t key, uint32_t num,
		      float w)
{
	struct rlist *l;

	if (grow((void **)&ix->l, &ix->cap, key + 1, sizeof(*ix->l)))
		return -ENOMEM;
	l = &ix->l[key];
	if (l->len == l->cap && rlist_grow(l, ix->weighted))
		return -ENOMEM;
	l->v[l->len] = num;
	if (ix->weighted)
		l->w[l->len] = w;
	l->len++;
	return 0;
}

static uint32_t scratch_epoch(struct mscratch *sc);

/* Drops the entries whose slot no longer has the key, and repeats. */
static void rindex_compact(struct match *m, enum side side,
			   enum ix_kind kind, uint32_t key)
{
	struct rlist *l = &index_of(m, side, kind)->l[key];
	struct mscratch *sc = side == SIDE_STUDENT ? &m->ss : &m->ps;
	uint32_t epoch = scratch_epoch(sc), out = 0;
	float w;

	for (uint32_t i = 0; i < l->len; i++) {
		uint32_t num = l->v[i];

		w = 0;
		if ((num < sc->cap && sc->a[num].stamp == epoch) ||
		    !side_has(m, side, num, kind, key, &w) ||
		    (l->w && w != l->w[i]))
			continue;
		if (num < sc->cap)
			sc->a[num].stamp = epoch;
		if (l->w)
			l->w[out] = l->w[i];
		l->v[out++] = num;
	}
	l->len = out;
	l->dead = 0;
}

static void rindex_dead(struct match *m, enum side side, enum ix_kind kind,
			uint32_t key)
{
	struct rindex *ix = index_of(m, side, kind);
	struct rlist *l;

	if (key >= ix->cap)
		return;
	l = &ix->l[key];
	l->dead++;
	if (l->dead * 2 > l->len && l->len >= 32)
		rindex_compact(m, side, kind, key);
}

/* Orders keys, and for terms equal ids by weight, so that a term whose
 * weight changed counts as a key dropped and a key added. */
static int key_cmp(const struct keyset *a, uint8_t i, const struct keyset *b,
		   uint8_t j, int k)
{
	if (a->k[k][i] != b->k[k][j])
		return a->k[k][i] < b->k[k][j] ? -1 : 1;
	if (a->w[k][i] == b->w[k][j])
		return 0;
	return a->w[k][i] < b->w[k][j] ? -1 : 1;
}

/* Keeps the largest weight any slot has for each term: the bound the
 * other side prunes with. */
static int term_max_raise(struct match *m, enum side side, uint32_t term,
			  float w)
{
	float **mx = side == SIDE_STUDENT ? &m->tmax_s : &m->tmax_p;
	uint32_t *cap = side == SIDE_STUDENT ? &m->tmax_s_cap
					     : &m->tmax_p_cap;

	if (grow((void **)mx, cap, term + 1, sizeof(**mx)))
		return -ENOMEM;
	if (w > (*mx)[term])
		(*mx)[term] = w;
	return 0;
}

static int index_key_add(struct match *m, enum side side, int k,
			 const struct keyset *ks, uint8_t j, uint32_t num)
{
	float w = ks->w[k][j];

	if (k == IX_TERM && term_max_raise(m, side, ks->k[k][j], w))
		return -ENOMEM;
	return rindex_add(index_of(m, side, (enum ix_kind)k), ks->k[k][j],
			  num, w);
}

/*
 * Moves slot num from the keys in old to those in new: a new key gets an
 * entry, an old key only a dead count (the entry goes at compaction).
 */
static int index_diff(struct match *m, enum side side, uint32_t num,
		      const struct keyset *old, const struct keyset *new)
{
	for (int k = 0; k < IX_KINDS; k++) {
		uint8_t i = 0, j = 0, no = old ? old->n[k] : 0;
		uint8_t nn = new ? new->n[k] : 0;

		while (i < no || j < nn) {
			int c = i == no ? 1 : j == nn ? -1
				: key_cmp(old, i, new, j, k);

			if (c < 0) {
				rindex_dead(m, side, (enum ix_kind)k,
					    old->k[k][i++]);
			} else if (c > 0) {
				if (index_key_add(m, side, k, new, j++, num))
					return -ENOMEM;
			} else {
				i++;
				j++;
			}
		}
	}
	return 0;
}

/* ---- scratch ---- */

static int scratch_init(struct mscratch *sc, uint32_t heap_cap)
{
	memset(sc, 0, sizeof(*sc));
	sc->heap = malloc((size_t)heap_cap * sizeof(*sc->heap));
	return sc->heap ? 0 : -ENOMEM;
}

static int scratch_reserve(struct mscratch *sc, uint32_t n)
{
	uint32_t cap = sc->cap;

	if (grow((void **)&sc->a, &cap, n, sizeof(*sc->a)))
		return -ENOMEM;
	sc->cap = cap;
	return 0;
}

/* A new epoch: every accumulator reads as untouched again. */
static uint32_t scratch_epoch(struct mscratch *sc)
{
	if (++sc->epoch == 0) {
		for (uint32_t i = 0; i < sc->cap; i++)
			sc->a[i].stamp = 0;
		sc->epoch = 1;
	}
	sc->touched.len = 0;
	return sc->epoch;
}

/* The first addition to a slot in this epoch. */
static int acc_first(struct mscratch *sc, uint32_t num, float x, bool ts)
{
	if (u32vec_push(&sc->touched, num)) {
		/* Not stamped either, but the caller must not trust a
		 * partial pass: it checks oom. */
		sc->oom = true;
		return -ENOMEM;
	}
	sc->a[num].stamp = sc->epoch;
	sc->a[num].sum = x;
	sc->a[num].ts = ts ? x : 0;
	return 0;
}

/* Adds x to slot num's bound; ts says it is a text or skills part.  The
 * common case, a slot already touched, is kept small enough to inline
 * into the walks. */
static inline int acc_add(struct mscratch *sc, uint32_t num, float x,
			  bool ts)
{
	if (sc->a[num].stamp != sc->epoch)
		return acc_first(sc, num, x, ts);
	sc->a[num].sum += x;
	if (ts)
		sc->a[num].ts += x;
	return 0;
}

static void scratch_free(struct mscratch *sc)
{
	free(sc->a);
	free(sc->heap);
	u32vec_free(&sc->touched);
	for (int i = 0; i < WEAK_BUCKETS; i++)
		u32vec_free(&sc->bins[i]);
	memset(sc, 0, sizeof(*sc));
}

/* ---- the list order ---- */

/* a ranks before b in a student's list: higher score, then newer, then
 * the smaller id. */
static bool ranks_before(const struct match *m, struct mentry a,
			 struct mentry b)
{
	const struct mposting *pa, *pb;

	if (a.score != b.score)
		return a.score > b.score;
	pa = posting_at(m, a.posting);
	pb = posting_at(m, b.posting);
	if (pa->pp.posted_at != pb->pp.posted_at)
		return pa->pp.posted_at > pb->pp.posted_at;
	return strcmp(pa->id, pb->id) < 0;
}

/* A bounded min-heap whose root is the entry that ranks last. */
static void heap_sift_down(const struct match *m, struct mentry *h,
			   uint32_t n, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, worst = i;
		struct mentry t;

		if (l < n && ranks_before(m, h[worst], h[l]))
			worst = l;
		if (r < n && ranks_before(m, h[worst], h[r]))
			worst = r;
		if (worst == i)
			return;
		t = h[i];
		h[i] = h[worst];
		h[worst] = t;
		i = worst;
	}
}

static void heap_offer(const struct match *m, struct mscratch *sc,
		       uint32_t cap, struct mentry e)
{
	struct mentry *h = sc->heap;
	uint32_t i;

	if (sc->heap_len == cap) {
		if (!ranks_before(m, e, h[0]))
			return;
		h[0] = e;
		heap_sift_down(m, h, cap, 0);
		return;
	}
	i = sc->heap_len++;
	h[i] = e;
	while (i && ranks_before(m, h[(i - 1) / 2], h[i])) {
		struct mentry t = h[i];

		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

/* The score an offer must reach to matter: the root's when full. */
static bool heap_rejects(const struct mscratch *sc, uint32_t cap, float ub)
{
	return sc->heap_len == cap && ub + EPS < sc->heap[0].score;
}

/* Empties the heap into e[], best first. */
static uint32_t heap_drain(const struct match *m, struct mscratch *sc,
			   struct mentry *e)
{
	uint32_t n = sc->heap_len;

	while (sc->heap_len) {
		uint32_t last = --sc->heap_len;

		e[last] = sc->heap[0];
		sc->heap[0] = sc->heap[last];
		heap_sift_down(m, sc->heap, last, 0);
	}
	return n;
}

static struct mlist *list_new(uint32_t cap)
{
	struct mlist *l = malloc(sizeof(*l) + (size_t)cap * sizeof(l->e[0]));

	if (l) {
		l->len = 0;
		l->cap = cap;
		l->all = true;
	}
	return l;
}

/* Where e goes in l (binary search on the list order). */
static uint32_t list_slot(const struct match *m, const struct mlist *l,
			  struct mentry e)
{
	uint32_t lo = 0, hi = l->len;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (ranks_before(m, l->e[mid], e))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Inserts e (stripe lock held); a full list loses its last entry (or e
 * itself) and with it the claim to hold everything.  Returns e's
 * position, or NONE when it did not fit. */
static uint32_t list_insert(const struct match *m, struct mlist *l,
			    struct mentry e)
{
	uint32_t at = list_slot(m, l, e);

	if (l->len == l->cap) {
		l->all = false;
		if (at == l->len)
			return NONE;
		l->len--;
	}
	memmove(&l->e[at + 1], &l->e[at], (l->len - at) * sizeof(l->e[0]));
	l->e[at] = e;
	l->len++;
	return at;
}

static bool list_remove(struct mlist *l, uint32_t posting)
{
	for (uint32_t i = 0; i < l->len; i++) {
		if (l->e[i].posting != posting)
			continue;
		memmove(&l->e[i], &l->e[i + 1],
			(l->len - i - 1) * sizeof(l->e[0]));
		l->len--;
		return true;
	}
	return false;
}

/* ---- buckets ---- */

static uint8_t bucket_of(float x, uint8_t buckets)
{
	int b = (int)(x * (float)buckets);

	return (uint8_t)(b < 0 ? 0 : b >= buckets ? buckets - 1 : b);
}

/* The score below which an offer cannot enter l, or -1 for any. */
static float list_floor(const struct mlist *l)
{
	return l->all || !l->len ? -1 : l->e[l->len - 1].score;
}

static void weak_unlink(struct match *m, uint32_t num)
{
	struct mstudent *s = &m->st[num];
	uint32_t moved;

	m->sfloor[num] = FLT_MAX;
	if (s->wbucket == WEAK_NONE)
		return;
	moved = u32vec_swap_out(&m->weak[s->wbucket], s->wpos);
	if (moved != NONE)
		m->st[moved].wpos = s->wpos;
	s->wbucket = WEAK_NONE;
}

static void stale_mark(struct match *m, uint32_t num);

/* Files a fresh student under the score of their list's last entry. */
static void weak_update(struct match *m, uint32_t num)
{
	struct mstudent *s = &m->st[num];
	float floor = s->list ? list_floor(s->list) : -1;
	uint8_t b = floor < 0 ? WEAK_ALL : bucket_of(floor, WEAK_BUCKETS);

	if (s->wbucket == b) {
		m->sfloor[num] = floor;
		return;
	}
	weak_unlink(m, num);
	if (u32vec_push(&m->weak[b], num)) {
		/* Out of memory: no posting would find the student, so the
		 * list waits for a rebuild, which files it again. */
		stale_mark(m, num);
		return;
	}
	s->wpos = m->weak[b].len - 1;
	s->wbucket = b;
	m->sfloor[num] = floor;
}

static int base_add(struct match *m, uint32_t num)
{
	struct mposting *p = posting_at(m, num);
	uint8_t b;

	p->base = score_bound_unreached(&m->cfg.score, &p->pp, m->fresh_at);
	m->bchunk[num / POSTING_CHUNK][num % POSTING_CHUNK] = p->base;
	b = bucket_of(p->base, BASE_BUCKETS);
	p->bucket = b;
	p->bpos = m->base[b].len;
	return u32vec_push(&m->base[b], num);
}

static void base_del(struct match *m, uint32_t num)
{
	struct mposting *p = posting_at(m, num);
	uint32_t moved;

	if (p->bucket == BASE_NONE)
		return;
	moved = u32vec_swap_out(&m->base[p->bucket], p->bpos);
	if (moved != NONE)
		posting_at(m, moved)->bpos = p->bpos;
	p->bucket = BASE_NONE;
}

/* After the freshness clock moved: every posting to its new bucket. */
static int base_refile(struct match *m)
{
	for (uint32_t num = 0; num < m->p_len; num++) {
		struct mposting *p = posting_at(m, num);

		if (!p->live)
			continue;
		base_del(m, num);
		if (base_add(m, num))
			return -ENOMEM;
	}
	return 0;
}

/* ---- students by major ---- */

/* The keys of the posting codes that accept major: one per length of
 * code (2, 4 or 6 digits) up to the major's own. */
static uint8_t major_keys(struct score_major major, uint64_t key[3])
{
	static const uint32_t scale[] = { 1, 100, 10000 };
	uint8_t n = 0;

	for (uint8_t d = 2; d <= 6 && d <= major.digits; d += 2) {
		uint32_t drop = major.digits - d;

		if (drop % 2)
			break;
		key[n++] = (uint64_t)d << 32 | major.code / scale[drop / 2];
	}
	return n;
}

static void major_unlist(struct match *m, uint32_t num,
			 struct score_major major)
{
	uint64_t key[3];
	uint8_t n = major_keys(major, key);

	for (uint8_t i = 0; i < n; i++) {
		uint32_t at = imap_get(&m->majors, key[i]);
		struct u32vec *v;

		if (at == NONE)
			continue;
		v = &m->mlists[at];
		for (uint32_t j = 0; j < v->len; j++) {
			if (v->v[j] == num) {
				v->v[j] = v->v[--v->len];
				break;
			}
		}
	}
}

static int major_list(struct match *m, uint32_t num, struct score_major major)
{
	uint64_t key[3];
	uint8_t n = major_keys(major, key);

	for (uint8_t i = 0; i < n; i++) {
		uint32_t at = imap_get(&m->majors, key[i]);

		if (at == NONE) {
			if (grow((void **)&m->mlists, &m->mlists_cap,
				 m->mlists_len + 1, sizeof(*m->mlists)) ||
			    imap_put(&m->majors, key[i], m->mlists_len))
				return -ENOMEM;
			at = m->mlists_len++;
		}
		if (u32vec_push(&m->mlists[at], num))
			return -ENOMEM;
	}
	return 0;
}

/* Moves student num from the lists of was to those of now. */
static void major_move(struct match *m, uint32_t num, struct score_major was,
		       struct score_major now)
{
	if (m->majors_off ||
	    (was.code == now.code && was.digits == now.digits))
		return;
	major_unlist(m, num, was);
	if (major_list(m, num, now))
		m->majors_off = true;
}

/*
 * Sets (on) or clears the bit of every student some major of pp accepts;
 * false when pp names no majors or they cannot narrow the students.
 */
static bool major_mark(struct match *m, const struct score_posting *pp,
		       bool on)
{
	uint32_t words = (m->st_len + 63) / 64;

	if (!pp->majors_len || m->majors_off)
		return false;
	for (uint16_t i = 0; i < pp->majors_len; i++) {
		if (pp->majors[i].digits % 2 || pp->majors[i].digits > 6)
			return false;
	}
	if (on && grow((void **)&m->sbits, &m->sbits_cap, words,
		       sizeof(*m->sbits)))
		return false;
	for (uint16_t i = 0; i < pp->majors_len; i++) {
		struct score_major c = pp->majors[i];
		uint32_t at = imap_get(&m->majors, (uint64_t)c.digits << 32 |
							   c.code);
		const struct u32vec *v;

		if (at == NONE)
			continue;
		v = &m->mlists[at];
		for (uint32_t j = 0; j < v->len; j++) {
			uint32_t s = v->v[j];

			if (on)
				m->sbits[s / 64] |= 1ull << (s % 64);
			else
				m->sbits[s / 64] &= ~(1ull << (s % 64));
		}
	}
	return true;
}

static bool bit_has(const uint64_t *bits, uint32_t x)
{
	return !bits || (bits[x / 64] >> (x % 64) & 1);
}

/* ---- computing a list from scratch ---- */

/*
 * Which of a profile's terms to leave out of a traversal.  A term t can
 * add at most share * w(t) * (the largest weight any other-side slot has
 * for t); leaving out the terms that can add least, up to TEXT_SLACK of
 * cosine in all, skips the longest lists (common terms weigh little) at
 * the cost of that much slack added to every bound.  Returns the slack in
 * score units and marks the terms to skip.
 */
static float terms_prune(const struct match *m, const uint32_t *ids,
			 const float *w, uint8_t n, const float *tmax,
			 uint32_t tmax_cap, bool *skip)
{
	float c[SCORE_TERMS_MAX], cum = 0, sq = 0;
	uint8_t order[SCORE_TERMS_MAX];

	for (uint8_t i = 0; i < n; i++) {
		c[i] = ids[i] < tmax_cap ? w[i] * tmax[ids[i]] : 0;
		order[i] = i;
		skip[i] = false;
	}
	/* Insertion sort: at most SCORE_TERMS_MAX terms. */
	for (uint8_t i = 1; i < n; i++) {
		for (uint8_t j = i; j > 0 && c[order[j]] < c[order[j - 1]];
		     j--) {
			uint8_t t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	}
	for (uint8_t i = 0; i < n && cum + c[order[i]] <= TEXT_SLACK; i++) {
		cum += c[order[i]];
		sq += w[order[i]] * w[order[i]];
		skip[order[i]] = true;
	}
	/* The skipped part of a unit vector adds at most its own length. */
	return m->share[SCORE_TEXT] * fminf(cum, sqrtf(sq));
}

/*
 * The contribution an entry of a list of kind k stands for, before a
 * weighted list's own weight.  A place is already counted at province fit
 * in every posting's base bound, so a location entry adds only the rest.
 */
static float list_share(const struct match *m, int k, float scale)
{
	switch (k) {
	case IX_CAT: return m->share[SCORE_CATEGORY];
	case IX_LOC:
		return m->share[SCORE_LOCATION] * (1 - SCORE_FIT_PROVINCE);
	default: return scale;
	}
}

/* Adds every list entry of keys ks in index ix to sc, or only those
 * whose bit is set in only.  scale[k][i] is what an entry's weight is
 * multiplied by. */
static void accumulate(const struct match *m, struct mscratch *sc,
		       const struct rindex *ix, const struct keyset *ks,
		       const float scale[IX_KINDS][SCORE_TERMS_MAX],
		       const bool *skip_terms, const uint64_t *only)
{
	for (int k = 0; k < IX_KINDS; k++) {
		bool ts = k == IX_TERM || k == IX_SKILL;

		for (uint8_t i = 0; i < ks->n[k]; i++) {
			uint32_t key = ks->k[k][i];
			const struct rlist *l;
			const float *w;
			float share;

			if (key >= ix[k].cap || (k == IX_TERM && skip_terms[i]))
				continue;
			l = &ix[k].l[key];
			/* Per entry only for weighted lists; the walk below
			 * is the hottest loop of a new posting. */
			w = ts ? l->w : NULL;
			share = list_share(m, k, scale[k][i]);
			for (uint32_t j = 0; j < l->len; j++) {
				if (j + PREFETCH_AHEAD < l->len)
					__builtin_prefetch(
						&sc->a[l->v[j + PREFETCH_AHEAD]],
						1);
				if (bit_has(only, l->v[j]))
					acc_add(sc, l->v[j],
						w ? share * w[j] : share, ts);
			}
		}
	}
}

/* Adds every posting the student's keys reach, with an upper bound of
 * the features that reaching stands for; sc->slack gets what pruning
 * adds to every bound. */
static void student_accumulate(struct match *m, struct mscratch *sc,
			       const struct keyset *ks)
{
	float scale[IX_KINDS][SCORE_TERMS_MAX];
	bool skip[SCORE_TERMS_MAX];

	for (uint8_t i = 0; i < ks->n[IX_TERM]; i++)
		scale[IX_TERM][i] = m->share[SCORE_TEXT] * ks->w[IX_TERM][i];
	for (uint8_t i = 0; i < ks->n[IX_SKILL]; i++)
		scale[IX_SKILL][i] = m->share[SCORE_SKILLS];
	sc->slack = terms_prune(m, ks->k[IX_TERM], ks->w[IX_TERM],
				ks->n[IX_TERM], m->tmax_p, m->tmax_p_cap, skip);
	accumulate(m, sc, m->pidx, ks, (const float (*)[SCORE_TERMS_MAX])scale,
		   skip, NULL);
}

/*
 * Scores a posting for the heap; ts_max bounds what its text and skills
 * can add.  A dead index entry may name a posting no longer live.
 */
static void offer_posting(struct match *m, struct mscratch *sc,
			  const struct score_student *sp, uint32_t p,
			  const struct score_time *t, float ts_max)
{
	const struct mposting *mp = posting_at(m, p);
	float score, floor = -1;

	if (!mp->live)
		return;
	if (sc->heap_len == m->list_cap)
		floor = sc->heap[0].score - EPS;
	score = score_pair_above(&m->cfg.score, sp, &mp->pp, t, ts_max, floor);
	if (score >= 0)
		heap_offer(m, sc, m->list_cap, (struct mentry){ p, score });
}

/* Reached postings, best bound first, until no bound can enter. */
static void phase_reached(struct match *m, struct mscratch *sc,
			  const struct score_student *sp,
			  const struct score_time *t)
{
	for (int b = 0; b < WEAK_BUCKETS; b++)
		sc->bins[b].len = 0;
	for (uint32_t i = 0; i < sc->touched.len; i++) {
		uint32_t p = sc->touched.v[i];
		float ub = sc->a[p].sum + posting_base(m, p) + sc->slack;

		/* Without room to sort it, a posting is offered at once. */
		if (u32vec_push(&sc->bins[bucket_of(ub, WEAK_BUCKETS)], p))
			offer_posting(m, sc, sp, p, t,
				      sc->a[p].ts + sc->slack);
	}
	for (int b = WEAK_BUCKETS - 1; b >= 0; b--) {
		float top = (float)(b + 1) / WEAK_BUCKETS;

		if (b < WEAK_BUCKETS - 1 && heap_rejects(sc, m->list_cap, top))
			return;
		for (uint32_t i = 0; i < sc->bins[b].len; i++) {
			uint32_t p = sc->bins[b].v[i];
			float ub = sc->a[p].sum + posting_base(m, p) +
				   sc->slack;

			if (!heap_rejects(sc, m->list_cap, ub))
				offer_posting(m, sc, sp, p, t,
					      sc->a[p].ts + sc->slack);
		}
	}
}

/* Postings not reached, by their bound, until none can enter. */
static void phase_unreached(struct match *m, struct mscratch *sc,
			    const struct score_student *sp,
			    const struct score_time *t)
{
	for (int b = BASE_BUCKETS - 1; b >= 0; b--) {
		const struct u32vec *v = &m->base[b];
		float top = (float)(b + 1) / BASE_BUCKETS + sc->slack;

		if (b < BASE_BUCKETS - 1 && heap_rejects(sc, m->list_cap, top))
			return;
		for (uint32_t i = 0; i < v->len; i++) {
			uint32_t p = v->v[i];

			if (sc->a[p].stamp == sc->epoch ||
			    heap_rejects(sc, m->list_cap,
					 posting_base(m, p) + sc->slack))
				continue;
			offer_posting(m, sc, sp, p, t, sc->slack);
		}
	}
}

/*
 * Computes a student's list from scratch into a new list.  Reads shared
 * state only, so build threads may run it side by side with their own
 * scratch.  Returns NULL when out of memory.
 */
static struct mlist *list_compute(struct match *m, struct mscratch *sc,
				  uint32_t num, const struct score_time *t)
{
	const struct score_student *sp = &m->st[num].sp;
	struct keyset ks;
	struct mlist *l;

	if (scratch_reserve(sc, m->p_len) || student_keys(m, sp, false, &ks))
		return NULL;
	scratch_epoch(sc);
	sc->heap_len = 0;
	sc->oom = false;
	student_accumulate(m, sc, &ks);
	if (sc->oom)
		return NULL;
	phase_reached(m, sc, sp, t);
	phase_unreached(m, sc, sp, t);
	l = list_new(m->list_cap);
	if (!l)
		return NULL;
	l->len = heap_drain(m, sc, l->e);
	l->all = l->len < l->cap;
	return l;
}

/* ---- lists on the match thread ---- */

static struct score_time score_now(const struct match *m)
{
	return (struct score_time){ now_s(m), m->fresh_at };
}

/* Replaces a student's list (NULL: none) where readers can see it. */
static void list_install(struct match *m, uint32_t num, struct mlist *l)
{
	struct mstudent *s = &m->st[num];
	struct mlist *old;

	pthread_mutex_lock(stripe_of(m, num));
	old = s->list;
	s->list = l;
	pthread_mutex_unlock(stripe_of(m, num));
	free(old);
}

static void stale_clear(struct match *m, uint32_t num)
{
	struct mstudent *s = &m->st[num];

	if (!s->stale)
		return;
	s->stale = false;
	m->stale_count--;
}

static void stale_mark(struct match *m, uint32_t num)
{
	struct mstudent *s = &m->st[num];

	weak_unlink(m, num);
	if (s->stale)
		return;
	s->stale = true;
	m->stale_count++;
}

/* Computes an eligible student's list now and makes it fresh. */
static int student_rebuild(struct match *m, uint32_t num)
{
	struct score_time t = score_now(m);
	struct mlist *l = list_compute(m, &m->ps, num, &t);

	if (!l)
		return -ENOMEM;
	list_install(m, num, l);
	stale_clear(m, num);
	weak_update(m, num);
	stat_add(&m->stats.rebuilt, 1);
	m->round_rebuilt++;
	return 0;
}

/* Adds the students a posting reaches to m->ss with an upper bound of
 * the reached features, then the students whose last entry its bound for
 * the others can beat.  m->ss.slack gets what pruning adds to every
 * bound, which the caller adds to the posting's base.  With qualified,
 * only students its majors accept: the ones an offer can go to (a
 * posting leaving looks at everyone who may hold it). */
static int posting_reach(struct match *m, uint32_t num, bool qualified)
{
	const struct mposting *p = posting_at(m, num);
	struct mscratch *sc = &m->ss;
	float scale[IX_KINDS][SCORE_TERMS_MAX];
	bool skip[SCORE_TERMS_MAX];
	struct keyset ks;
	const uint64_t *only;
	float bound;

	if (scratch_reserve(sc, m->st_len) || posting_keys(m, &p->pp, &ks))
		return -ENOMEM;
	only = qualified && major_mark(m, &p->pp, true) ? m->sbits : NULL;
	scratch_epoch(sc);
	sc->oom = false;
	for (uint8_t i = 0; i < ks.n[IX_TERM]; i++)
		scale[IX_TERM][i] = m->share[SCORE_TEXT] * ks.w[IX_TERM][i];
	for (uint8_t i = 0; i < ks.n[IX_SKILL]; i++)
		scale[IX_SKILL][i] = m->share[SCORE_SKILLS] * ks.w[IX_SKILL][i];
	sc->slack = terms_prune(m, ks.k[IX_TERM], ks.w[IX_TERM],
				ks.n[IX_TERM], m->tmax_s, m->tmax_s_cap, skip);
	accumulate(m, sc, m->sidx, &ks,
		   (const float (*)[SCORE_TERMS_MAX])scale, skip, only);
	bound = p->base + sc->slack + EPS;
	for (int b = 0; b <= WEAK_ALL; b++) {
		const struct u32vec *v = &m->weak[b];

		if (b < WEAK_ALL && b > bucket_of(bound, WEAK_BUCKETS))
			continue;
		for (uint32_t i = 0; i < v->len; i++) {
			if (i + PREFETCH_AHEAD < v->len)
				__builtin_prefetch(
					&sc->a[v->v[i + PREFETCH_AHEAD]], 1);
			if (bit_has(only, v->v[i]))
				acc_add(sc, v->v[i], 0, false);
		}
	}
	if (only)
		major_mark(m, &p->pp, false);
	return sc->oom ? -ENOMEM : 0;
}

static bool student_fresh(const struct mstudent *s)
{
	return s->id && s->reason == MATCH_ELIGIBLE && !s->stale && s->list;
}

/* Offers posting p to student num, whose bound for it is ub (of which
 * text and skills are at most ts_max). */
static void offer_to(struct match *m, uint32_t num, uint32_t p, float ub,
		     float ts_max, const struct score_time *t,
		     struct match_rerank *res)
{
	struct mstudent *s = &m->st[num];
	struct mlist *l = s->list;
	struct mposting *mp = posting_at(m, p);
	float floor, score;
	struct mentry e;
	uint32_t at;

	if (ub + EPS < m->sfloor[num] || !student_fresh(s))
		return;
	floor = list_floor(l);
	if (floor >= 0 && ub + EPS < floor)
		return;
	stat_add(&m->stats.offers, 1);
	score = score_pair_above(&m->cfg.score, &s->sp, &mp->pp, t, ts_max,
				 floor >= 0 ? floor - EPS : -1);
	e = (struct mentry){ p, score };
	if (score < 0 || (!l->all && l->len &&
			  !ranks_before(m, e, l->e[l->len - 1])))
		return;
	pthread_mutex_lock(stripe_of(m, num));
	at = list_insert(m, l, e);
	pthread_mutex_unlock(stripe_of(m, num));
	weak_update(m, num);
	if (at == NONE)
		return;
	stat_add(&m->stats.entered, 1);
	res->students_updated++;
	if (at < m->cfg.k && m->cfg.on_enter &&
	    m->cfg.on_enter(m->cfg.push_ctx, s->id, mp->id, score, at) == 1)
		res->pushes++;
}

/* Takes posting p out of student num's list; a list left short of k
 * (and not known to hold everything) goes to refill. */
static void take_from(struct match *m, uint32_t num, uint32_t p, float ub,
		      struct u32vec *refill, struct match_rerank *res)
{
	struct mstudent *s = &m->st[num];
	struct mlist *l = s->list;
	float floor;
	bool removed;

	if (ub + EPS < m->sfloor[num] || !student_fresh(s))
		return;
	floor = list_floor(l);
	if (floor >= 0 && ub + EPS < floor)
		return;
	pthread_mutex_lock(stripe_of(m, num));
	removed = list_remove(l, p);
	pthread_mutex_unlock(stripe_of(m, num));
	if (!removed)
		return;
	res->students_updated++;
	weak_update(m, num);
	if (!l->all && l->len < m->cfg.k)
		u32vec_push(refill, num);
}

/* An offer waiting in offer_all()'s ring. */
struct offer {
	uint32_t num;
	float ub, ts_max;
};

/*
 * offer_all() and take_all() test each bound against the packed floors
 * first: most students reached fall short, and looking at their records
 * (a cache miss each) would cost more than everything else a posting
 * does.  offer_all() then asks the packed gate: most of the rest fail a
 * hard filter (a posting's majors, mostly), and of the others many fall
 * short once their major, pay and province are known.
 */
static void offer_all(struct match *m, uint32_t p, struct match_rerank *res)
{
	struct score_time t = score_now(m);
	const struct score_posting *pp = &posting_at(m, p)->pp;
	float base = posting_base(m, p) + m->ss.slack;
	/* An offer waits OFFER_AHEAD passes in a ring while its student's
	 * lines are fetched. */
	struct offer ring[OFFER_AHEAD];
	uint32_t n = 0;

	for (uint32_t i = 0; i < m->ss.touched.len; i++) {
		uint32_t s = m->ss.touched.v[i];
		float ub = m->ss.a[s].sum + base;
		const struct score_gate *g = &m->sgate[s];

		if (i + PREFETCH_AHEAD < m->ss.touched.len) {
			uint32_t ahead = m->ss.touched.v[i + PREFETCH_AHEAD];

			__builtin_prefetch(&m->ss.a[ahead]);
			__builtin_prefetch(&m->sfloor[ahead]);
			__builtin_prefetch(&m->sgate[ahead]);
		}
		if (ub + EPS < m->sfloor[s] ||
		    !score_gate_pass(g, pp))
			continue;
		ub = m->ss.a[s].sum + m->ss.slack +
		     score_gate_bound(&m->cfg.score, g, pp, m->fresh_at);
		if (ub + EPS < m->sfloor[s])
			continue;
		if (n >= OFFER_AHEAD) {
			const struct offer *o = &ring[n % OFFER_AHEAD];

			offer_to(m, o->num, p, o->ub, o->ts_max, &t, res);
		}
		ring[n % OFFER_AHEAD] = (struct offer){
			s, ub, m->ss.a[s].ts + m->ss.slack
		};
		/* What offer_to() reads: the record now; the end of the list
		 * and the profile's terms for the offer half way along the
		 * ring, whose record is likely in by now.  (Prefetching from
		 * a helper lets the compiler drop the helper as having no
		 * effect.) */
		__builtin_prefetch(&m->st[s]);
		__builtin_prefetch((const char *)&m->st[s] + 64);
		if (n >= OFFER_AHEAD / 2) {
			const struct mstudent *half =
				&m->st[ring[(n - OFFER_AHEAD / 2) %
					    OFFER_AHEAD].num];
			const struct mlist *l = half->list;

			if (l) {
				__builtin_prefetch(l);
				__builtin_prefetch(
					&l->e[l->len ? l->len - 1 : 0]);
			}
			__builtin_prefetch(half->sp.terms);
		}
		n++;
	}
	for (uint32_t j = n > OFFER_AHEAD ? n - OFFER_AHEAD : 0; j < n; j++) {
		const struct offer *o = &ring[j % OFFER_AHEAD];

		offer_to(m, o->num, p, o->ub, o->ts_max, &t, res);
	}
}

static void take_all(struct match *m, uint32_t p, struct u32vec *refill,
		     struct match_rerank *res)
{
	float base = posting_base(m, p) + m->ss.slack;

	for (uint32_t i = 0; i < m->ss.touched.len; i++) {
		uint32_t s = m->ss.touched.v[i];
		float ub = m->ss.a[s].sum + base;

		if (ub + EPS >= m->sfloor[s])
			take_from(m, s, p, ub, refill, res);
	}
}

/* Rebuilds the lists left short, unless a later offer filled them. */
static void refill_all(struct match *m, struct u32vec *refill)
{
	for (uint32_t i = 0; i < refill->len; i++) {
		uint32_t num = refill->v[i];
		struct mstudent *s = &m->st[num];

		if (!student_fresh(s) || s->list->all ||
		    s->list->len >= m->cfg.k)
			continue;
		if (student_rebuild(m, num))
			stale_mark(m, num);
	}
	refill->len = 0;
}

/* ---- postings ---- */

static uint32_t posting_find(const struct match *m, const char *id,
			     size_t len)
{
	return idmap_get(&m->p_ids, id, len);
}

/* Whether id waits to be hidden, and with drop, forgets it.  pdir_lock
 * held. */
static bool pending_hide_take(struct match *m, const char *id, bool drop)
{
	for (uint32_t i = 0; i < m->pending_len; i++) {
		if (strcmp(m->pending_hides[i], id))
			continue;
		if (drop) {
			free(m->pending_hides[i]);
			m->pending_hides[i] = m->pending_hides[--m->pending_len];
		}
		return true;
	}
	return false;
}

/* The close or delete of id has been applied. */
static void pending_hide_drop(struct match *m, const char *id)
{
	pthread_mutex_lock(&m->pdir_lock);
	pending_hide_take(m, id, true);
	pthread_mutex_unlock(&m->pdir_lock);
}

static int posting_alloc(struct match *m, const char *id, uint32_t *out)
{
	uint32_t num;
	struct mposting *p;
	char *copy = strdup(id);

	if (!copy)
		return -ENOMEM;
	if (m->p_free.len) {
		num = m->p_free.v[--m->p_free.len];
	} else {
		uint32_t chunk = m->p_len / POSTING_CHUNK;

		if (chunk >= POSTING_CHUNKS_MAX)
			goto full;
		if (!m->pchunk[chunk]) {
			m->pchunk[chunk] = calloc(POSTING_CHUNK,
						  sizeof(struct mposting));
			if (!m->pchunk[chunk])
				goto full;
		}
		if (!m->bchunk[chunk]) {
			m->bchunk[chunk] = calloc(POSTING_CHUNK,
						  sizeof(float));
			if (!m->bchunk[chunk])
				goto full;
		}
		num = m->p_len++;
	}
	p = posting_at(m, num);
	p->id = copy;
	p->bucket = BASE_NONE;
	p->live = false;
	p->df_counted = false;
	pthread_mutex_lock(&m->pdir_lock);
	atomic_store(&p->hidden, pending_hide_take(m, id, false));
	if (idmap_add(&m->p_ids, p->id, num)) {
		pthread_mutex_unlock(&m->pdir_lock);
		p->id = NULL;
		u32vec_push(&m->p_free, num);
		free(copy);
		return -ENOMEM;
	}
	pthread_mutex_unlock(&m->pdir_lock);
	*out = num;
	return 0;
full:
	free(copy);
	return -ENOSPC;
}

static int expiry_push(struct match *m, uint32_t num)
{
	const struct mposting *p = posting_at(m, num);
	struct expiry e = { p->pp.expires_at, num, p->gen };
	uint32_t i;

	if (!e.at)
		return 0;
	if (grow((void **)&m->heap, &m->heap_cap, m->heap_len + 1,
		 sizeof(*m->heap)))
		return -ENOMEM;
	i = m->heap_len++;
	m->heap[i] = e;
	while (i && m->heap[(i - 1) / 2].at > m->heap[i].at) {
		struct expiry t = m->heap[i];

		m->heap[i] = m->heap[(i - 1) / 2];
		m->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
	return 0;
}

static void expiry_pop(struct match *m)
{
	uint32_t i = 0, n = --m->heap_len;

	m->heap[0] = m->heap[n];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, min = i;
		struct expiry t;

		if (l < n && m->heap[l].at < m->heap[min].at)
			min = l;
		if (r < n && m->heap[r].at < m->heap[min].at)
			min = r;
		if (min == i)
			return;
		t = m->heap[i];
		m->heap[i] = m->heap[min];
		m->heap[min] = t;
		i = min;
	}
}

/* Indexes a posting and makes it a candidate for every list. */
static int posting_go_live(struct match *m, uint32_t num)
{
	struct mposting *p = posting_at(m, num);
	struct keyset ks;
	int64_t until = p->pp.expires_at ? p->pp.expires_at : INT64_MAX;

	if (posting_keys(m, &p->pp, &ks) ||
	    index_diff(m, SIDE_POSTING, num, NULL, &ks) ||
	    base_add(m, num) || expiry_push(m, num))
		return -ENOMEM;
	atomic_store(&p->open_until, until);
	p->live = true;
	stat_add(&m->stats.postings, 1);
	return 0;
}

/* Unindexes a posting; its profile stays for the caller to use. */
static void posting_go_dark(struct match *m, uint32_t num)
{
	struct mposting *p = posting_at(m, num);
	struct keyset ks;

	if (!p->live)
		return;
	p->live = false;
	stat_add(&m->stats.postings, UINT64_MAX);
	base_del(m, num);
	if (posting_keys(m, &p->pp, &ks) == 0)
		index_diff(m, SIDE_POSTING, num, &ks, NULL);
}

/*
 * Lets a posting slot go.  Readers may still reach it through stale lists
 * (those waiting for a rebuild), so it stays hidden with its id until no
 * stale list is left; only then may the slot take another posting.
 */
static void posting_release(struct match *m, uint32_t num)
{
	struct mposting *p = posting_at(m, num);

	atomic_store(&p->hidden, true);
	pthread_mutex_lock(&m->pdir_lock);
	idmap_del(&m->p_ids, p->id);
	pthread_mutex_unlock(&m->pdir_lock);
	free(p->blk);
	p->blk = NULL;
	memset(&p->pp, 0, sizeof(p->pp));
	p->gen++;
	u32vec_push(m->stale_count ? &m->p_limbo : &m->p_free, num);
	if (!m->stale_count) {
		free(p->id);
		p->id = NULL;
	}
}

/* No stale list is left: released slots may be reused. */
static void limbo_flush(struct match *m)
{
	for (uint32_t i = 0; i < m->p_limbo.len; i++) {
		uint32_t num = m->p_limbo.v[i];
		struct mposting *p = posting_at(m, num);

		free(p->id);
		p->id = NULL;
		if (u32vec_push(&m->p_free, num))
			break;
	}
	m->p_limbo.len = 0;
}

static bool posting_open(const struct score_posting *pp, int64_t now)
{
	return !pp->closed && (!pp->expires_at || now < pp->expires_at);
}

/*
 * Takes a live posting out of every list that holds it.  Lists left
 * short are added to refill and rebuilt by the caller, after any new
 * version of the posting has been offered.
 */
static int posting_leave(struct match *m, uint32_t num, struct u32vec *refill,
			 struct match_rerank *res)
{
	int rc;

	if (!posting_at(m, num)->live)
		return 0;
	rc = posting_reach(m, num, false);
	posting_go_dark(m, num);
	if (rc)
		return rc;
	take_all(m, num, refill, res);
	return 0;
}

static int posting_enter(struct match *m, uint32_t num,
			 struct match_rerank *res)
{
	int rc = posting_go_live(m, num);

	if (!rc)
		rc = posting_reach(m, num, true);
	if (!rc)
		offer_all(m, num, res);
	return rc;
}

/* Puts a decoded posting's new profile into its slot. */
static int posting_set(struct match *m, uint32_t num, const struct pfacts *f)
{
	struct mposting *p = posting_at(m, num);
	struct score_posting pp;
	void *blk = posting_block(f, &pp);

	if (!blk)
		return -ENOMEM;
	free(p->blk);
	p->blk = blk;
	p->pp = pp;
	p->gen++;
	return 0;
}

/*
 * Something failed for lack of memory half way through a change, so some
 * lists may be wrong: every list is rebuilt from the profiles, which are
 * right or (for the record that failed) unchanged.
 */
static void rebuild_everything(struct match *m);

static void posting_drop(struct match *m, uint32_t num,
			 struct match_rerank *res)
{
	struct u32vec *refill = &m->refill;

	refill->len = 0;
	if (!m->loading && posting_leave(m, num, refill, res))
		rebuild_everything(m);
	posting_go_dark(m, num);
	posting_release(m, num);
	refill_all(m, refill);
}

static int posting_put_facts(struct match *m, uint32_t num,
			     const struct pfacts *f, bool counted,
			     struct match_rerank *res)
{
	struct u32vec *refill = &m->refill;
	int rc;

	refill->len = 0;
	if (num != NONE && !m->loading && posting_leave(m, num, refill, res))
		rebuild_everything(m);
	if (num != NONE)
		posting_go_dark(m, num);
	if (num == NONE) {
		rc = posting_alloc(m, f->id, &num);
		if (rc)
			return rc;
	}
	rc = posting_set(m, num, f);
	if (rc) {
		posting_release(m, num);
		return rc;
	}
	posting_at(m, num)->df_counted |= counted;
	posting_at(m, num)->seen = m->reload_round;
	rc = m->loading ? posting_go_live(m, num)
			: posting_enter(m, num, res);
	if (rc)
		rebuild_everything(m);
	refill_all(m, refill);
	return 0;
}

/* A posting's stored form after a put, close or load. */
static int posting_put(struct match *m, const void *bytes, size_t len,
		       struct match_rerank *res)
{
	struct pfacts *f = malloc(sizeof(*f));
	struct doc d;
	uint32_t num;
	bool count;
	int rc = doc_open(&d, bytes, len);

	if (!rc && !f)
		rc = -ENOMEM;
	if (rc)
		goto out;
	rc = mp_id(d.map, "id", f->id);
	if (rc)
		goto out;
	num = posting_find(m, f->id, strlen(f->id));
	count = !m->df_preloaded &&
		(num == NONE || !posting_at(m, num)->df_counted);
	rc = posting_facts(m, d.map, count, f);
	if (rc)
		goto out;
	if (!posting_open(&f->pp, now_s(m))) {
		pending_hide_drop(m, f->id);
		if (num != NONE)
			posting_drop(m, num, res);
		goto out;
	}
	rc = posting_put_facts(m, num, f, count || m->df_preloaded, res);
out:
	free(f);
	doc_close(&d);
	return rc == 0 || rc == -ENOMEM || rc == -ENOSPC ? rc : -EINVAL;
}

static void posting_delete(struct match *m, const char *id,
			   struct match_rerank *res)
{
	uint32_t num = posting_find(m, id, strlen(id));

	pending_hide_drop(m, id);
	if (num != NONE)
		posting_drop(m, num, res);
}

/* Rebuilds the expiry heap from the live postings, dropping the entries
 * that earlier versions of postings left behind. */
static void expiry_compact(struct match *m)
{
	m->heap_len = 0;
	for (uint32_t num = 0; num < m->p_len; num++) {
		if (posting_at(m, num)->live)
			expiry_push(m, num);
	}
}

/* Drops postings whose expires_at has come. */
static void expire_due(struct match *m, int64_t now)
{
	struct match_rerank res = { 0 };

	if (m->heap_len > 2 * m->p_len + 1024)
		expiry_compact(m);
	while (m->heap_len && m->heap[0].at <= now) {
		struct expiry e = m->heap[0];
		struct mposting *p = posting_at(m, e.posting);

		expiry_pop(m);
		if (p->id && p->live && p->gen == e.gen &&
		    p->pp.expires_at == e.at)
			posting_drop(m, e.posting, &res);
	}
}

/* ---- students ---- */

static uint32_t student_find(const struct match *m, const char *id,
			     size_t len)
{
	return idmap_get(&m->st_ids, id, len);
}

static void student_init(struct mstudent *s, char *id)
{
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->wbucket = WEAK_NONE;
	s->reason = MATCH_NOT_BOUND;
	s->missing = UINT32_MAX;
	resume_clear(&s->sp);
}

/* A slot for a new student; the table may move, under the write lock. */
static int student_alloc(struct match *m, const char *id, uint32_t *out)
{
	char *copy = strdup(id);
	uint32_t num, cap = m->st_cap;
	int rc = -ENOMEM;

	if (!copy)
		return -ENOMEM;
	pthread_rwlock_wrlock(&m->dir_lock);
	if (m->st_free.len) {
		num = m->st_free.v[--m->st_free.len];
	} else {
		uint32_t gcap = m->st_cap;

		if (grow((void **)&m->st, &cap, m->st_len + 1, sizeof(*m->st)))
			goto out;
		if (grow((void **)&m->sgate, &gcap, cap, sizeof(*m->sgate)))
			goto out;
		if (grow((void **)&m->sfloor, &m->st_cap, cap,
			 sizeof(*m->sfloor)))
			goto out;
		num = m->st_len++;
	}
	student_init(&m->st[num], copy);
	stat_add(&m->stats.students, 1);
	m->sfloor[num] = FLT_MAX;
	m->sgate[num] = score_gate_of(&m->st[num].sp);
	rc = idmap_add(&m->st_ids, copy, num);
	if (rc) {
		m->st[num].id = NULL;
		u32vec_push(&m->st_free, num);
	}
out:
	pthread_rwlock_unlock(&m->dir_lock);
	if (rc)
		free(copy);
	else
		*out = num;
	return rc;
}

static void student_release(struct match *m, uint32_t num)
{
	struct mstudent *s = &m->st[num];

	if (s->reason == MATCH_ELIGIBLE)
		stat_add(&m->stats.eligible, UINT64_MAX);
	stat_add(&m->stats.students, UINT64_MAX);
	pthread_rwlock_wrlock(&m->dir_lock);
	idmap_del(&m->st_ids, s->id);
	free(s->id);
	free(s->blk);
	free(s->list);
	free(s->student_bytes);
	free(s->resume_bytes);
	memset(s, 0, sizeof(*s));
	s->wbucket = WEAK_NONE;
	u32vec_push(&m->st_free, num);
	pthread_rwlock_unlock(&m->dir_lock);
}

/* Keeps a copy of stored bytes when no store can give them back. */
static void keep_bytes(struct match *m, char **dst, uint32_t *dst_len,
		       const void *bytes, size_t len)
{
	char *copy = NULL;

	if (m->cfg.store)
		return;
	if (bytes && len) {
		copy = malloc(len);
		if (copy)
			memcpy(copy, bytes, len);
	}
	free(*dst);
	*dst = copy;
	*dst_len = copy ? (uint32_t)len : 0;
}

/* The student record (or the resume) of a student, for completeness. */
static int half_get(struct match *m, uint32_t num, bool resume,
		    struct doc *d)
{
	struct mstudent *s = &m->st[num];
	bool began = false;
	MDB_val v;
	int rc;

	/* Loading by hand before match_start: a reader of our own. */
	if (!m->rd && m->cfg.store &&
	    store_reader_new(m->cfg.store, &m->rd) != 0)
		m->rd = NULL;
	if (!m->rd)
		return resume ? doc_open(d, s->resume_bytes, s->resume_len)
			      : doc_open(d, s->student_bytes, s->student_len);
	if (!m->rd_in_txn) {
		rc = store_read_begin(m->rd);
		if (rc)
			return doc_open(d, NULL, 0), rc;
		began = true;
	}
	rc = store_get(m->rd, resume ? STORE_RESUME : STORE_STUDENT, s->id,
		       strlen(s->id), &v);
	if (!rc && v.mv_size > m->half_cap) {
		char *p = realloc(m->half, v.mv_size);

		if (p) {
			m->half = p;
			m->half_cap = v.mv_size;
		} else {
			rc = -ENOMEM;
		}
	}
	if (!rc)
		memcpy(m->half, v.mv_data, v.mv_size);
	if (began)
		store_read_end(m->rd);
	if (rc)
		return doc_open(d, NULL, 0), rc;
	return doc_open(d, m->half, v.mv_size);
}

static enum match_reason eligibility(const struct match *m,
				     const struct mstudent *s)
{
	if (!s->bound)
		return MATCH_NOT_BOUND;
	if (s->sp.grad_year < m->cohort_lo || s->sp.grad_year > m->cohort_hi)
		return MATCH_COHORT_INACTIVE;
	if (!s->has_resume)
		return MATCH_NO_RESUME;
	if (s->percent < m->cfg.threshold)
		return MATCH_RESUME_INCOMPLETE;
	return MATCH_ELIGIBLE;
}

static void assess(struct match *m, uint32_t num,
		   const msgpack_object *student, const msgpack_object *resume)
{
	static const msgpack_object empty = { .type = MSGPACK_OBJECT_MAP };
	struct completeness_result cr = { 0, UINT32_MAX };
	struct mstudent *s = &m->st[num];

	if (m->comp)
		completeness_eval(m->comp, resume ? resume : &empty, student,
				  &cr);
	pthread_mutex_lock(stripe_of(m, num));
	s->percent = (uint8_t)cr.percent;
	s->missing = cr.missing;
	pthread_mutex_unlock(stripe_of(m, num));
}

/* The keys a student is indexed under: none unless eligible. */
static const struct keyset *indexed_keys(struct match *m, uint32_t num,
					 struct keyset *ks)
{
	const struct mstudent *s = &m->st[num];

	if (s->reason != MATCH_ELIGIBLE || student_keys(m, &s->sp, true, ks))
		return NULL;
	return ks;
}

/*
 * After a student's profile or completeness changed: the new reason,
 * indexes moved from old keys to the new ones, and the list rebuilt (or
 * dropped).  Loading only marks the list stale.
 */
static void settle(struct match *m, uint32_t num, const struct keyset *old)
{
	struct mstudent *s = &m->st[num];
	enum match_reason reason = eligibility(m, s);
	struct keyset now;

	if ((s->reason == MATCH_ELIGIBLE) != (reason == MATCH_ELIGIBLE))
		stat_add(&m->stats.eligible, reason == MATCH_ELIGIBLE ?
			 1 : UINT64_MAX);
	pthread_mutex_lock(stripe_of(m, num));
	s->reason = (uint8_t)reason;
	pthread_mutex_unlock(stripe_of(m, num));
	if (index_diff(m, SIDE_STUDENT, num, old, indexed_keys(m, num, &now)))
		rebuild_everything(m);
	if (reason != MATCH_ELIGIBLE) {
		weak_unlink(m, num);
		stale_clear(m, num);
		list_install(m, num, NULL);
	} else if (m->loading || student_rebuild(m, num)) {
		stale_mark(m, num);
	}
}

static int student_put(struct match *m, const void *bytes, size_t len)
{
	struct keyset oldks;
	const struct keyset *old;
	struct sfacts f;
	struct doc d, r;
	uint32_t num;
	int rc = doc_open(&d, bytes, len);

	if (rc || student_facts(d.map, &f))
		return doc_close(&d), -EINVAL;
	num = student_find(m, f.id, strlen(f.id));
	if (num == NONE && (rc = student_alloc(m, f.id, &num)))
		return doc_close(&d), rc;
	old = indexed_keys(m, num, &oldks);
	m->st[num].seen = m->reload_round;
	student_apply_facts(&m->st[num], &f);
	major_move(m, num, m->sgate[num].major, m->st[num].sp.major);
	m->sgate[num] = score_gate_of(&m->st[num].sp);
	keep_bytes(m, &m->st[num].student_bytes, &m->st[num].student_len,
		   bytes, len);
	if (m->st[num].has_resume && half_get(m, num, true, &r) == 0)
		assess(m, num, d.map, r.map);
	else
		assess(m, num, d.map, NULL);
	if (m->st[num].has_resume)
		doc_close(&r);
	settle(m, num, old);
	doc_close(&d);
	return 0;
}

static void student_delete(struct match *m, const char *id)
{
	uint32_t num = student_find(m, id, strlen(id));
	struct keyset ks;

	if (num == NONE)
		return;
	index_diff(m, SIDE_STUDENT, num, indexed_keys(m, num, &ks), NULL);
	major_move(m, num, m->sgate[num].major, (struct score_major){ 0, 0 });
	m->sgate[num] = (struct score_gate){ 0 };
	weak_unlink(m, num);
	stale_clear(m, num);
	student_release(m, num);
}

/* Replaces the resume half of a profile (NULL facts: no resume). */
static void resume_set(struct match *m, uint32_t num, const struct rfacts *r,
		       void *blk)
{
	struct mstudent *s = &m->st[num];

	free(s->blk);
	s->blk = blk;
	s->has_resume = r != NULL;
	if (!r)
		resume_clear(&s->sp);
	m->sgate[num] = score_gate_of(&s->sp);
}

static int resume_put(struct match *m, const void *bytes, size_t len)
{
	char id[MATCH_ID_BYTES];
	struct keyset oldks;
	const struct keyset *old;
	struct score_student sp;
	struct rfacts r;
	struct doc d, st;
	uint32_t num;
	void *blk;
	int rc = doc_open(&d, bytes, len);

	if (rc || mp_id(d.map, "student_id", id))
		return doc_close(&d), -EINVAL;
	num = student_find(m, id, strlen(id));
	if (num == NONE)
		return doc_close(&d), -ENOENT;
	old = indexed_keys(m, num, &oldks);
	sp = m->st[num].sp;
	if (resume_facts(m, d.map, &r) || !(blk = resume_block(&r, &sp)))
		return doc_close(&d), -ENOMEM;
	m->st[num].sp = sp;
	m->st[num].rseen = m->reload_round;
	resume_set(m, num, &r, blk);
	keep_bytes(m, &m->st[num].resume_bytes, &m->st[num].resume_len,
		   bytes, len);
	rc = half_get(m, num, false, &st);
	assess(m, num, rc ? NULL : st.map, d.map);
	doc_close(&st);
	settle(m, num, old);
	doc_close(&d);
	return 0;
}

static void resume_delete(struct match *m, const char *id)
{
	uint32_t num = student_find(m, id, strlen(id));
	struct keyset oldks;
	const struct keyset *old;
	struct doc st;
	int rc;

	if (num == NONE || !m->st[num].has_resume)
		return;
	old = indexed_keys(m, num, &oldks);
	resume_set(m, num, NULL, NULL);
	keep_bytes(m, &m->st[num].resume_bytes, &m->st[num].resume_len,
		   NULL, 0);
	rc = half_get(m, num, false, &st);
	assess(m, num, rc ? NULL : st.map, NULL);
	doc_close(&st);
	settle(m, num, old);
}

/* ---- rounds: rebuilding every list ---- */

static int clock_year(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!localtime_r(&tt, &tm))
		return 1970;
	return tm.tm_year + 1900;
}

/* A student whose reason may have changed with the active cohorts. */
static void reason_refresh(struct match *m, uint32_t num)
{
	struct mstudent *s = &m->st[num];
	struct keyset oldks;
	const struct keyset *old;
	bool was_loading = m->loading;

	if (!s->id || eligibility(m, s) == s->reason)
		return;
	old = indexed_keys(m, num, &oldks);
	m->loading = true; /* marks the list stale instead of building it */
	settle(m, num, old);
	m->loading = was_loading;
}

/* The active cohorts follow the clock's year. */
static void cohorts_update(struct match *m, int64_t now)
{
	int year = clock_year(now);

	if (year == m->year)
		return;
	m->year = year;
	m->cohort_lo = year - m->cfg.cohorts_before;
	m->cohort_hi = year + m->cfg.cohorts_after;
	for (uint32_t num = 0; num < m->st_len; num++)
		reason_refresh(m, num);
}

/*
 * Marks every eligible student's list stale; the match thread rebuilds
 * them in slices.  move_clock: the freshness clock moves to now first.
 */
static void round_begin(struct match *m, bool move_clock)
{
	int64_t now = now_s(m);
	bool was_loading = m->loading;

	if (move_clock) {
		m->fresh_at = now;
		if (base_refile(m))
			m->rebuild_wanted = true;
	}
	cohorts_update(m, now);
	m->loading = was_loading;
	for (uint32_t num = 0; num < m->st_len; num++) {
		struct mstudent *s = &m->st[num];

		if (s->id && s->reason == MATCH_ELIGIBLE)
			stale_mark(m, num);
	}
	m->stale_cursor = 0;
	m->round_rebuilt = 0;
}

static void rebuild_everything(struct match *m)
{
	m->rebuild_wanted = true;
}

static void waiters_finish(struct match *m)
{
	struct match_rerank r = { m->round_rebuilt, 0, 0 };

	while (m->waiters) {
		struct waiter *w = m->waiters;

		m->waiters = w->next;
		w->done(w->job, &r);
		free(w);
	}
}

/* Rebuilds up to budget stale lists.  Returns true while some remain. */
static bool stale_slice(struct match *m, uint32_t budget)
{
	uint32_t scanned = 0;

	while (m->stale_count && budget) {
		struct mstudent *s;
		uint32_t num;

		if (m->stale_cursor >= m->st_len)
			m->stale_cursor = 0;
		num = m->stale_cursor++;
		s = &m->st[num];
		if (++scanned > m->st_len + 1) {
			m->stale_count = 0; /* cannot happen; never spin */
			break;
		}
		if (!s->id || !s->stale)
			continue;
		budget--;
		if (s->reason != MATCH_ELIGIBLE)
			stale_clear(m, num);
		else if (student_rebuild(m, num))
			return true; /* out of memory: try again later */
	}
	if (m->stale_count)
		return true;
	limbo_flush(m);
	waiters_finish(m);
	return false;
}

/* ---- the queue ---- */

static int enqueue(struct match *m, enum ev_kind kind, const char *id,
		   size_t id_len, const void *stored, size_t len)
{
	size_t bytes = sizeof(struct mevent) + id_len + 1 + len;
	struct mevent *ev;
	int rc = 0;

	if (id_len == 0 || id_len >= MATCH_ID_BYTES || len > UINT32_MAX)
		return -EINVAL;
	ev = malloc(bytes);
	if (!ev) {
		atomic_store(&m->overflow, true);
		return -EAGAIN;
	}
	ev->next = NULL;
	ev->queued_us = mono_us();
	ev->kind = (uint8_t)kind;
	ev->deleted = stored == NULL;
	ev->id_len = (uint32_t)id_len;
	ev->len = stored ? (uint32_t)len : 0;
	ev->id = (char *)(ev + 1);
	memcpy(ev->id, id, id_len);
	ev->id[id_len] = '\0';
	ev->data = ev->id + id_len + 1;
	if (stored)
		memcpy(ev->data, stored, len);
	pthread_mutex_lock(&m->q_lock);
	if (m->stopping) {
		rc = -ESHUTDOWN;
	} else if (m->q_len >= m->cfg.queue_events_max ||
		   m->q_bytes + bytes > m->cfg.queue_bytes_max) {
		/* Never wait and never grow: the change is dropped and the
		 * match thread reloads everything from the store. */
		atomic_store(&m->overflow, true);
		stat_add(&m->stats.dropped, 1);
		rc = -EAGAIN;
	} else {
		if (m->q_tail)
			m->q_tail->next = ev;
		else
			m->q_head = ev;
		m->q_tail = ev;
		m->q_len++;
		m->q_bytes += bytes;
		pthread_cond_signal(&m->q_cond);
	}
	pthread_mutex_unlock(&m->q_lock);
	if (rc)
		free(ev);
	return rc;
}

int match_on_student(struct match *m, const char *id, size_t id_len,
		     const void *stored, size_t len)
{
	return enqueue(m, EV_STUDENT, id, id_len, stored, len);
}

int match_on_resume(struct match *m, const char *student_id, size_t id_len,
		    const void *stored, size_t len)
{
	return enqueue(m, EV_RESUME, student_id, id_len, stored, len);
}

/*
 * Hides a posting from readers at once (the writer thread's side).  When
 * the match thread has not applied the posting's put yet, the id waits
 * in pending_hides so that the slot it gets starts hidden.  Running out
 * of memory here only narrows the guarantee to the usual delay.
 */
static void posting_hide(struct match *m, const char *id, size_t id_len)
{
	uint32_t num;
	char *copy;

	pthread_mutex_lock(&m->pdir_lock);
	num = posting_find(m, id, id_len);
	if (num != NONE) {
		atomic_store(&posting_at(m, num)->hidden, true);
	} else if (m->pending_len < m->pending_cap ||
		   grow((void **)&m->pending_hides, &m->pending_cap,
			m->pending_len + 1, sizeof(char *)) == 0) {
		copy = strndup(id, id_len);
		if (copy)
			m->pending_hides[m->pending_len++] = copy;
	}
	pthread_mutex_unlock(&m->pdir_lock);
}

int match_on_posting(struct match *m, const char *id, size_t id_len,
		     const void *stored, size_t len)
{
	struct doc d;

	if (!stored) {
		posting_hide(m, id, id_len);
	} else if (doc_open(&d, stored, len) == 0) {
		if (mp_true(d.map, "closed"))
			posting_hide(m, id, id_len);
	}
	if (stored)
		doc_close(&d);
	return enqueue(m, EV_POSTING, id, id_len, stored, len);
}

static void event_apply(struct match *m, struct mevent *ev)
{
	struct match_rerank res = { 0 };
	uint64_t lag_us;

	switch ((enum ev_kind)ev->kind) {
	case EV_STUDENT:
		if (ev->deleted)
			student_delete(m, ev->id);
		else
			student_put(m, ev->data, ev->len);
		break;
	case EV_RESUME:
		if (ev->deleted)
			resume_delete(m, ev->id);
		else
			resume_put(m, ev->data, ev->len);
		break;
	case EV_POSTING:
		if (ev->deleted)
			posting_delete(m, ev->id, &res);
		else
			posting_put(m, ev->data, ev->len, &res);
		break;
	}
	lag_us = mono_us() - ev->queued_us;
	if (lag_us > m->stats.lag_us_max)
		stat_set(&m->stats.lag_us_max, lag_us);
	stat_add(&m->stats.applied, 1);
}

static void events_free(struct mevent *ev)
{
	while (ev) {
		struct mevent *next = ev->next;

		free(ev);
		ev = next;
	}
}

/* Takes everything queued.  Returns true when an overflow was flagged;
 * then the queued changes are discarded, since the reload that follows
 * reads newer state than any of them. */
static bool queue_take(struct match *m, struct mevent **ev,
		       struct match_job **jobs)
{
	bool overflow;

	pthread_mutex_lock(&m->q_lock);
	*ev = m->q_head;
	*jobs = m->j_head;
	m->q_head = m->q_tail = NULL;
	m->j_head = m->j_tail = NULL;
	m->q_len = m->j_len = 0;
	m->q_bytes = 0;
	overflow = atomic_exchange(&m->overflow, false);
	pthread_mutex_unlock(&m->q_lock);
	if (overflow) {
		events_free(*ev);
		*ev = NULL;
	}
	return overflow;
}

/* ---- reloading after an overflow ---- */

static void sweep(struct match *m)
{
	struct match_rerank res = { 0 };

	for (uint32_t num = 0; num < m->st_len; num++) {
		struct mstudent *s = &m->st[num];

		if (s->id && s->seen != m->reload_round)
			student_delete(m, s->id);
		else if (s->id && s->has_resume &&
			 s->rseen != m->reload_round)
			resume_delete(m, s->id);
	}
	for (uint32_t num = 0; num < m->p_len; num++) {
		struct mposting *p = posting_at(m, num);

		if (p->live && p->seen != m->reload_round)
			posting_drop(m, num, &res);
	}
}

static int reload_default(void *ctx, struct match *m)
{
	(void)ctx;
	return m->cfg.store ? match_load_store(m, m->cfg.store) : -ENOTSUP;
}

/* True once match_stop() has asked the thread to end: long work (a
 * queue of a bulk import, a reload) gives up between steps, since
 * everything it would apply is in the store for the next start. */
static bool stop_asked(struct match *m)
{
	return __atomic_load_n(&m->stopping, __ATOMIC_ACQUIRE);
}

static void reload(struct match *m)
{
	int (*fn)(void *, struct match *) = m->cfg.reload ? m->cfg.reload
							   : reload_default;
	int rc;

	stat_add(&m->stats.reloads, 1);
	/* The store is read afresh; the closes and deletes that left ids
	 * waiting were dropped with the queue. */
	pthread_mutex_lock(&m->pdir_lock);
	while (m->pending_len)
		free(m->pending_hides[--m->pending_len]);
	pthread_mutex_unlock(&m->pdir_lock);
	round_begin(m, false);
	m->reload_round++;
	m->loading = true;
	rc = fn(m->cfg.reload_ctx, m);
	m->loading = false;
	/* Without a complete reload nothing can be swept safely; the lists
	 * are still rebuilt from what is known. */
	if (rc == 0)
		sweep(m);
	round_begin(m, false);
}

/* ---- the match thread ---- */

int match_submit(struct match *m, struct match_job *job)
{
	int rc = 0;

	job->next = NULL;
	pthread_mutex_lock(&m->q_lock);
	if (m->stopping) {
		rc = -ESHUTDOWN;
	} else if (m->j_len >= m->cfg.jobs_max) {
		rc = -EAGAIN;
	} else {
		if (m->j_tail)
			m->j_tail->next = job;
		else
			m->j_head = job;
		m->j_tail = job;
		m->j_len++;
		pthread_cond_signal(&m->q_cond);
	}
	pthread_mutex_unlock(&m->q_lock);
	return rc;
}

static void jobs_run(struct match *m, struct match_job *job)
{
	while (job) {
		struct match_job *next = job->next;

		job->run(m, job);
		job = next;
	}
}

/* Everything due besides the queue: expiries, the periodic rebuild, a
 * rebuild after running out of memory. */
static void housekeeping(struct match *m)
{
	int64_t now = now_s(m);

	if (m->cfg.rebuild_every_s > 0 && now >= m->next_rebuild) {
		m->next_rebuild = now + m->cfg.rebuild_every_s;
		round_begin(m, true);
	}
	if (m->rebuild_wanted) {
		m->rebuild_wanted = false;
		round_begin(m, false);
	}
	cohorts_update(m, now);
	expire_due(m, now);
}

/* One pass: the queue, the jobs, what is due, one slice of stale lists.
 * Returns true when more work is waiting. */
static bool pass(struct match *m, uint32_t slice)
{
	struct mevent *ev;
	struct match_job *jobs;
	uint32_t q_len;
	bool any;

	if (queue_take(m, &ev, &jobs))
		reload(m);
	any = ev || jobs;
	for (struct mevent *e = ev; e && !stop_asked(m); e = e->next)
		event_apply(m, e);
	events_free(ev);
	stat_set(&m->stats.stale, m->stale_count);
	jobs_run(m, jobs);
	if (any && m->cfg.on_batch_end)
		m->cfg.on_batch_end(m->cfg.push_ctx);
	housekeeping(m);
	if (stale_slice(m, slice))
		return true;
	pthread_mutex_lock(&m->q_lock);
	q_len = m->q_len + m->j_len;
	pthread_mutex_unlock(&m->q_lock);
	return q_len > 0 || atomic_load(&m->overflow);
}

/* How long the thread may sleep: until the next expiry, at most 1 s. */
static int64_t sleep_ms(const struct match *m)
{
	int64_t ms = 1000;

	if (m->heap_len) {
		int64_t due = (m->heap[0].at - now_s(m)) * 1000;

		if (due < ms)
			ms = due < 0 ? 0 : due;
	}
	return ms;
}

static void *match_main(void *arg)
{
	struct match *m = arg;

	/* Both belong to the thread.  Entering SCHED_IDLE and raising a
	 * nice value need no privileges; the opposite may. */
	if (m->cfg.idle)
		pthread_setschedparam(pthread_self(), SCHED_IDLE,
				      &(struct sched_param){ 0 });
	else if (m->cfg.nice > getpriority(PRIO_PROCESS, (id_t)gettid()))
		setpriority(PRIO_PROCESS, (id_t)gettid(), m->cfg.nice);
	for (;;) {
		bool more = pass(m, m->cfg.slice_students);
		struct timespec ts;
		int64_t ms = more ? 0 : sleep_ms(m);

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += ms / 1000;
		ts.tv_nsec += (long)(ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&m->q_lock);
		while (!m->stopping && ms > 0 && !m->q_head && !m->j_head &&
		       !atomic_load(&m->overflow) &&
		       pthread_cond_timedwait(&m->q_cond, &m->q_lock, &ts) == 0)
			;
		if (m->stopping) {
			pthread_mutex_unlock(&m->q_lock);
			return NULL;
		}
		pthread_mutex_unlock(&m->q_lock);
	}
}

void match_drain(struct match *m)
{
	while (pass(m, UINT32_MAX))
		;
}

int match_start(struct match *m)
{
	pthread_attr_t attr;
	int rc;

	if (m->running)
		return -EALREADY;
	if (m->cfg.store && !m->rd) {
		rc = store_reader_new(m->cfg.store, &m->rd);
		if (rc)
			return rc;
	}
	m->df_preloaded = false;
	m->started = true;
	pthread_attr_init(&attr);
	rc = -pthread_create(&m->thread, &attr, match_main, m);
	pthread_attr_destroy(&attr);
	if (rc == 0)
		m->running = true;
	return rc;
}

static void jobs_cancel(struct match_job *job)
{
	while (job) {
		struct match_job *next = job->next;

		job->cancel(job);
		job = next;
	}
}

void match_stop(struct match *m)
{
	struct mevent *ev;
	struct match_job *jobs;

	if (!m)
		return;
	pthread_mutex_lock(&m->q_lock);
	__atomic_store_n(&m->stopping, true, __ATOMIC_RELEASE);
	pthread_cond_signal(&m->q_cond);
	pthread_mutex_unlock(&m->q_lock);
	if (m->running)
		pthread_join(m->thread, NULL);
	m->running = false;
	queue_take(m, &ev, &jobs);
	events_free(ev);
	jobs_cancel(jobs);
	while (m->waiters) {
		struct waiter *w = m->waiters;

		m->waiters = w->next;
		w->job->cancel(w->job);
		free(w);
	}
	if (m->rd) {
		store_reader_free(m->rd);
		m->rd = NULL;
	}
}

/* ---- reading lists ---- */

/* Copies a page of a list, skipping postings closed, deleted or expired
 * by now.  Stripe lock held.  nums (may be NULL) gets the slots. */
static uint32_t page_copy(struct match *m, const struct mlist *l,
			  uint32_t k, uint32_t offset, int64_t now,
			  struct match_item *items, uint32_t *nums)
{
	uint32_t n = 0, skipped = 0;

	for (uint32_t i = 0; l && i < l->len && n < k; i++) {
		const struct mposting *p = posting_at(m, l->e[i].posting);

		if (atomic_load_explicit(&p->hidden, memory_order_relaxed) ||
		    atomic_load_explicit(&p->open_until,
					 memory_order_relaxed) <= now)
			continue;
		if (skipped < offset) {
			skipped++;
			continue;
		}
		snprintf(items[n].posting_id, MATCH_ID_BYTES, "%s", p->id);
		items[n].score = l->e[i].score;
		items[n].reasons_len = 0;
		if (nums)
			nums[n] = l->e[i].posting;
		n++;
	}
	return n;
}

static int get_locked(struct match *m, uint32_t num, uint32_t k,
		      uint32_t offset, struct match_answer *ans,
		      struct match_item *items, uint32_t *nums)
{
	struct mstudent *s = &m->st[num];
	int rc = 0;

	pthread_mutex_lock(stripe_of(m, num));
	ans->reason = (enum match_reason)s->reason;
	ans->completeness = s->percent;
	ans->missing = s->missing;
	ans->len = 0;
	if (s->reason == MATCH_ELIGIBLE && !s->list)
		rc = -EAGAIN;
	else if (s->reason == MATCH_ELIGIBLE)
		ans->len = page_copy(m, s->list, k, offset, now_s(m), items,
				     nums);
	pthread_mutex_unlock(stripe_of(m, num));
	return rc;
}

int match_get(struct match *m, const char *id, size_t id_len, uint32_t k,
	      uint32_t offset, struct match_answer *ans,
	      struct match_item *items)
{
	uint32_t num;
	int rc = -ENOENT;

	if (k > MATCH_LIST_MAX)
		k = MATCH_LIST_MAX;
	pthread_rwlock_rdlock(&m->dir_lock);
	num = student_find(m, id, id_len);
	if (num != NONE)
		rc = get_locked(m, num, k, offset, ans, items, NULL);
	pthread_rwlock_unlock(&m->dir_lock);
	return rc;
}

static int cmp_contribution(const void *a, const void *b, void *ctx)
{
	const float *c = ctx;
	uint8_t x = *(const uint8_t *)a, y = *(const uint8_t *)b;

	return c[x] > c[y] ? -1 : c[x] < c[y];
}

/* The main reasons of one item: the strong features (value 0.5 or more)
 * that add the most, at most three. */
static void item_reasons(struct match *m, uint32_t s, uint32_t p,
			 struct match_item *it)
{
	struct score_time t = score_now(m);
	struct score_explain ex;
	uint8_t order[SCORE_FEATURES];

	score_explain(&m->cfg.score, &m->st[s].sp, &posting_at(m, p)->pp, &t,
		      &ex);
	for (uint8_t f = 0; f < SCORE_FEATURES; f++)
		order[f] = f;
	qsort_r(order, SCORE_FEATURES, 1, cmp_contribution, ex.contribution);
	it->reasons_len = 0;
	for (int i = 0; i < SCORE_FEATURES && it->reasons_len < 3; i++) {
		if (ex.value[order[i]] >= 0.5f && ex.contribution[order[i]] > 0)
			it->reasons[it->reasons_len++] = order[i];
	}
}

int match_get_now(struct match *m, const char *id, size_t id_len,
		  uint32_t k, uint32_t offset, bool explain,
		  struct match_answer *ans, struct match_item *items)
{
	uint32_t num = student_find(m, id, id_len);
	uint32_t nums[MATCH_LIST_MAX];
	struct mstudent *s;
	int rc;

	if (num == NONE)
		return -ENOENT;
	if (k > MATCH_LIST_MAX)
		k = MATCH_LIST_MAX;
	s = &m->st[num];
	if (s->reason == MATCH_ELIGIBLE && (!s->list || s->stale)) {
		rc = student_rebuild(m, num);
		if (rc)
			return rc;
	}
	rc = get_locked(m, num, k, offset, ans, items, nums);
	for (uint32_t i = 0; explain && rc == 0 && i < ans->len; i++)
		item_reasons(m, num, nums[i], &items[i]);
	return rc;
}

/* ---- explanations, candidates, re-ranks ---- */

static uint32_t live_posting(const struct match *m, const char *id,
			     size_t len)
{
	uint32_t num = posting_find(m, id, len);

	return num != NONE && posting_at(m, num)->live ? num : NONE;
}

int match_explain(struct match *m, const char *student_id, size_t sid_len,
		  const char *posting_id, size_t pid_len,
		  struct score_explain *out)
{
	uint32_t s = student_find(m, student_id, sid_len);
	uint32_t p = live_posting(m, posting_id, pid_len);
	struct score_time t = score_now(m);

	if (s == NONE)
		return -ENOENT;
	if (p == NONE)
		return -ENXIO;
	score_explain(&m->cfg.score, &m->st[s].sp, &posting_at(m, p)->pp, &t,
		      out);
	return 0;
}

/* Candidates kept sorted best first: higher score, then smaller id. */
struct ranking {
	struct mentry *e;  /* .posting holds the student slot */
	uint32_t len, cap;
};

static bool student_before(const struct match *m, struct mentry a,
			   struct mentry b)
{
	if (a.score != b.score)
		return a.score > b.score;
	return strcmp(m->st[a.posting].id, m->st[b.posting].id) < 0;
}

static bool ranking_rejects(const struct ranking *r, float ub)
{
	return r->len == r->cap && ub + EPS < r->e[r->len - 1].score;
}

static void ranking_offer(const struct match *m, struct ranking *r,
			  struct mentry e)
{
	uint32_t at = r->len;

	if (r->len == r->cap && !student_before(m, e, r->e[r->len - 1]))
		return;
	while (at > 0 && student_before(m, e, r->e[at - 1]))
		at--;
	if (r->len == r->cap)
		r->len--;
	memmove(&r->e[at + 1], &r->e[at], (r->len - at) * sizeof(*r->e));
	r->e[at] = e;
	r->len++;
}

static void candidate_score(struct match *m, struct ranking *r, uint32_t s,
			    uint32_t p, const struct score_time *t,
			    float ts_max)
{
	const struct mstudent *st = &m->st[s];
	float floor = r->len == r->cap ? r->e[r->len - 1].score - EPS : -1;
	float score;

	if (!st->id || st->reason != MATCH_ELIGIBLE)
		return;
	score = score_pair_above(&m->cfg.score, &st->sp,
				 &posting_at(m, p)->pp, t, ts_max, floor);
	if (score >= 0)
		ranking_offer(m, r, (struct mentry){ s, score });
}

int match_candidates(struct match *m, const char *posting_id, size_t len,
		     uint32_t k, uint32_t offset,
		     struct match_candidate *out, uint32_t *out_len)
{
	uint32_t p = live_posting(m, posting_id, len);
	struct score_time t = score_now(m);
	struct ranking r = { NULL, 0, k + offset };
	float base;

	*out_len = 0;
	if (p == NONE)
		return -ENXIO;
	if (r.cap == 0 || r.cap > MATCH_LIST_MAX)
		return r.cap ? -EINVAL : 0;
	r.e = malloc(r.cap * sizeof(*r.e));
	if (!r.e || posting_reach(m, p, false)) {
		free(r.e);
		return -ENOMEM;
	}
	base = posting_base(m, p) + m->ss.slack;
	for (uint32_t i = 0; i < m->ss.touched.len; i++) {
		uint32_t s = m->ss.touched.v[i];

		if (!ranking_rejects(&r, m->ss.a[s].sum + base))
			candidate_score(m, &r, s, p, &t,
					m->ss.a[s].ts + m->ss.slack);
	}
	/* Everyone else scores at most base. */
	for (uint32_t s = 0; s < m->st_len && !ranking_rejects(&r, base); s++) {
		if (m->ss.a[s].stamp != m->ss.epoch)
			candidate_score(m, &r, s, p, &t, m->ss.slack);
	}
	for (uint32_t i = offset; i < r.len; i++, (*out_len)++) {
		snprintf(out[*out_len].student_id, MATCH_ID_BYTES, "%s",
			 m->st[r.e[i].posting].id);
		out[*out_len].score = r.e[i].score;
	}
	free(r.e);
	return 0;
}

/* Brings one student's view of posting p up to date. */
static void recheck(struct match *m, uint32_t num, uint32_t p, float ub,
		    float ts_max, const struct score_time *t,
		    struct match_rerank *res)
{
	struct mstudent *s = &m->st[num];
	struct mlist *l = s->list;
	float score, held = -1;
	bool found = false;

	if (!student_fresh(s))
		return;
	for (uint32_t i = 0; i < l->len && !found; i++) {
		found = l->e[i].posting == p;
		held = l->e[i].score;
	}
	if (!found) {
		offer_to(m, num, p, ub, ts_max, t, res);
		return;
	}
	score = score_pair(&m->cfg.score, &s->sp, &posting_at(m, p)->pp, t);
	if (score == held)
		return;
	pthread_mutex_lock(stripe_of(m, num));
	list_remove(l, p);
	pthread_mutex_unlock(stripe_of(m, num));
	res->students_updated++;
	offer_to(m, num, p, ub, ts_max, t, res);
	if (!l->all && l->len < m->cfg.k)
		u32vec_push(&m->refill, num);
	weak_update(m, num);
}

void match_rerank_postings(struct match *m, const char *const *ids,
			   const size_t *lens, uint32_t n,
			   struct match_rerank *out)
{
	struct score_time t = score_now(m);

	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t p = live_posting(m, ids[i], lens[i]);
		float base;

		if (p == NONE) {
			out->unknown++;
			continue;
		}
		if (posting_reach(m, p, false)) {
			rebuild_everything(m);
			continue;
		}
		base = posting_base(m, p) + m->ss.slack;
		m->refill.len = 0;
		for (uint32_t j = 0; j < m->ss.touched.len; j++) {
			uint32_t s = m->ss.touched.v[j];

			recheck(m, s, p, m->ss.a[s].sum + base,
				m->ss.a[s].ts + m->ss.slack, &t, out);
		}
		refill_all(m, &m->refill);
	}
}

void match_rerank_all(struct match *m, struct match_job *job,
		      void (*done)(struct match_job *job,
				   const struct match_rerank *result))
{
	struct waiter *w = malloc(sizeof(*w));
	struct match_rerank r = { 0, 0, 0 };

	round_begin(m, true);
	if (!w) {
		done(job, &r);
		return;
	}
	job->next = NULL;
	w->job = job;
	w->done = done;
	w->next = m->waiters;
	m->waiters = w;
	if (!m->stale_count)
		waiters_finish(m);
}

void match_stats_get(struct match *m, struct match_stats *out)
{
	uint64_t *dst = (uint64_t *)out;
	const uint64_t *src = (const uint64_t *)&m->stats;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	pthread_mutex_lock(&m->q_lock);
	out->queue = m->q_len;
	pthread_mutex_unlock(&m->q_lock);
}

int64_t match_fresh_at(const struct match *m)
{
	return m->fresh_at;
}

const struct score_config *match_score_config(const struct match *m)
{
	return &m->cfg.score;
}

/* ---- loading ---- */

int match_load_posting_terms(struct match *m, const void *stored,
			     size_t len)
{
	struct score_posting pp;
	uint32_t doc_len, n;
	struct doc d;
	int rc = doc_open(&d, stored, len);

	if (rc)
		return doc_close(&d), rc;
	posting_scalars(m, d.map, &pp);
	if (posting_open(&pp, now_s(m))) {
		n = posting_tf(m, d.map, &doc_len);
		rc = count_terms(m, m->tf_buf, n, doc_len);
		m->df_preloaded = true;
	}
	doc_close(&d);
	return rc;
}

/* Runs a loader with list work off: students are only marked stale. */
static int as_load(struct match *m,
		   int (*fn)(struct match *, const void *, size_t),
		   const void *stored, size_t len)
{
	bool was_loading = m->loading;
	int rc;

	m->loading = true;
	rc = fn(m, stored, len);
	m->loading = was_loading;
	return rc;
}

static int posting_put_quiet(struct match *m, const void *stored,
			     size_t len)
{
	struct match_rerank res;

	return posting_put(m, stored, len, &res);
}

int match_load_posting(struct match *m, const void *stored, size_t len)
{
	return as_load(m, posting_put_quiet, stored, len);
}

int match_load_student(struct match *m, const void *stored, size_t len)
{
	return as_load(m, student_put, stored, len);
}

int match_load_resume(struct match *m, const void *stored, size_t len)
{
	return as_load(m, resume_put, stored, len);
}

struct load_pass {
	struct match *m;
	int (*fn)(struct match *m, const void *stored, size_t len);
	char last[MATCH_ID_BYTES];
	size_t last_len;
	int rc;
};

static int load_one(void *ctx, const MDB_val *key, const MDB_val *val)
{
	struct load_pass *lp = ctx;
	int rc = lp->fn(lp->m, val->mv_data, val->mv_size);

	lp->last_len = key->mv_size < MATCH_ID_BYTES ? key->mv_size : 0;
	memcpy(lp->last, key->mv_data, lp->last_len);
	/* A record this module cannot read is skipped; memory is not. */
	if (rc == -ENOMEM) {
		lp->rc = rc;
		return 1;
	}
	return 0;
}

/* Scans one table in pages, each in a short read transaction. */
static int load_table(struct match *m, struct store_reader *rd,
		      enum store_table table,
		      int (*fn)(struct match *, const void *, size_t))
{
	struct load_pass lp = { m, fn, "", 0, 0 };
	int n;

	do {
		int rc = store_read_begin(rd);

		if (rc)
			return rc;
		m->rd_in_txn = true;
		n = store_scan(rd, table, lp.last, lp.last_len, LOAD_PAGE,
			       load_one, &lp);
		m->rd_in_txn = false;
		store_read_end(rd);
		if (n < 0)
			return n;
		if (lp.rc)
			return lp.rc;
		if (stop_asked(m))
			return -ECANCELED;
	} while ((uint32_t)n == LOAD_PAGE);
	return 0;
}

int match_load_store(struct match *m, struct store *st)
{
	struct store_reader *own = NULL;
	int rc = 0;

	if (!m->rd) {
		rc = store_reader_new(st, &own);
		if (rc)
			return rc;
		m->rd = own;
	}
	if (!m->started)
		rc = load_table(m, m->rd, STORE_POSTING,
				match_load_posting_terms);
	if (!rc)
		rc = load_table(m, m->rd, STORE_POSTING, match_load_posting);
	if (!rc)
		rc = load_table(m, m->rd, STORE_STUDENT, match_load_student);
	if (!rc)
		rc = load_table(m, m->rd, STORE_RESUME, match_load_resume);
	if (own) {
		store_reader_free(own);
		m->rd = NULL;
	}
	return rc;
}

/* ---- building every list at start-up ---- */

/* Students handed to a build thread at a time. */
#define BUILD_CHUNK 64u
#define BUILD_THREADS_MAX 64u

struct build {
	struct match *m;
	struct score_time t;
	atomic_uint next;
	atomic_int rc;
};

static void *build_worker(void *arg)
{
	struct build *b = arg;
	struct match *m = b->m;
	struct mscratch sc;

	if (scratch_init(&sc, m->list_cap) || scratch_reserve(&sc, m->p_len)) {
		atomic_store(&b->rc, -ENOMEM);
		scratch_free(&sc);
		return NULL;
	}
	for (;;) {
		uint32_t start = atomic_fetch_add(&b->next, BUILD_CHUNK);

		for (uint32_t num = start; num < start + BUILD_CHUNK &&
					   num < m->st_len; num++) {
			struct mstudent *s = &m->st[num];
			struct mlist *l;

			if (!s->id || !s->stale || s->list)
				continue;
			l = list_compute(m, &sc, num, &b->t);
			if (!l) {
				atomic_store(&b->rc, -ENOMEM);
				continue;
			}
			pthread_mutex_lock(stripe_of(m, num));
			s->list = l;
			pthread_mutex_unlock(stripe_of(m, num));
		}
		if (start >= m->st_len)
			break;
	}
	scratch_free(&sc);
	return NULL;
}

/* Offers the first k entries of a freshly built list to the push hook. */
static void offer_list(struct match *m, uint32_t num)
{
	const struct mstudent *s = &m->st[num];

	for (uint32_t i = 0; m->cfg.on_enter && i < s->list->len &&
			     i < m->cfg.k; i++)
		m->cfg.on_enter(m->cfg.push_ctx, s->id,
				posting_at(m, s->list->e[i].posting)->id,
				s->list->e[i].score, i);
}

static unsigned build_threads(const struct match *m)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = m->cfg.build_threads ? m->cfg.build_threads
					  : (unsigned)(cores > 0 ? cores : 1);

	return n > BUILD_THREADS_MAX ? BUILD_THREADS_MAX : n;
}

int match_build(struct match *m)
{
	pthread_t tid[BUILD_THREADS_MAX];
	struct build b = { .m = m, .t = score_now(m) };
	unsigned n = build_threads(m), started = 0;

	atomic_init(&b.next, 0);
	atomic_init(&b.rc, 0);
	for (unsigned i = 1; i < n; i++) {
		if (pthread_create(&tid[started], NULL, build_worker, &b) == 0)
			started++;
	}
	build_worker(&b);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	/* Back to one thread: the built lists become fresh. */
	for (uint32_t num = 0; num < m->st_len; num++) {
		struct mstudent *s = &m->st[num];

		if (!s->id || !s->stale || !s->list)
			continue;
		stale_clear(m, num);
		weak_update(m, num);
		stat_add(&m->stats.rebuilt, 1);
		if (m->cfg.offer_on_build)
			offer_list(m, num);
	}
	if (m->cfg.offer_on_build && m->cfg.on_batch_end)
		m->cfg.on_batch_end(m->cfg.push_ctx);
	if (!m->stale_count)
		limbo_flush(m);
	m->df_preloaded = false;
	m->started = true;
	return atomic_load(&b.rc);
}

/* ---- life cycle ---- */

void match_config_default(struct match_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	score_config_default(&cfg->score);
	cfg->k = 100;
	cfg->reserve = 25;
	cfg->threshold = 60;
	cfg->cohorts_before = 1;
	cfg->cohorts_after = 1;
	cfg->rebuild_every_s = 86400;
	cfg->queue_events_max = 65536;
	cfg->queue_bytes_max = (size_t)256 << 20;
	cfg->jobs_max = 4096;
	cfg->slice_students = 256;
}

static int locks_init(struct match *m)
{
	pthread_condattr_t ca;
	int rc = pthread_rwlock_init(&m->dir_lock, NULL);

	for (int i = 0; i < STRIPES && !rc; i++)
		rc = pthread_mutex_init(&m->stripe[i], NULL);
	if (!rc)
		rc = pthread_mutex_init(&m->pdir_lock, NULL);
	if (!rc)
		rc = pthread_mutex_init(&m->q_lock, NULL);
	if (!rc)
		rc = pthread_condattr_init(&ca);
	if (!rc) {
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		rc = pthread_cond_init(&m->q_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	return -rc;
}

int match_new(struct match **out, const struct match_config *cfg,
	      const struct ref *ref, const struct completeness *comp)
{
	struct match *m;

	if (!cfg->k || cfg->k + cfg->reserve > MATCH_LIST_MAX ||
	    !cfg->queue_events_max || !cfg->jobs_max || !cfg->slice_students)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	m->ref = ref;
	m->comp = comp;
	m->list_cap = cfg->k + cfg->reserve;
	for (int f = 0; f < SCORE_FEATURES; f++)
		m->share[f] = score_weight_share(&cfg->score,
						 (enum score_feature)f);
	m->sidx[IX_TERM].weighted = true;
	m->pidx[IX_TERM].weighted = true;
	m->pidx[IX_SKILL].weighted = true;
	m->fresh_at = now_s(m);
	m->next_rebuild = m->fresh_at + cfg->rebuild_every_s;
	m->year = clock_year(m->fresh_at);
	m->cohort_lo = m->year - cfg->cohorts_before;
	m->cohort_hi = m->year + cfg->cohorts_after;
	m->tok_buf = malloc(TOKENS_MAX * sizeof(*m->tok_buf));
	m->tf_buf = malloc(TOKENS_MAX * sizeof(*m->tf_buf));
	m->fold.slot = calloc(FOLD_SLOTS, sizeof(*m->fold.slot));
	if (locks_init(m) || !m->tok_buf || !m->tf_buf || !m->fold.slot ||
	    scratch_init(&m->ps, MATCH_LIST_MAX) ||
	    scratch_init(&m->ss, MATCH_LIST_MAX)) {
		match_free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

static void rindex_free(struct rindex *ix)
{
	for (uint32_t i = 0; i < ix->cap; i++) {
		free(ix->l[i].v);
		free(ix->l[i].w);
	}
	free(ix->l);
}

static void postings_free(struct match *m)
{
	for (uint32_t num = 0; num < m->p_len; num++) {
		struct mposting *p = posting_at(m, num);

		free(p->id);
		free(p->blk);
	}
	for (uint32_t c = 0; c < POSTING_CHUNKS_MAX; c++) {
		free(m->pchunk[c]);
		free(m->bchunk[c]);
	}
	for (int b = 0; b < BASE_BUCKETS; b++)
		u32vec_free(&m->base[b]);
	for (int b = 0; b <= WEAK_ALL; b++)
		u32vec_free(&m->weak[b]);
	u32vec_free(&m->p_free);
	u32vec_free(&m->p_limbo);
	free(m->p_ids.e);
	free(m->heap);
	for (uint32_t i = 0; i < m->pending_len; i++)
		free(m->pending_hides[i]);
	free(m->pending_hides);
}

static void students_free(struct match *m)
{
	for (uint32_t num = 0; num < m->st_len; num++) {
		struct mstudent *s = &m->st[num];

		free(s->id);
		free(s->blk);
		free(s->list);
		free(s->student_bytes);
		free(s->resume_bytes);
	}
	free(m->st);
	u32vec_free(&m->st_free);
	free(m->st_ids.e);
}

void match_free(struct match *m)
{
	if (!m)
		return;
	if (m->running || m->rd)
		match_stop(m);
	students_free(m);
	postings_free(m);
	for (int k = 0; k < IX_KINDS; k++) {
		rindex_free(&m->sidx[k]);
		rindex_free(&m->pidx[k]);
	}
	imap_free(&m->terms);
	imap_free(&m->skills);
	imap_free(&m->cats);
	imap_free(&m->locs);
	imap_free(&m->majors);
	for (uint32_t i = 0; i < m->mlists_len; i++)
		u32vec_free(&m->mlists[i]);
	free(m->mlists);
	free(m->sbits);
	free(m->df);
	free(m->tmax_s);
	free(m->tmax_p);
	free(m->sfloor);
	free(m->sgate);
	free(m->loc_code);
	scratch_free(&m->ps);
	scratch_free(&m->ss);
	u32vec_free(&m->refill);
	free(m->half);
	free(m->tok_buf);
	free(m->tf_buf);
	free(m->fold.slot);
	events_free(m->q_head);
	free(m);
}
