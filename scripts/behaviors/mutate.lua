-- behaviors.mutate — a node that corrupts or rewrites fields of its own
-- messages before signing them (a bit-flipping bug, or a liar). The rewrite
-- is a table of field → function(value, msg, to) returning the new value.
--   mutate { types = { "data" }, fields = { word = function(w) return w .. "!" end } }
local util = require "behaviors.util"

return function(opts)
  opts = opts or {}
  assert(type(opts.fields) == "table", "option 'fields' must map field names to functions")
  local match = util.filter(opts)
  return {
    on_send = function(node, msg, to)
      if not match(node, msg, to) then return msg end
      local m = msg:copy()
      for field, fn in pairs(opts.fields) do m[field] = fn(m[field], m, to) end
      return m
    end,
  }
end
