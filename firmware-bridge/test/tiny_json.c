/* Test-only JSON reader (see tiny_json.h). Recursive descent, malloc'd tree. */
#include "tiny_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *p;
  const char *end;
  int depth;
} reader;

static void ws(reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) r->p++;
}

static tj_value *value(reader *r);

static tj_value *new_value(tj_type t, const char *raw) {
  tj_value *v = (tj_value *)calloc(1, sizeof *v);
  if (v == NULL) abort();
  v->type = t;
  v->raw = raw;
  return v;
}

static int hex4(const char *p, unsigned long *out) {
  unsigned long v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (unsigned long)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (unsigned long)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (unsigned long)(c - 'A' + 10);
    else
      return 0;
  }
  *out = v;
  return 1;
}

static size_t utf8(char *o, unsigned long cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Decodes a string starting at the opening quote into a fresh buffer. */
static char *string(reader *r, size_t *len) {
  char *out;
  size_t n = 0;
  if (r->p >= r->end || *r->p != '"') return NULL;
  r->p++;
  out = (char *)malloc((size_t)(r->end - r->p) + 1);
  if (out == NULL) abort();
  while (r->p < r->end && *r->p != '"') {
    unsigned char c = (unsigned char)*r->p;
    if (c < 0x20) break;
    if (c != '\\') {
      out[n++] = (char)c;
      r->p++;
      continue;
    }
    if (r->end - r->p < 2) break;
    r->p += 2;
    switch (r->p[-1]) {
      case '"':
        out[n++] = '"';
        break;
      case '\\':
        out[n++] = '\\';
        break;
      case '/':
        out[n++] = '/';
        break;
      case 'b':
        out[n++] = '\b';
        break;
      case 'f':
        out[n++] = '\f';
        break;
      case 'n':
        out[n++] = '\n';
        break;
      case 'r':
        out[n++] = '\r';
        break;
      case 't':
        out[n++] = '\t';
        break;
      case 'u': {
        unsigned long cp, lo;
        if (r->end - r->p < 4 || !hex4(r->p, &cp)) goto fail;
        r->p += 4;
        if (cp >= 0xd800 && cp <= 0xdbff && r->end - r->p >= 6 && r->p[0] == '\\' &&
            r->p[1] == 'u' && hex4(r->p + 2, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          r->p += 6;
        } else if (cp >= 0xd800 && cp <= 0xdfff) {
          cp = 0xfffd;
        }
        n += utf8(out + n, cp);
        break;
      }
      default:
        goto fail;
    }
  }
  if (r->p >= r->end || *r->p != '"') goto fail;
  r->p++;
  out[n] = '\0';
  *len = n;
  return out;
fail:
  free(out);
  return NULL;
}

static tj_value *container(reader *r, int object) {
  tj_value *v = new_value(object ? TJ_OBJECT : TJ_ARRAY, r->p);
  char close = object ? '}' : ']';
  size_t cap = 0;
  if (++r->depth > 64) goto fail;
  r->p++;
  ws(r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    r->depth--;
    return v;
  }
  for (;;) {
    tj_value *item;
    char *key = NULL;
    ws(r);
    if (object) {
      size_t klen;
      key = string(r, &klen);
      if (key == NULL) goto fail;
      ws(r);
      if (r->p >= r->end || *r->p != ':') {
        free(key);
        goto fail;
      }
      r->p++;
    }
    item = value(r);
    if (item == NULL) {
      free(key);
      goto fail;
    }
    if (v->count == cap) {
      cap = cap ? 2 * cap : 8;
      v->items = (tj_value **)realloc(v->items, cap * sizeof *v->items);
      v->keys = (char **)realloc(v->keys, cap * sizeof *v->keys);
      if (v->items == NULL || v->keys == NULL) abort();
    }
    v->items[v->count] = item;
    v->keys[v->count] = key;
    v->count++;
    ws(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      continue;
    }
    if (r->p < r->end && *r->p == close) {
      r->p++;
      break;
    }
    goto fail;
  }
  r->depth--;
  return v;
fail:
  tj_free(v);
  return NULL;
}

static tj_value *value(reader *r) {
  tj_value *v = NULL;
  const char *start;
  ws(r);
  start = r->p;
  if (r->p >= r->end) return NULL;
  if (*r->p == '{' || *r->p == '[') {
    v = container(r, *r->p == '{');
  } else if (*r->p == '"') {
    size_t n;
    char *s = string(r, &n);
    if (s == NULL) return NULL;
    v = new_value(TJ_STRING, start);
    v->text = s;
    v->text_len = n;
  } else if ((size_t)(r->end - r->p) >= 4 && memcmp(r->p, "true", 4) == 0) {
    v = new_value(TJ_BOOL, start);
    v->boolean = 1;
    r->p += 4;
  } else if ((size_t)(r->end - r->p) >= 5 && memcmp(r->p, "false", 5) == 0) {
    v = new_value(TJ_BOOL, start);
    r->p += 5;
  } else if ((size_t)(r->end - r->p) >= 4 && memcmp(r->p, "null", 4) == 0) {
    v = new_value(TJ_NULL, start);
    r->p += 4;
  } else if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) {
    size_t n;
    r->p++;
    while (r->p < r->end && strchr("0123456789.eE+-", *r->p) != NULL) r->p++;
    n = (size_t)(r->p - start);
    v = new_value(TJ_NUMBER, start);
    v->text = (char *)malloc(n + 1);
    if (v->text == NULL) abort();
    memcpy(v->text, start, n);
    v->text[n] = '\0';
    v->text_len = n;
  }
  if (v != NULL) v->raw_len = (size_t)(r->p - start);
  return v;
}

tj_value *tj_parse(const char *text, size_t len) {
  reader r;
  tj_value *v;
  r.p = text;
  r.end = text + len;
  r.depth = 0;
  v = value(&r);
  if (v == NULL) return NULL;
  ws(&r);
  if (r.p != r.end) {
    tj_free(v);
    return NULL;
  }
  return v;
}

void tj_free(tj_value *v) {
  size_t i;
  if (v == NULL) return;
  for (i = 0; i < v->count; i++) {
    tj_free(v->items[i]);
    if (v->keys != NULL) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->text);
  free(v);
}

const tj_value *tj_get(const tj_value *obj, const char *key) {
  size_t i;
  if (obj == NULL || obj->type != TJ_OBJECT) return NULL;
  for (i = 0; i < obj->count; i++)
    if (strcmp(obj->keys[i], key) == 0) return obj->items[i];
  return NULL;
}

const tj_value *tj_at(const tj_value *arr, size_t i) {
  if (arr == NULL || arr->type != TJ_ARRAY || i >= arr->count) return NULL;
  return arr->items[i];
}

const char *tj_str(const tj_value *obj, const char *key) {
  const tj_value *v = tj_get(obj, key);
  return v != NULL && v->type == TJ_STRING ? v->text : NULL;
}

uint64_t tj_uint(const tj_value *obj, const char *key, int *ok) {
  const tj_value *v = tj_get(obj, key);
  uint64_t n = 0;
  size_t i;
  *ok = 0;
  if (v == NULL || v->type != TJ_NUMBER || v->text_len == 0 || v->text_len > 19) return 0;
  for (i = 0; i < v->text_len; i++) {
    if (v->text[i] < '0' || v->text[i] > '9') return 0;
    n = n * 10 + (uint64_t)(v->text[i] - '0');
  }
  *ok = 1;
  return n;
}

char *tj_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t cap = 0, n = 0;
  if (f == NULL) return NULL;
  for (;;) {
    size_t got;
    if (cap - n < 4096) {
      cap = cap ? 2 * cap : 16384;
      buf = (char *)realloc(buf, cap + 1);
      if (buf == NULL) abort();
    }
    got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}
