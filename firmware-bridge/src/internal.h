/* Internal helpers shared by the library's translation units (not part of the public API). */
#ifndef COULOMB_INTERNAL_H
#define COULOMB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "coulomb_device.h"

/* Wipes memory in a way the compiler may not elide. */
void coulomb_memzero(void *p, size_t n);

/* 1 if the bytes are well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
int coulomb_utf8_valid(const char *s, size_t n);

/* 1 if the method matches [a-z][a-z0-9_.]{0,31}. */
int coulomb_method_valid(const char *m, size_t n);

/* 1 if the idempotency key is 1..64 characters in 0x21..0x7e. */
int coulomb_idempotency_key_valid(const char *k, size_t n);

/* An operation that needs a signing-capable secp256k1 context. */
typedef coulomb_err (*coulomb_ctx_op)(const secp256k1_context *ctx, void *arg);

/* Runs op with a temporary, non-randomized context built in a stack buffer (crypto.c). */
coulomb_err coulomb_internal_with_temp_context(coulomb_ctx_op op, void *arg);

#endif /* COULOMB_INTERNAL_H */
