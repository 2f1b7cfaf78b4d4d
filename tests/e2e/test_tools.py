"""The tools against the real daemon: matchgen's output loads with no
rejection, matchctl import reports bad lines by number and exits 2, an
export imports back into an empty daemon to the same records, and
matchbench drives posting.search from a queries file and refuses a bad
one by file and line."""

import json
import os
import subprocess
import tempfile
import unittest

from harness import TOP, Daemon

BIN = os.path.join(TOP, "bin")
MATCHCTL = os.environ.get("MATCHCTL_BIN", os.path.join(BIN, "matchctl"))
MATCHGEN = os.environ.get("MATCHGEN_BIN", os.path.join(BIN, "matchgen"))
# The matchbench beside the matchctl under test (the sanitizer build's in
# the sanitizer run).
MATCHBENCH = os.environ.get(
    "MATCHBENCH_BIN", os.path.join(os.path.dirname(MATCHCTL), "matchbench"))


def ctl(daemon, *args, stdin=None):
    return subprocess.run(
        [MATCHCTL, "--addr", "127.0.0.1:%d" % daemon.port] + list(args),
        input=stdin, capture_output=True, text=True, timeout=120)


class TestTools(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon().start()
        self.tmp = tempfile.mkdtemp(prefix="matchd-tools-")

    def tearDown(self):
        self.assertEqual(self.daemon.stop(), 0, self.daemon.log())
        self.daemon.cleanup()
        subprocess.run(["rm", "-rf", self.tmp])

    def generate(self, *args):
        path = os.path.join(self.tmp, "set.jsonl")
        subprocess.run([MATCHGEN, "--seed", "7", "--now", "1767225600",
                        "--out", path] + list(args), check=True,
                       capture_output=True, timeout=120)
        return path

    def test_demo_set_loads_without_rejections(self):
        path = self.generate("--scale", "demo")
        with open(path) as f:
            lines = [json.loads(line) for line in f]
        kinds = {}
        for rec in lines:
            kinds[rec["kind"]] = kinds.get(rec["kind"], 0) + 1
        r = ctl(self.daemon, "import", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(" 0 rejected", r.stdout)
        stats = self.daemon.client().call("stats")["records"]
        for kind in ("student", "resume", "company", "posting"):
            self.assertEqual(stats[kind], kinds[kind], kind)

    def test_bad_lines_reported_by_number(self):
        good = self.generate("--students", "20", "--postings", "5",
                             "--companies", "3")
        with open(good) as f:
            lines = f.read().splitlines()
        lines.insert(2, "{not json")
        lines.insert(5, json.dumps({"kind": "student", "id": "bad",
                                    "education": "本科",
                                    "major_code": "080901",
                                    "grad_year": 1900, "origin": "440113"}))
        lines.insert(7, json.dumps({"kind": "spaceship"}))
        path = os.path.join(self.tmp, "mixed.jsonl")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        r = ctl(self.daemon, "import", path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("line 3: invalid_json", r.stderr)
        self.assertIn("line 6: invalid_argument", r.stderr)
        self.assertIn("(field grad_year)", r.stderr)
        self.assertIn("line 8: invalid_argument", r.stderr)
        self.assertIn(" 3 rejected", r.stdout)

    def test_export_round_trip(self):
        path = self.generate("--students", "50", "--postings", "20",
                             "--companies", "5")
        self.assertEqual(ctl(self.daemon, "import", path).returncode, 0)
        first = {}
        for kind in ("company", "student", "resume", "posting"):
            r = ctl(self.daemon, "export", kind)
            self.assertEqual(r.returncode, 0, r.stderr)
            first[kind] = r.stdout
        dump = os.path.join(self.tmp, "dump.jsonl")
        with open(dump, "w") as f:
            for kind in ("company", "student", "resume", "posting"):
                f.write(first[kind])
        other = Daemon().start()
        try:
            r = subprocess.run(
                [MATCHCTL, "--addr", "127.0.0.1:%d" % other.port, "import",
                 dump], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            for kind in first:
                again = subprocess.run(
                    [MATCHCTL, "--addr", "127.0.0.1:%d" % other.port,
                     "export", kind], capture_output=True, text=True,
                    timeout=120).stdout
                self.assertEqual(again, first[kind], kind)
        finally:
            other.stop()
            other.cleanup()

    def bench(self, *args):
        return subprocess.run(
            [MATCHBENCH, "--addr", "127.0.0.1:%d" % self.daemon.port,
             "--threads", "1", "--conns", "2"] + list(args),
            capture_output=True, text=True, timeout=120)

    def test_matchbench_queries_file(self):
        path = self.generate("--students", "20", "--postings", "30",
                             "--companies", "5")
        self.assertEqual(ctl(self.daemon, "import", path).returncode, 0)
        queries = os.path.join(self.tmp, "queries.tsv")
        with open(queries, "w") as f:
            f.write("java python\t440100\n"
                    "数据分析\t\n"
                    "c++ 开发\t440000\r\n"
                    "沟通能力\t440106\n")
        out = os.path.join(self.tmp, "bench.json")
        r = self.bench("--mix", "posting.search=1", "--queries", queries,
                       "--requests", "200", "--json", out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("4 queries", r.stderr)
        self.assertNotIn("placeholders", r.stderr)
        with open(out) as f:
            res = json.load(f)
        self.assertEqual(res["errors"], 0, res["errors_by_code"])
        self.assertGreaterEqual(res["methods"]["posting.search"]["requests"],
                                200)

    def test_matchbench_refuses_a_bad_queries_line(self):
        queries = os.path.join(self.tmp, "bad.tsv")
        with open(queries, "w") as f:
            f.write("java\t440100\n数据分析\t\njava python 440100\n"
                    "c++\t\n")
        r = self.bench("--mix", "posting.search=1", "--queries", queries,
                       "--requests", "10")
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("%s:3: no tab" % queries, r.stderr)
        self.assertEqual(r.stdout, "")
