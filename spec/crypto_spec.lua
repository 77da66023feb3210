-- crypto_spec.lua — identities, domain-separated frame signatures, digests
-- and key files (engine/crypto/), through synod.crypto.
--
-- Known answers were computed outside synod: RFC 8032 test 1 for Ed25519
-- keys, Python's hashlib.blake2b for digests and the keygen derivation, and
-- the pinned frame signature was verified with `openssl pkeyutl -verify
-- -rawin` over BLAKE2b-512("synod/1/test/ping\0" || header || payload).

local synod = require "synod"
local wire, crypto = synod.wire, synod.crypto

local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end
local function unhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end

local function raises(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(err)
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function mode(path)
  local p = assert(io.popen("stat -c %a '" .. path .. "'"))
  local m = p:read("l")
  p:close()
  return m
end

-- A fresh, not yet existing path under the system temp dir; removed in teardown.
local made = {}
local function tmpdir()
  local path = os.tmpname()
  os.remove(path)
  made[#made + 1] = path
  return path
end

local function ring_of(n, seed)
  local ids, ring = {}, {}
  for i = 0, n - 1 do
    ids[i] = crypto.keypair(i, seed)
    ring[i] = ids[i]:public_key()
  end
  return ids, ring
end

describe("synod.crypto", function()
  teardown(function()
    for _, path in ipairs(made) do
      assert(path:match("^/tmp/lua_%w+$"), "refusing to remove " .. path)
      os.execute("rm -rf '" .. path .. "'")
    end
  end)

  describe("identities", function()
    it("derives keys from an Ed25519 seed (RFC 8032 test 1)", function()
      local id = crypto.keypair(0, unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
      assert.are.equal("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", id:public_key())
      assert.are.equal(0, id:id())
    end)

    it("derives the seed as BLAKE2b-256(\"synod keygen\" || seed u64 BE || node u32 BE)", function()
      -- hashlib.blake2b(b"synod keygen" + struct.pack(">QI", 42, 3), digest_size=32)
      local seed = unhex("47b97cbcb2b4a57e4e5736c4960954c0bcea2a93a8dd0831ff24528281fce6e3")
      assert.are.equal(crypto.keypair(3, seed):public_key(), crypto.keypair(3, 42):public_key())
    end)

    it("is deterministic for a seed and distinct across seeds and nodes", function()
      local a = crypto.keypair(1, 7):public_key()
      assert.are.equal(a, crypto.keypair(1, 7):public_key())
      assert.are_not.equal(a, crypto.keypair(1, 8):public_key())
      assert.are_not.equal(a, crypto.keypair(2, 7):public_key())
      assert.are_not.equal(crypto.keypair(1):public_key(), crypto.keypair(1):public_key())   -- random
      assert.matches("^%x+$", a)
      assert.are.equal(64, #a)
      assert.matches("synod.Identity(node 1, " .. a .. ")", tostring(crypto.keypair(1, 7)), 1, true)
    end)

    it("rejects bad arguments, naming the function and argument", function()
      assert.matches("bad argument #1 to 'keypair' (node id must be in 0..255, got 256)",
                     raises(function() return crypto.keypair(256, 1) end), 1, true)
      assert.matches("bad argument #2 to 'keypair' (seed string must be 32 bytes, got 3)",
                     raises(function() return crypto.keypair(0, "abc") end), 1, true)
      assert.matches("bad argument #2 to 'keypair' (integer, 32-byte string or nil expected, got table)",
                     raises(function() return crypto.keypair(0, {}) end), 1, true)
      local id = crypto.keypair(0, 1)
      assert.matches("bad argument #1 to 'sign' (string expected, got nil)",
                     raises(function() return id:sign(nil) end), 1, true)
      assert.matches("bad argument #1 to 'sign' (synod.Identity expected, got string)",
                     raises(function() return id.sign("frame") end), 1, true)
    end)
  end)

  describe("signatures", function()
    local ids, ring = ring_of(4, 11)
    local frame = wire.encode("test", "ping", { n = 5, note = "hello" }, 1)
    local signed = ids[1]:sign(frame)

    it("verifies a frame signed by its sender", function()
      assert.are.equal(#frame, #signed)
      assert.are.equal(frame:sub(1, -65), signed:sub(1, -65))
      assert.is_true(crypto.verify(signed, ring))
      assert.are.equal("hello", wire.decode(signed).note)
    end)

    it("takes the ring indexed by node id or as a list with node i at [i+1]", function()
      local list = {}
      for i = 0, 3 do list[i + 1] = ring[i] end
      assert.is_true(crypto.verify(signed, list))
    end)

    it("pins the signing construction (golden signature)", function()
      local id = crypto.keypair(1, unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
      local s = id:sign(wire.encode("test", "ping", { n = 42, note = "golden" }, 1))
      assert.are.equal("d2a874bb2951a7cc7b3c975487acfb8b7534af1962f95671d3d733c58ab2f274"
                       .. "f879d0de7c289e294955f50533f7a27d7bef102777a7d000808c647d8242c008", hex(s:sub(-64)))
    end)

    it("rejects an unsigned frame", function()
      local ok, why, msg = crypto.verify(frame, ring)
      assert.is_nil(ok)
      assert.are.equal("bad_signature", why)
      assert.are.equal("bad signature", msg)
    end)

    it("rejects a flipped bit anywhere in header, payload or signature", function()
      local allowed = { bad_signature = true, unknown_sender = true, bad_magic = true, bad_version = true,
                        unknown_type = true, too_big = true, truncated = true, trailing = true }
      local count = 0
      for i = 1, #signed do
        for bit = 0, 7 do
          local bad = signed:sub(1, i - 1) .. string.char(signed:byte(i) ~ (1 << bit)) .. signed:sub(i + 1)
          local ok, why = crypto.verify(bad, ring)
          assert.is_nil(ok, ("byte %d bit %d accepted"):format(i, bit))
          assert.is_true(allowed[why], ("byte %d bit %d: %s"):format(i, bit, tostring(why)))
          count = count + 1
        end
      end
      assert.are.equal(8 * #signed, count)
      -- bits in the payload and signature can only ever be caught by the signature
      local i = 16
      local ok, why = crypto.verify(signed:sub(1, i - 1) .. string.char(signed:byte(i) ~ 1) .. signed:sub(i + 1), ring)
      assert.is_nil(ok)
      assert.are.equal("bad_signature", why)
    end)

    it("does not accept a signature made for one type as another (domain separation)", function()
      -- test.pong has ping's exact layout: only the type id differs
      local as_pong = signed:sub(1, 5) .. string.pack(">I2", 0xF004) .. signed:sub(8)
      local t = assert(wire.decode(as_pong))
      assert.are.equal("pong", t.type)
      local ok, why = crypto.verify(as_pong, ring)
      assert.is_nil(ok)
      assert.are.equal("bad_signature", why)
      -- and a genuine pong with the same content verifies
      local pong = ids[1]:sign(wire.encode("test", "pong", { n = 5, note = "hello" }, 1))
      assert.is_true(crypto.verify(pong, ring))
      assert.are_not.equal(pong:sub(-64), signed:sub(-64))
    end)

    it("rejects a frame naming a sender other than its signer", function()
      local forged = ids[2]:sign(wire.encode("test", "ping", { n = 5, note = "hello" }, 1))
      local ok, why = crypto.verify(forged, ring)
      assert.is_nil(ok)
      assert.are.equal("bad_signature", why)
    end)

    it("rejects an unknown sender even with a valid signature", function()
      local stranger = crypto.keypair(9, 11)
      local f = stranger:sign(wire.encode("test", "ping", { n = 1, note = "" }, 9))
      local ok, why, msg = crypto.verify(f, ring)
      assert.is_nil(ok)
      assert.are.equal("unknown_sender", why)
      assert.are.equal("unknown sender", msg)
      assert.are.equal("unknown_sender", select(2, crypto.verify(signed, {})))
    end)

    it("reports frames that do not parse instead of raising", function()
      assert.are.equal("truncated", select(2, crypto.verify("SYND", ring)))
      assert.are.equal("trailing", select(2, crypto.verify(signed .. "x", ring)))
      local ok, why = ids[0]:sign("not a frame")
      assert.is_nil(ok)
      assert.are.equal("truncated", why)
    end)

    it("rejects a malformed ring, naming the argument", function()
      assert.matches("bad argument #2 to 'verify' (key for node 1 must be 64 hex digits)",
                     raises(function() return crypto.verify(signed, { [0] = ring[0], "xyz" }) end), 1, true)
      assert.matches("bad argument #2 to 'verify' (table expected, got no value)",
                     raises(function() return crypto.verify(signed) end), 1, true)
      assert.matches("bad argument #1 to 'verify' (string expected, got nil)",
                     raises(function() return crypto.verify(nil, ring) end), 1, true)
    end)
  end)

  describe("digest", function()
    it("is BLAKE2b-256", function()
      assert.are.equal("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8", hex(crypto.digest("")))
      assert.are.equal("bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319", hex(crypto.digest("abc")))
      assert.are.equal(32, #crypto.digest(string.rep("x", 100000)))
      assert.matches("bad argument #1 to 'digest' (string expected, got no value)",
                     raises(function() return crypto.digest() end), 1, true)
    end)
  end)

  describe("key files", function()
    it("writes seeds 0600 in a 0700 dir, derived deterministically from the seed", function()
      local dir = tmpdir()
      assert.is_true(crypto.keygen(dir, 4, 42))
      assert.are.equal("700", mode(dir))
      for i = 0, 3 do assert.are.equal("600", mode(dir .. "/node-" .. i .. ".key")) end
      -- hashlib.blake2b(b"synod keygen" + struct.pack(">QI", 42, 0), digest_size=32)
      assert.are.equal("9c16c5570b352aa363c7513db6df904fecdfc2631c97d91b0e246fd03601af0d\n", read(dir .. "/node-0.key"))
      local pub = read(dir .. "/keys.pub")
      local lines = {}
      for l in pub:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.equal(4, #lines)
      for i = 0, 3 do assert.are.equal(i .. " " .. crypto.keypair(i, 42):public_key(), lines[i + 1]) end

      local same, other = tmpdir(), tmpdir()
      assert.is_true(crypto.keygen(same, 4, 42))
      assert.is_true(crypto.keygen(other, 4, 43))
      assert.are.equal(pub, read(same .. "/keys.pub"))
      assert.are_not.equal(pub, read(other .. "/keys.pub"))
      for i = 0, 3 do
        assert.are.equal(read(dir .. "/node-" .. i .. ".key"), read(same .. "/node-" .. i .. ".key"))
        assert.are_not.equal(read(dir .. "/node-" .. i .. ".key"), read(other .. "/node-" .. i .. ".key"))
      end
    end)

    it("writes random keys without a seed", function()
      local a, b = tmpdir(), tmpdir()
      assert.is_true(crypto.keygen(a, 2))
      assert.is_true(crypto.keygen(b, 2))
      assert.are_not.equal(read(a .. "/keys.pub"), read(b .. "/keys.pub"))
      assert.are.equal("600", mode(a .. "/node-1.key"))
    end)

    it("loads what it wrote: ring and identities sign and verify", function()
      local dir = tmpdir()
      assert.is_true(crypto.keygen(dir, 3, 5))
      local ring = assert(crypto.load_ring(dir .. "/keys.pub"))
      assert.are.equal(3, #ring)
      for i = 0, 2 do
        local id = assert(crypto.load_identity(dir, i))
        assert.are.equal(i, id:id())
        assert.are.equal(crypto.keypair(i, 5):public_key(), id:public_key())
        assert.are.equal(ring[i + 1], id:public_key())
        assert.is_true(crypto.verify(id:sign(wire.encode("test", "empty", {}, i)), ring))
      end
    end)

    it("re-runs with the same seed, but never overwrites a different key", function()
      local dir = tmpdir()
      assert.is_true(crypto.keygen(dir, 2, 1))
      local before = read(dir .. "/node-1.key")
      assert.is_true(crypto.keygen(dir, 2, 1))
      local ok, err = crypto.keygen(dir, 3, 2)
      assert.is_nil(ok)
      assert.matches("refusing to overwrite", err, 1, true)
      assert.are.equal(before, read(dir .. "/node-1.key"))
      assert.is_nil(io.open(dir .. "/node-2.key"))   -- nothing written after a conflict
      assert.is_nil((crypto.keygen(dir, 2)))          -- random keys never match
    end)

    it("reports bad key counts and unusable directories", function()
      local ok, err = crypto.keygen(tmpdir(), 0, 1)
      assert.is_nil(ok)
      assert.matches("at least 1", err, 1, true)
      ok, err = crypto.keygen(tmpdir(), 257, 1)
      assert.is_nil(ok)
      assert.matches("SYN_MAX_NODES", err, 1, true)
      local dir = tmpdir()
      ok, err = crypto.keygen(dir .. "/no/such/parent", 1, 1)
      assert.is_nil(ok)
      assert.matches("cannot create", err, 1, true)
      assert.matches("bad argument #2 to 'keygen' (number expected, got no value)",
                     raises(function() return crypto.keygen(dir) end), 1, true)
    end)

    it("rejects corrupted key files with an error naming the file", function()
      local dir = tmpdir()
      assert.is_true(crypto.keygen(dir, 2, 3))
      local path = dir .. "/node-0.key"
      local good = read(path)
      for _, bad in ipairs({ "", good:sub(1, 63) .. "\n", "zz" .. good:sub(3), good .. "\n", good:sub(1, 64) .. "\r\n",
                             good:sub(1, 64) .. "00\n", string.rep("0", 200) }) do
        write(path, bad)
        local id, err = crypto.load_identity(dir, 0)
        assert.is_nil(id)
        assert.matches(path, err, 1, true)
      end
      os.remove(path)
      local id, err = crypto.load_identity(dir, 0)
      assert.is_nil(id)
      assert.matches("No such file", err, 1, true)
      write(path, good)
      assert.is_not_nil(crypto.load_identity(dir, 0))
    end)

    it("rejects corrupted keys.pub files, naming the line", function()
      local dir = tmpdir()
      assert.is_true(crypto.keygen(dir, 2, 3))
      local path = dir .. "/keys.pub"
      local good = read(path)
      local l0, l1 = good:match("^([^\n]*)\n([^\n]*)\n$")
      local cases = {
        { "", "no keys" },
        { l0 .. "\n\n", ":2:" },
        { l1 .. "\n" .. l0 .. "\n", ":1: expected id 0, found 1" },
        { l0 .. "\n" .. l1:gsub("^1 ", "01 ") .. "\n", ":2:" },
        { l0 .. "\n" .. l1:sub(1, -2) .. "\n", ":2: public key must be 64 hex digits" },
        { l0 .. "\n" .. l1:sub(1, -2) .. "g\n", ":2: public key is not hex" },
        { l0 .. "\n1 " .. string.rep("0", 64) .. "\n", ":2: not a valid Ed25519 public key" },
        { l0:gsub(" ", "  ") .. "\n", ":1:" },
        { l0 .. "\r\n", ":1:" },
      }
      for _, c in ipairs(cases) do
        write(path, c[1])
        local ring, err = crypto.load_ring(path)
        assert.is_nil(ring, c[2])
        assert.matches(c[2], err, 1, true)
      end
      write(path, l0 .. "\n" .. l1)   -- the last newline is optional
      assert.are.equal(2, #assert(crypto.load_ring(path)))
      local ring, err = crypto.load_ring(dir .. "/missing.pub")
      assert.is_nil(ring)
      assert.matches("missing.pub", err, 1, true)
    end)
  end)

  describe("bench_crypto", function()
    it("returns measured rates (no thresholds: timings are reported by make bench)", function()
      local r = synod.bench_crypto(5)
      assert.is_true(r.sign > 0)
      assert.is_true(r.verify > 0)
      assert.is_true(r.digest > 0)
      assert.are.equal(5, r.iterations)
    end)
  end)
end)
