/* lua_store.c — the Lua face of live/store: a node's durable record store,
 * for specs, experiments and inspecting a data directory.
 *
 *   local st = synod.live.store(dir, { cluster = c, id = 0, proto = "pbft" })
 *                                  -- c: 32 bytes or 64 hex digits
 *   st:put(kind, key, bytes)       -- upsert, in the open (unsynced) transaction
 *   st:forget(kind, below)         -- delete kind's records with key < below
 *   st:sync()                      -- commit: durable on return
 *   st:records()                   -- { {kind=, key=, data=} … } in (kind, key) order
 *   st:stats()                     -- {puts, forgets, syncs, put_bytes, pending, last_sync_ns, failed}
 *   st:close()                     -- rolls back what was not synced (also on __gc, __close)
 *   synod.live.max_record_bytes, synod.live.max_store_key
 *
 * Failures raise the store's own sentence (syn_store_error). Thin by rule:
 * arguments in, copies out; never a pointer into SQLite's buffers. */
#include "synl.h"
#include "../live/store.h"

#include <string.h>

#define STORE_MT "synod.Store"
#define WALKBUF_MT "synod.StoreWalk"   /* a syn_buf_t freed by __gc, whatever raises */

typedef struct { syn_store_t *st; } lstore_t;

static syn_store_t *check_open(lua_State *L) {
  lstore_t *u = luaL_checkudata(L, 1, STORE_MT);
  if (!u->st) luaL_error(L, "store: used after close");
  return u->st;
}

static lua_Integer check_range(lua_State *L, int arg, lua_Integer lo, lua_Integer hi) {
  lua_Integer v = luaL_checkinteger(L, arg);
  if (v < lo || v > hi)
    luaL_argerror(L, arg, lua_pushfstring(L, "must be %I..%I, got %I", lo, hi, v));
  return v;
}

static int l_store_new(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  uint8_t cluster[SYN_DIGEST_BYTES];
  size_t n;
  lua_getfield(L, 2, "cluster");
  const char *c = lua_tolstring(L, -1, &n);
  if (c && n == SYN_DIGEST_BYTES) memcpy(cluster, c, n);
  else if (!c || n != 2 * SYN_DIGEST_BYTES || syn_unhex(c, cluster, SYN_DIGEST_BYTES) != 0)
    return luaL_argerror(L, 2, "field 'cluster' must be 32 bytes or 64 hex digits");
  lua_getfield(L, 2, "id");
  int isnum;
  lua_Integer id = lua_tointegerx(L, -1, &isnum);
  if (!isnum || id < 0 || id > (lua_Integer)UINT32_MAX)
    return luaL_argerror(L, 2, "field 'id' must be an integer 0..4294967295");
  lua_getfield(L, 2, "proto");
  const char *proto = lua_tostring(L, -1);
  if (!proto || lua_type(L, -1) != LUA_TSTRING) return luaL_argerror(L, 2, "field 'proto' must be a string");
  lstore_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->st = NULL;
  luaL_setmetatable(L, STORE_MT);
  if (syn_store_open(&u->st, dir, cluster, (uint32_t)id, proto) != 0)
    return luaL_error(L, "%s", syn_store_error(NULL));
  return 1;
}

static int l_store_close(lua_State *L) {
  lstore_t *u = luaL_checkudata(L, 1, STORE_MT);
  syn_store_close(u->st);
  u->st = NULL;
  return 0;
}

static int l_store_put(lua_State *L) {
  syn_store_t *st = check_open(L);
  lua_Integer kind = check_range(L, 2, 0, UINT32_MAX);
  lua_Integer key = check_range(L, 3, 0, LUA_MAXINTEGER);
  size_t len;
  const char *data = luaL_checklstring(L, 4, &len);
  if (syn_store_put(st, (uint32_t)kind, (uint64_t)key, (const uint8_t *)data, len) != 0)
    return luaL_error(L, "%s", syn_store_error(st));
  return 0;
}

static int l_store_forget(lua_State *L) {
  syn_store_t *st = check_open(L);
  lua_Integer kind = check_range(L, 2, 0, UINT32_MAX);
  lua_Integer below = check_range(L, 3, 0, LUA_MAXINTEGER);
  if (syn_store_forget(st, (uint32_t)kind, (uint64_t)below) != 0) return luaL_error(L, "%s", syn_store_error(st));
  return 0;
}

static int l_store_sync(lua_State *L) {
  syn_store_t *st = check_open(L);
  if (syn_store_sync(st) != 0) return luaL_error(L, "%s", syn_store_error(st));
  return 0;
}

/* The walk copies records into a C buffer and touches no Lua (a Lua error
 * must not unwind through store.c mid-walk); they are pushed afterwards.
 * Layout per record: u32 kind, u64 key, u32 len, data. */
static int collect(void *ctx, uint32_t kind, uint64_t key, const uint8_t *data, size_t len) {
  syn_buf_t *b = ctx;
  int rc = syn_buf_put_u32(b, kind);
  if (rc == 0) rc = syn_buf_put_u64(b, key);
  if (rc == 0) rc = syn_buf_put_u32(b, (uint32_t)len);
  if (rc == 0) rc = syn_buf_append(b, data, len);
  return rc;
}

static int l_store_records(lua_State *L) {
  syn_store_t *st = check_open(L);
  syn_buf_t *buf = lua_newuserdatauv(L, sizeof *buf, 0);
  syn_buf_init(buf, 0);
  luaL_setmetatable(L, WALKBUF_MT);
  int rc = syn_store_each(st, collect, buf);
  if (rc != 0) {
    if (rc == -SYN_ENOMEM) return luaL_error(L, "store: out of memory reading records");
    return luaL_error(L, "%s", syn_store_error(st));
  }
  lua_newtable(L);
  size_t pos = 0;
  for (lua_Integer i = 1; pos < buf->len; i++) {
    uint32_t kind = syn_get_u32(buf->data + pos);
    uint64_t key = syn_get_u64(buf->data + pos + 4);
    uint32_t len = syn_get_u32(buf->data + pos + 12);
    pos += 16;
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, kind); lua_setfield(L, -2, "kind");
    lua_pushinteger(L, (lua_Integer)key); lua_setfield(L, -2, "key");
    lua_pushlstring(L, (const char *)buf->data + pos, len); lua_setfield(L, -2, "data");
    lua_rawseti(L, -2, i);
    pos += len;
  }
  return 1;   /* the walk buffer goes with its userdata */
}

static int l_walkbuf_gc(lua_State *L) {
  syn_buf_free(luaL_checkudata(L, 1, WALKBUF_MT));
  return 0;
}

static int l_store_stats(lua_State *L) {
  syn_store_t *st = check_open(L);
  syn_store_stats_t s;
  syn_store_stats(st, &s);
  lua_createtable(L, 0, 7);
  lua_pushinteger(L, (lua_Integer)s.puts); lua_setfield(L, -2, "puts");
  lua_pushinteger(L, (lua_Integer)s.forgets); lua_setfield(L, -2, "forgets");
  lua_pushinteger(L, (lua_Integer)s.syncs); lua_setfield(L, -2, "syncs");
  lua_pushinteger(L, (lua_Integer)s.put_bytes); lua_setfield(L, -2, "put_bytes");
  lua_pushinteger(L, (lua_Integer)s.pending); lua_setfield(L, -2, "pending");
  lua_pushinteger(L, (lua_Integer)s.last_sync_ns); lua_setfield(L, -2, "last_sync_ns");
  lua_pushboolean(L, s.failed); lua_setfield(L, -2, "failed");
  return 1;
}

void synL_open_store(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "put", l_store_put }, { "forget", l_store_forget }, { "sync", l_store_sync },
    { "records", l_store_records }, { "stats", l_store_stats }, { "close", l_store_close },
    { NULL, NULL }
  };
  luaL_newmetatable(L, STORE_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_store_close); lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_store_close); lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_newmetatable(L, WALKBUF_MT);
  lua_pushcfunction(L, l_walkbuf_gc); lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  /* synod.live is lua_live.c's table; made here only if it is absent. */
  if (lua_getfield(L, -1, "live") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "live");
  }
  lua_pushcfunction(L, l_store_new); lua_setfield(L, -2, "store");
  lua_pushinteger(L, SYN_MAX_STORE_RECORD_BYTES); lua_setfield(L, -2, "max_record_bytes");
  lua_pushinteger(L, SYN_MAX_STORE_KEY); lua_setfield(L, -2, "max_store_key");
  lua_pop(L, 1);
}
