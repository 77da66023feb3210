-- behaviors.replay — a node that sends matching messages again, byte for
-- byte (same signature), after a while: the replay attack every protocol
-- must shrug off. Options: after (time, default "50ms"), times (extra
-- copies, default 1), types, peers, p.
local synod = require "synod"
local util = require "behaviors.util"

return function(opts)
  opts = opts or {}
  local match = util.filter(opts)
  local after = synod.time(opts.after or "50ms")
  local times = opts.times or 1
  return {
    on_send = function(node, msg, to)
      if match(node, msg, to) then
        local frame = node:frame(msg)
        for i = 1, times do
          node.sim:after(after * i, function() node:replay(to, frame) end)
        end
      end
      return msg
    end,
  }
end
