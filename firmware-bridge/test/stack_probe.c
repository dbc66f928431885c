/*
 * Measures the peak stack depth of the library's main paths on this host, libsecp256k1 included:
 * each operation runs on a thread whose stack was painted with a pattern, and the deepest
 * overwritten byte gives the high-water mark. The thread start-up cost is measured with an empty
 * operation and subtracted. Fails if signing needs more than STACK_LIMIT bytes.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secp256k1_preallocated.h>

#include "coulomb_device.h"

#define STACK_BYTES (256 * 1024)
#define PAINT 0x5c
#define STACK_LIMIT (32 * 1024)

static const char *SK3 = "0000000000000000000000000000000000000000000000000000000000000003";
static const char *GW_ID = "dd308afec5777e13121fa72b9cc1b7cc0139715309b086c960e18fd969774eb8";

/* Response vector 0 of vectors.json (answer to counter 2 of device 3). */
static const char RESPONSE[] =
    "{\"v\":1,\"g\":\"dd308afec5777e13121fa72b9cc1b7cc0139715309b086c960e18fd969774eb8\",\"d\":"
    "\"f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9\",\"c\":2,\"t\":1763700002,"
    "\"ok\":true,\"b\":\"{\\\"paymentId\\\":\\\"p1\\\",\\\"status\\\":\\\"succeeded\\\"}\",\"s\":"
    "\"2eac1a1727725af16c265dc5fa557ef0ea1e654dcdf1e310656376780bfd4864b69b85d6ace8dc642015bd35c9"
    "5f32b012c6c06810c4b971135989a5cb201e89\"}";

typedef struct {
  int which;
  int result;
  const secp256k1_context *ctx;
} job;

static void *work(void *arg) {
  job *j = (job *)arg;
  uint8_t sk[32], aux[32], gw[32], id[32];
  coulomb_request req;
  coulomb_response res;
  char json[sizeof RESPONSE];
  memset(aux, 1, sizeof aux);
  coulomb_hex_decode(SK3, 64, sk, 32);
  coulomb_hex_decode(GW_ID, 64, gw, 32);
  switch (j->which) {
    case 0:
      j->result = 0;
      break;
    case 1:
    case 2:
      j->result = coulomb_sign_request(j->ctx, sk, aux, 2, 1763700001u, "pay",
                                       "{\"invoice\":\"lnbcrt10u1pexample\"}", "pay-0001", &req);
      break;
    case 3:
      j->result = coulomb_device_id(NULL, sk, id);
      if (j->result == 0) {
        memcpy(json, RESPONSE, sizeof RESPONSE);
        j->result = coulomb_open_response(NULL, json, sizeof RESPONSE - 1, gw, id, 2, &res);
      }
      break;
    default:
      j->result = -1;
  }
  return NULL;
}

static size_t measure(int which, const secp256k1_context *ctx, int *result) {
  unsigned char *stack = (unsigned char *)malloc(STACK_BYTES);
  pthread_attr_t attr;
  pthread_t t;
  job j;
  size_t i;
  if (stack == NULL) abort();
  memset(stack, PAINT, STACK_BYTES);
  j.which = which;
  j.result = -1;
  j.ctx = ctx;
  pthread_attr_init(&attr);
  if (pthread_attr_setstack(&attr, stack, STACK_BYTES) != 0 || pthread_create(&t, &attr, work, &j) != 0) {
    fprintf(stderr, "cannot start a thread\n");
    exit(2);
  }
  pthread_join(t, NULL);
  pthread_attr_destroy(&attr);
  /* The stack grows down on the hosts this runs on: find the lowest overwritten byte. */
  for (i = 0; i < STACK_BYTES && stack[i] == PAINT; i++) {
  }
  free(stack);
  *result = j.result;
  return STACK_BYTES - i;
}

int main(void) {
  int r0, r1, r2, r3, failed = 0;
  size_t base = measure(0, NULL, &r0);
  size_t sign_tmp = measure(1, NULL, &r1) - base;
  size_t sign_own, verify;
  void *mem = malloc(coulomb_context_size());
  uint8_t seed[32];
  secp256k1_context *ctx;
  memset(seed, 9, sizeof seed);
  ctx = coulomb_context_create(mem, coulomb_context_size(), seed);
  if (ctx == NULL) return 2;
  sign_own = measure(2, ctx, &r2) - base;
  verify = measure(3, NULL, &r3) - base;
  secp256k1_context_preallocated_destroy(ctx);
  free(mem);
  printf("context size (coulomb_context_size): %u bytes\n", (unsigned)coulomb_context_size());
  printf("peak stack, coulomb_sign_request, temporary context (ctx=NULL): %u bytes\n", (unsigned)sign_tmp);
  printf("peak stack, coulomb_sign_request, caller's context:             %u bytes\n", (unsigned)sign_own);
  printf("peak stack, coulomb_device_id + coulomb_open_response:          %u bytes\n", (unsigned)verify);
  if (r1 != 0 || r2 != 0 || r3 != 0) {
    fprintf(stderr, "FAIL: operations returned %d %d %d\n", r1, r2, r3);
    failed = 1;
  }
  if (sign_tmp > STACK_LIMIT || sign_own > STACK_LIMIT || verify > STACK_LIMIT) {
    fprintf(stderr, "FAIL: more than %d bytes of stack\n", STACK_LIMIT);
    failed = 1;
  }
  return failed;
}
