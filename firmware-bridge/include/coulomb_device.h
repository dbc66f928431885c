/*
 * coulomb_device.h - device side of the Coulomb device protocol, version 1
 * (firmware-bridge/PROTOCOL.md).
 *
 * Portable C99. No heap: every output goes to a caller-provided buffer or a fixed-size struct.
 * No global mutable state: the only state is an optional, caller-owned secp256k1 context.
 * Signing and verification (BIP340 Schnorr) go through libsecp256k1 (>= 0.2.0, modules
 * extrakeys and schnorrsig); hashing uses the library's own SHA-256.
 *
 * Conventions:
 *   - Functions returning coulomb_err return COULOMB_OK (0) or a negative error code.
 *   - Functions returning int return a length (>= 0) or a negative coulomb_err.
 *   - Every `ctx` argument may be NULL. Verification then uses secp256k1_context_static;
 *     signing builds a temporary context on the stack (not randomized). For side-channel
 *     hardening, create one context at start-up with coulomb_context_create() and a seed from the
 *     hardware RNG, and pass it everywhere.
 *   - Ids (device id, gateway id) are 32-byte BIP340 x-only public keys; signatures are 64 bytes.
 *
 * Randomness: every signing function takes `aux32`, BIP340's auxiliary random data. Pass NULL
 * (recommended) and the library draws 32 fresh bytes from coulomb_platform_random(), the
 * platform's hook (below): each signature then gets a synthetic nonce, BIP340's countermeasure to
 * fault injection and side-channel attacks. A non-NULL aux32 is used as given (the shared test
 * vectors pass fixed values); the library cannot tell whether it is fresh, so it then always
 * verifies the signature before returning it (unless built with COULOMB_VERIFY_AFTER_SIGN=0).
 *
 * Build-time options (compile the library's sources with -D...):
 *   COULOMB_HAVE_RANDOM=0           the platform has no randomness source: no hook is needed,
 *                                   aux32 must be given (NULL is COULOMB_ERR_ARG), and every
 *                                   signature is verified before it is returned (default 1: the
 *                                   platform links coulomb_platform_random())
 *   COULOMB_VERIFY_AFTER_SIGN=1     verify every fresh signature before returning it, also when
 *                                   the nonce is synthetic (hardening against faults that aux
 *                                   randomness does not cover; it costs a verification, ~11 ms at
 *                                   160 MHz on rv32imc: firmware-bridge/README.md)
 *   COULOMB_VERIFY_AFTER_SIGN=0     never verify a fresh signature, even with caller-given aux32
 *   (neither)                       verify exactly when the aux randomness did not come from the
 *                                   platform hook (caller-given aux32, or COULOMB_HAVE_RANDOM=0)
 *   COULOMB_STACK_CONTEXT_BYTES=n   stack buffer for the temporary context used when ctx is NULL
 *                                   (default 320; COULOMB_ERR_CONTEXT if libsecp256k1 needs more)
 */
#ifndef COULOMB_DEVICE_H
#define COULOMB_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include <secp256k1.h>
#include <secp256k1_extrakeys.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Protocol constants
 * ------------------------------------------------------------------------------------------- */

#define COULOMB_PROTOCOL_VERSION 1

#define COULOMB_TAG_REQUEST "coulomb/device/request/v1"
#define COULOMB_TAG_RESPONSE "coulomb/device/response/v1"
#define COULOMB_TAG_EVENT "coulomb/device/event/v1"
#define COULOMB_TAG_ENROLL "coulomb/device/enroll/v1"
#define COULOMB_TAG_CONNECT "coulomb/device/mqtt-connect/v1"

/** Largest params text `p` (bytes of UTF-8). */
#define COULOMB_MAX_PARAMS_BYTES 4096u
/** Method `m`: [a-z][a-z0-9_.]{0,31}. */
#define COULOMB_MAX_METHOD_BYTES 32u
/** Idempotency key `k`: 1 to 64 printable ASCII characters (0x21..0x7e). */
#define COULOMB_MAX_IDEMPOTENCY_BYTES 64u
/** Enrollment code: its length is written as one byte. */
#define COULOMB_MAX_ENROLL_CODE_BYTES 255u
/** Event type `e`: its length is written as one byte. */
#define COULOMB_MAX_EVENT_TYPE_BYTES 255u
/** Counters, sequence numbers and timestamps are JSON numbers: at most 2^53 - 1. */
#define COULOMB_MAX_SAFE_INTEGER 9007199254740991ull

#define COULOMB_ID_BYTES 32u
#define COULOMB_SIG_BYTES 64u
#define COULOMB_ID_HEX_CHARS 64u
#define COULOMB_SIG_HEX_CHARS 128u

/**
 * Upper bound of coulomb_request_to_json() output, terminating NUL included: every params byte
 * escaped as \u00XX (6 bytes), every idempotency key byte as \" or \\ (2 bytes).
 */
#define COULOMB_REQUEST_JSON_MAX                                                                  \
  (6u * COULOMB_MAX_PARAMS_BYTES + 2u * COULOMB_MAX_IDEMPOTENCY_BYTES + COULOMB_MAX_METHOD_BYTES + \
   COULOMB_ID_HEX_CHARS + COULOMB_SIG_HEX_CHARS + 2u * 16u + 64u)

/**
 * Upper bound of coulomb_enroll_to_json() output, terminating NUL included.
 */
#define COULOMB_ENROLL_JSON_MAX \
  (6u * COULOMB_MAX_ENROLL_CODE_BYTES + COULOMB_ID_HEX_CHARS + COULOMB_SIG_HEX_CHARS + 48u)

/* ---------------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------------- */

typedef enum {
  COULOMB_OK = 0,
  /** A NULL pointer, or a value the protocol does not allow (method, params, key, counter...). */
  COULOMB_ERR_ARG = -1,
  /** The output buffer is too small; nothing useful was written. */
  COULOMB_ERR_BUFFER_TOO_SMALL = -2,
  /** Not hex, or not the expected number of hex digits. */
  COULOMB_ERR_HEX = -3,
  /** Not well-formed JSON (or not a JSON object). */
  COULOMB_ERR_JSON = -4,
  /** A field is missing, duplicated, mistyped or out of range. */
  COULOMB_ERR_ENVELOPE = -5,
  /** `v` is not 1. */
  COULOMB_ERR_VERSION = -6,
  /** `g` is not the pinned gateway id. */
  COULOMB_ERR_WRONG_GATEWAY = -7,
  /** `d` is not this device's id. */
  COULOMB_ERR_WRONG_DEVICE = -8,
  /** A response's `c` is not the counter of the request it should answer. */
  COULOMB_ERR_WRONG_COUNTER = -9,
  /** An event's `n` is not above the last one processed. */
  COULOMB_ERR_REPLAYED = -10,
  /** The signature does not verify (or the public key is not a valid x-only key). */
  COULOMB_ERR_BAD_SIGNATURE = -11,
  /** The secret key is zero or not below the curve order. */
  COULOMB_ERR_SECRET_KEY = -12,
  /** libsecp256k1 refused an operation, or a fresh signature did not verify. */
  COULOMB_ERR_CRYPTO = -13,
  /** The context memory is too small or misaligned, or a context could not be built. */
  COULOMB_ERR_CONTEXT = -14,
  /** coulomb_platform_random() failed: nothing was signed. */
  COULOMB_ERR_RANDOM = -15
} coulomb_err;

/** A short English description of an error code (static string, never NULL). */
const char *coulomb_strerror(int err);

/* ---------------------------------------------------------------------------------------------
 * SHA-256 (FIPS 180-4), streaming, and the BIP340 tagged hash
 * ------------------------------------------------------------------------------------------- */

typedef struct {
  uint32_t state[8];
  uint64_t total; /* bytes hashed so far */
  uint8_t block[64];
  size_t used; /* bytes waiting in block */
} coulomb_sha256_ctx;

void coulomb_sha256_init(coulomb_sha256_ctx *h);
void coulomb_sha256_update(coulomb_sha256_ctx *h, const void *data, size_t len);
/** Writes the digest and wipes the state. */
void coulomb_sha256_final(coulomb_sha256_ctx *h, uint8_t out[32]);
void coulomb_sha256(const void *data, size_t len, uint8_t out[32]);

/** Starts TaggedHash(tag, .): hashes SHA256(tag) twice; feed the message with _update. */
void coulomb_tagged_hash_init(coulomb_sha256_ctx *h, const char *tag, size_t tag_len);
/** TaggedHash(tag, msg) = SHA256(SHA256(tag) || SHA256(tag) || msg), BIP340. `tag` is a C string. */
void coulomb_tagged_hash(const char *tag, const void *msg, size_t len, uint8_t out[32]);

/* ---------------------------------------------------------------------------------------------
 * Hex (lowercase out; either case in)
 * ------------------------------------------------------------------------------------------- */

/** Writes 2*n lowercase hex digits and a NUL: `out` needs 2*n + 1 bytes. */
void coulomb_hex_encode(const uint8_t *bytes, size_t n, char *out);
/** Decodes exactly out_len bytes; hex_len must be 2*out_len. COULOMB_ERR_HEX otherwise. */
coulomb_err coulomb_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_len);

/* ---------------------------------------------------------------------------------------------
 * Envelopes
 * ------------------------------------------------------------------------------------------- */

/**
 * A request (device -> gateway). The strings are not copied: method, params and idempotency_key
 * point to the caller's text, which must outlive the struct. idempotency_key may be NULL (with
 * idempotency_key_len 0) for "no key".
 */
typedef struct {
  uint8_t device_id[32];
  uint64_t counter;   /* c */
  uint64_t timestamp; /* t, unix seconds */
  const char *method; /* m */
  size_t method_len;
  const char *params; /* p, JSON text exactly as signed ("" for none) */
  size_t params_len;
  const char *idempotency_key; /* k, or NULL */
  size_t idempotency_key_len;
  uint8_t signature[64]; /* s */
} coulomb_request;

/**
 * A response (gateway -> device). After coulomb_parse_response(), body points into the parsed
 * (and unescaped in place) JSON buffer and is NUL-terminated there; body_len excludes the NUL.
 */
typedef struct {
  uint8_t gateway_id[32]; /* g */
  uint8_t device_id[32];  /* d */
  uint64_t counter;       /* c */
  uint64_t timestamp;     /* t */
  int ok;                 /* 1 or 0 */
  const char *body;       /* b: result JSON, or {"code":...,"message":...} */
  size_t body_len;
  uint8_t signature[64]; /* s */
} coulomb_response;

/** A pushed event (gateway -> device); strings as in coulomb_response. */
typedef struct {
  uint8_t gateway_id[32]; /* g */
  uint8_t device_id[32];  /* d */
  uint64_t seq;           /* n */
  uint64_t timestamp;     /* t */
  const char *type;       /* e */
  size_t type_len;
  const char *body; /* b */
  size_t body_len;
  uint8_t signature[64]; /* s */
} coulomb_event;

/* Signed messages (PROTOCOL.md, "Hashing and signing"). The digest functions feed the fields one
 * by one into a streaming tagged hash (no message buffer); the message writers write the same bytes
 * into `buf` and return their length, or COULOMB_ERR_BUFFER_TOO_SMALL / COULOMB_ERR_ARG (a length
 * that does not fit its length prefix). The signature fields are ignored. */
coulomb_err coulomb_request_digest(const coulomb_request *req, uint8_t digest[32]);
coulomb_err coulomb_response_digest(const coulomb_response *res, uint8_t digest[32]);
coulomb_err coulomb_event_digest(const coulomb_event *ev, uint8_t digest[32]);
coulomb_err coulomb_enroll_digest(const uint8_t device_id[32], const char *code, size_t code_len,
                                  uint8_t digest[32]);

int coulomb_request_message(const coulomb_request *req, uint8_t *buf, size_t cap);
int coulomb_response_message(const coulomb_response *res, uint8_t *buf, size_t cap);
int coulomb_event_message(const coulomb_event *ev, uint8_t *buf, size_t cap);
int coulomb_enroll_message(const uint8_t device_id[32], const char *code, size_t code_len,
                           uint8_t *buf, size_t cap);

/* ---------------------------------------------------------------------------------------------
 * Keys, signing, verification (libsecp256k1)
 * ------------------------------------------------------------------------------------------- */

/**
 * The platform's randomness source, provided by the platform, not by the library: fills `len`
 * bytes with fresh, unpredictable randomness (a hardware RNG) and returns 0, or returns non-zero
 * if it cannot. Called with len = 32 for each signature made with aux32 == NULL. Implementations:
 * platform/random_posix.c (host: getrandom(), else /dev/urandom) and the ESP-IDF component
 * coulomb_device (esp_fill_random()). Not needed (never referenced) with COULOMB_HAVE_RANDOM=0.
 */
int coulomb_platform_random(uint8_t *buf, size_t len);

/** Bytes a context created by coulomb_context_create() needs (about 200 on 64-bit hosts). */
size_t coulomb_context_size(void);
/**
 * Builds a secp256k1 context in caller memory (`mem`, aligned for uint64_t and pointers, as
 * malloc's memory is; at least coulomb_context_size() bytes) and, if seed32 is not NULL, randomizes it (side-channel
 * blinding; use 32 bytes from the hardware RNG). Returns NULL if mem is too small or unaligned
 * or randomization fails. Release with secp256k1_context_preallocated_destroy().
 */
secp256k1_context *coulomb_context_create(void *mem, size_t mem_len, const uint8_t seed32[32]);

/** Device id (x-only public key) of a secret key. COULOMB_ERR_SECRET_KEY if the key is invalid. */
coulomb_err coulomb_device_id(const secp256k1_context *ctx, const uint8_t secret_key[32],
                              uint8_t device_id[32]);

/** BIP340 signature of a 32-byte digest; aux32: NULL (fresh randomness from the platform hook)
 * or 32 bytes (see "Randomness" above). */
coulomb_err coulomb_sign_digest(const secp256k1_context *ctx, const uint8_t secret_key[32],
                                const uint8_t aux32[32], const uint8_t digest[32],
                                uint8_t signature[64]);
/** COULOMB_OK if the signature verifies under the x-only key, else COULOMB_ERR_BAD_SIGNATURE. */
coulomb_err coulomb_verify_digest(const secp256k1_context *ctx, const uint8_t xonly_pubkey[32],
                                  const uint8_t digest[32], const uint8_t signature[64]);

/**
 * Fills and signs a request: device_id from the secret key, v = 1. method, params and
 * idempotency_key (NULL for none) are NUL-terminated; they are checked against the protocol's
 * rules (method syntax, params <= 4096 bytes of valid UTF-8, key 1..64 printable ASCII,
 * 1 <= counter <= 2^53-1, timestamp <= 2^53-1) and referenced, not copied, by `out`.
 * The counter must be persisted by the caller before the request is sent, and used once whatever
 * the answer (the gateway takes a counter only when it runs the request; skipped counters are fine).
 */
coulomb_err coulomb_sign_request(const secp256k1_context *ctx, const uint8_t secret_key[32],
                                 const uint8_t aux32[32], uint64_t counter, uint64_t timestamp,
                                 const char *method, const char *params,
                                 const char *idempotency_key, coulomb_request *out);

/**
 * The device's key pair (libsecp256k1's secp256k1_keypair: the secret key and its public key),
 * computed once at start-up, so that coulomb_sign_request_keypair() skips the public-key
 * computation every signature otherwise repeats (a fixed-base multiplication). This is the
 * documented signing path on a device: key pair at boot, then coulomb_sign_request_keypair()
 * with aux32 = NULL. BIP340 asks a signer that reuses a precomputed public key without verifying
 * each signature to make sure that key is correct: this function checks the new key pair once by
 * signing and verifying a fixed digest (COULOMB_ERR_CRYPTO if that fails). It holds the secret
 * key: keep it in RAM only and wipe it when done. COULOMB_ERR_SECRET_KEY if the key is invalid
 * (keypair zeroed on any error).
 */
coulomb_err coulomb_keypair_create(const secp256k1_context *ctx, const uint8_t secret_key[32],
                                   secp256k1_keypair *keypair);

/** coulomb_sign_request() with a key pair from coulomb_keypair_create(): same checks, same bytes. */
coulomb_err coulomb_sign_request_keypair(const secp256k1_context *ctx, const secp256k1_keypair *keypair,
                                         const uint8_t aux32[32], uint64_t counter, uint64_t timestamp,
                                         const char *method, const char *params,
                                         const char *idempotency_key, coulomb_request *out);

/**
 * Writes the request envelope as compact JSON ({"v":1,"d":...,"c":...,"t":...,"m":...,"p":...,
 * ["k":...,]"s":...}, the same bytes as JSON.stringify) and a terminating NUL into buf. Returns the
 * length without the NUL, or COULOMB_ERR_BUFFER_TOO_SMALL if cap < length + 1
 * (COULOMB_REQUEST_JSON_MAX always suffices), or COULOMB_ERR_ARG.
 */
int coulomb_request_to_json(const coulomb_request *req, char *buf, size_t cap);

/** Enrollment: device id and BIP340 signature over the enroll digest of `code` (C string). */
coulomb_err coulomb_sign_enroll(const secp256k1_context *ctx, const uint8_t secret_key[32],
                                const uint8_t aux32[32], const char *code, uint8_t device_id[32],
                                uint8_t signature[64]);
/**
 * MQTT connect token (PROTOCOL.md, "MQTT connect"): the digest of (v = 1, device id, u64 t) under
 * COULOMB_TAG_CONNECT.
 */
coulomb_err coulomb_connect_digest(const uint8_t device_id[32], uint64_t timestamp, uint8_t digest[32]);
/**
 * The credentials a device connects to the gateway's MQTT broker with: client id = its device id
 * (64 hex + NUL), username = `timestamp` in decimal (at most 20 digits + NUL), password = the BIP340
 * signature over coulomb_connect_digest() in hex (128 + NUL). Use the current time: the broker
 * accepts tokens within 300 s of its clock.
 */
coulomb_err coulomb_mqtt_credentials(const secp256k1_context *ctx, const uint8_t secret_key[32],
                                     const uint8_t aux32[32], uint64_t timestamp, char client_id[65],
                                     char username[21], char password[129]);
/** {"deviceId":...,"code":...,"signature":...} and a NUL; length or negative error. */
int coulomb_enroll_to_json(const uint8_t device_id[32], const char *code,
                           const uint8_t signature[64], char *buf, size_t cap);

/* ---------------------------------------------------------------------------------------------
 * Parsing and verifying what the gateway sends
 * ------------------------------------------------------------------------------------------- */

/**
 * Parses a response envelope (a flat JSON object with v, g, d, c, t, ok, b, s; unknown fields
 * are skipped, duplicates rejected). Strings are unescaped IN PLACE (JSON escapes including
 * \uXXXX and surrogate pairs become UTF-8; a lone surrogate becomes U+FFFD as in the gateway's
 * UTF-8 encoding), so `json` is modified and `out->body` points into it. Does not verify.
 * Errors: COULOMB_ERR_JSON, COULOMB_ERR_ENVELOPE, COULOMB_ERR_VERSION, COULOMB_ERR_ARG.
 */
coulomb_err coulomb_parse_response(char *json, size_t len, coulomb_response *out);
/** Same for an event envelope (v, g, d, n, t, e, b, s). */
coulomb_err coulomb_parse_event(char *json, size_t len, coulomb_event *out);

/**
 * Accepts a response only if g is the pinned gateway id, d is this device's id, c is the counter
 * that was sent, and the signature verifies; returns the first failed check's error.
 */
coulomb_err coulomb_verify_response(const secp256k1_context *ctx, const coulomb_response *res,
                                    const uint8_t gateway_id[32], const uint8_t device_id[32],
                                    uint64_t counter_sent);
/**
 * Accepts an event only if g is the pinned gateway id, d is this device's id, n > last_seq
 * (else COULOMB_ERR_REPLAYED; pass 0 before the first event) and the signature verifies.
 */
coulomb_err coulomb_verify_event(const secp256k1_context *ctx, const coulomb_event *ev,
                                 const uint8_t gateway_id[32], const uint8_t device_id[32],
                                 uint64_t last_seq);

/** coulomb_parse_response() then coulomb_verify_response(). */
coulomb_err coulomb_open_response(const secp256k1_context *ctx, char *json, size_t len,
                                  const uint8_t gateway_id[32], const uint8_t device_id[32],
                                  uint64_t counter_sent, coulomb_response *out);
/** coulomb_parse_event() then coulomb_verify_event(). */
coulomb_err coulomb_open_event(const secp256k1_context *ctx, char *json, size_t len,
                               const uint8_t gateway_id[32], const uint8_t device_id[32],
                               uint64_t last_seq, coulomb_event *out);

#ifdef __cplusplus
}
#endif

#endif /* COULOMB_DEVICE_H */
