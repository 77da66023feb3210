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

return M
