/* SPDX-License-Identifier: MIT */
/* Starting programs with sockets and reading them in the started program:
 * sockpass_spawn, sockpass_proc_*, sockpass_inherited*. The started program
 * is this binary again, run as "--spawned MODE ...". */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <process.h>
#else
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#endif
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define SP_WAIT_MS sp_scale_ms(20000)

static char sp_exe[4096];

/* ---- The started program's side ---- */

/* Every descriptor open in this process (below the soft limit: valgrind
 * keeps its own above it) must be one of 0, 1, 2 or 3 .. 3 + n - 1. */
static int sp_only_fds(int n) {
#ifdef _WIN32
  (void)n;
  return 0;
#else
  struct rlimit rl;
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int bad = 0;
  if (d == NULL)
    return 0; /* no /proc: nothing to compare with */
  getrlimit(RLIMIT_NOFILE, &rl);
  while ((e = readdir(d)) != NULL) {
    int fd;
    if (e->d_name[0] == '.')
      continue;
    fd = atoi(e->d_name);
    if (fd == dirfd(d) || fd < 3 + n || (rlim_t)fd >= rl.rlim_cur)
      continue;
    fprintf(stderr, "spawned: descriptor %d is open and was not given\n", fd);
    bad = 1;
  }
  closedir(d);
  return bad;
#endif
}

/* A value of the parent's that must not exist here. */
static int sp_absent(const char *value) {
#ifdef _WIN32
  HANDLE h = (HANDLE)(uintptr_t)_strtoui64(value, NULL, 10);
  DWORD flags;
  int type, len = sizeof type;
  if (getsockopt((SOCKET)(uintptr_t)h, SOL_SOCKET, SO_TYPE, (char *)&type, &len) == 0 ||
      GetHandleInformation(h, &flags)) {
    fprintf(stderr, "spawned: the parent's handle %s is open here\n", value);
    return 1;
  }
  return 0;
#else
  if (fcntl(atoi(value), F_GETFD) >= 0 || errno != EBADF) {
    fprintf(stderr, "spawned: the parent's descriptor %s is open here\n", value);
    return 1;
  }
  return 0;
#endif
}

/* 1 when s is readable (a connection waits) within ms, 0 on timeout. */
static int sp_wait_readable(sockpass_sock_t s, int ms) {
  fd_set set;
  struct timeval tv;
  FD_ZERO(&set);
  FD_SET(s, &set);
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return select((int)s + 1, &set, NULL, NULL, &tv);
}

/* listen N NAMES exact|loose [ABSENT...]: check what was inherited, then
 * accept one connection on each socket and answer "ok<i>" (or "bad"). */
static int sp_mode_listen(int argc, char **argv) {
  sockpass_sock_t s[8], again[8];
  size_t n = 8, n2 = 8, i, want;
  int bad = 0, k;
  char names[256], *name, *next;
  if (argc < 3)
    return 2;
  want = (size_t)atoi(argv[0]);
#ifdef _WIN32
  sp_net_init(); /* the answers below use plain Winsock calls */
#endif
  if (want > 0) {
    /* Too little room: ETRUNC, the count needed, and nothing written. */
    size_t small = want - 1;
    again[0] = SOCKPASS_INVALID_SOCK;
    SP_CHECK_RC(sockpass_inherited(again, &small), SOCKPASS_ETRUNC);
    SP_CHECK(small == want && again[0] == SOCKPASS_INVALID_SOCK);
  }
  SP_CHECK_RC(sockpass_inherited(s, &n), 0);
  SP_CHECK(n == want);
  SP_CHECK_RC(sockpass_inherited(again, &n2), 0);
  SP_CHECK(n2 == n && memcmp(s, again, n * sizeof s[0]) == 0);
  SP_CHECK(sockpass_inherited_name(n) == NULL);
  SP_CHECK(getenv("LISTEN_FDS") == NULL && getenv("SOCKPASS_SOCKETS") == NULL);
  snprintf(names, sizeof names, "%s", argv[1]);
  for (i = 0, name = names; i < n; i++, name = next) {
    const char *got = sockpass_inherited_name(i);
    next = name != NULL ? strchr(name, ',') : NULL;
    if (next != NULL)
      *next++ = '\0';
    if (name == NULL || got == NULL || strcmp(got, name) != 0) {
      fprintf(stderr, "spawned: name %zu is \"%s\", expected \"%s\"\n", i, got ? got : "(null)",
              name ? name : "(none)");
      bad = 1;
    }
  }
#ifndef _WIN32
  /* What sockpass_inherited hands over is close-on-exec. */
  for (i = 0; i < n; i++)
    if (!(fcntl(s[i], F_GETFD) & FD_CLOEXEC)) {
      fprintf(stderr, "spawned: inherited socket %zu (descriptor %d) is not close-on-exec\n", i,
              s[i]);
      bad = 1;
    }
#endif
  if (strcmp(argv[2], "exact") == 0)
    bad |= sp_only_fds((int)n);
  for (k = 3; k < argc; k++)
    bad |= sp_absent(argv[k]);
  for (i = 0; i < n; i++) {
    char reply[8];
    sockpass_sock_t c;
    SP_CHECK(sp_wait_readable(s[i], SP_WAIT_MS) > 0); /* never outlive a failed starter */
    c = accept(s[i], NULL, NULL);
    SP_CHECK(c != SOCKPASS_INVALID_SOCK);
    snprintf(reply, sizeof reply, bad ? "bad" : "ok%u", (unsigned)i);
    sp_write_all(c, reply, strlen(reply));
    sockpass_close_sock(c);
    sockpass_close_sock(s[i]);
  }
  return bad;
}

/* chan exact|loose: receive a socket and "ping" on the inherited channel, write "pong"
 * to the socket, answer "done". */
static int sp_mode_chan(const char *check) {
  sockpass_chan_t *chan, *none;
  sockpass_sock_t s;
  size_t n = 1, len = 16;
  char buf[16];
  size_t zero = 0;
  SP_CHECK_RC(sockpass_inherited(NULL, &zero), 0);
  SP_CHECK(zero == 0);
  /* Checked before the channel is made: making it adds its own wake
   * descriptor (docs/api.md, "What a channel holds"). */
  if (strcmp(check, "exact") == 0 && sp_only_fds(1) != 0)
    return 1;
  SP_CHECK_RC(sockpass_inherited_chan(&chan), 0);
  SP_CHECK_RC(sockpass_inherited_chan(&none), SOCKPASS_ENOENT);
  SP_CHECK_RC(sockpass_recv(chan, &s, &n, buf, &len), 0);
  SP_CHECK(n == 1 && len == 4 && memcmp(buf, "ping", 4) == 0);
  SP_CHECK(sp_write_all(s, "pong", 4) == 0);
  sockpass_close_sock(s);
  SP_CHECK_RC(sockpass_send(chan, NULL, 0, "done", 4), 0);
  sockpass_close(chan);
  return 0;
}

/* stdio: a program that never heard of sockets. Upper-case stdin to stdout
 * until end of input. */
static int sp_mode_stdio(void) {
  char buf[512];
  for (;;) {
    size_t i;
#ifdef _WIN32
    DWORD got, put;
    if (!ReadFile(GetStdHandle(STD_INPUT_HANDLE), buf, sizeof buf, &got, NULL) || got == 0)
      return 0;
#else
    ssize_t got = read(0, buf, sizeof buf), put;
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return got < 0;
#endif
    for (i = 0; i < (size_t)got; i++)
      if (buf[i] >= 'a' && buf[i] <= 'z')
        buf[i] = (char)(buf[i] - 'a' + 'A');
#ifdef _WIN32
    if (!WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), buf, got, &put, NULL) || put != got)
      return 1;
#else
    if ((put = write(1, buf, (size_t)got)) != got)
      return 1;
#endif
  }
}

static void sp_setenv(const char *name, const char *value) {
#ifdef _WIN32
  char buf[256];
  SetEnvironmentVariableA(name, value);
  snprintf(buf, sizeof buf, "%s=%s", name, value);
  _putenv(buf);
#else
  setenv(name, value, 1);
#endif
}

/* env-other | env-bad | env-notsock [PARENT_PID]: variables made by hand. */
static int sp_mode_env(const char *kind, const char *parent) {
  sockpass_sock_t s[4];
  size_t n = 4;
  char num[32];
  if (strcmp(kind, "env-other") == 0) {
    /* Variables meant for another process: a count of 0. */
    snprintf(num, sizeof num, "%ld", sp_getpid() + 100000);
#ifdef _WIN32
    sp_setenv("SOCKPASS_PPID", num);
    sp_setenv("SOCKPASS_SOCKETS", "4");
#else
    sp_setenv("LISTEN_PID", num);
    sp_setenv("LISTEN_FDS", "1");
#endif
    SP_CHECK_RC(sockpass_inherited(s, &n), 0);
    SP_CHECK(n == 0);
  } else if (strcmp(kind, "env-bad") == 0) {
#ifdef _WIN32
    sp_setenv("SOCKPASS_PPID", parent);
    sp_setenv("SOCKPASS_SOCKETS", "4;x");
#else
    snprintf(num, sizeof num, "%ld", sp_getpid());
    sp_setenv("LISTEN_PID", num);
    sp_setenv("LISTEN_FDS", "1x");
#endif
    SP_CHECK_RC(sockpass_inherited(s, &n), SOCKPASS_EPROTO);
    SP_CHECK(n == 0);
  } else if (strcmp(kind, "env-names") == 0 || strcmp(kind, "env-keep") == 0) {
    /* One real socket, given the way a starter gives it, with two names
     * (refused, as systemd refuses it) or one name and the environment
     * kept (sd_listen_fds(0)). */
    int keep = strcmp(kind, "env-keep") == 0;
    unsigned short port;
    sockpass_sock_t u;
#ifdef _WIN32
    sp_net_init(); /* the socket below is made with plain Winsock */
#endif
    u = sp_udp_socket(&port);
    SP_CHECK(u != SOCKPASS_INVALID_SOCK);
#ifdef _WIN32
    snprintf(num, sizeof num, "%llu", (unsigned long long)u);
    sp_setenv("SOCKPASS_PPID", parent);
    sp_setenv("SOCKPASS_SOCKETS", num);
    sp_setenv("SOCKPASS_NAMES", keep ? "one" : "one:two");
#else
    (void)parent;
    SP_CHECK(u == 3 || dup2(u, 3) == 3);
    if (u != 3)
      close(u);
    u = 3;
    snprintf(num, sizeof num, "%ld", sp_getpid());
    sp_setenv("LISTEN_PID", num);
    sp_setenv("LISTEN_FDS", "1");
    sp_setenv("LISTEN_FDNAMES", keep ? "one" : "one:two");
#endif
    if (keep) {
      SP_CHECK_RC(sockpass_inherited_keep_env(), 0);
      SP_CHECK_RC(sockpass_inherited(s, &n), 0);
      SP_CHECK(n == 1 && sp_sock_port(s[0]) == port);
      SP_CHECK(strcmp(sockpass_inherited_name(0), "one") == 0);
      SP_CHECK_RC(sockpass_inherited_keep_env(), SOCKPASS_EINVAL); /* too late */
      SP_CHECK(getenv("LISTEN_FDS") != NULL || getenv("SOCKPASS_SOCKETS") != NULL);
      sockpass_close_sock(s[0]); /* u, or its copy (then u was closed by adopt) */
      return 0;
    }
    SP_CHECK_RC(sockpass_inherited(s, &n), SOCKPASS_EPROTO);
    SP_CHECK(n == 0);
    SP_CHECK(sp_sock_port(u) == port); /* left open, not handed over */
    sockpass_close_sock(u);
  } else {
#ifndef _WIN32
    int p[2];
    (void)parent;
    SP_CHECK(pipe(p) == 0 && dup2(p[0], 3) == 3);
    snprintf(num, sizeof num, "%ld", sp_getpid());
    sp_setenv("LISTEN_PID", num);
    sp_setenv("LISTEN_FDS", "1");
    SP_CHECK_RC(sockpass_inherited(s, &n), SOCKPASS_ENOTSOCK);
    SP_CHECK(n == 0);
    SP_CHECK(fcntl(3, F_GETFD) == FD_CLOEXEC); /* left open, close-on-exec */
    close(3);
    close(p[0]);
    close(p[1]);
#else
    return 2; /* POSIX only */
#endif
  }
  SP_CHECK(getenv("LISTEN_FDS") == NULL && getenv("SOCKPASS_SOCKETS") == NULL);
  SP_CHECK(sockpass_inherited_name(0) == NULL);
  return 0;
}

/* starter FLAGS: start "sleep" with those sockpass_spawn flags, tell its pid
 * on the inherited channel, then wait until the channel ends (or this
 * process is killed). */
static int sp_mode_starter(unsigned flags) {
  const char *argv[] = {sp_exe, "--spawned", "sleep", NULL};
  sockpass_spawn_opts_t o;
  sockpass_chan_t *chan;
  sockpass_proc_t *p;
  unsigned char b[4];
  size_t n = 0, len = sizeof b;
  SP_CHECK_RC(sockpass_inherited_chan(&chan), 0);
  sockpass_spawn_opts_init(&o);
  o.flags = flags;
  SP_CHECK_RC(sockpass_spawn(sp_exe, argv, &o, &p), 0);
  sp_put32(b, (uint32_t)sockpass_proc_pid(p));
  SP_CHECK_RC(sockpass_send(chan, NULL, 0, b, 4), 0);
  (void)sockpass_recv(chan, NULL, &n, b, &len);
  sockpass_proc_kill(p);
  sockpass_proc_wait(p, SOCKPASS_WAIT_FOREVER, NULL);
  sockpass_proc_free(p);
  sockpass_close(chan);
  return 0;
}

static int sp_spawned_main(int argc, char **argv) {
  if (argc < 1)
    return 2;
  if (strcmp(argv[0], "listen") == 0)
    return sp_mode_listen(argc - 1, argv + 1);
  if (strcmp(argv[0], "chan") == 0)
    return sp_mode_chan(argc > 1 ? argv[1] : "exact");
  if (strcmp(argv[0], "stdio") == 0)
    return sp_mode_stdio();
  if (strcmp(argv[0], "sleep") == 0) {
    sp_sleep_ms(60000);
    return 0;
  }
  if (strcmp(argv[0], "starter") == 0 && argc == 2)
    return sp_mode_starter((unsigned)atoi(argv[1]));
  if (strcmp(argv[0], "exit") == 0 && argc == 2)
    return atoi(argv[1]);
  if (strncmp(argv[0], "env-", 4) == 0)
    return sp_mode_env(argv[0], argc > 1 ? argv[1] : "0");
  return 2;
}

/* ---- The starter's side ---- */

/* Children of the running test, stopped by the teardown when a failed
 * assertion left them behind. */
static sockpass_proc_t *sp_running[4];

static void sp_track(sockpass_proc_t *p, int on) {
  size_t i;
  for (i = 0; i < sizeof sp_running / sizeof sp_running[0]; i++) {
    if (on && sp_running[i] == NULL) {
      sp_running[i] = p;
      return;
    }
    if (!on && sp_running[i] == p) {
      sp_running[i] = NULL;
      return;
    }
  }
}

static int sp_spawn_after(void **state) {
  size_t i;
  for (i = 0; i < sizeof sp_running / sizeof sp_running[0]; i++) {
    if (sp_running[i] != NULL) {
      sockpass_proc_kill(sp_running[i]);
      sockpass_proc_wait(sp_running[i], SOCKPASS_WAIT_FOREVER, NULL);
      sockpass_proc_free(sp_running[i]);
      sp_running[i] = NULL;
    }
  }
  return sp_fd_after(state);
}

#define SP_SPAWN_TEST(fn) cmocka_unit_test_setup_teardown(fn, sp_fd_before, sp_spawn_after)

static sockpass_proc_t *sp_start(const char *const *args, const sockpass_spawn_opts_t *o) {
  const char *argv[16];
  sockpass_proc_t *p = NULL;
  size_t i = 0;
  int rc;
  argv[i++] = sp_exe;
  argv[i++] = "--spawned";
  for (; *args != NULL; args++)
    argv[i++] = *args;
  argv[i] = NULL;
  rc = sockpass_spawn(sp_exe, argv, o, &p);
  if (rc != 0)
    fail_msg("sockpass_spawn: %s (%s)", sockpass_err_name(rc), sockpass_strerror(rc));
  sp_track(p, 1);
  return p;
}

/* Wait for the child, bounded; a child that hangs is stopped and fails. */
static int sp_finish(sockpass_proc_t *p) {
  int code = -1, rc = sockpass_proc_wait(p, SP_WAIT_MS, &code);
  sp_track(p, 0);
  if (rc != 0) {
    sockpass_proc_kill(p);
    sockpass_proc_wait(p, SOCKPASS_WAIT_FOREVER, &code);
    sockpass_proc_free(p);
    fail_msg("%s", "the started program did not end in time");
  }
  sockpass_proc_free(p);
  return code;
}

static void sp_expect_reply(unsigned short port, const char *want) {
  char buf[8] = {0};
  sockpass_sock_t c = sp_tcp_connect(port);
  assert_true(c != SOCKPASS_INVALID_SOCK);
  assert_int_equal(sp_read_n(c, buf, strlen(want)), 0);
  assert_string_equal(buf, want);
  sockpass_close_sock(c);
}

/* Two listeners, named, are all the child has of this process: an
 * inheritable socket and an inheritable handle of ours stay behind. */
static void spawn_listeners(void **state) {
  sockpass_spawn_opts_t o;
  sockpass_sock_t ls[2];
  unsigned short port[2];
  const char *names[] = {"alpha", "beta"};
  char other1[32], other2[32];
  const char *args[] = {"listen", "2", "alpha,beta", "exact", other1, other2, NULL};
#ifdef _WIN32
  SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
  SOCKET stray = socket(AF_INET, SOCK_STREAM, 0); /* inheritable, as Winsock makes it */
  HANDLE ev = CreateEventA(&sa, TRUE, FALSE, NULL);
  snprintf(other1, sizeof other1, "%llu", (unsigned long long)stray);
  snprintf(other2, sizeof other2, "%llu", (unsigned long long)(uintptr_t)ev);
#else
  /* Both strays sit well above every descriptor the starter uses, with free
   * numbers below them: the child's own descriptors land in that gap, so
   * only closing everything above them (not just up to the highest one the
   * child made) removes the strays, however densely this process's
   * descriptors are packed. */
  int pfd[2];
  int stray, far;
  assert_int_equal(pipe(pfd), 0);
  far = fcntl(pfd[1], F_DUPFD, 96); /* F_DUPFD: not close-on-exec */
  assert_true(far >= 96);
  snprintf(other2, sizeof other2, "%d", far);
#endif
  (void)state;
  ls[0] = sp_tcp_listener(&port[0]);
  ls[1] = sp_tcp_listener(&port[1]);
#ifndef _WIN32
  stray = fcntl(ls[0], F_DUPFD, 64); /* a socket, not close-on-exec either */
  assert_true(stray >= 64);
  snprintf(other1, sizeof other1, "%d", stray);
#endif
  sockpass_spawn_opts_init(&o);
  o.socks = ls;
  o.nsocks = 2;
  o.names = names;
  {
    sockpass_proc_t *p = sp_start(args, &o);
    sp_expect_reply(port[0], "ok0");
    sp_expect_reply(port[1], "ok1");
    assert_int_equal(sp_finish(p), 0);
  }
  sockpass_close_sock(ls[0]);
  sockpass_close_sock(ls[1]);
#ifdef _WIN32
  closesocket(stray);
  CloseHandle(ev);
#else
  close(stray);
  close(far);
  close(pfd[0]);
  close(pfd[1]);
#endif
}

/* No names given: every name reads "unknown", as under systemd. */
static void spawn_unnamed(void **state) {
  sockpass_spawn_opts_t o;
  sockpass_sock_t l;
  unsigned short port;
  const char *args[] = {"listen", "1", "unknown", "loose", NULL};
  sockpass_proc_t *p;
  (void)state;
  l = sp_tcp_listener(&port);
  sockpass_spawn_opts_init(&o);
  o.socks = &l;
  o.nsocks = 1;
  p = sp_start(args, &o);
  sp_expect_reply(port, "ok0");
  assert_int_equal(sp_finish(p), 0);
  sockpass_close_sock(l);
}

/* A channel end for the child; the pair's other end stays here. */
static void spawn_channel(void **state) {
  sockpass_spawn_opts_t o;
  sockpass_chan_t *a, *b;
  sockpass_sock_t client, server;
  sockpass_proc_t *p;
  const char *args[] = {"chan", "exact", NULL};
  char buf[8] = {0};
  size_t n = 0, len = sizeof buf;
  (void)state;
  assert_sp(sockpass_pair(&a, &b), 0);
  assert_int_equal(sp_tcp_pair(&client, &server), 0);
  sockpass_spawn_opts_init(&o);
  o.chan = b; /* belongs to the child from now on */
  p = sp_start(args, &o);
  assert_sp(sockpass_send(a, &server, 1, "ping", 4), 0);
  sockpass_close_sock(server);
  assert_int_equal(sp_read_n(client, buf, 4), 0);
  assert_string_equal(buf, "pong");
  assert_sp(sockpass_recv(a, NULL, &n, buf, &len), 0);
  assert_true(len == 4 && memcmp(buf, "done", 4) == 0);
  assert_int_equal(sp_finish(p), 0);
  sockpass_close_sock(client);
  sockpass_close(a);
}

/* inetd mode: a connection as stdin and stdout of a program that only
 * reads and writes its standard handles. */
static void spawn_inetd(void **state) {
  sockpass_spawn_opts_t o;
  sockpass_sock_t client, server;
  sockpass_proc_t *p;
  const char *args[] = {"stdio", NULL};
  const char msg[] = "hello from a socket\n";
  char buf[sizeof msg] = {0};
  (void)state;
  assert_int_equal(sp_tcp_pair(&client, &server), 0);
  sockpass_spawn_opts_init(&o);
  o.stdio = server;
  p = sp_start(args, &o);
  sockpass_close_sock(server); /* the child has its own copy */
  assert_int_equal(sp_write_all(client, msg, sizeof msg - 1), 0);
#ifdef _WIN32
  shutdown(client, SD_SEND);
#else
  shutdown(client, SHUT_WR);
#endif
  assert_int_equal(sp_read_n(client, buf, sizeof msg - 1), 0);
  assert_string_equal(buf, "HELLO FROM A SOCKET\n");
  assert_int_equal(sp_finish(p), 0);
  sockpass_close_sock(client);
}

/* Two threads spawning at once: each child has its own listener only
 * (the child checks its descriptors; its single socket must answer). */
#define SP_ROUNDS 6
static int sp_spawn_rounds(sockpass_chan_t *unused) {
  int i;
  (void)unused;
  for (i = 0; i < SP_ROUNDS; i++) {
    sockpass_spawn_opts_t o;
    unsigned short port;
    sockpass_sock_t l = sp_tcp_listener(&port), c;
    const char *argv[] = {sp_exe, "--spawned", "listen", "1", "unknown", "exact", NULL};
    sockpass_proc_t *p;
    char buf[4] = {0};
    int code = -1;
    SP_CHECK(l != SOCKPASS_INVALID_SOCK);
    sockpass_spawn_opts_init(&o);
    o.socks = &l;
    o.nsocks = 1;
    SP_CHECK_RC(sockpass_spawn(sp_exe, argv, &o, &p), 0);
    c = sp_tcp_connect(port);
    SP_CHECK(c != SOCKPASS_INVALID_SOCK && sp_read_n(c, buf, 3) == 0);
    SP_CHECK(strcmp(buf, "ok0") == 0);
    sockpass_close_sock(c);
    SP_CHECK_RC(sockpass_proc_wait(p, SP_WAIT_MS, &code), 0);
    SP_CHECK(code == 0);
    sockpass_proc_free(p);
    sockpass_close_sock(l);
  }
  return 0;
}

static void spawn_concurrent(void **state) {
  sp_thread_t *t;
  (void)state;
  t = sp_thread_start(sp_spawn_rounds, NULL);
  assert_int_equal(sp_spawn_rounds(NULL), 0);
  assert_int_equal(sp_thread_join(t), 0);
}

/* Bad input: a clear error, and the channel offered stays the caller's. */
static void spawn_errors(void **state) {
  sockpass_spawn_opts_t o;
  sockpass_proc_t *p = NULL;
  sockpass_chan_t *a, *b;
  sockpass_sock_t l, socks[SOCKPASS_MAX_SOCKS + 1];
  unsigned short port;
  /* Should a bad call start it after all, the program exits at once (it
   * must never run this suite again inside itself). */
  const char *argv[] = {"x", "--spawned", NULL};
  const char *bad_names[] = {"has:colon"};
  const char *empty_name[] = {""};
  char buf[8];
  size_t n = 0, len = sizeof buf, i;
  (void)state;
  l = sp_tcp_listener(&port);
  assert_sp(sockpass_pair(&a, &b), 0);
  sockpass_spawn_opts_init(&o);
  o.chan = b;
  assert_sp(sockpass_spawn("sockpass-no-such-program", argv, &o, &p), SOCKPASS_ENOENT);
  assert_null(p);
#ifdef _WIN32
  assert_sp(sockpass_spawn("C:\\no\\such\\dir\\prog.exe", argv, &o, &p), SOCKPASS_ENOENT);
#else
  assert_sp(sockpass_spawn("/no/such/dir/prog", argv, &o, &p), SOCKPASS_ENOENT);
  assert_sp(sockpass_spawn("/dev/null", argv, &o, &p), SOCKPASS_EACCES);
#endif
  assert_sp(sockpass_spawn(sp_exe, NULL, &o, &p), SOCKPASS_EINVAL);
  assert_sp(sockpass_spawn(NULL, argv, &o, &p), SOCKPASS_EINVAL);
  assert_sp(sockpass_spawn(sp_exe, argv, &o, NULL), SOCKPASS_EINVAL);
  o.socks = &l;
  o.nsocks = 1;
  o.names = bad_names;
  assert_sp(sockpass_spawn(sp_exe, argv, &o, &p), SOCKPASS_EINVAL);
  o.names = empty_name;
  assert_sp(sockpass_spawn(sp_exe, argv, &o, &p), SOCKPASS_EINVAL);
  o.names = NULL;
  o.flags = 2; /* not a flag */
  assert_sp(sockpass_spawn(sp_exe, argv, &o, &p), SOCKPASS_EINVAL);
  o.flags = SOCKPASS_SPAWN_KILL_WITH_PARENT | 0x80000000u;
  assert_sp(sockpass_spawn(sp_exe, argv, &o, &p), SOCKPASS_EINVAL);
  o.flags = 0;
  for (i = 0; i < SOCKPASS_MAX_SOCKS + 1; i++)
    socks[i] = l;
  o.socks = socks;
  o.nsocks = SOCKPASS_MAX_SOCKS + 1;
  assert_sp(sockpass_spawn(sp_exe, argv, &o, &p), SOCKPASS_ETOOMANY);
  socks[0] = SOCKPASS_INVALID_SOCK;
  o.nsocks = 1;
  assert_sp(sockpass_spawn(sp_exe, argv, &o, &p), SOCKPASS_EBADF);
#ifndef _WIN32
  {
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    socks[0] = pfd[0];
    assert_sp(sockpass_spawn(sp_exe, argv, &o, &p), SOCKPASS_ENOTSOCK);
    o.nsocks = 0;
    o.stdio = pfd[1];
    assert_sp(sockpass_spawn(sp_exe, argv, &o, &p), SOCKPASS_ENOTSOCK);
    close(pfd[0]);
    close(pfd[1]);
  }
#endif
  assert_null(p);
  /* After all of that, b is still ours and still connected. */
  assert_sp(sockpass_send(b, NULL, 0, "still", 5), 0);
  assert_sp(sockpass_recv(a, NULL, &n, buf, &len), 0);
  assert_true(len == 5 && memcmp(buf, "still", 5) == 0);
  sockpass_close(a);
  sockpass_close(b);
  sockpass_close_sock(l);
}

static void proc_wait_kill(void **state) {
  const char *sleep_args[] = {"sleep", NULL};
  const char *exit_args[] = {"exit", "7", NULL};
  sockpass_proc_t *p;
  int code = -1;
  (void)state;
  p = sp_start(exit_args, NULL);
  assert_true(sockpass_proc_pid(p) > 0);
  assert_int_equal(sp_finish(p), 7);

  p = sp_start(sleep_args, NULL);
  assert_sp(sockpass_proc_wait(p, SOCKPASS_NONBLOCK, &code), SOCKPASS_EAGAIN);
  assert_sp(sockpass_proc_wait(p, 50, &code), SOCKPASS_ETIMEDOUT);
  assert_sp(sockpass_proc_kill(p), 0);
  assert_sp(sockpass_proc_wait(p, SP_WAIT_MS, &code), 0);
#ifdef _WIN32
  assert_int_equal(code, 1);
#else
  assert_int_equal(code, 128 + SIGTERM);
#endif
  /* Ended: the same code again, and stopping it again is not an error. */
  code = -1;
  assert_sp(sockpass_proc_wait(p, SOCKPASS_NONBLOCK, &code), 0);
  assert_sp(sockpass_proc_kill(p), 0);
  sp_track(p, 0);
  sockpass_proc_free(p);
  assert_sp(sockpass_proc_wait(NULL, 0, &code), SOCKPASS_EINVAL);
  assert_int_equal(sockpass_proc_pid(NULL), -1);
}

/* A process by pid: ended (and reaped here if it came to this process as
 * an orphan), or not; and stopping it outright. */
static int sp_pid_gone(long pid) {
#ifdef _WIN32
  HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)pid);
  int gone;
  if (h == NULL)
    return GetLastError() == ERROR_INVALID_PARAMETER;
  gone = WaitForSingleObject(h, 0) == WAIT_OBJECT_0;
  CloseHandle(h);
  return gone;
#else
  int st;
  if (waitpid((pid_t)pid, &st, WNOHANG) == (pid_t)pid)
    return 1;
  return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
#endif
}

static void sp_pid_kill(long pid) {
#ifdef _WIN32
  HANDLE h = OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE, FALSE, (DWORD)pid);
  if (h != NULL) {
    TerminateProcess(h, 1);
    WaitForSingleObject(h, 10000);
    CloseHandle(h);
  }
#else
  kill((pid_t)pid, SIGKILL);
#endif
}

/* SOCKPASS_SPAWN_KILL_WITH_PARENT: a starter killed outright takes its
 * child along within a second; without the flag the child lives on. */
static void kill_with_parent(void **state) {
  int round;
  (void)state;
#ifdef __linux__
  /* Orphans come to this process, so an ended one is reaped, not a zombie
   * of an init that may not reap. */
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
#endif
  for (round = 0; round < 2; round++) {
    unsigned flags = round == 0 ? SOCKPASS_SPAWN_KILL_WITH_PARENT : 0;
    char fl[16];
    const char *args[] = {"starter", fl, NULL};
    sockpass_spawn_opts_t o;
    sockpass_chan_t *mine, *theirs;
    sockpass_proc_t *p;
    unsigned char b[8];
    size_t n = 0, len = sizeof b;
    long grandchild, waited = 0;
    snprintf(fl, sizeof fl, "%u", flags);
    assert_sp(sockpass_pair(&mine, &theirs), 0);
    sockpass_spawn_opts_init(&o);
    o.chan = theirs;
    p = sp_start(args, &o);
    assert_sp(sockpass_set_timeout(mine, sp_scale_ms(SP_WAIT_MS)), 0);
    assert_sp(sockpass_recv(mine, NULL, &n, b, &len), 0);
    assert_int_equal(len, 4);
    grandchild = (long)sp_get32(b);
    assert_false(sp_pid_gone(grandchild));
#ifdef _WIN32
    assert_sp(sockpass_proc_kill(p), 0); /* TerminateProcess */
#else
    assert_int_equal(kill((pid_t)sockpass_proc_pid(p), SIGKILL), 0);
#endif
    assert_sp(sockpass_proc_wait(p, SP_WAIT_MS, NULL), 0);
    sp_track(p, 0);
    sockpass_proc_free(p);
    sockpass_close(mine);
    if (flags != 0) {
      /* Typically gone within milliseconds (printed below); the bound is
       * loose so that a loaded machine does not fail the case. */
      while (!sp_pid_gone(grandchild) && waited < sp_scale_ms(5000)) {
        sp_sleep_ms(10);
        waited += 10;
      }
      if (!sp_pid_gone(grandchild)) {
        sp_pid_kill(grandchild);
        fail_msg("child %ld still runs %ld ms after its starter was killed", grandchild, waited);
      }
      print_message("with the flag: gone after about %ld ms\n", waited);
    } else {
      sp_sleep_ms(300);
      waited = !sp_pid_gone(grandchild);
      sp_pid_kill(grandchild);
      while (!sp_pid_gone(grandchild))
        sp_sleep_ms(10);
      assert_true(waited); /* it was still running: the flag is opt-in */
    }
  }
}

/* Variables made by hand in the child: meant for another process, malformed,
 * or naming a descriptor that is not a socket. */
static void inherited_env(void **state) {
  char parent[32];
  const char *other[] = {"env-other", NULL};
  const char *bad[] = {"env-bad", parent, NULL};
  (void)state;
  snprintf(parent, sizeof parent, "%ld", sp_getpid());
  assert_int_equal(sp_finish(sp_start(other, NULL)), 0);
  assert_int_equal(sp_finish(sp_start(bad, NULL)), 0);
  {
    const char *names[] = {"env-names", parent, NULL};
    const char *keep[] = {"env-keep", parent, NULL};
    assert_int_equal(sp_finish(sp_start(names, NULL)), 0);
    assert_int_equal(sp_finish(sp_start(keep, NULL)), 0);
  }
#ifndef _WIN32
  {
    const char *notsock[] = {"env-notsock", NULL};
    assert_int_equal(sp_finish(sp_start(notsock, NULL)), 0);
  }
#endif
}

/* This test process was started by hand: nothing inherited, not an error. */
static void inherited_none(void **state) {
  sockpass_sock_t s[2];
  sockpass_chan_t *chan = NULL;
  size_t n = 2;
  (void)state;
  assert_sp(sockpass_inherited(s, &n), 0);
  assert_int_equal(n, 0);
  n = 0;
  assert_sp(sockpass_inherited(NULL, &n), 0);
  assert_sp(sockpass_inherited(NULL, NULL), SOCKPASS_EINVAL);
  assert_null(sockpass_inherited_name(0));
  assert_sp(sockpass_inherited_chan(&chan), SOCKPASS_ENOENT);
  assert_null(chan);
}

#ifdef SP_SYSTEMD_SOCKET_ACTIVATE
/* systemd's own starter runs a program that uses sockpass_inherited. */
static void systemd_socket_activate(void **state) {
  sockpass_proc_t *p;
  sockpass_sock_t l, c = SOCKPASS_INVALID_SOCK;
  unsigned short port;
  char addr[64], buf[4] = {0};
  const char *argv[] = {SP_SYSTEMD_SOCKET_ACTIVATE, "-l", addr, "--fdname=web", sp_exe,
                        "--spawned", "listen", "1", "web", "loose", NULL};
  int i;
  (void)state;
  /* A free port: bind one, note it, let it go. */
  l = sp_tcp_listener(&port);
  sockpass_close_sock(l);
  snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
  assert_sp(sockpass_spawn(argv[0], argv, NULL, &p), 0);
  sp_track(p, 1);
  for (i = 0; i < sp_scale_ms(10000) / 25 && c == SOCKPASS_INVALID_SOCK; i++) {
    sp_sleep_ms(25);
    c = sp_tcp_connect(port);
  }
  assert_true(c != SOCKPASS_INVALID_SOCK);
  assert_int_equal(sp_read_n(c, buf, 3), 0);
  assert_string_equal(buf, "ok0");
  sockpass_close_sock(c);
  assert_int_equal(sp_finish(p), 0);
}
#elif !defined(_WIN32)
/* Built without systemd-socket-activate: the case is reported as skipped
 * (scripts/test counts it), never left out without a word. */
static void systemd_socket_activate(void **state) {
  (void)state;
  print_message("systemd_socket_activate: systemd-socket-activate not found at build time; skipped\n");
  skip();
}
#endif

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      SP_SPAWN_TEST(spawn_listeners), SP_SPAWN_TEST(spawn_unnamed),
      SP_SPAWN_TEST(spawn_channel),   SP_SPAWN_TEST(spawn_inetd),
      SP_TEST(spawn_concurrent),      SP_TEST(spawn_errors),
      SP_SPAWN_TEST(proc_wait_kill),  SP_SPAWN_TEST(kill_with_parent),  SP_SPAWN_TEST(inherited_env),
      SP_TEST(inherited_none),
#ifndef _WIN32
      SP_SPAWN_TEST(systemd_socket_activate),
#endif
  };
  sp_exe_path(sp_exe, sizeof sp_exe, argv[0]);
  if (argc >= 2 && strcmp(argv[1], "--spawned") == 0)
    return sp_spawned_main(argc - 2, argv + 2);
  return sp_test_main(argc, argv, "spawn", tests, sizeof tests / sizeof tests[0], NULL, 0);
}
