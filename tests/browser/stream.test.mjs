#!/usr/bin/env node
// Browser test of the dashboard on the event stream: real daemon, real headless Chromium, TAP output.
// Two dashboards follow a call live; the stream drops (the query worker is killed), the daemon
// restarts, the store is reset, one page pauses and resumes, and a page whose stream is blocked
// polls instead: each page must show every message exactly once, in order, with no gap.
//
//   cd tests/browser && npm install && node stream.test.mjs
//
// Environment: LIVEEVENTSD (daemon binary; default <repo>/daemon/liveeventsd),
//              CHROMIUM (default /usr/bin/chromium).
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tap, Daemon, browserOrSkip, stopOnSignals, freePort, httpJson, until, sleep, assert, assertEqual, queryPid } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const fixtures = join(repo, 'tests', 'fixtures');
const BIN = process.env.LIVEEVENTSD || join(repo, 'daemon', 'liveeventsd');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CALL = 'WC-stream-test-0001';
const CALLER = '+15550107777';
const T0 = 1784041330000;

const chromium = await browserOrSkip(CHROMIUM);

const tap = new Tap();
let running = null;
stopOnSignals(tap, () => running);

/* A conversation-update carrying the whole history so far, as the platform sends them: message k
 * says "message k", callers and assistant in turn. Built from fixture 56's shape. */
const base = JSON.parse(await readFile(join(fixtures, '56-callF-conversation-unicode-html.json'), 'utf8'));
function update(callId, k) {
  const ev = structuredClone(base);
  ev.message.timestamp = T0 + k * 1000;
  ev.message.call.id = callId;
  ev.message.call.userNumber = CALLER;
  if (ev.message.customer) ev.message.customer.number = CALLER;
  ev.message.messages = [];
  for (let i = 1; i <= k; i += 1) {
    ev.message.messages.push({
      messageId: `${callId}-m${i}`, role: i % 2 ? 'user' : 'assistant', text: `message ${i}`, timestamp: T0 + i * 1000,
    });
  }
  return JSON.stringify(ev);
}

function bubbles(page) {
  return page.evaluate(() => [...document.querySelectorAll('#chat .bubble .text')].map((t) => t.textContent));
}

const statusBase = JSON.parse(await readFile(join(fixtures, '55-callF-status-ongoing-web.json'), 'utf8'));
function status(callId, st, ts) {
  const ev = structuredClone(statusBase);
  ev.message.timestamp = ts;
  ev.message.call.status = st;
  ev.message.call.id = callId;
  return JSON.stringify(ev);
}

const want = (k) => Array.from({ length: k }, (_, i) => `message ${i + 1}`);

/* Every page shows messages 1..k exactly once, in order. */
async function allShow(pages, k, timeoutMs = 8000) {
  for (const p of pages) {
    await until(`${p.name} shows ${k} messages`, () => bubbles(p.page), (b) => b.length >= k, timeoutMs);
    assertEqual(await bubbles(p.page), want(k), `${p.name}'s bubbles`);
  }
}

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'liveevents-stream-'));
  const daemon = new Daemon(BIN, { webhookPort: await freePort(), dashboardPort: await freePort(), arena: join(work, 'arena') });
  running = daemon;
  let browser = null;
  const pageErrors = [];
  try {
    if (!await tap.check('daemon starts', () => daemon.start())) return;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const open = async (name, block) => {
      const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
      const page = await ctx.newPage();
      page.on('pageerror', (e) => pageErrors.push(`${name}: ${e}`));
      const lists = [];
      page.on('request', (r) => { if (/\/api\/calls(\?|$)/.test(r.url())) lists.push(Date.now()); });
      if (block) await page.route('**/api/stream', (route) => route.abort('connectionrefused'));
      await page.goto(daemon.pageUrl());
      return { name, page, lists };
    };
    const a = await open('dashboard 1');
    const b = await open('dashboard 2');
    const both = [a, b];
    let k = 0;
    const post = async (n = 1) => {
      for (let i = 0; i < n; i += 1) {
        k += 1;
        assertEqual(await daemon.post(update(CALL, k)), 200, `update ${k}`);
      }
    };

    await tap.check('both dashboards open the event stream', async () => {
      for (const p of both) {
        await until(`${p.name} live`, () => p.page.evaluate(() => document.getElementById('conn').dataset.state), (s) => s === 'live');
        assertEqual(await p.page.evaluate(() => window.liveeventsFeed()), 'stream', `${p.name}'s feed`);
      }
    });

    await tap.check('a call arrives live in both, message by message, each once and in order', async () => {
      assertEqual(await daemon.post(status(CALL, 'ongoing', T0)), 200, 'status');
      const lat = [];
      for (let i = 0; i < 10; i += 1) {
        const t = Date.now();
        await post();
        await allShow(both, k);
        lat.push(Date.now() - t);
      }
      lat.sort((x, y) => x - y);
      tap.comment(`webhook to both pages (including the test's polling of the page every 100 ms): median ${lat[5]} ms, max ${lat[9]} ms`);
      for (const p of both) {
        const list = await p.page.evaluate(() => [...document.querySelectorAll('#callList .call-item')].map((li) => li.innerText));
        assert(list.length === 1 && /ongoing/i.test(list[0]) && /10 msgs/.test(list[0]), `${p.name}'s list: ${JSON.stringify(list)}`);
      }
    });

    await tap.check('while live, the pages ask the API for no list: the stream carries the changes', async () => {
      const since = Date.now();
      await post(3);
      await allShow(both, k);
      await sleep(500);
      for (const p of both) assertEqual(p.lists.filter((x) => x >= since).length, 0, `${p.name}'s list requests`);
    });

    await tap.check('the stream drops (query worker killed) while messages keep coming: each page catches up once', async () => {
      const pid = queryPid(daemon.proc.pid);
      assert(pid, 'no query worker found');
      process.kill(pid, 'SIGKILL');
      await post(4);   // ingest takes them while query restarts
      await allShow(both, k, 10000);
      assert(queryPid(daemon.proc.pid) !== pid, 'the query worker was not restarted');
    });

    await tap.check('the daemon restarts while messages keep coming: each page recovers by itself, nothing twice', async () => {
      await daemon.stop();
      await sleep(300);
      await daemon.start();
      await post(3);
      await allShow(both, k, 12000);
    });

    await tap.check('pause stops rendering while data keeps arriving; resume shows it all, once', async () => {
      await a.page.click('#pauseBtn');
      const shown = await bubbles(a.page);
      await post(5);
      await allShow([b], k);
      await sleep(300);
      assertEqual(await bubbles(a.page), shown, 'the paused page is unchanged');
      const label = await a.page.evaluate(() => document.getElementById('connText').textContent);
      assert(/waiting/i.test(label), `the paused page says updates are waiting: ${label}`);
      await a.page.click('#pauseBtn');
      await allShow([a], k);
    });

    await tap.check('a page whose stream is blocked falls back to polling and still follows live', async () => {
      const c = await open('dashboard 3', true);
      await until('polling', () => c.page.evaluate(() => window.liveeventsFeed && window.liveeventsFeed()), (m) => m === 'polling', 8000);
      await allShow([c], k);
      await post(2);
      await allShow([a, b, c], k);
      const since = Date.now();
      await sleep(2500);
      const polls = c.lists.filter((x) => x >= since).length;
      assert(polls >= 2, `only ${polls} polls in 2.5 s`);
      tap.comment(`the polling page asked for the list ${polls} times in 2.5 s; the streaming pages none`);
      await c.page.context().close();
    });

    await tap.check('a reset from another client empties both pages, and the next call appears in both', async () => {
      const r = await httpJson(daemon.dashUrl + '/api/conversations', { method: 'DELETE' });
      assertEqual(r.status, 200, 'DELETE');
      for (const p of both) {
        await until(`${p.name} cleared`, () => p.page.evaluate(() => document.querySelectorAll('#callList .call-item').length), (n) => n === 0);
      }
      k = 0;
      await post(2);
      await allShow(both, k);
    });

    await tap.check('the call ends: its status and ended state reach both lists from the stream', async () => {
      assertEqual(await daemon.post(status(CALL, 'finished', T0 + 99000)), 200, 'status');
      for (const p of both) {
        await until(`${p.name} ended`, () => p.page.evaluate(() => document.querySelector('#callList .call-item').innerText),
          (t) => /finished/i.test(t) && /ended/i.test(t));
      }
    });

    await tap.check('a call list that answers after the stream brought a new call keeps that call', async () => {
      // The list is fetched when the stream opens; here its answer (the calls before LATE) is held
      // until the stream has brought LATE, as a slow /api/calls on a busy daemon would be.
      const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
      const page = await ctx.newPage();
      page.on('pageerror', (e) => pageErrors.push(`late list: ${e}`));
      let release = null;
      const held = new Promise((r) => { release = r; });
      let lists = 0;
      await page.route(/\/api\/calls(\?|$)/, async (route) => {
        if (lists++ > 0) return route.continue();
        const resp = await route.fetch();
        await held;
        return route.fulfill({ response: resp });
      });
      const ids = () => page.evaluate(() => [...document.querySelectorAll('#callList .call-item')].map((li) => li.dataset.id));
      try {
        await page.goto(daemon.pageUrl());
        await until('the list was asked for', () => lists, (n) => n >= 1);
        await until('the page is live', () => page.evaluate(() => document.getElementById('conn').dataset.state), (st) => st === 'live');
        const LATE = 'WC-stream-late-0001';
        assertEqual(await daemon.post(status(LATE, 'ongoing', T0 + 200000)), 200, 'status of the new call');
        await until('the stream shows the new call', ids, (l) => l.includes(LATE));
        release();
        await until('the held list is shown', ids, (l) => l.includes(CALL));
        await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
        assertEqual((await ids()).sort(), [CALL, LATE].sort(), 'the calls listed once the late list is in');
      } finally {
        release();
        await ctx.close().catch(() => {});
      }
    });

    await tap.check('no page error', () => assertEqual(pageErrors, [], 'page errors'));
  } finally {
    if (browser) await browser.close().catch(() => {});
    await daemon.stop().catch(() => {});
  }
}

await main().catch((e) => tap.fail('the test itself failed', e));
process.exit(tap.end());
