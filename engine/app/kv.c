/* kv.c — the replicated key-value store (kv.h has the grammar, results,
 * limits, digest and snapshot format) and syn_kv_app, its face as an app.h
 * application.
 *
 * Owns: an open-addressing hash table (linear probing, load <= 1/2,
 * backward-shift deletion, so no tombstones) whose slots point at one
 * allocation per entry holding the key then the value; a sort array kept as
 * large as the table's maximum load, so digest() never allocates.
 *
 * Determinism: the table is hashed with SipHash-2-4 under a key drawn at
 * random for each store (libsodium), so a Byzantine client cannot choose
 * keys that all collide. That randomness decides only where an entry sits
 * in the table; nothing observable — a result, the digest, the snapshot —
 * ever depends on table order: digest and snapshot sort the entries first.
 * Keep it so: never iterate the table in slot order into an output.
 *
 * Never: reads a clock, a file or the network; allocates for an entry
 * before its size is checked against the limits; changes the store when an
 * op is refused or an allocation fails. */
#include "kv.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define MAGIC "synod/kv"                 /* 8 bytes, no NUL in the snapshot */
#define MIN_SLOTS 16u
#define STREAM_CHUNK_BYTES 8192          /* digest: bytes gathered per hash update (on the stack) */

_Static_assert(sizeof MAGIC - 1 == 8, "magic is 8 bytes");
_Static_assert(SYN_MAX_KV_KEY_BYTES <= UINT16_MAX && SYN_MAX_KV_VALUE_BYTES <= UINT16_MAX,
               "lengths fit the snapshot's u16 fields");
/* The longest op that can succeed — cas with a maximal key and two maximal
 * values — must fit in one op; the longest result in one result. */
_Static_assert(4 + SYN_MAX_KV_KEY_BYTES + 1 + 2 * (SYN_MAX_KV_VALUE_BYTES + 1) <= SYN_MAX_APP_OP_BYTES,
               "a maximal cas fits in SYN_MAX_APP_OP_BYTES");
_Static_assert(sizeof "CAS_FAILED " - 1 + SYN_MAX_KV_VALUE_BYTES <= SYN_MAX_APP_RESULT_BYTES,
               "the longest result fits in SYN_MAX_APP_RESULT_BYTES");
_Static_assert(SYN_MAX_KV_KEY_BYTES + SYN_MAX_KV_VALUE_BYTES <= STREAM_CHUNK_BYTES,
               "one entry fits in the digest's chunk");
_Static_assert(SYN_MAX_KV_KEYS <= (1u << 30), "slot indices fit in 32 bits at load 1/2");

typedef struct {
  uint8_t *kv;        /* klen key bytes then vlen value bytes; NULL marks an empty slot */
  uint32_t hash;      /* SipHash of the key (low 32 bits) */
  uint16_t klen, vlen;
} slot_t;

typedef struct {
  uint64_t p0, p1;    /* the key's first 16 bytes, big-endian, zero-padded: most compares end here */
  const uint8_t *kv;  /* the entry (key then value), read in order when encoding */
  uint16_t klen, vlen;
} sorted_t;

struct syn_kv {
  slot_t *slots;      /* cap slots, cap a power of two */
  uint32_t cap;
  uint32_t count;     /* non-empty slots; count * 2 <= cap */
  uint64_t bytes;     /* key + value bytes of all entries */
  sorted_t *order;    /* cap / 2 entries: scratch for digest and snapshot */
  syn_kv_limits_t lim;
  uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

/* ---- the table ---- */

static uint32_t hash_key(const syn_kv_t *kv, const uint8_t *key, size_t klen) {
  uint8_t out[crypto_shorthash_BYTES];
  crypto_shorthash(out, key, klen, kv->hash_key);
  uint32_t h;
  memcpy(&h, out, sizeof h);
  return h;
}

/* The slot holding key, or the empty slot where it would go (*found says
 * which). Terminates because load <= 1/2 leaves empty slots. */
static uint32_t find(const syn_kv_t *kv, const uint8_t *key, size_t klen, uint32_t h, bool *found) {
  uint32_t mask = kv->cap - 1;
  for (uint32_t i = h & mask;; i = (i + 1) & mask) {
    const slot_t *s = &kv->slots[i];
    if (s->kv == NULL) { *found = false; return i; }
    if (s->hash == h && s->klen == klen && memcmp(s->kv, key, klen) == 0) { *found = true; return i; }
  }
}

/* Allocates an empty table of cap slots (and its sort array) into t. */
static int table_alloc(syn_kv_t *t, uint32_t cap) {
  SYN_ASSERT(cap >= MIN_SLOTS && (cap & (cap - 1)) == 0);
  t->slots = calloc(cap, sizeof *t->slots);
  t->order = malloc((size_t)(cap / 2) * sizeof *t->order);
  if (t->slots == NULL || t->order == NULL) {
    free(t->slots); free(t->order);
    t->slots = NULL; t->order = NULL;
    return -SYN_ENOMEM;
  }
  t->cap = cap; t->count = 0; t->bytes = 0;
  return 0;
}

/* Frees every entry and the table itself. */
static void table_free(syn_kv_t *t) {
  if (t->slots != NULL) {
    for (uint32_t i = 0; i < t->cap; i++) free(t->slots[i].kv);
  }
  free(t->slots); free(t->order);
  t->slots = NULL; t->order = NULL; t->cap = 0; t->count = 0; t->bytes = 0;
}

/* The smallest table that holds count entries at load <= 1/2. */
static uint32_t cap_for(uint32_t count) {
  uint32_t cap = MIN_SLOTS;
  while (cap / 2 < count) cap *= 2;
  return cap;
}

/* Makes room for one more entry; on failure the table is unchanged. */
static int reserve_one(syn_kv_t *kv) {
  SYN_ASSERT(kv->count < kv->lim.max_keys);
  if (kv->count + 1 <= kv->cap / 2) return 0;
  syn_kv_t t = *kv;
  int rc = table_alloc(&t, kv->cap * 2);
  if (rc) return rc;
  uint32_t mask = t.cap - 1;
  for (uint32_t i = 0; i < kv->cap; i++) {
    const slot_t *s = &kv->slots[i];
    if (s->kv == NULL) continue;
    uint32_t j = s->hash & mask;
    while (t.slots[j].kv != NULL) j = (j + 1) & mask;
    t.slots[j] = *s;
  }
  t.count = kv->count;
  t.bytes = kv->bytes;
  free(kv->slots); free(kv->order);   /* the entries moved to t */
  *kv = t;
  return 0;
}

/* Empties slot i and shifts later members of its probe run back. */
static void remove_at(syn_kv_t *kv, uint32_t i) {
  uint32_t mask = kv->cap - 1;
  slot_t *s = kv->slots;
  kv->bytes -= (uint64_t)s[i].klen + s[i].vlen;
  kv->count--;
  free(s[i].kv);
  for (uint32_t j = (i + 1) & mask; s[j].kv != NULL; j = (j + 1) & mask) {
    uint32_t home = s[j].hash & mask;
    /* s[j] stays when its home lies cyclically in (i, j]. */
    bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    s[i] = s[j];
    i = j;
  }
  s[i].kv = NULL;
  s[i].klen = s[i].vlen = 0;
  s[i].hash = 0;
}

/* ---- sorting (digest, snapshot) ----
 * An introsort with the compare inlined (qsort's callback and its pointer
 * chasing cost 4x): quicksort on a median of three, insertion sort below
 * SMALL_SORT, heapsort when the depth passes 2 log2 n, so no choice of keys
 * can make it quadratic. Keys are distinct, so the order is total. */

#define SMALL_SORT 16

static uint64_t key_word(const uint8_t *key, size_t klen, size_t from) {
  uint64_t w = 0;
  for (size_t i = from; i < from + 8; i++) w = (w << 8) | (i < klen ? key[i] : 0);
  return w;
}

static int cmp_keys(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  int c = memcmp(a, b, alen < blen ? alen : blen);
  if (c != 0) return c;
  return alen < blen ? -1 : alen > blen;
}

/* a < b in canonical key order. Zero padding cannot tie two different keys
 * wrongly: a tie on both words falls through to the full compare. */
static inline bool less(const sorted_t *a, const sorted_t *b) {
  if (a->p0 != b->p0) return a->p0 < b->p0;
  if (a->p1 != b->p1) return a->p1 < b->p1;
  return cmp_keys(a->kv, a->klen, b->kv, b->klen) < 0;
}

static inline void swap(sorted_t *a, sorted_t *b) { sorted_t t = *a; *a = *b; *b = t; }

static void insertion_sort(sorted_t *v, size_t n) {
  for (size_t i = 1; i < n; i++) {
    sorted_t x = v[i];
    size_t j = i;
    while (j > 0 && less(&x, &v[j - 1])) { v[j] = v[j - 1]; j--; }
    v[j] = x;
  }
}

static void sift_down(sorted_t *v, size_t root, size_t n) {
  for (;;) {
    size_t child = 2 * root + 1;
    if (child >= n) return;
    if (child + 1 < n && less(&v[child], &v[child + 1])) child++;
    if (!less(&v[root], &v[child])) return;
    swap(&v[root], &v[child]);
    root = child;
  }
}

static void heap_sort(sorted_t *v, size_t n) {
  for (size_t i = n / 2; i-- > 0;) sift_down(v, i, n);
  for (size_t end = n; end-- > 1;) { swap(&v[0], &v[end]); sift_down(v, 0, end); }
}

static void intro_sort(sorted_t *v, size_t n, int depth) {
  while (n > SMALL_SORT) {
    if (depth-- == 0) { heap_sort(v, n); return; }
    size_t mid = n / 2;
    if (less(&v[mid], &v[0])) swap(&v[mid], &v[0]);
    if (less(&v[n - 1], &v[0])) swap(&v[n - 1], &v[0]);
    if (less(&v[n - 1], &v[mid])) swap(&v[n - 1], &v[mid]);
    swap(&v[mid], &v[n - 2]);              /* the pivot waits at n-2; v[0] <= it <= v[n-1] */
    const sorted_t *pivot = &v[n - 2];
    size_t i = 0, j = n - 2;
    for (;;) {
      while (less(&v[++i], pivot)) {}
      while (less(pivot, &v[--j])) {}
      if (i >= j) break;
      swap(&v[i], &v[j]);
    }
    swap(&v[i], &v[n - 2]);                /* the pivot in its place: v[..i) < v[i] < v(i..] */
    /* Recurse into the smaller side, loop on the larger: stack depth log n. */
    if (i < n - 1 - i) { intro_sort(v, i, depth); v += i + 1; n -= i + 1; }
    else { intro_sort(v + i + 1, n - i - 1, depth); n = i; }
  }
  insertion_sort(v, n);
}

/* Fills kv->order with the entries in canonical (ascending key) order. */
static void sort_entries(const syn_kv_t *kv) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < kv->cap; i++) {
    const slot_t *s = &kv->slots[i];
    /* Entries are scattered in memory: ask for the ones ahead early. */
    if (i + 16 < kv->cap && kv->slots[i + 16].kv != NULL) __builtin_prefetch(kv->slots[i + 16].kv);
    if (s->kv == NULL) continue;
    SYN_ASSERT(n < kv->cap / 2);
    kv->order[n] = (sorted_t){ .p0 = key_word(s->kv, s->klen, 0), .p1 = key_word(s->kv, s->klen, 8),
                               .kv = s->kv, .klen = s->klen, .vlen = s->vlen };
    n++;
  }
  SYN_ASSERT(n == kv->count);
  int depth = 0;
  for (uint32_t m = n; m > 1; m >>= 1) depth += 2;
  intro_sort(kv->order, n, depth);
}

/* ---- the canonical encoding, into a buffer or into a hash ---- */

typedef struct {
  uint8_t *out;                      /* snapshot: the reserved buffer; digest: the chunk */
  crypto_generichash_state *hs;      /* digest: the running hash; snapshot: NULL */
  size_t n;                          /* bytes written to out */
} sink_t;

/* Small writes are gathered into a chunk so the hash sees few, large
 * updates; the bytes hashed are exactly the bytes a snapshot holds. */
static void sink_put(sink_t *k, const void *src, size_t n) {
  if (k->hs != NULL && k->n + n > STREAM_CHUNK_BYTES) {
    crypto_generichash_update(k->hs, k->out, k->n);
    k->n = 0;
  }
  memcpy(k->out + k->n, src, n);
  k->n += n;
}

/* Writes the snapshot body (everything but the check digest); the entries
 * must be sorted into kv->order. */
static void encode_body(const syn_kv_t *kv, sink_t *k) {
  uint8_t h[SYN_KV_SNAPSHOT_HEADER_BYTES];
  memcpy(h, MAGIC, 8);
  syn_put_u32(h + 8, SYN_KV_SNAPSHOT_VERSION);
  syn_put_u32(h + 12, kv->count);
  syn_put_u64(h + 16, kv->bytes);
  sink_put(k, h, sizeof h);
  for (uint32_t i = 0; i < kv->count; i++) {
    const sorted_t *s = &kv->order[i];
    if (i + 8 < kv->count) __builtin_prefetch(kv->order[i + 8].kv);   /* entries are scattered in memory */
    uint8_t e[SYN_KV_ENTRY_HEADER_BYTES];
    syn_put_u16(e, s->klen);
    syn_put_u16(e + 2, s->vlen);
    sink_put(k, e, sizeof e);
    sink_put(k, s->kv, (size_t)s->klen + s->vlen);
  }
}

static uint64_t body_bytes(uint32_t count, uint64_t data_bytes) {
  return SYN_KV_SNAPSHOT_HEADER_BYTES + (uint64_t)SYN_KV_ENTRY_HEADER_BYTES * count + data_bytes;
}

/* ---- public: life cycle ---- */

int syn_kv_new(syn_kv_t **out, const syn_kv_limits_t *limits) {
  SYN_ASSERT(out != NULL);
  *out = NULL;
  syn_kv_limits_t lim = { SYN_MAX_KV_KEYS, SYN_MAX_KV_BYTES };
  if (limits != NULL) lim = *limits;
  if (lim.max_keys == 0 || lim.max_keys > SYN_MAX_KV_KEYS) return -SYN_EINVAL;
  if (lim.max_bytes == 0 || lim.max_bytes > SYN_MAX_KV_BYTES) return -SYN_EINVAL;
  if (syn_crypto_init() != 0) return -SYN_ENOMEM;   /* libsodium's only failure mode here */
  syn_kv_t *kv = calloc(1, sizeof *kv);
  if (kv == NULL) return -SYN_ENOMEM;
  kv->lim = lim;
  randombytes_buf(kv->hash_key, sizeof kv->hash_key);
  int rc = table_alloc(kv, MIN_SLOTS);
  if (rc) { free(kv); return rc; }
  *out = kv;
  return 0;
}

void syn_kv_free(syn_kv_t *kv) {
  if (kv == NULL) return;
  table_free(kv);
  sodium_memzero(kv->hash_key, sizeof kv->hash_key);
  free(kv);
}

uint64_t syn_kv_count(const syn_kv_t *kv) { return kv->count; }
uint64_t syn_kv_bytes(const syn_kv_t *kv) { return kv->bytes; }
syn_kv_limits_t syn_kv_limits(const syn_kv_t *kv) { return kv->lim; }

/* ---- public: execute ---- */

typedef struct { const uint8_t *p; size_t len; } tok_t;

#define MAX_TOKENS 5   /* cas takes 4; a 5th means too many */

static bool is_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static bool is_control(uint8_t c) { return (c < 0x20 && !is_space(c)) || c == 0x7F; }

static bool tok_is(const tok_t *t, const char *word) {
  size_t n = strlen(word);
  return t->len == n && memcmp(t->p, word, n) == 0;
}

/* Splits op into at most MAX_TOKENS tokens; returns how many (MAX_TOKENS
 * when there are at least that many). */
static int tokenize(const uint8_t *op, size_t len, tok_t *toks) {
  int n = 0;
  size_t i = 0;
  while (n < MAX_TOKENS) {
    while (i < len && is_space(op[i])) i++;
    if (i == len) break;
    size_t start = i;
    while (i < len && !is_space(op[i])) i++;
    toks[n].p = op + start;
    toks[n].len = i - start;
    n++;
  }
  return n;
}

static int reply(syn_buf_t *r, const char *text) { return syn_buf_append(r, text, strlen(text)); }

static int reply_with(syn_buf_t *r, const char *word, const uint8_t *v, size_t vlen) {
  int rc = reply(r, word);
  if (rc == 0) rc = syn_buf_append(r, v, vlen);
  return rc;
}

/* Stores value under key (new entry or replaced value); every limit is
 * checked, the result written, and the store changed only if all passed. */
static int do_put(syn_kv_t *kv, const tok_t *key, const tok_t *val, syn_buf_t *r) {
  uint32_t h = hash_key(kv, key->p, key->len);
  bool found;
  uint32_t i = find(kv, key->p, key->len, h, &found);
  if (found) {
    slot_t *s = &kv->slots[i];
    uint64_t bytes = kv->bytes - s->vlen + val->len;
    if (bytes > kv->lim.max_bytes) return reply(r, "ERR store full");
    if (val->len != s->vlen) {
      uint8_t *p = realloc(s->kv, key->len + val->len);
      if (p == NULL) return -SYN_ENOMEM;   /* the old entry is intact */
      s->kv = p;
    }
    memcpy(s->kv + s->klen, val->p, val->len);
    s->vlen = (uint16_t)val->len;
    kv->bytes = bytes;
    return reply(r, "OK");
  }
  if (kv->count >= kv->lim.max_keys) return reply(r, "ERR too many keys");
  if (kv->bytes + key->len + val->len > kv->lim.max_bytes) return reply(r, "ERR store full");
  uint8_t *p = malloc(key->len + val->len);
  if (p == NULL) return -SYN_ENOMEM;
  int rc = reserve_one(kv);
  if (rc) { free(p); return rc; }
  i = find(kv, key->p, key->len, h, &found);   /* the table may have grown */
  SYN_ASSERT(!found);
  memcpy(p, key->p, key->len);
  memcpy(p + key->len, val->p, val->len);
  kv->slots[i] = (slot_t){ .kv = p, .hash = h, .klen = (uint16_t)key->len, .vlen = (uint16_t)val->len };
  kv->count++;
  kv->bytes += key->len + val->len;
  return reply(r, "OK");
}

int syn_kv_execute(syn_kv_t *kv, const uint8_t *op, size_t len, syn_buf_t *r) {
  SYN_ASSERT(kv != NULL && r != NULL && (op != NULL || len == 0));
  syn_buf_reset(r);
  /* Room for any result up front, so nothing can fail after the store changed. */
  int rc = syn_buf_reserve(r, SYN_MAX_APP_RESULT_BYTES);
  if (rc) return rc;

  if (len > SYN_MAX_APP_OP_BYTES) return reply(r, "ERR op too long");
  for (size_t i = 0; i < len; i++) {
    if (is_control(op[i])) return reply(r, "ERR bad byte");
  }
  tok_t t[MAX_TOKENS];
  int n = tokenize(op, len, t);
  if (n == 0) return reply(r, "ERR empty op");

  int arity;
  const char *usage;
  if (tok_is(&t[0], "put")) { arity = 3; usage = "ERR usage: put <key> <value>"; }
  else if (tok_is(&t[0], "get")) { arity = 2; usage = "ERR usage: get <key>"; }
  else if (tok_is(&t[0], "del")) { arity = 2; usage = "ERR usage: del <key>"; }
  else if (tok_is(&t[0], "cas")) { arity = 4; usage = "ERR usage: cas <key> <expected> <new>"; }
  else return reply(r, "ERR unknown verb");
  if (n != arity) return reply(r, usage);
  if (t[1].len > SYN_MAX_KV_KEY_BYTES) return reply(r, "ERR key too long");
  for (int i = 2; i < n; i++) {
    if (t[i].len > SYN_MAX_KV_VALUE_BYTES) return reply(r, "ERR value too long");
  }

  const tok_t *key = &t[1];
  if (arity == 3) return do_put(kv, key, &t[2], r);

  bool found;
  uint32_t h = hash_key(kv, key->p, key->len);
  uint32_t i = find(kv, key->p, key->len, h, &found);
  if (!found) return reply(r, "NOT_FOUND");
  slot_t *s = &kv->slots[i];
  if (tok_is(&t[0], "get")) return reply_with(r, "VALUE ", s->kv + s->klen, s->vlen);
  if (tok_is(&t[0], "del")) { remove_at(kv, i); return reply(r, "OK"); }
  /* cas */
  if (s->vlen != t[2].len || memcmp(s->kv + s->klen, t[2].p, t[2].len) != 0) {
    return reply_with(r, "CAS_FAILED ", s->kv + s->klen, s->vlen);
  }
  return do_put(kv, key, &t[3], r);
}

/* ---- public: digest, snapshot, restore ---- */

void syn_kv_digest(const syn_kv_t *kv, uint8_t out[SYN_DIGEST_BYTES]) {
  sort_entries(kv);
  crypto_generichash_state hs;
  crypto_generichash_init(&hs, NULL, 0, SYN_DIGEST_BYTES);
  uint8_t chunk[STREAM_CHUNK_BYTES];
  sink_t k = { .out = chunk, .hs = &hs, .n = 0 };
  encode_body(kv, &k);
  crypto_generichash_update(&hs, chunk, k.n);
  crypto_generichash_final(&hs, out, SYN_DIGEST_BYTES);
}

int syn_kv_snapshot(const syn_kv_t *kv, syn_buf_t *out) {
  uint64_t body = body_bytes(kv->count, kv->bytes);
  syn_buf_reset(out);
  int rc = syn_buf_reserve(out, (size_t)body + SYN_DIGEST_BYTES);
  if (rc) return rc;
  sort_entries(kv);
  sink_t k = { .out = out->data, .hs = NULL, .n = 0 };
  encode_body(kv, &k);
  SYN_ASSERT(k.n == body);
  syn_digest(out->data, (size_t)body, out->data + body);
  out->len = (size_t)body + SYN_DIGEST_BYTES;
  return 0;
}

/* A key or value from a snapshot must be one the grammar could store. */
static bool valid_token(const uint8_t *p, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++) {
    if (is_space(p[i]) || is_control(p[i])) return false;
  }
  return true;
}

int syn_kv_restore(syn_kv_t *kv, const uint8_t *snap, size_t len) {
  SYN_ASSERT(kv != NULL && (snap != NULL || len == 0));
  if (len < SYN_KV_SNAPSHOT_HEADER_BYTES) return -SYN_ETRUNC;
  if (memcmp(snap, MAGIC, 8) != 0) return -SYN_EMAGIC;
  if (syn_get_u32(snap + 8) != SYN_KV_SNAPSHOT_VERSION) return -SYN_EVERSION;
  uint32_t count = syn_get_u32(snap + 12);
  uint64_t data_bytes = syn_get_u64(snap + 16);
  if (count > kv->lim.max_keys || data_bytes > kv->lim.max_bytes) return -SYN_ELIMIT;
  uint64_t body = body_bytes(count, data_bytes);   /* no overflow: both bounded above */
  if (len < body + SYN_DIGEST_BYTES) return -SYN_ETRUNC;
  if (len > body + SYN_DIGEST_BYTES) return -SYN_ETRAILING;
  uint8_t check[SYN_DIGEST_BYTES];
  syn_digest(snap, (size_t)body, check);
  if (sodium_memcmp(check, snap + body, SYN_DIGEST_BYTES) != 0) return -SYN_EBADSIG;

  /* Validate every entry before allocating anything for them. */
  size_t pos = SYN_KV_SNAPSHOT_HEADER_BYTES;
  uint64_t sum = 0;
  const uint8_t *prev = NULL;
  size_t prev_len = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (body - pos < SYN_KV_ENTRY_HEADER_BYTES) return -SYN_EPARSE;
    size_t klen = syn_get_u16(snap + pos), vlen = syn_get_u16(snap + pos + 2);
    pos += SYN_KV_ENTRY_HEADER_BYTES;
    if (klen > SYN_MAX_KV_KEY_BYTES || vlen > SYN_MAX_KV_VALUE_BYTES) return -SYN_ELIMIT;
    if (body - pos < klen + vlen) return -SYN_EPARSE;
    const uint8_t *k = snap + pos, *v = k + klen;
    if (!valid_token(k, klen) || !valid_token(v, vlen)) return -SYN_EPARSE;
    if (prev != NULL && cmp_keys(prev, prev_len, k, klen) >= 0) return -SYN_EPARSE;
    prev = k; prev_len = klen;
    sum += klen + vlen;
    pos += klen + vlen;
  }
  if (pos != body || sum != data_bytes) return -SYN_EPARSE;

  /* Build the new table aside; swap it in only when it is complete. */
  syn_kv_t t = *kv;
  int rc = table_alloc(&t, cap_for(count));
  if (rc) return rc;
  uint32_t mask = t.cap - 1;
  pos = SYN_KV_SNAPSHOT_HEADER_BYTES;
  for (uint32_t i = 0; i < count; i++) {
    size_t klen = syn_get_u16(snap + pos), vlen = syn_get_u16(snap + pos + 2);
    pos += SYN_KV_ENTRY_HEADER_BYTES;
    uint8_t *p = malloc(klen + vlen);
    if (p == NULL) { table_free(&t); return -SYN_ENOMEM; }
    memcpy(p, snap + pos, klen + vlen);
    uint32_t h = hash_key(kv, p, klen);
    uint32_t j = h & mask;
    while (t.slots[j].kv != NULL) j = (j + 1) & mask;   /* keys are distinct: no lookup needed */
    t.slots[j] = (slot_t){ .kv = p, .hash = h, .klen = (uint16_t)klen, .vlen = (uint16_t)vlen };
    t.count++;
    t.bytes += klen + vlen;
    pos += klen + vlen;
  }
  table_free(kv);
  *kv = t;
  return 0;
}

/* ---- syn_kv_app: the store behind app.h ---- */

static int app_new(void **state) {
  syn_kv_t *kv;
  int rc = syn_kv_new(&kv, NULL);
  *state = kv;
  return rc;
}
static void app_free(void *state) { syn_kv_free(state); }
static int app_execute(void *state, const uint8_t *op, size_t len, syn_buf_t *result) {
  return syn_kv_execute(state, op, len, result);
}
static void app_digest(const void *state, uint8_t out[SYN_DIGEST_BYTES]) { syn_kv_digest(state, out); }
static int app_snapshot(const void *state, syn_buf_t *out) { return syn_kv_snapshot(state, out); }
static int app_restore(void *state, const uint8_t *snap, size_t len) { return syn_kv_restore(state, snap, len); }
static uint64_t app_count(const void *state) { return syn_kv_count(state); }

const syn_app_t syn_kv_app = {
  .name = "kv",
  .new = app_new,
  .free = app_free,
  .execute = app_execute,
  .digest = app_digest,
  .snapshot = app_snapshot,
  .restore = app_restore,
  .count = app_count,
};
