-- behaviors.drop — an omission fault: a node (or its network card) that
-- loses some of its outbound messages. Options: types, peers, p (see util).
--   node:behave(require "behaviors.drop" { types = { "ack" }, p = 0.5 })
local util = require "behaviors.util"

return function(opts)
  local match = util.filter(opts)
  return {
    on_send = function(node, msg, to)
      if match(node, msg, to) then return nil end
      return msg
    end,
  }
end
