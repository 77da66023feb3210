-- spec/live/tom_live_spec.lua — TOM (Lamport total-order multicast) as four
-- real processes on loopback: each multicasts 25 words at Poisson intervals
-- (rate 20/s); every node delivers all 100, in the same order, and writes
-- the same delivered.log. SIGTERM stops each cleanly (exit 0).
local live = require "support.live"

local N, WORDS = 4, 25

local function delivered(c, i)
  local rows = {}
  for line in (live.read_file(c:node(i).data .. "/delivered.log") or ""):gmatch("[^\n]+") do
    local seq, origin, ts, word = line:match("^(%d+) (%d+) (%d+) (%S+)$")
    rows[#rows + 1] = { line = line, seq = tonumber(seq), origin = tonumber(origin), ts = tonumber(ts), word = word }
  end
  return rows
end

describe("live TOM", function()
  it("4 nodes deliver the same 100 words in the same order, and exit 0 on SIGTERM", function()
    local c = live.cluster { n = N, protocol = "tom", words = WORDS, rate = 20, tag = "tom" }
    finally(function() c:down() end)
    c:start()
    c:wait(("every node to deliver %d words"):format(N * WORDS), function()
      for i = 0, N - 1 do
        local k = #delivered(c, i)
        if k < N * WORDS then return false, ("node %d delivered %d"):format(i, k) end
      end
      return true
    end, 30)
    for i = 0, N - 1 do assert.equal(0, c:stop(i), "node " .. i .. " exit code after SIGTERM") end

    local logs = {}
    for i = 0, N - 1 do logs[i] = live.read_file(c:node(i).data .. "/delivered.log") end
    for i = 1, N - 1 do assert.equal(logs[0], logs[i], ("delivered.log of node %d differs from node 0's"):format(i)) end

    -- And the one sequence is the whole workload, once each, numbered 1..100.
    local rows, per_origin, seen = delivered(c, 0), {}, {}
    assert.equal(N * WORDS, #rows)
    for k, r in ipairs(rows) do
      assert.is_not_nil(r.seq, "malformed delivered line: " .. r.line)
      assert.equal(k, r.seq)
      assert.is_nil(seen[r.word], "delivered twice: " .. r.word)
      seen[r.word] = true
      -- The workload names each word "<word>#<origin>.<k>".
      local o, n = r.word:match("#(%d+)%.(%d+)$")
      assert.equal(r.origin, tonumber(o), r.line)
      per_origin[r.origin] = (per_origin[r.origin] or 0) + 1
      -- FIFO per origin: the origin's k-th word is its k-th delivered.
      assert.equal(per_origin[r.origin], tonumber(n), r.line)
    end
    for i = 0, N - 1 do assert.equal(WORDS, per_origin[i], "words delivered from node " .. i) end
  end)
end)
