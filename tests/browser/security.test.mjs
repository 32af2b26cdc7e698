#!/usr/bin/env node
// Browser test of the dashboard's doors (issue 6): real daemon, real headless Chromium, TAP output.
// What a browser on the LAN gets without the token, with a wrong one and with the token URL (the
// cookie it sets, the token leaving the address bar); a page whose cookie goes away; the CSP
// holding against injected script; webhook payloads made of markup shown as text everywhere the
// dashboard puts them; a page on another origin (another port of the same host, so the same site:
// the browser sends it the cookie) that tries to read or clear the calls; and a DNS-rebound name.
// tests/integration/test_security.py checks the same doors over plain HTTP.
//
//   cd tests/browser && npm install && node security.test.mjs
//
// Environment: LIVEEVENTSD (daemon binary; default <repo>/daemon/liveeventsd),
//              CHROMIUM (default /usr/bin/chromium).
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tap, Daemon, browserOrSkip, stopOnSignals, freePort, httpJson, until, sleep, assert, assertEqual, queryPid } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const fixtures = join(repo, 'tests', 'fixtures');
const BIN = process.env.LIVEEVENTSD || join(repo, 'daemon', 'liveeventsd');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// A name the browser resolves to this host, as a DNS-rebinding attacker's name would.
const REBOUND = 'rebind.test';

const chromium = await browserOrSkip(CHROMIUM);

const tap = new Tap();
let running = null;
stopOnSignals(tap, () => running);

/* ---- webhooks -------------------------------------------------------------------------------- */

const T0 = 1784042900000;
const fixture = async (name) => JSON.parse(await readFile(join(fixtures, name), 'utf8'));

/* Both kinds of markup a careless page would run, tagged so a failure says which field ran. */
const evil = (tag) => `<img src=x onerror="window.__pwned='${tag}'"><script>window.__pwned='${tag}'</script>`;

const BIDI_ID = 'WC-bidi-\u202Etxt.exe'; // reads "WC-bidi-exe.txt" on screen unless neutralised
const SEED = { id: 'WC-security-seed-0001', caller: 'web-Seed Caller', text: 'Seed message: nothing for strangers' };

const X = {
  id: `xss-<img src=x onerror="window.__pwned='id'">-<script>window.__pwned='id'</script>`,
  caller: `web-${evil('caller')}`,
  status: `<svg onload="window.__pwned='status'">`,
  role: `<b onmouseover="window.__pwned='role'">role</b>`,
  endedBy: evil('endedBy'),
  endReason: evil('endReason'),
  tool: evil('tool-name'),
  error: { type: evil('error-type'), code: evil('error-code'), message: evil('error-message'), provider: evil('provider') },
  report: {
    summary: evil('summary'),
    successEvaluation: evil('evaluation'),
    outcome: evil('outcome'),
    dataKey: evil('data-key'),
    dataValue: evil('data-value'),
    recordingPath: evil('recording'),
    recordingUrl: `javascript:window.__pwned='recording-url'`,
  },
};
X.messages = [
  { messageId: 'x-1', role: 'user', text: evil('user-text'), timestamp: T0 + 1000 },
  { messageId: 'x-2', role: 'assistant', text: evil('assistant-text'), timestamp: T0 + 2000 },
  { messageId: 'x-3', role: X.role, text: 'a message whose role is markup', timestamp: T0 + 3000 },
  { messageId: 'x-4', role: 'tool', text: evil('tool-text'), timestamp: T0 + 4000 },
  {
    messageId: 'x-5', role: 'user', text: 'interrupting', timestamp: T0 + 5000,
    skippedAssistantMessages: [{ messageId: 'x-5s', role: 'assistant', text: evil('interrupted'), timestamp: T0 + 4500 }],
  },
];

/* An Interactly event of the given fixture's shape, for call id with caller. */
async function interactly(name, id, caller, ts, edit) {
  const ev = await fixture(name);
  ev.message.timestamp = ts;
  ev.message.call.id = id;
  ev.message.call.userNumber = caller;
  ev.message.customer = { number: caller };
  edit(ev.message);
  return JSON.stringify(ev);
}

/* The hostile call's life: statuses (one of them markup), the transcript, Vapi tool calls with a
 * markup tool name, an error alert, the end with its reason, and the end-of-call report. */
async function hostileCall() {
  const bodies = [];
  const status = (st, ts, edit = () => {}) => interactly('55-callF-status-ongoing-web.json', X.id, X.caller, ts, (m) => {
    m.call.status = st;
    edit(m);
  });
  bodies.push(await status('ongoing', T0));
  bodies.push(await status(X.status, T0 + 500));
  bodies.push(await interactly('56-callF-conversation-unicode-html.json', X.id, X.caller, T0 + 5000, (m) => {
    m.messages = X.messages;
  }));
  const tools = await fixture('93-vapi-conversation-update-tools.json');
  tools.message.timestamp = T0 + 6000;
  tools.message.call.id = X.id;
  tools.message.call.customer = { number: X.caller };
  tools.message.messages = tools.message.messages.filter((m) => m.role === 'tool_calls' || m.role === 'tool_call_result');
  tools.message.messages[0].toolCalls[0].function.name = X.tool;
  tools.message.messages[1].name = X.tool;
  tools.message.messages[1].result = evil('tool-result');
  delete tools.message.messagesOpenAIFormatted;
  bodies.push(JSON.stringify(tools));
  bodies.push(await interactly('42-callD-error-llm-rate-limit.json', X.id, X.caller, T0 + 7000, (m) => {
    m.messages = X.messages;
    m.error = { ...X.error, retryable: false };
  }));
  bodies.push(await status('finished', T0 + 8000, (m) => {
    m.call.phoneCallStatusReason = X.endReason;
    m.call.callEndTriggerBy = X.endedBy;
  }));
  bodies.push(await interactly('21-callA-end-of-call-report.json', X.id, X.caller, T0 + 9000, (m) => {
    m.messages = X.messages;
    m.call.phoneCallStatusReason = X.endReason;
    m.call.callEndTriggerBy = X.endedBy;
    m.call.recording = { s3Bucket: 'bucket', path: X.report.recordingPath };
    m.recordingUrl = X.report.recordingUrl;
    m.analysis = {
      summary: X.report.summary,
      successEvaluation: X.report.successEvaluation,
      outcome: X.report.outcome,
      structuredData: { [X.report.dataKey]: X.report.dataValue },
    };
  }));
  return bodies;
}

/* ---- page probes ----------------------------------------------------------------------------- */

/* Records every CSP violation a page reports, from before its first script runs. */
async function recordViolations(context) {
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation',
      (e) => window.__csp.push(`${e.effectiveDirective} ${e.blockedURI}`));
  });
}

/* Dialogs (an alert() that ran) and uncaught errors of a page. */
function watch(page, into) {
  page.on('dialog', async (d) => {
    into.dialogs.push(`${d.type()}: ${d.message()}`);
    await d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => into.errors.push(String(e)));
}

function shows(page) {
  return page.evaluate(() => ({
    href: location.href,
    app: !!document.getElementById('app'),
    authNeeded: !!document.getElementById('auth-needed'),
    notice: (() => {
      const n = document.getElementById('auth-notice');
      return n && !n.hidden && n.offsetHeight > 0 ? n.textContent : null;
    })(),
    conn: document.getElementById('connText') ? document.getElementById('connText').textContent : null,
    calls: [...document.querySelectorAll('#callList .call-item')].map((li) => li.dataset.id),
    bubbles: [...document.querySelectorAll('#chat .bubble .text')].map((t) => t.textContent),
    text: document.documentElement.outerHTML,
  }));
}

/* Everything the dashboard shows of the selected call, as text and attribute values, plus what a
 * successful injection would leave behind: elements or on* attributes the dashboard never makes. */
function hostileView(page, id) {
  return page.evaluate((id) => {
    const text = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent);
    const li = [...document.querySelectorAll('#callList .call-item')].find((e) => e.dataset.id === id);
    const opt = [...document.getElementById('callSelect').options].find((o) => o.value === id);
    const all = [...document.querySelectorAll('*')];
    return {
      headId: document.getElementById('callHead').hidden ? null : document.getElementById('callId').textContent,
      headIdTitle: document.getElementById('callId').title,
      caller: document.getElementById('callCaller').textContent,
      callerTitle: document.getElementById('callCaller').title,
      reason: document.getElementById('callReason').hidden ? null : document.getElementById('callReason').textContent,
      reasonTitle: document.getElementById('callReason').title,
      listed: li ? {
        title: li.querySelector('.call-btn').title,
        caller: li.querySelector('.call-caller').textContent,
        callerTitle: li.querySelector('.call-caller').title,
      } : null,
      option: opt ? opt.text : null,
      docTitle: document.title,
      pills: text('#pills .pill-label'),
      pillTitles: [...document.querySelectorAll('#pills .pill')].map((p) => p.title),
      bubbles: [...document.querySelectorAll('#chat .bubble')].map((b) => ({
        role: b.dataset.role, meta: b.querySelector('.role').textContent, text: b.querySelector('.text').textContent,
      })),
      notes: text('#chat .note-text'),
      interrupted: text('#chat .interrupted-text'),
      alertTitles: text('#alerts .alert-title'),
      alertMsgs: text('#alerts .alert-msg'),
      alertNotes: text('#alerts .alert-note'),
      summary: text('#report .report-summary'),
      evalChip: text('#report .eval'),
      evalTitle: [...document.querySelectorAll('#report .eval')].map((e) => e.title),
      facts: [...document.querySelectorAll('#report dt, #report dd')].map((e) => e.textContent),
      factTitles: [...document.querySelectorAll('#report dd')].map((e) => e.title),
      onAttributes: all.flatMap((e) => [...e.attributes].filter((a) => /^on/i.test(a.name))
        .map((a) => `${e.tagName.toLowerCase()} ${a.name}`)),
      foreign: [...document.querySelectorAll('#app img, #app script, #app iframe, #app object, #app embed, #app a, ' +
        '#app b, #app form, #app math, #app svg:not(.brand-mark)')].map((e) => e.outerHTML.slice(0, 100)),
      scripts: [...document.scripts].map((s) => s.getAttribute('src')),
      pwned: window.__pwned === undefined ? null : String(window.__pwned),
      csp: window.__csp,
    };
  }, id);
}

/* ---- main ------------------------------------------------------------------------------------ */

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'liveevents-security-'));
  const daemon = new Daemon(BIN, { webhookPort: await freePort(), dashboardPort: await freePort(), arena: join(work, 'arena') });
  running = daemon;
  let browser = null;
  let other = null;
  const seen = { dialogs: [], errors: [] };
  const apiIds = async () => {
    const r = await httpJson(`${daemon.dashUrl}/api/calls`);   // with the bearer token
    assertEqual(r.status, 200, 'GET /api/calls with the bearer token');
    return r.body.calls.map((c) => c.id).sort();
  };
  try {
    if (!await tap.check('daemon starts', () => daemon.start())) return;
    const DASH = daemon.dashUrl;
    const COOKIE = `liveevents_${daemon.dashboardPort}`;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        `--host-resolver-rules=MAP ${REBOUND} 127.0.0.1`],
    });
    const fresh = async () => {
      const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
      await recordViolations(context);
      const page = await context.newPage();
      watch(page, seen);
      return { context, page };
    };

    await tap.check('the token: 43 base64url characters in ARENA.token, mode 0600; the start log gives the URL with it', async () => {
      assert(/^[A-Za-z0-9_-]{43}$/.test(daemon.token), `token read from ${daemon.tokenFile}: ${JSON.stringify(daemon.token)}`);
      assertEqual((await stat(daemon.tokenFile)).mode & 0o777, 0o600, 'token file mode');
      assert(daemon.output.includes(`/?token=${daemon.token}`), `no dashboard URL with the token in the log:\n${daemon.tail()}`);
    });

    await tap.check('a call for strangers not to see is stored', async () => {
      assertEqual(await daemon.post(await interactly('56-callF-conversation-unicode-html.json', SEED.id, SEED.caller, T0,
        (m) => { m.messages = [{ messageId: 's-1', role: 'user', text: SEED.text, timestamp: T0 }]; })), 200, 'the webhook');
      assertEqual(await apiIds(), [SEED.id], 'calls');
    });

    const noData = (s) => {
      for (const secret of [SEED.id, SEED.caller, SEED.text, daemon.token]) {
        assert(!s.text.includes(secret), `the page holds ${JSON.stringify(secret)}`);
      }
    };

    await tap.check('a fresh browser opening / gets the 401 sign-in notice, not the dashboard, and no call data', async () => {
      const { context, page } = await fresh();
      const requests = [];
      page.on('request', (r) => requests.push(r.url()));
      const css = page.waitForResponse((r) => r.url().endsWith('/app.css'));
      const res = await page.goto(DASH + '/');
      assertEqual(res.status(), 401, 'GET / without the token');
      const s = await shows(page);
      assert(s.authNeeded && !s.app, 'the page is not the sign-in notice');
      assert(/Open the dashboard URL/.test(await page.innerText('#auth-needed')), 'the notice does not say what to do');
      noData(s);
      assertEqual((await css).status(), 200, 'the notice is styled by the public app.css');
      assertEqual(requests.filter((u) => u.includes('/api/')), [], 'API requests of the notice page');
      // And this browser's own script cannot read the API either.
      const api = await page.evaluate(async () => {
        const r = await fetch('/api/calls');
        return { status: r.status, body: await r.text(), auth: r.headers.get('www-authenticate') };
      });
      assertEqual(api.status, 401, 'GET /api/calls without the cookie');
      assertEqual(JSON.parse(api.body).code, 'unauthorized', 'its code');
      assert(/^Bearer/.test(api.auth || ''), `WWW-Authenticate: ${api.auth}`);
      assert(!api.body.includes(SEED.id), 'the 401 answer holds call data');
      assertEqual(await context.cookies(), [], 'cookies after the notice');
      await context.close();
    });

    await tap.check('a wrong token URL gets the same notice and no cookie', async () => {
      const { context, page } = await fresh();
      const t = daemon.token;
      const wrong = [t.slice(0, -1) + (t.endsWith('A') ? 'B' : 'A'), 'x', ''];
      for (const w of wrong) {
        const res = await page.goto(`${DASH}/?token=${encodeURIComponent(w)}`);
        assertEqual(res.status(), 401, `GET /?token=${w}`);
        const s = await shows(page);
        assert(s.authNeeded && !s.app, `the page for token ${JSON.stringify(w)} is not the sign-in notice`);
        if (w) {
          // sent on to a page without it: the wrong token leaves the address bar and the history
          assertEqual(new URL(page.url()).search, '?signin=wrong-token', `the address after token ${JSON.stringify(w)}`);
          assert(await page.evaluate(() => /is not this dashboard's/.test(document.body.innerText)),
            'the notice says the token was wrong');
        }
        noData(s);
      }
      assertEqual(await context.cookies(), [], 'cookies after wrong tokens');
      await context.close();
    });

    // The signed-in browser of the next checks.
    const signed = await fresh();
    const tokenRequests = [];
    signed.page.on('request', (r) => tokenRequests.push({ url: r.url(), referer: r.headers().referer || null }));
    let pageResponse = null;
    let apiResponse = null;

    await tap.check('the token URL signs in: the page loads, shows the calls, and the token leaves the address bar', async () => {
      const api = signed.page.waitForResponse((r) => /\/api\/calls$/.test(r.url()));
      pageResponse = await signed.page.goto(daemon.pageUrl());
      assertEqual(pageResponse.status(), 200, 'GET /?token=T');
      apiResponse = await api;
      const s = await until('the seed call shown', () => shows(signed.page),
        (x) => x.calls.includes(SEED.id) && x.bubbles.includes(SEED.text));
      assertEqual(s.href, DASH + '/', 'location.href');
      assert(!s.text.includes(daemon.token), 'the token is in the page');
    });

    await tap.check('the cookie is HttpOnly and SameSite=Strict, and document.cookie does not show it', async () => {
      const cookies = await signed.context.cookies();
      assertEqual(cookies.map((c) => c.name), [COOKIE], 'cookies');
      const c = cookies[0];
      assertEqual([c.value, c.httpOnly, c.sameSite, c.path, c.domain], [daemon.token, true, 'Strict', '/', '127.0.0.1'],
        'value, HttpOnly, SameSite, path, domain');
      const doc = await signed.page.evaluate(() => document.cookie);
      assert(!doc.includes(daemon.token) && !doc.includes(COOKIE), `document.cookie shows it: ${doc}`);
    });

    await tap.check('no request after the token URL carries the token (no Referer, no token in a URL)', async () => {
      const [first, ...rest] = tokenRequests;
      assert(first && first.url.includes('token='), `the first request was ${first && first.url}`);
      assert(rest.length >= 3, `only ${rest.length} requests followed`);
      const leaks = rest.filter((r) => r.url.includes(daemon.token) || (r.referer || '').includes(daemon.token));
      assertEqual(leaks, [], 'requests carrying the token');
    });

    await tap.check('a reload is signed in by the cookie alone', async () => {
      const res = await signed.page.reload();
      assertEqual(res.status(), 200, 'reload');
      assert(!res.url().includes('token'), `reloaded ${res.url()}`);
      await until('the seed call shown again', () => shows(signed.page), (x) => x.calls.includes(SEED.id) && x.bubbles.includes(SEED.text));
    });

    await tap.check('the page, the API and the notice carry the CSP, nosniff and no-referrer', async () => {
      const noticeRes = await fetch(DASH + '/');   // no token: the sign-in notice
      await noticeRes.arrayBuffer();
      assertEqual(noticeRes.status, 401, 'the sign-in notice');
      const answers = [['the page', await pageResponse.allHeaders()], ['/api/calls', await apiResponse.allHeaders()],
        ['the sign-in notice', Object.fromEntries(noticeRes.headers)]];
      for (const [what, h] of answers) {
        const csp = h['content-security-policy'] || '';
        for (const want of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"]) {
          assert(csp.includes(want), `${what}: the CSP lacks ${want}: ${csp}`);
        }
        assert(!/unsafe-inline|unsafe-eval/.test(csp), `${what}: the CSP allows inline code: ${csp}`);
        assertEqual(h['x-content-type-options'], 'nosniff', `${what}: X-Content-Type-Options`);
        assertEqual(h['referrer-policy'], 'no-referrer', `${what}: Referrer-Policy`);
        assert(!Object.keys(h).some((k) => k.startsWith('access-control-')), `${what}: CORS headers`);
      }
    });

    await tap.check('the dashboard itself runs under the CSP without a single violation', async () => {
      assertEqual(await signed.page.evaluate(() => window.__csp), [], 'CSP violations while loading and following');
    });

    await tap.check('CSP: an inline script, an inline handler and eval put into the page do not run, and are reported', async () => {
      const r = await signed.page.evaluate(async () => {
        const s = document.createElement('script');
        s.textContent = 'window.__inline = "script"';
        document.body.append(s);       // an allowed script would have run by now
        const d = document.createElement('div');
        d.setAttribute('onclick', 'window.__handler = 1');
        document.body.append(d);
        d.click();                     // as would an allowed handler
        // From a timer, as page code would: DevTools lets code it evaluates itself eval freely.
        const evalRan = await new Promise((done) => setTimeout(() => {
          try {
            done(eval('"eval ran"'));   // eslint-disable-line no-eval
          } catch (e) {
            done(e.name);
          }
        }, 0));
        d.remove();
        s.remove();
        return { inline: window.__inline || null, handler: window.__handler || null, evalRan };
      });
      assertEqual(r, { inline: null, handler: null, evalRan: 'EvalError' }, 'what ran');
      // The browser reports each refusal as a securitypolicyviolation event, after the fact.
      const v = await until('violations reported', () => signed.page.evaluate(() => window.__csp),
        (x) => x.length >= 3);
      for (const want of ['script-src-elem inline', 'script-src-attr inline', 'script-src eval']) {
        assert(v.includes(want), `no "${want}" violation among ${JSON.stringify(v)}`);
      }
      await signed.page.evaluate(() => { window.__csp = []; });
    });

    await tap.check('the cookie cleared while the page is open: at its next request the page says how to sign in, and stops', async () => {
      const page = signed.page;
      assertEqual((await shows(page)).notice, null, 'the notice before');
      await signed.context.clearCookies();
      // The open stream does not ask again by itself: drop it (its worker is killed and restarted)
      // so that the page reconnects, now without the cookie.
      const pid = queryPid(daemon.proc.pid);
      assert(pid, 'no query worker found');
      process.kill(pid, 'SIGKILL');
      const s = await until('the sign-in notice', () => shows(page), (x) => x.notice !== null, 15000);
      assertEqual(s.notice.replace(/\s+/g, ' ').trim(),
        "Not signed in: open the dashboard URL with its token from the daemon's log (journalctl -u liveevents | grep token, or the terminal running scripts/run).",
        'the notice');
      assertEqual(s.conn, 'Not signed in', 'the connection indicator');
      // Stopped: a stream or a poller still going would ask again within 4 s (its longest retry).
      const asked = [];
      const onReq = (r) => { if (r.url().includes('/api/')) asked.push(r.url()); };
      page.on('request', onReq);
      await sleep(4500);
      page.off('request', onReq);
      assertEqual(asked, [], 'API requests after the notice');
      // The way back is the one the notice gives.
      await page.goto(daemon.pageUrl());
      const back = await until('signed in again', () => shows(page), (x) => x.calls.includes(SEED.id) && x.conn === 'Live');
      assertEqual(back.notice, null, 'the notice after signing in again');
    }, 40000);

    // A dashboard open before the hostile call comes: the call reaches it over the stream.
    const victim = await fresh();
    await victim.page.goto(daemon.pageUrl());

    await tap.check('hostile webhooks (id, caller, statuses, messages, role, tool names, error, end reason, report) are accepted', async () => {
      await until('the open dashboard live', () => shows(victim.page), (x) => x.conn === 'Live' && x.calls.includes(SEED.id));
      for (const body of await hostileCall()) assertEqual(await daemon.post(body), 200, `webhook ${body.slice(0, 80)}`);
      const d = await httpJson(`${DASH}/api/calls/${encodeURIComponent(X.id)}`);
      assertEqual(d.status, 200, 'the hostile call in the API');
      // The API keeps them as they were sent: the page below must show exactly these.
      assertEqual([d.body.customer, d.body.ended_by, d.body.ended_reason], [X.caller, X.endedBy, X.endReason],
        'caller, ended_by and ended_reason in the API');
    });

    /* What an injection would leave: markup elements, on* attributes, a script besides app.js.
       Injected handlers would also be stopped by the CSP, so the last checks alone prove little; a
       violation would show an injection the others missed. */
    const nothingRan = (v, eq) => {
      eq('elements the dashboard never makes', v.foreign, []);
      eq('on* attributes', v.onAttributes, []);
      eq('scripts', v.scripts, ['app.js']);
      eq('window.__pwned', v.pwned, null);
      eq('CSP violations', v.csp, []);
      eq('dialogs', seen.dialogs, []);
    };

    /* Markup shown as text in every place the dashboard puts a payload string. */
    const checkHostile = async (page, how) => {
      const v = await until(`the hostile call shown whole (${how})`, () => hostileView(page, X.id),
        (x) => x.headId === X.id && x.bubbles.length === 4 && x.facts.length > 0 && x.alertTitles.length > 0 &&
          x.reason !== null && x.interrupted.length > 0);
      const fail = [];
      const eq = (what, a, b) => { if (JSON.stringify(a) !== JSON.stringify(b)) fail.push(`${what}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`); };
      const has = (what, list, s) => { if (!list.some((x) => x.includes(s))) fail.push(`${what} lacks ${JSON.stringify(s)}: ${JSON.stringify(list)}`); };
      eq('header id', [v.headId, v.headIdTitle], [X.id, X.id]);
      eq('header caller', [v.caller, v.callerTitle], [X.caller, X.caller]);
      eq('list entry (tooltip: the id; caller and its tooltip)', v.listed, { title: X.id, caller: X.caller, callerTitle: X.caller });
      if (!v.option || !v.option.startsWith(X.caller + ' · ')) fail.push(`selector option: ${JSON.stringify(v.option)}`);
      eq('end reason', v.reason, `ended by ${X.endedBy} · ${X.endReason}`);
      has('end reason tooltip', [v.reasonTitle], X.endReason);
      has('status pills', v.pills, X.status);
      has('status pill tooltips', v.pillTitles, X.status);
      eq('bubbles', v.bubbles, [
        { role: 'user', meta: 'user', text: X.messages[0].text },
        { role: 'assistant', meta: 'assistant', text: X.messages[1].text },
        { role: X.role, meta: X.role, text: X.messages[2].text },
        { role: 'user', meta: 'user', text: X.messages[4].text },
      ]);
      eq('tool note', v.notes, [X.messages[3].text]);
      eq('interrupted reply', v.interrupted, [X.messages[4].skippedAssistantMessages[0].text]);
      eq('alert title', v.alertTitles, [`${X.error.type} · ${X.error.code}`]);
      eq('alert message', v.alertMsgs, [X.error.message]);
      has('alert provider', v.alertNotes, X.error.provider);
      eq('report summary', v.summary, [X.report.summary]);
      eq('evaluation chip', [v.evalChip, v.evalTitle], [[X.report.successEvaluation], [`success evaluation: ${X.report.successEvaluation}`]]);
      for (const s of [X.report.outcome, X.report.dataKey, X.report.dataValue, X.report.recordingPath, X.report.recordingUrl,
        X.endReason, X.endedBy]) has('report facts', v.facts, s);
      has('report fact tooltips', v.factTitles, `endedBy: ${X.endedBy}`);
      if (/[<>]/.test(v.docTitle)) fail.push(`document title: ${v.docTitle}`);
      nothingRan(v, eq);
      assert(fail.length === 0, `${how}:\n  ${fail.join('\n  ')}`);
    };

    await tap.check('markup in webhooks shows as literal text in the list, selector, header, tooltips, chat, alerts and report (live)', async () => {
      await checkHostile(victim.page, 'arrived over the stream');
    });

    await tap.check('... and the same in a page loaded afresh, picking the call by its link (from the API, not the stream)', async () => {
      await victim.page.goto('about:blank');
      await victim.page.goto(`${DASH}/#call=${encodeURIComponent(X.id)}`);
      await checkHostile(victim.page, 'after a reload');
      // The tool names and results are not shown at all (the API does not carry them): make sure.
      const html = await victim.page.evaluate(() => document.documentElement.outerHTML + document.body.innerText);
      assert(!html.includes('tool-name') && !html.includes('tool-result'), 'a tool name or result reached the page');
    });

    await tap.check('... and in the raw events view: every webhook body as literal text, nothing in it runs', async () => {
      const page = victim.page;
      // One more, of a type the daemon does not know: its heading shows a message.type made of markup.
      const odd = JSON.parse(await interactly('55-callF-status-ongoing-web.json', X.id, X.caller, T0 + 9500, () => {}));
      odd.message.type = evil('type');
      odd.message.timestamp = evil('timestamp');
      assertEqual(await daemon.post(JSON.stringify(odd)), 200, 'the webhook of an unknown type');
      const api = await httpJson(`${DASH}/api/conversations/${encodeURIComponent(X.id)}`);
      assertEqual(api.status, 200, 'the hostile call in the tutorial\'s shape');
      const events = api.body.events;
      assertEqual(events.length, (await hostileCall()).length + 1, 'raw events kept');
      await page.click('#rawBtn');
      await until('the raw events listed', () => page.evaluate(() => document.querySelectorAll('#rawList .raw-event').length),
        (n) => n === events.length);
      for (let i = 1; i <= events.length; i += 1) {
        await page.click(`#rawList .raw-event:nth-child(${i}) > summary`);
      }
      const r = await until('every event unfolded', () => page.evaluate(() => ({
        types: [...document.querySelectorAll('#rawList .raw-type')].map((e) => e.textContent),
        typeTitles: [...document.querySelectorAll('#rawList .raw-type')].map((e) => e.title),
        times: document.querySelectorAll('#rawList .raw-event:first-child .raw-time').length,
        pres: [...document.querySelectorAll('#rawList .raw-json')].map((e) => e.textContent),
        tags: [...new Set([...document.querySelectorAll('#rawPanel *')].map((e) => e.tagName.toLowerCase()))].sort(),
      })), (x) => x.pres.length === events.length);
      const fail = [];
      const eq = (what, a, b) => { if (JSON.stringify(a) !== JSON.stringify(b)) fail.push(`${what}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`); };
      eq('the JSON shown, newest first', r.pres, events.slice().reverse().map((ev) => JSON.stringify(ev, null, 2)));
      eq('the newest heading: its message.type', [r.types[0], r.typeTitles[0]], [evil('type'), `message.type: ${evil('type')}`]);
      eq('a message.timestamp that is no time', r.times, 0);
      const all = r.pres.join('\n');
      for (const tag of ['caller', 'user-text', 'assistant-text', 'tool-text', 'interrupted', 'endedBy', 'endReason',
        'error-type', 'error-code', 'error-message', 'provider', 'summary', 'evaluation', 'outcome', 'data-key',
        'data-value', 'recording', 'tool-name', 'tool-result', 'type', 'timestamp']) {
        // Each markup payload, as JSON writes it: the script element verbatim, the img with its quotes escaped.
        const script = `<script>window.__pwned='${tag}'</script>`;
        const img = JSON.stringify(`<img src=x onerror="window.__pwned='${tag}'">`).slice(1, -1);
        if (!all.includes(script) || !all.includes(img)) fail.push(`the raw view lacks the ${tag} payload as text`);
      }
      for (const s of [X.id, X.status, X.role, X.report.recordingUrl]) {
        if (!all.includes(JSON.stringify(s).slice(1, -1))) fail.push(`the raw view lacks ${JSON.stringify(s)} as text`);
      }
      eq('elements in the raw view', r.tags, ['button', 'details', 'div', 'h2', 'p', 'pre', 'span', 'summary', 'time']);
      // The whole page, as for the views above: nothing injected, nothing ran.
      nothingRan(await hostileView(page, X.id), eq);
      assert(fail.length === 0, `raw events view:\n  ${fail.join('\n  ')}`);
    });

    await tap.check('a bidi control in a call id or caller shows as U+FFFD: the name cannot be made to read as another', async () => {
      const B = { id: BIDI_ID, caller: '+1555\u202E0100' };
      assertEqual(await daemon.post(await interactly('56-callF-conversation-unicode-html.json', B.id, B.caller, T0 + 7000,
        (m) => { m.messages = [{ messageId: 'b-1', role: 'user', text: 'right to left: \u202Bשלום\u202C', timestamp: T0 + 7000 }]; })),
      200, 'the webhook');
      const page = victim.page;
      await page.goto(`${DASH}/#call=${encodeURIComponent(B.id)}`);
      const v = await until('the bidi call shown', () => page.evaluate((id) => {
        const li = [...document.querySelectorAll('#callList .call-item')].find((x) => x.dataset.id === id);
        const bubble = document.querySelector('#chat .bubble .text');
        return li && {
          short: li.querySelector('.call-short').textContent, title: li.querySelector('.call-btn').title,
          caller: li.querySelector('.call-caller').textContent, headId: document.getElementById('callId').textContent,
          headCaller: document.getElementById('callCaller').textContent,
          option: [...document.querySelectorAll('#callSelect option')].map((o) => o.textContent).find((t) => t.includes('txt')),
          text: bubble ? bubble.textContent : null,
        };
      }, B.id), (x) => x && x.headId && x.text);
      const shown = [v.short, v.title, v.caller, v.headId, v.headCaller, v.option];
      assert(shown.every((t) => t && !t.includes('\u202E') && t.includes('\uFFFD')), `names shown: ${JSON.stringify(shown)}`);
      assertEqual([v.headId, v.headCaller], ['WC-bidi-\uFFFDtxt.exe', '+1555\uFFFD0100'], 'the header');
      assertEqual(v.text, 'right to left: \u202Bשלום\u202C', 'message text keeps its bidi marks (right-to-left languages need them)');
    });

    // Another origin: a page on another port of the same host, in the browser that holds the cookie.
    const OPORT = await freePort();
    const OTHER = `http://127.0.0.1:${OPORT}`;
    other = createServer((req, res) => {
      const pages = {
        '/': '<!doctype html><title>another origin</title>' +
          `<form id="f" method="post" action="${DASH}/api/conversations"><input name="confirm" value="yes"></form>`,
        '/frame': '<!doctype html><title>framing</title>' +
          `<iframe id="fr" src="${DASH}/" onload="window.__frameLoaded = true"></iframe>`,
      };
      if (!pages[req.url]) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(pages[req.url]);
    });
    await new Promise((r) => other.listen(OPORT, '127.0.0.1', r));
    const before = await apiIds();
    const refusedCrossOrigin = async () => {
      const r = await httpJson(`${DASH}/metrics`);
      const m = /^liveevents_dashboard_refused_total\{reason="cross_origin"\} (\d+)/m.exec(r.text);
      return m ? Number(m[1]) : null;
    };

    await tap.check('another origin holding the cookie cannot read the API: no CORS, the fetch fails', async () => {
      const p = await victim.context.newPage();
      watch(p, seen);
      await p.goto(OTHER + '/');
      const r = await p.evaluate(async (url) => {
        try {
          const res = await fetch(url, { credentials: 'include' });
          return `read ${res.status}: ${(await res.text()).slice(0, 100)}`;
        } catch (e) {
          return e.name;
        }
      }, `${DASH}/api/conversations`);
      assertEqual(r, 'TypeError', 'the cross-origin read');
      await p.close();
    });

    await tap.check('another origin\'s DELETE fails at its preflight and clears nothing', async () => {
      const p = await victim.context.newPage();
      watch(p, seen);
      await p.goto(OTHER + '/');
      const r = await p.evaluate(async (url) => {
        try {
          const res = await fetch(url, { method: 'DELETE', credentials: 'include' });
          return `answered ${res.status}`;
        } catch (e) {
          return e.name;
        }
      }, `${DASH}/api/conversations`);
      assertEqual(r, 'TypeError', 'the cross-origin DELETE');
      assertEqual(await apiIds(), before, 'calls after it');
      await p.close();
    });

    await tap.check('another origin\'s no-cors POST reaches the daemon with the cookie and is refused (403 cross_origin)', async () => {
      const p = await victim.context.newPage();
      watch(p, seen);
      await p.goto(OTHER + '/');
      const n0 = await refusedCrossOrigin();
      const answered = p.waitForResponse((r) => r.url() === `${DASH}/api/conversations` && r.request().method() === 'POST');
      const r = await p.evaluate(async (url) => {
        const res = await fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include', body: 'x' });
        return res.type;   // opaque: the page learns nothing of the answer
      }, `${DASH}/api/conversations`);
      assertEqual(r, 'opaque', 'the response type seen by the page');
      assertEqual((await answered).status(), 403, 'the daemon\'s answer');
      assertEqual(await refusedCrossOrigin(), n0 + 1, 'cross-origin refusals counted');
      assertEqual(await apiIds(), before, 'calls after it');
      await p.close();
    });

    await tap.check('another origin\'s form POST is refused (403 cross_origin) and clears nothing', async () => {
      const p = await victim.context.newPage();
      watch(p, seen);
      await p.goto(OTHER + '/');
      const [res] = await Promise.all([p.waitForNavigation(), p.evaluate(() => document.getElementById('f').submit())]);
      assertEqual(res.status(), 403, 'the form POST');
      assertEqual(JSON.parse(await res.text()).code, 'cross_origin', 'its code');
      assertEqual(await apiIds(), before, 'calls after it');
      await p.close();
    });

    await tap.check('another origin cannot frame the dashboard (frame-ancestors \'none\')', async () => {
      const p = await victim.context.newPage();
      watch(p, seen);
      const dash = p.waitForResponse((r) => r.url() === `${DASH}/`);
      await p.goto(OTHER + '/frame');
      assertEqual((await dash).status(), 200, 'the framed page was served (the cookie went with it)');
      // The browser refuses to render it: the frame loads an error page instead.
      await p.waitForFunction(() => window.__frameLoaded === true);
      const framed = await Promise.all(p.frames().filter((f) => f !== p.mainFrame())
        .map((f) => f.evaluate(() => !!document.getElementById('app')).catch(() => false)));
      assertEqual(framed, [false], 'frames holding the dashboard');
      await p.close();
    });

    await tap.check(`a DNS-rebound name (${REBOUND}) gets 421, even with the token URL, and no cookie`, async () => {
      const { context, page } = await fresh();
      const base = `http://${REBOUND}:${daemon.dashboardPort}`;
      const res = await page.goto(`${base}/?token=${daemon.token}`);
      assertEqual(res.status(), 421, 'the token URL by the rebound name');
      assert(!(await page.content()).includes(SEED.id), 'the refusal holds call data');
      const api = await page.goto(`${base}/api/calls`);
      assertEqual([api.status(), JSON.parse(await api.text()).code], [421, 'host_not_allowed'], 'the API by the rebound name');
      assertEqual(await context.cookies(), [], 'cookies');
      await context.close();
    });

    await tap.check('the daemon logged each refusal of these browsers with its path alone, and the token only at start', async () => {
      const lines = daemon.output.split('\n');
      const refusals = lines.filter((l) => l.includes('refused a dashboard request'));
      assert(refusals.length >= 5, `only ${refusals.length} refusals logged:\n${daemon.tail()}`);
      const odd = refusals.filter((l) => !/ for \/[A-Za-z0-9/._-]*: \d{3} /.test(l));
      assert(odd.length === 0, `refusal lines that are not "for PATH: CODE":\n${odd.join('\n')}\n(the whole log:\n${daemon.output})`);
      // The rebound name was asked for the token URL itself: the token must not reach the log then.
      assert(daemon.output.split(daemon.token).length - 1 <= 1, `the token is logged more than once:\n${daemon.output}`);
    });

    await tap.check('after all of it every call is still there, no dialog opened and no page error', async () => {
      assertEqual(await apiIds(), [SEED.id, X.id, BIDI_ID].sort(), 'calls');
      assertEqual(seen.dialogs, [], 'dialogs');
      assertEqual(seen.errors, [], 'page errors');
    });
  } finally {
    if (browser) await browser.close().catch(() => {});
    if (other) other.close();
    const ex = await daemon.stop().catch((e) => ({ error: String(e) }));
    if (tap.failed) tap.comment('daemon output (tail):\n' + daemon.tail());
    if (ex && (ex.forced || (ex.code !== 0 && ex.code !== null) || ex.error)) tap.comment(`daemon exit: ${JSON.stringify(ex)}`);
    await rm(work, { recursive: true, force: true }).catch(() => {});
  }
}

await main().catch((e) => tap.fail('the test itself failed', e));
process.exit(tap.end());
