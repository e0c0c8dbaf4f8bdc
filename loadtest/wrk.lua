-- The one wrk script of `just loadtest`; loadtest/run.py drives it (not meant to be run by hand).
--
-- wrk's own summary counts only statuses >= 400 as errors and prints latency for humans; the load
-- test needs every status that was not a success, and percentiles a program can read. So each
-- thread counts statuses in `response`, and `done` prints one JSON line for run.py.
--
-- Environment (set by run.py for each wrk it starts):
--   LOADTEST_METHOD, LOADTEST_BODY — the request's method and body (wrk has no flags for them);
--                                    headers come from wrk's -H flags.
--   LOADTEST_DELAY_MS              — pause before each request on a connection (a paced load).
--   LOADTEST_MODE=signup           — every request is POST /api/accounts with a fresh username
--                                    from a fresh client address (X-Forwarded-For, believed
--                                    because run.py starts the server with --trusted-proxies
--                                    127.0.0.1): registration is throttled per client, and the
--                                    load generator must look like many new users, not one
--                                    abusive one. LOADTEST_PREFIX keeps the names of one run
--                                    apart from another's.

wrk.method = os.getenv("LOADTEST_METHOD") or wrk.method
wrk.body = os.getenv("LOADTEST_BODY") or wrk.body

local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  sent = 0
  prefix = os.getenv("LOADTEST_PREFIX") or "lt"
end

-- A paced load: each connection waits this long before each request, so that a load meant to run
-- beside another one takes what a real client would, not every cycle the server can spare.
local delay_ms = tonumber(os.getenv("LOADTEST_DELAY_MS") or "")
if delay_ms then
  function delay()
    return delay_ms
  end
end

-- Defined only when needed: without a `request` function wrk sends one prebuilt request over and
-- over, which keeps the load generator cheap for the fast endpoints.
if os.getenv("LOADTEST_MODE") == "signup" then
  function request()
    sent = sent + 1
    -- 10.<thread>.<high>.<low>: one address per sign-up, 65 536 per thread.
    local address = string.format("10.%d.%d.%d",
      thread_no % 256, math.floor(sent / 256) % 256, sent % 256)
    local username = string.format("%s-%d-%d", prefix, thread_no, sent)
    local body = string.format('{"username":"%s","password":"load test password %d"}',
      username, sent)
    return wrk.format("POST", "/api/accounts", {
      ["Content-Type"] = "application/json",
      ["X-Forwarded-For"] = address,
    }, body)
  end
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

local function json_object(counts)
  local parts = {}
  for key, count in pairs(counts) do
    table.insert(parts, string.format('"%s":%d', key, count))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local e = summary.errors
  io.write(string.format(
    'LOADTEST_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d},"statuses":%s}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout,
    json_object(merged)))
end
