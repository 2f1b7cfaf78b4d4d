/*
 * record: the four record kinds (student, resume, company, posting) as they
 * arrive in requests and as they are stored.
 *
 * record_validate() checks every field rule of docs/protocol.md, folds and
 * trims every string (text_normalize), fills defaults, drops unknown fields
 * and packs the canonical stored form: a msgpack map whose keys come in a
 * fixed order per kind.  `get` returns that stored form unchanged.  Checks
 * that need other records (a resume's student, a posting's company) cannot
 * be made here: the record names them in out->ref and the storage layer
 * checks them inside its write transaction.
 *
 * Pure functions over caller memory; safe from any thread.
 */
#ifndef MATCHD_RECORD_H
#define MATCHD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "proto.h"

struct ref;

enum record_kind {
	RECORD_STUDENT,
	RECORD_RESUME,
	RECORD_COMPANY,
	RECORD_POSTING,
};
#define RECORD_KINDS 4

/* Longest id of any kind, in bytes after normalisation. */
#define RECORD_ID_BYTES_MAX 64

/* "student", "resume", "company", "posting". */
const char *record_kind_name(enum record_kind kind);

/* What record_validate() produces. */
struct record_out {
	char id[RECORD_ID_BYTES_MAX + 1]; /* normalised key, NUL-terminated */
	size_t id_len;
	/* The record this one refers to, which must exist when it is stored:
	 * a resume's student ("student_id"), a posting's company
	 * ("company_id").  has_ref is false for students and companies. */
	bool has_ref;
	enum record_kind ref_kind;
	char ref_id[RECORD_ID_BYTES_MAX + 1];
	size_t ref_id_len;
	const char *ref_field;
	/* Posting only: the request gave posted_at.  When it did not, the
	 * stored form carries `now` and record_posting_merge() keeps the time
	 * of the first put instead. */
	bool posted_at_given;
	msgpack_sbuffer stored; /* the canonical stored form, owned */
};

void record_out_init(struct record_out *out);
void record_out_destroy(struct record_out *out);

/*
 * Validates the request map obj as a record of kind and fills out.  now is
 * the server's clock in Unix seconds (the default posted_at).  Returns 0,
 * or -1 with err naming the first bad field by its request path
 * ("skills[3]", "experiences[0].kind") and code PROTO_INVALID_ARGUMENT or
 * PROTO_TOO_LARGE (a string or list over limits).  out->stored is reset
 * before packing, so an out can be reused across calls.
 */
int record_validate(enum record_kind kind, const msgpack_object *obj,
		    const struct ref *ref, const struct proto_limits *limits,
		    int64_t now, struct record_out *out,
		    struct proto_error *err);

/*
 * Reads the id field `field` ("id", "student_id") of a request map, folds
 * and trims it like any stored string, and writes it NUL-terminated into
 * id (RECORD_ID_BYTES_MAX + 1 bytes).  Returns 0 or -1 with err set
 * (missing, wrong type, invalid UTF-8, empty, too long).
 */
int record_key(const msgpack_object *obj, const char *field, char *id,
	       size_t *id_len, struct proto_error *err);

/*
 * Posting re-put: given the stored form old of the same posting, rewrites
 * out->stored so that it keeps old's posted_at when this put gave none,
 * and keeps old's closed flag.  Returns 0, or -EINVAL when old cannot be
 * decoded (then out is unchanged).
 */
int record_posting_merge(struct record_out *out, const char *old,
			 size_t old_len);

/*
 * Packs into dst (reset first) the stored posting old with its closed flag
 * set.  *was_closed tells whether it already was.  Returns 0 or -EINVAL.
 */
int record_posting_close(const char *old, size_t old_len,
			 msgpack_sbuffer *dst, bool *was_closed);

#endif
