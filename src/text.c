/*
 * text: UTF-8 validation, normalisation and tokenisation.
 *
 * record checks and normalises every stored string with text_utf8_valid()
 * and text_normalize(); index, score and search tokenise postings, resumes
 * and queries with text_tokenize().  Everything here is a pure function
 * over caller memory: no allocation, no global state, any thread.
 *
 * Tokens.  The text is read once, left to right, with full-width forms
 * (U+FF01..U+FF5E) folded to ASCII, the ideographic space U+3000 read as a
 * space and ASCII letters lower-cased.  Then:
 *
 * 1. A word is a maximal run of [a-z0-9], with these exceptions, which
 *    keep tech terms whole:
 *    a. a '.' followed by a letter continues a word that already holds a
 *       letter: "node.js", "vue.js", "asp.net".  A word of digits alone is
 *       not continued this way, so list numbering ("2.Java") gives "2" and
 *       "java".  The price: a sentence ending with no space after its
 *       full stop ("Java.Python") gives one word, "java.python".
 *    b. a '.' between two digits continues a word: "3.5", "v1.2".
 *    c. a '.' followed by a letter, where no word is open, starts one:
 *       ".net".
 *    d. a word holding a letter, followed by "++" or "#", takes that
 *       suffix and ends there: "c++", "c#", "f#", "notepad++".  "1#"
 *       gives "1"; "c+" gives "c".
 *    Anything else ends a word.  A word longer than TEXT_TOKEN_BYTES_MAX
 *    bytes is cut to its first TEXT_TOKEN_BYTES_MAX bytes (a suffix that
 *    does not fit whole and a '.' left at the cut are dropped) and the
 *    rest of it yields nothing.
 * 2. A CJK run is a maximal run of ideographs in U+3400..U+4DBF,
 *    U+4E00..U+9FFF, U+F900..U+FAFF or U+20000..U+3FFFF; anything else,
 *    kana and CJK punctuation included, breaks it.  Every pair of
 *    neighbours gives a bigram.  TEXT_INDEX adds every character as a
 *    unigram; TEXT_QUERY gives the unigram only for a run of one.
 * 3. Everything else (punctuation, symbols, emoji, other scripts, Latin
 *    letters with accents) separates tokens and yields nothing.
 *
 * Positions.  A word takes one position and every CJK character takes
 * one; a bigram has the position of its first character and a unigram
 * that of its character, so in TEXT_INDEX a unigram and the bigram that
 * starts at the same character share a position.  A run of n characters
 * therefore covers n positions in both modes (TEXT_QUERY leaves the last
 * one unused when n > 1), and distances between tokens agree between a
 * document and a query.  Positions never decrease along the text.  They
 * are 32-bit and wrap after 2^32 positions, which needs a text of more
 * than 8 GiB, far beyond any message the protocol accepts.
 */
#include "text.h"

#include <string.h>
#include <xxhash.h>

/* Any byte of a 64-bit word with its top bit set is not ASCII. */
#define TEXT_HIGH_BITS 0x8080808080808080ULL

/* Length of the run of ASCII bytes that starts s[0..len). */
static size_t ascii_run(const unsigned char *s, size_t len)
{
	size_t i = 0;
	uint64_t word;

	while (len - i >= sizeof(word)) {
		memcpy(&word, s + i, sizeof(word));
		if (word & TEXT_HIGH_BITS)
			break;
		i += sizeof(word);
	}
	while (i < len && s[i] < 0x80)
		i++;
	return i;
}

/*
 * Length of the well-formed multi-byte sequence at s[0..avail), or 0.
 * The lead byte settles the length and narrows the second byte's range,
 * which is where overlongs (E0, F0), surrogates (ED) and code points past
 * U+10FFFF (F4) are caught; C0, C1 and F5..FF never lead.
 */
static size_t utf8_sequence(const unsigned char *s, size_t avail)
{
	unsigned char lead = s[0];
	unsigned char second_min = 0x80;
	unsigned char second_max = 0xBF;
	size_t n;

	if (lead < 0xC2 || lead > 0xF4)
		return 0;
	n = lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
	if (lead == 0xE0)
		second_min = 0xA0;
	else if (lead == 0xED)
		second_max = 0x9F;
	else if (lead == 0xF0)
		second_min = 0x90;
	else if (lead == 0xF4)
		second_max = 0x8F;
	if (avail < n || s[1] < second_min || s[1] > second_max)
		return 0;
	for (size_t k = 2; k < n; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
	}
	return n;
}

bool text_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	if (len == 0)
		return true;
	while (i < len) {
		i += ascii_run(u + i, len - i);
		while (i < len && u[i] >= 0x80) {
			size_t n = utf8_sequence(u + i, len - i);

			if (n == 0)
				return false;
			i += n;
		}
	}
	return true;
}

/*
 * If s[0..avail) starts with U+FF01..U+FF5E or U+3000, stores the ASCII
 * byte it folds to in *c and returns 3 (its length); otherwise returns 0.
 * U+FF01..U+FF3F are EF BC 81..BF and U+FF40..U+FF5E are EF BD 80..9E,
 * each at a fixed distance from its ASCII form.
 */
static inline size_t fold_fullwidth(const unsigned char *s, size_t avail,
				    unsigned char *c)
{
	if (avail < 3)
		return 0;
	if (s[0] == 0xEF) {
		if (s[1] == 0xBC && s[2] >= 0x81 && s[2] <= 0xBF) {
			*c = (unsigned char)(s[2] - 0x60);
			return 3;
		}
		if (s[1] == 0xBD && s[2] >= 0x80 && s[2] <= 0x9E) {
			*c = (unsigned char)(s[2] - 0x20);
			return 3;
		}
	} else if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) {
		*c = ' ';
		return 3;
	}
	return 0;
}

static inline bool is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

size_t text_normalize(const char *s, size_t len, char *out)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	size_t out_len = 0;
	size_t kept_len = 0;

	/* Folding only shortens, so out_len <= i and in place is safe. */
	while (i < len) {
		unsigned char c;
		size_t n = fold_fullwidth(u + i, len - i, &c);

		if (n == 0) {
			c = u[i];
			n = 1;
		}
		i += n;
		if (out_len == 0 && is_space(c))
			continue;
		out[out_len++] = (char)c;
		if (!is_space(c))
			kept_len = out_len;
	}
	return kept_len;
}

uint64_t text_term_id(const char *term, size_t len)
{
	return XXH3_64bits(term, len);
}

/* What one code point of the input is, for the tokeniser. */
enum unit_kind {
	UNIT_ASCII,	/* ASCII or a full-width form; c holds it folded */
	UNIT_CJK,	/* an ideograph in one of the CJK ranges */
	UNIT_OTHER,	/* anything else, or the end of the text */
};

struct unit {
	enum unit_kind kind;
	unsigned char c;
	size_t bytes;
};

static inline bool is_letter(unsigned char c)
{
	return c >= 'a' && c <= 'z';
}

static inline bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_cjk(uint32_t cp)
{
	return (cp >= 0x4E00 && cp <= 0x9FFF) ||
	       (cp >= 0x3400 && cp <= 0x4DBF) ||
	       (cp >= 0xF900 && cp <= 0xFAFF) ||
	       (cp >= 0x20000 && cp <= 0x3FFFF);
}

/*
 * Decodes the code point at s[0..avail), avail > 0.  The input is valid
 * UTF-8 by contract; a lead byte whose sequence would run past the end is
 * taken as a one-byte UNIT_OTHER so that no read leaves the buffer.
 */
static inline void unit_decode(const unsigned char *s, size_t avail,
			       struct unit *u)
{
	unsigned char lead = s[0];
	uint32_t cp;

	u->kind = UNIT_OTHER;
	u->bytes = 1;
	if (lead < 0x80) {
		u->kind = UNIT_ASCII;
		u->c = lead >= 'A' && lead <= 'Z' ? lead | 0x20 : lead;
		return;
	}
	if (lead >= 0xE0 && lead < 0xF0 && avail >= 3)
		u->bytes = 3;
	else if (lead >= 0xF0 && lead < 0xF8 && avail >= 4)
		u->bytes = 4;
	else if (lead >= 0xC0 && lead < 0xE0 && avail >= 2)
		u->bytes = 2;
	if (u->bytes < 3)
		return;
	if (fold_fullwidth(s, avail, &u->c)) {
		if (u->c >= 'A' && u->c <= 'Z')
			u->c |= 0x20;
		u->kind = UNIT_ASCII;
		return;
	}
	if (u->bytes == 3)
		cp = (uint32_t)(lead & 0x0F) << 12 |
		     (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
	else
		cp = (uint32_t)(lead & 0x07) << 18 |
		     (uint32_t)(s[1] & 0x3F) << 12 |
		     (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
	if (is_cjk(cp))
		u->kind = UNIT_CJK;
}

/* The tokeniser's state: at most one of a word and a CJK run is open. */
struct tokenizer {
	const unsigned char *s;
	size_t len;
	enum text_mode mode;
	text_token_fn fn;
	void *ctx;
	uint32_t position;
	/* The open word: its kept bytes, the last byte read into it (kept
	 * or cut) and whether it holds a letter. */
	bool word_open;
	bool word_has_letter;
	unsigned char word_last;
	size_t word_len;
	char word[TEXT_TOKEN_BYTES_MAX];
	/* The open CJK run: its length in characters and where its last
	 * character lies in s. */
	size_t run_chars;
	size_t run_last_at;
	size_t run_last_bytes;
};

static int emit(struct tokenizer *t, const char *term, size_t len,
		uint32_t position)
{
	return t->fn(t->ctx, text_term_id(term, len), term, len, position);
}

static inline void word_push(struct tokenizer *t, unsigned char c)
{
	if (t->word_len < TEXT_TOKEN_BYTES_MAX)
		t->word[t->word_len++] = (char)c;
	t->word_open = true;
	t->word_last = c;
	t->word_has_letter |= is_letter(c);
}

static void word_suffix(struct tokenizer *t, const char *suffix, size_t len)
{
	if (TEXT_TOKEN_BYTES_MAX - t->word_len < len)
		return;
	memcpy(t->word + t->word_len, suffix, len);
	t->word_len += len;
}

static int word_end(struct tokenizer *t)
{
	size_t len = t->word_len;

	if (!t->word_open)
		return 0;
	/* Only a cut can leave a '.' last; a word never ends on one. */
	if (t->word[len - 1] == '.')
		len--;
	t->word_open = false;
	t->word_has_letter = false;
	t->word_len = 0;
	return emit(t, t->word, len, t->position++);
}

static int run_end(struct tokenizer *t)
{
	size_t chars = t->run_chars;

	if (chars == 0)
		return 0;
	t->run_chars = 0;
	if (t->mode != TEXT_QUERY || chars > 1)
		return 0;
	return emit(t, (const char *)t->s + t->run_last_at,
		    t->run_last_bytes, t->position - 1);
}

/* Ends whichever of a word and a CJK run is open. */
static int end_open(struct tokenizer *t)
{
	int rc = word_end(t);

	return rc != 0 ? rc : run_end(t);
}

static int on_cjk(struct tokenizer *t, size_t at, size_t bytes)
{
	const char *s = (const char *)t->s;
	int rc = word_end(t);

	if (rc == 0 && t->run_chars > 0)
		rc = emit(t, s + t->run_last_at, at + bytes - t->run_last_at,
			  t->position - 1);
	if (rc == 0 && t->mode == TEXT_INDEX)
		rc = emit(t, s + at, bytes, t->position);
	t->run_chars++;
	t->run_last_at = at;
	t->run_last_bytes = bytes;
	t->position++;
	return rc;
}

/* Decodes the unit at s[at], or UNIT_OTHER past the end. */
static inline void peek(const struct tokenizer *t, size_t at, struct unit *u)
{
	if (at >= t->len) {
		u->kind = UNIT_OTHER;
		u->bytes = 0;
		return;
	}
	unit_decode(t->s + at, t->len - at, u);
}

/* Rules 1a to 1c of the file head; next is the byte after the '.'. */
static int on_dot(struct tokenizer *t, size_t next)
{
	struct unit u;
	bool letter_next;
	bool digit_next;

	peek(t, next, &u);
	letter_next = u.kind == UNIT_ASCII && is_letter(u.c);
	digit_next = u.kind == UNIT_ASCII && is_digit(u.c);
	if (!t->word_open) {
		if (letter_next)
			word_push(t, '.');
		return 0;
	}
	if ((letter_next && t->word_has_letter) ||
	    (digit_next && is_digit(t->word_last))) {
		word_push(t, '.');
		return 0;
	}
	return word_end(t);
}

/* Rule 1d for "++"; consumes the second '+' by advancing *next. */
static int on_plus(struct tokenizer *t, size_t *next)
{
	struct unit u;

	if (!t->word_open || !t->word_has_letter)
		return word_end(t);
	peek(t, *next, &u);
	if (u.kind == UNIT_ASCII && u.c == '+') {
		*next += u.bytes;
		word_suffix(t, "++", 2);
	}
	return word_end(t);
}

/* An ASCII unit (already folded); *next is the byte after it. */
static int on_ascii(struct tokenizer *t, unsigned char c, size_t *next)
{
	int rc = run_end(t);

	if (rc != 0)
		return rc;
	if (is_letter(c) || is_digit(c)) {
		word_push(t, c);
		return 0;
	}
	switch (c) {
	case '.':
		return on_dot(t, *next);
	case '+':
		return on_plus(t, next);
	case '#':
		if (t->word_open && t->word_has_letter)
			word_suffix(t, "#", 1);
		return word_end(t);
	default:
		return word_end(t);
	}
}

int text_tokenize(const char *s, size_t len, enum text_mode mode,
		  text_token_fn fn, void *ctx)
{
	struct tokenizer t = {
		.s = (const unsigned char *)s,
		.len = len,
		.mode = mode,
		.fn = fn,
		.ctx = ctx,
	};
	size_t at = 0;
	int rc = 0;

	while (rc == 0 && at < len) {
		struct unit u;
		size_t next;

		unit_decode(t.s + at, len - at, &u);
		next = at + u.bytes;
		if (u.kind == UNIT_ASCII)
			rc = on_ascii(&t, u.c, &next);
		else if (u.kind == UNIT_CJK)
			rc = on_cjk(&t, at, u.bytes);
		else
			rc = end_open(&t);
		at = next;
	}
	return rc != 0 ? rc : end_open(&t);
}
