"""Matching through the protocol: lists that follow puts, closes, deletes
and expiries; explanations; candidate lists; re-ranks; eligibility
reasons; argument errors; lists rebuilt after a restart.

Lists follow writes within a bounded delay, so every wait for a list is a
poll with a deadline; what the protocol promises at once (a closed posting
never shown after the close's answer) is checked at once."""

import time

from harness import (DEADLINE_S, DaemonTest, company, posting, resume,
                     student)

FEATURES = {"text", "skills", "major", "location", "category", "salary",
            "freshness"}
FILTERS = ["open", "education", "cohort", "major", "political",
           "directed_region"]


def wait_for(fn, what):
    """Polls fn until it returns a true value; fails after the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


def ids(answer):
    return [it["posting_id"] for it in answer["items"]]


class TestMatch(DaemonTest):
    def seed(self, sid="2024000001", **kw):
        self.c.call("company.put", company())
        self.c.call("student.put", student(sid, **kw))
        self.c.call("resume.put", resume(sid))

    def get(self, sid="2024000001", **kw):
        args = {"student_id": sid}
        args.update(kw)
        return self.c.call("match.get", args)

    def wait_items(self, want, sid="2024000001"):
        return wait_for(lambda: set(ids(self.get(sid))) == set(want) and
                        self.get(sid), "items %s" % sorted(want))

    def test_list_follows_puts_in_order(self):
        self.seed()
        self.c.call("posting.put", posting("P1"))
        self.c.call("posting.put", posting(
            "P2", title="会计", category="财务/会计", skills=["Excel"],
            description="负责账务处理", city="110105"))
        self.c.call("posting.put", posting("P3", skills=["C", "Linux"],
                                           title="C 后端开发"))
        got = self.wait_items({"P1", "P2", "P3"})
        scores = [it["score"] for it in got["items"]]
        self.assertEqual(scores, sorted(scores, reverse=True))
        self.assertEqual(ids(got)[-1], "P2")
        self.assertTrue(got["eligible"])
        self.assertEqual(got["completeness"], 100)
        self.assertEqual(got["missing"], [])
        self.assertNotIn("reason", got)
        # Paging and explained items.
        page = self.get(k=1, offset=1)
        self.assertEqual(ids(page), ids(got)[1:2])
        explained = self.get(explain=True)
        self.assertEqual(ids(explained), ids(got))
        for it in explained["items"]:
            self.assertTrue(set(it["reasons"]) <= FEATURES)

    def test_explain_adds_up(self):
        self.seed()
        self.c.call("posting.put", posting("P1"))
        got = self.wait_items({"P1"})
        ex = self.c.call("match.explain", {"student_id": "2024000001",
                                           "posting_id": "P1"})
        self.assertEqual(ex["score"], got["items"][0]["score"])
        self.assertEqual(set(ex["features"]), FEATURES)
        total = sum(f["contribution"] for f in ex["features"].values())
        self.assertAlmostEqual(total, ex["score"], places=4)
        for f in ex["features"].values():
            self.assertTrue(0 <= f["value"] <= 1)
            self.assertGreaterEqual(f["weight"], 0)
        self.assertEqual([f["name"] for f in ex["filters"]], FILTERS)
        self.assertTrue(all(f["passed"] for f in ex["filters"]))
        # A filter that fails: a doctorate is required.
        self.c.call("posting.put", posting("P2", education_min="博士"))
        ex = self.c.call("match.explain", {"student_id": "2024000001",
                                           "posting_id": "P2"})
        self.assertEqual(ex["score"], 0)
        failed = [f["name"] for f in ex["filters"] if not f["passed"]]
        self.assertEqual(failed, ["education"])
        err = self.c.error("match.explain", {"student_id": "nobody",
                                             "posting_id": "P1"})
        self.assertEqual((err["code"], err["field"]),
                         ("not_found", "student_id"))
        err = self.c.error("match.explain", {"student_id": "2024000001",
                                             "posting_id": "nope"})
        self.assertEqual((err["code"], err["field"]),
                         ("not_found", "posting_id"))

    def test_close_delete_and_expiry_leave_the_list(self):
        self.seed()
        soon = int(time.time()) + 2
        for pid in ("P1", "P2", "P3"):
            self.c.call("posting.put", posting(pid))
        self.c.call("posting.put", posting("P4", expires_at=soon))
        self.wait_items({"P1", "P2", "P3", "P4"})
        # Hidden from the very next answer on.
        self.assertEqual(self.c.call("posting.close", {"id": "P1"}),
                         {"closed": True})
        self.assertNotIn("P1", ids(self.get()))
        self.c.call("posting.delete", {"id": "P2"})
        self.assertNotIn("P2", ids(self.get()))
        # Past the expiry by more than the server clock's tick: time()
        # may read a coarse clock that lags by a few milliseconds.
        wait_for(lambda: time.time() > soon + 0.2, "the expiry time")
        self.assertNotIn("P4", ids(self.get()))
        self.wait_items({"P3"})
        cands = self.c.call("candidates.get", {"posting_id": "P3"})
        self.assertEqual([it["student_id"] for it in cands["items"]],
                         ["2024000001"])
        err = self.c.error("candidates.get", {"posting_id": "P1"})
        self.assertEqual((err["code"], err["field"]),
                         ("not_found", "posting_id"))

    def test_reasons_in_order(self):
        self.c.call("company.put", company())
        cases = [
            ("A1", {"bound": False, "grad_year": 2010}, True, "not_bound"),
            ("A2", {"grad_year": 2010}, True, "cohort_inactive"),
            ("A3", {}, False, "no_resume"),
        ]
        for sid, kw, with_resume, _ in cases:
            self.c.call("student.put", student(sid, **kw))
            if with_resume:
                self.c.call("resume.put", resume(sid))
        self.c.call("student.put", student("A4"))
        thin = resume("A4", has_photo=False, intro=None, experiences=None,
                      certificates=None, languages=None)
        self.assertLess(self.c.call("resume.put", thin)["completeness"], 60)
        cases.append(("A4", {}, True, "resume_incomplete"))
        for sid, _, _, reason in cases:
            got = wait_for(lambda: self.get(sid).get("reason") == reason
                           and self.get(sid), sid + " " + reason)
            self.assertFalse(got["eligible"])
            self.assertEqual(got["items"], [])
        self.assertIn("photo", self.get("A4")["missing"])
        err = self.c.error("match.get", {"student_id": "nobody"})
        self.assertEqual((err["code"], err["field"]),
                         ("not_found", "student_id"))
        # Binding makes A1 eligible; then it has a list.
        self.c.call("student.put", student("A1"))
        self.c.call("posting.put", posting("P1"))
        self.wait_items({"P1"}, sid="A1")

    def test_candidates_are_eligible_students_only(self):
        self.seed("S1")
        self.c.call("student.put", student("S2"))
        self.c.call("resume.put", resume("S2", skills=["C++", "Linux"]))
        self.c.call("student.put", student("S3", bound=False))
        self.c.call("resume.put", resume("S3"))
        self.c.call("posting.put", posting("P1"))
        self.wait_items({"P1"}, sid="S1")
        self.wait_items({"P1"}, sid="S2")
        cands = self.c.call("candidates.get", {"posting_id": "P1", "k": 10})
        got = [it["student_id"] for it in cands["items"]]
        self.assertEqual(sorted(got), ["S1", "S2"])
        scores = [it["score"] for it in cands["items"]]
        self.assertEqual(scores, sorted(scores, reverse=True))
        # S2 matches the posting's skills better.
        self.assertEqual(got[0], "S2")
        one = self.c.call("candidates.get", {"posting_id": "P1", "k": 1,
                                             "offset": 1})
        self.assertEqual([it["student_id"] for it in one["items"]], ["S1"])

    def test_rerank(self):
        self.seed("S1")
        self.c.call("student.put", student("S2"))
        self.c.call("resume.put", resume("S2"))
        self.c.call("posting.put", posting("P1"))
        self.wait_items({"P1"}, sid="S1")
        before = self.get("S1")
        r = self.c.call("rerank", {})
        self.assertEqual(r["students_updated"], 2)
        self.assertEqual(r["pushes"], 0)
        self.assertEqual(ids(self.get("S1")), ids(before))
        r = self.c.call("rerank", {"posting_ids": ["P1", "nope"]})
        self.assertEqual(r["students_updated"], 0)
        self.assertEqual(r["unknown"], 1)
        err = self.c.error("rerank", {"posting_ids": "P1"})
        self.assertEqual((err["code"], err["field"]),
                         ("invalid_argument", "posting_ids"))
        err = self.c.error("rerank", {"posting_ids": ["P1", 5]})
        self.assertEqual((err["code"], err["field"]),
                         ("invalid_argument", "posting_ids[1]"))

    def test_argument_errors(self):
        self.seed()
        for args, field in [
                ({"student_id": "2024000001", "k": 0}, "k"),
                ({"student_id": "2024000001", "k": 1001}, "k"),
                ({"student_id": "2024000001", "k": 2.5}, "k"),
                ({"student_id": "2024000001", "offset": -1}, "offset"),
                ({"student_id": "2024000001", "explain": 1}, "explain"),
                ({"student_id": 7}, "student_id"),
                ({}, "student_id")]:
            err = self.c.error("match.get", args)
            self.assertEqual((err["code"], err["field"]),
                             ("invalid_argument", field), args)
        self.assertEqual(len(self.get(k=3.0)["items"]), 0)
        err = self.c.error("candidates.get", {"posting_id": "P1", "k": 0})
        self.assertEqual(err["field"], "k")

    def test_lists_rebuilt_after_restart(self):
        self.seed()
        for pid in ("P1", "P2"):
            self.c.call("posting.put", posting(pid))
        before = self.wait_items({"P1", "P2"})
        self.c.call("posting.close", {"id": "P2"})
        self.c.close()
        self.assertEqual(self.daemon.stop(), 0)
        self.daemon.start()
        self.c = self.daemon.client()
        # Built from the store before the first answer; P2 stays closed.
        self.assertEqual(ids(self.get()), ["P1"])
        self.assertEqual(len(before["items"]), 2)
