-- behaviors.pbft.forged_view_change — a replica that lies in view changes:
-- it asks for view v+1 with a prepared certificate it never had, claiming
-- that a batch nobody proposed (digest of "forged …") prepared in its
-- current view v at sequence number stable+1. The certificate has the
-- right shape — a pre-prepare naming v's primary and 2f prepares naming
-- distinct backups — but it holds no keys but its own: the frames it can
-- sign (the pre-prepare when it is v's primary, its own prepare when it is
-- a backup) carry its real signature, every other frame claims another
-- replica with an all-zero signature. Every `every` it sends such a
-- view-change to every other replica, `times` times in all (the first when
-- it first sends anything); with replace (default) its genuine view-changes
-- go out with the forged certificate instead of its real one. The stable
-- checkpoint and its proof are genuine: those of its last real
-- view-change, else checkpoint 0.
-- Defence: a view-change is checked before it counts: every embedded frame
-- must verify against the sender it names, the pre-prepare must come from
-- its view's primary, the prepares from 2f distinct backups on the same
-- (view, seq, digest). A forged one is rejected (reason bad_view_change)
-- and kept as evidence; the view change goes on with the 2f+1 honest ones.
-- (With crypto = "none" frames are not verified: outside the model.)
-- Options: every, times, replace.
local synod = require "synod"

local function item(s) return string.pack(">s4", s) end

return function(opts)
  opts = opts or {}
  require("behaviors.util").options(opts, "behaviors.pbft.forged_view_change", { "every", "replace", "times" })
  local every = synod.time(opts.every or "50ms")
  assert(every > 0, "option 'every' must be a positive time")
  local times = opts.times or 20
  assert(math.type(times) == "integer" and times >= 0, "option 'times' must be a non-negative integer")
  assert(opts.replace == nil or type(opts.replace) == "boolean", "option 'replace' must be a boolean")
  local replace = opts.replace ~= false
  local stable, proof = 0, ""   -- of its last genuine view-change
  local started = false

  -- A frame for msg as `sender` says it: signed when that is this node.
  local function frame_as(node, sender, msg)
    if sender == node.id then return node:frame(msg) end
    return synod.wire.encode("pbft", msg.type, msg, sender)
  end

  -- The P set: one entry claiming a forged batch prepared in view pv.
  local function forged_prepared(node, pv, seq)
    local n = node.sim:nodes().n
    local f = (n - 1) // 3
    local primary = pv % n
    local digest = synod.crypto.digest(("forged %d %d"):format(pv, seq))
    local parts = { item(frame_as(node, primary, { type = "pre-prepare", view = pv, seq = seq, digest = digest })) }
    local backups = {}
    if node.id ~= primary then backups[1] = node.id end
    for q = 0, n - 1 do
      if #backups >= 2 * f then break end
      if q ~= primary and q ~= node.id then backups[#backups + 1] = q end
    end
    for _, q in ipairs(backups) do
      parts[#parts + 1] = item(frame_as(node, q, { type = "prepare", view = pv, seq = seq, digest = digest }))
    end
    return item(table.concat(parts))
  end

  local function forged_vc(node, view)
    return { type = "view-change", view = view, stable = stable, proof = proof,
             prepared = forged_prepared(node, view - 1, stable + 1) }
  end

  local function send_round(node, left)
    if left <= 0 or not node:is_up() then return end
    local vc = forged_vc(node, node:status().view + 1)
    for to = 0, node.sim:nodes().n - 1 do
      if to ~= node.id then node:send(to, vc) end
    end
    node.sim:after(every, function() send_round(node, left - 1) end)
  end

  return {
    on_send = function(node, msg, to)
      if not started then
        started = true
        node.sim:after(0, function() send_round(node, times) end)
      end
      if msg.type ~= "view-change" then return msg end
      stable, proof = msg.stable, msg.proof
      if not replace or msg.view == 0 then return msg end
      return forged_vc(node, msg.view)
    end,
  }
end
