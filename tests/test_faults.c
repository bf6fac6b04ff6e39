/* SPDX-License-Identifier: MIT */
/* Faults: peers that die mid-message or close while the other end reads,
 * eight senders on one channel, and (POSIX) hostile control messages and
 * another local user at a named endpoint. Every test runs between SP_TEST's
 * descriptor counts: whatever happens, nothing may leak. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#endif
#ifdef __linux__
#include <sys/syscall.h>
#endif

/* ---- Messages that can be checked whole: a 12-byte header (sender, seq,
 * length) and a pattern that depends on all three. ---- */

#define MSG_HDR 12
#define MSG_MAX 512

static size_t msg_len(uint32_t sender, uint32_t seq) {
  return MSG_HDR + (size_t)((seq * 7u + sender * 13u) % 300u);
}

static unsigned char msg_byte(uint32_t sender, uint32_t seq, size_t i) {
  return (unsigned char)((sender * 31u + seq * 17u + (uint32_t)i * 5u) & 0xffu);
}

static size_t msg_make(unsigned char *buf, uint32_t sender, uint32_t seq) {
  size_t len = msg_len(sender, seq), i;
  sp_put32(buf, sender);
  sp_put32(buf + 4, seq);
  sp_put32(buf + 8, (uint32_t)len);
  for (i = MSG_HDR; i < len; i++)
    buf[i] = msg_byte(sender, seq, i);
  return len;
}

/* 1 when buf holds a whole message as msg_make wrote it. */
static int msg_whole(const unsigned char *buf, size_t len, uint32_t *sender, uint32_t *seq) {
  size_t i;
  if (len < MSG_HDR)
    return 0;
  *sender = sp_get32(buf);
  *seq = sp_get32(buf + 4);
  if (sp_get32(buf + 8) != len || msg_len(*sender, *seq) != len)
    return 0;
  for (i = MSG_HDR; i < len; i++)
    if (buf[i] != msg_byte(*sender, *seq, i))
      return 0;
  return 1;
}

/* Every SOCK_EVERY-th message carries a socket. */
#define SOCK_EVERY 16

/* ---- The peer dies in the middle of sending: a thread of the child sends
 * without pause while the process ends under it. The receiver gets whole
 * messages, in order, each with its socket, then SOCKPASS_EOF. ---- */

/* Messages the dying sender's thread has sent so far. */
static unsigned dying_sent;

static int dying_send_loop(sockpass_chan_t *c) {
  unsigned char buf[MSG_MAX];
  unsigned short port;
  sockpass_sock_t s = sp_udp_socket(&port);
  uint32_t seq;
  SP_CHECK(s != SOCKPASS_INVALID_SOCK);
  for (seq = 0;; seq++) {
    size_t len = msg_make(buf, 0, seq);
    if (sockpass_send(c, &s, seq % 2 == 0 ? 1 : 0, buf, len) != 0)
      break;
    __atomic_store_n(&dying_sent, seq + 1, __ATOMIC_SEQ_CST);
  }
  sockpass_close_sock(s);
  return 0;
}

static int dying_sender(sockpass_chan_t *c) {
  /* The loop runs until the process ends under it: never joined. The
   * process ends once the loop is under way (a few messages out), however
   * slowly the thread got started, and while it is still sending. */
  sp_thread_t *t = sp_thread_start(dying_send_loop, c);
  int waited = 0;
  SP_CHECK(t != NULL);
  while (__atomic_load_n(&dying_sent, __ATOMIC_SEQ_CST) < 8 && waited < sp_scale_ms(20000)) {
    sp_sleep_ms(5);
    waited += 5;
  }
  sp_sleep_ms(20);
  fflush(NULL);
  _Exit(0);
}

static int receive_until_eof(sockpass_chan_t *c) {
  unsigned char buf[MSG_MAX];
  sockpass_sock_t socks[2];
  uint32_t want = 0, sender, seq;
  int rc;
  sockpass_set_timeout(c, sp_scale_ms(20000));
  for (;;) {
    size_t n = 2, len = sizeof buf;
    rc = sockpass_recv(c, socks, &n, buf, &len);
    if (rc != 0)
      break;
    if (n > 0)
      SP_CHECK(sockpass_close_sock(socks[0]) == 0);
    SP_CHECK(n <= 1);
    SP_CHECK(msg_whole(buf, len, &sender, &seq));
    SP_CHECK(sender == 0 && seq == want);
    SP_CHECK(n == (seq % 2 == 0 ? 1u : 0u));
    want++;
  }
  SP_CHECK_RC(rc, SOCKPASS_EOF);
  SP_CHECK(want > 0);
  return 0;
}

#define SP_DYING_ROUNDS 5

static void peer_dies_mid_send(void **s) {
  int i, before = sp_count_fds(), extra;
  for (i = 0; i < SP_DYING_ROUNDS; i++)
    sp_run_process(receive_until_eof, "dying_sender");
  extra = sp_count_fds() - before;
#ifdef _WIN32
  /* WSADuplicateSocketW places the socket in this process before the frame
   * that names it is written; a sender that dies between the two leaves one
   * socket here that no message announces (docs/protocol.md, "Lifetimes").
   * That is at most one per dead sender, never more. */
  if (extra > 0)
    fprintf(stderr, "unannounced sockets left by %d dead senders: %d\n", SP_DYING_ROUNDS, extra);
  assert_true(extra >= 0 && extra <= SP_DYING_ROUNDS);
#else
  assert_int_equal(extra, 0);
#endif
}

/* ---- Close racing the receive: the peer sends one message with a socket
 * and closes at once, while the receiver is already waiting or not yet. The
 * message always arrives, then SOCKPASS_EOF. ---- */

static int send_one_then_close(sockpass_chan_t *c) {
  unsigned char buf[MSG_MAX];
  unsigned short port;
  sockpass_sock_t s = sp_udp_socket(&port);
  size_t len = msg_make(buf, 1, 0);
  int rc;
  SP_CHECK(s != SOCKPASS_INVALID_SOCK);
  rc = sockpass_send(c, &s, 1, buf, len);
  sockpass_close_sock(s);
  SP_CHECK_RC(rc, 0);
  return 0;
}

static int send_one_close_chan(sockpass_chan_t *c) {
  int rc = send_one_then_close(c);
  sockpass_close(c); /* the thread shape: this end goes now, not at join */
  return rc;
}

static int recv_one_then_eof(sockpass_chan_t *c) {
  unsigned char buf[MSG_MAX];
  sockpass_sock_t socks[2];
  size_t n = 2, len = sizeof buf;
  uint32_t sender, seq;
  sockpass_set_timeout(c, sp_scale_ms(20000));
  SP_CHECK_RC(sockpass_recv(c, socks, &n, buf, &len), 0);
  SP_CHECK(n == 1);
  SP_CHECK(sockpass_close_sock(socks[0]) == 0);
  SP_CHECK(msg_whole(buf, len, &sender, &seq) && sender == 1 && seq == 0);
  n = 2;
  len = sizeof buf;
  SP_CHECK_RC(sockpass_recv(c, socks, &n, buf, &len), SOCKPASS_EOF);
  SP_CHECK(n == 0);
  return 0;
}

static void close_races_recv_threads(void **s) {
  int i;
  for (i = 0; i < 2000; i++) {
    sockpass_chan_t *a, *b;
    sp_thread_t *t;
    int ra, rb;
    assert_sp(sockpass_pair(&a, &b), 0);
    t = sp_thread_start(send_one_close_chan, b); /* b is closed by the thread */
    assert_non_null(t);
    ra = recv_one_then_eof(a);
    rb = sp_thread_join(t);
    sockpass_close(a);
    assert_int_equal(ra, 0);
    assert_int_equal(rb, 0);
  }
}

static void close_races_recv_process(void **s) {
  int i;
  for (i = 0; i < 50; i++)
    sp_run_process(recv_one_then_eof, "send_one_then_close");
}

/* ---- The receiver goes away while the peer sends: the sender gets 0 for
 * what went out and SOCKPASS_EOF after, and the sockets left unread in the
 * channel are released with it (the descriptor counts of both sides). ---- */

static int send_until_eof(sockpass_chan_t *c) {
  unsigned char buf[MSG_MAX];
  unsigned short port;
  sockpass_sock_t s = sp_udp_socket(&port);
  uint32_t seq;
  int rc = 0;
  SP_CHECK(s != SOCKPASS_INVALID_SOCK);
  sockpass_set_timeout(c, sp_scale_ms(20000));
  for (seq = 0; seq < 1000000 && rc == 0; seq++)
    rc = sockpass_send(c, &s, 1, buf, msg_make(buf, 2, seq));
  sockpass_close_sock(s);
  SP_CHECK_RC(rc, SOCKPASS_EOF);
  return 0;
}

static int recv_some_then_close(sockpass_chan_t *c) {
  unsigned char buf[MSG_MAX];
  sockpass_sock_t socks[2];
  uint32_t sender, seq;
  int i;
  sockpass_set_timeout(c, sp_scale_ms(20000));
  for (i = 0; i < 100; i++) {
    size_t n = 2, len = sizeof buf;
    SP_CHECK_RC(sockpass_recv(c, socks, &n, buf, &len), 0);
    SP_CHECK(n == 1);
    SP_CHECK(sockpass_close_sock(socks[0]) == 0);
    SP_CHECK(msg_whole(buf, len, &sender, &seq) && seq == (uint32_t)i);
  }
  return 0;
}

static void receiver_leaves_mid_stream(void **s) {
  sockpass_chan_t *a, *b;
  sp_child_t *c;
  int ra;
  assert_sp(sockpass_pair(&a, &b), 0);
  c = sp_child_start("send_until_eof", b);
  sockpass_close(b);
  assert_non_null(c);
  ra = recv_some_then_close(a);
  sockpass_close(a); /* with the sender still sending, messages still queued */
  assert_int_equal(ra, 0);
  assert_int_equal(sp_child_wait(c), 0);
}

/* ---- Eight threads send 10,000 messages each on one channel: every message
 * arrives whole, in each sender's order, with its socket. ---- */

#define SENDERS 8
#define PER_SENDER 10000

static volatile uint32_t senders_next;

static int one_sender(sockpass_chan_t *c) {
  unsigned char buf[MSG_MAX];
  unsigned short port;
  uint32_t id, seq;
  sockpass_sock_t s;
  int rc = 0;
#ifdef _WIN32
  id = (uint32_t)InterlockedIncrement((volatile LONG *)&senders_next) - 1u;
#else
  id = __atomic_fetch_add(&senders_next, 1u, __ATOMIC_SEQ_CST);
#endif
  s = sp_udp_socket(&port);
  SP_CHECK(s != SOCKPASS_INVALID_SOCK);
  for (seq = 0; seq < PER_SENDER && rc == 0; seq++) {
    size_t len = msg_make(buf, id, seq);
    rc = sockpass_send(c, &s, seq % SOCK_EVERY == 0 ? 1 : 0, buf, len);
  }
  sockpass_close_sock(s);
  SP_CHECK_RC(rc, 0);
  return 0;
}

static int eight_senders(sockpass_chan_t *c) {
  sp_thread_t *t[SENDERS];
  int i, bad = 0;
  senders_next = 0;
  for (i = 0; i < SENDERS; i++)
    t[i] = sp_thread_start(one_sender, c);
  for (i = 0; i < SENDERS; i++)
    bad |= t[i] == NULL || sp_thread_join(t[i]) != 0;
  SP_CHECK(!bad);
  return 0;
}

static int eight_receiver(sockpass_chan_t *c) {
  unsigned char buf[MSG_MAX];
  sockpass_sock_t socks[2];
  uint32_t next[SENDERS] = {0}, sender, seq;
  long total = 0;
  sockpass_set_timeout(c, sp_scale_ms(20000));
  while (total < (long)SENDERS * PER_SENDER) {
    size_t n = 2, len = sizeof buf;
    SP_CHECK_RC(sockpass_recv(c, socks, &n, buf, &len), 0);
    if (n > 0)
      SP_CHECK(sockpass_close_sock(socks[0]) == 0);
    SP_CHECK(msg_whole(buf, len, &sender, &seq));
    SP_CHECK(sender < SENDERS && seq == next[sender]);
    SP_CHECK(n == (seq % SOCK_EVERY == 0 ? 1u : 0u));
    next[sender]++;
    total++;
  }
  return 0;
}

static void eight_senders_threads(void **s) { sp_run_threads(eight_receiver, eight_senders); }
static void eight_senders_process(void **s) { sp_run_process(eight_receiver, "eight_senders"); }

/* Linux: these cases use SCM_CREDENTIALS, SOCK_CLOEXEC and per-thread
 * credentials, which macOS (built, never run here) does not have. */
#ifdef __linux__
/* ---- POSIX: a peer that writes raw sendmsg calls. Unexpected control
 * messages (SCM_CREDENTIALS, asked for or not), several SCM_RIGHTS in one
 * message, descriptors without data, more descriptors or bytes than the room
 * given. Each gives the message or SOCKPASS_ETRUNC, never a leaked
 * descriptor, and the channel carries the next message. ---- */

typedef union {
  struct cmsghdr h;
  char b[2048];
} cbuf_t;

/* One raw message: data, then a SCM_CREDENTIALS (when creds), then each
 * group of descriptors as its own SCM_RIGHTS. */
static ssize_t raw_send(int fd, const void *data, size_t len, int creds, const int *fds,
                        const size_t *groups, size_t ngroups) {
  cbuf_t cb;
  struct msghdr m;
  struct iovec iov;
  struct cmsghdr *cm;
  size_t g, used = 0, k = 0;
  memset(&m, 0, sizeof m);
  memset(&cb, 0, sizeof cb);
  iov.iov_base = (void *)data;
  iov.iov_len = len;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = cb.b;
  m.msg_controllen = sizeof cb.b;
  cm = CMSG_FIRSTHDR(&m);
  if (creds) {
    struct ucred uc;
    uc.pid = getpid();
    uc.uid = getuid();
    uc.gid = getgid();
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_CREDENTIALS;
    cm->cmsg_len = CMSG_LEN(sizeof uc);
    memcpy(CMSG_DATA(cm), &uc, sizeof uc);
    used += CMSG_SPACE(sizeof uc);
    cm = sp_cmsg_next(&m, cm);
  }
  for (g = 0; g < ngroups; g++) {
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(groups[g] * sizeof(int));
    memcpy(CMSG_DATA(cm), fds + k, groups[g] * sizeof(int));
    k += groups[g];
    used += CMSG_SPACE(groups[g] * sizeof(int));
    cm = sp_cmsg_next(&m, cm);
  }
  m.msg_controllen = used;
  if (used == 0)
    m.msg_control = NULL;
  /* The system call itself: musl's sendmsg copies the control data into a
   * buffer sized for 255 descriptors alone, and refuses (ENOMEM) the 253
   * descriptors plus credentials of case 5. m is zeroed, its padding too. */
  return syscall(SYS_sendmsg, fd, &m, MSG_NOSIGNAL);
}

static int is_udp_on(int fd, unsigned short port) { return sp_sock_port(fd) == port; }

static void hostile_control_messages(void **s) {
  int sv[2], one = 1, sk, fds[253], got[253], before, i;
  unsigned short port;
  sockpass_chan_t *c;
  char buf[64], big[200];
  size_t n, len, groups[2];

  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  assert_sp(sockpass_open(sv[0], &c), 0);
  sockpass_set_timeout(c, sp_scale_ms(5000));
  sk = sp_udp_socket(&port);
  assert_true(sk >= 0);
  for (i = 0; i < 253; i++)
    fds[i] = sk;
  before = sp_count_fds();

  /* 1. Credentials the receiver asked for (SO_PASSCRED) and credentials the
   *    peer sent unasked, beside three descriptors in two SCM_RIGHTS. */
  assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one), 0);
  groups[0] = 2;
  groups[1] = 1;
  assert_int_equal(raw_send(sv[1], "creds", 5, 1, fds, groups, 2), 5);
  n = 4;
  len = sizeof buf;
  assert_sp(sockpass_recv(c, got, &n, buf, &len), 0);
  assert_int_equal(n, 3);
  assert_int_equal(len, 5);
  assert_memory_equal(buf, "creds", 5);
  for (i = 0; i < 3; i++) {
    assert_true(is_udp_on(got[i], port));
    close(got[i]);
  }
  assert_int_equal(sp_count_fds(), before);

  /* 2. Descriptors with no data at all. */
  groups[0] = 2;
  assert_int_equal(raw_send(sv[1], NULL, 0, 0, fds, groups, 1), 0);
  n = 4;
  len = sizeof buf;
  assert_sp(sockpass_recv(c, got, &n, buf, &len), 0);
  assert_int_equal(n, 2);
  assert_int_equal(len, 0);
  close(got[0]);
  close(got[1]);

  /* 3. More descriptors than the room given, with credentials: ETRUNC, all
   *    five closed, and the next message arrives. */
  groups[0] = 5;
  assert_int_equal(raw_send(sv[1], "five", 4, 1, fds, groups, 1), 4);
  assert_int_equal(raw_send(sv[1], "next", 4, 0, fds, groups, 0), 4);
  n = 2;
  len = sizeof buf;
  assert_sp(sockpass_recv(c, got, &n, buf, &len), SOCKPASS_ETRUNC);
  assert_int_equal(n, 0);
  assert_int_equal(sp_count_fds(), before);
  n = 2;
  len = sizeof buf;
  assert_sp(sockpass_recv(c, got, &n, buf, &len), 0);
  assert_int_equal(n, 0);
  assert_int_equal(len, 4);
  assert_memory_equal(buf, "next", 4);

  /* 4. More bytes than the buffer, with descriptors: ETRUNC, none kept. */
  memset(big, 'b', sizeof big);
  groups[0] = 3;
  assert_int_equal(raw_send(sv[1], big, sizeof big, 1, fds, groups, 1), (ssize_t)sizeof big);
  n = 4;
  len = sizeof buf;
  assert_sp(sockpass_recv(c, got, &n, buf, &len), SOCKPASS_ETRUNC);
  assert_int_equal(n, 0);
  assert_int_equal(sp_count_fds(), before);

  /* 5. The most one message may carry, 253, beside credentials: all arrive
   *    (the control room holds both). */
  groups[0] = 253;
  assert_int_equal(raw_send(sv[1], "max", 3, 1, fds, groups, 1), 3);
  n = 253;
  len = sizeof buf;
  assert_sp(sockpass_recv(c, got, &n, buf, &len), 0);
  assert_int_equal(n, 253);
  for (i = 0; i < 253; i++)
    close(got[i]);
  assert_int_equal(sp_count_fds(), before);

  /* 6. After all that, the channel still works both ways. */
  assert_sp(sockpass_send(c, &sk, 1, "ok", 2), 0);
  {
    size_t nraw = 0;
    assert_int_equal(sp_raw_recv(sv[1], buf, sizeof buf, got, 1, &nraw), 2);
    assert_int_equal(nraw, 1);
    assert_true(is_udp_on(got[0], port));
    close(got[0]);
  }
  close(sk);
  close(sv[1]);
  n = 2;
  len = sizeof buf;
  assert_sp(sockpass_recv(c, got, &n, buf, &len), SOCKPASS_EOF);
  sockpass_close(c);
}

/* ---- POSIX: a stream peer dies halfway through what it meant to send: the
 * bytes and the descriptors that left it arrive, then SOCKPASS_EOF. ---- */

static void stream_peer_dies_mid_message(void **s) {
  int sv[2], sk, got[2];
  unsigned short port;
  sockpass_chan_t *c;
  char buf[64];
  size_t n = 2, len = sizeof buf, groups[1] = {1};
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  assert_sp(sockpass_open(sv[0], &c), 0);
  sockpass_set_timeout(c, sp_scale_ms(5000));
  sk = sp_udp_socket(&port);
  /* The first 3 bytes of a 10-byte message, with its descriptor. */
  assert_int_equal(raw_send(sv[1], "hal", 3, 0, &sk, groups, 1), 3);
  close(sv[1]);
  close(sk);
  assert_sp(sockpass_recv(c, got, &n, buf, &len), 0);
  assert_int_equal(n, 1);
  assert_int_equal(len, 3);
  assert_true(is_udp_on(got[0], port));
  close(got[0]);
  n = 2;
  len = sizeof buf;
  assert_sp(sockpass_recv(c, got, &n, buf, &len), SOCKPASS_EOF);
  sockpass_close(c);
}

/* ---- Safe defaults: a named endpoint made with the defaults refuses
 * another local user and serves its own. The other user is a thread that
 * drops to uid/gid 65534 with raw system calls, which on Linux change the
 * calling thread's credentials only (glibc's setuid would change every
 * thread's); needs root, skipped otherwise. ---- */

#define OTHER_ID 65534

static const char *other_name;

static int connect_as_other(sockpass_chan_t *unused) {
  sockpass_chan_t *c = NULL;
  int rc;
  (void)unused;
  SP_CHECK(syscall(SYS_setgroups, 0, NULL) == 0);
  SP_CHECK(syscall(SYS_setresgid, OTHER_ID, OTHER_ID, OTHER_ID) == 0);
  SP_CHECK(syscall(SYS_setresuid, OTHER_ID, OTHER_ID, OTHER_ID) == 0);
  SP_CHECK(syscall(SYS_geteuid) == OTHER_ID);
  rc = sockpass_connect(other_name, &c);
  if (other_name[0] == '@') {
    /* Linux abstract names have no permissions: the connection is made, and
     * the listener's default peer check closes it before anything is sent. */
    char buf[4];
    size_t n = 0, len = sizeof buf;
    SP_CHECK_RC(rc, 0);
    SP_CHECK_RC(sockpass_set_timeout(c, sp_scale_ms(10000)), 0);
    rc = sockpass_recv(c, NULL, &n, buf, &len);
    sockpass_close(c);
    SP_CHECK_RC(rc, SOCKPASS_EOF);
    return 0;
  }
  if (rc == 0)
    sockpass_close(c);
  SP_CHECK_RC(rc, SOCKPASS_EACCES);
  return 0;
}

/* Accepts on listener for the other user's thread: its connection must be
 * dropped, so accept only ends by the timeout. */
static int accept_nothing(sockpass_chan_t *listener) {
  sockpass_chan_t *c = NULL;
  SP_CHECK_RC(sockpass_set_timeout(listener, sp_scale_ms(3000)), 0);
  SP_CHECK_RC(sockpass_accept(listener, &c), SOCKPASS_ETIMEDOUT);
  SP_CHECK_RC(sockpass_set_timeout(listener, SOCKPASS_WAIT_FOREVER), 0);
  return 0;
}

static void other_user_refused(void **s) {
  char name[108];
  sockpass_chan_t *l, *a, *b;
  struct stat st;
  char buf[4];
  size_t n = 0, len = sizeof buf;
  if (geteuid() != 0) {
    print_message("other_user_refused: needs root to act as another user; skipped\n");
    skip();
  }
  snprintf(name, sizeof name, "/tmp/sockpass-owner-%ld.sock", (long)getpid());
  assert_sp(sockpass_listen(name, &l), 0);
  assert_int_equal(stat(name, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  other_name = name;
  assert_int_equal(sp_thread_join(sp_thread_start(connect_as_other, NULL)), 0);
  /* Its owner connects and talks. */
  assert_sp(sockpass_connect(name, &a), 0);
  assert_sp(sockpass_accept(l, &b), 0);
  assert_sp(sockpass_send(a, NULL, 0, "hi", 2), 0);
  assert_sp(sockpass_recv(b, NULL, &n, buf, &len), 0);
  assert_int_equal(len, 2);
  sockpass_close(a);
  sockpass_close(b);
  sockpass_close(l);
}

/* The same for a Linux abstract name, which any local user can reach. */
static void other_user_refused_abstract(void **s) {
  char name[108];
  sockpass_chan_t *l, *a, *b;
  sp_thread_t *t;
  if (geteuid() != 0) {
    print_message("other_user_refused_abstract: needs root to act as another user; skipped\n");
    skip();
  }
  snprintf(name, sizeof name, "@sockpass-owner-%ld", (long)getpid());
  assert_sp(sockpass_listen(name, &l), 0);
  other_name = name;
  t = sp_thread_start(accept_nothing, l);
  assert_int_equal(sp_thread_join(sp_thread_start(connect_as_other, NULL)), 0);
  assert_int_equal(sp_thread_join(t), 0);
  assert_sp(sockpass_connect(name, &a), 0);
  assert_sp(sockpass_accept(l, &b), 0);
  sockpass_close(a);
  sockpass_close(b);
  sockpass_close(l);
}
#endif

static const sp_role_t roles[] = {
    {"dying_sender", dying_sender},
    {"send_one_then_close", send_one_then_close},
    {"send_until_eof", send_until_eof},
    {"eight_senders", eight_senders},
};

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(peer_dies_mid_send), /* counts for itself: see there */
      SP_TEST(close_races_recv_threads),
      SP_TEST(close_races_recv_process),
      SP_TEST(receiver_leaves_mid_stream),
      SP_TEST(eight_senders_threads),
      SP_TEST(eight_senders_process),
#ifdef __linux__
      SP_TEST(hostile_control_messages),
      SP_TEST(stream_peer_dies_mid_message),
      SP_TEST(other_user_refused),
      SP_TEST(other_user_refused_abstract),
#endif
  };
  return sp_test_main(argc, argv, "faults", tests, sizeof tests / sizeof tests[0], roles,
                      sizeof roles / sizeof roles[0]);
}
