/*
 * text: UTF-8 validation, normalisation and tokenisation.
 *
 * Normalisation is what every stored string gets (PROTOCOL.md): full-width
 * ASCII forms folded to ASCII, surrounding white space trimmed, nothing else
 * changed.  Tokenisation is what search and matching index: ASCII words and
 * numbers (lower-cased, tech terms such as "c++", "c#", ".net", "node.js"
 * kept whole) and CJK runs as overlapping bigrams.  Pure functions over
 * caller memory: no allocation, no global state, safe from any thread.
 */
#ifndef MATCHD_TEXT_H
#define MATCHD_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * True when s[0..len) is well-formed UTF-8: no overlong forms, no
 * surrogates, nothing above U+10FFFF, no truncated sequence.  NUL bytes are
 * valid UTF-8 and allowed here; callers that forbid them check separately.
 */
bool text_utf8_valid(const char *s, size_t len);

/*
 * Normalises valid UTF-8 s[0..len) into out: U+FF01..U+FF5E become
 * U+0021..U+007E, U+3000 (ideographic space) becomes U+0020, then leading
 * and trailing white space (space, \t, \n, \v, \f, \r) is trimmed.  Folding
 * never lengthens the text, so out needs len bytes; out may equal s.
 * Returns the length written.
 */
size_t text_normalize(const char *s, size_t len, char *out);

/* How a text is being tokenised. */
enum text_mode {
	/* Documents: CJK runs give bigrams and also unigrams, so that a
	 * one-character query can find them. */
	TEXT_INDEX,
	/* Queries: CJK runs of two or more characters give bigrams only; a
	 * lone CJK character gives its unigram. */
	TEXT_QUERY,
};

/* Longest token kept; longer ASCII words are cut to this many bytes. */
#define TEXT_TOKEN_BYTES_MAX 64

/*
 * Called once per token, in text order.  term is the folded token text
 * (lower-case ASCII or UTF-8 CJK), not NUL-terminated, valid only during
 * the call.  position counts ASCII words and CJK characters from 0 (a
 * bigram takes its first character's position), so distances agree
 * between documents and queries.  Return non-zero to stop.
 */
typedef int (*text_token_fn)(void *ctx, uint64_t term_id, const char *term,
			     size_t term_len, uint32_t position);

/*
 * Tokenises valid UTF-8 s[0..len) in mode, folding full-width forms and
 * ASCII case on the way.  Returns 0, or the first non-zero value returned
 * by fn.
 */
int text_tokenize(const char *s, size_t len, enum text_mode mode,
		  text_token_fn fn, void *ctx);

/* The term id of an already folded token: XXH3 64-bit of its bytes. */
uint64_t text_term_id(const char *term, size_t len);

#endif
