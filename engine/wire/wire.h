/* wire.h — the canonical binary encoding of every message and the frame
 * that carries it. Schema-driven: each protocol declares its message types
 * as field lists (syn_msg_def_t); one codec encodes, decodes and checks them
 * all. Decoding never trusts its input: every length is checked against a
 * named limit before it is used, and each way of being malformed has its own
 * return code. wire/ never signs (crypto/ does) and never allocates.
 *
 * Frame (all integers big-endian):
 *   magic u32 "SYND" | version u8 | type u16 | sender u32 | length u32 |
 *   payload [length] | signature [64]
 * Payload: the fields in schema order; u64 as 8 bytes; bytes as u32 length
 * then the bytes. One message has exactly one encoding. */
#ifndef SYN_WIRE_H
#define SYN_WIRE_H

#include "../base/base.h"

#define SYN_WIRE_MAGIC        0x53594e44u  /* "SYND" */
#define SYN_WIRE_VERSION      1
#define SYN_WIRE_HEADER_BYTES 15
#define SYN_SIG_BYTES         64
#define SYN_MAX_FRAME_BYTES   (1u << 20)   /* whole frame, header to signature */
#define SYN_MAX_PAYLOAD_BYTES (SYN_MAX_FRAME_BYTES - SYN_WIRE_HEADER_BYTES - SYN_SIG_BYTES)
#define SYN_MAX_FIELDS        8            /* fields in one message type */
#define SYN_MAX_MSG_TYPES     64           /* registered message types, all protocols */
#define SYN_MAX_NAME_BYTES    32           /* a type or field name */

typedef enum { SYN_FIELD_U64 = 1, SYN_FIELD_BYTES = 2 } syn_field_kind_t;

typedef struct {
  const char *name;          /* as Lua sees it: msg.ts, msg.word */
  syn_field_kind_t kind;
  uint32_t max_bytes;        /* BYTES only: the field's own limit */
} syn_field_def_t;

typedef struct {
  uint16_t type;             /* globally unique: protocol block << 8 | index */
  const char *proto;         /* "tom" — part of the signing domain */
  const char *name;          /* "data" — part of the signing domain, msg.type in Lua */
  uint8_t nfields;
  syn_field_def_t fields[SYN_MAX_FIELDS];
} syn_msg_def_t;

typedef struct { const uint8_t *ptr; uint32_t len; } syn_bytes_t;

/* A decoded message. BYTES fields are views into memory the message does
 * not own (the frame it was decoded from, or the caller's storage). */
typedef struct {
  const syn_msg_def_t *def;
  uint64_t u[SYN_MAX_FIELDS];      /* U64 field i */
  syn_bytes_t b[SYN_MAX_FIELDS];   /* BYTES field i */
} syn_msg_t;

/* A parsed frame: views into the caller's buffer. */
typedef struct {
  uint16_t type;
  uint32_t sender;
  const syn_msg_def_t *def;
  const uint8_t *payload;
  uint32_t payload_len;
  const uint8_t *sig;              /* SYN_SIG_BYTES */
  size_t signed_len;               /* header + payload: what the signature covers */
} syn_frame_t;

/* Registers a protocol's message types (static storage, kept by pointer).
 * Fails with -SYN_ELIMIT past SYN_MAX_MSG_TYPES, -SYN_EINVAL on a duplicate
 * type id or a bad definition. Registering the same array twice is a no-op. */
int syn_wire_register(const syn_msg_def_t *defs, size_t n);
/* The definition for a type id, or NULL. */
const syn_msg_def_t *syn_wire_def(uint16_t type);
/* The definition for ("tom", "data"), or NULL. */
const syn_msg_def_t *syn_wire_def_by_name(const char *proto, const char *name);
/* Field index by name, or -1. */
int syn_wire_field(const syn_msg_def_t *def, const char *name);

/* Exact payload size of m; checks field limits (-SYN_ETOOBIG). */
int syn_wire_payload_size(const syn_msg_t *m, size_t *out_len);
/* Encodes m's payload into out (cap bytes); *out_len gets the size. */
int syn_wire_encode_payload(const syn_msg_t *m, uint8_t *out, size_t cap, size_t *out_len);
/* Decodes a payload of type def; BYTES fields point into p. Rejects
 * truncation (-SYN_ETRUNC), a field over its limit (-SYN_ETOOBIG) and
 * leftover bytes (-SYN_ETRAILING). */
int syn_wire_decode_payload(const syn_msg_def_t *def, const uint8_t *p, size_t len, syn_msg_t *out);

/* Size of a frame carrying payload_len bytes. */
static inline size_t syn_wire_frame_size(size_t payload_len) {
  return SYN_WIRE_HEADER_BYTES + payload_len + SYN_SIG_BYTES;
}
/* Writes header + payload into out; the signature bytes are zeroed for
 * crypto/ to fill. */
int syn_wire_frame_build(uint16_t type, uint32_t sender, const uint8_t *payload,
                         size_t payload_len, uint8_t *out, size_t cap, size_t *out_len);
/* Encodes m as a whole unsigned frame (header, payload, zero signature). */
int syn_wire_frame_encode(const syn_msg_t *m, uint32_t sender, uint8_t *out, size_t cap, size_t *out_len);
/* Parses and bounds-checks a frame: size limit first (-SYN_ETOOBIG), then
 * truncation, magic, version, known type, exact length (-SYN_ETRAILING).
 * Does not verify the signature. */
int syn_wire_frame_parse(const uint8_t *p, size_t len, syn_frame_t *out);
/* Parses a frame and decodes its payload in one call. */
int syn_wire_frame_decode(const uint8_t *p, size_t len, syn_frame_t *frame, syn_msg_t *msg);

/* A short stable name for a decode error, used as a drop-counter key:
 * "truncated", "too_big", "bad_magic", "bad_version", "unknown_type",
 * "trailing", "bad_signature", "unknown_sender", or "malformed". */
const char *syn_wire_drop_reason(int rc);

#endif
