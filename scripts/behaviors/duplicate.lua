-- behaviors.duplicate — a node that sends matching messages more than once
-- (a retransmission bug, or an attacker hoping for double processing).
-- Options: times (copies in all, default 2), types, peers, p.
local util = require "behaviors.util"

return function(opts)
  opts = opts or {}
  local match = util.filter(opts)
  local times = opts.times or 2
  assert(math.type(times) == "integer" and times >= 1, "option 'times' must be a positive integer")
  return {
    on_send = function(node, msg, to)
      if not match(node, msg, to) then return msg end
      local copies = {}
      for i = 1, times do copies[i] = msg end
      return copies
    end,
  }
end
