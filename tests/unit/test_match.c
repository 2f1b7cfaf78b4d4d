/*
 * test_match: the fresh lists against brute force.  Random students,
 * resumes and postings go through the same path as in the daemon (request
 * maps validated by record into stored forms, then match_on_*), followed
 * by random changes: re-puts, closes, deletes, expiries by the clock,
 * resume and student changes.  After each batch every student's list must
 * equal the top k computed pair by pair with the model, every reason must
 * be the first that applies, and candidate lists must rank exactly the
 * eligible students.  Also: the queue-full path (drop, reload, right
 * again), jobs, and the match thread itself.  The clock is the test's.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "check.h"
#include "completeness.h"
#include "match.h"
#include "record.h"
#include "ref.h"
#include "score.h"

#define STUDENTS 48
#define POSTINGS 70
#define K 5
#define RESERVE 2
#define NICE 7
#ifndef ROUNDS
#define ROUNDS 150
#endif

/* 2026-06-15, so the active cohorts are 2025-2027. */
static int64_t fake_now = 1781500000;

static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return fake_now;
}

#ifndef TEST_SEED
#define TEST_SEED 88172645463325252u
#endif
static uint64_t rng_state = TEST_SEED;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static const char *const categories[] = {
	"软件开发", "数据分析", "金融", "设计", "行政/文秘",
};
static const char *const skills[] = {
	"C", "C++", "Python", "Java", "Linux", "MySQL", "Excel", "Photoshop",
	"财务分析", "UI设计",
};
static const char *const cities[] = {
	"440106", "440113", "440100", "440300", "440304", "440600", "441900",
	"110105", "650102", "440000",
};
static const char *const origins[] = {
	"440106", "440113", "440304", "441900", "110105", "650102",
};
static const char *const student_majors[] = {
	"080901", "080902", "020301K", "120203K", "081001",
};
static const char *const words[] = {
	"后端开发", "数据分析", "系统设计", "财务报表", "用户增长", "服务器",
	"python", "java", "linux", "算法", "视觉设计", "运营活动", "审计",
};
static const char *const educations[] = { "专科", "本科", "硕士", "博士" };
static const char *const politicals[] = {
	"群众", "共青团员", "中共党员", "中共预备党员",
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct ref *ref;
static struct completeness *comp;
static struct proto_limits limits;

/* What the test knows is stored, as stored bytes. */
struct blob {
	char *data;
	size_t len;
};

static struct blob students[STUDENTS], resumes[STUDENTS], postings[POSTINGS];
static bool posting_closed[POSTINGS];
static int64_t posted_at[POSTINGS];

static char *student_id(int i, char buf[16])
{
	snprintf(buf, 16, "S%04d", i);
	return buf;
}

static char *posting_id(int i, char buf[16])
{
	snprintf(buf, 16, "P%04d", i);
	return buf;
}

static void pk_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static void pk_key_str(msgpack_packer *pk, const char *k, const char *v)
{
	pk_str(pk, k);
	pk_str(pk, v);
}

static void pk_key_int(msgpack_packer *pk, const char *k, int64_t v)
{
	pk_str(pk, k);
	msgpack_pack_int64(pk, v);
}

/* Packs n distinct picks of pool under key. */
static void pk_picks(msgpack_packer *pk, const char *k,
		     const char *const *pool, uint32_t pool_len, uint32_t n)
{
	uint32_t first = rnd(pool_len);

	pk_str(pk, k);
	msgpack_pack_array(pk, n);
	for (uint32_t i = 0; i < n; i++)
		pk_str(pk, pool[(first + i) % pool_len]);
}

static void pk_text(msgpack_packer *pk, const char *k, uint32_t n)
{
	char buf[512] = "";

	for (uint32_t i = 0; i < n; i++) {
		strcat(buf, words[rnd(N(words))]);
		strcat(buf, i % 2 ? "，" : " ");
	}
	pk_key_str(pk, k, buf);
}

/* Validates a packed request map into its stored form. */
static void store_form(enum record_kind kind, msgpack_sbuffer *req,
		       struct blob *out)
{
	msgpack_unpacked u;
	struct record_out rec;
	struct proto_error err;
	size_t off = 0;

	msgpack_unpacked_init(&u);
	record_out_init(&rec);
	CHECK(msgpack_unpack_next(&u, req->data, req->size, &off) ==
	      MSGPACK_UNPACK_SUCCESS);
	if (record_validate(kind, &u.data, ref, &limits, fake_now, &rec,
			    &err)) {
		fprintf(stderr, "record: %s: %s\n", err.field, err.message);
		CHECK(0);
	}
	free(out->data);
	out->data = malloc(rec.stored.size);
	memcpy(out->data, rec.stored.data, rec.stored.size);
	out->len = rec.stored.size;
	record_out_destroy(&rec);
	msgpack_unpacked_destroy(&u);
}

static void make_student(int i, bool bound, int grad_year)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char id[16];
	bool directed = rnd(10) == 0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 9 + directed);
	pk_key_str(&pk, "id", student_id(i, id));
	pk_key_str(&pk, "education", educations[rnd(N(educations))]);
	pk_key_str(&pk, "major_code", student_majors[rnd(N(student_majors))]);
	pk_key_str(&pk, "major", "专业");
	pk_key_str(&pk, "school", "某大学");
	pk_key_int(&pk, "grad_year", grad_year);
	pk_key_str(&pk, "origin", origins[rnd(N(origins))]);
	pk_key_str(&pk, "political", politicals[rnd(N(politicals))]);
	pk_str(&pk, "bound");
	bound ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
	if (directed)
		pk_key_str(&pk, "directed_region", "440000");
	store_form(RECORD_STUDENT, &sb, &students[i]);
	msgpack_sbuffer_destroy(&sb);
}

/* A resume whose completeness depends on the dice: some stay below 60. */
static void make_resume(int i)
{
	bool intro = rnd(4) != 0, exp = rnd(3) != 0, salary = rnd(2) != 0;
	uint32_t nsk = rnd(5), ncat = rnd(3), ncity = rnd(3);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char id[16];
	uint32_t lo = 4000 + rnd(8) * 1000;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6 + intro + exp + 2 * salary);
	pk_key_str(&pk, "student_id", student_id(i, id));
	pk_str(&pk, "has_photo");
	rnd(2) ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
	if (intro)
		pk_text(&pk, "intro", 1 + rnd(6));
	pk_picks(&pk, "skills", skills, N(skills), nsk);
	pk_picks(&pk, "desired_categories", categories, N(categories), ncat);
	pk_picks(&pk, "desired_cities", cities, N(cities), ncity);
	if (salary) {
		pk_key_int(&pk, "salary_min", lo);
		pk_key_int(&pk, "salary_max", lo + rnd(5) * 1000);
	}
	if (exp) {
		pk_str(&pk, "experiences");
		msgpack_pack_array(&pk, 1);
		msgpack_pack_map(&pk, 3);
		pk_key_str(&pk, "kind", "internship");
		pk_text(&pk, "title", 1);
		pk_text(&pk, "desc", 2 + rnd(4));
	}
	pk_picks(&pk, "certificates", skills, N(skills), rnd(2));
	store_form(RECORD_RESUME, &sb, &resumes[i]);
	msgpack_sbuffer_destroy(&sb);
}

static void pk_majors(msgpack_packer *pk)
{
	static const char *const sets[][2] = {
		{ NULL, NULL }, { "0809", NULL }, { "08", NULL },
		{ "080901", NULL }, { "02", "12" },
	};
	uint32_t s = rnd(N(sets));
	uint32_t n = (sets[s][0] != NULL) + (sets[s][1] != NULL);

	pk_str(pk, "majors");
	msgpack_pack_array(pk, n);
	for (uint32_t i = 0; i < n; i++)
		pk_str(pk, sets[s][i]);
}

static void make_posting(int i)
{
	bool expires = rnd(5) != 0, party = rnd(10) == 0;
	uint32_t cohorts = rnd(4);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char id[16];

	if (!postings[i].data)
		posted_at[i] = fake_now - (int64_t)rnd(30 * 86400);
	posting_closed[i] = false;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 13 + expires + party);
	pk_key_str(&pk, "id", posting_id(i, id));
	pk_key_str(&pk, "company_id", "C1");
	pk_text(&pk, "title", 1);
	pk_key_str(&pk, "category", categories[rnd(N(categories))]);
	pk_text(&pk, "description", 2 + rnd(8));
	pk_picks(&pk, "skills", skills, N(skills), rnd(5));
	pk_key_str(&pk, "city", cities[rnd(N(cities))]);
	pk_key_str(&pk, "education_min", educations[rnd(3)]);
	pk_majors(&pk);
	pk_str(&pk, "cohorts");
	msgpack_pack_array(&pk, cohorts == 3 ? 2 : cohorts == 2);
	if (cohorts >= 2)
		msgpack_pack_int(&pk, 2026);
	if (cohorts == 3)
		msgpack_pack_int(&pk, 2025);
	pk_key_int(&pk, "salary_min", 3000 + rnd(6) * 1000);
	pk_key_int(&pk, "salary_max", 10000 + rnd(8) * 1000);
	pk_key_int(&pk, "posted_at", posted_at[i]);
	if (expires)
		pk_key_int(&pk, "expires_at",
			   fake_now + 3600 + (int64_t)rnd(20 * 86400));
	if (party)
		pk_key_str(&pk, "political", "中共党员");
	store_form(RECORD_POSTING, &sb, &postings[i]);
	msgpack_sbuffer_destroy(&sb);
}

/* ---- pushing changes ---- */

static struct match *m;

static void put_student(int i, bool bound, int year)
{
	char id[16];

	make_student(i, bound, year);
	student_id(i, id);
	CHECK_EQ_INT(match_on_student(m, id, strlen(id), students[i].data,
				      students[i].len), 0);
}

static void put_resume(int i)
{
	char id[16];

	make_resume(i);
	student_id(i, id);
	CHECK_EQ_INT(match_on_resume(m, id, strlen(id), resumes[i].data,
				     resumes[i].len), 0);
}

static void drop(struct blob *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

static void delete_resume(int i)
{
	char id[16];

	drop(&resumes[i]);
	student_id(i, id);
	CHECK_EQ_INT(match_on_resume(m, id, strlen(id), NULL, 0), 0);
}

static void delete_student(int i)
{
	char id[16];

	drop(&students[i]);
	drop(&resumes[i]);
	student_id(i, id);
	CHECK_EQ_INT(match_on_student(m, id, strlen(id), NULL, 0), 0);
}

static void put_posting(int i)
{
	char id[16];

	make_posting(i);
	posting_id(i, id);
	CHECK_EQ_INT(match_on_posting(m, id, strlen(id), postings[i].data,
				      postings[i].len), 0);
}

static void close_posting(int i)
{
	msgpack_sbuffer sb;
	bool was;
	char id[16];

	msgpack_sbuffer_init(&sb);
	CHECK_EQ_INT(record_posting_close(postings[i].data, postings[i].len,
					  &sb, &was), 0);
	free(postings[i].data);
	postings[i].data = malloc(sb.size);
	memcpy(postings[i].data, sb.data, sb.size);
	postings[i].len = sb.size;
	msgpack_sbuffer_destroy(&sb);
	posting_closed[i] = true;
	posting_id(i, id);
	CHECK_EQ_INT(match_on_posting(m, id, strlen(id), postings[i].data,
				      postings[i].len), 0);
}

static void delete_posting(int i)
{
	char id[16];

	drop(&postings[i]);
	posting_id(i, id);
	CHECK_EQ_INT(match_on_posting(m, id, strlen(id), NULL, 0), 0);
}

/* ---- what the lists must be ---- */

static bool unpack_field(const struct blob *b, const char *key,
			 int64_t *v)
{
	msgpack_unpacked u;
	size_t off = 0;
	bool found = false;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, b->data, b->len, &off) ==
	    MSGPACK_UNPACK_SUCCESS) {
		for (uint32_t i = 0; i < u.data.via.map.size; i++) {
			msgpack_object_kv *kv = &u.data.via.map.ptr[i];

			if (kv->key.via.str.size == strlen(key) &&
			    !memcmp(kv->key.via.str.ptr, key, strlen(key))) {
				found = true;
				if (kv->val.type == MSGPACK_OBJECT_BOOLEAN)
					*v = kv->val.via.boolean;
				else
					*v = kv->val.via.i64;
			}
		}
	}
	msgpack_unpacked_destroy(&u);
	return found;
}

static bool posting_is_open(int i)
{
	int64_t exp = 0;

	if (!postings[i].data || posting_closed[i])
		return false;
	return !unpack_field(&postings[i], "expires_at", &exp) ||
	       fake_now < exp;
}

static unsigned expected_percent(int i)
{
	struct completeness_result cr;
	msgpack_unpacked r, s;
	size_t off = 0;

	msgpack_unpacked_init(&r);
	msgpack_unpacked_init(&s);
	msgpack_unpack_next(&s, students[i].data, students[i].len, &off);
	off = 0;
	msgpack_unpack_next(&r, resumes[i].data, resumes[i].len, &off);
	completeness_eval(comp, &r.data, &s.data, &cr);
	msgpack_unpacked_destroy(&r);
	msgpack_unpacked_destroy(&s);
	return cr.percent;
}

static enum match_reason expected_reason(int i)
{
	int64_t bound = 0, year = 0;

	unpack_field(&students[i], "bound", &bound);
	unpack_field(&students[i], "grad_year", &year);
	if (!bound)
		return MATCH_NOT_BOUND;
	if (year < 2025 || year > 2027)
		return MATCH_COHORT_INACTIVE;
	if (!resumes[i].data)
		return MATCH_NO_RESUME;
	if (expected_percent(i) < 60)
		return MATCH_RESUME_INCOMPLETE;
	return MATCH_ELIGIBLE;
}

struct ranked {
	int index;
	float score;
};

static int cmp_postings(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	char ix[16], iy[16];

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (posted_at[x->index] != posted_at[y->index])
		return posted_at[x->index] > posted_at[y->index] ? -1 : 1;
	return strcmp(posting_id(x->index, ix), posting_id(y->index, iy));
}

/* Every open posting the student qualifies for, best first. */
static int brute_list(int s, struct ranked *out)
{
	char sid[16], pid[16];
	struct score_explain ex;
	int n = 0;

	student_id(s, sid);
	for (int p = 0; p < POSTINGS; p++) {
		if (!posting_is_open(p))
			continue;
		posting_id(p, pid);
		if (match_explain(m, sid, strlen(sid), pid, strlen(pid),
				  &ex) != 0) {
			fprintf(stderr, "explain %s %s failed\n", sid, pid);
			CHECK(0);
			continue;
		}
		if (!ex.failed)
			out[n++] = (struct ranked){ p, ex.score };
	}
	qsort(out, (size_t)n, sizeof(*out), cmp_postings);
	return n;
}

/* Shows both lists when they differ. */
static void show_lists(const char *sid, const struct match_item *items,
		       uint32_t len, const struct ranked *want, int n)
{
	char pid[16];

	fprintf(stderr, "student %s at %lld: got", sid, (long long)fake_now);
	for (uint32_t i = 0; i < len; i++)
		fprintf(stderr, " %s:%.6f", items[i].posting_id,
			(double)items[i].score);
	fprintf(stderr, "\n  want");
	for (int i = 0; i < n && i < K + 2; i++)
		fprintf(stderr, " %s:%.6f", posting_id(want[i].index, pid),
			(double)want[i].score);
	fprintf(stderr, "\n");
}

static void check_student(int s)
{
	struct match_item items[K];
	struct match_answer ans;
	struct ranked want[POSTINGS];
	enum match_reason reason = expected_reason(s);
	char sid[16], pid[16];
	int rc, n;

	student_id(s, sid);
	rc = match_get(m, sid, strlen(sid), K, 0, &ans, items);
	if (rc == -EAGAIN)
		rc = match_get_now(m, sid, strlen(sid), K, 0, false, &ans,
				   items);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(ans.reason, reason);
	if (reason != MATCH_ELIGIBLE) {
		CHECK_EQ_INT(ans.len, 0);
		return;
	}
	CHECK_EQ_INT(ans.completeness, expected_percent(s));
	n = brute_list(s, want);
	CHECK_EQ_INT(ans.len, n < K ? n : K);
	for (uint32_t i = 0; i < ans.len && (int)i < n; i++) {
		posting_id(want[i].index, pid);
		if (strcmp(items[i].posting_id, pid) ||
		    items[i].score != want[i].score) {
			show_lists(sid, items, ans.len, want, n);
			CHECK(0);
			break;
		}
	}
}

static int cmp_students(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->index - y->index; /* ids sort as their numbers */
}

static void check_candidates(int p)
{
	struct match_candidate got[12];
	struct ranked want[STUDENTS];
	struct score_explain ex;
	char sid[16], pid[16];
	uint32_t len;
	int n = 0, rc;

	posting_id(p, pid);
	rc = match_candidates(m, pid, strlen(pid), 10, 2, got, &len);
	if (!posting_is_open(p)) {
		CHECK_EQ_INT(rc, -ENXIO);
		return;
	}
	CHECK_EQ_INT(rc, 0);
	for (int s = 0; s < STUDENTS; s++) {
		if (!students[s].data || expected_reason(s) != MATCH_ELIGIBLE)
			continue;
		student_id(s, sid);
		CHECK_EQ_INT(match_explain(m, sid, strlen(sid), pid,
					   strlen(pid), &ex), 0);
		if (!ex.failed)
			want[n++] = (struct ranked){ s, ex.score };
	}
	qsort(want, (size_t)n, sizeof(*want), cmp_students);
	CHECK_EQ_INT(len, n > 2 ? (n - 2 < 10 ? n - 2 : 10) : 0);
	for (uint32_t i = 0; i < len; i++) {
		student_id(want[i + 2].index, sid);
		CHECK_EQ_STR(got[i].student_id, sid);
		CHECK(got[i].score == want[i + 2].score);
	}
}

static void check_all(void)
{
	char sid[16];
	struct match_answer ans;
	struct match_item items[K];
	struct match_stats st;
	uint64_t known = 0, eligible = 0, open = 0;

	for (int s = 0; s < STUDENTS; s++) {
		if (students[s].data) {
			known++;
			eligible += expected_reason(s) == MATCH_ELIGIBLE;
		}
	}
	for (int p = 0; p < POSTINGS; p++)
		open += posting_is_open(p);
	match_stats_get(m, &st);
	CHECK_EQ_INT(st.students, known);
	CHECK_EQ_INT(st.eligible, eligible);
	CHECK_EQ_INT(st.postings, open);
	for (int s = 0; s < STUDENTS; s++) {
		if (students[s].data) {
			check_student(s);
			continue;
		}
		student_id(s, sid);
		CHECK_EQ_INT(match_get(m, sid, strlen(sid), K, 0, &ans, items),
			     -ENOENT);
	}
	for (int p = 0; p < POSTINGS; p += 7)
		check_candidates(p);
}

/* ---- scenarios ---- */

static int reload_truth(void *ctx, struct match *mm)
{
	(void)ctx;
	for (int p = 0; p < POSTINGS; p++) {
		if (postings[p].data)
			match_load_posting(mm, postings[p].data,
					   postings[p].len);
	}
	for (int s = 0; s < STUDENTS; s++) {
		if (students[s].data)
			match_load_student(mm, students[s].data,
					   students[s].len);
	}
	for (int s = 0; s < STUDENTS; s++) {
		if (resumes[s].data)
			match_load_resume(mm, resumes[s].data, resumes[s].len);
	}
	return 0;
}

static void random_op(void)
{
	int s = (int)rnd(STUDENTS), p = (int)rnd(POSTINGS);

	switch (rnd(11)) {
	case 0: case 1: case 2:
		put_posting(p);
		break;
	case 3:
		if (posting_is_open(p))
			close_posting(p);
		break;
	case 4:
		if (postings[p].data)
			delete_posting(p);
		break;
	case 5:
		fake_now += rnd(12 * 3600);
		break;
	case 6: case 7:
		if (students[s].data)
			put_resume(s);
		break;
	case 8:
		if (resumes[s].data)
			delete_resume(s);
		break;
	case 9:
		put_student(s, rnd(5) != 0, 2024 + (int)rnd(5));
		break;
	default:
		if (students[s].data)
			delete_student(s);
		break;
	}
}

static void test_reasons_in_order(void)
{
	struct match_answer ans;
	struct match_item items[K];
	char sid[16];

	student_id(0, sid);
	put_student(0, false, 2020);
	match_drain(m);
	CHECK_EQ_INT(match_get(m, sid, strlen(sid), K, 0, &ans, items), 0);
	CHECK_EQ_INT(ans.reason, MATCH_NOT_BOUND);
	put_student(0, true, 2020);
	match_drain(m);
	CHECK_EQ_INT(match_get(m, sid, strlen(sid), K, 0, &ans, items), 0);
	CHECK_EQ_INT(ans.reason, MATCH_COHORT_INACTIVE);
	put_student(0, true, 2026);
	match_drain(m);
	CHECK_EQ_INT(match_get(m, sid, strlen(sid), K, 0, &ans, items), 0);
	CHECK_EQ_INT(ans.reason, MATCH_NO_RESUME);
	CHECK_EQ_INT(ans.len, 0);
	do {
		put_resume(0);
	} while (expected_percent(0) >= 60);
	match_drain(m);
	CHECK_EQ_INT(match_get(m, sid, strlen(sid), K, 0, &ans, items), 0);
	CHECK_EQ_INT(ans.reason, MATCH_RESUME_INCOMPLETE);
	CHECK(ans.missing != 0);
	CHECK_EQ_INT(match_get(m, "nobody", 6, K, 0, &ans, items), -ENOENT);
	CHECK_EQ_STR(match_reason_name(MATCH_RESUME_INCOMPLETE),
		     "resume_incomplete");
	CHECK_EQ_STR(match_reason_name(MATCH_NOT_BOUND), "not_bound");
}

static void test_random_changes(void)
{
	/* In batches, as the queue holds 16 changes. */
	for (int s = 0; s < STUDENTS; s++) {
		put_student(s, rnd(10) != 0, 2024 + (int)rnd(5));
		if (rnd(5))
			put_resume(s);
		if (s % 4 == 3)
			match_drain(m);
	}
	for (int p = 0; p < POSTINGS; p++) {
		put_posting(p);
		if (p % 8 == 7)
			match_drain(m);
	}
	match_drain(m);
	check_all();
	for (int round = 0; round < ROUNDS; round++) {
		for (int op = 0; op < 10; op++)
			random_op();
		match_drain(m);
		check_all();
	}
}

/* A close or delete hides the posting from the next read on, before the
 * match thread has applied it. */
static void test_hidden_at_once(void)
{
	struct match_item items[K];
	struct match_answer ans;
	char sid[16], pid[MATCH_ID_BYTES];
	int victim;

	for (int s = 0; s < STUDENTS; s++) {
		student_id(s, sid);
		if (!students[s].data ||
		    match_get(m, sid, strlen(sid), K, 0, &ans, items) ||
		    ans.len < 2)
			continue;
		for (int round = 0; round < 2; round++) {
			snprintf(pid, sizeof(pid), "%s", items[0].posting_id);
			victim = atoi(pid + 1);
			if (round == 0)
				close_posting(victim);
			else
				delete_posting(victim);
			CHECK_EQ_INT(match_get(m, sid, strlen(sid), K, 0, &ans,
					       items), 0);
			CHECK(ans.len > 0);
			CHECK(strcmp(items[0].posting_id, pid) != 0);
		}
		match_drain(m);
		check_all();
		return;
	}
	CHECK(0);
}

static bool done_called;
static struct match_rerank done_result;

static void rerank_done(struct match_job *job, const struct match_rerank *r)
{
	(void)job;
	done_called = true;
	done_result = *r;
}

static void job_cancel(struct match_job *job)
{
	(void)job;
	CHECK(0);
}

static void test_reranks(void)
{
	struct match_job job = { NULL, NULL, job_cancel };
	const char *ids[3] = { "P0001", "P0002", "nope" };
	size_t lens[3] = { 5, 5, 4 };
	struct match_rerank r;

	/* Lists are kept up to date, so naming postings changes nothing. */
	match_rerank_postings(m, ids, lens, 3, &r);
	CHECK_EQ_INT(r.students_updated, 0);
	CHECK(r.unknown >= 1);
	check_all();

	/* A full rebuild a week later moves the freshness clock. */
	fake_now += 7 * 86400;
	match_rerank_all(m, &job, rerank_done);
	match_drain(m);
	CHECK(done_called);
	CHECK(done_result.students_updated > 0);
	CHECK_EQ_INT(match_fresh_at(m), fake_now);
	check_all();
}

static void test_overflow(void)
{
	struct match_stats st;
	int refused = 0;

	for (int i = 0; i < 40; i++) {
		char id[16];
		int p = (int)rnd(POSTINGS);

		make_posting(p);
		posting_id(p, id);
		refused += match_on_posting(m, id, strlen(id), postings[p].data,
					    postings[p].len) == -EAGAIN;
	}
	CHECK(refused > 0);
	match_stats_get(m, &st);
	CHECK_EQ_INT(st.dropped, refused);
	/* The reload reads everything again, so the lists are right. */
	match_drain(m);
	match_stats_get(m, &st);
	CHECK_EQ_INT(st.reloads, 1);
	check_all();
}

/* A second match loaded from the records as at start-up: built by
 * match_build(), or left to build lazily. */
static void test_cold_start(const struct match_config *cfg)
{
	struct match *live = m, *cold;
	struct match_answer ans;
	struct match_item items[K];
	char sid[16];
	int s;

	for (int lazy = 0; lazy < 2; lazy++) {
		CHECK_EQ_INT(match_new(&cold, cfg, ref, comp), 0);
		for (int p = 0; p < POSTINGS; p++) {
			if (postings[p].data)
				CHECK_EQ_INT(match_load_posting_terms(cold,
					postings[p].data, postings[p].len), 0);
		}
		reload_truth(NULL, cold);
		m = cold;
		if (!lazy) {
			CHECK_EQ_INT(match_build(cold), 0);
			check_all();
		} else {
			for (s = 0; s < STUDENTS; s++) {
				if (students[s].data &&
				    expected_reason(s) == MATCH_ELIGIBLE)
					break;
			}
			student_id(s, sid);
			CHECK_EQ_INT(match_get(cold, sid, strlen(sid), K, 0,
					       &ans, items), -EAGAIN);
			match_drain(cold);
			check_all();
		}
		m = live;
		match_free(cold);
	}
}

struct flag_job {
	struct match_job job;
	int nice, policy;
	volatile int ran;
};

/* Runs on the match thread: notes the thread's own priority. */
static void flag_run(struct match *mm, struct match_job *job)
{
	struct flag_job *fj = (struct flag_job *)job;

	(void)mm;
	errno = 0;
	fj->nice = getpriority(PRIO_PROCESS, (id_t)gettid());
	if (errno)
		fj->nice = -100;
	fj->policy = sched_getscheduler(0);
	__atomic_store_n(&fj->ran, 1, __ATOMIC_RELEASE);
}

/* Waits for a job on a started match thread; the deadline only stops a
 * broken run from hanging. */
static void flag_wait(struct flag_job *fj)
{
	for (int waited_ms = 0; !__atomic_load_n(&fj->ran, __ATOMIC_ACQUIRE) &&
				waited_ms < 20000; waited_ms++)
		usleep(1000);
	CHECK(fj->ran);
}

/* The match thread: changes are applied without anyone draining, at the
 * configured nice value, which leaves the calling thread's alone. */
static void test_thread(void)
{
	struct flag_job fj = { { NULL, flag_run, job_cancel }, 0, 0, 0 };
	struct match_stats st;
	uint64_t before;
	int own = getpriority(PRIO_PROCESS, (id_t)gettid());

	match_stats_get(m, &st);
	before = st.applied;
	CHECK_EQ_INT(match_start(m), 0);
	for (int i = 0; i < 10; i++)
		random_op();
	CHECK_EQ_INT(match_submit(m, &fj.job), 0);
	flag_wait(&fj);
	CHECK_EQ_INT(fj.nice, own > NICE ? own : NICE);
	CHECK_EQ_INT(fj.policy, SCHED_OTHER);
	CHECK_EQ_INT(getpriority(PRIO_PROCESS, (id_t)gettid()), own);
	match_stop(m);
	match_stats_get(m, &st);
	CHECK(st.applied > before);
	CHECK_EQ_INT(match_on_student(m, "S9999", 5, NULL, 0), -ESHUTDOWN);
	check_all();
}

/* With idle, the match thread runs under SCHED_IDLE. */
static void test_thread_idle(struct match_config cfg)
{
	struct flag_job fj = { { NULL, flag_run, job_cancel }, 0, -1, 0 };
	struct match *mi;

	cfg.idle = true;
	CHECK_EQ_INT(match_new(&mi, &cfg, ref, comp), 0);
	CHECK_EQ_INT(match_start(mi), 0);
	CHECK_EQ_INT(match_submit(mi, &fj.job), 0);
	flag_wait(&fj);
	CHECK_EQ_INT(fj.policy, SCHED_IDLE);
	CHECK_EQ_INT(sched_getscheduler(0), SCHED_OTHER);
	match_stop(mi);
	match_free(mi);
}

int main(void)
{
	struct match_config cfg;
	char err[256];

	if (ref_load(&ref, "data", err, sizeof(err)) ||
	    completeness_load(&comp, "data/completeness.tsv", err,
			      sizeof(err))) {
		fprintf(stderr, "reference data: %s\n", err);
		return 1;
	}
	proto_limits_default(&limits);
	match_config_default(&cfg);
	cfg.k = K;
	cfg.reserve = RESERVE;
	cfg.clock = fake_clock;
	cfg.rebuild_every_s = 0;
	cfg.queue_events_max = 16;
	cfg.reload = reload_truth;
	cfg.nice = NICE;
	CHECK_EQ_INT(match_new(&m, &cfg, ref, comp), 0);
	test_reasons_in_order();
	test_random_changes();
	test_hidden_at_once();
	test_reranks();
	test_overflow();
	test_cold_start(&cfg);
	test_thread();
	test_thread_idle(cfg);
	match_free(m);
	for (int i = 0; i < STUDENTS; i++) {
		drop(&students[i]);
		drop(&resumes[i]);
	}
	for (int i = 0; i < POSTINGS; i++)
		drop(&postings[i]);
	completeness_free(comp);
	ref_free(ref);
	return check_exit("test_match");
}
