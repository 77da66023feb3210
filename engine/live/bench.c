/* bench.c — `synod bench`: closed-loop clients against a local PBFT cluster
 * over loopback. For each batch size and client count it starts a 4-node
 * cluster (synod cluster up, in a scratch directory), opens one keep-alive
 * HTTP connection per client spread over the nodes, and has each client
 * submit `put`s back to back for a fixed time, recording every latency;
 * then it stops the cluster and prints throughput and p50/p99 (and JSON).
 * Measures; never asserts. */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "../base/base.h"
#include "cluster.h"

#define SYN_MAX_BENCH_CLIENTS 256
#define SYN_MAX_BENCH_SAMPLES (4u << 20)
#define BENCH_NODES 4

typedef struct bclient {
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_write_t wr;
  struct bench *b;
  uint32_t id;
  uint64_t seq;
  uint64_t sent_ns;
  char req[256];
  char resp[4096];
  size_t rlen;
} bclient_t;

typedef struct bench {
  uv_loop_t loop;
  uv_timer_t stop;
  bclient_t *clients;
  uint32_t nclients;
  uint64_t *lat;
  uint64_t nlat, errors;
  bool stopping;
  uint64_t t0, t1;
} bench_t;

static void send_next(bclient_t *c);

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  bclient_t *c = h->data;
  (void)sz;
  *buf = uv_buf_init(c->resp + c->rlen, (unsigned)(sizeof c->resp - 1 - c->rlen));
}

/* One complete answer: headers, then Content-Length bytes of body. */
static bool complete(bclient_t *c, int *status) {
  c->resp[c->rlen] = '\0';
  char *end = strstr(c->resp, "\r\n\r\n");
  if (end == NULL) return false;
  char *cl = strcasestr(c->resp, "content-length:");
  size_t body = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
  if ((size_t)(end + 4 - c->resp) + body > c->rlen) return false;
  *status = 0;
  sscanf(c->resp, "HTTP/1.%*d %d", status);
  return true;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  bclient_t *c = s->data;
  (void)buf;
  if (n < 0) { uv_close((uv_handle_t *)&c->tcp, NULL); return; }
  c->rlen += (size_t)n;
  int status;
  if (!complete(c, &status)) {
    if (c->rlen >= sizeof c->resp - 1) c->rlen = 0;   /* an answer we do not expect: drop it */
    return;
  }
  c->rlen = 0;
  bench_t *b = c->b;
  if (status == 200 && b->nlat < SYN_MAX_BENCH_SAMPLES) b->lat[b->nlat++] = uv_hrtime() - c->sent_ns;
  else if (status != 200) b->errors++;
  if (!b->stopping) send_next(c);
}

static void on_write(uv_write_t *w, int status) { (void)w; (void)status; }

static void send_next(bclient_t *c) {
  char body[64];
  int bl = snprintf(body, sizeof body, "put c%u k%llu", c->id, (unsigned long long)++c->seq);
  int n = snprintf(c->req, sizeof c->req, "POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s", bl, body);
  uv_buf_t buf = uv_buf_init(c->req, (unsigned)n);
  c->sent_ns = uv_hrtime();
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) c->b->errors++;
}

static void on_connect(uv_connect_t *req, int status) {
  bclient_t *c = req->data;
  if (status < 0) { c->b->errors++; uv_close((uv_handle_t *)&c->tcp, NULL); return; }
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  send_next(c);
}

static void on_stop(uv_timer_t *t) {
  bench_t *b = t->data;
  b->stopping = true;
  b->t1 = uv_hrtime();
  for (uint32_t i = 0; i < b->nclients; i++)
    if (!uv_is_closing((uv_handle_t *)&b->clients[i].tcp)) uv_close((uv_handle_t *)&b->clients[i].tcp, NULL);
  uv_close((uv_handle_t *)&b->stop, NULL);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

typedef struct { uint32_t batch, clients; double ops_per_sec, p50_ms, p99_ms; uint64_t ops, errors; } result_t;

static int run_one(const char *self, const char *dir, uint16_t base, uint32_t batch, uint32_t clients, double seconds,
                   result_t *out) {
  char sub[2200], nper[16], param[64], basep[16];
  snprintf(sub, sizeof sub, "%s/b%u-c%u", dir, batch, clients);
  snprintf(nper, sizeof nper, "%u", (clients + BENCH_NODES - 1) / BENCH_NODES);
  snprintf(param, sizeof param, "batch_size=%u", batch);
  snprintf(basep, sizeof basep, "%u", base);
  char *up[] = { "up", "-n", "4", "--dir", sub, "--base-port", basep, "--clients", nper, "--param", param,
                 "--log-level", "error", NULL };
  FILE *saved = stdout;
  stdout = fopen("/dev/null", "w");
  int rc = syn_cluster_main(13, up, self);
  fclose(stdout);
  stdout = saved;
  if (rc != 0) { fprintf(stderr, "synod bench: the cluster in %s did not come up (see its logs)\n", sub); }
  bench_t *b = calloc(1, sizeof *b);
  b->clients = calloc(clients, sizeof *b->clients);
  b->lat = malloc(SYN_MAX_BENCH_SAMPLES * sizeof *b->lat);
  b->nclients = clients;
  uv_loop_init(&b->loop);
  uv_timer_init(&b->loop, &b->stop);
  b->stop.data = b;
  for (uint32_t i = 0; i < clients && rc == 0; i++) {
    bclient_t *c = &b->clients[i];
    c->b = b; c->id = i;
    uv_tcp_init(&b->loop, &c->tcp);
    c->tcp.data = c; c->conn.data = c;
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", base + 100 + (int)(i % BENCH_NODES), &sa);
    uv_tcp_connect(&c->conn, &c->tcp, (const struct sockaddr *)&sa, on_connect);
  }
  b->t0 = uv_hrtime();
  if (rc == 0) {
    uv_timer_start(&b->stop, on_stop, (uint64_t)(seconds * 1000), 0);
    uv_run(&b->loop, UV_RUN_DEFAULT);
  }
  char *down[] = { "down", "--dir", sub, NULL };
  stdout = fopen("/dev/null", "w");
  syn_cluster_main(3, down, self);
  fclose(stdout);
  stdout = saved;
  qsort(b->lat, b->nlat, sizeof *b->lat, cmp_u64);
  double secs = (double)(b->t1 - b->t0) / 1e9;
  *out = (result_t){ .batch = batch, .clients = clients, .ops = b->nlat, .errors = b->errors,
                     .ops_per_sec = secs > 0 ? (double)b->nlat / secs : 0,
                     .p50_ms = b->nlat ? (double)b->lat[b->nlat / 2] / 1e6 : 0,
                     .p99_ms = b->nlat ? (double)b->lat[(size_t)((double)b->nlat * 0.99)] / 1e6 : 0 };
  uv_loop_close(&b->loop);
  free(b->lat); free(b->clients); free(b);
  return rc;
}

static int parse_list(const char *s, uint32_t *out, int cap) {
  int k = 0;
  char buf[128];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *t = strtok(buf, ","); t && k < cap; t = strtok(NULL, ",")) {
    char *end;
    unsigned long v = strtoul(t, &end, 10);
    if (*end || v == 0) return -1;
    out[k++] = (uint32_t)v;
  }
  return k;
}

int syn_bench_main(int argc, char **argv, const char *self) {
  uint32_t clients[8] = { 1, 16, 64 }, batches[8] = { 1, 100 };
  int nc = 3, nb = 2;
  double seconds = 5;
  const char *dir = "bench-cluster";
  uint16_t base = 7400;
  bool json = false;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--clients") == 0 && next) { nc = parse_list(next, clients, 8); i++; }
    else if (strcmp(a, "--batch") == 0 && next) { nb = parse_list(next, batches, 8); i++; }
    else if (strcmp(a, "--seconds") == 0 && next) { seconds = strtod(next, NULL); i++; }
    else if (strcmp(a, "--dir") == 0 && next) { dir = next; i++; }
    else if (strcmp(a, "--base-port") == 0 && next) { base = (uint16_t)strtoul(next, NULL, 10); i++; }
    else if (strcmp(a, "--json") == 0) json = true;
    else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      printf("usage: synod bench [--clients 1,16,64] [--batch 1,100] [--seconds 5] [--dir DIR] [--base-port 7400] [--json]\n\n"
             "Closed-loop clients against a local 4-node PBFT cluster over loopback: each client\n"
             "submits a put over HTTP and waits for its result before the next. Prints committed\n"
             "ops per second and p50/p99 latency for every (batch size, clients) pair.\n");
      return 0;
    } else { fprintf(stderr, "synod bench: unknown option '%s' (synod bench --help)\n", a); return 2; }
  }
  if (nc <= 0 || nb <= 0 || !(seconds > 0 && seconds <= 600)) { fprintf(stderr, "synod bench: bad --clients, --batch or --seconds\n"); return 2; }
  for (int i = 0; i < nc; i++) if (clients[i] > SYN_MAX_BENCH_CLIENTS) { fprintf(stderr, "synod bench: at most %d clients\n", SYN_MAX_BENCH_CLIENTS); return 2; }
  result_t res[64];
  int nr = 0, status = 0;
  if (!json) printf("%-6s %-8s %12s %10s %10s %8s\n", "batch", "clients", "ops/s", "p50 ms", "p99 ms", "errors");
  for (int bi = 0; bi < nb; bi++)
    for (int ci = 0; ci < nc; ci++) {
      result_t *r = &res[nr++];
      if (run_one(self, dir, base, batches[bi], clients[ci], seconds, r) != 0) status = 1;
      if (!json) { printf("%-6u %-8u %12.0f %10.2f %10.2f %8llu\n", r->batch, r->clients, r->ops_per_sec, r->p50_ms, r->p99_ms, (unsigned long long)r->errors); fflush(stdout); }
    }
  if (json) {
    printf("[");
    for (int i = 0; i < nr; i++)
      printf("%s{\"batch\":%u,\"clients\":%u,\"ops_per_sec\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"ops\":%llu,\"errors\":%llu}",
             i ? "," : "", res[i].batch, res[i].clients, res[i].ops_per_sec, res[i].p50_ms, res[i].p99_ms,
             (unsigned long long)res[i].ops, (unsigned long long)res[i].errors);
    printf("]\n");
  }
  return status;
}
