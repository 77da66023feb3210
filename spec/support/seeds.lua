-- Seeds for randomised specs: a fixed list plus $SYNOD_SEEDS ("1,2,3").
-- A failing spec names its seed; replay with SYNOD_SEEDS=<seed> make test
-- (or SEEDS=<seed> make test).
local M = {}

function M.list(fixed)
  local seeds = {}
  for _, s in ipairs(fixed) do seeds[#seeds + 1] = s end
  for s in (os.getenv("SYNOD_SEEDS") or ""):gmatch("%d+") do seeds[#seeds + 1] = tonumber(s) end
  return seeds
end

-- Runs fn(seed) for every seed; on failure re-raises with the seed and
-- the command that replays it.
function M.each(fixed, fn)
  for _, seed in ipairs(M.list(fixed)) do
    local ok, err = pcall(fn, seed)
    if not ok then
      error(("seed %d failed (replay: SYNOD_SEEDS=%d busted %s): %s"):format(
        seed, seed, debug.getinfo(2, "S").short_src, tostring(err)), 0)
    end
  end
end

return M
