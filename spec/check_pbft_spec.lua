-- check_pbft_spec.lua — synod.history in the replicas-and-clients shape a
-- PBFT run records (check/check.h): clients' submissions and responses,
-- replicas' executed ops with gaps, batch commits; the checkers batches and
-- exactly_once, validity and liveness of client ops, and the clients' KV
-- history handed to the linearizability checker. Every checker is shown a
-- good history and a planted bad one; assertions are on verdict fields (and,
-- where the brief asks the explanation to name something, on that name).
local synod = require "synod"
local seeds = require "support.seeds"
local rng = require "support.rng"

local MS = 1000000
local N, CLIENTS = 4, 2          -- replicas 0..3, clients 4 and 5
local C1, C2 = N, N + 1

-- A 32-byte digest as 64 hex digits: i's decimal digits, then zeros.
local function digest(i)
  local s = tostring(i)
  return s .. ("0"):rep(64 - #s)
end

-- A PBFT-shaped history from a description:
--   subs     = { {client, op [, at]} … }                  (the k-th at a client has ts k)
--   exec     = { [replica] = { {seq, client, ts, op [, at]} … } }
--   resp     = { [client] = { {k, pbft_seq, result [, at]} … } }
--   commits  = { [replica] = { {seq, digest_index [, at]} … } }
--   byz      = { node … }
local function history(d)
  local h = synod.history { n = d.n or N, clients = d.clients or CLIENTS }
  for _, s in ipairs(d.subs or {}) do h:submit(s[1], s[2], s[3]) end
  for node, log in pairs(d.exec or {}) do
    for _, e in ipairs(log) do h:deliver(node, e[1], e[2], e[3], e[4], e[5]) end
  end
  for client, log in pairs(d.resp or {}) do
    for _, r in ipairs(log) do h:deliver(client, r[1], client, r[2], r[3], r[4]) end
  end
  for node, log in pairs(d.commits or {}) do
    for _, c in ipairs(log) do h:commit(node, c[1], digest(c[2]), c[3]) end
  end
  for _, b in ipairs(d.byz or {}) do h:byzantine(b) end
  return h
end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = type(v) == "table" and copy(v) or v end
  return out
end

-- A good run: client 4 puts x then reads it; client 5 puts y. Batch 1 holds
-- ops 1 and 2, batch 2 op 3. Replica 3 caught up by state transfer: it has
-- only the last op and the last batch.
local function good()
  local ops = { { 1, C1, 1, "put x 1", 30 * MS }, { 2, C2, 1, "put y 2", 30 * MS },
                { 3, C1, 2, "get x", 60 * MS } }
  return {
    subs = { { C1, "put x 1", 10 * MS }, { C2, "put y 2", 12 * MS }, { C1, "get x", 40 * MS } },
    exec = { [0] = copy(ops), [1] = copy(ops), [2] = copy(ops), [3] = { copy(ops[3]) } },
    resp = { [C1] = { { 1, 1, "OK", 35 * MS }, { 2, 2, "VALUE 1", 65 * MS } },
             [C2] = { { 1, 1, "OK", 36 * MS } } },
    commits = { [0] = { { 1, 11 }, { 2, 22 } }, [1] = { { 1, 11 }, { 2, 22 } },
                [2] = { { 1, 11 }, { 2, 22 } }, [3] = { { 2, 22 } } },
  }
end

local function assert_ok(v)
  assert.is_true(v.ok, tostring(v))
  assert.are.equal("", v.explain)
  assert.is_nil(v.node_a)
end

local function assert_fails(v, checker, node_a)
  assert.is_false(v.ok, "expected " .. checker .. " to fail")
  assert.are.equal(checker, v.checker)
  assert.are.equal(node_a, v.node_a)
  assert.is_true(#v.explain > 0)
end

describe("synod.history with clients", function()
  it("numbers clients after the replicas and accepts them where a node is asked for", function()
    local h = synod.history { n = N, clients = CLIENTS }
    assert.are.equal(N, #h)
    h:submit(C2, "put a 1", "1ms")
    h:deliver(C2, 1, C2, 9, "OK", "2ms")
    h:byzantine(C1)
    assert.is_false(h:is_honest(C1))
    assert.is_true(h:is_honest(C2))
    assert.are.same({ { seq = 1, origin = C2, ts = 9, value = "OK", at = 2 * MS } }, h:log(C2))
    h:reset(C2)
    assert.are.same({}, h:log(C2))
    assert.truthy(tostring(h):find("clients=2", 1, true))
  end)

  it("records commits from hex or raw digests and forgets them on reset", function()
    local h = synod.history { n = 2 }
    h:commit(0, 1, digest(7), "3ms")
    h:commit(0, 2, ("\171"):rep(32))
    assert.are.same({ { seq = 1, digest = digest(7), at = 3 * MS },
                      { seq = 2, digest = ("ab"):rep(32), at = 0 } }, h:commits(0))
    assert.are.same({}, h:commits(1))
    h:reset(0)
    assert.are.same({}, h:commits(0))
  end)

  it("names the function and argument in argument errors", function()
    local h = synod.history { n = N, clients = CLIENTS }
    assert.error_matches(function() h:deliver(6, 1, 0, 1, "v") end,
      "bad argument #1 to 'deliver' %(node 6 out of range 0%.%.5%)")
    assert.error_matches(function() h:commit(C1, 1, digest(1)) end,
      "bad argument #1 to 'commit' %(replica 4 out of range 0%.%.3%)")
    assert.error_matches(function() h:commit(0, 1, "abc") end, "#3 to 'commit'.*digest")
    assert.error_matches(function() h:commit(0, 1, ("zz"):rep(32)) end, "#3 to 'commit'.*digest")
    assert.error_matches(function() h:commit(0, -1, digest(1)) end, "#2 to 'commit'.*seq")
    assert.error_matches(function() h:commits(C1) end, "#1 to 'commits'.*replica 4")
    assert.error_matches(function() synod.history { n = 2, clients = -1 } end,
      "#1 to 'history'.*clients")
    assert.error_matches(function() synod.history { n = 200, clients = 57 } end,
      "#1 to 'history'.*SYN_MAX_HISTORY_NODES")
    synod.history { n = 200, clients = 56 }   -- exactly the limit
  end)

  it("passes check_all on a good run, with batches and exactly_once in it", function()
    local all = history(good()):check_all { bound = "100ms", end_ns = "1s" }
    assert.is_true(all.ok, all.explain)
    local names = {}
    for i, v in ipairs(all.checks) do names[i] = v.checker end
    assert.are.same({ "agreement", "total_order", "validity", "integrity", "batches",
                      "exactly_once", "liveness" }, names)
  end)

  it("runs batches and exactly_once in check_all when a history has only commits", function()
    local h = synod.history { n = 2 }
    h:commit(0, 1, digest(1))
    h:commit(1, 1, digest(2))
    local all = h:check_all()
    assert.is_false(all.ok)
    assert.are.equal("batches", all.checks[5].checker)
    assert.is_false(all.checks[5].ok)
  end)
end)

describe("agreement and total_order on replicas with a state-transfer gap", function()
  it("accepts the good run, and catches a different op at the same seq after the gap", function()
    assert_ok(history(good()):check("agreement"))
    assert_ok(history(good()):check("total_order"))
    local d = good()
    d.exec[3] = { { 3, C1, 2, "get y", 60 * MS } }
    local v = history(d):check("agreement")
    assert_fails(v, "agreement", 0)
    assert.are.equal(3, v.node_b)
    assert.are.equal(3, v.pos_a)
    assert.are.equal(1, v.pos_b)
  end)
end)

describe("validity of a client origin", function()
  it("accepts ops their client submitted", function()
    assert_ok(history(good()):check("validity"))
  end)

  it("catches an op its client never submitted", function()
    local d = good()
    d.exec[1][3] = { 3, C2, 2, "del x" }
    local v = history(d):check("validity")
    assert_fails(v, "validity", 1)
    assert.are.equal(C2, v.node_b)
    assert.are.equal(3, v.pos_a)
    assert.truthy(v.explain:find("client 5", 1, true), v.explain)
  end)

  it("catches an op submitted by another client", function()
    local d = good()
    d.exec[0][1] = { 1, C2, 1, "put x 1" }   -- client 4 submitted it, not client 5
    assert_fails(history(d):check("validity"), "validity", 0)
  end)

  it("catches an origin beyond the clients, and exempts a Byzantine client", function()
    local d = good()
    d.exec[2][2] = { 2, N + CLIENTS, 1, "put y 2" }
    local v = history(d):check("validity")
    assert_fails(v, "validity", 2)
    assert.is_nil(v.node_b)
    d = good()
    d.exec[1][3] = { 3, C2, 2, "made up" }
    assert.is_false(history(d):check("validity").ok)
    d.byz = { C2 }
    assert_ok(history(d):check("validity"))
  end)
end)

describe("liveness of client ops", function()
  local opts = { bound = "30ms", end_ns = "1s" }

  it("is met when each op's response (seq k for the k-th op) comes by its deadline", function()
    assert_ok(history(good()):check("liveness", opts))
  end)

  it("catches an op never answered, naming the client, the op and the deadline", function()
    local d = good()
    d.resp[C1][2] = nil                        -- "get x" (submitted at 40ms) never answered
    local v = history(d):check("liveness", opts)
    assert_fails(v, "liveness", C1)
    assert.are.equal(C1, v.node_b)
    assert.is_nil(v.pos_a)
    assert.are.equal(3, v.pos_b)               -- the third submission of the run
    assert.truthy(v.explain:find("client 4", 1, true), v.explain)
    assert.truthy(v.explain:find('"get x"', 1, true), v.explain)
    assert.truthy(v.explain:find("deadline was 70ms", 1, true), v.explain)
  end)

  it("catches a late response", function()
    local d = good()
    d.resp[C2][1][4] = 43 * MS                 -- submitted 12ms, bound 30ms: due by 42ms
    local v = history(d):check("liveness", opts)
    assert_fails(v, "liveness", C2)
    assert.are.equal(1, v.pos_a)               -- the late entry of client 5's log
    assert.are.equal(2, v.pos_b)
    assert.truthy(v.explain:find('"put y 2"', 1, true), v.explain)
  end)

  it("pairs the k-th op with the response for seq k only", function()
    local d = good()
    d.resp[C1] = { { 2, 2, "VALUE 1", 65 * MS } }   -- op 2 answered, op 1 not
    local v = history(d):check("liveness", opts)
    assert_fails(v, "liveness", C1)
    assert.are.equal(1, v.pos_b)
    assert.truthy(v.explain:find('"put x 1"', 1, true), v.explain)
  end)

  it("does not judge a Byzantine client, nor a deadline past the end", function()
    local d = good()
    d.resp[C1] = {}
    d.byz = { C1 }
    assert_ok(history(d):check("liveness", opts))
    d = good()
    d.resp[C1][2] = nil                        -- "get x": due by 70ms
    local v = history(d):check("liveness", { bound = "30ms", end_ns = "69ms" })
    assert.is_true(v.ok)
    assert.truthy(v.explain:find("1 of 3 submissions not judged", 1, true), v.explain)
    assert_fails(history(d):check("liveness", { bound = "30ms", end_ns = "70ms" }), "liveness", C1)
  end)
end)

describe("batches", function()
  it("accepts equal digests per seq, with a replica that skipped a seq", function()
    assert_ok(history(good()):check("batches"))
    assert_ok(synod.history({ n = 3 }):check("batches"))
  end)

  it("catches two honest replicas with different batches at one seq", function()
    local d = good()
    d.commits[3] = { { 2, 99 } }
    local v = history(d):check("batches")
    assert_fails(v, "batches", 0)
    assert.are.equal(3, v.node_b)
    assert.are.equal(2, v.pos_a)
    assert.are.equal(1, v.pos_b)
    assert.truthy(v.explain:find("seq 2", 1, true), v.explain)
    assert.truthy(v.explain:find(digest(22):sub(1, 16), 1, true), v.explain)
    assert.truthy(v.explain:find(digest(99):sub(1, 16), 1, true), v.explain)
    d.byz = { 3 }
    assert_ok(history(d):check("batches"))
  end)

  it("catches a commit log that is not strictly increasing in seq", function()
    local d = good()
    d.commits[2] = { { 1, 11 }, { 2, 22 }, { 2, 22 } }
    local v = history(d):check("batches")
    assert_fails(v, "batches", 2)
    assert.are.equal(2, v.node_b)
    assert.are.equal(2, v.pos_a)
    assert.are.equal(3, v.pos_b)
  end)
end)

describe("exactly_once", function()
  it("accepts the good run", function()
    assert_ok(history(good()):check("exactly_once"))
  end)

  it("catches a replica that executes one (client, ts) twice, even with another value", function()
    local d = good()
    d.subs[4] = { C1, "put x 9", 70 * MS }
    d.exec[2][4] = { 4, C1, 2, "put x 9" }    -- client 4's ts 2 again
    local v = history(d):check("exactly_once")
    assert_fails(v, "exactly_once", 2)
    assert.are.equal(2, v.node_b)
    assert.are.equal(3, v.pos_a)
    assert.are.equal(4, v.pos_b)
    assert.is_true(history(d):check("integrity").ok)   -- not the same message: integrity is blind
    d.byz = { 2 }
    assert_ok(history(d):check("exactly_once"))
  end)

  it("catches a response to an op no honest replica executed", function()
    local d = good()
    d.subs[4] = { C2, "get y", 70 * MS }
    d.resp[C2][2] = { 2, 4, "VALUE 2", 80 * MS }   -- nobody executed client 5's ts 2
    local v = history(d):check("exactly_once")
    assert_fails(v, "exactly_once", C2)
    assert.are.equal(2, v.pos_a)
    assert.truthy(v.explain:find("client 5", 1, true), v.explain)
    assert.truthy(v.explain:find('"get y"', 1, true), v.explain)
  end)

  it("does not count an execution by a Byzantine replica, unless all replicas are", function()
    local d = good()
    d.subs[4] = { C2, "get y", 70 * MS }
    d.exec[0][4] = { 4, C2, 2, "get y" }
    d.resp[C2][2] = { 2, 4, "VALUE 2", 80 * MS }
    assert_ok(history(d):check("exactly_once"))
    d.byz = { 0 }
    assert_fails(history(d):check("exactly_once"), "exactly_once", C2)
    d.byz = { 0, 1, 2, 3 }
    assert_ok(history(d):check("exactly_once"))
    d.byz = { 0, C2 }                               -- a Byzantine client's log is not judged
    assert_ok(history(d):check("exactly_once"))
  end)
end)

describe("kv_history", function()
  it("builds completed and pending ops from the clients' submissions and responses", function()
    local d = good()
    d.subs[4] = { C2, "cas y 2 3", 70 * MS }      -- never answered: pending
    local kv = history(d):kv_history()
    assert.are.equal(4, #kv)
    local ops = kv:ops()
    assert.are.same({ id = 1, client = C1, kind = "put", key = "x", value = "1",
                      invoke = 10 * MS, respond = 35 * MS, result = "OK" }, ops[1])
    assert.are.same({ id = 3, client = C1, kind = "get", key = "x",
                      invoke = 40 * MS, respond = 65 * MS, result = "VALUE 1" }, ops[3])
    assert.are.same({ id = 4, client = C2, kind = "cas", key = "y", expected = "2", new = "3",
                      invoke = 70 * MS }, ops[4])
    assert.is_true(kv:check().ok)
  end)

  it("finds a linearizability violation through the history", function()
    local d = good()
    d.resp[C1][2][3] = "NOT_FOUND"    -- read after put x 1 completed: stale
    local v = history(d):kv_history():check()
    assert.is_false(v.ok)
    assert.are.equal("violation", v.outcome)
    assert.are.equal("x", v.key)
  end)

  it("finds a client's ops again after it restarted from its records (an epoch)", function()
    local d = good()
    d.subs[4] = { C1, "put x 5", 70 * MS }   -- C1's 3rd: taken, then lost when it crashed
    d.subs[5] = { C1, "get x", 90 * MS }     -- its 4th, the first since: ts 65 (it had reserved 1..64)
    for r = 0, 2 do d.exec[r][4] = { 4, C1, 65, "get x", 95 * MS } end
    d.resp[C1][3] = { 65, 4, "VALUE 1", 100 * MS }
    local h = history(d)
    assert.is_nil(h:kv_history():ops()[5].respond)   -- without the epoch ts 65 answers nothing submitted
    assert.is_true(h:check("exactly_once").ok)       -- (client, ts) is what replicas executed
    h:client_epoch(C1, 3, 65)
    local ops = h:kv_history():ops()
    assert.are.equal(100 * MS, ops[5].respond)
    assert.are.equal("VALUE 1", ops[5].result)
    assert.is_nil(ops[4].respond)                    -- the lost op stays pending
    assert.is_true(h:kv_history():check().ok)
    -- A response nobody executed is named by the op the epoch maps it to.
    for r = 0, 2 do d.exec[r][4] = nil end
    local bad = history(d)
    bad:client_epoch(C1, 3, 65)
    local v = bad:check("exactly_once")
    assert_fails(v, "exactly_once", C1)
    assert.truthy(v.explain:find('"get x"', 1, true), v.explain)
    assert.error_matches(function() bad:client_epoch(0, 1, 1) end, "#1 to 'client_epoch'.*replica")
    assert.error_matches(function() bad:client_epoch(C1, 1, 0) end, "#3 to 'client_epoch'.*first_ts")
  end)

  it("leaves a Byzantine client's ops pending and skips submissions at replicas", function()
    local d = good()
    d.resp[C1][2][3] = "NOT_FOUND"
    d.byz = { C1 }
    d.subs[4] = { 0, "not a kv op" }
    local kv = history(d):kv_history()
    assert.are.equal(3, #kv)
    assert.is_nil(kv:ops()[1].respond)
    assert.is_true(kv:check().ok)
  end)

  it("names a client op that is not a key-value op", function()
    local d = good()
    d.subs[4] = { C2, "launch rockets" }
    assert.error_matches(function() history(d):kv_history() end,
      'kv_history: submission 4 at client 5: "launch rockets" is not a key%-value op')
  end)
end)

-- Random PBFT-shaped runs: ops from random clients executed in one global
-- order in batches; every replica executes a prefix, some after a
-- state-transfer gap; clients hear back for some ops. Every checker must
-- accept; then one planted fault must be caught.
describe("random PBFT histories", function()
  local function generate(seed)
    local r = rng(seed)
    local n, clients = r(1, 7), r(1, 5)
    local d = { n = n, clients = clients, subs = {}, exec = {}, resp = {}, commits = {} }
    local kth, order, batches = {}, {}, {}
    for i = 1, r(1, 40) do
      local c = n + r(0, clients - 1)
      kth[c] = (kth[c] or 0) + 1
      local op = ("put k%d %d"):format(r(1, 3), i)
      d.subs[#d.subs + 1] = { c, op, i * MS }
      order[i] = { i, c, kth[c], op, i * MS + 500 }
      if i == 1 or r(1, 3) == 1 then batches[#batches + 1] = { first = i } end
      batches[#batches].last = i
    end
    for node = 0, n - 1 do
      local upto = node == 0 and #batches or r(0, #batches)
      -- state transfer: skip to batch `from` (replica 0 executes everything)
      local from = (node > 0 and r(1, 3) == 1) and r(1, upto + 1) or 1
      d.exec[node], d.commits[node] = {}, {}
      for b = from, upto do
        d.commits[node][#d.commits[node] + 1] = { b, b }
        for i = batches[b].first, batches[b].last do d.exec[node][#d.exec[node] + 1] = order[i] end
      end
    end
    for _, o in ipairs(order) do       -- replica 0 executed all: any op may be answered
      if r(1, 4) > 1 then
        local log = d.resp[o[2]] or {}
        d.resp[o[2]] = log
        log[#log + 1] = { o[3], o[1], "OK", o[5] + 1 }
      end
    end
    return d, r
  end

  it("accepts agreeing runs and catches a planted fault", function()
    seeds.each({ 1, 2, 3, 5, 8, 13, 42, 1234, 99991 }, function(seed)
      local d, r = generate(seed)
      local all = history(d):check_all()
      assert.is_true(all.ok, all.explain)
      local kind = r(1, 4)
      local order = d.exec[0]
      -- kinds 1 and 2 change a replica other than 0, which has every seq
      local victim = d.n > 1 and r(1, d.n - 1) or nil
      if kind == 1 then         -- a replica executes something else at some seq
        local log = victim and d.exec[victim] or {}
        if #log == 0 then kind = 3 else
          local p = r(1, #log)
          local e = copy(log[p])
          e[4] = "put evil " .. p
          log[p] = e
          local v = history(d):check("agreement")
          assert.is_false(v.ok)
          assert.are.equal(0, v.node_a)
          assert.are.equal(victim, v.node_b)
          assert.are.equal(p, v.pos_b)
          assert.are.equal(e[1], v.pos_a)      -- replica 0's log has no gap: entry = seq
          return
        end
      end
      if kind == 2 then         -- a replica commits another batch at some seq
        local log = victim and d.commits[victim] or {}
        if #log == 0 then kind = 3 else
          local p = r(1, #log)
          log[p] = { log[p][1], 1000 + p }
          local v = history(d):check("batches")
          assert.is_false(v.ok)
          assert.are.equal(0, v.node_a)
          assert.are.equal(victim, v.node_b)
          assert.are.equal(p, v.pos_b)
          return
        end
      end
      if kind == 3 then         -- replica 0 executes its last op again at a new seq
        local last = copy(order[#order])
        last[1] = last[1] + 1
        order[#order + 1] = last
        local v = history(d):check("exactly_once")
        assert.is_false(v.ok)
        assert.are.equal(0, v.node_a)
        assert.are.equal(#order, v.pos_b)
        return
      end
      -- kind 4: a client hears back for a request nobody executed
      local c = d.n + r(0, d.clients - 1)
      local log = d.resp[c] or {}
      d.resp[c] = log
      log[#log + 1] = { 999, 999, "OK", 999 * MS }
      local v = history(d):check("exactly_once")
      assert.is_false(v.ok)
      assert.are.equal(c, v.node_a)
      assert.are.equal(#log, v.pos_a)
    end)
  end)
end)
