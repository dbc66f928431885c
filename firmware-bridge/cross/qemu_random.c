/*
 * coulomb_platform_random() for the emulated images of build.sh only (probe, test suites, size
 * image). qemu's bare-metal boards (riscv32 virt, xtensa sim, mps2-an386) have no RNG, so this is
 * a stand-in: an xorshift sequence, NOT random and NOT for a device. A device links its hardware
 * RNG (ESP-IDF: the coulomb_device component's random_esp.c, esp_fill_random()); a host build
 * links platform/random_posix.c. What matters here is that each call gives new bytes (the tests
 * check that two signatures of one request differ) and costs little, as a hardware RNG does.
 */
#include <stddef.h>
#include <stdint.h>

#include "coulomb_device.h"

static uint32_t state = 0x9e3779b9u;

int coulomb_platform_random(uint8_t *buf, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    buf[i] = (uint8_t)(state >> 24);
  }
  return 0;
}
