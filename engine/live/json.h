/* json.h — a small JSON writer for the live runtime's admin answers
 * (/status, /peers, /detections, error bodies). It appends compact JSON to
 * a syn_buf_t (whose max_bytes bounds the output) and keeps the first
 * error, so a caller writes a whole document and checks once at the end:
 *
 *   syn_buf_t b; syn_buf_init(&b, 1 << 20);
 *   syn_json_t j; syn_json_init(&j, &b);
 *   syn_json_begin_object(&j);
 *   syn_json_key(&j, "view");  syn_json_uint(&j, 3);
 *   syn_json_key(&j, "peers"); syn_json_begin_array(&j); … syn_json_end_array(&j);
 *   syn_json_end_object(&j);
 *   int rc = syn_json_finish(&j);          -- 0, -SYN_ELIMIT or -SYN_ENOMEM
 *
 * Strings: '"', '\' and control characters are escaped, well-formed UTF-8
 * passes through, and every byte that is not part of well-formed UTF-8
 * (overlong forms, surrogates, code points over U+10FFFF, stray or cut
 * sequences) becomes U+FFFD, so the output is always valid JSON and valid
 * UTF-8 whatever bytes come in. Binary values belong in syn_json_hex.
 *
 * Misuse by the caller (a value where a key must come, a key in an array,
 * an unbalanced end) is a programming error and trips SYN_ASSERT; nesting
 * deeper than SYN_MAX_JSON_DEPTH is an input-shaped limit and becomes the
 * sticky -SYN_ELIMIT instead. Once an error is set every later call does
 * nothing and returns it.
 *
 * Never: a parser, a socket, floating-point formatting of NaN or infinity
 * (written as null), or memory beyond the buffer it was given. */
#ifndef SYN_JSON_H
#define SYN_JSON_H

#include "../base/base.h"

#define SYN_MAX_JSON_DEPTH 32   /* nested objects and arrays in one document */

typedef struct {
  syn_buf_t *out;
  int err;                               /* first error (sticky), 0 while all went well */
  uint32_t depth;                        /* open containers */
  bool in_object[SYN_MAX_JSON_DEPTH];    /* per open container: object (true) or array */
  uint32_t count[SYN_MAX_JSON_DEPTH];    /* values (members) written in it so far */
  bool want_value;                       /* a key was written; its value must follow */
  bool done;                             /* a complete top-level value was written */
} syn_json_t;

/* Starts a document appended to out (which keeps what it holds). */
void syn_json_init(syn_json_t *j, syn_buf_t *out);

/* Each returns the sticky error: 0 while every write so far succeeded. */
int syn_json_begin_object(syn_json_t *j);
int syn_json_end_object(syn_json_t *j);
int syn_json_begin_array(syn_json_t *j);
int syn_json_end_array(syn_json_t *j);
/* A member's key inside an object; its value is the next write. */
int syn_json_key(syn_json_t *j, const char *key);
int syn_json_key_n(syn_json_t *j, const char *key, size_t len);
int syn_json_string(syn_json_t *j, const char *s, size_t len);
int syn_json_cstr(syn_json_t *j, const char *s);          /* NUL-terminated; NULL writes null */
int syn_json_int(syn_json_t *j, int64_t v);
int syn_json_uint(syn_json_t *j, uint64_t v);
int syn_json_double(syn_json_t *j, double v);             /* %.17g; NaN and ±inf as null */
int syn_json_bool(syn_json_t *j, bool v);
int syn_json_null(syn_json_t *j);
/* Bytes as a string of lowercase hex digits. */
int syn_json_hex(syn_json_t *j, const uint8_t *p, size_t n);

/* Ends the document: 0 when it is one complete value, the sticky error
 * otherwise. SYN_ASSERTs that every container was closed (when no error). */
int syn_json_finish(syn_json_t *j);

/* Appends s as the body of a JSON string (no quotes) to out: the escaping
 * rules above. Returns 0, -SYN_ELIMIT or -SYN_ENOMEM. */
int syn_json_escape(syn_buf_t *out, const char *s, size_t len);

#endif
