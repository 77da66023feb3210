/* node.h — a node: identity + protocol instance + behaviour hooks + counters
 * + evidence. It owns the message path of DESIGN.md between the protocol and
 * the runtime:
 *   out: protocol effect → frame (wire/) → [behaviour on_send] → sign → rt->send
 *   in:  rt → frame limits → decode → [proto admit] → verify → [behaviour on_receive] → step
 * A node never knows which runtime drives it: the runtime hands it a
 * syn_runtime_t of callbacks. Honest nodes (no behaviour) never leave C.
 * It also keeps DESIGN.md's durability rule: the persists of a batch are
 * synced before the first send that follows them (and at the end of the
 * batch); a failed sync stops the node before it sends anything more. */
#ifndef SYN_NODE_H
#define SYN_NODE_H

#include "../proto/proto.h"

#define SYN_MAX_REASONS   32      /* protocol reject reasons counted per node */
#define SYN_MAX_EVIDENCE  1024    /* evidence records kept per node */
#define SYN_MAX_EVIDENCE_BYTES (16u << 20)   /* their frames' bytes, per node */

typedef struct syn_node syn_node_t;

/* What a runtime does for its nodes. ctx is the runtime's. */
typedef struct {
  void *ctx;
  /* Hands a signed frame to the network; extra_delay_ns > 0 holds it back first. */
  void (*send)(void *ctx, syn_node_t *from, uint32_t to, const uint8_t *frame, size_t len,
               int64_t extra_delay_ns);
  /* Arms (after_ns >= 0) or cancels (after_ns < 0) timer `timer`, identified by gen. */
  void (*timer)(void *ctx, syn_node_t *n, uint32_t timer, uint64_t gen, int64_t after_ns);
  void (*deliver)(void *ctx, syn_node_t *n, uint64_t seq, uint32_t origin, uint64_t ts,
                  const uint8_t *value, size_t len);
  void (*trace)(void *ctx, syn_node_t *n, const char *note, size_t len);
  /* The node executed the batch at slot seq whose digest is digest (may be NULL). */
  void (*commit)(void *ctx, syn_node_t *n, uint64_t seq, const uint8_t *digest);
  /* The node's local clock now (skew included). */
  int64_t (*now)(void *ctx, const syn_node_t *n);
  /* Durable records; each may be NULL (the runtime keeps nothing). persist
   * upserts record (kind, key) with data (the protocol's bytes then their
   * seal, SYN_FX_PERSIST); forget drops the kind's records with key < below;
   * sync makes every earlier persist and forget durable and returns 0 or
   * -SYN_EIO (disk full, i/o error). The records of one sync must survive a
   * crash as a prefix, in the order they came (one transaction does). */
  void (*persist)(void *ctx, syn_node_t *n, uint32_t kind, uint64_t key, const uint8_t *data, size_t len);
  void (*forget)(void *ctx, syn_node_t *n, uint32_t kind, uint64_t below);
  int (*sync)(void *ctx, syn_node_t *n);
} syn_runtime_t;

/* Behaviour hooks (Byzantine nodes only), installed by the Lua layer.
 * on_send must emit what it wants sent with syn_node_emit and returns 0, or
 * returns non-zero on a hook error (the message then goes out unchanged).
 * on_receive returns 1 to keep (with *out filled — views into scratch, which
 * the hook owns until the next call), 0 to drop, -1 on a hook error (kept
 * unchanged). on_timer returns false to swallow the firing. */
typedef struct {
  void *ctx;
  int (*on_send)(void *ctx, syn_node_t *n, const syn_msg_t *m, uint32_t to);
  int (*on_receive)(void *ctx, syn_node_t *n, const syn_msg_t *m, uint32_t from, syn_msg_t *out);
  bool (*on_timer)(void *ctx, syn_node_t *n, uint32_t timer);
  void (*release)(void *ctx);   /* called when the behaviour is replaced */
} syn_behavior_t;

typedef struct {
  uint32_t against;
  uint16_t reason;
  uint64_t round;
  int64_t at_ns;
  uint8_t *a, *b;               /* copies of the two signed frames */
  uint32_t len_a, len_b;
} syn_evidence_t;

/* Per-node counters. Wire drops are indexed by the negated SYN_E* code. */
typedef struct {
  uint64_t sent, received, delivered, timers, requests;
  uint64_t wire_drops[SYN_E_COUNT];
  uint64_t rejected[SYN_MAX_REASONS];     /* by the protocol, after the signature checked out */
  uint64_t unverified[SYN_MAX_REASONS];   /* by proto->admit, before it: the sender is not authenticated */
  uint64_t hook_errors, hook_drops, down_drops;
  uint64_t persists, forgets, syncs;
  uint64_t sync_failures;                 /* syncs that failed: each stopped the node */
  uint64_t sync_dropped;                  /* sends (and the rest of their batch) dropped after one */
} syn_node_counters_t;

struct syn_node {
  uint32_t id, n;                /* n: every node of the run, members then clients */
  const syn_proto_t *proto;
  void *state;
  syn_proto_cfg_t cfg;
  syn_identity_t ident;
  bool sign;                     /* crypto on: sign outbound, verify inbound */
  bool up;
  bool ever_byzantine;
  int failed;                    /* 0, or the -SYN_E* a sync failed with: the node stopped itself
                                    (up = false) and its runtime must not run it again unrestarted */
  bool lazy_sync;                /* testing only: sync at the end of a batch, after its sends (the
                                    defect the durability rule exists to prevent) */
  const syn_runtime_t *rt;
  syn_effects_t *fx;             /* shared scratch batch, owned by the runtime */
  syn_behavior_t behavior;       /* all NULL when honest */
  uint64_t timer_gen[SYN_MAX_TIMERS];
  bool timer_armed[SYN_MAX_TIMERS];
  syn_node_counters_t c;
  syn_evidence_t *evidence;
  uint32_t nevidence;
  uint64_t evidence_dropped;     /* past SYN_MAX_EVIDENCE or SYN_MAX_EVIDENCE_BYTES */
  uint64_t evidence_bytes;
  uint8_t *frame_buf;            /* SYN_MAX_FRAME_BYTES scratch for outbound frames */
  syn_buf_t loop_cur, loop_next; /* own broadcast frames to step (proto->loopback) */
  bool in_request;               /* a request's step is under way */
  int request_refused;           /* 1 + the reason the protocol refused the last request (0: taken) */
};

/* Creates node `id` of `n` running proto with cfg. n counts every node of
 * the run; the last cfg->clients of them are clients, the others members
 * (cfg->id and cfg->n, the member count, are set here). A broadcast goes to
 * the members. The runtime's fx batch is shared by all its nodes (steps
 * never nest). */
int syn_node_new(syn_node_t **out, const syn_proto_t *proto, const syn_proto_cfg_t *cfg,
                 uint32_t id, uint32_t n, const syn_identity_t *ident, bool sign,
                 const syn_runtime_t *rt, syn_effects_t *fx);
void syn_node_free(syn_node_t *node);
/* Re-initialises the protocol state (a restart without durable state, or
 * the first step of one from records); clears `failed`. */
int syn_node_reset(syn_node_t *node);
/* Replays one persisted record (data = the stored bytes, seal included) into
 * the protocol's recover, after init or reset and before syn_node_start;
 * after the last record the runtime calls it once with kind SYN_RECORD_END
 * (key 0, no data). Returns 0, -SYN_ECORRUPT when the seal does not match or
 * the protocol cannot use the record, -SYN_ESTATE when the protocol keeps no
 * records, or what recover returned. */
int syn_node_recover(syn_node_t *node, uint32_t kind, uint64_t key, const uint8_t *data, size_t len);
/* The name of record kind `kind` of the node's protocol, or "?" */
const char *syn_node_record_kind(const syn_node_t *node, uint32_t kind);

/* Inputs. Each runs one protocol step and performs its effects. */
void syn_node_start(syn_node_t *node);
/* A frame arrived from the network: limits, decode, admit, signature, hook, step.
 * Returns 0 or the -SYN_E* reason it was dropped for (also counted). */
int syn_node_receive(syn_node_t *node, const uint8_t *frame, size_t len);
void syn_node_timer_fired(syn_node_t *node, uint32_t timer, uint64_t gen);
/* Returns 0 when the protocol took the request, -SYN_ELIMIT when it refused
 * it in its step (a reject against the node itself: queue full, too long …;
 * request_refused - 1 is the reason), -SYN_ESTATE when the node is down,
 * -SYN_ETOOBIG over SYN_MAX_OP_BYTES. */
int syn_node_request(syn_node_t *node, const uint8_t *op, size_t len);

/* Frames, signs and sends m to `to` (a behaviour's own or rewritten message),
 * after extra_delay_ns. Only ever signs with the node's own key. */
int syn_node_emit(syn_node_t *node, uint32_t to, const syn_msg_t *m, int64_t extra_delay_ns);
/* Sends an already-built frame as is (a replay: the signature is whatever the
 * bytes carry). */
void syn_node_emit_raw(syn_node_t *node, uint32_t to, const uint8_t *frame, size_t len,
                       int64_t extra_delay_ns);

/* Installs (or, with NULL, removes) a behaviour; the previous one is released. */
void syn_node_behave(syn_node_t *node, const syn_behavior_t *b);

/* True while a protocol step (and the effects it emits) is under way: no
 * other step may start until it ends. */
bool syn_node_busy(void);

/* The name of protocol reject reason r, or "?" */
const char *syn_node_reason(const syn_node_t *node, uint32_t r);

#endif
