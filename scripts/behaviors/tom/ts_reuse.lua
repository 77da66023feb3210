-- behaviors.tom.ts_reuse — a sender that stamps every multicast with the
-- timestamp of its first one. Models a node whose Lamport clock is stuck (or
-- an attacker hoping two of its messages tie and get ordered differently by
-- different receivers). Defence: reject_reuse. Options: none.
return function()
  local first
  return {
    on_send = function(node, msg, to)
      if msg.type ~= "data" then return msg end
      first = first or msg.ts
      local m = msg:copy()
      m.ts = first
      return m
    end,
  }
end
