-- pbft_behaviors_spec.lua — the PBFT Byzantine behaviour library
-- (scripts/behaviors/pbft/*) against PBFT as built: for each behaviour a
-- seeded run, n = 4 (f = 1), three clients, real Ed25519 signatures, one
-- replica with the behaviour. Every run must keep every safety checker
-- green, answer every client op, run the behaviour without a hook error
-- (a failing hook falls back to honest sending and would test nothing) and
-- never keep evidence against an honest replica; then each case asserts
-- the defence where it shows: evidence, a rejection reason, a view change,
-- or state that stays bounded.
local synod = require "synod"
local seeds = require "support.seeds"

local OPS = 150
local SEEDS = { 5, 21 }

-- One run. opts: params (cluster overrides), setup(sim, nodes), ops.
local function run(seed, attacker, behaviour, opts)
  opts = opts or {}
  local sim = synod.sim { seed = seed, latency = synod.dist.uniform("1ms", "5ms"), crypto = "ed25519" }
  local params = { protocol = "pbft", n = 4, clients = 3, view_change_ms = 400, client_timeout_ms = 300,
                   checkpoint_interval = 10, window = 30 }
  for k, v in pairs(opts.params or {}) do params[k] = v end
  local nodes = sim:cluster(params)
  if behaviour then nodes[attacker + 1]:behave(behaviour) end
  local ops = opts.ops or OPS
  for i = 1, ops do
    sim:at(i * 4000000, function() sim:submit(("put k%d v%d"):format(i % 7, i)) end)
  end
  if opts.setup then opts.setup(sim, nodes) end
  sim:run { timeout = opts.timeout or "60s", stop = function() return nodes:completed() >= ops end }
  sim:run { timeout = "500ms" }   -- laggards catch up
  return sim, nodes
end

-- The keys the simulator derives from (seed, id).
local function ring(seed)
  local r = {}
  for i = 0, 3 do r[i] = synod.crypto.keypair(i, seed):public_key() end
  return r
end

local function honest_replicas(nodes, attacker)
  local out = {}
  for i = 1, nodes.n do if i - 1 ~= attacker then out[#out + 1] = nodes[i] end end
  return out
end

-- What every run must show, whatever the attack.
local function assert_safe_and_live(nodes, attacker, ops)
  ops = ops or OPS
  local v = nodes:check { liveness = false }
  for _, name in ipairs(v.order) do
    assert.is_true(v.checks[name].ok, name .. ": " .. v.checks[name].explain)
  end
  assert.equal(ops, nodes:completed(), "client ops answered")
  assert.equal(0, nodes[attacker + 1]:counters().hook_errors, "the behaviour raised in a hook")
  for _, node in ipairs(honest_replicas(nodes, attacker)) do
    assert.equal(ops, node:status().executed_ops, ("replica %d executed every op"):format(node.id))
    for _, e in ipairs(node:evidence()) do
      assert.equal(attacker, e.against, ("replica %d keeps %s evidence against honest replica %d"):format(
        node.id, e.reason, e.against))
    end
  end
end

local function rejected(node, reason) return node:counters().rejected[reason] or 0 end

local function evidence_of(nodes, attacker, reason)
  local out = {}
  for _, node in ipairs(honest_replicas(nodes, attacker)) do
    for _, e in ipairs(node:evidence()) do
      if e.reason == reason then out[#out + 1] = e end
    end
  end
  return out
end

-- Wraps a behaviour's on_send to count what it changed: calls where it
-- returned anything but the message it was given (dropped, rewritten, split).
local function spy(behaviour)
  local stats = { changed = 0 }
  local inner = behaviour.on_send
  behaviour.on_send = function(node, msg, to)
    local out = inner(node, msg, to)
    if out ~= msg then stats.changed = stats.changed + 1 end
    return out
  end
  return behaviour, stats
end

-- Cuts replica `who` off (both ways, from replicas and clients) for a while:
-- a view change no behaviour caused.
local function isolate(who, from, to)
  return function(sim, nodes)
    local rest = {}
    for id = 0, nodes.n + #nodes.clients - 1 do if id ~= who then rest[#rest + 1] = id end end
    sim:after(from, function() sim:partition({ who }, rest) end)
    sim:after(to, function() sim:heal() end)
  end
end

local function min_view(nodes, attacker)
  local v = math.huge
  for _, node in ipairs(honest_replicas(nodes, attacker)) do v = math.min(v, node:status().view) end
  return v
end

describe("behaviors.pbft.equivocate (primary 0)", function()
  it("never lets the lie execute; the lied-to backup catches up from commit certificates", function()
    seeds.each(SEEDS, function(seed)
      local b, stats = spy(require "behaviors.pbft.equivocate" {})
      local _, nodes = run(seed, 0, b, { params = { batch_size = 3, batch_delay_ms = 2 } })
      assert.is_true(stats.changed > 0, "the primary never lied")
      assert_safe_and_live(nodes, 0)
    end)
  end)

  it("with leak: the lied-to backup rejects the second pre-prepare and keeps both signed frames", function()
    seeds.each(SEEDS, function(seed)
      local _, nodes = run(seed, 0, require "behaviors.pbft.equivocate" { leak = true, lie = "null" })
      assert_safe_and_live(nodes, 0)
      assert.is_true(rejected(nodes[3], "equivocation") > 0, "replica 2 counted no equivocation")
      local found = evidence_of(nodes, 0, "equivocation")
      assert.is_true(#found > 0, "no equivocation evidence")
      local keys = ring(seed)
      for _, e in ipairs(found) do
        assert.equal(2, e.detected_by)
        local a, b = assert(synod.wire.decode(e.a)), assert(synod.wire.decode(e.b))
        assert.equal("pre-prepare", a.type); assert.equal("pre-prepare", b.type)
        assert.equal(0, a.sender); assert.equal(0, b.sender)
        assert.equal(a.view, b.view); assert.equal(a.seq, b.seq)
        assert.are_not.equal(a.digest, b.digest)
        assert.is_true(synod.crypto.verify(e.a, keys)); assert.is_true(synod.crypto.verify(e.b, keys))
      end
    end)
  end)

  it("split so that neither version has a quorum: a view change deposes the primary", function()
    seeds.each(SEEDS, function(seed)
      local _, nodes = run(seed, 0, require "behaviors.pbft.equivocate" { peers = { 1, 2 } })
      assert_safe_and_live(nodes, 0)
      assert.is_true(min_view(nodes, 0) >= 1, "no view change")
    end)
  end)

  it("on a lossy network: no honest replica is accused, and a slot decided by an entry keeps its batch", function()
    -- Regression: a backup that learned the committed batch from an entry
    -- used to resend its prepare with the new digest (a second vote), and
    -- then took the lie's pre-prepare for the decided slot.
    seeds.each({ 13, 3, 7 }, function(seed)
      local sim = synod.sim { seed = seed, latency = synod.dist.uniform("1ms", "5ms"), crypto = "ed25519",
                              loss = 0.02, duplicate = 0.02, reorder = true }
      local nodes = sim:cluster { protocol = "pbft", n = 4, clients = 3, view_change_ms = 400, client_timeout_ms = 300,
                                  checkpoint_interval = 10, window = 30, batch_size = 2, batch_delay_ms = 1 }
      nodes[1]:behave(require "behaviors.pbft.equivocate" {})
      for i = 1, 150 do sim:after(("%dms"):format(i * 4), function() sim:submit(("put k%d v%d"):format(i % 7, i)) end) end
      sim:run { timeout = "60s", stop = function() return nodes:completed() >= 150 end }
      sim:run { timeout = "500ms" }
      assert.equal(150, nodes:completed())
      local v = nodes:check { liveness = false }
      assert.is_true(v.ok, v.summary)
      for _, node in ipairs(nodes:honest()) do
        for _, e in ipairs(node:evidence()) do
          assert.equal(0, e.against, ("replica %d accuses honest replica %d (%s)"):format(node.id, e.against, e.reason))
        end
      end
    end)
  end)
end)

describe("behaviors.pbft.silent (primary 0)", function()
  it("is deposed by the view-change timer, and still votes and takes part in the new view", function()
    seeds.each(SEEDS, function(seed)
      local _, nodes = run(seed, 0, require "behaviors.pbft.silent" { after = "200ms" })
      assert_safe_and_live(nodes, 0)
      assert.is_true(min_view(nodes, 0) >= 1, "no view change")
      local s = nodes[1]:status()
      assert.is_true(s.view >= 1, "the silent node did not follow the view change")
      assert.equal(OPS, s.executed_ops, "the silent node stopped executing")
    end)
  end)

  it("goes silent after a number of messages", function()
    local b, stats = spy(require "behaviors.pbft.silent" { after_messages = 30 })
    local _, nodes = run(SEEDS[1], 0, b)
    assert_safe_and_live(nodes, 0)
    assert.is_true(stats.changed > 0)
    assert.is_true(min_view(nodes, 0) >= 1, "no view change")
  end)
end)

describe("behaviors.pbft.seq (primary 0)", function()
  it("skip: the gap blocks execution until a view change fills it with null batches", function()
    seeds.each(SEEDS, function(seed)
      -- One request per batch, so a sequence number that executed no op is a null batch.
      local _, nodes = run(seed, 0, require "behaviors.pbft.seq" { mode = "skip", skip = 3 }, { params = { batch_size = 1 } })
      assert_safe_and_live(nodes, 0)
      assert.is_true(min_view(nodes, 0) >= 1, "no view change")
      for _, node in ipairs(honest_replicas(nodes, 0)) do
        local s = node:status()
        assert.is_true(s.last_executed - s.executed_ops >= 3,
          ("replica %d: %d sequence numbers for %d ops, so fewer than 3 null batches"):format(node.id, s.last_executed, s.executed_ops))
      end
    end)
  end)

  it("reuse: every backup rejects the second digest for a (view, seq) as equivocation, with evidence", function()
    seeds.each(SEEDS, function(seed)
      local _, nodes = run(seed, 0, require "behaviors.pbft.seq" { mode = "reuse" })
      assert_safe_and_live(nodes, 0)
      assert.is_true(min_view(nodes, 0) >= 1, "no view change")
      for _, node in ipairs(honest_replicas(nodes, 0)) do
        assert.is_true(rejected(node, "equivocation") > 0, ("replica %d counted no equivocation"):format(node.id))
      end
      local keys = ring(seed)
      for _, e in ipairs(evidence_of(nodes, 0, "equivocation")) do
        local a, b = assert(synod.wire.decode(e.a)), assert(synod.wire.decode(e.b))
        assert.equal(a.seq, b.seq)
        assert.are_not.equal(a.digest, b.digest)
        assert.is_true(synod.crypto.verify(e.b, keys))
      end
    end)
  end)
end)

describe("behaviors.pbft.wrong_digest (backup 3)", function()
  it("consistent wrong votes are outvoted: the honest quorum commits and checkpoints alone", function()
    seeds.each(SEEDS, function(seed)
      local b, stats = spy(require "behaviors.pbft.wrong_digest" {})
      local _, nodes = run(seed, 3, b)
      assert_safe_and_live(nodes, 3)
      assert.is_true(stats.changed > 0)
      for _, node in ipairs(honest_replicas(nodes, 3)) do
        assert.is_true(node:status().stable_checkpoint > 0, "no stable checkpoint")
        assert.equal(0, node:status().view)
      end
    end)
  end)

  it("contradict: two different votes for one slot are rejected as conflict and kept as evidence", function()
    seeds.each(SEEDS, function(seed)
      local _, nodes = run(seed, 3, require "behaviors.pbft.wrong_digest" { contradict = true })
      assert_safe_and_live(nodes, 3)
      for _, node in ipairs(honest_replicas(nodes, 3)) do
        assert.is_true(rejected(node, "conflict") > 0, ("replica %d counted no conflict"):format(node.id))
      end
      local found = evidence_of(nodes, 3, "conflict")
      assert.is_true(#found > 0, "no conflict evidence")
      for _, e in ipairs(found) do
        local a, b = assert(synod.wire.decode(e.a)), assert(synod.wire.decode(e.b))
        assert.equal(a.type, b.type)
        assert.equal(a.seq, b.seq)
        assert.are_not.equal(a.digest, b.digest)
      end
    end)
  end)
end)

describe("behaviors.pbft.forged_view_change (backup 2)", function()
  it("is rejected as bad_view_change by every honest replica and kept as evidence, signed by the forger", function()
    seeds.each(SEEDS, function(seed)
      local _, nodes = run(seed, 2, require "behaviors.pbft.forged_view_change" { every = "40ms", times = 10 })
      assert_safe_and_live(nodes, 2)
      local keys = ring(seed)
      for _, node in ipairs(honest_replicas(nodes, 2)) do
        assert.is_true(rejected(node, "bad_view_change") > 0, ("replica %d counted no bad_view_change"):format(node.id))
        assert.equal(0, node:status().view, "a forged view-change moved a replica")
      end
      local found = evidence_of(nodes, 2, "bad_view_change")
      assert.is_true(#found > 0)
      for _, e in ipairs(found) do
        local m = assert(synod.wire.decode(e.a))
        assert.equal("view-change", m.type)
        assert.equal(2, m.sender)
        assert.is_true(synod.crypto.verify(e.a, keys))
      end
    end)
  end)

  it("a real view change completes on the honest view-changes when the forger replaces its own", function()
    seeds.each(SEEDS, function(seed)
      local _, nodes = run(seed, 2, require "behaviors.pbft.forged_view_change" { times = 0 },
        { setup = isolate(0, "200ms", "1200ms") })
      assert_safe_and_live(nodes, 2)
      assert.is_true(min_view(nodes, 2) >= 1, "no view change")
      for _, node in ipairs(honest_replicas(nodes, 2)) do
        if node.id ~= 0 then   -- the cut-off replica may have missed the forger's view-change
          assert.is_true(rejected(node, "bad_view_change") > 0, ("replica %d counted no bad_view_change"):format(node.id))
        end
      end
    end)
  end)
end)

describe("behaviors.pbft.future_views (backup 2)", function()
  it("floods of far-future views are rejected as wrong_view; no replica moves and state stays bounded", function()
    seeds.each(SEEDS, function(seed)
      local b = require "behaviors.pbft.future_views" { jump = 1000, burst = 4, limit = 3000 }
      local _, nodes = run(seed, 2, b)
      assert_safe_and_live(nodes, 2)
      for _, node in ipairs(honest_replicas(nodes, 2)) do
        local s = node:status()
        assert.is_true(rejected(node, "wrong_view") > 100, ("replica %d counted few wrong_view"):format(node.id))
        assert.equal(0, s.view, "a replica was dragged to another view")
        assert.equal(0, s.view_changes)
        assert.is_true(s.log_slots <= 30, "log outside the window")
        assert.equal(0, #node:evidence())
      end
    end)
  end)

  it("does not drag the cluster past the next view when a real view change happens", function()
    local _, nodes = run(SEEDS[1], 2, require "behaviors.pbft.future_views" { jump = 1 << 40 },
      { setup = isolate(0, "200ms", "1200ms") })
    assert_safe_and_live(nodes, 2)
    for _, node in ipairs(honest_replicas(nodes, 2)) do
      local v = node:status().view
      assert.is_true(v >= 1 and v < 1000, ("replica %d is in view %d"):format(node.id, v))
    end
  end)
end)

describe("behaviors.pbft.replay (backup 3)", function()
  it("replays across a view change are stale or ignored: nothing twice, no false evidence", function()
    seeds.each(SEEDS, function(seed)
      local setup = isolate(0, "200ms", "1000ms")
      local _, base = run(seed, 3, nil, { setup = setup })
      local _, nodes = run(seed, 3, require "behaviors.pbft.replay" { after = "300ms", times = 2 }, { setup = setup })
      assert_safe_and_live(nodes, 3)
      -- What arrived: taken in, or refused as stale before its signature was checked.
      local got, before, stale, stale_before = 0, 0, 0, 0
      for _, node in ipairs(honest_replicas(nodes, 3)) do
        local b = base[node.id + 1]
        stale = stale + rejected(node, "stale") + (node:counters().unverified.stale or 0)
        stale_before = stale_before + rejected(b, "stale") + (b:counters().unverified.stale or 0)
        got, before = got + node:counters().received, before + b:counters().received
        assert.equal(0, #node:evidence(), ("replica %d keeps evidence after genuine replays"):format(node.id))
      end
      assert.is_true(got + stale > before + stale_before + 500,
        ("replays barely arrived (%d vs %d frames)"):format(got + stale, before + stale_before))
      assert.is_true(stale > stale_before, "no replay was counted stale")
    end)
  end)
end)

describe("behaviors.pbft.slow_primary (primary 0)", function()
  it("under the tolerance: every op completes, late, and the primary is never deposed", function()
    local _, nodes = run(SEEDS[1], 0, require "behaviors.pbft.slow_primary" { delay = "300ms" }, { timeout = "120s" })
    assert_safe_and_live(nodes, 0)
    -- The known limit of PBFT's timer (Aardvark): a slow primary stays.
    assert.equal(0, min_view(nodes, 0))
  end)

  it("beyond it: a view change deposes the primary and the next one orders", function()
    seeds.each(SEEDS, function(seed)
      local _, nodes = run(seed, 0, require "behaviors.pbft.slow_primary" { delay = "2s" })
      assert_safe_and_live(nodes, 0)
      assert.is_true(min_view(nodes, 0) >= 1, "no view change")
    end)
  end)
end)

describe("the behaviours' options", function()
  local function fails(name, opts, text)
    local ok, err = pcall(require(name), opts)
    assert.is_false(ok, name .. " accepted bad options")
    assert.truthy(tostring(err):find(text, 1, true), tostring(err))
  end

  it("are checked with clear messages", function()
    fails("behaviors.pbft.equivocate", { lie = "other" }, "option 'lie' must be")
    fails("behaviors.pbft.equivocate", { peers = { "a" } }, "option 'peers' must be a list of replica ids")
    fails("behaviors.pbft.equivocate", { leak = 1 }, "option 'leak' must be a boolean")
    fails("behaviors.pbft.silent", { after_messages = -1 }, "option 'after_messages' must be")
    fails("behaviors.pbft.silent", { after = "soon" }, "bad time")
    fails("behaviors.pbft.seq", { mode = "shuffle" }, "option 'mode' must be")
    fails("behaviors.pbft.seq", { skip = 0 }, "option 'skip' must be a positive integer")
    fails("behaviors.pbft.seq", { mode = "reuse", skip = 2 }, "option 'skip' goes with mode")
    fails("behaviors.pbft.wrong_digest", { contradict = "yes" }, "option 'contradict' must be a boolean")
    fails("behaviors.pbft.wrong_digest", { p = 2 }, "option 'p' must be a probability")
    fails("behaviors.pbft.wrong_digest", { types = { "batch" } }, "option 'types'")
    fails("behaviors.pbft.forged_view_change", { times = -1 }, "option 'times' must be")
    fails("behaviors.pbft.forged_view_change", { every = 0 }, "option 'every' must be a positive time")
    fails("behaviors.pbft.future_views", { jump = 0 }, "option 'jump' must be")
    fails("behaviors.pbft.future_views", { burst = 100 }, "option 'burst' must be")
    fails("behaviors.pbft.future_views", { types = { "reply" } }, "option 'types'")
    fails("behaviors.pbft.replay", { max_frames = 0 }, "option 'max_frames' must be")
    fails("behaviors.pbft.replay", { received = "no" }, "option 'received' must be a boolean")
    fails("behaviors.pbft.slow_primary", {}, "option 'delay' is required")
    fails("behaviors.pbft.slow_primary", { delay = 0 }, "option 'delay' must be a positive time")
  end)
end)
