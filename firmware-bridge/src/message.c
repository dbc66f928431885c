/*
 * The four signed messages of PROTOCOL.md ("Hashing and signing"). Each message is produced by one
 * emitter, field by field, into a sink that either feeds a streaming tagged hash (digests: no
 * message buffer, params up to 4096 bytes hashed straight from the caller's text) or copies into a
 * caller buffer (message writers, for tests and debugging). Both paths share the emitter, so the
 * bytes hashed are exactly the bytes written.
 *
 *   request : u8 v || d[32] || u64 c || u64 t || u8 len(m) || m || u32 len(p) || p || u8 len(k) || k
 *   response: u8 v || g[32] || d[32] || u64 c || u64 t || u8 ok || u32 len(b) || b
 *   event   : u8 v || g[32] || d[32] || u64 n || u64 t || u8 len(e) || e || u32 len(b) || b
 *   enroll  : u8 1 || deviceId[32] || u8 len(code) || code
 */
#include <limits.h>
#include <string.h>

#include "coulomb_device.h"
#include "internal.h"

typedef struct {
  coulomb_sha256_ctx *hash; /* hashing sink when not NULL */
  uint8_t *buf;         /* else copying sink */
  size_t len;
} sink;

static void put(sink *s, const void *data, size_t n) {
  if (n == 0) return;
  if (s->hash != NULL) {
    coulomb_sha256_update(s->hash, data, n);
  } else {
    memcpy(s->buf + s->len, data, n);
  }
  s->len += n;
}

static void put_u8(sink *s, unsigned v) {
  uint8_t b = (uint8_t)v;
  put(s, &b, 1);
}

static void put_u32(sink *s, uint32_t v) {
  uint8_t b[4];
  b[0] = (uint8_t)(v >> 24);
  b[1] = (uint8_t)(v >> 16);
  b[2] = (uint8_t)(v >> 8);
  b[3] = (uint8_t)v;
  put(s, b, 4);
}

static void put_u64(sink *s, uint64_t v) {
  uint8_t b[8];
  unsigned i;
  for (i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (56 - 8 * i));
  put(s, b, 8);
}

/* ---- field checks: every length must fit its prefix (u8 or u32) ---- */

#if SIZE_MAX > 0xffffffffu
static int fits_u32(size_t n) { return n <= (size_t)0xffffffffu; }
#else
static int fits_u32(size_t n) { /* every size_t fits */
  (void)n;
  return 1;
}
#endif

static coulomb_err check_request(const coulomb_request *r, size_t *total) {
  if (r == NULL) return COULOMB_ERR_ARG;
  if ((r->method == NULL && r->method_len > 0) || (r->params == NULL && r->params_len > 0) ||
      (r->idempotency_key == NULL && r->idempotency_key_len > 0))
    return COULOMB_ERR_ARG;
  if (r->method_len > 255 || r->idempotency_key_len > 255 || !fits_u32(r->params_len) ||
      r->params_len > (size_t)-1 - 512)
    return COULOMB_ERR_ARG;
  *total = 1 + 32 + 8 + 8 + 1 + r->method_len + 4 + r->params_len + 1 + r->idempotency_key_len;
  return COULOMB_OK;
}

static void emit_request(sink *s, const coulomb_request *r) {
  put_u8(s, COULOMB_PROTOCOL_VERSION);
  put(s, r->device_id, 32);
  put_u64(s, r->counter);
  put_u64(s, r->timestamp);
  put_u8(s, (unsigned)r->method_len);
  put(s, r->method, r->method_len);
  put_u32(s, (uint32_t)r->params_len);
  put(s, r->params, r->params_len);
  put_u8(s, (unsigned)r->idempotency_key_len);
  put(s, r->idempotency_key, r->idempotency_key_len);
}

static coulomb_err check_response(const coulomb_response *r, size_t *total) {
  if (r == NULL || (r->body == NULL && r->body_len > 0)) return COULOMB_ERR_ARG;
  if (!fits_u32(r->body_len) || r->body_len > (size_t)-1 - 512) return COULOMB_ERR_ARG;
  *total = 1 + 32 + 32 + 8 + 8 + 1 + 4 + r->body_len;
  return COULOMB_OK;
}

static void emit_response(sink *s, const coulomb_response *r) {
  put_u8(s, COULOMB_PROTOCOL_VERSION);
  put(s, r->gateway_id, 32);
  put(s, r->device_id, 32);
  put_u64(s, r->counter);
  put_u64(s, r->timestamp);
  put_u8(s, r->ok ? 1u : 0u);
  put_u32(s, (uint32_t)r->body_len);
  put(s, r->body, r->body_len);
}

static coulomb_err check_event(const coulomb_event *e, size_t *total) {
  if (e == NULL || (e->body == NULL && e->body_len > 0) || (e->type == NULL && e->type_len > 0))
    return COULOMB_ERR_ARG;
  if (e->type_len > 255 || !fits_u32(e->body_len) || e->body_len > (size_t)-1 - 512)
    return COULOMB_ERR_ARG;
  *total = 1 + 32 + 32 + 8 + 8 + 1 + e->type_len + 4 + e->body_len;
  return COULOMB_OK;
}

static void emit_event(sink *s, const coulomb_event *e) {
  put_u8(s, COULOMB_PROTOCOL_VERSION);
  put(s, e->gateway_id, 32);
  put(s, e->device_id, 32);
  put_u64(s, e->seq);
  put_u64(s, e->timestamp);
  put_u8(s, (unsigned)e->type_len);
  put(s, e->type, e->type_len);
  put_u32(s, (uint32_t)e->body_len);
  put(s, e->body, e->body_len);
}

static coulomb_err check_enroll(const uint8_t *id, const char *code, size_t code_len,
                                size_t *total) {
  if (id == NULL || (code == NULL && code_len > 0)) return COULOMB_ERR_ARG;
  if (code_len > COULOMB_MAX_ENROLL_CODE_BYTES) return COULOMB_ERR_ARG;
  *total = 1 + 32 + 1 + code_len;
  return COULOMB_OK;
}

static void emit_enroll(sink *s, const uint8_t *id, const char *code, size_t code_len) {
  put_u8(s, COULOMB_PROTOCOL_VERSION);
  put(s, id, 32);
  put_u8(s, (unsigned)code_len);
  put(s, code, code_len);
}

/* ---- digests ---- */

static void start(sink *s, coulomb_sha256_ctx *h, const char *tag) {
  coulomb_tagged_hash_init(h, tag, strlen(tag));
  s->hash = h;
  s->buf = NULL;
  s->len = 0;
}

coulomb_err coulomb_request_digest(const coulomb_request *req, uint8_t digest[32]) {
  coulomb_sha256_ctx h;
  sink s;
  size_t total;
  coulomb_err err = check_request(req, &total);
  if (err != COULOMB_OK) return err;
  if (digest == NULL) return COULOMB_ERR_ARG;
  start(&s, &h, COULOMB_TAG_REQUEST);
  emit_request(&s, req);
  coulomb_sha256_final(&h, digest);
  return COULOMB_OK;
}

coulomb_err coulomb_response_digest(const coulomb_response *res, uint8_t digest[32]) {
  coulomb_sha256_ctx h;
  sink s;
  size_t total;
  coulomb_err err = check_response(res, &total);
  if (err != COULOMB_OK) return err;
  if (digest == NULL) return COULOMB_ERR_ARG;
  start(&s, &h, COULOMB_TAG_RESPONSE);
  emit_response(&s, res);
  coulomb_sha256_final(&h, digest);
  return COULOMB_OK;
}

coulomb_err coulomb_event_digest(const coulomb_event *ev, uint8_t digest[32]) {
  coulomb_sha256_ctx h;
  sink s;
  size_t total;
  coulomb_err err = check_event(ev, &total);
  if (err != COULOMB_OK) return err;
  if (digest == NULL) return COULOMB_ERR_ARG;
  start(&s, &h, COULOMB_TAG_EVENT);
  emit_event(&s, ev);
  coulomb_sha256_final(&h, digest);
  return COULOMB_OK;
}

coulomb_err coulomb_enroll_digest(const uint8_t device_id[32], const char *code, size_t code_len,
                                  uint8_t digest[32]) {
  coulomb_sha256_ctx h;
  sink s;
  size_t total;
  coulomb_err err = check_enroll(device_id, code, code_len, &total);
  if (err != COULOMB_OK) return err;
  if (digest == NULL) return COULOMB_ERR_ARG;
  start(&s, &h, COULOMB_TAG_ENROLL);
  emit_enroll(&s, device_id, code, code_len);
  coulomb_sha256_final(&h, digest);
  return COULOMB_OK;
}

/* ---- message writers ---- */

static int begin_write(sink *s, uint8_t *buf, size_t cap, size_t total) {
  if (total > (size_t)INT_MAX) return COULOMB_ERR_ARG;
  if (buf == NULL || cap < total) return COULOMB_ERR_BUFFER_TOO_SMALL;
  s->hash = NULL;
  s->buf = buf;
  s->len = 0;
  return COULOMB_OK;
}

int coulomb_request_message(const coulomb_request *req, uint8_t *buf, size_t cap) {
  sink s;
  size_t total;
  int err = check_request(req, &total);
  if (err == COULOMB_OK) err = begin_write(&s, buf, cap, total);
  if (err != COULOMB_OK) return err;
  emit_request(&s, req);
  return (int)s.len;
}

int coulomb_response_message(const coulomb_response *res, uint8_t *buf, size_t cap) {
  sink s;
  size_t total;
  int err = check_response(res, &total);
  if (err == COULOMB_OK) err = begin_write(&s, buf, cap, total);
  if (err != COULOMB_OK) return err;
  emit_response(&s, res);
  return (int)s.len;
}

int coulomb_event_message(const coulomb_event *ev, uint8_t *buf, size_t cap) {
  sink s;
  size_t total;
  int err = check_event(ev, &total);
  if (err == COULOMB_OK) err = begin_write(&s, buf, cap, total);
  if (err != COULOMB_OK) return err;
  emit_event(&s, ev);
  return (int)s.len;
}

int coulomb_enroll_message(const uint8_t device_id[32], const char *code, size_t code_len,
                           uint8_t *buf, size_t cap) {
  sink s;
  size_t total;
  int err = check_enroll(device_id, code, code_len, &total);
  if (err == COULOMB_OK) err = begin_write(&s, buf, cap, total);
  if (err != COULOMB_OK) return err;
  emit_enroll(&s, device_id, code, code_len);
  return (int)s.len;
}
