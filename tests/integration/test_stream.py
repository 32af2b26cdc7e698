#!/usr/bin/env python3
"""Integration tests of the dashboard port's live surface against the real daemon: the event stream
(GET /api/stream: one event per change, resumable with Last-Event-ID, reset when that is no longer
possible, departures, heartbeats, the per-client backlog cap, the client cap, the filter), the paged
call list and ?after= deltas, and /metrics. Output is TAP.

Environment: as test_daemon.py (top_srcdir, top_builddir, LIVEEVENTSD, KEEP_TMP)."""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

BASE_TS = 1784042800000
# Events of 20 KB sent to a client that reads nothing: 4 MB, far beyond --stream-backlog 512K and the
# kernel's buffers, while a client that reads keeps up with room to spare.
N_BIG = 200
t = None
TMP = None


def status_event(call_id, status, ts):
    return json.dumps({"message": {"timestamp": ts, "type": "status-update",
                                   "call": {"id": call_id, "status": status}}}).encode()


def history(call_id, k, ts=None, text="message %d", pad=""):
    """A conversation-update holding the whole history so far: messages 1..k."""
    ts = ts if ts is not None else BASE_TS + k * 1000
    msgs = [{"messageId": "%s-m%d" % (call_id, i), "role": "user" if i % 2 else "assistant",
             "text": (text % i) + pad, "timestamp": BASE_TS + i * 1000} for i in range(1, k + 1)]
    return json.dumps({"message": {"timestamp": ts, "type": "conversation-update",
                                   "call": {"id": call_id, "status": "ongoing"}, "messages": msgs}}).encode()


def new_daemon(name, args=(), arena_size="16M"):
    return H.suite_daemon(TMP, name, args=list(args), arena_size=arena_size)


def finish(d, label):
    if d is not None:
        d.finish(t, label)


def post(d, body):
    r = d.webhook(body)
    if r.status != 200:
        raise H.DaemonError("webhook answered %s" % r)


class Stream:
    """A raw SSE client: reads events as they come, keeps the headers."""

    def __init__(self, port, path="/api/stream", last_id=None, rcvbuf=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(5)
        self.s.connect(("127.0.0.1", port))
        head = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n" % path
        for k, v in H.auth_headers(port).items():
            head += "%s: %s\r\n" % (k, v)
        if last_id is not None:
            head += "Last-Event-ID: %s\r\n" % last_id
        self.s.sendall((head + "\r\n").encode())
        self.buf = b""
        self.status = None
        self.headers = {}
        self.text = ""    # the de-chunked body so far
        self.events = []  # dicts: id, event, data (parsed), comment lines counted apart
        self.comments = 0
        self.closed = False
        self._chunk_left = None

    def _pump(self, timeout):
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(1 << 16)
        except socket.timeout:
            return False
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        if self.status is None and b"\r\n\r\n" in self.buf:
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            self.status = int(lines[0].split()[1])
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                self.headers[k.strip().lower()] = v.strip()
        if self.status is not None:
            self._dechunk()
        return True

    def _dechunk(self):
        if self.headers.get("transfer-encoding") != "chunked":
            self.text += self.buf.decode("utf-8", "replace")
            self.buf = b""
        else:
            while True:
                if self._chunk_left is None:
                    if b"\r\n" not in self.buf:
                        break
                    size, self.buf = self.buf.split(b"\r\n", 1)
                    self._chunk_left = int(size.split(b";")[0], 16)
                    if self._chunk_left == 0:
                        self.closed = True
                        break
                need = self._chunk_left + 2
                if len(self.buf) < need:
                    break
                self.text += self.buf[:self._chunk_left].decode("utf-8", "replace")
                self.buf = self.buf[need:]
                self._chunk_left = None
        while "\n\n" in self.text:
            block, self.text = self.text.split("\n\n", 1)
            ev = {"id": None, "event": "message", "data": None}
            data = []
            only_comment = True
            for ln in block.split("\n"):
                if ln.startswith(":"):
                    continue
                only_comment = False
                k, _, v = ln.partition(":")
                v = v[1:] if v.startswith(" ") else v
                if k == "data":
                    data.append(v)
                elif k in ("id", "event", "retry"):
                    ev[k] = v
            if only_comment:
                self.comments += 1
                continue
            if data:
                try:
                    ev["data"] = json.loads("\n".join(data))
                except ValueError:
                    ev["data"] = "\n".join(data)
            if "retry" in ev and not data:
                continue
            self.events.append(ev)

    def wait(self, pred, timeout=5.0):
        end = time.monotonic() + timeout
        while not pred(self):
            left = end - time.monotonic()
            if left <= 0 or self.closed:
                return pred(self)
            self._pump(min(left, 0.5))
        return True

    def of(self, kind):
        return [e for e in self.events if e["event"] == kind]

    def last_id(self):
        ids = [e["id"] for e in self.events if e["id"]]
        return ids[-1] if ids else None

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def shown(events):
    """The messages a client shows after applying call events' deltas in order, by call."""
    calls = {}
    for e in events:
        if e["event"] != "call":
            continue
        d = e["data"]["detail"]
        msgs = calls.setdefault(d["id"], {})
        for m in d["messages"]:
            msgs[m["messageId"]] = m["text"]
    return {k: list(v.values()) for k, v in calls.items()}


# --- scenarios -------------------------------------------------------------------------------------

def scenario_stream(ctx):
    d = new_daemon("stream", args=["--stream-heartbeat", "1"])
    try:
        d.start()
        a = Stream(d.dport)
        t.ok(a.wait(lambda s: s.of("hello")), "a new stream starts with hello", a.events)
        t.eq(a.status, 200, "the stream answers 200")
        t.ok(a.headers.get("content-type", "").startswith("text/event-stream"), "Content-Type text/event-stream",
             a.headers)
        cc = a.headers.get("cache-control", "")
        t.ok("no-store" in cc and "no-transform" in cc, "Cache-Control: no-store, no-transform (no proxy keeps or "
             "rewrites it)", a.headers)
        t.eq(a.headers.get("x-accel-buffering"), "no", "X-Accel-Buffering: no (nginx passes each event on)")
        t.ok("content-encoding" not in a.headers, "not compressed")
        r = d.api("/api/stream", method="HEAD")
        t.eq((r.status, r.body), (200, b""), "HEAD /api/stream: the headers, and the end")
        hello = a.of("hello")[0]
        gen = hello["data"]["generation"]
        t.eq(hello["id"], "%s-0" % gen, "the hello id names the generation and the next sequence number")

        # One event per change, in order, each once; a repeat changes nothing and sends nothing.
        post(d, status_event("S1", "queued", BASE_TS))
        for k in range(1, 6):
            post(d, history("S1", k))
        post(d, history("S1", 5))  # the same update again
        t.ok(a.wait(lambda s: len(s.of("call")) >= 6), "six changes, six call events", len(a.of("call")))
        time.sleep(0.3)
        a._pump(0.2)
        t.eq(len(a.of("call")), 6, "the repeated update sent no event")
        t.eq(shown(a.events).get("S1"), ["message %d" % i for i in range(1, 6)],
             "applying the deltas gives every message once, in order")
        ids = [int(e["id"].split("-")[1]) for e in a.of("call")]
        t.ok(ids == sorted(ids) and len(set(ids)) == len(ids), "event ids increase", ids)
        first = a.of("call")[0]["data"]
        t.eq((first["summary"]["id"], first["summary"]["status"]), ("S1", "queued"), "the event carries the summary")
        last = a.of("call")[-1]["data"]["detail"]
        t.eq([m["text"] for m in last["messages"]], ["message 5"], "a delta carries only what changed")
        t.ok(a.wait(lambda s: s.comments >= 1, timeout=3), "an idle stream gets heartbeat comments (--stream-heartbeat 1)")

        # Resuming: everything after the id, once, then synced.
        mid = a.of("call")[2]["id"]
        post(d, history("S1", 6))
        post(d, status_event("S2", "queued", BASE_TS + 1))
        b = Stream(d.dport, last_id=mid)
        t.ok(b.wait(lambda s: s.of("synced")), "a stream resumed with Last-Event-ID ends its catch-up with synced",
             b.events)
        caught = shown(b.of("call"))
        t.eq(caught.get("S1"), ["message %d" % i for i in range(3, 7)],
             "the catch-up holds exactly what was missed after that id", caught)
        t.ok("S2" in caught, "and the call that began meanwhile")
        t.ok(all(e["id"] is None for e in b.of("call")), "catch-up events carry no id until synced")
        t.eq(b.of("synced")[0]["id"], a.wait(lambda s: len(s.of("call")) >= 8) and a.last_id(),
             "synced carries the id the live stream is at")
        post(d, history("S1", 7))
        t.ok(b.wait(lambda s: any(e["event"] == "call" and e["id"] for e in s.events)),
             "after synced, the resumed stream goes on live")
        b.close()

        for desc, lid, reason in [("another generation", "0123456789abcdef-3", "generation"),
                                  ("an id from the future", "%s-999999" % gen, "ahead"),
                                  ("an unreadable id", "not-an-id", "unreadable")]:
            c = Stream(d.dport, last_id=lid)
            ok = c.wait(lambda s: s.of("reset"))
            t.ok(ok and c.of("reset")[0]["data"].get("reason") == reason, "%s gets reset (%s)" % (desc, reason),
                 c.events)
            c.close()

        # One call only.
        f = Stream(d.dport, path="/api/stream?call=S2")
        f.wait(lambda s: s.of("hello"))
        post(d, history("S1", 8))
        post(d, status_event("S2", "ongoing", BASE_TS + 2))
        t.ok(f.wait(lambda s: s.of("call")), "?call= follows that call")
        time.sleep(0.2)
        f._pump(0.2)
        t.eq({e["data"]["summary"]["id"] for e in f.of("call")}, {"S2"}, "and no other")
        f.close()

        # A reset empties everything: every stream is told, with the new generation.
        r = d.api("/api/conversations", method="DELETE")
        t.eq(r.status, 200, "DELETE /api/conversations")
        t.ok(a.wait(lambda s: s.of("reset")), "an open stream gets reset after a DELETE", a.events[-3:])
        t.ok(a.of("reset")[0]["data"]["generation"] != gen, "with the new generation")
        a.close()
        m = metrics(d)
        t.eq(m.get("liveevents_stream_opened_total"), 6, "/metrics counts the streams opened")
    finally:
        finish(d, "stream daemon")


def scenario_limits(ctx):
    d = new_daemon("stream-limits", args=["--stream-clients", "2", "--stream-backlog", "512K"])
    try:
        d.start()
        a = Stream(d.dport, rcvbuf=4096)   # reads nothing from now on
        a.wait(lambda s: s.of("hello"))
        # b reads everything as it comes: curl, a process of its own, keeps up whatever the load
        b_out = os.path.join(d.dir, "b.sse")
        b_file = open(b_out, "wb")
        b = subprocess.Popen(["curl", "-sN", "-H", "Authorization: Bearer " + d.token,
                              "http://127.0.0.1:%d/api/stream" % d.dport], stdout=b_file,
                             stderr=subprocess.DEVNULL)

        def b_events():
            with open(b_out, "rb") as f:
                blocks = f.read().decode("utf-8", "replace").split("\n\n")
            return [dict(ln.split(": ", 1) for ln in blk.split("\n") if ": " in ln and not ln.startswith(":"))
                    for blk in blocks[:-1]]

        t.ok(d.wait_for(lambda: any(e.get("event") == "hello" for e in b_events()), timeout=5), "a reading client")
        c = Stream(d.dport)
        t.ok(c.wait(lambda s: s.status is not None), "a third stream is answered")
        t.eq(c.status, 503, "beyond --stream-clients 2: 503")
        c.close()
        t.ok("liveevents_stream_refused_total 1\n" in d.api("/metrics").body.decode(), "counted in /metrics")
        t.ok("refused an event stream" in d.stderr_text(), "and logged", d.stderr_tail)
        pad = " " + "x" * 20000

        for k in range(1, N_BIG + 1):
            # each update carries one new 20 KB message: each event is as large
            post(d, json.dumps({"message": {"timestamp": BASE_TS + k, "type": "conversation-update",
                                            "call": {"id": "BIG"},
                                            "messages": [{"messageId": "big-%d" % k, "role": "user",
                                                          "text": "message %d%s" % (k, pad)}]}}).encode())
        t.ok(d.wait_for(lambda: sum(e.get("event") == "call" for e in b_events()) >= N_BIG, timeout=20),
             "the reading client got all %d events" % N_BIG, lambda: sum(e.get("event") == "call" for e in b_events()))
        m = metrics(d)
        t.eq(m.get("liveevents_stream_dropped_total"), 1, "the client that read nothing was dropped alone", m)
        # What it got before the drop ends with the overflow notice.
        a.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        a.wait(lambda s: s.closed, timeout=10)
        t.ok(a.of("overflow"), "and was told (overflow) before its stream ended",
             lambda: [e["event"] for e in a.events][-3:])
        t.ok(re.search(r"dropped the event stream of .* over the limit", d.stderr_text()),
             "the drop is logged", d.stderr_tail)
        b.terminate()
        b.wait()
        b_file.close()
        b_last = [e["id"] for e in b_events() if e.get("id")][-1]
        a.close()
        # It reconnects and catches up.
        # It reconnects: what it missed (20 KB a message) is more than it may hold unsent, so it is
        # told to start over from the REST API rather than handed a burst it would be dropped for.
        r = Stream(d.dport, last_id=a.last_id())
        t.ok(r.wait(lambda s: s.of("synced") or s.of("reset")), "the dropped client reconnects",
             lambda: [e["event"] for e in r.events])
        t.eq([e["data"].get("reason") for e in r.of("reset")], ["too_far_behind"],
             "and is told to start over: too far behind for a catch-up within --stream-backlog")
        r.close()
        t.eq(len(d.api("/api/calls/BIG").json()["messages"]), N_BIG, "the REST API has every message")
        # One that missed little catches up on the stream.
        b2 = Stream(d.dport, last_id=b_last)
        t.ok(b2.wait(lambda s: s.of("synced")), "a client that missed little catches up on the stream",
             lambda: [e["event"] for e in b2.events])
        t.eq([e["event"] for e in b2.events], ["synced"], "with an empty catch-up (it missed nothing)")
        post(d, json.dumps({"message": {"timestamp": BASE_TS + 500, "type": "conversation-update",
                                        "call": {"id": "BIG"},
                                        "messages": [{"messageId": "big-last", "role": "user", "text": "last"}]}}).encode())
        t.ok(b2.wait(lambda s: any(e["event"] == "call" and e["id"] for e in s.events)),
             "and goes on live", lambda: [e["event"] for e in b2.events])
        b2.close()
    finally:
        finish(d, "limits daemon")


def scenario_gone(ctx):
    d = new_daemon("stream-gone", arena_size="1M")
    try:
        d.start()
        a = Stream(d.dport)
        a.wait(lambda s: s.of("hello"))
        post(d, status_event("LEAVES", "queued", BASE_TS))
        post(d, status_event("LEAVES", "ended", BASE_TS + 1))
        pad = "y" * 3000
        n = 0
        while "LEAVES" in d.call_ids() and n < 3000:
            post(d, json.dumps({"message": {"timestamp": BASE_TS + n, "type": "conversation-update",
                                            "call": {"id": "F%d" % n},
                                            "messages": [{"messageId": "f", "role": "user", "text": pad}]}}).encode())
            post(d, status_event("F%d" % n, "ended", BASE_TS + n))
            n += 1
        t.ok("LEAVES" not in d.call_ids(), "the ended call left the full arena (after %d calls)" % n)
        t.ok(a.wait(lambda s: any(e["event"] == "gone" and e["data"]["id"] == "LEAVES" for e in s.events), timeout=10),
             "the stream announced it gone", [e["event"] for e in a.events][-5:])
        # It comes back: its history starts over, and the event says to replace what was held.
        post(d, history("LEAVES", 1, text="back %d"))
        def back_events(s):
            return [e["data"] for e in s.events if e["event"] == "call" and e["data"]["summary"]["id"] == "LEAVES"
                    and e["data"]["summary"]["resumed"]]

        t.ok(a.wait(lambda s: back_events(s)), "the call that comes back is announced",
             lambda: [e["event"] for e in a.events][-5:])
        back = (back_events(a) or [{}])[0]
        t.eq((back.get("replace"), [m["text"] for m in back.get("detail", {}).get("messages", [])]), (True, ["back 1"]),
             "whole, with replace: only its new history, which replaces what a client held")
        held = a.last_id()
        a.close()
        # A query worker started after calls left cannot name those departures to a client older
        # than its start: such a client starts over.
        w = d.workers()
        os.kill(w["query"], signal.SIGKILL)
        post(d, status_event("AFTER", "queued", BASE_TS + 9))  # while query restarts (100 ms back-off)
        t.ok(d.wait_for(lambda: d.workers().get("query") not in (None, w["query"]) and d.api("/healthz").status == 200,
                        timeout=5), "the query worker is back")
        c = Stream(d.dport, last_id=held)
        t.ok(c.wait(lambda s: s.of("reset")) and c.of("reset")[0]["data"]["reason"] == "evicted",
             "after a query restart, a client older than its start is reset (evicted)", lambda: c.events[-2:])
        c.close()
        # A client whose id is older than the arena's tail cannot be caught up: reset.
        b = Stream(d.dport, last_id=a.of("hello")[0]["id"])
        t.ok(b.wait(lambda s: s.of("reset")) and b.of("reset")[0]["data"]["reason"] == "evicted",
             "an id older than what the arena holds gets reset (evicted)", b.events[-2:])
        b.close()
    finally:
        finish(d, "gone daemon")


def scenario_paging(ctx):
    d = new_daemon("paging")
    try:
        d.start()
        for i in range(25):
            post(d, status_event("P%02d" % i, "queued", BASE_TS + i))
        post(d, status_event("P03", "ongoing", BASE_TS + 100))  # P03 now has the latest change
        seen, before, pages = [], None, 0
        while True:
            r = d.api("/api/calls?limit=10" + ("&before=%d" % before if before is not None else ""))
            body = r.json()
            pages += 1
            seen += [c["id"] for c in body["calls"]]
            t.ok(len(body["calls"]) <= 10, "page %d holds at most 10 calls" % pages)
            if body["next"] is None or pages > 5:
                break
            before = body["next"]
        t.eq(pages, 3, "25 calls come in 3 pages of 10")
        t.eq(len(seen), 25, "every call once", seen)
        t.eq(len(set(seen)), 25, "no call twice")
        t.eq(seen[0], "P03", "latest change first")
        t.eq(seen[1:4], ["P24", "P23", "P22"], "then by their latest change")
        t.eq(d.api("/api/calls?limit=1").json()["total"], 25, "total counts every call")
        for q in ["limit=0", "limit=1001", "limit=x", "before=-1", "limit=", "before=1e3"]:
            r = d.api("/api/calls?" + q)
            t.eq((r.status, (r.json() or {}).get("code")), (400, "bad_query"), "?%s is refused: 400 bad_query" % q)
        # ?after=: only what changed since.
        post(d, history("H", 3))
        full = d.api("/api/calls/H").json()
        post(d, history("H", 4))
        r = d.api("/api/calls/H?after=%d" % full["last_seq"]).json()
        t.eq([m["text"] for m in r["messages"]], ["message 4"], "?after= gives only the newer message", r)
        t.eq(r["statuses"], [], "and no unchanged timeline")
        t.ok("report" not in r, "and no unchanged report")
        t.eq(d.api("/api/calls/H?after=x").status, 400, "?after=x is refused")
    finally:
        finish(d, "paging daemon")


def metrics(d):
    r = d.api("/metrics")
    out = {}
    for ln in r.body.decode().splitlines():
        if not ln or ln.startswith("#"):
            continue
        name, _, v = ln.rpartition(" ")
        out[name] = float(v) if "." in v or "e" in v else int(v)
    return out


def scenario_metrics(ctx):
    d = new_daemon("metrics")
    try:
        d.start()
        r = d.api("/metrics")
        t.eq(r.status, 200, "GET /metrics answers 200")
        t.ok(r.header("content-type").startswith("text/plain; version=0.0.4"), "in the Prometheus text format",
             r.header("content-type"))
        text = r.body.decode()
        bad = [ln for ln in text.splitlines() if ln and not ln.startswith("#")
               and not re.match(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+$', ln)]
        t.eq(bad, [], "every sample line is well formed")
        for name in re.findall(r"^# TYPE ([a-z_]+) ", text, re.M):
            t.ok(re.search(r"^# HELP %s " % name, text, re.M), "%s has HELP" % name)
        for i in range(3):
            post(d, history("M", i + 1))
        post(d, b'{"message":{"type":"status-update","call":{"id":"R","status":"x\xff"}}}')
        d.webhook(b"not json")
        d.webhook(b"[1]")
        H.get(d.wport, "/elsewhere")
        m = metrics(d)
        t.eq(m.get("liveevents_events_accepted_total"), 4, "events accepted", m)
        t.eq(m.get("liveevents_events_repaired_total"), 1, "events repaired")
        t.eq(m.get('liveevents_webhooks_rejected_total{reason="syntax"}'), 1, "rejected: syntax")
        t.eq(m.get('liveevents_webhooks_rejected_total{reason="not_object"}'), 1, "rejected: not_object")
        t.eq(m.get('liveevents_webhooks_rejected_total{reason="not_found"}'), 1, "rejected: not_found")
        t.eq(m.get("liveevents_calls"), 2, "calls")
        t.eq(m.get("liveevents_messages"), 3, "messages")
        t.eq(m.get("liveevents_webhook_duration_seconds_count"), 6, "every POST /webhook is in the latency histogram")
        t.eq(m.get('liveevents_webhook_duration_seconds_bucket{le="+Inf"}'), 6, "the +Inf bucket counts them all")
        t.ok(m.get("liveevents_arena_used_bytes{ring=\"facts\"}", 0) > 0, "arena fill")
        w = d.workers()
        os.kill(w["query"], signal.SIGKILL)
        t.ok(d.wait_for(lambda: d.api("/healthz").status == 200 and d.workers().get("query") not in (None, w["query"]),
                        timeout=5), "the query worker is back after kill -9")
        m = metrics(d)
        t.eq(m.get('liveevents_worker_restarts_total{worker="query"}'), 1, "its restart is counted", m)
        t.eq(m.get("liveevents_webhook_duration_seconds_count"), 6, "the counters outlive the query worker")
        for port, role in [(d.wport, "ingest"), (d.dport, "query")]:
            r = H.get(port, "/healthz")
            t.eq((r.status, (r.json() or {}).get("role")), (200, role), "GET /healthz on the %s port" % role)
        t.eq(H.get(d.wport, "/metrics").status, 404, "the webhook port serves no metrics")
    finally:
        finish(d, "metrics daemon")


def set_tmp(tmp):
    global TMP
    TMP = tmp


def main():
    global t
    t = H.TAP()
    return H.run_scenarios(t, "stream tests", "liveevents-stream-", [
        ("stream", scenario_stream),
        ("stream limits", scenario_limits),
        ("departures", scenario_gone),
        ("paging", scenario_paging),
        ("metrics", scenario_metrics),
    ], on_tmp=set_tmp)


if __name__ == "__main__":
    sys.exit(main())
