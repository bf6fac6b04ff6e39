/* SPDX-License-Identifier: MIT */
/*
 * inetd-echo-drive: runs inetd-echo as an inetd-style server and checks it.
 *
 * By default this program plays the server itself: for each of a few TCP
 * connections it accepts on 127.0.0.1 it starts one inetd-echo with
 * sockpass_spawn and opts.stdio set to the connection, so the program's
 * stdin and stdout are the socket (start_one() is the whole pattern: accept,
 * spawn with opts.stdio, close our copy). With --sockpass-run PATH the tool
 * does that instead: sockpass-run --accept --listen 127.0.0.1:PORT -- inetd-echo.
 *
 * The clients, all open at once, send lines that a text-mode runtime would
 * mangle ("\r\n", a lone "\r", Ctrl-Z, bytes above 127, a 10000-byte line),
 * expect every byte back unchanged, then shut down their sending side and
 * expect end of stream; each inetd-echo started here must exit 0.
 *
 *   inetd-echo-drive [--demo] [--program PATH] [--clients N] [--sockpass-run PATH]
 *       --program defaults to inetd-echo next to this program.
 */
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#endif
#include <sockpass.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLIENTS 16
#define IO_TIMEOUT_MS 10000 /* the longest any socket or child is waited for */

#ifdef _WIN32
#define SHUT_WR SD_SEND
static int os_error(void) { return WSAGetLastError(); }
static void sleep_ms(int ms) { Sleep((DWORD)ms); }
#else
static int os_error(void) { return errno; }
static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}
#endif

static int sp_fail(const char *what, int rc) {
  fprintf(stderr, "inetd-echo-drive: %s: %s\n", what, sockpass_strerror(rc));
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

/* The default program: inetd-echo in this program's own directory. */
static void default_program(const char *argv0, char *out, size_t size) {
  const char *slash;
#ifdef _WIN32
  char self[MAX_PATH];
  DWORD n = GetModuleFileNameA(NULL, self, MAX_PATH);
  if (n > 0 && n < MAX_PATH)
    argv0 = self;
  slash = strrchr(argv0, '\\');
  if (strrchr(argv0, '/') > slash)
    slash = strrchr(argv0, '/');
  snprintf(out, size, "%.*sinetd-echo.exe", slash ? (int)(slash - argv0 + 1) : 0, argv0);
#else
  slash = strrchr(argv0, '/');
  snprintf(out, size, "%.*sinetd-echo", slash ? (int)(slash - argv0 + 1) : 0, argv0);
  if (slash == NULL) /* started through PATH: look there too */
    snprintf(out, size, "inetd-echo");
#endif
}

/* A TCP listener on 127.0.0.1, any free port; *addr gets its address. */
static sockpass_sock_t open_listener(struct sockaddr_in *addr) {
  socklen_t alen = sizeof *addr;
  sockpass_sock_t l = socket(AF_INET, SOCK_STREAM, 0);
  if (l == SOCKPASS_INVALID_SOCK) {
    sys_fail("socket");
    return l;
  }
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(0x7f000001); /* 127.0.0.1: INADDR_LOOPBACK is not POSIX */
  if (bind(l, (struct sockaddr *)addr, sizeof *addr) != 0 || listen(l, SOMAXCONN) != 0 ||
      getsockname(l, (struct sockaddr *)addr, &alen) != 0) {
    sys_fail("listen on 127.0.0.1");
    close_sock(l);
    return SOCKPASS_INVALID_SOCK;
  }
  return l;
}

/* The inetd pattern: accept one connection and start program with it as
 * stdin and stdout. The child has its own copy; ours is closed. */
static int start_one(sockpass_sock_t listener, const char *program, sockpass_proc_t **proc) {
  const char *const argv[] = {"inetd-echo", NULL};
  sockpass_spawn_opts_t opts;
  int rc;
  sockpass_sock_t c = accept(listener, NULL, NULL);
  if (c == SOCKPASS_INVALID_SOCK)
    return sys_fail("accept");
  sockpass_spawn_opts_init(&opts);
  opts.stdio = c;
  rc = sockpass_spawn(program, argv, &opts, proc);
  close_sock(c);
  if (rc < 0) {
    fprintf(stderr, "inetd-echo-drive: cannot start %s: %s\n", program, sockpass_strerror(rc));
    return -1;
  }
  return 0;
}

static int send_all(sockpass_sock_t s, const char *p, size_t len) {
  while (len > 0) {
    int n = (int)send(s, p, (int)len, 0);
    if (n <= 0)
      return sys_fail("client: send");
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Read exactly len bytes (bounded by SO_RCVTIMEO). */
static int recv_all(sockpass_sock_t s, char *p, size_t len) {
  while (len > 0) {
    int n = (int)recv(s, p, (int)len, 0);
    if (n < 0)
      return sys_fail("client: recv");
    if (n == 0) {
      fprintf(stderr, "inetd-echo-drive: client: unexpected end of stream\n");
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Line number k for client i, in buf; returns its length. */
static size_t make_line(int i, int k, char *buf, size_t size) {
  switch (k) {
  case 0:
    return (size_t)snprintf(buf, size, "hello from client %d\n", i);
  case 1:
    return (size_t)snprintf(buf, size, "crlf stays crlf %d\r\n", i);
  case 2:
    return (size_t)snprintf(buf, size, "lone\rcr, ctrl-z \x1a, bytes \x80\xfe\xff %d\n", i);
  case 3:
    return (size_t)snprintf(buf, size, "\n");
  default: { /* a long line, longer than the stdio buffers */
    size_t n = 10000 < size - 1 ? 10000 : size - 1, j;
    for (j = 0; j + 1 < n; j++)
      buf[j] = (char)('a' + (j + (size_t)i) % 26);
    buf[n - 1] = '\n';
    return n;
  }
  }
}
#define NLINES 5

/* Talk to all clients, interleaved (line k of every client, then line k+1),
 * then end each one's input: its program must echo every byte exactly,
 * then close its side. Returns how many of the n clients passed. */
static int talk(const sockpass_sock_t *c, int n) {
  int i, k, good = 0, lines[MAX_CLIENTS] = {0};
  for (k = 0; k < NLINES; k++)
    for (i = 0; i < n; i++) {
      char line[16384], back[16384];
      size_t len = make_line(i, k, line, sizeof line);
      if (send_all(c[i], line, len) == 0 && recv_all(c[i], back, len) == 0 &&
          memcmp(line, back, len) == 0)
        lines[i]++;
      else
        fprintf(stderr, "inetd-echo-drive: client %d line %d: not echoed exactly\n", i, k);
    }
  for (i = 0; i < n; i++) {
    char extra;
    int eof = 0;
    if (shutdown(c[i], SHUT_WR) != 0)
      sys_fail("client: shutdown");
    else if (!(eof = recv(c[i], &extra, 1, 0) == 0))
      fprintf(stderr, "inetd-echo-drive: client %d: no end of stream after end of input\n", i);
    printf("inetd-echo-drive: client %d: %d of %d lines echoed exactly, %s\n", i, lines[i], NLINES,
           eof ? "then end of stream" : "NO end of stream");
    if (lines[i] == NLINES && eof)
      good++;
  }
  return good;
}

/* Wait for a process we started; stop it if it does not end in time. */
static int reap(sockpass_proc_t *p) {
  int code = -1, rc = sockpass_proc_wait(p, IO_TIMEOUT_MS, &code);
  if (rc == SOCKPASS_ETIMEDOUT) { /* our own child, by its handle */
    fprintf(stderr, "inetd-echo-drive: pid %ld does not exit, stopping it\n", sockpass_proc_pid(p));
    sockpass_proc_kill(p);
    sockpass_proc_wait(p, IO_TIMEOUT_MS, NULL);
  } else if (rc < 0) {
    sp_fail("sockpass_proc_wait", rc);
  }
  sockpass_proc_free(p);
  return rc == 0 ? code : -1;
}

static sockpass_sock_t new_client(void) {
  sockpass_sock_t c = socket(AF_INET, SOCK_STREAM, 0);
  if (c == SOCKPASS_INVALID_SOCK)
    sys_fail("client: socket");
  else
    set_io_timeout(c);
  return c;
}

/* This program plays sockpass-run: one program per accepted connection. */
static int run_direct(const char *program, int nclients) {
  sockpass_sock_t listener, c[MAX_CLIENTS];
  sockpass_proc_t *proc[MAX_CLIENTS];
  struct sockaddr_in addr;
  int i, n = 0, good, exits = 0, ok;

  if ((listener = open_listener(&addr)) == SOCKPASS_INVALID_SOCK)
    return 1;
  printf("inetd-echo-drive: %d clients on 127.0.0.1:%u, each served by its own %s\n", nclients,
         (unsigned)ntohs(addr.sin_port), program);
  fflush(stdout);
  for (i = 0; i < nclients; i++) { /* connect; the server side starts a program per connection */
    if ((c[n] = new_client()) == SOCKPASS_INVALID_SOCK)
      break;
    if (connect(c[n], (const struct sockaddr *)&addr, sizeof addr) != 0) {
      sys_fail("client: connect");
      close_sock(c[n]);
      break;
    }
    if (start_one(listener, program, &proc[n]) < 0) {
      close_sock(c[n]);
      break;
    }
    n++;
  }
  close_sock(listener);
  good = talk(c, n);
  for (i = 0; i < n; i++) {
    int code = reap(proc[i]);
    printf("inetd-echo-drive: client %d: its program exited with %d\n", i, code);
    if (code == 0)
      exits++;
    close_sock(c[i]);
  }
  ok = n == nclients && good == nclients && exits == nclients;
  printf("inetd-echo-drive: %d of %d clients echoed exactly, %d of %d programs exited 0: %s\n",
         good, nclients, exits, nclients, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

/* The real thing: sockpass-run --accept --listen 127.0.0.1:PORT -- program.
 * The port is one that was free a moment ago; if the tool cannot bind it
 * after all (exit code 3), try another. */
static int run_tool(const char *tool, const char *program, int nclients) {
  sockpass_sock_t c[MAX_CLIENTS];
  sockpass_proc_t *p = NULL;
  struct sockaddr_in addr;
  char where[32];
  const char *const argv[] = {"sockpass-run", "--accept", "--listen", where, "--", program, NULL};
  int i, n = 0, rc, attempt, code = -1, good, ok;

  for (attempt = 0; attempt < 5 && n == 0; attempt++) {
    long long waited;
    sockpass_sock_t probe = open_listener(&addr);
    if (probe == SOCKPASS_INVALID_SOCK)
      return 1;
    close_sock(probe); /* free again: the tool binds it */
    snprintf(where, sizeof where, "127.0.0.1:%u", (unsigned)ntohs(addr.sin_port));
    if ((rc = sockpass_spawn(tool, argv, NULL, &p)) < 0) {
      fprintf(stderr, "inetd-echo-drive: cannot start %s: %s\n", tool, sockpass_strerror(rc));
      return 1;
    }
    /* Connect the first client as soon as the tool listens (bounded wait). */
    for (waited = 0; waited < IO_TIMEOUT_MS; waited += 50) {
      if ((c[0] = new_client()) == SOCKPASS_INVALID_SOCK)
        break;
      if (connect(c[0], (const struct sockaddr *)&addr, sizeof addr) == 0) {
        n = 1;
        break;
      }
      close_sock(c[0]);
      if (sockpass_proc_wait(p, SOCKPASS_NONBLOCK, &code) == 0)
        break; /* the tool has ended: code 3 means the port was taken */
      sleep_ms(50);
    }
    if (n == 0) {
      code = reap(p);
      p = NULL;
      fprintf(stderr, "inetd-echo-drive: sockpass-run on %s: no connection (exit code %d)\n", where,
              code);
      if (code != 3)
        return 1;
    }
  }
  if (p == NULL)
    return 1;
  printf("inetd-echo-drive: %d clients on %s, served by sockpass-run --accept -- %s\n", nclients,
         where, program);
  fflush(stdout);
  for (; n < nclients; n++) {
    if ((c[n] = new_client()) == SOCKPASS_INVALID_SOCK)
      break;
    if (connect(c[n], (const struct sockaddr *)&addr, sizeof addr) != 0) {
      sys_fail("client: connect");
      close_sock(c[n]);
      break;
    }
  }
  good = talk(c, n);
  for (i = 0; i < n; i++)
    close_sock(c[i]);
  /* Every program has ended its output; stop the tool. It exits 143 after
   * SIGTERM on POSIX; TerminateProcess gives 1 on Windows. */
  sockpass_proc_kill(p);
  code = reap(p);
#ifdef _WIN32
  ok = code == 1;
#else
  ok = code == 128 + 15;
#endif
  printf("inetd-echo-drive: sockpass-run stopped, exit code %d\n", code);
  ok = ok && n == nclients && good == nclients;
  printf("inetd-echo-drive: %d of %d clients echoed exactly through sockpass-run: %s\n", good,
         nclients, ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  char program[1024];
  const char *tool = NULL;
  int i, rc, nclients = 3;
#ifdef _WIN32
  WSADATA wsa;
  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
    fprintf(stderr, "inetd-echo-drive: WSAStartup failed\n");
    return 1;
  }
#else
  signal(SIGPIPE, SIG_IGN);
#endif
  default_program(argv[0], program, sizeof program);
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--program") == 0 && i + 1 < argc)
      snprintf(program, sizeof program, "%s", argv[++i]);
    else if (strcmp(argv[i], "--sockpass-run") == 0 && i + 1 < argc)
      tool = argv[++i];
    else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc)
      nclients = atoi(argv[++i]);
    else if (strcmp(argv[i], "--demo") != 0)
      break;
  }
  if (i < argc || nclients < 1 || nclients > MAX_CLIENTS) {
    fprintf(stderr, "usage: inetd-echo-drive [--demo] [--program PATH] [--clients N]\n"
                    "                        [--sockpass-run PATH]\n");
    rc = 2;
  } else {
    rc = tool ? run_tool(tool, program, nclients) : run_direct(program, nclients);
  }
#ifdef _WIN32
  WSACleanup();
#endif
  return rc;
}
