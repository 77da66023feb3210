/* json.c — the compact JSON writer (see json.h). Owns nothing but the
 * bytes it appends to the caller's buffer; never parses, never allocates
 * outside that buffer. */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void syn_json_init(syn_json_t *j, syn_buf_t *out) {
  SYN_ASSERT(out != NULL);
  memset(j, 0, sizeof *j);
  j->out = out;
}

static int put(syn_json_t *j, const void *p, size_t n) {
  if (j->err) return j->err;
  int rc = syn_buf_append(j->out, p, n);
  if (rc) j->err = rc;
  return j->err;
}

/* Before any value: the separator, and the rule that values sit where the
 * document's shape allows one. */
static int before_value(syn_json_t *j) {
  if (j->err) return j->err;
  if (j->depth == 0) {
    SYN_ASSERT(!j->done);                         /* one top-level value per document */
    return 0;
  }
  uint32_t d = j->depth - 1;
  if (j->in_object[d]) {
    SYN_ASSERT(j->want_value);                    /* an object member needs its key first */
    j->want_value = false;
    return 0;
  }
  if (j->count[d]++ > 0) return put(j, ",", 1);
  return 0;
}

static void after_value(syn_json_t *j) {
  if (j->depth == 0) j->done = true;
}

static int begin(syn_json_t *j, bool object) {
  if (before_value(j)) return j->err;
  if (j->depth == SYN_MAX_JSON_DEPTH) return j->err = -SYN_ELIMIT;
  j->in_object[j->depth] = object;
  j->count[j->depth] = 0;
  j->depth++;
  return put(j, object ? "{" : "[", 1);
}

static int end(syn_json_t *j, bool object) {
  if (j->err) return j->err;
  SYN_ASSERT(j->depth > 0);
  SYN_ASSERT(j->in_object[j->depth - 1] == object);
  SYN_ASSERT(!j->want_value);                      /* a key without its value */
  j->depth--;
  put(j, object ? "}" : "]", 1);
  after_value(j);
  return j->err;
}

int syn_json_begin_object(syn_json_t *j) { return begin(j, true); }
int syn_json_end_object(syn_json_t *j) { return end(j, true); }
int syn_json_begin_array(syn_json_t *j) { return begin(j, false); }
int syn_json_end_array(syn_json_t *j) { return end(j, false); }

/* The length of the well-formed UTF-8 sequence at p (1..4), or 0 when the
 * byte at p does not start one (RFC 3629's table: no overlong forms, no
 * surrogates, nothing over U+10FFFF). */
static size_t utf8_len(const uint8_t *p, size_t n) {
  uint8_t b = p[0];
  if (b < 0x80) return 1;
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;                    /* the range of the second byte */
  if (b >= 0xC2 && b <= 0xDF) len = 2;
  else if (b == 0xE0) { len = 3; lo = 0xA0; }
  else if (b >= 0xE1 && b <= 0xEC) len = 3;
  else if (b == 0xED) { len = 3; hi = 0x9F; }
  else if (b >= 0xEE && b <= 0xEF) len = 3;
  else if (b == 0xF0) { len = 4; lo = 0x90; }
  else if (b >= 0xF1 && b <= 0xF3) len = 4;
  else if (b == 0xF4) { len = 4; hi = 0x8F; }
  else return 0;
  if (n < len) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  return len;
}

int syn_json_escape(syn_buf_t *out, const char *s, size_t len) {
  static const char hexd[] = "0123456789abcdef";
  const uint8_t *p = (const uint8_t *)s;
  size_t i = 0, run = 0;                           /* run: bytes since i copied as they are */
  int rc = 0;
  while (i + run < len) {
    const uint8_t *c = p + i + run;
    size_t n = utf8_len(c, len - i - run);
    if (n > 0 && *c >= 0x20 && *c != '"' && *c != '\\' && *c != 0x7F) { run += n; continue; }
    if (run && (rc = syn_buf_append(out, p + i, run)) != 0) return rc;
    i += run;
    run = 0;
    char esc[8];
    size_t elen = 2;
    esc[0] = '\\';
    switch (*c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    default:
      if (n == 0) {                                /* not UTF-8: U+FFFD, one per byte */
        memcpy(esc, "\\ufffd", 6);
      } else {                                     /* a control character or DEL */
        memcpy(esc, "\\u00", 4);
        esc[4] = hexd[*c >> 4];
        esc[5] = hexd[*c & 15];
      }
      elen = 6;
      break;
    }
    if ((rc = syn_buf_append(out, esc, elen)) != 0) return rc;
    i += 1;
  }
  if (run) rc = syn_buf_append(out, p + i, run);
  return rc;
}

static int quoted(syn_json_t *j, const char *s, size_t len) {
  if (put(j, "\"", 1)) return j->err;
  int rc = syn_json_escape(j->out, s, len);
  if (rc) return j->err = rc;
  return put(j, "\"", 1);
}

int syn_json_key_n(syn_json_t *j, const char *key, size_t len) {
  if (j->err) return j->err;
  SYN_ASSERT(j->depth > 0 && j->in_object[j->depth - 1]);   /* keys live in objects */
  SYN_ASSERT(!j->want_value);                                /* two keys in a row */
  if (j->count[j->depth - 1]++ > 0 && put(j, ",", 1)) return j->err;
  if (quoted(j, key, len) || put(j, ":", 1)) return j->err;
  j->want_value = true;
  return 0;
}

int syn_json_key(syn_json_t *j, const char *key) {
  SYN_ASSERT(key != NULL);
  return syn_json_key_n(j, key, strlen(key));
}

int syn_json_string(syn_json_t *j, const char *s, size_t len) {
  if (before_value(j)) return j->err;
  quoted(j, s, len);
  after_value(j);
  return j->err;
}

int syn_json_cstr(syn_json_t *j, const char *s) {
  return s == NULL ? syn_json_null(j) : syn_json_string(j, s, strlen(s));
}

static int literal(syn_json_t *j, const char *text) {
  if (before_value(j)) return j->err;
  put(j, text, strlen(text));
  after_value(j);
  return j->err;
}

int syn_json_int(syn_json_t *j, int64_t v) {
  char t[24];
  snprintf(t, sizeof t, "%" PRId64, v);
  return literal(j, t);
}

int syn_json_uint(syn_json_t *j, uint64_t v) {
  char t[24];
  snprintf(t, sizeof t, "%" PRIu64, v);
  return literal(j, t);
}

int syn_json_double(syn_json_t *j, double v) {
  if (!isfinite(v)) return literal(j, "null");
  char t[40];
  snprintf(t, sizeof t, "%.17g", v);
  return literal(j, t);
}

int syn_json_bool(syn_json_t *j, bool v) { return literal(j, v ? "true" : "false"); }
int syn_json_null(syn_json_t *j) { return literal(j, "null"); }

int syn_json_hex(syn_json_t *j, const uint8_t *p, size_t n) {
  static const char hexd[] = "0123456789abcdef";
  if (before_value(j)) return j->err;
  if (n > (SIZE_MAX - 2) / 2) return j->err = -SYN_ELIMIT;
  int rc = syn_buf_reserve(j->out, 2 * n + 2);     /* checked against the buffer's bound first */
  if (rc) return j->err = rc;
  uint8_t *o = j->out->data + j->out->len;
  *o++ = '"';
  for (size_t i = 0; i < n; i++) { *o++ = (uint8_t)hexd[p[i] >> 4]; *o++ = (uint8_t)hexd[p[i] & 15]; }
  *o++ = '"';
  j->out->len += 2 * n + 2;
  after_value(j);
  return 0;
}

int syn_json_finish(syn_json_t *j) {
  if (j->err) return j->err;
  SYN_ASSERT(j->depth == 0 && j->done);            /* every container closed, one value written */
  return 0;
}
