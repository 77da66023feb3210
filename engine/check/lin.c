/* lin.c — the key-value client history and its linearizability checker.
 *
 * Owns: recording a client history (op texts parsed to the KV grammar,
 * every byte in one arena bounded by SYN_MAX_LIN_*), and judging it:
 * per-key partitioning (linearizability is local, Herlihy & Wing, so each
 * key's sub-history is checked on its own), a cheap pre-pass for results
 * no order can explain, the Wing & Gong search with Lowe's memo of
 * (linearized set, state), and a shrinking pass that turns a failed search
 * into a small set of operations to show.
 * Never: touches the app, a protocol, a clock or a Lua state; never writes
 * to the history it judges; never guesses — a search that runs out of steps
 * or memory says "could not decide".
 *
 * The search, per key (ops filtered first: "ERR…" results and pending gets
 * dropped, as neither can change what any other op observes):
 *  - every op is a call event at invoke_ns and, if it has a response, a
 *    return event at respond_ns, in one list sorted by time, calls before
 *    returns at equal times (so equal times are concurrent);
 *  - the calls before the list's first return are the ops that may come
 *    next; try each against the sequential model; on success remove its
 *    events from the list (dancing links), push (op, old state) and start
 *    over; on reaching a return, that op can no longer be placed: try the
 *    pending ops invoked by then, and when none goes either, pop and try the
 *    next candidate after the popped one;
 *  - a configuration is (set of placed ops, model state); one seen before is
 *    not explored again (the memo: Zobrist-hashed; the set as a bitset of
 *    the ops with a response, in invocation order, stored trimmed of its leading
 *    all-placed and trailing none-placed words, and one of the pending ops;
 *    bounded by SYN_MAX_LIN_CACHE_BYTES);
 *  - a read (an op that only observes) that may go next and matches the
 *    state is placed at once, with no alternative tried in its stead: moving
 *    a read earlier, to where it may go and sees the same state, never
 *    breaks an order — this keeps concurrent reads from multiplying the
 *    configurations;
 *  - success once every op with a response is placed: pending ops may be
 *    left out. A pending op is only tried where it changes the state, since
 *    placing a no-op is never needed.
 *  - (explaining only) a "maybe" op sits in the main list but need not be
 *    placed: its return bars nothing, and it can no longer be placed once an
 *    op invoked after that return has been; a read placed after passing such
 *    a return is not forced, since it may have jumped the maybe op;
 *  - the model state of one key is a value id (0 = absent); values are
 *    interned per key, so a step is a few integer compares.
 *
 * Explaining a failure: the history is cut at the earliest response time
 * at which it already fails (a prefix of a linearizable history is
 * linearizable, with later responses made pending); then the ops answered
 * before some time are relaxed, as late a time as still fails; then the
 * rest are relaxed in halving chunks, then one at a time, until none more
 * can be. Relaxing an op: a write told "OK" becomes a "maybe" (it took
 * effect within its own time window, or not at all), any other op is
 * dropped. A relaxation is kept only when the history still fails.
 * Relaxing only removes constraints, so what stays as recorded is proven to
 * be a reason the history fails: those ops have no linearization whatever
 * the key's other operations did. (Dropping writes instead would invent
 * reasons — a read of a value nobody wrote — that were not the history's.)
 * A proof of failure costs about as much as the history it covers, so the
 * cut and the relaxed front are found by galloping from their cheap ends. */
#include "lin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- recording ---- */

static bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

int syn_lin_parse(const char *text, size_t len, syn_lin_cmd_t *out) {
  memset(out, 0, sizeof *out);
  if (text == NULL) return -SYN_EINVAL;
  if (len > SYN_MAX_LIN_TEXT_BYTES) return -SYN_ELIMIT;
  const char *tok[5];
  size_t tlen[5];
  int ntok = 0;
  size_t i = 0;
  while (i < len) {
    while (i < len && is_space(text[i])) i++;
    if (i == len) break;
    if (ntok == 5) return -SYN_EPARSE;
    size_t start = i;
    while (i < len && !is_space(text[i])) i++;
    tok[ntok] = text + start;
    tlen[ntok] = i - start;
    ntok++;
  }
  if (ntok == 0) return -SYN_EPARSE;
  static const struct { const char *verb; syn_lin_kind_t kind; int arity; } verbs[] = {
    { "put", SYN_LIN_PUT, 3 }, { "get", SYN_LIN_GET, 2 }, { "del", SYN_LIN_DEL, 2 }, { "cas", SYN_LIN_CAS, 4 },
  };
  for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++) {
    if (tlen[0] != 3 || memcmp(tok[0], verbs[v].verb, 3) != 0) continue;
    if (ntok != verbs[v].arity) return -SYN_EPARSE;
    out->kind = verbs[v].kind;
    out->key = tok[1]; out->key_len = tlen[1];
    if (ntok > 2) { out->a = tok[2]; out->a_len = tlen[2]; }
    if (ntok > 3) { out->b = tok[3]; out->b_len = tlen[3]; }
    return 0;
  }
  return -SYN_EPARSE;
}

const char *syn_lin_kind_name(int kind) {
  switch (kind) {
  case SYN_LIN_PUT: return "put";
  case SYN_LIN_GET: return "get";
  case SYN_LIN_DEL: return "del";
  case SYN_LIN_CAS: return "cas";
  default: return "?";
  }
}

void syn_lin_history_init(syn_lin_history_t *h) {
  memset(h, 0, sizeof *h);
  syn_buf_init(&h->arena, SYN_MAX_LIN_HISTORY_BYTES);
}

void syn_lin_history_free(syn_lin_history_t *h) {
  free(h->ops);
  syn_buf_free(&h->arena);
  memset(h, 0, sizeof *h);
}

static bool cmd_valid(const syn_lin_cmd_t *c) {
  int want_a = c->kind == SYN_LIN_PUT || c->kind == SYN_LIN_CAS;
  int want_b = c->kind == SYN_LIN_CAS;
  if (c->kind < SYN_LIN_PUT || c->kind > SYN_LIN_CAS) return false;
  if (c->key == NULL || c->key_len == 0) return false;
  if (want_a != (c->a != NULL && c->a_len > 0)) return false;
  if (want_b != (c->b != NULL && c->b_len > 0)) return false;
  return c->key_len <= SYN_MAX_LIN_TEXT_BYTES && c->a_len <= SYN_MAX_LIN_TEXT_BYTES &&
         c->b_len <= SYN_MAX_LIN_TEXT_BYTES;
}

static uint32_t arena_add(syn_lin_history_t *h, const void *p, size_t n) {
  uint32_t off = (uint32_t)h->arena.len;
  int rc = syn_buf_append(&h->arena, p, n);
  SYN_ASSERT(rc == 0);   /* room was reserved by the caller */
  return off;
}

int syn_lin_history_invoke(syn_lin_history_t *h, uint32_t client, const syn_lin_cmd_t *cmd,
                           int64_t invoke_ns, uint32_t *out_id) {
  if (client > SYN_MAX_LIN_CLIENT || invoke_ns < 0 || !cmd_valid(cmd)) return -SYN_EINVAL;
  if (h->count >= SYN_MAX_LIN_HISTORY_OPS) return -SYN_ELIMIT;
  size_t bytes = cmd->key_len + cmd->a_len + cmd->b_len;
  if (h->arena.len > SYN_MAX_LIN_HISTORY_BYTES - bytes) return -SYN_ELIMIT;
  if (h->count == h->cap) {
    uint32_t ncap = h->cap ? h->cap * 2 : 64;
    if (ncap > SYN_MAX_LIN_HISTORY_OPS) ncap = SYN_MAX_LIN_HISTORY_OPS;
    syn_lin_op_t *p = realloc(h->ops, (size_t)ncap * sizeof *p);
    if (p == NULL) return -SYN_ENOMEM;
    h->ops = p;
    h->cap = ncap;
  }
  int rc = syn_buf_reserve(&h->arena, bytes);
  if (rc) return rc;
  syn_lin_op_t *o = &h->ops[h->count];
  memset(o, 0, sizeof *o);
  o->client = client;
  o->kind = (uint8_t)cmd->kind;
  o->invoke_ns = invoke_ns;
  o->respond_ns = -1;
  o->key_len = (uint32_t)cmd->key_len;
  o->key_off = arena_add(h, cmd->key, cmd->key_len);
  o->a_len = (uint32_t)cmd->a_len;
  o->a_off = arena_add(h, cmd->a, cmd->a_len);
  o->b_len = (uint32_t)cmd->b_len;
  o->b_off = arena_add(h, cmd->b, cmd->b_len);
  *out_id = h->count++;
  return 0;
}

int syn_lin_history_respond(syn_lin_history_t *h, uint32_t id, const uint8_t *result, size_t len,
                            int64_t respond_ns) {
  if (id >= h->count || (result == NULL && len > 0)) return -SYN_EINVAL;
  syn_lin_op_t *o = &h->ops[id];
  if (o->responded) return -SYN_ESTATE;
  if (respond_ns < o->invoke_ns) return -SYN_EINVAL;
  if (len > SYN_MAX_LIN_TEXT_BYTES || h->arena.len > SYN_MAX_LIN_HISTORY_BYTES - len) return -SYN_ELIMIT;
  int rc = syn_buf_reserve(&h->arena, len);
  if (rc) return rc;
  o->res_len = (uint32_t)len;
  o->res_off = arena_add(h, result, len);
  o->respond_ns = respond_ns;
  o->responded = true;
  return 0;
}

/* ---- explanations ---- */

typedef struct { char *p; size_t cap, len; } sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...) {
  if (b->len + 1 >= b->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  b->len += (size_t)n;
  if (b->len >= b->cap) b->len = b->cap - 1;
}


/* A key as the explanation shows it: bare when it is a short printable
 * token, quoted otherwise. */
static const char *key_text(char out[SYN_QUOTE_CAP], const uint8_t *p, uint32_t len) {
  bool bare = len > 0 && len <= SYN_QUOTE_MAX_BYTES;
  for (uint32_t i = 0; bare && i < len; i++)
    bare = p[i] > 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\' && p[i] != ':';
  if (!bare) return syn_quote(out, p, len);
  memcpy(out, p, len);
  out[len] = '\0';
  return out;
}

static const char *fmt_time(char out[32], int64_t ns) {
  syn_time_format(ns, out, 32);
  return out;
}

/* "op 3: put x="a" by client 1 [t=1ms..2ms] -> "OK"" (pending: "..pending]"). */
static void describe_op(sbuf_t *b, const syn_lin_history_t *h, uint32_t id) {
  const syn_lin_op_t *o = &h->ops[id];
  char k[SYN_QUOTE_CAP], a[SYN_QUOTE_CAP], c[SYN_QUOTE_CAP], t0[32], t1[32];
  key_text(k, syn_lin_history_bytes(h, o->key_off), o->key_len);
  sb_printf(b, "op %u: ", id + 1);
  switch (o->kind) {
  case SYN_LIN_PUT:
    sb_printf(b, "put %s=%s", k, syn_quote(a, syn_lin_history_bytes(h, o->a_off), o->a_len));
    break;
  case SYN_LIN_CAS:
    sb_printf(b, "cas %s %s->%s", k, syn_quote(a, syn_lin_history_bytes(h, o->a_off), o->a_len),
              syn_quote(c, syn_lin_history_bytes(h, o->b_off), o->b_len));
    break;
  default: sb_printf(b, "%s %s", syn_lin_kind_name(o->kind), k); break;
  }
  sb_printf(b, " by client %u [t=%s..", o->client, fmt_time(t0, o->invoke_ns));
  if (!o->responded) { sb_printf(b, "pending]"); return; }
  sb_printf(b, "%s] -> %s", fmt_time(t1, o->respond_ns),
            syn_quote(c, syn_lin_history_bytes(h, o->res_off), o->res_len));
}

/* ---- the per-key model ---- */

enum { RES_NONE = 0, RES_OK, RES_VALUE, RES_CAS_FAILED, RES_ABSENT, RES_BAD };

/* One op of one key, ready for the model: values are per-key ids, 0 is
 * "absent". */
typedef struct {
  uint32_t id;            /* op id in the history */
  uint8_t kind;
  uint8_t res;            /* RES_*: what the (recorded) response says */
  bool done;              /* has a response; false: pending, may or may not take effect */
  bool maybe;             /* explaining only: a write that may or may not have taken effect,
                           * but if it did, between inv_ns and ret_ns (done is false) */
  bool r_absent;          /* the response shows NOT_FOUND */
  uint32_t w, e, r;       /* written value, cas expected, value read */
  int64_t inv_ns, ret_ns;
} lop_t;

/* The sequential KV store, one key: may o take effect in state s, and
 * which state follows? Pending ops are only allowed where they change the
 * state (leaving one out is always allowed, so a no-op placement is never
 * needed). */
static bool model_step(const lop_t *o, uint32_t s, uint32_t *ns) {
  if (!o->done) {
    switch (o->kind) {
    case SYN_LIN_PUT: *ns = o->w; return o->w != s;
    case SYN_LIN_DEL: *ns = 0; return s != 0;
    case SYN_LIN_CAS: *ns = o->w; return s == o->e && o->w != s;
    default: return false;
    }
  }
  *ns = s;
  bool shows_s = s == o->r || (s == 0 && o->r_absent);
  switch (o->kind) {
  case SYN_LIN_GET: return shows_s;
  case SYN_LIN_PUT: *ns = o->w; return o->res == RES_OK;
  case SYN_LIN_DEL: *ns = 0; return o->res == RES_OK || (o->res == RES_ABSENT && s == 0);
  case SYN_LIN_CAS:
    if (o->res == RES_OK) { *ns = o->w; return s == o->e; }
    if (o->res == RES_ABSENT) return s == 0;
    return o->res == RES_CAS_FAILED && s != o->e && shows_s;
  default: return false;
  }
}

/* The value a done op needs to have been written before it (0: none). */
static uint32_t read_vid(const lop_t *o) {
  if (!o->done) return 0;
  if (o->kind == SYN_LIN_CAS && o->res == RES_OK) return o->e;
  if (o->r_absent) return 0;
  if (o->kind == SYN_LIN_GET || (o->kind == SYN_LIN_CAS && o->res == RES_CAS_FAILED)) return o->r;
  return 0;
}

/* The value o may write (0: none — del writes "absent", which needs no writer). */
static uint32_t write_vid(const lop_t *o) {
  if (o->kind == SYN_LIN_PUT && (!o->done || o->res == RES_OK)) return o->w;
  if (o->kind == SYN_LIN_CAS && (!o->done || o->res == RES_OK)) return o->w;
  return 0;
}

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t hash_bytes(const uint8_t *p, uint32_t len) {
  uint64_t x = 0x9e3779b97f4a7c15ULL ^ len;
  for (uint32_t i = 0; i < len; i++) x = (x ^ p[i]) * 0x100000001b3ULL;
  return mix64(x);
}

/* Interns byte strings of one key to value ids 1, 2, … */
typedef struct {
  const uint8_t *p;
  uint32_t len, vid;
  uint64_t hash;
} intern_slot_t;

typedef struct {
  intern_slot_t *slots;
  uint32_t mask, next_vid;
} intern_t;

static uint32_t intern(intern_t *t, const uint8_t *p, uint32_t len) {
  uint64_t hash = hash_bytes(p, len);
  for (uint32_t i = (uint32_t)hash & t->mask;; i = (i + 1) & t->mask) {
    intern_slot_t *s = &t->slots[i];
    if (s->vid == 0) {
      SYN_ASSERT(t->next_vid <= t->mask / 2);   /* sized for every string of the key */
      *s = (intern_slot_t){ .p = p, .len = len, .vid = t->next_vid++, .hash = hash };
      return s->vid;
    }
    if (s->hash == hash && s->len == len && memcmp(s->p, p, len) == 0) return s->vid;
  }
}

static bool bytes_eq(const uint8_t *p, uint32_t len, const char *lit) {
  size_t n = strlen(lit);
  return len == n && memcmp(p, lit, n) == 0;
}

static bool is_err_result(const syn_lin_history_t *h, const syn_lin_op_t *o) {
  return o->responded && o->res_len >= 3 && memcmp(syn_lin_history_bytes(h, o->res_off), "ERR", 3) == 0;
}

/* Counts, per value id (0 = absent), the ops whose success needs the
 * state to be that value (a pending cas: to take effect). */
static void observe(uint32_t *count, const lop_t *o, int d) {   /* d = +1 / -1 (unsigned wrap) */
  if (!o->done) {
    if (o->kind == SYN_LIN_CAS) count[o->e] += (uint32_t)d;
    return;
  }
  if (o->kind == SYN_LIN_GET || (o->kind == SYN_LIN_CAS && o->res == RES_CAS_FAILED)) {
    count[o->r] += (uint32_t)d;
    if (o->r_absent) count[0] += (uint32_t)d;
  } else if (o->kind == SYN_LIN_CAS && o->res == RES_OK) count[o->e] += (uint32_t)d;
  else if (o->res == RES_ABSENT) count[0] += (uint32_t)d;
}

/* The value a pending op would leave (0: absent). */
static uint32_t pending_writes(const lop_t *o) { return o->kind == SYN_LIN_DEL ? 0 : o->w; }

/* ---- the memo: (placed set, state) configurations seen ---- */

typedef struct {
  uint64_t *words;        /* entries: hash, state<<32|lead, len, len done-op words, the pending words */
  size_t used, cap;       /* in words */
  uint32_t *slots;        /* entry offset + 1; 0 = empty */
  uint32_t mask, count;
  size_t max_bytes;
} cache_t;

static void cache_free(cache_t *c) {
  free(c->words);
  free(c->slots);
  memset(c, 0, sizeof *c);
}

static size_t cache_bytes(size_t words_cap, size_t nslots) {
  return words_cap * sizeof(uint64_t) + nslots * sizeof(uint32_t);
}

static int cache_init(cache_t *c, size_t max_bytes) {
  memset(c, 0, sizeof *c);
  c->max_bytes = max_bytes;
  uint32_t nslots = 1024;
  size_t wcap = 4096;
  if (cache_bytes(wcap, nslots) > max_bytes) return -SYN_ELIMIT;
  c->slots = calloc(nslots, sizeof *c->slots);
  c->words = malloc(wcap * sizeof *c->words);
  if (c->slots == NULL || c->words == NULL) { cache_free(c); return -SYN_ENOMEM; }
  c->mask = nslots - 1;
  c->cap = wcap;
  return 0;
}

static uint32_t *cache_probe(uint32_t *slots, uint32_t mask, uint64_t hash) {
  uint32_t i = (uint32_t)hash & mask;
  while (slots[i] != 0) i = (i + 1) & mask;
  return &slots[i];
}

/* 1 when (bits, state) is new (and now remembered), 0 when seen before,
 * -SYN_ELIMIT when remembering it would pass max_bytes, -SYN_ENOMEM.
 * bits: dwords words for the ops with a response (stored trimmed of
 * leading all-placed and trailing none-placed words); pbits: pwords for
 * the pending ones (stored whole; there are few). */
static int cache_add(cache_t *c, const uint64_t *bits, uint32_t dwords, const uint64_t *pbits,
                     uint32_t pwords, uint32_t state, uint64_t hash) {
  uint32_t lead = 0;
  while (lead < dwords && bits[lead] == ~0ULL) lead++;
  uint32_t end = dwords;
  while (end > lead && bits[end - 1] == 0) end--;
  uint32_t len = end - lead;
  uint64_t tag = (uint64_t)state << 32 | lead;
  for (uint32_t i = (uint32_t)hash & c->mask; c->slots[i] != 0; i = (i + 1) & c->mask) {
    const uint64_t *en = c->words + (c->slots[i] - 1);
    if (en[0] == hash && en[1] == tag && en[2] == len &&
        memcmp(en + 3, bits + lead, (size_t)len * sizeof *bits) == 0 &&
        memcmp(en + 3 + len, pbits, (size_t)pwords * sizeof *bits) == 0)
      return 0;
  }
  size_t nslots = (size_t)c->mask + 1;
  if ((size_t)(c->count + 1) * 2 > nslots) {          /* keep the load at most 1/2 */
    size_t n2 = nslots * 2;
    if (n2 > UINT32_MAX || cache_bytes(c->cap, n2) > c->max_bytes) return -SYN_ELIMIT;
    uint32_t *s2 = calloc(n2, sizeof *s2);
    if (s2 == NULL) return -SYN_ENOMEM;
    for (size_t i = 0; i < nslots; i++)
      if (c->slots[i]) *cache_probe(s2, (uint32_t)(n2 - 1), c->words[c->slots[i] - 1]) = c->slots[i];
    free(c->slots);
    c->slots = s2;
    c->mask = (uint32_t)(n2 - 1);
    nslots = n2;
  }
  size_t need = c->used + 3 + len + pwords;
  if (need > c->cap) {
    size_t cap2 = c->cap * 2;
    while (cap2 < need) cap2 *= 2;
    if (cap2 > UINT32_MAX || cache_bytes(cap2, nslots) > c->max_bytes) {
      cap2 = need;   /* try exactly what is needed before giving up */
      if (cache_bytes(cap2, nslots) > c->max_bytes) return -SYN_ELIMIT;
    }
    uint64_t *w2 = realloc(c->words, cap2 * sizeof *w2);
    if (w2 == NULL) return -SYN_ENOMEM;
    c->words = w2;
    c->cap = cap2;
  }
  uint64_t *en = c->words + c->used;
  en[0] = hash; en[1] = tag; en[2] = len;
  memcpy(en + 3, bits + lead, (size_t)len * sizeof *bits);
  memcpy(en + 3 + len, pbits, (size_t)pwords * sizeof *bits);
  *cache_probe(c->slots, c->mask, hash) = (uint32_t)(c->used + 1);
  c->used = need;
  c->count++;
  return 1;
}

/* ---- the search ---- */

typedef struct ev {
  struct ev *prev, *next;
  struct ev *ret;         /* calls: the matching return; NULL when pending */
  int64_t t_ns;
  uint32_t op;            /* index into the lop array */
  bool is_call;
} ev_t;

static int ev_cmp(const void *pa, const void *pb) {
  const ev_t *a = pa, *b = pb;
  if (a->t_ns != b->t_ns) return a->t_ns < b->t_ns ? -1 : 1;
  if (a->is_call != b->is_call) return a->is_call ? -1 : 1;
  return (a->op > b->op) - (a->op < b->op);
}

static void lift(ev_t *call) {
  call->prev->next = call->next;
  if (call->next) call->next->prev = call->prev;
  ev_t *r = call->ret;
  if (r) {
    r->prev->next = r->next;
    if (r->next) r->next->prev = r->prev;
  }
}

static void unlift(ev_t *call) {
  ev_t *r = call->ret;
  if (r) {
    r->prev->next = r;
    if (r->next) r->next->prev = r;
  }
  call->prev->next = call;
  if (call->next) call->next->prev = call;
}

typedef enum { S_LIN = 0, S_NOT, S_BUDGET, S_ROOM, S_NOMEM } search_rc_t;

/* A placed op: its call event, the state before it, and where its
 * candidates were being tried (the pending list, below bound_ns). */
typedef struct {
  ev_t *call;
  uint32_t state;
  bool pending;
  bool forced;             /* a read placed as soon as it matched: no alternative to try */
  bool skipped;            /* the scan had passed an unplaced maybe op's return */
  int64_t bound_ns;
  int64_t max_inv_ns;      /* latest invocation among the ops placed before */
} frame_t;

/* A done op that leaves the state as it found it (it only observes). */
static bool is_read(const lop_t *o) {
  return o->done && (o->kind == SYN_LIN_GET || o->res == RES_CAS_FAILED || o->res == RES_ABSENT);
}

static uint64_t zkey(uint32_t i) { return mix64((uint64_t)i * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL); }

static void bit_flip(uint64_t *bits, const uint32_t *bitpos, uint64_t *zob, uint32_t i, bool done) {
  bits[bitpos[i] / 64] ^= 1ULL << (bitpos[i] % 64);
  if (done) *zob ^= zkey(i);
}

static bool bit_get(const uint64_t *bits, const uint32_t *bitpos, uint32_t i) {
  return (bits[bitpos[i] / 64] >> (bitpos[i] % 64)) & 1;
}

typedef struct { uint32_t kind, e, w, pos; } effect_t;

static int effect_cmp(const void *pa, const void *pb) {
  const effect_t *a = pa, *b = pb;
  if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
  if (a->e != b->e) return a->e < b->e ? -1 : 1;
  if (a->w != b->w) return a->w < b->w ? -1 : 1;
  return (a->pos > b->pos) - (a->pos < b->pos);
}

/* Is there an order of ops[0..n) that explains every result? Spends at
 * most budget steps (added to *steps). n <= SYN_MAX_LIN_OPS_PER_KEY.
 *
 * Ops with a response live in the main list (calls and returns); pending
 * ops' calls in a list of their own, by invocation. At a configuration the
 * candidates are first the main list's calls before its first return, then
 * the pending calls invoked no later than that return (bound): a pending
 * op is placed only once no op with a response can go next, just in time
 * for whatever needs it. The order of trying changes no verdict, only how
 * soon it is reached. */
static search_rc_t search(const lop_t *ops, uint32_t n, uint64_t budget, uint64_t *steps) {
  SYN_ASSERT(n <= SYN_MAX_LIN_OPS_PER_KEY);
  uint32_t ndone = 0, nmain = 0;          /* main list: done and maybe ops */
  for (uint32_t i = 0; i < n; i++) { ndone += ops[i].done; nmain += ops[i].done || ops[i].maybe; }
  if (ndone == 0) return S_LIN;
  uint32_t nev = n + nmain, dwords = (nmain + 63) / 64, pwords = (n - nmain + 63) / 64;
  search_rc_t rc = S_NOMEM;
  uint64_t spent = 0;
  cache_t cache;
  memset(&cache, 0, sizeof cache);
  ev_t *evs = calloc((size_t)nev + 2, sizeof *evs);
  uint32_t *call_of = malloc((size_t)n * sizeof *call_of);
  frame_t *frames = malloc((size_t)n * sizeof *frames);
  uint64_t *bits = calloc((size_t)dwords + pwords, sizeof *bits);
  uint32_t *bitpos = malloc((size_t)n * sizeof *bitpos);   /* op -> its bit */
  uint32_t nvals = 1;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t m = ops[i].w > ops[i].e ? ops[i].w : ops[i].e;
    if (ops[i].r > m) m = ops[i].r;
    if (m + 1 > nvals) nvals = m + 1;
  }
  uint32_t *twin = NULL;
  uint32_t *obs = calloc(nvals, sizeof *obs);              /* unplaced observers per value */
  uint32_t *pend = malloc(((size_t)n - nmain + 1) * sizeof *pend);  /* pending ops in bit order */
  uint64_t *peff = calloc((size_t)pwords + 1, sizeof *peff);
  if (evs == NULL || call_of == NULL || frames == NULL || bits == NULL || bitpos == NULL ||
      obs == NULL || pend == NULL || peff == NULL)
    goto done;
  twin = malloc((size_t)n * sizeof *twin);         /* see below */
  effect_t *eff = malloc(((size_t)n - nmain + 1) * sizeof *eff);
  if (twin == NULL || eff == NULL) { free(eff); goto done; }
  for (uint32_t i = 0; i < n; i++) observe(obs, &ops[i], +1);

  int crc = cache_init(&cache, SYN_MAX_LIN_CACHE_BYTES);
  if (crc) { rc = crc == -SYN_ELIMIT ? S_ROOM : S_NOMEM; goto done; }

  ev_t *head = &evs[0], *phead = &evs[1], *sorted = &evs[2];
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++) {
    sorted[k++] = (ev_t){ .t_ns = ops[i].inv_ns, .op = i, .is_call = true };
    if (ops[i].done || ops[i].maybe) sorted[k++] = (ev_t){ .t_ns = ops[i].ret_ns, .op = i, .is_call = false };
  }
  SYN_ASSERT(k == nev);
  qsort(sorted, nev, sizeof *sorted, ev_cmp);
  ev_t *tail = head, *ptail = phead;
  uint32_t nd = 0, np = 0;     /* bits in invocation order: placed sets then grow from the front */
  for (uint32_t j = 0; j < nev; j++) {
    ev_t *e = &sorted[j];
    bool main_op = ops[e->op].done || ops[e->op].maybe;
    if (e->is_call && main_op) bitpos[e->op] = nd++;
    else if (e->is_call) { pend[np] = e->op; bitpos[e->op] = dwords * 64 + np++; }
    if (e->is_call && !main_op) { e->prev = ptail; ptail->next = e; ptail = e; continue; }
    e->prev = tail;
    tail->next = e;
    tail = e;
    if (e->is_call) call_of[e->op] = j;
    else sorted[call_of[e->op]].ret = e;   /* its call sorts first: ret >= inv, calls first on ties */
  }
  tail->next = NULL;
  ptail->next = NULL;
  /* Pending ops with the same effect (kind, expected, written) differ only
   * in when they were invoked, and a pending op has no deadline: whatever
   * an order does with a later one, it can do with an earlier unplaced
   * twin instead. So a pending op is only tried once its earlier twin is
   * placed (twin[op], UINT32_MAX for none): one order per group, not all. */
  for (uint32_t j = 0; j < np; j++) {
    const lop_t *o = &ops[pend[j]];
    eff[j] = (effect_t){ o->kind, o->e, o->w, j };
  }
  qsort(eff, np, sizeof *eff, effect_cmp);
  for (uint32_t i = 0; i < n; i++) twin[i] = UINT32_MAX;
  for (uint32_t j = 1; j < np; j++)
    if (eff[j].kind == eff[j - 1].kind && eff[j].e == eff[j - 1].e && eff[j].w == eff[j - 1].w)
      twin[pend[eff[j].pos]] = pend[eff[j - 1].pos];
  free(eff);

  uint32_t state = 0, depth = 0, remaining = ndone;
  uint64_t zob = 0;
  ev_t *e = head->next;        /* the next candidate in the main list, or … */
  ev_t *pe = NULL;             /* … in the pending list, when pending */
  bool pending = false, skipped = false;
  int64_t bound_ns = 0, max_inv_ns = INT64_MIN;
  rc = S_LIN;
  while (remaining > 0) {
    if (spent >= budget) { rc = S_BUDGET; break; }
    spent++;
    ev_t *cand = NULL;
    if (!pending) {
      SYN_ASSERT(e != NULL);   /* an unplaced done op's return is always ahead */
      const lop_t *o = &ops[e->op];
      if (!e->is_call && o->maybe) { skipped = true; e = e->next; continue; }  /* not a barrier */
      if (!e->is_call) { pending = true; bound_ns = e->t_ns; pe = phead->next; continue; }
      /* a maybe op can no longer happen once an op invoked after its
       * return is placed; nor is it worth placing when nothing needs it */
      if (o->maybe && (o->ret_ns < max_inv_ns || obs[pending_writes(o)] == 0)) { e = e->next; continue; }
      cand = e;
    } else {
      /* a pending op whose value no unplaced op needs is never worth placing */
      while (pe != NULL && pe->t_ns <= bound_ns &&
             (obs[pending_writes(&ops[pe->op])] == 0 ||
              (twin[pe->op] != UINT32_MAX && !bit_get(bits, bitpos, twin[pe->op])))) {
        pe = pe->next;
        spent++;               /* skipping is work too: the budget bounds time */
      }
      if (pe != NULL && pe->t_ns <= bound_ns) cand = pe;
    }
    bool dead = cand == NULL;  /* nothing more to try here */
    if (!dead) {
      const lop_t *o = &ops[cand->op];
      uint32_t ns;
      if (model_step(o, state, &ns)) {
        /* A read that may go next and matches goes now: any order that
         * places it later still works with it moved here (it changes no
         * state, and nothing unplaced must precede it), so if this fails,
         * so does every alternative at this configuration. */
        bool forced = is_read(o) && !skipped;   /* (past a maybe op's return: not minimal) */
        bit_flip(bits, bitpos, &zob, cand->op, o->done || o->maybe);
        observe(obs, o, -1);
        /* The memo key: placed done ops, state, and the pending ops placed
         * or past mattering (no unplaced op needs their value): whether such
         * a one was placed or not, what can follow is the same. */
        uint64_t ph = 0;
        for (uint32_t j = 0; j < np; j++) {
          uint32_t q = pend[j];
          bool on = bit_get(bits, bitpos, q) || obs[pending_writes(&ops[q])] == 0;
          if (j % 64 == 0) peff[j / 64] = 0;
          if (on) { peff[j / 64] |= 1ULL << (j % 64); ph ^= zkey(q); }
        }
        spent += np / 64;
        uint64_t hash = mix64(zob ^ mix64(ph) ^ ((uint64_t)ns * 0xd6e8feb86659fd93ULL));
        int added = cache_add(&cache, bits, dwords, peff, pwords, ns, hash);
        if (added < 0) { rc = added == -SYN_ELIMIT ? S_ROOM : S_NOMEM; break; }
        if (added) {
          frames[depth++] = (frame_t){ cand, state, pending, forced, skipped, bound_ns, max_inv_ns };
          state = ns;
          lift(cand);
          if (o->done) remaining--;
          if (o->inv_ns > max_inv_ns) max_inv_ns = o->inv_ns;
          pending = false;
          skipped = false;
          e = head->next;
          continue;
        }
        bit_flip(bits, bitpos, &zob, cand->op, o->done || o->maybe);
        observe(obs, o, +1);
        dead = forced;         /* seen and failed: so has this configuration */
      }
      if (!dead) {
        if (pending) pe = pe->next;
        else e = e->next;
        continue;
      }
    }
    /* undo placements until one has an alternative left to try */
    bool resumed = false;
    while (depth > 0 && !resumed) {
      frame_t f = frames[--depth];
      state = f.state;
      bit_flip(bits, bitpos, &zob, f.call->op, ops[f.call->op].done || ops[f.call->op].maybe);
      observe(obs, &ops[f.call->op], +1);
      unlift(f.call);
      if (ops[f.call->op].done) remaining++;
      pending = f.pending;
      skipped = f.skipped;
      bound_ns = f.bound_ns;
      max_inv_ns = f.max_inv_ns;
      if (pending) pe = f.call->next;
      else e = f.call->next;
      resumed = !f.forced;
    }
    if (!resumed) { rc = S_NOT; break; }
  }
done:
  *steps += spent;
  cache_free(&cache);
  free(evs);
  free(call_of);
  free(frames);
  free(bits);
  free(bitpos);
  free(obs);
  free(pend);
  free(peff);
  free(twin);
  return rc;
}

/* ---- one key ---- */

typedef struct {
  const syn_lin_history_t *h;
  uint64_t max_steps;
  uint64_t steps;
  /* scratch sized for the largest key checked (n ops) */
  lop_t *lops, *sub, *base;
  intern_slot_t *islots;
  uint32_t islots_n;
  int64_t *wmin_inv;      /* per value id: earliest invocation of a writer */
  uint32_t *wmin_idx;     /* … and which lop it is; UINT32_MAX: none */
  uint32_t *wcount;       /* per value id: ops that need it (materialize) */
  uint32_t *wstart, *wlist, *queue;   /* materialize: pending writers by value, worklist */
  uint8_t *gone;
  uint8_t *keep, *trial;
  int64_t *cuts;
} lin_ctx_t;

typedef enum { K_OK, K_VIOLATION, K_BUDGET, K_ROOM, K_NOMEM, K_TOO_MANY } key_rc_t;

typedef struct {
  key_rc_t rc;
  uint32_t n;                 /* ops the search saw */
  uint32_t culprits[SYN_MAX_LIN_CULPRITS];
  uint32_t nculprits, culprits_total;
  bool partial;               /* shrinking stopped on its budget: the set may not be minimal */
} key_result_t;

static int ctx_reserve(lin_ctx_t *c, uint32_t n) {
  size_t nv = (size_t)3 * n + 2;         /* value ids: at most 3 strings per op, plus 0 */
  size_t ns = 16;
  while (ns < 2 * nv + 2) ns *= 2;
  c->lops = malloc((size_t)n * sizeof *c->lops);
  c->sub = malloc((size_t)n * sizeof *c->sub);
  c->base = malloc((size_t)n * sizeof *c->base);
  c->islots = malloc(ns * sizeof *c->islots);
  c->islots_n = (uint32_t)ns;
  c->wmin_inv = malloc(nv * sizeof *c->wmin_inv);
  c->wmin_idx = malloc(nv * sizeof *c->wmin_idx);
  c->wcount = malloc(nv * sizeof *c->wcount);
  c->wstart = malloc((nv + 1) * sizeof *c->wstart);
  c->wlist = malloc((size_t)n * sizeof *c->wlist);
  c->queue = malloc((size_t)n * sizeof *c->queue);
  c->gone = malloc(n);
  c->keep = malloc(n);
  c->trial = malloc(n);
  c->cuts = malloc((size_t)n * sizeof *c->cuts);
  if (!c->lops || !c->sub || !c->base || !c->islots || !c->wmin_inv || !c->wmin_idx ||
      !c->wcount || !c->wstart || !c->wlist || !c->queue || !c->gone || !c->keep || !c->trial ||
      !c->cuts)
    return -SYN_ENOMEM;
  return 0;
}

static void ctx_free(lin_ctx_t *c) {
  free(c->lops); free(c->sub); free(c->base); free(c->islots); free(c->wmin_inv); free(c->wmin_idx);
  free(c->wcount); free(c->wstart); free(c->wlist); free(c->queue); free(c->gone);
  free(c->keep); free(c->trial); free(c->cuts);
}

/* Builds the key's lops from ids[0..nids) (op ids, ascending); returns
 * how many, and the number of value ids used in *nvids. */
static uint32_t build_lops(lin_ctx_t *c, const uint32_t *ids, uint32_t nids, uint32_t *nvids) {
  const syn_lin_history_t *h = c->h;
  uint32_t nslots = 16;
  while (nslots < 2 * (3 * nids + 2) + 2) nslots *= 2;
  SYN_ASSERT(nslots <= c->islots_n);
  memset(c->islots, 0, (size_t)nslots * sizeof *c->islots);
  intern_t in = { c->islots, nslots - 1, 1 };
  uint32_t n = 0;
  for (uint32_t i = 0; i < nids; i++) {
    const syn_lin_op_t *o = &h->ops[ids[i]];
    if (is_err_result(h, o)) continue;                 /* did not take effect */
    if (o->kind == SYN_LIN_GET && !o->responded) continue;  /* observes nothing, changes nothing */
    lop_t *l = &c->lops[n++];
    memset(l, 0, sizeof *l);
    l->id = ids[i];
    l->kind = o->kind;
    l->done = o->responded;
    l->inv_ns = o->invoke_ns;
    l->ret_ns = o->responded ? o->respond_ns : INT64_MAX;
    const uint8_t *a = syn_lin_history_bytes(h, o->a_off), *b = syn_lin_history_bytes(h, o->b_off);
    if (o->kind == SYN_LIN_PUT) l->w = intern(&in, a, o->a_len);
    if (o->kind == SYN_LIN_CAS) { l->e = intern(&in, a, o->a_len); l->w = intern(&in, b, o->b_len); }
    if (!o->responded) continue;
    const uint8_t *res = syn_lin_history_bytes(h, o->res_off);
    uint32_t rlen = o->res_len;
    switch (o->kind) {
    case SYN_LIN_GET:
      l->res = RES_VALUE;
      l->r_absent = bytes_eq(res, rlen, "NOT_FOUND");
      if (rlen >= 6 && memcmp(res, "VALUE ", 6) == 0) { res += 6; rlen -= 6; }
      l->r = intern(&in, res, rlen);
      break;
    case SYN_LIN_PUT:
      l->res = bytes_eq(res, rlen, "OK") ? RES_OK : RES_BAD;
      break;
    case SYN_LIN_DEL:
      l->res = bytes_eq(res, rlen, "OK") ? RES_OK : bytes_eq(res, rlen, "NOT_FOUND") ? RES_ABSENT : RES_BAD;
      break;
    case SYN_LIN_CAS:
      if (bytes_eq(res, rlen, "OK")) l->res = RES_OK;
      else if (bytes_eq(res, rlen, "NOT_FOUND")) l->res = RES_ABSENT;
      else if (rlen >= 11 && memcmp(res, "CAS_FAILED ", 11) == 0) {
        l->res = RES_CAS_FAILED;
        l->r = intern(&in, res + 11, rlen - 11);
        l->r_absent = bytes_eq(res + 11, rlen - 11, "NOT_FOUND");
      } else l->res = RES_BAD;
      break;
    }
  }
  *nvids = in.next_vid;
  return n;
}

static void add_culprit(key_result_t *kr, uint32_t id) {
  if (kr->nculprits < SYN_MAX_LIN_CULPRITS) kr->culprits[kr->nculprits++] = id;
  kr->culprits_total++;
}

/* Results no order can explain, found without a search: an impossible
 * result, a read of a value nobody wrote to the key, a read of a value
 * whose every writer began after the read returned. The first such op in
 * id order, explained into b; false when there is none. */
static bool prepass(lin_ctx_t *c, uint32_t n, uint32_t nvids, sbuf_t *b, key_result_t *kr) {
  const syn_lin_history_t *h = c->h;
  for (uint32_t v = 0; v < nvids; v++) { c->wmin_inv[v] = INT64_MAX; c->wmin_idx[v] = UINT32_MAX; }
  for (uint32_t i = 0; i < n; i++) {
    uint32_t w = write_vid(&c->lops[i]);
    if (w && c->lops[i].inv_ns < c->wmin_inv[w]) { c->wmin_inv[w] = c->lops[i].inv_ns; c->wmin_idx[w] = i; }
  }
  for (uint32_t i = 0; i < n; i++) {
    const lop_t *o = &c->lops[i];
    const syn_lin_op_t *ho = &h->ops[o->id];
    char k[SYN_QUOTE_CAP], val[SYN_QUOTE_CAP], t[32];
    key_text(k, syn_lin_history_bytes(h, ho->key_off), ho->key_len);
    if (o->done && o->res == RES_BAD) {
      sb_printf(b, "key %s: ", k);
      describe_op(b, h, o->id);
      sb_printf(b, ", a result %s never returns (%s)",
                o->kind == SYN_LIN_CAS ? "a cas" : o->kind == SYN_LIN_PUT ? "a put" : "a del",
                o->kind == SYN_LIN_CAS ? "\"OK\", \"CAS_FAILED <current>\" or \"NOT_FOUND\""
                : o->kind == SYN_LIN_PUT ? "\"OK\"" : "\"OK\" or \"NOT_FOUND\"");
      add_culprit(kr, o->id);
      return true;
    }
    uint32_t v = read_vid(o);
    if (v == 0) continue;
    /* the bytes of value v, as this op names them */
    const uint8_t *vp;
    uint32_t vlen;
    if (o->kind == SYN_LIN_CAS && o->res == RES_OK) {
      vp = syn_lin_history_bytes(h, ho->a_off);
      vlen = ho->a_len;
    } else if (o->kind == SYN_LIN_CAS) {   /* after "CAS_FAILED " */
      vp = syn_lin_history_bytes(h, ho->res_off) + 11;
      vlen = ho->res_len - 11;
    }
    else {
      vp = syn_lin_history_bytes(h, ho->res_off);
      vlen = ho->res_len;
      if (vlen >= 6 && memcmp(vp, "VALUE ", 6) == 0) { vp += 6; vlen -= 6; }
    }
    const char *how = o->kind == SYN_LIN_CAS && o->res == RES_OK ? ", succeeding from " : "";
    if (c->wmin_idx[v] == UINT32_MAX) {
      sb_printf(b, "key %s: ", k);
      describe_op(b, h, o->id);
      sb_printf(b, "%s%s, but no operation ever wrote %s to %s", how, *how ? syn_quote(val, vp, vlen) : "",
                syn_quote(val, vp, vlen), k);
      add_culprit(kr, o->id);
      return true;
    }
    if (c->wmin_inv[v] > o->ret_ns) {
      const lop_t *w = &c->lops[c->wmin_idx[v]];
      sb_printf(b, "key %s: ", k);
      describe_op(b, h, o->id);
      sb_printf(b, "%s%s, but the first write of %s, ", how, *how ? syn_quote(val, vp, vlen) : "",
                syn_quote(val, vp, vlen));
      describe_op(b, h, w->id);
      sb_printf(b, ", was invoked only at %s, after op %u returned", fmt_time(t, w->inv_ns), o->id + 1);
      add_culprit(kr, o->id);
      add_culprit(kr, w->id);
      return true;
    }
  }
  return false;
}

/* ---- explaining a failure: relax, keeping it failing ---- */

/* Relaxing an op only ever removes constraints, so a relaxed history that
 * still fails proves the original fails for a reason inside it: an op
 * that took effect and was told "OK" (a write) is relaxed to pending — it
 * may have happened at any moment after its invocation, or never; any
 * other op (one that only observed the state) is dropped. */
enum { LV_DROPPED = 0, LV_PENDING, LV_MAYBE, LV_AS_RECORDED };

static bool is_write(const lop_t *o) { return o->done && o->res == RES_OK && o->kind != SYN_LIN_GET; }

/* A done op made pending (keep_deadline: a maybe op — it may not have
 * taken effect, but if it did, before its response). A successful cas
 * becomes a put of its new value: that allows everything the cas did and
 * more (so it is still a relaxation), and it needs no state, so relaxed
 * cas ops do not keep one another's values needed in long chains. */
static void relax_op(lop_t *o, bool keep_deadline) {
  o->done = false;
  o->maybe = keep_deadline;
  if (!keep_deadline) o->ret_ns = INT64_MAX;
  o->res = RES_NONE;
  if (o->kind == SYN_LIN_CAS) { o->kind = SYN_LIN_PUT; o->e = 0; }
}

/* The ops of base at their levels into c->sub, then without the pending
 * ops that cannot matter (which changes no verdict): one invoked after
 * every response (it can only come after all of them), or one whose
 * written value nothing needs (no op may observe the state it leaves, so
 * the next op after it overwrites regardless of it). Dropping a pending cas
 * may leave its expected value needed by nobody in turn: a worklist follows
 * such chains to the end. Returns how many. */
static uint32_t materialize(lin_ctx_t *c, const lop_t *base, const uint8_t *level, uint32_t m,
                            uint32_t nvids) {
  uint32_t k = 0;
  int64_t last_ret_ns = INT64_MIN;
  for (uint32_t i = 0; i < m; i++) {
    if (level[i] == LV_DROPPED) continue;
    lop_t o = base[i];
    if (level[i] == LV_PENDING && o.done) relax_op(&o, false);
    if (level[i] == LV_MAYBE) relax_op(&o, true);
    if (o.done && o.ret_ns > last_ret_ns) last_ret_ns = o.ret_ns;
    c->sub[k++] = o;
  }
  uint32_t *need = c->wcount, *start = c->wstart, *writers = c->wlist, *queue = c->queue;
  uint8_t *gone = c->gone;
  memset(need, 0, (size_t)nvids * sizeof *need);
  memset(start, 0, ((size_t)nvids + 1) * sizeof *start);
  for (uint32_t i = 0; i < k; i++) {
    observe(need, &c->sub[i], +1);
    if (!c->sub[i].done) start[pending_writes(&c->sub[i]) + 1]++;
  }
  for (uint32_t v = 0; v < nvids; v++) start[v + 1] += start[v];
  uint32_t nq = 0;
  for (uint32_t i = 0; i < k; i++) {
    const lop_t *o = &c->sub[i];
    gone[i] = 0;
    if (o->done) continue;
    writers[start[pending_writes(o)]++] = i;   /* start[v] now ends v's writers */
    if (o->inv_ns > last_ret_ns || need[pending_writes(o)] == 0) { gone[i] = 1; queue[nq++] = i; }
  }
  for (uint32_t q = 0; q < nq; q++) {
    const lop_t *o = &c->sub[queue[q]];
    if (o->kind != SYN_LIN_CAS) continue;
    if (--need[o->e] != 0) continue;          /* o was the last that needed its expected value */
    uint32_t from = o->e == 0 ? 0 : start[o->e - 1];
    for (uint32_t j = from; j < start[o->e]; j++)
      if (!gone[writers[j]]) { gone[writers[j]] = 1; queue[nq++] = writers[j]; }
  }
  uint32_t kept = 0;
  for (uint32_t i = 0; i < k; i++) if (!gone[i]) c->sub[kept++] = c->sub[i];
  return kept;
}

/* Does base at these levels fail (proven)? Draws on *left. */
static bool relaxed_fails(lin_ctx_t *c, const lop_t *base, const uint8_t *level, uint32_t m,
                          uint32_t nvids, uint64_t *left) {
  if (*left == 0) return false;
  uint32_t k = materialize(c, base, level, m, nvids);
  uint64_t spent = 0;
  search_rc_t rc = search(c->sub, k, *left, &spent);
  c->steps += spent;
  *left = spent >= *left ? 0 : *left - spent;
  return rc == S_NOT;
}

static int cmp_i64(const void *pa, const void *pb) {
  int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
  return (a > b) - (a < b);
}

/* level cut at t, into trial: ops invoked after t dropped, ops still as
 * recorded that responded after t made pending (pending gets dropped). A
 * prefix of a linearizable history is linearizable, so a failing cut
 * proves the whole fails. */
static void cut_at(const lop_t *base, const uint8_t *level, uint32_t m, int64_t t, uint8_t *trial) {
  for (uint32_t i = 0; i < m; i++) {
    const lop_t *o = &base[i];
    uint8_t lv = level[i];
    if (o->inv_ns > t) lv = LV_DROPPED;
    else if (lv == LV_AS_RECORDED && o->done && o->ret_ns > t) lv = LV_PENDING;
    if (lv == LV_PENDING && o->kind == SYN_LIN_GET) lv = LV_DROPPED;
    trial[i] = lv;
  }
}

/* Sorted distinct response times of the ops of ops[0..n) still as
 * recorded, into out; returns how many. */
static uint32_t response_times(const lop_t *ops, const uint8_t *level, uint32_t n, int64_t *out) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++)
    if (ops[i].done && level[i] == LV_AS_RECORDED) out[k++] = ops[i].ret_ns;
  qsort(out, k, sizeof *out, cmp_i64);
  uint32_t u = 0;
  for (uint32_t i = 0; i < k; i++) if (u == 0 || out[u - 1] != out[i]) out[u++] = out[i];
  return u;
}

/* level with every op still as recorded that responded before t relaxed, into trial. */
static void relax_before(const lop_t *base, const uint8_t *level, uint32_t m, int64_t t, uint8_t *trial) {
  memcpy(trial, level, m);
  for (uint32_t i = 0; i < m; i++)
    if (trial[i] == LV_AS_RECORDED && base[i].ret_ns < t)
      trial[i] = is_write(&base[i]) ? LV_MAYBE : LV_DROPPED;
}

/* Shrinks the failing key history c->lops[0..n) to the ops that must stay
 * as recorded for it to keep failing, into kr (sorted by invocation).
 * Spends at most c->max_steps; stopping early leaves a larger set, never a
 * wrong one. A proof of failure costs about as much as the history it
 * covers, so the first two phases close in on the violation from its
 * cheap side (galloping: 1, 2, 4, … then bisecting). */
static void shrink(lin_ctx_t *c, uint32_t n, uint32_t nvids, key_result_t *kr) {
  uint64_t left = c->max_steps;
  lop_t *base = c->base;
  uint8_t *level = c->keep, *trial = c->trial;
  uint32_t m = n;
  memcpy(base, c->lops, (size_t)n * sizeof *base);
  for (uint32_t i = 0; i < m; i++) level[i] = base[i].done ? LV_AS_RECORDED : LV_PENDING;
  /* 1. the latest time before which every op can be relaxed and the
   *    history still fails, galloping back from the end (r[0]: relax
   *    nothing, which fails) */
  uint32_t nr = response_times(base, level, m, c->cuts);
  SYN_ASSERT(nr > 0);
  if (nr > 1) {
    uint32_t good = 0, bad = nr;          /* relaxing before r[good] fails; before r[bad] does not */
    for (uint32_t back = 1; back < nr; back *= 2) {
      uint32_t probe = nr - back;
      relax_before(base, level, m, c->cuts[probe], trial);
      if (relaxed_fails(c, base, trial, m, nvids, &left)) { good = probe; break; }
      bad = probe;
    }
    while (bad - good > 1) {
      uint32_t mid = good + (bad - good) / 2;
      relax_before(base, level, m, c->cuts[mid], trial);
      if (relaxed_fails(c, base, trial, m, nvids, &left)) good = mid;
      else bad = mid;
    }
    relax_before(base, level, m, c->cuts[good], trial);
    memcpy(level, trial, m);
  }
  /* 2. the earliest cut that still fails, galloping from the start of what
   *    is left as recorded */
  nr = response_times(base, level, m, c->cuts);
  uint32_t lo = 0, hi = nr - 1;           /* the cut at the last response fails */
  for (uint32_t probe = 0; probe < hi; probe = 2 * probe + 1) {
    cut_at(base, level, m, c->cuts[probe], trial);
    if (relaxed_fails(c, base, trial, m, nvids, &left)) { hi = probe; break; }
    lo = probe + 1;
  }
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    cut_at(base, level, m, c->cuts[mid], trial);
    if (relaxed_fails(c, base, trial, m, nvids, &left)) hi = mid;
    else lo = mid + 1;
  }
  cut_at(base, level, m, c->cuts[hi], trial);
  memcpy(level, trial, m);
  /* 3. relax chunks of the ops still as recorded, halving, then single
   *    ops until none more can be relaxed */
  for (uint32_t chunk = m / 2 ? m / 2 : 1;; chunk = chunk / 2 ? chunk / 2 : 1) {
    bool relaxed = false;
    for (uint32_t start = 0; start < m && left > 0; start += chunk) {
      memcpy(trial, level, m);
      bool any = false;
      for (uint32_t i = start; i < m && i < start + chunk; i++) {
        if (trial[i] != LV_AS_RECORDED) continue;
        trial[i] = is_write(&base[i]) ? LV_MAYBE : LV_DROPPED;
        any = true;
      }
      if (any && relaxed_fails(c, base, trial, m, nvids, &left)) { memcpy(level, trial, m); relaxed = true; }
    }
    if (left == 0 || (chunk == 1 && !relaxed)) break;
  }
  /* the ops still as recorded, sorted by invocation (base is in op id order) */
  uint32_t kept = 0;
  for (uint32_t i = 0; i < m; i++) if (level[i] == LV_AS_RECORDED) c->sub[kept++] = base[i];
  for (uint32_t i = 1; i < kept; i++) {   /* insertion sort: stable, the set is small */
    lop_t x = c->sub[i];
    uint32_t j = i;
    while (j > 0 && c->sub[j - 1].inv_ns > x.inv_ns) { c->sub[j] = c->sub[j - 1]; j--; }
    c->sub[j] = x;
  }
  for (uint32_t i = 0; i < kept; i++) add_culprit(kr, c->sub[i].id);
  kr->partial = left == 0;
}

/* The result text of a done op, quoted. */
static const char *result_text(char out[SYN_QUOTE_CAP], const syn_lin_history_t *h, uint32_t id) {
  const syn_lin_op_t *o = &h->ops[id];
  return syn_quote(out, syn_lin_history_bytes(h, o->res_off), o->res_len);
}

static bool is_done_write(const lop_t *o) { return o->done && o->kind != SYN_LIN_GET && o->res == RES_OK; }

/* A sentence for a few well-known shapes of a small failing set s[0..n)
 * (sorted by invocation), or none. Only said of a proven set, so each
 * "could not" is what the proof showed. */
static void hint(const syn_lin_history_t *h, const lop_t *s, uint32_t n, sbuf_t *b) {
  char v[SYN_QUOTE_CAP], w[SYN_QUOTE_CAP];
  if (n == 2) {
    const lop_t *x = &s[0], *y = &s[1];
    /* lost update: two successful cas from the same value */
    if (x->kind == SYN_LIN_CAS && y->kind == SYN_LIN_CAS && x->res == RES_OK && y->res == RES_OK &&
        x->e == y->e && x->w != x->e && y->w != y->e) {
      const syn_lin_op_t *o = &h->ops[x->id];
      sb_printf(b, "a lost update: ops %u and %u both succeeded in a cas from %s, and no write of it "
                "could come between them; ", x->id + 1, y->id + 1,
                syn_quote(v, syn_lin_history_bytes(h, o->a_off), o->a_len));
      return;
    }
    if (y->kind != SYN_LIN_GET || !y->done || !(x->ret_ns < y->inv_ns)) return;
    /* stale read: a get after a completed write sees something else */
    if (is_done_write(x)) {
      sb_printf(b, "a stale read: op %u returned %s after op %u had written and returned, and no "
                "write that could explain it could come in between; ", y->id + 1, result_text(v, h, y->id),
                x->id + 1);
      return;
    }
    /* a read going back: a later get sees what an earlier one saw replaced */
    if (x->kind == SYN_LIN_GET && x->done) {
      sb_printf(b, "op %u returned %s after op %u had returned %s, and no write that could explain "
                "it could come in between; ", y->id + 1, result_text(v, h, y->id), x->id + 1,
                result_text(w, h, x->id));
    }
    return;
  }
  /* stale read: r reads w1's value after w2, which followed w1, returned */
  if (n != 3) return;
  for (uint32_t i = 0; i < n; i++) {
    const lop_t *r = &s[i];
    uint32_t val = read_vid(r);
    if (!val || r->kind != SYN_LIN_GET) continue;
    for (uint32_t j = 0; j < n; j++) {
      const lop_t *w1 = &s[j], *w2 = &s[3 - i - j];
      if (j == i || write_vid(w1) != val || !w1->done || !is_done_write(w2)) continue;
      if (!(w1->ret_ns < w2->inv_ns && w2->ret_ns < r->inv_ns)) continue;
      sb_printf(b, "a stale read: op %u read the value of op %u after op %u overwrote it and returned; ",
                r->id + 1, w1->id + 1, w2->id + 1);
      return;
    }
  }
}

/* Judges one key's ops (ids ascending). Writes an explanation into b when
 * explain is set and the key fails. */
static key_result_t check_key(lin_ctx_t *c, const uint32_t *ids, uint32_t nids, bool explain, sbuf_t *b) {
  key_result_t kr;
  memset(&kr, 0, sizeof kr);
  if (nids > SYN_MAX_LIN_OPS_PER_KEY) { kr.rc = K_TOO_MANY; kr.n = nids; return kr; }
  uint32_t nvids = 0;
  uint32_t n = build_lops(c, ids, nids, &nvids);
  kr.n = n;
  sbuf_t scratch = { NULL, 0, 0 };
  if (prepass(c, n, nvids, explain ? b : &scratch, &kr)) { kr.rc = K_VIOLATION; return kr; }
  /* the search runs without the pending ops that cannot matter */
  memset(c->keep, LV_AS_RECORDED, n);
  uint32_t nsearch = materialize(c, c->lops, c->keep, n, nvids);
  uint64_t spent = 0;
  search_rc_t rc = search(c->sub, nsearch, c->max_steps, &spent);
  c->steps += spent;
  switch (rc) {
  case S_LIN: kr.rc = K_OK; return kr;
  case S_BUDGET: kr.rc = K_BUDGET; return kr;
  case S_ROOM: kr.rc = K_ROOM; return kr;
  case S_NOMEM: kr.rc = K_NOMEM; return kr;
  case S_NOT: break;
  }
  kr.rc = K_VIOLATION;
  if (!explain) return kr;
  shrink(c, n, nvids, &kr);
  const syn_lin_op_t *o0 = &c->h->ops[ids[0]];
  char k[SYN_QUOTE_CAP];
  sb_printf(b, "key %s: ", key_text(k, syn_lin_history_bytes(c->h, o0->key_off), o0->key_len));
  hint(c->h, c->sub, kr.culprits_total, b);
  sb_printf(b, "no order of these %u operations explains their results, whatever the key's other "
            "operations did%s: ", kr.culprits_total,
            kr.partial ? " (not reduced further: the steps for explaining ran out)" : "");
  for (uint32_t i = 0; i < kr.nculprits; i++) {
    size_t before = b->len;
    if (i) sb_printf(b, "; ");
    describe_op(b, c->h, kr.culprits[i]);
    if (b->len + 48 >= b->cap) {   /* leave room to say what was left out */
      b->len = before;
      b->p[b->len] = '\0';
      sb_printf(b, "; and %u more (ops of the verdict's report)", kr.culprits_total - i);
      return kr;
    }
  }
  if (kr.culprits_total > kr.nculprits) sb_printf(b, "; and %u more", kr.culprits_total - kr.nculprits);
  return kr;
}

/* ---- the checker ---- */

typedef struct {
  const uint8_t *p;
  uint32_t len;
  uint32_t first;         /* lowest op id on the key */
  uint32_t count, start;  /* its ops in the grouped order */
  uint64_t hash;
} keyinfo_t;

static int key_cmp(const void *pa, const void *pb) {
  const keyinfo_t *a = pa, *b = pb;
  uint32_t m = a->len < b->len ? a->len : b->len;
  int d = memcmp(a->p, b->p, m);
  if (d) return d;
  return (a->len > b->len) - (a->len < b->len);
}

static void verdict_set(syn_verdict_t *v, bool ok) {
  v->ok = ok;
  v->checker = "linearizability";
  v->node_a = v->node_b = -1;
  v->pos_a = v->pos_b = -1;
  v->explain[0] = '\0';
}

void syn_check_linearizable(const syn_lin_history_t *h, const syn_lin_opts_t *opts,
                            syn_verdict_t *v, syn_lin_report_t *report) {
  syn_lin_report_t rep_local;
  syn_lin_report_t *rep = report ? report : &rep_local;
  memset(rep, 0, sizeof *rep);
  rep->key_op = UINT32_MAX;
  rep->outcome = SYN_LIN_OK;
  verdict_set(v, true);
  if (h->count == 0) return;

  lin_ctx_t c;
  memset(&c, 0, sizeof c);
  c.h = h;
  c.max_steps = opts && opts->max_steps ? opts->max_steps : SYN_LIN_DEFAULT_MAX_STEPS;

  /* group op ids by key: a hash table of keys, keys sorted by bytes, ops
   * bucketed in id order */
  uint32_t nslots = 16;
  while (nslots < 2 * h->count) nslots *= 2;
  uint32_t *slots = calloc(nslots, sizeof *slots);       /* key index + 1 */
  uint32_t *op_key = malloc((size_t)h->count * sizeof *op_key);
  keyinfo_t *keys = malloc((size_t)h->count * sizeof *keys);
  uint32_t *rank = malloc((size_t)h->count * sizeof *rank);
  uint32_t *order = malloc((size_t)h->count * sizeof *order);
  uint32_t nkeys = 0;
  char msg[SYN_MAX_EXPLAIN_BYTES - 128];
  sbuf_t b = { msg, sizeof msg, 0 };
  msg[0] = '\0';
  if (!slots || !op_key || !keys || !rank || !order) goto nomem;
  for (uint32_t id = 0; id < h->count; id++) {
    const syn_lin_op_t *o = &h->ops[id];
    const uint8_t *p = syn_lin_history_bytes(h, o->key_off);
    uint64_t hash = hash_bytes(p, o->key_len);
    uint32_t i = (uint32_t)hash & (nslots - 1);
    for (;; i = (i + 1) & (nslots - 1)) {
      if (slots[i] == 0) {
        keys[nkeys] = (keyinfo_t){ .p = p, .len = o->key_len, .first = id, .hash = hash };
        slots[i] = ++nkeys;
        break;
      }
      const keyinfo_t *k = &keys[slots[i] - 1];
      if (k->hash == hash && k->len == o->key_len && memcmp(k->p, p, o->key_len) == 0) break;
    }
    op_key[id] = slots[i] - 1;
    keys[op_key[id]].count++;
  }
  /* sort keys by bytes; rank[old index] = new index */
  qsort(keys, nkeys, sizeof *keys, key_cmp);
  uint32_t max_n = 0, at = 0;
  for (uint32_t k = 0; k < nkeys; k++) {
    rank[op_key[keys[k].first]] = k;
    keys[k].start = at;
    at += keys[k].count;
    if (keys[k].count <= SYN_MAX_LIN_OPS_PER_KEY && keys[k].count > max_n) max_n = keys[k].count;
    keys[k].count = 0;
  }
  for (uint32_t id = 0; id < h->count; id++) {
    keyinfo_t *k = &keys[rank[op_key[id]]];
    order[k->start + k->count++] = id;
  }
  free(slots); slots = NULL;
  if (ctx_reserve(&c, max_n ? max_n : 1)) goto nomem;

  rep->keys = nkeys;
  uint32_t undecided_key = UINT32_MAX;
  key_result_t first_undecided;
  memset(&first_undecided, 0, sizeof first_undecided);
  for (uint32_t k = 0; k < nkeys; k++) {
    bool first_violation = rep->keys_failed == 0;
    key_result_t kr = check_key(&c, order + keys[k].start, keys[k].count, first_violation, &b);
    if (kr.rc == K_OK) continue;
    if (kr.rc == K_VIOLATION) {
      rep->keys_failed++;
      if (first_violation) {
        rep->key_op = keys[k].first;
        memcpy(rep->culprits, kr.culprits, sizeof kr.culprits);
        rep->nculprits = kr.nculprits;
        rep->culprits_total = kr.culprits_total;
      }
      continue;
    }
    rep->keys_undecided++;
    if (undecided_key == UINT32_MAX) { undecided_key = k; first_undecided = kr; }
  }
  rep->steps = c.steps;
  char kt[SYN_QUOTE_CAP];
  if (rep->keys_failed) {
    rep->outcome = SYN_LIN_VIOLATION;
    v->ok = false;
    if (rep->nculprits > 0) {
      v->node_a = (int32_t)h->ops[rep->culprits[0]].client;
      v->pos_a = (int64_t)rep->culprits[0] + 1;
    }
    if (rep->nculprits > 1) {
      v->node_b = (int32_t)h->ops[rep->culprits[1]].client;
      v->pos_b = (int64_t)rep->culprits[1] + 1;
    }
    snprintf(v->explain, sizeof v->explain, "%s (%u of %u keys not linearizable%s)", msg,
             rep->keys_failed, nkeys, rep->keys_undecided ? ", some undecided" : "");
  } else if (rep->keys_undecided) {
    rep->outcome = SYN_LIN_UNDECIDED;
    v->ok = false;
    const keyinfo_t *key = &keys[undecided_key];
    rep->key_op = key->first;
    key_text(kt, key->p, key->len);
    const char *why = "";
    char whybuf[160];
    switch (first_undecided.rc) {
    case K_BUDGET:
      snprintf(whybuf, sizeof whybuf, "its search used its budget of %llu steps (opts max_steps)",
               (unsigned long long)c.max_steps);
      why = whybuf;
      break;
    case K_ROOM: why = "its search memo reached SYN_MAX_LIN_CACHE_BYTES"; break;
    case K_TOO_MANY:
      snprintf(whybuf, sizeof whybuf, "it has %u operations, more than SYN_MAX_LIN_OPS_PER_KEY (%u)",
               first_undecided.n, (unsigned)SYN_MAX_LIN_OPS_PER_KEY);
      why = whybuf;
      break;
    default: why = "the search ran out of memory"; break;
    }
    snprintf(v->explain, sizeof v->explain,
             "could not decide: key %s (%u operations): %s before finding an order or proving "
             "there is none (%u of %u keys undecided, none found not linearizable)",
             kt, first_undecided.n, why, rep->keys_undecided, nkeys);
  }
  ctx_free(&c);
  free(op_key); free(keys); free(rank); free(order);
  return;
nomem:
  ctx_free(&c);
  free(slots); free(op_key); free(keys); free(rank); free(order);
  rep->outcome = SYN_LIN_UNDECIDED;
  verdict_set(v, false);
  snprintf(v->explain, sizeof v->explain,
           "could not decide: out of memory grouping %u operations by key", h->count);
}
