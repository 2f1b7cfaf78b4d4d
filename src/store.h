/*
 * store: the LMDB environment, its tables, and the single writer thread
 * that turns queued write operations into group commits.
 *
 * Reads run on the network threads, each through its own store_reader (a
 * read-only transaction that is reset between requests and renewed for the
 * next, so readers never wait for the writer).  Writes are store_op values
 * submitted to a bounded queue; the writer thread takes everything queued,
 * applies it in one write transaction, commits (with fsync unless sync is
 * off), and only then hands each op to its complete() hook.  A write is
 * therefore answered only once it is durable.
 *
 * The map grows when it fills: the writer aborts the batch, doubles the map
 * (while readers are kept out by a lock they take only around their short
 * transactions) and applies the batch again.  A full disk, or a map at its
 * configured maximum, fails the batch: every op in it gets -ENOSPC and
 * nothing of it is stored.
 */
#ifndef MATCHD_STORE_H
#define MATCHD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

/* The tables.  The numbering is part of nothing on disk: tables are named. */
enum store_table {
	STORE_META,
	STORE_STUDENT,
	STORE_RESUME,
	STORE_COMPANY,
	STORE_POSTING,
	STORE_OUTBOX,     /* push seq (8 bytes, big-endian) -> push */
	STORE_PUSHED,     /* student id NUL posting id -> seq */
	STORE_PUSH_DAY,   /* day (4 bytes, big-endian) student id -> count */
	STORE_SUBSCRIBER, /* subscriber name -> acknowledged seq */
};
#define STORE_TABLES 9

/* Bumped when the stored layout changes; a mismatch refuses to open. */
#define STORE_SCHEMA_VERSION 1

struct store_config {
	const char *dir;          /* created if missing */
	bool sync;                /* fsync every commit (default true) */
	size_t map_bytes_initial; /* first map size */
	size_t map_bytes_max;     /* growth stops here: -ENOSPC beyond */
	uint32_t queue_ops_max;   /* submitted and not yet committed */
	uint32_t batch_ops_max;   /* ops in one commit */
};

void store_config_default(struct store_config *cfg);

struct store;
struct store_wtxn;

/*
 * One queued write.  The submitter owns the memory and embeds this struct
 * in its own; it must stay valid until complete() has been called.
 *
 * apply() runs on the writer thread inside the batch's transaction and may
 * run more than once (after a map growth the batch is applied again), so it
 * must reset whatever result it records before writing.  It returns 0, or
 * the negative code of a failed store_wtxn_* call, which fails the whole
 * batch.  It must not block.
 *
 * complete() runs on the writer thread after the commit (status 0) or
 * after the batch failed (status -ENOSPC: storage full; -EIO: anything
 * else; -ESHUTDOWN: the store is closing).  It must be quick: it typically
 * hands the op back to the thread that submitted it.
 */
struct store_op {
	struct store_op *next;
	int (*apply)(struct store_wtxn *txn, struct store_op *op);
	void (*complete)(struct store_op *op, int status);
};

/*
 * Opens (creating if needed) the environment in cfg->dir, checks the schema
 * version and starts the writer thread.  Returns 0 or -errno with a
 * sentence in errbuf.
 */
int store_open(struct store **out, const struct store_config *cfg,
	       char *errbuf, size_t errbuf_len);

/*
 * Commits everything already submitted, stops the writer thread and closes
 * the environment.  Ops submitted after this started fail with -ESHUTDOWN.
 */
void store_close(struct store *st);

/*
 * Queues op for the next group commit.  Returns 0, or -EAGAIN when the
 * queue holds queue_ops_max ops, or -ESHUTDOWN when closing; then op is
 * not queued and complete() will not be called.  Never blocks.
 */
int store_submit(struct store *st, struct store_op *op);

/* Inside apply(): the same calls as a reader, against the write
 * transaction.  Return 0, -ENOENT when absent, or another -errno. */
int store_wtxn_get(struct store_wtxn *txn, enum store_table table,
		   const void *key, size_t key_len, MDB_val *val);
int store_wtxn_put(struct store_wtxn *txn, enum store_table table,
		   const void *key, size_t key_len, const void *val,
		   size_t val_len);
int store_wtxn_del(struct store_wtxn *txn, enum store_table table,
		   const void *key, size_t key_len);

/* Inside apply(): store_scan() against the write transaction.  fn must
 * not write; collect keys and delete them after the scan. */
int store_wtxn_scan(struct store_wtxn *txn, enum store_table table,
		    const void *after, size_t after_len, size_t limit,
		    int (*fn)(void *ctx, const MDB_val *key,
			      const MDB_val *val),
		    void *ctx);

/*
 * A read handle for one thread.  store_read_begin() opens a snapshot,
 * store_read_end() lets it go; between them the MDB_val data returned by
 * store_get() stays valid.  A reader is used by one thread at a time.
 */
struct store_reader;

int store_reader_new(struct store *st, struct store_reader **out);
void store_reader_free(struct store_reader *rd);
int store_read_begin(struct store_reader *rd);
void store_read_end(struct store_reader *rd);
int store_get(struct store_reader *rd, enum store_table table,
	      const void *key, size_t key_len, MDB_val *val);

/*
 * Visits up to limit records of table in key order, starting after the key
 * `after` (from the first when after_len is 0).  fn returns non-zero to
 * stop.  Returns the number visited, or -errno.  Within begin/end.
 */
int store_scan(struct store_reader *rd, enum store_table table,
	       const void *after, size_t after_len, size_t limit,
	       int (*fn)(void *ctx, const MDB_val *key, const MDB_val *val),
	       void *ctx);

/* Counters for `stats`.  Read from any thread; values are approximate
 * while writes run. */
struct store_stats {
	uint64_t commits;
	uint64_t ops_committed;
	uint64_t ops_failed;
	uint64_t commit_us_total;  /* time inside mdb_txn_commit */
	uint64_t commit_us_max;
	uint64_t map_bytes;
	uint64_t map_growths;
	uint64_t queue_ops;
	uint64_t entries[STORE_TABLES];
};
void store_stats_get(struct store *st, struct store_stats *out);

#endif
