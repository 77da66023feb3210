-- check_spec.lua — synod.history and its checkers. Every checker is shown a
-- history it must accept and at least one planted violation it must catch;
-- assertions are on verdict fields, never on explanation wording (beyond
-- "non-empty and names the nodes").
local synod = require "synod"

local NS_PER_S = 1000000000

-- A history from a plain description:
--   { n = 3, byz = { 2 }, subs = { {node, value [, at]} … },
--     logs = { [0] = { {origin, ts, value [, at]} … }, [1] = … } }
local function history(d)
  local h = synod.history { n = d.n }
  for _, s in ipairs(d.subs or {}) do h:submit(s[1], s[2], s[3]) end
  for node = 0, d.n - 1 do
    for i, e in ipairs((d.logs or {})[node] or {}) do
      h:deliver(node, i, e[1], e[2], e[3], e[4])
    end
  end
  for _, b in ipairs(d.byz or {}) do h:byzantine(b) end
  return h
end

-- k messages "m1".."mk", origin (i-1) % n, ts i; submitted at their origin.
local function common(n, k)
  local msgs, subs = {}, {}
  for i = 1, k do
    local origin = (i - 1) % n
    msgs[i] = { origin, i, "m" .. i, i * 10 }
    subs[i] = { origin, "m" .. i, i }
  end
  return msgs, subs
end

local function prefix(msgs, len)
  local out = {}
  for i = 1, len do out[i] = msgs[i] end
  return out
end

local function assert_ok(v)
  assert.is_true(v.ok, tostring(v))
  assert.are.equal("", v.explain)
  assert.is_nil(v.node_a)
  assert.is_nil(v.pos_a)
end

local function assert_fails(v, checker, node_a)
  assert.is_false(v.ok)
  assert.are.equal(checker, v.checker)
  assert.are.equal(node_a, v.node_a)
  assert.is_true(#v.explain > 0)
  assert.truthy(v.explain:find("node " .. node_a, 1, true), v.explain)
end

describe("synod.history", function()
  it("records deliveries and submissions and hands back copies", function()
    local h = synod.history { n = 2 }
    h:submit(1, "apple", "5ms")
    h:deliver(0, 1, 1, 7, "apple", 6000000)
    h:deliver(0, 2, 1, 8, "a\0b", "1.5s")
    local log = h:log(0)
    assert.are.equal(2, #log)
    assert.are.same({ seq = 1, origin = 1, ts = 7, value = "apple", at = 6000000 }, log[1])
    assert.are.same({ seq = 2, origin = 1, ts = 8, value = "a\0b", at = 1500000000 }, log[2])
    assert.are.same({}, h:log(1))
    assert.are.same({ { node = 1, value = "apple", at = 5000000 } }, h:submissions())
    assert.are.equal(2, #h)
    assert.is_true(h:is_honest(0))
    h:byzantine(0)
    assert.is_false(h:is_honest(0))
  end)

  it("forgets a node's log on reset (a restart with amnesia)", function()
    local h = synod.history { n = 1 }
    h:deliver(0, 1, 0, 1, "x")
    h:reset(0)
    assert.are.same({}, h:log(0))
  end)

  it("names the function and argument in argument errors", function()
    local h = synod.history { n = 3 }
    assert.has_error(function() h:deliver(0, 1, 0, 1) end,
      "bad argument #5 to 'deliver' (string expected, got no value)")
    assert.error_matches(function() h:deliver(3, 1, 0, 1, "v") end,
      "bad argument #1 to 'deliver' %(node 3 out of range 0%.%.2%)")
    assert.error_matches(function() h:deliver(0, -1, 0, 1, "v") end, "#2 to 'deliver'.*seq")
    assert.error_matches(function() h:submit(0, "v", "5 parsecs") end, "#3 to 'submit'.*bad time")
    assert.error_matches(function() h:check("fairness") end, "#1 to 'check'.*fairness")
    assert.error_matches(function() h:check("liveness") end, "to 'check'.*opts%.bound")
    assert.error_matches(function() h:check("liveness", { bound = true }) end,
      "bad field 'bound' to 'check' %(time expected")
    assert.error_matches(function() synod.history {} end, "#1 to 'history'.*n")
    assert.error_matches(function() synod.history { n = 0 } end, "#1 to 'history'")
  end)

  it("refuses more nodes than SYN_MAX_HISTORY_NODES with a clear error", function()
    assert.error_matches(function() synod.history { n = 100000 } end,
      "bad argument #1 to 'history' %(n = 100000 exceeds SYN_MAX_HISTORY_NODES %(%d+%)%)")
  end)

  it("is unusable after close, and closing twice is harmless", function()
    local h = synod.history { n = 1 }
    do
      local c <close> = h
      c:deliver(0, 1, 0, 1, "x")
    end
    assert.error_matches(function() h:log(0) end, "closed")
    getmetatable(h).__close(h)
    assert.are.equal("synod.History(closed)", tostring(h))
  end)
end)

describe("agreement", function()
  it("accepts three nodes where one log is a strict prefix of the others", function()
    local msgs, subs = common(3, 6)
    local h = history { n = 3, subs = subs,
      logs = { [0] = msgs, [1] = prefix(msgs, 4), [2] = msgs } }
    assert_ok(h:check("agreement"))
  end)

  it("accepts an empty history and a single node", function()
    assert_ok(synod.history({ n = 4 }):check("agreement"))
    assert_ok(history({ n = 1, logs = { [0] = { { 0, 1, "x" } } } }):check("agreement"))
  end)

  it("catches two honest nodes that deliver different values at one position", function()
    local msgs, subs = common(4, 5)
    local bad = prefix(msgs, 5)
    bad[3] = { 3, 3, "pear" }
    local h = history { n = 4, subs = subs,
      logs = { [0] = prefix(msgs, 2), [1] = msgs, [2] = msgs, [3] = bad } }
    local v = h:check("agreement")
    assert_fails(v, "agreement", 1)
    assert.are.equal(3, v.node_b)
    assert.are.equal(3, v.pos_a)
    assert.are.equal(3, v.pos_b)
    assert.truthy(v.explain:find("node 3", 1, true))
  end)

  it("catches the same value with a different timestamp", function()
    local h = history { n = 2, logs = {
      [0] = { { 0, 1, "x" } }, [1] = { { 0, 2, "x" } } } }
    local v = h:check("agreement")
    assert_fails(v, "agreement", 0)
    assert.are.equal(1, v.node_b)
    assert.are.equal(1, v.pos_a)
  end)

  it("ignores a Byzantine node's divergent log", function()
    local msgs, subs = common(4, 5)
    local evil = { { 2, 1, "evil" }, { 2, 2, "worse" } }
    local d = { n = 4, subs = subs, logs = { [0] = msgs, [1] = msgs, [2] = evil, [3] = msgs } }
    assert_fails(history(d):check("agreement"), "agreement", 0)
    d.byz = { 2 }
    assert_ok(history(d):check("agreement"))
  end)

  -- Logs with explicit seqs: { [node] = { {seq, origin, ts, value}, … } }.
  local function by_seq(n, logs, byz)
    local h = synod.history { n = n }
    for node = 0, n - 1 do
      for _, e in ipairs(logs[node] or {}) do h:deliver(node, e[1], e[2], e[3], e[4]) end
    end
    for _, b in ipairs(byz or {}) do h:byzantine(b) end
    return h
  end
  local function run(from, to, skip)   -- seq i carries "m<i>" (origin 0, ts i)
    local out = {}
    for i = from, to do if i ~= skip then out[#out + 1] = { i, 0, i, "m" .. i } end end
    return out
  end
  local function concat(a, b)
    local out = {}
    for _, e in ipairs(a) do out[#out + 1] = e end
    for _, e in ipairs(b) do out[#out + 1] = e end
    return out
  end

  it("aligns by seq and tolerates a gap (a replica that caught up by state transfer)", function()
    local h = by_seq(3, { [0] = run(1, 8), [1] = concat(run(1, 2), run(6, 8)), [2] = run(6, 7) })
    assert_ok(h:check("agreement"))
    -- the same logs aligned by index would disagree: entry 3 is m3 on node 0, m6 on node 1
    assert.are.equal("m6", h:log(1)[3].value)
  end)

  it("catches a mismatch at the same seq after a gap, naming seq and log entries", function()
    local gapped = concat(run(1, 2), run(6, 8))
    gapped[4] = { 7, 3, 1, "other" }   -- seq 7 on node 1 (its 4th entry)
    local h = by_seq(3, { [0] = run(1, 8), [1] = gapped, [2] = run(1, 5) })
    local v = h:check("agreement")
    assert_fails(v, "agreement", 0)
    assert.are.equal(1, v.node_b)
    assert.are.equal(7, v.pos_a)    -- node 0's 7th entry is seq 7
    assert.are.equal(4, v.pos_b)    -- node 1's 4th entry is seq 7
    assert.are.equal(7, h:log(0)[v.pos_a].seq)
    assert.are.equal(7, h:log(1)[v.pos_b].seq)
    assert.truthy(v.explain:find("position 7", 1, true), v.explain)
    assert.truthy(v.explain:find("other", 1, true), v.explain)
  end)

  it("reports the earliest divergent seq and the smallest pair of nodes there", function()
    local a, b = run(1, 6), run(1, 6)
    a[5] = { 5, 1, 5, "x5" }             -- node 2 differs at seq 5
    b[3] = { 3, 1, 3, "y3" }             -- node 3 differs at seq 3 (earlier)
    local h = by_seq(4, { [0] = run(4, 6), [1] = run(1, 6), [2] = a, [3] = b })
    local v = h:check("agreement")
    assert_fails(v, "agreement", 1)      -- node 0 has no seq 3: the pair is (1, 3)
    assert.are.equal(3, v.node_b)
    assert.are.equal(3, v.pos_a)
    assert.are.equal(3, v.pos_b)
  end)

  it("catches a log that is not strictly increasing in seq, and ignores a Byzantine one", function()
    local back = { { 1, 0, 1, "m1" }, { 3, 0, 3, "m3" }, { 2, 0, 2, "m2" } }
    local v = by_seq(2, { [0] = run(1, 3), [1] = back }):check("agreement")
    assert_fails(v, "agreement", 1)
    assert.are.equal(1, v.node_b)
    assert.are.equal(2, v.pos_a)
    assert.are.equal(3, v.pos_b)
    local again = { { 1, 0, 1, "m1" }, { 1, 0, 1, "m1" } }   -- the same seq twice
    assert_fails(by_seq(2, { [0] = run(1, 3), [1] = again }):check("agreement"), "agreement", 1)
    assert_ok(by_seq(2, { [0] = run(1, 3), [1] = back }, { 1 }):check("agreement"))
  end)
end)

describe("total_order", function()
  it("accepts logs with gaps that never invert a pair", function()
    local h = history { n = 3, logs = {
      [0] = { { 0, 1, "x" }, { 0, 2, "y" }, { 0, 3, "z" } },
      [1] = { { 0, 1, "x" }, { 0, 3, "z" } },
      [2] = { { 1, 9, "w" }, { 0, 2, "y" }, { 0, 3, "z" } } } }
    assert_ok(h:check("total_order"))
    assert.is_false(h:check("agreement").ok)   -- weaker than agreement
  end)

  it("catches two honest nodes that order a pair differently", function()
    local h = history { n = 3, logs = {
      [0] = { { 0, 1, "x" }, { 0, 2, "y" }, { 0, 3, "z" } },
      [1] = { { 0, 1, "x" }, { 0, 2, "y" } },
      [2] = { { 0, 1, "x" }, { 0, 3, "z" }, { 1, 5, "q" }, { 0, 2, "y" } } } }
    local v = h:check("total_order")
    assert_fails(v, "total_order", 0)
    assert.are.equal(2, v.node_b)
    assert.are.equal(2, v.pos_a)   -- "y" on node 0
    assert.are.equal(4, v.pos_b)   -- "y" on node 2
    assert.truthy(v.explain:find("node 2", 1, true))
  end)

  it("ignores a Byzantine node's inverted log", function()
    local d = { n = 2, byz = { 1 }, logs = {
      [0] = { { 0, 1, "x" }, { 0, 2, "y" } },
      [1] = { { 0, 2, "y" }, { 0, 1, "x" } } } }
    assert_ok(history(d):check("total_order"))
  end)
end)

describe("validity", function()
  it("accepts values submitted at their origin", function()
    local msgs, subs = common(3, 6)
    assert_ok(history({ n = 3, subs = subs, logs = { [0] = msgs, [2] = msgs } }):check("validity"))
  end)

  it("catches a value its honest origin never submitted", function()
    local msgs, subs = common(3, 4)
    local forged = prefix(msgs, 4)
    forged[5] = { 1, 5, "forged" }
    local h = history { n = 3, subs = subs, logs = { [0] = msgs, [2] = forged } }
    local v = h:check("validity")
    assert_fails(v, "validity", 2)
    assert.are.equal(1, v.node_b)
    assert.are.equal(5, v.pos_a)
    assert.truthy(v.explain:find("node 1", 1, true))
  end)

  it("catches a value submitted at a different node than its origin", function()
    local h = history { n = 2, subs = { { 0, "x" } }, logs = { [1] = { { 1, 1, "x" } } } }
    local v = h:check("validity")
    assert_fails(v, "validity", 1)
    assert.are.equal(1, v.node_b)
  end)

  it("catches an origin that is not a node at all", function()
    local h = history { n = 2, logs = { [0] = { { 7, 1, "x" } } } }
    assert_fails(h:check("validity"), "validity", 0)
  end)

  it("exempts a Byzantine origin, which may multicast anything", function()
    local d = { n = 3, subs = { { 0, "a" } },
      logs = { [0] = { { 0, 1, "a" }, { 2, 2, "made up" } }, [1] = { { 0, 1, "a" } } } }
    assert_fails(history(d):check("validity"), "validity", 0)
    d.byz = { 2 }
    assert_ok(history(d):check("validity"))
  end)
end)

describe("integrity", function()
  it("accepts the same value at different timestamps", function()
    local h = history { n = 1, logs = { [0] = { { 0, 1, "x" }, { 0, 2, "x" }, { 1, 1, "x" } } } }
    assert_ok(h:check("integrity"))
  end)

  it("catches a node that delivers one message twice", function()
    local h = history { n = 3, logs = {
      [0] = { { 0, 1, "x" }, { 0, 2, "y" } },
      [1] = { { 0, 1, "x" }, { 0, 2, "y" }, { 1, 3, "z" }, { 0, 2, "y" } } } }
    local v = h:check("integrity")
    assert_fails(v, "integrity", 1)
    assert.are.equal(2, v.pos_a)
    assert.are.equal(4, v.pos_b)
  end)

  it("ignores a Byzantine node's duplicates", function()
    local h = history { n = 2, byz = { 1 }, logs = { [1] = { { 0, 1, "x" }, { 0, 1, "x" } } } }
    assert_ok(h:check("integrity"))
  end)
end)

describe("liveness", function()
  -- "x" submitted at node 0 at 1s; the network heals at 5s; bound 2s:
  -- every honest node must deliver it by max(1s, 5s) + 2s = 7s.
  local opts = { heal_at = "5s", bound = "2s", end_ns = "20s" }
  local function run(at1, at2, more)
    local d = { n = 3, subs = { { 0, "x", NS_PER_S } }, logs = {
      [0] = { { 0, 1, "x", "1100ms" } },
      [1] = at1 and { { 0, 1, "x", at1 } } or {},
      [2] = at2 and { { 0, 1, "x", at2 } } or {} } }
    for k, val in pairs(more or {}) do d[k] = val end
    return history(d)
  end

  it("accepts a delivery late against submission but within the bound after healing", function()
    assert_ok(run("6500ms", "7s"):check("liveness", opts))
  end)

  it("catches a delivery beyond the bound after healing", function()
    local v = run("6500ms", "7000000001"):check("liveness", opts)
    assert_fails(v, "liveness", 2)
    assert.are.equal(0, v.node_b)   -- submitted at node 0
    assert.are.equal(1, v.pos_a)    -- node 2's late delivery
    assert.are.equal(1, v.pos_b)    -- the first submission
  end)

  it("catches a node that never delivers", function()
    local v = run(nil, "6s"):check("liveness", opts)
    assert_fails(v, "liveness", 1)
    assert.is_nil(v.pos_a)
  end)

  it("does not judge a submission whose deadline is past the end of the run", function()
    local short = { heal_at = "5s", bound = "2s", end_ns = "6999ms" }
    local v = run(nil, nil):check("liveness", short)
    assert.is_true(v.ok)                          -- not judged, and it says so
    assert.truthy(v.explain:find("1 of 1 submissions not judged", 1, true))
    assert.is_false(run(nil, nil):check("liveness", opts).ok)
    local exact = { heal_at = "5s", bound = "2s", end_ns = "7s" }   -- deadline == end: judged
    assert_fails(run(nil, "6s"):check("liveness", exact), "liveness", 1)
  end)

  it("ignores Byzantine nodes, both as submitters and as deliverers", function()
    assert_ok(run(nil, "6s", { byz = { 1 } }):check("liveness", opts))
    assert_ok(run(nil, nil, { byz = { 0 } }):check("liveness", opts))
  end)

  it("takes integer nanoseconds as well as time strings", function()
    local v = run("6500ms", "7s"):check("liveness",
      { heal_at = 5 * NS_PER_S, bound = 2 * NS_PER_S - 1, end_ns = 20 * NS_PER_S })
    assert_fails(v, "liveness", 2)
  end)
end)

describe("ts_order", function()
  it("accepts logs strictly increasing in (ts, origin)", function()
    local h = history { n = 2, logs = {
      [0] = { { 1, 1, "a" }, { 2, 1, "b" }, { 0, 2, "c" } },
      [1] = { { 1, 1, "a" } } } }
    assert_ok(h:check("ts_order"))
  end)

  it("catches a log that goes back in (ts, origin)", function()
    local h = history { n = 2, logs = {
      [0] = { { 1, 1, "a" }, { 2, 1, "b" } },
      [1] = { { 1, 1, "a" }, { 0, 2, "c" }, { 2, 1, "b" } } } }
    local v = h:check("ts_order")
    assert_fails(v, "ts_order", 1)
    assert.are.equal(2, v.pos_a)
    assert.are.equal(3, v.pos_b)
  end)

  it("catches a repeated (ts, origin), and ignores Byzantine logs", function()
    local d = { n = 2, logs = { [1] = { { 1, 1, "a" }, { 1, 1, "b" } } } }
    assert_fails(history(d):check("ts_order"), "ts_order", 1)
    d.byz = { 1 }
    assert_ok(history(d):check("ts_order"))
  end)
end)

describe("check_all", function()
  it("runs the safety checkers in a fixed order, and liveness and ts_order on request", function()
    local msgs, subs = common(3, 5)
    local h = history { n = 3, subs = subs, logs = { [0] = msgs, [1] = msgs, [2] = msgs } }
    local all = h:check_all()
    assert.is_true(all.ok)
    assert.are.equal("", all.explain)
    local names = {}
    for i, v in ipairs(all.checks) do names[i] = v.checker; assert.is_true(v.ok) end
    assert.are.same({ "agreement", "total_order", "validity", "integrity" }, names)
    all = h:check_all { bound = "1s", ts_order = true }
    names = {}
    for i, v in ipairs(all.checks) do names[i] = v.checker end
    assert.are.same({ "agreement", "total_order", "validity", "integrity", "liveness", "ts_order" },
      names)
    assert.is_true(all.ok)
  end)

  it("fails when any checker fails and explains every failure", function()
    local h = history { n = 2, subs = { { 0, "a" } }, logs = {
      [0] = { { 0, 1, "a" } }, [1] = { { 0, 1, "a" }, { 0, 1, "a" }, { 1, 2, "forged" } } } }
    local all = h:check_all()
    assert.is_false(all.ok)
    local failed = {}
    for _, v in ipairs(all.checks) do if not v.ok then failed[#failed + 1] = v.checker end end
    assert.are.same({ "validity", "integrity" }, failed)
    assert.truthy(all.explain:find("validity", 1, true))
    assert.truthy(all.explain:find("integrity", 1, true))
  end)
end)

-- Random agreeing histories: one common sequence, each honest node delivers a
-- prefix of it (one delivers all), Byzantine nodes deliver noise. Every
-- checker must accept; then one planted fault must be caught.
describe("random histories", function()
  local seeds = { 1, 2, 3, 7, 42, 1234, 99991, 314159 }
  for s in (os.getenv("SYNOD_SEEDS") or ""):gmatch("[^,%s]+") do
    seeds[#seeds + 1] = assert(math.tointeger(tonumber(s)), "SYNOD_SEEDS: bad seed " .. s)
  end

  local rng = require "support.rng"

  local function generate(seed)
    local r = rng(seed)
    local n = r(2, 7)
    local k = r(2, 60)
    local byz = {}
    for node = 0, n - 1 do if r(1, 4) == 1 then byz[node] = true end end
    local full = r(0, n - 1)          -- one honest node delivers everything
    byz[full] = nil
    local seq, subs, ts = {}, {}, 0
    for i = 1, k do
      local origin = r(0, n - 1)
      ts = ts + r(0, 3)                -- equal ts is fine: origin breaks the tie …
      if i > 1 and ts == seq[i - 1][2] and origin <= seq[i - 1][1] then ts = ts + 1 end
      seq[i] = { origin, ts, ("v%d-%d"):format(seed % 1000, i), ts * 1000 + 500 }
      if not byz[origin] then subs[#subs + 1] = { origin, seq[i][3], ts * 1000 } end
    end
    local logs = {}
    for node = 0, n - 1 do
      if byz[node] then
        logs[node] = {}
        for i = 1, r(0, 5) do logs[node][i] = { r(0, n - 1), r(0, 9), "noise" .. r(1, 3) } end
      else
        logs[node] = prefix(seq, node == full and k or r(0, k))
      end
    end
    local b = {}
    for node in pairs(byz) do b[#b + 1] = node end
    table.sort(b)
    return { n = n, byz = b, subs = subs, logs = logs }, r, full
  end

  local function replay(seed)
    return ("seed %d; replay: SYNOD_SEEDS=%d busted spec/check_spec.lua"):format(seed, seed)
  end

  local function honest_nodes(d)
    local byz, out = {}, {}
    for _, b in ipairs(d.byz) do byz[b] = true end
    for node = 0, d.n - 1 do if not byz[node] then out[#out + 1] = node end end
    return out
  end

  for _, seed in ipairs(seeds) do
    it("seed " .. seed .. ": accepts an agreeing history and catches a planted fault", function()
      local d, r, full = generate(seed)
      local all = history(d):check_all { ts_order = true }
      assert.is_true(all.ok, replay(seed) .. "\n" .. all.explain)

      local honest = honest_nodes(d)
      local function pick(pred)
        local c = {}
        for _, node in ipairs(honest) do if pred(node) then c[#c + 1] = node end end
        if #c > 0 then return c[r(1, #c)] end
      end
      local kind = r(1, 3)
      local victim
      if kind == 1 then
        -- a swap needs a second copy in order: the full node keeps one.
        victim = pick(function(node) return node ~= full and #d.logs[node] >= 2 end)
        if not victim then kind = 2 end
      end
      if kind == 2 then victim = pick(function(node) return #d.logs[node] >= 1 end) end
      if kind == 3 then victim = pick(function() return true end) end
      local log = prefix(d.logs[victim], #d.logs[victim])
      d.logs[victim] = log

      if kind == 1 then
        local p = r(1, #log - 1)
        local q = r(p + 1, #log)
        log[p], log[q] = log[q], log[p]
        local h = history(d)
        local v = h:check("agreement")
        assert.is_false(v.ok, replay(seed))
        assert.are.equal(p, v.pos_a, replay(seed))
        assert.is_false(h:check("total_order").ok, replay(seed))
        assert.are.equal(victim, h:check("ts_order").node_a, replay(seed))
      elseif kind == 2 then
        log[#log + 1] = log[r(1, #log)]   -- deliver an earlier message again
        local v = history(d):check("integrity")
        assert.is_false(v.ok, replay(seed))
        assert.are.equal(victim, v.node_a, replay(seed))
        assert.are.equal(#log, v.pos_b, replay(seed))
      else
        local last = log[#log] or { 0, 0 }   -- a value its honest origin never submitted
        log[#log + 1] = { victim, last[2] + 1, "foreign" }
        local v = history(d):check("validity")
        assert.is_false(v.ok, replay(seed))
        assert.are.equal(victim, v.node_a, replay(seed))
        assert.are.equal(#log, v.pos_a, replay(seed))
      end
    end)
  end
end)
