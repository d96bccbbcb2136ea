-- wrk script for benchmarks/api_seq.py: adds the API key and reports one JSON line.
--
-- The key comes from the environment (SEQ_BENCH_API_KEY) so it never shows in `ps`.
-- done() prints "WRK_JSON {...}" with the request count, errors (non-2xx/3xx
-- answers are "status" errors) and latency percentiles in microseconds.

local key = os.getenv("SEQ_BENCH_API_KEY")
if key == nil or key == "" then
  io.stderr:write("wrk_auth.lua: SEQ_BENCH_API_KEY is not set\n")
  os.exit(2)
end
wrk.headers["Authorization"] = "Bearer " .. key

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
