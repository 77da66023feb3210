-- The HTTP/1.1 server the live node mounts its admin API on
-- (engine/live/http.c) and its JSON writer (engine/live/json.c):
-- the request assembler without sockets (every request shape, every
-- limit and error, any chunking of the bytes), then the real uv server
-- against a real uv client on a private loop (answers in request order,
-- answers given later, the token, closing after errors, the bounds).
--
-- Randomised specs take seeds from a fixed list plus SYNOD_SEEDS; a failure
-- prints the seed and the command that replays it.
local synod = require "synod"
local seeds = require "support.seeds"
local rng = require "support.rng"

local live = synod.live
local limits = live.http_limits

-- Answers in raw bytes → { {status=, reason=, headers={lowercased}, body=} … }.
-- heads[i] true: answer i has no body (it answers a HEAD).
local function responses(raw, heads)
  local out, pos = {}, 1
  heads = heads or {}
  while pos <= #raw do
    local line_end = raw:find("\r\n\r\n", pos, true)
    assert(line_end, "an answer's headers do not end: " .. raw:sub(pos, pos + 80))
    local head = raw:sub(pos, line_end - 1)
    local status, reason = head:match("^HTTP/1%.1 (%d%d%d) ([^\r]*)")
    assert(status, "not a status line: " .. head:sub(1, 60))
    local headers = {}
    for name, value in head:gmatch("\r\n([^:\r]+): ([^\r]*)") do headers[name:lower()] = value end
    pos = line_end + 4
    local body = ""
    local n = tonumber(status) >= 200 and not heads[#out + 1] and tonumber(headers["content-length"]) or 0
    body = raw:sub(pos, pos + n - 1)
    pos = pos + n
    if tonumber(status) >= 200 then
      out[#out + 1] = { status = tonumber(status), reason = reason, headers = headers, body = body }
    else
      out.interim = (out.interim or 0) + 1
    end
  end
  return out
end

local function get(path, extra) return ("GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n"):format(path, extra or "") end
local function post(path, body, extra)
  return ("POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n%s"):format(path, #body, extra or "", body)
end
local function chunked(path, chunks)
  local t = { ("POST %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"):format(path) }
  for _, c in ipairs(chunks) do t[#t + 1] = ("%x\r\n%s\r\n"):format(#c, c) end
  t[#t + 1] = "0\r\n\r\n"
  return table.concat(t)
end

-- Every byte its own chunk.
local function bytes_of(s)
  local t = {}
  for i = 1, #s do t[i] = s:sub(i, i) end
  return t
end

describe("http request assembler", function()
  it("parses a GET: method, path without the query, the query, no body, keep-alive", function()
    local reqs, status = live.http_parse(get("/status?verbose=1&x=a%20b"))
    assert.is_nil(status)
    assert.equal(1, #reqs)
    local r = reqs[1]
    assert.equal("GET", r.method)
    assert.equal("/status", r.path)
    assert.equal("verbose=1&x=a%20b", r.query)
    assert.equal("", r.body)
    assert.is_true(r.keep_alive)
    assert.is_false(r.head)
    assert.is_nil(r.token)
    assert.is_false(r.authorization)
  end)

  it("parses a POST body byte for byte, NULs and high bytes included", function()
    local body = "put k \0v\255\r\n"
    local reqs = live.http_parse(post("/submit", body))
    assert.equal("POST", reqs[1].method)
    assert.equal("/submit", reqs[1].path)
    assert.equal(body, reqs[1].body)
    assert.equal("", reqs[1].query)
  end)

  it("takes an absolute-form target, a bare query and a HEAD", function()
    local reqs = live.http_parse("GET http://node:8100/peers?all HTTP/1.1\r\n\r\n" ..
                                 "GET /?q HTTP/1.1\r\n\r\nHEAD /status HTTP/1.1\r\n\r\n")
    assert.equal(3, #reqs)
    assert.same({ "/peers", "all" }, { reqs[1].path, reqs[1].query })
    assert.same({ "/", "q" }, { reqs[2].path, reqs[2].query })
    assert.same({ "HEAD", true }, { reqs[3].method, reqs[3].head })
  end)

  it("reads the bearer token: scheme in any case, spaces trimmed; other schemes carry none", function()
    local reqs = live.http_parse(get("/", "Authorization: bEaReR   s3cr3t  \r\n") ..
                                 get("/", "Authorization: Basic dTpw\r\n") ..
                                 get("/", "Authorization: Bearer\r\n"))
    assert.equal("s3cr3t", reqs[1].token)
    assert.is_true(reqs[1].authorization)
    assert.is_nil(reqs[2].token)
    assert.is_true(reqs[2].authorization)
    assert.is_nil(reqs[3].token)
  end)

  it("hands pipelined requests over in order, with or without pausing after each", function()
    local wire = get("/a") .. post("/b", "one") .. chunked("/c", { "tw", "o" }) .. get("/d")
    for _, pause in ipairs({ false, true }) do
      local reqs = live.http_parse(wire, { pause = pause })
      assert.equal(4, #reqs)
      assert.same({ "/a", "/b", "/c", "/d" }, { reqs[1].path, reqs[2].path, reqs[3].path, reqs[4].path })
      assert.same({ "", "one", "two", "" }, { reqs[1].body, reqs[2].body, reqs[3].body, reqs[4].body })
    end
  end)

  it("ends the connection at Connection: close or HTTP/1.0, ignoring what follows", function()
    local reqs, status = live.http_parse(get("/a", "Connection: close\r\n") .. "garbage that would be a 400")
    assert.is_nil(status)
    assert.equal(1, #reqs)
    assert.is_false(reqs[1].keep_alive)
    reqs = live.http_parse("GET /old HTTP/1.0\r\n\r\n" .. get("/never"))
    assert.equal(1, #reqs)
    assert.is_false(reqs[1].keep_alive)
    reqs = live.http_parse("GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" .. get("/next"))
    assert.equal(2, #reqs)
    assert.is_true(reqs[1].keep_alive)
  end)

  it("de-chunks a chunked body up to exactly the body limit", function()
    local max = limits.body_bytes
    local piece = ("x"):rep(max // 4)
    local reqs, status = live.http_parse(chunked("/c", { piece, piece, piece, piece }))
    assert.is_nil(status)
    assert.equal(max, #reqs[1].body)
    reqs, status = live.http_parse(post("/p", ("y"):rep(max)))
    assert.is_nil(status)
    assert.equal(max, #reqs[1].body)
  end)

  it("refuses malformed input with 400 and http-parser's error name, after the requests before it", function()
    local cases = {
      { "BREW /pot HTTP/1.1\r\n\r\n", "HPE_INVALID_METHOD" },
      { "GET / HTTP/1.1x\r\n\r\n", "HPE_INVALID_VERSION" },
      { "GET / HTTP/1.1\r\nBad(Header: x\r\n\r\n", "HPE_INVALID_HEADER_TOKEN" },
      { "POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n", "HPE_INVALID_CONTENT_LENGTH" },
      { "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "HPE_UNEXPECTED_CONTENT_LENGTH" },
      { "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HPE_INVALID_CHUNK_SIZE" },
      { get("/", "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n"), "duplicate Authorization header" },
    }
    for _, c in ipairs(cases) do
      local reqs, status, reason = live.http_parse(get("/first") .. c[1] .. get("/never"))
      assert.equal(400, status, c[2])
      assert.equal(c[2], reason)
      assert.equal(1, #reqs, c[2])
      assert.equal("/first", reqs[1].path)
    end
  end)

  it("refuses a Content-Length over the body limit from the header alone (413)", function()
    local head = ("POST /submit HTTP/1.1\r\nContent-Length: %d\r\n\r\n"):format(limits.body_bytes + 1)
    local reqs, status, reason = live.http_parse(head)         -- no body byte was sent
    assert.equal(0, #reqs)
    assert.equal(413, status)
    assert.equal(("body over %d bytes"):format(limits.body_bytes), reason)
  end)

  it("refuses a chunked body over the limit from the chunk size line (413)", function()
    local head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    local _, status = live.http_parse(head .. ("%x\r\n"):format(limits.body_bytes + 1))
    assert.equal(413, status)
    local half = ("z"):rep(limits.body_bytes // 2)
    local _, status2 = live.http_parse(chunked("/", { half, half, "!" }))
    assert.equal(413, status2)
  end)

  it("refuses a URL over SYN_MAX_HTTP_URL_BYTES (414) and takes one at the limit", function()
    local at = "/" .. ("u"):rep(limits.url_bytes - 1)
    local reqs, status = live.http_parse(get(at))
    assert.is_nil(status)
    assert.equal(at, reqs[1].path)
    local _, status2, reason = live.http_parse(get(at .. "u"))
    assert.equal(414, status2)
    assert.equal(("URL over %d bytes"):format(limits.url_bytes), reason)
  end)

  it("refuses header bytes over SYN_MAX_HTTP_HEADER_BYTES and a long Authorization (431)", function()
    local _, status, reason = live.http_parse(get("/", "X-Big: " .. ("h"):rep(limits.header_bytes) .. "\r\n"))
    assert.equal(431, status)
    assert.equal(("headers over %d bytes"):format(limits.header_bytes), reason)
    local many = {}
    for i = 1, limits.header_bytes // 10 do many[i] = ("X-H%05d: %s\r\n"):format(i, "vvvvv") end
    local _, status2 = live.http_parse(get("/", table.concat(many)))
    assert.equal(431, status2)
    local _, status3, reason3 = live.http_parse(get("/", "Authorization: Bearer " .. ("t"):rep(limits.auth_bytes) .. "\r\n"))
    assert.equal(431, status3)
    assert.equal(("Authorization over %d bytes"):format(limits.auth_bytes), reason3)
    -- Whitespace never reaches a header callback; http-parser's raw count catches it.
    local _, status4, reason4 = live.http_parse(get("/", "X:" .. (" "):rep(limits.url_bytes + limits.header_bytes + 1024) .. "v\r\n"))
    assert.equal(431, status4)
    assert.equal("HPE_HEADER_OVERFLOW", reason4)
  end)

  it("checks the bearer token: missing, wrong, shorter, longer and right", function()
    local opts = { token = "s3cret" }
    local function one(extra) return live.http_parse(get("/status", extra), opts) end
    assert.same({ {}, 401, "bearer token required" }, { one("") })
    assert.same({ {}, 401, "bearer token required" }, { one("Authorization: Basic czNjcmV0\r\n") })
    assert.same({ {}, 401, "bearer token does not match" }, { one("Authorization: Bearer s3creT\r\n") })
    assert.same({ {}, 401, "bearer token does not match" }, { one("Authorization: Bearer s3cre\r\n") })
    assert.same({ {}, 401, "bearer token does not match" }, { one("Authorization: Bearer s3crett\r\n") })
    local reqs, status = one("Authorization: Bearer s3cret\r\n")
    assert.is_nil(status)
    assert.equal("s3cret", reqs[1].token)
  end)

  it("gives the same requests and errors when the bytes arrive one at a time", function()
    local wire = get("/a?b=c", "Authorization: Bearer tok\r\n") .. post("/p", "body\0!") ..
                 chunked("/c", { "abc", "d", "efg" }) .. "HEAD /h HTTP/1.1\r\n\r\n"
    local whole = live.http_parse(wire)
    local split = live.http_parse(bytes_of(wire))
    assert.equal(4, #split)
    assert.same(whole, split)
    local errors = {
      { ("POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n"):format(limits.body_bytes + 1), 413 },
      { get("/" .. ("u"):rep(limits.url_bytes)), 414 },
      { get("/", "X: " .. ("h"):rep(limits.header_bytes) .. "\r\n"), 431 },
      { "GET / HTTP/1.1\r\nX\0: y\r\n\r\n", 400 },
    }
    for _, e in ipairs(errors) do
      local _, status = live.http_parse(bytes_of(e[1]))
      assert.equal(e[2], status)
    end
  end)

  it("reassembles random pipelines from random chunkings", function()
    seeds.each({ 1, 2, 3, 4, 5 }, function(seed)
      local rnd = rng(seed)
      local want, parts = {}, {}
      for i = 1, 40 do
        local kind = rnd(1, 3)
        local body = {}
        for j = 1, rnd(0, kind == 1 and 0 or 3000) do body[j] = string.char(rnd(0, 255)) end
        body = table.concat(body)
        local path = ("/r%d"):format(i)
        if kind == 1 then parts[i] = get(path .. "?i=" .. i)
        elseif kind == 2 then parts[i] = post(path, body)
        else
          local chunks, at = {}, 1
          while at <= #body do
            local n = rnd(1, 700)
            chunks[#chunks + 1] = body:sub(at, at + n - 1)
            at = at + n
          end
          parts[i] = chunked(path, chunks)
        end
        want[i] = { path = path, body = body }
      end
      local wire = table.concat(parts)
      local chunks, at = {}, 1
      while at <= #wire do
        local n = rnd(1, 10) == 1 and 1 or rnd(1, 2000)
        chunks[#chunks + 1] = wire:sub(at, at + n - 1)
        at = at + n
      end
      local reqs, status, reason = live.http_parse(chunks, { pause = rnd(0, 1) == 1 })
      assert.is_nil(status, reason)
      assert.equal(#want, #reqs)
      for i = 1, #want do
        assert.equal(want[i].path, reqs[i].path, "request " .. i)
        assert.equal(want[i].body, reqs[i].body, "request " .. i)
      end
    end)
  end)

  it("finds and percent-decodes a query parameter", function()
    local q = "value=put%20k+v%2B1&empty=&flag&x=%00%ff&value=second"
    assert.equal("put k v+1", live.http_query(q, "value"))     -- the first one
    assert.equal("", live.http_query(q, "empty"))
    assert.equal("", live.http_query(q, "flag"))
    assert.equal("\0\255", live.http_query(q, "x"))
    assert.is_nil(live.http_query(q, "val"))
    assert.is_nil(live.http_query("", "value"))
    assert.has_error(function() live.http_query("v=%4", "v") end, "http_query: parse error")
    assert.has_error(function() live.http_query("v=%zz", "v") end, "http_query: parse error")
  end)

  it("never crashes on random or mutated input, and answers only with its own statuses", function()
    seeds.each({ 11, 12, 13 }, function(seed)
      local rnd = rng(seed)
      local base = get("/s?x=1", "Authorization: Bearer t\r\n") .. post("/p", "abc") .. chunked("/c", { "x", "yz" })
      local allowed = { [400] = true, [413] = true, [414] = true, [431] = true }
      local refused = 0
      for _ = 1, 2000 do
        local b = { base:byte(1, -1) }
        if rnd(1, 4) == 1 then
          b = {}
          for j = 1, rnd(1, 300) do b[j] = rnd(0, 255) end
        else
          for _ = 1, rnd(1, 6) do b[rnd(1, #b)] = rnd(0, 255) end
        end
        local s = string.char(table.unpack(b))
        local chunks, at = {}, 1
        while at <= #s do
          local n = rnd(1, 64)
          chunks[#chunks + 1] = s:sub(at, at + n - 1)
          at = at + n
        end
        local reqs, status = live.http_parse(chunks, { pause = rnd(0, 1) == 1 })
        assert.is_table(reqs)
        if status then
          assert.is_true(allowed[status], "status " .. tostring(status))
          refused = refused + 1
        end
      end
      assert.is_true(refused > 0)
    end)
  end)
end)

describe("json writer", function()
  local json = live.json

  it("escapes quotes, backslashes, control characters and DEL", function()
    assert.equal([["a\"b\\c/d"]], json('a"b\\c/d'))
    assert.equal([["\b\f\n\r\t\u0000\u001f\u007f"]], json("\b\f\n\r\t\0\31\127"))
    assert.equal([["plain text, é, 中, 😀"]], json("plain text, é, 中, 😀"))
  end)

  it("turns every byte that is not well-formed UTF-8 into U+FFFD", function()
    local cases = {
      { "\255", [["\ufffd"]] },
      { "a\192\128b", [["a\ufffd\ufffdb"]] },              -- overlong NUL
      { "\224\128\128", [["\ufffd\ufffd\ufffd"]] },         -- overlong 3-byte
      { "\237\160\128", [["\ufffd\ufffd\ufffd"]] },         -- a surrogate
      { "\244\144\128\128", [["\ufffd\ufffd\ufffd\ufffd"]] },  -- over U+10FFFF
      { "\226\130", [["\ufffd\ufffd"]] },                   -- cut short
      { "\226\130\172", [["€"]] },                          -- whole: kept
    }
    for _, c in ipairs(cases) do assert.equal(c[2], json(c[1])) end
  end)

  it("writes objects with sorted keys, arrays, numbers, booleans and null", function()
    assert.equal([[{"a":[1,-2,3.5],"b":{"x":true,"y":false},"c":"s","z":{}}]],
      json({ z = {}, c = "s", a = { 1, -2, 3.5 }, b = { y = false, x = true } }))
    assert.equal("null", json(nil))
    assert.equal("9223372036854775807", json(math.maxinteger))
    assert.equal("-9223372036854775808", json(math.mininteger))
    assert.equal("[null]", json({ 0 / 0 }))
    assert.equal([[{"1":"a","2":"b","k":1}]], json({ ["1"] = "a", ["2"] = "b", k = 1 }))
  end)

  it("refuses what JSON cannot say: functions, non-string keys, cycles", function()
    assert.has_error(function() json({ f = print }) end, "json: cannot encode a function value")
    assert.has_error(function() json({ [true] = 1 }) end, "json: object keys must be strings, got boolean")
    local t = {}
    t.self = t
    assert.has_error(function() json(t) end, "json: nested deeper than 32 (a cycle?)")
    local deep = {}
    for _ = 1, 31 do deep = { deep } end
    assert.equal(("["):rep(31) .. "{}" .. ("]"):rep(31), json(deep))
  end)
end)

describe("http server over real sockets", function()
  local selftest = live.http_selftest

  it("answers a GET with the handler's answer and counts it", function()
    local raw, info = selftest { requests = { get("/status") } }
    local rs = responses(raw)
    assert.equal(1, #rs)
    assert.equal(200, rs[1].status)
    assert.equal("application/json", rs[1].headers["content-type"])
    assert.equal("keep-alive", rs[1].headers["connection"])
    assert.equal([[{"body":"","method":"GET","path":"/status","query":""}]], rs[1].body)
    assert.is_false(info.timed_out)
    assert.equal(1, info.counters.requests)
    assert.equal(1, info.counters.s2xx)
    assert.equal(1, info.counters.conns_accepted)
  end)

  it("answers pipelined requests in request order, more than the pipeline holds", function()
    local reqs = {}
    for i = 1, limits.pipeline * 3 do reqs[i] = post("/p" .. i, "op" .. i) end
    local raw, info = selftest {
      requests = { table.concat(reqs) },
      respond = function(req) return 200, req.path .. ":" .. req.body, "text/plain" end,
    }
    local rs = responses(raw)
    assert.equal(#reqs, #rs)
    for i = 1, #reqs do assert.equal(("/p%d:op%d"):format(i, i), rs[i].body) end
    assert.equal("text/plain", rs[1].headers["content-type"])
    assert.equal(#reqs, info.counters.requests)
  end)

  it("keeps request order when the handler answers out of order, later", function()
    local answered = {}
    local raw = selftest {
      requests = { get("/first") .. get("/second") .. get("/third") },
      respond = function(req)
        -- /first waits until /third has been answered, /second until /first has.
        if req.path == "/first" and not answered["/third"] then return nil end
        if req.path == "/second" and not answered["/first"] then return nil end
        answered[req.path] = true
        answered[#answered + 1] = req.path
        return 200, req.path
      end,
    }
    local rs = responses(raw)
    assert.same({ "/first", "/second", "/third" }, { rs[1].body, rs[2].body, rs[3].body })
    assert.same({ "/third", "/first", "/second" }, { answered[1], answered[2], answered[3] })   -- really out of order
  end)

  it("answers after the handler returned, and reports too-late answers once the client is gone", function()
    local raw, info = selftest {
      requests = { post("/submit", "put k v") },
      respond = function(req) if req.tries < 3 then return nil end return 200, { seq = 7, result = "OK" } end,
    }
    local rs = responses(raw)
    assert.equal([[{"result":"OK","seq":7}]], rs[1].body)
    assert.same({}, info.answer_errors)
    local raw2, info2 = selftest {
      requests = { post("/submit", "put k v") },
      hangup = true,
      respond = function(req) if req.tries == 0 then return nil end return 200, "late" end,
    }
    assert.equal("", raw2)
    assert.same({ "invalid state" }, info2.answer_errors)
    assert.equal(1, info2.counters.aborted)
    assert.equal(1, info2.counters.late_answers)
  end)

  it("answers 401 with a JSON body and WWW-Authenticate without the token, and goes on", function()
    local raw, info = selftest {
      token = "s3cret",
      requests = { get("/status") .. get("/status", "Authorization: Bearer nope\r\n") ..
                   get("/status", "Authorization: Bearer s3cret\r\n") },
      respond = function(req) return 200, "ok:" .. req.token end,
    }
    local rs = responses(raw)
    assert.equal(3, #rs)
    assert.same({ 401, 401, 200 }, { rs[1].status, rs[2].status, rs[3].status })
    assert.equal("Bearer", rs[1].headers["www-authenticate"])
    assert.equal([[{"error":"bearer token required","status":401}]], rs[1].body)
    assert.equal([[{"error":"bearer token does not match","status":401}]], rs[2].body)
    assert.equal("ok:s3cret", rs[3].body)
    assert.is_nil(rs[3].headers["www-authenticate"])
    assert.equal(2, info.counters.unauthorized)
    assert.equal(2, info.counters.s4xx)
    assert.is_false(info.closed)
  end)

  it("answers each refused stream with its status, after the answers owed, then closes", function()
    local cases = {
      { "BREW / HTTP/1.1\r\n\r\n", 400, "HPE_INVALID_METHOD" },
      { ("POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n"):format(limits.body_bytes + 1), 413,
        ("body over %d bytes"):format(limits.body_bytes) },
      { get("/" .. ("u"):rep(limits.url_bytes)), 414, ("URL over %d bytes"):format(limits.url_bytes) },
      { get("/", "X: " .. ("h"):rep(limits.header_bytes) .. "\r\n"), 431,
        ("headers over %d bytes"):format(limits.header_bytes) },
    }
    for _, c in ipairs(cases) do
      local raw, info = selftest { requests = { get("/ok") .. c[1] .. get("/never") } }
      local rs = responses(raw)
      assert.equal(2, #rs)
      assert.equal(200, rs[1].status)
      assert.equal(c[2], rs[2].status)
      assert.equal("close", rs[2].headers["connection"])
      assert.equal(('{"error":"%s","status":%d}'):format(c[3], c[2]), rs[2].body)
      assert.is_true(info.closed, "the server closes after " .. c[2])
      assert.equal(1, info.counters.parse_errors)
      assert.equal(1, info.counters.requests)     -- /never was not read
    end
  end)

  it("closes after answering Connection: close, and sends HEAD answers without a body", function()
    local raw, info = selftest {
      requests = { "HEAD /status HTTP/1.1\r\n\r\n" .. get("/bye", "Connection: close\r\n") },
      respond = function(req) return 200, "0123456789" end,
    }
    local rs = responses(raw, { true })
    assert.equal(2, #rs)
    assert.equal("10", rs[1].headers["content-length"])
    assert.equal("", rs[1].body)
    assert.equal("0123456789", rs[2].body)
    assert.equal("close", rs[2].headers["connection"])
    assert.is_true(info.closed)
  end)

  it("writes error answers as JSON, with the status text when no reason is given", function()
    local raw = selftest {
      requests = { get("/nope") .. get("/method") },
      respond = function(req)
        if req.path == "/nope" then return 404 end
        return 405, nil, "use POST"
      end,
    }
    local rs = responses(raw)
    assert.equal([[{"error":"Not Found","status":404}]], rs[1].body)
    assert.equal([[{"error":"use POST","status":405}]], rs[2].body)
    assert.equal("Method Not Allowed", rs[2].reason)
  end)

  it("assembles a request split over separate writes, and sends 100 Continue when asked", function()
    local raw = selftest {
      requests = { "POST /submit HTTP/1.1\r\nHo", "st: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", "he", "llo" },
      gap_ms = 20,
      respond = function(req) return 200, req.body end,
    }
    local rs = responses(raw)
    assert.equal(1, rs.interim)
    assert.equal("hello", rs[1].body)
    assert.equal(1, select(2, raw:gsub("HTTP/1.1 100 Continue\r\n\r\n", "")))
    assert.equal(1, raw:find("HTTP/1.1 100 Continue", 1, true))
  end)

  it("refuses connections over the maximum and counts them, serving the ones it holds", function()
    local raw, info = selftest { requests = { get("/a") }, max_conns = 1, extra_conns = 3 }
    assert.equal(200, responses(raw)[1].status)
    assert.equal(3, info.counters.conns_refused)
    assert.equal(3, info.extras_closed)
    assert.equal(1, info.counters.conns_accepted)
  end)

  it("closes a connection that stays idle past the idle timeout", function()
    local raw, info = selftest { requests = { get("/a") }, idle_timeout_ms = 50, expect = 2 }
    assert.equal(1, #responses(raw))
    assert.is_true(info.closed)
    assert.equal(1, info.counters.idle_closed)
    -- A request whose answer is still owed is not idle.
    local raw2, info2 = selftest {
      requests = { get("/slow") },
      idle_timeout_ms = 20,
      respond = function(req) if req.tries < 60 then return nil end return 200, "done" end,
    }
    assert.equal("done", responses(raw2)[1].body)
    assert.equal(0, info2.counters.idle_closed)
  end)

  it("refuses an answer over the response limit and keeps the request open for a smaller one", function()
    local raw, info = selftest {
      requests = { get("/big") },
      respond = function(req)
        if req.tries == 0 then return 200, ("x"):rep(8 * 1024 * 1024 + 1) end
        return 200, "smaller"
      end,
    }
    assert.equal("smaller", responses(raw)[1].body)
    assert.same({ "too big" }, info.answer_errors)
  end)

  it("closes a connection whose queued answers pass SYN_MAX_HTTP_OUT_BYTES, and counts it", function()
    local big = ("y"):rep(7 * 1024 * 1024)
    local _, info = selftest {
      requests = { get("/1") .. get("/2") .. get("/3") },
      respond = function(req) if req.tries == 0 then return nil end return 200, big end,
      timeout_ms = 5000,
    }
    assert.same({ "limit exceeded" }, info.answer_errors)
    assert.equal(1, info.counters.slow_closed)
    assert.is_true(info.closed)
  end)

  it("raises a Lua error from respond after answering 500", function()
    assert.has_error(function()
      selftest { requests = { get("/x") }, respond = function() error("boom") end }
    end)
    local ok, err = pcall(selftest, { requests = { get("/x") }, respond = function() error("boom") end })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("boom", 1, true))
  end)

  it("checks its arguments", function()
    assert.has_error(function() selftest {} end, "bad field 'requests' to 'http_selftest' (list of strings expected)")
    assert.has_error(function() selftest { requests = { get("/") }, timeout_ms = 10000 } end,
      "bad field 'timeout_ms' to 'http_selftest' (1..5000 expected, got 10000)")
    assert.has_error(function() live.http_parse(42) end,
      "bad argument #1 to 'http_parse' (string or list of strings expected, got number)")
  end)
end)
