-- get_paths.lua: the wrk script scripts/bench uses for read endpoints. Each request GETs PATTERN
-- with its "%d" (if any) replaced by a call number cycling over 0..COUNT-1, so detail requests
-- visit every stored call in turn.
--   wrk ... -s get_paths.lua URL -- PATTERN [COUNT]
-- e.g. PATTERN "/api/calls/store-%06d" COUNT 10000, or "/api/calls" alone.
-- done() prints one "BENCH key=value ..." line (latencies in microseconds) for scripts/bench.

local pattern, count
local counter = 0

function init(args)
	pattern = args[1]
	count = tonumber(args[2]) or 1
end

function request()
	local path = pattern
	if pattern:find("%%d") or pattern:find("%%0%d+d") then
		path = string.format(pattern, counter % count)
	end
	counter = counter + 1
	return wrk.format("GET", path)
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
