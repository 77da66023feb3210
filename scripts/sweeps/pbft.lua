-- sweeps.pbft — one randomised PBFT run per seed, shared by
-- scenarios/pbft_sweep.lua (the command) and spec/pbft_sweep_spec.lua.
-- A seed draws: n (4, 5 or 7), clients, checkpoint interval and window,
-- batch size and delay, a latency distribution, loss, duplication and
-- reordering; up to f Byzantine replicas, each with a behaviour from the
-- library; a partition (one replica cut off, or a one-way cut around the
-- primary) that heals; a crash of an honest replica that restarts from its
-- durable records (or — only when no replica is Byzantine — with amnesia,
-- its records lost, catching up by state transfer). It runs a key-value
-- load and then checks safety (agreement, order, validity, integrity,
-- batches, exactly-once, linearizability) and liveness: every op answered
-- once the faults heal.
--
--   local sweep = require "sweeps.pbft"
--   local r = sweep.run(seed)   -- { ok, seed, setup = "…", why = "…" (failure) }
local synod = require "synod"
local kv = require "workloads.kv"

local M = {}

-- name → function(pick, n) returning a behaviour for a Byzantine replica.
-- Each is something a real faulty replica can do with its own key.
M.behaviours = {
  drop = function(pick) return require "behaviors.drop" { p = pick:random(20, 90) / 100 } end,
  delay = function(pick) return require "behaviors.delay" { by = synod.dist.uniform("1ms", "80ms") } end,
  duplicate = function(pick) return require "behaviors.duplicate" { p = pick:random(10, 60) / 100 } end,
  replay = function() return require "behaviors.replay" {} end,
  silent = function() return require "behaviors.silent" {} end,
}

-- Optional PBFT-specific behaviours (scripts/behaviors/pbft/*): each entry
-- is a module name and a function(pick) returning its options.
M.pbft_behaviours = {
  { "behaviors.pbft.equivocate", function() return {} end },
  { "behaviors.pbft.silent", function() return {} end },
  { "behaviors.pbft.seq", function(pick) return { mode = pick:random(2) == 1 and "skip" or "reuse" } end },
  { "behaviors.pbft.wrong_digest", function() return {} end },
  { "behaviors.pbft.forged_view_change", function() return {} end },
  { "behaviors.pbft.future_views", function() return {} end },
  { "behaviors.pbft.replay", function() return {} end },
  { "behaviors.pbft.slow_primary", function() return { delay = "250ms" } end },
}

local function behaviour_names()
  local names = {}
  for name in pairs(M.behaviours) do names[#names + 1] = name end
  table.sort(names)
  for _, e in ipairs(M.pbft_behaviours) do
    local ok = pcall(require, e[1])
    if ok then names[#names + 1] = e[1] end
  end
  return names
end

local function make_behaviour(name, pick)
  if M.behaviours[name] then return M.behaviours[name](pick) end
  for _, e in ipairs(M.pbft_behaviours) do
    if e[1] == name then return require(e[1])(e[2](pick)) end
  end
  error("unknown behaviour " .. name)
end

function M.run(seed, opts)
  opts = opts or {}
  local ops = opts.ops or 80
  local pick = synod.sim { seed = seed }          -- a throwaway sim: its PRNG draws the set-up
  pick:cluster { protocol = "tom", n = 1 }
  local ns = { 4, 5, 7 }
  local n = ns[pick:random(#ns)]
  local f = (n - 1) // 3
  local K = ({ 5, 10, 20 })[pick:random(3)]
  local latencies = {
    { "uniform 1-8ms", synod.dist.uniform("1ms", "8ms") }, { "exponential 4ms", synod.dist.exponential("4ms") },
    { "normal 5ms/2ms", synod.dist.normal("5ms", "2ms") }, { "pareto 1ms/2.5", synod.dist.pareto("1ms", 2.5) },
  }
  local lat = latencies[pick:random(#latencies)]
  local cfg = {
    seed = seed, crypto = "ed25519", latency = lat[2],
    loss = pick:random(0, 5) / 100, duplicate = pick:random(0, 5) / 100, reorder = pick:random(2) == 1,
  }
  local params = {
    protocol = "pbft", n = n, clients = pick:random(2, 5), checkpoint_interval = K, window = K * pick:random(2, 3),
    batch_size = pick:random(1, 8), batch_delay_ms = pick:random(0, 3), view_change_ms = 400,
    client_timeout_ms = 250, retransmit_ms = 50,
  }
  local sim = synod.sim(cfg)
  local nodes = sim:cluster(params)

  -- Up to f Byzantine replicas.
  local names = behaviour_names()
  local byz, byz_text = {}, {}
  for _ = 1, pick:random(0, f) do
    local id = pick:random(0, n - 1)
    if not byz[id] then
      local name = names[pick:random(#names)]
      byz[id] = name
      nodes[id + 1]:behave(make_behaviour(name, pick))
      byz_text[#byz_text + 1] = ("%d:%s"):format(id, name)
    end
  end
  local honest = {}
  for id = 0, n - 1 do if not byz[id] then honest[#honest + 1] = id end end

  -- A partition that heals, and a crash of an honest replica that restarts.
  local cut_at, heal_at = pick:random(100, 600) * 1000000, pick:random(700, 1500) * 1000000
  local cut = honest[pick:random(#honest)]
  local one_way = pick:random(2) == 1
  sim:at(cut_at, function()
    if one_way then                                   -- the primary of view 0 cannot reach `cut`
      if cut ~= 0 then sim:block(0, cut) end
    else
      local rest = {}
      for id = 0, n - 1 do if id ~= cut then rest[#rest + 1] = id end end
      sim:partition({ cut }, rest)
    end
  end)
  sim:at(heal_at, function() sim:heal() end)
  local victim = honest[pick:random(#honest)]
  -- An amnesiac replica may sign two votes for one slot: a fault beyond the
  -- f Byzantine replicas, so only runs without one restart that way.
  local records = next(byz) ~= nil or pick:random(2) == 1
  local crash_at = pick:random(50, heal_at // 1000000 - 20) * 1000000
  sim:at(crash_at, function() nodes[victim + 1]:crash() end)
  sim:at(heal_at, function() nodes[victim + 1]:restart { durable = records and "records" or false } end)

  local load = kv.start(sim, nodes, { count = ops, mean = "8ms", keys = 8 })
  local reason = sim:run { timeout = "90s", stop = function()
    return load.done() and sim:now() > heal_at and nodes:completed() >= ops
  end }
  local verdict = nodes:check { liveness = false }
  local setup = ("n=%d clients=%d K=%d L=%d batch=%d/%dms %s loss=%.2f dup=%.2f reorder=%s byzantine={%s} "
                 .. "cut=%d%s %s-%s crash=%d@%s %s"):format(
    n, params.clients, K, params.window, params.batch_size, params.batch_delay_ms, lat[1], cfg.loss, cfg.duplicate,
    tostring(cfg.reorder), table.concat(byz_text, ","), cut, one_way and "(one-way from 0)" or "",
    synod.format_time(cut_at), synod.format_time(heal_at), victim, synod.format_time(crash_at),
    records and "records" or "amnesia")
  local why
  if not verdict.ok then why = verdict:explain()
  elseif nodes:completed() < ops then
    why = ("liveness: %d of %d ops answered (run ended by %s at %s)"):format(nodes:completed(), ops, reason,
      synod.format_time(sim:now()))
  end
  return { ok = why == nil, seed = seed, setup = setup, why = why, completed = nodes:completed(),
           trace = sim:trace_hash() }
end

return M
