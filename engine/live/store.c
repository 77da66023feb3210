/* store.c — the durable record store of a live node (store.h): the data
 * directory, one SQLite database in it, and the meta row that says whose
 * it is.
 *
 * Owns: creating and checking the directory, the schema, the one write
 * transaction that puts and forgets accumulate in until a sync commits it,
 * and turning every SQLite failure into -SYN_E* plus one sentence.
 *
 * The database (a table per concern, both STRICT so SQLite itself refuses
 * a value of the wrong type):
 *   meta(one = 1, format, cluster hex, node, proto, created_unix_s)
 *   records(kind, key, data) keyed by (kind, key), WITHOUT ROWID so the
 *   primary key is the b-tree order that syn_store_each walks.
 * The header's application id marks the file as synod's ("SYND").
 *
 * Why these SQLite settings:
 * - journal_mode=WAL with synchronous=FULL: each COMMIT appends to the WAL
 *   and fsyncs it before returning, so a sync that returned is durable
 *   across a crash or power loss (NORMAL would fsync only at checkpoints).
 *   A crash before the commit leaves uncommitted WAL frames (a large batch
 *   spills pages there early) that recovery ignores.
 * - locking_mode=EXCLUSIVE, set before the first access: the connection
 *   takes the database's lock on first use and never releases it, so two
 *   nodes can never share one data directory; the wal-index lives in heap
 *   memory (no -shm file). The kernel drops the lock when the process dies.
 * - After SQLITE_FULL, SQLITE_IOERR and friends SQLite may already have
 *   rolled the transaction back (sqlite3_get_autocommit tells): we roll
 *   back whatever is left and refuse further writes rather than guess
 *   which puts survived.
 *
 * Never: interprets a record, retries a failed write, or repairs a file. */
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define STORE_APP_ID   0x53594e44   /* "SYND" in the database header */
#define ERR_CAP        (2 * PATH_MAX + 256)
#define CLUSTER_HEX    (2 * SYN_DIGEST_BYTES)
#define CLUSTER_SHORT  12           /* hex digits shown in a mismatch, unless they tie */

struct syn_store {
  sqlite3 *db;
  sqlite3_stmt *put, *forget, *forget_all, *each, *begin, *commit;
  bool in_txn;             /* BEGIN done, COMMIT not yet */
  bool walking;            /* inside syn_store_each's callback */
  syn_store_stats_t stats;
  char dir[PATH_MAX];
  char path[PATH_MAX];
  char err[ERR_CAP];
  char fatal[ERR_CAP];     /* the write failure that stopped the store */
};

/* ---- error texts ---- */

static char open_error[ERR_CAP];

const char *syn_store_error(const syn_store_t *st) { return st ? st->err : open_error; }

__attribute__((format(printf, 3, 4)))
static int say(char *buf, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, ERR_CAP, fmt, ap);
  va_end(ap);
  return rc;
}

/* " (No space left on device)" when SQLite saw a system error, else "". */
static const char *sys_detail(sqlite3 *db, char *out, size_t cap) {
  int e = sqlite3_system_errno(db);
  if (e == 0) { out[0] = '\0'; return out; }
  snprintf(out, cap, " (%s)", strerror(e));
  return out;
}

/* A failure while opening: the most useful sentence for each family. */
static int open_failed(const syn_store_t *st, int src, const char *doing) {
  int prim = src & 0xff;
  char sys[96];
  const char *msg = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(src);
  if (st->db) sys_detail(st->db, sys, sizeof sys); else sys[0] = '\0';
  if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
    return say(open_error, -SYN_ESTATE, "data directory %s is in use: another open store holds the lock on %s",
               st->dir, st->path);
  if (prim == SQLITE_NOTADB || prim == SQLITE_CORRUPT)
    return say(open_error, -SYN_EIO, "%s is corrupt: %s", st->path, msg);
  if (prim == SQLITE_NOMEM) return say(open_error, -SYN_ENOMEM, "%s: out of memory while %s", st->path, doing);
  if (prim == SQLITE_FULL)
    return say(open_error, -SYN_EIO, "%s: disk full while %s: %s%s", st->path, doing, msg, sys);
  return say(open_error, -SYN_EIO, "%s: cannot %s: %s%s", st->path, doing, msg, sys);
}

/* A write failed: roll back what was unsynced and refuse from now on. The
 * message is taken before the rollback resets SQLite's error state. */
static int write_failed(syn_store_t *st, int src, const char *doing) {
  int prim = src & 0xff;
  char sys[96];
  const char *what = prim == SQLITE_FULL ? "disk full" : prim == SQLITE_NOMEM ? "out of memory"
                   : src == SQLITE_IOERR_WRITE ? "I/O error (a write failed)"
                   : src == SQLITE_IOERR_FSYNC ? "I/O error (fsync failed)"
                   : src == SQLITE_IOERR_TRUNCATE ? "I/O error (a truncate failed)"
                   : prim == SQLITE_IOERR ? "I/O error" : "database error";
  say(st->err, 0, "data directory %s: %s while %s: %s%s; the store refuses further writes",
      st->dir, what, doing, sqlite3_errmsg(st->db), sys_detail(st->db, sys, sizeof sys));
  if (!sqlite3_get_autocommit(st->db)) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
  st->in_txn = false;
  st->stats.failed = true;
  st->stats.pending = 0;
  memcpy(st->fatal, st->err, sizeof st->fatal);
  return prim == SQLITE_NOMEM ? -SYN_ENOMEM : -SYN_EIO;
}

/* ---- the directory ---- */

/* mkdir -p, each missing component 0700. */
static int make_dir(const char *dir) {
  char buf[PATH_MAX];
  size_t n = strlen(dir);
  memcpy(buf, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    char c = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
      if (c == '\0') return say(open_error, -SYN_EIO, "cannot create data directory %s: %s", dir, strerror(errno));
      return say(open_error, -SYN_EIO, "cannot create data directory %s: %s: %s", dir, buf, strerror(errno));
    }
    buf[i] = c;
  }
  struct stat sb;
  if (stat(dir, &sb) != 0) return say(open_error, -SYN_EIO, "data directory %s: %s", dir, strerror(errno));
  if (!S_ISDIR(sb.st_mode)) return say(open_error, -SYN_EIO, "data directory %s is not a directory", dir);
  if (sb.st_mode & (S_IWGRP | S_IWOTH))
    return say(open_error, -SYN_EIO, "data directory %s can be written by group or others (mode %04o): "
               "a node's data directory must be its own (chmod 700 it)", dir, (unsigned)(sb.st_mode & 07777));
  if (access(dir, W_OK | X_OK) != 0)
    return say(open_error, -SYN_EIO, "data directory %s is not writable: %s", dir, strerror(errno));
  return 0;
}

/* ---- small SQLite helpers ---- */

/* Runs one statement; copies the first column of its first row (if any)
 * into out. Returns the SQLite code. */
static int query_text(sqlite3 *db, const char *sql, char *out, size_t cap) {
  sqlite3_stmt *s = NULL;
  out[0] = '\0';
  int src = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
  if (src != SQLITE_OK) return src;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(s, 0);
    if (out[0] == '\0' && t) snprintf(out, cap, "%s", (const char *)t);
  }
  sqlite3_finalize(s);
  return src == SQLITE_DONE ? SQLITE_OK : src;
}

static int query_int(sqlite3 *db, const char *sql, int64_t *out) {
  char text[32];
  int src = query_text(db, sql, text, sizeof text);
  if (src == SQLITE_OK) *out = strtoll(text, NULL, 10);
  return src;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * SYN_NS_PER_S + ts.tv_nsec;
}

/* "3fa1c2d4e5f6…", or all of it when the short forms of a and b tie. */
static void cluster_label(const char *hex, const char *other, char *out, size_t cap) {
  if (strncmp(hex, other, CLUSTER_SHORT) == 0 && strcmp(hex, other) != 0) snprintf(out, cap, "%s", hex);
  else snprintf(out, cap, "%.*s…", CLUSTER_SHORT, hex);
}

static bool proto_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > SYN_MAX_STORE_PROTO_BYTES) return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  }
  return true;
}

/* ---- opening ---- */

static const char SCHEMA_SQL[] =
  "CREATE TABLE meta (one INTEGER PRIMARY KEY CHECK (one = 1), format INTEGER NOT NULL,"
  " cluster TEXT NOT NULL, node INTEGER NOT NULL, proto TEXT NOT NULL, created_unix_s INTEGER NOT NULL) STRICT;"
  "CREATE TABLE records (kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 4294967295),"
  " key INTEGER NOT NULL CHECK (key >= 0), data BLOB NOT NULL, PRIMARY KEY (kind, key)) STRICT, WITHOUT ROWID;";

/* A fresh database: schema, application id and meta row, one transaction. */
static int create_schema(syn_store_t *st, const char *cluster_hex, uint32_t node_id, const char *proto) {
  char sql[sizeof SCHEMA_SQL + 64];
  snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; PRAGMA application_id = %d; %s", (int)STORE_APP_ID, SCHEMA_SQL);
  int src = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
  if (src != SQLITE_OK) goto fail;
  sqlite3_stmt *s = NULL;
  src = sqlite3_prepare_v2(st->db, "INSERT INTO meta VALUES (1, ?, ?, ?, ?, ?)", -1, &s, NULL);
  if (src != SQLITE_OK) goto fail;
  sqlite3_bind_int64(s, 1, SYN_STORE_FORMAT);
  sqlite3_bind_text(s, 2, cluster_hex, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 3, node_id);
  sqlite3_bind_text(s, 4, proto, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
  src = sqlite3_step(s);
  sqlite3_finalize(s);
  if (src != SQLITE_DONE) goto fail;
  src = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
  if (src != SQLITE_OK) goto fail;
  return 0;
fail:;
  int rc = open_failed(st, src, "create the store");
  if (!sqlite3_get_autocommit(st->db)) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* An existing database: its meta row must name this node, cluster, protocol
 * and format. */
static int check_meta(syn_store_t *st, const char *cluster_hex, uint32_t node_id, const char *proto) {
  sqlite3_stmt *s = NULL;
  int src = sqlite3_prepare_v2(st->db, "SELECT format, cluster, node, proto FROM meta", -1, &s, NULL);
  if (src != SQLITE_OK) {
    if ((src & 0xff) == SQLITE_ERROR)   /* no such table: a synod header on something else */
      return say(open_error, -SYN_EIO, "%s is corrupt: no meta table (%s)", st->path, sqlite3_errmsg(st->db));
    return open_failed(st, src, "read the meta row");
  }
  int rc = 0, rows = 0;
  int64_t format = 0, node = 0;
  char hex[CLUSTER_HEX + 1] = "", name[SYN_MAX_STORE_PROTO_BYTES + 1] = "";
  bool shape_ok = true;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    rows++;
    format = sqlite3_column_int64(s, 0);
    node = sqlite3_column_int64(s, 2);
    const char *c = (const char *)sqlite3_column_text(s, 1);
    const char *p = (const char *)sqlite3_column_text(s, 3);
    if (!c || strlen(c) != CLUSTER_HEX || !p || !proto_name_ok(p) || node < 0 || node > UINT32_MAX) {
      shape_ok = false;
      continue;
    }
    memcpy(hex, c, CLUSTER_HEX + 1);
    memcpy(name, p, strlen(p) + 1);
  }
  sqlite3_finalize(s);
  if (src != SQLITE_DONE) return open_failed(st, src, "read the meta row");
  if (rows != 1 || !shape_ok)
    return say(open_error, -SYN_EIO, "%s is corrupt: the meta row is missing or malformed", st->path);
  if (format != SYN_STORE_FORMAT)
    return say(open_error, -SYN_EVERSION, "%s has store format %lld; this synod reads format %d",
               st->path, (long long)format, SYN_STORE_FORMAT);
  if ((uint32_t)node != node_id || strcmp(hex, cluster_hex) != 0 || strcmp(name, proto) != 0) {
    char theirs[CLUSTER_HEX + 8], ours[CLUSTER_HEX + 8];
    cluster_label(hex, cluster_hex, theirs, sizeof theirs);
    cluster_label(cluster_hex, hex, ours, sizeof ours);
    rc = say(open_error, -SYN_ESTATE, "data directory %s belongs to node %u of cluster %s/%s, not node %u of cluster %s/%s",
             st->dir, (unsigned)node, theirs, name, (unsigned)node_id, ours, proto);
  }
  return rc;
}

static int prepare(syn_store_t *st, sqlite3_stmt **out, const char *sql) {
  int src = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
  return src == SQLITE_OK ? 0 : open_failed(st, src, "prepare its statements");
}

static void finalize_all(syn_store_t *st) {
  sqlite3_stmt **all[] = { &st->put, &st->forget, &st->forget_all, &st->each, &st->begin, &st->commit };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    sqlite3_finalize(*all[i]);
    *all[i] = NULL;
  }
}

int syn_store_open(syn_store_t **out, const char *dir, const uint8_t cluster[SYN_DIGEST_BYTES],
                   uint32_t node_id, const char *proto_name) {
  SYN_ASSERT(out != NULL && dir != NULL && cluster != NULL && proto_name != NULL);
  open_error[0] = '\0';
  if (!proto_name_ok(proto_name))
    return say(open_error, -SYN_EINVAL, "protocol name \"%.40s\" must be 1..%d letters, digits, '-' or '_'",
               proto_name, SYN_MAX_STORE_PROTO_BYTES);
  size_t dlen = strlen(dir);
  if (dlen == 0) return say(open_error, -SYN_EINVAL, "data directory: empty path");
  if (dlen + 1 + sizeof SYN_STORE_FILE > PATH_MAX)
    return say(open_error, -SYN_EINVAL, "data directory %.80s…: path too long", dir);
  int rc = make_dir(dir);
  if (rc) return rc;

  syn_store_t *st = calloc(1, sizeof *st);
  if (!st) return say(open_error, -SYN_ENOMEM, "data directory %s: out of memory", dir);
  memcpy(st->dir, dir, dlen + 1);
  snprintf(st->path, sizeof st->path, "%s/%s", dir, SYN_STORE_FILE);
  char cluster_hex[CLUSTER_HEX + 1];
  syn_hex(cluster, SYN_DIGEST_BYTES, cluster_hex);

  int src = sqlite3_open_v2(st->path, &st->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX,
                            NULL);
  if (src != SQLITE_OK) { rc = open_failed(st, src, "open"); goto fail; }
  sqlite3_extended_result_codes(st->db, 1);
  sqlite3_busy_timeout(st->db, SYN_STORE_BUSY_TIMEOUT_MS);

  char text[256];
  /* Exclusive before the first access (see the top of this file). */
  src = query_text(st->db, "PRAGMA locking_mode = EXCLUSIVE", text, sizeof text);
  if (src != SQLITE_OK) { rc = open_failed(st, src, "lock it"); goto fail; }
  src = query_text(st->db, "PRAGMA journal_mode = WAL", text, sizeof text);
  if (src != SQLITE_OK) { rc = open_failed(st, src, "switch it to WAL mode"); goto fail; }
  if (strcmp(text, "wal") != 0) {
    rc = say(open_error, -SYN_EIO, "%s: cannot switch to WAL mode (journal mode stays \"%s\")", st->path, text);
    goto fail;
  }
  int64_t v = -1;
  src = sqlite3_exec(st->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
  if (src == SQLITE_OK) src = query_int(st->db, "PRAGMA synchronous", &v);
  if (src != SQLITE_OK) { rc = open_failed(st, src, "set synchronous=FULL"); goto fail; }
  SYN_ASSERT(v == 2);   /* FULL */
  /* The WAL is reused from its start after each checkpoint but never
   * shrinks by itself: one large batch would keep it large for good. */
  char limit[64];
  snprintf(limit, sizeof limit, "PRAGMA journal_size_limit = %lld", (long long)SYN_STORE_WAL_KEEP_BYTES);
  src = query_text(st->db, limit, text, sizeof text);
  if (src != SQLITE_OK) { rc = open_failed(st, src, "set journal_size_limit"); goto fail; }

  /* quick_check answers "ok", or one row per problem (the first is kept). */
  src = query_text(st->db, "PRAGMA quick_check", text, sizeof text);
  if (src != SQLITE_OK) { rc = open_failed(st, src, "check it"); goto fail; }
  if (strcmp(text, "ok") != 0) {
    /* One line: SQLite's report starts "*** in database main ***\n" and
     * lists a problem per line. */
    const char *report = text;
    static const char banner[] = "*** in database main ***\n";
    if (strncmp(report, banner, sizeof banner - 1) == 0) report += sizeof banner - 1;
    for (char *p = text; *p; p++) if (*p == '\n') *p = ' ';
    rc = say(open_error, -SYN_EIO, "%s is corrupt: PRAGMA quick_check says: %s", st->path, report);
    goto fail;
  }

  int64_t app_id = 0, tables = 0;
  src = query_int(st->db, "PRAGMA application_id", &app_id);
  if (src == SQLITE_OK) src = query_int(st->db, "SELECT count(*) FROM sqlite_schema", &tables);
  if (src != SQLITE_OK) { rc = open_failed(st, src, "read its schema"); goto fail; }
  if (app_id == 0 && tables == 0) {
    rc = create_schema(st, cluster_hex, node_id, proto_name);
  } else if (app_id != STORE_APP_ID) {
    rc = say(open_error, -SYN_EIO, "%s is not a synod data store (SQLite application id 0x%08llx, %lld tables)",
             st->path, (unsigned long long)(uint32_t)app_id, (long long)tables);
  } else {
    rc = check_meta(st, cluster_hex, node_id, proto_name);
  }
  if (rc) goto fail;

  if ((rc = prepare(st, &st->put, "INSERT OR REPLACE INTO records (kind, key, data) VALUES (?, ?, ?)")) ||
      (rc = prepare(st, &st->forget, "DELETE FROM records WHERE kind = ? AND key < ?")) ||
      (rc = prepare(st, &st->forget_all, "DELETE FROM records WHERE kind = ?")) ||
      (rc = prepare(st, &st->each, "SELECT kind, key, data FROM records ORDER BY kind, key")) ||
      (rc = prepare(st, &st->begin, "BEGIN IMMEDIATE")) ||
      (rc = prepare(st, &st->commit, "COMMIT")))
    goto fail;
  *out = st;
  return 0;
fail:
  SYN_ASSERT(rc != 0);
  finalize_all(st);
  sqlite3_close(st->db);   /* NULL-safe; rolls back anything left open */
  free(st);
  return rc;
}

void syn_store_close(syn_store_t *st) {
  if (!st) return;
  SYN_ASSERT(!st->walking);
  /* Unsynced changes were never promised: dropped, exactly as a crash would. */
  if (!sqlite3_get_autocommit(st->db)) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
  finalize_all(st);
  int src = sqlite3_close(st->db);
  SYN_ASSERT(src == SQLITE_OK);   /* every statement is finalized */
  free(st);
}

/* ---- writes ---- */

static int writable(syn_store_t *st) {
  if (st->stats.failed) {
    memcpy(st->err, st->fatal, sizeof st->err);
    return -SYN_EIO;
  }
  if (st->walking)
    return say(st->err, -SYN_ESTATE, "data directory %s: no writes from inside syn_store_each", st->dir);
  return 0;
}

static int begin(syn_store_t *st) {
  if (st->in_txn) return 0;
  int src = sqlite3_step(st->begin);
  sqlite3_reset(st->begin);
  if (src != SQLITE_DONE) return write_failed(st, src, "beginning a transaction");
  st->in_txn = true;
  return 0;
}

int syn_store_put(syn_store_t *st, uint32_t kind, uint64_t key, const uint8_t *data, size_t len) {
  SYN_ASSERT(st != NULL);
  SYN_ASSERT(data != NULL || len == 0);
  if (len > SYN_MAX_STORE_RECORD_BYTES)
    return say(st->err, -SYN_ETOOBIG, "record (kind %u, key %llu) of %zu bytes is over SYN_MAX_STORE_RECORD_BYTES (%u)",
               (unsigned)kind, (unsigned long long)key, len, (unsigned)SYN_MAX_STORE_RECORD_BYTES);
  if (key > (uint64_t)SYN_MAX_STORE_KEY)
    return say(st->err, -SYN_EINVAL, "record (kind %u, key %llu): keys go up to SYN_MAX_STORE_KEY (%lld)",
               (unsigned)kind, (unsigned long long)key, (long long)SYN_MAX_STORE_KEY);
  int rc = writable(st);
  if (rc == 0) rc = begin(st);
  if (rc) return rc;
  sqlite3_bind_int64(st->put, 1, kind);
  sqlite3_bind_int64(st->put, 2, (int64_t)key);
  if (len > 0) sqlite3_bind_blob64(st->put, 3, data, len, SQLITE_STATIC);
  else sqlite3_bind_zeroblob(st->put, 3, 0);   /* an empty blob; a NULL pointer would bind NULL */
  int src = sqlite3_step(st->put);
  sqlite3_reset(st->put);
  sqlite3_clear_bindings(st->put);
  if (src != SQLITE_DONE) {
    char doing[96];
    snprintf(doing, sizeof doing, "writing record (kind %u, key %llu, %zu bytes)",
             (unsigned)kind, (unsigned long long)key, len);
    return write_failed(st, src, doing);
  }
  st->stats.puts++;
  st->stats.put_bytes += len;
  st->stats.pending++;
  return 0;
}

int syn_store_forget(syn_store_t *st, uint32_t kind, uint64_t below) {
  SYN_ASSERT(st != NULL);
  int rc = writable(st);
  if (rc == 0) rc = begin(st);
  if (rc) return rc;
  /* Every stored key is <= SYN_MAX_STORE_KEY: a larger `below` takes them all. */
  sqlite3_stmt *s = below > (uint64_t)SYN_MAX_STORE_KEY ? st->forget_all : st->forget;
  sqlite3_bind_int64(s, 1, kind);
  if (s == st->forget) sqlite3_bind_int64(s, 2, (int64_t)below);
  int src = sqlite3_step(s);
  sqlite3_reset(s);
  if (src != SQLITE_DONE) {
    char doing[96];
    snprintf(doing, sizeof doing, "forgetting records of kind %u below %llu", (unsigned)kind, (unsigned long long)below);
    return write_failed(st, src, doing);
  }
  st->stats.forgets++;
  st->stats.pending++;
  return 0;
}

int syn_store_sync(syn_store_t *st) {
  SYN_ASSERT(st != NULL);
  int rc = writable(st);
  if (rc) return rc;
  if (!st->in_txn) return 0;
  int64_t t0 = now_ns();
  int src = sqlite3_step(st->commit);
  sqlite3_reset(st->commit);
  if (src != SQLITE_DONE) {
    char doing[96];
    snprintf(doing, sizeof doing, "committing the open transaction (%llu writes)",
             (unsigned long long)st->stats.pending);
    return write_failed(st, src, doing);
  }
  st->in_txn = false;
  st->stats.syncs++;
  st->stats.pending = 0;
  st->stats.last_sync_ns = now_ns() - t0;
  return 0;
}

/* ---- reads ---- */

int syn_store_each(syn_store_t *st, syn_store_each_fn fn, void *ctx) {
  SYN_ASSERT(st != NULL && fn != NULL);
  SYN_ASSERT(!st->walking);
  sqlite3_stmt *s = st->each;
  int rc = 0, src;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t kind = sqlite3_column_int64(s, 0), key = sqlite3_column_int64(s, 1);
    int type = sqlite3_column_type(s, 2);
    const void *data = sqlite3_column_blob(s, 2);
    int len = sqlite3_column_bytes(s, 2);
    /* STRICT and the CHECKs make these impossible unless the file was edited. */
    if (kind < 0 || kind > UINT32_MAX || key < 0 || type != SQLITE_BLOB || len < 0 ||
        (size_t)len > SYN_MAX_STORE_RECORD_BYTES) {
      rc = say(st->err, -SYN_EIO, "%s is corrupt: record (kind %lld, key %lld) is not one this store writes",
               st->path, (long long)kind, (long long)key);
      break;
    }
    st->walking = true;
    rc = fn(ctx, (uint32_t)kind, (uint64_t)key, len ? data : (const uint8_t *)"", (size_t)len);
    st->walking = false;
    if (rc) break;
  }
  if (rc == 0 && src != SQLITE_DONE) {
    int prim = src & 0xff;
    rc = prim == SQLITE_NOMEM ? -SYN_ENOMEM : -SYN_EIO;
    say(st->err, rc, "%s%s: %s while reading records", st->path,
        prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB ? " is corrupt" : "", sqlite3_errmsg(st->db));
  }
  sqlite3_reset(s);
  return rc;
}

void syn_store_stats(const syn_store_t *st, syn_store_stats_t *out) {
  SYN_ASSERT(st != NULL && out != NULL);
  *out = st->stats;
}
