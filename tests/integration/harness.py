"""Helpers for the liveeventsd integration tests: TAP output, strict JSON, HTTP clients and a handle
on a real daemon (free loopback ports, private arena, stderr captured to a file).

Python 3 standard library only. Nothing here writes outside the temporary directory it is given."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

# Where things are, resolved once for every suite: `make check` sets top_srcdir and top_builddir
# (they differ under distcheck, whose source tree is read-only); the binaries may be overridden.
_HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get("top_srcdir") or os.path.join(_HERE, "..", ".."))
BUILDDIR = os.path.abspath(os.environ.get("top_builddir") or SRCDIR)
DAEMON = os.path.abspath(os.environ.get("LIVEEVENTSD") or os.path.join(BUILDDIR, "daemon", "liveeventsd"))
CTL = os.path.abspath(os.environ.get("LIVEEVENTSCTL") or os.path.join(BUILDDIR, "daemon", "liveeventsctl"))
FIXDIR = os.path.join(SRCDIR, "tests", "fixtures")
EXPECTED = os.path.join(SRCDIR, "tests", "expected", "expected.json")

SECRET_HEADERS = {"Content-Type": "application/json", "x-interactly-secret": "test-secret"}


# --- TAP ------------------------------------------------------------------------------------------

def _short(v, limit=600):
    s = v if isinstance(v, str) else repr(v)
    if len(s) > limit:
        s = s[:limit] + "... (%d chars)" % len(s)
    return s


class TAP:
    """TAP version 13 producer: one line per check, diagnostics as '#' lines, plan at the end."""

    def __init__(self, out=sys.stdout):
        self.out = out
        self.n = 0
        self.failures = []
        self.prefix = ""
        self._emit("TAP version 13")

    def _emit(self, line):
        self.out.write(line + "\n")
        self.out.flush()

    def comment(self, text):
        for line in str(text).splitlines() or [""]:
            self._emit("# " + line)

    def ok(self, cond, desc, diag=None):
        self.n += 1
        desc = (self.prefix + desc).replace("\n", " ").replace("#", "no.")
        if cond:
            self._emit("ok %d - %s" % (self.n, desc))
        else:
            self._emit("not ok %d - %s" % (self.n, desc))
            text = diag if diag is not None else "(no diagnostic)"
            if callable(text):
                try:
                    text = text()
                except Exception as e:  # a diagnostic must never break the run
                    text = "diagnostic failed: %r" % e
            self.comment(text)
            self.failures.append((self.n, desc, str(text)))
        return bool(cond)

    def eq(self, got, exp, desc, diag=None):
        def d():
            s = "expected: %s\n     got: %s" % (_short(exp), _short(got))
            if diag:
                s += "\n" + (diag() if callable(diag) else str(diag))
            return s
        return self.ok(got == exp, desc, d)

    def crashed(self, what):
        self.ok(False, "%s ran to completion (no exception)" % what, traceback.format_exc())

    def scenario(self, label, fn, *args):
        """Runs fn(*args) as one group of checks; an exception is a failed check, never the end of the run."""
        self.comment("")
        self.comment("=== %s ===" % label)
        self.prefix = label + ": "
        t0 = time.monotonic()
        try:
            return fn(*args)
        except Exception:
            self.crashed(label)
            return None
        finally:
            self.prefix = ""
            self.comment("%s took %.2f s" % (label, time.monotonic() - t0))

    def finish(self):
        self._emit("1..%d" % self.n)
        return 1 if self.failures else 0


# --- strict JSON ----------------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


class StrictJSONError(ValueError):
    pass


def _no_constants(name):
    raise StrictJSONError("non-standard constant %s" % name)


def _pairs(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise StrictJSONError("duplicate key %r" % k)
        d[k] = v
    return d


def _check_strings(v, path="$"):
    if isinstance(v, str):
        if _SURROGATE.search(v):
            raise StrictJSONError("lone surrogate in string at %s" % path)
    elif isinstance(v, dict):
        for k, x in v.items():
            if _SURROGATE.search(k):
                raise StrictJSONError("lone surrogate in key at %s" % path)
            _check_strings(x, path + "." + k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _check_strings(x, "%s[%d]" % (path, i))


def strict_json(data):
    """Parses bytes as strict JSON: valid UTF-8 (no BOM), no NaN/Infinity, no raw control characters,
    no duplicate keys, no lone surrogate escapes. Raises ValueError (or UnicodeDecodeError)."""
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            raise StrictJSONError("answer starts with a byte-order mark")
        text = data.decode("utf-8", "strict")
    else:
        text = data
    v = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_pairs)
    _check_strings(v)
    return v


def try_json(data):
    """(value, None) or (None, error text)."""
    try:
        return strict_json(data), None
    except Exception as e:
        return None, "%s: %s" % (type(e).__name__, e)


# --- HTTP -----------------------------------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers  # lower-case name -> value (last one wins)
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return strict_json(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<%s %s>" % (self.status, _short(self.body.decode("utf-8", "replace"), 300))


# The dashboard token of each dashboard port a Daemon started here: every request to that port
# carries it as a bearer, as a script would, unless the caller sends its own Authorization or Cookie
# or passes auth=False (the tests of the token itself).
TOKENS = {}


def auth_headers(port):
    """{"Authorization": "Bearer TOKEN"} for a harness daemon's dashboard port, else {}."""
    tok = TOKENS.get(port)
    return {"Authorization": "Bearer " + tok} if tok else {}


def request(port, method, path, body=None, headers=None, timeout=10.0, host="127.0.0.1", auth=True):
    """One request on a fresh connection. Raises OSError/http.client errors on transport problems."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if auth and not any(k.lower() in ("authorization", "cookie") for k in hdrs):
            hdrs.update(auth_headers(port))
        conn.putrequest(method, path, skip_accept_encoding=True,
                        skip_host=any(k.lower() == "host" for k in hdrs))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if body is not None and not any(k.lower() == "content-length" for k in hdrs):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body:
            conn.send(body)
        r = conn.getresponse()
        data = r.read()
        hs = {k.lower(): v for k, v in r.getheaders()}
        return Resp(r.status, hs, data, time.monotonic() - t0)
    finally:
        conn.close()


def get(port, path, **kw):
    return request(port, "GET", path, **kw)


def post_webhook(port, body, headers=None, path="/webhook", **kw):
    h = dict(SECRET_HEADERS)
    if headers:
        h.update(headers)
    return request(port, "POST", path, body=body, headers=h, **kw)


def _read_response(sock, deadline):
    """Reads one HTTP/1.1 response from a socket (Content-Length framed, or until close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise ConnectionError("no complete response head (got %r)" % data[:200])
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise ConnectionError("bad status line %r" % lines[0])
    hs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hs[k.strip().lower()] = v.strip()
    n = int(hs.get("content-length", "-1"))
    while n < 0 or len(body) < n:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        body += chunk
    if n >= 0:
        body = body[:n]
    return int(m.group(1)), hs, body


def raw_request(port, head, chunks=(), gap=0.0, timeout=10.0):
    """Sends a hand-made request (head: bytes up to and including the blank line, then each chunk
    of the body with `gap` seconds between) and reads the answer. A server that answers early and
    closes does not make this fail: sending errors are ignored, the answer is still read."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        send_error = None
        try:
            s.sendall(head)
            for i, c in enumerate(chunks):
                if gap and i:
                    time.sleep(gap)
                s.sendall(c)
        except OSError as e:
            send_error = e
        try:
            status, hs, body = _read_response(s, deadline)
        except OSError as e:
            raise ConnectionError("no answer (send error %r, read error %r)" % (send_error, e))
        return Resp(status, hs, body, time.monotonic() - t0)
    finally:
        s.close()


def early_answer(port, head, first, wait=2.0):
    """Sends head and the first part of a body, then nothing: returns the answer if one comes within
    `wait` seconds (a server that answers only once the whole body is in gives None)."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        try:
            s.sendall(head)
            s.sendall(first)
        except OSError:
            pass
        try:
            status, hs, body = _read_response(s, t0 + wait)
        except OSError:
            return None
        return Resp(status, hs, body, time.monotonic() - t0)
    finally:
        s.close()


def webhook_head(port, length, extra=b""):
    return (b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"x-interactly-secret: test-secret\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n"
            % (port, length, extra))


def quote_id(call_id):
    return urllib.parse.quote(call_id, safe="")


# --- processes ------------------------------------------------------------------------------------

def children_of(pid):
    """Direct children of pid: /proc/<pid>/task/*/children, else a scan of /proc."""
    kids = set()
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids.update(int(x) for x in f.read().split())
        return sorted(kids)
    except OSError:
        pass
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            kids.add(int(name))
    return sorted(kids)


def proc_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def proc_state(pid):
    """(state letter, ppid) or None when the process does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None
    fields = st[st.rfind(")") + 2:].split()
    return fields[0], int(fields[1])


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def clean_env(extra=None):
    env = dict(os.environ)
    for k in ("PORT", "NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
              "LISTEN_PID", "LISTEN_FDNAMES"):
        env.pop(k, None)
    env["LC_ALL"] = "C.UTF-8"
    env["TZ"] = "UTC"
    if extra:
        env.update(extra)
    return env


LIVE = set()  # daemons not yet stopped: killed on abnormal exit


def kill_all_live():
    for d in list(LIVE):
        d.kill_hard()


class DaemonError(Exception):
    pass


class Daemon:
    """A real liveeventsd on free loopback ports with a private arena under workdir."""

    def __init__(self, binary, workdir, args=(), arena=None, env=None, webhook_listen=True,
                 arena_size="16M"):
        self.binary = binary
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.arena = arena or os.path.join(workdir, "arena")
        self.args = list(args)
        self.env = env
        self.webhook_listen = webhook_listen
        self.arena_size = arena_size
        self.stderr_path = os.path.join(workdir, "stderr.log")
        self.stdout_path = os.path.join(workdir, "stdout.log")
        self.proc = None
        self.wport = self.dport = None
        self.workers_seen = set()
        self.token = None

    # -- lifecycle

    def argv(self):
        a = [self.binary, "--dashboard-listen", "127.0.0.1:%d" % self.dport, "--arena", self.arena]
        if self.webhook_listen:
            a += ["--webhook-listen", "127.0.0.1:%d" % self.wport]
        if self.arena_size:
            a += ["--arena-size", self.arena_size]
        return a + self.args

    def spawn(self):
        """Starts the process without waiting (ports must be set)."""
        with open(self.stderr_path, "ab") as err, open(self.stdout_path, "ab") as out:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=clean_env(self.env), close_fds=True)
        LIVE.add(self)
        return self.proc

    def start(self, timeout=15.0):
        """Starts on free ports and waits for /healthz on both; retries if a port was taken meanwhile."""
        last = None
        for _attempt in range(4):
            if self.webhook_listen:
                self.wport, self.dport = free_ports(2)
            else:
                self.dport = free_ports(1)[0]
                self.wport = int((self.env or {}).get("PORT", 0))
            size_before = os.path.getsize(self.stderr_path) if os.path.exists(self.stderr_path) else 0
            self.spawn()
            try:
                self.wait_ready(timeout)
                return self
            except DaemonError as e:
                last = e
                if self.proc.poll() is None:
                    raise
                with open(self.stderr_path, "rb") as f:
                    f.seek(size_before)
                    tail = f.read()
                LIVE.discard(self)
                if b"address already in use" not in tail:
                    raise
        raise last

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        pending = {self.wport, self.dport}
        while pending:
            rc = self.proc.poll()
            if rc is not None:
                raise DaemonError("liveeventsd exited with status %s during start-up:\n%s" % (rc, self.stderr_tail()))
            for p in list(pending):
                try:
                    if get(p, "/healthz", timeout=1.0).status == 200:
                        pending.discard(p)
                except (OSError, http.client.HTTPException):
                    pass
            if pending:
                if time.monotonic() > deadline:
                    raise DaemonError("no /healthz on ports %s within %.0f s:\n%s" % (sorted(pending), timeout,
                                                                                     self.stderr_tail()))
                time.sleep(0.02)
        self.note_workers()
        self.token = self.read_token()
        if self.token:
            TOKENS[self.dport] = self.token
        else:
            TOKENS.pop(self.dport, None)
        return self

    def token_path(self):
        a = self.argv()
        if "--dashboard-token-file" in a:
            return a[a.index("--dashboard-token-file") + 1]
        return self.arena + ".token"

    def read_token(self):
        """The dashboard token the daemon uses, or None when it runs without one."""
        a = self.argv()
        if "--no-auth" in a or "--insecure-no-auth" in a:
            return None
        try:
            with open(self.token_path()) as f:
                return f.read().strip() or None
        except OSError:
            return None

    def finish(self, t, label):
        """SIGTERM, and a check that the daemon exits with status 0 (nothing when it never started)."""
        if self.proc is None:
            return
        if self.alive():
            self.note_workers()
        rc = self.stop()
        t.eq(rc, 0, "%s: daemon exits with status 0 on SIGTERM" % label, self.stderr_tail)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def workers(self):
        """{'ingest': pid, 'query': pid} among the master's current children."""
        out = {}
        if not self.alive():
            return out
        for c in children_of(self.proc.pid):
            comm = proc_comm(c)
            if comm in ("ingest", "query"):
                out[comm] = c
        return out

    def note_workers(self):
        w = self.workers()
        self.workers_seen.update(w.values())
        return w

    def stop(self, timeout=15.0):
        """SIGTERM, wait; returns the exit status (or None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.note_workers()
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill_hard()
                LIVE.discard(self)
                return None
        LIVE.discard(self)
        return self.proc.returncode

    def kill_hard(self):
        if self.proc is None:
            return
        pids = set(self.workers_seen)
        if self.proc.poll() is None:
            pids.update(children_of(self.proc.pid))
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        for p in pids:
            st = proc_state(p)
            if st and proc_comm(p) in ("ingest", "query"):
                try:
                    os.kill(p, signal.SIGCONT)
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        LIVE.discard(self)

    def leftover_workers(self):
        """Worker pids seen during the run that still exist as ingest/query processes."""
        left = []
        for p in sorted(self.workers_seen):
            st = proc_state(p)
            if st and st[0] != "Z" and proc_comm(p) in ("ingest", "query"):
                left.append(p)
        return left

    # -- output

    def stderr_bytes(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def stderr_text(self):
        return self.stderr_bytes().decode("utf-8", "replace")

    def stderr_tail(self, n=15):
        lines = self.stderr_text().split("\n")
        return "stderr tail:\n" + "\n".join("  " + l for l in lines[-n - 1:])

    def arena_bytes(self):
        with open(self.arena, "rb") as f:
            return f.read()

    # -- HTTP shortcuts

    def webhook(self, body, **kw):
        return post_webhook(self.wport, body, **kw)

    def api(self, path, method="GET", **kw):
        return request(self.dport, method, path, **kw)

    def conversations_raw(self):
        r = self.api("/api/conversations")
        if r.status != 200:
            raise DaemonError("GET /api/conversations answered %s" % r)
        return r.body

    def calls(self):
        r = self.api("/api/calls")
        if r.status != 200:
            raise DaemonError("GET /api/calls answered %s" % r)
        return r.json()

    def call_ids(self):
        return sorted(c["id"] for c in self.calls()["calls"])

    def conversation(self, call_id):
        return self.api("/api/conversations/" + quote_id(call_id))

    def call_detail(self, call_id):
        return self.api("/api/calls/" + quote_id(call_id))

    def wait_for(self, pred, timeout=3.0, step=0.02):
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v or time.monotonic() > deadline:
                return v
            time.sleep(step)


def suite_daemon(parent, name, **kw):
    """A Daemon of the binary under test in a fresh directory named after name, inside parent."""
    return Daemon(DAEMON, tempfile.mkdtemp(prefix=name + "-", dir=parent), **kw)


def run_scenarios(t, what, prefix, scenarios, on_tmp=None, limit_s=240):
    """run_suite over a list of (label, function) scenarios, each called with {}; on_tmp(tmp) first
    tells the suite its temporary directory."""
    def body(tmp):
        if on_tmp:
            on_tmp(tmp)
        for label, fn in scenarios:
            t.scenario(label, fn, {})
    return run_suite(t, what, prefix, body, limit_s)


def run_suite(t, what, prefix, body, limit_s=240):
    """Runs body(tmp) as one suite's main: a private temp directory (kept with KEEP_TMP), a time limit
    after which every daemon is killed and the plan bails out, and TERM turned into a clean exit.
    Returns the TAP exit status."""
    start = time.monotonic()
    if not os.access(DAEMON, os.X_OK):
        print("Bail out! liveeventsd not found at %s" % DAEMON)
        return 1
    tmp = tempfile.mkdtemp(prefix=prefix)

    def on_alarm(_sig, _frm):
        kill_all_live()
        print("Bail out! the %s took more than %d s" % (what, limit_s), flush=True)
        os._exit(1)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(SystemExit(128 + s)))
    signal.alarm(limit_s)
    try:
        body(tmp)
    finally:
        kill_all_live()
        signal.alarm(0)
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)
    t.comment("%d checks, %d failed, %.1f s" % (t.n, len(t.failures), time.monotonic() - start))
    return t.finish()
