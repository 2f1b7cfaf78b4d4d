/*
 * Tests for client: framing, pipelining and msgid matching, error objects,
 * the sticky failure states, limits, and address parsing.  The server is a
 * socketpair end driven by the test itself (written before the client reads,
 * read after the client writes), except for the large pipelined transfer,
 * which needs a peer running at the same time: an echo thread.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "client.h"

/* The test's end of the connection. */
struct peer {
	int fd;
	msgpack_unpacker unpacker;
	msgpack_unpacked msg;
};

static void peer_init(struct peer *p, int fd)
{
	p->fd = fd;
	msgpack_unpacker_init(&p->unpacker, 4096);
	msgpack_unpacked_init(&p->msg);
}

static void peer_destroy(struct peer *p)
{
	msgpack_unpacked_destroy(&p->msg);
	msgpack_unpacker_destroy(&p->unpacker);
	if (p->fd >= 0)
		close(p->fd);
}

/* Blocks for the next whole message; NULL at end of file. */
static const msgpack_object *peer_read(struct peer *p)
{
	while (msgpack_unpacker_next(&p->unpacker, &p->msg) !=
	       MSGPACK_UNPACK_SUCCESS) {
		ssize_t n;

		msgpack_unpacker_reserve_buffer(&p->unpacker, 65536);
		n = read(p->fd, msgpack_unpacker_buffer(&p->unpacker),
			 msgpack_unpacker_buffer_capacity(&p->unpacker));
		if (n <= 0)
			return NULL;
		msgpack_unpacker_buffer_consumed(&p->unpacker, (size_t)n);
	}
	return &p->msg.data;
}

static void write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
	}
}

/* A packer over a fresh buffer; flush() writes and resets it. */
struct out {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void out_init(struct out *o)
{
	msgpack_sbuffer_init(&o->sb);
	msgpack_packer_init(&o->pk, &o->sb, msgpack_sbuffer_write);
}

static void out_flush(struct out *o, int fd)
{
	write_all(fd, o->sb.data, o->sb.size);
	msgpack_sbuffer_destroy(&o->sb);
	out_init(o);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* [1, msgid, nil, "result"] */
static void pack_ok(msgpack_packer *pk, uint32_t msgid, const char *result)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_int(pk, 1);
	msgpack_pack_uint32(pk, msgid);
	msgpack_pack_nil(pk);
	pack_str(pk, result);
}

/* [1, msgid, {code, message, field}, nil] */
static void pack_err(msgpack_packer *pk, uint32_t msgid, const char *code,
		     const char *message, const char *field)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_int(pk, 1);
	msgpack_pack_uint32(pk, msgid);
	msgpack_pack_map(pk, field ? 3 : 2);
	pack_str(pk, "code");
	pack_str(pk, code);
	pack_str(pk, "message");
	pack_str(pk, message);
	if (field) {
		pack_str(pk, "field");
		pack_str(pk, field);
	}
	msgpack_pack_nil(pk);
}

static bool obj_is(const msgpack_object *o, const char *s)
{
	const char *p;
	size_t len;

	return o && client_obj_str(o, &p, &len) && len == strlen(s) &&
	       memcmp(p, s, len) == 0;
}

/* Checks that req is [0, msgid, method, params] and returns params. */
static const msgpack_object *check_request(const msgpack_object *req,
					   uint32_t msgid, const char *method)
{
	CHECK(req != NULL);
	if (!req)
		return NULL;
	CHECK(req->type == MSGPACK_OBJECT_ARRAY && req->via.array.size == 4);
	if (req->type != MSGPACK_OBJECT_ARRAY || req->via.array.size != 4)
		return NULL;
	CHECK_EQ_INT(req->via.array.ptr[0].via.u64, 0);
	CHECK_EQ_INT(req->via.array.ptr[1].via.u64, msgid);
	CHECK(obj_is(&req->via.array.ptr[2], method));
	CHECK(req->via.array.ptr[3].type == MSGPACK_OBJECT_ARRAY);
	return &req->via.array.ptr[3];
}

static void open_pair(struct client **c, struct peer *p,
		      const struct client_opts *opts)
{
	int sv[2];

	CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	CHECK_EQ_INT(client_open_fd(sv[0], opts, c), 0);
	peer_init(p, sv[1]);
}

/* The packed params [{"a": 1}]. */
static void pack_params(msgpack_sbuffer *sb)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 1);
	pack_str(&pk, "a");
	msgpack_pack_int(&pk, 1);
}

static void check_pipelined_requests(struct peer *p)
{
	const msgpack_object *params;

	params = check_request(peer_read(p), 1, "ping");
	CHECK(params && params->via.array.size == 0);
	params = check_request(peer_read(p), 2, "echo");
	CHECK(params && params->via.array.size == 1 &&
	      obj_is(&params->via.array.ptr[0].via.map.ptr[0].key, "a"));
	check_request(peer_read(p), 3, "third");
}

static void test_pipelining(void)
{
	struct client *c;
	struct peer p;
	struct out o;
	struct client_msg m;
	struct client_error err;
	msgpack_sbuffer params;
	uint32_t id = 0;

	open_pair(&c, &p, NULL);
	pack_params(&params);
	CHECK_EQ_INT(client_send(c, "ping", NULL, 0, &id), 0);
	CHECK_EQ_INT(id, 1);
	CHECK_EQ_INT(client_send(c, "echo", params.data, params.size, &id), 0);
	CHECK_EQ_INT(client_send(c, "third", NULL, 0, &id), 0);
	CHECK_EQ_INT(id, 3);
	check_pipelined_requests(&p);

	/* Answers out of order, with a notification among them. */
	out_init(&o);
	pack_ok(&o.pk, 3, "c");
	msgpack_pack_array(&o.pk, 3);
	msgpack_pack_int(&o.pk, 2);
	pack_str(&o.pk, "push");
	msgpack_pack_array(&o.pk, 0);
	pack_err(&o.pk, 1, "not_found", "no such record", "id");
	pack_ok(&o.pk, 2, "b");
	out_flush(&o, p.fd);

	CHECK_EQ_INT(client_recv(c, &m), 0);
	CHECK(m.type == CLIENT_RESPONSE && m.msgid == 3 && !m.error);
	CHECK(obj_is(m.result, "c"));
	CHECK_EQ_INT(client_recv(c, &m), 0);
	CHECK(m.type == CLIENT_NOTIFICATION && m.method_len == 4 &&
	      memcmp(m.method, "push", 4) == 0);
	CHECK_EQ_INT(client_recv(c, &m), 0);
	CHECK(m.type == CLIENT_RESPONSE && m.msgid == 1 && m.error);
	client_error_read(m.error, &err);
	CHECK_EQ_STR(err.code, "not_found");
	CHECK_EQ_STR(err.message, "no such record");
	CHECK_EQ_STR(err.field, "id");
	CHECK(m.result->type == MSGPACK_OBJECT_NIL);
	CHECK_EQ_INT(client_recv(c, &m), 0);
	CHECK(m.msgid == 2 && obj_is(m.result, "b"));

	msgpack_sbuffer_destroy(&params);
	msgpack_sbuffer_destroy(&o.sb);
	client_close(c);
	peer_destroy(&p);
}

static void test_call_skips_notifications(void)
{
	struct client *c;
	struct peer p;
	struct out o;
	struct client_msg m;

	open_pair(&c, &p, NULL);
	/* Written ahead: the client reads them after sending msgid 1. */
	out_init(&o);
	msgpack_pack_array(&o.pk, 3);
	msgpack_pack_int(&o.pk, 2);
	msgpack_pack_bin_with_body(&o.pk, "push", 4);
	msgpack_pack_nil(&o.pk);
	pack_ok(&o.pk, 1, "pong");
	out_flush(&o, p.fd);

	CHECK_EQ_INT(client_call(c, "ping", NULL, 0, &m), 0);
	CHECK(m.type == CLIENT_RESPONSE && m.msgid == 1 && !m.error);
	CHECK(obj_is(m.result, "pong"));
	check_request(peer_read(&p), 1, "ping");

	/* A response to a msgid never sent breaks the connection. */
	pack_ok(&o.pk, 99, "stray");
	out_flush(&o, p.fd);
	CHECK_EQ_INT(client_call(c, "ping", NULL, 0, &m), -EPROTO);
	CHECK(strstr(client_detail(c), "not sent") != NULL);
	CHECK_EQ_INT(client_send(c, "ping", NULL, 0, NULL), -EPROTO);

	msgpack_sbuffer_destroy(&o.sb);
	client_close(c);
	peer_destroy(&p);
}

/* Writes bytes as the whole server output and expects client_recv rc. */
static void check_bad_stream(const char *bytes, size_t len, int rc)
{
	struct client *c;
	struct peer p;
	struct client_msg m;

	open_pair(&c, &p, NULL);
	write_all(p.fd, bytes, len);
	CHECK_EQ_INT(client_recv(c, &m), rc);
	/* Sticky: the stream cannot be resynchronised. */
	CHECK_EQ_INT(client_recv(c, &m), rc);
	client_close(c);
	peer_destroy(&p);
}

static void test_bad_streams(void)
{
	check_bad_stream("\xc1", 1, -EPROTO);          /* never-used byte */
	check_bad_stream("\x80", 1, -EPROTO);          /* a map */
	check_bad_stream("\x93\x01\x01\xc0", 4, -EPROTO); /* 3-item response */
	check_bad_stream("\x94\x00\x01\xa1x\x90", 6, -EPROTO); /* a request */
	check_bad_stream("\x94\x01\xff\xc0\xc0", 5, -EPROTO);  /* msgid -1 */
	check_bad_stream("\x94\x01\xcf\x00\x00\x00\x01\x00\x00\x00\x00"
			 "\xc0\xc0", 13, -EPROTO);     /* msgid > u32 */
	check_bad_stream("\x93\x02\x01\x90", 4, -EPROTO); /* int method */
}

static void test_end_of_file_after_answer(void)
{
	struct client *c;
	struct peer p;
	struct out o;
	struct client_msg m;

	open_pair(&c, &p, NULL);
	out_init(&o);
	pack_err(&o.pk, 1, "bad_request", "not msgpack", NULL);
	out_flush(&o, p.fd);
	shutdown(p.fd, SHUT_RDWR);

	/* The last answer is delivered before the end of file. */
	CHECK_EQ_INT(client_recv(c, &m), 0);
	CHECK(m.error != NULL);
	CHECK_EQ_INT(client_recv(c, &m), -ECONNRESET);
	CHECK(strstr(client_detail(c), "closed") != NULL);
	CHECK(client_send(c, "ping", NULL, 0, NULL) < 0);

	msgpack_sbuffer_destroy(&o.sb);
	client_close(c);
	peer_destroy(&p);
}

static void test_frame_limit(void)
{
	struct client_opts opts;
	struct client *c;
	struct peer p;
	struct out o;
	struct client_msg m;
	char *big = calloc(1, 4000);

	client_opts_default(&opts);
	opts.frame_bytes_max = 1024;
	open_pair(&c, &p, &opts);
	out_init(&o);
	pack_ok(&o.pk, 1, "small");
	msgpack_pack_array(&o.pk, 4);
	msgpack_pack_int(&o.pk, 1);
	msgpack_pack_int(&o.pk, 2);
	msgpack_pack_nil(&o.pk);
	msgpack_pack_str_with_body(&o.pk, big, 4000);
	out_flush(&o, p.fd);

	CHECK_EQ_INT(client_recv(c, &m), 0);
	CHECK_EQ_INT(m.msgid, 1);
	CHECK_EQ_INT(client_recv(c, &m), -EMSGSIZE);
	CHECK_EQ_INT(client_send(c, "ping", NULL, 0, NULL), -EMSGSIZE);

	free(big);
	msgpack_sbuffer_destroy(&o.sb);
	client_close(c);
	peer_destroy(&p);
}

static void test_timeout_is_not_sticky(void)
{
	struct client_opts opts;
	struct client *c;
	struct peer p;
	struct out o;
	struct client_msg m;

	client_opts_default(&opts);
	opts.timeout_ms = 10;
	open_pair(&c, &p, &opts);
	/* Nothing is ever written before this read, so it must time out. */
	CHECK_EQ_INT(client_recv(c, &m), -ETIMEDOUT);
	out_init(&o);
	pack_ok(&o.pk, 5, "late");
	out_flush(&o, p.fd);
	CHECK_EQ_INT(client_recv(c, &m), 0);
	CHECK_EQ_INT(m.msgid, 5);

	msgpack_sbuffer_destroy(&o.sb);
	client_close(c);
	peer_destroy(&p);
}

/* Echo server: answers every request with its params, until EOF. */
static void *echo_main(void *arg)
{
	struct peer *p = arg;
	const msgpack_object *req;
	struct out o;

	out_init(&o);
	while ((req = peer_read(p)) != NULL) {
		msgpack_pack_array(&o.pk, 4);
		msgpack_pack_int(&o.pk, 1);
		msgpack_pack_object(&o.pk, req->via.array.ptr[1]);
		msgpack_pack_nil(&o.pk);
		msgpack_pack_object(&o.pk, req->via.array.ptr[3]);
		out_flush(&o, p->fd);
	}
	msgpack_sbuffer_destroy(&o.sb);
	return NULL;
}

#define ECHO_REQUESTS 8
#define ECHO_BYTES (1u << 20)

/*
 * Eight 1 MiB requests written back to back while the echo thread writes
 * 1 MiB answers: far more than both socket buffers hold, so this finishes
 * only if the client reads while it writes.  The timeout turns a deadlock
 * into a failure instead of a hang.
 */
static void test_pipelined_echo(void)
{
	struct client_opts opts;
	struct client *c;
	struct peer p;
	pthread_t thread;
	struct client_msg m;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char *blob = malloc(ECHO_BYTES);
	int rc = 0;

	memset(blob, 'x', ECHO_BYTES);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_bin_with_body(&pk, blob, ECHO_BYTES);

	client_opts_default(&opts);
	opts.timeout_ms = 20000;
	open_pair(&c, &p, &opts);
	CHECK_EQ_INT(pthread_create(&thread, NULL, echo_main, &p), 0);
	for (int i = 0; i < ECHO_REQUESTS && rc == 0; i++)
		rc = client_send(c, "echo", sb.data, sb.size, NULL);
	CHECK_EQ_INT(rc, 0);
	for (uint32_t i = 1; i <= ECHO_REQUESTS && rc == 0; i++) {
		rc = client_recv(c, &m);
		CHECK_EQ_INT(rc, 0);
		if (rc)
			break;
		CHECK_EQ_INT(m.msgid, i);
		CHECK(m.result && m.result->type == MSGPACK_OBJECT_ARRAY &&
		      m.result->via.array.ptr[0].via.bin.size == ECHO_BYTES);
	}
	client_close(c); /* the echo thread sees end of file and returns */
	pthread_join(thread, NULL);
	peer_destroy(&p);
	msgpack_sbuffer_destroy(&sb);
	free(blob);
}

static void test_error_read(void)
{
	struct client_error err;
	msgpack_object o = { .type = MSGPACK_OBJECT_STR };
	char long_text[400];

	o.via.str.ptr = "plain failure";
	o.via.str.size = 13;
	client_error_read(&o, &err);
	CHECK_EQ_STR(err.code, "error");
	CHECK_EQ_STR(err.message, "plain failure");
	CHECK_EQ_STR(err.field, "");

	/* Cut on a character boundary: "广" is three bytes. */
	memset(long_text, 'a', sizeof(long_text));
	memcpy(long_text + CLIENT_ERROR_MESSAGE_MAX - 2, "\xe5\xb9\xbf", 3);
	o.via.str.ptr = long_text;
	o.via.str.size = sizeof(long_text);
	client_error_read(&o, &err);
	CHECK_EQ_INT(strlen(err.message), CLIENT_ERROR_MESSAGE_MAX - 2);

	o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
	o.via.u64 = 3;
	client_error_read(&o, &err);
	CHECK_EQ_STR(err.code, "error");
	CHECK(strstr(err.message, "type") != NULL);
}

static void test_hello(void)
{
	struct client *c;
	struct peer p;
	struct out o;
	struct client_error err;
	const msgpack_object *params;

	open_pair(&c, &p, NULL);
	out_init(&o);
	pack_ok(&o.pk, 1, "hi");
	pack_err(&o.pk, 2, "unauthorized", "wrong token", NULL);
	out_flush(&o, p.fd);

	CHECK_EQ_INT(client_hello(c, "s3cret", "matchctl", &err), 0);
	params = check_request(peer_read(&p), 1, "hello");
	CHECK(params && params->via.array.size == 1);
	if (params && params->via.array.size == 1) {
		const msgpack_object *map = &params->via.array.ptr[0];

		CHECK(obj_is(client_map_get(map, "token"), "s3cret"));
		CHECK(obj_is(client_map_get(map, "client"), "matchctl"));
		CHECK(client_map_get(map, "other") == NULL);
	}
	CHECK_EQ_INT(client_hello(c, "wrong", NULL, &err), -EACCES);
	CHECK_EQ_STR(err.code, "unauthorized");
	CHECK_EQ_STR(err.message, "wrong token");

	msgpack_sbuffer_destroy(&o.sb);
	client_close(c);
	peer_destroy(&p);
}

/* A listening socket on 127.0.0.1 with a kernel-chosen port. */
static int listen_tcp(int *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_EQ_INT(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	CHECK_EQ_INT(listen(fd, 4), 0);
	CHECK_EQ_INT(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* Connects through addr, answers one ping on the accepted socket. */
static void check_connect_ping(const char *addr, int listen_fd)
{
	struct client *c = NULL;
	struct peer p;
	struct out o;
	struct client_msg m;

	CHECK_EQ_INT(client_connect(addr, NULL, &c), 0);
	if (!c)
		return;
	peer_init(&p, accept(listen_fd, NULL, NULL));
	out_init(&o);
	pack_ok(&o.pk, 1, "pong");
	out_flush(&o, p.fd);
	CHECK_EQ_INT(client_call(c, "ping", NULL, 0, &m), 0);
	CHECK(obj_is(m.result, "pong"));
	msgpack_sbuffer_destroy(&o.sb);
	client_close(c);
	peer_destroy(&p);
}

static void test_connect(void)
{
	static const char *bad[] = {
		"localhost", "127.0.0.1:", ":7411", "127.0.0.1:99999",
		"127.0.0.1:0", "::1:7411", "[::1]7411", "127.0.0.1:7x",
	};
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct client *c;
	char addr[64];
	int port;
	int fd = listen_tcp(&port);

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	check_connect_ping(addr, fd);
	snprintf(addr, sizeof(addr), "localhost:%d", port);
	check_connect_ping(addr, fd);
	close(fd);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(client_connect(bad[i], NULL, &c), -EINVAL);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "/tmp/test_client.%d",
		 (int)getpid());
	unlink(sun.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_EQ_INT(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	CHECK_EQ_INT(listen(fd, 4), 0);
	check_connect_ping(sun.sun_path, fd);
	close(fd);
	unlink(sun.sun_path);
	CHECK_EQ_INT(client_connect(sun.sun_path, NULL, &c), -ENOENT);
}

int main(void)
{
	/* A write to a closed peer must fail with EPIPE, not end the test. */
	signal(SIGPIPE, SIG_IGN);
	test_pipelining();
	test_call_skips_notifications();
	test_bad_streams();
	test_end_of_file_after_answer();
	test_frame_limit();
	test_timeout_is_not_sticky();
	test_pipelined_echo();
	test_error_read();
	test_hello();
	test_connect();
	return check_exit("test_client");
}
