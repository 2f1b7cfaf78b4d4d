/*
 * push: deciding, recording and delivering pushes — "this posting is a
 * strong new match for this student" — to the platform's servers.
 *
 * The match thread offers a push whenever a posting enters a student's
 * list near the top (push_offer); offers are batched into one store write
 * whose apply() drops duplicates (a student and posting pushed before, at
 * any time) and offers past the student's daily cap, and gives the rest
 * consecutive seqs in the `outbox` table, all in the same transaction.  A
 * push therefore exists for subscribers only once it is durable, and a
 * crash either recorded it (then it is never recorded again: the `pushed`
 * table remembers the pair) or did not (then the lists rebuilt at start-up
 * offer it again).
 *
 * Delivery is pulled from the outbox: each subscriber connection has the
 * next seq it needs, and is sent notifications [2, "push", [push…]] in
 * seq order while its output has room; a slow subscriber simply falls
 * behind and catches up from the outbox, never growing the daemon.
 *
 * Threads: push_offer/push_flush on the match thread; subscribe, ack and
 * delivery on each subscriber's network thread; the writer thread runs
 * apply() and complete(); a maintenance thread compacts.
 */
#ifndef MATCHD_PUSH_H
#define MATCHD_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

struct store;

struct push_config {
	double score_min;        /* offers below are ignored (default 0.6) */
	unsigned rank_max;       /* offers at rank >= this are ignored (10) */
	unsigned daily_cap;      /* pushes per student per day (5) */
	int utc_offset_s;        /* the day boundary: China time, +8 h */
	unsigned retention_s;    /* acknowledged entries kept (7 days) */
	unsigned retention_max_s; /* any entry kept at most (30 days) */
	unsigned compact_interval_s; /* (60) */
};

void push_config_default(struct push_config *cfg);

struct push;

/* Creates the push module over the store; reads the newest seq.  The
 * maintenance thread starts with push_start(). */
int push_new(struct push **out, struct store *store,
	     const struct push_config *cfg);
int push_start(struct push *p);
/* Flushes offers, stops the maintenance thread; before store_close(). */
void push_stop(struct push *p);
void push_free(struct push *p);

/*
 * Wires delivery into the rpc server: sets srv->sub_closed and
 * srv->sub_writable.  Call before net_start(); push_attach_workers()
 * after it, when srv->workers exist.
 */
void push_attach(struct push *p, struct rpc_server *srv);
int push_attach_workers(struct push *p);

/*
 * Offers a push: the posting entered the student's list at rank (0 is the
 * top) with score.  Cheap and non-blocking unless the store's queue is
 * full; offers below the score or rank bounds are dropped at once.  The
 * offer is recorded (or found a duplicate, or capped) by the next commit
 * after push_flush() or after enough offers accumulate.
 */
void push_offer(struct push *p, const char *student_id, size_t sid_len,
		const char *posting_id, size_t pid_len, double score,
		unsigned rank);

/* Submits the offers gathered so far.  May wait while the store's queue
 * is full (the match thread can; network threads never call this). */
void push_flush(struct push *p);

/* The rpc methods push.subscribe and push.ack; rpc_server.app must be a
 * struct api whose `push` is set. */
extern const struct rpc_method push_methods[];
extern const unsigned push_methods_len;

/* Packs the `pushes` section of `stats`: a map, with each named
 * subscriber's position read through rd (a network thread's reader). */
struct store_reader;
void push_stats_pack(struct push *p, struct store_reader *rd,
		     msgpack_packer *pk);

#endif
