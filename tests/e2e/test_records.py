"""Records through the protocol: put, get, delete, put_many, close,
validation errors naming the field, normalisation, and references."""

import msgpack

from harness import DaemonTest, RpcError, company, posting, resume, student


class TestRecords(DaemonTest):
    def seed(self):
        self.c.call("student.put", student())
        self.c.call("company.put", company())

    def test_student_roundtrip_and_defaults(self):
        r = self.c.call("student.put", student(name="张三",
                                               id_number="44010..."))
        self.assertEqual(r, {"id": "2024000001", "created": True})
        r = self.c.call("student.put", student())
        self.assertFalse(r["created"])
        got = self.c.call("student.get", {"id": "2024000001"})
        self.assertEqual(got["grad_month"], 6)
        self.assertEqual(got["region"], "mainland")
        self.assertTrue(got["bound"])
        # Unknown fields are ignored and not stored.
        self.assertNotIn("name", got)
        self.assertNotIn("id_number", got)

    def test_fullwidth_folding_and_trimming(self):
        self.c.call("student.put", student(
            sid="　Ｈ（２０２３）００１ ", region="hk", origin=None,
            school="  香港大学（本部）  "))
        got = self.c.call("student.get", {"id": "H(2023)001"})
        self.assertEqual(got["id"], "H(2023)001")
        self.assertEqual(got["school"], "香港大学(本部)")
        got = self.c.call("student.get", {"id": "Ｈ（2023）001"})
        self.assertEqual(got["id"], "H(2023)001")

    def test_integral_floats_and_bin_strings(self):
        rec = student(grad_year=2026.0)
        rec["major_code"] = b"080901"
        packed = msgpack.packb([0, 1, "student.put", [rec]],
                               use_bin_type=True)
        self.c.send_raw(packed)
        err, res = self.c.response(1)
        self.assertIsNone(err)
        err = self.c.error("student.put", student(grad_year=2026.5))
        self.assertEqual((err["code"], err["field"]),
                         ("invalid_argument", "grad_year"))
        err = self.c.error("student.put", student(grad_year=float("nan")))
        self.assertEqual(err["field"], "grad_year")
        rec = student(school=b"\xff\xfe")
        self.c.send_raw(msgpack.packb([0, 2, "student.put", [rec]],
                                      use_bin_type=True))
        err, _ = self.c.response(2)
        self.assertEqual((err["code"], err["field"]),
                         ("invalid_argument", "school"))

    def test_validation_names_fields(self):
        cases = [
            ("student.put", student(education="小学"), "education"),
            ("student.put", student(grad_year=1999), "grad_year"),
            ("student.put", student(grad_month=13), "grad_month"),
            ("student.put", student(origin="440000"), "origin"),
            ("student.put", student(origin="999999"), "origin"),
            ("student.put", student(political="路人"), "political"),
            ("student.put", student(major_code="99"), "major_code"),
            ("student.put", student(region="uk"), "region"),
            ("student.put", student(bound=1), "bound"),
            ("student.put", {"education": "本科"}, "id"),
            ("resume.put", resume(skills=["C", 5]), "skills[1]"),
            ("resume.put", resume(salary_min=20000, salary_max=100),
             "salary_min"),
            ("resume.put", resume(desired_cities=["440100", "12"]),
             "desired_cities[1]"),
            ("resume.put", resume(experiences=[{"kind": "nap"}]),
             "experiences[0].kind"),
            ("company.put", company(city="1"), "city"),
            ("posting.put", posting(headcount=0), "headcount"),
            ("posting.put", posting(city=None), "city"),
            ("posting.put", posting(cohorts=[2026, "x"]), "cohorts[1]"),
        ]
        for method, rec, field in cases:
            err = self.c.error(method, rec)
            self.assertEqual(err["code"], "invalid_argument",
                             (method, field, err))
            self.assertEqual(err["field"], field, (method, err))
        stats = self.c.call("stats")
        self.assertEqual(sum(stats["records"].values()), 0,
                         "a rejected write stored something")

    def test_references(self):
        err = self.c.error("resume.put", resume())
        self.assertEqual((err["code"], err["field"]),
                         ("invalid_argument", "student_id"))
        err = self.c.error("posting.put", posting())
        self.assertEqual((err["code"], err["field"]),
                         ("invalid_argument", "company_id"))
        self.seed()
        r = self.c.call("resume.put", resume())
        self.assertEqual(r["completeness"], 100)
        self.assertEqual(r["missing"], [])
        r = self.c.call("posting.put", posting())
        self.assertTrue(r["created"])

    def test_resume_completeness_and_missing(self):
        self.seed()
        r = self.c.call("resume.put", {"student_id": "2024000001"})
        self.assertTrue(r["created"])
        self.assertLess(r["completeness"], 60)
        self.assertIn("skills", r["missing"])
        self.assertIn("photo", r["missing"])
        got = self.c.call("resume.get", {"student_id": "2024000001"})
        self.assertEqual(got["completeness"], r["completeness"])
        self.assertEqual(got["missing"], r["missing"])

    def test_delete(self):
        self.seed()
        self.c.call("resume.put", resume())
        self.assertEqual(self.c.call("student.delete",
                                     {"id": "2024000001"}),
                         {"deleted": True})
        err = self.c.error("resume.get", {"student_id": "2024000001"})
        self.assertEqual(err["code"], "not_found")
        self.assertEqual(self.c.call("student.delete",
                                     {"id": "2024000001"}),
                         {"deleted": False})
        err = self.c.error("student.get", {"id": "2024000001"})
        self.assertEqual((err["code"], err["field"]), ("not_found", "id"))

    def test_posting_close_and_posted_at(self):
        self.seed()
        self.c.call("posting.put", posting())
        first = self.c.call("posting.get", {"id": "P000001"})
        self.assertIn("posted_at", first)
        self.assertFalse(first["closed"])
        self.assertEqual(self.c.call("posting.close", {"id": "P000001"}),
                         {"closed": True})
        self.assertEqual(self.c.call("posting.close", {"id": "P000001"}),
                         {"closed": False})
        self.c.call("posting.put", posting(title="更新后的标题"))
        again = self.c.call("posting.get", {"id": "P000001"})
        self.assertEqual(again["posted_at"], first["posted_at"])
        self.assertTrue(again["closed"])
        self.assertEqual(again["title"], "更新后的标题")
        err = self.c.error("posting.close", {"id": "nope"})
        self.assertEqual(err["code"], "not_found")

    def test_put_many(self):
        items = [student("S%d" % i) for i in range(10)]
        items[3] = student("S3", grad_year="soon")
        items[7] = "not a map"
        r = self.c.call("student.put_many", {"items": items})
        self.assertEqual(r["stored"], 8)
        self.assertEqual([e["index"] for e in r["errors"]], [3, 7])
        self.assertEqual(r["errors"][0]["field"], "grad_year")
        self.assertEqual(r["errors"][0]["code"], "invalid_argument")
        err = self.c.error("student.get", {"id": "S3"})
        self.assertEqual(err["code"], "not_found")
        # references checked per item, in order within the batch
        self.c.call("company.put", company())
        r = self.c.call("posting.put_many", {"items": [
            posting("P1"), posting("P2", cid="missing"), posting("P3")]})
        self.assertEqual(r["stored"], 2)
        self.assertEqual(r["errors"][0]["index"], 1)
        self.assertEqual(r["errors"][0]["field"], "company_id")
        err = self.c.error("student.put_many", {"items": "x"})
        self.assertEqual(err["field"], "items")

    def test_scan(self):
        for i in range(25):
            self.c.call("student.put", student("S%03d" % i))
        seen, after = [], None
        while True:
            args = {"kind": "student", "limit": 10}
            if after:
                args["after"] = after
            page = self.c.call("scan", args)
            seen += [r["id"] for r in page["items"]]
            after = page["next"]
            if after is None:
                break
        self.assertEqual(seen, ["S%03d" % i for i in range(25)])

    def test_get_missing_is_not_found(self):
        for kind in ("student", "company", "posting"):
            err = self.c.error(kind + ".get", {"id": "none"})
            self.assertEqual(err["code"], "not_found")
        err = self.c.error("student.get", {})
        self.assertEqual((err["code"], err["field"]),
                         ("invalid_argument", "id"))
        with self.assertRaises(RpcError):
            self.c.call("resume.get", {"id": "x"})
