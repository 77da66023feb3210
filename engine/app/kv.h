/* kv.h — the replicated key-value store (app/kv.c): put, get, delete and
 * compare-and-set over byte-string keys and values, a canonical state
 * digest and a canonical snapshot. syn_kv_app (app.h) is this store behind
 * the generic application interface; the functions below are the same
 * store with its type visible, for the Lua face, benchmarks and tests.
 *
 * ---- operations (what a console user types; what a PBFT client submits) ----
 *
 *   put <key> <value>              → OK
 *   get <key>                      → VALUE <value>   | NOT_FOUND
 *   del <key>                      → OK              | NOT_FOUND
 *   cas <key> <expected> <new>     → OK              | NOT_FOUND | CAS_FAILED <current>
 *
 * Tokens are separated by runs of ASCII whitespace (space, \t, \n, \v, \f,
 * \r); leading and trailing whitespace is ignored. Verbs are lowercase. A
 * key or value is a non-empty token: any bytes but whitespace and the
 * control bytes 0x00-0x1F, 0x7F (UTF-8 is fine). The first word of every
 * result says what happened, so a result is never ambiguous: a stored value
 * "NOT_FOUND" comes back as "VALUE NOT_FOUND".
 *
 * A malformed or refused op changes nothing and returns one of these, the
 * first that applies, checked in this order (so every replica gives the
 * same answer for the same op on the same state):
 *
 *   ERR op too long          op longer than SYN_MAX_APP_OP_BYTES
 *   ERR bad byte             a control byte anywhere in the op
 *   ERR empty op             no tokens
 *   ERR unknown verb         first token is not put/get/del/cas
 *   ERR usage: put <key> <value>            (and likewise for get, del, cas)
 *                            wrong number of tokens for the verb
 *   ERR key too long         key over SYN_MAX_KV_KEY_BYTES
 *   ERR value too long       a value (put's, or cas's expected or new) over
 *                            SYN_MAX_KV_VALUE_BYTES
 *   ERR too many keys        put of a new key with max_keys keys stored
 *   ERR store full           the put or successful cas would take the key +
 *                            value bytes of all entries over max_bytes
 *
 * For cas, NOT_FOUND and CAS_FAILED are decided before the store-full check:
 * a cas that would not apply never reports that the store is full.
 *
 * ---- digest and snapshot ----
 *
 * The snapshot is canonical (entries in ascending bytewise key order, the
 * shorter of two keys first when one is a prefix of the other):
 *
 *   magic "synod/kv" (8 bytes) · version u32 = 1 · count u32 ·
 *   data_bytes u64 (key + value bytes of all entries) ·
 *   count × { key_len u16 · value_len u16 · key · value } ·
 *   check: BLAKE2b-256 of every byte before it
 *
 * all integers big-endian. The state digest is that same BLAKE2b-256 of the
 * snapshot body, computed by streaming without building the snapshot: so
 * digest(s) is exactly the last 32 bytes of snapshot(s), a fetched snapshot
 * can be checked against a checkpoint digest before it is restored, and the
 * digest is as collision-resistant as BLAKE2b over an unambiguous encoding.
 * Cost: O(n log n) for the sort plus O(bytes) of hashing, every call (see
 * `make bench`); it allocates nothing (the sort array is kept sized).
 *
 * syn_kv_restore refuses a snapshot with the first of these that applies,
 * checked in this order, and leaves the store as it was:
 *   -SYN_ETRUNC     shorter than the header
 *   -SYN_EMAGIC     not a KV snapshot
 *   -SYN_EVERSION   a version other than 1
 *   -SYN_ELIMIT     count or data_bytes over this store's limits (before
 *                   anything is allocated)
 *   -SYN_ETRUNC     shorter than the header says
 *   -SYN_ETRAILING  longer than the header says
 *   -SYN_EBADSIG    the check digest does not match the contents (corrupt)
 *   then, entry by entry, the first of:
 *   -SYN_ELIMIT     a key or value over its SYN_MAX_KV_* limit
 *   -SYN_EPARSE     checked but not canonical: keys not strictly ascending,
 *                   an empty or non-token key or value, lengths that do not
 *                   add up (only a buggy or malicious producer makes these)
 *   -SYN_ENOMEM     no memory for the new table
 */
#ifndef SYN_KV_H
#define SYN_KV_H

#include "app.h"

#define SYN_MAX_KV_KEY_BYTES    256            /* one key */
#define SYN_MAX_KV_VALUE_BYTES  1024           /* one value */
#define SYN_MAX_KV_KEYS         (1u << 20)     /* keys in one store */
#define SYN_MAX_KV_BYTES        (64ull << 20)  /* key + value bytes of all entries */

#define SYN_KV_SNAPSHOT_VERSION       1
#define SYN_KV_SNAPSHOT_HEADER_BYTES  24       /* magic, version, count, data_bytes */
#define SYN_KV_ENTRY_HEADER_BYTES     4        /* key_len u16, value_len u16 */
/* The largest snapshot a store with the SYN_MAX_KV_* limits can produce. */
#define SYN_MAX_KV_SNAPSHOT_BYTES \
  (SYN_KV_SNAPSHOT_HEADER_BYTES + (uint64_t)SYN_KV_ENTRY_HEADER_BYTES * SYN_MAX_KV_KEYS + \
   SYN_MAX_KV_BYTES + SYN_DIGEST_BYTES)

typedef struct syn_kv syn_kv_t;

/* Per-store limits, each at most its SYN_MAX_KV_*. Every replica of one
 * cluster must run the same limits (they decide which ops are refused). */
typedef struct {
  uint32_t max_keys;    /* 1 .. SYN_MAX_KV_KEYS */
  uint64_t max_bytes;   /* 1 .. SYN_MAX_KV_BYTES */
} syn_kv_limits_t;

/* Allocates an empty store into *out with limits (NULL: the SYN_MAX_KV_*
 * limits, as syn_kv_app uses). 0, -SYN_EINVAL (a limit 0 or above its
 * maximum) or -SYN_ENOMEM. */
int syn_kv_new(syn_kv_t **out, const syn_kv_limits_t *limits);
/* Frees a store; NULL is allowed. */
void syn_kv_free(syn_kv_t *kv);
/* Executes one op (grammar above); replaces result's contents with the
 * result. 0, or -SYN_ELIMIT (result cannot grow to SYN_MAX_APP_RESULT_BYTES,
 * checked first) or -SYN_ENOMEM, with the store unchanged. */
int syn_kv_execute(syn_kv_t *kv, const uint8_t *op, size_t len, syn_buf_t *result);
/* The canonical state digest (above). */
void syn_kv_digest(const syn_kv_t *kv, uint8_t out[SYN_DIGEST_BYTES]);
/* Replaces out's contents with the canonical snapshot: 0, -SYN_ENOMEM, or
 * -SYN_ELIMIT when out is capped below the snapshot's size. */
int syn_kv_snapshot(const syn_kv_t *kv, syn_buf_t *out);
/* Replaces the store's contents with the snapshot's: 0 or a code above. */
int syn_kv_restore(syn_kv_t *kv, const uint8_t *snap, size_t len);
/* Keys stored. */
uint64_t syn_kv_count(const syn_kv_t *kv);
/* Key + value bytes of all entries (what max_bytes bounds). */
uint64_t syn_kv_bytes(const syn_kv_t *kv);
/* The store's limits. */
syn_kv_limits_t syn_kv_limits(const syn_kv_t *kv);

#endif
