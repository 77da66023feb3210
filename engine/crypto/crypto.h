/* crypto.h — identities, signatures and digests, all through libsodium.
 * Ed25519 with domain separation: a signature covers
 *   "synod/1/" proto "/" type-name "\0" || frame header || payload
 * so a signature made for one protocol or message type can never be
 * replayed as another. BLAKE2b-256 digests. Key files are written 0600. */
#ifndef SYN_CRYPTO_H
#define SYN_CRYPTO_H

#include "../base/base.h"
#include "../wire/wire.h"

#define SYN_PK_BYTES     32
#define SYN_SK_BYTES     64
#define SYN_SEED_BYTES   32
#define SYN_DIGEST_BYTES 32
#define SYN_MAX_NODES    256   /* identities in one cluster or simulation */

typedef struct {
  uint32_t id;
  uint8_t pk[SYN_PK_BYTES];
  uint8_t sk[SYN_SK_BYTES];
} syn_identity_t;

/* The cluster's public keys, indexed by node id. */
typedef struct {
  uint32_t n;
  uint8_t pk[SYN_MAX_NODES][SYN_PK_BYTES];
} syn_keyring_t;

/* Initialises libsodium once; safe to call repeatedly. */
int syn_crypto_init(void);

/* Deterministic identity from a 32-byte seed. */
void syn_identity_from_seed(syn_identity_t *id, uint32_t node, const uint8_t seed[SYN_SEED_BYTES]);
/* Deterministic identity for (cluster seed, node): the seed is
 * BLAKE2b-256("synod keygen" || seed u64 || node u32). For tests and the sim. */
void syn_identity_derive(syn_identity_t *id, uint32_t node, uint64_t seed);
/* A fresh random identity (libsodium's CSPRNG). Never used by the sim. */
void syn_identity_random(syn_identity_t *id, uint32_t node);

/* Signs a whole frame in place (len = full frame size; the last 64 bytes
 * receive the signature). The frame must parse. */
int syn_crypto_sign_frame(const syn_identity_t *id, uint8_t *frame, size_t len);
/* Verifies a parsed frame's signature against the sender's key in ring:
 * -SYN_ESENDER if the sender is not in the ring, -SYN_EBADSIG if it fails. */
int syn_crypto_verify_frame(const syn_keyring_t *ring, const uint8_t *frame, const syn_frame_t *f);

/* BLAKE2b-256. */
void syn_digest(const void *data, size_t len, uint8_t out[SYN_DIGEST_BYTES]);

/* Key files under dir: node-<i>.key (hex seed, mode 0600) for each i and
 * keys.pub (one line per node: "<i> <hex public key>"). With has_seed the
 * keys are syn_identity_derive(seed); otherwise random. dir is created 0700. */
int syn_keys_write(const char *dir, uint32_t n, bool has_seed, uint64_t seed);
/* Reads keys.pub into ring. */
int syn_keys_load_ring(const char *path, syn_keyring_t *ring);
/* Reads dir/node-<node>.key. */
int syn_keys_load_identity(const char *dir, uint32_t node, syn_identity_t *id);
/* Why the last failed syn_keys_* call failed (path and reason); "" after a
 * success. Static text: the key-file functions are not reentrant. */
const char *syn_keys_error(void);

#endif
