/*
 * rpc: msgpack-RPC on top of decoded msgpack objects.
 *
 * The network layer hands every complete object a connection sends to
 * rpc_handle(); rpc tells requests from notifications and responses,
 * checks the request's shape, its strings and lists against the limits,
 * the token rule, and dispatches by method name through a table.  A
 * handler answers at once (rpc_reply / rpc_reply_error) or defers: it
 * keeps its rpc_call, and answers later on the same thread after a store
 * commit, from a task posted back to its worker.
 *
 * Threads: everything here runs on the network thread that owns the
 * connection, except rpc_worker_post(), which any thread may call.
 */
#ifndef MATCHD_RPC_H
#define MATCHD_RPC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "proto.h"
#include "stats.h"

struct rpc_call;
struct rpc_conn;
struct store;
struct store_reader;

typedef void (*rpc_handler)(struct rpc_call *call);

/* Method flags. */
#define RPC_OPEN 1u /* callable before `hello` when a token is set */

struct rpc_method {
	const char *name;
	rpc_handler handler;
	unsigned flags;
};

/* Shared by every thread; filled by main before the threads start, then
 * read-only but for shutting_down. */
struct rpc_server {
	struct rpc_method methods[STATS_METHODS_MAX]; /* sorted by name */
	unsigned methods_len;
	struct proto_limits limits;
	char token[256];
	size_t token_len;       /* 0: no token configured */
	struct rpc_worker **workers;
	unsigned workers_len;
	void *app;              /* the handlers' own context (api) */
	void *push;             /* the push module, for its handlers */
	/* Called on the connection's thread when a connection with `sub`
	 * set closes, and when its unsent output has drained below half
	 * the limit (a subscriber can be sent more). */
	void (*sub_closed)(struct rpc_conn *conn);
	void (*sub_writable)(struct rpc_conn *conn);
	const char *version;
	int64_t started_at;     /* Unix seconds */
	bool shutting_down;
};

/* Per connection, embedded in the network layer's connection. */
struct rpc_conn {
	msgpack_packer pk;      /* appends to the connection's output */
	struct rpc_worker *worker;
	uint64_t id;            /* for logs */
	uint32_t deferred;      /* calls waiting to be answered */
	bool authed;
	bool gone;              /* socket closed: late replies are dropped */
	void *sub;              /* push subscription, owned by push */
	char client[64];        /* what `hello` said, for logs */
};

/* A unit of work posted to a worker from another thread. */
struct rpc_task {
	struct rpc_task *next;
	void (*run)(struct rpc_task *task);
};

/* Per network thread. */
struct rpc_worker {
	struct rpc_server *server;
	struct store_reader *reader;
	struct stats_worker stats;
	unsigned index;
	/* Hooks set by the network layer. */
	void *net;
	void (*wake)(void *net);                      /* any thread */
	void (*conn_flush)(struct rpc_conn *conn);    /* output was added */
	void (*conn_release)(struct rpc_conn *conn);  /* last deferred done */
	size_t (*conn_room)(const struct rpc_conn *conn); /* output bytes
							   * before the cap */
	pthread_mutex_t lock;                         /* guards posted */
	struct rpc_task *posted_head;
	struct rpc_task *posted_tail;
};

/* One request being answered. */
struct rpc_call {
	struct rpc_conn *conn;
	uint64_t msgid;
	const msgpack_object *args; /* the params map; NULL for [] */
	unsigned method;
	uint64_t start_us;
};

/*
 * Adds a table of methods (at most STATS_METHODS_MAX in all).  Returns 0,
 * or -EEXIST for a name given twice, or -ENOSPC.
 */
int rpc_server_add(struct rpc_server *srv, const struct rpc_method *m,
		   unsigned n);

/* The built-in methods: ping, hello. */
extern const struct rpc_method rpc_builtin_methods[];
extern const unsigned rpc_builtin_methods_len;

int rpc_worker_init(struct rpc_worker *w, struct rpc_server *srv,
		    unsigned index);
void rpc_worker_destroy(struct rpc_worker *w);

/*
 * Handles one complete object received on conn.  Returns 0 to go on, or
 * -1 when the stream cannot go on (an object that is neither a request,
 * a response nor a notification and carries no readable msgid): the
 * caller closes the connection.
 */
int rpc_handle(struct rpc_conn *conn, const msgpack_object *obj);

/* Answers a frame the framer refused, when its msgid could be read; the
 * caller closes the connection afterwards. */
void rpc_refuse(struct rpc_conn *conn, uint64_t msgid, enum proto_code code,
		const char *message);

/*
 * Starts a successful reply: packs [1, msgid, nil, and returns the packer
 * for exactly one result object, after which the caller calls
 * rpc_reply_end().
 */
msgpack_packer *rpc_reply(struct rpc_call *call);
void rpc_reply_end(struct rpc_call *call);

/* Packs the error reply [1, msgid, {code, message, field?}, nil]. */
void rpc_reply_error(struct rpc_call *call, const struct proto_error *err);
void rpc_reply_fail(struct rpc_call *call, enum proto_code code,
		    const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * A handler that answers later calls rpc_defer() before returning and
 * keeps a copy of *call (the args pointer is then no longer valid).  When
 * the answer is packed (on the connection's thread), rpc_undefer() ends
 * the wait: it flushes the output, or frees the connection when it went
 * away meanwhile.  rpc_call_gone() tells a late answer not to bother.
 */
void rpc_defer(struct rpc_call *call);
void rpc_undefer(struct rpc_call *call);
bool rpc_call_gone(const struct rpc_call *call);

/* Queues task to run on w's thread; callable from any thread. */
void rpc_worker_post(struct rpc_worker *w, struct rpc_task *task);

/* Runs every posted task; the network layer calls it when woken. */
void rpc_worker_run_posted(struct rpc_worker *w);

/* The argument `name` of the call's params map; NULL when absent or nil.
 * Valid while the call's args are (not after rpc_defer()). */
const msgpack_object *rpc_arg(const struct rpc_call *call, const char *name);

/* Writes raw msgpack bytes (an already packed object) to pk. */
int rpc_pack_raw(msgpack_packer *pk, const void *data, size_t len);

/* Packs a NUL-terminated string. */
int rpc_pack_str(msgpack_packer *pk, const char *s);

/* Monotonic microseconds, for latency counters. */
uint64_t rpc_now_us(void);

#endif
