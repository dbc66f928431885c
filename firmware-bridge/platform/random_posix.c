/*
 * coulomb_platform_random() for hosts (coulomb_device.h, "Randomness"): the kernel's CSPRNG,
 * through getrandom() on Linux, else /dev/urandom. Part of the host build (CMakeLists.txt), not
 * of the portable library: a device supplies its own (ESP-IDF: the coulomb_device component's
 * random_esp.c, esp_fill_random()).
 */
#if defined(__linux__)
#define _DEFAULT_SOURCE 1
#include <errno.h>
#include <sys/random.h>
#else
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#endif

#include <stddef.h>
#include <stdint.h>

#include "coulomb_device.h"

int coulomb_platform_random(uint8_t *buf, size_t len) {
  size_t got = 0;
#if defined(__linux__)
  while (got < len) {
    ssize_t n = getrandom(buf + got, len - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    got += (size_t)n;
  }
#else
  int fd = open("/dev/urandom", O_RDONLY);
  if (fd < 0) return -1;
  while (got < len) {
    ssize_t n = read(fd, buf + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (got < len) return -1;
#endif
  return 0;
}
