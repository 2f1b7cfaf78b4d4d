/*
 * test_text: UTF-8 validity, normalisation and tokenisation tables for the
 * text module, plus an exhaustive cross-check of the validator against a
 * reference encoder over every code point and every two-byte string.
 */
#include "check.h"
#include "text.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A test string with an explicit length, so NUL bytes can be part of it. */
struct bytes {
	const char *s;
	size_t len;
};

#define B(lit) { (lit), sizeof(lit) - 1 }

static void test_valid_table(void)
{
	static const struct bytes good[] = {
		B(""), B("a"), B("\x00"), B("plain ascii text, longer than 8"),
		B("\xC2\x80"), B("\xC3\xA9"), B("\xDF\xBF"),
		B("\xE0\xA0\x80"), B("中文"), B("\xED\x9F\xBF"),
		B("\xEE\x80\x80"), B("\xEF\xBF\xBF"), B("\xEF\xBC\x88"),
		B("\xF0\x90\x80\x80"), B("\xF0\x9F\x98\x80"),
		B("\xF4\x8F\xBF\xBF"), B("\xF0\xA0\x80\x80"),
		B("abcdefgh中ijklmnopqrstuvwxyz\xF0\x9F\x98\x80 end"),
		B("1234567\xC3\xA9"), B("12345678\xC3\xA9"),
	};
	static const struct bytes bad[] = {
		/* overlong */
		B("\xC0\x80"), B("\xC0\xAF"), B("\xC1\xBF"),
		B("\xE0\x80\x80"), B("\xE0\x9F\xBF"),
		B("\xF0\x80\x80\x80"), B("\xF0\x8F\xBF\xBF"),
		/* surrogates */
		B("\xED\xA0\x80"), B("\xED\xAF\xBF"), B("\xED\xB0\x80"),
		B("\xED\xBF\xBF"),
		/* above U+10FFFF */
		B("\xF4\x90\x80\x80"), B("\xF4\xBF\xBF\xBF"),
		B("\xF5\x80\x80\x80"), B("\xF7\xBF\xBF\xBF"),
		B("\xF8\x88\x80\x80\x80"), B("\xFC\x84\x80\x80\x80\x80"),
		B("\xFE"), B("\xFF"),
		/* stray continuation bytes */
		B("\x80"), B("\xBF"), B("a\x80" "b"), B("中\x80"),
		B("\xC3\xA9\xA9"),
		/* truncated */
		B("\xC3"), B("\xE4\xB8"), B("\xE4"), B("\xF0\x9F\x98"),
		B("\xF0\x9F"), B("abc\xE4\xB8"),
		/* continuation missing */
		B("\xC3\x41"), B("\xE4\x41\xAD"), B("\xE4\xB8\x41"),
		B("\xF0\x9F\x41\x80"), B("\xF0\x9F\x98\x41"),
		/* found after a word-at-a-time ASCII run */
		B("abcdefghijklmnop\x80"), B("abcdefghijklmno\xE4\xB8"),
		B("abcdefgh\xED\xA0\x80" "abcdefgh"),
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!text_utf8_valid(good[i].s, good[i].len))
			fprintf(stderr, "valid table row %zu\n", i);
		CHECK(text_utf8_valid(good[i].s, good[i].len));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (text_utf8_valid(bad[i].s, bad[i].len))
			fprintf(stderr, "invalid table row %zu\n", i);
		CHECK(!text_utf8_valid(bad[i].s, bad[i].len));
	}
	CHECK(text_utf8_valid(NULL, 0));
}

/* Shortest UTF-8 form of cp into out; returns its length. */
static size_t encode(uint32_t cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xC0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xE0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		out[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (unsigned char)(0xF0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
	out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
	out[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Every code point's shortest form is valid except the surrogates'. */
static void test_valid_every_code_point(void)
{
	int wrong = 0;

	for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
		unsigned char buf[4];
		size_t n = encode(cp, buf);
		bool want = cp < 0xD800 || cp > 0xDFFF;

		if (text_utf8_valid((const char *)buf, n) != want)
			wrong++;
	}
	CHECK_EQ_INT(wrong, 0);
}

/*
 * Every two-byte string: valid when both are ASCII, or when it is the
 * shortest form of U+0080..U+07FF (lead C2..DF, then a continuation).
 */
static void test_valid_every_pair(void)
{
	int wrong = 0;

	for (unsigned a = 0; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++) {
			char buf[2] = { (char)a, (char)b };
			bool want = (a < 0x80 && b < 0x80) ||
				    (a >= 0xC2 && a <= 0xDF &&
				     b >= 0x80 && b <= 0xBF);

			if (text_utf8_valid(buf, 2) != want)
				wrong++;
		}
	}
	CHECK_EQ_INT(wrong, 0);
}

struct norm_case {
	const char *in;
	const char *want;
};

static void test_normalize_table(void)
{
	static const struct norm_case cases[] = {
		{ "ＡＢＣｘｙｚ", "ABCxyz" },
		{ "０１２３４５６７８９", "0123456789" },
		{ "（Ｈ１２３４５６７（８））", "(H1234567(8))" },
		{ "广州，番禺：１号！", "广州,番禺:1号!" },
		{ "＂＃＄％＆＇＊＋－．／", "\"#$%&'*+-./" },
		{ "；＜＝＞？＠［＼］＾＿｀｛｜｝～",
		  ";<=>?@[\\]^_`{|}~" },
		{ "Ｃ＋＋", "C++" },
		{ "a　b", "a b" },
		{ "　　居中　　", "居中" },
		{ " \t\n\v\f\rtrim me \r\n\t ", "trim me" },
		{ "你好。再见、", "你好。再见、" },
		{ "ABC abc", "ABC abc" },
		{ "", "" },
		{ "   ", "" },
		{ "　", "" },
		/* neighbours of the folded ranges stay as they are */
		{ "\xEF\xBC\x80", "\xEF\xBC\x80" },		/* U+FF00 */
		{ "\xEF\xBD\x9F\xEF\xBD\xA1", "\xEF\xBD\x9F\xEF\xBD\xA1" },
		{ "\xEF\xBF\xBD", "\xEF\xBF\xBD" },		/* U+FFFD */
		{ "\xE3\x80\x81", "\xE3\x80\x81" },		/* U+3001 */
		{ "\xE2\x80\x83x", "\xE2\x80\x83x" },	/* em space */
		{ "é ü", "é ü" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[128];
		size_t len = text_normalize(cases[i].in, strlen(cases[i].in),
					    out);

		out[len] = '\0';
		CHECK_EQ_STR(out, cases[i].want);
	}
}

static void test_normalize_in_place(void)
{
	char buf[] = "　ＰＹＴＨＯＮ３，　ｇｏ　";
	char nul[] = { ' ', 'a', '\0', 'b', ' ' };
	size_t len = text_normalize(buf, strlen(buf), buf);

	buf[len] = '\0';
	CHECK_EQ_STR(buf, "PYTHON3, go");
	len = text_normalize(nul, sizeof(nul), nul);
	CHECK_EQ_INT(len, 3);
	CHECK(memcmp(nul, "a\0b", 3) == 0);
	CHECK_EQ_INT(text_normalize(NULL, 0, NULL), 0);
}

/* Collects tokens as "term@position " into text, and checks each call. */
struct collect {
	char text[1024];
	size_t len;
	int calls;
	int stop_at;		/* return 7 on this call (1-based), 0: never */
	int bad_ids;
	int bad_positions;
	uint32_t last_position;
	uint64_t last_id;
};

static int collect_token(void *ctx, uint64_t term_id, const char *term,
			 size_t term_len, uint32_t position)
{
	struct collect *c = ctx;
	int n;

	if (term_id != text_term_id(term, term_len))
		c->bad_ids++;
	if (c->calls > 0 && position < c->last_position)
		c->bad_positions++;
	c->calls++;
	c->last_position = position;
	c->last_id = term_id;
	n = snprintf(c->text + c->len, sizeof(c->text) - c->len,
		     "%.*s@%u ", (int)term_len, term, (unsigned)position);
	if (n > 0 && (size_t)n < sizeof(c->text) - c->len)
		c->len += (size_t)n;
	return c->calls == c->stop_at ? 7 : 0;
}

/* Tokenises s and returns "term@position term@position" without the last
 * space, in a static buffer. */
static const char *tokens(const char *s, enum text_mode mode)
{
	static struct collect c;
	int rc;

	memset(&c, 0, sizeof(c));
	rc = text_tokenize(s, strlen(s), mode, collect_token, &c);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(c.bad_ids, 0);
	CHECK_EQ_INT(c.bad_positions, 0);
	if (c.len > 0)
		c.text[c.len - 1] = '\0';
	return c.text;
}

struct token_case {
	const char *in;
	const char *query;	/* expected in TEXT_QUERY */
	const char *index;	/* expected in TEXT_INDEX, NULL: as query */
};

static const struct token_case token_cases[] = {
	/* Chinese and mixed text */
	{ "工程师", "工程@0 程师@1",
	  "工@0 工程@0 程@1 程师@1 师@2" },
	{ "C++开发工程师", "c++@0 开发@1 发工@2 工程@3 程师@4",
	  "c++@0 开@1 开发@1 发@2 发工@2 工@3 工程@3 程@4 程师@4 师@5" },
	{ "Excel 人工智能 Flink",
	  "excel@0 人工@1 工智@2 智能@3 flink@5",
	  "excel@0 人@1 人工@1 工@2 工智@2 智@3 智能@3 能@4 flink@5" },
	{ "熟悉Java，3年以上经验",
	  "熟悉@0 java@2 3@3 年以@4 以上@5 上经@6 经验@7",
	  "熟@0 熟悉@0 悉@1 java@2 3@3 年@4 年以@4 以@5 以上@5 上@6 "
	  "上经@6 经@7 经验@7 验@8" },
	/* one-character queries */
	{ "会", "会@0", "会@0" },
	{ "师", "师@0", "师@0" },
	{ "会 计", "会@0 计@1", "会@0 计@1" },
	{ "会计", "会计@0", "会@0 会计@0 计@1" },
	/* runs broken by punctuation, kana and full-width digits */
	{ "开发。测试", "开发@0 测试@2", "开@0 开发@0 发@1 测@2 测试@2 试@3" },
	{ "日本の会社", "日本@0 会社@2", "日@0 日本@0 本@1 会@2 会社@2 社@3" },
	{ "第１名", "第@0 1@1 名@2", NULL },
	/* ideographs outside the main block */
	{ "\xE3\x90\x80\xE4\xB8\xAD", "\xE3\x90\x80\xE4\xB8\xAD@0",
	  "\xE3\x90\x80@0 \xE3\x90\x80\xE4\xB8\xAD@0 \xE4\xB8\xAD@1" },
	{ "中\xF0\xA0\x80\x80", "中\xF0\xA0\x80\x80@0",
	  "中@0 中\xF0\xA0\x80\x80@0 \xF0\xA0\x80\x80@1" },
	{ "\xEF\xA4\x80", "\xEF\xA4\x80@0", NULL },
	{ "\xE4\xB7\x80", "", NULL },	/* U+4DC0 is a hexagram symbol */
	/* full-width input */
	{ "Ｃ＋＋", "c++@0", NULL },
	{ "ＪＡＶＡ　ｐｙｔｈｏｎ", "java@0 python@1", NULL },
	{ "Ｎｏｄｅ．ｊｓ，Ｃ＃", "node.js@0 c#@1", NULL },
	/* tech terms */
	{ "C#, F# and .NET", "c#@0 f#@1 and@2 .net@3", NULL },
	{ "Node.js / Vue.js / ASP.NET", "node.js@0 vue.js@1 asp.net@2",
	  NULL },
	{ "notepad++ g++ c+ c+++", "notepad++@0 g++@1 c@2 c++@3", NULL },
	{ "C++11 c#.net", "c++@0 11@1 c#@2 .net@3", NULL },
	{ "熟悉.NET/C#开发", "熟悉@0 .net@2 c#@3 开发@4",
	  "熟@0 熟悉@0 悉@1 .net@2 c#@3 开@4 开发@4 发@5" },
	{ "1#楼", "1@0 楼@1", NULL },
	{ "node.js. end.", "node.js@0 end@1", NULL },
	{ "a..net", "a@0 .net@1", NULL },
	/* numbers and list numbering */
	{ "3.5年 v1.2 2021.06", "3.5@0 年@1 v1.2@2 2021.06@3", NULL },
	{ "1.Java 2.熟悉Linux", "1@0 java@1 2@2 熟悉@3 linux@5",
	  "1@0 java@1 2@2 熟@3 熟悉@3 悉@4 linux@5" },
	{ ".5 java.1", "5@0 java@1 1@2", NULL },
	/* emoji, symbols and other scripts separate */
	{ "java😀python", "java@0 python@1", NULL },
	{ "会😀计", "会@0 计@1", "会@0 计@1" },
	{ "naïve Ω café", "na@0 ve@1 caf@2", NULL },
	{ "SQL_Server-2019", "sql@0 server@1 2019@2", NULL },
	/* nothing to find */
	{ "", "", "" },
	{ "，。！ \t", "", "" },
};

static void test_tokenize_table(void)
{
	size_t n = sizeof(token_cases) / sizeof(token_cases[0]);

	for (size_t i = 0; i < n; i++) {
		const struct token_case *tc = &token_cases[i];
		const char *index = tc->index ? tc->index : tc->query;

		CHECK_EQ_STR(tokens(tc->in, TEXT_QUERY), tc->query);
		CHECK_EQ_STR(tokens(tc->in, TEXT_INDEX), index);
	}
}

static void test_tokenize_long_words(void)
{
	char in[256];
	char want[256];

	/* 100 letters: the first 64 are kept, the rest yield nothing. */
	memset(in, 'A', 100);
	strcpy(in + 100, " b");
	memset(want, 'a', TEXT_TOKEN_BYTES_MAX);
	strcpy(want + TEXT_TOKEN_BYTES_MAX, "@0 b@1");
	CHECK_EQ_STR(tokens(in, TEXT_QUERY), want);

	/* A suffix that does not fit whole is dropped. */
	memset(in, 'x', 63);
	strcpy(in + 63, "++ y");
	memset(want, 'x', 63);
	strcpy(want + 63, "@0 y@1");
	CHECK_EQ_STR(tokens(in, TEXT_QUERY), want);

	/* So is a '.' left at the cut. */
	memset(in, 'x', 63);
	strcpy(in + 63, ".js");
	memset(want, 'x', 63);
	strcpy(want + 63, "@0");
	CHECK_EQ_STR(tokens(in, TEXT_QUERY), want);

	/* Exactly the limit is kept whole. */
	memset(in, 'q', 62);
	strcpy(in + 62, "++");
	memset(want, 'q', 62);
	strcpy(want + 62, "++@0");
	CHECK_EQ_STR(tokens(in, TEXT_INDEX), want);
}

static uint64_t only_id(const char *s)
{
	struct collect c;

	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(text_tokenize(s, strlen(s), TEXT_QUERY, collect_token,
				   &c), 0);
	CHECK_EQ_INT(c.calls, 1);
	return c.last_id;
}

static void test_term_ids(void)
{
	CHECK(only_id("ＪＡＶＡ") == text_term_id("java", 4));
	CHECK(only_id("Java") == only_id("jAvA"));
	CHECK(only_id("Ｃ＋＋") == text_term_id("c++", 3));
	CHECK(only_id("会计") == text_term_id("会计", strlen("会计")));
	CHECK(only_id("c++") != only_id("c#"));
	CHECK(text_term_id("java", 4) != text_term_id("javb", 4));
}

static void test_tokenize_stop(void)
{
	struct collect c;
	const char *s = "one two three 四五六";

	memset(&c, 0, sizeof(c));
	c.stop_at = 2;
	CHECK_EQ_INT(text_tokenize(s, strlen(s), TEXT_INDEX, collect_token,
				   &c), 7);
	CHECK_EQ_INT(c.calls, 2);
	CHECK_EQ_STR(c.text, "one@0 two@1 ");

	/* Stopping inside a CJK run, and on the trailing lone unigram. */
	memset(&c, 0, sizeof(c));
	c.stop_at = 3;
	CHECK_EQ_INT(text_tokenize(s, strlen(s), TEXT_INDEX, collect_token,
				   &c), 7);
	CHECK_EQ_INT(c.calls, 3);
	memset(&c, 0, sizeof(c));
	c.stop_at = 1;
	CHECK_EQ_INT(text_tokenize("会", 3, TEXT_QUERY, collect_token, &c),
		     7);
	CHECK_EQ_INT(c.calls, 1);
}

/* The contract is valid UTF-8, but a broken tail must not be read past. */
static void test_tokenize_truncated_input(void)
{
	static const char *tails[] = {
		"java\xE4\xB8", "中\xE4", "\xF0\x9F\x98", "\xEF\xBC", "\xC3",
		"abc\x80\xFF",
	};

	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		size_t len = strlen(tails[i]);
		char *exact = malloc(len);	/* no NUL after it */
		struct collect c;

		CHECK(exact != NULL);
		if (!exact)
			continue;
		memcpy(exact, tails[i], len);
		memset(&c, 0, sizeof(c));
		CHECK_EQ_INT(text_tokenize(exact, len, TEXT_INDEX,
					   collect_token, &c), 0);
		CHECK(!text_utf8_valid(exact, len));
		free(exact);
	}
	CHECK_EQ_STR(tokens("java\xE4\xB8", TEXT_QUERY), "java@0");
}

int main(void)
{
	test_valid_table();
	test_valid_every_code_point();
	test_valid_every_pair();
	test_normalize_table();
	test_normalize_in_place();
	test_tokenize_table();
	test_tokenize_long_words();
	test_term_ids();
	test_tokenize_stop();
	test_tokenize_truncated_input();
	return check_exit("test_text");
}
