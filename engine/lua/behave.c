/* behave.c — what both runtimes' Lua faces show of a node: the signed
 * frame it would send, its counters and its evidence; and the behaviour bridge: runs a Byzantine node's Lua hooks
 * (on_send, on_receive, on_timer) for node/, in whichever runtime the node
 * lives (the simulator's lua_sim.c, the live node's REPL). Every hook runs
 * on its owner's thread inside synL_pcall with the owner's instruction
 * budget: the protected functions below do all the Lua work — fetching the
 * hook, building the message table, reading what it returned — so no Lua
 * error can unwind through node/. Only light userdata cross the boundary. */
#include <string.h>

#include "synl.h"

#define SYN_MAX_LOGGED_HOOK_ERRORS 3      /* per behaviour; the rest are counted */

/* Pushes hook `name` of b's behaviour (rawget: no metamethods), or returns false. */
static bool get_hook(lua_State *T, synL_behav_t *b, const char *name) {
  if (b->ref == LUA_NOREF) return false;
  lua_rawgeti(T, LUA_REGISTRYINDEX, b->ref);
  lua_pushstring(T, name);
  lua_rawget(T, -2);
  lua_remove(T, -2);
  if (lua_isfunction(T, -1)) return true;
  lua_pop(T, 1);
  return false;
}

/* Sends one result message (table at idx) from node. */
static void emit_table(lua_State *T, int idx, syn_node_t *node, uint32_t default_to) {
  idx = lua_absindex(T, idx);
  if (!lua_istable(T, idx)) luaL_error(T, "on_send must return a message, a list of messages or nil (got %s)", luaL_typename(T, idx));
  lua_getfield(T, idx, "to");
  lua_Integer to = lua_isnil(T, -1) ? default_to : lua_tointeger(T, -1);
  lua_pop(T, 1);
  if (to < 0 || (uint64_t)to >= node->n) luaL_error(T, "message destination %d out of range", (int)to);
  int64_t delay = synL_fieldtime(T, idx, "delay", 0, "on_send");
  syn_msg_t m;
  synL_check_msg(T, idx, 0, NULL, node->proto->name, &m);
  int rc = syn_node_emit(node, (uint32_t)to, &m, delay);
  if (rc) luaL_error(T, "cannot send %s.%s: %s", m.def->proto, m.def->name, syn_strerror(rc));
}

/* Protected: (lbehav, msg, to) → runs on_send and emits what it returns. */
static int run_on_send(lua_State *T) {
  synL_behav_t *b = lua_touserdata(T, 1);
  const syn_msg_t *m = lua_touserdata(T, 2);
  uint32_t to = (uint32_t)lua_tointeger(T, 3);
  syn_node_t *node = b->ops->node(b);
  lua_settop(T, 0);
  if (!get_hook(T, b, "on_send")) {                 /* removed since: pass through */
    int rc = syn_node_emit(node, to, m, 0);
    if (rc) luaL_error(T, "cannot send: %s", syn_strerror(rc));
    return 0;
  }
  b->ops->push_node(T, b);
  synL_push_msg(T, m);
  lua_pushinteger(T, to);
  lua_call(T, 3, 1);
  if (!lua_toboolean(T, -1)) { node->c.hook_drops++; return 0; }
  luaL_checktype(T, -1, LUA_TTABLE);
  lua_getfield(T, -1, "type");
  bool single = !lua_isnil(T, -1);
  lua_pop(T, 1);
  if (single) { emit_table(T, -1, node, to); return 0; }
  lua_Integer count = luaL_len(T, -1);
  if (count == 0) node->c.hook_drops++;
  for (lua_Integer i = 1; i <= count; i++) {
    lua_rawgeti(T, -1, i);
    emit_table(T, -1, node, to);
    lua_pop(T, 1);
  }
  return 0;
}

/* Protected: (lbehav, msg, from) → runs on_receive; a kept message is
 * encoded into the behaviour's scratch and its def returned as light userdata. */
static int run_on_receive(lua_State *T) {
  synL_behav_t *b = lua_touserdata(T, 1);
  const syn_msg_t *m = lua_touserdata(T, 2);
  uint32_t from = (uint32_t)lua_tointeger(T, 3);
  syn_node_t *node = b->ops->node(b);
  lua_settop(T, 0);
  syn_msg_t kept = *m;
  if (get_hook(T, b, "on_receive")) {
    b->ops->push_node(T, b);
    synL_push_msg(T, m);
    lua_pushinteger(T, from);
    lua_call(T, 3, 1);
    if (!lua_toboolean(T, -1)) { lua_pushboolean(T, 0); return 1; }
    synL_check_msg(T, -1, 0, NULL, node->proto->name, &kept);
  }
  size_t len;
  int rc = syn_wire_payload_size(&kept, &len);
  if (rc == 0) { syn_buf_reset(&b->scratch); rc = syn_buf_reserve(&b->scratch, len ? len : 1); }
  if (rc == 0) rc = syn_wire_encode_payload(&kept, b->scratch.data, b->scratch.cap, &len);
  if (rc) luaL_error(T, "cannot encode the received message: %s", syn_strerror(rc));
  b->scratch.len = len;
  lua_pushlightuserdata(T, (void *)kept.def);
  return 1;
}

/* Protected: (lbehav, timer) → on_timer's verdict: false swallows the firing. */
static int run_on_timer(lua_State *T) {
  synL_behav_t *b = lua_touserdata(T, 1);
  lua_Integer timer = lua_tointeger(T, 2);
  lua_settop(T, 0);
  if (!get_hook(T, b, "on_timer")) { lua_pushboolean(T, 1); return 1; }
  b->ops->push_node(T, b);
  lua_pushinteger(T, timer);
  lua_call(T, 2, 1);
  lua_pushboolean(T, !(lua_isboolean(T, -1) && !lua_toboolean(T, -1)));
  return 1;
}

/* Runs a protected hook body on the sim's thread with the hook budget.
 * Returns the Lua status; on success the nresults results are on T. */
static int call_hook(synL_behav_t *b, const char *what, int nresults) {
  lua_State *T = b->ops->thread(b);
  void *token = b->ops->enter ? b->ops->enter(b) : NULL;
  int rc = synL_pcall(T, lua_gettop(T) - 1, nresults, what, b->ops->budget(b));
  if (b->ops->leave) b->ops->leave(b, token);
  if (rc != LUA_OK) {
    if (++b->errors <= SYN_MAX_LOGGED_HOOK_ERRORS)
      SYN_LOG_WARN("node %u: %s%s", b->id, lua_tostring(T, -1),
                   b->errors == SYN_MAX_LOGGED_HOOK_ERRORS ? "\n(further hook errors of this node are only counted)" : "");
    lua_settop(T, 0);
  }
  return rc;
}

/* Readies a hook call on the sim's thread: body, then (behaviour, msg, peer). */
static lua_State *push_hook(synL_behav_t *b, lua_CFunction body, const syn_msg_t *m, uint32_t peer) {
  lua_State *T = b->ops->thread(b);
  lua_settop(T, 0);
  lua_pushcfunction(T, body);
  lua_pushlightuserdata(T, b);
  lua_pushlightuserdata(T, (void *)m);
  lua_pushinteger(T, peer);
  return T;
}

static int hook_on_send(void *ctx, syn_node_t *node, const syn_msg_t *m, uint32_t to) {
  (void)node;
  synL_behav_t *b = ctx;
  lua_State *T = push_hook(b, run_on_send, m, to);
  int rc = call_hook(b, "behaviour hook 'on_send'", 0);
  lua_settop(T, 0);
  return rc == LUA_OK ? 0 : -1;
}

static int hook_on_receive(void *ctx, syn_node_t *node, const syn_msg_t *m, uint32_t from, syn_msg_t *out) {
  (void)node;
  synL_behav_t *b = ctx;
  lua_State *T = push_hook(b, run_on_receive, m, from);
  if (call_hook(b, "behaviour hook 'on_receive'", 1) != LUA_OK) return -1;
  int keep = 0;
  if (lua_islightuserdata(T, -1)) {
    const syn_msg_def_t *def = lua_touserdata(T, -1);
    keep = syn_wire_decode_payload(def, b->scratch.data, b->scratch.len, out) == 0 ? 1 : -1;
  }
  lua_settop(T, 0);
  return keep;
}

static bool hook_on_timer(void *ctx, syn_node_t *node, uint32_t timer) {
  (void)node;
  synL_behav_t *b = ctx;
  lua_State *T = b->ops->thread(b);
  lua_settop(T, 0);
  lua_pushcfunction(T, run_on_timer);
  lua_pushlightuserdata(T, b);
  lua_pushinteger(T, timer);
  bool fire = true;
  if (call_hook(b, "behaviour hook 'on_timer'", 1) == LUA_OK) fire = lua_toboolean(T, -1);
  lua_settop(T, 0);
  return fire;
}

static void hook_release(void *ctx) {
  synL_behav_t *b = ctx;
  lua_State *T = b->ops->thread(b);
  if (T && b->ref != LUA_NOREF) luaL_unref(T, LUA_REGISTRYINDEX, b->ref);
  b->ref = LUA_NOREF;
}

void synL_behav_init(synL_behav_t *b, const synL_behav_ops_t *ops, void *owner, uint32_t id) {
  *b = (synL_behav_t){ .ops = ops, .owner = owner, .id = id, .ref = LUA_NOREF };
  syn_buf_init(&b->scratch, SYN_MAX_PAYLOAD_BYTES);
}

void synL_behav_free(synL_behav_t *b) { syn_buf_free(&b->scratch); }

bool synL_behave(lua_State *L, int idx, synL_behav_t *b) {
  syn_node_t *node = b->ops->node(b);
  idx = lua_absindex(L, idx);
  if (lua_isnoneornil(L, idx)) { syn_node_behave(node, NULL); return false; }
  luaL_checktype(L, idx, LUA_TTABLE);
  static const char *const hooks[] = { "on_send", "on_receive", "on_timer", NULL };
  bool any = false;
  for (int i = 0; hooks[i]; i++) {       /* raw: a behaviour's metamethods are never run from C */
    lua_pushstring(L, hooks[i]);
    lua_rawget(L, idx);
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
      luaL_error(L, "bad argument #1 to 'behave' (%s must be a function, got %s)", hooks[i], luaL_typename(L, -1));
    any |= lua_isfunction(L, -1);
    lua_pop(L, 1);
  }
  if (!any) luaL_argerror(L, idx, "a behaviour needs at least one of on_send, on_receive, on_timer");
  syn_node_behave(node, NULL);   /* releases the previous one */
  b->errors = 0;
  lua_pushvalue(L, idx);
  b->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  syn_behavior_t hb = { .ctx = b, .on_send = hook_on_send, .on_receive = hook_on_receive,
                        .on_timer = hook_on_timer, .release = hook_release };
  syn_node_behave(node, &hb);
  return true;
}

/* ---- a node's views, shared by sim and live ---- */

int synL_push_node_frame(lua_State *L, syn_node_t *node, int msg) {
  syn_msg_t m;
  synL_check_msg(L, msg, msg, NULL, node->proto->name, &m);
  size_t len;
  int rc = syn_wire_frame_encode(&m, node->id, node->frame_buf, SYN_MAX_FRAME_BYTES, &len);
  if (rc == 0 && node->sign) rc = syn_crypto_sign_frame(&node->ident, node->frame_buf, len);
  if (rc) luaL_error(L, "cannot frame: %s", syn_strerror(rc));
  lua_pushlstring(L, (const char *)node->frame_buf, len);
  return 1;
}

int synL_push_node_counters(lua_State *L, syn_node_t *node) {
  const syn_node_counters_t *c = &node->c;
  lua_newtable(L);
#define F(name) lua_pushinteger(L, (lua_Integer)c->name); lua_setfield(L, -2, #name);
  F(sent) F(received) F(delivered) F(timers) F(requests) F(hook_errors) F(hook_drops)
#undef F
  lua_newtable(L);
  for (int e = 1; e < SYN_E_COUNT; e++) {
    if (c->wire_drops[e] == 0) continue;
    lua_pushinteger(L, (lua_Integer)c->wire_drops[e]);
    lua_setfield(L, -2, syn_wire_drop_reason(-e));
  }
  if (c->down_drops) { lua_pushinteger(L, (lua_Integer)c->down_drops); lua_setfield(L, -2, "node_down"); }
  lua_setfield(L, -2, "dropped");
  lua_newtable(L);
  for (uint32_t r = 0; r < node->proto->nreasons; r++) {
    if (c->rejected[r] == 0) continue;
    lua_pushinteger(L, (lua_Integer)c->rejected[r]);
    lua_setfield(L, -2, syn_node_reason(node, r));
  }
  lua_setfield(L, -2, "rejected");
  lua_newtable(L);   /* refused by the protocol's admit, before the signature was checked */
  for (uint32_t r = 0; r < node->proto->nreasons; r++) {
    if (c->unverified[r] == 0) continue;
    lua_pushinteger(L, (lua_Integer)c->unverified[r]);
    lua_setfield(L, -2, syn_node_reason(node, r));
  }
  lua_setfield(L, -2, "unverified");
  return 1;
}

int synL_push_node_evidence(lua_State *L, syn_node_t *node) {
  lua_createtable(L, (int)node->nevidence, 0);
  for (uint32_t i = 0; i < node->nevidence; i++) {
    const syn_evidence_t *e = &node->evidence[i];
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, e->against); lua_setfield(L, -2, "against");
    lua_pushstring(L, syn_node_reason(node, e->reason)); lua_setfield(L, -2, "reason");
    lua_pushinteger(L, (lua_Integer)e->round); lua_setfield(L, -2, "round");
    lua_pushinteger(L, e->at_ns); lua_setfield(L, -2, "at");
    lua_pushinteger(L, node->id); lua_setfield(L, -2, "detected_by");
    lua_pushlstring(L, (const char *)e->a, e->len_a); lua_setfield(L, -2, "a");
    lua_pushlstring(L, (const char *)e->b, e->len_b); lua_setfield(L, -2, "b");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* node:send(to, msg [, delay]) with msg at index msg, delay after it: a
 * message crafted by a behaviour, signed with this node's own key. */
int synL_node_send(lua_State *L, syn_node_t *node, uint32_t to, int msg) {
  int64_t delay = synL_opttime(L, msg + 1, 0);
  syn_msg_t m;
  synL_check_msg(L, msg, msg, NULL, node->proto->name, &m);
  int rc = syn_node_emit(node, to, &m, delay);
  if (rc) luaL_error(L, "cannot send: %s", syn_strerror(rc));
  return 0;
}

/* node:replay(to, frame [, delay]) with frame at index frame: captured bytes, resent as they are. */
int synL_node_replay(lua_State *L, syn_node_t *node, uint32_t to, int frame) {
  size_t len;
  const char *f = luaL_checklstring(L, frame, &len);
  if (len > SYN_MAX_FRAME_BYTES) luaL_argerror(L, frame, "frame over SYN_MAX_FRAME_BYTES");   /* short or empty: the receiver counts the drop */
  syn_node_emit_raw(node, to, (const uint8_t *)f, len, synL_opttime(L, frame + 1, 0));
  return 0;
}
