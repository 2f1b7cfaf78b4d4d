/*
 * check: the tiny harness every unit test program uses.  A failed CHECK
 * prints the file, line and expression and counts a failure; the program
 * carries on so one run shows every failure, and check_exit() returns 1 if
 * any check failed.
 */
#ifndef MATCHD_CHECK_H
#define MATCHD_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(expr)                                                         \
	do {                                                                \
		check_count++;                                              \
		if (!(expr)) {                                              \
			check_failures++;                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n",        \
				__FILE__, __LINE__, #expr);                 \
		}                                                           \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                  \
	do {                                                                \
		long long check_a_ = (long long)(a);                        \
		long long check_b_ = (long long)(b);                        \
		check_count++;                                              \
		if (check_a_ != check_b_) {                                 \
			check_failures++;                                   \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != "  \
				"%lld\n", __FILE__, __LINE__, #a, #b,       \
				check_a_, check_b_);                        \
		}                                                           \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                  \
	do {                                                                \
		const char *check_a_ = (a);                                 \
		const char *check_b_ = (b);                                 \
		check_count++;                                              \
		if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_)) { \
			check_failures++;                                   \
			fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != " \
				"\"%s\"\n", __FILE__, __LINE__, #a, #b,     \
				check_a_ ? check_a_ : "(null)",             \
				check_b_ ? check_b_ : "(null)");            \
		}                                                           \
	} while (0)

static inline int check_exit(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, check_count,
	       check_failures);
	return check_failures ? 1 : 0;
}

#endif
