/* Hex, validation helpers, error strings. */
#include <string.h>

#include "coulomb_device.h"
#include "internal.h"

void coulomb_memzero(void *p, size_t n) {
  volatile unsigned char *v = (volatile unsigned char *)p;
  while (n--) *v++ = 0;
}

void coulomb_hex_encode(const uint8_t *bytes, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

coulomb_err coulomb_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_len) {
  size_t i;
  if (hex == NULL || (out == NULL && out_len > 0)) return COULOMB_ERR_ARG;
  if (out_len > ((size_t)-1) / 2 || hex_len != 2 * out_len) return COULOMB_ERR_HEX;
  for (i = 0; i < hex_len; i++)
    if (hex_value(hex[i]) < 0) return COULOMB_ERR_HEX;
  for (i = 0; i < out_len; i++)
    out[i] = (uint8_t)((hex_value(hex[2 * i]) << 4) | hex_value(hex[2 * i + 1]));
  return COULOMB_OK;
}

int coulomb_utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    size_t need;
    uint32_t cp, min;
    size_t j;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
      cp = c & 0x1fu;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      cp = c & 0x0fu;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      cp = c & 0x07u;
      min = 0x10000;
    } else {
      return 0;
    }
    if (n - i <= need) return 0;
    for (j = 1; j <= need; j++) {
      if ((p[i + j] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (p[i + j] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffffu || (cp >= 0xd800u && cp <= 0xdfffu)) return 0;
    i += need + 1;
  }
  return 1;
}

int coulomb_method_valid(const char *m, size_t n) {
  size_t i;
  if (n < 1 || n > COULOMB_MAX_METHOD_BYTES) return 0;
  if (m[0] < 'a' || m[0] > 'z') return 0;
  for (i = 1; i < n; i++) {
    char c = m[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) return 0;
  }
  return 1;
}

int coulomb_idempotency_key_valid(const char *k, size_t n) {
  size_t i;
  if (n < 1 || n > COULOMB_MAX_IDEMPOTENCY_BYTES) return 0;
  for (i = 0; i < n; i++)
    if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e) return 0;
  return 1;
}

const char *coulomb_strerror(int err) {
  switch (err) {
    case COULOMB_OK:
      return "ok";
    case COULOMB_ERR_ARG:
      return "invalid argument";
    case COULOMB_ERR_BUFFER_TOO_SMALL:
      return "buffer too small";
    case COULOMB_ERR_HEX:
      return "invalid hex";
    case COULOMB_ERR_JSON:
      return "malformed JSON";
    case COULOMB_ERR_ENVELOPE:
      return "envelope field missing, duplicated, mistyped or out of range";
    case COULOMB_ERR_VERSION:
      return "unsupported protocol version";
    case COULOMB_ERR_WRONG_GATEWAY:
      return "not signed by the pinned gateway";
    case COULOMB_ERR_WRONG_DEVICE:
      return "addressed to another device";
    case COULOMB_ERR_WRONG_COUNTER:
      return "answers another request (counter mismatch)";
    case COULOMB_ERR_REPLAYED:
      return "event sequence number not above the last one processed";
    case COULOMB_ERR_BAD_SIGNATURE:
      return "bad signature";
    case COULOMB_ERR_SECRET_KEY:
      return "invalid secret key";
    case COULOMB_ERR_CRYPTO:
      return "signing failed";
    case COULOMB_ERR_CONTEXT:
      return "secp256k1 context unavailable";
    case COULOMB_ERR_RANDOM:
      return "no randomness from the platform";
    default:
      return "unknown error";
  }
}
