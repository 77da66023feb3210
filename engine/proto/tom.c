/* tom.c — Lamport-clock totally ordered multicast (TOM), made robust.
 *
 * Owns: the Lamport clock, the pending queue ordered by (ts, origin), the
 * delivery rule, reliable FIFO links over a lossy, duplicating, reordering
 * network, the timestamp defences and the echo defence against
 * equivocation. Never: reads a clock (ev->now_ns only stamps
 * retransmissions), a socket, a file or a random number; never allocates —
 * all state is one tom_t of fixed size (about 1.6 MiB, sized by the
 * SYN_MAX_TOM_* limits in tom.h); never asserts on network input: bad input
 * is rejected with a reason and counted.
 *
 * ---- the classic algorithm ----
 * A request: clock += 1, ts = clock, hold (ts, self, word), send data to
 * every peer. A message from k (in link order): last_ts[k] = max(last_ts[k],
 * ts); a data is held, ordered by (ts, origin), and the clock passes its ts.
 * The head is delivered once every peer k has shown a later ts (last_ts[k] >
 * head.ts): links are FIFO, so nothing smaller can still come from k. Every
 * node announces ("ack") a ts above every data it holds, so each learns a
 * later ts from each peer even when the cluster goes quiet; an ack is sent
 * only when it says something new, so an idle cluster sends nothing.
 *
 * ---- clock ----
 * The clock moves on requests (+1), on announcements (to above the largest
 * held ts) and when a data ts is held: clock = max(clock, ts) — data only,
 * and without the textbook + 1 (our next send adds it). Acks and echoes move
 * last_ts, not the clock. Both keep honest clocks within a few ticks of the
 * largest data ts every peer has already been shown (see echo), so an honest
 * data never looks like a ts_future attack, and nothing but a data that
 * passed the drift check can push a clock forward.
 *
 * ---- links ----
 * Each message to peer k carries lseq (from 1, per link) and lack (the
 * highest lseq we processed in order from k). A link is processed strictly
 * in lseq order: an old lseq is a "duplicate", a later one waits in a window
 * of SYN_MAX_TOM_OOO slots (beyond it: "queue_full", resent later). Sent
 * messages stay in a queue of SYN_MAX_TOM_UNACKED per peer until lack covers
 * them; only its first SYN_MAX_TOM_OOO (the receiver's window) are on the
 * wire, and those are resent, same lseq and content, every retransmit_ms;
 * the timer is armed only while something is unacknowledged. An ack with lseq 0 is a
 * pure link ack: it only carries lack, is never queued or answered.
 * Flow control instead of growth: requests wait in an outbox of
 * SYN_MAX_TOM_OUTBOX ("backpressure" past it) and are multicast while every
 * peer's queue is under half full, no echo is owed and the pending queue is
 * under half full; a data or echo that needs a pending slot that is not there
 * is not consumed ("queue_full", counted once) and waits for room.
 *
 * ---- defences (params, all on by default) ----
 * reject_reuse: data whose ts equals an earlier data ts from that origin on
 * its own link. reject_backdate: data whose ts is not above what the origin
 * already showed on its link. max_drift: data whose ts is more than max_drift
 * above our clock ("ts_future"). Acks and echoes are not checked: they never
 * move the clock, and a huge ts in one only promises that nothing lower
 * follows (later data below it is backdated). Each
 * rejection emits a reject and evidence against the sender (with both signed
 * frames for a reuse while the first is still held); a rejected data
 * consumes its lseq but moves nothing. The clock never wraps: it saturates
 * at CLOCK_MAX and the node refuses requests ("clock_exhausted") — what the
 * ts_future attack achieves with max_drift = 0.
 *
 * ---- echo (param echo): equivocation and omission ----
 * Every version (origin, ts, word) a node comes to hold is relayed once, as
 * the signed data frame it arrived in, to every node but the origin and the
 * relayer it came from; a direct version (from the origin itself) that
 * differs from the held one is relayed too. A receiver verifies the inner
 * frame ("bad_echo" otherwise); a version it did not hold is held (this
 * repairs omission); a different version of the same (origin, ts) is
 * equivocation: evidence with both signed frames, and the key is marked
 * conflicted — it keeps its place and is dropped, undelivered, at the head.
 *
 * "A later ts from every peer" is not enough to decide that the same way
 * everywhere: k's clock may already be past ts when the equivocator's other
 * version reaches it (k at clock 100 receives (j, 50, B) after it sent us an
 * ack with ts 100; we, holding A, would deliver A while k delivers B). So
 * each message to j also carries stable = min(min over peers p of
 * last_ts[p], the smallest ts of anything still owed to j as an echo): "I
 * have heard past this from everyone, and relayed to you everything below
 * it". With echo on, the head (T, x) is decided only when our own stable
 * > T, every peer reported stable > T, and its own echoes have left.
 * Argument (one faulty node x, crypto on): when honest k reports stable > T,
 * every link into k has shown a ts > T, so every version k will ever take
 * directly with ts <= T is in (later ones are backdated), and all of them
 * were relayed to us before. Every version an honest node holds is some
 * honest node's direct version (relays are signed by x, x's own echoes are
 * refused). So when an honest node decides (T, x) it holds every version of
 * every key <= (T, x) that any honest node will ever hold, and its decision
 * — deliver the one version, or drop a conflicted key — is the same at every
 * honest node. Nothing smaller can appear later: echoes of decided keys are
 * ignored, direct data for them is backdated. With echo off the classic rule
 * (our stable > T) is used.
 *
 * Outside the argument (documented, not handled): colluding faulty nodes;
 * crypto off (a relayer can forge inner frames); echo off with bursts larger
 * than max_drift (an honest data may then be refused by one node only); a
 * restart without durable state (lseq starts again at 1, peers see
 * duplicates: the node stays cut off); a pending queue filled by a faulty
 * flood (links stall: liveness, not safety). */
#include "tom.h"

#include <string.h>

#define CLOCK_MAX (UINT64_MAX - 1)   /* the clock saturates here; requests stop */

/* A data frame with the largest word: what an echo must be able to carry. */
#define TOM_DATA_FRAME_BYTES \
  (SYN_WIRE_HEADER_BYTES + 4 * 8 + 4 + SYN_MAX_TOM_WORD_BYTES + SYN_SIG_BYTES)
_Static_assert(SYN_MAX_TOM_ECHO_BYTES >= TOM_DATA_FRAME_BYTES, "an echo carries a whole data frame");
_Static_assert(SYN_MAX_TOM_WORD_BYTES <= SYN_MAX_OP_BYTES && SYN_MAX_TOM_WORD_BYTES <= UINT8_MAX,
               "a word is a deliverable value");
_Static_assert(SYN_MAX_TOM_NODES <= SYN_MAX_NODES, "TOM nodes are keyring identities");
_Static_assert(SYN_MAX_TOM_NODES <= 64, "echo debts are one bit per node in a u64");
_Static_assert(SYN_MAX_TOM_PENDING <= UINT16_MAX, "pending indexes are u16");
_Static_assert(SYN_MAX_TOM_RESEND <= SYN_MAX_TOM_OOO && SYN_MAX_TOM_OOO <= SYN_MAX_TOM_UNACKED,
               "only what is on the wire is resent; the wire holds a receive window");
/* Every effect's bytes fit: the batch is bounded by count alone. */
_Static_assert((uint64_t)SYN_MAX_EFFECTS * 2 * (SYN_MAX_TOM_ECHO_BYTES + 64) <= SYN_MAX_EFFECT_BYTES,
               "a full batch of TOM effects fits the arena");
/* The largest fixed part of a step (a retransmit firing) fits one batch. */
_Static_assert((SYN_MAX_TOM_NODES - 1) * SYN_MAX_TOM_RESEND + 2 * SYN_MAX_TOM_NODES + 16 <= SYN_MAX_EFFECTS,
               "a retransmit firing fits one batch");

/* Field positions, shared by the three types (the bytes field is last). */
enum { F_TS, F_STABLE, F_LSEQ, F_LACK, F_BYTES };
enum { K_DATA, K_ACK, K_ECHO };   /* index into tom_msgs */

static const syn_msg_def_t tom_msgs[] = {
  { .type = SYN_TOM_DATA, .proto = "tom", .name = "data", .nfields = 5, .fields = {
      { "ts", SYN_FIELD_U64, 0 }, { "stable", SYN_FIELD_U64, 0 }, { "lseq", SYN_FIELD_U64, 0 },
      { "lack", SYN_FIELD_U64, 0 }, { "word", SYN_FIELD_BYTES, SYN_MAX_TOM_WORD_BYTES } } },
  { .type = SYN_TOM_ACK, .proto = "tom", .name = "ack", .nfields = 4, .fields = {
      { "ts", SYN_FIELD_U64, 0 }, { "stable", SYN_FIELD_U64, 0 }, { "lseq", SYN_FIELD_U64, 0 },
      { "lack", SYN_FIELD_U64, 0 } } },
  { .type = SYN_TOM_ECHO, .proto = "tom", .name = "echo", .nfields = 5, .fields = {
      { "ts", SYN_FIELD_U64, 0 }, { "stable", SYN_FIELD_U64, 0 }, { "lseq", SYN_FIELD_U64, 0 },
      { "lack", SYN_FIELD_U64, 0 }, { "frame", SYN_FIELD_BYTES, SYN_MAX_TOM_ECHO_BYTES } } },
};

static const syn_param_def_t tom_params[SYN_TOM_NPARAMS] = {
  [SYN_TOM_P_RETRANSMIT_MS] = { "retransmit_ms", 50, 1, 60000,
                                "resend unacknowledged link messages after this many ms" },
  [SYN_TOM_P_REJECT_REUSE] = { "reject_reuse", 1, 0, 1, "reject data reusing a ts of the same sender" },
  [SYN_TOM_P_REJECT_BACKDATE] = { "reject_backdate", 1, 0, 1,
                                  "reject data whose ts is not above what its sender already showed" },
  [SYN_TOM_P_MAX_DRIFT] = { "max_drift", 100, 0, 1000000000,
                            "reject data with ts more than this above our clock (0 = off)" },
  [SYN_TOM_P_ECHO] = { "echo", 1, 0, 1, "relay received data frames to detect equivocation" },
};

static const char *const tom_reasons[SYN_TOM_NREASONS] = {
  [SYN_TOM_R_DUPLICATE] = "duplicate", [SYN_TOM_R_QUEUE_FULL] = "queue_full",
  [SYN_TOM_R_BAD_FIELD] = "bad_field", [SYN_TOM_R_TS_REUSE] = "ts_reuse",
  [SYN_TOM_R_TS_BACKDATE] = "ts_backdate", [SYN_TOM_R_TS_FUTURE] = "ts_future",
  [SYN_TOM_R_EQUIVOCATION] = "equivocation", [SYN_TOM_R_BAD_ECHO] = "bad_echo",
  [SYN_TOM_R_CLOCK_EXHAUSTED] = "clock_exhausted", [SYN_TOM_R_BACKPRESSURE] = "backpressure",
  [SYN_TOM_R_OP_TOO_LONG] = "op_too_long",
};

/* A held multicast message. */
typedef struct {
  uint64_t ts;
  uint32_t origin;
  bool direct;                 /* received from its origin (or our own) */
  bool conflicted;             /* two versions seen: dropped, never delivered */
  uint8_t wlen;
  uint16_t flen;               /* 0 for our own */
  uint64_t echo_to;            /* peers still owed a relay of frame (bit per node) */
  uint8_t word[SYN_MAX_TOM_WORD_BYTES];
  uint8_t frame[SYN_MAX_TOM_ECHO_BYTES];   /* the signed data frame (relays, evidence) */
} entry_t;

/* A queued, not yet acknowledged link message: (re)sent exactly, lack
 * aside. Only the first SYN_MAX_TOM_OOO of a queue are on the wire: what
 * lies beyond the receiver's window would only be dropped. */
typedef struct {
  uint64_t lseq, ts, stable;
  int64_t sent_ns;
  bool sent;
  uint8_t kind;
  uint16_t blen;
  uint8_t bytes[SYN_MAX_TOM_ECHO_BYTES];   /* word or relayed frame */
} outmsg_t;

/* A received link message waiting for its turn (lseq 0: empty slot). */
typedef struct {
  uint64_t lseq, ts, stable;
  uint8_t kind;
  bool stall_counted;          /* "queue_full" counted once per stall */
  uint16_t blen, flen;
  uint8_t bytes[SYN_MAX_TOM_ECHO_BYTES];   /* word or relayed frame */
  uint8_t frame[SYN_MAX_TOM_ECHO_BYTES];   /* data only: the signed frame it came in */
} inmsg_t;

typedef struct {
  uint64_t tx_next;            /* lseq of our next message to it (from 1) */
  uint64_t rx_next;            /* lseq we process next from it (from 1) */
  uint64_t lack_sent;          /* highest lack we have told it */
  bool link_ack_owed;          /* it resent something: tell it lack again */
  uint64_t last_ts;            /* highest ts accepted on its link */
  uint64_t last_data_ts;       /* ts of its last accepted data (0: none) */
  uint64_t rep;                /* highest stable it reported */
  uint64_t sent_ts, sent_stable;   /* highest we carried to it in sequenced messages */
  uint32_t owed;               /* held entries whose relay it is still owed */
  uint32_t out_head, out_count;
  outmsg_t out[SYN_MAX_TOM_UNACKED];
  inmsg_t in[SYN_MAX_TOM_OOO];
} peer_t;

typedef struct {
  uint32_t id, n;
  int64_t retransmit_ns;
  uint64_t max_drift;
  bool reject_reuse, reject_backdate, echo;
  const syn_keyring_t *ring;
  int64_t now_ns;
  uint64_t clock;
  bool exhausted_traced;
  uint64_t need_ts;            /* highest ts of any data ever held */
  uint64_t delivered;
  bool decided;                /* (dec_ts, dec_origin): the last key taken off the head */
  uint64_t dec_ts;
  uint32_t dec_origin;
  uint32_t npending, nfree;
  uint16_t order[SYN_MAX_TOM_PENDING];     /* pool indexes sorted by (ts, origin), stable */
  uint16_t free_idx[SYN_MAX_TOM_PENDING];
  entry_t pool[SYN_MAX_TOM_PENDING];
  uint32_t owed_total;         /* sum of peer[].owed */
  uint32_t box_head, box_count;            /* the outbox: requests not yet multicast */
  struct { uint8_t len; uint8_t word[SYN_MAX_TOM_WORD_BYTES]; } outbox[SYN_MAX_TOM_OUTBOX];
  uint32_t unacked_total;
  bool rtx_armed, pump_armed, pump_more;
  int64_t rtx_due_ns;
  peer_t peer[SYN_MAX_TOM_NODES];
} tom_t;

typedef enum { DONE, STALL } outcome_t;

/* ---- small helpers ---- */

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t bit(uint32_t j) { return (uint64_t)1 << j; }

static int key_cmp(uint64_t ta, uint32_t oa, uint64_t tb, uint32_t ob) {
  if (ta != tb) return ta < tb ? -1 : 1;
  if (oa != ob) return oa < ob ? -1 : 1;
  return 0;
}

/* Effects one processed message may emit (reject, evidence, trace), and
 * what every step keeps for its end (acks to all, two timers). */
static uint32_t fx_per_msg(const tom_t *s) { (void)s; return 4; }
static uint32_t fx_end(const tom_t *s) { return s->n + 4; }
static bool room(const tom_t *s, const syn_effects_t *fx, uint32_t need) {
  return fx->count + need + fx_end(s) <= SYN_MAX_EFFECTS;
}

/* Every peer has shown a ts at least this high. */
static uint64_t stable_of(const tom_t *s) {
  uint64_t m = UINT64_MAX;
  for (uint32_t k = 0; k < s->n; k++) if (k != s->id) m = min_u64(m, s->peer[k].last_ts);
  return m;
}

/* Every peer but us, a and b, as a bit set. */
static uint64_t peers_but(const tom_t *s, uint32_t a, uint32_t b) {
  uint64_t m = 0;
  for (uint32_t j = 0; j < s->n; j++) if (j != s->id && j != a && j != b) m |= bit(j);
  return m;
}

/* The clock reaches a data ts we now hold: clock = max(clock, ts), never
 * beyond CLOCK_MAX. */
static void clock_witness(tom_t *s, uint64_t ts, syn_effects_t *fx) {
  s->clock = min_u64(max_u64(s->clock, ts), CLOCK_MAX);
  if (s->clock == CLOCK_MAX && !s->exhausted_traced) {
    s->exhausted_traced = true;
    syn_fx_trace(fx, "tom: clock exhausted");
  }
}

/* A message from k was accepted in link order with this ts: a promise that
 * nothing k sends later is lower. It never moves our clock. */
static void observe(tom_t *s, uint32_t k, uint64_t ts, uint64_t stable) {
  peer_t *p = &s->peer[k];
  p->last_ts = max_u64(p->last_ts, ts);
  p->rep = max_u64(p->rep, min_u64(stable, ts));
}

static bool own_msg_kind(const syn_msg_def_t *def, uint8_t *kind) {
  if (def == NULL) return false;
  for (uint8_t i = 0; i < 3; i++) {
    if (def->type == tom_msgs[i].type) { *kind = i; return true; }
  }
  return false;
}

static void reject(uint32_t against, uint16_t reason, syn_effects_t *fx) {
  int rc = syn_fx_reject(fx, against, reason);
  SYN_ASSERT(rc == 0);   /* steps are budgeted (room) */
}

static void evidence(uint32_t against, uint16_t reason, uint64_t round, const uint8_t *a, size_t la,
                     const uint8_t *b, size_t lb, syn_effects_t *fx) {
  int rc = syn_fx_evidence(fx, against, reason, round, a, la, b, lb);
  SYN_ASSERT(rc == 0);
}

/* ---- pending queue ---- */

/* First position in order[] whose key is >= (ts, origin), or > with upper. */
static uint32_t bound(const tom_t *s, uint64_t ts, uint32_t origin, bool upper) {
  uint32_t lo = 0, hi = s->npending;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const entry_t *e = &s->pool[s->order[mid]];
    int c = key_cmp(e->ts, e->origin, ts, origin);
    if (c < 0 || (upper && c == 0)) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/* The first held entry with this key, or NULL. (More than one only with
 * reject_reuse off.) */
static entry_t *find_key(tom_t *s, uint32_t origin, uint64_t ts) {
  uint32_t i = bound(s, ts, origin, false);
  if (i < s->npending) {
    entry_t *e = &s->pool[s->order[i]];
    if (e->ts == ts && e->origin == origin) return e;
  }
  return NULL;
}

/* A held entry with this key and word, or NULL. */
static entry_t *find_version(tom_t *s, uint32_t origin, uint64_t ts, const uint8_t *w, size_t wlen) {
  for (uint32_t i = bound(s, ts, origin, false); i < s->npending; i++) {
    entry_t *e = &s->pool[s->order[i]];
    if (e->ts != ts || e->origin != origin) break;
    if (e->wlen == wlen && (wlen == 0 || memcmp(e->word, w, wlen) == 0)) return e;
  }
  return NULL;
}

/* A held entry of this key that came from the origin itself, or NULL. */
static entry_t *find_direct(tom_t *s, uint32_t origin, uint64_t ts) {
  for (uint32_t i = bound(s, ts, origin, false); i < s->npending; i++) {
    entry_t *e = &s->pool[s->order[i]];
    if (e->ts != ts || e->origin != origin) break;
    if (e->direct) return e;
  }
  return NULL;
}

static void mark_conflicted(tom_t *s, uint32_t origin, uint64_t ts) {
  for (uint32_t i = bound(s, ts, origin, false); i < s->npending; i++) {
    entry_t *e = &s->pool[s->order[i]];
    if (e->ts != ts || e->origin != origin) break;
    e->conflicted = true;
  }
}

static bool pending_full(const tom_t *s) { return s->nfree == 0; }

/* e's relay is owed to every peer in mask (as well). */
static void owe(tom_t *s, entry_t *e, uint64_t mask) {
  uint64_t add = mask & ~e->echo_to;
  if (!s->echo || add == 0) return;
  for (uint32_t j = 0; j < s->n; j++) {
    if (add & bit(j)) { s->peer[j].owed++; s->owed_total++; }
  }
  e->echo_to |= add;
}

static void paid(tom_t *s, entry_t *e, uint32_t j) {
  SYN_ASSERT((e->echo_to & bit(j)) && s->peer[j].owed > 0 && s->owed_total > 0);
  e->echo_to &= ~bit(j);
  s->peer[j].owed--;
  s->owed_total--;
}

/* Holds a new entry after any with the same key; the caller checked room. */
static entry_t *insert(tom_t *s, uint32_t origin, uint64_t ts, const uint8_t *w, size_t wlen,
                       const uint8_t *frame, size_t flen, bool direct) {
  SYN_ASSERT(s->nfree > 0 && wlen <= SYN_MAX_TOM_WORD_BYTES && flen <= SYN_MAX_TOM_ECHO_BYTES);
  uint16_t idx = s->free_idx[--s->nfree];
  entry_t *e = &s->pool[idx];
  memset(e, 0, offsetof(entry_t, word));
  e->ts = ts; e->origin = origin; e->direct = direct;
  e->wlen = (uint8_t)wlen; e->flen = (uint16_t)flen;
  if (wlen) memcpy(e->word, w, wlen);
  if (flen) memcpy(e->frame, frame, flen);
  uint32_t at = bound(s, ts, origin, true);
  memmove(&s->order[at + 1], &s->order[at], (s->npending - at) * sizeof s->order[0]);
  s->order[at] = idx;
  s->npending++;
  s->need_ts = max_u64(s->need_ts, ts);
  return e;
}

/* ---- links: sending ---- */

static bool out_room(const tom_t *s, uint32_t k) { return s->peer[k].out_count < SYN_MAX_TOM_UNACKED; }

static void emit(tom_t *s, uint32_t k, uint8_t kind, uint64_t ts, uint64_t stable, uint64_t lseq,
                 const uint8_t *bytes, size_t blen, syn_effects_t *fx) {
  peer_t *p = &s->peer[k];
  syn_msg_t m;
  memset(&m, 0, sizeof m);
  m.def = &tom_msgs[kind];
  m.u[F_TS] = ts; m.u[F_STABLE] = stable; m.u[F_LSEQ] = lseq;
  m.u[F_LACK] = p->rx_next - 1;
  if (kind != K_ACK) { m.b[F_BYTES].ptr = bytes; m.b[F_BYTES].len = (uint32_t)blen; }
  int rc = syn_fx_send(fx, k, &m);
  SYN_ASSERT(rc == 0);   /* steps are budgeted (room) */
  p->lack_sent = p->rx_next - 1;
  p->link_ack_owed = false;
}

/* Sends a sequenced message to k and keeps it until acknowledged. stable
 * must not exceed stable_to(k). */
static void send_seq(tom_t *s, uint32_t k, uint8_t kind, uint64_t stable, const uint8_t *bytes,
                     size_t blen, syn_effects_t *fx) {
  peer_t *p = &s->peer[k];
  SYN_ASSERT(k != s->id && out_room(s, k) && blen <= SYN_MAX_TOM_ECHO_BYTES);
  outmsg_t *o = &p->out[(p->out_head + p->out_count) % SYN_MAX_TOM_UNACKED];
  o->lseq = p->tx_next++;
  o->ts = s->clock;
  o->stable = stable;
  o->sent_ns = s->now_ns;
  o->sent = p->out_count < SYN_MAX_TOM_OOO;
  o->kind = kind;
  o->blen = (uint16_t)blen;
  if (blen) memcpy(o->bytes, bytes, blen);
  p->out_count++;
  s->unacked_total++;
  p->sent_ts = max_u64(p->sent_ts, o->ts);
  p->sent_stable = max_u64(p->sent_stable, o->stable);
  if (o->sent) emit(s, k, kind, o->ts, o->stable, o->lseq, o->bytes, o->blen, fx);
}

/* k has processed our messages up to lack: drop them, and put on the wire
 * what its window now has room for (at most SYN_MAX_TOM_OOO effects). */
static void take_lack(tom_t *s, uint32_t k, uint64_t lack, syn_effects_t *fx) {
  peer_t *p = &s->peer[k];
  while (p->out_count > 0 && p->out[p->out_head].lseq <= lack) {
    p->out_head = (p->out_head + 1) % SYN_MAX_TOM_UNACKED;
    p->out_count--;
    s->unacked_total--;
  }
  for (uint32_t i = 0; i < p->out_count && i < SYN_MAX_TOM_OOO; i++) {
    outmsg_t *o = &p->out[(p->out_head + i) % SYN_MAX_TOM_UNACKED];
    if (o->sent) continue;
    o->sent = true;
    o->sent_ns = s->now_ns;
    emit(s, k, o->kind, o->ts, o->stable, o->lseq, o->bytes, o->blen, fx);
  }
}

/* The watermark we may tell k: our stable, capped below the smallest ts we
 * still owe k a relay of. */
static uint64_t stable_to(const tom_t *s, uint32_t k) {
  uint64_t st = stable_of(s);
  if (s->peer[k].owed == 0) return st;
  for (uint32_t i = 0; i < s->npending; i++) {
    const entry_t *e = &s->pool[s->order[i]];
    if (e->echo_to & bit(k)) return min_u64(st, e->ts);
  }
  SYN_ASSERT(false);   /* owed counts the bits */
  return 0;
}

/* Sends owed relays, per peer in key order while its queue has room (so
 * what stays owed to a peer is never below what it was sent). */
static void flush_echoes(tom_t *s, syn_effects_t *fx) {
  if (s->owed_total == 0) return;
  uint64_t can = 0;
  for (uint32_t j = 0; j < s->n; j++) {
    if (j != s->id && s->peer[j].owed > 0 && out_room(s, j)) can |= bit(j);
  }
  uint64_t st = stable_of(s);
  for (uint32_t i = 0; i < s->npending && can != 0; i++) {
    entry_t *e = &s->pool[s->order[i]];
    uint64_t m = e->echo_to & can;
    for (uint32_t j = 0; m != 0 && j < s->n; j++) {
      if (!(m & bit(j))) continue;
      if (!room(s, fx, 1)) { s->pump_more = true; return; }
      paid(s, e, j);
      /* What is still owed to j comes after e: e.ts caps it. */
      send_seq(s, j, K_ECHO, s->peer[j].owed ? min_u64(st, e->ts) : st, e->frame, e->flen, fx);
      if (!out_room(s, j) || s->peer[j].owed == 0) can &= ~bit(j);
    }
  }
}

/* ---- links: receiving ---- */

/* Takes a message off the network: acks, duplicates, the receive window. */
static void on_message(tom_t *s, const syn_event_t *ev, syn_effects_t *fx) {
  uint32_t k = ev->from;
  const syn_msg_t *m = ev->msg;
  uint8_t kind;
  if (k >= s->n || k == s->id || m == NULL || !own_msg_kind(m->def, &kind)) {
    reject(k, SYN_TOM_R_BAD_FIELD, fx);
    return;
  }
  peer_t *p = &s->peer[k];
  uint64_t lseq = m->u[F_LSEQ], lack = m->u[F_LACK];
  const syn_bytes_t *b = &m->b[F_BYTES];
  uint32_t blimit = kind == K_DATA ? SYN_MAX_TOM_WORD_BYTES : SYN_MAX_TOM_ECHO_BYTES;
  if (lack >= p->tx_next || (kind != K_ACK && (b->len > blimit || (b->len > 0 && b->ptr == NULL))) ||
      (lseq == 0 && kind != K_ACK)) {
    reject(k, SYN_TOM_R_BAD_FIELD, fx);
    return;
  }
  take_lack(s, k, lack, fx);
  if (lseq == 0) return;                           /* a pure link ack */
  if (lseq < p->rx_next) {                         /* it missed our lack: tell it again */
    p->link_ack_owed = true;
    reject(k, SYN_TOM_R_DUPLICATE, fx);
    return;
  }
  if (lseq - p->rx_next >= SYN_MAX_TOM_OOO) { reject(k, SYN_TOM_R_QUEUE_FULL, fx); return; }
  inmsg_t *in = &p->in[lseq % SYN_MAX_TOM_OOO];
  if (in->lseq == lseq) { reject(k, SYN_TOM_R_DUPLICATE, fx); return; }
  SYN_ASSERT(in->lseq == 0);   /* the window holds lseq in [rx_next, rx_next + OOO) */
  /* The signed frame a data came in: relayed and kept as evidence. A
   * runtime that hands no frame gets an unsigned re-encoding. */
  const uint8_t *frame = ev->frame;
  size_t flen = ev->frame_len;
  uint8_t local[SYN_MAX_TOM_ECHO_BYTES];
  if (kind == K_DATA && (frame == NULL || flen == 0)) {
    if (syn_wire_frame_encode(m, k, local, sizeof local, &flen) != 0) {
      reject(k, SYN_TOM_R_BAD_FIELD, fx);
      return;
    }
    frame = local;
  }
  if (kind == K_DATA && flen > SYN_MAX_TOM_ECHO_BYTES) { reject(k, SYN_TOM_R_BAD_FIELD, fx); return; }
  in->lseq = lseq;
  in->ts = m->u[F_TS];
  in->stable = m->u[F_STABLE];
  in->kind = kind;
  in->stall_counted = false;
  in->blen = kind == K_ACK ? 0 : (uint16_t)b->len;
  if (in->blen) memcpy(in->bytes, b->ptr, in->blen);
  in->flen = kind == K_DATA ? (uint16_t)flen : 0;
  if (in->flen) memcpy(in->frame, frame, in->flen);
}

/* ---- processing, in link order ---- */

static outcome_t stall(inmsg_t *in, uint32_t k, syn_effects_t *fx) {
  if (!in->stall_counted) { in->stall_counted = true; reject(k, SYN_TOM_R_QUEUE_FULL, fx); }
  return STALL;
}

static outcome_t process_data(tom_t *s, uint32_t k, inmsg_t *in, syn_effects_t *fx) {
  peer_t *p = &s->peer[k];
  uint64_t ts = in->ts;
  if (ts == 0) { reject(k, SYN_TOM_R_BAD_FIELD, fx); return DONE; }
  bool same_as_last = p->last_data_ts != 0 && ts == p->last_data_ts;
  entry_t *direct = find_direct(s, k, ts);
  if (s->reject_reuse && (same_as_last || direct != NULL)) {
    reject(k, SYN_TOM_R_TS_REUSE, fx);
    evidence(k, SYN_TOM_R_TS_REUSE, ts, in->frame, in->flen,
             direct ? direct->frame : NULL, direct ? direct->flen : 0, fx);
    return DONE;
  }
  if (s->reject_backdate && ts <= p->last_ts && !same_as_last && direct == NULL) {
    reject(k, SYN_TOM_R_TS_BACKDATE, fx);
    evidence(k, SYN_TOM_R_TS_BACKDATE, ts, in->frame, in->flen, NULL, 0, fx);
    return DONE;
  }
  if (s->max_drift != 0 && ts > sat_add(s->clock, s->max_drift)) {
    reject(k, SYN_TOM_R_TS_FUTURE, fx);
    evidence(k, SYN_TOM_R_TS_FUTURE, ts, in->frame, in->flen, NULL, 0, fx);
    return DONE;
  }
  entry_t *held = find_key(s, k, ts);
  bool merge = held != NULL && direct == NULL;   /* we hold it from a relay */
  if (!merge && pending_full(s)) return stall(in, k, fx);

  p->last_data_ts = ts;
  clock_witness(s, ts, fx);
  observe(s, k, ts, in->stable);
  if (!merge) {
    entry_t *e = insert(s, k, ts, in->bytes, in->blen, in->frame, in->flen, true);
    owe(s, e, peers_but(s, k, k));
    return DONE;
  }
  entry_t *same = find_version(s, k, ts, in->bytes, in->blen);
  if (same != NULL) { same->direct = true; return DONE; }   /* relayed when first held */
  if (!held->conflicted) {
    reject(k, SYN_TOM_R_EQUIVOCATION, fx);
    evidence(k, SYN_TOM_R_EQUIVOCATION, ts, in->frame, in->flen, held->frame, held->flen, fx);
    mark_conflicted(s, k, ts);
  }
  /* Our direct version must reach everyone: it replaces the held frame,
   * whose own relayer sends it to everyone. */
  held->direct = true;
  memcpy(held->frame, in->frame, in->flen);
  held->flen = in->flen;
  owe(s, held, peers_but(s, k, k));
  return DONE;
}

static outcome_t process_echo(tom_t *s, uint32_t k, inmsg_t *in, syn_effects_t *fx) {
  if (!s->echo) { observe(s, k, in->ts, in->stable); return DONE; }
  syn_frame_t f;
  syn_msg_t m;
  if (syn_wire_frame_decode(in->bytes, in->blen, &f, &m) != 0 || f.type != SYN_TOM_DATA ||
      f.sender >= s->n || f.sender == k || f.sender == s->id) {
    reject(k, SYN_TOM_R_BAD_ECHO, fx);
    return DONE;
  }
  if (s->ring != NULL && syn_crypto_verify_frame(s->ring, in->bytes, &f) != 0) {
    reject(k, SYN_TOM_R_BAD_ECHO, fx);
    return DONE;
  }
  uint32_t x = f.sender;
  uint64_t ts = m.u[F_TS];
  const syn_bytes_t *w = &m.b[F_BYTES];
  /* The relayer's clock reached the relayed ts when it came to hold it. */
  if (ts == 0 || ts > in->ts || w->len > SYN_MAX_TOM_WORD_BYTES) {
    reject(k, SYN_TOM_R_BAD_ECHO, fx);
    return DONE;
  }
  bool decided = s->decided && key_cmp(ts, x, s->dec_ts, s->dec_origin) <= 0;
  entry_t *held = decided ? NULL : find_key(s, x, ts);
  if (!decided && held == NULL && pending_full(s)) return stall(in, k, fx);
  clock_witness(s, ts, fx);
  observe(s, k, in->ts, in->stable);
  if (decided) return DONE;
  if (held == NULL) {
    entry_t *e = insert(s, x, ts, w->ptr, w->len, in->bytes, in->blen, false);
    owe(s, e, peers_but(s, x, k));
  } else if (find_version(s, x, ts, w->ptr, w->len) == NULL && !held->conflicted) {
    reject(x, SYN_TOM_R_EQUIVOCATION, fx);
    evidence(x, SYN_TOM_R_EQUIVOCATION, ts, in->bytes, in->blen, held->frame, held->flen, fx);
    mark_conflicted(s, x, ts);
  }
  return DONE;
}

static outcome_t process(tom_t *s, uint32_t k, inmsg_t *in, syn_effects_t *fx) {
  switch (in->kind) {
  case K_DATA: return process_data(s, k, in, fx);
  case K_ECHO: return process_echo(s, k, in, fx);
  default: observe(s, k, in->ts, in->stable); return DONE;
  }
}

/* ---- delivery ---- */

static bool decidable(const tom_t *s, const entry_t *e) {
  if (stable_of(s) <= e->ts) return false;
  if (s->echo) {
    if (e->echo_to != 0) return false;
    for (uint32_t k = 0; k < s->n; k++) if (k != s->id && s->peer[k].rep <= e->ts) return false;
  }
  return true;
}

/* Delivers (or drops, when conflicted) every head that may be decided.
 * Returns whether any was taken. */
static bool deliver_ready(tom_t *s, syn_effects_t *fx) {
  bool any = false;
  while (s->npending > 0) {
    uint16_t idx = s->order[0];
    entry_t *e = &s->pool[idx];
    if (!decidable(s, e)) break;
    if (!room(s, fx, 2)) { s->pump_more = true; break; }
    memmove(&s->order[0], &s->order[1], (s->npending - 1) * sizeof s->order[0]);
    s->npending--;
    s->free_idx[s->nfree++] = idx;
    s->decided = true; s->dec_ts = e->ts; s->dec_origin = e->origin;
    if (e->conflicted) {
      syn_fx_trace(fx, "tom: dropped conflicted (%u, %llu)", e->origin, (unsigned long long)e->ts);
    } else {
      int rc = syn_fx_deliver(fx, ++s->delivered, e->origin, e->ts, e->word, e->wlen);
      SYN_ASSERT(rc == 0);
    }
    any = true;
  }
  return any;
}

/* Processes every link as far as it goes in order, relaying and delivering
 * as it can, until nothing moves (a delivery frees room a stalled link may
 * be waiting for). */
static void pump(tom_t *s, syn_effects_t *fx) {
  bool progress = true;
  while (progress && !s->pump_more) {
    progress = false;
    for (uint32_t k = 0; k < s->n && !s->pump_more; k++) {
      if (k == s->id) continue;
      peer_t *p = &s->peer[k];
      for (;;) {
        inmsg_t *in = &p->in[p->rx_next % SYN_MAX_TOM_OOO];
        if (in->lseq != p->rx_next) break;
        if (!room(s, fx, fx_per_msg(s))) { s->pump_more = true; break; }
        if (process(s, k, in, fx) == STALL) break;
        in->lseq = 0;
        p->rx_next++;
        progress = true;
      }
    }
    flush_echoes(s, fx);
    if (deliver_ready(s, fx)) progress = true;
  }
}

/* ---- announcements ---- */

/* Sends each peer what it still needs from us: a ts above every data we
 * hold (so it can order them), with echo on a watermark above them too, and
 * otherwise at least our lack when its messages are not yet acknowledged. */
static void announce(tom_t *s, syn_effects_t *fx) {
  if (s->n == 1) return;
  bool held = s->need_ts > 0;   /* nothing was ever multicast: nothing to announce */
  bool owed = false;
  for (uint32_t k = 0; k < s->n; k++) {
    if (k != s->id && held && s->peer[k].sent_ts <= s->need_ts) owed = true;
  }
  if (owed && s->clock <= s->need_ts) s->clock = min_u64(sat_add(s->need_ts, 1), CLOCK_MAX);
  for (uint32_t k = 0; k < s->n; k++) {
    if (k == s->id) continue;
    peer_t *p = &s->peer[k];
    uint64_t st = stable_to(s, k);
    bool ts_owed = held && p->sent_ts <= s->need_ts && s->clock > p->sent_ts;
    bool st_owed = held && s->echo && p->sent_stable <= s->need_ts && st > p->sent_stable;
    if ((ts_owed || st_owed) && out_room(s, k)) {
      send_seq(s, k, K_ACK, st, NULL, 0, fx);
    } else if (p->link_ack_owed || p->rx_next - 1 > p->lack_sent) {
      emit(s, k, K_ACK, s->clock, st, 0, NULL, 0, fx);
    }
  }
}

static void retransmit(tom_t *s, syn_effects_t *fx) {
  for (uint32_t k = 0; k < s->n; k++) {
    if (k == s->id) continue;
    peer_t *p = &s->peer[k];
    for (uint32_t i = 0; i < p->out_count && i < SYN_MAX_TOM_RESEND; i++) {
      outmsg_t *o = &p->out[(p->out_head + i) % SYN_MAX_TOM_UNACKED];
      if (!o->sent || s->now_ns - o->sent_ns < s->retransmit_ns) break;   /* the rest are younger */
      if (!room(s, fx, 1)) return;
      o->sent_ns = s->now_ns;
      emit(s, k, o->kind, o->ts, o->stable, o->lseq, o->bytes, o->blen, fx);
    }
  }
}

static void arm_timers(tom_t *s, syn_effects_t *fx) {
  if (s->unacked_total > 0) {
    /* A firing a behaviour swallowed would leave us armed forever: re-arm
     * once the firing is overdue. */
    if (!s->rtx_armed || s->now_ns > s->rtx_due_ns + s->retransmit_ns) {
      int rc = syn_fx_timer_set(fx, SYN_TOM_TIMER_RETRANSMIT, s->retransmit_ns);
      SYN_ASSERT(rc == 0);
      s->rtx_armed = true;
      s->rtx_due_ns = s->now_ns + s->retransmit_ns;
    }
  } else if (s->rtx_armed) {
    int rc = syn_fx_timer_cancel(fx, SYN_TOM_TIMER_RETRANSMIT);
    SYN_ASSERT(rc == 0);
    s->rtx_armed = false;
  }
  if (s->pump_more && !s->pump_armed) {
    int rc = syn_fx_timer_set(fx, SYN_TOM_TIMER_PUMP, 0);
    SYN_ASSERT(rc == 0);
    s->pump_armed = true;
  }
}

/* ---- requests ---- */

static void on_request(tom_t *s, const syn_event_t *ev, syn_effects_t *fx) {
  if (ev->op_len > SYN_MAX_TOM_WORD_BYTES || (ev->op_len > 0 && ev->op == NULL)) {
    reject(s->id, SYN_TOM_R_OP_TOO_LONG, fx);
    return;
  }
  if (s->clock >= CLOCK_MAX) { reject(s->id, SYN_TOM_R_CLOCK_EXHAUSTED, fx); return; }
  if (s->box_count >= SYN_MAX_TOM_OUTBOX) { reject(s->id, SYN_TOM_R_BACKPRESSURE, fx); return; }
  uint32_t at = (s->box_head + s->box_count++) % SYN_MAX_TOM_OUTBOX;
  s->outbox[at].len = (uint8_t)ev->op_len;
  if (ev->op_len) memcpy(s->outbox[at].word, ev->op, ev->op_len);
}

/* Multicasts waiting requests while every peer's queue is under half full
 * (the rest is for relays and acks), no relay is owed (peers see every ts
 * our clock has reached before our own data) and the pending queue is
 * under half full. */
static void drain_outbox(tom_t *s, syn_effects_t *fx) {
  while (s->box_count > 0) {
    if (s->owed_total > 0 || s->npending >= SYN_MAX_TOM_PENDING / 2 || !room(s, fx, s->n + 1)) return;
    for (uint32_t k = 0; k < s->n; k++) {
      if (k != s->id && s->peer[k].out_count >= SYN_MAX_TOM_UNACKED / 2) return;
    }
    const uint8_t *w = s->outbox[s->box_head].word;
    size_t len = s->outbox[s->box_head].len;
    s->box_head = (s->box_head + 1) % SYN_MAX_TOM_OUTBOX;
    s->box_count--;
    if (s->clock >= CLOCK_MAX) { reject(s->id, SYN_TOM_R_CLOCK_EXHAUSTED, fx); continue; }
    s->clock++;
    insert(s, s->id, s->clock, w, len, NULL, 0, true);
    uint64_t st = stable_of(s);
    for (uint32_t k = 0; k < s->n; k++) {
      if (k != s->id) send_seq(s, k, K_DATA, st, w, len, fx);
    }
  }
}

/* ---- the protocol interface ---- */

static int tom_init(void *state, const syn_proto_cfg_t *cfg) {
  tom_t *s = state;
  if (cfg->n == 0 || cfg->id >= cfg->n) return -SYN_EINVAL;
  if (cfg->n > SYN_MAX_TOM_NODES) return -SYN_ELIMIT;
  for (size_t i = 0; i < SYN_TOM_NPARAMS; i++) {
    if (cfg->params[i] < tom_params[i].min || cfg->params[i] > tom_params[i].max) return -SYN_EINVAL;
  }
  s->id = cfg->id;
  s->n = cfg->n;
  s->retransmit_ns = cfg->params[SYN_TOM_P_RETRANSMIT_MS] * SYN_NS_PER_MS;
  s->reject_reuse = cfg->params[SYN_TOM_P_REJECT_REUSE] != 0;
  s->reject_backdate = cfg->params[SYN_TOM_P_REJECT_BACKDATE] != 0;
  s->max_drift = (uint64_t)cfg->params[SYN_TOM_P_MAX_DRIFT];
  s->echo = cfg->params[SYN_TOM_P_ECHO] != 0;
  s->ring = cfg->ring;
  for (uint32_t i = 0; i < SYN_MAX_TOM_PENDING; i++) {
    s->free_idx[i] = (uint16_t)(SYN_MAX_TOM_PENDING - 1 - i);
  }
  s->nfree = SYN_MAX_TOM_PENDING;
  for (uint32_t k = 0; k < s->n; k++) {
    s->peer[k].tx_next = 1;
    s->peer[k].rx_next = 1;
  }
  return 0;
}

static void tom_step(void *state, const syn_event_t *ev, syn_effects_t *fx) {
  tom_t *s = state;
  s->now_ns = ev->now_ns;
  s->pump_more = false;
  switch (ev->kind) {
  case SYN_EV_START:
    break;
  case SYN_EV_MESSAGE:
    on_message(s, ev, fx);
    break;
  case SYN_EV_TIMER:
    if (ev->timer == SYN_TOM_TIMER_RETRANSMIT) { s->rtx_armed = false; retransmit(s, fx); }
    else if (ev->timer == SYN_TOM_TIMER_PUMP) s->pump_armed = false;
    break;
  case SYN_EV_REQUEST:
    on_request(s, ev, fx);
    break;
  }
  pump(s, fx);
  drain_outbox(s, fx);
  deliver_ready(s, fx);   /* n = 1: our own request is deliverable at once */
  announce(s, fx);
  arm_timers(s, fx);
}

static void tom_status(const void *state, syn_status_fn fn, void *ctx) {
  const tom_t *s = state;
  fn(ctx, "clock", (int64_t)(s->clock > INT64_MAX ? INT64_MAX : s->clock));
  fn(ctx, "delivered", (int64_t)s->delivered);
  fn(ctx, "pending", (int64_t)s->npending);
  fn(ctx, "unacked", (int64_t)s->unacked_total);
  fn(ctx, "queued", (int64_t)s->box_count);
}

const syn_proto_t syn_tom_proto = {
  .name = "tom",
  .msgs = tom_msgs, .nmsgs = sizeof tom_msgs / sizeof tom_msgs[0],
  .params = tom_params, .nparams = SYN_TOM_NPARAMS,
  .reasons = tom_reasons, .nreasons = SYN_TOM_NREASONS,
  .state_bytes = sizeof(tom_t),
  .max_nodes = SYN_MAX_TOM_NODES,
  .init = tom_init,
  .step = tom_step,
  .status = tom_status,
};
