-- wrk script for bench/run: POST one command per request to a spread of boxes.
--
--   wrk ... -s bench/command.lua http://127.0.0.1:PORT -- BOXES FIRST [TIMEOUT_MS [SPREAD_MS CONNS_PER_THREAD]]
--
-- Each request goes to /v1/devices/box-<k>/commands with
-- k = FIRST .. FIRST+BOXES-1 in turn (one counter per wrk thread, threads start
-- at different offsets), body {"method":"ping","params":{"n":1}}.
-- SPREAD_MS > 0 delays each connection's first request by a random 0..SPREAD_MS
-- (wrk starts its latency clock after the delay): with slow devices, connections
-- that all start together stay in lock-step and replies come in waves every
-- device delay, which makes a completion count over a window depend on where
-- the window falls. Spread over one device delay, completions arrive evenly.
-- The requests are formatted once in init(), so wrk spends no Lua time building
-- them. response() counts the status codes (wrk itself only counts >= 400).
-- done() prints one line "BENCHRESULT key=value ..." that bench/run parses;
-- latencies are in microseconds, over the whole run.

local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local requests = {}
-- Global, so done() can read it from each thread with thread:get("statuses").
statuses = {}

function init(args)
  local boxes = tonumber(args[1] or "100")
  local first = tonumber(args[2] or "1")
  local query = ""
  if args[3] and args[3] ~= "" then query = "?timeout_ms=" .. args[3] end
  local headers = { ["Content-Type"] = "application/json" }
  local body = '{"method":"ping","params":{"n":1}}'
  for i = 0, boxes - 1 do
    local path = "/v1/devices/box-" .. (first + i) .. "/commands" .. query
    requests[i + 1] = wrk.format("POST", path, headers, body)
  end
  -- Spread the threads over the boxes so they do not hit the same box together.
  counter = (id or 0) * 7919 % #requests + 1
  spread_ms = tonumber(args[4] or "0")
  first_requests = tonumber(args[5] or "0")
  if spread_ms > 0 and first_requests > 0 then
    math.randomseed(os.time() + (id or 0) * 1000003)
  else
    delay = nil  -- wrk asks for delay() only if it is defined after init()
  end
end

-- The first request of each of this thread's connections waits 0..spread_ms.
function delay()
  if first_requests > 0 then
    first_requests = first_requests - 1
    return math.random(0, spread_ms)
  end
  return 0
end

function request()
  local r = requests[counter]
  counter = counter + 1
  if counter > #requests then counter = 1 end
  return r
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests_)
  local non200 = 0
  local by_status = {}
  for _, t in ipairs(threads) do
    -- Thread tables cannot be read directly: ask each thread for its counts.
    local s = t:get("statuses") or {}
    for code, n in pairs(s) do
      by_status[code] = (by_status[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(by_status) do
    if code ~= 200 then
      non200 = non200 + n
      table.insert(parts, code .. ":" .. n)
    end
  end
  table.sort(parts)
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT requests=%d duration_us=%d mean_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "connect=%d read=%d write=%d timeout=%d status_errors=%d non200=%d statuses=%s\n",
    summary.requests, summary.duration, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status, non200,
    (#parts > 0) and table.concat(parts, ",") or "-"))
end
