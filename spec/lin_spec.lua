-- lin_spec.lua — synod.kv_history and the linearizability checker. Histories
-- it must accept, planted violations it must catch (asserting on verdict
-- fields: outcome, key, the ops named, clients and op ids — never on the
-- wording), the "could not decide" path, and randomised histories: made
-- linearizable by construction, then corrupted; plus a differential test
-- against a brute-force checker written here in Lua.
local synod = require "synod"
local seeds = require "support.seeds"

local MS = 1000000

-- A history from rows { client, "op text", invoke [, respond, result] };
-- times in ms (numbers) or strings. Returns the history and the op ids.
local function history(rows)
  local h = synod.kv_history()
  local ids = {}
  for i, r in ipairs(rows) do
    local t0 = type(r[3]) == "number" and math.floor(r[3] * MS) or r[3]
    ids[i] = h:invoke(r[1], r[2], t0)
  end
  for i, r in ipairs(rows) do
    if r[4] ~= nil then
      local t1 = type(r[4]) == "number" and math.floor(r[4] * MS) or r[4]
      h:respond(ids[i], r[5], t1)
    end
  end
  return h, ids
end

local function check(rows, opts)
  local h = history(rows)
  return h:check(opts)
end

local function assert_ok(v)
  assert.is_true(v.ok, tostring(v))
  assert.are.equal("linearizability", v.checker)
  assert.are.equal("ok", v.outcome)
  assert.are.equal("", v.explain)
  assert.is_nil(v.node_a)
  assert.is_nil(v.pos_a)
  assert.is_nil(v.ops)
end

local function contains(list, x)
  for _, y in ipairs(list or {}) do if y == x then return true end end
  return false
end

-- A violation on key, naming exactly the op ids in `ops` (order-free) when
-- given; node_a/pos_a are the client and id of the first op named.
local function assert_violation(v, key, ops)
  assert.is_false(v.ok, "expected a violation")
  assert.are.equal("linearizability", v.checker)
  assert.are.equal("violation", v.outcome, tostring(v))
  assert.are.equal(key, v.key)
  assert.is_true(#v.explain > 0)
  assert.truthy(v.explain:find("key " .. key, 1, true), v.explain)
  assert.is_true(#v.ops >= 1)
  assert.are.equal(v.ops[1], v.pos_a)
  assert.is_not_nil(v.node_a)
  if ops then
    local got, want = {}, {}
    for _, id in ipairs(v.ops) do got[#got + 1] = id end
    for _, id in ipairs(ops) do want[#want + 1] = id end
    table.sort(got); table.sort(want)
    assert.are.same(want, got, tostring(v))
  end
end

describe("synod.kv_history", function()
  it("records invocations and responses and hands back copies", function()
    local h = synod.kv_history()
    local a = h:invoke(1, "put x apple", "5ms")
    local b = h:invoke(2, "cas x apple pear", 6 * MS)
    local c = h:invoke(3, "get\tx", "7ms")
    local d = h:invoke(3, "  del   y ", "8ms")
    assert.are.same({ 1, 2, 3, 4 }, { a, b, c, d })
    h:respond(a, "OK", "6ms")
    h:respond(c, "apple", "9ms")
    local ops = h:ops()
    assert.are.equal(4, #ops)
    assert.are.same({ id = 1, client = 1, kind = "put", key = "x", value = "apple",
                      invoke = 5 * MS, respond = 6 * MS, result = "OK" }, ops[1])
    assert.are.same({ id = 2, client = 2, kind = "cas", key = "x", expected = "apple", new = "pear",
                      invoke = 6 * MS }, ops[2])
    assert.are.same({ id = 3, client = 3, kind = "get", key = "x", invoke = 7 * MS,
                      respond = 9 * MS, result = "apple" }, ops[3])
    assert.are.same({ id = 4, client = 3, kind = "del", key = "y", invoke = 8 * MS }, ops[4])
    assert.are.equal(4, #h)
    assert.are.equal("synod.KVHistory(ops=4, pending=2)", tostring(h))
  end)

  it("names the function and argument in argument errors", function()
    local h = synod.kv_history()
    assert.error_matches(function() h:invoke(-1, "get x", 0) end, "bad argument #1 to 'invoke' %(client")
    assert.error_matches(function() h:invoke("me", "get x", 0) end, "bad argument #1 to 'invoke'")
    assert.error_matches(function() h:invoke(1, "fetch x", 0) end, "bad argument #2 to 'invoke' %(bad op 'fetch x'")
    assert.error_matches(function() h:invoke(1, "put x", 0) end, "bad argument #2 to 'invoke' %(bad op")
    assert.error_matches(function() h:invoke(1, "cas x a b c", 0) end, "bad argument #2 to 'invoke' %(bad op")
    assert.error_matches(function() h:invoke(1, "PUT x a", 0) end, "bad argument #2 to 'invoke' %(bad op")
    assert.error_matches(function() h:invoke(1, "", 0) end, "bad argument #2 to 'invoke' %(bad op")
    assert.error_matches(function() h:invoke(1, nil, 0) end, "bad argument #2 to 'invoke' %(string expected")
    assert.error_matches(function() h:invoke(1, "get x", "5 parsecs") end, "bad argument #3 to 'invoke'.*bad time")
    assert.error_matches(function() h:invoke(1, "get x") end, "bad argument #3 to 'invoke'")
    local id = h:invoke(1, "get x", "5ms")
    assert.error_matches(function() h:respond(2, "OK", "6ms") end, "bad argument #1 to 'respond' %(no op 2")
    assert.error_matches(function() h:respond(id, nil, "6ms") end, "bad argument #2 to 'respond'")
    assert.error_matches(function() h:respond(id, "x", "4ms") end, "bad argument #3 to 'respond' %(response at")
    h:respond(id, "NOT_FOUND", "6ms")
    assert.error_matches(function() h:respond(id, "x", "7ms") end, "bad argument #1 to 'respond' %(op 1 already has a response")
    assert.error_matches(function() h:check(5) end, "bad argument #1 to 'check'")
    assert.error_matches(function() h:check { max_steps = 0 } end, "bad argument #1 to 'check'.*max_steps")
    assert.error_matches(function() h:check { max_steps = "many" } end, "bad argument #1 to 'check'.*max_steps")
  end)

  it("is unusable after close, and closing twice is harmless", function()
    local h = synod.kv_history()
    do
      local c <close> = h
      c:invoke(0, "get x", 0)
    end
    assert.error_matches(function() h:ops() end, "closed")
    getmetatable(h).__close(h)
    assert.are.equal("synod.KVHistory(closed)", tostring(h))
  end)
end)

describe("linearizability accepts", function()
  it("an empty history and one with only pending ops", function()
    assert_ok(synod.kv_history():check())
    assert_ok(check { { 1, "put x a", 0 }, { 2, "get x", 1 }, { 3, "cas x a b", 2 } })
  end)

  it("a sequential history with every kind of op", function()
    assert_ok(check {
      { 1, "get x", 0, 1, "NOT_FOUND" },
      { 1, "put x a", 2, 3, "OK" },
      { 2, "get x", 4, 5, "a" },
      { 2, "cas x a b", 6, 7, "OK" },
      { 1, "cas x a c", 8, 9, "CAS_FAILED b" },
      { 3, "del x", 10, 11, "OK" },
      { 3, "del x", 12, 13, "OK" },
      { 1, "cas x b c", 14, 15, "CAS_FAILED NOT_FOUND" },
      { 2, "get x", 16, 17, "NOT_FOUND" },
    })
  end)

  it("concurrent ops that can only be ordered against their invocation order", function()
    -- the get invoked first must come after the put invoked second
    assert_ok(check {
      { 1, "get x", 0, 10, "a" },
      { 2, "put x a", 1, 2, "OK" },
      { 3, "get x", 3, 4, "a" },
    })
    -- a long put, reads on either side of its linearization point
    assert_ok(check {
      { 1, "put x a", 0, 10, "OK" },
      { 2, "get x", 1, 2, "NOT_FOUND" },
      { 2, "get x", 3, 4, "a" },
      { 3, "get x", 5, 6, "a" },
    })
  end)

  it("equal times as concurrent (a response and an invocation at the same instant)", function()
    assert_ok(check { { 1, "put x a", 0, 5, "OK" }, { 2, "get x", 5, 6, "NOT_FOUND" } })
  end)

  it("a pending op that took effect and one that did not", function()
    assert_ok(check {
      { 1, "put x a", 0, 1, "OK" },
      { 2, "put x b", 2 },                 -- client 2 gave up
      { 3, "get x", 10, 11, "b" },
    })
    assert_ok(check {
      { 1, "put x a", 0, 1, "OK" },
      { 2, "put x b", 2 },
      { 3, "get x", 10, 11, "a" },
    })
    -- a pending op may take effect long after it was invoked
    assert_ok(check {
      { 2, "put x b", 0 },
      { 1, "put x a", 2, 3, "OK" },
      { 3, "get x", 4, 5, "a" },
      { 3, "get x", 6, 7, "b" },
    })
  end)

  it("ops that answered ERR as no-ops", function()
    assert_ok(check {
      { 1, "put x a", 0, 1, "OK" },
      { 2, "put x b", 2, 3, "ERR store full" },
      { 2, "cas x a c", 4, 5, "ERR timeout" },
      { 3, "get x", 6, 7, "a" },
    })
  end)

  it("a chain of concurrent cas, invoked in the opposite order to their effects", function()
    assert_ok(check {
      { 0, "put x 0", 0, 1, "OK" },
      { 3, "cas x 2 3", 2, 20, "OK" },
      { 2, "cas x 1 2", 3, 20, "OK" },
      { 1, "cas x 0 1", 4, 20, "OK" },
      { 4, "cas x 0 9", 5, 20, "CAS_FAILED 2" },
      { 5, "get x", 21, 22, "3" },
    })
  end)

  it("the app's dialect: VALUE <v>, and NOT_FOUND from del and cas on an absent key", function()
    assert_ok(check {
      { 1, "del x", 0, 1, "NOT_FOUND" },
      { 1, "cas x a b", 2, 3, "NOT_FOUND" },
      { 1, "put x NOT_FOUND", 4, 5, "OK" },
      { 2, "get x", 6, 7, "VALUE NOT_FOUND" },
      { 2, "del x", 8, 9, "OK" },
      { 2, "get x", 10, 11, "NOT_FOUND" },
    })
  end)

  it("independent keys, each linearizable on its own", function()
    assert_ok(check {
      { 1, "put x a", 0, 10, "OK" },
      { 2, "put y b", 0, 10, "OK" },
      { 3, "get y", 1, 2, "b" },      -- y's put took effect early,
      { 3, "get x", 3, 4, "NOT_FOUND" }, -- x's late: fine, they are separate objects
    })
  end)
end)

describe("linearizability catches", function()
  it("a stale read after a completed write", function()
    local v = check {
      { 1, "put x a", 1, 2, "OK" },
      { 1, "put x b", 3, 4, "OK" },
      { 2, "get x", 5, 7, "a" },
    }
    -- whatever "put x a" did (in its own time), the get cannot follow "put x b"
    assert_violation(v, "x", { 2, 3 })
    assert.are.equal(1, v.node_a)
    assert.are.equal(2, v.pos_a)
    assert.are.equal(2, v.node_b)
    assert.are.equal(3, v.pos_b)
  end)

  it("a read of a value never written", function()
    local v = check {
      { 1, "put x a", 1, 2, "OK" },
      { 2, "get x", 5, 7, "zebra" },
    }
    assert_violation(v, "x", { 2 })
    assert.are.equal(2, v.node_a)
    assert.is_nil(v.node_b)
  end)

  it("a read of a value whose only write answered ERR", function()
    local v = check {
      { 1, "put x a", 1, 2, "ERR store full" },
      { 2, "get x", 5, 7, "a" },
    }
    assert_violation(v, "x", { 2 })
  end)

  it("a read of a value written only after the read returned", function()
    local v = check {
      { 2, "get x", 5, 7, "a" },
      { 1, "put x a", 9 },          -- pending: still only after 9ms
    }
    assert_violation(v, "x", { 1, 2 })
    assert.are.equal(2, v.node_a)
    assert.are.equal(1, v.node_b)
  end)

  it("a lost update: two successful cas from the same expected value", function()
    local v = check {
      { 0, "put x 0", 0, 1, "OK" },
      { 1, "cas x 0 1", 2, 10, "OK" },
      { 2, "cas x 0 2", 3, 11, "OK" },
      { 3, "get x", 12, 13, "2" },
    }
    assert_violation(v, "x", { 2, 3 })
  end)

  it("a real-time order violation: a read that must precede a write that finished before it began", function()
    local v = check {
      { 1, "put x a", 1, 2, "OK" },
      { 2, "get x", 3, 4, "NOT_FOUND" },
    }
    assert_violation(v, "x", { 1, 2 })
  end)

  it("a read that sees a value and then an older one", function()
    local v = check {
      { 1, "put x a", 0, 1, "OK" },
      { 1, "put x b", 2, 20, "OK" },
      { 2, "get x", 3, 4, "b" },
      { 2, "get x", 5, 6, "a" },
    }
    assert_violation(v, "x", { 3, 4 })
  end)

  it("a newer value seen before an older one, the newer write pending", function()
    local v = check {
      { 1, "put x a", 0, 1, "OK" },
      { 2, "put x b", 2 },
      { 3, "get x", 10, 11, "b" },
      { 3, "get x", 12, 13, "a" },
    }
    assert_violation(v, "x", { 3, 4 })
  end)

  it("a pending op that would have to take effect twice", function()
    local v = check {
      { 2, "put x b", 0 },                 -- never answered
      { 3, "get x", 1, 2, "b" },
      { 1, "put x a", 3, 4, "OK" },
      { 3, "get x", 5, 6, "b" },
    }
    assert_violation(v, "x", { 2, 3, 4 })
  end)

  it("a result the grammar never gives", function()
    assert_violation(check { { 1, "put x a", 0, 1, "DONE" } }, "x", { 1 })
    assert_violation(check { { 1, "cas x a b", 0, 1, "NO" } }, "x", { 1 })
    assert_violation(check { { 1, "del x", 0, 1, "GONE" } }, "x", { 1 })
  end)

  it("a del that says NOT_FOUND while the key holds a value (app dialect)", function()
    assert_violation(check {
      { 1, "put x a", 0, 1, "OK" },
      { 2, "del x", 2, 3, "NOT_FOUND" },
    }, "x", { 1, 2 })
  end)

  it("a violation on key y among many linearizable ops on key x", function()
    local rows = {}
    for i = 1, 1000 do
      rows[#rows + 1] = { i % 8, "put x v" .. i, 4 * i, 4 * i + 2, "OK" }
      rows[#rows + 1] = { (i + 1) % 8, "get x", 4 * i + 1, 4 * i + 3, "v" .. i }
    end
    rows[#rows + 1] = { 3, "put y a", 10, 11, "OK" }
    rows[#rows + 1] = { 4, "put y b", 12, 13, "OK" }
    rows[#rows + 1] = { 5, "get y", 14, 15, "a" }
    local v = check(rows)
    assert_violation(v, "y", { 2002, 2003 })
    assert.are.equal(2, v.keys)
    assert.are.equal(1, v.keys_failed)
    assert.are.equal(0, v.keys_undecided)
  end)

  it("names the first failing key in byte order, whatever the recording order", function()
    local function rows(first)
      local r = {}
      for _, k in ipairs(first) do
        r[#r + 1] = { 1, "put " .. k .. " a", 0, 1, "OK" }
        r[#r + 1] = { 2, "get " .. k, 2, 3, "NOT_FOUND" }
      end
      return r
    end
    local v1 = check(rows { "m", "b", "z" })
    local v2 = check(rows { "z", "m", "b" })
    assert_violation(v1, "b")
    assert_violation(v2, "b")
    assert.are.equal(3, v1.keys_failed)
    -- same history, same verdict, byte for byte
    assert.are.equal((v1.explain:gsub("op %d+", "op ?")), (v2.explain:gsub("op %d+", "op ?")))
    assert.are.equal(v1.explain, check(rows { "m", "b", "z" }).explain)
  end)
end)

describe("could not decide", function()
  -- 20 concurrent puts, then two reads that disagree: no order exists, but
  -- proving it means trying every subset of the puts.
  local function hard(extra)
    local rows = {}
    for i = 1, 20 do rows[#rows + 1] = { i, "put x v" .. i, 0, 100, "OK" } end
    rows[#rows + 1] = { 0, "get x", 200, 201, "v1" }
    rows[#rows + 1] = { 0, "get x", 300, 301, "v2" }
    for _, r in ipairs(extra or {}) do rows[#rows + 1] = r end
    return rows
  end

  it("is reported as its own failed outcome when the step budget runs out", function()
    local v = check(hard(), { max_steps = 10000 })
    assert.is_false(v.ok)
    assert.are.equal("linearizability", v.checker)
    assert.are.equal("undecided", v.outcome)
    assert.are.equal("x", v.key)
    assert.is_nil(v.ops)
    assert.is_nil(v.node_a)
    assert.is_nil(v.pos_a)
    assert.are.equal(1, v.keys_undecided)
    assert.are.equal(0, v.keys_failed)
    assert.truthy(v.explain:find("^could not decide"), v.explain)
    assert.is_true(v.steps <= 10000)
  end)

  it("gives way to a violation proven on another key", function()
    local v = check(hard {
      { 1, "put a 1", 0, 1, "OK" },
      { 2, "get a", 2, 3, "NOT_FOUND" },
    }, { max_steps = 10000 })
    assert_violation(v, "a", { 23, 24 })
    assert.are.equal(1, v.keys_undecided)
    assert.are.equal(1, v.keys_failed)
  end)

  it("is reported for a key with more ops than SYN_MAX_LIN_OPS_PER_KEY, without hiding other keys", function()
    local h = synod.kv_history()
    local max = synod.lin_limits.max_ops_per_key
    for i = 1, max + 1 do
      local id = h:invoke(i % 4, "put big v" .. i, i * 10)
      h:respond(id, "OK", i * 10 + 5)
    end
    local v = h:check()
    assert.are.equal("undecided", v.outcome)
    assert.are.equal("big", v.key)
    assert.truthy(v.explain:find("SYN_MAX_LIN_OPS_PER_KEY", 1, true), v.explain)
    local a = h:invoke(1, "put small a", 0); h:respond(a, "OK", 1)
    local g = h:invoke(2, "get small", 2); h:respond(g, "NOT_FOUND", 3)
    assert_violation(h:check(), "small", { a, g })
  end)

  it("decides the same history given enough steps", function()
    local rows = {}
    for i = 1, 10 do rows[#rows + 1] = { i, "put x v" .. i, 0, 100, "OK" } end
    rows[#rows + 1] = { 0, "get x", 200, 201, "v1" }
    rows[#rows + 1] = { 0, "get x", 300, 301, "v2" }
    local v = check(rows)
    assert_violation(v, "x")
    assert.is_true(contains(v.ops, 11) and contains(v.ops, 12), tostring(v))
  end)
end)

-- ---- randomised ----

-- A brute-force reference, written from the grammar alone: search every
-- order that respects real time, memoised on (placed set, state).
local function reads(result, state)
  if result == "NOT_FOUND" then return state == nil or state == "NOT_FOUND" end
  local v = result:match("^VALUE (.*)$") or result
  return state == v
end

-- ok, new state (pending ops: may apply, never fail)
local function apply(op, state)
  local k, a, b = op.kind, op.a, op.b
  if op.result == nil then
    if k == "put" then return true, a end
    if k == "del" then return true, nil end
    if k == "cas" then if state == a then return true, b end return true, state end
    return true, state
  end
  local r = op.result
  if k == "get" then return reads(r, state), state end
  if k == "put" then return r == "OK", a end
  if k == "del" then
    if r == "OK" then return true, nil end
    return r == "NOT_FOUND" and state == nil, state
  end
  if r == "OK" then return state == a, b end
  if r == "NOT_FOUND" then return state == nil, state end
  local cur = r:match("^CAS_FAILED (.*)$")
  return cur ~= nil and state ~= a and reads(cur, state), state
end

local function reference_ok(ops)
  local bykey = {}
  for _, op in ipairs(ops) do
    if not (op.result and op.result:sub(1, 3) == "ERR") then
      bykey[op.key] = bykey[op.key] or {}
      table.insert(bykey[op.key], op)
    end
  end
  for _, list in pairs(bykey) do
    local n, seen = #list, {}
    local placed = {}
    -- a maybe op (op.maybe): need not happen, but only within its window
    local function required(o) return o.respond ~= nil and not o.maybe end
    local function dfs(state, count_done, need_done, max_inv)
      if count_done == need_done then return true end
      local memo = {}
      for i = 1, n do memo[i] = placed[i] and "1" or "0" end
      local key = table.concat(memo) .. "|" .. tostring(state)
      if seen[key] then return false end
      seen[key] = true
      for i = 1, n do
        local o = list[i]
        if not placed[i] and not (o.maybe and o.respond < max_inv) then
          local minimal = true
          for j = 1, n do
            local p = list[j]
            if j ~= i and not placed[j] and required(p) and p.respond < o.invoke then minimal = false; break end
          end
          if minimal then
            local ok, ns = apply(o, state)
            if ok then
              placed[i] = true
              if dfs(ns, count_done + (required(o) and 1 or 0), need_done, math.max(max_inv, o.invoke)) then
                return true
              end
              placed[i] = false
            end
          end
        end
      end
      return false
    end
    local need = 0
    for _, o in ipairs(list) do if required(o) then need = need + 1 end end
    if not dfs(nil, 0, need, math.mininteger) then return false end
  end
  return true
end

local function text(op)
  if op.kind == "put" then return ("put %s %s"):format(op.key, op.a) end
  if op.kind == "cas" then return ("cas %s %s %s"):format(op.key, op.a, op.b) end
  return op.kind .. " " .. op.key
end

-- A linearizable history by construction: clients run ops one after
-- another; each op takes effect at a random instant inside its window
-- (pending ones maybe never), results come from a sequential KV applied in
-- that order. Values are unique ("v<n>") unless opts.values = N (then
-- drawn from v1..vN, so they repeat). app = the app's dialect; kv = a
-- synod.kv() store to compute the results instead (app/kv.c itself).
local function generate(opts)
  local rnd, nclients, nkeys, nops = opts.rnd, opts.clients, opts.keys, opts.ops
  local ops, t, counter, recent = {}, {}, 0, {}
  for c = 1, nclients do t[c] = rnd(0, 5) end
  for _ = 1, nops do
    local c = rnd(1, nclients)
    local key = "k" .. rnd(1, nkeys)
    local inv = t[c] + rnd(0, 3)
    local dur = rnd(1, opts.max_dur or 20)
    local op = { client = c - 1, key = key, invoke = inv, respond = inv + dur }
    local roll = rnd(1, 100)
    recent[key] = recent[key] or {}
    local function fresh()
      counter = counter + 1
      return opts.values and ("v" .. rnd(1, opts.values)) or ("v" .. counter)
    end
    if roll <= 35 then
      op.kind, op.a = "put", fresh()
      table.insert(recent[key], op.a)
    elseif roll <= 70 then
      op.kind = "get"
    elseif roll <= 78 then
      op.kind = "del"
    else
      local r = recent[key]
      op.kind, op.b = "cas", fresh()
      op.a = (#r > 0 and rnd(1, 4) > 1) and r[rnd(math.max(1, #r - 2), #r)] or ("v" .. rnd(1, counter))
      table.insert(r, op.b)
    end
    op.effect = inv + rnd(0, dur)                      -- its linearization point
    local fate, pend = rnd(1, 100), opts.pending_pct or 4
    if fate <= pend then op.pending = true; op.effective = rnd(1, 2) == 1
    elseif fate <= pend + 2 then op.err = true; op.effective = false
    else op.effective = true end
    t[c] = op.respond
    ops[#ops + 1] = op
  end
  -- apply in effect order (ties: recording order) to compute results
  local order = {}
  for i = 1, #ops do order[i] = i end
  table.sort(order, function(x, y)
    if ops[x].effect ~= ops[y].effect then return ops[x].effect < ops[y].effect end
    return x < y
  end)
  local store = {}
  for _, i in ipairs(order) do
    local op = ops[i]
    if opts.kv then                                    -- the real app answers
      if op.err then op.result = "ERR timeout"
      elseif not op.pending then op.result = opts.kv:execute(text(op))
      elseif op.effective then opts.kv:execute(text(op)) end
      goto next
    end
    local cur = store[op.key]
    local res
    if op.kind == "put" then res = "OK"; if op.effective then store[op.key] = op.a end
    elseif op.kind == "get" then
      res = cur == nil and "NOT_FOUND" or (opts.app and "VALUE " .. cur or cur)
    elseif op.kind == "del" then
      res = (cur == nil and opts.app) and "NOT_FOUND" or "OK"
      if op.effective then store[op.key] = nil end
    else
      if cur == nil and opts.app then res = "NOT_FOUND"
      elseif cur == op.a then res = "OK"; if op.effective then store[op.key] = op.b end
      else res = "CAS_FAILED " .. (cur or "NOT_FOUND") end
    end
    if op.err then op.result = "ERR timeout"
    elseif not op.pending then op.result = res end
    ::next::
  end
  for _, op in ipairs(ops) do if op.pending then op.respond = nil end end
  return ops
end

local function record(ops)
  local h = synod.kv_history()
  for i, op in ipairs(ops) do
    local id = h:invoke(op.client, text(op), op.invoke * 1000)
    assert(id == i)
  end
  for i, op in ipairs(ops) do
    if op.respond then h:respond(i, op.result, op.respond * 1000) end
  end
  return h
end

local rng = require "support.rng"   -- seeded, and math.random left alone

describe("linearizability, randomised", function()
  it("accepts generated linearizable histories and catches one corrupted response", function()
    seeds.each({ 1, 2, 3, 4, 5, 6, 7, 8 }, function(seed)
      local rnd = rng(seed)
      local app = seed % 2 == 0
      local ops = generate { rnd = rnd, clients = 8, keys = 6, ops = 600, app = app }
      local v = record(ops):check()
      assert(v.ok, ("seed %d: generated history judged %s"):format(seed, tostring(v)))

      -- corruption 1: a get returns a value nobody ever wrote
      local gets = {}
      for i, op in ipairs(ops) do
        if op.kind == "get" and op.result and op.result:sub(1, 3) ~= "ERR" then gets[#gets + 1] = i end
      end
      local g = gets[rnd(1, #gets)]
      local saved = ops[g].result
      ops[g].result = app and "VALUE never-written" or "never-written"
      v = record(ops):check()
      assert(not v.ok and v.outcome == "violation", ("seed %d corruption 1: %s"):format(seed, tostring(v)))
      assert(v.key == ops[g].key and contains(v.ops, g), ("seed %d corruption 1 named %s"):format(seed, tostring(v)))
      ops[g].result = saved

      -- corruption 2: a stale read — a get returns the value of a put that a
      -- later completed write overwrote before the get began
      local done = 0
      for _, gi in ipairs(gets) do
        local gop = ops[gi]
        local planted = false
        for wi, w in ipairs(ops) do
          if planted then break end
          local w_writes = w.key == gop.key and w.result == "OK" and w.kind ~= "get"
          if w_writes and w.respond < gop.invoke then
            for pi, p in ipairs(ops) do
              if p.key == gop.key and p.kind == "put" and p.result == "OK" and p.respond < w.invoke
                  and gop.result ~= p.a and gop.result ~= "VALUE " .. p.a then
                local was = gop.result
                gop.result = app and "VALUE " .. p.a or p.a
                local cv = record(ops):check()
                assert(not cv.ok and cv.outcome == "violation",
                  ("seed %d stale read (get %d reads put %d, overwritten by %d): %s"):format(seed, gi, pi, wi, tostring(cv)))
                assert(cv.key == gop.key and contains(cv.ops, gi),
                  ("seed %d stale read: get %d not named: %s"):format(seed, gi, tostring(cv)))
                gop.result = was
                done = done + 1
                planted = true
                break
              end
            end
          end
        end
        if done >= 3 then break end
      end
      assert(done >= 1, ("seed %d: no stale read could be planted"):format(seed))
    end)
  end)

  it("accepts histories answered by the real key-value app, and catches a corrupted one", function()
    seeds.each({ 21, 22, 23 }, function(seed)
      local rnd = rng(seed)
      -- a small store, so that some puts are refused with ERR
      local kv = synod.kv { max_keys = 6 }
      local ops = generate { rnd = rnd, clients = 6, keys = 8, ops = 800, kv = kv,
                             values = seed % 2 == 0 and 5 or nil }
      kv:close()
      local refused, values = 0, 0
      for _, op in ipairs(ops) do
        if op.result and op.result:find("^ERR store") or op.result == "ERR too many keys" then refused = refused + 1 end
        if op.result and op.result:find("^VALUE ") then values = values + 1 end
      end
      assert(refused > 0 and values > 0, ("seed %d: %d refused, %d values read"):format(seed, refused, values))
      local v = record(ops):check()
      assert(v.ok, ("seed %d: the app's own history judged %s"):format(seed, tostring(v)))
      for i, op in ipairs(ops) do
        if op.kind == "get" and op.result and op.result:find("^VALUE ") then
          op.result = "VALUE never-written"
          v = record(ops):check()
          assert(v.outcome == "violation" and contains(v.ops, i), ("seed %d: %s"):format(seed, tostring(v)))
          break
        end
      end
    end)
  end)

  it("agrees with a brute-force reference on small arbitrary histories", function()
    seeds.each({ 11, 12, 13, 14 }, function(seed)
      local rnd = rng(seed)
      local agree, bad = 0, 0
      for _ = 1, 150 do
        local ops = generate { rnd = rnd, clients = 3, keys = 2, ops = 9, app = rnd(1, 2) == 1, max_dur = 6,
                               pending_pct = rnd(0, 30), values = rnd(1, 2) == 1 and rnd(2, 4) or nil }
        -- perturb some results: a third of histories become (likely) wrong
        if rnd(1, 3) == 1 then
          local i = rnd(1, #ops)
          local op = ops[i]
          if op.respond then
            local choices = { "OK", "NOT_FOUND", "v" .. rnd(1, 12), "VALUE v" .. rnd(1, 12),
                              "CAS_FAILED v" .. rnd(1, 12), "CAS_FAILED NOT_FOUND" }
            op.result = choices[rnd(1, #choices)]
          end
        end
        local want = reference_ok(ops)
        local v = record(ops):check()
        assert(v.ok == want, ("seed %d: reference says %s, checker says %s"):format(seed, tostring(want), tostring(v)))
        assert(v.outcome ~= "undecided")
        if not want then
          -- the ops named are a reason on their own: alone, they cannot be ordered
          local named = {}
          for _, id in ipairs(v.ops) do named[#named + 1] = ops[id] end
          assert(not reference_ok(named), ("seed %d: the ops named can be ordered: %s"):format(seed, tostring(v)))
          -- … and whatever the key's other ops did: writes told OK may or may
          -- not have taken effect (in their own windows), reads are ignored
          local claim, is_named = {}, {}
          for _, id in ipairs(v.ops) do is_named[id] = true end
          for id, op in ipairs(ops) do
            if op.key == v.key and not (op.result and op.result:sub(1, 3) == "ERR") then
              if is_named[id] or op.respond == nil then claim[#claim + 1] = op
              elseif op.kind ~= "get" and op.result == "OK" then
                claim[#claim + 1] = { key = op.key, kind = op.kind, a = op.a, b = op.b, invoke = op.invoke,
                                      respond = op.respond, maybe = true }
              end
            end
          end
          assert(not reference_ok(claim), ("seed %d: the others could explain the ops named: %s"):format(seed, tostring(v)))
        end
        agree = agree + 1
        if not want then bad = bad + 1 end
      end
      assert(bad >= 10 and bad <= 140, ("seed %d: only %d of %d histories not linearizable"):format(seed, bad, agree))
    end)
  end)
end)
