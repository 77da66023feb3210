-- behaviors.tom.ts_backdate — a sender whose multicasts go back in time: the
-- first is honest, each later one carries the previous one's timestamp
-- minus one, so it sorts before messages honest nodes may have delivered
-- already. When it cannot go lower (timestamp 1) it sends one honestly and
-- goes back from there, so it never turns into a reuse. Defence:
-- reject_backdate. Options: none.
return function()
  local real, sent          -- the real ts of the multicast in progress, and what it was sent as
  return {
    on_send = function(node, msg, to)
      if msg.type ~= "data" then return msg end
      if msg.ts ~= real then                  -- a new multicast (its copies to other peers share it)
        if sent and sent > 1 then sent = sent - 1 else sent = msg.ts end
        real = msg.ts
      end
      local m = msg:copy()
      m.ts = sent
      return m
    end,
  }
end
