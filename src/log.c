/*
 * log: timestamped lines on stderr.  See log.h.  Any thread may call it;
 * each line is formatted into a stack buffer and written with a single
 * write(2), which POSIX keeps whole for a pipe up to PIPE_BUF bytes and
 * which a terminal or file does not split in practice.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Longest line written; longer messages are cut, never overflowed. */
#define LOG_LINE_BYTES_MAX 1024

static enum log_level log_min = LOG_INFO;
static bool log_json;

static const char *const log_names[] = { "debug", "info", "warn", "error" };

void log_setup(enum log_level min, bool json)
{
	log_min = min;
	log_json = json;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(name, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Escapes msg for a JSON string in place of the plain text. */
static size_t log_json_escape(char *dst, size_t cap, const char *msg)
{
	size_t n = 0;

	for (; *msg && n + 7 < cap; msg++) {
		unsigned char c = (unsigned char)*msg;

		if (c == '"' || c == '\\') {
			dst[n++] = '\\';
			dst[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(dst + n, cap - n, "\\u%04x", c);
		} else {
			dst[n++] = (char)c;
		}
	}
	dst[n] = '\0';
	return n;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[LOG_LINE_BYTES_MAX - 64];
	char line[LOG_LINE_BYTES_MAX + 256];
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_json) {
		char esc[LOG_LINE_BYTES_MAX];

		log_json_escape(esc, sizeof(esc), msg);
		n = snprintf(line, sizeof(line),
			     "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\","
			     "\"msg\":\"%s\"}\n", stamp, ts.tv_nsec / 1000000,
			     log_names[level], esc);
	} else {
		n = snprintf(line, sizeof(line), "%s.%03ldZ %s %s\n", stamp,
			     ts.tv_nsec / 1000000, log_names[level], msg);
	}
	if (n > (int)sizeof(line))
		n = (int)sizeof(line);
	/* A failed log write has nowhere to be reported; drop it. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		errno = 0;
}
