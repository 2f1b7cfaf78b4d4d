/*
 * log: the daemon's one logging call.  Lines go to stderr as
 * "2026-12-03T17:40:00Z level message" (or as JSON objects with --log-json),
 * one write(2) per line so that lines from different threads never
 * interleave.  The layer that owns a failure logs it once; the modules
 * below it return codes and never log.
 */
#ifndef MATCHD_LOG_H
#define MATCHD_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the lowest level written (default LOG_INFO) and the format. */
void log_setup(enum log_level min, bool json);

/* Parses "debug", "info", "warn", "error".  Returns 0 or -EINVAL. */
int log_level_parse(const char *name, enum log_level *out);

/* Writes one line when level is enabled.  Thread-safe, never allocates. */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
