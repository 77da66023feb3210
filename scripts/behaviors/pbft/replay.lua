-- behaviors.pbft.replay — a replica that replays old signed messages, byte
-- for byte, after they have served: its own (each matching message it
-- sends, framed and signed as sent, like behaviors.replay) and other
-- replicas' — the signed frames embedded in what it receives (the
-- certificates in view-changes and committed entries, the checkpoint
-- proofs in state transfers, relayed view-changes). Those still carry their
-- signer's valid signature. (Hooks see received messages decoded, not as
-- frames, so plain received votes cannot be replayed as their sender
-- signed them; embedded frames can.) Each captured frame goes again to
-- every replica but its signer, `after` later, `times` times; at most
-- `max_frames` captured frames wait for their replays at once (the rest
-- pass uncaptured).
--   after = "300ms"   delay before the first replay (and between replays)
--   times = 1         replays of each captured frame
--   types = { … }     own messages to replay (default pre-prepare, batch,
--                     prepare, commit, checkpoint, view-change, new-view)
--   received = true   also replay embedded frames of other replicas
--   max_frames = 500  captured frames waiting at once (1 .. 10^5)
-- Defence: a replayed frame is genuine, so nothing but the protocol's
-- state stops it: a vote already counted is ignored (the same digest is no
-- conflict, so no false evidence), one for a view the replica has left is
-- rejected (reason stale), one at or below the stable checkpoint is
-- garbage, a checkpoint or view-change older than what is kept is
-- ignored, and execution is exactly once per client timestamp.
-- Options: after, times, types, received, max_frames.
local synod = require "synod"
local util = require "behaviors.util"

local OWN = { "pre-prepare", "batch", "prepare", "commit", "checkpoint", "view-change", "new-view" }

-- The (u32 length, bytes) items of a list.
local function items(s)
  local out, pos = {}, 1
  while pos + 3 <= #s do
    local len = string.unpack(">I4", s, pos)
    if pos + 4 + len - 1 > #s then break end
    out[#out + 1] = s:sub(pos + 4, pos + 3 + len)
    pos = pos + 4 + len
  end
  return out
end

-- Signed frames embedded in a received message.
local function embedded(msg)
  if msg.type == "view-change" then
    local out = items(msg.proof)
    for _, entry in ipairs(items(msg.prepared)) do
      for _, f in ipairs(items(entry)) do out[#out + 1] = f end
    end
    return out
  elseif msg.type == "entry" then return items(msg.cert)
  elseif msg.type == "state" then return items(msg.proof)
  elseif msg.type == "relay" then return { msg.frame }
  end
  return {}
end

return function(opts)
  opts = opts or {}
  require("behaviors.util").options(opts, "behaviors.pbft.replay", { "after", "max_frames", "received", "times", "types", "peers", "p" })
  local after = synod.time(opts.after or "300ms")
  assert(after > 0, "option 'after' must be a positive time")
  local times = opts.times or 1
  assert(math.type(times) == "integer" and times >= 1, "option 'times' must be a positive integer")
  assert(opts.received == nil or type(opts.received) == "boolean", "option 'received' must be a boolean")
  local received = opts.received ~= false
  local max_frames = opts.max_frames or 500
  assert(math.type(max_frames) == "integer" and max_frames >= 1 and max_frames <= 100000,
    "option 'max_frames' must be an integer in 1 .. 10^5")
  local match = util.filter { types = opts.types or OWN }
  local waiting, seen = 0, {}   -- frames with replays still to come

  -- Replays frame (signed by `signer`) to every replica but the signer.
  local function schedule(node, frame, signer)
    if waiting >= max_frames or seen[frame] then return end
    waiting = waiting + 1
    seen[frame] = true
    local n = node.sim:nodes().n
    for i = 1, times do
      node.sim:after(after * i, function()
        if i == times then waiting = waiting - 1; seen[frame] = nil end
        if not node:is_up() then return end
        for to = 0, n - 1 do
          if to ~= signer and to ~= node.id then node:replay(to, frame) end
        end
      end)
    end
  end

  return {
    on_send = function(node, msg, to)
      if match(node, msg, to) then schedule(node, node:frame(msg), node.id) end
      return msg
    end,
    on_receive = received and function(node, msg, from)
      for _, frame in ipairs(embedded(msg)) do
        local m = synod.wire.decode(frame)
        if m and m.sender ~= node.id and m.sender < node.sim:nodes().n then schedule(node, frame, m.sender) end
      end
      return msg
    end or nil,
  }
end
