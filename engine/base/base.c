/* base.c — error texts, assertions, logging, PRNG, time parsing, buffers.
 * Owns nothing global but the log level. */
#include "base.h"

#include <ctype.h>
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <unistd.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const error_text[SYN_E_COUNT] = {
  [0] = "ok",
  [SYN_EINVAL] = "invalid argument",
  [SYN_ENOMEM] = "out of memory",
  [SYN_ELIMIT] = "limit exceeded",
  [SYN_ETRUNC] = "truncated input",
  [SYN_ETOOBIG] = "too big",
  [SYN_EMAGIC] = "bad magic",
  [SYN_EVERSION] = "unsupported version",
  [SYN_ETYPE] = "unknown message type",
  [SYN_ETRAILING] = "trailing bytes",
  [SYN_EBADSIG] = "bad signature",
  [SYN_ESENDER] = "unknown sender",
  [SYN_EIO] = "i/o error",
  [SYN_EPARSE] = "parse error",
  [SYN_ESTATE] = "invalid state",
  [SYN_ECORRUPT] = "corrupt persisted record",
};

const char *syn_strerror(int rc) {
  int e = rc < 0 ? -rc : rc;
  if (e >= SYN_E_COUNT || error_text[e] == NULL) return "unknown error";
  return error_text[e];
}

_Noreturn void syn_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "synod: assertion failed: %s (%s:%d)\n", expr, file, line);
  fflush(stderr);
  abort();
}

/* ---- logging ---- */

static syn_log_level_t log_level = SYN_LOG_WARN;
static const char *const level_names[] = { "trace", "debug", "info", "warn", "error", "off" };

void syn_log_set_level(syn_log_level_t level) { log_level = level; }
syn_log_level_t syn_log_get_level(void) { return log_level; }

int syn_log_parse_level(const char *text, syn_log_level_t *out) {
  for (int i = 0; i <= SYN_LOG_OFF; i++) {
    if (strcmp(text, level_names[i]) == 0) { *out = (syn_log_level_t)i; return 0; }
  }
  return -SYN_EINVAL;
}

void syn_log(syn_log_level_t level, const char *fmt, ...) {
  if (level < log_level || level >= SYN_LOG_OFF) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "synod %s: ", level_names[level]);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* ---- PRNG ---- */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void syn_prng_seed(syn_prng_t *p, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) p->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t syn_prng_u64(syn_prng_t *p) {
  uint64_t *s = p->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t syn_prng_below(syn_prng_t *p, uint64_t bound) {
  SYN_ASSERT(bound > 0);
  /* Rejection sampling: drop the short last bucket so every value is equally likely. */
  uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  for (;;) {
    uint64_t r = syn_prng_u64(p);
    if (r < limit) return r % bound;
  }
}

double syn_prng_unit(syn_prng_t *p) {
  return (double)(syn_prng_u64(p) >> 11) * (1.0 / 9007199254740992.0);
}

double syn_prng_normal(syn_prng_t *p) {
  double u1 = syn_prng_unit(p);
  double u2 = syn_prng_unit(p);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- time ---- */

int syn_time_parse(const char *text, int64_t *out_ns) {
  if (text == NULL || *text == '\0') return -SYN_EPARSE;
  const char *p = text;
  if (!isdigit((unsigned char)*p) && *p != '.') return -SYN_EPARSE;
  /* Integer and fraction parsed separately so "1.5s" is exact. */
  uint64_t whole = 0, frac = 0, frac_scale = 1;
  while (isdigit((unsigned char)*p)) {
    if (whole > (UINT64_MAX - 9) / 10) return -SYN_ELIMIT;
    whole = whole * 10 + (uint64_t)(*p++ - '0');
  }
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p)) return -SYN_EPARSE;
    while (isdigit((unsigned char)*p)) {
      if (frac_scale < 1000000000ULL) { frac = frac * 10 + (uint64_t)(*p - '0'); frac_scale *= 10; }
      p++;
    }
  }
  uint64_t unit;
  if (*p == '\0' || strcmp(p, "ns") == 0) unit = 1;
  else if (strcmp(p, "us") == 0) unit = SYN_NS_PER_US;
  else if (strcmp(p, "ms") == 0) unit = SYN_NS_PER_MS;
  else if (strcmp(p, "s") == 0) unit = SYN_NS_PER_S;
  else if (strcmp(p, "m") == 0 || strcmp(p, "min") == 0) unit = 60ULL * SYN_NS_PER_S;
  else if (strcmp(p, "h") == 0) unit = 3600ULL * SYN_NS_PER_S;
  else return -SYN_EPARSE;
  if (whole > (uint64_t)INT64_MAX / unit) return -SYN_ELIMIT;
  /* frac < frac_scale <= 1e9, so neither product below can overflow. */
  uint64_t ns = whole * unit + (unit / frac_scale) * frac + ((unit % frac_scale) * frac) / frac_scale;
  if (ns > (uint64_t)INT64_MAX) return -SYN_ELIMIT;
  *out_ns = (int64_t)ns;
  return 0;
}

void syn_time_format(int64_t ns, char *buf, size_t cap) {
  static const struct { int64_t unit; const char *name; } units[] = {
    { SYN_NS_PER_S, "s" }, { SYN_NS_PER_MS, "ms" }, { SYN_NS_PER_US, "us" },
  };
  int64_t a = ns < 0 ? -ns : ns;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    if (a >= units[i].unit) {
      if (a % units[i].unit == 0) snprintf(buf, cap, "%lld%s", (long long)(ns / units[i].unit), units[i].name);
      else snprintf(buf, cap, "%.3f%s", (double)ns / (double)units[i].unit, units[i].name);
      return;
    }
  }
  snprintf(buf, cap, "%lldns", (long long)ns);
}

/* ---- buffers ---- */

void syn_buf_init(syn_buf_t *b, size_t max_bytes) {
  b->data = NULL; b->len = 0; b->cap = 0; b->max_bytes = max_bytes;
}

void syn_buf_free(syn_buf_t *b) {
  free(b->data);
  b->data = NULL; b->len = 0; b->cap = 0;
}

void syn_buf_reset(syn_buf_t *b) { b->len = 0; }

int syn_buf_reserve(syn_buf_t *b, size_t extra) {
  if (extra > SIZE_MAX - b->len) return -SYN_ELIMIT;
  size_t need = b->len + extra;
  if (b->max_bytes && need > b->max_bytes) return -SYN_ELIMIT;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap *= 2;
  if (b->max_bytes && cap > b->max_bytes) cap = b->max_bytes;
  uint8_t *d = realloc(b->data, cap);
  if (d == NULL) return -SYN_ENOMEM;
  b->data = d; b->cap = cap;
  return 0;
}

int syn_buf_append(syn_buf_t *b, const void *src, size_t n) {
  int rc = syn_buf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, src, n);
  b->len += n;
  return 0;
}

int syn_buf_put_u8(syn_buf_t *b, uint8_t v) { return syn_buf_append(b, &v, 1); }
int syn_buf_put_u16(syn_buf_t *b, uint16_t v) { uint8_t t[2]; syn_put_u16(t, v); return syn_buf_append(b, t, 2); }
int syn_buf_put_u32(syn_buf_t *b, uint32_t v) { uint8_t t[4]; syn_put_u32(t, v); return syn_buf_append(b, t, 4); }
int syn_buf_put_u64(syn_buf_t *b, uint64_t v) { uint8_t t[8]; syn_put_u64(t, v); return syn_buf_append(b, t, 8); }

const char *syn_quote(char out[SYN_QUOTE_CAP], const uint8_t *p, size_t len) {
  size_t o = 0;
  out[o++] = '"';
  size_t shown = len > SYN_QUOTE_MAX_BYTES ? SYN_QUOTE_MAX_BYTES : len;
  for (size_t i = 0; i < shown; i++) {
    uint8_t c = p[i];
    if (c == '"' || c == '\\') { out[o++] = '\\'; out[o++] = (char)c; }
    else if (c >= 0x20 && c < 0x7f) out[o++] = (char)c;
    else { snprintf(out + o, 5, "\\x%02x", c); o += 4; }
  }
  out[o++] = '"';
  if (shown < len) { memcpy(out + o, "...", 3); o += 3; }
  out[o] = '\0';
  return out;
}

void syn_hex(const uint8_t *src, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) { out[2 * i] = digits[src[i] >> 4]; out[2 * i + 1] = digits[src[i] & 15]; }
  out[2 * n] = '\0';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int syn_unhex(const char *text, uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(text[2 * i]);
    if (hi < 0) return -SYN_EPARSE;
    int lo = hexval(text[2 * i + 1]);
    if (lo < 0) return -SYN_EPARSE;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return text[2 * n] == '\0' ? 0 : -SYN_EPARSE;
}

/* ---- home ---- */

/* The engine's home: $SYNOD_HOME, or the folder holding this binary/module. */
const char *syn_home_dir(void) {
  static char home[PATH_MAX];
  if (home[0]) return home;
  const char *env = getenv("SYNOD_HOME");
  if (env && *env) { snprintf(home, sizeof home, "%s", env); return home; }
  Dl_info info;
  if (dladdr((void *)syn_home_dir, &info) && info.dli_fname && strchr(info.dli_fname, '/')) {
    char path[PATH_MAX];
    if (realpath(info.dli_fname, path)) { snprintf(home, sizeof home, "%s", dirname(path)); return home; }
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) { exe[n] = '\0'; snprintf(home, sizeof home, "%s", dirname(exe)); return home; }
  snprintf(home, sizeof home, ".");
  return home;
}

