-- behaviors.silent — a node that stops talking (crashed to the outside
-- world, or a primary that withholds) while it still listens: every
-- matching outbound message is dropped. Options: types, peers.
local drop = require "behaviors.drop"

return function(opts)
  opts = opts or {}
  assert(opts.p == nil, "silent drops every matching message; use behaviors.drop for a probability")
  return drop(opts)
end
