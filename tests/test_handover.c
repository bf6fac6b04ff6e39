/* SPDX-License-Identifier: MIT */
/* Handing over an accepted named channel end to a child (sockpass_spawn,
 * opts.chan) while the peer streams messages with sockets: the window of
 * docs/inherit.md ("Handing over a named channel end"), measured and bounded.
 *
 * Three processes per run:
 *   - this test process is the peer: it connects to the endpoint in every
 *     round and sends SP_MSGS messages, each carrying one socket, as fast as
 *     it can, then an end marker;
 *   - the parent ("--handover parent NAME ROUNDS") listens on NAME, accepts,
 *     receives the first SP_KEPT messages itself, then hands the accepted end
 *     to a child in the middle of the stream;
 *   - the child ("--handover child") reads the rest and reports to the peer
 *     how many it got, how many were SOCKPASS_EPROTO (duplicated for the
 *     parent before the child's HELLO reached the peer), and the first
 *     sequence number it got.
 * On Windows the messages in the window are lost to the child, and their
 * duplicates stay in the parent until it exits (docs/protocol.md,
 * "Lifetimes"). On POSIX there is no window: zero losses. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <sys/select.h>
#endif

#define SP_ROUNDS 12
#define SP_MSGS 1000 /* per round: more than a pipe's buffer holds */
#define SP_KEPT 2    /* messages the parent receives before the handover */
#define SP_WAIT_MS sp_scale_ms(30000)
#ifdef _WIN32
/* The most messages the window can hold: the pipe's buffer (SP_PIPE_QUOTA in
 * src/win/chan.c, 256 KiB) over one message's frame (a 40-byte header, one
 * 628-byte record, 4 bytes of payload; docs/protocol.md), plus the write
 * that waits for room. */
#define SP_FRAME_BYTES (40 + sizeof(WSAPROTOCOL_INFOW) + 4)
#define SP_WINDOW_MAX ((256 * 1024) / SP_FRAME_BYTES + 1)
#endif

static char sp_exe[4096];

/* ---- The child: reads what the parent handed over ---- */

static int sp_child_main(void) {
  sockpass_chan_t *c = NULL;
  sockpass_sock_t s[2];
  unsigned char b[16];
  uint32_t lost = 0, got = 0, first = UINT32_MAX, next = 0;
  unsigned short port;
  int before, rc;
  /* Counted before the channel is taken: once its HELLO is out, the peer
   * may place duplicates here at any moment. Winsock is started first, so
   * that its own handles are in the count. */
  sp_net_init();
  sockpass_close_sock(sp_udp_socket(&port));
  before = sp_count_fds();
  if (sockpass_inherited_chan(&c) != 0)
    return 10;
  sockpass_set_timeout(c, SP_WAIT_MS);
  for (;;) {
    size_t n = 2, len = sizeof b;
    rc = sockpass_recv(c, s, &n, b, &len);
    if (rc == SOCKPASS_EPROTO) {
      if (got > 0) {
        fprintf(stderr, "child: a lost message after a delivered one\n");
        return 11;
      }
      lost++;
      continue;
    }
    if (rc != 0) {
      fprintf(stderr, "child: recv: %s\n", sockpass_err_name(rc));
      return 12;
    }
    if (n == 0 && len == 1)
      break; /* the end marker */
    if (n != 1 || len != 4) {
      fprintf(stderr, "child: %zu sockets, %zu bytes\n", n, len);
      return 13;
    }
    sockpass_close_sock(s[0]);
    if (got == 0)
      first = next = sp_get32(b);
    if (sp_get32(b) != next) {
      fprintf(stderr, "child: message %lu where %lu was due\n", (unsigned long)sp_get32(b),
              (unsigned long)next);
      return 14;
    }
    next++;
    got++;
  }
  sp_put32(b, lost);
  sp_put32(b + 4, got);
  sp_put32(b + 8, first);
  sockpass_set_timeout(c, SP_WAIT_MS);
  if ((rc = sockpass_send(c, NULL, 0, b, 12)) != 0) {
    fprintf(stderr, "child: report: %s\n", sockpass_err_name(rc));
    return 16;
  }
  /* Wait for the peer to read the report and close its end. */
  {
    size_t n = 0, len = sizeof b;
    rc = sockpass_recv(c, NULL, &n, b, &len);
  }
  sockpass_close(c);
  if (rc != SOCKPASS_EOF)
    return 17;
  /* Every socket received was closed, and so is the inherited end. */
  if (sp_count_fds() != before - 1) {
    fprintf(stderr, "child: %d handles before, %d after\n", before, sp_count_fds());
    return 15;
  }
  return 0;
}

/* ---- The parent: listens, keeps the first messages, hands over ---- */

static int sp_parent_main(const char *name, int rounds) {
  sockpass_chan_t *ctl = NULL, *l = NULL, *c = NULL;
  unsigned char b[16];
  int round, rc;
  if (sockpass_inherited_chan(&ctl) != 0)
    return 20;
  sockpass_set_timeout(ctl, SP_WAIT_MS);
  if ((rc = sockpass_listen(name, &l)) != 0) {
    fprintf(stderr, "parent: listen %s: %s\n", name, sockpass_err_name(rc));
    return 21;
  }
  sockpass_set_timeout(l, SP_WAIT_MS);
  sp_put32(b, 0);
  if (sockpass_send(ctl, NULL, 0, b, 4) != 0)
    return 22;
  for (round = 0; round < rounds; round++) {
    const char *argv[] = {sp_exe, "--handover", "child", NULL};
    sockpass_spawn_opts_t o;
    sockpass_proc_t *p = NULL;
    int before = sp_count_fds(), code = -1, i;
    if ((rc = sockpass_accept(l, &c)) != 0) {
      fprintf(stderr, "parent: accept: %s\n", sockpass_err_name(rc));
      return 23;
    }
    sockpass_set_timeout(c, SP_WAIT_MS);
    for (i = 0; i < SP_KEPT; i++) {
      sockpass_sock_t s;
      size_t n = 1, len = sizeof b;
      if ((rc = sockpass_recv(c, &s, &n, b, &len)) != 0 || n != 1 || len != 4 ||
          sp_get32(b) != (uint32_t)i) {
        fprintf(stderr, "parent: recv %d: %s\n", i, sockpass_err_name(rc));
        return 24;
      }
      sockpass_close_sock(s);
    }
    /* The peer is streaming: hand the end over now. */
    sockpass_spawn_opts_init(&o);
    o.chan = c;
    if ((rc = sockpass_spawn(sp_exe, argv, &o, &p)) != 0) {
      fprintf(stderr, "parent: spawn: %s\n", sockpass_err_name(rc));
      return 25;
    }
    rc = sockpass_proc_wait(p, SP_WAIT_MS, &code);
    if (rc != 0)
      sockpass_proc_kill(p), sockpass_proc_wait(p, SOCKPASS_WAIT_FOREVER, NULL);
    sockpass_proc_free(p);
    if (rc != 0 || code != 0) {
      fprintf(stderr, "parent: child: %s, exit %d\n", sockpass_err_name(rc), code);
      return 26;
    }
    /* What this process holds now that it did not before the round: the
     * duplicates the peer made for it in the window. */
    sp_put32(b, (uint32_t)(sp_count_fds() - before));
    if (sockpass_send(ctl, NULL, 0, b, 4) != 0)
      return 27;
  }
  /* Live on until the peer has looked at the leftovers of the last round. */
  {
    size_t n = 0, len = sizeof b;
    if (sockpass_recv(ctl, NULL, &n, b, &len) != 0)
      return 28;
  }
  sockpass_close(l);
  sockpass_close(ctl);
  return 0;
}

/* ---- The peer: this test ---- */

/* 1 when s reads EOF (its other end is closed everywhere) within ms. */
static int sp_eof_within(sockpass_sock_t s, int ms) {
  fd_set rs;
  struct timeval tv;
  char ch;
  FD_ZERO(&rs);
  FD_SET(s, &rs);
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  if (select((int)s + 1, &rs, NULL, NULL, &tv) != 1)
    return 0;
  return recv(s, &ch, 1, 0) == 0;
}

static void handover_stream(void **state) {
  char name[128], rounds_arg[16];
  const char *argv[] = {sp_exe, "--handover", "parent", name, rounds_arg, NULL};
  sockpass_chan_t *ctl, *theirs;
  sockpass_spawn_opts_t o;
  sockpass_proc_t *p;
  sockpass_sock_t held[SP_ROUNDS];
  unsigned char b[16];
  size_t n, len;
  uint32_t lost, got, first, total = 0, minl = UINT32_MAX, maxl = 0;
  int round, i, code = -1, nheld = 0;
  (void)state;
  sp_net_init();
#ifdef _WIN32
  snprintf(name, sizeof name, "sockpass-handover-%ld", sp_getpid());
#else
  snprintf(name, sizeof name, "/tmp/sockpass-handover-%ld.sock", sp_getpid());
#endif
  snprintf(rounds_arg, sizeof rounds_arg, "%d", SP_ROUNDS);
  assert_sp(sockpass_pair(&ctl, &theirs), 0);
  sockpass_spawn_opts_init(&o);
  o.chan = theirs;
  assert_sp(sockpass_spawn(sp_exe, argv, &o, &p), 0);
  assert_sp(sockpass_set_timeout(ctl, SP_WAIT_MS), 0);
  n = 0, len = sizeof b;
  assert_sp(sockpass_recv(ctl, NULL, &n, b, &len), 0); /* listening */

  for (round = 0; round < SP_ROUNDS; round++) {
    sockpass_chan_t *c;
    sockpass_sock_t client, server;
    uint32_t growth;
    int eof;
    assert_int_equal(sp_tcp_pair(&client, &server), 0);
    assert_sp(sockpass_connect(name, &c), 0);
    assert_sp(sockpass_set_timeout(c, SP_WAIT_MS), 0);
    /* As fast as it can: one socket per message, the same one each time. */
    for (i = 0; i < SP_MSGS; i++) {
      sp_put32(b, (uint32_t)i);
      assert_sp(sockpass_send(c, &client, 1, b, 4), 0);
    }
    sockpass_close_sock(client);
    assert_sp(sockpass_send(c, NULL, 0, "E", 1), 0);
    n = 0, len = sizeof b;
    assert_sp(sockpass_recv(c, NULL, &n, b, &len), 0);
    assert_int_equal(len, 12);
    lost = sp_get32(b);
    got = sp_get32(b + 4);
    first = sp_get32(b + 8);
    sockpass_close(c);
    n = 0, len = sizeof b;
    assert_sp(sockpass_recv(ctl, NULL, &n, b, &len), 0);
    growth = sp_get32(b);
    print_message("round %d: %lu lost in the window, %lu delivered, the child's first %lu, "
                  "parent holds %ld more handles\n",
                  round, (unsigned long)lost, (unsigned long)got, (unsigned long)first,
                  (long)(int32_t)growth);

    /* Every message went somewhere: the parent's, then the window, then
     * the child's in order, with nothing in between. */
    assert_int_equal(SP_KEPT + lost + got, SP_MSGS);
    if (got > 0)
      assert_int_equal(first, SP_KEPT + lost);
    /* The window's duplicates are in the parent, one handle each; nothing
     * else grew there. */
    assert_int_equal((int32_t)growth, (int32_t)lost);
#ifndef _WIN32
    assert_int_equal(lost, 0); /* no window on POSIX */
#else
    /* The window closes once the child's HELLO is read, and the peer reads
     * HELLOs before every send with sockets: the child got the rest of the
     * stream. The window holds at most what the pipe buffers while nobody
     * reads, plus the one write waiting for room. */
    assert_true(got > 0);
    assert_in_range(lost, 0, SP_WINDOW_MAX);
#endif
    /* The socket is closed everywhere except in the parent's leftovers. */
    eof = sp_eof_within(server, lost > 0 ? 200 : SP_WAIT_MS);
    assert_int_equal(eof, lost == 0);
    if (eof)
      sockpass_close_sock(server);
    else
      held[nheld++] = server;
    total += lost;
    if (lost < minl)
      minl = lost;
    if (lost > maxl)
      maxl = lost;
  }
  assert_sp(sockpass_send(ctl, NULL, 0, "Q", 1), 0);
  assert_sp(sockpass_proc_wait(p, SP_WAIT_MS, &code), 0);
  assert_int_equal(code, 0);
  sockpass_proc_free(p);
  sockpass_close(ctl);
  /* The parent has exited: its leftovers closed with it. */
  for (i = 0; i < nheld; i++) {
    assert_true(sp_eof_within(held[i], SP_WAIT_MS));
    sockpass_close_sock(held[i]);
  }
  print_message("%d rounds of %d messages: lost in the window min %lu, max %lu, total %lu\n",
                SP_ROUNDS, SP_MSGS, (unsigned long)minl, (unsigned long)maxl, (unsigned long)total);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {SP_TEST(handover_stream)};
  sp_exe_path(sp_exe, sizeof sp_exe, argv[0]);
  if (argc >= 3 && strcmp(argv[1], "--handover") == 0) {
    if (strcmp(argv[2], "child") == 0)
      return sp_child_main();
    if (strcmp(argv[2], "parent") == 0 && argc >= 5)
      return sp_parent_main(argv[3], atoi(argv[4]));
    return 2;
  }
  return sp_test_main(argc, argv, "handover", tests, sizeof tests / sizeof tests[0], NULL, 0);
}
