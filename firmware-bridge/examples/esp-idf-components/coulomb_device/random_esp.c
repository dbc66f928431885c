/*
 * coulomb_platform_random() on ESP-IDF (coulomb_device.h, "Randomness"): the chip's hardware RNG.
 * esp_fill_random() gives true random numbers while Wi-Fi or Bluetooth is running (or after
 * bootloader_random_enable()); coulomb_esp signs only once Wi-Fi is up.
 */
#include <stddef.h>
#include <stdint.h>

#include "coulomb_device.h"
#include "esp_random.h"

int coulomb_platform_random(uint8_t *buf, size_t len) {
  esp_fill_random(buf, len);
  return 0;
}
