-- wire_spec.lua — the canonical codec and frame format (engine/wire/),
-- through synod.wire. Uses the test-only message types that lua_wire.c
-- registers: test.ping {n u64, note bytes<=64}, test.blob {a u64,
-- b bytes<=60000, c u64}, test.empty {}, test.wide (8 fields), test.pong
-- (ping's layout).
--
-- Randomised: seeds from a fixed list plus SYNOD_SEEDS (comma-separated);
-- SYNOD_FUZZ_FRAMES sets how many frames the fuzz test decodes (default
-- 100000). A failure prints the seed and the command that replays it.

local synod = require "synod"
local wire = synod.wire
local limits = wire.limits

local HEADER, SIG = limits.header_bytes, limits.sig_bytes
local MAGIC = 0x53594e44
local TYPE = { ping = 0xF000, blob = 0xF001, empty = 0xF002, wide = 0xF003, pong = 0xF004 }
local ZERO_SIG = string.rep("\0", SIG)

local function seeds()
  local list = { 1, 2, 3, 42, 20240601 }
  for s in (os.getenv("SYNOD_SEEDS") or ""):gmatch("[^,%s]+") do
    list[#list + 1] = assert(math.tointeger(tonumber(s)), "SYNOD_SEEDS: not an integer: " .. s)
  end
  return list
end

-- A frame built by hand: header fields, payload and signature bytes.
local function frame(type_id, sender, payload, sig, opts)
  opts = opts or {}
  return string.pack(">I4 B I2 I4 I4", opts.magic or MAGIC, opts.version or 1, type_id, sender,
                     opts.len or #payload) .. payload .. (sig or ZERO_SIG)
end

local function ping_payload(n, note) return string.pack(">I8 s4", n, note) end

-- Calls f and returns its error message (or fails when f does not raise).
local function raises(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(err)
end

local function rejects(s, reason)
  local t, why, msg = wire.decode(s)
  assert.is_nil(t)
  assert.are.equal(reason, why)
  assert.are.equal("string", type(msg))
  assert.is_true(#msg > 0)
end

describe("synod.wire", function()
  describe("limits", function()
    it("exposes the SYN_MAX_* limits", function()
      assert.are.equal(1048576, limits.max_frame_bytes)
      assert.are.equal(1048576 - 15 - 64, limits.max_payload_bytes)
      assert.are.equal(15, limits.header_bytes)
      assert.are.equal(64, limits.sig_bytes)
      assert.are.equal(8, limits.max_fields)
      assert.are.equal(64, limits.max_msg_types)
      assert.are.equal(32, limits.max_name_bytes)
      assert.are.equal(256, limits.max_nodes)
      assert.are.equal(1, limits.version)
    end)
  end)

  describe("round trips", function()
    it("lays a frame out canonically: big-endian header, u64 as 8 bytes, bytes as u32 length + data", function()
      local f = wire.encode("test", "ping", { n = 0x0102030405060708, note = "hi" }, 7)
      local want = "SYND\1\240\0\0\0\0\7\0\0\0\14" .. "\1\2\3\4\5\6\7\8" .. "\0\0\0\2hi" .. ZERO_SIG
      assert.are.equal(want, f)
      assert.are.equal(HEADER + 14 + SIG, #f)
    end)

    it("round-trips u64 values across the whole range", function()
      local values = { 0, 1, 255, 256, 0xFFFFFFFF, 0x100000000, math.maxinteger,
                       math.mininteger, -1, 0x7FFFFFFFFFFFFFFE }
      for _, n in ipairs(values) do
        local t = assert(wire.decode(wire.encode("test", "ping", { n = n, note = "" })))
        assert.are.equal(n, t.n)
        assert.is_true(math.type(t.n) == "integer")
      end
    end)

    it("accepts non-negative integer-valued floats for u64 fields", function()
      assert.are.equal(3, wire.decode(wire.encode("test", "ping", { n = 3.0, note = "" })).n)
      -- 2^63 as a float is the u64 whose bits read as math.mininteger
      assert.are.equal(math.mininteger, wire.decode(wire.encode("test", "ping", { n = 2.0 ^ 63, note = "" })).n)
      for _, bad in ipairs({ 1.5, -1.0, 2.0 ^ 64, 0 / 0, math.huge }) do
        local err = raises(wire.encode, "test", "ping", { n = bad, note = "" })
        assert.matches("field 'n'", err, 1, true)
      end
    end)

    it("round-trips bytes fields: empty, binary, and exactly the maximum length", function()
      local all = {}
      for i = 0, 63 do all[#all + 1] = string.char((i * 37) % 256) end
      for _, note in ipairs({ "", "x", "\0\0\0", "a\0b\255", table.concat(all), string.rep("z", 64) }) do
        local t = assert(wire.decode(wire.encode("test", "ping", { n = 1, note = note })))
        assert.are.equal(note, t.note)
      end
      local big = string.rep("\171", 60000)
      local t = assert(wire.decode(wire.encode("test", "blob", { a = 1, b = big, c = 2 })))
      assert.are.equal(big, t.b)
      assert.are.equal(1, t.a)
      assert.are.equal(2, t.c)
    end)

    it("round-trips a type with no fields and a type with the maximum number of fields", function()
      local f = wire.encode("test", "empty", {}, 5)
      assert.are.equal(HEADER + SIG, #f)
      local t = assert(wire.decode(f))
      assert.are.same({ proto = "test", type = "empty", sender = 5 }, t)

      local fields = { w0 = 0, w1 = "12345678", w2 = -1, w3 = "", w4 = 4, w5 = string.rep("5", 255), w6 = 6, w7 = "7" }
      local w = assert(wire.decode(wire.encode("test", "wide", fields, 1)))
      for k, v in pairs(fields) do assert.are.equal(v, w[k]) end
    end)

    it("carries the sender over its whole u32 range", function()
      for _, s in ipairs({ 0, 1, 255, 0xFFFFFFFF }) do
        assert.are.equal(s, wire.decode(wire.encode("test", "empty", {}, s)).sender)
      end
      assert.are.equal(0, wire.decode(wire.encode("test", "empty", {})).sender)
    end)

    it("re-encodes a decoded message to the same bytes", function()
      local f = wire.encode("test", "blob", { a = 9, b = "payload", c = -7 }, 3)
      local t = assert(wire.decode(f))
      assert.are.same({ proto = "test", type = "blob", sender = 3, a = 9, b = "payload", c = -7 }, t)
      assert.are.equal(f, wire.encode(t.proto, t.type, t))
    end)

    it("returns copies: changing a decoded table does not change the frame", function()
      local f = wire.encode("test", "ping", { n = 1, note = "abc" })
      local t = wire.decode(f)
      t.note = "zzz"
      assert.are.equal("abc", wire.decode(f).note)
    end)
  end)

  describe("encode argument errors", function()
    local function enc(...) return wire.encode(...) end

    it("names a missing field", function()
      assert.matches("bad argument #3 to 'encode' (field 'note': missing)",
                     raises(function() return wire.encode("test", "ping", { n = 1 }) end), 1, true)
    end)

    it("names an extra field", function()
      assert.matches("unknown field 'bogus' for test.ping",
                     raises(function() return wire.encode("test", "ping", { n = 1, note = "", bogus = 2 }) end), 1, true)
    end)

    it("names a wrongly typed field", function()
      assert.matches("bad argument #3 to 'encode' (field 'n': integer expected, got string)",
                     raises(function() return wire.encode("test", "ping", { n = "5", note = "" }) end), 1, true)
      assert.matches("bad argument #3 to 'encode' (field 'note': string expected, got number)",
                     raises(function() return wire.encode("test", "ping", { n = 5, note = 5 }) end), 1, true)
      assert.matches("field names must be strings",
                     raises(function() return wire.encode("test", "ping", { n = 5, note = "", [1] = true }) end), 1, true)
    end)

    it("names a bytes field over its limit", function()
      assert.matches("field 'note': 65 bytes, over its limit of 64",
                     raises(function() return wire.encode("test", "ping", { n = 1, note = string.rep("x", 65) }) end), 1, true)
      assert.matches("field 'b': 60001 bytes, over its limit of 60000",
                     raises(function() return wire.encode("test", "blob", { a = 1, b = string.rep("x", 60001), c = 1 }) end), 1, true)
      assert.matches("field 'w3': 1 bytes, over its limit of 0",
                     raises(function()
                       return wire.encode("test", "wide", { w0 = 0, w1 = "", w2 = 0, w3 = "x", w4 = 0, w5 = "", w6 = 0, w7 = "" })
                     end), 1, true)
    end)

    it("rejects an unknown type, a missing table, a bad sender and conflicting header keys", function()
      assert.matches("bad argument #2 to 'encode' (unknown message type 'nope' in protocol 'test')",
                     raises(function() return wire.encode("test", "nope", {}) end), 1, true)
      assert.matches("bad argument #3 to 'encode' (table expected, got no value)",
                     raises(function() return wire.encode("test", "ping") end), 1, true)
      assert.matches("bad argument #1 to 'encode' (string expected, got nil)",
                     raises(function() return wire.encode(nil, "ping", {}) end), 1, true)
      assert.matches("bad argument #4 to 'encode' (sender must be in 0..4294967295, got -1)",
                     raises(function() return wire.encode("test", "empty", {}, -1) end), 1, true)
      assert.matches("field 'type': must be 'ping' when given",
                     raises(function() return wire.encode("test", "ping", { type = "pong", n = 1, note = "" }) end), 1, true)
      assert.matches("differs from fields.sender",
                     raises(function() return wire.encode("test", "empty", { sender = 1 }, 2) end), 1, true)
      assert.is_string(enc("test", "empty", { sender = 2 }, 2))
    end)

    it("raises on a non-string frame but never on a bad frame", function()
      assert.matches("bad argument #1 to 'decode' (string expected, got nil)",
                     raises(function() return wire.decode(nil) end), 1, true)
      assert.matches("bad argument #1 to 'decode' (string expected, got table)",
                     raises(function() return wire.decode({}) end), 1, true)
    end)
  end)

  describe("decode errors", function()
    local valid = {
      wire.encode("test", "ping", { n = 77, note = "hello" }, 2),
      wire.encode("test", "empty", {}, 0),
      wire.encode("test", "wide", { w0 = 1, w1 = "ab", w2 = 2, w3 = "", w4 = 4, w5 = "five", w6 = 6, w7 = "7" }, 9),
    }

    it("reports every strict prefix of a valid frame as truncated", function()
      for _, f in ipairs(valid) do
        assert.is_table(wire.decode(f))
        for cut = 0, #f - 1 do rejects(f:sub(1, cut), "truncated") end
      end
      -- a large frame, at the boundaries and a spread of cut points
      local big = wire.encode("test", "blob", { a = 1, b = string.rep("b", 60000), c = 2 })
      for _, cut in ipairs({ 0, 1, 14, 15, 16, 22, 23, 27, 100, 30000, 60026, 60027, 60034, #big - 64, #big - 1 }) do
        rejects(big:sub(1, cut), "truncated")
      end
    end)

    it("reports a payload shorter than its fields as truncated", function()
      -- declared and actual lengths agree, but the note's length prefix runs past the payload
      rejects(frame(TYPE.ping, 0, string.pack(">I8 I4", 1, 10) .. "abc"), "truncated")
      rejects(frame(TYPE.ping, 0, string.pack(">I8", 1) .. "\0\0"), "truncated")
      rejects(frame(TYPE.ping, 0, "\0\0\0"), "truncated")
    end)

    it("reports oversize frames, declared lengths and fields as too_big", function()
      rejects(string.rep("\0", limits.max_frame_bytes + 1), "too_big")
      local payload = ping_payload(1, "x")
      rejects(frame(TYPE.ping, 0, payload, nil, { len = limits.max_payload_bytes + 1 }), "too_big")
      rejects(frame(TYPE.ping, 0, payload, nil, { len = 0xFFFFFFFF }), "too_big")
      -- under the frame limit but over the largest payload test.ping can have (8 + 4 + 64)
      rejects(frame(TYPE.ping, 0, payload, nil, { len = 77 }), "too_big")
      -- a bytes field whose length prefix exceeds its max_bytes, even with the bytes present
      rejects(frame(TYPE.ping, 0, string.pack(">I8 s4", 1, string.rep("x", 65)):sub(1, 76)), "too_big")
      rejects(frame(TYPE.ping, 0, string.pack(">I8 I4", 1, 0xFFFFFFFF)), "too_big")
      rejects(frame(TYPE.blob, 0, string.pack(">I8 s4 I8", 1, string.rep("x", 60001), 2)), "too_big")
      rejects(frame(TYPE.wide, 0, string.pack(">I8 s4 I8 s4", 0, "", 0, "x")), "too_big")
    end)

    it("reports a wrong magic", function()
      local f = valid[1]
      for i = 1, 4 do rejects(f:sub(1, i - 1) .. string.char((f:byte(i) + 1) % 256) .. f:sub(i + 1), "bad_magic") end
      rejects(frame(TYPE.ping, 0, ping_payload(1, ""), nil, { magic = 0 }), "bad_magic")
    end)

    it("reports an unsupported version", function()
      for _, v in ipairs({ 0, 2, 255 }) do rejects(frame(TYPE.ping, 0, ping_payload(1, ""), nil, { version = v }), "bad_version") end
    end)

    it("reports an unknown type", function()
      for _, t in ipairs({ 0, 0xF0FF, 0xFFFF, 0xF005 }) do rejects(frame(t, 0, ""), "unknown_type") end
    end)

    it("reports trailing bytes after the frame and inside the payload", function()
      rejects(valid[1] .. "\0", "trailing")
      rejects(valid[2] .. string.rep("x", 100), "trailing")
      rejects(frame(TYPE.ping, 0, ping_payload(1, "ab") .. "\0"), "trailing")
      rejects(frame(TYPE.wide, 0, string.pack(">I8 s4 I8 s4 I8 s4 I8 s4", 0, "", 0, "", 0, "", 0, "") .. "\0"), "trailing")
      -- past the largest payload the type can have, the declared length itself is too big
      rejects(frame(TYPE.empty, 0, "\0"), "too_big")
    end)

    it("ignores the signature bytes (verification is crypto's job)", function()
      local f = valid[1]
      local t = assert(wire.decode(f:sub(1, -65) .. string.rep("\255", 64)))
      assert.are.equal("hello", t.note)
    end)
  end)

  describe("fuzz", function()
    local N = math.tointeger(tonumber(os.getenv("SYNOD_FUZZ_FRAMES") or "100000")) or 100000
    local reasons = { truncated = true, too_big = true, bad_magic = true, bad_version = true,
                      unknown_type = true, trailing = true }

    local function rbytes(n)
      local t = {}
      for i = 1, n do t[i] = math.random(0, 255) end
      return string.char(table.unpack(t))
    end

    local gens = {
      function() return wire.encode("test", "ping", { n = math.random(0), note = rbytes(math.random(0, 64)) }, math.random(0, 7)) end,
      function() return wire.encode("test", "blob", { a = math.random(0), b = rbytes(math.random(0, 80)), c = math.random(0) }, math.random(0, 7)) end,
      function() return wire.encode("test", "empty", {}, math.random(0, 7)) end,
      function()
        return wire.encode("test", "wide", { w0 = math.random(0), w1 = rbytes(math.random(0, 8)), w2 = 1, w3 = "",
                                             w4 = math.random(0), w5 = rbytes(math.random(0, 20)), w6 = 0, w7 = rbytes(math.random(0, 1)) })
      end,
      function() return wire.encode("test", "pong", { n = math.random(0), note = rbytes(math.random(0, 4)) }) end,
    }
    local edges = { 0, 1, 2, 3, 4, 7, 8, 64, 65, 60000, 60001, 0x7FFFFFFF, 0xFFFFFFFF }

    local function put_u32(s, at, v) return s:sub(1, at - 1) .. string.pack(">I4", v) .. s:sub(at + 4) end

    local function mutate(f)
      local how = math.random(1, 10)
      if how == 1 then   -- random bit flips
        for _ = 1, math.random(1, 3) do
          local i = math.random(1, #f)
          f = f:sub(1, i - 1) .. string.char(f:byte(i) ~ (1 << math.random(0, 7))) .. f:sub(i + 1)
        end
      elseif how == 2 then   -- a random byte
        local i = math.random(1, #f)
        f = f:sub(1, i - 1) .. string.char(math.random(0, 255)) .. f:sub(i + 1)
      elseif how == 3 then   -- truncate
        f = f:sub(1, math.random(0, #f))
      elseif how == 4 then   -- extend
        f = f .. rbytes(math.random(1, 16))
      elseif how == 5 then   -- the header's length field
        local v = math.random(1, 2) == 1 and edges[math.random(#edges)] or (#f - HEADER - SIG + math.random(-9, 9)) % 2 ^ 32
        f = put_u32(f, 12, math.tointeger(v))
      elseif how == 6 and #f >= HEADER + SIG + 12 then   -- a length prefix inside the payload
        local at = HEADER + 1 + math.random(0, #f - HEADER - SIG - 4)
        f = put_u32(f, at, edges[math.random(#edges)])
      elseif how == 7 then   -- another type id
        f = f:sub(1, 5) .. string.pack(">I2", math.random(1, 4) == 1 and math.random(0, 0xFFFF) or 0xF000 + math.random(0, 5)) .. f:sub(8)
      elseif how == 8 then   -- splice two frames
        local g = gens[math.random(#gens)]()
        f = f:sub(1, math.random(0, #f)) .. g:sub(math.random(1, #g))
      elseif how == 9 then   -- delete a run of bytes
        local i = math.random(1, #f)
        f = f:sub(1, i - 1) .. f:sub(i + math.random(1, 8))
      else   -- a valid header over random payload bytes
        local p = rbytes(math.random(0, 90))
        f = frame(0xF000 + math.random(0, 4), 0, p)
      end
      return f
    end

    -- Whether s is accepted exactly when it is canonical: an accepted frame
    -- re-encodes (up to the signature) to the same bytes.
    local function check(s)
      local ok, t, why = pcall(wire.decode, s)
      if not ok then return false, "decode raised: " .. tostring(t) end
      if t == nil then
        if not reasons[why] then return false, "unexpected reason " .. tostring(why) end
        return true, false
      end
      local again = wire.encode(t.proto, t.type, t)
      if again:sub(1, -SIG - 1) ~= s:sub(1, -SIG - 1) or #again ~= #s then
        return false, "accepted a frame that does not re-encode to the same bytes"
      end
      return true, true
    end

    it(("decodes " .. N .. " random and mutated frames without a crash; only canonical frames are accepted"), function()
      local list = seeds()
      local per_seed = math.max(1, N // #list)
      local accepted, rejected = 0, 0
      for _, seed in ipairs(list) do
        math.randomseed(seed)
        for i = 1, per_seed do
          local s
          local pick = math.random(1, 10)
          if pick == 1 then s = rbytes(math.random(0, 120))
          elseif pick == 2 then s = gens[math.random(#gens)]()
          else s = mutate(gens[math.random(#gens)]()) end
          local ok, acc = check(s)
          if not ok then
            error(("fuzz failure at seed %d, frame %d: %s\n  frame (hex): %s\n  replay: SYNOD_SEEDS=%d busted spec/wire_spec.lua")
                  :format(seed, i, acc, (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)), seed), 0)
          end
          if acc then accepted = accepted + 1 else rejected = rejected + 1 end
        end
      end
      assert.are.equal(per_seed * #list, accepted + rejected)
      assert.is_true(accepted > 0 and rejected > 0, "the fuzzer must exercise both paths")
    end)
  end)

  describe("bench_wire", function()
    it("returns measured rates (no thresholds: timings are reported by make bench)", function()
      local r = synod.bench_wire(100)
      assert.is_true(r.encode > 0)
      assert.is_true(r.decode > 0)
      assert.are.equal(100, r.iterations)
      assert.is_true(r.frame_bytes > HEADER + SIG)
      assert.matches("bad argument #1 to '[%w_.]*bench_wire' %(iterations must be in 1%.%.",
                     raises(function() return synod.bench_wire(0) end))
    end)
  end)
end)
