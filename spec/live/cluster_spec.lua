-- spec/live/cluster_spec.lua — `synod cluster` end to end: up writes keys
-- and starts 4 PBFT node processes, status reads them over HTTP, submit
-- goes through a running node, kill takes one down with SIGKILL, restart
-- brings it back from its data directory, down stops every process.
-- The base port is drawn at random (printed) from a range the other live
-- specs do not use; every process is stopped in a finally.
local json = require "dkjson"
local live = require "support.live"

local function synod(args)
  local out, rc = live.sh("timeout 60 " .. live.SYNOD .. " " .. args .. " 2>&1")
  return out, rc
end

describe("#http synod cluster", function()
  it("up, status, submit, kill, restart and down work on one directory", function()
    local dir = live.tmpdir("cluster")
    math.randomseed(os.time())
    local base = 21000 + 10 * math.random(0, 800)
    print(("cluster_spec: base port %d, dir %s"):format(base, dir))
    local cdir = dir .. "/c"
    finally(function()
      synod("cluster down --dir " .. live.quote(cdir))
      live.sh("rm -rf " .. live.quote(dir))
    end)
    local out, rc = synod(("cluster up -n 4 --dir %s --base-port %d"):format(live.quote(cdir), base))
    assert.equal(0, rc, out)
    assert.truthy(out:find("4 of 4 nodes running", 1, true), out)

    local function status()
      local s, src = synod("cluster status --json --dir " .. live.quote(cdir))
      return assert(json.decode(s), s), src
    end
    local s, src = status()
    assert.equal(0, src)
    assert.equal(4, s.running)
    for _, n in ipairs(s.nodes) do assert.equal("running", n.state); assert.equal(3, n.peers_connected) end

    out, rc = synod("cluster submit 'put colour blue' --dir " .. live.quote(cdir))
    assert.equal(0, rc, out)
    assert.equal("OK", json.decode(out).result)

    out, rc = synod("cluster kill 2 --dir " .. live.quote(cdir))
    assert.equal(0, rc, out)
    s, src = status()
    assert.equal(1, src)                      -- not every node runs
    assert.equal(3, s.running)
    assert.equal("down", s.nodes[3].state)
    out, rc = synod("cluster kill 2 --dir " .. live.quote(cdir))
    assert.equal(1, rc, out)                  -- not running: an error, not a crash

    out, rc = synod("cluster submit 'put colour green' --dir " .. live.quote(cdir))
    assert.equal(0, rc, out)
    out, rc = synod("cluster restart 2 --dir " .. live.quote(cdir))
    assert.equal(0, rc, out)
    -- The restarted node catches up: its own HTTP answers the latest value.
    live.wait("node 2 to answer get colour with green", function()
      local st, body = live.http(base + 102, "POST", "/submit", { body = "get colour" })
      local r = st == 200 and json.decode(body)
      return r and r.result == "VALUE green"
    end, 30)
    s = status()
    assert.equal(4, s.running)

    out, rc = synod("cluster down --dir " .. live.quote(cdir))
    assert.equal(0, rc, out)
    assert.truthy(out:find("stopped 4 nodes", 1, true), out)
    s, src = status()
    assert.equal(0, s.running)
    assert.equal(1, src)
  end)

  it("refuses what it cannot do with a sentence", function()
    local dir = live.tmpdir("cluster-bad")
    finally(function() live.sh("rm -rf " .. live.quote(dir)) end)
    local out, rc = synod("cluster status --dir " .. live.quote(dir .. "/none"))
    assert.equal(2, rc)
    assert.truthy(out:find("no cluster in", 1, true), out)
    out, rc = synod("cluster up --dir " .. live.quote(dir))
    assert.equal(2, rc)
    assert.truthy(out:find("up needs -n N", 1, true), out)
    out, rc = synod("cluster frobnicate")
    assert.equal(2, rc)
    assert.truthy(out:find("unknown cluster command", 1, true), out)
  end)
end)
