/*
 * Unit tests for rpc: which objects are requests, what gets answered and
 * with which error, the token rule, limits named by field path, msgid
 * echo, and the method table.
 */
#include <errno.h>

#include "check.h"
#include "rpc.h"

static struct rpc_server srv;
static struct rpc_worker worker;
static struct rpc_conn conn;
static msgpack_sbuffer out;

static void echo_args(struct rpc_call *call)
{
	msgpack_packer *pk = rpc_reply(call);

	msgpack_pack_uint32(pk, call->args ? call->args->via.map.size : 0);
	rpc_reply_end(call);
}

static const struct rpc_method test_methods[] = {
	{ "echo.count", echo_args, 0 },
};

static void setup(const char *token)
{
	memset(&srv, 0, sizeof(srv));
	proto_limits_default(&srv.limits);
	srv.limits.string_bytes_max = 8;
	srv.limits.list_len_max = 3;
	srv.version = "test";
	if (token) {
		snprintf(srv.token, sizeof(srv.token), "%s", token);
		srv.token_len = strlen(token);
	}
	CHECK_EQ_INT(rpc_server_add(&srv, rpc_builtin_methods,
				    rpc_builtin_methods_len), 0);
	CHECK_EQ_INT(rpc_server_add(&srv, test_methods, 1), 0);
	CHECK_EQ_INT(rpc_server_add(&srv, test_methods, 1), -EEXIST);
	rpc_worker_init(&worker, &srv, 0);
	memset(&conn, 0, sizeof(conn));
	conn.worker = &worker;
	msgpack_sbuffer_clear(&out);
	msgpack_packer_init(&conn.pk, &out, msgpack_sbuffer_write);
}

/* Feeds the packed object in buf to rpc_handle; returns its result. */
static int feed(msgpack_sbuffer *buf)
{
	msgpack_unpacked u;
	size_t off = 0;
	int rc;

	msgpack_unpacked_init(&u);
	CHECK_EQ_INT(msgpack_unpack_next(&u, buf->data, buf->size, &off),
		     MSGPACK_UNPACK_SUCCESS);
	rc = rpc_handle(&conn, &u.data);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_clear(buf);
	return rc;
}

/* The reply written so far: checks msgid and returns the error code
 * ("" for success) and, for errors, the field. */
static void reply(uint64_t msgid, char *code, char *field)
{
	msgpack_unpacked u;
	size_t off = 0;

	code[0] = field[0] = '\0';
	msgpack_unpacked_init(&u);
	CHECK_EQ_INT(msgpack_unpack_next(&u, out.data, out.size, &off),
		     MSGPACK_UNPACK_SUCCESS);
	CHECK_EQ_INT(off, out.size);
	CHECK_EQ_INT(u.data.via.array.size, 4);
	CHECK_EQ_INT(u.data.via.array.ptr[0].via.u64, 1);
	CHECK_EQ_INT(u.data.via.array.ptr[1].via.u64, msgid);
	if (u.data.via.array.ptr[2].type == MSGPACK_OBJECT_MAP) {
		msgpack_object_map *m = &u.data.via.array.ptr[2].via.map;

		for (uint32_t i = 0; i < m->size; i++) {
			msgpack_object_str k = m->ptr[i].key.via.str;
			msgpack_object_str v = m->ptr[i].val.via.str;
			char *dst = NULL;

			if (k.size == 4 && !memcmp(k.ptr, "code", 4))
				dst = code;
			if (k.size == 5 && !memcmp(k.ptr, "field", 5))
				dst = field;
			if (dst)
				snprintf(dst, 64, "%.*s", (int)v.size, v.ptr);
		}
	}
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_clear(&out);
}

static void test_shapes(void)
{
	msgpack_sbuffer b;
	msgpack_packer pk;
	char code[64], field[64];

	setup(NULL);
	msgpack_sbuffer_init(&b);
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	/* [0, 7, "ping", []] */
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, 0);
	msgpack_pack_uint64(&pk, 4294967296ull);
	msgpack_pack_str_with_body(&pk, "ping", 4);
	msgpack_pack_array(&pk, 0);
	CHECK_EQ_INT(feed(&b), 0);
	reply(4294967296ull, code, field);
	CHECK_EQ_STR(code, "");
	/* a response and a notification: never answered */
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, 3);
	msgpack_pack_nil(&pk);
	msgpack_pack_nil(&pk);
	CHECK_EQ_INT(feed(&b), 0);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, 2);
	msgpack_pack_str_with_body(&pk, "push", 4);
	msgpack_pack_array(&pk, 0);
	CHECK_EQ_INT(feed(&b), 0);
	CHECK_EQ_INT(out.size, 0);
	/* not a request, msgid readable: bad_request, stream goes on */
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 9);
	msgpack_pack_int(&pk, 42);
	CHECK_EQ_INT(feed(&b), 0);
	reply(42, code, field);
	CHECK_EQ_STR(code, "bad_request");
	/* no msgid: the caller closes */
	msgpack_pack_map(&pk, 0);
	CHECK_EQ_INT(feed(&b), -1);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 0);
	msgpack_pack_int(&pk, -1);
	CHECK_EQ_INT(feed(&b), -1);
	/* unknown method; params of the wrong shape */
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, 0);
	msgpack_pack_int(&pk, 5);
	msgpack_pack_bin_with_body(&pk, "nope", 4);
	msgpack_pack_array(&pk, 0);
	CHECK_EQ_INT(feed(&b), 0);
	reply(5, code, field);
	CHECK_EQ_STR(code, "unknown_method");
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, 0);
	msgpack_pack_int(&pk, 6);
	msgpack_pack_str_with_body(&pk, "echo.count", 10);
	msgpack_pack_map(&pk, 0);
	CHECK_EQ_INT(feed(&b), 0);
	reply(6, code, field);
	CHECK_EQ_STR(code, "bad_request");
	CHECK_EQ_STR(field, "params");
	msgpack_sbuffer_destroy(&b);
}

static void pack_call(msgpack_packer *pk, int msgid, const char *method)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_int(pk, 0);
	msgpack_pack_int(pk, msgid);
	msgpack_pack_str_with_body(pk, method, strlen(method));
	msgpack_pack_array(pk, 1);
}

static void test_limits(void)
{
	msgpack_sbuffer b;
	msgpack_packer pk;
	char code[64], field[64];

	setup(NULL);
	msgpack_sbuffer_init(&b);
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	/* {"a": {"b": ["ok", "far too long"]}} */
	pack_call(&pk, 1, "echo.count");
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "b", 1);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str_with_body(&pk, "ok", 2);
	msgpack_pack_str_with_body(&pk, "far too long", 12);
	CHECK_EQ_INT(feed(&b), 0);
	reply(1, code, field);
	CHECK_EQ_STR(code, "too_large");
	CHECK_EQ_STR(field, "a.b[1]");
	pack_call(&pk, 2, "echo.count");
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "l", 1);
	msgpack_pack_array(&pk, 4);
	for (int i = 0; i < 4; i++)
		msgpack_pack_int(&pk, i);
	CHECK_EQ_INT(feed(&b), 0);
	reply(2, code, field);
	CHECK_EQ_STR(code, "too_large");
	CHECK_EQ_STR(field, "l");
	msgpack_sbuffer_destroy(&b);
}

static void test_token(void)
{
	msgpack_sbuffer b;
	msgpack_packer pk;
	char code[64], field[64];

	setup("s3cret");
	msgpack_sbuffer_init(&b);
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	pack_call(&pk, 1, "echo.count");
	msgpack_pack_map(&pk, 0);
	CHECK_EQ_INT(feed(&b), 0);
	reply(1, code, field);
	CHECK_EQ_STR(code, "unauthorized");
	pack_call(&pk, 2, "hello");
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "token", 5);
	msgpack_pack_str_with_body(&pk, "s3cre", 5);
	CHECK_EQ_INT(feed(&b), 0);
	reply(2, code, field);
	CHECK_EQ_STR(code, "unauthorized");
	CHECK(!conn.authed);
	pack_call(&pk, 3, "hello");
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "token", 5);
	msgpack_pack_bin_with_body(&pk, "s3cret", 6);
	CHECK_EQ_INT(feed(&b), 0);
	reply(3, code, field);
	CHECK_EQ_STR(code, "");
	CHECK(conn.authed);
	pack_call(&pk, 4, "echo.count");
	msgpack_pack_map(&pk, 0);
	CHECK_EQ_INT(feed(&b), 0);
	reply(4, code, field);
	CHECK_EQ_STR(code, "");
	msgpack_sbuffer_destroy(&b);
}

int main(void)
{
	msgpack_sbuffer_init(&out);
	test_shapes();
	test_limits();
	test_token();
	msgpack_sbuffer_destroy(&out);
	rpc_worker_destroy(&worker);
	return check_exit("test_rpc");
}
