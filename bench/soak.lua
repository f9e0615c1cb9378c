-- wrk script for bench/soak: POST one command per request, spreading the
-- requests over box-1..box-BOXES (one counter per wrk thread, threads start at
-- different offsets).
--
--   wrk ... -s bench/soak.lua http://127.0.0.1:PORT -- BOXES TIMEOUT_MS
--
-- Requests are formatted once in init(). response() counts statuses, since
-- wrk itself only counts >= 400; done() prints one line
--   SOAKRESULT requests=N non2xx=N connect=N read=N write=N timeout=N statuses=CODE:N,...
-- that bench/soak parses.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local requests = {}
local counter = 1
statuses = {}  -- global: done() reads it from each thread

function init(args)
  local boxes = tonumber(args[1] or "100")
  local timeout = args[2] or "5000"
  local headers = { ["Content-Type"] = "application/json" }
  for i = 1, boxes do
    requests[i] = wrk.format("POST", "/v1/devices/box-" .. i .. "/commands?timeout_ms=" .. timeout, headers,
                             '{"method":"soak","params":{"box":' .. i .. '}}')
  end
  counter = (id or 0) * 7919 % #requests + 1
end

function request()
  local r = requests[counter]
  counter = counter % #requests + 1
  return r
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests_)
  local by_status, non2xx, parts = {}, 0, {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses") or {}) do by_status[code] = (by_status[code] or 0) + n end
  end
  for code, n in pairs(by_status) do
    if code < 200 or code > 299 then non2xx = non2xx + n end
    table.insert(parts, code .. ":" .. n)
  end
  table.sort(parts)
  local e = summary.errors
  io.write(string.format(
    "SOAKRESULT requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d max_us=%d statuses=%s\n",
    summary.requests, non2xx, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max,
    (#parts > 0) and table.concat(parts, ",") or "-"))
end
