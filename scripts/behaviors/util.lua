-- behaviors.util — what every behaviour shares: which messages it targets
-- and the node's seeded randomness. Not a behaviour itself.
local M = {}

local function set_of(list)
  if list == nil then return nil end
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- A predicate over (msg, peer) from options:
--   types = { "data", … }  message types (all when absent)
--   peers = { 0, 2, … }    destination (on_send) or source (on_receive) ids
--   p = 0.3                probability, from the simulator's PRNG
function M.filter(opts)
  opts = opts or {}
  local types, peers, p = set_of(opts.types), set_of(opts.peers), opts.p
  if p ~= nil then assert(type(p) == "number" and p >= 0 and p <= 1, "option 'p' must be a probability in [0, 1]") end
  return function(node, msg, peer)
    if types and not types[msg.type] then return false end
    if peers and not peers[peer] then return false end
    if p and node.sim:random() >= p then return false end
    return true
  end
end

-- Raises on an option name the behaviour does not know, naming the known
-- ones (a typo would otherwise run as if the option were absent).
--   util.options(opts, "behaviors.pbft.seq", { "mode", "skip" })
function M.options(opts, name, known)
  if opts == nil then return end
  assert(type(opts) == "table", name .. ": options must be a table")
  local ok = {}
  for _, k in ipairs(known) do ok[k] = true end
  for k in pairs(opts) do
    if not ok[k] then
      local list = {}
      for _, n in ipairs(known) do list[#list + 1] = n end
      table.sort(list)
      error(("%s: unknown option '%s' (known: %s)"):format(name, tostring(k), table.concat(list, ", ")), 3)
    end
  end
end

return M
