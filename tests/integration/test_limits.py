#!/usr/bin/env python3
"""Integration tests of the limits both ports apply, against the real daemon: slow senders of headers
and of bodies (408), connections per port and per client address (the oldest idle one makes room,
else 503, and a client from another address is still served), idle keep-alive, the header count
(431), the webhook rate per client address (429), IPv6 listen addresses, and each cap's counter in
/metrics. Clients from other addresses bind to 127.0.0.2 and up: all of 127/8 is loopback on Linux.
Time bounds here are generous (a loaded 2-core machine passes them): they tell "answered while the
attack holds" from "answered once it ended". Output is TAP.

Environment: as test_daemon.py (top_srcdir, top_builddir, LIVEEVENTSD, KEEP_TMP)."""

import sys

sys.dont_write_bytecode = True

import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

BASE_TS = 1784042800000
SERVED_WITHIN = 2.0   # seconds: an answer while an attack holds its connections
t = None
TMP = None


def event(call_id, k=1):
    return json.dumps({"message": {"timestamp": BASE_TS + k, "type": "status-update",
                                   "call": {"id": call_id, "status": "ongoing"}}}).encode()


def new_daemon(name, args=(), **kw):
    return H.suite_daemon(TMP, name, args=list(args), arena_size="4M", **kw)


def finish(d, label):
    if d is not None:
        d.finish(t, label)


def req_from(src, port, method, path, body=None, headers=None, host="127.0.0.1", timeout=10.0):
    """One request from source address src (None: any)."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection(host, port, timeout=timeout, source_address=(src, 0) if src else None)
    try:
        h = dict(headers or {})
        h.update(H.auth_headers(port))
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return H.Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data, time.monotonic() - t0)
    finally:
        c.close()


def connect(port, src=None, host="127.0.0.1"):
    s = socket.create_connection((host, port), timeout=10, source_address=(src, 0) if src else None)
    return s


def closed_by_server(s, wait=3.0):
    """True when the server closed s (EOF or reset) within wait seconds; whatever it sent is ignored."""
    s.settimeout(wait)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def read_answer(s, wait=5.0):
    """The status and body of the one answer s receives (the server closes after it)."""
    s.settimeout(wait)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
            if b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if n and len(body) >= n[0]:
                    break
    except (socket.timeout, ConnectionResetError):
        pass
    status = int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1 ") else None
    return status, data.partition(b"\r\n\r\n")[2]


def metrics(d):
    out = {}
    for line in d.api("/metrics").body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def scenario_slow_senders(ctx):
    d = new_daemon("slow", ["--request-timeout", "2"])
    try:
        d.start()
        for port, what in ((d.wport, "webhook"), (d.dport, "dashboard")):
            # the headers, a byte every 0.3 s: each read is quick, the request never ends
            hdr = connect(port)
            hdr.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            body = connect(port)
            body.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 200\r\n\r\n{")
            t0 = time.monotonic()
            r = d.webhook(event("normal-" + what)) if what == "webhook" else d.api("/api/calls")
            t.ok(r.status == 200 and r.elapsed < SERVED_WITHIN,
                 "%s port: a normal request is answered at once beside two slow senders (%.3f s)" % (what, r.elapsed), r)
            results = {}
            for s, kind in ((hdr, "headers"), (body, "body")):
                s.setblocking(False)
            deadline = t0 + 6
            while time.monotonic() < deadline and len(results) < 2:
                for s, kind in ((hdr, "headers"), (body, "body")):
                    if kind in results:
                        continue
                    try:
                        s.send(b"X-a: b\r\n" if kind == "headers" else b" ")
                    except OSError:
                        pass
                time.sleep(0.3)
                for s, kind in ((hdr, "headers"), (body, "body")):
                    if kind in results:
                        continue
                    try:
                        data = s.recv(65536)
                        if data or data == b"":
                            results[kind] = (data, time.monotonic() - t0)
                    except BlockingIOError:
                        pass
                    except OSError as e:
                        results[kind] = (repr(e).encode(), time.monotonic() - t0)
            for kind in ("headers", "body"):
                data, took = results.get(kind, (b"", None))
                t.ok(data.startswith(b"HTTP/1.1 408") and b'"code":"timeout"' in data,
                     "%s port: a slow sender of %s gets 408 timeout at --request-timeout (after %s s)" %
                     (what, kind, "%.1f" % took if took else "?"), data[:300])
                t.ok(b"Content-Security-Policy: default-src 'none'" in data and b"nosniff" in data and
                     b"Referrer-Policy: no-referrer" in data, "%s port: the 408 carries the security headers" % what,
                     data[:400])
            hdr.close()
            body.close()
        for cl in (b"5000", b"99999999999999999999999"):
            s = connect(d.dport)
            s.sendall(b"DELETE /api/conversations HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                      d.token.encode() + b"\r\nContent-Length: " + cl + b"\r\n\r\n")
            t0 = time.monotonic()
            st, body = read_answer(s, 5)
            s.close()
            t.ok(st == 413 and time.monotonic() - t0 < 1.5,
                 "dashboard port: a body announced over its 4 KiB (%s bytes) gets 413 at once, before it is sent"
                 % cl.decode()[:12], (st, body[:200]))
        m = metrics(d)
        t.eq(m.get('liveevents_webhooks_rejected_total{reason="timeout"}'), 2.0, "both counted on the webhook port")
        t.eq(m.get('liveevents_dashboard_refused_total{reason="timeout"}'), 2.0, "and on the dashboard port")
        t.eq(m.get('liveevents_dashboard_refused_total{reason="too_large"}'), 2.0, "the 413s too")
        t.eq(d.call_ids(), ["normal-webhook"], "nothing but the normal webhook was stored")
    finally:
        finish(d, "slow senders daemon")


def scenario_connections(ctx):
    d = new_daemon("conns", ["--max-connections", "20", "--max-client-connections", "10"])
    held = []
    try:
        d.start()
        # ten requests under way from 127.0.0.1: a byte every now and then, never complete
        busy = []
        for i in range(10):
            s = connect(d.wport)
            body = event("held-%d" % i)
            s.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body[:5])
            busy.append((s, body))
        time.sleep(0.2)
        extra = connect(d.wport)
        # sent at once, as every client does: the unread request must not turn the 503 into a reset
        ev = event("refused")
        extra.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(ev) + ev)
        st, body = read_answer(extra)
        t.eq(st, 503, "an eleventh connection from the same address, none of its ten idle: 503 (its request "
                      "unread)", body)
        t.ok(b'"code":"too_many_connections"' in body, "saying too_many_connections", body)
        extra.close()
        r = req_from("127.0.0.2", d.wport, "POST", "/webhook", body=event("other-address"))
        t.ok(r.status == 200 and r.elapsed < SERVED_WITHIN,
             "a client from another address is served at once (%.3f s)" % r.elapsed, r)
        # nine idle connections from 127.0.0.3, then more from .4: the port's cap makes room from .3
        idle3 = [connect(d.wport, "127.0.0.3") for _ in range(9)]
        time.sleep(0.2)
        idle4 = [connect(d.wport, "127.0.0.4") for _ in range(3)]
        held += idle3 + idle4
        time.sleep(0.2)
        closed = [s for s in idle3 if closed_by_server(s, 0.5)]
        t.ok(len(closed) >= 2, "past --max-connections 20, the oldest idle connections are closed to make room "
                               "(%d of .3's)" % len(closed))
        r = req_from("127.0.0.5", d.wport, "POST", "/webhook", body=event("fifth-address"))
        t.ok(r.status == 200 and r.elapsed < SERVED_WITHIN, "a new client is still served (%.3f s)" % r.elapsed, r)
        # the held requests were never closed: they complete now
        oks = 0
        for s, body in busy:
            try:
                s.sendall(body[5:])
                st, _ = read_answer(s)
                oks += st == 200
            except OSError:
                pass
            s.close()
        t.eq(oks, 10, "no connection with a request under way was closed: all ten complete with 200")
        ids = d.call_ids()
        t.eq(sorted(i for i in ids if i.startswith("held-")), ["held-%d" % i for i in range(10)],
             "and are stored", ids)
        t.ok("refused" not in ids, "the refused connection's request was never handled", ids)
        m = metrics(d)
        t.ok(m.get('liveevents_connections_refused_total{port="webhook"}', 0) >= 1, "the 503 is counted",
             {k: v for k, v in m.items() if "connections" in k})
        t.ok(m.get('liveevents_connections_evicted_total{port="webhook"}', 0) >= 2, "the evictions are counted")
        t.ok(m.get('liveevents_connections_open{port="webhook"}', 0) >= 1, "open connections are a gauge")
        log = d.stderr_text()
        t.ok("refused a connection from 127.0.0.1" in log and "on the webhook port: 503" in log and
             "closed an idle connection from 127.0.0.3" in log,
             "both are logged", d.stderr_tail)
    finally:
        for s in held:
            s.close()
        finish(d, "connections daemon")


def scenario_recycled(ctx):
    """A connection on the descriptor of one that left a request unfinished is new: idle, and with a
    deadline of its own."""
    d = new_daemon("recycled", ["--max-client-connections", "3", "--request-timeout", "3"])
    idle = []
    try:
        d.start()
        gone = [connect(d.dport) for _ in range(3)]
        for s in gone:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        time.sleep(0.3)
        for s in gone:
            s.close()
        time.sleep(0.5)
        idle = [connect(d.dport) for _ in range(3)]  # likely on the same descriptors
        time.sleep(0.3)
        r = H.request(d.dport, "GET", "/healthz", timeout=5)
        t.eq(r.status, 200, "a fourth connection makes room by closing an idle one, not 503 (their descriptors' "
                            "old requests are over)", r)
        slow = connect(d.dport)
        slow.sendall(b"GET /api/calls HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        st, _ = read_answer(slow, 8)
        took = time.monotonic() - t0
        t.ok(st == 408 and took < 3 + 2, "a slow sender gets its own --request-timeout, not a leftover one "
                                          "(%.1f s)" % took, st)
        slow.close()
    finally:
        for s in idle:
            s.close()
        finish(d, "recycled daemon")


def scenario_dashboard_connections(ctx):
    """The dashboard port: a LAN client holding every connection does not lock out another."""
    d = new_daemon("dconns", ["--max-client-connections", "8"])
    held = []
    try:
        d.start()
        held = [connect(d.dport) for _ in range(8)]
        for s in held:
            s.sendall(b"GET /api/calls HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        time.sleep(0.2)
        s = connect(d.dport)
        st, _ = read_answer(s)
        s.close()
        t.eq(st, 503, "dashboard port: a ninth connection from the address holding eight requests: 503")
        r = req_from("127.0.0.2", d.dport, "GET", "/api/calls")
        t.ok(r.status == 200 and r.elapsed < SERVED_WITHIN, "another address is served (%.3f s)" % r.elapsed, r)
        for s in held:
            s.close()
        held = []
        time.sleep(0.2)
        r = d.api("/metrics")
        t.eq(r.status, 200, "once the holder lets go, its address is served again")
        t.ok('liveevents_connections_refused_total{port="dashboard"} 1\n' in r.body.decode(), "the 503 was counted")
    finally:
        for s in held:
            s.close()
        finish(d, "dashboard connections daemon")


def scenario_keepalive(ctx):
    # --request-timeout below the keep-alive, as with the defaults (30 s and 120 s): libevent's own
    # timeout must not close the connection first, uncounted
    d = new_daemon("keepalive", ["--keepalive-timeout", "2", "--request-timeout", "1"])
    try:
        d.start()
        c = http.client.HTTPConnection("127.0.0.1", d.wport, timeout=5)
        c.request("POST", "/webhook", body=event("ka"), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        t.eq((r.status, r.getheader("Connection")), (200, None), "a kept-alive webhook is answered")
        c.request("POST", "/webhook", body=event("ka", 2), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        t.eq(r.status, 200, "a second request on it within --keepalive-timeout is answered")
        t.ok(closed_by_server(c.sock, 4.0), "left idle, it is closed after --keepalive-timeout 2")
        c.close()
        s = connect(d.dport)
        t0 = time.monotonic()
        t.ok(closed_by_server(s, 4.0), "a connection that never sends a byte is closed too (%.1f s)" %
             (time.monotonic() - t0))
        s.close()
        m = metrics(d)
        t.ok(m.get('liveevents_connections_idle_closed_total{port="webhook"}', 0) >= 1 and
             m.get('liveevents_connections_idle_closed_total{port="dashboard"}', 0) >= 1,
             "idle closes are counted on each port", {k: v for k, v in m.items() if "idle" in k})
        t.ok("idle connection(s) on the webhook port after --keepalive-timeout 2 s" in d.stderr_text(),
             "and logged", d.stderr_tail)
    finally:
        finish(d, "keep-alive daemon")


def scenario_headers(ctx):
    d = new_daemon("headers", ["--max-header-count", "20"])
    try:
        d.start()
        many = {"X-H%d" % i: "v" for i in range(25)}
        r = d.webhook(event("many-headers"), headers=many)
        t.eq(r.status, 431, "a webhook with more than --max-header-count headers: 431", r)
        t.eq((r.json() or {}).get("code"), "too_many_headers", "saying too_many_headers")
        t.eq(r.header("connection"), "close", "and the connection is closed")
        r = d.api("/api/calls", headers=dict(many, Authorization="Bearer " + d.token))
        t.eq(r.status, 431, "the dashboard port too")
        t.ok("default-src 'none'" in (r.header("content-security-policy") or "") and
             r.header("referrer-policy") == "no-referrer", "with the security headers", r.headers)
        few = {"X-H%d" % i: "v" for i in range(10)}
        t.eq(d.webhook(event("few-headers"), headers=few).status, 200, "fewer headers are accepted")
        t.eq(d.call_ids(), ["few-headers"], "only that one is stored")
        m = metrics(d)
        t.eq(m.get('liveevents_webhooks_rejected_total{reason="too_many_headers"}'), 1.0, "counted (webhook)")
        t.eq(m.get('liveevents_dashboard_refused_total{reason="too_many_headers"}'), 1.0, "counted (dashboard)")
        t.ok("431" in d.stderr_text() and "--max-header-count" in d.stderr_text(), "logged", d.stderr_tail)
    finally:
        finish(d, "headers daemon")


def scenario_header_size(ctx):
    d = new_daemon("header-size", ["--max-headers", "4K"])
    try:
        d.start()

        def head(port, extra=b"", target=b"/webhook", length=2):
            return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                    b"Authorization: Bearer %s\r\nContent-Length: %d\r\n%s\r\n"
                    % (target, port, (d.token or "").encode(), length, extra))

        def refused(r, status, code, what):
            js = r.json() or {}
            t.eq((r.status, js.get("code"), js.get("limit")), (status, code, 4096), what, r)
            t.ok(r.header("connection") == "close" and "default-src 'none'" in (r.header("content-security-policy") or ""),
                 "%s: the connection is closed, and the answer has the security headers" % what, r.headers)

        body = event("h-big")
        r = H.raw_request(d.wport, head(d.wport, b"X-Filler: " + b"h" * 5000 + b"\r\n", length=len(body)), [body])
        refused(r, 431, "headers_too_large", "a webhook whose header block passes --max-headers 4K: 431 headers_too_large")
        # the same head in 20 pieces: libevent reads it piecemeal, and it is still told from a malformed one
        big = head(d.wport, b"".join(b"X-Part-%d: %s\r\n" % (i, b"p" * 200) for i in range(30)), length=len(body))
        pieces = [big[i:i + len(big) // 20] for i in range(0, len(big), len(big) // 20)]
        r = H.raw_request(d.wport, pieces[0], pieces[1:] + [body], gap=0.02)
        refused(r, 431, "headers_too_large", "a header block over the limit in many short headers, sent in 20 pieces: 431")
        r = H.raw_request(d.wport, head(d.wport, target=b"/webhook?" + b"q" * 5000, length=len(body)), [body])
        refused(r, 414, "uri_too_long", "a request line over --max-headers: 414 uri_too_long")
        r = H.raw_request(d.wport, head(d.wport, b"this line has no colon\r\n", length=len(body)), [body])
        t.eq((r.status, (r.json() or {}).get("code")), (400, "bad_request"),
             "a malformed header line is still 400 bad_request, not called too large", r)
        r = H.raw_request(d.dport, b"GET /api/calls HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Filler: %s\r\n\r\n"
                          % (d.dport, b"h" * 5000))
        refused(r, 431, "headers_too_large", "the dashboard port: 431 too")
        ok = event("h-fits")
        r = H.raw_request(d.wport, head(d.wport, b"X-Filler: " + b"h" * 3000 + b"\r\n", length=len(ok)), [ok])
        t.eq(r.status, 200, "a 3 KB header block under the limit is accepted", r)
        t.eq(d.call_ids(), ["h-fits"], "only that one is stored")
        m = metrics(d)
        t.eq((m.get('liveevents_webhooks_rejected_total{reason="headers_too_large"}'),
              m.get('liveevents_webhooks_rejected_total{reason="uri_too_long"}'),
              m.get('liveevents_webhooks_rejected_total{reason="bad_request"}'),
              m.get('liveevents_dashboard_refused_total{reason="headers_too_large"}')), (2.0, 1.0, 1.0, 1.0),
             "counted by reason: headers_too_large 2, uri_too_long 1, bad_request 1 (webhook); headers_too_large 1 "
             "(dashboard)", {k: v for k, v in m.items() if "too_" in k or "bad_request" in k})
        log = d.stderr_text()
        t.ok("431 header block over --max-headers 4096 bytes" in log and
             "414 request line over --max-headers 4096 bytes" in log, "logged", d.stderr_tail)
    finally:
        finish(d, "header size daemon")


def scenario_rate(ctx):
    d = new_daemon("rate", ["--webhook-rate", "5", "--webhook-burst", "5"])
    try:
        d.start()
        codes = [d.webhook(event("r-%d" % i)).status for i in range(5)]
        t.eq(codes, [200] * 5, "a burst of --webhook-burst 5 is accepted")
        r = d.webhook(event("r-over"))
        t.eq(r.status, 429, "the next one at once: 429", r)
        t.eq((r.json() or {}).get("code"), "rate_limited", "saying rate_limited")
        ra = r.header("retry-after")
        t.ok(ra and ra.isdigit() and int(ra) >= 1, "with Retry-After in whole seconds", ra)
        r = req_from("127.0.0.2", d.wport, "POST", "/webhook", body=event("r-other"))
        t.eq(r.status, 200, "another address is not limited")
        time.sleep(0.5)
        t.eq(d.webhook(event("r-later")).status, 200, "tokens come back at --webhook-rate")
        ids = d.call_ids()
        t.eq(ids, sorted(["r-%d" % i for i in range(5)] + ["r-other", "r-later"]),
             "every webhook answered 200 is stored, the refused one is not", ids)
        m = metrics(d)
        t.eq(m.get('liveevents_webhooks_rejected_total{reason="rate_limited"}'), 1.0, "counted in /metrics")
        t.ok("429 over --webhook-rate 5" in d.stderr_text(), "logged", d.stderr_tail)
        t.eq(d.api("/api/calls").status, 200, "the dashboard port has no rate limit")
    finally:
        finish(d, "rate daemon")


def scenario_rate_with_secret(ctx):
    """With a secret the secret decides: a flood of unsigned requests through the same address (a
    tunnel) must not use up the rate of the signed ones."""
    secret = os.path.join(TMP, "rate-secret")
    with open(secret, "w") as f:
        f.write("test-secret\n")
    os.chmod(secret, 0o600)
    d = new_daemon("rate-secret", ["--webhook-secret-file", secret, "--webhook-rate", "5", "--webhook-burst", "5"])
    try:
        d.start()
        bad = [d.webhook(event("junk-%d" % i), headers={"x-interactly-secret": "wrong"}).status for i in range(30)]
        t.eq(set(bad), {401}, "30 unsigned requests at once: 401 each (not 429)")
        good = [d.webhook(event("signed-%d" % i)).status for i in range(10)]
        t.eq(good, [200] * 10, "signed webhooks after the flood, past the burst: all 200", good)
        t.eq(len([i for i in d.call_ids() if i.startswith("signed-")]), 10, "and all stored")
    finally:
        finish(d, "rate with secret daemon")


def scenario_accept_burst(ctx):
    """Connections accepted in one turn of the loop beyond the pending list are capped too."""
    d = new_daemon("burst", ["--max-connections", "100", "--max-client-connections", "20"])
    socks = []
    try:
        d.start()
        ingest = d.workers()["ingest"]
        os.kill(ingest, signal.SIGSTOP)
        try:
            for _ in range(400):
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", d.wport))
                except BlockingIOError:
                    pass
                socks.append(s)
        finally:
            os.kill(ingest, signal.SIGCONT)
        time.sleep(1.5)
        still = 0
        for s in socks:
            try:
                s.recv(1, socket.MSG_PEEK)  # an end of stream, or a 503 before it: closed by the daemon
            except BlockingIOError:
                still += 1  # nothing to read: open
            except OSError:
                pass  # reset: closed
        t.ok(still <= 20, "400 connections accepted at once from one address: %d stay open (cap 20)" % still)
        r = req_from("127.0.0.2", d.wport, "POST", "/webhook", body=event("after-burst"))
        t.eq(r.status, 200, "another address is served")
    finally:
        for s in socks:
            s.close()
        finish(d, "accept burst daemon")


def scenario_spare_recent(ctx):
    """A kept-alive sender between two webhooks is not the one closed to make room."""
    d = new_daemon("spare", ["--max-client-connections", "3"])
    idle = []
    try:
        d.start()
        c = http.client.HTTPConnection("127.0.0.1", d.wport, timeout=5)
        c.request("POST", "/webhook", body=event("kept-1"), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        idle = [connect(d.wport) for _ in range(2)]
        time.sleep(0.2)
        idle.append(connect(d.wport))   # the fourth: room is made
        time.sleep(0.3)
        c.request("POST", "/webhook", body=event("kept-2", 2), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        t.eq(r.status, 200, "the sender's kept-alive connection survived; a never-used one was closed instead")
        t.ok(sum(closed_by_server(s, 0.3) for s in idle[:2]) == 1, "one of the unused connections made room")
    finally:
        c.close()
        for s in idle:
            s.close()
        finish(d, "spare daemon")


def scenario_ipv6(ctx):
    if not socket.has_ipv6:
        t.ok(True, "# SKIP no IPv6 in this Python")
        return
    d = new_daemon("ipv6")
    d.args = []
    try:
        # [::] takes IPv4 clients as well: the harness waits for /healthz on 127.0.0.1
        d.start()
        wport, dport = d.wport, d.dport
        finish(d, "before IPv6")
        d.args = ["--webhook-listen", "[::]:%d" % wport, "--dashboard-listen", "[::]:%d" % dport]
        d.spawn()
        d.wport, d.dport = wport, dport
        d.wait_ready()
        H.TOKENS[dport] = d.read_token()
        r = req_from(None, wport, "POST", "/webhook", body=event("over-ipv6"), host="::1")
        t.eq(r.status, 200, "a webhook from an IPv6 client ([::1]) to a [::] listener", r)
        r = req_from(None, dport, "GET", "/api/calls", host="::1")
        t.ok(r.status == 200 and [c["id"] for c in r.json()["calls"]] == ["over-ipv6"],
             "the dashboard over IPv6 shows it", r)
        r = req_from(None, dport, "GET", "/api/calls", host="127.0.0.1")
        t.eq(r.status, 200, "[::] also takes IPv4 clients")
        r = req_from(None, dport, "GET", "/api/calls", host="::1", headers={"Host": "[::1]:%d" % dport})
        t.eq(r.status, 200, "Host [::1]:PORT is answered")
    finally:
        finish(d, "ipv6 daemon")
    # [::1] alone: a loopback-only IPv6 dashboard, which --no-auth accepts
    wport, dport = H.free_ports(2)
    work = tempfile.mkdtemp(prefix="ipv6only-", dir=TMP)
    p = subprocess.Popen([H.DAEMON, "--webhook-listen", "[::1]:%d" % wport, "--dashboard-listen", "[::1]:%d" % dport,
                          "--no-auth", "--arena", os.path.join(work, "arena"), "--arena-size", "4M"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=H.clean_env())
    try:
        ok = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not ok:
            try:
                ok = req_from(None, dport, "GET", "/healthz", host="::1", timeout=1).status == 200
            except OSError:
                time.sleep(0.05)
        t.ok(ok, "--dashboard-listen [::1]:PORT serves on IPv6 loopback (and --no-auth accepts it)")
        r = req_from(None, wport, "POST", "/webhook", body=event("v6-only"), host="::1")
        t.eq(r.status, 200, "--webhook-listen [::1]:PORT takes webhooks")
        try:
            connect(wport, host="127.0.0.1").close()
            t.ok(False, "[::1] does not listen on IPv4")
        except OSError:
            t.ok(True, "[::1] does not listen on IPv4")
    finally:
        p.terminate()
        try:
            _, err = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        t.eq(p.returncode, 0, "the IPv6 daemon stops cleanly", err[-500:])
        t.ok(b"dashboard: http://[::1]:%d/ (no token" % dport in err, "and logged its [::1] URL", err[-800:])


def set_tmp(tmp):
    global TMP
    TMP = tmp


def main():
    global t
    t = H.TAP()
    return H.run_scenarios(t, "limits tests", "liveevents-limits-", [
        ("slow senders", scenario_slow_senders),
        ("connections", scenario_connections),
        ("dashboard connections", scenario_dashboard_connections),
        ("recycled descriptors", scenario_recycled),
        ("keep-alive", scenario_keepalive),
        ("headers", scenario_headers),
        ("header size", scenario_header_size),
        ("rate", scenario_rate),
        ("rate with a secret", scenario_rate_with_secret),
        ("accept burst", scenario_accept_burst),
        ("spare recent senders", scenario_spare_recent),
        ("ipv6", scenario_ipv6),
    ], on_tmp=set_tmp)


if __name__ == "__main__":
    sys.exit(main())
