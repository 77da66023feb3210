/* http.c — the HTTP/1.1 request assembler and the libuv server (see
 * http.h). Owns each connection's bounded buffers (the read buffer, the
 * assembler's URL, header, body and Authorization buffers, the queue of
 * answers owed) and the listener; never interprets a path, never calls
 * anything but the handler it was given, never blocks. */
#include "http.h"
#include "json.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ======================================================================
 * The request assembler
 * ====================================================================== */

enum { CB_NONE = 0, CB_FIELD, CB_VALUE };
enum { HDR_OTHER = 0, HDR_AUTH, HDR_EXPECT };

static syn_http_conn_t *conn_of(http_parser *p) { return p->data; }

/* Marks the stream dead with what to answer; returns the callback's error. */
static int fail(syn_http_conn_t *c, int status, const char *reason) {
  if (!c->dead) {
    c->dead = true;
    c->status = status;
    snprintf(c->reason, sizeof c->reason, "%s", reason);
  }
  return -1;
}

static int fail_nomem(syn_http_conn_t *c) { return fail(c, 500, "out of memory"); }

/* "<what> over <limit> bytes", the reason for 413, 414 and 431. */
static int fail_limit(syn_http_conn_t *c, int status, const char *what, size_t limit) {
  char reason[sizeof c->reason];
  snprintf(reason, sizeof reason, "%s over %zu bytes", what, limit);
  return fail(c, status, reason);
}

static void reset_message(syn_http_conn_t *c) {
  syn_buf_reset(&c->url);
  syn_buf_reset(&c->body);
  syn_buf_reset(&c->auth);
  syn_buf_reset(&c->scratch);
  c->header_bytes = 0;
  c->field_len = 0;
  c->header_kind = HDR_OTHER;
  c->last_cb = CB_NONE;
  c->expect_len = 0;
  c->headers_done = false;
  c->expect_continue = false;
  c->continue_taken = false;
  c->has_auth = false;
}

static int on_message_begin(http_parser *p) {
  reset_message(conn_of(p));
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  syn_http_conn_t *c = conn_of(p);
  if (n > SYN_MAX_HTTP_URL_BYTES - c->url.len) return fail_limit(c, 414, "URL", SYN_MAX_HTTP_URL_BYTES);
  return syn_buf_append(&c->url, at, n) ? fail_nomem(c) : 0;
}

/* Counts header bytes (names, values, and ": " plus CRLF per line). */
static int count_header(syn_http_conn_t *c, size_t n) {
  if (n > SYN_MAX_HTTP_HEADER_BYTES - c->header_bytes) return fail_limit(c, 431, "headers", SYN_MAX_HTTP_HEADER_BYTES);
  c->header_bytes += n;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  syn_http_conn_t *c = conn_of(p);
  if (c->last_cb != CB_FIELD) {                   /* a new header line starts */
    if (count_header(c, 4)) return -1;
    c->field_len = 0;
    c->last_cb = CB_FIELD;
  }
  if (count_header(c, n)) return -1;
  for (size_t i = 0; i < n; i++, c->field_len++)
    if (c->field_len < sizeof c->field) c->field[c->field_len] = (char)(at[i] | 0x20);
  return 0;
}

static bool field_is(const syn_http_conn_t *c, const char *name) {
  size_t n = strlen(name);
  return c->field_len == n && n <= sizeof c->field && memcmp(c->field, name, n) == 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  syn_http_conn_t *c = conn_of(p);
  if (c->last_cb != CB_VALUE) {                   /* the value of the header just named */
    c->last_cb = CB_VALUE;
    c->header_kind = HDR_OTHER;
    if (!c->headers_done && field_is(c, "authorization")) {
      if (c->has_auth) return fail(c, 400, "duplicate Authorization header");
      c->has_auth = true;
      c->header_kind = HDR_AUTH;
    } else if (!c->headers_done && field_is(c, "expect")) {
      c->header_kind = HDR_EXPECT;
      c->expect_len = 0;
    }
  }
  if (count_header(c, n)) return -1;
  if (c->header_kind == HDR_AUTH) {
    if (n > SYN_MAX_HTTP_AUTH_BYTES - c->auth.len) return fail_limit(c, 431, "Authorization", SYN_MAX_HTTP_AUTH_BYTES);
    if (syn_buf_append(&c->auth, at, n)) return fail_nomem(c);
  } else if (c->header_kind == HDR_EXPECT) {
    for (size_t i = 0; i < n; i++, c->expect_len++)
      if (c->expect_len < sizeof c->expect) c->expect[c->expect_len] = (char)(at[i] | 0x20);
  }
  return 0;
}

/* s[0..*len) without leading and trailing spaces and tabs. */
static const char *trim(const char *s, size_t *len) {
  while (*len > 0 && (s[0] == ' ' || s[0] == '\t')) { s++; (*len)--; }
  while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t')) (*len)--;
  return s;
}

static int on_headers_complete(http_parser *p) {
  syn_http_conn_t *c = conn_of(p);
  c->headers_done = true;
  c->last_cb = CB_NONE;
  bool chunked = (p->flags & F_CHUNKED) != 0;
  bool has_length = !chunked && (p->flags & F_CONTENTLENGTH) != 0;
  /* The body limit, from the header, before a byte of the body is read. */
  if (has_length && p->content_length > SYN_MAX_HTTP_BODY_BYTES) return fail_limit(c, 413, "body", SYN_MAX_HTTP_BODY_BYTES);
  size_t elen = c->expect_len < sizeof c->expect ? c->expect_len : sizeof c->expect;
  const char *e = trim(c->expect, &elen);
  bool wants_body = chunked || (has_length && p->content_length > 0);
  if (elen == 12 && memcmp(e, "100-continue", 12) == 0 && wants_body && p->http_major == 1 && p->http_minor >= 1)
    c->expect_continue = true;
  return 0;
}

static int on_chunk_header(http_parser *p) {
  syn_http_conn_t *c = conn_of(p);
  /* content_length holds this chunk's size: refused before it is read. */
  if (p->content_length > SYN_MAX_HTTP_BODY_BYTES - c->body.len) return fail_limit(c, 413, "body", SYN_MAX_HTTP_BODY_BYTES);
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  syn_http_conn_t *c = conn_of(p);
  if (n > SYN_MAX_HTTP_BODY_BYTES - c->body.len) return fail_limit(c, 413, "body", SYN_MAX_HTTP_BODY_BYTES);
  return syn_buf_append(&c->body, at, n) ? fail_nomem(c) : 0;
}

/* Appends a string and its NUL to scratch; *at is where it starts. */
static int scratch_put(syn_http_conn_t *c, const void *s, size_t n, size_t *at) {
  *at = c->scratch.len;
  if (syn_buf_append(&c->scratch, s, n) || syn_buf_put_u8(&c->scratch, 0)) return -1;
  return 0;
}

static int on_message_complete(http_parser *p) {
  syn_http_conn_t *c = conn_of(p);
  syn_http_req_t r;
  memset(&r, 0, sizeof r);
  r.method = http_method_str((enum http_method)p->method);
  r.head = p->method == HTTP_HEAD;

  /* The target: origin-form "/p?q", absolute-form "http://h/p?q", "*", or
   * CONNECT's authority "host:port" (kept whole as the path). */
  const char *url = c->url.len ? (const char *)c->url.data : "";
  size_t path_at = 0, query_at = 0, path_len = c->url.len, query_len = 0;
  const char *path_src = url;
  const char *query_src = "";
  if (p->method != HTTP_CONNECT && !(c->url.len == 1 && url[0] == '*')) {
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (c->url.len == 0 || http_parser_parse_url(url, c->url.len, 0, &u) != 0)
      return fail(c, 400, "HPE_INVALID_URL");
    if (u.field_set & (1u << UF_PATH)) {
      path_src = url + u.field_data[UF_PATH].off;
      path_len = u.field_data[UF_PATH].len;
    } else {
      path_src = "/";
      path_len = 1;
    }
    if (u.field_set & (1u << UF_QUERY)) {
      query_src = url + u.field_data[UF_QUERY].off;
      query_len = u.field_data[UF_QUERY].len;
    }
  }
  if (scratch_put(c, path_src, path_len, &path_at) || scratch_put(c, query_src, query_len, &query_at))
    return fail_nomem(c);
  r.path = (const char *)c->scratch.data + path_at;
  r.path_len = path_len;
  r.query = (const char *)c->scratch.data + query_at;
  r.query_len = query_len;

  /* The body, NUL-terminated (its buffer holds one byte over the limit). */
  if (syn_buf_put_u8(&c->body, 0)) return fail_nomem(c);
  c->body.len--;
  r.body = c->body.data;
  r.body_len = c->body.len;

  /* "Authorization: Bearer <token>", scheme case-insensitive. */
  r.authorization = c->has_auth;
  if (c->has_auth) {
    size_t alen = c->auth.len;
    const char *a = trim(c->auth.len ? (const char *)c->auth.data : "", &alen);
    if (alen > 7 && strncasecmp(a, "bearer", 6) == 0 && (a[6] == ' ' || a[6] == '\t')) {
      size_t tlen = alen - 7;
      const char *t = trim(a + 7, &tlen);
      size_t token_at;
      if (tlen > 0) {
        if (scratch_put(c, t, tlen, &token_at)) return fail_nomem(c);
        r.token = (const char *)c->scratch.data + token_at;
        r.token_len = tlen;
        r.path = (const char *)c->scratch.data + path_at;   /* scratch may have moved */
        r.query = (const char *)c->scratch.data + query_at;
      }
    }
  }

  r.keep_alive = http_should_keep_alive(p) && !p->upgrade;
  c->expect_continue = false;
  c->requests++;
  if (!r.keep_alive) c->closed = true;
  int stop = c->fn(c->ctx, &r);
  if (stop || c->closed) http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings parser_settings = {
  .on_message_begin = on_message_begin,
  .on_url = on_url,
  .on_header_field = on_header_field,
  .on_header_value = on_header_value,
  .on_headers_complete = on_headers_complete,
  .on_body = on_body,
  .on_message_complete = on_message_complete,
  .on_chunk_header = on_chunk_header,
};

void syn_http_conn_init(syn_http_conn_t *c) {
  /* http-parser's own count of raw header-section bytes (request line and
   * the whitespace our callbacks never see, included) is capped near our
   * limits instead of its 80 KiB default. The setting is process-wide and
   * this room is the library's only user; it is the same value each time. */
  http_parser_set_max_header_size(SYN_HTTP_RAW_HEADER_BYTES);
  memset(c, 0, sizeof *c);
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  syn_buf_init(&c->url, SYN_MAX_HTTP_URL_BYTES);
  syn_buf_init(&c->body, SYN_MAX_HTTP_BODY_BYTES + 1);                 /* + the NUL */
  syn_buf_init(&c->auth, SYN_MAX_HTTP_AUTH_BYTES);
  syn_buf_init(&c->scratch, SYN_MAX_HTTP_URL_BYTES + SYN_MAX_HTTP_AUTH_BYTES + 3);   /* path, query, token + NULs */
}

void syn_http_conn_free(syn_http_conn_t *c) {
  syn_buf_free(&c->url);
  syn_buf_free(&c->body);
  syn_buf_free(&c->auth);
  syn_buf_free(&c->scratch);
  memset(c, 0, sizeof *c);
}

int syn_http_conn_feed(syn_http_conn_t *c, const uint8_t *data, size_t n, size_t *used,
                       syn_http_req_fn fn, void *ctx) {
  SYN_ASSERT(fn != NULL);
  *used = 0;
  if (c->dead) return -SYN_ESTATE;
  if (c->closed) {
    c->ignored_bytes += n;
    *used = n;
    return 0;
  }
  if (n == 0) return 0;              /* http-parser reads 0 bytes as the end of the stream */
  c->fn = fn;
  c->ctx = ctx;
  size_t got = http_parser_execute(&c->parser, &parser_settings, (const char *)data, n);
  c->fn = NULL;
  c->ctx = NULL;
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (e == HPE_PAUSED) {
    http_parser_pause(&c->parser, 0);
  } else if (e != HPE_OK || c->dead) {
    if (!c->dead) fail(c, e == HPE_HEADER_OVERFLOW ? 431 : 400, http_errno_name(e));
    *used = got;
    return c->status == 500 ? -SYN_ENOMEM : -SYN_EPARSE;
  }
  *used = got;
  if (c->closed) {
    c->ignored_bytes += n - got;
    *used = n;
  } else if (got < n && e == HPE_OK) {
    /* http-parser stops early only after an upgrade, which closes the
     * connection above; anything else is refused rather than trusted. */
    fail(c, 400, "HPE_UNKNOWN");
    return -SYN_EPARSE;
  }
  return 0;
}

bool syn_http_conn_take_continue(syn_http_conn_t *c) {
  if (c->dead || c->closed || !c->expect_continue || c->continue_taken) return false;
  c->continue_taken = true;
  return true;
}

bool syn_http_authorized(const syn_http_req_t *req, const char *token, size_t token_len, const char **reason) {
  const char *why = NULL;
  if (token == NULL || token_len == 0) return true;
  if (req->token == NULL) why = "bearer token required";
  else if (req->token_len != token_len || sodium_memcmp(req->token, token, token_len) != 0)
    why = "bearer token does not match";
  if (reason) *reason = why;
  return why == NULL;
}

static int unhex_digit(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

int syn_http_query_param(const char *query, size_t query_len, const char *name, char *out, size_t cap,
                         size_t *len, bool *found) {
  SYN_ASSERT(query != NULL || query_len == 0);
  *found = false;
  *len = 0;
  if (cap > 0) out[0] = '\0';
  size_t nlen = strlen(name);
  size_t i = 0;
  while (i < query_len) {
    size_t j = i;
    while (j < query_len && query[j] != '&') j++;
    size_t eq = i;
    while (eq < j && query[eq] != '=') eq++;
    if (eq - i == nlen && memcmp(query + i, name, nlen) == 0) {
      *found = true;
      size_t o = 0;
      for (size_t k = eq < j ? eq + 1 : j; k < j; k++) {
        char ch = query[k];
        if (ch == '+') ch = ' ';
        else if (ch == '%') {
          if (k + 2 >= j) return -SYN_EPARSE;     /* needs two hex digits before the pair ends */
          int h = unhex_digit(query[k + 1]), l = unhex_digit(query[k + 2]);
          if (h < 0 || l < 0) return -SYN_EPARSE;
          ch = (char)(h * 16 + l);
          k += 2;
        }
        if (o + 1 >= cap) return -SYN_ETOOBIG;
        out[o++] = ch;
      }
      if (cap == 0) return -SYN_ETOOBIG;
      out[o] = '\0';
      *len = o;
      return 0;
    }
    i = j + 1;
  }
  return 0;
}

const char *syn_http_status_text(int status) {
  const char *t = http_status_str((enum http_status)status);
  return t == NULL || t[0] == '<' ? "Status" : t;
}

/* ======================================================================
 * The server
 * ====================================================================== */

_Static_assert(SYN_MAX_HTTP_CONNS <= 256, "a request id keeps its connection's index in 8 bits");

typedef struct hconn hconn_t;

/* One answer on its way: the uv request and the bytes it writes. */
typedef struct {
  uv_write_t w;                 /* first: the write callback gets this back */
  hconn_t *c;
  size_t len;
  uint8_t bytes[];
} wreq_t;

/* A request owed an answer, in request order. */
typedef struct {
  uint64_t id;
  bool answered;
  bool close_after;             /* the connection's last answer */
  bool head;                    /* HEAD: no body */
  wreq_t *resp;                 /* once answered, until written */
} slot_t;

struct hconn {
  syn_http_t *srv;
  uv_tcp_t tcp;
  uv_timer_t timer;             /* idle timeout, then the linger bound */
  uv_shutdown_t shutdown;
  uint32_t index;               /* in srv->conns */
  int handles;                  /* uv handles not yet closed (tcp, timer) */
  syn_http_conn_t in;
  size_t in_off, in_len;        /* inbuf bytes read but not yet fed (a paused feed) */
  slot_t slots[SYN_MAX_HTTP_PIPELINE];
  uint32_t head, count;         /* the ring of slots owed */
  size_t out_bytes;             /* answered and not yet written, plus in flight */
  bool reading;
  bool processing;              /* inside process(): answers given meanwhile do not re-enter it */
  bool draining;                /* no more requests: answer what is owed, then linger */
  bool lingering;               /* FIN sent; reading and discarding until the client closes */
  bool closing;
  uint8_t inbuf[SYN_HTTP_READ_BYTES];
};

struct syn_http {
  uv_loop_t *loop;
  uv_tcp_t listener;
  syn_http_handler_fn handler;
  void *ctx;
  char token[SYN_MAX_HTTP_TOKEN_BYTES + 1];
  size_t token_len;
  int port;
  hconn_t *conns[SYN_MAX_HTTP_CONNS];
  uint32_t max_conns;
  uint64_t next_seq;
  uint64_t idle_ms;
  uint32_t open_handles;        /* the listener, each connection, each refused socket, until closed */
  bool closing;
  syn_http_counters_t k;
};

static const char refused_503[] =
  "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 45\r\n"
  "Connection: close\r\n\r\n{\"error\":\"too many connections\",\"status\":503}";

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void process(hconn_t *c);
static void flush(hconn_t *c);

static bool owes_answers(const hconn_t *c) {
  for (uint32_t i = 0; i < c->count; i++)
    if (!c->slots[(c->head + i) % SYN_MAX_HTTP_PIPELINE].answered) return true;
  return false;
}

static void conn_handle_closed(uv_handle_t *h) {
  hconn_t *c = h->data;
  if (--c->handles > 0) return;
  for (uint32_t i = 0; i < SYN_MAX_HTTP_PIPELINE; i++) free(c->slots[i].resp);
  syn_http_conn_free(&c->in);
  SYN_ASSERT(c->srv->open_handles > 0);
  c->srv->open_handles--;
  free(c);
}

static void conn_close(hconn_t *c) {
  if (c->closing) return;
  c->closing = true;
  syn_http_t *srv = c->srv;
  SYN_ASSERT(srv->conns[c->index] == c);
  srv->conns[c->index] = NULL;
  srv->k.conns_open--;
  uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void on_timer(uv_timer_t *t) {
  hconn_t *c = t->data;
  if (c->closing) return;
  if (!c->lingering && owes_answers(c)) {          /* the handler owes an answer: not idle */
    uv_timer_start(&c->timer, on_timer, c->srv->idle_ms, 0);
    return;
  }
  if (!c->lingering) c->srv->k.idle_closed++;
  conn_close(c);
}

static void arm_idle(hconn_t *c) {
  if (!c->closing && !c->lingering) uv_timer_start(&c->timer, on_timer, c->srv->idle_ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  hconn_t *c = h->data;
  /* Reading runs only while every byte read before was fed (or is being
   * discarded), so the one buffer is free. */
  SYN_ASSERT(c->in_off == c->in_len);
  c->in_off = c->in_len = 0;
  *buf = uv_buf_init((char *)c->inbuf, sizeof c->inbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  hconn_t *c = s->data;
  if (c->closing || nread == 0) return;
  if (nread < 0) {                                  /* EOF or an error: the client is gone */
    if (!c->lingering && owes_answers(c)) c->srv->k.aborted++;
    conn_close(c);
    return;
  }
  if (c->lingering) return;                         /* discarded */
  c->in_off = 0;
  c->in_len = (size_t)nread;
  process(c);
}

/* Reads while there is room for more requests and nothing left unfed;
 * stops otherwise (the backpressure on a pipelining client). */
static void update_reading(hconn_t *c) {
  if (c->closing) return;
  bool want = c->lingering ||
              (!c->draining && c->in_off == c->in_len && c->count < SYN_MAX_HTTP_PIPELINE &&
               c->out_bytes <= SYN_HTTP_OUT_PAUSE_BYTES);
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) { conn_close(c); return; }
    c->reading = true;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
}

static void on_write(uv_write_t *w, int status) {
  wreq_t *r = (wreq_t *)w;
  hconn_t *c = r->c;
  SYN_ASSERT(c->out_bytes >= r->len);
  c->out_bytes -= r->len;
  free(r);
  if (c->closing) return;
  if (status < 0) {
    if (!c->lingering && owes_answers(c)) c->srv->k.aborted++;
    conn_close(c);
    return;
  }
  if (c->lingering) return;
  arm_idle(c);
  if (c->in_off < c->in_len) process(c);            /* a paused feed may go on now */
  else update_reading(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  hconn_t *c = req->handle->data;
  if (!c->closing && status < 0) conn_close(c);
}

/* After the connection's last answer: FIN after the queued writes, then
 * read and discard until the client closes or SYN_HTTP_LINGER_MS pass, so
 * the answer is not lost to a reset caused by unread request bytes. */
static void begin_linger(hconn_t *c) {
  c->draining = true;
  c->lingering = true;
  c->in_off = c->in_len = 0;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) { conn_close(c); return; }
  uv_timer_start(&c->timer, on_timer, SYN_HTTP_LINGER_MS, 0);
  update_reading(c);
}

static int write_bytes(hconn_t *c, wreq_t *r) {
  r->c = c;
  uv_buf_t b = uv_buf_init((char *)r->bytes, (unsigned)r->len);
  int rc = uv_write(&r->w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc != 0) {
    c->out_bytes -= r->len;
    free(r);
    conn_close(c);
  }
  return rc;
}

/* Writes the answers at the head of the queue, in request order. */
static void flush(hconn_t *c) {
  while (!c->closing && c->count > 0 && c->slots[c->head].answered) {
    slot_t *s = &c->slots[c->head];
    wreq_t *r = s->resp;
    bool last = s->close_after;
    s->resp = NULL;
    c->head = (c->head + 1) % SYN_MAX_HTTP_PIPELINE;
    c->count--;
    if (write_bytes(c, r) != 0) return;
    if (last) {
      begin_linger(c);
      return;
    }
  }
}

/* The whole answer: status line, headers, body (none for HEAD). */
static wreq_t *build(int status, const char *ctype, const void *body, size_t len, bool close_after, bool head) {
  char hdr[512];
  int h = snprintf(hdr, sizeof hdr,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n%s\r\n",
                   status, syn_http_status_text(status), ctype, len, close_after ? "close" : "keep-alive",
                   status == 401 ? "WWW-Authenticate: Bearer\r\n" : "");
  SYN_ASSERT(h > 0 && (size_t)h < sizeof hdr);     /* ctype is at most 128 bytes */
  size_t blen = head ? 0 : len;
  wreq_t *r = malloc(sizeof *r + (size_t)h + blen);
  if (r == NULL) return NULL;
  memcpy(r->bytes, hdr, (size_t)h);
  if (blen) memcpy(r->bytes + h, body, blen);
  r->len = (size_t)h + blen;
  return r;
}

#define MAX_CTYPE_BYTES 128

/* Puts the answer into slot s of c and writes what is in order. */
static int answer(hconn_t *c, slot_t *s, int status, const char *ctype, const void *body, size_t len) {
  wreq_t *r = build(status, ctype ? ctype : "application/json", body, len, s->close_after, s->head);
  if (r == NULL) return -SYN_ENOMEM;
  s->resp = r;
  s->answered = true;
  c->out_bytes += r->len;
  c->srv->k.by_class[status / 100]++;
  flush(c);
  return 0;
}

/* {"error": reason, "status": status} into b. */
static int error_body(syn_buf_t *b, int status, const char *reason) {
  syn_json_t j;
  syn_json_init(&j, b);
  syn_json_begin_object(&j);
  syn_json_key(&j, "error");
  syn_json_cstr(&j, reason ? reason : syn_http_status_text(status));
  syn_json_key(&j, "status");
  syn_json_int(&j, status);
  syn_json_end_object(&j);
  return syn_json_finish(&j);
}

static int answer_error(hconn_t *c, slot_t *s, int status, const char *reason) {
  syn_buf_t b;
  syn_buf_init(&b, SYN_MAX_HTTP_RESPONSE_BYTES);
  int rc = error_body(&b, status, reason);
  if (rc == 0) rc = answer(c, s, status, NULL, b.data, b.len);
  syn_buf_free(&b);
  return rc;
}

static slot_t *new_slot(hconn_t *c, bool close_after, bool head) {
  SYN_ASSERT(c->count < SYN_MAX_HTTP_PIPELINE);
  slot_t *s = &c->slots[(c->head + c->count) % SYN_MAX_HTTP_PIPELINE];
  c->count++;
  memset(s, 0, sizeof *s);
  s->id = (++c->srv->next_seq << 8) | c->index;
  s->close_after = close_after;
  s->head = head;
  return s;
}

static bool room_for_more(const hconn_t *c) {
  return c->count < SYN_MAX_HTTP_PIPELINE && c->out_bytes <= SYN_HTTP_OUT_PAUSE_BYTES;
}

/* The assembler's callback: one complete request. */
static int on_request(void *ctx, const syn_http_req_t *req) {
  hconn_t *c = ctx;
  syn_http_t *srv = c->srv;
  slot_t *s = new_slot(c, !req->keep_alive, req->head);
  uint64_t id = s->id;
  srv->k.requests++;
  arm_idle(c);
  const char *why = NULL;
  if (!syn_http_authorized(req, srv->token, srv->token_len, &why)) {
    srv->k.unauthorized++;
    if (answer_error(c, s, 401, why) != 0) conn_close(c);
  } else {
    syn_http_req_t r = *req;
    r.id = id;
    srv->handler(srv->ctx, &r);
  }
  if (c->closing || srv->closing) return 1;
  return room_for_more(c) ? 0 : 1;
}

static void maybe_continue(hconn_t *c) {
  if (c->closing || c->draining || c->count > 0) return;
  if (!syn_http_conn_take_continue(&c->in)) return;
  wreq_t *r = malloc(sizeof *r + sizeof continue_100 - 1);
  if (r == NULL) return;                            /* the client sends its body after its own wait */
  memcpy(r->bytes, continue_100, sizeof continue_100 - 1);
  r->len = sizeof continue_100 - 1;
  c->out_bytes += r->len;
  write_bytes(c, r);
}

/* Feeds what was read, request by request, while there is room. */
static void process(hconn_t *c) {
  if (c->processing) return;
  c->processing = true;
  while (!c->closing && !c->draining && !c->srv->closing && c->in_off < c->in_len && room_for_more(c)) {
    size_t used = 0;
    int rc = syn_http_conn_feed(&c->in, c->inbuf + c->in_off, c->in_len - c->in_off, &used, on_request, c);
    c->in_off += used;
    if (c->closing) break;
    if (rc == -SYN_EPARSE || rc == -SYN_ENOMEM) {
      c->srv->k.parse_errors++;
      c->draining = true;
      if (c->count >= SYN_MAX_HTTP_PIPELINE || answer_error(c, new_slot(c, true, false), c->in.status, c->in.reason) != 0)
        conn_close(c);
      break;
    }
    if (rc != 0) { conn_close(c); break; }
    if (c->in.closed) c->draining = true;
  }
  if (c->draining) c->in_off = c->in_len;           /* nothing after the last request is read */
  c->processing = false;
  if (c->closing) return;
  flush(c);
  maybe_continue(c);
  update_reading(c);
}

static void refused_closed(uv_handle_t *h) {
  syn_http_t *srv = h->data;
  srv->open_handles--;
  free(h);
}

static void on_connection(uv_stream_t *listener, int status) {
  syn_http_t *srv = listener->data;
  if (status < 0) {
    SYN_LOG_WARN("http: accept: %s", uv_strerror(status));
    return;
  }
  if (srv->closing) return;
  /* libuv stops watching the listener until this connection is accepted,
   * so even a refused one is accepted (then closed). */
  uint32_t idx = SYN_MAX_HTTP_CONNS;
  if (srv->k.conns_open < srv->max_conns)
    for (uint32_t i = 0; i < SYN_MAX_HTTP_CONNS; i++)
      if (srv->conns[i] == NULL) { idx = i; break; }
  if (idx == SYN_MAX_HTTP_CONNS) {
    uv_tcp_t *t = malloc(sizeof *t);
    if (t == NULL || uv_tcp_init(srv->loop, t) != 0) {
      free(t);
      SYN_LOG_ERROR("http: cannot accept a connection to refuse it: the listener stalls");
      return;
    }
    t->data = srv;
    srv->open_handles++;
    srv->k.conns_refused++;
    if (uv_accept(listener, (uv_stream_t *)t) == 0) {
      uv_buf_t b = uv_buf_init((char *)refused_503, sizeof refused_503 - 1);
      uv_try_write((uv_stream_t *)t, &b, 1);        /* best effort: the answer is a courtesy */
    }
    uv_close((uv_handle_t *)t, refused_closed);
    return;
  }
  hconn_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    SYN_LOG_ERROR("http: out of memory for a connection: the listener stalls");
    return;
  }
  c->srv = srv;
  c->index = idx;
  syn_http_conn_init(&c->in);
  uv_tcp_init(srv->loop, &c->tcp);
  uv_timer_init(srv->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->handles = 2;
  srv->open_handles++;
  srv->conns[idx] = c;
  srv->k.conns_open++;
  srv->k.conns_accepted++;
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) { conn_close(c); return; }
  uv_tcp_nodelay(&c->tcp, 1);
  arm_idle(c);
  update_reading(c);
}

static void listener_closed(uv_handle_t *h) {
  syn_http_t *srv = h->data;
  srv->open_handles--;
}

static void listener_closed_free(uv_handle_t *h) { free(h->data); }

int syn_http_new(syn_http_t **out, uv_loop_t *loop, const char *host, int port, const char *token,
                 syn_http_handler_fn handler, void *ctx) {
  *out = NULL;
  if (loop == NULL || handler == NULL || port < 0 || port > 65535) return -SYN_EINVAL;
  size_t token_len = token ? strlen(token) : 0;
  if (token_len > SYN_MAX_HTTP_TOKEN_BYTES) return -SYN_EINVAL;
  if (host == NULL || strcmp(host, "localhost") == 0) host = "127.0.0.1";
  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0)
    return -SYN_EINVAL;
  syn_http_t *srv = calloc(1, sizeof *srv);
  if (srv == NULL) return -SYN_ENOMEM;
  srv->loop = loop;
  srv->handler = handler;
  srv->ctx = ctx;
  memcpy(srv->token, token ? token : "", token_len);
  srv->token_len = token_len;
  srv->max_conns = SYN_MAX_HTTP_CONNS;
  srv->idle_ms = SYN_HTTP_IDLE_TIMEOUT_MS;
  if (uv_tcp_init(loop, &srv->listener) != 0) { free(srv); return -SYN_EIO; }
  srv->listener.data = srv;
  srv->open_handles = 1;
  int rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  if (rc == 0) rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen);
  if (rc != 0) {
    SYN_LOG_ERROR("http: cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
    uv_close((uv_handle_t *)&srv->listener, listener_closed_free);
    return -SYN_EIO;
  }
  srv->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
  *out = srv;
  return 0;
}

int syn_http_port(const syn_http_t *srv) { return srv->port; }

void syn_http_set_idle_timeout(syn_http_t *srv, uint64_t ms) {
  SYN_ASSERT(ms > 0);
  srv->idle_ms = ms;
}

void syn_http_set_max_conns(syn_http_t *srv, uint32_t n) {
  SYN_ASSERT(n >= 1 && n <= SYN_MAX_HTTP_CONNS);
  srv->max_conns = n;
}

void syn_http_counters(const syn_http_t *srv, syn_http_counters_t *out) { *out = srv->k; }

/* The open slot for id, or NULL (connection gone, answered, unknown). */
static slot_t *find_slot(syn_http_t *srv, uint64_t id, hconn_t **conn) {
  uint64_t idx = id & 0xff;
  if (idx >= SYN_MAX_HTTP_CONNS) return NULL;
  hconn_t *c = srv->conns[idx];
  if (c == NULL || c->closing) return NULL;
  for (uint32_t i = 0; i < c->count; i++) {
    slot_t *s = &c->slots[(c->head + i) % SYN_MAX_HTTP_PIPELINE];
    if (s->id == id && !s->answered) { *conn = c; return s; }
  }
  return NULL;
}

static int check_answer(syn_http_t *srv, uint64_t req_id, int status, const char *ctype, size_t len,
                        hconn_t **c, slot_t **s) {
  if (status < 200 || status > 599) return -SYN_EINVAL;
  if (ctype && (strlen(ctype) > MAX_CTYPE_BYTES || strpbrk(ctype, "\r\n") != NULL)) return -SYN_EINVAL;
  if (len > SYN_MAX_HTTP_RESPONSE_BYTES) return -SYN_ETOOBIG;
  *s = srv->closing ? NULL : find_slot(srv, req_id, c);
  if (*s == NULL) {
    srv->k.late_answers++;
    return -SYN_ESTATE;
  }
  if ((*c)->out_bytes + len + 512 > SYN_MAX_HTTP_OUT_BYTES) {   /* a client that does not read */
    srv->k.slow_closed++;
    conn_close(*c);
    return -SYN_ELIMIT;
  }
  return 0;
}

/* After an answer given outside process(): a paused feed may go on. */
static void after_answer(hconn_t *c) {
  if (c->closing || c->processing) return;
  if (c->in_off < c->in_len) process(c);
  else {
    maybe_continue(c);
    update_reading(c);
  }
}

int syn_http_respond(syn_http_t *srv, uint64_t req_id, int status, const char *content_type,
                     const void *body, size_t len) {
  hconn_t *c;
  slot_t *s;
  int rc = check_answer(srv, req_id, status, content_type, len, &c, &s);
  if (rc) return rc;
  rc = answer(c, s, status, content_type, body, len);
  if (rc) { conn_close(c); return rc; }
  after_answer(c);
  return 0;
}

int syn_http_error(syn_http_t *srv, uint64_t req_id, int status, const char *reason) {
  hconn_t *c;
  slot_t *s;
  syn_buf_t b;
  syn_buf_init(&b, SYN_MAX_HTTP_RESPONSE_BYTES);
  int rc = error_body(&b, status, reason);
  if (rc == -SYN_ELIMIT) rc = -SYN_ETOOBIG;          /* a reason too long: the request stays open */
  if (rc == 0) rc = check_answer(srv, req_id, status, NULL, b.len, &c, &s);
  if (rc == 0) {
    rc = answer(c, s, status, NULL, b.data, b.len);
    if (rc) conn_close(c);
    else after_answer(c);
  }
  syn_buf_free(&b);
  return rc;
}

void syn_http_close(syn_http_t *srv) {
  if (srv->closing) return;
  srv->closing = true;
  uv_close((uv_handle_t *)&srv->listener, listener_closed);
  for (uint32_t i = 0; i < SYN_MAX_HTTP_CONNS; i++)
    if (srv->conns[i] != NULL) conn_close(srv->conns[i]);
}

bool syn_http_closed(const syn_http_t *srv) { return srv->closing && srv->open_handles == 0; }

void syn_http_free(syn_http_t *srv) {
  if (srv == NULL) return;
  SYN_ASSERT(syn_http_closed(srv));
  free(srv);
}
