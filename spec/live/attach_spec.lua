-- spec/live/attach_spec.lua — `synod attach` against a running 4-node PBFT
-- cluster: chunks run inside the node (values printed, errors on stderr and
-- exit 1), a runaway chunk is stopped by the instruction budget while the
-- cluster goes on, and an equivocating primary turned on through attach is
-- caught: the honest backups it lied to hold both signed pre-prepares as
-- evidence, the cluster changes view and every node executes the same log;
-- behave(nil) turns it back into an honest node and progress continues.
--
-- One cluster serves the whole file; the tests run in order and build on
-- each other (the equivocation test leaves the cluster in view 1).
local synod = require "synod"
local live = require "support.live"

local N = 4
-- Short timeouts so a stalled request starts a view change within seconds.
local PARAMS = { view_change_ms = 1000, client_timeout_ms = 500 }

-- Registers PBFT's message types in this process, so synod.wire.decode
-- reads the frames the nodes hand back.
synod.sim {}:cluster { protocol = "pbft", n = N }

local function executed_everywhere(c, ops)
  c:wait(("every node to execute %d ops"):format(ops), function()
    for i = 0, N - 1 do
      local st = c:status(i)
      if st.executed_ops < ops then
        return false, ("node %d: executed_ops %d, view %d"):format(i, st.executed_ops, st.view)
      end
    end
    return true
  end, 30, 0.2)
end

-- Every node's last k log entries (seq, origin, ts, value) agree; returns node 0's.
local function same_logs(c, k)
  local logs = {}
  for i = 0, N - 1 do
    local entries = c:log(i, k)
    local rows = {}
    for j, e in ipairs(entries) do rows[j] = ("%d %d %d %s"):format(e.seq, e.origin, e.ts, e.value) end
    logs[i] = rows
  end
  for i = 1, N - 1 do assert.same(logs[0], logs[i], ("node %d's log differs from node 0's"):format(i)) end
  return c:log(0, k)
end

describe("live synod attach", function()
  local c

  setup(function()
    c = live.cluster { n = N, params = PARAMS, tag = "attach", http = live.has_http() }
    c:start()
  end)

  teardown(function() if c then c:down() end end)

  it("runs each chunk inside the node: printed values come back, a failed chunk exits 1 with its error", function()
    local out, err, rc = c:attach(1, 'print(1 + 1, "two", nil)\ndo\n  local t = 0\n  for i = 1, 4 do t = t + i end\n  print(t)\nend\nprint(node:status().id)\n')
    assert.equal(0, rc, err)
    assert.equal("2\ttwo\tnil\n10\n1\n", out)
    assert.equal("", err)

    -- A bare expression shows its value; globals live on between chunks.
    out, err, rc = c:attach(1, 'livespec_x = 41\nlivespec_x + 1\n')
    assert.equal(0, rc, err)
    assert.equal("42\n", out)

    -- A failing chunk: its error on stderr, the later chunks still run, exit 1.
    out, err, rc = c:attach(1, 'error("boom from the spec")\nprint("after")\n')
    assert.equal(1, rc)
    assert.equal("after\n", out)
    assert.truthy(err:find("boom from the spec", 1, true), err)
    out, err, rc = c:attach(1, 'print(1 +)\n')
    assert.equal(1, rc)
    assert.equal("", out)
    assert.is_true(#err > 0)
    -- Input that ends inside an unfinished chunk is an error too.
    out, err, rc = c:attach(1, 'print(1 +\n')
    assert.equal(1, rc)
    assert.is_true(#err > 0)

    -- Structured values through the harness's query.
    local st = c:status(1)
    assert.equal(1, st.id)
    assert.equal(0, st.view)
    assert.equal(N - 1, st.peers_connected)
    assert.is_false(st.byzantine)
  end)

  it("stops a runaway chunk with the instruction budget; the cluster and the node go on", function()
    local before = c:status(0).executed_ops
    -- The runaway runs on node 1's loop while node 2 takes submissions.
    local bg = c:bash_bg(('printf "while true do end\\n" | %s attach %s'):format(live.quote(live.SYNOD),
      live.quote(c:node(1).data)))
    local ops = {}
    for k = 1, 5 do ops[k] = ("put runaway%d v%d"):format(k, k) end
    c:submit(2, ops)
    c:wait("the runaway attach to end", bg.done, 30)
    assert.equal(1, bg.rc(), bg.output())
    assert.truthy(bg.output():find("instruction budget", 1, true), bg.output())
    -- Node 1 answers again and everyone executes the five.
    assert.equal(1, c:status(1).id)
    executed_everywhere(c, before + 5)
    assert.is_true(c:alive(1))
  end)

  it("turns an equivocating primary on: the lied-to backups keep both signed pre-prepares, the view changes, logs agree", function()
    local ring = assert(synod.crypto.load_ring(c.keys .. "/keys.pub"))
    local base = c:status(0).executed_ops
    local st0 = c:status(0)
    assert.equal(0, st0.primary)
    assert.is_false(st0.byzantine)
    local out, err, rc = c:attach(0, 'node:behave(require "behaviors.pbft.equivocate" { peers = { 2, 3 }, leak = true })\n')
    assert.equal(0, rc, err .. out)
    assert.is_true(c:status(0).byzantine)

    local ops = {}
    for k = 1, 20 do ops[k] = ("put e%d x%d"):format(k, k) end
    c:submit(2, ops)
    c:wait("a view change at every node", function()
      for i = 0, N - 1 do
        local st = c:status(i)
        if st.view < 1 then return false, ("node %d in view %d"):format(i, st.view) end
      end
      return true
    end, 30, 0.2)
    executed_everywhere(c, base + 20)

    for _, i in ipairs({ 2, 3 }) do
      local found = 0
      for _, e in ipairs(c:evidence(i)) do
        if e.against == 0 and e.reason == "equivocation" then
          found = found + 1
          assert.is_true(#e.a > 0 and #e.b > 0, "both frames held")
          assert.are_not.equal(e.a, e.b)
          local a, b = assert(synod.wire.decode(e.a)), assert(synod.wire.decode(e.b))
          assert.equal("pre-prepare", a.type)
          assert.equal("pre-prepare", b.type)
          assert.equal(0, a.sender)
          assert.equal(0, b.sender)
          assert.equal(a.view, b.view)
          assert.equal(a.seq, b.seq)
          assert.are_not.equal(a.digest, b.digest)
          -- Both carry node 0's valid signature: proof anyone can check.
          assert.is_true(synod.crypto.verify(e.a, ring))
          assert.is_true(synod.crypto.verify(e.b, ring))
        end
      end
      assert.is_true(found >= 1, ("node %d holds no equivocation evidence against 0"):format(i))
      assert.is_true((c:counters(i).rejected.equivocation or 0) >= 1)
      assert.is_true(c:status(i).evidence >= 1)
    end

    -- Agreement: the same log everywhere, each op executed once.
    local log = same_logs(c, base + 20)
    local seen = {}
    for _, e in ipairs(log) do
      assert.is_nil(seen[e.value], "executed twice: " .. e.value)
      seen[e.value] = true
    end
    for _, op in ipairs(ops) do assert.is_true(seen[op], "not executed: " .. op) end
  end)

  it("#http reports the equivocation in /detections with both signed messages", function()
    for _, i in ipairs({ 2, 3 }) do
      local list = c:json(i, "/detections")
      local found
      for _, d in ipairs(list) do
        if d.byzantine_node == 0 and d.reason == "equivocation" then found = d end
      end
      assert.is_not_nil(found, ("node %d: no equivocation by 0 in /detections"):format(i))
      assert.equal(i, found.detected_by)
      assert.is_not_nil(found.detected_at)
      assert.is_not_nil(found.round)
      assert.equal(2, #found.messages)
      local m1, m2 = found.messages[1], found.messages[2]
      assert.equal("pre-prepare", m1.type)
      assert.equal("pre-prepare", m2.type)
      assert.equal(0, m1.sender)
      assert.equal(0, m2.sender)
      assert.is_true(#m1.signature > 0 and #m2.signature > 0)
      assert.are_not.equal(m1.signature, m2.signature)
      assert.are_not.equal(m1.frame, m2.frame)
    end
  end)

  it("behave(nil) returns node 0 to honest behaviour and the cluster keeps executing", function()
    local base = c:status(0).executed_ops
    local evidence = { [2] = #c:evidence(2), [3] = #c:evidence(3) }
    local out, err, rc = c:attach(0, 'node:behave(nil)\n')
    assert.equal(0, rc, err .. out)
    assert.is_false(c:status(0).byzantine)
    local ops0, ops3 = {}, {}
    for k = 1, 10 do
      ops0[k] = ("put h%d from0"):format(k)
      ops3[k] = ("put g%d from3"):format(k)
    end
    c:submit(0, ops0)
    c:submit(3, ops3)
    executed_everywhere(c, base + 20)
    same_logs(c, base + 20)
    -- Nothing new to accuse node 0 of.
    assert.equal(evidence[2], #c:evidence(2))
    assert.equal(evidence[3], #c:evidence(3))
    for i = 0, N - 1 do assert.equal(0, c:stop(i), "node " .. i .. " exit code after SIGTERM") end
  end)
end)
