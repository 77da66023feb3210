-- workloads.words — every node multicasts words from data/words.csv as a
-- Poisson process: inter-arrival times are exponential with the given mean,
-- drawn from the simulator's seeded PRNG, so a seed replays the same load.
--
--   local words = require "workloads.words"
--   local load = words.start(sim, nodes, { count = 1000, rate = 50 })
--   ... load.submitted, load.done()
local synod = require "synod"

local M = {}

-- The word list, read once from data/words.csv (first line is the header).
function M.list()
  local list = {}
  local first = true
  for line in synod.data("words.csv"):gmatch("[^\n]+") do
    if first then first = false else list[#list + 1] = line:match("^%s*(.-)%s*$") end
  end
  assert(#list > 0, "data/words.csv has no words")
  return list
end

-- Starts the workload: `count` words in all, spread over the nodes given
-- (default: every node), each node with its own Poisson stream: mean
-- inter-arrival `mean` (a time, default "20ms") or, equivalently, `rate`
-- words per second per node. Words are numbered to stay unique:
-- "maple#17". Returns a handle with .submitted and :done().
function M.start(sim, nodes, opts)
  opts = opts or {}
  local count = opts.count or 1000
  local senders = opts.nodes or nodes
  local mean = opts.mean or "20ms"
  if opts.rate then                             -- words per second per node
    assert(type(opts.rate) == "number" and opts.rate > 0, "option 'rate' must be a positive number (words per second per node)")
    assert(opts.mean == nil, "give either 'rate' or 'mean', not both")
    mean = math.max(1, math.floor(1e9 / opts.rate))
  end
  local gap = synod.dist.exponential(mean)
  local list = M.list()
  local handle = { submitted = 0, count = count }
  function handle.done() return handle.submitted >= count end
  local function arm(node)
    sim:after(sim:sample(gap), function()
      if handle.submitted >= count then return end
      if node:is_up() then
        handle.submitted = handle.submitted + 1
        local word = list[(handle.submitted - 1) % #list + 1]
        node:submit(("%s#%d"):format(word, handle.submitted))
      end
      arm(node)
    end)
  end
  for _, node in ipairs(senders) do arm(node) end
  return handle
end

return M
