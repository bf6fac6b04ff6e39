/* SPDX-License-Identifier: MIT */
/*
 * sockpass_uv: asynchronous channels on a libuv loop, adoption into libuv
 * handles, and the exchange with a plain libuv program (plain_peer.c) over
 * libuv's own IPC pipe, in both directions.
 */
#include "harness.h"

#include <sockpass_uv.h>

#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <signal.h>
#include <sys/socket.h>
#endif

/* ---- Shared ---- */

static void run_loop(uv_loop_t *loop) { uv_run(loop, UV_RUN_DEFAULT); }

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* Close what is left and free the loop's resources. */
static int loop_done(uv_loop_t *loop) {
  uv_walk(loop, close_walk, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop);
}

static void free_handle(uv_handle_t *h) { free(h); }

/* ---- Order, whole messages, many in flight: one loop, a pair ---- */

#define ORDER_MSGS 2000

typedef struct {
  int sent_ok, sent_cb;
  int got, bad;
  unsigned short ports[4];
  sockpass_sock_t socks[4];
  sockpass_uv_chan_t *a, *b;
  int closed;
} order_t;

static void order_sent(sockpass_uv_chan_t *c, int status, void *arg) {
  order_t *st = sockpass_uv_get_data(c);
  (void)arg;
  st->sent_cb++;
  if (status == 0)
    st->sent_ok++;
}

static void order_closed(sockpass_uv_chan_t *c) {
  order_t *st = sockpass_uv_get_data(c);
  st->closed++;
}

static void order_recv(sockpass_uv_chan_t *c, int status, sockpass_sock_t *socks, size_t n,
                       const void *data, size_t len) {
  order_t *st = sockpass_uv_get_data(c);
  unsigned char buf[16];
  size_t i, want_n;
  uint32_t seq;
  if (status != 0 || len < 8) {
    st->bad++;
  } else {
    memcpy(buf, data, 8);
    seq = sp_get32(buf);
    want_n = seq % 4;
    /* The payload is seq, then as many bytes again as seq says (whole). */
    if (seq != (uint32_t)st->got || n != want_n || len != 8 + seq % 64 ||
        sp_get32(buf + 4) != seq * 7u)
      st->bad++;
    for (i = 0; i < n; i++) {
      /* Order and identity: socket i is a copy of the i-th UDP socket. */
      if (sp_sock_port(socks[i]) != st->ports[i])
        st->bad++;
      sockpass_close_sock(socks[i]);
    }
  }
  if (++st->got == ORDER_MSGS) {
    sockpass_uv_close(st->a, order_closed);
    sockpass_uv_close(st->b, order_closed);
  }
}

static void uv_order_pair(void **state) {
  uv_loop_t loop;
  sockpass_chan_t *a, *b;
  order_t st;
  unsigned char msg[8 + 64];
  int i;
  (void)state;
  memset(&st, 0, sizeof st);
  assert_int_equal(uv_loop_init(&loop), 0);
  for (i = 0; i < 4; i++)
    st.socks[i] = sp_udp_socket(&st.ports[i]);
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_uv_open(&loop, a, &st.a), 0);
  assert_sp(sockpass_uv_open(&loop, b, &st.b), 0);
  sockpass_uv_set_data(st.a, &st);
  sockpass_uv_set_data(st.b, &st);
  assert_sp(sockpass_uv_recv_start(st.b, order_recv), 0);
  /* Every message queued before the loop runs: many in flight at once. */
  for (i = 0; i < ORDER_MSGS; i++) {
    memset(msg, 0xab, sizeof msg);
    sp_put32(msg, (uint32_t)i);
    sp_put32(msg + 4, (uint32_t)i * 7u);
    assert_sp(sockpass_uv_send(st.a, st.socks, (size_t)(i % 4), msg, 8 + (size_t)(i % 64),
                               order_sent, NULL),
              0);
  }
  run_loop(&loop);
  assert_int_equal(st.sent_cb, ORDER_MSGS);
  assert_int_equal(st.sent_ok, ORDER_MSGS);
  assert_int_equal(st.got, ORDER_MSGS);
  assert_int_equal(st.bad, 0);
  assert_int_equal(st.closed, 2);
  for (i = 0; i < 4; i++)
    sockpass_close_sock(st.socks[i]);
  assert_int_equal(loop_done(&loop), 0);
}

/* ---- Argument errors: returned at once, nothing queued ---- */

static void uv_bad_args(void **state) {
  uv_loop_t loop;
  sockpass_chan_t *a, *b;
  sockpass_uv_chan_t *ua = NULL;
  sockpass_sock_t bad = SOCKPASS_INVALID_SOCK;
  char big[1];
  uv_tcp_t tcp;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_uv_open(NULL, a, &ua), SOCKPASS_EINVAL);
  assert_null(ua);
  assert_sp(sockpass_uv_open(&loop, NULL, &ua), SOCKPASS_EINVAL);
  assert_sp(sockpass_uv_open(&loop, a, &ua), 0);
  /* A channel that neither receives nor sends does not keep the loop alive. */
  assert_false(uv_loop_alive(&loop));
  assert_sp(sockpass_uv_send(ua, NULL, 0, NULL, 0, NULL, NULL), SOCKPASS_EINVAL);
  assert_sp(sockpass_uv_send(ua, &bad, 1, "x", 1, NULL, NULL), SOCKPASS_EBADF);
  assert_sp(sockpass_uv_send(ua, NULL, 0, big, SOCKPASS_MAX_PAYLOAD + 1, NULL, NULL),
            SOCKPASS_EMSGSIZE);
  assert_sp(sockpass_uv_send(ua, &bad, SOCKPASS_MAX_SOCKS + 1, "x", 1, NULL, NULL),
            SOCKPASS_ETOOMANY);
  assert_sp(sockpass_uv_recv_start(ua, NULL), SOCKPASS_EINVAL);
  assert_sp(sockpass_uv_tcp_open(&loop, &tcp, SOCKPASS_INVALID_SOCK), SOCKPASS_EBADF);
  sockpass_uv_close(ua, NULL);
  sockpass_close(b);
  assert_int_equal(loop_done(&loop), 0);
}

/* ---- Two processes: echo with sockets, 10,000 messages, no growth ---- */

#define ECHO_MSGS 10000

typedef struct {
  sockpass_uv_chan_t *c;
  int got, bad, sent, inflight, fds_mid, fds_after;
  sockpass_sock_t sock;
  unsigned short port;
  int closed;
} echo_t;

static void echo_push(echo_t *st);

static void echo_sent(sockpass_uv_chan_t *c, int status, void *arg) {
  echo_t *st = sockpass_uv_get_data(c);
  (void)arg;
  if (status != 0)
    st->bad++;
  st->inflight--;
  if (!st->closed && st->got < ECHO_MSGS)
    echo_push(st);
}

/* Up to 32 messages in flight; after the first 1,000 the run pauses until
 * every one is back and every send finished, and counts (mid-run counts
 * would include sockets on their way). */
static void echo_push(echo_t *st) {
  unsigned char msg[4];
  if (st->sent == 1000 && st->fds_mid == 0) {
    if (st->got < 1000 || st->inflight > 0)
      return;
    st->fds_mid = sp_count_fds();
  }
  while (st->sent < ECHO_MSGS && st->inflight < 32 && (st->sent != 1000 || st->fds_mid != 0)) {
    sp_put32(msg, (uint32_t)st->sent);
    if (sockpass_uv_send(st->c, &st->sock, 1, msg, 4, echo_sent, NULL) != 0) {
      st->bad++;
      return;
    }
    st->sent++;
    st->inflight++;
  }
}

static void echo_closed(sockpass_uv_chan_t *c) {
  echo_t *st = sockpass_uv_get_data(c);
  st->closed = 1;
}

static void echo_back(sockpass_uv_chan_t *c, int status, sockpass_sock_t *socks, size_t n,
                      const void *data, size_t len) {
  echo_t *st = sockpass_uv_get_data(c);
  size_t i;
  if (status != 0 || n != 1 || len != 4 || sp_get32(data) != (uint32_t)st->got ||
      sp_sock_port(socks[0]) != st->port)
    st->bad++;
  for (i = 0; i < n; i++)
    sockpass_close_sock(socks[i]);
  st->got++;
  if (st->got == ECHO_MSGS || status < 0) {
    st->fds_after = sp_count_fds();
    sockpass_uv_close(c, echo_closed);
    return;
  }
  echo_push(st);
}

/* Child: echo every message back with its sockets, on its own loop. */
static void child_echo_recv(sockpass_uv_chan_t *c, int status, sockpass_sock_t *socks, size_t n,
                            const void *data, size_t len);

static void child_echo_sent(sockpass_uv_chan_t *c, int status, void *arg) {
  sockpass_sock_t *s = arg;
  int *bad = sockpass_uv_get_data(c);
  if (status != 0)
    (*bad)++;
  sockpass_close_sock(*s);
  free(s);
}

static void child_echo_recv(sockpass_uv_chan_t *c, int status, sockpass_sock_t *socks, size_t n,
                            const void *data, size_t len) {
  int *bad = sockpass_uv_get_data(c);
  sockpass_sock_t *keep;
  if (status == SOCKPASS_EOF) {
    sockpass_uv_close(c, NULL);
    return;
  }
  if (status != 0 || n != 1) {
    (*bad)++;
    sockpass_uv_close(c, NULL);
    return;
  }
  keep = malloc(sizeof *keep);
  *keep = socks[0]; /* ours now: kept until the echo went out */
  if (sockpass_uv_send(c, keep, 1, data, len, child_echo_sent, keep) != 0) {
    (*bad)++;
    sockpass_close_sock(*keep);
    free(keep);
  }
}

static int role_uv_echo(sockpass_chan_t *chan) {
  uv_loop_t loop;
  sockpass_uv_chan_t *c;
  int bad = 0, fds0;
  SP_CHECK(uv_loop_init(&loop) == 0);
  fds0 = sp_count_fds();
  SP_CHECK_RC(sockpass_uv_open(&loop, chan, &c), 0);
  sp_chan_handed_over = 1;
  sockpass_uv_set_data(c, &bad);
  SP_CHECK_RC(sockpass_uv_recv_start(c, child_echo_recv), 0);
  run_loop(&loop);
  SP_CHECK(bad == 0);
  SP_CHECK(loop_done(&loop) == 0);
  /* The channel (given to us) is closed: one fewer. */
  SP_CHECK(sp_count_fds() <= fds0);
  return 0;
}

static int role_uv_echo_parent(sockpass_chan_t *chan) {
  uv_loop_t loop;
  echo_t st;
  sockpass_sock_t client;
  memset(&st, 0, sizeof st);
  SP_CHECK(uv_loop_init(&loop) == 0);
  SP_CHECK(sp_tcp_pair(&client, &st.sock) == 0);
  st.port = sp_sock_port(st.sock);
  SP_CHECK_RC(sockpass_uv_open(&loop, chan, &st.c), 0);
  sp_chan_handed_over = 1;
  sockpass_uv_set_data(st.c, &st);
  SP_CHECK_RC(sockpass_uv_recv_start(st.c, echo_back), 0);
  echo_push(&st);
  run_loop(&loop);
  SP_CHECK(st.closed);
  SP_CHECK(st.bad == 0);
  SP_CHECK(st.got == ECHO_MSGS);
  /* No growth from the first 1,000 messages to the end of the run, each
   * counted with nothing in flight. */
  if (st.fds_after != st.fds_mid)
    fprintf(stderr, "handles after 1,000 messages: %d, after %d: %d\n", st.fds_mid, ECHO_MSGS,
            st.fds_after);
  SP_CHECK(st.fds_after == st.fds_mid);
  sockpass_close_sock(client);
  sockpass_close_sock(st.sock);
  SP_CHECK(loop_done(&loop) == 0);
  return 0;
}

static void uv_echo_process(void **state) {
  (void)state;
  sp_run_process(role_uv_echo_parent, "uv_echo");
}

/* ---- Close while sends are pending ---- */

typedef struct {
  int ok, cancelled, other, closed, in_close;
} pend_t;

static void pend_sent(sockpass_uv_chan_t *c, int status, void *arg) {
  pend_t *st = arg;
  (void)c;
  if (st->closed)
    st->other += 1000; /* a send callback after the close callback */
  if (st->in_close)
    st->other += 100000; /* a callback inside sockpass_uv_close itself */
  if (status == 0)
    st->ok++;
  else if (status == SOCKPASS_ECANCELED)
    st->cancelled++;
  else
    st->other++;
}

static void pend_closed(sockpass_uv_chan_t *c) {
  pend_t *st = sockpass_uv_get_data(c);
  st->closed = 1;
}

static void uv_close_pending(void **state) {
  uv_loop_t loop;
  sockpass_chan_t *a, *b;
  sockpass_uv_chan_t *ua;
  pend_t st;
  static unsigned char big[SOCKPASS_MAX_PAYLOAD];
  int i, n = 64;
  (void)state;
  memset(&st, 0, sizeof st);
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_sp(sockpass_uv_open(&loop, a, &ua), 0);
  sockpass_uv_set_data(ua, &st);
  /* b never reads: 64 × 64 KiB cannot all fit in the channel. */
  for (i = 0; i < n; i++)
    assert_sp(sockpass_uv_send(ua, NULL, 0, big, sizeof big, pend_sent, &st), 0);
  /* Let what fits go out, then close with the rest still waiting. */
  for (i = 0; i < 20; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
  sp_sleep_ms(100);
  uv_run(&loop, UV_RUN_NOWAIT);
  st.in_close = 1;
  sockpass_uv_close(ua, pend_closed);
  st.in_close = 0;
  run_loop(&loop);
  assert_true(st.closed);
  assert_int_equal(st.other, 0);
  assert_int_equal(st.ok + st.cancelled, n);
  assert_true(st.cancelled > 0);
  assert_true(st.ok > 0);
  sockpass_close(b);
  assert_int_equal(loop_done(&loop), 0);
}

/* ---- The peer dies: EOF reaches the callback ---- */

typedef struct {
  int status, calls;
} death_t;

static void death_recv(sockpass_uv_chan_t *c, int status, sockpass_sock_t *socks, size_t n,
                       const void *data, size_t len) {
  death_t *st = sockpass_uv_get_data(c);
  size_t i;
  (void)data;
  (void)len;
  for (i = 0; i < n; i++)
    sockpass_close_sock(socks[i]);
  st->calls++;
  if (status != 0) {
    st->status = status;
    sockpass_uv_close(c, NULL);
  }
}

static int role_die(sockpass_chan_t *chan) {
  SP_CHECK_RC(sockpass_send(chan, NULL, 0, "bye", 3), 0);
  /* Exit without closing anything: the OS ends the channel. */
  exit(0);
}

static int role_uv_death_parent(sockpass_chan_t *chan) {
  uv_loop_t loop;
  sockpass_uv_chan_t *c;
  death_t st = {0, 0};
  SP_CHECK(uv_loop_init(&loop) == 0);
  SP_CHECK_RC(sockpass_uv_open(&loop, chan, &c), 0);
  sp_chan_handed_over = 1;
  sockpass_uv_set_data(c, &st);
  SP_CHECK_RC(sockpass_uv_recv_start(c, death_recv), 0);
  run_loop(&loop);
  SP_CHECK(st.calls == 2); /* "bye", then the end */
  SP_CHECK_RC(st.status, SOCKPASS_EOF);
  SP_CHECK(loop_done(&loop) == 0);
  return 0;
}

static void uv_peer_death(void **state) {
  (void)state;
  sp_run_process(role_uv_death_parent, "uv_dying");
}

/* ---- Hostile bytes: the blocking API's error, nothing leaked ---- */

typedef struct {
  int status, after, calls;
} hostile_t;

/* The first callback reports the bad message; on POSIX a good one sent
 * after it must still arrive (ETRUNC keeps the channel receiving). */
static void hostile_recv(sockpass_uv_chan_t *c, int status, sockpass_sock_t *socks, size_t n,
                         const void *data, size_t len) {
  hostile_t *st = sockpass_uv_get_data(c);
  size_t i;
  for (i = 0; i < n; i++)
    sockpass_close_sock(socks[i]);
  if (st->calls++ == 0) {
    st->status = status;
#ifndef _WIN32
    return;
#endif
  } else {
    st->after = status == 0 && len == 2 && memcmp(data, "ok", 2) == 0;
  }
  sockpass_uv_close(c, NULL);
}

static void uv_hostile(void **state) {
  uv_loop_t loop;
  sockpass_uv_chan_t *c;
  hostile_t st = {1, 0, 0};
  sockpass_chan_t *ch;
  int want;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
#ifdef _WIN32
  {
    /* Garbage where a frame header belongs. */
    HANDLE p[2];
    DWORD n;
    sockpass_chan_t *a, *b;
    char junk[64];
    memset(junk, 0x5a, sizeof junk);
    assert_sp(sockpass_pair(&a, &b), 0);
    p[0] = sockpass_handle(a);
    assert_true(WriteFile(p[0], junk, sizeof junk, &n, NULL) || GetLastError() == ERROR_IO_PENDING);
    sp_sleep_ms(50);
    ch = b;
    want = SOCKPASS_EPROTO;
    assert_sp(sockpass_uv_open(&loop, ch, &c), 0);
    sockpass_uv_set_data(c, &st);
    assert_sp(sockpass_uv_recv_start(c, hostile_recv), 0);
    run_loop(&loop);
    sockpass_close(a);
    (void)p;
  }
#else
  {
    /* A raw peer sends more bytes than a message may hold, with a
     * descriptor: dropped whole (the descriptor closed), ETRUNC. */
    int sv[2], fd;
    static char big[SOCKPASS_MAX_PAYLOAD + 100];
    struct msghdr m;
    struct iovec io;
    union {
      struct cmsghdr h;
      char b[CMSG_SPACE(sizeof(int))];
    } cm;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    fd = sv[1];
    memset(&m, 0, sizeof m);
    io.iov_base = big;
    io.iov_len = sizeof big;
    m.msg_iov = &io;
    m.msg_iovlen = 1;
    m.msg_control = cm.b;
    m.msg_controllen = sizeof cm.b;
    memset(&cm, 0, sizeof cm);
    CMSG_FIRSTHDR(&m)->cmsg_level = SOL_SOCKET;
    CMSG_FIRSTHDR(&m)->cmsg_type = SCM_RIGHTS;
    CMSG_FIRSTHDR(&m)->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(CMSG_FIRSTHDR(&m)), &fd, sizeof fd);
    assert_true(sendmsg(sv[1], &m, 0) == (ssize_t)sizeof big);
    assert_true(send(sv[1], "ok", 2, 0) == 2);
    close(sv[1]);
    assert_sp(sockpass_open(sv[0], &ch), 0);
    want = SOCKPASS_ETRUNC;
    assert_sp(sockpass_uv_open(&loop, ch, &c), 0);
    sockpass_uv_set_data(c, &st);
    assert_sp(sockpass_uv_recv_start(c, hostile_recv), 0);
    run_loop(&loop);
  }
#endif
  assert_sp(st.status, want);
#ifndef _WIN32
  assert_true(st.after);
#endif
  assert_int_equal(loop_done(&loop), 0);
}

/* ---- Accepting by callback; a received listener adopted into uv_tcp_t ---- */

typedef struct {
  int accepted;
  sockpass_uv_chan_t *l;
  uv_loop_t *loop;
  uv_tcp_t tcp;
  int served;
  char buf[8];
  size_t have;
  uv_write_t w;
  uv_tcp_t *conn;
} acc_t;

static void acc_cb(sockpass_uv_chan_t *l, int status, sockpass_chan_t *chan) {
  acc_t *st = sockpass_uv_get_data(l);
  if (status == 0) {
    st->accepted++;
    sockpass_close(chan);
  }
  if (st->accepted == 3 || status != 0)
    sockpass_uv_close(l, NULL);
}

static int role_connect3(sockpass_chan_t *chan) {
  char name[128];
  size_t n = 0, len = sizeof name - 1;
  int i;
  SP_CHECK_RC(sockpass_recv(chan, NULL, &n, name, &len), 0);
  name[len] = 0;
  for (i = 0; i < 3; i++) {
    sockpass_chan_t *c;
    SP_CHECK_RC(sockpass_connect(name, &c), 0);
    sockpass_close(c);
  }
  return 0;
}

static void uv_accept_cb(void **state) {
  uv_loop_t loop;
  sockpass_chan_t *l, *a, *b;
  sp_thread_t *t;
  acc_t st;
  char name[128];
  (void)state;
  memset(&st, 0, sizeof st);
#ifdef _WIN32
  snprintf(name, sizeof name, "sockpass-uv-acc-%ld", sp_getpid());
#else
  snprintf(name, sizeof name, "@sockpass-uv-acc-%ld", sp_getpid());
#endif
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_sp(sockpass_listen(name, &l), 0);
  assert_sp(sockpass_uv_open(&loop, l, &st.l), 0);
  sockpass_uv_set_data(st.l, &st);
  assert_sp(sockpass_uv_recv_start(st.l, NULL), SOCKPASS_EINVAL);
  assert_sp(sockpass_uv_accept_start(st.l, acc_cb), 0);
  assert_sp(sockpass_pair(&a, &b), 0);
  t = sp_thread_start(role_connect3, b);
  assert_sp(sockpass_send(a, NULL, 0, name, strlen(name)), 0);
  run_loop(&loop);
  assert_int_equal(sp_thread_join(t), 0);
  assert_int_equal(st.accepted, 3);
  sockpass_close(a);
  sockpass_close(b);
  assert_int_equal(loop_done(&loop), 0);
}

/* A listener arrives as a message and becomes a uv_tcp_t that serves. */
static void adopt_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void adopt_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  acc_t *st = h->data;
  (void)hint;
  *b = uv_buf_init(st->buf + st->have, (unsigned int)(sizeof st->buf - st->have));
}

static void adopt_written(uv_write_t *w, int status) {
  acc_t *st = w->data;
  st->served = status == 0;
  uv_close((uv_handle_t *)st->conn, free_handle);
  uv_close((uv_handle_t *)&st->tcp, NULL);
}

static void adopt_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  acc_t *st = s->data;
  uv_buf_t out = uv_buf_init("pong", 4);
  (void)b;
  if (n < 0) {
    uv_close((uv_handle_t *)s, free_handle);
    uv_close((uv_handle_t *)&st->tcp, NULL);
    return;
  }
  st->have += (size_t)n;
  if (st->have >= 4) {
    uv_read_stop(s);
    st->w.data = st;
    if (memcmp(st->buf, "ping", 4) == 0)
      uv_write(&st->w, s, &out, 1, adopt_written);
  }
}

static void adopt_conn(uv_stream_t *server, int status) {
  acc_t *st = server->data;
  if (status != 0)
    return;
  st->conn = malloc(sizeof *st->conn);
  uv_tcp_init(st->loop, st->conn);
  st->conn->data = st;
  if (uv_accept(server, (uv_stream_t *)st->conn) == 0)
    uv_read_start((uv_stream_t *)st->conn, adopt_alloc, adopt_read);
}

static void adopt_recv(sockpass_uv_chan_t *c, int status, sockpass_sock_t *socks, size_t n,
                       const void *data, size_t len) {
  acc_t *st = sockpass_uv_get_data(c);
  (void)data;
  (void)len;
  if (status == 0 && n == 1 &&
      sockpass_uv_tcp_open(sockpass_uv_loop(c), &st->tcp, socks[0]) == 0) {
    st->tcp.data = st;
    st->accepted = uv_listen((uv_stream_t *)&st->tcp, 8, adopt_conn) == 0;
  } else {
    size_t i;
    for (i = 0; i < n; i++)
      sockpass_close_sock(socks[i]);
  }
  sockpass_uv_close(c, NULL);
}

static int role_ping(sockpass_chan_t *chan) {
  unsigned short port;
  sockpass_sock_t l = sp_tcp_listener(&port), c;
  char buf[4];
  SP_CHECK_RC(sockpass_send(chan, &l, 1, "L", 1), 0);
  sockpass_close_sock(l);
  c = sp_tcp_connect(port);
  SP_CHECK(c != SOCKPASS_INVALID_SOCK);
  SP_CHECK(sp_write_all(c, "ping", 4) == 0);
  SP_CHECK(sp_read_n(c, buf, 4) == 0);
  SP_CHECK(memcmp(buf, "pong", 4) == 0);
  sockpass_close_sock(c);
  return 0;
}

static int role_uv_adopt_parent(sockpass_chan_t *chan) {
  uv_loop_t loop;
  sockpass_uv_chan_t *c;
  acc_t st;
  memset(&st, 0, sizeof st);
  SP_CHECK(uv_loop_init(&loop) == 0);
  st.loop = &loop;
  SP_CHECK_RC(sockpass_uv_open(&loop, chan, &c), 0);
  sp_chan_handed_over = 1;
  sockpass_uv_set_data(c, &st);
  SP_CHECK_RC(sockpass_uv_recv_start(c, adopt_recv), 0);
  run_loop(&loop);
  SP_CHECK(st.accepted == 1);
  SP_CHECK(st.served == 1);
  SP_CHECK(loop_done(&loop) == 0);
  return 0;
}

static void uv_adopt_listener(void **state) {
  (void)state;
  sp_run_process(role_uv_adopt_parent, "ping");
}

/* ---- Interoperation with a plain libuv program (plain_peer.c) ----
 * The sockpass_uv side of the same exchange: receiving, it serves through
 * libuv handles made with sockpass_uv_tcp_open; sending, it uses
 * sockpass_uv_send on an IPC channel. */

typedef struct {
  uv_loop_t *loop;
  sockpass_uv_chan_t *c;
  int first, served, checked, bad, sends;
  unsigned short lport;
  sockpass_sock_t out[2], client;
} ix_t;

static ix_t ix;

typedef struct {
  uv_tcp_t tcp;
  char kind;
  char buf[8];
  size_t have;
  uv_write_t w;
  uv_tcp_t *conn;
} ix_srv_t;

static void ix_after(void);

static void ix_srv_free(uv_handle_t *h) { free(h->data); }

static void ix_srv_written(uv_write_t *w, int status) {
  ix_srv_t *s = w->data;
  if (status != 0)
    ix.bad++;
  ix.served++;
  if (s->conn != NULL)
    uv_close((uv_handle_t *)s->conn, free_handle);
  uv_close((uv_handle_t *)&s->tcp, ix_srv_free);
  ix_after();
}

static void ix_srv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  ix_srv_t *s = h->data;
  (void)hint;
  *b = uv_buf_init(s->buf + s->have, (unsigned int)(sizeof s->buf - s->have));
}

static void ix_srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  ix_srv_t *s = st->data;
  size_t need = s->kind == 'L' ? 4 : 5, i;
  uv_buf_t out;
  (void)b;
  if (n < 0) {
    ix.bad++;
    uv_read_stop(st);
    return;
  }
  s->have += (size_t)n;
  if (s->have < need)
    return;
  uv_read_stop(st);
  if (s->kind == 'L') {
    if (memcmp(s->buf, "ping", 4) != 0)
      ix.bad++;
    memcpy(s->buf, "pong", 4);
  } else {
    for (i = 0; i < 5; i++)
      if (s->buf[i] >= 'a' && s->buf[i] <= 'z')
        s->buf[i] = (char)(s->buf[i] - 'a' + 'A');
  }
  out = uv_buf_init(s->buf, (unsigned int)need);
  s->w.data = s;
  uv_write(&s->w, st, &out, 1, ix_srv_written);
}

static void ix_srv_conn(uv_stream_t *server, int status) {
  ix_srv_t *s = server->data;
  if (status != 0 || s->conn != NULL) {
    ix.bad++;
    return;
  }
  s->conn = malloc(sizeof *s->conn);
  uv_tcp_init(ix.loop, s->conn);
  s->conn->data = s;
  if (uv_accept(server, (uv_stream_t *)s->conn) != 0 ||
      uv_read_start((uv_stream_t *)s->conn, ix_srv_alloc, ix_srv_read) != 0)
    ix.bad++;
}

static void ix_send_both(void);

static void ix_recv(sockpass_uv_chan_t *c, int status, sockpass_sock_t *socks, size_t n,
                    const void *data, size_t len) {
  const char *p = data;
  size_t i;
  (void)c;
  if (status == SOCKPASS_EOF) {
    ix_after();
    return;
  }
  if (status != 0 || n != len) {
    fprintf(stderr, "interop: status %s, %u sockets with %u bytes\n", sockpass_err_name(status),
            (unsigned)n, (unsigned)len);
    ix.bad++;
    for (i = 0; i < n; i++)
      sockpass_close_sock(socks[i]);
    return;
  }
  for (i = 0; i < n; i++) {
    ix_srv_t *s = calloc(1, sizeof *s);
    s->kind = p[i];
    if (sockpass_uv_tcp_open(ix.loop, &s->tcp, socks[i]) != 0) {
      ix.bad++;
      sockpass_close_sock(socks[i]);
      free(s);
      continue;
    }
    s->tcp.data = s;
    if (s->kind == 'L') {
      if (uv_listen((uv_stream_t *)&s->tcp, 8, ix_srv_conn) != 0)
        ix.bad++;
    } else if (uv_read_start((uv_stream_t *)&s->tcp, ix_srv_alloc, ix_srv_read) != 0) {
      ix.bad++;
    }
  }
}

static void ix_sent(sockpass_uv_chan_t *c, int status, void *arg) {
  char buf[8];
  sockpass_sock_t k;
  (void)c;
  (void)arg;
  if (status != 0)
    ix.bad++;
  if (++ix.sends < 2)
    return;
  sockpass_close_sock(ix.out[0]);
  sockpass_close_sock(ix.out[1]);
  /* As the client of what was sent. */
  k = sp_tcp_connect(ix.lport);
  if (k == SOCKPASS_INVALID_SOCK || sp_write_all(k, "ping", 4) != 0 || sp_read_n(k, buf, 4) != 0 ||
      memcmp(buf, "pong", 4) != 0)
    ix.bad++;
  else
    ix.checked++;
  if (k != SOCKPASS_INVALID_SOCK)
    sockpass_close_sock(k);
  if (sp_write_all(ix.client, "hello", 5) != 0 || sp_read_n(ix.client, buf, 5) != 0 ||
      memcmp(buf, "HELLO", 5) != 0)
    ix.bad++;
  else
    ix.checked++;
  sockpass_close_sock(ix.client);
  ix_after();
}

static void ix_send_both(void) {
  ix.out[0] = sp_tcp_listener(&ix.lport);
  if (sp_tcp_pair(&ix.client, &ix.out[1]) != 0) {
    ix.bad++;
    return;
  }
  /* One socket per message, with at least one byte: what a plain libuv
   * peer takes; anything else is refused at once. */
  if (sockpass_uv_send(ix.c, ix.out, 2, "LS", 2, ix_sent, NULL) != SOCKPASS_ETOOMANY ||
      sockpass_uv_send(ix.c, &ix.out[0], 1, NULL, 0, ix_sent, NULL) != SOCKPASS_EINVAL)
    ix.bad++;
  if (sockpass_uv_send(ix.c, &ix.out[0], 1, "L", 1, ix_sent, NULL) != 0 ||
      sockpass_uv_send(ix.c, &ix.out[1], 1, "S", 1, ix_sent, NULL) != 0)
    ix.bad++;
}

static void ix_after(void) {
  if (ix.bad) {
    sockpass_uv_close(ix.c, NULL);
    return;
  }
  if (!ix.first && ix.served == 2 && ix.checked == 0 && ix.sends == 0) {
    ix_send_both();
    return;
  }
  if (ix.served == 2 && ix.checked == 2)
    sockpass_uv_close(ix.c, NULL);
}

static void count_open(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h) && h->type != UV_PROCESS)
    ++*(int *)arg;
}

static int ix_run(uv_loop_t *loop, uv_pipe_t *pipe, int first) {
  memset(&ix, 0, sizeof ix);
  ix.loop = loop;
  ix.first = first;
  if (sockpass_uv_ipc_open(loop, pipe, &ix.c) != 0 || sockpass_uv_recv_start(ix.c, ix_recv) != 0)
    return 1;
  if (first)
    ix_send_both();
  run_loop(loop);
  /* Nothing of the exchange stays open on the loop: no handle a received
   * socket went through, no carrier of a sent one. */
  {
    int open = 0;
    uv_walk(loop, count_open, &open);
    if (open != 0) {
      fprintf(stderr, "interop: %d handles still open on the loop\n", open);
      ix.bad++;
    }
  }
  if (ix.bad || ix.served != 2 || ix.checked != 2) {
    fprintf(stderr, "interop (%s): bad %d, served %d, checked %d\n", first ? "parent" : "child",
            ix.bad, ix.served, ix.checked);
    return 1;
  }
  printf("sockpass_uv %s: 2 sent and checked, 2 received and served\n",
         first ? "parent" : "child");
  return 0;
}

static char plain_path[4096];
static int plain_exit;

static void plain_exited(uv_process_t *p, int64_t status, int sig) {
  plain_exit = sig ? 128 + sig : (int)status;
  uv_close((uv_handle_t *)p, NULL);
}

static int find_plain(void) {
  size_t n = sizeof plain_path;
  char *slash;
  if (uv_exepath(plain_path, &n) != 0)
    return -1;
  slash = strrchr(plain_path, '/');
#ifdef _WIN32
  {
    char *bs = strrchr(plain_path, '\\');
    if (bs > slash)
      slash = bs;
  }
#endif
  if (slash == NULL)
    return -1;
#ifdef _WIN32
  strcpy(slash + 1, "sockpass_uv_plain_peer.exe");
#else
  strcpy(slash + 1, "sockpass_uv_plain_peer");
#endif
  return 0;
}

static void spawn_plain(uv_loop_t *loop, uv_process_t *proc, uv_pipe_t *pipe, char **args) {
  uv_process_options_t o;
  uv_stdio_container_t stdio[4];
  int i;
  memset(&o, 0, sizeof o);
  for (i = 0; i < 3; i++) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = i;
  }
  stdio[3].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE);
  stdio[3].data.stream = (uv_stream_t *)pipe;
  o.file = plain_path;
  o.args = args;
  o.stdio = stdio;
  o.stdio_count = pipe != NULL ? 4 : 3;
  o.exit_cb = plain_exited;
  plain_exit = -1;
  assert_int_equal(uv_spawn(loop, proc, &o), 0);
}

/* sockpass_uv parent, plain libuv child. */
static void uv_interop_plain_child(void **state) {
  uv_loop_t loop;
  uv_process_t proc;
  uv_pipe_t pipe;
  char *args[] = {plain_path, "child", NULL};
  (void)state;
  assert_int_equal(find_plain(), 0);
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(uv_pipe_init(&loop, &pipe, 1), 0);
  spawn_plain(&loop, &proc, &pipe, args);
  assert_int_equal(ix_run(&loop, &pipe, 1), 0);
  assert_int_equal(plain_exit, 0);
  assert_int_equal(loop_done(&loop), 0);
}

/* Plain libuv parent, sockpass_uv child (this binary, "--uv-ipc-child"). */
static void uv_interop_plain_parent(void **state) {
  uv_loop_t loop;
  uv_process_t proc;
  char self[4096];
  size_t n = sizeof self;
  char *args[] = {plain_path, "parent", self, "--uv-ipc-child", NULL};
  (void)state;
  assert_int_equal(find_plain(), 0);
  assert_int_equal(uv_exepath(self, &n), 0);
  assert_int_equal(uv_loop_init(&loop), 0);
  spawn_plain(&loop, &proc, NULL, args);
  run_loop(&loop);
  assert_int_equal(plain_exit, 0);
  assert_int_equal(loop_done(&loop), 0);
}

static int uv_ipc_child_main(void) {
  uv_loop_t loop;
  uv_pipe_t pipe;
  int rc;
  sp_net_init();
  if (uv_loop_init(&loop) != 0 || uv_pipe_init(&loop, &pipe, 1) != 0 ||
      uv_pipe_open(&pipe, 3) != 0) {
    fprintf(stderr, "uv-ipc-child: no IPC pipe at descriptor 3\n");
    return 1;
  }
  rc = ix_run(&loop, &pipe, 0);
  if (loop_done(&loop) != 0)
    rc = 1;
  uv_library_shutdown();
  return rc;
}

/* What libuv and the OS make once per process and keep (libuv's signal
 * lock pipe and thread pool, the system's wait thread on Windows) is made
 * here, before any test counts descriptors or handles: one message over a
 * pair, both ends on a loop. */
static void warm_recv(sockpass_uv_chan_t *c, int status, sockpass_sock_t *socks, size_t n,
                      const void *data, size_t len) {
  (void)status;
  (void)socks;
  (void)n;
  (void)data;
  (void)len;
  sockpass_uv_close(sockpass_uv_get_data(c), NULL);
  sockpass_uv_close(c, NULL);
}

/* Every thread of libuv's pool sends a socket once: the first socket call of
 * a thread makes per-thread state that some Winsock implementations (Wine)
 * keep for the thread's life. The barrier makes each item its own thread. */
#define WARM_POOL 4
static sockpass_chan_t *warm_a;
static sockpass_sock_t warm_sock;
static uv_mutex_t warm_mu;
static uv_cond_t warm_cv;
static int warm_in;

static void warm_work(uv_work_t *w) {
  uint64_t end = uv_hrtime() + 10000000000ull;
  (void)w;
  sockpass_send(warm_a, &warm_sock, 1, "p", 1);
  uv_mutex_lock(&warm_mu);
  warm_in++;
  uv_cond_broadcast(&warm_cv);
  while (warm_in < WARM_POOL && uv_hrtime() < end)
    uv_cond_timedwait(&warm_cv, &warm_mu, 100000000ull);
  uv_mutex_unlock(&warm_mu);
}

static void warm_after(uv_work_t *w, int status) {
  (void)status;
  free(w);
}

static void warm_pool(uv_loop_t *loop) {
  sockpass_chan_t *b;
  sockpass_sock_t s[1];
  unsigned short port;
  char buf[4];
  int i;
  if (sockpass_pair(&warm_a, &b) != 0)
    return;
  warm_sock = sp_udp_socket(&port);
  uv_mutex_init(&warm_mu);
  uv_cond_init(&warm_cv);
  for (i = 0; i < WARM_POOL; i++) {
    uv_work_t *w = malloc(sizeof *w);
    uv_queue_work(loop, w, warm_work, warm_after);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  for (i = 0; i < WARM_POOL; i++) {
    size_t n = 1, len = sizeof buf;
    if (sockpass_recv(b, s, &n, buf, &len) == 0 && n == 1)
      sockpass_close_sock(s[0]);
  }
  sockpass_close_sock(warm_sock);
  sockpass_close(warm_a);
  sockpass_close(b);
  uv_cond_destroy(&warm_cv);
  uv_mutex_destroy(&warm_mu);
}

static int find_plain(void);

static void warm_exited(uv_process_t *p, int64_t status, int sig) {
  (void)status;
  (void)sig;
  uv_close((uv_handle_t *)p, NULL);
}

static void warm_up(int spawn) {
  uv_loop_t loop;
  uv_process_t proc;
  uv_process_options_t o;
  char *args[3];
  sockpass_chan_t *a, *b;
  sockpass_uv_chan_t *ua, *ub;
  uv_loop_init(&loop);
  warm_pool(&loop);
  /* libuv's spawn keeps process-wide state (on Windows a job object). */
  if (spawn && find_plain() == 0) {
    uv_stdio_container_t stdio[3];
    int i;
    for (i = 0; i < 3; i++) {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = i;
    }
    memset(&o, 0, sizeof o);
    o.stdio = stdio;
    o.stdio_count = 3;
    args[0] = plain_path;
    args[1] = "--version";
    args[2] = NULL;
    o.file = plain_path;
    o.args = args;
    o.exit_cb = warm_exited;
    if (uv_spawn(&loop, &proc, &o) == 0)
      uv_run(&loop, UV_RUN_DEFAULT);
  }
  if (sockpass_pair(&a, &b) != 0 || sockpass_uv_open(&loop, a, &ua) != 0 ||
      sockpass_uv_open(&loop, b, &ub) != 0) {
    fprintf(stderr, "warm-up failed\n");
    exit(1);
  }
  sockpass_uv_set_data(ub, ua);
  sockpass_uv_recv_start(ub, warm_recv);
  sockpass_uv_send(ua, NULL, 0, "w", 1, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (loop_done(&loop) != 0)
    fprintf(stderr, "warm-up: the loop did not close\n");
}

int main(int argc, char **argv) {
  int rc;
  static const struct CMUnitTest tests[] = {
      SP_TEST(uv_order_pair),        SP_TEST(uv_bad_args),       SP_TEST(uv_echo_process),
      SP_TEST(uv_close_pending),     SP_TEST(uv_peer_death),     SP_TEST(uv_hostile),
      SP_TEST(uv_accept_cb),         SP_TEST(uv_adopt_listener), SP_TEST(uv_interop_plain_child),
      SP_TEST(uv_interop_plain_parent),
  };
  static const sp_role_t roles[] = {
      {"uv_echo", role_uv_echo},
      {"uv_dying", role_die},
      {"ping", role_ping},
  };
  if (argc == 2 && strcmp(argv[1], "--uv-ipc-child") == 0)
    return uv_ipc_child_main();
  /* Children of the tests do not spawn: only this process needs it. */
  warm_up(!(argc >= 2 && strcmp(argv[1], "--child") == 0));
  if (getenv("SOCKPASS_TEST_FILTER") != NULL)
    cmocka_set_test_filter(getenv("SOCKPASS_TEST_FILTER"));
  rc = sp_test_main(argc, argv, "uv", tests, sizeof tests / sizeof tests[0], roles,
                    sizeof roles / sizeof roles[0]);
  /* libuv's process-wide descriptors, closed for a descriptor-tracking run. */
  uv_library_shutdown();
  return rc;
}
