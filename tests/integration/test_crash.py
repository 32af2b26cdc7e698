#!/usr/bin/env python3
"""Crash-proof under load: the real daemon takes a steady stream of webhooks from several clients
while its ingest worker is killed with SIGKILL at random moments, a few hundred times. Every event
answered 200 must be stored exactly once, nothing that was never sent may appear, the arena must
validate, the master must survive it all, stop cleanly, and a restarted daemon must show the same.

Every event is unique and countable: a status-update with its own status string "s-<n>" (each adds
exactly one status pill to its call, so a duplicate commit would show as two pills) or a
conversation-update adding one message "m-<n>"; each body also carries "crashTestId": "e<n>", so its
raw copy can be counted in the call's "events". An event that was not answered 200 may be stored (at
most once) or not.

Environment (as test_daemon.py): top_srcdir, top_builddir, LIVEEVENTSD, KEEP_TMP=1; also
  LIVEEVENTSCTL        the inspector (default: $top_builddir/daemon/liveeventsctl), used if present
  CRASH_KILLS          how many times ingest is killed (default 250; the brief asks for at least 200)
  CRASH_SEED           the random seed (default 20240611)
Output is TAP. Python 3 standard library only; only temporary files are written."""

import sys

sys.dont_write_bytecode = True  # never leave __pycache__ in a (possibly read-only) source tree

import bisect  # noqa: E402
import collections  # noqa: E402
import http.client  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

BINARY, CTL = H.DAEMON, H.CTL

KILLS = int(os.environ.get("CRASH_KILLS") or 250)
SEED = int(os.environ.get("CRASH_SEED") or 20240611)
CALLS = ["crash-call-%02d" % i for i in range(36)]
FRESH_CLIENTS = 3       # a new connection per request
KEEPALIVE_CLIENTS = 3   # one connection reused until it breaks
ARENA_SIZE = "128M"     # large enough that nothing is evicted: every event must stay countable
MAX_EVENTS = 60000      # the clients stop sending beyond this (the arena holds far more)
KILL_DELAY_MAX = 0.030  # a random 0-30 ms after the new ingest exists, it is killed
NEW_INGEST_TIMEOUT = 5.0
LOAD_TIMEOUT = 90.0     # the whole kill phase, at most
REQUEST_TIMEOUT = 10.0
BASE_TS = 1784041800000
GLOBAL_TIMEOUT = 240

t = None
TMP = None


# --- events ---------------------------------------------------------------------------------------

class Ev:
    __slots__ = ("n", "kind", "call", "key", "body", "sent", "done", "status", "error", "client")

    def __init__(self, n, kind, call):
        self.n = n
        self.kind = kind      # "status" or "message"
        self.call = call
        self.key = ("s-%d" if kind == "status" else "m-%d") % n
        ts = BASE_TS + n
        if kind == "status":
            m = {"timestamp": ts, "type": "status-update", "call": {"id": call, "status": self.key}}
        else:
            m = {"timestamp": ts, "type": "conversation-update", "call": {"id": call, "status": "ongoing"},
                 "messages": [{"messageId": self.key, "role": "user" if n % 2 else "assistant",
                               "text": "text %d" % n, "timestamp": ts - 10}]}
        self.body = json.dumps({"message": m, "crashTestId": "e%d" % n}).encode()
        self.sent = self.done = None
        self.status = None    # HTTP status, or None when no answer came
        self.error = None
        self.client = None

    @property
    def acked(self):
        return self.status == 200


class Load:
    """The client threads and everything they sent."""

    def __init__(self, port):
        self.port = port
        self.events = []
        self.lock = threading.Lock()
        self.counter = itertools.count()
        self.stop = threading.Event()
        self.rng = random.Random(SEED)
        self.threads = []
        self.reconnects = 0

    def new_event(self, client):
        with self.lock:
            n = next(self.counter)
            if n >= MAX_EVENTS:
                return None
            kind = "status" if self.rng.random() < 0.5 else "message"
            ev = Ev(n, kind, CALLS[self.rng.randrange(len(CALLS))])
            ev.client = client
            self.events.append(ev)
            return ev

    def fresh_client(self, k):
        while not self.stop.is_set():
            ev = self.new_event("fresh-%d" % k)
            if ev is None:
                return
            ev.sent = time.monotonic()
            try:
                r = H.post_webhook(self.port, ev.body, timeout=REQUEST_TIMEOUT)
                ev.status = r.status
            except Exception as e:  # noqa: BLE001 -- any transport failure: not acknowledged
                ev.error = type(e).__name__
            ev.done = time.monotonic()

    def keepalive_client(self, k):
        conn = None
        while not self.stop.is_set():
            ev = self.new_event("keepalive-%d" % k)
            if ev is None:
                break
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
                with self.lock:
                    self.reconnects += 1
            ev.sent = time.monotonic()
            try:
                conn.request("POST", "/webhook", body=ev.body, headers=dict(H.SECRET_HEADERS))
                r = conn.getresponse()
                r.read()
                ev.status = r.status
                if r.will_close:
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001
                ev.error = type(e).__name__
                conn.close()
                conn = None
            ev.done = time.monotonic()
        if conn is not None:
            conn.close()

    def start(self):
        for k in range(FRESH_CLIENTS):
            self.threads.append(threading.Thread(target=self.fresh_client, args=(k,), daemon=True))
        for k in range(KEEPALIVE_CLIENTS):
            self.threads.append(threading.Thread(target=self.keepalive_client, args=(k,), daemon=True))
        for th in self.threads:
            th.start()

    def finish(self, timeout=REQUEST_TIMEOUT + 5):
        self.stop.set()
        for th in self.threads:
            th.join(timeout)
        return [th for th in self.threads if th.is_alive()]


# --- the killer -----------------------------------------------------------------------------------

def current_ingest(d, not_pid=None):
    """The master's child named 'ingest' (other than not_pid), or None."""
    for c in H.children_of(d.pid):
        if c != not_pid and H.proc_comm(c) == "ingest":
            st = H.proc_state(c)
            if st and st[0] != "Z":
                return c
    return None


def wait_new_ingest(d, old, timeout=NEW_INGEST_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = current_ingest(d, not_pid=old)
        if p is not None:
            return p
        time.sleep(0.0005)
    return None


def kill_loop(d, rng):
    """Kills ingest KILLS times; returns [(pid, t_kill, t_new_exists)] and an error text or None."""
    kills = []
    pid = wait_new_ingest(d, None)
    if pid is None:
        return kills, "no ingest process found"
    t_end = time.monotonic() + LOAD_TIMEOUT
    while len(kills) < KILLS:
        if time.monotonic() > t_end:
            return kills, "only %d kills within %.0f s" % (len(kills), LOAD_TIMEOUT)
        if not d.alive():
            return kills, "the master died"
        time.sleep(rng.uniform(0, KILL_DELAY_MAX))
        if H.proc_comm(pid) != "ingest":
            return kills, "ingest %d vanished before it was killed" % pid
        os.kill(pid, signal.SIGKILL)
        t_kill, wall_kill = time.monotonic(), time.time()
        new = wait_new_ingest(d, pid)
        if new is None:
            return kills, "no new ingest within %.0f s of killing %d" % (NEW_INGEST_TIMEOUT, pid)
        kills.append((pid, t_kill, time.monotonic(), new, wall_kill))
        d.workers_seen.add(pid)
        d.workers_seen.add(new)
        pid = new
    return kills, None


def unavailability(kills, events):
    """Per kill: seconds from the kill to the first 200 answering a request sent after it (and
    before the next kill), or None when the next kill came first."""
    acked = sorted((e.sent, e.done) for e in events if e.acked)
    sent_times = [s for s, _ in acked]
    out = []
    for i, (_pid, tk, _tn, _new, _wall) in enumerate(kills):
        nxt = kills[i + 1][1] if i + 1 < len(kills) else float("inf")
        lo, hi = bisect.bisect_right(sent_times, tk), bisect.bisect_left(sent_times, nxt)
        first = min((done for _s, done in acked[lo:hi]), default=None)
        out.append(first - tk if first is not None and first < nxt else None)
    return out


def worst_gap(d, kills, gaps, events):
    """One line on the longest unavailability: what the daemon and the clients did meanwhile."""
    i = max((k for k in range(len(gaps)) if gaps[k] is not None), key=lambda k: gaps[k])
    _pid, tk, tn, new, wall = kills[i]
    nxt = kills[i + 1][1] - tk if i + 1 < len(kills) else None
    inflight = sum(1 for e in events if e.sent is not None and e.sent <= tk and (e.done is None or e.done > tk))
    sent_after = sum(1 for e in events if e.sent is not None and tk < e.sent < tk + gaps[i])
    serving = None
    m = re.search(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) master: ingest \(pid %d\) is serving again" % new,
                  d.stderr_text(), re.M)
    if m:
        ts = time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%d %H:%M:%S")) - time.timezone + int(m.group(1)[20:]) / 1000
        serving = ts - wall
    return ("longest: kill no. %d: new ingest %d existed after %.1f ms, reported serving after %s, first 200 after "
            "%.1f ms; %d requests were in flight at the kill, %d sent meanwhile; next kill %s"
            % (i + 1, new, (tn - tk) * 1000, "%.0f ms" % (serving * 1000) if serving is not None else "?",
               gaps[i] * 1000, inflight, sent_after, "%.0f ms later" % (nxt * 1000) if nxt is not None else "none"))


# --- reading back ---------------------------------------------------------------------------------

def read_back(d):
    """{"status": Counter((call, key)), "message": Counter((call, key)), "raw": Counter(n),
    "raw_calls": {n: call}, "unknown": [...]} from /api/conversations."""
    r = d.api("/api/conversations", timeout=30)
    if r.status != 200:
        raise H.DaemonError("GET /api/conversations answered %r" % r)
    v = r.json()
    out = {"status": collections.Counter(), "message": collections.Counter(), "raw": collections.Counter(),
           "raw_calls": {}, "unknown": [], "ncalls": 0, "json": v}
    for cid, c in v["conversations"].items():
        out["ncalls"] += 1
        if cid not in CALLS:
            out["unknown"].append("call %r" % cid)
        for s in c["statuses"]:
            out["status"][(cid, s["status"])] += 1
        for m in c["messages"]:
            out["message"][(cid, m["messageId"])] += 1
        for e in c["events"]:
            tid = e.get("crashTestId") if isinstance(e, dict) else None
            if not (isinstance(tid, str) and re.fullmatch(r"e\d+", tid)):
                out["unknown"].append("raw event %s" % H._short(e, 200))
                continue
            n = int(tid[1:])
            out["raw"][n] += 1
            out["raw_calls"][n] = cid
    return out


def wait_settled(d, timeout=10.0):
    """Until /api/calls stops changing for a while (query has followed everything)."""
    deadline = time.monotonic() + timeout
    last, same_since = None, None
    while time.monotonic() < deadline:
        try:
            c = d.calls()
            key = (c.get("generation"), c.get("seq"))
        except Exception:  # noqa: BLE001
            key = None
        now = time.monotonic()
        if key is not None and key == last:
            if now - same_since >= 0.5:
                return True
        else:
            last, same_since = key, now
        time.sleep(0.05)
    return False


def verify(label, back, events):
    """Every acked event exactly once, every other at most once, nothing never sent."""
    by_key = {}
    for e in events:
        by_key[(e.kind, e.call, e.key)] = e
    sent_keys = {e.key for e in events}
    lost, dup, unacked_dup, mismatch, present_unacked = [], [], [], [], 0
    for e in events:
        fact = back[e.kind][(e.call, e.key)]
        raw = back["raw"][e.n]
        if e.acked:
            if fact == 0 or raw == 0:
                lost.append("%s %s of %s (fact x%d, raw x%d; %s)" % (e.kind, e.key, e.call, fact, raw, e.client))
            elif fact > 1 or raw > 1:
                dup.append("%s %s of %s (fact x%d, raw x%d)" % (e.kind, e.key, e.call, fact, raw))
        else:
            if fact > 1 or raw > 1:
                unacked_dup.append("%s %s of %s (fact x%d, raw x%d)" % (e.kind, e.key, e.call, fact, raw))
            if fact != raw:
                mismatch.append("%s %s: fact x%d but raw x%d" % (e.kind, e.key, fact, raw))
            if fact:
                present_unacked += 1
        if raw and back["raw_calls"].get(e.n) != e.call:
            mismatch.append("raw e%d under %s, sent for %s" % (e.n, back["raw_calls"].get(e.n), e.call))
    never = list(back["unknown"])
    for kind in ("status", "message"):
        for (cid, key), n in back[kind].items():
            if (kind, cid, key) not in by_key:
                never.append("%s %r under %s x%d%s" % (kind, key, cid, n,
                                                       " (sent for another call)" if key in sent_keys else ""))
    for n in back["raw"]:
        if n >= len(events) or events[n].n != n:
            never.append("raw event e%d" % n)
    acked = sum(1 for e in events if e.acked)
    t.ok(not lost, "%s: every acknowledged event (%d) is stored" % (label, acked),
         lambda: "%d lost:\n  %s" % (len(lost), "\n  ".join(lost[:20])))
    t.ok(not dup, "%s: no acknowledged event is stored twice" % label,
         lambda: "%d duplicated:\n  %s" % (len(dup), "\n  ".join(dup[:20])))
    t.ok(not unacked_dup, "%s: no unacknowledged event is stored twice" % label,
         lambda: "%d duplicated:\n  %s" % (len(unacked_dup), "\n  ".join(unacked_dup[:20])))
    t.ok(not never, "%s: nothing is stored that was never sent" % label,
         lambda: "%d unexpected:\n  %s" % (len(never), "\n  ".join(never[:20])))
    t.ok(not mismatch, "%s: each stored event has its fact and its raw body, under its own call" % label,
         lambda: "%d mismatches:\n  %s" % (len(mismatch), "\n  ".join(mismatch[:20])))
    return present_unacked


def run_ctl_check(arena, label):
    if not os.access(CTL, os.X_OK):
        t.comment("%s: %s not built: the arena is validated through the API only "
                  "(liveeventsctl check still needs wiring into this test's run)" % (label, CTL))
        return None
    p = subprocess.run([CTL, "--arena", arena, "check"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=H.clean_env(), timeout=120)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    t.comment("%s: liveeventsctl check (exit %d):\n%s" % (label, p.returncode, out.strip()))
    t.eq(p.returncode, 0, "%s: liveeventsctl --arena PATH check exits 0" % label, out)
    return p.returncode


def log_problems(text):
    """Lines a killed writer must never cause: committed records found invalid, a re-initialised
    arena, unreadable facts."""
    bad = []
    for line in text.split("\n"):
        low = line.lower()
        if ("truncated" in low or "re-initialised" in low or "unreadable" in low or "new generation" in low
                or "giving up" in low or "out of memory" in low):
            bad.append(line)
    return bad


# --- the scenario ---------------------------------------------------------------------------------

def scenario():
    rng = random.Random(SEED ^ 0x5A5A)
    d = H.Daemon(BINARY, tempfile.mkdtemp(prefix="crash-", dir=TMP), arena_size=ARENA_SIZE,
                 args=["--restart-backoff", "0", "--restart-limit", "0"])
    d2 = None
    load = None
    try:
        d.start()
        master = d.pid
        w = d.note_workers()
        t.ok(set(w) == {"ingest", "query"}, "the master has its two workers", repr(w))

        load = Load(d.wport)
        t0 = time.monotonic()
        load.start()
        time.sleep(0.3)  # the load is flowing before the first kill
        kills, err = kill_loop(d, rng)
        t_kills = time.monotonic() - t0
        time.sleep(0.3)  # and keeps flowing after the last
        hung = load.finish()
        t_load = time.monotonic() - t0
        events = list(load.events)
        t.ok(err is None, "ingest killed %d times under load (%s)" % (len(kills), err or "every kill followed by a new ingest"))
        t.ok(len(kills) >= min(KILLS, 200), "at least %d kills (%d)" % (min(KILLS, 200), len(kills)))
        t.ok(not hung, "every client thread finished (none hung)", lambda: "%d still running" % len(hung))
        t.ok(d.alive(), "the master is still running", d.stderr_tail)
        t.eq(d.pid, master, "the master pid never changed")

        acked = [e for e in events if e.acked]
        other = collections.Counter(e.status if e.status is not None else e.error for e in events if not e.acked)
        gaps = unavailability(kills, events)
        measured = sorted(g for g in gaps if g is not None)
        respawn = sorted(k[2] - k[1] for k in kills)
        t.comment("kills: %d in %.1f s (load ran %.1f s, seed %d)" % (len(kills), t_kills, t_load, SEED))
        t.comment("requests sent: %d (%d status-update, %d conversation-update; %d on fresh connections, %d keep-alive "
                  "on %d connections)" % (len(events), sum(e.kind == "status" for e in events),
                                          sum(e.kind == "message" for e in events),
                                          sum(e.client.startswith("fresh") for e in events),
                                          sum(e.client.startswith("keepalive") for e in events), load.reconnects))
        t.comment("acked: %d; unacked: %d (%s)" % (len(acked), len(events) - len(acked),
                                                   ", ".join("%s x%d" % kv for kv in other.most_common())))
        if measured:
            t.comment("webhook port unavailable after a kill (kill -> first 200 to a request sent after it): "
                      "median %.1f ms, max %.1f ms, over %d kills; after %d kills the next kill came first"
                      % (statistics.median(measured) * 1000, measured[-1] * 1000, len(measured),
                         len(gaps) - len(measured)))
        if measured:
            t.comment(worst_gap(d, kills, gaps, events))
        if respawn:
            t.comment("a new ingest process existed %.1f ms (median) / %.1f ms (max) after a kill"
                      % (statistics.median(respawn) * 1000, respawn[-1] * 1000))
        t.ok(len(acked) >= 1000, "a meaningful number of events was acknowledged (%d)" % len(acked))
        t.ok(len(events) - len(acked) > 0, "some requests were cut off by the kills (%d)" % (len(events) - len(acked)))
        t.ok(len(measured) >= len(kills) // 4, "webhooks were answered again between kills (%d of %d kills)"
             % (len(measured), len(kills)))
        t.ok(any(e.acked and e.client.startswith("fresh") for e in events) and
             any(e.acked and e.client.startswith("keepalive") for e in events),
             "both fresh and keep-alive connections had events acknowledged")

        # Settle: the last ingest serves, query has followed everything.
        d.note_workers()
        r = None
        for _ in range(100):
            try:
                r = H.get(d.wport, "/healthz", timeout=2)
                if r.status == 200:
                    break
            except Exception:  # noqa: BLE001
                pass
            time.sleep(0.05)
        t.ok(r is not None and r.status == 200, "after the kills the webhook port answers /healthz")
        t.ok(wait_settled(d), "the dashboard API settles")
        back = read_back(d)
        t.comment("stored: %d calls, %d status pills, %d messages, %d raw events"
                  % (back["ncalls"], sum(back["status"].values()), sum(back["message"].values()),
                     sum(back["raw"].values())))
        present = verify("after the kills", back, events)
        t.comment("of the unacknowledged events, %d were stored anyway (committed, then the answer was lost)"
                  % present)
        first_json = back["json"]
        problems = log_problems(d.stderr_text())
        t.ok(not problems, "the log shows no invalid committed record, re-initialisation or unreadable fact",
             lambda: "\n".join(problems[:20]))
        t.ok("arena full" not in d.stderr_text() and "raw ring full" not in d.stderr_text(),
             "nothing was evicted (every event stays countable)")
        t.ok(len(re.findall(r"ingest \(pid \d+\) was killed by signal 9", d.stderr_text())) >= len(kills),
             "the master logged every kill")
        t.eq(d.pid, master, "the master pid is still the same at the end")

        rc = d.stop()
        t.eq(rc, 0, "the daemon exits 0 on SIGTERM", d.stderr_tail)
        left = d.leftover_workers()
        t.ok(not left, "no worker process is left behind", lambda: "still running: %s" % left)
        run_ctl_check(d.arena, "after the stop")

        # The whole daemon again, on the same arena.
        d2 = H.Daemon(BINARY, tempfile.mkdtemp(prefix="crash-restart-", dir=TMP), arena=d.arena, arena_size=ARENA_SIZE)
        d2.start()
        t.ok(wait_settled(d2), "restarted: the dashboard API settles")
        back2 = read_back(d2)
        verify("after a restart of the whole daemon", back2, events)
        t.ok(back2["json"] == first_json, "after a restart, /api/conversations shows exactly what it showed before",
             lambda: "calls before %d, after %d" % (len(first_json["conversations"]), len(back2["json"]["conversations"])))
        problems = log_problems(d2.stderr_text())
        t.ok(not problems, "restarted: the log shows no invalid record", lambda: "\n".join(problems[:20]))
        rc = d2.stop()
        t.eq(rc, 0, "restarted: the daemon exits 0 on SIGTERM", d2.stderr_tail)
        run_ctl_check(d.arena, "after the restarted daemon stopped")
    finally:
        if load is not None:
            load.finish(timeout=1)
        for x in (d, d2):
            if x is not None and x.alive():
                x.kill_hard()


def main():
    global t, TMP
    t = H.TAP()
    start = time.monotonic()
    if not os.access(BINARY, os.X_OK):
        print("Bail out! liveeventsd not found or not executable at %s (set LIVEEVENTSD or top_builddir)" % BINARY)
        return 1
    TMP = tempfile.mkdtemp(prefix="liveevents-crash-")
    t.comment("binary %s" % BINARY)
    t.comment("temporary files in %s" % TMP)

    def on_alarm(_sig, _frm):
        H.kill_all_live()
        print("Bail out! the crash test took more than %d s" % GLOBAL_TIMEOUT, flush=True)
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(TMP, ignore_errors=True)
        os._exit(1)

    def on_term(sig, _frm):
        raise SystemExit(128 + sig)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    signal.alarm(GLOBAL_TIMEOUT)
    try:
        try:
            scenario()
        except Exception:  # noqa: BLE001
            t.crashed("the crash scenario")
    finally:
        H.kill_all_live()
        signal.alarm(0)
        if os.environ.get("KEEP_TMP") or (t.failures and os.environ.get("KEEP_TMP_ON_FAILURE")):
            t.comment("kept %s" % TMP)
        else:
            shutil.rmtree(TMP, ignore_errors=True)
    t.comment("%d checks, %d failed, %.1f s" % (t.n, len(t.failures), time.monotonic() - start))
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
