#!/usr/bin/env python3
"""Integration tests of the dashboard port's doors against the real daemon: the token (none, wrong,
through the URL then the cookie, as a bearer; kept in its file across restarts, revoked by deleting
it), the Host check against DNS rebinding, the Origin check on requests that change something, no
CORS for a page on another origin, the security headers, payload strings served as data, --no-auth
and --insecure-no-auth, --log-text, and that no token ever reaches a log line, /metrics or a raw
body. The browser side of the same doors is tests/browser/security.test.mjs. Output is TAP.

Environment: as test_daemon.py (top_srcdir, top_builddir, LIVEEVENTSD, KEEP_TMP)."""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

BASE_TS = 1784042800000
XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
t = None
TMP = None


def event(call_id, text="hello", customer=None, ts=BASE_TS):
    """A conversation-update; customer is the caller's name, as a web call's "web-NAME" number carries it."""
    m = {"timestamp": ts, "type": "conversation-update", "call": {"id": call_id, "status": "ongoing"},
         "messages": [{"messageId": call_id + "-m1", "role": "user", "text": text, "timestamp": ts}]}
    if customer:
        m["customer"] = {"number": "web-" + customer}
    return json.dumps({"message": m}).encode()


def new_daemon(name, args=(), **kw):
    return H.suite_daemon(TMP, name, args=list(args), arena_size="4M", **kw)


def finish(d, label):
    if d is not None:
        d.finish(t, label)


def post(d, body):
    r = d.webhook(body)
    if r.status != 200:
        raise H.DaemonError("webhook answered %s" % r)


def metric(d, name):
    r = d.api("/metrics")
    for line in r.body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def anon(d, method, path, headers=None, **kw):
    """A request without the harness's bearer: what anyone on the LAN can send."""
    return H.request(d.dport, method, path, headers=headers, auth=False, **kw)


def scenario_token(ctx):
    d = new_daemon("token", ["--log-refusals", "0"])  # every refusal logged: their lines are checked
    try:
        d.start()
        tok = d.token
        t.ok(tok and re.fullmatch(r"[A-Za-z0-9_-]{43}", tok), "a 256-bit base64url token was made at first start", tok)
        st = os.stat(d.token_path())
        t.eq(stat.S_IMODE(st.st_mode), 0o600, "its file is private (0600)")
        urls = re.findall(r"http://\S+/\?token=(\S+)", d.stderr_text())
        t.eq(urls, [tok], "the log carries the dashboard URL with the token, once", d.stderr_tail)
        post(d, event("call-1", text="private health detail"))

        # no token
        for path in ("/api/calls", "/api/conversations", "/api/conversations/call-1", "/api/calls/call-1",
                     "/api/stream", "/metrics", "/api/calls?limit=1"):
            for method in ("GET", "HEAD"):
                r = anon(d, method, path)
                t.eq(r.status, 401, "no token: %s %s answers 401" % (method, path), r)
                if method == "GET":
                    j = r.json() or {}
                    t.eq(j.get("code"), "unauthorized", "with a JSON body saying why (%s)" % path, r)
                t.ok((r.header("www-authenticate") or "").startswith("Bearer"), "and WWW-Authenticate: Bearer")
                t.ok(b"private" not in r.body and b"call-1" not in r.body, "and none of the data")
        r = anon(d, "DELETE", "/api/conversations")
        t.eq(r.status, 401, "no token: DELETE answers 401")
        t.eq(d.call_ids(), ["call-1"], "and clears nothing")
        r = anon(d, "GET", "/")
        t.eq(r.status, 401, "no token: the page answers 401")
        t.ok(r.header("content-type", ).startswith("text/html") and b'id="auth-needed"' in r.body and
             b"Open the dashboard URL" in r.body, "with a notice saying where to find the URL", r)
        t.ok(b"app.js" not in r.body, "and without the dashboard's code")
        for path in ("/app.js", "/app.css", "/favicon.svg"):
            t.eq(anon(d, "GET", path).status, 200, "the dashboard's static %s holds no data and needs no token" % path)
        r = anon(d, "GET", "/healthz")
        t.eq(r.json(), {"status": "ok", "role": "query"}, "/healthz is open to monitors and tells them only that")
        t.ok("calls" in (d.api("/healthz").json() or {}), "the token's holder also sees what is stored")

        # wrong token, each way it can come
        wrong = tok[:-1] + ("A" if tok[-1] != "A" else "B")
        for how, hdrs in (("bearer", {"Authorization": "Bearer " + wrong}),
                          ("bearer of another length", {"Authorization": "Bearer " + tok + "x"}),
                          ("basic credentials", {"Authorization": "Basic dXNlcjpwYXNz"}),
                          ("cookie", {"Cookie": "liveevents_%d=%s" % (d.dport, wrong)})):
            r = anon(d, "GET", "/api/calls", headers=hdrs)
            t.eq(r.status, 401, "wrong token (%s): 401" % how, r)
        r = anon(d, "GET", "/api/calls", headers={"Authorization": "Bearer " + wrong})
        t.ok('error="invalid_token"' in (r.header("www-authenticate") or ""), "a wrong bearer is told it is invalid")
        r = anon(d, "GET", "/api/calls", headers={"Authorization": "Bearer " + wrong,
                                                  "Cookie": "liveevents_%d=%s" % (d.dport, tok)})
        t.eq(r.status, 401, "a wrong bearer is refused even beside a right cookie")
        r = anon(d, "GET", "/?token=" + wrong)
        t.eq((r.status, r.header("location")), (303, "./?signin=wrong-token"),
             "the page with a wrong token URL sends the browser on, so the token leaves its address bar and history")
        t.ok(not r.header("set-cookie"), "and sets no cookie")
        t.ok(d.wait_for(lambda: "for /: 303 wrong token" in d.stderr_text(), timeout=2),
             "and logs the refusal as it answered it (303)", d.stderr_tail)
        r = anon(d, "GET", "/?signin=wrong-token")
        t.ok(r.status == 401 and b"is not this dashboard's" in r.body and wrong.encode() not in r.body,
             "where the sign-in notice says the token was wrong (401)", r)
        r = anon(d, "GET", "/api/calls", headers={"Cookie": "liveevents_1=%s" % tok})
        t.eq(r.status, 401, "another daemon's cookie name does not count")

        # the URL, then the cookie
        r = anon(d, "GET", "/?token=" + tok)
        t.eq(r.status, 200, "the page opened with its token URL is served", r)
        sc = r.header("set-cookie") or ""
        t.ok(sc.startswith("liveevents_%d=%s;" % (d.dport, tok)), "and sets the cookie named after the port", sc)
        attrs = [a.strip().lower() for a in sc.split(";")[1:]]
        for a in ("httponly", "samesite=strict", "path=/"):
            t.ok(a in attrs, "the cookie is %s" % a, sc)
        t.eq(r.header("referrer-policy"), "no-referrer", "the page never sends its URL (and token) on as a referrer")
        cookie = {"Cookie": "other=1; liveevents_%d=%s; more=2" % (d.dport, tok)}
        r = anon(d, "GET", "/api/calls", headers=cookie)
        t.eq((r.status, [c["id"] for c in (r.json() or {}).get("calls", [])]), (200, ["call-1"]),
             "the cookie then opens the API", r)
        t.eq(anon(d, "GET", "/", headers=cookie).status, 200, "and the page")
        name = ("liveevents_%d" % d.dport).encode()
        for head, why in ((b"Cookie: other=1\r\nCookie: " + name + b"=" + tok.encode() + b"\r\n",
                           "the cookie in a second Cookie header"),
                          (b"Cookie: " + name + b"=planted-by-another-port; " + name + b"=" + tok.encode() + b"\r\n",
                           "the cookie after a wrong one of the same name (planted by another service on the host)")):
            r = H.raw_request(d.dport, b"GET /api/calls HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head + b"\r\n")
            t.eq(r.status if r else None, 200, "%s: 200" % why, r)
        r = anon(d, "GET", "/api/calls", headers={"Authorization": "bearer  " + tok + " "})
        t.eq(r.status, 200, "a bearer token is accepted (scheme in any case, spaces around)")

        # kept across restarts; deleting the file revokes it
        finish(d, "token daemon")
        d.start()
        t.eq(d.token, tok, "the token survives a restart (read from its file)")
        cookie = {"Cookie": "liveevents_%d=%s" % (d.dport, tok)}  # the harness picked a new port
        t.eq(anon(d, "GET", "/api/calls", headers=cookie).status, 200, "so open dashboards stay signed in")
        finish(d, "token daemon after restart")
        os.unlink(d.token_path())
        d.start()
        t.ok(d.token and d.token != tok, "deleting the file and restarting makes a new token")
        t.eq(anon(d, "GET", "/api/calls", headers=cookie).status, 401, "which revokes the old one's cookies")
        r = anon(d, "GET", "/?token=" + d.token, headers=cookie)
        t.ok(r.status == 200 and d.token in (r.header("set-cookie") or ""),
             "the new URL signs in a browser holding the old cookie", r)

        # nothing carries the token but the start line
        post(d, json.dumps({"message": {"type": "status-update", "call": {"id": "call-2", "status": "ended"},
                                        "note": "dashboard " + d.token}}).encode())
        post(d, json.dumps({"message": {"type": "conversation-update", "call": {"id": "call-2"}, "messages": [
            {"messageId": "t1", "role": "user", "text": "my dashboard is http://x:8080/?token=" + d.token}]}}).encode())
        everything = b"".join(d.api(p).body for p in ("/api/conversations", "/api/calls", "/metrics",
                                                    "/api/calls/call-2", "/api/conversations/call-2"))
        t.ok(d.token.encode() not in everything, "the token is in no API answer, raw body or metric")
        log = d.stderr_text()
        t.eq(log.count(d.token), 1, "the token is in one log line only: the URL at start", log)
        t.ok(tok not in log.split("dashboard: open")[0] or log.count(tok) <= 1, "the old token too")
        lines = [l for l in log.splitlines() if "refused a dashboard request" in l]
        shape = re.compile(r".*refused a dashboard request from 127\.0\.0\.1:\d+ for /[\w/.-]*: "
                           r"(401 (no token|wrong token)|303 wrong token|403 state-changing request from another origin|"
                           r"421 Host not answered to \(DNS rebinding\?\))$")
        t.ok(lines and all(shape.match(l) for l in lines),
             "each refusal's log line names the peer, the path alone and the reason: nothing else",
             "\n".join(l for l in lines if not shape.match(l)) or "no refusal lines")
        m = metric(d, 'liveevents_dashboard_refused_total{reason="unauthorized"}')
        t.ok(m is not None and m >= 1, "refusals are counted in /metrics", m)
        # a token pasted into a path is refused, and logged without it
        r = anon(d, "GET", "/api/calls/" + d.token)
        t.eq(r.status, 401, "a path holding the token, without a credential: 401")
        t.ok(d.wait_for(lambda: "for /api/calls/[redacted]: 401" in d.stderr_text(), timeout=2),
             "logged with the token redacted", d.stderr_tail)
        # bytes that are not UTF-8 in a path reach the log as U+FFFD (journald shows other lines as blobs)
        r = H.raw_request(d.dport, b"GET /\xff\xfe/x HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % d.dport)
        t.eq(r.status if r else None, 401, "a path of bytes that are not UTF-8: 401")
        t.ok(d.wait_for(lambda: b"for /\xef\xbf\xbd\xef\xbf\xbd/x: 401" in d.stderr_bytes(), timeout=2),
             "logged as U+FFFD", d.stderr_tail)
        t.eq(d.stderr_text().count(d.token), 1, "and the token is still in the start line only")
    finally:
        finish(d, "token daemon, new token")


def scenario_token_file(ctx):
    base = tempfile.mkdtemp(prefix="tokfile-", dir=TMP)
    path = os.path.join(base, "dashboard-token")
    with open(path, "w") as f:
        f.write("my-own-token-from-a-secret-store\n")
    os.chmod(path, 0o644)
    d = new_daemon("tokfile", ["--dashboard-token-file", path])
    try:
        d.start()
        t.eq(d.token, "my-own-token-from-a-secret-store", "--dashboard-token-file: a token of one's own is used")
        t.eq(d.api("/api/calls").status, 200, "and accepted as a bearer")
        t.ok("readable by other users" in d.stderr_text(), "a token file others can read draws a warning",
             d.stderr_tail)
    finally:
        finish(d, "token file daemon")
    for content, why in ((b"short\n", "too short"), (b"two words here and there\n", "not one token"),
                         (b"", "empty")):
        with open(path, "wb") as f:
            f.write(content)
        d = new_daemon("badtok", ["--dashboard-token-file", path])
        d.wport, d.dport = H.free_ports(2)
        p = subprocess.run(d.argv(), capture_output=True, env=H.clean_env(), timeout=15)
        t.eq(p.returncode, 1, "a token file that is %s stops the start" % why, p.stderr)
        t.ok(b"dashboard token file" in p.stderr and content.strip() not in p.stderr if content.strip() else True,
             "saying so, without echoing its content", p.stderr)
    t.eq(subprocess.run([H.DAEMON, "--no-auth", "--dashboard-listen", "0.0.0.0:1"], capture_output=True,
                        env=H.clean_env(), timeout=15).returncode, 2,
         "--no-auth is refused while the dashboard listens beyond loopback")
    p = subprocess.run([H.DAEMON, "--no-auth", "--dashboard-listen", "[::]:1"], capture_output=True,
                       env=H.clean_env(), timeout=15)
    t.ok(p.returncode == 2 and b"--insecure-no-auth" in p.stderr, "(on [::] too), naming --insecure-no-auth",
         p.stderr)


def scenario_no_auth(ctx):
    d = new_daemon("noauth", ["--no-auth"])
    try:
        d.start()
        t.ok(not os.path.exists(d.arena + ".token"), "--no-auth on loopback: no token is made")
        t.eq(anon(d, "GET", "/api/calls").status, 200, "and the API is open")
        t.ok(re.search(r"dashboard: http://127\.0\.0\.1:\d+/ \(no token", d.stderr_text()),
             "the log says so", d.stderr_tail)
        r = anon(d, "DELETE", "/api/conversations", headers={"Origin": "http://evil.example"})
        t.eq(r.status, 403, "a cross-origin DELETE is still refused without a token", r)
        t.eq(anon(d, "GET", "/api/calls", headers={"Host": "evil.example"}).status, 421,
             "and the Host check still holds")
        t.eq(anon(d, "DELETE", "/api/conversations").status, 200, "a script's DELETE (no Origin) goes through")
    finally:
        finish(d, "no-auth daemon")
    d = new_daemon("insecure", ["--insecure-no-auth"])
    try:
        d.start()
        t.eq(anon(d, "GET", "/api/calls").status, 200, "--insecure-no-auth: open")
    finally:
        finish(d, "insecure daemon")


def scenario_host(ctx):
    # --log-refusals 0: every refusal is logged, and each is checked
    d = new_daemon("host", ["--allowed-host", "dash.example.lan", "--allowed-host", ".office.lan",
                            "--log-refusals", "0"])
    try:
        d.start()
        host = socket.gethostname()
        ok = ["127.0.0.1:%d" % d.dport, "127.0.0.1", "localhost:%d" % d.dport, "LOCALHOST", "app.localhost:1",
              "[::1]:%d" % d.dport, "192.168.1.20:8080", "dash.example.lan", "dash.example.lan.:80",
              "office.lan", "a.b.office.lan", host, host.split(".")[0] + ".local"]
        for h in ok:
            r = d.api("/api/calls", headers={"Host": h, "Authorization": "Bearer " + d.token})
            t.eq(r.status, 200, "Host %s is answered" % h, r)
        bad = ["evil.example", "evil.example:%d" % d.dport, "127.0.0.1.evil.example", "dash.example.lan.evil.example",
               "xoffice.lan", "localhost.evil.example", "[::1", "[::1]x", "127.0.0.1:80:80", "", "exa mple",
               "attacker.example:%d" % d.dport]
        for h in bad:
            r = d.api("/api/calls", headers={"Host": h, "Authorization": "Bearer " + d.token})
            t.eq(r.status, 421, "DNS rebinding: Host %r is refused even with the token" % h, r)
        r = d.api("/", headers={"Host": "evil.example"})
        t.eq(((r.json() or {}).get("code"), r.status), ("host_not_allowed", 421), "the page too, with a JSON reason")
        r = anon(d, "GET", "/app.js", headers={"Host": "evil.example"})
        t.eq(r.status, 421, "and the static files")
        m = metric(d, 'liveevents_dashboard_refused_total{reason="host_not_allowed"}')
        t.eq(m, float(len(bad) + 2), "each refusal is counted in /metrics")
        t.ok("refused a dashboard request" in d.stderr_text() and "421" in d.stderr_text(), "and logged",
             d.stderr_tail)
        r = H.raw_request(d.dport, b"GET /api/calls HTTP/1.0\r\nAuthorization: Bearer " + d.token.encode() + b"\r\n\r\n")
        t.eq(r.status if r else None, 200, "an HTTP/1.0 client without Host (not a browser) is answered")
        bearer = b"Authorization: Bearer " + d.token.encode() + b"\r\n"
        for head, want, why in (
                (b"GET /api/calls HTTP/1.1\r\n" + bearer + b"\r\n", 400, "an HTTP/1.1 request without Host"),
                (b"GET /api/calls HTTP/1.1\r\nHost: evil.example\r\nHost: 127.0.0.1\r\n" + bearer + b"\r\n", 400,
                 "two Host headers (a proxy in front may have read the other)"),
                (b"GET /api/calls HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n" + bearer + b"\r\n", 400,
                 "two Host headers, the good one first"),
                (b"GET http://evil.example/api/calls HTTP/1.1\r\nHost: 127.0.0.1\r\n" + bearer + b"\r\n", 421,
                 "a request line naming another host"),
                (b"GET http://127.0.0.1/api/calls HTTP/1.1\r\nHost: evil.example\r\n" + bearer + b"\r\n", 421,
                 "a request line naming this host, with another Host")):
            r = H.raw_request(d.dport, head)
            t.eq(r.status if r else None, want, "%s: %d" % (why, want), r)
            if want == 421:
                t.ok("evil.example" in ((r.json() or {}).get("error") or ""), "%s: the answer names the Host refused"
                     % why, r)
        t.eq(metric(d, 'liveevents_dashboard_refused_total{reason="bad_host"}'), 3.0,
             "no Host or two: counted as bad_host")
        t.ok(d.wait_for(lambda: d.stderr_text().count("400 no Host, or more than one") == 3, timeout=2),
             "and logged", d.stderr_tail)
        r = H.raw_request(d.dport, b"GET http://127.0.0.1/api/calls HTTP/1.1\r\nHost: 127.0.0.1\r\n" + bearer + b"\r\n")
        t.eq(r.status if r else None, 200, "a request line naming this host, with the same Host: 200")
        r = H.post_webhook(d.wport, event("hook"), headers={"Host": "abc.ngrok.example"})
        t.eq(r.status, 200, "the webhook port takes any Host: it is reached through tunnels")
    finally:
        finish(d, "host daemon")


def scenario_origin(ctx):
    d = new_daemon("origin")
    try:
        d.start()
        post(d, event("keep-me"))
        own = "http://127.0.0.1:%d" % d.dport
        cookie = "liveevents_%d=%s" % (d.dport, d.token)
        for origin, why in (("http://127.0.0.1:9999", "another port of this host (same site: the cookie goes along)"),
                            ("http://evil.example", "another site"), ("null", "a sandboxed frame or file"),
                            ("https://127.0.0.1:%d.evil.example" % d.dport, "a look-alike"),
                            (own + "/", "an origin with a path")):
            for method in ("DELETE", "POST"):
                r = anon(d, method, "/api/conversations", headers={"Cookie": cookie, "Origin": origin})
                t.eq(r.status, 403, "%s from %s with the cookie: 403" % (method, why), r)
                t.eq((r.json() or {}).get("code"), "cross_origin", "saying why")
        r = anon(d, "DELETE", "/api/conversations", headers={"Cookie": cookie})
        t.eq(r.status, 403, "a cookie DELETE without any Origin: 403 (browsers always send one)")
        t.eq(d.call_ids(), ["keep-me"], "nothing was cleared by any of them")
        t.eq(metric(d, 'liveevents_dashboard_refused_total{reason="cross_origin"}'), 11.0, "each is counted")
        r = anon(d, "GET", "/api/calls", headers={"Cookie": cookie, "Origin": "http://evil.example"})
        t.eq(r.status, 200, "a cross-origin GET is answered ...")
        t.ok(not any(k.startswith("access-control-") for k in r.headers),
             "... without any CORS header, so a page on another origin cannot read it", r.headers)
        r = anon(d, "OPTIONS", "/api/conversations", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "DELETE"})
        t.ok(r.status >= 400 and not any(k.startswith("access-control-") for k in r.headers),
             "a CORS preflight fails (%d, no Access-Control-* headers)" % r.status, r.headers)
        r = anon(d, "DELETE", "/api/conversations", headers={"Cookie": cookie, "Origin": own})
        t.eq(r.status, 200, "the dashboard's own DELETE (same Origin, cookie) clears", r)
        post(d, event("again"))
        r = d.api("/api/conversations", method="DELETE", headers={"Authorization": "Bearer " + d.token,
                                                                  "Origin": "http://evil.example"})
        t.eq(r.status, 200, "a script's DELETE with the bearer clears whatever its Origin")
        t.eq(d.call_ids(), [], "cleared")
    finally:
        finish(d, "origin daemon")


def scenario_headers_and_data(ctx):
    d = new_daemon("headers")
    try:
        d.start()
        post(d, event(XSS, text=XSS, customer=XSS))
        for path, auth in (("/", True), ("/api/calls", True), ("/api/calls", False), ("/", False),
                           ("/api/nothing", True), ("/app.js", False)):
            r = H.request(d.dport, "GET", path, auth=auth)
            csp = r.header("content-security-policy") or ""
            what = "%s %s (%d)" % ("GET", path, r.status)
            t.ok("script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp and
                 "unsafe-inline" not in csp, "%s: CSP with no inline script or style, no framing" % what, csp)
            t.eq(r.header("x-content-type-options"), "nosniff", "%s: nosniff" % what)
            t.eq(r.header("referrer-policy"), "no-referrer", "%s: no referrer" % what)
            t.ok(not any(k.startswith("access-control-") for k in r.headers), "%s: no CORS" % what)
        r = d.api("/api/calls")
        c = (r.json() or {}).get("calls", [{}])[0]
        t.eq((c.get("id"), c.get("customer")), (XSS, "web-" + XSS), "a markup call id and caller name are kept as data", c)
        t.ok(r.header("content-type").startswith("application/json"), "served as JSON, never as a page")
        r = d.call_detail(XSS)
        t.ok(r.status == 200 and r.header("content-type").startswith("application/json"),
             "the call's detail too, found by its markup id", r)
        r = d.api("/api/calls/" + H.quote_id("<svg onload=alert(1)>"))
        t.ok(r.status == 404 and r.header("content-type").startswith("application/json") and b"<svg" not in r.body,
             "an unknown markup id gets a JSON 404 that does not echo it", r)
    finally:
        finish(d, "headers daemon")


def scenario_log_text(ctx):
    long_text = "patient says " + "x" * 150 + " END"
    for mode, want_in, want_out in (("short", "patient says", " END"), ("none", "(167 bytes of text)", "patient"),
                                    ("full", " END", None)):
        d = new_daemon("logtext-" + mode, ["--log-text", mode])
        try:
            d.start()
            post(d, event("c-" + mode, text=long_text))
            log = d.stderr_text()
            line = next((l for l in log.splitlines() if "c-" + mode in l), "")
            t.ok(want_in in line and (want_out is None or want_out not in line),
                 "--log-text %s: the event line shows %r" % (mode, want_in), line)
            # liveeventsctl tail prints the same words from the arena, with the same option
            p = subprocess.run([H.CTL, "--arena", d.arena, "tail", "-n", "5", "--log-text", mode],
                               capture_output=True, env=H.clean_env(), timeout=15)
            tl = next((l for l in p.stdout.decode().splitlines() if "c-" + mode in l), None)
            t.ok(p.returncode == 0 and tl and line.endswith(" " + tl),
                 "liveeventsctl tail --log-text %s prints the daemon's line" % mode, (p.returncode, tl, line, p.stderr))
        finally:
            finish(d, "log-text %s daemon" % mode)
    d = new_daemon("logtext-none-report", ["--log-text", "none"])
    try:
        d.start()
        post(d, json.dumps({"message": {"type": "end-of-call-report", "call": {"id": "c-eval"},
                                        "analysis": {"successEvaluation": "PHI-in-evaluation"}}}).encode())
        post(d, json.dumps({"message": {"type": "error", "call": {"id": "c-err"},
                                        "error": {"type": "PHI-type", "code": "PHI-code"}}}).encode())
        log = d.stderr_text()
        t.ok("c-eval" in log and "c-err" in log and "PHI" not in log,
             "--log-text none: nor the report's evaluation, nor an error's type and code", d.stderr_tail)
    finally:
        finish(d, "log-text none daemon")
    d = new_daemon("logtext-default")
    try:
        d.start()
        post(d, event("c-default", text=long_text))
        line = next((l for l in d.stderr_text().splitlines() if "c-default" in l), "")
        m = re.search(r"user: (patient says x*)", line)
        t.ok(m and len(m.group(1)) == 80 and "\u2026" in line, "by default the first 80 characters, marked cut", line)
    finally:
        finish(d, "log-text default daemon")
    p = subprocess.run([H.DAEMON, "--log-text", "some"], capture_output=True, env=H.clean_env(), timeout=15)
    t.ok(p.returncode == 2 and b"--log-text" in p.stderr, "--log-text takes short, none or full", p.stderr)
    p = subprocess.run([H.CTL, "tail", "--log-text", "some"], capture_output=True, env=H.clean_env(), timeout=15)
    t.ok(p.returncode == 2 and b"--log-text" in p.stderr, "liveeventsctl: --log-text takes short, none or full",
         p.stderr)


def set_tmp(tmp):
    global TMP
    TMP = tmp


def main():
    global t
    t = H.TAP()
    return H.run_scenarios(t, "security tests", "liveevents-security-", [
        ("token", scenario_token),
        ("token file", scenario_token_file),
        ("no auth", scenario_no_auth),
        ("host", scenario_host),
        ("origin", scenario_origin),
        ("headers and data", scenario_headers_and_data),
        ("log text", scenario_log_text),
    ], on_tmp=set_tmp)


if __name__ == "__main__":
    sys.exit(main())
