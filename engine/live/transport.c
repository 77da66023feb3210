/* transport.c — libuv TCP between node processes (see transport.h). Owns
 * the listener, the connections, their handshakes, the address directory,
 * redials and the per-peer bounds. Never parses a protocol message. */
#include "transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANY_ID      UINT32_MAX
#define READ_BYTES  (64u << 10)
#define CTRL_ADDR   1            /* u16 listening port */
#define CTRL_DIR    2            /* u32 count, then {u32 id, u16 port, u8 len, host} */

enum { C_HELLO, C_AUTH, C_UP, C_CLOSING };

typedef struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;              /* the handshake deadline, then the read window */
  syn_transport_t *t;
  struct conn *next, *prev;
  int state;
  int open_handles;
  bool outbound, bootstrap, pending, paused;
  uint32_t want;                 /* the id we dialled (ANY_ID: the bootstrap) */
  uint32_t peer;                 /* authenticated id (C_UP) */
  syn_stream_t st;
  syn_hs_hello_t mine, theirs;
  char host[SYN_MAX_HOST_BYTES]; /* the remote address */
  uint64_t window_start_ms;
  uint32_t window_frames;
  size_t queued;                 /* bytes handed to uv_write, not yet written */
} conn_t;

typedef struct {
  syn_transport_t *t;
  conn_t *conn;                  /* the live connection, or NULL */
  bool dialing;
  uv_timer_t redial;
  uint32_t attempts;
  syn_peer_info_t info;
} peer_t;

struct syn_transport {
  syn_transport_cfg_t cfg;
  char listen_host[SYN_MAX_HOST_BYTES];
  char boot_host[SYN_MAX_HOST_BYTES];
  uv_tcp_t listener;
  uv_timer_t boot_timer;
  uint32_t boot_attempts;
  bool boot_dialing, boot_done;
  uint32_t boot_id;              /* ANY_ID until the bootstrap's hello */
  uint16_t port;
  peer_t *peers;
  conn_t *conns;
  uint32_t pending;
  uint8_t cluster[SYN_DIGEST_BYTES];
  syn_hs_nonces_t nonces;
  uint64_t refused[SYN_TR_COUNT];
  uint8_t rbuf[READ_BYTES];
  bool closing;
};

typedef struct {
  uv_write_t req;
  conn_t *c;
  size_t len;
  uint8_t data[];
} wreq_t;

static char last_error[256];
const char *syn_transport_error(void) { return last_error; }

static const char *const reason_names[SYN_TR_COUNT] = {
  "other_cluster", "unknown_id", "replayed_hello", "bad_signature", "wrong_id", "duplicate",
  "handshake_timeout", "too_many_pending", "bad_stream", "bad_control", "queue_full",
  "not_connected", "throttled",
};
const char *syn_transport_reason(syn_tr_reason_t r) { return r < SYN_TR_COUNT ? reason_names[r] : "?"; }

static void schedule_dial(syn_transport_t *t, uint32_t p);
static void schedule_boot(syn_transport_t *t);

/* ---- connections ---- */

static void conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->open_handles > 0) return;
  syn_stream_free(&c->st);
  free(c);
}

static bool dials(const syn_transport_t *t, uint32_t p) {
  return p < t->cfg.procs && p != t->cfg.self && t->peers[p].info.known && (p < t->cfg.self || p == t->boot_id);
}

static void close_conn(conn_t *c, int reason) {
  syn_transport_t *t = c->t;
  if (c->state == C_CLOSING) return;
  if (reason >= 0) {
    t->refused[reason]++;
    SYN_LOG_WARN("transport: connection %s %s refused: %s", c->outbound ? "to" : "from", c->host,
                 reason_names[reason]);
  }
  bool was_up = c->state == C_UP;
  c->state = C_CLOSING;
  if (c->pending) { c->pending = false; t->pending--; }
  if (c->prev) c->prev->next = c->next; else t->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  if (was_up && t->peers[c->peer].conn == c) {
    peer_t *p = &t->peers[c->peer];
    p->conn = NULL;
    p->info.connected = false;
    SYN_LOG_INFO("transport: lost peer %u (%s:%u)", c->peer, p->info.host, p->info.port);
    if (t->cfg.on_peer && !t->closing) t->cfg.on_peer(t->cfg.ctx, c->peer, false);
  }
  if (!t->closing) {
    if (c->outbound && c->bootstrap && !was_up) { t->boot_dialing = false; t->boot_attempts++; schedule_boot(t); }
    else if (c->outbound && c->want != ANY_ID && !was_up) {
      t->peers[c->want].dialing = false;
      t->peers[c->want].attempts++;
      schedule_dial(t, c->want);
    } else if (was_up) schedule_dial(t, c->peer);
  }
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
  uv_close((uv_handle_t *)&c->timer, conn_closed);
}

/* libuv calls every pending write back (ECANCELED) before a closed
 * stream's close callback, so w->c is still alive here. */
static void write_done(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  (void)status;   /* a failed write shows up as a read error and closes the connection */
  w->c->queued -= w->len;
  free(w);
}

/* Writes one unit: prefix ‖ dest ‖ body (dest omitted for handshake units). */
static int write_unit(conn_t *c, bool has_dest, uint32_t dest, const uint8_t *body, size_t len) {
  size_t unit = len + (has_dest ? SYN_STREAM_DEST_BYTES : 0);
  uint8_t prefix[SYN_STREAM_PREFIX_BYTES];
  if (syn_stream_prefix(unit, prefix) != 0) return -SYN_ETOOBIG;
  wreq_t *w = malloc(sizeof *w + SYN_STREAM_PREFIX_BYTES + unit);
  if (w == NULL) return -SYN_ENOMEM;
  w->c = c;
  w->len = SYN_STREAM_PREFIX_BYTES + unit;
  memcpy(w->data, prefix, sizeof prefix);
  if (has_dest) syn_put_u32(w->data + SYN_STREAM_PREFIX_BYTES, dest);
  memcpy(w->data + SYN_STREAM_PREFIX_BYTES + (has_dest ? SYN_STREAM_DEST_BYTES : 0), body, len);
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
  int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_done);
  if (rc) { free(w); return -SYN_EIO; }
  c->queued += w->len;
  return 0;
}

static void send_ctrl_addr(conn_t *c) {
  uint8_t b[3] = { CTRL_ADDR };
  b[1] = (uint8_t)(c->t->port >> 8); b[2] = (uint8_t)c->t->port;
  (void)write_unit(c, true, SYN_TRANSPORT_CTRL, b, sizeof b);
}

static void send_ctrl_dir(syn_transport_t *t, conn_t *c) {
  uint8_t buf[5 + SYN_MAX_NODES * (7 + SYN_MAX_HOST_BYTES)];
  size_t len = 5;
  uint32_t count = 0;
  for (uint32_t p = 0; p < t->cfg.procs; p++) {
    const syn_peer_info_t *i = &t->peers[p].info;
    if (!i->known || p == c->peer) continue;
    size_t hl = strlen(i->host);
    syn_put_u32(buf + len, p);
    buf[len + 4] = (uint8_t)(i->port >> 8); buf[len + 5] = (uint8_t)i->port;
    buf[len + 6] = (uint8_t)hl;
    memcpy(buf + len + 7, i->host, hl);
    len += 7 + hl;
    count++;
  }
  if (count == 0) return;
  buf[0] = CTRL_DIR;
  syn_put_u32(buf + 1, count);
  (void)write_unit(c, true, SYN_TRANSPORT_CTRL, buf, len);
}

static void share_dir(syn_transport_t *t) {
  for (conn_t *c = t->conns; c; c = c->next)
    if (c->state == C_UP) send_ctrl_dir(t, c);
}

/* Records an address for p. A self-claim replaces; a relayed one fills a
 * gap, or replaces one we cannot reach (p restarted on another port). */
static bool learn(syn_transport_t *t, uint32_t p, const char *host, uint16_t port, bool self_claim) {
  syn_peer_info_t *i = &t->peers[p].info;
  if (i->known && strcmp(i->host, host) == 0 && i->port == port) return false;
  if (i->known && !self_claim && t->peers[p].conn != NULL) return false;
  snprintf(i->host, sizeof i->host, "%s", host);
  i->port = port;
  i->known = true;
  SYN_LOG_INFO("transport: peer %u is at %s:%u", p, host, port);
  schedule_dial(t, p);
  return true;
}

static void ctrl(conn_t *c, const uint8_t *b, size_t len) {
  syn_transport_t *t = c->t;
  if (len >= 3 && b[0] == CTRL_ADDR && len == 3) {
    uint16_t port = (uint16_t)(b[1] << 8 | b[2]);
    if (port == 0) { close_conn(c, SYN_TR_BAD_CTRL); return; }
    if (learn(t, c->peer, c->host, port, true)) share_dir(t);
    return;
  }
  if (len >= 5 && b[0] == CTRL_DIR) {
    uint32_t count = syn_get_u32(b + 1);
    if (count > t->cfg.procs) { close_conn(c, SYN_TR_BAD_CTRL); return; }
    size_t off = 5;
    bool changed = false;
    for (uint32_t k = 0; k < count; k++) {
      if (off + 7 > len) { close_conn(c, SYN_TR_BAD_CTRL); return; }
      uint32_t id = syn_get_u32(b + off);
      uint16_t port = (uint16_t)(b[off + 4] << 8 | b[off + 5]);
      size_t hl = b[off + 6];
      if (hl == 0 || hl >= SYN_MAX_HOST_BYTES || off + 7 + hl > len || id >= t->cfg.procs || port == 0) {
        close_conn(c, SYN_TR_BAD_CTRL); return;
      }
      char host[SYN_MAX_HOST_BYTES];
      memcpy(host, b + off + 7, hl);
      host[hl] = '\0';
      off += 7 + hl;
      if (id != t->cfg.self && id != c->peer && memchr(host, '\0', hl) == NULL) changed |= learn(t, id, host, port, false);
    }
    if (off != len) { close_conn(c, SYN_TR_BAD_CTRL); return; }
    if (changed) share_dir(t);
    return;
  }
  close_conn(c, SYN_TR_BAD_CTRL);
}

/* A unit is "preferred" when the lower id of the pair dialled it. */
static bool preferred(const syn_transport_t *t, const conn_t *c) { return c->outbound == (t->cfg.self < c->peer); }

static void established(conn_t *c) {
  syn_transport_t *t = c->t;
  uint32_t p = c->theirs.id;
  c->peer = p;
  peer_t *pe = &t->peers[p];
  if (pe->conn != NULL) {
    if (preferred(t, pe->conn) || !preferred(t, c)) {
      SYN_LOG_WARN("transport: a second connection for id %u (from %s) refused: it already has one", p, c->host);
      close_conn(c, SYN_TR_DUPLICATE);
      return;
    }
    /* Both dialled at once: both sides keep the one the lower id dialled. */
    SYN_LOG_INFO("transport: peer %u: keeping the connection the lower id dialled", p);
    conn_t *old = pe->conn;
    pe->conn = NULL;
    pe->info.connected = false;
    old->state = C_AUTH;   /* closed quietly: the peer stays connected through c */
    close_conn(old, SYN_TR_DUPLICATE);
  }
  c->state = C_UP;
  c->st.max = 0;   /* authenticated: full frames from now on */
  if (c->pending) { c->pending = false; t->pending--; }
  uv_timer_stop(&c->timer);
  pe->conn = c;
  pe->dialing = false;
  pe->attempts = 0;
  pe->info.connected = true;
  pe->info.outbound = c->outbound;
  pe->info.connects++;
  pe->info.last_rx_ns = (int64_t)uv_hrtime();
  if (c->bootstrap) {
    t->boot_id = p;
    t->boot_done = true;
    t->boot_dialing = false;
    if (!pe->info.known) learn(t, p, t->boot_host, t->cfg.bootstrap_port, false);
  }
  SYN_LOG_INFO("transport: peer %u connected (%s, %s)", p, c->host, c->outbound ? "dialled" : "accepted");
  send_ctrl_addr(c);
  send_ctrl_dir(t, c);
  if (t->cfg.on_peer) t->cfg.on_peer(t->cfg.ctx, p, true);
}

static void on_unit(void *ctx, const uint8_t *u, size_t len) {
  conn_t *c = ctx;
  syn_transport_t *t = c->t;
  switch (c->state) {
  case C_HELLO: {
    if (syn_hs_hello_decode(u, len, &c->theirs) != 0) { close_conn(c, SYN_TR_BAD_STREAM); return; }
    int rc = syn_hs_check_hello(t->cfg.ring, &c->mine, &c->theirs, NULL);
    if (rc == -SYN_EPARSE) { close_conn(c, SYN_TR_OTHER_CLUSTER); return; }
    if (rc == -SYN_ESENDER || c->theirs.id >= t->cfg.procs) { close_conn(c, SYN_TR_UNKNOWN_ID); return; }
    if (c->want != ANY_ID && c->theirs.id != c->want) { close_conn(c, SYN_TR_WRONG_ID); return; }
    if (syn_hs_check_hello(t->cfg.ring, &c->mine, &c->theirs, &t->nonces) == -SYN_ESTATE) {
      close_conn(c, SYN_TR_REPLAY); return;
    }
    uint8_t sig[SYN_HS_AUTH_BYTES];
    syn_hs_sign(t->cfg.ident, &c->mine, &c->theirs, sig);
    if (write_unit(c, false, 0, sig, sizeof sig) != 0) { close_conn(c, SYN_TR_BAD_STREAM); return; }
    c->state = C_AUTH;
    return;
  }
  case C_AUTH:
    if (len != SYN_HS_AUTH_BYTES || syn_hs_verify(t->cfg.ring, &c->mine, &c->theirs, u) != 0) {
      close_conn(c, SYN_TR_BAD_SIG); return;
    }
    established(c);
    return;
  case C_UP: {
    if (len <= SYN_STREAM_DEST_BYTES) { close_conn(c, SYN_TR_BAD_STREAM); return; }
    uint32_t dest = syn_get_u32(u);
    peer_t *p = &t->peers[c->peer];
    p->info.last_rx_ns = (int64_t)uv_hrtime();
    p->info.bytes_in += len;
    c->window_frames++;
    if (dest == SYN_TRANSPORT_CTRL) { ctrl(c, u + SYN_STREAM_DEST_BYTES, len - SYN_STREAM_DEST_BYTES); return; }
    p->info.frames_in++;
    t->cfg.on_frame(t->cfg.ctx, c->peer, dest, u + SYN_STREAM_DEST_BYTES, len - SYN_STREAM_DEST_BYTES);
    return;
  }
  default:
    return;   /* closing: the rest of the buffer is ignored */
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn_t *c = h->data;
  /* One loop thread: the buffer is consumed before the next allocation. */
  *buf = uv_buf_init((char *)c->t->rbuf, READ_BYTES);
}

static void window_over(uv_timer_t *tm) {
  conn_t *c = tm->data;
  if (c->state != C_UP || !c->paused) return;
  c->paused = false;
  c->window_frames = 0;
  c->window_start_ms = uv_now(c->t->cfg.loop);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  syn_transport_t *t = c->t;
  if (nread < 0) { close_conn(c, -1); return; }
  if (nread == 0 || c->state == C_CLOSING) return;
  int rc = syn_stream_feed(&c->st, (const uint8_t *)buf->base, (size_t)nread, on_unit, c);
  if (rc && c->state != C_CLOSING) { close_conn(c, SYN_TR_BAD_STREAM); return; }
  if (c->state != C_UP) return;
  uint64_t now = uv_now(t->cfg.loop);
  if (now - c->window_start_ms >= SYN_PEER_WINDOW_MS) { c->window_start_ms = now; c->window_frames = 0; }
  else if (c->window_frames > SYN_MAX_PEER_FRAMES_PER_WINDOW) {
    /* A flood: stop reading until the window ends; TCP pushes back on the sender. */
    uv_read_stop(s);
    c->paused = true;
    t->refused[SYN_TR_THROTTLED]++;
    t->peers[c->peer].info.throttles++;
    uv_timer_start(&c->timer, window_over, SYN_PEER_WINDOW_MS - (now - c->window_start_ms), 0);
  }
}


static void hs_timeout(uv_timer_t *tm) {
  conn_t *c = tm->data;
  if (c->state == C_HELLO || c->state == C_AUTH) close_conn(c, SYN_TR_TIMEOUT);
}

static conn_t *conn_new(syn_transport_t *t, bool outbound) {
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->t = t;
  c->outbound = outbound;
  c->want = ANY_ID;
  uv_tcp_init(t->cfg.loop, &c->tcp);
  uv_timer_init(t->cfg.loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->open_handles = 2;
  syn_stream_init(&c->st);
  c->st.max = SYN_HS_HELLO_BYTES;   /* until authenticated: no unit bigger than a hello */
  c->mine.id = t->cfg.self;
  memcpy(c->mine.cluster, t->cluster, SYN_DIGEST_BYTES);
  randombytes_buf(c->mine.nonce, SYN_HS_NONCE_BYTES);
  c->pending = true;
  t->pending++;
  c->next = t->conns;
  if (t->conns) t->conns->prev = c;
  t->conns = c;
  return c;
}

/* TCP keepalive with short probes: a peer that vanished without a FIN (a
 * half-open connection) is found dead in about SYN_KEEPALIVE_IDLE_S + 3 ·
 * SYN_KEEPALIVE_INTVL_S seconds, so its reconnect is not refused as a
 * duplicate for long. */
static void keepalive(conn_t *c) {
  uv_os_fd_t fd;
  if (uv_tcp_keepalive(&c->tcp, 1, SYN_KEEPALIVE_IDLE_S) != 0 || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) return;
  int intvl = SYN_KEEPALIVE_INTVL_S, cnt = 3;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

static void begin(conn_t *c) {
  uint8_t hello[SYN_HS_HELLO_BYTES];
  syn_hs_hello_encode(&c->mine, hello);
  uv_tcp_nodelay(&c->tcp, 1);
  keepalive(c);
  uv_timer_start(&c->timer, hs_timeout, SYN_HANDSHAKE_TIMEOUT_MS, 0);
  if (write_unit(c, false, 0, hello, sizeof hello) != 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) close_conn(c, SYN_TR_BAD_STREAM);
}

static void on_connect(uv_connect_t *req, int status) {
  conn_t *c = req->data;
  free(req);
  if (c->state == C_CLOSING) return;
  if (status < 0) {
    SYN_LOG_DEBUG("transport: dialling %s failed: %s", c->host, uv_strerror(status));
    close_conn(c, -1);
    return;
  }
  begin(c);
}

static int resolve(const char *host, uint16_t port, struct sockaddr_in *sa) {
  if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
  return uv_ip4_addr(host, port, sa) == 0 ? 0 : -SYN_EINVAL;
}

/* Starts a dial. False when it could not even start (the caller redials
 * later); once a connection exists, its close does the redial. */
static bool dial(syn_transport_t *t, const char *host, uint16_t port, uint32_t want, bool bootstrap) {
  struct sockaddr_in sa;
  if (resolve(host, port, &sa) != 0) { SYN_LOG_ERROR("transport: cannot dial '%s': not an IPv4 address", host); return false; }
  uv_connect_t *req = malloc(sizeof *req);
  conn_t *c = req ? conn_new(t, true) : NULL;
  if (c == NULL) { free(req); return false; }
  c->want = want;
  c->bootstrap = bootstrap;
  snprintf(c->host, sizeof c->host, "%s", host);
  req->data = c;
  if (uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)&sa, on_connect) != 0) { free(req); close_conn(c, -1); }
  return true;
}

static uint64_t backoff_ms(uint32_t attempts) {
  if (attempts == 0) return 0;
  uint64_t ms = SYN_REDIAL_MIN_MS;
  for (uint32_t i = 1; i < attempts && ms < SYN_REDIAL_MAX_MS; i++) ms *= 2;
  if (ms > SYN_REDIAL_MAX_MS) ms = SYN_REDIAL_MAX_MS;
  return ms / 2 + randombytes_uniform((uint32_t)ms / 2 + 1);   /* jitter: [ms/2, ms] */
}

static void redial_fire(uv_timer_t *tm) {
  peer_t *pe = tm->data;
  syn_transport_t *t = pe->t;
  uint32_t p = (uint32_t)(pe - t->peers);
  if (t->closing || pe->conn || pe->dialing || !dials(t, p)) return;
  pe->dialing = true;
  if (!dial(t, pe->info.host, pe->info.port, p, false)) { pe->dialing = false; pe->attempts++; schedule_dial(t, p); }
}

static void schedule_dial(syn_transport_t *t, uint32_t p) {
  peer_t *pe = &t->peers[p];
  if (t->closing || pe->conn || pe->dialing || !dials(t, p) || pe->info.port == 0) return;
  if (uv_is_active((uv_handle_t *)&pe->redial)) return;
  uv_timer_start(&pe->redial, redial_fire, backoff_ms(pe->attempts), 0);
}

static void boot_fire(uv_timer_t *tm) {
  syn_transport_t *t = tm->data;
  if (t->closing || t->boot_done || t->boot_dialing) return;
  t->boot_dialing = true;
  if (!dial(t, t->boot_host, t->cfg.bootstrap_port, ANY_ID, true)) { t->boot_dialing = false; t->boot_attempts++; schedule_boot(t); }
}

static void schedule_boot(syn_transport_t *t) {
  if (t->closing || t->boot_done || t->cfg.bootstrap_host == NULL) return;
  if (t->boot_attempts == 5) SYN_LOG_WARN("transport: bootstrap peer %s:%u does not answer yet; still trying",
                                          t->boot_host, t->cfg.bootstrap_port);
  uv_timer_start(&t->boot_timer, boot_fire, backoff_ms(t->boot_attempts), 0);
}

static void on_connection(uv_stream_t *server, int status) {
  syn_transport_t *t = server->data;
  if (status < 0 || t->closing) return;
  conn_t *c = conn_new(t, false);
  if (c == NULL) return;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) { close_conn(c, -1); return; }
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET)
    uv_ip4_name((struct sockaddr_in *)&ss, c->host, sizeof c->host);
  else snprintf(c->host, sizeof c->host, "?");
  if (t->pending > SYN_MAX_PENDING_CONNS) { close_conn(c, SYN_TR_TOO_MANY); return; }
  begin(c);
}

/* ---- the transport ---- */

int syn_transport_new(syn_transport_t **out, const syn_transport_cfg_t *cfg) {
  SYN_ASSERT(cfg->loop && cfg->ring && cfg->ident && cfg->on_frame);
  last_error[0] = '\0';
  if (cfg->procs == 0 || cfg->procs > cfg->ring->n || cfg->self >= cfg->procs) {
    snprintf(last_error, sizeof last_error, "node id %u is not one of the %u members", cfg->self, cfg->procs);
    return -SYN_EINVAL;
  }
  syn_transport_t *t = calloc(1, sizeof *t);
  if (t == NULL) return -SYN_ENOMEM;
  t->peers = calloc(cfg->procs, sizeof *t->peers);
  if (t->peers == NULL) { free(t); return -SYN_ENOMEM; }
  t->cfg = *cfg;
  snprintf(t->listen_host, sizeof t->listen_host, "%s", cfg->listen_host ? cfg->listen_host : "127.0.0.1");
  t->cfg.listen_host = t->listen_host;
  if (cfg->bootstrap_host) {
    snprintf(t->boot_host, sizeof t->boot_host, "%s", cfg->bootstrap_host);
    t->cfg.bootstrap_host = t->boot_host;
  }
  t->boot_id = ANY_ID;
  syn_hs_cluster(cfg->ring, t->cluster);
  struct sockaddr_in sa;
  if (resolve(t->listen_host, cfg->listen_port, &sa) != 0) {
    snprintf(last_error, sizeof last_error, "cannot listen on '%s': not an IPv4 address", t->listen_host);
    free(t->peers); free(t);
    return -SYN_EINVAL;
  }
  uv_tcp_init(cfg->loop, &t->listener);
  t->listener.data = t;
  uv_timer_init(cfg->loop, &t->boot_timer);
  t->boot_timer.data = t;
  for (uint32_t p = 0; p < cfg->procs; p++) {
    t->peers[p].t = t;
    uv_timer_init(cfg->loop, &t->peers[p].redial);
    t->peers[p].redial.data = &t->peers[p];
  }
  int rc = uv_tcp_bind(&t->listener, (const struct sockaddr *)&sa, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&t->listener, 128, on_connection);
  if (rc != 0) {
    snprintf(last_error, sizeof last_error, "cannot listen on %s:%u: %s", t->listen_host, cfg->listen_port, uv_strerror(rc));
    syn_transport_close(t);
    uv_run(cfg->loop, UV_RUN_DEFAULT);
    syn_transport_free(t);
    return -SYN_EIO;
  }
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  uv_tcp_getsockname(&t->listener, (struct sockaddr *)&ss, &sl);
  t->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  schedule_boot(t);
  *out = t;
  return 0;
}

void syn_transport_close(syn_transport_t *t) {
  if (t->closing) return;
  t->closing = true;
  while (t->conns) close_conn(t->conns, -1);
  uv_close((uv_handle_t *)&t->listener, NULL);
  uv_close((uv_handle_t *)&t->boot_timer, NULL);
  for (uint32_t p = 0; p < t->cfg.procs; p++) uv_close((uv_handle_t *)&t->peers[p].redial, NULL);
}

void syn_transport_free(syn_transport_t *t) {
  if (t == NULL) return;
  free(t->peers);
  free(t);
}

uint16_t syn_transport_port(const syn_transport_t *t) { return t->port; }

int syn_transport_send(syn_transport_t *t, uint32_t peer, uint32_t dest, const uint8_t *frame, size_t len) {
  SYN_ASSERT(peer < t->cfg.procs);
  peer_t *pe = &t->peers[peer];
  if (pe->conn == NULL) { t->refused[SYN_TR_NOT_CONNECTED]++; return -SYN_ESTATE; }
  if (pe->conn->queued + len + 8 > SYN_MAX_PEER_QUEUE_BYTES) {
    t->refused[SYN_TR_QUEUE_FULL]++;
    pe->info.queue_drops++;
    return -SYN_ELIMIT;
  }
  int rc = write_unit(pe->conn, true, dest, frame, len);
  if (rc) return rc;
  pe->info.frames_out++;
  pe->info.bytes_out += len;
  return 0;
}

void syn_transport_peer(const syn_transport_t *t, uint32_t peer, syn_peer_info_t *out) {
  SYN_ASSERT(peer < t->cfg.procs);
  *out = t->peers[peer].info;
  out->queued_bytes = t->peers[peer].conn ? t->peers[peer].conn->queued : 0;
}

uint32_t syn_transport_connected(const syn_transport_t *t) {
  uint32_t k = 0;
  for (uint32_t p = 0; p < t->cfg.procs; p++) k += t->peers[p].conn != NULL;
  return k;
}

const uint64_t *syn_transport_refused(const syn_transport_t *t) { return t->refused; }
