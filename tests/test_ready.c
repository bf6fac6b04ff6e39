/* SPDX-License-Identifier: MIT */
/*
 * sockpass_ready_handle: what a caller's own poll / WaitForMultipleObjects
 * loop waits on. It must wake for a message that is queued (in the kernel,
 * or already read into the library's buffer) and must not wake on an empty
 * channel; the same for a listener with a connection waiting.
 */
#include "harness.h"

#include <string.h>

#ifndef _WIN32
#include <poll.h>
#include <time.h>
#endif

static uint64_t sp_now_ms(void) {
#ifdef _WIN32
  return GetTickCount64();
#else
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
#endif
}

/* 1 when h became ready within ms, 0 when not. */
static int ready_within(sockpass_handle_t h, int ms) {
#ifdef _WIN32
  return WaitForSingleObject(h, (DWORD)ms) == WAIT_OBJECT_0;
#else
  struct pollfd p;
  p.fd = h;
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, ms) == 1;
#endif
}

static int armed_ready(sockpass_chan_t *c, int ms) {
  sockpass_handle_t h;
  if (sockpass_ready_handle(c, &h) != 0)
    return -1;
  return ready_within(h, ms);
}

static void ready_args(void **state) {
  sockpass_chan_t *a, *b;
  sockpass_handle_t h = (sockpass_handle_t)0;
  (void)state;
  assert_sp(sockpass_ready_handle(NULL, &h), SOCKPASS_EINVAL);
  assert_true(h == SOCKPASS_INVALID_HANDLE);
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_ready_handle(a, NULL), SOCKPASS_EINVAL);
  assert_sp(sockpass_set_send_timeout(NULL, 0), SOCKPASS_EINVAL);
  assert_sp(sockpass_set_send_timeout(a, -2), SOCKPASS_EINVAL);
  sockpass_close(a);
  sockpass_close(b);
}

/* Empty: no wake. A message: wake. Taken: no wake again. */
static void ready_message(void **state) {
  sockpass_chan_t *a, *b;
  char buf[8];
  size_t n = 0, len = sizeof buf;
  (void)state;
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_set_timeout(b, SOCKPASS_NONBLOCK), 0);
  assert_int_equal(armed_ready(b, 200), 0);
  assert_sp(sockpass_send(a, NULL, 0, "one", 3), 0);
  assert_int_equal(armed_ready(b, 10000), 1);
  assert_sp(sockpass_recv(b, NULL, &n, buf, &len), 0);
  assert_int_equal(len, 3);
  assert_int_equal(armed_ready(b, 200), 0);
  n = 0;
  len = sizeof buf;
  assert_sp(sockpass_recv(b, NULL, &n, buf, &len), SOCKPASS_EAGAIN);
  sockpass_close(a);
  sockpass_close(b);
}

/* Three messages go out before the receiver looks; one receive may read all
 * of them into the library's buffer (Windows reads what the pipe holds). The
 * two left must still wake the waiter, with the pipe itself empty. */
static void ready_buffered(void **state) {
  sockpass_chan_t *a, *b;
  char buf[8];
  int i;
  (void)state;
  assert_sp(sockpass_pair(&a, &b), 0);
  for (i = 0; i < 3; i++)
    assert_sp(sockpass_send(a, NULL, 0, "m", 1), 0);
  sp_sleep_ms(50);
  assert_sp(sockpass_set_timeout(b, SOCKPASS_NONBLOCK), 0);
  for (i = 0; i < 3; i++) {
    size_t n = 0, len = sizeof buf;
    assert_int_equal(armed_ready(b, 10000), 1);
    assert_sp(sockpass_recv(b, NULL, &n, buf, &len), 0);
  }
  assert_int_equal(armed_ready(b, 200), 0);
  sockpass_close(a);
  sockpass_close(b);
}

/* The peer closed: the waiter wakes and the receive says SOCKPASS_EOF. */
static void ready_eof(void **state) {
  sockpass_chan_t *a, *b;
  char buf[8];
  size_t n = 0, len = sizeof buf;
  (void)state;
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_set_timeout(b, SOCKPASS_NONBLOCK), 0);
  assert_int_equal(armed_ready(b, 100), 0);
  sockpass_close(a);
  assert_int_equal(armed_ready(b, 10000), 1);
  assert_sp(sockpass_recv(b, NULL, &n, buf, &len), SOCKPASS_EOF);
  sockpass_close(b);
}

/* A listener: wakes when a client connects, not before, not after. */
static void ready_listener(void **state) {
  sockpass_chan_t *l, *c, *s = NULL;
  char name[96];
  (void)state;
#ifdef _WIN32
  snprintf(name, sizeof name, "sockpass-ready-%ld", sp_getpid());
#else
  snprintf(name, sizeof name, "@sockpass-ready-%ld", sp_getpid());
#endif
  assert_sp(sockpass_listen(name, &l), 0);
  assert_sp(sockpass_set_timeout(l, SOCKPASS_NONBLOCK), 0);
  assert_int_equal(armed_ready(l, 200), 0);
  assert_sp(sockpass_accept(l, &s), SOCKPASS_EAGAIN);
  assert_int_equal(armed_ready(l, 100), 0);
  assert_sp(sockpass_connect(name, &c), 0);
  assert_int_equal(armed_ready(l, 10000), 1);
  assert_sp(sockpass_accept(l, &s), 0);
  assert_non_null(s);
  assert_int_equal(armed_ready(l, 200), 0);
  sockpass_close(s);
  sockpass_close(c);
  sockpass_close(l);
}

/* The send timeout alone: a full channel's send waits that long, while its
 * receives stay non-blocking. */
static void send_timeout_alone(void **state) {
  sockpass_chan_t *a, *b;
  static char chunk[1000];
  char buf[8];
  size_t n = 0, len = sizeof buf;
  uint64_t t0, ms;
  int i, rc = 0;
  (void)state;
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_set_timeout(a, SOCKPASS_NONBLOCK), 0);
  assert_sp(sockpass_set_send_timeout(a, SOCKPASS_NONBLOCK), 0);
  for (i = 0; i < 5000 && (rc = sockpass_send(a, NULL, 0, chunk, sizeof chunk)) == 0; i++)
    ;
  assert_sp(rc, SOCKPASS_EAGAIN);
  assert_sp(sockpass_set_send_timeout(a, 150), 0);
  t0 = sp_now_ms();
  assert_sp(sockpass_send(a, NULL, 0, chunk, sizeof chunk), SOCKPASS_ETIMEDOUT);
  ms = sp_now_ms() - t0;
  assert_true(ms >= 140);
  /* Receives kept their own timeout: non-blocking, nothing there (a
   * receive given the send timeout would end in ETIMEDOUT after 150 ms; the
   * time bound only catches a receive that blocks, so it is loose). */
  t0 = sp_now_ms();
  assert_sp(sockpass_recv(a, NULL, &n, buf, &len), SOCKPASS_EAGAIN);
  assert_true(sp_now_ms() - t0 < (uint64_t)sp_scale_ms(1000) * (uint64_t)sp_slow());
  /* And the other way round: sockpass_set_timeout sets both. */
  assert_sp(sockpass_set_timeout(a, SOCKPASS_NONBLOCK), 0);
  assert_sp(sockpass_send(a, NULL, 0, chunk, sizeof chunk), SOCKPASS_EAGAIN);
  sockpass_close(a);
  sockpass_close(b);
}

/* Another process sends 200 messages, some with sockets, at its own pace;
 * a wait loop that only ever receives after a wake gets them all. */
#define READY_MSGS 200

static int role_pace(sockpass_chan_t *chan) {
  unsigned char m[4];
  unsigned short port;
  sockpass_sock_t u = sp_udp_socket(&port);
  int i;
  for (i = 0; i < READY_MSGS; i++) {
    sp_put32(m, (uint32_t)i);
    SP_CHECK_RC(sockpass_send(chan, &u, (size_t)(i % 2), m, 4), 0);
    if (i % 16 == 0)
      sp_sleep_ms(5);
  }
  sockpass_close_sock(u);
  return 0;
}

static int role_wait_loop(sockpass_chan_t *chan) {
  int got = 0, wakes = 0;
  SP_CHECK_RC(sockpass_set_timeout(chan, SOCKPASS_NONBLOCK), 0);
  while (got < READY_MSGS) {
    int rc;
    SP_CHECK(armed_ready(chan, 20000) == 1);
    wakes++;
    while (got < READY_MSGS) {
      sockpass_sock_t s[1];
      unsigned char m[8];
      size_t n = 1, len = sizeof m;
      rc = sockpass_recv(chan, s, &n, m, &len);
      if (rc == SOCKPASS_EAGAIN)
        break;
      if (rc != 0)
        fprintf(stderr, "after %d of %d messages:\n", got, READY_MSGS);
      SP_CHECK_RC(rc, 0);
      SP_CHECK(len == 4 && sp_get32(m) == (uint32_t)got && n == (size_t)(got % 2));
      if (n == 1)
        sockpass_close_sock(s[0]);
      got++;
    }
  }
  SP_CHECK(wakes <= READY_MSGS);
  return 0;
}

static void ready_process(void **state) {
  (void)state;
  sp_run_process(role_wait_loop, "pace");
}

int main(int argc, char **argv) {
  static const struct CMUnitTest tests[] = {
      SP_TEST(ready_args),     SP_TEST(ready_message), SP_TEST(ready_buffered),
      SP_TEST(ready_eof),      SP_TEST(ready_listener), SP_TEST(ready_process),
      SP_TEST(send_timeout_alone),
  };
  static const sp_role_t roles[] = {{"pace", role_pace}};
  return sp_test_main(argc, argv, "ready", tests, sizeof tests / sizeof tests[0], roles,
                      sizeof roles / sizeof roles[0]);
}
