/*
 * Unit tests for store: group commit through the writer thread, reads from
 * a reader snapshot, scan paging, map growth when a batch overflows the
 * map, a full map answered with -ENOSPC and nothing stored, and a schema
 * version mismatch refused at open.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "store.h"

struct put_op {
	struct store_op op;
	char key[32];
	size_t val_len;
	int status;
	bool done;
};

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;

static int put_apply(struct store_wtxn *txn, struct store_op *op)
{
	struct put_op *p = (struct put_op *)op;
	char val[8192];

	memset(val, 'v', sizeof(val));
	return store_wtxn_put(txn, STORE_STUDENT, p->key, strlen(p->key), val,
			      p->val_len);
}

static void put_complete(struct store_op *op, int status)
{
	struct put_op *p = (struct put_op *)op;

	pthread_mutex_lock(&done_lock);
	p->status = status;
	p->done = true;
	pthread_cond_broadcast(&done_cond);
	pthread_mutex_unlock(&done_lock);
}

static void wait_done(struct put_op *ops, int n)
{
	pthread_mutex_lock(&done_lock);
	for (int i = 0; i < n; i++) {
		while (!ops[i].done)
			pthread_cond_wait(&done_cond, &done_lock);
	}
	pthread_mutex_unlock(&done_lock);
}

static struct store *open_at(const char *dir, size_t map_max)
{
	struct store_config cfg;
	struct store *st = NULL;
	char err[256];
	int rc;

	store_config_default(&cfg);
	cfg.dir = dir;
	cfg.sync = false;
	cfg.map_bytes_initial = 64 << 10;
	cfg.map_bytes_max = map_max;
	rc = store_open(&st, &cfg, err, sizeof(err));
	if (rc)
		fprintf(stderr, "store_open: %s\n", err);
	return rc ? NULL : st;
}

static int count_one(void *ctx, const MDB_val *key, const MDB_val *val)
{
	(void)key;
	(void)val;
	(*(int *)ctx)++;
	return 0;
}

static void test_commit_read_scan_grow(const char *dir)
{
	enum { N = 300 };
	static struct put_op ops[N];
	struct store *st = open_at(dir, 64 << 20);
	struct store_reader *rd;
	struct store_stats ss;
	MDB_val v;
	int seen = 0;

	CHECK(st != NULL);
	if (!st)
		return;
	for (int i = 0; i < N; i++) {
		snprintf(ops[i].key, sizeof(ops[i].key), "k%04d", i);
		ops[i].val_len = 4000;
		ops[i].op.apply = put_apply;
		ops[i].op.complete = put_complete;
		CHECK_EQ_INT(store_submit(st, &ops[i].op), 0);
	}
	wait_done(ops, N);
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(ops[i].status, 0);
	store_stats_get(st, &ss);
	CHECK(ss.map_growths > 0);      /* 1.2 MB does not fit in 64 KiB */
	CHECK(ss.commits <= N);
	CHECK_EQ_INT(ss.entries[STORE_STUDENT], N);
	CHECK_EQ_INT(store_reader_new(st, &rd), 0);
	CHECK_EQ_INT(store_read_begin(rd), 0);
	CHECK_EQ_INT(store_get(rd, STORE_STUDENT, "k0007", 5, &v), 0);
	CHECK_EQ_INT(v.mv_size, 4000);
	CHECK_EQ_INT(store_get(rd, STORE_STUDENT, "nope", 4, &v), -ENOENT);
	CHECK_EQ_INT(store_scan(rd, STORE_STUDENT, "k0100", 5, 50, count_one,
				&seen), 50);
	CHECK_EQ_INT(seen, 50);
	seen = 0;
	CHECK_EQ_INT(store_scan(rd, STORE_STUDENT, "k0290", 5, 50, count_one,
				&seen), 9);
	store_read_end(rd);
	store_reader_free(rd);
	store_close(st);
}

static void test_full_map(const char *dir)
{
	enum { N = 40 };
	static struct put_op ops[N];
	struct store *st = open_at(dir, 256 << 10);
	struct store_stats ss;
	int failed = 0;

	CHECK(st != NULL);
	if (!st)
		return;
	for (int i = 0; i < N; i++) {
		snprintf(ops[i].key, sizeof(ops[i].key), "f%04d", i);
		ops[i].val_len = 8000;
		ops[i].op.apply = put_apply;
		ops[i].op.complete = put_complete;
		CHECK_EQ_INT(store_submit(st, &ops[i].op), 0);
		wait_done(&ops[i], 1);
		failed += ops[i].status != 0;
		if (ops[i].status)
			CHECK_EQ_INT(ops[i].status, -ENOSPC);
	}
	CHECK(failed > 0);
	store_stats_get(st, &ss);
	CHECK_EQ_INT(ss.entries[STORE_STUDENT], N - failed);
	store_close(st);
}

static void test_schema_mismatch(const char *dir)
{
	MDB_val key = { 14, "schema_version" };
	MDB_val val = { 2, "99" };
	struct store_config cfg;
	struct store *st;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	char err[256] = "";

	/* A store left by another schema version must not be opened. */
	st = open_at(dir, 1 << 20);
	CHECK(st != NULL);
	store_close(st);
	CHECK_EQ_INT(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	CHECK_EQ_INT(mdb_env_open(env, dir, 0, 0644), 0);
	CHECK_EQ_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
	CHECK_EQ_INT(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	CHECK_EQ_INT(mdb_put(txn, dbi, &key, &val, 0), 0);
	CHECK_EQ_INT(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	store_config_default(&cfg);
	cfg.dir = dir;
	st = NULL;
	CHECK_EQ_INT(store_open(&st, &cfg, err, sizeof(err)), -EPROTO);
	CHECK(st == NULL);
	CHECK(strstr(err, "schema version 99") != NULL);
}

static void test_shutdown_refuses(const char *dir)
{
	struct store *st = open_at(dir, 1 << 20);
	struct put_op op = { .val_len = 1 };

	CHECK(st != NULL);
	if (!st)
		return;
	snprintf(op.key, sizeof(op.key), "late");
	op.op.apply = put_apply;
	op.op.complete = put_complete;
	CHECK_EQ_INT(store_submit(st, &op.op), 0);
	store_close(st);   /* commits what was queued */
	CHECK(op.done);
	CHECK_EQ_INT(op.status, 0);
}

int main(void)
{
	char tmpl[] = "/tmp/matchd-test-store-XXXXXX";
	char dir[512];
	char cmd[600];

	if (!mkdtemp(tmpl))
		return 1;
	snprintf(dir, sizeof(dir), "%s/a", tmpl);
	test_commit_read_scan_grow(dir);
	snprintf(dir, sizeof(dir), "%s/b", tmpl);
	test_full_map(dir);
	snprintf(dir, sizeof(dir), "%s/c", tmpl);
	test_schema_mismatch(dir);
	snprintf(dir, sizeof(dir), "%s/d", tmpl);
	test_shutdown_refuses(dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpl);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpl);
	return check_exit("test_store");
}
