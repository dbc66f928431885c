/*
 * A small JSON reader for the host tests only (it uses malloc; the library never does).
 * Parses a whole document into a tree; every value remembers its raw text span so a test can hand
 * an envelope object, exactly as it appears in vectors.json, to the library's own parser.
 */
#ifndef TINY_JSON_H
#define TINY_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TJ_NULL, TJ_BOOL, TJ_NUMBER, TJ_STRING, TJ_ARRAY, TJ_OBJECT } tj_type;

typedef struct tj_value {
  tj_type type;
  int boolean;
  char *text; /* TJ_STRING: decoded UTF-8 (NUL-terminated); TJ_NUMBER: the literal */
  size_t text_len;
  size_t count;            /* TJ_ARRAY / TJ_OBJECT */
  struct tj_value **items; /* TJ_ARRAY / TJ_OBJECT */
  char **keys;             /* TJ_OBJECT */
  const char *raw;         /* the value's text in the document */
  size_t raw_len;
} tj_value;

/* NULL on malformed input. */
tj_value *tj_parse(const char *text, size_t len);
void tj_free(tj_value *v);

/* Member of an object (NULL if absent or not an object). */
const tj_value *tj_get(const tj_value *obj, const char *key);
/* Element of an array (NULL if out of range or not an array). */
const tj_value *tj_at(const tj_value *arr, size_t i);
/* String member, or NULL. */
const char *tj_str(const tj_value *obj, const char *key);
/* Unsigned integer member (0 if absent); *ok set to 0 when absent or not an integer. */
uint64_t tj_uint(const tj_value *obj, const char *key, int *ok);

/* Reads a whole file (NUL-terminated); NULL on error. */
char *tj_read_file(const char *path, size_t *len);

#endif
