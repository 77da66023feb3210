/* sim.h — the deterministic simulator: virtual time, one event heap with a
 * (time, insertion order) tie-break, one seeded PRNG, a network model per
 * link, crashes, restarts and clock skew, and each node's durable records
 * (an in-memory store per node instance, bounded, that a restart replays). It runs syn_node_t unchanged.
 * Every processed event folds into a BLAKE2b trace hash; the same seed and
 * the same script give the same hash, bit for bit. The simulator never reads
 * the wall clock and never calls Lua: callbacks scheduled from Lua come back
 * through on_callback. */
#ifndef SYN_SIM_H
#define SYN_SIM_H

#include <stdio.h>
#include <sodium.h>

#include "../node/node.h"
#include "../check/check.h"

#define SYN_MAX_SIM_EVENTS (16u << 20)   /* pending events in the heap */
#define SYN_MAX_SIM_RECORDS (1u << 16)   /* durable records one node instance keeps */
#define SYN_MAX_SIM_STORE_BYTES (64ull << 20)   /* their bytes; past either, the node's next sync fails */

typedef enum {
  SYN_DIST_CONSTANT = 1, SYN_DIST_UNIFORM, SYN_DIST_NORMAL, SYN_DIST_EXPONENTIAL, SYN_DIST_PARETO
} syn_dist_kind_t;

/* A latency distribution in nanoseconds; samples are never negative. */
typedef struct {
  syn_dist_kind_t kind;
  double a, b;   /* constant: a · uniform: [a,b) · normal: mean a, sd b ·
                    exponential: mean a · pareto: scale a, shape b */
} syn_dist_t;
int64_t syn_dist_sample(const syn_dist_t *d, syn_prng_t *p);

/* One direction of one link. */
typedef struct {
  syn_dist_t latency;
  double loss;        /* probability a frame is lost */
  double duplicate;   /* probability a frame is delivered twice */
  bool fifo;          /* false: frames may overtake each other */
} syn_link_t;

typedef struct {
  uint64_t events, frames_sent, frames_delivered, frames_lost, frames_duplicated,
           frames_blocked, frames_to_down_node, timers_fired, callbacks,
           requests_to_down_node, requests_unrecorded;
} syn_sim_stats_t;

typedef struct syn_sim syn_sim_t;

typedef struct {
  uint64_t seed;
  uint32_t n;                   /* members; cfg.clients client nodes follow them (ids n..) */
  const syn_proto_t *proto;
  syn_proto_cfg_t cfg;          /* protocol params, client count, application */
  bool crypto;                  /* sign and verify for real */
  syn_link_t link;              /* every link's default */
  /* Callbacks scheduled with syn_sim_at come back through on_callback with
   * their id; the caller keeps what the id stands for. */
  void *cb_ctx;
  void (*on_callback)(void *ctx, syn_sim_t *sim, uint64_t id);
} syn_sim_config_t;

int syn_sim_new(syn_sim_t **out, const syn_sim_config_t *cfg);
void syn_sim_free(syn_sim_t *sim);

int64_t syn_sim_now(const syn_sim_t *sim);
uint32_t syn_sim_n(const syn_sim_t *sim);   /* every node: members and clients */
syn_node_t *syn_sim_node(syn_sim_t *sim, uint32_t id);
syn_prng_t *syn_sim_prng(syn_sim_t *sim);
syn_history_t *syn_sim_history(syn_sim_t *sim);
const syn_sim_stats_t *syn_sim_stats(const syn_sim_t *sim);

/* Schedules callback id at absolute virtual time at_ns (>= now). */
int syn_sim_at(syn_sim_t *sim, int64_t at_ns, uint64_t id);
/* Schedules a client request at node for now; it is recorded as a
 * submission when the node takes it (not if the node is down by then). */
int syn_sim_submit(syn_sim_t *sim, uint32_t node, const uint8_t *op, size_t len);

/* Runs events until the heap is empty, virtual time would pass until_ns, or
 * max_events were processed. Returns the number processed. */
uint64_t syn_sim_run(syn_sim_t *sim, int64_t until_ns, uint64_t max_events);
/* Makes a running syn_sim_run return after the current event. */
void syn_sim_halt(syn_sim_t *sim);
/* True when no event is pending. */
bool syn_sim_idle(const syn_sim_t *sim);

/* Network model. */
int syn_sim_set_link(syn_sim_t *sim, uint32_t from, uint32_t to, const syn_link_t *link);
const syn_link_t *syn_sim_link(const syn_sim_t *sim, uint32_t from, uint32_t to);
/* Blocks (or unblocks) frames from → to; frames in flight still arrive. */
void syn_sim_block(syn_sim_t *sim, uint32_t from, uint32_t to, bool blocked);
/* Unblocks every link. */
void syn_sim_heal(syn_sim_t *sim);

/* Faults. */
void syn_sim_crash(syn_sim_t *sim, uint32_t node);

/* How a crashed node comes back. */
typedef enum {
  SYN_RESTART_AMNESIA = 1,   /* disk lost: empty records, fresh state, its delivery history starts anew */
  SYN_RESTART_RECORDS,       /* from its records: reset, init, recover each record, START (needs recover) */
  SYN_RESTART_MEMORY,        /* its whole in-memory state kept (a pause more than a crash) */
} syn_restart_t;
/* Brings a crashed (or failed) node back, and its twin if it has one.
 * -SYN_ESTATE if it is up, -SYN_EINVAL for RECORDS when its protocol keeps
 * no records; a record the protocol cannot use fails the restart with its
 * error (syn_sim_error says which record) and the node stays down. */
int syn_sim_restart(syn_sim_t *sim, uint32_t node, syn_restart_t mode);
/* Why the last syn_sim_restart failed ("" after a success). */
const char *syn_sim_error(const syn_sim_t *sim);

/* The durable records of a node (its first instance, not a twin). */
typedef struct {
  uint64_t records, bytes;               /* held now */
  uint64_t max_records, max_bytes;       /* the most held at once */
  uint64_t persists, forgets, syncs, sync_failures;
  uint64_t unsynced_sends;               /* frames sent while one of the sender's persists was
                                            not yet synced: DESIGN.md's rule says 0 */
  bool full;                             /* a persist was refused by a limit: the next sync fails */
  bool fail_sync;                        /* injected: every sync fails (a broken disk) */
} syn_store_stats_t;
const syn_store_stats_t *syn_sim_store(const syn_sim_t *sim, uint32_t node);
/* Every later sync of node fails (or works again). */
void syn_sim_fail_sync(syn_sim_t *sim, uint32_t node, bool fail);
/* Record i (0..records-1) in (kind, key) order; the pointer is valid until the store changes. */
int syn_sim_record_get(const syn_sim_t *sim, uint32_t node, uint64_t i, uint32_t *kind, uint64_t *key,
                       const uint8_t **data, size_t *len);
/* Writes (data != NULL) or deletes record (kind, key) of node directly, as a
 * disk fault or an operator would (data is stored as given, seal included). */
int syn_sim_record_set(syn_sim_t *sim, uint32_t node, uint32_t kind, uint64_t key, const uint8_t *data,
                       size_t len);
/* Twins: a second instance of node (same id, same key), started now; the
 * node counts as Byzantine from then on. Two worlds: a twinned node's first
 * instance is in world A, its twin in world B; every other node is in world
 * A unless syn_sim_world_b put it in B. A twinned instance's frames reach
 * only nodes of its own world; a frame to a twinned node reaches its
 * instance in the sender's world. -SYN_ESTATE if node already has a twin. */
int syn_sim_twin(syn_sim_t *sim, uint32_t node);
void syn_sim_world_b(syn_sim_t *sim, uint32_t node, bool b);
syn_node_t *syn_sim_twin_node(syn_sim_t *sim, uint32_t node);   /* NULL when none */
/* The node's clock reads offset_ns + now · (1 + rate_ppm / 1e6). */
void syn_sim_skew(syn_sim_t *sim, uint32_t node, int64_t offset_ns, int64_t rate_ppm);

/* The trace hash so far (32 bytes) and its hex form (65 bytes). */
void syn_sim_trace_hash(syn_sim_t *sim, uint8_t out[32]);
/* Records every processed event to f as JSON lines (NULL stops). */
void syn_sim_record(syn_sim_t *sim, FILE *f);

#endif
