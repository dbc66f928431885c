/*
 * The only C library functions the size image (size_main.c) links: what the library and
 * libsecp256k1 reference. No malloc, calloc, realloc or free: the size image links with
 * -nostdlib, so a reference to any of them fails the build. On a real chip these come from the
 * SDK's libc or ROM; their bytes are reported apart from the library's.
 */
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
void secp256k1_default_illegal_callback_fn(const char *str, void *data);
void secp256k1_default_error_callback_fn(const char *str, void *data);

void *memcpy(void *d, const void *s, size_t n) {
  unsigned char *dd = (unsigned char *)d;
  const unsigned char *ss = (const unsigned char *)s;
  while (n--) *dd++ = *ss++;
  return d;
}

void *memmove(void *d, const void *s, size_t n) {
  unsigned char *dd = (unsigned char *)d;
  const unsigned char *ss = (const unsigned char *)s;
  if (dd < ss) {
    while (n--) *dd++ = *ss++;
  } else {
    while (n--) dd[n] = ss[n];
  }
  return d;
}

void *memset(void *d, int c, size_t n) {
  unsigned char *dd = (unsigned char *)d;
  while (n--) *dd++ = (unsigned char)c;
  return d;
}

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
  for (; n; n--, x++, y++)
    if (*x != *y) return *x - *y;
  return 0;
}

size_t strlen(const char *s) {
  const char *p = s;
  while (*p) p++;
  return (size_t)(p - s);
}

/* libsecp256k1 is built with USE_EXTERNAL_DEFAULT_CALLBACKS (no stdio): an API misuse or an
 * internal error stops here, as abort() would. */
void secp256k1_default_illegal_callback_fn(const char *str, void *data) {
  (void)str;
  (void)data;
  for (;;) {
  }
}

void secp256k1_default_error_callback_fn(const char *str, void *data) {
  (void)str;
  (void)data;
  for (;;) {
  }
}
