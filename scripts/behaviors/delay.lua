-- behaviors.delay — a slow node: holds matching outbound messages back by a
-- fixed time or by a synod.dist sample. Options: by (time or dist, default
-- "10ms"), types, peers, p.
local synod = require "synod"
local util = require "behaviors.util"

return function(opts)
  opts = opts or {}
  local match = util.filter(opts)
  local by = opts.by or "10ms"
  local is_dist = type(by) == "userdata"
  return {
    on_send = function(node, msg, to)
      if match(node, msg, to) then
        msg.delay = is_dist and node.sim:sample(by) or synod.time(by)
      end
      return msg
    end,
  }
end
