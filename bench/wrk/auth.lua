-- wrk script: every request carries an access token, taken in turn from BENCH_TOKENS
-- (comma-separated: requests on behalf of different users, as real traffic is); done() prints
-- one JSON line (prefixed BENCH_JSON) with the counts and latency percentiles in microseconds.
local tokens = {}
for token in string.gmatch(os.getenv("BENCH_TOKENS") or "", "[^,]+") do
  tokens[#tokens + 1] = "Bearer " .. token
end
local next_token = 0

function request()
  next_token = next_token % #tokens + 1
  wrk.headers["Authorization"] = tokens[next_token]
  return wrk.format()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
