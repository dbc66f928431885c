/*
 * BIP340 verification through the system libsecp256k1 (Debian: libsecp256k1-dev), as a Node-API
 * addon: about 5x tiny-secp256k1's WASM build of the same library (docs/BENCHMARKS.md).
 * Built by `npm run build:native`; when it is absent the gateway uses tiny-secp256k1.
 *
 *   verify(digest: Buffer(32), xonly: Buffer(32), signature: Buffer(64)) -> boolean
 *
 * Malformed input (wrong lengths, a key not on the curve, r or s out of range) is false.
 */
#include <node_api.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>

static secp256k1_context *ctx;

static int bytes(napi_env env, napi_value v, void **data, size_t want) {
  size_t len = 0;
  bool is_buffer = false;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer) return 0;
  if (napi_get_buffer_info(env, v, data, &len) != napi_ok) return 0;
  return len == want;
}

static napi_value verify(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  void *digest, *key, *sig;
  int ok = 0;
  secp256k1_xonly_pubkey pk;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 3 &&
      bytes(env, argv[0], &digest, 32) && bytes(env, argv[1], &key, 32) && bytes(env, argv[2], &sig, 64) &&
      secp256k1_xonly_pubkey_parse(ctx, &pk, key))
    ok = secp256k1_schnorrsig_verify(ctx, sig, digest, 32, &pk);
  napi_get_boolean(env, ok == 1, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (ctx == NULL) ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  napi_create_function(env, "verify", NAPI_AUTO_LENGTH, verify, NULL, &fn);
  napi_set_named_property(env, exports, "verify", fn);
  return exports;
}
