/*
 * frame: finds where each msgpack object ends in a byte stream, and refuses
 * an object too big or too deep as soon as its header says so.
 *
 * msgpack has no length prefix: a frame ends where its top-level object
 * ends.  msgpack-c's streaming unpacker would buffer a 2 GiB string until
 * the bytes arrived; this scanner reads only the headers (payloads are
 * skipped in bulk), so a header announcing more than the limit is refused
 * without waiting, and it remembers the msgid of a request-shaped frame so
 * the refusal can be answered.  It keeps no bytes but a partial header.
 * Used by the network threads, one scanner per connection.
 */
#ifndef MATCHD_FRAME_H
#define MATCHD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting the scanner can track; limits are clamped to it. */
#define FRAME_DEPTH_MAX 64

enum frame_status {
	FRAME_MORE,      /* all input consumed, the frame is not complete */
	FRAME_COMPLETE,  /* one frame ended; *used bytes of input were it */
	FRAME_TOO_LARGE, /* a header announces more than bytes_max */
	FRAME_TOO_DEEP,  /* nesting beyond depth_max */
	FRAME_INVALID,   /* a byte that is no msgpack type (0xc1) */
};

struct frame_scanner {
	size_t bytes_max;
	uint32_t depth_max;
	uint64_t offset;      /* bytes of the current frame so far */
	uint64_t skip;        /* payload bytes still to pass over */
	uint32_t depth;
	uint32_t top_total;   /* element count of a top-level array */
	bool top_is_array;
	bool want_msgid;      /* the current object is element 1 of it */
	bool msgid_valid;
	uint64_t msgid;
	uint8_t hdr[9];
	uint8_t hdr_len;
	uint8_t hdr_need;
	uint32_t left[FRAME_DEPTH_MAX]; /* objects still due per level */
};

/* Prepares s for a new stream. */
void frame_init(struct frame_scanner *s, size_t bytes_max,
		uint32_t depth_max);

/*
 * Scans data[0..len) as the continuation of the current frame.  On
 * FRAME_COMPLETE *used is the number of bytes that finished the frame and
 * the scanner is ready for the next one; on FRAME_MORE *used is len.  On
 * an error the stream cannot be resynchronised: the caller answers (using
 * frame_msgid() when it returns true) and closes the connection.
 */
enum frame_status frame_scan(struct frame_scanner *s, const uint8_t *data,
			     size_t len, size_t *used);

/* The msgid of the current (or just refused) frame, when it is an array
 * whose second element is an unsigned integer that has been seen. */
bool frame_msgid(const struct frame_scanner *s, uint64_t *msgid);

#endif
