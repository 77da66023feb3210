-- behaviors.tom.ts_future — a sender that jumps its timestamps far into the
-- future. By default it stamps the largest timestamp there is, dragging
-- every receiver's Lamport clock to the end of its range so no honest node
-- can multicast again (clock exhaustion); with jump = N it adds N instead.
-- Defence: max_drift. Options: jump = positive integer.
return function(opts)
  opts = opts or {}
  local jump = opts.jump
  assert(jump == nil or (math.type(jump) == "integer" and jump > 0), "option 'jump' must be a positive integer")
  return {
    on_send = function(node, msg, to)
      if msg.type ~= "data" then return msg end
      local m = msg:copy()
      if jump then m.ts = msg.ts + jump else m.ts = -2 end   -- -2 is 2^64 - 2 as an unsigned timestamp
      return m
    end,
  }
end
