#!/usr/bin/env python3
"""Integration tests of what the webhook port does with every kind of input: the README's table
"What it accepts, what it refuses", row by row, against the real daemon. Output is TAP.

Every refusal must come with the status and JSON error code the README gives, a log line, and no
change to anything stored; every accepted oddity must be stored (and counted when repaired); the
daemon must keep serving throughout. The sender's secret (--webhook-secret-file) is tested here
too: 401 without it, rotation by editing the file, and no secret value ever stored.

Environment: as test_daemon.py (top_srcdir, top_builddir, LIVEEVENTSD, KEEP_TMP)."""

import sys

sys.dont_write_bytecode = True  # never leave __pycache__ in a (possibly read-only) source tree

import gzip  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

BASE_TS = 1784041800000
t = None
TMP = None
CODES_TESTED = set()  # error codes this run saw, checked against the README's table


def status_event(call_id, status, ts=BASE_TS):
    return {"message": {"timestamp": ts, "type": "status-update", "call": {"id": call_id, "status": status}}}


def conv_event(call_id, msgs, ts=BASE_TS):
    return {"message": {"timestamp": ts, "type": "conversation-update", "call": {"id": call_id, "status": "ongoing"},
                        "messages": [{"messageId": i, "role": r, "text": x, "timestamp": ts - 10} for i, r, x in msgs]}}


def jbytes(v):
    return json.dumps(v).encode()


def new_daemon(name, **kw):
    return H.Daemon(H.DAEMON, tempfile.mkdtemp(prefix=name + "-", dir=TMP), **kw)


def finish_daemon(d, label):
    if d is None or d.proc is None:
        return
    if d.alive():
        d.note_workers()
    rc = d.stop()
    t.eq(rc, 0, "%s: daemon exits with status 0 on SIGTERM" % label, d.stderr_tail)


def ctl_stats(d):
    r = subprocess.run([H.CTL, "--arena", d.arena, "stats", "--json"], capture_output=True, timeout=10)
    v, _ = H.try_json(r.stdout)
    return v or {}


def counter(d, name):
    return (ctl_stats(d).get("counters") or {}).get(name)


class Checker:
    """Sends one input and checks the answer, the log and the stored state."""

    def __init__(self, d):
        self.d = d

    def state(self):
        c = self.d.calls()
        return self.d.conversations_raw(), c.get("seq")

    def refused(self, desc, status, code, send):
        d = self.d
        before = self.state()
        log_before = len(d.stderr_text())
        try:
            r = send()
        except Exception as e:  # noqa: BLE001
            t.ok(False, "%s: answered %d %s" % (desc, status, code), "transport error: %r" % e)
            return None
        if r is None:
            t.ok(False, "%s: answered %d %s" % (desc, status, code), "no answer in time")
            return None
        t.eq((r.status, (H.try_json(r.body)[0] or {}).get("code") if r.body else None), (status, code),
             "%s: answered %d with code %s" % (desc, status, code), lambda: repr(r))
        v, err = H.try_json(r.body)
        t.ok(isinstance(v, dict) and isinstance(v.get("error"), str) and len(v["error"]) > 10,
             "%s: the JSON body says what was wrong" % desc, lambda: "%s %r" % (err, r.body[:300]))
        CODES_TESTED.add(code)
        t.ok(d.wait_for(lambda: re.search(r"refused .*: %d " % status, d.stderr_text()[log_before:]), timeout=2),
             "%s: a log line names the refusal" % desc, lambda: d.stderr_text()[log_before:][-400:])
        t.ok(self.state() == before, "%s: nothing stored changed" % desc)
        t.eq(H.get(d.wport, "/healthz").status, 200, "%s: the daemon still serves" % desc)
        return r

    def accepted(self, desc, send, call_id=None):
        d = self.d
        before = self.state()
        try:
            r = send()
        except Exception as e:  # noqa: BLE001
            t.ok(False, "%s: accepted with 200" % desc, "transport error: %r" % e)
            return None
        t.ok(r.status == 200 and r.body == b'{"status":"ok"}', "%s: accepted with 200" % desc, repr(r))
        t.ok(self.state()[1] != before[1], "%s: stored (the committed sequence moved)" % desc)
        if call_id is not None:
            t.ok(call_id in d.call_ids(), "%s: call %r is listed" % (desc, call_id[:30]))
        return r


def post(d, body, headers=None):
    return lambda: d.webhook(body, headers=headers)


# --- refused ----------------------------------------------------------------------------------------

def scenario_refused(ctx):
    d = new_daemon("refused", args=["--log-refusals", "0"])
    try:
        d.start()
        d.webhook(jbytes(conv_event("kept-call", [("m1", "user", "kept before the bad input")])))
        c = Checker(d)
        # Not JSON, or JSON that is not an object.
        c.refused("an empty body", 400, "empty", post(d, b""))
        c.refused("whitespace only", 400, "empty", post(d, b" \r\n\t "))
        c.refused("a truncated object", 400, "truncated", post(d, b'{"message":{"type":"status-update"'))
        c.refused("a truncated string", 400, "truncated", post(d, b'{"message":"abc'))
        c.refused("trailing garbage", 400, "trailing", post(d, b'{"a":1}xyz'))
        c.refused("two top-level objects", 400, "trailing", post(d, b'{"a":1}{"b":2}'))
        c.refused("a bad literal tru", 400, "syntax", post(d, b'{"a":tru}'))
        c.refused("a bad literal True", 400, "syntax", post(d, b'{"a":True}'))
        c.refused("a leading zero", 400, "syntax", post(d, b'{"a":01}'))
        c.refused("a missing comma", 400, "syntax", post(d, b'{"a":1 "b":2}'))
        c.refused("a single-quoted string", 400, "syntax", post(d, b"{'a':1}"))
        c.refused("an array root", 400, "not_object", post(d, b'[{"message":{}}]'))
        c.refused("a string root", 400, "not_object", post(d, b'"message"'))
        c.refused("a number root", 400, "not_object", post(d, b"42"))
        c.refused("a null root", 400, "not_object", post(d, b"null"))
        # Limits of the parser.
        deep = b'{"a":' + b"[" * 70 + b"]" * 70 + b"}"
        c.refused("nesting 71 levels deep (limit 64)", 400, "depth", post(d, deep))
        many = b'{"a":[' + b",".join([b"1"] * 270000) + b"]}"
        c.refused("270,002 tokens (limit 262,144)", 400, "tokens", post(d, many))
        # Size: refused from the announced length, before the body is sent.
        head = H.webhook_head(d.wport, 64 << 20)
        r = c.refused("Content-Length 64 MiB (limit 4 MiB), body never sent", 413, "too_large",
                      lambda: H.raw_request(d.wport, head, [], timeout=5))
        if r is not None:
            t.ok(r.elapsed < 2, "the 413 came before any of the body was sent (%.2f s)" % r.elapsed)
        big = b'{"message":{"text":"' + b"x" * (5 << 20) + b'"}}'
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 65536]), big[i:i + 65536])
                           for i in range(0, len(big), 65536)) + b"0\r\n\r\n"
        chead = (b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        c.refused("a 5 MiB chunked body (limit 4 MiB)", 413, "too_large", lambda: H.raw_request(d.wport, chead, [chunked]))
        huge = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n"
                b"Connection: close\r\n\r\n")
        c.refused("a Content-Length beyond 2^64", 413, "too_large", lambda: H.raw_request(d.wport, huge, [], timeout=5))
        # 4.5 MiB of a chunked body are sent, then nothing: the 413 must not wait for the rest.
        r = c.refused("a chunked body that passes the limit, the rest never sent", 413, "too_large",
                      lambda: H.early_answer(d.wport, chead, chunked[:len(chunked) - (512 << 10)], wait=3.0))
        # A chunk announced larger than the limit is refused before its data comes.
        r = c.refused("one chunk announced larger than the limit, its data never sent", 413, "too_large",
                      lambda: H.early_answer(d.wport, chead, b"%x\r\n" % (5 << 20), wait=3.0))
        # Encodings.
        ev = jbytes(status_event("enc-call", "queued"))
        c.refused("Content-Encoding: br", 415, "unsupported_encoding", post(d, ev, {"Content-Encoding": "br"}))
        c.refused("Content-Encoding: gzip, br", 415, "unsupported_encoding",
                  post(d, gzip.compress(ev), {"Content-Encoding": "gzip, br"}))
        twice = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                 b"Content-Encoding: gzip\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                 % len(gzip.compress(gzip.compress(ev)))) + gzip.compress(gzip.compress(ev))
        c.refused("two Content-Encoding: gzip lines (a list)", 415, "unsupported_encoding",
                  lambda: H.raw_request(d.wport, twice))
        bomb = gzip.compress(b'{"a":"' + b"0" * (8 << 20) + b'"}')
        t.ok(len(bomb) < 20000, "(a %d-byte gzip body that inflates to 8 MiB)" % len(bomb))
        c.refused("gzip inflating to 8 MiB (limit 4 MiB)", 413, "too_large_inflated",
                  post(d, bomb, {"Content-Encoding": "gzip"}))
        c.refused("gzip cut short", 400, "bad_encoding", post(d, gzip.compress(ev)[:-9], {"Content-Encoding": "gzip"}))
        c.refused("gzip followed by other bytes", 400, "bad_encoding",
                  post(d, gzip.compress(ev) + b"junk", {"Content-Encoding": "gzip"}))
        c.refused("plain JSON labelled gzip", 400, "bad_encoding", post(d, ev, {"Content-Encoding": "gzip"}))
        c.refused("gzip of an empty body", 400, "empty", post(d, gzip.compress(b""), {"Content-Encoding": "gzip"}))
        c.refused("gzip of something that is not JSON", 400, "syntax",
                  post(d, gzip.compress(b"{nope}"), {"Content-Encoding": "gzip"}))
        # Method, path, framing.
        c.refused("GET /webhook", 405, "method_not_allowed", lambda: H.get(d.wport, "/webhook"))
        c.refused("FOO /webhook", 501, "method_not_implemented",
                  lambda: H.raw_request(d.wport, b"FOO /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"))
        c.refused("POST /hook", 404, "not_found", lambda: H.post_webhook(d.wport, ev, path="/hook"))
        amb = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n"
               b"Connection: close\r\n\r\n{}")
        for hdr in ({"Origin": "http://evil.example", "Content-Type": "text/plain"},
                    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}):
            c.refused("a webhook a browser sent (%s)" % ", ".join(hdr), 403, "browser_request",
                      post(d, jbytes(conv_event("browser-sent", [("b1", "user", "fake")])), headers=hdr))
        c.refused("two Content-Length headers", 400, "ambiguous_framing", lambda: H.raw_request(d.wport, amb))
        both = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
        c.refused("Content-Length with Transfer-Encoding", 400, "bad_request", lambda: H.raw_request(d.wport, both))
        spaced = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length : 2\r\n"
                  b"\r\n{}")
        c.refused("Content-Length : 2 (a space before the colon)", 400, "bad_request",
                  lambda: H.raw_request(d.wport, spaced))
        huge = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-Filler: " + b"h" * (20 << 10) +
                b"\r\nConnection: close\r\n\r\n{}")
        c.refused("a 20 KB header block", 431, "headers_too_large", lambda: H.raw_request(d.wport, huge))
        long_line = (b"POST /webhook?" + b"q" * (20 << 10) + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"Connection: close\r\n\r\n{}")
        c.refused("a 20 KB request line", 414, "uri_too_long", lambda: H.raw_request(d.wport, long_line))
        tgz = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
               b"Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
        c.refused("Transfer-Encoding: gzip, chunked", 400, "ambiguous_framing", lambda: H.raw_request(d.wport, tgz))
        plus = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: +2\r\n"
                b"Connection: close\r\n\r\n{}")
        c.refused("Content-Length: +2", 400, "ambiguous_framing", lambda: H.raw_request(d.wport, plus))
        # What was stored before is intact.
        v, _ = H.try_json(d.conversation("kept-call").body)
        t.eq([m["text"] for m in (v or {}).get("messages", [])], ["kept before the bad input"],
             "the call stored before all of it is intact")
        t.eq(sorted(d.call_ids()), ["kept-call"], "no refused input created a call")
        # and what Node's fetch sends (a platform written in Node): no Origin, but Sec-Fetch-Mode
        c.accepted("a webhook from Node's fetch (Sec-Fetch-Mode: cors, no Origin)",
                   post(d, jbytes(conv_event("node-sent", [("n1", "user", "hello")])),
                        headers={"sec-fetch-mode": "cors", "user-agent": "node"}), "node-sent")
        t.ok((counter(d, "rejected") or 0) >= 30, "the refusals are counted (liveeventsctl stats: rejected = %s)"
             % counter(d, "rejected"))
    finally:
        finish_daemon(d, "refusals daemon")


def scenario_small_arena(ctx):
    """The smallest arena: its largest facts record (64 KiB) is smaller than the largest body."""
    d = new_daemon("small", args=["--log-refusals", "0"], arena_size="1M")
    try:
        d.start()
        c = Checker(d)
        d.webhook(jbytes(conv_event("small-call", [("m1", "user", "kept")])))
        body = jbytes(conv_event("huge-call", [("m%d" % i, "user", "y" * 1000) for i in range(90)]))
        r = c.refused("90 KB of new messages for a 64 KiB facts record", 413, "too_large_for_arena", post(d, body))
        v, _ = H.try_json(r.body if r else b"")
        t.ok(isinstance((v or {}).get("limit"), int), "the 413 names the limit", repr(v))
        ok = jbytes(conv_event("huge-call", [("m%d" % i, "user", "y" * 1000) for i in range(20)]))
        c.accepted("20 KB of new messages", post(d, ok), "huge-call")
    finally:
        finish_daemon(d, "small-arena daemon")


# --- accepted ---------------------------------------------------------------------------------------

def scenario_accepted(ctx):
    d = new_daemon("accepted")
    try:
        d.start()
        c = Checker(d)

        def texts(cid):
            v, _ = H.try_json(d.conversation(cid).body)
            return [m["text"] for m in (v or {}).get("messages", [])]

        def raw_events(cid):
            r = d.conversation(cid)
            return r.body

        repaired_before = counter(d, "repaired") or 0
        for desc, raw in [("invalid UTF-8 \\xff", b"\xff"), ("an overlong '/' \\xc0\\xaf", b"\xc0\xaf"),
                          ("an overlong NUL \\xc0\\x80", b"\xc0\x80"), ("a UTF-8-encoded surrogate", b"\xed\xa0\x80"),
                          ("a code point above U+10FFFF", b"\xf4\x90\x80\x80"), ("a lone surrogate escape", b"\\ud800"),
                          ("a lone low surrogate escape", b"\\udc00"), ("a raw control character", b"\x01"),
                          ("a raw NUL", b"\x00"), ("an escaped NUL", b"\\u0000")]:
            cid = "repair-" + re.sub(r"[^a-z0-9]+", "-", desc.lower()).strip("-")
            body = jbytes(conv_event(cid, [("m1", "user", "before @@X@@ after")])).replace(b"@@X@@", raw)
            c.accepted(desc + " inside a string", post(d, body), cid)
            got = texts(cid)
            t.ok(got and got[0].startswith("before ") and got[0].endswith(" after") and "\ufffd" in got[0],
                 "%s: repaired with U+FFFD, the rest kept" % desc, repr(got))
        t.eq((counter(d, "repaired") or 0) - repaired_before, 10, "the 10 repaired events are counted")

        body = b"\xef\xbb\xbf" + jbytes(status_event("bom-call", "queued"))
        c.accepted("a UTF-8 byte-order mark", post(d, body), "bom-call")

        big = (b'{"message":{"type":"status-update","timestamp":%d,"call":{"id":"bigint-call","status":"queued",'
               b'"n":12345678901234567890123,"m":-9007199254740993,"f":1.000000000000000000001e400}}}' % BASE_TS)
        c.accepted("integers beyond 2^53 and a float beyond double", post(d, big), "bigint-call")
        raw = raw_events("bigint-call")
        t.ok(b"12345678901234567890123" in raw and b"-9007199254740993" in raw and b"1.000000000000000000001e400" in raw,
             "the raw event keeps them digit for digit", raw[:400])

        for desc, ev in [("no message", {"event": "call_status", "call": {"id": "x-nomsg"}}),
                         ("no type", {"message": {"timestamp": BASE_TS, "call": {"id": "no-type-call"}}}),
                         ("no call", {"message": {"type": "status-update", "timestamp": BASE_TS}}),
                         ("no id", {"message": {"type": "status-update", "call": {"status": "queued"}}}),
                         ("an empty object", {})]:
            c.accepted("a body with %s" % desc, post(d, jbytes(ev)))
        t.ok("x-nomsg" not in d.call_ids(), "a body with no message creates no call (it is kept unattributed)")

        ev = jbytes(conv_event("gzip-call", [("m1", "user", "sent gzipped")]))
        c.accepted("Content-Encoding: gzip", post(d, gzip.compress(ev), {"Content-Encoding": "gzip"}), "gzip-call")
        t.eq(texts("gzip-call"), ["sent gzipped"], "the gzipped event's message is stored")
        t.ok(b"sent gzipped" in raw_events("gzip-call"), "the raw event is kept inflated")
        ev = jbytes(conv_event("gzip2-call", [("m1", "user", "two members")]))
        c.accepted("gzip in two members", post(d, gzip.compress(ev[:20]) + gzip.compress(ev[20:]),
                                                {"Content-Encoding": "gzip"}), "gzip2-call")
        ev = jbytes(conv_event("deflate-call", [("m1", "user", "sent deflated")]))
        c.accepted("Content-Encoding: deflate", post(d, zlib.compress(ev), {"Content-Encoding": "deflate"}),
                   "deflate-call")
        c.accepted("Content-Encoding: identity", post(d, jbytes(status_event("identity-call", "queued")),
                                                      {"Content-Encoding": "identity"}), "identity-call")

        ev = jbytes(conv_event("slow-call", [("m1", "user", "one byte at a time")]))
        head = H.webhook_head(d.wport, len(ev))
        c.accepted("a body arriving one byte at a time",
                   lambda: H.raw_request(d.wport, head, [ev[i:i + 1] for i in range(len(ev))], gap=0.002, timeout=20),
                   "slow-call")
        t.eq(texts("slow-call"), ["one byte at a time"], "the byte-by-byte event is stored whole")

        # The same event twice adds nothing; a stale history changes nothing.
        for name, ev in [("status-update", status_event("dup-call", "ongoing")),
                         ("hang", {"message": {"type": "hang", "timestamp": BASE_TS + 5, "call": {"id": "dup-call"}}}),
                         ("error", {"message": {"type": "error", "timestamp": BASE_TS + 6, "call": {"id": "dup-call"},
                                                "error": {"type": "llm_error", "code": "x", "retryable": True}}}),
                         ("end-of-call-report", {"message": {"type": "end-of-call-report", "timestamp": BASE_TS + 9,
                                                             "call": {"id": "dup-call", "status": "finished"},
                                                             "analysis": {"summary": "done"}}})]:
            d.webhook(jbytes(ev))
            before = H.try_json(d.call_detail("dup-call").body)[0]
            r = d.webhook(jbytes(ev))
            after = H.try_json(d.call_detail("dup-call").body)[0]
            t.eq(r.status, 200, "a repeated %s is accepted" % name)
            strip = lambda v: {k: x for k, x in (v or {}).items() if k not in ("seq", "last_seq")}  # noqa: E731
            t.ok(strip(before) == strip(after), "a repeated %s adds nothing to the call" % name,
                 lambda: "before %s\nafter  %s" % (H._short(before), H._short(after)))
        det = H.try_json(d.call_detail("dup-call").body)[0] or {}
        t.eq((len(det.get("statuses", [])), len(det.get("alerts", [])), det.get("ended")), (1, 2, True),
             "dup-call: one pill, two alerts, ended by its report")
        t.ok(d.wait_for(lambda: "nothing new (a repeat)" in d.stderr_text(), timeout=2),
             "the log says a repeated event brought nothing new")
        t.eq(H.get(d.wport, "/healthz").status, 200, "the daemon served throughout")
    finally:
        finish_daemon(d, "accepting daemon")


# --- slow senders ------------------------------------------------------------------------------------

def trickle(port, parts, gap, wait):
    """Sends parts with gap seconds between them, reading any answer as it comes; returns the answer
    (a Resp) once the server answers or closes, or None if it did neither within wait seconds."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        for p in parts:
            try:
                s.sendall(p)
            except OSError:
                break
            s.settimeout(gap)
            try:
                if s.recv(1, socket.MSG_PEEK):
                    break
            except socket.timeout:
                pass
            except OSError:
                break
            if time.monotonic() - t0 > wait:
                return None
        try:
            status, hs, body = H._read_response(s, t0 + wait)
        except OSError:
            return None
        return H.Resp(status, hs, body, time.monotonic() - t0)
    finally:
        s.close()


def scenario_slow(ctx):
    d = new_daemon("slow", args=["--request-timeout", "2", "--log-refusals", "0"])
    try:
        d.start()
        c = Checker(d)
        ev = jbytes(status_event("slow-call", "queued"))
        head = H.webhook_head(d.wport, len(ev))
        lines = [b"POST /webhook HTTP/1.1\r\n"] + [b"X-Slow-%d: y\r\n" % i for i in range(40)]
        r = c.refused("headers sent a line every 0.5 s, past --request-timeout 2", 408, "timeout",
                      lambda: trickle(d.wport, lines, 0.5, 6))
        if r is not None:
            t.ok(r.elapsed < 3.5, "the 408 came within the deadline and a sweep (%.2f s)" % r.elapsed)
        r = c.refused("a body sent a byte every 0.5 s, past --request-timeout 2", 408, "timeout",
                      lambda: trickle(d.wport, [head] + [ev[i:i + 1] for i in range(len(ev))], 0.5, 6))
        # A request that takes its time but finishes within the deadline is taken.
        c.accepted("a body in 4 pieces over 1.2 s (within --request-timeout 2)",
                   lambda: H.raw_request(d.wport, head, [ev[i:i + 20] for i in range(0, len(ev), 20)][:3] +
                                         [ev[60:]], gap=0.4, timeout=5), "slow-call")
        # Many slow senders at once: a webhook sent meanwhile is answered at once.
        holders = []
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", d.wport))
            s.sendall(b"POST /webhook HTTP/1.1\r\n")
            holders.append(s)
        r = d.webhook(jbytes(status_event("slow-call", "ongoing", BASE_TS + 1)), timeout=3)
        t.eq(r.status, 200, "with 50 slow senders holding connections, a webhook is answered")
        time.sleep(3)
        still_open = 0
        for s in holders:
            s.settimeout(0.2)
            try:
                s.recv(100)  # an answer, or the end of the stream: closed by the daemon
            except socket.timeout:
                still_open += 1
            except OSError:
                pass
            s.close()
        t.eq(still_open, 0, "none of the 50 is held open past the deadline")
        n = counter(d, "rejected") or 0
        t.ok(n >= 2, "the 408s are counted as refusals (%d)" % n)
    finally:
        finish_daemon(d, "slow daemon")


# --- the sender's secret ------------------------------------------------------------------------------

def scenario_secret(ctx):
    sdir = tempfile.mkdtemp(prefix="secret-", dir=TMP)
    path = os.path.join(sdir, "webhook-secrets")
    old, new = "old-secret-0123456789", "new-secret-9876543210"
    with open(path, "w") as f:
        f.write("# the platform's x-interactly-secret\n\n  %s  \r\n" % old)
    os.chmod(path, 0o600)
    d = new_daemon("secret", args=["--webhook-secret-file", path, "--log-refusals", "0"])
    try:
        d.start()
        t.ok("1 secret(s)" in d.stderr_text(), "the start names how many secrets are accepted", d.stderr_tail)
        t.ok(old not in d.stderr_text(), "the secret itself is not logged")
        t.ok("can be guessed" not in d.stderr_text(), "a 21-character secret is not warned about")
        c = Checker(d)
        ev = jbytes(status_event("auth-call", "queued"))

        def send(headers):
            return lambda: H.request(d.wport, "POST", "/webhook", body=ev,
                                     headers=dict({"Content-Type": "application/json"}, **headers))

        r = c.refused("no secret", 401, "unauthorized", send({}))
        t.eq(r.header("www-authenticate") if r else None, "Bearer", "the 401 names the scheme (WWW-Authenticate)")
        c.refused("a wrong secret", 401, "unauthorized", send({"x-interactly-secret": "wrong"}))
        c.refused("the secret less its last character", 401, "unauthorized", send({"x-interactly-secret": old[:-1]}))
        c.refused("the secret plus one character", 401, "unauthorized", send({"x-interactly-secret": old + "x"}))
        c.refused("the secret with another case", 401, "unauthorized", send({"x-interactly-secret": old.upper()}))
        c.refused("an empty secret", 401, "unauthorized", send({"x-interactly-secret": ""}))
        c.refused("the secret as Basic credentials", 401, "unauthorized", send({"Authorization": "Basic " + old}))
        c.refused("the secret in another header", 401, "unauthorized", send({"X-Secret": old}))
        c.refused("the comment line as a secret", 401, "unauthorized",
                  send({"x-interactly-secret": "# the platform's x-interactly-secret"}))
        t.ok(counter(d, "unauthorized") == 9, "liveeventsctl stats counts 9 unauthorized", repr(counter(d, "unauthorized")))
        c.accepted("x-interactly-secret", send({"x-interactly-secret": old}), "auth-call")
        c.accepted("Authorization: Bearer", lambda: H.request(
            d.wport, "POST", "/webhook", body=jbytes(status_event("auth-call", "ongoing", BASE_TS + 1)),
            headers={"Authorization": "Bearer " + old}))
        # Echoed secrets and custom headers are scrubbed from what is stored.
        echo = {"message": {"type": "status-update", "timestamp": BASE_TS + 2,
                            "call": {"id": "auth-call", "status": "ongoing",
                                     "note": "echo %s and custom-value-5555 here" % old}}}
        c.accepted("a body echoing the secret and a custom header's value",
                   lambda: H.request(d.wport, "POST", "/webhook", body=jbytes(echo),
                                     headers={"x-interactly-secret": old, "X-Clinic-Token": "custom-value-5555"}))
        raw = d.conversation("auth-call").body
        t.ok(old.encode() not in raw and b"custom-value-5555" not in raw, "neither value is stored", raw[-400:])
        t.ok(b"echo [redacted] and [redacted] here" in raw, "both are replaced by [redacted] where they stood", raw[-300:])
        # The same secret written with JSON escapes is the same secret to every reader of the body.
        escaped = ('{"message":{"type":"status-update","timestamp":%d,"call":{"id":"auth-call","status":"ongoing",'
                   '"note":"escaped \\u006f%s and %s"}}}' % (BASE_TS + 3, old[1:], old.replace("-", "\\u002d")))
        c.accepted("a body echoing the secret with JSON escapes",
                   lambda: H.request(d.wport, "POST", "/webhook", body=escaped.encode(),
                                     headers={"x-interactly-secret": old}))
        raw = d.conversation("auth-call").body
        t.ok(old.encode() not in raw and b"\\u006f" + old[1:].encode() not in raw and b"\\u002dsecret" not in raw,
             "no escaped copy is stored", raw[-400:])
        t.ok(b"escaped [redacted] and [redacted]" in raw, "escaped copies are replaced by [redacted] too", raw[-300:])
        # Rotation: the new secret works once added to the file, the old one stops once removed.
        with open(path, "a") as f:
            f.write(new + "\n")
        t.ok(d.wait_for(lambda: send({"x-interactly-secret": new})().status == 200, timeout=5, step=0.2),
             "a secret added to the file is accepted within seconds, without a restart")
        t.ok("re-read" in d.stderr_text(), "the re-read is logged", d.stderr_tail)
        t.eq(send({"x-interactly-secret": old})().status, 200, "the old secret still works while it is in the file")
        with open(path + ".tmp", "w") as f:
            f.write(new + "\n")
        os.chmod(path + ".tmp", 0o600)
        os.rename(path + ".tmp", path)  # as editors and config managers replace files
        t.ok(d.wait_for(lambda: send({"x-interactly-secret": old})().status == 401, timeout=5, step=0.2),
             "once removed from the file, the old secret is refused")
        t.eq(send({"x-interactly-secret": new})().status, 200, "the new one is accepted")
        # A file emptied by mistake keeps the secrets in force rather than refusing everything.
        with open(path, "w") as f:
            f.write("\n")
        time.sleep(1.6)
        t.eq(send({"x-interactly-secret": new})().status, 200, "a file emptied by mistake keeps the last secrets in force")
        t.ok(re.search(r"holds no secret.*stay in force", d.stderr_text()), "and says so in the log", d.stderr_tail)
        # An ingest restarted meanwhile starts with those secrets instead of refusing to start.
        ing = d.workers().get("ingest")
        os.kill(ing, signal.SIGKILL)
        t.ok(d.wait_for(lambda: d.workers().get("ingest") not in (None, ing) and
                        send({"x-interactly-secret": new})().status == 200, timeout=5, step=0.2),
             "an ingest restarted while the file is empty starts, and the last secrets stay in force")
        t.eq(send({"x-interactly-secret": "wrong"})().status, 401, "and others are still refused")
        with open(path, "w") as f:
            f.write(new + "\n")
        t.ok(d.wait_for(lambda: "re-read" in d.stderr_text()[-2000:], timeout=5, step=0.2),
             "once the file holds a secret again it is read")
        t.ok(old not in d.stderr_text() and new not in d.stderr_text(), "no secret value was ever logged")
    finally:
        finish_daemon(d, "secret daemon")

    # A short secret starts, with a warning: nothing slows guessing it.
    short = os.path.join(sdir, "short")
    with open(short, "w") as f:
        f.write("abc\n")
    os.chmod(short, 0o600)
    d3 = new_daemon("secret-short", args=["--webhook-secret-file", short])
    try:
        d3.start()
        t.ok(re.search(r"WARN secret 1 of --webhook-secret-file \S+ has 3 characters: a secret that short can be "
                       r"guessed", d3.stderr_text()) and "abc" not in d3.stderr_text().replace(short, ""),
             "a 3-character secret: a warning at start, without the secret", d3.stderr_tail)
        # a sender told a URL with the secret in its path: the 404 is logged without it
        r = H.post_webhook(d3.wport, jbytes(status_event("path-call", "queued")), path="/webhook/abc/x",
                           headers={"x-interactly-secret": "abc"})
        t.eq(r.status, 404, "a path holding the secret: 404")
        t.ok(d3.wait_for(lambda: "404 /webhook/[redacted]/x" in d3.stderr_text(), timeout=2),
             "logged with the secret redacted", d3.stderr_tail)
    finally:
        finish_daemon(d3, "short secret daemon")
    # A file that cannot be used stops the start with one line and exit status 1.
    for desc, content, mode in [("a missing file", None, 0), ("a file with no secret", "# only a comment\n\n", 0o600)]:
        p = os.path.join(sdir, "bad-%d" % len(desc))
        if content is not None:
            with open(p, "w") as f:
                f.write(content)
            os.chmod(p, mode)
        d2 = new_daemon("secret-bad", args=["--webhook-secret-file", p])
        d2.wport, d2.dport = H.free_ports(2)
        proc = d2.spawn()
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = None
        err = d2.stderr_text().strip().splitlines()
        t.eq(rc, 1, "%s: the daemon does not start (exit status 1)" % desc, d2.stderr_tail)
        t.ok(err and p in err[-1] and ("No such file" in err[-1] or "no secret" in err[-1]),
             "%s: one line names the file and the problem" % desc, lambda: err[-3:])
        H.LIVE.discard(d2)


def readme_codes():
    """The error codes in the README's table of refusals."""
    with open(os.path.join(H.SRCDIR, "README.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"## What it accepts, what it refuses\n(.*?)\n## ", text, re.S)
    return set(re.findall(r"`(\d{3})` `([a-z_]+)`", m.group(1) if m else ""))


def main():
    global t, TMP
    t = H.TAP()

    def body(tmp):
        global TMP
        TMP = tmp
        t.scenario("refused", scenario_refused, {})
        t.scenario("small arena", scenario_small_arena, {})
        t.scenario("accepted", scenario_accepted, {})
        t.scenario("slow senders", scenario_slow, {})
        t.scenario("sender's secret", scenario_secret, {})
        rows = readme_codes()
        t.ok(len(rows) >= 10, "the README's table lists the refusals with status and code (%d rows)" % len(rows))
        untested = sorted("%s %s" % r for r in rows if r[1] not in CODES_TESTED)
        t.ok(not untested, "every refusal in the README's table was tested", lambda: untested)
        undocumented = sorted(CODES_TESTED - {c for _, c in rows})
        t.ok(not undocumented, "every refusal tested is in the README's table", lambda: undocumented)

    return H.run_suite(t, "input tests", "liveevents-input-", body)


if __name__ == "__main__":
    sys.exit(main())
