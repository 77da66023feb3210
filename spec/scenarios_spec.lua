-- Every shipped scenario runs through `synod run` and ends with a verdict
-- line; a scenario's own checks decide its exit code. Plus a golden trace:
-- a small fixed run whose hash is pinned, so any change of behaviour shows
-- up here (an intended one is a one-line update with its reason in the commit).
local synod = require "synod"

local run = require "support.sh"

describe("scenarios", function()
  for _, name in ipairs({ "tom_basic", "tom_attacks", "tom_partition", "showcase",
                          "pbft_basic", "pbft_view_change", "pbft_checkpoint", "pbft_regressions" }) do
    it(name .. " passes its own checks", function()
      local out, rc = run("./synod run scenarios/" .. name .. ".lua")
      local verdict = out:match("\n(verdict: [^\n]*)\nrc=")
      assert.truthy(verdict, "no verdict line in:\n" .. out)
      assert.truthy(verdict:match("^verdict: ok seed=%d+ trace=%x+$"), verdict)
      assert.equal(0, rc)
    end)
  end

  it("prints the same facts as JSON with --json", function()
    local out, rc = run("./synod run scenarios/tom_partition.lua --seed 3 -- --json")
    assert.equal(0, rc)
    local json = out:match("\njson: ({[^\n]*})\n")
    assert.truthy(json)
    assert.truthy(json:find('"during_partition":0', 1, true))
    assert.truthy(json:find('"ok":true', 1, true))
  end)

  it("replays bit for bit from its seed", function()
    local a = run("./synod run scenarios/tom_partition.lua --seed 5")
    local b = run("./synod run scenarios/tom_partition.lua --seed 5")
    local c = run("./synod run scenarios/tom_partition.lua --seed 6")
    local ha, hb, hc = a:match("trace=(%x+)"), b:match("trace=(%x+)"), c:match("trace=(%x+)")
    assert.equal(ha, hb)
    assert.are_not.equal(ha, hc)
  end)
end)

describe("pbft_sweep", function()
  it("prints one line per seed range and the violation count", function()
    local out, rc = run("./synod run scenarios/pbft_sweep.lua -- --seeds 3 --ops 30")
    assert.equal(0, rc)
    assert.truthy(out:find("3 seeds, 0 violations\n", 1, true), out)
    assert.truthy(out:match("\nverdict: ok seed=1 trace=%x+\n"), out)
  end)

  it("refuses an unknown argument with a clear error", function()
    local out, rc = run("./synod run scenarios/pbft_sweep.lua -- --sedes 3")
    assert.are_not.equal(0, rc)
    assert.truthy(out:find("unknown argument '--sedes'", 1, true), out)
  end)
end)

describe("golden trace", function()
  it("pins the trace hash of a small TOM run", function()
    local sim = synod.sim { seed = 2024, latency = synod.dist.uniform("1ms", "5ms"), loss = 0.05, reorder = true }
    local nodes = sim:cluster { protocol = "tom", n = 3 }
    for i = 1, 20 do sim:at(i * 2000000, function() sim:submit("g" .. i) end) end
    sim:run { timeout = "30s" }
    assert.equal(20, nodes:min_delivered())
    -- Update only for an intended change of behaviour, and say why in the commit.
    assert.equal("f3964712c27c514cd5c154c76b78cb68c880fd27a73abc1dc5cae66c872cc8ba", sim:trace_hash())
  end)
end)
