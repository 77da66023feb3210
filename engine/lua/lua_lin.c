/* lua_lin.c — the Lua face of the linearizability checker (check/lin.h):
 * synod.kv_history() and the "synod.KVHistory" userdata. Thin by rule: it
 * marshals arguments, records into check/'s client history, runs the
 * checker and pushes copies; it never judges anything itself and never
 * hands Lua a pointer into the history's arena.
 *
 *   local h = synod.kv_history()
 *   local id = h:invoke(client, "put x a", t)   -- op ids 1, 2, … (t: ns or "5ms")
 *   h:respond(id, "OK", t)                      -- never called: pending / gave up
 *   h:ops()      -- { {id=, client=, kind=, key=, value=|expected=,new=,
 *                --    invoke=, respond=, result=} … } (respond/result nil while pending)
 *   h:check([opts])  -- opts.max_steps: search steps per key (default
 *                    -- SYN_LIN_DEFAULT_MAX_STEPS)
 *   #h, tostring(h), <close>
 *   synod.lin_limits  -- { max_ops_per_key, max_ops, max_text_bytes,
 *                     --   max_cache_bytes, default_max_steps } (lin.h)
 *
 * check returns the verdict table of synL_push_verdict (checker
 * "linearizability"; node_a/node_b: clients, pos_a/pos_b: op ids) plus:
 * outcome ("ok" | "violation" | "undecided"), key (the key named, if any),
 * ops (op ids that cannot be ordered together, on a violation), steps,
 * keys, keys_failed, keys_undecided. */
#include "synl.h"
#include "../check/check_lua.h"
#include "../check/lin.h"

#include <string.h>

#define KVH_MT "synod.KVHistory"

typedef struct {
  syn_lin_history_t h;
  bool open;       /* false after __close / __gc */
} kvh_ud_t;

static syn_lin_history_t *check_kvh(lua_State *L, int arg) {
  kvh_ud_t *u = luaL_checkudata(L, arg, KVH_MT);
  if (!u->open) luaL_error(L, "synod.KVHistory used after it was closed");
  return &u->h;
}

syn_lin_history_t *synL_push_kvhistory(lua_State *L) {
  kvh_ud_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  syn_lin_history_init(&u->h);
  u->open = true;
  luaL_setmetatable(L, KVH_MT);
  return &u->h;
}

static int kvh_new(lua_State *L) {
  synL_push_kvhistory(L);
  return 1;
}

static int kvh_gc(lua_State *L) {
  kvh_ud_t *u = luaL_checkudata(L, 1, KVH_MT);
  if (u->open) { syn_lin_history_free(&u->h); u->open = false; }
  return 0;
}

static int kvh_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_kvh(L, 1)->count);
  return 1;
}

static int kvh_tostring(lua_State *L) {
  kvh_ud_t *u = luaL_checkudata(L, 1, KVH_MT);
  if (!u->open) { lua_pushliteral(L, "synod.KVHistory(closed)"); return 1; }
  uint32_t pending = 0;
  for (uint32_t i = 0; i < u->h.count; i++) pending += !u->h.ops[i].responded;
  lua_pushfstring(L, "synod.KVHistory(ops=%I, pending=%I)", (lua_Integer)u->h.count,
                  (lua_Integer)pending);
  return 1;
}

static int limit_error(lua_State *L, const char *fname, const syn_lin_history_t *h, int rc) {
  if (rc == -SYN_ELIMIT && h->count >= SYN_MAX_LIN_HISTORY_OPS)
    return luaL_error(L, "%s: the history already has SYN_MAX_LIN_HISTORY_OPS (%d) operations", fname,
                      (int)SYN_MAX_LIN_HISTORY_OPS);
  if (rc == -SYN_ELIMIT)
    return luaL_error(L, "%s: bytes would exceed SYN_MAX_LIN_HISTORY_BYTES (%d)", fname,
                      (int)SYN_MAX_LIN_HISTORY_BYTES);
  return luaL_error(L, "%s: %s", fname, syn_strerror(rc));
}

/* h:invoke(client, op_text, t) -> op id */
static int kvh_invoke(lua_State *L) {
  syn_lin_history_t *h = check_kvh(L, 1);
  lua_Integer client = luaL_checkinteger(L, 2);
  if (client < 0 || (lua_Unsigned)client > SYN_MAX_LIN_CLIENT)
    luaL_argerror(L, 2, lua_pushfstring(L, "client %I out of range 0..%I", client,
                                        (lua_Integer)SYN_MAX_LIN_CLIENT));
  size_t len = 0;
  const char *text = luaL_checklstring(L, 3, &len);
  syn_lin_cmd_t cmd;
  int rc = syn_lin_parse(text, len, &cmd);
  if (rc == -SYN_ELIMIT)
    luaL_argerror(L, 3, lua_pushfstring(L, "op text of %I bytes exceeds SYN_MAX_LIN_TEXT_BYTES (%d)",
                                        (lua_Integer)len, (int)SYN_MAX_LIN_TEXT_BYTES));
  if (rc)
    luaL_argerror(L, 3, lua_pushfstring(L, "bad op '%s' (expected \"put k v\", \"get k\", \"del k\" "
                                           "or \"cas k expected new\")", text));
  int64_t t_ns = synL_checktime(L, 4);
  uint32_t id = 0;
  rc = syn_lin_history_invoke(h, (uint32_t)client, &cmd, t_ns, &id);
  if (rc) return limit_error(L, "invoke", h, rc);
  lua_pushinteger(L, (lua_Integer)id + 1);
  return 1;
}

/* h:respond(id, result, t) */
static int kvh_respond(lua_State *L) {
  syn_lin_history_t *h = check_kvh(L, 1);
  lua_Integer id = luaL_checkinteger(L, 2);
  if (id < 1 || id > (lua_Integer)h->count)
    luaL_argerror(L, 2, lua_pushfstring(L, "no op %I (ids are 1..%I)", id, (lua_Integer)h->count));
  size_t len = 0;
  const char *result = luaL_checklstring(L, 3, &len);
  int64_t t_ns = synL_checktime(L, 4);
  const syn_lin_op_t *o = &h->ops[id - 1];
  if (o->responded) luaL_argerror(L, 2, lua_pushfstring(L, "op %I already has a response", id));
  if (t_ns < o->invoke_ns)
    luaL_argerror(L, 4, lua_pushfstring(L, "response at %I ns is before the invocation at %I ns",
                                        (lua_Integer)t_ns, (lua_Integer)o->invoke_ns));
  if (len > SYN_MAX_LIN_TEXT_BYTES)
    luaL_argerror(L, 3, lua_pushfstring(L, "result of %I bytes exceeds SYN_MAX_LIN_TEXT_BYTES (%d)",
                                        (lua_Integer)len, (int)SYN_MAX_LIN_TEXT_BYTES));
  int rc = syn_lin_history_respond(h, (uint32_t)(id - 1), (const uint8_t *)result, len, t_ns);
  if (rc) return limit_error(L, "respond", h, rc);
  return 0;
}

static void set_bytes(lua_State *L, const syn_lin_history_t *h, const char *field, uint32_t off,
                      uint32_t len) {
  lua_pushlstring(L, (const char *)syn_lin_history_bytes(h, off), len);
  lua_setfield(L, -2, field);
}

/* h:ops() -> a list of copies */
static int kvh_ops(lua_State *L) {
  syn_lin_history_t *h = check_kvh(L, 1);
  lua_createtable(L, (int)h->count, 0);
  for (uint32_t i = 0; i < h->count; i++) {
    const syn_lin_op_t *o = &h->ops[i];
    lua_createtable(L, 0, 9);
    lua_pushinteger(L, (lua_Integer)i + 1); lua_setfield(L, -2, "id");
    lua_pushinteger(L, (lua_Integer)o->client); lua_setfield(L, -2, "client");
    lua_pushstring(L, syn_lin_kind_name(o->kind)); lua_setfield(L, -2, "kind");
    set_bytes(L, h, "key", o->key_off, o->key_len);
    if (o->kind == SYN_LIN_PUT) set_bytes(L, h, "value", o->a_off, o->a_len);
    if (o->kind == SYN_LIN_CAS) {
      set_bytes(L, h, "expected", o->a_off, o->a_len);
      set_bytes(L, h, "new", o->b_off, o->b_len);
    }
    lua_pushinteger(L, (lua_Integer)o->invoke_ns); lua_setfield(L, -2, "invoke");
    if (o->responded) {
      lua_pushinteger(L, (lua_Integer)o->respond_ns); lua_setfield(L, -2, "respond");
      set_bytes(L, h, "result", o->res_off, o->res_len);
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* h:check([opts]) -> verdict */
static int kvh_check(lua_State *L) {
  syn_lin_history_t *h = check_kvh(L, 1);
  syn_lin_opts_t opts = { 0 };
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "max_steps");
    if (!lua_isnil(L, -1)) {
      int isint = 0;
      lua_Integer steps = lua_tointegerx(L, -1, &isint);
      if (!isint || steps < 1)
        luaL_argerror(L, 2, lua_pushfstring(L, "opts.max_steps: positive integer expected, got %s",
                                            isint ? lua_tostring(L, -1) : luaL_typename(L, -1)));
      opts.max_steps = (uint64_t)steps;
    }
    lua_pop(L, 1);
  }
  syn_verdict_t v;
  syn_lin_report_t rep;
  syn_check_linearizable(h, &opts, &v, &rep);
  synL_push_verdict(L, &v);
  static const char *const outcomes[] = { "ok", "violation", "undecided" };
  lua_pushstring(L, outcomes[rep.outcome]);
  lua_setfield(L, -2, "outcome");
  if (rep.key_op != UINT32_MAX) {
    const syn_lin_op_t *o = &h->ops[rep.key_op];
    set_bytes(L, h, "key", o->key_off, o->key_len);
  }
  if (rep.outcome == SYN_LIN_VIOLATION) {
    lua_createtable(L, (int)rep.nculprits, 0);
    for (uint32_t i = 0; i < rep.nculprits; i++) {
      lua_pushinteger(L, (lua_Integer)rep.culprits[i] + 1);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "ops");
  }
  lua_pushinteger(L, (lua_Integer)rep.steps); lua_setfield(L, -2, "steps");
  lua_pushinteger(L, (lua_Integer)rep.keys); lua_setfield(L, -2, "keys");
  lua_pushinteger(L, (lua_Integer)rep.keys_failed); lua_setfield(L, -2, "keys_failed");
  lua_pushinteger(L, (lua_Integer)rep.keys_undecided); lua_setfield(L, -2, "keys_undecided");
  return 1;
}

static const luaL_Reg kvh_methods[] = {
  { "invoke", kvh_invoke },
  { "respond", kvh_respond },
  { "ops", kvh_ops },
  { "check", kvh_check },
  { NULL, NULL },
};

static const luaL_Reg kvh_meta[] = {
  { "__gc", kvh_gc },
  { "__close", kvh_gc },
  { "__len", kvh_len },
  { "__tostring", kvh_tostring },
  { NULL, NULL },
};

void synL_open_lin(lua_State *L) {
  if (luaL_newmetatable(L, KVH_MT)) {
    luaL_setfuncs(L, kvh_meta, 0);
    luaL_newlib(L, kvh_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, kvh_new);
  lua_setfield(L, -2, "kv_history");
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, SYN_MAX_LIN_OPS_PER_KEY); lua_setfield(L, -2, "max_ops_per_key");
  lua_pushinteger(L, SYN_MAX_LIN_HISTORY_OPS); lua_setfield(L, -2, "max_ops");
  lua_pushinteger(L, SYN_MAX_LIN_TEXT_BYTES); lua_setfield(L, -2, "max_text_bytes");
  lua_pushinteger(L, SYN_MAX_LIN_CACHE_BYTES); lua_setfield(L, -2, "max_cache_bytes");
  lua_pushinteger(L, SYN_LIN_DEFAULT_MAX_STEPS); lua_setfield(L, -2, "default_max_steps");
  lua_setfield(L, -2, "lin_limits");
}
