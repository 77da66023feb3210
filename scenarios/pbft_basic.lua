-- pbft_basic — PBFT's normal case under a key-value load.
-- Set-up: 4 replicas (f = 1), 8 clients, Ed25519 on every message,
-- uniform 1–5 ms links. Workload: 1,000 put/get/del/cas operations on 16
-- keys at Poisson intervals (mean 4 ms), each from a random client.
-- Expected: every operation is answered (f+1 matching replies), and
-- agreement, total order, validity, integrity, batch agreement,
-- exactly-once, linearizability of the clients' history and liveness all
-- hold.
local synod = require "synod"
local kv = require "workloads.kv"
local report = require "report"

local seed = synod.args.seed or 1
local OPS = 1000
local sim = synod.sim { seed = seed, latency = synod.dist.uniform("1ms", "5ms"), crypto = "ed25519" }
local nodes = sim:cluster { protocol = "pbft", n = 4, clients = 8, batch_size = 10, batch_delay_ms = 2 }

local load = kv.start(sim, nodes, { count = OPS, mean = "4ms", keys = 16 })
local reason = sim:run { stop = function() return nodes:completed() >= OPS end, timeout = "120s" }

local verdict = nodes:check { liveness = { bound = "2s" } }
report.print_run("pbft_basic", sim, nodes, verdict)
local pbft = report.print_pbft(nodes)
print(("operations answered: %d of %d submitted"):format(nodes:completed(), load.submitted))

local ok = verdict.ok and reason == "stop"
return report.finish {
  ok = ok, seed = seed, trace = sim:trace_hash(), script = "scenarios/pbft_basic.lua", verdict = verdict,
  reason = not ok and (reason ~= "stop" and ("run ended by " .. reason) or "checks failed") or nil,
  facts = { submitted = load.submitted, completed = nodes:completed(), pbft = pbft, nodes = report.nodes(nodes) },
}
