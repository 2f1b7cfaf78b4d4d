/*
 * Tests for jsonmp: JSON text -> msgpack bytes -> JSON text, each type's
 * mapping, the repair of invalid UTF-8, non-string map keys and the depth
 * limit.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "jsonmp.h"

/* Parses text, packs it; returns the packer's rc, output in sb. */
static int pack_text(const char *text, msgpack_sbuffer *sb)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	msgpack_packer pk;
	int rc;

	msgpack_sbuffer_init(sb);
	if (!v)
		return -EINVAL;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	rc = jsonmp_pack(&pk, v, JSONMP_DEPTH_MAX);
	json_decref(v);
	return rc;
}

/* Converts msgpack bytes back to compact JSON text (caller frees). */
static char *dump_bytes(const char *data, size_t len)
{
	msgpack_unpacked u;
	json_t *v = NULL;
	char *text = NULL;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, data, len, NULL) ==
	    MSGPACK_UNPACK_SUCCESS && jsonmp_from_msgpack(&u.data, &v) == 0) {
		text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
				  JSON_PRESERVE_ORDER);
		json_decref(v);
	}
	msgpack_unpacked_destroy(&u);
	return text;
}

static void check_round_trip(const char *text)
{
	msgpack_sbuffer sb;
	char *back;

	CHECK_EQ_INT(pack_text(text, &sb), 0);
	back = dump_bytes(sb.data, sb.size);
	CHECK_EQ_STR(back, text);
	free(back);
	msgpack_sbuffer_destroy(&sb);
}

static void check_bytes(const char *text, const char *want, size_t want_len)
{
	msgpack_sbuffer sb;

	CHECK_EQ_INT(pack_text(text, &sb), 0);
	CHECK_EQ_INT(sb.size, want_len);
	CHECK(sb.size == want_len && memcmp(sb.data, want, want_len) == 0);
	msgpack_sbuffer_destroy(&sb);
}

static void test_json_to_msgpack_types(void)
{
	/* Shortest int forms, float64 always, nil/true/false, str. */
	check_bytes("1", "\x01", 1);
	check_bytes("-1", "\xff", 1);
	check_bytes("300", "\xcd\x01\x2c", 3);
	check_bytes("-200", "\xd1\xff\x38", 3);
	check_bytes("9223372036854775807",
		    "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9);
	check_bytes("1.0", "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 9);
	check_bytes("null", "\xc0", 1);
	check_bytes("true", "\xc3", 1);
	check_bytes("false", "\xc2", 1);
	check_bytes("\"ab\"", "\xa2" "ab", 3);
	check_bytes("[]", "\x90", 1);
	check_bytes("{}", "\x80", 1);
	check_bytes("{\"k\":[1]}", "\x81\xa1k\x91\x01", 5);
	/* An escaped NUL stays inside the string. */
	check_bytes("\"a\\u0000b\"", "\xa3" "a\0b", 4);
}

static void test_round_trips(void)
{
	check_round_trip("{\"id\":\"S1\",\"education\":\"本科\","
			 "\"grad_year\":2025,\"bound\":true,"
			 "\"skills\":[\"C\",\"Linux\"],\"x\":null}");
	check_round_trip("[1,-5,1.5,0.25,\"广州\",[],{}]");
	/* Key order is kept, not sorted. */
	check_round_trip("{\"z\":1,\"a\":2,\"m\":3}");
	check_round_trip("\"pong\"");
	check_round_trip("-9223372036854775808");
}

static void test_msgpack_to_json_types(void)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char *text;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 9);
	msgpack_pack_bin_with_body(&pk, "ok", 2);     /* UTF-8 bin */
	msgpack_pack_bin_with_body(&pk, "a\xff", 2);  /* not UTF-8 */
	msgpack_pack_str_with_body(&pk, "\xe5\xb9", 2); /* cut short */
	msgpack_pack_float(&pk, 0.5f);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	msgpack_pack_double(&pk, NAN);
	msgpack_pack_double(&pk, INFINITY);
	msgpack_pack_ext_with_body(&pk, "x", 1, 5);
	msgpack_pack_str_with_body(&pk, "\xed\xa0\x80", 3); /* surrogate */
	text = dump_bytes(sb.data, sb.size);
	CHECK_EQ_STR(text, "[\"ok\",\"a\xef\xbf\xbd\","
		     "\"\xef\xbf\xbd\xef\xbf\xbd\",0.5,"
		     "1.8446744073709552e19,null,null,null,"
		     "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"]");
	free(text);
	msgpack_sbuffer_destroy(&sb);
}

static void test_map_keys(void)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char *text;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	msgpack_pack_int(&pk, 7);
	msgpack_pack_str_with_body(&pk, "seven", 5);
	msgpack_pack_true(&pk);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_bin_with_body(&pk, "b", 1);
	msgpack_pack_int(&pk, 2);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_int(&pk, -3);
	msgpack_pack_nil(&pk);
	/* A repeated key keeps the last value. */
	msgpack_pack_str_with_body(&pk, "b", 1);
	msgpack_pack_int(&pk, 4);
	text = dump_bytes(sb.data, sb.size);
	CHECK_EQ_STR(text, "{\"7\":\"seven\",\"true\":1,\"b\":4,"
		     "\"[-3]\":null}");
	free(text);
	msgpack_sbuffer_destroy(&sb);
}

/* "[[[...1...]]]" nested depth levels deep. */
static char *nested_text(int depth)
{
	char *s = malloc((size_t)depth * 2 + 2);
	int i;

	for (i = 0; i < depth; i++)
		s[i] = '[';
	s[i++] = '1';
	for (int j = 0; j < depth; j++)
		s[i++] = ']';
	s[i] = '\0';
	return s;
}

static void test_depth_limit(void)
{
	msgpack_sbuffer sb;
	char *ok = nested_text(JSONMP_DEPTH_MAX);
	char *deep = nested_text(JSONMP_DEPTH_MAX + 1);

	CHECK_EQ_INT(pack_text(ok, &sb), 0);
	msgpack_sbuffer_destroy(&sb);
	CHECK_EQ_INT(pack_text(deep, &sb), -E2BIG);
	msgpack_sbuffer_destroy(&sb);
	free(ok);
	free(deep);
}

/* A caller's smaller depth_max counts empty containers too. */
static void test_depth_max_argument(void)
{
	json_t *v = json_loads("{\"a\":[1]}", 0, NULL);
	json_t *empty = json_loads("[[]]", 0, NULL);
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	CHECK_EQ_INT(jsonmp_pack(&pk, v, 2), 0);
	CHECK_EQ_INT(jsonmp_pack(&pk, v, 1), -E2BIG);
	CHECK_EQ_INT(jsonmp_pack(&pk, empty, 2), 0);
	CHECK_EQ_INT(jsonmp_pack(&pk, empty, 1), -E2BIG);
	/* Scalars nest nothing. */
	CHECK_EQ_INT(jsonmp_pack(&pk, json_array_get(json_object_get(v, "a"),
						     0), 0), 0);
	json_decref(v);
	json_decref(empty);
	msgpack_sbuffer_destroy(&sb);
}

static void test_msgpack_depth_limit(void)
{
	msgpack_object leaf = { .type = MSGPACK_OBJECT_POSITIVE_INTEGER };
	msgpack_object levels[JSONMP_DEPTH_MAX + 2];
	json_t *v = NULL;

	/* levels[i] is an array holding levels[i + 1]; the last a leaf. */
	levels[JSONMP_DEPTH_MAX + 1] = leaf;
	for (int i = JSONMP_DEPTH_MAX; i >= 0; i--) {
		levels[i].type = MSGPACK_OBJECT_ARRAY;
		levels[i].via.array.size = 1;
		levels[i].via.array.ptr = &levels[i + 1];
	}
	CHECK_EQ_INT(jsonmp_from_msgpack(&levels[1], &v), 0);
	json_decref(v);
	CHECK_EQ_INT(jsonmp_from_msgpack(&levels[0], &v), -E2BIG);
}

int main(void)
{
	test_json_to_msgpack_types();
	test_round_trips();
	test_msgpack_to_json_types();
	test_map_keys();
	test_depth_limit();
	test_depth_max_argument();
	test_msgpack_depth_limit();
	return check_exit("test_jsonmp");
}
