/*
 * Host tests of the Coulomb device library.
 *
 *   coulomb_tests sha256            FIPS 180-4 examples, block boundaries, streaming splits
 *   coulomb_tests vectors <file>    every vector of vectors.json, byte for byte
 *   coulomb_tests escapes           JSON escapes in b, cross-checked against the TS reference
 *   coulomb_tests parser            envelope parser: errors, duplicates, unknown members
 *   coulomb_tests buffers           buffer-too-small handling of every writer
 *   coulomb_tests signing           argument checks of signing, contexts and helpers
 *
 * The tests may use malloc (tiny_json.c); the library does not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secp256k1_preallocated.h>

#include "coulomb_device.h"
#include "tiny_json.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                      \
  do {                                                        \
    checks++;                                                 \
    if (!(cond)) {                                            \
      failures++;                                             \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);    \
      fprintf(stderr, __VA_ARGS__);                           \
      fputc('\n', stderr);                                    \
    }                                                         \
  } while (0)

#define CHECK_ERR(expr, want)                                                           \
  do {                                                                                  \
    int got_ = (int)(expr);                                                             \
    CHECK(got_ == (int)(want), "%s: got %d (%s), want %d (%s)", #expr, got_,            \
          coulomb_strerror(got_), (int)(want), coulomb_strerror((int)(want)));          \
  } while (0)

/* ---- helpers ---- */

static void must_hex(const char *hex, uint8_t *out, size_t n) {
  if (hex == NULL || coulomb_hex_decode(hex, strlen(hex), out, n) != COULOMB_OK) {
    fprintf(stderr, "bad test data: expected %u bytes of hex, got %s\n", (unsigned)n,
            hex ? hex : "(null)");
    exit(2);
  }
}

/* Decodes hex of any length into a malloc'd buffer. */
static uint8_t *hex_alloc(const char *hex, size_t *n) {
  uint8_t *out;
  if (hex == NULL || strlen(hex) % 2 != 0) {
    fprintf(stderr, "bad test data: hex %s\n", hex ? hex : "(null)");
    exit(2);
  }
  *n = strlen(hex) / 2;
  out = (uint8_t *)malloc(*n + 1);
  if (out == NULL) abort();
  must_hex(hex, out, *n);
  return out;
}

static int bytes_eq_hex(const uint8_t *bytes, size_t n, const char *hex) {
  char *h;
  int eq;
  if (hex == NULL) return 0;
  h = (char *)malloc(2 * n + 1);
  if (h == NULL) abort();
  coulomb_hex_encode(bytes, n, h);
  eq = strcmp(h, hex) == 0;
  if (!eq) fprintf(stderr, "  got  %s\n  want %s\n", h, hex);
  free(h);
  return eq;
}

static char *dup_n(const char *s, size_t n) {
  char *c = (char *)malloc(n + 1);
  if (c == NULL) abort();
  memcpy(c, s, n);
  c[n] = '\0';
  return c;
}

static const char *SK3 = "0000000000000000000000000000000000000000000000000000000000000003";
static const char *GW_SK = "c90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74020bbea63b14e5c9";
static const char *GW_ID = "dd308afec5777e13121fa72b9cc1b7cc0139715309b086c960e18fd969774eb8";
static const char *DEV3_ID = "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9";

/* ================================================================================================
 * sha256
 * ============================================================================================== */

static void test_sha256(void) {
  static const struct {
    size_t len;
    const char *hex;
  } pattern[] = {
      /* bytes (7*i) mod 251; digests from Python's hashlib */
      {0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {1, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"},
      {55, "8af594de0e003fdee5c8bb088216c824349b4137070f559574f4a4bddd27b714"},
      {56, "db81bc2bfd43620591df192139062da77d4c376f1888ea3d2190bd07c8d901f9"},
      {57, "4d95ad65f5ec430c9a97ae9243b87d4d6fa0c474288c93cecfbfe9257e711780"},
      {63, "bd535b38bf0d0d1a09d370b7e34b2696cea3767801a45d5611a4aaa6954e8527"},
      {64, "292be91abe8c0909fe3d26575af5755eee74d23816dc68c3ba41765136967654"},
      {65, "ba65aedf7884642499a59ae124894611d986cf429e69f569488048af3a99e25a"},
      {119, "d367ab298e74477421127b0b448667c37c006c636f5738f081c39388756e5fad"},
      {120, "be7beb9c82089eb08da8fe6eb30c13b9d56869014e228a8c3eb0fdfe832efab2"},
      {127, "770cba7b80c7615a327db5812ccd3f80895d801b587448fcd0b2c1a10f5c88a3"},
      {128, "cb5311e1d7aa8e11d6af7081f3ffc3e4efa008c7483a1a791fe170bf37546ba7"},
      {129, "b9e17b1020711e1a6f25633f677a750b3d54399773eb191acac2cb8c7c8b2541"},
      {1000, "59425e4412e296fc74736673ce067027f384203f59c0d2c3e6be7b13347b3ffc"},
  };
  static const struct {
    const char *msg;
    const char *hex;
  } fips[] = {
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnop"
       "qrsmnopqrstnopqrstu",
       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
  };
  uint8_t data[1000], out[32];
  size_t i, j;
  coulomb_sha256_ctx h;
  unsigned seed = 12345;
  for (i = 0; i < sizeof data; i++) data[i] = (uint8_t)((7 * i) % 251);
  for (i = 0; i < sizeof fips / sizeof fips[0]; i++) {
    coulomb_sha256(fips[i].msg, strlen(fips[i].msg), out);
    CHECK(bytes_eq_hex(out, 32, fips[i].hex), "sha256(%s)", fips[i].msg);
  }
  for (i = 0; i < sizeof pattern / sizeof pattern[0]; i++) {
    size_t len = pattern[i].len;
    coulomb_sha256(data, len, out);
    CHECK(bytes_eq_hex(out, 32, pattern[i].hex), "sha256 of %u pattern bytes", (unsigned)len);
    /* the same bytes fed in pseudo-random pieces, including empty ones */
    for (j = 0; j < 20; j++) {
      size_t done = 0;
      coulomb_sha256_init(&h);
      while (done < len) {
        size_t piece;
        seed = seed * 1103515245u + 12345u;
        piece = (seed >> 16) % 131;
        if (piece > len - done) piece = len - done;
        coulomb_sha256_update(&h, data + done, piece);
        done += piece;
      }
      coulomb_sha256_final(&h, out);
      CHECK(bytes_eq_hex(out, 32, pattern[i].hex), "streamed sha256 of %u bytes", (unsigned)len);
    }
  }
  /* one million 'a' (FIPS 180-2 appendix B.3) */
  memset(data, 'a', sizeof data);
  coulomb_sha256_init(&h);
  for (i = 0; i < 1000; i++) coulomb_sha256_update(&h, data, 1000);
  coulomb_sha256_final(&h, out);
  CHECK(bytes_eq_hex(out, 32, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
        "sha256 of a million 'a'");
}

/* ================================================================================================
 * vectors.json
 * ============================================================================================== */

static const char *kind_tag(const char *kind) {
  if (strcmp(kind, "request") == 0) return COULOMB_TAG_REQUEST;
  if (strcmp(kind, "response") == 0) return COULOMB_TAG_RESPONSE;
  if (strcmp(kind, "event") == 0) return COULOMB_TAG_EVENT;
  if (strcmp(kind, "enroll") == 0) return COULOMB_TAG_ENROLL;
  return NULL;
}

/* Checks the library's request JSON against the vector's envelope, member by member. */
static void check_request_json(const char *json, const tj_value *env, size_t i) {
  tj_value *doc = tj_parse(json, strlen(json));
  static const char *members[] = {"v", "d", "c", "t", "m", "p", "k", "s"};
  size_t m;
  CHECK(doc != NULL && doc->type == TJ_OBJECT, "request %u: JSON output does not parse", (unsigned)i);
  if (doc == NULL) return;
  CHECK(doc->count == env->count, "request %u: %u members, want %u", (unsigned)i,
        (unsigned)doc->count, (unsigned)env->count);
  for (m = 0; m < sizeof members / sizeof members[0]; m++) {
    const tj_value *a = tj_get(doc, members[m]), *b = tj_get(env, members[m]);
    if (b == NULL) {
      CHECK(a == NULL, "request %u: unexpected member %s", (unsigned)i, members[m]);
      continue;
    }
    CHECK(a != NULL && a->type == b->type && a->text_len == b->text_len &&
              (a->text_len == 0 || memcmp(a->text, b->text, a->text_len) == 0),
          "request %u: member %s differs", (unsigned)i, members[m]);
  }
  /* Same member order as JSON.stringify of the TS envelope. */
  for (m = 0; m < doc->count && m < env->count; m++)
    CHECK(strcmp(doc->keys[m], env->keys[m]) == 0, "request %u: member %u is %s, want %s",
          (unsigned)i, (unsigned)m, doc->keys[m], env->keys[m]);
  tj_free(doc);
}

static void test_requests(const tj_value *root, secp256k1_context *own) {
  const tj_value *requests = tj_get(root, "requests");
  size_t i;
  CHECK(requests != NULL && requests->count == 3, "3 request vectors");
  for (i = 0; requests != NULL && i < requests->count; i++) {
    const tj_value *r = tj_at(requests, i), *env = tj_get(r, "envelope");
    uint8_t sk[32], aux[32], digest[32], msg[8192];
    const secp256k1_context *contexts[3];
    coulomb_request req;
    char *json = (char *)malloc(COULOMB_REQUEST_JSON_MAX);
    int ok_c, ok_t, n, len;
    size_t x;
    uint64_t c = tj_uint(env, "c", &ok_c), t = tj_uint(env, "t", &ok_t);
    if (json == NULL) abort();
    contexts[0] = NULL;
    contexts[1] = own;
    contexts[2] = secp256k1_context_static;
    must_hex(tj_str(r, "secretKey"), sk, 32);
    must_hex(tj_str(r, "aux"), aux, 32);
    CHECK(ok_c && ok_t, "request %u: c and t", (unsigned)i);
    for (x = 0; x < 3; x++) {
      CHECK_ERR(coulomb_sign_request(contexts[x], sk, aux, c, t, tj_str(env, "m"), tj_str(env, "p"),
                                     tj_str(env, "k"), &req),
                COULOMB_OK);
      CHECK(bytes_eq_hex(req.device_id, 32, tj_str(env, "d")), "request %u: device id", (unsigned)i);
      CHECK(bytes_eq_hex(req.signature, 64, tj_str(r, "signature")),
            "request %u (context %u): same aux, same signature", (unsigned)i, (unsigned)x);
      CHECK(strcmp(tj_str(r, "signature"), tj_str(env, "s")) == 0, "vector consistency");
      /* the same request from a key pair computed beforehand: the same bytes */
      {
        secp256k1_keypair kp;
        coulomb_request kreq;
        CHECK_ERR(coulomb_keypair_create(contexts[x], sk, &kp), COULOMB_OK);
        CHECK_ERR(coulomb_sign_request_keypair(contexts[x], &kp, aux, c, t, tj_str(env, "m"),
                                               tj_str(env, "p"), tj_str(env, "k"), &kreq),
                  COULOMB_OK);
        CHECK(bytes_eq_hex(kreq.device_id, 32, tj_str(env, "d")), "request %u: key pair's device id",
              (unsigned)i);
        CHECK(bytes_eq_hex(kreq.signature, 64, tj_str(r, "signature")),
              "request %u (context %u): key pair, same signature", (unsigned)i, (unsigned)x);
      }
    }
    n = coulomb_request_message(&req, msg, sizeof msg);
    CHECK(n > 0 && bytes_eq_hex(msg, (size_t)n, tj_str(r, "message")), "request %u: message bytes",
          (unsigned)i);
    CHECK_ERR(coulomb_request_digest(&req, digest), COULOMB_OK);
    CHECK(bytes_eq_hex(digest, 32, tj_str(r, "digest")), "request %u: digest", (unsigned)i);
    CHECK_ERR(coulomb_verify_digest(NULL, req.device_id, digest, req.signature), COULOMB_OK);
    len = coulomb_request_to_json(&req, json, COULOMB_REQUEST_JSON_MAX);
    CHECK(len > 0 && (size_t)len == strlen(json), "request %u: JSON length", (unsigned)i);
    if (len > 0) check_request_json(json, env, i);
    if (i == 1)
      CHECK(strcmp(json,
                   "{\"v\":1,\"d\":\"f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9\","
                   "\"c\":2,\"t\":1763700001,\"m\":\"pay\",\"p\":\"{\\\"invoice\\\":"
                   "\\\"lnbcrt10u1pexample\\\"}\",\"k\":\"pay-0001\",\"s\":\"25e4d5cbe0da1181de7bd"
                   "eaef83190822c7d15b039e19dcd319fdf617830bbfe04f4bd89cfbcc6d0e39544a5b73a7ca120bd"
                   "c5cbaa478a0b4d526f9adbc2d92f\"}") == 0,
            "request 1: exact JSON, got %s", json);
    free(json);
  }
}

/* Parses the envelope exactly as it appears in vectors.json (pretty-printed). */
static void test_responses(const tj_value *root, const uint8_t gw[32]) {
  const tj_value *responses = tj_get(root, "responses");
  uint8_t gw_sk[32];
  size_t i;
  must_hex(tj_str(tj_get(root, "gateway"), "secretKey"), gw_sk, 32);
  CHECK(responses != NULL && responses->count == 2, "2 response vectors");
  for (i = 0; responses != NULL && i < responses->count; i++) {
    const tj_value *r = tj_at(responses, i), *env = tj_get(r, "envelope");
    char *json = dup_n(env->raw, env->raw_len);
    const char *b = tj_str(env, "b");
    uint8_t dev[32], digest[32], aux[32], sig[64], other[32], msg[512];
    coulomb_response res, bad;
    int ok_c, n;
    uint64_t c = tj_uint(env, "c", &ok_c);
    must_hex(tj_str(env, "d"), dev, 32);
    must_hex(tj_str(r, "aux"), aux, 32);
    CHECK_ERR(coulomb_parse_response(json, env->raw_len, &res), COULOMB_OK);
    CHECK(bytes_eq_hex(res.gateway_id, 32, tj_str(env, "g")), "response %u: g", (unsigned)i);
    CHECK(bytes_eq_hex(res.device_id, 32, tj_str(env, "d")), "response %u: d", (unsigned)i);
    CHECK(res.counter == c && ok_c, "response %u: c", (unsigned)i);
    CHECK(res.ok == tj_get(env, "ok")->boolean, "response %u: ok", (unsigned)i);
    CHECK(res.body != NULL && res.body_len == strlen(b) && memcmp(res.body, b, res.body_len) == 0 &&
              res.body[res.body_len] == '\0',
          "response %u: b", (unsigned)i);
    CHECK(bytes_eq_hex(res.signature, 64, tj_str(r, "signature")), "response %u: s", (unsigned)i);
    n = coulomb_response_message(&res, msg, sizeof msg);
    CHECK(n > 0 && bytes_eq_hex(msg, (size_t)n, tj_str(r, "message")), "response %u: message",
          (unsigned)i);
    CHECK_ERR(coulomb_response_digest(&res, digest), COULOMB_OK);
    CHECK(bytes_eq_hex(digest, 32, tj_str(r, "digest")), "response %u: digest", (unsigned)i);
    CHECK_ERR(coulomb_verify_response(NULL, &res, gw, dev, c), COULOMB_OK);
    /* the gateway's signature, reproduced from its key and aux */
    CHECK_ERR(coulomb_sign_digest(NULL, gw_sk, aux, digest, sig), COULOMB_OK);
    CHECK(bytes_eq_hex(sig, 64, tj_str(r, "signature")), "response %u: re-signed", (unsigned)i);
    /* each check of PROTOCOL.md, in turn */
    memcpy(other, gw, 32);
    other[31] ^= 1;
    CHECK_ERR(coulomb_verify_response(NULL, &res, other, dev, c), COULOMB_ERR_WRONG_GATEWAY);
    memcpy(other, dev, 32);
    other[0] ^= 0x80;
    CHECK_ERR(coulomb_verify_response(NULL, &res, gw, other, c), COULOMB_ERR_WRONG_DEVICE);
    CHECK_ERR(coulomb_verify_response(NULL, &res, gw, dev, c + 1), COULOMB_ERR_WRONG_COUNTER);
    bad = res;
    bad.ok = !res.ok;
    CHECK_ERR(coulomb_verify_response(NULL, &bad, gw, dev, c), COULOMB_ERR_BAD_SIGNATURE);
    bad = res;
    bad.timestamp++;
    CHECK_ERR(coulomb_verify_response(NULL, &bad, gw, dev, c), COULOMB_ERR_BAD_SIGNATURE);
    bad = res;
    bad.body_len--;
    CHECK_ERR(coulomb_verify_response(NULL, &bad, gw, dev, c), COULOMB_ERR_BAD_SIGNATURE);
    bad = res;
    bad.signature[63] ^= 1;
    CHECK_ERR(coulomb_verify_response(NULL, &bad, gw, dev, c), COULOMB_ERR_BAD_SIGNATURE);
    free(json);
    /* parse + verify in one call, on a fresh copy */
    json = dup_n(env->raw, env->raw_len);
    CHECK_ERR(coulomb_open_response(NULL, json, env->raw_len, gw, dev, c, &res), COULOMB_OK);
    free(json);
  }
}

static void test_events(const tj_value *root, const uint8_t gw[32]) {
  const tj_value *events = tj_get(root, "events");
  uint8_t gw_sk[32];
  size_t i;
  must_hex(tj_str(tj_get(root, "gateway"), "secretKey"), gw_sk, 32);
  CHECK(events != NULL && events->count == 1, "1 event vector");
  for (i = 0; events != NULL && i < events->count; i++) {
    const tj_value *r = tj_at(events, i), *env = tj_get(r, "envelope");
    char *json = dup_n(env->raw, env->raw_len);
    const char *b = tj_str(env, "b"), *e = tj_str(env, "e");
    uint8_t dev[32], digest[32], aux[32], sig[64], msg[512];
    coulomb_event ev, bad;
    int ok_n, n;
    uint64_t seq = tj_uint(env, "n", &ok_n);
    must_hex(tj_str(env, "d"), dev, 32);
    must_hex(tj_str(r, "aux"), aux, 32);
    CHECK_ERR(coulomb_parse_event(json, env->raw_len, &ev), COULOMB_OK);
    CHECK(bytes_eq_hex(ev.gateway_id, 32, tj_str(env, "g")), "event %u: g", (unsigned)i);
    CHECK(bytes_eq_hex(ev.device_id, 32, tj_str(env, "d")), "event %u: d", (unsigned)i);
    CHECK(ok_n && ev.seq == seq, "event %u: n", (unsigned)i);
    CHECK(ev.type_len == strlen(e) && memcmp(ev.type, e, ev.type_len) == 0, "event %u: e", (unsigned)i);
    CHECK(ev.body_len == strlen(b) && memcmp(ev.body, b, ev.body_len) == 0, "event %u: b", (unsigned)i);
    n = coulomb_event_message(&ev, msg, sizeof msg);
    CHECK(n > 0 && bytes_eq_hex(msg, (size_t)n, tj_str(r, "message")), "event %u: message",
          (unsigned)i);
    CHECK_ERR(coulomb_event_digest(&ev, digest), COULOMB_OK);
    CHECK(bytes_eq_hex(digest, 32, tj_str(r, "digest")), "event %u: digest", (unsigned)i);
    CHECK_ERR(coulomb_verify_event(NULL, &ev, gw, dev, 0), COULOMB_OK);
    CHECK_ERR(coulomb_verify_event(NULL, &ev, gw, dev, seq - 1), COULOMB_OK);
    CHECK_ERR(coulomb_verify_event(NULL, &ev, gw, dev, seq), COULOMB_ERR_REPLAYED);
    CHECK_ERR(coulomb_verify_event(NULL, &ev, dev, dev, 0), COULOMB_ERR_WRONG_GATEWAY);
    CHECK_ERR(coulomb_verify_event(NULL, &ev, gw, gw, 0), COULOMB_ERR_WRONG_DEVICE);
    CHECK_ERR(coulomb_sign_digest(NULL, gw_sk, aux, digest, sig), COULOMB_OK);
    CHECK(bytes_eq_hex(sig, 64, tj_str(r, "signature")), "event %u: re-signed", (unsigned)i);
    bad = ev;
    bad.type_len--;
    CHECK_ERR(coulomb_verify_event(NULL, &bad, gw, dev, 0), COULOMB_ERR_BAD_SIGNATURE);
    bad = ev;
    bad.seq++;
    CHECK_ERR(coulomb_verify_event(NULL, &bad, gw, dev, 0), COULOMB_ERR_BAD_SIGNATURE);
    free(json);
    json = dup_n(env->raw, env->raw_len);
    CHECK_ERR(coulomb_open_event(NULL, json, env->raw_len, gw, dev, 0, &ev), COULOMB_OK);
    free(json);
  }
}

static void test_connect(const tj_value *root) {
  const tj_value *cn = tj_get(root, "connect");
  uint8_t sk[32], aux[32], id[32], digest[32], sig[64];
  char client_id[65], username[21], password[129];
  uint64_t t = (uint64_t)strtoull(tj_str(cn, "username"), NULL, 10);
  must_hex(tj_str(cn, "secretKey"), sk, 32);
  must_hex(tj_str(cn, "aux"), aux, 32);
  must_hex(tj_str(cn, "deviceId"), id, 32);
  CHECK_ERR(coulomb_connect_digest(id, t, digest), COULOMB_OK);
  CHECK(bytes_eq_hex(digest, 32, tj_str(cn, "digest")), "connect: digest");
  CHECK_ERR(coulomb_mqtt_credentials(NULL, sk, aux, t, client_id, username, password), COULOMB_OK);
  CHECK(strcmp(client_id, tj_str(cn, "deviceId")) == 0, "connect: client id");
  CHECK(strcmp(username, tj_str(cn, "username")) == 0, "connect: username");
  CHECK(strcmp(password, tj_str(cn, "password")) == 0, "connect: password is the vector's signature");
  must_hex(password, sig, 64);
  CHECK_ERR(coulomb_verify_digest(NULL, id, digest, sig), COULOMB_OK);
  CHECK_ERR(coulomb_connect_digest(id, t + 1, digest), COULOMB_OK);
  CHECK(coulomb_verify_digest(NULL, id, digest, sig) == COULOMB_ERR_BAD_SIGNATURE, "connect: another time fails");
}

static void test_enroll(const tj_value *root) {
  const tj_value *en = tj_get(root, "enroll");
  const char *code = tj_str(en, "code");
  uint8_t sk[32], aux[32], id[32], sig[64], digest[32], msg[300];
  char json[COULOMB_ENROLL_JSON_MAX];
  tj_value *doc;
  int n;
  must_hex(tj_str(en, "secretKey"), sk, 32);
  must_hex(tj_str(en, "aux"), aux, 32);
  CHECK_ERR(coulomb_sign_enroll(NULL, sk, aux, code, id, sig), COULOMB_OK);
  CHECK(bytes_eq_hex(id, 32, tj_str(en, "deviceId")), "enroll: device id");
  CHECK(bytes_eq_hex(sig, 64, tj_str(en, "signature")), "enroll: signature");
  n = coulomb_enroll_message(id, code, strlen(code), msg, sizeof msg);
  CHECK(n > 0 && bytes_eq_hex(msg, (size_t)n, tj_str(en, "message")), "enroll: message");
  CHECK_ERR(coulomb_enroll_digest(id, code, strlen(code), digest), COULOMB_OK);
  CHECK(bytes_eq_hex(digest, 32, tj_str(en, "digest")), "enroll: digest");
  CHECK_ERR(coulomb_verify_digest(NULL, id, digest, sig), COULOMB_OK);
  n = coulomb_enroll_to_json(id, code, sig, json, sizeof json);
  CHECK(n > 0, "enroll JSON");
  doc = tj_parse(json, (size_t)(n > 0 ? n : 0));
  CHECK(doc != NULL && doc->count == 3 && strcmp(tj_str(doc, "deviceId"), tj_str(en, "deviceId")) == 0 &&
            strcmp(tj_str(doc, "code"), code) == 0 &&
            strcmp(tj_str(doc, "signature"), tj_str(en, "signature")) == 0,
        "enroll JSON members: %s", json);
  tj_free(doc);
}

static void test_derivation(const tj_value *root) {
  const tj_value *keys = tj_get(tj_get(root, "derivation"), "keys");
  size_t i;
  CHECK(keys != NULL && keys->count == 3, "3 derivation vectors");
  for (i = 0; keys != NULL && i < keys->count; i++) {
    uint8_t sk[32], id[32];
    must_hex(tj_str(tj_at(keys, i), "secretKey"), sk, 32);
    CHECK_ERR(coulomb_device_id(NULL, sk, id), COULOMB_OK);
    CHECK(bytes_eq_hex(id, 32, tj_str(tj_at(keys, i), "deviceId")), "derivation %u: device id",
          (unsigned)i);
  }
}

static void test_invalid(const tj_value *root) {
  const tj_value *inv = tj_get(root, "invalid");
  size_t i;
  CHECK(inv != NULL && inv->count == 3, "3 invalid vectors");
  for (i = 0; inv != NULL && i < inv->count; i++) {
    const tj_value *v = tj_at(inv, i);
    const char *tag = kind_tag(tj_str(v, "kind"));
    uint8_t pub[32], sig[64], digest[32];
    size_t n;
    uint8_t *msg = hex_alloc(tj_str(v, "message"), &n);
    CHECK(tag != NULL, "invalid %u: known kind", (unsigned)i);
    if (tag == NULL) continue;
    must_hex(tj_str(v, "pubkey"), pub, 32);
    must_hex(tj_str(v, "signature"), sig, 64);
    coulomb_tagged_hash(tag, msg, n, digest);
    CHECK_ERR(coulomb_verify_digest(NULL, pub, digest, sig), COULOMB_ERR_BAD_SIGNATURE);
    free(msg);
  }
}

static void test_vectors(const char *path) {
  size_t len, i;
  char *text = tj_read_file(path, &len);
  tj_value *root;
  const tj_value *tags;
  uint8_t gw_sk[32], gw[32], id[32];
  secp256k1_context *own;
  void *mem;
  uint8_t seed[32];
  static const char *kinds[] = {"request", "response", "event", "enroll"};
  if (text == NULL) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(2);
  }
  root = tj_parse(text, len);
  if (root == NULL) {
    fprintf(stderr, "cannot parse %s\n", path);
    exit(2);
  }
  CHECK(tj_uint(root, "version", (int *)&i) == 1, "vectors version 1");
  tags = tj_get(root, "tags");
  for (i = 0; i < 4; i++) {
    const tj_value *t = tj_get(tags, kinds[i]);
    uint8_t digest[32];
    CHECK(t != NULL && strcmp(tj_str(t, "tag"), kind_tag(kinds[i])) == 0, "tag %s", kinds[i]);
    if (t == NULL) continue;
    coulomb_tagged_hash(kind_tag(kinds[i]), "", 0, digest);
    CHECK(bytes_eq_hex(digest, 32, tj_str(t, "emptyDigest")), "tag %s: empty digest", kinds[i]);
  }
  must_hex(tj_str(tj_get(root, "gateway"), "secretKey"), gw_sk, 32);
  must_hex(tj_str(tj_get(root, "gateway"), "id"), gw, 32);
  CHECK_ERR(coulomb_device_id(NULL, gw_sk, id), COULOMB_OK);
  CHECK(memcmp(id, gw, 32) == 0, "gateway id from its secret key");

  /* a caller-owned, randomized context in caller memory */
  mem = malloc(coulomb_context_size());
  memset(seed, 0x5a, sizeof seed);
  own = coulomb_context_create(mem, coulomb_context_size(), seed);
  CHECK(own != NULL, "coulomb_context_create");

  test_requests(root, own);
  test_responses(root, gw);
  test_events(root, gw);
  test_enroll(root);
  test_connect(root);
  test_derivation(root);
  test_invalid(root);

  if (own != NULL) secp256k1_context_preallocated_destroy(own);
  free(mem);
  tj_free(root);
  free(text);
}

/* ================================================================================================
 * escapes: the same envelopes the TS reference (src/devices/envelope.ts) signed, with b written
 * with every JSON escape (and raw UTF-8). Digests and signatures were computed by the TS code.
 * ============================================================================================== */

/* Keys in another order, whitespace, an unknown nested member, b hand-escaped. */
static const char XRESP[] =
    "{ \"s\": \"00e72f53e3ec03c19a0ab39961a83e1694eef70c473d93bf78cf095d708636559471fcdbef86ccf9"
    "cc188e16f4f82bcc6f9f134eca8fb6c31011cd980dd6ca33\",\x0a  \"b\": \"{\\\"note\\\":\\\"tab\\tq"
    "\\\\\\\"\\/ nl\\n\\u00e9\\u20AC\\ud83d\\ude00 nul\\u0000 lone\\ud800x\\udc00y pair-split\\u"
    "d83d\\u0041 raw \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\\\"}\",\x0a  \"ok\": true, \"t\": 1763"
    "700100, \"c\": 42,\x0a  \"x-extra\": {\"a\": [1, 2.5e3, null, \"\\u0041\"]},\x0a  \"d\": \""
    "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9\", \"g\": \"dd308afec5777e"
    "13121fa72b9cc1b7cc0139715309b086c960e18fd969774eb8\", \"v\": 1 }";

static const char XEVENT[] =
    "{\"v\":1,\"g\":\"dd308afec5777e13121fa72b9cc1b7cc0139715309b086c960e18fd969774eb8\",\"d\":\""
    "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9\",\"n\":7,\"t\":1763700200"
    ",\"e\":\"\\u0073old\",\"b\":\"{\\\"note\\\":\\\"tab\\tq\\\\\\\"\\/ nl\\n\\u00e9\\u20AC\\ud8"
    "3d\\ude00 nul\\u0000 lone\\ud800x\\udc00y pair-split\\ud83d\\u0041 raw \xc3\xa9\xe2\x82\xac"
    "\xf0\x9f\x98\x80\\\"}\",\"s\":\"cd84b14bdb0178983efd1f629bd9ac0ae61f47332e87d75aff009e86965"
    "01c2fa2fecb9b3d62e4893c14209db26387dfdce5592c8e868dfc553175d6c51740a8\"}";

/* Buffer.from(b, 'utf8') in the TS reference: \u0000 kept, lone surrogates as EF BF BD. */
static const char XBODY_HEX[] =
    "7b226e6f7465223a2274616209715c222f206e6c0ac3a9e282acf09f9880206e756c00206c6f6e65efbfbd78efbf"
    "bd7920706169722d73706c6974efbfbd412072617720c3a9e282acf09f9880227d";

static void test_escapes(void) {
  uint8_t gw[32], dev[32], digest[32];
  char *json = dup_n(XRESP, sizeof XRESP - 1);
  coulomb_response res;
  coulomb_event ev;
  must_hex(GW_ID, gw, 32);
  must_hex(DEV3_ID, dev, 32);

  CHECK_ERR(coulomb_parse_response(json, sizeof XRESP - 1, &res), COULOMB_OK);
  CHECK(bytes_eq_hex((const uint8_t *)res.body, res.body_len, XBODY_HEX), "response b unescaped");
  CHECK(res.counter == 42 && res.timestamp == 1763700100u && res.ok == 1, "response c, t, ok");
  CHECK_ERR(coulomb_response_digest(&res, digest), COULOMB_OK);
  CHECK(bytes_eq_hex(digest, 32, "1c1e08d7db578b5a3db75f93671a510d88719da93ccd9880708c889a7b0f984c"),
        "response digest = TS responseDigest");
  CHECK_ERR(coulomb_verify_response(NULL, &res, gw, dev, 42), COULOMB_OK);
  free(json);

  json = dup_n(XEVENT, sizeof XEVENT - 1);
  CHECK_ERR(coulomb_open_event(NULL, json, sizeof XEVENT - 1, gw, dev, 6, &ev), COULOMB_OK);
  CHECK(ev.type_len == 4 && strcmp(ev.type, "sold") == 0, "event e unescaped (\\u0073old)");
  CHECK(bytes_eq_hex((const uint8_t *)ev.body, ev.body_len, XBODY_HEX), "event b unescaped");
  CHECK_ERR(coulomb_event_digest(&ev, digest), COULOMB_OK);
  CHECK(bytes_eq_hex(digest, 32, "3a87ba1d16428eead1532eb42a83ba96f0e7da8116e58d8738fd663b590da42e"),
        "event digest = TS eventDigest");
  free(json);

  /* The signature covers the unescaped text: one changed escape breaks it. */
  json = dup_n(XRESP, sizeof XRESP - 1);
  {
    char *p = strstr(json, "\\u00e9");
    if (p != NULL) p[5] = '8'; /* é -> è */
  }
  CHECK_ERR(coulomb_open_response(NULL, json, sizeof XRESP - 1, gw, dev, 42, &res),
            COULOMB_ERR_BAD_SIGNATURE);
  free(json);
}

/* ================================================================================================
 * parser errors
 * ============================================================================================== */

#define H64A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define H128A H64A H64A
#define RV "\"v\":1,"
#define RG "\"g\":\"" H64A "\","
#define RD "\"d\":\"" H64A "\","
#define RS "\"s\":\"" H128A "\""
#define RESP(mid) "{" RV RG RD mid RS "}"
#define RMID "\"c\":2,\"t\":3,\"ok\":true,\"b\":\"{}\","

static int parse_resp(const char *text) {
  char *copy = dup_n(text, strlen(text));
  coulomb_response r;
  int err = coulomb_parse_response(copy, strlen(text), &r);
  free(copy);
  return err;
}

static int parse_event(const char *text) {
  char *copy = dup_n(text, strlen(text));
  coulomb_event e;
  int err = coulomb_parse_event(copy, strlen(text), &e);
  free(copy);
  return err;
}

static void test_parser(void) {
  static const struct {
    const char *json;
    int want;
  } cases[] = {
      {RESP(RMID), COULOMB_OK},
      {" \r\n\t" RESP(RMID) " \n", COULOMB_OK},
      {"", COULOMB_ERR_JSON},
      {"[]", COULOMB_ERR_JSON},
      {"{", COULOMB_ERR_JSON},
      {"{}", COULOMB_ERR_ENVELOPE},
      {RESP(RMID) "x", COULOMB_ERR_JSON},
      {RESP(RMID) "{}", COULOMB_ERR_JSON},
      {"{" RV RG RD "\"c\":2,\"t\":3,\"ok\":true," RS "}", COULOMB_ERR_ENVELOPE}, /* no b */
      {"{" RV RG RD "\"c\":2,\"t\":3,\"ok\":true,\"b\":\"{}\"}", COULOMB_ERR_ENVELOPE}, /* no s */
      {RESP("\"c\":2,\"c\":2,\"t\":3,\"ok\":true,\"b\":\"{}\","), COULOMB_ERR_ENVELOPE},
      {RESP(RMID "\"b\":\"{}\","), COULOMB_ERR_ENVELOPE},
      {"{\"v\":2," RG RD RMID RS "}", COULOMB_ERR_VERSION},
      {"{\"v\":\"1\"," RG RD RMID RS "}", COULOMB_ERR_ENVELOPE},
      {RESP("\"c\":-1,\"t\":3,\"ok\":true,\"b\":\"{}\","), COULOMB_ERR_ENVELOPE},
      {RESP("\"c\":1.5,\"t\":3,\"ok\":true,\"b\":\"{}\","), COULOMB_ERR_ENVELOPE},
      {RESP("\"c\":1e3,\"t\":3,\"ok\":true,\"b\":\"{}\","), COULOMB_ERR_ENVELOPE},
      {RESP("\"c\":9007199254740991,\"t\":3,\"ok\":true,\"b\":\"{}\","), COULOMB_OK},
      {RESP("\"c\":9007199254740992,\"t\":3,\"ok\":true,\"b\":\"{}\","), COULOMB_ERR_ENVELOPE},
      {RESP("\"c\":99999999999999999999999,\"t\":3,\"ok\":true,\"b\":\"{}\","), COULOMB_ERR_ENVELOPE},
      {RESP("\"c\":\"2\",\"t\":3,\"ok\":true,\"b\":\"{}\","), COULOMB_ERR_ENVELOPE},
      {RESP("\"c\":01,\"t\":3,\"ok\":true,\"b\":\"{}\","), COULOMB_ERR_JSON},
      {RESP("\"c\":-,\"t\":3,\"ok\":true,\"b\":\"{}\","), COULOMB_ERR_JSON},
      {RESP("\"c\":2,\"t\":3,\"ok\":\"true\",\"b\":\"{}\","), COULOMB_ERR_ENVELOPE},
      {RESP("\"c\":2,\"t\":3,\"ok\":1,\"b\":\"{}\","), COULOMB_ERR_ENVELOPE},
      {RESP("\"c\":2,\"t\":3,\"ok\":tru,\"b\":\"{}\","), COULOMB_ERR_JSON},
      {RESP("\"c\":2,\"t\":3,\"ok\":false,\"b\":{},"), COULOMB_ERR_ENVELOPE},
      {RESP("\"c\":2,\"t\":3,\"ok\":false,\"b\":\"\","), COULOMB_OK},
      {"{" RV "\"g\":\"" H64A "a\"," RD RMID RS "}", COULOMB_ERR_ENVELOPE},
      {"{" RV "\"g\":\"zz" H64A "\"," RD RMID RS "}", COULOMB_ERR_ENVELOPE},
      {"{" RV RG RD RMID "\"s\":\"" H64A "\"}", COULOMB_ERR_ENVELOPE},
      {RESP("\"c\":2,\"t\":3,\"ok\":true,\"b\":\"\\x\","), COULOMB_ERR_JSON},
      {RESP("\"c\":2,\"t\":3,\"ok\":true,\"b\":\"\\u12G4\","), COULOMB_ERR_JSON},
      {RESP("\"c\":2,\"t\":3,\"ok\":true,\"b\":\"\\u12\","), COULOMB_ERR_JSON},
      {RESP("\"c\":2,\"t\":3,\"ok\":true,\"b\":\"a\nb\","), COULOMB_ERR_JSON},
      {RESP("\"c\":2,\"t\":3,\"ok\":true,\"b\":\"abc"), COULOMB_ERR_JSON},
      {RESP("\"c\":2,\"t\":3,\"ok\":true,\"b\":\"\\"), COULOMB_ERR_JSON},
      {RESP(RMID "\"x\":{\"y\":[1,-2.5E+3,{\"z\":null},\"\\\"\"],\"w\":false},"), COULOMB_OK},
      {RESP(RMID "\"x\":[[[[[[[[1]]]]]]]],"), COULOMB_OK},
      {RESP(RMID "\"x\":[[[[[[[[[1]]]]]]]]],"), COULOMB_ERR_JSON},
      {RESP(RMID "\"x\":[1,],"), COULOMB_ERR_JSON},
      {RESP(RMID "\"x\":{\"y\"},"), COULOMB_ERR_JSON},
      {RESP(RMID "\"n\":5,\"e\":\"x\","), COULOMB_OK}, /* event members are unknown here */
      {"{" RV RG RD RMID RS ",}", COULOMB_ERR_JSON},
      {"{" RV RG RD RMID RS "", COULOMB_ERR_JSON},
      {"{\"v\":1 \"g\":\"" H64A "\"}", COULOMB_ERR_JSON},
  };
  size_t i;
  char big_type[400];
  char *ev;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int got = parse_resp(cases[i].json);
    CHECK(got == cases[i].want, "parser case %u: got %d (%s), want %d: %s", (unsigned)i, got,
          coulomb_strerror(got), cases[i].want, cases[i].json);
  }
  /* events */
  CHECK_ERR(parse_event("{" RV RG RD "\"n\":1,\"t\":2,\"e\":\"stop\",\"b\":\"{}\"," RS "}"), COULOMB_OK);
  CHECK_ERR(parse_event("{" RV RG RD "\"n\":1,\"t\":2,\"e\":\"stop\",\"b\":\"{}\",\"ok\":true," RS "}"),
            COULOMB_OK);
  CHECK_ERR(parse_event("{" RV RG RD "\"c\":1,\"t\":2,\"e\":\"stop\",\"b\":\"{}\"," RS "}"),
            COULOMB_ERR_ENVELOPE);
  CHECK_ERR(parse_event("{" RV RG RD "\"n\":1,\"t\":2,\"e\":5,\"b\":\"{}\"," RS "}"), COULOMB_ERR_ENVELOPE);
  memset(big_type, 'x', sizeof big_type);
  ev = (char *)malloc(1024);
  if (ev == NULL) abort();
  sprintf(ev, "{" RV RG RD "\"n\":1,\"t\":2,\"e\":\"%.*s\",\"b\":\"{}\"," RS "}", 255, big_type);
  CHECK_ERR(parse_event(ev), COULOMB_OK);
  sprintf(ev, "{" RV RG RD "\"n\":1,\"t\":2,\"e\":\"%.*s\",\"b\":\"{}\"," RS "}", 256, big_type);
  CHECK_ERR(parse_event(ev), COULOMB_ERR_ENVELOPE);
  free(ev);
  /* NULL arguments */
  {
    coulomb_response r;
    char text[] = "{}";
    CHECK_ERR(coulomb_parse_response(NULL, 0, &r), COULOMB_ERR_ARG);
    CHECK_ERR(coulomb_parse_response(text, 2, NULL), COULOMB_ERR_ARG);
  }
  /* The parse is bounded by len: bytes after it are never read. */
  {
    char text[sizeof RESP(RMID) + 8];
    coulomb_response r;
    strcpy(text, RESP(RMID));
    strcat(text, "garbage");
    CHECK_ERR(coulomb_parse_response(text, strlen(RESP(RMID)), &r), COULOMB_OK);
    CHECK(r.body_len == 2 && strcmp(r.body, "{}") == 0, "body {}");
  }
}

/* ================================================================================================
 * buffers
 * ============================================================================================== */

#define CANARY 0xa5

static int untouched(const unsigned char *p, size_t from, size_t to) {
  size_t i;
  for (i = from; i < to; i++)
    if (p[i] != CANARY) return 0;
  return 1;
}

static void test_buffers(void) {
  uint8_t sk[32], aux[32], id[32], sig[64];
  coulomb_request req;
  coulomb_response res;
  coulomb_event ev;
  char *params = (char *)malloc(COULOMB_MAX_PARAMS_BYTES + 1);
  char key[COULOMB_MAX_IDEMPOTENCY_BYTES + 1];
  unsigned char *buf = (unsigned char *)malloc(COULOMB_REQUEST_JSON_MAX + 64);
  int full, got;
  size_t cap;
  if (params == NULL || buf == NULL) abort();
  must_hex(SK3, sk, 32);
  memset(aux, 1, sizeof aux);

  /* The worst case: every params byte a control character (\u00XX), every key byte a quote. */
  memset(params, 0x01, COULOMB_MAX_PARAMS_BYTES);
  params[COULOMB_MAX_PARAMS_BYTES] = '\0';
  memset(key, '"', COULOMB_MAX_IDEMPOTENCY_BYTES);
  key[COULOMB_MAX_IDEMPOTENCY_BYTES] = '\0';
  CHECK_ERR(coulomb_sign_request(NULL, sk, aux, COULOMB_MAX_SAFE_INTEGER, COULOMB_MAX_SAFE_INTEGER,
                                 "abcdefghijklmnopqrstuvwxyz012345", params, key, &req),
            COULOMB_OK);
  memset(buf, CANARY, COULOMB_REQUEST_JSON_MAX + 64);
  full = coulomb_request_to_json(&req, (char *)buf, COULOMB_REQUEST_JSON_MAX);
  CHECK(full > 6 * (int)COULOMB_MAX_PARAMS_BYTES && (size_t)full < COULOMB_REQUEST_JSON_MAX,
        "worst-case request JSON fits COULOMB_REQUEST_JSON_MAX (%d < %u)", full,
        (unsigned)COULOMB_REQUEST_JSON_MAX);
  CHECK(untouched(buf, COULOMB_REQUEST_JSON_MAX, COULOMB_REQUEST_JSON_MAX + 64), "no overrun");
  {
    /* its JSON decodes back to exactly the signed params and key */
    tj_value *doc = tj_parse((const char *)buf, (size_t)(full > 0 ? full : 0));
    CHECK(doc != NULL && strcmp(tj_str(doc, "p"), params) == 0 && strcmp(tj_str(doc, "k"), key) == 0,
          "worst-case JSON round trip");
    tj_free(doc);
  }
  /* Every capacity below length + 1 fails without writing past it. */
  for (cap = 0; full > 0 && cap <= (size_t)full; cap++) {
    if (cap > 200 && cap < (size_t)full - 200) cap = (size_t)full - 200; /* ends are enough */
    memset(buf, CANARY, (size_t)full + 64);
    got = coulomb_request_to_json(&req, (char *)buf, cap);
    CHECK(got == COULOMB_ERR_BUFFER_TOO_SMALL, "request JSON cap %u: got %d", (unsigned)cap, got);
    CHECK(untouched(buf, cap, (size_t)full + 64), "request JSON cap %u: wrote past cap", (unsigned)cap);
  }
  CHECK_ERR(coulomb_request_to_json(&req, NULL, 100), COULOMB_ERR_BUFFER_TOO_SMALL);
  got = coulomb_request_to_json(&req, (char *)buf, (size_t)full + 1);
  CHECK(got == full && buf[full] == '\0', "request JSON with exact capacity");

  /* Message writer: exact size works, one less fails, nothing past cap is written. Streaming
   * digest == tagged hash of the written message. */
  {
    int mlen = coulomb_request_message(&req, buf, 8192);
    uint8_t d1[32], d2[32];
    CHECK(mlen == 1 + 32 + 8 + 8 + 1 + 32 + 4 + 4096 + 1 + 64, "request message length %d", mlen);
    coulomb_tagged_hash(COULOMB_TAG_REQUEST, buf, (size_t)mlen, d1);
    CHECK_ERR(coulomb_request_digest(&req, d2), COULOMB_OK);
    CHECK(memcmp(d1, d2, 32) == 0, "streamed request digest = hash of the message");
    CHECK_ERR(coulomb_verify_digest(NULL, req.device_id, d2, req.signature), COULOMB_OK);
    memset(buf, CANARY, 8192);
    CHECK_ERR(coulomb_request_message(&req, buf, (size_t)mlen - 1), COULOMB_ERR_BUFFER_TOO_SMALL);
    CHECK(untouched(buf, 0, 8192), "request message: nothing written when too small");
    CHECK_ERR(coulomb_request_message(&req, buf, (size_t)mlen), mlen);
  }
  /* The other writers. */
  memset(&res, 0, sizeof res);
  res.body = "{\"a\":1}";
  res.body_len = 7;
  memset(buf, CANARY, 256);
  CHECK_ERR(coulomb_response_message(&res, buf, 1 + 32 + 32 + 8 + 8 + 1 + 4 + 6),
            COULOMB_ERR_BUFFER_TOO_SMALL);
  CHECK(untouched(buf, 0, 256), "response message: nothing written");
  CHECK_ERR(coulomb_response_message(&res, buf, 1 + 32 + 32 + 8 + 8 + 1 + 4 + 7), 93);
  memset(&ev, 0, sizeof ev);
  ev.type = "stop";
  ev.type_len = 4;
  ev.body = "{}";
  ev.body_len = 2;
  CHECK_ERR(coulomb_event_message(&ev, buf, 90), COULOMB_ERR_BUFFER_TOO_SMALL);
  CHECK_ERR(coulomb_event_message(&ev, buf, 92), 92);
  CHECK_ERR(coulomb_enroll_message(id, "abc", 3, buf, 36), COULOMB_ERR_BUFFER_TOO_SMALL);
  CHECK_ERR(coulomb_enroll_message(id, "abc", 3, buf, 37), 37);
  CHECK_ERR(coulomb_sign_enroll(NULL, sk, aux, "K7Q2-9XPA-M3TD", id, sig), COULOMB_OK);
  full = coulomb_enroll_to_json(id, "K7Q2-9XPA-M3TD", sig, (char *)buf, 512);
  CHECK(full > 0, "enroll JSON");
  for (cap = 0; full > 0 && cap <= (size_t)full; cap++) {
    memset(buf, CANARY, 512);
    CHECK_ERR(coulomb_enroll_to_json(id, "K7Q2-9XPA-M3TD", sig, (char *)buf, cap),
              COULOMB_ERR_BUFFER_TOO_SMALL);
    CHECK(untouched(buf, cap, 512), "enroll JSON cap %u: wrote past cap", (unsigned)cap);
  }
  /* Context memory too small. */
  {
    void *mem = malloc(coulomb_context_size());
    CHECK(coulomb_context_create(mem, coulomb_context_size() - 1, NULL) == NULL,
          "context in too little memory");
    CHECK(coulomb_context_create(NULL, 4096, NULL) == NULL, "context in NULL memory");
    free(mem);
  }
  free(params);
  free(buf);
}

/* ================================================================================================
 * signing argument checks and helpers
 * ============================================================================================== */

static void test_signing(void) {
  uint8_t sk[32], aux[32], zero[32], order[32], bad_pub[32], digest[32], sig[64], id[32], b[4];
  coulomb_request req;
  char params[COULOMB_MAX_PARAMS_BYTES + 2];
  char key[80];
  int i;
  must_hex(SK3, sk, 32);
  memset(aux, 7, sizeof aux);
  memset(zero, 0, sizeof zero);
  must_hex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", order, 32);
  memset(bad_pub, 0xff, sizeof bad_pub); /* x >= p: not a valid x-only key */
  memset(digest, 3, sizeof digest);

#define SIGN(counter, ts, m, p, k) coulomb_sign_request(NULL, sk, aux, counter, ts, m, p, k, &req)
  CHECK_ERR(SIGN(1, 0, "balance", "", NULL), COULOMB_OK);
  CHECK(req.idempotency_key == NULL && req.idempotency_key_len == 0, "no key");
  CHECK_ERR(SIGN(0, 0, "balance", "", NULL), COULOMB_ERR_ARG);
  CHECK(req.method == NULL && req.params == NULL && req.method_len == 0 && req.counter == 0,
        "cleared on error");
  CHECK_ERR(SIGN(1, 0, "Bad", "", NULL), COULOMB_ERR_ARG);
  CHECK(req.method == NULL && req.method_len == 0, "cleared on a method error");
  CHECK_ERR(SIGN(COULOMB_MAX_SAFE_INTEGER, COULOMB_MAX_SAFE_INTEGER, "balance", "", NULL), COULOMB_OK);
  CHECK_ERR(SIGN(COULOMB_MAX_SAFE_INTEGER + 1, 0, "balance", "", NULL), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, COULOMB_MAX_SAFE_INTEGER + 1, "balance", "", NULL), COULOMB_ERR_ARG);
  /* methods */
  CHECK_ERR(SIGN(1, 0, "", "", NULL), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, "Balance", "", NULL), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, "1pay", "", NULL), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, ".pay", "", NULL), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, "pay-now", "", NULL), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, "pay now", "", NULL), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, "offer.sell", "", NULL), COULOMB_OK);
  CHECK_ERR(SIGN(1, 0, "a_9.z", "", NULL), COULOMB_OK);
  CHECK_ERR(SIGN(1, 0, "abcdefghijklmnopqrstuvwxyz012345", "", NULL), COULOMB_OK);
  CHECK_ERR(SIGN(1, 0, "abcdefghijklmnopqrstuvwxyz0123456", "", NULL), COULOMB_ERR_ARG);
  /* params */
  memset(params, 'x', sizeof params);
  params[COULOMB_MAX_PARAMS_BYTES] = '\0';
  CHECK_ERR(SIGN(1, 0, "m", params, NULL), COULOMB_OK);
  CHECK(req.params_len == COULOMB_MAX_PARAMS_BYTES, "4096-byte params");
  params[COULOMB_MAX_PARAMS_BYTES] = 'x';
  params[COULOMB_MAX_PARAMS_BYTES + 1] = '\0';
  CHECK_ERR(SIGN(1, 0, "m", params, NULL), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, "m", "{\"r\":\"\xf0\x9f\x98\x80 21.5 \xc2\xb0" "C\"}", NULL), COULOMB_OK);
  CHECK_ERR(SIGN(1, 0, "m", "\xff", NULL), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, "m", "\xc0\xaf", NULL), COULOMB_ERR_ARG);         /* overlong */
  CHECK_ERR(SIGN(1, 0, "m", "\xed\xa0\x80", NULL), COULOMB_ERR_ARG);     /* surrogate */
  CHECK_ERR(SIGN(1, 0, "m", "\xe2\x82", NULL), COULOMB_ERR_ARG);         /* truncated */
  CHECK_ERR(SIGN(1, 0, "m", "\xf4\x90\x80\x80", NULL), COULOMB_ERR_ARG); /* > U+10FFFF */
  CHECK_ERR(SIGN(1, 0, "m", "\x80", NULL), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, "m", "a\tb\x01\x7f", NULL), COULOMB_OK); /* escaped in JSON, signed raw */
  /* idempotency keys */
  CHECK_ERR(SIGN(1, 0, "m", "", ""), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, "m", "", "a b"), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, "m", "", "a\x7f"), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, "m", "", "caf\xc3\xa9"), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, "m", "", "!~\"\\"), COULOMB_OK);
  memset(key, 'k', sizeof key);
  key[64] = '\0';
  CHECK_ERR(SIGN(1, 0, "m", "", key), COULOMB_OK);
  key[64] = 'k';
  key[65] = '\0';
  CHECK_ERR(SIGN(1, 0, "m", "", key), COULOMB_ERR_ARG);
  /* NULLs and keys */
  CHECK_ERR(SIGN(1, 0, NULL, "", NULL), COULOMB_ERR_ARG);
  CHECK_ERR(SIGN(1, 0, "m", NULL, NULL), COULOMB_ERR_ARG);
  CHECK_ERR(coulomb_sign_request(NULL, sk, aux, 1, 0, "m", "", NULL, NULL), COULOMB_ERR_ARG);
  CHECK_ERR(coulomb_sign_request(NULL, NULL, aux, 1, 0, "m", "", NULL, &req), COULOMB_ERR_ARG);
  CHECK_ERR(coulomb_sign_request(NULL, zero, aux, 1, 0, "m", "", NULL, &req), COULOMB_ERR_SECRET_KEY);
  CHECK_ERR(coulomb_sign_request(NULL, order, aux, 1, 0, "m", "", NULL, &req), COULOMB_ERR_SECRET_KEY);
  CHECK_ERR(coulomb_device_id(NULL, zero, id), COULOMB_ERR_SECRET_KEY);
  CHECK_ERR(coulomb_device_id(NULL, order, id), COULOMB_ERR_SECRET_KEY);
  CHECK_ERR(coulomb_sign_digest(NULL, order, aux, digest, sig), COULOMB_ERR_SECRET_KEY);
  CHECK_ERR(coulomb_sign_enroll(NULL, sk, aux, "", id, sig), COULOMB_ERR_ARG);
  /* key pairs */
  {
    secp256k1_keypair kp;
    CHECK_ERR(coulomb_keypair_create(NULL, zero, &kp), COULOMB_ERR_SECRET_KEY);
    CHECK_ERR(coulomb_keypair_create(NULL, order, &kp), COULOMB_ERR_SECRET_KEY);
    CHECK_ERR(coulomb_keypair_create(NULL, NULL, &kp), COULOMB_ERR_ARG);
    CHECK_ERR(coulomb_keypair_create(NULL, sk, NULL), COULOMB_ERR_ARG);
    CHECK_ERR(coulomb_keypair_create(NULL, sk, &kp), COULOMB_OK);
    CHECK_ERR(coulomb_sign_request_keypair(NULL, NULL, aux, 1, 0, "m", "", NULL, &req), COULOMB_ERR_ARG);
    CHECK_ERR(coulomb_sign_request_keypair(NULL, &kp, aux, 0, 0, "m", "", NULL, &req), COULOMB_ERR_ARG);
    CHECK_ERR(coulomb_sign_request_keypair(NULL, &kp, aux, 1, 0, "M", "", NULL, &req), COULOMB_ERR_ARG);
    CHECK_ERR(coulomb_sign_request_keypair(NULL, &kp, aux, 1, 0, "m", "", NULL, NULL), COULOMB_ERR_ARG);
    CHECK_ERR(coulomb_sign_request_keypair(NULL, &kp, aux, 1, 0, "m", "", NULL, &req), COULOMB_OK);
    CHECK_ERR(coulomb_device_id(NULL, sk, id), COULOMB_OK);
    CHECK(memcmp(req.device_id, id, 32) == 0, "key pair request: device id");
  }
  /* aux32 NULL: 32 fresh bytes from coulomb_platform_random(), a synthetic nonce. The same request
   * signed twice gets two different signatures over the same digest, and both verify. */
  {
    secp256k1_keypair kp;
    coulomb_request again;
    uint8_t d1[32], d2[32];
    CHECK_ERR(coulomb_keypair_create(NULL, sk, &kp), COULOMB_OK);
    CHECK_ERR(coulomb_sign_request_keypair(NULL, &kp, NULL, 5, 9, "pay", "{}", "k-1", &req), COULOMB_OK);
    CHECK_ERR(coulomb_sign_request_keypair(NULL, &kp, NULL, 5, 9, "pay", "{}", "k-1", &again), COULOMB_OK);
    CHECK(memcmp(req.signature, again.signature, 64) != 0, "fresh aux: two signatures of one request differ");
    CHECK_ERR(coulomb_request_digest(&req, d1), COULOMB_OK);
    CHECK_ERR(coulomb_request_digest(&again, d2), COULOMB_OK);
    CHECK(memcmp(d1, d2, 32) == 0, "fresh aux: same digest");
    CHECK_ERR(coulomb_verify_digest(NULL, req.device_id, d1, req.signature), COULOMB_OK);
    CHECK_ERR(coulomb_verify_digest(NULL, again.device_id, d2, again.signature), COULOMB_OK);
    CHECK_ERR(coulomb_sign_request(NULL, sk, NULL, 5, 9, "pay", "{}", "k-1", &again), COULOMB_OK);
    CHECK_ERR(coulomb_verify_digest(NULL, again.device_id, d1, again.signature), COULOMB_OK);
    CHECK_ERR(coulomb_sign_digest(NULL, sk, NULL, digest, sig), COULOMB_OK);
    CHECK_ERR(coulomb_verify_digest(NULL, req.device_id, digest, sig), COULOMB_OK);
    /* With caller-given aux the library cannot know the nonce is synthetic, so it verifies before
     * releasing: a fault in the key pair's public key (a flipped bit here) is refused. */
    kp.data[40] ^= 1;
    CHECK_ERR(coulomb_sign_request_keypair(NULL, &kp, aux, 1, 0, "m", "", NULL, &req), COULOMB_ERR_CRYPTO);
    CHECK(req.counter == 0 && req.method == NULL, "refused signature: request zeroed");
  }
  /* verification with an invalid public key */
  CHECK_ERR(coulomb_sign_digest(NULL, sk, aux, digest, sig), COULOMB_OK);
  must_hex(DEV3_ID, id, 32);
  CHECK_ERR(coulomb_verify_digest(NULL, id, digest, sig), COULOMB_OK);
  CHECK_ERR(coulomb_verify_digest(NULL, bad_pub, digest, sig), COULOMB_ERR_BAD_SIGNATURE);
  /* The request-JSON writer re-checks what it is given. */
  CHECK_ERR(SIGN(1, 0, "m", "", NULL), COULOMB_OK);
  req.method = "M";
  {
    char out[512];
    CHECK_ERR(coulomb_request_to_json(&req, out, sizeof out), COULOMB_ERR_ARG);
  }
#undef SIGN
  /* hex */
  CHECK_ERR(coulomb_hex_decode("0aFf", 4, b, 2), COULOMB_OK);
  CHECK(b[0] == 0x0a && b[1] == 0xff, "hex decode, both cases");
  CHECK_ERR(coulomb_hex_decode("0aF", 3, b, 2), COULOMB_ERR_HEX);
  CHECK_ERR(coulomb_hex_decode("0aFf00", 6, b, 2), COULOMB_ERR_HEX);
  CHECK_ERR(coulomb_hex_decode("0g", 2, b, 1), COULOMB_ERR_HEX);
  CHECK_ERR(coulomb_hex_decode(" 0", 2, b, 1), COULOMB_ERR_HEX);
  {
    char h[9];
    b[0] = 0x00;
    b[1] = 0x9f;
    b[2] = 0xa0;
    b[3] = 0xff;
    coulomb_hex_encode(b, 4, h);
    CHECK(strcmp(h, "009fa0ff") == 0, "hex encode lowercase: %s", h);
  }
  /* every error has a distinct description */
  for (i = 0; i >= COULOMB_ERR_RANDOM; i--) {
    int j;
    CHECK(strcmp(coulomb_strerror(i), "unknown error") != 0, "strerror(%d)", i);
    for (j = i - 1; j >= COULOMB_ERR_CONTEXT; j--)
      CHECK(strcmp(coulomb_strerror(i), coulomb_strerror(j)) != 0, "strerror(%d) = strerror(%d)", i, j);
  }
  CHECK(strcmp(coulomb_strerror(-99), "unknown error") == 0, "strerror(-99)");
  (void)GW_SK;
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  if (strcmp(what, "sha256") == 0) {
    test_sha256();
  } else if (strcmp(what, "vectors") == 0 && argc > 2) {
    test_vectors(argv[2]);
  } else if (strcmp(what, "escapes") == 0) {
    test_escapes();
  } else if (strcmp(what, "parser") == 0) {
    test_parser();
  } else if (strcmp(what, "buffers") == 0) {
    test_buffers();
  } else if (strcmp(what, "signing") == 0) {
    test_signing();
  } else {
    fprintf(stderr, "usage: %s sha256|vectors <vectors.json>|escapes|parser|buffers|signing\n", argv[0]);
    return 2;
  }
  printf("%s: %d checks, %d failed\n", what, checks, failures);
  return failures == 0 ? 0 : 1;
}
