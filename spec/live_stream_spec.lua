-- The live runtime's byte stream (engine/live/stream.c): length-prefixed
-- frames reassembled from any chunking, oversized and empty lengths refused
-- before a buffer is sized for them, and the authenticated handshake that
-- opens a connection (wrong cluster, unknown id, replayed hello, forged or
-- replayed auth all refused).
local synod = require "synod"
local seeds = require "support.seeds"
local rng = require "support.rng"

local live = synod.live

describe("live frame stream", function()
  it("reassembles frames from any chunking", function()
    seeds.each({ 1, 2, 3 }, function(seed)
      local rnd = rng(seed)
      local frames, wire = {}, {}
      for i = 1, 60 do
        local len = rnd(1, i % 10 == 0 and 70000 or 300)
        local t = {}
        for j = 1, len do t[j] = string.char(rnd(0, 255)) end
        frames[i] = table.concat(t)
        wire[i] = live.prefix(frames[i])
      end
      local bytes = table.concat(wire)
      local s, got, pos = live.stream(), {}, 1
      while pos <= #bytes do
        local n = rnd(1, 5000)
        for _, f in ipairs(s:feed(bytes:sub(pos, pos + n - 1))) do got[#got + 1] = f end
        pos = pos + n
      end
      assert.equal(#frames, #got)
      for i = 1, #frames do assert.equal(frames[i], got[i], ("frame %d differs"):format(i)) end
      assert.equal(60, s.frames)
    end)
  end)

  it("delivers a frame split byte by byte, and several in one chunk", function()
    local s = live.stream()
    local w = live.prefix("hello") .. live.prefix("world")
    local got = {}
    for i = 1, #w do for _, f in ipairs(s:feed(w:sub(i, i))) do got[#got + 1] = f end end
    assert.same({ "hello", "world" }, got)
    assert.same({ "a", "bc" }, live.stream():feed(live.prefix("a") .. live.prefix("bc")))
  end)

  it("refuses a length over SYN_STREAM_MAX_BYTES (a frame and its destination) from its 4-byte prefix alone, and stays dead", function()
    local max = synod.wire.limits.max_frame_bytes + 4
    local s = live.stream()
    assert.has_error(function() s:feed(string.pack(">I4", max + 1)) end,
      ("stream: a frame announced a length of 0 or over SYN_STREAM_MAX_BYTES (%d): the connection must be closed"):format(max))
    assert.is_true(s.dead)
    assert.has_error(function() s:feed(live.prefix("ok")) end, "stream: dead after an oversized frame; close the connection")
    local z = live.stream()
    assert.has_error(function() z:feed(string.pack(">I4", 0)) end)
    -- The largest frame is still taken.
    local big = ("x"):rep(max)
    assert.equal(max, #live.stream():feed(live.prefix(big))[1])
  end)

  it("refuses to prefix an empty or oversized frame", function()
    assert.has_error(function() live.prefix("") end)
    assert.has_error(function() live.prefix(("x"):rep(synod.wire.limits.max_frame_bytes + 5)) end)
  end)
end)

describe("live handshake", function()
  local function nonce(c) return (c):rep(32) end

  it("authenticates both sides of a connection", function()
    local c = live.cluster { n = 4, seed = 7 }
    local h0, h2 = c:hello(0, nonce("a")), c:hello(2, nonce("b"))
    assert.equal(live.hello_bytes, #h0)
    assert.is_true(c:check(h0, h2))
    assert.is_true(c:verify(h0, h2, c:auth(2, h2, h0)))   -- 0 checks 2's proof
    assert.is_true(c:verify(h2, h0, c:auth(0, h0, h2)))   -- and 2 checks 0's
  end)

  it("refuses another cluster, an unknown id, itself and a replayed hello", function()
    local c, other = live.cluster { n = 4, seed = 7 }, live.cluster { n = 4, seed = 8 }
    local mine = c:hello(0, nonce("m"))
    assert.same({ false, "another cluster" }, { c:check(mine, other:hello(1, nonce("o"))) })
    local stranger = c:hello(3, nonce("s")):gsub("^(.....)....", "%1" .. string.pack(">I4", 9))
    assert.same({ false, "unknown node id" }, { c:check(mine, stranger) })
    assert.same({ false, "unknown node id" }, { c:check(mine, c:hello(0, nonce("x"))) })
    local h1 = c:hello(1, nonce("r"))
    assert.is_true(c:check(mine, h1))
    assert.same({ false, "replayed hello" }, { c:check(mine, h1) })
  end)

  it("refuses an auth signed with another node's key or made for another connection", function()
    local c = live.cluster { n = 4, seed = 7 }
    local h0, h1 = c:hello(0, nonce("a")), c:hello(1, nonce("b"))
    assert.same({ false, "bad signature" }, { c:verify(h0, h1, c:auth(3, h1, h0)) })   -- 3 pretends to be 1
    local old = c:auth(1, h1, c:hello(0, nonce("z")))                                  -- 1's auth on an earlier connection
    assert.same({ false, "bad signature" }, { c:verify(h0, h1, old) })
    assert.same({ false, "bad signature" }, { c:verify(h0, h1, "short") })
  end)

  it("refuses a malformed hello with a clear error", function()
    local c = live.cluster { n = 4, seed = 7 }
    local h = c:hello(0, nonce("a"))
    assert.has_error(function() c:check(h, h:sub(1, 20)) end, "bad argument #2 to 'check' (not a hello: truncated input)")
    assert.has_error(function() c:check(h, "XXXX" .. h:sub(5)) end)
    assert.has_error(function() c:hello(4, nonce("a")) end, "bad argument #1 to 'hello' (node id 4 out of range 0..3)")
  end)
end)
