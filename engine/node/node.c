/* node.c — the message path between a protocol and a runtime (see node.h).
 * Owns framing, signing, verification, drop counting, evidence keeping, the
 * behaviour hooks, and the order of persists, syncs and sends in a batch. Never touches a socket, a clock or Lua directly: the
 * runtime and the behaviour come in as callback tables. */
#include "node.h"

#include <stdlib.h>
#include <string.h>

/* Steps never nest: a hook that wants to submit goes through its runtime's
 * event queue instead. One runtime drives its nodes from one thread. */
static int step_depth;

int syn_node_new(syn_node_t **out, const syn_proto_t *proto, const syn_proto_cfg_t *cfg,
                 uint32_t id, uint32_t n, const syn_identity_t *ident, bool sign,
                 const syn_runtime_t *rt, syn_effects_t *fx) {
  SYN_ASSERT(proto != NULL && rt != NULL && fx != NULL);
  if (n == 0 || id >= n || n > SYN_MAX_NODES || cfg->clients >= n) return -SYN_EINVAL;
  if (proto->nreasons > SYN_MAX_REASONS) return -SYN_ELIMIT;
  syn_node_t *node = calloc(1, sizeof *node);
  if (node == NULL) return -SYN_ENOMEM;
  node->state = calloc(1, proto->state_bytes);
  node->frame_buf = malloc(SYN_MAX_FRAME_BYTES);
  if (node->state == NULL || node->frame_buf == NULL) { syn_node_free(node); return -SYN_ENOMEM; }
  node->id = id;
  node->n = n;
  node->proto = proto;
  node->cfg = *cfg;
  node->cfg.id = id;
  node->cfg.n = n - cfg->clients;
  syn_buf_init(&node->loop_cur, 0);
  syn_buf_init(&node->loop_next, 0);
  node->ident = *ident;
  node->sign = sign;
  node->rt = rt;
  node->fx = fx;
  node->up = true;
  int rc = proto->init(node->state, &node->cfg);
  if (rc) { free(node->state); node->state = NULL; syn_node_free(node); return rc; }
  *out = node;
  return 0;
}

void syn_node_free(syn_node_t *node) {
  if (node == NULL) return;
  if (node->behavior.release) node->behavior.release(node->behavior.ctx);
  for (uint32_t i = 0; i < node->nevidence; i++) { free(node->evidence[i].a); free(node->evidence[i].b); }
  free(node->evidence);
  if (node->state && node->proto->fini) node->proto->fini(node->state);
  free(node->state);
  syn_buf_free(&node->loop_cur);
  syn_buf_free(&node->loop_next);
  free(node->frame_buf);
  free(node);
}

int syn_node_reset(syn_node_t *node) {
  if (node->proto->fini) node->proto->fini(node->state);
  memset(node->state, 0, node->proto->state_bytes);
  syn_buf_reset(&node->loop_next);
  for (uint32_t t = 0; t < SYN_MAX_TIMERS; t++) {
    if (node->timer_armed[t]) node->rt->timer(node->rt->ctx, node, t, ++node->timer_gen[t], -1);
    node->timer_armed[t] = false;
  }
  node->failed = 0;
  return node->proto->init(node->state, &node->cfg);
}

int syn_node_recover(syn_node_t *node, uint32_t kind, uint64_t key, const uint8_t *data, size_t len) {
  SYN_ASSERT(step_depth == 0);
  if (node->proto->recover == NULL) return -SYN_ESTATE;
  if (kind == SYN_RECORD_END) return node->proto->recover(node->state, kind, 0, NULL, 0);
  if (len < SYN_RECORD_SEAL_BYTES || len - SYN_RECORD_SEAL_BYTES > SYN_MAX_RECORD_BYTES) return -SYN_ECORRUPT;
  size_t body = len - SYN_RECORD_SEAL_BYTES;
  uint8_t seal[SYN_RECORD_SEAL_BYTES];
  syn_record_seal(kind, key, data, body, seal);
  if (memcmp(seal, data + body, SYN_RECORD_SEAL_BYTES) != 0) return -SYN_ECORRUPT;
  return node->proto->recover(node->state, kind, key, data, body);
}

const char *syn_node_record_kind(const syn_node_t *node, uint32_t kind) {
  return kind < node->proto->nrecord_kinds && node->proto->record_kinds[kind] ? node->proto->record_kinds[kind] : "?";
}

bool syn_node_busy(void) { return step_depth > 0; }

const char *syn_node_reason(const syn_node_t *node, uint32_t r) {
  return r < node->proto->nreasons ? node->proto->reasons[r] : "?";
}

/* ---- outbound ---- */

static void send_frame(syn_node_t *node, uint32_t to, const uint8_t *frame, size_t len, int64_t delay_ns) {
  node->c.sent++;
  node->rt->send(node->rt->ctx, node, to, frame, len, delay_ns);
}

/* Frames payload into node->frame_buf and signs it; returns its length. */
static size_t frame_payload(syn_node_t *node, uint16_t type, const uint8_t *payload, size_t len) {
  size_t flen;
  int rc = syn_wire_frame_build(type, node->id, payload, len, node->frame_buf, SYN_MAX_FRAME_BYTES, &flen);
  SYN_ASSERT(rc == 0);   /* protocol payloads are within limits by construction */
  if (node->sign) {
    rc = syn_crypto_sign_frame(&node->ident, node->frame_buf, flen);
    SYN_ASSERT(rc == 0);
  }
  return flen;
}

int syn_node_emit(syn_node_t *node, uint32_t to, const syn_msg_t *m, int64_t extra_delay_ns) {
  if (to >= node->n) return -SYN_EINVAL;
  size_t len;
  int rc = syn_wire_frame_encode(m, node->id, node->frame_buf, SYN_MAX_FRAME_BYTES, &len);
  if (rc) return rc;
  if (node->sign) {
    rc = syn_crypto_sign_frame(&node->ident, node->frame_buf, len);
    if (rc) return rc;
  }
  send_frame(node, to, node->frame_buf, len, extra_delay_ns);
  return 0;
}

void syn_node_emit_raw(syn_node_t *node, uint32_t to, const uint8_t *frame, size_t len,
                       int64_t extra_delay_ns) {
  if (to >= node->n || len > SYN_MAX_FRAME_BYTES) return;
  send_frame(node, to, frame, len, extra_delay_ns);
}

/* One outbound protocol message to one peer, through the behaviour if any. */
static void send_one(syn_node_t *node, uint32_t to, uint16_t type, const uint8_t *payload, size_t len) {
  if (node->behavior.on_send) {
    syn_msg_t m;
    int rc = syn_wire_decode_payload(syn_wire_def(type), payload, len, &m);
    SYN_ASSERT(rc == 0);
    if (node->behavior.on_send(node->behavior.ctx, node, &m, to) == 0) return;
    node->c.hook_errors++;
  }
  size_t flen = frame_payload(node, type, payload, len);
  send_frame(node, to, node->frame_buf, flen, 0);
}

static void keep_evidence(syn_node_t *node, const syn_effects_t *fx, const syn_effect_t *e) {
  if (node->nevidence >= SYN_MAX_EVIDENCE ||
      (uint64_t)e->len + e->len2 > SYN_MAX_EVIDENCE_BYTES - node->evidence_bytes) {
    node->evidence_dropped++;
    return;
  }
  if (node->evidence == NULL) {
    node->evidence = calloc(SYN_MAX_EVIDENCE, sizeof *node->evidence);
    if (node->evidence == NULL) { node->evidence_dropped++; return; }
  }
  syn_evidence_t *ev = &node->evidence[node->nevidence];
  ev->a = malloc(e->len ? e->len : 1);
  ev->b = malloc(e->len2 ? e->len2 : 1);
  if (ev->a == NULL || ev->b == NULL) { free(ev->a); free(ev->b); node->evidence_dropped++; return; }
  memcpy(ev->a, syn_fx_data(fx, e), e->len);
  memcpy(ev->b, syn_fx_data2(fx, e), e->len2);
  ev->len_a = e->len; ev->len_b = e->len2;
  node->evidence_bytes += (uint64_t)e->len + e->len2;
  ev->against = e->origin; ev->reason = e->reason; ev->round = e->seq;
  ev->at_ns = node->rt->now(node->rt->ctx, node);
  node->nevidence++;
}

/* Queues the frame in frame_buf to be stepped at this node after the batch. */
static void loop_push(syn_node_t *node, size_t flen) {
  uint8_t len[4];
  syn_put_u32(len, (uint32_t)flen);
  int rc = syn_buf_append(&node->loop_next, len, 4);
  if (rc == 0) rc = syn_buf_append(&node->loop_next, node->frame_buf, flen);
  SYN_ASSERT(rc == 0);   /* bounded by one batch's payload bytes */
}

/* Makes the writes so far durable. False when the sync failed: the node has
 * stopped itself (failed, down) and must send nothing that depends on them. */
static bool sync_now(syn_node_t *node) {
  node->c.syncs++;
  int rc = node->rt->sync ? node->rt->sync(node->rt->ctx, node) : 0;
  if (rc == 0) return true;
  node->c.sync_failures++;
  node->failed = rc < 0 ? rc : -SYN_EIO;
  node->up = false;
  syn_buf_reset(&node->loop_next);
  return false;
}

static bool is_send(const syn_effect_t *e) { return e->kind == SYN_FX_SEND || e->kind == SYN_FX_BROADCAST; }

/* Performs a batch in order. A send (and the node's own copy of a
 * broadcast, which is stepped after the batch, and whatever a behaviour
 * emits from on_send) goes out only once every persist before it is synced;
 * after a failed sync nothing more of the batch happens. */
static void apply(syn_node_t *node, const syn_effects_t *fx) {
  bool unsynced = false;
  for (uint32_t i = 0; i < fx->count; i++) {
    const syn_effect_t *e = &fx->fx[i];
    if (unsynced && is_send(e) && !node->lazy_sync) {
      unsynced = false;
      if (!sync_now(node)) {
        for (uint32_t j = i; j < fx->count; j++) node->c.sync_dropped += is_send(&fx->fx[j]);
        return;
      }
    }
    switch (e->kind) {
    case SYN_FX_SEND:
      send_one(node, e->to, e->type, syn_fx_data(fx, e), e->len);
      break;
    case SYN_FX_BROADCAST: {
      bool loop = node->proto->loopback && node->id < node->cfg.n;
      if (node->behavior.on_send) {
        for (uint32_t to = 0; to < node->cfg.n; to++)
          if (to != node->id) send_one(node, to, e->type, syn_fx_data(fx, e), e->len);
        /* The node's own copy is what its protocol said, whatever went out. */
        if (loop) loop_push(node, frame_payload(node, e->type, syn_fx_data(fx, e), e->len));
      } else {
        /* The frame names its sender, not its receiver: one signature serves all. */
        size_t flen = frame_payload(node, e->type, syn_fx_data(fx, e), e->len);
        for (uint32_t to = 0; to < node->cfg.n; to++)
          if (to != node->id) send_frame(node, to, node->frame_buf, flen, 0);
        if (loop) loop_push(node, flen);
      }
      break;
    }
    case SYN_FX_TIMER_SET:
      node->timer_armed[e->timer] = true;
      node->rt->timer(node->rt->ctx, node, e->timer, ++node->timer_gen[e->timer], e->after_ns);
      break;
    case SYN_FX_TIMER_CANCEL:
      if (node->timer_armed[e->timer]) {
        node->timer_armed[e->timer] = false;
        node->rt->timer(node->rt->ctx, node, e->timer, ++node->timer_gen[e->timer], -1);
      }
      break;
    case SYN_FX_DELIVER:
      node->c.delivered++;
      node->rt->deliver(node->rt->ctx, node, e->seq, e->origin, e->ts, syn_fx_data(fx, e), e->len);
      break;
    case SYN_FX_EVIDENCE:
      keep_evidence(node, fx, e);
      break;
    case SYN_FX_REJECT:
      if (e->reason < SYN_MAX_REASONS) node->c.rejected[e->reason]++;
      if (e->origin == node->id && node->in_request) node->request_refused = (int)e->reason + 1;
      break;
    case SYN_FX_TRACE:
      if (node->rt->trace) node->rt->trace(node->rt->ctx, node, (const char *)syn_fx_data(fx, e), e->len);
      break;
    case SYN_FX_COMMIT:
      if (node->rt->commit) node->rt->commit(node->rt->ctx, node, e->seq, syn_fx_data(fx, e));
      break;
    case SYN_FX_PERSIST:
      node->c.persists++;
      if (node->rt->persist) node->rt->persist(node->rt->ctx, node, e->origin, e->seq, syn_fx_data(fx, e), e->len);
      unsynced = true;
      break;
    case SYN_FX_FORGET:
      node->c.forgets++;
      if (node->rt->forget) node->rt->forget(node->rt->ctx, node, e->origin, e->seq);
      unsynced = true;
      break;
    }
  }
  if (unsynced) (void)sync_now(node);
}

static void step_once(syn_node_t *node, syn_event_t *ev) {
  ev->now_ns = node->rt->now(node->rt->ctx, node);
  syn_fx_reset(node->fx);
  node->proto->step(node->state, ev, node->fx);
  SYN_ASSERT(!node->fx->overflow);
  apply(node, node->fx);
}

/* One input, then the node's own broadcasts (loopback protocols), in the
 * order they were made, until none is left. */
static void step(syn_node_t *node, syn_event_t *ev) {
  SYN_ASSERT(step_depth == 0);
  step_depth++;
  step_once(node, ev);
  while (node->loop_next.len > 0 && node->up) {
    syn_buf_t t = node->loop_cur;
    node->loop_cur = node->loop_next;
    node->loop_next = t;
    syn_buf_reset(&node->loop_next);
    for (size_t off = 0; off + 4 <= node->loop_cur.len;) {
      uint32_t flen = syn_get_u32(node->loop_cur.data + off);
      const uint8_t *frame = node->loop_cur.data + off + 4;
      off += 4 + flen;
      syn_frame_t f;
      syn_msg_t m;
      int rc = syn_wire_frame_decode(frame, flen, &f, &m);
      SYN_ASSERT(rc == 0);   /* we just built it */
      syn_event_t self = { .kind = SYN_EV_MESSAGE, .from = node->id, .msg = &m, .frame = frame, .frame_len = flen };
      step_once(node, &self);
    }
    syn_buf_reset(&node->loop_cur);
  }
  step_depth--;
}

/* ---- inbound ---- */

void syn_node_start(syn_node_t *node) {
  if (!node->up) return;
  syn_event_t ev = { .kind = SYN_EV_START };
  step(node, &ev);
}

static int drop(syn_node_t *node, int rc) {
  node->c.wire_drops[-rc < SYN_E_COUNT ? -rc : SYN_EINVAL]++;
  return rc;
}

int syn_node_receive(syn_node_t *node, const uint8_t *frame, size_t len) {
  if (!node->up) { node->c.down_drops++; return -SYN_ESTATE; }
  syn_frame_t f;
  syn_msg_t m;
  int rc = syn_wire_frame_parse(frame, len, &f);
  if (rc) return drop(node, rc);
  if (f.sender >= node->n || f.sender == node->id) return drop(node, -SYN_ESENDER);
  if (strcmp(f.def->proto, node->proto->name) != 0) return drop(node, -SYN_ETYPE);
  /* Cost order: shape, then the protocol's cheap look, then the signature. */
  rc = syn_wire_decode_payload(f.def, f.payload, f.payload_len, &m);
  if (rc) return drop(node, rc);
  if (node->proto->admit) {
    int reason = node->proto->admit(node->state, f.sender, &m);
    if (reason >= 0) {
      if (reason < SYN_MAX_REASONS) node->c.unverified[reason]++;
      return 0;
    }
  }
  if (node->sign) {
    rc = syn_crypto_verify_frame(node->cfg.ring, frame, &f);
    if (rc) return drop(node, rc);
  }
  node->c.received++;
  if (node->behavior.on_receive) {
    syn_msg_t out;
    int keep = node->behavior.on_receive(node->behavior.ctx, node, &m, f.sender, &out);
    if (keep == 0) { node->c.hook_drops++; return 0; }
    if (keep > 0) m = out;
    else node->c.hook_errors++;
  }
  syn_event_t ev = { .kind = SYN_EV_MESSAGE, .from = f.sender, .msg = &m, .frame = frame, .frame_len = len };
  step(node, &ev);
  return 0;
}

void syn_node_timer_fired(syn_node_t *node, uint32_t timer, uint64_t gen) {
  if (!node->up || timer >= SYN_MAX_TIMERS) return;
  if (!node->timer_armed[timer] || node->timer_gen[timer] != gen) return;   /* stale */
  node->timer_armed[timer] = false;
  node->c.timers++;
  if (node->behavior.on_timer && !node->behavior.on_timer(node->behavior.ctx, node, timer)) return;
  syn_event_t ev = { .kind = SYN_EV_TIMER, .timer = timer };
  step(node, &ev);
}

int syn_node_request(syn_node_t *node, const uint8_t *op, size_t len) {
  if (!node->up) return -SYN_ESTATE;
  if (len > SYN_MAX_OP_BYTES) return -SYN_ETOOBIG;
  node->c.requests++;
  syn_event_t ev = { .kind = SYN_EV_REQUEST, .op = op, .op_len = len };
  node->in_request = true;
  node->request_refused = 0;
  step(node, &ev);
  node->in_request = false;
  return node->request_refused ? -SYN_ELIMIT : 0;
}

void syn_node_behave(syn_node_t *node, const syn_behavior_t *b) {
  if (node->behavior.release) node->behavior.release(node->behavior.ctx);
  memset(&node->behavior, 0, sizeof node->behavior);
  if (b) { node->behavior = *b; node->ever_byzantine = true; }
}
