/*
 * Size image for the cross builds (firmware-bridge/cross/build.sh): a bare program that keeps
 * every public function of the library, linked with -nostdlib, --gc-sections and only
 * mini_libc.c, so the linker map shows what the library (and libsecp256k1 under it) costs in
 * flash and static RAM on the target, and the link fails if anything needs malloc/free.
 */
#include "coulomb_device.h"

typedef void (*fn)(void);
#define K(f) ((fn)(void (*)(void))(f))

/* Every function of coulomb_device.h. */
const fn coulomb_size_image_keep[] = {
    K(coulomb_strerror),         K(coulomb_sha256_init),       K(coulomb_sha256_update),
    K(coulomb_sha256_final),     K(coulomb_sha256),            K(coulomb_tagged_hash_init),
    K(coulomb_tagged_hash),      K(coulomb_hex_encode),        K(coulomb_hex_decode),
    K(coulomb_request_digest),   K(coulomb_response_digest),   K(coulomb_event_digest),
    K(coulomb_enroll_digest),    K(coulomb_request_message),   K(coulomb_response_message),
    K(coulomb_event_message),    K(coulomb_enroll_message),    K(coulomb_context_size),
    K(coulomb_context_create),   K(coulomb_device_id),         K(coulomb_sign_digest),
    K(coulomb_verify_digest),    K(coulomb_sign_request),      K(coulomb_request_to_json),
    K(coulomb_sign_enroll),      K(coulomb_connect_digest),    K(coulomb_mqtt_credentials),
    K(coulomb_enroll_to_json),   K(coulomb_parse_response),    K(coulomb_parse_event),
    K(coulomb_verify_response),  K(coulomb_verify_event),      K(coulomb_open_response),
    K(coulomb_open_event),       K(coulomb_keypair_create),    K(coulomb_sign_request_keypair),
};

void _start(void);
void _start(void) {
  volatile const fn *volatile p = coulomb_size_image_keep;
  unsigned i;
  for (i = 0; i < sizeof coulomb_size_image_keep / sizeof coulomb_size_image_keep[0]; i++) p[i]();
  for (;;) {
  }
}
