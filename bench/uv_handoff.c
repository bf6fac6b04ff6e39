/* SPDX-License-Identifier: MIT */
/*
 * bench_uv_handoff: sockets handed from a parent to a child, both on libuv
 * loops, measured three ways in one run:
 *   libuv     plain libuv: uv_write2 on the IPC pipe uv_spawn made, one
 *             socket per write (libuv takes one handle per write), so k
 *             sockets are k writes; the child uv_accepts each one.
 *   uv        sockpass_uv: k sockets in one sockpass_uv_send over a sockpass
 *             channel the child got with sockpass_spawn; the child's
 *             receive callback gets them together.
 *   blocking  sockpass's blocking API on the same kind of channel:
 *             sockpass_send in a loop, sockpass_recv in the child.
 * Each message carries k copies of one connected loopback TCP socket (libuv
 * on Windows transfers connected or listening TCP sockets only). The child
 * closes every socket it receives and, after the last message, answers one
 * byte; the time runs from the first send to that answer.
 *
 *   bench_uv_handoff [--socks K,...] [--msgs N] [--rounds R] [--variants LIST]
 * prints, per k: sockets per second for each variant (median of R rounds)
 * and the ratios uv/libuv and uv/blocking.
 */
#include <sockpass_uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

static char self[4096];
static uv_loop_t *loop;

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_uv_handoff: %s: %d (%s / %s)\n", what, rc, sockpass_strerror(rc),
          rc < 0 && rc > -3000 ? uv_strerror(rc) : "");
  exit(1);
}

/* A connected loopback TCP pair; returns one end, the other in *peer. */
static sockpass_sock_t tcp_pair(sockpass_sock_t *peer) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  sockpass_sock_t l = socket(AF_INET, SOCK_STREAM, 0), c, s;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001);
  if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
      getsockname(l, (struct sockaddr *)&a, &len) != 0)
    die("listener", -1);
  c = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c, (struct sockaddr *)&a, sizeof a) != 0)
    die("connect", -1);
  s = accept(l, NULL, NULL);
  sockpass_close_sock(l);
  *peer = c;
  return s;
}

/* ---------------------------------------------------------------- child */

static long child_want;
static long child_got;
static uv_pipe_t child_pipe;
static char child_buf[65536];
static uv_write_t child_w;

static void child_free(uv_handle_t *h) { free(h); }

static void child_acked(uv_write_t *w, int status) {
  (void)w;
  (void)status;
  uv_close((uv_handle_t *)&child_pipe, NULL);
}

static void child_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)h;
  (void)hint;
  *b = uv_buf_init(child_buf, sizeof child_buf);
}

/* libuv child: accept every pending TCP handle and close it. */
static void child_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n < 0) {
    uv_close((uv_handle_t *)s, NULL);
    return;
  }
  while (uv_pipe_pending_count((uv_pipe_t *)s) > 0) {
    uv_tcp_t *t = malloc(sizeof *t);
    uv_tcp_init(loop, t);
    if (uv_accept(s, (uv_stream_t *)t) != 0)
      die("uv_accept", -1);
    uv_close((uv_handle_t *)t, child_free);
    child_got++;
  }
  if (child_got == child_want) {
    uv_buf_t a = uv_buf_init("k", 1);
    uv_read_stop(s);
    uv_write(&child_w, s, &a, 1, child_acked);
  }
}

static int child_libuv(long want) {
  child_want = want;
  uv_pipe_init(loop, &child_pipe, 1);
  if (uv_pipe_open(&child_pipe, 3) != 0)
    die("uv_pipe_open", -1);
  uv_read_start((uv_stream_t *)&child_pipe, child_alloc, child_read);
  uv_run(loop, UV_RUN_DEFAULT);
  return child_got == want ? 0 : 1;
}

/* sockpass_uv child: close what arrives; answer after the last socket. */
static void child_uv_recv(sockpass_uv_chan_t *c, int status, sockpass_sock_t *socks, size_t n,
                          const void *data, size_t len) {
  size_t i;
  (void)data;
  (void)len;
  if (status < 0) {
    sockpass_uv_close(c, NULL);
    return;
  }
  for (i = 0; i < n; i++)
    sockpass_close_sock(socks[i]);
  child_got += (long)n;
  if (child_got == child_want) {
    sockpass_uv_recv_stop(c);
    sockpass_uv_send(c, NULL, 0, "k", 1, NULL, NULL);
  }
}

static int child_uv(long want) {
  sockpass_chan_t *ch;
  sockpass_uv_chan_t *c;
  int rc;
  child_want = want;
  if ((rc = sockpass_inherited_chan(&ch)) != 0)
    die("sockpass_inherited_chan", rc);
  if ((rc = sockpass_uv_open(loop, ch, &c)) != 0 || (rc = sockpass_uv_recv_start(c, child_uv_recv)) != 0)
    die("sockpass_uv", rc);
  uv_run(loop, UV_RUN_DEFAULT);
  /* The answer is out; the parent closes the channel. */
  return child_got == want ? 0 : 1;
}

static int child_blocking(long want) {
  sockpass_chan_t *ch;
  sockpass_sock_t socks[SOCKPASS_MAX_SOCKS];
  char buf[16];
  int rc;
  if ((rc = sockpass_inherited_chan(&ch)) != 0)
    die("sockpass_inherited_chan", rc);
  while (child_got < want) {
    size_t n = SOCKPASS_MAX_SOCKS, len = sizeof buf, i;
    if ((rc = sockpass_recv(ch, socks, &n, buf, &len)) != 0)
      die("sockpass_recv", rc);
    for (i = 0; i < n; i++)
      sockpass_close_sock(socks[i]);
    child_got += (long)n;
  }
  rc = sockpass_send(ch, NULL, 0, "k", 1);
  sockpass_close(ch);
  return rc;
}

/* --------------------------------------------------------------- parent */

static uint64_t t_start, t_end;
static sockpass_sock_t sock_out, sock_peer;
static long msgs;
static int k;

/* libuv */
static uv_pipe_t p_pipe;
static uv_tcp_t p_tcp;
static uv_process_t p_proc;
static char p_buf[64];
static int p_exit;

static void p_exited(uv_process_t *p, int64_t status, int sig) {
  p_exit = sig ? 128 + sig : (int)status;
  uv_close((uv_handle_t *)p, NULL);
}

static void p_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)h;
  (void)hint;
  *b = uv_buf_init(p_buf, sizeof p_buf);
}

static void p_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n > 0 && t_end == 0)
    t_end = uv_hrtime();
  if (n != 0)
    uv_close((uv_handle_t *)s, NULL);
}

static void p_written(uv_write_t *w, int status) {
  if (status != 0)
    die("uv_write2", status);
  free(w);
}

static void spawn_child(const char *variant, uv_stdio_container_t *stdio, int nstdio) {
  uv_process_options_t o;
  char nbuf[32];
  char *args[5];
  snprintf(nbuf, sizeof nbuf, "%ld", msgs * k);
  args[0] = self;
  args[1] = (char *)"--child";
  args[2] = (char *)variant;
  args[3] = nbuf;
  args[4] = NULL;
  memset(&o, 0, sizeof o);
  o.file = self;
  o.args = args;
  o.stdio = stdio;
  o.stdio_count = nstdio;
  o.exit_cb = p_exited;
  if (uv_spawn(loop, &p_proc, &o) != 0)
    die("uv_spawn", -1);
}

static double run_libuv(void) {
  uv_stdio_container_t stdio[4];
  long i;
  int j;
  uv_buf_t b = uv_buf_init("s", 1);
  t_end = 0;
  uv_pipe_init(loop, &p_pipe, 1);
  for (j = 0; j < 3; j++) {
    stdio[j].flags = UV_INHERIT_FD;
    stdio[j].data.fd = j;
  }
  stdio[3].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE);
  stdio[3].data.stream = (uv_stream_t *)&p_pipe;
  spawn_child("libuv", stdio, 4);
  /* The socket as a uv_tcp_t (uv_write2 sends handles), from a copy. */
  {
    sockpass_sock_t copy;
#ifdef _WIN32
    WSAPROTOCOL_INFOW info;
    WSADuplicateSocketW(sock_out, GetCurrentProcessId(), &info);
    copy = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0,
                     WSA_FLAG_OVERLAPPED);
#else
    copy = dup(sock_out);
#endif
    uv_tcp_init(loop, &p_tcp);
    if (uv_tcp_open(&p_tcp, (uv_os_sock_t)copy) != 0)
      die("uv_tcp_open", -1);
  }
  uv_read_start((uv_stream_t *)&p_pipe, p_alloc, p_read);
  t_start = uv_hrtime();
  for (i = 0; i < msgs; i++)
    for (j = 0; j < k; j++) {
      uv_write_t *w = malloc(sizeof *w);
      int rc = uv_write2(w, (uv_stream_t *)&p_pipe, &b, 1, (uv_stream_t *)&p_tcp, p_written);
      if (rc != 0)
        die("uv_write2", rc);
    }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&p_tcp, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  if (p_exit != 0 || t_end == 0)
    die("libuv child", p_exit);
  return (double)(msgs * k) / ((double)(t_end - t_start) / 1e9);
}

/* sockpass_uv and blocking: a sockpass channel given to the child. */
static sockpass_proc_t *sp_child;

static sockpass_chan_t *spawn_sockpass(const char *variant) {
  sockpass_chan_t *mine, *theirs;
  sockpass_spawn_opts_t o;
  char nbuf[32];
  const char *argv[5];
  int rc;
  snprintf(nbuf, sizeof nbuf, "%ld", msgs * k);
  argv[0] = self;
  argv[1] = "--child";
  argv[2] = variant;
  argv[3] = nbuf;
  argv[4] = NULL;
  if ((rc = sockpass_pair(&mine, &theirs)) != 0)
    die("sockpass_pair", rc);
  sockpass_spawn_opts_init(&o);
  o.chan = theirs;
  if ((rc = sockpass_spawn(self, argv, &o, &sp_child)) != 0)
    die("sockpass_spawn", rc);
  return mine;
}

static void wait_child(void) {
  int code = -1, rc = sockpass_proc_wait(sp_child, 60000, &code);
  sockpass_proc_free(sp_child);
  if (rc != 0 || code != 0)
    die("child", rc != 0 ? rc : code);
}

static sockpass_sock_t socks_k[SOCKPASS_MAX_SOCKS];

static void uv_ack(sockpass_uv_chan_t *c, int status, sockpass_sock_t *s, size_t n,
                   const void *data, size_t len) {
  (void)s;
  (void)n;
  (void)data;
  (void)len;
  if (status == 0 && t_end == 0)
    t_end = uv_hrtime();
  sockpass_uv_close(c, NULL);
}

static double run_uv(void) {
  sockpass_uv_chan_t *c;
  long i;
  int rc;
  t_end = 0;
  if ((rc = sockpass_uv_open(loop, spawn_sockpass("uv"), &c)) != 0)
    die("sockpass_uv_open", rc);
  sockpass_uv_recv_start(c, uv_ack);
  t_start = uv_hrtime();
  for (i = 0; i < msgs; i++)
    if ((rc = sockpass_uv_send(c, socks_k, (size_t)k, "s", 1, NULL, NULL)) != 0)
      die("sockpass_uv_send", rc);
  uv_run(loop, UV_RUN_DEFAULT);
  wait_child();
  if (t_end == 0)
    die("sockpass_uv: no answer", -1);
  return (double)(msgs * k) / ((double)(t_end - t_start) / 1e9);
}

static double run_blocking(void) {
  sockpass_chan_t *c = spawn_sockpass("blocking");
  char a[4];
  size_t n = 0, len = sizeof a;
  long i;
  int rc;
  t_start = uv_hrtime();
  for (i = 0; i < msgs; i++)
    if ((rc = sockpass_send(c, socks_k, (size_t)k, "s", 1)) != 0)
      die("sockpass_send", rc);
  if ((rc = sockpass_recv(c, NULL, &n, a, &len)) != 0)
    die("sockpass_recv", rc);
  t_end = uv_hrtime();
  sockpass_close(c);
  wait_child();
  return (double)(msgs * k) / ((double)(t_end - t_start) / 1e9);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  const char *ks = "1,16,64", *variants = "libuv,uv,blocking";
  long total = 20000;
  int rounds = 5, i;
  size_t n = sizeof self;
  loop = uv_default_loop();
  if (argc == 4 && strcmp(argv[1], "--child") == 0) {
    long want = atol(argv[3]);
    if (strcmp(argv[2], "libuv") == 0)
      return child_libuv(want);
    if (strcmp(argv[2], "uv") == 0)
      return child_uv(want);
    return child_blocking(want);
  }
  for (i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--socks") == 0)
      ks = argv[i + 1];
    else if (strcmp(argv[i], "--msgs") == 0)
      total = atol(argv[i + 1]);
    else if (strcmp(argv[i], "--rounds") == 0)
      rounds = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--variants") == 0)
      variants = argv[i + 1];
    else
      break;
  }
  if (i < argc || total < 1 || rounds < 1 || rounds > 99) {
    fprintf(stderr, "usage: bench_uv_handoff [--socks K,...] [--msgs N] [--rounds R] "
                    "[--variants libuv,uv,blocking]\n");
    return 2;
  }
  uv_exepath(self, &n);
  sock_out = tcp_pair(&sock_peer);
  printf("sockets handed parent -> child per second, median of %d rounds, about %ld sockets "
         "per round\n",
         rounds, total);
  printf("%6s %14s %14s %14s %10s %10s\n", "socks", "libuv", "sockpass_uv", "blocking",
         "uv/libuv", "uv/blocking");
  {
    const char *p = ks;
    while (*p) {
      double r[3][99], med[3] = {0, 0, 0};
      int j, v;
      memset(r, 0, sizeof r);
      k = atoi(p);
      if (k < 1 || k > SOCKPASS_MAX_SOCKS)
        die("--socks", k);
      msgs = total / k > 0 ? total / k : 1;
      for (j = 0; j < k; j++)
        socks_k[j] = sock_out;
      for (j = 0; j < rounds; j++) {
        /* Interleaved, so that the machine's drift hits each alike. */
        if (strstr(variants, "libuv"))
          r[0][j] = run_libuv();
        if (strstr(variants, "uv,") || strstr(variants, ",uv") || strcmp(variants, "uv") == 0)
          r[1][j] = run_uv();
        if (strstr(variants, "blocking"))
          r[2][j] = run_blocking();
      }
      for (v = 0; v < 3; v++)
        med[v] = median(r[v], rounds);
      printf("%6d %14.0f %14.0f %14.0f %10.3f %10.3f\n", k, med[0], med[1], med[2],
             med[0] > 0 ? med[1] / med[0] : 0, med[2] > 0 ? med[1] / med[2] : 0);
      fflush(stdout);
      while (*p && *p != ',')
        p++;
      if (*p == ',')
        p++;
    }
  }
  sockpass_close_sock(sock_out);
  sockpass_close_sock(sock_peer);
  return 0;
}
