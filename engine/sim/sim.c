/* sim.c — the deterministic simulator (see sim.h). Owns virtual time, the
 * event heap, the network model, crash/restart/skew, the nodes' record
 * stores and the trace hash. Records do not enter the trace hash: they
 * follow from the events, which do.
 * Never reads the wall clock, never calls Lua, never iterates in an order
 * that is not defined by the event heap's (time, insertion) key. */
#include "sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EV_FRAME = 1, EV_TIMER, EV_CALLBACK, EV_REQUEST };

#define EV_TWIN 0x80         /* kind bit: the event is for a node's twin (its copy in world B) */

typedef struct {
  int64_t at_ns;
  uint64_t order;          /* insertion counter: the deterministic tie-break */
  uint8_t kind;            /* EV_* | EV_TWIN */
  uint32_t node;           /* the node the event happens at */
  uint32_t from;           /* FRAME: sender · TIMER: timer id */
  uint64_t x;              /* TIMER: generation · CALLBACK: id */
  uint8_t *data;           /* FRAME: frame bytes · REQUEST: op bytes (owned) */
  uint32_t len;
} event_t;

#define TRACE_CHUNK_BYTES 65536

/* One node instance's durable records, sorted by (kind, key). A crash in
 * the sim falls between two events, so every batch's sync has happened by
 * then: what is here is what survived. */
typedef struct {
  uint32_t kind;
  uint64_t key;
  uint8_t *data;
  uint32_t len;
} record_t;

typedef struct {
  record_t *recs;
  uint32_t cap;
  uint64_t unsynced;          /* persists since the last sync */
  syn_store_stats_t st;
} store_t;

struct syn_sim {
  syn_sim_config_t cfg;
  int64_t now_ns;
  uint64_t order;
  syn_prng_t prng;
  event_t *heap;
  uint32_t heap_len, heap_cap;
  uint32_t n;
  syn_node_t **nodes;
  syn_identity_t *ids;
  syn_keyring_t ring;
  syn_effects_t fx;
  syn_runtime_t rt;
  syn_link_t **links;       /* n*n overrides, NULL = cfg.link */
  bool *blocked;            /* n*n */
  int64_t *fifo_at;         /* n*n: last scheduled arrival per link */
  int64_t *skew_offset_ns, *skew_rate_ppm;
  syn_node_t **twin;        /* n: a node's second instance (same id and key), or NULL */
  store_t *stores;          /* 2n: node i's records at i, its twin's at n + i */
  uint64_t *epoch_base;     /* n: a client restarted from records: 1 + the submissions it had
                               taken before (its epoch starts at its next answer); 0: none */
  char why[256];            /* why the last restart failed */
  bool *world_b;            /* n: an untwinned node in world B (talks to the twins) */
  syn_history_t history;
  syn_sim_stats_t stats;
  crypto_generichash_state trace;
  uint8_t trace_buf[TRACE_CHUNK_BYTES];
  size_t trace_len;
  FILE *record;
  bool halt;
};

/* ---- distributions ---- */

int64_t syn_dist_sample(const syn_dist_t *d, syn_prng_t *p) {
  double v = 0;
  switch (d->kind) {
  case SYN_DIST_CONSTANT: v = d->a; break;
  case SYN_DIST_UNIFORM: v = d->a + (d->b - d->a) * syn_prng_unit(p); break;
  case SYN_DIST_NORMAL: v = d->a + d->b * syn_prng_normal(p); break;
  case SYN_DIST_EXPONENTIAL: v = -d->a * log(1.0 - syn_prng_unit(p)); break;
  case SYN_DIST_PARETO: v = d->a / pow(1.0 - syn_prng_unit(p), 1.0 / d->b); break;
  }
  if (!(v > 0)) return 0;                       /* also catches NaN */
  if (v > 9.0e18) return (int64_t)9.0e18;
  return (int64_t)v;
}

/* ---- trace hash ---- */

static void trace_flush(syn_sim_t *sim) {
  crypto_generichash_update(&sim->trace, sim->trace_buf, sim->trace_len);
  sim->trace_len = 0;
}

static void trace_fold(syn_sim_t *sim, const void *data, size_t len) {
  const uint8_t *p = data;
  while (len > 0) {
    size_t room = TRACE_CHUNK_BYTES - sim->trace_len;
    size_t take = len < room ? len : room;
    memcpy(sim->trace_buf + sim->trace_len, p, take);
    sim->trace_len += take; p += take; len -= take;
    if (sim->trace_len == TRACE_CHUNK_BYTES) trace_flush(sim);
  }
}

static void trace_event(syn_sim_t *sim, const event_t *e) {
  uint8_t rec[29];
  syn_put_u64(rec, (uint64_t)e->at_ns);
  rec[8] = e->kind;
  syn_put_u32(rec + 9, e->node);
  syn_put_u32(rec + 13, e->from);
  syn_put_u64(rec + 17, e->x);
  syn_put_u32(rec + 25, e->len);
  trace_fold(sim, rec, sizeof rec);
  if (e->len) trace_fold(sim, e->data, e->len);
}

void syn_sim_trace_hash(syn_sim_t *sim, uint8_t out[32]) {
  trace_flush(sim);
  crypto_generichash_state copy = sim->trace;   /* the running hash keeps going */
  crypto_generichash_final(&copy, out, 32);
}

void syn_sim_record(syn_sim_t *sim, FILE *f) { sim->record = f; }

static void record_event(syn_sim_t *sim, const event_t *e) {
  static const char *const kinds[] = { "?", "frame", "timer", "callback", "request" };
  uint8_t kind = e->kind & ~EV_TWIN;
  fprintf(sim->record, "{\"t\":%lld,\"ev\":\"%s\",\"node\":%u%s", (long long)e->at_ns, kinds[kind], e->node,
          e->kind & EV_TWIN ? ",\"twin\":true" : "");
  if (kind == EV_FRAME) {
    const syn_msg_def_t *def = e->len >= SYN_WIRE_HEADER_BYTES ? syn_wire_def(syn_get_u16(e->data + 5)) : NULL;
    fprintf(sim->record, ",\"from\":%u,\"type\":\"%s\",\"bytes\":%u", e->from, def ? def->name : "?", e->len);
  } else if (kind == EV_TIMER) {
    fprintf(sim->record, ",\"timer\":%u", e->from);
  } else if (kind == EV_CALLBACK) {
    fprintf(sim->record, ",\"id\":%llu", (unsigned long long)e->x);
  }
  fputs("}\n", sim->record);
}

/* ---- the heap ---- */

static bool before(const event_t *a, const event_t *b) {
  return a->at_ns < b->at_ns || (a->at_ns == b->at_ns && a->order < b->order);
}

static int push(syn_sim_t *sim, event_t e) {
  if (sim->heap_len == sim->heap_cap) {
    if (sim->heap_cap >= SYN_MAX_SIM_EVENTS) { free(e.data); return -SYN_ELIMIT; }
    uint32_t cap = sim->heap_cap ? sim->heap_cap * 2 : 1024;
    if (cap > SYN_MAX_SIM_EVENTS) cap = SYN_MAX_SIM_EVENTS;
    event_t *h = realloc(sim->heap, cap * sizeof *h);
    if (h == NULL) { free(e.data); return -SYN_ENOMEM; }
    sim->heap = h; sim->heap_cap = cap;
  }
  SYN_ASSERT(e.at_ns >= sim->now_ns);
  e.order = sim->order++;
  uint32_t i = sim->heap_len++;
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!before(&e, &sim->heap[parent])) break;
    sim->heap[i] = sim->heap[parent];
    i = parent;
  }
  sim->heap[i] = e;
  return 0;
}

static event_t pop(syn_sim_t *sim) {
  SYN_ASSERT(sim->heap_len > 0);
  event_t top = sim->heap[0];
  event_t last = sim->heap[--sim->heap_len];
  uint32_t i = 0;
  for (;;) {
    uint32_t l = 2 * i + 1, r = l + 1, m = i;
    const event_t *best = &last;
    if (l < sim->heap_len && before(&sim->heap[l], best)) { m = l; best = &sim->heap[l]; }
    if (r < sim->heap_len && before(&sim->heap[r], best)) { m = r; }
    if (m == i) break;
    sim->heap[i] = sim->heap[m];
    i = m;
  }
  if (sim->heap_len > 0) sim->heap[i] = last;
  return top;
}

/* ---- the runtime the nodes see ---- */

static int64_t local_now(syn_sim_t *sim, uint32_t node) {
  int64_t rate = sim->skew_rate_ppm[node];
  return sim->skew_offset_ns[node] + sim->now_ns + (int64_t)((double)sim->now_ns * (double)rate / 1e6);
}

static int64_t rt_now(void *ctx, const syn_node_t *n) { return local_now(ctx, n->id); }

static int schedule_frame(syn_sim_t *sim, uint32_t from, uint32_t to, const uint8_t *frame,
                          size_t len, int64_t at_ns, bool to_twin) {
  uint8_t *copy = malloc(len);
  if (copy == NULL) return -SYN_ENOMEM;
  memcpy(copy, frame, len);
  event_t e = { .at_ns = at_ns, .kind = EV_FRAME | (to_twin ? EV_TWIN : 0), .node = to, .from = from,
                .data = copy, .len = (uint32_t)len };
  return push(sim, e);
}

/* Twins: which world a node instance lives in (false: A). */
static bool is_twin(const syn_sim_t *sim, const syn_node_t *n) { return sim->twin[n->id] == n; }
static bool world_of(const syn_sim_t *sim, const syn_node_t *n) {
  return sim->twin[n->id] ? is_twin(sim, n) : sim->world_b[n->id];
}

/* ---- durable records ---- */

static store_t *store_of(syn_sim_t *sim, const syn_node_t *n) {
  return &sim->stores[(sim->twin[n->id] == n ? sim->n : 0) + n->id];
}

/* The index of (kind, key), or where it would go (*found false). */
static uint32_t store_find(const store_t *s, uint32_t kind, uint64_t key, bool *found) {
  uint32_t lo = 0, hi = (uint32_t)s->st.records;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const record_t *r = &s->recs[mid];
    if (r->kind < kind || (r->kind == kind && r->key < key)) lo = mid + 1;
    else hi = mid;
  }
  *found = lo < s->st.records && s->recs[lo].kind == kind && s->recs[lo].key == key;
  return lo;
}

static void store_drop(store_t *s, uint32_t i) {
  s->st.bytes -= s->recs[i].len;
  free(s->recs[i].data);
  memmove(&s->recs[i], &s->recs[i + 1], (size_t)(s->st.records - i - 1) * sizeof *s->recs);
  s->st.records--;
}

/* Upserts (kind, key); a write past a limit is refused and marks the store
 * full, so the node's next sync fails (a full disk). */
static int store_put(store_t *s, uint32_t kind, uint64_t key, const uint8_t *data, size_t len) {
  bool found;
  uint32_t i = store_find(s, kind, key, &found);
  uint64_t old = found ? s->recs[i].len : 0;
  if (s->st.bytes - old + len > SYN_MAX_SIM_STORE_BYTES || (!found && s->st.records >= SYN_MAX_SIM_RECORDS)) {
    s->st.full = true;
    return -SYN_ELIMIT;
  }
  uint8_t *copy = malloc(len ? len : 1);
  if (copy == NULL) { s->st.full = true; return -SYN_ENOMEM; }
  memcpy(copy, data, len);
  if (!found) {
    if (s->st.records == s->cap) {
      uint32_t cap = s->cap ? s->cap * 2 : 64;
      record_t *r = realloc(s->recs, cap * sizeof *r);
      if (r == NULL) { free(copy); s->st.full = true; return -SYN_ENOMEM; }
      s->recs = r; s->cap = cap;
    }
    memmove(&s->recs[i + 1], &s->recs[i], (size_t)(s->st.records - i) * sizeof *s->recs);
    s->st.records++;
    s->recs[i] = (record_t){ .kind = kind, .key = key };
  } else {
    free(s->recs[i].data);
  }
  s->recs[i].data = copy;
  s->recs[i].len = (uint32_t)len;
  s->st.bytes = s->st.bytes - old + len;
  if (s->st.records > s->st.max_records) s->st.max_records = s->st.records;
  if (s->st.bytes > s->st.max_bytes) s->st.max_bytes = s->st.bytes;
  return 0;
}

static void store_clear(store_t *s) {
  for (uint64_t i = 0; i < s->st.records; i++) free(s->recs[i].data);
  s->st.records = 0;
  s->st.bytes = 0;
  s->st.full = false;
  s->unsynced = 0;
}

static void rt_persist(void *ctx, syn_node_t *n, uint32_t kind, uint64_t key, const uint8_t *data, size_t len) {
  store_t *s = store_of(ctx, n);
  s->st.persists++;
  s->unsynced++;
  (void)store_put(s, kind, key, data, len);
}

static void rt_forget(void *ctx, syn_node_t *n, uint32_t kind, uint64_t below) {
  store_t *s = store_of(ctx, n);
  s->st.forgets++;
  bool found;
  uint32_t i = store_find(s, kind, 0, &found);
  while (i < s->st.records && s->recs[i].kind == kind && s->recs[i].key < below) store_drop(s, i);
}

static int rt_sync(void *ctx, syn_node_t *n) {
  store_t *s = store_of(ctx, n);
  s->st.syncs++;
  s->unsynced = 0;
  if (s->st.full || s->st.fail_sync) { s->st.sync_failures++; return -SYN_EIO; }
  return 0;
}

static void rt_send(void *ctx, syn_node_t *from, uint32_t to, const uint8_t *frame, size_t len,
                    int64_t extra_delay_ns) {
  syn_sim_t *sim = ctx;
  uint32_t f = from->id;
  sim->stats.frames_sent++;
  store_t *st = store_of(sim, from);
  if (st->unsynced) st->st.unsynced_sends++;
  if (sim->blocked[(size_t)f * sim->n + to]) { sim->stats.frames_blocked++; return; }
  /* Twins: a twinned sender reaches only its own world; a twinned receiver
   * gets the frame at its instance in the sender's world. */
  bool world = world_of(sim, from);
  if (sim->twin[f] && !sim->twin[to] && sim->world_b[to] != world) { sim->stats.frames_blocked++; return; }
  bool to_twin = sim->twin[to] != NULL && world;
  const syn_link_t *link = syn_sim_link(sim, f, to);
  if (link->loss > 0 && syn_prng_unit(&sim->prng) < link->loss) { sim->stats.frames_lost++; return; }
  int copies = 1;
  if (link->duplicate > 0 && syn_prng_unit(&sim->prng) < link->duplicate) {
    copies = 2;
    sim->stats.frames_duplicated++;
  }
  for (int c = 0; c < copies; c++) {
    int64_t at = sim->now_ns + (extra_delay_ns > 0 ? extra_delay_ns : 0) + syn_dist_sample(&link->latency, &sim->prng);
    int64_t *last = &sim->fifo_at[(size_t)f * sim->n + to];
    if (link->fifo) {
      if (at < *last) at = *last;
      *last = at;
    }
    if (schedule_frame(sim, f, to, frame, len, at, to_twin) != 0) sim->stats.frames_lost++;
  }
}

static void rt_timer(void *ctx, syn_node_t *n, uint32_t timer, uint64_t gen, int64_t after_ns) {
  syn_sim_t *sim = ctx;
  if (after_ns < 0) return;   /* cancelled: the stale event is ignored by its generation */
  int64_t rate = sim->skew_rate_ppm[n->id];
  int64_t real_ns = (int64_t)((double)after_ns * 1e6 / (1e6 + (double)rate));
  event_t e = { .at_ns = sim->now_ns + real_ns, .kind = EV_TIMER | (is_twin(sim, n) ? EV_TWIN : 0), .node = n->id,
                .from = timer, .x = gen };
  int rc = push(sim, e);
  SYN_ASSERT(rc == 0);
}

static void rt_deliver(void *ctx, syn_node_t *n, uint64_t seq, uint32_t origin, uint64_t ts,
                       const uint8_t *value, size_t len) {
  syn_sim_t *sim = ctx;
  if (is_twin(sim, n)) return;   /* the node is Byzantine; its first instance speaks for the history */
  if (sim->epoch_base[n->id]) {
    /* A client answers its ops one at a time, in the order it took them:
     * its first answer since it restarted is to the first op it took since. */
    int rc = syn_history_client_epoch(&sim->history, n->id, sim->epoch_base[n->id] - 1, seq);
    if (rc) SYN_LOG_WARN("sim: epoch of client %u not recorded: %s", n->id, syn_strerror(rc));
    sim->epoch_base[n->id] = 0;
  }
  uint8_t rec[24];
  syn_put_u32(rec, n->id); syn_put_u64(rec + 4, seq); syn_put_u32(rec + 12, origin); syn_put_u64(rec + 16, ts);
  trace_fold(sim, rec, sizeof rec);
  trace_fold(sim, value, len);
  int rc = syn_history_deliver(&sim->history, n->id, seq, origin, ts, sim->now_ns, value, len);
  if (rc) SYN_LOG_WARN("sim: history of node %u not recorded: %s", n->id, syn_strerror(rc));
}

static void rt_commit(void *ctx, syn_node_t *n, uint64_t seq, const uint8_t *digest) {
  syn_sim_t *sim = ctx;
  if (is_twin(sim, n)) return;
  uint8_t rec[12];
  syn_put_u32(rec, n->id); syn_put_u64(rec + 4, seq);
  trace_fold(sim, rec, sizeof rec);
  trace_fold(sim, digest, SYN_DIGEST_BYTES);
  int rc = syn_history_commit(&sim->history, n->id, seq, digest, sim->now_ns);
  if (rc) SYN_LOG_WARN("sim: commit of node %u not recorded: %s", n->id, syn_strerror(rc));
}

static void rt_trace(void *ctx, syn_node_t *n, const char *note, size_t len) {
  syn_sim_t *sim = ctx;
  if (sim->record) fprintf(sim->record, "{\"t\":%lld,\"ev\":\"note\",\"node\":%u,\"note\":\"%.*s\"}\n",
                           (long long)sim->now_ns, n->id, (int)len, note);
}

/* ---- life cycle ---- */

int syn_sim_new(syn_sim_t **out, const syn_sim_config_t *cfg) {
  if (cfg->n == 0 || cfg->proto == NULL) return -SYN_EINVAL;
  if ((uint64_t)cfg->n + cfg->cfg.clients > SYN_MAX_NODES) return -SYN_ELIMIT;
  int rc = syn_crypto_init();
  if (rc) return rc;
  syn_sim_t *sim = calloc(1, sizeof *sim);
  if (sim == NULL) return -SYN_ENOMEM;
  sim->cfg = *cfg;
  uint32_t n = sim->n = cfg->n + cfg->cfg.clients;
  syn_prng_seed(&sim->prng, cfg->seed);
  crypto_generichash_init(&sim->trace, NULL, 0, 32);
  sim->rt = (syn_runtime_t){ .ctx = sim, .send = rt_send, .timer = rt_timer, .deliver = rt_deliver,
                             .trace = rt_trace, .commit = rt_commit, .now = rt_now,
                             .persist = rt_persist, .forget = rt_forget, .sync = rt_sync };
  sim->nodes = calloc(n, sizeof *sim->nodes);
  sim->ids = calloc(n, sizeof *sim->ids);
  sim->links = calloc((size_t)n * n, sizeof *sim->links);
  sim->blocked = calloc((size_t)n * n, sizeof *sim->blocked);
  sim->fifo_at = calloc((size_t)n * n, sizeof *sim->fifo_at);
  sim->skew_offset_ns = calloc(n, sizeof *sim->skew_offset_ns);
  sim->skew_rate_ppm = calloc(n, sizeof *sim->skew_rate_ppm);
  sim->twin = calloc(n, sizeof *sim->twin);
  sim->world_b = calloc(n, sizeof *sim->world_b);
  sim->stores = calloc(2 * (size_t)n, sizeof *sim->stores);
  sim->epoch_base = calloc(n, sizeof *sim->epoch_base);
  if (!sim->nodes || !sim->ids || !sim->links || !sim->blocked || !sim->fifo_at || !sim->skew_offset_ns ||
      !sim->skew_rate_ppm || !sim->twin || !sim->world_b || !sim->stores || !sim->epoch_base) {
    rc = -SYN_ENOMEM;
    goto fail;
  }
  if ((rc = syn_fx_new(&sim->fx)) != 0) goto fail;
  if ((rc = syn_history_init(&sim->history, cfg->n)) != 0) goto fail;
  if ((rc = syn_history_set_clients(&sim->history, cfg->cfg.clients)) != 0) goto fail;
  sim->ring.n = n;
  for (uint32_t i = 0; i < n; i++) {
    syn_identity_derive(&sim->ids[i], i, cfg->seed);
    memcpy(sim->ring.pk[i], sim->ids[i].pk, SYN_PK_BYTES);
  }
  syn_proto_cfg_t pcfg = cfg->cfg;
  pcfg.ring = cfg->crypto ? &sim->ring : NULL;
  for (uint32_t i = 0; i < n; i++) {
    rc = syn_node_new(&sim->nodes[i], cfg->proto, &pcfg, i, n, &sim->ids[i], cfg->crypto, &sim->rt, &sim->fx);
    if (rc) goto fail;
  }
  for (uint32_t i = 0; i < n; i++) syn_node_start(sim->nodes[i]);
  *out = sim;
  return 0;
fail:
  syn_sim_free(sim);
  return rc;
}

void syn_sim_free(syn_sim_t *sim) {
  if (sim == NULL) return;
  for (uint32_t i = 0; i < sim->heap_len; i++) free(sim->heap[i].data);
  free(sim->heap);
  if (sim->nodes) for (uint32_t i = 0; i < sim->n; i++) syn_node_free(sim->nodes[i]);
  free(sim->nodes);
  if (sim->twin) for (uint32_t i = 0; i < sim->n; i++) syn_node_free(sim->twin[i]);
  free(sim->twin);
  free(sim->world_b);
  if (sim->stores) for (uint32_t i = 0; i < 2 * sim->n; i++) { store_clear(&sim->stores[i]); free(sim->stores[i].recs); }
  free(sim->stores);
  free(sim->epoch_base);
  if (sim->ids) sodium_memzero(sim->ids, sim->n * sizeof *sim->ids);
  free(sim->ids);
  if (sim->links) for (size_t i = 0; i < (size_t)sim->n * sim->n; i++) free(sim->links[i]);
  free(sim->links);
  free(sim->blocked);
  free(sim->fifo_at);
  free(sim->skew_offset_ns);
  free(sim->skew_rate_ppm);
  syn_fx_free(&sim->fx);
  syn_history_free(&sim->history);
  free(sim);
}

int64_t syn_sim_now(const syn_sim_t *sim) { return sim->now_ns; }
uint32_t syn_sim_n(const syn_sim_t *sim) { return sim->n; }
syn_node_t *syn_sim_node(syn_sim_t *sim, uint32_t id) { return id < sim->n ? sim->nodes[id] : NULL; }
syn_prng_t *syn_sim_prng(syn_sim_t *sim) { return &sim->prng; }
syn_history_t *syn_sim_history(syn_sim_t *sim) { return &sim->history; }
const syn_sim_stats_t *syn_sim_stats(const syn_sim_t *sim) { return &sim->stats; }
bool syn_sim_idle(const syn_sim_t *sim) { return sim->heap_len == 0; }
void syn_sim_halt(syn_sim_t *sim) { sim->halt = true; }

int syn_sim_at(syn_sim_t *sim, int64_t at_ns, uint64_t id) {
  if (at_ns < sim->now_ns) return -SYN_EINVAL;
  event_t e = { .at_ns = at_ns, .kind = EV_CALLBACK, .x = id };
  return push(sim, e);
}

int syn_sim_submit(syn_sim_t *sim, uint32_t node, const uint8_t *op, size_t len) {
  if (node >= sim->n) return -SYN_EINVAL;
  if (len > SYN_MAX_OP_BYTES) return -SYN_ETOOBIG;
  uint8_t *copy = malloc(len ? len : 1);
  if (copy == NULL) return -SYN_ENOMEM;
  memcpy(copy, op, len);
  event_t e = { .at_ns = sim->now_ns, .kind = EV_REQUEST, .node = node, .data = copy, .len = (uint32_t)len };
  return push(sim, e);
}

static void process(syn_sim_t *sim, event_t *e) {
  sim->stats.events++;
  trace_event(sim, e);
  if (sim->record) record_event(sim, e);
  syn_node_t *node = e->kind == EV_CALLBACK ? NULL : (e->kind & EV_TWIN) ? sim->twin[e->node] : sim->nodes[e->node];
  switch (e->kind & ~EV_TWIN) {
  case EV_FRAME:
    if (!node->up) { sim->stats.frames_to_down_node++; node->c.down_drops++; break; }
    sim->stats.frames_delivered++;
    syn_node_receive(node, e->data, e->len);
    break;
  case EV_TIMER:
    sim->stats.timers_fired++;
    syn_node_timer_fired(node, e->from, e->x);
    break;
  case EV_REQUEST:
    /* A request counts as submitted once the node takes it: a client cannot
     * hand anything to a crashed node. */
    if (!node->up) { sim->stats.requests_to_down_node++; break; }
    if (syn_history_submit(&sim->history, e->node, sim->now_ns, e->data, e->len) != 0) {
      sim->stats.requests_unrecorded++;
      break;
    }
    syn_node_request(node, e->data, e->len);
    break;
  case EV_CALLBACK:
    sim->stats.callbacks++;
    if (sim->cfg.on_callback) sim->cfg.on_callback(sim->cfg.cb_ctx, sim, e->x);
    break;
  }
  free(e->data);
}

uint64_t syn_sim_run(syn_sim_t *sim, int64_t until_ns, uint64_t max_events) {
  uint64_t done = 0;
  sim->halt = false;
  while (sim->heap_len > 0 && done < max_events && !sim->halt) {
    if (sim->heap[0].at_ns > until_ns) break;
    event_t e = pop(sim);
    sim->now_ns = e.at_ns;
    process(sim, &e);
    done++;
  }
  if (!sim->halt && (sim->heap_len == 0 || sim->heap[0].at_ns > until_ns)) {
    if (until_ns > sim->now_ns && until_ns != INT64_MAX) sim->now_ns = until_ns;
  }
  return done;
}

/* ---- network and faults ---- */

int syn_sim_set_link(syn_sim_t *sim, uint32_t from, uint32_t to, const syn_link_t *link) {
  SYN_ASSERT(from < sim->n && to < sim->n);
  syn_link_t **slot = &sim->links[(size_t)from * sim->n + to];
  if (*slot == NULL) *slot = malloc(sizeof **slot);
  if (*slot == NULL) return -SYN_ENOMEM;
  **slot = *link;
  return 0;
}

const syn_link_t *syn_sim_link(const syn_sim_t *sim, uint32_t from, uint32_t to) {
  const syn_link_t *l = sim->links[(size_t)from * sim->n + to];
  return l ? l : &sim->cfg.link;
}

void syn_sim_block(syn_sim_t *sim, uint32_t from, uint32_t to, bool blocked) {
  SYN_ASSERT(from < sim->n && to < sim->n);
  sim->blocked[(size_t)from * sim->n + to] = blocked;
}

void syn_sim_heal(syn_sim_t *sim) { memset(sim->blocked, 0, (size_t)sim->n * sim->n * sizeof *sim->blocked); }

static void crash_one(syn_node_t *n) {
  n->up = false;
  /* A crashed process loses its timers; generations make the queued ones stale. */
  for (uint32_t t = 0; t < SYN_MAX_TIMERS; t++) { n->timer_armed[t] = false; n->timer_gen[t]++; }
}

void syn_sim_crash(syn_sim_t *sim, uint32_t node) {
  SYN_ASSERT(node < sim->n);
  crash_one(sim->nodes[node]);
  if (sim->twin[node]) crash_one(sim->twin[node]);
}

int syn_sim_twin(syn_sim_t *sim, uint32_t node) {
  if (node >= sim->n) return -SYN_EINVAL;
  if (sim->twin[node]) return -SYN_ESTATE;
  syn_proto_cfg_t pcfg = sim->nodes[node]->cfg;
  syn_node_t *t;
  int rc = syn_node_new(&t, sim->cfg.proto, &pcfg, node, sim->n, &sim->ids[node], sim->cfg.crypto, &sim->rt, &sim->fx);
  if (rc) return rc;
  sim->twin[node] = t;
  t->ever_byzantine = sim->nodes[node]->ever_byzantine = true;
  sim->history.honest[node] = false;
  syn_node_start(t);
  return 0;
}

void syn_sim_world_b(syn_sim_t *sim, uint32_t node, bool b) {
  SYN_ASSERT(node < sim->n);
  sim->world_b[node] = b;
}

syn_node_t *syn_sim_twin_node(syn_sim_t *sim, uint32_t node) { return node < sim->n ? sim->twin[node] : NULL; }

/* Re-creates instance n from its records: reset, init, each record through
 * recover, then the end mark. */
static int replay(syn_sim_t *sim, syn_node_t *n) {
  store_t *s = store_of(sim, n);
  int rc = syn_node_reset(n);
  if (rc) { snprintf(sim->why, sizeof sim->why, "init: %s", syn_strerror(rc)); return rc; }
  for (uint64_t i = 0; i < s->st.records; i++) {
    const record_t *r = &s->recs[i];
    rc = syn_node_recover(n, r->kind, r->key, r->data, r->len);
    if (rc) {
      snprintf(sim->why, sizeof sim->why, "record '%s' (kind %u) key %llu: %s", syn_node_record_kind(n, r->kind),
               r->kind, (unsigned long long)r->key, syn_strerror(rc));
      return rc;
    }
  }
  rc = syn_node_recover(n, SYN_RECORD_END, 0, NULL, 0);
  if (rc) {
    snprintf(sim->why, sizeof sim->why, "its %llu records do not form a whole state: %s",
             (unsigned long long)s->st.records, syn_strerror(rc));
    return rc;
  }
  s->st.full = false;
  return 0;
}

int syn_sim_restart(syn_sim_t *sim, uint32_t node, syn_restart_t mode) {
  SYN_ASSERT(node < sim->n);
  syn_node_t *n = sim->nodes[node], *t = sim->twin[node];
  sim->why[0] = '\0';
  if (n->up) return -SYN_ESTATE;
  int rc = 0;
  switch (mode) {
  case SYN_RESTART_AMNESIA:
    rc = syn_node_reset(n);
    if (rc) return rc;
    syn_history_reset_node(&sim->history, node);
    store_clear(&sim->stores[node]);
    if (t) {
      if ((rc = syn_node_reset(t)) != 0) return rc;
      store_clear(&sim->stores[sim->n + node]);
    }
    break;
  case SYN_RESTART_RECORDS:
    if (sim->cfg.proto->recover == NULL) {
      snprintf(sim->why, sizeof sim->why, "protocol %s keeps no records", sim->cfg.proto->name);
      return -SYN_EINVAL;
    }
    /* The delivery history stays: what the node delivered, it persisted first. */
    if ((rc = replay(sim, n)) != 0) return rc;
    if (t && (rc = replay(sim, t)) != 0) return rc;
    if (node >= sim->cfg.n) {
      /* A client: what it had taken but not had answered is lost with its
       * memory, and it numbers its requests anew above what it reserved:
       * its answers from now on are to the submissions after these. */
      uint64_t taken = 0;
      for (uint32_t i = 0; i < sim->history.nsubs; i++) taken += sim->history.subs[i].node == node;
      sim->epoch_base[node] = taken + 1;
    }
    break;
  case SYN_RESTART_MEMORY:
    n->failed = 0;
    if (t) t->failed = 0;
    break;
  default:
    return -SYN_EINVAL;
  }
  n->up = true;
  syn_node_start(n);
  if (t) { t->up = true; syn_node_start(t); }
  return 0;
}

const char *syn_sim_error(const syn_sim_t *sim) { return sim->why; }

const syn_store_stats_t *syn_sim_store(const syn_sim_t *sim, uint32_t node) {
  SYN_ASSERT(node < sim->n);
  return &sim->stores[node].st;
}

void syn_sim_fail_sync(syn_sim_t *sim, uint32_t node, bool fail) {
  SYN_ASSERT(node < sim->n);
  sim->stores[node].st.fail_sync = fail;
}

int syn_sim_record_get(const syn_sim_t *sim, uint32_t node, uint64_t i, uint32_t *kind, uint64_t *key,
                       const uint8_t **data, size_t *len) {
  if (node >= sim->n || i >= sim->stores[node].st.records) return -SYN_EINVAL;
  const record_t *r = &sim->stores[node].recs[i];
  *kind = r->kind; *key = r->key; *data = r->data; *len = r->len;
  return 0;
}

int syn_sim_record_set(syn_sim_t *sim, uint32_t node, uint32_t kind, uint64_t key, const uint8_t *data,
                       size_t len) {
  if (node >= sim->n) return -SYN_EINVAL;
  store_t *s = &sim->stores[node];
  if (data) {
    if (len > SYN_MAX_RECORD_BYTES + SYN_RECORD_SEAL_BYTES) return -SYN_ETOOBIG;
    bool full = s->st.full;
    int rc = store_put(s, kind, key, data, len);
    s->st.full = full;   /* an operator's write is refused, not a disk filling up */
    return rc;
  }
  bool found;
  uint32_t i = store_find(s, kind, key, &found);
  if (found) store_drop(s, i);
  return 0;
}

void syn_sim_skew(syn_sim_t *sim, uint32_t node, int64_t offset_ns, int64_t rate_ppm) {
  SYN_ASSERT(node < sim->n);
  sim->skew_offset_ns[node] = offset_ns;
  sim->skew_rate_ppm[node] = rate_ppm;
}
