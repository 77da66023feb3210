/* proto.c — the effects batch and the protocol registry. Shared by every
 * protocol and both runtimes; holds no protocol logic. */
#include "proto.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int syn_fx_new(syn_effects_t *fx) {
  memset(fx, 0, sizeof *fx);
  fx->fx = calloc(SYN_MAX_EFFECTS, sizeof *fx->fx);
  fx->arena = malloc(SYN_MAX_EFFECT_BYTES);
  if (fx->fx == NULL || fx->arena == NULL) { syn_fx_free(fx); return -SYN_ENOMEM; }
  return 0;
}

void syn_fx_free(syn_effects_t *fx) {
  free(fx->fx);
  free(fx->arena);
  fx->fx = NULL; fx->arena = NULL;
}

void syn_fx_reset(syn_effects_t *fx) { fx->count = 0; fx->arena_len = 0; fx->overflow = false; }

const uint8_t *syn_fx_data(const syn_effects_t *fx, const syn_effect_t *e) { return fx->arena + e->off; }
const uint8_t *syn_fx_data2(const syn_effects_t *fx, const syn_effect_t *e) { return fx->arena + e->off2; }

static syn_effect_t *push(syn_effects_t *fx, syn_fx_kind_t kind) {
  if (fx->count >= SYN_MAX_EFFECTS) { fx->overflow = true; return NULL; }
  syn_effect_t *e = &fx->fx[fx->count++];
  memset(e, 0, sizeof *e);
  e->kind = kind;
  return e;
}

/* Copies bytes into the arena; returns the offset or -1 when full. */
static int64_t put(syn_effects_t *fx, const void *src, size_t len) {
  if (len > SYN_MAX_EFFECT_BYTES - fx->arena_len) { fx->overflow = true; return -1; }
  int64_t off = (int64_t)fx->arena_len;
  if (len) memcpy(fx->arena + fx->arena_len, src, len);
  fx->arena_len += len;
  return off;
}

static int push_msg(syn_effects_t *fx, syn_fx_kind_t kind, uint32_t to, const syn_msg_t *m) {
  size_t size;
  int rc = syn_wire_payload_size(m, &size);
  SYN_ASSERT(rc == 0);   /* a protocol never builds a message over its own limits */
  if (size > SYN_MAX_EFFECT_BYTES - fx->arena_len) { fx->overflow = true; return -SYN_ELIMIT; }
  syn_effect_t *e = push(fx, kind);
  if (e == NULL) return -SYN_ELIMIT;
  e->to = to;
  e->type = m->def->type;
  e->off = (uint32_t)fx->arena_len;
  rc = syn_wire_encode_payload(m, fx->arena + fx->arena_len, SYN_MAX_EFFECT_BYTES - fx->arena_len, &size);
  SYN_ASSERT(rc == 0);
  e->len = (uint32_t)size;
  fx->arena_len += size;
  return 0;
}

int syn_fx_send(syn_effects_t *fx, uint32_t to, const syn_msg_t *m) { return push_msg(fx, SYN_FX_SEND, to, m); }
int syn_fx_broadcast(syn_effects_t *fx, const syn_msg_t *m) { return push_msg(fx, SYN_FX_BROADCAST, 0, m); }

int syn_fx_timer_set(syn_effects_t *fx, uint32_t timer, int64_t after_ns) {
  SYN_ASSERT(timer < SYN_MAX_TIMERS);
  SYN_ASSERT(after_ns >= 0);
  syn_effect_t *e = push(fx, SYN_FX_TIMER_SET);
  if (e == NULL) return -SYN_ELIMIT;
  e->timer = timer; e->after_ns = after_ns;
  return 0;
}

int syn_fx_timer_cancel(syn_effects_t *fx, uint32_t timer) {
  SYN_ASSERT(timer < SYN_MAX_TIMERS);
  syn_effect_t *e = push(fx, SYN_FX_TIMER_CANCEL);
  if (e == NULL) return -SYN_ELIMIT;
  e->timer = timer;
  return 0;
}

int syn_fx_deliver(syn_effects_t *fx, uint64_t seq, uint32_t origin, uint64_t ts,
                   const uint8_t *value, size_t len) {
  SYN_ASSERT(len <= SYN_MAX_OP_BYTES);
  int64_t off = put(fx, value, len);
  if (off < 0) return -SYN_ELIMIT;
  syn_effect_t *e = push(fx, SYN_FX_DELIVER);
  if (e == NULL) return -SYN_ELIMIT;
  e->seq = seq; e->origin = origin; e->ts = ts;
  e->off = (uint32_t)off; e->len = (uint32_t)len;
  return 0;
}

int syn_fx_evidence(syn_effects_t *fx, uint32_t against, uint16_t reason, uint64_t round,
                    const uint8_t *frame_a, size_t len_a, const uint8_t *frame_b, size_t len_b) {
  int64_t a = put(fx, frame_a, len_a);
  int64_t b = a < 0 ? -1 : put(fx, frame_b, len_b);
  if (b < 0) return -SYN_ELIMIT;
  syn_effect_t *e = push(fx, SYN_FX_EVIDENCE);
  if (e == NULL) return -SYN_ELIMIT;
  e->origin = against; e->reason = reason; e->seq = round;
  e->off = (uint32_t)a; e->len = (uint32_t)len_a;
  e->off2 = (uint32_t)b; e->len2 = (uint32_t)len_b;
  return 0;
}

int syn_fx_reject(syn_effects_t *fx, uint32_t against, uint16_t reason) {
  syn_effect_t *e = push(fx, SYN_FX_REJECT);
  if (e == NULL) return -SYN_ELIMIT;
  e->origin = against; e->reason = reason;
  return 0;
}

int syn_fx_trace(syn_effects_t *fx, const char *fmt, ...) {
  char note[SYN_MAX_TRACE_BYTES];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(note, sizeof note, fmt, ap);
  va_end(ap);
  if (n < 0) return -SYN_EINVAL;
  size_t len = (size_t)n < sizeof note ? (size_t)n : sizeof note - 1;
  int64_t off = put(fx, note, len);
  if (off < 0) return -SYN_ELIMIT;
  syn_effect_t *e = push(fx, SYN_FX_TRACE);
  if (e == NULL) return -SYN_ELIMIT;
  e->off = (uint32_t)off; e->len = (uint32_t)len;
  return 0;
}

int syn_fx_commit(syn_effects_t *fx, uint64_t seq, const uint8_t digest[SYN_DIGEST_BYTES]) {
  int64_t off = put(fx, digest, SYN_DIGEST_BYTES);
  if (off < 0) return -SYN_ELIMIT;
  syn_effect_t *e = push(fx, SYN_FX_COMMIT);
  if (e == NULL) return -SYN_ELIMIT;
  e->seq = seq;
  e->off = (uint32_t)off; e->len = SYN_DIGEST_BYTES;
  return 0;
}

void syn_record_seal(uint32_t kind, uint64_t key, const uint8_t *data, size_t len,
                     uint8_t out[SYN_RECORD_SEAL_BYTES]) {
  uint8_t head[12];
  syn_put_u32(head, kind);
  syn_put_u64(head + 4, key);
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, SYN_RECORD_SEAL_BYTES);
  crypto_generichash_update(&st, head, sizeof head);
  if (len) crypto_generichash_update(&st, data, len);
  crypto_generichash_final(&st, out, SYN_RECORD_SEAL_BYTES);
}

int syn_fx_persist(syn_effects_t *fx, uint32_t kind, uint64_t key, const uint8_t *data, size_t len) {
  SYN_ASSERT(len <= SYN_MAX_RECORD_BYTES);   /* a protocol sizes its records by its own limits */
  SYN_ASSERT(kind != SYN_RECORD_END);
  if (len + SYN_RECORD_SEAL_BYTES > SYN_MAX_EFFECT_BYTES - fx->arena_len) { fx->overflow = true; return -SYN_ELIMIT; }
  syn_effect_t *e = push(fx, SYN_FX_PERSIST);
  if (e == NULL) return -SYN_ELIMIT;
  int64_t off = put(fx, data, len);
  SYN_ASSERT(off >= 0);   /* room checked above */
  syn_record_seal(kind, key, data, len, fx->arena + fx->arena_len);
  fx->arena_len += SYN_RECORD_SEAL_BYTES;
  e->origin = kind; e->seq = key;
  e->off = (uint32_t)off; e->len = (uint32_t)(len + SYN_RECORD_SEAL_BYTES);
  return 0;
}

int syn_fx_forget(syn_effects_t *fx, uint32_t kind, uint64_t below) {
  syn_effect_t *e = push(fx, SYN_FX_FORGET);
  if (e == NULL) return -SYN_ELIMIT;
  e->origin = kind; e->seq = below;
  return 0;
}

bool syn_fx_room(const syn_effects_t *fx, uint32_t effects, size_t bytes) {
  return fx->count + effects <= SYN_MAX_EFFECTS && bytes <= SYN_MAX_EFFECT_BYTES - fx->arena_len;
}

/* ---- registry ---- */

static const syn_proto_t *const protocols[] = { &syn_tom_proto, &syn_pbft_proto, NULL };
static const char *proto_names[sizeof protocols / sizeof protocols[0]];

const syn_proto_t *syn_proto_find(const char *name) {
  for (size_t i = 0; protocols[i]; i++) {
    if (strcmp(protocols[i]->name, name) == 0) {
      int rc = syn_wire_register(protocols[i]->msgs, protocols[i]->nmsgs);
      SYN_ASSERT(rc == 0);
      return protocols[i];
    }
  }
  return NULL;
}

const char *const *syn_proto_names(void) {
  for (size_t i = 0; protocols[i]; i++) proto_names[i] = protocols[i]->name;
  return proto_names;
}

int syn_proto_param(const syn_proto_t *p, const char *name) {
  for (size_t i = 0; i < p->nparams; i++) if (strcmp(p->params[i].name, name) == 0) return (int)i;
  return -1;
}

void syn_proto_defaults(const syn_proto_t *p, syn_proto_cfg_t *cfg) {
  SYN_ASSERT(p->nparams <= SYN_MAX_PARAMS);
  for (size_t i = 0; i < p->nparams; i++) cfg->params[i] = p->params[i].def;
}
