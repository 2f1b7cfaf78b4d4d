/*
 * test_index: the posting index against a brute-force reference.
 *
 * Random postings over a small vocabulary of Chinese and ASCII words, in
 * divisions at every level, are put into the index and into a plain array;
 * random queries and filters must give the same totals and the same page
 * of ids from both, before and after re-puts and removes.  The reference
 * tokenises every field itself and scores with the formula of
 * docs/search.md.  Then fixed cases: division levels, one-character CJK
 * queries, mixed queries, closes, removes, ties, refused queries, the
 * bulk loader, and a list long enough for the search to skip blocks.
 */
#include "check.h"
#include "index.h"
#include "ref.h"
#include "text.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#define NOW 1000000
#define POSTS_MAX 14000
#define TERMS_MAX 512

static struct ref *ref;

/* ---- postings and their stored form ------------------------------------ */

struct post {
	char id[16];
	char title[128];
	char skills[4][32];
	int nskills;
	char desc[512];
	char city[7];
	const char *category;
	int edu;
	int64_t salary_min, salary_max; /* -1: absent */
	int64_t posted_at;
	int64_t expires_at;             /* -1: absent */
	bool closed;
	bool live;
	/* the reference's view: term -> weighted frequency, and length */
	uint64_t term[TERMS_MAX];
	uint32_t wtf[TERMS_MAX];
	int nterms;
	uint32_t dl;
};

static struct post posts[POSTS_MAX];
static int nposts;

static const char *const cjk_words[] = {
	"数据", "分析", "开发", "工程师", "销售", "市场", "人工智能", "财务",
	"会计", "设计", "测试", "运营", "管理", "师", "数",
};
static const char *const ascii_words[] = {
	"Java", "Python", "C++", "Excel", "Flink", "SQL", "Go", "node.js",
	"C#",
};
static const char *const cities[] = {
	"440000", "440100", "440106", "440113", "440300", "440305", "441900",
	"110000", "110101", "110105", "420000", "429000", "429004",
};
static const char *const categories[] = { "软件开发", "金融", "设计" };
static const char *const edu_names[] = { "专科", "本科", "硕士", "博士" };

static uint64_t rng = 7;

static uint32_t rnd(uint32_t n)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)((rng >> 33) % n);
}

static const char *word(void)
{
	uint32_t n = sizeof(cjk_words) / sizeof(cjk_words[0]);
	uint32_t m = sizeof(ascii_words) / sizeof(ascii_words[0]);
	uint32_t i = rnd(n + m);

	return i < n ? cjk_words[i] : ascii_words[i - n];
}

static void words(char *out, size_t size, int count, const char *sep)
{
	out[0] = '\0';
	for (int i = 0; i < count; i++) {
		if (i && rnd(2))
			strncat(out, sep, size - strlen(out) - 1);
		strncat(out, word(), size - strlen(out) - 1);
	}
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static void pack_stored(const struct post *p, msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	int n = 9 + (p->category != NULL) + (p->salary_min >= 0) +
		(p->salary_max >= 0) + (p->expires_at >= 0);

	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, (size_t)n);
	pack_str(&pk, "id");
	pack_str(&pk, p->id);
	pack_str(&pk, "company_id");
	pack_str(&pk, "C1");
	pack_str(&pk, "title");
	pack_str(&pk, p->title);
	if (p->category) {
		pack_str(&pk, "category");
		pack_str(&pk, p->category);
	}
	pack_str(&pk, "description");
	pack_str(&pk, p->desc);
	pack_str(&pk, "skills");
	msgpack_pack_array(&pk, (size_t)p->nskills);
	for (int i = 0; i < p->nskills; i++)
		pack_str(&pk, p->skills[i]);
	pack_str(&pk, "city");
	pack_str(&pk, p->city);
	pack_str(&pk, "education_min");
	pack_str(&pk, edu_names[p->edu]);
	if (p->salary_min >= 0) {
		pack_str(&pk, "salary_min");
		msgpack_pack_int64(&pk, p->salary_min);
	}
	if (p->salary_max >= 0) {
		pack_str(&pk, "salary_max");
		msgpack_pack_int64(&pk, p->salary_max);
	}
	pack_str(&pk, "posted_at");
	msgpack_pack_int64(&pk, p->posted_at);
	if (p->expires_at >= 0) {
		pack_str(&pk, "expires_at");
		msgpack_pack_int64(&pk, p->expires_at);
	}
	pack_str(&pk, "closed");
	if (p->closed)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
}

/* ---- the reference -------------------------------------------------------- */

struct ref_tok {
	struct post *p;
	uint32_t weight;
};

static int ref_on_token(void *ctx, uint64_t id, const char *t, size_t len,
			uint32_t pos)
{
	struct ref_tok *rt = ctx;
	struct post *p = rt->p;
	int i;

	(void)t;
	(void)len;
	(void)pos;
	p->dl += rt->weight;
	for (i = 0; i < p->nterms && p->term[i] != id; i++)
		;
	if (i == p->nterms) {
		if (p->nterms == TERMS_MAX)
			return 0;
		p->term[p->nterms] = id;
		p->wtf[p->nterms++] = 0;
	}
	p->wtf[i] += rt->weight;
	return 0;
}

static void ref_tokenize(struct post *p)
{
	struct ref_tok rt = { p, 3 };

	p->nterms = 0;
	p->dl = 0;
	text_tokenize(p->title, strlen(p->title), TEXT_INDEX, ref_on_token,
		      &rt);
	rt.weight = 2;
	for (int i = 0; i < p->nskills; i++)
		text_tokenize(p->skills[i], strlen(p->skills[i]), TEXT_INDEX,
			      ref_on_token, &rt);
	rt.weight = 1;
	text_tokenize(p->desc, strlen(p->desc), TEXT_INDEX, ref_on_token,
		      &rt);
	for (int i = 0; i < p->nterms; i++)
		p->wtf[i] = p->wtf[i] > 255 ? 255 : p->wtf[i];
}

static uint32_t ref_wtf(const struct post *p, uint64_t id)
{
	for (int i = 0; i < p->nterms; i++) {
		if (p->term[i] == id)
			return p->wtf[i];
	}
	return 0;
}

struct qterms {
	uint64_t id[64];
	int n;
};

static int q_on_token(void *ctx, uint64_t id, const char *t, size_t len,
		      uint32_t pos)
{
	struct qterms *q = ctx;

	(void)t;
	(void)len;
	(void)pos;
	for (int i = 0; i < q->n; i++) {
		if (q->id[i] == id)
			return 0;
	}
	if (q->n < 64)
		q->id[q->n++] = id;
	return 0;
}

static bool ref_passes(const struct post *p, const struct index_query *q)
{
	int64_t smax = p->salary_max >= 0 ? p->salary_max : p->salary_min;

	if (!p->live)
		return false;
	if (q->open_only && (p->closed || (p->expires_at >= 0 &&
					   p->expires_at <= q->now)))
		return false;
	if (q->city && !ref_division_inside(ref, p->city, q->city))
		return false;
	if (q->category && (!p->category ||
			    strlen(p->category) != q->category_len ||
			    memcmp(p->category, q->category, q->category_len)))
		return false;
	if (q->education != INDEX_EDU_ANY && p->edu > (int)q->education)
		return false;
	return q->salary_min < 0 || (smax >= 0 && smax >= q->salary_min);
}

struct scored {
	const struct post *p;
	double score;
};

static int scored_cmp(const void *a, const void *b)
{
	const struct scored *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->p->posted_at != y->p->posted_at)
		return x->p->posted_at > y->p->posted_at ? -1 : 1;
	return strcmp(x->p->id, y->p->id);
}

static struct scored ranked[POSTS_MAX];

/* Fills ranked with the matches in order; returns their count. */
static int ref_search(const struct index_query *q, double *norm)
{
	struct qterms qt = { .n = 0 };
	uint32_t df[64] = { 0 };
	double idf[64], avgdl, total_dl = 0;
	int live = 0, n = 0;

	if (q->q)
		text_tokenize(q->q, q->q_len, TEXT_QUERY, q_on_token, &qt);
	for (int i = 0; i < nposts; i++) {
		if (!posts[i].live)
			continue;
		live++;
		total_dl += posts[i].dl;
		for (int t = 0; t < qt.n; t++)
			df[t] += ref_wtf(&posts[i], qt.id[t]) > 0;
	}
	avgdl = live ? total_dl / live : 1.0;
	*norm = 0;
	for (int t = 0; t < qt.n; t++) {
		idf[t] = log(1.0 + ((double)live - df[t] + 0.5) /
			     ((double)df[t] + 0.5));
		*norm += idf[t] * (1.2 + 1.0);
	}
	for (int i = 0; i < nposts; i++) {
		const struct post *p = &posts[i];
		double kd = 1.2 * (1.0 - 0.75 + 0.75 * (double)p->dl / avgdl);
		double s = 0;
		int t;

		if (!ref_passes(p, q))
			continue;
		for (t = 0; t < qt.n; t++) {
			uint32_t w = ref_wtf(p, qt.id[t]);

			if (!w)
				break;
			s += idf[t] * ((double)w * (1.2 + 1.0)) /
			     ((double)w + kd);
		}
		if (t < qt.n)
			continue;
		ranked[n].p = p;
		ranked[n++].score = qt.n ? s : 0;
	}
	qsort(ranked, (size_t)n, sizeof(ranked[0]), scored_cmp);
	return n;
}

/* ---- driving both ----------------------------------------------------------- */

static msgpack_sbuffer sb;

static void random_post(struct post *p, int i)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "P%05d", i);
	words(p->title, sizeof(p->title), 1 + (int)rnd(3), " ");
	p->nskills = (int)rnd(4);
	for (int k = 0; k < p->nskills; k++)
		snprintf(p->skills[k], sizeof(p->skills[k]), "%s", word());
	words(p->desc, sizeof(p->desc), (int)rnd(12), "，");
	snprintf(p->city, sizeof(p->city), "%s",
		 cities[rnd(sizeof(cities) / sizeof(cities[0]))]);
	p->category = rnd(4) ? categories[rnd(3)] : NULL;
	p->edu = (int)rnd(4);
	p->salary_min = rnd(3) ? 3000 + 1000 * (int64_t)rnd(10) : -1;
	p->salary_max = rnd(3) ? 13000 + 1000 * (int64_t)rnd(10) : -1;
	p->posted_at = NOW - 1000 * (int64_t)rnd(50);
	p->expires_at = rnd(4) ? NOW - 50000 + 1000 * (int64_t)rnd(200) : -1;
	p->closed = rnd(10) == 0;
	p->live = true;
	ref_tokenize(p);
}

static void put(struct index *idx, struct post *p)
{
	pack_stored(p, &sb);
	CHECK_EQ_INT(index_put(idx, sb.data, sb.size), 0);
	p->live = true;
}

static void random_query(struct index_query *q, char *text, size_t size)
{
	static const char *const fixed[] = {
		"C++开发工程师", "Excel 人工智能 Flink", "师", "数", "据",
		"ｊａｖａ", "node.js 数据分析", "",
	};

	memset(q, 0, sizeof(*q));
	if (rnd(3) == 0)
		snprintf(text, size, "%s",
			 fixed[rnd(sizeof(fixed) / sizeof(fixed[0]))]);
	else
		words(text, size, (int)rnd(4), " ");
	q->q = text;
	q->q_len = strlen(text);
	q->city = rnd(2) ? NULL : cities[rnd(sizeof(cities) /
					       sizeof(cities[0]))];
	if (rnd(4) == 0) {
		q->category = categories[rnd(3)];
		q->category_len = strlen(q->category);
	}
	q->education = rnd(3) ? INDEX_EDU_ANY : (enum index_education)rnd(4);
	q->salary_min = rnd(3) ? -1 : 10000 + 5000 * (int64_t)rnd(3);
	q->open_only = rnd(4) != 0;
	q->now = NOW;
	q->k = 1 + rnd(20);
	q->offset = rnd(3) ? 0 : rnd(30);
}

/* Runs q on both; returns false on a difference, after reporting it. */
static bool same(struct index *idx, const struct index_query *q)
{
	struct index_hit hits[INDEX_K_MAX];
	struct index_result res;
	double norm;
	int n = ref_search(q, &norm);
	int want = n - (int)q->offset;
	bool ok = true;

	want = want < 0 ? 0 : want > (int)q->k ? (int)q->k : want;
	CHECK_EQ_INT(index_search(idx, q, hits, &res), 0);
	CHECK(res.total_exact);
	ok &= res.total == (uint64_t)n && res.hits_len == (uint32_t)want;
	for (int i = 0; ok && i < want; i++) {
		const struct scored *r = &ranked[q->offset + (uint32_t)i];
		double score = norm > 0 ? r->score / norm : 0;

		ok &= strcmp(hits[i].id, r->p->id) == 0;
		ok &= fabs(hits[i].score - score) < 1e-12;
		ok &= hits[i].score >= 0 && hits[i].score <= 1;
	}
	if (!ok)
		fprintf(stderr, "query \"%s\" city %s: index %llu/%u, "
			"reference %d/%d\n", q->q, q->city ? q->city : "-",
			(unsigned long long)res.total, res.hits_len, n, want);
	return ok;
}

static void test_random(void)
{
	struct index *idx;
	int bad = 0;

	CHECK_EQ_INT(index_new(&idx, ref), 0);
	nposts = 1500;
	for (int i = 0; i < nposts; i++) {
		random_post(&posts[i], i);
		put(idx, &posts[i]);
	}
	for (int round = 0; round < 4; round++) {
		for (int n = 0; n < 400; n++) {
			struct index_query q;
			char text[256];

			random_query(&q, text, sizeof(text));
			bad += !same(idx, &q);
		}
		/* Re-put a third with new content, remove a sixth, and
		 * bring back some removed ones (their numbers are reused, so
		 * they land inside lists, not at their ends). */
		for (int i = 0; i < nposts; i++) {
			uint32_t r = rnd(6);

			if (r < 2 && posts[i].live) {
				random_post(&posts[i], i);
				put(idx, &posts[i]);
			} else if (r == 2 && posts[i].live) {
				CHECK_EQ_INT(index_remove(idx, posts[i].id,
							  strlen(posts[i].id)),
					     0);
				posts[i].live = false;
			} else if (r == 3 && !posts[i].live) {
				random_post(&posts[i], i);
				put(idx, &posts[i]);
			}
		}
	}
	CHECK_EQ_INT(bad, 0);
	index_free(idx);
}

/* ---- fixed cases --------------------------------------------------------------- */

static struct post *fixed_post(int i, const char *title, const char *skill,
			       const char *desc, const char *city)
{
	struct post *p = &posts[i];

	memset(p, 0, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "F%02d", i);
	snprintf(p->title, sizeof(p->title), "%s", title);
	if (skill) {
		snprintf(p->skills[0], sizeof(p->skills[0]), "%s", skill);
		p->nskills = 1;
	}
	snprintf(p->desc, sizeof(p->desc), "%s", desc);
	snprintf(p->city, sizeof(p->city), "%s", city);
	p->salary_min = p->salary_max = p->expires_at = -1;
	p->posted_at = NOW - i;
	p->live = true;
	ref_tokenize(p);
	return p;
}

static uint64_t count(struct index *idx, const char *text, const char *city,
		      bool open_only, char *first)
{
	struct index_query q = {
		.q = text, .q_len = text ? strlen(text) : 0, .city = city,
		.education = INDEX_EDU_ANY, .salary_min = -1,
		.open_only = open_only, .now = NOW, .k = 10,
	};
	struct index_hit hits[10];
	struct index_result res;

	CHECK_EQ_INT(index_search(idx, &q, hits, &res), 0);
	if (first)
		snprintf(first, 16, "%.15s", res.hits_len ? hits[0].id : "");
	return res.total;
}

static void test_fixed(void)
{
	struct index *idx;
	char first[16];

	CHECK_EQ_INT(index_new(&idx, ref), 0);
	nposts = 4;
	put(idx, fixed_post(0, "C++ 后端开发工程师", "Linux", "高并发服务",
			    "440106"));
	put(idx, fixed_post(1, "数据分析师", "Excel", "人工智能 Flink 平台",
			    "440100"));
	put(idx, fixed_post(2, "销售代表", NULL, "开拓市场", "440000"));
	put(idx, fixed_post(3, "会计", "Excel", "财务", "441900"));
	/* Divisions at every level. */
	CHECK_EQ_INT(count(idx, NULL, "440106", true, NULL), 1);
	CHECK_EQ_INT(count(idx, NULL, "440100", true, NULL), 2);
	CHECK_EQ_INT(count(idx, NULL, "440000", true, NULL), 4);
	CHECK_EQ_INT(count(idx, NULL, "440113", true, NULL), 0);
	CHECK_EQ_INT(count(idx, NULL, "441900", true, NULL), 1);
	CHECK_EQ_INT(count(idx, NULL, "110000", true, NULL), 0);
	/* Mixed and one-character queries. */
	CHECK_EQ_INT(count(idx, "C++开发工程师", NULL, true, first), 1);
	CHECK_EQ_STR(first, "F00");
	CHECK_EQ_INT(count(idx, "Excel 人工智能 Flink", NULL, true, first), 1);
	CHECK_EQ_STR(first, "F01");
	CHECK_EQ_INT(count(idx, "ＥＸＣＥＬ", NULL, true, NULL), 2);
	CHECK_EQ_INT(count(idx, "师", NULL, true, NULL), 2);
	CHECK_EQ_INT(count(idx, "市", NULL, true, NULL), 1);
	CHECK_EQ_INT(count(idx, "Excel 师", NULL, true, first), 1);
	CHECK_EQ_STR(first, "F01");
	CHECK_EQ_INT(count(idx, "无此词", NULL, true, NULL), 0);
	/* A query without tokens browses, newest first. */
	CHECK_EQ_INT(count(idx, "！！", NULL, true, first), 4);
	CHECK_EQ_STR(first, "F00");
	/* Closing and re-putting in place. */
	posts[1].closed = true;
	put(idx, &posts[1]);
	CHECK_EQ_INT(count(idx, "Excel", NULL, true, first), 1);
	CHECK_EQ_STR(first, "F03");
	CHECK_EQ_INT(count(idx, "Excel", NULL, false, NULL), 2);
	fixed_post(3, "出纳", NULL, "现金", "441900");
	put(idx, &posts[3]);
	CHECK_EQ_INT(count(idx, "Excel", NULL, false, NULL), 1);
	CHECK_EQ_INT(count(idx, "出纳", NULL, true, NULL), 1);
	/* Removes. */
	CHECK_EQ_INT(index_remove(idx, "F03", 3), 0);
	CHECK_EQ_INT(index_remove(idx, "F03", 3), -ENOENT);
	CHECK(!index_contains(idx, "F03", 3));
	CHECK(index_contains(idx, "F00", 3));
	CHECK_EQ_INT(count(idx, "出纳", NULL, true, NULL), 0);
	CHECK_EQ_INT(count(idx, NULL, "441900", false, NULL), 0);
	index_free(idx);
}

static void test_ties_and_refusals(void)
{
	struct index_query q = {
		.q = "销售", .q_len = strlen("销售"), .education = INDEX_EDU_ANY,
		.salary_min = -1, .open_only = true, .now = NOW, .k = 10,
	};
	struct index_hit hits[10];
	struct index_result res;
	struct index *idx;
	char many[512] = "";

	CHECK_EQ_INT(index_new(&idx, ref), 0);
	nposts = 3;
	put(idx, fixed_post(0, "销售", NULL, "", "440106"));
	put(idx, fixed_post(1, "销售", NULL, "", "440106"));
	put(idx, fixed_post(2, "销售", NULL, "", "440106"));
	posts[0].posted_at = posts[2].posted_at = NOW;
	put(idx, &posts[0]);
	put(idx, &posts[2]);
	CHECK_EQ_INT(index_search(idx, &q, hits, &res), 0);
	CHECK_EQ_INT(res.hits_len, 3);
	CHECK_EQ_STR(hits[0].id, "F00");
	CHECK_EQ_STR(hits[1].id, "F02");
	CHECK_EQ_STR(hits[2].id, "F01");
	CHECK(hits[0].score == hits[2].score);
	q.k = 0;
	CHECK_EQ_INT(index_search(idx, &q, hits, &res), -EINVAL);
	q.k = INDEX_K_MAX + 1;
	CHECK_EQ_INT(index_search(idx, &q, hits, &res), -EINVAL);
	q.k = 10;
	q.offset = INDEX_OFFSET_MAX + 1;
	CHECK_EQ_INT(index_search(idx, &q, hits, &res), -EINVAL);
	q.offset = 0;
	q.city = "449999";
	CHECK_EQ_INT(index_search(idx, &q, hits, &res), -EINVAL);
	q.city = NULL;
	for (int i = 0; i < INDEX_QUERY_TERMS_MAX + 1; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 "w%d ", i);
	q.q = many;
	q.q_len = strlen(many);
	CHECK_EQ_INT(index_search(idx, &q, hits, &res), -E2BIG);
	CHECK_EQ_INT(index_put(idx, "\x91\x01", 2), -EINVAL);
	CHECK_EQ_INT(index_put(idx, "\x80", 1), -EINVAL);
	index_free(idx);
}

/* The bulk loader gives what index_put gives. */
static void test_load(void)
{
	struct index *a, *b;
	struct index_loader *l;
	uint64_t invalid = 9;
	int bad = 0;

	CHECK_EQ_INT(index_new(&a, ref), 0);
	CHECK_EQ_INT(index_new(&b, ref), 0);
	nposts = 700;
	CHECK_EQ_INT(index_load_begin(b, &l), 0);
	for (int i = 0; i < nposts; i++) {
		random_post(&posts[i], i);
		pack_stored(&posts[i], &sb);
		CHECK_EQ_INT(index_put(a, sb.data, sb.size), 0);
		CHECK_EQ_INT(index_load_add(l, sb.data, sb.size), 0);
	}
	CHECK_EQ_INT(index_load_add(l, "\x80", 1), 0);
	CHECK_EQ_INT(index_load_end(l, &invalid), 0);
	CHECK_EQ_INT(invalid, 1);
	for (int n = 0; n < 200; n++) {
		struct index_query q;
		char text[256];

		random_query(&q, text, sizeof(text));
		bad += !same(a, &q) || !same(b, &q);
	}
	CHECK_EQ_INT(bad, 0);
	index_free(a);
	index_free(b);
}

/*
 * Over INDEX_EXACT_LEAD_MAX postings share every term, so the search may
 * skip blocks: the page must still be the reference's, and the total,
 * when estimated, close to the truth.
 */
static void test_long_lists(void)
{
	struct index_hit hits[INDEX_K_MAX];
	struct index_result res;
	struct index *idx;
	const char *texts[] = { "数据 分析", "工程师", "Python" };
	int bad = 0;

	CHECK_EQ_INT(index_new(&idx, ref), 0);
	nposts = INDEX_EXACT_LEAD_MAX + 2000;
	for (int i = 0; i < nposts; i++) {
		struct post *p = &posts[i];

		random_post(p, i);
		snprintf(p->title, sizeof(p->title), "数据分析工程师 Python");
		ref_tokenize(p);
		put(idx, p);
	}
	for (int i = 0; i < 30; i++) {
		struct index_query q = {
			.q = texts[i % 3], .q_len = strlen(texts[i % 3]),
			.education = INDEX_EDU_ANY, .salary_min = -1,
			.open_only = i % 2, .now = NOW, .k = 1 + rnd(20),
		};
		double norm;
		int n = ref_search(&q, &norm);

		CHECK_EQ_INT(index_search(idx, &q, hits, &res), 0);
		for (uint32_t h = 0; h < res.hits_len; h++)
			bad += strcmp(hits[h].id, ranked[h].p->id) != 0;
		bad += res.hits_len != (n < (int)q.k ? (uint32_t)n : q.k);
		if (res.total_exact)
			bad += res.total != (uint64_t)n;
		else
			bad += fabs((double)res.total - n) > 0.2 * n;
	}
	CHECK_EQ_INT(bad, 0);
	index_free(idx);
}

int main(void)
{
	char err[256];

	if (ref_load(&ref, "data", err, sizeof(err))) {
		fprintf(stderr, "ref_load: %s\n", err);
		return 1;
	}
	msgpack_sbuffer_init(&sb);
	test_fixed();
	test_ties_and_refusals();
	test_random();
	test_load();
	test_long_lists();
	msgpack_sbuffer_destroy(&sb);
	ref_free(ref);
	return check_exit("test_index");
}
