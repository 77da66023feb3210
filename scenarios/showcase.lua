-- showcase — what `make run` shows: Lamport totally ordered multicast in
-- the deterministic simulator, first honest, then with node 3 equivocating
-- (a different word to half its peers under one timestamp), once with the
-- echo defence and once without it.
-- Passes when the honest and defended runs satisfy every checker (and the
-- defended one names node 3) and the undefended one is caught by them.
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

local ok = honest.ok and defended.ok and named == #n2:honest() and not exposed.ok
local trace = synod.crypto.digest(s1:trace_hash() .. s2:trace_hash() .. s3:trace_hash())
print()
return report.finish {
  ok = ok, seed = seed, script = "scenarios/showcase.lua",
  trace = trace:gsub(".", function(c) return ("%02x"):format(c:byte()) end),
  reason = not ok and "a run did not end as expected" or nil,
}
