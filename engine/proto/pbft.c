/* pbft.c — Practical Byzantine Fault Tolerance (Castro & Liskov, OSDI '99)
 * as a pure state machine, with its client role.
 *
 * Owns: the normal case (pre-prepare, prepare, commit) over client
 * batches, in-order execution through the replicated application
 * (cfg->app) with a per-client reply cache (exactly-once), checkpoints and
 * garbage collection, state transfer (checkpoint snapshot in chunks, then
 * committed batches with commit certificates), view change with NEW-VIEW,
 * retransmission, and the client that signs requests, retries by broadcast
 * and accepts f+1 matching replies. Never: reads a clock (ev->now_ns only),
 * a socket, a file or a random number; never asserts on network input:
 * bad input is rejected with a reason and counted. It allocates only in
 * init (sized by n, clients, the window and the SYN_PBFT_* limits) and for
 * checkpoint snapshots (bounded by SYN_PBFT_MAX_STATE_BYTES and
 * SYN_PBFT_MAX_SNAPS) — the application's state grows with its data.
 *
 * ---- roles ----
 * Replicas are ids 0..n-1, f = (n-1)/3, quorum 2f+1, the primary of view v
 * is v mod n. Clients are ids n..n+clients-1: one request outstanding each,
 * sent to the primary it believes in, broadcast to every replica after
 * client_timeout_ms.
 *
 * ---- messages and what signs them ----
 * Every message is a signed frame (node/). Certificates are lists of signed
 * frames, verified one by one against cfg->ring: a prepared certificate is
 * the pre-prepare and 2f prepares from distinct backups, a checkpoint proof
 * 2f+1 checkpoint frames, a commit certificate 2f+1 commit frames. The
 * pre-prepare carries only (view, seq, digest); the batch body travels
 * beside it (batch) and is trusted by its digest, so certificates stay
 * small. Broadcasts come back to their sender (syn_pbft_proto.loopback), so
 * a replica's own votes are signed frames in its certificates too.
 *
 * ---- validation, in cost order ----
 * Size and shape (wire), then pbft_admit before the frame's signature is
 * verified (stale views, garbage-collected slots, malformed digests: what
 * the content alone condemns), then the signature (node/), then view,
 * sender role and watermarks, then digests, then the signatures of
 * embedded frames, then protocol rules.
 * Two pre-prepares for one (view, seq), two prepares or commits for one
 * slot, two checkpoint digests for one seq from one replica are kept as
 * evidence with both signed frames.
 *
 * ---- state digest ----
 * The checkpoint digest is BLAKE2b-256 of the canonical snapshot: reply
 * cache (last ts, seq and result per client), executed-op count and the
 * application's own canonical snapshot. State transfer hashes what it
 * received before restoring it into a fresh application instance.
 *
 * ---- view change ----
 * A backup with a client request it has not executed after
 * view_change_ms moves to view v+1; the timer for v+1 starts once 2f+1
 * view-changes for it are in, and doubles for each view change that did
 * not lead to an execution. The replica stops taking normal-case messages and
 * broadcasts view-change {v+1, stable seq, checkpoint proof, P set}. f+1
 * view-changes for views above its own make a replica join the smallest of
 * them. The new primary, holding 2f+1 valid view-changes for v+1, sends
 * new-view naming them by (sender, digest); every replica recomputes the
 * O set from those same view-changes (for each seq above the highest
 * stable checkpoint: the digest prepared in the highest view, or the null
 * batch) and then takes only pre-prepares that match it. A replica that
 * lacks a named view-change asks the primary for it (vc-fetch / relay).
 *
 * ---- durable state ----
 * A replica persists (SYN_FX_PERSIST; node/ syncs before the send that
 * depends on it) everything a restart needs so that it never contradicts
 * what it signed and never forgets what it executed:
 *   VIEW         its view, whether it is changing view, its next seq as primary;
 *   VIEW_CHANGE  the view-change payload it signed for its view (resent as
 *                is: Ed25519 is deterministic, so it is the same frame);
 *   NEW_VIEW     as primary, the view-changes its new-view named;
 *   OSET         the O set of the view it entered (which digests it may take);
 *   PRE_PREPARE, PREPARE, COMMIT  per slot, the (view, digest) it signed in
 *                that phase (a pre-prepare with its batch body), before the
 *                message goes out: the same slot, phase and view later gets
 *                the same vote or none;
 *   PREPARED     per slot, its prepared certificate (its view-changes carry it);
 *   EXEC         each executed batch with its commit certificate, before the
 *                replies it causes;
 *   CKPT, CHUNK  the durable checkpoint: header (seq, digest, size, proof)
 *                and its snapshot in SYN_PBFT_CHUNK_BYTES chunks.
 * When a checkpoint is stable the writer persists its snapshot (at most
 * SYN_PBFT_PERSIST_STEP_BYTES a step; a small one at once), then its header,
 * then forgets the older checkpoint and every slot record at or below it: the
 * records stay within one window. `dur` is that durable checkpoint. A replica
 * signs and executes only for seq <= dur + L (so a restart, whose window
 * starts at dur, has room for every vote it recorded) and executes only when
 * what it executed so far is durable (after a state transfer, once the
 * transferred snapshot is). Recovery (pbft_recover) restores the view and
 * its records, the snapshot, re-executes the batches after it without
 * emitting anything, and refills the slots' own votes; START then resends
 * its own messages and fetches to catch up. A client reserves request
 * timestamps SYN_PBFT_CLIENT_TS_BLOCK at a time (CLIENT), so a restarted
 * client never reuses one.
 *
 * Outside the model (documented, not handled): crypto off (embedded frames
 * are then not verified: a faulty replica can forge certificates); a
 * restart that lost its records (amnesia: the replica may vote twice for
 * one slot, which its peers keep as evidence against it). */
#include "pbft.h"
#include "../app/app.h"

#include <stdlib.h>
#include <string.h>

#define DIG SYN_DIGEST_BYTES
/* A pre-prepare, prepare or commit frame; a checkpoint frame is smaller. */
#define VOTE_FRAME_BYTES (SYN_WIRE_HEADER_BYTES + 8 + 8 + 4 + DIG + SYN_SIG_BYTES)
#define CKPT_FRAME_BYTES (SYN_WIRE_HEADER_BYTES + 8 + 4 + DIG + SYN_SIG_BYTES)
#define SMALL_CAP VOTE_FRAME_BYTES
/* A request frame with the largest op. */
#define REQ_FRAME_CAP (SYN_WIRE_HEADER_BYTES + 8 + 8 + 4 + SYN_MAX_OP_BYTES + SYN_SIG_BYTES)
/* A list of quorum-many small frames (proofs, certificates). */
#define PROOF_CAP (SYN_PBFT_MAX_REPLICAS * (4 + SMALL_CAP))
/* What a view-change may carry beside its P set. */
#define VC_FIXED_BYTES (8 + 8 + 4 + PROOF_CAP + 4)
#define RELAY_SLACK 256   /* a relay's own header, fields and signature */
#define MAX_VC_PAYLOAD (SYN_MAX_PAYLOAD_BYTES - RELAY_SLACK - SYN_WIRE_HEADER_BYTES - SYN_SIG_BYTES)
/* The largest record but a view-change or a chunk (both persisted from
 * where they are): an executed batch with its commit certificate. */
#define REC_CAP (8 + DIG + 4 + SYN_PBFT_MAX_BATCH_BYTES + PROOF_CAP)
#define CHUNK_KEYS 1024   /* chunk record keys per checkpoint: key = seq * CHUNK_KEYS + chunk */

_Static_assert(SYN_PBFT_MAX_REPLICAS <= SYN_MAX_NODES, "replicas are keyring identities");
_Static_assert(SYN_PBFT_MAX_RESULT_BYTES == SYN_MAX_APP_RESULT_BYTES, "a reply carries one app result");
_Static_assert(SYN_MAX_OP_BYTES == SYN_MAX_APP_OP_BYTES, "a request carries one app op");
_Static_assert(REQ_FRAME_CAP + 4 <= SYN_PBFT_MAX_BATCH_BYTES, "a batch holds the largest request");
_Static_assert(SYN_PBFT_CHUNK_BYTES + PROOF_CAP + 1024 <= SYN_MAX_PAYLOAD_BYTES, "a state chunk fits a frame");
_Static_assert(SYN_PBFT_MAX_STATE_BYTES / SYN_PBFT_CHUNK_BYTES <= CHUNK_KEYS, "a snapshot's chunks fit their keys");
_Static_assert(SYN_PBFT_MAX_SEQ <= UINT64_MAX / CHUNK_KEYS, "chunk keys do not overflow");
_Static_assert(REC_CAP <= SYN_MAX_RECORD_BYTES && MAX_VC_PAYLOAD <= SYN_MAX_RECORD_BYTES &&
               SYN_PBFT_CHUNK_BYTES <= SYN_MAX_RECORD_BYTES, "every record fits SYN_MAX_RECORD_BYTES");
_Static_assert(16 + SYN_PBFT_MAX_WINDOW * DIG <= REC_CAP, "an O set record fits");
_Static_assert(SYN_PBFT_PERSIST_STEP_BYTES >= SYN_PBFT_CHUNK_BYTES, "a step persists at least one chunk");

/* Field positions. */
enum { RQ_CLIENT, RQ_TS, RQ_OP };
enum { V_VIEW, V_SEQ, V_DIGEST, V_BODY, V_CERT };         /* pre-prepare/prepare/commit, batch, entry */
enum { RP_VIEW, RP_SEQ, RP_CLIENT, RP_TS, RP_RESULT };
enum { CK_SEQ, CK_DIGEST };
enum { VC_VIEW, VC_STABLE, VC_PROOF, VC_PREPARED };
enum { NV_VIEW, NV_REFS };
enum { FE_HAVE, FE_SEQ, FE_OFFSET };
enum { ST_SEQ, ST_OFFSET, ST_TOTAL, ST_PROOF, ST_CHUNK };
enum { ND_SEQ, ND_DIGEST };
enum { VF_VIEW, VF_SENDER };

enum { K_REQUEST, K_PRE_PREPARE, K_BATCH, K_PREPARE, K_COMMIT, K_REPLY, K_CHECKPOINT, K_VIEW_CHANGE,
       K_NEW_VIEW, K_FETCH, K_STATE, K_ENTRY, K_NEED, K_VC_FETCH, K_RELAY };

#define U(n) { n, SYN_FIELD_U64, 0 }
#define B(n, max) { n, SYN_FIELD_BYTES, max }
static const syn_msg_def_t pbft_msgs[] = {
  { SYN_PBFT_REQUEST, "pbft", "request", 3, { U("client"), U("ts"), B("op", SYN_MAX_OP_BYTES) } },
  { SYN_PBFT_PRE_PREPARE, "pbft", "pre-prepare", 3, { U("view"), U("seq"), B("digest", DIG) } },
  { SYN_PBFT_BATCH, "pbft", "batch", 4,
    { U("view"), U("seq"), B("digest", DIG), B("requests", SYN_PBFT_MAX_BATCH_BYTES) } },
  { SYN_PBFT_PREPARE, "pbft", "prepare", 3, { U("view"), U("seq"), B("digest", DIG) } },
  { SYN_PBFT_COMMIT, "pbft", "commit", 3, { U("view"), U("seq"), B("digest", DIG) } },
  { SYN_PBFT_REPLY, "pbft", "reply", 5,
    { U("view"), U("seq"), U("client"), U("ts"), B("result", SYN_PBFT_MAX_RESULT_BYTES) } },
  { SYN_PBFT_CHECKPOINT, "pbft", "checkpoint", 2, { U("seq"), B("digest", DIG) } },
  { SYN_PBFT_VIEW_CHANGE, "pbft", "view-change", 4,
    { U("view"), U("stable"), B("proof", PROOF_CAP), B("prepared", MAX_VC_PAYLOAD - VC_FIXED_BYTES) } },
  { SYN_PBFT_NEW_VIEW, "pbft", "new-view", 2, { U("view"), B("refs", SYN_PBFT_MAX_REPLICAS * (4 + DIG)) } },
  { SYN_PBFT_FETCH, "pbft", "fetch", 3, { U("have"), U("seq"), U("offset") } },
  { SYN_PBFT_STATE, "pbft", "state", 5,
    { U("seq"), U("offset"), U("total"), B("proof", PROOF_CAP), B("chunk", SYN_PBFT_CHUNK_BYTES) } },
  { SYN_PBFT_ENTRY, "pbft", "entry", 5,
    { U("view"), U("seq"), B("digest", DIG), B("batch", SYN_PBFT_MAX_BATCH_BYTES), B("cert", PROOF_CAP) } },
  { SYN_PBFT_NEED, "pbft", "need", 2, { U("seq"), B("digest", DIG) } },
  { SYN_PBFT_VC_FETCH, "pbft", "vc-fetch", 2, { U("view"), U("replica") } },
  { SYN_PBFT_RELAY, "pbft", "relay", 1, { B("frame", SYN_MAX_PAYLOAD_BYTES - RELAY_SLACK) } },
};
#undef U
#undef B

static const syn_param_def_t pbft_params[SYN_PBFT_NPARAMS] = {
  [SYN_PBFT_P_CHECKPOINT_INTERVAL] = { "checkpoint_interval", 100, 1, SYN_PBFT_MAX_WINDOW,
                                       "K: a checkpoint every K sequence numbers" },
  [SYN_PBFT_P_WINDOW] = { "window", 200, 1, SYN_PBFT_MAX_WINDOW,
                          "L: sequence numbers between the low and high watermarks (K..7K)" },
  [SYN_PBFT_P_BATCH_SIZE] = { "batch_size", 10, 1, SYN_MAX_BATCH, "requests per pre-prepared batch" },
  [SYN_PBFT_P_BATCH_DELAY_MS] = { "batch_delay_ms", 0, 0, 60000,
                                  "a primary waits this long for a batch to fill (0: send at once)" },
  [SYN_PBFT_P_VIEW_CHANGE_MS] = { "view_change_ms", 10000, 1, 3600000,
                                  "a backup suspects the primary after a request waits this long" },
  [SYN_PBFT_P_CLIENT_TIMEOUT_MS] = { "client_timeout_ms", 3000, 1, 3600000,
                                     "a client broadcasts its request after this long without f+1 replies" },
  [SYN_PBFT_P_RETRANSMIT_MS] = { "retransmit_ms", 100, 1, 60000,
                                 "resend votes, fetch missing batches and state at this period" },
};

static const char *const pbft_reasons[SYN_PBFT_NREASONS] = {
  [SYN_PBFT_R_BAD_REQUEST] = "bad_request", [SYN_PBFT_R_BAD_BATCH] = "bad_batch",
  [SYN_PBFT_R_NOT_PRIMARY] = "not_primary", [SYN_PBFT_R_WRONG_VIEW] = "wrong_view",
  [SYN_PBFT_R_OUT_OF_WINDOW] = "out_of_window", [SYN_PBFT_R_EQUIVOCATION] = "equivocation",
  [SYN_PBFT_R_CONFLICT] = "conflict", [SYN_PBFT_R_BAD_CHECKPOINT] = "bad_checkpoint",
  [SYN_PBFT_R_BAD_VIEW_CHANGE] = "bad_view_change", [SYN_PBFT_R_BAD_NEW_VIEW] = "bad_new_view",
  [SYN_PBFT_R_BAD_STATE] = "bad_state", [SYN_PBFT_R_BAD_ENTRY] = "bad_entry",
  [SYN_PBFT_R_STALE] = "stale", [SYN_PBFT_R_QUEUE_FULL] = "queue_full",
  [SYN_PBFT_R_BAD_REPLY] = "bad_reply", [SYN_PBFT_R_NOT_CLIENT] = "not_client",
  [SYN_PBFT_R_DIVERGED] = "diverged", [SYN_PBFT_R_BAD_DIGEST] = "bad_digest",
};

/* ---- state ---- */

typedef struct {
  uint64_t view;             /* 0 with len 0: none */
  uint64_t seq;
  uint8_t d[DIG];
  uint16_t len;
  bool accused;              /* a conflicting vote was kept as evidence already */
  uint8_t frame[SMALL_CAP];
} vote_t;

typedef struct {
  uint64_t seq;              /* 0: unused */
  bool have_pp;              /* a pre-prepare accepted in `view` */
  uint64_t view;
  uint8_t digest[DIG];
  uint16_t pp_len;
  uint8_t pp[SMALL_CAP];
  bool have_batch;           /* body present whose digest is bdigest */
  uint8_t bdigest[DIG];
  uint32_t blen;
  bool sent_prepare, prepared, sent_commit, committed;
  bool accused;              /* the primary's second pre-prepare was kept as evidence already */
  uint64_t my_pp_view, my_prep_view, my_comm_view;   /* view + 1 this replica signed in (0: nothing) */
  uint8_t my_pp_d[DIG], my_prep_d[DIG], my_comm_d[DIG];   /* ... and the digest it signed */
  uint64_t c_view;           /* the view it committed in */
  int64_t pp_at_ns;          /* when its pre-prepare was accepted (retransmit only older ones) */
  bool nv_fixed;             /* the O set of the current view fixes its digest */
  uint8_t nv_digest[DIG];
  uint32_t cert_len;         /* the prepared certificate (a P-set entry) in cert; 0: none */
  uint8_t *batch;            /* SYN_PBFT_MAX_BATCH_BYTES */
  uint8_t *cert;             /* cert_cap */
  uint8_t *ccert;            /* the commit certificate it committed with: quorum commit frames */
  uint32_t ccert_len;
  vote_t *prep, *comm;       /* per replica */
} slot_t;

typedef struct {
  uint64_t last_ts, last_seq;   /* replicated: the reply cache */
  uint32_t rlen;
  uint8_t result[SYN_PBFT_MAX_RESULT_BYTES];
  uint64_t pend_ts;             /* local: the request waiting to execute; 0 none */
  bool assigned;                /* the primary put it in a batch of this view */
  uint32_t pend_len;
  uint8_t pend[REQ_FRAME_CAP];
} centry_t;

typedef struct {
  uint64_t seq;
  uint8_t d[DIG];
  syn_buf_t snap;            /* data NULL: not kept */
} snap_t;

typedef struct {
  uint64_t view;             /* 0: none */
  uint8_t d[DIG];            /* digest of the frame */
  uint32_t len;
  uint8_t *frame;            /* vc_cap */
} vcrec_t;

/* The O set of a new view, recomputed from the view-changes it names. */
typedef struct {
  uint64_t min_s, max_s;
  uint8_t min_d[DIG];
  const uint8_t *proof; uint32_t proof_len;   /* of min_s, inside one of the frames */
  uint64_t pv[SYN_PBFT_MAX_WINDOW];
  bool has[SYN_PBFT_MAX_WINDOW];
  uint8_t d[SYN_PBFT_MAX_WINDOW][DIG];
} oset_t;

typedef struct {
  uint32_t id, n, f, quorum, clients;
  uint64_t K, L;
  uint8_t null_d[DIG];                   /* digest of the null (empty) batch */
  int64_t batch_size, batch_delay_ns, vc_ns, tick_ns;
  const syn_keyring_t *ring;
  const syn_app_t *app;
  void *app_state;

  uint64_t view;
  bool in_vc;
  uint32_t vc_attempts;
  bool view_timer, tick_on, exec_on, batch_on, broken;

  uint64_t h;                            /* stable checkpoint = low watermark */
  uint8_t h_digest[DIG];
  uint32_t h_proof_len;
  uint8_t h_proof[PROOF_CAP];
  uint64_t last_exec, op_count, next_seq, max_seen;

  slot_t *slots;                         /* L, indexed seq % L */
  uint32_t cert_cap;
  centry_t *ctab;                        /* clients */
  uint32_t rr;
  vote_t *ck;                            /* n * SYN_PBFT_CKPT_HISTORY checkpoint votes */
  snap_t snaps[SYN_PBFT_MAX_SNAPS];

  vcrec_t *vcs;                          /* n: each replica's highest-view view-change */
  vcrec_t *nvc;                          /* n: a view-change the pending new-view names, when vcs[q] holds another */
  uint64_t *hint;                        /* n: the highest view each replica's votes showed */
  uint64_t *bad_vc;                      /* n: the highest view of an invalid view-change kept as evidence */
  uint32_t vc_cap;
  uint64_t nv_sent;                      /* the view whose new-view we sent (primary) */
  uint32_t nv_len;
  uint8_t nv_refs[SYN_PBFT_MAX_REPLICAS * (4 + DIG)];
  oset_t *oset;                          /* the O set of view o_view, for slots that enter the window later */
  uint64_t o_view;
  bool nv_pending;                       /* a new-view waits for view-changes it names */
  uint64_t nv_view;
  uint32_t nv_plen;
  uint8_t nv_prefs[SYN_PBFT_MAX_REPLICAS * (4 + DIG)];

  bool xfer;                             /* a state transfer runs toward x_seq */
  uint64_t x_seq, x_total;
  uint8_t x_d[DIG];
  uint32_t x_proof_len;
  uint8_t x_proof[PROOF_CAP];
  syn_buf_t x_buf;
  uint64_t x_progress;
  uint32_t x_peer;                       /* the replica whose snapshot we are assembling */

  uint32_t fetch_peer;
  uint64_t stuck_ticks, tick_exec;
  syn_buf_t scratch;                     /* results, batches, snapshots */
  /* counters for status */
  uint64_t view_changes, transfers, batches, checkpoints;
  void *mem;                             /* slot bodies, votes, vc frames */

  /* durable state (see "durable state" at the top) */
  uint64_t dur;                          /* the checkpoint whose snapshot is durable (0: genesis) */
  uint64_t dur_exec;                     /* executed batches are durable through here */
  bool w_on;                             /* the writer is persisting checkpoint w_seq */
  uint64_t w_seq, w_off;
  uint8_t w_d[DIG];
  uint32_t w_proof_len;
  uint8_t w_proof[PROOF_CAP];
  syn_buf_t w_buf;                       /* its snapshot, when it takes more than one step */
  uint64_t my_vc_view;                   /* the view-change payload signed for this view (0: none) */
  uint32_t my_vc_len;
  uint8_t *my_vc;                        /* vc_cap */
  uint64_t persisted;                    /* records persisted (status) */
  uint8_t rbuf[REC_CAP];                 /* a record being built */
  struct {                               /* recovery only: the durable checkpoint being read back */
    bool hdr, done;
    uint64_t seq, total;
    uint8_t d[DIG];
    uint32_t proof_len;
    uint8_t proof[PROOF_CAP];
  } rec;
} replica_t;

typedef struct {
  bool have;
  uint64_t view, seq;
  uint32_t len;
  uint8_t res[SYN_PBFT_MAX_RESULT_BYTES];
} creply_t;

typedef struct {
  uint32_t id, n, f;
  int64_t timeout_ns;
  uint64_t ts, view;
  uint64_t ts_reserved;         /* durable: no request ever carries a ts above it unpersisted */
  bool busy;
  uint32_t op_len;
  uint8_t op[SYN_MAX_OP_BYTES];
  creply_t rep[SYN_PBFT_MAX_REPLICAS];
  uint8_t q[SYN_PBFT_CLIENT_QUEUE_BYTES];
  uint32_t q_head, q_used, q_count;
  uint64_t completed, retries;
} client_t;

typedef struct {
  replica_t *r;
  client_t *c;
} pbft_t;

/* ---- small helpers ---- */

static uint32_t primary_of(const replica_t *r, uint64_t v) { return (uint32_t)(v % r->n); }
static bool is_primary(const replica_t *r) { return primary_of(r, r->view) == r->id; }
static bool digest_ok(const syn_msg_t *m, int field) { return m->b[field].len == DIG; }
static const uint8_t *dg(const syn_msg_t *m, int field) { return m->b[field].ptr; }
static void reject(syn_effects_t *fx, uint32_t from, uint16_t reason) { (void)syn_fx_reject(fx, from, reason); }

/* A second, different signed message where the sender may send one: refused,
 * and kept as evidence with both frames the first time only (*accused). */
static void accuse(syn_effects_t *fx, const syn_event_t *ev, uint16_t reason, uint64_t round, bool *accused,
                   const uint8_t *first, size_t first_len) {
  reject(fx, ev->from, reason);
  if (!*accused) (void)syn_fx_evidence(fx, ev->from, reason, round, first, first_len, ev->frame, ev->frame_len);
  *accused = true;
}

/* A slot whose digest is the null batch's has its (empty) body already. */
static void null_body(const uint8_t null_d[DIG], slot_t *s, const uint8_t d[DIG]) {
  if (memcmp(d, null_d, DIG) != 0) return;
  s->have_batch = true;
  s->blen = 0;
  memcpy(s->bdigest, null_d, DIG);
}

/* A list of (u32 len, bytes) items. */
typedef struct { const uint8_t *p; uint32_t left; } iter_t;
/* 1: an item; 0: the end; -1: malformed. */
static int iter_next(iter_t *it, const uint8_t **item, uint32_t *len) {
  if (it->left == 0) return 0;
  if (it->left < 4) return -1;
  uint32_t l = syn_get_u32(it->p);
  if (l > it->left - 4) return -1;
  *item = it->p + 4; *len = l;
  it->p += 4 + l; it->left -= 4 + l;
  return 1;
}
static uint32_t put_item(uint8_t *out, const uint8_t *item, uint32_t len) {
  syn_put_u32(out, len);
  memcpy(out + 4, item, len);
  return 4 + len;
}

/* Parses an embedded frame: the right type, from a replica, signed by it
 * (when the run verifies signatures). */
static bool inner_frame(const replica_t *r, const uint8_t *p, uint32_t len, uint16_t type,
                        syn_frame_t *f, syn_msg_t *m) {
  if (syn_wire_frame_decode(p, len, f, m) != 0) return false;
  if (f->type != type || f->sender >= r->n) return false;
  if (r->ring && syn_crypto_verify_frame(r->ring, p, f) != 0) return false;
  return true;
}

static slot_t *slot_peek(replica_t *r, uint64_t seq) {
  slot_t *s = &r->slots[seq % r->L];
  return s->seq == seq ? s : NULL;
}

static void slot_clear(replica_t *r, slot_t *s) {
  uint8_t *batch = s->batch, *cert = s->cert, *ccert = s->ccert;
  vote_t *prep = s->prep, *comm = s->comm;
  memset(s, 0, sizeof *s);
  s->batch = batch; s->cert = cert; s->ccert = ccert; s->prep = prep; s->comm = comm;
  for (uint32_t i = 0; i < r->n; i++) { prep[i].len = 0; prep[i].view = 0; comm[i].len = 0; comm[i].view = 0; }
}

/* The slot for seq inside the watermarks, (re)initialised; NULL outside. */
static slot_t *slot_at(replica_t *r, uint64_t seq) {
  if (seq <= r->h || seq > r->h + r->L) return NULL;
  slot_t *s = &r->slots[seq % r->L];
  if (s->seq != seq) {
    slot_clear(r, s);
    s->seq = seq;
    /* A slot the current view's O set fixed while it was beyond our window. */
    const oset_t *o = r->oset;
    if (r->o_view == r->view && r->o_view > 0 && seq > o->min_s && seq <= o->max_s) {
      s->nv_fixed = true;
      memcpy(s->nv_digest, o->d[seq - o->min_s - 1], DIG);
      null_body(r->null_d, s, s->nv_digest);
    }
  }
  return s;
}

/* ---- durable records ---- */

static void persist(replica_t *r, syn_effects_t *fx, uint32_t kind, uint64_t key, const uint8_t *p, size_t len) {
  (void)syn_fx_persist(fx, kind, key, p, len);
  r->persisted++;
}

/* VIEW: the view, whether it is changing, the next seq to assign as primary. */
static void persist_view(replica_t *r, syn_effects_t *fx) {
  uint8_t b[17];
  syn_put_u64(b, r->view);
  b[8] = r->in_vc;
  syn_put_u64(b + 9, r->next_seq);
  persist(r, fx, SYN_PBFT_REC_VIEW, 0, b, sizeof b);
}

/* A slot record: (view, digest) then tail (a batch body, a certificate). */
static void persist_slot(replica_t *r, syn_effects_t *fx, uint32_t kind, uint64_t view, uint64_t seq,
                         const uint8_t d[DIG], const uint8_t *tail, uint32_t tail_len) {
  SYN_ASSERT(8 + DIG + (size_t)tail_len <= REC_CAP);
  syn_put_u64(r->rbuf, view);
  memcpy(r->rbuf + 8, d, DIG);
  if (tail_len) memcpy(r->rbuf + 8 + DIG, tail, tail_len);
  persist(r, fx, kind, seq, r->rbuf, 8 + DIG + tail_len);
}

/* May this replica sign (view, seq, d) in the phase whose own vote is
 * (*my_view, my_d) and whose record is kind? Yes when it signed nothing for
 * the slot in this view — the vote is then recorded, before the send that
 * carries it — or signed this very digest. A second digest never. */
static bool sign(replica_t *r, syn_effects_t *fx, uint32_t kind, uint64_t *my_view, uint8_t my_d[DIG],
                 uint64_t view, uint64_t seq, const uint8_t d[DIG], const uint8_t *tail, uint32_t tail_len) {
  if (*my_view == view + 1) return memcmp(my_d, d, DIG) == 0;
  *my_view = view + 1;
  memcpy(my_d, d, DIG);
  persist_slot(r, fx, kind, view, seq, d, tail, tail_len);
  return true;
}

static void arm_tick(replica_t *r, syn_effects_t *fx) {
  if (r->tick_on) return;
  r->tick_on = true;
  (void)syn_fx_timer_set(fx, SYN_PBFT_TIMER_TICK, r->tick_ns);
}

static bool has_pending(const replica_t *r) {
  for (uint32_t c = 0; c < r->clients; c++) if (r->ctab[c].pend_ts) return true;
  return false;
}

static void arm_view_timer(replica_t *r, syn_effects_t *fx) {
  uint32_t shift = r->vc_attempts < 16 ? r->vc_attempts : 16;
  int64_t after = r->vc_ns;
  for (uint32_t i = 0; i < shift && after < INT64_MAX / 4; i++) after *= 2;
  r->view_timer = true;
  (void)syn_fx_timer_set(fx, SYN_PBFT_TIMER_VIEW, after);
}

static void stop_view_timer(replica_t *r, syn_effects_t *fx) {
  if (!r->view_timer) return;
  r->view_timer = false;
  (void)syn_fx_timer_cancel(fx, SYN_PBFT_TIMER_VIEW);
}

/* ---- messages out ---- */

static void send_vote(syn_effects_t *fx, int kind, bool bcast, uint32_t to, uint64_t view, uint64_t seq,
                      const uint8_t d[DIG]) {
  syn_msg_t m = { .def = &pbft_msgs[kind] };
  m.u[V_VIEW] = view; m.u[V_SEQ] = seq;
  m.b[V_DIGEST] = (syn_bytes_t){ d, DIG };
  if (bcast) (void)syn_fx_broadcast(fx, &m); else (void)syn_fx_send(fx, to, &m);
}

static void send_batch(syn_effects_t *fx, bool bcast, uint32_t to, const slot_t *s, uint64_t view) {
  if (!syn_fx_room(fx, 1, s->blen + 256)) return;   /* asked for again later (need) */
  syn_msg_t m = { .def = &pbft_msgs[K_BATCH] };
  m.u[V_VIEW] = view; m.u[V_SEQ] = s->seq;
  m.b[V_DIGEST] = (syn_bytes_t){ s->bdigest, DIG };
  m.b[V_BODY] = (syn_bytes_t){ s->batch, s->blen };
  if (bcast) (void)syn_fx_broadcast(fx, &m); else (void)syn_fx_send(fx, to, &m);
}

static void send_reply(replica_t *r, syn_effects_t *fx, uint32_t c) {
  const centry_t *e = &r->ctab[c];
  syn_msg_t m = { .def = &pbft_msgs[K_REPLY] };
  m.u[RP_VIEW] = r->view; m.u[RP_SEQ] = e->last_seq; m.u[RP_CLIENT] = r->n + c; m.u[RP_TS] = e->last_ts;
  m.b[RP_RESULT] = (syn_bytes_t){ e->result, e->rlen };
  (void)syn_fx_send(fx, r->n + c, &m);
}

/* ---- batches ---- */

/* Checks a batch body: well-formed items, at most SYN_MAX_BATCH requests,
 * each a request frame from a client with a matching client field, signed
 * by that client. */
static bool batch_valid(const replica_t *r, const uint8_t *p, uint32_t len) {
  iter_t it = { p, len };
  const uint8_t *item; uint32_t ilen;
  int k, count = 0;
  while ((k = iter_next(&it, &item, &ilen)) == 1) {
    if (++count > SYN_MAX_BATCH || ilen > REQ_FRAME_CAP) return false;
    syn_frame_t f; syn_msg_t m;
    if (syn_wire_frame_decode(item, ilen, &f, &m) != 0 || f.type != SYN_PBFT_REQUEST) return false;
    if (f.sender < r->n || f.sender >= r->n + r->clients || m.u[RQ_CLIENT] != f.sender || m.u[RQ_TS] == 0)
      return false;
    if (r->ring && syn_crypto_verify_frame(r->ring, item, &f) != 0) return false;
  }
  return k == 0;
}

/* ---- checkpoints and snapshots ---- */

#define SNAP_MAGIC "PBS1"

/* The canonical snapshot of the replicated state: reply cache, op count,
 * then the application's snapshot. */
static int snapshot(replica_t *r, syn_buf_t *out) {
  syn_buf_reset(out);
  int rc = syn_buf_append(out, SNAP_MAGIC, 4);
  if (!rc) rc = syn_buf_put_u64(out, r->op_count);
  if (!rc) rc = syn_buf_put_u32(out, r->clients);
  for (uint32_t c = 0; !rc && c < r->clients; c++) {
    const centry_t *e = &r->ctab[c];
    rc = syn_buf_put_u64(out, e->last_ts);
    if (!rc) rc = syn_buf_put_u64(out, e->last_seq);
    if (!rc) rc = syn_buf_put_u32(out, e->rlen);
    if (!rc) rc = syn_buf_append(out, e->result, e->rlen);
  }
  if (rc) return rc;
  syn_buf_t app;
  syn_buf_init(&app, SYN_PBFT_MAX_STATE_BYTES);
  rc = r->app->snapshot(r->app_state, &app);
  if (!rc) rc = syn_buf_put_u64(out, app.len);
  if (!rc) rc = syn_buf_append(out, app.data, app.len);
  syn_buf_free(&app);
  return rc;
}

static void snap_drop(snap_t *s) { syn_buf_free(&s->snap); memset(s, 0, sizeof *s); }

static snap_t *snap_find(replica_t *r, uint64_t seq) {
  for (int i = 0; i < SYN_PBFT_MAX_SNAPS; i++)
    if (r->snaps[i].snap.data && r->snaps[i].seq == seq) return &r->snaps[i];
  return NULL;
}

/* A free snapshot slot: an empty one, else the oldest above the stable one. */
static snap_t *snap_slot(replica_t *r) {
  snap_t *best = NULL;
  for (int i = 0; i < SYN_PBFT_MAX_SNAPS; i++) {
    snap_t *s = &r->snaps[i];
    if (s->snap.data == NULL) return s;
    if (s->seq != r->h && (best == NULL || s->seq < best->seq)) best = s;
  }
  SYN_ASSERT(best != NULL);
  snap_drop(best);
  return best;
}

static void send_checkpoint(syn_effects_t *fx, uint64_t seq, const uint8_t d[DIG]) {
  syn_msg_t m = { .def = &pbft_msgs[K_CHECKPOINT] };
  m.u[CK_SEQ] = seq;
  m.b[CK_DIGEST] = (syn_bytes_t){ d, DIG };
  (void)syn_fx_broadcast(fx, &m);
}

/* fx NULL: during recovery (the tick sends the vote later). */
static void take_checkpoint(replica_t *r, syn_effects_t *fx, uint64_t seq) {
  snap_t *s = snap_slot(r);
  syn_buf_init(&s->snap, SYN_PBFT_MAX_STATE_BYTES);
  if (snapshot(r, &s->snap) != 0) {
    if (fx) (void)syn_fx_trace(fx, "checkpoint %llu: snapshot failed", (unsigned long long)seq);
    snap_drop(s);
    return;
  }
  s->seq = seq;
  syn_digest(s->snap.data, s->snap.len, s->d);
  r->checkpoints++;
  if (fx) send_checkpoint(fx, seq, s->d);
}

/* Garbage-collects everything at or below the new low watermark. */
static void advance(replica_t *r, syn_effects_t *fx, uint64_t seq, const uint8_t d[DIG],
                    const uint8_t *proof, uint32_t proof_len) {
  if (seq <= r->h) return;
  for (uint64_t s = r->h + 1; s <= seq && s <= r->h + r->L; s++) {
    slot_t *sl = slot_peek(r, s);
    if (sl) slot_clear(r, sl);
  }
  r->h = seq;
  memcpy(r->h_digest, d, DIG);
  memcpy(r->h_proof, proof, proof_len);
  r->h_proof_len = proof_len;
  if (r->next_seq < seq) r->next_seq = seq;
  for (int i = 0; i < SYN_PBFT_MAX_SNAPS; i++)
    if (r->snaps[i].snap.data && r->snaps[i].seq < seq) snap_drop(&r->snaps[i]);
  (void)syn_fx_trace(fx, "stable checkpoint %llu", (unsigned long long)seq);
}

/* Collects quorum checkpoint frames voting (seq, d) into out; returns the length or 0. */
static uint32_t ck_proof(const replica_t *r, uint64_t seq, const uint8_t d[DIG], uint8_t *out) {
  uint32_t len = 0, count = 0;
  for (uint32_t q = 0; q < r->n && count < r->quorum; q++)
    for (int i = 0; i < SYN_PBFT_CKPT_HISTORY; i++) {
      const vote_t *v = &r->ck[q * SYN_PBFT_CKPT_HISTORY + i];
      if (v->len && v->seq == seq && memcmp(v->d, d, DIG) == 0) { len += put_item(out + len, v->frame, v->len); count++; break; }
    }
  return count >= r->quorum ? len : 0;
}

/* Verifies a checkpoint proof: quorum distinct replicas' checkpoint frames
 * for one (seq, digest). Fills d. */
static bool proof_valid(const replica_t *r, const uint8_t *p, uint32_t len, uint64_t seq, uint8_t d[DIG]) {
  iter_t it = { p, len };
  const uint8_t *item; uint32_t ilen;
  uint64_t seen[(SYN_PBFT_MAX_REPLICAS + 63) / 64] = { 0 };
  uint32_t count = 0;
  int k;
  while ((k = iter_next(&it, &item, &ilen)) == 1) {
    syn_frame_t f; syn_msg_t m;
    if (!inner_frame(r, item, ilen, SYN_PBFT_CHECKPOINT, &f, &m)) return false;
    if (m.u[CK_SEQ] != seq || !digest_ok(&m, CK_DIGEST)) return false;
    if (count == 0) memcpy(d, dg(&m, CK_DIGEST), DIG);
    else if (memcmp(d, dg(&m, CK_DIGEST), DIG) != 0) return false;
    if (seen[f.sender / 64] >> (f.sender % 64) & 1) return false;
    seen[f.sender / 64] |= 1ull << (f.sender % 64);
    count++;
  }
  return k == 0 && count >= r->quorum;
}

static void send_fetch(replica_t *r, syn_effects_t *fx, uint64_t seq, uint64_t offset) {
  if (r->n < 2) return;
  r->fetch_peer = (r->fetch_peer + 1) % r->n;
  if (r->fetch_peer == r->id) r->fetch_peer = (r->fetch_peer + 1) % r->n;
  syn_msg_t m = { .def = &pbft_msgs[K_FETCH] };
  m.u[FE_HAVE] = r->last_exec; m.u[FE_SEQ] = seq; m.u[FE_OFFSET] = offset;
  (void)syn_fx_send(fx, r->fetch_peer, &m);
}

static void start_xfer(replica_t *r, syn_effects_t *fx, uint64_t seq, const uint8_t d[DIG],
                       const uint8_t *proof, uint32_t proof_len) {
  if (r->xfer && r->x_seq >= seq) return;
  r->xfer = true;
  r->x_seq = seq; r->x_total = 0; r->x_progress = 0;
  memcpy(r->x_d, d, DIG);
  memcpy(r->x_proof, proof, proof_len);
  r->x_proof_len = proof_len;
  syn_buf_reset(&r->x_buf);
  r->transfers++;
  (void)syn_fx_trace(fx, "state transfer toward checkpoint %llu", (unsigned long long)seq);
  send_fetch(r, fx, seq, 0);
  arm_tick(r, fx);
}

static void execute_ready(replica_t *r, syn_effects_t *fx);

/* (seq, d) has a quorum of checkpoint votes. */
static void checkpoint_stable(replica_t *r, syn_effects_t *fx, uint64_t seq, const uint8_t d[DIG]) {
  if (seq <= r->h) return;
  uint8_t proof[PROOF_CAP];
  uint32_t plen = ck_proof(r, seq, d, proof);
  if (plen == 0) return;
  if (r->last_exec >= seq) {
    snap_t *s = snap_find(r, seq);
    if (s && memcmp(s->d, d, DIG) != 0) {
      /* A quorum agrees on a state we do not have: ours is wrong. */
      reject(fx, r->id, SYN_PBFT_R_DIVERGED);
      (void)syn_fx_trace(fx, "diverged from the stable checkpoint %llu", (unsigned long long)seq);
      return;
    }
    advance(r, fx, seq, d, proof, plen);
    execute_ready(r, fx);
  } else {
    start_xfer(r, fx, seq, d, proof, plen);
  }
}

static void on_checkpoint(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  const syn_msg_t *m = ev->msg;
  uint64_t seq = m->u[CK_SEQ];
  if (!digest_ok(m, CK_DIGEST) || seq == 0 || seq % r->K != 0 || seq > SYN_PBFT_MAX_SEQ || ev->frame_len > SMALL_CAP) {
    reject(fx, ev->from, SYN_PBFT_R_BAD_CHECKPOINT);
    return;
  }
  if (seq <= r->h) return;   /* already stable here */
  vote_t *row = &r->ck[ev->from * SYN_PBFT_CKPT_HISTORY], *slot = NULL;
  for (int i = 0; i < SYN_PBFT_CKPT_HISTORY; i++) {
    vote_t *v = &row[i];
    if (v->len && v->seq == seq) {
      if (memcmp(v->d, dg(m, CK_DIGEST), DIG) != 0)
        accuse(fx, ev, SYN_PBFT_R_CONFLICT, seq, &v->accused, v->frame, v->len);
      return;
    }
    if (slot == NULL || v->len == 0 || (slot->len && v->seq < slot->seq)) slot = v;
  }
  slot->seq = seq; slot->view = 0; slot->accused = false;
  memcpy(slot->d, dg(m, CK_DIGEST), DIG);
  memcpy(slot->frame, ev->frame, ev->frame_len);
  slot->len = (uint16_t)ev->frame_len;
  uint32_t count = 0;
  for (uint32_t q = 0; q < r->n; q++)
    for (int i = 0; i < SYN_PBFT_CKPT_HISTORY; i++) {
      const vote_t *v = &r->ck[q * SYN_PBFT_CKPT_HISTORY + i];
      if (v->len && v->seq == seq && memcmp(v->d, slot->d, DIG) == 0) { count++; break; }
    }
  if (count >= r->quorum) checkpoint_stable(r, fx, seq, slot->d);
}

/* ---- execution ---- */

/* fx NULL: re-executing a persisted batch during recovery (nothing emitted). */
static void execute_batch(replica_t *r, syn_effects_t *fx, slot_t *s) {
  iter_t it = { s->batch, s->blen };
  const uint8_t *item; uint32_t ilen;
  while (iter_next(&it, &item, &ilen) == 1) {
    syn_frame_t f; syn_msg_t m;
    if (syn_wire_frame_decode(item, ilen, &f, &m) != 0) continue;   /* validated on arrival */
    uint32_t c = f.sender - r->n;
    centry_t *e = &r->ctab[c];
    uint64_t ts = m.u[RQ_TS];
    if (ts <= e->last_ts) continue;   /* executed before: exactly once */
    int rc = r->app->execute(r->app_state, m.b[RQ_OP].ptr, m.b[RQ_OP].len, &r->scratch);
    if (rc != 0) {
      r->broken = true;
      if (fx) (void)syn_fx_trace(fx, "execution failed at seq %llu: %s", (unsigned long long)s->seq, syn_strerror(rc));
      return;
    }
    e->last_ts = ts; e->last_seq = s->seq;
    e->rlen = (uint32_t)r->scratch.len;
    memcpy(e->result, r->scratch.data, e->rlen);
    r->op_count++;
    if (fx) {
      (void)syn_fx_deliver(fx, r->op_count, f.sender, ts, m.b[RQ_OP].ptr, m.b[RQ_OP].len);
      send_reply(r, fx, c);
    }
    if (e->pend_ts && e->pend_ts <= ts) { e->pend_ts = 0; e->assigned = false; }
  }
}

static void maybe_propose(replica_t *r, syn_effects_t *fx, bool force);

static void execute_ready(replica_t *r, syn_effects_t *fx) {
  bool progressed = false;
  while (!r->broken) {
    uint64_t seq = r->last_exec + 1;
    /* What it executed so far must be durable first (after a state
     * transfer, the transferred snapshot), and the batch within the window
     * of its durable checkpoint: persist_run resumes. */
    if (r->dur_exec != r->last_exec || seq > r->dur + r->L) break;
    slot_t *s = slot_peek(r, seq);
    if (s == NULL || !s->committed || !s->have_batch || memcmp(s->bdigest, s->digest, DIG) != 0) break;
    /* Room for one batch's record, delivers and replies; otherwise continue next step. */
    if (!syn_fx_room(fx, 2 * SYN_MAX_BATCH + 16,
                     (size_t)SYN_MAX_BATCH * (SYN_MAX_OP_BYTES + SYN_PBFT_MAX_RESULT_BYTES + 128) + 8192 + REC_CAP +
                     SYN_RECORD_SEAL_BYTES)) {
      if (!r->exec_on) { r->exec_on = true; (void)syn_fx_timer_set(fx, SYN_PBFT_TIMER_EXEC, 0); }
      break;
    }
    /* EXEC before the replies it causes: a restart re-executes it. */
    syn_put_u64(r->rbuf, s->c_view);
    memcpy(r->rbuf + 8, s->bdigest, DIG);
    syn_put_u32(r->rbuf + 8 + DIG, s->blen);
    memcpy(r->rbuf + 12 + DIG, s->batch, s->blen);
    memcpy(r->rbuf + 12 + DIG + s->blen, s->ccert, s->ccert_len);
    persist(r, fx, SYN_PBFT_REC_EXEC, seq, r->rbuf, 12 + DIG + (size_t)s->blen + s->ccert_len);
    r->dur_exec = seq;
    execute_batch(r, fx, s);
    if (r->broken) break;
    (void)syn_fx_commit(fx, seq, s->bdigest);
    r->last_exec = seq;
    r->batches++;
    progressed = true;
    if (seq % r->K == 0) take_checkpoint(r, fx, seq);
  }
  if (!progressed) return;
  if (r->xfer && r->last_exec >= r->x_seq) {
    /* Caught up by executing while the transfer ran: it is not needed. */
    r->xfer = false;
    syn_buf_reset(&r->x_buf);
    snap_t *sn = snap_find(r, r->x_seq);
    if (sn && memcmp(sn->d, r->x_d, DIG) == 0) advance(r, fx, r->x_seq, r->x_d, r->x_proof, r->x_proof_len);
  }
  r->vc_attempts = 0;
  if (!is_primary(r) && !r->in_vc) {
    if (has_pending(r)) arm_view_timer(r, fx);   /* restart for what still waits */
    else stop_view_timer(r, fx);
  }
  if (is_primary(r)) maybe_propose(r, fx, false);
}

/* ---- normal case ---- */

/* Counts votes matching (view, digest) in a slot's row; skip excludes one id. */
static uint32_t count_votes(const replica_t *r, const vote_t *row, uint64_t view, const uint8_t d[DIG],
                            uint32_t skip) {
  uint32_t k = 0;
  for (uint32_t q = 0; q < r->n; q++)
    if (q != skip && row[q].len && row[q].view == view && memcmp(row[q].d, d, DIG) == 0) k++;
  return k;
}

static void build_cert(replica_t *r, slot_t *s) {
  uint32_t len = put_item(s->cert, s->pp, s->pp_len), k = 0;
  uint32_t p = primary_of(r, s->view);
  for (uint32_t q = 0; q < r->n && k < 2 * r->f; q++) {
    const vote_t *v = &s->prep[q];
    if (q != p && v->len && v->view == s->view && memcmp(v->d, s->digest, DIG) == 0) {
      len += put_item(s->cert + len, v->frame, v->len);
      k++;
    }
  }
  s->cert_len = len;
}

static void progress(replica_t *r, syn_effects_t *fx, slot_t *s) {
  if (r->in_vc || !s->have_pp || s->view != r->view) return;
  /* Beyond the window of its durable checkpoint a restart could not hold
   * the vote's record: wait (persist_run resumes). */
  if (s->seq > r->dur + r->L) return;
  bool body = s->have_batch && memcmp(s->bdigest, s->digest, DIG) == 0;
  if (!body) return;
  uint32_t p = primary_of(r, s->view);
  if (!s->sent_prepare && r->id != p) {
    s->sent_prepare = true;
    /* One prepare per view: a second digest would be a second vote. */
    if (sign(r, fx, SYN_PBFT_REC_PREPARE, &s->my_prep_view, s->my_prep_d, s->view, s->seq, s->digest, NULL, 0))
      send_vote(fx, K_PREPARE, true, 0, s->view, s->seq, s->digest);
  }
  if (!s->prepared && count_votes(r, s->prep, s->view, s->digest, p) >= 2 * r->f) {
    s->prepared = true;
    build_cert(r, s);
    /* Its view-changes must carry the certificate, restarted or not. */
    persist_slot(r, fx, SYN_PBFT_REC_PREPARED, s->view, s->seq, s->digest, s->cert, s->cert_len);
  }
  if (s->prepared && !s->sent_commit) {
    s->sent_commit = true;
    if (sign(r, fx, SYN_PBFT_REC_COMMIT, &s->my_comm_view, s->my_comm_d, s->view, s->seq, s->digest, NULL, 0))
      send_vote(fx, K_COMMIT, true, 0, s->view, s->seq, s->digest);
  }
  if (s->prepared && !s->committed && count_votes(r, s->comm, s->view, s->digest, UINT32_MAX) >= r->quorum) {
    s->committed = true;
    s->c_view = s->view;
    /* Keep the certificate: later views' votes overwrite the rows. */
    uint32_t len = 0, k = 0;
    for (uint32_t q = 0; q < r->n && k < r->quorum; q++) {
      const vote_t *v = &s->comm[q];
      if (v->len && v->view == s->view && memcmp(v->d, s->digest, DIG) == 0) { len += put_item(s->ccert + len, v->frame, v->len); k++; }
    }
    s->ccert_len = len;
    execute_ready(r, fx);
  }
}

static void start_view_change(replica_t *r, syn_effects_t *fx, uint64_t view);

/* A replica voted in a view above ours. Once f+1 have (so one of them is
 * honest), we ask to join the smallest such view the way a view change
 * does; that view's primary answers our view-change with its new-view. */
static void note_view(replica_t *r, syn_effects_t *fx, uint32_t from, uint64_t view) {
  if (from >= r->n || view <= r->hint[from]) return;
  r->hint[from] = view;
  uint32_t ahead = 0;
  uint64_t smallest = UINT64_MAX;
  for (uint32_t q = 0; q < r->n; q++)
    if (r->hint[q] > r->view) { ahead++; if (r->hint[q] < smallest) smallest = r->hint[q]; }
  if (ahead >= r->f + 1) start_view_change(r, fx, smallest);
}

/* Common checks of pre-prepare, prepare and commit: the slot or NULL (rejected). */
static slot_t *vote_slot(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  const syn_msg_t *m = ev->msg;
  if (!digest_ok(m, V_DIGEST) || ev->frame_len > SMALL_CAP) { reject(fx, ev->from, SYN_PBFT_R_BAD_DIGEST); return NULL; }
  if (m->u[V_VIEW] != r->view || r->in_vc) {
    reject(fx, ev->from, m->u[V_VIEW] > r->view ? SYN_PBFT_R_WRONG_VIEW : SYN_PBFT_R_STALE);
    if (m->u[V_VIEW] > r->view) note_view(r, fx, ev->from, m->u[V_VIEW]);
    return NULL;
  }
  uint64_t seq = m->u[V_SEQ];
  if (seq <= r->h) return NULL;   /* garbage-collected: nothing to do */
  slot_t *s = slot_at(r, seq);
  if (s == NULL) {
    /* Beyond our high watermark: we are behind; the tick fetches state. */
    reject(fx, ev->from, SYN_PBFT_R_OUT_OF_WINDOW);
    if (seq > r->max_seen && seq <= r->h + 64 * r->L) { r->max_seen = seq; arm_tick(r, fx); }
    return NULL;
  }
  if (seq > r->max_seen) r->max_seen = seq;
  return s;
}

static void on_pre_prepare(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  const syn_msg_t *m = ev->msg;
  if (ev->from != primary_of(r, m->u[V_VIEW])) { reject(fx, ev->from, SYN_PBFT_R_NOT_PRIMARY); return; }
  slot_t *s = vote_slot(r, ev, fx);
  if (s == NULL) return;
  const uint8_t *d = dg(m, V_DIGEST);
  if (s->have_pp && s->view == m->u[V_VIEW]) {
    if (memcmp(s->digest, d, DIG) != 0) accuse(fx, ev, SYN_PBFT_R_EQUIVOCATION, s->seq, &s->accused, s->pp, s->pp_len);
    return;
  }
  if (s->nv_fixed && memcmp(s->nv_digest, d, DIG) != 0) { reject(fx, ev->from, SYN_PBFT_R_BAD_NEW_VIEW); return; }
  if (s->committed && memcmp(s->digest, d, DIG) != 0) {
    /* A certificate decided this slot: another digest is a lie (or stale). */
    reject(fx, ev->from, SYN_PBFT_R_EQUIVOCATION);
    return;
  }
  s->have_pp = true;
  s->pp_at_ns = ev->now_ns;
  s->view = m->u[V_VIEW];
  memcpy(s->digest, d, DIG);
  memcpy(s->pp, ev->frame, ev->frame_len);
  s->pp_len = (uint16_t)ev->frame_len;
  s->sent_prepare = s->prepared = s->sent_commit = false;
  if (s->have_batch && memcmp(s->bdigest, d, DIG) != 0) s->have_batch = false;
  null_body(r->null_d, s, d);
  arm_tick(r, fx);
  progress(r, fx, s);
}

static void on_batch(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  const syn_msg_t *m = ev->msg;
  if (!digest_ok(m, V_DIGEST)) { reject(fx, ev->from, SYN_PBFT_R_BAD_DIGEST); return; }
  uint64_t seq = m->u[V_SEQ];
  if (seq <= r->h) return;
  slot_t *s = slot_at(r, seq);
  if (s == NULL) { reject(fx, ev->from, SYN_PBFT_R_OUT_OF_WINDOW); return; }
  const uint8_t *d = dg(m, V_DIGEST);
  if (s->have_batch && memcmp(s->bdigest, d, DIG) == 0) return;   /* have it */
  /* Only the body this slot waits for: a committed slot's is fixed by its
   * certificate, an accepted pre-prepare's or a new view's by its digest. */
  if (s->committed || (s->have_pp && memcmp(s->digest, d, DIG) != 0) ||
      (s->nv_fixed && memcmp(s->nv_digest, d, DIG) != 0))
    return;
  uint8_t hd[DIG];
  syn_digest(m->b[V_BODY].ptr, m->b[V_BODY].len, hd);
  if (memcmp(hd, d, DIG) != 0 || !batch_valid(r, m->b[V_BODY].ptr, m->b[V_BODY].len)) {
    reject(fx, ev->from, SYN_PBFT_R_BAD_BATCH);
    return;
  }
  memcpy(s->batch, m->b[V_BODY].ptr, m->b[V_BODY].len);
  s->blen = m->b[V_BODY].len;
  memcpy(s->bdigest, d, DIG);
  s->have_batch = true;
  progress(r, fx, s);
  if (s->committed) execute_ready(r, fx);
}

static void on_vote(replica_t *r, const syn_event_t *ev, syn_effects_t *fx, bool commit) {
  const syn_msg_t *m = ev->msg;
  if (!commit && ev->from == primary_of(r, m->u[V_VIEW])) { reject(fx, ev->from, SYN_PBFT_R_NOT_PRIMARY); return; }
  slot_t *s = vote_slot(r, ev, fx);
  if (s == NULL) return;
  vote_t *v = commit ? &s->comm[ev->from] : &s->prep[ev->from];
  const uint8_t *d = dg(m, V_DIGEST);
  if (v->len && v->view == m->u[V_VIEW]) {
    if (memcmp(v->d, d, DIG) != 0) accuse(fx, ev, SYN_PBFT_R_CONFLICT, s->seq, &v->accused, v->frame, v->len);
    return;
  }
  v->view = m->u[V_VIEW]; v->seq = s->seq; v->accused = false;
  memcpy(v->d, d, DIG);
  memcpy(v->frame, ev->frame, ev->frame_len);
  v->len = (uint16_t)ev->frame_len;
  arm_tick(r, fx);
  progress(r, fx, s);
}

/* The primary orders waiting requests into batches while the window allows. */
static void maybe_propose(replica_t *r, syn_effects_t *fx, bool force) {
  if (r->in_vc || !is_primary(r) || r->broken) return;
  while (r->next_seq < r->h + r->L && r->next_seq < r->dur + r->L) {
    uint32_t waiting = 0;
    for (uint32_t c = 0; c < r->clients; c++) waiting += r->ctab[c].pend_ts && !r->ctab[c].assigned;
    if (waiting == 0) return;
    if (waiting < r->batch_size && !force && r->batch_delay_ns > 0) {
      if (!r->batch_on) { r->batch_on = true; (void)syn_fx_timer_set(fx, SYN_PBFT_TIMER_BATCH, r->batch_delay_ns); }
      return;
    }
    if (!syn_fx_room(fx, 8, 2 * (size_t)SYN_PBFT_MAX_BATCH_BYTES + 1024)) return;   /* the tick retries */
    uint8_t *batch = r->scratch.data;
    uint32_t len = 0, k = 0;
    for (uint32_t i = 0; i < r->clients && k < r->batch_size; i++) {
      uint32_t c = (r->rr + i) % r->clients;
      centry_t *e = &r->ctab[c];
      if (!e->pend_ts || e->assigned || len + 4 + e->pend_len > SYN_PBFT_MAX_BATCH_BYTES) continue;
      len += put_item(batch + len, e->pend, e->pend_len);
      e->assigned = true;
      k++;
    }
    r->rr = (r->rr + 1) % (r->clients ? r->clients : 1);
    if (r->batch_on) { r->batch_on = false; (void)syn_fx_timer_cancel(fx, SYN_PBFT_TIMER_BATCH); }
    uint64_t seq = ++r->next_seq;
    uint8_t d[DIG];
    syn_digest(batch, len, d);
    slot_t *s = slot_at(r, seq);
    SYN_ASSERT(s != NULL);   /* h < seq <= h + L */
    persist_view(r, fx);     /* next_seq: a restarted primary never assigns seq again */
    if (!sign(r, fx, SYN_PBFT_REC_PRE_PREPARE, &s->my_pp_view, s->my_pp_d, r->view, seq, d, batch, len)) {
      (void)syn_fx_trace(fx, "seq %llu was pre-prepared in view %llu already", (unsigned long long)seq,
                         (unsigned long long)r->view);
      continue;
    }
    send_vote(fx, K_PRE_PREPARE, true, 0, r->view, seq, d);
    syn_msg_t m = { .def = &pbft_msgs[K_BATCH] };
    m.u[V_VIEW] = r->view; m.u[V_SEQ] = seq;
    m.b[V_DIGEST] = (syn_bytes_t){ d, DIG };
    m.b[V_BODY] = (syn_bytes_t){ batch, len };
    (void)syn_fx_broadcast(fx, &m);
    arm_tick(r, fx);
  }
}

static void on_request(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  const syn_msg_t *m = ev->msg;
  if (ev->from < r->n || ev->from >= r->n + r->clients) { reject(fx, ev->from, SYN_PBFT_R_NOT_CLIENT); return; }
  if (m->u[RQ_CLIENT] != ev->from || m->u[RQ_TS] == 0 || ev->frame_len > REQ_FRAME_CAP) {
    reject(fx, ev->from, SYN_PBFT_R_BAD_REQUEST);
    return;
  }
  uint32_t c = ev->from - r->n;
  centry_t *e = &r->ctab[c];
  uint64_t ts = m->u[RQ_TS];
  if (ts < e->last_ts) return;
  if (ts == e->last_ts) { send_reply(r, fx, c); return; }   /* a retry of what we executed */
  if (ts > e->pend_ts) {
    e->pend_ts = ts;
    e->assigned = false;
    memcpy(e->pend, ev->frame, ev->frame_len);
    e->pend_len = (uint32_t)ev->frame_len;
  }
  arm_tick(r, fx);
  if (r->in_vc) return;
  if (is_primary(r)) maybe_propose(r, fx, false);
  else if (!r->view_timer) arm_view_timer(r, fx);
}

/* ---- view change ---- */

/* Verifies a P-set entry: a pre-prepare of view pv < view and 2f prepares
 * from distinct backups of pv, all for one (pv, seq, digest). */
static bool pentry_valid(const replica_t *r, iter_t *it, uint64_t view, uint64_t *pv, uint64_t *seq,
                         uint8_t d[DIG]) {
  const uint8_t *item; uint32_t ilen;
  if (iter_next(it, &item, &ilen) != 1) return false;
  syn_frame_t f; syn_msg_t m;
  if (!inner_frame(r, item, ilen, SYN_PBFT_PRE_PREPARE, &f, &m) || !digest_ok(&m, V_DIGEST)) return false;
  *pv = m.u[V_VIEW]; *seq = m.u[V_SEQ];
  memcpy(d, dg(&m, V_DIGEST), DIG);
  if (*pv >= view || f.sender != primary_of(r, *pv)) return false;
  uint64_t seen[(SYN_PBFT_MAX_REPLICAS + 63) / 64] = { 0 };
  for (uint32_t k = 0; k < 2 * r->f; k++) {
    if (iter_next(it, &item, &ilen) != 1) return false;
    if (!inner_frame(r, item, ilen, SYN_PBFT_PREPARE, &f, &m) || !digest_ok(&m, V_DIGEST)) return false;
    if (m.u[V_VIEW] != *pv || m.u[V_SEQ] != *seq || memcmp(dg(&m, V_DIGEST), d, DIG) != 0) return false;
    if (f.sender == primary_of(r, *pv) || (seen[f.sender / 64] >> (f.sender % 64) & 1)) return false;
    seen[f.sender / 64] |= 1ull << (f.sender % 64);
  }
  return true;
}

/* Each P entry is framed as one item holding (pp, 2f prepares) items. */
static bool vc_valid(const replica_t *r, const syn_msg_t *m) {
  uint64_t stable = m->u[VC_STABLE], view = m->u[VC_VIEW];
  if (view == 0 || stable % r->K != 0 || stable > SYN_PBFT_MAX_SEQ) return false;
  uint8_t d[DIG];
  if (stable > 0 && !proof_valid(r, m->b[VC_PROOF].ptr, m->b[VC_PROOF].len, stable, d)) return false;
  if (stable == 0 && m->b[VC_PROOF].len != 0) return false;
  iter_t it = { m->b[VC_PREPARED].ptr, m->b[VC_PREPARED].len };
  const uint8_t *item; uint32_t ilen;
  uint64_t last = stable;
  int k;
  while ((k = iter_next(&it, &item, &ilen)) == 1) {
    iter_t e = { item, ilen };
    uint64_t pv, seq;
    if (!pentry_valid(r, &e, view, &pv, &seq, d) || e.left != 0) return false;
    if (seq <= last || seq > stable + r->L) return false;
    last = seq;
  }
  return k == 0;
}

/* Broadcasts this replica's view-change for its view: the one it signed
 * already if any (the same payload, so the same frame), else a new one,
 * recorded before it goes out. */
static void send_view_change(replica_t *r, syn_effects_t *fx) {
  if (!syn_fx_room(fx, 3, 2 * (size_t)r->vc_cap + 1024)) return;   /* the tick resends */
  const syn_msg_def_t *def = &pbft_msgs[K_VIEW_CHANGE];
  if (r->my_vc_view != r->view) {
    uint8_t *p = r->scratch.data;
    uint32_t len = 0;
    for (uint64_t seq = r->h + 1; seq <= r->h + r->L; seq++) {
      const slot_t *s = slot_peek(r, seq);
      if (s && s->cert_len) len += put_item(p + len, s->cert, s->cert_len);
    }
    syn_msg_t m = { .def = def };
    m.u[VC_VIEW] = r->view; m.u[VC_STABLE] = r->h;
    m.b[VC_PROOF] = (syn_bytes_t){ r->h_proof, r->h_proof_len };
    m.b[VC_PREPARED] = (syn_bytes_t){ p, len };
    size_t plen;
    int rc = syn_wire_encode_payload(&m, r->my_vc, r->vc_cap, &plen);
    SYN_ASSERT(rc == 0);   /* vc_cap bounds the largest view-change */
    r->my_vc_view = r->view;
    r->my_vc_len = (uint32_t)plen;
    persist(r, fx, SYN_PBFT_REC_VIEW_CHANGE, r->view, r->my_vc, plen);
    (void)syn_fx_forget(fx, SYN_PBFT_REC_VIEW_CHANGE, r->view);
  }
  syn_msg_t m;
  int rc = syn_wire_decode_payload(def, r->my_vc, r->my_vc_len, &m);
  SYN_ASSERT(rc == 0);   /* encoded above, or checked by recovery */
  (void)syn_fx_broadcast(fx, &m);
}

static void start_view_change(replica_t *r, syn_effects_t *fx, uint64_t view) {
  if (view <= r->view) return;
  r->view = view;
  r->in_vc = true;
  r->view_changes++;
  if (r->nv_view != view) r->nv_pending = false;   /* a new-view for this view may already wait */
  for (uint32_t c = 0; c < r->clients; c++) r->ctab[c].assigned = false;
  if (r->batch_on) { r->batch_on = false; (void)syn_fx_timer_cancel(fx, SYN_PBFT_TIMER_BATCH); }
  (void)syn_fx_trace(fx, "view change to %llu", (unsigned long long)view);
  /* The timer for the new view starts only once 2f+1 replicas want it
   * (handle_view_change): a replica alone ahead waits for the others
   * instead of running further ahead of them. */
  stop_view_timer(r, fx);
  persist_view(r, fx);
  send_view_change(r, fx);
  r->vc_attempts++;
  arm_tick(r, fx);
}


static void oset_compute(const replica_t *r, const vcrec_t *const *vcs, uint32_t k, oset_t *o) {
  memset(o, 0, sizeof *o);
  syn_frame_t f; syn_msg_t m;
  for (uint32_t i = 0; i < k; i++) {
    int rc = syn_wire_frame_decode(vcs[i]->frame, vcs[i]->len, &f, &m);
    SYN_ASSERT(rc == 0);   /* validated when stored */
    if (i == 0 || m.u[VC_STABLE] > o->min_s) {
      o->min_s = m.u[VC_STABLE];
      o->proof = m.b[VC_PROOF].ptr; o->proof_len = m.b[VC_PROOF].len;
    }
  }
  if (o->min_s > 0) {
    bool ok = proof_valid(r, o->proof, o->proof_len, o->min_s, o->min_d);
    SYN_ASSERT(ok);
  }
  o->max_s = o->min_s;
  for (uint32_t i = 0; i < k; i++) {
    int rc = syn_wire_frame_decode(vcs[i]->frame, vcs[i]->len, &f, &m);
    SYN_ASSERT(rc == 0);
    iter_t it = { m.b[VC_PREPARED].ptr, m.b[VC_PREPARED].len };
    const uint8_t *item; uint32_t ilen;
    while (iter_next(&it, &item, &ilen) == 1) {
      iter_t e = { item, ilen };
      const uint8_t *pp; uint32_t pplen;
      if (iter_next(&e, &pp, &pplen) != 1) continue;
      syn_frame_t pf; syn_msg_t pm;
      if (syn_wire_frame_decode(pp, pplen, &pf, &pm) != 0) continue;
      uint64_t seq = pm.u[V_SEQ];
      if (seq <= o->min_s || seq > o->min_s + r->L) continue;
      uint32_t idx = (uint32_t)(seq - o->min_s - 1);
      if (!o->has[idx] || pm.u[V_VIEW] > o->pv[idx]) {
        o->has[idx] = true; o->pv[idx] = pm.u[V_VIEW];
        memcpy(o->d[idx], dg(&pm, V_DIGEST), DIG);
      }
      if (seq > o->max_s) o->max_s = seq;
    }
  }
  for (uint64_t seq = o->min_s + 1; seq <= o->max_s; seq++)
    if (!o->has[seq - o->min_s - 1]) memcpy(o->d[seq - o->min_s - 1], r->null_d, DIG);
}

/* OSET: the O set of the view entered, (min_s, max_s] and a digest each. */
static void persist_oset(replica_t *r, syn_effects_t *fx) {
  const oset_t *o = r->oset;
  syn_put_u64(r->rbuf, o->min_s);
  syn_put_u64(r->rbuf + 8, o->max_s);
  uint64_t k = o->max_s - o->min_s;
  SYN_ASSERT(k <= r->L);
  memcpy(r->rbuf + 16, o->d, k * DIG);
  persist(r, fx, SYN_PBFT_REC_OSET, r->o_view, r->rbuf, 16 + k * DIG);
  (void)syn_fx_forget(fx, SYN_PBFT_REC_OSET, r->o_view);
}

/* The new primary pre-prepares the O set of its view: each slot once (the
 * digest recorded first), those within the window of its durable checkpoint
 * now, the others when persist_run resumes; the tick calls again for what
 * did not fit the batch. */
static void propose_oset(replica_t *r, syn_effects_t *fx) {
  if (r->in_vc || !is_primary(r) || r->o_view != r->view || r->o_view == 0 || r->broken) return;
  const oset_t *o = r->oset;
  uint64_t first = (o->min_s > r->h ? o->min_s : r->h) + 1;
  uint64_t last = o->max_s < r->dur + r->L ? o->max_s : r->dur + r->L;
  for (uint64_t seq = first; seq <= last; seq++) {
    slot_t *s = slot_at(r, seq);
    if (s == NULL || s->my_pp_view == r->view + 1) continue;
    if (!syn_fx_room(fx, 4, 2 * (size_t)SYN_PBFT_MAX_BATCH_BYTES + 1024)) break;
    const uint8_t *d = o->d[seq - o->min_s - 1];
    bool body = s->have_batch && s->blen > 0 && memcmp(s->bdigest, d, DIG) == 0;
    if (!sign(r, fx, SYN_PBFT_REC_PRE_PREPARE, &s->my_pp_view, s->my_pp_d, r->view, seq, d,
              body ? s->batch : NULL, body ? s->blen : 0))
      continue;
    send_vote(fx, K_PRE_PREPARE, true, 0, r->view, seq, d);
    if (body) send_batch(fx, true, 0, s, r->view);
  }
}

static void enter_view(replica_t *r, syn_effects_t *fx, uint64_t view, const oset_t *o) {
  if (o != r->oset) memcpy(r->oset, o, sizeof *o);
  r->o_view = view;
  r->view = view;
  r->in_vc = false;
  r->nv_pending = false;
  stop_view_timer(r, fx);
  if (o->min_s > r->h) {
    snap_t *s = snap_find(r, o->min_s);
    if (r->last_exec >= o->min_s && s && memcmp(s->d, o->min_d, DIG) == 0)
      advance(r, fx, o->min_s, o->min_d, o->proof, o->proof_len);
    else
      start_xfer(r, fx, o->min_s, o->min_d, o->proof, o->proof_len);
  }
  for (uint64_t seq = r->h + 1; seq <= r->h + r->L; seq++) {
    slot_t *s = slot_peek(r, seq);
    bool in_o = seq > o->min_s && seq <= o->max_s;
    if (!in_o) {
      if (s && !s->committed) slot_clear(r, s);
      else if (s) { s->have_pp = false; s->nv_fixed = false; }
      continue;
    }
    if (s == NULL) s = slot_at(r, seq);
    const uint8_t *d = o->d[seq - o->min_s - 1];
    if (s->committed) {
      /* Decided by a certificate: the O set can only name the same digest
       * (quorum intersection); the slot's digest and body stay as they are. */
      s->have_pp = false;
      s->nv_fixed = true;
      memcpy(s->nv_digest, s->digest, DIG);
      s->sent_prepare = s->prepared = s->sent_commit = false;
      continue;
    }
    s->have_pp = false;
    s->nv_fixed = true;
    memcpy(s->nv_digest, d, DIG);
    s->sent_prepare = s->prepared = s->sent_commit = false;
    if (s->have_batch && memcmp(s->bdigest, d, DIG) != 0) s->have_batch = false;
    null_body(r->null_d, s, d);
  }
  r->next_seq = o->max_s > r->h ? o->max_s : r->h;
  if (r->max_seen < r->next_seq) r->max_seen = r->next_seq;
  for (uint32_t c = 0; c < r->clients; c++) r->ctab[c].assigned = false;
  r->oset->proof = NULL;   /* it pointed into a view-change frame that may be overwritten */
  r->oset->proof_len = 0;
  /* The view and its O set, before any vote of the view goes out. */
  persist_view(r, fx);
  persist_oset(r, fx);
  (void)syn_fx_trace(fx, "entered view %llu (O set %llu..%llu)", (unsigned long long)view,
                     (unsigned long long)o->min_s + 1, (unsigned long long)o->max_s);
  if (is_primary(r)) {
    propose_oset(r, fx);
    maybe_propose(r, fx, false);
  } else if (has_pending(r)) {
    arm_view_timer(r, fx);
  }
  arm_tick(r, fx);
}

/* Gathers the view-changes a new-view names: 1 all here, 0 some missing
 * (asked for when ask), -1 malformed. */
static int nv_collect(replica_t *r, syn_effects_t *fx, uint64_t view, const uint8_t *refs, uint32_t len,
                       const vcrec_t **out, uint32_t *k, uint32_t primary, bool ask) {
  if (len % (4 + DIG) != 0) return -1;
  uint32_t nrefs = len / (4 + DIG);
  uint64_t seen[(SYN_PBFT_MAX_REPLICAS + 63) / 64] = { 0 };
  bool complete = true;
  *k = 0;
  for (uint32_t i = 0; i < nrefs; i++) {
    uint32_t q = syn_get_u32(refs + i * (4 + DIG));
    const uint8_t *d = refs + i * (4 + DIG) + 4;
    if (q >= r->n || (seen[q / 64] >> (q % 64) & 1)) return -1;
    seen[q / 64] |= 1ull << (q % 64);
    const vcrec_t *v = &r->vcs[q], *w = &r->nvc[q];
    if (v->view == view && memcmp(v->d, d, DIG) == 0) { out[(*k)++] = v; continue; }
    if (w->view == view && memcmp(w->d, d, DIG) == 0) { out[(*k)++] = w; continue; }
    complete = false;
    if (ask) {
      syn_msg_t m = { .def = &pbft_msgs[K_VC_FETCH] };
      m.u[VF_VIEW] = view; m.u[VF_SENDER] = q;
      (void)syn_fx_send(fx, primary, &m);
    }
  }
  if (nrefs < r->quorum) return -1;
  return complete ? 1 : 0;
}

static void try_new_view(replica_t *r, syn_effects_t *fx, uint64_t view, const uint8_t *refs, uint32_t len,
                         uint32_t from) {
  const vcrec_t *vcs[SYN_PBFT_MAX_REPLICAS];
  uint32_t k;
  if (len % (4 + DIG) != 0 || len / (4 + DIG) < r->quorum || len / (4 + DIG) > r->n) {
    reject(fx, from, SYN_PBFT_R_BAD_NEW_VIEW);
    return;
  }
  int got = nv_collect(r, fx, view, refs, len, vcs, &k, from, true);
  if (got < 0) { reject(fx, from, SYN_PBFT_R_BAD_NEW_VIEW); return; }
  if (got == 0) {   /* waiting for relays of the view-changes we lack */
    if (r->nv_pending && r->nv_view > view) return;
    r->nv_pending = true; r->nv_view = view;
    memcpy(r->nv_prefs, refs, len); r->nv_plen = len;
    arm_tick(r, fx);
    return;
  }
  oset_compute(r, vcs, k, r->oset);
  enter_view(r, fx, view, r->oset);
}

static void send_new_view(replica_t *r, syn_effects_t *fx) {
  syn_msg_t m = { .def = &pbft_msgs[K_NEW_VIEW] };
  m.u[NV_VIEW] = r->nv_sent;
  m.b[NV_REFS] = (syn_bytes_t){ r->nv_refs, r->nv_len };
  (void)syn_fx_broadcast(fx, &m);
}

static void maybe_new_view(replica_t *r, syn_effects_t *fx) {
  if (!r->in_vc || !is_primary(r) || r->nv_sent == r->view) return;
  uint32_t k = 0, len = 0;
  for (uint32_t q = 0; q < r->n && k < r->quorum; q++)
    if (r->vcs[q].view == r->view) {
      syn_put_u32(r->nv_refs + len, q);
      memcpy(r->nv_refs + len + 4, r->vcs[q].d, DIG);
      len += 4 + DIG; k++;
    }
  if (k < r->quorum) return;
  r->nv_sent = r->view;
  r->nv_len = len;
  /* Keep the named copies: a later view-change from the same replica must
   * not stop us relaying the one our new-view names. */
  for (uint32_t i = 0; i < len; i += 4 + DIG) {
    uint32_t q = syn_get_u32(r->nv_refs + i);
    vcrec_t *w = &r->nvc[q];
    w->view = r->vcs[q].view; w->len = r->vcs[q].len;
    memcpy(w->d, r->vcs[q].d, DIG);
    memcpy(w->frame, r->vcs[q].frame, r->vcs[q].len);
  }
  /* One new-view per view, restarted or not. */
  persist(r, fx, SYN_PBFT_REC_NEW_VIEW, r->nv_sent, r->nv_refs, r->nv_len);
  (void)syn_fx_forget(fx, SYN_PBFT_REC_NEW_VIEW, r->nv_sent);
  send_new_view(r, fx);
}

static void try_new_view(replica_t *r, syn_effects_t *fx, uint64_t view, const uint8_t *refs, uint32_t len,
                         uint32_t from);

/* True when the pending new-view names (from, d). */
static bool nv_names(const replica_t *r, uint32_t from, uint64_t view, const uint8_t d[DIG]) {
  if (!r->nv_pending || r->nv_view != view) return false;
  for (uint32_t i = 0; i + 4 + DIG <= r->nv_plen; i += 4 + DIG)
    if (syn_get_u32(r->nv_prefs + i) == from && memcmp(r->nv_prefs + i + 4, d, DIG) == 0) return true;
  return false;
}

static void handle_view_change(replica_t *r, syn_effects_t *fx, uint32_t from, const syn_msg_t *m,
                               const uint8_t *frame, size_t frame_len) {
  uint64_t view = m->u[VC_VIEW];
  vcrec_t *v = &r->vcs[from];
  if (r->nv_pending && view == r->nv_view && frame_len <= r->vc_cap && !(v->view == view)) {
    /* The copy a pending new-view names, whatever else this sender told us
     * (a faulty one may give each replica a different view-change). */
    uint8_t d[DIG];
    syn_digest(frame, frame_len, d);
    if (nv_names(r, from, view, d) && vc_valid(r, m)) {
      vcrec_t *w = &r->nvc[from];
      w->view = view; w->len = (uint32_t)frame_len;
      memcpy(w->frame, frame, frame_len);
      memcpy(w->d, d, DIG);
      try_new_view(r, fx, r->nv_view, r->nv_prefs, r->nv_plen, primary_of(r, r->nv_view));
      return;
    }
  }
  if (view < r->view || (view == r->view && !r->in_vc)) {
    /* From a replica still behind: the primary of our view repeats its new-view. */
    if (view == r->view && is_primary(r) && r->nv_sent == r->view && from != r->id) send_new_view(r, fx);
    return;
  }
  if (v->view > view) return;
  if (v->view == view) {
    /* Another copy of one we hold: taken only when a pending new-view names it. */
    uint8_t d[DIG];
    syn_digest(frame, frame_len, d);
    if (memcmp(d, v->d, DIG) == 0 || !nv_names(r, from, view, d)) return;
  }
  if (frame_len > r->vc_cap || !vc_valid(r, m)) {
    reject(fx, from, SYN_PBFT_R_BAD_VIEW_CHANGE);
    if (view > r->bad_vc[from]) {   /* one piece of evidence per sender and view */
      r->bad_vc[from] = view;
      (void)syn_fx_evidence(fx, from, SYN_PBFT_R_BAD_VIEW_CHANGE, view, frame, frame_len, NULL, 0);
    }
    return;
  }
  v->view = view;
  v->len = (uint32_t)frame_len;
  memcpy(v->frame, frame, frame_len);
  syn_digest(frame, frame_len, v->d);
  /* f+1 replicas ahead of us: join the smallest view among them. */
  uint32_t ahead = 0;
  uint64_t smallest = UINT64_MAX;
  for (uint32_t q = 0; q < r->n; q++)
    if (r->vcs[q].view > r->view) { ahead++; if (r->vcs[q].view < smallest) smallest = r->vcs[q].view; }
  if (ahead >= r->f + 1) start_view_change(r, fx, smallest);
  if (r->in_vc && !r->view_timer) {
    uint32_t want = 0;
    for (uint32_t q = 0; q < r->n; q++) want += r->vcs[q].view == r->view;
    if (want >= r->quorum) arm_view_timer(r, fx);
  }
  maybe_new_view(r, fx);
  if (r->nv_pending && r->nv_view == r->view) try_new_view(r, fx, r->nv_view, r->nv_prefs, r->nv_plen, primary_of(r, r->view));
}

static void on_new_view(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  const syn_msg_t *m = ev->msg;
  uint64_t view = m->u[NV_VIEW];
  if (ev->from != primary_of(r, view)) { reject(fx, ev->from, SYN_PBFT_R_NOT_PRIMARY); return; }
  if (view < r->view || (view == r->view && !r->in_vc)) return;   /* already there */
  try_new_view(r, fx, view, m->b[NV_REFS].ptr, m->b[NV_REFS].len, ev->from);
}

static void on_relay(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  syn_frame_t f; syn_msg_t m;
  const syn_bytes_t *b = &ev->msg->b[0];
  if (!inner_frame(r, b->ptr, b->len, SYN_PBFT_VIEW_CHANGE, &f, &m)) {
    reject(fx, ev->from, SYN_PBFT_R_BAD_VIEW_CHANGE);
    return;
  }
  handle_view_change(r, fx, f.sender, &m, b->ptr, b->len);
}

static void on_vc_fetch(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  uint64_t q = ev->msg->u[VF_SENDER];
  if (q >= r->n) { reject(fx, ev->from, SYN_PBFT_R_BAD_VIEW_CHANGE); return; }
  const vcrec_t *v = &r->vcs[q];
  if (v->view != ev->msg->u[VF_VIEW]) v = &r->nvc[q];
  if (v->view != ev->msg->u[VF_VIEW] || !syn_fx_room(fx, 1, v->len + 256)) return;
  syn_msg_t m = { .def = &pbft_msgs[K_RELAY] };
  m.b[0] = (syn_bytes_t){ v->frame, v->len };
  (void)syn_fx_send(fx, ev->from, &m);
}

/* ---- state transfer ---- */

static void send_entries(replica_t *r, syn_effects_t *fx, uint32_t to, uint64_t have) {
  uint32_t sent = 0;
  for (uint64_t seq = have + 1; seq <= r->last_exec && sent < SYN_PBFT_MAX_FETCH_ENTRIES; seq++) {
    const slot_t *s = slot_peek(r, seq);
    if (s == NULL || !s->committed || !s->have_batch) return;
    if (s->ccert_len == 0 || !syn_fx_room(fx, 1, s->blen + s->ccert_len + 256)) return;
    syn_msg_t m = { .def = &pbft_msgs[K_ENTRY] };
    m.u[V_VIEW] = s->c_view; m.u[V_SEQ] = seq;
    m.b[V_DIGEST] = (syn_bytes_t){ s->bdigest, DIG };
    m.b[V_BODY] = (syn_bytes_t){ s->batch, s->blen };
    m.b[V_CERT] = (syn_bytes_t){ s->ccert, s->ccert_len };
    (void)syn_fx_send(fx, to, &m);
    sent++;
  }
}

static void on_fetch(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  if (ev->from >= r->n) { reject(fx, ev->from, SYN_PBFT_R_NOT_CLIENT); return; }
  const syn_msg_t *m = ev->msg;
  uint64_t have = m->u[FE_HAVE], want = m->u[FE_SEQ];
  /* The snapshot asked for if we hold it (stable here or not: the asker
   * has its proof), else our stable one with its proof. */
  snap_t *held = want > have ? snap_find(r, want) : NULL;
  if (held || have < r->h) {
    snap_t *s = held ? held : snap_find(r, r->h);
    if (s == NULL || (!held && r->h_proof_len == 0)) return;
    uint64_t off = held ? m->u[FE_OFFSET] : want == r->h ? m->u[FE_OFFSET] : 0;
    if (off > s->snap.len) off = 0;
    uint64_t n = s->snap.len - off;
    if (n > SYN_PBFT_CHUNK_BYTES) n = SYN_PBFT_CHUNK_BYTES;
    if (!syn_fx_room(fx, 1, n + PROOF_CAP + 256)) return;
    syn_msg_t st = { .def = &pbft_msgs[K_STATE] };
    st.u[ST_SEQ] = s->seq; st.u[ST_OFFSET] = off; st.u[ST_TOTAL] = s->snap.len;
    if (s->seq == r->h) st.b[ST_PROOF] = (syn_bytes_t){ r->h_proof, r->h_proof_len };
    st.b[ST_CHUNK] = (syn_bytes_t){ s->snap.data + off, (uint32_t)n };
    (void)syn_fx_send(fx, ev->from, &st);
    return;
  }
  send_entries(r, fx, ev->from, have);
}

/* Installs a verified snapshot: reply cache, op count, then the application
 * (restored into a fresh instance first, so a bad one changes nothing). */
static int restore(replica_t *r, const uint8_t *p, size_t len) {
  if (len < 16 || memcmp(p, SNAP_MAGIC, 4) != 0) return -SYN_EPARSE;
  size_t off = 4;
  uint64_t ops = syn_get_u64(p + off); off += 8;
  uint32_t nc = syn_get_u32(p + off); off += 4;
  if (nc != r->clients) return -SYN_EPARSE;
  size_t start = off;
  for (uint32_t c = 0; c < nc; c++) {
    if (len - off < 20) return -SYN_ETRUNC;
    uint32_t rl = syn_get_u32(p + off + 16);
    if (rl > SYN_PBFT_MAX_RESULT_BYTES || len - off - 20 < rl) return -SYN_ETRUNC;
    off += 20 + rl;
  }
  if (len - off < 8) return -SYN_ETRUNC;
  uint64_t alen = syn_get_u64(p + off); off += 8;
  if (alen != len - off) return -SYN_ETRAILING;
  void *fresh = NULL;
  int rc = r->app->new(&fresh);
  if (rc) return rc;
  rc = r->app->restore(fresh, p + off, alen);
  if (rc) { r->app->free(fresh); return rc; }
  r->app->free(r->app_state);
  r->app_state = fresh;
  r->op_count = ops;
  off = start;
  for (uint32_t c = 0; c < nc; c++) {
    centry_t *e = &r->ctab[c];
    e->last_ts = syn_get_u64(p + off); e->last_seq = syn_get_u64(p + off + 8);
    e->rlen = syn_get_u32(p + off + 16);
    memcpy(e->result, p + off + 20, e->rlen);
    off += 20 + e->rlen;
    if (e->pend_ts && e->pend_ts <= e->last_ts) { e->pend_ts = 0; e->assigned = false; }
  }
  return 0;
}

static void on_state(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  const syn_msg_t *m = ev->msg;
  uint64_t seq = m->u[ST_SEQ], off = m->u[ST_OFFSET], total = m->u[ST_TOTAL];
  if (ev->from >= r->n) { reject(fx, ev->from, SYN_PBFT_R_NOT_CLIENT); return; }
  if (seq <= r->last_exec || seq <= r->h) return;   /* we have that far already */
  if (total == 0 || total > SYN_PBFT_MAX_STATE_BYTES || off > total || m->b[ST_CHUNK].len > total - off ||
      seq > SYN_PBFT_MAX_SEQ) {
    reject(fx, ev->from, SYN_PBFT_R_BAD_STATE);
    return;
  }
  if (!(r->xfer && seq == r->x_seq) && (!r->xfer || seq > r->x_seq)) {
    uint8_t d[DIG];
    if (!proof_valid(r, m->b[ST_PROOF].ptr, m->b[ST_PROOF].len, seq, d)) { reject(fx, ev->from, SYN_PBFT_R_BAD_STATE); return; }
    start_xfer(r, fx, seq, d, m->b[ST_PROOF].ptr, m->b[ST_PROOF].len);
  }
  if (seq != r->x_seq || off != r->x_buf.len) return;   /* not the chunk we are at */
  /* One responder at a time: its first chunk fixes the total; the tick
   * starts over with another replica when it stops helping. */
  if (off == 0) {
    if (ev->from != r->fetch_peer) return;   /* only the replica we asked */
    r->x_total = total; r->x_peer = ev->from;
  }
  if (ev->from != r->x_peer) return;
  uint64_t want = total - off < SYN_PBFT_CHUNK_BYTES ? total - off : SYN_PBFT_CHUNK_BYTES;
  if (total != r->x_total || m->b[ST_CHUNK].len != want) {
    /* A responder that contradicts itself or stalls: start over elsewhere. */
    reject(fx, ev->from, SYN_PBFT_R_BAD_STATE);
    syn_buf_reset(&r->x_buf);
    r->x_total = 0;
    send_fetch(r, fx, seq, 0);
    return;
  }
  if (syn_buf_append(&r->x_buf, m->b[ST_CHUNK].ptr, m->b[ST_CHUNK].len) != 0) {
    reject(fx, ev->from, SYN_PBFT_R_BAD_STATE);
    syn_buf_reset(&r->x_buf);
    return;
  }
  r->x_progress++;
  if (r->x_buf.len < total) {
    syn_msg_t f = { .def = &pbft_msgs[K_FETCH] };
    f.u[FE_HAVE] = r->last_exec; f.u[FE_SEQ] = seq; f.u[FE_OFFSET] = r->x_buf.len;
    (void)syn_fx_send(fx, ev->from, &f);
    return;
  }
  uint8_t d[DIG];
  syn_digest(r->x_buf.data, r->x_buf.len, d);
  int rc = memcmp(d, r->x_d, DIG) == 0 ? restore(r, r->x_buf.data, r->x_buf.len) : -SYN_EBADSIG;
  if (rc != 0) {
    reject(fx, ev->from, SYN_PBFT_R_BAD_STATE);
    (void)syn_fx_trace(fx, "state from %u refused: %s", ev->from, syn_strerror(rc));
    syn_buf_reset(&r->x_buf);
    r->x_total = 0;
    return;
  }
  r->xfer = false;
  r->last_exec = seq;
  if (r->next_seq < seq) r->next_seq = seq;
  if (r->max_seen < seq) r->max_seen = seq;
  advance(r, fx, seq, r->x_d, r->x_proof, r->x_proof_len);
  snap_t *s = snap_slot(r);
  s->seq = seq;
  memcpy(s->d, r->x_d, DIG);
  s->snap = r->x_buf;                           /* the transferred snapshot serves others now */
  syn_buf_init(&r->x_buf, SYN_PBFT_MAX_STATE_BYTES);
  (void)syn_fx_trace(fx, "state transfer done at checkpoint %llu", (unsigned long long)seq);
  send_fetch(r, fx, 0, 0);                       /* and the committed batches after it */
  execute_ready(r, fx);
}

/* A committed batch with its commit certificate. */
static void on_entry(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  const syn_msg_t *m = ev->msg;
  if (ev->from >= r->n) { reject(fx, ev->from, SYN_PBFT_R_NOT_CLIENT); return; }
  uint64_t seq = m->u[V_SEQ], view = m->u[V_VIEW];
  if (!digest_ok(m, V_DIGEST)) { reject(fx, ev->from, SYN_PBFT_R_BAD_ENTRY); return; }
  if (seq <= r->last_exec) return;
  slot_t *s = slot_at(r, seq);
  if (s == NULL) { reject(fx, ev->from, SYN_PBFT_R_OUT_OF_WINDOW); return; }
  if (s->committed && s->have_batch) return;
  const uint8_t *d = dg(m, V_DIGEST);
  uint8_t hd[DIG];
  syn_digest(m->b[V_BODY].ptr, m->b[V_BODY].len, hd);
  if (memcmp(hd, d, DIG) != 0) { reject(fx, ev->from, SYN_PBFT_R_BAD_ENTRY); return; }
  /* The certificate: quorum commits from distinct replicas for (view, seq, d). */
  iter_t it = { m->b[V_CERT].ptr, m->b[V_CERT].len };
  const uint8_t *item; uint32_t ilen;
  uint64_t seen[(SYN_PBFT_MAX_REPLICAS + 63) / 64] = { 0 };
  uint32_t count = 0;
  int k;
  while ((k = iter_next(&it, &item, &ilen)) == 1) {
    syn_frame_t f; syn_msg_t c;
    if (!inner_frame(r, item, ilen, SYN_PBFT_COMMIT, &f, &c) || !digest_ok(&c, V_DIGEST) ||
        c.u[V_VIEW] != view || c.u[V_SEQ] != seq || memcmp(dg(&c, V_DIGEST), d, DIG) != 0 ||
        (seen[f.sender / 64] >> (f.sender % 64) & 1) || ilen > SMALL_CAP) {
      k = -1;
      break;
    }
    seen[f.sender / 64] |= 1ull << (f.sender % 64);
    count++;
  }
  if (k != 0 || count < r->quorum || !batch_valid(r, m->b[V_BODY].ptr, m->b[V_BODY].len)) {
    reject(fx, ev->from, SYN_PBFT_R_BAD_ENTRY);
    return;
  }
  memcpy(s->batch, m->b[V_BODY].ptr, m->b[V_BODY].len);
  s->blen = m->b[V_BODY].len;
  memcpy(s->bdigest, d, DIG);
  memcpy(s->digest, d, DIG);
  memcpy(s->ccert, m->b[V_CERT].ptr, m->b[V_CERT].len);
  s->ccert_len = m->b[V_CERT].len;
  s->have_batch = true;
  s->committed = true;
  s->c_view = view;
  /* The certificate decides the slot: no more votes of ours for it (a
   * vote resent now would carry the certified digest, not the one we
   * voted for, and look like a second vote). */
  s->have_pp = false;
  if (seq > r->max_seen) r->max_seen = seq;
  execute_ready(r, fx);
  if (r->last_exec < r->max_seen && r->last_exec >= seq) send_fetch(r, fx, 0, 0);
}

static void on_need(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  const syn_msg_t *m = ev->msg;
  if (!digest_ok(m, ND_DIGEST)) return;
  slot_t *s = slot_peek(r, m->u[ND_SEQ]);
  if (s && s->have_batch && s->blen > 0 && memcmp(s->bdigest, dg(m, ND_DIGEST), DIG) == 0)
    send_batch(fx, false, ev->from, s, s->view);
}

/* ---- the periodic tick: retransmission and catching up ---- */

/* The pre-prepare (and batch) it signed for s in this view, again. */
static void resend_pp(replica_t *r, syn_effects_t *fx, const slot_t *s) {
  if (!syn_fx_room(fx, 2, (size_t)s->blen + 1024)) return;
  send_vote(fx, K_PRE_PREPARE, true, 0, r->view, s->seq, s->my_pp_d);
  if (s->have_batch && s->blen > 0 && memcmp(s->bdigest, s->my_pp_d, DIG) == 0) send_batch(fx, true, 0, s, r->view);
}

static bool outstanding(const replica_t *r) {
  if (r->in_vc || r->xfer || r->nv_pending || r->last_exec < r->max_seen || has_pending(r) || r->w_on) return true;
  for (int i = 0; i < SYN_PBFT_MAX_SNAPS; i++)
    if (r->snaps[i].snap.data && r->snaps[i].seq > r->h) return true;
  return false;
}

static void on_tick(replica_t *r, int64_t now_ns, syn_effects_t *fx) {
  r->tick_on = false;
  if (r->in_vc) {
    const vcrec_t *own = &r->vcs[r->id];
    syn_frame_t f; syn_msg_t m;
    /* The same bytes again (signatures are deterministic): the copy a
     * new-view names must stay the copy everyone holds. */
    if (own->view == r->view && syn_fx_room(fx, 1, own->len + 256) &&
        syn_wire_frame_decode(own->frame, own->len, &f, &m) == 0)
      (void)syn_fx_broadcast(fx, &m);
    else if (own->view != r->view)
      send_view_change(r, fx);
    maybe_new_view(r, fx);
  } else {
    uint32_t p = primary_of(r, r->view);
    for (uint64_t seq = r->last_exec + 1; seq <= r->h + r->L && seq <= r->max_seen; seq++) {
      slot_t *s = slot_peek(r, seq);
      if (s == NULL || !syn_fx_room(fx, 8, 4096)) continue;
      if (s->have_pp && s->view == r->view && now_ns - s->pp_at_ns < r->tick_ns) continue;   /* still fresh */
      if (s->have_pp && s->view == r->view) {
        if (r->id == p) { send_vote(fx, K_PRE_PREPARE, true, 0, s->view, seq, s->digest); if (s->blen) send_batch(fx, true, 0, s, s->view); }
        if (s->sent_prepare && s->my_prep_view == s->view + 1) send_vote(fx, K_PREPARE, true, 0, s->view, seq, s->my_prep_d);
        if (s->sent_commit && s->my_comm_view == s->view + 1) send_vote(fx, K_COMMIT, true, 0, s->view, seq, s->my_comm_d);
        if (!s->have_batch) {
          syn_msg_t m = { .def = &pbft_msgs[K_NEED] };
          m.u[ND_SEQ] = seq; m.b[ND_DIGEST] = (syn_bytes_t){ s->digest, DIG };
          (void)syn_fx_broadcast(fx, &m);
        }
      } else if (r->id == p && s->my_pp_view == r->view + 1) {
        resend_pp(r, fx, s);   /* signed before a restart; its own copy comes back */
      } else if (s->nv_fixed && !s->have_batch) {
        syn_msg_t m = { .def = &pbft_msgs[K_NEED] };
        m.u[ND_SEQ] = seq; m.b[ND_DIGEST] = (syn_bytes_t){ s->nv_digest, DIG };
        (void)syn_fx_broadcast(fx, &m);
      }
    }
    if (r->id == p) { propose_oset(r, fx); maybe_propose(r, fx, false); }
  }
  /* Our newest checkpoint vote until it is stable. */
  const snap_t *top = NULL;
  for (int i = 0; i < SYN_PBFT_MAX_SNAPS; i++)
    if (r->snaps[i].snap.data && r->snaps[i].seq > r->h && (top == NULL || r->snaps[i].seq > top->seq)) top = &r->snaps[i];
  if (top) send_checkpoint(fx, top->seq, top->d);
  /* Behind: the next slot has not committed here for two ticks. */
  if (r->last_exec == r->tick_exec && r->last_exec < r->max_seen) r->stuck_ticks++;
  else r->stuck_ticks = 0;
  r->tick_exec = r->last_exec;
  if (r->xfer) {
    if (r->x_progress == 0) {   /* no chunk since the last tick: start over with the next replica */
      syn_buf_reset(&r->x_buf);
      r->x_total = 0;
      send_fetch(r, fx, r->x_seq, 0);
    }
    r->x_progress = 0;
  } else if (r->stuck_ticks >= 2) {
    send_fetch(r, fx, 0, 0);
  }
  if (r->nv_pending) {
    const vcrec_t *vcs[SYN_PBFT_MAX_REPLICAS];
    uint32_t k;
    (void)nv_collect(r, fx, r->nv_view, r->nv_prefs, r->nv_plen, vcs, &k, primary_of(r, r->nv_view), true);
  }
  if (outstanding(r)) arm_tick(r, fx);
}

/* ---- the durable checkpoint ---- */

/* Persists the snapshot of the stable checkpoint in chunks, then its header,
 * then forgets what the new durable checkpoint supersedes: the older one and
 * every slot record at or below it. Writes at most *budget bytes; returns
 * true when a checkpoint became durable. A write, once begun, finishes (from
 * its own copy when it takes several steps) before the next begins. */
static bool writer_step(replica_t *r, syn_effects_t *fx, size_t *budget) {
  const uint8_t *bytes;
  uint64_t total;
  if (r->w_on) {
    bytes = r->w_buf.data; total = r->w_buf.len;
  } else {
    if (r->h <= r->dur) return false;
    const snap_t *sn = snap_find(r, r->h);
    /* No snapshot of it here: a later checkpoint (or a transfer) will do. */
    if (sn == NULL || memcmp(sn->d, r->h_digest, DIG) != 0) return false;
    r->w_on = true;
    r->w_seq = r->h; r->w_off = 0;
    memcpy(r->w_d, r->h_digest, DIG);
    memcpy(r->w_proof, r->h_proof, r->h_proof_len);
    r->w_proof_len = r->h_proof_len;
    syn_buf_reset(&r->w_buf);
    bytes = sn->snap.data; total = sn->snap.len;
    size_t chunks = (size_t)((total + SYN_PBFT_CHUNK_BYTES - 1) / SYN_PBFT_CHUNK_BYTES);
    if (total > *budget || !syn_fx_room(fx, (uint32_t)chunks + 16, total + chunks * 64 + 2 * PROOF_CAP)) {
      /* More than this step holds: write it from a copy over the next steps. */
      if (syn_buf_append(&r->w_buf, bytes, total) != 0) {
        r->w_on = false;
        (void)syn_fx_trace(fx, "checkpoint %llu: no memory to persist it", (unsigned long long)r->w_seq);
        return false;
      }
      bytes = r->w_buf.data;
    }
  }
  while (r->w_off < total) {
    size_t n = total - r->w_off < SYN_PBFT_CHUNK_BYTES ? (size_t)(total - r->w_off) : SYN_PBFT_CHUNK_BYTES;
    if (n > *budget || !syn_fx_room(fx, 1, n + SYN_RECORD_SEAL_BYTES + 64)) {
      SYN_ASSERT(bytes == r->w_buf.data);   /* a write from the snapshot itself was sized to finish */
      return false;
    }
    persist(r, fx, SYN_PBFT_REC_CHUNK, r->w_seq * CHUNK_KEYS + r->w_off / SYN_PBFT_CHUNK_BYTES, bytes + r->w_off, n);
    r->w_off += n;
    *budget -= n;
  }
  if (!syn_fx_room(fx, 16, PROOF_CAP + 256)) {
    SYN_ASSERT(bytes == r->w_buf.data);
    return false;
  }
  uint8_t *p = r->rbuf;
  memcpy(p, r->w_d, DIG);
  syn_put_u64(p + DIG, total);
  syn_put_u32(p + DIG + 8, r->w_proof_len);
  memcpy(p + DIG + 12, r->w_proof, r->w_proof_len);
  persist(r, fx, SYN_PBFT_REC_CKPT, r->w_seq, p, DIG + 12 + (size_t)r->w_proof_len);
  /* Only now that it is whole may what it supersedes go. */
  (void)syn_fx_forget(fx, SYN_PBFT_REC_CKPT, r->w_seq);
  (void)syn_fx_forget(fx, SYN_PBFT_REC_CHUNK, r->w_seq * CHUNK_KEYS);
  static const uint32_t slot_kinds[] = { SYN_PBFT_REC_PRE_PREPARE, SYN_PBFT_REC_PREPARE, SYN_PBFT_REC_COMMIT,
                                         SYN_PBFT_REC_PREPARED, SYN_PBFT_REC_EXEC };
  for (size_t i = 0; i < sizeof slot_kinds / sizeof slot_kinds[0]; i++) (void)syn_fx_forget(fx, slot_kinds[i], r->w_seq + 1);
  r->dur = r->w_seq;
  if (r->dur_exec < r->dur) r->dur_exec = r->dur;
  r->w_on = false;
  syn_buf_free(&r->w_buf);
  syn_buf_init(&r->w_buf, SYN_PBFT_MAX_STATE_BYTES);
  return true;
}

/* The durable checkpoint moved: what waited for it goes on. */
static void resume(replica_t *r, syn_effects_t *fx) {
  for (uint64_t seq = r->h + 1; seq <= r->h + r->L; seq++) {
    slot_t *s = slot_peek(r, seq);
    if (s) progress(r, fx, s);
  }
  execute_ready(r, fx);
  propose_oset(r, fx);
  maybe_propose(r, fx, false);
}

/* After every replica step: the writer's share of the step. */
static void persist_run(replica_t *r, syn_effects_t *fx) {
  size_t budget = SYN_PBFT_PERSIST_STEP_BYTES;
  for (int i = 0; i < 4 && writer_step(r, fx, &budget); i++) resume(r, fx);
  if (r->w_on) arm_tick(r, fx);
}

/* ---- the replica step ---- */

static void replica_event(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  switch (ev->kind) {
  case SYN_EV_START:
    r->tick_on = r->view_timer = r->exec_on = r->batch_on = false;   /* a restart lost its timers */
    send_fetch(r, fx, 0, 0);   /* a restarted replica learns where the others are */
    /* What it signed before a restart, again (the same messages). */
    if (r->in_vc) send_view_change(r, fx);
    else if (is_primary(r))
      for (uint64_t seq = r->h + 1; seq <= r->h + r->L; seq++) {
        const slot_t *s = slot_peek(r, seq);
        if (s && !s->have_pp && s->my_pp_view == r->view + 1) resend_pp(r, fx, s);
      }
    if (outstanding(r)) arm_tick(r, fx);
    if (r->in_vc || (!is_primary(r) && has_pending(r))) arm_view_timer(r, fx);
    return;
  case SYN_EV_REQUEST:
    return;   /* replicas take requests from clients, as messages */
  case SYN_EV_TIMER:
    switch (ev->timer) {
    case SYN_PBFT_TIMER_TICK: on_tick(r, ev->now_ns, fx); break;
    case SYN_PBFT_TIMER_EXEC: r->exec_on = false; execute_ready(r, fx); break;
    case SYN_PBFT_TIMER_BATCH: r->batch_on = false; maybe_propose(r, fx, true); break;
    case SYN_PBFT_TIMER_VIEW:
      r->view_timer = false;
      if (r->in_vc || has_pending(r)) start_view_change(r, fx, r->view + 1);
      break;
    default: break;
    }
    return;
  case SYN_EV_MESSAGE: break;
  }
  const syn_msg_t *m = ev->msg;
  bool from_client = ev->from >= r->n;
  if (from_client && m->def->type != SYN_PBFT_REQUEST) { reject(fx, ev->from, SYN_PBFT_R_NOT_CLIENT); return; }
  switch (m->def->type) {
  case SYN_PBFT_REQUEST: on_request(r, ev, fx); break;
  case SYN_PBFT_PRE_PREPARE: on_pre_prepare(r, ev, fx); break;
  case SYN_PBFT_BATCH: on_batch(r, ev, fx); break;
  case SYN_PBFT_PREPARE: on_vote(r, ev, fx, false); break;
  case SYN_PBFT_COMMIT: on_vote(r, ev, fx, true); break;
  case SYN_PBFT_CHECKPOINT: on_checkpoint(r, ev, fx); break;
  case SYN_PBFT_VIEW_CHANGE: handle_view_change(r, fx, ev->from, m, ev->frame, ev->frame_len); break;
  case SYN_PBFT_NEW_VIEW: on_new_view(r, ev, fx); break;
  case SYN_PBFT_FETCH: on_fetch(r, ev, fx); break;
  case SYN_PBFT_STATE: on_state(r, ev, fx); break;
  case SYN_PBFT_ENTRY: on_entry(r, ev, fx); break;
  case SYN_PBFT_NEED: on_need(r, ev, fx); break;
  case SYN_PBFT_VC_FETCH: on_vc_fetch(r, ev, fx); break;
  case SYN_PBFT_RELAY: on_relay(r, ev, fx); break;
  default: reject(fx, ev->from, SYN_PBFT_R_BAD_REQUEST); break;   /* a reply sent to a replica */
  }
}

static void replica_step(replica_t *r, const syn_event_t *ev, syn_effects_t *fx) {
  replica_event(r, ev, fx);
  persist_run(r, fx);
}

/* Before the signature: what the content alone condemns (stale views and
 * garbage-collected slots, malformed digests, clients speaking out of
 * turn). Nothing here trusts the sender field. */
static int pbft_admit(const void *state, uint32_t from, const syn_msg_t *m) {
  (void)from;
  const pbft_t *p = state;
  const replica_t *r = p->r;
  if (r == NULL) return -1;
  switch (m->def->type) {
  case SYN_PBFT_PRE_PREPARE: case SYN_PBFT_PREPARE: case SYN_PBFT_COMMIT:
    if (!digest_ok(m, V_DIGEST)) return SYN_PBFT_R_BAD_DIGEST;
    if (m->u[V_VIEW] < r->view) return SYN_PBFT_R_STALE;
    if (m->u[V_SEQ] <= r->h) return SYN_PBFT_R_STALE;
    return -1;
  case SYN_PBFT_CHECKPOINT:
    if (!digest_ok(m, CK_DIGEST) || m->u[CK_SEQ] == 0 || m->u[CK_SEQ] % r->K != 0 || m->u[CK_SEQ] > SYN_PBFT_MAX_SEQ)
      return SYN_PBFT_R_BAD_CHECKPOINT;
    return m->u[CK_SEQ] <= r->h ? SYN_PBFT_R_STALE : -1;
  default:
    return -1;
  }
}

/* ---- the client ---- */

static void client_send(client_t *c, syn_effects_t *fx, bool bcast) {
  syn_msg_t m = { .def = &pbft_msgs[K_REQUEST] };
  m.u[RQ_CLIENT] = c->id; m.u[RQ_TS] = c->ts;
  m.b[RQ_OP] = (syn_bytes_t){ c->op, c->op_len };
  if (bcast) (void)syn_fx_broadcast(fx, &m);
  else (void)syn_fx_send(fx, (uint32_t)(c->view % c->n), &m);
  (void)syn_fx_timer_set(fx, SYN_PBFT_TIMER_CLIENT, c->timeout_ns);
}

static void client_next(client_t *c, syn_effects_t *fx) {
  if (c->busy || c->q_count == 0) return;
  uint32_t len = syn_get_u32(c->q + c->q_head);
  memcpy(c->op, c->q + c->q_head + 4, len);
  c->op_len = len;
  c->q_head += 4 + len; c->q_used -= 4 + len; c->q_count--;
  if (c->q_count == 0) c->q_head = 0;
  c->ts++;
  if (c->ts > c->ts_reserved) {
    /* A block of timestamps at a time: a restarted client starts above it,
     * so replicas never take a new request for one they answered. */
    c->ts_reserved = c->ts + SYN_PBFT_CLIENT_TS_BLOCK - 1;
    uint8_t b[8];
    syn_put_u64(b, c->ts_reserved);
    (void)syn_fx_persist(fx, SYN_PBFT_REC_CLIENT, 0, b, sizeof b);
  }
  c->busy = true;
  memset(c->rep, 0, sizeof c->rep[0] * c->n);
  client_send(c, fx, false);
}

static void client_step(client_t *c, const syn_event_t *ev, syn_effects_t *fx) {
  switch (ev->kind) {
  case SYN_EV_START:
    if (c->busy) (void)syn_fx_timer_set(fx, SYN_PBFT_TIMER_CLIENT, c->timeout_ns);
    return;
  case SYN_EV_REQUEST:
    if (ev->op_len > SYN_MAX_OP_BYTES || 4 + ev->op_len > sizeof c->q - c->q_head - c->q_used) {
      if (c->q_head > 0) {   /* compact, then try again */
        memmove(c->q, c->q + c->q_head, c->q_used);
        c->q_head = 0;
      }
      if (ev->op_len > SYN_MAX_OP_BYTES || 4 + ev->op_len > sizeof c->q - c->q_used) {
        reject(fx, c->id, SYN_PBFT_R_QUEUE_FULL);
        return;
      }
    }
    syn_put_u32(c->q + c->q_head + c->q_used, (uint32_t)ev->op_len);
    memcpy(c->q + c->q_head + c->q_used + 4, ev->op, ev->op_len);
    c->q_used += 4 + (uint32_t)ev->op_len;
    c->q_count++;
    client_next(c, fx);
    return;
  case SYN_EV_TIMER:
    if (ev->timer == SYN_PBFT_TIMER_CLIENT && c->busy) { c->retries++; client_send(c, fx, true); }
    return;
  case SYN_EV_MESSAGE: break;
  }
  const syn_msg_t *m = ev->msg;
  if (m->def->type != SYN_PBFT_REPLY || ev->from >= c->n || m->u[RP_CLIENT] != c->id) {
    reject(fx, ev->from, SYN_PBFT_R_BAD_REPLY);
    return;
  }
  if (!c->busy || m->u[RP_TS] != c->ts) return;   /* late: already decided */
  creply_t *rp = &c->rep[ev->from];
  rp->have = true; rp->view = m->u[RP_VIEW]; rp->seq = m->u[RP_SEQ];
  rp->len = m->b[RP_RESULT].len;
  memcpy(rp->res, m->b[RP_RESULT].ptr, rp->len);
  uint32_t match = 0;
  uint64_t views[SYN_PBFT_MAX_REPLICAS];
  for (uint32_t q = 0; q < c->n; q++) {
    const creply_t *o = &c->rep[q];
    if (o->have && o->seq == rp->seq && o->len == rp->len && memcmp(o->res, rp->res, rp->len) == 0)
      views[match++] = o->view;
  }
  if (match < c->f + 1) return;
  /* The view at least f+1 of them report (so one honest replica does):
   * the (f+1)-th largest. */
  for (uint32_t i = 0; i <= c->f; i++)
    for (uint32_t j = i + 1; j < match; j++)
      if (views[j] > views[i]) { uint64_t t = views[i]; views[i] = views[j]; views[j] = t; }
  uint64_t view = views[c->f];
  (void)syn_fx_deliver(fx, c->ts, c->id, rp->seq, rp->res, rp->len);
  if (view > c->view) c->view = view;
  c->busy = false;
  c->completed++;
  (void)syn_fx_timer_cancel(fx, SYN_PBFT_TIMER_CLIENT);
  client_next(c, fx);
}

/* ---- recovery: a replica or client rebuilt from its records ---- */

/* Every record after the chunks needs the durable checkpoint restored. */
static int rec_snapshot_whole(const replica_t *r) { return r->rec.hdr && !r->rec.done ? -SYN_ECORRUPT : 0; }

/* The assembled snapshot (x_buf) of the durable checkpoint: checked against
 * its header's digest, restored, and made the stable checkpoint. */
static int install_snapshot(replica_t *r) {
  uint8_t d[DIG];
  syn_digest(r->x_buf.data, r->x_buf.len, d);
  if (memcmp(d, r->rec.d, DIG) != 0 || restore(r, r->x_buf.data, r->x_buf.len) != 0) return -SYN_ECORRUPT;
  uint64_t seq = r->rec.seq;
  r->h = r->dur = r->dur_exec = r->last_exec = seq;
  memcpy(r->h_digest, d, DIG);
  memcpy(r->h_proof, r->rec.proof, r->rec.proof_len);
  r->h_proof_len = r->rec.proof_len;
  for (int i = 0; i < SYN_PBFT_MAX_SNAPS; i++) snap_drop(&r->snaps[i]);
  snap_t *sn = &r->snaps[0];
  sn->seq = seq;
  memcpy(sn->d, d, DIG);
  sn->snap = r->x_buf;                     /* it serves state transfers, as before the restart */
  syn_buf_init(&r->x_buf, SYN_PBFT_MAX_STATE_BYTES);
  r->rec.done = true;
  return 0;
}

/* A slot record's view and its slot (NULL: at or below the durable
 * checkpoint, superseded). A replica signs nothing beyond dur + L, so a
 * record there is not one it wrote. */
static int rec_slot(replica_t *r, uint64_t seq, const uint8_t *p, size_t len, slot_t **out, uint64_t *view) {
  *out = NULL;
  if (len < 8 + DIG) return -SYN_ECORRUPT;
  *view = syn_get_u64(p);
  if (*view == UINT64_MAX) return -SYN_ECORRUPT;
  if (seq <= r->h) return 0;
  if (seq > r->h + r->L) return -SYN_ECORRUPT;
  *out = slot_at(r, seq);
  return 0;
}

static int replica_recover(replica_t *r, uint32_t kind, uint64_t key, const uint8_t *p, size_t len) {
  if (kind == SYN_RECORD_END || kind > SYN_PBFT_REC_CHUNK) {
    int rc = rec_snapshot_whole(r);
    if (rc) return rc;
  }
  slot_t *s;
  uint64_t view;
  int rc;
  switch (kind) {
  case SYN_PBFT_REC_VIEW:
    if (key != 0 || len != 17 || p[8] > 1) return -SYN_ECORRUPT;
    r->view = syn_get_u64(p);
    r->in_vc = p[8];
    r->next_seq = syn_get_u64(p + 9);
    return 0;
  case SYN_PBFT_REC_VIEW_CHANGE: {
    syn_msg_t m;
    if (len > r->vc_cap || syn_wire_decode_payload(&pbft_msgs[K_VIEW_CHANGE], p, len, &m) != 0 ||
        m.u[VC_VIEW] != key)
      return -SYN_ECORRUPT;
    if (key != r->view) return 0;   /* of an older view */
    memcpy(r->my_vc, p, len);
    r->my_vc_len = (uint32_t)len;
    r->my_vc_view = key;
    return 0;
  }
  case SYN_PBFT_REC_NEW_VIEW:
    if (len % (4 + DIG) != 0 || len > sizeof r->nv_refs) return -SYN_ECORRUPT;
    if (key != r->view) return 0;
    r->nv_sent = key;
    r->nv_len = (uint32_t)len;
    memcpy(r->nv_refs, p, len);
    return 0;
  case SYN_PBFT_REC_OSET: {
    if (len < 16) return -SYN_ECORRUPT;
    uint64_t min_s = syn_get_u64(p), max_s = syn_get_u64(p + 8);
    if (max_s < min_s || max_s - min_s > r->L || len != 16 + (max_s - min_s) * DIG) return -SYN_ECORRUPT;
    if (key != r->view || r->in_vc) return 0;
    oset_t *o = r->oset;
    memset(o, 0, sizeof *o);
    o->min_s = min_s; o->max_s = max_s;
    memcpy(o->d, p + 16, (max_s - min_s) * DIG);
    for (uint64_t i = 0; i < max_s - min_s; i++) o->has[i] = true;
    r->o_view = key;
    return 0;
  }
  case SYN_PBFT_REC_CKPT: {
    if (len < DIG + 12) return -SYN_ECORRUPT;
    uint64_t total = syn_get_u64(p + DIG);
    uint32_t plen = syn_get_u32(p + DIG + 8);
    if (plen > PROOF_CAP || len != DIG + 12 + (size_t)plen || total == 0 || total > SYN_PBFT_MAX_STATE_BYTES ||
        key == 0 || key % r->K != 0 || key > SYN_PBFT_MAX_SEQ)
      return -SYN_ECORRUPT;
    /* In key order: a later header is a newer checkpoint whose forgets did not land. */
    r->rec.hdr = true; r->rec.done = false;
    r->rec.seq = key; r->rec.total = total;
    memcpy(r->rec.d, p, DIG);
    memcpy(r->rec.proof, p + DIG + 12, plen);
    r->rec.proof_len = plen;
    syn_buf_reset(&r->x_buf);
    return 0;
  }
  case SYN_PBFT_REC_CHUNK: {
    if (!r->rec.hdr || key / CHUNK_KEYS != r->rec.seq || r->rec.done) return 0;   /* an unfinished write */
    uint64_t have = r->x_buf.len, want = r->rec.total - have;
    if (want > SYN_PBFT_CHUNK_BYTES) want = SYN_PBFT_CHUNK_BYTES;
    if ((key % CHUNK_KEYS) * SYN_PBFT_CHUNK_BYTES != have || len != want) return -SYN_ECORRUPT;   /* one missing */
    if ((rc = syn_buf_append(&r->x_buf, p, len)) != 0) return rc;
    return r->x_buf.len == r->rec.total ? install_snapshot(r) : 0;
  }
  case SYN_PBFT_REC_PRE_PREPARE: {
    if ((rc = rec_slot(r, key, p, len, &s, &view)) != 0 || s == NULL) return rc;
    const uint8_t *d = p + 8, *body = p + 8 + DIG;
    size_t blen = len - 8 - DIG;
    if (blen > SYN_PBFT_MAX_BATCH_BYTES) return -SYN_ECORRUPT;
    if (blen > 0) {
      uint8_t bd[DIG];
      syn_digest(body, blen, bd);
      if (memcmp(bd, d, DIG) != 0) return -SYN_ECORRUPT;
      memcpy(s->batch, body, blen);
      s->blen = (uint32_t)blen;
      memcpy(s->bdigest, d, DIG);
      s->have_batch = true;
    } else {
      null_body(r->null_d, s, d);
    }
    s->my_pp_view = view + 1;
    memcpy(s->my_pp_d, d, DIG);
    return 0;
  }
  case SYN_PBFT_REC_PREPARE:
  case SYN_PBFT_REC_COMMIT:
    if (len != 8 + DIG) return -SYN_ECORRUPT;
    if ((rc = rec_slot(r, key, p, len, &s, &view)) != 0 || s == NULL) return rc;
    if (kind == SYN_PBFT_REC_PREPARE) { s->my_prep_view = view + 1; memcpy(s->my_prep_d, p + 8, DIG); }
    else { s->my_comm_view = view + 1; memcpy(s->my_comm_d, p + 8, DIG); }
    return 0;
  case SYN_PBFT_REC_PREPARED:
    if ((rc = rec_slot(r, key, p, len, &s, &view)) != 0 || s == NULL) return rc;
    if (len - 8 - DIG == 0 || len - 8 - DIG > r->cert_cap) return -SYN_ECORRUPT;
    memcpy(s->cert, p + 8 + DIG, len - 8 - DIG);
    s->cert_len = (uint32_t)(len - 8 - DIG);
    return 0;
  case SYN_PBFT_REC_EXEC: {
    if (len < 12 + DIG) return -SYN_ECORRUPT;
    view = syn_get_u64(p);
    const uint8_t *d = p + 8;
    uint32_t blen = syn_get_u32(p + 8 + DIG);
    if (blen > SYN_PBFT_MAX_BATCH_BYTES || blen > len - 12 - DIG || len - 12 - DIG - blen > PROOF_CAP) return -SYN_ECORRUPT;
    if (key <= r->last_exec) return 0;   /* inside the durable checkpoint */
    /* Executed batches are persisted in order: a gap is a lost record. */
    if (key != r->last_exec + 1 || key > r->h + r->L) return -SYN_ECORRUPT;
    uint8_t bd[DIG];
    syn_digest(p + 12 + DIG, blen, bd);
    if (memcmp(bd, d, DIG) != 0) return -SYN_ECORRUPT;
    s = slot_at(r, key);
    SYN_ASSERT(s != NULL);   /* h < key <= h + L */
    memcpy(s->batch, p + 12 + DIG, blen);
    s->blen = blen;
    memcpy(s->bdigest, d, DIG);
    memcpy(s->digest, d, DIG);
    s->have_batch = s->committed = true;
    s->c_view = view;
    s->ccert_len = (uint32_t)(len - 12 - DIG - blen);
    memcpy(s->ccert, p + 12 + DIG + blen, s->ccert_len);
    execute_batch(r, NULL, s);   /* silently: it was delivered and answered before the restart */
    if (r->broken) return -SYN_ECORRUPT;
    r->last_exec = r->dur_exec = key;
    r->batches++;
    if (key % r->K == 0) take_checkpoint(r, NULL, key);
    return 0;
  }
  case SYN_RECORD_END:
    if (r->next_seq < r->h) r->next_seq = r->h;
    r->max_seen = r->last_exec > r->next_seq ? r->last_exec : r->next_seq;
    for (uint64_t i = 0; i < r->L; i++)
      if (r->slots[i].seq > r->max_seen) r->max_seen = r->slots[i].seq;
    return 0;
  default:
    return -SYN_ECORRUPT;   /* not a replica's record: a foreign store */
  }
}

static int client_recover(client_t *c, uint32_t kind, uint64_t key, const uint8_t *p, size_t len) {
  if (kind == SYN_RECORD_END) return 0;
  if (kind != SYN_PBFT_REC_CLIENT || key != 0 || len != 8) return -SYN_ECORRUPT;
  c->ts = c->ts_reserved = syn_get_u64(p);   /* the next request takes the next block */
  return 0;
}

static int pbft_recover(void *state, uint32_t kind, uint64_t key, const uint8_t *data, size_t len) {
  pbft_t *p = state;
  if (p->r) return replica_recover(p->r, kind, key, data, len);
  if (p->c) return client_recover(p->c, kind, key, data, len);
  return -SYN_ESTATE;
}

static const char *const pbft_record_kinds[SYN_PBFT_NREC] = {
  [SYN_PBFT_REC_VIEW] = "view", [SYN_PBFT_REC_VIEW_CHANGE] = "view-change", [SYN_PBFT_REC_NEW_VIEW] = "new-view",
  [SYN_PBFT_REC_OSET] = "oset", [SYN_PBFT_REC_CKPT] = "checkpoint", [SYN_PBFT_REC_CHUNK] = "chunk",
  [SYN_PBFT_REC_PRE_PREPARE] = "pre-prepare", [SYN_PBFT_REC_PREPARE] = "prepare", [SYN_PBFT_REC_COMMIT] = "commit",
  [SYN_PBFT_REC_PREPARED] = "prepared", [SYN_PBFT_REC_EXEC] = "exec", [SYN_PBFT_REC_CLIENT] = "client",
};

/* ---- the protocol face ---- */

static void pbft_fini(void *state) {
  pbft_t *p = state;
  if (p->r) {
    replica_t *r = p->r;
    if (r->app_state) r->app->free(r->app_state);
    for (int i = 0; i < SYN_PBFT_MAX_SNAPS; i++) syn_buf_free(&r->snaps[i].snap);
    syn_buf_free(&r->x_buf);
    syn_buf_free(&r->w_buf);
    syn_buf_free(&r->scratch);
    free(r->my_vc);
    free(r->slots); free(r->ctab); free(r->ck); free(r->vcs); free(r->nvc); free(r->hint); free(r->bad_vc); free(r->oset); free(r->mem);
    free(r);
  }
  free(p->c);
  p->r = NULL; p->c = NULL;
}

/* The largest view-change payload for (n, L): every slot prepared. */
static uint64_t vc_bound(uint32_t n, uint64_t L) {
  uint32_t f = (n - 1) / 3;
  uint64_t entry = 4 + (4 + SMALL_CAP) + (uint64_t)2 * f * (4 + SMALL_CAP);
  return VC_FIXED_BYTES + L * entry;
}

static int replica_init(pbft_t *p, const syn_proto_cfg_t *cfg) {
  replica_t *r = calloc(1, sizeof *r);
  if (r == NULL) return -SYN_ENOMEM;
  p->r = r;
  r->id = cfg->id; r->n = cfg->n; r->f = (cfg->n - 1) / 3; r->quorum = 2 * r->f + 1;
  r->clients = cfg->clients;
  r->K = (uint64_t)cfg->params[SYN_PBFT_P_CHECKPOINT_INTERVAL];
  r->L = (uint64_t)cfg->params[SYN_PBFT_P_WINDOW];
  r->batch_size = cfg->params[SYN_PBFT_P_BATCH_SIZE];
  r->batch_delay_ns = cfg->params[SYN_PBFT_P_BATCH_DELAY_MS] * SYN_NS_PER_MS;
  r->vc_ns = cfg->params[SYN_PBFT_P_VIEW_CHANGE_MS] * SYN_NS_PER_MS;
  r->tick_ns = cfg->params[SYN_PBFT_P_RETRANSMIT_MS] * SYN_NS_PER_MS;
  r->ring = cfg->ring;
  r->app = cfg->app;
  static const uint8_t no_bytes[1];
  syn_digest(no_bytes, 0, r->null_d);
  if (r->L < r->K || r->L > (SYN_PBFT_MAX_SNAPS - 1) * r->K) return -SYN_EINVAL;
  uint64_t vcb = vc_bound(r->n, r->L);
  if (vcb > MAX_VC_PAYLOAD) return -SYN_ELIMIT;
  r->vc_cap = (uint32_t)syn_wire_frame_size((size_t)vcb);
  r->cert_cap = 4 + SMALL_CAP + 2 * r->f * (4 + SMALL_CAP);
  /* One arena; each piece rounded up to 8 bytes so the vote rows that
   * follow stay aligned. */
#define A8(x) (((size_t)(x) + 7) & ~(size_t)7)
  size_t per_slot = A8(SYN_PBFT_MAX_BATCH_BYTES) + A8(r->cert_cap) + A8(PROOF_CAP) + 2 * (size_t)r->n * sizeof(vote_t);
  r->slots = calloc(r->L, sizeof *r->slots);
  r->ctab = calloc(r->clients ? r->clients : 1, sizeof *r->ctab);
  r->ck = calloc((size_t)r->n * SYN_PBFT_CKPT_HISTORY, sizeof *r->ck);
  r->vcs = calloc(r->n, sizeof *r->vcs);
  r->nvc = calloc(r->n, sizeof *r->nvc);
  r->hint = calloc(r->n, sizeof *r->hint);
  r->bad_vc = calloc(r->n, sizeof *r->bad_vc);
  r->oset = calloc(1, sizeof *r->oset);
  r->mem = calloc(1, per_slot * r->L + 2 * (size_t)r->n * A8(r->vc_cap));
  if (!r->slots || !r->ctab || !r->ck || !r->vcs || !r->nvc || !r->hint || !r->bad_vc || !r->oset || !r->mem) return -SYN_ENOMEM;
  uint8_t *mem = r->mem;
  for (uint64_t i = 0; i < r->L; i++) {
    slot_t *s = &r->slots[i];
    s->batch = mem; mem += A8(SYN_PBFT_MAX_BATCH_BYTES);
    s->cert = mem; mem += A8(r->cert_cap);
    s->ccert = mem; mem += A8(PROOF_CAP);
    s->prep = (vote_t *)(void *)mem; mem += r->n * sizeof(vote_t);
    s->comm = (vote_t *)(void *)mem; mem += r->n * sizeof(vote_t);
  }
  for (uint32_t q = 0; q < r->n; q++) { r->vcs[q].frame = mem; mem += A8(r->vc_cap); }
  for (uint32_t q = 0; q < r->n; q++) { r->nvc[q].frame = mem; mem += A8(r->vc_cap); }
#undef A8
  syn_buf_init(&r->x_buf, SYN_PBFT_MAX_STATE_BYTES);
  syn_buf_init(&r->w_buf, SYN_PBFT_MAX_STATE_BYTES);
  syn_buf_init(&r->scratch, 0);
  r->my_vc = malloc(r->vc_cap);
  if (r->my_vc == NULL) return -SYN_ENOMEM;
  size_t scratch = r->vc_cap > SYN_PBFT_MAX_BATCH_BYTES ? r->vc_cap : SYN_PBFT_MAX_BATCH_BYTES;
  if (scratch < SYN_PBFT_MAX_RESULT_BYTES) scratch = SYN_PBFT_MAX_RESULT_BYTES;
  if (syn_buf_reserve(&r->scratch, scratch) != 0) return -SYN_ENOMEM;
  r->scratch.max_bytes = scratch;
  int rc = r->app->new(&r->app_state);
  if (rc) return rc;
  /* The genesis checkpoint: everyone starts from the same empty state. */
  snap_t *g = &r->snaps[0];
  syn_buf_init(&g->snap, SYN_PBFT_MAX_STATE_BYTES);
  rc = snapshot(r, &g->snap);
  if (rc) return rc;
  g->seq = 0;
  syn_digest(g->snap.data, g->snap.len, g->d);
  memcpy(r->h_digest, g->d, DIG);
  return 0;
}

static int pbft_init(void *state, const syn_proto_cfg_t *cfg) {
  pbft_t *p = state;
  if (cfg->n == 0 || cfg->n > SYN_PBFT_MAX_REPLICAS || cfg->app == NULL) return -SYN_EINVAL;
  if ((uint64_t)cfg->n + cfg->clients > SYN_MAX_NODES) return -SYN_ELIMIT;
  if (cfg->id < cfg->n) {
    int rc = replica_init(p, cfg);
    if (rc) pbft_fini(p);
    return rc;
  }
  if (cfg->id >= cfg->n + cfg->clients) return -SYN_EINVAL;
  client_t *c = calloc(1, sizeof *c);
  if (c == NULL) return -SYN_ENOMEM;
  c->id = cfg->id; c->n = cfg->n; c->f = (cfg->n - 1) / 3;
  c->timeout_ns = cfg->params[SYN_PBFT_P_CLIENT_TIMEOUT_MS] * SYN_NS_PER_MS;
  p->c = c;
  return 0;
}

static void pbft_step(void *state, const syn_event_t *ev, syn_effects_t *fx) {
  pbft_t *p = state;
  if (p->r) replica_step(p->r, ev, fx);
  else if (p->c) client_step(p->c, ev, fx);
}

static void pbft_status(const void *state, syn_status_fn fn, void *ctx) {
  const pbft_t *p = state;
  if (p->r) {
    const replica_t *r = p->r;
    uint64_t slots = 0, pending = 0;
    for (uint64_t i = 0; i < r->L; i++) slots += r->slots[i].seq != 0;
    for (uint32_t c = 0; c < r->clients; c++) pending += r->ctab[c].pend_ts != 0;
    fn(ctx, "view", (int64_t)r->view);
    fn(ctx, "primary", primary_of(r, r->view));
    fn(ctx, "in_view_change", r->in_vc);
    fn(ctx, "last_executed", (int64_t)r->last_exec);
    fn(ctx, "stable_checkpoint", (int64_t)r->h);
    fn(ctx, "high_watermark", (int64_t)(r->h + r->L));
    fn(ctx, "executed_ops", (int64_t)r->op_count);
    fn(ctx, "executed_batches", (int64_t)r->batches);
    fn(ctx, "log_slots", (int64_t)slots);
    fn(ctx, "pending_requests", (int64_t)pending);
    fn(ctx, "view_changes", (int64_t)r->view_changes);
    fn(ctx, "checkpoints", (int64_t)r->checkpoints);
    fn(ctx, "state_transfers", (int64_t)r->transfers);
    fn(ctx, "app_entries", (int64_t)r->app->count(r->app_state));
    fn(ctx, "broken", r->broken);
    fn(ctx, "durable_checkpoint", (int64_t)r->dur);
    fn(ctx, "records_persisted", (int64_t)r->persisted);
  } else if (p->c) {
    const client_t *c = p->c;
    fn(ctx, "client", 1);
    fn(ctx, "completed", (int64_t)c->completed);
    fn(ctx, "outstanding", (int64_t)(c->q_count + c->busy));
    fn(ctx, "retries", (int64_t)c->retries);
    fn(ctx, "view", (int64_t)c->view);
  }
}

const syn_proto_t syn_pbft_proto = {
  .name = "pbft",
  .msgs = pbft_msgs, .nmsgs = sizeof pbft_msgs / sizeof pbft_msgs[0],
  .params = pbft_params, .nparams = SYN_PBFT_NPARAMS,
  .reasons = pbft_reasons, .nreasons = SYN_PBFT_NREASONS,
  .state_bytes = sizeof(pbft_t),
  .max_nodes = SYN_PBFT_MAX_REPLICAS,
  .default_clients = 4,
  .default_app = "kv",
  .loopback = true,
  .init = pbft_init,
  .fini = pbft_fini,
  .step = pbft_step,
  .admit = pbft_admit,
  .status = pbft_status,
  .recover = pbft_recover,
  .record_kinds = pbft_record_kinds, .nrecord_kinds = SYN_PBFT_NREC,
};
