-- Randomised PBFT runs (scripts/sweeps/pbft.lua): each seed draws a cluster
-- shape, network faults, up to f Byzantine replicas from the behaviour
-- library, a partition that heals and a crash with a restart, then checks
-- every safety property and that every op is answered. `make test` runs
-- 100 seeds; `make soak` runs SYNOD_SOAK_SEEDS (default 10,000). A failure
-- names the seed, its set-up and the command that replays it.
local sweep = require "sweeps.pbft"
local seeds = require "support.seeds"

local function sweep_run(seed)
  local r = sweep.run(seed)
  if not r.ok then error(("%s\n%s\nreplay: ./synod run scenarios/pbft_sweep.lua -- --from %d --seeds 1"):format(
    r.setup, r.why, seed), 0) end
end

describe("PBFT under random faults and Byzantine replicas", function()
  it("keeps every checker green and answers every op over 100 seeds", function()
    local list = {}
    for s = 1, 100 do list[s] = s end
    seeds.each(list, sweep_run)
  end)
end)

describe("PBFT soak #soak", function()
  it("keeps every checker green over SYNOD_SOAK_SEEDS seeds", function()
    local count = tonumber(os.getenv("SYNOD_SOAK_SEEDS") or "10000")
    local bad = {}
    for s = 1, count do
      local r = sweep.run(100000 + s)
      if not r.ok then bad[#bad + 1] = ("seed %d: %s — %s"):format(100000 + s, r.setup, r.why) end
      if s % 500 == 0 then io.stderr:write(("pbft soak: %d of %d seeds, %d violations\n"):format(s, count, #bad)) end
    end
    assert(#bad == 0, ("%d of %d seeds failed:\n%s"):format(#bad, count, table.concat(bad, "\n")))
  end)
end)
