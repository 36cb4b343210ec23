-- One load leg for wrk, configured from the environment (bench/run.sh sets these):
--   LEG_METHOD      GET, POST, PUT (default GET)
--   LEG_BODY        request body (default none)
--   LEG_CTYPE       Content-Type of the body
--   LEG_AUTH        Authorization header value (none when empty)
--   LEG_PLAYERS     "1": PUT /players/squadnumber/{n} for n = 1..LEG_PLAYERS_COUNT in turn,
--                   each with a valid player body for n (the request path is then ignored)
--   LEG_EXPECT      an HTTP status (e.g. 401): count responses with and without it. Left
--                   unset, wrk's own count of non-2xx/3xx responses is the error count (and no
--                   Lua runs per response, which keeps wrk's own cost down).
-- At the end, one line `WRK_JSON {...}` with the counts and the latency distribution (µs).

local method = os.getenv("LEG_METHOD") or "GET"
local body = os.getenv("LEG_BODY")
local ctype = os.getenv("LEG_CTYPE")
local auth = os.getenv("LEG_AUTH")
local players = os.getenv("LEG_PLAYERS") == "1"
local players_count = tonumber(os.getenv("LEG_PLAYERS_COUNT") or "26")
local expect = tonumber(os.getenv("LEG_EXPECT") or "")

wrk.method = method
if body ~= nil and body ~= "" then
  wrk.body = body
end
if ctype ~= nil and ctype ~= "" then
  wrk.headers["Content-Type"] = ctype
end
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

-- Per-thread state, read back by done() through thread:get.
local threads = {}
expected = 0
unexpected = 0
last_unexpected = 0

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

if players then
  -- Requests built once; request() only picks the next one.
  local requests = {}
  local next_index = 1
  function init(args)
    local headers = { ["Content-Type"] = "application/json" }
    if auth ~= nil and auth ~= "" then
      headers["Authorization"] = auth
    end
    for n = 1, players_count do
      local player = string.format(
        '{"firstName":"Bench","lastName":"Player %d","squadNumber":%d,' ..
        '"position":"Midfielder","abbrPosition":"CM","team":"Bench FC",' ..
        '"league":"Loopback League","dateOfBirth":"2000-01-%02d","starting11":false}',
        n, n, (n % 28) + 1)
      requests[n] = wrk.format("PUT", "/players/squadnumber/" .. n, headers, player)
    end
    -- Threads start at different players so they do not update the same row in step.
    next_index = ((thread_index or 0) * 13) % players_count + 1
  end
  function request()
    local r = requests[next_index]
    next_index = next_index % players_count + 1
    return r
  end
end

if expect ~= nil then
  function response(status, headers, body)
    if status == expect then
      expected = expected + 1
    else
      unexpected = unexpected + 1
      last_unexpected = status
    end
  end
end

function done(summary, latency, requests)
  local got_expected, got_unexpected, last = 0, 0, 0
  for _, thread in ipairs(threads) do
    got_expected = got_expected + (thread:get("expected") or 0)
    got_unexpected = got_unexpected + (thread:get("unexpected") or 0)
    local l = thread:get("last_unexpected") or 0
    if l ~= 0 then last = l end
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  local out = string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"bytes":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"non_2xx_3xx":%d,"expect":%s,"expected":%d,"unexpected":%d,"last_unexpected":%d,' ..
    '"lat_mean_us":%.1f,"lat_p50_us":%d,"lat_p90_us":%d,"lat_p99_us":%d,' ..
    '"lat_p999_us":%d,"lat_max_us":%d}',
    summary.requests, seconds, summary.requests / seconds, summary.bytes,
    e.connect, e.read, e.write, e.timeout,
    e.status, expect and tostring(expect) or "null", got_expected, got_unexpected, last,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max)
  io.write("WRK_JSON " .. out .. "\n")
end
