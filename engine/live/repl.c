/* repl.c — the Lua REPL inside a live node (see repl.h). Owns the Unix
 * socket DATA/repl.sock (0600, in the 0700 data directory), its
 * connections, and the `node` object a REPL chunk and a behaviour see.
 * Chunks run on the node's own loop thread, between events, with an
 * instruction budget; the node goes on serving as soon as a chunk returns.
 * Never: a protocol rule (a behaviour acts only through node/). */
#include "repl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <sodium.h>

#include "../lua/synl.h"
#include "stream.h"

#define SYN_MAX_REPL_CONNS         8
#define SYN_MAX_REPL_TIMERS        1024
#define SYN_MAX_REPL_OUTPUT_BYTES  (1u << 20)   /* one chunk's printed output, then cut */
#define SYN_REPL_INSTRUCTIONS      100000000    /* one chunk: about a second of Lua */
#define SYN_REPL_HOOK_INSTRUCTIONS 1000000      /* one behaviour hook call */

typedef struct rconn {
  uv_pipe_t pipe;
  syn_repl_t *r;
  struct rconn *next;
  syn_stream_t st;
  bool closing;
} rconn_t;

typedef struct rtimer {
  uv_timer_t h;
  syn_repl_t *r;
  struct rtimer *prev, *next;
  int ref;
} rtimer_t;

struct syn_repl {
  syn_live_t *lv;
  lua_State *L;
  uv_pipe_t listener;
  bool listening, closed;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  rconn_t *conns;
  rtimer_t *timers;              /* pending node.sim:after callbacks */
  uint32_t nconns, ntimers;
  int node_ref, show_ref;
  synL_behav_t behav;
  syn_buf_t out;                 /* what the running chunk printed */
  bool capturing;
};

/* How a value is shown: tables as {k = v, …}, keys sorted, two levels deep. */
const char syn_repl_show_src[] =
  "local function key(k) if type(k) == 'string' and k:match('^[%a_][%w_]*$') then return k end\n"
  "  return '[' .. (type(k) == 'string' and ('%q'):format(k) or tostring(k)) .. ']' end\n"
  "local function show(v, depth)\n"
  "  if type(v) == 'string' then return depth > 0 and ('%q'):format(v) or v end\n"
  "  if type(v) ~= 'table' or getmetatable(v) and getmetatable(v).__tostring then return tostring(v) end\n"
  "  if depth >= 2 then return '{…}' end\n"
  "  local keys, n = {}, #v\n"
  "  for k in pairs(v) do if not (math.type(k) == 'integer' and k >= 1 and k <= n) then keys[#keys + 1] = k end end\n"
  "  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)\n"
  "  local parts = {}\n"
  "  for i = 1, math.min(n, 20) do parts[#parts + 1] = show(v[i], depth + 1) end\n"
  "  if n > 20 then parts[#parts + 1] = ('… %d more'):format(n - 20) end\n"
  "  for i = 1, math.min(#keys, 30) do parts[#parts + 1] = key(keys[i]) .. ' = ' .. show(v[keys[i]], depth + 1) end\n"
  "  if #keys > 30 then parts[#parts + 1] = ('… %d more keys'):format(#keys - 30) end\n"
  "  return '{' .. table.concat(parts, ', ') .. '}'\n"
  "end\n"
  "return function(v) return show(v, 0) end\n";

/* The `node` object, built over the primitives in `live` (a behaviour sees
 * the same shape it sees in the simulator: node.id, node.sim:now() …). */
static const char node_src[] =
  "local live = ...\n"
  "local sim = {}\n"
  "function sim:nodes() return { n = live.n } end\n"
  "function sim:now() return live.now() end\n"
  "function sim:random(a, b) return live.random(a, b) end\n"
  "function sim:after(t, fn) return live.after(t, fn) end\n"
  "function sim:sample(d) return d:sample() end\n"
  "local node = { id = live.id, n = live.n, protocol = live.protocol, sim = sim }\n"
  "function node:status() return live.status() end\n"
  "function node:peers() return live.peers() end\n"
  "function node:log(k) return live.log(k) end\n"
  "function node:behave(b) return live.behave(b) end\n"
  "function node:send(to, msg, delay) return live.send(to, msg, delay) end\n"
  "function node:replay(to, frame, delay) return live.replay(to, frame, delay) end\n"
  "function node:frame(msg) return live.frame(msg) end\n"
  "function node:counters() return live.counters() end\n"
  "function node:evidence() return live.evidence() end\n"
  "function node:submit(op) return live.submit(op) end\n"
  "function node:is_up() return true end\n"
  "function node:is_honest() return not live.status().byzantine end\n"
  "if os then os.exit = function() error('os.exit would end the node without a clean stop: send it SIGTERM, or type quit at its console', 2) end end\n"
  "if io then io.write = function(...) local t = table.pack(...) for i = 1, t.n do t[i] = tostring(t[i]) end live.write(table.concat(t)) end end\n"
  "return setmetatable(node, { __tostring = function() return ('live node %d of %d (%s)'):format(live.id, live.n, live.protocol) end })\n";

static syn_repl_t *of(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }
static void cancel_timers(syn_repl_t *r);

/* ---- the primitives ---- */

static void status_field(void *ctx, const char *key, int64_t value) {
  lua_State *L = ctx;
  lua_pushinteger(L, value);
  lua_setfield(L, -2, key);
}

static int l_status(lua_State *L) {
  syn_repl_t *r = of(L);
  lua_newtable(L);
  syn_live_status(r->lv, status_field, L);
  lua_pushstring(L, syn_live_node(r->lv)->proto->name); lua_setfield(L, -2, "protocol");
  lua_getfield(L, -1, "byzantine");
  bool byz = lua_tointeger(L, -1) != 0;
  lua_pop(L, 1);
  lua_pushboolean(L, byz); lua_setfield(L, -2, "byzantine");
  return 1;
}

static int l_peers(lua_State *L) {
  syn_repl_t *r = of(L);
  const syn_live_cfg_t *c = syn_live_cfg(r->lv);
  lua_newtable(L);
  int k = 0;
  for (uint32_t p = 0; p < c->n; p++) {
    if (p == c->id) continue;
    syn_peer_info_t i;
    syn_transport_peer(syn_live_transport(r->lv), p, &i);
    lua_newtable(L);
    lua_pushinteger(L, p); lua_setfield(L, -2, "id");
    if (i.known) { lua_pushfstring(L, "%s:%d", i.host, (int)i.port); lua_setfield(L, -2, "address"); }
    lua_pushboolean(L, i.connected); lua_setfield(L, -2, "connected");
    if (i.last_rx_ns) { lua_pushinteger(L, ((int64_t)uv_hrtime() - i.last_rx_ns) / 1000000); lua_setfield(L, -2, "last_message_ms_ago"); }
    lua_pushinteger(L, (lua_Integer)i.frames_in); lua_setfield(L, -2, "frames_in");
    lua_pushinteger(L, (lua_Integer)i.frames_out); lua_setfield(L, -2, "frames_out");
    lua_pushinteger(L, (lua_Integer)i.queued_bytes); lua_setfield(L, -2, "queued_bytes");
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

static int l_log(lua_State *L) {
  syn_repl_t *r = of(L);
  lua_Integer k = luaL_optinteger(L, 1, 10);
  luaL_argcheck(L, k >= 1 && k <= SYN_MAX_LIVE_LOG, 1, "must be 1..1024");
  syn_live_entry_t *e = lua_newuserdatauv(L, sizeof *e * (size_t)k, 0);
  uint32_t got = syn_live_log(r->lv, (uint32_t)k, e);
  lua_createtable(L, (int)got, 0);
  for (uint32_t j = 0; j < got; j++) {
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, (lua_Integer)e[j].seq); lua_setfield(L, -2, "seq");
    lua_pushinteger(L, e[j].origin); lua_setfield(L, -2, "origin");
    lua_pushinteger(L, (lua_Integer)e[j].ts); lua_setfield(L, -2, "ts");
    lua_pushstring(L, e[j].value); lua_setfield(L, -2, "value");
    lua_pushinteger(L, e[j].at_ns / 1000000); lua_setfield(L, -2, "at_ms");
    lua_rawseti(L, -2, (lua_Integer)j + 1);
  }
  return 1;
}

static int l_behave(lua_State *L) {
  syn_repl_t *r = of(L);
  if (syn_node_busy()) luaL_error(L, "'behave' cannot be called from inside a behaviour hook");
  bool on = synL_behave(L, 1, &r->behav);
  if (!on) cancel_timers(r);
  SYN_LOG_WARN("repl: behaviour %s", on ? "installed: this node is now Byzantine" : "removed");
  return 0;
}

static uint32_t check_to(lua_State *L, int arg, syn_node_t *node) {
  lua_Integer to = luaL_checkinteger(L, arg);
  if (to < 0 || (uint64_t)to >= node->n) luaL_argerror(L, arg, "no such node");
  return (uint32_t)to;
}

static int l_send(lua_State *L) {
  syn_node_t *node = syn_live_node(of(L)->lv);
  return synL_node_send(L, node, check_to(L, 1, node), 2);
}

static int l_replay(lua_State *L) {
  syn_node_t *node = syn_live_node(of(L)->lv);
  return synL_node_replay(L, node, check_to(L, 1, node), 2);
}

static int l_frame(lua_State *L) { return synL_push_node_frame(L, syn_live_node(of(L)->lv), 1); }
static void drop_field(void *ctx, const char *key, int64_t value) {
  lua_State *L = ctx;
  if (value == 0) return;   /* like the node's tables: only reasons that happened */
  lua_pushinteger(L, value);
  lua_setfield(L, -2, key);
}

/* The node's counters, plus `transport`: what this process dropped before
 * a frame reached the node (refused connections by reason, routing drops).
 * A table of its own: its names (bad_signature …) mean other things there. */
static int l_counters(lua_State *L) {
  syn_repl_t *r = of(L);
  synL_push_node_counters(L, syn_live_node(r->lv));
  lua_newtable(L);
  syn_live_drops(r->lv, drop_field, L);
  lua_setfield(L, -2, "transport");
  return 1;
}
static int l_evidence(lua_State *L) { return synL_push_node_evidence(L, syn_live_node(of(L)->lv)); }

static int l_submit(lua_State *L) {
  size_t len;
  const char *op = luaL_checklstring(L, 1, &len);
  if (syn_node_busy()) luaL_error(L, "'submit' cannot be called from inside a behaviour hook (use node.sim:after(0, fn))");
  int rc = syn_live_submit(of(L)->lv, (const uint8_t *)op, len, NULL, NULL);
  if (rc == -SYN_ELIMIT) luaL_error(L, "submit refused: %s", syn_live_refusal(of(L)->lv));
  if (rc) luaL_error(L, "submit refused: %s", syn_strerror(rc));
  return 0;
}

static int l_now(lua_State *L) {
  lua_pushinteger(L, syn_live_node(of(L)->lv)->rt->now(syn_live_node(of(L)->lv)->rt->ctx, NULL));
  return 1;
}

/* random() in [0,1), random(m) in 1..m, random(m, n) in m..n (live: libsodium). */
static int l_random(lua_State *L) {
  double u = randombytes_uniform(1u << 30) / (double)(1u << 30);
  if (lua_isnoneornil(L, 1)) { lua_pushnumber(L, u); return 1; }
  lua_Integer lo = 1, hi = luaL_checkinteger(L, 1);
  if (!lua_isnoneornil(L, 2)) { lo = hi; hi = luaL_checkinteger(L, 2); }
  luaL_argcheck(L, lo <= hi && hi - lo < (lua_Integer)UINT32_MAX, 1, "interval is empty or too large");
  lua_pushinteger(L, lo + (lua_Integer)randombytes_uniform((uint32_t)(hi - lo + 1)));
  return 1;
}

static void rtimer_closed(uv_handle_t *h) { free(h->data); }

static void rtimer_drop(rtimer_t *t) {
  syn_repl_t *r = t->r;
  if (t->prev) t->prev->next = t->next; else r->timers = t->next;
  if (t->next) t->next->prev = t->prev;
  r->ntimers--;
  luaL_unref(r->L, LUA_REGISTRYINDEX, t->ref);
  uv_close((uv_handle_t *)&t->h, rtimer_closed);
}

/* Cancels every pending after() callback (stop, or a behaviour replaced:
 * what a behaviour scheduled dies with it). */
static void cancel_timers(syn_repl_t *r) {
  while (r->timers) rtimer_drop(r->timers);
}

static void rtimer_fire(uv_timer_t *h) {
  rtimer_t *t = h->data;
  syn_repl_t *r = t->r;
  if (!r->closed && !syn_node_busy()) {
    lua_rawgeti(r->L, LUA_REGISTRYINDEX, t->ref);
    if (synL_pcall(r->L, 0, 0, "node.sim:after callback", SYN_REPL_HOOK_INSTRUCTIONS) != LUA_OK) {
      SYN_LOG_WARN("repl: %s", lua_tostring(r->L, -1));
      lua_pop(r->L, 1);
    }
  }
  if (!uv_is_closing((uv_handle_t *)&t->h)) rtimer_drop(t);
}

static int l_after(lua_State *L) {
  syn_repl_t *r = of(L);
  int64_t ns = synL_checktime(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (r->ntimers >= SYN_MAX_REPL_TIMERS) luaL_error(L, "after: more than %d callbacks pending", SYN_MAX_REPL_TIMERS);
  rtimer_t *t = calloc(1, sizeof *t);
  if (t == NULL) luaL_error(L, "out of memory");
  lua_pushvalue(L, 2);
  t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  t->r = r;
  uv_timer_init(syn_live_loop(r->lv), &t->h);
  t->h.data = t;
  t->next = r->timers;
  if (r->timers) r->timers->prev = t;
  r->timers = t;
  r->ntimers++;
  uint64_t ms = ns <= 0 ? 0 : (uint64_t)(ns / 1000000) + (ns % 1000000 != 0);
  uv_timer_start(&t->h, rtimer_fire, ms, 0);
  return 0;
}

static void capture(syn_repl_t *r, const char *s, size_t len) {
  if (r->capturing) {
    if (r->out.len + len <= SYN_MAX_REPL_OUTPUT_BYTES) (void)syn_buf_append(&r->out, s, len);
  } else if (len) {
    SYN_LOG_WARN("node %u (lua): %.*s", syn_live_cfg(r->lv)->id, (int)(s[len - 1] == '\n' ? len - 1 : len), s);
  }
}

/* io.write in the REPL: its text joins the chunk's output, without a newline. */
static int l_write(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  capture(of(L), s, len);
  return 0;
}

/* print: into the connection's output while a chunk runs, else the log. */
static int l_print(lua_State *L) {
  syn_repl_t *r = of(L);
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_addvalue((luaL_tolstring(L, i, NULL), &b));
  }
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  capture(r, s, len);
  return 0;
}

/* ---- the behaviour bridge's view of a live node ---- */

static lua_State *lb_thread(synL_behav_t *b) { return ((syn_repl_t *)b->owner)->L; }
static syn_node_t *lb_node(synL_behav_t *b) { return syn_live_node(((syn_repl_t *)b->owner)->lv); }
static void lb_push_node(lua_State *T, synL_behav_t *b) { lua_rawgeti(T, LUA_REGISTRYINDEX, ((syn_repl_t *)b->owner)->node_ref); }
static int lb_budget(synL_behav_t *b) { (void)b; return SYN_REPL_HOOK_INSTRUCTIONS; }
static const synL_behav_ops_t live_behav_ops = {
  .thread = lb_thread, .node = lb_node, .push_node = lb_push_node, .budget = lb_budget,
};

/* ---- connections ---- */

static void conn_closed(uv_handle_t *h) {
  rconn_t *c = h->data;
  syn_stream_free(&c->st);
  free(c);
}

static void conn_close(rconn_t *c) {
  if (c->closing) return;
  c->closing = true;
  syn_repl_t *r = c->r;
  for (rconn_t **pp = &r->conns; *pp; pp = &(*pp)->next)
    if (*pp == c) { *pp = c->next; break; }
  r->nconns--;
  uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static void wrote(uv_write_t *req, int status) { (void)status; free(req); }

/* Sends one reply unit: kind byte ‖ text. */
static void reply(rconn_t *c, char kind, const char *text, size_t len) {
  if (c->closing) return;
  if (len > SYN_MAX_FRAME_BYTES - 1) len = SYN_MAX_FRAME_BYTES - 1;
  uv_write_t *req = malloc(sizeof *req + SYN_STREAM_PREFIX_BYTES + 1 + len);
  if (req == NULL) return;
  uint8_t *p = (uint8_t *)(req + 1);
  (void)syn_stream_prefix(len + 1, p);
  p[SYN_STREAM_PREFIX_BYTES] = (uint8_t)kind;
  memcpy(p + SYN_STREAM_PREFIX_BYTES + 1, text, len);
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)(SYN_STREAM_PREFIX_BYTES + 1 + len));
  if (uv_write(req, (uv_stream_t *)&c->pipe, &b, 1, wrote) != 0) free(req);
}

static bool incomplete(lua_State *L, int status) {
  if (status != LUA_ERRSYNTAX) return false;
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  return len >= 5 && strcmp(msg + len - 5, "<eof>") == 0;
}

/* Runs one chunk: an expression shows its values; a statement runs. */
static void run_chunk(rconn_t *c, const uint8_t *src, size_t len) {
  syn_repl_t *r = c->r;
  lua_State *L = r->L;
  if (syn_node_busy()) { reply(c, 'e', "the node is busy; try again", 27); reply(c, 'd', "", 0); return; }
  lua_settop(L, 0);
  lua_pushfstring(L, "return %s;", lua_pushlstring(L, (const char *)src, len));
  int rc = luaL_loadbuffer(L, lua_tostring(L, -1), strlen(lua_tostring(L, -1)), "=repl");
  if (rc != LUA_OK) {
    lua_settop(L, 1);
    rc = luaL_loadbuffer(L, (const char *)src, len, "=repl");
    if (incomplete(L, rc)) { lua_settop(L, 0); reply(c, 'i', "", 0); return; }
  }
  syn_buf_reset(&r->out);
  if (rc == LUA_OK) {
    int base = lua_gettop(L);
    r->capturing = true;
    rc = synL_pcall(L, 0, LUA_MULTRET, "repl", SYN_REPL_INSTRUCTIONS);
    r->capturing = false;
    if (rc == LUA_OK) {
      int nres = lua_gettop(L) - base + 1;
      for (int i = 0; i < nres; i++) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, r->show_ref);
        lua_pushvalue(L, base + i);
        size_t sl = 0;
        const char *s = lua_pcall(L, 1, 1, 0) == LUA_OK ? lua_tolstring(L, -1, &sl) : NULL;
        if (i) (void)syn_buf_append(&r->out, "\t", 1);
        (void)syn_buf_append(&r->out, s ? s : "?", s ? sl : 1);
        lua_pop(L, 1);
      }
      if (nres > 0) (void)syn_buf_append(&r->out, "\n", 1);
    }
  }
  if (r->out.len) reply(c, 'o', (const char *)r->out.data, r->out.len);
  if (rc != LUA_OK) {
    size_t el;
    const char *e = lua_tolstring(L, -1, &el);
    reply(c, 'e', e ? e : "error", e ? el : 5);
  }
  reply(c, 'd', rc == LUA_OK ? "0" : "1", 1);
  lua_settop(L, 0);
}

static void on_chunk(void *ctx, const uint8_t *unit, size_t len) {
  rconn_t *c = ctx;
  if (!c->closing) run_chunk(c, unit, len);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  static char rbuf[64 << 10];
  (void)suggested;
  *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  rconn_t *c = s->data;
  if (nread < 0) { conn_close(c); return; }
  if (nread == 0) return;
  if (syn_stream_feed(&c->st, (const uint8_t *)buf->base, (size_t)nread, on_chunk, c) != 0) {
    SYN_LOG_WARN("repl: a client sent a malformed chunk frame; closing it");
    conn_close(c);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  syn_repl_t *r = server->data;
  if (status < 0 || r->closed) return;
  rconn_t *c = calloc(1, sizeof *c);
  if (c == NULL) return;
  c->r = r;
  uv_pipe_init(syn_live_loop(r->lv), &c->pipe, 0);
  c->pipe.data = c;
  syn_stream_init(&c->st);
  c->next = r->conns;
  r->conns = c;
  r->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) { conn_close(c); return; }
  if (r->nconns > SYN_MAX_REPL_CONNS) {
    const char msg[] = "too many REPL sessions on this node";
    reply(c, 'e', msg, sizeof msg - 1);
    conn_close(c);
    return;
  }
  uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* ---- the service ---- */

static void set_path(lua_State *L) {
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/scripts/?.lua;%s/scripts/?/init.lua;", syn_home_dir(), syn_home_dir());
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
}

int syn_repl_new(syn_repl_t **out, syn_live_t *lv, lua_State *L, char *err, size_t errlen) {
  syn_repl_t *r = calloc(1, sizeof *r);
  if (r == NULL) { snprintf(err, errlen, "out of memory"); return -SYN_ENOMEM; }
  r->lv = lv;
  r->L = L;
  syn_buf_init(&r->out, SYN_MAX_REPL_OUTPUT_BYTES + 64);
  int n = snprintf(r->path, sizeof r->path, "%s/repl.sock", syn_live_data_dir(lv));
  if (n < 0 || (size_t)n >= sizeof r->path) {
    snprintf(err, errlen, "the data directory path is too long for a Unix socket (%zu bytes at most)", sizeof r->path - 11);
    free(r); return -SYN_EINVAL;
  }
  /* The Lua side: primitives, the node object, print. */
  set_path(L);
  if (luaL_loadstring(L, syn_repl_show_src) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    snprintf(err, errlen, "repl: %s", lua_tostring(L, -1)); free(r); return -SYN_EINVAL;
  }
  r->show_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  static const luaL_Reg prims[] = {
    { "status", l_status }, { "peers", l_peers }, { "log", l_log }, { "behave", l_behave },
    { "send", l_send }, { "replay", l_replay }, { "frame", l_frame }, { "counters", l_counters },
    { "evidence", l_evidence }, { "submit", l_submit }, { "now", l_now }, { "random", l_random },
    { "after", l_after }, { "write", l_write }, { NULL, NULL },
  };
  if (luaL_loadstring(L, node_src) != LUA_OK) { snprintf(err, errlen, "repl: %s", lua_tostring(L, -1)); free(r); return -SYN_EINVAL; }
  lua_newtable(L);
  lua_pushlightuserdata(L, r);
  luaL_setfuncs(L, prims, 1);
  const syn_live_cfg_t *c = syn_live_cfg(lv);
  lua_pushinteger(L, c->id); lua_setfield(L, -2, "id");
  lua_pushinteger(L, c->n); lua_setfield(L, -2, "n");
  lua_pushstring(L, c->proto); lua_setfield(L, -2, "protocol");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) { snprintf(err, errlen, "repl: %s", lua_tostring(L, -1)); free(r); return -SYN_EINVAL; }
  lua_pushvalue(L, -1);
  lua_setglobal(L, "node");
  r->node_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushlightuserdata(L, r);
  lua_pushcclosure(L, l_print, 1);
  lua_setglobal(L, "print");
  synL_behav_init(&r->behav, &live_behav_ops, r, c->id);
  /* The socket: a stale one (no node answers on it) is replaced. */
  int probe = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  memcpy(sa.sun_path, r->path, strlen(r->path) + 1);
  if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
    close(probe);
    snprintf(err, errlen, "%s is in use: another node runs on this data directory", r->path);
    syn_repl_close(r); syn_repl_free(r);
    return -SYN_ESTATE;
  }
  if (probe >= 0) close(probe);
  (void)unlink(r->path);
  uv_pipe_init(syn_live_loop(lv), &r->listener, 0);
  r->listener.data = r;
  r->listening = true;
  mode_t old = umask(0177);
  int rc = uv_pipe_bind(&r->listener, r->path);
  umask(old);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&r->listener, 8, on_connection);
  if (rc != 0) {
    snprintf(err, errlen, "cannot listen on %s: %s", r->path, uv_strerror(rc));
    syn_repl_close(r);
    *out = r;          /* the caller frees it once the loop has closed the handle */
    return -SYN_EIO;
  }
  (void)chmod(r->path, 0600);
  *out = r;
  return 0;
}

const char *syn_repl_path(const syn_repl_t *r) { return r->path; }

void syn_repl_close(syn_repl_t *r) {
  if (r == NULL || r->closed) return;
  r->closed = true;
  while (r->conns) conn_close(r->conns);
  cancel_timers(r);
  if (r->listening) { uv_close((uv_handle_t *)&r->listener, NULL); (void)unlink(r->path); }
  syn_node_behave(syn_live_node(r->lv), NULL);
}

void syn_repl_free(syn_repl_t *r) {
  if (r == NULL) return;
  synL_behav_free(&r->behav);
  syn_buf_free(&r->out);
  free(r);
}

/* ---- the client: synod attach ---- */

static int read_full(int fd, uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t k = read(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k; n -= (size_t)k;
  }
  return 0;
}

static int write_full(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k; n -= (size_t)k;
  }
  return 0;
}

int syn_repl_connect(const char *path, char *err, size_t errlen) {
  char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
  struct stat st;
  int n = (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) ? snprintf(buf, sizeof buf, "%s/repl.sock", path)
                                                         : snprintf(buf, sizeof buf, "%s", path);
  if (n < 0 || (size_t)n >= sizeof buf) { snprintf(err, errlen, "socket path too long: %s", path); return -1; }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  memcpy(sa.sun_path, buf, (size_t)n + 1);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    snprintf(err, errlen, "cannot connect to %s: %s (is the node running, and is this its data directory?)", buf, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

int syn_repl_eval(int fd, const char *chunk, size_t len, syn_repl_out_fn out, void *ctx) {
  uint8_t prefix[SYN_STREAM_PREFIX_BYTES];
  if (syn_stream_prefix(len, prefix) != 0) return -2;
  if (write_full(fd, prefix, sizeof prefix) != 0 || write_full(fd, (const uint8_t *)chunk, len) != 0) return -2;
  for (;;) {
    uint8_t hdr[SYN_STREAM_PREFIX_BYTES];
    if (read_full(fd, hdr, sizeof hdr) != 0) return -2;
    uint32_t ul = syn_get_u32(hdr);
    if (ul == 0 || ul > SYN_MAX_FRAME_BYTES) return -2;
    uint8_t *u = malloc(ul);
    if (u == NULL || read_full(fd, u, ul) != 0) { free(u); return -2; }
    char kind = (char)u[0];
    int rc = 0;
    if (kind == 'o' || kind == 'e') out(ctx, kind, (const char *)u + 1, ul - 1);
    else if (kind == 'i') rc = 2;
    else if (kind == 'd') rc = (ul > 1 && u[1] == '1') ? 1 : 0;
    free(u);
    if (kind == 'i' || kind == 'd') return rc;
  }
}
