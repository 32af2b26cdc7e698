#!/usr/bin/env python3
"""Integration tests for liveeventsctl, the read-only arena inspector: the real daemon, the real
inspector, real signals. Output is TAP.

Environment:
  top_srcdir      the source tree (default: two levels up from this script); fixtures come from
                  $top_srcdir/tests/fixtures
  top_builddir    the build tree (default: top_srcdir); set by `make check`, differs under distcheck
  LIVEEVENTSD     the daemon (default: $top_builddir/daemon/liveeventsd)
  LIVEEVENTSCTL   the inspector (default: $top_builddir/daemon/liveeventsctl)
  KEEP_TMP=1      keep the temporary directory (daemon logs, arenas) for inspection

Only temporary files under tempfile.mkdtemp() (and one /dev/shm object, removed at the end) are
written; the source tree may be read-only."""

import sys

sys.dont_write_bytecode = True  # never leave __pycache__ in a (possibly read-only) source tree

import hashlib  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

SRCDIR, DAEMON, CTL, FIXDIR = H.SRCDIR, H.DAEMON, H.CTL, H.FIXDIR

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (master|ingest|query): (.*)$")
EVENT_LINE = re.compile(r"^\[\d\d:\d\d:\d\d\.\d{3}\] ")
TIME_PREFIX = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\.(\d{3})\] ")
RESET_LINE = re.compile(r"^-- arena reset or re-initialised \(generation ([0-9a-f]{16})\) --$")
OVERRUN_LINE = re.compile(r"^-- (\d+) records overwritten before they could be read --$")
MARKER = re.compile(r"^-- .* --$")
# An event without a timestamp of its own (fixture 81) is described with its commit time: the
# daemon's log uses the time it took before committing, the inspector the record's own stamp (taken
# by arena_append a little later), so the two may differ by a few milliseconds under load.
CLOCK_SLACK_MS = 50
KNOWN_TYPES = {"status-update", "conversation-update", "end-of-call-report", "hang", "error", "speech-update",
               "transcript"}
TERMINAL = ("finished", "failed", "ended", "completed")
COUNTERS = ["events", "repaired", "unattributed", "unknown_type", "rejected", "resets", "raw_bytes", "raw_dropped"]
MAX_LATENCY_S = 1.0   # a follower polls every 50 ms; anything near a second is a bug
IDLE_SECONDS = 3.0
IDLE_CPU_MAX_S = 0.15  # 5 % of a CPU over IDLE_SECONDS would be a spinning follower
BASE_TS = 1784041800000

t = None      # the TAP producer
TMP = None    # the private temporary directory
FOLLOWERS = []  # inspector processes to kill if the run ends abnormally


# --- fixtures -------------------------------------------------------------------------------------

class Fixture:
    def __init__(self, name):
        self.name = name
        with open(os.path.join(FIXDIR, name), "rb") as f:
            self.body = f.read()
        try:
            self.json = json.loads(self.body)
        except ValueError:
            self.json = None
        m = self.json.get("message") if isinstance(self.json, dict) else None
        self.type = m.get("type") if isinstance(m, dict) else None
        c = m.get("call") if isinstance(m, dict) else None
        self.call_id = c["id"] if isinstance(c, dict) and isinstance(c.get("id"), str) and c["id"] else None

    @property
    def malformed(self):
        return self.json is None


def load_fixtures():
    return [Fixture(n) for n in sorted(n for n in os.listdir(FIXDIR) if n[:1].isdigit())]


# --- the inspector --------------------------------------------------------------------------------

def ctl(args, arena=None, timeout=30, preexec=None):
    """Runs liveeventsctl; (status, stdout, stderr) as text."""
    argv = [CTL] + (["--arena", arena] if arena else []) + list(args)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=H.clean_env(), timeout=timeout, preexec_fn=preexec)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def ctl_json(args, arena, preexec=None):
    rc, out, err = ctl(list(args) + ["--json"], arena, preexec=preexec)
    v, e = H.try_json(out.encode())
    if rc != 0 or v is None:
        raise AssertionError("liveeventsctl %s --json: status %s, %s, stderr %r" % (" ".join(args), rc, e, err))
    return v


def out_lines(out):
    return out.split("\n")[:-1] if out.endswith("\n") else out.split("\n")


class Follower:
    """liveeventsctl tail -f running in the background; every stdout line with its arrival time."""

    def __init__(self, arena, args=()):
        self.p = subprocess.Popen([CTL, "--arena", arena, "tail", "-f"] + list(args), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=H.clean_env())
        FOLLOWERS.append(self)
        self.cond = threading.Condition()
        self.timed = []
        self.err = b""
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for raw in iter(self.p.stdout.readline, b""):
            now = time.monotonic()
            with self.cond:
                self.timed.append((now, raw.decode("utf-8", "replace").rstrip("\n")))
                self.cond.notify_all()

    def _read_err(self):
        self.err = self.p.stderr.read()

    @property
    def pid(self):
        return self.p.pid

    def lines(self):
        with self.cond:
            return [l for _, l in self.timed]

    def wait_count(self, n, timeout=3.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.timed) < n and time.monotonic() < deadline:
                self.cond.wait(max(0.0, deadline - time.monotonic()))
            return len(self.timed) >= n

    def wait_for(self, pred, start=0, timeout=3.0):
        """The index of the first line from `start` on that satisfies pred, or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.timed)):
                    if pred(self.timed[i][1]):
                        return i
                if time.monotonic() >= deadline:
                    return None
                self.cond.wait(max(0.0, deadline - time.monotonic()))

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.pid) as f:
            st = f.read()
        fields = st[st.rfind(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGINT, timeout=5.0):
        """Sends sig; (exit status or None if it had to be killed, seconds it took)."""
        t0 = time.monotonic()
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            rc = None
        if self in FOLLOWERS:
            FOLLOWERS.remove(self)
        return rc, time.monotonic() - t0

    def kill(self):
        if self.p.poll() is None:
            try:
                self.p.send_signal(signal.SIGCONT)
                self.p.kill()
            except ProcessLookupError:
                pass
            self.p.wait()


def kill_followers():
    for f in list(FOLLOWERS):
        f.kill()
    FOLLOWERS.clear()


# --- comparing with the daemon --------------------------------------------------------------------

def daemon_event_lines(d):
    """The daemon's per-event log lines after the log's prefix, in order."""
    out = []
    for line in d.stderr_bytes().decode("utf-8", "replace").split("\n"):
        m = LOG_LINE.match(line)
        if m and m.group(1) == "ingest" and EVENT_LINE.match(m.group(2)):
            out.append(m.group(2))
    return out


def wait_daemon_lines(d, n, timeout=3.0):
    d.wait_for(lambda: len(daemon_event_lines(d)) >= n, timeout=timeout)
    return daemon_event_lines(d)


def _ms(m):
    return ((int(m.group(1)) * 60 + int(m.group(2))) * 60 + int(m.group(3))) * 1000 + int(m.group(4))


def same_event(got, want):
    """(equal, needed the clock slack)."""
    if got == want:
        return True, False
    a, b = TIME_PREFIX.match(got), TIME_PREFIX.match(want)
    if a and b and got[a.end():] == want[b.end():] and abs(_ms(a) - _ms(b)) <= CLOCK_SLACK_MS:
        return True, True
    return False, False


def compare_events(got, want, what):
    """One check: got (inspector lines) says exactly what want (daemon lines) says, in order."""
    slack = 0
    bad = None
    for i, (g, w) in enumerate(zip(got, want)):
        ok, used = same_event(g, w)
        slack += used
        if not ok and bad is None:
            bad = "first difference at line %d:\n  daemon:    %r\n  inspector: %r" % (i + 1, w, g)
    if len(got) != len(want) and bad is None:
        bad = "%d lines from the inspector, %d from the daemon\n  daemon tail: %r\n  inspector tail: %r" % (
            len(got), len(want), want[-3:], got[-3:])
    t.ok(bad is None, "%s: the same %d lines as the daemon's log, in order" % (what, len(want)), bad)
    if slack:
        t.comment("%s: %d line(s) differ from the log only by <= %d ms in the time of an event without a timestamp"
                  % (what, slack, CLOCK_SLACK_MS))


def expected_status(exp):
    """What view_call_status shows: the last terminal pill of an ended call, else the last pill."""
    st = exp["statuses"]
    if exp["ended"]:
        term = [s for s in st if s in TERMINAL]
        if term:
            return term[-1]
    return st[-1] if st else "-"


# --- scenario runner ------------------------------------------------------------------------------

def new_daemon(name, **kw):
    return H.Daemon(DAEMON, tempfile.mkdtemp(prefix=name + "-", dir=TMP), **kw)


def scenario(label, fn, *args):
    return t.scenario(label, fn, *args)


def one_line_error(rc, out, err, status, what, must_name=None):
    t.eq(rc, status, "%s: exit status %d" % (what, status), repr(err))
    t.ok(err.endswith("\n") and err.count("\n") == 1, "%s: exactly one line on stderr" % what, repr(err))
    t.eq(out, "", "%s: nothing on stdout" % what)
    if must_name:
        t.ok(must_name in err, "%s: the line names %s" % (what, must_name), repr(err))


# --- 1. command line ------------------------------------------------------------------------------

def scenario_cli(ctx):
    rc, out, err = ctl(["--help"])
    t.eq(rc, 0, "--help exits 0")
    t.ok(out.startswith("Usage:") and all(c in out for c in ("stats", "calls", "tail", "check", "--arena")),
         "--help prints the usage, naming every command, on stdout", repr(out[:300]))
    t.eq(err, "", "--help writes nothing on stderr")
    rc, out, err = ctl(["--version"])
    t.eq(rc, 0, "--version exits 0")
    t.ok(re.match(r"^liveeventsctl \S+\n$", out) is not None, "--version prints 'liveeventsctl VERSION'", repr(out))
    for args, what, name in [(["frobnicate"], "an unknown command", "frobnicate"),
                             (["--bogus", "stats"], "an unknown option", "--bogus"),
                             (["stats", "--bogus"], "an unknown option after the command", "--bogus"),
                             ([], "no command", None),
                             (["tail", "--json"], "--json with tail", "--json"),
                             (["stats", "-f"], "-f with stats", "-f"),
                             (["tail", "-n", "many"], "-n with a word", "many"),
                             (["tail", "-n"], "-n without its number", "-n"),
                             (["--arena"], "--arena without its path", "--arena"),
                             (["stats", "extra"], "a stray argument", "extra")]:
        rc, out, err = ctl(args)
        one_line_error(rc, out, err, 2, what, name)

    missing = os.path.join(TMP, "no-such-dir", "arena")
    for cmd in ("stats", "calls", "tail", "check"):
        rc, out, err = ctl([cmd], missing)
        one_line_error(rc, out, err, 1, "%s on a missing arena" % cmd, missing)
    junk = os.path.join(TMP, "not-an-arena")
    with open(junk, "wb") as f:
        f.write(b"\x00" * 65536)
    rc, out, err = ctl(["stats"], junk)
    one_line_error(rc, out, err, 1, "a file that is not an arena", junk)
    rc, out, err = ctl(["stats"], "/dev/shm/liveevents-ctl-test-no-such-object-%d" % os.getpid())
    one_line_error(rc, out, err, 1, "a missing /dev/shm object", "/dev/shm/liveevents-ctl-test-no-such-object")


# --- 2. a fresh arena -----------------------------------------------------------------------------

def check_text_matches_json(text, js, what):
    """The text stats say what the JSON says."""
    for key in COUNTERS:
        label = key.replace("_", " ")
        m = re.search(r"^  %s +(\d+)$" % re.escape(label), text, re.M)
        t.ok(m is not None and int(m.group(1)) == js["counters"][key],
             "%s: text stats show %s = %s" % (what, label, js["counters"][key]), text)
    for ring in ("facts", "raw"):
        r = js["rings"][ring]
        want = "\n%s ring\n  slots      %d used of %d\n" % (ring, r["slots_used"], r["slots_total"])
        t.ok(want in text and "  sequence   tail %d, head %d\n" % (r["tail"], r["head"]) in text,
             "%s: text stats show the %s ring as the JSON does" % (what, ring), text)
    t.ok("\ngeneration   %s\n" % js["generation"] in text, "%s: text stats show the generation" % what, text)


def scenario_fresh(ctx):
    d = new_daemon("ctl-main")
    ctx["d"] = d
    d.start()
    ingest = d.workers().get("ingest")
    rc, text, err = ctl(["stats"], d.arena)
    t.eq(rc, 0, "stats on a fresh arena exits 0", err)
    t.eq(err, "", "stats writes nothing on stderr")
    js = ctl_json(["stats"], d.arena)
    t.ok(all(js["counters"].get(k) == 0 for k in COUNTERS), "fresh arena: every counter is 0", js["counters"])
    t.ok(set(COUNTERS) <= set(js["counters"]), "stats --json names every counter of arena.h", js["counters"])
    t.ok(all(js["rings"][r]["head"] == js["rings"][r]["tail"] == 0 and js["rings"][r]["slots_used"] == 0
             and js["rings"][r]["data_used"] == 0 for r in ("facts", "raw")),
         "fresh arena: both rings empty", js["rings"])
    t.eq(js["layout_version"], 1, "layout version 1")
    t.eq(js["file_size"], os.path.getsize(d.arena), "file size as on disk")
    t.ok(re.match(r"^[0-9a-f]{16}$", js["generation"]) is not None, "generation is 16 hex digits", js)
    t.eq(js["generation"], d.calls()["generation"], "the generation is the one the API reports")
    w = js["writer"]
    t.ok(w["alive"] is True and w["pid"] == ingest, "the writer is ingest (pid %s) and alive" % ingest, w)
    t.ok(w["heartbeat_age_ms"] is not None and 0 <= w["heartbeat_age_ms"] < 3000 and not w["heartbeat_stale"],
         "the writer's heartbeat is recent (%s ms)" % w["heartbeat_age_ms"], w)
    t.ok(("writer       pid %d alive" % ingest) in text, "text stats: the writer's pid and 'alive'", text)
    check_text_matches_json(text, js, "fresh arena")

    rc, out, err = ctl(["calls"], d.arena)
    t.ok(rc == 0 and out_lines(out) and out_lines(out)[0].startswith("CALL") and len(out_lines(out)) == 1,
         "calls on a fresh arena: only the header line", repr((rc, out, err)))
    t.eq(ctl_json(["calls"], d.arena), d.calls(), "calls --json equals GET /api/calls (no calls)")
    rc, out, err = ctl(["tail", "-n", "5"], d.arena)
    t.ok(rc == 0 and out == "" and err == "", "tail -n 5 on a fresh arena prints nothing", repr((rc, out, err)))
    rc, out, err = ctl(["check"], d.arena)
    t.ok(rc == 0 and out_lines(out)[-1:] == ["consistent"], "check on a fresh arena: exit 0, consistent",
         repr((rc, out, err)))


# --- 3. tail -f during the replay -----------------------------------------------------------------

def scenario_follow_replay(ctx):
    d = ctx["d"]
    # -n with more than the arena holds: nothing is missed even if the follower starts late.
    f = Follower(d.arena, ["-n", "100000"])
    ctx["follower"] = f
    time.sleep(0.2)
    t.ok(f.alive() and f.lines() == [], "tail -f on an empty arena runs and prints nothing")
    accepted, rejected, lat = [], [], []
    for fx in ctx["fixtures"]:
        r = d.webhook(fx.body)
        answered = time.monotonic()
        if r.status != 200:
            rejected.append(fx)
            continue
        accepted.append(fx)
        if f.wait_count(len(accepted), timeout=3.0):
            lat.append(max(0.0, f.timed[len(accepted) - 1][0] - answered))
    ctx["accepted"], ctx["rejected"] = accepted, rejected
    t.eq([fx.name for fx in rejected], [fx.name for fx in ctx["fixtures"] if fx.malformed],
         "only the malformed fixture is refused")
    want = wait_daemon_lines(d, len(accepted))
    t.eq(len(want), len(accepted), "(the daemon logged one line per accepted event)")
    got = f.lines()
    t.eq(len(got), len(accepted), "tail -f printed one line per accepted event (%d)" % len(accepted),
         lambda: "\n".join(got[-5:]))
    compare_events(got, want, "tail -f during the replay")
    if lat:
        t.comment("tail -f latency after the 200 answer: median %.1f ms, 90th %.1f ms, max %.1f ms (%d events)" % (
            statistics.median(lat) * 1000, sorted(lat)[int(len(lat) * 0.9)] * 1000, max(lat) * 1000, len(lat)))
    t.ok(len(lat) == len(accepted) and max(lat) < MAX_LATENCY_S,
         "every line came within %.1f s of its 200 answer" % MAX_LATENCY_S,
         lambda: "latencies: %s" % ["%.3f" % x for x in lat])
    t.ok(f.alive(), "tail -f is still running")


# --- 4. stats, calls, tail and check after the replay ---------------------------------------------

def scenario_after_replay(ctx):
    d = ctx["d"]
    accepted, rejected = ctx["accepted"], ctx["rejected"]
    js = ctl_json(["stats"], d.arena)
    ctx["stats_before_stop"] = js
    c = js["counters"]
    unattributed = [fx.name for fx in accepted if not fx.call_id]
    unknown = [fx.name for fx in accepted if isinstance(fx.type, str) and fx.type not in KNOWN_TYPES]
    t.comment("unattributed: %s; unknown type: %s" % (unattributed, unknown))
    t.eq(c["events"], len(accepted), "events = the number of 200 answers (%d)" % len(accepted))
    t.eq(c["rejected"], len(rejected), "rejected = %d (the malformed fixture)" % len(rejected))
    t.eq(c["unattributed"], len(unattributed), "unattributed = %d (%s)" % (len(unattributed), ", ".join(unattributed)))
    t.eq(c["unknown_type"], len(unknown), "unknown type = %d (%s)" % (len(unknown), ", ".join(unknown)))
    t.eq(c["repaired"], 0, "repaired = 0 (no fixture holds broken text)")
    t.eq(c["resets"], 0, "resets = 0")
    body_bytes = sum(len(fx.body) for fx in accepted)
    t.ok(0 < c["raw_bytes"] <= body_bytes * 2, "raw bytes (%d) are about the bodies' size (%d)" % (c["raw_bytes"], body_bytes))
    t.eq(c["raw_dropped"], 0, "raw dropped = 0")
    t.eq(js["rings"]["facts"]["head"] - js["rings"]["facts"]["tail"], len(accepted), "the facts ring holds every event")
    t.eq(js["rings"]["raw"]["head"] - js["rings"]["raw"]["tail"], len(accepted), "the raw ring holds every body")
    t.ok(0 < js["rings"]["facts"]["data_used"] < js["rings"]["raw"]["data_used"],
         "facts are more compact than raw bodies (%d < %d bytes)" % (js["rings"]["facts"]["data_used"],
                                                                      js["rings"]["raw"]["data_used"]))
    t.ok(js["writer"]["alive"], "the writer is alive")
    rc, text, err = ctl(["stats"], d.arena)
    t.eq(rc, 0, "stats exits 0")
    check_text_matches_json(text, ctl_json(["stats"], d.arena), "after the replay")

    # calls
    expected = ctx["expected"]
    api = d.calls()
    cj = ctl_json(["calls"], d.arena)
    t.eq(cj, api, "calls --json equals GET /api/calls, byte for byte in meaning (same generation and seq)")
    rc, out, err = ctl(["calls"], d.arena)
    t.eq(rc, 0, "calls exits 0", err)
    lines = out_lines(out)
    t.ok(lines and re.match(r"^CALL +STATUS +ENDED +MESSAGES +ALERTS +LAST ACTIVITY$", lines[0]),
         "calls: a header line", repr(lines[:1]))
    rows = [l.split() for l in lines[1:]]
    t.eq(sorted(r[0] for r in rows), sorted(expected), "calls lists exactly the %d expected call ids" % len(expected))
    by_id = {r[0]: r for r in rows}
    api_by_id = {x["id"]: x for x in api["calls"]}
    for cid, exp in expected.items():
        r = by_id.get(cid)
        if not t.ok(r is not None and len(r) == 7, "[%s] one row of 7 columns" % cid[:14], repr(r)):
            continue
        t.eq(r[1], expected_status(exp), "[%s] status %s" % (cid[:14], expected_status(exp)))
        t.eq(r[2], "yes" if exp["ended"] else "no", "[%s] ended %s" % (cid[:14], exp["ended"]))
        a = api_by_id.get(cid, {})
        t.ok(r[3] == str(a.get("messages")) and r[4] == str(exp["hangs"] + exp["errors"]) == str(a.get("alerts")),
             "[%s] messages and alerts as the API counts them (%s, %s)" % (cid[:14], a.get("messages"), a.get("alerts")),
             repr(r))
        t.ok(re.match(r"^\d{4}-\d\d-\d\d$", r[5]) and re.match(r"^\d\d:\d\d:\d\d$", r[6]),
             "[%s] last activity as a local date and time" % cid[:14], repr(r))
    t.eq([r[0] for r in rows], [x["id"] for x in reversed(api["calls"])],
         "calls: newest activity last (the API's order reversed)")

    # tail -n
    want = daemon_event_lines(d)
    rc, out, err = ctl(["tail", "-n", "5"], d.arena)
    t.eq(rc, 0, "tail -n 5 exits 0", err)
    compare_events(out_lines(out), want[-5:], "tail -n 5")
    rc, out, err = ctl(["tail"], d.arena)
    compare_events(out_lines(out), want[-10:], "tail (default 10)")
    rc, out, err = ctl(["tail", "--lines", "1000"], d.arena)
    compare_events(out_lines(out), want, "tail --lines 1000 (everything stored)")
    rc, out, err = ctl(["tail", "-n", "0"], d.arena)
    t.ok(rc == 0 and out == "", "tail -n 0 prints nothing", repr(out[:200]))

    rc, out, err = ctl(["check"], d.arena)
    t.ok(rc == 0 and out_lines(out)[-1:] == ["consistent"] and "problem" not in out,
         "check on the running daemon's arena: exit 0, consistent", out + err)
    t.ok(re.search(r"^facts ring: %d records .*all read back and decoded$" % len(accepted), out, re.M) and
         re.search(r"^raw   ring: %d records .*all read back and decoded$" % len(accepted), out, re.M),
         "check read back and decoded every record of both rings", out)


# --- 5. reset and kill -9 while following ---------------------------------------------------------

def post_until_ok(d, body, timeout=5.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            r = d.webhook(body, timeout=2)
            if r.status == 200:
                return r
            last = r
        except (OSError, http.client.HTTPException) as e:
            last = e
        time.sleep(0.02)
    raise AssertionError("no 200 within %.0f s: %r" % (timeout, last))


def scenario_reset_kill(ctx):
    d, f = ctx["d"], ctx["follower"]
    fx = {fx.name[:2]: fx for fx in ctx["fixtures"]}
    n0 = len(f.lines())
    daemon0 = len(daemon_event_lines(d))
    r = d.api("/api/conversations", method="DELETE")
    t.eq(r.status, 200, "DELETE /api/conversations answers 200", repr(r))
    gen = d.calls()["generation"]
    i = f.wait_for(lambda l: RESET_LINE.match(l), start=n0)
    t.ok(i is not None, "tail -f prints the reset line", lambda: f.lines()[n0:])
    if i is not None:
        t.eq(RESET_LINE.match(f.lines()[i]).group(1), gen, "the reset line names the new generation")
        t.eq(i, n0, "the reset line comes right after the last event (nothing else in between)")
    for k in ("01", "02", "04"):
        d.webhook(fx[k].body)
    want = wait_daemon_lines(d, daemon0 + 3)[daemon0:]
    f.wait_count(n0 + 4)
    compare_events(f.lines()[n0 + 1:], want, "tail -f after the reset")

    # kill -9 of the writer: its successor recovers the arena, and the follower just goes on.
    old = d.workers().get("ingest")
    n1, daemon1 = len(f.lines()), len(daemon_event_lines(d))
    os.kill(old, signal.SIGKILL)
    post_until_ok(d, fx["05"].body)
    d.webhook(fx["06"].body)
    new = d.note_workers().get("ingest")
    t.ok(new not in (None, old), "a new ingest runs (pid %s, was %s)" % (new, old))
    want = wait_daemon_lines(d, daemon1 + 2)[daemon1:]
    f.wait_count(n1 + 2)
    compare_events(f.lines()[n1:], want, "tail -f across a kill -9 of ingest")
    t.ok(f.alive(), "tail -f survived the reset and the kill")
    t.ok(not any(OVERRUN_LINE.match(l) for l in f.lines()), "no overrun was reported (nothing was overwritten)")
    t.eq(sum(1 for l in f.lines() if RESET_LINE.match(l)), 1,
         "exactly one reset line (recovering a cleanly killed writer keeps the generation)")
    js = ctl_json(["stats"], d.arena)
    t.ok(js["writer"]["pid"] == new and js["writer"]["alive"], "stats: the writer is the new ingest (pid %s)" % new,
         js["writer"])
    t.eq(js["counters"]["resets"], 1, "stats: resets = 1")
    t.eq(js["generation"], gen, "stats: the generation of the reset")
    rc, out, err = ctl(["check"], d.arena)
    t.ok(rc == 0 and out_lines(out)[-1:] == ["consistent"], "check after the reset and the kill: consistent", out + err)


# --- 6. idle cost and the ways a follower ends ----------------------------------------------------

def scenario_idle_and_signals(ctx):
    d, f = ctx["d"], ctx["follower"]
    time.sleep(0.3)
    c0 = f.cpu_seconds()
    time.sleep(IDLE_SECONDS)
    c1 = f.cpu_seconds()
    t.comment("tail -f used %.3f s of CPU in %.0f s idle" % (c1 - c0, IDLE_SECONDS))
    t.ok(c1 - c0 <= IDLE_CPU_MAX_S, "tail -f does not spin: %.3f s of CPU in %.0f s idle (limit %.2f s)" % (
        c1 - c0, IDLE_SECONDS, IDLE_CPU_MAX_S))

    rc, took = f.stop(signal.SIGINT)
    t.eq(rc, 0, "SIGINT: tail -f exits 0 (%.0f ms)" % (took * 1000))
    t.ok(took < 1.0, "SIGINT: it exits at once")
    t.eq(f.err, b"", "tail -f wrote nothing on stderr")
    g = Follower(d.arena, ["-n", "1"])
    g.wait_count(1)
    rc, took = g.stop(signal.SIGTERM)
    t.eq(rc, 0, "SIGTERM: tail -f exits 0 (%.0f ms)" % (took * 1000))

    # A reader that goes away (| head -1): the follower notices while idle, without a new event.
    p = subprocess.Popen([CTL, "--arena", d.arena, "tail", "-f", "-n", "3"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=H.clean_env())
    try:
        first = p.stdout.readline()
        t0 = time.monotonic()
        p.stdout.close()
        try:
            rc = p.wait(3)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
        err = p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    t.ok(first.startswith(b"["), "| head -1: the first line arrives", repr(first))
    t.eq(rc, 0, "| head -1: tail -f exits 0 once its output is closed (%.0f ms, no new event needed)" % (took * 1000))
    t.eq(err, b"", "| head -1: nothing on stderr (no 'Broken pipe')")
    # The same through a shell pipeline, as a user types it.
    t0 = time.monotonic()
    sh = subprocess.run(["/bin/sh", "-c", '"$0" --arena "$1" tail -f | head -n 2', CTL, d.arena],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=H.clean_env(), timeout=10)
    t.ok(sh.returncode == 0 and len(sh.stdout.splitlines()) == 2 and sh.stderr == b"",
         "'liveeventsctl tail -f | head -n 2' ends by itself (%.0f ms)" % ((time.monotonic() - t0) * 1000),
         repr(sh))


# --- 7. the daemon stopped ------------------------------------------------------------------------

def scenario_stopped(ctx):
    d = ctx["d"]
    calls_before = ctl_json(["calls"], d.arena)
    stats_before = ctl_json(["stats"], d.arena)
    tail_before = ctl(["tail", "-n", "5"], d.arena)[1]
    t.eq(calls_before, d.calls(), "(before the stop, calls --json equals the API)")
    t.eq(d.stop(), 0, "the daemon stops with status 0 on SIGTERM")
    js = ctl_json(["stats"], d.arena)
    t.eq(js["writer"]["alive"], False, "stats after the stop: the writer is not alive")
    rc, text, err = ctl(["stats"], d.arena)
    t.ok(rc == 0 and re.search(r"^writer +pid \d+ not running", text, re.M), "text stats: 'not running'", text)
    t.eq(js["counters"], stats_before["counters"], "the counters are unchanged and readable")
    t.eq(js["rings"], stats_before["rings"], "the rings are unchanged and readable")
    t.eq(ctl_json(["calls"], d.arena), calls_before, "calls --json: the same calls as while it ran")
    t.eq(ctl(["tail", "-n", "5"], d.arena)[1], tail_before, "tail -n 5: the same lines as while it ran")
    rc, out, err = ctl(["check"], d.arena)
    t.ok(rc == 0 and out_lines(out)[-1:] == ["consistent"], "check on the stopped daemon's arena: consistent",
         out + err)
    g = Follower(d.arena, ["-n", "2"])
    got = g.wait_count(2)
    rc, _took = g.stop(signal.SIGINT)
    t.ok(got and rc == 0, "tail -f works on the arena of a stopped daemon (and waits for it)")


# --- 8. check on damaged copies -------------------------------------------------------------------

def arena_layout(data):
    """Ring geometry and control counters of an arena image (see common/arena.h)."""
    rings = []
    for r in range(2):
        slots_off, data_off, data_size, slot_count, _slot_size = struct.unpack_from("<QQQII", data, 48 + 32 * r)
        head, tail, dhead, dtail = struct.unpack_from("<4Q", data, 4096 + 64 + 64 * r)
        rings.append(dict(slots_off=slots_off, data_off=data_off, data_size=data_size, slot_count=slot_count,
                          head=head, tail=tail, dhead=dhead, dtail=dtail, ctl_off=4096 + 64 + 64 * r))
    return rings


def slot(data, ring, seq):
    off = ring["slots_off"] + 48 * (seq % ring["slot_count"])
    s, pos, _t, _ref, length = struct.unpack_from("<QQQQI", data, off)
    return s, pos, length


def scenario_damaged(ctx):
    src = ctx["d"].arena
    with open(src, "rb") as f:
        image = f.read()
    L = arena_layout(image)
    facts, raw = L
    t.ok(facts["head"] > facts["tail"] + 2 and raw["head"] > raw["tail"] + 2, "(the arena has records to damage)")

    def run(name, mutate):
        b = bytearray(image)
        mutate(b)
        p = os.path.join(TMP, name)
        with open(p, "wb") as f:
            f.write(b)
        return ctl(["check"], p)

    rc, out, err = run("copy-intact", lambda b: None)
    t.ok(rc == 0 and out_lines(out)[-1:] == ["consistent"], "an intact copy: check exits 0", out + err)

    def damaged(name, mutate, what, pattern):
        rc, out, err = run(name, mutate)
        t.eq(rc, 1, "%s: check exits 1" % what, out + err)
        probs = [l for l in out_lines(out) if l.startswith("problem: ")]
        t.ok(probs and any(re.search(pattern, l) for l in probs), "%s: the problem is listed" % what, out)
        t.ok(re.match(r"^INCONSISTENT: \d+ problems?$", out_lines(out)[-1]) is not None,
             "%s: the summary says INCONSISTENT" % what, out)

    def put_u64(off, v):
        return lambda b: struct.pack_into("<Q", b, off, v)

    damaged("copy-tail", put_u64(facts["ctl_off"] + 8, facts["head"] + 5), "facts tail beyond head",
            r"facts ring: tail \d+ is beyond head")
    damaged("copy-head", put_u64(facts["ctl_off"], facts["tail"] + facts["slot_count"] + 1),
            "more facts than slots", r"facts ring: \d+ records but only \d+ slots")
    damaged("copy-window", put_u64(raw["ctl_off"] + 16, raw["dtail"] + raw["data_size"] + 4096),
            "raw data window larger than the ring", r"raw ring: \d+ data bytes in use")
    damaged("copy-writer-pid", put_u64(4096 + 8, (1 << 64) - 1), "a writer pid no kernel hands out",
            r"writer pid \d+ is beyond any Linux pid")
    damaged("copy-heartbeat", put_u64(4096 + 24, (1 << 64) - 1), "a heartbeat from the future",
            r"heartbeat is \d+ s in the future")
    mid = (facts["tail"] + facts["head"]) // 2
    _s, pos, length = slot(image, facts, mid)

    def flip_payload(ring, pos_, length_):
        def m(b):
            off = ring["data_off"] + (pos_ + length_ // 2) % ring["data_size"]
            b[off] ^= 0x5A
        return m

    damaged("copy-fact", flip_payload(facts, pos, length), "a flipped byte in fact %d" % mid,
            r"facts seq %d: .*fails validation" % mid)
    rmid = (raw["tail"] + raw["head"]) // 2
    _s, rpos, rlen = slot(image, raw, rmid)
    damaged("copy-raw", flip_payload(raw, rpos, rlen), "a flipped byte in raw body %d" % rmid,
            r"raw seq %d: .*fails validation" % rmid)
    damaged("copy-slot", put_u64(facts["slots_off"] + 48 * (mid % facts["slot_count"]), mid + 7),
            "a wrong sequence number in slot %d" % mid, r"facts seq %d: " % mid)
    damaged("copy-pos", put_u64(facts["slots_off"] + 48 * ((mid + 1) % facts["slot_count"]) + 8, pos),
            "a record overlapping its predecessor", r"facts seq %d: " % (mid + 1))
    # What a writer killed between publishing data_head and head_seq leaves: not an inconsistency.
    rc, out, err = run("copy-unpublished", put_u64(facts["ctl_off"] + 16, facts["dhead"] + 4096))
    t.ok(rc == 0 and out_lines(out)[-1:] == ["consistent"] and "4096 bytes of an interrupted append" in out,
         "bytes appended but never published (a killed writer): consistent, and reported", out + err)
    # A daemon started on the copy with a damaged fact: recovery replaces it by a hole and keeps
    # every record after it; the arena is consistent again, and the loss is counted and said.
    before = sorted(c["id"] for c in ctl_json(["calls"], os.path.join(TMP, "copy-intact"))["calls"])
    d = H.Daemon(DAEMON, tempfile.mkdtemp(prefix="ctl-holes-", dir=TMP), arena=os.path.join(TMP, "copy-fact"),
                 arena_size=ctx["d"].arena_size)
    try:
        d.start()
        t.ok(d.wait_for(lambda: "1 damaged record(s) replaced by holes" in d.stderr_text(), timeout=2),
             "a daemon on the damaged copy: its log says a damaged record became a hole", d.stderr_tail)
        rc, out, err = ctl(["check"], d.arena)
        t.ok(rc == 0 and out_lines(out)[-1:] == ["consistent"] and "1 of them hole left by recovery" in out,
             "check after recovery: consistent, the hole reported", out + err)
        js = ctl_json(["stats"], d.arena)
        t.eq(js.get("counters", {}).get("damaged"), 1, "stats: 1 damaged record")
        t.eq(arena_layout(open(d.arena, "rb").read())[0]["head"], facts["head"],
             "no record after the damaged one was dropped (same head)")
        rc, out, err = ctl(["tail", "-n", str(facts["head"] - mid)], d.arena)
        t.ok("-- event %d was lost to damage" % mid in out, "tail names the lost event", out)
        after = d.call_ids()
        t.ok(set(after) <= set(before) and len(after) >= len(before) - 1,
             "the calls are still listed (at most the damaged record's call is gone)", "%s -> %s" % (before, after))
    finally:
        rc = d.stop()
        t.eq(rc, 0, "the daemon on the damaged copy stops with status 0", d.stderr_tail)

    p = os.path.join(TMP, "copy-magic")
    b = bytearray(image)
    b[0] ^= 0xFF
    with open(p, "wb") as f:
        f.write(b)
    rc, out, err = ctl(["check"], p)
    one_line_error(rc, out, err, 1, "a damaged header", p)


# --- 9. a read-only arena -------------------------------------------------------------------------

def scenario_read_only(ctx):
    src = ctx["d"].arena
    pub = tempfile.mkdtemp(prefix="liveevents-ctl-ro-")  # outside TMP: other users must reach it
    try:
        os.chmod(pub, 0o755)
        p = os.path.join(pub, "arena")
        shutil.copyfile(src, p)
        os.chmod(p, 0o444)
        digest = hashlib.sha256(open(p, "rb").read()).hexdigest()
        preexec, who = None, "its owner, with mode 0444"
        if os.geteuid() == 0:
            # root may write anything: run the inspector as a user who can only read the file.
            def preexec():  # noqa: E306
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            who = "user nobody, who may only read it"
        for cmd in (["stats"], ["calls"], ["tail", "-n", "3"], ["check"]):
            rc, out, err = ctl(cmd, p, preexec=preexec)
            t.ok(rc == 0 and out and not err, "%s on a read-only arena file, run as %s" % (" ".join(cmd), who),
                 repr((rc, out[:300], err)))
        t.eq(ctl_json(["calls"], p, preexec=preexec), ctl_json(["calls"], src), "calls --json: the same calls as the original")
        t.eq(hashlib.sha256(open(p, "rb").read()).hexdigest(), digest, "the arena file is unchanged byte for byte")
    finally:
        shutil.rmtree(pub, ignore_errors=True)


# --- 10. a POSIX shared-memory arena --------------------------------------------------------------

def scenario_shm(ctx):
    name = "/dev/shm/liveevents-ctl-test-%d" % os.getpid()
    d = new_daemon("ctl-shm", arena=name, arena_size="4M")
    try:
        d.start()
        for fx in ctx["fixtures"][:3]:
            d.webhook(fx.body)
        js = ctl_json(["stats"], name)
        t.eq(js["counters"]["events"], 3, "stats on %s (a shm object) reads its events" % name)
        want = wait_daemon_lines(d, 3)
        compare_events(out_lines(ctl(["tail"], name)[1]), want, "tail on the shm arena")
        t.eq(ctl_json(["calls"], name), d.calls(), "calls --json on the shm arena equals the API")
        t.eq(d.stop(), 0, "the shm daemon stops with status 0")
        rc, out, err = ctl(["check"], name)
        t.ok(rc == 0 and out_lines(out)[-1:] == ["consistent"], "check on the shm arena after the stop", out + err)
    finally:
        d.kill_hard()
        for f in (name, name + ".token"):  # the arena, and the dashboard token made beside it
            try:
                os.unlink(f)
            except OSError:
                pass


# --- 11. a follower that falls behind, and check against a busy writer ----------------------------

def unattributed_event(i):
    """An event naming no call: it creates no call, so the writer never re-appends anything."""
    return json.dumps({"message": {"type": "status-update", "timestamp": BASE_TS + i, "seq": i}}).encode()


def post_many(port, bodies):
    """Posts bodies on one keep-alive connection; returns how many got 200."""
    ok = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for b in bodies:
            conn.request("POST", "/webhook", body=b, headers=H.SECRET_HEADERS)
            r = conn.getresponse()
            r.read()
            ok += r.status == 200
    finally:
        conn.close()
    return ok


def scenario_overrun(ctx):
    # a flood from one address by design: --webhook-rate would rightly refuse part of it
    d = new_daemon("ctl-small", arena_size="1M", args=["--webhook-rate", "0"])
    try:
        d.start()
        t.eq(d.webhook(unattributed_event(0)).status, 200, "(a first event)")
        f = Follower(d.arena, ["-n", "5"])
        t.ok(f.wait_count(1), "tail -f prints the first event")
        js = ctl_json(["stats"], d.arena)
        slots = js["rings"]["facts"]["slots_total"]
        n = slots + slots // 4
        time.sleep(0.2)
        os.kill(f.pid, signal.SIGSTOP)
        results, checks = [], []
        poster = threading.Thread(target=lambda: results.append(
            post_many(d.wport, [unattributed_event(i) for i in range(1, n + 1)])), daemon=True)
        poster.start()
        # check while the writer appends and overwrites as fast as it can: no false alarm.
        while poster.is_alive() and len(checks) < 20:
            checks.append(ctl(["check"], d.arena))
        poster.join(60)
        t.eq(results, [n], "%d more events accepted (the facts ring has %d slots)" % (n, slots))
        bad = [(rc, out) for rc, out, _e in checks if rc != 0]
        t.ok(checks and not bad, "check run %d times while the writer overwrote records: always consistent"
             % len(checks), lambda: bad[:2])
        t.comment("during the writes: %s" % "; ".join(sorted({out_lines(o)[-2] for _r, o, _e in checks if o})))
        os.kill(f.pid, signal.SIGCONT)
        js = ctl_json(["stats"], d.arena)
        stored = js["rings"]["facts"]["head"] - js["rings"]["facts"]["tail"]
        t.ok(js["rings"]["facts"]["evicted"] > 0, "the facts ring overwrote records (%d)" % js["rings"]["facts"]["evicted"])
        i = f.wait_for(lambda l: OVERRUN_LINE.match(l), start=1)
        t.ok(i == 1, "after SIGCONT, tail -f reports the overrun first", lambda: f.lines()[:4])
        if i is not None:
            lost = int(OVERRUN_LINE.match(f.lines()[i]).group(1))
            f.wait_count(i + 1 + stored, timeout=5)
            after = f.lines()[i + 1:]
            t.eq(len(after), stored, "then it prints the %d events still stored" % stored)
            t.eq(lost + len(after), n, "overwritten (%d) + printed (%d) = every event posted while it was stopped (%d)"
                 % (lost, len(after), n))
            want = daemon_event_lines(d)[-stored:]
            compare_events(after, want, "tail -f after the overrun")
        rc, _took = f.stop(signal.SIGINT)
        t.eq(rc, 0, "the follower exits 0")
        rc, out, err = ctl(["check"], d.arena)
        t.ok(rc == 0 and out_lines(out)[-1:] == ["consistent"], "check after the wrap-around: consistent", out + err)
    finally:
        kill_followers()
        if d.alive():
            t.eq(d.stop(), 0, "the small daemon stops with status 0")


# --- 12. the arena re-created under a follower ----------------------------------------------------

def scenario_recreated(ctx):
    fx = ctx["fixtures"]
    d = new_daemon("ctl-recreate", arena_size="4M")
    f = None
    try:
        d.start()
        d.webhook(fx[0].body)
        f = Follower(d.arena, ["-n", "5"])
        t.ok(f.wait_count(1), "tail -f prints the first daemon's event")
        gen1 = ctl_json(["stats"], d.arena)["generation"]
        t.eq(d.stop(), 0, "the first daemon stops")
        os.unlink(d.arena)
        d2 = H.Daemon(DAEMON, d.dir, arena=d.arena, arena_size="4M")
        d2.start()
        gen2 = ctl_json(["stats"], d2.arena)["generation"]
        t.ok(gen2 != gen1, "(the new arena has a new generation)")
        i = f.wait_for(lambda l: RESET_LINE.match(l), start=1, timeout=5)
        t.ok(i is not None and RESET_LINE.match(f.lines()[i]).group(1) == gen2,
             "tail -f notices the new arena at the same path and prints the reset line with its generation",
             lambda: f.lines())
        n = len(f.lines())
        d2.webhook(fx[1].body)
        want = wait_daemon_lines(d2, 2)[-1:]
        f.wait_count(n + 1)
        compare_events(f.lines()[n:], want, "tail -f on the re-created arena")
        # Once more: the follower maps each new arena in turn.
        t.eq(d2.stop(), 0, "the second daemon stops")
        os.unlink(d.arena)
        d3 = H.Daemon(DAEMON, d.dir, arena=d.arena, arena_size="4M")
        d3.start()
        gen3 = ctl_json(["stats"], d3.arena)["generation"]
        j = f.wait_for(lambda l: RESET_LINE.match(l) and gen3 in l, start=n + 1, timeout=5)
        t.ok(j is not None, "a third arena at the same path: tail -f follows it too", lambda: f.lines())
        n = len(f.lines())
        d3.webhook(fx[2].body)
        want = wait_daemon_lines(d3, 1)[-1:]
        f.wait_count(n + 1)
        compare_events(f.lines()[n:], want, "tail -f on the third arena")
        rc, _took = f.stop(signal.SIGINT)
        t.eq(rc, 0, "the follower exits 0")
        t.eq(f.err, b"", "it wrote nothing on stderr")
        t.eq(d3.stop(), 0, "the third daemon stops")
    finally:
        if f:
            f.kill()
        H.kill_all_live()


# --- 13. snapshots of a live call are not events -------------------------------------------------

def scenario_snapshots(ctx):
    d = new_daemon("ctl-snapshots", arena_size="1M", args=["--webhook-rate", "0"])  # a flood, as above
    f = None
    try:
        d.start()
        f = Follower(d.arena, ["-n", "0"])
        time.sleep(0.2)
        live = {"message": {"type": "conversation-update", "timestamp": BASE_TS, "call": {"id": "live-call"},
                            "messages": [{"messageId": "m1", "role": "assistant", "text": "Hello, how can I help?",
                                          "timestamp": BASE_TS - 20},
                                         {"messageId": "m2", "role": "user", "text": "Still talking.",
                                          "timestamp": BASE_TS - 10}]}}
        t.eq(d.webhook(json.dumps(live).encode()).status, 200, "(a live call with 2 messages)")
        slots = ctl_json(["stats"], d.arena)["rings"]["facts"]["slots_total"]
        n = slots * 5 // 2
        t.eq(post_many(d.wport, [unattributed_event(i) for i in range(n)]), n,
             "%d unattributed events push the live call's records towards the tail %d times" % (n, n // slots))
        js = ctl_json(["stats"], d.arena)
        snaps = js["counters"]["snapshots"]
        t.ok(snaps >= 2, "the writer re-appended the live call (snapshots = %d)" % snaps, js["counters"])
        want = wait_daemon_lines(d, n + 1)
        f.wait_count(n + 1, timeout=5)
        time.sleep(0.2)
        got = f.lines()
        t.ok(not any(MARKER.match(l) for l in got), "tail -f reported no overrun (it kept up)",
             lambda: [l for l in got if MARKER.match(l)][:3])
        compare_events(got, want, "tail -f across snapshots (which are not events)")
        calls = ctl_json(["calls"], d.arena)
        t.eq(calls, d.calls(), "calls --json equals GET /api/calls after the snapshots")
        lc = [c for c in calls["calls"] if c["id"] == "live-call"]
        t.ok(len(lc) == 1 and lc[0]["messages"] == 2, "the live call is still listed whole (2 messages)", calls)
        rc, out, _err = ctl(["tail", "--lines", "100000"], d.arena)
        lines = out_lines(out)
        stored = js["rings"]["facts"]["head"] - js["rings"]["facts"]["tail"]
        compare_events(lines, want[-len(lines):] if lines else [], "tail of an arena holding snapshots")
        t.ok(stored - snaps <= len(lines) < stored, "tail prints the stored events and skips the snapshots "
             "(%d lines for %d records)" % (len(lines), stored))
        rc, out, err = ctl(["tail", "-n", "3"], d.arena)
        compare_events(out_lines(out), want[-3:], "tail -n 3")
        rc, out, err = ctl(["check"], d.arena)
        t.ok(rc == 0 and out_lines(out)[-1:] == ["consistent"], "check with snapshots in the ring: consistent",
             out + err)
        rc, _took = f.stop(signal.SIGINT)
        t.eq(rc, 0, "the follower exits 0")
        t.eq(d.stop(), 0, "the daemon stops with status 0")
    finally:
        if f:
            f.kill()
        H.kill_all_live()


# --- main -----------------------------------------------------------------------------------------

def main():
    global t, TMP
    start = time.monotonic()
    t = H.TAP()
    for what, path in (("daemon", DAEMON), ("inspector", CTL)):
        if not os.access(path, os.X_OK):
            print("Bail out! no %s at %s (build first, or set top_builddir)" % (what, path))
            return 1
    if not os.path.isdir(FIXDIR):
        print("Bail out! no fixtures at %s (set top_srcdir)" % FIXDIR)
        return 1
    TMP = tempfile.mkdtemp(prefix="liveevents-ctl-")
    t.comment("inspector %s" % CTL)
    t.comment("temporary files in %s" % TMP)

    def on_alarm(_sig, _frm):
        kill_followers()
        H.kill_all_live()
        print("Bail out! the inspector tests took more than 300 s", flush=True)
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(TMP, ignore_errors=True)
        os._exit(1)

    def on_term(sig, _frm):
        raise SystemExit(128 + sig)  # unwinds through the finally below: nothing is left running

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    signal.alarm(300)
    ctx = {}
    try:
        with open(H.EXPECTED, encoding="utf-8") as f:
            ctx["expected"] = json.load(f)
        ctx["fixtures"] = load_fixtures()
        scenario("1 command line", scenario_cli, ctx)
        scenario("2 fresh arena", scenario_fresh, ctx)
        if ctx.get("d") and ctx["d"].alive():
            scenario("3 tail -f during the replay", scenario_follow_replay, ctx)
        if ctx.get("follower"):
            scenario("4 after the replay", scenario_after_replay, ctx)
            scenario("5 reset and kill -9", scenario_reset_kill, ctx)
            scenario("6 idle and signals", scenario_idle_and_signals, ctx)
            scenario("7 daemon stopped", scenario_stopped, ctx)
            scenario("8 damaged arenas", scenario_damaged, ctx)
            scenario("9 read-only arena", scenario_read_only, ctx)
        kill_followers()
        if ctx.get("d"):
            ctx["d"].kill_hard()
        scenario("10 shared-memory arena", scenario_shm, ctx)
        scenario("11 overrun", scenario_overrun, ctx)
        scenario("12 arena re-created", scenario_recreated, ctx)
        scenario("13 snapshots", scenario_snapshots, ctx)
    finally:
        kill_followers()
        H.kill_all_live()
        signal.alarm(0)
        if os.environ.get("KEEP_TMP"):
            t.comment("kept %s" % TMP)
        else:
            shutil.rmtree(TMP, ignore_errors=True)
    t.comment("")
    t.comment("%d checks, %d failed, %.1f s" % (t.n, len(t.failures), time.monotonic() - start))
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
