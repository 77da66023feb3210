/* api.c — the HTTP admin API of a live node (see api.h), mounted on
 * live/http. Owns the routes and their JSON and Prometheus texts; the
 * numbers come from the runtime, the node and the transport. Never: a
 * protocol rule, or a blocking call (POST /submit answers when the
 * operation completes, from the runtime's callback). */
#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"

#define SYN_MAX_API_BODY_BYTES (8u << 20)   /* one answer (detections may be long) */

struct syn_api {
  syn_live_t *lv;
  syn_http_t *http;
  syn_buf_t out;
};

typedef struct {
  syn_api_t *api;
  uint64_t req;
} waiter_t;

/* ---- helpers ---- */

static bool is(const syn_http_req_t *r, const char *path) { return strcmp(r->path, path) == 0; }

static void send_json(syn_api_t *a, uint64_t req, int status) {
  (void)syn_http_respond(a->http, req, status, NULL, a->out.data, a->out.len);
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void json_field(void *ctx, const char *key, int64_t value) {
  syn_json_t *j = ctx;
  syn_json_key(j, key);
  syn_json_int(j, value);
}

/* A decoded frame as JSON: type, sender, fields (bytes as hex), signature. */
static void json_frame(syn_json_t *j, const uint8_t *frame, size_t len) {
  syn_frame_t f;
  syn_msg_t m;
  syn_json_begin_object(j);
  if (syn_wire_frame_decode(frame, len, &f, &m) == 0) {
    syn_json_key(j, "type"); syn_json_cstr(j, m.def->name);
    syn_json_key(j, "sender"); syn_json_uint(j, f.sender);
    syn_json_key(j, "fields");
    syn_json_begin_object(j);
    for (uint8_t i = 0; i < m.def->nfields; i++) {
      syn_json_key(j, m.def->fields[i].name);
      if (m.def->fields[i].kind == SYN_FIELD_U64) syn_json_uint(j, m.u[i]);
      else syn_json_hex(j, m.b[i].ptr, m.b[i].len);
    }
    syn_json_end_object(j);
    syn_json_key(j, "signature"); syn_json_hex(j, f.sig, SYN_SIG_BYTES);
  }
  syn_json_key(j, "frame"); syn_json_hex(j, frame, len);
  syn_json_end_object(j);
}

/* ---- routes ---- */

static void submitted(void *ctx, int rc, uint64_t seq, const uint8_t *res, size_t len, int64_t latency_ns) {
  waiter_t *w = ctx;
  syn_api_t *a = w->api;
  {
    syn_buf_reset(&a->out);
    syn_json_t j;
    syn_json_init(&j, &a->out);
    syn_json_begin_object(&j);
    if (rc == 0) {
      syn_json_key(&j, "seq"); syn_json_uint(&j, seq);
      syn_json_key(&j, "result"); syn_json_string(&j, (const char *)res, len);
      syn_json_key(&j, "latency_us"); syn_json_int(&j, latency_ns / 1000);
    } else {
      syn_json_key(&j, "error"); syn_json_cstr(&j, syn_strerror(rc));
      syn_json_key(&j, "status"); syn_json_int(&j, 503);
    }
    syn_json_end_object(&j);
    syn_json_finish(&j);
    send_json(a, w->req, rc == 0 ? 200 : 503);
  }
  free(w);
}

static void do_submit(syn_api_t *a, const syn_http_req_t *r, const uint8_t *op, size_t len) {
  while (len && (op[len - 1] == '\n' || op[len - 1] == '\r' || op[len - 1] == ' ')) len--;
  while (len && (op[0] == ' ' || op[0] == '\n')) { op++; len--; }
  if (len == 0) { syn_http_error(a->http, r->id, 400, "empty operation: send one operation as the body, e.g. 'put k v'"); return; }
  if (len > SYN_MAX_OP_BYTES) { syn_http_error(a->http, r->id, 413, "operation over SYN_MAX_OP_BYTES (4096)"); return; }
  waiter_t *w = calloc(1, sizeof *w);
  if (w == NULL) { syn_http_error(a->http, r->id, 503, "out of memory"); return; }
  w->api = a;
  w->req = r->id;
  int rc = syn_live_submit(a->lv, op, len, submitted, w);
  if (rc != 0) {
    free(w);
    char why[160];
    if (rc == -SYN_ELIMIT) snprintf(why, sizeof why, "the operation was refused: %s; retry later", syn_live_refusal(a->lv));
    else snprintf(why, sizeof why, "%s", syn_strerror(rc));
    syn_http_error(a->http, r->id, rc == -SYN_EINVAL ? 400 : 503, why);
  }
}

static void do_status(syn_api_t *a, const syn_http_req_t *r) {
  syn_node_t *n = syn_live_node(a->lv);
  syn_buf_reset(&a->out);
  syn_json_t j;
  syn_json_init(&j, &a->out);
  syn_json_begin_object(&j);
  syn_json_key(&j, "protocol"); syn_json_cstr(&j, n->proto->name);
  syn_live_status(a->lv, json_field, &j);
  syn_json_key(&j, "counters");
  syn_json_begin_object(&j);
  syn_json_key(&j, "sent"); syn_json_uint(&j, n->c.sent);
  syn_json_key(&j, "received"); syn_json_uint(&j, n->c.received);
  syn_json_key(&j, "dropped");
  syn_json_begin_object(&j);
  for (int e = 1; e < SYN_E_COUNT; e++)
    if (n->c.wire_drops[e]) { syn_json_key(&j, syn_wire_drop_reason(-e)); syn_json_uint(&j, n->c.wire_drops[e]); }
  syn_json_end_object(&j);
  syn_json_key(&j, "transport");   /* the runtime's and the connections' drops and refusals */
  syn_json_begin_object(&j);
  syn_live_drops(a->lv, json_field, &j);
  syn_json_end_object(&j);
  syn_json_key(&j, "rejected");
  syn_json_begin_object(&j);
  for (uint32_t k = 0; k < n->proto->nreasons; k++)
    if (n->c.rejected[k] || n->c.unverified[k]) {
      syn_json_key(&j, syn_node_reason(n, k));
      syn_json_uint(&j, n->c.rejected[k] + n->c.unverified[k]);
    }
  syn_json_end_object(&j);
  syn_json_end_object(&j);
  syn_json_end_object(&j);
  syn_json_finish(&j);
  send_json(a, r->id, 200);
}

static void do_peers(syn_api_t *a, const syn_http_req_t *r) {
  const syn_live_cfg_t *c = syn_live_cfg(a->lv);
  syn_buf_reset(&a->out);
  syn_json_t j;
  syn_json_init(&j, &a->out);
  syn_json_begin_array(&j);
  int64_t now = (int64_t)uv_hrtime();
  for (uint32_t p = 0; p < c->n; p++) {
    if (p == c->id) continue;
    syn_peer_info_t i;
    syn_transport_peer(syn_live_transport(a->lv), p, &i);
    syn_json_begin_object(&j);
    syn_json_key(&j, "id"); syn_json_uint(&j, p);
    syn_json_key(&j, "address");
    if (i.known) {
      char addr[96];
      snprintf(addr, sizeof addr, "%s:%u", i.host, i.port);
      syn_json_cstr(&j, addr);
    } else syn_json_null(&j);
    syn_json_key(&j, "state"); syn_json_cstr(&j, i.connected ? "connected" : "disconnected");
    syn_json_key(&j, "last_message_ms_ago");
    if (i.last_rx_ns) syn_json_int(&j, (now - i.last_rx_ns) / 1000000); else syn_json_null(&j);
    syn_json_key(&j, "frames_in"); syn_json_uint(&j, i.frames_in);
    syn_json_key(&j, "frames_out"); syn_json_uint(&j, i.frames_out);
    syn_json_key(&j, "queued_bytes"); syn_json_uint(&j, i.queued_bytes);
    syn_json_key(&j, "queue_drops"); syn_json_uint(&j, i.queue_drops);
    syn_json_key(&j, "connects"); syn_json_uint(&j, i.connects);
    syn_json_end_object(&j);
  }
  syn_json_end_array(&j);
  syn_json_finish(&j);
  send_json(a, r->id, 200);
}

static void do_detections(syn_api_t *a, const syn_http_req_t *r) {
  syn_node_t *n = syn_live_node(a->lv);
  int64_t now_ns = n->rt->now(n->rt->ctx, n), wall = wall_ms();
  syn_buf_reset(&a->out);
  syn_json_t j;
  syn_json_init(&j, &a->out);
  syn_json_begin_array(&j);
  for (uint32_t k = 0; k < n->nevidence && a->out.len < SYN_MAX_API_BODY_BYTES / 2; k++) {
    const syn_evidence_t *e = &n->evidence[k];
    syn_json_begin_object(&j);
    syn_json_key(&j, "detected_at"); syn_json_int(&j, wall - (now_ns - e->at_ns) / 1000000);
    syn_json_key(&j, "byzantine_node"); syn_json_uint(&j, e->against);
    syn_json_key(&j, "reason"); syn_json_cstr(&j, syn_node_reason(n, e->reason));
    syn_json_key(&j, "round"); syn_json_uint(&j, e->round);
    syn_json_key(&j, "detected_by"); syn_json_uint(&j, n->id);
    syn_json_key(&j, "messages");
    syn_json_begin_array(&j);
    json_frame(&j, e->a, e->len_a);
    if (e->len_b) json_frame(&j, e->b, e->len_b);
    syn_json_end_array(&j);
    syn_json_end_object(&j);
  }
  syn_json_end_array(&j);
  if (syn_json_finish(&j) != 0) { syn_http_error(a->http, r->id, 500, "the evidence does not fit one answer (SYN_MAX_API_BODY_BYTES)"); return; }
  send_json(a, r->id, 200);
}

static void prom(syn_buf_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void prom(syn_buf_t *o, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (k > 0) (void)syn_buf_append(o, line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
}

typedef struct { syn_buf_t *o; const char *metric; } pctx_t;

static void prom_status(void *ctx, const char *key, int64_t value) {
  pctx_t *p = ctx;
  prom(p->o, "%s{name=\"%s\"} %lld\n", p->metric, key, (long long)value);
}

typedef struct { const char *key; int64_t value; } lookup_t;

static void find_value(void *ctx, const char *key, int64_t value) {
  lookup_t *l = ctx;
  if (strcmp(key, l->key) == 0) l->value = value;
}

/* One status field by name (0 when the protocol has none). */
static int64_t status_value(syn_live_t *lv, const char *key) {
  lookup_t l = { key, 0 };
  syn_live_status(lv, find_value, &l);
  return l.value;
}

static void do_metrics(syn_api_t *a, const syn_http_req_t *r) {
  syn_node_t *n = syn_live_node(a->lv);
  syn_buf_t *o = &a->out;
  syn_buf_reset(o);
  prom(o, "# HELP synod_messages_sent_total Frames this node sent.\n# TYPE synod_messages_sent_total counter\n");
  prom(o, "synod_messages_sent_total %llu\n", (unsigned long long)n->c.sent);
  prom(o, "# HELP synod_messages_received_total Frames this node took in.\n# TYPE synod_messages_received_total counter\n");
  prom(o, "synod_messages_received_total %llu\n", (unsigned long long)n->c.received);
  prom(o, "# HELP synod_messages_dropped_total Frames dropped, by reason.\n# TYPE synod_messages_dropped_total counter\n");
  for (int e = 1; e < SYN_E_COUNT; e++)
    if (n->c.wire_drops[e]) prom(o, "synod_messages_dropped_total{layer=\"wire\",reason=\"%s\"} %llu\n", syn_wire_drop_reason(-e), (unsigned long long)n->c.wire_drops[e]);
  for (uint32_t k = 0; k < n->proto->nreasons; k++)
    if (n->c.rejected[k] || n->c.unverified[k])
      prom(o, "synod_messages_dropped_total{layer=\"protocol\",reason=\"%s\"} %llu\n", syn_node_reason(n, k),
           (unsigned long long)(n->c.rejected[k] + n->c.unverified[k]));
  const uint64_t *tr = syn_transport_refused(syn_live_transport(a->lv));
  for (int k = 0; k < SYN_TR_COUNT; k++)
    if (tr[k]) prom(o, "synod_messages_dropped_total{layer=\"transport\",reason=\"%s\"} %llu\n", syn_transport_reason((syn_tr_reason_t)k), (unsigned long long)tr[k]);
  int64_t commits = 0, vcs = 0, pending = 0;
  struct { const char *key; int64_t *v; } want[] = { { "commits", &commits }, { "view_changes", &vcs }, { "submissions_pending", &pending } };
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) *want[k].v = status_value(a->lv, want[k].key);
  prom(o, "# HELP synod_commits_total Slots this node committed and executed.\n# TYPE synod_commits_total counter\nsynod_commits_total %lld\n", (long long)commits);
  prom(o, "# HELP synod_view_changes_total View changes this node went through.\n# TYPE synod_view_changes_total counter\nsynod_view_changes_total %lld\n", (long long)vcs);
  prom(o, "# HELP synod_submissions_pending Submissions waiting for their result.\n# TYPE synod_submissions_pending gauge\nsynod_submissions_pending %lld\n", (long long)pending);
  prom(o, "# HELP synod_state Protocol and runtime state, by name (view, last_executed, commits, view_changes, pending …).\n# TYPE synod_state gauge\n");
  pctx_t pc = { o, "synod_state" };
  syn_live_status(a->lv, prom_status, &pc);
  prom(o, "# HELP synod_peer_queue_bytes Bytes queued to each peer.\n# TYPE synod_peer_queue_bytes gauge\n");
  const syn_live_cfg_t *c = syn_live_cfg(a->lv);
  for (uint32_t p = 0; p < c->n; p++) {
    if (p == c->id) continue;
    syn_peer_info_t i;
    syn_transport_peer(syn_live_transport(a->lv), p, &i);
    prom(o, "synod_peer_queue_bytes{peer=\"%u\"} %zu\n", p, i.queued_bytes);
  }
  uint64_t sum_ns, count;
  const uint64_t *h = syn_live_latency(a->lv, &sum_ns, &count);
  prom(o, "# HELP synod_commit_latency_seconds Submission to result, at this node's clients.\n# TYPE synod_commit_latency_seconds histogram\n");
  uint64_t cum = 0;
  for (int b = 0; b < SYN_LIVE_LATENCY_BUCKETS - 1; b++) {
    cum += h[b];
    prom(o, "synod_commit_latency_seconds_bucket{le=\"%g\"} %llu\n", 0.001 * (double)(1u << b), (unsigned long long)cum);
  }
  prom(o, "synod_commit_latency_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)count);
  prom(o, "synod_commit_latency_seconds_sum %.6f\nsynod_commit_latency_seconds_count %llu\n", (double)sum_ns / 1e9, (unsigned long long)count);
  (void)syn_http_respond(a->http, r->id, 200, "text/plain; version=0.0.4", o->data, o->len);
}

static void handle(void *ctx, const syn_http_req_t *r) {
  syn_api_t *a = ctx;
  bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
  bool post = strcmp(r->method, "POST") == 0;
  if (is(r, "/submit") || is(r, "/propose")) {
    if (!post) { syn_http_error(a->http, r->id, 405, "use POST"); return; }
    if (is(r, "/submit")) { do_submit(a, r, r->body, r->body_len); return; }
    char value[SYN_MAX_OP_BYTES + 1];
    size_t len;
    bool found;
    int rc = syn_http_query_param(r->query, r->query_len, "value", value, sizeof value, &len, &found);
    if (rc == -SYN_ETOOBIG) { syn_http_error(a->http, r->id, 413, "value over SYN_MAX_OP_BYTES (4096)"); return; }
    if (rc != 0 || !found) { syn_http_error(a->http, r->id, 400, "POST /propose?value=V needs a value"); return; }
    do_submit(a, r, (const uint8_t *)value, len);
    return;
  }
  void (*route)(syn_api_t *, const syn_http_req_t *) = NULL;
  if (is(r, "/status")) route = do_status;
  else if (is(r, "/peers")) route = do_peers;
  else if (is(r, "/detections")) route = do_detections;
  else if (is(r, "/metrics")) route = do_metrics;
  if (route == NULL) {
    syn_http_error(a->http, r->id, 404, "no such endpoint: POST /submit, POST /propose?value=V, GET /status, /peers, /detections, /metrics");
    return;
  }
  if (!get) { syn_http_error(a->http, r->id, 405, "use GET"); return; }
  route(a, r);
}

int syn_api_new(syn_api_t **out, syn_live_t *lv, const char *host, int port, const char *token, char *err, size_t errlen) {
  syn_api_t *a = calloc(1, sizeof *a);
  if (a == NULL) { snprintf(err, errlen, "out of memory"); return -SYN_ENOMEM; }
  a->lv = lv;
  syn_buf_init(&a->out, SYN_MAX_API_BODY_BYTES);
  int rc = syn_http_new(&a->http, syn_live_loop(lv), host, port, token, handle, a);
  if (rc != 0) {
    snprintf(err, errlen, "cannot serve HTTP on %s:%d: %s", host, port,
             rc == -SYN_EINVAL ? "bad address, port or token" : rc == -SYN_EIO ? "the port is taken or cannot be bound" : syn_strerror(rc));
    syn_buf_free(&a->out);
    free(a);
    return rc;
  }
  *out = a;
  return 0;
}

int syn_api_port(const syn_api_t *a) { return syn_http_port(a->http); }
void syn_api_close(syn_api_t *a) { if (a) syn_http_close(a->http); }

void syn_api_free(syn_api_t *a) {
  if (a == NULL) return;
  syn_http_free(a->http);
  syn_buf_free(&a->out);
  free(a);
}
