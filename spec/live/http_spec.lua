-- spec/live/http_spec.lua — the HTTP admin API of live nodes (--http,
-- --http-token), through curl against a 4-node PBFT cluster: every error
-- status (400 empty op, 401 without or with a wrong token, 404, 405, 413
-- over the 64 KiB body limit) answered as JSON {error, status} and never a
-- crash; a good POST /submit answers its sequence number and the KV result;
-- /status, /peers and /metrics answer what they promise.
local json = require "dkjson"
local live = require "support.live"

local N = 4
local TOKEN = "livespec-token-7f3a"

local function decode(body)
  local v, _, err = json.decode(body)
  assert(v ~= nil, ("not JSON (%s): %s"):format(tostring(err), body))
  return v
end

-- An error answer: the status, and a JSON body naming it with a reason.
local function assert_error(want, st, body)
  assert.equal(want, st, body)
  local v = decode(body)
  assert.equal(want, v.status)
  assert.equal("string", type(v.error))
  assert.is_true(#v.error > 0)
end

describe("#http live HTTP API", function()
  local c

  setup(function()
    c = live.cluster { n = N, http = true, token = TOKEN, tag = "http" }
    c:start()
  end)

  teardown(function() if c then c:down() end end)

  local function req(method, path, opts)
    opts = opts or {}
    if opts.token == nil then opts.token = TOKEN elseif opts.token == false then opts.token = nil end
    return c:http(1, method, path, opts)
  end

  it("answers 401 without the token and with a wrong one, 200 with it", function()
    assert_error(401, req("GET", "/status", { token = false }))
    assert_error(401, req("GET", "/status", { token = TOKEN .. "x" }))
    assert_error(401, req("POST", "/submit", { token = "nope", body = "put k unauthorised" }))
    -- A malformed Authorization header is no token either.
    assert_error(401, req("GET", "/status", { token = false, headers = { "Authorization: Basic " .. TOKEN } }))
    local st, body = req("GET", "/status")
    assert.equal(200, st, body)
    assert.equal(1, decode(body).id)
    -- The refused submission never ran.
    st, body = req("POST", "/submit", { body = "get k" })
    assert.equal(200, st, body)
    assert.equal("NOT_FOUND", decode(body).result)
  end)

  it("answers 400 for an empty operation, 404 for an unknown path, 405 for a wrong method", function()
    assert_error(400, req("POST", "/submit", { body = "" }))
    assert_error(400, req("POST", "/submit", { body = "  \n" }))
    assert_error(400, req("POST", "/propose"))
    assert_error(404, req("GET", "/nope"))
    assert_error(404, req("POST", "/submit/extra", { body = "put a b" }))
    assert_error(405, req("GET", "/submit"))
    assert_error(405, req("POST", "/status", { body = "x" }))
    assert_error(405, req("DELETE", "/peers"))
  end)

  it("answers 413 for a body over 64 KiB (and for an op over the op limit), and goes on serving", function()
    assert_error(413, req("POST", "/submit", { body = "put big " .. ("v"):rep(64 * 1024) }))
    assert_error(413, req("POST", "/submit", { body = "put big " .. ("v"):rep(8 * 1024) }))
    local st, body = req("GET", "/status")
    assert.equal(200, st, body)
    assert.is_true(c:alive(1))
  end)

  it("commits a good POST /submit and answers its sequence number and result", function()
    local st, body = req("POST", "/submit", { body = "put colour blue" })
    assert.equal(200, st, body)
    local put = decode(body)
    assert.equal("OK", put.result)
    assert.equal("number", type(put.seq))
    assert.is_true(put.seq >= 1)
    st, body = req("POST", "/submit", { body = "get colour\n" })
    assert.equal(200, st, body)
    local get = decode(body)
    assert.equal("VALUE blue", get.result)
    assert.is_true(get.seq > put.seq)
    -- The alias for one value.
    st, body = req("POST", "/propose?value=put%20shape%20round")
    assert.equal(200, st, body)
    assert.equal("OK", decode(body).result)
    -- Another node sees the same state.
    st, body = c:http(3, "POST", "/submit", { token = TOKEN, body = "get shape" })
    assert.equal(200, st, body)
    assert.equal("VALUE round", decode(body).result)
  end)

  it("serves /status, /peers and /metrics", function()
    local s = c:json(2, "/status")
    for _, k in ipairs({ "id", "view", "primary", "last_executed", "stable_checkpoint", "executed_ops",
                         "view_changes", "peers_connected" }) do
      assert.equal("number", type(s[k]), k)
    end
    assert.equal(2, s.id)
    assert.equal("pbft", s.protocol)
    assert.equal(N - 1, s.peers_connected)
    assert.is_true(s.executed_ops >= 3)
    assert.equal("number", type(s.counters.sent))
    assert.equal("number", type(s.counters.received))
    assert.equal("table", type(s.counters.dropped))
    assert.equal("table", type(s.counters.rejected))

    local peers = c:json(2, "/peers")
    assert.equal(N - 1, #peers)
    for _, p in ipairs(peers) do
      assert.are_not.equal(2, p.id)
      assert.equal("connected", p.state)
      assert.truthy(p.address:match("^127%.0%.0%.1:%d+$"), p.address)
    end

    local st, text = c:http(2, "GET", "/metrics", { token = TOKEN })
    assert.equal(200, st)
    local sent = tonumber(text:match("\nsynod_messages_sent_total (%d+)"))
    assert.is_not_nil(sent, text)
    assert.is_true(sent > 0)
    assert.truthy(text:find("synod_commit_latency_seconds_count", 1, true))
  end)
end)
