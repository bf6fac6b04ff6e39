/* SPDX-License-Identifier: MIT */
/* POSIX pitfalls: close-on-exec, EINTR, SIGPIPE, EMFILE, streams and partial
 * writes, any descriptor type, named endpoints on the filesystem, and plain
 * SCM_RIGHTS peers written by hand. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

static int is_cloexec(int fd) { return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

/* Received descriptors are close-on-exec even when the sender's were not. */
static void received_are_cloexec(void **s) {
  sockpass_chan_t *a, *b;
  unsigned short port;
  int sk = sp_udp_socket(&port), got = -1;
  size_t n = 1, len = 0;
  assert_true(sk >= 0);
  assert_int_equal(fcntl(sk, F_SETFD, 0), 0);
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_send(a, &sk, 1, NULL, 0), 0);
  assert_sp(sockpass_recv(b, &got, &n, NULL, &len), 0);
  assert_int_equal(n, 1);
  assert_true(is_cloexec(got));
  assert_int_equal(sp_sock_port(got), port);
  close(got);
  close(sk);
  sockpass_close(a);
  sockpass_close(b);
}

/* Any descriptor type travels; sockpass_adopt insists on a socket. */
static void pipes_and_files_travel(void **s) {
  sockpass_chan_t *a, *b;
  int p[2], fds[2], got[2], out = 0;
  char tmpl[] = "/tmp/sockpass-file-XXXXXX", buf[8];
  size_t n = 2, len = 0;
  assert_int_equal(pipe(p), 0);
  fds[0] = p[0];
  fds[1] = mkstemp(tmpl);
  assert_true(fds[1] >= 0);
  unlink(tmpl);
  assert_int_equal(write(fds[1], "file", 4), 4);
  assert_int_equal(write(p[1], "pipe", 4), 4);
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_send(a, fds, 2, NULL, 0), 0);
  assert_sp(sockpass_recv(b, got, &n, NULL, &len), 0);
  assert_int_equal(n, 2);
  assert_int_equal(read(got[0], buf, 4), 4);
  assert_memory_equal(buf, "pipe", 4);
  assert_int_equal(pread(got[1], buf, 4, 0), 4);
  assert_memory_equal(buf, "file", 4);
  assert_sp(sockpass_adopt(got[0], &out), SOCKPASS_ENOTSOCK);
  assert_sp(sockpass_adopt(got[1], &out), SOCKPASS_ENOTSOCK);
  close(got[0]);
  close(got[1]);
  assert_sp(sockpass_adopt(got[1], &out), SOCKPASS_EBADF); /* now a dead number */
  close(p[0]);
  close(p[1]);
  close(fds[1]);
  sockpass_close(a);
  sockpass_close(b);
}

static void adopt_sets_cloexec(void **s) {
  int sv[2], out = -1;
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_false(is_cloexec(sv[0]));
  assert_sp(sockpass_adopt(sv[0], &out), 0);
  assert_int_equal(out, sv[0]);
  assert_true(is_cloexec(out));
  close(sv[0]);
  close(sv[1]);
}

/* sockpass_open refuses what is not an AF_UNIX socket, and closes it. */
static void open_refuses_others(void **s) {
  sockpass_chan_t *c = (sockpass_chan_t *)&c;
  unsigned short port;
  int p[2], before = sp_count_fds(), tcp = sp_tcp_listener(&port);
  assert_true(tcp >= 0);
  assert_sp(sockpass_open(tcp, &c), SOCKPASS_ENOTSUP);
  assert_null(c);
  assert_int_equal(pipe(p), 0);
  assert_sp(sockpass_open(p[0], &c), SOCKPASS_ENOTSOCK);
  close(p[1]);
  assert_int_equal(sp_count_fds(), before); /* both were closed by the library */
}

/* ---- EINTR: signals hitting blocked calls must not surface. ---- */

static void on_usr1(int sig) { (void)sig; }

static int eintr_receiver(sockpass_chan_t *c) {
  int i;
  sockpass_set_timeout(c, sp_scale_ms(20000));
  for (i = 0; i < 20; i++) {
    int sk = -1;
    size_t n = 1, len = sizeof(int);
    int v = -1;
    SP_CHECK_RC(sockpass_recv(c, &sk, &n, &v, &len), 0);
    SP_CHECK(n == 1 && v == i);
    close(sk);
  }
  return 0;
}

static void eintr_is_retried(void **s) {
  struct sigaction sa;
  sockpass_chan_t *a, *b;
  sp_thread_t *t;
  unsigned short port;
  int i, sk = sp_udp_socket(&port);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1; /* no SA_RESTART: calls really see EINTR */
  sigaction(SIGUSR1, &sa, NULL);
  assert_sp(sockpass_pair(&a, &b), 0);
  t = sp_thread_start(eintr_receiver, b);
  assert_non_null(t);
  for (i = 0; i < 20; i++) {
    int k;
    for (k = 0; k < 5; k++) {
      kill(getpid(), SIGUSR1);
      sp_sleep_ms(1);
    }
    assert_sp(sockpass_send(a, &sk, 1, &i, sizeof i), 0);
  }
  assert_int_equal(sp_thread_join(t), 0);
  signal(SIGUSR1, SIG_DFL);
  close(sk);
  sockpass_close(a);
  sockpass_close(b);
}

/* The same with the signal aimed at the thread that waits, while it waits
 * (kill() above usually lands on another thread): receive and send. */

typedef struct {
  sockpass_chan_t *chan;
  int sending; /* 0: one receive; 1: one send of a socket */
  int sock;
  unsigned short port;
  long tid;
  int returned;
  int rc;
} eintr_call_t;

static void *eintr_call(void *arg) {
  eintr_call_t *e = arg;
  int rc, v = 0x5eed;
  __atomic_store_n(&e->tid, sp_thread_id(), __ATOMIC_SEQ_CST);
  if (e->sending) {
    rc = sockpass_send(e->chan, &e->sock, 1, &v, sizeof v);
  } else {
    size_t n = 1, len = sizeof v;
    e->sock = -1;
    rc = sockpass_recv(e->chan, &e->sock, &n, &v, &len);
    if (rc == 0 && (n != 1 || len != sizeof v || v != 0x5eed || sp_sock_port(e->sock) != e->port))
      rc = 1; /* not the message and socket sent */
  }
  e->rc = rc;
  __atomic_store_n(&e->returned, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

/* Start the call in a thread, wait until it blocks, and signal it there
 * five times, each time once it is back in its wait. */
static void eintr_start_and_signal(eintr_call_t *e, pthread_t *t) {
  struct sigaction sa;
  int k;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1; /* no SA_RESTART: the wait really sees EINTR */
  assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
  assert_int_equal(pthread_create(t, NULL, eintr_call, e), 0);
  for (k = 0; k < 1000 && __atomic_load_n(&e->tid, __ATOMIC_SEQ_CST) == 0; k++)
    sp_sleep_ms(5);
  for (k = 0; k < 5; k++) {
    assert_true(sp_wait_blocked(__atomic_load_n(&e->tid, __ATOMIC_SEQ_CST), &e->returned));
    assert_int_equal(pthread_kill(*t, SIGUSR1), 0);
    sp_sleep_ms(20);
  }
  assert_true(sp_wait_blocked(__atomic_load_n(&e->tid, __ATOMIC_SEQ_CST), &e->returned));
}

static void eintr_blocked_recv(void **s) {
  eintr_call_t e;
  pthread_t t;
  sockpass_chan_t *a, *b;
  unsigned short port;
  int sk = sp_udp_socket(&port), v = 0x5eed;
  assert_true(sk >= 0);
  memset(&e, 0, sizeof e);
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_set_timeout(b, 20000), 0);
  e.chan = b;
  e.port = port;
  eintr_start_and_signal(&e, &t);
  assert_sp(sockpass_send(a, &sk, 1, &v, sizeof v), 0);
  pthread_join(t, NULL);
  signal(SIGUSR1, SIG_DFL);
  assert_sp(e.rc, 0);
  close(e.sock);
  close(sk);
  sockpass_close(a);
  sockpass_close(b);
}

static void eintr_blocked_send(void **s) {
  eintr_call_t e;
  pthread_t t;
  sockpass_chan_t *a, *b;
  unsigned short port;
  int sk = sp_udp_socket(&port), queued = 0, got = -1, v = 0, rc;
  char fill[512];
  assert_true(sk >= 0);
  memset(&e, 0, sizeof e);
  memset(fill, 'f', sizeof fill);
  assert_sp(sockpass_pair(&a, &b), 0);
  /* Fill the channel until a send would wait. */
  assert_sp(sockpass_set_timeout(a, SOCKPASS_NONBLOCK), 0);
  while ((rc = sockpass_send(a, NULL, 0, fill, sizeof fill)) == 0 && queued < 100000)
    queued++;
  assert_sp(rc, SOCKPASS_EAGAIN);
  assert_sp(sockpass_set_timeout(a, 20000), 0);
  e.chan = a;
  e.sending = 1;
  e.sock = sk;
  eintr_start_and_signal(&e, &t);
  /* Drain: the blocked send then goes through, its socket last. */
  assert_sp(sockpass_set_timeout(b, 20000), 0);
  for (; queued > 0; queued--) {
    size_t n = 0, len = sizeof fill;
    assert_sp(sockpass_recv(b, NULL, &n, fill, &len), 0);
    assert_int_equal(len, sizeof fill);
  }
  {
    size_t n = 1, len = sizeof v;
    assert_sp(sockpass_recv(b, &got, &n, &v, &len), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v, 0x5eed);
    assert_int_equal(sp_sock_port(got), port);
  }
  pthread_join(t, NULL);
  signal(SIGUSR1, SIG_DFL);
  assert_sp(e.rc, 0);
  close(got);
  close(sk);
  sockpass_close(a);
  sockpass_close(b);
}

/* ---- After cancel_clear a wait sleeps: no CPU spent while it waits. ---- */

static long long thread_cpu_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void cancel_clear_then_sleeps(void **s) {
  sockpass_chan_t *a, *b;
  char buf[4];
  size_t n = 0, len = sizeof buf;
  long long cpu, wall;
  int round;
  assert_sp(sockpass_pair(&a, &b), 0);
  for (round = 0; round < 2; round++) {
    assert_sp(sockpass_cancel(b), 0);
    assert_sp(sockpass_cancel(b), 0); /* twice: the wake counts up */
    n = 0;
    len = sizeof buf;
    assert_sp(sockpass_recv(b, NULL, &n, buf, &len), SOCKPASS_ECANCELED);
    assert_sp(sockpass_cancel_clear(b), 0);
    assert_sp(sockpass_set_timeout(b, 500), 0);
    cpu = thread_cpu_us();
    wall = sp_now_us();
    n = 0;
    len = sizeof buf;
    assert_sp(sockpass_recv(b, NULL, &n, buf, &len), SOCKPASS_ETIMEDOUT);
    cpu = thread_cpu_us() - cpu;
    wall = sp_now_us() - wall;
    assert_true(sp_elapsed_ok("timed recv after cancel_clear", 500, wall));
    /* A sleeping wait uses next to nothing, a spin all of it (valgrind
     * translating the code on its first run may take a little). */
    if (cpu > 100000LL * sp_slow())
      fail_msg("a 500 ms wait after cancel_clear used %lld us of CPU", cpu);
  }
  sockpass_close(a);
  sockpass_close(b);
}

/* ---- Close-on-exec on every descriptor the library makes or hands over:
 * pair, listen, connect, accept, open, recv, adopt, and its own wake
 * descriptors. Whatever is open afterwards and was not before must be
 * close-on-exec. ---- */

static int fds_open(unsigned char *open_fds, int room) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0, self;
  assert_non_null(d);
  self = dirfd(d);
  memset(open_fds, 0, (size_t)room);
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] == '.' || fd == self || fd >= room)
      continue;
    open_fds[fd] = 1;
    n++;
  }
  closedir(d);
  return n;
}

static void every_descriptor_cloexec(void **s) {
  static unsigned char before[4096], after[4096];
  sockpass_chan_t *a, *b, *l, *c, *d, *o;
  char path[108];
  unsigned short port;
  int sv[2], sk = sp_udp_socket(&port), got = -1, raw[2], adopted = -1, fd, made = 0;
  size_t n = 1, len = 0;
  assert_true(sk >= 0);
  assert_int_equal(fcntl(sk, F_SETFD, 0), 0);
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0); /* not close-on-exec */
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, raw), 0);
  fds_open(before, (int)sizeof before);
  snprintf(path, sizeof path, "/tmp/sockpass-cloexec-%ld.sock", (long)getpid());
  unlink(path);
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_listen(path, &l), 0);
  assert_sp(sockpass_connect(path, &c), 0);
  assert_sp(sockpass_accept(l, &d), 0);
  assert_sp(sockpass_open(sv[0], &o), 0);
  assert_sp(sockpass_adopt(raw[0], &adopted), 0);
  assert_sp(sockpass_send(a, &sk, 1, NULL, 0), 0);
  assert_sp(sockpass_recv(b, &got, &n, NULL, &len), 0);
  assert_int_equal(n, 1);
  assert_int_equal(sp_sock_port(got), port);
  /* Wake descriptors: made by a cancel (and a wait), on each kind. */
  assert_sp(sockpass_cancel(a), 0);
  assert_sp(sockpass_cancel(d), 0);
  assert_sp(sockpass_cancel(o), 0);
  assert_sp(sockpass_cancel(l), 0);
  fds_open(after, (int)sizeof after);
  for (fd = 3; fd < (int)sizeof after; fd++) {
    if (!after[fd] || (before[fd] && fd != sv[0] && fd != raw[0]))
      continue;
    made++;
    if (!is_cloexec(fd))
      fail_msg("descriptor %d, open after the library calls, is not close-on-exec", fd);
  }
  /* pair 2, listen 1, connect 1, accept 1, open 1, adopt 1, recv 1, wakes 4 */
  assert_true(made >= 12);
  assert_true(is_cloexec(sockpass_handle(a)) && is_cloexec(sockpass_handle(b)));
  assert_true(is_cloexec(sockpass_handle(l)) && is_cloexec(sockpass_handle(c)));
  assert_true(is_cloexec(sockpass_handle(d)) && is_cloexec(sockpass_handle(o)));
  assert_true(is_cloexec(got) && is_cloexec(adopted));
  close(got);
  close(sk);
  close(raw[0]);
  close(raw[1]);
  close(sv[1]);
  sockpass_close(a);
  sockpass_close(b);
  sockpass_close(c);
  sockpass_close(d);
  sockpass_close(o);
  sockpass_close(l);
}

/* ---- SIGPIPE never: a closed peer gives SOCKPASS_EOF. ---- */

static void no_sigpipe(void **s) {
  sockpass_chan_t *a, *b;
  signal(SIGPIPE, SIG_DFL); /* the default would kill the test */
  assert_sp(sockpass_pair(&a, &b), 0);
  sockpass_close(b);
  assert_sp(sockpass_send(a, NULL, 0, "x", 1), SOCKPASS_EOF);
  sockpass_close(a);
}

/* ---- A full descriptor table: SOCKPASS_EMFILE, nothing leaks, the channel
 * carries the next message. Runs in a child so the limit stays there. ---- */

static int emfile_a(sockpass_chan_t *c) {
  unsigned short port;
  int socks[5], i, rc = 0;
  char ack[8];
  size_t n = 0, len = sizeof ack;
  for (i = 0; i < 5; i++)
    socks[i] = sp_udp_socket(&port);
  SP_CHECK_RC(sockpass_recv(c, NULL, &n, ack, &len), 0); /* B lowered its limit */
  rc = sockpass_send(c, socks, 5, "five", 4);
  if (rc == 0)
    rc = sockpass_send(c, socks, 1, "one", 3);
  for (i = 0; i < 5; i++)
    close(socks[i]);
  SP_CHECK_RC(rc, 0);
  n = 0;
  len = sizeof ack;
  SP_CHECK_RC(sockpass_recv(c, NULL, &n, ack, &len), 0);
  return 0;
}

static int emfile_b(sockpass_chan_t *c) {
  struct rlimit old, low;
  int socks[5], before;
  char buf[8];
  size_t n = 5, len = sizeof buf;
  SP_CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
  /* Allow exactly two new descriptors (numbers below the limit): fewer
   * than the five coming. The channel's wake descriptor was made with the
   * channel, so the wait below needs none. */
  sockpass_set_timeout(c, sp_scale_ms(20000));
  n = 5;
  len = sizeof buf;
  before = sp_count_fds();
  low = old;
  {
    int fd = fcntl(0, F_DUPFD, 0); /* the lowest free number */
    SP_CHECK(fd >= 0);
    close(fd);
    low.rlim_cur = (rlim_t)fd + 2;
  }
  SP_CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
  SP_CHECK_RC(sockpass_send(c, NULL, 0, "low", 3), 0);
  SP_CHECK_RC(sockpass_recv(c, socks, &n, buf, &len), SOCKPASS_EMFILE);
  SP_CHECK(n == 0);
  SP_CHECK(sp_count_fds() == before); /* what did arrive was closed */
  SP_CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
  n = 5;
  len = sizeof buf;
  SP_CHECK_RC(sockpass_recv(c, socks, &n, buf, &len), 0);
  SP_CHECK(n == 1 && len == 3 && memcmp(buf, "one", 3) == 0);
  close(socks[0]);
  SP_CHECK_RC(sockpass_send(c, NULL, 0, "done", 4), 0);
  return 0;
}

static void emfile_process(void **s) { sp_run_process(emfile_a, "emfile_b"); }

/* With one descriptor left in the whole process, a receive that waits and
 * then gets one socket succeeds, and cancel works with none left: the
 * channel claimed everything it needs when it was made. */
static sockpass_sock_t sp_limit_sock;

static int sp_late_sender(sockpass_chan_t *c) {
  sp_sleep_ms(100);
  SP_CHECK_RC(sockpass_send(c, &sp_limit_sock, 1, "late", 4), 0);
  return 0;
}

static void one_descriptor_left(void **s) {
  sockpass_chan_t *a, *b;
  sp_thread_t *t;
  unsigned short port;
  int *fill, nfill = 0, cap = 1 << 16, got = -1, rc;
  char buf[8];
  size_t n = 1, len = sizeof buf;
  struct rlimit was, lim;
  (void)s;
  /* A machine whose limit is above what the test fills (containers often
   * allow 1048576): lower the soft limit for the test, restored after. */
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &was), 0);
  lim = was;
  if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur > (rlim_t)cap / 2) {
    lim.rlim_cur = (rlim_t)sp_count_fds() + 1024;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
  }
  assert_sp(sockpass_pair(&a, &b), 0);
  sp_limit_sock = sp_udp_socket(&port);
  assert_sp(sockpass_set_timeout(b, sp_scale_ms(10000)), 0);
  fill = malloc((size_t)cap * sizeof *fill);
  assert_non_null(fill);
  t = sp_thread_start(sp_late_sender, a);
  assert_non_null(t);
  while (nfill < cap && (fill[nfill] = fcntl(0, F_DUPFD_CLOEXEC, 0)) >= 0)
    nfill++;
  assert_true(nfill > 0 && nfill < cap && errno == EMFILE);
  close(fill[--nfill]); /* exactly one number free */
  rc = sockpass_recv(b, &got, &n, buf, &len);
  /* Nothing free at all now: cancel still wakes the next wait. */
  assert_sp(sockpass_cancel(b), 0);
  n = 0;
  len = sizeof buf;
  assert_sp(sockpass_recv(b, NULL, &n, buf, &len), SOCKPASS_ECANCELED);
  while (nfill > 0)
    close(fill[--nfill]);
  free(fill);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &was), 0);
  assert_int_equal(sp_thread_join(t), 0);
  assert_sp(rc, 0);
  assert_int_equal(sp_sock_port(got), port);
  close(got);
  close(sp_limit_sock);
  sockpass_close(a);
  sockpass_close(b);
}

/* ---- Stream channels: boundaries are the stream's, a partial write never
 * sends the descriptors twice. ---- */

static int stream_reader(sockpass_chan_t *c) {
  unsigned char *buf = malloc(SOCKPASS_MAX_PAYLOAD);
  size_t total = 0, fds = 0, i;
  int ok = 1;
  SP_CHECK(buf != NULL);
  sockpass_set_timeout(c, sp_scale_ms(20000));
  while (total < SOCKPASS_MAX_PAYLOAD && ok) {
    int sk[4];
    size_t n = 4, len = SOCKPASS_MAX_PAYLOAD - total; /* small reads: many chunks */
    if (len > 1000)
      len = 1000;
    int rc = sockpass_recv(c, sk, &n, buf + total, &len);
    if (rc != 0) {
      fprintf(stderr, "stream recv: %s\n", sockpass_strerror(rc));
      ok = 0;
      break;
    }
    for (i = 0; i < n; i++) {
      if (sp_sock_port(sk[i]) == 0)
        ok = 0;
      close(sk[i]);
    }
    fds += n;
    total += len;
    sp_sleep_ms(0);
  }
  for (i = 0; ok && i < total; i++)
    if (buf[i] != (unsigned char)(i * 13))
      ok = 0;
  free(buf);
  SP_CHECK(ok);
  SP_CHECK(total == SOCKPASS_MAX_PAYLOAD);
  SP_CHECK(fds == 1);
  return 0;
}

static void stream_partial_writes(void **s) {
  int sv[2], small = 2048, sk;
  unsigned short port;
  sockpass_chan_t *a, *b;
  unsigned char *msg = malloc(SOCKPASS_MAX_PAYLOAD);
  sp_thread_t *t;
  size_t i;
  assert_non_null(msg);
  for (i = 0; i < SOCKPASS_MAX_PAYLOAD; i++)
    msg[i] = (unsigned char)(i * 13);
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  assert_sp(sockpass_open(sv[0], &a), 0);
  assert_sp(sockpass_open(sv[1], &b), 0);
  sk = sp_udp_socket(&port);
  /* On a stream, sockets travel only with bytes. */
  assert_sp(sockpass_send(a, &sk, 1, NULL, 0), SOCKPASS_EINVAL);
  t = sp_thread_start(stream_reader, b);
  assert_non_null(t);
  assert_sp(sockpass_send(a, &sk, 1, msg, SOCKPASS_MAX_PAYLOAD), 0);
  assert_int_equal(sp_thread_join(t), 0);
  close(sk);
  free(msg);
  sockpass_close(a);
  sockpass_close(b);
}

static void dgram_channel(void **s) {
  int sv[2], sk, got = -1;
  unsigned short port;
  sockpass_chan_t *a, *b;
  char buf[8];
  size_t n = 1, len = sizeof buf;
  assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
  assert_sp(sockpass_open(sv[0], &a), 0);
  assert_sp(sockpass_open(sv[1], &b), 0);
  sk = sp_udp_socket(&port);
  assert_sp(sockpass_send(a, &sk, 1, "dg", 2), 0);
  assert_sp(sockpass_recv(b, &got, &n, buf, &len), 0);
  assert_int_equal(n, 1);
  assert_int_equal(len, 2);
  assert_int_equal(sp_sock_port(got), port);
  close(got);
  close(sk);
  sockpass_close(a);
  sockpass_close(b);
}

/* ---- Plain SCM_RIGHTS peers written by hand interoperate both ways, and
 * unexpected credentials beside the descriptors are ignored. ---- */

static void raw_peer(void **s) {
  int sv[2], sk, got[2], one = 1;
  unsigned short port;
  sockpass_chan_t *c;
  union {
    struct cmsghdr h;
    char b[256];
  } cb;
  struct msghdr m;
  struct iovec iov;
  struct cmsghdr *cm;
  char buf[16];
  size_t n = 2, len = sizeof buf;
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  assert_sp(sockpass_open(sv[0], &c), 0);
#ifdef SO_PASSCRED
  /* The kernel then attaches SCM_CREDENTIALS to every message. */
  setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
#endif
  (void)one;
  sk = sp_udp_socket(&port);
  memset(&m, 0, sizeof m);
  memset(&cb, 0, sizeof cb);
  iov.iov_base = (void *)"by hand";
  iov.iov_len = 7;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = cb.b;
  m.msg_controllen = CMSG_SPACE(2 * sizeof(int));
  cm = CMSG_FIRSTHDR(&m);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
  memcpy(CMSG_DATA(cm), (int[]){sk, sk}, 2 * sizeof(int));
  assert_int_equal(sendmsg(sv[1], &m, 0), 7);
  assert_sp(sockpass_recv(c, got, &n, buf, &len), 0);
  assert_int_equal(n, 2);
  assert_int_equal(len, 7);
  assert_memory_equal(buf, "by hand", 7);
  assert_int_equal(sp_sock_port(got[0]), port);
  assert_int_equal(sp_sock_port(got[1]), port);
  close(got[0]);
  close(got[1]);
  /* And back: sockpass_send read by a plain recvmsg. */
  assert_sp(sockpass_send(c, &sk, 1, "back", 4), 0);
  n = 0;
  assert_int_equal(sp_raw_recv(sv[1], buf, sizeof buf, got, 2, &n), 4);
  assert_int_equal(n, 1);
  assert_int_equal(sp_sock_port(got[0]), port);
  close(got[0]);
  close(sk);
  close(sv[1]);
  sockpass_close(c);
}

/* ---- Named endpoints on the filesystem. ---- */

static void tmp_name(char *buf, size_t n, const char *what) {
  snprintf(buf, n, "/tmp/sockpass-%s-%ld.sock", what, (long)getpid());
}

static void listen_mode_and_cleanup(void **s) {
  char path[108];
  sockpass_chan_t *l;
  struct stat st;
  tmp_name(path, sizeof path, "mode");
  unlink(path);
  assert_sp(sockpass_listen(path, &l), 0);
  assert_int_equal(lstat(path, &st), 0);
  assert_true(S_ISSOCK(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0600);
  sockpass_close(l);
  assert_int_not_equal(lstat(path, &st), 0); /* removed by close */
}

static void listen_refuses_regular_file(void **s) {
  char path[108];
  sockpass_chan_t *l = (sockpass_chan_t *)&l;
  struct stat st;
  int fd;
  tmp_name(path, sizeof path, "file");
  fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "keep", 4), 4);
  close(fd);
  assert_sp(sockpass_listen(path, &l), SOCKPASS_EADDRINUSE);
  assert_null(l);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_size, 4); /* untouched */
  unlink(path);
}

static void listen_replaces_stale_socket(void **s) {
  char path[108];
  struct sockaddr_un sa;
  sockpass_chan_t *l, *c, *srv;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  tmp_name(path, sizeof path, "stale");
  unlink(path);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  strcpy(sa.sun_path, path);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  close(fd); /* a crashed server leaves this behind */
  assert_sp(sockpass_listen(path, &l), 0);
  assert_sp(sockpass_connect(path, &c), 0);
  assert_sp(sockpass_accept(l, &srv), 0);
  sockpass_close(srv);
  sockpass_close(c);
  sockpass_close(l);
  /* A stale file with nothing listening: connect says so. */
  fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  close(fd);
  c = (sockpass_chan_t *)&c;
  assert_sp(sockpass_connect(path, &c), SOCKPASS_ECONNREFUSED);
  assert_null(c);
  unlink(path);
}

static void close_keeps_replaced_file(void **s) {
  char path[108];
  sockpass_chan_t *l;
  struct stat st;
  int fd;
  tmp_name(path, sizeof path, "replaced");
  unlink(path);
  assert_sp(sockpass_listen(path, &l), 0);
  unlink(path);
  fd = open(path, O_CREAT | O_WRONLY, 0600); /* someone else's file now */
  assert_true(fd >= 0);
  close(fd);
  sockpass_close(l);
  assert_int_equal(stat(path, &st), 0);
  unlink(path);
}

#ifdef __linux__
static void abstract_namespace(void **s) {
  char name[64];
  sockpass_chan_t *l, *c, *srv;
  unsigned short port;
  int sk, got = -1;
  size_t n = 1, len = 0;
  assert_sp(sockpass_listen("@", &l), SOCKPASS_EINVAL); /* would autobind */
  assert_sp(sockpass_connect("@", &c), SOCKPASS_EINVAL);
  snprintf(name, sizeof name, "@sockpass-abstract-%ld", (long)getpid());
  assert_sp(sockpass_listen(name, &l), 0);
  assert_sp(sockpass_connect(name, &c), 0);
  assert_sp(sockpass_accept(l, &srv), 0);
  sk = sp_udp_socket(&port);
  assert_sp(sockpass_send(c, &sk, 1, NULL, 0), 0);
  assert_sp(sockpass_recv(srv, &got, &n, NULL, &len), 0);
  assert_int_equal(sp_sock_port(got), port);
  close(got);
  close(sk);
  sockpass_close(srv);
  sockpass_close(c);
  sockpass_close(l);
}
#endif

/* An empty record from a raw peer is not the end of the channel. */
static void empty_record_is_not_eof(void **s) {
  int sv[2];
  sockpass_chan_t *c;
  char buf[4];
  size_t n = 0, len = sizeof buf;
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  assert_sp(sockpass_open(sv[0], &c), 0);
  assert_int_equal(send(sv[1], "", 0, 0), 0);
  assert_int_equal(send(sv[1], "x", 1, 0), 1);
  assert_sp(sockpass_recv(c, NULL, &n, buf, &len), SOCKPASS_EPROTO);
  n = 0;
  len = sizeof buf;
  assert_sp(sockpass_recv(c, NULL, &n, buf, &len), 0);
  assert_int_equal(len, 1);
  close(sv[1]);
  n = 0;
  len = sizeof buf;
  assert_sp(sockpass_recv(c, NULL, &n, buf, &len), SOCKPASS_EOF);
  sockpass_close(c);
}

static const sp_role_t roles[] = {{"emfile_b", emfile_b}};

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      SP_TEST(received_are_cloexec),
      SP_TEST(pipes_and_files_travel),
      SP_TEST(adopt_sets_cloexec),
      SP_TEST(open_refuses_others),
      SP_TEST(eintr_is_retried),
      SP_TEST(eintr_blocked_recv),
      SP_TEST(eintr_blocked_send),
      SP_TEST(cancel_clear_then_sleeps),
      SP_TEST(every_descriptor_cloexec),
      SP_TEST(no_sigpipe),
      SP_TEST(emfile_process),
      SP_TEST(one_descriptor_left),
      SP_TEST(stream_partial_writes),
      SP_TEST(dgram_channel),
      SP_TEST(raw_peer),
      SP_TEST(empty_record_is_not_eof),
      SP_TEST(listen_mode_and_cleanup),
      SP_TEST(listen_refuses_regular_file),
      SP_TEST(listen_replaces_stale_socket),
      SP_TEST(close_keeps_replaced_file),
#ifdef __linux__
      SP_TEST(abstract_namespace),
#endif
  };
  return sp_test_main(argc, argv, "posix", tests, sizeof tests / sizeof tests[0], roles,
                      sizeof roles / sizeof roles[0]);
}
