/*
 * SHA-256 as specified in FIPS 180-4 (sections 4.1.2, 4.2.2, 5.1.1, 5.3.3, 6.2), streaming, plus
 * the BIP340 tagged hash. Portable C99: no unaligned loads, no endianness assumptions.
 */
#include <string.h>

#include "coulomb_device.h"
#include "internal.h"

/* FIPS 180-4 4.2.2: the first 32 bits of the fractional parts of the cube roots of the first 64
 * primes. */
static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u,
    0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu,
    0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu,
    0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u,
    0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u,
    0xc67178f2u};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define CH(x, y, z) (((x) & (y)) ^ (~(x) & (z)))
#define MAJ(x, y, z) (((x) & (y)) ^ ((x) & (z)) ^ ((y) & (z)))
#define BSIG0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))

static uint32_t load_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* One 512-bit block (FIPS 180-4 6.2.2). The message schedule is kept as a rolling 16-word window
 * to save stack: W[t] for t >= 16 overwrites W[t - 16]. */
static void compress(uint32_t state[8], const uint8_t block[64]) {
  uint32_t w[16];
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
  uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
  unsigned t;
  for (t = 0; t < 64; t++) {
    uint32_t wt, t1, t2;
    if (t < 16) {
      wt = load_be32(block + 4 * t);
    } else {
      wt = SSIG1(w[(t - 2) & 15]) + w[(t - 7) & 15] + SSIG0(w[(t - 15) & 15]) + w[t & 15];
    }
    w[t & 15] = wt;
    t1 = h + BSIG1(e) + CH(e, f, g) + K[t] + wt;
    t2 = BSIG0(a) + MAJ(a, b, c);
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
  coulomb_memzero(w, sizeof w);
}

void coulomb_sha256_init(coulomb_sha256_ctx *h) {
  /* FIPS 180-4 5.3.3: fractional parts of the square roots of the first 8 primes. */
  h->state[0] = 0x6a09e667u;
  h->state[1] = 0xbb67ae85u;
  h->state[2] = 0x3c6ef372u;
  h->state[3] = 0xa54ff53au;
  h->state[4] = 0x510e527fu;
  h->state[5] = 0x9b05688cu;
  h->state[6] = 0x1f83d9abu;
  h->state[7] = 0x5be0cd19u;
  h->total = 0;
  h->used = 0;
}

void coulomb_sha256_update(coulomb_sha256_ctx *h, const void *data, size_t len) {
  const uint8_t *p = (const uint8_t *)data;
  if (len == 0) return;
  h->total += (uint64_t)len;
  if (h->used > 0) {
    size_t take = 64 - h->used;
    if (take > len) take = len;
    memcpy(h->block + h->used, p, take);
    h->used += take;
    p += take;
    len -= take;
    if (h->used < 64) return;
    compress(h->state, h->block);
    h->used = 0;
  }
  while (len >= 64) {
    compress(h->state, p);
    p += 64;
    len -= 64;
  }
  if (len > 0) {
    memcpy(h->block, p, len);
    h->used = len;
  }
}

void coulomb_sha256_final(coulomb_sha256_ctx *h, uint8_t out[32]) {
  /* FIPS 180-4 5.1.1: append 0x80, zeros up to 56 mod 64, then the bit length (64-bit BE). */
  uint64_t bits = h->total * 8u;
  unsigned i;
  h->block[h->used++] = 0x80;
  if (h->used > 56) {
    memset(h->block + h->used, 0, 64 - h->used);
    compress(h->state, h->block);
    h->used = 0;
  }
  memset(h->block + h->used, 0, 56 - h->used);
  for (i = 0; i < 8; i++) h->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
  compress(h->state, h->block);
  for (i = 0; i < 8; i++) store_be32(out + 4 * i, h->state[i]);
  coulomb_memzero(h, sizeof *h);
}

void coulomb_sha256(const void *data, size_t len, uint8_t out[32]) {
  coulomb_sha256_ctx h;
  coulomb_sha256_init(&h);
  coulomb_sha256_update(&h, data, len);
  coulomb_sha256_final(&h, out);
}

void coulomb_tagged_hash_init(coulomb_sha256_ctx *h, const char *tag, size_t tag_len) {
  uint8_t tag_hash[32];
  coulomb_sha256(tag, tag_len, tag_hash);
  coulomb_sha256_init(h);
  coulomb_sha256_update(h, tag_hash, sizeof tag_hash);
  coulomb_sha256_update(h, tag_hash, sizeof tag_hash);
}

void coulomb_tagged_hash(const char *tag, const void *msg, size_t len, uint8_t out[32]) {
  coulomb_sha256_ctx h;
  coulomb_tagged_hash_init(&h, tag, strlen(tag));
  coulomb_sha256_update(&h, msg, len);
  coulomb_sha256_final(&h, out);
}
