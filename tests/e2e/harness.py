"""Starts a real matchd on a free loopback port and talks msgpack-RPC to it.

Every end-to-end test goes through this: a fresh data directory, the real
daemon binary named by $MATCHD_BIN (default bin/matchd), a real TCP socket
and Debian's python3-msgpack as the client.  Nothing here waits on a fixed
sleep for correctness: readiness is a successful ping, and every wait has
a generous deadline that only bounds a broken run.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import msgpack

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEADLINE_S = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RpcError(Exception):
    def __init__(self, err):
        super().__init__("%s: %s (field %s)" % (
            err.get("code"), err.get("message"), err.get("field")))
        self.code = err.get("code")
        self.field = err.get("field")
        self.error = err


class Client:
    """A blocking msgpack-RPC client with pipelining."""

    def __init__(self, port, timeout=DEADLINE_S):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        self.msgid = 0
        self.pending = {}

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, method, params=None, msgid=None):
        if msgid is None:
            self.msgid += 1
            msgid = self.msgid
        args = [] if params is None else [params]
        self.sock.sendall(msgpack.packb([0, msgid, method, args]))
        return msgid

    def read_object(self):
        """The next object from the server; None when it closed."""
        for obj in self.unpacker:
            return obj
        while True:
            data = self.sock.recv(1 << 16)
            if not data:
                return None
            self.unpacker.feed(data)
            for obj in self.unpacker:
                return obj

    def response(self, msgid):
        """Waits for the response to msgid; returns (error, result)."""
        while msgid not in self.pending:
            obj = self.read_object()
            if obj is None:
                raise ConnectionError("server closed the connection")
            if obj[0] == 1:
                self.pending[obj[1]] = (obj[2], obj[3])
        return self.pending.pop(msgid)

    def call(self, method, params=None):
        err, result = self.response(self.send(method, params))
        if err is not None:
            raise RpcError(err)
        return result

    def error(self, method, params=None):
        """Calls a method that must fail; returns the error map."""
        err, result = self.response(self.send(method, params))
        if err is None:
            raise AssertionError("%s succeeded: %r" % (method, result))
        return err

    def closed(self):
        """True when the server closes this connection (EOF or reset)."""
        try:
            return self.read_object() is None
        except (ConnectionResetError, BrokenPipeError):
            return True


class Daemon:
    """One matchd process on a data directory of its own."""

    def __init__(self, *flags, data=None, binary=None):
        self.binary = binary or os.environ.get(
            "MATCHD_BIN", os.path.join(TOP, "bin", "matchd"))
        self.own_dir = data is None
        self.data = data or tempfile.mkdtemp(prefix="matchd-e2e-")
        self.flags = list(flags)
        self.port = None
        self.proc = None
        self.log_path = None

    def start(self):
        self.port = free_port()
        self.log_path = os.path.join(self.data, "daemon.log")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--listen", "127.0.0.1:%d" % self.port,
             "--data", os.path.join(self.data, "db"), "--threads", "2",
             "--ref", os.path.join(TOP, "data"),
             "--sync", "on"] + self.flags,
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("matchd exited with %d:\n%s" % (
                    self.proc.returncode, self.log()))
            try:
                c = self.client()
                c.call("ping")
                c.close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("matchd did not answer ping:\n" + self.log())

    def client(self):
        return Client(self.port)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def rss_bytes(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self, sig=signal.SIGTERM):
        """Signals the daemon and returns its exit status."""
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def cleanup(self):
        self.stop(signal.SIGKILL)
        if self.own_dir:
            shutil.rmtree(self.data, ignore_errors=True)


class DaemonTest(unittest.TestCase):
    """A test class with one daemon per test."""

    flags = ()

    def setUp(self):
        self.daemon = Daemon(*self.flags).start()
        self.c = self.daemon.client()

    def tearDown(self):
        self.c.close()
        rc = self.daemon.stop()
        log = self.daemon.log()
        self.daemon.cleanup()
        # A sanitizer report or a crash fails the test that caused it.
        self.assertEqual(rc, 0, "matchd did not exit cleanly:\n" + log)
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)


# Records that pass validation, for tests to start from.
def student(sid="2024000001", **kw):
    rec = {"id": sid, "education": "本科", "major_code": "080901",
           "major": "计算机科学与技术", "school": "华南理工大学",
           "grad_year": 2026, "origin": "440113", "political": "共青团员",
           "bound": True}
    rec.update(kw)
    return rec


def resume(sid="2024000001", **kw):
    rec = {"student_id": sid, "has_photo": True,
           "intro": "热爱后端开发，熟悉 C 与 Linux",
           "skills": ["C", "Linux", "MySQL"],
           "desired_categories": ["软件开发"], "desired_cities": ["440100"],
           "salary_min": 8000, "salary_max": 12000,
           "experiences": [{"kind": "internship", "title": "后端实习生",
                            "org": "某科技公司", "start": 1688169600,
                            "end": 1693526400}],
           "certificates": ["CET-6"],
           "languages": [{"name": "英语", "level": "CET-6"}]}
    rec.update(kw)
    return rec


def company(cid="C00001", **kw):
    rec = {"id": cid, "name": "广州某科技有限公司", "industry": "互联网",
           "size": "100-499人", "city": "440106"}
    rec.update(kw)
    return rec


def posting(pid="P000001", cid="C00001", **kw):
    rec = {"id": pid, "company_id": cid, "title": "C++ 后端开发工程师",
           "category": "软件开发", "description": "负责高并发服务开发",
           "skills": ["C++", "Linux"], "city": "440106",
           "education_min": "本科", "salary_min": 10000,
           "salary_max": 18000, "headcount": 3,
           "expires_at": int(time.time()) + 86400 * 30}
    rec.update(kw)
    return rec
