/* SPDX-License-Identifier: MIT */
/*
 * handoff: a parent accepts TCP connections on 127.0.0.1 and hands each one,
 * round-robin, to a worker process over a sockpass channel; the worker serves
 * it: it reads a line and answers "<line> pid=<its pid> count=<n>".
 *
 *   handoff [--demo] [--workers N] [--port P] [--connections K]
 *       start N workers (default 2), connect K times (default 10) to itself,
 *       check every answer, stop the workers; exit 0 only if all went well.
 *   handoff --serve [--workers N] [--port P] [--connections K]
 *       serve clients (nc 127.0.0.1 P) until K connections (0: forever).
 *   handoff --worker HANDLE
 *       a worker, started by the parent: HANDLE is its inherited channel end.
 *
 * Each worker gets one end of a sockpass_pair, inherited when it is started:
 * no name to choose, to collide with or to clean up, and only that worker can
 * hold it. When the parent closes its end (or dies), the worker's
 * sockpass_recv returns SOCKPASS_EOF and the worker exits.
 */
#ifdef _WIN32
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0601 /* Windows 7: PROC_THREAD_ATTRIBUTE_HANDLE_LIST */
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#endif
#include <sockpass.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 16
#define IO_TIMEOUT_MS 10000 /* every wait on a socket, a channel or a worker */

struct worker {
  sockpass_chan_t *chan; /* the parent's end of the pair */
  long pid;
  int served;
#ifdef _WIN32
  HANDLE process;
#endif
};

/* ---- The few things that really differ between the OSes ---- */

#ifdef _WIN32
static int os_error(void) { return (int)GetLastError(); } /* also WSAGetLastError */
static long my_pid(void) { return (long)GetCurrentProcessId(); }
static sockpass_handle_t parse_handle(const char *s) {
  return (HANDLE)(uintptr_t)strtoul(s, NULL, 10); /* handle values fit 32 bits */
}
#else
static int os_error(void) { return errno; }
static long my_pid(void) { return (long)getpid(); }
static sockpass_handle_t parse_handle(const char *s) { return (int)strtol(s, NULL, 10); }
#endif

/* Print an OS error (sockpass_strerror knows the OS's messages too) or a
 * sockpass error. Both return -1, so a caller can `return sys_fail(...)`. */
static int sys_fail(const char *what) {
  fprintf(stderr, "handoff: %s: %s\n", what, sockpass_strerror(SOCKPASS_SYSERR(os_error())));
  return -1;
}

static int sp_fail(const char *what, int rc) {
  fprintf(stderr, "handoff: %s: %s\n", what, sockpass_strerror(rc));
  return -1;
}

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

/* Start "self --worker HANDLE" with the channel end `end` inherited, and
 * nothing else: the caller then closes its copy of `end`. */
static int start_worker(struct worker *w, sockpass_chan_t *end, const char *self) {
  sockpass_handle_t h = sockpass_handle(end);
#ifdef _WIN32
  wchar_t exe[MAX_PATH], cmd[MAX_PATH + 40];
  STARTUPINFOEXW si;
  PROCESS_INFORMATION pi;
  SIZE_T size = 0;
  BOOL ok = FALSE;
  DWORD n = GetModuleFileNameW(NULL, exe, MAX_PATH), err;
  (void)self;
  if (n == 0 || n == MAX_PATH)
    return sys_fail("GetModuleFileNameW");
  swprintf(cmd, sizeof cmd / sizeof cmd[0], L"\"%ls\" --worker %lu", exe,
           (unsigned long)(uintptr_t)h);
  memset(&si, 0, sizeof si);
  si.StartupInfo.cb = sizeof si;
  InitializeProcThreadAttributeList(NULL, 1, 0, &size);
  si.lpAttributeList = malloc(size);
  if (si.lpAttributeList != NULL &&
      InitializeProcThreadAttributeList(si.lpAttributeList, 1, 0, &size)) {
    /* Inheritable only for this one call, and listed as the only handle. */
    if (UpdateProcThreadAttribute(si.lpAttributeList, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, &h,
                                  sizeof h, NULL, NULL) &&
        SetHandleInformation(h, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT))
      ok = CreateProcessW(exe, cmd, NULL, NULL, TRUE, EXTENDED_STARTUPINFO_PRESENT, NULL, NULL,
                          &si.StartupInfo, &pi);
    err = GetLastError();
    SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0);
    DeleteProcThreadAttributeList(si.lpAttributeList);
    SetLastError(err);
  }
  free(si.lpAttributeList);
  if (!ok)
    return sys_fail("CreateProcessW");
  CloseHandle(pi.hThread);
  w->process = pi.hProcess;
  w->pid = (long)pi.dwProcessId;
#else
  char arg[32];
  char *argv[4];
  pid_t pid;
  snprintf(arg, sizeof arg, "%d", h);
  argv[0] = (char *)self;
  argv[1] = (char *)"--worker";
  argv[2] = arg;
  argv[3] = NULL;
  pid = fork();
  if (pid < 0)
    return sys_fail("fork");
  if (pid == 0) {
    /* Only async-signal-safe calls until exec. sockpass made the end
     * close-on-exec; let this one copy cross exec, in this child only. */
    if (fcntl(h, F_SETFD, 0) == 0) {
      execv("/proc/self/exe", argv); /* Linux; elsewhere the next line */
      execvp(self, argv);
    }
    _exit(127);
  }
  w->pid = (long)pid;
#endif
  return 0;
}

/* Wait up to IO_TIMEOUT_MS for a worker to exit; kill it after that. Returns
 * its exit status, or -1 if it had to be killed or died of a signal. */
static int wait_worker(struct worker *w) {
#ifdef _WIN32
  DWORD code = (DWORD)-1;
  if (WaitForSingleObject(w->process, IO_TIMEOUT_MS) != WAIT_OBJECT_0) {
    TerminateProcess(w->process, 1);
    WaitForSingleObject(w->process, INFINITE);
  } else {
    GetExitCodeProcess(w->process, &code);
  }
  CloseHandle(w->process);
  return (int)code;
#else
  struct timespec tick = {0, 10 * 1000000L};
  int status = 0, ms = 0;
  pid_t r;
  while ((r = waitpid((pid_t)w->pid, &status, WNOHANG)) != (pid_t)w->pid) {
    if (r < 0 && errno != EINTR)
      return sys_fail("waitpid");
    if (ms >= IO_TIMEOUT_MS) { /* our own child, by pid */
      kill((pid_t)w->pid, SIGKILL);
      waitpid((pid_t)w->pid, &status, 0);
      return -1;
    }
    nanosleep(&tick, NULL);
    ms += 10;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
#endif
}

/* Read up to and without the first '\n' (bounded by size). 0 on success. */
static int read_line(sockpass_sock_t s, char *line, size_t size) {
  size_t got = 0;
  while (got < size - 1) {
    int n = (int)recv(s, line + got, 1, 0);
    if (n <= 0)
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

static int worker_main(const char *arg) {
  sockpass_chan_t *chan;
  int rc, count = 0, status = 0;

  /* No WSAStartup here: sockpass initializes Winsock for the sockets it hands over. */
  if ((rc = sockpass_open(parse_handle(arg), &chan)) < 0) {
    sp_fail("worker: sockpass_open", rc);
    return 1;
  }
  for (;;) {
    sockpass_sock_t conn;
    size_t nsocks = 1, len;
    char msg[16], line[200], reply[260];

    len = sizeof msg;
    rc = sockpass_recv(chan, &conn, &nsocks, msg, &len);
    if (rc == SOCKPASS_EOF)
      break; /* the parent closed its end: no more work */
    if (rc < 0) {
      sp_fail("worker: sockpass_recv", rc);
      status = 1;
      break;
    }
    if (nsocks != 1 || len != 1 || msg[0] != 'C') { /* not what the parent sends */
      fprintf(stderr, "handoff: worker: unexpected message\n");
      if (nsocks == 1)
        close_sock(conn);
      continue;
    }
    count++;
    set_io_timeout(conn);
    if (read_line(conn, line, sizeof line) == 0) {
      snprintf(reply, sizeof reply, "%s pid=%ld count=%d\n", line, my_pid(), count);
      if (write_all(conn, reply, strlen(reply)) < 0)
        sys_fail("worker: send");
    }
    close_sock(conn); /* received sockets are ours to close */
  }
  sockpass_close(chan);
  return status;
}

/* ---- The parent ---- */

/* Accept one connection and send it to w; the parent then closes its copy. */
static int hand_off(sockpass_sock_t listener, struct worker *w) {
  int rc;
  sockpass_sock_t conn = accept(listener, NULL, NULL);
  if (conn == SOCKPASS_INVALID_SOCK)
    return sys_fail("accept");
  /* One byte of payload beside the socket: a stream channel (macOS) carries
   * sockets only with data, and it tells the worker what this socket is. */
  rc = sockpass_send(w->chan, &conn, 1, "C", 1);
  close_sock(conn); /* sent or not, our copy is ours to close */
  if (rc < 0)
    return sp_fail("sockpass_send", rc);
  w->served++;
  return 0;
}

/* Demo client, connection number i (from 1): connect, send a line, have the
 * parent hand the connection to w, read and check the answer. */
static int demo_one(sockpass_sock_t listener, const struct sockaddr_in *addr, int i,
                    struct worker *w, int wno) {
  char line[32], answer[260];
  long pid = 0;
  int count = 0, ok = 0;
  sockpass_sock_t c = socket(AF_INET, SOCK_STREAM, 0);

  if (c == SOCKPASS_INVALID_SOCK)
    return sys_fail("socket");
  set_io_timeout(c);
  snprintf(line, sizeof line, "hello %d\n", i);
  if (connect(c, (const struct sockaddr *)addr, sizeof *addr) != 0 ||
      write_all(c, line, strlen(line)) < 0)
    sys_fail("client");
  else if (hand_off(listener, w) == 0 && read_line(c, answer, sizeof answer) == 0) {
    line[strlen(line) - 1] = '\0';
    ok = strncmp(answer, line, strlen(line)) == 0 &&
         sscanf(answer + strlen(line), " pid=%ld count=%d", &pid, &count) == 2 &&
         pid == w->pid && count == w->served;
    printf("connection %2d -> worker %d (pid %ld): \"%s\" %s\n", i, wno, w->pid, answer,
           ok ? "ok" : "WRONG");
  } else {
    printf("connection %2d -> worker %d (pid %ld): no answer\n", i, wno, w->pid);
  }
  close_sock(c);
  return ok ? 0 : -1;
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
  if (bind(l, (struct sockaddr *)addr, sizeof *addr) != 0 || listen(l, 64) != 0 ||
      getsockname(l, (struct sockaddr *)addr, &alen) != 0) {
    sys_fail("listen on 127.0.0.1");
    close_sock(l);
    return SOCKPASS_INVALID_SOCK;
  }
  return l;
}

static int parent_main(const char *self, int demo, int nworkers, int port, int conns) {
  struct worker w[MAX_WORKERS];
  struct sockaddr_in addr;
  sockpass_sock_t listener = SOCKPASS_INVALID_SOCK;
  int i, started = 0, good = 0, failed = 0, rc;

  memset(w, 0, sizeof w);
  /* Workers first, while this process holds no socket that a child could
   * inherit by accident. */
  for (i = 0; i < nworkers; i++) {
    sockpass_chan_t *end;
    if ((rc = sockpass_pair(&w[i].chan, &end)) < 0) {
      sp_fail("sockpass_pair", rc);
      break;
    }
    /* A stuck worker cannot stall the parent: a send waits IO_TIMEOUT_MS at most. */
    if ((rc = sockpass_set_timeout(w[i].chan, IO_TIMEOUT_MS)) < 0)
      sp_fail("sockpass_set_timeout", rc);
    else
      rc = start_worker(&w[i], end, self);
    sockpass_close(end); /* the worker has its own copy now */
    if (rc < 0) {
      sockpass_close(w[i].chan);
      break;
    }
    started++;
  }
  if (started == nworkers)
    listener = open_listener(port, &addr);
  if (listener != SOCKPASS_INVALID_SOCK) {
    printf("handoff: listening on 127.0.0.1:%u with %d workers\n",
           (unsigned)ntohs(addr.sin_port), nworkers);
    fflush(stdout);
    for (i = 1; conns == 0 || i <= conns; i++) { /* conns == 0: serve forever */
      int k = (i - 1) % nworkers;
      if (demo)
        rc = demo_one(listener, &addr, i, &w[k], k + 1);
      else if ((rc = hand_off(listener, &w[k])) == 0)
        printf("connection %d -> worker %d (pid %ld)\n", i, k + 1, w[k].pid);
      fflush(stdout);
      if (rc == 0)
        good++;
      else
        failed++;
    }
    close_sock(listener);
  } else {
    failed++;
  }
  /* Shut down: a worker sees SOCKPASS_EOF once its channel is closed, and exits. */
  for (i = 0; i < started; i++) {
    sockpass_close(w[i].chan);
    rc = wait_worker(&w[i]);
    printf("handoff: worker %d (pid %ld) served %d, exited with %d\n", i + 1, w[i].pid,
           w[i].served, rc);
    if (rc != 0)
      failed++;
  }
  if (demo)
    printf("handoff: %d of %d connections served correctly: %s\n", good, conns,
           failed == 0 ? "PASS" : "FAIL");
  return failed == 0 ? 0 : 1;
}

static void usage(void) {
  fprintf(stderr, "usage: handoff [--demo | --serve] [--workers N] [--port P] "
                  "[--connections K]\n       handoff --worker HANDLE\n");
}

int main(int argc, char **argv) {
  int i, demo = 1, nworkers = 2, port = 0, conns = -1, rc;
#ifdef _WIN32
  WSADATA wsa;
#else
  signal(SIGPIPE, SIG_IGN); /* a client that hangs up must not kill us */
#endif

  if (argc == 3 && strcmp(argv[1], "--worker") == 0)
    return worker_main(argv[2]);
  for (i = 1; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : "";
    if (strcmp(opt, "--demo") == 0)
      demo = 1;
    else if (strcmp(opt, "--serve") == 0)
      demo = 0;
    else if (strcmp(opt, "--workers") == 0 && ++i < argc)
      nworkers = atoi(val);
    else if (strcmp(opt, "--port") == 0 && ++i < argc)
      port = atoi(val);
    else if (strcmp(opt, "--connections") == 0 && ++i < argc)
      conns = atoi(val);
    else {
      usage();
      return 2;
    }
  }
  if (conns < 0)
    conns = demo ? 10 : 0;
  if (nworkers < 1 || nworkers > MAX_WORKERS || port < 0 || port > 65535 ||
      (demo && conns == 0)) {
    usage();
    return 2;
  }
#ifdef _WIN32
  /* The parent makes sockets of its own (the worker does not: sockpass does it). */
  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
    fprintf(stderr, "handoff: WSAStartup failed\n");
    return 1;
  }
#endif
  rc = parent_main(argv[0], demo, nworkers, port, conns);
#ifdef _WIN32
  WSACleanup();
#endif
  return rc;
}
