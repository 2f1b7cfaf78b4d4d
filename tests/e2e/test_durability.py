"""What survives: a clean restart, a kill -9 right after an acknowledged
write, and a full map, which is an error to the caller and never damage."""

import signal
import unittest

from harness import Daemon, company, posting, resume, student


class TestDurability(unittest.TestCase):
    def tearDown(self):
        self.daemon.cleanup()

    def test_kill9_after_ack_keeps_every_acknowledged_write(self):
        self.daemon = Daemon().start()
        c = self.daemon.client()
        c.call("company.put", company())
        acked = []
        # Pipelined writes; every one answered is durable.
        for i in range(200):
            c.send("student.put", student("K%04d" % i))
        for i in range(200):
            err, res = c.response(i + 2)
            self.assertIsNone(err)
            acked.append(res["id"])
        c.call("posting.put", posting())
        self.daemon.stop(signal.SIGKILL)
        self.daemon.start()
        c = self.daemon.client()
        for sid in acked:
            self.assertEqual(c.call("student.get", {"id": sid})["id"], sid)
        self.assertEqual(c.call("posting.get", {"id": "P000001"})["id"],
                         "P000001")
        c.close()

    def test_restart_keeps_data(self):
        self.daemon = Daemon().start()
        c = self.daemon.client()
        c.call("student.put", student())
        c.call("resume.put", resume())
        c.call("company.put", company())
        c.call("posting.put", posting())
        before = {k: c.call(k + ".get", {"id": i}) for k, i in
                  (("student", "2024000001"), ("company", "C00001"),
                   ("posting", "P000001"))}
        c.close()
        self.assertEqual(self.daemon.stop(), 0)
        self.daemon.start()
        c = self.daemon.client()
        for k, i in (("student", "2024000001"), ("company", "C00001"),
                     ("posting", "P000001")):
            self.assertEqual(c.call(k + ".get", {"id": i}), before[k])
        self.assertEqual(c.call("resume.get", {"student_id":
                                               "2024000001"})
                         ["completeness"], 100)
        c.close()

    def test_full_map_is_unavailable_not_damage(self):
        self.daemon = Daemon("--map-max", str(1 << 20)).start()
        c = self.daemon.client()
        stored = []
        full = None
        for i in range(5000):
            rec = student("F%05d" % i, school="某某大学" * 300)
            err, res = c.response(c.send("student.put", rec))
            if err is not None:
                full = err
                break
            stored.append(res["id"])
        self.assertIsNotNone(full, "the map never filled")
        self.assertEqual(full["code"], "unavailable")
        self.assertGreater(len(stored), 10)
        # Reads go on; what was acknowledged is intact.
        for sid in stored[-5:]:
            self.assertEqual(c.call("student.get", {"id": sid})["id"], sid)
        c.close()
        self.assertEqual(self.daemon.stop(), 0)
        self.daemon.flags = ["--map-max", str(64 << 20)]
        self.daemon.start()
        c = self.daemon.client()
        self.assertEqual(c.call("stats")["records"]["student"],
                         len(stored))
        c.call("student.put", student("after-growth"))
        c.close()
