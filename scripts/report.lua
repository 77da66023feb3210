-- report — the summary every scenario ends with: one table a person reads at
-- a glance (per node: role, delivered, rejected by reason, evidence), the
-- verdict of each checker, and, as the very last line,
--   verdict: ok seed=N trace=<hex>      or      verdict: FAIL seed=N trace=<hex> (...)
-- With `-- --json` on the command line it also prints the same facts as one
-- JSON object (a line starting with "json: ") before the verdict line.
local synod = require "synod"

local M = {}

-- A table is a JSON array only when its keys are exactly 1..#v; any other
-- table (node ids as keys, say) is an object with string keys.
local function is_array(v)
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n > 0 and n == #v
end

local function json(v)
  local t = type(v)
  if t == "table" then
    if is_array(v) then
      local parts = {}
      for i = 1, #v do parts[i] = json(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = json(k) .. ":" .. json(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      return ({ ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t" })[c]
        or ("\\u%04x"):format(c:byte())
    end) .. '"'
  elseif t == "number" or t == "boolean" then
    return tostring(v)
  end
  return "null"
end
M.json = json

local function reasons(map)
  local keys = {}
  for k in pairs(map) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = ("%s=%d"):format(k, map[k]) end
  return #parts > 0 and table.concat(parts, " ") or "-"
end

-- Per-node facts as a table (also what the JSON carries).
function M.nodes(nodes)
  local rows = {}
  for i = 1, nodes.n do
    local node = nodes[i]
    local c = node:counters()
    local accused = {}
    for _, e in ipairs(node:evidence()) do
      local id = tostring(e.against)          -- string keys: a JSON object, never an array
      accused[id] = (accused[id] or 0) + 1
    end
    rows[i] = {
      id = node.id, honest = node:is_honest(), up = node:is_up(),
      delivered = node:delivered(), sent = c.sent, received = c.received,
      rejected = c.rejected, dropped = c.dropped, evidence_against = accused,
    }
  end
  return rows
end

local function accused_text(map)
  local parts = {}
  for id, count in pairs(map) do parts[#parts + 1] = ("node %s ×%d"):format(id, count) end
  table.sort(parts)
  return #parts > 0 and table.concat(parts, ", ") or "-"
end

-- Prints the summary of one run and returns its rows.
function M.print_run(title, sim, nodes, verdict)
  local stats = sim:stats()
  print(("== %s — %d nodes, %s virtual, %d events, %d frames"):format(
    title, nodes.n, synod.format_time(stats.now), stats.events, stats.frames_sent))
  print(("%-5s %-10s %9s  %-34s %s"):format("node", "role", "delivered", "rejected", "evidence against"))
  local rows = M.nodes(nodes)
  for _, r in ipairs(rows) do
    local role = (r.honest and "honest" or "byzantine") .. (r.up and "" or ",down")
    print(("%-5d %-10s %9d  %-34s %s"):format(r.id, role, r.delivered, reasons(r.rejected), accused_text(r.evidence_against)))
  end
  local parts = {}
  for _, name in ipairs(verdict.order) do
    parts[#parts + 1] = name .. (verdict.checks[name].ok and " ok" or " FAIL")
  end
  print("checks: " .. table.concat(parts, " · "))
  for _, name in ipairs(verdict.order) do
    local v = verdict.checks[name]
    if v.ok and v.explain ~= "" then print(("  · %s: %s"):format(name, v.explain)) end
  end
  if not verdict.ok then
    for line in verdict:explain():gmatch("[^\n]+") do print("  ! " .. line) end
  end
  return rows
end

-- PBFT's own picture: per replica its view, execution point, stable
-- checkpoint, log size, view changes and state transfers; per client what
-- it completed. Returns the same as plain data (for the JSON).
function M.print_pbft(nodes)
  local replicas, clients = {}, {}
  print(("%-5s %5s %9s %8s %10s %5s %8s %9s"):format("rep", "view", "executed", "last seq", "stable ckp", "log", "vchanges", "transfers"))
  for i = 1, nodes.n do
    local s = nodes[i]:status()
    replicas[i] = { id = nodes[i].id, view = s.view, executed_ops = s.executed_ops, last_executed = s.last_executed,
                    stable_checkpoint = s.stable_checkpoint, log_slots = s.log_slots,
                    view_changes = s.view_changes, state_transfers = s.state_transfers }
    print(("%-5d %5d %9d %8d %10d %5d %8d %9d"):format(nodes[i].id, s.view, s.executed_ops, s.last_executed,
      s.stable_checkpoint, s.log_slots, s.view_changes, s.state_transfers))
  end
  local parts = {}
  for i, c in ipairs(nodes.clients or {}) do
    local s = c:status()
    clients[i] = { id = c.id, completed = s.completed, outstanding = s.outstanding, retries = s.retries }
    parts[#parts + 1] = ("%d: %d done%s"):format(c.id, s.completed, s.retries > 0 and (", " .. s.retries .. " retries") or "")
  end
  if #parts > 0 then print("clients  " .. table.concat(parts, " · ")) end
  return { replicas = replicas, clients = clients }
end

local function has_flag(flag)
  for _, a in ipairs(synod.args or {}) do if a == flag then return true end end
  return false
end

-- The checks of a nodes:check() result as plain data.
function M.checks(verdict)
  local out = {}
  for _, name in ipairs(verdict.order) do
    local v = verdict.checks[name]
    out[name] = { ok = v.ok, explain = v.explain ~= "" and v.explain or nil }
  end
  return out
end

-- Ends a scenario: prints the JSON (with --json) and the verdict line, and
-- returns the table `synod run` reads (.ok decides the exit code).
--   result = { ok = bool, seed = N, trace = hex, script = "scenarios/x.lua",
--              reason = "…" (on failure), verdict = nodes:check() result (optional),
--              facts = {…} (optional) }
function M.finish(result)
  if has_flag("--json") then
    print("json: " .. json({ ok = result.ok, seed = result.seed, trace = result.trace, reason = result.reason,
                             checks = result.verdict and M.checks(result.verdict) or nil, facts = result.facts }))
  end
  if result.ok then
    print(("verdict: ok seed=%d trace=%s"):format(result.seed, result.trace))
  else
    local args = {}
    for _, a in ipairs(synod.args or {}) do args[#args + 1] = a end
    print(("verdict: FAIL seed=%d trace=%s (%s) — replay: ./synod run %s --seed %d%s"):format(
      result.seed, result.trace, result.reason or "checks failed", result.script or "<scenario>", result.seed,
      #args > 0 and (" -- " .. table.concat(args, " ")) or ""))
  end
  return result
end

return M
