/* app.h — the one interface every replicated application implements, and
 * the registry of built-in applications.
 *
 * An application is the deterministic state machine that sits above an
 * ordering protocol: the protocol decides the order of operations, the
 * runtime (node/) hands each committed operation to execute() in that
 * order, and every honest replica that executes the same operations from
 * the same state reaches the same state and returns the same results. PBFT
 * also asks the application for a state digest at every checkpoint and for
 * a snapshot (and a restore) for state transfer.
 *
 * Rules every application keeps:
 * - execute() is a pure function of (state, op): no clock, file, socket,
 *   random number, pointer value or hash-table order reaches a result, a
 *   digest or a snapshot. An operation that is malformed or over a limit
 *   is not a failure of the replica: it produces a result that says so
 *   (every replica produces the same one) and leaves the state unchanged.
 *   A non-zero return means the replica itself failed (out of memory, a
 *   result buffer too small); the state is then unchanged too, and the
 *   runtime must retry that same op or stop the replica — never skip it,
 *   or this replica's state leaves the others'.
 * - digest() is canonical: two states with the same contents have the same
 *   digest whatever order they were built in, and it is collision-resistant
 *   (a Byzantine client choosing keys and values cannot make two different
 *   states share one digest) because checkpoints and state transfer trust it.
 * - snapshot() is canonical and self-checking; restore() validates
 *   everything before it touches the state, rejects a bad snapshot with a
 *   distinct -SYN_E* code and leaves the state as it was; on success the
 *   restored state's digest equals the original's.
 * - Every size an application accepts is bounded by a named SYN_MAX_*
 *   limit checked before memory is allocated for it.
 *
 * Why a table of function pointers (like syn_proto_t) rather than one
 * struct per app: the node and PBFT pick the application by name from a
 * role script and never need to know which one it is. Why new/free instead
 * of a caller-allocated block (as protocols have): an application's state
 * grows with the data it holds (a KV store of 100k keys), so it cannot be
 * one block sized up front; its limits bound it instead.
 *
 * Never: this header knows nothing of protocols, the network or Lua. */
#ifndef SYN_APP_H
#define SYN_APP_H

#include "../base/base.h"
#include "../crypto/crypto.h"   /* SYN_DIGEST_BYTES */

#define SYN_MAX_APP_OP_BYTES      4096   /* one operation (= SYN_MAX_OP_BYTES of proto.h) */
#define SYN_MAX_APP_RESULT_BYTES  4096   /* one result; execute's result buffer holds this much */
#define SYN_MAX_APPS              8      /* built-in applications in the registry */

typedef struct syn_app {
  const char *name;   /* "kv"; the name role scripts and the registry use */
  /* Allocates an empty state into *state: 0 or -SYN_ENOMEM. */
  int (*new)(void **state);
  /* Frees a state from new(); NULL is allowed. */
  void (*free)(void *state);
  /* Executes one operation (len <= any size; over SYN_MAX_APP_OP_BYTES is a
   * result, not an error). Replaces result's contents with the result
   * (at most SYN_MAX_APP_RESULT_BYTES). Returns 0 — also for a malformed or
   * refused op — or -SYN_ENOMEM / -SYN_ELIMIT (result buffer capped below
   * the result) with the state unchanged. */
  int (*execute)(void *state, const uint8_t *op, size_t len, syn_buf_t *result);
  /* The canonical state digest (checkpoints). Cannot fail, never allocates. */
  void (*digest)(const void *state, uint8_t out[SYN_DIGEST_BYTES]);
  /* Replaces out's contents with the canonical snapshot: 0 or -SYN_ENOMEM
   * (or -SYN_ELIMIT if out is capped below the snapshot's size). */
  int (*snapshot)(const void *state, syn_buf_t *out);
  /* Replaces the state with the snapshot's contents: 0, or a -SYN_E* code
   * saying why the snapshot was refused, with the state unchanged. */
  int (*restore)(void *state, const uint8_t *snap, size_t len);
  /* Number of entries the state holds (status and tests). */
  uint64_t (*count)(const void *state);
} syn_app_t;

/* The built-in application called name, or NULL. */
const syn_app_t *syn_app_find(const char *name);
/* Names of all built-in applications, NULL-terminated. */
const char *const *syn_app_names(void);

/* Applications. */
extern const syn_app_t syn_kv_app;   /* app/kv.c: put, get, del, cas */

#endif
