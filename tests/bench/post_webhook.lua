-- post_webhook.lua: the wrk script scripts/bench uses for ingest load. Each request POSTs the
-- conversation-update template (tests/bench/conversation-update.json) to /webhook with its
-- placeholders filled: @CALL@ cycles through CALLS call ids, @MSG@ is a new message id per request
-- and @TS@ a rising timestamp, so every request is a real change to a stored call.
--   wrk ... -s post_webhook.lua URL -- TEMPLATE [CALLS] [PREFIX]
-- done() prints one "BENCH key=value ..." line (latencies in microseconds) for scripts/bench.

local DEFAULT_CALLS = 1000     -- distinct call ids cycled through unless CALLS says otherwise
local BASE_TS = 1784041345600  -- epoch ms of the first message

local parts = {}  -- the template cut at its placeholders: literal strings and "@NAME@" markers
local calls, prefix
local counter = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
	local f = assert(io.open(args[1], "rb"), "cannot open the body template")
	local template = f:read("*a")
	f:close()
	calls = tonumber(args[2]) or DEFAULT_CALLS
	prefix = args[3] or "wrk"
	-- Cut once here so that each request is a concatenation, not three scans of the template.
	local pos = 1
	for s, name, e in template:gmatch("()(@%u+@)()") do
		parts[#parts + 1] = template:sub(pos, s - 1)
		parts[#parts + 1] = name
		pos = e
	end
	parts[#parts + 1] = template:sub(pos)
end

local piece = {}

function request()
	counter = counter + 1
	local values = {
		["@CALL@"] = string.format("%s-%06d", prefix, counter % calls),
		["@MSG@"] = prefix .. "-msg-" .. counter,
		["@TS@"] = tostring(BASE_TS + counter),
	}
	for i = 1, #parts do
		piece[i] = values[parts[i]] or parts[i]
	end
	return wrk.format("POST", "/webhook", headers, table.concat(piece, "", 1, #parts))
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		"BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
		"bytes=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
		summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
		latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
		summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
end
