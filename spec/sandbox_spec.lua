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

  it("draws math.random from the running simulation's seeded PRNG, and only there", function()
    local function draws(seed)
      return run(([[
        local s = synod.sim { seed = %d }
        s:cluster { protocol = 'tom', n = 2 }
        local got = {}
        s:after(1, function() for i = 1, 3 do got[i] = math.random(1000) end end)
        local other = synod.sim { seed = 999 }      -- a second sim must not change the draws
        other:cluster { protocol = 'tom', n = 2 }
        s:run()
        return got]]):format(seed))
    end
    assert.same(draws(5), draws(5))
    assert.are_not.same(draws(5), draws(6))
    local ok, err = pcall(run, "return math.random(10)")
    assert.is_false(ok)
    assert.truthy(err:find("elsewhere use sim:random()", 1, true))
    ok, err = pcall(run, "math.randomseed(1)")
    assert.is_false(ok)
    assert.truthy(err:find("seed the simulation instead", 1, true))
  end)

  it("offers no way out through the synod module", function()
    assert.is_nil(run("return synod.crypto.keygen"))
    assert.is_nil(run("return synod.crypto.keypair"))
    assert.is_nil(run("return synod.bench_wire"))
    assert.is_nil(run("return synod.sandbox"))
    assert.equal("function", run("return type(synod.crypto.digest)"))
    for _, path in ipairs({ "/tmp/synod-escape.jsonl", "../escape.jsonl" }) do
      local ok, err = pcall(run, ("synod.sim { trace = %q }"):format(path))
      assert.is_false(ok)
      assert.truthy(err:find("bad field 'trace' to 'sim'", 1, true))
    end
  end)

  it("hides the host's string metatable", function()
    assert.is_nil(run("return getmetatable('')"))
    local before = string.upper
    pcall(run, "getmetatable('').__index.upper = function() return 'pwned' end")
    assert.equal(before, string.upper)
    assert.equal("ABC", ("abc"):upper())
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

  it("cannot be caught and ignored with pcall", function()
    local sim = synod.sim { seed = 1, crypto = "none", hook_budget = 10000 }
    local nodes = sim:cluster { protocol = "tom", n = 3 }
    local spins = 0
    nodes[1]:behave { on_send = function(_, msg)
      pcall(function() while true do spins = spins + 1 end end)
      for _ = 1, 1e7 do spins = spins + 1 end      -- would run on if the budget were spent
      return msg
    end }
    sim:submit("x", 0)
    sim:run { timeout = "1s" }
    assert.is_true(nodes[1]:counters().hook_errors > 0)
    assert.is_true(spins < 100000, "ran " .. spins .. " iterations past the budget")
  end)

  it("applies inside coroutines a sandboxed hook creates", function()
    local fn = synod.sandbox.load([[
      local sim = synod.sim { seed = 1, crypto = "none", hook_budget = 10000 }
      local nodes = sim:cluster { protocol = "tom", n = 3 }
      nodes[1]:behave { on_send = function(_, msg)
        coroutine.wrap(function() while true do end end)()
        return msg
      end }
      sim:submit("x", 0)
      sim:run { timeout = "1s" }
      return nodes[1]:counters().hook_errors
    ]], "=coroutine")
    assert.is_true(fn() > 0)
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

describe("hooks cannot corrupt the simulator", function()
  local level
  setup(function() level = synod.log_level("off") end)
  teardown(function() synod.log_level(level) end)

  it("a behaviour table whose __index raises is a counted hook error", function()
    local sim = synod.sim { seed = 1, crypto = "none" }
    local nodes = sim:cluster { protocol = "tom", n = 3 }
    nodes[1]:behave(setmetatable({ on_timer = function() end }, { __index = function() error("trap") end }))
    sim:submit("x", 0)
    assert.has_no.errors(function() sim:run { timeout = "1s" } end)
    assert.equal("idle", (sim:run { timeout = "1s" }))            -- and the sim still runs
  end)

  it("refuses to close, restart or start another cluster from inside a hook or callback", function()
    local sim = synod.sim { seed = 1, crypto = "none" }
    local nodes = sim:cluster { protocol = "tom", n = 3 }
    local errors = {}
    nodes[1]:behave { on_send = function(node, msg)
      for _, f in ipairs({ function() sim:close() end, function() nodes[2]:restart() end,
                           function() synod.sim { seed = 2 }:cluster { protocol = "tom", n = 2 } end }) do
        local ok, err = pcall(f)
        errors[#errors + 1] = not ok and err or "no error"
      end
      return msg
    end }
    sim:after(0, function()
      local ok, err = pcall(sim.close, sim)
      errors[#errors + 1] = not ok and err or "no error"
    end)
    sim:submit("x", 0)
    sim:run { timeout = "1s" }
    nodes[1]:behave(nil)
    assert.truthy(errors[1]:find("cannot close a running simulation", 1, true))
    assert.truthy(#errors >= 4)
    for _, e in ipairs(errors) do assert.are_not.equal("no error", e) end
  end)

  it("rejects a node of another simulation", function()
    local a = synod.sim { seed = 1 }; local an = a:cluster { protocol = "tom", n = 2 }
    local b = synod.sim { seed = 1 }; local bn = b:cluster { protocol = "tom", n = 8 }
    assert.has_error(function() a:partition({ bn[8] }, { an[1] }) end)
    assert.has_error(function() a:link(bn[5], an[1], { loss = 0.1 }) end)
    assert.has_error(function() a:block(bn[1], an[2]) end)
  end)

  it("draws from the whole integer range without overflow", function()
    local sim = synod.sim { seed = 1 }; sim:cluster { protocol = "tom", n = 1 }
    assert.equal("number", type(sim:random(math.mininteger, math.maxinteger)))
    assert.has_error(function() sim:random(5, 1) end)
  end)
end)

describe("synod run", function()
  local sh = require "support.sh"

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

  it("writes key files with synod keygen, deterministic with --seed, never overwriting others", function()
    local dir = os.tmpname(); os.remove(dir)
    local out, rc = sh(("./synod keygen --out %s -n 3 --seed 1"):format(dir))
    assert.equal(0, rc, out)
    local f = io.open(dir .. "/keys.pub"); local pub = f:read("a"); f:close()
    assert.equal(3, select(2, pub:gsub("\n", "")))
    assert.equal(synod.crypto.keypair(2, 1):public_key(), pub:match("\n2 (%x+)"))
    local mode = sh("stat -c %a " .. dir .. "/node-0.key")
    assert.truthy(mode:match("^600"))
    _, rc = sh(("./synod keygen --out %s -n 3 --seed 1"):format(dir))    -- same keys: fine
    assert.equal(0, rc)
    out, rc = sh(("./synod keygen --out %s -n 3 --seed 2"):format(dir))  -- other keys: refused
    assert.equal(1, rc)
    assert.truthy(out:find("keygen into", 1, true))
    assert.is_nil(out:find("i/o error$"))
    os.execute("rm -rf " .. dir)
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
