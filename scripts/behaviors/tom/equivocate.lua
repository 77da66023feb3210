-- behaviors.tom.equivocate — a sender that tells different peers different
-- things under one timestamp: peers in `peers` (default: the even ids) get
-- the word with `suffix` appended (default "~forged"), the others the real
-- one. Both versions carry its own valid signature. Defence: echo (every
-- receiver relays what it got, so honest nodes see both signed versions,
-- name the sender and deliver neither). Options: peers, suffix.
return function(opts)
  opts = opts or {}
  local suffix = opts.suffix or "~forged"
  local lied_to
  if opts.peers then
    lied_to = {}
    for _, id in ipairs(opts.peers) do lied_to[id] = true end
  end
  return {
    on_send = function(node, msg, to)
      if msg.type ~= "data" then return msg end
      local lie = lied_to and lied_to[to] or (not lied_to and to % 2 == 0)
      if not lie then return msg end
      local m = msg:copy()
      m.word = msg.word .. suffix
      return m
    end,
  }
end
