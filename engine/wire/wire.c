/* wire.c — the message-type registry and the one codec for every payload
 * and frame (format in wire.h).
 *
 * Owns: the registry of message definitions (static, at most
 * SYN_MAX_MSG_TYPES, kept by pointer) and the canonical encoding. Canonical
 * means a message has exactly one byte string: u64 is always 8 bytes
 * big-endian, bytes are always a u32 big-endian length then the data, fields
 * come in schema order with nothing between or after them. Because every
 * field is fixed-size or length-prefixed, a decoder that accepts only
 * complete fields and no leftover bytes accepts exactly the strings the
 * encoder produces: decode-then-encode gives back the same bytes.
 *
 * Never: signs or verifies (crypto/), allocates, reads a clock, or trusts an
 * input length before checking it against SYN_MAX_FRAME_BYTES, the payload
 * limit, the type's largest possible payload or a field's max_bytes. Decoding
 * only returns codes; it never asserts on or logs peer input (the one log
 * line here is a rejected registration, a programming error).
 *
 * The registry is written at start-up (protocol lookup, module load) and read
 * afterwards; it is not locked, so registration must not race with use. */
#include "wire.h"

#include <string.h>

static const syn_msg_def_t *registry[SYN_MAX_MSG_TYPES];
/* Largest payload each registered type can have: a declared frame length
 * over it is rejected before the payload is looked at. */
static size_t registry_max_payload[SYN_MAX_MSG_TYPES];
static size_t registry_count;

/* ---- registry ---- */

/* Names become Lua keys and part of the signing domain "synod/1/proto/name",
 * so they are short, non-empty and free of '/', NUL and spaces. */
static bool valid_name(const char *name) {
  if (name == NULL) return false;
  size_t len = strnlen(name, SYN_MAX_NAME_BYTES + 1);
  if (len == 0 || len > SYN_MAX_NAME_BYTES) return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

/* Keys a Lua message table carries beside its fields (lua_wire.c: proto,
 * type, sender; lua_sim.c: proto, type, to, delay): no field may take one. */
static bool reserved_field(const char *name) {
  static const char *const reserved[] = { "proto", "type", "sender", "to", "delay" };
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
    if (strcmp(name, reserved[i]) == 0) return true;
  }
  return false;
}

/* The largest payload def allows; 0 with *ok false when the field limits
 * add up past SYN_MAX_PAYLOAD_BYTES (such a type could never be sent whole). */
static size_t max_payload(const syn_msg_def_t *def, bool *ok) {
  size_t total = 0;
  *ok = true;
  for (uint8_t i = 0; i < def->nfields; i++) {
    const syn_field_def_t *f = &def->fields[i];
    total += f->kind == SYN_FIELD_U64 ? 8 : 4 + (size_t)f->max_bytes;
    if (total > SYN_MAX_PAYLOAD_BYTES) { *ok = false; return 0; }
  }
  return total;
}

/* Registration is start-up code, not peer input: a rejected definition is
 * a programming error, so the reason is logged where the developer sees it. */
static bool bad_def(const syn_msg_def_t *def, const char *why, const char *field) {
  syn_log(SYN_LOG_ERROR, "wire: message type 0x%04x (%.32s.%.32s) rejected: %s%s%.32s%s", def->type,
          def->proto ? def->proto : "?", def->name ? def->name : "?", why,
          field ? " '" : "", field ? field : "", field ? "'" : "");
  return false;
}

static bool valid_def(const syn_msg_def_t *def) {
  if (def == NULL) return false;
  if (!valid_name(def->proto) || !valid_name(def->name))
    return bad_def(def, "proto and name must be 1..SYN_MAX_NAME_BYTES of [A-Za-z0-9_.-]", NULL);
  if (def->nfields > SYN_MAX_FIELDS) return bad_def(def, "more than SYN_MAX_FIELDS fields", NULL);
  for (uint8_t i = 0; i < def->nfields; i++) {
    const syn_field_def_t *f = &def->fields[i];
    if (!valid_name(f->name)) return bad_def(def, "bad field name", f->name);
    if (reserved_field(f->name)) return bad_def(def, "reserved field name", f->name);
    if (f->kind != SYN_FIELD_U64 && f->kind != SYN_FIELD_BYTES) return bad_def(def, "bad kind for field", f->name);
    for (uint8_t j = 0; j < i; j++) {
      if (strcmp(def->fields[j].name, f->name) == 0) return bad_def(def, "duplicate field", f->name);
    }
  }
  bool ok;
  (void)max_payload(def, &ok);
  if (!ok) return bad_def(def, "field limits add up past SYN_MAX_PAYLOAD_BYTES", NULL);
  return true;
}

static bool registered(const syn_msg_def_t *def) {
  for (size_t i = 0; i < registry_count; i++) if (registry[i] == def) return true;
  return false;
}

/* Whether def clashes (type id, or proto+name) with anything registered or
 * with defs[0..upto) of the batch being added. */
static bool clashes(const syn_msg_def_t *def, const syn_msg_def_t *defs, size_t upto) {
  for (size_t i = 0; i < registry_count; i++) {
    const syn_msg_def_t *r = registry[i];
    if (r->type == def->type) return true;
    if (strcmp(r->proto, def->proto) == 0 && strcmp(r->name, def->name) == 0) return true;
  }
  for (size_t i = 0; i < upto; i++) {
    const syn_msg_def_t *r = &defs[i];
    if (registered(r)) continue;
    if (r->type == def->type) return true;
    if (strcmp(r->proto, def->proto) == 0 && strcmp(r->name, def->name) == 0) return true;
  }
  return false;
}

/* All or nothing: every new definition is checked before any is added.
 * A definition already registered (the same object) is skipped, so
 * registering the same array again is a no-op. */
int syn_wire_register(const syn_msg_def_t *defs, size_t n) {
  if (defs == NULL && n > 0) return -SYN_EINVAL;
  size_t fresh = 0;
  for (size_t i = 0; i < n; i++) {
    const syn_msg_def_t *def = &defs[i];
    if (registered(def)) continue;
    if (!valid_def(def)) return -SYN_EINVAL;
    if (clashes(def, defs, i)) {
      bad_def(def, "type id or proto.name already registered", NULL);
      return -SYN_EINVAL;
    }
    fresh++;
  }
  if (fresh > SYN_MAX_MSG_TYPES - registry_count) {
    syn_log(SYN_LOG_ERROR, "wire: %zu more message types would pass SYN_MAX_MSG_TYPES (%d, %zu registered)",
            fresh, SYN_MAX_MSG_TYPES, registry_count);
    return -SYN_ELIMIT;
  }
  for (size_t i = 0; i < n; i++) {
    const syn_msg_def_t *def = &defs[i];
    if (registered(def)) continue;
    bool ok;
    registry_max_payload[registry_count] = max_payload(def, &ok);
    SYN_ASSERT(ok);
    registry[registry_count++] = def;
  }
  SYN_ASSERT(registry_count <= SYN_MAX_MSG_TYPES);
  return 0;
}

static int registry_index(uint16_t type) {
  for (size_t i = 0; i < registry_count; i++) if (registry[i]->type == type) return (int)i;
  return -1;
}

const syn_msg_def_t *syn_wire_def(uint16_t type) {
  int i = registry_index(type);
  return i < 0 ? NULL : registry[i];
}

const syn_msg_def_t *syn_wire_def_by_name(const char *proto, const char *name) {
  if (proto == NULL || name == NULL) return NULL;
  for (size_t i = 0; i < registry_count; i++) {
    const syn_msg_def_t *r = registry[i];
    if (strcmp(r->proto, proto) == 0 && strcmp(r->name, name) == 0) return r;
  }
  return NULL;
}

int syn_wire_field(const syn_msg_def_t *def, const char *name) {
  if (def == NULL || name == NULL) return -1;
  for (uint8_t i = 0; i < def->nfields; i++) {
    if (strcmp(def->fields[i].name, name) == 0) return i;
  }
  return -1;
}

/* ---- payloads ---- */

int syn_wire_payload_size(const syn_msg_t *m, size_t *out_len) {
  if (m == NULL || m->def == NULL || m->def->nfields > SYN_MAX_FIELDS) return -SYN_EINVAL;
  size_t total = 0;
  for (uint8_t i = 0; i < m->def->nfields; i++) {
    const syn_field_def_t *f = &m->def->fields[i];
    if (f->kind == SYN_FIELD_U64) {
      total += 8;
    } else {
      const syn_bytes_t *b = &m->b[i];
      if (b->len > f->max_bytes) return -SYN_ETOOBIG;
      if (b->ptr == NULL && b->len > 0) return -SYN_EINVAL;
      total += 4 + (size_t)b->len;
    }
    if (total > SYN_MAX_PAYLOAD_BYTES) return -SYN_ETOOBIG;
  }
  *out_len = total;
  return 0;
}

/* Writes the payload of m (size already checked) at out. */
static void put_payload(const syn_msg_t *m, uint8_t *out) {
  uint8_t *p = out;
  for (uint8_t i = 0; i < m->def->nfields; i++) {
    if (m->def->fields[i].kind == SYN_FIELD_U64) {
      syn_put_u64(p, m->u[i]);
      p += 8;
    } else {
      syn_put_u32(p, m->b[i].len);
      p += 4;
      /* memmove: a field may already sit where it is being written */
      if (m->b[i].len) memmove(p, m->b[i].ptr, m->b[i].len);
      p += m->b[i].len;
    }
  }
}

/* Cap too small for the message: -SYN_ELIMIT (the caller's buffer is the
 * limit); a field or the whole payload over its limit: -SYN_ETOOBIG. */
int syn_wire_encode_payload(const syn_msg_t *m, uint8_t *out, size_t cap, size_t *out_len) {
  size_t size;
  int rc = syn_wire_payload_size(m, &size);
  if (rc) return rc;
  if (size > cap) return -SYN_ELIMIT;
  if (size > 0 && out == NULL) return -SYN_EINVAL;
  put_payload(m, out);
  *out_len = size;
  return 0;
}

int syn_wire_decode_payload(const syn_msg_def_t *def, const uint8_t *p, size_t len, syn_msg_t *out) {
  if (def == NULL) return -SYN_ETYPE;
  if (len > SYN_MAX_PAYLOAD_BYTES) return -SYN_ETOOBIG;
  if (p == NULL && len > 0) return -SYN_EINVAL;
  SYN_ASSERT(def->nfields <= SYN_MAX_FIELDS);
  memset(out, 0, sizeof *out);
  out->def = def;
  size_t off = 0;
  for (uint8_t i = 0; i < def->nfields; i++) {
    const syn_field_def_t *f = &def->fields[i];
    size_t left = len - off;
    if (f->kind == SYN_FIELD_U64) {
      if (left < 8) return -SYN_ETRUNC;
      out->u[i] = syn_get_u64(p + off);
      off += 8;
    } else {
      if (left < 4) return -SYN_ETRUNC;
      uint32_t n = syn_get_u32(p + off);
      off += 4;
      if (n > f->max_bytes) return -SYN_ETOOBIG;   /* the limit before the length is used */
      if (n > left - 4) return -SYN_ETRUNC;
      out->b[i].ptr = p + off;   /* never NULL, even when empty: callers may memcpy it */
      out->b[i].len = n;
      off += n;
    }
  }
  if (off != len) return -SYN_ETRAILING;
  return 0;
}

/* ---- frames ---- */

static void put_header(uint8_t *out, uint16_t type, uint32_t sender, uint32_t payload_len) {
  syn_put_u32(out, SYN_WIRE_MAGIC);
  out[4] = SYN_WIRE_VERSION;
  syn_put_u16(out + 5, type);
  syn_put_u32(out + 7, sender);
  syn_put_u32(out + 11, payload_len);
}

/* Only registered types are framed: a frame no receiver could parse is a
 * caller bug (-SYN_ETYPE). The payload itself is not re-checked. */
int syn_wire_frame_build(uint16_t type, uint32_t sender, const uint8_t *payload,
                         size_t payload_len, uint8_t *out, size_t cap, size_t *out_len) {
  if (payload_len > SYN_MAX_PAYLOAD_BYTES) return -SYN_ETOOBIG;
  if (payload == NULL && payload_len > 0) return -SYN_EINVAL;
  int i = registry_index(type);
  if (i < 0) return -SYN_ETYPE;
  if (payload_len > registry_max_payload[i]) return -SYN_ETOOBIG;
  size_t size = syn_wire_frame_size(payload_len);
  if (out == NULL || size > cap) return -SYN_ELIMIT;
  /* memmove: the payload may already have been encoded in place at out + header */
  if (payload_len) memmove(out + SYN_WIRE_HEADER_BYTES, payload, payload_len);
  put_header(out, type, sender, (uint32_t)payload_len);
  memset(out + SYN_WIRE_HEADER_BYTES + payload_len, 0, SYN_SIG_BYTES);
  *out_len = size;
  return 0;
}

int syn_wire_frame_encode(const syn_msg_t *m, uint32_t sender, uint8_t *out, size_t cap, size_t *out_len) {
  size_t plen;
  int rc = syn_wire_payload_size(m, &plen);
  if (rc) return rc;
  if (syn_wire_def(m->def->type) != m->def) return -SYN_ETYPE;
  size_t size = syn_wire_frame_size(plen);
  if (out == NULL || size > cap) return -SYN_ELIMIT;
  put_payload(m, out + SYN_WIRE_HEADER_BYTES);
  put_header(out, m->def->type, sender, (uint32_t)plen);
  memset(out + SYN_WIRE_HEADER_BYTES + plen, 0, SYN_SIG_BYTES);
  *out_len = size;
  return 0;
}

/* Order of checks (wire.h): whole size, truncated header, magic, version,
 * known type, declared length against the limits, then the exact size. A
 * prefix of a valid frame is therefore always -SYN_ETRUNC. */
int syn_wire_frame_parse(const uint8_t *p, size_t len, syn_frame_t *out) {
  if (len > SYN_MAX_FRAME_BYTES) return -SYN_ETOOBIG;
  if (len < SYN_WIRE_HEADER_BYTES) return -SYN_ETRUNC;
  if (p == NULL) return -SYN_EINVAL;
  if (syn_get_u32(p) != SYN_WIRE_MAGIC) return -SYN_EMAGIC;
  if (p[4] != SYN_WIRE_VERSION) return -SYN_EVERSION;
  uint16_t type = syn_get_u16(p + 5);
  int i = registry_index(type);
  if (i < 0) return -SYN_ETYPE;
  uint32_t plen = syn_get_u32(p + 11);
  if (plen > SYN_MAX_PAYLOAD_BYTES || plen > registry_max_payload[i]) return -SYN_ETOOBIG;
  size_t need = syn_wire_frame_size(plen);   /* cannot overflow: plen is bounded */
  if (len < need) return -SYN_ETRUNC;
  if (len > need) return -SYN_ETRAILING;
  out->type = type;
  out->sender = syn_get_u32(p + 7);
  out->def = registry[i];
  out->payload = p + SYN_WIRE_HEADER_BYTES;
  out->payload_len = plen;
  out->signed_len = SYN_WIRE_HEADER_BYTES + (size_t)plen;
  out->sig = p + out->signed_len;
  return 0;
}

int syn_wire_frame_decode(const uint8_t *p, size_t len, syn_frame_t *frame, syn_msg_t *msg) {
  int rc = syn_wire_frame_parse(p, len, frame);
  if (rc) return rc;
  return syn_wire_decode_payload(frame->def, frame->payload, frame->payload_len, msg);
}

/* 0 gives "ok" (never a drop); any other code "malformed". */
const char *syn_wire_drop_reason(int rc) {
  switch (rc) {
  case 0: return "ok";
  case -SYN_ETRUNC: return "truncated";
  case -SYN_ETOOBIG: return "too_big";
  case -SYN_EMAGIC: return "bad_magic";
  case -SYN_EVERSION: return "bad_version";
  case -SYN_ETYPE: return "unknown_type";
  case -SYN_ETRAILING: return "trailing";
  case -SYN_EBADSIG: return "bad_signature";
  case -SYN_ESENDER: return "unknown_sender";
  default: return "malformed";
  }
}
