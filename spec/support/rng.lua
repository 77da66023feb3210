-- A seeded generator of the specs' own (splitmix64), so busted's math.random
-- is left alone and a seed replays the same draws on every machine.
--   local rnd = require "support.rng" (seed); rnd(lo, hi) → integer in [lo, hi]
return function(seed)
  local x = seed
  return function(lo, hi)
    x = x + 0x9E3779B97F4A7C15
    local z = x
    z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * 0x94D049BB133111EB
    z = z ~ (z >> 31)
    return lo + z % (hi - lo + 1)
  end
end
