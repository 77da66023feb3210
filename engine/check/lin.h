/* lin.h — the key-value store's client history and its linearizability
 * checker.
 *
 * A client history is a list of operations: which client, what it asked
 * (put, get, del or cas on one key), when it asked (invoke_ns) and, unless
 * the client is still waiting or gave up, what it was told and when
 * (respond_ns). The checker decides whether some total order of the
 * operations exists that (a) respects real time — A precedes B whenever A's
 * response came strictly before B's invocation (equal times count as
 * concurrent) — and (b) makes every recorded result the one a sequential KV
 * store would return. A pending operation (no response) may take effect at
 * any point after its invocation, or never. A result starting with "ERR"
 * means the operation did not take effect; it is ignored.
 *
 * The sequential KV store judged against. Two dialects are accepted, since
 * they differ only where they cannot be confused: the one this checker was
 * specified with, and the one app/kv.h documents (marked "app"):
 *   put k v            -> "OK"
 *   get k              -> "VALUE <v>" (app) | "<v>" | "NOT_FOUND"
 *   del k              -> "OK" (also when absent) | "NOT_FOUND" (app: only when absent)
 *   cas k expected new -> "OK" when the value equals expected (then new is
 *                         set) | "CAS_FAILED <current>" | "NOT_FOUND" (app:
 *                         the key is absent); an absent key never equals
 *                         expected
 * Keys and values are tokens: non-empty, no whitespace (so "VALUE x" is
 * never a bare value). A bare "NOT_FOUND" read (get, or a CAS_FAILED's
 * <current>) is explained by an absent key or by a stored value that is
 * literally "NOT_FOUND" — the only place the dialects would disagree, and
 * the lenient reading is taken. Any result starting with "ERR" is an op
 * that did not take effect. (The names are syn_lin_*, not syn_kv_*: app/kv.h
 * owns those, and both headers may meet in one file.)
 *
 * check/ never touches a protocol, the app, a clock or a Lua state. */
#ifndef SYN_LIN_H
#define SYN_LIN_H

#include "check.h"

#define SYN_MAX_LIN_HISTORY_OPS   (4u << 20)   /* operations per client history */
#define SYN_MAX_LIN_HISTORY_BYTES (256u << 20) /* key, argument and result bytes per history */
#define SYN_MAX_LIN_TEXT_BYTES    (64u << 10)  /* one op text or one result */
#define SYN_MAX_LIN_CLIENT        0x7fffffffu  /* largest client id (fits a verdict's node_a) */
#define SYN_MAX_LIN_OPS_PER_KEY   (1u << 16)   /* a longer per-key sub-history is "could not decide" */
#define SYN_MAX_LIN_CACHE_BYTES   (256u << 20) /* memo of one key's search; past it: "could not decide" */
#define SYN_MAX_LIN_CULPRITS      16           /* operation ids kept in a report */
#define SYN_LIN_DEFAULT_MAX_STEPS (1u << 24)   /* search steps per key when opts leave it 0 */

typedef enum { SYN_LIN_PUT = 1, SYN_LIN_GET, SYN_LIN_DEL, SYN_LIN_CAS } syn_lin_kind_t;

/* A parsed op text; key/a/b view the text parsed. a: put's value or cas's
 * expected; b: cas's new value. Unused views are NULL with length 0. */
typedef struct {
  syn_lin_kind_t kind;
  const char *key, *a, *b;
  size_t key_len, a_len, b_len;
} syn_lin_cmd_t;

typedef struct {
  uint32_t client;
  uint8_t kind;                 /* syn_lin_kind_t */
  bool responded;
  int64_t invoke_ns;
  int64_t respond_ns;           /* -1 while pending */
  uint32_t key_off, key_len;    /* bytes in the history's arena */
  uint32_t a_off, a_len, b_off, b_len;
  uint32_t res_off, res_len;    /* the result text, once responded */
} syn_lin_op_t;

typedef struct {
  syn_lin_op_t *ops;            /* op id = index, 0-based */
  uint32_t count, cap;
  syn_buf_t arena;
} syn_lin_history_t;

/* Parses "put k v" | "get k" | "del k" | "cas k expected new" (tokens
 * separated by runs of ASCII whitespace — space, \t \n \v \f \r, as app/kv.c
 * splits them — lowercase verbs, exact arity).
 * -SYN_EPARSE on anything else, -SYN_ELIMIT past SYN_MAX_LIN_TEXT_BYTES. */
int syn_lin_parse(const char *text, size_t len, syn_lin_cmd_t *out);
/* The name of a kind ("put" …); "?" for anything else. */
const char *syn_lin_kind_name(int kind);

void syn_lin_history_init(syn_lin_history_t *h);
void syn_lin_history_free(syn_lin_history_t *h);
/* Records an invocation; *out_id gets its op id. -SYN_EINVAL for a client
 * above SYN_MAX_LIN_CLIENT, a negative time or a malformed cmd; -SYN_ELIMIT
 * past SYN_MAX_LIN_HISTORY_OPS / SYN_MAX_LIN_HISTORY_BYTES (checked before
 * anything grows). */
int syn_lin_history_invoke(syn_lin_history_t *h, uint32_t client, const syn_lin_cmd_t *cmd,
                           int64_t invoke_ns, uint32_t *out_id);
/* Records op id's response. -SYN_EINVAL for an unknown id or a response
 * before the invocation, -SYN_ESTATE when it already has one, -SYN_ELIMIT
 * past SYN_MAX_LIN_TEXT_BYTES / SYN_MAX_LIN_HISTORY_BYTES. */
int syn_lin_history_respond(syn_lin_history_t *h, uint32_t id, const uint8_t *result, size_t len,
                            int64_t respond_ns);
static inline const uint8_t *syn_lin_history_bytes(const syn_lin_history_t *h, uint32_t off) {
  return h->arena.data + off;
}

/* Appends the clients' KV history of h (check.h's replicas-and-clients
 * shape) to out, which the caller initialised: one op per submission at a
 * client node, in recorded order (client = the client's node id, invoke_ns
 * = the submission time, or the time the client's previous op was answered
 * if that is later: a client has one op outstanding and queues the rest), answered by the response the client logged with
 * seq k for its k-th submission (the earliest when it logged several;
 * respond_ns = its at_ns, result = its value); an op without one is
 * pending. A Byzantine client's ops are all pending (its reports are not
 * trusted, its ops may still have taken effect). Submissions at replicas are
 * left out. -SYN_EPARSE when a client's op text is not a KV op, -SYN_EINVAL
 * for a negative time or a response before its invocation, -SYN_ELIMIT past
 * the SYN_MAX_LIN_* limits, -SYN_ENOMEM; on an error out holds the ops
 * appended so far (the caller still frees it) and, when why is not NULL,
 * why[cap] says which submission failed and how ("submission 3 at client 5:
 * "bogus a" is not a key-value op …"). Implemented in check.c. */
int syn_history_to_lin(const syn_history_t *h, syn_lin_history_t *out, char *why, size_t cap);

typedef enum {
  SYN_LIN_OK = 0,        /* every key's sub-history is linearizable */
  SYN_LIN_VIOLATION,     /* some key's is not (proven) */
  SYN_LIN_UNDECIDED,     /* no violation found, but some key ran out of budget or room */
} syn_lin_outcome_t;

typedef struct {
  uint64_t max_steps;    /* search steps per key (and again for explaining a violation); 0 = default */
} syn_lin_opts_t;

typedef struct {
  syn_lin_outcome_t outcome;
  uint32_t key_op;       /* an op on the key the verdict names; UINT32_MAX when none */
  uint32_t culprits[SYN_MAX_LIN_CULPRITS];  /* op ids that cannot be ordered together */
  uint32_t nculprits;    /* ids kept (<= SYN_MAX_LIN_CULPRITS) */
  uint32_t culprits_total;                  /* size of the whole set found */
  uint32_t keys, keys_failed, keys_undecided;
  uint64_t steps;        /* search steps spent, all keys, explanation included */
} syn_lin_report_t;

/* Checks h key by key (keys in byte order) and fills v with checker
 * "linearizability". ok only when outcome is SYN_LIN_OK. On a violation
 * (the first failing key in byte order) the explanation names the key and a
 * small set of operations that cannot be ordered, node_a/node_b are the
 * clients of the first two of them and pos_a/pos_b their op ids + 1
 * (1-based, as in Lua's h:ops()); -1 where there is no second. "Could not
 * decide" is a failed verdict whose explanation starts "could not decide",
 * with every node/pos -1. report may be NULL. opts may be NULL (defaults).
 * Deterministic: the same history gives the same verdict, byte for byte. */
void syn_check_linearizable(const syn_lin_history_t *h, const syn_lin_opts_t *opts,
                            syn_verdict_t *v, syn_lin_report_t *report);

#endif
