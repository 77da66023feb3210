-- behaviors.pbft.slow_primary — a primary that orders as slowly as it dares:
-- every pre-prepare it sends (first sends and retransmissions) leaves
-- `delay` late, while everything else — batch bodies, votes, view changes
-- — goes out on time. Set just under what the backups tolerate, it cuts
-- throughput without ever being deposed (the performance attack of
-- Aardvark, Clement et al., NSDI '09). A backup suspects the primary only
-- for a request it holds, and clients send to the primary first, so the
-- tolerance is about client_timeout_ms + view_change_ms from submission.
-- A behaviour cannot read the cluster's parameters, so `delay` is required.
--   delay = "300ms"   how late each pre-prepare leaves (a time, > 0)
--   types = { … }     what it delays (default pre-prepare)
-- Defence: the view-change timer bounds the damage — a delay beyond the
-- tolerance gets the primary deposed by a view change and the next primary
-- orders at full speed; under it every request still completes, late.
-- Options: delay, types.
local synod = require "synod"
local util = require "behaviors.util"

return function(opts)
  opts = opts or {}
  require("behaviors.util").options(opts, "behaviors.pbft.slow_primary", { "delay", "types", "peers", "p" })
  assert(opts.delay ~= nil, "option 'delay' is required (e.g. just under client_timeout_ms + view_change_ms)")
  local delay = synod.time(opts.delay)
  assert(delay > 0, "option 'delay' must be a positive time")
  local match = util.filter { types = opts.types or { "pre-prepare" } }
  return {
    on_send = function(node, msg, to)
      if match(node, msg, to) and msg.view ~= nil and msg.view % node.sim:nodes().n == node.id then
        msg.delay = delay
      end
      return msg
    end,
  }
end
