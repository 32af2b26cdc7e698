#!/usr/bin/env python3
"""Integration tests for liveeventsd: the real daemon, real sockets, real signals. Output is TAP.

Environment:
  top_srcdir    the source tree (default: two levels up from this script); fixtures come from
                $top_srcdir/tests/fixtures
  top_builddir  the build tree (default: top_srcdir); set by `make check`, differs under distcheck
  LIVEEVENTSD   the daemon binary (default: $top_builddir/daemon/liveeventsd)
  KEEP_TMP=1    keep the temporary directory (daemon logs, arenas) for inspection

Only temporary files under tempfile.mkdtemp() are written; the source tree may be read-only."""

import sys

sys.dont_write_bytecode = True  # never leave __pycache__ in a (possibly read-only) source tree

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

SRCDIR, BINARY, FIXDIR = H.SRCDIR, H.DAEMON, H.FIXDIR

SECRETS = [b"test-secret", b"fake-token-for-tests-only"]
REDACTED = "[redacted]"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (master|ingest|query): (.*)$")
EVENT_LINE = re.compile(r"^\[\d\d:\d\d:\d\d\.\d{3}\] ")
BASE_TS = 1784041800000  # a plausible millisecond timestamp for made-up events

t = None      # the TAP producer
TMP = None    # the private temporary directory


# --- fixtures -------------------------------------------------------------------------------------

class Fixture:
    def __init__(self, name):
        self.name = name
        with open(os.path.join(FIXDIR, name), "rb") as f:
            self.body = f.read()
        self.json = None
        try:
            self.json = json.loads(self.body)
        except ValueError:
            pass
        self.call_id = None
        self.type = None
        m = self.json.get("message") if isinstance(self.json, dict) else None
        if isinstance(m, dict):
            self.type = m.get("type")
            c = m.get("call")
            if isinstance(c, dict) and isinstance(c.get("id"), str) and c["id"]:
                self.call_id = c["id"]

    @property
    def malformed(self):
        return self.json is None

    def messages(self):
        m = self.json.get("message") if isinstance(self.json, dict) else None
        if not isinstance(m, dict):
            return []
        msgs = m.get("messages")
        if not isinstance(msgs, list) and isinstance(m.get("call"), dict):
            msgs = m["call"].get("messages")
        return [x for x in msgs or [] if isinstance(x, dict)]


def load_fixtures():
    names = sorted(n for n in os.listdir(FIXDIR) if n[:1].isdigit())
    return [Fixture(n) for n in names]


def message_text(m):
    for k in ("text", "message", "content"):
        if isinstance(m.get(k), str):
            return m[k]
    return ""


def message_key(m):
    if isinstance(m.get("messageId"), str) and m["messageId"]:
        return m["messageId"]
    return "%s@%s" % (m.get("role"), m.get("timestamp", m.get("time")))


def ua(messages):
    """The user/assistant messages of an API message list, as (role, text)."""
    return [(m.get("role"), m.get("text")) for m in messages if m.get("role") in ("user", "assistant")]


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return "first difference at index %d:\n  expected %s\n  got      %s" % (i, H._short(y), H._short(x))
    return "lengths differ: got %d, expected %d" % (len(a), len(b))


def strip_secrets(v):
    """A copy of a raw event without the members that get redacted (for comparing raw events)."""
    if isinstance(v, dict):
        return {k: strip_secrets(x) for k, x in v.items() if k.lower() not in ("secret", "authorization", "headers")}
    if isinstance(v, list):
        return [strip_secrets(x) for x in v]
    return v


def conv_event(call_id, msgs, ts=BASE_TS, type_="conversation-update"):
    """A made-up Interactly event for call_id carrying msgs = [(messageId, role, text)]."""
    return {"message": {"timestamp": ts, "type": type_, "call": {"id": call_id, "status": "ongoing"},
                        "messages": [{"messageId": i, "role": r, "text": x, "timestamp": ts - 10}
                                     for i, r, x in msgs]}}


def status_event(call_id, status, ts=BASE_TS):
    return {"message": {"timestamp": ts, "type": "status-update", "call": {"id": call_id, "status": status}}}


def jbytes(v):
    return json.dumps(v).encode()


# --- scenario runner ------------------------------------------------------------------------------

def new_daemon(name, **kw):
    return H.Daemon(BINARY, tempfile.mkdtemp(prefix=name + "-", dir=TMP), **kw)


def finish_daemon(d, label):
    """SIGTERM, exit status 0, no worker left behind."""
    if d is None or d.proc is None:
        return
    if d.alive():
        d.note_workers()
    rc = d.stop()
    t.eq(rc, 0, "%s: daemon exits with status 0 on SIGTERM" % label, d.stderr_tail)
    t.ok(not d.leftover_workers(), "%s: no worker process left behind" % label,
         lambda: "still running: %s" % d.leftover_workers())


def scenario(label, fn, *args):
    # SCENARIOS=1,4 runs only those (while working on one part); the default is all of them.
    only = os.environ.get("SCENARIOS")
    if only and label.split()[0] not in only.split(","):
        return None
    return t.scenario(label, fn, *args)


def snapshot_calls(d, ids):
    """Per call: the tutorial conversation (bytes) and the call detail (without the global seq)."""
    snap = {}
    for cid in ids:
        c = d.conversation(cid)
        k = d.call_detail(cid)
        det = k.json() if k.status == 200 else None
        if isinstance(det, dict):
            det.pop("seq", None)
        snap[cid] = (c.status, c.body, k.status, det)
    return snap


def compare_snapshots(before, after, what):
    for cid, b in before.items():
        a = after.get(cid)
        t.ok(a is not None and a[0] == 200 and a[1] == b[1],
             "%s: conversation %s unchanged" % (what, cid[:16]),
             lambda b=b, a=a: "before %s\nafter  %s" % (H._short(b[1][:300]), H._short(a and a[1][:300])))
        t.ok(a is not None and a[2] == 200 and a[3] == b[3], "%s: call detail %s unchanged" % (what, cid[:16]),
             lambda b=b, a=a: "before %s\nafter  %s" % (H._short(b[3]), H._short(a and a[3])))


# --- 1. replay ------------------------------------------------------------------------------------

def replay(d, fixtures, expected):
    accepted = []
    for fx in fixtures:
        if fx.malformed:
            before = d.conversations_raw()
            calls_before = d.calls()["seq"]
            r = d.webhook(fx.body)
            t.eq(r.status, 400, "%s (malformed) gets 400" % fx.name, repr(r))
            v, err = H.try_json(r.body)
            t.ok(isinstance(v, dict) and isinstance(v.get("error"), str) and v["error"],
                 "%s: the 400 body is JSON with an \"error\" string" % fx.name, err or repr(r))
            t.ok(d.conversations_raw() == before, "%s changes nothing in /api/conversations (byte for byte)" % fx.name)
            t.eq(d.calls()["seq"], calls_before, "%s stores no record (the committed sequence is unchanged)" % fx.name)
            continue
        r = d.webhook(fx.body)
        t.ok(r.status == 200 and r.body == b'{"status":"ok"}', "%s gets 200 {\"status\":\"ok\"}" % fx.name, repr(r))
        if r.status == 200:
            accepted.append(fx)
    return accepted


def compare_with_expected(d, fixtures, expected):
    r = d.api("/api/conversations")
    t.eq(r.status, 200, "GET /api/conversations answers 200")
    conv, err = H.try_json(r.body)
    t.ok(conv is not None, "GET /api/conversations is strict JSON (valid UTF-8)", err)
    t.ok(isinstance(conv, dict) and list(conv.keys()) == ["conversations"] and isinstance(conv["conversations"], dict),
         "GET /api/conversations has the tutorial shape {\"conversations\":{id:...}}", lambda: H._short(conv))
    convs = (conv or {}).get("conversations") or {}
    t.eq(sorted(convs), sorted(expected), "/api/conversations holds exactly the expected calls")

    calls = d.calls()
    ids = [c.get("id") for c in calls.get("calls", [])]
    t.eq(sorted(ids), sorted(expected), "GET /api/calls lists exactly the 7 expected call ids")
    t.eq(len(ids), len(set(ids)), "GET /api/calls lists no call twice")
    foreign = {"cmpcall_0007", "", "undefined", "null", "unknown"}
    t.ok(not foreign & set(ids) and not foreign & set(convs),
         "no call from files 80-84 (campaign id, empty or undefined id)", lambda: ids)

    per_call_raw = {}
    for fx in fixtures:
        if fx.call_id and not fx.malformed:
            per_call_raw.setdefault(fx.call_id, []).append(fx)

    for cid, exp in expected.items():
        tag = cid[:14]
        c = convs.get(cid)
        if not t.ok(isinstance(c, dict), "[%s] present in /api/conversations" % tag):
            continue
        t.eq(sorted(c.keys()), ["alerts", "ended", "events", "messages", "report", "statuses"],
             "[%s] conversation has the tutorial's statuses, messages, events, and ended, report, alerts" % tag)
        t.eq(c.get("ended"), exp["ended"], "[%s] /api/conversations: ended is %s" % (tag, exp["ended"]))
        t.eq(c.get("report") is not None, exp["report"], "[%s] /api/conversations: report is %s"
             % (tag, "an object" if exp["report"] else "null"))
        t.eq([a.get("type") for a in c.get("alerts") or []].count("hang"), exp["hangs"],
             "[%s] /api/conversations: %d hang alert(s)" % (tag, exp["hangs"]))
        t.eq([a.get("type") for a in c.get("alerts") or []].count("error"), exp["errors"],
             "[%s] /api/conversations: %d error alert(s)" % (tag, exp["errors"]))
        st = c.get("statuses", [])
        t.ok(all(isinstance(s, dict) and set(s) == {"status", "timestamp"} for s in st),
             "[%s] every status is {status, timestamp}" % tag, lambda: H._short(st))
        t.eq([s.get("status") for s in st], exp["statuses"], "[%s] statuses in order" % tag)
        msgs = c.get("messages", [])
        t.ok(all(isinstance(m, dict) and set(m) == {"messageId", "role", "text", "timestamp"} for m in msgs),
             "[%s] every message is {messageId, role, text, timestamp}" % tag,
             lambda: H._short([m for m in msgs if set(m) != {"messageId", "role", "text", "timestamp"}][:2]))
        got = ua(msgs)
        want = [(m["role"], m["text"]) for m in exp["messages"]]
        t.eq(len(got), len(want), "[%s] %d user/assistant messages" % (tag, len(want)))
        t.ok(got == want, "[%s] user/assistant messages in order with exact text" % tag, lambda: first_diff(got, want))

        # Timestamps: each pill carries its event's own timestamp, in order; each message its own.
        fxs_all = [f for f in per_call_raw.get(cid, [])]
        st_ts = sorted(f.json["message"].get("timestamp") for f in fxs_all if f.type == "status-update")
        t.eq([s.get("timestamp") for s in st], st_ts,
             "[%s] each status carries its event's timestamp, in timestamp order" % tag)
        msg_ts = {}
        for f in fxs_all:
            for m in f.messages():
                if isinstance(m.get("messageId"), str) and isinstance(m.get("timestamp"), int):
                    msg_ts.setdefault(m["messageId"], m["timestamp"])
        wrong = [(m.get("messageId"), m.get("timestamp"), msg_ts[m.get("messageId")]) for m in msgs
                 if m.get("messageId") in msg_ts and m.get("timestamp") != msg_ts[m.get("messageId")]]
        if msg_ts:
            t.ok(not wrong, "[%s] each message carries its own timestamp" % tag, lambda: wrong[:5])

        # The raw events: every delivered event of this call, in delivery order, as received.
        evs = c.get("events", [])
        fxs = per_call_raw.get(cid, [])
        t.eq(len(evs), len(fxs), "[%s] %d raw events kept" % (tag, len(fxs)))
        same = [strip_secrets(e) == strip_secrets(f.json) for e, f in zip(evs, fxs)]
        t.ok(len(evs) == len(fxs) and all(same), "[%s] raw events equal the delivered bodies, in order" % tag,
             lambda: "differing: %s" % [f.name for f, s in zip(fxs, same) if not s])

        # The same through GET /api/conversations/{id}.
        r1 = d.conversation(cid)
        t.eq(r1.status, 200, "[%s] GET /api/conversations/{id} answers 200" % tag)
        one, err = H.try_json(r1.body)
        t.ok(one is not None, "[%s] GET /api/conversations/{id} is strict JSON" % tag, err)
        t.ok(one == c, "[%s] /api/conversations/{id} equals its entry in /api/conversations" % tag,
             lambda: "single: %s\nlist:   %s" % (H._short(one), H._short(c)))
        if isinstance(one, dict):
            t.eq([s.get("status") for s in one.get("statuses", [])], exp["statuses"],
                 "[%s] /api/conversations/{id}: statuses in order" % tag)
            g1 = ua(one.get("messages", []))
            t.ok(g1 == want, "[%s] /api/conversations/{id}: messages in order with exact text" % tag,
                 lambda: first_diff(g1, want))

        # GET /api/calls/{id}: ended, report, alerts.
        r2 = d.call_detail(cid)
        t.eq(r2.status, 200, "[%s] GET /api/calls/{id} answers 200" % tag)
        det, err = H.try_json(r2.body)
        t.ok(isinstance(det, dict), "[%s] GET /api/calls/{id} is strict JSON" % tag, err)
        det = det if isinstance(det, dict) else {}
        t.eq(det.get("id"), cid, "[%s] call detail names the call" % tag)
        t.eq(det.get("ended"), exp["ended"], "[%s] ended is %s" % (tag, exp["ended"]))
        t.eq(det.get("report") is not None, exp["report"],
             "[%s] report is %s" % (tag, "present" if exp["report"] else "null"), lambda: H._short(det.get("report")))
        alerts = det.get("alerts") or []
        t.eq(sum(1 for a in alerts if a.get("type") == "hang"), exp["hangs"], "[%s] %d hang alert(s)" % (tag, exp["hangs"]))
        t.eq(sum(1 for a in alerts if a.get("type") == "error"), exp["errors"],
             "[%s] %d error alert(s)" % (tag, exp["errors"]))
        if exp["errors"]:
            want_types = sorted(f.json["message"]["error"].get("type") for f in fxs_all if f.type == "error")
            t.ok(all(w in json.dumps(alerts) for w in want_types), "[%s] the error alerts name %s" % (tag, want_types),
                 lambda: H._short(alerts))
        if exp["report"]:
            evals = [f.json["message"].get("analysis", {}).get("successEvaluation") for f in fxs_all
                     if f.type == "end-of-call-report"]
            rep = det.get("report") or {}
            t.ok(isinstance(rep, dict) and evals and evals[-1] in [str(x) for x in rep.values()],
                 "[%s] the report carries the success evaluation %r" % (tag, evals[-1] if evals else None),
                 lambda: H._short(rep))
        t.ok(ua(det.get("messages", [])) == want, "[%s] call detail: messages in order with exact text" % tag,
             lambda: first_diff(ua(det.get("messages", [])), want))

    # Specific expectations called out by the fixtures README.
    F = "WC-0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
    G = "WC-5a5a5a5a-1b1b-4c2c-9d3d-4e4e4e4e4e4e"
    fm = ua(convs.get(F, {}).get("messages", []))
    t.eq(len(fm), 9, "[F] the API holds 9 user/assistant messages")
    t.ok(("assistant", "") in fm, "[F] one of them is the assistant message with empty text", lambda: fm[-2:])
    t.eq(fm[7] if len(fm) > 7 else None,
         ("user", 'Caf\u00e9 \u2615 at 5? \U0001F600 \\o/ "quoted" /slash <b>not bold</b>'),
         "[F] 8th message: JSON escapes (incl. a surrogate pair) decoded")
    gm = ua(convs.get(G, {}).get("messages", []))
    t.eq(len(gm), 163, "[G] 163 user/assistant messages")
    long_exp = [m["text"] for m in expected[G]["messages"] if len(m["text"]) == 69154]
    long_got = [x for _r, x in gm if len(x) > 60000]
    t.eq(len(long_got), 1, "[G] exactly one very long message", lambda: [len(x) for x in long_got])
    t.ok(long_exp and long_got and long_got[0] == long_exp[0],
         "[G] the 69,154-character message is stored and served exactly",
         lambda: "got %s characters" % [len(x) for x in long_got])
    t.eq(gm[-1] if gm else None, ("assistant", "In case 81, the policy in section 82 applies."), "[G] last message")

    # The fields the fixtures README names, field by field, against the bodies that carried them.
    def detail(cid):
        v, _ = H.try_json(d.call_detail(cid).body)
        return v if isinstance(v, dict) else {}

    def report_of(cid):
        return detail(cid).get("report") or {}

    def sent_report(cid):
        fx = [f for f in per_call_raw.get(cid, []) if f.type == "end-of-call-report"][-1].json["message"]
        return fx, fx.get("call") or {}

    for cid in ("CA5e0b7c1d9a2f4e8b6c3d0a1f7e9b2c4d", "CC-3b9d6f2e-8a41-4c07-9e15-2f6a0d4b7c18",
                "CA9a8b7c6d5e4f30211203f4e5d6c7b8a9"):
        tag = cid[:14]
        rep, (m, call) = report_of(cid), sent_report(cid)
        an = m.get("analysis") or {}
        want = {"summary": an.get("summary"), "successEvaluation": an.get("successEvaluation"),
                "outcome": an.get("outcome"), "structuredData": an.get("structuredData"),
                "durationMs": call.get("assistantCallDuration"), "durationSeconds": (call.get("cost") or {}).get("callDuration"),
                "cost": (call.get("cost") or {}).get("totalCost"), "endedBy": call.get("callEndTriggerBy"),
                "recording": call.get("recording")}
        for k, w in want.items():
            t.eq(rep.get(k), w, "[%s] report.%s is the one sent" % (tag, k))
    t.eq(report_of("CC-3b9d6f2e-8a41-4c07-9e15-2f6a0d4b7c18").get("durationMs"), 18200, "[B] report: duration 18200 ms")
    t.eq(report_of("CA9a8b7c6d5e4f30211203f4e5d6c7b8a9").get("outcome"), "Transferred to staff", "[C] report: outcome")
    rec = report_of("CA5e0b7c1d9a2f4e8b6c3d0a1f7e9b2c4d").get("recording") or {}
    t.ok(isinstance(rec.get("path"), str) and rec["path"].endswith(".mp3"), "[A] report: the recording path", repr(rec))
    bd = detail("CC-3b9d6f2e-8a41-4c07-9e15-2f6a0d4b7c18")
    t.eq((bd.get("ended_by"), bd.get("ended_reason")), ("user", "Call is completed"),
         "[B] ended by the user, as its finished status says")
    sk = [(m.get("messageId"), [s.get("text") for s in m.get("skipped") or []]) for m in bd.get("messages", [])
          if m.get("skipped")]
    t.eq(sk, [("user-2", ["Great. Will you be able to make it, or would you like to reschedule?"])],
         "[B] user-2 carries the one interrupted reply, which is no message of its own")
    vd = detail("7c0e2b9a-4d1f-4a83-b6e2-91c5d0f3a7e4")
    t.eq((vd.get("ended"), vd.get("status"), vd.get("ended_reason")), (True, "ended", "customer-ended-call"),
         "[V] ended, reason customer-ended-call")
    cd = detail("CA9a8b7c6d5e4f30211203f4e5d6c7b8a9")
    t.eq([s.get("reason") for s in cd.get("statuses", [])][2:3], ["Call is forwarded"], "[C] the forwarded pill says why")
    dd = detail("WC-6e2f1a9c-4b3d-4e8a-b5c7-0d1e2f3a4b5c")
    sent = [f.json["message"]["error"] for f in per_call_raw.get("WC-6e2f1a9c-4b3d-4e8a-b5c7-0d1e2f3a4b5c", [])
            if f.type == "error"]
    got = [a.get("error") for a in dd.get("alerts", [])]
    t.eq(got, sent, "[D] each error alert carries type, code, message, provider, retryable and details as sent")
    t.eq([a.get("timestamp") for a in dd.get("alerts", [])],
         [f.json["message"].get("timestamp") for f in per_call_raw.get("WC-6e2f1a9c-4b3d-4e8a-b5c7-0d1e2f3a4b5c", [])
          if f.type == "error"], "[D] each alert carries its event's timestamp")
    ad = detail("CA5e0b7c1d9a2f4e8b6c3d0a1f7e9b2c4d")
    t.eq([(a.get("type"), a.get("timestamp")) for a in ad.get("alerts", [])],
         [("hang", f.json["message"].get("timestamp")) for f in per_call_raw.get("CA5e0b7c1d9a2f4e8b6c3d0a1f7e9b2c4d", [])
          if f.type == "hang"], "[A] the hang alert, at its event's time")

    r = d.api("/api/conversations/unknown")
    t.ok(r.status == 404 and r.body == b'{"error":"Not found"}', "GET /api/conversations/unknown is 404 {\"error\":\"Not found\"}",
         repr(r))
    r = d.api("/api/calls/unknown")
    v, err = H.try_json(r.body)
    t.ok(r.status == 404 and isinstance(v, dict) and isinstance(v.get("error"), str),
         "GET /api/calls/unknown is 404 with a JSON error", err or repr(r))
    return convs


def scenario_replay(ctx):
    d = new_daemon("replay", arena_size=None)  # the default arena size
    ctx["replay_daemon"] = d
    d.start()
    t.ok(True, "daemon started (webhook port %d, dashboard port %d)" % (d.wport, d.dport))
    accepted = replay(d, ctx["fixtures"], ctx["expected"])
    ctx["accepted"] = accepted
    ctx["convs"] = compare_with_expected(d, ctx["fixtures"], ctx["expected"])


# --- 2. redaction ---------------------------------------------------------------------------------

def scenario_redaction(ctx):
    d = ctx["replay_daemon"]
    expected = ctx["expected"]
    sources = [("GET /api/conversations", d.api("/api/conversations").body),
               ("GET /api/calls", d.api("/api/calls").body)]
    for cid in expected:
        sources.append(("GET /api/conversations/%s" % cid[:14], d.conversation(cid).body))
        sources.append(("GET /api/calls/%s" % cid[:14], d.call_detail(cid).body))
    sources.append(("GET /healthz (dashboard)", d.api("/healthz").body))
    sources.append(("the arena file", d.arena_bytes()))
    sources.append(("the daemon's stderr", d.stderr_bytes()))
    for what, data in sources:
        found = [s.decode() for s in SECRETS if s in data]
        t.ok(not found, "no secret in %s" % what, lambda found=found: "found %s" % found)

    A = "CA5e0b7c1d9a2f4e8b6c3d0a1f7e9b2c4d"
    conv = d.conversation(A).json()
    first = [e for e in conv.get("events", [])
             if isinstance(e, dict) and e.get("message", {}).get("type") == "status-update"
             and e["message"].get("call", {}).get("status") == "queued"]
    t.eq(len(first), 1, "the raw event of fixture 01 is kept")
    server = ((first[0].get("message") or {}).get("assistant") or {}).get("assistantServer") if first else None
    t.ok(isinstance(server, dict), "fixture 01's raw event still has message.assistant.assistantServer",
         lambda: H._short(first))
    server = server or {}
    t.eq(server.get("secret"), REDACTED, "assistantServer.secret is \"[redacted]\"")
    hdrs = server.get("headers")
    t.ok(hdrs == REDACTED or (isinstance(hdrs, dict) and all(v == REDACTED for v in hdrs.values())),
         "assistantServer.headers (the bearer token) are redacted", lambda: H._short(hdrs))
    t.eq(server.get("url"), "https://dashboard.example.test/webhook", "the rest of assistantServer is kept as sent")


# --- 3. log lines ---------------------------------------------------------------------------------

def plain_prefix(s):
    """The part of s before the first character a log line may render differently."""
    m = re.search(r"[\x00-\x1f\x7f\u2028\u2029]", s)
    return s[:m.start()] if m else s


def scenario_logs(ctx):
    d = ctx["replay_daemon"]
    accepted = ctx["accepted"]

    def event_lines():
        out = []
        for line in d.stderr_bytes().decode("utf-8", "replace").split("\n"):
            m = LOG_LINE.match(line)
            if m and m.group(1) == "ingest" and EVENT_LINE.match(m.group(2)):
                out.append(m.group(2))
        return out

    d.wait_for(lambda: len(event_lines()) >= len(accepted), timeout=3)
    raw = d.stderr_bytes()
    try:
        text = raw.decode("utf-8")
        t.ok(True, "stderr is valid UTF-8")
    except UnicodeDecodeError as e:
        t.ok(False, "stderr is valid UTF-8", str(e))
        text = raw.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    bad = [l for l in lines if not LOG_LINE.match(l)]
    t.ok(not bad, "every stderr line is a whole log line (no payload newline split a line)",
         lambda: "stray lines: %s" % [H._short(b, 160) for b in bad[:5]])
    ctl = [l for l in lines if re.search(r"[\x00-\x1f\x7f\u2028\u2029]", l)]
    t.ok(not ctl, "no control character, CR, U+2028 or U+2029 in any log line",
         lambda: [H._short(c, 160) for c in ctl[:3]])
    longest = max((len(l) for l in lines), default=0)
    t.ok(longest < 600, "no log line is longer than 600 characters (longest: %d)" % longest)

    ev = event_lines()
    t.eq(len(ev), len(accepted), "one event line on stderr per accepted event (%d)" % len(accepted),
         lambda: "\n".join(ev))
    seen = {}
    for fx, line in zip(accepted, ev):
        if not fx.call_id:
            continue
        cid = fx.call_id
        t.ok(cid[:12] in line and cid not in line, "%s: line shows the shortened call id" % fx.name, line)
        if fx.type == "status-update":
            call = fx.json["message"].get("call") or {}
            status = call.get("status") if isinstance(call.get("status"), str) else fx.json["message"].get("status")
            t.ok(status.upper() in line, "%s: status line shows %s" % (fx.name, status.upper()), line)
        msgs = fx.messages()
        keys = seen.setdefault(cid, set())
        new = [m for m in msgs if message_key(m) not in keys]
        keys.update(message_key(m) for m in msgs)
        if fx.type == "conversation-update" and new:
            m = re.search(r"\U0001F4AC ([A-Za-z_-]+): (.*?)(?: \(\+\d+ more\))?(?: \[repaired \d+ strings?\])?$", line)
            if not t.ok(m is not None, "%s: conversation line shows role: text" % fx.name, line):
                continue
            role, shown = m.group(1), m.group(2)
            body = shown[:-1] if shown.endswith("\u2026") else shown
            t.ok(len(body) <= 80, "%s: at most 80 characters of the text (%d)" % (fx.name, len(body)), line)
            cands = [message_text(x) for x in msgs
                     if (x.get("role") == role or (role == "assistant" and x.get("role") == "bot"))]
            def starts(c, shown=body):
                pc, pb = plain_prefix(c), plain_prefix(shown)
                k = min(len(pc), len(pb))
                return pc[:k] == pb[:k] and k >= min(20, len(pc))
            okp = any(starts(c) for c in cands)
            t.ok(okp, "%s: the text shown is the start of one of the event's %s messages" % (fx.name, role), line)
        if fx.name.startswith("60-"):
            long_text = max((message_text(x) for x in msgs), key=len)
            t.ok(len(line) < 400 and long_text[:200] not in line,
                 "%s: the 69k message is not logged in full (line of %d characters)" % (fx.name, len(line)))
    if any(f.name.startswith("60-") for f in accepted):
        long_text = max((message_text(x) for x in next(f for f in accepted if f.name.startswith("60-")).messages()),
                        key=len)
        t.ok(long_text[100:400] not in text, "no part of the 69k message beyond 80 characters is anywhere in stderr")
    t.ok(any("400" in l and "refused" in l.lower() for l in lines) or any(" 400 " in l for l in lines),
         "the malformed body (84) is logged as refused with 400", lambda: "\n".join(l for l in lines if "WARN" in l))


# --- 8. persistence -------------------------------------------------------------------------------

def scenario_persistence(ctx):
    old = ctx["replay_daemon"]
    before_conv = old.conversations_raw()
    before_calls = old.calls()
    ids = list(ctx["expected"])
    before = snapshot_calls(old, ids)
    ctx["replay_daemon"] = None
    finish_daemon(old, "first daemon")
    d = new_daemon("persist", arena=old.arena, arena_size=None)
    try:
        d.start()
        t.ok(True, "a new daemon starts on the same arena file")
        after_conv = d.conversations_raw()
        t.ok(after_conv == before_conv, "GET /api/conversations is byte for byte what it was before the restart",
             lambda: "before %d bytes, after %d bytes" % (len(before_conv), len(after_conv)))
        after_calls = d.calls()
        t.eq(sorted(c["id"] for c in after_calls["calls"]), sorted(ids), "the same 7 calls are listed")
        t.eq(after_calls.get("seq"), before_calls.get("seq"), "the committed sequence is the same")
        t.eq(after_calls.get("generation"), before_calls.get("generation"), "the generation is the same")
        compare_snapshots(before, snapshot_calls(d, ids), "after restart")
        convs = H.strict_json(after_conv)["conversations"]
        for cid, exp in ctx["expected"].items():
            got = ua(convs.get(cid, {}).get("messages", []))
            want = [(m["role"], m["text"]) for m in exp["messages"]]
            t.ok(got == want, "[%s] every message as before" % cid[:14], lambda got=got, want=want: first_diff(got, want))
        r = d.webhook(jbytes(status_event("after-restart-call", "queued")))
        t.eq(r.status, 200, "a new event after the restart is accepted")
        t.ok("after-restart-call" in d.call_ids(), "and stored next to the old calls")
    finally:
        finish_daemon(d, "restarted daemon")


# --- 4. bad input ---------------------------------------------------------------------------------

def scenario_bad_input(ctx):
    d = new_daemon("badinput")
    try:
        d.start()
        prefill = [f for f in ctx["fixtures"] if f.name[:2] in ("01", "02", "04", "55", "56")]
        for fx in prefill:
            d.webhook(fx.body)
        t.eq(len(d.call_ids()), 2, "prefilled with calls A and F")

        def state():
            c = d.calls()
            return d.conversations_raw(), c.get("seq"), sorted(x["id"] for x in c["calls"])

        def refused(desc, status, send, check_allow=None):
            before = state()
            try:
                r = send()
            except Exception as e:  # noqa: BLE001
                t.ok(False, "%s: answered %d" % (desc, status), "transport error: %r" % e)
                return
            t.eq(r.status, status, "%s: answered %d" % (desc, status), repr(r))
            v, err = H.try_json(r.body)
            t.ok(isinstance(v, dict) and isinstance(v.get("error"), str) and v["error"],
                 "%s: JSON body with an \"error\" string" % desc, lambda: "%s\nbody: %r" % (err, r.body[:300]))
            if check_allow:
                t.eq(r.header("allow"), check_allow, "%s: Allow: %s" % (desc, check_allow))
            after = state()
            t.ok(after == before, "%s: nothing stored or changed" % desc,
                 lambda: "seq %s -> %s, calls %s -> %s" % (before[1], after[1], before[2], after[2]))
            h = H.get(d.wport, "/healthz")
            t.eq(h.status, 200, "%s: the daemon still serves" % desc)

        def wh(body, headers=None):
            return lambda: d.webhook(body, headers=headers)

        refused("empty body", 400, wh(b""))
        refused("[1,2] (not an object)", 400, wh(b"[1,2]"))
        refused("{\"a\":1}garbage", 400, wh(b'{"a":1}garbage'))
        refused("{}{}", 400, wh(b"{}{}"))
        refused("truncated {\"message\":", 400, wh(b'{"message":'))
        refused("{\"a\":tru}", 400, wh(b'{"a":tru}'))
        refused("{\"a\":01}", 400, wh(b'{"a":01}'))
        refused("a bare string", 400, wh(b'"message"'))
        refused("GET /webhook", 405, lambda: H.get(d.wport, "/webhook"), check_allow="POST")
        refused("PUT /webhook", 405, lambda: H.request(d.wport, "PUT", "/webhook", body=b"{}", headers=H.SECRET_HEADERS),
                check_allow="POST")
        refused("Content-Encoding: br", 415, wh(jbytes(status_event("br-call", "queued")), {"Content-Encoding": "br"}))
        refused("Content-Encoding: compress", 415, wh(jbytes(status_event("z-call", "queued")),
                                                      {"Content-Encoding": "compress"}))

        # The webhook port serves nothing but /webhook and /healthz.
        for method, path in [("POST", "/api/calls"), ("GET", "/"), ("GET", "/index.html"), ("GET", "/app.js"),
                             ("GET", "/api/conversations"), ("GET", "/api/calls"),
                             ("GET", "/api/conversations/CA5e0b7c1d9a2f4e8b6c3d0a1f7e9b2c4d"),
                             ("DELETE", "/api/conversations"), ("GET", "/metrics"), ("POST", "/webhooks"),
                             ("POST", "/other")]:
            body = jbytes(status_event("port-call", "queued")) if method == "POST" else None
            desc = "webhook port: %s %s" % (method, path)
            before = state()
            r = H.request(d.wport, method, path, body=body, headers=H.SECRET_HEADERS if body else None)
            t.eq(r.status, 404, "%s is 404" % desc, repr(r))
            v, err = H.try_json(r.body)
            t.ok(isinstance(v, dict) and isinstance(v.get("error"), str), "%s: JSON error body" % desc, err)
            t.ok(b"Maple Grove" not in r.body and b"<html" not in r.body.lower() and b"conversations\":{" not in r.body,
                 "%s: serves no dashboard or data" % desc, repr(r))
            t.ok(state() == before, "%s: changes nothing" % desc)
        t.eq(H.get(d.wport, "/healthz").status, 200, "webhook port: GET /healthz is 200")

        # Broken text inside strings is accepted and repaired.
        def repaired(desc, cid, raw, prefix, suffix):
            body = jbytes(conv_event(cid, [("m1", "user", prefix + "@@X@@" + suffix)])).replace(b"@@X@@", raw)
            r = d.webhook(body)
            t.ok(r.status == 200 and r.body == b'{"status":"ok"}', "%s: accepted with 200" % desc, repr(r))
            if cid not in d.call_ids():
                t.ok(False, "%s: stored" % desc, "call %s not listed" % cid)
                return
            t.ok(True, "%s: stored" % desc)
            r1 = d.conversation(cid)
            v, err = H.try_json(r1.body)
            t.ok(v is not None, "%s: GET /api/conversations/{id} is strict JSON and UTF-8" % desc, err)
            msgs = (v or {}).get("messages", [])
            text = msgs[0].get("text", "") if msgs else ""
            t.ok("\ufffd" in text, "%s: text contains U+FFFD" % desc, repr(text))
            t.ok(text.startswith(prefix) and text.endswith(suffix), "%s: the rest of the text is kept" % desc, repr(text))
            r2 = d.call_detail(cid)
            v2, err = H.try_json(r2.body)
            t.ok(r2.status == 200 and v2 is not None, "%s: GET /api/calls/{id} is strict JSON and UTF-8" % desc, err)
            t.eq(len((v or {}).get("events", [])), 1, "%s: the raw event is kept (and served as valid JSON)" % desc)

        repaired("invalid UTF-8 byte \\xff", "repair-ff", b"\xff", "bad ", " byte")
        repaired("lone surrogate escape \\ud800", "repair-surrogate", b"\\ud800", "lone ", " surrogate")
        repaired("raw control character \\x01", "repair-ctl", b"\x01", "ctl ", " char")
        repaired("raw NUL byte", "repair-nul", b"\x00", "nul ", " byte")
        repaired("truncated UTF-8 sequence", "repair-trunc", b"\xe2\x82", "cut ", " seq")
        for path in ("/api/conversations", "/api/calls"):
            r = d.api(path)
            v, err = H.try_json(r.body)
            t.ok(r.status == 200 and v is not None, "after repairs, GET %s is strict JSON and valid UTF-8" % path, err)

        # A byte-order mark before the JSON is accepted.
        r = d.webhook(b"\xef\xbb\xbf" + jbytes(status_event("bom-call", "queued")))
        t.ok(r.status == 200 and r.body == b'{"status":"ok"}', "a UTF-8 BOM before the JSON is accepted", repr(r))
        c = d.conversation("bom-call")
        v, _ = H.try_json(c.body)
        t.eq([s["status"] for s in (v or {}).get("statuses", [])], ["queued"], "the BOM event is stored")

        # Unicode escapes, surrogate pairs included.
        text = "pair \U0001F600 caf\u00e9 \u2615 \"q\" \\ / <b>"
        body = json.dumps(conv_event("escape-call", [("m1", "user", text)]), ensure_ascii=True).encode()
        t.ok(b"\\ud83d\\ude00" in body, "(the body spells the emoji as a surrogate-pair escape)")
        r = d.webhook(body)
        t.eq(r.status, 200, "an event written with \\u escapes is accepted")
        v, _ = H.try_json(d.conversation("escape-call").body)
        got = [m["text"] for m in (v or {}).get("messages", [])]
        t.eq(got, [text], "\\u escapes and surrogate pairs decode to the right characters")
        F = "WC-0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
        v, _ = H.try_json(d.conversation(F).body)
        fm = ua((v or {}).get("messages", []))
        t.eq(fm[7] if len(fm) > 7 else None,
             ("user", 'Caf\u00e9 \u2615 at 5? \U0001F600 \\o/ "quoted" /slash <b>not bold</b>'),
             "fixture 56's 8th message decodes to the expected text")

        # A call id that needs URL encoding.
        odd = "odd id/with slash?&=%20 \u00e9"
        r = d.webhook(jbytes(status_event(odd, "queued")))
        t.eq(r.status, 200, "a call id with '/', '?', '%', space and 'é' is accepted")
        r = d.conversation(odd)
        v, err = H.try_json(r.body)
        t.ok(r.status == 200 and v and [s["status"] for s in v["statuses"]] == ["queued"],
             "GET /api/conversations/{url-encoded id} finds it", repr(r))
        t.eq(d.call_detail(odd).status, 200, "GET /api/calls/{url-encoded id} finds it")

        # Bodies that name no call: 200, and no call appears.
        for desc, ev in [("no message", {"event": "call_status", "call": {"id": "nomsg-call", "status": "queued"}}),
                         ("no call", {"message": {"type": "status-update", "status": "queued", "timestamp": BASE_TS}}),
                         ("no id", {"message": {"type": "status-update", "timestamp": BASE_TS,
                                                "call": {"status": "queued"}}}),
                         ("an empty id", {"message": {"type": "status-update", "timestamp": BASE_TS,
                                                      "call": {"id": "", "status": "queued"}}}),
                         ("an empty object", {})]:
            before = state()
            r = d.webhook(jbytes(ev))
            t.ok(r.status == 200 and r.body == b'{"status":"ok"}', "a body with %s gets 200" % desc, repr(r))
            after = state()
            t.eq(after[2], before[2], "a body with %s creates no call" % desc)
            t.ok(after[0] == before[0], "a body with %s changes no conversation" % desc)
    finally:
        finish_daemon(d, "bad-input daemon")


def scenario_max_body(ctx):
    d = new_daemon("maxbody", args=["--max-body", "64K"])
    try:
        d.start()
        d.webhook(jbytes(status_event("small-call", "queued")))
        before = d.conversations_raw(), d.calls()["seq"]
        filler = "x" * (100 * 1024)
        body = jbytes(conv_event("big-call", [("m1", "user", filler)]))
        t.ok(len(body) > 100 * 1024, "(the body is %d bytes, over --max-body 64K)" % len(body))
        try:
            r = H.raw_request(d.wport, H.webhook_head(d.wport, len(body)), [body])
        except Exception as e:  # noqa: BLE001
            r = None
            t.ok(False, "a 100 KB body gets 413", "no answer: %r" % e)
        if r is not None:
            t.eq(r.status, 413, "a 100 KB body gets 413", repr(r))
            v, err = H.try_json(r.body)
            t.ok(isinstance(v, dict) and isinstance(v.get("error"), str),
                 "the 413 body is JSON with an \"error\" string",
                 lambda: "%s\nContent-Type: %s\nbody: %r" % (err, r.header("content-type"), r.body[:200]))
        t.ok((d.conversations_raw(), d.calls()["seq"]) == before, "the oversized body stores nothing")
        t.ok(d.wait_for(lambda: re.search(r"refused.* 413", d.stderr_text()), timeout=1),
             "the 413 refusal is logged on stderr (a lost event must be visible)", d.stderr_tail)
        t.eq(H.get(d.wport, "/healthz").status, 200, "the daemon still serves after the oversized body")
        # The same body sent chunked (no Content-Length).
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 8192]), body[i:i + 8192])
                           for i in range(0, len(body), 8192)) + b"0\r\n\r\n"
        head = (b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        try:
            r = H.raw_request(d.wport, head, [chunked])
            t.eq(r.status, 413, "a 100 KB chunked body gets 413", repr(r))
            v, err = H.try_json(r.body)
            t.ok(isinstance(v, dict) and isinstance(v.get("error"), str),
                 "the chunked 413 body is JSON with an \"error\" string",
                 lambda: "%s\nContent-Type: %s\nbody: %r" % (err, r.header("content-type"), r.body[:200]))
        except Exception as e:  # noqa: BLE001
            t.ok(False, "a 100 KB chunked body gets 413", "no answer: %r" % e)
        t.ok((d.conversations_raw(), d.calls()["seq"]) == before, "the oversized chunked body stores nothing")
        # A header block over --max-headers (16K by default).
        head = H.webhook_head(d.wport, 2, b"X-Filler: " + b"h" * (20 * 1024) + b"\r\n")
        try:
            r = H.raw_request(d.wport, head, [b"{}"])
            t.eq(r.status, 431, "a 20 KB header block is refused with 431", repr(r))
            v, err = H.try_json(r.body)
            t.ok(isinstance(v, dict) and isinstance(v.get("error"), str) and v.get("code") == "headers_too_large",
                 "the refusal of a 20 KB header block is JSON with an \"error\" string and code headers_too_large",
                 lambda: "%s\nContent-Type: %s\nbody: %r" % (err, r.header("content-type"), r.body[:200]))
        except Exception as e:  # noqa: BLE001
            t.ok(False, "a 20 KB header block is refused with 431", "no answer: %r" % e)
        t.ok((d.conversations_raw(), d.calls()["seq"]) == before, "the oversized header block stores nothing")
        t.eq(H.get(d.wport, "/healthz").status, 200, "the daemon still serves after the oversized requests")
        ok_body = jbytes(conv_event("fits-call", [("m1", "user", "y" * (60 * 1024))]))
        r = d.webhook(ok_body)
        t.eq(r.status, 200, "a %d-byte body (under 64K) is still accepted" % len(ok_body))
        t.ok("fits-call" in d.call_ids(), "and stored")
    finally:
        finish_daemon(d, "max-body daemon")


def scenario_repairs_everywhere(ctx):
    """Broken text in every field the daemon extracts: every API answer stays strict JSON."""
    d = new_daemon("repairs")
    X = b"@@X@@"

    def ev(v, raw):
        return jbytes(v).replace(X.decode().encode(), raw)

    cases = [
        ("call id", status_event("repair-id-@@X@@", "queued")),
        ("status", status_event("repair-status", "queu@@X@@ed")),
        ("customer number", {"message": {"type": "status-update", "timestamp": BASE_TS,
                                         "call": {"id": "repair-customer", "status": "queued"},
                                         "customer": {"number": "+1555@@X@@0100"}}}),
        ("role", conv_event("repair-role", [("m1", "us@@X@@er", "hello")])),
        ("messageId", conv_event("repair-msgid", [("m@@X@@1", "user", "hello")])),
        ("skipped assistant text", {"message": {"type": "conversation-update", "timestamp": BASE_TS,
                                                "call": {"id": "repair-skipped"},
                                                "messages": [{"messageId": "u1", "role": "user", "text": "hi",
                                                              "timestamp": BASE_TS - 5,
                                                              "skippedAssistantMessages": [
                                                                  {"messageId": "s1", "role": "assistant",
                                                                   "text": "skip@@X@@ped"}]}]}}),
        ("report summary and rating", {"message": {"type": "end-of-call-report", "timestamp": BASE_TS,
                                                   "call": {"id": "repair-report", "callEndTriggerBy": "b@@X@@ot"},
                                                   "analysis": {"summary": "sum@@X@@mary",
                                                                "successEvaluation": "Go@@X@@od"}}}),
        ("error details", {"message": {"type": "error", "timestamp": BASE_TS, "call": {"id": "repair-error"},
                                       "error": {"type": "llm@@X@@error", "code": "c@@X@@ode",
                                                 "message": "m@@X@@sg"}}}),
        ("unknown type name", {"message": {"type": "weird@@X@@type", "timestamp": BASE_TS,
                                           "call": {"id": "repair-type"}}}),
        ("key name", {"message": {"type": "status-update", "timestamp": BASE_TS,
                                  "call": {"id": "repair-key", "status": "queued"}, "k@@X@@ey": 1}}),
    ]
    broken = [("\\xff", b"\xff"), ("\\ud800", b"\\ud800"), ("NUL", b"\x00"), ("\\x1b", b"\x1b"),
              ("\\udc00\\ud800", b"\\udc00\\ud800"), ("overlong /", b"\xc0\xaf"), ("\\u0000", b"\\u0000")]
    try:
        d.start()
        for what, v in cases:
            for bname, raw in broken:
                vv = json.loads(json.dumps(v).replace("repair-", "repair-%d-" % broken.index((bname, raw))))
                r = d.webhook(ev(vv, raw))
                t.ok(r.status == 200, "%s with %s: accepted" % (what, bname), repr(r))
        ids = d.call_ids()
        t.ok(len(ids) >= len(cases) * len(broken) - 2, "the events created their calls (%d)" % len(ids),
             lambda: ids)
        for path in ("/api/conversations", "/api/calls", "/healthz"):
            r = d.api(path)
            v, err = H.try_json(r.body)
            t.ok(r.status == 200 and v is not None, "GET %s is strict JSON and valid UTF-8" % path, err)
        bad_conv, bad_detail, missing = [], [], []
        for cid in ids:
            r1, r2 = d.conversation(cid), d.call_detail(cid)
            if r1.status != 200 or r2.status != 200:
                missing.append((cid, r1.status, r2.status))
                continue
            if H.try_json(r1.body)[1]:
                bad_conv.append((cid, H.try_json(r1.body)[1]))
            if H.try_json(r2.body)[1]:
                bad_detail.append((cid, H.try_json(r2.body)[1]))
        t.ok(not missing, "every listed call is found by its (URL-encoded) id", lambda: missing[:5])
        t.ok(not bad_conv, "every GET /api/conversations/{id} is strict JSON", lambda: bad_conv[:5])
        t.ok(not bad_detail, "every GET /api/calls/{id} is strict JSON", lambda: bad_detail[:5])
        det, _ = H.try_json(d.call_detail("repair-0-report").body)
        rep = (det or {}).get("report") or {}
        t.ok("\ufffd" in str(rep.get("summary", "")), "a repaired report summary contains U+FFFD", lambda: rep)

        # Credentials in request headers are not stored or logged.
        body = jbytes(status_event("header-secret-call", "queued"))
        r = d.webhook(body, headers={"Authorization": "Bearer fake-token-for-tests-only",
                                     "X-Vapi-Secret": "another-secret-value-42"})
        t.eq(r.status, 200, "an event with Authorization and X-Vapi-Secret headers is accepted")
        echo = {"message": {"type": "status-update", "timestamp": BASE_TS,
                            "call": {"id": "header-secret-call", "status": "ongoing"},
                            "note": "echo fake-token-for-tests-only and another-secret-value-42"}}
        r = d.webhook(jbytes(echo), headers={"Authorization": "Bearer fake-token-for-tests-only",
                                             "X-Vapi-Secret": "another-secret-value-42"})
        t.eq(r.status, 200, "an event echoing the header secrets in its body is accepted")
        blobs = [("GET /api/conversations", d.api("/api/conversations").body),
                 ("the arena file", d.arena_bytes()), ("stderr", d.stderr_bytes())]
        for what, data in blobs:
            found = [s for s in (b"test-secret", b"fake-token-for-tests-only", b"another-secret-value-42") if s in data]
            t.ok(not found, "header credentials are nowhere in %s" % what, lambda found=found: found)

        # The log stays one valid UTF-8 line per event, whatever the payload held.
        n_events = len(cases) * len(broken) + 2

        def count_event_lines():
            return sum(1 for l in d.stderr_bytes().decode("utf-8", "replace").split("\n")
                       if LOG_LINE.match(l) and LOG_LINE.match(l).group(1) == "ingest"
                       and EVENT_LINE.match(LOG_LINE.match(l).group(2)))

        d.wait_for(lambda: count_event_lines() >= n_events, timeout=3)
        raw = d.stderr_bytes()
        try:
            text = raw.decode("utf-8")
            t.ok(True, "stderr is valid UTF-8 after the broken payloads")
        except UnicodeDecodeError as e:
            t.ok(False, "stderr is valid UTF-8 after the broken payloads", str(e))
            text = raw.decode("utf-8", "replace")
        lines = [l for l in text.split("\n") if l]
        t.ok(all(LOG_LINE.match(l) for l in lines), "every stderr line is a whole log line",
             lambda: [l for l in lines if not LOG_LINE.match(l)][:3])
        ctl = [l for l in lines if re.search(r"[\x00-\x1f\x7f\u2028\u2029]", l)]
        t.ok(not ctl, "no control character in any log line", lambda: [repr(c) for c in ctl[:3]])
        evl = [l for l in lines if LOG_LINE.match(l).group(1) == "ingest" and EVENT_LINE.match(LOG_LINE.match(l).group(2))]
        t.eq(len(evl), n_events, "one log line per accepted event")
    finally:
        finish_daemon(d, "repairs daemon")


# --- 5. command line ------------------------------------------------------------------------------

def run_cli(args, env=None, timeout=10):
    p = subprocess.run([BINARY] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=H.clean_env(env), timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def scenario_cli(ctx):
    rc, out, err = run_cli(["--bogus"])
    t.eq(rc, 2, "--bogus exits with status 2")
    t.ok(err.endswith("\n") and err.count("\n") == 1, "--bogus writes exactly one line on stderr", repr(err))
    t.ok("--bogus" in err, "the line names the bad option", repr(err))
    t.eq(out, "", "--bogus writes nothing on stdout")
    rc, out, err = run_cli(["--max-body", "12"])
    t.ok(rc == 2 and err.count("\n") == 1, "a bad option value exits 2 with one line", repr((rc, err)))
    rc, out, err = run_cli(["stray"])
    t.ok(rc == 2 and err.count("\n") == 1, "a stray argument exits 2 with one line", repr((rc, err)))
    rc, out, err = run_cli(["--help"])
    t.eq(rc, 0, "--help exits 0")
    t.ok(out.startswith("Usage:") and "--webhook-listen" in out and "PORT" in out, "--help prints the usage on stdout",
         repr(out[:200]))
    t.eq(err, "", "--help writes nothing on stderr")
    rc, out, err = run_cli(["--version"])
    t.eq(rc, 0, "--version exits 0")
    t.ok(re.match(r"^liveeventsd \S+\n$", out) is not None, "--version prints one line 'liveeventsd VERSION'", repr(out))

    # A port already in use: exit 1, one error line naming the address.
    for which in ("webhook", "dashboard"):
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            blocker.bind(("127.0.0.1", 0))
            blocker.listen(1)
            busy = blocker.getsockname()[1]
            free = H.free_ports(1)[0]
            wdir = tempfile.mkdtemp(prefix="busy-", dir=TMP)
            wl, dl = (busy, free) if which == "webhook" else (free, busy)
            rc, out, err = run_cli(["--webhook-listen", "127.0.0.1:%d" % wl, "--dashboard-listen", "127.0.0.1:%d" % dl,
                                    "--arena", os.path.join(wdir, "arena"), "--arena-size", "4M"])
            t.eq(rc, 1, "%s port in use: exit status 1" % which, repr(err))
            lines = err.splitlines()
            t.eq(len(lines), 1, "%s port in use: exactly one line on stderr" % which, repr(err))
            t.ok("127.0.0.1:%d" % busy in err, "%s port in use: the line names 127.0.0.1:%d" % (which, busy), repr(err))
        finally:
            blocker.close()

    # PORT in the environment sets the webhook port.
    port = H.free_ports(1)[0]
    d = new_daemon("portenv", webhook_listen=False, env={"PORT": str(port)})
    try:
        d.start()
        r = H.get(port, "/healthz")
        v, _ = H.try_json(r.body)
        t.ok(r.status == 200 and (v or {}).get("role") == "ingest", "PORT=%d: the webhook port listens there" % port,
             repr(r))
        r = H.post_webhook(port, jbytes(status_event("port-env-call", "queued")))
        t.eq(r.status, 200, "PORT=%d: POST /webhook works there" % port)
        t.ok("port-env-call" in d.call_ids(), "PORT=%d: the event is stored" % port)

        # A second daemon on the same arena while the first runs.
        p2 = H.free_ports(2)
        rc, out, err = run_cli(["--webhook-listen", "127.0.0.1:%d" % p2[0], "--dashboard-listen", "127.0.0.1:%d" % p2[1],
                                "--arena", d.arena, "--arena-size", d.arena_size], timeout=15)
        t.eq(rc, 1, "a second daemon on the same arena exits 1", repr(err))
        t.ok(d.arena in err, "its message names the arena", repr(err))
        t.eq(len(err.splitlines()), 1, "it writes exactly one line", repr(err))
        t.ok(d.alive() and "port-env-call" in d.call_ids(), "the first daemon still runs with its data")
    finally:
        finish_daemon(d, "PORT daemon")


# --- 6. processes ---------------------------------------------------------------------------------

def probe_event(n):
    return jbytes(conv_event("probe-call", [("probe-%d" % n, "user", "probe %d" % n)], ts=BASE_TS + n))


def scenario_kill(ctx):
    d = new_daemon("kill")
    try:
        d.start()
        for fx in ctx["fixtures"]:
            if not fx.malformed:
                d.webhook(fx.body)
        ids = list(ctx["expected"])
        t.eq(sorted(d.call_ids()), sorted(ids), "replayed: 7 calls")
        snap = snapshot_calls(d, ids)
        master = d.pid
        w = d.note_workers()
        t.ok(set(w) == {"ingest", "query"}, "the master has two workers, 'ingest' and 'query'", repr(w))
        n = [0]

        # kill -9 ingest.
        old = w.get("ingest")
        t0 = time.monotonic()
        os.kill(old, signal.SIGKILL)
        rec = None
        last = None
        while time.monotonic() - t0 < 5:
            n[0] += 1
            try:
                r = d.webhook(probe_event(n[0]), timeout=2)
                if r.status == 200:
                    rec = time.monotonic() - t0
                    break
                last = repr(r)
            except Exception as e:  # noqa: BLE001
                last = repr(e)
            time.sleep(0.02)
        t.comment("webhooks answered 200 again %s after kill -9 of ingest" %
                  ("%.0f ms" % (rec * 1000) if rec is not None else "never (5 s)"))
        t.ok(rec is not None and rec <= 1.0, "ingest killed: webhooks answered 200 again within 1 s",
             "recovery %s; last answer %s" % (rec, last))
        w2 = d.note_workers()
        t.ok(w2.get("ingest") not in (None, old), "a new ingest process runs (pid %s, was %s)" % (w2.get("ingest"), old))
        t.eq(d.pid, master, "the master pid is unchanged")
        t.ok(d.alive(), "the master is still running")
        compare_snapshots(snap, snapshot_calls(d, ids), "after kill -9 of ingest")
        t.ok("probe-call" in d.call_ids(), "the probe accepted after the restart is stored")
        t.ok(d.wait_for(lambda: re.search(r"ingest \(pid %d\) was killed by signal 9.*\n.*restarting ingest in" % old, d.stderr_text()),
                        timeout=2),
             "stderr says ingest was killed and is restarted", d.stderr_tail)

        # kill -9 query.
        old = w2.get("query")
        t0 = time.monotonic()
        os.kill(old, signal.SIGKILL)
        rec = None
        while time.monotonic() - t0 < 5:
            try:
                r = d.api("/api/calls", timeout=2)
                if r.status == 200:
                    rec = time.monotonic() - t0
                    break
                last = repr(r)
            except Exception as e:  # noqa: BLE001
                last = repr(e)
            time.sleep(0.02)
        t.comment("the dashboard API answered again %s after kill -9 of query" %
                  ("%.0f ms" % (rec * 1000) if rec is not None else "never (5 s)"))
        t.ok(rec is not None and rec <= 1.0, "query killed: the dashboard API answers again within 1 s",
             "recovery %s; last answer %s" % (rec, last))
        w3 = d.note_workers()
        t.ok(w3.get("query") not in (None, old), "a new query process runs (pid %s, was %s)" % (w3.get("query"), old))
        t.eq(d.pid, master, "the master pid is still unchanged")
        compare_snapshots(snap, snapshot_calls(d, ids), "after kill -9 of query")
        t.ok(d.wait_for(lambda: re.search(r"query \(pid %d\) was killed by signal 9.*\n.*restarting query in" % old, d.stderr_text()),
                        timeout=2),
             "stderr says query was killed and is restarted", d.stderr_tail)
        for role, pid in w3.items():
            st = H.proc_state(pid)
            t.ok(st is not None and st[1] == master, "the new %s's parent is the master" % role, repr(st))

        # A reset while ingest is stopped: 503, nothing cleared, and not carried out later.
        ing = w3["ingest"]
        before = d.conversations_raw()
        before_ids = d.call_ids()
        os.kill(ing, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            try:
                r = d.api("/api/conversations", method="DELETE", timeout=10)
            except Exception as e:  # noqa: BLE001
                r = None
                t.ok(False, "DELETE while ingest is stopped: answered", repr(e))
            el = time.monotonic() - t0
            if r is not None:
                t.eq(r.status, 503, "DELETE while ingest is stopped: 503", repr(r))
                t.ok(el < 6, "the 503 comes within a few seconds (%.1f s)" % el)
                v, err = H.try_json(r.body)
                t.ok(isinstance(v, dict) and isinstance(v.get("error"), str), "the 503 body is a JSON error", err)
            t.ok(d.conversations_raw() == before, "while ingest is stopped, nothing was cleared")
        finally:
            os.kill(ing, signal.SIGCONT)
        t.ok(d.conversations_raw() == before, "right after SIGCONT, the data is still there")
        time.sleep(1.0)
        t.ok(d.conversations_raw() == before and d.call_ids() == before_ids,
             "1 s after SIGCONT, the expired reset has not been carried out")
        t.eq(d.workers().get("ingest"), ing, "ingest was not restarted meanwhile")
        r = d.webhook(probe_event(9999))
        t.eq(r.status, 200, "ingest accepts webhooks again after SIGCONT")
    finally:
        for p in d.workers().values():
            try:
                os.kill(p, signal.SIGCONT)
            except OSError:
                pass
        finish_daemon(d, "kill daemon")


# --- 7. reset -------------------------------------------------------------------------------------

def scenario_reset(ctx):
    d = new_daemon("reset")
    try:
        d.start()
        for fx in ctx["fixtures"]:
            if not fx.malformed:
                d.webhook(fx.body)
        t.eq(len(d.call_ids()), 7, "replayed: 7 calls")
        distinctive = ["Maple Grove Dental", "Morgan Lee", "Delta Dental", "web-Zo\u00eb O'Brien", "In case 81",
                       "fake-token"]
        arena = d.arena_bytes()
        t.ok(all(s.encode() in arena for s in distinctive[:5]), "(before the reset the texts are in the arena file)",
             lambda: [s for s in distinctive[:5] if s.encode() not in arena])
        gen_before = d.calls().get("generation")
        r = d.api("/api/conversations", method="DELETE")
        t.ok(r.status == 200 and r.body == b'{"message":"All events cleared"}',
             "DELETE /api/conversations is 200 {\"message\":\"All events cleared\"}", repr(r))
        r = d.api("/api/conversations")
        t.ok(r.status == 200 and r.body == b'{"conversations":{}}', "GET /api/conversations is {\"conversations\":{}}",
             repr(r))
        calls = d.calls()
        t.eq(calls.get("calls"), [], "GET /api/calls has no calls")
        t.ok(calls.get("generation") != gen_before, "the generation changed (%s -> %s)" % (gen_before, calls.get("generation")))
        t.eq(d.conversation("CA5e0b7c1d9a2f4e8b6c3d0a1f7e9b2c4d").status, 404, "an old call is 404 now")
        arena = d.arena_bytes()
        for s in distinctive:
            t.ok(s.encode() not in arena, "after the reset, %r is nowhere in the arena file" % s)
        t.ok(b"[redacted]" not in arena, "after the reset, no raw event remains in the arena file")
        for fx in ctx["fixtures"]:
            if fx.name[:2] in ("01", "02", "04"):
                r = d.webhook(fx.body)
                t.eq(r.status, 200, "after the reset, %s is accepted" % fx.name)
        v, err = H.try_json(d.conversation("CA5e0b7c1d9a2f4e8b6c3d0a1f7e9b2c4d").body)
        t.eq([s["status"] for s in (v or {}).get("statuses", [])], ["queued", "ongoing"],
             "after the reset, new statuses are stored normally")
        t.eq(ua((v or {}).get("messages", [])),
             [("assistant", "Thanks for calling Maple Grove Dental, this is Riley. How can I help you today?")],
             "after the reset, new messages are stored normally (the old message keys are forgotten)")
        t.eq(d.call_ids(), ["CA5e0b7c1d9a2f4e8b6c3d0a1f7e9b2c4d"], "after the reset, only the new call is listed")
        r = d.api("/api/conversations", method="DELETE")
        t.eq(r.status, 200, "a second reset also succeeds")
        t.eq(d.conversations_raw(), b'{"conversations":{}}', "and clears the new events")
    finally:
        finish_daemon(d, "reset daemon")


# --- 9. SIGTERM with requests in flight -----------------------------------------------------------

def scenario_paused_sender(ctx):
    """A webhook half sent when SIGTERM comes, its sender silent for longer than the drain's quiet
    period, then sending the rest: it is answered and kept (nothing else arrives meanwhile)."""
    d = new_daemon("paused")
    try:
        d.start()
        body = jbytes(conv_event("paused-call", [("paused", "user", "sent in two halves")]))
        s = socket.create_connection(("127.0.0.1", d.wport), timeout=5)
        s.sendall(H.webhook_head(d.wport, len(body)) + body[:20])
        time.sleep(0.4)  # quiet for longer than the drain waits for
        d.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        s.sendall(body[20:])
        try:
            status, _h, _b = H._read_response(s, time.monotonic() + 5)
        except OSError as e:
            status = repr(e)
        s.close()
        t.eq(status, 200, "a webhook paused half sent across SIGTERM is answered 200")
        rc = d.proc.wait(10)
        t.eq(rc, 0, "the daemon then stops with status 0")
        H.LIVE.discard(d)
        d2 = new_daemon("paused2", arena=d.arena)
        try:
            d2.start()
            v, _ = H.try_json(d2.conversation("paused-call").body)
            t.eq([m["text"] for m in (v or {}).get("messages", [])], ["sent in two halves"], "and it was stored")
        finally:
            finish_daemon(d2, "daemon after the paused sender")
    finally:
        if d.alive():
            d.stop()


def scenario_inflight(ctx):
    d = new_daemon("inflight")
    acked, lock, stop = [], threading.Lock(), threading.Event()
    outcomes = {"post_ok": 0, "post_err": 0, "get_ok": 0, "get_err": 0, "hung": 0}
    try:
        d.start()
        d.webhook(jbytes(status_event("inflight-call", "ongoing")))

        def poster(k):
            i = 0
            while not stop.is_set():
                i += 1
                mid = "t%d-%d" % (k, i)
                try:
                    r = d.webhook(jbytes(conv_event("inflight-call", [(mid, "user", "message " + mid)],
                                                    ts=BASE_TS + k * 100000 + i)), timeout=5)
                    with lock:
                        if r.status == 200:
                            acked.append(mid)
                            outcomes["post_ok"] += 1
                        else:
                            outcomes["post_err"] += 1
                except socket.timeout:
                    with lock:
                        outcomes["hung"] += 1
                except Exception:  # noqa: BLE001
                    with lock:
                        outcomes["post_err"] += 1

        def reader():
            while not stop.is_set():
                try:
                    d.api("/api/conversations", timeout=5)
                    with lock:
                        outcomes["get_ok"] += 1
                except socket.timeout:
                    with lock:
                        outcomes["hung"] += 1
                except Exception:  # noqa: BLE001
                    with lock:
                        outcomes["get_err"] += 1

        slow_answer = []

        def slow():
            # a webhook still arriving, 10 bytes every 50 ms, when SIGTERM comes: it must be answered
            body = jbytes(conv_event("inflight-call", [("slow", "user", "slow")]))
            try:
                r = H.raw_request(d.wport, H.webhook_head(d.wport, len(body)),
                                  [body[i:i + 10] for i in range(0, len(body), 10)], gap=0.05, timeout=5)
                slow_answer.append(r.status)
            except Exception as e:  # noqa: BLE001
                slow_answer.append(repr(e))

        threads = [threading.Thread(target=poster, args=(k,), daemon=True) for k in range(2)]
        threads += [threading.Thread(target=reader, daemon=True), threading.Thread(target=slow, daemon=True)]
        for th in threads:
            th.start()
        time.sleep(0.4)
        d.note_workers()
        workers = set(d.workers_seen)
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        try:
            rc = d.proc.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
        el = time.monotonic() - t0
        stop.set()
        for th in threads:
            th.join(8)
        t.comment("in flight: %s; stopped in %.0f ms" % (outcomes, el * 1000))
        t.eq(rc, 0, "SIGTERM with requests in flight: exit status 0", d.stderr_tail)
        t.ok(el < 5, "the daemon stops within 5 s (%.2f s)" % el)
        left = [p for p in workers if H.proc_state(p) and H.proc_comm(p) in ("ingest", "query")]
        t.ok(not left, "no worker process remains (pids %s)" % sorted(workers), "left: %s" % left)
        t.ok(not any(th.is_alive() for th in threads), "no client hangs after the stop")
        t.eq(outcomes["hung"], 0, "no request timed out")
        t.eq(slow_answer, [200], "a webhook still arriving byte by byte when SIGTERM came was answered 200")
        t.ok(outcomes["post_ok"] > 0, "webhooks were being accepted when SIGTERM came (%d)" % outcomes["post_ok"])
        warn = [l for l in d.stderr_text().split("\n") if "exited with status" in l or "killing them" in l]
        t.ok(not warn, "the workers stopped cleanly (no forced kill, no error exit)", "\n".join(warn))
        H.LIVE.discard(d)

        # Every acknowledged webhook is in the arena.
        d2 = new_daemon("inflight2", arena=d.arena)
        try:
            d2.start()
            v, err = H.try_json(d2.conversation("inflight-call").body)
            keys = {m["messageId"] for m in (v or {}).get("messages", [])}
            if slow_answer == [200]:
                acked.append("slow")
            missing = [m for m in acked if m not in keys]
            t.ok(v is not None and not missing,
                 "after a restart, every acknowledged webhook (%d) is stored" % len(acked),
                 "missing %d: %s" % (len(missing), missing[:10]))
        finally:
            finish_daemon(d2, "daemon restarted after the in-flight stop")
    finally:
        stop.set()
        if d.alive():
            finish_daemon(d, "in-flight daemon")


# --- 10. a slow body ------------------------------------------------------------------------------

def scenario_slow(ctx):
    d = new_daemon("slow")
    try:
        d.start()
        body = jbytes(conv_event("slow-call", [("s1", "user", "delivered slowly, in ten pieces")]))
        n = len(body)
        chunks = [body[i * n // 10:(i + 1) * n // 10] for i in range(10)]
        t0 = time.monotonic()
        r = H.raw_request(d.wport, H.webhook_head(d.wport, n), chunks, gap=0.05, timeout=10)
        el = time.monotonic() - t0
        t.ok(el >= 0.45, "(the body took %.2f s to send)" % el)
        t.ok(r.status == 200 and r.body == b'{"status":"ok"}', "a body sent in 10 chunks 50 ms apart gets 200", repr(r))
        v, err = H.try_json(d.conversation("slow-call").body)
        t.eq(ua((v or {}).get("messages", [])), [("user", "delivered slowly, in ten pieces")], "and is stored whole")
        # Headers sent slowly too.
        body2 = body.replace(b"slow-call", b"slow-call-2")
        head = H.webhook_head(d.wport, len(body2))
        pieces = [head[:20], head[20:60], head[60:], body2[:10], body2[10:]]
        s = socket.create_connection(("127.0.0.1", d.wport), timeout=10)
        try:
            for p in pieces:
                s.sendall(p)
                time.sleep(0.05)
            status, _h, b = H._read_response(s, time.monotonic() + 10)
        finally:
            s.close()
        t.ok(status == 200 and b == b'{"status":"ok"}', "headers and body trickled in pieces: 200", repr((status, b)))
        t.ok("slow-call-2" in d.call_ids(), "and stored")
        # Several webhooks over one keep-alive connection.
        conn = H.http.client.HTTPConnection("127.0.0.1", d.wport, timeout=10)
        try:
            codes = []
            for i in range(5):
                conn.request("POST", "/webhook", body=jbytes(conv_event("keepalive-call",
                                                                        [("k%d" % i, "user", "keep-alive %d" % i)],
                                                                        ts=BASE_TS + i)),
                             headers=H.SECRET_HEADERS)
                resp = conn.getresponse()
                codes.append((resp.status, resp.read()))
        finally:
            conn.close()
        t.eq(codes, [(200, b'{"status":"ok"}')] * 5, "5 webhooks over one keep-alive connection: all 200")
        v, err = H.try_json(d.conversation("keepalive-call").body)
        t.eq([m["text"] for m in (v or {}).get("messages", [])], ["keep-alive %d" % i for i in range(5)],
             "and all 5 are stored in order")
    finally:
        finish_daemon(d, "slow-body daemon")


# --- 11. regressions from the first review --------------------------------------------------------

def scenario_review(ctx):
    d = new_daemon("review")
    try:
        d.start()
        # Stray signals: the master logs and ignores them; a worker hit by one stays up.
        before = d.workers()
        for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM):
            os.kill(d.pid, sig)
        os.kill(before["query"], signal.SIGHUP)
        os.kill(before["ingest"], signal.SIGUSR1)
        time.sleep(0.3)
        t.ok(d.alive() and d.workers() == before, "SIGUSR1, SIGUSR2 and SIGALRM to the master, SIGHUP and SIGUSR1 "
             "to the workers: nothing stops or restarts", "%s -> %s" % (before, d.workers()))
        t.ok(d.wait_for(lambda: d.stderr_text().count(": ignored") >= 3),
             "each signal the master ignores is logged", d.stderr_tail)
        # A custom credential header on an event that does not echo the assistant object.
        fx = {f.name: f for f in ctx["fixtures"]}
        body02 = fx["02-callA-status-ongoing.json"].body
        r = d.webhook(body02, headers={"X-Clinic-Key": "CustomHeaderToken-4242"})
        t.eq(r.status, 200, "an event with a custom header is accepted")
        t.ok(b"CustomHeaderToken-4242" not in d.arena_bytes(),
             "the custom header's value is not in the arena (only an allowlist of header values is kept)")
        t.ok("CustomHeaderToken-4242" not in d.stderr_text(), "nor in the log")
        # The request's secret is scrubbed from every extracted field, not only texts.
        secret = "HdrSecret-111aaa"
        ev = {"message": {"timestamp": BASE_TS, "type": "conversation-update",
                          "call": {"id": "scrub-call", "status": "st-" + secret},
                          "customer": {"number": "cust-" + secret},
                          "messages": [{"messageId": "id-" + secret, "role": "user", "text": "says " + secret}]}}
        d.webhook(jbytes(ev), headers={"x-interactly-secret": secret})
        d.webhook(jbytes(status_event("scrub-call", "st-" + secret)), headers={"x-interactly-secret": secret})
        detail = d.call_detail("scrub-call")
        everything = detail.body + d.conversations_raw() + d.api("/api/calls").body
        t.ok(secret.encode() not in everything, "the header secret is scrubbed from status, customer and messageId",
             lambda: detail.body[:400])
        t.ok(secret.encode() not in d.arena_bytes(), "and from the arena")
        t.ok(secret.lower() not in d.stderr_text().lower(), "and from the log, in any case")
        # A status cannot forge a log line or carry terminal escapes.
        forged = "ok\n2026-12-03 18:00:00.000 master: ERROR forged line\x1b[31mRED\rOVER\u009b2J"
        d.webhook(jbytes(status_event("inject-call", forged)))
        # statuses are upper-cased, and cut at 40 characters
        text = d.wait_for(lambda: "MASTER: ERROR" in d.stderr_text() and d.stderr_text())
        lines = [l for l in (text or "").split("\n") if "MASTER: ERROR" in l]
        t.ok(len(lines) == 1 and " ingest: " in lines[0] and not any(l.startswith("2026-12-03 18:00:00.000")
                                                                       for l in text.split("\n")),
             "a status with a newline stays on its ingest line: no forged line", lambda: lines)
        raw = d.stderr_bytes()
        t.ok(b"\x1b" not in raw and b"\rOVER" not in raw and "\u009b".encode() not in raw,
             "no ESC, CR or C1 control byte from a payload reaches the log")
        # A wrong path on the webhook port is logged: a misconfigured platform must be noticed.
        r = d.webhook(body02, path="/webhook/")
        t.eq(r.status, 404, "POST /webhook/ is 404")
        t.ok(d.wait_for(lambda: "404 /webhook/" in d.stderr_text()), "and the 404 is logged with the path",
             d.stderr_tail)
        # HEAD: headers and the length, never a body (it would run into the next pipelined answer).
        for port, what in ((d.wport, "webhook"), (d.dport, "dashboard")):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                data = b""
                s.settimeout(5)
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    data += c
            finally:
                s.close()
            head1, _, rest = data.partition(b"\r\n\r\n")
            t.ok(b"content-length:" in head1.lower() and rest.startswith(b"HTTP/1.1 200"),
                 "%s port: HEAD sends Content-Length and no body; the pipelined GET follows intact" % what,
                 lambda: data[:600])
        # Ambiguous framing is refused: the way requests are smuggled past a proxy.
        b = b'{"message":{"type":"hang","call":{"id":"smuggle"}}}'
        r = H.raw_request(d.wport, b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n"
                          % (len(b), len(b) + 10), [b])
        t.ok(r.status == 400 and "error" in (H.try_json(r.body)[0] or {}), "two Content-Length headers: 400 JSON",
             repr(r))
        r = H.raw_request(d.wport, b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n" % len(b), [b"%x\r\n%s\r\n0\r\n\r\n" % (len(b), b)])
        t.eq(r.status, 400, "Content-Length with Transfer-Encoding: 400")
        t.ok("smuggle" not in d.call_ids(), "and nothing was stored")
        r = H.raw_request(d.wport, b"TRACE /webhook HTTP/1.1\r\nHost: x\r\n\r\n")
        v, _ = H.try_json(r.body)
        t.ok(r.status == 501 and (v or {}).get("code") == "method_not_implemented", "TRACE: 501 with its own JSON error",
             repr(r))
        # Conditional requests: an unchanged call list costs a 304.
        r1 = d.api("/api/calls")
        etag = r1.header("etag")
        t.ok(bool(etag), "GET /api/calls carries an ETag")
        r2 = d.api("/api/calls", headers={"If-None-Match": etag or ""})
        t.ok(r2.status == 304 and r2.body == b"", "the same ETag gets 304 and no body", repr(r2))
        for inm in ['W/' + (etag or ''), '"other", ' + (etag or ''), '*']:
            t.eq(d.api("/api/calls", headers={"If-None-Match": inm}).status, 304, "If-None-Match: %s gets 304" % inm)
        t.eq(d.api("/api/calls", headers={"If-None-Match": '"other"'}).status, 200, "another ETag gets the list")
        d.webhook(jbytes(status_event("etag-call", "queued")))
        r3 = d.api("/api/calls", headers={"If-None-Match": etag or ""})
        t.ok(r3.status == 200 and r3.header("etag") != etag, "after a new event: 200 with a new ETag", repr(r3))
        # Many concurrent /api/conversations share one build.
        results = []

        def fetch():
            try:
                results.append(d.api("/api/conversations", timeout=20).body)
            except Exception as e:  # noqa: BLE001
                results.append(e)
        threads = [threading.Thread(target=fetch) for _ in range(40)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        t.ok(all(isinstance(x, bytes) for x in results) and len(set(results)) == 1,
             "40 concurrent /api/conversations all answered, identically", lambda: [type(x) for x in results][:5])
        # An ended call that gets a later non-terminal status still shows its terminal status.
        d.webhook(jbytes(status_event("late-call", "finished", ts=BASE_TS)))
        d.webhook(jbytes(status_event("late-call", "ongoing", ts=BASE_TS + 5000)))
        k = d.call_detail("late-call").json()
        t.ok(k["ended"] is True and k["status"] == "finished", "an ended call keeps showing finished", repr(k)[:300])
        # An event that changes nothing does not move its call to the top of the list.
        d.webhook(jbytes(status_event("order-top", "queued")))
        d.webhook(fx["80-unknown-event-type.json"].body)  # call A (known from file 02): no change
        t.eq(d.calls()["calls"][0]["id"], "order-top", "an unknown event type for call A does not move A to the top")
    finally:
        finish_daemon(d, "review daemon")

    # SIGTERM while webhooks are on their way: every request already sent is answered.
    d = new_daemon("drain")
    try:
        d.start()
        socks = []
        for i in range(20):
            s = socket.create_connection(("127.0.0.1", d.wport), timeout=10)
            b = jbytes(status_event("drain-%d" % i, "queued"))
            s.sendall(H.webhook_head(d.wport, len(b)) + b)
            socks.append(s)
        d.proc.send_signal(signal.SIGTERM)
        codes = []
        for s in socks:
            try:
                status, _h, _b = H._read_response(s, time.monotonic() + 10)
                codes.append(status)
            except Exception as e:  # noqa: BLE001
                codes.append(repr(e))
            finally:
                s.close()
        t.eq(codes, [200] * 20, "20 webhooks sent just before SIGTERM are all answered 200")
        rc = d.proc.wait(15)
        t.eq(rc, 0, "and the daemon still exits 0")
        d2 = H.Daemon(BINARY, d.dir, arena=d.arena)
        d2.start()
        try:
            ids = d2.call_ids()
            t.eq(sorted(i for i in ids if i.startswith("drain-")), sorted("drain-%d" % i for i in range(20)),
                 "and all 20 are stored")
        finally:
            finish_daemon(d2, "drain restart daemon")
    finally:
        if d.alive():
            finish_daemon(d, "drain daemon")

    # Out of descriptors: the daemon pauses accepting instead of flooding the log, and recovers.
    import resource

    def low_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    d = new_daemon("emfile")
    try:
        d.wport, d.dport = H.free_ports(2)
        with open(d.stderr_path, "ab") as err:
            d.proc = subprocess.Popen(d.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                      env=H.clean_env(None), close_fds=True, preexec_fn=low_fds)
        H.LIVE.add(d)
        d.wait_ready()
        held = []
        for _ in range(150):
            held.append(socket.create_connection(("127.0.0.1", d.wport), timeout=5))
        time.sleep(1.5)
        lines = d.stderr_text().count("\n")
        for s in held:
            s.close()
        t.ok(lines < 40, "150 held connections with 64 descriptors: %d log lines, not a flood" % lines, d.stderr_tail)
        r = d.wait_for(lambda: d.webhook(jbytes(status_event("after-emfile", "queued")), timeout=5), timeout=5)
        t.ok(r is not None and r.status == 200, "and webhooks are served again once descriptors are free", repr(r))
    finally:
        finish_daemon(d, "emfile daemon")


# --- 12. a full arena -----------------------------------------------------------------------------

def scenario_full_arena(ctx):
    """A 1 MiB arena filled many times over: the live call stays whole, ended calls leave whole and
    are counted, and a call that comes back after leaving is marked resumed."""
    # the filler is a flood from one address by design: --webhook-rate would rightly refuse part of it
    d = new_daemon("full", arena_size="1M", args=["--webhook-rate", "0"])
    try:
        d.start()
        live = [("a%d" % i, "user" if i % 2 else "assistant", "live turn %d" % i) for i in range(3)]
        t.eq(d.webhook(jbytes(status_event("live-A", "ongoing"))).status, 200, "live call: status accepted")
        t.eq(d.webhook(jbytes(conv_event("live-A", live))).status, 200, "live call: transcript accepted")
        gone = [("b0", "user", "an early question")]
        for body in (status_event("gone-B", "ongoing"), conv_event("gone-B", gone), status_event("gone-B", "ended")):
            t.eq(d.webhook(jbytes(body)).status, 200, "call B: event accepted")
        pad = "x" * 3000
        refused = 0
        n = 0
        while n < 1500:  # ~4.5 MB of facts through a 1 MiB arena
            for k in range(20):
                cid = "filler-%d" % n
                n += 1
                ev = conv_event(cid, [("f", "user", "filler %d %s" % (n, pad))])
                refused += d.webhook(jbytes(ev)).status != 200
                refused += d.webhook(jbytes(status_event(cid, "ended"))).status != 200
            if n % 200 == 0:  # the live call keeps talking now and then
                live.append(("a%d" % len(live), "user", "live turn %d" % len(live)))
                refused += d.webhook(jbytes(conv_event("live-A", live))).status != 200
        t.eq(refused, 0, "%d filler calls: every event answered 200 (ingest never refuses for room)" % n)
        t.ok(len(live) > 5, "the live call spoke %d times meanwhile" % len(live))
        t.ok("gone-B" not in d.call_ids(), "the ended call B has left the full arena")
        det = d.call_detail("live-A").json()
        t.eq([m["text"] for m in det["messages"]], [x for _, _, x in live], "the live call is whole: every message")
        t.eq([s["status"] for s in det["statuses"]], ["ongoing"], "the live call is whole: its first status")
        t.eq(det.get("resumed"), False, "the live call is not marked resumed")
        p = subprocess.run([H.CTL, "--arena", d.arena, "stats", "--json"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=H.clean_env(), timeout=10)
        err = p.stderr.decode("utf-8", "replace")
        st = json.loads(p.stdout) if p.returncode == 0 else {}
        c = st.get("counters", {})
        t.ok(c.get("calls_evicted", 0) > 0 and c.get("snapshots", 0) > 0 and c.get("live_dropped") == 0,
             "liveeventsctl stats counts evicted calls and snapshots, and no live call dropped", repr(c) + err)
        t.ok(d.wait_for(lambda: "arena full:" in d.stderr_text(), timeout=2), "the log says the arena is full")
        # B comes back: shown from its new event on, and marked so
        gone.append(("b1", "user", "a question after a long pause"))
        t.eq(d.webhook(jbytes(conv_event("gone-B", gone))).status, 200, "call B: a late event is accepted")
        det = d.call_detail("gone-B").json()
        t.eq(det.get("resumed"), True, "call B is marked resumed in its detail")
        t.eq(det.get("statuses"), [], "its earlier statuses left with its history")
        t.eq([m["text"] for m in det["messages"]], [x for _, _, x in gone],
             "the late full-history update brings every message back")
        summ = [x for x in d.calls()["calls"] if x["id"] == "gone-B"]
        t.ok(summ and summ[0].get("resumed") is True, "and in /api/calls", repr(summ))
    finally:
        finish_daemon(d, "full arena daemon")


def main():
    global t, TMP
    t = H.TAP()
    start = time.monotonic()
    if not os.access(BINARY, os.X_OK):
        print("Bail out! liveeventsd not found or not executable at %s (set LIVEEVENTSD or top_builddir)" % BINARY)
        return 1
    if not os.path.isdir(FIXDIR):
        print("Bail out! no fixtures at %s (set top_srcdir)" % FIXDIR)
        return 1
    TMP = tempfile.mkdtemp(prefix="liveevents-it-")
    t.comment("binary %s" % BINARY)
    t.comment("fixtures %s" % FIXDIR)
    t.comment("temporary files in %s" % TMP)

    def on_alarm(_sig, _frm):
        H.kill_all_live()
        print("Bail out! the integration tests took more than 300 s", flush=True)
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(TMP, ignore_errors=True)
        os._exit(1)

    def on_term(sig, _frm):
        raise SystemExit(128 + sig)  # unwinds through the finally below: no daemon is left running

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    signal.alarm(300)
    ctx = {}
    try:
        with open(H.EXPECTED, encoding="utf-8") as f:
            ctx["expected"] = json.load(f)
        ctx["fixtures"] = load_fixtures()
        t.ok(len([f for f in ctx["fixtures"] if not f.malformed]) > 40 and any(f.malformed for f in ctx["fixtures"]),
             "fixtures loaded (%d files)" % len(ctx["fixtures"]))

        scenario("1 replay", scenario_replay, ctx)
        if ctx.get("replay_daemon") and ctx["replay_daemon"].alive():
            scenario("2 redaction", scenario_redaction, ctx)
            scenario("3 log lines", scenario_logs, ctx)
            scenario("8 persistence", scenario_persistence, ctx)
        if ctx.get("replay_daemon"):
            finish_daemon(ctx["replay_daemon"], "replay daemon")
        scenario("4 bad input", scenario_bad_input, ctx)
        scenario("4 repairs everywhere", scenario_repairs_everywhere, ctx)
        scenario("4 max body", scenario_max_body, ctx)
        scenario("5 command line", scenario_cli, ctx)
        scenario("6 processes", scenario_kill, ctx)
        scenario("7 reset", scenario_reset, ctx)
        scenario("9 SIGTERM in flight", scenario_inflight, ctx)
        scenario("9 SIGTERM and a paused sender", scenario_paused_sender, ctx)
        scenario("10 slow body", scenario_slow, ctx)
        scenario("11 review regressions", scenario_review, ctx)
        scenario("12 full arena", scenario_full_arena, ctx)
    finally:
        H.kill_all_live()
        signal.alarm(0)
        if os.environ.get("KEEP_TMP") or (t.failures and os.environ.get("KEEP_TMP_ON_FAILURE")):
            t.comment("kept %s" % TMP)
        else:
            shutil.rmtree(TMP, ignore_errors=True)
    t.comment("")
    t.comment("%d checks, %d failed, %.1f s" % (t.n, len(t.failures), time.monotonic() - start))
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
