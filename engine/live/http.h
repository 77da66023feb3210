/* http.h — the HTTP/1.1 server the live node mounts its admin API on. It
 * knows nothing of nodes or protocols: the runtime gives it a handler, the
 * handler answers each request now or later, and this room gets the bytes
 * right, in order, within bounds.
 *
 * Two layers:
 *
 * 1. syn_http_conn_t, the request assembler — no sockets, like stream.h is
 *    for frames. Raw bytes go in through http-parser (2.9); complete
 *    requests come out: method, path (without the query), query, body, the
 *    bearer token if any, keep-alive. Every limit is checked before memory
 *    is used for it:
 *      URL over SYN_MAX_HTTP_URL_BYTES                        → 414
 *      header bytes over SYN_MAX_HTTP_HEADER_BYTES, or one
 *      Authorization value over SYN_MAX_HTTP_AUTH_BYTES, or
 *      the raw request line + headers over
 *      SYN_HTTP_RAW_HEADER_BYTES (whitespace padding)         → 431
 *      Content-Length over SYN_MAX_HTTP_BODY_BYTES (from the
 *      header, before any body byte), or chunks adding up to
 *      more (from each chunk's size line)                     → 413
 *      anything http-parser refuses                           → 400, reason
 *                                                               its error name
 *                                                               ("HPE_INVALID_METHOD")
 *    After an error the assembler is dead: the connection answers that
 *    error (after the answers it owes) and closes. After a request that
 *    ends the connection (Connection: close, HTTP/1.0 without keep-alive,
 *    an Upgrade) later bytes are ignored.
 *
 * 2. syn_http_t, the server on a libuv loop. Each complete request goes to
 *    the handler with an opaque id; the handler answers with
 *    syn_http_respond / syn_http_error during the call or any time later
 *    (POST /submit waits for a commit). Answers to pipelined requests go
 *    out in request order whatever order they are given in. With a token
 *    configured, a request without `Authorization: Bearer <token>` is
 *    answered 401 (JSON, WWW-Authenticate: Bearer) and never reaches the
 *    handler; the connection stays usable.
 *
 *    Bounds: SYN_MAX_HTTP_CONNS open connections (more are answered 503 and
 *    closed, counted); SYN_MAX_HTTP_PIPELINE requests owed per connection
 *    (past it the server stops reading that connection until answers go
 *    out); SYN_MAX_HTTP_OUT_BYTES of answers queued per connection (a
 *    client that does not read is closed, counted); an idle timeout (no
 *    complete request and no finished write for that long, with no answer
 *    owed: closed, counted); a client that closes its side loses the
 *    answers it is owed (they return -SYN_ESTATE).
 *
 * Never: a node, a protocol, a file, Lua, or a blocking call. */
#ifndef SYN_HTTP_H
#define SYN_HTTP_H

#include <http_parser.h>
#include <uv.h>

#include "../base/base.h"

#define SYN_MAX_HTTP_BODY_BYTES     (64u << 10)   /* one request body → 413 */
#define SYN_MAX_HTTP_HEADER_BYTES   (8u << 10)    /* names + values + 4 per line, one request → 431 */
#define SYN_MAX_HTTP_URL_BYTES      (8u << 10)    /* the request target → 414 */
#define SYN_MAX_HTTP_AUTH_BYTES     1024          /* one Authorization value → 431 */
/* http-parser's raw count of the request line and headers, whitespace
 * included (its HPE_HEADER_OVERFLOW → 431): the two limits above plus room. */
#define SYN_HTTP_RAW_HEADER_BYTES   (SYN_MAX_HTTP_URL_BYTES + SYN_MAX_HTTP_HEADER_BYTES + 1024)
#define SYN_MAX_HTTP_TOKEN_BYTES    256           /* the configured token */
#define SYN_MAX_HTTP_CONNS          64            /* open connections per server */
#define SYN_MAX_HTTP_PIPELINE       16            /* requests owed an answer, per connection */
#define SYN_MAX_HTTP_RESPONSE_BYTES (8u << 20)    /* one answer's body */
#define SYN_MAX_HTTP_OUT_BYTES      (16u << 20)   /* answers queued, not yet written, per connection */
#define SYN_HTTP_OUT_PAUSE_BYTES    (1u << 20)    /* stop reading requests while more than this is queued */
#define SYN_HTTP_READ_BYTES         (16u << 10)   /* one connection's read buffer */
#define SYN_HTTP_IDLE_TIMEOUT_MS    30000         /* default idle timeout */
#define SYN_HTTP_LINGER_MS          2000          /* after the last answer: drain input this long, then close */

/* ---- the request assembler ---- */

/* One complete request. Every pointer is valid during the callback (or
 * handler call) that receives it only: copy what you keep. Strings are
 * NUL-terminated and also carry their length (a body may hold NULs). */
typedef struct {
  uint64_t id;              /* the server's opaque handle for answering; 0 from the assembler alone */
  const char *method;       /* "GET", "POST", … (http-parser's names) */
  const char *path;         /* without the query, not percent-decoded: "/status" */
  size_t path_len;
  const char *query;        /* after '?', not decoded; "" when none */
  size_t query_len;
  const uint8_t *body;      /* de-chunked; NUL-terminated too */
  size_t body_len;
  const char *token;        /* from "Authorization: Bearer <token>"; NULL when absent */
  size_t token_len;
  bool authorization;       /* an Authorization header was present (Bearer or not) */
  bool keep_alive;          /* false: this is the connection's last request */
  bool head;                /* HEAD: the answer goes out without its body */
} syn_http_req_t;

/* Called for each complete request, in order. Return 0 to go on, non-zero
 * to pause the feed right after this request (see syn_http_conn_feed). */
typedef int (*syn_http_req_fn)(void *ctx, const syn_http_req_t *req);

typedef struct {
  http_parser parser;
  syn_buf_t url, body, auth, scratch;   /* bounded by their SYN_MAX_* */
  size_t header_bytes;                  /* of the message being read */
  char field[16];                       /* the current header name, lowercased, cut */
  size_t field_len;
  int header_kind;                      /* what the current header is to us (http.c) */
  int last_cb;                          /* the last header callback: none, name or value */
  char expect[16];                      /* the Expect value, lowercased, cut */
  size_t expect_len;
  bool headers_done;                    /* later header callbacks are trailers */
  bool expect_continue;                 /* the message asked for 100 Continue */
  bool continue_taken;
  bool has_auth;
  bool dead;                            /* an error was found: status/reason say which */
  bool closed;                          /* the last request was delivered; later bytes are ignored */
  int status;                           /* 400, 413, 414 or 431 once dead */
  char reason[64];
  uint64_t requests;                    /* requests delivered */
  uint64_t ignored_bytes;               /* fed after the connection's last request */
  syn_http_req_fn fn;                   /* during a feed */
  void *ctx;
  bool pause;
} syn_http_conn_t;

void syn_http_conn_init(syn_http_conn_t *c);
void syn_http_conn_free(syn_http_conn_t *c);

/* Feeds received bytes; calls fn for each request they complete, in order.
 * *used says how many bytes were consumed: all of them, unless fn asked to
 * pause (feed the rest later) or an error stopped the stream. Returns 0,
 * -SYN_EPARSE when the stream is bad (c->status and c->reason say what to
 * answer; the assembler is dead from then on and refuses every feed with
 * -SYN_ESTATE), or -SYN_ENOMEM. Bytes after the connection's last request
 * are consumed and ignored (c->closed). */
int syn_http_conn_feed(syn_http_conn_t *c, const uint8_t *data, size_t n, size_t *used,
                       syn_http_req_fn fn, void *ctx);

/* True once per message when its headers asked for "Expect: 100-continue",
 * were accepted, and its body has not fully arrived: the server may send
 * "100 Continue". */
bool syn_http_conn_take_continue(syn_http_conn_t *c);

/* Whether req carries exactly `token` (token_len > 0) as its bearer token.
 * Lengths are compared first, the bytes in constant time (sodium_memcmp).
 * With token NULL or token_len 0 every request passes. When it fails,
 * *reason (if given) says why in words for the 401 body. */
bool syn_http_authorized(const syn_http_req_t *req, const char *token, size_t token_len, const char **reason);

/* Finds the first `name=value` in a query string ("a=1&b=x%20y") and
 * percent-decodes its value ('+' is a space) into out, NUL-terminated.
 * *found tells whether the name occurs; *len is the decoded length (the
 * value may hold NULs). Returns 0, -SYN_EPARSE for a bad %-escape,
 * -SYN_ETOOBIG when the value and its NUL do not fit in cap bytes. */
int syn_http_query_param(const char *query, size_t query_len, const char *name, char *out, size_t cap,
                         size_t *len, bool *found);

/* The reason phrase for a status ("Not Found"); "Status" when unknown. */
const char *syn_http_status_text(int status);

/* ---- the server ---- */

typedef struct syn_http syn_http_t;

/* Called for each request that passed the token check. req and what it
 * points to live during the call only; req->id stays valid for
 * syn_http_respond until the request is answered or its connection goes. */
typedef void (*syn_http_handler_fn)(void *ctx, const syn_http_req_t *req);

typedef struct {
  uint64_t requests;          /* complete requests read (including those answered 401) */
  uint64_t by_class[6];       /* answers sent, by status / 100 (1..5; [0] unused) */
  uint64_t parse_errors;      /* streams refused by the assembler (400, 413, 414, 431) */
  uint64_t unauthorized;      /* requests answered 401 by the token check */
  uint64_t conns_accepted;
  uint64_t conns_refused;     /* over SYN_MAX_HTTP_CONNS (or the configured maximum) */
  uint64_t conns_open;        /* a gauge */
  uint64_t idle_closed;       /* closed by the idle timeout */
  uint64_t slow_closed;       /* closed for queuing more than SYN_MAX_HTTP_OUT_BYTES */
  uint64_t aborted;           /* closed by the client (or an error) with answers owed */
  uint64_t late_answers;      /* syn_http_respond/error for a request whose connection was gone */
} syn_http_counters_t;

/* Allocates a server and starts listening on host:port (a numeric IPv4 or
 * IPv6 address, or "localhost" for 127.0.0.1; port 0 picks a free port).
 * token NULL or "" means no token check; at most SYN_MAX_HTTP_TOKEN_BYTES.
 * Returns 0, -SYN_EINVAL (address, port or token), -SYN_ENOMEM, or -SYN_EIO
 * (bind/listen failed, logged). On failure *out is NULL, but a listener
 * handle may already be closing: the loop must run (uv_run) before it is
 * closed, and that run frees it. Ignores SIGPIPE if it was at its default
 * (a client that resets must not kill the process). */
int syn_http_new(syn_http_t **out, uv_loop_t *loop, const char *host, int port, const char *token,
                 syn_http_handler_fn handler, void *ctx);

/* The bound port (what port 0 picked). */
int syn_http_port(const syn_http_t *srv);

/* Answers request id: status 200..599, content_type NULL for
 * "application/json", body of len bytes (copied; len up to
 * SYN_MAX_HTTP_RESPONSE_BYTES). Returns 0; -SYN_ESTATE when the request's
 * connection is gone, it was answered already, or the server is closing
 * (nothing is done, counted as a late answer); -SYN_EINVAL for a bad status
 * or a content type holding CR or LF; -SYN_ETOOBIG over the response limit
 * (the request stays open: answer it again, smaller); -SYN_ELIMIT when the
 * connection already queues SYN_MAX_HTTP_OUT_BYTES (it is closed). */
int syn_http_respond(syn_http_t *srv, uint64_t req_id, int status, const char *content_type,
                     const void *body, size_t len);

/* Answers request id with the JSON body {"error": reason, "status": status}
 * (reason NULL: the status text; any bytes, escaped by json.h). Returns as
 * syn_http_respond (-SYN_ETOOBIG for a reason over the response limit). */
int syn_http_error(syn_http_t *srv, uint64_t req_id, int status, const char *reason);

/* Tuning for tests and the runtime: the idle timeout (ms > 0) and a maximum
 * number of connections below SYN_MAX_HTTP_CONNS (1..SYN_MAX_HTTP_CONNS). */
void syn_http_set_idle_timeout(syn_http_t *srv, uint64_t ms);
void syn_http_set_max_conns(syn_http_t *srv, uint32_t n);

/* A copy of the counters. */
void syn_http_counters(const syn_http_t *srv, syn_http_counters_t *out);

/* Starts closing: the listener and every connection (answers owed are
 * dropped; syn_http_respond returns -SYN_ESTATE from now on). Idempotent,
 * safe inside the handler. The memory stays until syn_http_free: run the
 * loop until syn_http_closed(srv) is true (one uv_run(loop, UV_RUN_DEFAULT)
 * after closing does it, when nothing else keeps the loop alive; otherwise
 * check syn_http_closed from a later callback), then syn_http_free. */
void syn_http_close(syn_http_t *srv);
/* True once every handle of the server has run its close callback. */
bool syn_http_closed(const syn_http_t *srv);
/* Frees a closed server (SYN_ASSERTs syn_http_closed). NULL is fine. */
void syn_http_free(syn_http_t *srv);

#endif
