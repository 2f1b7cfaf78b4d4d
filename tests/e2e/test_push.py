"""Pushes end to end: subscribe, write, receive; none for ineligible
students; no duplicates on a re-put; resume by name after an ack; and a
kill -9 after recording loses nothing."""

import signal
import socket
import time
import unittest

from harness import (DEADLINE_S, Client, Daemon, company, posting, resume,
                     student)

FLAGS = ("--push-score-min", "0.05")


def collect(client, want, timeout=DEADLINE_S):
    """Reads push notifications until `want` pushes came or the time is
    up; returns them in arrival order."""
    got = []
    deadline = time.monotonic() + timeout
    client.sock.settimeout(0.2)
    while len(got) < want and time.monotonic() < deadline:
        try:
            obj = client.read_object()
        except socket.timeout:
            continue
        if obj is None:
            break
        if obj[0] == 2 and obj[1] == "push":
            got.extend(obj[2])
    client.sock.settimeout(DEADLINE_S)
    return got


def quiet(client, seconds=1.0):
    """The pushes that arrive within `seconds` (expected: none)."""
    return collect(client, 1 << 30, timeout=seconds)


def seed(c, sid="2024000001", **kw):
    c.call("company.put", company())
    c.call("student.put", student(sid, grad_year=time.gmtime().tm_year,
                                  **kw))
    c.call("resume.put", resume(sid))


class TestPush(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon(*FLAGS).start()

    def tearDown(self):
        rc = self.daemon.stop()
        log = self.daemon.log()
        self.daemon.cleanup()
        self.assertEqual(rc, 0, log)

    def test_subscribe_receive_and_no_duplicates(self):
        w = self.daemon.client()
        seed(w)
        seed(w, "2024000002", bound=False)
        sub = self.daemon.client()
        self.assertEqual(sub.call("push.subscribe", {"name": "platform"}),
                         {"seq": 0})
        w.call("posting.put", posting("P1"))
        got = collect(sub, 1)
        self.assertEqual(len(got), 1, got)
        push = got[0]
        self.assertEqual(push["seq"], 1)
        self.assertEqual(push["student_id"], "2024000001")
        self.assertEqual(push["posting_id"], "P1")
        self.assertTrue(0 < push["score"] <= 1)
        self.assertIn("at", push)
        # the unbound student got nothing; a re-put pushes nothing again
        w.call("posting.put", posting("P1", title="C++ 开发工程师（更新）"))
        self.assertEqual(quiet(sub), [])
        stats = w.call("stats")["pushes"]
        self.assertEqual(stats["recorded"], 1)
        self.assertGreaterEqual(stats["delivered"], 1)

    def test_ack_disconnect_resume_by_name(self):
        w = self.daemon.client()
        seed(w)
        sub = self.daemon.client()
        sub.call("push.subscribe", {"name": "platform"})
        w.call("posting.put", posting("P1"))
        first = collect(sub, 1)
        self.assertEqual(len(first), 1)
        self.assertEqual(sub.call("push.ack", {"seq": first[0]["seq"]}),
                         {"acked": first[0]["seq"]})
        sub.close()
        w.call("posting.put", posting("P2", title="Linux C 开发"))
        w.call("posting.put", posting("P3", title="C++ 服务端开发"))
        deadline = time.monotonic() + DEADLINE_S
        while (w.call("stats")["pushes"]["recorded"] < 3 and
               time.monotonic() < deadline):
            time.sleep(0.05)
        again = self.daemon.client()
        again.call("push.subscribe", {"name": "platform"})
        missed = collect(again, 2)
        self.assertEqual([p["posting_id"] for p in missed], ["P2", "P3"])
        self.assertEqual([p["seq"] for p in missed], [2, 3])
        self.assertEqual(quiet(again, 0.5), [])
        lag = w.call("stats")["pushes"]["subscribers"]["platform"]
        self.assertEqual(lag, {"acked": 1, "lag": 2})

    def test_closed_posting_is_marked(self):
        w = self.daemon.client()
        seed(w)
        w.call("posting.put", posting("P1"))
        deadline = time.monotonic() + DEADLINE_S
        while (w.call("stats")["pushes"]["recorded"] < 1 and
               time.monotonic() < deadline):
            time.sleep(0.05)
        w.call("posting.close", {"id": "P1"})
        sub = self.daemon.client()
        sub.call("push.subscribe", {"from_seq": 0})
        got = collect(sub, 1)
        self.assertEqual(len(got), 1)
        self.assertIs(got[0]["open"], False)

    def test_bad_calls(self):
        c = self.daemon.client()
        err = c.error("push.ack", {"seq": 1})
        self.assertEqual(err["code"], "invalid_argument")
        c.call("push.subscribe", {})
        err = c.error("push.ack", {"seq": 99})
        self.assertEqual((err["code"], err["field"]),
                         ("invalid_argument", "seq"))
        err = c.error("push.subscribe", {"from_seq": -1})
        self.assertEqual(err["field"], "from_seq")


class TestPushCrash(unittest.TestCase):
    def tearDown(self):
        self.daemon.cleanup()

    def test_kill9_after_recording_loses_nothing(self):
        self.daemon = Daemon(*FLAGS).start()
        w = self.daemon.client()
        seed(w)
        seed(w, "2024000003")
        w.call("posting.put", posting("P1"))
        deadline = time.monotonic() + DEADLINE_S
        while (w.call("stats")["pushes"]["recorded"] < 2 and
               time.monotonic() < deadline):
            time.sleep(0.05)
        self.assertEqual(w.call("stats")["pushes"]["recorded"], 2)
        self.daemon.stop(signal.SIGKILL)
        self.daemon.start()
        sub = self.daemon.client()
        self.assertEqual(sub.call("push.subscribe", {"from_seq": 0}),
                         {"seq": 2})
        got = collect(sub, 2)
        self.assertEqual(sorted(p["student_id"] for p in got),
                         ["2024000001", "2024000003"])
        # the rebuild at start-up offered them again: no new records
        self.assertEqual(quiet(sub, 1.0), [])
        self.assertEqual(sub.call("stats")["pushes"]["newest_seq"], 2)
        self.assertEqual(self.daemon.stop(), 0)
