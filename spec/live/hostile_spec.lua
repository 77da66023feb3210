-- spec/live/hostile_spec.lua — a live PBFT node fed hostile bytes over raw
-- TCP (bash's /dev/tcp) while its honest peers keep executing submissions.
--
-- Nodes 0, 1 and 2 run; 1 is the target. Member 3 does not run: the
-- attacker holds its key (keygen --seed, derived here too) and speaks as a
-- Byzantine member — and, without it, as anyone on the network. With only
-- three of four members up, every commit needs node 1, so "the cluster
-- keeps executing" also means "the target keeps serving".
--
-- Asserted, on the target's own counters (node:counters() through attach:
-- `transport` for what the process refused before a frame reached the node,
-- `dropped` for frames the node refused):
--   before the handshake: garbage (an HTTP request), a unit too short for a
--     hello, a zero and an oversized length prefix → transport.bad_stream;
--     a hello for another cluster → other_cluster; a hello with an id
--     outside the cluster and one with the target's own id → unknown_id;
--     the attacker's hello replayed → replayed_hello; a hello as member 3
--     whose auth is signed with another key → bad_signature;
--   after a good handshake as member 3: a frame that is not a frame →
--     dropped.bad_magic; two prepares signed with the wrong key →
--     dropped.bad_signature; a frame claiming sender 0 on 3's connection →
--     transport.sender_mismatch; a unit for a node not in that process →
--     transport.misrouted; 20 units of the largest legal size →
--     dropped.bad_magic; a second connection as 3 → duplicate; then a
--     length over the limit → bad_stream;
--   60 connections each announcing the largest legal unit before their
--     handshake and sending all of it but a byte → bad_stream at the
--     prefix, and the peak RSS does not grow by the 60 MiB sent;
--   a connection flood (200 opened and held past the handshake deadline,
--     plus a truncated hello held open) → too_many_pending and
--     handshake_timeout, and the target's open descriptors come back down;
--   throughout: peak RSS (VmHWM) under 200 MB, and every submission made
--     before, during and after is executed by all three nodes.
local synod = require "synod"
local live = require "support.live"

local N, TARGET, BYZ = 4, 1, 3
local SEED = 4242          -- keygen --seed: the attacker derives member 3's key from it
local RSS_LIMIT_KB = 200 * 1024
local FLOOD = 200

-- PBFT's message types, so synod.wire.encode builds real prepares here.
synod.sim {}:cluster { protocol = "pbft", n = N }

local keys = synod.live.cluster { n = N, seed = SEED }
local foreign = synod.live.cluster { n = N, seed = SEED + 1 }
local prefix = synod.live.prefix

local function nonce(k) return ("livespec-nonce-%017d"):format(k) end
local function unit(dest, frame) return prefix(string.pack(">I4", dest) .. frame) end

-- The helper a session runs once it has the target's hello: it prints the
-- auth unit for our hello, signed with member ID's key from keygen seed SEED.
local AUTH_LUA = [[
local synod = require "synod"
local function read(p) local f = assert(io.open(p, "rb")) local s = f:read("a") f:close() return s end
local n, id, sign_seed = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[5])
local mine, theirs = read(arg[3]):sub(5), read(arg[4]):sub(5)
io.write(synod.live.prefix(synod.live.cluster { n = n, seed = sign_seed }:auth(id, mine, theirs)))
]]

-- Sends the bytes in file $D/$S.bytes on a fresh connection, lingers $HOLD s, closes.
local SEND_SH = [[
trap '' PIPE
exec 3<>/dev/tcp/127.0.0.1/$PORT || exit 2
cat "$D/$S.bytes" >&3 2>/dev/null
sleep "$HOLD"
exec 3>&-
echo sent
]]

-- A session: our hello, the target's hello read back, our auth, then
-- $D/$S.units; waits for $D/$S.go (at most 20 s), then sends $D/$S.tail.
local SESSION_SH = [[
trap '' PIPE
exec 3<>/dev/tcp/127.0.0.1/$PORT || exit 2
cat "$D/$S.hello" >&3
dd bs=1 count=77 <&3 of="$D/$S.theirs" status=none || exit 3
LUA_CPATH="$ROOT/?.so;;" lua5.4 "$D/auth.lua" "$NODES" "$ID" "$D/$S.hello" "$D/$S.theirs" "$SIGN_SEED" >"$D/$S.auth" || exit 4
cat "$D/$S.auth" >&3 2>/dev/null
[ -e "$D/$S.units" ] && cat "$D/$S.units" >&3 2>/dev/null
for i in $(seq 200); do [ -e "$D/$S.go" ] && break; sleep 0.1; done
[ -e "$D/$S.tail" ] && cat "$D/$S.tail" >&3 2>/dev/null
sleep 0.3
exec 3>&-
echo session-done
]]

-- Opens $COUNT connections and holds them $HOLD s (past the handshake
-- deadline), then until the file $GO exists (at most 20 s more).
local FLOOD_SH = [[
opened=0
for i in $(seq "$COUNT"); do
  exec {fd}<>/dev/tcp/127.0.0.1/$PORT 2>/dev/null || break
  opened=$((opened + 1))
done
echo "opened $opened"
sleep "$HOLD"
for i in $(seq 200); do [ -e "$GO" ] && break; sleep 0.1; done
]]

-- Opens $COUNT connections and writes $D/big.bytes (a unit announcing the
-- largest legal length, one byte short of complete) on each, holding them
-- until the file $GO exists (at most 20 s).
local BIG_SH = [[
trap '' PIPE
opened=0
for i in $(seq "$COUNT"); do
  exec {fd}<>/dev/tcp/127.0.0.1/$PORT 2>/dev/null || break
  cat "$D/big.bytes" >&$fd 2>/dev/null
  opened=$((opened + 1))
done
echo "opened $opened"
for i in $(seq 200); do [ -e "$GO" ] && break; sleep 0.1; done
]]

describe("live node under hostile input", function()
  local c, target, root, dir

  setup(function()
    c = live.cluster { n = N, seed = SEED, tag = "hostile", http = live.has_http() }
    c:start { only = { 0, 1, 2 } }
    target = c:node(TARGET)
    root = (live.sh("pwd"):gsub("%s+$", ""))
    dir = c.dir
    live.write_file(dir .. "/auth.lua", AUTH_LUA)
  end)

  teardown(function() if c then c:down() end end)

  local submitted = 0
  local function load(k, tag)
    local a, b = {}, {}
    for j = 1, k do
      a[j] = ("put %s-a%d v%d"):format(tag, j, j)
      b[j] = ("put %s-b%d v%d"):format(tag, j, j)
    end
    c:submit(0, a)
    c:submit(2, b)
    submitted = submitted + 2 * k
  end

  local function send(name, bytes, hold)
    live.write_file(("%s/%s.bytes"):format(dir, name), bytes)
    return c:bash_bg(SEND_SH, { PORT = target.port, D = dir, S = name, HOLD = hold or 0.3 })
  end

  local function session(name, opts)
    live.write_file(("%s/%s.hello"):format(dir, name), opts.hello)
    if opts.units then live.write_file(("%s/%s.units"):format(dir, name), opts.units) end
    if opts.tail then live.write_file(("%s/%s.tail"):format(dir, name), opts.tail) end
    if opts.go then live.write_file(("%s/%s.go"):format(dir, name), "") end
    return c:bash_bg(SESSION_SH, { PORT = target.port, D = dir, S = name, ROOT = root, NODES = N, ID = opts.id or BYZ,
                                   SIGN_SEED = opts.sign_seed or SEED })
  end

  local function finished(what, bg)
    c:wait(what, bg.done, 30)
    return bg.rc(), bg.output()
  end

  local function transport() return c:counters(TARGET).transport or {} end
  local function delta(before, after, k) return (after[k] or 0) - (before[k] or 0) end

  local function peer3_connected()
    for _, p in ipairs(c:query(TARGET, "node:peers()")) do
      if p.id == BYZ then return p.connected end
    end
    return false
  end

  it("refuses garbage, foreign and unknown hellos before the handshake, and the cluster goes on", function()
    load(5, "pre")
    local t0 = transport()
    local mine = keys:hello(2, nonce(1))
    local unknown = mine:sub(1, 5) .. string.pack(">I4", 9) .. mine:sub(10)
    local conns = {
      send("http", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
      send("short", prefix("hello")),
      send("zero", "\0\0\0\0" .. ("z"):rep(16)),
      send("huge", "\255\255\255\255" .. ("h"):rep(16)),
      send("other", prefix(foreign:hello(2, nonce(2)))),
      send("unknown", prefix(unknown)),
      send("self", prefix(keys:hello(TARGET, nonce(3)))),
      -- Half a hello, then the connection ends: nothing to count, nothing kept.
      send("trunc-eof", prefix(keys:hello(2, nonce(4))):sub(1, 40)),
    }
    for k, bg in ipairs(conns) do
      local rc, out = finished("raw connection " .. k, bg)
      assert.equal(0, rc, out)
    end
    local t1 = c:wait("the target to count 4 bad streams", function()
      local t = transport()
      return delta(t0, t, "bad_stream") >= 4 and delta(t0, t, "unknown_id") >= 2 and t,
        ("bad_stream +%d, unknown_id +%d"):format(delta(t0, t, "bad_stream"), delta(t0, t, "unknown_id"))
    end, 10)
    assert.equal(4, delta(t0, t1, "bad_stream"))
    assert.equal(1, delta(t0, t1, "other_cluster"))
    assert.equal(2, delta(t0, t1, "unknown_id"))
    c:wait_ops(submitted, 30)
  end)

  it("takes a Byzantine member's authenticated session apart frame by frame", function()
    local t0, d0 = transport(), c:counters(TARGET).dropped
    local junk = ("not a frame, just bytes: "):rep(2)
    local prepare = synod.wire.encode("pbft", "prepare", { view = 0, seq = 1, digest = ("\0"):rep(32) }, BYZ)
    local wrong_key = synod.crypto.keypair(BYZ, SEED + 1)
    local wrong_sig = assert(wrong_key:sign(prepare))
    local wrong_sig2 = assert(wrong_key:sign(
      synod.wire.encode("pbft", "prepare", { view = 0, seq = 2, digest = ("\1"):rep(32) }, BYZ)))
    local as_zero = assert(synod.crypto.keypair(0, SEED):sign(
      synod.wire.encode("pbft", "prepare", { view = 0, seq = 1, digest = ("\0"):rep(32) }, 0)))
    local max = synod.wire.limits.max_frame_bytes
    local units = { unit(TARGET, junk), unit(TARGET, wrong_sig), unit(TARGET, wrong_sig2), unit(TARGET, as_zero),
                    unit(77, prepare) }
    for _ = 1, 20 do units[#units + 1] = unit(TARGET, ("x"):rep(max)) end
    local s1 = session("s1", { hello = prefix(keys:hello(BYZ, nonce(11))), units = table.concat(units),
                               tail = "\255\255\255\255" })
    c:wait("member 3's session to be authenticated and its frames counted", function()
      local t, d = transport(), c:counters(TARGET).dropped
      return peer3_connected() and delta(d0, d, "bad_magic") >= 21 and delta(t0, t, "misrouted") >= 1,
        ("connected %s, bad_magic +%d"):format(tostring(peer3_connected()), delta(d0, d, "bad_magic"))
    end, 20)
    load(5, "session")

    -- A second connection as member 3, properly authenticated: refused, the first stays.
    local s2 = session("s2", { hello = prefix(keys:hello(BYZ, nonce(12))), go = true })
    assert.equal(0, (finished("the duplicate session", s2)))
    c:wait("the duplicate to be refused", function() return delta(t0, transport(), "duplicate") >= 1 end, 10)
    assert.is_true(peer3_connected())

    -- End the first session with a length over the limit.
    live.write_file(dir .. "/s1.go", "")
    assert.equal(0, (finished("the first session", s1)))
    c:wait("member 3's connection to close", function() return not peer3_connected() end, 10)

    -- s1's hello again (its nonce seen): a replay. A good hello, an auth by another key.
    local replay = send("replay", prefix(keys:hello(BYZ, nonce(11))))
    local forged = session("forged", { hello = prefix(keys:hello(BYZ, nonce(13))), sign_seed = SEED + 1, go = true })
    finished("the replayed hello", replay)
    finished("the forged session", forged)
    local t1 = c:wait("the replay and the forged auth to be refused", function()
      local t = transport()
      return delta(t0, t, "replayed_hello") >= 1 and delta(t0, t, "bad_signature") >= 1 and t
    end, 10)
    local d1 = c:counters(TARGET).dropped
    assert.equal(1, delta(t0, t1, "duplicate"))
    assert.equal(1, delta(t0, t1, "replayed_hello"))
    assert.equal(1, delta(t0, t1, "bad_signature"))
    assert.equal(1, delta(t0, t1, "bad_stream"))
    assert.equal(1, delta(t0, t1, "sender_mismatch"))
    assert.equal(1, delta(t0, t1, "misrouted"))
    assert.equal(21, delta(d0, d1, "bad_magic"))
    assert.equal(2, delta(d0, d1, "bad_signature"))
    c:wait_ops(submitted, 30)
    assert.is_true(live.hwm_kb(target.pid) < RSS_LIMIT_KB, "peak RSS " .. live.hwm_kb(target.pid) .. " KiB")
  end)

  it("#http shows the same refusals in /status: frame drops in counters.dropped, the transport's in counters.transport", function()
    local t, d = transport(), c:counters(TARGET).dropped
    local s = c:json(TARGET, "/status")
    for reason, k in pairs(t) do assert.equal(k, s.counters.transport[reason], reason) end
    for reason, k in pairs(d) do assert.equal(k, s.counters.dropped[reason], reason) end
    -- Each reason once per object: bad_signature (a forged frame) and the
    -- transport's bad_signature (a forged handshake) live apart.
    assert.is_true(s.counters.dropped.bad_signature >= 2)
    assert.is_true(s.counters.transport.bad_signature >= 1)
  end)

  it("refuses a unit bigger than a hello before the handshake, without buffering it", function()
    local t0, hwm0 = transport(), live.hwm_kb(target.pid)
    local max = synod.wire.limits.max_frame_bytes + 4
    live.write_file(dir .. "/big.bytes", string.pack(">I4", max) .. ("b"):rep(max - 1))
    local go = dir .. "/big.go"
    local big = c:bash_bg(BIG_SH, { PORT = target.port, COUNT = 60, D = dir, GO = go })
    c:wait("the 60 big units to be written", function() return big.output():match("opened (%d+)") end, 30)
    local t1 = c:wait("60 bad streams", function()
      local t = transport()
      return delta(t0, t, "bad_stream") >= 60 and t, ("bad_stream +%d"):format(delta(t0, t, "bad_stream"))
    end, 15)
    assert.equal(60, delta(t0, t1, "bad_stream"))
    live.write_file(go, "")
    finished("the big units' connections to end", big)
    -- 60 MiB came in; none of it was kept (a buffer per unit would have been 60 MiB).
    local grew = live.hwm_kb(target.pid) - hwm0
    assert.is_true(grew < 16 * 1024, ("peak RSS grew by %d KiB"):format(grew))
    load(3, "big")
    c:wait_ops(submitted, 30)
  end)

  it("survives a connection flood: refuses past the pending bound, times out the rest, serves meanwhile", function()
    local t0 = transport()
    local fds0 = live.fds(target.pid)
    local go = dir .. "/flood.go"
    local flood = c:bash_bg(FLOOD_SH, { PORT = target.port, COUNT = FLOOD, HOLD = 6, GO = go })
    local trunc = send("trunc-held", prefix(keys:hello(2, nonce(21))):sub(1, 40), 7)
    c:wait("the flood to open its connections", function() return flood.output():match("opened (%d+)") end, 20)
    assert.equal(("opened %d\n"):format(FLOOD), flood.output())
    -- The cluster executes while the flood is held.
    load(10, "flood")
    c:wait_ops(submitted, 30)
    assert.is_false(flood.done(), "the flood ended before the cluster executed")
    live.write_file(go, "")
    finished("the flood to end", flood)
    finished("the held truncated hello to end", trunc)
    local t1 = c:wait("every flood connection to be refused or timed out", function()
      local t = transport()
      local n = delta(t0, t, "too_many_pending") + delta(t0, t, "handshake_timeout")
      return n >= FLOOD + 1 and t, ("too_many_pending + handshake_timeout = %d"):format(n)
    end, 15)
    assert.is_true(delta(t0, t1, "too_many_pending") > 0)
    assert.is_true(delta(t0, t1, "handshake_timeout") > 0)
    -- Descriptors come back: nothing of the flood is kept.
    c:wait("the target's descriptors to come back down", function()
      local fds = live.fds(target.pid)
      return fds <= fds0 + 2, ("%d open, %d before"):format(fds, fds0)
    end, 10)
    load(5, "after")
    c:wait_ops(submitted, 30)
    assert.is_true(live.hwm_kb(target.pid) < RSS_LIMIT_KB, "peak RSS " .. live.hwm_kb(target.pid) .. " KiB")
    for _, i in ipairs({ 0, 1, 2 }) do assert.is_true(c:alive(i), "node " .. i .. " still runs") end
  end)
end)
