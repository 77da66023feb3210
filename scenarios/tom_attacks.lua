-- tom_attacks — every TOM attack, twice.
-- Set-up: 4 nodes, uniform 1–10 ms links, real Ed25519 signatures; node 3
-- is the attacker and multicasts like everyone else.
-- For each attack:
--   defended: its defence on → every checker passes, every honest node holds
--             evidence naming node 3, and no honest node is accused;
--   exposed:  that one defence off → at least one checker reports the
--             violation (the attack really does harm, and the checkers see it).
-- The scenario passes only if both happen for every attack.
local synod = require "synod"
local words = require "workloads.words"
local report = require "report"

local seed = synod.args.seed or 7
local ATTACKER = 3

local attacks = {
  { name = "ts_reuse",    behaviour = "behaviors.tom.ts_reuse",    off = { reject_reuse = 0 } },
  { name = "ts_backdate", behaviour = "behaviors.tom.ts_backdate", off = { reject_backdate = 0 } },
  { name = "ts_future",   behaviour = "behaviors.tom.ts_future",   off = { max_drift = 0 } },
  { name = "equivocate",  behaviour = "behaviors.tom.equivocate",  off = { echo = 0 } },
}

local function run(attack, defended)
  local sim = synod.sim { seed = seed, latency = synod.dist.uniform("1ms", "10ms") }
  local cluster = { protocol = "tom", n = 4 }
  if not defended then for k, v in pairs(attack.off) do cluster[k] = v end end
  local nodes = sim:cluster(cluster)
  nodes[ATTACKER + 1]:behave(require(attack.behaviour)())
  local load = words.start(sim, nodes, { count = 120, mean = "20ms" })
  sim:run { timeout = "60s" }                    -- until the cluster goes quiet
  local verdict = nodes:check { liveness = { bound = "5s" } }
  -- who names whom
  local named_by, false_accusations = 0, 0
  for _, node in ipairs(nodes:honest()) do
    local names_attacker = false
    for _, e in ipairs(node:evidence()) do
      if e.against == ATTACKER then names_attacker = true else false_accusations = false_accusations + 1 end
    end
    if names_attacker then named_by = named_by + 1 end
  end
  local failed = {}
  for _, name in ipairs(verdict.order) do
    if not verdict.checks[name].ok then failed[#failed + 1] = name end
  end
  return { sim = sim, nodes = nodes, verdict = verdict, named_by = named_by, honest = #nodes:honest(),
           false_accusations = false_accusations, failed = failed, submitted = load.submitted }
end

print(("tom_attacks — seed %d, attacker node %d"):format(seed, ATTACKER))
local all_ok, facts, hashes, lines = true, {}, {}, {}
for _, attack in ipairs(attacks) do
  local on = run(attack, true)
  local off = run(attack, false)
  report.print_run(attack.name .. ", defence on", on.sim, on.nodes, on.verdict)
  report.print_run(attack.name .. ", defence off", off.sim, off.nodes, off.verdict)
  print()
  local defended_ok = on.verdict.ok and on.named_by == on.honest and on.false_accusations == 0
  local exposed_ok = not off.verdict.ok
  all_ok = all_ok and defended_ok and exposed_ok
  lines[#lines + 1] = ("%-12s %-9s %-8s %-22s %s"):format(attack.name, "on", on.verdict.ok and "ok" or "FAIL",
    ("%d of %d honest"):format(on.named_by, on.honest), on.false_accusations > 0 and "FALSE ACCUSATION" or "-")
  lines[#lines + 1] = ("%-12s %-9s %-8s %-22s %s"):format("", "off", off.verdict.ok and "ok" or "FAIL", "-",
    #off.failed > 0 and table.concat(off.failed, ", ") or "NONE (attack went unseen)")
  facts[#facts + 1] = { attack = attack.name, defended_ok = defended_ok, exposed_ok = exposed_ok,
                        named_by = on.named_by, honest = on.honest, caught_by = off.failed }
  hashes[#hashes + 1] = on.sim:trace_hash() .. off.sim:trace_hash()
end

print("summary")
print(("%-12s %-9s %-8s %-22s %s"):format("attack", "defence", "checks", "attacker named by", "violations caught"))
for _, line in ipairs(lines) do print(line) end

-- One trace hash for the whole scenario: the hash of every run's hash.
local trace = synod.crypto.digest(table.concat(hashes))
trace = trace:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
return report.finish {
  ok = all_ok, seed = seed, trace = trace, script = "scenarios/tom_attacks.lua",
  reason = not all_ok and "an attack was not stopped with its defence on, or not seen with it off" or nil,
  facts = { attacks = facts },
}
