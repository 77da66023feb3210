-- PBFT under a fuzzing replica: replica 1 sends every message it sends
-- also mutated — u64 fields set to edge values, bytes fields truncated,
-- scrambled, bit-flipped or emptied — and replays raw frames with flipped
-- bytes. Crypto is off, so every mutated message reaches PBFT's own checks
-- instead of being stopped by its signature. The honest replicas must not
-- crash, must count what they refuse, must stay safe and must answer
-- every op. (Under `make asan` this runs against the sanitised build.)
local synod = require "synod"
local seeds = require "support.seeds"

local EDGES = { 0, 1, 2, 3, 99, 100, 101, 1 << 31, (1 << 32) + 1, math.maxinteger, math.mininteger, -1 }

local function fuzzer(budget)
  local sent = 0
  local function mutate(node, msg)
    local m = msg:copy()
    local keys = {}
    for k, v in pairs(m) do
      if k ~= "type" and k ~= "proto" and (math.type(v) == "integer" or type(v) == "string") then keys[#keys + 1] = k end
    end
    table.sort(keys)
    if #keys == 0 then return m end
    local rnd = node.sim
    for _ = 1, rnd:random(1, 2) do
      local k = keys[rnd:random(#keys)]
      local v = m[k]
      if math.type(v) == "integer" then
        m[k] = rnd:random(2) == 1 and EDGES[rnd:random(#EDGES)] or v + rnd:random(-2, 2)
      else
        local choice = rnd:random(4)
        if choice == 1 then m[k] = v:sub(1, rnd:random(0, #v))
        elseif choice == 2 then m[k] = v:gsub(".", function() return string.char(rnd:random(0, 255)) end)
        elseif choice == 3 and #v > 0 then
          local i = rnd:random(#v)
          m[k] = v:sub(1, i - 1) .. string.char(v:byte(i) ~ (1 << rnd:random(0, 7))) .. v:sub(i + 1)
        else m[k] = "" end
      end
    end
    return m
  end
  return {
    on_send = function(node, msg, to)
      if sent >= budget then return msg end
      sent = sent + 1
      local out = { msg }
      local ok, bad = pcall(mutate, node, msg)
      if ok then out[#out + 1] = bad end
      -- A raw copy with flipped bytes (any part of the frame: header, payload, signature).
      local okf, frame = pcall(node.frame, node, msg)
      if okf and #frame > 0 then
        local i = node.sim:random(#frame)
        node:replay(to, frame:sub(1, i - 1) .. string.char(frame:byte(i) ~ 0xff) .. frame:sub(i + 1))
      end
      return out
    end,
  }
end

local function fuzz_run(seed)
  local sim = synod.sim { seed = seed, latency = synod.dist.uniform("1ms", "5ms"), crypto = "none" }
  local nodes = sim:cluster { protocol = "pbft", n = 4, clients = 3, view_change_ms = 400, client_timeout_ms = 250,
                              checkpoint_interval = 10, window = 30, batch_size = 4 }
  nodes[2]:behave(fuzzer(3000))
  -- Some faults so view changes, checkpoints and state transfer are exercised too.
  sim:at(synod.time("200ms"), function() nodes[1]:crash() end)
  sim:at(synod.time("600ms"), function() nodes[1]:restart { durable = seed % 2 == 0 } end)
  for i = 1, 150 do
    sim:at(i * 4000000, function() sim:submit(("put k%d v%d"):format(i % 6, i)) end)
  end
  local reason = sim:run { stop = function() return nodes:completed() >= 150 end, timeout = "120s" }
  assert(reason == "stop", ("only %d of 150 ops answered (%s)"):format(nodes:completed(), reason))
  local v = nodes:check { liveness = false }
  assert(v.ok, v.summary)
  local refused = 0
  for _, i in ipairs { 1, 3, 4 } do
    local c = nodes[i]:counters()
    for _, count in pairs(c.rejected) do refused = refused + count end
    for _, count in pairs(c.dropped or {}) do refused = refused + count end
  end
  assert(refused > 0, "the honest replicas refused nothing")
end

describe("PBFT under a fuzzing replica", function()
  it("stays up, safe and live, and counts what it refuses", function()
    seeds.each({ 1, 2, 3 }, fuzz_run)
  end)
end)
