/*
 * client: blocking msgpack-RPC over a stream socket.  See client.h.
 *
 * Incoming bytes go straight into a msgpack_unpacker, which keeps a partial
 * frame across reads and hands out whole messages.  Three sticky states
 * decide what a failure costs: a corrupt incoming stream ends everything;
 * a failed or timed-out write ends sending (a frame may be half written);
 * end of file ends receiving, but responses already buffered are still
 * delivered first, so a server's last answer before it hangs up is seen.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Bytes asked of each read(2); the unpacker grows past it when a frame
 * is larger. */
#define READ_CHUNK_BYTES (64u << 10)
#define HOST_BYTES_MAX 256

struct client {
	int fd;
	struct client_opts opts;
	uint32_t msgid_next;
	int stream_err; /* -EPROTO / -EMSGSIZE: the stream is unusable */
	int tx_err;     /* sending failed; a frame may be half written */
	int rx_err;     /* end of file or a read error */
	char detail[160];
	msgpack_unpacker unpacker;
	msgpack_unpacked unpacked;
	msgpack_sbuffer head;   /* the request header being sent */
};

void client_opts_default(struct client_opts *opts)
{
	opts->timeout_ms = CLIENT_TIMEOUT_MS_DEFAULT;
	opts->frame_bytes_max = CLIENT_FRAME_BYTES_MAX_DEFAULT;
}

__attribute__((format(printf, 3, 4)))
static int fail(struct client *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
	return rc;
}

const char *client_detail(const struct client *c)
{
	return c->detail;
}

int client_open_fd(int fd, const struct client_opts *opts,
		   struct client **out)
{
	struct client *c = calloc(1, sizeof(*c));

	if (!c || !msgpack_unpacker_init(&c->unpacker, READ_CHUNK_BYTES)) {
		free(c);
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	if (opts)
		c->opts = *opts;
	else
		client_opts_default(&c->opts);
	c->msgid_next = 1;
	msgpack_unpacked_init(&c->unpacked);
	msgpack_sbuffer_init(&c->head);
	*out = c;
	return 0;
}

void client_close(struct client *c)
{
	if (!c)
		return;
	close(c->fd);
	msgpack_unpacked_destroy(&c->unpacked);
	msgpack_unpacker_destroy(&c->unpacker);
	msgpack_sbuffer_destroy(&c->head);
	free(c);
}

/* Waits for events on fd.  Returns the revents or -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do {
		n = poll(&p, 1, timeout_ms > 0 ? timeout_ms : -1);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	return p.revents;
}

static int set_nonblocking(int fd, bool on)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0)
		return -errno;
	flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, flags) < 0 ? -errno : 0;
}

/* connect(2) bounded by timeout_ms; fd is blocking again afterwards. */
static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len,
			   int timeout_ms)
{
	int rc = set_nonblocking(fd, true);
	int soerr = 0;
	socklen_t soerr_len = sizeof(soerr);

	if (rc)
		return rc;
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		rc = wait_fd(fd, POLLOUT, timeout_ms);
		if (rc < 0)
			return rc;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len))
			return -errno;
		if (soerr)
			return -soerr;
	}
	return set_nonblocking(fd, false);
}

/*
 * Splits "HOST:PORT" or "[HOST]:PORT" into host (NUL-terminated, at most
 * HOST_BYTES_MAX bytes) and *port.  Returns 0 or -EINVAL.
 */
static int split_addr(const char *addr, char *host, const char **port)
{
	const char *colon;
	const char *host_start = addr;
	size_t host_len;

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		host_start = addr + 1;
		host_len = (size_t)(close - host_start);
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
			return -EINVAL;
		host_len = (size_t)(colon - addr);
	}
	*port = colon + 1;
	if (host_len == 0 || host_len >= HOST_BYTES_MAX || !**port ||
	    strspn(*port, "0123456789") != strlen(*port) ||
	    strlen(*port) > 5 || atoi(*port) < 1 || atoi(*port) > 65535)
		return -EINVAL;
	memcpy(host, host_start, host_len);
	host[host_len] = '\0';
	return 0;
}

static int connect_unix(const char *path, int timeout_ms, int *fd_out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;
	int rc;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -EINVAL;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect_timeout(fd, (const struct sockaddr *)&sun, sizeof(sun),
			     timeout_ms);
	if (rc) {
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

static int connect_tcp(const char *addr, int timeout_ms, int *fd_out)
{
	char host[HOST_BYTES_MAX];
	const char *port;
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *list;
	int rc = split_addr(addr, host, &port);
	int one = 1;

	if (rc)
		return rc;
	if (getaddrinfo(host, port, &hints, &list))
		return -ENOENT;
	rc = -ECONNREFUSED;
	for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
				ai->ai_protocol);

		if (fd < 0) {
			rc = -errno;
			continue;
		}
		rc = connect_timeout(fd, ai->ai_addr, ai->ai_addrlen,
				     timeout_ms);
		if (rc) {
			close(fd);
			continue;
		}
		/* Requests are small and latency matters more than
		 * packet count. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		*fd_out = fd;
		break;
	}
	freeaddrinfo(list);
	return rc;
}

int client_connect(const char *addr, const struct client_opts *opts,
		   struct client **out)
{
	struct client_opts defaults;
	int fd = -1;
	int rc;

	if (!opts) {
		client_opts_default(&defaults);
		opts = &defaults;
	}
	if (strchr(addr, '/'))
		rc = connect_unix(addr, opts->timeout_ms, &fd);
	else
		rc = connect_tcp(addr, opts->timeout_ms, &fd);
	if (rc)
		return rc;
	return client_open_fd(fd, opts, out);
}

/*
 * Reads what is available into the unpacker.  The caller has polled.
 * Returns 0 (also when nothing was there) or sets and returns rx_err.
 */
static int read_some(struct client *c)
{
	ssize_t n;

	if (!msgpack_unpacker_reserve_buffer(&c->unpacker, READ_CHUNK_BYTES))
		return -ENOMEM;
	n = recv(c->fd, msgpack_unpacker_buffer(&c->unpacker),
		 msgpack_unpacker_buffer_capacity(&c->unpacker), MSG_DONTWAIT);
	if (n > 0) {
		msgpack_unpacker_buffer_consumed(&c->unpacker, (size_t)n);
		return 0;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == 0)
		c->rx_err = fail(c, -ECONNRESET,
				 "connection closed by the server");
	else
		c->rx_err = fail(c, -errno, "read: %s", strerror(errno));
	return c->rx_err;
}

static int pack_head(struct client *c, const char *method, uint32_t msgid)
{
	msgpack_packer pk;
	size_t len = strlen(method);

	c->head.size = 0;
	msgpack_packer_init(&pk, &c->head, msgpack_sbuffer_write);
	if (msgpack_pack_array(&pk, 4) || msgpack_pack_uint8(&pk, 0) ||
	    msgpack_pack_uint32(&pk, msgid) ||
	    msgpack_pack_str_with_body(&pk, method, len))
		return -ENOMEM;
	return 0;
}

/* Drops the n bytes just written from the front of iov[*idx..1]. */
static void iov_advance(struct iovec *iov, int *idx, size_t n)
{
	while (n > 0 && *idx < 2) {
		size_t take = n < iov[*idx].iov_len ? n : iov[*idx].iov_len;

		iov[*idx].iov_base = (char *)iov[*idx].iov_base + take;
		iov[*idx].iov_len -= take;
		n -= take;
		if (iov[*idx].iov_len == 0)
			(*idx)++;
	}
	while (*idx < 2 && iov[*idx].iov_len == 0)
		(*idx)++;
}

/* Whether to keep reading while writing: not past a frame's worth. */
static bool may_read(const struct client *c)
{
	return !c->rx_err && msgpack_unpacker_message_size(&c->unpacker) <
		c->opts.frame_bytes_max;
}

static int write_frame(struct client *c, struct iovec *iov)
{
	struct msghdr mh = { 0 };
	int idx = 0;

	iov_advance(iov, &idx, 0);
	while (idx < 2) {
		short events = POLLOUT | (may_read(c) ? POLLIN : 0);
		int rev = wait_fd(c->fd, events, c->opts.timeout_ms);
		ssize_t n;

		if (rev < 0)
			return fail(c, rev, "write: %s", strerror(-rev));
		if ((rev & POLLIN) && read_some(c) == -ENOMEM)
			return -ENOMEM;
		if (!(rev & (POLLOUT | POLLERR | POLLHUP)))
			continue;
		mh.msg_iov = iov + idx;
		mh.msg_iovlen = (size_t)(2 - idx);
		n = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return fail(c, -errno, "write: %s", strerror(errno));
		iov_advance(iov, &idx, (size_t)n);
	}
	return 0;
}

int client_send(struct client *c, const char *method, const void *params,
		size_t params_len, uint32_t *msgid)
{
	static const char no_params[1] = { '\x90' };
	uint32_t id = c->msgid_next;
	struct iovec iov[2];
	int rc;

	if (c->stream_err)
		return c->stream_err;
	if (c->tx_err)
		return c->tx_err;
	if (!params) {
		params = no_params;
		params_len = sizeof(no_params);
	}
	rc = pack_head(c, method, id);
	if (rc)
		return fail(c, rc, "out of memory");
	iov[0] = (struct iovec){ c->head.data, c->head.size };
	iov[1] = (struct iovec){ (void *)params, params_len };
	rc = write_frame(c, iov);
	if (rc) {
		c->tx_err = rc;
		return rc;
	}
	/* msgid 0 is avoided so that a zeroed slot never matches. */
	c->msgid_next = id == UINT32_MAX ? 1 : id + 1;
	if (msgid)
		*msgid = id;
	return 0;
}

static int bad_message(struct client *c, const char *what)
{
	c->stream_err = fail(c, -EPROTO, "%s", what);
	return c->stream_err;
}

static int decode(struct client *c, const msgpack_object *o,
		  struct client_msg *m)
{
	const msgpack_object *a = o->via.array.ptr;
	uint32_t n = o->via.array.size;

	if (o->type != MSGPACK_OBJECT_ARRAY || n < 3 ||
	    a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return bad_message(c, "message is not a msgpack-RPC message");
	memset(m, 0, sizeof(*m));
	if (a[0].via.u64 == CLIENT_RESPONSE && n == 4) {
		if (a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    a[1].via.u64 > UINT32_MAX)
			return bad_message(c, "response msgid is not a u32");
		m->type = CLIENT_RESPONSE;
		m->msgid = (uint32_t)a[1].via.u64;
		m->error = a[2].type == MSGPACK_OBJECT_NIL ? NULL : &a[2];
		m->result = &a[3];
		return 0;
	}
	if (a[0].via.u64 == CLIENT_NOTIFICATION && n == 3) {
		if (!client_obj_str(&a[1], &m->method, &m->method_len))
			return bad_message(c, "notification method is not "
					   "a string");
		m->type = CLIENT_NOTIFICATION;
		m->params = &a[2];
		return 0;
	}
	return bad_message(c, "message is neither a response nor a "
			   "notification");
}

static int too_large(struct client *c)
{
	c->stream_err = fail(c, -EMSGSIZE, "a message from the server is "
			     "over %zu bytes", c->opts.frame_bytes_max);
	return c->stream_err;
}

/*
 * A whole frame over the limit is refused as well as a partial one, so
 * that the limit does not depend on how the bytes happened to arrive.
 */
int client_recv(struct client *c, struct client_msg *msg)
{
	for (;;) {
		msgpack_unpack_return r;
		size_t frame_bytes = 0;
		int rev;

		if (c->stream_err)
			return c->stream_err;
		r = msgpack_unpacker_next_with_size(&c->unpacker,
						    &c->unpacked,
						    &frame_bytes);
		if (r == MSGPACK_UNPACK_CONTINUE)
			frame_bytes = msgpack_unpacker_message_size(
				&c->unpacker);
		if (frame_bytes > c->opts.frame_bytes_max)
			return too_large(c);
		if (r == MSGPACK_UNPACK_SUCCESS)
			return decode(c, &c->unpacked.data, msg);
		if (r == MSGPACK_UNPACK_PARSE_ERROR)
			return bad_message(c, "bytes from the server are not "
					   "msgpack");
		if (r == MSGPACK_UNPACK_NOMEM_ERROR)
			return fail(c, -ENOMEM, "out of memory");
		if (c->rx_err)
			return c->rx_err;
		rev = wait_fd(c->fd, POLLIN, c->opts.timeout_ms);
		if (rev < 0)
			return fail(c, rev, "read: %s", strerror(-rev));
		if (read_some(c) == -ENOMEM)
			return fail(c, -ENOMEM, "out of memory");
	}
}

int client_call(struct client *c, const char *method, const void *params,
		size_t params_len, struct client_msg *msg)
{
	uint32_t id;
	int rc = client_send(c, method, params, params_len, &id);

	while (rc == 0) {
		rc = client_recv(c, msg);
		if (rc || msg->type == CLIENT_NOTIFICATION)
			continue;
		if (msg->msgid != id)
			return bad_message(c, "response to a request that was "
					   "not sent");
		return 0;
	}
	return rc;
}

/* Copies a str/bin into dst, cut on a UTF-8 boundary when too long. */
static void copy_text(char *dst, size_t cap, const msgpack_object *o)
{
	const char *s;
	size_t len;

	if (!o || !client_obj_str(o, &s, &len)) {
		dst[0] = '\0';
		return;
	}
	if (len >= cap) {
		len = cap - 1;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(dst, s, len);
	dst[len] = '\0';
}

void client_error_read(const msgpack_object *error, struct client_error *out)
{
	memset(out, 0, sizeof(*out));
	if (error->type == MSGPACK_OBJECT_MAP) {
		copy_text(out->code, sizeof(out->code),
			  client_map_get(error, "code"));
		copy_text(out->message, sizeof(out->message),
			  client_map_get(error, "message"));
		copy_text(out->field, sizeof(out->field),
			  client_map_get(error, "field"));
	} else if (error->type == MSGPACK_OBJECT_STR ||
		   error->type == MSGPACK_OBJECT_BIN) {
		copy_text(out->message, sizeof(out->message), error);
	} else {
		snprintf(out->message, sizeof(out->message),
			 "error object of msgpack type %d", (int)error->type);
	}
	if (!out->code[0])
		snprintf(out->code, sizeof(out->code), "error");
}

int client_hello(struct client *c, const char *token, const char *name,
		 struct client_error *err)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct client_msg msg;
	int rc = 0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_pack_array(&pk, 1) ||
	    msgpack_pack_map(&pk, (token != NULL) + (name != NULL)))
		rc = -ENOMEM;
	if (rc == 0 && token && (msgpack_pack_str_with_body(&pk, "token", 5) ||
	    msgpack_pack_str_with_body(&pk, token, strlen(token))))
		rc = -ENOMEM;
	if (rc == 0 && name && (msgpack_pack_str_with_body(&pk, "client", 6) ||
	    msgpack_pack_str_with_body(&pk, name, strlen(name))))
		rc = -ENOMEM;
	if (rc == 0)
		rc = client_call(c, "hello", sb.data, sb.size, &msg);
	if (rc == 0 && msg.error) {
		client_error_read(msg.error, err);
		rc = -EACCES;
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

bool client_obj_str(const msgpack_object *o, const char **s, size_t *len)
{
	if (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN)
		return false;
	*s = o->via.str.ptr;
	*len = o->via.str.size;
	return true;
}

const msgpack_object *client_map_get(const msgpack_object *map,
				     const char *key)
{
	size_t key_len = strlen(key);

	if (map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];
		const char *s;
		size_t len;

		if (client_obj_str(&kv->key, &s, &len) && len == key_len &&
		    memcmp(s, key, len) == 0)
			return &kv->val;
	}
	return NULL;
}
