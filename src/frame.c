/*
 * frame: an incremental msgpack header walker.  See frame.h.
 *
 * State per frame: `left[d]` counts the objects still due at nesting level
 * d (a map of n pairs is 2n objects), `skip` the payload bytes of the
 * current string, bin or ext still to pass, and `hdr` the bytes of a header
 * split across two reads.  Number values are read whole as "header" bytes
 * so that the msgid can be taken from them.
 */
#include "frame.h"

#include <string.h>

void frame_init(struct frame_scanner *s, size_t bytes_max,
		uint32_t depth_max)
{
	memset(s, 0, sizeof(*s));
	s->bytes_max = bytes_max;
	s->depth_max = depth_max < FRAME_DEPTH_MAX ? depth_max
						   : FRAME_DEPTH_MAX;
}

static void frame_reset(struct frame_scanner *s)
{
	s->offset = 0;
	s->skip = 0;
	s->depth = 0;
	s->top_is_array = false;
	s->want_msgid = false;
	s->msgid_valid = false;
	s->hdr_len = 0;
	s->hdr_need = 0;
}

/* Total header bytes (type byte included) for type byte b; number values
 * count as header. */
static uint8_t frame_header_len(uint8_t b)
{
	static const uint8_t tail[32] = {
		/* c0 nil, c1 -, c2 c3 bool, c4-c6 bin 8/16/32 */
		0, 0, 0, 0, 1, 2, 4,
		/* c7-c9 ext 8/16/32 (length, then type) */
		2, 3, 5,
		/* ca cb float, cc-cf uint, d0-d3 int */
		4, 8, 1, 2, 4, 8, 1, 2, 4, 8,
		/* d4-d8 fixext: one type byte */
		1, 1, 1, 1, 1,
		/* d9-db str 8/16/32, dc dd array, de df map */
		1, 2, 4, 2, 4, 2, 4,
	};

	if (b < 0xc0 || b >= 0xe0)
		return 1;
	return (uint8_t)(1 + tail[b - 0xc0]);
}

static uint64_t frame_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* One object finished: pop finished containers.  True at frame end. */
static bool frame_object_done(struct frame_scanner *s)
{
	while (s->depth > 0) {
		if (--s->left[s->depth - 1] > 0)
			return false;
		s->depth--;
	}
	return true;
}

enum frame_kind { FK_SCALAR, FK_PAYLOAD, FK_CONTAINER };

/* Classifies a complete header: payload length or element count. */
static enum frame_kind frame_classify(const uint8_t *h, uint64_t *n)
{
	uint8_t b = h[0];

	if (b >= 0xa0 && b <= 0xbf) {
		*n = b & 0x1f;
		return FK_PAYLOAD;
	}
	if ((b >= 0x90 && b <= 0x9f) || (b >= 0x80 && b <= 0x8f)) {
		*n = (uint64_t)(b & 0x0f) << (b < 0x90);
		return FK_CONTAINER;
	}
	switch (b) {
	case 0xc4: case 0xd9: *n = h[1]; return FK_PAYLOAD;
	case 0xc5: case 0xda: *n = frame_be(h + 1, 2); return FK_PAYLOAD;
	case 0xc6: case 0xdb: *n = frame_be(h + 1, 4); return FK_PAYLOAD;
	case 0xc7: *n = h[1]; return FK_PAYLOAD;
	case 0xc8: *n = frame_be(h + 1, 2); return FK_PAYLOAD;
	case 0xc9: *n = frame_be(h + 1, 4); return FK_PAYLOAD;
	case 0xd4: *n = 1; return FK_PAYLOAD;
	case 0xd5: *n = 2; return FK_PAYLOAD;
	case 0xd6: *n = 4; return FK_PAYLOAD;
	case 0xd7: *n = 8; return FK_PAYLOAD;
	case 0xd8: *n = 16; return FK_PAYLOAD;
	case 0xdc: *n = frame_be(h + 1, 2); return FK_CONTAINER;
	case 0xdd: *n = frame_be(h + 1, 4); return FK_CONTAINER;
	case 0xde: *n = frame_be(h + 1, 2) * 2; return FK_CONTAINER;
	case 0xdf: *n = frame_be(h + 1, 4) * 2; return FK_CONTAINER;
	}
	*n = 0;
	return FK_SCALAR;
}

/* Takes the msgid when this scalar is element 1 of a top array. */
static void frame_note_msgid(struct frame_scanner *s)
{
	uint8_t b = s->hdr[0];

	if (!s->want_msgid)
		return;
	if (b <= 0x7f) {
		s->msgid = b;
		s->msgid_valid = true;
	} else if (b >= 0xcc && b <= 0xcf) {
		s->msgid = frame_be(s->hdr + 1, s->hdr_len - 1u);
		s->msgid_valid = true;
	}
}

/* A header is complete: act on it.  Returns FRAME_COMPLETE at frame end,
 * FRAME_MORE to go on, or an error. */
static enum frame_status frame_header(struct frame_scanner *s)
{
	uint64_t n;
	enum frame_kind kind = frame_classify(s->hdr, &n);

	s->hdr_need = 0;
	if (kind == FK_SCALAR) {
		frame_note_msgid(s);
		return frame_object_done(s) ? FRAME_COMPLETE : FRAME_MORE;
	}
	/* Every element takes at least one byte: a count is a size too. */
	if (n > s->bytes_max || s->offset + n > s->bytes_max)
		return FRAME_TOO_LARGE;
	if (kind == FK_PAYLOAD) {
		s->skip = n;
		if (n == 0)
			return frame_object_done(s) ? FRAME_COMPLETE
						    : FRAME_MORE;
		return FRAME_MORE;
	}
	if (s->depth == 0 && s->hdr[0] != 0xde && s->hdr[0] != 0xdf &&
	    !(s->hdr[0] >= 0x80 && s->hdr[0] <= 0x8f)) {
		s->top_is_array = true;
		s->top_total = (uint32_t)n;
	}
	if (n == 0)
		return frame_object_done(s) ? FRAME_COMPLETE : FRAME_MORE;
	if (s->depth >= s->depth_max)
		return FRAME_TOO_DEEP;
	s->left[s->depth++] = (uint32_t)n;
	return FRAME_MORE;
}

/* Starts the object whose type byte is b. */
static enum frame_status frame_begin(struct frame_scanner *s, uint8_t b)
{
	if (b == 0xc1)
		return FRAME_INVALID;
	s->want_msgid = s->depth == 1 && s->top_is_array &&
			s->top_total - s->left[0] == 1;
	s->hdr[0] = b;
	s->hdr_len = 1;
	s->hdr_need = frame_header_len(b);
	if (s->hdr_need == 1)
		return frame_header(s);
	return FRAME_MORE;
}

enum frame_status frame_scan(struct frame_scanner *s, const uint8_t *data,
			     size_t len, size_t *used)
{
	enum frame_status st = FRAME_MORE;
	size_t i = 0;

	while (i < len) {
		if (s->skip) {
			uint64_t n = len - i < s->skip ? len - i : s->skip;

			i += n;
			s->offset += n;
			s->skip -= n;
			if (s->skip == 0 && frame_object_done(s))
				st = FRAME_COMPLETE;
		} else if (s->hdr_need) {
			s->hdr[s->hdr_len++] = data[i++];
			s->offset++;
			if (s->hdr_len == s->hdr_need)
				st = frame_header(s);
		} else {
			s->offset++;
			st = frame_begin(s, data[i++]);
		}
		if (s->offset > s->bytes_max && st == FRAME_MORE)
			st = FRAME_TOO_LARGE;
		if (st != FRAME_MORE)
			break;
	}
	*used = i;
	if (st == FRAME_COMPLETE)
		frame_reset(s);
	return st;
}

bool frame_msgid(const struct frame_scanner *s, uint64_t *msgid)
{
	if (!s->msgid_valid)
		return false;
	*msgid = s->msgid;
	return true;
}
