-- behaviors.pbft.silent — a silent primary: it stops ordering (drops its
-- pre-prepares and batch bodies) while it still votes, checkpoints, answers
-- state transfer and takes part in view changes — the primary that
-- withholds, not a crashed node (behaviors.silent with no types is that).
-- A thin wrapper of behaviors.silent: it adds only the moment silence
-- starts, which the generic one lacks.
--   after = "200ms"       silent from this virtual time on (default: at once)
--   after_messages = 40   let this many matching messages out first (one
--                         per destination: a broadcast to 3 peers is 3)
--   types = { … }         what it withholds (default pre-prepare, batch)
--   peers = { … }         from whom (default every peer)
-- Defence: the view-change timer. Clients that get no reply broadcast their
-- request to every replica; a backup that holds a request it has not
-- executed after view_change_ms moves to view v+1, and the next primary
-- orders what waits. Options: after, after_messages, types, peers.
local synod = require "synod"
local silent = require "behaviors.silent"

return function(opts)
  opts = opts or {}
  require("behaviors.util").options(opts, "behaviors.pbft.silent", { "after", "after_messages", "peers", "types" })
  local after = opts.after ~= nil and synod.time(opts.after) or 0
  local budget = opts.after_messages or 0
  assert(math.type(budget) == "integer" and budget >= 0, "option 'after_messages' must be a non-negative integer")
  local drop = silent {
    types = opts.types or { "pre-prepare", "batch" },
    peers = opts.peers,
  }.on_send
  return {
    on_send = function(node, msg, to)
      local kept = drop(node, msg, to)
      if kept then return kept end                 -- not a message it withholds
      if node.sim:now() < after then return msg end
      if budget > 0 then budget = budget - 1; return msg end
      return nil
    end,
  }
end
