/*
 * matchctl: the operator's command line for a running matchd.
 *
 * One process, one thread, one connection.  Each command maps onto one or
 * a few msgpack-RPC methods through client.c; JSON typed on the command
 * line or read from files is converted with jsonmp.c.  `import` streams a
 * JSON Lines file into the daemon as pipelined put_many batches with
 * memory bounded by the batch and pipeline limits below, whatever the
 * file's size; `export` pages through `scan` and writes the same shape
 * back out.  docs/cli.md is the manual.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <msgpack.h>

#include "client.h"
#include "jsonmp.h"

/* Exit statuses: 0 success, 1 failure, 2 import with rejected lines. */
#define EXIT_FAILED 1
#define EXIT_REJECTED 2
#define EXIT_USAGE 64

#define DEFAULT_ADDR "127.0.0.1:7411"
/* A token file is a short secret; anything longer is a wrong path. */
#define TOKEN_BYTES_MAX 1024

struct ctl {
	const char *addr;
	const char *token_file;
	bool json;
	struct client_opts opts;
	struct client *c;
};

struct command {
	const char *name;
	int args_min;
	int args_max;          /* -1: any number */
	bool kind_first;       /* the first argument is a KIND */
	int (*run)(struct ctl *ctl, int argc, char **argv);
	const char *usage;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool str_is(const msgpack_object *o, const char *s)
{
	const char *p;
	size_t len;

	return o && client_obj_str(o, &p, &len) && len == strlen(s) &&
	       memcmp(p, s, len) == 0;
}

/* --- output --- */

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "matchctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(matchctl --help lists the commands)\n");
	return EXIT_USAGE;
}

static void print_error_object(const msgpack_object *error)
{
	struct client_error e;

	client_error_read(error, &e);
	if (e.field[0])
		fprintf(stderr, "error: %s: %s (field: %s)\n", e.code,
			e.message, e.field);
	else
		fprintf(stderr, "error: %s: %s\n", e.code, e.message);
}

static int transport_error(struct ctl *ctl, const char *what, int rc)
{
	const char *detail = ctl->c ? client_detail(ctl->c) : "";

	fprintf(stderr, "error: %s: %s\n", what,
		detail[0] ? detail : strerror(-rc));
	return EXIT_FAILED;
}

/* Prints obj as JSON: indented, or on one line with --json. */
static int print_json(struct ctl *ctl, FILE *f, const msgpack_object *obj)
{
	size_t flags = JSON_ENCODE_ANY | JSON_PRESERVE_ORDER;
	json_t *v;
	int rc = jsonmp_from_msgpack(obj, &v);

	if (rc) {
		fprintf(stderr, "error: result cannot be shown as JSON: %s\n",
			strerror(-rc));
		return EXIT_FAILED;
	}
	flags |= ctl->json ? JSON_COMPACT : JSON_INDENT(2);
	rc = json_dumpf(v, f, flags);
	json_decref(v);
	if (rc || fputc('\n', f) == EOF) {
		fprintf(stderr, "error: writing output failed\n");
		return EXIT_FAILED;
	}
	return 0;
}

/* --- connection and calls --- */

/* Reads the token file; trailing white space is not part of the token. */
static int read_token(const char *path, char *token, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -errno;
	n = fread(token, 1, cap, f);
	fclose(f);
	if (n == cap)
		return -EFBIG;
	while (n > 0 && strchr(" \t\r\n\v\f", token[n - 1]))
		n--;
	token[n] = '\0';
	return 0;
}

static int say_hello(struct ctl *ctl)
{
	char token[TOKEN_BYTES_MAX + 1];
	struct client_error err;
	int rc = read_token(ctl->token_file, token, sizeof(token));

	if (rc) {
		fprintf(stderr, "error: token file %s: %s\n", ctl->token_file,
			rc == -EFBIG ? "longer than 1024 bytes" :
			strerror(-rc));
		return EXIT_FAILED;
	}
	rc = client_hello(ctl->c, token, "matchctl", &err);
	if (rc == -EACCES) {
		fprintf(stderr, "error: hello: %s: %s\n", err.code,
			err.message);
		return EXIT_FAILED;
	}
	return rc ? transport_error(ctl, "hello", rc) : 0;
}

static int ctl_connect(struct ctl *ctl)
{
	int rc = client_connect(ctl->addr, &ctl->opts, &ctl->c);

	if (rc) {
		fprintf(stderr, "error: connect %s: %s\n", ctl->addr,
			rc == -EINVAL ? "not HOST:PORT or a socket path" :
			rc == -ENOENT ? "host not found" : strerror(-rc));
		return EXIT_FAILED;
	}
	return ctl->token_file ? say_hello(ctl) : 0;
}

/* Calls method; prints any failure.  Returns 0 or an exit status. */
static int rpc(struct ctl *ctl, const char *method,
	       const msgpack_sbuffer *params, struct client_msg *msg)
{
	int rc = client_call(ctl->c, method, params ? params->data : NULL,
			     params ? params->size : 0, msg);

	if (rc)
		return transport_error(ctl, method, rc);
	if (msg->error) {
		print_error_object(msg->error);
		return EXIT_FAILED;
	}
	return 0;
}

/* Builds "[{k: v, ...}]" params; pack failures are collected in failed. */
struct params {
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int failed;
};

static void params_begin(struct params *p, size_t fields)
{
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
	p->failed = msgpack_pack_array(&p->pk, 1);
	p->failed |= msgpack_pack_map(&p->pk, fields);
}

static void params_str(struct params *p, const char *key, const char *val)
{
	p->failed |= msgpack_pack_str_with_body(&p->pk, key, strlen(key));
	p->failed |= msgpack_pack_str_with_body(&p->pk, val, strlen(val));
}

static void params_int(struct params *p, const char *key, int64_t val)
{
	p->failed |= msgpack_pack_str_with_body(&p->pk, key, strlen(key));
	p->failed |= msgpack_pack_int64(&p->pk, val);
}

/* Calls method with p (then freed); as rpc(). */
static int rpc_params(struct ctl *ctl, const char *method, struct params *p,
		      struct client_msg *msg)
{
	int rc;

	if (p->failed) {
		fprintf(stderr, "error: out of memory\n");
		rc = EXIT_FAILED;
	} else {
		rc = rpc(ctl, method, &p->sb, msg);
	}
	msgpack_sbuffer_destroy(&p->sb);
	return rc;
}

/* --- JSON input --- */

/* Top-level fields the importer and `put` drop before sending. */
static bool field_dropped(const char *key)
{
	return key[0] == '_' || strcmp(key, "kind") == 0;
}

/*
 * Deepest nesting of a record sent by `put` and `import`, counting the
 * record's own object.  Valid records nest 3 (a resume's experiences).  The
 * daemon refuses requests nested deeper than 16 by default, put_many wraps
 * each record three levels down ([{"items": [record]}]), and the daemon
 * closes the connection on such a frame, losing the answers to batches
 * still in flight; so a deeper line is refused here, with its number.
 */
#define RECORD_DEPTH_MAX 12

/*
 * Packs a JSON object as a map without its dropped fields.  Returns 0, or
 * jsonmp_pack's -E2BIG (nested deeper than RECORD_DEPTH_MAX) / -ENOMEM.
 */
static int pack_record(msgpack_packer *pk, json_t *obj)
{
	const char *key;
	size_t key_len;
	json_t *val;
	size_t kept = 0;
	int rc = 0;

	json_object_keylen_foreach(obj, key, key_len, val)
		kept += !field_dropped(key);
	if (msgpack_pack_map(pk, kept))
		return -ENOMEM;
	json_object_keylen_foreach(obj, key, key_len, val) {
		if (rc || field_dropped(key))
			continue;
		if (msgpack_pack_str_with_body(pk, key, key_len))
			return -ENOMEM;
		rc = jsonmp_pack(pk, val, RECORD_DEPTH_MAX - 1);
	}
	return rc;
}

/* Parses text ("-" reads stdin) as a JSON object. */
static json_t *parse_object(const char *text, const char *what)
{
	json_error_t jerr;
	json_t *v;

	if (strcmp(text, "-") == 0)
		v = json_loadf(stdin, JSON_ALLOW_NUL, &jerr);
	else
		v = json_loads(text, JSON_ALLOW_NUL, &jerr);
	if (!v) {
		fprintf(stderr, "error: %s is not JSON: %s (column %d)\n",
			what, jerr.text, jerr.column);
		return NULL;
	}
	if (!json_is_object(v)) {
		fprintf(stderr, "error: %s must be a JSON object\n", what);
		json_decref(v);
		return NULL;
	}
	return v;
}

/* Packs "[obj]" into p from the JSON object text. */
static int params_from_json(struct params *p, const char *text,
			    bool drop_fields)
{
	json_t *obj = parse_object(text, "params");
	int rc;

	if (!obj)
		return EXIT_USAGE;
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
	p->failed = msgpack_pack_array(&p->pk, 1);
	rc = drop_fields ? pack_record(&p->pk, obj) :
			   jsonmp_pack(&p->pk, obj, JSONMP_DEPTH_MAX);
	json_decref(obj);
	if (rc) {
		fprintf(stderr, "error: params: %s\n", rc != -E2BIG ?
			strerror(-rc) : drop_fields ? "record nested deeper "
			"than 12 levels" : "nested deeper than 64 levels");
		msgpack_sbuffer_destroy(&p->sb);
		return EXIT_USAGE;
	}
	return 0;
}

/* --- simple commands --- */

#define RECORD_KINDS 4
static const char *const record_kinds[RECORD_KINDS] = {
	"student", "resume", "company", "posting",
};

static bool kind_valid(const char *kind)
{
	for (size_t i = 0; i < RECORD_KINDS; i++)
		if (strcmp(kind, record_kinds[i]) == 0)
			return true;
	return false;
}

static int check_kind(const char *kind)
{
	if (kind_valid(kind))
		return 0;
	return usage_error("unknown kind \"%s\" (student, resume, company, "
			   "posting)", kind);
}

/* The key field of a kind: resumes are keyed by their student. */
static const char *kind_key(const char *kind)
{
	return strcmp(kind, "resume") == 0 ? "student_id" : "id";
}

static int cmd_ping(struct ctl *ctl, int argc, char **argv)
{
	struct client_msg m;
	double t0 = now_s();
	int rc = rpc(ctl, "ping", NULL, &m);

	(void)argc;
	(void)argv;
	if (rc)
		return rc;
	if (ctl->json || !str_is(m.result, "pong"))
		return print_json(ctl, stdout, m.result);
	printf("pong (%.3f ms)\n", (now_s() - t0) * 1e3);
	return 0;
}

static int cmd_call(struct ctl *ctl, int argc, char **argv)
{
	struct client_msg m;
	struct params p;
	int rc;

	if (argc < 2)
		return rpc(ctl, argv[0], NULL, &m) ? EXIT_FAILED :
		       print_json(ctl, stdout, m.result);
	rc = params_from_json(&p, argv[1], false);
	if (rc)
		return rc;
	rc = rpc_params(ctl, argv[0], &p, &m);
	return rc ? rc : print_json(ctl, stdout, m.result);
}

static int cmd_get(struct ctl *ctl, int argc, char **argv)
{
	char method[32];
	struct client_msg m;
	struct params p;
	int rc;

	(void)argc;
	snprintf(method, sizeof(method), "%s.get", argv[0]);
	params_begin(&p, 1);
	params_str(&p, kind_key(argv[0]), argv[1]);
	rc = rpc_params(ctl, method, &p, &m);
	return rc ? rc : print_json(ctl, stdout, m.result);
}

/* "a, b, c" from an array of strings, for `missing`. */
static void print_str_list(const msgpack_object *list)
{
	if (!list || list->type != MSGPACK_OBJECT_ARRAY)
		return;
	for (uint32_t i = 0; i < list->via.array.size; i++) {
		const char *s;
		size_t len;

		if (client_obj_str(&list->via.array.ptr[i], &s, &len))
			printf("%s%.*s", i ? ", " : "", (int)len, s);
	}
}

/* Prints the string under key in map, or fallback when there is none. */
static void print_text(const msgpack_object *map, const char *key,
		       const char *fallback)
{
	const msgpack_object *v = client_map_get(map, key);
	const char *s;
	size_t len;

	if (v && client_obj_str(v, &s, &len))
		printf("%.*s", (int)len, s);
	else
		printf("%s", fallback);
}

static bool bool_field(const msgpack_object *map, const char *key)
{
	const msgpack_object *v = client_map_get(map, key);

	return v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

static long long int_field(const msgpack_object *map, const char *key)
{
	const msgpack_object *v = client_map_get(map, key);

	if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    v->via.u64 <= INT64_MAX)
		return (long long)v->via.u64;
	if (v && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return (long long)v->via.i64;
	return 0;
}

/* Completeness and missing items of a resume.put or match.get result. */
static void print_completeness(const msgpack_object *result)
{
	const msgpack_object *missing = client_map_get(result, "missing");

	printf("completeness %lld%%", int_field(result, "completeness"));
	if (missing && missing->type == MSGPACK_OBJECT_ARRAY &&
	    missing->via.array.size > 0) {
		printf(", missing: ");
		print_str_list(missing);
	}
}

static int cmd_put(struct ctl *ctl, int argc, char **argv)
{
	char method[32];
	struct client_msg m;
	struct params p;
	int rc;

	(void)argc;
	rc = params_from_json(&p, argv[1], true);
	if (rc)
		return rc;
	snprintf(method, sizeof(method), "%s.put", argv[0]);
	rc = rpc_params(ctl, method, &p, &m);
	if (rc || ctl->json)
		return rc ? rc : print_json(ctl, stdout, m.result);
	printf("%s ", argv[0]);
	print_text(m.result, "id", "?");
	printf(": %s", bool_field(m.result, "created") ? "created" :
	       "updated");
	if (strcmp(argv[0], "resume") == 0) {
		printf(", ");
		print_completeness(m.result);
	}
	printf("\n");
	return 0;
}

static int cmd_delete(struct ctl *ctl, int argc, char **argv)
{
	char method[32];
	struct client_msg m;
	struct params p;
	int rc;

	(void)argc;
	snprintf(method, sizeof(method), "%s.delete", argv[0]);
	params_begin(&p, 1);
	params_str(&p, kind_key(argv[0]), argv[1]);
	rc = rpc_params(ctl, method, &p, &m);
	if (rc || ctl->json)
		return rc ? rc : print_json(ctl, stdout, m.result);
	printf("%s %s: %s\n", argv[0], argv[1],
	       bool_field(m.result, "deleted") ? "deleted" :
	       "not found, nothing deleted");
	return 0;
}

static int cmd_close(struct ctl *ctl, int argc, char **argv)
{
	struct client_msg m;
	struct params p;
	int rc;

	(void)argc;
	params_begin(&p, 1);
	params_str(&p, "id", argv[0]);
	rc = rpc_params(ctl, "posting.close", &p, &m);
	if (rc || ctl->json)
		return rc ? rc : print_json(ctl, stdout, m.result);
	printf("posting %s: %s\n", argv[0], bool_field(m.result, "closed") ?
	       "closed" : "was already closed");
	return 0;
}

/* --- stats --- */

/* Longest dotted key path shown; deeper parts are cut. */
#define STATS_KEY_BYTES_MAX 256

typedef void (*row_fn)(void *arg, const char *key, const msgpack_object *v);

/* Calls fn for every leaf of a nested map, with keys joined by dots. */
static void walk_rows(const msgpack_object *map, char *key, size_t key_len,
		      unsigned depth, row_fn fn, void *arg)
{
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];
		const char *name = "?";
		size_t name_len = 1;
		int n;

		(void)client_obj_str(&kv->key, &name, &name_len);
		n = snprintf(key + key_len, STATS_KEY_BYTES_MAX - key_len,
			     "%s%.*s", key_len ? "." : "", (int)name_len,
			     name);
		if (n < 0)
			continue;
		if (kv->val.type == MSGPACK_OBJECT_MAP &&
		    depth < JSONMP_DEPTH_MAX &&
		    key_len + (size_t)n < STATS_KEY_BYTES_MAX - 1)
			walk_rows(&kv->val, key, key_len + (size_t)n,
				  depth + 1, fn, arg);
		else
			fn(arg, key, &kv->val);
		key[key_len] = '\0';
	}
}

static void row_width(void *arg, const char *key, const msgpack_object *v)
{
	int *width = arg;

	(void)v;
	if ((int)strlen(key) > *width)
		*width = (int)strlen(key);
}

static void print_scalar(const msgpack_object *v)
{
	json_t *j;
	char *text;

	switch (v->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		printf("%" PRIu64, v->via.u64);
		return;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		printf("%" PRId64, v->via.i64);
		return;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		printf("%.6g", v->via.f64);
		return;
	case MSGPACK_OBJECT_STR:
	case MSGPACK_OBJECT_BIN:
		printf("%.*s", (int)v->via.str.size, v->via.str.ptr);
		return;
	default:
		break;
	}
	if (jsonmp_from_msgpack(v, &j))
		return;
	text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY |
			  JSON_PRESERVE_ORDER);
	printf("%s", text ? text : "?");
	free(text);
	json_decref(j);
}

static void row_print(void *arg, const char *key, const msgpack_object *v)
{
	printf("%-*s  ", *(int *)arg, key);
	print_scalar(v);
	printf("\n");
}

static int cmd_stats(struct ctl *ctl, int argc, char **argv)
{
	struct client_msg m;
	char key[STATS_KEY_BYTES_MAX] = "";
	int width = 0;
	int rc = rpc(ctl, "stats", NULL, &m);

	(void)argc;
	(void)argv;
	if (rc)
		return rc;
	if (ctl->json || m.result->type != MSGPACK_OBJECT_MAP)
		return print_json(ctl, stdout, m.result);
	walk_rows(m.result, key, 0, 0, row_width, &width);
	walk_rows(m.result, key, 0, 0, row_print, &width);
	return 0;
}

/* --- match and search --- */

static double num_field(const msgpack_object *map, const char *key)
{
	const msgpack_object *v = client_map_get(map, key);

	if (v && (v->type == MSGPACK_OBJECT_FLOAT32 ||
		  v->type == MSGPACK_OBJECT_FLOAT64))
		return v->via.f64;
	return (double)int_field(map, key);
}

/* A rank / score / id table of items [{<id_key>, score}]. */
static void print_ranked(const msgpack_object *items, const char *id_key)
{
	if (!items || items->type != MSGPACK_OBJECT_ARRAY ||
	    items->via.array.size == 0) {
		printf("no postings\n");
		return;
	}
	printf("%4s  %-6s  %s\n", "rank", "score", "posting");
	for (uint32_t i = 0; i < items->via.array.size; i++) {
		const msgpack_object *item = &items->via.array.ptr[i];

		printf("%4" PRIu32 "  %6.4f  ", i + 1,
		       num_field(item, "score"));
		print_text(item, id_key, "?");
		printf("\n");
	}
}

/* Parses a positive count argument; -1 when it is not one. */
static long long parse_count(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 1)
		return -1;
	return v;
}

static int cmd_match(struct ctl *ctl, int argc, char **argv)
{
	struct client_msg m;
	struct params p;
	long long k = argc > 1 ? parse_count(argv[1]) : 0;
	int rc;

	if (k < 0)
		return usage_error("K must be a positive integer, not \"%s\"",
				   argv[1]);
	params_begin(&p, k ? 2 : 1);
	params_str(&p, "student_id", argv[0]);
	if (k)
		params_int(&p, "k", k);
	rc = rpc_params(ctl, "match.get", &p, &m);
	if (rc || ctl->json)
		return rc ? rc : print_json(ctl, stdout, m.result);
	printf("student %s: ", argv[0]);
	if (bool_field(m.result, "eligible")) {
		printf("eligible, ");
	} else {
		printf("not eligible (");
		print_text(m.result, "reason", "?");
		printf("), ");
	}
	print_completeness(m.result);
	printf("\n");
	print_ranked(client_map_get(m.result, "items"), "posting_id");
	return 0;
}

/* Longest search query accepted, in bytes. */
#define QUERY_BYTES_MAX 4096

struct search_args {
	const char *city;
	const char *category;
	long long k;
	char q[QUERY_BYTES_MAX];
};

/* Reads "--name VALUE" / "--name=VALUE" at argv[*i]; NULL if not name. */
static const char *flag_value(int argc, char **argv, int *i,
			      const char *name)
{
	size_t len = strlen(name);

	if (strncmp(argv[*i], name, len) != 0)
		return NULL;
	if (argv[*i][len] == '=')
		return argv[*i] + len + 1;
	if (argv[*i][len] != '\0' || *i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static int parse_search(int argc, char **argv, struct search_args *a)
{
	size_t q_len = 0;
	bool words = false;

	for (int i = 0; i < argc; i++) {
		const char *v;

		if (!words && strcmp(argv[i], "--") == 0) {
			words = true;
		} else if (!words &&
			   (v = flag_value(argc, argv, &i, "--city"))) {
			a->city = v;
		} else if (!words &&
			   (v = flag_value(argc, argv, &i, "--category"))) {
			a->category = v;
		} else if (!words && (v = flag_value(argc, argv, &i, "--k"))) {
			a->k = parse_count(v);
			if (a->k < 0)
				return usage_error("--k needs a positive "
						   "integer, not \"%s\"", v);
		} else if (!words && argv[i][0] == '-' && argv[i][1]) {
			return usage_error("search: unknown option %s",
					   argv[i]);
		} else {
			int n = snprintf(a->q + q_len, sizeof(a->q) - q_len,
					 "%s%s", q_len ? " " : "", argv[i]);

			if (n < 0 || q_len + (size_t)n >= sizeof(a->q))
				return usage_error("search: query longer "
						   "than %zu bytes",
						   sizeof(a->q) - 1);
			q_len += (size_t)n;
		}
	}
	return 0;
}

static int cmd_search(struct ctl *ctl, int argc, char **argv)
{
	struct search_args a = { .k = 0 };
	struct client_msg m;
	struct params p;
	int rc = parse_search(argc, argv, &a);

	if (rc)
		return rc;
	params_begin(&p, (a.q[0] != '\0') + (a.city != NULL) +
		     (a.category != NULL) + (a.k > 0));
	if (a.q[0])
		params_str(&p, "q", a.q);
	if (a.city)
		params_str(&p, "city", a.city);
	if (a.category)
		params_str(&p, "category", a.category);
	if (a.k > 0)
		params_int(&p, "k", a.k);
	rc = rpc_params(ctl, "posting.search", &p, &m);
	if (rc || ctl->json)
		return rc ? rc : print_json(ctl, stdout, m.result);
	printf("%lld postings match\n", int_field(m.result, "total"));
	print_ranked(client_map_get(m.result, "items"), "posting_id");
	return 0;
}

/* --- import --- */

/*
 * Pipeline limits.  A batch of 500 records is a good group commit for the
 * daemon and far below its 16 MiB frame limit; eight batches in flight keep
 * its writer busy while the next one is read and packed.  The byte cap
 * keeps a batch of unusually large records under the frame limit too, and
 * a line over 4 MiB cannot be a valid record at the daemon's string and
 * list limits anyway.  Memory: one line, its JSON tree, one batch (at most
 * 4 MiB plus one record) and the responses of eight batches.
 */
#define IMPORT_BATCH_ITEMS_MAX 500
#define IMPORT_BATCH_BYTES_MAX (4u << 20)
#define IMPORT_INFLIGHT_MAX 8
#define IMPORT_LINE_BYTES_MAX (4u << 20)
#define PROGRESS_INTERVAL_S 0.25

enum item_kind {
	ITEM_COMPANY,
	ITEM_STUDENT,
	ITEM_RESUME,
	ITEM_POSTING,
	ITEM_CLOSE,
	ITEM_KINDS,
};

static const char *const item_kinds[ITEM_KINDS] = {
	"company", "student", "resume", "posting", "posting.close",
};

static const char *const item_methods[ITEM_KINDS] = {
	"company.put_many", "student.put_many", "resume.put_many",
	"posting.put_many", "posting.close",
};

/* A request in flight, with the input line of each of its items. */
struct slot {
	bool used;
	uint32_t msgid;
	enum item_kind kind;
	uint32_t n;
	uint64_t lines[IMPORT_BATCH_ITEMS_MAX];
};

/*
 * The batch being filled.  Its buffer starts with the params head
 * [{"items": [ in a fixed 13-byte form (array32 count, patched when the
 * batch is sent), so each item is packed once, straight into the request.
 */
#define BATCH_HEAD_BYTES 13
#define BATCH_COUNT_OFFSET 9
static const char batch_head[BATCH_HEAD_BYTES] = {
	'\x91', '\x81', '\xa5', 'i', 't', 'e', 'm', 's', '\xdd', 0, 0, 0, 0,
};

struct batch {
	enum item_kind kind;
	uint32_t n;
	uint64_t lines[IMPORT_BATCH_ITEMS_MAX];
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

struct line {
	char *buf;
	size_t len;
	size_t cap;
	bool too_long;
};

struct import {
	struct ctl *ctl;
	FILE *in;
	struct line line;
	struct batch batch;
	msgpack_sbuffer close_params;
	struct slot slots[IMPORT_INFLIGHT_MAX];
	unsigned inflight;
	unsigned postings_inflight;
	uint32_t batch_items_max;  /* 1..IMPORT_BATCH_ITEMS_MAX */
	uint64_t lines;
	uint64_t stored;
	uint64_t closed;
	uint64_t rejected;
	uint64_t bytes_read;
	uint64_t bytes_total;   /* 0 when the input is not a regular file */
	double start_s;
	double drawn_s;
	bool progress;          /* stderr is a terminal */
	bool drawn;             /* a progress line is on screen */
};

static void progress_clear(struct import *im)
{
	if (im->drawn)
		fputs("\r\033[K", stderr);
	im->drawn = false;
}

static void progress_draw(struct import *im)
{
	double t = now_s();
	double elapsed = t - im->start_s;

	if (!im->progress || t - im->drawn_s < PROGRESS_INTERVAL_S)
		return;
	im->drawn_s = t;
	fprintf(stderr, "\r\033[Kimport: %" PRIu64 " lines, %" PRIu64
		" rejected, %.0f lines/s", im->lines, im->rejected,
		elapsed > 0 ? (double)im->lines / elapsed : 0.0);
	if (im->bytes_total)
		fprintf(stderr, ", %d%%",
			(int)(100 * im->bytes_read / im->bytes_total));
	im->drawn = true;
}

static void reject(struct import *im, uint64_t line, const char *code,
		   const char *message, const char *field)
{
	progress_clear(im);
	im->rejected++;
	if (field && field[0])
		fprintf(stderr, "line %" PRIu64 ": %s: %s (field %s)\n", line,
			code, message, field);
	else
		fprintf(stderr, "line %" PRIu64 ": %s: %s\n", line, code,
			message);
}

/* Reports a failure that ends the import.  Returns -1. */
static int import_failed(struct import *im, const char *what, int rc)
{
	progress_clear(im);
	transport_error(im->ctl, what, rc);
	return -1;
}

static int protocol_failure(struct import *im, const char *what)
{
	progress_clear(im);
	fprintf(stderr, "error: protocol: %s\n", what);
	return -1;
}

static void batch_reset(struct batch *b)
{
	b->n = 0;
	b->sb.size = 0;
	/* Cannot fail: the buffer has held at least this much before. */
	(void)msgpack_sbuffer_write(&b->sb, batch_head, BATCH_HEAD_BYTES);
}

static int batch_init(struct batch *b)
{
	msgpack_sbuffer_init(&b->sb);
	msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
	b->n = 0;
	return msgpack_sbuffer_write(&b->sb, batch_head, BATCH_HEAD_BYTES);
}

/* Errors that no later batch can escape: stop instead of rejecting. */
static bool code_is_fatal(const char *code)
{
	return strcmp(code, "unauthorized") == 0 ||
	       strcmp(code, "unavailable") == 0 ||
	       strcmp(code, "unknown_method") == 0 ||
	       strcmp(code, "bad_request") == 0;
}

/* The whole request failed: reject every line in it, or stop. */
static int slot_failed(struct import *im, const struct slot *s,
		       const msgpack_object *error)
{
	struct client_error err;

	client_error_read(error, &err);
	if (code_is_fatal(err.code)) {
		progress_clear(im);
		fprintf(stderr, "error: %s: %s: %s\n", item_methods[s->kind],
			err.code, err.message);
		return -1;
	}
	for (uint32_t i = 0; i < s->n; i++)
		reject(im, s->lines[i], err.code, err.message, err.field);
	return 0;
}

static int item_error(struct import *im, const struct slot *s,
		      const msgpack_object *e)
{
	const msgpack_object *index = client_map_get(e, "index");
	struct client_error err;

	if (!index || index->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    index->via.u64 >= s->n)
		return protocol_failure(im, "a put_many error names no item "
					"of its batch");
	client_error_read(e, &err);
	reject(im, s->lines[index->via.u64], err.code, err.message,
	       err.field);
	return 0;
}

static int slot_done(struct import *im, const struct slot *s,
		     const msgpack_object *result)
{
	const msgpack_object *errors = client_map_get(result, "errors");
	const msgpack_object *stored = client_map_get(result, "stored");
	uint32_t failed = 0;

	if (s->kind == ITEM_CLOSE) {
		im->closed++;
		return 0;
	}
	if (errors && errors->type == MSGPACK_OBJECT_ARRAY) {
		failed = errors->via.array.size;
		for (uint32_t i = 0; i < failed; i++)
			if (item_error(im, s, &errors->via.array.ptr[i]))
				return -1;
	}
	if (stored && stored->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		im->stored += stored->via.u64;
	else
		im->stored += failed < s->n ? s->n - failed : 0;
	return 0;
}

/* Settles the slot a response answers.  Returns 0 or -1. */
static int settle(struct import *im, const struct client_msg *m)
{
	struct slot *s = NULL;
	int rc;

	if (m->type == CLIENT_NOTIFICATION)
		return 0;
	for (unsigned i = 0; i < IMPORT_INFLIGHT_MAX && !s; i++)
		if (im->slots[i].used && im->slots[i].msgid == m->msgid)
			s = &im->slots[i];
	if (!s)
		return protocol_failure(im, "a response to a request that "
					"was not sent");
	rc = m->error ? slot_failed(im, s, m->error) :
			slot_done(im, s, m->result);
	s->used = false;
	im->inflight--;
	if (s->kind == ITEM_POSTING)
		im->postings_inflight--;
	return rc;
}

/* Reads one response and settles its slot.  Returns 0 or -1. */
static int receive_one(struct import *im)
{
	struct client_msg m;
	int rc = client_recv(im->ctl->c, &m);

	if (rc)
		return import_failed(im, "receive", rc);
	return settle(im, &m);
}

/*
 * After the server hung up on a write: report the answers it sent before
 * that (a too_large or bad_request says why it closed).  Reads only what
 * is already buffered or arriving before end of file.
 */
static void settle_answered(struct import *im)
{
	struct client_msg m;

	while (im->inflight > 0 && client_recv(im->ctl->c, &m) == 0)
		if (settle(im, &m))
			return;
}

static int send_failed(struct import *im, const char *method, int rc)
{
	char detail[CLIENT_ERROR_MESSAGE_MAX];

	snprintf(detail, sizeof(detail), "%s", client_detail(im->ctl->c));
	if (rc == -EPIPE || rc == -ECONNRESET)
		settle_answered(im);
	progress_clear(im);
	fprintf(stderr, "error: %s: %s\n", method,
		detail[0] ? detail : strerror(-rc));
	return -1;
}

/* Sends a request once a slot is free.  Returns 0 or -1. */
static int send_slot(struct import *im, enum item_kind kind,
		     const char *data, size_t len, const uint64_t *lines,
		     uint32_t n)
{
	struct slot *s = NULL;
	uint32_t msgid;
	int rc;

	while (im->inflight == IMPORT_INFLIGHT_MAX)
		if (receive_one(im))
			return -1;
	rc = client_send(im->ctl->c, item_methods[kind], data, len, &msgid);
	if (rc)
		return send_failed(im, item_methods[kind], rc);
	for (unsigned i = 0; i < IMPORT_INFLIGHT_MAX && !s; i++)
		if (!im->slots[i].used)
			s = &im->slots[i];
	assert(s); /* inflight counts the used slots */
	*s = (struct slot){ .used = true, .msgid = msgid, .kind = kind,
			    .n = n };
	memcpy(s->lines, lines, n * sizeof(*lines));
	im->inflight++;
	if (kind == ITEM_POSTING)
		im->postings_inflight++;
	return 0;
}

static int flush(struct import *im)
{
	struct batch *b = &im->batch;
	unsigned char *count = (unsigned char *)b->sb.data +
			       BATCH_COUNT_OFFSET;
	int rc;

	if (b->n == 0)
		return 0;
	count[0] = (unsigned char)(b->n >> 24);
	count[1] = (unsigned char)(b->n >> 16);
	count[2] = (unsigned char)(b->n >> 8);
	count[3] = (unsigned char)b->n;
	rc = send_slot(im, b->kind, b->sb.data, b->sb.size, b->lines, b->n);
	batch_reset(b);
	return rc;
}

/* A pack failure of one line: too deep is the line's fault. */
static int pack_failed(struct import *im, int rc)
{
	if (rc == -E2BIG) {
		reject(im, im->lines, "invalid_argument", "record nested "
		       "deeper than 12 levels", NULL);
		return 0;
	}
	progress_clear(im);
	fprintf(stderr, "error: out of memory\n");
	return -1;
}

static int import_item(struct import *im, enum item_kind kind, json_t *obj)
{
	struct batch *b = &im->batch;
	size_t mark;
	int rc;

	if (b->n > 0 && b->kind != kind && flush(im))
		return -1;
	mark = b->sb.size;
	rc = pack_record(&b->pk, obj);
	if (rc) {
		b->sb.size = mark;
		return pack_failed(im, rc);
	}
	b->kind = kind;
	b->lines[b->n++] = im->lines;
	if (b->n == im->batch_items_max ||
	    b->sb.size >= IMPORT_BATCH_BYTES_MAX)
		return flush(im);
	return 0;
}

/*
 * A close goes out only after every posting batch before it has been
 * answered, so the posting it names is stored (or its line already
 * reported) by then.
 */
static int import_close(struct import *im, json_t *obj)
{
	uint64_t line = im->lines;
	msgpack_packer pk;
	int rc;

	if (flush(im))
		return -1;
	while (im->postings_inflight > 0)
		if (receive_one(im))
			return -1;
	im->close_params.size = 0;
	msgpack_packer_init(&pk, &im->close_params, msgpack_sbuffer_write);
	rc = msgpack_pack_array(&pk, 1) ? -ENOMEM : pack_record(&pk, obj);
	if (rc)
		return pack_failed(im, rc);
	return send_slot(im, ITEM_CLOSE, im->close_params.data,
			 im->close_params.size, &line, 1);
}

/* The line's kind; rejects the line and returns -1 when it has none. */
static int line_kind(struct import *im, json_t *obj, enum item_kind *kind)
{
	json_t *k = json_object_get(obj, "kind");
	char message[96];

	if (!k) {
		reject(im, im->lines, "invalid_argument", "kind is missing",
		       "kind");
		return -1;
	}
	for (int i = 0; i < ITEM_KINDS && json_is_string(k); i++) {
		if (strcmp(json_string_value(k), item_kinds[i]) == 0) {
			*kind = (enum item_kind)i;
			return 0;
		}
	}
	if (json_is_string(k))
		snprintf(message, sizeof(message), "unknown kind \"%.40s\"",
			 json_string_value(k));
	else
		snprintf(message, sizeof(message), "kind is not a string");
	reject(im, im->lines, "invalid_argument", message, "kind");
	return -1;
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!strchr(" \t\r\f\v", s[i]) || s[i] == '\0')
			return false;
	return true;
}

/* Handles the current line.  Returns 0, or -1 to end the import. */
static int import_line(struct import *im)
{
	const char *text = im->line.buf;
	size_t len = im->line.len;
	enum item_kind kind;
	json_error_t jerr;
	json_t *obj;
	int rc;

	if (im->line.too_long) {
		reject(im, im->lines, "too_large", "line longer than 4 MiB",
		       NULL);
		return 0;
	}
	/* A byte order mark some editors put at the start of a file. */
	if (im->lines == 1 && len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) {
		text += 3;
		len -= 3;
	}
	if (blank(text, len))
		return 0;
	obj = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
	if (!obj || !json_is_object(obj)) {
		char message[CLIENT_ERROR_MESSAGE_MAX];

		if (obj)
			snprintf(message, sizeof(message), "not a JSON object");
		else
			snprintf(message, sizeof(message), "column %d: %s",
				 jerr.column, jerr.text);
		reject(im, im->lines, "invalid_json", message, NULL);
		json_decref(obj);
		return 0;
	}
	rc = 0;
	if (line_kind(im, obj, &kind) == 0)
		rc = kind == ITEM_CLOSE ? import_close(im, obj) :
					  import_item(im, kind, obj);
	json_decref(obj);
	return rc;
}

static int line_grow(struct line *l)
{
	size_t cap = l->cap ? l->cap * 2 : 4096;
	char *buf;

	if (cap > IMPORT_LINE_BYTES_MAX)
		cap = IMPORT_LINE_BYTES_MAX;
	buf = realloc(l->buf, cap);
	if (!buf)
		return -ENOMEM;
	l->buf = buf;
	l->cap = cap;
	return 0;
}

/*
 * Reads the next line without its "\n" or "\r\n".  A line over the limit
 * is read to its end and flagged.  Returns 1, 0 at the end of the input,
 * or -errno.
 */
static int read_line(struct import *im)
{
	struct line *l = &im->line;
	int ch;

	l->len = 0;
	l->too_long = false;
	while ((ch = getc_unlocked(im->in)) != EOF) {
		im->bytes_read++;
		if (ch == '\n')
			break;
		if (l->len == IMPORT_LINE_BYTES_MAX) {
			l->too_long = true;
			continue;
		}
		if (l->len == l->cap && line_grow(l))
			return -ENOMEM;
		l->buf[l->len++] = (char)ch;
	}
	if (ferror(im->in))
		return -EIO;
	if (ch == EOF && l->len == 0 && !l->too_long)
		return 0;
	if (l->len > 0 && l->buf[l->len - 1] == '\r')
		l->len--;
	return 1;
}

static int import_run(struct import *im)
{
	int rc;

	while ((rc = read_line(im)) > 0) {
		im->lines++;
		if (import_line(im))
			return -1;
		if ((im->lines & 1023) == 0)
			progress_draw(im);
	}
	if (rc < 0) {
		progress_clear(im);
		fprintf(stderr, "error: reading input: %s\n", strerror(-rc));
		return -1;
	}
	if (flush(im))
		return -1;
	while (im->inflight > 0)
		if (receive_one(im))
			return -1;
	return 0;
}

static void import_summary(struct import *im)
{
	double elapsed = now_s() - im->start_s;
	double rate = elapsed > 0 ? (double)im->stored / elapsed : 0.0;

	progress_clear(im);
	if (im->ctl->json)
		printf("{\"lines\":%" PRIu64 ",\"stored\":%" PRIu64
		       ",\"closed\":%" PRIu64 ",\"rejected\":%" PRIu64
		       ",\"elapsed_s\":%.3f,\"records_per_s\":%.0f}\n",
		       im->lines, im->stored, im->closed, im->rejected,
		       elapsed, rate);
	else
		printf("import: %" PRIu64 " lines, %" PRIu64 " stored, %"
		       PRIu64 " closed, %" PRIu64 " rejected, %.3f s, %.0f "
		       "records/s\n", im->lines, im->stored, im->closed,
		       im->rejected, elapsed, rate);
}

static int import_open(struct import *im, const char *path)
{
	struct stat st;

	im->in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (!im->in) {
		fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(im->in), &st) == 0 && S_ISREG(st.st_mode))
		im->bytes_total = (uint64_t)st.st_size;
	if (batch_init(&im->batch)) {
		fprintf(stderr, "error: out of memory\n");
		return -1;
	}
	msgpack_sbuffer_init(&im->close_params);
	im->progress = isatty(STDERR_FILENO);
	im->start_s = now_s();
	return 0;
}

/* import [--batch N] FILE: the batch size and the path. */
static int parse_import(int argc, char **argv, uint32_t *batch,
			const char **path)
{
	int i = 0;
	const char *v = flag_value(argc, argv, &i, "--batch");
	long long n = v ? parse_count(v) : IMPORT_BATCH_ITEMS_MAX;

	if (n < 0 || n > IMPORT_BATCH_ITEMS_MAX)
		return usage_error("--batch needs 1..500, not \"%s\"", v);
	if (v)
		i++;
	if (i != argc - 1)
		return usage_error("usage: matchctl %s",
				   "import [--batch N] FILE|-");
	*batch = (uint32_t)n;
	*path = argv[i];
	return 0;
}

static int cmd_import(struct ctl *ctl, int argc, char **argv)
{
	struct import *im = calloc(1, sizeof(*im));
	const char *path = NULL;
	int rc;

	if (!im) {
		fprintf(stderr, "error: out of memory\n");
		return EXIT_FAILED;
	}
	rc = parse_import(argc, argv, &im->batch_items_max, &path);
	if (rc) {
		free(im);
		return rc;
	}
	im->ctl = ctl;
	rc = import_open(im, path);
	if (rc == 0) {
		rc = import_run(im);
		import_summary(im);
	}
	if (im->in && im->in != stdin)
		fclose(im->in);
	msgpack_sbuffer_destroy(&im->batch.sb);
	msgpack_sbuffer_destroy(&im->close_params);
	free(im->line.buf);
	rc = rc ? EXIT_FAILED : im->rejected ? EXIT_REJECTED : 0;
	free(im);
	return rc;
}

/* --- export --- */

/* Records per scan page: the daemon's largest. */
#define EXPORT_PAGE_ITEMS 1000
/* Longest id carried from one page to the next. */
#define EXPORT_ID_BYTES_MAX 256

struct exporter {
	struct ctl *ctl;
	const char *kind;
	FILE *out;
	bool closes;        /* the pass that writes posting.close lines */
	uint64_t records;
	uint64_t closed;
};

static int write_json_line(struct exporter *ex, json_t *line)
{
	if (json_dumpf(line, ex->out, JSON_COMPACT | JSON_PRESERVE_ORDER) ||
	    fputc('\n', ex->out) == EOF) {
		fprintf(stderr, "error: writing the export failed: %s\n",
			strerror(errno));
		return EXIT_FAILED;
	}
	return 0;
}

/* Writes {"kind": KIND, ...the record...}. */
static int write_record(struct exporter *ex, const msgpack_object *item)
{
	const char *key;
	size_t key_len;
	json_t *rec;
	json_t *val;
	json_t *line;
	int rc = jsonmp_from_msgpack(item, &rec);

	if (rc || !json_is_object(rec)) {
		json_decref(rc ? NULL : rec);
		fprintf(stderr, "error: protocol: scan returned an item that "
			"is not a record\n");
		return EXIT_FAILED;
	}
	line = json_object();
	rc = json_object_set_new(line, "kind", json_string(ex->kind));
	json_object_keylen_foreach(rec, key, key_len, val)
		if (!(key_len == 4 && memcmp(key, "kind", 4) == 0))
			rc |= json_object_setn(line, key, key_len, val);
	rc = rc ? EXIT_FAILED : write_json_line(ex, line);
	json_decref(line);
	json_decref(rec);
	ex->records += rc == 0;
	return rc;
}

static int write_close(struct exporter *ex, const msgpack_object *item)
{
	const msgpack_object *id = client_map_get(item, "id");
	const char *s;
	size_t len;
	json_t *line;
	int rc;

	if (!id || !client_obj_str(id, &s, &len))
		return 0;
	line = json_pack("{s:s, s:s%}", "kind", "posting.close", "id", s,
			 len);
	rc = line ? write_json_line(ex, line) : EXIT_FAILED;
	json_decref(line);
	return rc;
}

static int export_item(struct exporter *ex, const msgpack_object *item)
{
	bool closed = strcmp(ex->kind, "posting") == 0 &&
		      bool_field(item, "closed");

	if (ex->closes)
		return closed ? write_close(ex, item) : 0;
	ex->closed += closed;
	return write_record(ex, item);
}

static int scan_page(struct exporter *ex, const char *after,
		     struct client_msg *m)
{
	struct params p;

	params_begin(&p, after ? 3 : 2);
	params_str(&p, "kind", ex->kind);
	params_int(&p, "limit", EXPORT_PAGE_ITEMS);
	if (after)
		params_str(&p, "after", after);
	return rpc_params(ex->ctl, "scan", &p, m);
}

/* Copies the page's `next` into after; 1 when the scan is done. */
static int next_after(const msgpack_object *result, char *after,
		      bool *have_after)
{
	const msgpack_object *next = client_map_get(result, "next");
	const char *s;
	size_t len;

	if (!next || next->type == MSGPACK_OBJECT_NIL)
		return 1;
	if (!client_obj_str(next, &s, &len) || len > EXPORT_ID_BYTES_MAX ||
	    memchr(s, '\0', len) ||
	    (*have_after && strlen(after) == len && !memcmp(after, s, len))) {
		fprintf(stderr, "error: protocol: scan returned no usable "
			"next id\n");
		return -1;
	}
	memcpy(after, s, len);
	after[len] = '\0';
	*have_after = true;
	return 0;
}

/*
 * Pages through every record of the kind.  The loop ends because each
 * page must move `after` forward (next_after refuses a repeat) over a
 * finite key space.
 */
static int scan_all(struct exporter *ex)
{
	char after[EXPORT_ID_BYTES_MAX + 1] = "";
	bool have_after = false;
	int rc;

	do {
		struct client_msg m;
		const msgpack_object *items;

		rc = scan_page(ex, have_after ? after : NULL, &m);
		if (rc)
			return rc;
		items = client_map_get(m.result, "items");
		if (!items || items->type != MSGPACK_OBJECT_ARRAY) {
			fprintf(stderr, "error: protocol: scan returned no "
				"items\n");
			return EXIT_FAILED;
		}
		for (uint32_t i = 0; i < items->via.array.size; i++) {
			rc = export_item(ex, &items->via.array.ptr[i]);
			if (rc)
				return rc;
		}
		rc = next_after(m.result, after, &have_after);
	} while (rc == 0);
	return rc < 0 ? EXIT_FAILED : 0;
}

static int cmd_export(struct ctl *ctl, int argc, char **argv)
{
	struct exporter ex = { .ctl = ctl, .kind = argv[0], .out = stdout };
	const char *path = argc > 1 ? argv[1] : "-";
	int rc;

	if (strcmp(path, "-") != 0)
		ex.out = fopen(path, "w");
	if (!ex.out) {
		fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
		return EXIT_FAILED;
	}
	rc = scan_all(&ex);
	/* Closed postings are closed again after all postings are back. */
	if (rc == 0 && ex.closed) {
		ex.closes = true;
		rc = scan_all(&ex);
	}
	if ((ex.out == stdout ? fflush(ex.out) : fclose(ex.out)) && !rc) {
		fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
		rc = EXIT_FAILED;
	}
	fprintf(stderr, "export: %" PRIu64 " %s records, %" PRIu64
		" closed\n", ex.records, ex.kind, ex.closed);
	return rc;
}

/* --- main --- */

static const struct command commands[] = {
	{ "ping", 0, 0, false, cmd_ping, "ping" },
	{ "stats", 0, 0, false, cmd_stats, "stats" },
	{ "call", 1, 2, false, cmd_call, "call METHOD [JSON-PARAMS|-]" },
	{ "get", 2, 2, true, cmd_get, "get KIND ID" },
	{ "put", 2, 2, true, cmd_put, "put KIND JSON|-" },
	{ "delete", 2, 2, true, cmd_delete, "delete KIND ID" },
	{ "close", 1, 1, false, cmd_close, "close POSTING_ID" },
	{ "match", 1, 2, false, cmd_match, "match STUDENT_ID [K]" },
	{ "search", 0, -1, false, cmd_search,
	  "search [--city C] [--category C] [--k N] QUERY..." },
	{ "import", 1, 3, false, cmd_import, "import [--batch N] FILE|-" },
	{ "export", 1, 2, true, cmd_export, "export KIND [FILE]" },
};

#define COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: matchctl [--addr HOST:PORT|PATH] [--token-file "
		"FILE] [--json]\n"
		"                [--timeout-ms N] COMMAND [ARGS]\n\n"
		"commands:\n");
	for (size_t i = 0; i < COMMANDS; i++)
		fprintf(f, "  %s\n", commands[i].usage);
	fprintf(f, "\nKIND is student, resume, company or posting.\n"
		"--addr defaults to %s.\n"
		"Exit status: 0 done, 1 failed, 2 import rejected lines, "
		"64 usage.\nSee docs/cli.md.\n", DEFAULT_ADDR);
}

/* Parses the options before the command; *first is the command's index. */
static int parse_globals(int argc, char **argv, struct ctl *ctl, int *first)
{
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *v;

		if (strcmp(argv[i], "--json") == 0) {
			ctl->json = true;
		} else if ((v = flag_value(argc, argv, &i, "--addr"))) {
			ctl->addr = v;
		} else if ((v = flag_value(argc, argv, &i, "--token-file"))) {
			ctl->token_file = v;
		} else if ((v = flag_value(argc, argv, &i, "--timeout-ms"))) {
			long long ms = parse_count(v);

			if (ms < 0 || ms > 86400000)
				return usage_error("--timeout-ms needs 1.."
						   "86400000, not \"%s\"", v);
			ctl->opts.timeout_ms = (int)ms;
		} else if (strcmp(argv[i], "--help") == 0 ||
			   strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			exit(0);
		} else {
			return usage_error("unknown option %s", argv[i]);
		}
	}
	*first = i;
	return 0;
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	struct ctl ctl = { .addr = DEFAULT_ADDR };
	const struct command *cmd;
	int first = argc;
	int nargs;
	int rc;

	client_opts_default(&ctl.opts);
	rc = parse_globals(argc, argv, &ctl, &first);
	if (rc)
		return rc;
	if (first >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = find_command(argv[first]);
	if (!cmd)
		return usage_error("unknown command \"%s\"", argv[first]);
	nargs = argc - first - 1;
	if (nargs < cmd->args_min || (cmd->args_max >= 0 &&
				      nargs > cmd->args_max))
		return usage_error("usage: matchctl %s", cmd->usage);
	/* Checked before connecting, so that a typo is not reported as a
	 * connection failure. */
	if (cmd->kind_first && check_kind(argv[first + 1]))
		return EXIT_USAGE;
	rc = ctl_connect(&ctl);
	if (rc == 0)
		rc = cmd->run(&ctl, nargs, argv + first + 1);
	client_close(ctl.c);
	return rc;
}
