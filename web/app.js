/* liveevents dashboard.
 *
 * Two halves that only talk through plain data:
 *   - the data layer (Api, StreamFeed, PollingFeed) gets JSON from the daemon and hands it on:
 *     StreamFeed follows /api/stream (each change pushed as it is committed, resumed after a drop
 *     with Last-Event-ID) and falls back to PollingFeed when the stream cannot be opened; a 401
 *     from the API (not signed in) stops both and shows #auth-notice;
 *   - the controller/view keeps what is on screen in sync with what arrives, incrementally; the
 *     raw events view fetches a call's webhook bodies (GET /api/conversations/{id}) only while it
 *     is open, at most once a second.
 *
 * Every string that comes from the API is put on the page as text (textContent, createTextNode,
 * option.text, title): never as markup. This file never touches innerHTML.
 */
'use strict';

// Opened with its token (/?token=...): the daemon has set the cookie, so the token leaves the
// address bar, the history and anything a screenshot or a shared screen would show.
if (new URLSearchParams(location.search).has('token')) {
  history.replaceState(null, '', location.pathname + location.hash);
}

(() => {
  const POLL_MS = 1000;
  const MAX_RETRY_MS = 4000;
  const HIDDEN_POLL_MS = 5000;  // a background tab polls less often
  const BOTTOM_SLACK_PX = 8;
  const CLAMP_CHARS = 4000;     // longer messages are shown folded, with a "show all" toggle
  const SLOW_REPLY_MS = 3000;   // an assistant reply slower than this gets a latency hint
  const STREAM_FAILS_BEFORE_POLLING = 3;  // stream attempts that never opened before we poll instead
  const MAX_LISTED = 1000;     // calls in the list; the counter says how many there are in all
  const RAW_REFRESH_MS = 1000;  // the open raw events view fetches a busy call at most this often

  /* ------------------------------------------------------------------------------------------ */
  /* Data layer                                                                                 */
  /* ------------------------------------------------------------------------------------------ */

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  const Api = {
    async request(url, options) {
      const res = await fetch(url, Object.assign({
        credentials: 'same-origin',
        cache: 'no-cache', // revalidate every time: an unchanged list comes back as a bodyless 304
        headers: { Accept: 'application/json' },
      }, options || {}));
      let body = null;
      try {
        body = await res.json();
      } catch (_) {
        body = null;
      }
      // 401: the access cookie is missing or no longer valid (cleared, another token after the
      // daemon made a new one). No retry can fix that, only reopening the URL with the token.
      if (res.status === 401) signedOut();
      return { ok: res.ok, status: res.status, body };
    },
    /* The call list, a page at a time, up to MAX_LISTED calls (the most recently active). */
    async calls() {
      const first = await Api.request('api/calls');
      if (!first.ok || !first.body || !Array.isArray(first.body.calls)) return first;
      let body = first.body;
      while (body.next !== null && body.next !== undefined && body.calls.length < MAX_LISTED) {
        const r = await Api.request('api/calls?before=' + encodeURIComponent(body.next));
        if (!r.ok || !r.body || !Array.isArray(r.body.calls) || r.body.generation !== body.generation) break;
        body = Object.assign({}, body, { calls: body.calls.concat(r.body.calls), next: r.body.next });
      }
      return { ok: true, status: first.status, body };
    },
    call(id) {
      return Api.request('api/calls/' + encodeURIComponent(id));
    },
    /* One call in the tutorial's shape: its "events" are the raw webhook bodies as received
       (secrets redacted), oldest first; those that aged out of the arena are absent. */
    conversation(id) {
      return Api.request('api/conversations/' + encodeURIComponent(id));
    },
    reset() {
      return Api.request('api/conversations', { method: 'DELETE' });
    },
  };

  /* Follows GET /api/stream. handlers: onSnapshot(body) with the call list whenever the stream
     (re)starts from scratch, onCall(data) for each change, onGone(id), onConnection(up, reason).
     The browser's EventSource reconnects by itself and sends Last-Event-ID, so a drop or a daemon
     restart costs only what was missed; a "reset" (another generation, or too far behind) makes
     us fetch the list again. A stream that cannot be opened hands over to polling. */
  class StreamFeed {
    constructor(handlers, fallback) {
      this.handlers = handlers;
      this.fallback = fallback;
      this.source = null;
      this.opened = false;
      this.fails = 0;
      this.polling = false;
      this.stopped = false;
      this.listToken = 0;
    }
    start() {
      if (typeof EventSource !== 'function') {
        this.poll('this browser has no EventSource');
        return;
      }
      const src = new EventSource('api/stream');
      this.source = src;
      src.onopen = () => {
        this.opened = true;
        this.fails = 0;
        this.handlers.onConnection(true, '');
      };
      src.onerror = () => {
        if (src.readyState === EventSource.CLOSED || (!this.opened && ++this.fails >= STREAM_FAILS_BEFORE_POLLING)) {
          // Refused (not a stream, too many streams) or never reachable: poll instead.
          src.close();
          this.poll('the event stream cannot be opened');
          return;
        }
        this.handlers.onConnection(false, 'reconnecting to the event stream');
      };
      const on = (type, fn) => src.addEventListener(type, (ev) => {
        let data = null;
        try {
          data = JSON.parse(ev.data);
        } catch (_) {
          return;
        }
        try {
          fn(data);
        } catch (e) {
          console.error('liveevents: cannot show the update', e);
        }
      });
      // A fresh start, a catch-up that ended, or a new generation: the list from the API, once.
      on('hello', () => this.list());
      on('synced', () => this.list());
      on('reset', () => this.list());
      on('call', (d) => this.handlers.onCall(d));
      on('gone', (d) => this.handlers.onGone(d.id));
    }
    /* For good (signed out): the stream is closed, no list is retried, polling ends. */
    stop() {
      this.stopped = true;
      this.listToken += 1;
      if (this.source) this.source.close();
      this.source = null;
      this.fallback.stop();
    }
    poll(reason) {
      if (this.polling || this.stopped) return;
      this.polling = true;
      this.source = null;
      console.info('liveevents: polling: ' + reason);
      this.fallback.start();
    }
    async list() {
      const token = ++this.listToken;
      const r = await Api.calls().catch(() => null);
      if (token !== this.listToken) return;   // a later start superseded this one
      if (!r || !r.ok || !r.body || !Array.isArray(r.body.calls)) {
        if (this.stopped) return;
        setTimeout(() => { if (token === this.listToken) this.list(); }, MAX_RETRY_MS);
        return;
      }
      this.handlers.onSnapshot(r.body);
    }
    now() {
      if (this.stopped) return;
      if (this.polling) this.fallback.now();
      else this.list();
    }
    invalidate() {
      if (this.polling) this.fallback.invalidate();
      else this.listToken += 1;
    }
    get mode() {
      return this.polling ? 'polling' : 'stream';
    }
  }

  function errorText(r) {
    if (r && r.body && typeof r.body.error === 'string' && r.body.error) return r.body.error;
    return 'HTTP ' + (r ? r.status : '?');
  }

  /* Polls the call summaries. handlers: onSnapshot(body) when something changed, onIdle() when
     nothing did, onConnection(up, reason, denied) after every attempt. */
  class PollingFeed {
    constructor(handlers) {
      this.handlers = handlers;
      this.timer = 0;
      this.busy = false;
      this.again = false;
      this.failures = 0;
      this.lastKey = null;
      this.epoch = 0;       // bumped by invalidate(): answers to older requests are dropped
      this.stopped = false;
    }
    start() {
      this.schedule(0);
    }
    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
    }
    /* Poll as soon as possible (after a user action). */
    now() {
      if (this.busy) {
        this.again = true;
        return;
      }
      this.schedule(0);
    }
    /* Forget what was seen so the next answer is delivered even if unchanged, and drop the
       answer of a request already under way (it may describe the state before a reset). */
    invalidate() {
      this.lastKey = null;
      this.epoch += 1;
    }
    schedule(ms) {
      if (this.stopped) return;   // also ends the loop of a tick answered after stop()
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.tick(), ms);
    }
    async tick() {
      if (this.busy) return;
      this.busy = true;
      let delay = document.hidden ? HIDDEN_POLL_MS : POLL_MS;
      let body = null;
      const epoch = this.epoch;
      try {
        const r = await Api.calls();
        if (!r.ok || !r.body || !Array.isArray(r.body.calls)) {
          throw new ApiError(r.status, errorText(r));
        }
        body = r.body;
        this.failures = 0;
      } catch (e) {
        this.failures += 1;
        delay = Math.min(MAX_RETRY_MS, POLL_MS * this.failures);
        this.handlers.onConnection(false, e instanceof ApiError ? e.message : 'daemon unreachable',
          e instanceof ApiError && (e.status === 401 || e.status === 403));
      }
      if (body && epoch !== this.epoch) {
        body = null;
        delay = 0;
      }
      if (body) {
        try {
          this.handlers.onConnection(true, '');
          const key = String(body.generation) + ':' + String(body.seq);
          if (key !== this.lastKey) {
            this.lastKey = key;
            this.handlers.onSnapshot(body);
          } else if (this.handlers.onIdle) {
            this.handlers.onIdle();
          }
        } catch (e) {
          console.error('liveevents: cannot show the update', e);
        }
      }
      this.busy = false;
      if (this.again) {
        this.again = false;
        delay = 0;
      }
      this.schedule(delay);
    }
  }

  /* ------------------------------------------------------------------------------------------ */
  /* Small helpers                                                                              */
  /* ------------------------------------------------------------------------------------------ */

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function isNum(v) {
    return typeof v === 'number' && Number.isFinite(v);
  }

  function str(v) {
    return typeof v === 'string' ? v : '';
  }

  function fmtTime(ms) {
    return isNum(ms) ? new Date(ms).toLocaleTimeString() : '';
  }

  function fmtDateTime(ms) {
    return isNum(ms) ? new Date(ms).toLocaleString() : '';
  }

  function fmtDuration(ms) {
    if (!isNum(ms) || ms < 0) return '';
    if (ms < 1000) return Math.round(ms) + ' ms';
    const s = ms / 1000;
    if (s < 60) return (Math.round(s * 10) / 10).toLocaleString() + ' s';
    const total = Math.round(s);
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const sec = total % 60;
    if (h) return h + ' h ' + m + ' min';
    return m + ' min ' + sec + ' s';
  }

  function fmtCost(v) {
    if (!isNum(v)) return '';
    const digits = Math.abs(v) < 1 ? 4 : 2;
    return '$' + v.toFixed(digits);
  }

  /* Call ids and callers are names a sender picks: a bidirectional control in one (U+202E) would
     make it read as something else ("XSS-exe.txt"), as in the logs, so each shows as U+FFFD.
     Message text keeps them: right-to-left languages need them. */
  const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
  function plainName(s) {
    return String(s).replace(BIDI_CONTROLS, '\uFFFD');
  }

  function shortId(id) {
    const p = plainName(id);
    return p.length > 20 ? p.slice(0, 10) + '…' + p.slice(-6) : p;
  }

  function plural(n, one, many) {
    return n + ' ' + (n === 1 ? one : many);
  }

  /* Vapi and Interactly use different words for the same moments: keep the raw value, label it. */
  const STATUS_LABEL = { 'in-progress': 'ongoing', ended: 'finished' };
  const STATUS_TONE = {
    initiated: 'wait', queued: 'wait', scheduled: 'wait', ringing: 'wait',
    ongoing: 'live', 'in-progress': 'live',
    forwarded: 'fwd', forwarding: 'fwd',
    finished: 'done', ended: 'done', completed: 'done',
    failed: 'bad', busy: 'bad', 'no-answer': 'bad', canceled: 'bad', cancelled: 'bad',
  };

  function statusLabel(s) {
    return Object.prototype.hasOwnProperty.call(STATUS_LABEL, s) ? STATUS_LABEL[s] : s;
  }

  function statusTone(s) {
    return Object.prototype.hasOwnProperty.call(STATUS_TONE, s) ? STATUS_TONE[s] : 'other';
  }

  /* Which side a role goes to. Tool and system rows are notes, not bubbles. */
  function roleKind(role) {
    if (role === 'user' || role === 'customer') return 'user';
    if (role === 'assistant' || role === 'bot') return 'assistant';
    if (role === 'system' || role === 'tool' || role === 'tool_calls' || role === 'tool_call_result' ||
        role === 'function') return 'note';
    return 'other';
  }

  const ENDED_BY = { user: 'caller', customer: 'caller', bot: 'assistant', assistant: 'assistant', system: 'system' };

  /* ------------------------------------------------------------------------------------------ */
  /* State                                                                                      */
  /* ------------------------------------------------------------------------------------------ */

  const state = {
    generation: null,
    streamGeneration: null, // of the changes the stream brought before the first list
    seq: null,
    calls: [],            // summaries, newest (highest first_seq) first
    byId: new Map(),
    selectedId: null,
    follow: true,         // pick the newest call until the user picks one
    paused: false,
    pendingWhilePaused: 0,
    pendingSnapshot: null, // the latest summaries that arrived while paused
    detail: null,         // latest detail fetched for selectedId
    connected: null,      // null until the first answer
    connReason: '',
    denied: false,        // the API answered 403 to polling
    signedOut: false,     // the API answered 401: the access cookie is missing or stale; for good
    cleared: false,       // the user just reset: say so in the empty state
  };

  /* What is on screen for the transcript, so updates can be applied incrementally. */
  const view = {
    callId: null,
    generation: null,
    lastSeq: null,
    firstSeq: null,
    entries: new Map(),   // message key -> { row, skippedSig }
    unseen: 0,
    stick: true,          // the chat is scrolled to the bottom
    listKey: '',
  };

  /* ------------------------------------------------------------------------------------------ */
  /* Connection / pause indicator                                                               */
  /* ------------------------------------------------------------------------------------------ */

  function renderIndicator() {
    const conn = $('conn');
    const text = $('connText');
    let mode;
    let label;
    if (state.signedOut) {
      mode = 'down';
      label = 'Not signed in';
    } else if (state.connected === false && state.denied) {
      mode = 'down';
      label = 'Access denied · reload the page';
    } else if (state.connected === false) {
      mode = 'down';
      label = state.paused ? 'Paused · reconnecting…' : 'Reconnecting…';
    } else if (state.paused) {
      mode = 'paused';
      label = state.pendingWhilePaused ? 'Paused · updates waiting' : 'Paused';
    } else if (state.connected === null) {
      mode = 'connecting';
      label = 'Connecting…';
    } else {
      mode = 'live';
      label = 'Live';
    }
    conn.dataset.state = mode;
    text.textContent = label;
    conn.title = state.signedOut ? 'The daemon no longer accepts this page\u2019s access cookie'
      : mode === 'down' && state.connReason ? 'Cannot reach the daemon: ' + state.connReason
      : mode === 'paused' ? 'Updates are paused; press Resume to catch up'
        : mode === 'live' ? 'Following the daemon live' : '';

    const btn = $('pauseBtn');
    btn.setAttribute('aria-pressed', state.paused ? 'true' : 'false');
    btn.title = state.paused ? 'Show the current state and follow live again (P)' : 'Stop updating the page (P)';
    $('pauseLabel').textContent = state.paused ? 'Resume' : 'Pause';
    $('pauseIcon').textContent = state.paused ? '▶' : '❚❚';
  }

  /* Called on any 401. Everything stops (stream, polling, list retries) rather than hammer the
     daemon with requests that cannot succeed, and the page says how to get back in. What is on
     screen stays: it was shown to this browser already, and it helps to see which call was open. */
  function signedOut() {
    if (state.signedOut) return;
    state.signedOut = true;
    feed.stop();
    $('auth-notice').hidden = false;
    renderIndicator();
  }

  function showBanner(message) {
    $('bannerText').textContent = message;
    $('banner').hidden = false;
  }

  function hideBanner() {
    $('banner').hidden = true;
    $('bannerText').textContent = '';
  }

  /* ------------------------------------------------------------------------------------------ */
  /* Call list                                                                                  */
  /* ------------------------------------------------------------------------------------------ */

  const listItems = new Map();    // id -> { li, btn, parts, sig }
  const selectOptions = new Map();  // id -> option

  function callerOf(c) {
    return typeof c.customer === 'string' && c.customer !== '' ? plainName(c.customer) : 'Unknown caller';
  }

  function summarySig(c) {
    return [c.last_seq, c.status, c.ended, c.customer, c.messages, c.alerts, c.report].join('\u0001');
  }

  function buildListItem(id) {
    const li = el('li', 'call-item');
    li.dataset.id = id;
    const btn = el('button', 'call-btn');
    btn.type = 'button';
    btn.title = plainName(id);
    const top = el('span', 'call-top');
    const caller = el('span', 'call-caller');
    caller.dir = 'auto';
    const time = el('time', 'call-time');
    top.append(caller, time);
    const idLine = el('code', 'call-short', shortId(id));
    const bottom = el('span', 'call-bottom');
    const status = el('span', 'chip');
    const ended = el('span', 'chip chip-ended', 'ended');
    const msgs = el('span', 'call-msgs');
    const alerts = el('span', 'call-alerts');
    const report = el('span', 'call-report', 'report');
    bottom.append(status, ended, msgs, alerts, report);
    btn.append(top, idLine, bottom);
    li.append(btn);
    btn.addEventListener('click', () => selectCall(id, true));
    return { li, btn, parts: { caller, time, status, ended, msgs, alerts, report }, sig: '' };
  }

  function updateListItem(item, c) {
    const sig = summarySig(c);
    if (sig === item.sig) return;
    item.sig = sig;
    const p = item.parts;
    p.caller.textContent = callerOf(c);
    p.caller.title = callerOf(c);
    p.time.textContent = fmtTime(c.last_activity);
    p.time.title = isNum(c.last_activity) ? 'Last activity ' + fmtDateTime(c.last_activity) : '';
    if (typeof c.status === 'string' && c.status !== '') {
      p.status.hidden = false;
      p.status.textContent = statusLabel(c.status);
      p.status.title = 'status: ' + c.status;
      p.status.className = 'chip tone-' + statusTone(c.status);
    } else {
      p.status.hidden = true;
    }
    p.ended.hidden = !c.ended;
    const n = isNum(c.messages) ? c.messages : 0;
    p.msgs.textContent = plural(n, 'msg', 'msgs');
    const a = isNum(c.alerts) ? c.alerts : 0;
    p.alerts.hidden = a === 0;
    p.alerts.textContent = '⚠ ' + a;
    p.alerts.title = plural(a, 'alert', 'alerts');
    p.report.hidden = !c.report;
    item.li.classList.toggle('is-ended', !!c.ended);
  }

  function optionText(c) {
    const parts = [callerOf(c), shortId(c.id)];
    if (typeof c.status === 'string' && c.status) parts.push(statusLabel(c.status));
    if (c.ended) parts.push('ended');
    return parts.join(' · ');
  }

  function renderList() {
    const list = $('callList');
    const select = $('callSelect');
    const seen = new Set();
    let prev = null;
    let prevOpt = select.options[0] || null;
    for (const c of state.calls) {
      seen.add(c.id);
      let item = listItems.get(c.id);
      if (!item) {
        item = buildListItem(c.id);
        listItems.set(c.id, item);
      }
      updateListItem(item, c);
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== item.li) list.insertBefore(item.li, want);
      prev = item.li;

      let opt = selectOptions.get(c.id);
      if (!opt) {
        opt = document.createElement('option');
        opt.value = c.id;
        selectOptions.set(c.id, opt);
      }
      const t = optionText(c);
      if (opt.text !== t) opt.text = t;
      if (prevOpt.nextSibling !== opt) select.insertBefore(opt, prevOpt.nextSibling);
      prevOpt = opt;
    }
    for (const [id, item] of listItems) {
      if (!seen.has(id)) {
        item.li.remove();
        listItems.delete(id);
        const opt = selectOptions.get(id);
        if (opt) opt.remove();
        selectOptions.delete(id);
      }
    }
    for (const [id, item] of listItems) {
      const on = id === state.selectedId;
      item.li.classList.toggle('is-selected', on);
      if (on) item.btn.setAttribute('aria-current', 'true');
      else item.btn.removeAttribute('aria-current');
    }
    select.value = state.follow ? '' : (state.selectedId || '');
    $('callCount').textContent = isNum(state.total) && state.total > state.calls.length
      ? state.calls.length + ' of ' + state.total : String(state.calls.length);
    $('listEmpty').hidden = state.calls.length > 0;
    $('listEmpty').textContent = state.cleared ? 'All calls were cleared. New calls appear here.'
      : 'No calls yet. They appear here as soon as the first webhook arrives.';

    const follow = $('followBtn');
    follow.setAttribute('aria-pressed', state.follow ? 'true' : 'false');
    follow.textContent = state.follow ? 'Following newest' : 'Follow newest';
    follow.title = state.follow ? 'The newest call is shown automatically'
      : 'Go back to showing the newest call automatically';

    const live = state.calls.filter((c) => !c.ended).length;
    document.title = live ? 'liveevents · ' + live + ' live' : 'liveevents';
  }

  /* ------------------------------------------------------------------------------------------ */
  /* Call detail: header, pills, alerts, report                                                 */
  /* ------------------------------------------------------------------------------------------ */

  function renderHead(d) {
    $('callHead').hidden = false;
    const caller = callerOf(d);
    $('callCaller').textContent = caller;
    $('callCaller').title = caller;
    $('callId').textContent = plainName(d.id);
    $('callId').title = plainName(d.id);
    const badge = $('callState');
    const statuses = Array.isArray(d.statuses) ? d.statuses : [];
    if (d.ended) {
      badge.textContent = 'Ended';
      badge.className = 'state-badge is-ended';
      badge.title = 'This call has ended';
    } else if (statuses.length) {
      badge.textContent = 'In progress';
      badge.className = 'state-badge is-live';
      badge.title = 'This call is in progress';
    } else {
      badge.textContent = 'Active';
      badge.className = 'state-badge is-active';
      badge.title = 'Events arrive for this call, but no status was reported';
    }

    $('callResumed').hidden = d.resumed !== true;

    const why = str(d.ended_reason);
    const by = str(d.ended_by);
    const reason = [by ? 'ended by ' + by : '', why].filter(Boolean).join(' \u00b7 ');
    $('callReason').hidden = !(d.ended && reason);
    $('callReason').textContent = reason;
    $('callReason').title = reason ? 'how the call ended: ' + reason : '';

    const pills = $('pills');
    clear(pills);
    for (const s of statuses) {
      if (!s || typeof s.status !== 'string') continue;
      const li = el('li', 'pill tone-' + statusTone(s.status));
      li.append(el('span', 'pill-label', statusLabel(s.status)));
      if (isNum(s.timestamp)) {
        const t = el('time', 'pill-time', fmtTime(s.timestamp));
        t.dateTime = new Date(s.timestamp).toISOString();
        li.append(t);
      }
      li.title = 'status: ' + s.status + (isNum(s.timestamp) ? '\n' + fmtDateTime(s.timestamp) : '') +
        (str(s.ended_by) ? '\nended by: ' + s.ended_by : '') + (str(s.reason) ? '\nreason: ' + s.reason : '');
      pills.append(li);
    }
    if (!pills.firstChild) {
      pills.append(el('li', 'pill-none', 'No status reported'));
    }
  }

  function renderAlerts(d) {
    const box = $('alerts');
    clear(box);
    const alerts = Array.isArray(d.alerts) ? d.alerts : [];
    if (!alerts.length) {
      box.hidden = true;
      return false;
    }
    box.append(el('h3', 'panel-title', plural(alerts.length, 'Alert', 'Alerts')));
    const messages = Array.isArray(d.messages) ? d.messages : [];
    for (const a of alerts) {
      if (!a || typeof a !== 'object') continue;
      const item = el('div', 'alert');
      const head = el('div', 'alert-head');
      const body = el('div', 'alert-body');
      if (a.type === 'hang') {
        item.classList.add('alert-hang');
        head.append(el('span', 'alert-icon', '!'), el('strong', 'alert-title', 'Assistant not responding'));
        if (isNum(a.timestamp)) {
          const later = messages.find((m) => m && roleKind(m.role) === 'assistant' && isNum(m.timestamp) &&
            m.timestamp > a.timestamp);
          if (later) {
            item.classList.add('is-resolved');
            body.append(el('span', 'alert-note',
              'Replied again ' + fmtDuration(later.timestamp - a.timestamp) + ' later'));
          }
        }
      } else if (a.type === 'error') {
        item.classList.add('alert-error');
        const e = a.error && typeof a.error === 'object' ? a.error : {};
        const title = [str(e.type), str(e.code)].filter(Boolean).join(' · ') || 'Error';
        head.append(el('span', 'alert-icon', '×'), el('strong', 'alert-title', title));
        if (str(e.message)) body.append(el('p', 'alert-msg', e.message));
        const facts = [];
        if (str(e.provider)) facts.push('provider: ' + e.provider);
        if (typeof e.retryable === 'boolean') facts.push(e.retryable ? 'retryable' : 'not retryable');
        if (facts.length) body.append(el('span', 'alert-note', facts.join(' · ')));
      } else {
        head.append(el('span', 'alert-icon', '?'), el('strong', 'alert-title', str(a.type) || 'alert'));
      }
      if (isNum(a.timestamp)) {
        const t = el('time', 'alert-time', fmtTime(a.timestamp));
        t.title = fmtDateTime(a.timestamp);
        head.append(t);
      }
      item.append(head);
      if (body.firstChild) item.append(body);
      box.append(item);
    }
    box.hidden = false;
    return true;
  }

  const REPORT_SHOWN = new Set(['summary', 'successEvaluation', 'outcome', 'durationMs', 'durationSeconds',
    'cost', 'endedBy', 'endReason', 'endedReason', 'startedAt', 'endedAt', 'structuredData', 'recording']);

  function evalTone(v) {
    const s = v.trim().toLowerCase();
    if (s === 'excellent' || s === 'good' || s === 'true' || s === 'pass' || s === 'success') return 'good';
    if (s === 'fair' || s === 'average') return 'fair';
    if (s === 'poor' || s === 'bad' || s === 'false' || s === 'fail' || s === 'failure') return 'bad';
    return 'other';
  }

  function humanKey(k) {
    return k.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/[_-]+/g, ' ').toLowerCase();
  }

  function scalarText(v) {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (v === null || v === undefined) return '';
    try {
      return JSON.stringify(v);
    } catch (_) {
      return '';
    }
  }

  /* An ISO date from the report, as a local time (the raw value goes in the tooltip). */
  function isoTime(v) {
    if (typeof v !== 'string' || !v) return '';
    const ms = Date.parse(v);
    return Number.isFinite(ms) ? fmtTime(ms) : v;
  }

  function renderReport(d) {
    const box = $('report');
    clear(box);
    const r = d.report;
    if (!r || typeof r !== 'object') {
      box.hidden = true;
      return false;
    }
    const head = el('div', 'report-head');
    head.append(el('h3', 'panel-title', 'End-of-call report'));
    if (str(r.successEvaluation)) {
      const chip = el('span', 'eval tone-' + evalTone(r.successEvaluation), r.successEvaluation);
      chip.title = 'success evaluation: ' + r.successEvaluation;
      head.append(chip);
    }
    box.append(head);
    if (str(r.summary)) {
      const p = el('p', 'report-summary', r.summary);
      p.dir = 'auto';
      box.append(p);
    }

    const dl = el('dl', 'facts');
    const fact = (label, value, title, wide) => {
      if (value === '' || value === null || value === undefined) return;
      const wrap = el('div', wide || String(value).length > 22 ? 'fact wide' : 'fact');
      const dt = el('dt', '', label);
      const dd = el('dd', '', value);
      dd.dir = 'auto';
      if (title) dd.title = title;
      wrap.append(dt, dd);
      dl.append(wrap);
    };
    fact('Outcome', str(r.outcome));
    if (isNum(r.durationMs)) fact('Duration', fmtDuration(r.durationMs), r.durationMs + ' ms');
    else if (isNum(r.durationSeconds)) fact('Duration', fmtDuration(r.durationSeconds * 1000), r.durationSeconds + ' s');
    fact('Cost', fmtCost(r.cost), isNum(r.cost) ? String(r.cost) + ' USD' : '');
    if (str(r.endedBy)) {
      const label = Object.prototype.hasOwnProperty.call(ENDED_BY, r.endedBy) ? ENDED_BY[r.endedBy] : r.endedBy;
      fact('Ended by', label, 'endedBy: ' + r.endedBy);
    }
    const reason = str(r.endReason) || str(r.endedReason);
    fact('End reason', reason);
    if (str(r.startedAt) || str(r.endedAt)) {
      const span = [isoTime(r.startedAt), isoTime(r.endedAt)].filter(Boolean).join(' – ');
      fact(str(r.startedAt) && str(r.endedAt) ? 'Call time' : (str(r.startedAt) ? 'Started' : 'Ended'), span,
        [str(r.startedAt), str(r.endedAt)].filter(Boolean).join(' – '), true);
    }
    if (r.recording && typeof r.recording === 'object') {
      const rec = r.recording;
      const where = str(rec.url) || [str(rec.s3Bucket), str(rec.path)].filter(Boolean).join('/');
      if (where) {
        fact('Recording', where, where, true);
        dl.lastChild.classList.add('mono');
      }
    } else if (str(r.recording)) {
      fact('Recording', r.recording, r.recording, true);
      dl.lastChild.classList.add('mono');
    }
    for (const k of Object.keys(r)) {
      if (REPORT_SHOWN.has(k)) continue;
      const v = r[k];
      if (v === null || v === undefined || v === '') continue;
      if (typeof v === 'object' && !Array.isArray(v)) {
        for (const [sk, sv] of Object.entries(v)) {
          const t = scalarText(sv);
          if (t) fact(humanKey(k) + ' · ' + sk, t);
        }
      } else {
        fact(humanKey(k), scalarText(v));
      }
    }
    if (dl.firstChild) box.append(dl);

    const data = r.structuredData;
    if (data && typeof data === 'object' && !Array.isArray(data) && Object.keys(data).length) {
      box.append(el('h4', 'report-sub', 'Structured data'));
      const sd = el('dl', 'kv');
      for (const [k, v] of Object.entries(data)) {
        const row = el('div', 'kv-row');
        const dt = el('dt', '', k);
        dt.dir = 'auto';
        const t = scalarText(v);
        const dd = el('dd', t ? '' : 'kv-empty', t || '—');
        dd.dir = 'auto';
        row.append(dt, dd);
        sd.append(row);
      }
      box.append(sd);
    }
    box.hidden = false;
    return true;
  }

  /* ------------------------------------------------------------------------------------------ */
  /* Transcript                                                                                 */
  /* ------------------------------------------------------------------------------------------ */

  function skippedSig(m) {
    return Array.isArray(m.skipped) ? m.skipped.map((s) => (s && typeof s.text === 'string' ? s.text : '')).join('\u0001') : '';
  }

  function buildSkipped(m) {
    const box = el('div', 'skipped');
    for (const s of m.skipped) {
      const text = s && typeof s.text === 'string' ? s.text : '';
      const note = el('div', 'interrupted');
      note.title = 'The assistant started this reply, but the caller interrupted it';
      note.append(el('span', 'interrupted-tag', 'interrupted reply'));
      if (text) {
        const t = el('span', 'interrupted-text', text);
        t.dir = 'auto';
        note.append(t);
      }
      box.append(note);
    }
    return box;
  }

  /* Build the row for one message; returns null when nothing is to be shown. */
  function buildRow(m, prev) {
    const role = typeof m.role === 'string' ? m.role : '';
    const text = typeof m.text === 'string' ? m.text : '';
    const hasSkipped = Array.isArray(m.skipped) && m.skipped.length > 0;
    if (!text && !hasSkipped) return null;
    const kind = roleKind(role);
    const row = el('div', 'row from-' + kind);

    if (kind === 'note') {
      if (!text) return null;
      const det = el('details', 'note');
      const sum = el('summary', 'note-sum');
      sum.append(el('span', 'note-role', role === 'system' ? 'system prompt' : role));
      if (isNum(m.timestamp)) sum.append(el('time', 'note-time', fmtTime(m.timestamp)));
      const body = el('div', 'note-text', text);
      body.dir = 'auto';
      det.append(sum, body);
      row.append(det);
      return row;
    }

    if (text) {
      const bubble = el('div', 'bubble');
      bubble.dataset.role = role;
      bubble.dir = 'auto';
      const meta = el('div', 'meta');
      meta.dir = 'ltr';
      meta.append(el('span', 'role', role || 'unknown'));
      if (isNum(m.timestamp)) {
        const t = el('time', 'time', fmtTime(m.timestamp));
        t.title = fmtDateTime(m.timestamp);
        t.dateTime = new Date(m.timestamp).toISOString();
        meta.append(t);
      }
      if (kind === 'assistant' && prev && roleKind(prev.role) === 'user' &&
          isNum(prev.timestamp) && isNum(m.timestamp) && m.timestamp - prev.timestamp >= SLOW_REPLY_MS) {
        const gap = m.timestamp - prev.timestamp;
        const slow = el('span', 'slow', '+' + fmtDuration(gap));
        slow.title = 'Reply came ' + fmtDuration(gap) + ' after the caller\u2019s message';
        meta.append(slow);
      }
      const body = el('div', 'text', text);
      body.dir = 'auto';
      bubble.append(meta, body);
      if (text.length > CLAMP_CHARS) {
        bubble.classList.add('is-clamped');
        const more = el('button', 'more', 'Show all ' + text.length.toLocaleString() + ' characters');
        more.type = 'button';
        more.addEventListener('click', () => {
          const open = bubble.classList.toggle('is-clamped');
          more.textContent = open ? 'Show all ' + text.length.toLocaleString() + ' characters' : 'Fold';
        });
        bubble.append(more);
      }
      row.append(bubble);
    }
    if (hasSkipped) row.append(buildSkipped(m));
    return row;
  }

  function atBottom(chat) {
    return chat.scrollHeight - chat.scrollTop - chat.clientHeight <= BOTTOM_SLACK_PX;
  }

  function scrollToBottom(smooth) {
    const chat = $('chat');
    if (smooth && typeof chat.scrollTo === 'function') {
      chat.scrollTo({ top: chat.scrollHeight, behavior: 'smooth' });
    } else {
      chat.scrollTop = chat.scrollHeight;
    }
    view.stick = true;
    view.unseen = 0;
    renderJump();
  }

  function renderJump() {
    const btn = $('jumpBtn');
    btn.hidden = view.unseen === 0;
    btn.textContent = view.unseen === 1 ? '1 new message ↓' : view.unseen + ' new messages ↓';
  }

  function resetTranscript() {
    clear($('msgs'));
    view.entries = new Map();
    view.callId = null;
    view.generation = null;
    view.lastSeq = null;
    view.firstSeq = null;
    view.unseen = 0;
    renderJump();
  }

  /* Apply the messages of a detail to the transcript; returns how many rows were added. */
  function applyMessages(d) {
    const box = $('msgs');
    const messages = Array.isArray(d.messages) ? d.messages : [];
    const used = new Set();
    let anchor = null;   // last row on screen so far, in message order
    let added = 0;
    let prev = null;
    for (let i = 0; i < messages.length; i += 1) {
      const m = messages[i];
      if (!m || typeof m !== 'object') continue;
      let key = typeof m.messageId === 'string' && m.messageId !== '' ? 'id:' + m.messageId : '#' + i;
      if (used.has(key)) key += '#' + i;
      used.add(key);
      let entry = view.entries.get(key);
      if (!entry) {
        const row = buildRow(m, prev);
        entry = { row, skippedSig: skippedSig(m), text: m.text };
        view.entries.set(key, entry);
        if (row) {
          box.insertBefore(row, anchor ? anchor.nextSibling : box.firstChild);
          if (row.querySelector('.bubble')) added += 1;
        }
      } else if (entry.row && entry.text !== m.text) {
        // A newer event changed its text: the row is built again where it stands.
        const row = buildRow(m, prev);
        if (row) entry.row.replaceWith(row);
        else entry.row.remove();
        entry.row = row;
        entry.skippedSig = skippedSig(m);
      } else if (entry.row && skippedSig(m) !== entry.skippedSig) {
        entry.skippedSig = skippedSig(m);
        const old = entry.row.querySelector('.skipped');
        if (old) old.remove();
        if (entry.skippedSig) entry.row.append(buildSkipped(m));
      }
      entry.text = m.text;
      if (entry.row) anchor = entry.row;
      prev = m;
    }
    return added;
  }

  function renderEmpty(title, sub) {
    $('chatEmptyTitle').textContent = title;
    $('chatEmptySub').textContent = sub;
    $('chatEmpty').hidden = false;
  }

  function renderDetail() {
    const d = state.detail && state.detail.id === state.selectedId ? state.detail : null;
    const chat = $('chat');
    if (!d) {
      if (view.callId !== null || !state.selectedId) resetTranscript();
      syncRaw(null);
      $('callHead').hidden = true;
      $('insights').hidden = true;
      if (state.selectedId) {
        renderEmpty('Loading…', '');
      } else if (state.cleared) {
        renderEmpty('All calls were cleared', 'New calls appear here as soon as their first webhook arrives.');
      } else {
        renderEmpty('Waiting for calls', 'Start a call: its status, transcript and report appear here live.');
      }
      return;
    }
    if (d.id === view.callId && d.generation === view.generation && d.last_seq === view.lastSeq &&
        d.first_seq === view.firstSeq) return;

    // Another call, another generation, or the same call whose history started over: draw anew.
    const switched = d.id !== view.callId || d.generation !== view.generation || d.first_seq !== view.firstSeq;
    const wasAtBottom = switched || atBottom(chat);
    if (switched) resetTranscript();

    renderHead(d);
    const hasAlerts = renderAlerts(d);
    const hasReport = renderReport(d);
    $('insights').hidden = !(hasAlerts || hasReport);

    const added = applyMessages(d);
    view.callId = d.id;
    view.generation = d.generation;
    view.lastSeq = d.last_seq;
    view.firstSeq = d.first_seq;
    syncRaw(d);

    if ($('msgs').querySelector('.bubble, .note, .skipped')) {
      $('chatEmpty').hidden = true;
    } else {
      renderEmpty('No messages yet', 'The transcript appears here as the call goes on.');
    }

    if (wasAtBottom) {
      scrollToBottom(false);
    } else if (added > 0) {
      view.unseen += added;
      renderJump();
    }
  }

  /* ------------------------------------------------------------------------------------------ */
  /* Raw events: the selected call's webhook bodies, as the daemon keeps them                   */
  /* ------------------------------------------------------------------------------------------ */

  /* Fetched only while open, and at most once per RAW_REFRESH_MS however busy the call: the
     answer holds every body of the call, each conversation-update with the whole transcript.
     Shown newest first, each folded; an event's JSON is laid out only when it is unfolded. */
  const raw = {
    open: false,
    callId: null,       // the call whose events are shown; null once cleared
    token: 0,           // bumped on close: answers to older requests are dropped
    busy: false,
    again: false,       // something changed while a request was under way
    timer: 0,
    lastFetch: 0,
    count: null,        // events in the last answer, for the button's label
    nodes: new Map(),   // event key (occurrence + compact JSON) -> { details, index }
  };

  function renderRawButton() {
    const btn = $('rawBtn');
    btn.setAttribute('aria-expanded', raw.open ? 'true' : 'false');
    btn.textContent = raw.count === null ? 'Raw events' : 'Raw events (' + raw.count + ')';
  }

  function rawStatus(text, isError) {
    const p = $('rawStatus');
    p.textContent = text;
    p.hidden = !text;
    p.classList.toggle('is-error', !!isError);
  }

  /* message.timestamp as milliseconds (a number, or a date string), or null. */
  function eventTime(v) {
    const ms = typeof v === 'string' && v ? Date.parse(v) : v;
    return isNum(ms) && Math.abs(ms) <= 8.64e15 ? ms : null;
  }

  const utf8 = new TextEncoder();

  function fmtBytes(n) {
    if (n < 1000) return n + ' B';
    if (n < 1e6) return (Math.round(n / 100) / 10).toLocaleString() + ' kB';
    return (Math.round(n / 1e5) / 10).toLocaleString() + ' MB';
  }

  /* One event, folded: its heading says what it is; its JSON is laid out when first unfolded. */
  function buildRawEvent(ev, compact) {
    const det = el('details', 'raw-event');
    const sum = el('summary', 'raw-sum');
    const index = el('span', 'raw-index');
    sum.append(index);
    const msg = ev && typeof ev === 'object' && ev.message && typeof ev.message === 'object' ? ev.message : null;
    if (msg && typeof msg.type === 'string' && msg.type) {
      const type = el('span', 'raw-type', msg.type);
      type.title = 'message.type: ' + msg.type;
      sum.append(type);
    } else {
      sum.append(el('span', 'raw-type is-none', 'no message.type'));
    }
    const ms = msg ? eventTime(msg.timestamp) : null;
    if (ms !== null) {
      const t = el('time', 'raw-time', fmtTime(ms));
      t.dateTime = new Date(ms).toISOString();
      t.title = fmtDateTime(ms) + '\nmessage.timestamp: ' + String(msg.timestamp);
      sum.append(t);
    }
    const bytes = utf8.encode(compact).length;
    const size = el('span', 'raw-size', fmtBytes(bytes));
    size.title = bytes.toLocaleString() + ' bytes as compact JSON';
    sum.append(size);
    det.append(sum);
    det.addEventListener('toggle', () => {
      if (!det.open || det.querySelector('.raw-json')) return;
      const pre = el('pre', 'raw-json', JSON.stringify(ev, null, 2));
      pre.tabIndex = 0;   // a scrolling box: reachable by keyboard
      det.append(pre);
    });
    return { details: det, index };
  }

  /* The events of an answer, newest first. Events already on screen keep their element (and so
     whether they are unfolded); those no longer in the answer go. */
  function renderRawEvents(events) {
    const list = $('rawList');
    raw.count = events.length;
    renderRawButton();
    $('rawNote').textContent = events.length
      ? plural(events.length, 'event', 'events') + ' kept \u00b7 newest first \u00b7 secrets redacted' : '';
    const occurrences = new Map();
    const keys = events.map((ev) => {
      const compact = JSON.stringify(ev);
      const n = (occurrences.get(compact) || 0) + 1;
      occurrences.set(compact, n);
      return { key: n + '\u0000' + compact, compact };
    });
    const next = new Map();
    let anchor = null;
    for (let i = events.length - 1; i >= 0; i -= 1) {
      const { key, compact } = keys[i];
      const node = raw.nodes.get(key) || buildRawEvent(events[i], compact);
      next.set(key, node);
      const label = '#' + (i + 1);
      if (node.index.textContent !== label) {
        node.index.textContent = label;
        node.index.title = 'event ' + (i + 1) + ' of the ' + events.length + ' kept, oldest first';
      }
      const want = anchor ? anchor.nextSibling : list.firstChild;
      if (want !== node.details) list.insertBefore(node.details, want);
      anchor = node.details;
    }
    for (const [key, node] of raw.nodes) if (!next.has(key)) node.details.remove();
    raw.nodes = next;
    rawStatus(events.length ? '' : 'No raw events kept for this call.');
  }

  function clearRawEvents() {
    clear($('rawList'));
    raw.nodes = new Map();
    raw.count = null;
    $('rawNote').textContent = '';
  }

  async function fetchRaw() {
    if (!raw.open || state.signedOut) return;
    if (raw.busy) {
      raw.again = true;
      return;
    }
    clearTimeout(raw.timer);
    raw.timer = 0;
    raw.busy = true;
    raw.lastFetch = Date.now();
    const token = raw.token;
    let events = null;
    let problem = '';
    let gone = false;
    try {
      const r = await Api.conversation(raw.callId);
      if (r.status === 401) {
        problem = 'Not signed in.';   // signedOut() has shown the way back in
      } else if (r.status === 404) {
        problem = 'This call is no longer kept.';
        gone = true;
      } else if (!r.ok || !r.body || !Array.isArray(r.body.events)) {
        throw new ApiError(r.status, errorText(r));
      } else {
        events = r.body.events;
      }
    } catch (e) {
      problem = 'Cannot load the raw events: ' + (e instanceof ApiError ? e.message : 'the daemon cannot be reached');
    }
    raw.busy = false;
    if (raw.again) {
      raw.again = false;
      refreshRaw();
    }
    if (token !== raw.token) return;   // closed, or another call, meanwhile
    if (events) {
      renderRawEvents(events);
    } else {
      if (gone) clearRawEvents();
      renderRawButton();
      rawStatus(problem, true);
    }
  }

  /* The call changed: fetch again, at most once per RAW_REFRESH_MS. */
  function refreshRaw() {
    if (!raw.open) return;
    if (raw.busy) {
      raw.again = true;
      return;
    }
    if (raw.timer) return;
    const wait = raw.lastFetch + RAW_REFRESH_MS - Date.now();
    if (wait <= 0) fetchRaw();
    else raw.timer = setTimeout(() => { raw.timer = 0; fetchRaw(); }, wait);
  }

  function openRaw() {
    const id = state.selectedId;
    if (raw.open || !id) return;
    if (raw.callId !== id) clearRawEvents();
    raw.open = true;
    raw.callId = id;
    $('rawPanel').hidden = false;
    $('chatWrap').classList.add('is-raw');
    if (!raw.nodes.size) rawStatus('Loading…');
    renderRawButton();
    fetchRaw();
  }

  /* Closed with its button, the events of the call stay for the next opening; closed because
     another call is shown (clear), they go. */
  function closeRaw(clearAll) {
    if (raw.open) {
      raw.open = false;
      raw.token += 1;
      raw.again = false;
      clearTimeout(raw.timer);
      raw.timer = 0;
      $('rawPanel').hidden = true;
      $('chatWrap').classList.remove('is-raw');
    }
    if (clearAll && raw.callId !== null) {
      raw.callId = null;
      clearRawEvents();
      rawStatus('');
    }
    renderRawButton();
  }

  /* After the detail on screen changed: another call (or none) closes the view; a change of the
     call it shows fetches again. */
  function syncRaw(d) {
    if (raw.callId === null) return;
    if (!d || d.id !== raw.callId) closeRaw(true);
    else refreshRaw();
  }

  /* ------------------------------------------------------------------------------------------ */
  /* Controller                                                                                 */
  /* ------------------------------------------------------------------------------------------ */

  /* Newest = highest first_seq (the order calls appeared in), whatever their later activity. */
  function newness(c) {
    if (isNum(c.first_seq)) return c.first_seq;
    return isNum(c.first_activity) ? c.first_activity : 0;
  }

  function newestId() {
    return state.calls.length ? state.calls[0].id : null;
  }

  let detailToken = 0;
  let detailInflight = null;   // { id, token, again, render }

  /* Fetch the selected call's detail if what we hold is older than its summary. */
  function ensureDetail(forceRender) {
    const id = state.selectedId;
    if (!id) {
      state.detail = null;
      if (!state.paused || forceRender) renderDetail();
      return;
    }
    const summary = state.byId.get(id);
    const have = state.detail && state.detail.id === id && state.detail.generation === state.generation
      ? state.detail : null;
    if (have && (!summary || !isNum(summary.last_seq) || have.last_seq >= summary.last_seq)) {
      if (!state.paused || forceRender) renderDetail();
      return;
    }
    if (!have && (!state.paused || forceRender)) renderDetail();   // shows "Loading…" for a new pick
    if (detailInflight && detailInflight.id === id) {
      detailInflight.again = true;
      detailInflight.render = detailInflight.render || forceRender;
      return;
    }
    const token = ++detailToken;
    const req = { id, token, again: false, render: !!forceRender };
    detailInflight = req;
    Api.call(id).then((r) => {
      if (token !== detailToken) return;
      detailInflight = null;
      if (r.status === 404) {
        forget(id);
        return;
      }
      if (!r.ok || !r.body || r.body.id !== id) return;   // the next poll retries
      const body = r.body;
      if (typeof body.generation !== 'string') body.generation = state.generation;
      if (state.generation !== null && body.generation !== state.generation) {
        feed.invalidate();
        feed.now();
        return;
      }
      if (!isNum(body.last_seq)) {
        // Older daemons: fall back on the global sequence, or on the summary we were told about.
        body.last_seq = isNum(body.seq) ? body.seq : (summary && isNum(summary.last_seq) ? summary.last_seq : Date.now());
      }
      state.detail = body;
      if (!state.paused || req.render) renderDetail();
      if (req.again) ensureDetail(req.render);
    }, () => {
      if (token === detailToken) detailInflight = null;
    });
  }

  /* The selected call is gone (evicted or reset): fall back to following the newest. */
  function forget(id) {
    if (state.selectedId !== id) return;
    state.follow = true;
    state.detail = null;
    state.selectedId = newestId() === id ? null : newestId();
    setHash(null);
    feed.invalidate();
    feed.now();
    if (!state.paused) {
      renderList();
      ensureDetail(false);
    }
  }

  function selectCall(id, explicit) {
    if (explicit) {
      state.follow = false;
      setHash(id);
    }
    if (state.selectedId !== id) {
      state.selectedId = id;
      detailToken += 1;        // drop answers for the previous pick
      detailInflight = null;
    }
    renderList();
    ensureDetail(true);
  }

  function follow() {
    state.follow = true;
    setHash(null);
    const id = newestId();
    if (id !== state.selectedId) {
      state.selectedId = id;
      detailToken += 1;
      detailInflight = null;
    }
    renderList();
    ensureDetail(true);
  }

  function applySnapshot(body) {
    const gen = typeof body.generation === 'string' ? body.generation : String(body.generation);
    if (state.generation !== null && gen !== state.generation) {
      // The store was reset (here or elsewhere) or re-initialised: start over.
      state.detail = null;
      state.cleared = true;
      if (!state.follow && state.selectedId) {
        state.follow = true;
        setHash(null);
      }
    }
    // A list fetched while the stream runs can answer after changes the stream already brought
    // (the first list too: the stream opens before it is asked for): those the list had not seen
    // stay, or the calls they made would vanish until next time. The list's seq is the next to be
    // written, so a call changed at that seq or later is newer than the list.
    const sameGen = isNum(body.seq) &&
      (state.generation === null ? state.streamGeneration === gen : state.generation === gen);
    const newer = sameGen ? [...state.byId.values()].filter((c) => isNum(c.last_seq) && c.last_seq >= body.seq) : [];
    state.generation = gen;
    state.streamGeneration = null;
    state.seq = body.seq;
    const listed = body.calls.filter((c) => c && typeof c.id === 'string');
    const listedIds = new Set(listed.map((c) => c.id));
    const kept = new Set(newer.map((c) => c.id));
    const unlisted = newer.filter((c) => !listedIds.has(c.id)).length;
    state.total = isNum(body.total) ? body.total + unlisted : null;
    const calls = newer.concat(listed.filter((c) => !kept.has(c.id)));
    calls.sort((a, b) => newness(b) - newness(a));
    state.calls = calls;
    state.byId = new Map(calls.map((c) => [c.id, c]));
    listDirty = false;
    if (calls.length) state.cleared = false;

    if (state.follow) {
      const id = newestId();
      if (id !== state.selectedId) {
        state.selectedId = id;
        detailToken += 1;
        detailInflight = null;
      }
    } else if (state.selectedId && !state.byId.has(state.selectedId)) {
      state.follow = true;
      state.selectedId = newestId();
      setHash(null);
    }
  }

  /* Paused: what arrives is applied to the state and counted, but the page stays as it is until
     Resume renders the state, which then holds everything, once. */
  function onSnapshot(body) {
    if (state.paused) {
      state.pendingSnapshot = body;
      state.pendingWhilePaused += 1;
      renderIndicator();
      return;
    }
    applySnapshot(body);
    renderList();
    ensureDetail(false);
  }

  /* One change from the stream: the call's summary, and what changed in it (detail.after says
     since when). Merging is idempotent, so a change seen twice (a list fetched while the stream
     was already running, a catch-up after a drop) shows once. */
  function mergeDetail(have, delta) {
    const d = Object.assign({}, have);
    for (const k of ['status', 'customer', 'ended', 'ended_by', 'ended_reason', 'resumed', 'first_seq']) {
      if (k in delta) d[k] = delta[k];
    }
    d.last_seq = Math.max(have.last_seq || 0, delta.last_seq || 0);
    d.seq = Math.max(have.seq || 0, delta.seq || 0);
    if (Array.isArray(delta.statuses) && delta.statuses.length) d.statuses = delta.statuses;
    if ('report' in delta) d.report = delta.report;
    if (Array.isArray(delta.messages) && delta.messages.length) {
      const msgs = Array.isArray(have.messages) ? have.messages.slice() : [];
      const at = new Map(msgs.map((m, i) => [m.messageId, i]));
      for (const m of delta.messages) {
        if (at.has(m.messageId)) msgs[at.get(m.messageId)] = m;
        else {
          at.set(m.messageId, msgs.length);
          msgs.push(m);
        }
      }
      d.messages = msgs;
    }
    if (Array.isArray(delta.alerts) && delta.alerts.length) {
      const alerts = Array.isArray(have.alerts) ? have.alerts.slice() : [];
      const seen = new Set(alerts.map((a) => a.seq));
      for (const a of delta.alerts) if (!seen.has(a.seq)) alerts.push(a);
      d.alerts = alerts;
    }
    return d;
  }

  function onCall(data) {
    const c = data && data.summary;
    const delta = data && data.detail;
    if (!c || typeof c.id !== 'string' || !delta) return;
    if (state.pendingSnapshot) {
      // Paused with a list waiting: the change joins it, so Resume shows both.
      const calls = state.pendingSnapshot.calls.filter((x) => x.id !== c.id);
      calls.push(c);
      state.pendingSnapshot = Object.assign({}, state.pendingSnapshot, { calls });
    }
    if (typeof delta.generation === 'string' && state.generation !== null && delta.generation !== state.generation) {
      return;   // the reset that comes with a new generation brings the list
    }
    if (state.generation === null && typeof delta.generation === 'string') state.streamGeneration = delta.generation;
    const known = state.byId.get(c.id);
    if (!known && isNum(state.total)) state.total += 1;
    if (!known || !isNum(known.last_seq) || c.last_seq >= known.last_seq) {
      state.byId.set(c.id, c);
      listDirty = true;
      state.cleared = false;
    }
    const have = state.detail && state.detail.id === c.id && state.detail.generation === delta.generation
      ? state.detail : null;
    if (data.replace && (have || state.follow || c.id === state.selectedId)) {
      // The call's whole state (a new call, or one whose history started over after it left the
      // arena): it replaces what was held, and following it needs no fetch.
      state.detail = delta;
    } else if (have) {
      state.detail = mergeDetail(have, delta);
    }
    if (state.paused) {
      state.pendingWhilePaused += 1;
      renderIndicator();
      return;
    }
    scheduleRender();
  }

  /* Changes can come far faster than a screen refreshes (50 calls a second, each message an
     event): they are applied to the state as they come, and the page is drawn from it at most once
     per frame, so the stream is read without falling behind. */
  let listDirty = false;
  let renderPending = false;

  /* The newest MAX_LISTED calls are listed, as a freshly opened dashboard lists them (the counter
     counts the rest). */
  function rebuildCalls() {
    state.calls = [...state.byId.values()].sort((a, b) => newness(b) - newness(a)).slice(0, MAX_LISTED);
    listDirty = false;
  }

  /* The list in order, and the newest call picked when following. */
  function settleList() {
    if (listDirty) rebuildCalls();
    if (state.follow && newestId() !== state.selectedId) {
      state.selectedId = newestId();
      detailToken += 1;
      detailInflight = null;
    }
  }

  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    const run = () => {
      renderPending = false;
      if (state.paused) return;
      settleList();
      renderList();
      ensureDetail(false);
    };
    // A hidden tab gets no frames: it is drawn when it is shown again.
    if (typeof requestAnimationFrame === 'function' && !document.hidden) requestAnimationFrame(run);
    else setTimeout(run, 0);
  }

  function onGone(id) {
    if (state.byId.has(id) && isNum(state.total)) state.total -= 1;
    state.byId.delete(id);
    rebuildCalls();
    if (state.paused) return;
    renderList();
    forget(id);
  }

  function onConnection(up, reason, denied) {
    const before = state.connected;
    state.connected = up;
    state.connReason = reason || '';
    state.denied = !up && !!denied;
    if (before !== up || !up) renderIndicator();
  }

  function setPaused(paused) {
    if (paused === state.paused) return;
    state.paused = paused;
    if (!paused) {
      const pending = state.pendingSnapshot;
      state.pendingSnapshot = null;
      state.pendingWhilePaused = 0;
      if (pending) applySnapshot(pending);
      settleList();
      renderList();
      ensureDetail(true);
      feed.now();
    }
    renderIndicator();
  }

  async function onReset() {
    if (!window.confirm('Delete every stored call, transcript and report?\n\nThis cannot be undone.')) return;
    const btn = $('resetBtn');
    btn.disabled = true;
    try {
      const r = await Api.reset();
      if (r.status === 401) return;   // the sign-in notice says what to do
      if (!r.ok) {
        showBanner('Reset failed: ' + errorText(r));
        return;
      }
      hideBanner();
      state.calls = [];
      state.byId = new Map();
      state.selectedId = null;
      state.follow = true;
      state.detail = null;
      state.pendingSnapshot = null;
      state.pendingWhilePaused = 0;
      state.cleared = true;
      detailToken += 1;
      detailInflight = null;
      setHash(null);
      resetTranscript();
      renderList();
      renderDetail();
      renderIndicator();
      feed.invalidate();
      feed.now();
    } catch (_) {
      showBanner('Reset failed: the daemon cannot be reached.');
    } finally {
      btn.disabled = false;
    }
  }

  /* #call=<id> in the address keeps an explicit pick across reloads and makes it shareable. */
  function setHash(id) {
    const url = id ? '#call=' + encodeURIComponent(id) : location.pathname + location.search;
    try {
      history.replaceState(null, '', url);
    } catch (_) {
      /* ignore: some embedders forbid it */
    }
  }

  function hashCall() {
    const m = /^#call=(.+)$/.exec(location.hash);
    if (!m) return null;
    try {
      return decodeURIComponent(m[1]);
    } catch (_) {
      return null;
    }
  }

  function moveSelection(delta) {
    if (!state.calls.length) return;
    let i = state.calls.findIndex((c) => c.id === state.selectedId);
    i = Math.max(0, Math.min(state.calls.length - 1, (i < 0 ? 0 : i + delta)));
    const id = state.calls[i].id;
    selectCall(id, true);
    const item = listItems.get(id);
    if (item) {
      item.btn.focus();
      item.btn.scrollIntoView({ block: 'nearest' });
    }
  }

  async function copyId() {
    const id = $('callId').textContent;
    const btn = $('copyId');
    try {
      await navigator.clipboard.writeText(id);
      btn.textContent = 'Copied';
    } catch (_) {
      const range = document.createRange();
      range.selectNodeContents($('callId'));
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      btn.textContent = 'Selected';
    }
    setTimeout(() => { btn.textContent = 'Copy id'; }, 1500);
  }

  /* ------------------------------------------------------------------------------------------ */
  /* Wiring                                                                                     */
  /* ------------------------------------------------------------------------------------------ */

  /* Nothing changed: still make sure a detail that failed to load earlier gets fetched. */
  function onIdle() {
    if (!state.paused && !detailInflight) ensureDetail(false);
  }

  const feed = new StreamFeed({ onSnapshot, onCall, onGone, onConnection },
    new PollingFeed({ onSnapshot, onIdle, onConnection }));
  window.liveeventsFeed = () => feed.mode;   // for tests and curious users: 'stream' or 'polling'

  function init() {
    $('pauseBtn').addEventListener('click', () => setPaused(!state.paused));
    $('resetBtn').addEventListener('click', onReset);
    $('followBtn').addEventListener('click', follow);
    $('bannerClose').addEventListener('click', hideBanner);
    $('jumpBtn').addEventListener('click', () => scrollToBottom(true));
    $('copyId').addEventListener('click', copyId);
    $('rawBtn').addEventListener('click', () => {
      if (raw.open) closeRaw(false);
      else openRaw();
    });
    $('rawRefresh').addEventListener('click', fetchRaw);
    $('rawClose').addEventListener('click', () => {
      closeRaw(false);
      $('rawBtn').focus();
    });
    $('rawPanel').addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape') return;
      ev.preventDefault();
      closeRaw(false);
      $('rawBtn').focus();
    });
    $('callSelect').addEventListener('change', (ev) => {
      const v = ev.target.value;
      if (v) selectCall(v, true);
      else follow();
    });
    const auto = document.createElement('option');
    auto.value = '';
    auto.text = 'Newest call (automatic)';
    $('callSelect').append(auto);

    const chat = $('chat');
    chat.addEventListener('scroll', () => {
      view.stick = atBottom(chat);
      if (view.stick && view.unseen) {
        view.unseen = 0;
        renderJump();
      }
    }, { passive: true });
    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(() => {
        if (view.stick) chat.scrollTop = chat.scrollHeight;
      }).observe(chat);
    }

    $('callList').addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowDown' || ev.key === 'j') {
        ev.preventDefault();
        moveSelection(1);
      } else if (ev.key === 'ArrowUp' || ev.key === 'k') {
        ev.preventDefault();
        moveSelection(-1);
      }
    });
    document.addEventListener('keydown', (ev) => {
      if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const t = ev.target;
      if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA' || t.isContentEditable)) return;
      if (ev.key === 'p' || ev.key === 'P') {
        ev.preventDefault();
        setPaused(!state.paused);
      }
    });

    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) feed.now();
    });

    // A link to another call pasted into this tab changes only the hash: follow it.
    window.addEventListener('hashchange', () => {
      const id = hashCall();
      if (id && id !== state.selectedId) selectCall(id, true);
      else if (!id && !state.follow) follow();
    });

    const wanted = hashCall();
    if (wanted) {
      state.follow = false;
      state.selectedId = wanted;
    }
    renderIndicator();
    renderList();
    renderDetail();
    feed.start();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
