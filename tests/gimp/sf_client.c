/* A client of GIMP's Script-Fu server (plug-in-script-fu-server), for the
 * GUI end-to-end test (run-gimp-undo-test.sh).
 *   sf_client PORT TIMEOUT_S SCRIPT   evaluate SCRIPT; print the answer
 *   sf_client --free-port             print a TCP port free on 127.0.0.1 now
 * The protocol: the client sends 'G', the script's length (2 bytes, big
 * endian) and the script; the server answers 'G', an error byte (0 = ok),
 * the answer's length (2 bytes) and the answer.  A refused connection is
 * retried (the server may still be starting) until TIMEOUT_S.
 * Exit status: 0 ok, 1 Script-Fu error (answer on stderr), 2 no answer in
 * time or another failure. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    perror("sf_client: free port");
    return 2;
  }
  printf("%d\n", ntohs(a.sin_port));
  close(fd);
  return 0;
}

/* Waits until fd is readable (events POLLIN) or writable, at most until deadline. */
static int wait_fd(int fd, short events, double deadline) {
  for (;;) {
    double left = deadline - now();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, (int)(left * 1000) + 1);
    if (r > 0) return 1;
    if (r < 0 && errno != EINTR) return 0;
  }
}

/* 1: read; 0: no data in time; -1: the connection closed or failed. */
static int read_all(int fd, unsigned char *buf, size_t n, double deadline) {
  size_t got = 0;
  while (got < n) {
    if (!wait_fd(fd, POLLIN, deadline)) return 0;
    ssize_t r = read(fd, buf + got, n - got);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return -1;
    }
    got += (size_t)r;
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--free-port") == 0) return free_port();
  if (argc != 4) {
    fprintf(stderr, "usage: sf_client PORT TIMEOUT_S SCRIPT | sf_client --free-port\n");
    return 2;
  }
  const int port = atoi(argv[1]);
  const double deadline = now() + atof(argv[2]);
  const char *script = argv[3];
  const size_t n = strlen(script);
  if (n > 0xffff) {
    fprintf(stderr, "sf_client: the script is longer than 65535 bytes\n");
    return 2;
  }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = -1;
  for (;;) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) break;
    int e = errno;
    if (fd >= 0) close(fd);
    if (now() >= deadline) {
      fprintf(stderr, "sf_client: could not connect to 127.0.0.1:%d: %s\n", port, strerror(e));
      return 2;
    }
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  unsigned char head[4] = {'G', (unsigned char)(n >> 8), (unsigned char)(n & 0xff), 0};
  if (write(fd, head, 3) != 3 || write(fd, script, n) != (ssize_t)n) {
    perror("sf_client: write");
    close(fd);
    return 2;
  }
  const int got = read_all(fd, head, 4, deadline);
  if (got != 1 || head[0] != 'G') {
    fprintf(stderr, "sf_client: %s\n",
            got == 0    ? "no answer from the Script-Fu server in time"
            : got == -1 ? "the Script-Fu server closed the connection without an answer"
                        : "not an answer of the Script-Fu server");
    close(fd);
    return 2;
  }
  const size_t len = (size_t)head[2] << 8 | head[3];
  char *text = malloc(len + 1);
  if (!text || read_all(fd, (unsigned char *)text, len, deadline) != 1) {
    fprintf(stderr, "sf_client: the answer was cut short\n");
    close(fd);
    return 2;
  }
  close(fd);
  text[len] = '\0';
  fprintf(head[1] ? stderr : stdout, "%s\n", text);
  free(text);
  return head[1] ? 1 : 0;
}
