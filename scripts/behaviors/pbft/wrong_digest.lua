-- behaviors.pbft.wrong_digest — a replica that votes for what nobody
-- proposed: its prepares, commits and checkpoints carry a wrong digest
-- (the true one with bytes flipped), signed with its own key. By default
-- the lie is consistent — the same wrong digest for a slot every time, so
-- it looks like a replica that saw another batch. With contradict = true
-- each vote goes out twice to each peer, under two different wrong
-- digests: a replica that contradicts itself.
--   types = { … }      which votes lie (default prepare, commit, checkpoint)
--   contradict = true  two different wrong digests per vote and peer
--   p = 0.5            lie on this share of the votes only (see behaviors.util)
-- Defence: quorums of matching digests. A prepared certificate needs 2f
-- prepares matching the pre-prepare, a commit 2f+1 matching commits, a
-- stable checkpoint 2f+1 matching checkpoint votes; f wrong votes are never
-- counted and the honest 2f+1 decide alone. Two different votes from one
-- replica for one slot (or checkpoint) are rejected (reason conflict) and
-- kept as evidence (a liar that sends each replica one consistent lie is
-- outvoted, not caught: votes are not relayed). Options: types,
-- contradict, p, peers.
local util = require "behaviors.util"

local VOTES = { prepare = true, commit = true, checkpoint = true }

local function flip(digest, mask)
  return string.char(digest:byte(1) ~ mask) .. digest:sub(2, -2) .. string.char(digest:byte(-1) ~ 0xff)
end

return function(opts)
  opts = opts or {}
  require("behaviors.util").options(opts, "behaviors.pbft.wrong_digest", { "contradict", "p", "peers", "types" })
  assert(opts.contradict == nil or type(opts.contradict) == "boolean", "option 'contradict' must be a boolean")
  local types = opts.types or { "prepare", "commit", "checkpoint" }
  assert(type(types) == "table", "option 'types' must be a list of prepare, commit, checkpoint")
  for _, t in ipairs(types) do
    assert(VOTES[t], ("option 'types': %q is not one of prepare, commit, checkpoint"):format(tostring(t)))
  end
  local match = util.filter {
    types = types,
    peers = opts.peers, p = opts.p,
  }
  return {
    on_send = function(node, msg, to)
      if not match(node, msg, to) then return msg end
      local m = msg:copy()
      m.digest = flip(msg.digest, 0xff)
      if not opts.contradict then return m end
      local m2 = msg:copy()
      m2.digest = flip(msg.digest, 0x0f)
      return { m, m2 }
    end,
  }
end
