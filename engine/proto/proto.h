/* proto.h — the one interface every protocol implements.
 *
 * A protocol is a deterministic state machine: syn_<proto>_step takes one
 * event (start, a decoded message, a timer, a client request) and appends
 * effects to a batch (send, broadcast, timers, deliver, evidence, reject,
 * trace). It never reads a clock (the event carries the node's local time),
 * a socket, a file or a random number, and never allocates: its state is one
 * block of state_bytes the runtime allocates once, sized by the protocol's
 * SYN_MAX_* limits. The runtime (sim/ or live/) performs the effects in
 * order.
 *
 * Durable state: a protocol that must not forget what it promised emits
 * persist(kind, key, bytes) and forget(kind, below) effects. node/ makes
 * every persist of a batch durable (the runtime's sync) before the first
 * send that follows it, so a node never sends what a crash could make it
 * forget. After a crash the runtime re-creates the state with init and
 * replays the records through recover, in (kind, key) order, before START:
 * a protocol numbers its record kinds in the order it needs them back. */
#ifndef SYN_PROTO_H
#define SYN_PROTO_H

#include "../base/base.h"
#include "../wire/wire.h"
#include "../crypto/crypto.h"

#define SYN_MAX_EFFECTS       4096         /* effects in one step's batch */
#define SYN_MAX_EFFECT_BYTES  (8u << 20)   /* payload bytes in one batch */
#define SYN_MAX_TIMERS        32           /* timer ids per protocol instance */
#define SYN_MAX_PARAMS        16           /* tunable parameters per protocol */
#define SYN_MAX_OP_BYTES      4096         /* one client request / delivered value */
#define SYN_MAX_TRACE_BYTES   200          /* one trace note */
#define SYN_MAX_RECORD_BYTES  (1u << 20)   /* one persisted record, its seal excluded */
#define SYN_RECORD_SEAL_BYTES 32           /* BLAKE2b-256 of (kind, key, bytes), stored after the bytes */
#define SYN_RECORD_END        UINT32_MAX   /* the kind recover gets once, after the last record */

/* ---- events in ---- */
typedef enum {
  SYN_EV_START = 1,     /* once, after init (and after a restart) */
  SYN_EV_MESSAGE,       /* a verified, decoded message from a peer */
  SYN_EV_TIMER,         /* a timer the protocol set has fired */
  SYN_EV_REQUEST,       /* a client operation submitted at this node */
} syn_event_kind_t;

typedef struct {
  syn_event_kind_t kind;
  int64_t now_ns;             /* this node's local clock (skew included) */
  /* MESSAGE */
  uint32_t from;              /* authenticated sender id */
  const syn_msg_t *msg;       /* valid only during the step */
  const uint8_t *frame;       /* the signed frame it arrived in (evidence, relays) */
  size_t frame_len;
  /* TIMER */
  uint32_t timer;
  /* REQUEST */
  const uint8_t *op;
  size_t op_len;
} syn_event_t;

/* ---- effects out ---- */
typedef enum {
  SYN_FX_SEND = 1,      /* to, type, data = payload */
  SYN_FX_BROADCAST,     /* type, data = payload; to every peer but self */
  SYN_FX_TIMER_SET,     /* timer, after_ns; replaces a pending one with the same id */
  SYN_FX_TIMER_CANCEL,  /* timer */
  SYN_FX_DELIVER,       /* seq (position, from 1), origin, ts, data = value */
  SYN_FX_EVIDENCE,      /* against, reason, round, data = frame A, data2 = frame B */
  SYN_FX_REJECT,        /* against (sender), reason: a counted drop */
  SYN_FX_TRACE,         /* data = a short note */
  SYN_FX_COMMIT,        /* seq (the protocol's slot), data = the batch digest it executed */
  SYN_FX_PERSIST,       /* origin = record kind, seq = key, data = record bytes then their seal:
                           an upsert of (kind, key), durable before any later send of the batch */
  SYN_FX_FORGET,        /* origin = kind, seq = below: drop every record of that kind with key < below */
} syn_fx_kind_t;

typedef struct {
  syn_fx_kind_t kind;
  uint16_t type;              /* SEND/BROADCAST: message type id */
  uint16_t reason;            /* REJECT/EVIDENCE: index into the protocol's reasons */
  uint32_t to;                /* SEND */
  uint32_t origin;            /* DELIVER: who multicast it; EVIDENCE/REJECT: the accused;
                                 PERSIST/FORGET: the record kind */
  uint32_t timer;             /* TIMER_* */
  int64_t after_ns;           /* TIMER_SET */
  uint64_t seq;               /* DELIVER: position; EVIDENCE: round (ts, view, seq…);
                                 PERSIST: key; FORGET: below */
  uint64_t ts;                /* DELIVER: the protocol's timestamp for it */
  uint32_t off, len;          /* the data slice in the batch arena */
  uint32_t off2, len2;        /* EVIDENCE: the second frame */
} syn_effect_t;

/* A batch of effects with an arena for their bytes. The runtime owns it
 * and reuses it across steps (syn_fx_reset). */
typedef struct {
  syn_effect_t *fx;
  uint32_t count;
  uint8_t *arena;
  size_t arena_len;
  bool overflow;              /* a push did not fit: a protocol bug, asserted by runtimes */
} syn_effects_t;

int syn_fx_new(syn_effects_t *fx);                 /* allocates SYN_MAX_EFFECTS and the arena */
void syn_fx_free(syn_effects_t *fx);
void syn_fx_reset(syn_effects_t *fx);
const uint8_t *syn_fx_data(const syn_effects_t *fx, const syn_effect_t *e);
const uint8_t *syn_fx_data2(const syn_effects_t *fx, const syn_effect_t *e);

/* Pushes; each returns 0 or -SYN_ELIMIT (and sets overflow). */
int syn_fx_send(syn_effects_t *fx, uint32_t to, const syn_msg_t *m);
int syn_fx_broadcast(syn_effects_t *fx, const syn_msg_t *m);
int syn_fx_timer_set(syn_effects_t *fx, uint32_t timer, int64_t after_ns);
int syn_fx_timer_cancel(syn_effects_t *fx, uint32_t timer);
int syn_fx_deliver(syn_effects_t *fx, uint64_t seq, uint32_t origin, uint64_t ts,
                   const uint8_t *value, size_t len);
int syn_fx_evidence(syn_effects_t *fx, uint32_t against, uint16_t reason, uint64_t round,
                    const uint8_t *frame_a, size_t len_a, const uint8_t *frame_b, size_t len_b);
int syn_fx_reject(syn_effects_t *fx, uint32_t against, uint16_t reason);
int syn_fx_trace(syn_effects_t *fx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int syn_fx_commit(syn_effects_t *fx, uint64_t seq, const uint8_t digest[SYN_DIGEST_BYTES]);
/* Persists len <= SYN_MAX_RECORD_BYTES bytes as record (kind, key), replacing
 * any record with that kind and key; the effect's data is the bytes followed
 * by their seal (syn_record_seal), which is what the runtime stores. kind is
 * never SYN_RECORD_END. */
int syn_fx_persist(syn_effects_t *fx, uint32_t kind, uint64_t key, const uint8_t *data, size_t len);
/* Drops every record of kind whose key is below `below`. */
int syn_fx_forget(syn_effects_t *fx, uint32_t kind, uint64_t below);
/* True when the batch still has room for `effects` more effects holding
 * `bytes` more payload bytes (protocols that emit a lot check before). */
bool syn_fx_room(const syn_effects_t *fx, uint32_t effects, size_t bytes);

/* The seal of record (kind, key, data): BLAKE2b-256 over kind (u32 BE), key
 * (u64 BE) and the bytes. A stored record is its bytes then this seal; a
 * record whose seal does not match is corrupt (syn_node_recover checks). */
void syn_record_seal(uint32_t kind, uint64_t key, const uint8_t *data, size_t len,
                     uint8_t out[SYN_RECORD_SEAL_BYTES]);

/* ---- configuration ---- */
typedef struct {
  const char *name;           /* as set from Lua: cluster{ max_drift = 50 } */
  int64_t def, min, max;
  const char *help;
} syn_param_def_t;

struct syn_app;

typedef struct {
  uint32_t id;                /* this node: 0..n-1 a member, n..n+clients-1 a client */
  uint32_t n;                 /* members (replicas) of the cluster */
  uint32_t clients;           /* client nodes after them (protocols with a client role) */
  const struct syn_app *app;  /* the replicated application, for protocols that execute */
  int64_t params[SYN_MAX_PARAMS];   /* in the order of the protocol's param defs */
  const syn_keyring_t *ring;  /* for verifying signed frames carried inside
                                 messages; NULL when the run has crypto off */
} syn_proto_cfg_t;

/* Receives one named status value (node:status() in Lua). */
typedef void (*syn_status_fn)(void *ctx, const char *key, int64_t value);

typedef struct syn_proto {
  const char *name;                     /* "tom" */
  const syn_msg_def_t *msgs; size_t nmsgs;
  const syn_param_def_t *params; size_t nparams;
  const char *const *reasons; size_t nreasons;   /* reject/evidence reason names */
  size_t state_bytes;                   /* what init expects to fill */
  uint32_t max_nodes;                   /* largest cluster it runs (init refuses more) */
  uint32_t default_clients;             /* client nodes a cluster gets unless told (0: no client role) */
  const char *default_app;              /* the application it executes unless told (NULL: none) */
  bool loopback;                        /* a broadcast is also stepped at its sender, as
                                           its signed frame (certificates hold own votes) */
  /* Fills state (zeroed, state_bytes long) from cfg. */
  int (*init)(void *state, const syn_proto_cfg_t *cfg);
  /* Releases what init acquired (NULL when nothing); then the state may be re-inited. */
  void (*fini)(void *state);
  void (*step)(void *state, const syn_event_t *ev, syn_effects_t *fx);
  /* Optional, read-only: a cheap look at a decoded message before its
   * signature is verified (validation in cost order). Returns -1 to go on,
   * or the reason index it is refused for (counted; the message is
   * dropped). Must refuse only what the message's content alone condemns
   * whoever sent it: nothing that depends on trusting the sender field. */
  int (*admit)(const void *state, uint32_t from, const syn_msg_t *m);
  void (*status)(const void *state, syn_status_fn fn, void *ctx);
  /* Optional: rebuilds the state from one persisted record. Called after
   * init and before START, once per record in (kind, key) order (data is the
   * record's bytes, seal checked and removed), then once with kind
   * SYN_RECORD_END (key 0, no data) so the protocol can check the records
   * made a whole state. Returns 0, or -SYN_ECORRUPT (or another -SYN_E*) for
   * a record it cannot use: the restart then fails with that error, it never
   * silently starts empty. NULL: the protocol keeps no records. */
  int (*recover)(void *state, uint32_t kind, uint64_t key, const uint8_t *data, size_t len);
  const char *const *record_kinds; size_t nrecord_kinds;   /* record kind names, by kind (errors, Lua) */
} syn_proto_t;

/* The registry of built-in protocols. */
const syn_proto_t *syn_proto_find(const char *name);
/* Names of all protocols, NULL-terminated. */
const char *const *syn_proto_names(void);
/* Index of a param by name, or -1. */
int syn_proto_param(const syn_proto_t *p, const char *name);
/* Fills cfg->params with the defaults. */
void syn_proto_defaults(const syn_proto_t *p, syn_proto_cfg_t *cfg);

/* Protocols. */
extern const syn_proto_t syn_tom_proto;
extern const syn_proto_t syn_pbft_proto;

#endif
