/*
 * eval: how well the matching model finds what students want, measured on
 * data from bin/matchgen, whose resumes carry the student's hidden target
 * (`_truth`: a category and a city).  A posting is relevant to a student
 * when it is in the target category and inside the target city's
 * province, and the student qualifies for it.
 *
 * It loads the data straight into the match module (no daemon): every
 * record validated into its stored form as the daemon would store it,
 * most postings loaded before the lists are built, the rest fed one by
 * one as changes afterwards.  Then, for every eligible student (or a
 * sample), it compares the list with brute force, counts hard-filter
 * violations, and computes nDCG@10 and Recall@10 of the model and of a
 * naive baseline that ranks qualified postings by skill overlap alone.
 * It also reports the build time, the rate changes are absorbed at, the
 * cost of a list read, and resident memory.  Exit status 1 when any
 * violation or difference was found.  tests/eval/run builds and runs it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <msgpack.h>

#include "completeness.h"
#include "jsonmp.h"
#include "match.h"
#include "record.h"
#include "ref.h"
#include "score.h"

#define TOP 10

struct rec {
	char id[RECORD_ID_BYTES_MAX + 1];
	char *stored;
	size_t len;
};

struct post {
	struct rec r;
	char category[64];
	uint32_t city;
	int64_t posted_at, expires_at;
	bool closed, late;        /* late: fed as a change after the build */
};

struct student {
	struct rec r, resume;
	char truth_category[64];
	uint32_t truth_city;
	bool has_resume;
};

struct data {
	struct post *p;
	size_t np, cap_p;
	struct student *s;
	size_t ns, cap_s;
};

static struct ref *ref;
static struct completeness *comp;
static struct proto_limits limits;
static int64_t now;

static int64_t fixed_clock(void *ctx)
{
	(void)ctx;
	return now;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_mib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * sysconf(_SC_PAGESIZE) / (1 << 20);
}

/* The stored form of one JSON record, as record_validate packs it. */
static int to_stored(enum record_kind kind, json_t *obj, struct rec *out)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
	struct record_out ro;
	struct proto_error err;
	size_t off = 0;
	int rc = -EINVAL;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_unpacked_init(&u);
	record_out_init(&ro);
	if (jsonmp_pack(&pk, obj, JSONMP_DEPTH_MAX) == 0 &&
	    msgpack_unpack_next(&u, sb.data, sb.size, &off) ==
		    MSGPACK_UNPACK_SUCCESS &&
	    record_validate(kind, &u.data, ref, &limits, now, &ro, &err) == 0) {
		snprintf(out->id, sizeof(out->id), "%s", ro.id);
		out->stored = malloc(ro.stored.size);
		memcpy(out->stored, ro.stored.data, ro.stored.size);
		out->len = ro.stored.size;
		rc = 0;
	}
	record_out_destroy(&ro);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static const char *jstr(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

static struct student *student_find(struct data *d, const char *id)
{
	/* Resumes follow their students in the same order. */
	static size_t hint;

	for (size_t n = 0; n < d->ns; n++, hint++) {
		if (hint >= d->ns)
			hint = 0;
		if (!strcmp(d->s[hint].r.id, id))
			return &d->s[hint];
	}
	return NULL;
}

/* matchgen numbers postings in order, so a binary search finds them;
 * anything else falls back to a scan. */
static struct post *posting_find(struct data *d, const char *id)
{
	size_t lo = 0, hi = d->np;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(d->p[mid].r.id, id);

		if (c == 0)
			return &d->p[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = d->np; i-- > 0;) {
		if (!strcmp(d->p[i].r.id, id))
			return &d->p[i];
	}
	return NULL;
}

static void add_posting(struct data *d, json_t *obj)
{
	struct post p = { 0 };

	if (to_stored(RECORD_POSTING, obj, &p.r))
		return;
	snprintf(p.category, sizeof(p.category), "%s", jstr(obj, "category"));
	p.city = score_division_parse(jstr(obj, "city"),
				      strlen(jstr(obj, "city")));
	p.posted_at = json_integer_value(json_object_get(obj, "posted_at"));
	p.expires_at = json_integer_value(json_object_get(obj, "expires_at"));
	if (d->np == d->cap_p) {
		d->cap_p = d->cap_p ? d->cap_p * 2 : 1024;
		d->p = realloc(d->p, d->cap_p * sizeof(*d->p));
	}
	d->p[d->np++] = p;
}

static void close_posting(struct data *d, const char *id)
{
	struct post *p = posting_find(d, id);
	msgpack_sbuffer sb;
	bool was;

	if (!p)
		return;
	msgpack_sbuffer_init(&sb);
	if (record_posting_close(p->r.stored, p->r.len, &sb, &was) == 0) {
		free(p->r.stored);
		p->r.stored = malloc(sb.size);
		memcpy(p->r.stored, sb.data, sb.size);
		p->r.len = sb.size;
		p->closed = true;
	}
	msgpack_sbuffer_destroy(&sb);
}

static void add_student(struct data *d, json_t *obj)
{
	struct student s = { 0 };

	if (to_stored(RECORD_STUDENT, obj, &s.r))
		return;
	if (d->ns == d->cap_s) {
		d->cap_s = d->cap_s ? d->cap_s * 2 : 1024;
		d->s = realloc(d->s, d->cap_s * sizeof(*d->s));
	}
	d->s[d->ns++] = s;
}

static void add_resume(struct data *d, json_t *obj)
{
	struct student *s = student_find(d, jstr(obj, "student_id"));
	json_t *truth = json_object_get(obj, "_truth");

	if (!s || to_stored(RECORD_RESUME, obj, &s->resume))
		return;
	s->has_resume = true;
	snprintf(s->truth_category, sizeof(s->truth_category), "%s",
		 jstr(truth, "category"));
	s->truth_city = score_division_parse(jstr(truth, "city"),
					     strlen(jstr(truth, "city")));
}

static int read_data(const char *path, struct data *d)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		json_t *obj = json_loads(line, 0, NULL);
		const char *kind = jstr(obj, "kind");

		if (!strcmp(kind, "posting"))
			add_posting(d, obj);
		else if (!strcmp(kind, "posting.close"))
			close_posting(d, jstr(obj, "id"));
		else if (!strcmp(kind, "student"))
			add_student(d, obj);
		else if (!strcmp(kind, "resume"))
			add_resume(d, obj);
		json_decref(obj);
	}
	free(line);
	fclose(f);
	return 0;
}

static bool open_now(const struct post *p)
{
	return !p->closed && (!p->expires_at || now < p->expires_at);
}

/* ---- loading and timing ---- */

struct timing {
	double build_s, late_s, get_us;
	size_t late;
	uint64_t offers, reached;
	long rss_before, rss_after;
	unsigned threads;
};

static void load(struct match *m, struct data *d, size_t late)
{
	size_t open = 0;

	for (size_t i = d->np; i-- > 0 && late;) {
		if (open_now(&d->p[i])) {
			d->p[i].late = true;
			late--;
		}
	}
	for (size_t i = 0; i < d->np; i++) {
		if (!d->p[i].late)
			match_load_posting_terms(m, d->p[i].r.stored,
						 d->p[i].r.len);
	}
	for (size_t i = 0; i < d->np; i++) {
		if (!d->p[i].late)
			match_load_posting(m, d->p[i].r.stored, d->p[i].r.len);
		open += open_now(&d->p[i]);
	}
	for (size_t i = 0; i < d->ns; i++)
		match_load_student(m, d->s[i].r.stored, d->s[i].r.len);
	for (size_t i = 0; i < d->ns; i++) {
		if (d->s[i].has_resume)
			match_load_resume(m, d->s[i].resume.stored,
					  d->s[i].resume.len);
	}
	(void)open;
}

/* Feeds the held-back postings as changes, as the store would. */
static void feed_late(struct match *m, struct data *d, struct timing *t)
{
	double t0 = mono_s();
	size_t batch = 0;
	struct match_stats before, after;

	match_stats_get(m, &before);
	for (size_t i = 0; i < d->np; i++) {
		struct post *p = &d->p[i];

		if (!p->late)
			continue;
		match_on_posting(m, p->r.id, strlen(p->r.id), p->r.stored,
				 p->r.len);
		t->late++;
		if (++batch == 64) {
			match_drain(m);
			batch = 0;
		}
	}
	match_drain(m);
	t->late_s = mono_s() - t0;
	match_stats_get(m, &after);
	t->offers = after.offers - before.offers;
}

static void time_gets(struct match *m, struct data *d, struct timing *t)
{
	struct match_item items[20];
	struct match_answer ans;
	double t0 = mono_s();
	size_t n = 0;

	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < d->ns; i++, n++)
			match_get(m, d->s[i].r.id, strlen(d->s[i].r.id), 20, 0,
				  &ans, items);
	}
	t->get_us = n ? (mono_s() - t0) * 1e6 / (double)n : 0;
}

/* ---- quality ---- */

struct ranked {
	const struct post *p;
	float key;
};

static int cmp_ranked(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->key != y->key)
		return x->key > y->key ? -1 : 1;
	if (x->p->posted_at != y->p->posted_at)
		return x->p->posted_at > y->p->posted_at ? -1 : 1;
	return strcmp(x->p->r.id, y->p->r.id);
}

struct totals {
	size_t eligible, judged, no_relevant;
	double ndcg, recall, base_ndcg, base_recall;
	size_t closed_shown, unqualified_shown, list_differs;
	size_t candidates_checked, ineligible_candidates;
};

static bool relevant(const struct student *s, const struct post *p)
{
	return s->truth_city && !strcmp(p->category, s->truth_category) &&
	       p->city / 10000 == s->truth_city / 10000;
}

/* nDCG@10 and capped Recall@10 of a ranking, binary gains. */
static void judge(const struct student *s, const struct post *const *top,
		  size_t n, size_t relevant_total, double *ndcg,
		  double *recall)
{
	double dcg = 0, ideal = 0;
	size_t hits = 0, ideal_n = relevant_total < TOP ? relevant_total
							: TOP;

	for (size_t i = 0; i < n && i < TOP; i++) {
		if (relevant(s, top[i])) {
			dcg += 1 / log2((double)i + 2);
			hits++;
		}
	}
	for (size_t i = 0; i < ideal_n; i++)
		ideal += 1 / log2((double)i + 2);
	*ndcg = ideal > 0 ? dcg / ideal : 0;
	*recall = ideal_n ? (double)hits / (double)ideal_n : 0;
}

/* Every open posting the student qualifies for, scored both ways. */
static size_t brute(struct match *m, struct data *d,
		    const struct student *s, struct ranked *model,
		    struct ranked *base, size_t *relevant_total)
{
	struct score_explain ex;
	size_t n = 0;

	*relevant_total = 0;
	for (size_t i = 0; i < d->np; i++) {
		const struct post *p = &d->p[i];

		if (!open_now(p) ||
		    match_explain(m, s->r.id, strlen(s->r.id), p->r.id,
				  strlen(p->r.id), &ex) || ex.failed)
			continue;
		model[n] = (struct ranked){ p, ex.score };
		base[n] = (struct ranked){ p, ex.value[SCORE_SKILLS] };
		*relevant_total += relevant(s, p);
		n++;
	}
	qsort(model, n, sizeof(*model), cmp_ranked);
	qsort(base, n, sizeof(*base), cmp_ranked);
	return n;
}

/* The list's first ten against brute force, and every item's filters. */
static void check_list(struct match *m, struct data *d,
		       const struct student *s, const struct match_item *it,
		       uint32_t len, const struct ranked *model, size_t n,
		       struct totals *t)
{
	struct score_explain ex;

	if (len != (n < TOP ? n : TOP))
		t->list_differs++;
	for (uint32_t i = 0; i < len; i++) {
		const struct post *p = posting_find(d, it[i].posting_id);

		if (!p || !open_now(p))
			t->closed_shown++;
		else if (match_explain(m, s->r.id, strlen(s->r.id), p->r.id,
				       strlen(p->r.id), &ex) || ex.failed)
			t->unqualified_shown++;
		if (i < n && (strcmp(model[i].p->r.id, it[i].posting_id) ||
			      model[i].key != it[i].score)) {
			t->list_differs++;
			break;
		}
	}
}

static void evaluate_student(struct match *m, struct data *d,
			     const struct student *s, struct ranked *model,
			     struct ranked *base, struct totals *t)
{
	const struct post *top[TOP], *btop[TOP];
	struct match_item items[TOP];
	struct match_answer ans;
	size_t n, rel;
	double ndcg, recall;

	if (match_get_now(m, s->r.id, strlen(s->r.id), TOP, 0, false, &ans,
			  items) || ans.reason != MATCH_ELIGIBLE)
		return;
	t->eligible++;
	n = brute(m, d, s, model, base, &rel);
	check_list(m, d, s, items, ans.len, model, n, t);
	if (!rel) {
		t->no_relevant++;
		return;
	}
	for (uint32_t i = 0; i < ans.len; i++)
		top[i] = posting_find(d, items[i].posting_id);
	for (size_t i = 0; i < TOP && i < n; i++)
		btop[i] = base[i].p;
	t->judged++;
	judge(s, top, ans.len, rel, &ndcg, &recall);
	t->ndcg += ndcg;
	t->recall += recall;
	judge(s, btop, n < TOP ? n : TOP, rel, &ndcg, &recall);
	t->base_ndcg += ndcg;
	t->base_recall += recall;
}

/* Candidate lists hold eligible students only. */
static void check_candidates(struct match *m, struct data *d,
			     size_t stride, struct totals *t)
{
	struct match_candidate c[50];
	struct match_item items[1];
	struct match_answer ans;
	uint32_t len;

	for (size_t i = 0; i < d->np; i += stride) {
		const struct post *p = &d->p[i];

		if (!open_now(p) || match_candidates(m, p->r.id,
				strlen(p->r.id), 50, 0, c, &len))
			continue;
		for (uint32_t j = 0; j < len; j++, t->candidates_checked++) {
			if (match_get_now(m, c[j].student_id,
					  strlen(c[j].student_id), 1, 0,
					  false, &ans, items) ||
			    ans.reason != MATCH_ELIGIBLE)
				t->ineligible_candidates++;
		}
	}
}

/* ---- main ---- */

struct options {
	const char *path;
	size_t late, sample;
	unsigned threads;
};

static int parse(int argc, char **argv, struct options *o)
{
	o->path = NULL;
	o->late = 500;
	o->sample = 1;
	o->threads = 0;
	now = (int64_t)time(NULL);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--now") && i + 1 < argc)
			now = strtoll(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--late") && i + 1 < argc)
			o->late = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--sample") && i + 1 < argc)
			o->sample = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			o->threads = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (argv[i][0] != '-' && !o->path)
			o->path = argv[i];
		else
			return -1;
	}
	if (o->sample == 0)
		o->sample = 1;
	return o->path ? 0 : -1;
}

static void report(struct match *m, const struct data *d,
		   const struct timing *tm, const struct totals *t,
		   size_t sampled)
{
	struct match_stats st;
	double j = t->judged ? (double)t->judged : 1;
	size_t open = 0;

	for (size_t i = 0; i < d->np; i++)
		open += open_now(&d->p[i]);
	match_stats_get(m, &st);
	printf("data: %zu students (%llu eligible), %zu open postings of "
	       "%zu\n", d->ns, (unsigned long long)st.eligible, open, d->np);
	printf("build: %.2f s on %u threads; rss %ld -> %ld MiB\n",
	       tm->build_s, tm->threads, tm->rss_before, tm->rss_after);
	printf("changes: %zu postings in %.2f s (%.0f/s), %.0f pairs scored "
	       "each; match_get %.2f us\n", tm->late, tm->late_s,
	       tm->late_s > 0 ? (double)tm->late / tm->late_s : 0,
	       tm->late ? (double)tm->offers / (double)tm->late : 0,
	       tm->get_us);
	printf("judged: %zu of %zu sampled eligible students (%zu with no "
	       "relevant posting); %zu sampled in all\n", t->judged,
	       t->eligible, t->no_relevant, sampled);
	printf("model:    nDCG@10 %.3f  Recall@10 %.3f\n", t->ndcg / j,
	       t->recall / j);
	printf("baseline: nDCG@10 %.3f  Recall@10 %.3f  (skill overlap "
	       "only)\n", t->base_ndcg / j, t->base_recall / j);
	printf("violations: %zu closed or expired shown, %zu unqualified "
	       "shown, %zu lists differing from brute force, %zu ineligible "
	       "of %zu candidates\n", t->closed_shown, t->unqualified_shown,
	       t->list_differs, t->ineligible_candidates,
	       t->candidates_checked);
}

int main(int argc, char **argv)
{
	struct options o;
	struct data d = { 0 };
	struct match_config cfg;
	struct timing tm = { 0 };
	struct totals t = { 0 };
	struct ranked *model, *base;
	struct match *m;
	char err[256];
	size_t sampled = 0;

	if (parse(argc, argv, &o)) {
		fprintf(stderr, "usage: eval FILE.jsonl [--now UNIX] "
			"[--late N] [--sample N] [--threads N]\n");
		return 2;
	}
	if (ref_load(&ref, "data", err, sizeof(err)) ||
	    completeness_load(&comp, "data/completeness.tsv", err,
			      sizeof(err))) {
		fprintf(stderr, "eval: %s\n", err);
		return 2;
	}
	proto_limits_default(&limits);
	if (read_data(o.path, &d)) {
		fprintf(stderr, "eval: cannot read %s\n", o.path);
		return 2;
	}
	match_config_default(&cfg);
	cfg.clock = fixed_clock;
	cfg.rebuild_every_s = 0;
	cfg.build_threads = o.threads;
	if (match_new(&m, &cfg, ref, comp))
		return 2;
	load(m, &d, o.late);
	tm.rss_before = rss_mib();
	tm.threads = o.threads ? o.threads
			       : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	tm.build_s = mono_s();
	match_build(m);
	tm.build_s = mono_s() - tm.build_s;
	tm.rss_after = rss_mib();
	feed_late(m, &d, &tm);
	time_gets(m, &d, &tm);
	model = malloc((d.np + 1) * sizeof(*model));
	base = malloc((d.np + 1) * sizeof(*base));
	for (size_t i = 0; i < d.ns; i += o.sample, sampled++) {
		if (d.s[i].has_resume)
			evaluate_student(m, &d, &d.s[i], model, base, &t);
	}
	check_candidates(m, &d, o.sample * 7, &t);
	report(m, &d, &tm, &t, sampled);
	match_free(m);
	return t.closed_shown || t.unqualified_shown || t.list_differs ||
	       t.ineligible_candidates ? 1 : 0;
}
