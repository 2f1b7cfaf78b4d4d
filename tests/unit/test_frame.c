/*
 * Unit tests for frame: frame boundaries over every msgpack type, frames
 * split at every byte, limits refused from the header alone, and the msgid
 * read from refused frames.
 */
#include <msgpack.h>
#include <stdlib.h>

#include "check.h"
#include "frame.h"

/* Scans buf in pieces of `step` bytes; returns the status that ended it
 * and the number of complete frames seen. */
static enum frame_status scan_all(struct frame_scanner *s, const void *buf,
				  size_t len, size_t step, int *frames)
{
	const uint8_t *p = buf;
	size_t off = 0;

	*frames = 0;
	while (off < len) {
		size_t n = len - off < step ? len - off : step;
		size_t used;
		enum frame_status st = frame_scan(s, p + off, n, &used);

		off += used;
		if (st == FRAME_COMPLETE) {
			(*frames)++;
			continue;
		}
		if (st != FRAME_MORE)
			return st;
	}
	return FRAME_MORE;
}

static void pack_request(msgpack_packer *pk, uint32_t msgid)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint8(pk, 0);
	msgpack_pack_uint32(pk, msgid);
	msgpack_pack_str_with_body(pk, "student.put", 11);
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 6);
	msgpack_pack_str_with_body(pk, "id", 2);
	msgpack_pack_str_with_body(pk, "2024001", 7);
	msgpack_pack_str_with_body(pk, "f", 1);
	msgpack_pack_double(pk, 2.5);
	msgpack_pack_str_with_body(pk, "b", 1);
	msgpack_pack_bin_with_body(pk, "xyz", 3);
	msgpack_pack_str_with_body(pk, "e", 1);
	msgpack_pack_ext_with_body(pk, "abcd", 4, 5);
	msgpack_pack_str_with_body(pk, "n", 1);
	msgpack_pack_int64(pk, -123456789012);
	msgpack_pack_str_with_body(pk, "l", 1);
	msgpack_pack_array(pk, 3);
	msgpack_pack_nil(pk);
	msgpack_pack_true(pk);
	msgpack_pack_float(pk, 1.5f);
}

static void test_boundaries(void)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct frame_scanner s;
	int frames;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	for (uint32_t i = 0; i < 3; i++)
		pack_request(&pk, 70000 + i);
	msgpack_pack_int(&pk, 7); /* a top-level scalar is a frame too */
	for (size_t step = 1; step <= sb.size; step++) {
		frame_init(&s, 1 << 20, 16);
		CHECK_EQ_INT(scan_all(&s, sb.data, sb.size, step, &frames),
			     FRAME_MORE);
		CHECK_EQ_INT(frames, 4);
		CHECK_EQ_INT(s.offset, 0);
	}
	msgpack_sbuffer_destroy(&sb);
}

static void test_too_large_from_header(void)
{
	/* [0, 9, "m", [<str32 announcing 1 GiB>]] with no body sent */
	const uint8_t big[] = { 0x94, 0x00, 0x09, 0xa1, 'm', 0x91,
				0xdb, 0x40, 0x00, 0x00, 0x00 };
	const uint8_t arr[] = { 0x94, 0x00, 0xcd, 0x01, 0x00, 0xdd, 0xff, 0xff,
				0xff, 0xff, 0xff };
	struct frame_scanner s;
	uint64_t msgid = 0;
	int frames;

	frame_init(&s, 1024, 16);
	CHECK_EQ_INT(scan_all(&s, big, sizeof(big), 3, &frames),
		     FRAME_TOO_LARGE);
	CHECK(frame_msgid(&s, &msgid));
	CHECK_EQ_INT(msgid, 9);
	frame_init(&s, 1024, 16);
	CHECK_EQ_INT(scan_all(&s, arr, sizeof(arr), 1, &frames),
		     FRAME_TOO_LARGE);
	CHECK(frame_msgid(&s, &msgid));
	CHECK_EQ_INT(msgid, 256);
}

static void test_total_size(void)
{
	uint8_t buf[2000];
	struct frame_scanner s;
	int frames;

	/* an array of 1500 nils: each small, together over 1000 bytes */
	buf[0] = 0xdc;
	buf[1] = 1500 >> 8;
	buf[2] = 1500 & 0xff;
	memset(buf + 3, 0xc0, 1500);
	frame_init(&s, 1000, 16);
	CHECK_EQ_INT(scan_all(&s, buf, 1503, 100, &frames), FRAME_TOO_LARGE);
	frame_init(&s, 2000, 16);
	CHECK_EQ_INT(scan_all(&s, buf, 1503, 100, &frames), FRAME_MORE);
	CHECK_EQ_INT(frames, 1);
}

static void test_depth_and_invalid(void)
{
	uint8_t deep[40];
	const uint8_t bad[] = { 0x94, 0x00, 0x05, 0xc1 };
	const uint8_t noid[] = { 0x92, 0xa1, 'x', 0xc1 };
	struct frame_scanner s;
	uint64_t msgid;
	int frames;

	memset(deep, 0x91, sizeof(deep));
	frame_init(&s, 1 << 20, 16);
	CHECK_EQ_INT(scan_all(&s, deep, sizeof(deep), 7, &frames),
		     FRAME_TOO_DEEP);
	frame_init(&s, 1 << 20, 16);
	CHECK_EQ_INT(scan_all(&s, deep, 16, 7, &frames), FRAME_MORE);
	frame_init(&s, 1 << 20, 16);
	CHECK_EQ_INT(scan_all(&s, bad, sizeof(bad), 1, &frames),
		     FRAME_INVALID);
	CHECK(frame_msgid(&s, &msgid));
	CHECK_EQ_INT(msgid, 5);
	frame_init(&s, 1 << 20, 16);
	CHECK_EQ_INT(scan_all(&s, noid, sizeof(noid), 1, &frames),
		     FRAME_INVALID);
	CHECK(!frame_msgid(&s, &msgid));
}

static void test_empty_containers(void)
{
	const uint8_t buf[] = { 0x90, 0x80, 0x94, 0x00, 0x01, 0xa0, 0x90 };
	struct frame_scanner s;
	int frames;

	frame_init(&s, 100, 4);
	CHECK_EQ_INT(scan_all(&s, buf, sizeof(buf), 1, &frames), FRAME_MORE);
	CHECK_EQ_INT(frames, 3);
}

int main(void)
{
	test_boundaries();
	test_too_large_from_header();
	test_total_size();
	test_depth_and_invalid();
	test_empty_containers();
	return check_exit("test_frame");
}
