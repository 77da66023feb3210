/* lua_live.c — the Lua face of live/stream: the frame stream and the
 * connection handshake, without sockets (specs and experiments).
 *
 *   local s = synod.live.stream()
 *   s:feed(bytes)            -- → list of complete frames; raises once the stream is dead
 *   s.frames                 -- frames delivered so far
 *   synod.live.prefix(frame) -- → the 4-byte length prefix ‖ frame
 *
 *   local c = synod.live.cluster { n = 4, seed = 1 }   -- deterministic test identities
 *   c:hello(id, nonce)                -- → hello bytes (nonce: 32 bytes)
 *   c:auth(id, my_hello, their_hello) -- → the 64-byte auth node `id` sends
 *   c:check(my_hello, their_hello)    -- → true, or false and the reason (refuses replays)
 *   c:verify(my_hello, their_hello, auth) -- → true, or false and the reason
 *
 * Thin by rule: arguments in, copies out; the logic is live/stream.c. */
#include "synl.h"
#include "../live/stream.h"

#include <string.h>

#define STREAM_MT "synod.LiveStream"
#define CLUSTER_MT "synod.LiveCluster"

/* ---- the stream ---- */

static int l_stream_new(lua_State *L) {
  syn_stream_t *s = lua_newuserdatauv(L, sizeof *s, 0);
  syn_stream_init(s);
  luaL_setmetatable(L, STREAM_MT);
  return 1;
}

static int l_stream_gc(lua_State *L) {
  syn_stream_free(luaL_checkudata(L, 1, STREAM_MT));
  return 0;
}

typedef struct { lua_State *L; int n; } collect_t;

static void collect(void *ctx, const uint8_t *frame, size_t len) {
  collect_t *c = ctx;
  lua_pushlstring(c->L, (const char *)frame, len);
  lua_rawseti(c->L, -2, ++c->n);
}

static int l_stream_feed(lua_State *L) {
  syn_stream_t *s = luaL_checkudata(L, 1, STREAM_MT);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  lua_newtable(L);
  collect_t c = { L, 0 };
  int rc = syn_stream_feed(s, (const uint8_t *)data, n, collect, &c);
  if (rc == -SYN_ETOOBIG)
    return luaL_error(L, "stream: a frame announced a length of 0 or over SYN_STREAM_MAX_BYTES (%d): "
                         "the connection must be closed", (int)SYN_STREAM_MAX_BYTES);
  if (rc == -SYN_ESTATE) return luaL_error(L, "stream: dead after an oversized frame; close the connection");
  if (rc) return luaL_error(L, "stream: %s", syn_strerror(rc));
  return 1;
}

static int l_stream_index(lua_State *L) {
  syn_stream_t *s = luaL_checkudata(L, 1, STREAM_MT);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "frames") == 0) { lua_pushinteger(L, (lua_Integer)s->frames); return 1; }
  if (strcmp(k, "dead") == 0) { lua_pushboolean(L, s->dead); return 1; }
  if (strcmp(k, "feed") == 0) { lua_pushcfunction(L, l_stream_feed); return 1; }
  return 0;
}

static int l_prefix(lua_State *L) {
  size_t n;
  const char *frame = luaL_checklstring(L, 1, &n);
  uint8_t p[SYN_STREAM_PREFIX_BYTES];
  if (syn_stream_prefix(n, p) != 0)
    return luaL_argerror(L, 1, lua_pushfstring(L, "frame of %d bytes: must be 1..%d", (int)n, (int)SYN_STREAM_MAX_BYTES));
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, (const char *)p, sizeof p);
  luaL_addlstring(&b, frame, n);
  luaL_pushresult(&b);
  return 1;
}

/* ---- a test cluster and its handshakes ---- */

typedef struct {
  syn_keyring_t ring;
  syn_identity_t ids[SYN_MAX_NODES];
  uint8_t cluster[SYN_DIGEST_BYTES];
  syn_hs_nonces_t seen;
} lcluster_t;

static int l_cluster_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "n");
  lua_Integer n = luaL_checkinteger(L, -1);
  lua_getfield(L, 1, "seed");
  lua_Integer seed = luaL_optinteger(L, -1, 1);
  lua_pop(L, 2);
  if (n < 1 || n > SYN_MAX_NODES) return luaL_error(L, "bad field 'n' to 'cluster' (1..%d expected)", SYN_MAX_NODES);
  if (syn_crypto_init() != 0) return luaL_error(L, "cluster: libsodium failed to initialise");
  lcluster_t *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  c->ring.n = (uint32_t)n;
  for (uint32_t i = 0; i < (uint32_t)n; i++) {
    syn_identity_derive(&c->ids[i], i, (uint64_t)seed);
    memcpy(c->ring.pk[i], c->ids[i].pk, SYN_PK_BYTES);
  }
  syn_hs_cluster(&c->ring, c->cluster);
  luaL_setmetatable(L, CLUSTER_MT);
  return 1;
}

static uint32_t check_id(lua_State *L, const lcluster_t *c, int arg) {
  lua_Integer id = luaL_checkinteger(L, arg);
  if (id < 0 || (lua_Unsigned)id >= c->ring.n)
    luaL_argerror(L, arg, lua_pushfstring(L, "node id %d out of range 0..%d", (int)id, (int)c->ring.n - 1));
  return (uint32_t)id;
}

static void check_hello(lua_State *L, int arg, syn_hs_hello_t *h) {
  size_t n;
  const char *p = luaL_checklstring(L, arg, &n);
  int rc = syn_hs_hello_decode((const uint8_t *)p, n, h);
  if (rc) luaL_argerror(L, arg, lua_pushfstring(L, "not a hello: %s", syn_strerror(rc)));
}

static int l_cluster_hello(lua_State *L) {
  lcluster_t *c = luaL_checkudata(L, 1, CLUSTER_MT);
  syn_hs_hello_t h;
  h.id = check_id(L, c, 2);
  size_t n;
  const char *nonce = luaL_checklstring(L, 3, &n);
  if (n != SYN_HS_NONCE_BYTES) return luaL_argerror(L, 3, "nonce must be 32 bytes");
  memcpy(h.cluster, c->cluster, SYN_DIGEST_BYTES);
  memcpy(h.nonce, nonce, SYN_HS_NONCE_BYTES);
  uint8_t out[SYN_HS_HELLO_BYTES];
  syn_hs_hello_encode(&h, out);
  lua_pushlstring(L, (const char *)out, sizeof out);
  return 1;
}

static int l_cluster_auth(lua_State *L) {
  lcluster_t *c = luaL_checkudata(L, 1, CLUSTER_MT);
  uint32_t id = check_id(L, c, 2);
  syn_hs_hello_t mine, theirs;
  check_hello(L, 3, &mine);
  check_hello(L, 4, &theirs);
  uint8_t sig[SYN_HS_AUTH_BYTES];
  syn_hs_sign(&c->ids[id], &mine, &theirs, sig);
  lua_pushlstring(L, (const char *)sig, sizeof sig);
  return 1;
}

static int push_result(lua_State *L, int rc) {
  if (rc == 0) { lua_pushboolean(L, 1); return 1; }
  lua_pushboolean(L, 0);
  switch (-rc) {
  case SYN_EPARSE: lua_pushliteral(L, "another cluster"); break;
  case SYN_ESENDER: lua_pushliteral(L, "unknown node id"); break;
  case SYN_ESTATE: lua_pushliteral(L, "replayed hello"); break;
  case SYN_EBADSIG: lua_pushliteral(L, "bad signature"); break;
  default: lua_pushstring(L, syn_strerror(rc)); break;
  }
  return 2;
}

static int l_cluster_check(lua_State *L) {
  lcluster_t *c = luaL_checkudata(L, 1, CLUSTER_MT);
  syn_hs_hello_t mine, theirs;
  check_hello(L, 2, &mine);
  check_hello(L, 3, &theirs);
  return push_result(L, syn_hs_check_hello(&c->ring, &mine, &theirs, &c->seen));
}

static int l_cluster_verify(lua_State *L) {
  lcluster_t *c = luaL_checkudata(L, 1, CLUSTER_MT);
  syn_hs_hello_t mine, theirs;
  check_hello(L, 2, &mine);
  check_hello(L, 3, &theirs);
  size_t n;
  const char *sig = luaL_checklstring(L, 4, &n);
  if (n != SYN_HS_AUTH_BYTES) return push_result(L, -SYN_EBADSIG);
  return push_result(L, syn_hs_verify(&c->ring, &mine, &theirs, (const uint8_t *)sig));
}

void synL_open_live(lua_State *L) {
  luaL_newmetatable(L, STREAM_MT);
  lua_pushcfunction(L, l_stream_index); lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_stream_gc); lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  static const luaL_Reg cluster_methods[] = {
    { "hello", l_cluster_hello }, { "auth", l_cluster_auth }, { "check", l_cluster_check },
    { "verify", l_cluster_verify }, { NULL, NULL }
  };
  luaL_newmetatable(L, CLUSTER_MT);
  luaL_newlib(L, cluster_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, l_stream_new); lua_setfield(L, -2, "stream");
  lua_pushcfunction(L, l_prefix); lua_setfield(L, -2, "prefix");
  lua_pushcfunction(L, l_cluster_new); lua_setfield(L, -2, "cluster");
  lua_pushinteger(L, SYN_HS_HELLO_BYTES); lua_setfield(L, -2, "hello_bytes");
  lua_setfield(L, -2, "live");
}
