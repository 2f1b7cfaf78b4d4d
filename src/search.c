/*
 * search: posting.search.  See search.h.
 *
 * Parameters are read from the params map by name; nil counts as absent.
 * Strings may come as str or as bin holding UTF-8, and are folded like
 * stored strings (full-width forms to ASCII, trimmed) before they are
 * compared; integers may come as integral floats.  Every refusal is an
 * invalid_argument naming the field.
 */
#include "search.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "index.h"
#include "ref.h"
#include "text.h"

/* A category name longer than this cannot be one a posting has. */
#define SEARCH_CATEGORY_BYTES_MAX 256
#define SEARCH_K_DEFAULT 20

struct search_args {
	struct index_query q;
	char city[64];          /* room for a full-width code before folding */
	char category[SEARCH_CATEGORY_BYTES_MAX];
};

static int fail(struct rpc_call *call, const char *field, const char *what)
{
	rpc_reply_fail(call, PROTO_INVALID_ARGUMENT, field, "%s %s", field,
		       what);
	return -1;
}

/* A string parameter: str or bin of valid UTF-8. */
static int str_arg(struct rpc_call *call, const char *name,
		   const char **s, size_t *len)
{
	const msgpack_object *o = rpc_arg(call, name);

	*s = NULL;
	*len = 0;
	if (!o)
		return 0;
	if (o->type == MSGPACK_OBJECT_STR) {
		*s = o->via.str.ptr;
		*len = o->via.str.size;
	} else if (o->type == MSGPACK_OBJECT_BIN) {
		*s = o->via.bin.ptr;
		*len = o->via.bin.size;
	} else {
		return fail(call, name, "must be a string");
	}
	if (!text_utf8_valid(*s, *len))
		return fail(call, name, "is not valid UTF-8");
	return 0;
}

/* A string parameter folded into out (size bytes); "" when absent. */
static int folded_arg(struct rpc_call *call, const char *name, char *out,
		      size_t size, bool *given)
{
	const char *s;
	size_t len;

	*given = false;
	out[0] = '\0';
	if (str_arg(call, name, &s, &len))
		return -1;
	if (!s)
		return 0;
	if (len >= size)
		return fail(call, name, "is too long");
	len = text_normalize(s, len, out);
	out[len] = '\0';
	*given = true;
	return 0;
}

/* An integer parameter in [lo, hi]; integral floats are accepted. */
static int int_arg(struct rpc_call *call, const char *name, int64_t lo,
		   int64_t hi, int64_t *out)
{
	const msgpack_object *o = rpc_arg(call, name);
	char range[64];

	if (!o)
		return 0;
	snprintf(range, sizeof(range), "must be an integer from %lld to %lld",
		 (long long)lo, (long long)hi);
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > (uint64_t)hi)
			return fail(call, name, range);
		*out = (int64_t)o->via.u64;
	} else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = o->via.i64;
	} else if (o->type == MSGPACK_OBJECT_FLOAT64 ||
		   o->type == MSGPACK_OBJECT_FLOAT32) {
		double d = o->via.f64;

		if (!isfinite(d) || d != floor(d) || d < (double)lo ||
		    d > (double)hi)
			return fail(call, name, range);
		*out = (int64_t)d;
	} else {
		return fail(call, name, range);
	}
	return *out < lo || *out > hi ? fail(call, name, range) : 0;
}

static int city_arg(struct rpc_call *call, const struct api *api,
		    struct search_args *a)
{
	bool given;

	if (folded_arg(call, "city", a->city, sizeof(a->city), &given))
		return -1;
	if (!given)
		return 0;
	if (strlen(a->city) != 6 ||
	    ref_division_level(api->ref, a->city, 6) == REF_NONE)
		return fail(call, "city", "must be a known 6-digit division "
			    "code");
	a->q.city = a->city;
	return 0;
}

static int filter_args(struct rpc_call *call, const struct api *api,
		       struct search_args *a)
{
	char edu[32];
	bool given;

	if (city_arg(call, api, a))
		return -1;
	if (folded_arg(call, "category", a->category, sizeof(a->category),
		       &given))
		return -1;
	if (given && a->category[0] == '\0')
		return fail(call, "category", "must not be empty");
	if (given) {
		a->q.category = a->category;
		a->q.category_len = strlen(a->category);
	}
	if (folded_arg(call, "education", edu, sizeof(edu), &given))
		return -1;
	if (given) {
		a->q.education = index_education_parse(edu, strlen(edu));
		if (a->q.education == INDEX_EDU_ANY)
			return fail(call, "education", "must be one of 专科, "
				    "本科, 硕士, 博士");
	}
	return int_arg(call, "salary_min", 0, INT32_MAX, &a->q.salary_min);
}

static int read_args(struct rpc_call *call, const struct api *api,
		     struct search_args *a)
{
	const msgpack_object *open = rpc_arg(call, "open_only");
	int64_t k = SEARCH_K_DEFAULT, offset = 0;

	memset(a, 0, sizeof(*a));
	a->q.education = INDEX_EDU_ANY;
	a->q.salary_min = -1;
	a->q.open_only = true;
	if (str_arg(call, "q", &a->q.q, &a->q.q_len) ||
	    filter_args(call, api, a))
		return -1;
	if (open && open->type != MSGPACK_OBJECT_BOOLEAN)
		return fail(call, "open_only", "must be true or false");
	if (open)
		a->q.open_only = open->via.boolean;
	if (int_arg(call, "k", 1, INDEX_K_MAX, &k) ||
	    int_arg(call, "offset", 0, INDEX_OFFSET_MAX, &offset))
		return -1;
	a->q.k = (uint32_t)k;
	a->q.offset = (uint32_t)offset;
	a->q.now = (int64_t)time(NULL);
	return 0;
}

static void reply(struct rpc_call *call, const struct index_hit *hits,
		  const struct index_result *res)
{
	msgpack_packer *pk = rpc_reply(call);

	msgpack_pack_map(pk, 3);
	rpc_pack_str(pk, "total");
	msgpack_pack_uint64(pk, res->total);
	rpc_pack_str(pk, "total_exact");
	if (res->total_exact)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	rpc_pack_str(pk, "items");
	msgpack_pack_array(pk, res->hits_len);
	for (uint32_t i = 0; i < res->hits_len; i++) {
		msgpack_pack_map(pk, 2);
		rpc_pack_str(pk, "posting_id");
		rpc_pack_str(pk, hits[i].id);
		rpc_pack_str(pk, "score");
		msgpack_pack_double(pk, hits[i].score);
	}
	rpc_reply_end(call);
}

static void search_posting(struct rpc_call *call)
{
	const struct api *api = call->conn->worker->server->app;
	struct index_hit hits[INDEX_K_MAX];
	struct index_result res;
	struct search_args a;
	int rc;

	if (read_args(call, api, &a))
		return;
	if (!api->index)
		return rpc_reply_fail(call, PROTO_UNAVAILABLE, NULL,
				      "the posting index is not loaded");
	rc = index_search(api->index, &a.q, hits, &res);
	if (rc == -E2BIG)
		return rpc_reply_fail(call, PROTO_INVALID_ARGUMENT, "q",
				      "q has more than %d distinct terms",
				      INDEX_QUERY_TERMS_MAX);
	if (rc == -ENOMEM)
		return rpc_reply_fail(call, PROTO_UNAVAILABLE, NULL,
				      "out of memory");
	if (rc)
		return rpc_reply_fail(call, PROTO_INTERNAL, NULL,
				      "search failed: %s", strerror(-rc));
	reply(call, hits, &res);
}

const struct rpc_method search_methods[] = {
	{ "posting.search", search_posting, 0 },
};
const unsigned search_methods_len = sizeof(search_methods) /
				    sizeof(search_methods[0]);
