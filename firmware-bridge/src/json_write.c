/*
 * JSON writers for what the device sends: the request envelope and the enrollment body.
 * Strings are escaped exactly as JSON.stringify does (", \, \b \f \n \r \t, other control
 * characters as \u00xx with lowercase hex; everything else, UTF-8 included, verbatim), so the
 * gateway's JSON.parse gives back the very text that was signed.
 */
#include <string.h>

#include "coulomb_device.h"
#include "internal.h"

typedef struct {
  char *buf;
  size_t cap;
  size_t len; /* may exceed cap: then the output is discarded */
} out;

static void raw(out *o, const char *s, size_t n) {
  if (o->len <= o->cap && n <= o->cap - o->len) memcpy(o->buf + o->len, s, n);
  o->len += n;
}

static void lit(out *o, const char *s) { raw(o, s, strlen(s)); }

static void hex(out *o, const uint8_t *bytes, size_t n) {
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    char two[2];
    two[0] = digits[bytes[i] >> 4];
    two[1] = digits[bytes[i] & 15];
    raw(o, two, 2);
  }
}

static void uint_dec(out *o, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[sizeof tmp - 1 - n] = (char)('0' + (int)(v % 10));
    v /= 10;
    n++;
  } while (v != 0);
  raw(o, tmp + sizeof tmp - n, n);
}

static void str(out *o, const char *s, size_t n) {
  static const char digits[] = "0123456789abcdef";
  size_t i, run = 0;
  raw(o, "\"", 1);
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[6];
    if (c == '"')
      esc = "\\\"";
    else if (c == '\\')
      esc = "\\\\";
    else if (c == '\b')
      esc = "\\b";
    else if (c == '\f')
      esc = "\\f";
    else if (c == '\n')
      esc = "\\n";
    else if (c == '\r')
      esc = "\\r";
    else if (c == '\t')
      esc = "\\t";
    else if (c >= 0x20)
      continue; /* verbatim, copied with the run */
    raw(o, s + run, i - run);
    run = i + 1;
    if (esc != NULL) {
      lit(o, esc);
    } else {
      u[0] = '\\';
      u[1] = 'u';
      u[2] = '0';
      u[3] = '0';
      u[4] = digits[c >> 4];
      u[5] = digits[c & 15];
      raw(o, u, 6);
    }
  }
  raw(o, s + run, n - run);
  raw(o, "\"", 1);
}

static int finish(out *o) {
  if (o->len >= o->cap) return COULOMB_ERR_BUFFER_TOO_SMALL;
  o->buf[o->len] = '\0';
  return (int)o->len;
}

int coulomb_request_to_json(const coulomb_request *req, char *buf, size_t cap) {
  out o;
  if (req == NULL || req->method == NULL || req->params == NULL) return COULOMB_ERR_ARG;
  if (!coulomb_method_valid(req->method, req->method_len) ||
      req->params_len > COULOMB_MAX_PARAMS_BYTES ||
      (req->idempotency_key != NULL &&
       !coulomb_idempotency_key_valid(req->idempotency_key, req->idempotency_key_len)) ||
      (req->idempotency_key == NULL && req->idempotency_key_len != 0))
    return COULOMB_ERR_ARG;
  if (buf == NULL) return COULOMB_ERR_BUFFER_TOO_SMALL;
  o.buf = buf;
  o.cap = cap;
  o.len = 0;
  lit(&o, "{\"v\":");
  uint_dec(&o, COULOMB_PROTOCOL_VERSION);
  lit(&o, ",\"d\":\"");
  hex(&o, req->device_id, 32);
  lit(&o, "\",\"c\":");
  uint_dec(&o, req->counter);
  lit(&o, ",\"t\":");
  uint_dec(&o, req->timestamp);
  lit(&o, ",\"m\":");
  str(&o, req->method, req->method_len);
  lit(&o, ",\"p\":");
  str(&o, req->params, req->params_len);
  if (req->idempotency_key != NULL) {
    lit(&o, ",\"k\":");
    str(&o, req->idempotency_key, req->idempotency_key_len);
  }
  lit(&o, ",\"s\":\"");
  hex(&o, req->signature, 64);
  lit(&o, "\"}");
  return finish(&o);
}

int coulomb_enroll_to_json(const uint8_t device_id[32], const char *code,
                           const uint8_t signature[64], char *buf, size_t cap) {
  out o;
  size_t code_len;
  if (device_id == NULL || code == NULL || signature == NULL) return COULOMB_ERR_ARG;
  code_len = strlen(code);
  if (code_len > COULOMB_MAX_ENROLL_CODE_BYTES) return COULOMB_ERR_ARG;
  if (buf == NULL) return COULOMB_ERR_BUFFER_TOO_SMALL;
  o.buf = buf;
  o.cap = cap;
  o.len = 0;
  lit(&o, "{\"deviceId\":\"");
  hex(&o, device_id, 32);
  lit(&o, "\",\"code\":");
  str(&o, code, code_len);
  lit(&o, ",\"signature\":\"");
  hex(&o, signature, 64);
  lit(&o, "\"}");
  return finish(&o);
}
