// Helpers for the browser test: a tiny TAP reporter, free ports, and the real daemon's lifecycle.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { access, constants, readFile } from 'node:fs/promises';
import { readFileSync, readdirSync } from 'node:fs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* ---- TAP ------------------------------------------------------------------------------------ */

export class Tap {
  constructor() {
    this.n = 0;
    this.failed = 0;
    console.log('TAP version 13');
  }

  comment(text) {
    for (const line of String(text).split('\n')) console.log('# ' + line);
  }

  pass(name) {
    this.n += 1;
    console.log(`ok ${this.n} - ${name}`);
  }

  fail(name, err) {
    this.n += 1;
    this.failed += 1;
    console.log(`not ok ${this.n} - ${name}`);
    const msg = err && err.stack ? err.stack : String(err);
    console.log('  ---');
    console.log('  message: |');
    for (const line of msg.split('\n').slice(0, 30)) console.log('    ' + line);
    console.log('  ...');
  }

  /* Run one check; a thrown error (or a rejected promise) makes it "not ok". */
  async check(name, fn, timeoutMs = 20000) {
    let timer;
    try {
      await Promise.race([
        fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`check timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      this.pass(name);
      return true;
    } catch (e) {
      this.fail(name, e);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  end() {
    console.log(`1..${this.n}`);
    return this.failed === 0 ? 0 : 1;
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

export function assertEqual(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}\n  expected: ${e}\n  actual:   ${a}`);
}

/* Poll probe() until pred(value) holds; on timeout, fail showing the last value seen. */
export async function until(what, probe, pred, timeoutMs = 6000, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (pred(last)) return last;
    if (Date.now() > end) {
      const shown = JSON.stringify(last);
      throw new Error(`${what}: not reached within ${timeoutMs} ms; last seen: ` +
        (shown && shown.length > 1500 ? shown.slice(0, 1500) + '…' : shown));
    }
    await sleep(everyMs);
  }
}

/* ---- ports and HTTP ------------------------------------------------------------------------- */

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/* The access token of each dashboard a Daemon here started, by origin: httpJson() sends it as a
 * bearer, as a script or curl would, so the tests' own API requests need no cookie. */
const dashboardTokens = new Map();

export async function httpJson(url, options = {}) {
  const token = dashboardTokens.get(new URL(url).origin);
  if (token) options = { ...options, headers: { Authorization: `Bearer ${token}`, ...options.headers } };
  const res = await fetch(url, Object.assign({ signal: AbortSignal.timeout(5000) }, options));
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch (_) {
    body = null;
  }
  return { status: res.status, text, body };
}

/* ---- the daemon ----------------------------------------------------------------------------- */

export class Daemon {
  constructor(bin, { webhookPort, dashboardPort, arena, args = [] }) {
    this.bin = bin;
    this.extraArgs = args;
    this.webhookPort = webhookPort;
    this.dashboardPort = dashboardPort;
    this.arena = arena;
    this.proc = null;
    this.output = '';
    this.exit = null;
    this.token = null;
  }

  get hookUrl() { return `http://127.0.0.1:${this.webhookPort}`; }
  get dashUrl() { return `http://127.0.0.1:${this.dashboardPort}`; }

  /* Where the daemon keeps the dashboard's access token: beside the arena unless told otherwise. */
  get tokenFile() {
    const i = this.extraArgs.indexOf('--dashboard-token-file');
    return i >= 0 ? this.extraArgs[i + 1] : `${this.arena}.token`;
  }

  /* The dashboard's address as the daemon's log gives it, with the token: the daemon answers it
   * with the cookie and a redirect to / (a hash such as "#call=ID" survives the redirect). */
  pageUrl(hash = '') {
    return this.token === null ? `${this.dashUrl}/${hash}`
      : `${this.dashUrl}/?token=${encodeURIComponent(this.token)}${hash}`;
  }

  async start(timeoutMs = 10000) {
    const args = [
      '--webhook-listen', `127.0.0.1:${this.webhookPort}`,
      '--dashboard-listen', `127.0.0.1:${this.dashboardPort}`,
      '--arena', this.arena,
      ...this.extraArgs,
    ];
    this.exit = null;
    this.proc = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk) => {
      this.output += chunk.toString();
      if (this.output.length > 20000) this.output = this.output.slice(-20000);
    };
    this.proc.stdout.on('data', keep);
    this.proc.stderr.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      this.proc.on('error', (e) => {
        this.exit = { code: null, signal: null, error: String(e) };
        resolve(this.exit);
      });
    });
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (this.exit) {
        throw new Error(`daemon exited early (${JSON.stringify(this.exit)}); output:\n${this.tail()}`);
      }
      const ok = await Promise.all([this.hookUrl, this.dashUrl].map(async (base) => {
        try {
          const r = await fetch(base + '/healthz', { signal: AbortSignal.timeout(1000) });
          await r.arrayBuffer();
          return r.ok;
        } catch (_) {
          return false;
        }
      }));
      if (ok.every(Boolean)) {
        // Read at every start: a restart may keep the token or make a new one.
        if (!this.extraArgs.includes('--no-auth')) {
          this.token = (await readFile(this.tokenFile, 'utf8')).trim();
          dashboardTokens.set(this.dashUrl, this.token);
        }
        return;
      }
      if (Date.now() > end) {
        throw new Error(`daemon did not answer /healthz on both ports within ${timeoutMs} ms; output:\n${this.tail()}`);
      }
      await sleep(50);
    }
  }

  tail(lines = 25) {
    return this.output.split('\n').slice(-lines).join('\n');
  }

  /* SIGTERM, wait; SIGKILL if it does not go within the grace period. */
  async stop(graceMs = 5000) {
    if (!this.proc || this.exit) return this.exit;
    this.proc.kill('SIGTERM');
    const timer = sleep(graceMs).then(() => 'timeout');
    const r = await Promise.race([this.exited, timer]);
    if (r === 'timeout') {
      this.proc.kill('SIGKILL');
      await this.exited;
      return { ...this.exit, forced: true };
    }
    return this.exit;
  }

  async post(body, extraHeaders = {}) {
    const res = await fetch(this.hookUrl + '/webhook', {
      method: 'POST',
      headers: Object.assign({
        'Content-Type': 'application/json',
        'x-interactly-secret': 'test-secret',
      }, extraHeaders),
      body,
      signal: AbortSignal.timeout(5000),
    });
    await res.arrayBuffer();
    return res.status;
  }

  async postFile(path) {
    return this.post(await readFile(path));
  }
}

/* The pid of the daemon's query worker (the master names its children by role). */
export function queryPid(masterPid) {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === masterPid && readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'query') return Number(d);
    } catch (_) { /* gone meanwhile */ }
  }
  return null;
}

/* playwright-core's chromium, or, when it or the browser is missing, a TAP plan that skips the whole
 * file ("1..0 # SKIP") and the end of the process: scripts/test counts a skip as a broken install. */
export async function browserOrSkip(chromiumPath) {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
    await access(chromiumPath, constants.X_OK);
    return chromium;
  } catch (e) {
    console.log('TAP version 13');
    console.log(`1..0 # SKIP ${chromium ? chromiumPath + ' not found (apt-get install chromium)'
      : 'playwright-core missing (cd tests/browser && npm ci)'}`);
    process.exit(0);
  }
}

/* A signal ends the run with a failed check, and takes the daemon (running()) down with it. */
export function stopOnSignals(tap, running) {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, async () => {
      tap.fail(`interrupted by ${sig}`, new Error('the test run was interrupted'));
      const d = running();
      if (d) await d.stop(2000).catch(() => {});
      process.exit(tap.end() || 1);
    });
  }
}
