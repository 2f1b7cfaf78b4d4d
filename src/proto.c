/*
 * proto: error code names and default limits.  See proto.h.
 */
#include "proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void proto_limits_default(struct proto_limits *limits)
{
	limits->message_bytes_max = PROTO_MESSAGE_BYTES_MAX_DEFAULT;
	limits->string_bytes_max = PROTO_STRING_BYTES_MAX_DEFAULT;
	limits->list_len_max = PROTO_LIST_LEN_MAX_DEFAULT;
	limits->depth_max = PROTO_DEPTH_MAX_DEFAULT;
}

const char *proto_code_name(enum proto_code code)
{
	switch (code) {
	case PROTO_OK: return "ok";
	case PROTO_BAD_REQUEST: return "bad_request";
	case PROTO_UNKNOWN_METHOD: return "unknown_method";
	case PROTO_INVALID_ARGUMENT: return "invalid_argument";
	case PROTO_NOT_FOUND: return "not_found";
	case PROTO_TOO_LARGE: return "too_large";
	case PROTO_UNAUTHORIZED: return "unauthorized";
	case PROTO_UNAVAILABLE: return "unavailable";
	case PROTO_INTERNAL: return "internal";
	}
	return "internal";
}

int proto_fail(struct proto_error *err, enum proto_code code,
	       const char *field, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}
