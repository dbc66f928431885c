/*
 * coulomb_device_cli - a host-side device client for a Coulomb gateway (POSIX sockets, HTTP/1.1,
 * no TLS).
 *
 *   coulomb_device_cli <gateway-url> <secret-key-hex> <gateway-id-hex> <counter> <method>
 *                      <params-json> [idempotency-key]
 *
 * Signs the request (t = now; aux randomness from the platform hook, getrandom() or
 * /dev/urandom), POSTs it to <gateway-url>/v1/device, verifies the signed response against the pinned gateway id (g, d, c and
 * the signature) and prints the response body `b` on stdout.
 *
 * Exit status: 0 if the verified response has ok=true, 2 if ok=false, 1 on a usage, transport or
 * verification failure (with a message on stderr). Set COULOMB_CLI_VERBOSE=1 to see the request
 * and the raw answer on stderr.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "coulomb_device.h"

#define MAX_ANSWER (1024 * 1024)
#define IO_TIMEOUT_SECONDS 30

static char request_json[COULOMB_REQUEST_JSON_MAX];
static char answer[MAX_ANSWER + 1];

static int verbose(void) {
  const char *v = getenv("COULOMB_CLI_VERBOSE");
  return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

static int fail(const char *fmt, const char *detail) {
  fprintf(stderr, "coulomb_device_cli: ");
  fprintf(stderr, fmt, detail);
  fputc('\n', stderr);
  return 1;
}

static int usage(void) {
  fprintf(stderr,
          "usage: coulomb_device_cli <gateway-url> <secret-key-hex> <gateway-id-hex> <counter> "
          "<method> <params-json> [idempotency-key]\n"
          "  gateway-url: http://host[:port][/prefix]  (the request goes to <prefix>/v1/device)\n"
          "  exit status: 0 ok=true, 2 ok=false, 1 usage/transport/verification failure\n");
  return 1;
}

typedef struct {
  char host[256];    /* without IPv6 brackets */
  char port[8];      /* "80" by default */
  char hostport[270]; /* for the Host header */
  char path[1024];   /* prefix + /v1/device */
} url_parts;

static int parse_url(const char *url, url_parts *u) {
  const char *p, *host_end, *path;
  size_t n;
  if (strncmp(url, "http://", 7) != 0) return 0;
  p = url + 7;
  path = strchr(p, '/');
  if (path == NULL) path = p + strlen(p);
  if (*p == '[') { /* [ipv6]:port */
    host_end = memchr(p, ']', (size_t)(path - p));
    if (host_end == NULL) return 0;
    n = (size_t)(host_end - p - 1);
    if (n == 0 || n >= sizeof u->host) return 0;
    memcpy(u->host, p + 1, n);
    u->host[n] = '\0';
    host_end++;
  } else {
    host_end = memchr(p, ':', (size_t)(path - p));
    if (host_end == NULL) host_end = path;
    n = (size_t)(host_end - p);
    if (n == 0 || n >= sizeof u->host) return 0;
    memcpy(u->host, p, n);
    u->host[n] = '\0';
  }
  if (host_end < path && *host_end == ':') {
    n = (size_t)(path - host_end - 1);
    if (n == 0 || n >= sizeof u->port) return 0;
    memcpy(u->port, host_end + 1, n);
    u->port[n] = '\0';
  } else if (host_end == path) {
    strcpy(u->port, "80");
  } else {
    return 0;
  }
  n = (size_t)(path - p);
  if (n >= sizeof u->hostport) return 0;
  memcpy(u->hostport, p, n);
  u->hostport[n] = '\0';
  /* prefix without trailing slashes, then /v1/device */
  n = strlen(path);
  while (n > 0 && path[n - 1] == '/') n--;
  if (n + sizeof "/v1/device" > sizeof u->path) return 0;
  memcpy(u->path, path, n);
  strcpy(u->path + n, "/v1/device");
  return 1;
}

static int parse_counter(const char *s, uint64_t *out) {
  uint64_t v = 0;
  if (*s == '\0') return 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return 0;
    v = v * 10 + (uint64_t)(*s - '0');
    if (v > COULOMB_MAX_SAFE_INTEGER) return 0;
  }
  *out = v;
  return v >= 1;
}

static int connect_to(const url_parts *u) {
  struct addrinfo hints, *res, *ai;
  struct timeval tv;
  int fd = -1, rc;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  rc = getaddrinfo(u->host, u->port, &hints, &res);
  if (rc != 0) {
    fail("cannot resolve host: %s", gai_strerror(rc));
    return -1;
  }
  tv.tv_sec = IO_TIMEOUT_SECONDS;
  tv.tv_usec = 0;
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) continue;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) fail("cannot connect: %s", strerror(errno));
  return fd;
}

static int send_all(int fd, const char *data, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, data, n, 0);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return 0;
    data += w;
    n -= (size_t)w;
  }
  return 1;
}

static int ieq_prefix(const char *line, const char *name) {
  size_t i;
  for (i = 0; name[i]; i++) {
    char a = line[i], b = name[i];
    if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
    if (a != b) return 0;
  }
  return 1;
}

/* Decodes a chunked body in place; returns its length or -1. */
static long dechunk(char *body, size_t len) {
  size_t in = 0, out = 0;
  for (;;) {
    size_t size = 0;
    int digits = 0;
    while (in < len) {
      char ch = body[in];
      int d = ch >= '0' && ch <= '9' ? ch - '0'
              : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
              : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                       : -1;
      if (d < 0) break;
      if (size > (size_t)MAX_ANSWER) return -1;
      size = size * 16 + (size_t)d;
      digits++;
      in++;
    }
    if (digits == 0) return -1;
    while (in < len && body[in] != '\n') in++; /* chunk extensions, CR */
    if (in >= len) return -1;
    in++;
    if (size == 0) return (long)out;
    if (len - in < size + 2) return -1;
    memmove(body + out, body + in, size);
    out += size;
    in += size;
    if (body[in] == '\r') in++;
    if (in >= len || body[in] != '\n') return -1;
    in++;
  }
}

/* Splits the answer into status and body (skipping 1xx interim responses). */
static int parse_http(char *buf, size_t len, int *status, char **body, size_t *body_len) {
  char *p = buf, *end = buf + len;
  for (;;) {
    char *hdr_end = NULL, *line;
    long content_length = -1;
    int chunked = 0;
    size_t i;
    for (i = (size_t)(p - buf); i + 3 < len; i++)
      if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
        hdr_end = buf + i;
        break;
      }
    if (hdr_end == NULL || (size_t)(end - p) < 12 || memcmp(p, "HTTP/1.", 7) != 0) return 0;
    *status = atoi(p + 9);
    *hdr_end = '\0'; /* header lines are searched as C strings */
    line = strstr(p, "\r\n");
    while (line != NULL && line < hdr_end) {
      char *eol;
      line += 2;
      eol = strstr(line, "\r\n");
      if (eol != NULL) *eol = '\0';
      if (ieq_prefix(line, "content-length:")) content_length = atol(line + 15);
      if (ieq_prefix(line, "transfer-encoding:") && strstr(line, "chunked") != NULL) chunked = 1;
      line = eol;
    }
    p = hdr_end + 4;
    if (*status >= 100 && *status < 200) continue;
    *body = p;
    *body_len = (size_t)(end - p);
    if (chunked) {
      long n = dechunk(p, *body_len);
      if (n < 0) return 0;
      *body_len = (size_t)n;
    } else if (content_length >= 0) {
      if ((size_t)content_length > *body_len) return 0; /* truncated */
      *body_len = (size_t)content_length;
    }
    return 1;
  }
}

int main(int argc, char **argv) {
  url_parts url;
  uint8_t sk[32], gw[32];
  uint64_t counter;
  coulomb_request req;
  coulomb_response res;
  coulomb_err err;
  char header[2048];
  int fd, len, hlen, status = 0;
  size_t got = 0;
  char *body = NULL;
  size_t body_len = 0;

  if (argc < 7 || argc > 8) return usage();
  memset(&url, 0, sizeof url);
  if (!parse_url(argv[1], &url)) return fail("bad gateway URL %s (want http://host[:port][/prefix])", argv[1]);
  if (coulomb_hex_decode(argv[2], strlen(argv[2]), sk, 32) != COULOMB_OK)
    return fail("%s", "the secret key must be 64 hex digits");
  if (coulomb_hex_decode(argv[3], strlen(argv[3]), gw, 32) != COULOMB_OK)
    return fail("%s", "the gateway id must be 64 hex digits");
  if (!parse_counter(argv[4], &counter)) return fail("bad counter %s (1 .. 2^53-1)", argv[4]);

  /* One signature per run: no key pair kept (a device makes it once at boot instead). aux32 NULL:
   * fresh randomness from coulomb_platform_random() (platform/random_posix.c). */
  err = coulomb_sign_request(NULL, sk, NULL, counter, (uint64_t)time(NULL), argv[5], argv[6],
                             argc == 8 ? argv[7] : NULL, &req);
  memset(sk, 0, sizeof sk);
  if (err != COULOMB_OK) return fail("cannot sign the request: %s", coulomb_strerror(err));
  len = coulomb_request_to_json(&req, request_json, sizeof request_json);
  if (len < 0) return fail("cannot serialize the request: %s", coulomb_strerror(len));
  if (verbose()) fprintf(stderr, "> POST http://%s%s\n> %s\n", url.hostport, url.path, request_json);

  hlen = snprintf(header, sizeof header,
                  "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                  "Content-Length: %d\r\nAccept: application/json\r\nConnection: close\r\n"
                  "User-Agent: coulomb-device-cli/1\r\n\r\n",
                  url.path, url.hostport, len);
  if (hlen < 0 || (size_t)hlen >= sizeof header) return fail("%s", "URL too long");
  fd = connect_to(&url);
  if (fd < 0) return 1;
  if (!send_all(fd, header, (size_t)hlen) || !send_all(fd, request_json, (size_t)len)) {
    close(fd);
    return fail("cannot send the request: %s", strerror(errno));
  }
  for (;;) {
    ssize_t r;
    if (got == MAX_ANSWER) {
      close(fd);
      return fail("%s", "answer too large");
    }
    r = recv(fd, answer + got, MAX_ANSWER - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      close(fd);
      return fail("cannot read the answer: %s", strerror(errno));
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  close(fd);
  answer[got] = '\0';
  if (verbose()) fprintf(stderr, "< %s\n", answer);
  if (!parse_http(answer, got, &status, &body, &body_len)) return fail("%s", "malformed HTTP answer");
  if (status != 200) {
    fprintf(stderr, "coulomb_device_cli: the gateway answered HTTP %d: %.*s\n", status,
            (int)(body_len > 2000 ? 2000 : body_len), body);
    return 1;
  }
  err = coulomb_open_response(NULL, body, body_len, gw, req.device_id, counter, &res);
  if (err != COULOMB_OK) return fail("response rejected: %s", coulomb_strerror(err));
  fwrite(res.body, 1, res.body_len, stdout);
  fputc('\n', stdout);
  if (fflush(stdout) != 0) return 1;
  if (!res.ok) fprintf(stderr, "coulomb_device_cli: the gateway refused: %s\n", res.body);
  return res.ok ? 0 : 2;
}
