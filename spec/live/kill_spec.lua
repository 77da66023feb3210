-- spec/live/kill_spec.lua — SIGKILL under load. Four live PBFT nodes take
-- KV operations over HTTP from four closed-loop clients (one per node,
-- reconnecting when their node dies) while, round after round, one replica
-- is killed with SIGKILL and restarted from its data directory on the same
-- ports. Round 1 kills the primary; later rounds a replica drawn from the
-- seed. Each round asserts:
--   - the process died of SIGKILL (exit status 137);
--   - the three survivors keep executing (and, when the primary died, change
--     view);
--   - the restarted node reconnects to its three peers and catches up: its
--     last_executed reaches what the others had executed when it came back;
-- and at the end, with the load stopped:
--   - every node reports the same last_executed and the same number of keys;
--   - a final read of every key, submitted at every node, sees the same
--     value everywhere;
--   - nothing committed was lost and nothing was made up: the whole
--     history (ops answered before each kill, ops cut off by a kill left
--     pending, the final reads) is linearizable (synod.kv_history) — a
--     committed put that a restart forgot would make a later read stale.
-- Normal suite: one cluster, the primary then 2 random replicas. `make
-- soak` (tag soak): the primary then 20 random replicas. Seeds: a fixed
-- list plus SYNOD_SEEDS; each run prints its seed. A first, smaller test
-- restarts one node cleanly and checks that its own submissions still
-- execute.
--
-- Tagged #persist: they need the durable store (a replica's votes, view and
-- log in DATA/synod.db); `busted --exclude-tags=persist` leaves them out.
local json = require "dkjson"
local synod = require "synod"
local live = require "support.live"
local seeds = require "support.seeds"
local rng = require "support.rng"

local N, CLIENTS, KEYS = 4, 4, 5
local TOKEN = "livespec-kill"
-- Quick failure detection, and checkpoints often enough that a restarted
-- node has state to fetch.
local PARAMS = { view_change_ms = 1000, client_timeout_ms = 500, checkpoint_interval = 20, window = 80 }
local OPS_PER_ROUND = 400   -- per client; a round stops its clients long before

local function ops_for(rnd, client, round)
  local out = {}
  for k = 1, OPS_PER_ROUND do
    local key = "k" .. rnd(1, KEYS)
    if rnd(1, 100) <= 55 then out[k] = ("put %s r%dc%dn%d"):format(key, round, client, k)
    else out[k] = "get " .. key end
  end
  return out
end

local function answered(rows)
  local k = 0
  for _, r in ipairs(rows) do if r.status == 200 then k = k + 1 end end
  return k
end

-- Runs `rounds` kill-and-restart rounds on one cluster; victims: "primary"
-- first, then random replicas.
local function run(seed, rounds, tags)
  print(("kill: seed %d, %d rounds (replay: SYNOD_SEEDS=%d busted %sspec/live/kill_spec.lua)"):format(seed, rounds,
    seed, tags or ""))
  local rnd = rng(seed)
  live.with_cluster({ n = N, http = true, token = TOKEN, params = PARAMS, tag = "kill" }, function(c)
    c:start()
    local history = synod.kv_history()
    local base, client_id = nil, 0
    -- Adds a client's results to the history: answered ops respond, the
    -- others (cut off by a kill or refused while their node was down) stay
    -- pending: they may or may not have taken effect.
    local function record(ops, rows)
      client_id = client_id + 1
      for k, r in ipairs(rows) do
        base = base or (r.invoke_ns - 60 * 1000000000)
        local id = history:invoke(client_id, ops[k], r.invoke_ns - base)
        if r.status == 200 then
          local v = assert(json.decode(r.body), r.body)
          history:respond(id, v.result, r.respond_ns - base)
        else
          -- A pending op gets a client of its own: its client went on.
          client_id = client_id + 1
        end
      end
    end

    for round = 1, rounds do
      local st = c:json((round % N), "/status")
      local victim = round == 1 and st.primary or rnd(0, N - 1)
      local survivors = {}
      for i = 0, N - 1 do if i ~= victim then survivors[#survivors + 1] = i end end

      -- The load: one client per node.
      local stop = ("%s/stop-%d"):format(c.dir, round)
      local clients = {}
      for i = 0, CLIENTS - 1 do
        local ops = ops_for(rnd, i, round)
        local path = ("%s/ops-%d-%d.txt"):format(c.dir, round, i)
        live.write_file(path, table.concat(ops, "\n") .. "\n")
        local out = ("%s/res-%d-%d.txt"):format(c.dir, round, i)
        clients[i] = { ops = ops, out = out, bg = c:http_client(i % N, path, out, stop) }
      end
      local function total()
        local k = 0
        for i = 0, CLIENTS - 1 do k = k + answered(live.http_results(clients[i].out)) end
        return k
      end
      c:wait(("round %d: 40 ops answered before the kill"):format(round), function()
        local k = total()
        return k >= 40, k .. " answered"
      end, 30, 0.1)

      -- SIGKILL the victim; the survivors go on.
      local view0 = c:json(survivors[1], "/status").view
      local done0 = c:json(survivors[1], "/status").executed_ops
      assert.equal(137, c:kill(victim), ("round %d: node %d's exit status after SIGKILL"):format(round, victim))
      c:wait(("round %d: the survivors to execute 30 more ops without node %d"):format(round, victim), function()
        for _, i in ipairs(survivors) do
          local s = c:json(i, "/status")
          if s.executed_ops < done0 + 30 then return false, ("node %d: %d of %d"):format(i, s.executed_ops, done0 + 30) end
          if victim == st.primary and s.view <= view0 then return false, ("node %d still in view %d"):format(i, s.view) end
        end
        return true
      end, 30, 0.2)

      -- Restart it from its data directory; it catches up while the load runs on.
      c:start_node(victim, "127.0.0.1:" .. c:node(survivors[1]).port)
      c:wait_connected({ victim }, 15)
      local target = 0
      for _, i in ipairs(survivors) do target = math.max(target, c:json(i, "/status").last_executed) end
      c:wait(("round %d: node %d to catch up to %d"):format(round, victim, target), function()
        local s = c:json(victim, "/status")
        return s.last_executed >= target, ("last_executed %d, view %d, state_transfers %d"):format(s.last_executed,
          s.view, s.state_transfers or -1)
      end, 30, 0.2)

      live.write_file(stop, "")
      for i = 0, CLIENTS - 1 do
        c:wait(("round %d: client %d to stop"):format(round, i), clients[i].bg.done, 30, 0.1)
        record(clients[i].ops, live.http_results(clients[i].out))
      end
    end

    -- Quiet: every node at the same point, with the same keys.
    c:wait("every node to reach the same last_executed", function()
      local first
      for i = 0, N - 1 do
        local s = c:json(i, "/status")
        first = first or s
        if s.last_executed ~= first.last_executed or s.app_entries ~= first.app_entries then
          return false, ("node %d: last_executed %d, app_entries %s; node 0: %d, %s"):format(i, s.last_executed,
            tostring(s.app_entries), first.last_executed, tostring(first.app_entries))
        end
      end
      return true
    end, 30, 0.25)

    -- Final reads of every key at every node: the same value everywhere.
    local values = {}
    for i = 0, N - 1 do
      local ops, path, out = {}, ("%s/final-%d.txt"):format(c.dir, i), ("%s/final-res-%d.txt"):format(c.dir, i)
      for k = 1, KEYS do ops[k] = "get k" .. k end
      live.write_file(path, table.concat(ops, "\n") .. "\n")
      local bg = c:http_client(i, path, out)
      c:wait("the final reads at node " .. i, bg.done, 30, 0.1)
      local rows = live.http_results(out)
      for k, r in ipairs(rows) do
        assert.equal(200, r.status, r.body)
        local v = json.decode(r.body).result
        if values[k] == nil then values[k] = v end
        -- Reads are ordered after every put (the load stopped): all agree.
        assert.equal(values[k], v, ("node %d reads k%d as %s, node 0 as %s"):format(i, k, v, values[k]))
      end
      record(ops, rows)
    end

    local verdict = history:check()
    assert.is_true(verdict.ok, tostring(verdict))
  end)
end

describe("#http #persist live PBFT under SIGKILL", function()
  -- The smallest restart there is: one put through node 2, a clean stop and
  -- a start of node 2, a second put through it. Both must take effect: the
  -- node's own client must not reuse request timestamps the replicas have
  -- already answered (they would drop its requests, or answer one with the
  -- cached reply of an older op).
  it("a node's submissions after its restart are new requests: each executes", function()
    live.with_cluster({ n = N, http = true, token = TOKEN, params = PARAMS, tag = "restart" }, function(c)
      c:start()
      local st, body = c:http(2, "POST", "/submit", { token = TOKEN, body = "put a before" })
      assert.equal(200, st, body)
      assert.equal(0, c:stop(2))
      c:start_node(2, "127.0.0.1:" .. c:node(0).port)
      c:wait_connected({ 2 })
      st, body = c:http(2, "POST", "/submit", { token = TOKEN, body = "put a after", timeout = 10 })
      assert.equal(200, st, "put through the restarted node: " .. body)
      local put = json.decode(body)
      st, body = c:http(1, "POST", "/submit", { token = TOKEN, body = "get a", timeout = 10 })
      assert.equal(200, st, body)
      local get = json.decode(body)
      assert.is_true(get.seq > put.seq, ("the put answered seq %d, the later get seq %d"):format(put.seq, get.seq))
      assert.equal("VALUE after", get.result)
    end)
  end)

  it("kills the primary, then 2 random replicas, under load: progress, catch-up, nothing committed lost", function()
    seeds.each({ 7 }, function(seed) run(seed, 3) end)
  end)

  it("#soak kills a random replica 20 times under load", function()
    seeds.each({ 11 }, function(seed) run(seed, 21, "--tags=soak --exclude-tags=none ") end)
  end)
end)
