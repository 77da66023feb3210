-- behaviors.pbft.wrong_digest — a replica that votes for what nobody
-- proposed: its prepares, commits and checkpoints carry a wrong digest
-- (the true one with bytes flipped), signed with its own key. By default
-- the lie is consistent — the same wrong digest for a slot every time, so
-- it looks like a replica that saw another batch; with vary = true every
-- copy (each destination, each retransmission) gets a fresh one, and the
-- replica contradicts itself.
--   types = { … }   which votes lie (default prepare, commit, checkpoint)
--   vary = true     a different wrong digest per copy, from the simulator's PRNG
--   p = 0.5         lie on this share of the votes only (see behaviors.util)
-- Defence: quorums of matching digests. A prepared certificate needs 2f
-- prepares matching the pre-prepare, a commit 2f+1 matching commits, a
-- stable checkpoint 2f+1 matching checkpoint votes; f wrong votes are never
-- counted and the honest 2f+1 decide alone. Two different votes from one
-- replica for one slot (or checkpoint) are rejected (reason conflict) and
-- kept as evidence. Options: types, vary, p, peers.
local util = require "behaviors.util"

local function flip(digest, mask)
  local first = string.char(digest:byte(1) ~ mask)
  return first .. digest:sub(2, -2) .. string.char(digest:byte(-1) ~ 0xff)
end

return function(opts)
  opts = opts or {}
  assert(opts.vary == nil or type(opts.vary) == "boolean", "option 'vary' must be a boolean")
  local match = util.filter {
    types = opts.types or { "prepare", "commit", "checkpoint" },
    peers = opts.peers, p = opts.p,
  }
  return {
    on_send = function(node, msg, to)
      if (msg.type ~= "prepare" and msg.type ~= "commit" and msg.type ~= "checkpoint") or not match(node, msg, to) then
        return msg
      end
      local m = msg:copy()
      m.digest = flip(msg.digest, opts.vary and node.sim:random(1, 255) or 0xff)
      return m
    end,
  }
end
