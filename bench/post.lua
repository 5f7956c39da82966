-- wrk script: Eventarc binary-mode audit events (~2 KB), every request a distinct event (ce-id, insertId) so that
-- deduplication never short-circuits the measurement. MODE = ignored | compliant | violating.
-- violating: each request names a different pre-created open rule (open-N), so every event really fixes one.
local mode = os.getenv("MODE") or "ignored"
local threads = tonumber(os.getenv("THREADS") or "2")
local offset = tonumber(os.getenv("OFFSET") or "0")
local counter = 0
-- Set per thread by setup(): a global, since thread:set() writes into the thread's global table.
thread_id = 0
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

local padding = string.rep("x", 1200)

local function body(insert_id, method, rule, resource)
  return string.format([[{"insertId":"%s","logName":"projects/bench-project/logs/cloudaudit.googleapis.com%%2Factivity",
"operation":{"id":"operation-%s","producer":"compute.googleapis.com","first":true},
"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","serviceName":"compute.googleapis.com",
"methodName":"%s","resourceName":"%s",
"authenticationInfo":{"principalEmail":"careless.user@example.com"},
"requestMetadata":{"callerIp":"203.0.113.7","callerSuppliedUserAgent":"google-cloud-sdk gcloud/450.0.0 %s"},
"request":{"@type":"type.googleapis.com/compute.firewalls.insert","name":"%s","alloweds":[{"IPProtocol":"tcp","ports":["22"]}],"sourceRanges":["0.0.0.0/0"]}},
"resource":{"type":"gce_firewall_rule","labels":{"project_id":"bench-project","firewall_rule_id":"123"}},
"severity":"NOTICE","timestamp":"2026-11-26T10:00:00.000Z","receiveTimestamp":"2026-11-26T10:00:00.100Z"}]],
    insert_id, insert_id, method, resource, padding, rule)
end

request = function()
  counter = counter + 1
  local index = offset + counter * threads + thread_id
  local insert_id = string.format("bench-%d-%d", thread_id, counter)
  -- ignored: a change no policy watches (a disk), answered 200 after its journal row.
  local method, rule = "v1.compute.disks.insert", "ignored"
  local resource = "projects/bench-project/zones/us-central1-a/disks/ignored"
  if mode == "compliant" then
    method, rule = "v1.compute.firewalls.patch", "closed-" .. (index % 100)
    resource = "projects/bench-project/global/firewalls/" .. rule
  elseif mode == "violating" then
    method, rule = "v1.compute.firewalls.patch", "open-" .. index
    resource = "projects/bench-project/global/firewalls/" .. rule
  end
  local headers = {
    ["Content-Type"] = "application/json; charset=utf-8",
    ["ce-id"] = insert_id,
    ["ce-source"] = "//cloudaudit.googleapis.com/projects/bench-project/logs/activity",
    ["ce-specversion"] = "1.0",
    ["ce-type"] = "google.cloud.audit.log.v1.written",
    ["ce-methodname"] = method,
    ["ce-servicename"] = "compute.googleapis.com",
    ["ce-resourcename"] = resource,
  }
  return wrk.format("POST", "/", headers, body(insert_id, method, rule, resource))
end

-- RATE (events/s over all threads): paced instead of as fast as possible. Each thread hands out send times on a fixed
-- schedule; a connection whose response came back waits for the next free slot (wrk's delay(), in whole ms, so
-- a request may leave up to 1 ms early; the schedule itself never drifts).
local rate = tonumber(os.getenv("RATE") or "0")
if rate > 0 then
  local ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock, bench_timespec *now);
  ]]
  local clock = ffi.new("bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC
    return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
  end
  local interval = 1000 * threads / rate
  local next_slot = nil
  function delay()
    local now = now_ms()
    if next_slot == nil or next_slot < now - 1000 then
      next_slot = now
    end
    local slot = next_slot
    next_slot = next_slot + interval
    return math.max(0, math.floor(slot - now))
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests":%d,"rps":%.1f,"non2xx":%d,"errors":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.requests / (summary.duration / 1e6), e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
