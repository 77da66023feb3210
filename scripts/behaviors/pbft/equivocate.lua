-- behaviors.pbft.equivocate — an equivocating primary: for one (view, seq)
-- the backups in `peers` (default: the even ids) get a pre-prepare for a
-- different batch — with its matching batch body — than the other backups.
-- Both pre-prepares are signed with the primary's own key; it keeps the
-- true version for itself (its own copy is what its protocol said).
--   lie = "reorder" (default): the same requests in reverse order; a batch
--         of one request loses it instead, which makes it the null batch
--   lie = "null":    the null batch (the digest of no bytes; no body needed)
--   leak = true:     the lied-to backups get the true pre-prepare too, after
--                    the lie (a careless equivocator, or one that hopes they
--                    take the later one)
-- Defence: a prepared certificate needs 2f matching prepares from distinct
-- backups, so at most one version prepares in a view; the backups holding
-- the other cannot commit it and catch up from commit certificates
-- (fetch/entry). A backup that gets both signed pre-prepares rejects the
-- second (reason equivocation) and keeps both as evidence. When neither
-- version reaches a quorum the clients' retries start a view change and the
-- new primary re-proposes what prepared. Options: peers, lie, leak.
local synod = require "synod"

local NULL_DIGEST = synod.crypto.digest("")

-- The (u32 length, request frame) items of a batch body.
local function items(body)
  local out, pos = {}, 1
  while pos <= #body do
    local item
    item, pos = string.unpack(">s4", body, pos)
    out[#out + 1] = item
  end
  return out
end

local function lie_body(kind, body)
  if kind == "null" then return "" end
  local list = items(body)
  if #list < 2 then return "" end   -- one request cannot be reordered: leave it out
  local out = {}
  for i = #list, 1, -1 do out[#out + 1] = string.pack(">s4", list[i]) end
  return table.concat(out)
end

return function(opts)
  opts = opts or {}
  require("behaviors.util").options(opts, "behaviors.pbft.equivocate", { "leak", "lie", "peers" })
  local kind = opts.lie or "reorder"
  assert(kind == "reorder" or kind == "null", "option 'lie' must be \"reorder\" or \"null\"")
  assert(opts.leak == nil or type(opts.leak) == "boolean", "option 'leak' must be a boolean")
  local lied_to
  if opts.peers ~= nil then
    assert(type(opts.peers) == "table", "option 'peers' must be a list of replica ids")
    lied_to = {}
    for _, id in ipairs(opts.peers) do
      assert(math.type(id) == "integer" and id >= 0, "option 'peers' must be a list of replica ids")
      lied_to[id] = true
    end
  end
  -- held[to] = the true pre-prepare waiting for its batch: the lie's digest
  -- is known only once the body goes by, right after it (one per peer).
  local held = {}

  local function lies_to(node, msg, to)
    if lied_to then if not lied_to[to] then return false end
    elseif to % 2 ~= 0 then return false end
    return msg.view % node.sim:nodes().n == node.id   -- only as the primary of that view
  end

  return {
    on_send = function(node, msg, to)
      if (msg.type ~= "pre-prepare" and msg.type ~= "batch") or not lies_to(node, msg, to) then return msg end
      if msg.type == "pre-prepare" then
        if msg.digest == NULL_DIGEST then return msg end   -- no body to lie about
        held[to] = msg
        return nil
      end
      local pp = held[to]
      if pp and (pp.view ~= msg.view or pp.seq ~= msg.seq or pp.digest ~= msg.digest) then pp = nil end
      held[to] = nil
      local body = lie_body(kind, msg.requests)
      local digest = synod.crypto.digest(body)
      local out = {}
      if pp then
        local lie = pp:copy()
        lie.digest = digest
        out[#out + 1] = lie
      end
      if #body > 0 then
        local b = msg:copy()
        b.digest, b.requests = digest, body
        out[#out + 1] = b
      end
      if pp and opts.leak then out[#out + 1] = pp end
      return out
    end,
  }
end
