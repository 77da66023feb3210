-- pbft_view_change — the primary goes silent mid-run; the backups change
-- view and progress resumes.
-- Set-up: 4 replicas (f = 1), 6 clients, Ed25519, uniform 1–5 ms links,
-- view_change_ms = 1s, client_timeout_ms = 500ms. Workload: 600 key-value
-- operations at Poisson intervals (mean 5 ms). Fault: at 1 s replica 0,
-- the primary of view 0, stops sending anything (behaviors.silent) while it
-- still listens.
-- Expected: clients time out and broadcast their requests, the backups'
-- view-change timers fire, view 1 (primary 1) is entered by every honest
-- replica, every operation is answered, and all checkers hold over the
-- honest replicas.
local synod = require "synod"
local kv = require "workloads.kv"
local silent = require "behaviors.silent"
local report = require "report"

local seed = synod.args.seed or 1
local OPS, SILENT_AT = 600, synod.time("1s")
local sim = synod.sim { seed = seed, latency = synod.dist.uniform("1ms", "5ms"), crypto = "ed25519" }
local nodes = sim:cluster { protocol = "pbft", n = 4, clients = 6, view_change_ms = 1000, client_timeout_ms = 500 }

local load = kv.start(sim, nodes, { count = OPS, mean = "5ms", keys = 12 })
local before
sim:at(SILENT_AT, function()
  before = nodes:completed()
  nodes[1]:behave(silent())
end)
local reason = sim:run { stop = function() return nodes:completed() >= OPS end, timeout = "120s" }

local verdict = nodes:check { liveness = { bound = "10s" } }
report.print_run("pbft_view_change", sim, nodes, verdict)
local pbft = report.print_pbft(nodes)
local min_view = math.huge
for i = 2, nodes.n do min_view = math.min(min_view, nodes[i]:status().view) end
print(("answered before the primary went silent: %d · after: %d · lowest honest view: %d"):format(
  before or 0, nodes:completed() - (before or 0), min_view))

local ok = verdict.ok and reason == "stop" and min_view >= 1 and before and before < OPS
local why
if not ok then
  why = reason ~= "stop" and ("run ended by " .. reason) or min_view < 1 and "no view change happened"
     or not (before and before < OPS) and "the primary went silent too late to matter" or "checks failed"
end
return report.finish {
  ok = ok, seed = seed, trace = sim:trace_hash(), script = "scenarios/pbft_view_change.lua", reason = why,
  verdict = verdict,
  facts = { submitted = load.submitted, completed = nodes:completed(), before_silence = before,
            lowest_view = min_view, pbft = pbft, nodes = report.nodes(nodes) },
}
