/*
 * Runs bare-metal under qemu (build.sh): rv32imc in qemu-system-riscv32, lx106 in
 * qemu-system-xtensa (sim), Cortex-M4 in qemu-system-arm (mps2-an386). For each operation, the number of instructions it executes (rv32
 * only: the instret CSR, which qemu makes count executed instructions with -icount shift=0) and
 * its peak stack (the stack below the caller is painted with a pattern
 * before the call; the deepest overwritten byte gives the high-water mark; an empty operation's
 * figures are subtracted). libsecp256k1 included. Prints "name instructions stack_bytes" lines.
 *
 *   build_request     the documented path: coulomb_sign_request_keypair (key pair made at boot,
 *                     aux32 NULL: randomness from the platform hook) + coulomb_request_to_json,
 *                     caller's randomized context
 *   build_request_secret   the same with coulomb_sign_request (key pair derived per call)
 *   build_request_tmp the same with ctx = NULL too (temporary context on the stack)
 *   build_request_aux the documented path with caller-given aux32 (so verified before release)
 *   sign_digest       coulomb_sign_digest alone (aux32 NULL), caller's context
 *   keypair_create    coulomb_keypair_create: the boot-time key pair and its one-time check
 *   device_id         coulomb_device_id: the key pair (one fixed-base multiplication), caller's context
 *   open_response     coulomb_open_response: parse + verify a response envelope (static context)
 * Linked with qemu_random.c (qemu's boards have no RNG) for the platform hook.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <secp256k1_preallocated.h>

#include "coulomb_device.h"

#define PAINT 0x5c
#define PAINT_BYTES (48 * 1024)

static const char *SK3 = "0000000000000000000000000000000000000000000000000000000000000003";
static const char *GW_ID = "dd308afec5777e13121fa72b9cc1b7cc0139715309b086c960e18fd969774eb8";

/* Response vector 0 of test/vectors.json (answer to counter 2 of device 3), as in stack_probe.c. */
static const char RESPONSE[] =
    "{\"v\":1,\"g\":\"dd308afec5777e13121fa72b9cc1b7cc0139715309b086c960e18fd969774eb8\",\"d\":"
    "\"f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9\",\"c\":2,\"t\":1763700002,"
    "\"ok\":true,\"b\":\"{\\\"paymentId\\\":\\\"p1\\\",\\\"status\\\":\\\"succeeded\\\"}\",\"s\":"
    "\"2eac1a1727725af16c265dc5fa557ef0ea1e654dcdf1e310656376780bfd4864b69b85d6ace8dc642015bd35c9"
    "5f32b012c6c06810c4b971135989a5cb201e89\"}";

static uint8_t sk[32], aux[32], gw[32], id[32], digest[32], sig[64];
static secp256k1_context *own_ctx;
static secp256k1_keypair keypair;
static coulomb_request req;
static coulomb_response res;
static char json[COULOMB_REQUEST_JSON_MAX];
static char answer[sizeof RESPONSE];

typedef int (*op_fn)(void);

static int op_empty(void) { return 0; }

static int op_build_request_secret_ctx(const secp256k1_context *ctx) {
  int r = coulomb_sign_request(ctx, sk, NULL, 2, 1763700001u, "pay", "{\"invoice\":\"lnbcrt10u1pexample\"}",
                               "pay-0001", &req);
  if (r != COULOMB_OK) return r;
  r = coulomb_request_to_json(&req, json, sizeof json);
  return r < 0 ? r : 0;
}

static int op_build_request_secret(void) { return op_build_request_secret_ctx(own_ctx); }

static int op_build_request_tmp(void) { return op_build_request_secret_ctx(NULL); }

static int op_build_request_keypair(const uint8_t *aux32) {
  int r = coulomb_sign_request_keypair(own_ctx, &keypair, aux32, 2, 1763700001u, "pay",
                                       "{\"invoice\":\"lnbcrt10u1pexample\"}", "pay-0001", &req);
  if (r != COULOMB_OK) return r;
  r = coulomb_request_to_json(&req, json, sizeof json);
  return r < 0 ? r : 0;
}

static int op_build_request(void) { return op_build_request_keypair(NULL); }

static int op_build_request_aux(void) { return op_build_request_keypair(aux); }

static int op_sign_digest(void) { return coulomb_sign_digest(own_ctx, sk, NULL, digest, sig); }

static int op_keypair_create(void) { return coulomb_keypair_create(own_ctx, sk, &keypair); }

static int op_device_id(void) { return coulomb_device_id(own_ctx, sk, id); }

static int op_open_response(void) {
  memcpy(answer, RESPONSE, sizeof RESPONSE);
  return coulomb_open_response(NULL, answer, sizeof RESPONSE - 1, gw, id, 2, &res);
}

/* Instructions retired so far (RISC-V only; elsewhere 0: only the stack is measured). */
static uint32_t instret(void) {
  uint32_t v = 0;
#if defined(__riscv)
  __asm__ volatile("rdinstret %0" : "=r"(v));
#endif
  return v;
}

static inline __attribute__((always_inline)) unsigned char *stack_pointer(void) {
  unsigned char *sp;
#if defined(__riscv)
  __asm__ volatile("mv %0, sp" : "=r"(sp));
#elif defined(__arm__)
  __asm__ volatile("mov %0, sp" : "=r"(sp));
#elif defined(__XTENSA__)
  __asm__ volatile("mov %0, a1" : "=r"(sp));
#else
#error "stack_pointer: unknown architecture"
#endif
  return sp;
}

/* Not inlined: its frame is the same for every operation, and the empty one measures it. */
static __attribute__((noinline)) void measure(op_fn op, uint32_t *insns, uint32_t *stack, int *result) {
  unsigned char *sp, *p;
  uint32_t before;
  sp = stack_pointer();
  for (p = sp - PAINT_BYTES; p < sp - 16; p++) *(volatile unsigned char *)p = PAINT;
  before = instret();
  *result = op();
  *insns = instret() - before;
  for (p = sp - PAINT_BYTES; p < sp && *(volatile unsigned char *)p == PAINT; p++) {
  }
  *stack = (uint32_t)(sp - p);
}

int main(void) {
  static union {
    unsigned char bytes[512];
    uint64_t align;
  } ctx_mem;
  static const struct {
    const char *name;
    op_fn op;
  } ops[] = {{"build_request", op_build_request},
             {"build_request_secret", op_build_request_secret},
             {"build_request_tmp", op_build_request_tmp},
             {"build_request_aux", op_build_request_aux},
             {"sign_digest", op_sign_digest},
             {"keypair_create", op_keypair_create},
             {"device_id", op_device_id},
             {"open_response", op_open_response}};
  uint8_t seed[32];
  uint32_t base_insns, base_stack, insns, stack;
  int r, failed = 0;
  unsigned i;
  memset(aux, 1, sizeof aux);
  memset(seed, 9, sizeof seed);
  memset(digest, 7, sizeof digest);
  coulomb_hex_decode(SK3, 64, sk, 32);
  coulomb_hex_decode(GW_ID, 64, gw, 32);
  if (coulomb_device_id(NULL, sk, id) != COULOMB_OK) return 2;
  if (coulomb_context_size() > sizeof ctx_mem.bytes) return 2;
  own_ctx = coulomb_context_create(ctx_mem.bytes, sizeof ctx_mem.bytes, seed);
  if (own_ctx == NULL) return 2;
  if (coulomb_keypair_create(own_ctx, sk, &keypair) != COULOMB_OK) return 2;
#if defined(__riscv)
  {
    /* The counter counts instructions (qemu -icount), not time: 100000 turns of a 2-instruction loop. */
    uint32_t n = 100000, before = instret(), spent;
    __asm__ volatile("1: addi %0, %0, -1\n bnez %0, 1b" : "+r"(n));
    spent = instret() - before;
    if (spent < 200000 || spent > 200010) {
      fprintf(stderr, "FAIL: instret counted %lu for 200000 instructions (run qemu with -icount shift=0)\n",
              (unsigned long)spent);
      return 1;
    }
  }
#endif
  printf("context_size %u\n", (unsigned)coulomb_context_size());
  printf("sizeof_request %u\nsizeof_response %u\nsizeof_event %u\n", (unsigned)sizeof(coulomb_request),
         (unsigned)sizeof(coulomb_response), (unsigned)sizeof(coulomb_event));
  measure(op_empty, &base_insns, &base_stack, &r);
  for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    measure(ops[i].op, &insns, &stack, &r);
    if (r != 0) {
      fprintf(stderr, "FAIL: %s returned %d\n", ops[i].name, r);
      failed = 1;
    }
    printf("%s %lu %lu\n", ops[i].name, (unsigned long)(insns - base_insns), (unsigned long)(stack - base_stack));
  }
  if (coulomb_verify_digest(NULL, id, digest, sig) != COULOMB_OK) {
    fprintf(stderr, "FAIL: the probe's signature does not verify\n");
    failed = 1;
  }
  return failed;
}
