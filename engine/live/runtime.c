/* runtime.c — the live runtime (see runtime.h). Owns the process's nodes,
 * their uv timers, the queue between nodes of one process, frames a
 * behaviour delays, submissions waiting for results, the recent log, TOM's
 * words workload and its delivered file. The network is live/transport's. */
#include "runtime.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>

#include "../app/app.h"
#include "store.h"

#define MAX_WORDS 4096

typedef struct syn_live syn_live_t;

typedef struct {
  syn_live_t *lv;
  uint32_t local;                  /* index into lv->nodes */
  uint32_t timer;
  uint64_t gen;
  uv_timer_t h;
} ltimer_t;

typedef struct pending {
  struct pending *next;
  syn_live_done_fn done;
  void *ctx;
  int64_t at_ns;
} pending_t;

typedef struct {
  pending_t *head, *tail;
  uint32_t count;
} fifo_t;

typedef struct qframe {
  struct qframe *next;
  uint32_t to;
  size_t len;
  uint8_t frame[];
} qframe_t;

typedef struct delayed {
  uv_timer_t h;
  syn_live_t *lv;
  struct delayed *prev, *next;
  uint32_t to;
  size_t len;
  uint8_t frame[];
} delayed_t;

struct syn_live {
  syn_live_cfg_t cfg;
  char *data_dir;
  uv_loop_t *loop;
  const syn_proto_t *proto;
  syn_proto_cfg_t pcfg;
  syn_keyring_t members, ring;     /* members: keys.pub; ring: members then clients */
  syn_identity_t ident;
  uint32_t total, nclients;        /* nodes of the cluster; local clients */
  syn_runtime_t rt;
  syn_effects_t fx;
  syn_node_t **nodes;              /* [0] the member, [1..] its clients */
  ltimer_t *timers;                /* (1 + nclients) · SYN_MAX_TIMERS */
  fifo_t *waiting;                 /* per local node: submissions in order */
  uint32_t npending;
  syn_transport_t *tr;
  syn_store_t *store;              /* DATA/synod.db: the member's persisted records */
  qframe_t *qhead, *qtail;
  size_t qbytes;
  uv_idle_t drain;
  uint32_t ndelayed;
  struct delayed *delayed;
  void (*on_stop)(void *ctx);
  void *on_stop_ctx;
  uv_signal_t sigint, sigterm;
  uv_timer_t workload, progress, fatal;
  int exit_status;                 /* 1 once the store failed */
  const char *refusal;             /* why the protocol refused the last submission */
  uint64_t words_sent;
  char (*words)[32];
  uint32_t nwords;
  FILE *delivered;
  uint64_t t0_ns;
  bool stopping, started;
  uint64_t submitted, completed, failed, commits, last_commit, executed;
  uint64_t drops_misrouted, drops_sender, drops_local_full, drops_delayed_full, drops_send;
  uint64_t lat[SYN_LIVE_LATENCY_BUCKETS], lat_sum_ns, lat_count;
  syn_live_entry_t log[SYN_MAX_LIVE_LOG];
  uint64_t nlog;
};

/* ---- routing ---- */

/* ns → whole ms for uv, rounded up, without overflow. */
static uint64_t ms_ceil(int64_t ns) { return ns <= 0 ? 0 : (uint64_t)(ns / 1000000) + (ns % 1000000 != 0); }

static uint32_t owner(const syn_live_t *lv, uint32_t id) {
  if (id < lv->cfg.n) return id;
  return (id - lv->cfg.n) / lv->cfg.clients_per_node;
}

static int local_index(const syn_live_t *lv, uint32_t id) {
  if (id == lv->cfg.id) return 0;
  if (lv->nclients == 0 || id < lv->cfg.n) return -1;
  uint32_t first = lv->cfg.n + lv->cfg.id * lv->cfg.clients_per_node;
  return id >= first && id < first + lv->nclients ? (int)(id - first + 1) : -1;
}

static int local_of(const syn_live_t *lv, const syn_node_t *n) {
  int i = local_index(lv, n->id);
  SYN_ASSERT(i >= 0);
  return i;
}

static void drain_cb(uv_idle_t *h);

static void route(syn_live_t *lv, uint32_t to, const uint8_t *frame, size_t len) {
  if (lv->stopping) return;
  if (owner(lv, to) != lv->cfg.id) {
    if (syn_transport_send(lv->tr, owner(lv, to), to, frame, len) != 0) lv->drops_send++;
    return;
  }
  /* To a node of this process: queued, stepped after the current step. */
  if (local_index(lv, to) < 0 || lv->qbytes + len > SYN_MAX_LIVE_LOCAL_BYTES) { lv->drops_local_full++; return; }
  qframe_t *q = malloc(sizeof *q + len);
  if (q == NULL) { lv->drops_local_full++; return; }
  q->next = NULL; q->to = to; q->len = len;
  memcpy(q->frame, frame, len);
  if (lv->qtail) lv->qtail->next = q; else lv->qhead = q;
  lv->qtail = q;
  lv->qbytes += len;
  uv_idle_start(&lv->drain, drain_cb);
}

static void drain_cb(uv_idle_t *h) {
  syn_live_t *lv = h->data;
  qframe_t *q = lv->qhead;
  lv->qhead = lv->qtail = NULL;
  uv_idle_stop(&lv->drain);
  while (q) {
    qframe_t *next = q->next;
    lv->qbytes -= q->len;
    int i = local_index(lv, q->to);
    if (!lv->stopping && i >= 0) syn_node_receive(lv->nodes[i], q->frame, q->len);
    free(q);
    q = next;
  }
}

static void delayed_closed(uv_handle_t *h) { free(h->data); }

static void delayed_drop(delayed_t *d) {
  syn_live_t *lv = d->lv;
  if (d->prev) d->prev->next = d->next; else lv->delayed = d->next;
  if (d->next) d->next->prev = d->prev;
  lv->ndelayed--;
  uv_close((uv_handle_t *)&d->h, delayed_closed);
}

static void delayed_fire(uv_timer_t *h) {
  delayed_t *d = h->data;
  route(d->lv, d->to, d->frame, d->len);
  delayed_drop(d);
}

static void rt_send(void *ctx, syn_node_t *from, uint32_t to, const uint8_t *frame, size_t len, int64_t extra_delay_ns) {
  syn_live_t *lv = ctx;
  (void)from;
  if (to >= lv->total) { lv->drops_misrouted++; return; }
  if (extra_delay_ns <= 0) { route(lv, to, frame, len); return; }
  if (lv->ndelayed >= SYN_MAX_LIVE_DELAYED || lv->stopping) { lv->drops_delayed_full++; return; }
  delayed_t *d = malloc(sizeof *d + len);
  if (d == NULL) { lv->drops_delayed_full++; return; }
  d->lv = lv; d->to = to; d->len = len;
  memcpy(d->frame, frame, len);
  uv_timer_init(lv->loop, &d->h);
  d->h.data = d;
  d->prev = NULL;
  d->next = lv->delayed;
  if (lv->delayed) lv->delayed->prev = d;
  lv->delayed = d;
  lv->ndelayed++;
  uv_timer_start(&d->h, delayed_fire, ms_ceil(extra_delay_ns), 0);
}

/* ---- timers ---- */

static void timer_fire(uv_timer_t *h) {
  ltimer_t *t = h->data;
  if (t->lv->stopping) return;
  syn_node_timer_fired(t->lv->nodes[t->local], t->timer, t->gen);
}

static void rt_timer(void *ctx, syn_node_t *n, uint32_t timer, uint64_t gen, int64_t after_ns) {
  syn_live_t *lv = ctx;
  SYN_ASSERT(timer < SYN_MAX_TIMERS);
  ltimer_t *t = &lv->timers[(size_t)local_of(lv, n) * SYN_MAX_TIMERS + timer];
  if (after_ns < 0) { uv_timer_stop(&t->h); return; }
  t->gen = gen;
  uv_timer_start(&t->h, timer_fire, ms_ceil(after_ns), 0);
}

static int64_t rt_now(void *ctx, const syn_node_t *n) {
  (void)n;
  return (int64_t)(uv_hrtime() - ((syn_live_t *)ctx)->t0_ns);
}

/* ---- results ---- */

static void finish(syn_live_t *lv, fifo_t *f, int rc, uint64_t seq, const uint8_t *res, size_t len) {
  pending_t *p = f->head;
  if (p == NULL) return;
  f->head = p->next;
  if (f->head == NULL) f->tail = NULL;
  f->count--;
  lv->npending--;
  int64_t lat = rt_now(lv, NULL) - p->at_ns;
  if (rc == 0) {
    lv->completed++;
    uint32_t b = 0;
    while (b + 1 < SYN_LIVE_LATENCY_BUCKETS && lat >= (int64_t)1000000 << b) b++;
    lv->lat[b]++;
    lv->lat_sum_ns += (uint64_t)lat;
    lv->lat_count++;
  } else lv->failed++;
  if (p->done) p->done(p->ctx, rc, seq, res, len, lat);
  free(p);
}

static void log_entry(syn_live_t *lv, uint64_t seq, uint32_t origin, uint64_t ts, const uint8_t *v, size_t len) {
  syn_live_entry_t *e = &lv->log[lv->nlog++ % SYN_MAX_LIVE_LOG];
  e->seq = seq; e->origin = origin; e->ts = ts; e->at_ns = rt_now(lv, NULL);
  e->len = (uint16_t)(len > UINT16_MAX ? UINT16_MAX : len);
  size_t k = len < sizeof e->value - 1 ? len : sizeof e->value - 1;
  memcpy(e->value, v, k);
  e->value[k] = '\0';
}

static void rt_deliver(void *ctx, syn_node_t *n, uint64_t seq, uint32_t origin, uint64_t ts,
                       const uint8_t *value, size_t len) {
  syn_live_t *lv = ctx;
  int i = local_of(lv, n);
  if (i > 0) {   /* a client's result: seq is its request ts, ts the replicas' slot */
    finish(lv, &lv->waiting[i], 0, ts, value, len);
    return;
  }
  lv->executed++;
  log_entry(lv, seq, origin, ts, value, len);
  if (lv->delivered) {
    fprintf(lv->delivered, "%llu %u %llu %.*s\n", (unsigned long long)seq, origin, (unsigned long long)ts,
            (int)len, (const char *)value);
    fflush(lv->delivered);
  }
  if (lv->nclients == 0 && origin == lv->cfg.id) finish(lv, &lv->waiting[0], 0, seq, value, len);
}

static void rt_trace(void *ctx, syn_node_t *n, const char *note, size_t len) {
  (void)ctx;
  SYN_LOG_DEBUG("node %u: %.*s", n->id, (int)len, note);
}

/* ---- durable records ----
 * The member and its clients share one store: a record's store kind is
 * (local node index << SYN_LIVE_KIND_SHIFT) | the protocol's kind. */
#define SYN_LIVE_KIND_SHIFT 20

static void fatal_fire(uv_timer_t *h) {
  syn_live_t *lv = h->data;
  syn_live_stop(lv);
}

static void store_failed(syn_live_t *lv, int rc) {
  if (lv->exit_status) return;
  lv->exit_status = 1;
  SYN_LOG_ERROR("node %u: stopping: the data directory can no longer keep what this node promised (%s): %s",
                lv->cfg.id, syn_strerror(rc), syn_store_error(lv->store));
  uv_timer_start(&lv->fatal, fatal_fire, 0, 0);   /* not from inside the step */
}

static void rt_persist(void *ctx, syn_node_t *n, uint32_t kind, uint64_t key, const uint8_t *data, size_t len) {
  syn_live_t *lv = ctx;
  uint32_t k = (uint32_t)local_of(lv, n) << SYN_LIVE_KIND_SHIFT | kind;
  int rc = syn_store_put(lv->store, k, key, data, len);
  if (rc) store_failed(lv, rc);   /* the sync that follows fails too and stops the node */
}

static void rt_forget(void *ctx, syn_node_t *n, uint32_t kind, uint64_t below) {
  syn_live_t *lv = ctx;
  int rc = syn_store_forget(lv->store, (uint32_t)local_of(lv, n) << SYN_LIVE_KIND_SHIFT | kind, below);
  if (rc) store_failed(lv, rc);
}

static int rt_sync(void *ctx, syn_node_t *n) {
  syn_live_t *lv = ctx;
  (void)n;
  int rc = syn_store_sync(lv->store);
  if (rc) { store_failed(lv, rc); return -SYN_EIO; }
  return 0;
}

typedef struct { syn_live_t *lv; char *err; size_t errlen; uint64_t count; } recover_ctx_t;

static int recover_one(void *ctx, uint32_t kind, uint64_t key, const uint8_t *data, size_t len) {
  recover_ctx_t *r = ctx;
  syn_live_t *lv = r->lv;
  uint32_t local = kind >> SYN_LIVE_KIND_SHIFT, pk = kind & ((1u << SYN_LIVE_KIND_SHIFT) - 1);
  if (local > lv->nclients) {
    snprintf(r->err, r->errlen, "%s holds a record for local node %u, which this configuration does not have "
             "(was it written with another --clients?)", lv->data_dir, local);
    return -SYN_EINVAL;
  }
  int rc = syn_node_recover(lv->nodes[local], pk, key, data, len);
  if (rc) {
    snprintf(r->err, r->errlen, "%s: record %s #%llu of node %u cannot be used: %s (the data directory is corrupt "
             "or from another version; it is not repaired)", lv->data_dir, syn_node_record_kind(lv->nodes[local], pk),
             (unsigned long long)key, lv->nodes[local]->id, syn_strerror(rc));
    return rc;
  }
  r->count++;
  return 0;
}

static void rt_commit(void *ctx, syn_node_t *n, uint64_t seq, const uint8_t *digest) {
  syn_live_t *lv = ctx;
  (void)n; (void)digest;
  lv->commits++;
  lv->last_commit = seq;
}

/* ---- the transport's callbacks ---- */

static void on_frame(void *ctx, uint32_t peer, uint32_t dest, const uint8_t *frame, size_t len) {
  syn_live_t *lv = ctx;
  int i = local_index(lv, dest);
  if (i < 0 || lv->stopping) { lv->drops_misrouted++; return; }
  /* A connection speaks for its process: the member and its clients only. */
  syn_frame_t f;
  if (syn_wire_frame_parse(frame, len, &f) == 0 && (f.sender >= lv->total || owner(lv, f.sender) != peer)) {
    lv->drops_sender++;
    SYN_LOG_DEBUG("live: frame from sender %u on peer %u's connection dropped", f.sender, peer);
    return;
  }
  syn_node_receive(lv->nodes[i], frame, len);   /* counts its own drops by reason */
}

static void on_peer(void *ctx, uint32_t peer, bool up) {
  syn_live_t *lv = ctx;
  if (!lv->cfg.quiet)
    printf("peer %u %s (%u of %u connected)\n", peer, up ? "connected" : "disconnected",
           syn_transport_connected(lv->tr), lv->cfg.n - 1);
  fflush(stdout);
}

/* ---- keys ---- */

static int load_keys(syn_live_t *lv, char *err, size_t errlen) {
  const syn_live_cfg_t *c = &lv->cfg;
  if (c->keys_dir == NULL) {
    SYN_LOG_WARN("no --keys: using development keys derived from seed 0 (anyone can derive them; "
                 "run 'synod keygen --out DIR -n %u' for real ones)", c->n);
    lv->members.n = c->n;
    for (uint32_t i = 0; i < c->n; i++) {
      syn_identity_t id;
      syn_identity_derive(&id, i, 0);
      memcpy(lv->members.pk[i], id.pk, SYN_PK_BYTES);
      if (i == c->id) lv->ident = id;
    }
    return 0;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/keys.pub", c->keys_dir);
  if (syn_keys_load_ring(path, &lv->members) != 0) {
    snprintf(err, errlen, "cannot read the key list: %s", syn_keys_error());
    return -SYN_EIO;
  }
  if (lv->members.n != c->n) {
    snprintf(err, errlen, "%s lists %u keys but -n is %u: every member needs exactly one key", path,
             lv->members.n, c->n);
    return -SYN_EINVAL;
  }
  if (syn_keys_load_identity(c->keys_dir, c->id, &lv->ident) != 0) {
    snprintf(err, errlen, "cannot read this node's key: %s", syn_keys_error());
    return -SYN_EIO;
  }
  if (memcmp(lv->ident.pk, lv->members.pk[c->id], SYN_PK_BYTES) != 0) {
    snprintf(err, errlen, "%s/node-%u.key does not match key %u of %s", c->keys_dir, c->id, c->id, path);
    return -SYN_EINVAL;
  }
  return 0;
}

/* ---- data directory ---- */

static int make_dirs(const char *path, char *err, size_t errlen) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the data directory '%s': %s", buf, strerror(errno));
        return -SYN_EIO;
      }
      *p = c;
      if (c == '\0') break;
    }
  }
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "the data directory '%s' is not a directory", path);
    return -SYN_EIO;
  }
  if (st.st_mode & 0077) (void)chmod(path, 0700);   /* the REPL socket lives here: owner only */
  return 0;
}

/* ---- tom's words workload ---- */

static void load_words(syn_live_t *lv) {
  char path[4096];
  snprintf(path, sizeof path, "%s/data/words.csv", syn_home_dir());
  lv->words = calloc(MAX_WORDS, sizeof *lv->words);
  FILE *f = fopen(path, "r");
  if (f && lv->words) {
    char line[256];
    bool header = true;
    while (fgets(line, sizeof line, f) && lv->nwords < MAX_WORDS) {
      if (header) { header = false; continue; }
      size_t k = strcspn(line, "\r\n ,");
      if (k == 0 || k >= sizeof lv->words[0]) continue;
      memcpy(lv->words[lv->nwords], line, k);
      lv->words[lv->nwords++][k] = '\0';
    }
  }
  if (f) fclose(f);
  if (lv->nwords == 0 && lv->words) {
    SYN_LOG_WARN("cannot read %s: multicasting the word 'word'", path);
    snprintf(lv->words[0], sizeof lv->words[0], "word");
    lv->nwords = 1;
  }
}

static void workload_next(syn_live_t *lv);

static void workload_fire(uv_timer_t *h) {
  syn_live_t *lv = h->data;
  if (lv->stopping) return;
  char w[48];
  snprintf(w, sizeof w, "%s#%u.%llu", lv->words[randombytes_uniform(lv->nwords)], lv->cfg.id,
           (unsigned long long)++lv->words_sent);
  (void)syn_live_submit(lv, (const uint8_t *)w, strlen(w), NULL, NULL);
  workload_next(lv);
}

static void workload_next(syn_live_t *lv) {
  if (lv->cfg.words && lv->words_sent >= lv->cfg.words) return;
  /* Poisson: exponential gaps with mean 1/rate (live only: libsodium's randomness). */
  double u = (randombytes_uniform(1u << 30) + 1.0) / (double)(1u << 30);
  double ms = -log(u) * 1000.0 / lv->cfg.words_per_sec;
  uv_timer_start(&lv->workload, workload_fire, (uint64_t)ms, 0);
}

/* ---- life cycle ---- */

static void on_signal(uv_signal_t *s, int sig) {
  syn_live_t *lv = s->data;
  if (!lv->cfg.quiet) { printf("\n%s: shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM"); fflush(stdout); }
  syn_live_stop(lv);
}

static int set_params(syn_live_t *lv, char *err, size_t errlen) {
  syn_proto_defaults(lv->proto, &lv->pcfg);
  for (int k = 0; k < SYN_MAX_PARAMS && lv->cfg.params[k]; k++) {
    const char *kv = lv->cfg.params[k];
    const char *eq = strchr(kv, '=');
    char name[64];
    size_t nl = eq ? (size_t)(eq - kv) : strlen(kv);
    if (eq == NULL || nl == 0 || nl >= sizeof name) {
      snprintf(err, errlen, "--param wants NAME=VALUE, got '%s'", kv);
      return -SYN_EINVAL;
    }
    memcpy(name, kv, nl); name[nl] = '\0';
    int i = syn_proto_param(lv->proto, name);
    if (i < 0) {
      size_t off = (size_t)snprintf(err, errlen, "%s has no parameter '%s'; it has:", lv->proto->name, name);
      for (size_t j = 0; j < lv->proto->nparams && off < errlen; j++)
        off += (size_t)snprintf(err + off, errlen - off, " %s", lv->proto->params[j].name);
      return -SYN_EINVAL;
    }
    const syn_param_def_t *d = &lv->proto->params[i];
    int64_t v;
    char *end;
    errno = 0;
    long long ll = strtoll(eq + 1, &end, 10);
    if (errno == 0 && *end == '\0' && end != eq + 1) v = ll;
    else if (strstr(name, "_ms") && syn_time_parse(eq + 1, &v) == 0) v /= 1000000;   /* "500ms" for a _ms param */
    else { snprintf(err, errlen, "--param %s: '%s' is not an integer", name, eq + 1); return -SYN_EINVAL; }
    if (v < d->min || v > d->max) {
      snprintf(err, errlen, "--param %s=%lld is outside %lld..%lld (%s)", name, (long long)v, (long long)d->min,
               (long long)d->max, d->help);
      return -SYN_EINVAL;
    }
    lv->pcfg.params[i] = v;
  }
  return 0;
}

int syn_live_new(syn_live_t **out, uv_loop_t *loop, const syn_live_cfg_t *cfg, char *err, size_t errlen) {
  err[0] = '\0';
  const syn_proto_t *proto = syn_proto_find(cfg->proto);
  if (proto == NULL) { snprintf(err, errlen, "unknown protocol '%s' (pbft or tom)", cfg->proto); return -SYN_EINVAL; }
  if (cfg->n == 0 || cfg->n > proto->max_nodes) {
    snprintf(err, errlen, "-n must be 1..%u for %s, got %u", proto->max_nodes, proto->name, cfg->n); return -SYN_EINVAL;
  }
  if (cfg->id >= cfg->n) { snprintf(err, errlen, "-i must be 0..%u for -n %u, got %u", cfg->n - 1, cfg->n, cfg->id); return -SYN_EINVAL; }
  if (syn_crypto_init() != 0) { snprintf(err, errlen, "libsodium failed to initialise"); return -SYN_EIO; }
  syn_live_t *lv = calloc(1, sizeof *lv);
  if (lv == NULL) { snprintf(err, errlen, "out of memory"); return -SYN_ENOMEM; }
  lv->cfg = *cfg;
  lv->loop = loop;
  lv->proto = proto;
  lv->t0_ns = uv_hrtime();
  int rc = 0;
  uint32_t per = proto->default_clients ? (cfg->clients_per_node ? cfg->clients_per_node : 1) : 0;
  if (per > SYN_MAX_LIVE_CLIENTS || cfg->n + (uint64_t)cfg->n * per > SYN_MAX_NODES) {
    snprintf(err, errlen, "--clients %u: at most %u per node and %u nodes in all", per, SYN_MAX_LIVE_CLIENTS, SYN_MAX_NODES);
    free(lv); return -SYN_EINVAL;
  }
  lv->cfg.clients_per_node = per ? per : 1;
  lv->nclients = per;
  lv->total = cfg->n + cfg->n * per;
  if ((rc = load_keys(lv, err, errlen)) != 0) { free(lv); return rc; }
  lv->ring = lv->members;
  lv->ring.n = lv->total;
  for (uint32_t id = cfg->n; id < lv->total; id++) memcpy(lv->ring.pk[id], lv->members.pk[owner(lv, id)], SYN_PK_BYTES);
  lv->data_dir = strdup(cfg->data_dir);
  lv->cfg.data_dir = lv->data_dir;
  if ((rc = make_dirs(lv->data_dir, err, errlen)) != 0) goto fail;
  {
    /* Opened first: a foreign or corrupt data directory stops the node here. */
    uint8_t cluster[SYN_DIGEST_BYTES];
    syn_hs_cluster(&lv->members, cluster);
    if ((rc = syn_store_open(&lv->store, lv->data_dir, cluster, cfg->id, proto->name)) != 0) {
      snprintf(err, errlen, "%s", syn_store_error(NULL));
      goto fail;
    }
  }
  if ((rc = set_params(lv, err, errlen)) != 0) goto fail;
  lv->pcfg.clients = lv->total - cfg->n;
  lv->pcfg.ring = &lv->ring;
  if (proto->default_app) lv->pcfg.app = syn_app_find(proto->default_app);
  lv->rt = (syn_runtime_t){ .ctx = lv, .send = rt_send, .timer = rt_timer, .deliver = rt_deliver,
                            .trace = rt_trace, .commit = rt_commit, .now = rt_now,
                            .persist = rt_persist, .forget = rt_forget, .sync = rt_sync };
  if ((rc = syn_fx_new(&lv->fx)) != 0) { snprintf(err, errlen, "out of memory"); goto fail; }
  uint32_t local = 1 + lv->nclients;
  lv->nodes = calloc(local, sizeof *lv->nodes);
  lv->timers = calloc((size_t)local * SYN_MAX_TIMERS, sizeof *lv->timers);
  lv->waiting = calloc(local, sizeof *lv->waiting);
  if (!lv->nodes || !lv->timers || !lv->waiting) { rc = -SYN_ENOMEM; snprintf(err, errlen, "out of memory"); goto fail; }
  for (uint32_t i = 0; i < local; i++) {
    uint32_t id = i == 0 ? cfg->id : cfg->n + cfg->id * lv->cfg.clients_per_node + (i - 1);
    syn_identity_t ident = lv->ident;
    ident.id = id;
    rc = syn_node_new(&lv->nodes[i], proto, &lv->pcfg, id, lv->total, &ident, true, &lv->rt, &lv->fx);
    if (rc) { snprintf(err, errlen, "cannot start node %u: %s", id, syn_strerror(rc)); goto fail; }
    for (uint32_t k = 0; k < SYN_MAX_TIMERS; k++) {
      ltimer_t *t = &lv->timers[(size_t)i * SYN_MAX_TIMERS + k];
      *t = (ltimer_t){ .lv = lv, .local = i, .timer = k };
      uv_timer_init(loop, &t->h);
      t->h.data = t;
    }
  }
  uv_idle_init(loop, &lv->drain); lv->drain.data = lv;
  uv_timer_init(loop, &lv->workload); lv->workload.data = lv;
  uv_timer_init(loop, &lv->progress); lv->progress.data = lv;
  uv_timer_init(loop, &lv->fatal); lv->fatal.data = lv;
  uv_signal_init(loop, &lv->sigint); lv->sigint.data = lv;
  uv_signal_init(loop, &lv->sigterm); lv->sigterm.data = lv;
  syn_transport_cfg_t tc = {
    .loop = loop, .self = cfg->id, .procs = cfg->n, .ring = &lv->members, .ident = &lv->ident,
    .listen_host = cfg->listen_host, .listen_port = cfg->port,
    .bootstrap_host = cfg->bootstrap_host, .bootstrap_port = cfg->bootstrap_port,
    .ctx = lv, .on_frame = on_frame, .on_peer = on_peer,
  };
  if ((rc = syn_transport_new(&lv->tr, &tc)) != 0) { snprintf(err, errlen, "%s", syn_transport_error()); goto fail; }
  if (strcmp(proto->name, "tom") == 0) {
    char path[4200];
    snprintf(path, sizeof path, "%s/delivered.log", lv->data_dir);
    lv->delivered = fopen(path, "a");
    if (lv->delivered == NULL) { snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno)); rc = -SYN_EIO; goto fail; }
    load_words(lv);
    if (lv->cfg.words_per_sec <= 0) lv->cfg.words_per_sec = 5;
  }
  *out = lv;
  return 0;
fail:
  syn_live_stop(lv);
  uv_run(loop, UV_RUN_DEFAULT);
  syn_live_free(lv);
  return rc ? rc : -SYN_EINVAL;
}

static void progress_fire(uv_timer_t *h) {
  syn_live_t *lv = h->data;
  if (lv->cfg.quiet) return;
  printf("[%.0fs] peers %u/%u · executed %llu · completed %llu · commits %llu\n",
         (double)rt_now(lv, NULL) / 1e9, syn_transport_connected(lv->tr), lv->cfg.n - 1,
         (unsigned long long)lv->executed, (unsigned long long)lv->completed, (unsigned long long)lv->commits);
  fflush(stdout);
}

int syn_live_start(syn_live_t *lv, char *err, size_t errlen) {
  if (lv->started) return 0;
  lv->started = true;
  /* Recovery: every persisted record back into its node, then each node's end mark. */
  if (lv->proto->recover) {
    recover_ctx_t r = { lv, err, errlen, 0 };
    int rc = syn_store_each(lv->store, recover_one, &r);
    if (rc) {
      if (err[0] == '\0') snprintf(err, errlen, "%s", syn_store_error(lv->store));
      return rc;
    }
    for (uint32_t i = 0; i <= lv->nclients; i++) {
      rc = syn_node_recover(lv->nodes[i], SYN_RECORD_END, 0, NULL, 0);
      if (rc) { snprintf(err, errlen, "node %u cannot resume from %s: %s", lv->nodes[i]->id, lv->data_dir, syn_strerror(rc)); return rc; }
    }
    if (r.count && !lv->cfg.quiet) { printf("recovered %llu records from %s\n", (unsigned long long)r.count, lv->data_dir); fflush(stdout); }
  }
  uv_signal_start(&lv->sigint, on_signal, SIGINT);
  uv_signal_start(&lv->sigterm, on_signal, SIGTERM);
  for (uint32_t i = 0; i <= lv->nclients; i++) syn_node_start(lv->nodes[i]);
  if (lv->delivered) workload_next(lv);
  uv_timer_start(&lv->progress, progress_fire, 10000, 10000);
  return 0;
}

int syn_live_exit_status(const syn_live_t *lv) { return lv->exit_status; }

static void close_if(uv_handle_t *h) {
  if (h->loop && !uv_is_closing(h)) uv_close(h, NULL);
}

void syn_live_stop(syn_live_t *lv) {
  if (lv->stopping) return;
  lv->stopping = true;
  for (uint32_t i = 0; lv->waiting && i <= lv->nclients; i++)
    while (lv->waiting[i].head) finish(lv, &lv->waiting[i], -SYN_ESTATE, 0, NULL, 0);
  if (lv->tr) syn_transport_close(lv->tr);
  for (uint32_t i = 0; lv->timers && i <= lv->nclients; i++)
    for (uint32_t k = 0; k < SYN_MAX_TIMERS; k++) close_if((uv_handle_t *)&lv->timers[(size_t)i * SYN_MAX_TIMERS + k].h);
  close_if((uv_handle_t *)&lv->drain);
  close_if((uv_handle_t *)&lv->workload);
  close_if((uv_handle_t *)&lv->progress);
  close_if((uv_handle_t *)&lv->fatal);
  close_if((uv_handle_t *)&lv->sigint);
  close_if((uv_handle_t *)&lv->sigterm);
  while (lv->delayed) delayed_drop(lv->delayed);
  if (lv->delivered) fflush(lv->delivered);
  if (lv->on_stop) lv->on_stop(lv->on_stop_ctx);
}

void syn_live_on_stop(syn_live_t *lv, void (*fn)(void *ctx), void *ctx) { lv->on_stop = fn; lv->on_stop_ctx = ctx; }

void syn_live_free(syn_live_t *lv) {
  if (lv == NULL) return;
  for (uint32_t i = 0; lv->nodes && i <= lv->nclients; i++) syn_node_free(lv->nodes[i]);
  syn_transport_free(lv->tr);
  while (lv->qhead) { qframe_t *q = lv->qhead; lv->qhead = q->next; free(q); }
  if (lv->delivered) fclose(lv->delivered);
  if (lv->store) { (void)syn_store_sync(lv->store); syn_store_close(lv->store); }
  syn_fx_free(&lv->fx);
  free(lv->nodes); free(lv->timers); free(lv->waiting); free(lv->words); free(lv->data_dir);
  free(lv);
}

/* ---- submissions and inspection ---- */

int syn_live_submit(syn_live_t *lv, const uint8_t *op, size_t len, syn_live_done_fn done, void *ctx) {
  if (lv->stopping) return -SYN_ESTATE;
  if (len == 0 || len > SYN_MAX_OP_BYTES) return -SYN_EINVAL;
  if (lv->npending >= SYN_MAX_LIVE_PENDING) return -SYN_ELIMIT;
  uint32_t best = 0;
  for (uint32_t i = 1; i <= lv->nclients; i++)
    if (best == 0 || lv->waiting[i].count < lv->waiting[best].count) best = i;
  pending_t *p = calloc(1, sizeof *p);
  if (p == NULL) return -SYN_ENOMEM;
  p->done = done; p->ctx = ctx; p->at_ns = rt_now(lv, NULL);
  fifo_t *f = &lv->waiting[best];
  if (f->tail) f->tail->next = p; else f->head = p;
  f->tail = p;
  f->count++;
  lv->npending++;
  lv->submitted++;
  int rc = syn_node_request(lv->nodes[best], op, len);
  lv->refusal = rc == -SYN_ELIMIT && lv->nodes[best]->request_refused
                  ? syn_node_reason(lv->nodes[best], (uint32_t)lv->nodes[best]->request_refused - 1) : NULL;
  if (rc != 0) {
    /* Refused at once: it is the newest, so take it off the tail. */
    pending_t **pp = &f->head;
    while (*pp != p) pp = &(*pp)->next;
    *pp = NULL;
    f->tail = NULL;
    for (pending_t *q = f->head; q; q = q->next) f->tail = q;
    f->count--;
    lv->npending--;
    lv->submitted--;
    free(p);
  }
  return rc;
}

syn_node_t *syn_live_node(syn_live_t *lv) { return lv->nodes[0]; }
const char *syn_live_refusal(const syn_live_t *lv) { return lv->refusal ? lv->refusal : "refused"; }
const syn_live_cfg_t *syn_live_cfg(const syn_live_t *lv) { return &lv->cfg; }
syn_transport_t *syn_live_transport(syn_live_t *lv) { return lv->tr; }
uv_loop_t *syn_live_loop(syn_live_t *lv) { return lv->loop; }
const char *syn_live_data_dir(const syn_live_t *lv) { return lv->data_dir; }

void syn_live_status(syn_live_t *lv, syn_status_fn fn, void *ctx) {
  syn_node_t *n = lv->nodes[0];
  fn(ctx, "id", n->id);
  fn(ctx, "n", lv->cfg.n);
  if (n->proto->status) n->proto->status(n->state, fn, ctx);
  fn(ctx, "uptime_ms", rt_now(lv, NULL) / 1000000);
  fn(ctx, "peers_connected", syn_transport_connected(lv->tr));
  fn(ctx, "submitted", (int64_t)lv->submitted);
  fn(ctx, "completed", (int64_t)lv->completed);
  fn(ctx, "failed", (int64_t)lv->failed);
  fn(ctx, "submissions_pending", lv->npending);
  fn(ctx, "commits", (int64_t)lv->commits);
  fn(ctx, "last_commit", (int64_t)lv->last_commit);
  fn(ctx, "byzantine", n->behavior.ctx != NULL);
  fn(ctx, "evidence", n->nevidence);
}

uint32_t syn_live_log(const syn_live_t *lv, uint32_t k, syn_live_entry_t *out) {
  uint64_t have = lv->nlog < SYN_MAX_LIVE_LOG ? lv->nlog : SYN_MAX_LIVE_LOG;
  if (k > have) k = (uint32_t)have;
  for (uint32_t j = 0; j < k; j++) out[j] = lv->log[(lv->nlog - k + j) % SYN_MAX_LIVE_LOG];
  return k;
}

const uint64_t *syn_live_latency(const syn_live_t *lv, uint64_t *sum_ns, uint64_t *count) {
  *sum_ns = lv->lat_sum_ns;
  *count = lv->lat_count;
  return lv->lat;
}

void syn_live_drops(const syn_live_t *lv, syn_status_fn fn, void *ctx) {
  fn(ctx, "misrouted", (int64_t)lv->drops_misrouted);
  fn(ctx, "sender_mismatch", (int64_t)lv->drops_sender);
  fn(ctx, "local_queue_full", (int64_t)lv->drops_local_full);
  fn(ctx, "delayed_full", (int64_t)lv->drops_delayed_full);
  fn(ctx, "peer_unreachable", (int64_t)lv->drops_send);
  const uint64_t *r = syn_transport_refused(lv->tr);
  for (int k = 0; k < SYN_TR_COUNT; k++) fn(ctx, syn_transport_reason((syn_tr_reason_t)k), (int64_t)r[k]);
}
