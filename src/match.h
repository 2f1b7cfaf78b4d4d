/*
 * match: every eligible student's top postings, kept fresh.
 *
 * The module holds compact profiles of students (with their resumes) and
 * of open postings, built from the stored records, reverse indexes over
 * both, and one list of the best postings per eligible student.  One
 * thread of its own (match_start) applies every change: the storage
 * layer reports each committed write (match_on_*), which copies what it
 * needs into a bounded queue and returns; the match thread updates exactly
 * the lists the change affects.  Network threads read the lists directly
 * (match_get) under striped locks, and hand everything that needs the
 * model (explanations, candidate lists, re-ranks, lists not built yet) to
 * the match thread as jobs (match_submit) answered when they are done.
 *
 * docs/matching.md describes the model, the update rules, the locking
 * scheme, the freshness bound and the measured costs.
 */
#ifndef MATCHD_MATCH_H
#define MATCHD_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "score.h"

struct match;
struct ref;
struct completeness;
struct store;

/* Why a student has no list; MATCH_ELIGIBLE when they have one.  The
 * order is the protocol's: the first that applies is reported. */
enum match_reason {
	MATCH_ELIGIBLE,
	MATCH_NOT_BOUND,
	MATCH_COHORT_INACTIVE,
	MATCH_NO_RESUME,
	MATCH_RESUME_INCOMPLETE,
};

/* "not_bound", "cohort_inactive", "no_resume", "resume_incomplete";
 * "eligible" for MATCH_ELIGIBLE. */
const char *match_reason_name(enum match_reason reason);

/* Room for any id, NUL included. */
#define MATCH_ID_BYTES 65

/* Most entries a list keeps (k + reserve) and so the most a page shows. */
#define MATCH_LIST_MAX 1000

struct match_config {
	struct score_config score;
	uint32_t k;                 /* entries every full list has (100) */
	uint32_t reserve;           /* kept beyond k, so that postings that
				       leave seldom force a rebuild (k / 4) */
	unsigned threshold;         /* completeness percent for eligibility
				       (60) */
	int cohorts_before;         /* active cohorts: Y - before ... (1) */
	int cohorts_after;          /* ... Y + after, Y the clock's year (1) */
	int64_t rebuild_every_s;    /* full rebuild, which moves the
				       freshness clock (86400; 0: never) */
	uint32_t queue_events_max;  /* queued changes (65536) */
	size_t queue_bytes_max;     /* their copied bytes (256 MiB) */
	uint32_t jobs_max;          /* queued jobs (4096) */
	uint32_t slice_students;    /* stale lists rebuilt between two looks
				       at the queue (256) */
	unsigned build_threads;     /* match_build threads (0: one per core) */
	/* The match thread's priority, so that a long rerank or list
	 * building in the background costs queries little latency: with
	 * idle, Linux's SCHED_IDLE (it runs when no other thread wants the
	 * core, and gives way at once when one does); else its nice value
	 * (0 to 19), when above the process's. */
	bool idle;
	int nice;
	/* The clock in Unix seconds; NULL: time(). */
	int64_t (*clock)(void *ctx);
	void *clock_ctx;
	/* Where the match thread reads the other half of a student (the
	 * student record for a resume, the resume for a student) when it
	 * evaluates completeness, and what it reloads after a queue
	 * overflow.  NULL: the module keeps a copy of each student's and
	 * resume's stored bytes itself (tests, tools). */
	struct store *store;
	/* Reloads every record through match_load_*() after the queue
	 * overflowed; NULL with a store: match_load_store(). */
	int (*reload)(void *ctx, struct match *m);
	void *reload_ctx;
	/*
	 * The push module's hooks, called on the match thread.  on_enter:
	 * a new or changed posting entered a student's first k at rank (0
	 * is the top) with score; returns 1 when it took the offer (counted
	 * as `pushes` by rerank).  on_batch_end: a batch of changes or a
	 * job is done, so offers can be submitted together.  NULL: nothing
	 * is pushed.
	 */
	int (*on_enter)(void *ctx, const char *student_id,
			const char *posting_id, float score, unsigned rank);
	void (*on_batch_end)(void *ctx);
	/* Also offer the first k entries of every list match_build()
	 * computes (for a push module that relies on start-up to offer
	 * again what a crash lost). */
	bool offer_on_build;
	void *push_ctx;
};

void match_config_default(struct match_config *cfg);

/*
 * Makes an empty match.  ref and comp must outlive it.  Returns 0 or
 * -EINVAL (k of 0, k + reserve over MATCH_LIST_MAX) or -ENOMEM.
 */
int match_new(struct match **out, const struct match_config *cfg,
	      const struct ref *ref, const struct completeness *comp);

/* Frees everything; the thread must be stopped. */
void match_free(struct match *m);

/*
 * Loading at start-up, before match_build() and match_start(), from one
 * thread (and from a reload callback, on the match thread): the stored
 * bytes of one record each (as record_validate() packs them).  Postings
 * should come first, each seen once by match_load_posting_terms() and
 * then by match_load_posting(), so that document frequencies are complete
 * before any text is weighed; then students, then resumes.  Closed and
 * expired postings are skipped.  Return 0, -EINVAL for bytes that are not
 * such a record, -ENOENT for a resume whose student is unknown, or
 * -ENOMEM.  Allocate; never block.
 */
int match_load_posting_terms(struct match *m, const void *stored,
			     size_t len);
int match_load_posting(struct match *m, const void *stored, size_t len);
int match_load_student(struct match *m, const void *stored, size_t len);
int match_load_resume(struct match *m, const void *stored, size_t len);

/*
 * Loads every posting, student and resume of st in that order, reading in
 * pages of short read transactions.  Returns 0 or the first -errno.
 */
int match_load_store(struct match *m, struct store *st);

/*
 * Computes every eligible student's list with build_threads threads and
 * returns when done (0 or -ENOMEM).  Skipping it is allowed: the match
 * thread then builds the lists in the background, first those that are
 * asked for.
 */
int match_build(struct match *m);

/* Starts the match thread.  Returns 0 or -errno. */
int match_start(struct match *m);

/*
 * Stops the match thread: queued changes are dropped (they are stored;
 * the next start loads them), queued and waiting jobs get cancel().
 * Calls to match_on_*() afterwards return -ESHUTDOWN.  NULL is allowed.
 */
void match_stop(struct match *m);

/*
 * Reports a committed write, from any thread: stored is the record's
 * stored form after the commit, or NULL when it was deleted (a deleted
 * student takes their resume along).  Call them in commit order (from the
 * store's complete hook), after the commit and before the write is
 * answered: a closed or deleted posting is then hidden from every
 * match_get() answered after the write.  They copy stored and queue it;
 * they never wait for the match thread.  Return 0, or -EAGAIN when the
 * queue was full (the change is dropped and the match thread reloads
 * everything from the store: see docs/matching.md), or -ESHUTDOWN.
 */
int match_on_student(struct match *m, const char *id, size_t id_len,
		     const void *stored, size_t len);
int match_on_resume(struct match *m, const char *student_id, size_t id_len,
		    const void *stored, size_t len);
int match_on_posting(struct match *m, const char *id, size_t id_len,
		     const void *stored, size_t len);

/*
 * With no match thread running: applies every queued change, runs every
 * queued job and rebuilds every stale list on the calling thread, then
 * returns.  For tests and tools.
 */
void match_drain(struct match *m);

/* One entry of a page of a student's list. */
struct match_item {
	char posting_id[MATCH_ID_BYTES];
	float score;
	uint8_t reasons_len;                 /* with explain only */
	uint8_t reasons[3];                  /* enum score_feature, best
						first */
};

/* What match_get() says about the student. */
struct match_answer {
	enum match_reason reason;
	unsigned completeness;               /* percent */
	uint32_t missing;                    /* completeness items, by bit */
	uint32_t len;                        /* items filled */
};

/*
 * A page of a student's list, from any thread: at most k items (k <=
 * MATCH_LIST_MAX) after skipping offset, leaving out postings closed or
 * expired by now.  Returns 0, -ENOENT for an unknown student, or -EAGAIN
 * when the student is eligible but their list has not been built yet
 * (then ask the match thread with match_get_now() in a job).  Takes a
 * read lock and one stripe lock for a few microseconds; never allocates.
 */
int match_get(struct match *m, const char *id, size_t id_len, uint32_t k,
	      uint32_t offset, struct match_answer *ans,
	      struct match_item *items);

/*
 * Work for the match thread.  run() is called on the match thread;
 * cancel() instead when the thread stops first.  The submitter owns the
 * job's memory until one of them has been called.
 */
struct match_job {
	struct match_job *next;
	void (*run)(struct match *m, struct match_job *job);
	void (*cancel)(struct match_job *job);
};

/* Queues a job.  Returns 0, -EAGAIN (jobs_max queued) or -ESHUTDOWN.
 * With no thread running, match_drain() runs it. */
int match_submit(struct match *m, struct match_job *job);

/*
 * The calls below belong to the match thread: call them from a job's
 * run(), or from the owning thread when no match thread runs.
 */

/* As match_get(), building the list first when needed; with explain,
 * each item also gets its main reasons. */
int match_get_now(struct match *m, const char *id, size_t id_len,
		  uint32_t k, uint32_t offset, bool explain,
		  struct match_answer *ans, struct match_item *items);

/*
 * Explains the score of one pair.  Returns 0, -ENOENT for an unknown
 * student, or -ENXIO for a posting that is unknown or no longer open.
 */
int match_explain(struct match *m, const char *student_id, size_t sid_len,
		  const char *posting_id, size_t pid_len,
		  struct score_explain *out);

struct match_candidate {
	char student_id[MATCH_ID_BYTES];
	float score;
};

/*
 * The eligible students ranked for an open posting by the same model:
 * up to k of them (k + offset <= MATCH_LIST_MAX) after skipping offset,
 * into out; *len says how many.  Ties go to the smaller student id.
 * Returns 0, -ENXIO for a posting unknown or not open, or -ENOMEM.
 */
int match_candidates(struct match *m, const char *posting_id, size_t len,
		     uint32_t k, uint32_t offset,
		     struct match_candidate *out, uint32_t *out_len);

struct match_rerank {
	uint64_t students_updated;   /* lists that changed or were rebuilt */
	uint64_t pushes;             /* on_enter() calls that recorded one */
	uint32_t unknown;            /* named postings not open or unknown */
};

/*
 * Brings every list the named postings affect up to date, at once.
 */
void match_rerank_postings(struct match *m, const char *const *ids,
			   const size_t *lens, uint32_t n,
			   struct match_rerank *out);

/*
 * Starts a full rebuild (moving the freshness clock to now) and calls
 * done(job, result) on the match thread once every list has been rebuilt.
 * Lists are rebuilt in slices between other work; until its turn, each
 * student's old list keeps being served.
 */
void match_rerank_all(struct match *m, struct match_job *job,
		      void (*done)(struct match_job *job,
				   const struct match_rerank *result));

/* Counters for `stats`; any thread, approximate while changes run. */
struct match_stats {
	uint64_t students;           /* known students */
	uint64_t eligible;           /* with a list (or one being built) */
	uint64_t postings;           /* open postings in memory */
	uint64_t stale;              /* lists waiting to be (re)built */
	uint64_t queue;              /* changes queued */
	uint64_t applied;            /* changes applied */
	uint64_t dropped;            /* changes dropped on a full queue */
	uint64_t reloads;            /* reloads after an overflow */
	uint64_t rebuilt;            /* lists computed from scratch */
	uint64_t offers;             /* pairs scored for a posting change */
	uint64_t entered;            /* lists a posting change entered */
	uint64_t lag_us_max;         /* longest queue wait of a change */
};

void match_stats_get(struct match *m, struct match_stats *out);

/* The freshness clock: the time fresh_at of every score in the lists. */
int64_t match_fresh_at(const struct match *m);

/* The model's configuration; fixed for the match's life, so any thread
 * may read it. */
const struct score_config *match_score_config(const struct match *m);

#endif
