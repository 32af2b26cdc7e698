// browser_latency: webhook-to-browser latency in a real headless Chromium, for scripts/bench.
//
// It opens a page on the daemon's dashboard port and, inside it, an EventSource on api/stream that
// notes when each `call` event for a bench call arrives (performance.timeOrigin + performance.now(),
// wall-clock milliseconds). Then it runs tests/bench's sse_clients, which opens LIGHT more streams,
// POSTs EVENTS webhooks (each a new call) and times its own streams; afterwards the page's arrival
// times are set against sse_clients' send times (CLOCK_REALTIME, the same clock).
//   --page dashboard   the real dashboard (/), which opens its own stream and renders every change;
//                      the measuring EventSource is one more stream in the same page
//   --page bare        a same-origin page without the dashboard (/healthz): the measuring
//                      EventSource is the page's only stream
// Prints sse_clients' RESULT lines and "RESULT kind=browser ..."; it measures and never fails on a
// number (exit 1 only if it could not run).
//   node browser_latency.mjs --dashboard-port P --webhook-port W --sse-clients BIN --body TEMPLATE
//        [--light N] [--events E] [--interval-ms I] [--page dashboard|bare] [--prefix STR] [--work DIR]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const GRACE_MS = 3000;       // after sse_clients ends, wait this long for the page's last events
const OPEN_TIMEOUT_MS = 10000; // the page's stream must say hello by then
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '..', 'browser', 'package.json'));
const { chromium } = require('playwright-core');

function parseArgs(argv) {
  const a = { light: 0, events: 200, 'interval-ms': 20, page: 'dashboard', prefix: 'browser', work: '' };
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    a[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['dashboard-port', 'webhook-port', 'sse-clients', 'body'])
    if (!a[k]) throw new Error(`--${k} is required`);
  return a;
}

function percentile(sorted, p) {
  if (!sorted.length) return -1;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}`))));
  });
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const work = a.work || mkdtempSync(join(tmpdir(), 'bench-browser-'));
  const profile = mkdtempSync(join(work, 'profile-'));
  const sends = join(work, `sends-${a.prefix}.txt`);
  const origin = `http://127.0.0.1:${a['dashboard-port']}`;
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS,
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    await page.goto(a.page === 'bare' ? `${origin}/healthz` : `${origin}/`);
    await page.evaluate(({ prefix, timeout }) => new Promise((resolve, reject) => {
      window.__benchArrivals = {};
      const es = new EventSource('/api/stream');
      const timer = setTimeout(() => reject(new Error('the stream did not say hello')), timeout);
      es.addEventListener('hello', () => { clearTimeout(timer); resolve(); });
      es.addEventListener('call', (e) => {
        const at = performance.timeOrigin + performance.now();
        const id = JSON.parse(e.data).summary?.id;
        if (id && id.startsWith(prefix) && !(id in window.__benchArrivals)) window.__benchArrivals[id] = at;
      });
    }), { prefix: `${a.prefix}-`, timeout: OPEN_TIMEOUT_MS });

    const out = await run(a['sse-clients'], ['--stream-port', a['dashboard-port'], '--clients', String(a.light),
      '--events', String(a.events), '--interval-ms', String(a['interval-ms']), '--webhook-port', a['webhook-port'],
      '--body', a.body, '--prefix', a.prefix, '--sends', sends]);
    process.stdout.write(out);

    const events = Number(a.events);
    const end = Date.now() + GRACE_MS;
    let arrivals = {};
    for (;;) {
      arrivals = await page.evaluate(() => window.__benchArrivals);
      if (Object.keys(arrivals).length >= events || Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const lat = [];
    for (const line of readFileSync(sends, 'utf8').split('\n')) {
      const [id, sentNs] = line.split(' ');
      if (id && id in arrivals) lat.push(arrivals[id] - Number(sentNs) / 1e6);
    }
    lat.sort((x, y) => x - y);
    const f = (v) => v.toFixed(3);
    console.log(`RESULT kind=browser page=${a.page} samples=${lat.length} missing=${events - lat.length} ` +
      `p50_ms=${f(percentile(lat, 50))} p90_ms=${f(percentile(lat, 90))} p99_ms=${f(percentile(lat, 99))} ` +
      `max_ms=${f(lat.length ? lat[lat.length - 1] : -1)} min_ms=${f(lat.length ? lat[0] : -1)}`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    if (!a.work) rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`browser_latency: ${e.stack || e}`);
  process.exit(1);
});
