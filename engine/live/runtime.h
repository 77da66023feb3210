/* runtime.h — the live runtime: one process hosts one member node (and, for
 * protocols with a client role, that member's clients) and drives them with
 * libuv: wall-clock timers, TCP through live/transport, and submissions from
 * the console, the HTTP API or the REPL. The nodes are the same syn_node_t
 * the simulator runs; nothing in proto/ knows which runtime it is under.
 *
 * Ids: members 0..n-1, then clients_per_node clients per member, member i's
 * being n + i·C .. n + i·C + C-1. A member's clients sign with the member's
 * own key (they are its clients; the signature's domain separation by
 * message type keeps a request from ever passing for a vote), so keys.pub
 * lists exactly the n members.
 *
 * Never: a protocol rule, or Lua (the REPL's Lua state lives in live/repl). */
#ifndef SYN_RUNTIME_H
#define SYN_RUNTIME_H

#include <uv.h>

#include "../node/node.h"
#include "transport.h"

#define SYN_MAX_LIVE_CLIENTS   64          /* client nodes one process hosts */
#define SYN_MAX_LIVE_PENDING   4096        /* submissions waiting for their result, per process */
#define SYN_MAX_LIVE_LOCAL_BYTES (64u << 20)  /* frames queued between nodes of one process */
#define SYN_MAX_LIVE_DELAYED   4096        /* frames a behaviour holds back (delay) */
#define SYN_MAX_LIVE_LOG       1024        /* recent executed entries kept for `log` */
#define SYN_LIVE_LATENCY_BUCKETS 16        /* commit latency histogram: 1 ms · 2^k */

typedef struct syn_live syn_live_t;

typedef struct {
  const char *proto;                 /* "pbft" or "tom" */
  uint32_t id, n;                    /* this member, of n */
  uint32_t clients_per_node;         /* 0: the protocol's default (1 when it has a client role) */
  const char *keys_dir;              /* NULL: development keys derived from seed 0, with a warning */
  const char *data_dir;              /* created 0700 */
  const char *listen_host;           /* NULL: 127.0.0.1 */
  uint16_t port;
  const char *bootstrap_host;        /* NULL: none */
  uint16_t bootstrap_port;
  const char *params[SYN_MAX_PARAMS];   /* "name=value" overrides, NULL-terminated */
  /* tom: the words workload */
  uint64_t words;                    /* words this node multicasts (0: until stopped) */
  double words_per_sec;              /* Poisson rate */
  bool quiet;                        /* no progress lines on stdout */
} syn_live_cfg_t;

/* A submission's outcome: rc 0 with the result (for tom: the delivered
 * word), seq (the protocol's slot or position) and latency; or rc < 0. */
typedef void (*syn_live_done_fn)(void *ctx, int rc, uint64_t seq, const uint8_t *result, size_t len,
                                 int64_t latency_ns);

/* One executed (pbft) or delivered (tom) entry, for `log`. */
typedef struct {
  uint64_t seq, ts;
  uint32_t origin;
  int64_t at_ns;
  uint16_t len;
  char value[120];                   /* cut to fit; len is the full length */
} syn_live_entry_t;

/* Creates the nodes, the transport and the data directory. On failure
 * err holds a sentence naming what was wrong. */
int syn_live_new(syn_live_t **out, uv_loop_t *loop, const syn_live_cfg_t *cfg, char *err, size_t errlen);
/* Replays the data directory's records into the nodes, then starts the
 * protocols and the workload. A record the protocol cannot use is an error
 * (err says which): the directory is never repaired silently. */
int syn_live_start(syn_live_t *lv, char *err, size_t errlen);
/* 1 once the store failed (the node stopped itself), else 0: the process's exit status. */
int syn_live_exit_status(const syn_live_t *lv);
/* Stops: closes every handle (the loop then ends), flushes files. */
void syn_live_stop(syn_live_t *lv);
void syn_live_free(syn_live_t *lv);
/* fn runs once when the runtime stops (a signal, `quit`): the services
 * mounted on it (console, HTTP, REPL) close their handles there. */
void syn_live_on_stop(syn_live_t *lv, void (*fn)(void *ctx), void *ctx);

/* Submits op through the least busy local client (tom: multicasts it);
 * done runs once with the outcome (never when the call fails). -SYN_ELIMIT
 * past SYN_MAX_LIVE_PENDING or when the protocol refused it (see
 * syn_live_refusal),
 * -SYN_ESTATE when stopping, -SYN_EINVAL for an op over SYN_MAX_OP_BYTES. */
int syn_live_submit(syn_live_t *lv, const uint8_t *op, size_t len, syn_live_done_fn done, void *ctx);
/* After a submission the protocol refused (-SYN_ELIMIT): its reason ("queue_full", "op_too_long" …). */
const char *syn_live_refusal(const syn_live_t *lv);

/* Inspection (console, HTTP, REPL). */
syn_node_t *syn_live_node(syn_live_t *lv);           /* the member node */
const syn_live_cfg_t *syn_live_cfg(const syn_live_t *lv);
syn_transport_t *syn_live_transport(syn_live_t *lv);
uv_loop_t *syn_live_loop(syn_live_t *lv);
const char *syn_live_data_dir(const syn_live_t *lv);
/* Status: the protocol's fields, then the runtime's (uptime_ms, peers_connected,
 * submitted, completed, pending, commits …). */
void syn_live_status(syn_live_t *lv, syn_status_fn fn, void *ctx);
/* The last k (≤ SYN_MAX_LIVE_LOG) entries, oldest first; returns how many. */
uint32_t syn_live_log(const syn_live_t *lv, uint32_t k, syn_live_entry_t *out);
/* Commit latency histogram: counts of latencies < 1 ms · 2^b, the last bucket open. */
const uint64_t *syn_live_latency(const syn_live_t *lv, uint64_t *sum_ns, uint64_t *count);
/* The runtime's own drop counters, by name. */
void syn_live_drops(const syn_live_t *lv, syn_status_fn fn, void *ctx);

#endif
