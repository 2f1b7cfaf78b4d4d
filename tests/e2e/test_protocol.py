"""The wire contract: framing, errors, pipelining, limits and auth."""

import os
import socket
import tempfile
import time

import msgpack

from harness import Daemon, DaemonTest, student


class TestBasics(DaemonTest):
    def test_ping_hello_stats(self):
        self.assertEqual(self.c.call("ping"), "pong")
        hello = self.c.call("hello", {"client": "e2e"})
        self.assertEqual(hello["server"], "matchd")
        self.assertEqual(hello["protocol"], 1)
        stats = self.c.call("stats")
        for key in ("records", "requests", "errors", "latency_us",
                    "connections", "store", "memory_rss_bytes"):
            self.assertIn(key, stats)
        self.assertGreaterEqual(stats["requests"]["ping"], 1)
        self.assertEqual(stats["records"]["student"], 0)
        self.assertEqual(stats["match"]["students"], 0)
        for key in ("eligible", "postings", "stale", "queue", "applied",
                    "dropped", "reloads", "rebuilt", "offers",
                    "entered", "lag_us_max"):
            self.assertIn(key, stats["match"])

    def test_unknown_method(self):
        err = self.c.error("no.such.method")
        self.assertEqual(err["code"], "unknown_method")
        err = self.c.error("student.frobnicate", {"id": "x"})
        self.assertEqual(err["code"], "unknown_method")

    def test_bad_params(self):
        self.c.send_raw(msgpack.packb([0, 7, "ping", {"a": 1}]))
        err, _ = self.c.response(7)
        self.assertEqual(err["code"], "bad_request")
        self.c.send_raw(msgpack.packb([0, 8, "ping", [1]]))
        err, _ = self.c.response(8)
        self.assertEqual(err["code"], "bad_request")
        self.assertEqual(self.c.call("ping"), "pong")

    def test_method_as_bin_and_msgid_echo(self):
        self.c.send_raw(msgpack.packb([0, 4294967295, b"ping", []],
                                      use_bin_type=True))
        err, result = self.c.response(4294967295)
        self.assertIsNone(err)
        self.assertEqual(result, "pong")

    def test_pipelining(self):
        n = 2000
        burst = b"".join(msgpack.packb([0, i, "ping", []])
                         for i in range(1, n + 1))
        self.c.send_raw(burst)
        seen = set()
        while len(seen) < n:
            obj = self.c.read_object()
            self.assertEqual(obj[0], 1)
            self.assertEqual(obj[3], "pong")
            seen.add(obj[1])
        self.assertEqual(seen, set(range(1, n + 1)))

    def test_pipelined_writes_apply_in_order(self):
        burst = b""
        for i in range(50):
            burst += msgpack.packb([0, i + 1, "student.put",
                                    [student(grad_year=2000 + i)]])
        self.c.send_raw(burst)
        for i in range(50):
            err, _ = self.c.response(i + 1)
            self.assertIsNone(err)
        got = self.c.call("student.get", {"id": "2024000001"})
        self.assertEqual(got["grad_year"], 2049)

    def test_responses_and_notifications_are_not_answered(self):
        self.c.send_raw(msgpack.packb([1, 99, None, "x"]))
        self.c.send_raw(msgpack.packb([2, "push", [{}]]))
        self.assertEqual(self.c.call("ping"), "pong")
        self.assertEqual(self.c.pending, {})

    def test_not_a_request_with_msgid_keeps_connection(self):
        self.c.send_raw(msgpack.packb([5, 42, "ping", []]))
        err, _ = self.c.response(42)
        self.assertEqual(err["code"], "bad_request")
        self.c.send_raw(msgpack.packb([0, 43, "ping"]))
        err, _ = self.c.response(43)
        self.assertEqual(err["code"], "bad_request")
        self.assertEqual(self.c.call("ping"), "pong")

    def test_not_a_request_without_msgid_closes(self):
        self.c.send_raw(msgpack.packb({"hello": 1}))
        self.assertTrue(self.c.closed())
        other = self.daemon.client()
        self.assertEqual(other.call("ping"), "pong")
        other.close()

    def test_invalid_bytes_answered_then_closed(self):
        self.c.send_raw(b"\x94\x00\x11\xc1")
        err, _ = self.c.response(0x11)
        self.assertEqual(err["code"], "bad_request")
        self.assertTrue(self.c.closed())

    def test_oversized_header_refused_without_the_bytes(self):
        # A string announcing 1 GiB; the body is never sent.
        self.c.send_raw(b"\x94\x00\x09\xa4ping\x91\x81\xa1x\xdb"
                        b"\x40\x00\x00\x00")
        err, _ = self.c.response(9)
        self.assertEqual(err["code"], "too_large")
        self.assertTrue(self.c.closed())

    def test_rss_stays_flat_under_garbage(self):
        before = self.daemon.rss_bytes()
        for _ in range(50):
            c = self.daemon.client()
            c.send_raw(b"\xdd\xff\xff\xff\xff")
            self.assertTrue(c.closed())
            c.close()
        self.assertLess(self.daemon.rss_bytes(), before + (64 << 20))


class TestLimits(DaemonTest):
    flags = ("--max-string", "100", "--max-list", "12",
             "--max-message", "4096", "--max-depth", "6")

    def test_string_too_long_names_field(self):
        err = self.c.error("student.put", student(school="x" * 101))
        self.assertEqual(err["code"], "too_large")
        self.assertEqual(err["field"], "school")

    def test_list_too_long_names_field(self):
        err = self.c.error("student.put_many",
                           {"items": [student()] * 13})
        self.assertEqual(err["code"], "too_large")
        self.assertEqual(err["field"], "items")

    def test_nested_path(self):
        err = self.c.error("resume.put", {
            "student_id": "1", "experiences": [{"kind": "x" * 200}]})
        self.assertEqual(err["code"], "too_large")
        self.assertEqual(err["field"], "experiences[0].kind")

    def test_message_too_large_closes(self):
        first = self.c.send("ping", {"pad": ["y" * 90] * 5})
        self.c.send_raw(msgpack.packb([0, 77, "ping",
                                       [{"pad": "z" * 5000}]]))
        self.assertEqual(self.c.response(first), (None, "pong"))
        err, _ = self.c.response(77)
        self.assertEqual(err["code"], "too_large")
        self.assertTrue(self.c.closed())

    def test_refusal_waits_for_earlier_writes(self):
        # A write in flight when a bad frame arrives is still answered.
        deep = {"a": 1}
        for _ in range(8):
            deep = {"a": deep}
        burst = msgpack.packb([0, 1, "student.put", [student()]])
        burst += msgpack.packb([0, 2, "ping", [deep]])
        self.c.send_raw(burst)
        err, res = self.c.response(1)
        self.assertIsNone(err)
        self.assertTrue(res["created"])
        err, _ = self.c.response(2)
        self.assertEqual(err["code"], "too_large")
        self.assertTrue(self.c.closed())

    def test_too_deep(self):
        deep = {"a": 1}
        for _ in range(8):
            deep = {"a": deep}
        self.c.send_raw(msgpack.packb([0, 5, "ping", [deep]]))
        err, _ = self.c.response(5)
        self.assertEqual(err["code"], "too_large")
        self.assertTrue(self.c.closed())


class TestToken(DaemonTest):
    def setUp(self):
        fd, self.token_path = tempfile.mkstemp()
        os.write(fd, b"s3cret-token \n\t\n")
        os.close(fd)
        self.flags = ("--token-file", self.token_path)
        super().setUp()

    def tearDown(self):
        super().tearDown()
        os.unlink(self.token_path)

    def test_token_rule(self):
        self.assertEqual(self.c.call("ping"), "pong")
        err = self.c.error("student.get", {"id": "1"})
        self.assertEqual(err["code"], "unauthorized")
        err = self.c.error("stats")
        self.assertEqual(err["code"], "unauthorized")
        err = self.c.error("hello", {"token": "wrong"})
        self.assertEqual(err["code"], "unauthorized")
        err = self.c.error("student.put", student())
        self.assertEqual(err["code"], "unauthorized")
        self.c.call("hello", {"token": "s3cret-token"})
        err = self.c.error("student.get", {"id": "2024000001"})
        self.assertEqual(err["code"], "not_found")
        other = self.daemon.client()
        err = other.error("student.get", {"id": "1"})
        self.assertEqual(err["code"], "unauthorized")
        other.close()


class TestConnectionLimits(DaemonTest):
    flags = ("--max-conns", "3", "--idle-timeout", "1",
             "--stall-timeout", "2", "--max-output", "65536")

    def test_max_conns(self):
        # The readiness probe's connection may still be closing.
        deadline = time.monotonic() + 10
        while (self.c.call("stats")["connections"]["open"] > 1 and
               time.monotonic() < deadline):
            time.sleep(0.02)
        extra = [self.daemon.client() for _ in range(2)]
        for c in extra:
            self.assertEqual(c.call("ping"), "pong")
        refused = self.daemon.client()
        self.assertTrue(refused.closed())
        refused.close()
        for c in extra:
            c.close()

    def test_idle_timeout(self):
        idle = self.daemon.client()
        self.assertEqual(idle.call("ping"), "pong")
        self.assertTrue(idle.closed())  # within a few seconds
        idle.close()

    def test_client_that_never_reads(self):
        slow = socket.create_connection(("127.0.0.1", self.daemon.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        before = self.daemon.rss_bytes()
        big = msgpack.packb([0, 1, "stats", []])
        sent = 0
        slow.settimeout(0.5)
        deadline = time.monotonic() + 20
        dropped = False
        while time.monotonic() < deadline:
            try:
                slow.sendall(big * 200)
                sent += 200
            except (socket.timeout, BlockingIOError):
                pass
            except (ConnectionResetError, BrokenPipeError):
                dropped = True
                break
        self.assertTrue(dropped, "a client that never reads was kept")
        # The daemon paused it instead of buffering every reply.
        self.assertLess(self.daemon.rss_bytes(), before + (64 << 20))
        fresh = self.daemon.client()
        self.assertEqual(fresh.call("ping"), "pong")
        self.assertGreaterEqual(
            fresh.call("stats")["connections"]["slow_dropped"], 1)
        fresh.close()
        slow.close()


class TestShutdown(DaemonTest):
    def test_sigterm_exits_zero(self):
        self.c.call("student.put", student())
        rc = self.daemon.stop()
        self.assertEqual(rc, 0)
        self.daemon.start()
        self.c = self.daemon.client()
        self.assertEqual(self.c.call("student.get",
                                     {"id": "2024000001"})["id"],
                         "2024000001")
