-- workloads.kv — key-value operations from a cluster's clients as one
-- Poisson stream: inter-arrival times are exponential with the given mean,
-- drawn from the simulator's seeded PRNG, so a seed replays the same load.
-- Each op goes to a random client that is up. The mix over `keys` keys:
-- put (values are unique: "v<i>"), get, del and cas (expecting the value the
-- last put to that key wrote, so some succeed and some fail).
--
--   local kv = require "workloads.kv"
--   local load = kv.start(sim, nodes, { count = 1000, mean = "2ms", keys = 20 })
--   ... load.submitted, load.done()
local M = {}

local MIX = { put = 0.45, get = 0.35, del = 0.08, cas = 0.12 }

-- The i-th op text, given the last value put per key (updated here).
local function make_op(sim, i, keys, last)
  local k = "k" .. sim:random(1, keys)
  local r = sim:random()
  if r < MIX.put then
    last[k] = "v" .. i
    return ("put %s v%d"):format(k, i)
  elseif r < MIX.put + MIX.get then
    return "get " .. k
  elseif r < MIX.put + MIX.get + MIX.del then
    return "del " .. k
  end
  local expect = last[k] or "v0"
  last[k] = "v" .. i
  return ("cas %s %s v%d"):format(k, expect, i)
end

-- Starts the workload: `count` ops (default 1000), mean inter-arrival `mean`
-- (a time, default "5ms") or `rate` ops per second, over `keys` keys
-- (default 16), submitted at random up clients. Returns a handle with
-- .submitted, .count and :done().
function M.start(sim, nodes, opts)
  opts = opts or {}
  local count = opts.count or 1000
  local keys = opts.keys or 16
  assert(math.type(count) == "integer" and count >= 0, "option 'count' must be a non-negative integer")
  assert(math.type(keys) == "integer" and keys > 0, "option 'keys' must be a positive integer")
  assert(nodes.clients and #nodes.clients > 0, "workloads.kv needs a cluster with clients (cluster{ clients = N })")
  local mean = opts.mean or "5ms"
  if opts.rate then
    assert(type(opts.rate) == "number" and opts.rate > 0, "option 'rate' must be a positive number (ops per second)")
    assert(opts.mean == nil, "give either 'rate' or 'mean', not both")
    mean = math.max(1, math.floor(1e9 / opts.rate))
  end
  local gap = require("synod").dist.exponential(mean)
  local handle = { submitted = 0, count = count }
  function handle.done() return handle.submitted >= count end
  local last = {}
  local function arm()
    sim:after(sim:sample(gap), function()
      if handle.submitted >= count then return end
      handle.submitted = handle.submitted + 1
      sim:submit(make_op(sim, handle.submitted, keys, last))
      arm()
    end)
  end
  if count > 0 then arm() end
  return handle
end

return M
