/*
 * matchd: the daemon's entry point.  Parses flags, loads the reference
 * data, opens the store, starts the network threads, and waits for
 * SIGTERM or SIGINT; then stops accepting, lets in-flight requests finish
 * and their writes commit, and exits 0.
 *
 * Signals are blocked in every thread and taken here with sigwait(), so
 * no handler ever runs inside a network or writer thread.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "completeness.h"
#include "index.h"
#include "log.h"
#include "match.h"
#include "matchrpc.h"
#include "net.h"
#include "push.h"
#include "ref.h"
#include "rpc.h"
#include "search.h"
#include "store.h"

#define MATCHD_VERSION "0.1.0"

struct options {
	struct net_config net;
	struct store_config store;
	struct proto_limits limits;
	struct push_config push;
	char host[256];
	const char *ref_dir;
	const char *completeness_path;
	const char *token_file;
	unsigned threshold;
	unsigned long long build_lists_max;
	bool match_idle;
	int match_nice;
	enum log_level log_level;
	bool log_json;
};

static void usage(FILE *f)
{
	fputs("usage: matchd [options]\n"
	"  --listen HOST:PORT        address to serve (127.0.0.1:7411)\n"
	"  --data DIR                LMDB data directory (var/data)\n"
	"  --ref DIR                 reference data (the checkout's data/)\n"
	"  --threads N               network threads (number of cores)\n"
	"  --token-file FILE         require `hello` with this token\n"
	"  --sync on|off             fsync every commit (on)\n"
	"  --log-level LEVEL         debug, info, warn, error (info)\n"
	"  --log-json                log lines as JSON objects\n"
	"  --max-conns N             open connections (10000)\n"
	"  --idle-timeout S          close idle connections after S s (300)\n"
	"  --stall-timeout S         drop non-reading clients after S s (30)\n"
	"  --max-output BYTES        unsent replies per connection (8 MiB)\n"
	"  --max-message BYTES       one request (16 MiB)\n"
	"  --max-string BYTES        one string (64 KiB)\n"
	"  --max-list N              one list or map (10000)\n"
	"  --max-depth N             nesting of a request (16)\n"
	"  --map-max BYTES           largest LMDB map (256 GiB)\n"
	"  --completeness FILE       resume item weights (REF/completeness.tsv)\n"
	"  --completeness-threshold N  percent for eligibility (60)\n"
	"  --push-score-min X        lowest score pushed (0.6)\n"
	"  --push-rank-max N         pushed only within the top N (10)\n"
	"  --push-daily-cap N        pushes per student per day (5)\n"
	"  --push-retention S        keep acknowledged pushes S s (604800)\n"
	"  --build-lists-max N       build every list before serving up to\n"
	"                            N students, else in the background\n"
	"                            (100000)\n"
	"  --match-priority P        the match thread's: idle (runs on cores\n"
	"                            queries leave free), or a nice value\n"
	"                            0 to 19 (idle)\n"
	"  --help, --version\n", f);
}

static int parse_u64(const char *s, unsigned long long lo,
		     unsigned long long hi, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || end == s || *end || *out < lo || *out > hi ||
	    s[0] == '-')
		return -EINVAL;
	return 0;
}

static int parse_fraction(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || !(*out >= 0.0 && *out <= 1.0))
		return -EINVAL;
	return 0;
}

static int parse_listen(struct options *o, const char *arg)
{
	const char *colon = strrchr(arg, ':');
	size_t len;

	if (!colon || colon == arg || !colon[1])
		return -EINVAL;
	len = (size_t)(colon - arg);
	if (arg[0] == '[' && colon[-1] == ']') {
		arg++;
		len -= 2;
	}
	if (len >= sizeof(o->host))
		return -EINVAL;
	memcpy(o->host, arg, len);
	o->host[len] = '\0';
	o->net.host = o->host;
	o->net.port = colon + 1;
	return 0;
}

/* The checkout's data/, found from the executable's path: bin/matchd
 * and build/asan/bin/matchd both live in the checkout. */
static const char *default_ref_dir(void)
{
	static const char *const up[] = { "/..", "/../../.." };
	static char dir[PATH_MAX + 32];
	char exe[PATH_MAX];
	const char *bin;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return "data";
	exe[n] = '\0';
	bin = dirname(exe);
	for (int i = 0; i < 2; i++) {
		snprintf(dir, sizeof(dir), "%.*s%s/data", PATH_MAX - 1, bin,
			 up[i]);
		if (access(dir, R_OK) == 0)
			return dir;
	}
	return "data";
}

enum {
	OPT_LISTEN = 256, OPT_DATA, OPT_REF, OPT_THREADS, OPT_TOKEN,
	OPT_SYNC, OPT_LOG_LEVEL, OPT_LOG_JSON, OPT_MAX_CONNS, OPT_IDLE,
	OPT_STALL, OPT_MAX_OUT, OPT_MAX_MSG, OPT_MAX_STR, OPT_MAX_LIST,
	OPT_MAX_DEPTH, OPT_MAP_MAX, OPT_COMPL, OPT_THRESHOLD, OPT_PUSH_SCORE,
	OPT_PUSH_RANK, OPT_PUSH_CAP, OPT_PUSH_RETENTION, OPT_BUILD_MAX,
	OPT_MATCH_PRIO,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option long_options[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "data", required_argument, NULL, OPT_DATA },
	{ "ref", required_argument, NULL, OPT_REF },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "token-file", required_argument, NULL, OPT_TOKEN },
	{ "sync", required_argument, NULL, OPT_SYNC },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "log-json", no_argument, NULL, OPT_LOG_JSON },
	{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE },
	{ "stall-timeout", required_argument, NULL, OPT_STALL },
	{ "max-output", required_argument, NULL, OPT_MAX_OUT },
	{ "max-message", required_argument, NULL, OPT_MAX_MSG },
	{ "max-string", required_argument, NULL, OPT_MAX_STR },
	{ "max-list", required_argument, NULL, OPT_MAX_LIST },
	{ "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
	{ "map-max", required_argument, NULL, OPT_MAP_MAX },
	{ "completeness", required_argument, NULL, OPT_COMPL },
	{ "completeness-threshold", required_argument, NULL, OPT_THRESHOLD },
	{ "push-score-min", required_argument, NULL, OPT_PUSH_SCORE },
	{ "push-rank-max", required_argument, NULL, OPT_PUSH_RANK },
	{ "push-daily-cap", required_argument, NULL, OPT_PUSH_CAP },
	{ "push-retention", required_argument, NULL, OPT_PUSH_RETENTION },
	{ "build-lists-max", required_argument, NULL, OPT_BUILD_MAX },
	{ "match-priority", required_argument, NULL, OPT_MATCH_PRIO },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* Applies one numeric flag.  Returns 0 or -EINVAL. */
static int set_number(struct options *o, int opt, const char *arg)
{
	unsigned long long v;
	unsigned long long hi = opt == OPT_THRESHOLD ? 100 : 1ull << 40;

	if (parse_u64(arg, opt == OPT_THRESHOLD || opt == OPT_BUILD_MAX ? 0
		      : 1, hi, &v))
		return -EINVAL;
	switch (opt) {
	case OPT_THREADS: o->net.threads = (unsigned)v; break;
	case OPT_MAX_CONNS: o->net.conns_max = (unsigned)v; break;
	case OPT_IDLE: o->net.idle_timeout_s = (unsigned)v; break;
	case OPT_STALL: o->net.stall_timeout_s = (unsigned)v; break;
	case OPT_MAX_OUT: o->net.out_bytes_max = v; break;
	case OPT_MAX_MSG: o->limits.message_bytes_max = v; break;
	case OPT_MAX_STR: o->limits.string_bytes_max = (uint32_t)v; break;
	case OPT_MAX_LIST: o->limits.list_len_max = (uint32_t)v; break;
	case OPT_MAX_DEPTH: o->limits.depth_max = (uint32_t)v; break;
	case OPT_MAP_MAX: o->store.map_bytes_max = v; break;
	case OPT_THRESHOLD: o->threshold = (unsigned)v; break;
	case OPT_PUSH_RANK: o->push.rank_max = (unsigned)v; break;
	case OPT_PUSH_CAP: o->push.daily_cap = (unsigned)v; break;
	case OPT_PUSH_RETENTION: o->push.retention_s = (unsigned)v; break;
	case OPT_BUILD_MAX: o->build_lists_max = v; break;
	default: return -EINVAL;
	}
	return 0;
}

static int set_option(struct options *o, int opt, const char *arg)
{
	switch (opt) {
	case OPT_LISTEN: return parse_listen(o, arg);
	case OPT_DATA: o->store.dir = arg; return 0;
	case OPT_REF: o->ref_dir = arg; return 0;
	case OPT_TOKEN: o->token_file = arg; return 0;
	case OPT_COMPL: o->completeness_path = arg; return 0;
	case OPT_LOG_JSON: o->log_json = true; return 0;
	case OPT_LOG_LEVEL: return log_level_parse(arg, &o->log_level);
	case OPT_MATCH_PRIO: {
		unsigned long long nice;

		o->match_idle = strcmp(arg, "idle") == 0;
		if (o->match_idle)
			return 0;
		if (parse_u64(arg, 0, 19, &nice))
			return -EINVAL;
		o->match_nice = (int)nice;
		return 0;
	}
	case OPT_PUSH_SCORE: return parse_fraction(arg, &o->push.score_min);
	case OPT_SYNC:
		if (strcmp(arg, "on") && strcmp(arg, "off"))
			return -EINVAL;
		o->store.sync = strcmp(arg, "on") == 0;
		return 0;
	default:
		return set_number(o, opt, arg);
	}
}

/* Returns 0, 1 to exit successfully (help), or -1 on a bad flag. */
static int parse_options(struct options *o, int argc, char **argv)
{
	int opt;

	memset(o, 0, sizeof(*o));
	net_config_default(&o->net);
	store_config_default(&o->store);
	proto_limits_default(&o->limits);
	push_config_default(&o->push);
	o->threshold = 60;
	o->build_lists_max = 100000;
	o->match_idle = true;
	o->log_level = LOG_INFO;
	while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		if (opt == OPT_HELP) {
			usage(stdout);
			return 1;
		}
		if (opt == OPT_VERSION) {
			printf("matchd %s\n", MATCHD_VERSION);
			return 1;
		}
		if (opt == '?' || set_option(o, opt, optarg)) {
			if (opt != '?')
				fprintf(stderr, "matchd: bad value for "
					"--%s: %s\n",
					long_options[opt - OPT_LISTEN].name,
					optarg);
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "matchd: unexpected argument %s\n",
			argv[optind]);
		return -1;
	}
	if (!o->ref_dir)
		o->ref_dir = default_ref_dir();
	o->net.message_bytes_max = o->limits.message_bytes_max;
	o->net.depth_max = o->limits.depth_max;
	return 0;
}

/* Reads the token; trailing white space is not part of it. */
static int read_token(const char *path, struct rpc_server *srv)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -errno;
	n = fread(srv->token, 1, sizeof(srv->token) - 1, f);
	fclose(f);
	while (n > 0 && strchr(" \t\r\n\v\f", srv->token[n - 1]))
		n--;
	srv->token[n] = '\0';
	srv->token_len = n;
	return n ? 0 : -EINVAL;
}

struct daemon {
	struct options opt;
	struct ref *ref;
	struct completeness *comp;
	struct store *store;
	struct push *push;
	struct index *index;
	struct match *match;
	struct net *net;
	struct rpc_server srv;
	struct api api;
};

static int load_reference(struct daemon *d)
{
	char err[512];
	char path[PATH_MAX];
	int rc;

	rc = ref_load(&d->ref, d->opt.ref_dir, err, sizeof(err));
	if (rc) {
		log_msg(LOG_ERROR, "reference data: %s", err);
		return rc;
	}
	if (!d->opt.completeness_path) {
		snprintf(path, sizeof(path), "%s/completeness.tsv",
			 d->opt.ref_dir);
		d->opt.completeness_path = path;
	}
	rc = completeness_load(&d->comp, d->opt.completeness_path, err,
			       sizeof(err));
	if (rc)
		log_msg(LOG_ERROR, "completeness items: %s", err);
	d->opt.completeness_path = NULL;
	return rc;
}

static int setup_server(struct daemon *d)
{
	struct rpc_server *srv = &d->srv;
	int rc;

	srv->limits = d->opt.limits;
	srv->version = MATCHD_VERSION;
	srv->started_at = (int64_t)time(NULL);
	srv->app = &d->api;
	d->api.store = d->store;
	d->api.ref = d->ref;
	d->api.completeness = d->comp;
	d->api.completeness_threshold = d->opt.threshold;
	d->api.limits = d->opt.limits;
	d->api.threads = d->opt.net.threads;
	d->api.push = d->push;
	push_attach(d->push, srv);
	rc = rpc_server_add(srv, rpc_builtin_methods,
			    rpc_builtin_methods_len);
	if (!rc)
		rc = rpc_server_add(srv, api_methods, api_methods_len);
	if (!rc)
		rc = rpc_server_add(srv, push_methods, push_methods_len);
	if (!rc)
		rc = rpc_server_add(srv, search_methods, search_methods_len);
	if (!rc)
		rc = rpc_server_add(srv, matchrpc_methods,
				    matchrpc_methods_len);
	d->api.index = d->index;
	d->api.match = d->match;
	if (rc)
		log_msg(LOG_ERROR, "method table: %s", strerror(-rc));
	if (!rc && d->opt.token_file) {
		rc = read_token(d->opt.token_file, srv);
		if (rc)
			log_msg(LOG_ERROR, "token file %s: %s",
				d->opt.token_file, rc == -EINVAL ?
				"empty" : strerror(-rc));
	}
	return rc;
}

static int load_posting(void *ctx, const MDB_val *key, const MDB_val *val)
{
	struct index_loader *l = ctx;

	(void)key;
	return index_load_add(l, val->mv_data, val->mv_size) != 0;
}

/* Fills the posting index from the store, in pages of one snapshot. */
static int build_index(struct daemon *d)
{
	struct index_loader *l;
	struct store_reader *rd;
	struct index_stats is;
	uint64_t invalid = 0;
	uint64_t t0 = rpc_now_us();
	int rc, end_rc;

	rc = index_new(&d->index, d->ref);
	if (!rc)
		rc = store_reader_new(d->store, &rd);
	if (rc)
		return rc;
	rc = index_load_begin(d->index, &l);
	if (rc) {
		store_reader_free(rd);
		return rc;
	}
	rc = store_read_begin(rd);
	if (rc == 0) {
		rc = store_scan(rd, STORE_POSTING, NULL, 0, SIZE_MAX,
				load_posting, l);
		store_read_end(rd);
	}
	store_reader_free(rd);
	end_rc = index_load_end(l, &invalid);
	rc = rc < 0 ? rc : end_rc;
	index_stats_get(d->index, &is);
	log_msg(LOG_INFO, "search index: %llu postings in %.2f s, %llu MiB, "
		"%llu unreadable", (unsigned long long)is.postings,
		(double)(rpc_now_us() - t0) / 1e6,
		(unsigned long long)(is.bytes >> 20),
		(unsigned long long)invalid);
	return rc;
}

static int offer_push(void *ctx, const char *student_id,
		      const char *posting_id, float score, unsigned rank)
{
	push_offer(ctx, student_id, strlen(student_id), posting_id,
		   strlen(posting_id), score, rank);
	return 1;
}

static void flush_pushes(void *ctx)
{
	push_flush(ctx);
}

/*
 * Loads students, resumes and postings into the match module and, up to
 * --build-lists-max students, computes every list before serving (and
 * offers their pushes again, which recovers offers a crash lost); beyond
 * it the match thread builds lists in the background, asked-for first.
 */
static int build_match(struct daemon *d)
{
	struct match_config cfg;
	struct match_stats ms;
	uint64_t t0 = rpc_now_us();
	bool eager;
	int rc;

	match_config_default(&cfg);
	cfg.threshold = d->opt.threshold;
	cfg.store = d->store;
	cfg.on_enter = offer_push;
	cfg.on_batch_end = flush_pushes;
	cfg.push_ctx = d->push;
	cfg.offer_on_build = true;
	cfg.idle = d->opt.match_idle;
	cfg.nice = d->opt.match_nice;
	rc = match_new(&d->match, &cfg, d->ref, d->comp);
	if (!rc)
		rc = match_load_store(d->match, d->store);
	if (rc)
		return rc;
	match_stats_get(d->match, &ms);
	eager = ms.students <= d->opt.build_lists_max;
	if (eager)
		rc = match_build(d->match);
	log_msg(LOG_INFO, "match lists: %llu students, %llu eligible, %llu "
		"open postings, %s in %.2f s", (unsigned long long)ms.students,
		(unsigned long long)ms.eligible,
		(unsigned long long)ms.postings,
		eager ? "built" : "loaded (lists build in the background)",
		(double)(rpc_now_us() - t0) / 1e6);
	return rc;
}

static int start(struct daemon *d)
{
	char err[512];
	int rc;

	rc = load_reference(d);
	if (!rc)
		rc = store_open(&d->store, &d->opt.store, err, sizeof(err));
	if (rc && d->ref && d->comp)
		log_msg(LOG_ERROR, "storage: %s", err);
	if (!rc) {
		rc = build_index(d);
		if (rc)
			log_msg(LOG_ERROR, "search index: %s", strerror(-rc));
	}
	if (!rc) {
		rc = push_new(&d->push, d->store, &d->opt.push);
		if (rc)
			log_msg(LOG_ERROR, "push outbox: %s", strerror(-rc));
	}
	if (!rc) {
		rc = build_match(d);
		if (rc)
			log_msg(LOG_ERROR, "match lists: %s", strerror(-rc));
	}
	if (!rc)
		rc = setup_server(d);
	if (!rc) {
		rc = net_start(&d->net, &d->opt.net, &d->srv, d->store, err,
			       sizeof(err));
		if (rc)
			log_msg(LOG_ERROR, "network: %s", err);
	}
	if (!rc)
		rc = push_attach_workers(d->push);
	if (!rc)
		rc = push_start(d->push);
	if (!rc)
		rc = match_start(d->match);
	return rc;
}

static void stop(struct daemon *d)
{
	/* First the match thread: jobs waiting on it are answered before
	 * the network drains, and it offers no push after push_stop(). */
	match_stop(d->match);
	if (d->net) {
		d->srv.shutting_down = true;
		net_shutdown(d->net);
	}
	push_stop(d->push);
	/* Every write was answered before the threads ended, so the store
	 * closes last, after the readers the threads held. */
	net_free(d->net);
	store_close(d->store);
	push_free(d->push);
	match_free(d->match);
	index_free(d->index);
	completeness_free(d->comp);
	ref_free(d->ref);
}

int main(int argc, char **argv)
{
	static struct daemon d;
	sigset_t set;
	int sig = 0;
	int rc;

	rc = parse_options(&d.opt, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 2;
	log_setup(d.opt.log_level, d.opt.log_json);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = start(&d);
	if (rc == 0) {
		log_msg(LOG_INFO, "matchd %s serving on %s:%s, %u threads, "
			"data in %s, sync %s", MATCHD_VERSION, d.opt.net.host,
			d.opt.net.port, d.opt.net.threads, d.opt.store.dir,
			d.opt.store.sync ? "on" : "off");
		sigwait(&set, &sig);
		log_msg(LOG_INFO, "signal %d: finishing in-flight requests",
			sig);
	}
	stop(&d);
	if (rc == 0)
		log_msg(LOG_INFO, "stopped cleanly");
	return rc ? 1 : 0;
}
