/*
 * net: io_uring event loops.  See net.h for the model and the bounds.
 *
 * Every submission carries its connection (or thread) pointer with a tag
 * in the low bits of user_data.  A connection is freed only when no
 * submission of its own is in the kernel (io_pending) and no request of
 * its own waits for the store (rpc.deferred): the kernel and the writer
 * thread may both still hold it after the socket is shut down.
 *
 * Closing: shutdown(2) makes the kernel finish the pending receive (0
 * bytes) and send (an error) at once; close(2) follows when both are back.
 */
#include "net.h"

#include <errno.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "frame.h"
#include "log.h"
#include "rpc.h"
#include "store.h"

/* Ring size: enough for a receive and a send per connection in flight
 * between two submits; a full queue is submitted and retried. */
#define NET_RING_ENTRIES 4096
/* Provided receive buffers per thread: 256 x 16 KiB = 4 MiB. */
#define NET_BUF_COUNT 256
#define NET_BUF_BYTES (16u << 10)
#define NET_BUF_GROUP 0
/* The unpacker's first buffer; it grows with the frames it sees. */
#define NET_UNPACKER_INIT_BYTES 4096
/* Output kept allocated on an idle connection; more is freed once sent. */
#define NET_OUT_KEEP_BYTES (64u << 10)
#define NET_BACKLOG 1024

enum net_tag {
	TAG_ACCEPT = 1,
	TAG_RECV,
	TAG_SEND,
	TAG_EVENT,
	TAG_TICK,
	TAG_IGNORE, /* cancellations: their own completion means nothing */
};
#define TAG_MASK 7u

struct obuf {
	char *data;
	size_t len;
	size_t cap;
};

struct net_thread;

struct conn {
	struct rpc_conn rpc;      /* first: rpc hands it back to us */
	struct net_thread *t;
	struct conn *prev, *next;
	int fd;
	msgpack_unpacker up;
	struct frame_scanner fs;
	enum frame_status frame_error;
	uint32_t frames_ready;    /* complete frames in the unpacker */
	struct obuf pend;         /* replies not yet handed to the kernel */
	struct obuf sending;      /* the buffer of the send in flight */
	size_t sent;              /* bytes of `sending` already sent */
	unsigned io_pending;
	bool recv_armed;
	bool recv_cancelled;
	bool send_armed;
	bool paused;
	bool read_eof;
	bool refused;             /* a bad frame was answered: close soon */
	bool closing;
	bool oom;
	uint64_t active_ms;       /* last byte in or out */
};

struct net_thread {
	struct net *net;
	struct rpc_worker rpc;
	pthread_t tid;
	bool started;
	struct io_uring ring;
	bool ring_ok;
	int listen_fd;
	bool accept_armed;
	int event_fd;
	uint64_t event_val;
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	uint8_t *bufs;
	struct __kernel_timespec tick;
	struct conn *conns;
	unsigned conns_len;
	bool stopping;
	uint64_t stop_deadline_ms;
};

struct net {
	struct net_config cfg;
	struct rpc_server *srv;
	struct net_thread *threads;
	unsigned threads_len;
	atomic_uint conns_open;
	atomic_bool stop;
	uint64_t next_conn_id;    /* atomic through __atomic builtins */
};

void net_config_default(struct net_config *cfg)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	cfg->host = "127.0.0.1";
	cfg->port = "7411";
	cfg->threads = cores > 0 ? (unsigned)cores : 1;
	cfg->conns_max = 10000;
	cfg->idle_timeout_s = 300;
	cfg->stall_timeout_s = 30;
	cfg->shutdown_timeout_s = 10;
	cfg->out_bytes_max = 8u << 20;
	cfg->deferred_max = 1024;
	cfg->message_bytes_max = 16u << 20;
	cfg->depth_max = 16;
}

static uint64_t net_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *net_tagged(void *p, enum net_tag tag)
{
	return (void *)((uintptr_t)p | tag);
}

/* A submission queue entry, submitting first when the queue is full. */
static struct io_uring_sqe *net_sqe(struct net_thread *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);

	while (!sqe) {
		io_uring_submit(&t->ring);
		sqe = io_uring_get_sqe(&t->ring);
	}
	return sqe;
}

/* --- output --- */

static int obuf_reserve(struct obuf *b, size_t extra)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->len + extra <= b->cap)
		return 0;
	while (cap < b->len + extra)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

static void obuf_free(struct obuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* The packer's sink: every reply lands in pend. */
static int conn_write(void *data, const char *buf, size_t len)
{
	struct conn *c = data;

	if (len == 0)
		return 0;
	if (obuf_reserve(&c->pend, len)) {
		c->oom = true;
		return -1;
	}
	memcpy(c->pend.data + c->pend.len, buf, len);
	c->pend.len += len;
	return 0;
}

static size_t conn_unsent(const struct conn *c)
{
	return c->pend.len + c->sending.len - c->sent;
}

static void conn_send_next(struct conn *c)
{
	struct net_thread *t = c->t;
	struct io_uring_sqe *sqe;
	struct obuf tmp;

	if (c->send_armed || c->closing)
		return;
	if (c->sent == c->sending.len) {
		if (c->pend.len == 0)
			return;
		tmp = c->sending;
		c->sending = c->pend;
		c->pend = tmp;
		c->pend.len = 0;
		c->sent = 0;
	}
	sqe = net_sqe(t);
	io_uring_prep_send(sqe, c->fd, c->sending.data + c->sent,
			   c->sending.len - c->sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, net_tagged(c, TAG_SEND));
	c->send_armed = true;
	c->io_pending++;
}

/* --- connection life --- */

static void conn_maybe_free(struct conn *c)
{
	struct net_thread *t = c->t;

	if (!c->closing || c->io_pending || c->rpc.deferred)
		return;
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	t->conns_len--;
	atomic_fetch_sub(&t->net->conns_open, 1);
	STATS_ADD(t->rpc.stats.conns_open, -1);
	STATS_ADD(t->rpc.stats.conns_closed, 1);
	msgpack_unpacker_destroy(&c->up);
	obuf_free(&c->pend);
	obuf_free(&c->sending);
	free(c);
}

static void conn_close(struct conn *c, const char *why, int err)
{
	if (c->closing)
		return;
	log_msg(LOG_DEBUG, "connection %llu closed: %s%s%s",
		(unsigned long long)c->rpc.id, why, err ? ": " : "",
		err ? strerror(err) : "");
	c->closing = true;
	c->rpc.gone = true;
	if (c->rpc.sub && c->t->net->srv->sub_closed)
		c->t->net->srv->sub_closed(&c->rpc);
	/* Ends the pending receive and send; their completions free.  The
	 * caller frees with conn_maybe_free() as its last use of c. */
	shutdown(c->fd, SHUT_RDWR);
}

static void conn_arm_recv(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->recv_armed || c->closing || c->read_eof || c->paused ||
	    c->frame_error != FRAME_MORE || c->t->stopping)
		return;
	sqe = net_sqe(c->t);
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = NET_BUF_GROUP;
	io_uring_sqe_set_data(sqe, net_tagged(c, TAG_RECV));
	c->recv_armed = true;
	c->recv_cancelled = false;
	c->io_pending++;
}

static void conn_cancel_recv(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (!c->recv_armed || c->recv_cancelled)
		return;
	c->recv_cancelled = true;
	sqe = net_sqe(c->t);
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)net_tagged(c,
			       TAG_RECV), 0);
	io_uring_sqe_set_data(sqe, net_tagged(NULL, TAG_IGNORE));
}

/* True when the connection may not take more requests for now. */
static bool conn_full(const struct conn *c)
{
	const struct net_config *cfg = &c->t->net->cfg;

	return conn_unsent(c) > cfg->out_bytes_max ||
	       c->rpc.deferred >= cfg->deferred_max;
}

/* Nothing left to answer or send. */
static bool conn_drained(const struct conn *c)
{
	return c->rpc.deferred == 0 && conn_unsent(c) == 0 &&
	       c->frames_ready == 0;
}

/*
 * After any event on c: send what was packed, pause or resume reading,
 * and close once a finished or refused stream has nothing left.
 */
static void conn_settle(struct conn *c)
{
	if (c->closing)
		return;
	if (c->oom)
		return conn_close(c, "out of memory for its output", 0);
	/* A subscriber with room takes more notifications before the send. */
	if (c->rpc.sub && conn_unsent(c) <= c->t->net->cfg.out_bytes_max / 2 &&
	    c->t->net->srv->sub_writable)
		c->t->net->srv->sub_writable(&c->rpc);
	conn_send_next(c);
	if (conn_full(c)) {
		c->paused = true;
		conn_cancel_recv(c);
	} else if (c->paused && conn_unsent(c) <=
		   c->t->net->cfg.out_bytes_max / 2) {
		c->paused = false;
	}
	if ((c->read_eof || c->t->stopping ||
	     c->frame_error != FRAME_MORE) && conn_drained(c))
		return conn_close(c, "finished", 0);
	if (c->t->stopping)
		conn_cancel_recv(c);
	conn_arm_recv(c);
}

static const char *net_frame_message(enum frame_status st,
				     enum proto_code *code)
{
	*code = PROTO_TOO_LARGE;
	if (st == FRAME_TOO_LARGE)
		return "message over the size limit";
	if (st == FRAME_TOO_DEEP)
		return "message nested deeper than the limit";
	*code = PROTO_BAD_REQUEST;
	return "bytes that are not msgpack";
}

/* Dispatches every complete frame, as long as the connection has room. */
static void conn_process(struct conn *c)
{
	msgpack_unpacked res;
	enum proto_code code;
	const char *msg;
	uint64_t msgid;

	msgpack_unpacked_init(&res);
	while (c->frames_ready && !conn_full(c) && !c->closing) {
		if (msgpack_unpacker_next(&c->up, &res) !=
		    MSGPACK_UNPACK_SUCCESS) {
			/* The scanner and msgpack-c disagree: a bug. */
			log_msg(LOG_ERROR, "connection %llu: unpacker lost "
				"a frame", (unsigned long long)c->rpc.id);
			conn_close(c, "unpacker error", 0);
			break;
		}
		c->frames_ready--;
		if (rpc_handle(&c->rpc, &res.data) < 0) {
			STATS_ADD(c->t->rpc.stats.conns_bad_stream, 1);
			conn_close(c, "an object that is not msgpack-RPC", 0);
			break;
		}
	}
	msgpack_unpacked_destroy(&res);
	/* A refused frame is answered once, after every frame before it;
	 * conn_settle() closes once the replies still owed are sent. */
	if (c->frames_ready == 0 && c->frame_error != FRAME_MORE &&
	    !c->refused && !c->closing) {
		msg = net_frame_message(c->frame_error, &code);
		STATS_ADD(c->t->rpc.stats.conns_bad_stream, 1);
		if (frame_msgid(&c->fs, &msgid))
			rpc_refuse(&c->rpc, msgid, code, msg);
		log_msg(LOG_DEBUG, "connection %llu: %s",
			(unsigned long long)c->rpc.id, msg);
		c->refused = true;
	}
	conn_settle(c);
}

/* Copies received bytes into the unpacker, frame by frame. */
static void conn_input(struct conn *c, const uint8_t *data, size_t len)
{
	size_t i = 0;

	c->active_ms = net_now_ms();
	STATS_ADD(c->t->rpc.stats.bytes_in, len);
	while (i < len && c->frame_error == FRAME_MORE) {
		size_t used;
		enum frame_status st = frame_scan(&c->fs, data + i, len - i,
						  &used);

		if (st != FRAME_MORE && st != FRAME_COMPLETE) {
			c->frame_error = st;
			break;
		}
		if (!msgpack_unpacker_reserve_buffer(&c->up, used)) {
			c->oom = true;
			break;
		}
		memcpy(msgpack_unpacker_buffer(&c->up), data + i, used);
		msgpack_unpacker_buffer_consumed(&c->up, used);
		c->frames_ready += st == FRAME_COMPLETE;
		i += used;
	}
}

/* --- rpc hooks --- */

static void net_conn_flush(struct rpc_conn *rc)
{
	struct conn *c = (struct conn *)rc;

	/* A deferred reply freed room: frames may wait for it. */
	conn_process(c);
	conn_maybe_free(c);
}

static size_t net_conn_room(const struct rpc_conn *rc)
{
	const struct conn *c = (const struct conn *)rc;
	size_t cap = c->t->net->cfg.out_bytes_max;

	return conn_unsent(c) >= cap ? 0 : cap - conn_unsent(c);
}

static void net_conn_release(struct rpc_conn *rc)
{
	conn_maybe_free((struct conn *)rc);
}

static void net_wake(void *arg)
{
	struct net_thread *t = arg;
	uint64_t one = 1;

	if (write(t->event_fd, &one, sizeof(one)) < 0)
		log_msg(LOG_ERROR, "thread %u: cannot wake: %s", t->rpc.index,
			strerror(errno));
}

/* --- completions --- */

static void net_accept(struct net_thread *t, int fd)
{
	struct net *net = t->net;
	struct conn *c;
	int one = 1;

	if (atomic_fetch_add(&net->conns_open, 1) >= net->cfg.conns_max) {
		atomic_fetch_sub(&net->conns_open, 1);
		STATS_ADD(t->rpc.stats.conns_refused, 1);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !msgpack_unpacker_init(&c->up, NET_UNPACKER_INIT_BYTES)) {
		free(c);
		atomic_fetch_sub(&net->conns_open, 1);
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->t = t;
	c->fd = fd;
	c->rpc.worker = &t->rpc;
	c->rpc.id = __atomic_add_fetch(&net->next_conn_id, 1,
				       __ATOMIC_RELAXED);
	msgpack_packer_init(&c->rpc.pk, c, conn_write);
	frame_init(&c->fs, net->cfg.message_bytes_max, net->cfg.depth_max);
	c->frame_error = FRAME_MORE;
	c->active_ms = net_now_ms();
	c->next = t->conns;
	if (t->conns)
		t->conns->prev = c;
	t->conns = c;
	t->conns_len++;
	STATS_ADD(t->rpc.stats.conns_accepted, 1);
	STATS_ADD(t->rpc.stats.conns_open, 1);
	conn_arm_recv(c);
}

static void net_arm_accept(struct net_thread *t)
{
	struct io_uring_sqe *sqe;

	if (t->accept_armed || t->stopping)
		return;
	sqe = net_sqe(t);
	io_uring_prep_multishot_accept(sqe, t->listen_fd, NULL, NULL,
				       SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, net_tagged(t, TAG_ACCEPT));
	t->accept_armed = true;
}

static void net_on_accept(struct net_thread *t, struct io_uring_cqe *cqe)
{
	if (cqe->res >= 0)
		net_accept(t, cqe->res);
	else if (cqe->res != -ECANCELED)
		log_msg(LOG_WARN, "thread %u: accept failed: %s",
			t->rpc.index, strerror(-cqe->res));
	/* A failed accept (EMFILE) is retried by the next tick, not in a
	 * tight loop. */
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		t->accept_armed = false;
		if (cqe->res >= 0)
			net_arm_accept(t);
	}
}

static void net_recycle(struct net_thread *t, unsigned bid)
{
	io_uring_buf_ring_add(t->br, t->bufs + (size_t)bid * NET_BUF_BYTES,
			      NET_BUF_BYTES, (unsigned short)bid,
			      io_uring_buf_ring_mask(NET_BUF_COUNT), 0);
	io_uring_buf_ring_advance(t->br, 1);
}

static void net_on_recv(struct conn *c, struct io_uring_cqe *cqe)
{
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

		if (cqe->res > 0 && !c->closing)
			conn_input(c, c->t->bufs + (size_t)bid * NET_BUF_BYTES,
				   (size_t)cqe->res);
		net_recycle(c->t, bid);
	}
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		c->recv_armed = false;
		c->io_pending--;
	}
	if (cqe->res == 0) {
		c->read_eof = true;
	} else if (cqe->res < 0 && cqe->res != -ENOBUFS &&
		   cqe->res != -ECANCELED) {
		conn_close(c, "receive failed", -cqe->res);
	}
	if (!c->closing)
		conn_process(c);
	conn_maybe_free(c);
}

static void net_on_send(struct conn *c, struct io_uring_cqe *cqe)
{
	c->send_armed = false;
	c->io_pending--;
	if (cqe->res < 0) {
		conn_close(c, "send failed", -cqe->res);
		return conn_maybe_free(c);
	}
	c->sent += (size_t)cqe->res;
	c->active_ms = net_now_ms();
	STATS_ADD(c->t->rpc.stats.bytes_out, (uint64_t)cqe->res);
	if (c->sent == c->sending.len) {
		c->sending.len = 0;
		c->sent = 0;
		if (c->sending.cap > NET_OUT_KEEP_BYTES)
			obuf_free(&c->sending);
	}
	/* Room freed may let paused frames run. */
	if (!c->closing)
		conn_process(c);
	conn_maybe_free(c);
}

static void net_arm_event(struct net_thread *t)
{
	struct io_uring_sqe *sqe = net_sqe(t);

	io_uring_prep_read(sqe, t->event_fd, &t->event_val,
			   sizeof(t->event_val), 0);
	io_uring_sqe_set_data(sqe, net_tagged(t, TAG_EVENT));
}

static void net_arm_tick(struct net_thread *t)
{
	struct io_uring_sqe *sqe = net_sqe(t);

	io_uring_prep_timeout(sqe, &t->tick, 0, 0);
	io_uring_sqe_set_data(sqe, net_tagged(t, TAG_TICK));
}

static void net_begin_stop(struct net_thread *t)
{
	struct io_uring_sqe *sqe;

	if (t->stopping)
		return;
	t->stopping = true;
	t->stop_deadline_ms = net_now_ms() +
		(uint64_t)t->net->cfg.shutdown_timeout_s * 1000u;
	if (t->accept_armed) {
		sqe = net_sqe(t);
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)net_tagged(t,
				       TAG_ACCEPT), 0);
		io_uring_sqe_set_data(sqe, net_tagged(NULL, TAG_IGNORE));
	}
	for (struct conn *c = t->conns, *n; c; c = n) {
		n = c->next;
		conn_settle(c);
		conn_maybe_free(c);
	}
}

/* Once a second: idle and stalled connections, the stop deadline. */
static void net_sweep(struct net_thread *t)
{
	const struct net_config *cfg = &t->net->cfg;
	uint64_t now = net_now_ms();
	bool late = t->stopping && now >= t->stop_deadline_ms;

	for (struct conn *c = t->conns, *n; c; c = n) {
		uint64_t quiet = now - c->active_ms;

		n = c->next;
		if (c->closing)
			continue;
		if (late) {
			conn_close(c, "shutdown deadline", 0);
		} else if (conn_unsent(c) &&
			   quiet >= cfg->stall_timeout_s * 1000ull) {
			STATS_ADD(t->rpc.stats.conns_slow, 1);
			log_msg(LOG_WARN, "connection %llu dropped: %zu bytes "
				"unread for %u s", (unsigned long long)c->rpc.id,
				conn_unsent(c), cfg->stall_timeout_s);
			conn_close(c, "stalled reader", 0);
		} else if (conn_drained(c) && !c->rpc.sub &&
			   quiet >= cfg->idle_timeout_s * 1000ull) {
			STATS_ADD(t->rpc.stats.conns_idle, 1);
			conn_close(c, "idle", 0);
		}
		conn_maybe_free(c);
	}
	net_arm_accept(t);
}

/* The one switch over completion kinds; each case is one call. */
static void net_complete(struct net_thread *t, struct io_uring_cqe *cqe)
{
	uintptr_t ud = (uintptr_t)io_uring_cqe_get_data(cqe);
	void *p = (void *)(ud & ~(uintptr_t)TAG_MASK);

	switch ((enum net_tag)(ud & TAG_MASK)) {
	case TAG_ACCEPT:
		net_on_accept(t, cqe);
		break;
	case TAG_RECV:
		net_on_recv(p, cqe);
		break;
	case TAG_SEND:
		net_on_send(p, cqe);
		break;
	case TAG_EVENT:
		rpc_worker_run_posted(&t->rpc);
		if (atomic_load(&t->net->stop))
			net_begin_stop(t);
		net_arm_event(t);
		break;
	case TAG_TICK:
		net_sweep(t);
		net_arm_tick(t);
		break;
	case TAG_IGNORE:
		break;
	}
}

static void *net_thread_main(void *arg)
{
	struct net_thread *t = arg;
	struct io_uring_cqe *cqe;
	unsigned head, seen;

	net_arm_accept(t);
	net_arm_event(t);
	net_arm_tick(t);
	while (!t->stopping || t->conns_len > 0 || t->accept_armed) {
		int rc = io_uring_submit_and_wait(&t->ring, 1);

		if (rc < 0 && rc != -EINTR && rc != -EAGAIN &&
		    rc != -EBUSY) {
			log_msg(LOG_ERROR, "thread %u: io_uring_enter: %s",
				t->rpc.index, strerror(-rc));
			break;
		}
		seen = 0;
		io_uring_for_each_cqe(&t->ring, head, cqe) {
			net_complete(t, cqe);
			seen++;
		}
		io_uring_cq_advance(&t->ring, seen);
	}
	return NULL;
}

/* --- set-up --- */

static int net_listen(const struct net_config *cfg, char *errbuf,
		      size_t len)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE,
	};
	struct addrinfo *ai;
	int one = 1;
	int fd, rc;

	rc = getaddrinfo(cfg->host, cfg->port, &hints, &ai);
	if (rc) {
		snprintf(errbuf, len, "cannot resolve %s:%s: %s", cfg->host,
			 cfg->port, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) ||
	    listen(fd, NET_BACKLOG)) {
		rc = -errno;
		snprintf(errbuf, len, "cannot listen on %s:%s: %s", cfg->host,
			 cfg->port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	return fd;
}

static int net_buffers(struct net_thread *t)
{
	struct io_uring_buf_reg reg = { 0 };
	int rc;

	t->br_bytes = NET_BUF_COUNT * sizeof(struct io_uring_buf);
	t->br = mmap(NULL, t->br_bytes, PROT_READ | PROT_WRITE,
		     MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (t->br == MAP_FAILED) {
		t->br = NULL;
		return -errno;
	}
	t->bufs = malloc((size_t)NET_BUF_COUNT * NET_BUF_BYTES);
	if (!t->bufs)
		return -ENOMEM;
	reg.ring_addr = (uint64_t)(uintptr_t)t->br;
	reg.ring_entries = NET_BUF_COUNT;
	reg.bgid = NET_BUF_GROUP;
	rc = io_uring_register_buf_ring(&t->ring, &reg, 0);
	if (rc)
		return rc;
	io_uring_buf_ring_init(t->br);
	for (unsigned i = 0; i < NET_BUF_COUNT; i++)
		io_uring_buf_ring_add(t->br, t->bufs + (size_t)i *
				      NET_BUF_BYTES, NET_BUF_BYTES,
				      (unsigned short)i,
				      io_uring_buf_ring_mask(NET_BUF_COUNT),
				      (int)i);
	io_uring_buf_ring_advance(t->br, NET_BUF_COUNT);
	return 0;
}

static int net_thread_init(struct net *net, struct net_thread *t,
			   unsigned i, struct store *store, char *errbuf,
			   size_t len)
{
	struct io_uring_params p = { 0 };
	int rc;

	t->net = net;
	t->listen_fd = -1;
	t->event_fd = -1;
	t->tick.tv_sec = 1;
	rc = rpc_worker_init(&t->rpc, net->srv, i);
	if (!rc)
		rc = store_reader_new(store, &t->rpc.reader);
	if (rc) {
		snprintf(errbuf, len, "thread %u: %s", i, strerror(-rc));
		return rc;
	}
	t->rpc.net = t;
	t->rpc.wake = net_wake;
	t->rpc.conn_flush = net_conn_flush;
	t->rpc.conn_release = net_conn_release;
	t->rpc.conn_room = net_conn_room;
	p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
	p.cq_entries = NET_RING_ENTRIES * 4;
	p.flags |= IORING_SETUP_CQSIZE;
	rc = io_uring_queue_init_params(NET_RING_ENTRIES, &t->ring, &p);
	t->ring_ok = rc == 0;
	if (!rc)
		rc = net_buffers(t);
	if (rc) {
		snprintf(errbuf, len, "thread %u: io_uring set-up: %s", i,
			 strerror(-rc));
		return rc;
	}
	t->event_fd = eventfd(0, EFD_CLOEXEC);
	if (t->event_fd < 0) {
		snprintf(errbuf, len, "eventfd: %s", strerror(errno));
		return -errno;
	}
	t->listen_fd = net_listen(&net->cfg, errbuf, len);
	return t->listen_fd < 0 ? t->listen_fd : 0;
}

int net_start(struct net **out, const struct net_config *cfg,
	      struct rpc_server *srv, struct store *store, char *errbuf,
	      size_t errbuf_len)
{
	struct net *net = calloc(1, sizeof(*net));
	int rc = 0;

	if (!net)
		return -ENOMEM;
	net->cfg = *cfg;
	net->srv = srv;
	net->threads_len = cfg->threads ? cfg->threads : 1;
	net->threads = calloc(net->threads_len, sizeof(*net->threads));
	srv->workers = calloc(net->threads_len, sizeof(*srv->workers));
	if (!net->threads || !srv->workers) {
		free(srv->workers);
		free(net->threads);
		free(net);
		return -ENOMEM;
	}
	*out = net;
	for (unsigned i = 0; i < net->threads_len && !rc; i++) {
		rc = net_thread_init(net, &net->threads[i], i, store, errbuf,
				     errbuf_len);
		srv->workers[i] = &net->threads[i].rpc;
		srv->workers_len = i + 1;
	}
	for (unsigned i = 0; i < net->threads_len && !rc; i++) {
		rc = -pthread_create(&net->threads[i].tid, NULL,
				     net_thread_main, &net->threads[i]);
		net->threads[i].started = rc == 0;
	}
	return rc;
}

void net_shutdown(struct net *net)
{
	atomic_store(&net->stop, true);
	for (unsigned i = 0; i < net->threads_len; i++) {
		if (net->threads[i].started)
			net_wake(&net->threads[i]);
	}
	for (unsigned i = 0; i < net->threads_len; i++) {
		if (net->threads[i].started)
			pthread_join(net->threads[i].tid, NULL);
		net->threads[i].started = false;
	}
}

void net_free(struct net *net)
{
	if (!net)
		return;
	for (unsigned i = 0; i < net->threads_len; i++) {
		struct net_thread *t = &net->threads[i];

		if (t->ring_ok)
			io_uring_queue_exit(&t->ring);
		if (t->listen_fd >= 0)
			close(t->listen_fd);
		if (t->event_fd >= 0)
			close(t->event_fd);
		if (t->br)
			munmap(t->br, t->br_bytes);
		free(t->bufs);
		store_reader_free(t->rpc.reader);
		rpc_worker_destroy(&t->rpc);
	}
	free(net->srv->workers);
	net->srv->workers = NULL;
	net->srv->workers_len = 0;
	free(net->threads);
	free(net);
}
