/* SPDX-License-Identifier: MIT */
/*
 * hot-restart: replace a running TCP server with a new process without
 * refusing a single connection.
 *
 * Each server generation listens on 127.0.0.1 and on a named sockpass
 * endpoint, its control name. A new generation started with --takeover OLD
 * connects to the old one's control name and asks for the listening socket:
 *
 *   new -> old  "takeover"
 *   old -> new  "listener <gen>" + the listening socket
 *   new         opens its own control name, starts accepting
 *   new -> old  "ready"
 *   old         stops accepting, closes its copy of the listener, exits
 *
 * The listening socket is never closed in between: the old server closes its
 * copy only once the new one has confirmed it holds its own, so the kernel
 * keeps queueing connections the whole time. For a moment both accept, which
 * is harmless: whoever accepts a connection serves it. If the new server dies
 * before "ready", the old one simply keeps serving.
 *
 * A server answers each line with "<line> gen=<generation> pid=<its pid>".
 *
 *   hot-restart --serve --name CTL [--port P]      first generation: bind
 *       127.0.0.1:P, or use a socket inherited from sockpass_spawn, systemd
 *       or sockpass-run
 *   hot-restart --serve --name CTL2 --takeover CTL  next generation
 *   hot-restart --quit CTL                          stop the server on CTL
 *   hot-restart [--demo]  start generation 1, put client threads to work,
 *       start generation 2 while they run, then count the connections each
 *       generation served, the refused and the failed ones. Exit 0 only if
 *       none was refused or failed and both generations served some.
 *
 * CTL is a path on POSIX (a pipe name on Windows); the demo makes its own.
 */
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#endif
#include <sockpass.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IO_TIMEOUT_MS 10000    /* the longest any socket, channel or process is waited for */
#define PHASE_TIMEOUT_MS 30000 /* the longest the demo waits for a generation to serve */
#define POLL_MS 100            /* how often a server looks at its control name */
#define CLIENTS 4              /* demo client threads */
#define PER_PHASE 100          /* connections each generation must serve in the demo */

/* ---- Small portable helpers ---- */

#ifdef _WIN32
typedef HANDLE thread_t;
#define THREAD_RET DWORD WINAPI
static int os_error(void) { return WSAGetLastError(); }
static long my_pid(void) { return (long)GetCurrentProcessId(); }
static int is_refused(int err) { return err == WSAECONNREFUSED; }
static void sleep_ms(int ms) { Sleep((DWORD)ms); }
static long long now_ms(void) { return (long long)GetTickCount64(); }
static int thread_start(thread_t *t, LPTHREAD_START_ROUTINE fn, void *arg) {
  *t = CreateThread(NULL, 0, fn, arg, 0, NULL);
  return *t != NULL ? 0 : -1;
}
static void thread_join(thread_t t) {
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
}
#else
typedef pthread_t thread_t;
#define THREAD_RET void *
static int os_error(void) { return errno; }
static long my_pid(void) { return (long)getpid(); }
static int is_refused(int err) { return err == ECONNREFUSED; }
static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}
static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static int thread_start(thread_t *t, void *(*fn)(void *), void *arg) {
  return pthread_create(t, NULL, fn, arg) == 0 ? 0 : -1;
}
static void thread_join(thread_t t) { pthread_join(t, NULL); }
#endif

static int sp_fail(const char *what, int rc) {
  fprintf(stderr, "hot-restart[%ld]: %s: %s\n", my_pid(), what, sockpass_strerror(rc));
  return -1;
}

static int sys_fail(const char *what) { return sp_fail(what, SOCKPASS_SYSERR(os_error())); }

static void close_sock(sockpass_sock_t s) {
  int rc = sockpass_close_sock(s);
  if (rc < 0)
    sp_fail("sockpass_close_sock", rc);
}

static void set_io_timeout(sockpass_sock_t s) {
#ifdef _WIN32
  DWORD tv = IO_TIMEOUT_MS;
#else
  struct timeval tv = {IO_TIMEOUT_MS / 1000, 0};
#endif
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, (const char *)&tv, sizeof tv);
}

static int set_nonblocking(sockpass_sock_t s, int on) {
#ifdef _WIN32
  u_long mode = (u_long)on;
  return ioctlsocket(s, FIONBIO, &mode) == 0 ? 0 : -1;
#else
  int fl = fcntl(s, F_GETFL);
  return fl < 0 || fcntl(s, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) < 0 ? -1 : 0;
#endif
}

static int read_line(sockpass_sock_t s, char *line, size_t size) {
  size_t got = 0;
  while (got < size - 1) {
    if (recv(s, line + got, 1, 0) != 1)
      return -1;
    if (line[got] == '\n')
      break;
    got++;
  }
  line[got] = '\0';
  return 0;
}

static int write_all(sockpass_sock_t s, const char *p, size_t len) {
  while (len > 0) {
    int n = (int)send(s, p, (int)len, 0);
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* One short text message on a channel, without sockets. */
static int send_text(sockpass_chan_t *ch, const char *text) {
  return sockpass_send(ch, NULL, 0, text, strlen(text));
}

/* ---- The server ---- */

struct server {
  sockpass_sock_t listener;
  sockpass_chan_t *ctl; /* our control name */
  int gen;
  long served;
};

/* Handle one peer on the control name. Returns 1 when the server must stop
 * accepting (the peer took the listener over, or asked us to quit). */
static int control(struct server *sv, sockpass_chan_t *peer) {
  char msg[64];
  size_t nsocks = 0, len = sizeof msg - 1;
  int rc;

  sockpass_set_timeout(peer, IO_TIMEOUT_MS);
  if ((rc = sockpass_recv(peer, NULL, &nsocks, msg, &len)) < 0) {
    sp_fail("control: sockpass_recv", rc);
    return 0;
  }
  msg[len] = '\0';
  if (strcmp(msg, "quit") == 0) {
    snprintf(msg, sizeof msg, "bye %ld", sv->served);
    send_text(peer, msg);
    return 1;
  }
  if (strcmp(msg, "takeover") != 0) {
    fprintf(stderr, "hot-restart[%ld]: control: unknown request \"%s\"\n", my_pid(), msg);
    return 0;
  }
  /* Send our listener (a copy: ours stays open), then wait for "ready". */
  snprintf(msg, sizeof msg, "listener %d", sv->gen);
  if ((rc = sockpass_send(peer, &sv->listener, 1, msg, strlen(msg))) < 0) {
    sp_fail("control: sockpass_send listener", rc);
    return 0;
  }
  len = sizeof msg - 1;
  if ((rc = sockpass_recv(peer, NULL, &nsocks, msg, &len)) < 0 || len != 5 ||
      memcmp(msg, "ready", 5) != 0) {
    fprintf(stderr, "hot-restart[%ld]: takeover did not complete (%s): still serving\n", my_pid(),
            rc < 0 ? sockpass_strerror(rc) : "no ready");
    return 0;
  }
  return 1;
}

/* Accept and serve until the control name says stop. The listener is
 * non-blocking: while two generations share it, one that loses the race for
 * a connection gets EAGAIN instead of blocking. */
static int serve(struct server *sv) {
  sockpass_set_timeout(sv->ctl, SOCKPASS_NONBLOCK);
  if (set_nonblocking(sv->listener, 1) < 0)
    return sys_fail("make the listener non-blocking");
  for (;;) {
    fd_set rd;
    struct timeval tv = {0, POLL_MS * 1000};
    sockpass_chan_t *peer;
    sockpass_sock_t c;
    char line[200], reply[260];
    int rc = sockpass_accept(sv->ctl, &peer);

    if (rc == 0) {
      int stop = control(sv, peer);
      sockpass_close(peer);
      if (stop)
        return 0;
    } else if (rc != SOCKPASS_EAGAIN) {
      sp_fail("sockpass_accept on the control name", rc);
    }
    FD_ZERO(&rd);
    FD_SET(sv->listener, &rd);
    if (select((int)sv->listener + 1, &rd, NULL, NULL, &tv) <= 0)
      continue;
    /* EAGAIN when the other generation was faster. */
    if ((c = accept(sv->listener, NULL, NULL)) == SOCKPASS_INVALID_SOCK)
      continue;
    set_nonblocking(c, 0); /* Windows: accepted sockets inherit non-blocking */
    set_io_timeout(c);
    if (read_line(c, line, sizeof line) == 0) {
      snprintf(reply, sizeof reply, "%s gen=%d pid=%ld\n", line, sv->gen, my_pid());
      if (write_all(c, reply, strlen(reply)) == 0)
        sv->served++;
    }
    close_sock(c); /* one connection at a time: nothing is in flight after this */
  }
}

/* Connect to the old generation's control name (it may still be starting:
 * retry for a while) and receive its listener. */
static int take_over(const char *old, struct server *sv, sockpass_chan_t **peer) {
  char msg[64];
  size_t nsocks = 1, len = sizeof msg - 1;
  long long deadline = now_ms() + IO_TIMEOUT_MS;
  int rc;

  while ((rc = sockpass_connect(old, peer)) == SOCKPASS_ENOENT || rc == SOCKPASS_ECONNREFUSED) {
    if (now_ms() > deadline)
      break;
    sleep_ms(50);
  }
  if (rc < 0)
    return sp_fail(old, rc);
  sockpass_set_timeout(*peer, IO_TIMEOUT_MS);
  if ((rc = send_text(*peer, "takeover")) < 0 ||
      (rc = sockpass_recv(*peer, &sv->listener, &nsocks, msg, &len)) < 0) {
    sockpass_close(*peer);
    return sp_fail("takeover", rc);
  }
  msg[len] = '\0';
  if (nsocks != 1 || sscanf(msg, "listener %d", &sv->gen) != 1) {
    fprintf(stderr, "hot-restart[%ld]: takeover: unexpected answer\n", my_pid());
    if (nsocks == 1)
      close_sock(sv->listener);
    sockpass_close(*peer);
    return -1;
  }
  sv->gen++;
  return 0;
}

/* A TCP listener on 127.0.0.1:port (0: any free port); *addr gets its address. */
static sockpass_sock_t open_listener(int port, struct sockaddr_in *addr) {
  socklen_t alen = sizeof *addr;
  sockpass_sock_t l = socket(AF_INET, SOCK_STREAM, 0);
  if (l == SOCKPASS_INVALID_SOCK) {
    sys_fail("socket");
    return l;
  }
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(0x7f000001); /* 127.0.0.1: INADDR_LOOPBACK is not POSIX */
  addr->sin_port = htons((unsigned short)port);
  if (bind(l, (struct sockaddr *)addr, sizeof *addr) != 0 || listen(l, SOMAXCONN) != 0 ||
      getsockname(l, (struct sockaddr *)addr, &alen) != 0) {
    sys_fail("listen on 127.0.0.1");
    close_sock(l);
    return SOCKPASS_INVALID_SOCK;
  }
  return l;
}

static int serve_main(const char *name, const char *old, int port) {
  struct server sv = {SOCKPASS_INVALID_SOCK, NULL, 1, 0};
  sockpass_chan_t *prev = NULL;
  sockpass_sock_t inherited[1];
  size_t n = 1;
  struct sockaddr_in addr;
  int rc;

  /* 1. The listening socket: from the previous generation, from whoever
   *    started us (sockpass_spawn, systemd, sockpass-run), or a new one. */
  if (old != NULL) {
    if (take_over(old, &sv, &prev) < 0)
      return 1;
  } else if ((rc = sockpass_inherited(inherited, &n)) < 0) {
    sp_fail("sockpass_inherited", rc);
    return 1;
  } else if (n == 1) {
    sv.listener = inherited[0];
  } else if ((sv.listener = open_listener(port, &addr)) == SOCKPASS_INVALID_SOCK) {
    return 1;
  }
  /* 2. Our own control name, for the next generation. If this fails before
   *    "ready", the old generation notices (EOF) and keeps serving. */
  if ((rc = sockpass_listen(name, &sv.ctl)) < 0) {
    sp_fail(name, rc);
    sockpass_close(prev);
    close_sock(sv.listener);
    return 1;
  }
  /* 3. Tell the old generation it may let go. */
  if (prev != NULL) {
    rc = send_text(prev, "ready");
    sockpass_close(prev);
    if (rc < 0) { /* it may not have seen it: it keeps its copy, we keep ours */
      sp_fail("send ready", rc);
    }
  }
  printf("hot-restart: generation %d (pid %ld) serving, control name %s\n", sv.gen, my_pid(), name);
  fflush(stdout);
  rc = serve(&sv);
  /* 4. Stopped: close our copy only. After a takeover the new generation
   *    holds its own, so the socket stays open and keeps queueing. */
  close_sock(sv.listener);
  sockpass_close(sv.ctl); /* also removes the POSIX socket file */
  printf("hot-restart: generation %d (pid %ld) served %ld connections, exiting\n", sv.gen, my_pid(),
         sv.served);
  return rc == 0 ? 0 : 1;
}

/* Ask the server on name to quit; prints its "bye <served>". */
static int quit_main(const char *name) {
  sockpass_chan_t *ch;
  char msg[64];
  size_t nsocks = 0, len = sizeof msg - 1;
  int rc;
  if ((rc = sockpass_connect(name, &ch)) < 0) {
    sp_fail(name, rc);
    return 1;
  }
  sockpass_set_timeout(ch, IO_TIMEOUT_MS);
  if ((rc = send_text(ch, "quit")) == 0)
    rc = sockpass_recv(ch, NULL, &nsocks, msg, &len);
  sockpass_close(ch);
  if (rc < 0) {
    sp_fail("quit", rc);
    return 1;
  }
  msg[len] = '\0';
  printf("hot-restart: %s answered \"%s\"\n", name, msg);
  return 0;
}

/* ---- The demo ---- */

struct load {
  struct sockaddr_in addr;
  atomic_int stop;
  atomic_long served[3]; /* by generation 1 and 2 ([0] unused) */
  atomic_long refused, failed, next;
};

/* One client thread: connect, send a line, check the answer, again and again. */
static THREAD_RET client(void *arg) {
  struct load *ld = arg;
  while (!atomic_load(&ld->stop)) {
    char req[64], answer[260];
    int gen = 0;
    long pid;
    size_t rl;
    sockpass_sock_t c = socket(AF_INET, SOCK_STREAM, 0);
    if (c == SOCKPASS_INVALID_SOCK) {
      atomic_fetch_add(&ld->failed, 1);
      sleep_ms(10);
      continue;
    }
    set_io_timeout(c);
    snprintf(req, sizeof req, "ping %ld", atomic_fetch_add(&ld->next, 1) + 1);
    rl = strlen(req);
    req[rl] = '\n';
    if (connect(c, (const struct sockaddr *)&ld->addr, sizeof ld->addr) != 0) {
      if (is_refused(os_error()))
        atomic_fetch_add(&ld->refused, 1);
      else
        atomic_fetch_add(&ld->failed, 1);
    } else if (write_all(c, req, rl + 1) == 0 && read_line(c, answer, sizeof answer) == 0 &&
               strncmp(answer, req, rl) == 0 &&
               sscanf(answer + rl, " gen=%d pid=%ld", &gen, &pid) == 2 && gen >= 1 && gen <= 2) {
      atomic_fetch_add(&ld->served[gen], 1);
    } else {
      atomic_fetch_add(&ld->failed, 1);
    }
    close_sock(c);
    sleep_ms(1);
  }
  return 0;
}

/* Wait until generation gen's count reaches target (bounded). */
static int wait_served(struct load *ld, int gen, long target) {
  long long deadline = now_ms() + PHASE_TIMEOUT_MS;
  while (atomic_load(&ld->served[gen]) < target) {
    if (now_ms() > deadline) {
      fprintf(stderr, "hot-restart: generation %d served only %ld of %ld\n", gen,
              atomic_load(&ld->served[gen]), target);
      return -1;
    }
    sleep_ms(10);
  }
  return 0;
}

/* Wait for a server we started; stop it if it does not exit in time. */
static int reap(sockpass_proc_t *p, const char *what) {
  int code = -1, rc = sockpass_proc_wait(p, IO_TIMEOUT_MS, &code);
  if (rc == SOCKPASS_ETIMEDOUT) {
    fprintf(stderr, "hot-restart: %s (pid %ld) does not exit, stopping it\n", what,
            sockpass_proc_pid(p));
    sockpass_proc_kill(p);
    sockpass_proc_wait(p, IO_TIMEOUT_MS, NULL);
  } else if (rc < 0) {
    sp_fail("sockpass_proc_wait", rc);
  }
  sockpass_proc_free(p);
  return rc == 0 ? code : -1;
}

static void control_name(char *buf, size_t size, int gen) {
#ifdef _WIN32
  snprintf(buf, size, "hot-restart-%ld-gen%d", my_pid(), gen); /* \\.\pipe\hot-restart-... */
#else
  const char *tmp = getenv("TMPDIR");
  snprintf(buf, size, "%s/hot-restart-%ld-gen%d.sock", tmp && *tmp ? tmp : "/tmp", my_pid(), gen);
#endif
}

static const char *self_exe(const char *argv0) {
#ifdef _WIN32
  static char path[MAX_PATH];
  DWORD n = GetModuleFileNameA(NULL, path, MAX_PATH);
  return n > 0 && n < MAX_PATH ? path : argv0;
#elif defined(__linux__)
  static char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0)
    return argv0;
  path[n] = '\0';
  return path;
#else
  return argv0;
#endif
}

static int demo_main(const char *argv0) {
  static struct load ld; /* zero: counters at 0, stop clear */
  static const char *const names[] = {"http"};
  char name1[256], name2[256];
  const char *self = self_exe(argv0);
  const char *const argv1[] = {argv0, "--serve", "--name", name1, NULL};
  const char *const argv2[] = {argv0, "--serve", "--name", name2, "--takeover", name1, NULL};
  sockpass_proc_t *gen1 = NULL, *gen2 = NULL;
  sockpass_spawn_opts_t opts;
  sockpass_sock_t listener;
  thread_t th[CLIENTS];
  int i, rc, nth = 0, code1 = -1, code2 = -1, ok;
  long at_switch;

  control_name(name1, sizeof name1, 1);
  control_name(name2, sizeof name2, 2);
  /* Generation 1 inherits a listener made here, as it would from systemd.
   * We close our copy at once: from then on only the servers hold it, so a
   * handover that dropped it would show up as refused connections. */
  if ((listener = open_listener(0, &ld.addr)) == SOCKPASS_INVALID_SOCK)
    return 1;
  sockpass_spawn_opts_init(&opts);
  opts.socks = &listener;
  opts.nsocks = 1;
  opts.names = names;
  rc = sockpass_spawn(self, argv1, &opts, &gen1);
  close_sock(listener);
  if (rc < 0) {
    sp_fail("sockpass_spawn generation 1", rc);
    return 1;
  }
  printf("hot-restart: demo on 127.0.0.1:%u with %d client threads\n",
         (unsigned)ntohs(ld.addr.sin_port), CLIENTS);
  fflush(stdout);

  for (i = 0; i < CLIENTS; i++)
    if (thread_start(&th[nth], client, &ld) == 0)
      nth++;
  rc = nth == CLIENTS ? wait_served(&ld, 1, PER_PHASE) : -1;
  /* Generation 2, while the clients keep connecting. */
  if (rc == 0 && (rc = sockpass_spawn(self, argv2, NULL, &gen2)) < 0)
    sp_fail("sockpass_spawn generation 2", rc);
  /* Generation 1 exits once generation 2 has confirmed the takeover. */
  if (gen2 == NULL)
    sockpass_proc_kill(gen1); /* no takeover is coming */
  code1 = reap(gen1, "generation 1");
  at_switch = atomic_load(&ld.served[2]);
  if (rc == 0 && code1 == 0)
    rc = wait_served(&ld, 2, at_switch + PER_PHASE); /* generation 2 alone */
  atomic_store(&ld.stop, 1);
  for (i = 0; i < nth; i++)
    thread_join(th[i]);
  if (gen2 != NULL) {
    if (quit_main(name2) != 0)
      rc = -1;
    code2 = reap(gen2, "generation 2");
  }
  ok = rc == 0 && code1 == 0 && code2 == 0 && atomic_load(&ld.refused) == 0 &&
       atomic_load(&ld.failed) == 0 && atomic_load(&ld.served[1]) > 0 &&
       atomic_load(&ld.served[2]) > 0;
  printf("hot-restart: served by generation 1: %ld, by generation 2: %ld "
         "(%ld of them after generation 1 exited); refused: %ld, failed: %ld; "
         "exit codes %d and %d: %s\n",
         atomic_load(&ld.served[1]), atomic_load(&ld.served[2]),
         atomic_load(&ld.served[2]) - at_switch, atomic_load(&ld.refused), atomic_load(&ld.failed),
         code1, code2, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  const char *name = NULL, *old = NULL, *quit = NULL;
  int i, rc, port = 0, server = 0;
#ifdef _WIN32
  WSADATA wsa;
  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
    fprintf(stderr, "hot-restart: WSAStartup failed\n");
    return 1;
  }
#else
  signal(SIGPIPE, SIG_IGN);
#endif
  for (i = 1; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(opt, "--demo") == 0)
      server = 0;
    else if (strcmp(opt, "--serve") == 0)
      server = 1;
    else if (strcmp(opt, "--name") == 0 && val && ++i)
      name = val;
    else if (strcmp(opt, "--takeover") == 0 && val && ++i)
      old = val;
    else if (strcmp(opt, "--quit") == 0 && val && ++i)
      quit = val;
    else if (strcmp(opt, "--port") == 0 && val && ++i)
      port = atoi(val);
    else
      break;
  }
  if (i < argc || (server && name == NULL) || port < 0 || port > 65535) {
    fprintf(stderr, "usage: hot-restart [--demo]\n"
                    "       hot-restart --serve --name CTL [--port P | --takeover OLDCTL]\n"
                    "       hot-restart --quit CTL\n");
    rc = 2;
  } else if (quit != NULL) {
    rc = quit_main(quit);
  } else if (server) {
    rc = serve_main(name, old, port);
  } else {
    rc = demo_main(argv[0]);
  }
#ifdef _WIN32
  WSACleanup();
#endif
  return rc;
}
