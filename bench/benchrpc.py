"""The msgpack-RPC client pieces bench/push-latency, bench/absorb,
bench/rerank-loop and bench/search-wire share: a connection, one call and its answer, and new
postings made from a generated data set's.  Debian's python3-msgpack."""

import json
import socket

import msgpack


def connect(addr, timeout=30):
    host, port = addr.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout)


class Conn:
    """One connection, one call at a time."""

    def __init__(self, addr, timeout=30):
        self.sock = connect(addr, timeout)
        self.unpacker = msgpack.Unpacker(raw=False)
        self.msgid = 0

    def send(self, method, params):
        self.msgid += 1
        self.sock.sendall(msgpack.packb([0, self.msgid, method, [params]]))
        return self.msgid

    def answer(self, msgid):
        """The [error, result] pair of the response to msgid."""
        while True:
            for obj in self.unpacker:
                if obj[0] == 1 and obj[1] == msgid:
                    return obj[2], obj[3]
            data = self.sock.recv(1 << 16)
            if not data:
                raise RuntimeError("connection closed")
            self.unpacker.feed(data)

    def call(self, method, params):
        """The result, or RuntimeError naming the method and the error."""
        error, result = self.answer(self.send(method, params))
        if error is not None:
            raise RuntimeError("%s: %r" % (method, error))
        return result


def posting_templates(path, want):
    """Up to want open postings of a JSON Lines data set, as put params."""
    out = []
    with open(path) as f:
        for line in f:
            if '"kind":"posting"' not in line.replace(" ", ""):
                continue
            rec = json.loads(line)
            if rec.get("closed"):
                continue
            out.append({k: v for k, v in rec.items()
                        if k != "kind" and not k.startswith("_")})
            if len(out) >= want:
                break
    return out
