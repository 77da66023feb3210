-- pbft_regressions — named attack and fault cases, each with a fixed seed,
-- each with its expectation. n = 4 replicas (f = 1), 4 clients, Ed25519,
-- uniform 1–5 ms links, view_change_ms = 400, client_timeout_ms = 250,
-- 150 key-value operations per case.
-- "safe" cases expect every safety checker to hold (agreement, total order,
-- validity, integrity, batches, exactly-once, linearizability) and every
-- operation to be answered. The negative control expects the opposite:
-- with f+1 colluding Byzantine replicas the checkers must report the safety
-- violation (the scenario fails if they do not — a checker that cannot
-- fail proves nothing).
--   ./synod run scenarios/pbft_regressions.lua [-- --case NAME]
local synod = require "synod"
local kv = require "workloads.kv"
local report = require "report"

local OPS = 150
local only
for i, a in ipairs(synod.args) do if a == "--case" then only = synod.args[i + 1] end end

local function cluster(seed)
  local sim = synod.sim { seed = seed, latency = synod.dist.uniform("1ms", "5ms"), crypto = "ed25519" }
  local nodes = sim:cluster { protocol = "pbft", n = 4, clients = 4, view_change_ms = 400, client_timeout_ms = 250,
                              checkpoint_interval = 10, window = 30 }
  return sim, nodes
end

local function behave(id, name, opts) return function(_, nodes) nodes[id + 1]:behave(require(name)(opts or {})) end end

local cases = {
  { name = "equivocating-twins", seed = 11, expect = "safe",
    doc = "two copies of the primary with one key, each talking to half the cluster",
    setup = function(sim) sim:twins { ids = { 0 }, world_b = { 2, 3, 6, 7 } } end },
  { name = "equivocating-primary", seed = 12, expect = "safe",
    doc = "the primary sends different pre-prepares to different backups",
    setup = behave(0, "behaviors.pbft.equivocate") },
  { name = "pre-prepare-seq-reuse", seed = 13, expect = "safe",
    doc = "the primary reuses a sequence number for a second batch",
    setup = behave(0, "behaviors.pbft.seq", { mode = "reuse" }) },
  { name = "pre-prepare-seq-skip", seed = 14, expect = "safe",
    doc = "the primary skips sequence numbers",
    setup = behave(0, "behaviors.pbft.seq", { mode = "skip" }) },
  { name = "bogus-view-change-certificate", seed = 15, expect = "safe",
    doc = "a backup forges a prepared certificate in its view-changes while the primary goes silent",
    setup = function(sim, nodes)
      nodes[2]:behave(require "behaviors.pbft.forged_view_change" {})
      nodes[1]:behave(require "behaviors.pbft.silent" { after = "300ms" })
    end,
    also = function(nodes)
      local n = 0
      for i = 3, 4 do n = n + (nodes[i]:counters().rejected.bad_view_change or 0) end
      return n > 0, ("honest replicas rejected %d forged view-changes"):format(n)
    end },
  { name = "future-view-pre-prepare", seed = 16, expect = "safe",
    doc = "the primary floods pre-prepares for views far ahead",
    setup = behave(0, "behaviors.pbft.future_views", { types = { "pre-prepare" } }) },
  { name = "everyone-suspects-the-primary", seed = 17, expect = "safe",
    doc = "the primary withholds from the start: every backup's timer fires on the same retried requests",
    setup = behave(0, "behaviors.pbft.silent"),
    also = function(nodes)
      for i = 2, 4 do if nodes[i]:status().view < 1 then return false, "a backup never left view 0" end end
      return true, "every backup left view 0"
    end },
  { name = "one-way-partition-around-the-primary", seed = 18, expect = "safe",
    doc = "from 300 ms to 1.5 s the primary hears everyone and nobody hears it",
    setup = function(sim)
      sim:at(synod.time("300ms"), function() for q = 1, 3 do sim:block(0, q) end end)
      sim:at(synod.time("1500ms"), function() sim:heal() end)
    end },
  { name = "restart-with-state", seed = 19, expect = "safe",
    doc = "replica 2 crashes at 300 ms and comes back from its durable records at 900 ms",
    setup = function(sim, nodes)
      sim:at(synod.time("300ms"), function() nodes[3]:crash() end)
      sim:at(synod.time("900ms"), function() nodes[3]:restart { durable = true } end)
    end },
  { name = "restart-without-state", seed = 20, expect = "safe",
    doc = "replica 2 crashes at 150 ms and comes back empty at 450 ms: it catches up by state transfer",
    setup = function(sim, nodes)
      sim:at(synod.time("150ms"), function() nodes[3]:crash() end)
      sim:at(synod.time("450ms"), function() nodes[3]:restart { durable = false } end)
    end,
    also = function(nodes)
      local s = nodes[3]:status()
      return s.state_transfers >= 1, ("replica 2 made %d state transfer(s)"):format(s.state_transfers)
    end },
  { name = "negative-control-f+1-colluding", seed = 21, expect = "violation",
    doc = "replicas 0 and 1 are twinned: two worlds of 3 replicas each order different batches",
    setup = function(sim) sim:twins { ids = { 0, 1 }, world_b = { 3, 6, 7 } } end },
}

local results, failed = {}, 0
for _, c in ipairs(cases) do
  if only == nil or only == c.name then
    local sim, nodes = cluster(c.seed)
    c.setup(sim, nodes)
    local load = kv.start(sim, nodes, { count = OPS, mean = "5ms", keys = 8 })
    local reason = sim:run { stop = function() return nodes:completed() >= OPS end, timeout = "60s" }
    local verdict = nodes:check { liveness = false }
    local ok, detail
    if c.expect == "safe" then
      ok = verdict.ok and reason == "stop"
      detail = not verdict.ok and verdict.summary:gsub("\n$", "")
            or reason ~= "stop" and ("%d of %d ops answered"):format(nodes:completed(), load.submitted)
            or ("all %d ops answered, every checker ok"):format(OPS)
      if ok and c.also then local good, text = c.also(nodes); ok = good; detail = detail .. "; " .. text end
    else
      local caught = {}
      for _, name in ipairs(verdict.order) do if not verdict.checks[name].ok then caught[#caught + 1] = name end end
      ok = not verdict.checks.agreement.ok or not verdict.checks.batches.ok
      detail = ok and ("the checkers report it: " .. table.concat(caught, ", ") .. " failed")
                  or "NO CHECKER NOTICED the f+1 collusion"
    end
    if not ok then failed = failed + 1 end
    results[#results + 1] = { name = c.name, seed = c.seed, expect = c.expect, ok = ok, detail = detail,
                              trace = sim:trace_hash() }
    print(("%-4s %-38s seed=%-3d %-9s %s"):format(ok and "ok" or "FAIL", c.name, c.seed, c.expect, detail))
    if not ok then print(("     replay: ./synod run scenarios/pbft_regressions.lua -- --case %s"):format(c.name)) end
  end
end
if #results == 0 then error(("pbft_regressions: no case named '%s'"):format(tostring(only)), 0) end
print(("%d cases, %d failed"):format(#results, failed))
return report.finish {
  ok = failed == 0, seed = cases[1].seed, trace = results[#results].trace, script = "scenarios/pbft_regressions.lua",
  reason = failed > 0 and ("%d case(s) failed"):format(failed) or nil, facts = { cases = results },
}
