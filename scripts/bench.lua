-- bench — what `make bench` prints: simulator speed (frames delivered per
-- CPU second, TOM, crypto on and off), PBFT in the simulator (committed ops
-- per CPU second and frames per op, n = 4, 7, 16, batch 1, 10, 100, crypto
-- on and off), Ed25519 sign/verify per second, wire encode/decode per
-- second and the key-value app. Runs under stock lua5.4 with synod.so (not
-- in the sandbox: it reads the CPU clock). Figures, never assertions; a run
-- that did not finish or fails its checkers prints a WARNING row instead.
--   make bench [BENCH_ARGS="--quick --json"]   (sets LUA_PATH and LUA_CPATH for it)
local synod = require "synod"
local words = require "workloads.words"

local quick, as_json = false, false
for _, a in ipairs(arg or {}) do
  if a == "--quick" then quick = true elseif a == "--json" then as_json = true end
end

local results = {}
-- value nil: a WARNING row (the run is broken or impossible; note says why).
local function row(name, value, unit, note, decimals)
  results[#results + 1] = { name = name, value = value, unit = unit, note = note, decimals = decimals or 0 }
  if as_json then return end
  local shown = value and ("%14." .. (decimals or 0) .. "f"):format(value) or ("%14s"):format("WARNING")
  print(("%-44s %s %-12s %s"):format(name, shown, unit, note or ""))
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

-- ---- PBFT in the simulator ----
-- 100 clients, one request outstanding each (closed loop), `ops` puts over
-- PBFT_KEYS keys (so the checkpointed state is the same size whatever the
-- run length) queued round-robin before the clock starts; the run ends when
-- every op has f+1 matching replies. With B > 1 the primary waits up to
-- PBFT_BATCH_DELAY_MS for a batch to fill: longer than a client's round trip
-- here, so batches fill from the returning clients (the note gives the mean
-- batch actually proposed). Frames are those sent on the simulated network
-- (a replica's loopback copy is not one).
local PBFT_CLIENTS, PBFT_KEYS, PBFT_BATCH_DELAY_MS = 100, 1000, 50

local function pbft_bench(n, batch, crypto, ops)
  collectgarbage()   -- the previous run's simulator is freed here, not on this run's clock
  local sim = synod.sim { seed = 1, latency = synod.dist.uniform("1ms", "5ms"), crypto = crypto }
  local ok, nodes = pcall(sim.cluster, sim, { protocol = "pbft", n = n, clients = PBFT_CLIENTS,
    batch_size = batch, batch_delay_ms = batch > 1 and PBFT_BATCH_DELAY_MS or 0 })
  if not ok then return nil, "impossible: " .. tostring(nodes) end
  for i = 0, ops - 1 do sim:submit(("put k%d v%d"):format(i % PBFT_KEYS, i), n + i % PBFT_CLIENTS) end
  local t0 = os.clock()
  local rok, reason = pcall(sim.run, sim, { timeout = "10m", check_every = "5ms",
    stop = function() return nodes:completed() >= ops end })
  local cpu = os.clock() - t0
  if not rok then return nil, "run failed: " .. tostring(reason) end
  local done, s = nodes:completed(), sim:stats()
  if done < ops then
    return nil, ("only %d of %d ops committed (run ended: %s, %.1f CPU s)"):format(done, ops, reason, cpu)
  end
  local v = nodes:check { liveness = false }
  if not v.ok then
    local failed = {}
    for _, check in ipairs(v.order) do if not v.checks[check].ok then failed[#failed + 1] = check end end
    return nil, ("checkers failed (%s): %s"):format(table.concat(failed, ", "), (tostring(v.summary):gsub("\n.*", "")))
  end
  local seqs = 0
  for i = 1, n do seqs = math.max(seqs, nodes[i]:status().last_executed) end
  return { rate = done / cpu, frames = s.frames_sent / done, mean_batch = done / math.max(seqs, 1), ops = done }
end

for _, crypto in ipairs({ "none", "ed25519" }) do
  local ops = crypto == "none" and (quick and 1000 or 10000) or (quick and 100 or 500)
  for _, n in ipairs({ 4, 7, 16 }) do
    for _, batch in ipairs({ 1, 10, 100 }) do
      local name = ("sim PBFT n=%d B=%d crypto=%s: "):format(n, batch, crypto)
      local r, why = pbft_bench(n, batch, crypto, ops)
      if r then
        row(name .. "ops", r.rate, "ops/s", ("%d ops, %d clients, mean batch %.1f"):format(r.ops, PBFT_CLIENTS, r.mean_batch))
        row(name .. "frames", r.frames, "frames/op", nil, 1)
      else
        row(name .. "WARNING", nil, "", why)
      end
    end
  end
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
    if r.value then
      parts[#parts + 1] = ('{"name":"%s","value":%.' .. r.decimals .. 'f,"unit":"%s"}'):format(r.name, r.value, r.unit)
    else
      local warning = r.note:gsub('[%c"\\]', function(ch) return ("\\u%04x"):format(ch:byte()) end)
      parts[#parts + 1] = ('{"name":"%s","value":null,"unit":"%s","warning":"%s"}'):format(r.name, r.unit, warning)
    end
  end
  print("[" .. table.concat(parts, ",") .. "]")
end
