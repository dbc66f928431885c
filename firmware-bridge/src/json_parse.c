/*
 * A minimal, no-heap parser for the flat envelopes the gateway sends (responses and events).
 *
 * The envelope is one JSON object whose known members are numbers, booleans, and strings.
 * Strings are unescaped in place: the decoded text is never longer than its escaped form, so it is
 * written over the input, from the opening quote on, and NUL-terminated (the NUL lands at or
 * before the closing quote, which has already been consumed). Unknown members are skipped
 * (any JSON value, nested at most MAX_DEPTH levels); duplicated known members are rejected.
 *
 * \uXXXX escapes become UTF-8; a surrogate pair becomes one 4-byte sequence; a lone surrogate
 * becomes U+FFFD (EF BF BD), which is what the gateway's Buffer.from(text, 'utf8') produces, so
 * the bytes hashed here are the bytes the gateway signed.
 */
#include <string.h>

#include "coulomb_device.h"
#include "internal.h"

#define MAX_DEPTH 8

typedef struct {
  char *p;
  char *end;
} cursor;

static void skip_ws(cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static int hex4(const char *p, uint32_t *out) {
  uint32_t v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    char ch = p[i];
    uint32_t d;
    if (ch >= '0' && ch <= '9')
      d = (uint32_t)(ch - '0');
    else if (ch >= 'a' && ch <= 'f')
      d = (uint32_t)(ch - 'a' + 10);
    else if (ch >= 'A' && ch <= 'F')
      d = (uint32_t)(ch - 'A' + 10);
    else
      return 0;
    v = (v << 4) | d;
  }
  *out = v;
  return 1;
}

static char *put_utf8(char *dst, uint32_t cp) {
  if (cp < 0x80) {
    *dst++ = (char)cp;
  } else if (cp < 0x800) {
    *dst++ = (char)(0xc0 | (cp >> 6));
    *dst++ = (char)(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    *dst++ = (char)(0xe0 | (cp >> 12));
    *dst++ = (char)(0x80 | ((cp >> 6) & 0x3f));
    *dst++ = (char)(0x80 | (cp & 0x3f));
  } else {
    *dst++ = (char)(0xf0 | (cp >> 18));
    *dst++ = (char)(0x80 | ((cp >> 12) & 0x3f));
    *dst++ = (char)(0x80 | ((cp >> 6) & 0x3f));
    *dst++ = (char)(0x80 | (cp & 0x3f));
  }
  return dst;
}

/*
 * Parses the string at c->p (which must be '"'), decoding it in place. On success *s points to
 * the decoded, NUL-terminated text and *n is its length; c->p is just past the closing quote.
 */
static coulomb_err parse_string(cursor *c, char **s, size_t *n) {
  char *src, *dst;
  if (c->p >= c->end || *c->p != '"') return COULOMB_ERR_JSON;
  src = ++c->p;
  dst = src;
  *s = dst;
  for (;;) {
    unsigned char ch;
    if (src >= c->end) return COULOMB_ERR_JSON;
    ch = (unsigned char)*src;
    if (ch == '"') {
      c->p = src + 1;
      *n = (size_t)(dst - *s);
      *dst = '\0'; /* dst <= src: overwrites at most the closing quote */
      return COULOMB_OK;
    }
    if (ch < 0x20) return COULOMB_ERR_JSON; /* raw control characters are not allowed */
    if (ch != '\\') {
      *dst++ = (char)ch;
      src++;
      continue;
    }
    if (c->end - src < 2) return COULOMB_ERR_JSON;
    switch (src[1]) {
      case '"':
        *dst++ = '"';
        src += 2;
        break;
      case '\\':
        *dst++ = '\\';
        src += 2;
        break;
      case '/':
        *dst++ = '/';
        src += 2;
        break;
      case 'b':
        *dst++ = '\b';
        src += 2;
        break;
      case 'f':
        *dst++ = '\f';
        src += 2;
        break;
      case 'n':
        *dst++ = '\n';
        src += 2;
        break;
      case 'r':
        *dst++ = '\r';
        src += 2;
        break;
      case 't':
        *dst++ = '\t';
        src += 2;
        break;
      case 'u': {
        uint32_t cp, lo;
        if (c->end - src < 6 || !hex4(src + 2, &cp)) return COULOMB_ERR_JSON;
        src += 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
          /* A high surrogate: combine with an immediately following low surrogate escape. */
          if (c->end - src >= 6 && src[0] == '\\' && src[1] == 'u' && hex4(src + 2, &lo) &&
              lo >= 0xdc00 && lo <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            src += 6;
          } else {
            cp = 0xfffd;
          }
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
          cp = 0xfffd;
        }
        dst = put_utf8(dst, cp);
        break;
      }
      default:
        return COULOMB_ERR_JSON;
    }
  }
}

/*
 * A JSON number. If it is a non-negative integer without fraction or exponent and at most
 * 2^53 - 1, *is_uint is 1 and *v its value; otherwise *is_uint is 0 (still valid JSON).
 */
static coulomb_err parse_number(cursor *c, int *is_uint, uint64_t *v) {
  int neg = 0, integral = 1, big = 0;
  uint64_t acc = 0;
  if (c->p < c->end && *c->p == '-') {
    neg = 1;
    c->p++;
  }
  if (c->p >= c->end) return COULOMB_ERR_JSON;
  if (*c->p == '0') {
    c->p++;
  } else if (*c->p >= '1' && *c->p <= '9') {
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
      if (!big) {
        acc = acc * 10 + (uint64_t)(*c->p - '0');
        if (acc > COULOMB_MAX_SAFE_INTEGER) big = 1;
      }
      c->p++;
    }
  } else {
    return COULOMB_ERR_JSON;
  }
  if (c->p < c->end && *c->p == '.') {
    integral = 0;
    c->p++;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return COULOMB_ERR_JSON;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  }
  if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
    integral = 0;
    c->p++;
    if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return COULOMB_ERR_JSON;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  }
  *is_uint = !neg && integral && !big;
  *v = acc;
  return COULOMB_OK;
}

static int match_literal(cursor *c, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0) return 0;
  c->p += n;
  return 1;
}

/* Skips any JSON value (validating it), nesting at most `depth` more levels. */
static coulomb_err skip_value(cursor *c, int depth) {
  coulomb_err err;
  skip_ws(c);
  if (c->p >= c->end) return COULOMB_ERR_JSON;
  switch (*c->p) {
    case '"': {
      char *s;
      size_t n;
      return parse_string(c, &s, &n);
    }
    case '{':
    case '[': {
      char close = *c->p == '{' ? '}' : ']';
      int object = close == '}';
      if (depth <= 0) return COULOMB_ERR_JSON;
      c->p++;
      skip_ws(c);
      if (c->p < c->end && *c->p == close) {
        c->p++;
        return COULOMB_OK;
      }
      for (;;) {
        if (object) {
          char *s;
          size_t n;
          skip_ws(c);
          if ((err = parse_string(c, &s, &n)) != COULOMB_OK) return err;
          skip_ws(c);
          if (c->p >= c->end || *c->p != ':') return COULOMB_ERR_JSON;
          c->p++;
        }
        if ((err = skip_value(c, depth - 1)) != COULOMB_OK) return err;
        skip_ws(c);
        if (c->p >= c->end) return COULOMB_ERR_JSON;
        if (*c->p == ',') {
          c->p++;
          continue;
        }
        if (*c->p != close) return COULOMB_ERR_JSON;
        c->p++;
        return COULOMB_OK;
      }
    }
    case 't':
      return match_literal(c, "true") ? COULOMB_OK : COULOMB_ERR_JSON;
    case 'f':
      return match_literal(c, "false") ? COULOMB_OK : COULOMB_ERR_JSON;
    case 'n':
      return match_literal(c, "null") ? COULOMB_OK : COULOMB_ERR_JSON;
    default: {
      int is_uint;
      uint64_t v;
      return parse_number(c, &is_uint, &v);
    }
  }
}

/* ---- envelope members ---- */

enum {
  F_V = 1 << 0,
  F_G = 1 << 1,
  F_D = 1 << 2,
  F_C = 1 << 3, /* c (response) or n (event) */
  F_T = 1 << 4,
  F_OK = 1 << 5, /* ok (response) or e (event) */
  F_B = 1 << 6,
  F_S = 1 << 7
};

typedef struct {
  uint8_t *g, *d, *s;
  uint64_t *counter, *t;
  int *ok;               /* responses */
  const char **e;        /* events */
  size_t *e_len;
  const char **b;
  size_t *b_len;
} targets;

static coulomb_err read_uint(cursor *c, uint64_t *v) {
  int is_uint;
  coulomb_err err;
  if (c->p >= c->end || !((*c->p >= '0' && *c->p <= '9') || *c->p == '-'))
    return skip_value(c, MAX_DEPTH) == COULOMB_OK ? COULOMB_ERR_ENVELOPE : COULOMB_ERR_JSON;
  if ((err = parse_number(c, &is_uint, v)) != COULOMB_OK) return err;
  return is_uint ? COULOMB_OK : COULOMB_ERR_ENVELOPE;
}

static coulomb_err read_string(cursor *c, char **s, size_t *n) {
  if (c->p >= c->end || *c->p != '"')
    return skip_value(c, MAX_DEPTH) == COULOMB_OK ? COULOMB_ERR_ENVELOPE : COULOMB_ERR_JSON;
  return parse_string(c, s, n);
}

static coulomb_err read_hex(cursor *c, uint8_t *out, size_t n) {
  char *s;
  size_t len;
  coulomb_err err = read_string(c, &s, &len);
  if (err != COULOMB_OK) return err;
  return coulomb_hex_decode(s, len, out, n) == COULOMB_OK ? COULOMB_OK : COULOMB_ERR_ENVELOPE;
}

static coulomb_err parse_envelope(char *json, size_t len, int event, const targets *t) {
  cursor c;
  unsigned seen = 0, need = F_V | F_G | F_D | F_C | F_T | F_OK | F_B | F_S;
  /* The first envelope error is remembered but parsing goes on, so that malformed JSON always
   * reports COULOMB_ERR_JSON. */
  coulomb_err result = COULOMB_OK;
  if (json == NULL) return COULOMB_ERR_ARG;
  c.p = json;
  c.end = json + len;
  skip_ws(&c);
  if (c.p >= c.end || *c.p != '{') return COULOMB_ERR_JSON;
  c.p++;
  skip_ws(&c);
  if (c.p < c.end && *c.p == '}') {
    c.p++;
  } else {
    for (;;) {
      char *key;
      size_t key_len;
      unsigned field = 0;
      coulomb_err err;
      skip_ws(&c);
      if ((err = parse_string(&c, &key, &key_len)) != COULOMB_OK) return err;
      skip_ws(&c);
      if (c.p >= c.end || *c.p != ':') return COULOMB_ERR_JSON;
      c.p++;
      skip_ws(&c);
      if (key_len == 1) {
        switch (key[0]) {
          case 'v':
            field = F_V;
            break;
          case 'g':
            field = F_G;
            break;
          case 'd':
            field = F_D;
            break;
          case 'c':
            field = event ? 0 : F_C;
            break;
          case 'n':
            field = event ? F_C : 0;
            break;
          case 't':
            field = F_T;
            break;
          case 'e':
            field = event ? F_OK : 0;
            break;
          case 'b':
            field = F_B;
            break;
          case 's':
            field = F_S;
            break;
          default:
            break;
        }
      } else if (!event && key_len == 2 && key[0] == 'o' && key[1] == 'k') {
        field = F_OK;
      }
      if (field != 0 && (seen & field)) { /* a duplicate: skip its value, report the envelope */
        field = 0;
        err = COULOMB_ERR_ENVELOPE;
      }
      seen |= field;
      switch (field) {
        case 0:
          if (err == COULOMB_OK) {
            err = skip_value(&c, MAX_DEPTH);
          } else if (skip_value(&c, MAX_DEPTH) != COULOMB_OK) {
            err = COULOMB_ERR_JSON;
          }
          break;
        case F_V: {
          uint64_t v = 0;
          err = read_uint(&c, &v);
          if (err == COULOMB_OK && v != COULOMB_PROTOCOL_VERSION) err = COULOMB_ERR_VERSION;
          break;
        }
        case F_G:
          err = read_hex(&c, t->g, 32);
          break;
        case F_D:
          err = read_hex(&c, t->d, 32);
          break;
        case F_S:
          err = read_hex(&c, t->s, 64);
          break;
        case F_C:
          err = read_uint(&c, t->counter);
          break;
        case F_T:
          err = read_uint(&c, t->t);
          break;
        case F_OK:
          if (event) {
            char *s;
            size_t n;
            err = read_string(&c, &s, &n);
            if (err == COULOMB_OK) {
              if (n > COULOMB_MAX_EVENT_TYPE_BYTES) err = COULOMB_ERR_ENVELOPE;
              *t->e = s;
              *t->e_len = n;
            }
          } else if (match_literal(&c, "true")) {
            *t->ok = 1;
          } else if (match_literal(&c, "false")) {
            *t->ok = 0;
          } else {
            err = skip_value(&c, MAX_DEPTH) == COULOMB_OK ? COULOMB_ERR_ENVELOPE : COULOMB_ERR_JSON;
          }
          break;
        case F_B: {
          char *s;
          size_t n;
          err = read_string(&c, &s, &n);
          if (err == COULOMB_OK) {
            *t->b = s;
            *t->b_len = n;
          }
          break;
        }
        default:
          break;
      }
      if (err == COULOMB_ERR_JSON) return err;
      /* Version first: an envelope of another version may have other fields. */
      if (err == COULOMB_ERR_VERSION || (err != COULOMB_OK && result == COULOMB_OK)) result = err;
      skip_ws(&c);
      if (c.p >= c.end) return COULOMB_ERR_JSON;
      if (*c.p == ',') {
        c.p++;
        continue;
      }
      if (*c.p != '}') return COULOMB_ERR_JSON;
      c.p++;
      break;
    }
  }
  skip_ws(&c);
  if (c.p != c.end) return COULOMB_ERR_JSON; /* trailing bytes */
  if (result != COULOMB_OK) return result;
  return (seen & need) == need ? COULOMB_OK : COULOMB_ERR_ENVELOPE;
}

coulomb_err coulomb_parse_response(char *json, size_t len, coulomb_response *out) {
  targets t;
  coulomb_err err;
  if (out == NULL) return COULOMB_ERR_ARG;
  memset(out, 0, sizeof *out);
  memset(&t, 0, sizeof t);
  t.g = out->gateway_id;
  t.d = out->device_id;
  t.s = out->signature;
  t.counter = &out->counter;
  t.t = &out->timestamp;
  t.ok = &out->ok;
  t.b = &out->body;
  t.b_len = &out->body_len;
  err = parse_envelope(json, len, 0, &t);
  if (err != COULOMB_OK) memset(out, 0, sizeof *out);
  return err;
}

coulomb_err coulomb_parse_event(char *json, size_t len, coulomb_event *out) {
  targets t;
  coulomb_err err;
  if (out == NULL) return COULOMB_ERR_ARG;
  memset(out, 0, sizeof *out);
  memset(&t, 0, sizeof t);
  t.g = out->gateway_id;
  t.d = out->device_id;
  t.s = out->signature;
  t.counter = &out->seq;
  t.t = &out->timestamp;
  t.e = &out->type;
  t.e_len = &out->type_len;
  t.b = &out->body;
  t.b_len = &out->body_len;
  err = parse_envelope(json, len, 1, &t);
  if (err != COULOMB_OK) memset(out, 0, sizeof *out);
  return err;
}
