/*
 * proto: the error codes and size limits of the matchd wire contract.
 *
 * Every layer that can refuse a request (the framer, the dispatcher, record
 * validation, storage) reports the refusal as a struct proto_error; the rpc
 * layer turns it into the msgpack-RPC error object {code, message, field}.
 * Pure data and formatting: no I/O, safe from any thread.
 */
#ifndef MATCHD_PROTO_H
#define MATCHD_PROTO_H

#include <stddef.h>
#include <stdint.h>

enum proto_code {
	PROTO_OK = 0,
	PROTO_BAD_REQUEST,
	PROTO_UNKNOWN_METHOD,
	PROTO_INVALID_ARGUMENT,
	PROTO_NOT_FOUND,
	PROTO_TOO_LARGE,
	PROTO_UNAUTHORIZED,
	PROTO_UNAVAILABLE,
	PROTO_INTERNAL,
};

#define PROTO_FIELD_MAX 96
#define PROTO_MESSAGE_MAX 160

struct proto_error {
	enum proto_code code;
	char field[PROTO_FIELD_MAX];     /* "" when no field applies */
	char message[PROTO_MESSAGE_MAX];
};

/*
 * Limits on what one request may hold.  The framer enforces the first and
 * the last; record validation enforces the string and list limits.
 */
struct proto_limits {
	size_t message_bytes_max;   /* one msgpack-RPC frame */
	uint32_t string_bytes_max;  /* one string or bin value */
	uint32_t list_len_max;      /* one array or map */
	uint32_t depth_max;         /* nesting of arrays and maps */
};

/* The defaults documented in docs/protocol.md. */
#define PROTO_MESSAGE_BYTES_MAX_DEFAULT (16u << 20)
#define PROTO_STRING_BYTES_MAX_DEFAULT (64u << 10)
#define PROTO_LIST_LEN_MAX_DEFAULT 10000u
#define PROTO_DEPTH_MAX_DEFAULT 16u

void proto_limits_default(struct proto_limits *limits);

/* The wire name of a code: "invalid_argument" and so on. */
const char *proto_code_name(enum proto_code code);

/*
 * Fills err.  field may be NULL; fmt is printf-style.  Long texts are
 * truncated, never overflowed.  Returns -1 so that callers can write
 * `return proto_fail(err, ...)`.
 */
int proto_fail(struct proto_error *err, enum proto_code code,
	       const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
