-- store_spec.lua — a live node's durable record store (engine/live/store.c)
-- through synod.live.store: records round-trip in (kind, key) order, upsert
-- and forget, only synced records survive a close or a SIGKILL (a child
-- process killed mid-batch), foreign, corrupt, shared and unusable data
-- directories are refused with a sentence naming what is wrong, the record
-- size limit, and a write failure (the child's file size limit standing in
-- for a full disk) stops the store without losing what was synced.
--
-- Randomised parts take seeds from a fixed list plus SYNOD_SEEDS and name
-- the failing seed (support/seeds.lua). Everything is written under one
-- temporary directory that the spec removes.

local synod = require "synod"
local seeds = require "support.seeds"
local rng = require "support.rng"

local live = synod.live
local CLUSTER = ("3f"):rep(32)        -- hex
local OTHER = ("9b"):rep(32)

local root, count = nil, 0

local function fresh()
  count = count + 1
  return ("%s/d%d"):format(root, count)
end

local function opts(t)
  t = t or {}
  return { cluster = t.cluster or CLUSTER, id = t.id or 1, proto = t.proto or "pbft" }
end

-- The error f(...) raises, without the "file:line: " a Lua caller adds.
local function raises(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error")
  return (tostring(err):gsub("^[^\n]-:%d+: ", "", 1))
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function key_of(kind, key) return ("%d/%d"):format(kind, key) end

-- The records a model {["kind/key"] = {kind, key, data}} should read back as.
local function sorted(model)
  local list = {}
  for _, r in pairs(model) do list[#list + 1] = { kind = r.kind, key = r.key, data = r.data } end
  table.sort(list, function(a, b) return a.kind < b.kind or (a.kind == b.kind and a.key < b.key) end)
  return list
end

local function same_records(want, got, label)
  assert.equal(#want, #got, label .. ": record count")
  for i = 1, #want do
    local w, g = want[i], got[i]
    assert(w.kind == g.kind and w.key == g.key,
      ("%s: record %d is (%d, %d), expected (%d, %d)"):format(label, i, g.kind, g.key, w.kind, w.key))
    assert(w.data == g.data, ("%s: record (%d, %d) holds %d bytes that differ from the %d expected"):format(
      label, w.kind, w.key, #g.data, #w.data))
  end
end

-- Runs a Lua program in a separate lua5.4 process that loads this same
-- synod.so; returns its output, how it ended ("exit"/"signal") and the code.
local function child(src, shell_prefix)
  count = count + 1
  local path = ("%s/child%d.lua"):format(root, count)
  write(path, ("package.cpath = %q\nlocal synod = require 'synod'\n%s\n"):format(package.cpath, src))
  local p = assert(io.popen(("%sexec lua5.4 %s 2>&1"):format(shell_prefix or "", path)))
  local out = p:read("a")
  local _, how, code = p:close()
  return out, how, code
end

-- Record bytes from a tag and a length, the same in the spec and in a child.
local DATA_SRC = [[
local function data(tag, len)
  local unit = tag .. "|"
  return unit:rep(len // #unit + 1):sub(1, len)
end
]]
local data = load(DATA_SRC .. "return data")()

describe("live store", function()
  lazy_setup(function()
    root = os.tmpname()
    os.remove(root)
    assert(os.execute("mkdir -m 700 " .. root))
  end)

  lazy_teardown(function()
    if root then os.execute("rm -rf " .. root) end
  end)

  it("reads records back in (kind, key) order, whatever order they were put in", function()
    seeds.each({ 11, 12, 13 }, function(seed)
      local rnd = rng(seed)
      local st = live.store(fresh(), opts())
      local model, bytes, puts = {}, 0, 0
      for i = 1, 300 do
        local kind, key = rnd(0, 5), rnd(0, 1000)
        if i % 50 == 0 then kind = 4294967295 end
        if i % 70 == 0 then key = live.max_store_key end
        local d = data(("s%d.%d"):format(seed, i), rnd(0, 3) == 0 and 0 or rnd(1, 3000))
        st:put(kind, key, d)
        model[key_of(kind, key)] = { kind = kind, key = key, data = d }
        bytes, puts = bytes + #d, puts + 1
      end
      same_records(sorted(model), st:records(), ("seed %d, before sync"):format(seed))
      st:sync()
      same_records(sorted(model), st:records(), ("seed %d, after sync"):format(seed))
      local s = st:stats()
      assert.equal(puts, s.puts)
      assert.equal(bytes, s.put_bytes)
      assert.equal(1, s.syncs)
      st:close()
    end)
  end)

  it("replaces a record put twice under the same (kind, key)", function()
    local dir = fresh()
    local st = live.store(dir, opts())
    st:put(1, 7, "first")
    st:put(1, 7, "second, longer")
    st:put(2, 7, "other kind")
    st:sync()
    st:put(1, 7, "")
    st:sync()
    st:close()
    st = live.store(dir, opts())
    same_records({ { kind = 1, key = 7, data = "" }, { kind = 2, key = 7, data = "other kind" } },
      st:records(), "after reopen")
    st:close()
  end)

  it("forgets the records of one kind below a key, and only those", function()
    local dir = fresh()
    local st = live.store(dir, opts())
    for key = 1, 10 do
      st:put(1, key, "a" .. key)
      st:put(2, key, "b" .. key)
    end
    st:put(3, live.max_store_key, "top")
    st:forget(1, 5)
    st:forget(3, live.max_store_key)   -- below the largest key: it stays
    st:sync()
    st:close()
    st = live.store(dir, opts())
    local got = st:records()
    local want = {}
    for key = 5, 10 do want[#want + 1] = { kind = 1, key = key, data = "a" .. key } end
    for key = 1, 10 do want[#want + 1] = { kind = 2, key = key, data = "b" .. key } end
    want[#want + 1] = { kind = 3, key = live.max_store_key, data = "top" }
    same_records(want, got, "after forget")
    st:forget(2, 0)                    -- nothing is below 0
    st:forget(1, 100)
    same_records({ table.unpack(want, 7) }, st:records(), "after the second forget")
    assert.equal(2, st:stats().forgets)   -- since the reopen
    st:close()
  end)

  it("keeps synced records across a reopen and drops unsynced ones on close and on collection", function()
    local dir = fresh()
    local st = live.store(dir, opts())
    st:put(1, 1, "kept")
    st:put(1, 2, "kept too")
    st:sync()
    st:put(1, 3, "never synced")
    st:put(1, 2, "overwrite never synced")
    st:forget(1, 2)
    assert.equal(3, st:stats().pending)
    -- Unsynced work is visible to the store itself until it closes...
    assert.equal(2, #st:records())
    assert.equal("overwrite never synced", st:records()[1].data)
    st:close()
    -- ...and gone after: close promises exactly what a crash would.
    st = live.store(dir, opts())
    local kept = { { kind = 1, key = 1, data = "kept" }, { kind = 1, key = 2, data = "kept too" } }
    same_records(kept, st:records(), "after close")
    st:put(1, 4, "dropped by the collector")
    st = nil                                        -- luacheck: ignore
    collectgarbage(); collectgarbage()
    st = live.store(dir, opts())
    same_records(kept, st:records(), "after collection")
    assert.has_error(function() st:close(); st:put(1, 1, "x") end, "store: used after close")
  end)

  it("syncs as a no-op when nothing is pending, and counts real syncs", function()
    local st = live.store(fresh(), opts())
    st:sync()
    assert.equal(0, st:stats().syncs)
    st:put(5, 5, "x")
    st:sync()
    st:sync()
    local s = st:stats()
    assert.equal(1, s.syncs)
    assert.equal(0, s.pending)
    assert.is_true(s.last_sync_ns > 0)
    assert.is_false(s.failed)
    st:close()
  end)

  it("takes the cluster as 32 raw bytes or as 64 hex digits", function()
    local dir = fresh()
    local raw = CLUSTER:gsub("..", function(h) return string.char(tonumber(h, 16)) end)
    local st = live.store(dir, opts { cluster = raw })
    st:close()
    st = live.store(dir, opts { cluster = CLUSTER:upper() })   -- the same cluster
    st:close()
    assert.equal("bad argument #2 to 'store' (field 'cluster' must be 32 bytes or 64 hex digits)",
      raises(function() return live.store(fresh(), opts { cluster = "3f3f" }) end))
    assert.equal("bad argument #2 to 'store' (field 'id' must be an integer 0..4294967295)",
      raises(function() return live.store(fresh(), { cluster = CLUSTER, id = -1, proto = "pbft" }) end))
    assert.matches("protocol name \"no spaces\" must be", raises(live.store, fresh(), opts { proto = "no spaces" }))
  end)

  it("refuses another node's, cluster's or protocol's data directory, naming both sides", function()
    local dir = fresh()
    live.store(dir, opts { id = 2 }):close()
    local theirs = "node 2 of cluster 3f3f3f3f3f3f…/pbft"
    assert.equal(("data directory %s belongs to %s, not node 1 of cluster 3f3f3f3f3f3f…/pbft"):format(dir, theirs),
      raises(live.store, dir, opts { id = 1 }))
    assert.equal(("data directory %s belongs to %s, not node 2 of cluster 9b9b9b9b9b9b…/pbft"):format(dir, theirs),
      raises(live.store, dir, opts { id = 2, cluster = OTHER }))
    assert.equal(("data directory %s belongs to %s, not node 2 of cluster 3f3f3f3f3f3f…/tom"):format(dir, theirs),
      raises(live.store, dir, opts { id = 2, proto = "tom" }))
    -- Clusters that share their first 12 hex digits are shown whole.
    local near = ("3f"):rep(31) .. "00"
    assert.equal(("data directory %s belongs to node 2 of cluster %s/pbft, not node 2 of cluster %s/pbft"):format(
      dir, CLUSTER, near), raises(live.store, dir, opts { id = 2, cluster = near }))
    live.store(dir, opts { id = 2 }):close()   -- its own node still opens it
  end)

  it("refuses a second store on a directory that is open, until it closes", function()
    local dir = fresh()
    local st = live.store(dir, opts())
    assert.equal(("data directory %s is in use: another open store holds the lock on %s/synod.db"):format(dir, dir),
      raises(live.store, dir, opts()))
    st:close()
    live.store(dir, opts()):close()
  end)

  it("refuses a synod.db of garbage bytes as corrupt, and a damaged one", function()
    seeds.each({ 21, 22 }, function(seed)
      local rnd = rng(seed)
      local dir = fresh()
      assert(os.execute("mkdir -m 700 " .. dir))
      local junk = {}
      for i = 1, rnd(1, 20000) do junk[i] = string.char(rnd(0, 255)) end
      write(dir .. "/synod.db", table.concat(junk))
      assert.equal(("%s/synod.db is corrupt: file is not a database"):format(dir), raises(live.store, dir, opts()))
    end)
    -- A SQLite database that is not synod's: a store whose header's
    -- application id (4 bytes at offset 68) is cleared.
    local other = fresh()
    live.store(other, opts()):close()
    local f = assert(io.open(other .. "/synod.db", "r+b"))
    f:seek("set", 68)
    assert.equal("SYND", f:read(4))
    f:seek("set", 68)
    f:write("\0\0\0\0")
    f:close()
    assert.equal(("%s/synod.db is not a synod data store (SQLite application id 0x00000000, 2 tables)"):format(other),
      raises(live.store, other, opts()))
    -- A real store whose b-tree pages 10..20 are overwritten after a clean close.
    local dir = fresh()
    local st = live.store(dir, opts())
    for key = 1, 2000 do st:put(1, key, data("page" .. key, 100)) end
    st:sync()
    st:close()
    f = assert(io.open(dir .. "/synod.db", "r+b"))
    assert(f:seek("end") > 21 * 4096, "the store should span more than 21 pages")
    f:seek("set", 9 * 4096)
    f:write(("\255"):rep(11 * 4096))
    f:close()
    assert.matches(dir .. "/synod.db is corrupt: ", raises(live.store, dir, opts()), 1, true)
  end)

  it("refuses a data directory it cannot create, a file, or one others can write", function()
    local file = fresh()
    write(file, "not a directory")
    assert.equal(("cannot create data directory %s/node-0: Not a directory"):format(file),
      raises(live.store, file .. "/node-0", opts()))
    assert.equal(("cannot create data directory %s/a/b: %s/a: Not a directory"):format(file, file),
      raises(live.store, file .. "/a/b", opts()))
    assert.equal(("data directory %s is not a directory"):format(file), raises(live.store, file, opts()))
    local open = fresh()
    assert(os.execute("mkdir -m 777 " .. open))
    assert.equal(("data directory %s can be written by group or others (mode 0777): "
      .. "a node's data directory must be its own (chmod 700 it)"):format(open), raises(live.store, open, opts()))
    -- Missing parents are created, each 0700.
    local deep = fresh() .. "/x/y"
    live.store(deep, opts()):close()
    local p = assert(io.popen("stat -c %a " .. deep .. " " .. deep:match("(.*)/y$")))
    assert.equal("700\n700\n", p:read("a"))
    p:close()
  end)

  it("refuses a record over SYN_MAX_STORE_RECORD_BYTES before writing, and stays usable", function()
    local dir = fresh()
    local st = live.store(dir, opts())
    local max = live.max_record_bytes
    assert.equal(16 * 1024 * 1024, max)
    assert.equal(("record (kind 1, key 2) of %d bytes is over SYN_MAX_STORE_RECORD_BYTES (%d)"):format(max + 1, max),
      raises(st.put, st, 1, 2, ("x"):rep(max + 1)))
    assert.equal(0, st:stats().puts)
    local big = data("big", max)
    st:put(1, 2, big)
    st:sync()
    st:close()
    st = live.store(dir, opts())
    local got = st:records()
    assert.equal(1, #got)
    assert.is_true(got[1].data == big, "the largest record reads back whole")
    assert.equal("bad argument #2 to 'put' (must be 0..9223372036854775807, got -1)",   -- #1 is kind
      raises(function() st:put(1, -1, "x") end))
    assert.equal("bad argument #1 to 'put' (must be 0..4294967295, got 4294967296)",
      raises(function() st:put(4294967296, 1, "x") end))
    st:close()
  end)

  it("after a SIGKILL in the middle of an unsynced batch, holds exactly the synced records", function()
    seeds.each({ 1, 2, 3, 4 }, function(seed)
      local rnd = rng(seed)
      local ops, model, synced = {}, {}, nil
      local function put(kind, key, len)
        local tag = ("s%d.op%d"):format(seed, #ops + 1)
        ops[#ops + 1] = ("{ 'put', %d, %d, %q, %d }"):format(kind, key, tag, len)
        model[key_of(kind, key)] = { kind = kind, key = key, data = data(tag, len) }
      end
      local function forget(kind, below)
        ops[#ops + 1] = ("{ 'forget', %d, %d }"):format(kind, below)
        for k, r in pairs(model) do if r.kind == kind and r.key < below then model[k] = nil end end
      end
      for _ = 1, rnd(2, 6) do                      -- synced rounds
        for _ = 1, rnd(1, 40) do put(rnd(1, 3), rnd(0, 60), rnd(0, 2000)) end
        if rnd(0, 1) == 1 then forget(rnd(1, 3), rnd(0, 30)) end
        ops[#ops + 1] = "{ 'sync' }"
        synced = sorted(model)
      end
      -- The batch the kill interrupts: new keys, overwrites, a forget, and
      -- for some seeds enough bytes (> SQLite's 2 MB page cache) that pages
      -- spill into the WAL before any commit.
      put(1, 1000, 10)
      for _ = 1, rnd(1, 30) do put(rnd(1, 3), rnd(0, 60), rnd(0, 2000)) end
      forget(rnd(1, 3), rnd(0, 60))
      if seed % 2 == 0 then for i = 1, 6 do put(4, i, 512 * 1024) end end
      ops[#ops + 1] = "{ 'kill' }"

      local dir = fresh()
      local out, how, code = child(DATA_SRC .. ([[
local st = synod.live.store(%q, { cluster = %q, id = 3, proto = "pbft" })
for _, op in ipairs({ %s }) do
  if op[1] == "put" then st:put(op[2], op[3], data(op[4], op[5]))
  elseif op[1] == "forget" then st:forget(op[2], op[3])
  elseif op[1] == "sync" then st:sync(); io.stdout:write("synced\n")
  else io.stdout:write("killing\n"); io.stdout:flush(); os.execute("kill -9 $PPID") end
end
io.stdout:write("survived the kill\n")
]]):format(dir, CLUSTER, table.concat(ops, ",\n")))
      assert.equal("signal", how, "the child should die by a signal; it said:\n" .. out)
      assert.equal(9, code)
      assert.matches("synced\nkilling\n$", out)
      local st = live.store(dir, opts { id = 3 })
      same_records(synced, st:records(), ("seed %d, after the kill"):format(seed))
      st:close()
    end)
  end)

  it("stops writing after a write fails (file size limit), keeping every synced record", function()
    local dir = fresh()
    -- ulimit -f: 2048 blocks of 512 (dash) or 1024 (bash) bytes; with SIGXFSZ
    -- ignored, a write past it fails with EFBIG, as a full disk fails one.
    local out = child(DATA_SRC .. ([[
local st = synod.live.store(%q, { cluster = %q, id = 1, proto = "pbft" })
local synced = 0
for i = 1, 2000 do
  local ok, err = pcall(function() st:put(1, i, data("r" .. i, 65536)); st:sync() end)
  if not ok then print("error: " .. err:gsub("^[^\n]-:%%d+: ", "", 1)); break end
  synced = i
end
print("synced: " .. synced)
pcall(st.put, st, 1, 1, ("x"):rep(synod.live.max_record_bytes + 1))   -- a new error in between
print("again: " .. select(2, pcall(st.put, st, 1, 1, "x")))
print("sync: " .. select(2, pcall(st.sync, st)))
print("failed: " .. tostring(st:stats().failed))
st:close()
]]):format(dir, CLUSTER), "ulimit -f 2048; trap '' XFSZ; ")
    local err = out:match("error: ([^\n]*)")
    assert(err, "the writes should have failed; the child said:\n" .. out)
    assert.matches(("^data directory %s: "):format(dir:gsub("%p", "%%%0")), err)
    assert(err:find("I/O error", 1, true) or err:find("disk full", 1, true), err)
    assert.matches("the store refuses further writes$", err)
    assert.equal(err, out:match("again: ([^\n]*)"))
    assert.equal(err, out:match("sync: ([^\n]*)"))
    assert.equal("true", out:match("failed: (%a+)"))
    local n = tonumber(out:match("synced: (%d+)"))
    assert(n and n >= 1, "some records should have been synced first:\n" .. out)
    local st = live.store(dir, opts())
    local want = {}
    for i = 1, n do want[i] = { kind = 1, key = i, data = data("r" .. i, 65536) } end
    same_records(want, st:records(), "after the failed write")
    st:close()
  end)
end)
