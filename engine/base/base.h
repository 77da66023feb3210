/* base.h — the room every other module stands in: error codes, always-on
 * assertions, leveled logging, the seeded PRNG, time units and byte buffers.
 * Nothing here touches the network, a file (but stderr) or a Lua state. */
#ifndef SYN_BASE_H
#define SYN_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define SYN_VERSION "0.1.0"

/* ---- errors: functions return 0 or one of these, negated ---- */
enum {
  SYN_EINVAL = 1,      /* an argument is not valid */
  SYN_ENOMEM,          /* an allocation failed */
  SYN_ELIMIT,          /* a named SYN_MAX_* limit would be exceeded */
  SYN_ETRUNC,          /* input ends before the structure does */
  SYN_ETOOBIG,         /* frame or field larger than its limit */
  SYN_EMAGIC,          /* frame does not start with the synod magic */
  SYN_EVERSION,        /* unsupported wire version */
  SYN_ETYPE,           /* unknown message type */
  SYN_ETRAILING,       /* bytes left over after a complete structure */
  SYN_EBADSIG,         /* signature does not verify */
  SYN_ESENDER,         /* sender id unknown or out of range */
  SYN_EIO,             /* file or system call failed */
  SYN_EPARSE,          /* text could not be parsed */
  SYN_ESTATE,          /* operation not valid in the current state */
  SYN_ECORRUPT,        /* persisted data fails its seal or does not form a whole state */
  SYN_E_COUNT
};

/* The text for a return code (0 or -SYN_E*). Never NULL. */
const char *syn_strerror(int rc);

/* ---- assertions: always on, in every build ---- */
#define SYN_ASSERT(cond) \
  do { if (!(cond)) syn_assert_fail(#cond, __FILE__, __LINE__); } while (0)
_Noreturn void syn_assert_fail(const char *expr, const char *file, int line);

/* ---- logging: leveled, to stderr ---- */
typedef enum {
  SYN_LOG_TRACE = 0, SYN_LOG_DEBUG, SYN_LOG_INFO, SYN_LOG_WARN, SYN_LOG_ERROR,
  SYN_LOG_OFF
} syn_log_level_t;
void syn_log_set_level(syn_log_level_t level);
syn_log_level_t syn_log_get_level(void);
/* Parses "trace|debug|info|warn|error|off" into *out. */
int syn_log_parse_level(const char *text, syn_log_level_t *out);
void syn_log(syn_log_level_t level, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));
#define SYN_LOG_ERROR(...) syn_log(SYN_LOG_ERROR, __VA_ARGS__)
#define SYN_LOG_WARN(...)  syn_log(SYN_LOG_WARN, __VA_ARGS__)
#define SYN_LOG_INFO(...)  syn_log(SYN_LOG_INFO, __VA_ARGS__)
#define SYN_LOG_DEBUG(...) syn_log(SYN_LOG_DEBUG, __VA_ARGS__)

/* ---- PRNG: xoshiro256** seeded through splitmix64; the algorithm is part
 * of the trace contract, so it never changes silently. ---- */
typedef struct { uint64_t s[4]; } syn_prng_t;
void syn_prng_seed(syn_prng_t *p, uint64_t seed);
uint64_t syn_prng_u64(syn_prng_t *p);
/* Uniform in [0, bound) without modulo bias; bound > 0. */
uint64_t syn_prng_below(syn_prng_t *p, uint64_t bound);
/* Uniform double in [0, 1). */
double syn_prng_unit(syn_prng_t *p);
/* A standard normal variate (Box–Muller, one value per call). */
double syn_prng_normal(syn_prng_t *p);

/* ---- time: signed 64-bit nanoseconds everywhere ---- */
#define SYN_NS_PER_US 1000LL
#define SYN_NS_PER_MS 1000000LL
#define SYN_NS_PER_S  1000000000LL
/* Parses "250us", "5ms", "2s", "1.5s", "100ns", "3m", "1h", or a bare number
 * of nanoseconds, into *out_ns. Rejects negatives, overflow, unknown units. */
int syn_time_parse(const char *text, int64_t *out_ns);
/* Formats ns into buf as the shortest exact unit form ("5ms", "1.5s"). */
void syn_time_format(int64_t ns, char *buf, size_t cap);

/* ---- byte buffers ---- */
typedef struct {
  uint8_t *data;
  size_t len;
  size_t cap;
  size_t max_bytes;   /* growth stops here with -SYN_ELIMIT; 0 = no limit */
} syn_buf_t;
void syn_buf_init(syn_buf_t *b, size_t max_bytes);
void syn_buf_free(syn_buf_t *b);
void syn_buf_reset(syn_buf_t *b);
int syn_buf_reserve(syn_buf_t *b, size_t extra);
int syn_buf_append(syn_buf_t *b, const void *src, size_t n);
int syn_buf_put_u8(syn_buf_t *b, uint8_t v);
int syn_buf_put_u16(syn_buf_t *b, uint16_t v);   /* big-endian */
int syn_buf_put_u32(syn_buf_t *b, uint32_t v);   /* big-endian */
int syn_buf_put_u64(syn_buf_t *b, uint64_t v);   /* big-endian */

/* Big-endian loads and stores for fixed-size fields. */
static inline void syn_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void syn_put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void syn_put_u64(uint8_t *p, uint64_t v) { syn_put_u32(p, (uint32_t)(v >> 32)); syn_put_u32(p + 4, (uint32_t)v); }
static inline uint16_t syn_get_u16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t syn_get_u32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t syn_get_u64(const uint8_t *p) { return ((uint64_t)syn_get_u32(p) << 32) | syn_get_u32(p + 4); }

/* A value quoted for a human: printable ASCII kept, '"' and '\' escaped,
 * other bytes as \xNN, cut ("...") after SYN_QUOTE_MAX_BYTES input bytes.
 * Writes into out and returns it. */
#define SYN_QUOTE_MAX_BYTES 40
#define SYN_QUOTE_CAP (SYN_QUOTE_MAX_BYTES * 4 + 8)
const char *syn_quote(char out[SYN_QUOTE_CAP], const uint8_t *p, size_t len);

/* Lowercase hex of n bytes into out (2n+1 bytes with the NUL). */
void syn_hex(const uint8_t *src, size_t n, char *out);
/* Parses exactly 2n hex digits into n bytes. */
int syn_unhex(const char *text, uint8_t *out, size_t n);

/* The engine's home: $SYNOD_HOME, or the folder holding this binary or module
 * (data/ and scripts/ live there). */
const char *syn_home_dir(void);

#endif
