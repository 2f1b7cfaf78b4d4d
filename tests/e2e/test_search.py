"""posting.search through the protocol: ranking, filters at every division
level, paging, closes and deletes reflected at once, restart, bad params."""

import time

from harness import DaemonTest, company, posting


class TestSearch(DaemonTest):
    def seed(self):
        self.c.call("company.put", company())
        now = int(time.time())
        recs = [
            posting("P1", title="C++ 后端开发工程师", skills=["C++", "Linux"],
                    description="负责高并发服务开发", city="440106",
                    category="软件开发", posted_at=now - 300),
            posting("P2", title="数据分析师", skills=["Excel", "SQL"],
                    description="人工智能 Flink 平台的数据分析",
                    city="440100", category="数据分析",
                    education_min="硕士", salary_max=30000,
                    posted_at=now - 200),
            posting("P3", title="销售代表", skills=["沟通"],
                    description="开拓华南市场，熟悉 Excel", city="440000",
                    category="销售", education_min="专科",
                    salary_min=4000, salary_max=6000, posted_at=now - 100),
            posting("P4", title="会计", skills=["Excel", "财务"],
                    description="负责账务", city="441900",
                    category="财务/会计", posted_at=now - 400),
        ]
        r = self.c.call("posting.put_many", {"items": recs})
        self.assertEqual(r["stored"], 4)

    def ids(self, **params):
        r = self.c.call("posting.search", params)
        return [it["posting_id"] for it in r["items"]], r["total"]

    def test_ranking_and_scores(self):
        self.seed()
        r = self.c.call("posting.search", {"q": "Excel"})
        self.assertEqual(r["total"], 3)
        self.assertTrue(r["total_exact"])
        scores = [it["score"] for it in r["items"]]
        self.assertEqual(scores, sorted(scores, reverse=True))
        for s in scores:
            self.assertTrue(0 <= s <= 1)
        # Skills weigh more than the description: P3 has Excel only there.
        self.assertEqual(r["items"][-1]["posting_id"], "P3")
        self.assertEqual(self.ids(q="C++开发工程师"), (["P1"], 1))
        self.assertEqual(self.ids(q="Excel 人工智能 Flink"), (["P2"], 1))
        self.assertEqual(self.ids(q="ＥＸＣＥＬ 账")[0], ["P4"])
        self.assertEqual(self.ids(q="不存在的词"), ([], 0))

    def test_filters(self):
        self.seed()
        self.assertEqual(self.ids(city="440106"), (["P1"], 1))
        self.assertEqual(self.ids(city="440100"), (["P2", "P1"], 2))
        self.assertEqual(self.ids(city="440000"),
                         (["P3", "P2", "P1", "P4"], 4))
        self.assertEqual(self.ids(city="440113"), ([], 0))
        self.assertEqual(self.ids(category="软件开发"), (["P1"], 1))
        self.assertEqual(self.ids(category="财务/会计"), (["P4"], 1))
        # education: what a student of that level qualifies for.
        self.assertNotIn("P2", self.ids(education="本科")[0])
        self.assertIn("P2", self.ids(education="博士")[0])
        # P1 and P4 pay up to 18000 (the harness default), P3 up to 6000.
        self.assertEqual(self.ids(q="Excel", salary_min=20000)[0], ["P2"])
        self.assertEqual(sorted(self.ids(q="Excel", salary_min=7000)[0]),
                         ["P2", "P4"])
        self.assertEqual(self.ids(q="Excel", salary_min=5000)[1], 3)

    def test_paging(self):
        self.seed()
        everything, total = self.ids(k=100)
        self.assertEqual(total, 4)
        page = []
        for offset in range(0, 4, 3):
            page += self.ids(k=3, offset=offset)[0]
        self.assertEqual(page, everything)
        self.assertEqual(self.ids(k=2, offset=10), ([], 4))

    def test_close_delete_and_update_are_seen_at_once(self):
        self.seed()
        self.assertEqual(self.c.call("posting.close", {"id": "P2"}),
                         {"closed": True})
        self.assertNotIn("P2", self.ids(q="Excel")[0])
        self.assertIn("P2", self.ids(q="Excel", open_only=False)[0])
        self.c.call("posting.delete", {"id": "P4"})
        self.assertEqual(self.ids(q="会计"), ([], 0))
        self.c.call("posting.put", posting("P3", title="出纳",
                                           city="440000",
                                           description="现金管理"))
        self.assertEqual(self.ids(q="出纳"), (["P3"], 1))
        self.assertEqual(self.ids(q="销售"), ([], 0))
        expired = posting("P5", title="出纳", city="440106",
                          posted_at=1, expires_at=2)
        self.c.call("posting.put", expired)
        self.assertEqual(self.ids(q="出纳")[0], ["P3"])
        self.assertEqual(self.ids(q="出纳", open_only=False)[1], 2)

    def test_restart_rebuilds_the_index(self):
        self.seed()
        before = self.c.call("posting.search", {"q": "Excel"})
        self.c.close()
        self.assertEqual(self.daemon.stop(), 0)
        self.daemon.start()
        self.c = self.daemon.client()
        self.assertEqual(self.c.call("posting.search", {"q": "Excel"}),
                         before)

    def test_bad_params(self):
        cases = [
            ({"k": 0}, "k"), ({"k": 101}, "k"), ({"k": "5"}, "k"),
            ({"k": 2.5}, "k"), ({"offset": -1}, "offset"),
            ({"offset": 10001}, "offset"), ({"city": "449999"}, "city"),
            ({"city": 440100}, "city"), ({"education": "小学"}, "education"),
            ({"salary_min": -5}, "salary_min"), ({"q": 7}, "q"),
            ({"open_only": 1}, "open_only"), ({"category": ""}, "category"),
            ({"q": " ".join("w%d" % i for i in range(40))}, "q"),
        ]
        for params, field in cases:
            err = self.c.error("posting.search", params)
            self.assertEqual((err["code"], err["field"]),
                             ("invalid_argument", field), params)
        # Integral floats and full-width codes are accepted.
        r = self.c.call("posting.search", {"k": 5.0, "city": "４４０１００"})
        self.assertEqual(r["total"], 0)
        r = self.c.call("posting.search")
        self.assertEqual(r, {"total": 0, "total_exact": True, "items": []})
