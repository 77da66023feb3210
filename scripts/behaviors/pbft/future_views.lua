-- behaviors.pbft.future_views — a replica that floods messages for views far
-- ahead of its own, hoping to drag honest replicas into a view nobody else
-- is in (or to make them keep state for every view it names). For each
-- message it sends it also sends `burst` crafted ones to the same peer,
-- `limit` in all: pre-prepares (for views it is the primary of, so they
-- pass the primary check), prepares and commits for its current slot, and
-- empty view-changes (stable 0, no P set — well-formed, so they are
-- stored). Each carries a fresh view above its own view + `jump`.
--   jump = 1000     how far ahead the first crafted view is (1 .. 2^62)
--   types = { … }   what it crafts (default pre-prepare, prepare, commit,
--                   view-change; a cycle over the list)
--   burst = 4       crafted messages per message it sends (1 .. 64)
--   limit = 2000    crafted messages in all (1 .. 10^6)
-- Defence: normal-case messages count only in the replica's own view: the
-- others are rejected (reason wrong_view) and only remember, per replica,
-- the highest view it showed. A replica moves to a higher view only when
-- f+1 replicas (so one honest) are there, and then to the smallest of
-- those views; one view-change is kept per replica. State stays bounded by
-- n whatever the views. Options: jump, types, burst, limit.
local synod = require "synod"

local KNOWN = { ["pre-prepare"] = true, prepare = true, commit = true, ["view-change"] = true }
local DIGEST = synod.crypto.digest("future")

return function(opts)
  opts = opts or {}
  require("behaviors.util").options(opts, "behaviors.pbft.future_views", { "burst", "jump", "limit", "types" })
  local jump = opts.jump or 1000
  assert(math.type(jump) == "integer" and jump >= 1 and jump <= 1 << 62, "option 'jump' must be an integer in 1 .. 2^62")
  local burst = opts.burst or 4
  assert(math.type(burst) == "integer" and burst >= 1 and burst <= 64, "option 'burst' must be an integer in 1 .. 64")
  local limit = opts.limit or 2000
  assert(math.type(limit) == "integer" and limit >= 1 and limit <= 1000000, "option 'limit' must be an integer in 1 .. 10^6")
  local types = opts.types or { "pre-prepare", "prepare", "commit", "view-change" }
  assert(type(types) == "table" and #types > 0, "option 'types' must be a non-empty list")
  for _, t in ipairs(types) do
    assert(KNOWN[t], ("option 'types': %q is not one of pre-prepare, prepare, commit, view-change"):format(tostring(t)))
  end
  local sent, next_view, seq = 0, nil, 1

  -- The next crafted view above `floor` that suits `kind` (a pre-prepare
  -- must come from the view's primary, a prepare must not).
  local function view_for(kind, n, id, floor)
    local v = math.max(next_view or floor, floor)
    if kind == "pre-prepare" then v = v + (id - v) % n
    elseif kind == "prepare" and v % n == id then v = v + 1 end
    next_view = v + 1
    return v
  end

  return {
    on_send = function(node, msg, to)
      if sent >= limit or to == node.id then return msg end
      if msg.seq then seq = msg.seq end
      local n, own = node.sim:nodes().n, node:status().view
      local out = { msg }
      for _ = 1, math.min(burst, limit - sent) do
        sent = sent + 1
        local kind = types[(sent - 1) % #types + 1]
        local m = { type = kind, view = view_for(kind, n, node.id, own + jump) }
        if kind == "view-change" then
          m.stable, m.proof, m.prepared = 0, "", ""
        else
          m.seq, m.digest = seq, DIGEST
        end
        out[#out + 1] = m
      end
      return out
    end,
  }
end
