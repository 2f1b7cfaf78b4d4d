/*
 * matchbench: the load generator.  It opens --conns TCP connections to
 * matchd (msgpack-RPC) or, with --redis, to a Redis server (the anchor the
 * benchmarks compare against), spreads them over --threads worker threads
 * with one io_uring each, and either keeps --depth requests in flight per
 * connection (closed loop) or sends on a fixed schedule (--rate, open
 * loop).  At the end it prints throughput, errors by code and latency
 * percentiles, and with --json writes the same figures to a file.
 *
 * Open-loop latency runs from each request's intended send time, not from
 * the moment it was sent, so a server stall shows in the percentiles
 * instead of quietly slowing the senders down (coordinated omission).
 * Ids, words and cities come from a JSON Lines data set (--data), drawn
 * with Zipf-like popularity; posting.search queries may come from a file
 * instead (--queries), drawn uniformly.
 *
 * Threads: the main thread parses flags, loads the data set, starts the
 * workers and prints the report.  Workers share only the read-only config
 * and data set while running; each keeps its own histograms and counters,
 * which the main thread merges once they have all stopped.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <liburing.h>
#include <msgpack.h>

#include "hist.h"

/* Limits on what one run may ask for; each bounds memory or ring size. */
#define CONNS_MAX 10000u
#define DEPTH_MAX 1024u
#define THREADS_MAX 64u
#define VALUE_BYTES_MAX (1u << 20)
#define TOKEN_BYTES_MAX 1024u

/* Each recv asks for this much room in the connection's buffer. */
#define RECV_CHUNK_BYTES 65536u
/* A reply bigger than this is taken as a broken stream. */
#define REPLY_BYTES_MAX (64u << 20)
/* A RESP status or error line longer than this is malformed. */
#define RESP_LINE_MAX 4096u

/* An open-loop request sent more than this after its intended time is
 * counted as late. */
#define LATE_NS 1000000ull
/* After the run ends, replies still in flight get this long to arrive;
 * the rest are counted as errors ("no_reply"). */
#define DRAIN_NS 5000000000ull
/* Connecting (and the hello / SET prelude) must be done within this. */
#define CONNECT_NS 10000000000ull
/* Workers never sleep longer than this, so a signal is noticed soon. */
#define WAIT_SLICE_NS 50000000ull

/* Distinct error codes remembered per run; later ones count as "other". */
#define ERROR_KINDS_MAX 32u
#define ERROR_CODE_MAX 32u
#define ERROR_EXAMPLE_MAX 160u

/* Data set bounds: longer lines are skipped, and the small pools (search
 * words, titles, categories, cities) keep at most POOL_SMALL_MAX distinct
 * entries; the id pools are bounded by the data set itself. */
#define DATA_LINE_BYTES_MAX (1u << 20)
#define POOL_SMALL_MAX 4096u
/* --queries holds at most this many lines. */
#define QUERIES_MAX (1u << 24)

#define NS_PER_S 1000000000ull

enum method {
	M_PING,
	M_STUDENT_GET,
	M_RESUME_GET,
	M_POSTING_GET,
	M_MATCH_GET,
	M_CANDIDATES_GET,
	M_POSTING_SEARCH,
	M_RESUME_PUT,
	M_POSTING_PUT,
	M_GET,          /* Redis GET, the only method of --redis */
	M_HELLO,        /* preludes: sent before the run, never measured */
	M_SET,
	METHODS
};
#define METHODS_MIXABLE (M_POSTING_PUT + 1)

static const char *const method_names[METHODS] = {
	"ping", "student.get", "resume.get", "posting.get", "match.get",
	"candidates.get", "posting.search", "resume.put", "posting.put",
	"GET", "hello", "SET",
};

/* ---- configuration ---------------------------------------------------- */

struct config {
	const char *addr_text;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint32_t conns;
	uint32_t depth;
	uint32_t threads;
	double duration_s;
	double warmup_s;
	uint64_t requests;      /* 0: run for duration_s instead */
	double rate;            /* requests/s in total; 0: closed loop */
	uint32_t weights[METHODS_MIXABLE];
	uint32_t weight_total;
	const char *data_path;
	const char *queries_path;
	const char *json_path;
	char token[TOKEN_BYTES_MAX + 1];
	bool has_token;
	bool redis;
	uint32_t value_bytes;
	uint64_t seed;
	double zipf_s;
	char *redis_get;        /* the GET command, encoded once */
	size_t redis_get_len;
	char *redis_set;        /* the SET prelude */
	size_t redis_set_len;
	int argc;
	char **argv;
};

static struct config cfg;
static atomic_bool stop_requested;

/* ---- data set ----------------------------------------------------------- */

/*
 * A list of strings to draw from.  Small pools are sets: a string already
 * present (by 64-bit hash) is not added twice, and at most POOL_SMALL_MAX
 * are kept.
 */
struct pool {
	char **items;
	uint32_t count;
	uint32_t cap;
	bool distinct;
	uint64_t *seen;         /* open addressing over hashes; 0 = empty */
	uint32_t seen_cap;
	double log_n1;          /* log(count + 1), for the Zipf draw */
};

struct dataset {
	struct pool students;   /* student ids */
	struct pool resumes;    /* ids of students that have a resume */
	struct pool postings;
	struct pool companies;
	struct pool words;      /* posting skills: search words */
	struct pool titles;
	struct pool categories;
	struct pool cities;     /* every division code seen */
	struct pool city_filters; /* city-level codes among them */
	uint64_t lines;
	uint64_t skipped;
};

static struct dataset ds;

/*
 * posting.search queries read from a file (--queries), one per line:
 * the q text, a tab, and a division code or nothing.  Drawn uniformly:
 * the file carries its own popularity by repeating queries.
 */
struct query {
	char *q;
	char *city;             /* NULL: no filter */
};

static struct {
	struct query *v;
	uint32_t count, cap;
} queries;

/* Every pool, in the order of the letters that name them in the cache. */
static struct pool *const pools[] = {
	&ds.students, &ds.resumes, &ds.postings, &ds.companies, &ds.words,
	&ds.titles, &ds.categories, &ds.cities, &ds.city_filters,
};
static const char pool_letters[] = "srpcwtgyf";
#define POOLS (sizeof(pools) / sizeof(pools[0]))
_Static_assert(sizeof(pool_letters) == POOLS + 1, "one letter a pool");

/* ---- workers ------------------------------------------------------------ */

enum op { OP_CONNECT = 1, OP_SEND = 2, OP_RECV = 3 };
#define OP_MASK 7ull

enum conn_state { CONN_CONNECTING, CONN_PRELUDE, CONN_READY, CONN_DEAD };

struct slot {
	uint64_t start_ns;      /* intended (open loop) or actual send time */
	uint32_t msgid;
	uint8_t method;
	bool busy;
	bool measured;          /* started inside the measured window */
};

struct conn {
	struct worker *w;
	int fd;
	uint32_t index;         /* 0 .. conns-1 across all workers */
	enum conn_state state;
	bool send_busy;
	bool recv_busy;
	bool dirty;             /* queued bytes wait for the next flush */
	bool out_nomem;         /* queueing a request ran out of memory */
	msgpack_sbuffer out_busy; /* bytes handed to the kernel */
	size_t out_sent;
	msgpack_sbuffer out_next; /* bytes queued behind them */
	msgpack_unpacker unp;   /* msgpack-RPC replies */
	char *in;               /* RESP replies */
	size_t in_len;
	size_t in_cap;
	struct slot *slots;     /* depth of them */
	uint32_t *free_slots;
	uint32_t free_count;
	uint32_t *fifo;         /* RESP: busy slots in send order */
	uint32_t fifo_head;
	uint32_t fifo_len;
	uint32_t msgid_gen;
	uint64_t due_seq;       /* open loop: sends scheduled so far */
	uint64_t next_due_ns;   /* open loop: the next intended send */
};

struct method_stats {
	struct hist hist;
	uint64_t answered;
	uint64_t errors;
};

struct error_kind {
	char code[ERROR_CODE_MAX];
	char example[ERROR_EXAMPLE_MAX];
	uint64_t count;
};

struct error_table {
	struct error_kind kinds[ERROR_KINDS_MAX];
	uint32_t used;
	uint64_t other;
};

struct rng {
	uint64_t state;
};

struct worker {
	uint32_t id;
	pthread_t thread;
	struct io_uring ring;
	bool ring_ready;
	struct conn *conns;
	uint32_t nconns;
	struct conn **dirty;
	uint32_t ndirty;
	struct rng rng;
	bool running;           /* past the start barrier */
	bool stopping;
	uint64_t budget;        /* --requests: measured requests left */
	uint64_t measure_start_ns;
	uint64_t end_ns;
	uint64_t drain_end_ns;
	uint64_t start_ns;      /* the open-loop schedule starts here */
	uint64_t inflight;
	uint64_t ops;           /* SQEs not yet completed */
	uint32_t pending;       /* conns still connecting */
	uint64_t posting_seq;
	uint64_t last_reply_ns;
	/* results, merged by the main thread */
	struct method_stats stats[METHODS];
	struct error_table errors;
	uint64_t late;
	uint64_t unsent;
	uint32_t ready;
	uint32_t lost;
};

/*
 * The start gate: every worker connects, then waits here until the main
 * thread has seen them all connected and set run_start_ns, so that the
 * measured window starts at the same moment everywhere and holds no
 * connection set-up.
 */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static uint32_t gate_arrived;
static bool gate_open;
static uint64_t run_start_ns;
static uint32_t run_tag;

static uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* ---- random numbers ----------------------------------------------------- */

/* splitmix64: tiny, fast, and good enough to pick ids and words. */
static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1p-53;
}

static uint32_t rng_below(struct rng *r, uint32_t n)
{
	return n ? (uint32_t)(rng_next(r) % n) : 0;
}

/*
 * Index of a Zipf-like draw from n items: rank r is drawn with weight
 * about 1/(r+1)^s, through the inverse of the continuous approximation,
 * which needs no table however large n is.  s = 0 is uniform.  The pools
 * were shuffled at load, so popular ranks are spread over the data set.
 */
static uint32_t zipf_index(struct rng *r, const struct pool *p)
{
	double u = rng_unit(r);
	double s = cfg.zipf_s;
	double x;

	if (s <= 0.0)
		x = u * p->count;
	else if (fabs(s - 1.0) < 1e-9)
		x = exp(u * p->log_n1) - 1.0;
	else
		x = pow(u * (exp((1.0 - s) * p->log_n1) - 1.0) + 1.0,
			1.0 / (1.0 - s)) - 1.0;
	if (!(x >= 0.0))
		return 0;
	return x >= p->count ? p->count - 1 : (uint32_t)x;
}

/* ---- pools -------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h ? h : 1;
}

/* True when s is new to a distinct pool (and remembers it). */
static bool pool_mark_new(struct pool *p, const char *s)
{
	uint64_t h = hash_str(s);
	uint32_t i;

	if (!p->seen) {
		p->seen_cap = POOL_SMALL_MAX * 2;
		p->seen = calloc(p->seen_cap, sizeof(*p->seen));
		if (!p->seen)
			return false;
	}
	for (i = (uint32_t)h % p->seen_cap; p->seen[i];
	     i = (i + 1) % p->seen_cap)
		if (p->seen[i] == h)
			return false;
	p->seen[i] = h;
	return true;
}

/* Adds a copy of s.  Returns 0 or -ENOMEM; a full small pool ignores s. */
static int pool_add(struct pool *p, const char *s)
{
	if (!s || !*s)
		return 0;
	if (p->distinct && p->count >= POOL_SMALL_MAX)
		return 0;
	if (p->distinct && !pool_mark_new(p, s))
		return 0;
	if (p->count == p->cap) {
		uint32_t cap = p->cap ? p->cap * 2 : 256;
		char **items = realloc(p->items, cap * sizeof(*items));

		if (!items)
			return -ENOMEM;
		p->items = items;
		p->cap = cap;
	}
	p->items[p->count] = strdup(s);
	if (!p->items[p->count])
		return -ENOMEM;
	p->count++;
	return 0;
}

/* Shuffles so that Zipf ranks land on items spread over the file. */
static void pool_finish(struct pool *p, struct rng *r)
{
	for (uint32_t i = p->count; i > 1; i--) {
		uint32_t j = rng_below(r, i);
		char *tmp = p->items[i - 1];

		p->items[i - 1] = p->items[j];
		p->items[j] = tmp;
	}
	p->log_n1 = log((double)p->count + 1.0);
	free(p->seen);
	p->seen = NULL;
}

static void pool_free(struct pool *p)
{
	for (uint32_t i = 0; i < p->count; i++)
		free(p->items[i]);
	free(p->items);
	free(p->seen);
	memset(p, 0, sizeof(*p));
}

static const char *pool_pick(const struct pool *p, struct rng *r,
			     const char *fallback)
{
	if (p->count == 0)
		return fallback;
	return p->items[zipf_index(r, p)];
}

/* ---- loading the data set ----------------------------------------------- */

static const char *json_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static int add_str_array(struct pool *p, const json_t *arr)
{
	size_t i;
	json_t *v;
	int rc = 0;

	json_array_foreach(arr, i, v)
		if (rc == 0)
			rc = pool_add(p, json_string_value(v));
	return rc;
}

/* A 6-digit code at city level: not a province (xx0000), ends in 00. */
static bool is_city_code(const char *code)
{
	return strlen(code) == 6 && strcmp(code + 4, "00") == 0 &&
	       strcmp(code + 2, "0000") != 0;
}

static int add_city(const char *code)
{
	int rc;

	if (!code)
		return 0;
	rc = pool_add(&ds.cities, code);
	if (rc == 0 && is_city_code(code))
		rc = pool_add(&ds.city_filters, code);
	return rc;
}

static int load_posting(const json_t *obj)
{
	int rc = pool_add(&ds.postings, json_str(obj, "id"));

	if (rc == 0)
		rc = add_str_array(&ds.words, json_object_get(obj, "skills"));
	if (rc == 0)
		rc = pool_add(&ds.titles, json_str(obj, "title"));
	if (rc == 0)
		rc = pool_add(&ds.categories, json_str(obj, "category"));
	if (rc == 0)
		rc = add_city(json_str(obj, "city"));
	return rc;
}

static int load_resume(const json_t *obj)
{
	const json_t *cities = json_object_get(obj, "desired_cities");
	size_t i;
	json_t *v;
	int rc = pool_add(&ds.resumes, json_str(obj, "student_id"));

	json_array_foreach(cities, i, v)
		if (rc == 0)
			rc = add_city(json_string_value(v));
	return rc;
}

static int load_line(const char *line, size_t len)
{
	json_error_t jerr;
	json_t *obj = json_loadb(line, len, 0, &jerr);
	const char *kind = json_str(obj, "kind");
	int rc = 0;

	if (!kind)
		ds.skipped++;
	else if (strcmp(kind, "student") == 0)
		rc = pool_add(&ds.students, json_str(obj, "id"));
	else if (strcmp(kind, "resume") == 0)
		rc = load_resume(obj);
	else if (strcmp(kind, "company") == 0)
		rc = pool_add(&ds.companies, json_str(obj, "id"));
	else if (strcmp(kind, "posting") == 0)
		rc = load_posting(obj);
	json_decref(obj);
	return rc;
}

static void data_finish(void)
{
	struct rng r = { cfg.seed ^ 0x5eedull };

	for (size_t i = 0; i < POOLS; i++)
		pool_finish(pools[i], &r);
	/* Without city-level codes in the data, filter on what there is. */
	if (ds.city_filters.count == 0 && ds.cities.count > 0) {
		for (uint32_t i = 0; i < ds.cities.count; i++)
			if (pool_add(&ds.city_filters, ds.cities.items[i]))
				break;
		pool_finish(&ds.city_filters, &r);
	}
}

static void data_free(void)
{
	for (size_t i = 0; i < POOLS; i++)
		pool_free(pools[i]);
}

static void data_init(void)
{
	data_free();
	ds.lines = ds.skipped = 0;
	ds.words.distinct = ds.titles.distinct = true;
	ds.categories.distinct = ds.cities.distinct = true;
	ds.city_filters.distinct = true;
}

/* Parses the JSON Lines data set with jansson.  Returns 0 or -errno. */
static int data_parse(FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0;

	while (rc == 0 && (len = getline(&line, &cap, f)) > 0) {
		ds.lines++;
		if ((size_t)len > DATA_LINE_BYTES_MAX)
			ds.skipped++;
		else if (len > 1)
			rc = load_line(line, (size_t)len);
	}
	if (rc == 0 && ferror(f))
		rc = -EIO;
	free(line);
	return rc;
}

/*
 * The id cache.  Parsing a Guangdong-scale data set with jansson takes
 * about half a minute, and every scenario of bench/run reads the same
 * set, so the first run writes what the pools kept to FILE.ids, one
 * "<pool letter><TAB><string>" line each, under a header that names the
 * source's size and modification time, and later runs read that while it
 * still matches.  A set with a tab or newline inside a kept string is not
 * cached (the line format could not hold it); it is parsed every time.
 */
static void cache_header(const struct stat *st, char *out, size_t size)
{
	snprintf(out, size, "matchbench-ids 1 %lld %lld.%09ld\n",
		 (long long)st->st_size, (long long)st->st_mtim.tv_sec,
		 (long)st->st_mtim.tv_nsec);
}

static int cache_line(char *line, size_t len)
{
	const char *letter;

	if (len < 3 || line[0] == '\0' || line[1] != '\t' ||
	    line[len - 1] != '\n')
		return -EINVAL;
	letter = strchr(pool_letters, line[0]);
	if (!letter)
		return -EINVAL;
	line[len - 1] = '\0';
	return pool_add(pools[letter - pool_letters], line + 2);
}

/* Fills the pools from the cache.  Returns 0, or -errno and no pools. */
static int cache_load(const char *cache, const struct stat *st)
{
	FILE *f = fopen(cache, "r");
	char header[128];
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0;

	if (!f)
		return -errno;
	cache_header(st, header, sizeof(header));
	if (getline(&line, &cap, f) < 0 || strcmp(line, header) != 0)
		rc = -ESTALE;
	while (rc == 0 && (len = getline(&line, &cap, f)) > 0) {
		ds.lines++;
		rc = cache_line(line, (size_t)len);
	}
	if (rc == 0 && ferror(f))
		rc = -EIO;
	free(line);
	fclose(f);
	if (rc)
		data_init();
	return rc;
}

static bool cache_storable(void)
{
	for (size_t i = 0; i < POOLS; i++)
		for (uint32_t j = 0; j < pools[i]->count; j++)
			if (strpbrk(pools[i]->items[j], "\t\n"))
				return false;
	return true;
}

/* Writes the cache beside the data set; any failure just leaves none. */
static void cache_save(const char *cache, const struct stat *st)
{
	char header[128];
	char *tmp = NULL;
	FILE *f;
	bool ok;

	if (!cache_storable() ||
	    asprintf(&tmp, "%s.%d.tmp", cache, (int)getpid()) < 0)
		return;
	f = fopen(tmp, "w");
	if (!f) {
		free(tmp);
		return;
	}
	cache_header(st, header, sizeof(header));
	fputs(header, f);
	for (size_t i = 0; i < POOLS; i++)
		for (uint32_t j = 0; j < pools[i]->count; j++)
			fprintf(f, "%c\t%s\n", pool_letters[i],
				pools[i]->items[j]);
	ok = !ferror(f);
	if (fclose(f) || !ok || rename(tmp, cache))
		unlink(tmp);
	free(tmp);
}

static int data_read(const char *path)
{
	FILE *f = fopen(path, "r");
	int rc;

	if (!f)
		return -errno;
	rc = data_parse(f);
	fclose(f);
	return rc;
}

/*
 * Reads the data set, from its id cache when that is current.  Returns 0
 * or -errno (message printed).  *cached tells which way it went.
 */
static int data_load(const char *path, bool *cached)
{
	struct stat st;
	char *cache = NULL;
	int rc = 0;

	data_init();
	if (stat(path, &st))
		rc = -errno;
	else if (asprintf(&cache, "%s.ids", path) < 0)
		rc = -ENOMEM;
	*cached = rc == 0 && cache_load(cache, &st) == 0;
	if (rc == 0 && !*cached) {
		rc = data_read(path);
		if (rc == 0)
			cache_save(cache, &st);
	}
	free(cache);
	if (rc)
		fprintf(stderr, "matchbench: reading %s: %s\n", path,
			strerror(-rc));
	else
		data_finish();
	return rc;
}

/* ---- encoding requests -------------------------------------------------- */

static void pack_str(msgpack_packer *pk, const char *s)
{
	size_t len = strlen(s);

	msgpack_pack_str(pk, len);
	msgpack_pack_str_body(pk, s, len);
}

static void pack_kv_str(msgpack_packer *pk, const char *key, const char *v)
{
	pack_str(pk, key);
	pack_str(pk, v);
}

static void pack_kv_int(msgpack_packer *pk, const char *key, int64_t v)
{
	pack_str(pk, key);
	msgpack_pack_int64(pk, v);
}

/* params [{key: id}] */
static void pack_by_id(msgpack_packer *pk, const char *key, const char *id)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 1);
	pack_kv_str(pk, key, id);
}

static void pack_str_list(msgpack_packer *pk, struct rng *r,
			  const struct pool *p, uint32_t n, const char *dflt)
{
	msgpack_pack_array(pk, n);
	for (uint32_t i = 0; i < n; i++)
		pack_str(pk, pool_pick(p, r, dflt));
}

static const char *pick_student(struct rng *r)
{
	if (ds.resumes.count)
		return pool_pick(&ds.resumes, r, "S0");
	return pool_pick(&ds.students, r, "S0");
}

static void pack_search(msgpack_packer *pk, struct rng *r)
{
	char q[256];
	bool city = ds.city_filters.count > 0;

	if (queries.count) {
		const struct query *qs = &queries.v[rng_below(r,
							       queries.count)];

		msgpack_pack_array(pk, 1);
		msgpack_pack_map(pk, qs->city ? 3 : 2);
		pack_kv_str(pk, "q", qs->q);
		if (qs->city)
			pack_kv_str(pk, "city", qs->city);
		pack_kv_int(pk, "k", 20);
		return;
	}
	snprintf(q, sizeof(q), "%s %s", pool_pick(&ds.words, r, "java"),
		 pool_pick(&ds.words, r, "python"));
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, city ? 3 : 2);
	pack_kv_str(pk, "q", q);
	if (city)
		pack_kv_str(pk, "city", pool_pick(&ds.city_filters, r, ""));
	pack_kv_int(pk, "k", 20);
}

static void pack_experience(msgpack_packer *pk, struct rng *r,
			    const char *desc, int64_t now_s)
{
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 6);
	pack_kv_str(pk, "kind", "internship");
	pack_kv_str(pk, "title", pool_pick(&ds.titles, r, "实习生"));
	pack_kv_str(pk, "org", "实习单位");
	pack_kv_str(pk, "desc", desc);
	pack_kv_int(pk, "start", now_s - 180 * 86400);
	pack_kv_int(pk, "end", now_s - 90 * 86400);
}

/*
 * A complete resume (every completeness item present) for a student of
 * the data set, about 600 bytes: the write a student makes when editing.
 */
static void pack_resume(msgpack_packer *pk, struct rng *r)
{
	char intro[512];
	int64_t now_s = (int64_t)time(NULL);
	int64_t salary = 4000 + 1000 * rng_below(r, 6);

	snprintf(intro, sizeof(intro), "熟悉%s和%s，做过%s相关的课程项目，"
		 "希望从事%s方向的工作。", pool_pick(&ds.words, r, "Java"),
		 pool_pick(&ds.words, r, "MySQL"),
		 pool_pick(&ds.words, r, "Linux"),
		 pool_pick(&ds.categories, r, "软件开发"));
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 11);
	pack_kv_str(pk, "student_id", pick_student(r));
	pack_str(pk, "has_photo");
	msgpack_pack_true(pk);
	pack_kv_str(pk, "intro", intro);
	pack_str(pk, "skills");
	pack_str_list(pk, r, &ds.words, 4, "Excel");
	pack_str(pk, "desired_categories");
	pack_str_list(pk, r, &ds.categories, 1, "软件开发");
	pack_str(pk, "desired_cities");
	pack_str_list(pk, r, &ds.cities, 1, "440100");
	pack_kv_int(pk, "salary_min", salary);
	pack_kv_int(pk, "salary_max", salary + 3000);
	pack_str(pk, "experiences");
	pack_experience(pk, r, intro, now_s);
	pack_str(pk, "certificates");
	msgpack_pack_array(pk, 1);
	pack_str(pk, "大学英语六级");
	pack_str(pk, "languages");
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 2);
	pack_kv_str(pk, "name", "英语");
	pack_kv_str(pk, "level", "CET-6");
}

/* A new posting with an id no other run or thread uses. */
static void pack_posting(msgpack_packer *pk, struct worker *w)
{
	struct rng *r = &w->rng;
	char id[64];
	char desc[256];
	int64_t salary = 5000 + 1000 * rng_below(r, 8);

	snprintf(id, sizeof(id), "B%08x-%u-%llu", run_tag, w->id,
		 (unsigned long long)w->posting_seq++);
	snprintf(desc, sizeof(desc), "负责%s相关的开发与维护，熟悉%s者优先。",
		 pool_pick(&ds.words, r, "Java"),
		 pool_pick(&ds.words, r, "Linux"));
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, 11);
	pack_kv_str(pk, "id", id);
	pack_kv_str(pk, "company_id", pool_pick(&ds.companies, r, "C0"));
	pack_kv_str(pk, "title", pool_pick(&ds.titles, r, "软件工程师"));
	pack_kv_str(pk, "category", pool_pick(&ds.categories, r, "软件开发"));
	pack_kv_str(pk, "description", desc);
	pack_str(pk, "skills");
	pack_str_list(pk, r, &ds.words, 3, "Java");
	pack_kv_str(pk, "city", pool_pick(&ds.cities, r, "440106"));
	pack_kv_str(pk, "education_min", "本科");
	pack_kv_int(pk, "salary_min", salary);
	pack_kv_int(pk, "salary_max", salary + 4000);
	pack_kv_int(pk, "expires_at", (int64_t)time(NULL) + 30 * 86400);
}

static void pack_params(msgpack_packer *pk, struct worker *w, enum method m)
{
	struct rng *r = &w->rng;

	switch (m) {
	case M_STUDENT_GET:
		pack_by_id(pk, "id", pool_pick(&ds.students, r, "S0"));
		break;
	case M_RESUME_GET:
		pack_by_id(pk, "student_id", pick_student(r));
		break;
	case M_POSTING_GET:
		pack_by_id(pk, "id", pool_pick(&ds.postings, r, "P0"));
		break;
	case M_MATCH_GET:
		pack_by_id(pk, "student_id", pick_student(r));
		break;
	case M_CANDIDATES_GET:
		pack_by_id(pk, "posting_id", pool_pick(&ds.postings, r, "P0"));
		break;
	case M_POSTING_SEARCH:
		pack_search(pk, r);
		break;
	case M_RESUME_PUT:
		pack_resume(pk, r);
		break;
	case M_POSTING_PUT:
		pack_posting(pk, w);
		break;
	case M_HELLO:
		msgpack_pack_array(pk, 1);
		msgpack_pack_map(pk, 2);
		pack_kv_str(pk, "token", cfg.token);
		pack_kv_str(pk, "client", "matchbench");
		break;
	default:
		msgpack_pack_array(pk, 0);
		break;
	}
}

/* The packer's sink: the connection's queue, remembering a failure so
 * that one check after packing a whole request is enough. */
static int out_write(void *data, const char *buf, size_t len)
{
	struct conn *c = data;

	if (msgpack_sbuffer_write(&c->out_next, buf, len)) {
		c->out_nomem = true;
		return -1;
	}
	return 0;
}

static void pack_request(struct conn *c, enum method m, uint32_t msgid)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, c, out_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_uint32(&pk, msgid);
	pack_str(&pk, method_names[m]);
	pack_params(&pk, c->w, m);
}

/* Builds the RESP commands of --redis once: SET key value, GET key. */
static int redis_commands(void)
{
	static const char key[] = "matchbench:value";
	size_t cap = (size_t)cfg.value_bytes + 128;
	char *value = malloc(cfg.value_bytes + 1);
	int n;

	cfg.redis_set = malloc(cap);
	cfg.redis_get = malloc(128);
	if (!value || !cfg.redis_set || !cfg.redis_get) {
		free(value);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < cfg.value_bytes; i++)
		value[i] = (char)('a' + i % 26);
	value[cfg.value_bytes] = '\0';
	n = snprintf(cfg.redis_set, cap, "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n"
		     "$%u\r\n%s\r\n", strlen(key), key, cfg.value_bytes, value);
	cfg.redis_set_len = (size_t)n;
	n = snprintf(cfg.redis_get, 128, "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n",
		     strlen(key), key);
	cfg.redis_get_len = (size_t)n;
	free(value);
	return 0;
}

/* ---- results ------------------------------------------------------------ */

static void error_count(struct error_table *t, const char *code,
			const char *example, uint64_t n)
{
	uint32_t i;

	for (i = 0; i < t->used; i++)
		if (strcmp(t->kinds[i].code, code) == 0)
			break;
	if (i == t->used) {
		if (t->used == ERROR_KINDS_MAX) {
			t->other += n;
			return;
		}
		snprintf(t->kinds[i].code, ERROR_CODE_MAX, "%s", code);
		snprintf(t->kinds[i].example, ERROR_EXAMPLE_MAX, "%s",
			 example);
		t->used++;
	}
	t->kinds[i].count += n;
}

/* Counts a failed request of method m (measured ones only). */
static void request_failed(struct worker *w, enum method m, bool measured,
			   const char *code, const char *detail)
{
	char example[ERROR_EXAMPLE_MAX];

	if (!measured)
		return;
	snprintf(example, sizeof(example), "%s: %.140s", method_names[m],
		 detail);
	w->stats[m].errors++;
	error_count(&w->errors, code, example, 1);
}

/* ---- connections -------------------------------------------------------- */

static uint64_t op_data(struct conn *c, enum op op)
{
	return (uint64_t)(uintptr_t)c | (uint64_t)op;
}

static struct io_uring_sqe *sqe_get(struct worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

static void conn_mark_dirty(struct conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->w->dirty[c->w->ndirty++] = c;
	}
}

/*
 * Gives up on a connection: every request in flight on it is counted as
 * failed with code, and the socket is shut down so that its pending recv
 * or send completes; the descriptor is closed at the end of the run.
 */
static void conn_fail(struct conn *c, const char *code, const char *detail)
{
	struct worker *w = c->w;

	if (c->state == CONN_DEAD)
		return;
	if (c->state == CONN_READY)
		w->lost++;
	if (c->state == CONN_CONNECTING || c->state == CONN_PRELUDE) {
		w->pending--;
		error_count(&w->errors, code, detail, 1);
	}
	for (uint32_t i = 0; i < cfg.depth; i++) {
		struct slot *s = &c->slots[i];

		if (!s->busy)
			continue;
		request_failed(w, s->method, s->measured, code, detail);
		s->busy = false;
		w->inflight--;
	}
	c->state = CONN_DEAD;
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
}

static void conn_fail_errno(struct conn *c, const char *code, int err)
{
	conn_fail(c, code, strerror(err));
}

static void conn_send(struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(c->w);

	if (!sqe) {
		conn_fail(c, "client_ring_full", "no submission queue entry");
		return;
	}
	io_uring_prep_send(sqe, c->fd, c->out_busy.data + c->out_sent,
			   c->out_busy.size - c->out_sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, op_data(c, OP_SEND));
	c->send_busy = true;
	c->w->ops++;
}

/* Moves queued bytes to the kernel unless a send is already running. */
static void conn_flush(struct conn *c)
{
	msgpack_sbuffer tmp;

	c->dirty = false;
	if (c->state == CONN_DEAD || c->send_busy || c->out_next.size == 0)
		return;
	tmp = c->out_busy;
	c->out_busy = c->out_next;
	c->out_next = tmp;
	msgpack_sbuffer_clear(&c->out_next);
	c->out_sent = 0;
	conn_send(c);
}

static void conn_recv(struct conn *c)
{
	struct io_uring_sqe *sqe;
	char *buf;
	size_t room;

	if (cfg.redis) {
		buf = c->in + c->in_len;
		room = c->in_cap - c->in_len;
	} else if (msgpack_unpacker_reserve_buffer(&c->unp,
						   RECV_CHUNK_BYTES)) {
		buf = msgpack_unpacker_buffer(&c->unp);
		room = msgpack_unpacker_buffer_capacity(&c->unp);
	} else {
		conn_fail(c, "client_nomem", "cannot grow the reply buffer");
		return;
	}
	sqe = sqe_get(c->w);
	if (!sqe) {
		conn_fail(c, "client_ring_full", "no submission queue entry");
		return;
	}
	io_uring_prep_recv(sqe, c->fd, buf, room, 0);
	io_uring_sqe_set_data64(sqe, op_data(c, OP_RECV));
	c->recv_busy = true;
	c->w->ops++;
}

/* Queues one request on a free slot; the next flush sends it. */
static void conn_issue(struct conn *c, enum method m, uint64_t start_ns,
		       bool measured)
{
	uint32_t i = c->free_slots[--c->free_count];
	struct slot *s = &c->slots[i];

	/* msgid % depth is the slot, so a reply finds its slot directly;
	 * generations keep reused slots apart and wrap below 2^32. */
	c->msgid_gen = (c->msgid_gen + 1) % (UINT32_MAX / cfg.depth);
	s->msgid = c->msgid_gen * cfg.depth + i;
	s->method = (uint8_t)m;
	s->start_ns = start_ns;
	s->measured = measured;
	s->busy = true;
	c->w->inflight++;
	if (cfg.redis) {
		c->fifo[(c->fifo_head + c->fifo_len++) % cfg.depth] = i;
		if (m == M_SET)
			out_write(c, cfg.redis_set, cfg.redis_set_len);
		else
			out_write(c, cfg.redis_get, cfg.redis_get_len);
	} else {
		pack_request(c, m, s->msgid);
	}
	if (c->out_nomem)
		conn_fail(c, "client_nomem", "cannot queue a request");
	else
		conn_mark_dirty(c);
}

static void conn_start(struct conn *c)
{
	struct worker *w = c->w;
	struct io_uring_sqe *sqe;
	int one = 1;

	c->fd = socket(cfg.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail_errno(c, "connect_failed", errno);
		return;
	}
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))) {
		conn_fail_errno(c, "connect_failed", errno);
		return;
	}
	sqe = sqe_get(w);
	if (!sqe) {
		conn_fail(c, "client_ring_full", "no submission queue entry");
		return;
	}
	io_uring_prep_connect(sqe, c->fd, (struct sockaddr *)&cfg.addr,
			      cfg.addr_len);
	io_uring_sqe_set_data64(sqe, op_data(c, OP_CONNECT));
	w->ops++;
}

static void conn_ready(struct conn *c)
{
	c->state = CONN_READY;
	c->w->pending--;
	c->w->ready++;
}

static void on_connect(struct conn *c, int res)
{
	if (c->state == CONN_DEAD)
		return;
	if (res < 0) {
		conn_fail_errno(c, "connect_failed", -res);
		return;
	}
	conn_recv(c);
	if (c->state == CONN_DEAD)
		return;
	if (cfg.redis || cfg.has_token) {
		c->state = CONN_PRELUDE;
		conn_issue(c, cfg.redis ? M_SET : M_HELLO, 0, false);
	} else {
		conn_ready(c);
	}
}

static void on_send(struct conn *c, int res)
{
	c->send_busy = false;
	if (c->state == CONN_DEAD)
		return;
	if (res < 0) {
		conn_fail_errno(c, "conn_closed", -res);
		return;
	}
	c->out_sent += (size_t)res;
	if (c->out_sent < c->out_busy.size) {
		conn_send(c);
		return;
	}
	msgpack_sbuffer_clear(&c->out_busy);
	c->out_sent = 0;
	if (c->out_next.size)
		conn_mark_dirty(c);
}

/* ---- issuing ------------------------------------------------------------ */

static enum method pick_method(struct worker *w)
{
	uint32_t x = rng_below(&w->rng, cfg.weight_total);

	if (cfg.redis)
		return M_GET;
	for (uint32_t m = 0; m < METHODS_MIXABLE; m++) {
		if (x < cfg.weights[m])
			return (enum method)m;
		x -= cfg.weights[m];
	}
	return M_PING;
}

/* Whether a request intended for start_ns may go out; spends budget. */
static bool may_issue(struct worker *w, uint64_t start_ns)
{
	if (w->stopping || !w->running || start_ns >= w->end_ns)
		return false;
	if (!cfg.requests || start_ns < w->measure_start_ns)
		return true;
	if (w->budget == 0)
		return false;
	w->budget--;
	return true;
}

/* Closed loop: keep every free slot busy. */
static void conn_fill(struct conn *c, uint64_t now_ns)
{
	struct worker *w = c->w;

	while (c->state == CONN_READY && c->free_count &&
	       may_issue(w, now_ns))
		conn_issue(c, pick_method(w), now_ns,
			   now_ns >= w->measure_start_ns);
}

/*
 * Open loop: the n-th intended send of c.  The schedule interleaves every
 * connection: send n of connection k is send k + n * conns of the whole
 * run, at cfg.rate, computed from the start each time so that rounding
 * never accumulates.
 */
static uint64_t due_ns(const struct worker *w, const struct conn *c,
		       uint64_t n)
{
	double seq = (double)c->index + (double)n * cfg.conns;

	return w->start_ns + (uint64_t)(seq * 1e9 / cfg.rate);
}

/* Open loop: the first n whose send is due at or after t_ns. */
static uint64_t due_seq_at(const struct worker *w, const struct conn *c,
			   uint64_t t_ns)
{
	double seq;
	uint64_t n = 0;

	if (t_ns <= w->start_ns)
		return 0;
	seq = (double)(t_ns - w->start_ns) * cfg.rate / 1e9;
	if (seq > c->index)
		n = (uint64_t)((seq - c->index) / cfg.conns);
	/* The division can land one off either way; settle it exactly. */
	while (n > 0 && due_ns(w, c, n - 1) >= t_ns)
		n--;
	while (due_ns(w, c, n) < t_ns)
		n++;
	return n;
}

/* Open loop: send everything whose time has come, on free slots. */
static void conn_issue_due(struct conn *c, uint64_t now_ns)
{
	struct worker *w = c->w;

	while (c->state == CONN_READY && c->free_count &&
	       c->next_due_ns <= now_ns && may_issue(w, c->next_due_ns)) {
		bool measured = c->next_due_ns >= w->measure_start_ns;

		if (measured && now_ns - c->next_due_ns > LATE_NS)
			w->late++;
		conn_issue(c, pick_method(w), c->next_due_ns, measured);
		c->next_due_ns = due_ns(w, c, ++c->due_seq);
	}
}

static void conn_refill(struct conn *c, uint64_t now_ns)
{
	if (cfg.rate > 0)
		conn_issue_due(c, now_ns);
	else
		conn_fill(c, now_ns);
}

/* ---- replies ------------------------------------------------------------ */

/* Frees slot i after its reply; error_code NULL means success. */
static void slot_done(struct conn *c, uint32_t i, uint64_t now_ns,
		      const char *error_code, const char *detail)
{
	struct worker *w = c->w;
	struct slot *s = &c->slots[i];
	enum method m = s->method;

	s->busy = false;
	c->free_slots[c->free_count++] = i;
	w->inflight--;
	w->last_reply_ns = now_ns;
	if (m == M_HELLO || m == M_SET) {
		char example[ERROR_EXAMPLE_MAX];

		snprintf(example, sizeof(example), "%s: %.140s",
			 method_names[m], detail ? detail : "");
		if (error_code)
			conn_fail(c, error_code, example);
		else
			conn_ready(c);
		return;
	}
	if (s->measured) {
		hist_record(&w->stats[m].hist, now_ns - s->start_ns);
		w->stats[m].answered++;
	}
	if (error_code)
		request_failed(w, m, s->measured, error_code, detail);
	conn_refill(c, now_ns);
}

static bool obj_str(const msgpack_object *o, char *out, size_t out_size)
{
	const char *p;
	uint32_t len;

	if (o->type == MSGPACK_OBJECT_STR) {
		p = o->via.str.ptr;
		len = o->via.str.size;
	} else if (o->type == MSGPACK_OBJECT_BIN) {
		p = o->via.bin.ptr;
		len = o->via.bin.size;
	} else {
		return false;
	}
	snprintf(out, out_size, "%.*s", (int)len, p);
	return true;
}

static const msgpack_object *map_get(const msgpack_object *map,
				     const char *key)
{
	size_t key_len = strlen(key);

	if (map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR &&
		    k->via.str.size == key_len &&
		    memcmp(k->via.str.ptr, key, key_len) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

/* Reads {code, message, field} of an error object into code and detail. */
static void rpc_error_text(const msgpack_object *err, char *code,
			   char *detail)
{
	const msgpack_object *v;
	char message[ERROR_EXAMPLE_MAX] = "";
	char field[ERROR_CODE_MAX * 2] = "";

	v = map_get(err, "code");
	if (!v || !obj_str(v, code, ERROR_CODE_MAX))
		snprintf(code, ERROR_CODE_MAX, "other");
	v = map_get(err, "message");
	if (v)
		obj_str(v, message, sizeof(message));
	else
		obj_str(err, message, sizeof(message));
	v = map_get(err, "field");
	if (v && obj_str(v, field, sizeof(field)) && field[0])
		snprintf(detail, ERROR_EXAMPLE_MAX, "%.90s (field %.48s)",
			 message, field);
	else
		snprintf(detail, ERROR_EXAMPLE_MAX, "%s", message);
}

static bool obj_uint(const msgpack_object *o, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return false;
	*out = o->via.u64;
	return true;
}

/* One msgpack-RPC message from the server. */
static void on_rpc_message(struct conn *c, const msgpack_object *o,
			   uint64_t now_ns)
{
	const msgpack_object *a = o->via.array.ptr;
	uint64_t type;
	uint64_t msgid;
	uint32_t i;
	char code[ERROR_CODE_MAX];
	char detail[ERROR_EXAMPLE_MAX];

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 3 ||
	    !obj_uint(&a[0], &type)) {
		error_count(&c->w->errors, "bad_reply", "not msgpack-RPC", 1);
		return;
	}
	if (type == 2)
		return;         /* a notification (pushes): not ours */
	if (type != 1 || o->via.array.size != 4 || !obj_uint(&a[1], &msgid)) {
		error_count(&c->w->errors, "bad_reply", "not a response", 1);
		return;
	}
	i = (uint32_t)(msgid % cfg.depth);
	if (msgid > UINT32_MAX || !c->slots[i].busy ||
	    c->slots[i].msgid != msgid) {
		error_count(&c->w->errors, "bad_reply", "unknown msgid", 1);
		return;
	}
	if (a[2].type == MSGPACK_OBJECT_NIL) {
		slot_done(c, i, now_ns, NULL, NULL);
		return;
	}
	rpc_error_text(&a[2], code, detail);
	slot_done(c, i, now_ns, code, detail);
}

static void on_rpc_data(struct conn *c, size_t n, uint64_t now_ns)
{
	msgpack_unpacked res;
	msgpack_unpack_return ret;

	msgpack_unpacker_buffer_consumed(&c->unp, n);
	msgpack_unpacked_init(&res);
	while (c->state != CONN_DEAD) {
		ret = msgpack_unpacker_next(&c->unp, &res);
		if (ret == MSGPACK_UNPACK_SUCCESS) {
			on_rpc_message(c, &res.data, now_ns);
			continue;
		}
		if (ret != MSGPACK_UNPACK_CONTINUE)
			conn_fail(c, "bad_reply", "malformed msgpack");
		else if (msgpack_unpacker_message_size(&c->unp) >
			 REPLY_BYTES_MAX)
			conn_fail(c, "bad_reply", "reply too large");
		break;
	}
	msgpack_unpacked_destroy(&res);
}

/* ---- RESP replies ------------------------------------------------------- */

struct resp {
	char type;              /* '+', '-', ':', '$', or 'n' for nil */
	const char *body;
	size_t body_len;
};

static bool parse_long(const char *p, const char *end, long *out)
{
	bool neg = p < end && *p == '-';
	long v = 0;

	if (neg)
		p++;
	if (p == end || end - p > 12)
		return false;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (*p - '0');
	}
	*out = neg ? -v : v;
	return true;
}

/*
 * Length of the complete RESP reply at p[0..n): > 0, 0 when more bytes
 * are needed, -1 when malformed.  Arrays are never sent to GET or SET
 * and count as malformed.
 */
static long resp_parse(const char *p, size_t n, struct resp *r)
{
	const char *eol = memchr(p, '\n', n);
	size_t line;
	long len;

	if (!eol)
		return n > RESP_LINE_MAX ? -1 : 0;
	if (eol == p || eol[-1] != '\r')
		return -1;
	line = (size_t)(eol - p) + 1;
	r->type = p[0];
	r->body = p + 1;
	r->body_len = line - 3;
	if (p[0] == '+' || p[0] == '-' || p[0] == ':')
		return (long)line;
	if (p[0] != '$' || !parse_long(p + 1, eol - 1, &len) || len < -1 ||
	    len > (long)VALUE_BYTES_MAX * 2)
		return -1;
	if (len == -1) {
		r->type = 'n';
		return (long)line;
	}
	if (n < line + (size_t)len + 2)
		return 0;
	if (p[line + (size_t)len] != '\r' || p[line + (size_t)len + 1] != '\n')
		return -1;
	r->body = p + line;
	r->body_len = (size_t)len;
	return (long)(line + (size_t)len + 2);
}

static void on_resp_reply(struct conn *c, const struct resp *r,
			  uint64_t now_ns)
{
	uint32_t i = c->fifo[c->fifo_head];
	char code[ERROR_CODE_MAX];
	char detail[ERROR_EXAMPLE_MAX];
	const char *space;

	c->fifo_head = (c->fifo_head + 1) % cfg.depth;
	c->fifo_len--;
	if (r->type == '-') {
		space = memchr(r->body, ' ', r->body_len);
		snprintf(code, sizeof(code), "%.*s",
			 (int)(space ? (size_t)(space - r->body) : r->body_len),
			 r->body);
		snprintf(detail, sizeof(detail), "%.*s", (int)r->body_len,
			 r->body);
		slot_done(c, i, now_ns, code, detail);
	} else if (c->slots[i].method == M_SET) {
		slot_done(c, i, now_ns, r->type == '+' ? NULL : "bad_reply",
			  "SET did not answer +OK");
	} else if (r->type == 'n') {
		slot_done(c, i, now_ns, "nil", "GET found no value");
	} else if (r->type != '$' || r->body_len != cfg.value_bytes) {
		slot_done(c, i, now_ns, "wrong_value", "GET size differs");
	} else {
		slot_done(c, i, now_ns, NULL, NULL);
	}
}

static void on_resp_data(struct conn *c, size_t n, uint64_t now_ns)
{
	size_t off = 0;
	struct resp r;
	long len;

	c->in_len += n;
	while (c->state != CONN_DEAD && off < c->in_len) {
		len = resp_parse(c->in + off, c->in_len - off, &r);
		if (len == 0)
			break;
		if (len < 0 || c->fifo_len == 0) {
			conn_fail(c, "bad_reply", "malformed RESP reply");
			return;
		}
		off += (size_t)len;
		on_resp_reply(c, &r, now_ns);
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	if (c->in_len == c->in_cap)
		conn_fail(c, "bad_reply", "reply larger than the buffer");
}

static void on_recv(struct conn *c, int res, uint64_t now_ns)
{
	c->recv_busy = false;
	if (c->state == CONN_DEAD)
		return;
	if (res <= 0) {
		if (res == 0)
			conn_fail(c, "conn_closed", "the server closed it");
		else
			conn_fail_errno(c, "conn_closed", -res);
		return;
	}
	if (cfg.redis)
		on_resp_data(c, (size_t)res, now_ns);
	else
		on_rpc_data(c, (size_t)res, now_ns);
	if (c->state != CONN_DEAD)
		conn_recv(c);
}

static void on_cqe(struct worker *w, const struct io_uring_cqe *cqe,
		   uint64_t now_ns)
{
	uint64_t data = io_uring_cqe_get_data64(cqe);
	struct conn *c = (struct conn *)(uintptr_t)(data & ~OP_MASK);

	if (data == 0 || data == LIBURING_UDATA_TIMEOUT)
		return;
	w->ops--;
	switch ((enum op)(data & OP_MASK)) {
	case OP_CONNECT:
		on_connect(c, cqe->res);
		break;
	case OP_SEND:
		on_send(c, cqe->res);
		break;
	case OP_RECV:
		on_recv(c, cqe->res, now_ns);
		break;
	}
}

/* ---- the worker loop ---------------------------------------------------- */

static void worker_flush(struct worker *w)
{
	for (uint32_t i = 0; i < w->ndirty; i++)
		conn_flush(w->dirty[i]);
	w->ndirty = 0;
}

/* Submits what is queued, waits until wake_ns at most, handles
 * completions.  Returns 0 or a negative errno from io_uring. */
static int worker_turn(struct worker *w, uint64_t wake_ns)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts;
	uint64_t now_ns = clock_ns();
	uint64_t wait_ns = wake_ns > now_ns ? wake_ns - now_ns : 0;
	unsigned head;
	unsigned seen = 0;
	int rc;

	worker_flush(w);
	if (wait_ns > WAIT_SLICE_NS)
		wait_ns = WAIT_SLICE_NS;
	ts.tv_sec = (long long)(wait_ns / NS_PER_S);
	ts.tv_nsec = (long long)(wait_ns % NS_PER_S);
	if (wait_ns)
		rc = io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts,
						      NULL);
	else
		rc = io_uring_submit(&w->ring);
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN)
		return rc;
	now_ns = clock_ns();
	io_uring_for_each_cqe(&w->ring, head, cqe) {
		on_cqe(w, cqe, now_ns);
		seen++;
	}
	io_uring_cq_advance(&w->ring, seen);
	return 0;
}

/* Open loop: the earliest intended send among conns that could send. */
static uint64_t next_due(const struct worker *w)
{
	uint64_t due = w->end_ns;

	for (uint32_t i = 0; i < w->nconns; i++) {
		const struct conn *c = &w->conns[i];

		if (c->state == CONN_READY && c->free_count &&
		    c->next_due_ns < due)
			due = c->next_due_ns;
	}
	return due;
}

/* Open loop: intended sends of the window that never went out. */
static void count_unsent(struct worker *w)
{
	for (uint32_t i = 0; i < w->nconns && cfg.rate > 0; i++) {
		struct conn *c = &w->conns[i];
		uint64_t from = due_seq_at(w, c, w->measure_start_ns);
		uint64_t to = due_seq_at(w, c, w->end_ns);

		if (from < c->due_seq)
			from = c->due_seq;
		if (c->state == CONN_READY && to > from)
			w->unsent += to - from;
	}
}

static void worker_begin_stop(struct worker *w, uint64_t now_ns)
{
	w->stopping = true;
	w->drain_end_ns = now_ns + DRAIN_NS;
	if (w->end_ns > now_ns)
		w->end_ns = now_ns;
	count_unsent(w);
}

static bool worker_should_stop(const struct worker *w, uint64_t now_ns)
{
	if (atomic_load(&stop_requested) || now_ns >= w->end_ns)
		return true;
	return cfg.requests && w->budget == 0 && now_ns >= w->measure_start_ns;
}

static void worker_start_conns(struct worker *w, uint64_t start_ns)
{
	w->running = true;
	w->measure_start_ns = start_ns + (uint64_t)(cfg.warmup_s * 1e9);
	w->end_ns = cfg.requests ? UINT64_MAX :
		w->measure_start_ns + (uint64_t)(cfg.duration_s * 1e9);
	w->start_ns = start_ns;
	for (uint32_t i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];

		if (cfg.rate > 0)
			c->next_due_ns = due_ns(w, c, 0);
		conn_refill(c, start_ns);
	}
}

static int worker_run(struct worker *w)
{
	uint64_t now_ns;
	int rc = 0;

	worker_start_conns(w, run_start_ns);
	while (rc == 0) {
		now_ns = clock_ns();
		/* Sends due before the end go out before the stop check, so
		 * that only a full connection leaves a send unsent. */
		if (!w->stopping && cfg.rate > 0)
			for (uint32_t i = 0; i < w->nconns; i++)
				conn_issue_due(&w->conns[i], now_ns);
		if (!w->stopping && worker_should_stop(w, now_ns))
			worker_begin_stop(w, now_ns);
		if (w->stopping &&
		    (w->inflight == 0 || now_ns >= w->drain_end_ns))
			break;
		rc = worker_turn(w, w->stopping ? w->drain_end_ns :
				 cfg.rate > 0 ? next_due(w) : w->end_ns);
	}
	return rc;
}

/* Counts what never came back after the drain as errors. */
static void worker_count_unanswered(struct worker *w)
{
	for (uint32_t i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];

		for (uint32_t j = 0; j < cfg.depth; j++) {
			struct slot *s = &c->slots[j];

			if (s->busy && s->measured)
				request_failed(w, s->method, true, "no_reply",
					       "no reply in the drain time");
		}
	}
}

static int worker_connect(struct worker *w)
{
	uint64_t deadline_ns = clock_ns() + CONNECT_NS;
	int rc = 0;

	w->pending = w->nconns;
	for (uint32_t i = 0; i < w->nconns; i++)
		conn_start(&w->conns[i]);
	while (rc == 0 && w->pending > 0 && clock_ns() < deadline_ns &&
	       !atomic_load(&stop_requested))
		rc = worker_turn(w, deadline_ns);
	for (uint32_t i = 0; i < w->nconns; i++)
		if (w->conns[i].state != CONN_READY)
			conn_fail(&w->conns[i], "connect_failed",
				  "not ready in time");
	return rc;
}

/* Shuts every socket, waits for the kernel to finish with our buffers. */
static void worker_close(struct worker *w)
{
	uint64_t deadline_ns = clock_ns() + NS_PER_S;

	/* Marked dead first, so the completions this causes count nothing. */
	for (uint32_t i = 0; i < w->nconns; i++) {
		w->conns[i].state = CONN_DEAD;
		if (w->conns[i].fd >= 0)
			shutdown(w->conns[i].fd, SHUT_RDWR);
	}
	while (w->ops > 0 && clock_ns() < deadline_ns)
		if (worker_turn(w, deadline_ns))
			break;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int rc = worker_connect(w);

	/* Every worker passes the gate, whatever happened, or the main
	 * thread would wait for ever. */
	pthread_mutex_lock(&gate_lock);
	gate_arrived++;
	pthread_cond_broadcast(&gate_cond);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	if (rc == 0 && w->ready > 0 && !atomic_load(&stop_requested))
		rc = worker_run(w);
	if (rc)
		fprintf(stderr, "matchbench: worker %u: io_uring: %s\n",
			w->id, strerror(-rc));
	worker_count_unanswered(w);
	worker_close(w);
	return NULL;
}

/* ---- setting up and tearing down ---------------------------------------- */

static int conn_init(struct conn *c, struct worker *w, uint32_t index)
{
	c->w = w;
	c->fd = -1;
	c->index = index;
	msgpack_sbuffer_init(&c->out_busy);
	msgpack_sbuffer_init(&c->out_next);
	c->slots = calloc(cfg.depth, sizeof(*c->slots));
	c->free_slots = calloc(cfg.depth, sizeof(*c->free_slots));
	c->fifo = calloc(cfg.depth, sizeof(*c->fifo));
	if (!c->slots || !c->free_slots || !c->fifo)
		return -ENOMEM;
	for (uint32_t i = 0; i < cfg.depth; i++)
		c->free_slots[i] = cfg.depth - 1 - i;
	c->free_count = cfg.depth;
	if (cfg.redis) {
		/* Room for every reply in flight plus one error line. */
		c->in_cap = (size_t)cfg.depth * (cfg.value_bytes + 32) +
			    RESP_LINE_MAX + RECV_CHUNK_BYTES;
		c->in = malloc(c->in_cap);
		return c->in ? 0 : -ENOMEM;
	}
	return msgpack_unpacker_init(&c->unp, RECV_CHUNK_BYTES) ? 0 : -ENOMEM;
}

static void conn_destroy(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	msgpack_sbuffer_destroy(&c->out_busy);
	msgpack_sbuffer_destroy(&c->out_next);
	if (!cfg.redis && c->slots)
		msgpack_unpacker_destroy(&c->unp);
	free(c->in);
	free(c->slots);
	free(c->free_slots);
	free(c->fifo);
}

static unsigned ring_entries(uint32_t nconns)
{
	unsigned entries = 64;

	/* A connection has at most two operations queued (send and recv). */
	while (entries < 2 * nconns + 8 && entries < 32768)
		entries *= 2;
	return entries;
}

static int worker_init(struct worker *w, uint32_t id)
{
	int rc;

	w->id = id;
	w->rng.state = cfg.seed * 0x2545f4914f6cdd1dull + id + 1;
	w->budget = cfg.requests / cfg.threads +
		    (id < cfg.requests % cfg.threads ? 1 : 0);
	for (uint32_t m = 0; m < METHODS; m++)
		hist_init(&w->stats[m].hist);
	w->nconns = cfg.conns / cfg.threads +
		    (id < cfg.conns % cfg.threads ? 1 : 0);
	w->conns = calloc(w->nconns, sizeof(*w->conns));
	w->dirty = calloc(w->nconns, sizeof(*w->dirty));
	if (!w->conns || !w->dirty)
		return -ENOMEM;
	for (uint32_t i = 0; i < w->nconns; i++) {
		rc = conn_init(&w->conns[i], w, i * cfg.threads + id);
		if (rc)
			return rc;
	}
	rc = io_uring_queue_init(ring_entries(w->nconns), &w->ring, 0);
	w->ring_ready = rc == 0;
	return rc;
}

static void worker_destroy(struct worker *w)
{
	if (w->ring_ready)
		io_uring_queue_exit(&w->ring);
	for (uint32_t i = 0; w->conns && i < w->nconns; i++)
		conn_destroy(&w->conns[i]);
	free(w->conns);
	free(w->dirty);
}

/* ---- flags -------------------------------------------------------------- */

static void usage(FILE *out)
{
	fputs("usage: matchbench [options]\n"
	      "  --addr HOST:PORT     server (default 127.0.0.1:7411)\n"
	      "  --conns N            connections (default 50)\n"
	      "  --depth N            requests in flight per connection "
	      "(default 1)\n"
	      "  --threads N          worker threads, one io_uring each "
	      "(default 2)\n"
	      "  --duration S         measured seconds (default 10)\n"
	      "  --requests N         stop after N measured requests instead\n"
	      "  --warmup S           unmeasured seconds first (default 0)\n"
	      "  --rate R             open loop: R requests/s in total\n"
	      "  --mix M=W,...        weighted methods (default ping=1):\n"
	      "                       ping, student.get, resume.get,\n"
	      "                       posting.get, match.get, candidates.get,\n"
	      "                       posting.search, resume.put, posting.put\n"
	      "  --data FILE          JSON Lines data set to draw ids from\n"
	      "  --queries FILE       posting.search queries, one a line:\n"
	      "                       q, a tab, a division code or nothing\n"
	      "  --token-file FILE    send hello with this token first\n"
	      "  --redis              speak RESP: SET once, then GET\n"
	      "  --value-bytes N      --redis value size (default 600)\n"
	      "  --zipf S             popularity exponent, 0 = uniform "
	      "(default 1)\n"
	      "  --seed N             random seed (default 1)\n"
	      "  --json FILE          also write the results as JSON\n"
	      "  --help\n", out);
}

static int parse_u64(const char *s, uint64_t min, uint64_t max,
		     uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max,
		     uint32_t *out)
{
	uint64_t v;
	int rc = parse_u64(s, min, max, &v);

	if (rc == 0)
		*out = (uint32_t)v;
	return rc;
}

static int parse_double(const char *s, double min, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min)
		return -EINVAL;
	*out = v;
	return 0;
}

static int method_lookup(const char *name, size_t len)
{
	for (int m = 0; m < (int)METHODS_MIXABLE; m++)
		if (strlen(method_names[m]) == len &&
		    memcmp(method_names[m], name, len) == 0)
			return m;
	return -1;
}

/* "match.get=90, resume.put=5" into cfg.weights. */
static int parse_mix(const char *text)
{
	const char *p = text;

	memset(cfg.weights, 0, sizeof(cfg.weights));
	cfg.weight_total = 0;
	while (*p) {
		const char *eq;
		char *end;
		unsigned long weight;
		int m;

		p += strspn(p, " ,");
		if (!*p)
			break;
		eq = strchr(p, '=');
		if (!eq || (m = method_lookup(p, (size_t)(eq - p))) < 0)
			return -EINVAL;
		errno = 0;
		weight = strtoul(eq + 1, &end, 10);
		if (errno || end == eq + 1 || weight > 1000000 ||
		    cfg.weight_total + weight > 100000000 ||
		    (*end && *end != ',' && *end != ' '))
			return -EINVAL;
		cfg.weights[m] += (uint32_t)weight;
		cfg.weight_total += (uint32_t)weight;
		p = end;
	}
	return cfg.weight_total ? 0 : -EINVAL;
}

static int parse_addr(const char *text)
{
	char host[256];
	const char *colon = strrchr(text, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	size_t len;

	if (!colon || colon == text || (size_t)(colon - text) >= sizeof(host))
		return -EINVAL;
	len = (size_t)(colon - text);
	memcpy(host, text, len);
	host[len] = '\0';
	if (host[0] == '[' && len > 2 && host[len - 1] == ']') {
		memmove(host, host + 1, len - 2);
		host[len - 2] = '\0';
	}
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		return -EINVAL;
	memcpy(&cfg.addr, res->ai_addr, res->ai_addrlen);
	cfg.addr_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* The token is the file's content without trailing white space. */
static int read_token(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -errno;
	n = fread(cfg.token, 1, TOKEN_BYTES_MAX, f);
	fclose(f);
	while (n > 0 && strchr(" \t\r\n\v\f", cfg.token[n - 1]))
		n--;
	cfg.token[n] = '\0';
	cfg.has_token = true;
	return 0;
}

enum {
	OPT_ADDR = 1, OPT_CONNS, OPT_DEPTH, OPT_THREADS, OPT_DURATION,
	OPT_REQUESTS, OPT_WARMUP, OPT_RATE, OPT_MIX, OPT_DATA, OPT_TOKEN,
	OPT_REDIS, OPT_VALUE, OPT_ZIPF, OPT_SEED, OPT_JSON, OPT_QUERIES,
	OPT_HELP,
};

static const struct option long_options[] = {
	{ "addr", required_argument, NULL, OPT_ADDR },
	{ "conns", required_argument, NULL, OPT_CONNS },
	{ "depth", required_argument, NULL, OPT_DEPTH },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "requests", required_argument, NULL, OPT_REQUESTS },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "mix", required_argument, NULL, OPT_MIX },
	{ "data", required_argument, NULL, OPT_DATA },
	{ "token-file", required_argument, NULL, OPT_TOKEN },
	{ "redis", no_argument, NULL, OPT_REDIS },
	{ "value-bytes", required_argument, NULL, OPT_VALUE },
	{ "zipf", required_argument, NULL, OPT_ZIPF },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "queries", required_argument, NULL, OPT_QUERIES },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static int apply_option(int opt, const char *arg)
{
	switch (opt) {
	case OPT_ADDR: cfg.addr_text = arg; return 0;
	case OPT_CONNS: return parse_u32(arg, 1, CONNS_MAX, &cfg.conns);
	case OPT_DEPTH: return parse_u32(arg, 1, DEPTH_MAX, &cfg.depth);
	case OPT_THREADS: return parse_u32(arg, 1, THREADS_MAX, &cfg.threads);
	case OPT_DURATION: return parse_double(arg, 0.001, &cfg.duration_s);
	case OPT_REQUESTS: return parse_u64(arg, 1, UINT64_MAX / 2,
					     &cfg.requests);
	case OPT_WARMUP: return parse_double(arg, 0, &cfg.warmup_s);
	case OPT_RATE: return parse_double(arg, 0.001, &cfg.rate);
	case OPT_MIX: return parse_mix(arg);
	case OPT_DATA: cfg.data_path = arg; return 0;
	case OPT_TOKEN: return read_token(arg);
	case OPT_REDIS: cfg.redis = true; return 0;
	case OPT_VALUE: return parse_u32(arg, 1, VALUE_BYTES_MAX,
					  &cfg.value_bytes);
	case OPT_ZIPF: return parse_double(arg, 0, &cfg.zipf_s);
	case OPT_SEED: return parse_u64(arg, 0, UINT64_MAX, &cfg.seed);
	case OPT_JSON: cfg.json_path = arg; return 0;
	case OPT_QUERIES: cfg.queries_path = arg; return 0;
	default: return -EINVAL;
	}
}

static void config_defaults(int argc, char **argv)
{
	cfg.addr_text = "127.0.0.1:7411";
	cfg.conns = 50;
	cfg.depth = 1;
	cfg.threads = 2;
	cfg.duration_s = 10;
	cfg.value_bytes = 600;
	cfg.seed = 1;
	cfg.zipf_s = 1.0;
	cfg.weights[M_PING] = 1;
	cfg.weight_total = 1;
	cfg.argc = argc;
	cfg.argv = argv;
}

/* Returns 0, 1 for --help, or -EINVAL (message printed). */
static int parse_flags(int argc, char **argv)
{
	int opt;

	config_defaults(argc, argv);
	while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		if (opt == OPT_HELP) {
			usage(stdout);
			return 1;
		}
		if (opt == '?' || apply_option(opt, optarg)) {
			if (opt != '?')
				fprintf(stderr, "matchbench: bad value for "
					"--%s: %s\n",
					long_options[opt - 1].name, optarg);
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc || parse_addr(cfg.addr_text)) {
		fprintf(stderr, "matchbench: bad address or extra argument\n");
		return -EINVAL;
	}
	if (cfg.threads > cfg.conns)
		cfg.threads = cfg.conns;
	return 0;
}

/* ---- the report --------------------------------------------------------- */

struct totals {
	struct method_stats stats[METHODS];
	struct method_stats all;
	struct error_table errors;
	uint64_t late;
	uint64_t unsent;
	uint32_t ready;
	uint32_t lost;
	uint64_t last_reply_ns;
	uint64_t end_ns;
	double window_s;
	uint64_t error_sum;
};

static struct totals tot;

static void merge_worker(const struct worker *w)
{
	for (uint32_t m = 0; m < METHODS; m++) {
		hist_merge(&tot.stats[m].hist, &w->stats[m].hist);
		hist_merge(&tot.all.hist, &w->stats[m].hist);
		tot.stats[m].answered += w->stats[m].answered;
		tot.stats[m].errors += w->stats[m].errors;
		tot.all.answered += w->stats[m].answered;
		tot.all.errors += w->stats[m].errors;
	}
	for (uint32_t i = 0; i < w->errors.used; i++)
		error_count(&tot.errors, w->errors.kinds[i].code,
			    w->errors.kinds[i].example,
			    w->errors.kinds[i].count);
	tot.errors.other += w->errors.other;
	tot.late += w->late;
	tot.unsent += w->unsent;
	tot.ready += w->ready;
	tot.lost += w->lost;
	if (w->last_reply_ns > tot.last_reply_ns)
		tot.last_reply_ns = w->last_reply_ns;
	/* end_ns is where the worker stopped sending, early or on time. */
	if (w->running && w->end_ns > tot.end_ns)
		tot.end_ns = w->end_ns;
}

static void merge_all(const struct worker *workers)
{
	uint64_t measure_start_ns = run_start_ns +
				    (uint64_t)(cfg.warmup_s * 1e9);
	uint64_t window_end_ns;

	for (uint32_t m = 0; m < METHODS; m++)
		hist_init(&tot.stats[m].hist);
	hist_init(&tot.all.hist);
	for (uint32_t i = 0; i < cfg.threads; i++)
		merge_worker(&workers[i]);
	tot.error_sum = tot.errors.other;
	for (uint32_t i = 0; i < tot.errors.used; i++)
		tot.error_sum += tot.errors.kinds[i].count;
	/* The window runs from the end of the warm-up to the end of sending
	 * (duration) or to the last reply (a number of requests). */
	window_end_ns = cfg.requests ? tot.last_reply_ns : tot.end_ns;
	if (window_end_ns > measure_start_ns)
		tot.window_s = (double)(window_end_ns - measure_start_ns) / 1e9;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double rate_of(uint64_t n)
{
	return tot.window_s > 0 ? (double)n / tot.window_s : 0.0;
}

static void print_row(const char *name, const struct method_stats *s)
{
	const struct hist *h = &s->hist;

	printf("%-15s %10llu %10.0f %8llu %8.3f %8.3f %8.3f %8.3f %9.3f "
	       "%8.3f\n", name, (unsigned long long)s->answered,
	       rate_of(s->answered), (unsigned long long)s->errors,
	       ms(hist_percentile(h, 50)), ms(hist_percentile(h, 90)),
	       ms(hist_percentile(h, 99)), ms(hist_percentile(h, 99.9)),
	       ms(hist_max_ns(h)), hist_mean_ns(h) / 1e6);
}

static void print_header(void)
{
	printf("matchbench %s (%s): %u threads, %u connections (%u ready, "
	       "%u lost), depth %u, ", cfg.addr_text,
	       cfg.redis ? "redis" : "msgpack-rpc", cfg.threads, cfg.conns,
	       tot.ready, tot.lost, cfg.depth);
	if (cfg.rate > 0)
		printf("open loop at %.0f req/s\n", cfg.rate);
	else
		printf("closed loop\n");
	printf("measured %.2f s after %.2f s of warm-up\n\n", tot.window_s,
	       cfg.warmup_s);
	printf("%-15s %10s %10s %8s %8s %8s %8s %8s %9s %8s\n", "method",
	       "requests", "req/s", "errors", "p50 ms", "p90 ms", "p99 ms",
	       "p99.9 ms", "max ms", "mean ms");
}

static void print_report(void)
{
	print_header();
	for (uint32_t m = 0; m < M_HELLO; m++)
		if (tot.stats[m].answered || tot.stats[m].errors ||
		    (m < METHODS_MIXABLE && cfg.weights[m] && !cfg.redis))
			print_row(method_names[m], &tot.stats[m]);
	print_row("total", &tot.all);
	if (tot.error_sum) {
		printf("\nerrors by code:\n");
		for (uint32_t i = 0; i < tot.errors.used; i++)
			printf("  %-18s %10llu  e.g. %s\n",
			       tot.errors.kinds[i].code,
			       (unsigned long long)tot.errors.kinds[i].count,
			       tot.errors.kinds[i].example);
		if (tot.errors.other)
			printf("  %-18s %10llu\n", "(other codes)",
			       (unsigned long long)tot.errors.other);
	}
	if (cfg.rate > 0)
		printf("\nopen loop: %llu requests sent more than %.0f ms "
		       "late, %llu scheduled but never sent\n",
		       (unsigned long long)tot.late, ms(LATE_NS),
		       (unsigned long long)tot.unsent);
}

/* ---- JSON output -------------------------------------------------------- */

/* The command line as one shell-quoted string. */
static char *command_line(void)
{
	size_t cap = 1;
	char *out;
	char *p;

	for (int i = 0; i < cfg.argc; i++)
		cap += 4 * strlen(cfg.argv[i]) + 3;
	out = malloc(cap);
	if (!out)
		return NULL;
	p = out;
	for (int i = 0; i < cfg.argc; i++) {
		const char *a = cfg.argv[i];
		bool plain = *a && strspn(a, "abcdefghijklmnopqrstuvwxyz"
				 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				 "-_./:=,+@%") == strlen(a);

		if (i)
			*p++ = ' ';
		if (plain) {
			p = stpcpy(p, a);
			continue;
		}
		*p++ = '\'';
		for (; *a; a++)
			p = *a == '\'' ? stpcpy(p, "'\\''") : (*p = *a, p + 1);
		*p++ = '\'';
	}
	*p = '\0';
	return out;
}

static json_t *json_latency(const struct hist *h)
{
	return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}",
			 "p50", ms(hist_percentile(h, 50)),
			 "p90", ms(hist_percentile(h, 90)),
			 "p99", ms(hist_percentile(h, 99)),
			 "p99.9", ms(hist_percentile(h, 99.9)),
			 "max", ms(hist_max_ns(h)),
			 "mean", hist_mean_ns(h) / 1e6);
}

static json_t *json_method(const struct method_stats *s)
{
	return json_pack("{s:I, s:I, s:f, s:o}",
			 "requests", (json_int_t)s->answered,
			 "errors", (json_int_t)s->errors,
			 "throughput_rps", rate_of(s->answered),
			 "latency_ms", json_latency(&s->hist));
}

static json_t *json_errors(void)
{
	json_t *errors = json_object();

	for (uint32_t i = 0; i < tot.errors.used && errors; i++)
		json_object_set_new(errors, tot.errors.kinds[i].code,
			json_pack("{s:I, s:s}", "count",
				  (json_int_t)tot.errors.kinds[i].count,
				  "example", tot.errors.kinds[i].example));
	if (errors && tot.errors.other)
		json_object_set_new(errors, "other", json_pack("{s:I}",
				    "count", (json_int_t)tot.errors.other));
	return errors;
}

static json_t *json_methods(void)
{
	json_t *methods = json_object();

	for (uint32_t m = 0; m < M_HELLO && methods; m++)
		if (tot.stats[m].answered || tot.stats[m].errors)
			json_object_set_new(methods, method_names[m],
					    json_method(&tot.stats[m]));
	return methods;
}

static json_t *json_argv(void)
{
	json_t *argv = json_array();

	for (int i = 0; i < cfg.argc && argv; i++)
		json_array_append_new(argv, json_string(cfg.argv[i]));
	return argv;
}

static json_t *json_setup(void)
{
	return json_pack("{s:s, s:s, s:i, s:i, s:i, s:s, s:f, s:f, s:f, s:I}",
			 "addr", cfg.addr_text,
			 "mode", cfg.redis ? "redis" : "msgpack-rpc",
			 "threads", (int)cfg.threads,
			 "conns", (int)cfg.conns,
			 "depth", (int)cfg.depth,
			 "loop", cfg.rate > 0 ? "open" : "closed",
			 "rate", cfg.rate,
			 "warmup_s", cfg.warmup_s,
			 "window_s", tot.window_s,
			 "value_bytes", (json_int_t)cfg.value_bytes);
}

static int write_json(const char *path)
{
	char *cmd = command_line();
	json_t *root = json_setup();
	int rc;

	if (!cmd || !root) {
		free(cmd);
		json_decref(root);
		return -ENOMEM;
	}
	json_object_set_new(root, "command", json_string(cmd));
	json_object_set_new(root, "argv", json_argv());
	json_object_set_new(root, "started_at", json_integer(time(NULL)));
	json_object_set_new(root, "requests",
			    json_integer((json_int_t)tot.all.answered));
	json_object_set_new(root, "errors",
			    json_integer((json_int_t)tot.error_sum));
	json_object_set_new(root, "throughput_rps",
			    json_real(rate_of(tot.all.answered)));
	json_object_set_new(root, "latency_ms", json_latency(&tot.all.hist));
	json_object_set_new(root, "errors_by_code", json_errors());
	json_object_set_new(root, "methods", json_methods());
	json_object_set_new(root, "connections", json_pack("{s:i, s:i, s:i}",
			    "requested", (int)cfg.conns, "ready",
			    (int)tot.ready, "lost", (int)tot.lost));
	json_object_set_new(root, "open_loop", json_pack("{s:I, s:I, s:f}",
			    "late", (json_int_t)tot.late, "unsent",
			    (json_int_t)tot.unsent, "late_ms", ms(LATE_NS)));
	rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_SORT_KEYS |
			     JSON_REAL_PRECISION(7));
	json_decref(root);
	free(cmd);
	return rc ? -EIO : 0;
}

/* ---- main --------------------------------------------------------------- */

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_requested, true);
}

static int install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
		return -errno;
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL) ? -errno : 0;
}

static int grow_queries(void)
{
	uint32_t cap = queries.cap ? queries.cap * 2 : 1024;
	struct query *v;

	if (queries.cap > QUERIES_MAX / 2)
		return -E2BIG;
	v = realloc(queries.v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	queries.v = v;
	queries.cap = cap;
	return 0;
}

static void queries_free(void)
{
	for (uint32_t i = 0; i < queries.count; i++) {
		free(queries.v[i].q);
		free(queries.v[i].city);
	}
	free(queries.v);
	memset(&queries, 0, sizeof(queries));
}

/*
 * Parses one line of --queries, its newline already cut, into qs.
 * Returns NULL or what is wrong with the line.
 */
static const char *query_parse(char *line, size_t len, struct query *qs)
{
	char *tab = memchr(line, '\t', len);

	if (!tab)
		return "no tab: want q, a tab, and a division code or nothing";
	if (tab == line)
		return "empty q";
	if (memchr(tab + 1, '\t', len - (size_t)(tab + 1 - line)))
		return "more than one tab";
	if (memchr(line, '\0', len))
		return "a NUL byte";
	*tab = '\0';
	qs->q = strdup(line);
	qs->city = tab[1] ? strdup(tab + 1) : NULL;
	if (!qs->q || (tab[1] && !qs->city)) {
		free(qs->q);
		free(qs->city);
		return "out of memory";
	}
	return NULL;
}

/*
 * Reads --queries: every line is q, a tab, and a division code or
 * nothing (index_bench --make-queries writes such a file).  Lines may end
 * in \n or \r\n; a UTF-8 byte order mark at the start is skipped.  The
 * first bad line stops the load with a message naming FILE:LINE.
 */
static int queries_load(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *text;
	size_t cap = 0;
	ssize_t n;
	uint64_t lineno = 0;
	const char *why = NULL;
	int rc = 0;

	if (!f) {
		rc = -errno;
		fprintf(stderr, "matchbench: %s: %s\n", path, strerror(-rc));
		return rc;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		struct query qs;

		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		text = line;
		if (lineno == 1 && n >= 3 && !memcmp(line, "\xef\xbb\xbf", 3)) {
			text += 3;
			n -= 3;
		}
		why = query_parse(text, (size_t)n, &qs);
		if (why)
			break;
		if (queries.count == queries.cap && grow_queries()) {
			free(qs.q);
			free(qs.city);
			why = "too many queries";
			break;
		}
		queries.v[queries.count++] = qs;
	}
	if (why) {
		fprintf(stderr, "matchbench: %s:%llu: %s\n", path,
			(unsigned long long)lineno, why);
		rc = -EINVAL;
	} else if (ferror(f)) {
		fprintf(stderr, "matchbench: %s: %s\n", path, strerror(errno));
		rc = -EIO;
	} else if (queries.count == 0) {
		fprintf(stderr, "matchbench: %s: no queries\n", path);
		rc = -EINVAL;
	}
	free(line);
	fclose(f);
	return rc;
}

/* True when a method of the mix draws from the data set. */
static bool needs_data(void)
{
	for (uint32_t m = 0; m < METHODS_MIXABLE; m++) {
		if (!cfg.weights[m] || m == M_PING)
			continue;
		if (m == M_POSTING_SEARCH && queries.count)
			continue;
		return true;
	}
	return false;
}

static int prepare(void)
{
	uint64_t t0 = clock_ns();
	bool cached;
	int rc;

	run_tag = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
	if (cfg.redis && (rc = redis_commands()))
		return rc;
	if (cfg.queries_path) {
		rc = queries_load(cfg.queries_path);
		if (rc)
			return rc;
		fprintf(stderr, "matchbench: %s: %u queries\n",
			cfg.queries_path, queries.count);
		if (cfg.redis || !cfg.weights[M_POSTING_SEARCH])
			fprintf(stderr, "matchbench: --queries: no "
				"posting.search in the mix, the file is not "
				"used\n");
	}
	if (!cfg.data_path) {
		if (!cfg.redis && needs_data())
			fprintf(stderr, "matchbench: no --data: ids are "
				"placeholders and will mostly be not_found\n");
		return 0;
	}
	rc = data_load(cfg.data_path, &cached);
	if (rc == 0)
		fprintf(stderr, "matchbench: %s%s: %llu lines in %.1f s: "
			"%u students, %u resumes, %u postings, %u companies, "
			"%u words\n", cfg.data_path, cached ? ".ids" : "",
			(unsigned long long)ds.lines,
			(double)(clock_ns() - t0) / 1e9, ds.students.count,
			ds.resumes.count, ds.postings.count,
			ds.companies.count, ds.words.count);
	return rc;
}

/* Creates the workers' threads; returns how many were started. */
static uint32_t start_workers(struct worker *workers)
{
	uint32_t started = 0;
	int rc;

	for (; started < cfg.threads; started++) {
		rc = pthread_create(&workers[started].thread, NULL,
				    worker_main, &workers[started]);
		if (rc) {
			fprintf(stderr, "matchbench: starting a thread: %s\n",
				strerror(rc));
			atomic_store(&stop_requested, true);
			break;
		}
	}
	return started;
}

/* Runs the load.  Returns 0, or -1 when not every worker could run. */
static int run(struct worker *workers)
{
	uint32_t started;

	for (uint32_t i = 0; i < cfg.threads; i++) {
		int rc = worker_init(&workers[i], i);

		if (rc) {
			fprintf(stderr, "matchbench: setting up worker %u: "
				"%s\n", i, strerror(-rc));
			return -1;
		}
	}
	started = start_workers(workers);
	pthread_mutex_lock(&gate_lock);
	while (gate_arrived < started)
		pthread_cond_wait(&gate_cond, &gate_lock);
	run_start_ns = clock_ns();
	gate_open = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	for (uint32_t i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	return started == cfg.threads ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct worker *workers = NULL;
	int rc = parse_flags(argc, argv);

	if (rc)
		return rc > 0 ? 0 : 2;
	if (install_signals() || prepare()) {
		data_free();
		queries_free();
		return 1;
	}
	workers = calloc(cfg.threads, sizeof(*workers));
	if (!workers)
		return 1;
	if (run(workers))
		rc = 1;
	merge_all(workers);
	for (uint32_t i = 0; i < cfg.threads; i++)
		worker_destroy(&workers[i]);
	free(workers);
	print_report();
	if (cfg.json_path && write_json(cfg.json_path))
		fprintf(stderr, "matchbench: cannot write %s\n", cfg.json_path);
	if (tot.ready == 0)
		fprintf(stderr, "matchbench: no connection became ready\n");
	if (rc == 0 && tot.all.answered == 0)
		rc = 1;
	data_free();
	queries_free();
	free(cfg.redis_get);
	free(cfg.redis_set);
	return rc;
}
