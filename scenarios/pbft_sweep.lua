-- pbft_sweep — random PBFT runs, one per seed (see scripts/sweeps/pbft.lua
-- for what a seed draws: cluster shape, network faults, up to f Byzantine
-- replicas from the behaviour library, a partition, a crash and restart).
--   ./synod run scenarios/pbft_sweep.lua -- --seeds 100 [--from 1] [--ops 80] [--quiet] [--json]
-- (defaults: 20 seeds from --from, or from --seed, or from 1; 80 ops each)
-- Prints one line per failing seed, with the command that replays it alone,
-- a progress line every 100 seeds (unless --quiet), and at the end
--   N seeds, V violations
--   verdict: ok seed=<first> trace=<hash of every run's trace hash>
-- Exits non-zero when any seed fails.
local synod = require "synod"
local sweep = require "sweeps.pbft"
local report = require "report"

local seeds, from, ops, quiet = 20, nil, 80, false
local a = synod.args
local i = 1
while i <= #a do
  local flag = a[i]
  if flag == "--seeds" then seeds = math.tointeger(tonumber(a[i + 1])); i = i + 2
  elseif flag == "--from" then from = math.tointeger(tonumber(a[i + 1])); i = i + 2
  elseif flag == "--ops" then ops = math.tointeger(tonumber(a[i + 1])); i = i + 2
  elseif flag == "--quiet" then quiet = true; i = i + 1
  elseif flag == "--json" then i = i + 1                 -- report.finish reads it
  else error(("pbft_sweep: unknown argument '%s' (use --seeds N, --from S, --ops N, --quiet, --json)"):format(tostring(flag)), 0) end
end
assert(seeds and seeds >= 1, "pbft_sweep: --seeds needs a positive integer")
assert(ops and ops >= 1, "pbft_sweep: --ops needs a positive integer")
from = from or synod.args.seed or 1

local bad, traces, failures = 0, {}, {}
for seed = from, from + seeds - 1 do
  local r = sweep.run(seed, { ops = ops })
  traces[#traces + 1] = r.trace
  if not r.ok then
    bad = bad + 1
    failures[#failures + 1] = { seed = seed, setup = r.setup, why = r.why }
    print(("FAIL seed=%d %s\n  %s\n  replay: ./synod run scenarios/pbft_sweep.lua -- --from %d --seeds 1 --ops %d"):format(
      seed, r.setup, (r.why:gsub("\n", "\n  ")), seed, ops))
  end
  if not quiet and (seed - from + 1) % 100 == 0 then
    print(("… %d of %d seeds, %d violations"):format(seed - from + 1, seeds, bad))
  end
end
print(("%d seeds, %d violations"):format(seeds, bad))
local trace = synod.crypto.digest(table.concat(traces)):gsub(".", function(c) return ("%02x"):format(c:byte()) end)
return report.finish {
  ok = bad == 0, seed = from, trace = trace, script = "scenarios/pbft_sweep.lua",
  reason = bad > 0 and ("%d of %d seeds violated a check"):format(bad, seeds) or nil,
  facts = { seeds = seeds, from = from, ops = ops, violations = bad, failures = failures },
}
