/* SPDX-License-Identifier: MIT */
/* Every public function with bad arguments, the error table and the version. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <sys/un.h>
#include <time.h>
#endif

static void version(void **s) {
  char want[32];
  assert_int_equal(sockpass_version(), SOCKPASS_VERSION_HEX);
  snprintf(want, sizeof want, "%d.%d.%d", SOCKPASS_VERSION_MAJOR, SOCKPASS_VERSION_MINOR,
           SOCKPASS_VERSION_PATCH);
  assert_string_equal(sockpass_version_string(), want);
}

static void error_table(void **s) {
  static const struct {
    int code;
    const char *name;
  } all[] = {
#define SP_ROW(name, value, text) {SOCKPASS_##name, #name},
      SOCKPASS_ERRNO_MAP(SP_ROW)
#undef SP_ROW
  };
  size_t i, j;
  for (i = 0; i < sizeof all / sizeof all[0]; i++) {
    const char *text = sockpass_strerror(all[i].code);
    assert_true(all[i].code < 0);
    assert_string_equal(sockpass_err_name(all[i].code), all[i].name);
    assert_non_null(text);
    assert_true(strlen(text) > 3);
    assert_int_equal(sockpass_syserr(all[i].code), 0);
    for (j = 0; j < i; j++) {
      assert_int_not_equal(all[i].code, all[j].code);
      assert_string_not_equal(text, sockpass_strerror(all[j].code));
    }
  }
  assert_string_equal(sockpass_err_name(-1), "UNKNOWN");
  assert_string_equal(sockpass_strerror(-1), "unknown error");
  assert_string_equal(sockpass_strerror(12345), "unknown error");
  assert_string_equal(sockpass_strerror(0), "success");
  /* An OS error with no code of its own keeps its number and its text. */
  assert_int_equal(sockpass_syserr(SOCKPASS_SYSERR(5)), 5);
  assert_string_equal(sockpass_err_name(SOCKPASS_SYSERR(5)), "SYSERR");
  assert_true(strlen(sockpass_strerror(SOCKPASS_SYSERR(5))) > 0);
  assert_string_not_equal(sockpass_strerror(SOCKPASS_SYSERR(5)), "unknown error");
}

static void channel_args(void **s) {
  sockpass_chan_t *a = (sockpass_chan_t *)&a, *b = (sockpass_chan_t *)&b;
  /* On error both are NULL, whichever can be written (docs/api.md). */
  assert_sp(sockpass_pair(NULL, &b), SOCKPASS_EINVAL);
  assert_null(b);
  assert_sp(sockpass_pair(&a, NULL), SOCKPASS_EINVAL);
  assert_null(a);
  a = (sockpass_chan_t *)&a;
  assert_sp(sockpass_pair(&a, &a), SOCKPASS_EINVAL);
  assert_null(a);
  a = (sockpass_chan_t *)&a;
  assert_sp(sockpass_listen(NULL, &a), SOCKPASS_EINVAL);
  assert_null(a);
  a = (sockpass_chan_t *)&a;
  assert_sp(sockpass_listen("", &a), SOCKPASS_EINVAL);
  assert_null(a);
  assert_sp(sockpass_listen("x", NULL), SOCKPASS_EINVAL);
  assert_sp(sockpass_accept(NULL, &a), SOCKPASS_EINVAL);
  assert_sp(sockpass_connect(NULL, &a), SOCKPASS_EINVAL);
  assert_sp(sockpass_connect("", &a), SOCKPASS_EINVAL);
  assert_sp(sockpass_connect("x", NULL), SOCKPASS_EINVAL);
  assert_sp(sockpass_open(SOCKPASS_INVALID_HANDLE, &a), SOCKPASS_EBADF);
  assert_null(a);
  assert_true(sockpass_handle(NULL) == SOCKPASS_INVALID_HANDLE);
  sockpass_close(NULL);
  assert_sp(sockpass_set_timeout(NULL, 0), SOCKPASS_EINVAL);
  assert_sp(sockpass_cancel(NULL), SOCKPASS_EINVAL);
  assert_sp(sockpass_cancel_clear(NULL), SOCKPASS_EINVAL);

  assert_sp(sockpass_pair(&a, &b), 0);
  assert_non_null(a);
  assert_non_null(b);
  assert_true(sockpass_handle(a) != SOCKPASS_INVALID_HANDLE);
  assert_sp(sockpass_set_timeout(a, -2), SOCKPASS_EINVAL);
  assert_sp(sockpass_accept(a, NULL), SOCKPASS_EINVAL);
  {
    sockpass_chan_t *c = (sockpass_chan_t *)&c;
    assert_sp(sockpass_accept(a, &c), SOCKPASS_EINVAL); /* not a listener */
    assert_null(c);
  }
  sockpass_close(a);
  sockpass_close(b);
}

/* sockpass_open takes ownership even when it fails. */
static void open_takes_ownership(void **s) {
  sockpass_chan_t *a, *b;
  int before;
  assert_sp(sockpass_pair(&a, &b), 0);
  before = sp_count_fds();
#ifdef _WIN32
  {
    HANDLE h;
    assert_true(DuplicateHandle(GetCurrentProcess(), sockpass_handle(a), GetCurrentProcess(), &h,
                                0, FALSE, DUPLICATE_SAME_ACCESS));
    assert_int_equal(sp_count_fds(), before + 1);
    assert_sp(sockpass_open(h, NULL), SOCKPASS_EINVAL);
  }
#else
  {
    int fd = dup(sockpass_handle(a));
    assert_true(fd >= 0);
    assert_int_equal(sp_count_fds(), before + 1);
    assert_sp(sockpass_open(fd, NULL), SOCKPASS_EINVAL);
  }
#endif
  assert_int_equal(sp_count_fds(), before);
  sockpass_close(a);
  sockpass_close(b);
}

static void send_args(void **s) {
  sockpass_chan_t *a, *b;
  sockpass_sock_t socks[SOCKPASS_MAX_SOCKS + 1];
  unsigned short port;
  char *big = calloc(1, SOCKPASS_MAX_PAYLOAD + 1), buf[8];
  size_t i, n, len;
  assert_non_null(big);
  assert_sp(sockpass_pair(&a, &b), 0);
  socks[0] = sp_udp_socket(&port);
  assert_true(socks[0] != SOCKPASS_INVALID_SOCK);
  for (i = 1; i <= SOCKPASS_MAX_SOCKS; i++)
    socks[i] = socks[0];
  assert_sp(sockpass_send(NULL, socks, 1, "x", 1), SOCKPASS_EINVAL);
  assert_sp(sockpass_send(a, NULL, 1, "x", 1), SOCKPASS_EINVAL);
  assert_sp(sockpass_send(a, socks, 1, NULL, 1), SOCKPASS_EINVAL);
  assert_sp(sockpass_send(a, NULL, 0, NULL, 0), SOCKPASS_EINVAL);
  assert_sp(sockpass_send(a, socks, 0, "x", 0), SOCKPASS_EINVAL);
  /* Above the kernel's per-message limit (Linux SCM_MAX_FD is 253). */
  assert_sp(sockpass_send(a, socks, SOCKPASS_MAX_SOCKS + 1, "x", 1), SOCKPASS_ETOOMANY);
  assert_sp(sockpass_send(a, socks, 1, big, SOCKPASS_MAX_PAYLOAD + 1), SOCKPASS_EMSGSIZE);
  {
    sockpass_sock_t bad[2];
    bad[0] = socks[0];
    bad[1] = SOCKPASS_INVALID_SOCK;
    assert_sp(sockpass_send(a, bad, 2, "x", 1), SOCKPASS_EBADF);
  }
  /* None of the refused messages reached the peer. */
  assert_sp(sockpass_set_timeout(b, SOCKPASS_NONBLOCK), 0);
  n = 0;
  len = sizeof buf;
  assert_sp(sockpass_recv(b, NULL, &n, buf, &len), SOCKPASS_EAGAIN);
  sockpass_close_sock(socks[0]);
  sockpass_close(a);
  sockpass_close(b);
  free(big);
}

static void recv_args(void **s) {
  sockpass_chan_t *a, *b;
  sockpass_sock_t sk[2];
  char buf[8];
  size_t n = 2, len = sizeof buf;
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_recv(b, sk, NULL, buf, &len), SOCKPASS_EINVAL);
  assert_sp(sockpass_recv(b, sk, &n, buf, NULL), SOCKPASS_EINVAL);
  n = 2;
  len = sizeof buf;
  assert_sp(sockpass_recv(NULL, sk, &n, buf, &len), SOCKPASS_EINVAL);
  assert_int_equal(n, 0);
  assert_int_equal(len, 0);
  n = 2;
  len = sizeof buf;
  assert_sp(sockpass_recv(b, NULL, &n, buf, &len), SOCKPASS_EINVAL);
  n = 2;
  len = sizeof buf;
  assert_sp(sockpass_recv(b, sk, &n, NULL, &len), SOCKPASS_EINVAL);
  sockpass_close(a);
  sockpass_close(b);
}

static void sock_args(void **s) {
  sockpass_sock_t out = 0;
  sockpass_peer_t p;
  sockpass_chan_t *a, *b;
  assert_sp(sockpass_adopt(SOCKPASS_INVALID_SOCK, &out), SOCKPASS_EBADF);
  assert_true(out == SOCKPASS_INVALID_SOCK);
  assert_sp(sockpass_adopt(0, NULL), SOCKPASS_EINVAL);
  assert_sp(sockpass_close_sock(SOCKPASS_INVALID_SOCK), SOCKPASS_EBADF);
  assert_sp(sockpass_peer(NULL, &p), SOCKPASS_EINVAL);
  assert_int_equal(p.pid, -1);
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_peer(a, NULL), SOCKPASS_EINVAL);
  sockpass_close(a);
  sockpass_close(b);
}

/* A socket value that arrived by another route is checked and made ready. */
static void adopt_socket(void **s) {
  unsigned short port;
  sockpass_sock_t raw = sp_udp_socket(&port), ready = SOCKPASS_INVALID_SOCK;
  assert_true(raw != SOCKPASS_INVALID_SOCK);
  assert_sp(sockpass_adopt(raw, &ready), 0);
  assert_true(ready != SOCKPASS_INVALID_SOCK);
  assert_int_equal(sp_sock_port(ready), port);
  sockpass_close_sock(ready);
}

static void name_too_long(void **s) {
  char name[400];
  sockpass_chan_t *c = (sockpass_chan_t *)&c;
#ifdef _WIN32
  memset(name, 'n', sizeof name - 1);
#else
  memcpy(name, "/tmp/", 5);
  memset(name + 5, 'n', sizeof name - 6);
#endif
  name[sizeof name - 1] = '\0';
  assert_sp(sockpass_listen(name, &c), SOCKPASS_ENAMETOOLONG);
  assert_null(c);
  assert_sp(sockpass_connect(name, &c), SOCKPASS_ENAMETOOLONG);
}

/* The peer check on connected channels and on a listener, portable part:
 * this process is the peer, so same-user and its own pid pass. */
static void peer_check(void **s) {
  sockpass_chan_t *a, *b, *l, *c, *d;
  char name[64];
  (void)s;
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_set_peer_check(NULL, SOCKPASS_PEER_ANY, 0), SOCKPASS_EINVAL);
  assert_sp(sockpass_set_peer_check(a, 7, 0), SOCKPASS_EINVAL);
  assert_sp(sockpass_set_peer_check(a, SOCKPASS_PEER_PID, 0), SOCKPASS_EINVAL);
  assert_sp(sockpass_set_peer_check(a, SOCKPASS_PEER_ANY, 0), 0);
  assert_sp(sockpass_set_peer_check(a, SOCKPASS_PEER_SAME_USER, 0), 0);
  assert_sp(sockpass_set_peer_check(b, SOCKPASS_PEER_PID, sp_getpid()), 0);
  /* A pid that is not the peer: refused, and the channel still works. */
  assert_sp(sockpass_set_peer_check(a, SOCKPASS_PEER_PID, sp_getpid() + 1), SOCKPASS_EPERM);
  assert_sp(sockpass_send(a, NULL, 0, "x", 1), 0);
  sockpass_close(a);
  sockpass_close(b);

#ifdef _WIN32
  snprintf(name, sizeof name, "sockpass-check-%ld", sp_getpid());
#else
  snprintf(name, sizeof name, "/tmp/sockpass-check-%ld.sock", sp_getpid());
#endif
  assert_sp(sockpass_listen(name, &l), 0);
  /* Only some other process may connect: this one is dropped at accept. */
  assert_sp(sockpass_set_peer_check(l, SOCKPASS_PEER_PID, sp_getpid() + 1), 0);
  assert_sp(sockpass_set_timeout(l, 300), 0);
  assert_sp(sockpass_connect(name, &c), 0);
  assert_sp(sockpass_accept(l, &d), SOCKPASS_ETIMEDOUT);
  {
    char buf[4];
    size_t n = 0, len = sizeof buf;
    assert_sp(sockpass_set_timeout(c, sp_scale_ms(5000)), 0);
    assert_sp(sockpass_recv(c, NULL, &n, buf, &len), SOCKPASS_EOF);
  }
  sockpass_close(c);
  /* This process's own pid passes. */
  assert_sp(sockpass_set_peer_check(l, SOCKPASS_PEER_PID, sp_getpid()), 0);
  assert_sp(sockpass_connect(name, &c), 0);
  assert_sp(sockpass_accept(l, &d), 0);
  sockpass_close(c);
  sockpass_close(d);
  sockpass_close(l);
}

/* A connect that cannot be taken (full backlog / every instance busy) waits
 * at most its timeout, and leaves nothing behind in the listener. */
static long sp_now_ms(void) {
#ifdef _WIN32
  return (long)GetTickCount64();
#else
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
#endif
}

static void connect_timeout(void **s) {
  char name[128];
  sockpass_chan_t *c = (sockpass_chan_t *)&c, *first = NULL, *d = NULL;
  long t0, took;
#ifdef _WIN32
  sockpass_chan_t *l;
#else
  struct sockaddr_un sa;
  int l, fd;
#endif
  (void)s;
  assert_sp(sockpass_connect_timeout("x", -2, &c), SOCKPASS_EINVAL);
  assert_null(c);
  assert_sp(sockpass_connect_timeout(NULL, 0, &c), SOCKPASS_EINVAL);
  assert_sp(sockpass_connect_timeout("x", 0, NULL), SOCKPASS_EINVAL);
#ifdef _WIN32
  snprintf(name, sizeof name, "sockpass-ct-%ld", sp_getpid());
  assert_sp(sockpass_connect_timeout(name, 100, &c), SOCKPASS_ENOENT);
  /* The listener's one waiting instance is taken by the first client. */
  assert_sp(sockpass_listen(name, &l), 0);
  assert_sp(sockpass_connect_timeout(name, SOCKPASS_WAIT_FOREVER, &first), 0);
#else
  snprintf(name, sizeof name, "/tmp/sockpass-ct-%ld.sock", sp_getpid());
  unlink(name);
  assert_sp(sockpass_connect_timeout(name, 100, &c), SOCKPASS_ENOENT);
  /* A listener with a backlog of 0 takes one queued connection, then its
   * backlog is full. */
  l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  assert_true(l >= 0);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, name, strlen(name) + 1);
  assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(l, 0), 0);
  assert_sp(sockpass_connect_timeout(name, SOCKPASS_WAIT_FOREVER, &first), 0);
#endif
  assert_sp(sockpass_connect_timeout(name, SOCKPASS_NONBLOCK, &c), SOCKPASS_EAGAIN);
  assert_null(c);
  t0 = sp_now_ms();
  assert_sp(sockpass_connect_timeout(name, 300, &c), SOCKPASS_ETIMEDOUT);
  took = sp_now_ms() - t0;
  assert_null(c);
  assert_true(took >= 290);
  assert_true(took < sp_scale_ms(5000));
  /* Exactly the first client is there to accept. */
#ifdef _WIN32
  assert_sp(sockpass_set_timeout(l, sp_scale_ms(5000)), 0);
  assert_sp(sockpass_accept(l, &d), 0);
  assert_sp(sockpass_set_timeout(l, SOCKPASS_NONBLOCK), 0);
  assert_sp(sockpass_accept(l, &c), SOCKPASS_EAGAIN);
  /* Now an instance waits again: a bounded connect gets it. */
  assert_sp(sockpass_connect_timeout(name, sp_scale_ms(5000), &c), 0);
  sockpass_close(c);
  sockpass_close(l);
#else
  fd = accept(l, NULL, NULL);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(fcntl(l, F_SETFL, O_NONBLOCK), 0);
  assert_int_equal(accept(l, NULL, NULL), -1);
  assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
  /* Room again: a bounded connect is taken. */
  assert_sp(sockpass_connect_timeout(name, sp_scale_ms(5000), &c), 0);
  assert_int_equal(fcntl(sockpass_handle(c), F_GETFL) & O_NONBLOCK, 0);
  sockpass_close(c);
  close(l);
  unlink(name);
#endif
  sockpass_close(d);
  sockpass_close(first);
}

/* sd_is_socket-like checks of family, type, listening state and port. */
/* A socket value that is closed, or a live handle of another kind, in a
 * message: EBADF and ENOTSOCK on both OSes where the OS can tell. */
static void send_dead_socket(void **s) {
  sockpass_chan_t *a, *b;
  unsigned short port;
  sockpass_sock_t u = sp_udp_socket(&port), dead;
  (void)s;
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_set_timeout(a, sp_scale_ms(5000)), 0);
  dead = u;
  sockpass_close_sock(u);
  assert_sp(sockpass_send(a, &dead, 1, "x", 1), SOCKPASS_EBADF);
#ifdef _WIN32
  {
    HANDLE ev = CreateEventA(NULL, TRUE, FALSE, NULL);
    sockpass_sock_t notsock = (sockpass_sock_t)ev;
    assert_sp(sockpass_send(a, &notsock, 1, "x", 1), SOCKPASS_ENOTSOCK);
    CloseHandle(ev);
  }
#endif
  /* Nothing of the failed messages reached the peer. */
  {
    char buf[4];
    size_t n = 0, len = sizeof buf;
    assert_sp(sockpass_set_timeout(b, SOCKPASS_NONBLOCK), 0);
    assert_sp(sockpass_recv(b, NULL, &n, buf, &len), SOCKPASS_EAGAIN);
  }
  sockpass_close(a);
  sockpass_close(b);
}

static void sock_is(void **s) {
  unsigned short port, uport;
  sockpass_sock_t l = sp_tcp_listener(&port), u = sp_udp_socket(&uport), c;
  (void)s;
  assert_true(l != SOCKPASS_INVALID_SOCK && u != SOCKPASS_INVALID_SOCK);
  c = sp_tcp_connect(port);
  assert_true(c != SOCKPASS_INVALID_SOCK);
  assert_int_equal(sockpass_sock_is(l, AF_INET, SOCK_STREAM, 1), 1);
  assert_int_equal(sockpass_sock_is(l, 0, 0, -1), 1);
  assert_int_equal(sockpass_sock_is(l, AF_INET6, 0, -1), 0);
  assert_int_equal(sockpass_sock_is(l, 0, SOCK_DGRAM, -1), 0);
  assert_int_equal(sockpass_sock_is(l, 0, 0, 0), 0);
  assert_int_equal(sockpass_sock_is(c, AF_INET, SOCK_STREAM, 0), 1);
  assert_int_equal(sockpass_sock_is(c, 0, 0, 1), 0);
  assert_int_equal(sockpass_sock_is(u, AF_INET, SOCK_DGRAM, 0), 1);
  assert_int_equal(sockpass_sock_is_inet(l, 0, SOCK_STREAM, 1, port), 1);
  assert_int_equal(sockpass_sock_is_inet(l, AF_INET, 0, -1, 0), 1);
  assert_int_equal(sockpass_sock_is_inet(l, 0, 0, -1, (unsigned short)(port + 1)), 0);
  assert_int_equal(sockpass_sock_is_inet(u, 0, SOCK_DGRAM, -1, uport), 1);
  assert_sp(sockpass_sock_is(SOCKPASS_INVALID_SOCK, 0, 0, -1), SOCKPASS_EBADF);
  assert_sp(sockpass_sock_is(l, 0, 0, 2), SOCKPASS_EINVAL);
  assert_sp(sockpass_sock_is(l, -1, 0, -1), SOCKPASS_EINVAL);
  assert_sp(sockpass_sock_is_inet(l, AF_UNIX, 0, -1, 0), SOCKPASS_EINVAL);
#ifndef _WIN32
  {
    sockpass_chan_t *a, *b;
    int p[2];
    assert_sp(sockpass_pair(&a, &b), 0);
    assert_int_equal(sockpass_sock_is(sockpass_handle(a), AF_UNIX, 0, 0), 1);
    assert_int_equal(sockpass_sock_is_inet(sockpass_handle(a), 0, 0, -1, 0), 0);
    sockpass_close(a);
    sockpass_close(b);
    assert_int_equal(pipe(p), 0);
    assert_sp(sockpass_sock_is(p[0], 0, 0, -1), SOCKPASS_ENOTSOCK);
    close(p[0]);
    close(p[1]);
  }
#else
  {
    HANDLE ev = CreateEventA(NULL, TRUE, FALSE, NULL);
    assert_sp(sockpass_sock_is((SOCKET)ev, 0, 0, -1), SOCKPASS_ENOTSOCK);
    CloseHandle(ev);
  }
#endif
  sockpass_close_sock(c);
  sockpass_close_sock(l);
  sockpass_close_sock(u);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      SP_TEST(version),    SP_TEST(error_table),  SP_TEST(channel_args),
      SP_TEST(open_takes_ownership), SP_TEST(send_args), SP_TEST(recv_args),
      SP_TEST(sock_args),  SP_TEST(adopt_socket), SP_TEST(name_too_long), SP_TEST(peer_check),
      SP_TEST(connect_timeout), SP_TEST(sock_is), SP_TEST(send_dead_socket),
  };
  return sp_test_main(argc, argv, "api", tests, sizeof tests / sizeof tests[0], NULL, 0);
}
