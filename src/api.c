/*
 * api: record methods.  See api.h.
 *
 * A write travels as one struct api_write: validated items are packed on
 * the network thread, apply() runs on the writer thread inside the group
 * commit (the checks that need other records happen there, so they see the
 * same snapshot the write lands in), complete() posts the write back to
 * its network thread, and api_write_answer() packs the reply there.  A
 * single put is a put_many of one item with a different reply.
 */
#include "api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "completeness.h"
#include "index.h"
#include "match.h"
#include "push.h"
#include "record.h"
#include "store.h"

enum api_write_type { API_PUT, API_PUT_MANY, API_DELETE, API_CLOSE };

struct api_item {
	uint32_t index;           /* position in the request's items */
	bool ok;
	bool created;
	struct proto_error err;   /* when !ok */
	struct record_out rec;
};

struct api_write {
	struct store_op op;
	struct rpc_task task;
	struct rpc_call call;
	struct api *api;
	enum api_write_type type;
	enum record_kind kind;
	int status;                 /* of the commit */
	/* put and put_many */
	struct api_item *items;
	uint32_t items_len;
	struct proto_error *bad;    /* items refused before storage */
	uint32_t *bad_index;
	uint32_t bad_len;
	struct completeness_result comp;
	bool has_comp;
	/* delete and close */
	char id[RECORD_ID_BYTES_MAX + 1];
	size_t id_len;
	bool found;
	bool changed;
	msgpack_sbuffer scratch;
};

static const enum store_table api_tables[RECORD_KINDS] = {
	[RECORD_STUDENT] = STORE_STUDENT,
	[RECORD_RESUME] = STORE_RESUME,
	[RECORD_COMPANY] = STORE_COMPANY,
	[RECORD_POSTING] = STORE_POSTING,
};

static struct api *api_of(const struct rpc_call *call)
{
	return call->conn->worker->server->app;
}

static const char *api_method_name(const struct rpc_call *call)
{
	return call->conn->worker->server->methods[call->method].name;
}

/* The record kind a method name starts with ("resume.put"). */
static enum record_kind api_kind_of(const struct rpc_call *call)
{
	const char *name = api_method_name(call);

	for (int k = 0; k < RECORD_KINDS; k++) {
		const char *kn = record_kind_name((enum record_kind)k);
		size_t len = strlen(kn);

		if (strncmp(name, kn, len) == 0 && name[len] == '.')
			return (enum record_kind)k;
	}
	return RECORD_POSTING;
}

static const char *api_key_field(enum record_kind kind)
{
	return kind == RECORD_RESUME ? "student_id" : "id";
}

static void api_pack_missing(msgpack_packer *pk, const struct api *api,
			     const struct completeness_result *res)
{
	size_t n = completeness_item_count(api->completeness);
	uint32_t count = 0;

	for (size_t i = 0; i < n; i++)
		count += (res->missing >> i) & 1u;
	msgpack_pack_array(pk, count);
	for (size_t i = 0; i < n; i++) {
		if (res->missing >> i & 1u)
			rpc_pack_str(pk, completeness_item_name(
					 api->completeness, i));
	}
}

/* Evaluates completeness from stored resume and student bytes. */
static void api_completeness(const struct api *api, const MDB_val *resume,
			     const MDB_val *student,
			     struct completeness_result *res)
{
	msgpack_unpacked r, s;
	size_t off = 0;
	bool have_s = false;

	msgpack_unpacked_init(&r);
	msgpack_unpacked_init(&s);
	res->percent = 0;
	res->missing = ~0u;
	if (msgpack_unpack_next(&r, resume->mv_data, resume->mv_size, &off) !=
	    MSGPACK_UNPACK_SUCCESS)
		goto out;
	off = 0;
	if (student && msgpack_unpack_next(&s, student->mv_data,
					   student->mv_size, &off) ==
			       MSGPACK_UNPACK_SUCCESS)
		have_s = true;
	completeness_eval(api->completeness, &r.data, have_s ? &s.data : NULL,
			  res);
out:
	msgpack_unpacked_destroy(&s);
	msgpack_unpacked_destroy(&r);
}

static void api_write_free(struct api_write *w)
{
	for (uint32_t i = 0; i < w->items_len; i++)
		record_out_destroy(&w->items[i].rec);
	free(w->items);
	free(w->bad);
	free(w->bad_index);
	msgpack_sbuffer_destroy(&w->scratch);
	free(w);
}

/* --- the writer thread side --- */

/* Stores one validated item, after checking the record it refers to. */
static int api_apply_item(struct store_wtxn *txn, struct api_write *w,
			  struct api_item *it)
{
	enum store_table table = api_tables[w->kind];
	struct record_out *rec = &it->rec;
	MDB_val ref = { 0, NULL };
	MDB_val old;
	int rc;

	it->ok = false;
	if (rec->has_ref) {
		rc = store_wtxn_get(txn, api_tables[rec->ref_kind],
				    rec->ref_id, rec->ref_id_len, &ref);
		if (rc == -ENOENT) {
			proto_fail(&it->err, PROTO_INVALID_ARGUMENT,
				   rec->ref_field, "no %s with id %s",
				   record_kind_name(rec->ref_kind),
				   rec->ref_id);
			return 0;
		}
		if (rc)
			return rc;
	}
	rc = store_wtxn_get(txn, table, rec->id, rec->id_len, &old);
	if (rc && rc != -ENOENT)
		return rc;
	it->created = rc == -ENOENT;
	if (!it->created && w->kind == RECORD_POSTING &&
	    record_posting_merge(rec, old.mv_data, old.mv_size) != 0) {
		proto_fail(&it->err, PROTO_INTERNAL, NULL,
			   "the stored posting %s cannot be read", rec->id);
		return 0;
	}
	if (w->type == API_PUT && w->kind == RECORD_RESUME) {
		MDB_val res = { rec->stored.size, rec->stored.data };

		api_completeness(w->api, &res, &ref, &w->comp);
		w->has_comp = true;
	}
	rc = store_wtxn_put(txn, table, rec->id, rec->id_len,
			    rec->stored.data, rec->stored.size);
	if (rc)
		return rc;
	it->ok = true;
	return 0;
}

static int api_apply_delete(struct store_wtxn *txn, struct api_write *w)
{
	int rc = store_wtxn_del(txn, api_tables[w->kind], w->id, w->id_len);

	w->found = rc == 0;
	if (rc && rc != -ENOENT)
		return rc;
	/* A student's resume goes with it. */
	if (w->kind == RECORD_STUDENT) {
		rc = store_wtxn_del(txn, STORE_RESUME, w->id, w->id_len);
		if (rc && rc != -ENOENT)
			return rc;
	}
	return 0;
}

static int api_apply_close(struct store_wtxn *txn, struct api_write *w)
{
	bool was_closed = false;
	MDB_val old;
	int rc;

	w->found = false;
	w->changed = false;
	rc = store_wtxn_get(txn, STORE_POSTING, w->id, w->id_len, &old);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	w->found = true;
	if (record_posting_close(old.mv_data, old.mv_size, &w->scratch,
				 &was_closed) != 0 || was_closed)
		return 0;
	w->changed = true;
	return store_wtxn_put(txn, STORE_POSTING, w->id, w->id_len,
			      w->scratch.data, w->scratch.size);
}

static int api_apply(struct store_wtxn *txn, struct store_op *op)
{
	struct api_write *w = (struct api_write *)op;
	int rc = 0;

	w->has_comp = false;
	switch (w->type) {
	case API_PUT:
	case API_PUT_MANY:
		for (uint32_t i = 0; i < w->items_len && !rc; i++)
			rc = api_apply_item(txn, w, &w->items[i]);
		return rc;
	case API_DELETE:
		return api_apply_delete(txn, w);
	case API_CLOSE:
		return api_apply_close(txn, w);
	}
	return -EINVAL;
}

/* Tells the match module about one committed record (NULL: deleted). */
static void api_tell_match(struct match *m, enum record_kind kind,
			   const char *id, size_t id_len, const void *stored,
			   size_t len)
{
	if (!m)
		return;
	/* A full queue makes the match thread reload from the store; the
	 * change itself is durable either way. */
	if (kind == RECORD_STUDENT)
		match_on_student(m, id, id_len, stored, len);
	else if (kind == RECORD_RESUME)
		match_on_resume(m, id, id_len, stored, len);
	else if (kind == RECORD_POSTING)
		match_on_posting(m, id, id_len, stored, len);
}

/* The search index's share of a committed posting write. */
static void api_tell_index(struct index *idx, const struct api_write *w)
{
	if (!idx || w->kind != RECORD_POSTING)
		return;
	if (w->type == API_DELETE && w->found) {
		index_remove(idx, w->id, w->id_len);
	} else if (w->type == API_CLOSE && w->changed) {
		index_put(idx, w->scratch.data, w->scratch.size);
	} else if (w->type == API_PUT || w->type == API_PUT_MANY) {
		for (uint32_t i = 0; i < w->items_len; i++) {
			const struct record_out *rec = &w->items[i].rec;

			if (w->items[i].ok)
				index_put(idx, rec->stored.data,
					  rec->stored.size);
		}
	}
}

/*
 * After the commit, on the writer thread: brings the in-memory views up
 * to date before the reply is posted, so every answer given after a
 * write's reply sees it (match lists follow within the match thread's
 * delay, but closed and deleted postings are hidden at once).
 */
static void api_committed(struct api_write *w)
{
	struct match *m = w->api->match;

	api_tell_index(w->api->index, w);
	if (w->type == API_DELETE && w->found) {
		api_tell_match(m, w->kind, w->id, w->id_len, NULL, 0);
	} else if (w->type == API_CLOSE && w->changed) {
		api_tell_match(m, w->kind, w->id, w->id_len, w->scratch.data,
			       w->scratch.size);
	} else if (w->type == API_PUT || w->type == API_PUT_MANY) {
		for (uint32_t i = 0; i < w->items_len; i++) {
			const struct record_out *rec = &w->items[i].rec;

			if (w->items[i].ok)
				api_tell_match(m, w->kind, rec->id,
					       rec->id_len, rec->stored.data,
					       rec->stored.size);
		}
	}
}

static void api_complete(struct store_op *op, int status)
{
	struct api_write *w = (struct api_write *)op;

	if (status == 0)
		api_committed(w);
	w->status = status;
	rpc_worker_post(w->call.conn->worker, &w->task);
}

/* --- back on the network thread --- */

static void api_answer_put(struct api_write *w)
{
	struct api_item *it = &w->items[0];
	msgpack_packer *pk;

	if (!it->ok)
		return rpc_reply_error(&w->call, &it->err);
	pk = rpc_reply(&w->call);
	msgpack_pack_map(pk, w->has_comp ? 4 : 2);
	rpc_pack_str(pk, "id");
	msgpack_pack_str(pk, it->rec.id_len);
	msgpack_pack_str_body(pk, it->rec.id, it->rec.id_len);
	rpc_pack_str(pk, "created");
	if (it->created)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	if (w->has_comp) {
		rpc_pack_str(pk, "completeness");
		msgpack_pack_unsigned_int(pk, w->comp.percent);
		rpc_pack_str(pk, "missing");
		api_pack_missing(pk, w->api, &w->comp);
	}
	rpc_reply_end(&w->call);
}

static void api_pack_item_error(msgpack_packer *pk, uint32_t index,
				const struct proto_error *err)
{
	msgpack_pack_map(pk, 4);
	rpc_pack_str(pk, "index");
	msgpack_pack_uint32(pk, index);
	rpc_pack_str(pk, "code");
	rpc_pack_str(pk, proto_code_name(err->code));
	rpc_pack_str(pk, "message");
	rpc_pack_str(pk, err->message);
	rpc_pack_str(pk, "field");
	if (err->field[0])
		rpc_pack_str(pk, err->field);
	else
		msgpack_pack_nil(pk);
}

/* Errors are listed in index order: refused ones and failed ones merge. */
static void api_answer_put_many(struct api_write *w)
{
	uint32_t stored = 0, failed = 0, b = 0, i = 0;
	msgpack_packer *pk;

	for (uint32_t k = 0; k < w->items_len; k++)
		w->items[k].ok ? stored++ : failed++;
	pk = rpc_reply(&w->call);
	msgpack_pack_map(pk, 2);
	rpc_pack_str(pk, "stored");
	msgpack_pack_uint32(pk, stored);
	rpc_pack_str(pk, "errors");
	msgpack_pack_array(pk, failed + w->bad_len);
	while (b < w->bad_len || i < w->items_len) {
		if (i < w->items_len && w->items[i].ok) {
			i++;
		} else if (b < w->bad_len && (i == w->items_len ||
			   w->bad_index[b] < w->items[i].index)) {
			api_pack_item_error(pk, w->bad_index[b], &w->bad[b]);
			b++;
		} else {
			api_pack_item_error(pk, w->items[i].index,
					    &w->items[i].err);
			i++;
		}
	}
	rpc_reply_end(&w->call);
}

static void api_answer_flag(struct api_write *w, const char *name,
			    bool value)
{
	msgpack_packer *pk = rpc_reply(&w->call);

	msgpack_pack_map(pk, 1);
	rpc_pack_str(pk, name);
	if (value)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	rpc_reply_end(&w->call);
}

static void api_write_answer(struct rpc_task *task)
{
	struct api_write *w = (struct api_write *)((char *)task -
		offsetof(struct api_write, task));

	if (rpc_call_gone(&w->call)) {
		/* nothing to answer; the write itself stands */
	} else if (w->status == -ENOSPC) {
		rpc_reply_fail(&w->call, PROTO_UNAVAILABLE, NULL,
			       "storage is full; retry later");
	} else if (w->status == -ESHUTDOWN) {
		rpc_reply_fail(&w->call, PROTO_UNAVAILABLE, NULL,
			       "the server is shutting down");
	} else if (w->status) {
		rpc_reply_fail(&w->call, PROTO_UNAVAILABLE, NULL,
			       "storage failed (%s); retry later",
			       strerror(-w->status));
	} else if (w->type == API_PUT) {
		api_answer_put(w);
	} else if (w->type == API_PUT_MANY) {
		api_answer_put_many(w);
	} else if (w->type == API_DELETE) {
		api_answer_flag(w, "deleted", w->found);
	} else if (!w->found) {
		rpc_reply_fail(&w->call, PROTO_NOT_FOUND, "id",
			       "no posting with id %s", w->id);
	} else {
		api_answer_flag(w, "closed", w->changed);
	}
	rpc_undefer(&w->call);
	api_write_free(w);
}

static struct api_write *api_write_new(struct rpc_call *call,
				       enum api_write_type type)
{
	struct api_write *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->op.apply = api_apply;
	w->op.complete = api_complete;
	w->task.run = api_write_answer;
	w->call = *call;
	w->api = api_of(call);
	w->type = type;
	w->kind = api_kind_of(call);
	msgpack_sbuffer_init(&w->scratch);
	return w;
}

/* Queues w; on refusal answers the call and frees w. */
static void api_write_submit(struct rpc_call *call, struct api_write *w)
{
	int rc;

	rpc_defer(&w->call);
	rc = store_submit(w->api->store, &w->op);
	if (rc == 0)
		return;
	w->status = rc == -ESHUTDOWN ? -ESHUTDOWN : -ENOSPC;
	if (rc == -EAGAIN)
		rpc_reply_fail(call, PROTO_UNAVAILABLE, NULL,
			       "too many writes queued; retry later");
	else
		rpc_reply_fail(call, PROTO_UNAVAILABLE, NULL,
			       "the server is shutting down");
	w->call.conn->deferred--;
	api_write_free(w);
}

static void api_oom(struct rpc_call *call)
{
	rpc_reply_fail(call, PROTO_UNAVAILABLE, NULL, "out of memory");
}

static void api_put(struct rpc_call *call)
{
	struct api_write *w = api_write_new(call, API_PUT);
	struct api *api = api_of(call);
	struct proto_error err;

	if (!w)
		return api_oom(call);
	if (!call->args) {
		api_write_free(w);
		return rpc_reply_fail(call, PROTO_BAD_REQUEST, "params",
				      "put takes the record as [map]");
	}
	w->items = calloc(1, sizeof(*w->items));
	if (!w->items) {
		api_write_free(w);
		return api_oom(call);
	}
	w->items_len = 1;
	record_out_init(&w->items[0].rec);
	if (record_validate(w->kind, call->args, api->ref, &api->limits,
			    (int64_t)time(NULL), &w->items[0].rec, &err)) {
		api_write_free(w);
		return rpc_reply_error(call, &err);
	}
	api_write_submit(call, w);
}

static int api_many_alloc(struct api_write *w, uint32_t n)
{
	w->items = calloc(n ? n : 1, sizeof(*w->items));
	w->bad = calloc(n ? n : 1, sizeof(*w->bad));
	w->bad_index = calloc(n ? n : 1, sizeof(*w->bad_index));
	return w->items && w->bad && w->bad_index ? 0 : -ENOMEM;
}

static void api_put_many(struct rpc_call *call)
{
	const msgpack_object *items = rpc_arg(call, "items");
	struct api_write *w = api_write_new(call, API_PUT_MANY);
	struct api *api = api_of(call);
	int64_t now = (int64_t)time(NULL);
	uint32_t n;

	if (!w)
		return api_oom(call);
	if (!items || items->type != MSGPACK_OBJECT_ARRAY) {
		api_write_free(w);
		return rpc_reply_fail(call, PROTO_INVALID_ARGUMENT, "items",
				      "items must be a list of records");
	}
	n = items->via.array.size;
	if (api_many_alloc(w, n)) {
		api_write_free(w);
		return api_oom(call);
	}
	for (uint32_t i = 0; i < n; i++) {
		struct api_item *it = &w->items[w->items_len];
		const msgpack_object *o = &items->via.array.ptr[i];
		struct proto_error *err = &w->bad[w->bad_len];

		record_out_init(&it->rec);
		it->index = i;
		if (o->type != MSGPACK_OBJECT_MAP) {
			proto_fail(err, PROTO_INVALID_ARGUMENT, NULL,
				   "an item must be a map");
		} else if (record_validate(w->kind, o, api->ref, &api->limits,
					   now, &it->rec, err) == 0) {
			w->items_len++;
			continue;
		}
		record_out_destroy(&it->rec);
		w->bad_index[w->bad_len++] = i;
	}
	api_write_submit(call, w);
}

static int api_key(struct rpc_call *call, enum record_kind kind, char *id,
		   size_t *id_len)
{
	struct proto_error err;

	if (!call->args) {
		rpc_reply_fail(call, PROTO_INVALID_ARGUMENT,
			       api_key_field(kind), "%s is required",
			       api_key_field(kind));
		return -1;
	}
	if (record_key(call->args, api_key_field(kind), id, id_len, &err)) {
		rpc_reply_error(call, &err);
		return -1;
	}
	return 0;
}

static void api_delete(struct rpc_call *call)
{
	struct api_write *w = api_write_new(call, API_DELETE);

	if (!w)
		return api_oom(call);
	if (api_key(call, w->kind, w->id, &w->id_len)) {
		api_write_free(w);
		return;
	}
	api_write_submit(call, w);
}

static void api_close(struct rpc_call *call)
{
	struct api_write *w = api_write_new(call, API_CLOSE);

	if (!w)
		return api_oom(call);
	if (api_key(call, RECORD_POSTING, w->id, &w->id_len)) {
		api_write_free(w);
		return;
	}
	api_write_submit(call, w);
}

/* Packs a stored resume with completeness and missing added. */
static void api_pack_resume(struct rpc_call *call, const MDB_val *resume,
			    const MDB_val *student)
{
	const uint8_t *p = resume->mv_data;
	size_t skip, n;
	struct completeness_result res;
	msgpack_packer *pk;

	if (p[0] >= 0x80 && p[0] <= 0x8f) {
		n = p[0] & 0x0f;
		skip = 1;
	} else if (p[0] == 0xde) {
		n = (size_t)p[1] << 8 | p[2];
		skip = 3;
	} else {
		return rpc_reply_fail(call, PROTO_INTERNAL, NULL,
				      "stored resume is not a map");
	}
	api_completeness(api_of(call), resume, student, &res);
	pk = rpc_reply(call);
	msgpack_pack_map(pk, n + 2);
	rpc_pack_raw(pk, p + skip, resume->mv_size - skip);
	rpc_pack_str(pk, "completeness");
	msgpack_pack_unsigned_int(pk, res.percent);
	rpc_pack_str(pk, "missing");
	api_pack_missing(pk, api_of(call), &res);
	rpc_reply_end(call);
}

static void api_get(struct rpc_call *call)
{
	struct store_reader *rd = call->conn->worker->reader;
	enum record_kind kind = api_kind_of(call);
	char id[RECORD_ID_BYTES_MAX + 1];
	MDB_val val, student;
	size_t id_len;
	int rc;

	if (api_key(call, kind, id, &id_len))
		return;
	rc = store_read_begin(rd);
	if (rc)
		return rpc_reply_fail(call, PROTO_UNAVAILABLE, NULL,
				      "storage unavailable: %s",
				      strerror(-rc));
	rc = store_get(rd, api_tables[kind], id, id_len, &val);
	if (rc == -ENOENT) {
		rpc_reply_fail(call, PROTO_NOT_FOUND, api_key_field(kind),
			       "no %s with id %s", record_kind_name(kind), id);
	} else if (rc) {
		rpc_reply_fail(call, PROTO_INTERNAL, NULL, "read failed: %s",
			       strerror(-rc));
	} else if (kind == RECORD_RESUME) {
		rc = store_get(rd, STORE_STUDENT, id, id_len, &student);
		api_pack_resume(call, &val, rc ? NULL : &student);
	} else {
		rpc_pack_raw(rpc_reply(call), val.mv_data, val.mv_size);
		rpc_reply_end(call);
	}
	store_read_end(rd);
}

/* --- scan --- */

/* Largest page a scan returns, so one reply stays small. */
#define API_SCAN_LIMIT_MAX 1000

struct api_scan {
	msgpack_sbuffer body;
	msgpack_packer pk;
	char last[RECORD_ID_BYTES_MAX + 1];
	size_t last_len;
	uint32_t n;
};

static int api_scan_one(void *ctx, const MDB_val *key, const MDB_val *val)
{
	struct api_scan *s = ctx;

	rpc_pack_raw(&s->pk, val->mv_data, val->mv_size);
	s->last_len = key->mv_size < sizeof(s->last) ? key->mv_size
						     : sizeof(s->last) - 1;
	memcpy(s->last, key->mv_data, s->last_len);
	s->n++;
	return 0;
}

static int api_scan_args(struct rpc_call *call, enum record_kind *kind,
			 uint64_t *limit)
{
	const msgpack_object *k = rpc_arg(call, "kind");
	const msgpack_object *l = rpc_arg(call, "limit");
	int found = -1;

	for (int i = 0; k && k->type == MSGPACK_OBJECT_STR &&
			    i < RECORD_KINDS; i++) {
		const char *name = record_kind_name((enum record_kind)i);

		if (k->via.str.size == strlen(name) &&
		    memcmp(k->via.str.ptr, name, k->via.str.size) == 0)
			found = i;
	}
	if (found < 0) {
		rpc_reply_fail(call, PROTO_INVALID_ARGUMENT, "kind", "kind "
			       "must be student, resume, company or posting");
		return -1;
	}
	*kind = (enum record_kind)found;
	*limit = 100;
	if (l && (l->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		  l->via.u64 < 1 || l->via.u64 > API_SCAN_LIMIT_MAX)) {
		rpc_reply_fail(call, PROTO_INVALID_ARGUMENT, "limit",
			       "limit must be between 1 and %d",
			       API_SCAN_LIMIT_MAX);
		return -1;
	}
	if (l)
		*limit = l->via.u64;
	return 0;
}

static void api_scan(struct rpc_call *call)
{
	struct store_reader *rd = call->conn->worker->reader;
	char after[RECORD_ID_BYTES_MAX + 1] = "";
	size_t after_len = 0;
	struct api_scan s = { .n = 0 };
	struct proto_error err;
	enum record_kind kind = RECORD_STUDENT;
	msgpack_packer *pk;
	uint64_t limit;
	int rc;

	if (api_scan_args(call, &kind, &limit))
		return;
	if (rpc_arg(call, "after") &&
	    record_key(call->args, "after", after, &after_len, &err))
		return rpc_reply_error(call, &err);
	msgpack_sbuffer_init(&s.body);
	msgpack_packer_init(&s.pk, &s.body, msgpack_sbuffer_write);
	rc = store_read_begin(rd);
	if (rc == 0) {
		rc = store_scan(rd, api_tables[kind], after, after_len,
				(size_t)limit, api_scan_one, &s);
		store_read_end(rd);
	}
	if (rc < 0) {
		msgpack_sbuffer_destroy(&s.body);
		return rpc_reply_fail(call, PROTO_UNAVAILABLE, NULL,
				      "scan failed: %s", strerror(-rc));
	}
	pk = rpc_reply(call);
	msgpack_pack_map(pk, 2);
	rpc_pack_str(pk, "items");
	msgpack_pack_array(pk, s.n);
	rpc_pack_raw(pk, s.body.data, s.body.size);
	rpc_pack_str(pk, "next");
	if (s.n == limit) {
		msgpack_pack_str(pk, s.last_len);
		msgpack_pack_str_body(pk, s.last, s.last_len);
	} else {
		msgpack_pack_nil(pk);
	}
	rpc_reply_end(call);
	msgpack_sbuffer_destroy(&s.body);
}

/* --- stats --- */

static void api_pack_kv(msgpack_packer *pk, const char *k, uint64_t v)
{
	rpc_pack_str(pk, k);
	msgpack_pack_uint64(pk, v);
}

static void api_stats_requests(msgpack_packer *pk, struct rpc_server *srv,
			       const struct stats_worker *sum)
{
	uint32_t n = 0;

	for (unsigned m = 0; m < srv->methods_len; m++)
		n += sum->requests[m] != 0;
	rpc_pack_str(pk, "requests");
	msgpack_pack_map(pk, n);
	for (unsigned m = 0; m < srv->methods_len; m++) {
		if (sum->requests[m])
			api_pack_kv(pk, srv->methods[m].name,
				    sum->requests[m]);
	}
	rpc_pack_str(pk, "errors");
	msgpack_pack_map(pk, PROTO_INTERNAL);
	for (int c = PROTO_BAD_REQUEST; c <= PROTO_INTERNAL; c++)
		api_pack_kv(pk, proto_code_name((enum proto_code)c),
			    sum->errors[c]);
	rpc_pack_str(pk, "latency_us");
	msgpack_pack_map(pk, 4);
	api_pack_kv(pk, "p50", stats_latency_quantile_us(sum, 0.5));
	api_pack_kv(pk, "p90", stats_latency_quantile_us(sum, 0.9));
	api_pack_kv(pk, "p99", stats_latency_quantile_us(sum, 0.99));
	api_pack_kv(pk, "p999", stats_latency_quantile_us(sum, 0.999));
}

static void api_stats_conns(msgpack_packer *pk,
			    const struct stats_worker *sum)
{
	rpc_pack_str(pk, "connections");
	msgpack_pack_map(pk, 9);
	api_pack_kv(pk, "open", sum->conns_open);
	api_pack_kv(pk, "accepted", sum->conns_accepted);
	api_pack_kv(pk, "refused", sum->conns_refused);
	api_pack_kv(pk, "closed", sum->conns_closed);
	api_pack_kv(pk, "idle_closed", sum->conns_idle);
	api_pack_kv(pk, "slow_dropped", sum->conns_slow);
	api_pack_kv(pk, "bad_stream", sum->conns_bad_stream);
	api_pack_kv(pk, "bytes_in", sum->bytes_in);
	api_pack_kv(pk, "bytes_out", sum->bytes_out);
}

static void api_stats_store(msgpack_packer *pk, const struct store_stats *s)
{
	rpc_pack_str(pk, "records");
	msgpack_pack_map(pk, RECORD_KINDS);
	for (int k = 0; k < RECORD_KINDS; k++)
		api_pack_kv(pk, record_kind_name((enum record_kind)k),
			    s->entries[api_tables[k]]);
	rpc_pack_str(pk, "store");
	msgpack_pack_map(pk, 7);
	api_pack_kv(pk, "commits", s->commits);
	api_pack_kv(pk, "writes_committed", s->ops_committed);
	api_pack_kv(pk, "writes_failed", s->ops_failed);
	api_pack_kv(pk, "commit_us_mean",
		    s->commits ? s->commit_us_total / s->commits : 0);
	api_pack_kv(pk, "commit_us_max", s->commit_us_max);
	api_pack_kv(pk, "map_bytes", s->map_bytes);
	api_pack_kv(pk, "queue", s->queue_ops);
}

/* The match thread's state: whether it keeps up, and how far behind. */
static void api_stats_match(msgpack_packer *pk, struct match *m)
{
	struct match_stats ms;

	match_stats_get(m, &ms);
	rpc_pack_str(pk, "match");
	msgpack_pack_map(pk, 12);
	api_pack_kv(pk, "students", ms.students);
	api_pack_kv(pk, "eligible", ms.eligible);
	api_pack_kv(pk, "postings", ms.postings);
	api_pack_kv(pk, "stale", ms.stale);
	api_pack_kv(pk, "queue", ms.queue);
	api_pack_kv(pk, "applied", ms.applied);
	api_pack_kv(pk, "dropped", ms.dropped);
	api_pack_kv(pk, "reloads", ms.reloads);
	api_pack_kv(pk, "rebuilt", ms.rebuilt);
	api_pack_kv(pk, "offers", ms.offers);
	api_pack_kv(pk, "entered", ms.entered);
	api_pack_kv(pk, "lag_us_max", ms.lag_us_max);
}

static void api_stats(struct rpc_call *call)
{
	struct rpc_server *srv = call->conn->worker->server;
	struct stats_worker sum;
	struct store_stats ss;
	msgpack_packer *pk;

	memset(&sum, 0, sizeof(sum));
	for (unsigned i = 0; i < srv->workers_len; i++)
		stats_sum(&sum, &srv->workers[i]->stats);
	store_stats_get(api_of(call)->store, &ss);
	pk = rpc_reply(call);
	msgpack_pack_map(pk, 10 + (api_of(call)->push != NULL) +
			     (api_of(call)->match != NULL));
	rpc_pack_str(pk, "version");
	rpc_pack_str(pk, srv->version);
	api_pack_kv(pk, "uptime_s",
		    (uint64_t)(time(NULL) - srv->started_at));
	api_pack_kv(pk, "threads", srv->workers_len);
	api_pack_kv(pk, "memory_rss_bytes", stats_rss_bytes());
	api_stats_requests(pk, srv, &sum);
	api_stats_conns(pk, &sum);
	api_stats_store(pk, &ss);
	if (api_of(call)->push) {
		rpc_pack_str(pk, "pushes");
		push_stats_pack(api_of(call)->push,
				call->conn->worker->reader, pk);
	}
	if (api_of(call)->match)
		api_stats_match(pk, api_of(call)->match);
	rpc_reply_end(call);
}

#define API_RECORD_METHODS(kind)                                          \
	{ kind ".put", api_put, 0 },                                      \
	{ kind ".get", api_get, 0 },                                      \
	{ kind ".delete", api_delete, 0 },                                \
	{ kind ".put_many", api_put_many, 0 }

const struct rpc_method api_methods[] = {
	API_RECORD_METHODS("student"),
	API_RECORD_METHODS("resume"),
	API_RECORD_METHODS("company"),
	API_RECORD_METHODS("posting"),
	{ "posting.close", api_close, 0 },
	{ "scan", api_scan, 0 },
	{ "stats", api_stats, 0 },
};
const unsigned api_methods_len = sizeof(api_methods) /
				 sizeof(api_methods[0]);
