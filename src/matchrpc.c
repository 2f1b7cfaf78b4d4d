/*
 * matchrpc: the matching methods.  See matchrpc.h.
 *
 * A job carries a copy of everything its method needs (the arguments
 * stop being valid when the handler returns), runs on the match thread,
 * and is answered through rpc_worker_post() on the connection's own
 * thread, where packing into the connection's output is allowed.  A job
 * the match thread never ran (it stopped first) is answered `unavailable`
 * the same way.
 */
#include "matchrpc.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "completeness.h"
#include "match.h"
#include "record.h"

/* Largest page match.get and candidates.get serve. */
#define PAGE_MAX 1000u

enum mr_kind { MR_GET, MR_EXPLAIN, MR_CANDIDATES, MR_RERANK };

struct mr_job {
	struct match_job job;
	struct rpc_task task;
	struct rpc_call call;
	const struct completeness *comp;
	enum mr_kind kind;
	int rc;                        /* of the match call; -ESHUTDOWN */
	char sid[RECORD_ID_BYTES_MAX + 1], pid[RECORD_ID_BYTES_MAX + 1];
	size_t sid_len, pid_len;
	uint32_t k, offset;
	bool explain;
	/* results */
	struct match_answer ans;
	struct match_item *items;
	struct match_candidate *cands;
	uint32_t cands_len;
	struct score_explain ex;
	struct match_rerank rr;
	/* rerank: the named postings, or none for everything */
	char (*ids)[RECORD_ID_BYTES_MAX + 1];
	const char **id_ptrs;
	size_t *id_lens;
	uint32_t ids_len;
	bool all;
};

static struct api *api_of(const struct rpc_call *call)
{
	return call->conn->worker->server->app;
}

/* An optional whole number in [lo, hi]; integral floats count. */
static int arg_uint(struct rpc_call *call, const char *name, uint32_t def,
		    uint32_t lo, uint32_t hi, uint32_t *out)
{
	const msgpack_object *o = rpc_arg(call, name);
	double v;

	*out = def;
	if (!o)
		return 0;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		v = o->via.u64 > hi ? (double)hi + 1 : (double)o->via.u64;
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		v = -1;
	else if (o->type == MSGPACK_OBJECT_FLOAT32 ||
		 o->type == MSGPACK_OBJECT_FLOAT64)
		v = o->via.f64;
	else
		v = NAN;
	if (!(v >= lo && v <= hi) || v != floor(v)) {
		rpc_reply_fail(call, PROTO_INVALID_ARGUMENT, name,
			       "%s must be a whole number between %u and %u",
			       name, lo, hi);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int arg_bool(struct rpc_call *call, const char *name, bool *out)
{
	const msgpack_object *o = rpc_arg(call, name);

	*out = false;
	if (!o)
		return 0;
	if (o->type != MSGPACK_OBJECT_BOOLEAN) {
		rpc_reply_fail(call, PROTO_INVALID_ARGUMENT, name,
			       "%s must be true or false", name);
		return -1;
	}
	*out = o->via.boolean;
	return 0;
}

static int arg_id(struct rpc_call *call, const char *name, char *id,
		  size_t *len)
{
	struct proto_error err;

	if (!call->args) {
		rpc_reply_fail(call, PROTO_INVALID_ARGUMENT, name,
			       "%s is required", name);
		return -1;
	}
	if (record_key(call->args, name, id, len, &err)) {
		rpc_reply_error(call, &err);
		return -1;
	}
	return 0;
}

/* ---- packing answers ---- */

static void pack_float(msgpack_packer *pk, float v)
{
	/* Six decimals are all a score means; this keeps the wire short
	 * and the value equal across answers. */
	msgpack_pack_double(pk, round((double)v * 1e6) / 1e6);
}

static void pack_missing(msgpack_packer *pk, const struct completeness *c,
			 uint32_t missing)
{
	size_t n = c ? completeness_item_count(c) : 0;
	uint32_t count = 0;

	for (size_t i = 0; i < n; i++)
		count += missing >> i & 1u;
	msgpack_pack_array(pk, count);
	for (size_t i = 0; i < n; i++) {
		if (missing >> i & 1u)
			rpc_pack_str(pk, completeness_item_name(c, i));
	}
}

static void pack_item(msgpack_packer *pk, const struct match_item *it,
		      bool explain)
{
	msgpack_pack_map(pk, explain ? 3 : 2);
	rpc_pack_str(pk, "posting_id");
	rpc_pack_str(pk, it->posting_id);
	rpc_pack_str(pk, "score");
	pack_float(pk, it->score);
	if (!explain)
		return;
	rpc_pack_str(pk, "reasons");
	msgpack_pack_array(pk, it->reasons_len);
	for (uint8_t r = 0; r < it->reasons_len; r++)
		rpc_pack_str(pk, score_feature_name(
				 (enum score_feature)it->reasons[r]));
}

static void answer_get(struct rpc_call *call, const struct completeness *c,
		       const char *sid, const struct match_answer *ans,
		       const struct match_item *items, bool explain)
{
	bool eligible = ans->reason == MATCH_ELIGIBLE;
	msgpack_packer *pk = rpc_reply(call);

	msgpack_pack_map(pk, eligible ? 5 : 6);
	rpc_pack_str(pk, "student_id");
	rpc_pack_str(pk, sid);
	rpc_pack_str(pk, "eligible");
	eligible ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	rpc_pack_str(pk, "completeness");
	msgpack_pack_unsigned_int(pk, ans->completeness);
	rpc_pack_str(pk, "missing");
	pack_missing(pk, c, ans->missing);
	if (!eligible) {
		rpc_pack_str(pk, "reason");
		rpc_pack_str(pk, match_reason_name(ans->reason));
	}
	rpc_pack_str(pk, "items");
	msgpack_pack_array(pk, ans->len);
	for (uint32_t i = 0; i < ans->len; i++)
		pack_item(pk, &items[i], explain);
	rpc_reply_end(call);
}

static void answer_explain(struct rpc_call *call,
			   const struct score_explain *ex,
			   const struct score_config *cfg)
{
	msgpack_packer *pk = rpc_reply(call);

	msgpack_pack_map(pk, 3);
	rpc_pack_str(pk, "score");
	pack_float(pk, ex->score);
	rpc_pack_str(pk, "features");
	msgpack_pack_map(pk, SCORE_FEATURES);
	for (int f = 0; f < SCORE_FEATURES; f++) {
		rpc_pack_str(pk, score_feature_name((enum score_feature)f));
		msgpack_pack_map(pk, 3);
		rpc_pack_str(pk, "value");
		pack_float(pk, ex->value[f]);
		rpc_pack_str(pk, "weight");
		pack_float(pk, cfg->weight[f]);
		rpc_pack_str(pk, "contribution");
		pack_float(pk, ex->contribution[f]);
	}
	rpc_pack_str(pk, "filters");
	msgpack_pack_array(pk, SCORE_FILTERS);
	for (int f = 0; f < SCORE_FILTERS; f++) {
		msgpack_pack_map(pk, 2);
		rpc_pack_str(pk, "name");
		rpc_pack_str(pk, score_filter_name((enum score_filter)f));
		rpc_pack_str(pk, "passed");
		ex->failed >> f & 1u ? msgpack_pack_false(pk)
				     : msgpack_pack_true(pk);
	}
	rpc_reply_end(call);
}

static void answer_candidates(struct rpc_call *call, const char *pid,
			      const struct match_candidate *c, uint32_t n)
{
	msgpack_packer *pk = rpc_reply(call);

	msgpack_pack_map(pk, 2);
	rpc_pack_str(pk, "posting_id");
	rpc_pack_str(pk, pid);
	rpc_pack_str(pk, "items");
	msgpack_pack_array(pk, n);
	for (uint32_t i = 0; i < n; i++) {
		msgpack_pack_map(pk, 2);
		rpc_pack_str(pk, "student_id");
		rpc_pack_str(pk, c[i].student_id);
		rpc_pack_str(pk, "score");
		pack_float(pk, c[i].score);
	}
	rpc_reply_end(call);
}

static void answer_rerank(struct rpc_call *call,
			  const struct match_rerank *r)
{
	msgpack_packer *pk = rpc_reply(call);

	msgpack_pack_map(pk, 3);
	rpc_pack_str(pk, "students_updated");
	msgpack_pack_uint64(pk, r->students_updated);
	rpc_pack_str(pk, "pushes");
	msgpack_pack_uint64(pk, r->pushes);
	rpc_pack_str(pk, "unknown");
	msgpack_pack_uint32(pk, r->unknown);
	rpc_reply_end(call);
}

/* ---- jobs ---- */

static void job_free(struct mr_job *j)
{
	free(j->items);
	free(j->cands);
	free(j->ids);
	free(j->id_ptrs);
	free(j->id_lens);
	free(j);
}

static void answer_failure(struct mr_job *j)
{
	if (j->rc == -ESHUTDOWN)
		rpc_reply_fail(&j->call, PROTO_UNAVAILABLE, NULL,
			       "the server is shutting down");
	else if (j->rc == -ENOENT)
		rpc_reply_fail(&j->call, PROTO_NOT_FOUND, "student_id",
			       "no student with id %s", j->sid);
	else if (j->rc == -ENXIO)
		rpc_reply_fail(&j->call, PROTO_NOT_FOUND, "posting_id",
			       "no open posting with id %s", j->pid);
	else
		rpc_reply_fail(&j->call, PROTO_UNAVAILABLE, NULL,
			       "matching failed (%s); retry later",
			       strerror(-j->rc));
}

/* Back on the connection's thread: packs the answer. */
static void job_answer(struct rpc_task *task)
{
	struct mr_job *j = (struct mr_job *)((char *)task -
		offsetof(struct mr_job, task));
	struct api *api = api_of(&j->call);

	if (rpc_call_gone(&j->call)) {
		/* nobody to tell */
	} else if (j->rc) {
		answer_failure(j);
	} else if (j->kind == MR_GET) {
		answer_get(&j->call, j->comp, j->sid, &j->ans, j->items,
			   j->explain);
	} else if (j->kind == MR_EXPLAIN) {
		answer_explain(&j->call, &j->ex,
			       match_score_config(api->match));
	} else if (j->kind == MR_CANDIDATES) {
		answer_candidates(&j->call, j->pid, j->cands, j->cands_len);
	} else {
		answer_rerank(&j->call, &j->rr);
	}
	rpc_undefer(&j->call);
	job_free(j);
}

static void job_post(struct mr_job *j)
{
	rpc_worker_post(j->call.conn->worker, &j->task);
}

static void rerank_done(struct match_job *job, const struct match_rerank *r)
{
	struct mr_job *j = (struct mr_job *)job;

	j->rr = *r;
	job_post(j);
}

/* On the match thread. */
static void job_run(struct match *m, struct match_job *job)
{
	struct mr_job *j = (struct mr_job *)job;

	switch (j->kind) {
	case MR_GET:
		j->rc = match_get_now(m, j->sid, j->sid_len, j->k, j->offset,
				      j->explain, &j->ans, j->items);
		break;
	case MR_EXPLAIN:
		j->rc = match_explain(m, j->sid, j->sid_len, j->pid,
				      j->pid_len, &j->ex);
		break;
	case MR_CANDIDATES:
		j->rc = match_candidates(m, j->pid, j->pid_len, j->k,
					 j->offset, j->cands, &j->cands_len);
		break;
	case MR_RERANK:
		if (j->all)
			return match_rerank_all(m, job, rerank_done);
		match_rerank_postings(m, j->id_ptrs, j->id_lens, j->ids_len,
				      &j->rr);
		break;
	}
	job_post(j);
}

static void job_cancel(struct match_job *job)
{
	struct mr_job *j = (struct mr_job *)job;

	j->rc = -ESHUTDOWN;
	job_post(j);
}

static struct mr_job *job_new(struct rpc_call *call, enum mr_kind kind)
{
	struct mr_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->job.run = job_run;
	j->job.cancel = job_cancel;
	j->task.run = job_answer;
	j->call = *call;
	j->comp = api_of(call)->completeness;
	j->kind = kind;
	return j;
}

/* Hands j to the match thread; on refusal answers and frees it. */
static void job_submit(struct rpc_call *call, struct mr_job *j)
{
	int rc = match_submit(api_of(call)->match, &j->job);

	if (rc == 0) {
		rpc_defer(&j->call);
		return;
	}
	rpc_reply_fail(call, PROTO_UNAVAILABLE, NULL, rc == -EAGAIN ?
		       "too much matching work queued; retry later" :
		       "the server is shutting down");
	job_free(j);
}

static void oom(struct rpc_call *call)
{
	rpc_reply_fail(call, PROTO_UNAVAILABLE, NULL, "out of memory");
}

/* ---- handlers ---- */

static void get_deferred(struct rpc_call *call, struct mr_job *j)
{
	j->items = calloc(j->k, sizeof(*j->items));
	if (!j->items) {
		job_free(j);
		return oom(call);
	}
	job_submit(call, j);
}

static void match_get_method(struct rpc_call *call)
{
	struct api *api = api_of(call);
	struct mr_job *j = job_new(call, MR_GET);
	struct match_item *items;
	int rc;

	if (!j)
		return oom(call);
	if (arg_id(call, "student_id", j->sid, &j->sid_len) ||
	    arg_uint(call, "k", 20, 1, PAGE_MAX, &j->k) ||
	    arg_uint(call, "offset", 0, 0, PAGE_MAX, &j->offset) ||
	    arg_bool(call, "explain", &j->explain)) {
		job_free(j);
		return;
	}
	if (j->explain)
		return get_deferred(call, j);
	items = calloc(j->k, sizeof(*items));
	if (!items) {
		job_free(j);
		return oom(call);
	}
	rc = match_get(api->match, j->sid, j->sid_len, j->k, j->offset,
		       &j->ans, items);
	if (rc == 0)
		answer_get(call, api->completeness, j->sid, &j->ans, items,
			   false);
	free(items);
	/*
	 * Not built yet, or not known yet: the match thread answers after
	 * applying every change queued before this call, which includes the
	 * put of a student whose reply the client has already seen.
	 */
	if (rc)
		return get_deferred(call, j);
	job_free(j);
}

static void match_explain_method(struct rpc_call *call)
{
	struct mr_job *j = job_new(call, MR_EXPLAIN);

	if (!j)
		return oom(call);
	if (arg_id(call, "student_id", j->sid, &j->sid_len) ||
	    arg_id(call, "posting_id", j->pid, &j->pid_len)) {
		job_free(j);
		return;
	}
	job_submit(call, j);
}

static void candidates_method(struct rpc_call *call)
{
	struct mr_job *j = job_new(call, MR_CANDIDATES);

	if (!j)
		return oom(call);
	if (arg_id(call, "posting_id", j->pid, &j->pid_len) ||
	    arg_uint(call, "k", 20, 1, PAGE_MAX, &j->k) ||
	    arg_uint(call, "offset", 0, 0, PAGE_MAX - j->k, &j->offset)) {
		job_free(j);
		return;
	}
	j->cands = calloc(j->k, sizeof(*j->cands));
	if (!j->cands) {
		job_free(j);
		return oom(call);
	}
	job_submit(call, j);
}

/* Copies and normalises posting_ids[] into the job. */
static int rerank_ids(struct rpc_call *call, struct mr_job *j,
		      const msgpack_object *ids)
{
	uint32_t n = ids->via.array.size;
	struct proto_error err;

	j->ids = calloc(n ? n : 1, sizeof(*j->ids));
	j->id_ptrs = calloc(n ? n : 1, sizeof(*j->id_ptrs));
	j->id_lens = calloc(n ? n : 1, sizeof(*j->id_lens));
	if (!j->ids || !j->id_ptrs || !j->id_lens) {
		oom(call);
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		msgpack_object_kv kv = {
			.key = { .type = MSGPACK_OBJECT_STR,
				 .via.str = { 10, "posting_id" } },
			.val = ids->via.array.ptr[i],
		};
		msgpack_object one = { .type = MSGPACK_OBJECT_MAP,
				       .via.map = { 1, &kv } };

		if (record_key(&one, "posting_id", j->ids[i], &j->id_lens[i],
			       &err)) {
			snprintf(err.field, sizeof(err.field),
				 "posting_ids[%u]", i);
			rpc_reply_error(call, &err);
			return -1;
		}
		j->id_ptrs[i] = j->ids[i];
	}
	j->ids_len = n;
	return 0;
}

static void rerank_method(struct rpc_call *call)
{
	const msgpack_object *ids = rpc_arg(call, "posting_ids");
	struct mr_job *j = job_new(call, MR_RERANK);

	if (!j)
		return oom(call);
	if (ids && ids->type != MSGPACK_OBJECT_ARRAY) {
		job_free(j);
		return rpc_reply_fail(call, PROTO_INVALID_ARGUMENT,
				      "posting_ids", "posting_ids must be a "
				      "list of posting ids");
	}
	j->all = !ids;
	if (ids && rerank_ids(call, j, ids)) {
		job_free(j);
		return;
	}
	job_submit(call, j);
}

const struct rpc_method matchrpc_methods[] = {
	{ "candidates.get", candidates_method, 0 },
	{ "match.explain", match_explain_method, 0 },
	{ "match.get", match_get_method, 0 },
	{ "rerank", rerank_method, 0 },
};
const unsigned matchrpc_methods_len =
	sizeof(matchrpc_methods) / sizeof(matchrpc_methods[0]);
