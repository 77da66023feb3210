/* sandbox.c — how scripts run: the one protected-call helper (traceback,
 * instruction budget), time arguments, and the sandbox that scenario and
 * behaviour scripts live in. The sandbox is an allow-list: no io, os,
 * debug, package, dofile/loadfile, no bytecode; `require` finds only Lua
 * source under the engine's scripts/ and the script's own folder;
 * math.random draws from the current simulation's seeded PRNG. */
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "synl.h"
#include "../sim/sim.h"

#define SYN_MAX_DATA_BYTES   (16u << 20)   /* synod.data(): one data file */
#define SYN_MAX_SCRIPT_BYTES (4u << 20)    /* one script or module source */

/* ---- protected calls ---- */

static int budget_left;

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Once the budget is spent every further instruction fails, so a script
 * cannot catch the error with pcall and carry on. */
static void budget_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
  luaL_error(L, "stopped after its instruction budget of %d instructions (a runaway loop?)", budget_left);
}

int synL_pcall(lua_State *L, int nargs, int nresults, const char *what, int budget) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  lua_Hook old = lua_gethook(L);
  int old_mask = lua_gethookmask(L), old_count = lua_gethookcount(L), old_budget = budget_left;
  if (budget > 0) { budget_left = budget; lua_sethook(L, budget_hook, LUA_MASKCOUNT, budget); }
  int rc = lua_pcall(L, nargs, nresults, base);
  if (budget > 0) { lua_sethook(L, old, old_mask, old_count); budget_left = old_budget; }
  lua_remove(L, base);
  if (rc != LUA_OK && what != NULL) {
    lua_pushfstring(L, "%s: %s", what, lua_tostring(L, -1) ? lua_tostring(L, -1) : "(no message)");
    lua_remove(L, -2);
  }
  return rc;
}

/* ---- time arguments ---- */

static int64_t to_time(lua_State *L, int idx, bool *ok) {
  *ok = true;
  if (lua_isinteger(L, idx)) {
    lua_Integer v = lua_tointeger(L, idx);
    if (v >= 0) return v;
    *ok = false;
    return 0;
  }
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Number v = lua_tonumber(L, idx);
    if (v >= 0 && v < 9.2e18) return (int64_t)v;
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    int64_t ns;
    if (syn_time_parse(lua_tostring(L, idx), &ns) == 0) return ns;
  }
  *ok = false;
  return 0;
}

int64_t synL_checktime(lua_State *L, int arg) {
  bool ok;
  int64_t ns = to_time(L, arg, &ok);
  if (!ok) {
    if (lua_type(L, arg) == LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "bad time '%s' (use ns or a string like \"250us\", \"5ms\", \"2s\")", lua_tostring(L, arg)));
    luaL_typeerror(L, arg, "time");
  }
  return ns;
}

int64_t synL_opttime(lua_State *L, int arg, int64_t def) {
  return lua_isnoneornil(L, arg) ? def : synL_checktime(L, arg);
}

int64_t synL_fieldtime(lua_State *L, int t, const char *key, int64_t def, const char *fname) {
  lua_getfield(L, t, key);
  int64_t ns = def;
  if (!lua_isnil(L, -1)) {
    bool ok;
    ns = to_time(L, -1, &ok);
    if (!ok) luaL_error(L, "bad field '%s' to '%s' (time expected, like \"5ms\", got %s)", key, fname,
                        lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return ns;
}

/* synod.time("5ms") → 5000000; synod.format_time(ns) → "5ms" */
static int l_time(lua_State *L) { lua_pushinteger(L, synL_checktime(L, 1)); return 1; }

static int l_format_time(lua_State *L) {
  char buf[64];
  syn_time_format(luaL_checkinteger(L, 1), buf, sizeof buf);
  lua_pushstring(L, buf);
  return 1;
}

/* synod.log_level([level]) → the level before; sets it when given. */
static int l_log_level(lua_State *L) {
  static const char *const names[] = { "trace", "debug", "info", "warn", "error", "off" };
  syn_log_level_t before = syn_log_get_level();
  if (!lua_isnoneornil(L, 1)) {
    syn_log_level_t level;
    if (syn_log_parse_level(luaL_checkstring(L, 1), &level) != 0)
      return luaL_argerror(L, 1, "trace, debug, info, warn, error or off expected");
    syn_log_set_level(level);
  }
  lua_pushstring(L, names[before]);
  return 1;
}

/* ---- home, data ---- */

/* Reads a whole file (bounded); pushes its contents or raises. */
static void push_file(lua_State *L, const char *path, size_t max_bytes) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) luaL_error(L, "cannot open '%s': %s", path, strerror(errno));
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t total = 0, got;
  char chunk[8192];
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
    total += got;
    if (total > max_bytes) { fclose(f); luaL_error(L, "'%s' is larger than its limit of %d bytes", path, (int)max_bytes); }
    luaL_addlstring(&b, chunk, got);
  }
  fclose(f);
  luaL_pushresult(&b);
}

/* synod.data("words.csv") → the contents of <home>/data/words.csv */
static int l_data(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (name[0] == '\0' || name[0] == '.' || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(name))
    luaL_argerror(L, 1, "a plain file name under data/ expected");
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/data/%s", syn_home_dir(), name);
  push_file(L, path, SYN_MAX_DATA_BYTES);
  return 1;
}

/* ---- the sandbox ---- */

static const char *const safe_globals[] = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "print", "select",
  "tonumber", "tostring", "type", "setmetatable", "rawequal", "rawget",
  "rawset", "rawlen", "_VERSION", NULL
};
static const char *const safe_libs[] = { "string", "table", "utf8", "coroutine", "math", NULL };

/* math.random inside the sandbox: the PRNG of the simulation that is
 * running this code (a hook, a callback or a stop function). */
static int l_sandbox_random(lua_State *L) {
  syn_prng_t *p = synL_current_prng();
  if (p == NULL)
    return luaL_error(L, "math.random works only inside simulation hooks, callbacks and stop functions "
                         "(randomness comes from the simulation's seed); elsewhere use sim:random()");
  return synL_random(L, p, 1);
}

/* getmetatable inside the sandbox: the string metatable is the host's own,
 * shared with every other chunk, so scripts do not get to touch it. */
static int l_sandbox_getmetatable(lua_State *L) {
  luaL_checkany(L, 1);
  if (lua_type(L, 1) == LUA_TSTRING || !lua_getmetatable(L, 1)) { lua_pushnil(L); return 1; }
  lua_getfield(L, -1, "__metatable");         /* a protected metatable answers for itself */
  if (lua_isnil(L, -1)) lua_pop(L, 1);
  return 1;
}

/* coroutine.create / coroutine.wrap inside the sandbox: a new thread gets
 * the creator's instruction budget hook, so a runaway loop inside a
 * coroutine is stopped too. */
static lua_State *budgeted_thread(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_Hook hook = lua_gethook(L);
  if (hook) lua_sethook(co, hook, lua_gethookmask(L), lua_gethookcount(L));
  return co;
}

static int l_sandbox_cocreate(lua_State *L) {
  budgeted_thread(L);
  return 1;
}

static int auxwrap(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int narg = lua_gettop(L), nres;
  luaL_checkstack(co, narg, "too many arguments to resume");
  lua_xmove(L, co, narg);
  int status = lua_resume(co, L, narg, &nres);
  if (status == LUA_OK || status == LUA_YIELD) {
    luaL_checkstack(L, nres + 1, "too many results to resume");
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1);
  return lua_error(L);
}

static int l_sandbox_cowrap(lua_State *L) {
  budgeted_thread(L);
  lua_pushcclosure(L, auxwrap, 1);
  return 1;
}

/* synod.sim{…} inside the sandbox: a trace file only under the current
 * folder (a relative path without ".."). Upvalue 1: the real synod.sim. */
static int l_sandbox_sim(lua_State *L) {
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "trace");
    const char *path = lua_tostring(L, -1);
    if (path && (path[0] == '/' || strstr(path, "..")))
      return luaL_error(L, "bad field 'trace' to 'sim' (a relative path below the current folder expected, got '%s')", path);
    lua_pop(L, 1);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* The synod module as a script sees it: a copy without what reaches
 * outside the simulation (key files, the wall clock, the CSPRNG, file
 * loading, the sandbox itself). */
static void push_sandboxed_module(lua_State *L) {
  static const char *const withheld[] = { "sandbox", "bench_wire", "bench_crypto", "bench_kv", "crypto", "log_level", NULL };
  lua_getfield(L, LUA_REGISTRYINDEX, "synod.module");
  int real = lua_gettop(L);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, real)) {
    bool keep = true;
    for (int i = 0; withheld[i]; i++)
      if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), withheld[i]) == 0) keep = false;
    if (keep) { lua_pushvalue(L, -2); lua_insert(L, -2); lua_rawset(L, -4); }
    else lua_pop(L, 1);
  }
  lua_getfield(L, real, "crypto");              /* crypto: only the pure, deterministic parts */
  lua_createtable(L, 0, 2);
  lua_getfield(L, -2, "digest"); lua_setfield(L, -2, "digest");
  lua_getfield(L, -2, "verify"); lua_setfield(L, -2, "verify");
  lua_setfield(L, -3, "crypto");
  lua_pop(L, 1);
  lua_getfield(L, real, "sim");
  lua_pushcclosure(L, l_sandbox_sim, 1);
  lua_setfield(L, -2, "sim");
  lua_remove(L, real);
}

static int l_sandbox_randomseed(lua_State *L) {
  return luaL_error(L, "math.randomseed is not available: seed the simulation instead (synod.sim{seed=...})");
}

/* load(chunk [, name [, mode [, env]]]) inside the sandbox: text only, and
 * the sandbox's environment unless one is given. Upvalue 1: the env. */
static int l_sandbox_load(lua_State *L) {
  size_t len;
  const char *src = luaL_checklstring(L, 1, &len);
  const char *name = luaL_optstring(L, 2, "=(load)");
  const char *mode = luaL_optstring(L, 3, "t");
  if (strchr(mode, 'b')) return luaL_error(L, "bad argument #3 to 'load' (binary chunks are not allowed)");
  if (luaL_loadbufferx(L, src, len, name, "t") != LUA_OK) { lua_pushnil(L); lua_insert(L, -2); return 2; }
  if (lua_isnoneornil(L, 4)) lua_pushvalue(L, lua_upvalueindex(1));
  else lua_pushvalue(L, 4);
  if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  return 1;
}

/* Loads the text file at path as a chunk with env at index env; pushes the
 * function, or (returning false) the syntax error. */
static bool try_load_script(lua_State *L, const char *path, int env) {
  env = lua_absindex(L, env);
  push_file(L, path, SYN_MAX_SCRIPT_BYTES);
  size_t len;
  const char *src = lua_tolstring(L, -1, &len);
  char chunkname[PATH_MAX + 2];
  snprintf(chunkname, sizeof chunkname, "@%s", path);
  bool ok = luaL_loadbufferx(L, src, len, chunkname, "t") == LUA_OK;
  lua_remove(L, -2);
  if (!ok) return false;
  lua_pushvalue(L, env);
  lua_setupvalue(L, -2, 1);
  return true;
}

static void load_script(lua_State *L, const char *path, int env) {
  if (!try_load_script(L, path, env)) lua_error(L);
}

/* require(name) inside the sandbox. Upvalues: 1 env, 2 loaded table,
 * 3 search path ("dir/?.lua;dir/?/init.lua;…"). */
static int l_sandbox_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (strcmp(name, "synod") == 0) { lua_getfield(L, lua_upvalueindex(1), "synod"); return 1; }
  lua_getfield(L, lua_upvalueindex(2), name);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  if (strstr(name, "..") || strchr(name, '/'))
    return luaL_argerror(L, 1, "module names use dots, like \"behaviors.drop\"");
  const char *file = luaL_gsub(L, name, ".", "/");
  const char *path = lua_tostring(L, lua_upvalueindex(3));
  luaL_Buffer tried;
  luaL_buffinit(L, &tried);
  const char *p = path;
  while (*p) {
    const char *end = strchr(p, ';');
    size_t plen = end ? (size_t)(end - p) : strlen(p);
    char tmpl[PATH_MAX], cand[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%.*s", (int)plen, p);
    char *q = strchr(tmpl, '?');
    if (q) {
      *q = '\0';
      snprintf(cand, sizeof cand, "%s%s%s", tmpl, file, q + 1);
      FILE *f = fopen(cand, "r");
      if (f) {
        fclose(f);
        luaL_pushresult(&tried);
        lua_pop(L, 1);
        load_script(L, cand, lua_upvalueindex(1));
        lua_pushstring(L, name);
        lua_call(L, 1, 1);
        if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushboolean(L, 1); }
        lua_pushvalue(L, -1);
        lua_setfield(L, lua_upvalueindex(2), name);
        return 1;
      }
      luaL_addstring(&tried, "\n\tno file '");
      luaL_addstring(&tried, cand);
      luaL_addstring(&tried, "'");
    }
    p = end ? end + 1 : p + plen;
  }
  luaL_pushresult(&tried);
  return luaL_error(L, "module '%s' not found:%s", name, lua_tostring(L, -1));
}

/* Copies the fields of table src (at index) into a new table. */
static void push_copy(lua_State *L, int src) {
  src = lua_absindex(L, src);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, src)) { lua_pushvalue(L, -2); lua_insert(L, -2); lua_rawset(L, -4); }
}

/* synod.sandbox.env{ dir = "folder/of/script" } → a fresh sandbox table. */
static int l_sandbox_env(lua_State *L) {
  const char *dir = NULL;
  if (lua_istable(L, 1)) { lua_getfield(L, 1, "dir"); dir = lua_tostring(L, -1); lua_pop(L, 1); }
  lua_newtable(L);
  int env = lua_gettop(L);
  for (int i = 0; safe_globals[i]; i++) { lua_getglobal(L, safe_globals[i]); lua_setfield(L, env, safe_globals[i]); }
  for (int i = 0; safe_libs[i]; i++) {
    lua_getglobal(L, safe_libs[i]);
    if (lua_istable(L, -1)) push_copy(L, -1); else lua_newtable(L);
    lua_remove(L, -2);
    lua_setfield(L, env, safe_libs[i]);
  }
  lua_getfield(L, env, "math");
  lua_pushcfunction(L, l_sandbox_random); lua_setfield(L, -2, "random");
  lua_pushcfunction(L, l_sandbox_randomseed); lua_setfield(L, -2, "randomseed");
  lua_pop(L, 1);
  lua_getfield(L, env, "string");       /* bytecode is useless here (load is text-only), but keep it out */
  lua_pushnil(L); lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lua_getfield(L, env, "coroutine");
  lua_pushcfunction(L, l_sandbox_cocreate); lua_setfield(L, -2, "create");
  lua_pushcfunction(L, l_sandbox_cowrap); lua_setfield(L, -2, "wrap");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_sandbox_getmetatable); lua_setfield(L, env, "getmetatable");
  lua_pushvalue(L, env); lua_setfield(L, env, "_G");
  lua_pushvalue(L, env);
  lua_pushcclosure(L, l_sandbox_load, 1);
  lua_setfield(L, env, "load");
  push_sandboxed_module(L);
  lua_setfield(L, env, "synod");
  /* require: scripts/ of the engine, then the script's own folder */
  lua_pushvalue(L, env);
  lua_newtable(L);
  if (dir) lua_pushfstring(L, "%s/scripts/?.lua;%s/scripts/?/init.lua;%s/?.lua;%s/?/init.lua", syn_home_dir(), syn_home_dir(), dir, dir);
  else lua_pushfstring(L, "%s/scripts/?.lua;%s/scripts/?/init.lua", syn_home_dir(), syn_home_dir());
  lua_pushcclosure(L, l_sandbox_require, 3);
  lua_setfield(L, env, "require");
  return 1;
}

/* synod.sandbox.load(source, chunkname) → function running in a fresh sandbox. */
static int l_sandbox_load_src(lua_State *L) {
  size_t len;
  const char *src = luaL_checklstring(L, 1, &len);
  const char *name = luaL_optstring(L, 2, "=(sandbox)");
  if (luaL_loadbufferx(L, src, len, name, "t") != LUA_OK) { lua_pushnil(L); lua_insert(L, -2); return 2; }
  lua_pushcfunction(L, l_sandbox_env);
  lua_call(L, 0, 1);
  lua_setupvalue(L, -2, 1);
  return 1;
}

/* synod.sandbox.loadfile(path) → function running the script in a fresh
 * sandbox whose require also searches the script's folder, or nil and the
 * syntax error. */
static int l_sandbox_loadfile(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char copy[PATH_MAX];
  snprintf(copy, sizeof copy, "%s", path);
  lua_pushcfunction(L, l_sandbox_env);
  lua_newtable(L);
  lua_pushstring(L, dirname(copy));
  lua_setfield(L, -2, "dir");
  lua_call(L, 1, 1);
  if (!try_load_script(L, path, -1)) { lua_pushnil(L); lua_insert(L, -2); return 2; }
  return 1;
}

void synL_open_sandbox(lua_State *L) {
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "synod.module");
  static const luaL_Reg sandbox[] = {
    { "env", l_sandbox_env }, { "load", l_sandbox_load_src }, { "loadfile", l_sandbox_loadfile }, { NULL, NULL }
  };
  luaL_newlib(L, sandbox);
  lua_setfield(L, -2, "sandbox");
  lua_pushcfunction(L, l_time); lua_setfield(L, -2, "time");
  lua_pushcfunction(L, l_format_time); lua_setfield(L, -2, "format_time");
  lua_pushcfunction(L, l_data); lua_setfield(L, -2, "data");
  lua_pushcfunction(L, l_log_level); lua_setfield(L, -2, "log_level");
  lua_pushstring(L, syn_home_dir()); lua_setfield(L, -2, "home");
}
