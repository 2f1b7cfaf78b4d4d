/*
 * gen: the synthetic data set generator.  See gen.h for the contract and
 * docs/data.md for the model and the reasons behind its numbers.
 *
 * Layout of this file: the random streams; the tables read from data/
 * (categories, completeness items) and the indexes built over ref (leaf
 * divisions, majors by class); the JSON writer; then one maker per record
 * kind.  Each record draws from its own stream, keyed by the seed, its
 * kind and its index, so records can be made in any order and a resume can
 * remake its student instead of storing a million of them.
 */
#include "gen.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ref.h"

/* ---------------------------------------------------------------------
 * Random streams: splitmix64 to seed, xoshiro256** to draw.
 */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl64(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return out;
}

/* The record kinds that own a stream; part of every stream's key. */
enum stream_kind {
	STREAM_COMPANY = 1,
	STREAM_STUDENT,
	STREAM_RESUME,
	STREAM_POSTING,
};

static void rng_stream(struct rng *r, uint64_t seed, enum stream_kind kind,
		       uint64_t index)
{
	uint64_t x = seed ^ ((uint64_t)kind << 56) ^
		     (index * 0xd1b54a32d192ed03ull);

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

/* Uniform in [0, n); n >= 1.  The multiply-shift bias is below 2^-32. */
static uint32_t rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [lo, hi]. */
static int64_t rng_range(struct rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)rng_below(r, (uint32_t)(hi - lo + 1));
}

static double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static bool rng_chance(struct rng *r, double p)
{
	return rng_unit(r) < p;
}

/* ---------------------------------------------------------------------
 * Weighted choices: a cumulative table searched by bisection.
 */

struct cdf {
	double *cum;  /* cum[i] = share of entries 0..i; cum[n - 1] == 1 */
	uint32_t n;
};

/* Builds the table from weights (n >= 1, total > 0).  Returns 0 or
 * -ENOMEM / -EINVAL. */
static int cdf_build(struct cdf *c, const double *weights, uint32_t n)
{
	double total = 0;

	for (uint32_t i = 0; i < n; i++)
		total += weights[i];
	if (n == 0 || !(total > 0))
		return -EINVAL;
	c->cum = malloc(n * sizeof(*c->cum));
	if (!c->cum)
		return -ENOMEM;
	c->n = n;
	double run = 0;
	for (uint32_t i = 0; i < n; i++) {
		run += weights[i];
		c->cum[i] = run / total;
	}
	c->cum[n - 1] = 1.0;
	return 0;
}

/* Weights 1 / (rank + 1)^s: the first entry is the most popular. */
static int cdf_zipf(struct cdf *c, uint32_t n, double s)
{
	double *w = malloc((n ? n : 1) * sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		w[i] = 1.0 / pow((double)(i + 1), s);
	rc = cdf_build(c, w, n);
	free(w);
	return rc;
}

static uint32_t cdf_pick(const struct cdf *c, struct rng *r)
{
	double u = rng_unit(r);
	uint32_t lo = 0, hi = c->n - 1;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (c->cum[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void cdf_free(struct cdf *c)
{
	free(c->cum);
	c->cum = NULL;
	c->n = 0;
}

/* ---------------------------------------------------------------------
 * Text pieces: a string view, a list of them, a bounded builder.
 */

struct str {
	const char *s;
	uint32_t len;
};

#define STR(lit) ((struct str){ (lit), sizeof(lit) - 1 })

/* A vocabulary list in popularity order, with its Zipf table. */
struct list {
	struct str *items;
	uint32_t n;
	struct cdf zipf;
};

/* Zipf exponent of skills, titles and duties within one category: the
 * first few words dominate, the tail still shows up. */
#define VOCAB_ZIPF_S 0.9

static struct str list_pick(const struct list *l, struct rng *r)
{
	return l->items[cdf_pick(&l->zipf, r)];
}

/* Attempts per distinct draw: small lists may hold fewer distinct words
 * than asked for, and then the list simply comes out shorter. */
#define DRAW_TRIES 8

/* A word of l other than a (a itself when l has nothing else). */
static struct str list_pick_other(const struct list *l, struct rng *r,
				  struct str a)
{
	for (int t = 0; t < DRAW_TRIES; t++) {
		struct str b = list_pick(l, r);

		if (b.s != a.s)
			return b;
	}
	return a;
}

/* Longest text made for one field; every piece appended below is far
 * shorter, and a piece that does not fit is dropped whole so the text
 * stays valid UTF-8. */
#define SB_BYTES 2048

struct sb {
	char buf[SB_BYTES];
	size_t len;
};

static bool str_eq(struct str a, const char *b)
{
	return strlen(b) == a.len && memcmp(a.s, b, a.len) == 0;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static void sb_add(struct sb *b, const char *s, size_t len)
{
	if (len > SB_BYTES - b->len)
		return;
	memcpy(b->buf + b->len, s, len);
	b->len += len;
}

static void sb_str(struct sb *b, struct str s)
{
	sb_add(b, s.s, s.len);
}

static void sb_cstr(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* Picks one of n C strings uniformly. */
static const char *pick_cstr(struct rng *r, const char *const *v, size_t n)
{
	return v[rng_below(r, (uint32_t)n)];
}

#define PICK(r, arr) pick_cstr((r), (arr), sizeof(arr) / sizeof((arr)[0]))

/* ---------------------------------------------------------------------
 * Fixed vocabularies.  Institution names are real Guangdong colleges and
 * universities (public knowledge); the rest is written for this project.
 */

static const char *const schools_zk[] = {
	"深圳职业技术大学", "广州番禺职业技术学院", "广东轻工职业技术学院",
	"广东交通职业技术学院", "顺德职业技术学院", "广州铁路职业技术学院",
	"广东科学技术职业学院", "广东机电职业技术学院", "广州城市职业学院",
	"深圳信息职业技术学院", "广东农工商职业技术学院", "中山职业技术学院",
	"东莞职业技术学院", "佛山职业技术学院", "广东水利电力职业技术学院",
	"广东工贸职业技术学院",
	"广州民航职业技术学院", "广东邮电职业技术学院",
	"广州科技职业技术大学", "广东省外语艺术职业学院",
};

static const char *const schools_bk[] = {
	"中山大学", "华南理工大学", "暨南大学", "华南师范大学", "深圳大学",
	"广东工业大学", "广州大学", "南方科技大学", "广东外语外贸大学",
	"汕头大学", "广州医科大学", "南方医科大学", "广东财经大学",
	"华南农业大学", "广州中医药大学", "广东海洋大学", "五邑大学",
	"佛山大学", "东莞理工学院", "韶关学院", "嘉应学院", "岭南师范学院",
	"惠州学院", "肇庆学院", "韩山师范学院", "广东石油化工学院",
	"仲恺农业工程学院", "广东技术师范大学", "广东药科大学",
	"广东医科大学", "广东金融学院", "广州美术学院",
};

/* Graduate schools: the first 14 entries of schools_bk. */
#define SCHOOLS_GRADUATE 14

static const char *const edu_names[] = { "专科", "本科", "硕士", "博士" };

/* Salary multiplier by education over a 本科 graduate's. */
static const double edu_salary[] = { 0.72, 1.0, 1.35, 1.75 };

/* Years from enrolment to graduation, by education. */
static const int edu_years[] = { 3, 4, 3, 4 };

static const char *const politicals[] = {
	"共青团员", "中共党员", "中共预备党员", "群众",
};

/* Political mix in percent, per education (rows) and status (columns). */
static const double political_mix[4][4] = {
	{ 72, 4, 4, 20 },
	{ 68, 8, 7, 17 },
	{ 50, 25, 8, 17 },
	{ 33, 42, 5, 20 },
};

static const char *const sizes[] = {
	"少于50人", "50-99人", "100-499人", "500-999人", "1000-9999人",
	"10000人以上",
};

static const char *const brand_chars[] = {
	"华", "创", "智", "联", "博", "瑞", "新", "达", "信", "汇", "恒", "丰",
	"宏", "远", "泰", "盛", "安", "佳", "德", "嘉", "中", "天", "科", "益",
	"美", "云", "海", "星", "辰", "志", "鸿", "卓", "越", "鼎", "润", "和",
	"立", "启", "航", "晨", "锐", "拓", "优", "捷", "通", "广", "粤", "南",
	"明", "悦", "腾", "维", "极", "蓝", "思", "源", "众", "昊", "凯", "旭",
};

/* Company name endings by industry, matched on the industry's name. */
struct industry_words {
	const char *industry;
	const char *endings[4];
};

static const struct industry_words industry_words[] = {
	{ "互联网/IT", { "网络科技", "信息技术", "软件", "数字科技" } },
	{ "电子/半导体", { "电子", "微电子", "通信技术", "半导体" } },
	{ "制造业", { "精密机械", "智能装备", "实业", "汽车部件" } },
	{ "专业服务", { "企业管理咨询", "人力资源服务", "会计师事务所",
			"商务服务" } },
	{ "金融", { "投资", "证券", "金融服务", "保险代理" } },
	{ "快消/零售", { "食品", "贸易", "日用品", "商业连锁" } },
	{ "教育", { "教育科技", "培训学校", "文化教育", "教育咨询" } },
	{ "医疗健康", { "医药", "医疗器械", "生物科技", "健康管理" } },
	{ "建筑/房地产", { "建设工程", "建筑设计", "置业", "工程咨询" } },
	{ "文化传媒", { "文化传播", "广告", "影视传媒", "设计" } },
	{ "物流/交通", { "物流", "供应链管理", "国际货运代理", "运输" } },
	{ "电子商务", { "电子商务", "网络科技", "跨境电商", "商贸" } },
};

static const char *const public_units[] = {
	"人民医院", "第一中学", "实验小学", "市场监督管理局", "税务局",
	"城市规划设计研究院", "公共资源交易中心", "档案馆", "科技创新研究院",
	"人力资源和社会保障局", "社区卫生服务中心", "图书馆",
};

static const char *const openers[] = {
	"本人性格开朗，做事认真负责，具有较强的学习能力和团队合作精神。",
	"为人踏实稳重，抗压能力强，善于沟通，乐于接受新的挑战。",
	"在校期间成绩优良，积极参加社会实践和志愿服务活动。",
	"学习能力强，做事有条理，能够独立思考并解决问题。",
	"性格沉稳，执行力强，注重细节，有良好的时间管理习惯。",
};

static const char *const campus_roles[] = {
	"学生会干部", "社团负责人", "班长", "学习委员", "青年志愿者",
	"团支书", "宣传委员", "学院新闻中心记者",
};

static const char *const campus_orgs[] = {
	"校学生会", "校团委", "青年志愿者协会", "学院学生会", "校辩论队",
	"大学生创新创业协会",
};

static const char *const campus_duties[] = {
	"组织策划院系迎新晚会和主题班会，协调各部门分工",
	"负责社团日常管理和活动宣传，组织招新和培训",
	"参与社区义务支教和敬老院志愿服务，累计服务时长超过100小时",
	"负责班级事务和同学沟通，协助辅导员开展日常管理",
	"撰写活动新闻稿并运营学院公众号",
};

static const char *const certificates[] = {
	"全国大学英语四级证书", "全国大学英语六级证书",
	"全国计算机等级考试二级证书", "普通话二级甲等证书", "机动车驾驶证",
	"计算机技术与软件专业技术资格证书",
};

static const char *const awards[] = {
	"国家奖学金", "国家励志奖学金", "校级一等奖学金", "校级二等奖学金",
	"优秀学生干部", "三好学生", "优秀共青团员", "优秀毕业生",
	"全国大学生数学建模竞赛省级二等奖",
	"“挑战杯”广东大学生课外学术科技作品竞赛三等奖",
	"“互联网+”大学生创新创业大赛省级铜奖",
	"蓝桥杯全国软件和信息技术专业人才大赛省赛一等奖",
};

static const char *const perks[] = {
	"带薪年假", "节日福利", "定期体检", "餐补", "住房补贴",
	"年终奖", "免费班车", "员工宿舍", "弹性工作",
};

static const char *const soft_reqs[] = {
	"具备良好的沟通能力和团队合作精神",
	"工作认真细致，责任心强，抗压能力好",
	"学习能力强，能够快速适应新环境",
	"有相关实习经历者优先",
	"能接受短期出差",
};

/* ---------------------------------------------------------------------
 * Places.  Weights are the share, in percent, of a Guangdong platform's
 * employers (or students' origins) in each city or province: a judgement
 * from public city sizes, not a measured figure.  docs/data.md explains.
 */

struct area {
	uint32_t prefix;  /* 2 digits: province; 4 digits: city */
	double weight;
};

static const struct area employer_cities[] = {
	{ 4403, 30 }, { 4401, 28 }, { 4419, 9 }, { 4406, 8 }, { 4404, 3.5 },
	{ 4413, 3 }, { 4420, 2.5 }, { 4407, 1.5 }, { 4405, 1.5 },
	{ 4408, 1 }, { 4412, 1 }, { 4409, 0.7 }, { 4452, 0.6 },
	{ 4402, 0.5 }, { 4414, 0.5 }, { 4418, 0.5 }, { 4451, 0.4 },
	{ 4416, 0.4 }, { 4417, 0.4 }, { 4415, 0.3 }, { 4453, 0.3 },
	{ 3101, 1.2 }, { 1101, 0.8 }, { 3301, 0.6 }, { 4301, 0.5 },
	{ 4501, 0.5 }, { 3502, 0.4 }, { 5101, 0.4 }, { 4201, 0.4 },
	{ 3205, 0.3 },
};

static const struct area origin_provinces[] = {
	{ 44, 62 }, { 45, 6 }, { 43, 5 }, { 36, 4 }, { 41, 3.5 },
	{ 51, 2.5 }, { 52, 2 }, { 42, 2 }, { 35, 1.5 }, { 50, 1 },
	{ 53, 1.2 }, { 46, 1.2 }, { 13, 1 }, { 37, 1 }, { 34, 1 },
	{ 61, 0.6 }, { 14, 0.6 }, { 62, 0.6 }, { 65, 0.6 }, { 54, 0.3 },
	{ 15, 0.4 }, { 22, 0.3 }, { 21, 0.4 }, { 23, 0.4 }, { 64, 0.2 },
	{ 63, 0.2 }, { 32, 0.5 }, { 33, 0.5 }, { 11, 0.1 }, { 12, 0.1 },
	{ 31, 0.1 },
};

/* Origins inside Guangdong: the populous east and west send many. */
static const struct area origin_gd_cities[] = {
	{ 4401, 10 }, { 4403, 7 }, { 4406, 5 }, { 4419, 4 }, { 4408, 9 },
	{ 4409, 8 }, { 4452, 7 }, { 4405, 6 }, { 4414, 5 }, { 4415, 3 },
	{ 4418, 4 }, { 4413, 4 }, { 4417, 3 }, { 4412, 4 }, { 4407, 4 },
	{ 4402, 3 }, { 4416, 3 }, { 4451, 3 }, { 4453, 2.5 }, { 4420, 3 },
	{ 4404, 1.5 },
};

/* Directed programmes: the minority cadre programme's provinces, and the
 * Guangdong cities that train teachers and doctors on contract. */
static const struct area directed_areas[] = {
	{ 65, 3 }, { 54, 2 }, { 45, 2 }, { 52, 1.5 }, { 53, 1.5 },
	{ 63, 1 }, { 64, 1 }, { 15, 1 }, { 4415, 1 }, { 4452, 1 },
	{ 4409, 1 }, { 4408, 1 }, { 4414, 1 }, { 4416, 1 }, { 4402, 1 },
	{ 4418, 1 },
};

/* Salary multiplier by city tier: first-tier cities pay the most. */
static double city_tier_salary(uint32_t code)
{
	uint32_t p4 = code / 100;

	switch (p4) {
	case 4403: case 4401: case 1101: case 3101:
		return 1.0;
	case 4419: case 4406: case 4404: case 3301: case 5101: case 4201:
	case 4301: case 3205: case 3502: case 4413: case 4420:
		return 0.82;
	default:
		return 0.68;
	}
}

/* A weighted area table resolved against the leaf divisions. */
struct area_table {
	const struct area *areas;
	uint32_t *lo, *hi;  /* leaf index range of each area */
	struct cdf cdf;
};

/* ---------------------------------------------------------------------
 * The generator.
 */

/* Limits on data/categories.tsv, so every table below stays small. */
#define CATEGORIES_MAX 64
#define LIST_ITEMS_MAX 256
#define INDUSTRIES_MAX 32
#define CLASSES_MAX 16

/* A catalogue class and the range of its 6-digit majors in g->majors. */
struct major_class {
	char prefix[5];
	bool known;  /* ref_major_known() takes the 4-digit code itself */
	uint32_t lo, hi;
};

struct category {
	struct str name, slug;
	double popularity;
	uint32_t industry;
	uint32_t salary_yuan;
	struct major_class classes[2][CLASSES_MAX];  /* [0] 本科, [1] 专科 */
	uint32_t class_count[2];
	struct list skills, titles, duties, projects;
};

struct industry {
	struct str name;
	uint32_t cats[CATEGORIES_MAX];
	uint32_t cat_count;
	struct cdf cdf;
	uint32_t words;  /* index into industry_words, or UINT32_MAX */
};

/* What a completeness item stands for on a resume or student record:
 * the item names and rules of the completeness module. */
enum part {
	PART_PHOTO,
	PART_INTRO,
	PART_SKILLS,
	PART_CATEGORIES,
	PART_CITIES,
	PART_SALARY,
	PART_EXPERIENCES,
	PART_CERTIFICATES,  /* certificates, awards or both */
	PART_LANGUAGES,
	PART_STUDENT,       /* school and major: every student has them */
	PART_COUNT,
};

#define ITEMS_MAX 32

struct item {
	char name[48];
	double weight;
	enum part part;
	double ease;  /* how readily students fill it in, 0..1 */
};

/* The industry whose employers are government and public institutions:
 * their names are built differently and some postings ask for party
 * membership. */
#define PUBLIC_INDUSTRY "政府/事业单位"

enum ownership { OWN_PRIVATE, OWN_STATE, OWN_FOREIGN, OWN_PUBLIC };

struct company {
	uint32_t city;  /* county-level code, or a city without counties */
	uint16_t industry;
	uint8_t size;
	uint8_t ownership;
};

struct major {
	const char *code;
	const char *name;
};

struct gen {
	struct gen_config cfg;
	const struct ref *ref;
	int year;  /* the current year in China (UTC+8) */
	char *cat_text;  /* data/categories.tsv, pointed into by cats */
	struct category cats[CATEGORIES_MAX];
	uint32_t cat_count;
	struct cdf cat_cdf;
	struct industry industries[INDUSTRIES_MAX];
	uint32_t industry_count;
	struct cdf industry_cdf;
	struct item items[ITEMS_MAX];
	uint32_t item_count;
	double item_total;
	uint32_t *leaves;  /* origin-precise division codes, ascending */
	uint32_t leaf_count;
	struct area_table employer, provinces, gd_origin, directed;
	struct major *majors[2];  /* [0] 本科 catalogue, [1] 专科 */
	uint32_t major_count[2];
	struct company *companies;
	struct cdf company_zipf;
	uint64_t id_mod;  /* student numbers are unique modulo this */
	uint64_t id_salt;
	uint64_t postings_total, postings_expired, postings_closed;
};

static void errf(char *errbuf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *errbuf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!errbuf || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, len, fmt, ap);
	va_end(ap);
}

int gen_scale(const char *name, struct gen_config *cfg)
{
	if (strcmp(name, "demo") == 0) {
		cfg->students = 500;
		cfg->postings = 200;
		cfg->companies = 60;
	} else if (strcmp(name, "guangdong") == 0) {
		cfg->students = 1000000;
		cfg->postings = 200000;
		cfg->companies = 30000;
	} else {
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------------
 * Reading data files.
 */

/* Files read here are small tables; anything larger is a mistake. */
#define DATA_FILE_BYTES_MAX (4u << 20)

static int read_file(const char *path, char **out, char *errbuf,
		     size_t errbuf_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;
	int rc = 0;

	if (!f) {
		rc = -errno;
		errf(errbuf, errbuf_len, "%s: %s", path, strerror(errno));
		return rc;
	}
	buf = malloc(DATA_FILE_BYTES_MAX + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto done;
	}
	n = fread(buf, 1, DATA_FILE_BYTES_MAX + 1, f);
	if (ferror(f) || n > DATA_FILE_BYTES_MAX) {
		rc = ferror(f) ? -EIO : -EFBIG;
		errf(errbuf, errbuf_len, "%s: %s", path,
		     rc == -EIO ? "read error" : "file too large");
		free(buf);
		buf = NULL;
		goto done;
	}
	buf[n] = '\0';
	*out = buf;
done:
	fclose(f);
	return rc;
}

/* Splits s[0..len) at sep into at most max views; returns the count, or
 * max + 1 when there were more. */
static uint32_t split(const char *s, size_t len, char sep, struct str *out,
		      uint32_t max)
{
	uint32_t n = 0;
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != sep)
			continue;
		if (n == max)
			return max + 1;
		out[n++] = (struct str){ s + start, (uint32_t)(i - start) };
		start = i + 1;
	}
	return n;
}

/* Parses a whole view as a non-negative decimal; -1 when it is not. */
static double parse_number(struct str v)
{
	char tmp[32];
	char *end;
	double d;

	if (v.len == 0 || v.len >= sizeof(tmp))
		return -1;
	memcpy(tmp, v.s, v.len);
	tmp[v.len] = '\0';
	d = strtod(tmp, &end);
	if (*end != '\0' || !(d >= 0))
		return -1;
	return d;
}

static int list_parse(struct list *l, struct str field)
{
	struct str tmp[LIST_ITEMS_MAX];
	uint32_t n = split(field.s, field.len, ',', tmp, LIST_ITEMS_MAX);

	if (n == 0 || n > LIST_ITEMS_MAX)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		if (tmp[i].len == 0)
			return -EINVAL;
	}
	l->items = malloc(n * sizeof(*l->items));
	if (!l->items)
		return -ENOMEM;
	memcpy(l->items, tmp, n * sizeof(*l->items));
	l->n = n;
	return cdf_zipf(&l->zipf, n, VOCAB_ZIPF_S);
}

static void list_free(struct list *l)
{
	free(l->items);
	cdf_free(&l->zipf);
}

/* ---------------------------------------------------------------------
 * Majors: the 6-digit codes of the catalogue, split into the 本科 list
 * (disciplines 01-14) and the 专科 list (the vocational catalogue's
 * 41-59), both in code order so a class is a contiguous range.
 */

static bool is_major6(const char *code)
{
	size_t len = strlen(code);

	if (len < 6 || len > 7)
		return false;
	for (int i = 0; i < 6; i++) {
		if (code[i] < '0' || code[i] > '9')
			return false;
	}
	return true;
}

static int majors_index(struct gen *g)
{
	size_t n = ref_major_count(g->ref);

	for (int lv = 0; lv < 2; lv++) {
		g->majors[lv] = malloc((n ? n : 1) * sizeof(struct major));
		if (!g->majors[lv])
			return -ENOMEM;
		g->major_count[lv] = 0;
	}
	for (size_t i = 0; i < n; i++) {
		const char *code, *name;

		ref_major_at(g->ref, i, &code, &name);
		if (!is_major6(code))
			continue;
		int lv = (code[0] - '0') * 10 + (code[1] - '0') >= 41;
		g->majors[lv][g->major_count[lv]++] =
			(struct major){ code, name };
	}
	if (g->major_count[0] == 0)
		return -EINVAL;
	return 0;
}

/* The range of majors[lv] whose code starts with the 4-digit prefix. */
static void majors_range(const struct gen *g, int lv, const char *prefix,
			 uint32_t *lo, uint32_t *hi)
{
	const struct major *m = g->majors[lv];
	uint32_t a = 0, b = g->major_count[lv];

	while (a < b) {
		uint32_t mid = a + (b - a) / 2;

		if (strncmp(m[mid].code, prefix, 4) < 0)
			a = mid + 1;
		else
			b = mid;
	}
	*lo = a;
	while (b < g->major_count[lv] && strncmp(m[b].code, prefix, 4) == 0)
		b++;
	*hi = b > a ? b : a;
}

/* Resolves a category's class prefixes against the catalogue; prefixes
 * the catalogue does not know are left out. */
static void category_classes(struct gen *g, struct category *c,
			     struct str field)
{
	struct str tmp[CLASSES_MAX];
	uint32_t n = split(field.s, field.len, ',', tmp, CLASSES_MAX);

	if (n > CLASSES_MAX)
		n = CLASSES_MAX;
	for (uint32_t i = 0; i < n; i++) {
		struct major_class mc = { .known = false };

		if (tmp[i].len != 4)
			continue;
		memcpy(mc.prefix, tmp[i].s, 4);
		mc.prefix[4] = '\0';
		int lv = (mc.prefix[0] - '0') * 10 + (mc.prefix[1] - '0') >= 41;
		mc.known = ref_major_known(g->ref, mc.prefix, 4);
		majors_range(g, lv, mc.prefix, &mc.lo, &mc.hi);
		if (mc.known || mc.hi > mc.lo)
			c->classes[lv][c->class_count[lv]++] = mc;
	}
}

/* ---------------------------------------------------------------------
 * data/categories.tsv
 */

enum cat_col {
	COL_NAME, COL_SLUG, COL_POPULARITY, COL_INDUSTRY, COL_SALARY,
	COL_MAJORS, COL_SKILLS, COL_TITLES, COL_DUTIES, COL_PROJECTS,
	COL_COUNT,
};

static uint32_t industry_find(const struct gen *g, struct str name)
{
	for (uint32_t i = 0; i < g->industry_count; i++) {
		struct str s = g->industries[i].name;

		if (s.len == name.len && memcmp(s.s, name.s, s.len) == 0)
			return i;
	}
	return UINT32_MAX;
}

static int industry_add(struct gen *g, struct str name, uint32_t *out)
{
	uint32_t i = industry_find(g, name);

	if (i == UINT32_MAX) {
		if (g->industry_count == INDUSTRIES_MAX)
			return -EINVAL;
		i = g->industry_count++;
		g->industries[i].name = name;
		g->industries[i].words = UINT32_MAX;
		for (uint32_t w = 0; w < sizeof(industry_words) /
					     sizeof(industry_words[0]); w++) {
			if (str_eq(name, industry_words[w].industry))
				g->industries[i].words = w;
		}
	}
	*out = i;
	return 0;
}

static int category_parse(struct gen *g, struct str *col)
{
	struct category *c = &g->cats[g->cat_count];
	double pop = parse_number(col[COL_POPULARITY]);
	double salary = parse_number(col[COL_SALARY]);
	struct industry *ind;
	int rc;

	if (!(pop > 0) || !(salary >= 1000 && salary <= 100000) ||
	    col[COL_NAME].len == 0)
		return -EINVAL;
	c->name = col[COL_NAME];
	c->slug = col[COL_SLUG];
	c->popularity = pop;
	c->salary_yuan = (uint32_t)salary;
	rc = industry_add(g, col[COL_INDUSTRY], &c->industry);
	if (rc)
		return rc;
	ind = &g->industries[c->industry];
	ind->cats[ind->cat_count++] = g->cat_count;
	category_classes(g, c, col[COL_MAJORS]);
	g->cat_count++;
	if ((rc = list_parse(&c->skills, col[COL_SKILLS])) ||
	    (rc = list_parse(&c->titles, col[COL_TITLES])) ||
	    (rc = list_parse(&c->duties, col[COL_DUTIES])) ||
	    (rc = list_parse(&c->projects, col[COL_PROJECTS])))
		return rc;
	return 0;
}

static int categories_load(struct gen *g, const char *dir, char *errbuf,
			   size_t errbuf_len)
{
	char path[4096];
	char *p;
	unsigned line = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/categories.tsv", dir);
	rc = read_file(path, &g->cat_text, errbuf, errbuf_len);
	if (rc)
		return rc;
	for (p = g->cat_text; *p; ) {
		char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		struct str col[COL_COUNT + 1];

		line++;
		if (len && p[len - 1] == '\r')
			len--;
		if (len && p[0] != '#') {
			if (g->cat_count == CATEGORIES_MAX ||
			    split(p, len, '\t', col, COL_COUNT + 1) !=
				    COL_COUNT) {
				rc = -EINVAL;
			} else {
				rc = category_parse(g, col);
			}
			if (rc) {
				errf(errbuf, errbuf_len,
				     "%s:%u: malformed category line", path,
				     line);
				return rc;
			}
		}
		p = eol ? eol + 1 : p + len;
	}
	if (g->cat_count == 0) {
		errf(errbuf, errbuf_len, "%s: no categories", path);
		return -EINVAL;
	}
	return 0;
}

/* The popularity tables over categories and industries. */
static int categories_index(struct gen *g)
{
	double w[CATEGORIES_MAX];
	double iw[INDUSTRIES_MAX];
	int rc;

	for (uint32_t i = 0; i < g->industry_count; i++) {
		struct industry *ind = &g->industries[i];

		iw[i] = 0;
		for (uint32_t k = 0; k < ind->cat_count; k++) {
			w[k] = g->cats[ind->cats[k]].popularity;
			iw[i] += w[k];
		}
		rc = cdf_build(&ind->cdf, w, ind->cat_count);
		if (rc)
			return rc;
	}
	for (uint32_t i = 0; i < g->cat_count; i++)
		w[i] = g->cats[i].popularity;
	rc = cdf_build(&g->cat_cdf, w, g->cat_count);
	if (rc)
		return rc;
	return cdf_build(&g->industry_cdf, iw, g->industry_count);
}

/* ---------------------------------------------------------------------
 * data/completeness.tsv: name, weight, description.
 */

struct part_name {
	const char *name;
	enum part part;
	double ease;
};

/* The item names the completeness module knows, in enum part order,
 * with how often students fill each in when they do not fill in
 * everything: a photo and skills nearly always, awards and certificates
 * least. */
static const struct part_name part_names[] = {
	{ "photo", PART_PHOTO, 0.9 },
	{ "intro", PART_INTRO, 0.8 },
	{ "skills", PART_SKILLS, 0.9 },
	{ "desired_categories", PART_CATEGORIES, 0.85 },
	{ "desired_cities", PART_CITIES, 0.85 },
	{ "salary", PART_SALARY, 0.75 },
	{ "experiences", PART_EXPERIENCES, 0.65 },
	{ "certificates", PART_CERTIFICATES, 0.45 },
	{ "languages", PART_LANGUAGES, 0.55 },
	{ "education", PART_STUDENT, 1 },
};

_Static_assert(sizeof(part_names) / sizeof(part_names[0]) == PART_COUNT,
	       "one name per part");

/* Returns false for a name the completeness module would refuse too. */
static bool item_classify(struct item *it)
{
	for (size_t i = 0; i < PART_COUNT; i++) {
		if (strcmp(part_names[i].name, it->name) == 0) {
			it->part = part_names[i].part;
			it->ease = part_names[i].ease;
			return true;
		}
	}
	return false;
}

static int item_parse(struct gen *g, struct str *col, uint32_t ncol)
{
	struct item *it = &g->items[g->item_count];
	double w;

	if (ncol < 2 || col[0].len == 0 || col[0].len >= sizeof(it->name))
		return -EINVAL;
	w = parse_number(col[1]);
	if (w < 0)
		return g->item_count == 0 ? 1 : -EINVAL;  /* 1: a header */
	if (g->item_count == ITEMS_MAX)
		return -EINVAL;
	memcpy(it->name, col[0].s, col[0].len);
	it->name[col[0].len] = '\0';
	it->weight = w;
	if (!item_classify(it))
		return -EINVAL;
	g->item_total += w;
	g->item_count++;
	return 0;
}

static int items_load(struct gen *g, const char *dir, char *errbuf,
		      size_t errbuf_len)
{
	char path[4096];
	char *text = NULL, *p;
	unsigned line = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/completeness.tsv", dir);
	rc = read_file(path, &text, errbuf, errbuf_len);
	if (rc)
		return rc;
	for (p = text; *p && rc == 0; ) {
		char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		struct str col[4];

		line++;
		if (len && p[len - 1] == '\r')
			len--;
		if (len && p[0] != '#') {
			uint32_t n = split(p, len, '\t', col, 3);

			rc = item_parse(g, col, n > 3 ? 3 : n);
			if (rc > 0)
				rc = 0;
			else if (rc)
				errf(errbuf, errbuf_len,
				     "%s:%u: malformed item line", path, line);
		}
		p = eol ? eol + 1 : p + len;
	}
	free(text);
	if (rc == 0 && !(g->item_total > 0)) {
		errf(errbuf, errbuf_len, "%s: no weighted items", path);
		rc = -EINVAL;
	}
	return rc;
}

/* ---------------------------------------------------------------------
 * Divisions: the codes precise enough for an origin, in code order, and
 * the weighted area tables resolved to ranges of them.
 */

static void code_text(uint32_t code, char out[7])
{
	for (int i = 5; i >= 0; i--) {
		out[i] = (char)('0' + code % 10);
		code /= 10;
	}
	out[6] = '\0';
}

static enum ref_level code_level(const struct gen *g, uint32_t code)
{
	char t[7];

	code_text(code, t);
	return ref_division_level(g->ref, t, 6);
}

/* The name of a known code; "" for an unknown one. */
static const char *code_name(const struct gen *g, uint32_t code)
{
	char t[7];

	code_text(code, t);
	const char *name = ref_division_name(g->ref, t, 6);

	return name ? name : "";
}

static int leaves_index(struct gen *g)
{
	size_t n = ref_division_count(g->ref);

	g->leaves = malloc((n ? n : 1) * sizeof(*g->leaves));
	if (!g->leaves)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *code, *name;
		enum ref_level level;

		ref_division_at(g->ref, i, &code, &name, &level);
		if (!ref_division_origin_ok(g->ref, code, strlen(code)))
			continue;
		/* Old tables list "市辖区" placeholders; nobody lives there. */
		if (name && strcmp(name, "市辖区") == 0)
			continue;
		g->leaves[g->leaf_count++] = (uint32_t)strtoul(code, NULL, 10);
	}
	return g->leaf_count ? 0 : -EINVAL;
}

/* First leaf index whose code is >= code. */
static uint32_t leaves_lower(const struct gen *g, uint32_t code)
{
	uint32_t a = 0, b = g->leaf_count;

	while (a < b) {
		uint32_t mid = a + (b - a) / 2;

		if (g->leaves[mid] < code)
			a = mid + 1;
		else
			b = mid;
	}
	return a;
}

/* The span of codes an area prefix covers. */
static void area_span(uint32_t prefix, uint32_t *lo, uint32_t *hi)
{
	uint32_t scale = prefix < 100 ? 10000 : 100;

	*lo = prefix * scale;
	*hi = *lo + scale;
}

static int area_table_build(struct gen *g, struct area_table *t,
			    const struct area *areas, uint32_t n)
{
	double w[64];
	int rc;

	if (n > 64)
		return -EINVAL;
	t->areas = areas;
	t->lo = malloc(n * sizeof(*t->lo));
	t->hi = malloc(n * sizeof(*t->hi));
	if (!t->lo || !t->hi)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t lo, hi;

		area_span(areas[i].prefix, &lo, &hi);
		t->lo[i] = leaves_lower(g, lo);
		t->hi[i] = leaves_lower(g, hi);
		/* An area the reference data does not know is never drawn. */
		w[i] = t->hi[i] > t->lo[i] ? areas[i].weight : 0;
	}
	rc = cdf_build(&t->cdf, w, n);
	return rc;
}

static void area_table_free(struct area_table *t)
{
	free(t->lo);
	free(t->hi);
	cdf_free(&t->cdf);
}

#define AREAS(a) (a), (uint32_t)(sizeof(a) / sizeof((a)[0]))

/* The index of an area of t, drawn by weight. */
static uint32_t area_pick(const struct area_table *t, struct rng *r)
{
	return cdf_pick(&t->cdf, r);
}

/* A leaf inside area i of t, uniformly. */
static uint32_t area_leaf(const struct gen *g, const struct area_table *t,
			  uint32_t i, struct rng *r)
{
	return g->leaves[t->lo[i] + rng_below(r, t->hi[i] - t->lo[i])];
}

/* The code that names a leaf's city: the city itself when the reference
 * knows it (440100, 441900), otherwise the province (110000 for a
 * Beijing district), otherwise the leaf.  A county the province runs
 * directly (429004 仙桃市) is its own city: its "city" 429000 is a
 * grouping nobody names as a place. */
static uint32_t city_of(const struct gen *g, uint32_t leaf)
{
	uint32_t city = leaf / 100 * 100;
	uint32_t prov = leaf / 10000 * 10000;

	if (code_level(g, city) == REF_CITY)
		return strstr(code_name(g, city), "直辖") ? leaf : city;
	if (code_level(g, prov) == REF_PROVINCE)
		return prov;
	return leaf;
}

static uint32_t province_of(const struct gen *g, uint32_t leaf)
{
	uint32_t prov = leaf / 10000 * 10000;

	return code_level(g, prov) == REF_PROVINCE ? prov : city_of(g, leaf);
}

/* A leaf inside the city (same first four digits) of leaf, uniformly. */
static uint32_t leaf_in_city(const struct gen *g, uint32_t leaf,
			     struct rng *r)
{
	uint32_t lo = leaves_lower(g, leaf / 100 * 100);
	uint32_t hi = leaves_lower(g, leaf / 100 * 100 + 100);

	return hi > lo ? g->leaves[lo + rng_below(r, hi - lo)] : leaf;
}

/* ---------------------------------------------------------------------
 * Companies, made once per run because postings look them up.
 */

/* Zipf exponent of postings over companies: a few large employers post
 * many jobs, most post a handful. */
#define COMPANY_ZIPF_S 0.7

/* Multiplier of the permutation that spreads popularity ranks over
 * company indexes, and of the one behind student numbers: a prime, so it
 * is coprime to every modulus used here. */
#define PERMUTE_PRIME 2147483647ull

static uint32_t permute(uint64_t i, uint64_t salt, uint64_t n)
{
	return (uint32_t)((i * PERMUTE_PRIME + salt % n) % n);
}

static uint8_t company_size(struct rng *r, uint32_t rank, uint32_t n)
{
	double top = (double)rank / (double)(n ? n : 1);

	if (top < 0.01)
		return (uint8_t)(4 + rng_below(r, 2));
	if (top < 0.1)
		return (uint8_t)(2 + rng_below(r, 3));
	return (uint8_t)rng_below(r, 4);
}

static void company_make(struct gen *g, uint32_t rank, struct company *c)
{
	struct rng r;
	uint32_t area;

	rng_stream(&r, g->cfg.seed, STREAM_COMPANY, rank);
	area = area_pick(&g->employer, &r);
	c->city = area_leaf(g, &g->employer, area, &r);
	c->industry = (uint16_t)cdf_pick(&g->industry_cdf, &r);
	c->size = company_size(&r, rank, g->cfg.companies);
	if (str_eq(g->industries[c->industry].name, PUBLIC_INDUSTRY))
		c->ownership = OWN_PUBLIC;
	else if (rng_chance(&r, 0.12))
		c->ownership = OWN_STATE;
	else if (rng_chance(&r, 0.08))
		c->ownership = OWN_FOREIGN;
	else
		c->ownership = OWN_PRIVATE;
}

static int companies_build(struct gen *g)
{
	uint32_t n = g->cfg.companies;

	g->companies = calloc(n ? n : 1, sizeof(*g->companies));
	if (!g->companies)
		return -ENOMEM;
	/* Company i is popularity rank permute^-1(i); making them by rank
	 * and storing at the permuted index keeps C00001 ordinary. */
	for (uint32_t rank = 0; rank < n; rank++)
		company_make(g, rank, &g->companies[permute(rank,
							     g->cfg.seed, n)]);
	return n ? cdf_zipf(&g->company_zipf, n, COMPANY_ZIPF_S) : 0;
}

/* ---------------------------------------------------------------------
 * Opening and closing.
 */

static int gen_index(struct gen *g, const char *dir, char *errbuf,
		     size_t errbuf_len)
{
	int rc;

	if ((rc = leaves_index(g))) {
		errf(errbuf, errbuf_len, "no origin-level divisions");
		return rc;
	}
	if ((rc = majors_index(g))) {
		errf(errbuf, errbuf_len, "no 6-digit majors in the catalogue");
		return rc;
	}
	if ((rc = categories_load(g, dir, errbuf, errbuf_len)) ||
	    (rc = items_load(g, dir, errbuf, errbuf_len)))
		return rc;
	if ((rc = categories_index(g)) ||
	    (rc = area_table_build(g, &g->employer, AREAS(employer_cities))) ||
	    (rc = area_table_build(g, &g->provinces, AREAS(origin_provinces))) ||
	    (rc = area_table_build(g, &g->gd_origin, AREAS(origin_gd_cities))) ||
	    (rc = area_table_build(g, &g->directed, AREAS(directed_areas)))) {
		errf(errbuf, errbuf_len, "reference data lacks the cities "
		     "and provinces the generator draws from");
		return rc;
	}
	return companies_build(g);
}

static bool config_ok(const struct gen_config *cfg)
{
	return cfg->students <= GEN_STUDENTS_MAX &&
	       cfg->postings <= GEN_POSTINGS_MAX &&
	       cfg->companies <= GEN_COMPANIES_MAX &&
	       (cfg->postings == 0 || cfg->companies > 0);
}

/* Days and years start at midnight in China (UTC+8). */
#define DAY_S 86400
#define CHINA_OFFSET_S (8 * 3600)

static int current_year(int64_t now)
{
	time_t t = (time_t)(now + CHINA_OFFSET_S);
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return 2000;
	return tm.tm_year + 1900;
}

int gen_open(struct gen **out, const struct gen_config *cfg,
	     const struct ref *ref, const char *data_dir, char *errbuf,
	     size_t errbuf_len)
{
	struct gen *g;
	uint64_t total, seed;
	int rc;

	if (!config_ok(cfg)) {
		errf(errbuf, errbuf_len, "sizes over the limits, or postings "
		     "without companies");
		return -EINVAL;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->cfg = *cfg;
	g->ref = ref;
	g->year = current_year(cfg->now);
	g->postings_expired = (uint64_t)cfg->postings * GEN_EXPIRED_PERCENT /
			      100;
	g->postings_closed = (uint64_t)cfg->postings * GEN_CLOSED_PERCENT / 100;
	total = cfg->postings + g->postings_expired + g->postings_closed;
	g->postings_total = total;
	/* Six digits after the year, eight when a million does not fit. */
	g->id_mod = cfg->students > 1000000 ? 100000000 : 1000000;
	seed = cfg->seed;
	g->id_salt = splitmix64(&seed);
	rc = gen_index(g, data_dir, errbuf, errbuf_len);
	if (rc) {
		gen_free(g);
		return rc;
	}
	*out = g;
	return 0;
}

void gen_free(struct gen *g)
{
	if (!g)
		return;
	for (uint32_t i = 0; i < g->cat_count; i++) {
		list_free(&g->cats[i].skills);
		list_free(&g->cats[i].titles);
		list_free(&g->cats[i].duties);
		list_free(&g->cats[i].projects);
	}
	for (uint32_t i = 0; i < g->industry_count; i++)
		cdf_free(&g->industries[i].cdf);
	cdf_free(&g->cat_cdf);
	cdf_free(&g->industry_cdf);
	cdf_free(&g->company_zipf);
	area_table_free(&g->employer);
	area_table_free(&g->provinces);
	area_table_free(&g->gd_origin);
	area_table_free(&g->directed);
	free(g->majors[0]);
	free(g->majors[1]);
	free(g->leaves);
	free(g->companies);
	free(g->cat_text);
	free(g);
}

/* ---------------------------------------------------------------------
 * JSON output: a chunk buffer handed to the caller's write function.
 */

struct out {
	char *buf;
	size_t len;
	gen_write_fn fn;
	void *ctx;
	int rc;
	uint64_t bytes;
	uint64_t lines;
};

static void out_flush(struct out *o)
{
	if (o->rc == 0 && o->len)
		o->rc = o->fn(o->ctx, o->buf, o->len);
	o->bytes += o->len;
	o->len = 0;
}

static void out_raw(struct out *o, const char *s, size_t n)
{
	while (n > 0) {
		size_t room = GEN_CHUNK_BYTES - o->len;
		size_t k;

		if (room == 0) {
			out_flush(o);
			room = GEN_CHUNK_BYTES;
		}
		k = n < room ? n : room;
		memcpy(o->buf + o->len, s, k);
		o->len += k;
		s += k;
		n -= k;
	}
}

#define OUT_LIT(o, lit) out_raw((o), (lit), sizeof(lit) - 1)

static size_t escape_byte(unsigned char c, char *out)
{
	static const char hex[] = "0123456789abcdef";

	switch (c) {
	case '"': memcpy(out, "\\\"", 2); return 2;
	case '\\': memcpy(out, "\\\\", 2); return 2;
	case '\n': memcpy(out, "\\n", 2); return 2;
	case '\t': memcpy(out, "\\t", 2); return 2;
	case '\r': memcpy(out, "\\r", 2); return 2;
	case '\b': memcpy(out, "\\b", 2); return 2;
	case '\f': memcpy(out, "\\f", 2); return 2;
	default:
		memcpy(out, "\\u00", 4);
		out[4] = hex[c >> 4];
		out[5] = hex[c & 15];
		return 6;
	}
}

static inline bool needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

size_t gen_json_escape(const char *s, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (needs_escape(c))
			n += escape_byte(c, out + n);
		else
			out[n++] = (char)c;
	}
	return n;
}

/* A quoted, escaped JSON string. */
static void out_str(struct out *o, const char *s, size_t len)
{
	size_t run = 0;
	char esc[6];

	out_raw(o, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!needs_escape(c))
			continue;
		out_raw(o, s + run, i - run);
		out_raw(o, esc, escape_byte(c, esc));
		run = i + 1;
	}
	out_raw(o, s + run, len - run);
	out_raw(o, "\"", 1);
}

static void out_int(struct out *o, int64_t v)
{
	char tmp[24];
	int n = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[sizeof(tmp) - 1 - n++] = '-';
	out_raw(o, tmp + sizeof(tmp) - n, (size_t)n);
}

/* ,"key":"value" and friends.  key is a literal without quotes. */
#define OUT_KEY(o, key) OUT_LIT((o), ",\"" key "\":")

static void out_kv_cstr(struct out *o, const char *key_lit, size_t key_len,
			const char *s)
{
	out_raw(o, key_lit, key_len);
	out_str(o, s, strlen(s));
}

#define OUT_KV_CSTR(o, key, s) \
	out_kv_cstr((o), ",\"" key "\":", sizeof(",\"" key "\":") - 1, (s))

static void out_code(struct out *o, uint32_t code)
{
	char t[7];

	code_text(code, t);
	out_str(o, t, 6);
}

static void out_sb(struct out *o, const struct sb *b)
{
	out_str(o, b->buf, b->len);
}

static void out_end(struct out *o)
{
	OUT_LIT(o, "}\n");
	o->lines++;
}

static void out_list_begin(struct out *o, bool *first)
{
	OUT_LIT(o, "[");
	*first = true;
}

static void out_list_str(struct out *o, bool *first, const char *s,
			 size_t len)
{
	if (!*first)
		OUT_LIT(o, ",");
	*first = false;
	out_str(o, s, len);
}

/* ---------------------------------------------------------------------
 * Dates.
 */

static int64_t day_start(int64_t t)
{
	int64_t local = t + CHINA_OFFSET_S;
	int64_t r = local % DAY_S;

	return t - (r < 0 ? r + DAY_S : r);
}

/* ---------------------------------------------------------------------
 * Students.
 */

enum region { REGION_MAINLAND, REGION_HK, REGION_MO, REGION_TW };

static const char *const region_names[] = { "mainland", "hk", "mo", "tw" };
static const char region_letters[] = { 'X', 'H', 'M', 'T' };

struct student {
	char id[32];
	uint8_t edu;        /* index into edu_names */
	uint8_t region;
	uint8_t political;
	uint8_t grad_month;
	bool bound;
	int grad_year;
	uint32_t cat;       /* the hidden target category */
	const struct major *major;
	const char *school;
	uint32_t origin;    /* 0 when none */
	uint32_t directed;  /* 0 when none */
	uint32_t target_city;
};

/* Education mix in percent: 专科, 本科, 硕士, 博士. */
static const double edu_mix[] = { 30, 55, 13, 2 };

static uint8_t pick_mix(struct rng *r, const double *mix, int n)
{
	double u = rng_unit(r) * 100;

	for (int i = 0; i < n - 1; i++) {
		if (u < mix[i])
			return (uint8_t)i;
		u -= mix[i];
	}
	return (uint8_t)(n - 1);
}

static int pick_grad_year(const struct gen *g, struct rng *r)
{
	double u = rng_unit(r);

	if (u < 0.20)
		return g->year - 1;
	if (u < 0.70)
		return g->year;
	if (u < 0.95)
		return g->year + 1;
	return g->year - 2 - (int)rng_below(r, 3);
}

/* A major for a student of level lv (0 本科 catalogue, 1 专科) aiming at
 * category c: mostly from the category's classes, the first class
 * preferred, otherwise any major of the level. */
static const struct major *pick_major(const struct gen *g, struct rng *r, int lv,
				      const struct category *c)
{
	const struct major_class *with[CLASSES_MAX];
	uint32_t n = 0;

	for (uint32_t i = 0; i < c->class_count[lv]; i++) {
		if (c->classes[lv][i].hi > c->classes[lv][i].lo)
			with[n++] = &c->classes[lv][i];
	}
	if (n && rng_chance(r, 0.72)) {
		const struct major_class *mc =
			with[rng_chance(r, 0.5) ? 0 : rng_below(r, n)];

		return &g->majors[lv][mc->lo + rng_below(r, mc->hi - mc->lo)];
	}
	return &g->majors[lv][rng_below(r, g->major_count[lv])];
}

/* An origin in the provinces' proportions (Guangdong by its cities). */
static uint32_t pick_origin(const struct gen *g, struct rng *r)
{
	uint32_t a = area_pick(&g->provinces, r);

	if (g->provinces.areas[a].prefix == 44)
		return area_leaf(g, &g->gd_origin, area_pick(&g->gd_origin, r),
				 r);
	return area_leaf(g, &g->provinces, a, r);
}

/* A directed-programme student: origin inside the region, minority cadre
 * programme students (a province) study for a graduate degree. */
static void make_directed(const struct gen *g, struct rng *r, struct student *st)
{
	uint32_t a = area_pick(&g->directed, r);
	uint32_t prefix = g->directed.areas[a].prefix;

	st->origin = area_leaf(g, &g->directed, a, r);
	if (prefix < 100) {
		st->directed = province_of(g, st->origin);
		st->edu = rng_chance(r, 0.8) ? 2 : 3;
	} else {
		st->directed = city_of(g, st->origin);
		st->edu = rng_chance(r, 0.7) ? 1 : 0;
	}
}

static void student_id(const struct gen *g, uint32_t i, struct student *st)
{
	uint32_t serial = permute(i, g->id_salt, g->id_mod);
	int digits = g->id_mod > 1000000 ? 8 : 6;

	if (st->region == REGION_MAINLAND)
		snprintf(st->id, sizeof(st->id), "%04d%0*u",
			 st->grad_year - edu_years[st->edu], digits, serial);
	else
		snprintf(st->id, sizeof(st->id), "%c(%04d)%0*u",
			 region_letters[st->region], st->grad_year, digits,
			 serial);
}

static const char *pick_school(struct rng *r, uint8_t edu)
{
	if (edu == 0)
		return PICK(r, schools_zk);
	if (edu == 1)
		return PICK(r, schools_bk);
	return schools_bk[rng_below(r, SCHOOLS_GRADUATE)];
}

static void pick_region(struct rng *r, struct student *st)
{
	double u = rng_unit(r);

	st->region = u < 0.0035 ? REGION_HK : u < 0.005 ? REGION_MO :
		     u < 0.006 ? REGION_TW : REGION_MAINLAND;
}

static void student_make(const struct gen *g, uint32_t i, struct student *st)
{
	struct rng r;
	int lv;

	rng_stream(&r, g->cfg.seed, STREAM_STUDENT, i);
	memset(st, 0, sizeof(*st));
	pick_region(&r, st);
	st->edu = pick_mix(&r, edu_mix, 4);
	if (st->region == REGION_MAINLAND && rng_chance(&r, 0.01))
		make_directed(g, &r, st);
	else if (st->region == REGION_MAINLAND)
		st->origin = pick_origin(g, &r);
	st->grad_year = pick_grad_year(g, &r);
	st->grad_month = rng_chance(&r, 0.9) ? 6 : 12;
	st->cat = cdf_pick(&g->cat_cdf, &r);
	lv = st->edu == 0 && g->major_count[1] ? 1 : 0;
	st->major = pick_major(g, &r, lv, &g->cats[st->cat]);
	st->school = pick_school(&r, st->edu);
	st->political = pick_mix(&r, political_mix[st->edu], 4);
	st->bound = rng_chance(&r, 0.9);
	if (st->directed || (st->origin && rng_chance(&r, 0.12)))
		st->target_city = city_of(g, st->origin);
	else
		st->target_city = city_of(g, area_leaf(g, &g->employer,
					  area_pick(&g->employer, &r), &r));
	student_id(g, i, st);
}

/* "计算机学院" from the class "计算机类", "经济学院" from "经济学类";
 * "<major>系" when the catalogue has no class name. */
static void college_name(const struct gen *g, const struct student *st,
			 struct sb *b)
{
	const char *cls = ref_major_name(g->ref, st->major->code, 4);
	size_t n = cls ? strlen(cls) : 0;

	if (n && strcmp(cls, "外国语言文学类") == 0) {
		sb_cstr(b, "外国语学院");
		return;
	}
	if (n && strcmp(cls, "中国语言文学类") == 0) {
		sb_cstr(b, "文学院");
		return;
	}
	/* Keep at least two characters before 学院 (法学类: 法学学院). */
	if (ends_with(cls, n, "学类") && n > strlen("学类") + 3) {
		sb_add(b, cls, n - strlen("学类"));
		sb_cstr(b, "学院");
		return;
	}
	if (ends_with(cls, n, "类") && n > strlen("类")) {
		sb_add(b, cls, n - strlen("类"));
		sb_cstr(b, "学院");
		return;
	}
	sb_cstr(b, st->major->name ? st->major->name : "综合");
	sb_cstr(b, "系");
}

static void write_student(const struct gen *g, struct out *o,
			  const struct student *st)
{
	struct sb college = { .len = 0 };

	OUT_LIT(o, "{\"kind\":\"student\"");
	OUT_KV_CSTR(o, "id", st->id);
	OUT_KV_CSTR(o, "education", edu_names[st->edu]);
	OUT_KV_CSTR(o, "major_code", st->major->code);
	if (st->major->name)
		OUT_KV_CSTR(o, "major", st->major->name);
	OUT_KV_CSTR(o, "school", st->school);
	college_name(g, st, &college);
	OUT_KEY(o, "college");
	out_sb(o, &college);
	OUT_KEY(o, "grad_year");
	out_int(o, st->grad_year);
	OUT_KEY(o, "grad_month");
	out_int(o, st->grad_month);
	if (st->origin) {
		OUT_KEY(o, "origin");
		out_code(o, st->origin);
	}
	OUT_KV_CSTR(o, "political", politicals[st->political]);
	if (st->region != REGION_MAINLAND)
		OUT_KV_CSTR(o, "region", region_names[st->region]);
	if (st->bound)
		OUT_LIT(o, ",\"bound\":true");
	else
		OUT_LIT(o, ",\"bound\":false");
	if (st->directed) {
		OUT_KEY(o, "directed_region");
		out_code(o, st->directed);
	}
	out_end(o);
}

/* ---------------------------------------------------------------------
 * Names of organisations.
 */

/* "深圳" from "深圳市": the short form used inside company names. */
static void sb_city_short(struct sb *b, const char *name)
{
	static const char shi[] = "市";
	size_t n = name ? strlen(name) : 0;

	if (n > sizeof(shi) - 1 &&
	    memcmp(name + n - (sizeof(shi) - 1), shi, sizeof(shi) - 1) == 0)
		n -= sizeof(shi) - 1;
	sb_add(b, name ? name : "", n);
}

static const char *industry_ending(const struct gen *g, uint32_t industry,
				   struct rng *r)
{
	uint32_t w = g->industries[industry].words;

	if (w == UINT32_MAX)
		return "科技";
	return industry_words[w].endings[rng_below(r, 4)];
}

static void sb_brand(struct sb *b, struct rng *r)
{
	const size_t n = sizeof(brand_chars) / sizeof(brand_chars[0]);
	uint32_t a = rng_below(r, n);
	/* A second, different character: 华华 reads as a typo. */
	uint32_t k = (a + 1 + rng_below(r, n - 1)) % n;

	sb_cstr(b, brand_chars[a]);
	sb_cstr(b, brand_chars[k]);
}

static void company_name(const struct gen *g, struct rng *r,
			 const struct company *c, struct sb *b)
{
	uint32_t city = city_of(g, c->city);
	const char *name;

	switch (c->ownership) {
	case OWN_PUBLIC:
		/* A county-level city names its units alone: 建德市人民医院. */
		name = code_name(g, c->city);
		if (city == c->city || !ends_with(name, strlen(name), "市"))
			sb_cstr(b, code_name(g, city));
		if (city != c->city)
			sb_cstr(b, name);
		sb_cstr(b, PICK(r, public_units));
		return;
	case OWN_STATE:
		sb_cstr(b, "广东");
		sb_brand(b, r);
		sb_cstr(b, industry_ending(g, c->industry, r));
		sb_cstr(b, "集团有限公司");
		return;
	case OWN_FOREIGN:
		sb_brand(b, r);
		sb_cstr(b, industry_ending(g, c->industry, r));
		sb_cstr(b, "（中国）有限公司");
		return;
	default:
		sb_city_short(b, code_name(g, city));
		sb_brand(b, r);
		sb_cstr(b, industry_ending(g, c->industry, r));
		sb_cstr(b, "有限公司");
	}
}

/* ---------------------------------------------------------------------
 * Resumes.
 */

static unsigned percent_of(const struct gen *g, double sum)
{
	return (unsigned)(sum * 100 / g->item_total + 1e-9);
}

/* Share of resumes meant to reach the submission threshold. */
#define RESUME_COMPLETE_SHARE 0.70
#define COMPLETENESS_GATE 60

/*
 * Chooses the parts a resume fills.  The items a student record always
 * carries count first; the others are taken in an order that favours
 * easy items (an exponential race weighted by ease) until the resume's
 * target percent is reached.  Targets below the gate never cross it.
 */
/* Orders the items a student fills in by an exponential race weighted by
 * ease, and returns how many there are; *given gets the weight of the
 * items the student record fills on its own. */
static uint32_t resume_order(const struct gen *g, struct rng *r,
			     uint32_t *order, double *given)
{
	double key[ITEMS_MAX];
	uint32_t n = 0;

	*given = 0;
	for (uint32_t i = 0; i < g->item_count; i++) {
		const struct item *it = &g->items[i];
		uint32_t k;

		if (it->part == PART_STUDENT) {
			*given += it->weight;
			continue;
		}
		key[i] = -log(1.0 - rng_unit(r)) / it->ease;
		for (k = n++; k > 0 && key[order[k - 1]] > key[i]; k--)
			order[k] = order[k - 1];
		order[k] = i;
	}
	return n;
}

static void resume_parts(const struct gen *g, struct rng *r, bool *fill)
{
	uint32_t order[ITEMS_MAX], n;
	double sum;
	bool high = rng_chance(r, RESUME_COMPLETE_SHARE);
	unsigned target;
	bool counted[PART_COUNT] = { false };

	for (uint32_t i = 0; i < g->item_count; i++)
		counted[g->items[i].part] = true;
	n = resume_order(g, r, order, &sum);
	if (high)
		target = rng_chance(r, 0.4) ? 100 :
			 COMPLETENESS_GATE + rng_below(r, 40);
	else
		target = rng_below(r, COMPLETENESS_GATE);
	for (uint32_t k = 0; k < n && percent_of(g, sum) < target; k++) {
		const struct item *it = &g->items[order[k]];

		if (!high && percent_of(g, sum + it->weight) >=
				     COMPLETENESS_GATE)
			continue;
		sum += it->weight;
		fill[it->part] = true;
	}
	/* A part no item counts is filled in at its usual rate. */
	for (int p = PART_PHOTO; p < PART_STUDENT; p++) {
		if (!counted[p])
			fill[p] = rng_chance(r, part_names[p].ease);
	}
}

/* What a resume reveals of its student's hidden target, with noise. */
struct reveal {
	uint32_t cats[3], cat_count;
	uint32_t cities[3], city_count;
	struct str skills[8];
	uint32_t skill_count;
	uint32_t skill_cat;  /* the category most skills came from */
};

static bool has_u32(const uint32_t *v, uint32_t n, uint32_t x)
{
	for (uint32_t i = 0; i < n; i++) {
		if (v[i] == x)
			return true;
	}
	return false;
}

static bool has_str(const struct str *v, uint32_t n, struct str x)
{
	for (uint32_t i = 0; i < n; i++) {
		if (v[i].len == x.len && memcmp(v[i].s, x.s, x.len) == 0)
			return true;
	}
	return false;
}

static void reveal_cats(const struct gen *g, struct rng *r,
			const struct student *st, struct reveal *v)
{
	uint32_t want = 1 + rng_below(r, 3);

	v->cats[0] = rng_chance(r, 0.85) ? st->cat : cdf_pick(&g->cat_cdf, r);
	v->cat_count = 1;
	for (uint32_t t = 0; t < want * DRAW_TRIES && v->cat_count < want;
	     t++) {
		const struct industry *ind =
			&g->industries[g->cats[v->cats[0]].industry];
		uint32_t c = rng_chance(r, 0.5) ?
			     ind->cats[cdf_pick(&ind->cdf, r)] :
			     cdf_pick(&g->cat_cdf, r);

		if (!has_u32(v->cats, v->cat_count, c))
			v->cats[v->cat_count++] = c;
	}
}

static uint32_t employer_city(const struct gen *g, struct rng *r)
{
	return city_of(g, area_leaf(g, &g->employer,
				    area_pick(&g->employer, r), r));
}

static void reveal_cities(const struct gen *g, struct rng *r,
			  const struct student *st, struct reveal *v)
{
	uint32_t want = 1 + rng_below(r, 3);
	uint32_t first = st->target_city;

	if (!rng_chance(r, 0.85))
		first = employer_city(g, r);
	else if (rng_chance(r, 0.2))
		first = leaf_in_city(g, first, r);
	v->cities[0] = first;
	v->city_count = 1;
	for (uint32_t t = 0; t < want * DRAW_TRIES && v->city_count < want;
	     t++) {
		uint32_t c = rng_chance(r, 0.1) ? 440000 : employer_city(g, r);

		if (code_level(g, c) != REF_NONE &&
		    !has_u32(v->cities, v->city_count, c))
			v->cities[v->city_count++] = c;
	}
}

static void reveal_skills(const struct gen *g, struct rng *r,
			  const struct student *st, struct reveal *v)
{
	uint32_t want = 3 + rng_below(r, 6);

	v->skill_cat = rng_chance(r, 0.9) ? st->cat : v->cats[0];
	v->skill_count = 0;
	for (uint32_t t = 0; t < want * DRAW_TRIES && v->skill_count < want;
	     t++) {
		uint32_t c = rng_chance(r, 0.8) ? v->skill_cat :
			     cdf_pick(&g->cat_cdf, r);
		struct str s = list_pick(&g->cats[c].skills, r);

		if (!has_str(v->skills, v->skill_count, s))
			v->skills[v->skill_count++] = s;
	}
}

static int64_t round500(double x)
{
	return (int64_t)((x + 250) / 500) * 500;
}

/* Lowest monthly pay written anywhere: above every Guangdong minimum
 * wage, so no posting or expectation looks illegal. */
#define SALARY_FLOOR_YUAN 2500

static void salary_range(double center, struct rng *r, int64_t *lo,
			 int64_t *hi, double spread)
{
	*lo = round500(center);
	if (*lo < SALARY_FLOOR_YUAN)
		*lo = SALARY_FLOOR_YUAN;
	*hi = round500((double)*lo * (1.2 + spread * rng_unit(r)));
	if (*hi <= *lo)
		*hi = *lo + 500;
}

static void write_str_list(struct out *o, const struct str *v, uint32_t n)
{
	bool first;

	out_list_begin(o, &first);
	for (uint32_t i = 0; i < n; i++)
		out_list_str(o, &first, v[i].s, v[i].len);
	OUT_LIT(o, "]");
}

static void write_intro(const struct gen *g, struct rng *r,
			const struct student *st, const struct reveal *v,
			struct out *o)
{
	const struct category *c = &g->cats[v->skill_cat];
	struct sb b = { .len = 0 };
	char year[8];

	snprintf(year, sizeof(year), "%d", st->grad_year);
	sb_cstr(&b, "我是");
	sb_cstr(&b, st->school);
	if (st->major->name) {
		sb_cstr(&b, st->major->name);
		sb_cstr(&b, "专业");
	}
	sb_cstr(&b, year);
	sb_cstr(&b, "届");
	sb_cstr(&b, edu_names[st->edu]);
	sb_cstr(&b, "毕业生。");
	sb_cstr(&b, PICK(r, openers));
	for (uint32_t i = 0; i < v->skill_count && i < 4; i++) {
		sb_cstr(&b, i == 0 ? "熟练掌握" : i == 3 ? "，熟悉" : "、");
		sb_str(&b, v->skills[i]);
	}
	if (v->skill_count)
		sb_cstr(&b, "。");
	if (rng_chance(r, 0.6)) {
		sb_cstr(&b, "曾参与");
		sb_str(&b, list_pick(&c->projects, r));
		sb_cstr(&b, "项目，");
		sb_str(&b, list_pick(&c->duties, r));
		sb_cstr(&b, "。");
	}
	sb_cstr(&b, "希望在");
	sb_cstr(&b, code_name(g, v->cities[0]));
	sb_cstr(&b, "从事");
	sb_str(&b, g->cats[v->cats[0]].name);
	sb_cstr(&b, "相关工作。");
	OUT_KEY(o, "intro");
	out_sb(o, &b);
}

enum exp_kind { EXP_INTERNSHIP, EXP_PROJECT, EXP_CAMPUS, EXP_WORK };

static const char *const exp_names[] = {
	"internship", "project", "campus", "work",
};

/* Shortest and longest duration in days of each kind of experience. */
static const int exp_days[][2] = {
	{ 30, 180 }, { 60, 300 }, { 180, 720 }, { 365, 1000 },
};

static enum exp_kind pick_exp_kind(struct rng *r, const struct student *st,
				   int year)
{
	double u = rng_unit(r);

	/* Graduates of earlier years have had time for a job. */
	if (st->grad_year < year - 1 && u < 0.4)
		return EXP_WORK;
	if (u < 0.45)
		return EXP_INTERNSHIP;
	if (u < 0.75)
		return EXP_PROJECT;
	if (u < 0.95)
		return EXP_CAMPUS;
	return EXP_WORK;
}

static void exp_text(const struct gen *g, struct rng *r,
		     const struct student *st, const struct category *c,
		     enum exp_kind kind, struct sb *title, struct sb *org,
		     struct sb *desc)
{
	struct company fake = {
		.city = leaf_in_city(g, st->target_city, r),
		.industry = (uint16_t)c->industry,
		.ownership = OWN_PRIVATE,
	};

	switch (kind) {
	case EXP_PROJECT:
		/* Some students quote the project's name with ASCII quotes. */
		if (rng_chance(r, 0.05))
			sb_cstr(title, "\"");
		sb_str(title, list_pick(&c->projects, r));
		if (title->buf[0] == '"')
			sb_cstr(title, "\"");
		sb_cstr(org, st->school);
		sb_cstr(desc, "主要使用");
		sb_str(desc, list_pick(&c->skills, r));
		sb_cstr(desc, "，");
		sb_str(desc, list_pick(&c->duties, r));
		sb_cstr(desc, "。");
		return;
	case EXP_CAMPUS:
		sb_cstr(title, PICK(r, campus_roles));
		sb_cstr(org, PICK(r, campus_orgs));
		sb_cstr(desc, PICK(r, campus_duties));
		sb_cstr(desc, "。");
		return;
	default:
		sb_str(title, list_pick(&c->titles, r));
		if (kind == EXP_INTERNSHIP)
			sb_cstr(title, "实习生");
		company_name(g, r, &fake, org);
		struct str duty = list_pick(&c->duties, r);

		sb_str(desc, duty);
		sb_cstr(desc, "；");
		sb_str(desc, list_pick_other(&c->duties, r, duty));
		sb_cstr(desc, "。");
	}
}

static void write_experience(const struct gen *g, struct rng *r,
			     const struct student *st,
			     const struct category *c, struct out *o)
{
	enum exp_kind kind = pick_exp_kind(r, st, g->year);
	struct sb title = { .len = 0 }, org = { .len = 0 };
	struct sb desc = { .len = 0 };
	int64_t end = day_start(g->cfg.now) -
		      rng_range(r, 0, 540) * (int64_t)DAY_S;
	int64_t start = end - rng_range(r, exp_days[kind][0],
					 exp_days[kind][1]) * (int64_t)DAY_S;

	exp_text(g, r, st, c, kind, &title, &org, &desc);
	OUT_LIT(o, "{\"kind\":\"");
	out_raw(o, exp_names[kind], strlen(exp_names[kind]));
	OUT_LIT(o, "\",\"title\":");
	out_sb(o, &title);
	OUT_KEY(o, "org");
	out_sb(o, &org);
	OUT_KEY(o, "desc");
	out_sb(o, &desc);
	OUT_KEY(o, "start");
	out_int(o, start);
	OUT_KEY(o, "end");
	out_int(o, end);
	OUT_LIT(o, "}");
}

static void write_experiences(const struct gen *g, struct rng *r,
			      const struct student *st,
			      const struct reveal *v, struct out *o)
{
	uint32_t n = 1 + rng_below(r, 3) + (st->edu >= 2);

	OUT_KEY(o, "experiences");
	OUT_LIT(o, "[");
	for (uint32_t i = 0; i < n; i++) {
		if (i)
			OUT_LIT(o, ",");
		write_experience(g, r, st, &g->cats[v->skill_cat], o);
	}
	OUT_LIT(o, "]");
}

/* Certificates: the general ones, and the category's skills that are
 * qualifications (their names end in 资格 or 证). */
static void write_certificates(const struct gen *g, struct rng *r,
			       const struct reveal *v, struct out *o)
{
	const struct list *skills = &g->cats[v->skill_cat].skills;
	struct str got[4];
	uint32_t n = 0, want = 1 + rng_below(r, 3);

	for (uint32_t i = 0; i < skills->n && n < 2; i++) {
		struct str s = skills->items[i];

		if ((s.len >= 6 && (memcmp(s.s + s.len - 6, "资格", 6) == 0)) ||
		    (s.len >= 3 && memcmp(s.s + s.len - 3, "证", 3) == 0)) {
			if (rng_chance(r, 0.5))
				got[n++] = s;
		}
	}
	for (uint32_t t = 0; t < want * DRAW_TRIES && n < want; t++) {
		const char *c = PICK(r, certificates);
		struct str s = { c, (uint32_t)strlen(c) };

		if (!has_str(got, n, s))
			got[n++] = s;
	}
	OUT_KEY(o, "certificates");
	write_str_list(o, got, n);
}

static void write_awards(struct rng *r, struct out *o)
{
	struct str got[3];
	uint32_t n = 0, want = 1 + rng_below(r, 3);

	for (uint32_t t = 0; t < want * DRAW_TRIES && n < want; t++) {
		const char *a = PICK(r, awards);
		struct str s = { a, (uint32_t)strlen(a) };

		if (!has_str(got, n, s))
			got[n++] = s;
	}
	OUT_KEY(o, "awards");
	write_str_list(o, got, n);
}

/* The certificates item is met by a certificate or an award: some
 * students list only one kind, many both. */
static void write_honours(const struct gen *g, struct rng *r,
			  const struct reveal *v, struct out *o)
{
	double u = rng_unit(r);

	if (u < 0.75)
		write_certificates(g, r, v, o);
	if (u >= 0.4)
		write_awards(r, o);
}

static void write_languages(struct rng *r, const struct student *st,
			    struct out *o)
{
	static const char *const english[] = {
		"CET-4", "CET-4", "CET-6", "CET-6", "专业八级", "IELTS 6.5",
	};
	const char *level = PICK(r, english);

	OUT_KEY(o, "languages");
	OUT_LIT(o, "[{\"name\":\"英语\",\"level\":");
	out_str(o, level, strlen(level));
	OUT_LIT(o, "}");
	if (st->origin / 10000 == 44 && rng_chance(r, 0.5))
		OUT_LIT(o, ",{\"name\":\"粤语\",\"level\":\"母语\"}");
	if (rng_chance(r, 0.05))
		OUT_LIT(o, ",{\"name\":\"日语\",\"level\":\"N2\"}");
	OUT_LIT(o, "]");
}

static void write_desired_categories(const struct gen *g,
				     const struct reveal *v, struct out *o)
{
	struct str names[3];

	for (uint32_t k = 0; k < v->cat_count; k++)
		names[k] = g->cats[v->cats[k]].name;
	OUT_KEY(o, "desired_categories");
	write_str_list(o, names, v->cat_count);
}

static void write_desired_cities(const struct reveal *v, struct out *o)
{
	OUT_KEY(o, "desired_cities");
	OUT_LIT(o, "[");
	for (uint32_t k = 0; k < v->city_count; k++) {
		if (k)
			OUT_LIT(o, ",");
		out_code(o, v->cities[k]);
	}
	OUT_LIT(o, "]");
}

/* What the student hopes to earn: a little under what postings of the
 * target category, city and education offer, rounded to 500 yuan. */
static void write_expected_salary(const struct gen *g, struct rng *r,
				  const struct student *st, struct out *o)
{
	double center = g->cats[st->cat].salary_yuan *
			city_tier_salary(st->target_city) *
			edu_salary[st->edu] * 0.9 * (0.8 + 0.4 * rng_unit(r));
	int64_t lo, hi;

	salary_range(center, r, &lo, &hi, 0.3);
	OUT_KEY(o, "salary_min");
	out_int(o, lo);
	OUT_KEY(o, "salary_max");
	out_int(o, hi);
}

static void write_resume(const struct gen *g, uint32_t i,
			 const struct student *st, struct out *o)
{
	struct rng r;
	bool fill[PART_COUNT] = { false };
	struct reveal v;

	rng_stream(&r, g->cfg.seed, STREAM_RESUME, i);
	resume_parts(g, &r, fill);
	reveal_cats(g, &r, st, &v);
	reveal_cities(g, &r, st, &v);
	reveal_skills(g, &r, st, &v);
	OUT_LIT(o, "{\"kind\":\"resume\"");
	OUT_KV_CSTR(o, "student_id", st->id);
	if (fill[PART_PHOTO])
		OUT_LIT(o, ",\"has_photo\":true");
	else
		OUT_LIT(o, ",\"has_photo\":false");
	if (fill[PART_INTRO])
		write_intro(g, &r, st, &v, o);
	if (fill[PART_SKILLS]) {
		OUT_KEY(o, "skills");
		write_str_list(o, v.skills, v.skill_count);
	}
	if (fill[PART_CATEGORIES])
		write_desired_categories(g, &v, o);
	if (fill[PART_CITIES])
		write_desired_cities(&v, o);
	if (fill[PART_SALARY])
		write_expected_salary(g, &r, st, o);
	if (fill[PART_EXPERIENCES])
		write_experiences(g, &r, st, &v, o);
	if (fill[PART_CERTIFICATES])
		write_honours(g, &r, &v, o);
	if (fill[PART_LANGUAGES])
		write_languages(&r, st, o);
	OUT_LIT(o, ",\"_truth\":{\"category\":");
	out_str(o, g->cats[st->cat].name.s, g->cats[st->cat].name.len);
	OUT_LIT(o, ",\"city\":");
	out_code(o, st->target_city);
	OUT_LIT(o, "}");
	out_end(o);
}

/* ---------------------------------------------------------------------
 * Companies and postings.
 */

static const char *const ownership_names[] = {
	"private", "state", "foreign", "public",
};

static void write_company(const struct gen *g, uint32_t i, struct out *o)
{
	const struct company *c = &g->companies[i];
	struct sb name = { .len = 0 };
	struct rng r;
	char id[16];

	/* The name draws from its own stream, apart from company_make(), so
	 * that postings never need it. */
	rng_stream(&r, g->cfg.seed ^ 0x6e616d65ull, STREAM_COMPANY, i);
	company_name(g, &r, c, &name);
	snprintf(id, sizeof(id), "C%05u", i + 1);
	OUT_LIT(o, "{\"kind\":\"company\"");
	OUT_KV_CSTR(o, "id", id);
	OUT_KEY(o, "name");
	out_sb(o, &name);
	OUT_KEY(o, "industry");
	out_str(o, g->industries[c->industry].name.s,
		g->industries[c->industry].name.len);
	OUT_KV_CSTR(o, "size", sizes[c->size]);
	OUT_KEY(o, "city");
	out_code(o, c->city);
	OUT_KV_CSTR(o, "_ownership", ownership_names[c->ownership]);
	out_end(o);
}

enum posting_status { POST_OPEN, POST_EXPIRED, POST_CLOSED };

/* Which postings are expired or closed: a permutation of the indexes, so
 * the counts are exact and the kinds are spread through the file. */
static enum posting_status posting_status(const struct gen *g, uint32_t i)
{
	uint32_t p = permute(i, g->cfg.seed ^ 0x5bd1e995ull,
			     g->postings_total);

	if (p < g->postings_expired)
		return POST_EXPIRED;
	if (p < g->postings_expired + g->postings_closed)
		return POST_CLOSED;
	return POST_OPEN;
}

/* Education mix of postings' minimum requirement, in percent. */
static const double posting_edu_mix[] = { 35, 50, 12, 3 };

struct posting {
	uint32_t company;
	uint32_t cat;
	uint32_t city;
	uint8_t edu_min;
	enum posting_status status;
	int64_t posted_at, expires_at;
};

static uint32_t posting_city(const struct gen *g, struct rng *r,
			     const struct company *c)
{
	double u = rng_unit(r);

	if (u < 0.80)
		return c->city;
	if (u < 0.92)
		return leaf_in_city(g, c->city, r);
	if (u < 0.97)
		return city_of(g, c->city);
	return area_leaf(g, &g->employer, area_pick(&g->employer, r), r);
}

static void posting_dates(const struct gen *g, struct rng *r,
			  struct posting *p)
{
	int64_t now = g->cfg.now;

	if (p->status == POST_EXPIRED) {
		p->posted_at = now - rng_range(r, 20 * DAY_S, 60 * DAY_S);
		p->expires_at = p->posted_at +
				rng_range(r, 7 * DAY_S,
					  now - p->posted_at - 3600 - 1);
		return;
	}
	p->posted_at = now - rng_range(r, 0, 60 * DAY_S);
	p->expires_at = p->posted_at + rng_range(r, 30 * DAY_S, 120 * DAY_S);
	if (p->expires_at <= now)
		p->expires_at = now + rng_range(r, DAY_S, 30 * DAY_S);
}

static void posting_make(const struct gen *g, uint32_t i, struct rng *r,
			 struct posting *p)
{
	uint32_t n = g->cfg.companies;
	const struct company *c;

	rng_stream(r, g->cfg.seed, STREAM_POSTING, i);
	p->company = permute(cdf_pick(&g->company_zipf, r), g->cfg.seed, n);
	c = &g->companies[p->company];
	if (rng_chance(r, 0.65)) {
		const struct industry *ind = &g->industries[c->industry];

		p->cat = ind->cats[cdf_pick(&ind->cdf, r)];
	} else {
		p->cat = cdf_pick(&g->cat_cdf, r);
	}
	p->city = posting_city(g, r, c);
	p->edu_min = pick_mix(r, posting_edu_mix, 4);
	p->status = posting_status(g, i);
	posting_dates(g, r, p);
}

static void write_title(const struct gen *g, struct rng *r,
			const struct posting *p, struct out *o)
{
	struct sb b = { .len = 0 };
	char year[16];

	if (rng_chance(r, 0.12)) {
		snprintf(year, sizeof(year), "%d", g->year + 1);
		sb_cstr(&b, year);
		sb_cstr(&b, "届校园招聘-");
	}
	sb_str(&b, list_pick(&g->cats[p->cat].titles, r));
	if (rng_chance(r, 0.06)) {
		sb_cstr(&b, "（");
		sb_city_short(&b, code_name(g, city_of(g, p->city)));
		sb_cstr(&b, "）");
	}
	OUT_KEY(o, "title");
	out_sb(o, &b);
}

/* "1. a；2. b；3. c。" from distinct duties of the category. */
static void sb_duties(struct sb *b, struct rng *r, const struct list *l)
{
	struct str got[3];
	uint32_t n = 0;
	char num[2];

	for (uint32_t t = 0; t < 3 * DRAW_TRIES && n < 3; t++) {
		struct str s = list_pick(l, r);

		if (!has_str(got, n, s))
			got[n++] = s;
	}
	for (uint32_t k = 0; k < n; k++) {
		num[0] = (char)('1' + k);
		num[1] = '.';
		sb_add(b, num, 2);
		sb_str(b, got[k]);
		sb_cstr(b, k + 1 < n ? "；" : "。");
	}
}

static void write_description(const struct gen *g, struct rng *r,
			      const struct posting *p,
			      const struct str *skills, uint32_t nskills,
			      struct out *o)
{
	const struct category *c = &g->cats[p->cat];
	struct sb b = { .len = 0 };

	sb_cstr(&b, "岗位职责：");
	sb_duties(&b, r, &c->duties);
	sb_cstr(&b, "任职要求：1.");
	sb_cstr(&b, edu_names[p->edu_min]);
	sb_cstr(&b, "及以上学历");
	if (c->class_count[0]) {
		const char *cls = ref_major_name(g->ref,
						 c->classes[0][0].prefix, 4);
		if (cls) {
			sb_cstr(&b, "，");
			sb_cstr(&b, cls);
			sb_cstr(&b, "等相关专业");
		}
	}
	sb_cstr(&b, "；2.熟悉");
	for (uint32_t k = 0; k < nskills && k < 3; k++) {
		if (k)
			sb_cstr(&b, "、");
		sb_str(&b, skills[k]);
	}
	sb_cstr(&b, "；3.");
	sb_cstr(&b, PICK(r, soft_reqs));
	sb_cstr(&b, "。工作地点：");
	sb_cstr(&b, code_name(g, city_of(g, p->city)));
	if (city_of(g, p->city) != p->city)
		sb_cstr(&b, code_name(g, p->city));
	sb_cstr(&b, "。福利待遇：五险一金、");
	sb_cstr(&b, PICK(r, perks));
	sb_cstr(&b, "。");
	OUT_KEY(o, "description");
	out_sb(o, &b);
}

/* Majors a posting asks for: often none; else class prefixes of its
 * category (专科 classes too when 专科 graduates may apply), now and
 * then one exact major. */
static void write_majors(const struct gen *g, struct rng *r,
			 const struct posting *p, struct out *o)
{
	const struct category *c = &g->cats[p->cat];
	const char *got[3];
	uint32_t n = 0, want = rng_chance(r, 0.55) ? 0 : 1 + rng_below(r, 3);

	for (uint32_t t = 0; t < want * DRAW_TRIES && n < want; t++) {
		int lv = p->edu_min == 0 && c->class_count[1] &&
			 rng_chance(r, 0.5);
		const struct major_class *mc;
		const char *code;

		if (c->class_count[lv] == 0)
			break;
		mc = &c->classes[lv][rng_below(r, c->class_count[lv])];
		if (mc->known && (mc->hi == mc->lo || rng_chance(r, 0.8)))
			code = mc->prefix;
		else
			code = g->majors[lv][mc->lo + rng_below(r, mc->hi -
								mc->lo)].code;
		bool dup = false;
		for (uint32_t k = 0; k < n; k++)
			dup = dup || strcmp(got[k], code) == 0;
		if (!dup)
			got[n++] = code;
	}
	OUT_KEY(o, "majors");
	OUT_LIT(o, "[");
	for (uint32_t k = 0; k < n; k++) {
		if (k)
			OUT_LIT(o, ",");
		out_str(o, got[k], strlen(got[k]));
	}
	OUT_LIT(o, "]");
}

static void write_cohorts(const struct gen *g, struct rng *r,
			  struct out *o)
{
	double u = rng_unit(r);

	OUT_KEY(o, "cohorts");
	OUT_LIT(o, "[");
	if (u < 0.70) {
		/* Most postings accept any graduation year. */
	} else if (u < 0.82) {
		out_int(o, g->year - 1);
		OUT_LIT(o, ",");
		out_int(o, g->year);
	} else if (u < 0.92) {
		out_int(o, g->year);
	} else {
		out_int(o, g->year);
		OUT_LIT(o, ",");
		out_int(o, g->year + 1);
	}
	OUT_LIT(o, "]");
}

static bool wants_party_member(const struct gen *g, struct rng *r,
			       const struct posting *p)
{
	uint8_t own = g->companies[p->company].ownership;

	if (own == OWN_PUBLIC)
		return rng_chance(r, 0.4);
	if (own == OWN_STATE)
		return rng_chance(r, 0.25);
	return false;
}

/* Roles that hire in numbers. */
static uint32_t pick_headcount(const struct category *c, struct rng *r)
{
	double u = rng_unit(r);

	if (str_eq(c->slug, "sales") || str_eq(c->slug, "mechanical"))
		return 1 + rng_below(r, 30);
	if (u < 0.5)
		return 1;
	if (u < 0.9)
		return 2 + rng_below(r, 4);
	return 6 + rng_below(r, 15);
}

/* Up to want distinct skills of l, the popular ones more often. */
static uint32_t pick_skills(const struct list *l, struct rng *r,
			    uint32_t want, struct str *out)
{
	uint32_t n = 0;

	for (uint32_t t = 0; t < want * DRAW_TRIES && n < want; t++) {
		struct str s = list_pick(l, r);

		if (!has_str(out, n, s))
			out[n++] = s;
	}
	return n;
}

/* The numbers that end a posting line. */
static void write_posting_tail(struct out *o, const struct category *c,
			       struct rng *r, const struct posting *p,
			       int64_t lo, int64_t hi)
{
	OUT_KEY(o, "salary_min");
	out_int(o, lo);
	OUT_KEY(o, "salary_max");
	out_int(o, hi);
	OUT_KEY(o, "headcount");
	out_int(o, pick_headcount(c, r));
	OUT_KEY(o, "posted_at");
	out_int(o, p->posted_at);
	OUT_KEY(o, "expires_at");
	out_int(o, p->expires_at);
	out_end(o);
}

static void write_posting(const struct gen *g, uint32_t i, struct out *o)
{
	struct rng r;
	struct posting p;
	const struct category *c;
	struct str skills[6];
	uint32_t nskills;
	char id[16];
	int64_t lo, hi;

	posting_make(g, i, &r, &p);
	c = &g->cats[p.cat];
	nskills = pick_skills(&c->skills, &r, 3 + rng_below(&r, 4), skills);
	snprintf(id, sizeof(id), "P%06u", i + 1);
	OUT_LIT(o, "{\"kind\":\"posting\"");
	OUT_KV_CSTR(o, "id", id);
	snprintf(id, sizeof(id), "C%05u", p.company + 1);
	OUT_KV_CSTR(o, "company_id", id);
	write_title(g, &r, &p, o);
	OUT_KEY(o, "category");
	out_str(o, c->name.s, c->name.len);
	write_description(g, &r, &p, skills, nskills, o);
	OUT_KEY(o, "skills");
	write_str_list(o, skills, nskills);
	OUT_KEY(o, "city");
	out_code(o, p.city);
	OUT_KV_CSTR(o, "education_min", edu_names[p.edu_min]);
	write_majors(g, &r, &p, o);
	write_cohorts(g, &r, o);
	if (wants_party_member(g, &r, &p))
		OUT_KV_CSTR(o, "political", "中共党员");
	salary_range(c->salary_yuan * city_tier_salary(p.city) *
		     edu_salary[p.edu_min] * 0.85 * (0.8 + 0.45 * rng_unit(&r)),
		     &r, &lo, &hi, 0.5);
	write_posting_tail(o, c, &r, &p, lo, hi);
}

static void write_close(uint32_t i, struct out *o)
{
	char id[16];

	snprintf(id, sizeof(id), "P%06u", i + 1);
	OUT_LIT(o, "{\"kind\":\"posting.close\"");
	OUT_KV_CSTR(o, "id", id);
	out_end(o);
}

/* ---------------------------------------------------------------------
 * The run.
 */

static void run_records(const struct gen *g, struct out *o,
			struct gen_counts *c)
{
	struct student st;

	for (uint32_t i = 0; i < g->cfg.companies && o->rc == 0; i++) {
		write_company(g, i, o);
		c->companies++;
	}
	for (uint32_t i = 0; i < g->cfg.students && o->rc == 0; i++) {
		student_make(g, i, &st);
		write_student(g, o, &st);
		c->students++;
	}
	for (uint32_t i = 0; i < g->cfg.students && o->rc == 0; i++) {
		student_make(g, i, &st);
		write_resume(g, i, &st, o);
		c->resumes++;
	}
	for (uint32_t i = 0; i < g->postings_total && o->rc == 0; i++) {
		write_posting(g, i, o);
		c->postings++;
	}
	for (uint32_t i = 0; i < g->postings_total && o->rc == 0; i++) {
		enum posting_status s = posting_status(g, i);

		c->postings_expired += s == POST_EXPIRED;
		if (s == POST_CLOSED) {
			write_close(i, o);
			c->postings_closed++;
		}
	}
}

int gen_run(struct gen *g, gen_write_fn fn, void *ctx,
	    struct gen_counts *counts)
{
	struct out o = { .fn = fn, .ctx = ctx };
	struct gen_counts c = { 0 };

	o.buf = malloc(GEN_CHUNK_BYTES);
	if (!o.buf)
		return -ENOMEM;
	run_records(g, &o, &c);
	out_flush(&o);
	free(o.buf);
	c.lines = o.lines;
	c.bytes = o.bytes;
	if (counts)
		*counts = c;
	return o.rc;
}
