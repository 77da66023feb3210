/* lua_kv.c — the Lua face of the key-value app (app/kv.c): synod.kv(), the
 * "synod.KV" userdata, synod.kv_limits and synod.bench_kv.
 *
 *   local kv = synod.kv()                      -- or synod.kv{ max_keys = 8, max_bytes = 64 }
 *   kv:execute("put a 1")   --> "OK"           -- grammar and results: app/kv.h
 *   kv:digest()             --> 64 hex digits  -- the canonical state digest
 *   kv:snapshot()           --> the canonical snapshot (a string)
 *   kv:restore(snap)        --> true | nil, reason, message
 *   kv:count(), kv:bytes()  --> keys stored, key + value bytes stored
 *   kv:close()                                 -- also __close and __gc
 *
 * restore's reasons, one per -SYN_E* code of syn_kv_restore: "truncated",
 * "magic", "version", "limit", "trailing", "checksum" (corrupt: the check
 * digest does not match), "corrupt" (checked but not canonical). The store
 * is unchanged whenever restore answers nil.
 *
 * Execute, digest, snapshot, restore and count go through syn_kv_app (the
 * app.h table PBFT uses), so the specs exercise that interface too; the
 * optional lower limits are the store's own (kv.h).
 *
 * Thin by rule: marshals, calls the app, pushes copies. It never decides a
 * result, and never hands Lua a pointer into a C buffer. bench_kv reads the
 * wall clock and is withheld from the sandbox (sandbox.c). */
#include "synl.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../app/kv.h"

#define KV_MT "synod.KV"
#define SYN_MAX_BENCH_KV_KEYS 1000000   /* one bench_kv call's store size */

typedef struct {
  const syn_app_t *app;   /* syn_kv_app */
  void *state;            /* a syn_kv_t; NULL after close */
  syn_buf_t result;       /* reused by execute, capped at SYN_MAX_APP_RESULT_BYTES */
  syn_buf_t snap;         /* snapshot's bytes until they are copied into Lua */
} kv_ud_t;

/* ---- arguments ---- */

static kv_ud_t *check_kv(lua_State *L, int arg) {
  kv_ud_t *u = luaL_checkudata(L, arg, KV_MT);
  if (u->state == NULL) luaL_error(L, "synod.KV used after it was closed");
  return u;
}

/* opts[key] as an integer in 1..max, or max when absent. */
static lua_Integer opt_limit(lua_State *L, int opts, const char *key, lua_Integer max) {
  if (lua_isnoneornil(L, opts)) return max;
  lua_getfield(L, opts, key);
  lua_Integer v = max;
  if (!lua_isnil(L, -1)) {
    int isint = 0;
    v = lua_tointegerx(L, -1, &isint);
    if (!isint)
      luaL_argerror(L, opts, lua_pushfstring(L, "%s: integer expected, got %s", key, luaL_typename(L, -1)));
    if (v < 1 || v > max)
      luaL_argerror(L, opts, lua_pushfstring(L, "%s must be in 1..%I, got %I", key, max, v));
  }
  lua_pop(L, 1);
  return v;
}

static const char *restore_reason(int rc) {
  switch (rc) {
  case -SYN_ETRUNC: return "truncated";
  case -SYN_EMAGIC: return "magic";
  case -SYN_EVERSION: return "version";
  case -SYN_ELIMIT: return "limit";
  case -SYN_ETRAILING: return "trailing";
  case -SYN_EBADSIG: return "checksum";
  case -SYN_EPARSE: return "corrupt";
  default: return NULL;
  }
}

/* ---- construction and lifetime ---- */

/* kv([opts]) -> synod.KV; opts.max_keys, opts.max_bytes lower the limits. */
static int l_kv(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  syn_kv_limits_t lim = {
    .max_keys = (uint32_t)opt_limit(L, 1, "max_keys", SYN_MAX_KV_KEYS),
    .max_bytes = (uint64_t)opt_limit(L, 1, "max_bytes", (lua_Integer)SYN_MAX_KV_BYTES),
  };
  kv_ud_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->app = syn_app_find("kv");
  SYN_ASSERT(u->app == &syn_kv_app);
  u->state = NULL;
  syn_buf_init(&u->result, SYN_MAX_APP_RESULT_BYTES);
  syn_buf_init(&u->snap, 0);
  luaL_setmetatable(L, KV_MT);   /* from here __gc frees whatever is set */
  syn_kv_t *kv;
  int rc = syn_kv_new(&kv, &lim);
  if (rc) return luaL_error(L, "kv: %s", syn_strerror(rc));   /* limits were checked: only ENOMEM */
  u->state = kv;
  return 1;
}

static int l_kv_gc(lua_State *L) {
  kv_ud_t *u = luaL_checkudata(L, 1, KV_MT);
  if (u->state != NULL) { u->app->free(u->state); u->state = NULL; }
  syn_buf_free(&u->result);
  syn_buf_free(&u->snap);
  return 0;
}

static int l_kv_tostring(lua_State *L) {
  kv_ud_t *u = luaL_checkudata(L, 1, KV_MT);
  if (u->state == NULL) lua_pushliteral(L, "synod.KV (closed)");
  else lua_pushfstring(L, "synod.KV (%I keys)", (lua_Integer)u->app->count(u->state));
  return 1;
}

/* ---- methods ---- */

/* kv:execute(op) -> result string. A malformed op is a result ("ERR …"),
 * not an error; only a non-string op or running out of memory raises. */
static int l_kv_execute(lua_State *L) {
  kv_ud_t *u = check_kv(L, 1);
  size_t len;
  const char *op = luaL_checklstring(L, 2, &len);
  int rc = u->app->execute(u->state, (const uint8_t *)op, len, &u->result);
  if (rc) return luaL_error(L, "execute: %s", syn_strerror(rc));
  lua_pushlstring(L, (const char *)u->result.data, u->result.len);
  return 1;
}

/* kv:digest() -> lowercase hex of the 32-byte state digest. */
static int l_kv_digest(lua_State *L) {
  kv_ud_t *u = check_kv(L, 1);
  uint8_t d[SYN_DIGEST_BYTES];
  char hex[2 * SYN_DIGEST_BYTES + 1];
  u->app->digest(u->state, d);
  syn_hex(d, sizeof d, hex);
  lua_pushstring(L, hex);
  return 1;
}

/* kv:snapshot() -> the canonical snapshot bytes. */
static int l_kv_snapshot(lua_State *L) {
  kv_ud_t *u = check_kv(L, 1);
  /* The bytes live in the userdata until copied, so a memory error raised
   * by the push cannot leak them (__gc frees them). */
  int rc = u->app->snapshot(u->state, &u->snap);
  if (rc) { syn_buf_free(&u->snap); return luaL_error(L, "snapshot: %s", syn_strerror(rc)); }
  lua_pushlstring(L, (const char *)u->snap.data, u->snap.len);
  syn_buf_free(&u->snap);   /* a snapshot can be large; do not keep it */
  return 1;
}

/* kv:restore(snap) -> true, or nil, reason, message (store unchanged). */
static int l_kv_restore(lua_State *L) {
  kv_ud_t *u = check_kv(L, 1);
  size_t len;
  const char *snap = luaL_checklstring(L, 2, &len);
  int rc = u->app->restore(u->state, (const uint8_t *)snap, len);
  if (rc == 0) { lua_pushboolean(L, 1); return 1; }
  const char *reason = restore_reason(rc);
  if (reason == NULL) return luaL_error(L, "restore: %s", syn_strerror(rc));   /* ENOMEM */
  lua_pushnil(L);
  lua_pushstring(L, reason);
  lua_pushstring(L, syn_strerror(rc));
  return 3;
}

static int l_kv_count(lua_State *L) {
  kv_ud_t *u = check_kv(L, 1);
  lua_pushinteger(L, (lua_Integer)u->app->count(u->state));
  return 1;
}

static int l_kv_bytes(lua_State *L) {
  kv_ud_t *u = check_kv(L, 1);
  lua_pushinteger(L, (lua_Integer)syn_kv_bytes(u->state));
  return 1;
}

static int l_kv_close(lua_State *L) {
  return l_kv_gc(L);
}

/* ---- benchmark (make bench) ---- */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * SYN_NS_PER_S + ts.tv_nsec;
}

static double per_s(uint64_t n, int64_t ns) { return (double)n * 1e9 / (double)(ns > 0 ? ns : 1); }
static double to_ms(int64_t ns) { return (double)ns / 1e6; }

static void set_number(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

/* Runs one op, which must succeed with the expected first letter. */
static void bench_op(syn_kv_t *kv, const char *op, int len, syn_buf_t *r, char expect) {
  int rc = syn_kv_execute(kv, (const uint8_t *)op, (size_t)len, r);
  SYN_ASSERT(rc == 0 && r->len > 0 && r->data[0] == (uint8_t)expect);
}

/* bench_kv(n) -> { insert=, execute= (ops/s), digest_ms=, snapshot_ms=,
 * restore_ms=, snapshot_bytes=, keys= }: n puts of new keys ("k%08u", a
 * 16-byte value), then n ops half put half get on keys picked by a seeded
 * PRNG, then digest, snapshot and restore of the n-key store. Op text is
 * formatted inside the timed loops (one snprintf per op, a few % of the
 * figure). */
static int l_bench_kv(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 1 || n > SYN_MAX_BENCH_KV_KEYS)
    luaL_argerror(L, 1, lua_pushfstring(L, "keys must be in 1..%d, got %I", SYN_MAX_BENCH_KV_KEYS, n));
  syn_kv_t *kv = NULL, *copy = NULL;
  syn_buf_t r, snap;
  syn_buf_init(&r, SYN_MAX_APP_RESULT_BYTES);
  syn_buf_init(&snap, 0);
  int rc = syn_kv_new(&kv, NULL);
  if (rc == 0) rc = syn_kv_new(&copy, NULL);
  if (rc) goto fail;
  char op[64];

  int64_t t0 = now_ns();
  for (lua_Integer i = 0; i < n; i++) {
    int len = snprintf(op, sizeof op, "put k%08u v%015u", (unsigned)i, (unsigned)i);
    bench_op(kv, op, len, &r, 'O');
  }
  int64_t t1 = now_ns();
  syn_prng_t prng;
  syn_prng_seed(&prng, 1);
  for (lua_Integer i = 0; i < n; i++) {
    unsigned k = (unsigned)syn_prng_below(&prng, (uint64_t)n);
    if (i & 1) {
      int len = snprintf(op, sizeof op, "get k%08u", k);
      bench_op(kv, op, len, &r, 'V');
    } else {
      int len = snprintf(op, sizeof op, "put k%08u w%015u", k, (unsigned)i);
      bench_op(kv, op, len, &r, 'O');
    }
  }
  int64_t t2 = now_ns();
  uint8_t d[SYN_DIGEST_BYTES], d2[SYN_DIGEST_BYTES];
  syn_kv_digest(kv, d);
  int64_t t3 = now_ns();
  rc = syn_kv_snapshot(kv, &snap);
  if (rc) goto fail;
  int64_t t4 = now_ns();
  rc = syn_kv_restore(copy, snap.data, snap.len);
  if (rc) goto fail;
  int64_t t5 = now_ns();
  syn_kv_digest(copy, d2);
  SYN_ASSERT(memcmp(d, d2, sizeof d) == 0);
  SYN_ASSERT(syn_kv_count(kv) == (uint64_t)n);

  size_t snap_bytes = snap.len;
  syn_kv_free(kv); syn_kv_free(copy);
  syn_buf_free(&r); syn_buf_free(&snap);

  lua_createtable(L, 0, 7);
  set_number(L, "insert", per_s((uint64_t)n, t1 - t0));
  set_number(L, "execute", per_s((uint64_t)n, t2 - t1));
  set_number(L, "digest_ms", to_ms(t3 - t2));
  set_number(L, "snapshot_ms", to_ms(t4 - t3));
  set_number(L, "restore_ms", to_ms(t5 - t4));
  lua_pushinteger(L, (lua_Integer)snap_bytes);
  lua_setfield(L, -2, "snapshot_bytes");
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "keys");
  return 1;

fail:
  syn_kv_free(kv); syn_kv_free(copy);
  syn_buf_free(&r); syn_buf_free(&snap);
  return luaL_error(L, "bench_kv: %s", syn_strerror(rc));
}

/* ---- open ---- */

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

void synL_open_kv(lua_State *L) {
  if (luaL_newmetatable(L, KV_MT)) {
    static const luaL_Reg methods[] = {
      { "execute", l_kv_execute }, { "digest", l_kv_digest }, { "snapshot", l_kv_snapshot },
      { "restore", l_kv_restore }, { "count", l_kv_count }, { "bytes", l_kv_bytes },
      { "close", l_kv_close }, { NULL, NULL },
    };
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_kv_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_kv_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_kv_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);

  lua_pushcfunction(L, l_kv);
  lua_setfield(L, -2, "kv");

  lua_createtable(L, 0, 7);
  set_int(L, "key_bytes", SYN_MAX_KV_KEY_BYTES);
  set_int(L, "value_bytes", SYN_MAX_KV_VALUE_BYTES);
  set_int(L, "keys", SYN_MAX_KV_KEYS);
  set_int(L, "bytes", (lua_Integer)SYN_MAX_KV_BYTES);
  set_int(L, "op_bytes", SYN_MAX_APP_OP_BYTES);
  set_int(L, "result_bytes", SYN_MAX_APP_RESULT_BYTES);
  set_int(L, "snapshot_version", SYN_KV_SNAPSHOT_VERSION);
  lua_setfield(L, -2, "kv_limits");

  lua_pushcfunction(L, l_bench_kv);
  lua_setfield(L, -2, "bench_kv");
}
