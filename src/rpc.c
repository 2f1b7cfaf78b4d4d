/*
 * rpc: request classification, limits, auth and dispatch.  See rpc.h.
 *
 * The rules for objects that are not requests come from the protocol:
 * responses (type 1) and notifications (type 2) are never answered, since
 * some clients answer an unexpected message with a response of their own
 * and answering that back would loop; anything else gets bad_request when
 * a msgid can be read (an array whose second element is an unsigned
 * integer) and closes the connection when not.
 */
#include "rpc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text.h"

uint64_t rpc_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int rpc_method_cmp(const char *name, size_t len, const char *m)
{
	int c = strncmp(name, m, len);

	if (c)
		return c;
	return m[len] == '\0' ? 0 : -1;
}

int rpc_server_add(struct rpc_server *srv, const struct rpc_method *m,
		   unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned at = 0;

		if (srv->methods_len >= STATS_METHODS_MAX)
			return -ENOSPC;
		while (at < srv->methods_len &&
		       strcmp(srv->methods[at].name, m[i].name) < 0)
			at++;
		if (at < srv->methods_len &&
		    strcmp(srv->methods[at].name, m[i].name) == 0)
			return -EEXIST;
		memmove(&srv->methods[at + 1], &srv->methods[at],
			(srv->methods_len - at) * sizeof(m[i]));
		srv->methods[at] = m[i];
		srv->methods_len++;
	}
	return 0;
}

static int rpc_find(const struct rpc_server *srv, const char *name,
		    size_t len)
{
	int lo = 0;
	int hi = (int)srv->methods_len - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		int c = rpc_method_cmp(name, len, srv->methods[mid].name);

		if (c == 0)
			return mid;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return -1;
}

int rpc_worker_init(struct rpc_worker *w, struct rpc_server *srv,
		    unsigned index)
{
	memset(w, 0, sizeof(*w));
	w->server = srv;
	w->index = index;
	return -pthread_mutex_init(&w->lock, NULL);
}

void rpc_worker_destroy(struct rpc_worker *w)
{
	pthread_mutex_destroy(&w->lock);
}

int rpc_pack_raw(msgpack_packer *pk, const void *data, size_t len)
{
	/* An empty sbuffer has no data pointer at all. */
	if (len == 0)
		return 0;
	return pk->callback(pk->data, data, len);
}

int rpc_pack_str(msgpack_packer *pk, const char *s)
{
	size_t len = strlen(s);

	msgpack_pack_str(pk, len);
	return msgpack_pack_str_body(pk, s, len);
}

static void rpc_pack_error(msgpack_packer *pk, uint64_t msgid,
			   const struct proto_error *err)
{
	bool field = err->field[0] != '\0';

	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_uint64(pk, msgid);
	msgpack_pack_map(pk, field ? 3 : 2);
	rpc_pack_str(pk, "code");
	rpc_pack_str(pk, proto_code_name(err->code));
	rpc_pack_str(pk, "message");
	rpc_pack_str(pk, err->message);
	if (field) {
		rpc_pack_str(pk, "field");
		rpc_pack_str(pk, err->field);
	}
	msgpack_pack_nil(pk);
}

static void rpc_count(struct rpc_call *call, enum proto_code code)
{
	struct stats_worker *st = &call->conn->worker->stats;

	stats_request(st, call->method, rpc_now_us() - call->start_us);
	if (code != PROTO_OK)
		STATS_ADD(st->errors[code], 1);
}

msgpack_packer *rpc_reply(struct rpc_call *call)
{
	msgpack_packer *pk = &call->conn->pk;

	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, 1);
	msgpack_pack_uint64(pk, call->msgid);
	msgpack_pack_nil(pk);
	return pk;
}

void rpc_reply_end(struct rpc_call *call)
{
	rpc_count(call, PROTO_OK);
}

void rpc_reply_error(struct rpc_call *call, const struct proto_error *err)
{
	rpc_pack_error(&call->conn->pk, call->msgid, err);
	rpc_count(call, err->code);
}

void rpc_reply_fail(struct rpc_call *call, enum proto_code code,
		    const char *field, const char *fmt, ...)
{
	struct proto_error err;
	va_list ap;

	err.code = code;
	snprintf(err.field, sizeof(err.field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	rpc_reply_error(call, &err);
}

void rpc_refuse(struct rpc_conn *conn, uint64_t msgid, enum proto_code code,
		const char *message)
{
	struct proto_error err;

	proto_fail(&err, code, NULL, "%s", message);
	rpc_pack_error(&conn->pk, msgid, &err);
	STATS_ADD(conn->worker->stats.errors[code], 1);
}

void rpc_defer(struct rpc_call *call)
{
	call->conn->deferred++;
	call->args = NULL;
}

bool rpc_call_gone(const struct rpc_call *call)
{
	return call->conn->gone;
}

void rpc_undefer(struct rpc_call *call)
{
	struct rpc_conn *conn = call->conn;
	struct rpc_worker *w = conn->worker;

	conn->deferred--;
	if (conn->gone) {
		if (conn->deferred == 0)
			w->conn_release(conn);
		return;
	}
	w->conn_flush(conn);
}

void rpc_worker_post(struct rpc_worker *w, struct rpc_task *task)
{
	bool first;

	task->next = NULL;
	pthread_mutex_lock(&w->lock);
	first = w->posted_head == NULL;
	if (w->posted_tail)
		w->posted_tail->next = task;
	else
		w->posted_head = task;
	w->posted_tail = task;
	pthread_mutex_unlock(&w->lock);
	/* One wake-up covers every task posted before the worker drains. */
	if (first)
		w->wake(w->net);
}

void rpc_worker_run_posted(struct rpc_worker *w)
{
	struct rpc_task *task;

	pthread_mutex_lock(&w->lock);
	task = w->posted_head;
	w->posted_head = NULL;
	w->posted_tail = NULL;
	pthread_mutex_unlock(&w->lock);
	while (task) {
		struct rpc_task *next = task->next;

		task->run(task);
		task = next;
	}
}

/* A string field's bytes: str, or bin holding UTF-8. */
static bool rpc_str(const msgpack_object *o, const char **s, size_t *len)
{
	if (o->type == MSGPACK_OBJECT_STR) {
		*s = o->via.str.ptr;
		*len = o->via.str.size;
	} else if (o->type == MSGPACK_OBJECT_BIN) {
		*s = o->via.bin.ptr;
		*len = o->via.bin.size;
	} else {
		return false;
	}
	return text_utf8_valid(*s, *len);
}

/* Appends a path step; the path is cut, never overflowed. */
static size_t rpc_path_key(char *path, size_t at, const msgpack_object *k)
{
	const char *s;
	size_t len;
	int n;

	if (!rpc_str(k, &s, &len))
		return at;
	n = snprintf(path + at, PROTO_FIELD_MAX - at, "%s%.*s",
		     at ? "." : "", (int)len, s);
	return at + (size_t)n < PROTO_FIELD_MAX ? at + (size_t)n
					      : PROTO_FIELD_MAX - 1;
}

static size_t rpc_path_index(char *path, size_t at, uint32_t i)
{
	int n = snprintf(path + at, PROTO_FIELD_MAX - at, "[%u]", i);

	return at + (size_t)n < PROTO_FIELD_MAX ? at + (size_t)n
					      : PROTO_FIELD_MAX - 1;
}

/*
 * Checks every string and list under o against the limits, naming the
 * first offender by its path.  Depth is bounded by the framer.
 */
static int rpc_check_limits(const struct proto_limits *lim,
			    const msgpack_object *o, char *path, size_t at,
			    struct proto_error *err)
{
	uint32_t n;

	switch (o->type) {
	case MSGPACK_OBJECT_STR:
	case MSGPACK_OBJECT_BIN:
		if (o->via.str.size > lim->string_bytes_max)
			return proto_fail(err, PROTO_TOO_LARGE, path,
					  "string longer than %u bytes",
					  lim->string_bytes_max);
		return 0;
	case MSGPACK_OBJECT_ARRAY:
		n = o->via.array.size;
		if (n > lim->list_len_max)
			return proto_fail(err, PROTO_TOO_LARGE, path,
					  "list longer than %u items",
					  lim->list_len_max);
		for (uint32_t i = 0; i < n; i++) {
			size_t end = rpc_path_index(path, at, i);

			if (rpc_check_limits(lim, &o->via.array.ptr[i], path,
					     end, err))
				return -1;
			path[at] = '\0';
		}
		return 0;
	case MSGPACK_OBJECT_MAP:
		n = o->via.map.size;
		if (n > lim->list_len_max)
			return proto_fail(err, PROTO_TOO_LARGE, path,
					  "map with more than %u entries",
					  lim->list_len_max);
		for (uint32_t i = 0; i < n; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			size_t end = rpc_path_key(path, at, &kv->key);

			if (rpc_check_limits(lim, &kv->key, path, end, err) ||
			    rpc_check_limits(lim, &kv->val, path, end, err))
				return -1;
			path[at] = '\0';
		}
		return 0;
	default:
		return 0;
	}
}

/* True when o is the integer v (positive encoding). */
static bool rpc_is_uint(const msgpack_object *o, uint64_t v)
{
	return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	       o->via.u64 == v;
}

static void rpc_dispatch(struct rpc_call *call, const msgpack_object *name,
			 const msgpack_object *params)
{
	struct rpc_server *srv = call->conn->worker->server;
	char path[PROTO_FIELD_MAX] = "";
	struct proto_error err;
	const char *s;
	size_t len;
	int m;

	if (!rpc_str(name, &s, &len))
		return rpc_reply_fail(call, PROTO_BAD_REQUEST, "method",
				      "method must be a UTF-8 string");
	m = rpc_find(srv, s, len);
	if (m < 0)
		return rpc_reply_fail(call, PROTO_UNKNOWN_METHOD, "method",
				      "no method named %.*s",
				      (int)(len > 64 ? 64 : len), s);
	call->method = (unsigned)m;
	if (params->type != MSGPACK_OBJECT_ARRAY ||
	    params->via.array.size > 1 ||
	    (params->via.array.size == 1 &&
	     params->via.array.ptr[0].type != MSGPACK_OBJECT_MAP))
		return rpc_reply_fail(call, PROTO_BAD_REQUEST, "params",
				      "params must be [] or [map]");
	if (srv->token_len && !call->conn->authed &&
	    !(srv->methods[m].flags & RPC_OPEN))
		return rpc_reply_fail(call, PROTO_UNAUTHORIZED, NULL,
				      "say hello with the token first");
	if (srv->shutting_down)
		return rpc_reply_fail(call, PROTO_UNAVAILABLE, NULL,
				      "the server is shutting down");
	call->args = params->via.array.size ? &params->via.array.ptr[0]
					    : NULL;
	if (call->args &&
	    rpc_check_limits(&srv->limits, call->args, path, 0, &err))
		return rpc_reply_error(call, &err);
	srv->methods[m].handler(call);
}

int rpc_handle(struct rpc_conn *conn, const msgpack_object *obj)
{
	const msgpack_object *e = obj->via.array.ptr;
	struct rpc_call call = {
		.conn = conn,
		.method = STATS_METHODS_MAX,
		.start_us = rpc_now_us(),
	};
	uint32_t n;

	if (obj->type != MSGPACK_OBJECT_ARRAY || obj->via.array.size < 2)
		return -1;
	n = obj->via.array.size;
	if (n == 3 && rpc_is_uint(&e[0], 2))
		return 0; /* a notification: none is defined for clients */
	if (n == 4 && rpc_is_uint(&e[0], 1))
		return 0; /* a response: dropped, never answered */
	if (e[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	call.msgid = e[1].via.u64;
	if (n != 4 || !rpc_is_uint(&e[0], 0)) {
		rpc_reply_fail(&call, PROTO_BAD_REQUEST, NULL,
			       "a request is [0, msgid, method, params]");
		return 0;
	}
	rpc_dispatch(&call, &e[2], &e[3]);
	return 0;
}

/* ping: liveness, no arguments. */
static void rpc_ping(struct rpc_call *call)
{
	rpc_pack_str(rpc_reply(call), "pong");
	rpc_reply_end(call);
}

/* Compares without leaking the length of the common prefix in time. */
static bool rpc_token_equal(const char *a, size_t a_len, const char *b,
			    size_t b_len)
{
	unsigned char diff = a_len != b_len;

	for (size_t i = 0; i < a_len && i < b_len; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

const msgpack_object *rpc_arg(const struct rpc_call *call, const char *name)
{
	size_t len = strlen(name);

	if (!call->args)
		return NULL;
	for (uint32_t i = 0; i < call->args->via.map.size; i++) {
		const msgpack_object_kv *kv = &call->args->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == len &&
		    memcmp(kv->key.via.str.ptr, name, len) == 0)
			return kv->val.type == MSGPACK_OBJECT_NIL ? NULL
								  : &kv->val;
	}
	return NULL;
}

/* hello: identifies the client and, with a token configured, admits it. */
static void rpc_hello(struct rpc_call *call)
{
	struct rpc_server *srv = call->conn->worker->server;
	const msgpack_object *token = rpc_arg(call, "token");
	const msgpack_object *client = rpc_arg(call, "client");
	const char *s;
	size_t len;
	msgpack_packer *pk;

	if (client && client->type != MSGPACK_OBJECT_NIL) {
		if (!rpc_str(client, &s, &len))
			return rpc_reply_fail(call, PROTO_INVALID_ARGUMENT,
					      "client", "client must be a "
					      "UTF-8 string");
		snprintf(call->conn->client, sizeof(call->conn->client),
			 "%.*s", (int)len, s);
	}
	if (srv->token_len) {
		if (!token || !rpc_str(token, &s, &len) ||
		    !rpc_token_equal(s, len, srv->token, srv->token_len))
			return rpc_reply_fail(call, PROTO_UNAUTHORIZED,
					      "token", "wrong or missing "
					      "token");
		call->conn->authed = true;
	}
	pk = rpc_reply(call);
	msgpack_pack_map(pk, 3);
	rpc_pack_str(pk, "server");
	rpc_pack_str(pk, "matchd");
	rpc_pack_str(pk, "version");
	rpc_pack_str(pk, srv->version);
	rpc_pack_str(pk, "protocol");
	msgpack_pack_int(pk, 1);
	rpc_reply_end(call);
}

const struct rpc_method rpc_builtin_methods[] = {
	{ "hello", rpc_hello, RPC_OPEN },
	{ "ping", rpc_ping, RPC_OPEN },
};
const unsigned rpc_builtin_methods_len =
	sizeof(rpc_builtin_methods) / sizeof(rpc_builtin_methods[0]);
