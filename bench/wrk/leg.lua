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
--   LEG_AUTH_FILE   a file of Authorization header values, one per line: the requests take
--                   them in turn (each thread starting at a different line), so the load is
--                   spread over many clients. Replaces LEG_AUTH.
--   LEG_REQUEST_FILE  a file of whole requests, one per line: METHOD <TAB> PATH <TAB> DPOP
--                   <TAB> BODY (DPOP: a DPoP header value, or empty), each sent once; with
--                   LEG_THREADS threads, thread k takes lines k+1, k+1+LEG_THREADS, ... For
--                   single-use credentials (client assertions, DPoP proofs: bench/secretless.mjs
--                   makes them). A thread that runs out starts its lines again and counts each
--                   request it sends twice ("reused"); the server refuses those. LEG_AUTH and
--                   LEG_CTYPE still apply.
--   LEG_TIMELINE    "1": count answers per status and per wall-clock second (epoch seconds),
--                   reported as "statuses" and "timeline" (costs Lua per response: for legs
--                   where what happens over time matters more than wrk's own cost, such as the
--                   outage leg).
-- At the end, one line `WRK_JSON {...}` with the counts and the latency distribution (µs).

local method = os.getenv("LEG_METHOD") or "GET"
local body = os.getenv("LEG_BODY")
local ctype = os.getenv("LEG_CTYPE")
local auth = os.getenv("LEG_AUTH")
local players = os.getenv("LEG_PLAYERS") == "1"
local players_count = tonumber(os.getenv("LEG_PLAYERS_COUNT") or "26")
local expect = tonumber(os.getenv("LEG_EXPECT") or "")
local auth_file = os.getenv("LEG_AUTH_FILE")
local timeline_on = os.getenv("LEG_TIMELINE") == "1"
local request_file = os.getenv("LEG_REQUEST_FILE")
local file_threads = tonumber(os.getenv("LEG_THREADS") or "1")

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

if auth_file ~= nil and auth_file ~= "" then
  -- One request per Authorization value, built once; request() takes the next one.
  local requests = {}
  local next_index = 1
  function init(args)
    local file = assert(io.open(auth_file, "r"), "LEG_AUTH_FILE: cannot open " .. auth_file)
    for line in file:lines() do
      if line ~= "" then
        local headers = { ["Authorization"] = line }
        if ctype ~= nil and ctype ~= "" then
          headers["Content-Type"] = ctype
        end
        table.insert(requests, wrk.format(method, nil, headers, body))
      end
    end
    file:close()
    assert(#requests > 0, "LEG_AUTH_FILE is empty")
    -- Threads start far apart in the list so they do not ask for the same clients in step.
    next_index = math.floor((thread_index or 0) * #requests / 2) % #requests + 1
  end
  function request()
    local r = requests[next_index]
    next_index = next_index % #requests + 1
    return r
  end
end

reused = 0
if request_file ~= nil and request_file ~= "" then
  -- This thread's share of the file's requests, built once; request() takes the next one.
  local requests = {}
  local next_index = 1
  function init(args)
    local file = assert(io.open(request_file, "r"), "LEG_REQUEST_FILE: cannot open " .. request_file)
    local mine = thread_index or 0
    local n = 0
    for line in file:lines() do
      if line ~= "" then
        if n % file_threads == mine then
          local method, path, dpop, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
          assert(method ~= nil, "LEG_REQUEST_FILE: a line is not METHOD<TAB>PATH<TAB>DPOP<TAB>BODY")
          local headers = {}
          if auth ~= nil and auth ~= "" then
            headers["Authorization"] = auth
          end
          if ctype ~= nil and ctype ~= "" then
            headers["Content-Type"] = ctype
          end
          if dpop ~= "" then
            headers["DPoP"] = dpop
          end
          if body == "" then
            body = nil
          end
          table.insert(requests, wrk.format(method, path, headers, body))
        end
        n = n + 1
      end
    end
    file:close()
    assert(#requests > 0, "LEG_REQUEST_FILE has no line for thread " .. mine)
  end
  local sent = 0
  function request()
    local r = requests[next_index]
    next_index = next_index % #requests + 1
    if sent >= #requests then
      reused = reused + 1
    end
    sent = sent + 1
    return r
  end
end

-- Per status, and per epoch second (LEG_TIMELINE): flat tables, because thread:get copies
-- nested tables badly (wrk 4.1 crashes).
statuses = {}
timeline_ok = {}
timeline_other = {}

if expect ~= nil or timeline_on then
  function response(status, headers, body)
    if expect ~= nil then
      if status == expect then
        expected = expected + 1
      else
        unexpected = unexpected + 1
        last_unexpected = status
      end
    end
    if timeline_on then
      statuses[status] = (statuses[status] or 0) + 1
      local second = os.time()
      if status >= 200 and status < 300 then
        timeline_ok[second] = (timeline_ok[second] or 0) + 1
      else
        timeline_other[second] = (timeline_other[second] or 0) + 1
      end
    end
  end
end

function done(summary, latency, requests)
  local got_expected, got_unexpected, last, got_reused = 0, 0, 0, 0
  local all_statuses, all_timeline = {}, {}
  for _, thread in ipairs(threads) do
    got_expected = got_expected + (thread:get("expected") or 0)
    got_unexpected = got_unexpected + (thread:get("unexpected") or 0)
    got_reused = got_reused + (thread:get("reused") or 0)
    local l = thread:get("last_unexpected") or 0
    if l ~= 0 then last = l end
    for status, n in pairs(thread:get("statuses") or {}) do
      all_statuses[status] = (all_statuses[status] or 0) + n
    end
    for second, n in pairs(thread:get("timeline_ok") or {}) do
      local into = all_timeline[second] or { 0, 0 }
      into[1] = into[1] + n
      all_timeline[second] = into
    end
    for second, n in pairs(thread:get("timeline_other") or {}) do
      local into = all_timeline[second] or { 0, 0 }
      into[2] = into[2] + n
      all_timeline[second] = into
    end
  end
  local status_parts = {}
  for status, n in pairs(all_statuses) do
    table.insert(status_parts, string.format('"%d":%d', status, n))
  end
  local epoch_seconds = {}
  for second in pairs(all_timeline) do
    table.insert(epoch_seconds, second)
  end
  table.sort(epoch_seconds)
  local timeline_parts = {}
  for _, second in ipairs(epoch_seconds) do
    local slot = all_timeline[second]
    table.insert(timeline_parts, string.format("[%d,%d,%d]", second, slot[1], slot[2]))
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  local out = string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"bytes":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"non_2xx_3xx":%d,"expect":%s,"expected":%d,"unexpected":%d,"last_unexpected":%d,' ..
    '"lat_mean_us":%.1f,"lat_p50_us":%d,"lat_p90_us":%d,"lat_p99_us":%d,' ..
    '"lat_p999_us":%d,"lat_max_us":%d,"statuses":{%s},"timeline":[%s],"reused":%d}',
    summary.requests, seconds, summary.requests / seconds, summary.bytes,
    e.connect, e.read, e.write, e.timeout,
    e.status, expect and tostring(expect) or "null", got_expected, got_unexpected, last,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max,
    table.concat(status_parts, ","), table.concat(timeline_parts, ","), got_reused)
  io.write("WRK_JSON " .. out .. "\n")
end
