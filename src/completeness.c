/*
 * completeness: the weighted item list behind a resume's 完善度 and the
 * evaluation of one resume against it.
 *
 * main loads the list once at start-up (completeness_load); the rpc layer
 * evaluates it on every resume.put and match answer, and match on every
 * eligibility check, from any thread, since the list is read-only after
 * loading.  The file gives names and weights; what makes each named item
 * present is code (item_rules below), because each is a predicate over the
 * stored resume or student, not data.
 */
#include "completeness.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One line of the item file, newline included; longer is an error. */
#define LINE_BYTES_MAX 512
#define WEIGHT_MAX 100

_Static_assert(COMPLETENESS_ITEMS_MAX <= 32, "missing is a 32-bit mask");

/* What can make an item present; one bit each in a fact mask. */
enum fact {
	FACT_PHOTO,
	FACT_INTRO,
	FACT_SKILLS,
	FACT_EXPERIENCES,
	FACT_CATEGORIES,
	FACT_CITIES,
	FACT_SALARY,
	FACT_CERTIFICATES,
	FACT_LANGUAGES,
	FACT_EDUCATION,
};

/* The item names the file may use. */
static const struct {
	const char *name;
	enum fact fact;
} item_rules[] = {
	{ "photo", FACT_PHOTO },
	{ "intro", FACT_INTRO },
	{ "skills", FACT_SKILLS },
	{ "experiences", FACT_EXPERIENCES },
	{ "desired_categories", FACT_CATEGORIES },
	{ "desired_cities", FACT_CITIES },
	{ "salary", FACT_SALARY },
	{ "certificates", FACT_CERTIFICATES },
	{ "languages", FACT_LANGUAGES },
	{ "education", FACT_EDUCATION },
};

/* How a resume field's value shows its fact. */
enum test {
	TEST_TRUE,      /* the bool true */
	TEST_TEXT,      /* a non-empty string */
	TEST_LIST,      /* a non-empty array */
	TEST_GIVEN,     /* any value but nil */
};

static const struct {
	const char *key;
	enum test test;
	enum fact fact;
} resume_rules[] = {
	{ "has_photo", TEST_TRUE, FACT_PHOTO },
	{ "intro", TEST_TEXT, FACT_INTRO },
	{ "skills", TEST_LIST, FACT_SKILLS },
	{ "experiences", TEST_LIST, FACT_EXPERIENCES },
	{ "desired_categories", TEST_LIST, FACT_CATEGORIES },
	{ "desired_cities", TEST_LIST, FACT_CITIES },
	{ "salary_min", TEST_GIVEN, FACT_SALARY },
	{ "salary_max", TEST_GIVEN, FACT_SALARY },
	{ "certificates", TEST_LIST, FACT_CERTIFICATES },
	{ "awards", TEST_LIST, FACT_CERTIFICATES },
	{ "languages", TEST_LIST, FACT_LANGUAGES },
};

struct item {
	const char *name; /* points into item_rules */
	enum fact fact;
	unsigned weight;
};

struct completeness {
	struct item items[COMPLETENESS_ITEMS_MAX];
	size_t count;
	unsigned weight_total;
};

/* ---- loading ---- */

static int rule_find(const char *name)
{
	for (size_t i = 0; i < sizeof(item_rules) / sizeof(item_rules[0]);
	     i++)
		if (!strcmp(item_rules[i].name, name))
			return (int)i;
	return -1;
}

/* Decimal 1..WEIGHT_MAX, nothing else; 0 when s is not one. */
static unsigned weight_parse(const char *s)
{
	unsigned w = 0;

	if (!*s || strlen(s) > 3)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		w = w * 10 + (unsigned)(*s - '0');
	}
	return w <= WEIGHT_MAX ? w : 0;
}

/* Adds the item on one line (newline stripped) to c.  Returns NULL or
 * what is wrong with the line. */
static const char *line_add(struct completeness *c, char *line)
{
	char *name = line, *weight, *end;
	unsigned w;
	int r;

	weight = strchr(line, '\t');
	if (!weight)
		return "expected name, weight and description separated by "
		       "tabs";
	*weight++ = '\0';
	end = strchr(weight, '\t');
	if (end)
		*end = '\0';
	r = rule_find(name);
	if (r < 0)
		return "unknown item name";
	w = weight_parse(weight);
	if (w == 0)
		return "weight must be a whole number from 1 to 100";
	for (size_t i = 0; i < c->count; i++)
		if (c->items[i].fact == item_rules[r].fact)
			return "item listed twice";
	if (c->count == COMPLETENESS_ITEMS_MAX)
		return "too many items";
	c->items[c->count++] = (struct item){
		item_rules[r].name, item_rules[r].fact, w
	};
	c->weight_total += w;
	return NULL;
}

/* Reads every line of f into c.  Returns 0 or -EINVAL with errbuf set. */
static int lines_read(struct completeness *c, FILE *f, const char *path,
		      char *errbuf, size_t errbuf_len)
{
	char line[LINE_BYTES_MAX];
	unsigned lineno = 0;

	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		const char *problem;

		lineno++;
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			snprintf(errbuf, errbuf_len, "%s:%u: line longer than "
				 "%d bytes", path, lineno, LINE_BYTES_MAX - 2);
			return -EINVAL;
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		problem = line_add(c, line);
		if (problem) {
			snprintf(errbuf, errbuf_len, "%s:%u: %s", path,
				 lineno, problem);
			return -EINVAL;
		}
	}
	if (ferror(f)) {
		snprintf(errbuf, errbuf_len, "%s:%u: read error", path,
			 lineno);
		return -EIO;
	}
	if (c->weight_total == 0) {
		snprintf(errbuf, errbuf_len, "%s:%u: no items: the weights "
			 "sum to 0", path, lineno);
		return -EINVAL;
	}
	return 0;
}

int completeness_load(struct completeness **out, const char *path,
		      char *errbuf, size_t errbuf_len)
{
	struct completeness *c;
	FILE *f;
	int rc;

	*out = NULL;
	f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		snprintf(errbuf, errbuf_len, "%s: %s", path, strerror(-rc));
		return rc;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		fclose(f);
		snprintf(errbuf, errbuf_len, "%s: out of memory", path);
		return -ENOMEM;
	}
	rc = lines_read(c, f, path, errbuf, errbuf_len);
	fclose(f);
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void completeness_free(struct completeness *c)
{
	free(c);
}

size_t completeness_item_count(const struct completeness *c)
{
	return c->count;
}

const char *completeness_item_name(const struct completeness *c, size_t i)
{
	return i < c->count ? c->items[i].name : NULL;
}

/* ---- evaluation ---- */

static bool key_is(const msgpack_object *key, const char *name)
{
	size_t len = strlen(name);

	return key->type == MSGPACK_OBJECT_STR && key->via.str.size == len &&
	       !memcmp(key->via.str.ptr, name, len);
}

static bool test_passes(enum test test, const msgpack_object *v)
{
	switch (test) {
	case TEST_TRUE:
		return v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
	case TEST_TEXT:
		return v->type == MSGPACK_OBJECT_STR && v->via.str.size > 0;
	case TEST_LIST:
		return v->type == MSGPACK_OBJECT_ARRAY &&
		       v->via.array.size > 0;
	case TEST_GIVEN:
		return v->type != MSGPACK_OBJECT_NIL;
	}
	return false;
}

static uint32_t resume_facts(const msgpack_object *resume)
{
	size_t rules = sizeof(resume_rules) / sizeof(resume_rules[0]);
	uint32_t facts = 0;

	if (!resume || resume->type != MSGPACK_OBJECT_MAP)
		return 0;
	for (uint32_t i = 0; i < resume->via.map.size; i++) {
		const msgpack_object_kv *kv = &resume->via.map.ptr[i];

		for (size_t r = 0; r < rules; r++)
			if (key_is(&kv->key, resume_rules[r].key) &&
			    test_passes(resume_rules[r].test, &kv->val))
				facts |= 1u << resume_rules[r].fact;
	}
	return facts;
}

/* The student's school and major are both filled in. */
static bool student_educated(const msgpack_object *student)
{
	bool school = false, major = false;

	if (!student || student->type != MSGPACK_OBJECT_MAP)
		return false;
	for (uint32_t i = 0; i < student->via.map.size; i++) {
		const msgpack_object_kv *kv = &student->via.map.ptr[i];

		if (key_is(&kv->key, "school"))
			school = test_passes(TEST_TEXT, &kv->val);
		else if (key_is(&kv->key, "major"))
			major = test_passes(TEST_TEXT, &kv->val);
	}
	return school && major;
}

void completeness_eval(const struct completeness *c,
		       const msgpack_object *resume,
		       const msgpack_object *student,
		       struct completeness_result *res)
{
	uint32_t facts = resume_facts(resume);
	unsigned present = 0;

	if (student_educated(student))
		facts |= 1u << FACT_EDUCATION;
	res->missing = 0;
	for (size_t i = 0; i < c->count; i++) {
		if (facts & (1u << c->items[i].fact))
			present += c->items[i].weight;
		else
			res->missing |= 1u << i;
	}
	/* weight_total is at least 1 after a successful load. */
	res->percent = 100u * present / c->weight_total;
}
