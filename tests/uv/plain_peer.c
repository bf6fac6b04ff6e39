/* SPDX-License-Identifier: MIT */
/*
 * A plain libuv program, with nothing of sockpass linked in: the peer of the
 * interoperation tests in test_uv.c. It speaks only libuv's IPC pipe
 * (uv_pipe_init(loop, p, 1), uv_write2, uv_pipe_pending_count, uv_accept).
 *
 *   plain_peer child             its IPC pipe is descriptor 3 (uv_spawn's
 *                                UV_CREATE_PIPE): the second side below
 *   plain_peer parent PROG ARG   starts PROG ARG with an IPC pipe as its
 *                                descriptor 3: the first side below
 *
 * The exchange, the same whichever program is on either side:
 *   1. first -> second: a listening TCP socket with "L" and a connected one
 *      with "S". The second serves one connection on the listener ("ping"
 *      -> "pong") and echoes 5 bytes upper-cased on the connected one; the
 *      first checks both as a client.
 *   2. second -> first: the same, the other way.
 * Exit code 0 when every check passed.
 */
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET raw_t;
#define RAW_BAD INVALID_SOCKET
#define raw_close closesocket
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>
typedef int raw_t;
#define RAW_BAD (-1)
#define raw_close close
#endif

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, "plain_peer: " __VA_ARGS__);                               \
    fprintf(stderr, "\n");                                                     \
    exit(1);                                                                   \
  } while (0)

static uv_loop_t *loop;
static uv_pipe_t ipc;
static int first;     /* this side sends first */
static int served;    /* sockets served as the receiving side */
static int checked;   /* sockets checked as the sending side */
static char rbuf[65536];

/* ---- Blocking socket helpers, bounded by 10 s ---- */

static int wait_io(raw_t s, int write) {
  fd_set set;
  struct timeval tv = {10, 0};
  FD_ZERO(&set);
  FD_SET(s, &set);
  return select((int)s + 1, write ? NULL : &set, write ? &set : NULL, NULL, &tv) == 1;
}

static void read_n(raw_t s, char *buf, int n) {
  int got = 0;
  while (got < n) {
    int r;
    if (!wait_io(s, 0))
      FAIL("read timed out");
    r = recv(s, buf + got, n - got, 0);
    if (r <= 0)
      FAIL("read failed (%d)", r);
    got += r;
  }
}

static void write_all(raw_t s, const char *buf, int n) {
  while (n > 0) {
    int r;
    if (!wait_io(s, 1))
      FAIL("write timed out");
    r = send(s, buf, n, 0);
    if (r <= 0)
      FAIL("write failed");
    buf += r;
    n -= r;
  }
}

static raw_t tcp_listener(int *port) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  raw_t s = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001);
  if (s == RAW_BAD || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 8) != 0 ||
      getsockname(s, (struct sockaddr *)&a, &len) != 0)
    FAIL("listener");
  *port = ntohs(a.sin_port);
  return s;
}

static raw_t tcp_connect(int port) {
  struct sockaddr_in a;
  raw_t s = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001);
  a.sin_port = htons((unsigned short)port);
  if (s == RAW_BAD || connect(s, (struct sockaddr *)&a, sizeof a) != 0)
    FAIL("connect to %d", port);
  return s;
}

/* ---- Sending side ---- */

static uv_tcp_t out_l, out_s;
static raw_t keep_listener = RAW_BAD, client_end = RAW_BAD;
static int listener_port;
static uv_write_t w1, w2;
static int writes_done;

static void after_check(void);

static void wrote(uv_write_t *w, int status) {
  if (status != 0)
    FAIL("uv_write2: %s", uv_strerror(status));
  if (w != &w2)
    return;
  /* Both went out: check them as their client. */
  (void)writes_done;
  {
    char buf[8];
    raw_t c = tcp_connect(listener_port);
    write_all(c, "ping", 4);
    read_n(c, buf, 4);
    if (memcmp(buf, "pong", 4) != 0)
      FAIL("listener answered %.4s", buf);
    raw_close(c);
    checked++;
    write_all(client_end, "hello", 5);
    read_n(client_end, buf, 5);
    if (memcmp(buf, "HELLO", 5) != 0)
      FAIL("connection answered %.5s", buf);
    raw_close(client_end);
    checked++;
  }
  uv_close((uv_handle_t *)&out_l, NULL);
  uv_close((uv_handle_t *)&out_s, NULL);
  after_check();
}

static void send_both(void) {
  raw_t srv, pair_l;
  int pp;
  uv_buf_t bl = uv_buf_init("L", 1), bs = uv_buf_init("S", 1);
  /* A listening socket, and the server end of a loopback connection. */
  keep_listener = tcp_listener(&listener_port);
  pair_l = tcp_listener(&pp);
  client_end = tcp_connect(pp);
  if (!wait_io(pair_l, 0))
    FAIL("accept timed out");
  srv = accept(pair_l, NULL, NULL);
  raw_close(pair_l);
  if (srv == RAW_BAD)
    FAIL("accept");
  if (uv_tcp_init(loop, &out_l) || uv_tcp_open(&out_l, (uv_os_sock_t)keep_listener) ||
      uv_tcp_init(loop, &out_s) || uv_tcp_open(&out_s, (uv_os_sock_t)srv))
    FAIL("uv_tcp_open");
  if (uv_write2(&w1, (uv_stream_t *)&ipc, &bl, 1, (uv_stream_t *)&out_l, wrote) ||
      uv_write2(&w2, (uv_stream_t *)&ipc, &bs, 1, (uv_stream_t *)&out_s, wrote))
    FAIL("uv_write2");
}

/* ---- Receiving side ---- */

static void serve(char kind, raw_t s) {
  char buf[8];
  int i;
  if (kind == 'L') {
    raw_t c;
    if (!wait_io(s, 0))
      FAIL("no connection on the listener received");
    c = accept(s, NULL, NULL);
    if (c == RAW_BAD)
      FAIL("accept on received listener");
    read_n(c, buf, 4);
    if (memcmp(buf, "ping", 4) != 0)
      FAIL("got %.4s", buf);
    write_all(c, "pong", 4);
    raw_close(c);
  } else {
    read_n(s, buf, 5);
    for (i = 0; i < 5; i++)
      if (buf[i] >= 'a' && buf[i] <= 'z')
        buf[i] = (char)(buf[i] - 'a' + 'A');
    write_all(s, buf, 5);
  }
  served++;
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)h;
  (void)hint;
  *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void free_cb(uv_handle_t *h) { free(h); }

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  ssize_t i;
  (void)b;
  if (n == UV_EOF) {
    uv_close((uv_handle_t *)&ipc, NULL);
    return;
  }
  if (n < 0)
    FAIL("read: %s", uv_strerror((int)n));
  for (i = 0; i < n; i++) {
    uv_tcp_t *t;
    uv_os_fd_t fd;
    if (uv_pipe_pending_count((uv_pipe_t *)s) < 1)
      FAIL("byte %c came without a handle", rbuf[i]);
    if (uv_pipe_pending_type((uv_pipe_t *)s) != UV_TCP)
      FAIL("pending handle is not TCP");
    t = malloc(sizeof *t);
    if (t == NULL || uv_tcp_init(loop, t) || uv_accept(s, (uv_stream_t *)t) ||
        uv_fileno((uv_handle_t *)t, &fd))
      FAIL("uv_accept");
    serve(rbuf[i], (raw_t)(uintptr_t)fd);
    uv_close((uv_handle_t *)t, free_cb);
  }
  if (served == 2)
    after_check();
}

/* Called when this side finished a part: move the exchange along. */
static void after_check(void) {
  if (first && checked == 2 && served == 0)
    return; /* wait for the second part */
  if (!first && served == 2 && checked == 0) {
    send_both();
    return;
  }
  if (checked == 2 && served == 2) {
    /* Done: the peer sees EOF. */
    uv_close((uv_handle_t *)&ipc, NULL);
  }
}

static int child_exit = -1;

static void exited(uv_process_t *p, int64_t status, int sig) {
  child_exit = sig ? 128 + sig : (int)status;
  uv_close((uv_handle_t *)p, NULL);
}

int main(int argc, char **argv) {
  uv_process_t proc;
  uv_process_options_t o;
  uv_stdio_container_t stdio[4];
  if (argc < 2 || (strcmp(argv[1], "child") != 0 && strcmp(argv[1], "parent") != 0)) {
    fprintf(stderr, "usage: plain_peer child | plain_peer parent PROG ARG\n");
    return 2;
  }
  loop = uv_default_loop();
  if (argc >= 2 && strcmp(argv[1], "child") == 0) {
    first = 0;
    if (uv_pipe_init(loop, &ipc, 1) || uv_pipe_open(&ipc, 3))
      FAIL("uv_pipe_open(3)");
  } else if (argc >= 4 && strcmp(argv[1], "parent") == 0) {
    char *args[] = {argv[2], argv[3], NULL};
    first = 1;
    uv_pipe_init(loop, &ipc, 1);
    memset(&o, 0, sizeof o);
    stdio[0].flags = UV_INHERIT_FD;
    stdio[0].data.fd = 0;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 1;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    stdio[3].flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE;
    stdio[3].data.stream = (uv_stream_t *)&ipc;
    o.file = argv[2];
    o.args = args;
    o.stdio = stdio;
    o.stdio_count = 4;
    o.exit_cb = exited;
    if (uv_spawn(loop, &proc, &o) != 0)
      FAIL("uv_spawn %s", argv[2]);
  } else {
    fprintf(stderr, "usage: plain_peer child | plain_peer parent PROG ARG\n");
    return 2;
  }
  if (uv_read_start((uv_stream_t *)&ipc, alloc_cb, read_cb) != 0)
    FAIL("uv_read_start");
  if (first)
    send_both();
  uv_run(loop, UV_RUN_DEFAULT);
  if (checked != 2 || served != 2)
    FAIL("checked %d, served %d", checked, served);
  if (first && child_exit != 0)
    FAIL("child exited with %d", child_exit);
  printf("plain_peer %s: 2 sent and checked, 2 received and served\n", first ? "parent" : "child");
  /* Leave nothing open for a descriptor-tracking run (valgrind). */
  if (uv_loop_close(loop) != 0)
    FAIL("the loop did not close");
  uv_library_shutdown();
  return 0;
}
