-- tom_partition — a partition stalls TOM; healing restores it.
-- Set-up: 5 nodes, uniform 1–10 ms links. Workload: 600 words at Poisson
-- intervals from every node. Fault: from 1 s to 3 s the cluster is split
-- {0,1} | {2,3,4}; frames across the cut are lost (TOM retransmits them).
-- Expected: nothing new is delivered while the cut holds (a node delivers
-- only after hearing a later timestamp from every peer), everything is
-- delivered after the heal, and agreement, order, validity, integrity and
-- liveness (bounded from the heal) all hold.
local synod = require "synod"
local words = require "workloads.words"
local report = require "report"

local seed = synod.args.seed or 3
local CUT, HEAL, GRACE = synod.time("1s"), synod.time("3s"), synod.time("100ms")
local sim = synod.sim { seed = seed, latency = synod.dist.uniform("1ms", "10ms") }
local nodes = sim:cluster { protocol = "tom", n = 5 }

local load = words.start(sim, nodes, { count = 600, mean = "20ms" })
sim:at(CUT, function() sim:partition({ 0, 1 }, { 2, 3, 4 }) end)
sim:at(HEAL, function() sim:heal() end)
local reason = sim:run {
  stop = function() return load.done() and sim:now() > HEAL and nodes:min_delivered() >= load.count end,
  timeout = "120s",
}

-- Deliveries while the cut held (after a grace period for what was already in flight).
local during = 0
for i = 1, nodes.n do
  for _, d in ipairs(nodes[i]:history()) do
    if d.at > CUT + GRACE and d.at <= HEAL then during = during + 1 end
  end
end
local verdict = nodes:check { liveness = { heal_at = HEAL, bound = "5s" } }
report.print_run("tom_partition", sim, nodes, verdict)
print(("deliveries while partitioned: %d · delivered by the end: %d of %d on every node"):format(
  during, nodes:min_delivered(), load.count))

local ok = verdict.ok and reason == "stop" and during == 0
local why
if not ok then
  why = during > 0 and ("%d deliveries during the partition"):format(during)
     or reason ~= "stop" and ("run ended by " .. reason) or "checks failed"
end
return report.finish {
  ok = ok, seed = seed, trace = sim:trace_hash(), script = "scenarios/tom_partition.lua", reason = why, verdict = verdict,
  facts = { during_partition = during, delivered = nodes:min_delivered(), submitted = load.count,
            nodes = report.nodes(nodes) },
}
