/*
 * Keys, BIP340 signing and verification through libsecp256k1 (>= 0.2.0: extrakeys and
 * schnorrsig modules), and the request / enrollment / response / event operations built on them.
 *
 * Contexts: a caller may pass its own context (recommended: one randomized context created at
 * start-up). With ctx == NULL, verification uses secp256k1_context_static, and signing builds a
 * temporary, non-randomized context in a stack buffer with the preallocated API, so the library
 * never touches the heap and keeps no global state.
 */
#include <stddef.h>
#include <string.h>

#include <secp256k1_extrakeys.h>
#include <secp256k1_preallocated.h>
#include <secp256k1_schnorrsig.h>

#include "coulomb_device.h"
#include "internal.h"

#ifndef COULOMB_HAVE_RANDOM
/* The platform links coulomb_platform_random() (coulomb_device.h); 0 on a device without a
 * randomness source. */
#define COULOMB_HAVE_RANDOM 1
#endif

/*
 * Verification of each fresh signature before it is released (BIP340's default signing; it costs
 * a verification, more than the signature itself). Two protections against fault attacks:
 *   - a synthetic nonce (aux randomness from the platform hook): a fault cannot make two
 *     signatures share a nonce, which is what turns a faulty signature into the secret key;
 *   - verify-after-sign: no faulty signature leaves the device at all.
 * Default rule: verify exactly when the nonce is not known to be synthetic, i.e. when aux32 came
 * from the caller (the library cannot tell whether it is fresh) or the platform has no randomness
 * source (COULOMB_HAVE_RANDOM=0). -DCOULOMB_VERIFY_AFTER_SIGN=1 verifies always (opt-in
 * hardening), =0 never.
 */
#ifdef COULOMB_VERIFY_AFTER_SIGN
#define VERIFY_SYNTHETIC COULOMB_VERIFY_AFTER_SIGN
#define VERIFY_CALLER_AUX COULOMB_VERIFY_AFTER_SIGN
#else
#define VERIFY_SYNTHETIC 0
#define VERIFY_CALLER_AUX 1
#endif

/* Room for a temporary context: libsecp256k1 0.2.x needs 208 bytes on x86-64, less on 32-bit
 * targets; checked at run time (COULOMB_ERR_CONTEXT if too small). The union aligns the buffer for
 * every type the context holds (64-bit and 32-bit integers, pointers, function pointers), and no
 * more: not long double, whose 16-byte alignment on rv32 (ilp32) is more than picolibc's or
 * ESP-IDF's malloc gives, which made coulomb_context_create() refuse malloc'd memory there.
 * Override the size with -DCOULOMB_STACK_CONTEXT_BYTES=... */
#ifndef COULOMB_STACK_CONTEXT_BYTES
#define COULOMB_STACK_CONTEXT_BYTES 320
#endif

typedef union {
  unsigned char bytes[COULOMB_STACK_CONTEXT_BYTES];
  unsigned long long ull;
  void *ptr;
  void (*fn)(void);
} context_mem;

/* offsetof(align_probe, mem) is the alignment of context_mem. */
typedef struct {
  char c;
  context_mem mem;
} align_probe;

size_t coulomb_context_size(void) { return secp256k1_context_preallocated_size(SECP256K1_CONTEXT_NONE); }

secp256k1_context *coulomb_context_create(void *mem, size_t mem_len, const uint8_t seed32[32]) {
  secp256k1_context *ctx;
  if (mem == NULL || mem_len < coulomb_context_size()) return NULL;
  /* The preallocated API needs memory aligned for any type the context holds. */
  if ((uintptr_t)mem % offsetof(align_probe, mem) != 0) return NULL;
  ctx = secp256k1_context_preallocated_create(mem, SECP256K1_CONTEXT_NONE);
  if (ctx == NULL) return NULL;
  if (seed32 != NULL && !secp256k1_context_randomize(ctx, seed32)) {
    secp256k1_context_preallocated_destroy(ctx);
    return NULL;
  }
  return ctx;
}

coulomb_err coulomb_internal_with_temp_context(coulomb_ctx_op op, void *arg) {
  context_mem mem;
  secp256k1_context *tmp;
  coulomb_err err;
  if (secp256k1_context_preallocated_size(SECP256K1_CONTEXT_NONE) > sizeof mem.bytes)
    return COULOMB_ERR_CONTEXT;
  tmp = secp256k1_context_preallocated_create(mem.bytes, SECP256K1_CONTEXT_NONE);
  if (tmp == NULL) return COULOMB_ERR_CONTEXT;
  err = op(tmp, arg);
  secp256k1_context_preallocated_destroy(tmp);
  coulomb_memzero(mem.bytes, sizeof mem.bytes);
  return err;
}

/* Runs op with a context that can sign: the caller's, or a temporary one. The temporary context
 * lives in the frame of coulomb_internal_with_temp_context() (external linkage, so it is not
 * inlined here): callers that pass their own context do not pay its stack. */
static coulomb_err with_signing_context(const secp256k1_context *ctx, coulomb_ctx_op op, void *arg) {
  if (ctx != NULL && ctx != secp256k1_context_static) return op(ctx, arg);
  return coulomb_internal_with_temp_context(op, arg);
}

static const secp256k1_context *verify_context(const secp256k1_context *ctx) {
  return ctx != NULL ? ctx : secp256k1_context_static;
}

typedef struct {
  const uint8_t *secret_key;
  uint8_t *device_id;
} device_id_args;

static coulomb_err device_id_op(const secp256k1_context *ctx, void *arg) {
  const device_id_args *a = (const device_id_args *)arg;
  secp256k1_keypair keypair;
  secp256k1_xonly_pubkey pub;
  coulomb_err err = COULOMB_OK;
  if (!secp256k1_keypair_create(ctx, &keypair, a->secret_key)) {
    err = COULOMB_ERR_SECRET_KEY;
  } else if (!secp256k1_keypair_xonly_pub(ctx, &pub, NULL, &keypair) ||
             !secp256k1_xonly_pubkey_serialize(ctx, a->device_id, &pub)) {
    err = COULOMB_ERR_CRYPTO;
  }
  coulomb_memzero(&keypair, sizeof keypair);
  return err;
}

coulomb_err coulomb_device_id(const secp256k1_context *ctx, const uint8_t secret_key[32],
                              uint8_t device_id[32]) {
  device_id_args a;
  if (secret_key == NULL || device_id == NULL) return COULOMB_ERR_ARG;
  a.secret_key = secret_key;
  a.device_id = device_id;
  return with_signing_context(ctx, device_id_op, &a);
}

coulomb_err coulomb_verify_digest(const secp256k1_context *ctx, const uint8_t xonly_pubkey[32],
                                  const uint8_t digest[32], const uint8_t signature[64]) {
  const secp256k1_context *vctx = verify_context(ctx);
  secp256k1_xonly_pubkey pub;
  if (xonly_pubkey == NULL || digest == NULL || signature == NULL) return COULOMB_ERR_ARG;
  if (!secp256k1_xonly_pubkey_parse(vctx, &pub, xonly_pubkey)) return COULOMB_ERR_BAD_SIGNATURE;
  return secp256k1_schnorrsig_verify(vctx, signature, digest, 32, &pub) ? COULOMB_OK
                                                                        : COULOMB_ERR_BAD_SIGNATURE;
}

/*
 * Computes the digest to sign once the signer's x-only key is known (a request's or an
 * enrollment's message contains it), so each signature needs one key-pair computation.
 */
typedef coulomb_err (*digest_fn)(void *arg, const uint8_t xonly[32], uint8_t digest[32]);

typedef struct {
  const uint8_t *secret_key;
  const secp256k1_keypair *keypair; /* if not NULL, used instead of secret_key */
  const uint8_t *aux32;
  digest_fn make_digest;
  void *digest_arg;
  uint8_t *signature;
  uint8_t *xonly_out; /* may be NULL */
  int verify;         /* verify the signature before releasing it */
} sign_args;

static coulomb_err sign_op(const secp256k1_context *ctx, void *arg) {
  const sign_args *a = (const sign_args *)arg;
  secp256k1_keypair own;
  const secp256k1_keypair *keypair = a->keypair != NULL ? a->keypair : &own;
  secp256k1_xonly_pubkey pub;
  uint8_t xonly[32], digest[32];
  coulomb_err err = COULOMB_OK;
  if (a->keypair == NULL && !secp256k1_keypair_create(ctx, &own, a->secret_key)) {
    err = COULOMB_ERR_SECRET_KEY;
  } else if (!secp256k1_keypair_xonly_pub(ctx, &pub, NULL, keypair) ||
             !secp256k1_xonly_pubkey_serialize(ctx, xonly, &pub)) {
    err = COULOMB_ERR_CRYPTO;
  } else if ((err = a->make_digest(a->digest_arg, xonly, digest)) != COULOMB_OK) {
    /* err set */
  } else if (!secp256k1_schnorrsig_sign32(ctx, a->signature, digest, keypair, a->aux32)) {
    err = COULOMB_ERR_CRYPTO;
  } else if (a->verify && !secp256k1_schnorrsig_verify(ctx, a->signature, digest, 32, &pub)) {
    err = COULOMB_ERR_CRYPTO;
  }
  if (err == COULOMB_OK && a->xonly_out != NULL) memcpy(a->xonly_out, xonly, 32);
  if (err != COULOMB_OK) memset(a->signature, 0, 64);
  coulomb_memzero(&own, sizeof own);
  return err;
}

/* Signs with the key pair if given, else with one computed from secret_key; aux32 NULL: fresh
 * randomness from the platform hook (a synthetic nonce). */
static coulomb_err sign(const secp256k1_context *ctx, const uint8_t secret_key[32],
                        const secp256k1_keypair *keypair, const uint8_t aux32[32],
                        digest_fn make_digest, void *digest_arg, uint8_t signature[64],
                        uint8_t xonly_out[32]) {
  sign_args a;
  coulomb_err err;
#if COULOMB_HAVE_RANDOM
  uint8_t fresh[32];
#endif
  if ((secret_key == NULL && keypair == NULL) || signature == NULL) return COULOMB_ERR_ARG;
  a.secret_key = secret_key;
  a.keypair = keypair;
  a.aux32 = aux32;
  a.make_digest = make_digest;
  a.digest_arg = digest_arg;
  a.signature = signature;
  a.xonly_out = xonly_out;
  a.verify = VERIFY_CALLER_AUX;
  if (aux32 == NULL) {
#if COULOMB_HAVE_RANDOM
    if (coulomb_platform_random(fresh, sizeof fresh) != 0) {
      memset(signature, 0, 64);
      return COULOMB_ERR_RANDOM;
    }
    a.aux32 = fresh;
    a.verify = VERIFY_SYNTHETIC;
#else
    return COULOMB_ERR_ARG;
#endif
  }
  err = with_signing_context(ctx, sign_op, &a);
#if COULOMB_HAVE_RANDOM
  coulomb_memzero(fresh, sizeof fresh);
#endif
  return err;
}

static coulomb_err fixed_digest(void *arg, const uint8_t xonly[32], uint8_t digest[32]) {
  (void)xonly;
  memcpy(digest, arg, 32);
  return COULOMB_OK;
}

coulomb_err coulomb_sign_digest(const secp256k1_context *ctx, const uint8_t secret_key[32],
                                const uint8_t aux32[32], const uint8_t digest[32],
                                uint8_t signature[64]) {
  uint8_t copy[32];
  if (digest == NULL) return COULOMB_ERR_ARG;
  memcpy(copy, digest, 32);
  return sign(ctx, secret_key, NULL, aux32, fixed_digest, copy, signature, NULL);
}

static coulomb_err request_digest(void *arg, const uint8_t xonly[32], uint8_t digest[32]) {
  coulomb_request *req = (coulomb_request *)arg;
  memcpy(req->device_id, xonly, 32);
  return coulomb_request_digest(req, digest);
}

static coulomb_err sign_request(const secp256k1_context *ctx, const uint8_t secret_key[32],
                                const secp256k1_keypair *keypair, const uint8_t aux32[32],
                                uint64_t counter, uint64_t timestamp, const char *method,
                                const char *params, const char *idempotency_key,
                                coulomb_request *out) {
  coulomb_err err;
  size_t method_len, params_len, key_len = 0;
  if (out == NULL || method == NULL || params == NULL) return COULOMB_ERR_ARG;
  memset(out, 0, sizeof *out);
  if (counter < 1 || counter > COULOMB_MAX_SAFE_INTEGER || timestamp > COULOMB_MAX_SAFE_INTEGER)
    return COULOMB_ERR_ARG;
  method_len = strlen(method);
  if (!coulomb_method_valid(method, method_len)) return COULOMB_ERR_ARG;
  /* Bounded scan: params longer than the limit are rejected without reading them all. */
  for (params_len = 0; params_len <= COULOMB_MAX_PARAMS_BYTES && params[params_len] != '\0';
       params_len++) {
  }
  if (params_len > COULOMB_MAX_PARAMS_BYTES || !coulomb_utf8_valid(params, params_len))
    return COULOMB_ERR_ARG;
  if (idempotency_key != NULL) {
    key_len = strlen(idempotency_key);
    if (!coulomb_idempotency_key_valid(idempotency_key, key_len)) return COULOMB_ERR_ARG;
  }
  out->counter = counter;
  out->timestamp = timestamp;
  out->method = method;
  out->method_len = method_len;
  out->params = params;
  out->params_len = params_len;
  out->idempotency_key = idempotency_key;
  out->idempotency_key_len = key_len;
  err = sign(ctx, secret_key, keypair, aux32, request_digest, out, out->signature, NULL);
  if (err != COULOMB_OK) memset(out, 0, sizeof *out);
  return err;
}

coulomb_err coulomb_sign_request(const secp256k1_context *ctx, const uint8_t secret_key[32],
                                 const uint8_t aux32[32], uint64_t counter, uint64_t timestamp,
                                 const char *method, const char *params,
                                 const char *idempotency_key, coulomb_request *out) {
  if (secret_key == NULL) {
    if (out != NULL) memset(out, 0, sizeof *out);
    return COULOMB_ERR_ARG;
  }
  return sign_request(ctx, secret_key, NULL, aux32, counter, timestamp, method, params,
                      idempotency_key, out);
}

coulomb_err coulomb_sign_request_keypair(const secp256k1_context *ctx, const secp256k1_keypair *keypair,
                                         const uint8_t aux32[32], uint64_t counter, uint64_t timestamp,
                                         const char *method, const char *params,
                                         const char *idempotency_key, coulomb_request *out) {
  if (keypair == NULL) {
    if (out != NULL) memset(out, 0, sizeof *out);
    return COULOMB_ERR_ARG;
  }
  return sign_request(ctx, NULL, keypair, aux32, counter, timestamp, method, params,
                      idempotency_key, out);
}

typedef struct {
  const uint8_t *secret_key;
  secp256k1_keypair *keypair;
} keypair_args;

/* The key pair, checked once: a signature of a fixed digest made with it must verify under its
 * public key (a fault while computing that key would otherwise go into every later signature). */
static coulomb_err keypair_op(const secp256k1_context *ctx, void *arg) {
  static const uint8_t check_digest[32] = {'c', 'o', 'u', 'l', 'o', 'm', 'b', ' ', 'k', 'e', 'y',
                                           'p', 'a', 'i', 'r', ' ', 'c', 'h', 'e', 'c', 'k'};
  const keypair_args *a = (const keypair_args *)arg;
  secp256k1_xonly_pubkey pub;
  uint8_t sig[64];
  coulomb_err err = COULOMB_OK;
  if (!secp256k1_keypair_create(ctx, a->keypair, a->secret_key)) {
    err = COULOMB_ERR_SECRET_KEY;
  } else if (!secp256k1_keypair_xonly_pub(ctx, &pub, NULL, a->keypair) ||
             !secp256k1_schnorrsig_sign32(ctx, sig, check_digest, a->keypair, NULL) ||
             !secp256k1_schnorrsig_verify(ctx, sig, check_digest, 32, &pub)) {
    err = COULOMB_ERR_CRYPTO;
  }
  if (err != COULOMB_OK) coulomb_memzero(a->keypair, sizeof *a->keypair);
  return err;
}

coulomb_err coulomb_keypair_create(const secp256k1_context *ctx, const uint8_t secret_key[32],
                                   secp256k1_keypair *keypair) {
  keypair_args a;
  if (secret_key == NULL || keypair == NULL) return COULOMB_ERR_ARG;
  a.secret_key = secret_key;
  a.keypair = keypair;
  return with_signing_context(ctx, keypair_op, &a);
}

typedef struct {
  const char *code;
  size_t code_len;
} enroll_arg;

static coulomb_err enroll_digest(void *arg, const uint8_t xonly[32], uint8_t digest[32]) {
  const enroll_arg *e = (const enroll_arg *)arg;
  return coulomb_enroll_digest(xonly, e->code, e->code_len, digest);
}

coulomb_err coulomb_sign_enroll(const secp256k1_context *ctx, const uint8_t secret_key[32],
                                const uint8_t aux32[32], const char *code, uint8_t device_id[32],
                                uint8_t signature[64]) {
  enroll_arg arg;
  if (code == NULL || device_id == NULL || signature == NULL) return COULOMB_ERR_ARG;
  arg.code = code;
  arg.code_len = strlen(code);
  if (arg.code_len < 1 || arg.code_len > COULOMB_MAX_ENROLL_CODE_BYTES ||
      !coulomb_utf8_valid(code, arg.code_len))
    return COULOMB_ERR_ARG;
  return sign(ctx, secret_key, NULL, aux32, enroll_digest, &arg, signature, device_id);
}

coulomb_err coulomb_verify_response(const secp256k1_context *ctx, const coulomb_response *res,
                                    const uint8_t gateway_id[32], const uint8_t device_id[32],
                                    uint64_t counter_sent) {
  uint8_t digest[32];
  coulomb_err err;
  if (res == NULL || gateway_id == NULL || device_id == NULL) return COULOMB_ERR_ARG;
  if (memcmp(res->gateway_id, gateway_id, 32) != 0) return COULOMB_ERR_WRONG_GATEWAY;
  if (memcmp(res->device_id, device_id, 32) != 0) return COULOMB_ERR_WRONG_DEVICE;
  if (res->counter != counter_sent) return COULOMB_ERR_WRONG_COUNTER;
  err = coulomb_response_digest(res, digest);
  if (err != COULOMB_OK) return err;
  return coulomb_verify_digest(ctx, gateway_id, digest, res->signature);
}

coulomb_err coulomb_verify_event(const secp256k1_context *ctx, const coulomb_event *ev,
                                 const uint8_t gateway_id[32], const uint8_t device_id[32],
                                 uint64_t last_seq) {
  uint8_t digest[32];
  coulomb_err err;
  if (ev == NULL || gateway_id == NULL || device_id == NULL) return COULOMB_ERR_ARG;
  if (memcmp(ev->gateway_id, gateway_id, 32) != 0) return COULOMB_ERR_WRONG_GATEWAY;
  if (memcmp(ev->device_id, device_id, 32) != 0) return COULOMB_ERR_WRONG_DEVICE;
  if (ev->seq <= last_seq) return COULOMB_ERR_REPLAYED;
  err = coulomb_event_digest(ev, digest);
  if (err != COULOMB_OK) return err;
  return coulomb_verify_digest(ctx, gateway_id, digest, ev->signature);
}

coulomb_err coulomb_open_response(const secp256k1_context *ctx, char *json, size_t len,
                                  const uint8_t gateway_id[32], const uint8_t device_id[32],
                                  uint64_t counter_sent, coulomb_response *out) {
  coulomb_err err = coulomb_parse_response(json, len, out);
  if (err == COULOMB_OK) err = coulomb_verify_response(ctx, out, gateway_id, device_id, counter_sent);
  return err;
}

coulomb_err coulomb_open_event(const secp256k1_context *ctx, char *json, size_t len,
                               const uint8_t gateway_id[32], const uint8_t device_id[32],
                               uint64_t last_seq, coulomb_event *out) {
  coulomb_err err = coulomb_parse_event(json, len, out);
  if (err == COULOMB_OK) err = coulomb_verify_event(ctx, out, gateway_id, device_id, last_seq);
  return err;
}

/* ---- MQTT connect token ---- */

coulomb_err coulomb_connect_digest(const uint8_t device_id[32], uint64_t timestamp, uint8_t digest[32]) {
  coulomb_sha256_ctx h;
  uint8_t b[8];
  const uint8_t version = 1;
  int i;
  if (device_id == NULL || digest == NULL) return COULOMB_ERR_ARG;
  for (i = 7; i >= 0; i--) {
    b[i] = (uint8_t)(timestamp & 0xffu);
    timestamp >>= 8;
  }
  coulomb_tagged_hash_init(&h, COULOMB_TAG_CONNECT, strlen(COULOMB_TAG_CONNECT));
  coulomb_sha256_update(&h, &version, 1);
  coulomb_sha256_update(&h, device_id, 32);
  coulomb_sha256_update(&h, b, 8);
  coulomb_sha256_final(&h, digest);
  return COULOMB_OK;
}

static coulomb_err connect_digest(void *arg, const uint8_t xonly[32], uint8_t digest[32]) {
  return coulomb_connect_digest(xonly, *(const uint64_t *)arg, digest);
}

coulomb_err coulomb_mqtt_credentials(const secp256k1_context *ctx, const uint8_t secret_key[32],
                                     const uint8_t aux32[32], uint64_t timestamp, char client_id[65],
                                     char username[21], char password[129]) {
  uint8_t id[32], sig[64];
  char digits[21];
  int n = 0, i;
  uint64_t t = timestamp;
  coulomb_err err;
  if (client_id == NULL || username == NULL || password == NULL) return COULOMB_ERR_ARG;
  err = sign(ctx, secret_key, NULL, aux32, connect_digest, &t, sig, id);
  if (err != COULOMB_OK) return err;
  coulomb_hex_encode(id, 32, client_id);
  coulomb_hex_encode(sig, 64, password);
  do {
    digits[n++] = (char)('0' + (int)(timestamp % 10u));
    timestamp /= 10u;
  } while (timestamp > 0u && n < 20);
  for (i = 0; i < n; i++) username[i] = digits[n - 1 - i];
  username[n] = '\0';
  return COULOMB_OK;
}
