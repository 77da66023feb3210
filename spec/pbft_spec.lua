-- PBFT (engine/proto/pbft.c) driven through the simulator: configuration
-- errors, the normal case with several clients, the replies and the
-- reply cache, crafted bad messages (each a counted rejection), evidence of
-- an equivocating primary with both signed frames, view change, state
-- transfer after amnesia, Twins, and determinism.
local synod = require "synod"
local seeds = require "support.seeds"

local function cluster(seed, params, crypto)
  local sim = synod.sim { seed = seed, latency = synod.dist.uniform("1ms", "5ms"), crypto = crypto or "ed25519" }
  local p = { protocol = "pbft", n = 4, clients = 3, view_change_ms = 400, client_timeout_ms = 250 }
  for k, v in pairs(params or {}) do p[k] = v end
  return sim, sim:cluster(p)
end

local function load(sim, count, gap_ms)
  for i = 1, count do
    sim:at(i * (gap_ms or 3) * 1000000, function() sim:submit(("put k%d v%d"):format(i % 5, i)) end)
  end
end

local function run_all(sim, nodes, count, timeout)
  return sim:run { stop = function() return nodes:completed() >= count end, timeout = timeout or "60s" }
end

describe("pbft configuration", function()
  it("refuses a window outside checkpoint_interval .. 7 x checkpoint_interval", function()
    local sim = synod.sim { seed = 1 }
    local ok, err = pcall(sim.cluster, sim, { protocol = "pbft", n = 4, checkpoint_interval = 100, window = 50 })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("window must be checkpoint_interval", 1, true), err)
  end)

  it("refuses more replicas than SYN_PBFT_MAX_REPLICAS and clients for a protocol without a client role", function()
    local sim = synod.sim { seed = 1 }
    local ok, err = pcall(sim.cluster, sim, { protocol = "pbft", n = 33 })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("runs 1..32 nodes", 1, true), err)
    local sim2 = synod.sim { seed = 1 }
    ok, err = pcall(sim2.cluster, sim2, { protocol = "tom", n = 4, clients = 2 })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("takes no clients", 1, true), err)
  end)

  it("names an unknown application", function()
    local sim = synod.sim { seed = 1 }
    local ok, err = pcall(sim.cluster, sim, { protocol = "pbft", n = 4, app = "nosuch" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("unknown application 'nosuch'", 1, true), err)
  end)

  it("refuses a request at a replica, and a behaviour option it does not know", function()
    local sim, nodes = cluster(1)
    assert.has_error(function() sim:submit("put a 1", 0) end,
      "cannot submit at node 0: it is a pbft replica; requests go to its clients (nodes.clients, ids 4..6)")
    assert.has_error(function() nodes[2]:submit("put a 1") end)
    local ok, err = pcall(require "behaviors.pbft.seq", { skp = 3 })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("unknown option 'skp' (known: mode, skip)", 1, true), err)
    local sim0 = cluster(1, { clients = 0 })
    assert.has_error(function() sim0:submit("put a 1") end, "cannot submit: this pbft cluster has no clients (cluster{ clients = N })")
  end)

  it("names the op that is not a key-value command when judging linearizability", function()
    local sim, nodes = cluster(2, { clients = 1 })
    sim:submit("bogus a")
    sim:run { timeout = "2s" }
    local v = nodes:check { liveness = false }
    assert.is_false(v.checks.linearizability.ok)
    assert.truthy(v.checks.linearizability.explain:find('"bogus a" is not a key-value op', 1, true), v.checks.linearizability.explain)
  end)

  it("gives replicas and clients their own handles and status", function()
    local _, nodes = cluster(1)
    assert.equal(4, nodes.n)
    assert.equal(3, #nodes.clients)
    assert.equal(4, nodes.clients[1].id)
    local s = nodes[1]:status()
    for _, k in ipairs { "view", "primary", "last_executed", "stable_checkpoint", "executed_ops", "log_slots" } do
      assert.is_number(s[k], k)
    end
    assert.equal(1, nodes.clients[1]:status().client)
  end)
end)

describe("pbft normal case", function()
  it("answers every op, executes the same batches everywhere, and every checker holds", function()
    seeds.each({ 1, 2, 3 }, function(seed)
      local sim, nodes = cluster(seed, { batch_size = 5, batch_delay_ms = 2 })
      load(sim, 120, 2)
      assert.equal("stop", run_all(sim, nodes, 120))
      local v = nodes:check { liveness = { bound = "2s" } }
      assert.is_true(v.ok, v.summary)
      local last = nodes[1]:status().last_executed
      for i = 2, 4 do assert.equal(last, nodes[i]:status().last_executed) end
      assert.is_true(last < 120, "batching put several ops in one sequence number")
    end)
  end)

  it("runs with f = 0 (n = 1) and with f = 2 (n = 7)", function()
    for _, n in ipairs { 1, 7 } do
      local sim, nodes = cluster(5, { n = n })
      load(sim, 40)
      assert.equal("stop", run_all(sim, nodes, 40))
      assert.is_true(nodes:check { liveness = false }.ok)
    end
  end)

  it("returns the key-value results a client reads, and the history is linearizable", function()
    local sim, nodes = cluster(7, { clients = 1 })
    sim:submit("put a 1"); sim:submit("get a"); sim:submit("cas a 1 2"); sim:submit("get a"); sim:submit("del a")
    sim:submit("get a")
    assert.equal("stop", run_all(sim, nodes, 6))
    local results = {}
    for _, d in ipairs(nodes.clients[1]:history()) do results[#results + 1] = d.value end
    assert.same({ "OK", "VALUE 1", "OK", "VALUE 2", "OK", "NOT_FOUND" }, results)
    local h = nodes:kv_history()
    assert.equal(6, #h)
    assert.equal("ok", h:check().outcome)
  end)

  it("executes a retried request once and answers the retry from the reply cache", function()
    -- Replies to client 4 are lost for a while: it times out and broadcasts
    -- its request again; the replicas have executed it already.
    local sim, nodes = cluster(9, { clients = 1, client_timeout_ms = 100 })
    for r = 0, 3 do sim:block(r, 4) end
    sim:submit("put x 1")
    sim:at(synod.time("350ms"), function() sim:heal() end)
    assert.equal("stop", run_all(sim, nodes, 1))
    assert.is_true(nodes.clients[1]:status().retries >= 1)
    for i = 1, 4 do assert.equal(1, nodes[i]:status().executed_ops) end
    assert.is_true(nodes:check { liveness = false }.checks.exactly_once.ok)
  end)
end)

describe("pbft input validation", function()
  it("counts a pre-prepare from a replica that is not the primary", function()
    local sim, nodes = cluster(11)
    nodes[3]:send(1, { type = "pre-prepare", view = 0, seq = 1, digest = ("x"):rep(32) })
    sim:run { timeout = "100ms" }
    assert.equal(1, nodes[2]:counters().rejected.not_primary)
  end)

  it("counts a request sent by a replica and a bad digest length", function()
    local sim, nodes = cluster(12)
    nodes[2]:send(0, { type = "request", client = 1, ts = 1, op = "put a b" })
    nodes[2]:send(2, { type = "prepare", view = 0, seq = 1, digest = "short" })
    sim:run { timeout = "100ms" }
    assert.equal(1, nodes[1]:counters().rejected.not_client)
    assert.equal(1, nodes[3]:counters().unverified.bad_digest)   -- refused before its signature was checked
  end)

  it("counts pre-prepares beyond the high watermark and for future views", function()
    local sim, nodes = cluster(13, { checkpoint_interval = 10, window = 20 })
    nodes[1]:send(1, { type = "pre-prepare", view = 0, seq = 21, digest = ("d"):rep(32) })
    nodes[2]:send(2, { type = "prepare", view = 6, seq = 1, digest = ("d"):rep(32) })
    sim:run { timeout = "100ms" }
    assert.equal(1, nodes[2]:counters().rejected.out_of_window)
    assert.equal(1, nodes[3]:counters().rejected.wrong_view)
  end)

  it("refuses a batch whose body does not hash to its digest", function()
    local sim, nodes = cluster(14)
    nodes[1]:send(1, { type = "batch", view = 0, seq = 1, digest = ("d"):rep(32), requests = "" })
    sim:run { timeout = "100ms" }
    assert.equal(1, nodes[2]:counters().rejected.bad_batch)
  end)
end)

describe("pbft faults", function()
  it("keeps both signed pre-prepares as evidence against an equivocating primary", function()
    local sim, nodes = cluster(15)
    local frames = {}
    nodes[1]:behave {
      on_send = function(node, msg, to)
        if msg.type ~= "pre-prepare" or to ~= 2 then return msg end
        local lie = msg:copy()
        lie.digest = ("L"):rep(32)
        return { lie, msg }        -- the lie first, then the truth, both signed by 0
      end,
    }
    load(sim, 20)
    run_all(sim, nodes, 20)
    local ev = nodes[3]:evidence()
    assert.is_true(#ev > 0, "no evidence at replica 2")
    assert.equal(0, ev[1].against)
    assert.equal("equivocation", ev[1].reason)
    assert.is_true(#ev[1].a > 0 and #ev[1].b > 0)
    assert.are_not.equal(ev[1].a, ev[1].b)
    assert.is_true(nodes:check { liveness = false }.ok)
  end)

  it("changes view when the primary crashes and answers every op", function()
    local sim, nodes = cluster(16)
    load(sim, 100, 4)
    sim:at(synod.time("150ms"), function() nodes[1]:crash() end)
    assert.equal("stop", run_all(sim, nodes, 100))
    for i = 2, 4 do assert.is_true(nodes[i]:status().view >= 1) end
    assert.is_true(nodes:check { liveness = false }.ok)
  end)

  it("brings a replica restarted without state back by state transfer", function()
    local sim, nodes = cluster(17, { checkpoint_interval = 10, window = 20, batch_size = 1 })
    load(sim, 200, 3)
    sim:at(synod.time("100ms"), function() nodes[3]:crash() end)
    sim:at(synod.time("400ms"), function() nodes[3]:restart { durable = false } end)
    assert.equal("stop", run_all(sim, nodes, 200))
    sim:run { timeout = "1s" }
    local s = nodes[3]:status()
    assert.is_true(s.state_transfers >= 1)
    assert.equal(nodes[1]:status().last_executed, s.last_executed)
    assert.is_true(nodes:check { liveness = false }.ok)
  end)

  it("stays safe with a twinned primary, and the checkers catch two twinned replicas (f+1)", function()
    local sim, nodes = cluster(18, { clients = 4 })
    sim:twins { ids = { 0 }, world_b = { 2, 3, 6, 7 } }
    load(sim, 60)
    assert.equal("stop", run_all(sim, nodes, 60))
    assert.is_true(nodes:check { liveness = false }.ok)

    local sim2, nodes2 = cluster(18, { clients = 4 })
    sim2:twins { ids = { 0, 1 }, world_b = { 3, 6, 7 } }
    load(sim2, 60)
    run_all(sim2, nodes2, 60)
    local v = nodes2:check { liveness = false }
    assert.is_false(v.ok)
    assert.is_false(v.checks.batches.ok)
  end)

  it("refuses to twin a node twice", function()
    local sim = cluster(19)
    sim:twins { ids = { 1 } }
    assert.has_error(function() sim:twins { ids = { 1 } } end, "twins: node 1 already has a twin")
  end)
end)

describe("pbft determinism", function()
  it("replays bit for bit from its seed", function()
    local function hash(seed)
      local sim, nodes = cluster(seed, { batch_size = 3 })
      load(sim, 50)
      sim:at(synod.time("60ms"), function() nodes[1]:crash() end)
      run_all(sim, nodes, 50)
      return sim:trace_hash()
    end
    assert.equal(hash(21), hash(21))
    assert.are_not.equal(hash(21), hash(22))
  end)
end)
