/* store.h — the durable record store of a live node: one SQLite database,
 * DIR/synod.db, in WAL mode with synchronous=FULL, holding opaque records
 * addressed by (kind, key).
 *
 * It knows nothing about protocols. A protocol emits persist records
 * (kind, key) → bytes; the runtime puts them here and calls syn_store_sync
 * before it sends any message that depends on them; on restart it reads
 * them back with syn_store_each, in (kind, key) order, and hands them to
 * the protocol.
 *
 * The promise: a record is durable once syn_store_sync has returned 0
 * after its put (the commit fsyncs the WAL). Nothing else is promised: a
 * put that was not synced may be gone after a crash, and it IS gone after
 * syn_store_close (an unsynced transaction is rolled back, so a clean stop
 * and a SIGKILL lose exactly the same records, and a runtime that forgets
 * to sync before sending fails in every test, not only after a crash; a
 * runtime that means to keep them calls syn_store_sync before closing).
 *
 * The data directory is the node's: created 0700 when missing (parents
 * too), refused when group or others can write it. A meta row records the
 * format version, cluster digest, node id, protocol name and creation time;
 * opening a directory written for another node, cluster, protocol or format
 * is an error naming both sides, and a file that is not a synod store or
 * fails PRAGMA quick_check is an error ("… is corrupt: …"): never repaired.
 * The database is held in SQLite's exclusive locking mode, so a second
 * store (in this process or another) on the same directory is refused while
 * the first is open; the lock dies with its process.
 *
 * A failed write (SQLITE_FULL, SQLITE_IOERR, …) returns -SYN_EIO with a
 * clear text, rolls back what was unsynced, and leaves the store refusing
 * every later put, forget and sync: the node can no longer promise
 * durability and must stop.
 *
 * One store is used by one thread. Error texts: syn_store_error(st) for a
 * store's last failure, syn_store_error(NULL) for the last failed open (a
 * static buffer, like syn_keys_error: not thread-safe).
 *
 * Never: interprets a record, reads a clock except to time a sync, or
 * repairs a database. */
#ifndef SYN_STORE_H
#define SYN_STORE_H

#include "../base/base.h"
#include "../crypto/crypto.h"

#define SYN_STORE_FILE            "synod.db"
#define SYN_STORE_FORMAT          1                    /* the meta row's format version */
#define SYN_MAX_STORE_RECORD_BYTES (16u * 1024 * 1024)  /* one record (a PBFT checkpoint snapshot: a few MiB) */
#define SYN_MAX_STORE_KEY         INT64_MAX            /* keys are SQLite integers: 0 .. 2^63-1 */
#define SYN_MAX_STORE_PROTO_BYTES 32                   /* protocol name in the meta row */
#define SYN_STORE_BUSY_TIMEOUT_MS 500                  /* wait for a store closing in another process */
#define SYN_STORE_WAL_KEEP_BYTES  (4 * 1024 * 1024)    /* the WAL is truncated to this after a checkpoint */

typedef struct syn_store syn_store_t;

typedef struct {
  uint64_t puts;           /* syn_store_put calls that succeeded */
  uint64_t forgets;        /* syn_store_forget calls that succeeded */
  uint64_t syncs;          /* commits made by syn_store_sync (no-op calls not counted) */
  uint64_t put_bytes;      /* record bytes passed to successful puts */
  uint64_t pending;        /* puts and forgets since the last sync (not yet durable) */
  int64_t last_sync_ns;    /* wall time of the last commit, fsync included */
  bool failed;             /* a write failed: the store refuses writes */
} syn_store_stats_t;

/* Opens (creating when missing) the store in dir for this node. On error
 * *out is untouched and syn_store_error(NULL) says why: -SYN_EINVAL (bad
 * argument), -SYN_EIO (directory or file unusable, corrupt, not a synod
 * store), -SYN_ESTATE (another node's, cluster's or protocol's data, or in
 * use by another store), -SYN_EVERSION (another format), -SYN_ENOMEM. */
int syn_store_open(syn_store_t **out, const char *dir, const uint8_t cluster[SYN_DIGEST_BYTES],
                   uint32_t node_id, const char *proto_name);

/* Rolls back anything not synced, then closes. st may be NULL. */
void syn_store_close(syn_store_t *st);

/* Inserts or replaces the record (kind, key), inside the open transaction
 * (begun here when none is). -SYN_ETOOBIG over SYN_MAX_STORE_RECORD_BYTES,
 * -SYN_EINVAL for a key over SYN_MAX_STORE_KEY (both checked first, the
 * store stays usable), -SYN_ESTATE inside syn_store_each, -SYN_EIO. */
int syn_store_put(syn_store_t *st, uint32_t kind, uint64_t key, const uint8_t *data, size_t len);

/* Deletes every record of kind whose key is below `below` (garbage after a
 * stable checkpoint), inside the open transaction. -SYN_ESTATE, -SYN_EIO. */
int syn_store_forget(syn_store_t *st, uint32_t kind, uint64_t below);

/* Commits the open transaction: every put and forget before it is durable
 * when this returns 0. A no-op when none is open. -SYN_ESTATE, -SYN_EIO. */
int syn_store_sync(syn_store_t *st);

/* Calls fn for every record in (kind, key) order, unsynced ones included;
 * data is valid during the call only, and fn may not write to the store.
 * fn returning non-zero stops the walk and is returned. -SYN_EIO for a
 * record that is not what this store writes (a tampered file). */
typedef int (*syn_store_each_fn)(void *ctx, uint32_t kind, uint64_t key, const uint8_t *data, size_t len);
int syn_store_each(syn_store_t *st, syn_store_each_fn fn, void *ctx);

void syn_store_stats(const syn_store_t *st, syn_store_stats_t *out);

/* The text of st's last failure, or with st NULL of the last failed open.
 * Never NULL ("" when nothing failed). */
const char *syn_store_error(const syn_store_t *st);

#endif
