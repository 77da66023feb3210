-- bench — what `make bench` prints: simulator speed (frames delivered per
-- CPU second, TOM, crypto on and off), Ed25519 sign/verify per second and
-- wire encode/decode per second. Runs under stock lua5.4 with synod.so
-- (not in the sandbox: it reads the CPU clock). Figures, never assertions.
--   lua5.4 scripts/bench.lua [--quick] [--json]
local synod = require "synod"
local words = require "workloads.words"

local quick, as_json = false, false
for _, a in ipairs(arg or {}) do
  if a == "--quick" then quick = true elseif a == "--json" then as_json = true end
end

local results = {}
local function row(name, value, unit, note)
  results[#results + 1] = { name = name, value = value, unit = unit, note = note }
  if not as_json then print(("%-44s %14.0f %-12s %s"):format(name, value, unit, note or "")) end
end

local function sim_bench(n, count, crypto)
  local sim = synod.sim { seed = 1, latency = synod.dist.uniform("1ms", "5ms"), crypto = crypto }
  local nodes = sim:cluster { protocol = "tom", n = n }
  words.start(sim, nodes, { count = count, mean = "20ms" })
  local t0 = os.clock()
  sim:run { timeout = "1h", check_every = "100ms" }      -- until the cluster is quiet
  local cpu = os.clock() - t0
  local s = sim:stats()
  return s.frames_delivered / cpu, s.events / cpu, nodes:min_delivered() * n / cpu, nodes:min_delivered()
end

if not as_json then
  print(("synod %s bench%s — one core, CPU time"):format(synod.version, quick and " (quick)" or ""))
  print(("%-44s %14s %-12s %s"):format("measure", "rate", "unit", "notes"))
end

local count = quick and 2000 or 20000
for _, crypto in ipairs({ "none", "ed25519" }) do
  local c = crypto == "none" and count or count // 10
  local frames, events, delivered, words_done = sim_bench(5, c, crypto)
  row("sim TOM n=5 crypto=" .. crypto .. ": frame deliveries", frames, "frames/s", ("%d of %d words delivered"):format(words_done, c))
  row("sim TOM n=5 crypto=" .. crypto .. ": events", events, "events/s")
  row("sim TOM n=5 crypto=" .. crypto .. ": words delivered", delivered, "deliveries/s")
end

local iters = quick and 2000 or 20000
local c = synod.bench_crypto(iters)
row("Ed25519 sign (frame, domain-separated)", c.sign, "ops/s")
row("Ed25519 verify", c.verify, "ops/s")
local w = synod.bench_wire(iters * 10)
row("wire encode (frame)", w.encode, "ops/s")
row("wire decode (frame)", w.decode, "ops/s")

-- ---- the key-value app (engine/app/kv.c), measured in C by synod.bench_kv ----
-- n puts of new keys, then n ops half put half get on random keys, then the
-- state digest, snapshot and restore of the n-key store (wall clock, one run).
do
  local keys = quick and 10000 or 100000
  local kv = synod.bench_kv(keys)
  local note = ("%d keys"):format(keys)
  row("kv execute: insert new keys", kv.insert, "ops/s", note)
  row("kv execute: 50% put / 50% get", kv.execute, "ops/s", note)
  row("kv digest (sorted BLAKE2b-256)", kv.digest_ms * 1000, "us", note)
  row("kv snapshot", kv.snapshot_ms * 1000, "us", ("%s, %d bytes"):format(note, kv.snapshot_bytes))
  row("kv restore", kv.restore_ms * 1000, "us", note)
end

if as_json then
  local parts = {}
  for _, r in ipairs(results) do
    parts[#parts + 1] = ('{"name":"%s","value":%.0f,"unit":"%s"}'):format(r.name, r.value, r.unit)
  end
  print("[" .. table.concat(parts, ",") .. "]")
end
