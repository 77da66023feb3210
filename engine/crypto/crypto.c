/* crypto.c — identities, frame signatures, digests and key files, all
 * through libsodium.
 *
 * Signatures. A frame's signature is plain Ed25519 (crypto_sign_detached)
 * over a 64-byte BLAKE2b-512 digest of the domain-separated message
 *     "synod/1/" proto "/" type-name "\0" || frame[0 .. header + payload)
 * The digest is computed incrementally (crypto_generichash_update), so
 * neither signing nor verifying copies or allocates, whatever the frame size;
 * hashing once with BLAKE2b is also cheaper than Ed25519's own two SHA-512
 * passes over a large message. The domain (protocol and type name, which
 * wire/ restricts to [A-Za-z0-9_.-], so "/" and "\0" delimit them
 * unambiguously) makes a signature made for one protocol or message type
 * worthless as any other. Anything that checks synod signatures must use this
 * exact construction. The signature binds whatever sender the header names;
 * a receiver verifies against that sender's key, so signing a frame that
 * names another node only yields a frame that fails verification.
 *
 * Key files. node-<i>.key holds the 32-byte Ed25519 seed as 64 lowercase hex
 * digits and a newline, mode 0600, created with O_EXCL: an existing key file
 * is never overwritten — re-running keygen is accepted only when the file
 * already holds exactly the key that would be written (same seed), otherwise
 * it fails before anything is written. keys.pub ("<i> <hex public key>" per
 * line, ids 0..n-1 in order) is public and replaced atomically (temp file +
 * rename). Readers are strict: one exact format, bounded file sizes, clear
 * messages through syn_keys_error().
 *
 * Never: reads a clock, uses rand(), logs key material, or keeps a secret
 * longer than the call that needs it (seeds are wiped with sodium_memzero). */
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define SYN_MAX_KEY_FILE_BYTES 128                        /* node-<i>.key: 64 hex + "\n" */
#define SYN_MAX_PUB_LINE_BYTES (10 + 1 + 2 * SYN_PK_BYTES + 1)   /* "<u32> <hex>\n" */
#define SYN_MAX_PUB_FILE_BYTES (SYN_MAX_NODES * SYN_MAX_PUB_LINE_BYTES)

static const char keygen_domain[] = "synod keygen";   /* hashed without its NUL */
static const char sign_domain[] = "synod/1/";

static bool sodium_ready;

int syn_crypto_init(void) {
  if (sodium_ready) return 0;
  if (sodium_init() < 0) return -SYN_ESTATE;
  sodium_ready = true;
  return 0;
}

/* libsodium wants sodium_init before use; functions that cannot fail
 * assert it instead. */
static void ensure_init(void) {
  int rc = syn_crypto_init();
  SYN_ASSERT(rc == 0);
}

/* ---- identities ---- */

void syn_identity_from_seed(syn_identity_t *id, uint32_t node, const uint8_t seed[SYN_SEED_BYTES]) {
  ensure_init();
  id->id = node;
  int rc = crypto_sign_seed_keypair(id->pk, id->sk, seed);
  SYN_ASSERT(rc == 0);
}

static void derive_seed(uint32_t node, uint64_t seed, uint8_t out[SYN_SEED_BYTES]) {
  uint8_t in[sizeof keygen_domain - 1 + 8 + 4];
  memcpy(in, keygen_domain, sizeof keygen_domain - 1);
  syn_put_u64(in + sizeof keygen_domain - 1, seed);
  syn_put_u32(in + sizeof keygen_domain - 1 + 8, node);
  int rc = crypto_generichash(out, SYN_SEED_BYTES, in, sizeof in, NULL, 0);
  SYN_ASSERT(rc == 0);
}

void syn_identity_derive(syn_identity_t *id, uint32_t node, uint64_t seed) {
  ensure_init();
  uint8_t s[SYN_SEED_BYTES];
  derive_seed(node, seed, s);
  syn_identity_from_seed(id, node, s);
  sodium_memzero(s, sizeof s);
}

void syn_identity_random(syn_identity_t *id, uint32_t node) {
  ensure_init();
  uint8_t s[SYN_SEED_BYTES];
  randombytes_buf(s, sizeof s);
  syn_identity_from_seed(id, node, s);
  sodium_memzero(s, sizeof s);
}

/* ---- signatures ---- */

/* BLAKE2b-512 of the domain-separated message (file header). */
static void frame_digest(const syn_msg_def_t *def, const uint8_t *frame, size_t signed_len,
                         uint8_t out[crypto_generichash_BYTES_MAX]) {
  crypto_generichash_state st;
  static const uint8_t slash = '/', nul = 0;
  int rc = crypto_generichash_init(&st, NULL, 0, crypto_generichash_BYTES_MAX);
  SYN_ASSERT(rc == 0);
  crypto_generichash_update(&st, (const uint8_t *)sign_domain, sizeof sign_domain - 1);
  crypto_generichash_update(&st, (const uint8_t *)def->proto, strlen(def->proto));
  crypto_generichash_update(&st, &slash, 1);
  crypto_generichash_update(&st, (const uint8_t *)def->name, strlen(def->name));
  crypto_generichash_update(&st, &nul, 1);
  crypto_generichash_update(&st, frame, signed_len);
  crypto_generichash_final(&st, out, crypto_generichash_BYTES_MAX);
}

int syn_crypto_sign_frame(const syn_identity_t *id, uint8_t *frame, size_t len) {
  if (id == NULL || frame == NULL) return -SYN_EINVAL;
  ensure_init();
  syn_frame_t f;
  int rc = syn_wire_frame_parse(frame, len, &f);
  if (rc) return rc;
  uint8_t h[crypto_generichash_BYTES_MAX];
  frame_digest(f.def, frame, f.signed_len, h);
  rc = crypto_sign_detached(frame + f.signed_len, NULL, h, sizeof h, id->sk);
  SYN_ASSERT(rc == 0);
  return 0;
}

int syn_crypto_verify_frame(const syn_keyring_t *ring, const uint8_t *frame, const syn_frame_t *f) {
  SYN_ASSERT(ring != NULL && frame != NULL && f != NULL && f->def != NULL);
  /* f must be the parse of this frame: its views point into it */
  SYN_ASSERT(f->signed_len >= SYN_WIRE_HEADER_BYTES && f->sig == frame + f->signed_len);
  ensure_init();
  if (f->sender >= ring->n || f->sender >= SYN_MAX_NODES) return -SYN_ESENDER;
  uint8_t h[crypto_generichash_BYTES_MAX];
  frame_digest(f->def, frame, f->signed_len, h);
  if (crypto_sign_verify_detached(f->sig, h, sizeof h, ring->pk[f->sender]) != 0) return -SYN_EBADSIG;
  return 0;
}

void syn_digest(const void *data, size_t len, uint8_t out[SYN_DIGEST_BYTES]) {
  ensure_init();
  int rc = crypto_generichash(out, SYN_DIGEST_BYTES, data, len, NULL, 0);
  SYN_ASSERT(rc == 0);
}

/* ---- key files ---- */

static char keys_error[PATH_MAX + 160];

const char *syn_keys_error(void) { return keys_error; }

__attribute__((format(printf, 2, 3)))
static int fail(int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(keys_error, sizeof keys_error, fmt, ap);
  va_end(ap);
  return rc;
}

static int join(char *out, const char *dir, const char *fmt, uint32_t i) {
  char name[64];
  snprintf(name, sizeof name, fmt, i);
  int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
  if (n < 0 || n >= PATH_MAX) return fail(-SYN_EINVAL, "path too long: %s/%s", dir, name);
  return 0;
}

/* Reads a whole regular file of at most max bytes into buf (cap > max). */
static int read_small(const char *path, char *buf, size_t max, size_t *out_len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return fail(-SYN_EIO, "%s: %s", path, strerror(errno));
  int rc = 0;
  struct stat st;
  if (fstat(fd, &st) != 0) { rc = fail(-SYN_EIO, "%s: %s", path, strerror(errno)); goto fail; }
  if (!S_ISREG(st.st_mode)) { rc = fail(-SYN_EIO, "%s: not a regular file", path); goto fail; }
  if ((uint64_t)st.st_size > max) {
    rc = fail(-SYN_ELIMIT, "%s: %lld bytes, over the limit of %zu", path, (long long)st.st_size, max);
    goto fail;
  }
  size_t len = 0;
  for (;;) {   /* read to EOF, one byte past max to catch a file that grew */
    ssize_t r = read(fd, buf + len, max + 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { rc = fail(-SYN_EIO, "%s: %s", path, strerror(errno)); goto fail; }
    if (r == 0) break;
    len += (size_t)r;
    if (len > max) { rc = fail(-SYN_ELIMIT, "%s: over the limit of %zu bytes", path, max); goto fail; }
  }
  buf[len] = '\0';
  *out_len = len;
fail:
  close(fd);
  return rc;
}

static int write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, data, len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    data += w;
    len -= (size_t)w;
  }
  return 0;
}

/* 64 hex digits and "\n": the one form of a key file. */
static void key_line(const uint8_t seed[SYN_SEED_BYTES], char out[2 * SYN_SEED_BYTES + 2]) {
  syn_hex(seed, SYN_SEED_BYTES, out);
  out[2 * SYN_SEED_BYTES] = '\n';
  out[2 * SYN_SEED_BYTES + 1] = '\0';
}

/* 0 when path is absent or already holds exactly line; an error otherwise. */
static int check_existing(const char *path, const char *line) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) return 0;
    return fail(-SYN_EIO, "%s: %s", path, strerror(errno));
  }
  char buf[SYN_MAX_KEY_FILE_BYTES + 1];
  size_t len;
  int rc = read_small(path, buf, SYN_MAX_KEY_FILE_BYTES, &len);
  bool same = rc == 0 && len == strlen(line) && sodium_memcmp(buf, line, len) == 0;
  sodium_memzero(buf, sizeof buf);
  if (!same) return fail(-SYN_EIO, "%s exists and holds a different key; refusing to overwrite it", path);
  return 0;
}

static int write_key(const char *path, const char *line) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return check_existing(path, line);
    return fail(-SYN_EIO, "%s: %s", path, strerror(errno));
  }
  int rc = 0;
  /* fchmod: the umask must not widen or narrow a key file's mode */
  if (fchmod(fd, 0600) != 0 || write_all(fd, line, strlen(line)) != 0 || fsync(fd) != 0) {
    rc = fail(-SYN_EIO, "%s: %s", path, strerror(errno));
    unlink(path);
  }
  if (close(fd) != 0 && rc == 0) rc = fail(-SYN_EIO, "%s: %s", path, strerror(errno));
  return rc;
}

static int ensure_dir(const char *dir) {
  if (mkdir(dir, 0700) == 0) {
    if (chmod(dir, 0700) != 0) return fail(-SYN_EIO, "%s: %s", dir, strerror(errno));
    return 0;
  }
  if (errno != EEXIST) return fail(-SYN_EIO, "cannot create %s: %s", dir, strerror(errno));
  struct stat st;
  if (stat(dir, &st) != 0) return fail(-SYN_EIO, "%s: %s", dir, strerror(errno));
  if (!S_ISDIR(st.st_mode)) return fail(-SYN_EIO, "%s exists and is not a directory", dir);
  return 0;
}

static int write_pub(const char *dir, const char *text, size_t len) {
  char tmp[PATH_MAX], path[PATH_MAX];
  int rc = join(tmp, dir, "keys.pub.tmp", 0);
  if (rc == 0) rc = join(path, dir, "keys.pub", 0);
  if (rc) return rc;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return fail(-SYN_EIO, "%s: %s", tmp, strerror(errno));
  if (write_all(fd, text, len) != 0 || fsync(fd) != 0) {
    rc = fail(-SYN_EIO, "%s: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    return rc;
  }
  if (close(fd) != 0 || rename(tmp, path) != 0) {
    rc = fail(-SYN_EIO, "%s: %s", path, strerror(errno));
    unlink(tmp);
    return rc;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) { (void)fsync(dfd); close(dfd); }   /* best effort: the renames are durable */
  return 0;
}

int syn_keys_write(const char *dir, uint32_t n, bool has_seed, uint64_t seed) {
  keys_error[0] = '\0';
  if (dir == NULL || dir[0] == '\0') return fail(-SYN_EINVAL, "no key directory given");
  if (n == 0) return fail(-SYN_EINVAL, "n must be at least 1");
  if (n > SYN_MAX_NODES) return fail(-SYN_ELIMIT, "n = %u is over SYN_MAX_NODES (%d)", n, SYN_MAX_NODES);
  if (strlen(dir) > PATH_MAX - 32) return fail(-SYN_EINVAL, "path too long: %s", dir);
  int rc = syn_crypto_init();
  if (rc) return fail(rc, "libsodium failed to initialise");

  static uint8_t seeds[SYN_MAX_NODES][SYN_SEED_BYTES];
  static char pub[SYN_MAX_PUB_FILE_BYTES + 1];
  char path[PATH_MAX], line[2 * SYN_SEED_BYTES + 2];
  size_t pub_len = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (has_seed) derive_seed(i, seed, seeds[i]);
    else randombytes_buf(seeds[i], SYN_SEED_BYTES);
  }
  rc = ensure_dir(dir);
  if (rc) goto fail;
  /* Every conflict is found before anything is written. */
  for (uint32_t i = 0; i < n; i++) {
    if ((rc = join(path, dir, "node-%u.key", i)) != 0) goto fail;
    key_line(seeds[i], line);
    if ((rc = check_existing(path, line)) != 0) goto fail;
  }
  for (uint32_t i = 0; i < n; i++) {
    syn_identity_t id;
    syn_identity_from_seed(&id, i, seeds[i]);
    char hex[2 * SYN_PK_BYTES + 1];
    syn_hex(id.pk, SYN_PK_BYTES, hex);
    sodium_memzero(&id, sizeof id);
    int w = snprintf(pub + pub_len, sizeof pub - pub_len, "%u %s\n", i, hex);
    SYN_ASSERT(w > 0 && (size_t)w < sizeof pub - pub_len);
    pub_len += (size_t)w;
    if ((rc = join(path, dir, "node-%u.key", i)) != 0) goto fail;
    key_line(seeds[i], line);
    if ((rc = write_key(path, line)) != 0) goto fail;
  }
  rc = write_pub(dir, pub, pub_len);
fail:
  sodium_memzero(seeds, sizeof seeds);
  sodium_memzero(line, sizeof line);
  return rc;
}

/* "<i> <64 hex digits>" lines, i = 0, 1, 2 … in order, each ending in "\n"
 * (the last one may omit it). Anything else is -SYN_EPARSE with the line. */
int syn_keys_load_ring(const char *path, syn_keyring_t *ring) {
  keys_error[0] = '\0';
  if (path == NULL || ring == NULL) return fail(-SYN_EINVAL, "no keys.pub path given");
  ensure_init();
  static char buf[SYN_MAX_PUB_FILE_BYTES + 1];
  size_t len;
  int rc = read_small(path, buf, SYN_MAX_PUB_FILE_BYTES, &len);
  if (rc) return rc;
  memset(ring, 0, sizeof *ring);
  const char *p = buf, *end = buf + len;
  uint32_t n = 0;
  while (p < end) {
    uint32_t line_no = n + 1;
    if (n >= SYN_MAX_NODES) return fail(-SYN_ELIMIT, "%s: more than SYN_MAX_NODES (%d) keys", path, SYN_MAX_NODES);
    /* the id: decimal, no sign, no leading zero, equal to the line's index */
    const char *q = p;
    uint64_t id = 0;
    while (q < end && *q >= '0' && *q <= '9' && q - p < 10) id = id * 10 + (uint64_t)(*q++ - '0');
    if (q == p || (*p == '0' && q - p > 1) || q >= end || *q != ' ')
      return fail(-SYN_EPARSE, "%s:%u: expected \"<id> <hex public key>\"", path, line_no);
    if (id != n) return fail(-SYN_EPARSE, "%s:%u: expected id %u, found %llu", path, line_no, n, (unsigned long long)id);
    q++;
    const char *eol = memchr(q, '\n', (size_t)(end - q));
    size_t hex_len = (size_t)((eol ? eol : end) - q);
    char hex[2 * SYN_PK_BYTES + 1];
    if (hex_len != 2 * SYN_PK_BYTES)
      return fail(-SYN_EPARSE, "%s:%u: public key must be %d hex digits", path, line_no, 2 * SYN_PK_BYTES);
    memcpy(hex, q, hex_len);
    hex[hex_len] = '\0';
    if (syn_unhex(hex, ring->pk[n], SYN_PK_BYTES) != 0)
      return fail(-SYN_EPARSE, "%s:%u: public key is not hex", path, line_no);
    if (!crypto_core_ed25519_is_valid_point(ring->pk[n]))
      return fail(-SYN_EPARSE, "%s:%u: not a valid Ed25519 public key", path, line_no);
    n++;
    p = eol ? eol + 1 : end;
  }
  if (n == 0) return fail(-SYN_EPARSE, "%s: no keys", path);
  ring->n = n;
  return 0;
}

int syn_keys_load_identity(const char *dir, uint32_t node, syn_identity_t *id) {
  keys_error[0] = '\0';
  if (dir == NULL || id == NULL) return fail(-SYN_EINVAL, "no key directory given");
  if (node >= SYN_MAX_NODES) return fail(-SYN_EINVAL, "node %u is over SYN_MAX_NODES (%d)", node, SYN_MAX_NODES);
  char path[PATH_MAX];
  int rc = join(path, dir, "node-%u.key", node);
  if (rc) return rc;
  char buf[SYN_MAX_KEY_FILE_BYTES + 1];
  size_t len;
  rc = read_small(path, buf, SYN_MAX_KEY_FILE_BYTES, &len);
  if (rc) return rc;
  uint8_t seed[SYN_SEED_BYTES];
  if (len == 2 * SYN_SEED_BYTES + 1 && buf[len - 1] == '\n') buf[--len] = '\0';
  if (len != 2 * SYN_SEED_BYTES || syn_unhex(buf, seed, SYN_SEED_BYTES) != 0) {
    rc = fail(-SYN_EPARSE, "%s: expected %d hex digits and a newline", path, 2 * SYN_SEED_BYTES);
    goto fail;
  }
  syn_identity_from_seed(id, node, seed);
fail:
  sodium_memzero(buf, sizeof buf);
  sodium_memzero(seed, sizeof seed);
  return rc;
}
