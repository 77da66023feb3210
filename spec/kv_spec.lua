-- kv_spec.lua — the replicated key-value app (engine/app/kv.c) through
-- synod.kv(): every operation and result, the ERR answers for malformed and
-- refused ops (which must leave the state exactly as it was), the canonical
-- digest, snapshot/restore and its refusals, and a randomised model check
-- against a plain Lua table. Grammar and results: engine/app/kv.h.
--
-- Randomised: seeds from a fixed list plus SYNOD_SEEDS (comma-separated);
-- a failure names the seed and the command that replays it.
local synod = require "synod"
local seeds = require "support.seeds"

local L = synod.kv_limits
local HEADER_BYTES, DIGEST_BYTES = 24, 32

-- ---- helpers ----

-- Runs each op in order and returns their results.
local function run(kv, ops)
  local out = {}
  for i, op in ipairs(ops) do out[i] = kv:execute(op) end
  return out
end

local function store(ops, opts)
  local kv = synod.kv(opts)
  run(kv, ops)
  return kv
end

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- Bytewise key order (independent of the C library's collation).
local function key_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- The canonical snapshot body of a { key = value } table, built from the
-- format in kv.h; the digest is BLAKE2b-256 of it.
local function encode_body(t)
  local keys, bytes = {}, 0
  for k, v in pairs(t) do keys[#keys + 1] = k; bytes = bytes + #k + #v end
  table.sort(keys, key_less)
  local parts = { string.pack(">c8I4I4I8", "synod/kv", 1, #keys, bytes) }
  for _, k in ipairs(keys) do parts[#parts + 1] = string.pack(">I2I2", #k, #t[k]) .. k .. t[k] end
  return table.concat(parts)
end

local function model_digest(t) return hex(synod.crypto.digest(encode_body(t))) end

-- A snapshot of raw entries (any order, any content) with a valid check
-- digest; data_bytes defaults to the sum of the entry lengths.
local function craft(entries, opts)
  opts = opts or {}
  local bytes = 0
  local parts = {}
  for _, e in ipairs(entries) do
    bytes = bytes + #e[1] + #e[2]
    parts[#parts + 1] = string.pack(">I2I2", #e[1], #e[2]) .. e[1] .. e[2]
  end
  local body = string.pack(">c8I4I4I8", opts.magic or "synod/kv", opts.version or 1,
                           opts.count or #entries, opts.data_bytes or bytes) .. table.concat(parts)
  return body .. synod.crypto.digest(body)
end

-- The store's whole observable state: digest, count, bytes.
local function state_of(kv) return { kv:digest(), kv:count(), kv:bytes() } end

local SAMPLE = { "put apple red", "put pear green", "put plum purple", "put kiwi brown" }

-- ---- operations ----

describe("synod.kv operations", function()
  it("put, get, del and cas give their documented results", function()
    local kv = synod.kv()
    assert.same({ "NOT_FOUND", "OK", "VALUE red", "OK", "VALUE crimson" },
      run(kv, { "get apple", "put apple red", "get apple", "put apple crimson", "get apple" }))
    assert.same({ "CAS_FAILED crimson", "VALUE crimson", "OK", "VALUE green" },
      run(kv, { "cas apple red green", "get apple", "cas apple crimson green", "get apple" }))
    assert.same({ "NOT_FOUND", "NOT_FOUND" }, run(kv, { "cas pear a b", "del pear" }))
    assert.same({ "OK", "NOT_FOUND", "NOT_FOUND", "OK" },
      run(kv, { "del apple", "get apple", "del apple", "put apple again" }))
    assert.equal(1, kv:count())
    assert.equal(#"apple" + #"again", kv:bytes())
  end)

  it("never makes a result ambiguous: the first word says what happened", function()
    local kv = synod.kv()
    assert.same({ "OK", "VALUE NOT_FOUND", "OK", "VALUE OK", "OK", "VALUE ERR" },
      run(kv, { "put a NOT_FOUND", "get a", "put b OK", "get b", "put c ERR", "get c" }))
    assert.equal("CAS_FAILED NOT_FOUND", kv:execute("cas a x y"))
  end)

  it("puts with the same value and cas to the same value are OK and change nothing", function()
    local kv = store({ "put k v" })
    local before = state_of(kv)
    assert.same({ "OK", "OK" }, run(kv, { "put k v", "cas k v v" }))
    assert.same(before, state_of(kv))
  end)

  it("splits on runs of whitespace and ignores it at the ends", function()
    local kv = synod.kv()
    assert.equal("OK", kv:execute("  put\tkey \t  value\r\n"))
    assert.equal("VALUE value", kv:execute("\vget\fkey\n"))
    assert.equal("OK", kv:execute("cas key value v2 "))
    assert.equal("VALUE v2", kv:execute("get key"))
  end)

  it("takes any non-whitespace, non-control bytes as keys and values (UTF-8 included)", function()
    local kv = synod.kv()
    assert.equal("OK", kv:execute("put clé🔑 värde=1;x\"y'%"))
    assert.equal("VALUE värde=1;x\"y'%", kv:execute("get clé🔑"))
    assert.equal("OK", kv:execute("put \255\128 \254"))
    assert.equal("VALUE \254", kv:execute("get \255\128"))
    assert.equal("NOT_FOUND", kv:execute("get Clé🔑"))   -- keys are case-sensitive bytes
  end)

  it("accepts a key and values at their limits, and the longest cas there is", function()
    local kv = synod.kv()
    local key, v1, v2 = ("k"):rep(L.key_bytes), ("a"):rep(L.value_bytes), ("b"):rep(L.value_bytes)
    assert.equal("OK", kv:execute("put " .. key .. " " .. v1))
    local cas = ("cas %s %s %s"):format(key, v1, v2)
    assert.is_true(#cas <= L.op_bytes)
    assert.equal("OK", kv:execute(cas))
    assert.equal("VALUE " .. v2, kv:execute("get " .. key))
    assert.equal("CAS_FAILED " .. v2, kv:execute(cas))
    assert.is_true(#("CAS_FAILED " .. v2) <= L.result_bytes)
    assert.equal(L.key_bytes + L.value_bytes, kv:bytes())
  end)

  it("keeps many keys apart through growth and deletes (no lost or stale entries)", function()
    local kv = synod.kv()
    for i = 1, 5000 do assert.equal("OK", kv:execute(("put k%d v%d"):format(i, i))) end
    for i = 1, 5000, 2 do assert.equal("OK", kv:execute(("del k%d"):format(i))) end
    assert.equal(2500, kv:count())
    for i = 1, 5000 do
      local want = i % 2 == 0 and ("VALUE v%d"):format(i) or "NOT_FOUND"
      assert.equal(want, kv:execute(("get k%d"):format(i)))
    end
    for i = 1, 5000, 2 do assert.equal("OK", kv:execute(("put k%d again"):format(i))) end
    assert.equal(5000, kv:count())
    assert.equal("VALUE again", kv:execute("get k4999"))
    assert.equal("VALUE v5000", kv:execute("get k5000"))
  end)
end)

-- ---- malformed and refused ops ----

describe("synod.kv refusals", function()
  local long_key = ("k"):rep(L.key_bytes + 1)
  local long_value = ("v"):rep(L.value_bytes + 1)
  local cases = {
    { "", "ERR empty op" },
    { " \t\r\n ", "ERR empty op" },
    { "PUT a b", "ERR unknown verb" },
    { "fetch a", "ERR unknown verb" },
    { "putx a b", "ERR unknown verb" },
    { "put", "ERR usage: put <key> <value>" },
    { "put a", "ERR usage: put <key> <value>" },
    { "put a b c", "ERR usage: put <key> <value>" },
    { "get", "ERR usage: get <key>" },
    { "get a b", "ERR usage: get <key>" },
    { "del", "ERR usage: del <key>" },
    { "del a b", "ERR usage: del <key>" },
    { "cas a b", "ERR usage: cas <key> <expected> <new>" },
    { "cas a b c d", "ERR usage: cas <key> <expected> <new>" },
    { "cas a b c d e f g", "ERR usage: cas <key> <expected> <new>" },
    { "put " .. long_key .. " v", "ERR key too long" },
    { "get " .. long_key, "ERR key too long" },
    { "del " .. long_key, "ERR key too long" },
    { "put apple " .. long_value, "ERR value too long" },
    { "cas apple " .. long_value .. " x", "ERR value too long" },
    { "cas apple red " .. long_value, "ERR value too long" },
    { "put " .. long_key .. " " .. long_value, "ERR key too long" },   -- key first
    { "put a\0b c", "ERR bad byte" },
    { "put a b\1", "ERR bad byte" },
    { "get \127", "ERR bad byte" },
    { "\27[2J", "ERR bad byte" },
    { "nonsense\0", "ERR bad byte" },                                  -- bad byte before verb
    { "put a " .. ("v"):rep(L.op_bytes), "ERR op too long" },
    { ("x\0"):rep(L.op_bytes), "ERR op too long" },                    -- length first
  }

  for _, c in ipairs(cases) do
    it(("answers %q with %s and changes nothing"):format(#c[1] > 40 and c[1]:sub(1, 40) .. "…" or c[1], c[2]), function()
      local kv = store(SAMPLE)
      local before = state_of(kv)
      assert.equal(c[2], kv:execute(c[1]))
      assert.same(before, state_of(kv))
      assert.equal("VALUE red", kv:execute("get apple"))
    end)
  end

  it("refuses a new key past max_keys, but still overwrites and accepts after a del", function()
    local kv = synod.kv { max_keys = 3 }
    assert.same({ "OK", "OK", "OK" }, run(kv, { "put a 1", "put b 2", "put c 3" }))
    local before = state_of(kv)
    assert.equal("ERR too many keys", kv:execute("put d 4"))
    assert.same(before, state_of(kv))
    assert.same({ "OK", "OK", "NOT_FOUND", "OK", "OK", "VALUE 4" },
      run(kv, { "put a 11", "cas b 2 22", "cas d 4 5", "del c", "put d 4", "get d" }))
    assert.equal(3, kv:count())
  end)

  it("refuses what would take key + value bytes past max_bytes", function()
    local kv = synod.kv { max_bytes = 10 }
    assert.equal("OK", kv:execute("put ab 12345678"))            -- exactly 10
    local before = state_of(kv)
    for op, want in pairs({
      ["put c d"] = "ERR store full",
      ["put ab 123456789"] = "ERR store full",
      ["cas ab 12345678 123456789"] = "ERR store full",
      ["cas ab nope 123456789"] = "CAS_FAILED 12345678",           -- a failing cas never says full
      ["cas zz nope 123456789"] = "NOT_FOUND",
    }) do
      assert.equal(want, kv:execute(op), op)
      assert.same(before, state_of(kv), op)
    end
    assert.same({ "OK", "ERR store full", "OK", "OK", "ERR store full" },
      run(kv, { "put ab 1234567", "put c d", "cas ab 1234567 123456", "put c d", "put c de" }))
    assert.equal(10, kv:bytes())
  end)

  it("holds at the real limits: SYN_MAX_KV_KEYS keys, SYN_MAX_KV_BYTES bytes", function()
    local kv = synod.kv()
    for i = 1, L.keys do
      local r = kv:execute("put k" .. i .. " v")
      if r ~= "OK" then error(("put %d: %s"):format(i, r)) end
    end
    assert.equal("ERR too many keys", kv:execute("put one-more v"))
    assert.equal(L.keys, kv:count())
    kv:close()

    local big = synod.kv()
    local value = ("v"):rep(L.value_bytes)
    local i, r = 0, nil
    repeat
      i = i + 1
      local key = tostring(i)
      r = big:execute("put " .. key .. ("k"):rep(L.key_bytes - #key) .. " " .. value)
    until r ~= "OK"
    assert.equal("ERR store full", r)
    assert.is_true(big:bytes() <= L.bytes and big:bytes() + L.key_bytes + L.value_bytes > L.bytes)
    big:close()
  end)
end)

-- ---- digest ----

describe("synod.kv digest", function()
  it("is 64 hex digits, the same for every empty store, and pinned to the format", function()
    local d = synod.kv():digest()
    assert.truthy(d:match("^%x+$") and #d == 64, d)
    assert.equal(d, synod.kv { max_keys = 1 }:digest())
    assert.equal(model_digest({}), d)
    assert.equal(model_digest({ apple = "red", kiwi = "brown", pear = "green", plum = "purple" }),
                 store(SAMPLE):digest())
  end)

  it("does not depend on the order or the path that built the contents", function()
    local a = store({ "put x 1", "put y 2", "put z 3" })
    local b = store({ "put z 3", "put y 2", "put x 1" })
    local c = store({ "put y old", "put q gone", "put x 0", "cas x 0 1", "put z 3", "del q", "cas y old 2" })
    assert.equal(a:digest(), b:digest())
    assert.equal(a:digest(), c:digest())
    local emptied = store({ "put a 1", "put b 2", "del b", "del a" })
    assert.equal(synod.kv():digest(), emptied:digest())
  end)

  it("changes with any difference in contents", function()
    local base = { "put x 1", "put y 2" }
    local variants = {
      {},
      { "put x 1" },
      { "put x 1", "put y 3" },
      { "put x 1", "put Y 2" },
      { "put x 1", "put y 2", "put z 3" },
      { "put x 12" },                          -- bytes moved between entries
      { "put x1 2" },
      { "put ab c" }, { "put a bc" },          -- same bytes, other split
    }
    local seen = { [store(base):digest()] = "base" }
    for i, ops in ipairs(variants) do
      local d = store(ops):digest()
      assert.is_nil(seen[d], ("variant %d collides with %s"):format(i, tostring(seen[d])))
      seen[d] = i
    end
  end)

  it("equals the check digest at the end of the snapshot", function()
    local kv = store(SAMPLE)
    local snap = kv:snapshot()
    assert.equal(kv:digest(), hex(snap:sub(-DIGEST_BYTES)))
  end)
end)

-- ---- snapshot and restore ----

describe("synod.kv snapshot and restore", function()
  local function round_trip(kv)
    local snap = kv:snapshot()
    local copy = synod.kv()
    assert.is_true(copy:restore(snap))
    assert.same(state_of(kv), state_of(copy))
    assert.equal(snap, copy:snapshot())
    return copy
  end

  it("round-trips an empty store", function()
    local kv = synod.kv()
    assert.equal(HEADER_BYTES + DIGEST_BYTES, #kv:snapshot())
    local copy = round_trip(kv)
    assert.equal(0, copy:count())
  end)

  it("round-trips keys and values at their limits, and the copy works on", function()
    local kv = synod.kv()
    local expect = {}
    for i = 1, 20 do
      local key = (string.char(64 + i)):rep(L.key_bytes)
      local value = tostring(i):rep(L.value_bytes):sub(1, L.value_bytes)
      assert.equal("OK", kv:execute(("put %s %s"):format(key, value)))
      expect[key] = value
    end
    local copy = round_trip(kv)
    for key, value in pairs(expect) do assert.equal("VALUE " .. value, copy:execute("get " .. key)) end
    for i = 1, 200 do assert.equal("OK", copy:execute(("put n%d v"):format(i))) end   -- grows past the restored table
    assert.equal(220, copy:count())
    assert.equal("VALUE v", copy:execute("get n200"))
  end)

  it("is canonical: the same contents give the same bytes", function()
    assert.equal(store({ "put b 2", "put a 1", "put ab 3" }):snapshot(),
                 store({ "put ab 3", "put a 0", "put b 2", "put a 1" }):snapshot())
    assert.equal(encode_body({ a = "1", ab = "3", b = "2" }),
                 store({ "put ab 3", "put b 2", "put a 1" }):snapshot():sub(1, -DIGEST_BYTES - 1))
  end)

  it("replaces whatever the store held", function()
    local kv = store({ "put old 1", "put other 2" })
    assert.is_true(kv:restore(store(SAMPLE):snapshot()))
    assert.same(state_of(store(SAMPLE)), state_of(kv))
    assert.equal("NOT_FOUND", kv:execute("get old"))
  end)

  -- Restores bad into a store holding SAMPLE; asserts the reason (when
  -- given) and that the store did not change.
  local function refuses(bad, reason, why)
    local kv = store(SAMPLE)
    local before = state_of(kv)
    local ok, got, msg = kv:restore(bad)
    assert.is_nil(ok, why)
    assert.is_string(got, why)
    assert.is_string(msg, why)
    if reason then assert.equal(reason, got, why) end
    assert.same(before, state_of(kv), why)
    assert.equal("VALUE red", kv:execute("get apple"), why)
    return got
  end

  local snap = store({ "put x 1", "put yy 22", "put zzz 333" }):snapshot()

  it("refuses a snapshot truncated at every cut point", function()
    for cut = 0, #snap - 1 do refuses(snap:sub(1, cut), "truncated", "cut at " .. cut) end
  end)

  it("refuses a snapshot with any one byte flipped", function()
    local reasons = {}
    for pos = 1, #snap do
      for _, mask in ipairs({ 0x01, 0x80, 0xFF }) do
        local bad = snap:sub(1, pos - 1) .. string.char(snap:byte(pos) ~ mask) .. snap:sub(pos + 1)
        reasons[refuses(bad, nil, ("byte %d xor %d"):format(pos, mask))] = true
      end
    end
    assert.is_true(reasons.magic and reasons.version and reasons.checksum and true)
    -- a flip inside an entry or inside the check digest is caught by the check
    refuses(snap:sub(1, 30) .. "Q" .. snap:sub(32), "checksum", "entry byte")
    refuses(snap:sub(1, -2) .. string.char(snap:byte(-1) ~ 1), "checksum", "check byte")
  end)

  it("refuses trailing bytes", function()
    refuses(snap .. "\0", "trailing")
    refuses(snap .. snap, "trailing")
  end)

  it("refuses another version or something that is not a KV snapshot", function()
    refuses(craft({ { "a", "1" } }, { version = 2 }), "version")
    refuses(craft({ { "a", "1" } }, { version = 0 }), "version")
    refuses(craft({ { "a", "1" } }, { magic = "synod/kw" }), "magic")
    refuses(("not a snapshot at all, just text"):rep(2), "magic")
  end)

  it("refuses a snapshot over this store's limits before reading its entries", function()
    local four = store(SAMPLE):snapshot()
    local small = synod.kv { max_keys = 3 }
    local ok, why = small:restore(four)
    assert.is_nil(ok)
    assert.equal("limit", why)
    assert.equal(0, small:count())
    local tight = store({ "put a 1" }, { max_bytes = 10 })
    ok, why = tight:restore(four)
    assert.is_nil(ok)
    assert.equal("limit", why)
    assert.equal("VALUE 1", tight:execute("get a"))
    -- a header claiming more than any store may hold: refused without allocating
    refuses(string.pack(">c8I4I4I8", "synod/kv", 1, 0xFFFFFFFF, 0), "limit")
    refuses(string.pack(">c8I4I4I8", "synod/kv", 1, 1, 1 << 62), "limit")
    -- a key or value longer than the grammar allows, well checked
    refuses(craft({ { ("k"):rep(L.key_bytes + 1), "v" } }), "limit")
    refuses(craft({ { "k", ("v"):rep(L.value_bytes + 1) } }), "limit")
  end)

  it("refuses well-checked snapshots that are not canonical", function()
    refuses(craft({ { "b", "1" }, { "a", "2" } }), "corrupt", "unsorted")
    refuses(craft({ { "a", "1" }, { "a", "2" } }), "corrupt", "duplicate key")
    refuses(craft({ { "ab", "1" }, { "a", "2" } }), "corrupt", "prefix after its extension")
    refuses(craft({ { "", "1" } }), "corrupt", "empty key")
    refuses(craft({ { "a", "" } }), "corrupt", "empty value")
    refuses(craft({ { "a b", "1" } }), "corrupt", "space in key")
    refuses(craft({ { "a", "1\n" } }), "corrupt", "newline in value")
    refuses(craft({ { "a\0", "1" } }), "corrupt", "control byte in key")
    -- lengths that disagree with the entries but keep the total size right
    local function checked(body) return body .. synod.crypto.digest(body) end
    refuses(checked(string.pack(">c8I4I4I8", "synod/kv", 1, 1, 6) .. string.pack(">I2I2", 3, 1) .. "abc1" .. "xy"),
            "corrupt", "slack after the entries")
    refuses(checked(string.pack(">c8I4I4I8", "synod/kv", 1, 2, 4) .. string.pack(">I2I2", 1, 1) .. "a1"
                    .. string.pack(">I2I2", 1, 5) .. "b2"), "corrupt", "an entry running past the end")
    refuses(craft({ { "a", "12" } }, { data_bytes = 2 }), "trailing", "data_bytes too small")
    refuses(craft({ { "a", "12" } }, { data_bytes = 4 }), "truncated", "data_bytes too large")
    assert.is_true(synod.kv():restore(craft({ { "a", "1" }, { "ab", "2" }, { "b", "3" } })))
  end)
end)

-- ---- the Lua face ----

describe("synod.kv in Lua", function()
  it("names the function and argument in argument errors", function()
    local kv = synod.kv()
    local function fails(fn, text)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert.truthy(err:find(text, 1, true), err)
    end
    fails(function() return kv:execute() end, "bad argument #1 to 'execute' (string expected, got no value)")
    fails(function() return kv:execute({}) end, "bad argument #1 to 'execute' (string expected, got table)")
    fails(function() return kv:restore(nil) end, "bad argument #1 to 'restore' (string expected, got nil)")
    fails(function() return synod.kv(5) end, "bad argument #1 to 'kv' (table expected, got number)")
    fails(function() return synod.kv { max_keys = 0 } end, "bad argument #1 to 'kv' (max_keys must be in 1..")
    fails(function() return synod.kv { max_bytes = L.bytes + 1 } end, "bad argument #1 to 'kv' (max_bytes must be in 1..")
    fails(function() return synod.kv { max_keys = "many" } end, "bad argument #1 to 'kv' (max_keys: integer expected, got string)")
    fails(function() return synod.bench_kv(0) end, "bad argument #1 to 'bench_kv' (keys must be in 1..")
    local ok, err
    ok, err = pcall(kv.digest, {})
    assert.is_false(ok)
    assert.truthy(err:find("synod.KV expected", 1, true), err)
  end)

  it("closes explicitly, by <close> and by __gc, and refuses use after close", function()
    local kv = synod.kv()
    kv:execute("put a 1")
    assert.equal("synod.KV (1 keys)", tostring(kv))
    kv:close()
    kv:close()                                   -- twice is fine
    assert.equal("synod.KV (closed)", tostring(kv))
    local ok, err = pcall(kv.execute, kv, "get a")
    assert.is_false(ok)
    assert.truthy(err:find("synod.KV used after it was closed", 1, true), err)
    local escaped
    do
      local scoped <close> = synod.kv()
      scoped:execute("put b 2")
      escaped = scoped
    end
    assert.is_false(pcall(escaped.count, escaped))
    for _ = 1, 50 do synod.kv():execute("put x " .. ("y"):rep(1000)) end
    collectgarbage()
  end)

  it("exposes the named limits", function()
    assert.same({ key_bytes = 256, value_bytes = 1024, keys = 1 << 20, bytes = 64 << 20,
                  op_bytes = 4096, result_bytes = 4096, snapshot_version = 1 }, L)
  end)

  it("is available to sandboxed scripts, without the wall-clock benchmark", function()
    local fn = assert(synod.sandbox.load(
      "local kv = synod.kv(); return kv:execute('put a 1'), kv:execute('get a'), synod.bench_kv", "=spec"))
    local put, get, bench = fn()
    assert.equal("OK", put)
    assert.equal("VALUE 1", get)
    assert.is_nil(bench)
    assert.equal("function", type(synod.bench_kv))
  end)
end)

-- ---- randomised model check ----

-- The model: the grammar and results of kv.h over a plain Lua table.
local USAGE = {
  put = "ERR usage: put <key> <value>", get = "ERR usage: get <key>",
  del = "ERR usage: del <key>", cas = "ERR usage: cas <key> <expected> <new>",
}
local ARITY = { put = 3, get = 2, del = 2, cas = 4 }

local function model_new(max_keys, max_bytes)
  return { t = {}, n = 0, bytes = 0, max_keys = max_keys, max_bytes = max_bytes }
end

local function model_execute(m, op)
  if #op > L.op_bytes then return "ERR op too long" end
  if op:find("[%z\1-\8\14-\31\127]") then return "ERR bad byte" end
  local toks = {}
  for w in op:gmatch("[^ \t\n\v\f\r]+") do toks[#toks + 1] = w end
  if #toks == 0 then return "ERR empty op" end
  local verb, key = toks[1], toks[2]
  if not ARITY[verb] then return "ERR unknown verb" end
  if #toks ~= ARITY[verb] then return USAGE[verb] end
  if #key > L.key_bytes then return "ERR key too long" end
  for i = 3, #toks do
    if #toks[i] > L.value_bytes then return "ERR value too long" end
  end
  local cur = m.t[key]
  if verb == "get" then return cur and "VALUE " .. cur or "NOT_FOUND" end
  if verb == "del" then
    if not cur then return "NOT_FOUND" end
    m.t[key], m.n, m.bytes = nil, m.n - 1, m.bytes - #key - #cur
    return "OK"
  end
  local new = toks[3]
  if verb == "cas" then
    if not cur then return "NOT_FOUND" end
    if cur ~= toks[3] then return "CAS_FAILED " .. cur end
    new = toks[4]
  end
  if cur then
    if m.bytes - #cur + #new > m.max_bytes then return "ERR store full" end
    m.t[key], m.bytes = new, m.bytes - #cur + #new
    return "OK"
  end
  if m.n >= m.max_keys then return "ERR too many keys" end
  if m.bytes + #key + #new > m.max_bytes then return "ERR store full" end
  m.t[key], m.n, m.bytes = new, m.n + 1, m.bytes + #key + #new
  return "OK"
end

local rng = require "support.rng"

local function generator(r, m)
  local keys = { "a", "b", "c", "ab", "key", "k1", "k2", "ü", "\255", ("K"):rep(L.key_bytes),
                 ("L"):rep(L.key_bytes + 1), "NOT_FOUND", "OK" }
  local values = { "1", "2", "x", "OK", "NOT_FOUND", "CAS_FAILED", "väl", ("V"):rep(L.value_bytes),
                   ("W"):rep(L.value_bytes + 1), ("m"):rep(50) }
  local seps = { " ", " ", " ", "  ", "\t", " \n ", "\r\n" }
  local function pick(list) return list[r(1, #list)] end
  local function value()
    if r(1, 4) == 1 then return ("%x"):format(r(0, 1 << 20)) end
    return pick(values)
  end
  return function()
    local verb = pick({ "put", "put", "put", "put", "get", "get", "del", "cas", "cas", "cas", "PUT", "" })
    local key = pick(keys)
    local args = { verb, key }
    if verb == "put" then args[3] = value()
    elseif verb == "cas" then
      args[3] = (r(1, 2) == 1 and m.t[key]) or value()   -- often the current value, so some succeed
      args[4] = value()
    end
    local shape = r(1, 40)
    if shape == 1 then args[#args] = nil                -- a missing argument
    elseif shape == 2 then args[#args + 1] = "extra"    -- one too many
    end
    local sep = pick(seps)
    local op = table.concat(args, sep)
    if shape == 3 then op = sep .. op .. sep end
    if shape == 4 then
      local at = r(1, #op + 1)
      op = op:sub(1, at - 1) .. pick({ "\0", "\1", "\27", "\127" }) .. op:sub(at)
    end
    if shape == 5 then op = "put k " .. ("z"):rep(L.op_bytes) end
    return op
  end
end

describe("synod.kv against a Lua-table model", function()
  it("gives the same results and contents on random op sequences", function()
    local ops_per_seed = 3000
    seeds.each({ 1, 2, 3, 7, 42, 1234, 99991, 314159 }, function(seed)
      local r = rng(seed)
      local max_keys = ({ 1, 3, 8, 64, L.keys })[r(1, 5)]
      local max_bytes = ({ 16, 100, 3000, 100000, L.bytes })[r(1, 5)]
      local kv = synod.kv { max_keys = max_keys, max_bytes = max_bytes }
      local m = model_new(max_keys, max_bytes)
      local gen = generator(r, m)
      for i = 1, ops_per_seed do
        local op = gen()
        local want = model_execute(m, op)
        local got = kv:execute(op)
        if got ~= want then
          error(("op %d %q: store says %q, model says %q (max_keys %d, max_bytes %d)"):format(
            i, op, got, want, max_keys, max_bytes), 0)
        end
        assert(kv:count() == m.n and kv:bytes() == m.bytes, "op " .. i .. ": count or bytes differ")
        if r(1, 200) == 1 then
          -- a state transfer: carry on with a copy restored from a snapshot
          local copy = synod.kv { max_keys = max_keys, max_bytes = max_bytes }
          assert(copy:restore(kv:snapshot()), "op " .. i .. ": restore refused a snapshot")
          kv:close()
          kv = copy
        end
        if i % 250 == 0 then
          assert(kv:digest() == model_digest(m.t), "op " .. i .. ": digest differs from the model's")
        end
      end
      -- the same contents: every model entry is there, and nothing else
      assert.equal(m.n, kv:count())
      for key, value in pairs(m.t) do assert.equal("VALUE " .. value, kv:execute("get " .. key)) end
      assert.equal(model_digest(m.t), kv:digest())
      -- and the digest does not care how they got there: rebuild in another order
      local keys = {}
      for key in pairs(m.t) do keys[#keys + 1] = key end
      table.sort(keys, function(a, b) return key_less(b, a) end)
      local rebuilt = synod.kv()
      for _, key in ipairs(keys) do rebuilt:execute(("put %s %s"):format(key, m.t[key])) end
      assert.equal(kv:digest(), rebuilt:digest())
    end)
  end)
end)
