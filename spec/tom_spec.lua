-- TOM's defences one by one: each rejection is counted by reason and kept as
-- evidence against the sender, signed by the sender's own key; with the
-- defence off the same attack goes through (and the checkers see the harm).
local synod = require "synod"

local SEED, ATTACKER = 11, 3

local function attack_run(behaviour, params)
  params = params or {}
  params.protocol, params.n = "tom", 4
  local sim = synod.sim { seed = SEED, latency = synod.dist.uniform("1ms", "5ms") }
  local nodes = sim:cluster(params)
  nodes[ATTACKER + 1]:behave(require(behaviour)())
  for i = 1, 24 do
    sim:at(i * 4000000, function() nodes[(i % 4) + 1]:submit("w" .. i) end)
  end
  sim:run { timeout = "30s" }
  return sim, nodes
end

-- The simulator derives node i's key from (seed, i): the same keys here.
local ring = {}
for i = 0, 3 do ring[i] = synod.crypto.keypair(i, SEED):public_key() end

local function honest_evidence(nodes)
  local all = {}
  for _, node in ipairs(nodes:honest()) do
    for _, e in ipairs(node:evidence()) do all[#all + 1] = e end
  end
  return all
end

local cases = {
  { behaviour = "behaviors.tom.ts_reuse",    reason = "ts_reuse",     off = { reject_reuse = 0 } },
  { behaviour = "behaviors.tom.ts_backdate", reason = "ts_backdate",  off = { reject_backdate = 0 } },
  { behaviour = "behaviors.tom.ts_future",   reason = "ts_future",    off = { max_drift = 0 } },
  { behaviour = "behaviors.tom.equivocate",  reason = "equivocation", off = { echo = 0 } },
}

for _, case in ipairs(cases) do
  describe("the " .. case.reason .. " defence", function()
    it("rejects the attack, counts it by reason and names only the attacker", function()
      local _, nodes = attack_run(case.behaviour)
      for _, node in ipairs(nodes:honest()) do
        assert.is_true((node:counters().rejected[case.reason] or 0) > 0,
          ("node %d counted no %s rejection"):format(node.id, case.reason))
      end
      local evidence = honest_evidence(nodes)
      assert.is_true(#evidence > 0)
      for _, e in ipairs(evidence) do
        assert.equal(ATTACKER, e.against)
        local msg = assert(synod.wire.decode(e.a))
        assert.equal(ATTACKER, msg.sender)
        assert.is_true(synod.crypto.verify(e.a, ring), "evidence frame does not carry the attacker's signature")
      end
      assert.is_true(nodes:check().ok, nodes:check():explain())
    end)

    it("lets the attack through when switched off, and the checkers see it", function()
      local _, nodes = attack_run(case.behaviour, case.off)
      for _, node in ipairs(nodes:honest()) do
        assert.is_nil(node:counters().rejected[case.reason])
      end
      assert.is_false(nodes:check { liveness = { bound = "5s" } }.ok)
    end)
  end)
end

describe("equivocation evidence", function()
  it("holds both signed versions: one timestamp, two words", function()
    local _, nodes = attack_run("behaviors.tom.equivocate")
    local found = false
    for _, e in ipairs(honest_evidence(nodes)) do
      if e.reason == "equivocation" then
        local a, b = assert(synod.wire.decode(e.a)), assert(synod.wire.decode(e.b))
        assert.equal("data", a.type); assert.equal("data", b.type)
        assert.equal(a.ts, b.ts)
        assert.are_not.equal(a.word, b.word)
        assert.is_true(synod.crypto.verify(e.b, ring))
        found = true
      end
    end
    assert.is_true(found)
  end)
end)

describe("TOM's limits and parameters", function()
  it("refuses a cluster larger than SYN_MAX_TOM_NODES with a clear error", function()
    assert.has_error(function() synod.sim { crypto = "none" }:cluster { protocol = "tom", n = 65 } end,
      "bad field 'n' to 'cluster' (protocol 'tom' runs 1..64 nodes, got 65)")
  end)

  it("checks parameter ranges", function()
    local ok, err = pcall(function() synod.sim {}:cluster { protocol = "tom", max_drift = -1 } end)
    assert.is_false(ok)
    assert.truthy(err:find("bad field 'max_drift' to 'cluster'", 1, true))
  end)

  it("cannot recover a node restarted without its state, and liveness says so", function()
    -- A known limit (tom.c header): links restart at lseq 1, so peers take
    -- everything from the amnesiac node as duplicates. The checker must see it.
    local sim = synod.sim { seed = 3, crypto = "none" }
    local nodes = sim:cluster { protocol = "tom", n = 3 }
    sim:submit("before", 0)
    sim:run { timeout = "1s" }
    nodes[3]:crash()
    nodes[3]:restart { durable = false }
    for i = 1, 5 do sim:submit("after" .. i, 0) end
    sim:run { timeout = "10s" }
    local v = nodes:check { liveness = { bound = "5s" } }
    assert.is_false(v.checks.liveness.ok)
  end)
end)
