/*
 * Unit tests for push recording: offers below the bounds are dropped, a
 * student and posting pair is recorded once however often it is offered
 * (within a batch, across batches, after a restart), the daily cap holds,
 * and seqs are consecutive from where the last run stopped.
 */
#include <stdlib.h>

#include "check.h"
#include "push.h"
#include "store.h"

static struct store *open_store(const char *dir)
{
	struct store_config cfg;
	struct store *st = NULL;
	char err[256];

	store_config_default(&cfg);
	cfg.dir = dir;
	cfg.sync = false;
	cfg.map_bytes_initial = 1 << 20;
	if (store_open(&st, &cfg, err, sizeof(err)))
		fprintf(stderr, "store_open: %s\n", err);
	return st;
}

struct seen {
	uint64_t seqs[64];
	char pairs[64][80];
	unsigned n;
};

static int collect(void *ctx, const MDB_val *key, const MDB_val *val)
{
	struct seen *s = ctx;
	const uint8_t *v = val->mv_data;
	uint64_t seq = 0;

	for (int i = 0; i < 8; i++)
		seq = seq << 8 | ((const uint8_t *)key->mv_data)[i];
	if (s->n < 64) {
		s->seqs[s->n] = seq;
		snprintf(s->pairs[s->n], sizeof(s->pairs[0]), "%.*s/%.*s",
			 v[12], (const char *)v + 13, v[13 + v[12]],
			 (const char *)v + 14 + v[12]);
	}
	s->n++;
	return 0;
}

static void read_outbox(const char *dir, struct seen *s)
{
	struct store *st = open_store(dir);
	struct store_reader *rd;

	memset(s, 0, sizeof(*s));
	if (!st || store_reader_new(st, &rd))
		return;
	if (store_read_begin(rd) == 0) {
		store_scan(rd, STORE_OUTBOX, NULL, 0, 1000, collect, s);
		store_read_end(rd);
	}
	store_reader_free(rd);
	store_close(st);
}

/* One run: opens, offers, flushes, closes (which commits). */
static void run(const char *dir, void (*offers)(struct push *p))
{
	struct push_config cfg;
	struct store *st = open_store(dir);
	struct push *p = NULL;

	push_config_default(&cfg);
	cfg.daily_cap = 3;
	CHECK(st != NULL);
	CHECK_EQ_INT(push_new(&p, st, &cfg), 0);
	if (!p)
		return;
	offers(p);
	push_flush(p);
	store_close(st);
	push_free(p);
}

static void first_offers(struct push *p)
{
	push_offer(p, "S1", 2, "P1", 2, 0.9, 0);
	push_offer(p, "S1", 2, "P1", 2, 0.95, 1);  /* same pair */
	push_offer(p, "S1", 2, "P2", 2, 0.5, 0);   /* below the score */
	push_offer(p, "S1", 2, "P3", 2, 0.9, 10);  /* below the rank */
	push_offer(p, "S2", 2, "P1", 2, 0.7, 3);
	push_flush(p);
	push_offer(p, "S1", 2, "P1", 2, 0.9, 0);   /* a later batch */
	push_offer(p, "S1", 2, "P4", 2, 0.9, 0);
	push_offer(p, "S1", 2, "P5", 2, 0.9, 0);
	push_offer(p, "S1", 2, "P6", 2, 0.9, 0);   /* over the cap of 3 */
}

static void second_offers(struct push *p)
{
	push_offer(p, "S1", 2, "P4", 2, 0.9, 0);   /* recorded last run */
	push_offer(p, "S3", 2, "P9", 2, 0.8, 2);
}

int main(void)
{
	char tmpl[] = "/tmp/matchd-test-push-XXXXXX";
	char cmd[128];
	struct seen s;

	if (!mkdtemp(tmpl))
		return 1;
	run(tmpl, first_offers);
	read_outbox(tmpl, &s);
	CHECK_EQ_INT(s.n, 4);
	CHECK_EQ_STR(s.pairs[0], "S1/P1");
	CHECK_EQ_STR(s.pairs[1], "S2/P1");
	CHECK_EQ_STR(s.pairs[2], "S1/P4");
	CHECK_EQ_STR(s.pairs[3], "S1/P5");
	for (unsigned i = 0; i < s.n && i < 64; i++)
		CHECK_EQ_INT(s.seqs[i], i + 1);
	run(tmpl, second_offers);
	read_outbox(tmpl, &s);
	CHECK_EQ_INT(s.n, 5);
	CHECK_EQ_STR(s.pairs[4], "S3/P9");
	CHECK_EQ_INT(s.seqs[4], 5);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpl);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", tmpl);
	return check_exit("test_push");
}
