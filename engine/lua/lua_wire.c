/* lua_wire.c — the Lua face of wire/ and crypto/: synod.wire.*, synod.crypto.*,
 * the synod.Identity handle, and synod.bench_wire / synod.bench_crypto.
 *
 * Owns: marshalling between Lua tables and syn_msg_t, and the test-only
 * message types (protocol "test", type ids 0xF000..0xF004; the 0xF0 block is
 * reserved for tests) registered when the module opens.
 *
 * Never: holds a pointer into a Lua string past the call that received it
 * (field values stay on the Lua stack while they are encoded), hands Lua a
 * pointer into a C buffer (every result is lua_pushlstring'd or built in a
 * luaL_Buffer), or raises on a malformed frame — decode, verify and sign
 * answer nil, reason, message; only wrong arguments raise, naming the
 * function and the argument (and the field, for message fields).
 *
 * u64 fields: Lua integers are signed 64-bit, so a u64 >= 2^63 decodes as a
 * negative integer (use math.ult / "%u" style formatting to view it
 * unsigned) and encodes back to the same bits. Encode also accepts
 * non-negative integer-valued floats below 2^64. */
#include "synl.h"

#include <string.h>
#include <time.h>

#include <sodium.h>

#include "../crypto/crypto.h"
#include "../wire/wire.h"

#define IDENTITY_MT "synod.Identity"
#define SYN_MAX_BENCH_ITERATIONS 100000000   /* one bench_* call's loop bound */

/* ---- test-only message types ---- */

static const syn_msg_def_t test_msgs[] = {
  { .type = 0xF000, .proto = "test", .name = "ping", .nfields = 2,
    .fields = { { "n", SYN_FIELD_U64, 0 }, { "note", SYN_FIELD_BYTES, 64 } } },
  { .type = 0xF001, .proto = "test", .name = "blob", .nfields = 3,
    .fields = { { "a", SYN_FIELD_U64, 0 }, { "b", SYN_FIELD_BYTES, 60000 }, { "c", SYN_FIELD_U64, 0 } } },
  { .type = 0xF002, .proto = "test", .name = "empty", .nfields = 0 },
  { .type = 0xF003, .proto = "test", .name = "wide", .nfields = SYN_MAX_FIELDS,
    .fields = { { "w0", SYN_FIELD_U64, 0 }, { "w1", SYN_FIELD_BYTES, 8 },
                { "w2", SYN_FIELD_U64, 0 }, { "w3", SYN_FIELD_BYTES, 0 },
                { "w4", SYN_FIELD_U64, 0 }, { "w5", SYN_FIELD_BYTES, 255 },
                { "w6", SYN_FIELD_U64, 0 }, { "w7", SYN_FIELD_BYTES, 1 } } },
  /* ping's twin layout: a signed ping re-typed as pong must not verify */
  { .type = 0xF004, .proto = "test", .name = "pong", .nfields = 2,
    .fields = { { "n", SYN_FIELD_U64, 0 }, { "note", SYN_FIELD_BYTES, 64 } } },
};

/* ---- helpers ---- */

/* Raises "bad argument #arg to 'fn' (field 'name': what)". */
static int field_error(lua_State *L, int arg, const char *name, const char *what) {
  return luaL_argerror(L, arg, lua_pushfstring(L, "field '%s': %s", name, what));
}

/* The u64 at idx: any Lua integer (its bits), or an integer-valued float in
 * [0, 2^64). Errors as msg_error. */
static int msg_error(lua_State *L, int arg, const syn_msg_def_t *def, const char *field, const char *what);
static uint64_t check_u64(lua_State *L, int idx, int arg, const syn_msg_def_t *def, const char *name) {
  if (lua_type(L, idx) != LUA_TNUMBER) {
    msg_error(L, arg, def, name, lua_pushfstring(L, "integer expected, got %s", luaL_typename(L, idx)));
  }
  if (lua_isinteger(L, idx)) return (uint64_t)lua_tointeger(L, idx);
  lua_Number x = lua_tonumber(L, idx);
  if (!(x >= 0 && x < 18446744073709551616.0) || (lua_Number)(uint64_t)x != x) {
    msg_error(L, arg, def, name, lua_pushfstring(L, "non-negative integer expected, got %f", x));
  }
  return (uint64_t)x;
}

/* An integer argument in [lo, hi]. */
static lua_Integer check_range(lua_State *L, int arg, lua_Integer lo, lua_Integer hi, const char *what) {
  lua_Integer v = luaL_checkinteger(L, arg);
  if (v < lo || v > hi) {
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must be in %I..%I, got %I", what, lo, hi, v));
  }
  return v;
}

/* Pushes nil, the drop reason and the error text for rc; returns 3. */
static int push_fail(lua_State *L, int rc) {
  lua_pushnil(L);
  lua_pushstring(L, syn_wire_drop_reason(rc));
  lua_pushstring(L, syn_strerror(rc));
  return 3;
}

/* Pushes nil and the key-file error text for rc; returns 2. */
static int push_keys_fail(lua_State *L, int rc) {
  lua_pushnil(L);
  const char *why = syn_keys_error();
  if (why[0]) lua_pushfstring(L, "%s (%s)", why, syn_strerror(rc));
  else lua_pushstring(L, syn_strerror(rc));
  return 2;
}

/* ---- synod.wire ---- */

/* ---- messages as Lua tables: the one marshaller ----
 * A message is a table { proto =, type =, <fields by name> } with the
 * metatable synod.Msg (:copy()). Header keys proto, type, sender, to and
 * delay may stand beside the fields; any other key must name a field. All
 * reads are raw: no metamethod runs while C holds a half-built message. */

#define MSG_MT "synod.Msg"

/* Raises a field error: as argument arg of the running function when arg >
 * 0, otherwise naming the message. */
static int msg_error(lua_State *L, int arg, const syn_msg_def_t *def, const char *field, const char *what) {
  if (arg > 0) return luaL_argerror(L, arg, lua_pushfstring(L, "field '%s': %s", field, what));
  return luaL_error(L, "message %s.%s: field '%s': %s", def->proto, def->name, field, what);
}

static bool header_key(const char *k) {
  return !strcmp(k, "proto") || !strcmp(k, "type") || !strcmp(k, "sender") || !strcmp(k, "to") || !strcmp(k, "delay");
}

/* Reads a raw string key of table t, or NULL. */
static const char *raw_string(lua_State *L, int t, const char *key) {
  lua_pushstring(L, key);
  lua_rawget(L, t);
  const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1);   /* the table keeps the string alive */
  return v;
}

const syn_msg_def_t *synL_check_msg(lua_State *L, int idx, int arg, const syn_msg_def_t *def,
                                    const char *default_proto, syn_msg_t *out) {
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx)) {
    if (arg > 0) luaL_typeerror(L, arg, "message table");
    luaL_error(L, "a message must be a table (got %s)", luaL_typename(L, idx));
  }
  const char *proto = raw_string(L, idx, "proto"), *type = raw_string(L, idx, "type");
  if (def == NULL) {
    if (proto == NULL) proto = default_proto;
    if (proto == NULL || type == NULL) luaL_error(L, "a message needs a string 'type' (and 'proto')");
    def = syn_wire_def_by_name(proto, type);
    if (def == NULL) luaL_error(L, "unknown message type '%s.%s'", proto, type);
  } else {
    if (proto && strcmp(proto, def->proto) != 0) msg_error(L, arg, def, "proto", lua_pushfstring(L, "must be '%s' when given", def->proto));
    if (type && strcmp(type, def->name) != 0) msg_error(L, arg, def, "type", lua_pushfstring(L, "must be '%s' when given", def->name));
  }
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      if (arg > 0) luaL_argerror(L, arg, lua_pushfstring(L, "field names must be strings, got %s", luaL_typename(L, -2)));
      luaL_error(L, "message %s.%s has a non-string key", def->proto, def->name);
    }
    const char *k = lua_tostring(L, -2);
    if (!header_key(k) && syn_wire_field(def, k) < 0) {
      if (arg > 0) luaL_argerror(L, arg, lua_pushfstring(L, "unknown field '%s' for %s.%s", k, def->proto, def->name));
      luaL_error(L, "unknown field '%s' for %s.%s", k, def->proto, def->name);
    }
    lua_pop(L, 1);
  }
  memset(out, 0, sizeof *out);
  out->def = def;
  for (uint8_t i = 0; i < def->nfields; i++) {
    const syn_field_def_t *f = &def->fields[i];
    lua_pushstring(L, f->name);
    lua_rawget(L, idx);
    if (lua_isnil(L, -1)) msg_error(L, arg, def, f->name, "missing");
    if (f->kind == SYN_FIELD_U64) {
      out->u[i] = check_u64(L, -1, arg, def, f->name);
    } else {
      if (lua_type(L, -1) != LUA_TSTRING)
        msg_error(L, arg, def, f->name, lua_pushfstring(L, "string expected, got %s", luaL_typename(L, -1)));
      size_t len;
      const char *str = lua_tolstring(L, -1, &len);
      if (len > f->max_bytes)
        msg_error(L, arg, def, f->name, lua_pushfstring(L, "%I bytes, over its limit of %I",
                                                        (lua_Integer)len, (lua_Integer)f->max_bytes));
      out->b[i].ptr = (const uint8_t *)str;     /* the table keeps it alive */
      out->b[i].len = (uint32_t)len;
    }
    lua_pop(L, 1);
  }
  return def;
}

void synL_push_msg(lua_State *L, const syn_msg_t *m) {
  const syn_msg_def_t *def = m->def;
  lua_createtable(L, 0, def->nfields + 3);
  lua_pushstring(L, def->proto);
  lua_setfield(L, -2, "proto");
  lua_pushstring(L, def->name);
  lua_setfield(L, -2, "type");
  for (uint8_t i = 0; i < def->nfields; i++) {
    if (def->fields[i].kind == SYN_FIELD_U64) lua_pushinteger(L, (lua_Integer)m->u[i]);
    else lua_pushlstring(L, m->b[i].len ? (const char *)m->b[i].ptr : "", m->b[i].len);
    lua_setfield(L, -2, def->fields[i].name);
  }
  luaL_setmetatable(L, MSG_MT);
}

/* msg:copy() — a shallow copy, still a synod.Msg. */
static int l_msg_copy(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, 1)) { lua_pushvalue(L, -2); lua_insert(L, -2); lua_rawset(L, -4); }
  luaL_setmetatable(L, MSG_MT);
  return 1;
}

/* synod.msg{ proto=, type=, … } — a checked message table. */
static int l_msg(lua_State *L) {
  syn_msg_t m;
  synL_check_msg(L, 1, 1, NULL, NULL, &m);
  lua_settop(L, 1);
  luaL_setmetatable(L, MSG_MT);
  return 1;
}

/* ---- synod.wire ---- */

/* encode(proto, type, fields [, sender]) -> frame (unsigned: zero signature).
 * fields may also carry proto/type/sender (a decoded message re-encodes as
 * is); when present they must agree with the arguments. */
static int l_encode(lua_State *L) {
  const char *proto = luaL_checkstring(L, 1);
  const char *type = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  const syn_msg_def_t *def = syn_wire_def_by_name(proto, type);
  if (def == NULL) {
    return luaL_argerror(L, 2, lua_pushfstring(L, "unknown message type '%s' in protocol '%s'", type, proto));
  }
  syn_msg_t m;
  synL_check_msg(L, 3, 3, def, NULL, &m);
  lua_Integer sender = 0;
  lua_pushliteral(L, "sender");
  lua_rawget(L, 3);
  bool in_table = !lua_isnil(L, -1);
  if (in_table) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > UINT32_MAX) {
      field_error(L, 3, "sender", "integer in 0..4294967295 expected");
    }
    sender = lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  if (!lua_isnoneornil(L, 4)) {
    lua_Integer s = check_range(L, 4, 0, UINT32_MAX, "sender");
    if (in_table && s != sender) {
      return luaL_argerror(L, 4, lua_pushfstring(L, "sender %I differs from fields.sender %I", s, sender));
    }
    sender = s;
  }
  size_t plen;
  int rc = syn_wire_payload_size(&m, &plen);
  if (rc) return luaL_error(L, "encode: %s.%s: %s", proto, type, syn_strerror(rc));
  size_t cap = syn_wire_frame_size(plen), len = 0;
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, cap);
  rc = syn_wire_frame_encode(&m, (uint32_t)sender, (uint8_t *)out, cap, &len);
  if (rc) return luaL_error(L, "encode: %s.%s: %s", proto, type, syn_strerror(rc));
  luaL_pushresultsize(&b, len);
  return 1;
}

/* decode(frame) -> {proto=, type=, sender=, fields…} or nil, reason, message. */
static int l_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  syn_frame_t f;
  syn_msg_t m;
  int rc = syn_wire_frame_decode((const uint8_t *)s, len, &f, &m);
  if (rc) return push_fail(L, rc);
  synL_push_msg(L, &m);
  lua_pushinteger(L, (lua_Integer)f.sender);
  lua_setfield(L, -2, "sender");
  return 1;
}

static void push_limits(lua_State *L) {
  static const struct { const char *name; lua_Integer value; } limits[] = {
    { "max_frame_bytes", SYN_MAX_FRAME_BYTES },
    { "max_payload_bytes", SYN_MAX_PAYLOAD_BYTES },
    { "max_fields", SYN_MAX_FIELDS },
    { "max_msg_types", SYN_MAX_MSG_TYPES },
    { "max_name_bytes", SYN_MAX_NAME_BYTES },
    { "max_nodes", SYN_MAX_NODES },
    { "header_bytes", SYN_WIRE_HEADER_BYTES },
    { "sig_bytes", SYN_SIG_BYTES },
    { "pk_bytes", SYN_PK_BYTES },
    { "seed_bytes", SYN_SEED_BYTES },
    { "digest_bytes", SYN_DIGEST_BYTES },
    { "version", SYN_WIRE_VERSION },
  };
  size_t n = sizeof limits / sizeof limits[0];
  lua_createtable(L, 0, (int)n);
  for (size_t i = 0; i < n; i++) {
    lua_pushinteger(L, limits[i].value);
    lua_setfield(L, -2, limits[i].name);
  }
}

/* ---- synod.Identity ---- */

static syn_identity_t *check_identity(lua_State *L, int arg) {
  return luaL_checkudata(L, arg, IDENTITY_MT);
}

/* keypair(node, seed) -> Identity. seed: an integer (syn_identity_derive),
 * a 32-byte string (the Ed25519 seed itself), or nil for a random key. */
static int l_keypair(lua_State *L) {
  uint32_t node = (uint32_t)check_range(L, 1, 0, SYN_MAX_NODES - 1, "node id");
  int kind = lua_type(L, 2);
  size_t slen = 0;
  const char *seed_bytes = NULL;
  lua_Integer seed = 0;
  if (kind == LUA_TNUMBER) {
    seed = luaL_checkinteger(L, 2);
  } else if (kind == LUA_TSTRING) {
    seed_bytes = lua_tolstring(L, 2, &slen);
    if (slen != SYN_SEED_BYTES) {
      return luaL_argerror(L, 2, lua_pushfstring(L, "seed string must be %d bytes, got %I",
                                                 SYN_SEED_BYTES, (lua_Integer)slen));
    }
  } else if (kind != LUA_TNONE && kind != LUA_TNIL) {
    return luaL_argerror(L, 2, lua_pushfstring(L, "integer, 32-byte string or nil expected, got %s",
                                               luaL_typename(L, 2)));
  }
  syn_identity_t *id = lua_newuserdatauv(L, sizeof *id, 0);
  memset(id, 0, sizeof *id);
  luaL_setmetatable(L, IDENTITY_MT);
  if (kind == LUA_TNUMBER) syn_identity_derive(id, node, (uint64_t)seed);
  else if (kind == LUA_TSTRING) syn_identity_from_seed(id, node, (const uint8_t *)seed_bytes);
  else syn_identity_random(id, node);
  return 1;
}

static int l_id_public_key(lua_State *L) {
  syn_identity_t *id = check_identity(L, 1);
  char hex[2 * SYN_PK_BYTES + 1];
  syn_hex(id->pk, SYN_PK_BYTES, hex);
  lua_pushstring(L, hex);
  return 1;
}

static int l_id_id(lua_State *L) {
  lua_pushinteger(L, check_identity(L, 1)->id);
  return 1;
}

/* identity:sign(frame) -> a signed copy, or nil, reason, message when the
 * frame does not parse. */
static int l_id_sign(lua_State *L) {
  syn_identity_t *id = check_identity(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  syn_frame_t f;
  int rc = syn_wire_frame_parse((const uint8_t *)s, len, &f);
  if (rc) return push_fail(L, rc);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, len);
  memcpy(out, s, len);
  rc = syn_crypto_sign_frame(id, (uint8_t *)out, len);
  if (rc) return push_fail(L, rc);
  luaL_pushresultsize(&b, len);
  return 1;
}

static int l_id_tostring(lua_State *L) {
  syn_identity_t *id = check_identity(L, 1);
  char hex[2 * SYN_PK_BYTES + 1];
  syn_hex(id->pk, SYN_PK_BYTES, hex);
  lua_pushfstring(L, "synod.Identity(node %d, %s)", (int)id->id, hex);
  return 1;
}

/* The secret key is wiped before Lua frees the memory. */
static int l_id_gc(lua_State *L) {
  syn_identity_t *id = check_identity(L, 1);
  sodium_memzero(id, sizeof *id);
  return 0;
}

/* ---- synod.crypto ---- */

/* Fills ring from the table at arg: hex keys indexed by node id. A table
 * with a [0] entry is indexed by id directly ({[0]=pk0, pk1, …}); otherwise
 * it is a Lua sequence with node i at [i+1] (what load_ring returns). */
static void check_ring(lua_State *L, int arg, syn_keyring_t *ring) {
  luaL_checktype(L, arg, LUA_TTABLE);
  memset(ring, 0, sizeof *ring);
  lua_Integer base = lua_rawgeti(L, arg, 0) != LUA_TNIL ? 0 : 1;
  lua_pop(L, 1);
  for (uint32_t n = 0;; n++) {
    if (lua_rawgeti(L, arg, (lua_Integer)n + base) == LUA_TNIL) { lua_pop(L, 1); break; }
    if (n >= SYN_MAX_NODES) {
      luaL_argerror(L, arg, lua_pushfstring(L, "more than %d keys", SYN_MAX_NODES));
    }
    size_t len = 0;
    const char *hex = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (hex == NULL || len != 2 * SYN_PK_BYTES || syn_unhex(hex, ring->pk[n], SYN_PK_BYTES) != 0) {
      luaL_argerror(L, arg, lua_pushfstring(L, "key for node %d must be %d hex digits",
                                            (int)n, 2 * SYN_PK_BYTES));
    }
    lua_pop(L, 1);
    ring->n = n + 1;
  }
}

/* verify(frame, ring) -> true, or nil, reason, message. */
static int l_verify(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  syn_keyring_t *ring = lua_newuserdatauv(L, sizeof *ring, 0);   /* 8 KiB: off the C stack */
  check_ring(L, 2, ring);
  syn_frame_t f;
  int rc = syn_wire_frame_parse((const uint8_t *)s, len, &f);
  if (rc == 0) rc = syn_crypto_verify_frame(ring, (const uint8_t *)s, &f);
  if (rc) return push_fail(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_digest(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  uint8_t out[SYN_DIGEST_BYTES];
  syn_digest(s, len, out);
  lua_pushlstring(L, (const char *)out, sizeof out);
  return 1;
}

/* keygen(dir, n [, seed]) -> true, or nil, message. */
static int l_keygen(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  lua_Integer n = check_range(L, 2, 0, UINT32_MAX, "n");
  bool has_seed = !lua_isnoneornil(L, 3);
  lua_Integer seed = has_seed ? luaL_checkinteger(L, 3) : 0;
  int rc = syn_keys_write(dir, (uint32_t)n, has_seed, (uint64_t)seed);
  if (rc) return push_keys_fail(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* load_ring(path) -> {hex pk of node 0, node 1, …} (node i at [i+1]), or nil, message. */
static int l_load_ring(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  syn_keyring_t *ring = lua_newuserdatauv(L, sizeof *ring, 0);
  int rc = syn_keys_load_ring(path, ring);
  if (rc) return push_keys_fail(L, rc);
  lua_createtable(L, (int)ring->n, 0);
  for (uint32_t i = 0; i < ring->n; i++) {
    char hex[2 * SYN_PK_BYTES + 1];
    syn_hex(ring->pk[i], SYN_PK_BYTES, hex);
    lua_pushstring(L, hex);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* load_identity(dir, node) -> Identity, or nil, message. */
static int l_load_identity(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  uint32_t node = (uint32_t)check_range(L, 2, 0, SYN_MAX_NODES - 1, "node id");
  syn_identity_t id;
  int rc = syn_keys_load_identity(dir, node, &id);
  if (rc) return push_keys_fail(L, rc);
  syn_identity_t *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = id;
  sodium_memzero(&id, sizeof id);
  luaL_setmetatable(L, IDENTITY_MT);
  return 1;
}

/* ---- benchmarks (make bench) ---- */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * SYN_NS_PER_S + ts.tv_nsec;
}

static double per_s(lua_Integer n, int64_t ns) {
  return (double)n * 1e9 / (double)(ns > 0 ? ns : 1);
}

static void set_number(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

/* The benchmark message: a test.ping with a 32-byte note, framed. */
static size_t bench_frame(uint8_t *out, size_t cap) {
  static const char note[] = "0123456789abcdef0123456789abcdef";
  syn_msg_t m;
  memset(&m, 0, sizeof m);
  m.def = syn_wire_def_by_name("test", "ping");
  SYN_ASSERT(m.def != NULL);
  m.u[0] = 42;
  m.b[1].ptr = (const uint8_t *)note;
  m.b[1].len = sizeof note - 1;
  size_t len;
  int rc = syn_wire_frame_encode(&m, 1, out, cap, &len);
  SYN_ASSERT(rc == 0);
  return len;
}

/* bench_wire(iterations) -> {encode=, decode= (operations per second), frame_bytes, iterations} */
static int l_bench_wire(lua_State *L) {
  lua_Integer n = check_range(L, 1, 1, SYN_MAX_BENCH_ITERATIONS, "iterations");
  uint8_t frame[256];
  size_t len = bench_frame(frame, sizeof frame);
  syn_frame_t f;
  syn_msg_t m;
  int rc = syn_wire_frame_decode(frame, len, &f, &m);
  SYN_ASSERT(rc == 0);
  volatile uint64_t sink = 0;   /* keeps the loops from being optimised away */
  int64_t t0 = now_ns();
  for (lua_Integer i = 0; i < n; i++) {
    size_t out_len;
    m.u[0] = (uint64_t)i;
    rc = syn_wire_frame_encode(&m, 1, frame, sizeof frame, &out_len);
    sink += out_len + (uint64_t)rc;
  }
  int64_t t1 = now_ns();
  for (lua_Integer i = 0; i < n; i++) {
    syn_msg_t d;
    rc = syn_wire_frame_decode(frame, len, &f, &d);
    sink += d.u[0] + (uint64_t)rc;
  }
  int64_t t2 = now_ns();
  (void)sink;
  lua_createtable(L, 0, 4);
  set_number(L, "encode", per_s(n, t1 - t0));
  set_number(L, "decode", per_s(n, t2 - t1));
  lua_pushinteger(L, (lua_Integer)len);
  lua_setfield(L, -2, "frame_bytes");
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "iterations");
  return 1;
}

/* bench_crypto(iterations) -> {sign=, verify=, digest= (operations per second), frame_bytes, iterations} */
static int l_bench_crypto(lua_State *L) {
  lua_Integer n = check_range(L, 1, 1, SYN_MAX_BENCH_ITERATIONS, "iterations");
  uint8_t frame[256];
  size_t len = bench_frame(frame, sizeof frame);
  syn_identity_t id;
  syn_identity_derive(&id, 1, 1);
  syn_keyring_t *ring = lua_newuserdatauv(L, sizeof *ring, 0);
  memset(ring, 0, sizeof *ring);
  syn_identity_t other;
  syn_identity_derive(&other, 0, 1);
  memcpy(ring->pk[0], other.pk, SYN_PK_BYTES);
  memcpy(ring->pk[1], id.pk, SYN_PK_BYTES);
  ring->n = 2;
  volatile uint64_t sink = 0;
  int64_t t0 = now_ns();
  for (lua_Integer i = 0; i < n; i++) sink += (uint64_t)syn_crypto_sign_frame(&id, frame, len);
  int64_t t1 = now_ns();
  syn_frame_t f;
  int rc = syn_wire_frame_parse(frame, len, &f);
  SYN_ASSERT(rc == 0);
  for (lua_Integer i = 0; i < n; i++) sink += (uint64_t)syn_crypto_verify_frame(ring, frame, &f);
  int64_t t2 = now_ns();
  uint8_t d[SYN_DIGEST_BYTES];
  for (lua_Integer i = 0; i < n; i++) { syn_digest(frame, len, d); sink += d[0]; }
  int64_t t3 = now_ns();
  (void)sink;
  SYN_ASSERT(syn_crypto_verify_frame(ring, frame, &f) == 0);
  sodium_memzero(&id, sizeof id);
  lua_createtable(L, 0, 5);
  set_number(L, "sign", per_s(n, t1 - t0));
  set_number(L, "verify", per_s(n, t2 - t1));
  set_number(L, "digest", per_s(n, t3 - t2));
  lua_pushinteger(L, (lua_Integer)len);
  lua_setfield(L, -2, "frame_bytes");
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "iterations");
  return 1;
}

/* ---- open ---- */

void synL_open_wire(lua_State *L) {
  if (syn_crypto_init() != 0) luaL_error(L, "synod: libsodium failed to initialise");
  int rc = syn_wire_register(test_msgs, sizeof test_msgs / sizeof test_msgs[0]);
  if (rc) luaL_error(L, "synod: cannot register the test message types: %s", syn_strerror(rc));

  if (luaL_newmetatable(L, IDENTITY_MT)) {
    static const luaL_Reg methods[] = {
      { "public_key", l_id_public_key }, { "sign", l_id_sign }, { "id", l_id_id }, { NULL, NULL },
    };
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_id_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, l_id_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);

  luaL_newmetatable(L, MSG_MT);
  lua_newtable(L);
  lua_pushcfunction(L, l_msg_copy);
  lua_setfield(L, -2, "copy");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_msg);
  lua_setfield(L, -2, "msg");

  static const luaL_Reg wire[] = {
    { "encode", l_encode }, { "decode", l_decode }, { NULL, NULL },
  };
  luaL_newlib(L, wire);
  push_limits(L);
  lua_setfield(L, -2, "limits");
  lua_setfield(L, -2, "wire");

  static const luaL_Reg crypto[] = {
    { "keypair", l_keypair }, { "verify", l_verify }, { "digest", l_digest },
    { "keygen", l_keygen }, { "load_ring", l_load_ring }, { "load_identity", l_load_identity },
    { NULL, NULL },
  };
  luaL_newlib(L, crypto);
  lua_setfield(L, -2, "crypto");

  lua_pushcfunction(L, l_bench_wire);
  lua_setfield(L, -2, "bench_wire");
  lua_pushcfunction(L, l_bench_crypto);
  lua_setfield(L, -2, "bench_crypto");
}
