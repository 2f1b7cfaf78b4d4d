/*
 * matchgen: writes a synthetic data set as JSON Lines for matchctl to
 * import and matchbench to replay.  This file is the program's main: it
 * parses flags, loads the reference data and hands the output of the gen
 * module to stdout or a file.  Single-threaded.  docs/data.md describes
 * the flags and the data.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gen.h"
#include "ref.h"

static const char usage[] =
	"usage: matchgen [options]\n"
	"Writes a synthetic data set (companies, students, resumes, postings,\n"
	"closes) as JSON Lines.\n"
	"  --scale demo|guangdong  named sizes (default demo)\n"
	"  --students N            students, one resume each\n"
	"  --postings N            open postings; 15% more expire or close\n"
	"  --companies N           companies\n"
	"  --seed N                random seed (default 1)\n"
	"  --now UNIX              the clock, Unix seconds (default now)\n"
	"  --out FILE|-            output file (default -, stdout)\n"
	"  --ref DIR               reference data (the checkout's data/)\n"
	"  --help                  this text\n";

struct options {
	struct gen_config cfg;
	const char *out;
	const char *ref_dir;
};

enum {
	OPT_SCALE = 256, OPT_STUDENTS, OPT_POSTINGS, OPT_COMPANIES, OPT_SEED,
	OPT_NOW, OPT_OUT, OPT_REF, OPT_HELP,
};

static const struct option long_options[] = {
	{ "scale", required_argument, NULL, OPT_SCALE },
	{ "students", required_argument, NULL, OPT_STUDENTS },
	{ "postings", required_argument, NULL, OPT_POSTINGS },
	{ "companies", required_argument, NULL, OPT_COMPANIES },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "now", required_argument, NULL, OPT_NOW },
	{ "out", required_argument, NULL, OPT_OUT },
	{ "ref", required_argument, NULL, OPT_REF },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Parses a whole decimal number in [0, max].  Returns 0 or -EINVAL. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_size(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v;
	int rc = parse_u64(s, max, &v);

	if (rc == 0)
		*out = (uint32_t)v;
	return rc;
}

/* Applies one flag.  Returns 0, 1 for --help, or -EINVAL. */
static int apply_option(struct options *o, int opt, const char *arg)
{
	uint64_t v;

	switch (opt) {
	case OPT_SCALE:
		return gen_scale(arg, &o->cfg);
	case OPT_STUDENTS:
		return parse_size(arg, GEN_STUDENTS_MAX, &o->cfg.students);
	case OPT_POSTINGS:
		return parse_size(arg, GEN_POSTINGS_MAX, &o->cfg.postings);
	case OPT_COMPANIES:
		return parse_size(arg, GEN_COMPANIES_MAX, &o->cfg.companies);
	case OPT_SEED:
		return parse_u64(arg, UINT64_MAX, &o->cfg.seed);
	case OPT_NOW:
		if (parse_u64(arg, INT64_MAX / 2, &v))
			return -EINVAL;
		o->cfg.now = (int64_t)v;
		return 0;
	case OPT_OUT:
		o->out = arg;
		return 0;
	case OPT_REF:
		o->ref_dir = arg;
		return 0;
	case OPT_HELP:
		return 1;
	default:
		return -EINVAL;
	}
}

/* The checkout's data/: matchgen runs as bin/matchgen or
 * build/asan/bin/matchgen, one or three levels below the checkout. */
static const char *default_ref_dir(void)
{
	static char dir[PATH_MAX + 16];
	static const char *const ups[] = { "..", "../../.." };
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		const char *bin = dirname(exe);

		for (size_t i = 0; i < sizeof(ups) / sizeof(ups[0]); i++) {
			snprintf(dir, sizeof(dir), "%.*s/%s/data",
				 PATH_MAX - 16, bin, ups[i]);
			if (access(dir, R_OK) == 0)
				return dir;
		}
	}
	return "data";
}

/* Later flags override earlier ones, so `--scale guangdong --students
 * 1000` means the guangdong sizes with fewer students. */
static int parse_options(int argc, char **argv, struct options *o)
{
	int opt, rc;

	memset(o, 0, sizeof(*o));
	o->cfg.seed = 1;
	o->cfg.now = (int64_t)time(NULL);
	o->out = "-";
	if (gen_scale("demo", &o->cfg))
		return -EINVAL;
	while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		rc = apply_option(o, opt, optarg);
		if (rc < 0 && opt != '?')
			fprintf(stderr, "matchgen: bad value for --%s: %s\n",
				long_options[opt - OPT_SCALE].name, optarg);
		if (rc)
			return rc;
	}
	if (optind < argc) {
		fprintf(stderr, "matchgen: unexpected argument %s\n",
			argv[optind]);
		return -EINVAL;
	}
	if (!o->ref_dir)
		o->ref_dir = default_ref_dir();
	return 0;
}

/* Writes all of buf to the descriptor in ctx, retrying short writes. */
static int write_all(void *ctx, const char *buf, size_t len)
{
	int fd = *(int *)ctx;

	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void report(const struct gen_counts *c, double s)
{
	fprintf(stderr,
		"matchgen: %" PRIu64 " lines, %.1f MB in %.2f s: %" PRIu64
		" companies, %" PRIu64 " students, %" PRIu64 " resumes, %"
		PRIu64 " postings (%" PRIu64 " open, %" PRIu64 " expired, %"
		PRIu64 " closed)\n",
		c->lines, (double)c->bytes / 1e6, s, c->companies,
		c->students, c->resumes, c->postings,
		c->postings - c->postings_expired - c->postings_closed,
		c->postings_expired, c->postings_closed);
}

/* Generates into fd.  Returns 0 or -errno (message printed). */
static int generate(const struct options *o, const struct ref *ref, int fd)
{
	struct gen *g = NULL;
	struct gen_counts counts;
	struct timespec t0;
	char err[512];
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = gen_open(&g, &o->cfg, ref, o->ref_dir, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "matchgen: %s\n", err);
		return rc;
	}
	rc = gen_run(g, write_all, &fd, &counts);
	gen_free(g);
	if (rc) {
		fprintf(stderr, "matchgen: writing %s: %s\n", o->out,
			strerror(-rc));
		return rc;
	}
	report(&counts, seconds_since(&t0));
	return 0;
}

static int open_out(const char *path)
{
	int fd;

	if (strcmp(path, "-") == 0)
		return STDOUT_FILENO;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fprintf(stderr, "matchgen: %s: %s\n", path, strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	struct options o;
	struct ref *ref = NULL;
	char err[512];
	int fd, rc;

	rc = parse_options(argc, argv, &o);
	if (rc) {
		fputs(usage, rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : 2;
	}
	rc = ref_load(&ref, o.ref_dir, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "matchgen: reference data: %s\n", err);
		return 1;
	}
	fd = open_out(o.out);
	if (fd < 0) {
		ref_free(ref);
		return 1;
	}
	rc = generate(&o, ref, fd);
	if (fd != STDOUT_FILENO && close(fd) && rc == 0) {
		fprintf(stderr, "matchgen: %s: %s\n", o.out, strerror(errno));
		rc = -EIO;
	}
	ref_free(ref);
	return rc ? 1 : 0;
}
