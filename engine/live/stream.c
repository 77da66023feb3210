/* stream.c — the length-prefixed frame stream and the connection
 * handshake (see stream.h). Owns one bounded reassembly buffer per stream;
 * never touches a socket or a clock. */
#include "stream.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- the frame stream ---- */

void syn_stream_init(syn_stream_t *s) { memset(s, 0, sizeof *s); }

void syn_stream_free(syn_stream_t *s) {
  free(s->buf);
  memset(s, 0, sizeof *s);
}

int syn_stream_prefix(size_t len, uint8_t out[SYN_STREAM_PREFIX_BYTES]) {
  if (len == 0 || len > SYN_STREAM_MAX_BYTES) return -SYN_ETOOBIG;
  syn_put_u32(out, (uint32_t)len);
  return 0;
}

/* Makes room for `need` buffered bytes; need never exceeds prefix + limit. */
static int reserve(syn_stream_t *s, size_t need) {
  if (need <= s->cap) return 0;
  size_t cap = s->cap ? s->cap : 4096;
  while (cap < need) cap *= 2;
  if (cap > SYN_STREAM_PREFIX_BYTES + SYN_STREAM_MAX_BYTES) cap = SYN_STREAM_PREFIX_BYTES + SYN_STREAM_MAX_BYTES;
  uint8_t *b = realloc(s->buf, cap);
  if (b == NULL) return -SYN_ENOMEM;
  s->buf = b;
  s->cap = cap;
  return 0;
}

int syn_stream_feed(syn_stream_t *s, const uint8_t *data, size_t n, syn_stream_frame_fn fn, void *ctx) {
  if (s->dead) return -SYN_ESTATE;
  while (n > 0) {
    /* The prefix first, then exactly the body it announces. */
    size_t want = SYN_STREAM_PREFIX_BYTES;
    if (s->len >= SYN_STREAM_PREFIX_BYTES) {
      uint32_t body = syn_get_u32(s->buf);
      want = SYN_STREAM_PREFIX_BYTES + body;
    } else if (reserve(s, SYN_STREAM_PREFIX_BYTES) != 0) {
      return -SYN_ENOMEM;
    }
    size_t take = want - s->len < n ? want - s->len : n;
    memcpy(s->buf + s->len, data, take);
    s->len += take; data += take; n -= take;
    if (s->len == SYN_STREAM_PREFIX_BYTES && want == SYN_STREAM_PREFIX_BYTES) {
      uint32_t body = syn_get_u32(s->buf);
      size_t max = s->max && s->max < SYN_STREAM_MAX_BYTES ? s->max : SYN_STREAM_MAX_BYTES;
      if (body == 0 || body > max) {   /* refused before any buffer is sized for it */
        s->dead = true;
        return -SYN_ETOOBIG;
      }
      if (reserve(s, SYN_STREAM_PREFIX_BYTES + body) != 0) return -SYN_ENOMEM;
      continue;
    }
    if (s->len == want && want > SYN_STREAM_PREFIX_BYTES) {
      s->frames++;
      s->len = 0;
      fn(ctx, s->buf + SYN_STREAM_PREFIX_BYTES, want - SYN_STREAM_PREFIX_BYTES);
    }
  }
  return 0;
}

/* ---- the handshake ---- */

static const char hs_domain[] = "synod/1/handshake";   /* hashed without its NUL */

void syn_hs_cluster(const syn_keyring_t *ring, uint8_t out[SYN_DIGEST_BYTES]) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, SYN_DIGEST_BYTES);
  uint8_t n[4];
  syn_put_u32(n, ring->n);
  crypto_generichash_update(&st, n, sizeof n);
  for (uint32_t i = 0; i < ring->n && i < SYN_MAX_NODES; i++) crypto_generichash_update(&st, ring->pk[i], SYN_PK_BYTES);
  crypto_generichash_final(&st, out, SYN_DIGEST_BYTES);
}

void syn_hs_hello_encode(const syn_hs_hello_t *h, uint8_t out[SYN_HS_HELLO_BYTES]) {
  syn_put_u32(out, SYN_HS_MAGIC);
  out[4] = SYN_HS_VERSION;
  syn_put_u32(out + 5, h->id);
  memcpy(out + 9, h->cluster, SYN_DIGEST_BYTES);
  memcpy(out + 9 + SYN_DIGEST_BYTES, h->nonce, SYN_HS_NONCE_BYTES);
}

int syn_hs_hello_decode(const uint8_t *p, size_t len, syn_hs_hello_t *out) {
  if (len < SYN_HS_HELLO_BYTES) return -SYN_ETRUNC;
  if (len > SYN_HS_HELLO_BYTES) return -SYN_ETRAILING;
  if (syn_get_u32(p) != SYN_HS_MAGIC) return -SYN_EMAGIC;
  if (p[4] != SYN_HS_VERSION) return -SYN_EVERSION;
  out->id = syn_get_u32(p + 5);
  memcpy(out->cluster, p + 9, SYN_DIGEST_BYTES);
  memcpy(out->nonce, p + 9 + SYN_DIGEST_BYTES, SYN_HS_NONCE_BYTES);
  return 0;
}

/* The signed text: domain ‖ cluster ‖ signer id ‖ peer id ‖ signer nonce ‖ peer nonce, hashed. */
static void hs_text(const syn_hs_hello_t *signer, const syn_hs_hello_t *peer, uint8_t out[64]) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, 64);
  crypto_generichash_update(&st, (const uint8_t *)hs_domain, sizeof hs_domain - 1);
  crypto_generichash_update(&st, signer->cluster, SYN_DIGEST_BYTES);
  uint8_t ids[8];
  syn_put_u32(ids, signer->id);
  syn_put_u32(ids + 4, peer->id);
  crypto_generichash_update(&st, ids, sizeof ids);
  crypto_generichash_update(&st, signer->nonce, SYN_HS_NONCE_BYTES);
  crypto_generichash_update(&st, peer->nonce, SYN_HS_NONCE_BYTES);
  crypto_generichash_final(&st, out, 64);
}

void syn_hs_sign(const syn_identity_t *id, const syn_hs_hello_t *mine, const syn_hs_hello_t *theirs,
                 uint8_t sig[SYN_HS_AUTH_BYTES]) {
  uint8_t h[64];
  hs_text(mine, theirs, h);
  crypto_sign_detached(sig, NULL, h, sizeof h, id->sk);
}

int syn_hs_check_hello(const syn_keyring_t *ring, const syn_hs_hello_t *mine, const syn_hs_hello_t *theirs,
                       syn_hs_nonces_t *seen) {
  if (sodium_memcmp(mine->cluster, theirs->cluster, SYN_DIGEST_BYTES) != 0) return -SYN_EPARSE;
  if (theirs->id >= ring->n || theirs->id == mine->id) return -SYN_ESENDER;
  if (seen == NULL) return 0;
  for (uint32_t i = 0; i < seen->count; i++)
    if (memcmp(seen->nonce[i], theirs->nonce, SYN_HS_NONCE_BYTES) == 0) return -SYN_ESTATE;
  memcpy(seen->nonce[seen->next], theirs->nonce, SYN_HS_NONCE_BYTES);
  seen->next = (seen->next + 1) % SYN_MAX_HS_NONCES;
  if (seen->count < SYN_MAX_HS_NONCES) seen->count++;
  return 0;
}

int syn_hs_verify(const syn_keyring_t *ring, const syn_hs_hello_t *mine, const syn_hs_hello_t *theirs,
                  const uint8_t sig[SYN_HS_AUTH_BYTES]) {
  if (theirs->id >= ring->n) return -SYN_ESENDER;
  uint8_t h[64];
  hs_text(theirs, mine, h);
  return crypto_sign_verify_detached(sig, h, sizeof h, ring->pk[theirs->id]) == 0 ? 0 : -SYN_EBADSIG;
}
