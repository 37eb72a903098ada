-- wrk script for the serve phase (bench/serve.sh): every request POSTs one JSON array of
-- BENCH_SERVE_BATCH records (the same rows as the other contenders: id, ts, n, msg) to the path
-- in WRK_PATH. Ids differ per thread and request so the rows are distinct.
local batch = tonumber(os.getenv("BENCH_SERVE_BATCH") or "100")
local path = os.getenv("WRK_PATH") or "/v1/tables/bench_nopk/rows"
local thread_no = 0
local threads = {}

function setup(thread)
  thread:set("thread_no", thread_no)
  thread_no = thread_no + 1
  table.insert(threads, thread)
end

local seq = 0
function request()
  seq = seq + 1
  local base = (thread_no * 1000000000) + seq * batch
  local rows = {}
  for i = 1, batch do
    local g = base + i
    rows[i] = string.format(
      '{"id":%d,"ts":"2024-01-01T00:00:00+00:00","n":%d,"msg":"msg-%012dxxxxxxxxxxxxxxxxxxxxxxxx"}', g, g % 1000, g)
  end
  return wrk.format("POST", path, { ["Content-Type"] = "application/json" }, "[" .. table.concat(rows, ",") .. "]")
end

-- non-2xx answers are counted by wrk ("Non-2xx or 3xx responses"); print the percentiles the
-- suite reads, in milliseconds.
function done(summary, latency, requests)
  io.write(string.format("wrk_requests=%d\n", summary.requests))
  io.write(string.format("wrk_duration_s=%.3f\n", summary.duration / 1e6))
  io.write(string.format("wrk_errors=%d\n", summary.errors.connect + summary.errors.read + summary.errors.write +
                                            summary.errors.status + summary.errors.timeout))
  io.write(string.format("wrk_status_errors=%d\n", summary.errors.status))
  io.write(string.format("wrk_timeouts=%d\n", summary.errors.timeout))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("wrk_p%s_ms=%.2f\n", tostring(p):gsub("%.", ""), latency:percentile(p) / 1000))
  end
  io.write(string.format("wrk_max_ms=%.2f\n", latency.max / 1000))
end
