/* stream.h — what the live runtime's TCP connections carry, before any
 * socket is involved: a byte stream cut into length-prefixed frames, and
 * the authenticated handshake that opens every connection.
 *
 * Stream: each unit travels as u32 length (big-endian) ‖ its bytes. The
 * live transport's unit is an envelope, u32 destination ‖ frame, so a unit is
 * at most SYN_STREAM_MAX_BYTES (a full frame and 4 bytes). The reader learns
 * a unit's length from its 4-byte prefix and refuses one over that limit
 * before sizing any buffer for it; the stream is
 * then dead (the connection must be closed: nothing after a lying length
 * can be trusted to be aligned). It buffers at most one frame.
 *
 * Handshake: each side sends hello {magic "SYNH", version, node id, cluster
 * digest, 32-byte nonce}, then auth = Ed25519 over
 *   "synod/1/handshake" ‖ cluster ‖ signer id ‖ peer id ‖ signer nonce ‖ peer nonce
 * so a signature proves the signer holds the key of the id it claims, for
 * this cluster, on this connection (both nonces), and cannot be replayed on
 * another. The cluster digest is BLAKE2b-256 of the public key list: nodes
 * of a different cluster refuse each other at hello.
 *
 * Never: a socket, a clock or an allocation outside syn_stream_t's one
 * bounded buffer. libuv code (live/transport, to come) drives these. */
#ifndef SYN_STREAM_H
#define SYN_STREAM_H

#include "../base/base.h"
#include "../wire/wire.h"
#include "../crypto/crypto.h"

#define SYN_STREAM_PREFIX_BYTES 4
#define SYN_STREAM_DEST_BYTES   4      /* the live transport's envelope: u32 destination ‖ frame */
#define SYN_STREAM_MAX_BYTES    (SYN_MAX_FRAME_BYTES + SYN_STREAM_DEST_BYTES)   /* one stream unit */
#define SYN_HS_MAGIC            0x53594e48u   /* "SYNH" */
#define SYN_HS_VERSION          1
#define SYN_HS_NONCE_BYTES      32
#define SYN_HS_HELLO_BYTES      (4 + 1 + 4 + SYN_DIGEST_BYTES + SYN_HS_NONCE_BYTES)
#define SYN_HS_AUTH_BYTES       SYN_SIG_BYTES
#define SYN_MAX_HS_NONCES       1024   /* peer nonces remembered to refuse a replayed hello */

/* ---- the frame stream ---- */

typedef struct {
  uint8_t *buf;            /* one frame being assembled: prefix then body */
  size_t len;              /* bytes of it received so far */
  size_t cap;
  bool dead;               /* a length over the limit was announced */
  size_t max;              /* the largest unit taken now (0: SYN_STREAM_MAX_BYTES); a
                              connection still in its handshake takes only handshake units */
  uint64_t frames;         /* frames delivered */
} syn_stream_t;

void syn_stream_init(syn_stream_t *s);
void syn_stream_free(syn_stream_t *s);

/* Called for each complete frame (valid during the call only). */
typedef void (*syn_stream_frame_fn)(void *ctx, const uint8_t *frame, size_t len);

/* Feeds received bytes; calls fn for every frame they complete, in order.
 * Returns 0, -SYN_ETOOBIG (a prefix announced more than
 * SYN_MAX_FRAME_BYTES, or 0: the stream is dead from then on and refuses
 * everything with -SYN_ESTATE), or -SYN_ENOMEM. */
int syn_stream_feed(syn_stream_t *s, const uint8_t *data, size_t n, syn_stream_frame_fn fn, void *ctx);

/* Writes the 4-byte prefix for a frame of len bytes: -SYN_ETOOBIG over the limit. */
int syn_stream_prefix(size_t len, uint8_t out[SYN_STREAM_PREFIX_BYTES]);

/* ---- the handshake ---- */

typedef struct {
  uint32_t id;
  uint8_t cluster[SYN_DIGEST_BYTES];
  uint8_t nonce[SYN_HS_NONCE_BYTES];
} syn_hs_hello_t;

/* The cluster digest of a key ring (its n public keys, in id order). */
void syn_hs_cluster(const syn_keyring_t *ring, uint8_t out[SYN_DIGEST_BYTES]);

void syn_hs_hello_encode(const syn_hs_hello_t *h, uint8_t out[SYN_HS_HELLO_BYTES]);
/* -SYN_ETRUNC / -SYN_ETRAILING on a wrong length, -SYN_EMAGIC, -SYN_EVERSION. */
int syn_hs_hello_decode(const uint8_t *p, size_t len, syn_hs_hello_t *out);

/* Signs the auth for our hello `mine` answering the peer's `theirs`. */
void syn_hs_sign(const syn_identity_t *id, const syn_hs_hello_t *mine, const syn_hs_hello_t *theirs,
                 uint8_t sig[SYN_HS_AUTH_BYTES]);

/* Remembered peer nonces (a ring): a hello whose nonce was seen is a replay. */
typedef struct {
  uint8_t nonce[SYN_MAX_HS_NONCES][SYN_HS_NONCE_BYTES];
  uint32_t count, next;
} syn_hs_nonces_t;

/* Checks the peer's hello against our own before any signature work:
 * -SYN_EPARSE for another cluster, -SYN_ESENDER for an id outside the ring
 * or equal to ours, -SYN_ESTATE for a nonce already seen (a replay; it is
 * remembered otherwise, when seen is not NULL). */
int syn_hs_check_hello(const syn_keyring_t *ring, const syn_hs_hello_t *mine, const syn_hs_hello_t *theirs,
                       syn_hs_nonces_t *seen);
/* Verifies the peer's auth: -SYN_EBADSIG unless signed by theirs->id's key
 * over (theirs, mine) as syn_hs_sign makes it. */
int syn_hs_verify(const syn_keyring_t *ring, const syn_hs_hello_t *mine, const syn_hs_hello_t *theirs,
                  const uint8_t sig[SYN_HS_AUTH_BYTES]);

#endif
