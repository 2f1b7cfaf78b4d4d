/*
 * anchor_xapian: the Xapian side of the posting search comparison.  Not
 * part of the daemon; bench/search-anchors builds and runs it.
 *
 * Reads a matchgen JSON Lines data set, indexes the postings open at
 * --now (closes applied) into a Glass database in a scratch directory:
 * title, skills and description through a TermGenerator with
 * FLAG_CJK_NGRAM (within-document frequency increments 3, 2 and 1, the
 * field weights matchd uses), and a boolean term per division the
 * posting lies inside ("XC" + county, city and province code).  Then runs
 * the query file (see index_bench.c) single-threaded: the words through
 * a QueryParser with FLAG_CJK_NGRAM and AND as the default operator, the
 * division as an OP_FILTER, BM25 weighting, top 20.  Prints build time,
 * queries/s and p50/p99 latency, median of --runs passes.
 */
#include <xapian.h>

#include <jansson.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0)
{
	return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Query {
	std::string words;
	std::string city;
};

std::string str_of(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s ? s : "";
}

/* The division codes a posting at code lies inside. */
std::vector<std::string> divisions(const std::string &code)
{
	std::vector<std::string> out;

	if (code.size() != 6)
		return out;
	out.push_back(code);
	std::string city = code.substr(0, 4) + "00";
	std::string prov = code.substr(0, 2) + "0000";
	if (city != code)
		out.push_back(city);
	if (prov != city)
		out.push_back(prov);
	return out;
}

std::unordered_set<std::string> closed_ids(const char *path)
{
	std::unordered_set<std::string> ids;
	std::ifstream in(path);
	std::string line;

	while (std::getline(in, line)) {
		if (line.find("\"kind\":\"posting.close\"") == std::string::npos)
			continue;
		json_t *j = json_loads(line.c_str(), 0, nullptr);
		ids.insert(str_of(j, "id"));
		json_decref(j);
	}
	return ids;
}

void add_posting(Xapian::WritableDatabase &db, Xapian::TermGenerator &tg,
		 json_t *j)
{
	Xapian::Document doc;
	json_t *v;
	size_t i;

	tg.set_document(doc);
	tg.index_text(str_of(j, "title"), 3);
	json_array_foreach(json_object_get(j, "skills"), i, v) {
		const char *s = json_string_value(v);

		if (s) {
			tg.increase_termpos();
			tg.index_text(s, 2);
		}
	}
	tg.increase_termpos();
	tg.index_text(str_of(j, "description"), 1);
	for (const std::string &d : divisions(str_of(j, "city")))
		doc.add_boolean_term("XC" + d);
	doc.set_data(str_of(j, "id"));
	db.add_document(doc);
}

size_t build(const char *data, const std::string &dir, long long now)
{
	std::unordered_set<std::string> closed = closed_ids(data);
	Xapian::WritableDatabase db(dir, Xapian::DB_CREATE_OR_OVERWRITE);
	Xapian::TermGenerator tg;
	std::ifstream in(data);
	std::string line;
	size_t n = 0;

	tg.set_flags(Xapian::TermGenerator::FLAG_CJK_NGRAM);
	while (std::getline(in, line)) {
		if (line.find("\"kind\":\"posting\"") == std::string::npos)
			continue;
		json_t *j = json_loads(line.c_str(), 0, nullptr);
		json_t *exp = json_object_get(j, "expires_at");
		bool open = !closed.count(str_of(j, "id")) &&
			    (!exp || json_integer_value(exp) > now);

		if (open) {
			add_posting(db, tg, j);
			n++;
		}
		json_decref(j);
	}
	db.commit();
	return n;
}

std::vector<Query> read_queries(const char *path)
{
	std::vector<Query> qs;
	std::ifstream in(path);
	std::string line;

	while (std::getline(in, line)) {
		size_t tab = line.find('\t');

		if (tab == std::string::npos)
			continue;
		qs.push_back({ line.substr(0, tab), line.substr(tab + 1) });
	}
	return qs;
}

/*
 * The AND of the words, each parsed alone: Xapian 1.4's parser refuses
 * some mixes of Latin and CJK words in one string ("Python 销售工程师
 * SQL" is a parse error), while each word alone parses.  No boolean or
 * phrase syntax: the words are words ("C++", "A/B测试"), as matchd reads
 * them.
 */
Xapian::Query parse(Xapian::QueryParser &qp, const std::string &words)
{
	std::vector<Xapian::Query> parts;
	size_t at = 0;

	while (at < words.size()) {
		size_t end = words.find(' ', at);

		if (end == std::string::npos)
			end = words.size();
		if (end > at)
			parts.push_back(qp.parse_query(
				words.substr(at, end - at),
				Xapian::QueryParser::FLAG_CJK_NGRAM));
		at = end + 1;
	}
	return Xapian::Query(Xapian::Query::OP_AND, parts.begin(),
			     parts.end());
}

double percentile(std::vector<double> v, double p)
{
	std::sort(v.begin(), v.end());
	return v[(size_t)(p * (double)(v.size() - 1))];
}

} // namespace

int main(int argc, char **argv)
{
	const char *data = nullptr, *queries = nullptr, *dir = "/tmp/anchor-xapian";
	long long now = (long long)time(nullptr);
	int runs = 5;
	bool reuse = false;

	for (int i = 1; i < argc && !strcmp(argv[i], "--reuse"); i++)
		reuse = true;
	for (int i = 1 + reuse; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--data"))
			data = argv[i + 1];
		else if (!strcmp(argv[i], "--queries"))
			queries = argv[i + 1];
		else if (!strcmp(argv[i], "--now"))
			now = atoll(argv[i + 1]);
		else if (!strcmp(argv[i], "--runs"))
			runs = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--dir"))
			dir = argv[i + 1];
	}
	if (!data || !queries || runs < 1) {
		fprintf(stderr, "usage: anchor_xapian [--reuse] --data FILE "
			"--queries FILE [--now UNIX] [--runs N] [--dir DIR]\n");
		return 2;
	}
	/* --reuse keeps a database an earlier run built (build time 0). */
	Clock::time_point t0 = Clock::now();
	size_t n = reuse ? Xapian::Database(dir).get_doccount()
			 : build(data, dir, now);
	double build_s = reuse ? 0.0 : seconds_since(t0);
	std::vector<Query> qs = read_queries(queries);
	Xapian::Database db(dir);
	Xapian::QueryParser qp;
	Xapian::Enquire enq(db);
	std::vector<double> qps, p50, p99;
	size_t nonempty = 0;

	qp.set_default_op(Xapian::Query::OP_AND);
	qp.set_database(db);
	enq.set_weighting_scheme(Xapian::BM25Weight());
	for (int r = 0; r < runs; r++) {
		std::vector<double> lat;
		Clock::time_point start = Clock::now();

		nonempty = 0;
		for (const Query &q : qs) {
			Clock::time_point s = Clock::now();
			/* No boolean or phrase syntax: the words are words
			 * ("C++", "A/B测试"), as matchd reads them. */
			Xapian::Query xq;

			try {
				xq = parse(qp, q.words);
			} catch (const Xapian::Error &e) {
				fprintf(stderr, "query \"%s\": %s\n",
					q.words.c_str(),
					e.get_description().c_str());
				continue;
			}
			if (!q.city.empty())
				xq = Xapian::Query(Xapian::Query::OP_FILTER, xq,
						   Xapian::Query("XC" + q.city));
			enq.set_query(xq);
			Xapian::MSet m = enq.get_mset(0, 20);
			nonempty += m.size() > 0;
			lat.push_back(seconds_since(s) * 1e6);
		}
		qps.push_back((double)qs.size() / seconds_since(start));
		p50.push_back(percentile(lat, 0.5));
		p99.push_back(percentile(lat, 0.99));
		printf("run %d: %.0f queries/s, p50 %.1f us, p99 %.1f us\n",
		       r + 1, qps.back(), p50.back(), p99.back());
	}
	printf("xapian %s: %zu postings built in %.3f s; %zu queries (%zu "
	       "with results), median of %d runs: %.0f queries/s, p50 %.1f "
	       "us, p99 %.1f us\n", Xapian::version_string(), n, build_s,
	       qs.size(), nonempty, runs, percentile(qps, 0.5),
	       percentile(p50, 0.5), percentile(p99, 0.5));
	return 0;
}
