#!/usr/bin/env node
// Browser test of the liveevents dashboard: real daemon, real headless Chromium, TAP output.
//
//   cd tests/browser && npm install && node dashboard.test.mjs
//
// Environment: LIVEEVENTSD (daemon binary; default <repo>/daemon/liveeventsd),
//              CHROMIUM (default /usr/bin/chromium), KEEP_SCREENSHOTS_DIR (where PNGs go; default a temp dir).
import { mkdtemp, readdir, readFile, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { Tap, Daemon, browserOrSkip, stopOnSignals, freePort, httpJson, until, sleep, assert, assertEqual } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const fixtures = join(repo, 'tests', 'fixtures');
const BIN = process.env.LIVEEVENTSD || join(repo, 'daemon', 'liveeventsd');
const CTL = process.env.LIVEEVENTSCTL || join(dirname(BIN), 'liveeventsctl');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const CALL_A = 'CA5e0b7c1d9a2f4e8b6c3d0a1f7e9b2c4d';
const CALL_F = 'WC-0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
const CALL_G = 'WC-5a5a5a5a-1b1b-4c2c-9d3d-4e4e4e4e4e4e';
const CALL_X = 'XSS <img src=x onerror="window.__xss=1"> #?&% \'q\' Zoë';
const CALL_Y = 'WC-later-call-0000-0000-000000000001';
const CALL_B = 'CC-3b9d6f2e-8a41-4c07-9e15-2f6a0d4b7c18';
const CALL_D = 'WC-6e2f1a9c-4b3d-4e8a-b5c7-0d1e2f3a4b5c';
const CALL_V = '7c0e2b9a-4d1f-4a83-b6e2-91c5d0f3a7e4';
const CALL_R = 'WC-raw-events-0000-4000-8000-000000000001';
const SECRETS = ['test-secret', 'fake-token-for-tests-only'];

/* Without a browser or playwright-core the whole file is skipped (TAP "1..0 # SKIP"), not failed. */
const chromium = await browserOrSkip(CHROMIUM);

const tap = new Tap();
const started = Date.now();
let running = null;   // the daemon, so that a signal does not leave it behind

stopOnSignals(tap, () => running);

/* ---- fixture helpers ------------------------------------------------------------------------ */

async function fixtureNames() {
  return (await readdir(fixtures)).filter((f) => /^\d\d-.*\.json$/.test(f)).sort();
}

async function fixtureJson(name) {
  return JSON.parse(await readFile(join(fixtures, name), 'utf8'));
}

/* A status-update for a new call, built from fixture 55 (same shape, new id and caller). */
async function statusUpdate(callId, caller, ts, status = 'ongoing') {
  const ev = await fixtureJson('55-callF-status-ongoing-web.json');
  ev.message.timestamp = ts;
  ev.message.call.status = status;
  ev.message.call.id = callId;
  ev.message.call.userNumber = caller;
  if (ev.message.customer) ev.message.customer.number = caller;
  return JSON.stringify(ev);
}

/* A conversation-update for callId with the given messages, built from fixture 56. */
async function conversationUpdate(callId, caller, messages, ts) {
  const ev = await fixtureJson('56-callF-conversation-unicode-html.json');
  ev.message.timestamp = ts;
  ev.message.call.id = callId;
  ev.message.call.userNumber = caller;
  if (ev.message.customer) ev.message.customer.number = caller;
  ev.message.messages = messages;
  return JSON.stringify(ev);
}

/* Fixture 61 (call G, 163 messages) plus `extra` new messages at the end. */
async function callGWithExtra(extra) {
  const ev = await fixtureJson('61-callG-conversation-many-messages.json');
  const msgs = ev.message.messages;
  let ts = msgs[msgs.length - 1].timestamp;
  for (let i = 1; i <= extra; i += 1) {
    ts += 1000;
    msgs.push({
      messageId: `g-extra-${i}`,
      role: i % 2 ? 'user' : 'assistant',
      text: `Extra message number ${i}, added by the browser test.`,
      timestamp: ts,
    });
  }
  ev.message.timestamp = ts + 10;
  return JSON.stringify(ev);
}

/* ---- page probes ---------------------------------------------------------------------------- */

/* Everything a check needs to know about the page, in one round trip. */
function probe(page) {
  return page.evaluate(() => {
    const chat = document.getElementById('chat');
    const c = chat.getBoundingClientRect();
    const bubbles = [...chat.querySelectorAll('.bubble')].map((b) => {
      const r = b.getBoundingClientRect();
      const leftGap = r.left - c.left;
      const rightGap = c.right - r.right;
      let side = 'center';
      if (leftGap + 20 < rightGap) side = 'left';
      else if (rightGap + 20 < leftGap) side = 'right';
      const t = b.querySelector('.text');
      return { role: b.dataset.role, text: t ? t.textContent : null, side };
    });
    const sel = document.querySelector('.call-item.is-selected');
    return {
      selected: sel ? sel.dataset.id : null,
      headId: document.getElementById('callHead').hidden ? null : document.getElementById('callId').textContent,
      caller: document.getElementById('callCaller').textContent,
      state: document.getElementById('callState').textContent,
      bubbles,
      pills: [...document.querySelectorAll('#pills .pill .pill-label')].map((p) => p.textContent),
      pillTitles: [...document.querySelectorAll('#pills .pill')].map((p) => p.title),
      conn: document.getElementById('conn').dataset.state,
      connText: document.getElementById('connText').textContent,
      calls: [...document.querySelectorAll('#callList .call-item')].map((li) => li.dataset.id),
      alerts: document.getElementById('alerts').hidden ? null : document.getElementById('alerts').textContent,
      report: document.getElementById('report').hidden ? null : document.getElementById('report').textContent,
      empty: document.getElementById('chatEmpty').hidden ? null : document.getElementById('chatEmpty').textContent,
      jump: document.getElementById('jumpBtn').hidden ? null : document.getElementById('jumpBtn').textContent,
      xss: window.__xss === undefined ? null : String(window.__xss),
    };
  });
}

/* The raw events view: its button, its panel, each event's heading and the JSON of those unfolded. */
function rawView(page) {
  return page.evaluate(() => {
    const btn = document.getElementById('rawBtn');
    const panel = document.getElementById('rawPanel');
    const status = document.getElementById('rawStatus');
    return {
      expanded: btn.getAttribute('aria-expanded'),
      label: btn.textContent,
      shown: !panel.hidden && panel.offsetHeight > 0,
      chatHidden: getComputedStyle(document.getElementById('chat')).visibility === 'hidden',
      note: document.getElementById('rawNote').textContent,
      status: status.hidden ? null : status.textContent,
      heads: [...document.querySelectorAll('#rawList .raw-event')].map((d) => ({
        index: d.querySelector('.raw-index').textContent,
        type: d.querySelector('.raw-type').textContent,
        time: d.querySelector('.raw-time') ? d.querySelector('.raw-time').textContent : null,
        open: d.open,
      })),
      pres: [...document.querySelectorAll('#rawList .raw-event > pre.raw-json')].map((e) => e.textContent),
      preElements: [...document.querySelectorAll('#rawList .raw-json *')].length,
      focus: document.activeElement ? document.activeElement.id : null,
    };
  });
}

/* Unfolds every raw event still folded, by clicking its heading. */
async function unfoldRaw(page) {
  const n = await page.locator('#rawList .raw-event').count();
  for (let i = 1; i <= n; i += 1) {
    const det = page.locator(`#rawList .raw-event:nth-child(${i})`);
    if (!(await det.evaluate((d) => d.open))) await det.locator('> summary').click();
  }
}

function scrollInfo(page) {
  return page.evaluate(() => {
    const chat = document.getElementById('chat');
    const all = chat.querySelectorAll('.bubble');
    const last = all[all.length - 1];
    const c = chat.getBoundingClientRect();
    const r = last ? last.getBoundingClientRect() : null;
    return {
      count: all.length,
      scrollTop: chat.scrollTop,
      fromBottom: chat.scrollHeight - chat.scrollTop - chat.clientHeight,
      lastVisible: !!r && r.top < c.bottom && r.bottom > c.top,
      lastText: last ? last.querySelector('.text').textContent : null,
      jump: !document.getElementById('jumpBtn').hidden,
    };
  });
}

const visibleTexts = (exp) => exp.messages.filter((m) => m.text !== '');

/* ---- main ----------------------------------------------------------------------------------- */

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'liveevents-browser-'));
  const shots = process.env.KEEP_SCREENSHOTS_DIR || join(work, 'screenshots');
  await mkdir(shots, { recursive: true });
  const expected = JSON.parse(await readFile(join(repo, 'tests', 'expected', 'expected.json'), 'utf8'));

  const daemon = new Daemon(BIN, {
    webhookPort: await freePort(),
    dashboardPort: await freePort(),
    arena: join(work, 'arena'),
  });
  running = daemon;
  let context = null;
  const consoleErrors = [];
  const pageErrors = [];
  const unexpectedDialogs = [];
  const resetDialogs = [];
  const apiBodies = [];
  const apiStatuses = [];
  let dialogMode = 'unexpected';   // 'dismiss' | 'accept' during the reset checks
  let follower = null, tailOut = '';
  let expectNetworkErrors = false;

  try {
    tap.comment(`daemon: ${BIN}`);
    const up = await tap.check('daemon starts and answers /healthz on both ports', () => daemon.start());
    if (!up) return;

    // A terminal beside the dashboard: liveeventsctl tail -f follows the same arena, read-only.
    follower = spawn(CTL, ['--arena', daemon.arena, 'tail', '-f', '-n', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    follower.stdout.setEncoding('utf8');
    follower.stdout.on('data', (d) => { tailOut += d; });

    context = await chromium.launchPersistentContext(join(work, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1360, height: 860 },
      colorScheme: 'light',
    });
    const page = context.pages()[0] || await context.newPage();
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (expectNetworkErrors && /ERR_|Failed to load resource|Failed to fetch/i.test(m.text())) return;
      consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('dialog', async (d) => {
      if (dialogMode === 'unexpected') {
        unexpectedDialogs.push(`${d.type()}: ${d.message()}`);
        await d.dismiss().catch(() => {});
        return;
      }
      resetDialogs.push(`${d.type()}: ${d.message()}`);
      if (dialogMode === 'accept') await d.accept();
      else await d.dismiss();
    });
    page.on('response', async (r) => {
      const url = r.url();
      if (!url.startsWith(daemon.dashUrl) || url.includes('/api/stream')) return;
      if (/\/api\/calls$/.test(url)) {
        // What went over the wire: the page sees a 304 revalidation as 200 from its cache.
        const inm = (await r.request().allHeaders())['if-none-match'];
        const sizes = await r.request().sizes().catch(() => null);
        apiStatuses.push({ url, at: Date.now(), inm, etag: r.headers().etag, bodyBytes: sizes && sizes.responseBodySize });
      }
      try {
        apiBodies.push({ url, body: await r.text() });
      } catch (_) {
        /* body gone (navigation, redirect): nothing to inspect */
      }
    });

    await tap.check('dashboard loads, with no call yet and the empty state shown', async () => {
      const res = await page.goto(daemon.pageUrl(), { waitUntil: 'load' });
      assert(res && res.ok(), `GET / answered ${res && res.status()}`);
      const s = await until('page live and empty', () => probe(page),
        (p) => p.conn === 'live' && p.calls.length === 0 && p.empty !== null);
      assert(/waiting for calls/i.test(s.empty), `empty state says: ${s.empty}`);
    });

    // Replay call A (01-23) and call F (55, 56) in delivery order.
    const names = await fixtureNames();
    const replay = names.filter((n) => (/^(0\d|1\d|2[0-3])-/.test(n) && n.includes('callA')) || /^5[56]-/.test(n));
    await tap.check(`replaying ${replay.length} fixtures of calls A and F is accepted (2xx)`, async () => {
      const bad = [];
      for (const n of replay) {
        const st = await daemon.postFile(join(fixtures, n));
        if (st < 200 || st > 299) bad.push(`${n}: ${st}`);
      }
      assert(bad.length === 0, `refused: ${bad.join(', ')}`);
    });

    await tap.check('the newest call (F) is selected automatically', async () => {
      await until('F selected', () => probe(page), (p) => p.selected === CALL_F && p.headId === CALL_F);
    });

    const expF = expected[CALL_F];
    await tap.check('call F shows exactly 8 bubbles (the empty 9th has none), in order, with literal text', async () => {
      const want = visibleTexts(expF).map((m) => [m.role, m.text]);
      assert(want.length === 8, `expected.json lists ${want.length} non-empty messages for F`);
      const s = await until('8 bubbles', () => probe(page), (p) => p.headId === CALL_F && p.bubbles.length >= 8);
      assertEqual(s.bubbles.map((b) => [b.role, b.text]), want, 'F bubbles (role, text)');
    });

    await tap.check('call F pills: ongoing', async () => {
      const s = await probe(page);
      assertEqual(s.pills, ['ongoing'], 'F pills');
    });

    await tap.check('call F: markup in messages is text, and no element was injected into the chat', async () => {
      const r = await page.evaluate(() => {
        const chat = document.getElementById('chat');
        const texts = [...chat.querySelectorAll('.bubble .text')].map((t) => t.textContent);
        return {
          script: texts.some((t) => t.includes("<script>alert('hi')</script>")),
          img: texts.some((t) => t.includes('<img src=x onerror=alert(1)>')),
          amp: texts.some((t) => t.includes('&amp; &lt;tag&gt;')),
          bold: texts.some((t) => t.includes('<b>not bold</b>')),
          injected: chat.querySelectorAll('img, script, b, svg, iframe, object, embed').length,
          caller: document.getElementById('callCaller').textContent,
          listCaller: [...document.querySelectorAll('.call-item .call-caller')].map((e) => e.textContent),
          rtl: [...chat.querySelectorAll('.bubble')].every((b) => b.getAttribute('dir') === 'auto'),
        };
      });
      assert(r.script, '<script>alert(\'hi\')</script> not shown literally');
      assert(r.img, '<img src=x onerror=alert(1)> not shown literally');
      assert(r.amp, '&amp; &lt;tag&gt; not shown literally');
      assert(r.bold, '<b>not bold</b> (decoded JSON escapes) not shown literally');
      assert(r.injected === 0, `${r.injected} markup element(s) inside the chat`);
      assert(r.caller === "web-Zoë O'Brien-Núñez", `caller shown as ${JSON.stringify(r.caller)}`);
      assert(r.listCaller.includes("web-Zoë O'Brien-Núñez"), 'caller missing from the call list');
      assert(r.rtl, 'bubbles lack dir="auto"');
    });

    await page.screenshot({ path: join(shots, '01-call-F-hostile-text.png') });

    // A new call arrives while the user has not picked one: it takes over. Its id, caller and
    // messages are hostile too.
    const now = Date.now();
    const callerX = '<script>window.__xss=1</script> O\'Neil & "Co" <b>bold</b>';
    await tap.check('a newer call is selected automatically while the user has not picked one', async () => {
      assert(await daemon.post(await statusUpdate(CALL_X, callerX, now)) === 200, 'status-update refused');
      // The id holds characters that must be percent-encoded: make sure the API itself finds it.
      const api = await until('GET /api/calls/{encoded X id}',
        () => httpJson(`${daemon.dashUrl}/api/calls/${encodeURIComponent(CALL_X)}`).then((r) => r.status),
        (st) => st === 200, 3000);
      assert(api === 200, `the API answered ${api}`);
      const s = await until('X selected', () => probe(page), (p) => p.selected === CALL_X && p.headId === CALL_X);
      assertEqual(s.caller, callerX, 'caller of the new call');
    });

    await tap.check('hostile payloads in a call id, caller and messages never run (window.__xss stays unset)', async () => {
      const msgs = [
        { messageId: 'x-1', role: 'user', text: '<img src=x onerror="window.__xss=1">', timestamp: now + 1000 },
        { messageId: 'x-2', role: 'assistant', text: '<svg onload="window.__xss=2"></svg><iframe srcdoc="<script>parent.__xss=3</script>"></iframe>', timestamp: now + 2000 },
        { messageId: 'x-3', role: 'user', text: '"><script>window.__xss=4</script><a href="javascript:window.__xss=5">x</a>', timestamp: now + 3000 },
      ];
      assert(await daemon.post(await conversationUpdate(CALL_X, callerX, msgs, now + 3000)) === 200, 'update refused');
      const s = await until('3 bubbles on X', () => probe(page), (p) => p.headId === CALL_X && p.bubbles.length === 3);
      assertEqual(s.bubbles.map((b) => b.text), msgs.map((m) => m.text), 'X bubble texts');
      await sleep(300);
      const r = await page.evaluate(() => ({
        xss: window.__xss === undefined ? null : String(window.__xss),
        injected: document.querySelectorAll('#app img, #app script, #app iframe, #app b, #msgs svg, #app a').length,
      }));
      assert(r.xss === null, `window.__xss was set to ${r.xss}`);
      assert(r.injected === 0, `${r.injected} injected element(s) in the page`);
    });

    // The user picks call A: a newer call must not take the selection away.
    const expA = expected[CALL_A];
    await tap.check('clicking call A in the list selects it', async () => {
      await page.click(`.call-item[data-id="${CALL_A}"] .call-btn`);
      await until('A selected', () => probe(page), (p) => p.selected === CALL_A && p.headId === CALL_A);
    });

    await tap.check('call A shows its 7 bubbles in order with the expected texts', async () => {
      const want = visibleTexts(expA).map((m) => [m.role, m.text]);
      const s = await until('7 bubbles', () => probe(page), (p) => p.headId === CALL_A && p.bubbles.length === want.length);
      assertEqual(s.bubbles.map((b) => [b.role, b.text]), want, 'A bubbles (role, text)');
    });

    await tap.check('call A: user bubbles sit on the right, assistant bubbles on the left (layout)', async () => {
      const s = await probe(page);
      const wrong = s.bubbles.filter((b) => (b.role === 'user' ? b.side !== 'right' : b.side !== 'left'));
      assert(wrong.length === 0, `misplaced: ${JSON.stringify(wrong)}`);
    });

    await tap.check('call A pills: queued, ongoing, finished, each with its local time; call marked ended', async () => {
      const s = await probe(page);
      assertEqual(s.pills, ['queued', 'ongoing', 'finished'], 'A pills');
      assert(s.pillTitles.every((t) => /\d/.test(t)), `pill tooltips lack a time: ${JSON.stringify(s.pillTitles)}`);
      assert(/ended/i.test(s.state), `state badge says ${s.state}`);
      const ended = await page.evaluate((id) => {
        const li = document.querySelector(`.call-item[data-id="${CSS.escape(id)}"]`);
        const chip = li && li.querySelector('.chip-ended');
        return !!chip && !chip.hidden;
      }, CALL_A);
      assert(ended, 'no ended marker on A in the call list');
    });

    await tap.check('liveeventsctl tail -f followed the same replay live: every bubble and pill of A is in its lines', async () => {
      const s = await probe(page);
      const lines = tailOut.split('\n').filter((l) => l.includes('CA5e0b7c1d9a'));
      // The log words: the latest message of each event, its first 80 characters; statuses upper-cased.
      for (const b of s.bubbles) {
        const start = b.text.slice(0, 40);
        assert(lines.some((l) => l.includes(`${b.role}: ${start}`)), `no tail line shows "${b.role}: ${start}"`);
      }
      for (const p of s.pills) {
        assert(lines.some((l) => l.includes(`\u2192 ${p.toUpperCase()}`)), `no tail line shows status ${p}`);
      }
      tap.comment(`tail -f printed ${lines.length} lines for call A`);
    });

    await tap.check('call A: the report panel and the hang alert follow what the API returns', async () => {
      const d = await httpJson(`${daemon.dashUrl}/api/calls/${encodeURIComponent(CALL_A)}`);
      assert(d.status === 200, `GET /api/calls/{A} answered ${d.status}`);
      const s = await probe(page);
      const r = d.body.report;
      assert(r && s.report !== null, 'A has a report (fixture 21): the page must show it');
      for (const want of [r.successEvaluation, r.summary, r.outcome, 'Ended by', r.recording.path]) {
        assert(typeof want === 'string' && s.report.includes(want), `the report panel lacks "${want}"`);
      }
      assert(/34 s|0:34|33\.9|34s/.test(s.report), `the report panel shows no duration of about 34 s: ${s.report}`);
      assert(/\$0\.0457/.test(s.report), `the report panel shows no cost: ${s.report}`);
      assertEqual((d.body.alerts || []).filter((a) => a.type === 'hang').length, 1, 'hang alerts in the API');
      assert(s.alerts && /assistant not responding/i.test(s.alerts), 'hang alert not shown');
      assert(/ended/i.test(s.state), `A's state says ${s.state}`);
    });

    await page.screenshot({ path: join(shots, '02-call-A-report.png') });

    // The raw events view: the webhook bodies of the selected call as the daemon keeps them.
    const pretty = (ev) => JSON.stringify(ev, null, 2);
    const apiEvents = async (id) => {
      const r = await httpJson(`${daemon.dashUrl}/api/conversations/${encodeURIComponent(id)}`);
      assertEqual(r.status, 200, `GET /api/conversations/{${id}}`);
      return r.body.events;
    };
    const rawRequests = [];
    page.on('request', (r) => {
      if (r.url().includes('/api/conversations/')) rawRequests.push({ url: r.url(), at: Date.now() });
    });

    await tap.check('raw events of call A: the button (keyboard) opens them folded, newest first, as many as the daemon keeps', async () => {
      const events = await apiEvents(CALL_A);
      const posted = replay.filter((n) => n.includes('callA')).length;
      assertEqual(events.length, posted, 'events of A kept by the daemon (one per webhook posted)');
      const before = await rawView(page);
      assertEqual([before.expanded, before.shown, before.label], ['false', false, 'Raw events'], 'closed at first');
      assertEqual(rawRequests.length, 0, 'raw events fetched before the view was opened');
      await page.focus('#rawBtn');
      await page.keyboard.press('Enter');
      const v = await until('the raw events listed', () => rawView(page), (x) => x.heads.length === events.length);
      assertEqual([v.expanded, v.shown, v.chatHidden, v.label], ['true', true, true, `Raw events (${events.length})`],
        'aria-expanded, panel shown over the transcript, button label');
      assert(/newest first/.test(v.note) && v.note.includes(String(events.length)), `the note says ${v.note}`);
      assertEqual(rawRequests.length, 1, 'requests for the raw events');
      assert(rawRequests[0].url.endsWith('/api/conversations/' + encodeURIComponent(CALL_A)), `fetched ${rawRequests[0].url}`);
      const newestFirst = events.map((ev, i) => ({ ev, i })).reverse();
      assertEqual(v.heads.map((h) => h.index), newestFirst.map((x) => '#' + (x.i + 1)), 'headings: index');
      assertEqual(v.heads.map((h) => h.type), newestFirst.map((x) => x.ev.message.type), 'headings: message.type');
      const times = await page.evaluate((ts) => ts.map((t) => new Date(t).toLocaleTimeString()),
        newestFirst.map((x) => x.ev.message.timestamp));
      assertEqual(v.heads.map((h) => h.time), times, 'headings: message.timestamp as local time');
      assert(v.heads.every((h) => !h.open), 'an event is unfolded from the start');
      assertEqual(v.pres.length, 0, 'JSON laid out before any event was unfolded');
    });

    await tap.check('raw events of call A: each unfolds to its pretty-printed JSON, as text; the echoed secret shows as [redacted]', async () => {
      const events = await apiEvents(CALL_A);
      // The first with the keyboard: focus its heading, Enter.
      await page.focus('#rawList .raw-event:first-child > summary');
      await page.keyboard.press('Enter');
      await until('the newest unfolded', () => rawView(page), (x) => x.pres.length === 1 && x.heads[0].open);
      await unfoldRaw(page);
      const v = await until('every event unfolded', () => rawView(page), (x) => x.pres.length === events.length);
      assertEqual(v.pres, events.slice().reverse().map(pretty), 'the JSON shown, newest first');
      assertEqual(v.preElements, 0, 'elements inside the JSON');
      const oldest = JSON.parse(v.pres[v.pres.length - 1]);
      assertEqual(oldest.message.type, 'status-update', 'the oldest event (fixture 01)');
      assertEqual(oldest.message.assistant.assistantServer.secret, '[redacted]', 'message.assistant.assistantServer.secret');
      assertEqual(oldest.message.assistant.assistantServer.headers.Authorization, '[redacted]', 'its echoed Authorization header');
      assert(v.pres[v.pres.length - 1].includes('\n        "secret": "[redacted]",\n'), 'the secret line is not pretty-printed');
      for (const secret of SECRETS) assert(!v.pres.some((t) => t.includes(secret)), `"${secret}" is shown`);
      await page.screenshot({ path: join(shots, '02b-call-A-raw.png') });
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.screenshot({ path: join(shots, '02c-call-A-raw-dark.png') });
      await page.emulateMedia({ colorScheme: 'light' });
    });

    await tap.check('raw events: Escape and Close close the view (focus back on its button); the button opens it again', async () => {
      await page.focus('#rawRefresh');
      await page.keyboard.press('Escape');
      let v = await until('closed by Escape', () => rawView(page), (x) => !x.shown);
      assertEqual([v.expanded, v.chatHidden, v.focus], ['false', false, 'rawBtn'], 'after Escape');
      await page.click('#rawBtn');
      v = await until('open again', () => rawView(page), (x) => x.shown && x.status === null);
      assert(v.heads.length > 0 && v.heads.every((h) => h.open), 'the events of the same call were not kept unfolded');
      await page.click('#rawClose');
      v = await until('closed by Close', () => rawView(page), (x) => !x.shown);
      assertEqual([v.expanded, v.focus], ['false', 'rawBtn'], 'after Close');
      await page.click('#rawBtn');
      await until('open again', () => rawView(page), (x) => x.shown && x.heads.length > 0);
    });

    await tap.check('raw events: picking another call closes the view and clears it', async () => {
      assert(await daemon.post(await statusUpdate(CALL_R, '+15550100444', Date.now())) === 200, 'refused');
      await until('R listed', () => probe(page), (p) => p.calls.includes(CALL_R));
      assertEqual((await rawView(page)).shown, true, 'the view closed when another call arrived');
      await page.click(`.call-item[data-id="${CALL_R}"] .call-btn`);
      const v = await until('closed', () => rawView(page), (x) => !x.shown && x.heads.length === 0);
      assertEqual([v.expanded, v.label, v.chatHidden], ['false', 'Raw events', false], 'after picking R');
      await until('R shown', () => probe(page), (p) => p.headId === CALL_R);
    });

    await tap.check('raw events: a busy call refreshes the open view by itself, at most once a second, keeping what is unfolded', async () => {
      await page.click('#rawBtn');
      await until('R\'s one event', () => rawView(page), (x) => x.heads.length === 1);
      await page.click('#rawList .raw-event > summary');
      await until('unfolded', () => rawView(page), (x) => x.pres.length === 1);
      const t0 = Date.now();
      const from = rawRequests.length;
      const msgs = [];
      const posts = 12;
      for (let i = 1; i <= posts; i += 1) {
        msgs.push({ messageId: `r-${i}`, role: i % 2 ? 'user' : 'assistant', text: `Raw view message ${i}`, timestamp: t0 + i });
        assert(await daemon.post(await conversationUpdate(CALL_R, '+15550100444', msgs, t0 + i)) === 200, 'refused');
        await sleep(150);
      }
      const v = await until('every event listed', () => rawView(page), (x) => x.heads.length === posts + 1, 6000);
      const took = Date.now() - t0;
      const asked = rawRequests.length - from;
      tap.comment(`raw events: ${posts} changes in ${took} ms, ${asked} fetches`);
      assert(asked >= 2 && asked <= Math.ceil(took / 1000) + 1, `${asked} fetches in ${took} ms`);
      assertEqual(v.heads[0], { index: `#${posts + 1}`, type: 'conversation-update', time: v.heads[0].time, open: false }, 'the newest');
      assertEqual(v.heads[posts], { index: '#1', type: 'status-update', time: v.heads[posts].time, open: true }, 'the oldest, still unfolded');
      const bubbles = (await probe(page)).bubbles.length;
      assertEqual(bubbles, posts, 'the transcript beneath kept up');
    });

    await tap.check('raw events: Refresh fetches what changed nothing else (an event of an unknown type)', async () => {
      const body = JSON.parse(await statusUpdate(CALL_R, '+15550100444', Date.now()));
      body.message.type = 'call-recording-ready';
      assert(await daemon.post(JSON.stringify(body)) === 200, 'refused');
      await until('kept by the daemon', () => apiEvents(CALL_R), (e) => e.length === 14);
      await page.click('#rawRefresh');
      const v = await until('listed', () => rawView(page), (x) => x.heads.length === 14);
      assertEqual([v.heads[0].index, v.heads[0].type, v.label], ['#14', 'call-recording-ready', 'Raw events (14)'], 'the newest');
    });

    await tap.check('raw events: "no raw events kept" when there are none; an error is shown as text', async () => {
      const url = `**/api/conversations/${encodeURIComponent(CALL_R)}`;
      await page.route(url, (route) => route.fulfill({
        status: 200, contentType: 'application/json', body: JSON.stringify({ statuses: [], messages: [], events: [] }),
      }));
      try {
        await page.click('#rawRefresh');
        let v = await until('none kept', () => rawView(page), (x) => x.heads.length === 0 && x.status !== null);
        assert(/no raw events kept/i.test(v.status), `the view says ${v.status}`);
        assertEqual(v.label, 'Raw events (0)', 'the button');
        await page.unroute(url);
        expectNetworkErrors = true;   // Chromium logs the 500 itself
        await page.route(url, (route) => route.fulfill({
          status: 500, contentType: 'application/json', body: JSON.stringify({ error: 'arena <b>unreadable</b>' }),
        }));
        await page.click('#rawRefresh');
        v = await until('the error', () => rawView(page), (x) => x.status !== null && /unreadable/.test(x.status));
        assertEqual(v.status, 'Cannot load the raw events: arena <b>unreadable</b>', 'the error as text');
      } finally {
        await page.unroute(url);
        expectNetworkErrors = false;
      }
      await page.click('#rawRefresh');
      await until('listed again', () => rawView(page), (x) => x.heads.length === 14 && x.status === null);
      await page.click(`.call-item[data-id="${CALL_A}"] .call-btn`);
      await until('A shown, the view closed', async () => ({ p: await probe(page), r: await rawView(page) }),
        (x) => x.p.headId === CALL_A && x.p.bubbles.length === 7 && !x.r.shown && x.r.heads.length === 0);
    });

    await tap.check('after the user picked a call, a newer call does not take the selection', async () => {
      assert(await daemon.post(await statusUpdate(CALL_Y, '+15550100777', Date.now())) === 200, 'refused');
      await until('Y listed', () => probe(page), (p) => p.calls.includes(CALL_Y));
      await sleep(1300);
      const s = await probe(page);
      assert(s.selected === CALL_A && s.headId === CALL_A, `selection moved to ${s.selected}`);
      assertEqual(s.calls[0], CALL_Y, 'newest call first in the list');
    });

    await tap.check('"Follow newest" goes back to the newest call', async () => {
      await page.click('#followBtn');
      await until('Y selected', () => probe(page), (p) => p.selected === CALL_Y && p.headId === CALL_Y);
    });

    // Call G: 163 messages, one of 69,154 characters. Following newest, it becomes selected.
    await tap.check('call G (163 messages, one of 69,154 characters) renders quickly and completely', async () => {
      for (const n of ['60-callG-conversation-very-long-message.json', '61-callG-conversation-many-messages.json']) {
        assert(await daemon.postFile(join(fixtures, n)) === 200, `${n} refused`);
      }
      const t0 = Date.now();
      const s = await until('163 bubbles', () => probe(page), (p) => p.headId === CALL_G && p.bubbles.length === 163, 8000, 50);
      const ms = Date.now() - t0;
      tap.comment(`call G: 163 bubbles on screen ${ms} ms after posting (includes up to 1 s of polling)`);
      const want = visibleTexts(expected[CALL_G]).map((m) => m.text);
      assertEqual(s.bubbles.map((b) => b.text).filter((t, i) => t !== want[i]).length, 0, 'G texts differ');
      const longest = Math.max(...s.bubbles.map((b) => b.text.length));
      assert(longest === 69154, `longest bubble text has ${longest} characters`);
      assert(ms < 4000, `took ${ms} ms`);
      // Switching to G from another call: fetch + build 163 bubbles, without the polling delay.
      await page.click(`.call-item[data-id="${CALL_A}"] .call-btn`);
      await until('A shown', () => probe(page), (p) => p.headId === CALL_A && p.bubbles.length === 7);
      const t1 = Date.now();
      await page.click(`.call-item[data-id="${CALL_G}"] .call-btn`);
      await page.waitForFunction(() => document.querySelectorAll('#chat .bubble').length === 163, null, { polling: 'raf' });
      const switchMs = Date.now() - t1;
      tap.comment(`call G: shown ${switchMs} ms after clicking it`);
      assert(switchMs < 1500, `switching to G took ${switchMs} ms`);
    });

    await tap.check('live update appends a bubble without reloading or rebuilding the chat', async () => {
      await page.evaluate(() => {
        window.__sameDocument = true;
        document.querySelector('#chat .bubble').__marker = 'kept';
        const chat = document.getElementById('chat');
        chat.scrollTop = chat.scrollHeight;
      });
      await sleep(100);
      assert(await daemon.post(await callGWithExtra(1)) === 200, 'refused');
      await until('164 bubbles', () => scrollInfo(page), (i) => i.count === 164);
      const r = await page.evaluate(() => ({
        same: window.__sameDocument === true,
        marker: document.querySelector('#chat .bubble').__marker,
      }));
      assert(r.same, 'the page was reloaded');
      assert(r.marker === 'kept', 'the existing bubbles were rebuilt');
    });

    await tap.check('auto-scroll: at the bottom, a new message scrolls into view', async () => {
      const i = await until('at bottom with the new bubble visible', () => scrollInfo(page),
        (x) => x.count === 164 && x.fromBottom <= 8 && x.lastVisible);
      assert(/Extra message number 1,/.test(i.lastText), `last bubble: ${i.lastText}`);
      assert(!i.jump, 'the "new messages" button is shown although we are at the bottom');
    });

    await tap.check('auto-scroll: scrolled up, a new message keeps the position and offers a jump button', async () => {
      await page.evaluate(() => { document.getElementById('chat').scrollTop = 200; });
      await sleep(150);
      assert(await daemon.post(await callGWithExtra(2)) === 200, 'refused');
      const i = await until('165 bubbles and the jump button', () => scrollInfo(page), (x) => x.count === 165 && x.jump);
      assert(Math.abs(i.scrollTop - 200) <= 2, `scrollTop moved to ${i.scrollTop}`);
      assert(!i.lastVisible, 'the new bubble was scrolled into view');
      await page.click('#jumpBtn');
      await until('back at the bottom', () => scrollInfo(page), (x) => x.fromBottom <= 8 && x.lastVisible && !x.jump);
    });

    await page.screenshot({ path: join(shots, '03-call-G-long.png') });

    await tap.check('pause stops rendering; resume shows what arrived meanwhile', async () => {
      await page.click('#pauseBtn');
      const p1 = await until('paused', () => probe(page), (p) => p.conn === 'paused');
      assert(/paused/i.test(p1.connText), `indicator says ${p1.connText}`);
      assert(await daemon.post(await callGWithExtra(3)) === 200, 'refused');
      await until('the daemon has the new message', async () => {
        const r = await httpJson(`${daemon.dashUrl}/api/calls`);
        return (r.body.calls.find((c) => c.id === CALL_G) || {}).messages;
      }, (n) => n === 166);
      await sleep(2200);
      const paused = await scrollInfo(page);
      assert(paused.count === 165, `while paused the chat changed to ${paused.count} bubbles`);
      await page.click('#pauseBtn');
      const s = await until('166 bubbles after resume', () => scrollInfo(page), (x) => x.count === 166, 4000);
      assert(s.lastText.includes('Extra message number 3,'), `last bubble: ${s.lastText}`);
      const p2 = await probe(page);
      assert(p2.conn === 'live' && /live/i.test(p2.connText), `indicator says ${p2.connText}`);
    });

    await tap.check('narrow screens get a call <select> that lists every call', async () => {
      await page.setViewportSize({ width: 420, height: 860 });
      const r = await until('select visible', () => page.evaluate(() => {
        const sel = document.getElementById('callSelect');
        return {
          visible: sel.offsetParent !== null,
          listVisible: document.getElementById('callList').offsetParent !== null,
          options: [...sel.options].map((o) => o.value).filter(Boolean),
          calls: [...document.querySelectorAll('#callList .call-item')].map((li) => li.dataset.id),
        };
      }), (x) => x.visible);
      assert(!r.listVisible, 'the sidebar list is still shown on a narrow screen');
      assertEqual(r.options, r.calls, 'select options vs call list');
      await page.screenshot({ path: join(shots, '04-narrow.png'), fullPage: false });
      await page.selectOption('#callSelect', CALL_F);
      await until('F selected via <select>', () => probe(page), (p) => p.headId === CALL_F && p.bubbles.length === 8);
      await page.setViewportSize({ width: 1360, height: 860 });
    });

    await page.emulateMedia({ colorScheme: 'dark' });
    await page.click(`.call-item[data-id="${CALL_A}"] .call-btn`);
    await until('A selected', () => probe(page), (p) => p.headId === CALL_A && p.bubbles.length === 7).catch(() => {});
    await page.screenshot({ path: join(shots, '05-call-A-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });

    await tap.check('an idle dashboard follows the event stream and polls nothing', async () => {
      assertEqual(await page.evaluate(() => window.liveeventsFeed()), 'stream', 'feed');
      const since = Date.now();
      await page.waitForTimeout(2500);
      const polls = apiStatuses.filter((x) => x.at >= since);
      assertEqual(polls.length, 0, `list requests while idle: ${JSON.stringify(polls)}`);
      tap.comment('idle for 2.5 s: no request, the open stream carries every change');
    });

    await tap.check('the redacted secrets of fixture 01 appear nowhere in the page or in API answers it fetched', async () => {
      const pageText = await page.evaluate(() => document.documentElement.outerHTML + '\n' + document.body.innerText +
        '\n' + [...document.querySelectorAll('[title]')].map((e) => e.title).join('\n'));
      for (const s of SECRETS) {
        assert(!pageText.includes(s), `"${s}" appears in the page`);
        const hit = apiBodies.find((b) => b.body.includes(s));
        assert(!hit, `"${s}" appears in the answer to ${hit && hit.url}`);
      }
      const api = apiBodies.filter((b) => b.url.includes('/api/'));
      assert(api.length > 5, `only ${api.length} API answers were captured`);
      tap.comment(`${api.length} API answers inspected`);
    });

    // Calls B (an interrupted reply, finished before its report), D (two errors, no report) and
    // V (Vapi's shapes and statuses, ended with a reason).
    const more = names.filter((n) => n.includes('callB') || n.includes('callD') || /^9\d-/.test(n));
    await tap.check(`replaying ${more.length} fixtures of calls B, D and V is accepted (2xx)`, async () => {
      for (const n of more) assert((await daemon.postFile(join(fixtures, n))) === 200, `${n} refused`);
    });

    const show = async (id, n) => {
      await page.click(`.call-item[data-id="${id}"] .call-btn`);
      return until(`${id} shown`, () => probe(page), (p) => p.headId === id && p.bubbles.length === n);
    };

    await tap.check('call B: the interrupted reply is a note on the user message, not a bubble; report and ended', async () => {
      const s = await show(CALL_B, 5);
      const want = visibleTexts(expected[CALL_B]).map((m) => [m.role, m.text]);
      assertEqual(s.bubbles.map((b) => [b.role, b.text]), want, 'B bubbles');
      const notes = await page.evaluate(() => [...document.querySelectorAll('#chat .interrupted')].map((e) => e.textContent));
      assertEqual(notes.length, 1, 'interrupted notes');
      assert(notes[0].includes('Great. Will you be able to make it, or would you like to reschedule?'),
        `the note says ${notes[0]}`);
      assert(s.report && s.report.includes('Excellent') && /18\.2 s|0:18|18 s/.test(s.report),
        `B's report panel: ${s.report}`);
      assertEqual(s.pills.length, 4, 'B pills');
      assert(/ended/i.test(s.state), `B's state says ${s.state}`);
      const reason = await page.evaluate(() => document.getElementById('callReason').hidden ? null
        : document.getElementById('callReason').textContent);
      assert(reason && reason.includes('ended by user'), `B's end reason says ${reason}`);
    });

    await tap.check('call D: both error alerts with type, code and provider; ended without a report', async () => {
      const s = await show(CALL_D, 2);
      assert(s.alerts, 'no alerts shown');
      for (const w of ['llm_error', 'rate_limit_exceeded', 'openai', 'stt_error', 'connection_closed', 'deepgram']) {
        assert(s.alerts.includes(w), `the alerts lack "${w}": ${s.alerts}`);
      }
      assert(s.report === null, 'D has no report, but a panel is shown');
      assert(/ended/i.test(s.state), `D's state says ${s.state}`);
    });

    await tap.check('call V (Vapi): 4 bubbles, tool rows hidden, ended with its reason', async () => {
      const s = await show(CALL_V, 4);
      const want = visibleTexts(expected[CALL_V]).map((m) => [m.role, m.text]);
      assertEqual(s.bubbles.map((b) => [b.role, b.text]), want, 'V bubbles');
      assertEqual(s.pills.length, 2, 'V pills');
      assert(/ended/i.test(s.state), `V's state says ${s.state}`);
      const reason = await page.evaluate(() => document.getElementById('callReason').textContent);
      assert(reason.includes('customer-ended-call'), `V's end reason says ${reason}`);
      await page.screenshot({ path: join(shots, '06-call-B-interrupted.png') });
    });

    await tap.check('a failed reset shows the error message from the daemon', async () => {
      dialogMode = 'accept';
      await page.route('**/api/conversations', (route) => {
        if (route.request().method() !== 'DELETE') return route.continue();
        return route.fulfill({
          status: 503,
          contentType: 'application/json',
          body: JSON.stringify({ error: 'writer unavailable: <b>test</b>' }),
        });
      });
      try {
        expectNetworkErrors = true;   // Chromium logs the 503 itself
        await page.click('#resetBtn');
        const t = await until('error banner', () => page.evaluate(() =>
          (document.getElementById('banner').hidden ? null : document.getElementById('bannerText').textContent)), (x) => x);
        assert(t.includes('writer unavailable: <b>test</b>'), `banner says ${t}`);
        const s = await probe(page);
        assert(s.calls.length > 0, 'the page cleared although the reset failed');
      } finally {
    if (follower) follower.kill('SIGTERM');
        await page.unroute('**/api/conversations');
        expectNetworkErrors = false;
        dialogMode = 'unexpected';
        await page.click('#bannerClose').catch(() => {});
      }
    });

    await tap.check('reset asks for confirmation; dismissing it keeps everything', async () => {
      resetDialogs.length = 0;
      dialogMode = 'dismiss';
      const before = (await probe(page)).calls.length;
      await page.click('#resetBtn');
      await until('a confirm dialog', async () => resetDialogs.length, (n) => n === 1, 3000);
      assert(resetDialogs[0].startsWith('confirm:'), `dialog was ${resetDialogs[0]}`);
      await sleep(1300);
      const s = await probe(page);
      assert(s.calls.length === before, `calls went from ${before} to ${s.calls.length}`);
      const r = await httpJson(`${daemon.dashUrl}/api/calls`);
      assert(r.body.calls.length === before, `the API now lists ${r.body.calls.length} calls`);
    });

    await tap.check('reset, once confirmed, clears the page and the daemon', async () => {
      resetDialogs.length = 0;
      dialogMode = 'accept';
      await page.click('#resetBtn');
      await until('a confirm dialog', async () => resetDialogs.length, (n) => n === 1, 3000);
      const s = await until('page cleared', () => probe(page),
        (p) => p.calls.length === 0 && p.bubbles.length === 0 && p.headId === null && p.empty !== null);
      assert(/cleared/i.test(s.empty), `empty state says ${s.empty}`);
      const r = await httpJson(`${daemon.dashUrl}/api/calls`);
      assertEqual(r.body.calls, [], 'GET /api/calls after reset');
      await sleep(1200);
      const again = await probe(page);
      assert(again.calls.length === 0, 'calls came back after the reset');
      dialogMode = 'unexpected';
    });

    await page.screenshot({ path: join(shots, '06-after-reset.png') });

    await tap.check('after a reset, a new call shows up and is selected', async () => {
      assert(await daemon.postFile(join(fixtures, '55-callF-status-ongoing-web.json')) === 200, 'refused');
      await until('F back', () => probe(page), (p) => p.selected === CALL_F && p.pills.join() === 'ongoing');
    });

    await tap.check('no unexpected dialog was opened and window.__xss was never set', async () => {
      assert(unexpectedDialogs.length === 0, `dialogs: ${JSON.stringify(unexpectedDialogs)}`);
      const s = await probe(page);
      assert(s.xss === null, `window.__xss = ${s.xss}`);
    });

    await tap.check('no console errors and no uncaught exceptions', async () => {
      assert(consoleErrors.length === 0, `console errors:\n${consoleErrors.join('\n')}`);
      assert(pageErrors.length === 0, `page errors:\n${pageErrors.join('\n')}`);
    });

    await tap.check('with the daemon stopped the page says "reconnecting…", and recovers by itself when it is back', async () => {
      expectNetworkErrors = true;
      const before = await probe(page);
      await daemon.stop();
      try {
        const s = await until('reconnecting', () => probe(page), (p) => p.conn === 'down', 5000);
        assert(/reconnecting/i.test(s.connText), `indicator says ${s.connText}`);
        await page.screenshot({ path: join(shots, '07-reconnecting.png') });
      } finally {
        await daemon.start();
      }
      const after = await until('live again', () => probe(page), (p) => p.conn === 'live', 8000);
      assertEqual(after.calls, before.calls, 'the calls shown');
      assertEqual(after.bubbles.length, before.bubbles.length, 'the bubbles shown');
      expectNetworkErrors = false;
    });

    await tap.check('a call that returns after leaving a full arena says so; a live call does not', async () => {
      const small = new Daemon(BIN, {
        webhookPort: await freePort(),
        dashboardPort: await freePort(),
        arena: join(work, 'small-arena'),
        args: ['--arena-size', '1M'],
      });
      try {
        await small.start();
        const ts = 1784041330000;
        const post = async (body) => assert(await small.post(body) === 200, 'refused');
        // web-back-1 ends and leaves with the ended calls that follow; web-stays-1 stays live
        await post(await statusUpdate('web-back-1', '+15550001', ts));
        await post(await statusUpdate('web-back-1', '+15550001', ts + 1, 'ended'));
        await post(await statusUpdate('web-stays-1', '+15550002', ts));
        const pad = 'x'.repeat(3000);
        let n = 0;
        while ((await httpJson(small.dashUrl + '/api/calls')).body.calls.some((c) => c.id === 'web-back-1')) {
          for (let k = 0; k < 20; k += 1, n += 1) {
            await post(await conversationUpdate(`filler-${n}`, '+15559999',
              [{ messageId: 'f', role: 'user', text: `filler ${n} ${pad}`, timestamp: ts + n }], ts + n));
            await post(await statusUpdate(`filler-${n}`, '+15559999', ts + n, 'ended'));
          }
          assert(n < 2000, 'the call never left the arena');
        }
        await post(await conversationUpdate('web-back-1', '+15550001',
          [{ messageId: 'late', role: 'user', text: 'Back after a long pause', timestamp: ts + 5000 }], ts + 5000));
        await page.goto(small.pageUrl('#call=web-back-1'), { waitUntil: 'load' });
        await until('resumed note shown', () => page.evaluate(() => {
          const el = document.getElementById('callResumed');
          return { id: document.getElementById('callId').textContent, shown: !!el && !el.hidden && el.offsetHeight > 0 };
        }), (p) => p.id === 'web-back-1' && p.shown);
        await page.screenshot({ path: join(shots, '08-resumed.png') });
        await page.goto(small.dashUrl + '/#call=web-stays-1', { waitUntil: 'load' });
        await until('no note for the live call', () => page.evaluate(() => ({
          id: document.getElementById('callId').textContent,
          hidden: document.getElementById('callResumed').hidden,
        })), (p) => p.id === 'web-stays-1' && p.hidden);
      } finally {
        await small.stop();
        await rm(join(work, 'small-arena'), { force: true }).catch(() => {});
        await rm(small.tokenFile, { force: true }).catch(() => {});
      }
    });

    for (const f of (await readdir(shots)).sort()) tap.comment(`screenshot: ${join(shots, f)}`);
  } catch (e) {
    tap.fail('test run aborted', e);
  } finally {
    if (context) await context.close().catch(() => {});
    const ex = await daemon.stop().catch((e) => ({ error: String(e) }));
    if (ex && (ex.forced || (ex.code !== 0 && ex.code !== null) || ex.error)) {
      tap.comment(`daemon exit: ${JSON.stringify(ex)}`);
    }
    if (tap.failed) tap.comment('daemon output (tail):\n' + daemon.tail());
    await rm(join(work, 'profile'), { recursive: true, force: true }).catch(() => {});
    await rm(join(work, 'arena'), { recursive: true, force: true }).catch(() => {});
    await rm(daemon.tokenFile, { force: true }).catch(() => {});   // a secret: not left in /tmp
    tap.comment(`${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}

// Exit explicitly: idle keep-alive sockets of fetch() would otherwise hold the process a few seconds.
main().then(() => {
  process.exit(tap.end());
}, (e) => {
  tap.fail('test harness crashed', e);
  process.exit(tap.end());
});
