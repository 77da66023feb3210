-- behaviors.tom.ts_backdate — a sender whose multicasts go back in time: the
-- first is honest, each later one carries the previous one's timestamp
-- minus one, so it sorts before messages honest nodes may have delivered
-- already. Defence: reject_backdate. Options: none.
return function()
  local real, sent          -- the real ts of the multicast in progress, and what it was sent as
  return {
    on_send = function(node, msg, to)
      if msg.type ~= "data" then return msg end
      if msg.ts ~= real then                  -- a new multicast (its copies to other peers share it)
        sent = sent and math.max(1, sent - 1) or msg.ts
        real = msg.ts
      end
      local m = msg:copy()
      m.ts = sent
      return m
    end,
  }
end
