/*
 * completeness: how complete a resume is (完善度), from a weighted list of
 * items, and which items are missing.  A resume below the threshold (60 by
 * default) gets no pushes and is in no candidate list.
 *
 * The list is data (data/completeness.tsv by default): one item per line,
 * its name, its weight and a description.  Loaded once at start-up, then
 * read-only and safe from any thread.
 */
#ifndef MATCHD_COMPLETENESS_H
#define MATCHD_COMPLETENESS_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

struct completeness;

/* At most this many items, so that a result's missing set fits a mask. */
#define COMPLETENESS_ITEMS_MAX 32

struct completeness_result {
	unsigned percent;  /* 0..100, rounded down */
	uint32_t missing;  /* bit i set: item i is missing */
};

/* Loads the item list from path.  Returns 0 or -errno with a sentence in
 * errbuf naming the file and line. */
int completeness_load(struct completeness **out, const char *path,
		      char *errbuf, size_t errbuf_len);
void completeness_free(struct completeness *c);

/*
 * Evaluates a stored resume (a map as record_validate() packs it) together
 * with its student's stored record (NULL when unknown: the student's items
 * then count as missing).
 */
void completeness_eval(const struct completeness *c,
		       const msgpack_object *resume,
		       const msgpack_object *student,
		       struct completeness_result *res);

size_t completeness_item_count(const struct completeness *c);
const char *completeness_item_name(const struct completeness *c, size_t i);

#endif
