-- tom_basic — Lamport totally ordered multicast, the honest baseline.
-- Set-up: 5 nodes, links with uniformly random latency (1–20 ms), FIFO.
-- Workload: 1,000 words multicast at Poisson intervals from every node.
-- Verdict: every honest node delivers all 1,000 words in the same order,
-- in (timestamp, sender) order; agreement, total order, validity,
-- integrity, liveness all hold.
local synod = require "synod"
local words = require "workloads.words"
local report = require "report"

local seed = synod.args.seed or 42
local sim = synod.sim { seed = seed, latency = synod.dist.uniform("1ms", "20ms") }
local nodes = sim:cluster { protocol = "tom", n = 5 }

local load = words.start(sim, nodes, { count = 1000, rate = 40 })   -- words per second per node
local reason = sim:run {
  stop = function() return load.done() and nodes:min_delivered() >= load.count end,
  timeout = "120s",
}

local verdict = nodes:check { liveness = { bound = "5s" } }
report.print_run("tom_basic", sim, nodes, verdict)
local ok = verdict.ok and reason == "stop"
return report.finish {
  ok = ok, seed = seed, trace = sim:trace_hash(), script = "scenarios/tom_basic.lua", verdict = verdict,
  reason = not ok and (reason ~= "stop" and ("run ended by " .. reason) or "checks failed") or nil,
  facts = { delivered = nodes:min_delivered(), nodes = report.nodes(nodes) },
}
