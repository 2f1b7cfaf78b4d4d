/*
 * jsonmp: JSON <-> msgpack conversion for matchctl.  See jsonmp.h.
 *
 * Both directions are recursive walks bounded by JSONMP_DEPTH_MAX.  The
 * only subtle part is text: JSON must be valid UTF-8, msgpack need not be,
 * so strings coming from msgpack are checked and repaired on the way.
 */
#include "jsonmp.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* U+FFFD REPLACEMENT CHARACTER, written for each byte that is not UTF-8. */
static const char utf8_replacement[3] = { '\xef', '\xbf', '\xbd' };

static int pack_value(msgpack_packer *pk, const json_t *v, unsigned depth,
		      unsigned depth_max);

static int pack_array(msgpack_packer *pk, const json_t *v, unsigned depth,
		      unsigned depth_max)
{
	size_t n = json_array_size(v);
	int rc = msgpack_pack_array(pk, n) ? -ENOMEM : 0;

	for (size_t i = 0; i < n && rc == 0; i++)
		rc = pack_value(pk, json_array_get(v, i), depth + 1, depth_max);
	return rc;
}

static int pack_object(msgpack_packer *pk, const json_t *v, unsigned depth,
		       unsigned depth_max)
{
	/* jansson's iteration API takes a non-const object; nothing below
	 * modifies it. */
	json_t *obj = (json_t *)v;
	const char *key;
	size_t key_len;
	json_t *member;
	int rc = msgpack_pack_map(pk, json_object_size(obj)) ? -ENOMEM : 0;

	json_object_keylen_foreach(obj, key, key_len, member) {
		if (rc)
			break;
		if (msgpack_pack_str_with_body(pk, key, key_len))
			return -ENOMEM;
		rc = pack_value(pk, member, depth + 1, depth_max);
	}
	return rc;
}

/* depth counts the arrays and objects around v. */
static int pack_value(msgpack_packer *pk, const json_t *v, unsigned depth,
		      unsigned depth_max)
{
	int w = 0;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (depth >= depth_max)
			return -E2BIG;
		return pack_object(pk, v, depth, depth_max);
	case JSON_ARRAY:
		if (depth >= depth_max)
			return -E2BIG;
		return pack_array(pk, v, depth, depth_max);
	case JSON_STRING:
		w = msgpack_pack_str_with_body(pk, json_string_value(v),
					       json_string_length(v));
		break;
	case JSON_INTEGER:
		w = msgpack_pack_int64(pk, json_integer_value(v));
		break;
	case JSON_REAL:
		w = msgpack_pack_double(pk, json_real_value(v));
		break;
	case JSON_TRUE:
		w = msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		w = msgpack_pack_false(pk);
		break;
	case JSON_NULL:
		w = msgpack_pack_nil(pk);
		break;
	}
	return w ? -ENOMEM : 0;
}

int jsonmp_pack(msgpack_packer *pk, const json_t *value, unsigned depth_max)
{
	if (depth_max > JSONMP_DEPTH_MAX)
		depth_max = JSONMP_DEPTH_MAX;
	return pack_value(pk, value, 0, depth_max);
}

/*
 * Length of the well-formed UTF-8 sequence at s[0..n), or 0 when the bytes
 * there do not start one: overlong forms, surrogates, code points above
 * U+10FFFF and truncated sequences all give 0.
 */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/*
 * A new JSON string holding s[0..len), each byte that does not belong to
 * a well-formed UTF-8 sequence replaced by U+FFFD.  NULL when out of
 * memory.
 */
static json_t *string_repaired(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	char *buf;
	size_t out = 0;
	json_t *str;

	/* Each bad byte grows to three: the worst case is 3 * len. */
	if (len > SIZE_MAX / 3 - 1)
		return NULL;
	buf = malloc(3 * len + 1);
	if (!buf)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t seq = utf8_seq_len(u + i, len - i);

		if (seq == 0) {
			memcpy(buf + out, utf8_replacement, 3);
			out += 3;
			i++;
			continue;
		}
		memcpy(buf + out, s + i, seq);
		out += seq;
		i += seq;
	}
	str = json_stringn_nocheck(buf, out);
	free(buf);
	return str;
}

static json_t *string_from(const char *s, size_t len)
{
	json_t *str = json_stringn(s, len);

	/* json_stringn() refuses invalid UTF-8; that is the rare path. */
	return str ? str : string_repaired(s, len);
}

static json_t *real_from(double d)
{
	return isfinite(d) ? json_real(d) : json_null();
}

static int convert(const msgpack_object *o, json_t **out, unsigned depth);

static int convert_array(const msgpack_object_array *a, json_t **out,
			 unsigned depth)
{
	json_t *arr = json_array();
	int rc = arr ? 0 : -ENOMEM;

	for (uint32_t i = 0; i < a->size && rc == 0; i++) {
		json_t *item;

		rc = convert(&a->ptr[i], &item, depth + 1);
		if (rc == 0 && json_array_append_new(arr, item))
			rc = -ENOMEM;
	}
	if (rc) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

static bool is_text(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN;
}

/* The JSON object key for a map key: strings as they are, anything else
 * as its compact JSON text. */
static int key_text(const msgpack_object *key, unsigned depth, json_t **out)
{
	json_t *v;
	char *dumped;
	int rc;

	if (is_text(key)) {
		*out = string_from(key->via.str.ptr, key->via.str.size);
		return *out ? 0 : -ENOMEM;
	}
	rc = convert(key, &v, depth);
	if (rc)
		return rc;
	dumped = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	*out = dumped ? json_string_nocheck(dumped) : NULL;
	free(dumped);
	return *out ? 0 : -ENOMEM;
}

/* Sets obj[key] = value, consuming value. */
static int object_set(json_t *obj, const msgpack_object *key, json_t *value,
		      unsigned depth)
{
	json_t *text;
	int rc = key_text(key, depth + 1, &text);

	if (rc) {
		json_decref(value);
		return rc;
	}
	/* The _new setter consumes value, also when it fails. */
	if (json_object_setn_new_nocheck(obj, json_string_value(text),
					 json_string_length(text), value))
		rc = -ENOMEM;
	json_decref(text);
	return rc;
}

static int convert_map(const msgpack_object_map *m, json_t **out,
		       unsigned depth)
{
	json_t *obj = json_object();
	int rc = obj ? 0 : -ENOMEM;

	for (uint32_t i = 0; i < m->size && rc == 0; i++) {
		json_t *value;

		rc = convert(&m->ptr[i].val, &value, depth + 1);
		if (rc == 0)
			rc = object_set(obj, &m->ptr[i].key, value, depth);
	}
	if (rc) {
		json_decref(obj);
		return rc;
	}
	*out = obj;
	return 0;
}

static json_t *scalar_from(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return json_real((double)o->via.u64);
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer(o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return real_from(o->via.f64);
	case MSGPACK_OBJECT_STR:
	case MSGPACK_OBJECT_BIN:
		return string_from(o->via.str.ptr, o->via.str.size);
	default:
		/* ext: matchd sends none, and JSON has nothing like it. */
		return json_null();
	}
}

/* depth counts the arrays and maps around o. */
static int convert(const msgpack_object *o, json_t **out, unsigned depth)
{
	bool container = o->type == MSGPACK_OBJECT_ARRAY ||
			 o->type == MSGPACK_OBJECT_MAP;

	if (container && depth >= JSONMP_DEPTH_MAX)
		return -E2BIG;
	if (o->type == MSGPACK_OBJECT_ARRAY)
		return convert_array(&o->via.array, out, depth);
	if (o->type == MSGPACK_OBJECT_MAP)
		return convert_map(&o->via.map, out, depth);
	*out = scalar_from(o);
	return *out ? 0 : -ENOMEM;
}

int jsonmp_from_msgpack(const msgpack_object *obj, json_t **out)
{
	return convert(obj, out, 0);
}
