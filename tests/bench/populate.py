#!/usr/bin/env python3
"""populate: fills a webhook receiver with finished calls for scripts/bench's read benchmarks.

Each call gets three webhooks, in order: a status-update (ongoing), one conversation-update carrying
its whole history of MESSAGES messages (alternating user and assistant turns of 60-100 characters
with small metrics, about 250 bytes each), and a status-update (finished). The same bodies go to
liveeventsd and to the tutorial app, so their stores hold the same calls. Call ids are
PREFIX-NNNNNN (000000 up). Several connections post in parallel, each call on one of them.
Prints "RESULT kind=populate ..." and fails only if a webhook is refused.
  populate.py --port P --calls N [--messages M] [--prefix S] [--connections C]
"""
import argparse
import http.client
import json
import sys
import threading
import time

BASE_TS = 1784041000000     # epoch ms of the first call's start
CALL_SPACING_MS = 1000      # one call starts every second
TURN_MS = 4000              # between two messages of a call
DEFAULT_CONNECTIONS = 4     # parallel connections unless --connections says otherwise
TIMEOUT_S = 60              # one request

USER_LINES = [
    "Hi, I would like to check whether my order from last Tuesday has shipped yet.",
    "Sure, the order number is 4 4 1 9 0 2, under the name Jordan Price.",
    "Can you also tell me if the delivery address can still be changed?",
    "Great, thanks. And is there any way to get it before the weekend?",
]
ASSISTANT_LINES = [
    "Thanks for waiting. I can see the order; it left our warehouse yesterday afternoon.",
    "Yes, the address can be changed until the courier scans it at the local depot.",
    "Express delivery is available for a small fee; it would arrive on Friday.",
    "Is there anything else I can help you with today?",
]


def call_object(cid, status, start_ms):
    return {
        "id": cid, "teamId": "64f0c0ffee00000000a00001", "assistantId": "64f0c0ffee00000000b00002",
        "callType": "phone", "direction": "inbound", "status": status,
        "startAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(start_ms / 1000)),
        "userNumber": "+15550100222", "assistantNumber": "+15550100900", "metadata": {},
    }


def bodies(cid, n, messages):
    start = BASE_TS + n * CALL_SPACING_MS
    common = {"assistant": {"_id": "64f0c0ffee00000000b00002", "name": "Parcel desk"},
              "customer": {"number": "+15550100222"}}
    msgs = []
    for k in range(messages):
        user = k % 2 == 1
        lines = USER_LINES if user else ASSISTANT_LINES
        m = {"messageId": "%s-m%03d" % (cid, k), "role": "user" if user else "assistant",
             "text": lines[(k // 2) % len(lines)], "timestamp": start + k * TURN_MS}
        m["metrics"] = ({"stt": {"durationMs": 2400 + k, "confidence": 0.92}} if user
                        else {"llm": {"responseLatencyMs": 900 + k}, "tts": {"audioDurationMs": 3100}})
        msgs.append(m)
    end = start + messages * TURN_MS
    out = []
    for ts, typ, status, extra in (
            (start, "status-update", "ongoing", {}),
            (end - 1, "conversation-update", "ongoing", {"messages": msgs}),
            (end, "status-update", "finished", {})):
        msg = {"timestamp": ts, "type": typ, "call": call_object(cid, status, start)}
        msg.update(common)
        msg.update(extra)
        out.append(json.dumps({"message": msg}, separators=(",", ":")).encode())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--calls", type=int, required=True)
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--prefix", default="store")
    ap.add_argument("--connections", type=int, default=DEFAULT_CONNECTIONS)
    a = ap.parse_args()

    sent = [0, 0]  # events, bytes
    lock = threading.Lock()
    failures = []

    def worker(first):
        conn = http.client.HTTPConnection(a.host, a.port, timeout=TIMEOUT_S)
        events = nbytes = 0
        for n in range(first, a.calls, a.connections):
            for b in bodies("%s-%06d" % (a.prefix, n), n, a.messages):
                conn.request("POST", "/webhook", body=b, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                answer = r.read()
                if r.status != 200:
                    failures.append("%d %s" % (r.status, answer[:200]))
                    return
                events += 1
                nbytes += len(b)
        conn.close()
        with lock:
            sent[0] += events
            sent[1] += nbytes

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        sys.exit("populate: a webhook was refused: " + failures[0])
    secs = time.time() - t0
    print("RESULT kind=populate calls=%d messages=%d events=%d bytes=%d seconds=%.2f"
          % (a.calls, a.messages, sent[0], sent[1], secs))


if __name__ == "__main__":
    main()
