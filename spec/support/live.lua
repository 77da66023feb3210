-- support/live.lua — real `synod node` processes for spec/live: start a
-- cluster on loopback (ports from -p 0 and --http 0, read back from each
-- node's first line), talk to its nodes (synod attach, HTTP through curl or
-- a keep-alive bash client, raw TCP through bash's /dev/tcp), stop them.
--
--   local live = require "support.live"
--   local c = live.cluster { n = 4, protocol = "pbft", params = { view_change_ms = 1000 } }
--   finally(function() c:down() end)     -- every process, even on failure
--   c:start()                             -- node 0 first, the others with -b
--   c:wait("4 nodes executed 10", function() ... end, 20)
--   -- or: live.with_cluster(opts, function(c) ... end), which always downs it
--
-- Rules it keeps: every process it starts is recorded (pid file written by
-- the wrapper shell) and killed by c:down(); a watchdog kills a node whose
-- test process died (an interrupted busted leaves nothing behind); every
-- wait is a poll with a deadline whose error names what it waited for and
-- the tail of the nodes' logs; every command it runs is bounded by
-- `timeout` or curl's --max-time; traffic goes to 127.0.0.1 only.
-- Never asserts: it returns values and raises on a broken harness.
local system = require "system"

local M = {}

M.SYNOD = os.getenv("SYNOD_BIN") or "./synod"

-- ---- small tools ----

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = q

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
M.read_file = read_file

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end
M.write_file = write_file

-- Every command starts without LD_PRELOAD: `make asan` preloads libasan
-- into busted, and curl (among others) hangs with it, past its own
-- --max-time; the node binary is not the sanitizer build either.
local CLEAN_ENV = "unset LD_PRELOAD\n"

-- Runs cmd with /bin/sh; returns stdout (stderr joined unless redirected) and the exit code.
local function sh(cmd)
  local p = io.popen(CLEAN_ENV .. cmd .. "\necho \"rc=$?\"", "r")
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return out:gsub("rc=%d+%s*$", ""), rc
end
M.sh = sh

function M.now() return system.monotime() end
function M.sleep(s) system.sleep(s) end

-- The pid of this Lua process (the shell's parent): the watchdogs watch it.
local owner_pid
local function owner()
  if not owner_pid then owner_pid = assert(tonumber((sh("echo $PPID")))) end
  return owner_pid
end

function M.tmpdir(tag)
  local out, rc = sh("mktemp -d /tmp/synod-live-" .. (tag or "x") .. ".XXXXXX")
  assert(rc == 0, "mktemp failed: " .. out)
  return (out:gsub("%s+$", ""))
end

function M.alive(pid)
  if not pid then return false end
  local _, rc = sh("kill -0 " .. pid .. " 2>/dev/null")
  return rc == 0
end

-- Resident memory of a process in KiB (VmRSS), or nil when it is gone.
function M.rss_kb(pid)
  local s = read_file("/proc/" .. pid .. "/status")
  return s and tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- Peak resident memory of a process in KiB (VmHWM), or nil when it is gone.
function M.hwm_kb(pid)
  local s = read_file("/proc/" .. pid .. "/status")
  return s and tonumber(s:match("VmHWM:%s*(%d+)"))
end

-- Open file descriptors of a process, or nil when it is gone.
function M.fds(pid)
  local out, rc = sh("ls /proc/" .. pid .. "/fd 2>/dev/null | wc -l")
  return rc == 0 and tonumber(out) or nil
end

-- The last n lines of a file (a log), for error messages.
function M.tail(path, n)
  local s = read_file(path) or ("(no file " .. path .. ")")
  local lines = {}
  for line in s:gmatch("[^\n]*") do lines[#lines + 1] = line end
  while #lines > 0 and lines[#lines] == "" do lines[#lines] = nil end
  local from = math.max(1, #lines - (n or 15) + 1)
  return table.concat(lines, "\n", from)
end

-- Polls fn() every `every` seconds until it returns a truthy value (which
-- wait returns) or `timeout_s` pass; then raises "timed out after Ts waiting
-- for WHAT" with the last thing fn said (its second return) and context().
function M.wait(what, fn, timeout_s, context, every)
  local deadline = M.now() + timeout_s
  local last
  while true do
    local ok, v, why = pcall(fn)
    if ok and v then return v end
    if not ok and type(v) == "table" and v.fatal then error(v.fatal, 2) end
    last = ok and why or v
    if M.now() >= deadline then
      error(("timed out after %gs waiting for %s%s%s"):format(timeout_s, what,
        last ~= nil and ("\n  last: " .. tostring(last)) or "",
        context and ("\n" .. context()) or ""), 2)
    end
    M.sleep(every or 0.1)
  end
end

-- Raised inside a wait's fn: ends the wait at once with msg.
function M.fatal(msg) error({ fatal = msg }, 0) end

-- Whether this synod's node takes --http (the HTTP admin API is built in).
local http_support
function M.has_http()
  if http_support == nil then
    local out = sh(q(M.SYNOD) .. " node --help 2>&1")
    http_support = out:find("--http", 1, true) ~= nil
  end
  return http_support
end

-- ---- processes ----

-- Starts argv (a list of words) in the background with stdout and stderr
-- into `log`; returns the pid. The wrapper shell records the pid, waits for
-- the process, and writes its exit code to rc_path; its watchdog SIGKILLs
-- the process if this Lua process goes away first.
function M.spawn(argv, log, pid_path, rc_path)
  local words = {}
  for i, a in ipairs(argv) do words[i] = q(a) end
  os.remove(pid_path); os.remove(rc_path)
  local cmd = ("( %s >%s 2>&1 </dev/null & p=$!; echo $p >%s; "
    .. "( while kill -0 %d 2>/dev/null && kill -0 $p 2>/dev/null; do sleep 1; done; "
    .. "kill -0 %d 2>/dev/null || kill -9 $p 2>/dev/null ) >/dev/null 2>&1 & "
    .. "wait $p; echo $? >%s.tmp; mv %s.tmp %s ) >/dev/null 2>&1 &")
    :format(table.concat(words, " "), q(log), q(pid_path), owner(), owner(), q(rc_path), q(rc_path), q(rc_path))
  os.execute(CLEAN_ENV .. cmd)
  return M.wait("the pid of " .. argv[1] .. " " .. (argv[2] or ""), function()
    return tonumber(read_file(pid_path) or "")
  end, 5)
end

-- ---- a cluster ----

local Cluster = {}
Cluster.__index = Cluster

-- opts: n (4), protocol ("pbft"), seed (keygen --seed; random keys when nil),
-- params ({name = value}), clients, words, rate (tom), http (true: each node
-- serves HTTP on a free port), token (--http-token), extra (more argv words),
-- dir (default a fresh temp dir), log_level.
function M.cluster(opts)
  opts = opts or {}
  local c = setmetatable({
    n = opts.n or 4,
    protocol = opts.protocol or "pbft",
    opts = opts,
    dir = opts.dir or M.tmpdir(opts.tag or opts.protocol or "pbft"),
    nodes = {},
    procs = {},   -- every pid this cluster started, for down()
  }, Cluster)
  c.keys = c.dir .. "/keys"
  local args = { M.SYNOD, "keygen", "--out", c.keys, "-n", tostring(c.n) }
  if opts.seed then args[#args + 1] = "--seed"; args[#args + 1] = tostring(opts.seed) end
  local words = {}
  for i, a in ipairs(args) do words[i] = q(a) end
  local out, rc = sh("timeout 20 " .. table.concat(words, " ") .. " 2>&1")
  assert(rc == 0, "synod keygen failed: " .. out)
  for i = 0, c.n - 1 do
    c.nodes[i] = { id = i, data = ("%s/node-%d"):format(c.dir, i), log = ("%s/node-%d.log.1"):format(c.dir, i),
                   pid_path = ("%s/node-%d.pid"):format(c.dir, i), rc_path = ("%s/node-%d.rc"):format(c.dir, i),
                   starts = 0 }
  end
  return c
end

-- A list of ids (nil: every node) as a set.
local function idset(c, ids)
  local set = {}
  if ids then for _, i in ipairs(ids) do set[i] = true end
  else for i = 0, c.n - 1 do set[i] = true end end
  return set
end

-- Runs fn(c) with a new cluster (opts as for M.cluster) and always stops
-- it afterwards, also when fn fails (the error is raised again).
function M.with_cluster(opts, fn)
  local c = M.cluster(opts)
  local ok, err = xpcall(fn, debug.traceback, c)
  c:down()
  if not ok then error(err, 0) end
  return c
end

function Cluster:node(i) return assert(self.nodes[i], "no node " .. tostring(i)) end

-- The logs' tails, for a timeout's message.
function Cluster:context(ids)
  local parts, set = {}, idset(self, ids)
  for i = 0, self.n - 1 do
    if set[i] and self.nodes[i].pid then
      local nd = self.nodes[i]
      parts[#parts + 1] = ("-- node %d (pid %s, %s) log tail:\n%s"):format(i, tostring(nd.pid),
        M.alive(nd.pid) and "running" or ("exited " .. tostring(self:exit_code(i))), M.tail(nd.log, 8))
    end
  end
  return table.concat(parts, "\n")
end

function Cluster:wait(what, fn, timeout_s, every)
  return M.wait(what, fn, timeout_s, function() return self:context() end, every)
end

-- The argv of node i. bootstrap: a "host:port" or nil; port: 0 for any.
function Cluster:argv(i, port, bootstrap)
  local o, nd = self.opts, self.nodes[i]
  local a = { M.SYNOD }
  if o.log_level then a[#a + 1] = "--log-level"; a[#a + 1] = o.log_level end
  for _, w in ipairs({ "node", "-p", tostring(port), "-i", tostring(i), "-n", tostring(self.n),
                       "--protocol", self.protocol, "--keys", self.keys, "--data", nd.data }) do a[#a + 1] = w end
  if bootstrap then a[#a + 1] = "-b"; a[#a + 1] = bootstrap end
  if o.clients then a[#a + 1] = "--clients"; a[#a + 1] = tostring(o.clients) end
  if o.words then a[#a + 1] = "--words"; a[#a + 1] = tostring(o.words) end
  if o.rate then a[#a + 1] = "--rate"; a[#a + 1] = tostring(o.rate) end
  local names = {}
  for k in pairs(o.params or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do a[#a + 1] = "--param"; a[#a + 1] = k .. "=" .. tostring(o.params[k]) end
  if o.http then
    -- 0 at the first start (any free port, read back from the log), then the same port.
    a[#a + 1] = "--http"; a[#a + 1] = tostring(nd.http or 0)
    if o.token then a[#a + 1] = "--http-token"; a[#a + 1] = o.token end
  end
  for _, w in ipairs(o.extra or {}) do a[#a + 1] = w end
  return a
end

-- Starts node i (again, after a kill: same data directory and, once known,
-- the same peer and HTTP ports) and waits until it listens (its first line,
-- "listening on 127.0.0.1:P[, http 127.0.0.1:H]", gives the ports).
-- bootstrap: "host:port".
function Cluster:start_node(i, bootstrap)
  local nd = self:node(i)
  assert(not M.alive(nd.pid), "node " .. i .. " is still running")
  nd.starts = nd.starts + 1
  -- Each run logs to its own file (node-I.log.K); nd.log is the current one.
  nd.log = ("%s/node-%d.log.%d"):format(self.dir, i, nd.starts)
  nd.pid = M.spawn(self:argv(i, nd.port or 0, bootstrap), nd.log, nd.pid_path, nd.rc_path)
  self.procs[#self.procs + 1] = nd.pid
  local port = self:wait(("node %d to listen (its 'listening on' line)"):format(i), function()
    local line = (read_file(nd.log) or ""):match("listening on 127%.0%.0%.1:%d+[^\n]*\n")
    if line then
      if self.opts.http then
        nd.http = tonumber(line:match("http 127%.0%.0%.1:(%d+)"))
        if not nd.http then M.fatal(("node %d listens without HTTP: %s"):format(i, line)) end
      end
      return tonumber(line:match("listening on 127%.0%.0%.1:(%d+)"))
    end
    if not M.alive(nd.pid) and read_file(nd.rc_path) then
      M.fatal(("node %d exited (%s) before listening:\n%s"):format(i, (read_file(nd.rc_path):gsub("%s+$", "")),
        M.tail(nd.log, 20)))
    end
  end, 10)
  nd.port = port
  return nd
end

-- Starts every node: 0 first, the others bootstrapping from it; then waits
-- until every node has its n-1 peers connected (read through attach).
-- opts.only: the ids to start (a list, default all; the first is the
-- bootstrap); opts.connected = false skips the wait.
function Cluster:start(opts)
  opts = opts or {}
  local ids = opts.only
  if not ids then ids = {} for i = 0, self.n - 1 do ids[#ids + 1] = i end end
  self:start_node(ids[1])
  local boot = "127.0.0.1:" .. self.nodes[ids[1]].port
  for k = 2, #ids do self:start_node(ids[k], boot) end
  self.running = ids
  if opts.connected ~= false then self:wait_connected(ids) end
  return self
end

-- Waits until each node in ids (a list, default all) is connected to the
-- other nodes of the list.
function Cluster:wait_connected(ids, timeout_s)
  if not ids then ids = {} for i = 0, self.n - 1 do ids[#ids + 1] = i end end
  for _, i in ipairs(ids) do
    self:wait(("node %d to connect to its %d peers"):format(i, #ids - 1), function()
      local st = self:status(i)
      return st.peers_connected >= #ids - 1, "peers_connected = " .. tostring(st.peers_connected)
    end, timeout_s or 15, 0.2)
  end
end

function Cluster:pid(i) return self:node(i).pid end
function Cluster:alive(i) return M.alive(self:node(i).pid) end

-- The exit code of node i's last run, once it has ended (nil before).
function Cluster:exit_code(i)
  local s = read_file(self:node(i).rc_path)
  return s and tonumber(s)
end

-- Sends signal sig ("TERM", "KILL", "INT") to node i; with wait, waits until
-- it has exited and returns its exit code.
function Cluster:signal(i, sig, wait)
  local nd = self:node(i)
  if not M.alive(nd.pid) then return self:exit_code(i) end
  sh(("kill -%s %d 2>/dev/null"):format(sig, nd.pid))
  if not wait then return end
  return self:wait(("node %d (pid %d) to exit after SIG%s"):format(i, nd.pid, sig), function()
    return not M.alive(nd.pid) and self:exit_code(i)
  end, 10)
end

function Cluster:stop(i) return self:signal(i, "TERM", true) end
function Cluster:kill(i) return self:signal(i, "KILL", true) end

-- Stops every process this cluster started: SIGTERM, then SIGKILL for any
-- still running after 5 s. Safe to call twice and after a failure. Returns
-- the exit codes by node id.
function Cluster:down()
  for _, pid in ipairs(self.procs) do
    if M.alive(pid) then sh("kill -TERM " .. pid .. " 2>/dev/null") end
  end
  local deadline = M.now() + 5
  local left
  repeat
    left = {}
    for _, pid in ipairs(self.procs) do if M.alive(pid) then left[#left + 1] = pid end end
    if #left > 0 then M.sleep(0.05) end
  until #left == 0 or M.now() > deadline
  for _, pid in ipairs(left) do sh("kill -KILL " .. pid .. " 2>/dev/null") end
  local codes = {}
  for i = 0, self.n - 1 do
    -- The wrapper writes the code right after the process ends.
    pcall(M.wait, "node exit code", function() return not M.alive(self.nodes[i].pid) end, 2)
    codes[i] = self:exit_code(i)
  end
  self.down_codes = codes
  -- Logs go with the directory; a failure's message already carries their
  -- tails. SYNOD_LIVE_KEEP=1 keeps the directory (its path is c.dir).
  if os.getenv("SYNOD_LIVE_KEEP") ~= "1" and not self.opts.dir and self.dir:match("^/tmp/synod%-live%-") then
    sh("rm -rf " .. q(self.dir))
  end
  return codes
end

-- ---- synod attach ----

-- Runs Lua source inside node i through `synod attach`; returns its stdout,
-- stderr and exit code (1 when a chunk failed).
function Cluster:attach(i, src, timeout_s)
  local nd = self:node(i)
  self.nattach = (self.nattach or 0) + 1
  local base = ("%s/attach-%d-%d"):format(self.dir, i, self.nattach)
  write_file(base .. ".lua", src)
  local _, rc = sh(("timeout %d %s attach %s <%s >%s 2>%s"):format(timeout_s or 20, q(M.SYNOD), q(nd.data),
    q(base .. ".lua"), q(base .. ".out"), q(base .. ".err")))
  local out, err = read_file(base .. ".out") or "", read_file(base .. ".err") or ""
  os.remove(base .. ".lua"); os.remove(base .. ".out"); os.remove(base .. ".err")
  return out, err, rc
end

-- A serializer sent with each query: Lua literal text of a value (tables to
-- depth 6; functions and userdata as strings).
local SER = [[
local function __ser(v, d)
  local t = type(v)
  if t == "string" then return ("%q"):format(v)
  elseif t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v ~= v then return "(0/0)" elseif v == math.huge then return "math.huge" elseif v == -math.huge then return "-math.huge" end
    return ("%.17g"):format(v)
  elseif t == "boolean" or t == "nil" then return tostring(v)
  elseif t == "table" and (d or 0) < 6 then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = "[" .. __ser(k, 7) .. "]=" .. __ser(x, (d or 0) + 1) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return ("%q"):format(tostring(v))
end
]]
local SER_LINE = SER:gsub("\n", " ")

-- Evaluates the expression `expr` inside node i and returns its value
-- (tables copied as Lua literals). Raises with the REPL's error otherwise.
function Cluster:query(i, expr, timeout_s)
  local out, err, rc = self:attach(i, SER_LINE .. " print('\\1' .. __ser((" .. expr .. ")))\n", timeout_s)
  if rc ~= 0 then error(("attach to node %d: %s failed (rc %s): %s%s"):format(i, expr, tostring(rc), err, out), 2) end
  local text = out:match("\1(.*)$")
  if not text then error(("attach to node %d: no value for %s in: %s"):format(i, expr, out), 2) end
  local f = assert(load("return " .. text, "=query", "t", { math = { huge = math.huge } }))
  return f()
end

function Cluster:status(i) return self:query(i, "node:status()") end
function Cluster:counters(i) return self:query(i, "node:counters()") end
function Cluster:evidence(i) return self:query(i, "node:evidence()") end
function Cluster:log(i, k) return self:query(i, ("node:log(%d)"):format(k)) end

-- Submits ops (a list of strings) at node i through attach (fire and forget).
function Cluster:submit(i, ops)
  local parts = {}
  for _, op in ipairs(ops) do parts[#parts + 1] = ("node:submit(%q)"):format(op) end
  local out, err, rc = self:attach(i, table.concat(parts, " ") .. "\n")
  assert(rc == 0, ("submit at node %d failed: %s%s"):format(i, err, out))
end

-- Waits until every node in ids (a list, default the running ones) has
-- executed at least `ops` operations (status executed_ops).
function Cluster:wait_ops(ops, timeout_s, ids)
  for _, i in ipairs(ids or self.running) do
    self:wait(("node %d to execute %d ops"):format(i, ops), function()
      local st = self:status(i)
      return st.executed_ops >= ops, ("executed_ops = %d, last_executed %d, view %d"):format(st.executed_ops,
        st.last_executed, st.view)
    end, timeout_s or 30, 0.2)
  end
end

-- ---- HTTP (curl) ----

-- One request to node i's HTTP API: returns the status (0 when curl could
-- not connect) and the body. opts: body, token, headers {…}, timeout (s).
function Cluster:http(i, method, path, opts)
  opts = opts or {}
  local nd = self:node(i)
  assert(nd.http, "node " .. i .. " has no --http port")
  return M.http(nd.http, method, path, opts)
end

function M.http(port, method, path, opts)
  opts = opts or {}
  local base = os.tmpname()
  local t = opts.timeout or 20
  -- curl's own --max-time, and a kill a little later should curl hang anyway.
  local args = { "timeout", "-s", "KILL", tostring(t + 5), "curl", "-s", "-g", "--max-time", tostring(t), "-o", base .. ".body",
                 "-w", "%{http_code}", "-X", method }
  if opts.body then
    write_file(base .. ".req", opts.body)
    args[#args + 1] = "--data-binary"; args[#args + 1] = "@" .. base .. ".req"
    args[#args + 1] = "-H"; args[#args + 1] = "Content-Type: text/plain"
  end
  local token = opts.token
  if token then args[#args + 1] = "-H"; args[#args + 1] = "Authorization: Bearer " .. token end
  for _, h in ipairs(opts.headers or {}) do args[#args + 1] = "-H"; args[#args + 1] = h end
  args[#args + 1] = ("http://127.0.0.1:%d%s"):format(port, path)
  local words = {}
  for k, a in ipairs(args) do words[k] = q(a) end
  local out = sh(table.concat(words, " ") .. " 2>/dev/null")
  local body = read_file(base .. ".body") or ""
  os.remove(base); os.remove(base .. ".body"); os.remove(base .. ".req")
  return tonumber(out:match("(%d%d%d)%s*$")) or 0, body
end

-- GET path at node i, decoded as JSON (raises unless 200 and JSON).
function Cluster:json(i, path)
  local json = require "dkjson"
  local st, body = self:http(i, "GET", path, { token = self.opts.token })
  if st ~= 200 then error(("GET %s at node %d: %d %s"):format(path, i, st, body), 2) end
  local v, _, err = json.decode(body)
  if v == nil then error(("GET %s at node %d: not JSON (%s): %s"):format(path, i, tostring(err), body), 2) end
  return v
end

-- A closed-loop HTTP client in bash over a keep-alive connection (bash's
-- /dev/tcp: no process per op, so the timestamps hug each request): posts
-- each line of $OPS to /submit in turn and appends
-- "invoke<TAB>respond<TAB>status<TAB>body" to $OUT, the times from
-- $EPOCHREALTIME taken before the request is written and after the whole
-- answer is read (status 0: no answer — connection refused or lost; the
-- op may or may not have taken effect). After a failure it reconnects
-- before the next op (after 0.2 s). Stops early when the file $STOP
-- exists. Every read is bounded (-t 20).
M.HTTP_CLIENT_SH = [[
export LC_ALL=C
trap '' PIPE
up=0
connect() { exec 3<>/dev/tcp/127.0.0.1/$PORT && up=1; } 2>/dev/null
while IFS= read -r op; do
  [ -n "$STOP" ] && [ -e "$STOP" ] && break
  t0=$EPOCHREALTIME
  code=0 body=
  if [ "$up" = 1 ] || connect; then
    # One write() for the whole request: bash's output is line-buffered, so
    # it ends with a newline (the server trims it from the op); a tail
    # written apart would wait on Nagle for the server's delayed ACK.
    printf -v req 'POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s\n' \
      "$TOKEN" "$((${#op} + 1))" "$op"
    ok=0
    if printf '%s' "$req" >&3 && IFS= read -r -t 20 status <&3; then
      len=0
      while IFS= read -r -t 20 line <&3; do
        line=${line%$'\r'}
        [ -z "$line" ] && { ok=1; break; }
        case "${line,,}" in content-length:*) len=${line#*:}; len=${len// /} ;; esac
      done
      if [ "$ok" = 1 ] && [ "$len" -gt 0 ]; then IFS= read -r -t 20 -N "$len" body <&3 || ok=0; fi
    fi
    if [ "$ok" = 1 ]; then code=${status#HTTP/1.? }; code=${code%% *}
    else up=0; body=; exec 3>&-; fi
  fi
  t1=$EPOCHREALTIME
  printf '%s\t%s\t%s\t%s\n' "$t0" "$t1" "$code" "${body//$'\n'/ }" >>"$OUT"
  [ "$code" = 0 ] && sleep 0.2
done <"$OPS"
echo client-done
]]

-- Starts M.HTTP_CLIENT_SH against node i's HTTP port (the cluster's token);
-- ops_path: one op a line; out: the results file. Returns the bash_bg handle.
function Cluster:http_client(i, ops_path, out, stop_path)
  return self:bash_bg(M.HTTP_CLIENT_SH, { PORT = self:node(i).http, TOKEN = self.opts.token or "", OPS = ops_path,
                                          OUT = out, STOP = stop_path or "" })
end

local function epoch_ns(t) -- "1700000000.123456" → integer ns
  local s, us = t:match("^(%d+)[.,](%d+)$")
  return tonumber(s) * 1000000000 + tonumber((us .. "000000"):sub(1, 6)) * 1000
end

-- The rows of an HTTP client's results file, in op order:
-- { invoke_ns, respond_ns, status (0: no answer), body }.
function M.http_results(path)
  local rows = {}
  for line in (read_file(path) or ""):gmatch("[^\n]+") do
    local t0, t1, code, body = line:match("^(%S+)\t(%S+)\t(%d+)\t(.*)$")
    assert(t0, "malformed HTTP client line: " .. line)
    rows[#rows + 1] = { invoke_ns = epoch_ns(t0), respond_ns = epoch_ns(t1), status = tonumber(code), body = body }
  end
  return rows
end

-- ---- raw TCP (bash /dev/tcp) ----

-- Runs a bash script (text) in the background for at most 60 s, its output
-- into a file, with the variables of env set at its top; returns a handle
-- with done(), rc(), output() and stop() (SIGTERM). down() stops it too.
function Cluster:bash_bg(script, env)
  self.nbg = (self.nbg or 0) + 1
  local base = ("%s/bg-%d"):format(self.dir, self.nbg)
  local lines = {}
  for k, v in pairs(env or {}) do lines[#lines + 1] = ("%s=%s"):format(k, q(v)) end
  lines[#lines + 1] = script
  write_file(base .. ".sh", table.concat(lines, "\n") .. "\n")
  local pid = M.spawn({ "timeout", "-s", "KILL", "60", "bash", base .. ".sh" }, base .. ".out",
    base .. ".pid", base .. ".rc")
  self.procs[#self.procs + 1] = pid
  return {
    pid = pid,
    done = function() return read_file(base .. ".rc") ~= nil end,
    rc = function() return tonumber(read_file(base .. ".rc") or "") end,
    output = function() return read_file(base .. ".out") or "" end,
    stop = function() sh("kill -TERM " .. pid .. " 2>/dev/null") end,
  }
end

-- Runs a bash script to completion (bounded by timeout_s); returns output, rc.
function M.bash(script, timeout_s)
  local path = os.tmpname()
  write_file(path, script)
  local out, rc = sh(("timeout -s KILL %d bash %s 2>&1"):format(timeout_s or 20, q(path)))
  os.remove(path)
  return out, rc
end

return M
