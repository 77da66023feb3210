/* check.h — the recorded history of a run and the checkers that judge it.
 *
 * A history holds, per node, the ordered log of what it delivered (position,
 * origin, timestamp, value, virtual time) and, for the whole run, every
 * value a client submitted (at which node, when). Runtimes append to it;
 * checkers only read it. Every checker fills a verdict that explains itself:
 * on failure, the first divergence — which nodes, which positions, which
 * values — in one readable paragraph. check/ never touches a protocol. */
#ifndef SYN_CHECK_H
#define SYN_CHECK_H

#include "../base/base.h"

#define SYN_MAX_HISTORY_NODES   256
#define SYN_MAX_HISTORY_ENTRIES (4u << 20)   /* deliveries per node */
#define SYN_MAX_SUBMISSIONS     (4u << 20)   /* submissions per run */
#define SYN_MAX_HISTORY_BYTES   (256u << 20) /* value bytes per history */
#define SYN_MAX_EXPLAIN_BYTES   1024

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

typedef struct {
  uint32_t n;                                   /* nodes */
  bool honest[SYN_MAX_HISTORY_NODES];           /* false once a node has had a behaviour */
  syn_delivery_log_t logs[SYN_MAX_HISTORY_NODES];
  syn_submission_t *subs;
  uint32_t nsubs, subs_cap;
  syn_buf_t arena;                              /* all value bytes */
} syn_history_t;

int syn_history_init(syn_history_t *h, uint32_t n);   /* every node honest */
void syn_history_free(syn_history_t *h);
/* Append; -SYN_ELIMIT past the SYN_MAX_HISTORY_* limits. */
int syn_history_deliver(syn_history_t *h, uint32_t node, uint64_t seq, uint32_t origin,
                        uint64_t ts, int64_t at_ns, const uint8_t *value, size_t len);
int syn_history_submit(syn_history_t *h, uint32_t node, int64_t at_ns,
                       const uint8_t *value, size_t len);
/* Forget a node's deliveries (a restart with amnesia starts a new log). */
void syn_history_reset_node(syn_history_t *h, uint32_t node);
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

/* Honest delivery logs are prefixes of one another. */
void syn_check_agreement(const syn_history_t *h, syn_verdict_t *v);
/* Any two values delivered by two honest nodes are delivered in the same
 * relative order by both. */
void syn_check_total_order(const syn_history_t *h, syn_verdict_t *v);
/* Every value an honest node delivered whose origin is honest was
 * submitted at that origin. (A Byzantine origin may multicast anything.) */
void syn_check_validity(const syn_history_t *h, syn_verdict_t *v);
/* No honest node delivers the same (origin, ts, value) twice. */
void syn_check_integrity(const syn_history_t *h, syn_verdict_t *v);
/* Every value submitted at an honest node is delivered by every honest
 * node by max(submitted, heal_at_ns) + bound_ns. Deadlines after end_ns are
 * not judged (the run was too short to tell); end_ns = INT64_MAX says the
 * run went quiet, so nothing more can come and every deadline is judged. */
void syn_check_liveness(const syn_history_t *h, int64_t heal_at_ns, int64_t bound_ns,
                        int64_t end_ns, syn_verdict_t *v);
/* TOM's own rule: each honest log is strictly increasing in (ts, origin). */
void syn_check_ts_order(const syn_history_t *h, syn_verdict_t *v);

#endif
