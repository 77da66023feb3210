-- behaviors.pbft.seq — a primary that numbers its batches wrongly. Each of
-- its pre-prepares goes out with its batch body under the same wrong
-- sequence number (to every backup alike, and again on retransmission);
-- its own log keeps the true numbers.
--   mode = "skip" (default): every sequence number moved up by `skip`
--          (default 3), so seq h+1 .. h+skip are never proposed: the
--          backups prepare and commit the later batches but cannot execute
--          past the gap
--   mode = "reuse": every batch after the first of a view goes out under
--          that first batch's number — a second digest for a (view, seq)
--          that already has one
-- Defence: for a gap, the view-change timer (clients retry to every
-- replica; requests that wait longer than view_change_ms depose the
-- primary) and the new view's O set, which fills every unprepared number
-- below the highest prepared one with the null batch. For reuse, backups
-- take only the first pre-prepare for a (view, seq): each later one is
-- rejected (reason equivocation) and kept as evidence with the first, and
-- the requests it carried wait until a view change. Options: mode, skip.
return function(opts)
  opts = opts or {}
  require("behaviors.util").options(opts, "behaviors.pbft.seq", { "mode", "skip" })
  local mode = opts.mode or "skip"
  assert(mode == "skip" or mode == "reuse", "option 'mode' must be \"skip\" or \"reuse\"")
  local skip = opts.skip or 3
  assert(math.type(skip) == "integer" and skip > 0, "option 'skip' must be a positive integer")
  assert(mode == "skip" or opts.skip == nil, "option 'skip' goes with mode = \"skip\"")
  local first = {}   -- view → the sequence number of its first batch (reuse)

  return {
    on_send = function(node, msg, to)
      if msg.type ~= "pre-prepare" and msg.type ~= "batch" then return msg end
      if msg.view % node.sim:nodes().n ~= node.id then return msg end   -- not as this view's primary
      local m = msg:copy()
      if mode == "skip" then
        m.seq = msg.seq + skip
      else
        local f = first[msg.view]
        if f == nil or msg.seq < f then
          first = { [msg.view] = msg.seq }   -- forget older views: one entry
          f = msg.seq
        end
        m.seq = f
      end
      return m
    end,
  }
end
