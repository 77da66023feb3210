/* lua_check.c — the Lua face of check/: synod.history{ n = N } and the
 * "synod.History" userdata, and the one way a verdict becomes a Lua table
 * (synL_push_verdict, check/check_lua.h) that the simulator's face shares.
 * Thin by rule: it marshals arguments, calls check/ and pushes copies; it
 * never judges anything itself and never hands Lua a pointer into the
 * history's arena.
 *
 *   local h = synod.history{ n = 4 [, clients = 2] }
 *                                             -- replicas 0 .. n-1, clients n .. n+clients-1,
 *                                             -- all honest (check.h: the two shapes of run)
 *   h:submit(node, value [, at])              -- a client submitted value at node
 *   h:deliver(node, seq, origin, ts, value [, at])   -- at a client: its response
 *   h:commit(replica, seq, digest [, at])     -- digest: 64 hex digits or 32 bytes
 *   h:byzantine(node)                         -- ignored by every checker
 *   h:reset(node)                             -- amnesia restart: new logs
 *   h:client_epoch(client, rank_base, first_ts)  -- a client restarted from its records:
 *                                             -- its submissions after rank_base carry ts from first_ts
 *   h:is_honest(node), #h (= n), h:log(node), h:submissions(),
 *   h:commits(replica)                        -- { {seq=, digest=<hex>, at=} … }
 *   h:kv_history()                            -- the clients' ops as a synod.kv_history
 *                                             -- (check/lin.h syn_history_to_lin)
 *   h:check(name [, opts])                    -- one verdict
 *   h:check_all([opts])                       -- {ok, checker="all", checks={…}, explain}
 *
 * Times (at, heal_at, bound, end_ns) are integer nanoseconds or strings
 * like "5ms". check names: agreement, total_order, validity, integrity,
 * batches, exactly_once, liveness (opts.bound required; opts.heal_at
 * defaults to 0, opts.end_ns to the latest time the history recorded),
 * ts_order. check_all runs agreement, total_order, validity and integrity,
 * then batches and exactly_once when the history has clients or commits,
 * then liveness when opts.bound is given and ts_order when opts.ts_order is
 * true. */
#include "synl.h"
#include "../check/check_lua.h"

#include <string.h>

#define HISTORY_MT "synod.History"
#define VERDICT_MT "synod.Verdict"

typedef struct {
  syn_history_t h;
  bool open;       /* false after __close / __gc */
} history_ud_t;

/* ---- arguments ---- */

static history_ud_t *check_ud(lua_State *L, int arg) {
  history_ud_t *u = luaL_checkudata(L, arg, HISTORY_MT);
  if (!u->open) luaL_error(L, "synod.History used after it was closed");
  return u;
}

syn_history_t *synL_checkhistory(lua_State *L, int arg) {
  return &check_ud(L, arg)->h;
}

/* A node id below limit: n + clients for any node, n for a replica. */
static uint32_t check_id(lua_State *L, int arg, uint32_t limit, const char *what) {
  lua_Integer node = luaL_checkinteger(L, arg);
  if (node < 0 || (lua_Unsigned)node >= limit)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s %I out of range 0..%d", what, node, (int)limit - 1));
  return (uint32_t)node;
}

static uint32_t check_node(lua_State *L, const syn_history_t *h, int arg) {
  return check_id(L, arg, h->n + h->clients, "node");
}

static lua_Integer check_nonneg(lua_State *L, int arg, const char *what) {
  lua_Integer x = luaL_checkinteger(L, arg);
  if (x < 0) luaL_argerror(L, arg, lua_pushfstring(L, "%s must not be negative, got %I", what, x));
  return x;
}

/* opts[key] as a time (synL_fieldtime); def when opts is absent or has no
 * such key, *present telling which. */
static int64_t field_time(lua_State *L, int opts, const char *key, int64_t def, bool *present) {
  if (present) *present = false;
  if (lua_isnoneornil(L, opts)) return def;
  lua_getfield(L, opts, key);
  if (present) *present = !lua_isnil(L, -1);
  lua_pop(L, 1);
  return synL_fieldtime(L, opts, key, def, "check");
}

static void check_opts(lua_State *L, int arg) {
  if (!lua_isnoneornil(L, arg)) luaL_checktype(L, arg, LUA_TTABLE);
}

/* ---- construction and lifetime ---- */

static int history_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "n");
  int isint = 0;
  lua_Integer n = lua_tointegerx(L, -1, &isint);
  if (!isint)
    luaL_argerror(L, 1, lua_pushfstring(L, "n: integer expected, got %s", luaL_typename(L, -1)));
  lua_pop(L, 1);
  if (n > SYN_MAX_HISTORY_NODES)
    luaL_argerror(L, 1, lua_pushfstring(L, "n = %I exceeds SYN_MAX_HISTORY_NODES (%d)", n,
                                        (int)SYN_MAX_HISTORY_NODES));
  if (n < 1) luaL_argerror(L, 1, lua_pushfstring(L, "n = %I: a history needs at least one node", n));
  lua_getfield(L, 1, "clients");
  lua_Integer clients = 0;
  if (!lua_isnil(L, -1)) {
    clients = lua_tointegerx(L, -1, &isint);
    if (!isint || clients < 0)
      luaL_argerror(L, 1, lua_pushfstring(L, "clients: non-negative integer expected, got %s",
                                          isint ? lua_tostring(L, -1) : luaL_typename(L, -1)));
  }
  lua_pop(L, 1);
  if (clients > SYN_MAX_HISTORY_NODES - n)
    luaL_argerror(L, 1, lua_pushfstring(L, "n + clients = %I exceeds SYN_MAX_HISTORY_NODES (%d)",
                                        n + clients, (int)SYN_MAX_HISTORY_NODES));
  history_ud_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->open = false;
  int rc = syn_history_init(&u->h, (uint32_t)n);
  if (rc == 0) rc = syn_history_set_clients(&u->h, (uint32_t)clients);
  SYN_ASSERT(rc == 0);   /* n and clients were checked above */
  u->open = true;
  luaL_setmetatable(L, HISTORY_MT);
  return 1;
}

static int history_gc(lua_State *L) {
  history_ud_t *u = luaL_checkudata(L, 1, HISTORY_MT);
  if (u->open) { syn_history_free(&u->h); u->open = false; }
  return 0;
}

static int history_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_ud(L, 1)->h.n);
  return 1;
}

static int history_tostring(lua_State *L) {
  history_ud_t *u = luaL_checkudata(L, 1, HISTORY_MT);
  if (!u->open) { lua_pushliteral(L, "synod.History(closed)"); return 1; }
  uint64_t deliveries = 0, commits = 0;
  for (uint32_t i = 0; i < u->h.n; i++) {
    deliveries += u->h.logs[i].count;
    commits += u->h.commits[i].count;
  }
  if (u->h.clients == 0 && commits == 0) {
    lua_pushfstring(L, "synod.History(n=%d, deliveries=%I, submissions=%I)", (int)u->h.n,
                    (lua_Integer)deliveries, (lua_Integer)u->h.nsubs);
    return 1;
  }
  uint64_t responses = 0;
  for (uint32_t c = u->h.n; c < u->h.n + u->h.clients; c++) responses += u->h.logs[c].count;
  lua_pushfstring(L, "synod.History(n=%d, clients=%d, deliveries=%I, responses=%I, commits=%I, "
                  "submissions=%I)", (int)u->h.n, (int)u->h.clients, (lua_Integer)deliveries,
                  (lua_Integer)responses, (lua_Integer)commits, (lua_Integer)u->h.nsubs);
  return 1;
}

/* ---- recording ---- */

static int append_error(lua_State *L, const char *fname, const syn_history_t *h, uint32_t node,
                        bool is_delivery, int rc) {
  if (rc == -SYN_ELIMIT) {
    if (is_delivery && h->logs[node].count >= SYN_MAX_HISTORY_ENTRIES)
      return luaL_error(L, "%s: node %d already has SYN_MAX_HISTORY_ENTRIES (%d) deliveries",
                        fname, (int)node, (int)SYN_MAX_HISTORY_ENTRIES);
    if (!is_delivery && h->nsubs >= SYN_MAX_SUBMISSIONS)
      return luaL_error(L, "%s: the history already has SYN_MAX_SUBMISSIONS (%d) submissions",
                        fname, (int)SYN_MAX_SUBMISSIONS);
    return luaL_error(L, "%s: value bytes would exceed SYN_MAX_HISTORY_BYTES (%d)", fname,
                      (int)SYN_MAX_HISTORY_BYTES);
  }
  return luaL_error(L, "%s: %s", fname, syn_strerror(rc));
}

static int history_deliver(lua_State *L) {
  syn_history_t *h = synL_checkhistory(L, 1);
  uint32_t node = check_node(L, h, 2);
  lua_Integer seq = check_nonneg(L, 3, "seq");
  lua_Integer origin = check_nonneg(L, 4, "origin");
  if ((lua_Unsigned)origin > UINT32_MAX)
    luaL_argerror(L, 4, lua_pushfstring(L, "origin %I out of range", origin));
  lua_Integer ts = check_nonneg(L, 5, "ts");
  size_t len = 0;
  const char *value = luaL_checklstring(L, 6, &len);
  int64_t at_ns = synL_opttime(L, 7, 0);
  int rc = syn_history_deliver(h, node, (uint64_t)seq, (uint32_t)origin, (uint64_t)ts, at_ns,
                               (const uint8_t *)value, len);
  if (rc) return append_error(L, "deliver", h, node, true, rc);
  return 0;
}

static int history_submit(lua_State *L) {
  syn_history_t *h = synL_checkhistory(L, 1);
  uint32_t node = check_node(L, h, 2);
  size_t len = 0;
  const char *value = luaL_checklstring(L, 3, &len);
  int64_t at_ns = synL_opttime(L, 4, 0);
  int rc = syn_history_submit(h, node, at_ns, (const uint8_t *)value, len);
  if (rc) return append_error(L, "submit", h, node, false, rc);
  return 0;
}

/* h:commit(replica, seq, digest [, at]) */
static int history_commit(lua_State *L) {
  syn_history_t *h = synL_checkhistory(L, 1);
  uint32_t node = check_id(L, 2, h->n, "replica");
  lua_Integer seq = check_nonneg(L, 3, "seq");
  size_t len = 0;
  const char *text = luaL_checklstring(L, 4, &len);
  uint8_t digest[SYN_HISTORY_DIGEST_BYTES];
  if (len == SYN_HISTORY_DIGEST_BYTES) {
    memcpy(digest, text, len);
  } else if (len != 2 * SYN_HISTORY_DIGEST_BYTES || syn_unhex(text, digest, sizeof digest) != 0) {
    luaL_argerror(L, 4, lua_pushfstring(L, "digest: %d hex digits or %d bytes expected, got %I bytes",
                                        2 * SYN_HISTORY_DIGEST_BYTES, SYN_HISTORY_DIGEST_BYTES,
                                        (lua_Integer)len));
  }
  int64_t at_ns = synL_opttime(L, 5, 0);
  int rc = syn_history_commit(h, node, (uint64_t)seq, digest, at_ns);
  if (rc == -SYN_ELIMIT)
    return luaL_error(L, "commit: replica %d already has SYN_MAX_HISTORY_COMMITS (%d) commits",
                      (int)node, (int)SYN_MAX_HISTORY_COMMITS);
  if (rc) return luaL_error(L, "commit: %s", syn_strerror(rc));
  return 0;
}

static int history_byzantine(lua_State *L) {
  syn_history_t *h = synL_checkhistory(L, 1);
  h->honest[check_node(L, h, 2)] = false;
  return 0;
}

static int history_is_honest(lua_State *L) {
  syn_history_t *h = synL_checkhistory(L, 1);
  lua_pushboolean(L, h->honest[check_node(L, h, 2)]);
  return 1;
}

static int history_reset(lua_State *L) {
  syn_history_t *h = synL_checkhistory(L, 1);
  syn_history_reset_node(h, check_node(L, h, 2));
  return 0;
}

static int history_client_epoch(lua_State *L) {
  syn_history_t *h = synL_checkhistory(L, 1);
  uint32_t node = check_node(L, h, 2);
  if (node < h->n) luaL_argerror(L, 2, lua_pushfstring(L, "node %d is a replica, not a client", (int)node));
  lua_Integer base = check_nonneg(L, 3, "rank_base");
  lua_Integer first = check_nonneg(L, 4, "first_ts");
  if (first == 0) luaL_argerror(L, 4, "first_ts must be at least 1");
  int rc = syn_history_client_epoch(h, node, (uint64_t)base, (uint64_t)first);
  if (rc == -SYN_ELIMIT)
    return luaL_error(L, "client_epoch: the history already has SYN_MAX_CLIENT_EPOCHS (%d) epochs",
                      (int)SYN_MAX_CLIENT_EPOCHS);
  if (rc) return luaL_error(L, "client_epoch: %s", syn_strerror(rc));
  return 0;
}

/* ---- reading ---- */

void synL_push_deliveries(lua_State *L, const syn_history_t *h, uint32_t node) {
  const syn_delivery_log_t *lg = &h->logs[node];
  lua_createtable(L, (int)lg->count, 0);
  for (uint32_t p = 0; p < lg->count; p++) {
    const syn_delivery_t *d = &lg->items[p];
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, (lua_Integer)d->seq); lua_setfield(L, -2, "seq");
    lua_pushinteger(L, (lua_Integer)d->origin); lua_setfield(L, -2, "origin");
    lua_pushinteger(L, (lua_Integer)d->ts); lua_setfield(L, -2, "ts");
    lua_pushlstring(L, (const char *)syn_history_value(h, d->off), d->len);
    lua_setfield(L, -2, "value");
    lua_pushinteger(L, (lua_Integer)d->at_ns); lua_setfield(L, -2, "at");
    lua_rawseti(L, -2, (lua_Integer)p + 1);
  }
}

static int history_log(lua_State *L) {
  syn_history_t *h = synL_checkhistory(L, 1);
  synL_push_deliveries(L, h, check_node(L, h, 2));
  return 1;
}

/* h:commits(replica) -> { {seq=, digest=<hex>, at=} … } */
static int history_commits(lua_State *L) {
  syn_history_t *h = synL_checkhistory(L, 1);
  const syn_commit_log_t *cl = &h->commits[check_id(L, 2, h->n, "replica")];
  lua_createtable(L, (int)cl->count, 0);
  for (uint32_t p = 0; p < cl->count; p++) {
    const syn_commit_t *c = &cl->items[p];
    char hex[2 * SYN_HISTORY_DIGEST_BYTES + 1];
    syn_hex(c->digest, SYN_HISTORY_DIGEST_BYTES, hex);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)c->seq); lua_setfield(L, -2, "seq");
    lua_pushstring(L, hex); lua_setfield(L, -2, "digest");
    lua_pushinteger(L, (lua_Integer)c->at_ns); lua_setfield(L, -2, "at");
    lua_rawseti(L, -2, (lua_Integer)p + 1);
  }
  return 1;
}

/* h:kv_history() -> a synod.kv_history of the clients' ops */
static int history_kv_history(lua_State *L) {
  syn_history_t *h = synL_checkhistory(L, 1);
  syn_lin_history_t *out = synL_push_kvhistory(L);
  char why[SYN_MAX_EXPLAIN_BYTES];
  int rc = syn_history_to_lin(h, out, why, sizeof why);
  if (rc == 0) return 1;
  return luaL_error(L, "kv_history: %s", why[0] ? why : syn_strerror(rc));
}

static int history_submissions(lua_State *L) {
  syn_history_t *h = synL_checkhistory(L, 1);
  lua_createtable(L, (int)h->nsubs, 0);
  for (uint32_t i = 0; i < h->nsubs; i++) {
    const syn_submission_t *s = &h->subs[i];
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)s->node); lua_setfield(L, -2, "node");
    lua_pushlstring(L, (const char *)syn_history_value(h, s->off), s->len);
    lua_setfield(L, -2, "value");
    lua_pushinteger(L, (lua_Integer)s->at_ns); lua_setfield(L, -2, "at");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* ---- verdicts ---- */

static int verdict_tostring(lua_State *L) {
  lua_getfield(L, 1, "checker");
  lua_getfield(L, 1, "ok");
  lua_getfield(L, 1, "explain");
  const char *checker = lua_tostring(L, -3);
  if (lua_toboolean(L, -2)) lua_pushfstring(L, "%s: ok", checker ? checker : "?");
  else lua_pushfstring(L, "%s: FAILED: %s", checker ? checker : "?", lua_tostring(L, -1));
  return 1;
}

static void set_verdict_mt(lua_State *L) {
  if (luaL_newmetatable(L, VERDICT_MT)) {
    lua_pushcfunction(L, verdict_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
}

static void set_int_or_nil(lua_State *L, const char *key, int64_t x) {
  if (x < 0) return;
  lua_pushinteger(L, (lua_Integer)x);
  lua_setfield(L, -2, key);
}

void synL_push_verdict(lua_State *L, const syn_verdict_t *v) {
  lua_createtable(L, 0, 7);
  lua_pushboolean(L, v->ok); lua_setfield(L, -2, "ok");
  lua_pushstring(L, v->checker ? v->checker : "?"); lua_setfield(L, -2, "checker");
  lua_pushstring(L, v->explain); lua_setfield(L, -2, "explain");
  set_int_or_nil(L, "node_a", v->node_a);
  set_int_or_nil(L, "node_b", v->node_b);
  set_int_or_nil(L, "pos_a", v->pos_a);
  set_int_or_nil(L, "pos_b", v->pos_b);
  set_verdict_mt(L);
}

/* The latest time the history recorded: liveness's default end. */
static int64_t latest_ns(const syn_history_t *h) {
  int64_t t = 0;
  for (uint32_t i = 0; i < h->n + h->clients; i++) {
    for (uint32_t p = 0; p < h->logs[i].count; p++)
      if (h->logs[i].items[p].at_ns > t) t = h->logs[i].items[p].at_ns;
    for (uint32_t p = 0; p < h->commits[i].count; p++)
      if (h->commits[i].items[p].at_ns > t) t = h->commits[i].items[p].at_ns;
  }
  for (uint32_t i = 0; i < h->nsubs; i++)
    if (h->subs[i].at_ns > t) t = h->subs[i].at_ns;
  return t;
}

/* In check_all's order. */
typedef enum { CK_AGREEMENT, CK_TOTAL_ORDER, CK_VALIDITY, CK_INTEGRITY, CK_BATCHES,
               CK_EXACTLY_ONCE, CK_LIVENESS, CK_TS_ORDER, CK_COUNT } checker_id_t;
static const char *const checker_names[] = {
  "agreement", "total_order", "validity", "integrity", "batches", "exactly_once", "liveness",
  "ts_order", NULL,
};

/* Runs one checker; opts is the stack index of the options (may be none). */
static void run_checker(lua_State *L, const syn_history_t *h, checker_id_t id, int opts,
                        syn_verdict_t *v) {
  switch (id) {
  case CK_AGREEMENT: syn_check_agreement(h, v); return;
  case CK_TOTAL_ORDER: syn_check_total_order(h, v); return;
  case CK_VALIDITY: syn_check_validity(h, v); return;
  case CK_INTEGRITY: syn_check_integrity(h, v); return;
  case CK_TS_ORDER: syn_check_ts_order(h, v); return;
  case CK_BATCHES: syn_check_batches(h, v); return;
  case CK_EXACTLY_ONCE: syn_check_exactly_once(h, v); return;
  case CK_LIVENESS: {
    bool have_bound = false;
    int64_t bound_ns = field_time(L, opts, "bound", 0, &have_bound);
    if (!have_bound) luaL_argerror(L, opts, "liveness needs opts.bound (a time)");
    int64_t heal_ns = field_time(L, opts, "heal_at", 0, NULL);
    int64_t end_ns = field_time(L, opts, "end_ns", latest_ns(h), NULL);
    syn_check_liveness(h, heal_ns, bound_ns, end_ns, v);
    return;
  }
  case CK_COUNT: break;
  }
  SYN_ASSERT(!"a known checker");
}

static int history_check(lua_State *L) {
  syn_history_t *h = synL_checkhistory(L, 1);
  checker_id_t id = (checker_id_t)luaL_checkoption(L, 2, NULL, checker_names);
  check_opts(L, 3);
  syn_verdict_t v;
  run_checker(L, h, id, 3, &v);
  synL_push_verdict(L, &v);
  return 1;
}

static int history_check_all(lua_State *L) {
  syn_history_t *h = synL_checkhistory(L, 1);
  check_opts(L, 2);
  bool liveness = false, ts_order = false;
  if (!lua_isnoneornil(L, 2)) {
    lua_getfield(L, 2, "bound");
    liveness = !lua_isnil(L, -1);
    lua_getfield(L, 2, "ts_order");
    ts_order = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  /* batches and exactly_once speak of clients and commits: a run that
   * recorded neither (TOM) is judged as before. */
  bool pbft = h->clients > 0;
  for (uint32_t i = 0; i < h->n && !pbft; i++) pbft = h->commits[i].count > 0;
  lua_createtable(L, 0, 4);        /* result */
  lua_createtable(L, CK_COUNT, 0); /* checks */
  luaL_Buffer b;
  luaL_buffinit(L, &b);            /* the buffer sits on top until pushresult */
  bool ok = true, any = false;
  int k = 0;
  for (int id = 0; id < CK_COUNT; id++) {
    if (id == CK_LIVENESS && !liveness) continue;
    if (id == CK_TS_ORDER && !ts_order) continue;
    if ((id == CK_BATCHES || id == CK_EXACTLY_ONCE) && !pbft) continue;
    syn_verdict_t v;
    run_checker(L, h, (checker_id_t)id, 2, &v);
    if (!v.ok) {
      ok = false;
      if (any) luaL_addchar(&b, '\n');
      luaL_addstring(&b, v.checker);
      luaL_addstring(&b, ": ");
      luaL_addstring(&b, v.explain);
      any = true;
    }
    synL_push_verdict(L, &v);
    /* checks is below the buffer's box (if any) and the new verdict. */
    lua_rawseti(L, -3, ++k);
  }
  luaL_pushresult(&b);
  lua_setfield(L, -3, "explain");
  lua_setfield(L, -2, "checks");
  lua_pushboolean(L, ok); lua_setfield(L, -2, "ok");
  lua_pushliteral(L, "all"); lua_setfield(L, -2, "checker");
  set_verdict_mt(L);
  return 1;
}

/* ---- registration ---- */

static const luaL_Reg history_methods[] = {
  { "deliver", history_deliver },
  { "submit", history_submit },
  { "byzantine", history_byzantine },
  { "is_honest", history_is_honest },
  { "reset", history_reset },
  { "client_epoch", history_client_epoch },
  { "log", history_log },
  { "submissions", history_submissions },
  { "commit", history_commit },
  { "commits", history_commits },
  { "kv_history", history_kv_history },
  { "check", history_check },
  { "check_all", history_check_all },
  { NULL, NULL },
};

static const luaL_Reg history_meta[] = {
  { "__gc", history_gc },
  { "__close", history_gc },
  { "__len", history_len },
  { "__tostring", history_tostring },
  { NULL, NULL },
};

void synL_open_history(lua_State *L) {
  if (luaL_newmetatable(L, HISTORY_MT)) {
    luaL_setfuncs(L, history_meta, 0);
    luaL_newlib(L, history_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, history_new);
  lua_setfield(L, -2, "history");
}
