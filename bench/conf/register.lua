-- wrk script: every request registers a new service instance (service + TTL check), IDs unique per thread.
-- The done() hook prints one JSON line with the figures the benchmark reads.
local counter = 0
local prefix = os.getenv("SY_ID_PREFIX") or "w"
request = function()
  counter = counter + 1
  local body = string.format(
    '{"Name":"svc-%d","ID":"%s-%d","Address":"127.0.0.1","Port":%d,"Tags":["bench"],"Check":{"TTL":"10m"}}',
    counter % 100, prefix, counter, 10000 + (counter % 50000))
  return wrk.format("PUT", "/v1/agent/service/register", { ["Content-Type"] = "application/json" }, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
