/*
 * store: LMDB environment, tables, group commit.  See store.h for the
 * contract; this file holds the writer thread and the map-growth protocol.
 *
 * Group commit falls out of the queue: while the writer is inside one
 * commit (an fsync, a few hundred microseconds to milliseconds), new ops
 * pile up in the queue, and the next loop takes them all into one
 * transaction.  Under load one fsync covers many writes; when idle a write
 * pays one fsync of its own.
 *
 * Map growth: LMDB lets mdb_env_set_mapsize() run only while this process
 * has no active transaction.  Readers therefore hold resize_lock (shared)
 * exactly while their snapshot is open; the writer takes it exclusively
 * around the resize, with writer preference so a stream of readers cannot
 * starve it.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *const store_table_names[STORE_TABLES] = {
	"meta", "student", "resume", "company", "posting",
	"outbox", "pushed", "push_day", "subscriber",
};

struct store {
	MDB_env *env;
	MDB_dbi dbi[STORE_TABLES];
	struct store_config cfg;
	size_t map_bytes;
	pthread_rwlock_t resize_lock;
	pthread_t writer;
	pthread_mutex_t lock;      /* guards the queue and closing */
	pthread_cond_t wake;
	struct store_op *head;
	struct store_op *tail;
	uint32_t queue_ops;
	bool closing;
	bool writer_started;
	struct store_stats stats;  /* written by the writer thread only */
};

struct store_wtxn {
	struct store *st;
	MDB_txn *txn;
	bool map_full;  /* a put hit MDB_MAP_FULL: grow and apply again */
};

struct store_reader {
	struct store *st;
	MDB_txn *txn;
	bool open;
};

void store_config_default(struct store_config *cfg)
{
	cfg->dir = "var/data";
	cfg->sync = true;
	cfg->map_bytes_initial = (size_t)1 << 30;
	cfg->map_bytes_max = (size_t)256 << 30;
	cfg->queue_ops_max = 65536;
	cfg->batch_ops_max = 4096;
}

/* The one place LMDB's codes become -errno. */
static int store_errno(int rc)
{
	if (rc == 0)
		return 0;
	if (rc == MDB_NOTFOUND)
		return -ENOENT;
	if (rc == MDB_MAP_FULL)
		return -ENOSPC;
	if (rc > 0)
		return -rc;
	return -EIO;
}

static uint64_t store_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int store_mkdir(const char *dir)
{
	char path[4096];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Opens every table and checks (or writes) the schema version. */
static int store_open_tables(struct store *st, char *errbuf, size_t len)
{
	char want[16];
	MDB_txn *txn;
	MDB_val key = { 14, "schema_version" };
	MDB_val val;
	int rc;

	rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc)
		goto fail;
	for (int i = 0; i < STORE_TABLES; i++) {
		rc = mdb_dbi_open(txn, store_table_names[i], MDB_CREATE,
				  &st->dbi[i]);
		if (rc)
			goto abort;
	}
	snprintf(want, sizeof(want), "%d", STORE_SCHEMA_VERSION);
	rc = mdb_get(txn, st->dbi[STORE_META], &key, &val);
	if (rc == MDB_NOTFOUND) {
		val.mv_size = strlen(want);
		val.mv_data = want;
		rc = mdb_put(txn, st->dbi[STORE_META], &key, &val, 0);
	} else if (rc == 0 && (val.mv_size != strlen(want) ||
			       memcmp(val.mv_data, want, val.mv_size))) {
		snprintf(errbuf, len, "%s holds schema version %.*s, this "
			 "build reads %s", st->cfg.dir, (int)val.mv_size,
			 (const char *)val.mv_data, want);
		mdb_txn_abort(txn);
		return -EPROTO;
	}
	if (rc)
		goto abort;
	return store_errno(mdb_txn_commit(txn));
abort:
	mdb_txn_abort(txn);
fail:
	snprintf(errbuf, len, "cannot open the tables in %s: %s",
		 st->cfg.dir, mdb_strerror(rc));
	return store_errno(rc);
}

static void *store_writer_main(void *arg);

static int store_env_open(struct store *st, char *errbuf, size_t len)
{
	unsigned flags = MDB_NOTLS | (st->cfg.sync ? 0 : MDB_NOSYNC);
	MDB_envinfo info;
	int dead;
	int rc;

	rc = mdb_env_create(&st->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(st->env, STORE_TABLES + 4);
	if (!rc)
		rc = mdb_env_set_mapsize(st->env, st->cfg.map_bytes_initial);
	if (!rc)
		rc = mdb_env_open(st->env, st->cfg.dir, flags, 0644);
	if (rc) {
		snprintf(errbuf, len, "cannot open LMDB in %s: %s",
			 st->cfg.dir, mdb_strerror(rc));
		return store_errno(rc);
	}
	/* Reader slots left by a process that died (kill -9) are freed. */
	mdb_reader_check(st->env, &dead);
	mdb_env_info(st->env, &info);
	st->map_bytes = info.me_mapsize;
	st->stats.map_bytes = st->map_bytes;
	return 0;
}

int store_open(struct store **out, const struct store_config *cfg,
	       char *errbuf, size_t errbuf_len)
{
	pthread_rwlockattr_t attr;
	struct store *st;
	int rc;

	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->cfg = *cfg;
	if (st->cfg.map_bytes_initial > st->cfg.map_bytes_max)
		st->cfg.map_bytes_initial = st->cfg.map_bytes_max;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->wake, NULL);
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
		PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&st->resize_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	rc = store_mkdir(cfg->dir);
	if (rc) {
		snprintf(errbuf, errbuf_len, "cannot create %s: %s", cfg->dir,
			 strerror(-rc));
		goto fail;
	}
	rc = store_env_open(st, errbuf, errbuf_len);
	if (!rc)
		rc = store_open_tables(st, errbuf, errbuf_len);
	if (!rc) {
		rc = -pthread_create(&st->writer, NULL, store_writer_main, st);
		st->writer_started = rc == 0;
	}
	if (rc)
		goto fail;
	*out = st;
	return 0;
fail:
	store_close(st);
	return rc;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	pthread_mutex_lock(&st->lock);
	st->closing = true;
	pthread_cond_signal(&st->wake);
	pthread_mutex_unlock(&st->lock);
	if (st->writer_started)
		pthread_join(st->writer, NULL);
	if (st->env) {
		mdb_env_sync(st->env, 1);
		mdb_env_close(st->env);
	}
	pthread_rwlock_destroy(&st->resize_lock);
	pthread_cond_destroy(&st->wake);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

int store_submit(struct store *st, struct store_op *op)
{
	int rc = 0;

	op->next = NULL;
	pthread_mutex_lock(&st->lock);
	if (st->closing) {
		rc = -ESHUTDOWN;
	} else if (st->queue_ops >= st->cfg.queue_ops_max) {
		rc = -EAGAIN;
	} else {
		if (st->tail)
			st->tail->next = op;
		else
			st->head = op;
		st->tail = op;
		st->queue_ops++;
		pthread_cond_signal(&st->wake);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Doubles the map, up to map_bytes_max.  Writer thread only. */
static int store_grow(struct store *st)
{
	size_t want = st->map_bytes * 2;
	int rc;

	if (st->map_bytes >= st->cfg.map_bytes_max)
		return -ENOSPC;
	if (want > st->cfg.map_bytes_max)
		want = st->cfg.map_bytes_max;
	pthread_rwlock_wrlock(&st->resize_lock);
	rc = mdb_env_set_mapsize(st->env, want);
	pthread_rwlock_unlock(&st->resize_lock);
	if (rc)
		return store_errno(rc);
	st->map_bytes = want;
	__atomic_store_n(&st->stats.map_bytes, want, __ATOMIC_RELAXED);
	__atomic_add_fetch(&st->stats.map_growths, 1, __ATOMIC_RELAXED);
	return 0;
}

/* Applies every op of the batch in one transaction and commits it. */
static int store_apply_batch(struct store *st, struct store_op *batch)
{
	struct store_wtxn wt = { .st = st };
	uint64_t t0;
	int rc;

	for (;;) {
		wt.map_full = false;
		rc = mdb_txn_begin(st->env, NULL, 0, &wt.txn);
		if (rc)
			return store_errno(rc);
		for (struct store_op *op = batch; op && !rc; op = op->next)
			rc = op->apply(&wt, op);
		if (rc) {
			mdb_txn_abort(wt.txn);
		} else {
			t0 = store_now_us();
			rc = mdb_txn_commit(wt.txn);
			wt.map_full = rc == MDB_MAP_FULL;
			rc = store_errno(rc);
			t0 = store_now_us() - t0;
			__atomic_add_fetch(&st->stats.commit_us_total, t0,
					   __ATOMIC_RELAXED);
			if (t0 > st->stats.commit_us_max)
				__atomic_store_n(&st->stats.commit_us_max, t0,
						 __ATOMIC_RELAXED);
		}
		/* Only a full map is worth growing; a full disk (ENOSPC
		 * from the commit's writes) fails the batch at once. */
		if (!wt.map_full || store_grow(st) != 0)
			return rc;
	}
}

/* Takes up to batch_ops_max ops off the queue; NULL when closing and
 * drained. */
static struct store_op *store_take(struct store *st)
{
	struct store_op *head, *last;
	uint32_t n = 1;

	pthread_mutex_lock(&st->lock);
	while (!st->head && !st->closing)
		pthread_cond_wait(&st->wake, &st->lock);
	head = st->head;
	if (head) {
		last = head;
		while (last->next && n < st->cfg.batch_ops_max) {
			last = last->next;
			n++;
		}
		st->head = last->next;
		if (!st->head)
			st->tail = NULL;
		last->next = NULL;
		st->queue_ops -= n;
	}
	pthread_mutex_unlock(&st->lock);
	return head;
}

static void *store_writer_main(void *arg)
{
	struct store *st = arg;
	struct store_op *batch;

	while ((batch = store_take(st)) != NULL) {
		uint64_t n = 0;
		int rc = store_apply_batch(st, batch);

		while (batch) {
			struct store_op *next = batch->next;

			batch->complete(batch, rc);
			batch = next;
			n++;
		}
		if (rc == 0) {
			__atomic_add_fetch(&st->stats.commits, 1,
					   __ATOMIC_RELAXED);
			__atomic_add_fetch(&st->stats.ops_committed, n,
					   __ATOMIC_RELAXED);
		} else {
			__atomic_add_fetch(&st->stats.ops_failed, n,
					   __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

int store_wtxn_get(struct store_wtxn *txn, enum store_table table,
		   const void *key, size_t key_len, MDB_val *val)
{
	MDB_val k = { key_len, (void *)key };

	return store_errno(mdb_get(txn->txn, txn->st->dbi[table], &k, val));
}

int store_wtxn_put(struct store_wtxn *txn, enum store_table table,
		   const void *key, size_t key_len, const void *val,
		   size_t val_len)
{
	MDB_val k = { key_len, (void *)key };
	MDB_val v = { val_len, (void *)val };
	int rc = mdb_put(txn->txn, txn->st->dbi[table], &k, &v, 0);

	if (rc == MDB_MAP_FULL)
		txn->map_full = true;
	return store_errno(rc);
}

int store_wtxn_del(struct store_wtxn *txn, enum store_table table,
		   const void *key, size_t key_len)
{
	MDB_val k = { key_len, (void *)key };

	return store_errno(mdb_del(txn->txn, txn->st->dbi[table], &k,
				   NULL));
}

int store_reader_new(struct store *st, struct store_reader **out)
{
	struct store_reader *rd = calloc(1, sizeof(*rd));

	if (!rd)
		return -ENOMEM;
	rd->st = st;
	*out = rd;
	return 0;
}

void store_reader_free(struct store_reader *rd)
{
	if (!rd)
		return;
	if (rd->txn)
		mdb_txn_abort(rd->txn);
	free(rd);
}

int store_read_begin(struct store_reader *rd)
{
	int rc;

	pthread_rwlock_rdlock(&rd->st->resize_lock);
	if (rd->txn)
		rc = mdb_txn_renew(rd->txn);
	else
		rc = mdb_txn_begin(rd->st->env, NULL, MDB_RDONLY, &rd->txn);
	if (rc) {
		pthread_rwlock_unlock(&rd->st->resize_lock);
		return store_errno(rc);
	}
	rd->open = true;
	return 0;
}

void store_read_end(struct store_reader *rd)
{
	if (!rd->open)
		return;
	mdb_txn_reset(rd->txn);
	rd->open = false;
	pthread_rwlock_unlock(&rd->st->resize_lock);
}

int store_get(struct store_reader *rd, enum store_table table,
	      const void *key, size_t key_len, MDB_val *val)
{
	MDB_val k = { key_len, (void *)key };

	return store_errno(mdb_get(rd->txn, rd->st->dbi[table], &k, val));
}

/* Visits up to limit entries after `after` with a cursor of txn. */
static int store_txn_scan(MDB_txn *txn, MDB_dbi dbi, const void *after,
			  size_t after_len, size_t limit,
			  int (*fn)(void *ctx, const MDB_val *key,
				    const MDB_val *val),
			  void *ctx)
{
	MDB_val k = { after_len, (void *)after };
	MDB_val v;
	MDB_cursor *cur;
	MDB_cursor_op op = after_len ? MDB_SET_RANGE : MDB_FIRST;
	int visited = 0;
	int rc;

	rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc)
		return store_errno(rc);
	while ((size_t)visited < limit) {
		rc = mdb_cursor_get(cur, &k, &v, op);
		if (rc)
			break;
		op = MDB_NEXT;
		/* SET_RANGE lands on `after` itself when it still exists. */
		if (after_len && k.mv_size == after_len &&
		    memcmp(k.mv_data, after, after_len) == 0)
			continue;
		visited++;
		if (fn(ctx, &k, &v))
			break;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return store_errno(rc);
	return visited;
}

int store_scan(struct store_reader *rd, enum store_table table,
	       const void *after, size_t after_len, size_t limit,
	       int (*fn)(void *ctx, const MDB_val *key, const MDB_val *val),
	       void *ctx)
{
	return store_txn_scan(rd->txn, rd->st->dbi[table], after, after_len,
			      limit, fn, ctx);
}

int store_wtxn_scan(struct store_wtxn *txn, enum store_table table,
		    const void *after, size_t after_len, size_t limit,
		    int (*fn)(void *ctx, const MDB_val *key,
			      const MDB_val *val),
		    void *ctx)
{
	return store_txn_scan(txn->txn, txn->st->dbi[table], after,
			      after_len, limit, fn, ctx);
}

void store_stats_get(struct store *st, struct store_stats *out)
{
	MDB_txn *txn;
	MDB_stat ms;

	out->commits = __atomic_load_n(&st->stats.commits, __ATOMIC_RELAXED);
	out->ops_committed = __atomic_load_n(&st->stats.ops_committed,
					     __ATOMIC_RELAXED);
	out->ops_failed = __atomic_load_n(&st->stats.ops_failed,
					  __ATOMIC_RELAXED);
	out->commit_us_total = __atomic_load_n(&st->stats.commit_us_total,
					       __ATOMIC_RELAXED);
	out->commit_us_max = __atomic_load_n(&st->stats.commit_us_max,
					     __ATOMIC_RELAXED);
	out->map_bytes = __atomic_load_n(&st->stats.map_bytes,
					 __ATOMIC_RELAXED);
	out->map_growths = __atomic_load_n(&st->stats.map_growths,
					   __ATOMIC_RELAXED);
	pthread_mutex_lock(&st->lock);
	out->queue_ops = st->queue_ops;
	pthread_mutex_unlock(&st->lock);
	memset(out->entries, 0, sizeof(out->entries));
	pthread_rwlock_rdlock(&st->resize_lock);
	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) == 0) {
		for (int i = 0; i < STORE_TABLES; i++) {
			if (mdb_stat(txn, st->dbi[i], &ms) == 0)
				out->entries[i] = ms.ms_entries;
		}
		mdb_txn_abort(txn);
	}
	pthread_rwlock_unlock(&st->resize_lock);
}
