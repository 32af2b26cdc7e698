#!/usr/bin/env python3
"""poll_latency: the reference for webhook-to-browser latency in scripts/bench: how long a webhook
takes to reach a dashboard that polls, as the tutorial app's dashboard does (GET
/api/conversations every 1.5 s, the whole store each time).

One thread POSTs EVENTS webhooks (the body template with a new call id each, INTERVAL ms apart, one
at a time, as sse_clients does); another polls /api/conversations every POLL ms and notes, for
each new call id, when the first answer that holds it was read in full. That is a lower bound on
what the tutorial's page shows: its rendering comes after. Prints "RESULT kind=poll ..." and never
fails on a number.
  poll_latency.py --port P --body TEMPLATE [--events E] [--interval-ms I] [--poll-ms MS] [--prefix S]
"""
import argparse
import http.client
import json
import threading
import time

BASE_TS = 1784041345600   # epoch ms for @TS@ of the first webhook, as sse_clients uses
GRACE_S = 3.0             # after the last webhook, polls go on this long (plus one poll period)
TIMEOUT_S = 30            # one request


def body_for(template, prefix, i):
    return (template.replace("@CALL@", "%s-%06d" % (prefix, i))
            .replace("@MSG@", "%s-msg-%d" % (prefix, i))
            .replace("@TS@", str(BASE_TS + i))).encode()


def percentile(sorted_v, p):
    if not sorted_v:
        return -1.0
    rank = min(len(sorted_v), max(1, -(-len(sorted_v) * p // 100)))
    return sorted_v[int(rank) - 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--interval-ms", type=float, default=20)
    ap.add_argument("--poll-ms", type=float, default=1500)
    ap.add_argument("--prefix", default="poll")
    a = ap.parse_args()
    with open(a.body) as f:
        template = f.read().strip()

    sent = {}
    seen = {}
    done = threading.Event()
    poll_bytes = []

    def poller():
        conn = http.client.HTTPConnection(a.host, a.port, timeout=TIMEOUT_S)
        while True:
            started = time.time()
            conn.request("GET", "/api/conversations")
            resp = conn.getresponse()
            data = resp.read()
            at = time.time()
            poll_bytes.append(len(data))
            for cid in json.loads(data).get("conversations", {}):
                if cid.startswith(a.prefix + "-") and cid not in seen:
                    seen[cid] = at
            if done.is_set() and (len(seen) >= a.events or at > done.deadline):
                break
            time.sleep(max(0.0, a.poll_ms / 1000 - (time.time() - started)))
        conn.close()

    t = threading.Thread(target=poller)
    t.start()
    conn = http.client.HTTPConnection(a.host, a.port, timeout=TIMEOUT_S)
    answers = []
    for i in range(a.events):
        b = body_for(template, a.prefix, i)
        cid = "%s-%06d" % (a.prefix, i)
        t0 = time.time()
        sent[cid] = t0
        conn.request("POST", "/webhook", body=b, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        answers.append((time.time() - t0) * 1000)
        time.sleep(max(0.0, a.interval_ms / 1000 - (time.time() - t0)))
    conn.close()
    done.deadline = time.time() + GRACE_S + a.poll_ms / 1000
    done.set()
    t.join()

    lat = sorted((seen[c] - sent[c]) * 1000 for c in sent if c in seen)
    answers.sort()
    print("RESULT kind=poll poll_ms=%g samples=%d missing=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
          "poll_bytes_max=%d polls=%d" % (a.poll_ms, len(lat), a.events - len(lat), percentile(lat, 50),
                                          percentile(lat, 90), percentile(lat, 99), lat[-1] if lat else -1,
                                          max(poll_bytes) if poll_bytes else 0, len(poll_bytes)))
    print("RESULT kind=webhook_answer clients=1 samples=%d missing=0 p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f"
          % (len(answers), percentile(answers, 50), percentile(answers, 90), percentile(answers, 99),
             answers[-1] if answers else -1))


if __name__ == "__main__":
    main()
