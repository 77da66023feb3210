/* lua_sim.c — the Lua face of the simulator: synod.sim{…}, sim:cluster{…},
 * nodes, synod.dist.*, synod.msg, and the bridge that runs behaviour hooks.
 * Thin by rule: marshal, call sim/ or node/, push copies back. Every call
 * into Lua from C (callbacks, hooks, stop functions) goes through synL_pcall;
 * a Lua error never unwinds through the simulator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synl.h"
#include "../sim/sim.h"
#include "../check/check_lua.h"
#include "../app/app.h"

#define SIM_MT   "synod.Sim"
#define NODE_MT  "synod.Node"
#define DIST_MT  "synod.Dist"
#define NODES_MT "synod.Nodes"
#define CHECKS_MT "synod.Checks"   /* nodes:check()'s result; per-check verdicts are synod.Verdict */

#define SYN_MAX_HOOK_INSTRUCTIONS 1000000   /* VM instructions per hook call */
#define SYN_MAX_ERROR_BYTES       4096

typedef struct lsim lsim_t;


struct lsim {
  syn_sim_t *sim;          /* NULL until cluster{} */
  syn_sim_config_t cfg;
  lua_State *T;            /* the sim's own thread: every hook and callback runs here */
  int thread_ref;          /* registry: anchors T */
  int busy;                /* > 0 while a hook runs or sim:run is on the C stack */
  int cbs_ref;             /* registry: { [id] = function } */
  int nodes_ref;           /* registry: the nodes table */
  uint64_t next_cb;
  synL_behav_t *behav;     /* one per node */
  char *error;             /* a callback's error, raised by sim:run */
  FILE *record;
  int64_t healed_at_ns;
  int hook_budget;
  bool running;
};

typedef struct { lsim_t *ls; uint32_t id; } lnode_t;

/* ---- helpers ---- */

static lsim_t *check_sim(lua_State *L, int arg) {
  lsim_t *ls = luaL_checkudata(L, arg, SIM_MT);
  return ls;
}

static lsim_t *check_live_sim(lua_State *L, int arg) {
  lsim_t *ls = check_sim(L, arg);
  if (ls->sim == NULL) luaL_error(L, "simulation has no cluster yet (call sim:cluster{...} first)");
  return ls;
}

/* Raises when a step is under way: a hook may not start another one. */
static void check_not_stepping(lua_State *L, const char *fname) {
  if (syn_node_busy()) luaL_error(L, "'%s' cannot be called from inside a behaviour hook (schedule it with sim:after(0, fn))", fname);
}

static lnode_t *check_node(lua_State *L, int arg) {
  lnode_t *ln = luaL_checkudata(L, arg, NODE_MT);
  if (ln->ls == NULL || ln->ls->sim == NULL) luaL_error(L, "stale node handle: its simulation was closed");
  return ln;
}

static syn_node_t *node_of(lnode_t *ln) { return syn_sim_node(ln->ls->sim, ln->id); }

/* A node id from a Node handle or a 0-based integer. */
static uint32_t check_node_id(lua_State *L, int arg, lsim_t *ls) {
  if (lua_isuserdata(L, arg)) {
    lnode_t *ln = luaL_checkudata(L, arg, NODE_MT);
    if (ln->ls != ls) luaL_argerror(L, arg, "a node of another simulation");
    return ln->id;
  }
  lua_Integer id = luaL_checkinteger(L, arg);
  if (id < 0 || (uint64_t)id >= syn_sim_n(ls->sim))
    luaL_argerror(L, arg, lua_pushfstring(L, "node id %d out of range 0..%d", (int)id, (int)syn_sim_n(ls->sim) - 1));
  return (uint32_t)id;
}

static void push_node(lua_State *L, lsim_t *ls, uint32_t id) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->nodes_ref);
  lua_rawgeti(L, -1, (lua_Integer)id + 1);
  lua_remove(L, -2);
}

static double field_number(lua_State *L, int t, const char *key, double def, double lo, double hi, const char *fname) {
  lua_getfield(L, t, key);
  double v = def;
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1)) luaL_error(L, "bad field '%s' to '%s' (number expected, got %s)", key, fname, luaL_typename(L, -1));
    v = lua_tonumber(L, -1);
    if (!(v >= lo && v <= hi)) luaL_error(L, "bad field '%s' to '%s' (must be between %f and %f)", key, fname, lo, hi);
  }
  lua_pop(L, 1);
  return v;
}

/* Raises on any key of options table t that is not in allowed (a typo must
 * not pass silently). */
static void check_keys(lua_State *L, int t, const char *const *allowed, const char *fname) {
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    bool ok = false;
    for (int i = 0; k && allowed[i]; i++) ok |= strcmp(k, allowed[i]) == 0;
    if (!ok) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (int i = 0; allowed[i]; i++) { luaL_addstring(&b, i ? ", " : ""); luaL_addstring(&b, allowed[i]); }
      luaL_pushresult(&b);
      luaL_error(L, "bad field '%s' to '%s' (unknown option; known: %s)", k ? k : "?", fname, lua_tostring(L, -1));
    }
  }
}

static bool field_bool(lua_State *L, int t, const char *key, bool def) {
  lua_getfield(L, t, key);
  bool v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* ---- distributions ---- */

static syn_dist_t *new_dist(lua_State *L, syn_dist_kind_t kind, double a, double b) {
  syn_dist_t *d = lua_newuserdatauv(L, sizeof *d, 0);
  d->kind = kind; d->a = a; d->b = b;
  luaL_setmetatable(L, DIST_MT);
  return d;
}

static int l_dist_constant(lua_State *L) {
  new_dist(L, SYN_DIST_CONSTANT, (double)synL_checktime(L, 1), 0);
  return 1;
}

static int l_dist_uniform(lua_State *L) {
  int64_t lo = synL_checktime(L, 1), hi = synL_checktime(L, 2);
  if (hi < lo) luaL_argerror(L, 2, "upper bound below lower bound");
  new_dist(L, SYN_DIST_UNIFORM, (double)lo, (double)hi);
  return 1;
}

static int l_dist_normal(lua_State *L) {
  new_dist(L, SYN_DIST_NORMAL, (double)synL_checktime(L, 1), (double)synL_checktime(L, 2));
  return 1;
}

static int l_dist_exponential(lua_State *L) {
  int64_t mean = synL_checktime(L, 1);
  if (mean <= 0) luaL_argerror(L, 1, "mean must be positive");
  new_dist(L, SYN_DIST_EXPONENTIAL, (double)mean, 0);
  return 1;
}

static int l_dist_pareto(lua_State *L) {
  int64_t scale = synL_checktime(L, 1);
  double shape = luaL_checknumber(L, 2);
  if (scale <= 0) luaL_argerror(L, 1, "scale must be positive");
  if (!(shape > 0)) luaL_argerror(L, 2, "shape must be positive");
  new_dist(L, SYN_DIST_PARETO, (double)scale, shape);
  return 1;
}

static int l_dist_tostring(lua_State *L) {
  syn_dist_t *d = luaL_checkudata(L, 1, DIST_MT);
  static const char *const names[] = { "?", "constant", "uniform", "normal", "exponential", "pareto" };
  lua_pushfstring(L, "synod.dist.%s(%f, %f)", names[d->kind], d->a, d->b);
  return 1;
}

/* A latency field: a Dist, or a time meaning constant. */
static void field_dist(lua_State *L, int t, const char *key, syn_dist_t *out, const char *fname) {
  lua_getfield(L, t, key);
  if (!lua_isnil(L, -1)) {
    syn_dist_t *d = luaL_testudata(L, -1, DIST_MT);
    if (d) *out = *d;
    else {
      int64_t ns;
      if (lua_isinteger(L, -1)) ns = lua_tointeger(L, -1);
      else if (lua_type(L, -1) == LUA_TSTRING && syn_time_parse(lua_tostring(L, -1), &ns) == 0) {}
      else luaL_error(L, "bad field '%s' to '%s' (a synod.dist or a time like \"5ms\" expected, got %s%s%s)", key, fname,
                      lua_type(L, -1) == LUA_TSTRING ? "'" : "", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1),
                      lua_type(L, -1) == LUA_TSTRING ? "'" : "");
      out->kind = SYN_DIST_CONSTANT; out->a = (double)ns; out->b = 0;
    }
  }
  lua_pop(L, 1);
}

static void read_link(lua_State *L, int t, syn_link_t *link, const char *fname) {
  field_dist(L, t, "latency", &link->latency, fname);
  link->loss = field_number(L, t, "loss", link->loss, 0, 1, fname);
  link->duplicate = field_number(L, t, "duplicate", link->duplicate, 0, 1, fname);
  link->fifo = !field_bool(L, t, "reorder", !link->fifo);
}

/* ---- behaviour bridge ----
 * Every hook runs on the simulation's own thread (ls->T) inside synL_pcall:
 * the protected function below does all the Lua work — fetching the hook,
 * building the message table, reading what it returned — so no Lua error
 * can unwind through node/ or sim/. Only light userdata cross the boundary. */

/* The simulation whose hooks or callbacks are running, for math.random. */
static lsim_t *dispatching;

syn_prng_t *synL_current_prng(void) {
  return dispatching && dispatching->sim ? syn_sim_prng(dispatching->sim) : NULL;
}

/* The bridge's hooks into this simulation (engine/lua/behave.c runs them). */
static lua_State *sb_thread(synL_behav_t *b) { return ((lsim_t *)b->owner)->T; }
static syn_node_t *sb_node(synL_behav_t *b) { return syn_sim_node(((lsim_t *)b->owner)->sim, b->id); }
static void sb_push_node(lua_State *T, synL_behav_t *b) { push_node(T, b->owner, b->id); }
static void *sb_enter(synL_behav_t *b) {
  lsim_t *ls = b->owner, *outer = dispatching;
  dispatching = ls;
  ls->busy++;
  return outer;
}
static void sb_leave(synL_behav_t *b, void *token) {
  ((lsim_t *)b->owner)->busy--;
  dispatching = token;
}
static int sb_budget(synL_behav_t *b) { return ((lsim_t *)b->owner)->hook_budget; }
static const synL_behav_ops_t sim_behav_ops = {
  .thread = sb_thread, .node = sb_node, .push_node = sb_push_node, .enter = sb_enter, .leave = sb_leave,
  .budget = sb_budget,
};

/* ---- sim callbacks from C ---- */

static int run_callback(lua_State *T) {
  lsim_t *ls = lua_touserdata(T, 1);
  lua_Integer id = lua_tointeger(T, 2);
  lua_settop(T, 0);
  lua_rawgeti(T, LUA_REGISTRYINDEX, ls->cbs_ref);
  lua_rawgeti(T, -1, id);
  lua_pushnil(T);
  lua_rawseti(T, -3, id);
  lua_call(T, 0, 0);
  return 0;
}

static void on_callback(void *ctx, syn_sim_t *sim, uint64_t id) {
  lsim_t *ls = ctx;
  lua_State *T = ls->T;
  lua_settop(T, 0);
  lua_pushcfunction(T, run_callback);
  lua_pushlightuserdata(T, ls);
  lua_pushinteger(T, (lua_Integer)id);
  lsim_t *outer = dispatching;
  dispatching = ls;
  if (synL_pcall(T, 2, 0, "scheduled function", 0) != LUA_OK) {
    if (ls->error == NULL) ls->error = strdup(lua_tostring(T, -1));
    syn_sim_halt(sim);
  }
  dispatching = outer;
  lua_settop(T, 0);
}

/* ---- synod.sim{…} ---- */

static int l_sim_new(lua_State *L) {
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  static const char *const known[] = { "seed", "latency", "loss", "duplicate", "reorder", "crypto", "trace", "hook_budget", NULL };
  check_keys(L, 1, known, "sim");
  lsim_t *ls = lua_newuserdatauv(L, sizeof *ls, 1);
  memset(ls, 0, sizeof *ls);
  ls->cbs_ref = ls->nodes_ref = ls->thread_ref = LUA_NOREF;
  luaL_setmetatable(L, SIM_MT);
  ls->T = lua_newthread(L);
  ls->thread_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, 1, "seed");
  if (!lua_isnil(L, -1) && !lua_isinteger(L, -1)) luaL_error(L, "bad field 'seed' to 'sim' (integer expected, got %s)", luaL_typename(L, -1));
  ls->cfg.seed = (uint64_t)luaL_optinteger(L, -1, 1);
  lua_pop(L, 1);
  ls->cfg.link.latency = (syn_dist_t){ SYN_DIST_CONSTANT, (double)SYN_NS_PER_MS, 0 };
  ls->cfg.link.fifo = true;
  read_link(L, 1, &ls->cfg.link, "sim");
  lua_getfield(L, 1, "crypto");
  const char *crypto = luaL_optstring(L, -1, "ed25519");
  if (strcmp(crypto, "ed25519") == 0) ls->cfg.crypto = true;
  else if (strcmp(crypto, "none") == 0) ls->cfg.crypto = false;
  else luaL_error(L, "bad field 'crypto' to 'sim' (\"ed25519\" or \"none\" expected, got \"%s\")", crypto);
  lua_pop(L, 1);
  ls->hook_budget = (int)field_number(L, 1, "hook_budget", SYN_MAX_HOOK_INSTRUCTIONS, 1000, 1e9, "sim");
  lua_getfield(L, 1, "trace");
  if (!lua_isnil(L, -1)) {
    const char *path = luaL_checkstring(L, -1);
    ls->record = fopen(path, "w");
    if (ls->record == NULL) luaL_error(L, "cannot open trace file '%s' for writing", path);
  }
  lua_pop(L, 1);
  lua_newtable(L);
  ls->cbs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

static void sim_close(lua_State *L, lsim_t *ls) {
  if (ls->sim) {
    for (uint32_t i = 0; i < syn_sim_n(ls->sim); i++) syn_node_behave(syn_sim_node(ls->sim, i), NULL);
    syn_sim_free(ls->sim);
    ls->sim = NULL;
  }
  if (ls->behav) {
    for (uint32_t i = 0; i < ls->cfg.n + ls->cfg.cfg.clients; i++) synL_behav_free(&ls->behav[i]);
    free(ls->behav);
    ls->behav = NULL;
  }
  if (ls->record) { fclose(ls->record); ls->record = NULL; }
  free(ls->error);
  ls->error = NULL;
  if (ls->cbs_ref != LUA_NOREF) { luaL_unref(L, LUA_REGISTRYINDEX, ls->cbs_ref); ls->cbs_ref = LUA_NOREF; }
  if (ls->nodes_ref != LUA_NOREF) { luaL_unref(L, LUA_REGISTRYINDEX, ls->nodes_ref); ls->nodes_ref = LUA_NOREF; }
  if (ls->thread_ref != LUA_NOREF) { luaL_unref(L, LUA_REGISTRYINDEX, ls->thread_ref); ls->thread_ref = LUA_NOREF; }
}

static int l_sim_gc(lua_State *L) {
  lsim_t *ls = luaL_checkudata(L, 1, SIM_MT);
  if (ls->busy == 0) sim_close(L, ls);   /* a running sim is reachable from the C stack */
  return 0;
}

/* sim:cluster{ protocol = "tom", n = 5, <protocol params> } → nodes */
static int l_sim_cluster(lua_State *L) {
  lsim_t *ls = check_sim(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (ls->sim) luaL_error(L, "this simulation already has a cluster");
  check_not_stepping(L, "cluster");
  lua_getfield(L, 2, "protocol");
  const char *pname = luaL_optstring(L, -1, "tom");
  const syn_proto_t *proto = syn_proto_find(pname);
  if (proto == NULL) {
    luaL_Buffer known;
    luaL_buffinit(L, &known);
    const char *const *names = syn_proto_names();
    for (int i = 0; names[i]; i++) { if (i) luaL_addstring(&known, ", "); luaL_addstring(&known, names[i]); }
    luaL_pushresult(&known);
    luaL_error(L, "bad field 'protocol' to 'cluster' (unknown protocol '%s'; known: %s)", pname, lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "n");
  lua_Integer n = luaL_optinteger(L, -1, 4);
  lua_pop(L, 1);
  uint32_t max_n = proto->max_nodes && proto->max_nodes < SYN_MAX_NODES ? proto->max_nodes : SYN_MAX_NODES;
  if (n < 1 || (uint64_t)n > max_n)
    luaL_error(L, "bad field 'n' to 'cluster' (protocol '%s' runs 1..%d nodes, got %d)", pname, (int)max_n, (int)n);
  ls->cfg.n = (uint32_t)n;
  ls->cfg.proto = proto;
  syn_proto_defaults(proto, &ls->cfg.cfg);
  lua_getfield(L, 2, "clients");
  lua_Integer clients = luaL_optinteger(L, -1, proto->default_clients);
  lua_pop(L, 1);
  if (clients < 0 || (proto->default_clients == 0 && clients > 0) || n + clients > SYN_MAX_NODES)
    luaL_error(L, "bad field 'clients' to 'cluster' (protocol '%s' takes %s)", pname,
               proto->default_clients ? lua_pushfstring(L, "0..%d clients with n = %d", SYN_MAX_NODES - (int)n, (int)n)
                                      : "no clients");
  ls->cfg.cfg.clients = (uint32_t)clients;
  lua_getfield(L, 2, "app");
  const char *aname = luaL_optstring(L, -1, proto->default_app);
  if (aname != NULL) {
    ls->cfg.cfg.app = syn_app_find(aname);
    if (ls->cfg.cfg.app == NULL || proto->default_app == NULL)
      luaL_error(L, "bad field 'app' to 'cluster' (%s)", proto->default_app ? lua_pushfstring(L, "unknown application '%s'", aname)
                                                                           : lua_pushfstring(L, "protocol '%s' runs no application", pname));
  }
  lua_pop(L, 1);
  /* Every other key must be one of the protocol's parameters. */
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (k == NULL) luaL_error(L, "bad argument #1 to 'cluster' (keys must be strings)");
    if (strcmp(k, "protocol") && strcmp(k, "n") && strcmp(k, "clients") && strcmp(k, "app")) {
      int p = syn_proto_param(proto, k);
      if (p < 0) {
        luaL_Buffer known;
        luaL_buffinit(L, &known);
        luaL_addstring(&known, "protocol, n, clients, app");
        for (size_t i = 0; i < proto->nparams; i++) { luaL_addstring(&known, ", "); luaL_addstring(&known, proto->params[i].name); }
        luaL_pushresult(&known);
        luaL_error(L, "bad field '%s' to 'cluster' (not a parameter of protocol '%s'; known: %s)", k, pname, lua_tostring(L, -1));
      }
      int64_t v;
      if (lua_isboolean(L, -1)) v = lua_toboolean(L, -1);
      else if (lua_isinteger(L, -1)) v = lua_tointeger(L, -1);
      else if (lua_type(L, -1) == LUA_TSTRING && syn_time_parse(lua_tostring(L, -1), &v) == 0) v /= SYN_NS_PER_MS;
      else luaL_error(L, "bad field '%s' to 'cluster' (integer, boolean or time expected, got %s)", k, luaL_typename(L, -1));
      const syn_param_def_t *pd = &proto->params[p];
      if (v < pd->min || v > pd->max) luaL_error(L, "bad field '%s' to 'cluster' (must be %d..%d)", k, (int)pd->min, (int)pd->max);
      ls->cfg.cfg.params[p] = v;
    }
    lua_pop(L, 1);
  }
  uint32_t total = ls->cfg.n + ls->cfg.cfg.clients;
  ls->cfg.cb_ctx = ls;
  ls->cfg.on_callback = on_callback;
  ls->behav = calloc(total, sizeof *ls->behav);
  if (ls->behav == NULL) luaL_error(L, "out of memory");
  for (uint32_t i = 0; i < total; i++) {
    synL_behav_init(&ls->behav[i], &sim_behav_ops, ls, i);
  }
  int rc = syn_sim_new(&ls->sim, &ls->cfg);
  if (rc == -SYN_EINVAL)
    luaL_error(L, "cannot create the simulation: protocol '%s' refused its parameters (%s)", pname,
               strcmp(pname, "pbft") == 0 ? "window must be checkpoint_interval .. 7 * checkpoint_interval"
                                          : syn_strerror(rc));
  if (rc) luaL_error(L, "cannot create the simulation: %s", syn_strerror(rc));
  if (ls->record) syn_sim_record(ls->sim, ls->record);
  lua_createtable(L, (int)n, 2);
  lua_createtable(L, (int)clients, 0);   /* nodes.clients */
  for (uint32_t i = 0; i < total; i++) {
    lnode_t *ln = lua_newuserdatauv(L, sizeof *ln, 1);
    ln->ls = ls; ln->id = i;
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);   /* a node keeps its simulation alive */
    luaL_setmetatable(L, NODE_MT);
    if (i < n) lua_rawseti(L, -3, (lua_Integer)i + 1);
    else lua_rawseti(L, -2, (lua_Integer)(i - n) + 1);
  }
  lua_setfield(L, -2, "clients");
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  luaL_setmetatable(L, NODES_MT);
  lua_pushvalue(L, -1);
  ls->nodes_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, 1);
  return 1;
}

static int l_sim_nodes(lua_State *L) {
  lsim_t *ls = check_live_sim(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->nodes_ref);
  return 1;
}

static int l_sim_now(lua_State *L) {
  lsim_t *ls = check_sim(L, 1);
  lua_pushinteger(L, ls->sim ? syn_sim_now(ls->sim) : 0);
  return 1;
}

/* sim:at(time, fn) — absolute virtual time; sim:after(delay, fn) — relative. */
static int schedule(lua_State *L, bool relative) {
  lsim_t *ls = check_live_sim(L, 1);
  int64_t t = synL_checktime(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if (relative) t += syn_sim_now(ls->sim);
  if (t < syn_sim_now(ls->sim)) luaL_argerror(L, 2, "time is in the past");
  uint64_t id = ++ls->next_cb;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->cbs_ref);
  lua_pushvalue(L, 3);
  lua_rawseti(L, -2, (lua_Integer)id);
  lua_pop(L, 1);
  int rc = syn_sim_at(ls->sim, t, id);
  if (rc) luaL_error(L, "cannot schedule: %s", syn_strerror(rc));
  return 0;
}
static int l_sim_at(lua_State *L) { return schedule(L, false); }
static int l_sim_after(lua_State *L) { return schedule(L, true); }

/* In a protocol with a client role, requests go to clients: a replica
 * would drop them silently. */
static void check_submit_target(lua_State *L, lsim_t *ls, uint32_t node) {
  if (ls->cfg.proto->default_clients == 0 || node >= ls->cfg.n) return;
  if (ls->cfg.cfg.clients == 0)
    luaL_error(L, "cannot submit: this %s cluster has no clients (cluster{ clients = N })", ls->cfg.proto->name);
  luaL_error(L, "cannot submit at node %d: it is a %s replica; requests go to its clients (nodes.clients, ids %d..%d)",
             (int)node, ls->cfg.proto->name, (int)ls->cfg.n, (int)(ls->cfg.n + ls->cfg.cfg.clients - 1));
}

static int l_sim_submit(lua_State *L) {
  lsim_t *ls = check_live_sim(L, 1);
  size_t len;
  const char *op = luaL_checklstring(L, 2, &len);
  uint32_t node;
  if (lua_isnoneornil(L, 3)) {
    /* A random node that is up, chosen with the simulator's PRNG: a client
     * when the cluster has clients, else a member. */
    check_submit_target(L, ls, ls->cfg.cfg.clients ? ls->cfg.n : 0);
    uint32_t first = ls->cfg.cfg.clients ? ls->cfg.n : 0, n = syn_sim_n(ls->sim), up = 0, pick;
    for (uint32_t i = first; i < n; i++) up += syn_sim_node(ls->sim, i)->up;
    if (up == 0) luaL_error(L, "cannot submit: every %s is down", first ? "client" : "node");
    pick = (uint32_t)syn_prng_below(syn_sim_prng(ls->sim), up);
    for (node = first; node < n; node++) if (syn_sim_node(ls->sim, node)->up && pick-- == 0) break;
  } else {
    node = check_node_id(L, 3, ls);
  }
  check_submit_target(L, ls, node);
  int rc = syn_sim_submit(ls->sim, node, (const uint8_t *)op, len);
  if (rc) luaL_error(L, "cannot submit: %s", syn_strerror(rc));
  lua_pushinteger(L, node);
  return 1;
}

/* sim:run{ stop = fn, timeout = "60s", check_every = "1ms", max_events = N }
 * → "stop" | "idle" | "timeout" */
static int l_sim_run(lua_State *L) {
  lsim_t *ls = check_live_sim(L, 1);
  if (lua_isnoneornil(L, 2)) { lua_settop(L, 1); lua_newtable(L); }
  luaL_checktype(L, 2, LUA_TTABLE);
  if (ls->running) luaL_error(L, "sim:run called from inside a running simulation");
  check_not_stepping(L, "run");
  static const char *const known[] = { "stop", "timeout", "check_every", "max_events", NULL };
  check_keys(L, 2, known, "run");
  int64_t timeout = synL_fieldtime(L, 2, "timeout", 60 * SYN_NS_PER_S, "run");
  int64_t every = synL_fieldtime(L, 2, "check_every", SYN_NS_PER_MS, "run");
  if (every <= 0) luaL_error(L, "bad field 'check_every' to 'run' (must be positive)");
  lua_getfield(L, 2, "max_events");
  uint64_t max_events = (uint64_t)luaL_optinteger(L, -1, INT64_MAX);
  lua_pop(L, 1);
  lua_getfield(L, 2, "stop");
  int stop = lua_isnil(L, -1) ? 0 : lua_gettop(L);
  if (stop && !lua_isfunction(L, stop)) luaL_error(L, "bad field 'stop' to 'run' (function expected, got %s)", luaL_typename(L, stop));
  int64_t deadline = syn_sim_now(ls->sim) + timeout;
  uint64_t events = 0;
  const char *reason = NULL;
  ls->running = true;
  while (reason == NULL) {
    if (stop) {
      lua_pushvalue(L, stop);
      lsim_t *outer = dispatching;
      dispatching = ls;
      int src = synL_pcall(L, 0, 1, "stop function", 0);
      dispatching = outer;
      if (src != LUA_OK) { ls->running = false; lua_error(L); }
      bool done = lua_toboolean(L, -1);
      lua_pop(L, 1);
      if (done) { reason = "stop"; break; }
    }
    if (syn_sim_idle(ls->sim)) { reason = "idle"; break; }
    if (syn_sim_now(ls->sim) >= deadline || events >= max_events) { reason = "timeout"; break; }
    int64_t until = syn_sim_now(ls->sim) + every;
    if (until > deadline) until = deadline;
    ls->busy++;
    events += syn_sim_run(ls->sim, until, max_events - events);
    ls->busy--;
    if (ls->error) {
      ls->running = false;
      lua_pushstring(L, ls->error);
      free(ls->error);
      ls->error = NULL;
      return lua_error(L);
    }
  }
  ls->running = false;
  lua_pushstring(L, reason);
  lua_pushinteger(L, (lua_Integer)events);
  return 2;
}

static int l_sim_trace_hash(lua_State *L) {
  lsim_t *ls = check_live_sim(L, 1);
  uint8_t h[32];
  char hex[65];
  syn_sim_trace_hash(ls->sim, h);
  syn_hex(h, 32, hex);
  lua_pushstring(L, hex);
  return 1;
}

static int l_sim_stats(lua_State *L) {
  lsim_t *ls = check_live_sim(L, 1);
  const syn_sim_stats_t *s = syn_sim_stats(ls->sim);
  lua_createtable(L, 0, 10);
#define F(name) lua_pushinteger(L, (lua_Integer)s->name); lua_setfield(L, -2, #name);
  F(events) F(frames_sent) F(frames_delivered) F(frames_lost) F(frames_duplicated)
  F(frames_blocked) F(frames_to_down_node) F(timers_fired) F(callbacks)
  F(requests_to_down_node) F(requests_unrecorded)
#undef F
  lua_pushinteger(L, syn_sim_now(ls->sim));
  lua_setfield(L, -2, "now");
  return 1;
}

int synL_random(lua_State *L, syn_prng_t *p, int arg) {
  if (lua_isnoneornil(L, arg)) { lua_pushnumber(L, syn_prng_unit(p)); return 1; }
  lua_Integer lo = 1, hi = luaL_checkinteger(L, arg);
  if (!lua_isnoneornil(L, arg + 1)) { lo = hi; hi = luaL_checkinteger(L, arg + 1); }
  luaL_argcheck(L, lo <= hi, arg, "interval is empty");
  uint64_t span = (uint64_t)hi - (uint64_t)lo;   /* no signed overflow, even for the full range */
  uint64_t r = span == UINT64_MAX ? syn_prng_u64(p) : syn_prng_below(p, span + 1);
  lua_pushinteger(L, (lua_Integer)((uint64_t)lo + r));
  return 1;
}

/* sim:random() in [0,1); sim:random(m) in [1,m]; sim:random(m, n) in [m,n]. */
static int l_sim_random(lua_State *L) {
  lsim_t *ls = check_live_sim(L, 1);
  return synL_random(L, syn_sim_prng(ls->sim), 2);
}

/* sim:sample(dist) → ns from the simulator's PRNG. */
static int l_sim_sample(lua_State *L) {
  lsim_t *ls = check_live_sim(L, 1);
  syn_dist_t *d = luaL_checkudata(L, 2, DIST_MT);
  lua_pushinteger(L, syn_dist_sample(d, syn_sim_prng(ls->sim)));
  return 1;
}

/* Reads a list of node ids / nodes at stack index t (argument t-1 of a
 * method) into ids; returns the count. */
static uint32_t read_group(lua_State *L, int t, lsim_t *ls, uint32_t *ids, const char *fname) {
  if (!lua_istable(L, t)) luaL_error(L, "bad argument #%d to '%s' (list of nodes expected, got %s)", t - 1, fname, luaL_typename(L, t));
  lua_Integer len = luaL_len(L, t);
  if (len > SYN_MAX_NODES) luaL_error(L, "bad argument #%d to '%s' (group too large)", t - 1, fname);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_rawgeti(L, t, i);
    lnode_t *ln = luaL_testudata(L, -1, NODE_MT);
    int ok;
    lua_Integer id = ln ? (ln->ls == ls ? (lua_Integer)ln->id : -1) : lua_tointegerx(L, -1, &ok);
    if (!ln && !ok) id = -1;
    if (id < 0 || (uint64_t)id >= syn_sim_n(ls->sim))
      luaL_error(L, "bad argument #%d to '%s' (entry %d is not a node of this simulation)", t - 1, fname, (int)i);
    ids[i - 1] = (uint32_t)id;
    lua_pop(L, 1);
  }
  return (uint32_t)len;
}

/* sim:twins{ ids = {0}, world_b = {2, 5} } — Twins: each id in ids gets a
 * second instance with the same identity and key (both Byzantine from now
 * on, honest code each); the nodes in world_b talk to the second
 * instances, everyone else to the first (see syn_sim_twin). */
static int l_sim_twins(lua_State *L) {
  lsim_t *ls = check_live_sim(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  check_not_stepping(L, "twins");
  static const char *const known[] = { "ids", "world_b", NULL };
  check_keys(L, 2, known, "twins");
  uint32_t ids[SYN_MAX_NODES], wb[SYN_MAX_NODES], nwb = 0;
  lua_getfield(L, 2, "ids");
  if (!lua_istable(L, -1)) luaL_error(L, "bad field 'ids' to 'twins' (a list of node ids expected)");
  uint32_t k = read_group(L, lua_gettop(L), ls, ids, "twins");
  lua_pop(L, 1);
  lua_getfield(L, 2, "world_b");
  if (!lua_isnil(L, -1)) nwb = read_group(L, lua_gettop(L), ls, wb, "twins");
  lua_pop(L, 1);
  for (uint32_t i = 0; i < nwb; i++)
    for (uint32_t j = 0; j < k; j++)
      if (wb[i] == ids[j])
        luaL_error(L, "bad field 'world_b' to 'twins' (node %d is twinned: it lives in both worlds)", (int)wb[i]);
  for (uint32_t i = 0; i < nwb; i++) syn_sim_world_b(ls->sim, wb[i], true);
  for (uint32_t i = 0; i < k; i++) {
    int rc = syn_sim_twin(ls->sim, ids[i]);
    if (rc == -SYN_ESTATE) luaL_error(L, "twins: node %d already has a twin", (int)ids[i]);
    if (rc) luaL_error(L, "twins: cannot twin node %d: %s", (int)ids[i], syn_strerror(rc));
  }
  return 0;
}

/* sim:partition({a, b}, {c, d, e}) — blocks every link between groups. */
static int l_sim_partition(lua_State *L) {
  lsim_t *ls = check_live_sim(L, 1);
  int groups = lua_gettop(L) - 1;
  if (groups < 2) luaL_error(L, "bad argument to 'partition' (at least two groups of nodes expected)");
  int32_t group_of[SYN_MAX_NODES];
  for (uint32_t i = 0; i < syn_sim_n(ls->sim); i++) group_of[i] = -1;
  uint32_t ids[SYN_MAX_NODES];
  for (int g = 0; g < groups; g++) {
    uint32_t k = read_group(L, g + 2, ls, ids, "partition");
    for (uint32_t i = 0; i < k; i++) group_of[ids[i]] = g;
  }
  for (uint32_t a = 0; a < syn_sim_n(ls->sim); a++)
    for (uint32_t b = 0; b < syn_sim_n(ls->sim); b++)
      if (group_of[a] >= 0 && group_of[b] >= 0 && group_of[a] != group_of[b]) syn_sim_block(ls->sim, a, b, true);
  return 0;
}

/* sim:block(from, to) — one way; sim:unblock(from, to). */
static int l_sim_block(lua_State *L) {
  lsim_t *ls = check_live_sim(L, 1);
  syn_sim_block(ls->sim, check_node_id(L, 2, ls), check_node_id(L, 3, ls), true);
  return 0;
}
static int l_sim_unblock(lua_State *L) {
  lsim_t *ls = check_live_sim(L, 1);
  syn_sim_block(ls->sim, check_node_id(L, 2, ls), check_node_id(L, 3, ls), false);
  return 0;
}
static int l_sim_heal(lua_State *L) {
  lsim_t *ls = check_live_sim(L, 1);
  syn_sim_heal(ls->sim);
  ls->healed_at_ns = syn_sim_now(ls->sim);
  return 0;
}

/* sim:link(from, to, { latency =, loss =, duplicate =, reorder = }) */
static int l_sim_link(lua_State *L) {
  lsim_t *ls = check_live_sim(L, 1);
  uint32_t a = check_node_id(L, 2, ls), b = check_node_id(L, 3, ls);
  luaL_checktype(L, 4, LUA_TTABLE);
  static const char *const known[] = { "latency", "loss", "duplicate", "reorder", NULL };
  check_keys(L, 4, known, "link");
  syn_link_t link = *syn_sim_link(ls->sim, a, b);
  read_link(L, 4, &link, "link");
  if (syn_sim_set_link(ls->sim, a, b, &link) != 0) luaL_error(L, "out of memory");
  return 0;
}

static int l_sim_close(lua_State *L) {
  lsim_t *ls = check_sim(L, 1);
  if (ls->busy || ls->running) luaL_error(L, "cannot close a running simulation (close it after sim:run returns)");
  sim_close(L, ls);
  return 0;
}

static int l_sim_tostring(lua_State *L) {
  lsim_t *ls = check_sim(L, 1);
  if (ls->sim) lua_pushfstring(L, "synod.Sim(seed=%I, n=%d, now=%I ns)", (lua_Integer)ls->cfg.seed, (int)ls->cfg.n, (lua_Integer)syn_sim_now(ls->sim));
  else lua_pushfstring(L, "synod.Sim(seed=%I, no cluster)", (lua_Integer)ls->cfg.seed);
  return 1;
}

/* ---- nodes ---- */

static int l_node_index(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "id") == 0) { lua_pushinteger(L, ln->id); return 1; }
  if (strcmp(k, "sim") == 0) { lua_getiuservalue(L, 1, 1); return 1; }
  luaL_getmetatable(L, NODE_MT);
  lua_getfield(L, -1, k);
  return 1;
}

static int l_node_tostring(lua_State *L) {
  lnode_t *ln = luaL_checkudata(L, 1, NODE_MT);
  lua_pushfstring(L, "synod.Node(%d)", (int)ln->id);
  return 1;
}

static int l_node_submit(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  size_t len;
  const char *op = luaL_checklstring(L, 2, &len);
  check_submit_target(L, ln->ls, ln->id);
  int rc = syn_sim_submit(ln->ls->sim, ln->id, (const uint8_t *)op, len);
  if (rc) luaL_error(L, "cannot submit at node %d: %s", (int)ln->id, syn_strerror(rc));
  return 0;
}

static int l_node_crash(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  syn_sim_crash(ln->ls->sim, ln->id);
  return 0;
}

/* node:restart{ durable = true | false | "records" | "memory" }
 *   true (the default): from its records when the protocol keeps records
 *     (a real restart: what it persisted, nothing else), else "memory";
 *   "records": from its records (an error for a protocol that keeps none);
 *   "memory": its whole in-memory state kept (a pause rather than a crash);
 *   false: amnesia, a lost disk: no state, no records, a new delivery log. */
static int l_node_restart(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  check_not_stepping(L, "restart");
  syn_node_t *node = node_of(ln);
  syn_restart_t mode = node->proto->recover ? SYN_RESTART_RECORDS : SYN_RESTART_MEMORY;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    static const char *const known[] = { "durable", NULL };
    check_keys(L, 2, known, "restart");
    lua_getfield(L, 2, "durable");
    if (lua_type(L, -1) == LUA_TBOOLEAN) {
      if (!lua_toboolean(L, -1)) mode = SYN_RESTART_AMNESIA;
    } else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "records") == 0) {
      mode = SYN_RESTART_RECORDS;
    } else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "memory") == 0) {
      mode = SYN_RESTART_MEMORY;
    } else if (!lua_isnil(L, -1)) {
      luaL_error(L, "bad field 'durable' to 'restart' (true, false, \"records\" or \"memory\" expected, got %s)",
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
  ln->ls->busy++;
  int rc = syn_sim_restart(ln->ls->sim, ln->id, mode);
  ln->ls->busy--;
  if (rc == -SYN_ESTATE) luaL_error(L, "node %d is not crashed", (int)ln->id);
  if (rc && mode == SYN_RESTART_RECORDS)
    luaL_error(L, "cannot restart node %d from its records: %s", (int)ln->id, syn_sim_error(ln->ls->sim));
  if (rc) luaL_error(L, "cannot restart node %d: %s", (int)ln->id, syn_strerror(rc));
  return 0;
}

/* A record kind from a name (the protocol's) or a number. */
static uint32_t check_record_kind(lua_State *L, int arg, const syn_node_t *node) {
  if (lua_type(L, arg) == LUA_TSTRING) {
    const char *name = lua_tostring(L, arg);
    for (size_t k = 0; k < node->proto->nrecord_kinds; k++)
      if (node->proto->record_kinds[k] && strcmp(node->proto->record_kinds[k], name) == 0) return (uint32_t)k;
    luaL_argerror(L, arg, lua_pushfstring(L, "protocol %s has no record kind '%s'", node->proto->name, name));
  }
  lua_Integer k = luaL_checkinteger(L, arg);
  if (k < 0 || k >= (lua_Integer)SYN_RECORD_END) luaL_argerror(L, arg, "record kind out of range");
  return (uint32_t)k;
}

/* node:records() -> { { kind = "exec", kind_id = 9, key = 17, data = bytes (seal included) }, … }
 * in (kind, key) order: the node's durable records as its runtime holds them. */
static int l_node_records(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  const syn_store_stats_t *st = syn_sim_store(ln->ls->sim, ln->id);
  lua_createtable(L, (int)st->records, 0);
  for (uint64_t i = 0; i < st->records; i++) {
    uint32_t kind; uint64_t key; const uint8_t *data; size_t len;
    int rc = syn_sim_record_get(ln->ls->sim, ln->id, i, &kind, &key, &data, &len);
    SYN_ASSERT(rc == 0);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, syn_node_record_kind(node_of(ln), kind)); lua_setfield(L, -2, "kind");
    lua_pushinteger(L, kind); lua_setfield(L, -2, "kind_id");
    lua_pushinteger(L, (lua_Integer)key); lua_setfield(L, -2, "key");
    lua_pushlstring(L, (const char *)data, len); lua_setfield(L, -2, "data");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* node:set_record(kind, key, data | nil): writes (or deletes) one record in
 * the node's store as a disk fault would; nothing checks or seals it. */
static int l_node_set_record(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  uint32_t kind = check_record_kind(L, 2, node_of(ln));
  lua_Integer key = luaL_checkinteger(L, 3);
  size_t len = 0;
  const char *data = lua_isnoneornil(L, 4) ? NULL : luaL_checklstring(L, 4, &len);
  int rc = syn_sim_record_set(ln->ls->sim, ln->id, kind, (uint64_t)key, (const uint8_t *)data, len);
  if (rc) luaL_error(L, "set_record: %s", syn_strerror(rc));
  return 0;
}

/* node:store() -> counts of the node's durable records and of its syncs. */
static int l_node_store(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  const syn_store_stats_t *st = syn_sim_store(ln->ls->sim, ln->id);
  const syn_node_t *node = node_of(ln);
  lua_newtable(L);
#define F(name) lua_pushinteger(L, (lua_Integer)st->name); lua_setfield(L, -2, #name);
  F(records) F(bytes) F(max_records) F(max_bytes) F(persists) F(forgets) F(syncs) F(sync_failures) F(unsynced_sends)
#undef F
  lua_pushinteger(L, (lua_Integer)node->c.sync_dropped); lua_setfield(L, -2, "sync_dropped");
  lua_pushboolean(L, st->full); lua_setfield(L, -2, "full");
  if (node->failed) { lua_pushstring(L, syn_strerror(node->failed)); lua_setfield(L, -2, "failed"); }
  return 1;
}

/* node:store_fault{ fail_sync = bool, lazy_sync = bool }
 *   fail_sync: every sync of the node fails from now on (a broken or full disk);
 *   lazy_sync: the node syncs only at the end of each batch, after its sends —
 *     the defect DESIGN.md's rule prevents, for specs that show it is caught. */
static int l_node_store_fault(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  static const char *const known[] = { "fail_sync", "lazy_sync", NULL };
  check_keys(L, 2, known, "store_fault");
  syn_node_t *node = node_of(ln);
  syn_sim_fail_sync(ln->ls->sim, ln->id, field_bool(L, 2, "fail_sync", syn_sim_store(ln->ls->sim, ln->id)->fail_sync));
  node->lazy_sync = field_bool(L, 2, "lazy_sync", node->lazy_sync);
  return 0;
}

static int l_node_is_up(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  lua_pushboolean(L, node_of(ln)->up);
  return 1;
}

static int l_node_is_honest(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  lua_pushboolean(L, syn_sim_history(ln->ls->sim)->honest[ln->id]);
  return 1;
}

/* node:skew{ offset = "5ms", rate_ppm = 100 } */
static int l_node_skew(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  static const char *const known[] = { "offset", "rate_ppm", NULL };
  check_keys(L, 2, known, "skew");
  /* An offset may be negative: a clock behind. */
  int64_t offset = 0;
  lua_getfield(L, 2, "offset");
  if (lua_isinteger(L, -1)) offset = lua_tointeger(L, -1);
  else if (lua_type(L, -1) == LUA_TSTRING) {
    const char *t = lua_tostring(L, -1);
    bool neg = t[0] == '-';
    if (syn_time_parse(t + neg, &offset) != 0) luaL_error(L, "bad field 'offset' to 'skew' (time like \"5ms\" or \"-5ms\" expected, got '%s')", t);
    if (neg) offset = -offset;
  } else if (!lua_isnil(L, -1)) luaL_error(L, "bad field 'offset' to 'skew' (time expected, got %s)", luaL_typename(L, -1));
  lua_pop(L, 1);
  double rate = field_number(L, 2, "rate_ppm", 0, -500000, 500000, "skew");
  syn_sim_skew(ln->ls->sim, ln->id, offset, (int64_t)rate);
  return 0;
}

/* node:behave(hooks) — hooks is a table with on_send/on_receive/on_timer; nil removes. */
static int l_node_behave(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  (void)node_of(ln);
  if (synL_behave(L, 2, &ln->ls->behav[ln->id])) syn_sim_history(ln->ls->sim)->honest[ln->id] = false;
  return 0;
}

/* node:send(to, msg [, delay]) — a message crafted by a behaviour, signed
 * with this node's own key. */
static int l_node_send(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  return synL_node_send(L, node_of(ln), check_node_id(L, 2, ln->ls), 3);
}

/* node:replay(to, frame [, delay]) — resends captured frame bytes as they are. */
static int l_node_replay(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  return synL_node_replay(L, node_of(ln), check_node_id(L, 2, ln->ls), 3);
}

static int l_node_frame(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  return synL_push_node_frame(L, node_of(ln), 2);
}

static int l_node_counters(lua_State *L) { return synL_push_node_counters(L, node_of(check_node(L, 1))); }
static int l_node_evidence(lua_State *L) { return synL_push_node_evidence(L, node_of(check_node(L, 1))); }

static int l_node_history(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  synL_push_deliveries(L, syn_sim_history(ln->ls->sim), ln->id);
  return 1;
}

static int l_node_delivered(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  lua_pushinteger(L, syn_sim_history(ln->ls->sim)->logs[ln->id].count);
  return 1;
}

static void status_cb(void *ctx, const char *key, int64_t value) {
  lua_State *L = ctx;
  lua_pushinteger(L, value);
  lua_setfield(L, -2, key);
}

static int l_node_status(lua_State *L) {
  lnode_t *ln = check_node(L, 1);
  syn_node_t *node = node_of(ln);
  lua_newtable(L);
  lua_pushinteger(L, node->id); lua_setfield(L, -2, "id");
  lua_pushstring(L, node->proto->name); lua_setfield(L, -2, "protocol");
  lua_pushboolean(L, node->up); lua_setfield(L, -2, "up");
  lua_pushboolean(L, node->behavior.ctx != NULL); lua_setfield(L, -2, "byzantine");
  if (node->proto->status) node->proto->status(node->state, status_cb, L);
  return 1;
}

/* ---- nodes:check{…} ---- */

static int l_verdict_explain(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "summary");
  return 1;
}

/* Appends text and a newline to a bounded summary; cuts rather than overflows. */
static void add_line(char *buf, size_t *len, const char *text) {
  int n = snprintf(buf + *len, SYN_MAX_ERROR_BYTES - *len, "%s\n", text);
  if (n > 0) *len += (size_t)n < SYN_MAX_ERROR_BYTES - *len ? (size_t)n : SYN_MAX_ERROR_BYTES - 1 - *len;
}

typedef void (*checker_fn)(const syn_history_t *, syn_verdict_t *);

/* nodes:check{ checks = {…}, liveness = { heal_at =, bound = } | false } */
static int l_nodes_check(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_rawgeti(L, 1, 1);
  lnode_t *ln = check_node(L, -1);
  lua_pop(L, 1);
  lsim_t *ls = ln->ls;
  if (lua_isnoneornil(L, 2)) { lua_settop(L, 1); lua_newtable(L); }
  luaL_checktype(L, 2, LUA_TTABLE);
  static const char *const known[] = { "liveness", NULL };
  check_keys(L, 2, known, "check");
  const syn_history_t *h = syn_sim_history(ls->sim);
  static const struct { const char *name; checker_fn fn; } safety[] = {
    { "agreement", syn_check_agreement }, { "total_order", syn_check_total_order },
    { "validity", syn_check_validity }, { "integrity", syn_check_integrity },
    { "ts_order", syn_check_ts_order }, { "batches", syn_check_batches },
    { "exactly_once", syn_check_exactly_once },
  };
  lua_newtable(L);                         /* verdict */
  int v = lua_gettop(L);
  lua_newtable(L);                         /* checks by name */
  lua_newtable(L);                         /* order */
  char summary[SYN_MAX_ERROR_BYTES];
  size_t slen = 0;
  bool ok = true;
  int k = 0;
  summary[0] = '\0';
  for (size_t i = 0; i < sizeof safety / sizeof safety[0]; i++) {
    if (strcmp(safety[i].name, "ts_order") == 0 && strcmp(ls->cfg.proto->name, "tom") != 0) continue;
    bool client_check = strcmp(safety[i].name, "batches") == 0 || strcmp(safety[i].name, "exactly_once") == 0;
    if (client_check && ls->cfg.cfg.clients == 0) continue;
    syn_verdict_t vd;
    safety[i].fn(h, &vd);
    synL_push_verdict(L, &vd);
    lua_setfield(L, v + 1, safety[i].name);
    lua_pushstring(L, safety[i].name);
    lua_rawseti(L, v + 2, ++k);
    if (!vd.ok) { ok = false; add_line(summary, &slen, vd.explain); }
  }
  if (ls->cfg.cfg.app == &syn_kv_app && ls->cfg.cfg.clients > 0) {
    /* The clients' key-value history must be linearizable. */
    syn_lin_history_t lh;
    syn_lin_history_init(&lh);
    syn_verdict_t vd;
    char why[SYN_MAX_EXPLAIN_BYTES - 64];
    int rc = syn_history_to_lin(h, &lh, why, sizeof why);
    if (rc == 0) {
      syn_check_linearizable(&lh, NULL, &vd, NULL);
    } else {
      memset(&vd, 0, sizeof vd);
      vd.checker = "linearizability";
      vd.node_a = vd.node_b = -1; vd.pos_a = vd.pos_b = -1;
      snprintf(vd.explain, sizeof vd.explain, "the clients' history could not be read as key-value operations: %s",
               why[0] ? why : syn_strerror(rc));
    }
    syn_lin_history_free(&lh);
    synL_push_verdict(L, &vd);
    lua_setfield(L, v + 1, "linearizability");
    lua_pushliteral(L, "linearizability");
    lua_rawseti(L, v + 2, ++k);
    if (!vd.ok) { ok = false; add_line(summary, &slen, vd.explain); }
  }
  lua_getfield(L, 2, "liveness");
  bool live = !(lua_isboolean(L, -1) && !lua_toboolean(L, -1));
  if (live) {
    int lt = lua_istable(L, -1) ? lua_gettop(L) : 0;
    int64_t heal_at = ls->healed_at_ns, bound = 5 * SYN_NS_PER_S;
    if (lt) {
      static const char *const lknown[] = { "heal_at", "bound", NULL };
      check_keys(L, lt, lknown, "check");
      heal_at = synL_fieldtime(L, lt, "heal_at", heal_at, "check");
      bound = synL_fieldtime(L, lt, "bound", bound, "check");
    }
    /* An idle simulation can never deliver anything more: every deadline is judged. */
    int64_t end_ns = syn_sim_idle(ls->sim) ? INT64_MAX : syn_sim_now(ls->sim);
    syn_verdict_t vd;
    syn_check_liveness(h, heal_at, bound, end_ns, &vd);
    synL_push_verdict(L, &vd);
    lua_setfield(L, v + 1, "liveness");
    lua_pushliteral(L, "liveness");
    lua_rawseti(L, v + 2, ++k);
    if (!vd.ok) { ok = false; add_line(summary, &slen, vd.explain); }
  }
  lua_pop(L, 1);
  lua_pushstring(L, summary);
  lua_setfield(L, v, "summary");
  lua_setfield(L, v, "order");
  lua_setfield(L, v, "checks");
  lua_pushboolean(L, ok);
  lua_setfield(L, v, "ok");
  luaL_setmetatable(L, CHECKS_MT);
  return 1;
}

/* nodes:min_delivered() — the fewest deliveries among honest nodes that are up. */
static int l_nodes_min_delivered(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_rawgeti(L, 1, 1);
  lnode_t *ln = check_node(L, -1);
  const syn_history_t *h = syn_sim_history(ln->ls->sim);
  uint64_t min = UINT64_MAX;
  for (uint32_t i = 0; i < h->n; i++) {
    if (!h->honest[i] || !syn_sim_node(ln->ls->sim, i)->up) continue;
    if (h->logs[i].count < min) min = h->logs[i].count;
  }
  lua_pushinteger(L, min == UINT64_MAX ? 0 : (lua_Integer)min);
  return 1;
}

/* nodes:completed() — client operations answered so far (f+1 matching replies). */
static int l_nodes_completed(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_rawgeti(L, 1, 1);
  lnode_t *ln = check_node(L, -1);
  const syn_history_t *h = syn_sim_history(ln->ls->sim);
  uint64_t done = 0;
  for (uint32_t c = h->n; c < h->n + h->clients; c++) done += h->logs[c].count;
  lua_pushinteger(L, (lua_Integer)done);
  return 1;
}

/* nodes:kv_history() — the clients' key-value history (synod.kv_history). */
static int l_nodes_kv_history(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_rawgeti(L, 1, 1);
  lnode_t *ln = check_node(L, -1);
  syn_lin_history_t *lh = synL_push_kvhistory(L);
  char why[SYN_MAX_EXPLAIN_BYTES];
  int rc = syn_history_to_lin(syn_sim_history(ln->ls->sim), lh, why, sizeof why);
  if (rc) luaL_error(L, "kv_history: %s", why[0] ? why : syn_strerror(rc));
  return 1;
}

static int l_nodes_honest(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  lua_newtable(L);
  int k = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lnode_t *ln = check_node(L, -1);
    if (syn_sim_history(ln->ls->sim)->honest[ln->id]) lua_rawseti(L, -2, ++k);
    else lua_pop(L, 1);
  }
  return 1;
}

/* ---- registration ---- */

static const luaL_Reg sim_methods[] = {
  { "cluster", l_sim_cluster }, { "nodes", l_sim_nodes }, { "now", l_sim_now },
  { "at", l_sim_at }, { "after", l_sim_after }, { "submit", l_sim_submit }, { "run", l_sim_run },
  { "trace_hash", l_sim_trace_hash }, { "stats", l_sim_stats }, { "random", l_sim_random },
  { "sample", l_sim_sample }, { "partition", l_sim_partition }, { "block", l_sim_block },
  { "unblock", l_sim_unblock }, { "heal", l_sim_heal }, { "link", l_sim_link }, { "twins", l_sim_twins },
  { "close", l_sim_close }, { NULL, NULL }
};

static const luaL_Reg node_methods[] = {
  { "submit", l_node_submit }, { "crash", l_node_crash }, { "restart", l_node_restart },
  { "records", l_node_records }, { "set_record", l_node_set_record }, { "store", l_node_store },
  { "store_fault", l_node_store_fault },
  { "is_up", l_node_is_up }, { "is_honest", l_node_is_honest }, { "skew", l_node_skew },
  { "behave", l_node_behave }, { "send", l_node_send }, { "replay", l_node_replay },
  { "frame", l_node_frame }, { "history", l_node_history }, { "delivered", l_node_delivered },
  { "status", l_node_status }, { "counters", l_node_counters }, { "evidence", l_node_evidence },
  { NULL, NULL }
};

static const luaL_Reg nodes_methods[] = {
  { "check", l_nodes_check }, { "min_delivered", l_nodes_min_delivered },
  { "completed", l_nodes_completed }, { "kv_history", l_nodes_kv_history }, { "honest", l_nodes_honest },
  { NULL, NULL }
};

static const luaL_Reg dist_funcs[] = {
  { "constant", l_dist_constant }, { "uniform", l_dist_uniform }, { "normal", l_dist_normal },
  { "exponential", l_dist_exponential }, { "pareto", l_dist_pareto }, { NULL, NULL }
};

void synL_open_sim(lua_State *L) {
  luaL_newmetatable(L, SIM_MT);
  luaL_newlib(L, sim_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_sim_gc); lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_sim_gc); lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, l_sim_tostring); lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  luaL_newmetatable(L, NODE_MT);
  luaL_setfuncs(L, node_methods, 0);
  lua_pushcfunction(L, l_node_index); lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_node_tostring); lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  luaL_newmetatable(L, NODES_MT);
  luaL_newlib(L, nodes_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  luaL_newmetatable(L, DIST_MT);
  lua_pushcfunction(L, l_dist_tostring); lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  luaL_newmetatable(L, CHECKS_MT);
  lua_newtable(L);
  lua_pushcfunction(L, l_verdict_explain); lua_setfield(L, -2, "explain");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  lua_pushcfunction(L, l_sim_new); lua_setfield(L, -2, "sim");
  luaL_newlib(L, dist_funcs);
  lua_setfield(L, -2, "dist");
}
