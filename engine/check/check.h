/* check.h — the recorded history of a run and the checkers that judge it.
 *
 * A history holds, per node, the ordered log of what it delivered (position,
 * origin, timestamp, value, virtual time) and, for the whole run, every
 * value a client submitted (at which node, when). Runtimes append to it;
 * checkers only read it. Every checker fills a verdict that explains itself:
 * on failure, the first divergence — which nodes, which positions, which
 * values — in one readable paragraph. check/ never touches a protocol.
 *
 * Two shapes of run are recorded:
 *  - replicas only (TOM): node ids 0..n-1 submit, multicast and deliver;
 *    a delivery's origin is the node that multicast it.
 *  - replicas and clients (PBFT): replicas are 0..n-1, clients are
 *    n..n+clients-1 (syn_history_set_clients). A submission at client c is
 *    the invocation of an op; the k-th at c (k = 1, 2, … in recorded order)
 *    is the request with client timestamp k. A replica's log holds every op
 *    it executed: seq = the op's global position since genesis, origin = the
 *    client, ts = the client's timestamp, value = the op text; a replica
 *    that caught up by state transfer has a gap in seq, which is legitimate.
 *    A client's log holds its responses: seq = the request's client
 *    timestamp k, origin = the client, ts = the protocol sequence number the
 *    op committed in, value = the result text, at_ns = response time. Each
 *    replica also has a commit log: (seq, batch digest) of every batch it
 *    executed (syn_history_commit). A client restarted from its records
 *    lost the ops it had taken but not had answered, and numbers its
 *    requests anew above the timestamps it had reserved: an epoch
 *    (syn_history_client_epoch) says from which submission on, and from
 *    which timestamp, so its k-th submission is found again.
 * h->n is always the number of replicas; agreement, total order, integrity
 * and ts_order judge only replicas. */
#ifndef SYN_CHECK_H
#define SYN_CHECK_H

#include "../base/base.h"

#define SYN_MAX_HISTORY_NODES   256
#define SYN_MAX_HISTORY_ENTRIES (4u << 20)   /* deliveries per node */
#define SYN_MAX_SUBMISSIONS     (4u << 20)   /* submissions per run */
#define SYN_MAX_HISTORY_COMMITS (4u << 20)   /* batch commits per replica */
#define SYN_MAX_HISTORY_BYTES   (256u << 20) /* value bytes per history */
#define SYN_MAX_EXPLAIN_BYTES   1024
#define SYN_MAX_CLIENT_EPOCHS   4096         /* client restarts from records, per history */

typedef struct {
  uint64_t seq;           /* position reported by the protocol (1, 2, …) */
  uint32_t origin;        /* the node that multicast / proposed it */
  uint64_t ts;            /* the protocol's timestamp (Lamport ts for TOM) */
  int64_t at_ns;          /* virtual (or wall) time of delivery */
  uint32_t off, len;      /* value bytes in the history's arena */
} syn_delivery_t;

typedef struct {
  uint32_t node;          /* where it was submitted */
  int64_t at_ns;
  uint32_t off, len;
} syn_submission_t;

typedef struct {
  syn_delivery_t *items;
  uint32_t count, cap;
} syn_delivery_log_t;

#define SYN_HISTORY_DIGEST_BYTES 32

typedef struct {
  uint64_t seq;           /* the protocol's sequence number of the batch */
  int64_t at_ns;          /* when the replica executed it */
  uint8_t digest[SYN_HISTORY_DIGEST_BYTES];
} syn_commit_t;

typedef struct {
  syn_commit_t *items;
  uint32_t count, cap;
} syn_commit_log_t;

typedef struct {
  uint32_t n;                                   /* replicas: node ids 0..n-1 */
  uint32_t clients;                             /* clients: node ids n..n+clients-1 */
  bool honest[SYN_MAX_HISTORY_NODES];           /* false once a node has had a behaviour */
  syn_delivery_log_t logs[SYN_MAX_HISTORY_NODES];  /* replicas: executed; clients: responses */
  syn_commit_log_t commits[SYN_MAX_HISTORY_NODES]; /* replicas only */
  syn_submission_t *subs;
  uint32_t nsubs, subs_cap;
  syn_buf_t arena;                              /* all value bytes */
  struct syn_client_epoch { uint32_t client; uint64_t rank_base, first_ts; } *epochs;
  uint32_t nepochs, epochs_cap;                 /* in the order they were added */
} syn_history_t;

int syn_history_init(syn_history_t *h, uint32_t n);   /* every node honest, no clients */
/* Adds clients (honest) as node ids n..n+clients-1; call right after init.
 * -SYN_ELIMIT when n + clients > SYN_MAX_HISTORY_NODES. */
int syn_history_set_clients(syn_history_t *h, uint32_t clients);
void syn_history_free(syn_history_t *h);
/* Append; node < n + clients (-SYN_EINVAL otherwise); -SYN_ELIMIT past the
 * SYN_MAX_HISTORY_* limits. */
int syn_history_deliver(syn_history_t *h, uint32_t node, uint64_t seq, uint32_t origin,
                        uint64_t ts, int64_t at_ns, const uint8_t *value, size_t len);
int syn_history_submit(syn_history_t *h, uint32_t node, int64_t at_ns,
                       const uint8_t *value, size_t len);
/* Replica node (< n, else -SYN_EINVAL) executed the batch at seq whose
 * digest is digest; -SYN_ELIMIT past SYN_MAX_HISTORY_COMMITS. */
int syn_history_commit(syn_history_t *h, uint32_t node, uint64_t seq,
                       const uint8_t digest[SYN_HISTORY_DIGEST_BYTES], int64_t at_ns);
/* Forget a node's deliveries and commits (a restart with amnesia starts a
 * new log), and a client's epochs. node < n + clients. */
void syn_history_reset_node(syn_history_t *h, uint32_t node);
/* Client (n <= client < n + clients) restarted from its records: its
 * submissions after the first rank_base carry timestamps from first_ts on
 * (its k-th, k > rank_base, has ts first_ts + k - rank_base - 1) until its
 * next epoch. Without an epoch a client's k-th submission has ts k.
 * -SYN_EINVAL for a replica, -SYN_ELIMIT past SYN_MAX_CLIENT_EPOCHS. */
int syn_history_client_epoch(syn_history_t *h, uint32_t client, uint64_t rank_base, uint64_t first_ts);
static inline const uint8_t *syn_history_value(const syn_history_t *h, uint32_t off) {
  return h->arena.data + off;
}

typedef struct {
  bool ok;
  const char *checker;                 /* "agreement", "total_order", … */
  /* On failure: the nodes and positions of the first divergence (-1 when
   * not applicable) and a readable explanation. */
  int32_t node_a, node_b;
  int64_t pos_a, pos_b;
  char explain[SYN_MAX_EXPLAIN_BYTES];   /* on success: "" or a note (liveness: what went unjudged) */
} syn_verdict_t;

/* Honest replicas' logs agree seq by seq: each is strictly increasing in
 * seq, and no two deliver different messages at one seq. Gaps are allowed
 * (state transfer); for logs numbered 1, 2, … this is "honest logs are
 * prefixes of one another". Reports the earliest divergent seq and the
 * lexicographically smallest pair of nodes there; pos_a/pos_b are log
 * positions (1-based), which equal the seq when a log has no gap. */
void syn_check_agreement(const syn_history_t *h, syn_verdict_t *v);
/* Any two values delivered by two honest nodes are delivered in the same
 * relative order by both. */
void syn_check_total_order(const syn_history_t *h, syn_verdict_t *v);
/* Every value an honest replica delivered whose origin is honest was
 * submitted at that origin, a replica or a client. (A Byzantine origin may
 * multicast anything; an origin that is neither always fails.) */
void syn_check_validity(const syn_history_t *h, syn_verdict_t *v);
/* No honest node delivers the same (origin, ts, value) twice. */
void syn_check_integrity(const syn_history_t *h, syn_verdict_t *v);
/* Every value submitted at an honest replica is delivered by every honest
 * replica by max(submitted, heal_at_ns) + bound_ns; the k-th op submitted
 * at an honest client has its response (seq k in the client's log, or the
 * timestamp its epoch gives it) by that
 * deadline. Deadlines after end_ns are not judged (the run was too short
 * to tell); end_ns = INT64_MAX says the run went quiet, so nothing more can
 * come and every deadline is judged. */
void syn_check_liveness(const syn_history_t *h, int64_t heal_at_ns, int64_t bound_ns,
                        int64_t end_ns, syn_verdict_t *v);
/* TOM's own rule: each honest log is strictly increasing in (ts, origin). */
void syn_check_ts_order(const syn_history_t *h, syn_verdict_t *v);
/* "batches": each honest replica's commit log is strictly increasing in
 * seq, and honest replicas that committed the same seq committed the same
 * batch digest. pos_a/pos_b are commit log positions (1-based). */
void syn_check_batches(const syn_history_t *h, syn_verdict_t *v);
/* "exactly_once": no honest replica executes the same (origin, ts) twice,
 * even with different values; and every response in an honest client's
 * log (seq k) answers an op some honest replica executed with (origin =
 * that client, ts = k) — not judged when every replica is Byzantine. */
void syn_check_exactly_once(const syn_history_t *h, syn_verdict_t *v);

#endif
