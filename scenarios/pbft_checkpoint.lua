-- pbft_checkpoint — checkpoints keep the log bounded, and a replica that
-- was cut off catches up by state transfer.
-- Set-up: 4 replicas (f = 1), 8 clients, Ed25519, uniform 1–5 ms links,
-- a checkpoint every 100 sequence numbers (K), watermark window 200 (L),
-- one request per batch so the sequence numbers run far. Workload: 1,500
-- key-value operations at Poisson intervals (mean 3 ms). Fault: replica 3
-- is partitioned away from everyone from 0.8 s to 3.5 s.
-- Expected: at least 10 stable checkpoints; no replica's log ever holds
-- more than L slots; replica 3 falls more than L behind, fetches the
-- stable checkpoint's state (verified against its 2f+1 signed proof) and
-- the committed batches after it, and ends at the same sequence number and
-- state as the others; every operation is answered; all checkers hold.
local synod = require "synod"
local kv = require "workloads.kv"
local report = require "report"

local seed = synod.args.seed or 1
local OPS, CUT, HEAL = 1500, synod.time("800ms"), synod.time("3500ms")
local K, L = 100, 200
local sim = synod.sim { seed = seed, latency = synod.dist.uniform("1ms", "5ms"), crypto = "ed25519" }
local nodes = sim:cluster { protocol = "pbft", n = 4, clients = 8, batch_size = 1,
                            checkpoint_interval = K, window = L }

local load = kv.start(sim, nodes, { count = OPS, mean = "3ms", keys = 24 })
sim:at(CUT, function() sim:partition({ 3 }, { 0, 1, 2 }) end)
sim:at(HEAL, function() sim:heal() end)
-- The log size, sampled every 10 ms of virtual time.
local max_log, gap_at_heal = 0, 0
local function sample()
  for i = 1, nodes.n do max_log = math.max(max_log, nodes[i]:status().log_slots) end
  if not load.done() or nodes:completed() < OPS then sim:after("10ms", sample) end
end
sample()
sim:at(HEAL, function() gap_at_heal = nodes[1]:status().last_executed - nodes[4]:status().last_executed end)
local reason = sim:run {
  stop = function()
    return nodes:completed() >= OPS and nodes[4]:status().last_executed == nodes[1]:status().last_executed
  end,
  timeout = "120s",
}

local verdict = nodes:check { liveness = { heal_at = HEAL, bound = "10s" } }
report.print_run("pbft_checkpoint", sim, nodes, verdict)
local pbft = report.print_pbft(nodes)
local lagger, leader = nodes[4]:status(), nodes[1]:status()
local stable = leader.stable_checkpoint // K
print(("stable checkpoints: %d · largest log: %d slots (L = %d) · replica 3 was %d behind at the heal, "
       .. "made %d state transfer(s), ends at seq %d (others %d)"):format(
  stable, max_log, L, gap_at_heal, lagger.state_transfers, lagger.last_executed, leader.last_executed))

local checks = {
  { verdict.ok, "checks failed" },
  { reason == "stop", "run ended by " .. reason },
  { stable >= 10, ("only %d stable checkpoints"):format(stable) },
  { max_log <= L, ("a log grew to %d slots"):format(max_log) },
  { gap_at_heal > L, ("replica 3 was only %d behind"):format(gap_at_heal) },
  { lagger.state_transfers >= 1, "replica 3 caught up without a state transfer" },
}
local ok, why = true, nil
for _, c in ipairs(checks) do if not c[1] then ok, why = false, c[2]; break end end
return report.finish {
  ok = ok, seed = seed, trace = sim:trace_hash(), script = "scenarios/pbft_checkpoint.lua", reason = why,
  verdict = verdict,
  facts = { submitted = load.submitted, completed = nodes:completed(), stable_checkpoints = stable,
            max_log_slots = max_log, gap_at_heal = gap_at_heal, pbft = pbft, nodes = report.nodes(nodes) },
}
