-- The script sandbox: allow-listed globals, text-only loading, seeded
-- randomness, and the instruction budget that stops a runaway hook.
local synod = require "synod"

local function run(src)
  local fn, err = synod.sandbox.load(src, "=spec")
  assert(fn, err)
  return fn()
end

describe("the sandbox", function()
  it("has no io, os, debug, package, dofile, loadfile or string.dump", function()
    for _, name in ipairs({ "io", "os", "debug", "package", "dofile", "loadfile", "collectgarbage" }) do
      assert.is_nil(run("return " .. name), name .. " is reachable")
    end
    assert.is_nil(run("return string.dump"))
  end)

  it("keeps the safe parts of the language", function()
    assert.equal(6, run("return #table.concat({ 'a', 'b' }) + select('#', 1, 2) + math.floor(2.5)"))
    assert.equal("synod", run("return require('synod') == synod and 'synod'"))
  end)

  it("refuses bytecode", function()
    local ok, err = pcall(run, "return load('\\27Lua', 'x', 'b')")
    assert.is_false(ok)
    assert.truthy(err:find("binary chunks are not allowed", 1, true))
    assert.is_nil(synod.sandbox.load("\27LuaT\0", "=bin"))
  end)

  it("loads behaviours from scripts/ by name only", function()
    assert.equal("function", run("return type(require 'behaviors.drop')"))
    local ok, err = pcall(run, "return require '../etc/passwd'")
    assert.is_false(ok)
    assert.truthy(err:find("module names use dots", 1, true))
    ok, err = pcall(run, "return require 'no.such.module'")
    assert.is_false(ok)
    assert.truthy(err:find("module 'no.such.module' not found", 1, true))
  end)

  it("draws math.random from the current simulation's seeded PRNG", function()
    local function draws(seed)
      return run(("local s = synod.sim { seed = %d }; s:cluster { protocol = 'tom', n = 2 }\n" ..
                  "return { math.random(1000), math.random(1000), math.random(1000) }"):format(seed))
    end
    assert.same(draws(5), draws(5))
    assert.are_not.same(draws(5), draws(6))
    local ok, err = pcall(run, "math.randomseed(1)")
    assert.is_false(ok)
    assert.truthy(err:find("seed the simulation instead", 1, true))
  end)
end)

describe("the instruction budget", function()
  local level
  setup(function() level = synod.log_level("off") end)      -- the planted errors are expected
  teardown(function() synod.log_level(level) end)

  it("stops a runaway hook with an error that names it, and counts it", function()
    local sim = synod.sim { seed = 1, crypto = "none", hook_budget = 10000 }
    local nodes = sim:cluster { protocol = "tom", n = 3 }
    nodes[1]:behave { on_send = function() while true do end end }
    sim:submit("x", 0)
    sim:run { timeout = "1s" }
    local c = nodes[1]:counters()
    assert.is_true(c.hook_errors > 0)
    -- the message went out unchanged: the others still delivered it
    sim:run { timeout = "5s", stop = function() return nodes[2]:delivered() >= 1 end }
    assert.equal(1, nodes[2]:delivered())
  end)

  it("reports a hook's Lua error without unwinding the simulator", function()
    local sim = synod.sim { seed = 1, crypto = "none" }
    local nodes = sim:cluster { protocol = "tom", n = 3 }
    nodes[2]:behave { on_receive = function() error("hook bug") end }
    sim:submit("x", 0)
    assert.has_no.errors(function() sim:run { timeout = "1s" } end)
    assert.is_true(nodes[2]:counters().hook_errors > 0)
  end)
end)

describe("synod run", function()
  local function sh(cmd)
    local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
    local out = p:read("a")
    p:close()
    return out, tonumber(out:match("rc=(%d+)%s*$"))
  end

  it("exits 2 with a clear error for a broken script", function()
    local path = os.tmpname()
    local f = io.open(path, "w"); f:write("x = = 1\n"); f:close()
    local out, rc = sh("./synod run " .. path)
    os.remove(path)
    assert.equal(2, rc)
    assert.truthy(out:find("unexpected symbol", 1, true))
  end)

  it("exits 1 when the script's verdict is not ok, 0 when it is", function()
    local path = os.tmpname()
    local f = io.open(path, "w"); f:write("return { ok = synod.args.seed == 3 }\n"); f:close()
    local _, bad = sh("./synod run " .. path .. " --seed 4")
    local _, good = sh("./synod run " .. path .. " --seed 3")
    os.remove(path)
    assert.equal(1, bad)
    assert.equal(0, good)
  end)

  it("rejects bad flags with usage help", function()
    local out, rc = sh("./synod run --seed banana x.lua")
    assert.equal(2, rc)
    assert.truthy(out:find("--seed needs a non-negative integer", 1, true))
    out, rc = sh("./synod --log-level loud version")
    assert.equal(2, rc)
    assert.truthy(out:find("--log-level must be", 1, true))
  end)
end)
