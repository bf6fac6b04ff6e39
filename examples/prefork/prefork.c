/* SPDX-License-Identifier: MIT */
/*
 * prefork: the classic pre-forked server, built on sockpass_spawn.
 *
 * The parent binds a TCP listener on 127.0.0.1 and starts N workers, each a
 * copy of this program run with --worker. Two ways to share the work:
 *
 *   inherited (default): every worker inherits the listener (opts.socks,
 *     named "http") and calls accept on it itself; the kernel hands each
 *     connection to one of them.
 *   --dispatch: only the parent accepts; it hands each connection, round
 *     robin, to a worker over the worker's channel (opts.chan), which the
 *     worker gets with sockpass_inherited_chan and reads with sockpass_recv.
 *
 * A worker reads one line and answers "<line> pid=<its pid>". Each worker has
 * a channel to the parent in both modes: the parent sends "Q" to stop it, the
 * worker answers "served <n>" and exits 0. If the parent dies, the worker's
 * channel reports SOCKPASS_EOF and it exits too.
 *
 * The worker alone also runs under systemd socket activation or sockpass-run,
 * which give it a listener and no channel; it then serves until stopped:
 *   sockpass-run --listen 127.0.0.1:8080 --name http -- prefork --worker
 *
 *   prefork [--demo] [--dispatch] [--workers N] [--port P] [--connections K]
 *           [--concurrency C]
 *       serve K connections (default 50) made by this process itself, C at a
 *       time (default 5), check every answer, stop the workers, print the
 *       count per worker; exit 0 only if everything was right.
 *   prefork --serve [--dispatch] [--workers N] [--port P]
 *       serve clients (nc 127.0.0.1 P) until interrupted.
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
#include <signal.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#endif
#include <sockpass.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 16
#define MAX_CONCURRENCY 64
#define IO_TIMEOUT_MS 10000 /* the longest any socket, channel or worker is waited for */
#define POLL_MS 100         /* how often an accepting worker looks at its channel */

/* ---- Small portable helpers ---- */

#ifdef _WIN32
static int os_error(void) { return WSAGetLastError(); }
static long my_pid(void) { return (long)GetCurrentProcessId(); }
#else
static int os_error(void) { return errno; }
static long my_pid(void) { return (long)getpid(); }
#endif

/* Print an error; both return -1 so that a caller can `return sp_fail(...)`.
 * sockpass_strerror also knows the OS's own messages (SOCKPASS_SYSERR). */
static int sp_fail(const char *what, int rc) {
  fprintf(stderr, "prefork[%ld]: %s: %s\n", my_pid(), what, sockpass_strerror(rc));
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

/* This program's own file, to start copies of it. */
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

/* Read up to and without the first '\n' (and a '\r' before it). 0 on success. */
static int read_line(sockpass_sock_t s, char *line, size_t size) {
  size_t got = 0;
  while (got < size - 1) {
    if (recv(s, line + got, 1, 0) != 1)
      return -1;
    if (line[got] == '\n')
      break;
    got++;
  }
  if (got > 0 && line[got - 1] == '\r')
    got--;
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

/* ---- The worker ---- */

/* Serve one connection: read a line, answer it with our pid. 0 if answered. */
static int serve_one(sockpass_sock_t c) {
  char line[200], reply[260];
  int rc = -1;
  set_nonblocking(c, 0); /* on Windows an accepted socket is non-blocking like its listener */
  set_io_timeout(c);     /* a silent client cannot hold the worker forever */
  if (read_line(c, line, sizeof line) == 0) {
    snprintf(reply, sizeof reply, "%s pid=%ld\n", line, my_pid());
    rc = write_all(c, reply, strlen(reply));
  }
  close_sock(c);
  return rc;
}

/* Inherited mode: accept on the shared listener until the parent says "Q"
 * (without a channel, when started by systemd or sockpass-run: until
 * stopped). The listener is non-blocking, so a worker that loses the race
 * for a connection to another worker gets EAGAIN instead of blocking; it
 * waits in select for at most POLL_MS and looks at its channel in between. */
static int accept_loop(sockpass_sock_t l, sockpass_chan_t *ctl, int *served) {
  int rc;
  if (set_nonblocking(l, 1) < 0)
    return sys_fail("worker: make the listener non-blocking");
  if (ctl != NULL)
    sockpass_set_timeout(ctl, SOCKPASS_NONBLOCK);
  for (;;) {
    fd_set rd;
    struct timeval tv = {0, POLL_MS * 1000};
    char msg[8];
    size_t nsocks = 0, len = sizeof msg;
    sockpass_sock_t c;

    rc = ctl != NULL ? sockpass_recv(ctl, NULL, &nsocks, msg, &len) : SOCKPASS_EAGAIN;
    if (rc == 0 && len == 1 && msg[0] == 'Q')
      return 0;
    if (rc == SOCKPASS_EOF)
      return -1; /* the parent is gone */
    if (rc < 0 && rc != SOCKPASS_EAGAIN)
      return sp_fail("worker: sockpass_recv", rc);
    FD_ZERO(&rd);
    FD_SET(l, &rd);
    if (select((int)l + 1, &rd, NULL, NULL, &tv) <= 0)
      continue; /* nothing yet (or EINTR): look at the channel again */
    c = accept(l, NULL, NULL);
    if (c == SOCKPASS_INVALID_SOCK)
      continue; /* another worker was faster */
    if (serve_one(c) == 0)
      (*served)++;
  }
}

/* Dispatch mode: the parent sends "C" with a connection, or "Q". */
static int recv_loop(sockpass_chan_t *ctl, int *served) {
  for (;;) {
    sockpass_sock_t c;
    char msg[8];
    size_t nsocks = 1, len = sizeof msg;
    int rc = sockpass_recv(ctl, &c, &nsocks, msg, &len);
    if (rc < 0)
      return rc == SOCKPASS_EOF ? -1 : sp_fail("worker: sockpass_recv", rc);
    if (nsocks == 1 && len == 1 && msg[0] == 'C') {
      if (serve_one(c) == 0) /* received sockets are ours: serve_one closes it */
        (*served)++;
    } else if (nsocks == 0 && len == 1 && msg[0] == 'Q') {
      return 0;
    } else {
      fprintf(stderr, "prefork[%ld]: worker: unexpected message\n", my_pid());
      if (nsocks == 1)
        close_sock(c);
    }
  }
}

static int worker_main(void) {
  sockpass_sock_t socks[1];
  size_t n = 1;
  sockpass_chan_t *ctl;
  int rc, served = 0;
  char reply[32];

  /* What the parent gave: the channel always, the listener in inherited
   * mode. Under systemd or sockpass-run there is a listener and no channel. */
  if ((rc = sockpass_inherited_chan(&ctl)) == SOCKPASS_ENOENT) {
    ctl = NULL;
  } else if (rc < 0) {
    sp_fail("worker: sockpass_inherited_chan", rc);
    return 1;
  }
  if ((rc = sockpass_inherited(socks, &n)) < 0) {
    sp_fail("worker: sockpass_inherited", rc);
    sockpass_close(ctl);
    return 1;
  }
  if (n == 1) {
    fprintf(stderr, "prefork[%ld]: worker accepting on inherited socket \"%s\"\n", my_pid(),
            sockpass_inherited_name(0));
    rc = accept_loop(socks[0], ctl, &served);
  } else if (ctl != NULL) {
    rc = recv_loop(ctl, &served);
  } else {
    fprintf(stderr, "prefork: --worker needs a listener or a channel: start it with prefork, "
                    "sockpass-run or systemd\n");
    return 1;
  }
  /* Our copy only: the parent and the other workers keep theirs. */
  if (n == 1)
    close_sock(socks[0]);
  /* A clean stop: tell the parent what we did. */
  if (rc == 0 && ctl != NULL) {
    sockpass_set_timeout(ctl, IO_TIMEOUT_MS);
    snprintf(reply, sizeof reply, "served %d", served);
    if ((rc = sockpass_send(ctl, NULL, 0, reply, strlen(reply))) < 0)
      sp_fail("worker: sockpass_send", rc);
  }
  sockpass_close(ctl);
  return rc == 0 ? 0 : 1;
}

/* ---- The parent ---- */

struct worker {
  sockpass_proc_t *proc;
  sockpass_chan_t *chan; /* the parent's end of the worker's channel */
  long pid;
  int handed;   /* connections the parent handed to it (dispatch mode) */
  int answered; /* answers the demo client got from it */
};

/* Start "self --worker" with one end of a new channel and, in inherited
 * mode, the listener. */
static int start_worker(struct worker *w, const char *self, const char *argv0,
                        sockpass_sock_t listener, int dispatch) {
  static const char *const names[] = {"http"};
  const char *const argv[] = {argv0, "--worker", NULL};
  sockpass_spawn_opts_t opts;
  sockpass_chan_t *end;
  int rc;

  if ((rc = sockpass_pair(&w->chan, &end)) < 0)
    return sp_fail("sockpass_pair", rc);
  sockpass_set_timeout(w->chan, IO_TIMEOUT_MS); /* a stuck worker cannot stall the parent */
  sockpass_spawn_opts_init(&opts);
  opts.chan = end;
  if (!dispatch) {
    opts.socks = &listener;
    opts.nsocks = 1;
    opts.names = names;
  }
  if ((rc = sockpass_spawn(self, argv, &opts, &w->proc)) < 0) {
    sockpass_close(end); /* on error the end is still ours */
    sockpass_close(w->chan);
    return sp_fail("sockpass_spawn", rc);
  }
  /* On success the end went to the worker and was closed here. */
  w->pid = sockpass_proc_pid(w->proc);
  return 0;
}

/* Ask a worker to stop ("Q"), read its "served <n>", wait for it to exit.
 * Returns the count it reported, or -1 if it did not stop cleanly. */
static int stop_worker(struct worker *w) {
  char reply[32];
  size_t nsocks = 0, len = sizeof reply - 1;
  int rc, code = -1, served = -1;

  if ((rc = sockpass_send(w->chan, NULL, 0, "Q", 1)) < 0)
    sp_fail("sockpass_send Q", rc);
  else if ((rc = sockpass_recv(w->chan, NULL, &nsocks, reply, &len)) < 0)
    sp_fail("sockpass_recv served", rc);
  else {
    reply[len] = '\0';
    if (sscanf(reply, "served %d", &served) != 1)
      served = -1;
  }
  sockpass_close(w->chan);
  rc = sockpass_proc_wait(w->proc, IO_TIMEOUT_MS, &code);
  if (rc == SOCKPASS_ETIMEDOUT) { /* our own child, by its handle: stop it */
    fprintf(stderr, "prefork: worker %ld does not exit, stopping it\n", w->pid);
    sockpass_proc_kill(w->proc);
    sockpass_proc_wait(w->proc, IO_TIMEOUT_MS, &code);
  } else if (rc < 0) {
    sp_fail("sockpass_proc_wait", rc);
  }
  sockpass_proc_free(w->proc);
  return code == 0 ? served : -1;
}

/* Dispatch mode: accept one connection and send it to w. */
static int hand_off(sockpass_sock_t listener, struct worker *w, int timeout_ms) {
  int rc;
  sockpass_sock_t c;
  fd_set rd;
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  FD_ZERO(&rd);
  FD_SET(listener, &rd);
  if (timeout_ms >= 0 && select((int)listener + 1, &rd, NULL, NULL, &tv) != 1) {
    fprintf(stderr, "prefork: no connection to accept\n");
    return -1;
  }
  if ((c = accept(listener, NULL, NULL)) == SOCKPASS_INVALID_SOCK)
    return sys_fail("accept");
  rc = sockpass_send(w->chan, &c, 1, "C", 1); /* the byte says what the socket is */
  close_sock(c); /* the worker has its own copy now (or nobody has, on error) */
  if (rc < 0)
    return sp_fail("sockpass_send", rc);
  w->handed++;
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

/* The demo client: conns connections, at most conc open at a time. Each
 * batch connects and sends its requests first (the listener's backlog holds
 * the connections), then, in dispatch mode, the parent hands them out, then
 * the answers are read and checked. Returns the number of correct answers. */
static int demo_client(sockpass_sock_t listener, const struct sockaddr_in *addr, struct worker *w,
                       int nw, int dispatch, int conns, int conc) {
  sockpass_sock_t c[MAX_CONCURRENCY];
  char req[MAX_CONCURRENCY][32];
  int done, j, k, good = 0, next = 0;

  for (done = 0; done < conns; done += k) {
    k = conns - done < conc ? conns - done : conc;
    for (j = 0; j < k; j++) {
      snprintf(req[j], sizeof req[j], "request %d", done + j + 1);
      c[j] = socket(AF_INET, SOCK_STREAM, 0);
      if (c[j] == SOCKPASS_INVALID_SOCK) {
        sys_fail("client: socket");
        continue;
      }
      set_io_timeout(c[j]);
      if (connect(c[j], (const struct sockaddr *)addr, sizeof *addr) != 0 ||
          write_all(c[j], req[j], strlen(req[j])) < 0 || write_all(c[j], "\n", 1) < 0) {
        sys_fail("client: connect/send");
        close_sock(c[j]);
        c[j] = SOCKPASS_INVALID_SOCK;
      }
    }
    for (j = 0; dispatch && j < k; j++)
      if (c[j] != SOCKPASS_INVALID_SOCK) { /* hand out only what is coming */
        hand_off(listener, &w[next], IO_TIMEOUT_MS);
        next = (next + 1) % nw;
      }
    for (j = 0; j < k; j++) {
      char answer[260];
      long pid = 0;
      int i, ok = 0;
      size_t rl = strlen(req[j]);
      if (c[j] == SOCKPASS_INVALID_SOCK)
        continue;
      if (read_line(c[j], answer, sizeof answer) == 0 && strncmp(answer, req[j], rl) == 0 &&
          sscanf(answer + rl, " pid=%ld", &pid) == 1)
        for (i = 0; i < nw; i++)
          if (w[i].pid == pid) {
            w[i].answered++;
            ok = 1;
          }
      if (ok)
        good++;
      else
        fprintf(stderr, "prefork: %s: wrong or no answer\n", req[j]);
      close_sock(c[j]);
    }
  }
  return good;
}

static int parent_main(const char *argv0, int demo, int dispatch, int nw, int port, int conns,
                       int conc) {
  struct worker w[MAX_WORKERS];
  struct sockaddr_in addr;
  const char *self = self_exe(argv0);
  int i, started = 0, good = 0, ok = 1;
  sockpass_sock_t listener = open_listener(port, &addr);

  if (listener == SOCKPASS_INVALID_SOCK)
    return 1;
  memset(w, 0, sizeof w);
  for (i = 0; i < nw && start_worker(&w[i], self, argv0, listener, dispatch) == 0; i++)
    started++;
  if (started < nw) {
    ok = 0;
  } else {
    printf("prefork: listening on 127.0.0.1:%u, %d workers, %s\n", (unsigned)ntohs(addr.sin_port),
           nw, dispatch ? "the parent dispatches each connection" : "each worker accepts");
    fflush(stdout);
    if (demo) {
      good = demo_client(listener, &addr, w, nw, dispatch, conns, conc);
      ok = good == conns;
    } else if (dispatch) {
      for (i = 0;; i = (i + 1) % nw) /* serve until interrupted */
        hand_off(listener, &w[i], -1);
    } else {
      sockpass_proc_wait(w[0].proc, SOCKPASS_WAIT_FOREVER, NULL); /* until interrupted */
    }
  }
  for (i = 0; i < started; i++) {
    int served = stop_worker(&w[i]);
    printf("prefork: worker %d (pid %ld): served %d, answers seen %d", i + 1, w[i].pid, served,
           w[i].answered);
    if (dispatch)
      printf(", handed %d", w[i].handed);
    printf("\n");
    /* Every worker must have stopped cleanly and agree with what the client
     * saw; in dispatch mode also with what the parent handed it. */
    if (served != w[i].answered || (dispatch && served != w[i].handed))
      ok = 0;
  }
  close_sock(listener);
  if (demo)
    printf("prefork: %d of %d connections answered correctly: %s\n", good, conns,
           ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

static void usage(void) {
  fprintf(stderr, "usage: prefork [--demo | --serve] [--dispatch] [--workers N] [--port P]\n"
                  "               [--connections K] [--concurrency C]\n");
}

int main(int argc, char **argv) {
  int i, rc, demo = 1, dispatch = 0, nw = 3, port = 0, conns = 50, conc = 5;
#ifdef _WIN32
  WSADATA wsa;
  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
    fprintf(stderr, "prefork: WSAStartup failed\n");
    return 1;
  }
#else
  signal(SIGPIPE, SIG_IGN); /* a client that hangs up must not kill us */
#endif
  if (argc == 2 && strcmp(argv[1], "--worker") == 0) {
    rc = worker_main();
  } else {
    for (i = 1; i < argc; i++) {
      const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : "";
      if (strcmp(opt, "--demo") == 0)
        demo = 1;
      else if (strcmp(opt, "--serve") == 0)
        demo = 0;
      else if (strcmp(opt, "--dispatch") == 0)
        dispatch = 1;
      else if (strcmp(opt, "--workers") == 0 && ++i < argc)
        nw = atoi(val);
      else if (strcmp(opt, "--port") == 0 && ++i < argc)
        port = atoi(val);
      else if (strcmp(opt, "--connections") == 0 && ++i < argc)
        conns = atoi(val);
      else if (strcmp(opt, "--concurrency") == 0 && ++i < argc)
        conc = atoi(val);
      else
        break;
    }
    if (i < argc || nw < 1 || nw > MAX_WORKERS || port < 0 || port > 65535 || conns < 1 ||
        conc < 1 || conc > MAX_CONCURRENCY) {
      usage();
      rc = 2;
    } else {
      rc = parent_main(argv[0], demo, dispatch, nw, port, conns, conc);
    }
  }
#ifdef _WIN32
  WSACleanup();
#endif
  return rc;
}
