-- The deterministic simulator: same seed same trace, the network model,
-- faults, and the Lua API's argument errors.
local synod = require "synod"
local seeds = require "support.seeds"

local function tom_run(seed, opts)
  opts = opts or {}
  local sim = synod.sim { seed = seed, latency = opts.latency or synod.dist.uniform("1ms", "10ms"),
                          loss = opts.loss, duplicate = opts.duplicate, reorder = opts.reorder,
                          crypto = opts.crypto or "none" }
  local nodes = sim:cluster { protocol = "tom", n = opts.n or 4 }
  for i = 1, opts.count or 40 do
    sim:at(i * 3000000, function() sim:submit("w" .. i) end)
  end
  local reason = sim:run { timeout = opts.timeout or "30s",
    stop = function() return nodes:min_delivered() >= (opts.count or 40) end }
  return sim, nodes, reason
end

describe("determinism", function()
  it("gives the same trace hash for the same seed, bit for bit", function()
    seeds.each({ 1, 7, 42 }, function(seed)
      local a = tom_run(seed, { loss = 0.05, duplicate = 0.05, reorder = true })
      local b = tom_run(seed, { loss = 0.05, duplicate = 0.05, reorder = true })
      assert.equal(a:trace_hash(), b:trace_hash())
      assert.same(a:stats(), b:stats())
    end)
  end)

  it("gives different runs for different seeds", function()
    local hashes = {}
    for seed = 1, 5 do
      local sim = tom_run(seed)
      assert.is_nil(hashes[sim:trace_hash()], "two seeds gave one trace")
      hashes[sim:trace_hash()] = seed
    end
  end)

  it("is deterministic with real signatures too", function()
    local a = tom_run(3, { crypto = "ed25519", count = 10 })
    local b = tom_run(3, { crypto = "ed25519", count = 10 })
    assert.equal(a:trace_hash(), b:trace_hash())
  end)
end)

describe("the network model", function()
  it("delivers everything on lossy, duplicating, reordering links (TOM retransmits)", function()
    seeds.each({ 11, 12 }, function(seed)
      local sim, nodes, reason = tom_run(seed, { loss = 0.2, duplicate = 0.1, reorder = true, timeout = "120s" })
      assert.equal("stop", reason)
      local s = sim:stats()
      assert.is_true(s.frames_lost > 0)
      assert.is_true(s.frames_duplicated > 0)
      assert.is_true(nodes:check().ok, nodes:check():explain())
    end)
  end)

  it("samples every latency distribution within its shape", function()
    local sim = synod.sim { seed = 5 }
    sim:cluster { protocol = "tom", n = 2 }
    local function mean(d, k)
      local sum, min = 0, math.huge
      for _ = 1, k do local v = sim:sample(d); sum = sum + v; if v < min then min = v end end
      return sum / k, min
    end
    assert.equal(2000000, sim:sample(synod.dist.constant("2ms")))
    local m, min = mean(synod.dist.uniform("1ms", "3ms"), 2000)
    assert.is_true(min >= 1000000 and math.abs(m - 2e6) < 1e5)
    m = mean(synod.dist.exponential("4ms"), 20000)
    assert.is_true(math.abs(m - 4e6) < 2e5, "exponential mean " .. m)
    m = mean(synod.dist.normal("10ms", "1ms"), 20000)
    assert.is_true(math.abs(m - 1e7) < 1e5, "normal mean " .. m)
    m, min = mean(synod.dist.pareto("1ms", 3), 20000)
    assert.is_true(min >= 1000000 and math.abs(m - 1.5e6) < 1.5e5, "pareto mean " .. m)
  end)

  it("stalls a partitioned minority and recovers when healed", function()
    local sim = synod.sim { seed = 9, crypto = "none" }
    local nodes = sim:cluster { protocol = "tom", n = 4 }
    sim:partition({ 0, 1 }, { 2, 3 })
    sim:submit("during", 0)
    sim:run { timeout = "2s" }
    assert.equal(0, nodes[1]:delivered())
    assert.is_true(sim:stats().frames_blocked > 0)
    sim:heal()
    sim:run { timeout = "5s", stop = function() return nodes:min_delivered() >= 1 end }
    assert.equal(1, nodes:min_delivered())
  end)

  it("blocks one way only", function()
    local sim = synod.sim { seed = 9, crypto = "none" }
    local nodes = sim:cluster { protocol = "tom", n = 2 }
    sim:block(1, 0)                 -- node 1 hears node 0, node 0 never hears back
    sim:submit("x", 0)
    sim:run { timeout = "1s" }
    assert.is_true(nodes[2]:counters().received > 0)
    assert.equal(0, nodes[1]:counters().received)
    assert.is_true(sim:stats().frames_blocked > 0)
  end)

  it("drops frames to a crashed node and restarts it", function()
    local sim = synod.sim { seed = 4, crypto = "none" }
    local nodes = sim:cluster { protocol = "tom", n = 3 }
    nodes[3]:crash()
    assert.is_false(nodes[3]:is_up())
    sim:submit("a", 0)
    sim:run { timeout = "500ms" }
    assert.is_true(sim:stats().frames_to_down_node > 0)
    nodes[3]:restart { durable = true }
    sim:run { timeout = "10s", stop = function() return nodes:min_delivered() >= 1 end }
    assert.equal(1, nodes:min_delivered())
    assert.has_error(function() nodes[3]:restart() end, "node 2 is not crashed")
  end)

  it("runs a skewed node's timers at its own rate", function()
    -- Node 0 never hears back, so it keeps retransmitting on its timer:
    -- a clock 50% fast fires that timer about 1.5 times as often.
    local function timers_fired(rate_ppm)
      local sim = synod.sim { seed = 4, crypto = "none" }
      local nodes = sim:cluster { protocol = "tom", n = 3 }
      nodes[1]:skew { offset = "1s", rate_ppm = rate_ppm }
      sim:block(1, 0); sim:block(2, 0)
      sim:submit("a", 0)
      sim:run { timeout = "2s" }
      return nodes[1]:counters().timers
    end
    local normal, fast = timers_fired(0), timers_fired(500000)
    assert.is_true(normal >= 10, "expected retransmit timers, got " .. normal)
    assert.is_true(fast > normal * 1.3 and fast < normal * 1.7, ("fast %d vs normal %d"):format(fast, normal))
  end)

  it("records the event trace as JSON lines", function()
    local path = os.tmpname()
    local sim = synod.sim { seed = 1, crypto = "none", trace = path }
    local nodes = sim:cluster { protocol = "tom", n = 3 }
    sim:submit("a", 0)
    sim:run { timeout = "1s" }
    sim:close()
    local lines = 0
    for line in io.lines(path) do
      lines = lines + 1
      assert.truthy(line:match('^{"t":%d+,"ev":"%a+","node":%d+'))
    end
    os.remove(path)
    assert.is_true(lines > 3)
    assert.has_error(function() nodes[1]:delivered() end, "stale node handle: its simulation was closed")
  end)
end)

describe("scheduling", function()
  it("runs callbacks at their virtual time, in order", function()
    local sim = synod.sim { seed = 1 }
    sim:cluster { protocol = "tom", n = 2 }
    local seen = {}
    sim:at("20ms", function() seen[#seen + 1] = sim:now() end)
    sim:at("10ms", function() seen[#seen + 1] = sim:now() end)
    sim:after(synod.time("10ms"), function() seen[#seen + 1] = -sim:now() end)
    assert.equal("idle", (sim:run()))
    assert.same({ 10000000, -10000000, 20000000 }, seen)
  end)

  it("stops on stop(), on timeout, and reports a callback's error with its traceback", function()
    local sim = synod.sim { seed = 1 }
    sim:cluster { protocol = "tom", n = 2 }
    for i = 1, 100 do sim:at(i * 1000000, function() end) end
    assert.equal("stop", (sim:run { stop = function() return sim:now() >= 5000000 end }))
    assert.equal("timeout", (sim:run { timeout = "10ms" }))
    sim:at(sim:now() + 1, function() error("boom in callback") end)
    local ok, err = pcall(sim.run, sim)
    assert.is_false(ok)
    assert.truthy(err:find("boom in callback", 1, true))
    assert.truthy(err:find("stack traceback", 1, true))
  end)
end)

describe("Lua API errors name the function and argument", function()
  local sim = synod.sim { seed = 1 }
  local nodes = sim:cluster { protocol = "tom", n = 3 }
  local cases = {
    { function() synod.sim { seed = "x" } end, "bad field 'seed' to 'sim' (integer expected, got string)" },
    { function() synod.sim { crypto = "rsa" } end, "bad field 'crypto' to 'sim'" },
    { function() synod.sim { loss = 2 } end, "bad field 'loss' to 'sim' (must be between" },
    { function() synod.sim {}:cluster { protocol = "nope" } end, "unknown protocol 'nope'" },
    { function() synod.sim {}:cluster { protocol = "tom", n = 0 } end, "bad field 'n' to 'cluster'" },
    { function() synod.sim {}:cluster { protocol = "tom", colour = 3 } end, "bad field 'colour' to 'cluster' (not a parameter of protocol 'tom'; known: protocol, n, clients, app, retransmit_ms" },
    { function() sim:cluster { protocol = "tom" } end, "already has a cluster" },
    { function() sim:submit() end, "bad argument #1 to 'submit' (string expected, got no value)" },
    { function() sim:submit("x", 9) end, "node id 9 out of range 0..2" },
    { function() sim:at("5 fortnights", print) end, "bad time '5 fortnights'" },
    { function() sim:at("5ms") end, "bad argument #2 to 'at' (function expected, got no value)" },
    { function() sim:run { timeout = {} } end, "bad field 'timeout' to 'run' (time expected" },
    { function() sim:run { stop = 3 } end, "bad field 'stop' to 'run' (function expected, got number)" },
    { function() nodes[1]:behave { on_send = 3 } end, "on_send must be a function, got number" },
    { function() nodes[1]:behave {} end, "a behaviour needs at least one of" },
    { function() nodes[1]:send(1, { type = "nope" }) end, "unknown message type 'tom.nope'" },
    { function() synod.dist.uniform("5ms", "1ms") end, "upper bound below lower bound" },
    { function() synod.dist.pareto("1ms", -1) end, "bad argument #2 to 'pareto' (shape must be positive)" },
    { function() synod.sim {}:run() end, "no cluster yet" },
  }
  for i, case in ipairs(cases) do
    it("case " .. i .. ": " .. case[2], function()
      local ok, err = pcall(case[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(case[2], 1, true), ("expected %q in %q"):format(case[2], tostring(err)))
    end)
  end
end)
