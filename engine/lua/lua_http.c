/* lua_http.c — the Lua face of live/http and live/json, for specs and
 * experiments: the request assembler without sockets, the JSON writer, and
 * a self-test that runs the real uv server against a real uv client on a
 * private loop, so the socket path is tested without a node.
 *
 *   synod.live.http_parse(bytes | {chunk, …} [, { token = "…", pause = bool }])
 *     → { req, … } [, status, reason]
 *     Feeds the bytes (or each chunk in turn) to one assembler. Each req is
 *     { method, path, query, body, token (or nil), authorization, keep_alive,
 *     head }. On the first error it stops and also returns the status the
 *     server would answer (400, 413, 414, 431) and the reason; with a token,
 *     the first request without it stops the list with 401 (the server
 *     itself answers 401 and goes on). pause = true makes the assembler stop
 *     after every request and be fed the rest, as the server does when its
 *     pipeline is full.
 *
 *   synod.live.json(value) → text
 *     nil → null, booleans, integers, floats (%.17g; NaN/inf → null),
 *     strings (json.h's escaping), tables: 1..n sequences as arrays, others
 *     as objects with string keys in byte order; {} is an object.
 *
 *   synod.live.http_selftest {
 *     requests = { raw, … },        -- written in order, each its own write
 *     token = "…",                  -- the server's token (optional)
 *     respond = function(req) … end,-- → status, body [, content_type | reason];
 *                                   -- body a string, a table (sent as JSON) or nil
 *                                   -- (a JSON error, reason the third value);
 *                                   -- nil status: answer later: respond is called
 *                                   -- again on a later loop turn with req.tries + 1
 *                                   -- (so is an answer the server refused as
 *                                   -- invalid or too big: the request stays open).
 *                                   -- Absent: 200 and the request echoed as JSON.
 *     timeout_ms = 2000,            -- 1..5000: the whole exchange
 *     gap_ms = 0,                   -- > 0: one raw request per gap (partial reads)
 *     hangup = false,               -- the client closes once everything is written
 *     extra_conns = 0,              -- more clients connecting after the first
 *     max_conns = 64, idle_timeout_ms = 30000,   -- server tuning
 *     expect = n,                   -- answers to wait for (default: what the
 *                                   -- requests make, by the assembler's count)
 *   } → raw_response_bytes, info
 *     info = { closed (the server closed the connection), timed_out, responses,
 *              port, extras_closed, counters = {…}, answer_errors = { "…", … } }
 *     answer_errors lists every syn_http_respond/error refusal (syn_strerror
 *     text). A Lua error in respond is answered 500 and raised afterwards.
 *
 *   synod.live.http_query(query, name) → the decoded value, or nil when absent
 *     (raises on a bad %-escape or a value over SYN_MAX_HTTP_URL_BYTES)
 *
 *   synod.live.http_limits = { body_bytes, header_bytes, url_bytes, auth_bytes,
 *                              conns, pipeline, idle_timeout_ms }
 *
 * Thin by rule: arguments in, copies out; the logic is live/http.c. */
#include "synl.h"
#include "../live/http.h"
#include "../live/json.h"

#include <stdlib.h>
#include <string.h>

#define CONN_MT "synod.HttpConn"

#define SELFTEST_MAX_TIMEOUT_MS   5000
#define SELFTEST_MAX_REQUESTS     256
#define SELFTEST_MAX_DEFERRED     64
#define SELFTEST_MAX_EXTRA        128
#define SELFTEST_MAX_GAP_MS       1000
#define SELFTEST_MAX_GOT_BYTES    (32u << 20)

/* ---- a request as a table ---- */

static void push_req(lua_State *L, const syn_http_req_t *r) {
  lua_createtable(L, 0, 9);
  lua_pushstring(L, r->method);
  lua_setfield(L, -2, "method");
  lua_pushlstring(L, r->path, r->path_len);
  lua_setfield(L, -2, "path");
  lua_pushlstring(L, r->query, r->query_len);
  lua_setfield(L, -2, "query");
  lua_pushlstring(L, (const char *)r->body, r->body_len);
  lua_setfield(L, -2, "body");
  if (r->token) {
    lua_pushlstring(L, r->token, r->token_len);
    lua_setfield(L, -2, "token");
  }
  lua_pushboolean(L, r->authorization);
  lua_setfield(L, -2, "authorization");
  lua_pushboolean(L, r->keep_alive);
  lua_setfield(L, -2, "keep_alive");
  lua_pushboolean(L, r->head);
  lua_setfield(L, -2, "head");
  if (r->id) {
    lua_pushinteger(L, (lua_Integer)r->id);
    lua_setfield(L, -2, "id");
  }
}

/* ---- http_parse ---- */

typedef struct {
  syn_http_conn_t c;
  bool live;
} conn_ud_t;

static int l_conn_gc(lua_State *L) {
  conn_ud_t *u = luaL_checkudata(L, 1, CONN_MT);
  if (u->live) syn_http_conn_free(&u->c);
  u->live = false;
  return 0;
}

typedef struct {
  lua_State *L;
  int list;                  /* stack index of the result list */
  int n;
  const char *token;
  size_t token_len;
  bool pause;
  const char *refused;       /* why the token check refused a request */
} parse_ctx_t;

static int collect(void *ctx, const syn_http_req_t *req) {
  parse_ctx_t *p = ctx;
  if (!syn_http_authorized(req, p->token, p->token_len, &p->refused)) return 1;
  push_req(p->L, req);
  lua_rawseti(p->L, p->list, ++p->n);
  return p->pause ? 1 : 0;
}

/* Feeds one chunk; returns false when parsing stopped (error or refusal). */
static bool parse_chunk(parse_ctx_t *p, syn_http_conn_t *c, const char *data, size_t n) {
  size_t off = 0;
  while (off < n) {
    size_t used = 0;
    int rc = syn_http_conn_feed(c, (const uint8_t *)data + off, n - off, &used, collect, p);
    off += used;
    if (rc != 0 || p->refused) return false;
    if (used == 0) return true;     /* cannot happen: a feed consumes a request or everything */
  }
  return true;
}

static int l_http_parse(lua_State *L) {
  int t = lua_type(L, 1);
  if (t != LUA_TSTRING && t != LUA_TTABLE)
    return luaL_argerror(L, 1, lua_pushfstring(L, "string or list of strings expected, got %s", luaL_typename(L, 1)));
  parse_ctx_t p = { L, 0, 0, NULL, 0, false, NULL };
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "token");
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "bad field 'token' to 'http_parse' (string expected)");
      p.token = lua_tolstring(L, -1, &p.token_len);   /* anchored by the options table */
    }
    lua_getfield(L, 2, "pause");
    p.pause = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  if (t == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
      if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
        return luaL_argerror(L, 1, lua_pushfstring(L, "chunk %d is not a string", (int)i));
      lua_pop(L, 1);
    }
  }
  conn_ud_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  syn_http_conn_init(&u->c);
  u->live = true;
  luaL_setmetatable(L, CONN_MT);
  lua_newtable(L);
  p.list = lua_gettop(L);
  bool ok = true;
  if (t == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, 1, &n);
    ok = parse_chunk(&p, &u->c, s, n);
  } else {
    lua_Integer n = luaL_len(L, 1);
    for (lua_Integer i = 1; ok && i <= n; i++) {
      lua_rawgeti(L, 1, i);
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      ok = parse_chunk(&p, &u->c, s, len);
      lua_pop(L, 1);
    }
  }
  if (ok) return 1;
  if (p.refused) {
    lua_pushinteger(L, 401);
    lua_pushstring(L, p.refused);
  } else {
    lua_pushinteger(L, u->c.status);
    lua_pushstring(L, u->c.reason);
  }
  return 3;
}

/* ---- http_query ---- */

static int l_http_query(lua_State *L) {
  size_t qlen;
  const char *q = luaL_checklstring(L, 1, &qlen);
  const char *name = luaL_checkstring(L, 2);
  char *out = lua_newuserdatauv(L, SYN_MAX_HTTP_URL_BYTES + 1, 0);
  size_t len;
  bool found;
  int rc = syn_http_query_param(q, qlen, name, out, SYN_MAX_HTTP_URL_BYTES + 1, &len, &found);
  if (rc) return luaL_error(L, "http_query: %s", syn_strerror(rc));
  if (!found) return 0;
  lua_pushlstring(L, out, len);
  return 1;
}

/* ---- json ---- */

typedef struct { const char *s; size_t len; } key_t_;

static int cmp_keys(const void *a, const void *b) {
  const key_t_ *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n);
  if (c) return c;
  return (x->len > y->len) - (x->len < y->len);
}

/* Whether the table at idx is a sequence 1..n with n >= 1 and nothing else. */
static bool is_array(lua_State *L, int idx, lua_Integer *n_out) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  if (n == 0) return false;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1)) { lua_pop(L, 1); return false; }
    lua_Integer k = lua_tointeger(L, -1);
    if (k < 1 || k > n) { lua_pop(L, 1); return false; }
    count++;
  }
  *n_out = n;
  return count == n;
}

static void encode(lua_State *L, syn_json_t *j, int idx, int depth) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNIL: syn_json_null(j); return;
  case LUA_TBOOLEAN: syn_json_bool(j, lua_toboolean(L, idx)); return;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) syn_json_int(j, (int64_t)lua_tointeger(L, idx));
    else syn_json_double(j, (double)lua_tonumber(L, idx));
    return;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    syn_json_string(j, s, n);
    return;
  }
  case LUA_TTABLE: break;
  default:
    luaL_error(L, "json: cannot encode a %s value", luaL_typename(L, idx));
    return;
  }
  if (depth >= SYN_MAX_JSON_DEPTH) luaL_error(L, "json: nested deeper than %d (a cycle?)", SYN_MAX_JSON_DEPTH);
  luaL_checkstack(L, 8, "json");
  lua_Integer n;
  if (is_array(L, idx, &n)) {
    syn_json_begin_array(j);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      encode(L, j, -1, depth + 1);
      lua_pop(L, 1);
    }
    syn_json_end_array(j);
    return;
  }
  size_t count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "json: object keys must be strings, got %s", luaL_typename(L, -1));
    count++;
  }
  key_t_ *keys = lua_newuserdatauv(L, count ? count * sizeof *keys : 1, 0);   /* freed by the GC */
  size_t k = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    keys[k].s = lua_tolstring(L, -1, &keys[k].len);   /* anchored by the table */
    k++;
  }
  qsort(keys, count, sizeof *keys, cmp_keys);
  syn_json_begin_object(j);
  for (size_t i = 0; i < count; i++) {
    syn_json_key_n(j, keys[i].s, keys[i].len);
    lua_pushlstring(L, keys[i].s, keys[i].len);
    lua_rawget(L, idx);
    encode(L, j, -1, depth + 1);
    lua_pop(L, 1);
  }
  syn_json_end_object(j);
  lua_pop(L, 1);                                      /* the keys */
}

typedef struct { syn_buf_t b; bool live; } buf_ud_t;

static int l_buf_gc(lua_State *L) {
  buf_ud_t *u = lua_touserdata(L, 1);
  if (u->live) syn_buf_free(&u->b);
  u->live = false;
  return 0;
}

/* A syn_buf_t the GC frees if an error unwinds past it. [-0, +1] */
static syn_buf_t *push_buf(lua_State *L, size_t max_bytes) {
  buf_ud_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  syn_buf_init(&u->b, max_bytes);
  u->live = true;
  if (luaL_newmetatable(L, "synod.HttpBuf")) {
    lua_pushcfunction(L, l_buf_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return &u->b;
}

/* Encodes the value at idx into a new buffer on the stack. [-0, +1] */
static syn_buf_t *encode_value(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  syn_buf_t *b = push_buf(L, SYN_MAX_HTTP_RESPONSE_BYTES);
  syn_json_t j;
  syn_json_init(&j, b);
  encode(L, &j, idx, 0);
  int rc = syn_json_finish(&j);
  if (rc == -SYN_ELIMIT) luaL_error(L, "json: output over %d bytes", (int)SYN_MAX_HTTP_RESPONSE_BYTES);
  if (rc) luaL_error(L, "json: %s", syn_strerror(rc));
  return b;
}

static int l_json(lua_State *L) {
  luaL_checkany(L, 1);
  syn_buf_t *b = encode_value(L, 1);
  lua_pushlstring(L, (const char *)b->data, b->len);
  return 1;
}

/* ---- http_selftest ---- */

typedef struct selftest selftest_t;

typedef struct {
  selftest_t *st;
  uv_tcp_t tcp;
  uv_connect_t creq;
  bool open, closed_by_server;
} extra_t;

typedef struct {
  uint64_t id;
  int ref;                        /* the request table, in the registry */
} deferred_t;

struct selftest {
  lua_State *L;
  int respond_ref;                /* LUA_NOREF: echo */
  int errors_ref;                 /* the answer_errors list */
  char *lua_error;                /* the first error respond raised */
  uv_loop_t loop;
  syn_http_t *srv;
  struct sockaddr_in addr;
  uv_tcp_t client;
  uv_connect_t creq;
  bool client_open, client_eof;
  uv_timer_t deadline, tick, pacer;
  bool deadline_open, tick_open, pacer_open;
  const char **req_data;          /* the raw requests, anchored by the options table */
  size_t *req_len;
  int nreq, written, writes_pending;
  uint64_t gap_ms;
  bool hangup;
  http_parser rp;                 /* counts complete answers */
  bool heads[SELFTEST_MAX_REQUESTS + 1];
  int responses, expect;
  bool last_keep_alive;
  syn_buf_t got;
  deferred_t deferred[SELFTEST_MAX_DEFERRED];
  int ndeferred;
  extra_t *extras;
  int nextra, extras_closed;
  bool timed_out, failed;
  bool finishing;                 /* the loop runs only to close handles */
};

static void check_done(selftest_t *st);

static void note_answer_error(selftest_t *st, int rc) {
  lua_State *L = st->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->errors_ref);
  lua_pushstring(L, syn_strerror(rc));
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 1);
}

/* Answers id from respond's results (status, body, third) on the stack top;
 * returns false when respond asked to answer later. Runs protected. */
static bool settle(lua_State *L, selftest_t *st, uint64_t id) {
  int base = lua_gettop(L) - 2;           /* status, body, third */
  if (lua_isnil(L, base)) return false;
  if (!lua_isinteger(L, base)) luaL_error(L, "respond must return an integer status or nil, got %s", luaL_typename(L, base));
  int status = (int)lua_tointeger(L, base);
  int rc;
  if (lua_isnil(L, base + 1)) {
    rc = syn_http_error(st->srv, id, status, lua_tostring(L, base + 2));
  } else if (lua_type(L, base + 1) == LUA_TTABLE) {
    syn_buf_t *b = encode_value(L, base + 1);
    rc = syn_http_respond(st->srv, id, status, "application/json", b->data, b->len);
    lua_pop(L, 1);
  } else {
    size_t n;
    const char *body = luaL_tolstring(L, base + 1, &n);
    rc = syn_http_respond(st->srv, id, status, lua_tostring(L, base + 2), body, n);
    lua_pop(L, 1);
  }
  if (rc) note_answer_error(st, rc);
  /* Refused for its own shape (bad status, too big): the request is still
   * open, so respond is asked again on a later turn. */
  return rc != -SYN_EINVAL && rc != -SYN_ETOOBIG;
}

/* Calls respond(t) for the table on the top, leaving 3 results. */
static void call_respond(lua_State *L, selftest_t *st) {
  if (st->respond_ref == LUA_NOREF) {        /* the echo */
    lua_createtable(L, 0, 4);
    static const char *const fields[] = { "method", "path", "query", "body" };
    for (int i = 0; i < 4; i++) {
      lua_getfield(L, -2, fields[i]);
      lua_setfield(L, -2, fields[i]);
    }
    lua_pushinteger(L, 200);
    lua_insert(L, -2);
    lua_pushnil(L);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->respond_ref);
  lua_pushvalue(L, -2);
  lua_call(L, 1, 3);
}

/* (st, req): a new request. Protected. */
static int l_first(lua_State *L) {
  selftest_t *st = lua_touserdata(L, 1);
  const syn_http_req_t *req = lua_touserdata(L, 2);
  push_req(L, req);
  lua_pushinteger(L, 0);
  lua_setfield(L, -2, "tries");
  int t = lua_gettop(L);
  call_respond(L, st);
  if (settle(L, st, req->id)) return 0;
  if (st->ndeferred == SELFTEST_MAX_DEFERRED)
    return luaL_error(L, "more than %d answers deferred at once", SELFTEST_MAX_DEFERRED);
  lua_pushvalue(L, t);
  st->deferred[st->ndeferred].id = req->id;
  st->deferred[st->ndeferred].ref = luaL_ref(L, LUA_REGISTRYINDEX);
  st->ndeferred++;
  return 0;
}

/* (st, i): deferred request i, asked again. Protected; returns whether it
 * was answered. */
static int l_again(lua_State *L) {
  selftest_t *st = lua_touserdata(L, 1);
  int i = (int)lua_tointeger(L, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->deferred[i].ref);
  lua_getfield(L, -1, "tries");
  lua_Integer tries = lua_tointeger(L, -1) + 1;
  lua_pop(L, 1);
  lua_pushinteger(L, tries);
  lua_setfield(L, -2, "tries");
  call_respond(L, st);
  lua_pushboolean(L, settle(L, st, st->deferred[i].id));
  return 1;
}

static void record_lua_error(selftest_t *st) {
  const char *msg = lua_tostring(st->L, -1);
  if (st->lua_error == NULL) st->lua_error = strdup(msg ? msg : "(no message)");
  lua_pop(st->L, 1);
}

static void handler(void *ctx, const syn_http_req_t *req) {
  selftest_t *st = ctx;
  lua_State *L = st->L;
  lua_pushcfunction(L, l_first);
  lua_pushlightuserdata(L, st);
  lua_pushlightuserdata(L, (void *)req);
  if (synL_pcall(L, 2, 0, "http_selftest: respond", 0) != LUA_OK) {
    record_lua_error(st);
    syn_http_error(st->srv, req->id, 500, "respond raised an error");
  }
}

static void drop_deferred(selftest_t *st, int i) {
  luaL_unref(st->L, LUA_REGISTRYINDEX, st->deferred[i].ref);
  memmove(&st->deferred[i], &st->deferred[i + 1], (size_t)(st->ndeferred - i - 1) * sizeof st->deferred[0]);
  st->ndeferred--;
}

static void on_tick(uv_timer_t *t) {
  selftest_t *st = t->data;
  lua_State *L = st->L;
  /* With hangup, an answer deferred is asked for again only once the
   * server has seen the client go, so "too late" is what is tested. */
  if (st->hangup) {
    syn_http_counters_t k;
    syn_http_counters(st->srv, &k);
    if (k.conns_open > 0 || st->client_open) return;
  }
  for (int i = 0; i < st->ndeferred;) {
    uint64_t id = st->deferred[i].id;
    lua_pushcfunction(L, l_again);
    lua_pushlightuserdata(L, st);
    lua_pushinteger(L, i);
    if (synL_pcall(L, 2, 1, "http_selftest: respond", 0) != LUA_OK) {
      record_lua_error(st);
      drop_deferred(st, i);
      syn_http_error(st->srv, id, 500, "respond raised an error");
      continue;
    }
    bool answered = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (answered) drop_deferred(st, i);
    else i++;
  }
  check_done(st);
}

static void on_deadline(uv_timer_t *t) {
  selftest_t *st = t->data;
  st->timed_out = true;
  uv_stop(&st->loop);
}

/* ---- the client ---- */

static int rp_headers_complete(http_parser *p) {
  selftest_t *st = p->data;
  if (p->status_code < 200) return 0;
  return st->responses < SELFTEST_MAX_REQUESTS && st->heads[st->responses] ? 1 : 0;   /* HEAD: no body follows */
}

static int rp_message_complete(http_parser *p) {
  selftest_t *st = p->data;
  if (p->status_code < 200) return 0;              /* 100 Continue is not an answer */
  st->responses++;
  st->last_keep_alive = http_should_keep_alive(p);
  return 0;
}

static const http_parser_settings rp_settings = {
  .on_headers_complete = rp_headers_complete,
  .on_message_complete = rp_message_complete,
};

static void on_client_closed(uv_handle_t *h) { (void)h; }

static void close_client(selftest_t *st) {
  if (!st->client_open) return;
  st->client_open = false;
  uv_close((uv_handle_t *)&st->client, on_client_closed);
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  static char scratch[65536];                      /* copied out at once; one loop thread */
  (void)suggested;
  *buf = uv_buf_init(scratch, sizeof scratch);
}

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  selftest_t *st = s->data;
  if (nread < 0) {
    st->client_eof = true;
    close_client(st);
    check_done(st);
    return;
  }
  if (nread == 0) return;
  if (syn_buf_append(&st->got, buf->base, (size_t)nread) != 0) {
    st->failed = true;                             /* over SELFTEST_MAX_GOT_BYTES */
    uv_stop(&st->loop);
    return;
  }
  http_parser_execute(&st->rp, &rp_settings, buf->base, (size_t)nread);
  check_done(st);
}

typedef struct { uv_write_t w; selftest_t *st; } cwrite_t;

static void on_client_write(uv_write_t *w, int status) {
  cwrite_t *cw = (cwrite_t *)w;
  selftest_t *st = cw->st;
  free(cw);
  st->writes_pending--;
  (void)status;
  if (st->hangup && st->written == st->nreq && st->writes_pending == 0) close_client(st);
  check_done(st);
}

static void write_next(selftest_t *st) {
  if (!st->client_open || st->written >= st->nreq) return;
  int i = st->written++;
  cwrite_t *cw = malloc(sizeof *cw);
  if (cw == NULL) { st->failed = true; uv_stop(&st->loop); return; }
  cw->st = st;
  uv_buf_t b = uv_buf_init((char *)st->req_data[i], (unsigned)st->req_len[i]);
  if (uv_write(&cw->w, (uv_stream_t *)&st->client, &b, 1, on_client_write) != 0) {
    free(cw);
    close_client(st);
    return;
  }
  st->writes_pending++;
}

static void on_pacer(uv_timer_t *t) {
  selftest_t *st = t->data;
  write_next(st);
  if (st->written >= st->nreq) uv_timer_stop(t);
}

static void on_extra_closed(uv_handle_t *h) { (void)h; }

static void extra_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) { client_alloc(h, suggested, buf); }

static void on_extra_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  extra_t *e = s->data;
  if (nread >= 0) return;
  e->closed_by_server = true;
  e->st->extras_closed++;
  uv_close((uv_handle_t *)&e->tcp, on_extra_closed);
  e->open = false;
  check_done(e->st);
}

static void on_extra_connect(uv_connect_t *req, int status) {
  extra_t *e = req->data;
  if (!e->open) return;
  if (status < 0 || uv_read_start((uv_stream_t *)&e->tcp, extra_alloc, on_extra_read) != 0) {
    e->closed_by_server = true;                    /* refused at connect: counts as closed */
    e->st->extras_closed++;
    uv_close((uv_handle_t *)&e->tcp, on_extra_closed);
    e->open = false;
    check_done(e->st);
  }
}

static void on_connect(uv_connect_t *req, int status) {
  selftest_t *st = req->data;
  if (status < 0) {
    st->failed = true;
    close_client(st);
    uv_stop(&st->loop);
    return;
  }
  uv_read_start((uv_stream_t *)&st->client, client_alloc, on_client_read);
  for (int i = 0; i < st->nextra; i++) {
    extra_t *e = &st->extras[i];
    e->st = st;
    if (uv_tcp_init(&st->loop, &e->tcp) != 0) continue;
    e->open = true;
    e->tcp.data = e;
    e->creq.data = e;
    if (uv_tcp_connect(&e->creq, &e->tcp, (const struct sockaddr *)&st->addr, on_extra_connect) != 0) {
      uv_close((uv_handle_t *)&e->tcp, on_extra_closed);
      e->open = false;
    }
  }
  if (st->gap_ms == 0) {
    while (st->written < st->nreq && st->client_open) write_next(st);
    if (st->hangup && st->writes_pending == 0) close_client(st);
  } else {
    st->pacer_open = uv_timer_init(&st->loop, &st->pacer) == 0;
    if (st->pacer_open) {
      st->pacer.data = st;
      uv_timer_start(&st->pacer, on_pacer, 0, st->gap_ms);
    }
  }
}

static void check_done(selftest_t *st) {
  if (st->finishing) return;                       /* the closing run must reach every close callback */
  bool main_done;
  if (st->hangup) {                                /* done once the server too has seen the client go */
    syn_http_counters_t k;
    syn_http_counters(st->srv, &k);
    main_done = !st->client_open && st->written == st->nreq && st->ndeferred == 0 && k.conns_open == 0;
  }
  else main_done = st->client_eof ||
                   (st->written == st->nreq && st->responses >= st->expect && st->last_keep_alive);
  if (main_done && st->extras_closed == st->nextra) uv_stop(&st->loop);
}

static void on_closed_quiet(uv_handle_t *h) { (void)h; }

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, on_closed_quiet);
}

static void push_counters(lua_State *L, const syn_http_counters_t *k) {
  lua_createtable(L, 0, 16);
#define F(name) lua_pushinteger(L, (lua_Integer)k->name); lua_setfield(L, -2, #name)
  F(requests); F(parse_errors); F(unauthorized); F(conns_accepted); F(conns_refused); F(conns_open);
  F(idle_closed); F(slow_closed); F(aborted); F(late_answers);
#undef F
  static const char *const classes[] = { NULL, "s1xx", "s2xx", "s3xx", "s4xx", "s5xx" };
  for (int i = 1; i <= 5; i++) {
    lua_pushinteger(L, (lua_Integer)k->by_class[i]);
    lua_setfield(L, -2, classes[i]);
  }
}

static lua_Integer opt_int_field(lua_State *L, const char *key, lua_Integer def, lua_Integer lo, lua_Integer hi) {
  lua_getfield(L, 1, key);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1))
      luaL_error(L, "bad field '%s' to 'http_selftest' (integer expected, got %s)", key, luaL_typename(L, -1));
    v = lua_tointeger(L, -1);
    if (v < lo || v > hi)
      luaL_error(L, "bad field '%s' to 'http_selftest' (%d..%d expected, got %d)", key, (int)lo, (int)hi, (int)v);
  }
  lua_pop(L, 1);
  return v;
}

/* The answers the requests make: one per request (one more for an error),
 * and which of them answer a HEAD (no body follows their headers). */
static int count_cb(void *ctx, const syn_http_req_t *req) {
  selftest_t *st = ctx;
  if (st->expect <= SELFTEST_MAX_REQUESTS) st->heads[st->expect] = req->head;
  st->expect++;
  return 0;
}

static int l_http_selftest(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  selftest_t *st = lua_newuserdatauv(L, sizeof *st, 0);     /* stack 2 */
  memset(st, 0, sizeof *st);
  st->L = L;
  st->respond_ref = LUA_NOREF;
  st->errors_ref = LUA_NOREF;

  /* ---- arguments, all checked before the loop exists ---- */
  lua_getfield(L, 1, "requests");
  if (lua_type(L, -1) != LUA_TTABLE) return luaL_error(L, "bad field 'requests' to 'http_selftest' (list of strings expected)");
  int reqs = lua_gettop(L);                                  /* stack 3, anchors the strings */
  lua_Integer nreq = luaL_len(L, reqs);
  if (nreq < 1 || nreq > SELFTEST_MAX_REQUESTS)
    return luaL_error(L, "bad field 'requests' to 'http_selftest' (1..%d requests expected)", SELFTEST_MAX_REQUESTS);
  st->nreq = (int)nreq;
  st->req_data = lua_newuserdatauv(L, sizeof(char *) * (size_t)nreq, 0);   /* stack 4 */
  st->req_len = lua_newuserdatauv(L, sizeof(size_t) * (size_t)nreq, 0);    /* stack 5 */
  for (int i = 0; i < st->nreq; i++) {
    if (lua_rawgeti(L, reqs, i + 1) != LUA_TSTRING)
      return luaL_error(L, "bad field 'requests' to 'http_selftest' (request %d is not a string)", i + 1);
    st->req_data[i] = lua_tolstring(L, -1, &st->req_len[i]);
    lua_pop(L, 1);
  }
  const char *token = NULL;
  lua_getfield(L, 1, "token");                               /* stack 6 */
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "bad field 'token' to 'http_selftest' (string expected)");
    token = lua_tostring(L, -1);
    if (strlen(token) > SYN_MAX_HTTP_TOKEN_BYTES)
      return luaL_error(L, "bad field 'token' to 'http_selftest' (at most %d bytes)", SYN_MAX_HTTP_TOKEN_BYTES);
  }
  lua_getfield(L, 1, "respond");
  if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
    return luaL_error(L, "bad field 'respond' to 'http_selftest' (function expected, got %s)", luaL_typename(L, -1));
  if (lua_isnil(L, -1)) lua_pop(L, 1);
  else st->respond_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_Integer timeout_ms = opt_int_field(L, "timeout_ms", 2000, 1, SELFTEST_MAX_TIMEOUT_MS);
  st->gap_ms = (uint64_t)opt_int_field(L, "gap_ms", 0, 0, SELFTEST_MAX_GAP_MS);
  st->nextra = (int)opt_int_field(L, "extra_conns", 0, 0, SELFTEST_MAX_EXTRA);
  lua_Integer max_conns = opt_int_field(L, "max_conns", SYN_MAX_HTTP_CONNS, 1, SYN_MAX_HTTP_CONNS);
  lua_Integer idle_ms = opt_int_field(L, "idle_timeout_ms", SYN_HTTP_IDLE_TIMEOUT_MS, 1, 3600000);
  lua_getfield(L, 1, "hangup");
  st->hangup = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "expect");
  bool expect_given = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (expect_given) st->expect = (int)opt_int_field(L, "expect", 0, 0, SELFTEST_MAX_REQUESTS);
  if (st->nextra > 0) {
    st->extras = lua_newuserdatauv(L, sizeof(extra_t) * (size_t)st->nextra, 0);
    memset(st->extras, 0, sizeof(extra_t) * (size_t)st->nextra);
  } else {
    lua_pushnil(L);
  }
  lua_newtable(L);
  st->errors_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  /* The answers to wait for, by the assembler's own count of the requests. */
  if (!expect_given) {
    syn_http_conn_t c;
    syn_http_conn_init(&c);
    int rc = 0;
    for (int i = 0; i < st->nreq && rc == 0; i++) {
      size_t off = 0;
      while (off < st->req_len[i] && rc == 0) {
        size_t used = 0;
        rc = syn_http_conn_feed(&c, (const uint8_t *)st->req_data[i] + off, st->req_len[i] - off, &used, count_cb, st);
        off += used;
      }
    }
    if (rc != 0) st->expect++;                               /* the error's own answer */
    syn_http_conn_free(&c);
  }

  /* ---- the loop: from here nothing raises until it is closed ---- */
  syn_buf_init(&st->got, SELFTEST_MAX_GOT_BYTES);
  http_parser_init(&st->rp, HTTP_RESPONSE);
  st->rp.data = st;
  int rc = uv_loop_init(&st->loop);
  if (rc != 0) {
    syn_buf_free(&st->got);
    luaL_unref(L, LUA_REGISTRYINDEX, st->errors_ref);
    if (st->respond_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, st->respond_ref);
    return luaL_error(L, "http_selftest: uv_loop_init: %s", uv_strerror(rc));
  }
  int port = 0;
  rc = syn_http_new(&st->srv, &st->loop, "127.0.0.1", 0, token, handler, st);
  if (rc == 0) {
    syn_http_set_max_conns(st->srv, (uint32_t)max_conns);
    syn_http_set_idle_timeout(st->srv, (uint64_t)idle_ms);
    port = syn_http_port(st->srv);
    uv_ip4_addr("127.0.0.1", port, &st->addr);
    st->deadline_open = uv_timer_init(&st->loop, &st->deadline) == 0;
    st->tick_open = uv_timer_init(&st->loop, &st->tick) == 0;
    st->deadline.data = st->tick.data = st;
    if (st->deadline_open) uv_timer_start(&st->deadline, on_deadline, (uint64_t)timeout_ms, 0);
    if (st->tick_open) uv_timer_start(&st->tick, on_tick, 1, 1);
    st->client_open = uv_tcp_init(&st->loop, &st->client) == 0;
    st->client.data = st;
    st->creq.data = st;
    if (st->client_open &&
        uv_tcp_connect(&st->creq, &st->client, (const struct sockaddr *)&st->addr, on_connect) != 0) {
      st->failed = true;
      close_client(st);
    }
    if (!st->failed) uv_run(&st->loop, UV_RUN_DEFAULT);
  }

  /* ---- close everything, run the close callbacks, free ---- */
  st->finishing = true;
  syn_http_counters_t k;
  memset(&k, 0, sizeof k);
  if (st->srv) {
    syn_http_counters(st->srv, &k);
    syn_http_close(st->srv);
  }
  close_client(st);
  for (int i = 0; i < st->nextra; i++)
    if (st->extras[i].open) { uv_close((uv_handle_t *)&st->extras[i].tcp, on_extra_closed); st->extras[i].open = false; }
  if (st->deadline_open) uv_close((uv_handle_t *)&st->deadline, on_closed_quiet);
  if (st->tick_open) uv_close((uv_handle_t *)&st->tick, on_closed_quiet);
  if (st->pacer_open) uv_close((uv_handle_t *)&st->pacer, on_closed_quiet);
  uv_run(&st->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&st->loop) == UV_EBUSY) {                /* nothing should be left; never leak a loop */
    uv_walk(&st->loop, walk_close, NULL);
    uv_run(&st->loop, UV_RUN_DEFAULT);
    SYN_ASSERT(uv_loop_close(&st->loop) == 0);
  }
  if (st->srv) {
    SYN_ASSERT(syn_http_closed(st->srv));
    syn_http_free(st->srv);
    st->srv = NULL;
  }
  for (int i = 0; i < st->ndeferred; i++) luaL_unref(L, LUA_REGISTRYINDEX, st->deferred[i].ref);
  st->ndeferred = 0;
  if (st->respond_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, st->respond_ref);

  /* ---- results (Lua may raise again from here) ---- */
  lua_pushlstring(L, st->got.len ? (const char *)st->got.data : "", st->got.len);
  syn_buf_free(&st->got);
  lua_createtable(L, 0, 10);
  lua_pushboolean(L, st->client_eof);
  lua_setfield(L, -2, "closed");
  lua_pushboolean(L, st->timed_out);
  lua_setfield(L, -2, "timed_out");
  lua_pushinteger(L, st->responses);
  lua_setfield(L, -2, "responses");
  lua_pushinteger(L, st->expect);
  lua_setfield(L, -2, "expected");
  lua_pushinteger(L, port);
  lua_setfield(L, -2, "port");
  lua_pushinteger(L, st->extras_closed);
  lua_setfield(L, -2, "extras_closed");
  push_counters(L, &k);
  lua_setfield(L, -2, "counters");
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->errors_ref);
  lua_setfield(L, -2, "answer_errors");
  luaL_unref(L, LUA_REGISTRYINDEX, st->errors_ref);
  if (rc != 0) {
    free(st->lua_error);
    return luaL_error(L, "http_selftest: the server did not start: %s", syn_strerror(rc));
  }
  if (st->failed) {
    free(st->lua_error);
    return luaL_error(L, "http_selftest: the client failed (connect, memory, or over %d response bytes)",
                      (int)SELFTEST_MAX_GOT_BYTES);
  }
  if (st->lua_error) {
    lua_pushstring(L, st->lua_error);
    free(st->lua_error);
    st->lua_error = NULL;
    return lua_error(L);
  }
  return 2;
}

void synL_open_http(lua_State *L) {
  luaL_newmetatable(L, CONN_MT);
  lua_pushcfunction(L, l_conn_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  if (lua_getfield(L, -1, "live") != LUA_TTABLE) {          /* synL_open_live makes it; be independent of order */
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "live");
  }
  lua_pushcfunction(L, l_http_parse);
  lua_setfield(L, -2, "http_parse");
  lua_pushcfunction(L, l_json);
  lua_setfield(L, -2, "json");
  lua_pushcfunction(L, l_http_query);
  lua_setfield(L, -2, "http_query");
  lua_pushcfunction(L, l_http_selftest);
  lua_setfield(L, -2, "http_selftest");
  lua_createtable(L, 0, 7);
#define LIMIT(name, value) lua_pushinteger(L, (lua_Integer)(value)); lua_setfield(L, -2, name)
  LIMIT("body_bytes", SYN_MAX_HTTP_BODY_BYTES);
  LIMIT("header_bytes", SYN_MAX_HTTP_HEADER_BYTES);
  LIMIT("url_bytes", SYN_MAX_HTTP_URL_BYTES);
  LIMIT("auth_bytes", SYN_MAX_HTTP_AUTH_BYTES);
  LIMIT("conns", SYN_MAX_HTTP_CONNS);
  LIMIT("pipeline", SYN_MAX_HTTP_PIPELINE);
  LIMIT("idle_timeout_ms", SYN_HTTP_IDLE_TIMEOUT_MS);
#undef LIMIT
  lua_setfield(L, -2, "http_limits");
  lua_pop(L, 1);
}
