-- showcase — what `make run` shows: Lamport totally ordered multicast in
-- the deterministic simulator, first honest, then with node 3 equivocating
-- (a different word to half its peers under one timestamp), once with the
-- echo defence and once without it; then PBFT, whose primary equivocates
-- and later goes silent.
-- Passes when the honest and defended runs satisfy every checker (and the
-- defended one names node 3), the undefended one is caught by them, and the
-- PBFT run keeps every checker green through a view change, with the
-- primary's two signed pre-prepares held as evidence.
local synod = require "synod"
local words = require "workloads.words"
local report = require "report"
local equivocate = require "behaviors.tom.equivocate"

local seed = synod.args.seed or 1

local function run(title, params, attack)
  local sim = synod.sim { seed = seed, latency = synod.dist.uniform("1ms", "15ms") }
  params.protocol, params.n = "tom", 5
  local nodes = sim:cluster(params)
  if attack then nodes[4]:behave(equivocate()) end
  words.start(sim, nodes, { count = 300, mean = "20ms" })
  sim:run { timeout = "60s" }
  local verdict = nodes:check { liveness = { bound = "5s" } }
  print()
  report.print_run(title, sim, nodes, verdict)
  return sim, nodes, verdict
end

print(("synod %s showcase — seed %d (replay: ./synod run scenarios/showcase.lua --seed %d)"):format(
  synod.version, seed, seed))
local s1, _, honest = run("1. honest: 300 words, uniform 1–15 ms links", {}, false)
local s2, n2, defended = run("2. node 3 equivocates, echo defence on", {}, true)
local s3, _, exposed = run("3. node 3 equivocates, echo defence off", { echo = 0 }, true)

-- 4. PBFT: replica 0, the primary, sends some backups a different batch
-- than the others (and then the truth too), and goes silent at 600 ms.
local s4 = synod.sim { seed = seed, latency = synod.dist.uniform("1ms", "5ms"), crypto = "ed25519" }
local p4 = s4:cluster { protocol = "pbft", n = 4, clients = 4, view_change_ms = 500, client_timeout_ms = 300 }
p4[1]:behave(require "behaviors.pbft.equivocate" { leak = true })
s4:at(synod.time("600ms"), function() p4[1]:behave(require "behaviors.pbft.silent" ()) end)
require("workloads.kv").start(s4, p4, { count = 400, mean = "3ms", keys = 10 })
s4:run { stop = function() return p4:completed() >= 400 end, timeout = "60s" }
local pbft = p4:check { liveness = { bound = "5s" } }
print()
report.print_run("4. PBFT, n = 4: the primary equivocates, then goes silent at 600 ms", s4, p4, pbft)
report.print_pbft(p4)
local views_ok = true
for i = 2, 4 do views_ok = views_ok and p4[i]:status().view >= 1 end

local named = 0
for _, node in ipairs(n2:honest()) do
  for _, e in ipairs(node:evidence()) do if e.against == 3 then named = named + 1 break end end
end
print()
print(("2 → node 3 named by %d of %d honest nodes, each holding both of its signed versions"):format(named, #n2:honest()))
print(("3 → without the defence the checkers %s"):format(exposed.ok and "saw NOTHING (bad)" or "catch it:"))
if not exposed.ok then
  for line in exposed:explain():gmatch("[^\n]+") do print("    " .. line) end
end

local evidence = #p4[3]:evidence()
print(("4 → %d of 400 ops answered, view changed: %s, replica 2 holds %d pieces of evidence against the primary"):format(
  p4:completed(), views_ok and "yes" or "NO", evidence))

local ok = honest.ok and defended.ok and named == #n2:honest() and not exposed.ok
  and pbft.ok and views_ok and evidence > 0 and p4:completed() >= 400
local trace = synod.crypto.digest(s1:trace_hash() .. s2:trace_hash() .. s3:trace_hash() .. s4:trace_hash())
print()
return report.finish {
  ok = ok, seed = seed, script = "scenarios/showcase.lua",
  trace = trace:gsub(".", function(c) return ("%02x"):format(c:byte()) end),
  reason = not ok and "a run did not end as expected" or nil,
}
