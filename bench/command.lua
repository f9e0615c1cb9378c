-- wrk script for bench/run: POST one command per request to a spread of boxes.
--
--   wrk ... -s bench/command.lua http://127.0.0.1:PORT -- BOXES FIRST [TIMEOUT_MS [SPREAD_MS CONNS_PER_THREAD [RATE]]]
--
-- Each request goes to /v1/devices/box-<k>/commands with
-- k = FIRST .. FIRST+BOXES-1 in turn (one counter per wrk thread, threads start
-- at different offsets), body {"method":"ping","params":{"n":1}}.
-- SPREAD_MS > 0 delays each connection's first request by a random 0..SPREAD_MS
-- (wrk starts its latency clock after the delay): with slow devices, connections
-- that all start together stay in lock-step and replies come in waves every
-- device delay, which makes a completion count over a window depend on where
-- the window falls. Spread over one device delay, completions arrive evenly.
-- RATE > 0 paces each wrk thread to RATE requests/s (wrk has no rate of its
-- own): every request takes the thread's next slot, 1/RATE s after the one
-- before, and waits for it (wrk's latency clock starts after the wait). With
-- enough connections to cover the latency the rate holds steady; a thread
-- that fell more than a second behind starts its slots again from now rather
-- than sending the backlog at once. (SPREAD_MS is then ignored.)
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
  rate = tonumber(args[6] or "0")
  if rate > 0 then
    delay = paced_delay
  elseif spread_ms > 0 and first_requests > 0 then
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

-- The thread's monotonic clock in milliseconds (LuaJIT's ffi: wrk's Lua has
-- only second-resolution clocks of its own).
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local next_slot = nil
function paced_delay()
  local now = now_ms()
  if next_slot == nil or next_slot < now - 1000 then next_slot = now end
  local wait = next_slot - now
  next_slot = next_slot + 1000 / rate
  if wait <= 0 then return 0 end
  return math.floor(wait + 0.5)
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
