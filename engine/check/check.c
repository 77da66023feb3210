/* check.c — the recorded history of a run and the checkers that judge it.
 *
 * Owns: the growable per-node delivery and commit logs, the submissions
 * list and the one arena that holds every value's bytes (growth bounded by
 * the SYN_MAX_HISTORY_* limits, checked before anything is allocated); the
 * checkers of check.h, the small open-addressing table they share, and the
 * conversion of the clients' part of a history into lin.h's KV history.
 * Never: touches a protocol, a clock, a socket or a Lua state; a checker
 * never writes to the history it judges.
 *
 * Conventions of every verdict (check.h leaves them to us):
 *  - positions (pos_a, pos_b) are 1-based indexes into a node's delivery
 *    log (batches: its commit log), so h:log(node)[pos] in Lua is the entry
 *    named; -1 when n/a.
 *  - "first" means: lowest position (agreement, batches: lowest seq), then
 *    lowest node ids — iteration is always over sorted ids and log order,
 *    never hash order, so the same history gives the same explanation bit
 *    for bit.
 *  - a message's identity is (origin, ts, value bytes). */
#include "check.h"
#include "lin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the history ---- */

int syn_history_init(syn_history_t *h, uint32_t n) {
  memset(h, 0, sizeof *h);
  if (n == 0) return -SYN_EINVAL;
  if (n > SYN_MAX_HISTORY_NODES) return -SYN_ELIMIT;
  h->n = n;
  for (uint32_t i = 0; i < n; i++) h->honest[i] = true;
  syn_buf_init(&h->arena, SYN_MAX_HISTORY_BYTES);
  return 0;
}

int syn_history_set_clients(syn_history_t *h, uint32_t clients) {
  if (h->n == 0) return -SYN_EINVAL;   /* not initialised */
  if (clients > SYN_MAX_HISTORY_NODES - h->n) return -SYN_ELIMIT;
  h->clients = clients;
  for (uint32_t i = h->n; i < h->n + clients; i++) h->honest[i] = true;
  return 0;
}

/* Replicas and clients: every node id a log or a submission may name. */
static uint32_t nodes_all(const syn_history_t *h) { return h->n + h->clients; }

void syn_history_free(syn_history_t *h) {
  for (uint32_t i = 0; i < SYN_MAX_HISTORY_NODES; i++) {
    free(h->logs[i].items);
    free(h->commits[i].items);
  }
  free(h->subs);
  free(h->epochs);
  syn_buf_free(&h->arena);
  memset(h, 0, sizeof *h);
}

/* Room for one more value of len bytes in the arena, checked against the
 * limit before anything grows. */
static int arena_check(const syn_history_t *h, size_t len) {
  if (len > SYN_MAX_HISTORY_BYTES || h->arena.len > SYN_MAX_HISTORY_BYTES - len)
    return -SYN_ELIMIT;
  return 0;
}

/* Grows an array of `size`-byte items to hold count + 1, never past max. */
static int grow(void **items, uint32_t *cap, uint32_t count, uint32_t max, size_t size) {
  if (count >= max) return -SYN_ELIMIT;
  if (count < *cap) return 0;
  uint32_t ncap = *cap ? *cap : 16;
  while (ncap <= count) ncap = ncap > max / 2 ? max : ncap * 2;
  void *p = realloc(*items, (size_t)ncap * size);
  if (p == NULL) return -SYN_ENOMEM;
  *items = p;
  *cap = ncap;
  return 0;
}

int syn_history_deliver(syn_history_t *h, uint32_t node, uint64_t seq, uint32_t origin,
                        uint64_t ts, int64_t at_ns, const uint8_t *value, size_t len) {
  if (node >= nodes_all(h)) return -SYN_EINVAL;
  if (value == NULL && len > 0) return -SYN_EINVAL;
  syn_delivery_log_t *lg = &h->logs[node];
  int rc = arena_check(h, len);
  if (rc) return rc;
  rc = grow((void **)&lg->items, &lg->cap, lg->count, SYN_MAX_HISTORY_ENTRIES, sizeof *lg->items);
  if (rc) return rc;
  uint32_t off = (uint32_t)h->arena.len;
  rc = syn_buf_append(&h->arena, value, len);
  if (rc) return rc;
  lg->items[lg->count++] = (syn_delivery_t){
    .seq = seq, .origin = origin, .ts = ts, .at_ns = at_ns, .off = off, .len = (uint32_t)len,
  };
  return 0;
}

int syn_history_submit(syn_history_t *h, uint32_t node, int64_t at_ns,
                       const uint8_t *value, size_t len) {
  if (node >= nodes_all(h)) return -SYN_EINVAL;
  if (value == NULL && len > 0) return -SYN_EINVAL;
  int rc = arena_check(h, len);
  if (rc) return rc;
  rc = grow((void **)&h->subs, &h->subs_cap, h->nsubs, SYN_MAX_SUBMISSIONS, sizeof *h->subs);
  if (rc) return rc;
  uint32_t off = (uint32_t)h->arena.len;
  rc = syn_buf_append(&h->arena, value, len);
  if (rc) return rc;
  h->subs[h->nsubs++] = (syn_submission_t){
    .node = node, .at_ns = at_ns, .off = off, .len = (uint32_t)len,
  };
  return 0;
}

int syn_history_commit(syn_history_t *h, uint32_t node, uint64_t seq,
                       const uint8_t digest[SYN_HISTORY_DIGEST_BYTES], int64_t at_ns) {
  if (node >= h->n || digest == NULL) return -SYN_EINVAL;
  syn_commit_log_t *cl = &h->commits[node];
  int rc = grow((void **)&cl->items, &cl->cap, cl->count, SYN_MAX_HISTORY_COMMITS, sizeof *cl->items);
  if (rc) return rc;
  syn_commit_t *c = &cl->items[cl->count++];
  c->seq = seq;
  c->at_ns = at_ns;
  memcpy(c->digest, digest, SYN_HISTORY_DIGEST_BYTES);
  return 0;
}

/* The value bytes stay in the arena (it only grows); the logs start over. */
void syn_history_reset_node(syn_history_t *h, uint32_t node) {
  SYN_ASSERT(node < nodes_all(h));
  h->logs[node].count = 0;
  h->commits[node].count = 0;
  uint32_t k = 0;
  for (uint32_t i = 0; i < h->nepochs; i++) if (h->epochs[i].client != node) h->epochs[k++] = h->epochs[i];
  h->nepochs = k;
}

int syn_history_client_epoch(syn_history_t *h, uint32_t client, uint64_t rank_base, uint64_t first_ts) {
  if (client < h->n || client >= nodes_all(h) || first_ts == 0) return -SYN_EINVAL;
  int rc = grow((void **)&h->epochs, &h->epochs_cap, h->nepochs, SYN_MAX_CLIENT_EPOCHS, sizeof *h->epochs);
  if (rc) return rc;
  h->epochs[h->nepochs++] = (struct syn_client_epoch){ .client = client, .rank_base = rank_base, .first_ts = first_ts };
  return 0;
}

/* Which of client c's submissions (1-based rank) a response to its request
 * with timestamp ts answers: ts itself unless an epoch renumbered it. */
static uint64_t client_rank(const syn_history_t *h, uint32_t c, uint64_t ts) {
  uint64_t rank = ts;
  for (uint32_t i = 0; i < h->nepochs; i++) {
    const struct syn_client_epoch *e = &h->epochs[i];
    if (e->client == c && ts >= e->first_ts) rank = e->rank_base + (ts - e->first_ts) + 1;
  }
  return rank;
}

/* ---- verdicts and explanations ---- */

static void verdict_init(syn_verdict_t *v, const char *checker) {
  v->ok = true;
  v->checker = checker;
  v->node_a = v->node_b = -1;
  v->pos_a = v->pos_b = -1;
  v->explain[0] = '\0';
}

static void verdict_fail(syn_verdict_t *v, int32_t node_a, int32_t node_b, int64_t pos_a,
                         int64_t pos_b, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void verdict_fail(syn_verdict_t *v, int32_t node_a, int32_t node_b, int64_t pos_a,
                         int64_t pos_b, const char *fmt, ...) {
  v->ok = false;
  v->node_a = node_a; v->node_b = node_b;
  v->pos_a = pos_a; v->pos_b = pos_b;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->explain, sizeof v->explain, fmt, ap);
  va_end(ap);
}


static const char *quote_delivery(const syn_history_t *h, char out[SYN_QUOTE_CAP],
                                  const syn_delivery_t *d) {
  return syn_quote(out, syn_history_value(h, d->off), d->len);
}

static const char *fmt_time(char out[32], int64_t ns) {
  syn_time_format(ns, out, 32);
  return out;
}

/* ---- message identity ---- */

static bool same_value(const syn_history_t *h, uint32_t off_a, uint32_t len_a,
                       uint32_t off_b, uint32_t len_b) {
  return len_a == len_b &&
         (len_a == 0 || memcmp(syn_history_value(h, off_a), syn_history_value(h, off_b), len_a) == 0);
}

static bool same_msg(const syn_history_t *h, const syn_delivery_t *a, const syn_delivery_t *b) {
  return a->origin == b->origin && a->ts == b->ts && same_value(h, a->off, a->len, b->off, b->len);
}

/* 64-bit FNV-1a over the bytes, then a splitmix finaliser over the mix. */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t hash_bytes(const uint8_t *p, uint32_t len, uint64_t seed) {
  uint64_t x = 0xcbf29ce484222325ULL ^ mix64(seed);
  for (uint32_t i = 0; i < len; i++) { x ^= p[i]; x *= 0x100000001b3ULL; }
  return mix64(x ^ len);
}

static uint64_t hash_msg(const syn_history_t *h, const syn_delivery_t *d) {
  return hash_bytes(syn_history_value(h, d->off), d->len,
                    ((uint64_t)d->origin << 32) ^ mix64(d->ts));
}

/* (origin, value) without ts: what liveness and validity match on. */
static uint64_t hash_origin_value(const syn_history_t *h, uint32_t origin, uint32_t off,
                                  uint32_t len) {
  return hash_bytes(syn_history_value(h, off), len, 0x5157a11d00000000ULL ^ origin);
}

/* ---- a small open-addressing table ----
 * Maps a key to an index (into a log or the submissions list). The table
 * stores only the index and a 32-bit hash tag; equality is asked of the
 * caller through eq(ctx, stored_index), so one table serves every key shape.
 * It is never iterated: lookups only, so hash order never reaches output. */
typedef struct {
  uint32_t idx1;   /* index + 1; 0 = empty */
  uint32_t tag;    /* high bits of the hash */
} slot_t;

typedef struct {
  slot_t *slots;
  uint64_t mask;
} table_t;

static int table_new(table_t *t, uint32_t count) {
  uint64_t cap = 16;
  while (cap < (uint64_t)count * 2) cap *= 2;
  t->slots = calloc(cap, sizeof *t->slots);
  if (t->slots == NULL) return -SYN_ENOMEM;
  t->mask = cap - 1;
  return 0;
}

static void table_free(table_t *t) { free(t->slots); t->slots = NULL; }

typedef bool (*table_eq_fn)(const void *ctx, uint32_t idx);

/* The slot holding the key (hash, eq), or the empty slot where it would
 * go. The table is sized at twice its entries, so an empty slot exists. */
static slot_t *table_slot(table_t *t, uint64_t hash, table_eq_fn eq, const void *ctx) {
  uint32_t tag = (uint32_t)(hash >> 32);
  for (uint64_t i = hash & t->mask;; i = (i + 1) & t->mask) {
    slot_t *s = &t->slots[i];
    if (s->idx1 == 0 || (s->tag == tag && eq(ctx, s->idx1 - 1))) return s;
  }
}

/* Finds the key; returns the stored index or UINT32_MAX. When absent and
 * insert_idx != UINT32_MAX, stores insert_idx under the key. */
static uint32_t table_find(table_t *t, uint64_t hash, table_eq_fn eq, const void *ctx,
                           uint32_t insert_idx) {
  slot_t *s = table_slot(t, hash, eq, ctx);
  if (s->idx1 != 0) return s->idx1 - 1;
  if (insert_idx != UINT32_MAX) { s->idx1 = insert_idx + 1; s->tag = (uint32_t)(hash >> 32); }
  return UINT32_MAX;
}

/* Key: a whole message, stored indexes are positions in one log. */
typedef struct {
  const syn_history_t *h;
  const syn_delivery_log_t *log;
  const syn_delivery_t *key;
} msg_key_t;

static bool msg_eq(const void *ctx, uint32_t idx) {
  const msg_key_t *k = ctx;
  return same_msg(k->h, &k->log->items[idx], k->key);
}

/* A position map of one log: message -> its first position (0-based). */
static int posmap_build(table_t *t, const syn_history_t *h, const syn_delivery_log_t *lg) {
  int rc = table_new(t, lg->count);
  if (rc) return rc;
  for (uint32_t p = 0; p < lg->count; p++) {
    msg_key_t k = { h, lg, &lg->items[p] };
    (void)table_find(t, hash_msg(h, &lg->items[p]), msg_eq, &k, p);
  }
  return 0;
}

static uint32_t posmap_get(table_t *t, const syn_history_t *h, const syn_delivery_log_t *lg,
                           const syn_delivery_t *d) {
  msg_key_t k = { h, lg, d };
  return table_find(t, hash_msg(h, d), msg_eq, &k, UINT32_MAX);
}

static void fail_nomem(syn_verdict_t *v) {
  verdict_fail(v, -1, -1, -1, -1,
               "%s could not be judged: out of memory building its index", v->checker);
}

/* ---- logs aligned by seq (agreement, batches) ----
 * A replica's delivery log and its commit log are both lists of entries
 * that carry a seq. Agreement and batches ask the same two questions of
 * them: is each honest replica's list strictly increasing in seq, and at
 * which seq do two honest replicas first hold different entries. A gap (a
 * seq some replica never saw, state transfer) is no divergence. */
typedef struct {
  const syn_history_t *h;
  uint32_t (*count)(const syn_history_t *h, uint32_t node);
  uint64_t (*seq)(const syn_history_t *h, uint32_t node, uint32_t pos);
  bool (*same)(const syn_history_t *h, uint32_t a, uint32_t pa, uint32_t b, uint32_t pb);
} seq_logs_t;

/* The first honest replica (lowest id) whose list is not strictly
 * increasing, and the first 0-based position not above its predecessor. */
static bool seq_unordered(const seq_logs_t *l, uint32_t *node, uint32_t *pos) {
  const syn_history_t *h = l->h;
  for (uint32_t i = 0; i < h->n; i++) {
    if (!h->honest[i]) continue;
    uint32_t count = l->count(h, i);
    for (uint32_t p = 1; p < count; p++)
      if (l->seq(h, i, p) <= l->seq(h, i, p - 1)) { *node = i; *pos = p; return true; }
  }
  return false;
}

/* Whether honest replica i's cursor stands at seq s. */
static bool seq_at(const seq_logs_t *l, const uint32_t *cur, uint32_t i, uint64_t s) {
  return l->h->honest[i] && cur[i] < l->count(l->h, i) && l->seq(l->h, i, cur[i]) == s;
}

/* With every honest list strictly increasing: the earliest seq at which two
 * honest replicas hold different entries, and there the lexicographically
 * smallest such pair a < b with their 0-based positions. One walk over all
 * lists at once in seq order, a cursor per replica and nothing allocated. */
static bool seq_divergence(const seq_logs_t *l, uint32_t *a, uint32_t *pa, uint32_t *b,
                           uint32_t *pb) {
  const syn_history_t *h = l->h;
  uint32_t cur[SYN_MAX_HISTORY_NODES] = { 0 };
  for (;;) {
    uint64_t s = 0;   /* the lowest seq not walked yet */
    bool any = false;
    for (uint32_t i = 0; i < h->n; i++) {
      if (!h->honest[i] || cur[i] >= l->count(h, i)) continue;
      uint64_t x = l->seq(h, i, cur[i]);
      if (!any || x < s) s = x;
      any = true;
    }
    if (!any) return false;
    /* Entries equal to the first replica's at s are equal to each other. */
    int64_t first = -1;
    bool differ = false;
    for (uint32_t i = 0; i < h->n && !differ; i++) {
      if (!seq_at(l, cur, i, s)) continue;
      if (first < 0) first = i;
      else differ = !l->same(h, (uint32_t)first, cur[first], i, cur[i]);
    }
    for (uint32_t x = 0; differ && x < h->n; x++) {
      if (!seq_at(l, cur, x, s)) continue;
      for (uint32_t y = x + 1; y < h->n; y++) {
        if (!seq_at(l, cur, y, s) || l->same(h, x, cur[x], y, cur[y])) continue;
        *a = x; *pa = cur[x]; *b = y; *pb = cur[y];
        return true;
      }
    }
    SYN_ASSERT(!differ);   /* a differing entry has a differing pair */
    for (uint32_t i = 0; i < h->n; i++)
      if (seq_at(l, cur, i, s)) cur[i]++;
  }
}

/* ---- agreement ---- */

static uint32_t delivery_count(const syn_history_t *h, uint32_t node) {
  return h->logs[node].count;
}

static uint64_t delivery_seq(const syn_history_t *h, uint32_t node, uint32_t pos) {
  return h->logs[node].items[pos].seq;
}

static bool delivery_same(const syn_history_t *h, uint32_t a, uint32_t pa, uint32_t b, uint32_t pb) {
  return same_msg(h, &h->logs[a].items[pa], &h->logs[b].items[pb]);
}

void syn_check_agreement(const syn_history_t *h, syn_verdict_t *v) {
  verdict_init(v, "agreement");
  const seq_logs_t l = { h, delivery_count, delivery_seq, delivery_same };
  uint32_t a, pa, b, pb;
  char qa[SYN_QUOTE_CAP], qb[SYN_QUOTE_CAP];
  if (seq_unordered(&l, &a, &pa)) {
    const syn_delivery_t *x = &h->logs[a].items[pa - 1], *y = &h->logs[a].items[pa];
    verdict_fail(v, (int32_t)a, (int32_t)a, (int64_t)pa, (int64_t)pa + 1,
                 "node %u's log is not increasing in seq: %s (origin %u, ts %llu) at seq %llu "
                 "(log entry %u), then %s (origin %u, ts %llu) at seq %llu (log entry %u)",
                 a, quote_delivery(h, qa, x), x->origin, (unsigned long long)x->ts,
                 (unsigned long long)x->seq, pa, quote_delivery(h, qb, y), y->origin,
                 (unsigned long long)y->ts, (unsigned long long)y->seq, pa + 1);
    return;
  }
  if (!seq_divergence(&l, &a, &pa, &b, &pb)) return;
  const syn_delivery_t *da = &h->logs[a].items[pa], *db = &h->logs[b].items[pb];
  /* A gap puts log entries and positions apart: then name the entries too. */
  char entries[64] = "";
  if (da->seq != (uint64_t)pa + 1 || db->seq != (uint64_t)pb + 1)
    snprintf(entries, sizeof entries, " (log entries %u and %u)", pa + 1, pb + 1);
  verdict_fail(v, (int32_t)a, (int32_t)b, (int64_t)pa + 1, (int64_t)pb + 1,
               "nodes %u and %u disagree at position %llu%s: node %u delivered %s "
               "(origin %u, ts %llu), node %u delivered %s (origin %u, ts %llu)",
               a, b, (unsigned long long)da->seq, entries, a, quote_delivery(h, qa, da),
               da->origin, (unsigned long long)da->ts, b, quote_delivery(h, qb, db), db->origin,
               (unsigned long long)db->ts);
}

/* ---- total order ---- */

/* later[p] is true when log position p repeats an earlier message of the
 * same log (a duplicate: integrity's business, skipped by total_order). */
static uint8_t *repeats_new(const syn_history_t *h, const syn_delivery_log_t *lg) {
  uint8_t *later = calloc(lg->count ? lg->count : 1, 1);
  if (later == NULL) return NULL;
  table_t t;
  if (posmap_build(&t, h, lg)) { free(later); return NULL; }
  for (uint32_t p = 0; p < lg->count; p++)
    later[p] = posmap_get(&t, h, lg, &lg->items[p]) != p;
  table_free(&t);
  return later;
}

void syn_check_total_order(const syn_history_t *h, syn_verdict_t *v) {
  verdict_init(v, "total_order");
  /* For each honest a (in id order) index a's log once; walk every later
   * honest b's log in order and look up where a put each message. Walking
   * b, a's positions of shared messages must rise; the first one below the
   * running maximum is an inverted pair. O(n * total log size). Repeats
   * are skipped: each message stands at its first position. */
  uint8_t *repeats[SYN_MAX_HISTORY_NODES] = { 0 };
  table_t t = { 0 };
  for (uint32_t i = 0; i < h->n; i++)
    if (h->honest[i] && (repeats[i] = repeats_new(h, &h->logs[i])) == NULL) goto nomem;
  for (uint32_t a = 0; a < h->n; a++) {
    if (!h->honest[a]) continue;
    const syn_delivery_log_t *la = &h->logs[a];
    if (posmap_build(&t, h, la)) goto nomem;
    for (uint32_t b = a + 1; b < h->n; b++) {
      if (!h->honest[b]) continue;
      const syn_delivery_log_t *lb = &h->logs[b];
      uint32_t max_pa = 0, max_pb = 0;   /* a's and b's positions of y */
      bool have = false;
      for (uint32_t pb = 0; pb < lb->count; pb++) {
        if (repeats[b][pb]) continue;
        const syn_delivery_t *x = &lb->items[pb];
        uint32_t pa = posmap_get(&t, h, la, x);
        if (pa == UINT32_MAX) continue;          /* a never delivered it */
        if (!have || pa > max_pa) { max_pa = pa; max_pb = pb; have = true; continue; }
        /* x is before y on a, after y on b. */
        const syn_delivery_t *y = &la->items[max_pa];
        char qx[SYN_QUOTE_CAP], qy[SYN_QUOTE_CAP];
        verdict_fail(v, (int32_t)a, (int32_t)b, (int64_t)pa + 1, (int64_t)pb + 1,
                     "nodes %u and %u deliver two messages in opposite orders: node %u "
                     "delivered %s (origin %u, ts %llu) at position %u before %s (origin %u, "
                     "ts %llu) at position %u; node %u delivered them the other way round, "
                     "at positions %u and %u",
                     a, b, a, quote_delivery(h, qx, x), x->origin, (unsigned long long)x->ts,
                     pa + 1, quote_delivery(h, qy, y), y->origin, (unsigned long long)y->ts,
                     max_pa + 1, b, pb + 1, max_pb + 1);
        goto done;
      }
    }
    table_free(&t);
  }
  goto done;
nomem:
  fail_nomem(v);
done:
  table_free(&t);
  for (uint32_t i = 0; i < h->n; i++) free(repeats[i]);
}

/* ---- validity ---- */

/* Key: (node, value) among the submissions. */
typedef struct {
  const syn_history_t *h;
  uint32_t node, off, len;
} sub_key_t;

static bool sub_eq(const void *ctx, uint32_t idx) {
  const sub_key_t *k = ctx;
  const syn_submission_t *s = &k->h->subs[idx];
  return s->node == k->node && same_value(k->h, s->off, s->len, k->off, k->len);
}

void syn_check_validity(const syn_history_t *h, syn_verdict_t *v) {
  verdict_init(v, "validity");
  table_t t;
  if (table_new(&t, h->nsubs)) { fail_nomem(v); return; }
  for (uint32_t i = 0; i < h->nsubs; i++) {
    const syn_submission_t *s = &h->subs[i];
    sub_key_t k = { h, s->node, s->off, s->len };
    (void)table_find(&t, hash_origin_value(h, s->node, s->off, s->len), sub_eq, &k, i);
  }
  for (uint32_t i = 0; i < h->n; i++) {
    if (!h->honest[i]) continue;
    const syn_delivery_log_t *lg = &h->logs[i];
    for (uint32_t p = 0; p < lg->count; p++) {
      const syn_delivery_t *d = &lg->items[p];
      bool known = d->origin < nodes_all(h);   /* a replica or a client */
      if (known && !h->honest[d->origin]) continue;  /* may multicast anything */
      sub_key_t k = { h, d->origin, d->off, d->len };
      if (table_find(&t, hash_origin_value(h, d->origin, d->off, d->len), sub_eq, &k,
                     UINT32_MAX) != UINT32_MAX)
        continue;
      char q[SYN_QUOTE_CAP];
      int32_t ob = known ? (int32_t)d->origin : -1;
      if (d->origin < h->n)
        verdict_fail(v, (int32_t)i, ob, (int64_t)p + 1, -1,
                     "node %u delivered %s at position %u from honest node %u (ts %llu), "
                     "but node %u never submitted that value",
                     i, quote_delivery(h, q, d), p + 1, d->origin, (unsigned long long)d->ts,
                     d->origin);
      else if (known)
        verdict_fail(v, (int32_t)i, ob, (int64_t)p + 1, -1,
                     "node %u delivered %s at position %u from honest client %u (ts %llu), "
                     "but client %u never submitted that value",
                     i, quote_delivery(h, q, d), p + 1, d->origin, (unsigned long long)d->ts,
                     d->origin);
      else if (h->clients > 0)
        verdict_fail(v, (int32_t)i, ob, (int64_t)p + 1, -1,
                     "node %u delivered %s at position %u from origin %u (ts %llu), "
                     "which is neither one of the %u replicas nor one of the %u clients",
                     i, quote_delivery(h, q, d), p + 1, d->origin, (unsigned long long)d->ts,
                     h->n, h->clients);
      else
        verdict_fail(v, (int32_t)i, ob, (int64_t)p + 1, -1,
                     "node %u delivered %s at position %u from origin %u (ts %llu), "
                     "which is not one of the %u nodes",
                     i, quote_delivery(h, q, d), p + 1, d->origin, (unsigned long long)d->ts,
                     h->n);
      table_free(&t);
      return;
    }
  }
  table_free(&t);
}

/* ---- integrity ---- */

void syn_check_integrity(const syn_history_t *h, syn_verdict_t *v) {
  verdict_init(v, "integrity");
  for (uint32_t i = 0; i < h->n; i++) {
    if (!h->honest[i]) continue;
    const syn_delivery_log_t *lg = &h->logs[i];
    table_t t;
    if (table_new(&t, lg->count)) { fail_nomem(v); return; }
    for (uint32_t p = 0; p < lg->count; p++) {
      const syn_delivery_t *d = &lg->items[p];
      msg_key_t k = { h, lg, d };
      uint32_t first = table_find(&t, hash_msg(h, d), msg_eq, &k, p);
      if (first == UINT32_MAX) continue;
      char q[SYN_QUOTE_CAP];
      verdict_fail(v, (int32_t)i, (int32_t)i, (int64_t)first + 1, (int64_t)p + 1,
                   "node %u delivered %s (origin %u, ts %llu) twice, at positions %u and %u",
                   i, quote_delivery(h, q, d), d->origin, (unsigned long long)d->ts,
                   first + 1, p + 1);
      table_free(&t);
      return;
    }
    table_free(&t);
  }
}

/* ---- liveness ---- */

/* Key: (origin, value) in one log; the stored position is the delivery
 * with the earliest at_ns. */
typedef struct {
  const syn_history_t *h;
  const syn_delivery_log_t *log;
  uint32_t origin, off, len;
} ov_key_t;

static bool ov_eq(const void *ctx, uint32_t idx) {
  const ov_key_t *k = ctx;
  const syn_delivery_t *d = &k->log->items[idx];
  return d->origin == k->origin && same_value(k->h, d->off, d->len, k->off, k->len);
}

static int64_t add_sat(int64_t a, int64_t b) {
  return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t deadline_of(const syn_submission_t *s, int64_t heal_at_ns, int64_t bound_ns) {
  return add_sat(s->at_ns > heal_at_ns ? s->at_ns : heal_at_ns, bound_ns);
}

/* ---- clients' responses (liveness, syn_history_to_lin) ---- */

/* For each submission, the 0-based position in its client's log of the
 * response to it: the k-th submission at client c (k counted per client in
 * recorded order) is answered by the entry of c's log with seq k, the
 * earliest (by at_ns, then position) when there are several. UINT32_MAX for
 * a submission at a replica and for one not answered. NULL: out of memory. */
static uint32_t *client_responses_new(const syn_history_t *h) {
  uint32_t *resp = malloc(((size_t)h->nsubs + 1) * sizeof *resp);
  if (resp == NULL) return NULL;
  uint32_t subs_at[SYN_MAX_HISTORY_NODES] = { 0 }, base[SYN_MAX_HISTORY_NODES] = { 0 };
  uint32_t total = 0;
  for (uint32_t si = 0; si < h->nsubs; si++) {
    resp[si] = UINT32_MAX;
    if (h->subs[si].node >= h->n) subs_at[h->subs[si].node]++;
  }
  for (uint32_t c = h->n; c < nodes_all(h); c++) { base[c] = total; total += subs_at[c]; }
  uint32_t *kth = malloc(((size_t)total + 1) * sizeof *kth);   /* [base[c] + k - 1]: c's k-th */
  if (kth == NULL) { free(resp); return NULL; }
  uint32_t seen[SYN_MAX_HISTORY_NODES] = { 0 };
  for (uint32_t si = 0; si < h->nsubs; si++) {
    uint32_t c = h->subs[si].node;
    if (c >= h->n) kth[base[c] + seen[c]++] = si;
  }
  for (uint32_t c = h->n; c < nodes_all(h); c++) {
    const syn_delivery_log_t *lg = &h->logs[c];
    for (uint32_t p = 0; p < lg->count; p++) {
      uint64_t k = client_rank(h, c, lg->items[p].seq);
      if (k < 1 || k > subs_at[c]) continue;   /* answers nothing submitted */
      uint32_t *r = &resp[kth[base[c] + k - 1]];
      if (*r == UINT32_MAX || lg->items[p].at_ns < lg->items[*r].at_ns) *r = p;
    }
  }
  free(kth);
  return resp;
}

/* 1 + how many submissions at the same node came before submission si. */
static uint32_t sub_rank(const syn_history_t *h, uint32_t si) {
  uint32_t k = 1;
  for (uint32_t i = 0; i < si; i++) k += h->subs[i].node == h->subs[si].node;
  return k;
}

/* ---- liveness ---- */

void syn_check_liveness(const syn_history_t *h, int64_t heal_at_ns, int64_t bound_ns,
                        int64_t end_ns, syn_verdict_t *v) {
  verdict_init(v, "liveness");
  if (bound_ns < 0) {   /* a caller's mistake, not a property of the run: never judged ok */
    verdict_fail(v, -1, -1, -1, -1, "liveness could not be judged: negative bound (%lld ns)",
                 (long long)bound_ns);
    return;
  }
  uint32_t *resp = client_responses_new(h);
  if (resp == NULL) { fail_nomem(v); return; }
  /* The reported failure is the first submission (in recorded order) that
   * is missed: at a client, by the client itself (its response is late or
   * missing); at a replica, by some honest replica — the lowest such. */
  uint32_t best_sub = UINT32_MAX, best_node = 0;
  int64_t best_pos = -1;
  for (uint32_t si = 0; si < h->nsubs; si++) {
    const syn_submission_t *s = &h->subs[si];
    if (s->node < h->n || !h->honest[s->node]) continue;
    int64_t deadline = deadline_of(s, heal_at_ns, bound_ns);
    if (resp[si] != UINT32_MAX && h->logs[s->node].items[resp[si]].at_ns <= deadline) continue;
    if (deadline > end_ns) continue;       /* the run was too short to tell */
    best_sub = si; best_node = s->node;
    best_pos = resp[si] == UINT32_MAX ? -1 : (int64_t)resp[si] + 1;
    break;
  }
  /* Replicas: one replica's index at a time. */
  for (uint32_t i = 0; i < h->n; i++) {
    if (!h->honest[i]) continue;
    const syn_delivery_log_t *lg = &h->logs[i];
    table_t t;
    if (table_new(&t, lg->count)) { free(resp); fail_nomem(v); return; }
    for (uint32_t p = 0; p < lg->count; p++) {
      const syn_delivery_t *d = &lg->items[p];
      ov_key_t k = { h, lg, d->origin, d->off, d->len };
      uint64_t hv = hash_origin_value(h, d->origin, d->off, d->len);
      slot_t *sl = table_slot(&t, hv, ov_eq, &k);
      if (sl->idx1 == 0) {
        sl->idx1 = p + 1;
        sl->tag = (uint32_t)(hv >> 32);
      } else if (d->at_ns < lg->items[sl->idx1 - 1].at_ns) {
        sl->idx1 = p + 1;   /* keep the earliest delivery */
      }
    }
    for (uint32_t si = 0; si < h->nsubs && si < best_sub; si++) {
      const syn_submission_t *s = &h->subs[si];
      if (s->node >= h->n || !h->honest[s->node]) continue;
      int64_t deadline = deadline_of(s, heal_at_ns, bound_ns);
      if (deadline > end_ns) continue;     /* the run was too short to tell */
      ov_key_t k = { h, lg, s->node, s->off, s->len };
      uint32_t q = table_find(&t, hash_origin_value(h, s->node, s->off, s->len), ov_eq, &k,
                              UINT32_MAX);
      if (q != UINT32_MAX && lg->items[q].at_ns <= deadline) continue;
      best_sub = si; best_node = i;
      best_pos = q == UINT32_MAX ? -1 : (int64_t)q + 1;
      break;
    }
    table_free(&t);
  }
  if (best_sub == UINT32_MAX) {
    /* Ok — but say how much of the run could not be judged, so a run cut
     * short does not pass silently. (A client op already answered in time
     * is judged, whatever its deadline.) */
    uint32_t unjudged = 0;
    for (uint32_t si = 0; si < h->nsubs; si++) {
      const syn_submission_t *s = &h->subs[si];
      int64_t deadline = deadline_of(s, heal_at_ns, bound_ns);
      if (!h->honest[s->node] || deadline <= end_ns) continue;
      if (s->node >= h->n && resp[si] != UINT32_MAX && h->logs[s->node].items[resp[si]].at_ns <= deadline) continue;
      unjudged++;
    }
    free(resp);
    if (unjudged) {
      char ts_x[32];
      snprintf(v->explain, sizeof v->explain,
               "%u of %u submissions not judged: their deadlines fall after the end of the run at %s",
               unjudged, h->nsubs, fmt_time(ts_x, end_ns));
    }
    return;
  }
  free(resp);
  const syn_submission_t *s = &h->subs[best_sub];
  int64_t deadline = deadline_of(s, heal_at_ns, bound_ns);
  char q[SYN_QUOTE_CAP], ts_sub[32], ts_dl[32], ts_heal[32], ts_bound[32], ts_x[32], ts_end[32];
  syn_quote(q, syn_history_value(h, s->off), s->len);
  const char *quiet = end_ns == INT64_MAX ? "the run went quiet without it" : "the run ended at ";
  const char *end_text = end_ns == INT64_MAX ? "" : fmt_time(ts_end, end_ns);
  if (s->node >= h->n && best_pos < 0)
    verdict_fail(v, (int32_t)s->node, (int32_t)s->node, -1, (int64_t)best_sub + 1,
                 "client %u never got a response to %s (its op %u, submission %u, at %s); "
                 "its deadline was %s (max(submitted, heal at %s) + bound %s) and %s%s",
                 s->node, q, sub_rank(h, best_sub), best_sub + 1, fmt_time(ts_sub, s->at_ns),
                 fmt_time(ts_dl, deadline), fmt_time(ts_heal, heal_at_ns),
                 fmt_time(ts_bound, bound_ns), quiet, end_text);
  else if (s->node >= h->n)
    verdict_fail(v, (int32_t)s->node, (int32_t)s->node, best_pos, (int64_t)best_sub + 1,
                 "client %u got the response to %s (its op %u, submission %u, at %s) late, "
                 "at %s (position %lld); its deadline was %s (max(submitted, heal at %s) + "
                 "bound %s)",
                 s->node, q, sub_rank(h, best_sub), best_sub + 1, fmt_time(ts_sub, s->at_ns),
                 fmt_time(ts_x, h->logs[s->node].items[best_pos - 1].at_ns), (long long)best_pos,
                 fmt_time(ts_dl, deadline), fmt_time(ts_heal, heal_at_ns),
                 fmt_time(ts_bound, bound_ns));
  else if (best_pos < 0)
    verdict_fail(v, (int32_t)best_node, (int32_t)s->node, -1, (int64_t)best_sub + 1,
                 "node %u never delivered %s (submission %u, at node %u at %s); its deadline "
                 "was %s (max(submitted, heal at %s) + bound %s) and %s%s",
                 best_node, q, best_sub + 1, s->node, fmt_time(ts_sub, s->at_ns),
                 fmt_time(ts_dl, deadline), fmt_time(ts_heal, heal_at_ns),
                 fmt_time(ts_bound, bound_ns), quiet, end_text);
  else
    verdict_fail(v, (int32_t)best_node, (int32_t)s->node, best_pos, (int64_t)best_sub + 1,
                 "node %u delivered %s (submission %u, at node %u at %s) late, at %s "
                 "(position %lld); its deadline was %s (max(submitted, heal at %s) + bound %s)",
                 best_node, q, best_sub + 1, s->node, fmt_time(ts_sub, s->at_ns),
                 fmt_time(ts_x, h->logs[best_node].items[best_pos - 1].at_ns),
                 (long long)best_pos, fmt_time(ts_dl, deadline), fmt_time(ts_heal, heal_at_ns),
                 fmt_time(ts_bound, bound_ns));
}

/* ---- TOM's timestamp order ---- */

void syn_check_ts_order(const syn_history_t *h, syn_verdict_t *v) {
  verdict_init(v, "ts_order");
  for (uint32_t i = 0; i < h->n; i++) {
    if (!h->honest[i]) continue;
    const syn_delivery_log_t *lg = &h->logs[i];
    for (uint32_t p = 1; p < lg->count; p++) {
      const syn_delivery_t *a = &lg->items[p - 1], *b = &lg->items[p];
      if (b->ts > a->ts || (b->ts == a->ts && b->origin > a->origin)) continue;
      char qa[SYN_QUOTE_CAP], qb[SYN_QUOTE_CAP];
      verdict_fail(v, (int32_t)i, (int32_t)i, (int64_t)p, (int64_t)p + 1,
                   "node %u delivered out of (ts, origin) order: %s (ts %llu, origin %u) at "
                   "position %u, then %s (ts %llu, origin %u) at position %u",
                   i, quote_delivery(h, qa, a), (unsigned long long)a->ts, a->origin, p,
                   quote_delivery(h, qb, b), (unsigned long long)b->ts, b->origin, p + 1);
      return;
    }
  }
}

/* ---- batches ---- */

static uint32_t commit_count(const syn_history_t *h, uint32_t node) {
  return h->commits[node].count;
}

static uint64_t commit_seq(const syn_history_t *h, uint32_t node, uint32_t pos) {
  return h->commits[node].items[pos].seq;
}

static bool commit_same(const syn_history_t *h, uint32_t a, uint32_t pa, uint32_t b, uint32_t pb) {
  return memcmp(h->commits[a].items[pa].digest, h->commits[b].items[pb].digest,
                SYN_HISTORY_DIGEST_BYTES) == 0;
}

/* The first 8 bytes of a digest in hex, for a human. */
#define DIGEST_SHOWN_BYTES 8
static const char *digest_hex(char out[2 * DIGEST_SHOWN_BYTES + 1], const syn_commit_t *c) {
  syn_hex(c->digest, DIGEST_SHOWN_BYTES, out);
  return out;
}

void syn_check_batches(const syn_history_t *h, syn_verdict_t *v) {
  verdict_init(v, "batches");
  const seq_logs_t l = { h, commit_count, commit_seq, commit_same };
  uint32_t a, pa, b, pb;
  char xa[2 * DIGEST_SHOWN_BYTES + 1], xb[2 * DIGEST_SHOWN_BYTES + 1];
  if (seq_unordered(&l, &a, &pa)) {
    const syn_commit_t *x = &h->commits[a].items[pa - 1], *y = &h->commits[a].items[pa];
    verdict_fail(v, (int32_t)a, (int32_t)a, (int64_t)pa, (int64_t)pa + 1,
                 "node %u's commit log is not increasing in seq: seq %llu (digest %s...) at "
                 "commit %u, then seq %llu (digest %s...) at commit %u",
                 a, (unsigned long long)x->seq, digest_hex(xa, x), pa, (unsigned long long)y->seq,
                 digest_hex(xb, y), pa + 1);
    return;
  }
  if (!seq_divergence(&l, &a, &pa, &b, &pb)) return;
  const syn_commit_t *ca = &h->commits[a].items[pa], *cb = &h->commits[b].items[pb];
  verdict_fail(v, (int32_t)a, (int32_t)b, (int64_t)pa + 1, (int64_t)pb + 1,
               "nodes %u and %u committed different batches at seq %llu: node %u's digest %s..., "
               "node %u's digest %s... (commits %u and %u of their logs)",
               a, b, (unsigned long long)ca->seq, a, digest_hex(xa, ca), b, digest_hex(xb, cb),
               pa + 1, pb + 1);
}

/* ---- exactly once ---- */

/* (origin, ts): a request's identity, whatever its value. */
static uint64_t hash_request(uint32_t origin, uint64_t ts) {
  return mix64(((uint64_t)origin << 32) ^ mix64(ts ^ 0x0e0ce5eed0000000ULL));
}

/* Key: (origin, ts) in one log. */
typedef struct {
  const syn_delivery_log_t *log;
  uint32_t origin;
  uint64_t ts;
} req_key_t;

static bool req_eq(const void *ctx, uint32_t idx) {
  const req_key_t *k = ctx;
  const syn_delivery_t *d = &k->log->items[idx];
  return d->origin == k->origin && d->ts == k->ts;
}

/* Replica i's log indexed by (origin, ts). Fails v and returns 1 when the
 * log holds one (origin, ts) twice; 0 with t built; <0 on error. */
static int index_requests(const syn_history_t *h, uint32_t i, table_t *t, syn_verdict_t *v) {
  const syn_delivery_log_t *lg = &h->logs[i];
  if (table_new(t, lg->count)) return -SYN_ENOMEM;
  for (uint32_t p = 0; p < lg->count; p++) {
    const syn_delivery_t *d = &lg->items[p];
    req_key_t k = { lg, d->origin, d->ts };
    uint32_t first = table_find(t, hash_request(d->origin, d->ts), req_eq, &k, p);
    if (first == UINT32_MAX) continue;
    const syn_delivery_t *e = &lg->items[first];
    char qa[SYN_QUOTE_CAP], qb[SYN_QUOTE_CAP];
    verdict_fail(v, (int32_t)i, (int32_t)i, (int64_t)first + 1, (int64_t)p + 1,
                 "node %u executed the request of origin %u with ts %llu twice: %s at seq "
                 "%llu (position %u) and %s at seq %llu (position %u)",
                 i, d->origin, (unsigned long long)d->ts, quote_delivery(h, qa, e),
                 (unsigned long long)e->seq, first + 1, quote_delivery(h, qb, d),
                 (unsigned long long)d->seq, p + 1);
    table_free(t);
    return 1;
  }
  return 0;
}

/* Fails v for the response at position p of client c's log, which no
 * honest replica executed; names the op when c submitted a k-th one. */
static void fail_unexecuted(const syn_history_t *h, uint32_t c, uint32_t p, syn_verdict_t *v) {
  const syn_delivery_t *d = &h->logs[c].items[p];
  char q[SYN_QUOTE_CAP], qs[SYN_QUOTE_CAP], qop[SYN_QUOTE_CAP + 8] = "";
  uint64_t k_at = 0, k = client_rank(h, c, d->seq);
  for (uint32_t si = 0; si < h->nsubs; si++) {
    const syn_submission_t *s = &h->subs[si];
    if (s->node != c || ++k_at != k) continue;
    snprintf(qop, sizeof qop, " to %s", syn_quote(qs, syn_history_value(h, s->off), s->len));
    break;
  }
  verdict_fail(v, (int32_t)c, -1, (int64_t)p + 1, -1,
               "client %u got the response %s%s (its request with ts %llu, committed at seq "
               "%llu, position %u of its log), but no honest replica executed a request of "
               "client %u with ts %llu",
               c, quote_delivery(h, q, d), qop, (unsigned long long)d->seq,
               (unsigned long long)d->ts, p + 1, c, (unsigned long long)d->seq);
}

void syn_check_exactly_once(const syn_history_t *h, syn_verdict_t *v) {
  verdict_init(v, "exactly_once");
  /* One honest replica's index at a time: it shows (a) that replica's
   * repeats, and (b) which honest clients' responses it executed (a
   * response's (client, seq) is the request's (origin, ts)). executed[] is
   * flat: base[c] + position in c's log. */
  uint32_t base[SYN_MAX_HISTORY_NODES] = { 0 };
  uint64_t total = 0;
  for (uint32_t c = h->n; c < nodes_all(h); c++) {
    base[c] = (uint32_t)total;
    if (h->honest[c]) total += h->logs[c].count;
  }
  if (total > UINT32_MAX) { fail_nomem(v); return; }
  uint8_t *executed = calloc(total ? total : 1, 1);
  if (executed == NULL) { fail_nomem(v); return; }
  bool any_honest = false;
  for (uint32_t i = 0; i < h->n; i++) {
    if (!h->honest[i]) continue;
    any_honest = true;
    table_t t;
    int rc = index_requests(h, i, &t, v);
    if (rc < 0) fail_nomem(v);
    if (rc != 0) { free(executed); return; }
    for (uint32_t c = h->n; c < nodes_all(h); c++) {
      if (!h->honest[c]) continue;
      for (uint32_t p = 0; p < h->logs[c].count; p++) {
        req_key_t k = { &h->logs[i], c, h->logs[c].items[p].seq };
        if (table_find(&t, hash_request(c, k.ts), req_eq, &k, UINT32_MAX) != UINT32_MAX)
          executed[base[c] + p] = 1;
      }
    }
    table_free(&t);
  }
  /* (b) is not judged when every replica is Byzantine: nobody can vouch. */
  for (uint32_t c = h->n; any_honest && c < nodes_all(h); c++) {
    if (!h->honest[c]) continue;
    for (uint32_t p = 0; p < h->logs[c].count; p++) {
      if (executed[base[c] + p]) continue;
      fail_unexecuted(h, c, p, v);
      free(executed);
      return;
    }
  }
  free(executed);
}

/* ---- the clients' KV history ---- */

int syn_history_to_lin(const syn_history_t *h, syn_lin_history_t *out, char *why, size_t cap) {
  if (why && cap) why[0] = '\0';
  uint32_t *resp = client_responses_new(h);
  if (resp == NULL) return -SYN_ENOMEM;
  uint32_t failed = UINT32_MAX;
  int rc = 0;
  /* A client runs one op at a time, in submission order: an op queued
   * behind another is invoked when that one is answered. */
  int64_t free_at[SYN_MAX_HISTORY_NODES] = { 0 };
  for (uint32_t si = 0; si < h->nsubs && rc == 0; si++) {
    const syn_submission_t *s = &h->subs[si];
    if (s->node < h->n) continue;
    syn_lin_cmd_t cmd;
    uint32_t id;
    int64_t invoke = s->at_ns > free_at[s->node] ? s->at_ns : free_at[s->node];
    failed = si;
    if ((rc = syn_lin_parse((const char *)syn_history_value(h, s->off), s->len, &cmd)) != 0) break;
    if ((rc = syn_lin_history_invoke(out, s->node, &cmd, invoke, &id)) != 0) break;
    if (resp[si] == UINT32_MAX || !h->honest[s->node]) continue;   /* pending */
    const syn_delivery_t *d = &h->logs[s->node].items[resp[si]];
    if (d->at_ns > free_at[s->node]) free_at[s->node] = d->at_ns;
    rc = syn_lin_history_respond(out, id, syn_history_value(h, d->off), d->len, d->at_ns);
  }
  free(resp);
  if (rc && why && cap && failed != UINT32_MAX) {
    const syn_submission_t *s = &h->subs[failed];
    char q[SYN_QUOTE_CAP];
    syn_quote(q, syn_history_value(h, s->off), s->len);
    if (rc == -SYN_EPARSE)
      snprintf(why, cap, "submission %u at client %u: %s is not a key-value op (put k v, get k, del k, cas k old new)",
               failed + 1, s->node, q);
    else if (rc == -SYN_ELIMIT)
      snprintf(why, cap, "submission %u at client %u: the clients' ops exceed a SYN_MAX_LIN_* limit (%u ops, %u bytes)",
               failed + 1, s->node, (unsigned)SYN_MAX_LIN_HISTORY_OPS, (unsigned)SYN_MAX_LIN_HISTORY_BYTES);
    else
      snprintf(why, cap, "submission %u at client %u (%s): %s", failed + 1, s->node, q, syn_strerror(rc));
  }
  return rc;
}
