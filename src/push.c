/*
 * push: outbox, subscribers, acknowledgements, caps.  See push.h.
 *
 * Stored forms (all integers big-endian, so keys sort numerically):
 *   outbox      seq(8) -> at(8) score(4, IEEE float) sid_len(1) sid
 *                         pid_len(1) pid
 *   pushed      sid NUL pid -> seq(8)
 *   push_day    day(4) sid -> count(4)
 *   subscriber  name -> acknowledged seq(8)
 *   meta        "push_next_seq" -> seq(8)
 * The day is counted in the platform's time zone (UTC+8 by default), so
 * the daily cap resets at midnight for the students.
 */
#include "push.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "record.h"
#include "store.h"

/* Offers per store write; a batch is one allocation of ~100 KiB. */
#define PUSH_BATCH_MAX 1024
/* Pushes per notification: one notification stays under ~32 KiB. */
#define PUSH_NOTE_MAX 256
/* A subscriber is sent more only with this much room in its output. */
#define PUSH_ROOM_MIN (64u << 10)
#define PUSH_SID_MAX 32
#define PUSH_PID_MAX RECORD_ID_BYTES_MAX

static const char push_seq_key[] = "push_next_seq";

struct push_offer_rec {
	float score;
	uint8_t sid_len;
	uint8_t pid_len;
	char sid[PUSH_SID_MAX];
	char pid[PUSH_PID_MAX];
};

struct push_batch {
	struct store_op op;
	struct push *p;
	int64_t at;
	uint32_t n;
	uint32_t recorded;
	uint32_t duplicates;
	uint32_t capped;
	uint64_t last_seq;
	struct push_offer_rec offers[PUSH_BATCH_MAX];
};

struct push_sub;

struct push_worker {
	struct rpc_task task;
	struct push *p;
	struct rpc_worker *w;
	atomic_bool queued;
	struct push_sub *subs;
};

struct push_sub {
	struct push_sub *next, *prev;
	struct push_worker *pw;
	struct rpc_conn *conn;
	char name[65];
	size_t name_len;          /* 0: an unnamed subscriber */
	uint64_t next_seq;        /* the next seq this subscriber needs */
	uint64_t acked;
	bool pumping;
};

/* A durable ack of a named subscriber. */
struct push_ack {
	struct store_op op;
	struct rpc_task task;
	struct rpc_call call;
	char name[65];
	size_t name_len;
	uint64_t seq;
	int status;
};

struct push_compact {
	struct store_op op;
	struct push *p;
	int64_t now;
	uint64_t removed;
	int status;
	bool done;
};

struct push {
	struct push_config cfg;
	struct store *store;
	struct rpc_server *srv;
	struct push_worker *workers;
	unsigned workers_len;
	pthread_mutex_t lock;       /* guards cur and inflight */
	pthread_cond_t idle;        /* inflight dropped to 0 */
	struct push_batch *cur;
	unsigned inflight;          /* batches submitted, not completed */
	atomic_uint_fast64_t newest; /* newest durable seq */
	atomic_uint_fast64_t offered, recorded, duplicates, capped;
	atomic_uint_fast64_t delivered, acks, lost, compacted;
	pthread_t maint;
	bool maint_started;
	pthread_mutex_t mlock;      /* guards stopping and compaction */
	pthread_cond_t mcond;
	bool stopping;
	struct push_compact compact;
};

void push_config_default(struct push_config *cfg)
{
	cfg->score_min = 0.6;
	cfg->rank_max = 10;
	cfg->daily_cap = 5;
	cfg->utc_offset_s = 8 * 3600;
	cfg->retention_s = 7 * 86400;
	cfg->retention_max_s = 30 * 86400;
	cfg->compact_interval_s = 60;
}

static void be_put(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t be_get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* --- recording (writer thread) --- */

static int push_read_next(struct store_wtxn *txn, uint64_t *next)
{
	MDB_val v;
	int rc = store_wtxn_get(txn, STORE_META, push_seq_key,
				sizeof(push_seq_key) - 1, &v);

	*next = 1;
	if (rc == -ENOENT)
		return 0;
	if (rc == 0 && v.mv_size == 8)
		*next = be_get(v.mv_data, 8);
	return rc;
}

/* Records one offer unless it is a duplicate or over the cap. */
static int push_record(struct store_wtxn *txn, struct push_batch *b,
		       const struct push_offer_rec *o, uint32_t day,
		       uint64_t *next)
{
	uint8_t pair[PUSH_SID_MAX + 1 + PUSH_PID_MAX];
	uint8_t dkey[4 + PUSH_SID_MAX];
	uint8_t val[8 + 8 + 4 + 2 + PUSH_SID_MAX + PUSH_PID_MAX];
	uint8_t seqb[8], cnt[4];
	size_t plen = (size_t)o->sid_len + 1 + o->pid_len;
	uint32_t count = 0;
	uint32_t fbits;
	MDB_val v;
	int rc;

	memcpy(pair, o->sid, o->sid_len);
	pair[o->sid_len] = 0;
	memcpy(pair + o->sid_len + 1, o->pid, o->pid_len);
	rc = store_wtxn_get(txn, STORE_PUSHED, pair, plen, &v);
	if (rc == 0) {
		b->duplicates++;
		return 0;
	}
	if (rc != -ENOENT)
		return rc;
	be_put(dkey, day, 4);
	memcpy(dkey + 4, o->sid, o->sid_len);
	rc = store_wtxn_get(txn, STORE_PUSH_DAY, dkey, 4u + o->sid_len, &v);
	if (rc == 0 && v.mv_size == 4)
		count = (uint32_t)be_get(v.mv_data, 4);
	else if (rc != -ENOENT)
		return rc;
	if (count >= b->p->cfg.daily_cap) {
		b->capped++;
		return 0;
	}
	be_put(seqb, *next, 8);
	be_put(val, (uint64_t)b->at, 8);
	memcpy(&fbits, &o->score, 4);
	be_put(val + 8, fbits, 4);
	val[12] = o->sid_len;
	memcpy(val + 13, o->sid, o->sid_len);
	val[13 + o->sid_len] = o->pid_len;
	memcpy(val + 14 + o->sid_len, o->pid, o->pid_len);
	be_put(cnt, count + 1, 4);
	rc = store_wtxn_put(txn, STORE_OUTBOX, seqb, 8, val,
			    14u + o->sid_len + o->pid_len);
	if (!rc)
		rc = store_wtxn_put(txn, STORE_PUSHED, pair, plen, seqb, 8);
	if (!rc)
		rc = store_wtxn_put(txn, STORE_PUSH_DAY, dkey,
				    4u + o->sid_len, cnt, 4);
	if (!rc) {
		b->last_seq = (*next)++;
		b->recorded++;
	}
	return rc;
}

static int push_apply(struct store_wtxn *txn, struct store_op *op)
{
	struct push_batch *b = (struct push_batch *)op;
	uint32_t day = (uint32_t)((b->at + b->p->cfg.utc_offset_s) / 86400);
	uint8_t nb[8];
	uint64_t next;
	int rc;

	b->recorded = b->duplicates = b->capped = 0;
	rc = push_read_next(txn, &next);
	for (uint32_t i = 0; i < b->n && !rc; i++)
		rc = push_record(txn, b, &b->offers[i], day, &next);
	if (rc || b->recorded == 0)
		return rc;
	be_put(nb, next, 8);
	return store_wtxn_put(txn, STORE_META, push_seq_key,
			      sizeof(push_seq_key) - 1, nb, 8);
}

/* Tells every thread with subscribers that there is more to send. */
static void push_wake_all(struct push *p)
{
	for (unsigned i = 0; i < p->workers_len; i++) {
		struct push_worker *pw = &p->workers[i];

		if (!atomic_exchange(&pw->queued, true))
			rpc_worker_post(pw->w, &pw->task);
	}
}

static void push_complete(struct store_op *op, int status)
{
	struct push_batch *b = (struct push_batch *)op;
	struct push *p = b->p;

	if (status) {
		/* The offers are not recorded; the lists rebuilt at the next
		 * start-up or re-rank offer them again. */
		atomic_fetch_add(&p->lost, b->n);
		log_msg(LOG_WARN, "%u push offers not recorded: %s", b->n,
			strerror(-status));
	} else {
		atomic_fetch_add(&p->recorded, b->recorded);
		atomic_fetch_add(&p->duplicates, b->duplicates);
		atomic_fetch_add(&p->capped, b->capped);
		if (b->recorded) {
			atomic_store(&p->newest, b->last_seq);
			push_wake_all(p);
		}
	}
	free(b);
	pthread_mutex_lock(&p->lock);
	if (--p->inflight == 0)
		pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
}

static struct push_batch *push_batch_new(struct push *p)
{
	struct push_batch *b = malloc(sizeof(*b));

	if (!b)
		return NULL;
	memset(b, 0, offsetof(struct push_batch, offers));
	b->op.apply = push_apply;
	b->op.complete = push_complete;
	b->p = p;
	return b;
}

static void push_submit(struct push *p, struct push_batch *b)
{
	struct timespec pause = { 0, 1000000 };
	int rc;

	b->at = (int64_t)time(NULL);
	pthread_mutex_lock(&p->lock);
	p->inflight++;
	pthread_mutex_unlock(&p->lock);
	/* The match thread may wait for room; dropping would lose pushes
	 * until the next rebuild. */
	while ((rc = store_submit(p->store, &b->op)) == -EAGAIN)
		nanosleep(&pause, NULL);
	if (rc) {
		atomic_fetch_add(&p->lost, b->n);
		free(b);
		pthread_mutex_lock(&p->lock);
		if (--p->inflight == 0)
			pthread_cond_broadcast(&p->idle);
		pthread_mutex_unlock(&p->lock);
	}
}

void push_offer(struct push *p, const char *student_id, size_t sid_len,
		const char *posting_id, size_t pid_len, double score,
		unsigned rank)
{
	struct push_batch *full = NULL;
	struct push_offer_rec *o;

	if (!p || score < p->cfg.score_min || rank >= p->cfg.rank_max ||
	    sid_len == 0 || sid_len > PUSH_SID_MAX || pid_len == 0 ||
	    pid_len > PUSH_PID_MAX)
		return;
	atomic_fetch_add(&p->offered, 1);
	pthread_mutex_lock(&p->lock);
	if (!p->cur)
		p->cur = push_batch_new(p);
	if (p->cur) {
		o = &p->cur->offers[p->cur->n++];
		o->score = (float)score;
		o->sid_len = (uint8_t)sid_len;
		o->pid_len = (uint8_t)pid_len;
		memcpy(o->sid, student_id, sid_len);
		memcpy(o->pid, posting_id, pid_len);
		if (p->cur->n == PUSH_BATCH_MAX) {
			full = p->cur;
			p->cur = NULL;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (full)
		push_submit(p, full);
}

void push_flush(struct push *p)
{
	struct push_batch *b;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	b = p->cur;
	p->cur = NULL;
	pthread_mutex_unlock(&p->lock);
	if (b)
		push_submit(p, b);
}

/* --- delivery (network threads) --- */

struct push_entry {
	uint64_t seq;
	int64_t at;
	float score;
	uint8_t sid_len, pid_len;
	const char *sid, *pid;
};

struct push_chunk {
	struct push_entry e[PUSH_NOTE_MAX];
	unsigned n;
};

static int push_collect(void *ctx, const MDB_val *key, const MDB_val *val)
{
	struct push_chunk *ch = ctx;
	const uint8_t *v = val->mv_data;
	struct push_entry *e = &ch->e[ch->n];
	uint32_t fbits;

	if (key->mv_size != 8 || val->mv_size < 14)
		return 0;
	e->seq = be_get(key->mv_data, 8);
	e->at = (int64_t)be_get(v, 8);
	fbits = (uint32_t)be_get(v + 8, 4);
	memcpy(&e->score, &fbits, 4);
	e->sid_len = v[12];
	e->sid = (const char *)v + 13;
	e->pid_len = v[13 + e->sid_len];
	e->pid = (const char *)v + 14 + e->sid_len;
	ch->n++;
	return 0;
}

/* True when the stored posting is still open: not closed, not expired. */
static bool push_posting_open(struct store_reader *rd, const char *pid,
			      size_t len, int64_t now)
{
	msgpack_unpacked u;
	size_t off = 0;
	bool open = false;
	MDB_val v;

	if (store_get(rd, STORE_POSTING, pid, len, &v))
		return false;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, v.mv_data, v.mv_size, &off) ==
	    MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP) {
		open = true;
		for (uint32_t i = 0; i < u.data.via.map.size; i++) {
			const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
			const msgpack_object_str *k = &kv->key.via.str;

			if (k->size == 6 && !memcmp(k->ptr, "closed", 6) &&
			    kv->val.type == MSGPACK_OBJECT_BOOLEAN &&
			    kv->val.via.boolean)
				open = false;
			if (k->size == 10 && !memcmp(k->ptr, "expires_at", 10) &&
			    kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
			    (int64_t)kv->val.via.u64 <= now)
				open = false;
		}
	}
	msgpack_unpacked_destroy(&u);
	return open;
}

static void push_pack_entry(msgpack_packer *pk, const struct push_entry *e,
			    bool open)
{
	msgpack_pack_map(pk, open ? 5 : 6);
	rpc_pack_str(pk, "seq");
	msgpack_pack_uint64(pk, e->seq);
	rpc_pack_str(pk, "student_id");
	msgpack_pack_str_with_body(pk, e->sid, e->sid_len);
	rpc_pack_str(pk, "posting_id");
	msgpack_pack_str_with_body(pk, e->pid, e->pid_len);
	rpc_pack_str(pk, "score");
	msgpack_pack_double(pk, e->score);
	rpc_pack_str(pk, "at");
	msgpack_pack_int64(pk, e->at);
	if (!open) {
		rpc_pack_str(pk, "open");
		msgpack_pack_false(pk);
	}
}

/* Sends one notification of up to PUSH_NOTE_MAX pushes from next_seq.
 * Returns the number sent, 0 when the outbox has nothing from there. */
static unsigned push_send_chunk(struct push_sub *sub, struct store_reader *rd)
{
	static _Thread_local struct push_chunk ch;
	msgpack_packer *pk = &sub->conn->pk;
	int64_t now = (int64_t)time(NULL);
	uint8_t after[8];

	ch.n = 0;
	be_put(after, sub->next_seq - 1, 8);
	if (store_scan(rd, STORE_OUTBOX, after, 8, PUSH_NOTE_MAX,
		       push_collect, &ch) <= 0 || ch.n == 0)
		return 0;
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint8(pk, 2);
	rpc_pack_str(pk, "push");
	msgpack_pack_array(pk, ch.n);
	for (unsigned i = 0; i < ch.n; i++)
		push_pack_entry(pk, &ch.e[i], push_posting_open(rd,
				ch.e[i].pid, ch.e[i].pid_len, now));
	sub->next_seq = ch.e[ch.n - 1].seq + 1;
	atomic_fetch_add(&sub->pw->p->delivered, ch.n);
	return ch.n;
}

/* Sends what the subscriber is owed while its output has room. */
static void push_pump(struct push_sub *sub)
{
	struct rpc_worker *w = sub->pw->w;
	uint64_t newest = atomic_load(&sub->pw->p->newest);
	bool sent = false;

	if (sub->pumping || sub->next_seq > newest || sub->conn->gone)
		return;
	sub->pumping = true;
	if (store_read_begin(w->reader) == 0) {
		while (sub->next_seq <= newest &&
		       w->conn_room(sub->conn) >= PUSH_ROOM_MIN) {
			if (push_send_chunk(sub, w->reader) == 0) {
				/* compacted or not yet visible: skip on */
				sub->next_seq = newest + 1;
				break;
			}
			sent = true;
		}
		store_read_end(w->reader);
	}
	sub->pumping = false;
	if (sent)
		w->conn_flush(sub->conn);
}

static void push_worker_run(struct rpc_task *task)
{
	struct push_worker *pw = (struct push_worker *)task;
	struct push_sub *sub, *next;

	atomic_store(&pw->queued, false);
	for (sub = pw->subs; sub; sub = next) {
		next = sub->next;
		push_pump(sub);
	}
}

static void push_sub_closed(struct rpc_conn *conn)
{
	struct push_sub *sub = conn->sub;

	if (sub->prev)
		sub->prev->next = sub->next;
	else
		sub->pw->subs = sub->next;
	if (sub->next)
		sub->next->prev = sub->prev;
	conn->sub = NULL;
	free(sub);
}

static void push_sub_writable(struct rpc_conn *conn)
{
	push_pump(conn->sub);
}

void push_attach(struct push *p, struct rpc_server *srv)
{
	p->srv = srv;
	srv->push = p;
	srv->sub_closed = push_sub_closed;
	srv->sub_writable = push_sub_writable;
}

int push_attach_workers(struct push *p)
{
	p->workers = calloc(p->srv->workers_len, sizeof(*p->workers));
	if (!p->workers)
		return -ENOMEM;
	p->workers_len = p->srv->workers_len;
	for (unsigned i = 0; i < p->workers_len; i++) {
		p->workers[i].task.run = push_worker_run;
		p->workers[i].p = p;
		p->workers[i].w = p->srv->workers[i];
	}
	return 0;
}

/* --- methods --- */

/* Reads an unsigned seq argument; integral floats are accepted. */
static int push_seq_arg(struct rpc_call *call, const char *name,
			uint64_t *out, bool *given)
{
	const msgpack_object *o = rpc_arg(call, name);

	*given = o != NULL;
	if (!o)
		return 0;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		*out = o->via.u64;
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type ==
	    MSGPACK_OBJECT_FLOAT32) {
		double d = o->via.f64;

		if (isfinite(d) && d >= 0 && d == floor(d) && d < 1.8e19) {
			*out = (uint64_t)d;
			return 0;
		}
	}
	rpc_reply_fail(call, PROTO_INVALID_ARGUMENT, name,
		       "%s must be an unsigned integer", name);
	return -1;
}

static int push_name_arg(struct rpc_call *call, struct push_sub *sub)
{
	const msgpack_object *o = rpc_arg(call, "name");
	char id[RECORD_ID_BYTES_MAX + 1];
	struct proto_error err;
	size_t len;

	sub->name_len = 0;
	if (!o)
		return 0;
	if (record_key(call->args, "name", id, &len, &err)) {
		rpc_reply_error(call, &err);
		return -1;
	}
	memcpy(sub->name, id, len + 1);
	sub->name_len = len;
	return 0;
}

/* The acknowledged seq of a named subscriber, 0 when it has none. */
static uint64_t push_acked_of(struct rpc_worker *w, const char *name,
			      size_t len)
{
	uint64_t acked = 0;
	MDB_val v;

	if (store_read_begin(w->reader))
		return 0;
	if (store_get(w->reader, STORE_SUBSCRIBER, name, len, &v) == 0 &&
	    v.mv_size == 8)
		acked = be_get(v.mv_data, 8);
	store_read_end(w->reader);
	return acked;
}

static void push_subscribe(struct rpc_call *call)
{
	struct rpc_worker *w = call->conn->worker;
	struct push *p = w->server->push;
	struct push_sub *sub = call->conn->sub;
	uint64_t newest = atomic_load(&p->newest);
	uint64_t from = 0;
	bool given;
	msgpack_packer *pk;

	if (push_seq_arg(call, "from_seq", &from, &given))
		return;
	if (!sub) {
		sub = calloc(1, sizeof(*sub));
		if (!sub)
			return rpc_reply_fail(call, PROTO_UNAVAILABLE, NULL,
					      "out of memory");
		sub->pw = &p->workers[w->index];
		sub->conn = call->conn;
		sub->next = sub->pw->subs;
		if (sub->next)
			sub->next->prev = sub;
		sub->pw->subs = sub;
		call->conn->sub = sub;
	}
	if (push_name_arg(call, sub))
		return;
	sub->acked = sub->name_len ? push_acked_of(w, sub->name,
						   sub->name_len) : 0;
	if (!given)
		from = sub->name_len ? sub->acked : newest;
	sub->next_seq = from + 1;
	pk = rpc_reply(call);
	msgpack_pack_map(pk, 1);
	rpc_pack_str(pk, "seq");
	msgpack_pack_uint64(pk, newest);
	rpc_reply_end(call);
	/* The backlog follows the reply, on this same pass. */
	push_pump(sub);
}

static int push_ack_apply(struct store_wtxn *txn, struct store_op *op)
{
	struct push_ack *a = (struct push_ack *)op;
	uint8_t v[8];
	MDB_val old;

	/* Acks only move forward, whatever order they commit in. */
	if (store_wtxn_get(txn, STORE_SUBSCRIBER, a->name, a->name_len,
			   &old) == 0 && old.mv_size == 8 &&
	    be_get(old.mv_data, 8) >= a->seq)
		return 0;
	be_put(v, a->seq, 8);
	return store_wtxn_put(txn, STORE_SUBSCRIBER, a->name, a->name_len,
			      v, 8);
}

static void push_ack_complete(struct store_op *op, int status)
{
	struct push_ack *a = (struct push_ack *)op;

	a->status = status;
	rpc_worker_post(a->call.conn->worker, &a->task);
}

static void push_ack_answer(struct rpc_task *task)
{
	struct push_ack *a = (struct push_ack *)((char *)task -
		offsetof(struct push_ack, task));
	msgpack_packer *pk;

	if (rpc_call_gone(&a->call)) {
		/* the ack is stored; nobody to tell */
	} else if (a->status) {
		rpc_reply_fail(&a->call, PROTO_UNAVAILABLE, NULL,
			       "the ack could not be stored: %s",
			       strerror(-a->status));
	} else {
		pk = rpc_reply(&a->call);
		msgpack_pack_map(pk, 1);
		rpc_pack_str(pk, "acked");
		msgpack_pack_uint64(pk, a->seq);
		rpc_reply_end(&a->call);
	}
	rpc_undefer(&a->call);
	free(a);
}

static void push_ack(struct rpc_call *call)
{
	struct push *p = call->conn->worker->server->push;
	struct push_sub *sub = call->conn->sub;
	struct push_ack *a;
	uint64_t seq = 0;
	bool given;
	msgpack_packer *pk;

	if (push_seq_arg(call, "seq", &seq, &given))
		return;
	if (!given)
		return rpc_reply_fail(call, PROTO_INVALID_ARGUMENT, "seq",
				      "seq is required");
	if (!sub)
		return rpc_reply_fail(call, PROTO_INVALID_ARGUMENT, NULL,
				      "this connection has not subscribed");
	if (seq > atomic_load(&p->newest))
		return rpc_reply_fail(call, PROTO_INVALID_ARGUMENT, "seq",
				      "seq %llu has not been pushed yet",
				      (unsigned long long)seq);
	if (seq > sub->acked) {
		sub->acked = seq;
		atomic_fetch_add(&p->acks, 1);
	}
	if (sub->name_len == 0) {
		pk = rpc_reply(call);
		msgpack_pack_map(pk, 1);
		rpc_pack_str(pk, "acked");
		msgpack_pack_uint64(pk, sub->acked);
		return rpc_reply_end(call);
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return rpc_reply_fail(call, PROTO_UNAVAILABLE, NULL,
				      "out of memory");
	a->op.apply = push_ack_apply;
	a->op.complete = push_ack_complete;
	a->task.run = push_ack_answer;
	a->call = *call;
	memcpy(a->name, sub->name, sub->name_len);
	a->name_len = sub->name_len;
	a->seq = sub->acked;
	rpc_defer(&a->call);
	if (store_submit(p->store, &a->op)) {
		call->conn->deferred--;
		free(a);
		rpc_reply_fail(call, PROTO_UNAVAILABLE, NULL,
			       "too many writes queued; retry later");
	}
}

const struct rpc_method push_methods[] = {
	{ "push.ack", push_ack, 0 },
	{ "push.subscribe", push_subscribe, 0 },
};
const unsigned push_methods_len = sizeof(push_methods) /
				  sizeof(push_methods[0]);

/* --- compaction (maintenance thread, applied by the writer) --- */

/* Deletions per compaction pass, so one pass stays a short commit. */
#define PUSH_COMPACT_MAX 4096

struct push_doomed {
	uint8_t keys[PUSH_COMPACT_MAX][4 + PUSH_SID_MAX];
	uint8_t lens[PUSH_COMPACT_MAX];
	unsigned n;
	uint64_t acked_min;   /* entries up to here are acknowledged */
	int64_t acked_before; /* acknowledged entries older are deleted */
	int64_t any_before;   /* any entry older is deleted */
	uint32_t day_min;     /* push_day rows before this day go */
};

static int push_min_acked(void *ctx, const MDB_val *key, const MDB_val *val)
{
	struct push_doomed *d = ctx;
	uint64_t acked = val->mv_size == 8 ? be_get(val->mv_data, 8) : 0;

	(void)key;
	if (acked < d->acked_min)
		d->acked_min = acked;
	return 0;
}

static int push_old_entry(void *ctx, const MDB_val *key, const MDB_val *val)
{
	struct push_doomed *d = ctx;
	uint64_t seq = be_get(key->mv_data, 8);
	int64_t at = val->mv_size >= 8 ? (int64_t)be_get(val->mv_data, 8)
				       : 0;

	/* Seqs grow with time, so the first entry to keep ends the pass. */
	if (!(at < d->any_before || (seq <= d->acked_min &&
				     at < d->acked_before)))
		return 1;
	memcpy(d->keys[d->n], key->mv_data, 8);
	d->lens[d->n++] = 8;
	return d->n == PUSH_COMPACT_MAX;
}

static int push_old_day(void *ctx, const MDB_val *key, const MDB_val *val)
{
	struct push_doomed *d = ctx;

	(void)val;
	if (key->mv_size < 4 || be_get(key->mv_data, 4) >= d->day_min ||
	    key->mv_size > sizeof(d->keys[0]))
		return 1;
	memcpy(d->keys[d->n], key->mv_data, key->mv_size);
	d->lens[d->n++] = (uint8_t)key->mv_size;
	return d->n == PUSH_COMPACT_MAX;
}

static int push_delete(struct store_wtxn *txn, enum store_table table,
		       struct push_doomed *d)
{
	int rc = 0;

	for (unsigned i = 0; i < d->n && !rc; i++)
		rc = store_wtxn_del(txn, table, d->keys[i], d->lens[i]);
	d->n = 0;
	return rc == -ENOENT ? 0 : rc;
}

/*
 * Deletes outbox entries that every named subscriber acknowledged and
 * that are older than the retention, entries older than the longest
 * retention whatever their state, and daily counts of past days.
 */
static int push_compact_apply(struct store_wtxn *txn, struct store_op *op)
{
	static struct push_doomed d;
	struct push_compact *c = (struct push_compact *)op;
	const struct push_config *cfg = &c->p->cfg;
	int rc;

	d.n = 0;
	d.acked_min = UINT64_MAX;
	d.acked_before = c->now - (int64_t)cfg->retention_s;
	d.any_before = c->now - (int64_t)cfg->retention_max_s;
	d.day_min = (uint32_t)((c->now + cfg->utc_offset_s) / 86400);
	c->removed = 0;
	rc = store_wtxn_scan(txn, STORE_SUBSCRIBER, NULL, 0, SIZE_MAX,
			     push_min_acked, &d);
	if (rc >= 0)
		rc = store_wtxn_scan(txn, STORE_OUTBOX, NULL, 0, SIZE_MAX,
				     push_old_entry, &d);
	c->removed = d.n;
	if (rc >= 0)
		rc = push_delete(txn, STORE_OUTBOX, &d);
	if (rc >= 0)
		rc = store_wtxn_scan(txn, STORE_PUSH_DAY, NULL, 0, SIZE_MAX,
				     push_old_day, &d);
	if (rc >= 0)
		rc = push_delete(txn, STORE_PUSH_DAY, &d);
	return rc < 0 ? rc : 0;
}

static void push_compact_complete(struct store_op *op, int status)
{
	struct push_compact *c = (struct push_compact *)op;

	pthread_mutex_lock(&c->p->mlock);
	c->status = status;
	c->done = true;
	pthread_cond_broadcast(&c->p->mcond);
	pthread_mutex_unlock(&c->p->mlock);
}

static void *push_maint_main(void *arg)
{
	struct push *p = arg;
	struct timespec until;

	pthread_mutex_lock(&p->mlock);
	while (!p->stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += p->cfg.compact_interval_s;
		pthread_cond_timedwait(&p->mcond, &p->mlock, &until);
		if (p->stopping)
			break;
		p->compact.done = false;
		p->compact.now = (int64_t)time(NULL);
		if (store_submit(p->store, &p->compact.op) != 0)
			continue;
		while (!p->compact.done)
			pthread_cond_wait(&p->mcond, &p->mlock);
		atomic_fetch_add(&p->compacted, p->compact.removed);
	}
	pthread_mutex_unlock(&p->mlock);
	return NULL;
}

/* --- life --- */

static int push_load_newest(struct push *p)
{
	struct store_reader *rd;
	MDB_val v;
	int rc = store_reader_new(p->store, &rd);

	if (rc)
		return rc;
	rc = store_read_begin(rd);
	if (rc == 0) {
		if (store_get(rd, STORE_META, push_seq_key,
			      sizeof(push_seq_key) - 1, &v) == 0 &&
		    v.mv_size == 8)
			atomic_store(&p->newest, be_get(v.mv_data, 8) - 1);
		store_read_end(rd);
	}
	store_reader_free(rd);
	return rc;
}

int push_new(struct push **out, struct store *store,
	     const struct push_config *cfg)
{
	struct push *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	p->store = store;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	pthread_mutex_init(&p->mlock, NULL);
	pthread_cond_init(&p->mcond, NULL);
	p->compact.op.apply = push_compact_apply;
	p->compact.op.complete = push_compact_complete;
	p->compact.p = p;
	rc = push_load_newest(p);
	if (rc) {
		push_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int push_start(struct push *p)
{
	int rc = -pthread_create(&p->maint, NULL, push_maint_main, p);

	p->maint_started = rc == 0;
	return rc;
}

void push_stop(struct push *p)
{
	if (!p)
		return;
	push_flush(p);
	/* Completions wake the network threads: wait for them while those
	 * threads' structures still exist. */
	pthread_mutex_lock(&p->lock);
	while (p->inflight)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
	pthread_mutex_lock(&p->mlock);
	p->stopping = true;
	pthread_cond_broadcast(&p->mcond);
	pthread_mutex_unlock(&p->mlock);
	if (p->maint_started)
		pthread_join(p->maint, NULL);
	p->maint_started = false;
}

void push_free(struct push *p)
{
	if (!p)
		return;
	free(p->cur);
	free(p->workers);
	pthread_cond_destroy(&p->mcond);
	pthread_mutex_destroy(&p->mlock);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static void push_kv(msgpack_packer *pk, const char *k, uint64_t v)
{
	rpc_pack_str(pk, k);
	msgpack_pack_uint64(pk, v);
}

/* Named subscribers listed in `stats`; more are counted, not listed. */
#define PUSH_STATS_SUBS_MAX 100

struct push_subs_view {
	msgpack_sbuffer body;
	msgpack_packer pk;
	uint64_t newest;
	uint32_t n;
};

static int push_stats_sub(void *ctx, const MDB_val *key, const MDB_val *val)
{
	struct push_subs_view *v = ctx;
	uint64_t acked = val->mv_size == 8 ? be_get(val->mv_data, 8) : 0;

	msgpack_pack_str_with_body(&v->pk, key->mv_data, key->mv_size);
	msgpack_pack_map(&v->pk, 2);
	push_kv(&v->pk, "acked", acked);
	push_kv(&v->pk, "lag", v->newest > acked ? v->newest - acked : 0);
	v->n++;
	return 0;
}

void push_stats_pack(struct push *p, struct store_reader *rd,
		     msgpack_packer *pk)
{
	struct push_subs_view v = { .newest = atomic_load(&p->newest) };

	msgpack_sbuffer_init(&v.body);
	msgpack_packer_init(&v.pk, &v.body, msgpack_sbuffer_write);
	if (store_read_begin(rd) == 0) {
		store_scan(rd, STORE_SUBSCRIBER, NULL, 0, PUSH_STATS_SUBS_MAX,
			   push_stats_sub, &v);
		store_read_end(rd);
	}
	msgpack_pack_map(pk, 10);
	push_kv(pk, "newest_seq", v.newest);
	push_kv(pk, "offered", atomic_load(&p->offered));
	push_kv(pk, "recorded", atomic_load(&p->recorded));
	push_kv(pk, "duplicates", atomic_load(&p->duplicates));
	push_kv(pk, "capped", atomic_load(&p->capped));
	push_kv(pk, "delivered", atomic_load(&p->delivered));
	push_kv(pk, "acknowledged", atomic_load(&p->acks));
	push_kv(pk, "lost_offers", atomic_load(&p->lost));
	push_kv(pk, "compacted", atomic_load(&p->compacted));
	rpc_pack_str(pk, "subscribers");
	msgpack_pack_map(pk, v.n);
	rpc_pack_raw(pk, v.body.data, v.body.size);
	msgpack_sbuffer_destroy(&v.body);
}
