/* libsecp256k1's default callbacks for the emulated rv32 programs (coulomb_tests, probe.c):
 * libsecp256k1 is built with USE_EXTERNAL_DEFAULT_CALLBACKS, as on a device without stdio. */
#include <stdio.h>
#include <stdlib.h>

void secp256k1_default_illegal_callback_fn(const char *str, void *data);
void secp256k1_default_error_callback_fn(const char *str, void *data);

void secp256k1_default_illegal_callback_fn(const char *str, void *data) {
  (void)data;
  fprintf(stderr, "[libsecp256k1] illegal argument: %s\n", str);
  abort();
}

void secp256k1_default_error_callback_fn(const char *str, void *data) {
  (void)data;
  fprintf(stderr, "[libsecp256k1] internal consistency check failed: %s\n", str);
  abort();
}
