/*
 * End-to-end test of examples/host/coulomb_device_cli against a fake gateway on 127.0.0.1: the
 * fake checks the HTTP request and the signed request envelope with the library, answers with a
 * response envelope from vectors.json (or a broken one), and the test checks the CLI's stdout and
 * exit status.
 *
 *   test_cli <path-to-coulomb_device_cli> <vectors.json>
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coulomb_device.h"
#include "tiny_json.h"

static int failures = 0;

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      failures++;                                          \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fputc('\n', stderr);                                 \
    }                                                      \
  } while (0)

static const char *SK3 = "0000000000000000000000000000000000000000000000000000000000000003";
static const char *GW_ID = "dd308afec5777e13121fa72b9cc1b7cc0139715309b086c960e18fd969774eb8";

typedef struct {
  const char *name;
  const char *url_suffix;   /* appended to http://127.0.0.1:<port> */
  const char *counter;      /* CLI argument */
  const char *method;
  const char *params;
  const char *key;          /* NULL: none */
  const char *expect_path;  /* request line path */
  const char *http_answer;  /* full HTTP answer, %s replaced by the body (if any) */
  const char *body;         /* body put into the answer */
  int chunked;              /* send body as one chunk */
  int expect_exit;
  const char *expect_stdout; /* NULL: don't check */
} scenario;

static int read_until_headers(int fd, char *buf, size_t cap, size_t *got, char **body) {
  while (*got < cap) {
    struct pollfd p;
    ssize_t r;
    char *end;
    buf[*got] = '\0';
    end = strstr(buf, "\r\n\r\n");
    if (end != NULL) {
      *body = end + 4;
      return 1;
    }
    p.fd = fd;
    p.events = POLLIN;
    if (poll(&p, 1, 10000) <= 0) return 0;
    r = recv(fd, buf + *got, cap - *got, 0);
    if (r <= 0) return 0;
    *got += (size_t)r;
  }
  return 0;
}

/* Checks the request the CLI sent: HTTP framing, envelope fields, signature. */
static void check_request(const scenario *s, char *buf, size_t got, char *body, int fd) {
  char line[256];
  const char *cl = strstr(buf, "Content-Length: ");
  size_t want, have = got - (size_t)(body - buf);
  tj_value *env;
  coulomb_request req;
  uint8_t digest[32];
  int ok;
  snprintf(line, sizeof line, "POST %s HTTP/1.1\r\n", s->expect_path);
  CHECK(strncmp(buf, line, strlen(line)) == 0, "%s: request line, got %.60s", s->name, buf);
  CHECK(strstr(buf, "\r\nContent-Type: application/json\r\n") != NULL, "%s: content type", s->name);
  CHECK(strstr(buf, "\r\nHost: 127.0.0.1:") != NULL, "%s: host header", s->name);
  CHECK(cl != NULL, "%s: content length", s->name);
  if (cl == NULL) return;
  want = (size_t)atol(cl + 16);
  while (have < want) {
    ssize_t r = recv(fd, body + have, want - have, 0);
    if (r <= 0) break;
    have += (size_t)r;
  }
  CHECK(have == want, "%s: body of %u bytes, got %u", s->name, (unsigned)want, (unsigned)have);
  env = tj_parse(body, have);
  CHECK(env != NULL, "%s: body is JSON", s->name);
  if (env == NULL) return;
  memset(&req, 0, sizeof req);
  CHECK(tj_uint(env, "v", &ok) == 1 && ok, "%s: v", s->name);
  CHECK(tj_str(env, "d") != NULL &&
            coulomb_hex_decode(tj_str(env, "d"), strlen(tj_str(env, "d")), req.device_id, 32) == 0,
        "%s: d", s->name);
  req.counter = tj_uint(env, "c", &ok);
  CHECK(ok && req.counter == strtoull(s->counter, NULL, 10), "%s: c", s->name);
  req.timestamp = tj_uint(env, "t", &ok);
  CHECK(ok && req.timestamp + 60 > (uint64_t)time(NULL) && req.timestamp < (uint64_t)time(NULL) + 60,
        "%s: t is now", s->name);
  req.method = tj_str(env, "m");
  req.params = tj_str(env, "p");
  req.idempotency_key = tj_str(env, "k");
  CHECK(req.method != NULL && strcmp(req.method, s->method) == 0, "%s: m", s->name);
  CHECK(req.params != NULL && strcmp(req.params, s->params) == 0, "%s: p", s->name);
  CHECK((s->key == NULL && req.idempotency_key == NULL) ||
            (s->key != NULL && req.idempotency_key != NULL && strcmp(s->key, req.idempotency_key) == 0),
        "%s: k", s->name);
  if (req.method == NULL || req.params == NULL || tj_str(env, "s") == NULL) {
    tj_free(env);
    return;
  }
  req.method_len = strlen(req.method);
  req.params_len = strlen(req.params);
  req.idempotency_key_len = req.idempotency_key ? strlen(req.idempotency_key) : 0;
  CHECK(coulomb_hex_decode(tj_str(env, "s"), strlen(tj_str(env, "s")), req.signature, 64) == 0,
        "%s: s", s->name);
  CHECK(coulomb_request_digest(&req, digest) == COULOMB_OK &&
            coulomb_verify_digest(NULL, req.device_id, digest, req.signature) == COULOMB_OK,
        "%s: the request signature verifies", s->name);
  tj_free(env);
}

static void run(const scenario *s, const char *cli) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd, out_pipe[2], status = 0;
  struct sockaddr_in addr;
  socklen_t alen = sizeof addr;
  char url[128], port[8];
  pid_t pid;
  static char buf[65536], answer[65536], out[65536];
  size_t got = 0, out_len = 0;
  char *body = NULL;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 1) != 0 ||
      getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0 || pipe(out_pipe) != 0) {
    perror("test_cli setup");
    exit(2);
  }
  snprintf(port, sizeof port, "%u", (unsigned)ntohs(addr.sin_port));
  snprintf(url, sizeof url, "http://127.0.0.1:%s%s", port, s->url_suffix);
  fflush(NULL);
  pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(2);
  }
  if (pid == 0) {
    char *args[9];
    int n = 0;
    dup2(out_pipe[1], 1);
    close(out_pipe[0]);
    close(out_pipe[1]);
    close(lfd);
    args[n++] = (char *)cli;
    args[n++] = url;
    args[n++] = (char *)SK3;
    args[n++] = (char *)GW_ID;
    args[n++] = (char *)s->counter;
    args[n++] = (char *)s->method;
    args[n++] = (char *)s->params;
    if (s->key != NULL) args[n++] = (char *)s->key;
    args[n] = NULL;
    execv(cli, args);
    perror("execv");
    _exit(127);
  }
  close(out_pipe[1]);
  {
    struct pollfd p;
    p.fd = lfd;
    p.events = POLLIN;
    CHECK(poll(&p, 1, 10000) == 1, "%s: the CLI connects", s->name);
  }
  cfd = accept(lfd, NULL, NULL);
  if (cfd >= 0) {
    if (read_until_headers(cfd, buf, sizeof buf - 1, &got, &body)) {
      int n;
      check_request(s, buf, got, body, cfd);
      if (s->chunked) {
        char chunk[65536];
        snprintf(chunk, sizeof chunk, "%lx; ext=1\r\n%s\r\n0\r\n\r\n", (unsigned long)strlen(s->body),
                 s->body);
        n = snprintf(answer, sizeof answer, s->http_answer, chunk);
      } else {
        n = snprintf(answer, sizeof answer, s->http_answer, (unsigned long)strlen(s->body), s->body);
      }
      if (n > 0) {
        size_t off = 0;
        while (off < (size_t)n) { /* in small pieces, to exercise the client's reassembly */
          size_t piece = (size_t)n - off < 100 ? (size_t)n - off : 100;
          ssize_t w = send(cfd, answer + off, piece, 0);
          if (w <= 0) break;
          off += (size_t)w;
        }
      }
    } else {
      CHECK(0, "%s: no request headers", s->name);
    }
    close(cfd);
  }
  close(lfd);
  for (;;) {
    ssize_t r = read(out_pipe[0], out + out_len, sizeof out - 1 - out_len);
    if (r <= 0) break;
    out_len += (size_t)r;
  }
  out[out_len] = '\0';
  close(out_pipe[0]);
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == s->expect_exit, "%s: exit status %d, want %d",
        s->name, WIFEXITED(status) ? WEXITSTATUS(status) : -1, s->expect_exit);
  if (s->expect_stdout != NULL)
    CHECK(strcmp(out, s->expect_stdout) == 0, "%s: stdout \"%s\", want \"%s\"", s->name, out,
          s->expect_stdout);
  printf("%-24s exit %d\n", s->name, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static char *raw_envelope(const tj_value *root, size_t i) {
  const tj_value *env = tj_get(tj_at(tj_get(root, "responses"), i), "envelope");
  char *s;
  if (env == NULL) {
    fprintf(stderr, "vectors: no response %u\n", (unsigned)i);
    exit(2);
  }
  s = (char *)malloc(env->raw_len + 1);
  if (s == NULL) abort();
  memcpy(s, env->raw, env->raw_len);
  s[env->raw_len] = '\0';
  return s;
}

static char *with_newline(const char *s) {
  char *r = (char *)malloc(strlen(s) + 2);
  if (r == NULL) abort();
  strcpy(r, s);
  strcat(r, "\n");
  return r;
}

int main(int argc, char **argv) {
  const char *plain =
      "HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\n"
      "content-length: %lu\r\nConnection: close\r\n\r\n%s";
  const char *chunked =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n%s";
  const char *unauthorized =
      "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: %lu\r\n\r\n%s";
  size_t len;
  char *text;
  tj_value *root;
  char *ok_env, *refused_env, *tampered;
  char *ok_b, *refused_b;
  signal(SIGPIPE, SIG_IGN);
  if (argc != 3) {
    fprintf(stderr, "usage: test_cli <coulomb_device_cli> <vectors.json>\n");
    return 2;
  }
  text = tj_read_file(argv[2], &len);
  root = text ? tj_parse(text, len) : NULL;
  if (root == NULL) {
    fprintf(stderr, "cannot read %s\n", argv[2]);
    return 2;
  }
  ok_env = raw_envelope(root, 0);      /* c = 2, ok = true */
  refused_env = raw_envelope(root, 1); /* c = 3, ok = false */
  ok_b = with_newline(tj_str(tj_get(tj_at(tj_get(root, "responses"), 0), "envelope"), "b"));
  refused_b = with_newline(tj_str(tj_get(tj_at(tj_get(root, "responses"), 1), "envelope"), "b"));
  tampered = raw_envelope(root, 0);
  {
    char *p = strstr(tampered, "succeeded");
    if (p != NULL) p[0] = 'S';
  }
  {
    const scenario scenarios[] = {
        {"ok", "", "2", "pay", "{\"invoice\":\"lnbcrt10u1pexample\"}", "pay-0001", "/v1/device", plain,
         ok_env, 0, 0, ok_b},
        {"refused, chunked, 100", "/gw/", "3", "balance", "", NULL, "/gw/v1/device", chunked,
         refused_env, 1, 2, refused_b},
        {"tampered body", "", "2", "balance", "", NULL, "/v1/device", plain, tampered, 0, 1, ""},
        {"wrong counter", "", "5", "balance", "", NULL, "/v1/device", plain, ok_env, 0, 1, ""},
        {"HTTP 401", "", "2", "balance", "", NULL, "/v1/device", unauthorized,
         "{\"code\":\"UNKNOWN_DEVICE\",\"message\":\"no such device\"}", 0, 1, ""},
        {"not an envelope", "", "2", "balance", "", NULL, "/v1/device", plain, "{\"hello\":1}", 0, 1, ""},
    };
    size_t i;
    for (i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) run(&scenarios[i], argv[1]);
  }
  /* usage errors: exit 1 without contacting anyone */
  {
    pid_t pid;
    int status = 0;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
      char *args[3];
      int devnull = open("/dev/null", O_WRONLY);
      if (devnull >= 0) dup2(devnull, 2);
      args[0] = argv[1];
      args[1] = (char *)"http://127.0.0.1:1";
      args[2] = NULL;
      execv(argv[1], args);
      _exit(127);
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "usage error: exit 1");
  }
  free(ok_env);
  free(refused_env);
  free(tampered);
  free(ok_b);
  free(refused_b);
  tj_free(root);
  free(text);
  printf("cli: %d failed\n", failures);
  return failures == 0 ? 0 : 1;
}
