/* transport.h — the live runtime's network between node processes: libuv
 * TCP, one authenticated connection per pair of processes, carrying
 * envelopes (u32 destination ‖ signed frame) cut by engine/live/stream.
 *
 * A process is identified by its member id (0..procs-1); it hosts that
 * member's node and, for protocols with a client role, that member's client
 * nodes. Every connection opens with the handshake of stream.h: each side
 * proves it holds the key of the process id it claims. Refused, logged and
 * counted: another cluster, an unknown id (outside 0..procs-1, or our own),
 * a replayed hello, a bad signature, an id other than the one we dialled,
 * and a second connection for an id that already has one (of two
 * simultaneous dials, both sides keep the one the lower id dialled).
 *
 * Addresses: each process tells every peer it connects to its listening
 * port (ADDR); the peer records (observed host, port) for it and shares its
 * whole directory (DIR) with every connected peer when it changes. So a node
 * started with a bootstrap peer learns every address from it, and the
 * bootstrap learns everyone's. A process dials the peers whose id is lower
 * than its own, and its bootstrap; it redials them with exponential backoff
 * and jitter after a failure.
 *
 * Flow control: a peer's outbound queue is bounded (SYN_MAX_PEER_QUEUE_BYTES;
 * past it a frame is dropped and counted); a peer that sends more than
 * SYN_MAX_PEER_FRAMES_PER_WINDOW frames in a window is not read until the
 * window ends (TCP then pushes back on it). Unauthenticated connections are
 * bounded in number and in time.
 *
 * Never: parses a protocol message, touches a node, or calls Lua. The
 * runtime (live/runtime.c) gets each frame through on_frame. */
#ifndef SYN_TRANSPORT_H
#define SYN_TRANSPORT_H

#include <uv.h>

#include "stream.h"

#define SYN_MAX_PEER_QUEUE_BYTES       (32u << 20)  /* unsent bytes queued to one peer */
#define SYN_MAX_PEER_FRAMES_PER_WINDOW 20000        /* frames read from one peer per window */
#define SYN_PEER_WINDOW_MS             100
#define SYN_MAX_PENDING_CONNS          64           /* connections still in their handshake */
#define SYN_HANDSHAKE_TIMEOUT_MS       5000
#define SYN_KEEPALIVE_IDLE_S           5            /* TCP keepalive: idle before the first probe */
#define SYN_KEEPALIVE_INTVL_S          2            /* between probes (3 unanswered: dead) */
#define SYN_REDIAL_MIN_MS              100
#define SYN_REDIAL_MAX_MS              5000
#define SYN_MAX_HOST_BYTES             64           /* a host name or address, with its NUL */
#define SYN_TRANSPORT_CTRL             0xFFFFFFFFu  /* envelope destination of a control unit */

typedef struct syn_transport syn_transport_t;

/* Why a connection was refused or closed; counted per reason. */
typedef enum {
  SYN_TR_OTHER_CLUSTER, SYN_TR_UNKNOWN_ID, SYN_TR_REPLAY, SYN_TR_BAD_SIG, SYN_TR_WRONG_ID,
  SYN_TR_DUPLICATE, SYN_TR_TIMEOUT, SYN_TR_TOO_MANY, SYN_TR_BAD_STREAM, SYN_TR_BAD_CTRL,
  SYN_TR_QUEUE_FULL, SYN_TR_NOT_CONNECTED, SYN_TR_THROTTLED, SYN_TR_COUNT
} syn_tr_reason_t;

typedef struct {
  uv_loop_t *loop;
  uint32_t self;                    /* our process (member) id */
  uint32_t procs;                   /* processes in the cluster: ids 0..procs-1 */
  const syn_keyring_t *ring;        /* every key of the cluster (members, then clients) */
  const syn_identity_t *ident;      /* our member identity: the handshake's */
  const char *listen_host;          /* "127.0.0.1" unless told */
  uint16_t listen_port;             /* 0: an ephemeral port (syn_transport_port) */
  const char *bootstrap_host;       /* NULL: no bootstrap peer */
  uint16_t bootstrap_port;
  void *ctx;
  /* An envelope from authenticated process `peer` for local node `dest`
   * (valid during the call only). */
  void (*on_frame)(void *ctx, uint32_t peer, uint32_t dest, const uint8_t *frame, size_t len);
  /* Process `peer` got (up) or lost its connection. */
  void (*on_peer)(void *ctx, uint32_t peer, bool up);
} syn_transport_cfg_t;

/* One peer as /peers and the console show it. */
typedef struct {
  bool known;                        /* an address is on record */
  char host[SYN_MAX_HOST_BYTES];
  uint16_t port;
  bool connected;
  bool outbound;                     /* we dialled the live connection */
  int64_t last_rx_ns;                /* uv_hrtime of its last unit; 0 never */
  uint64_t frames_in, frames_out, bytes_in, bytes_out, queue_drops, throttles, connects;
  size_t queued_bytes;
} syn_peer_info_t;

/* Binds and listens, then dials the bootstrap peer. -SYN_EIO (the address
 * is taken or cannot be bound: see syn_transport_error). */
int syn_transport_new(syn_transport_t **out, const syn_transport_cfg_t *cfg);
/* Closes every handle; free with syn_transport_free after the loop has run
 * their close callbacks (uv_run until it returns). */
void syn_transport_close(syn_transport_t *t);
void syn_transport_free(syn_transport_t *t);
const char *syn_transport_error(void);

uint16_t syn_transport_port(const syn_transport_t *t);
/* Queues frame for node dest at process peer: -SYN_ESTATE when not
 * connected, -SYN_ELIMIT when its queue is full (both counted). */
int syn_transport_send(syn_transport_t *t, uint32_t peer, uint32_t dest, const uint8_t *frame, size_t len);
void syn_transport_peer(const syn_transport_t *t, uint32_t peer, syn_peer_info_t *out);
uint32_t syn_transport_connected(const syn_transport_t *t);   /* peers with a live connection */
const uint64_t *syn_transport_refused(const syn_transport_t *t);   /* SYN_TR_COUNT counters */
const char *syn_transport_reason(syn_tr_reason_t r);

#endif
