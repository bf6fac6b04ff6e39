/* SPDX-License-Identifier: MIT */
/*
 * sockpass-run: listen on TCP addresses and start a program with them.
 *
 *   sockpass-run --listen HOST:PORT [--name NAME] [--listen ...] -- PROGRAM [ARGS...]
 *     binds every listener, starts PROGRAM once with them inherited (it finds
 *     them with sockpass_inherited), waits for it and exits with its code;
 *   sockpass-run --accept [--max N] --listen HOST:PORT [...] -- PROGRAM [ARGS...]
 *     accepts connections and starts PROGRAM once per connection with the
 *     connection as its standard input and output, at most N at a time.
 *
 * docs/sockpass-run.md is the reference: options, exit codes, signals.
 */
#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>

#include <windows.h>

#include <shellapi.h> /* CommandLineToArgvW, after windows.h */
#else
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sockpass.h>

#define SR_PROG "sockpass-run"

/* Exit codes of the tool itself (docs/sockpass-run.md). Without --accept the
 * program's own exit code is passed on once it has been started. */
#define SR_EXIT_FAIL 1       /* a failure while running: out of memory, ... */
#define SR_EXIT_USAGE 2      /* bad option, bad or unresolvable address */
#define SR_EXIT_LISTEN 3     /* an address could not be bound (busy port, ...) */
#define SR_EXIT_NOEXEC 126   /* the program exists but may not be run */
#define SR_EXIT_NOTFOUND 127 /* the program does not exist */
/* Stopped by a signal or console event: 128 + its number. */

#define SR_MAX_DEFAULT 40
#define SR_MAX_LIMIT 100000
#define SR_NAME_MAX 255
/* Children still running this long after they were asked to stop are
 * killed outright (POSIX: SIGKILL; Windows stops them at once anyway). */
#define SR_GRACE_MS 10000
/* Pause after an accept or start failure, so a lasting one cannot spin. */
#define SR_BACKOFF_MS 500
#ifdef _WIN32
/* Windows: how often running children are polled for their end. */
#define SR_POLL_MS 50
#endif

typedef struct {
  const char *text; /* HOST:PORT as given */
  const char *name; /* --name, or NULL: defname */
  char defname[SR_NAME_MAX + 1];
  char bound[NI_MAXHOST + 16]; /* the address actually bound, as announced */
  sockpass_sock_t sock;
} sr_listener_t;

typedef struct {
  sr_listener_t *ls;
  size_t nls;
  int accept_mode;
  long max;
  char **prog; /* PROGRAM ARGS..., NULL-terminated */
} sr_opts_t;

static void sr_err(const char *fmt, ...) {
  va_list ap;
  fputs(SR_PROG ": ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
}

static const char *sr_oserr(int oscode) { return sockpass_strerror(SOCKPASS_SYSERR(oscode)); }

/* ==== Platform: sockets, stop requests, waiting ==== */

#ifdef _WIN32

static HANDLE sr_stop_event;      /* set by the console handler */
static HANDLE sr_accept_event;    /* FD_ACCEPT of every listener */
static volatile LONG sr_stop_sig; /* 0, or the number the exit code is built from */

static int sr_last_error(void) { return WSAGetLastError(); }
static int sr_is_addrinuse(int code) { return code == WSAEADDRINUSE; }

static BOOL WINAPI sr_console_handler(DWORD type) {
  LONG sig;
  switch (type) {
  case CTRL_C_EVENT:
    sig = 2; /* SIGINT */
    break;
  case CTRL_BREAK_EVENT:
    sig = 21; /* SIGBREAK, as the C runtime numbers it */
    break;
  case CTRL_CLOSE_EVENT:
  case CTRL_SHUTDOWN_EVENT:
    sig = 1; /* SIGHUP's number: the console is going away */
    break;
  default:
    return FALSE; /* logoff: the system's default */
  }
  InterlockedCompareExchange(&sr_stop_sig, sig, 0);
  SetEvent(sr_stop_event);
  /* After a close or shutdown event the system ends the process as soon as
   * the handler returns: hold it, so main stops the children and exits
   * first (the system waits 5 s for a close, longer for a shutdown). */
  if (type == CTRL_CLOSE_EVENT || type == CTRL_SHUTDOWN_EVENT)
    Sleep(INFINITE);
  return TRUE;
}

static int sr_platform_start(void) {
  WSADATA wd;
  int rc = WSAStartup(MAKEWORD(2, 2), &wd);
  if (rc != 0) {
    sr_err("cannot start Winsock: %s", sr_oserr(rc));
    return -1;
  }
  sr_stop_event = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (sr_stop_event == NULL) {
    sr_err("cannot create an event: %s", sr_oserr((int)GetLastError()));
    return -1;
  }
  /* A parent may have started us with Ctrl+C ignored (a new process group
   * does that); take it back, then handle every console event. */
  SetConsoleCtrlHandler(NULL, FALSE);
  if (!SetConsoleCtrlHandler(sr_console_handler, TRUE)) {
    sr_err("cannot handle console events: %s", sr_oserr((int)GetLastError()));
    return -1;
  }
  return 0;
}

static int sr_stop_requested(void) { return (int)InterlockedCompareExchange(&sr_stop_sig, 0, 0); }

/* Listeners of the accept mode are made without WSA_FLAG_OVERLAPPED, so the
 * sockets accept() returns are not overlapped either: ReadFile and WriteFile
 * on standard handles need that. The listen mode hands the listener itself
 * to the program, which may well want overlapped I/O (AcceptEx). */
static sockpass_sock_t sr_socket(int family, int for_accept) {
  return WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                    for_accept ? 0 : WSA_FLAG_OVERLAPPED);
}

static int sr_sock_setup(sockpass_sock_t s, int family) {
  int one = 1;
  /* No SO_REUSEADDR: on Windows it lets a second socket take a port in use.
   * Without options a busy port is WSAEADDRINUSE, and connections of an
   * earlier run in TIME_WAIT do not hold the port (which they would with
   * SO_EXCLUSIVEADDRUSE). */
  if (family == AF_INET6 &&
      setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, (const char *)&one, sizeof one) != 0)
    return -1;
  return 0;
}

static void sr_sock_close(sockpass_sock_t s) { closesocket(s); }

static int sr_accept_prepare(sr_opts_t *o) {
  size_t i;
  sr_accept_event = WSACreateEvent();
  if (sr_accept_event == WSA_INVALID_EVENT) {
    sr_err("cannot create an event: %s", sr_oserr(WSAGetLastError()));
    return -1;
  }
  /* One event for every listener; this also makes them non-blocking. */
  for (i = 0; i < o->nls; i++)
    if (WSAEventSelect(o->ls[i].sock, sr_accept_event, FD_ACCEPT) != 0) {
      sr_err("%s: %s", o->ls[i].bound, sr_oserr(WSAGetLastError()));
      return -1;
    }
  return 0;
}

enum { SR_ACC_OK, SR_ACC_EMPTY, SR_ACC_RETRY, SR_ACC_ERROR };

static int sr_accept(sockpass_sock_t l, sockpass_sock_t *conn, int *oscode) {
  u_long blocking = 0;
  SOCKET c = accept(l, NULL, NULL);
  if (c == INVALID_SOCKET) {
    *oscode = WSAGetLastError();
    switch (*oscode) {
    case WSAEWOULDBLOCK:
      return SR_ACC_EMPTY;
    case WSAECONNRESET:
    case WSAEINTR:
      return SR_ACC_RETRY;
    default:
      return SR_ACC_ERROR;
    }
  }
  /* The accepted socket inherits the listener's event selection and with
   * it non-blocking mode; the program expects a plain blocking socket. */
  if (WSAEventSelect(c, NULL, 0) != 0 || ioctlsocket(c, FIONBIO, &blocking) != 0) {
    *oscode = WSAGetLastError();
    closesocket(c);
    return SR_ACC_ERROR;
  }
  *conn = c;
  return SR_ACC_OK;
}

/* Sleep until a stop request, a connection (when want_accept) or timeout_ms
 * (-1: none). Children are not waited for here: with children running the
 * caller passes SR_POLL_MS and polls them. */
static void sr_wait(sr_opts_t *o, int want_accept, int timeout_ms, int have_children) {
  HANDLE hs[2];
  DWORD n = 0, t;
  (void)o;
  hs[n++] = sr_stop_event;
  if (want_accept) {
    hs[n++] = sr_accept_event;
    /* Every listener is tried after the wait; a connection arriving after
     * that attempt sets the event again, as accept() re-enables FD_ACCEPT. */
  }
  t = timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms;
  if (have_children && (t == INFINITE || t > SR_POLL_MS))
    t = SR_POLL_MS;
  WaitForMultipleObjects(n, hs, FALSE, t);
  if (want_accept)
    ResetEvent(sr_accept_event);
}

/* Whether the children should be polled for their end now. */
static int sr_children_changed(void) { return 1; }

static void sr_force_kill(sockpass_proc_t *p) { (void)p; /* TerminateProcess already */ }

static unsigned long long sr_now_ms(void) { return GetTickCount64(); }

static void sr_platform_done(void) {
  if (sr_accept_event != NULL && sr_accept_event != WSA_INVALID_EVENT)
    WSACloseEvent(sr_accept_event);
}

/* The command line as UTF-8, which sockpass_spawn takes on Windows. */
static char **sr_utf8_argv(int *argc) {
  int n, i;
  LPWSTR *w = CommandLineToArgvW(GetCommandLineW(), &n);
  char **v;
  if (w == NULL)
    return NULL;
  v = calloc((size_t)n + 1, sizeof *v);
  for (i = 0; v != NULL && i < n; i++) {
    int len = WideCharToMultiByte(CP_UTF8, 0, w[i], -1, NULL, 0, NULL, NULL);
    v[i] = len > 0 ? malloc((size_t)len) : NULL;
    if (v[i] == NULL || WideCharToMultiByte(CP_UTF8, 0, w[i], -1, v[i], len, NULL, NULL) <= 0) {
      v = NULL; /* leaked at exit: the tool stops at once */
      break;
    }
  }
  LocalFree(w);
  if (v != NULL)
    *argc = n;
  return v;
}

#else /* POSIX */

static int sr_pipe[2] = {-1, -1};           /* self-pipe: every handled signal writes a byte */
static volatile sig_atomic_t sr_stop_sig;   /* 0, or the stop signal's number */
static volatile sig_atomic_t sr_child_flag; /* a SIGCHLD came since the last look */

static int sr_last_error(void) { return errno; }
static int sr_is_addrinuse(int code) { return code == EADDRINUSE; }

static void sr_on_signal(int sig) {
  int saved = errno;
  ssize_t w;
  if (sig == SIGCHLD)
    sr_child_flag = 1;
  else if (sr_stop_sig == 0)
    sr_stop_sig = sig;
  w = write(sr_pipe[1], "x", 1); /* a full pipe already wakes the loop */
  (void)w;
  errno = saved;
}

static int sr_fd_flags(int fd, int cloexec, int nonblock) {
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0 || fcntl(fd, F_SETFD, cloexec ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC) < 0)
    return -1;
  fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, nonblock ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) < 0)
    return -1;
  return 0;
}

static int sr_platform_start(void) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD};
  struct sigaction sa;
  size_t i;
  if (pipe(sr_pipe) != 0 || sr_fd_flags(sr_pipe[0], 1, 1) != 0 ||
      sr_fd_flags(sr_pipe[1], 1, 1) != 0) {
    sr_err("cannot make a pipe: %s", sr_oserr(errno));
    return -1;
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = sr_on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    if (sigaction(sigs[i], &sa, NULL) != 0) {
      sr_err("cannot handle signal %d: %s", sigs[i], sr_oserr(errno));
      return -1;
    }
  /* A closed stderr must not end the tool with its children left behind.
   * The children get every signal back at its default. */
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

static int sr_stop_requested(void) { return (int)sr_stop_sig; }

static sockpass_sock_t sr_socket(int family, int for_accept) {
  int s = socket(family, SOCK_STREAM, IPPROTO_TCP);
  (void)for_accept;
  if (s >= 0 && sr_fd_flags(s, 1, 0) != 0) {
    int e = errno;
    close(s);
    errno = e;
    return -1;
  }
  return s;
}

static int sr_sock_setup(sockpass_sock_t s, int family) {
  int one = 1;
  /* A restarted server can bind again while old connections linger in
   * TIME_WAIT; a port someone listens on is still EADDRINUSE. */
  if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    return -1;
  if (family == AF_INET6 && setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
    return -1;
  return 0;
}

static void sr_sock_close(sockpass_sock_t s) { close(s); }

static int sr_accept_prepare(sr_opts_t *o) {
  size_t i;
  for (i = 0; i < o->nls; i++)
    if (sr_fd_flags(o->ls[i].sock, 1, 1) != 0) {
      sr_err("%s: %s", o->ls[i].bound, sr_oserr(errno));
      return -1;
    }
  return 0;
}

enum { SR_ACC_OK, SR_ACC_EMPTY, SR_ACC_RETRY, SR_ACC_ERROR };

static int sr_accept(sockpass_sock_t l, sockpass_sock_t *conn, int *oscode) {
  int c = accept(l, NULL, NULL);
  if (c < 0) {
    *oscode = errno;
    switch (errno) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
      return SR_ACC_EMPTY;
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENOPROTOOPT:
    case EOPNOTSUPP:
      return SR_ACC_RETRY; /* that connection's problem, not the listener's */
    default:
      return SR_ACC_ERROR;
    }
  }
  /* Some systems pass the listener's O_NONBLOCK on to accepted sockets. */
  if (sr_fd_flags(c, 1, 0) != 0) {
    *oscode = errno;
    close(c);
    return SR_ACC_ERROR;
  }
  *conn = c;
  return SR_ACC_OK;
}

static void sr_wait(sr_opts_t *o, int want_accept, int timeout_ms, int have_children) {
  struct pollfd pf[1 + SOCKPASS_MAX_SOCKS];
  nfds_t n = 0;
  size_t i;
  char buf[64];
  (void)have_children; /* SIGCHLD wakes the poll */
  pf[n].fd = sr_pipe[0];
  pf[n++].events = POLLIN;
  if (want_accept)
    for (i = 0; i < o->nls; i++) {
      pf[n].fd = o->ls[i].sock;
      pf[n++].events = POLLIN;
    }
  /* A signal that came before this poll has left a byte in the pipe. */
  if (poll(pf, n, timeout_ms) > 0 && (pf[0].revents & POLLIN))
    while (read(sr_pipe[0], buf, sizeof buf) > 0) {
    }
}

static int sr_children_changed(void) {
  if (!sr_child_flag)
    return 0;
  sr_child_flag = 0;
  return 1;
}

static void sr_force_kill(sockpass_proc_t *p) {
  /* Still our unreaped child, so the pid cannot have been reused. */
  kill((pid_t)sockpass_proc_pid(p), SIGKILL);
}

static unsigned long long sr_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u;
}

/* The self-pipe goes too: first the signals that write to it stop being
 * handled (ignored from here to the exit, which is near). */
static void sr_platform_done(void) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  size_t i;
  for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    signal(sigs[i], SIG_IGN);
  signal(SIGCHLD, SIG_DFL);
  for (i = 0; i < 2; i++)
    if (sr_pipe[i] >= 0) {
      close(sr_pipe[i]);
      sr_pipe[i] = -1;
    }
}

#endif

/* ==== Options ==== */

static void sr_usage(FILE *f) {
  fputs("usage: " SR_PROG " [--accept [--max N]] --listen HOST:PORT [--name NAME]\n"
        "                    [--listen HOST:PORT [--name NAME]]... [--] PROGRAM [ARGS...]\n"
        "\n"
        "Without --accept: listen on every address, start PROGRAM once with the\n"
        "listening sockets inherited (it finds them with sockpass_inherited or as\n"
        "systemd socket activation), wait for it and exit with its exit code.\n"
        "With --accept: start PROGRAM once per connection, the connection as its\n"
        "standard input and output, at most N at a time (default 40).\n"
        "\n"
        "  -l, --listen HOST:PORT  127.0.0.1:8080, [::1]:8080, localhost:0 (0: any port)\n"
        "  -n, --name NAME         the name of the listener before it (default: its\n"
        "                          HOST:PORT text with ':' and spaces made '_')\n"
        "  -a, --accept            one PROGRAM per connection (inetd nowait)\n"
        "  -m, --max N             with --accept: children at once (default 40)\n"
        "  -h, --help              this text\n"
        "  -V, --version           the version\n"
        "\n"
        "Each listener is announced on stderr as \"" SR_PROG ": listening on ADDRESS\".\n"
        "Exit codes: PROGRAM's own (without --accept), 1 failure, 2 usage or bad\n"
        "address, 3 cannot listen, 126 cannot run PROGRAM, 127 PROGRAM not found,\n"
        "128+N stopped by signal N. See docs/sockpass-run.md.\n",
        f);
}

static int sr_usage_error(const char *fmt, ...) {
  va_list ap;
  fputs(SR_PROG ": ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\nTry '" SR_PROG " --help'.\n", stderr);
  fflush(stderr);
  return SR_EXIT_USAGE;
}

/* systemd's rule: 1 to 255 printable ASCII characters, no ':'. */
static int sr_name_ok(const char *s) {
  size_t n;
  for (n = 0; s[n] != '\0'; n++)
    if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e || s[n] == ':')
      return 0;
  return n >= 1 && n <= SR_NAME_MAX;
}

/* The default name: the text as given, every character the rule forbids
 * made '_', cut to 255 characters. */
static void sr_default_name(const char *text, char *out) {
  size_t n;
  for (n = 0; text[n] != '\0' && n < SR_NAME_MAX; n++) {
    unsigned char ch = (unsigned char)text[n];
    out[n] = (ch < 0x21 || ch > 0x7e || ch == ':') ? '_' : (char)ch;
  }
  out[n] = '\0';
}

/* Matches argv[*i] against the short and long spelling of an option. For an
 * option with a value, *val is set from "--long=VALUE" or the next argument.
 * 1: matched; 0: not this option; -1: usage error (already reported). */
static int sr_opt(int argc, char **argv, int *i, const char *shortname, const char *longname,
                  const char **val) {
  const char *a = argv[*i];
  size_t ln = strlen(longname);
  if (strcmp(a, shortname) != 0 && strcmp(a, longname) != 0) {
    if (val == NULL || strncmp(a, longname, ln) != 0 || a[ln] != '=')
      return 0;
    *val = a + ln + 1;
    return 1;
  }
  if (val == NULL)
    return 1;
  if (*i + 1 >= argc) {
    sr_usage_error("option %s needs a value", a);
    return -1;
  }
  *val = argv[++*i];
  return 1;
}

/* 0 on success, else the exit code (help and version exit with 0 through
 * *done). */
static int sr_parse(int argc, char **argv, sr_opts_t *o, int *done) {
  int i, r;
  const char *v = NULL;
  int max_given = 0;
  memset(o, 0, sizeof *o);
  o->max = SR_MAX_DEFAULT;
  *done = 0;
  o->ls = calloc((size_t)argc, sizeof *o->ls); /* never more listeners than arguments */
  if (o->ls == NULL) {
    sr_err("out of memory");
    return SR_EXIT_FAIL;
  }
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (a[0] != '-' || a[1] == '\0')
      break; /* PROGRAM */
    if ((r = sr_opt(argc, argv, &i, "-l", "--listen", &v)) != 0) {
      if (r < 0)
        return SR_EXIT_USAGE;
      if (o->nls == SOCKPASS_MAX_SOCKS)
        return sr_usage_error("at most %d listeners", SOCKPASS_MAX_SOCKS);
      o->ls[o->nls].text = v;
      o->ls[o->nls].sock = SOCKPASS_INVALID_SOCK;
      sr_default_name(v, o->ls[o->nls].defname);
      o->nls++;
    } else if ((r = sr_opt(argc, argv, &i, "-n", "--name", &v)) != 0) {
      if (r < 0)
        return SR_EXIT_USAGE;
      if (o->nls == 0)
        return sr_usage_error("--name %s: it names the --listen before it, and there is none", v);
      if (!sr_name_ok(v))
        return sr_usage_error("--name '%s': a name is 1 to 255 printable ASCII characters "
                              "without ':' or spaces",
                              v);
      o->ls[o->nls - 1].name = v;
    } else if ((r = sr_opt(argc, argv, &i, "-m", "--max", &v)) != 0) {
      char *end;
      long n;
      if (r < 0)
        return SR_EXIT_USAGE;
      n = strtol(v, &end, 10);
      if (v[0] < '0' || v[0] > '9' || *end != '\0' || n < 1 || n > SR_MAX_LIMIT)
        return sr_usage_error("--max %s: a number from 1 to %d", v, SR_MAX_LIMIT);
      o->max = n;
      max_given = 1;
    } else if (sr_opt(argc, argv, &i, "-a", "--accept", NULL)) {
      o->accept_mode = 1;
    } else if (sr_opt(argc, argv, &i, "-h", "--help", NULL)) {
      sr_usage(stdout);
      *done = 1;
      return 0;
    } else if (sr_opt(argc, argv, &i, "-V", "--version", NULL)) {
      printf(SR_PROG " %s\n", sockpass_version_string());
      *done = 1;
      return 0;
    } else {
      return sr_usage_error("unknown option %s", a);
    }
  }
  if (i >= argc)
    return sr_usage_error("no PROGRAM given");
  if (o->nls == 0)
    return sr_usage_error("no --listen HOST:PORT given");
  if (max_given && !o->accept_mode)
    return sr_usage_error("--max applies only with --accept");
  if (o->accept_mode)
    for (r = 0; (size_t)r < o->nls; r++)
      if (o->ls[r].name != NULL)
        return sr_usage_error("--name applies only without --accept");
  o->prog = argv + i;
  return 0;
}

/* ==== Listeners ==== */

/* Split "HOST:PORT" or "[HOST]:PORT". 0, or -1 after a usage message. */
static int sr_split(const char *text, char *host, size_t hostroom, char *port, int *bracketed) {
  const char *colon, *h = text;
  size_t hl, pl, k;
  *bracketed = 0;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (close == NULL || close[1] != ':') {
      sr_usage_error("bad address '%s': [HOST]:PORT expected", text);
      return -1;
    }
    h = text + 1;
    hl = (size_t)(close - h);
    colon = close + 1;
    *bracketed = 1;
  } else {
    colon = strrchr(text, ':');
    if (colon == NULL) {
      sr_usage_error("bad address '%s': HOST:PORT expected", text);
      return -1;
    }
    hl = (size_t)(colon - text);
    if (memchr(text, ':', hl) != NULL) {
      sr_usage_error("bad address '%s': an IPv6 address goes in brackets, [%.*s]:PORT", text,
                     (int)hl, text);
      return -1;
    }
  }
  if (hl == 0 || hl >= hostroom) {
    sr_usage_error("bad address '%s': %s", text, hl == 0 ? "no HOST" : "HOST too long");
    return -1;
  }
  memcpy(host, h, hl);
  host[hl] = '\0';
  pl = strlen(colon + 1);
  for (k = 0; k < pl; k++)
    if (colon[1 + k] < '0' || colon[1 + k] > '9')
      break;
  if (pl == 0 || k < pl || pl > 5 || strtol(colon + 1, NULL, 10) > 65535) {
    sr_usage_error("bad address '%s': PORT must be a number from 0 to 65535", text);
    return -1;
  }
  memcpy(port, colon + 1, pl + 1);
  return 0;
}

static void sr_format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t room) {
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) !=
      0) {
    snprintf(out, room, "?");
    return;
  }
  snprintf(out, room, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* Resolve and bind l->text. 0, or the exit code after a message. */
static int sr_listen(sr_listener_t *l, int for_accept) {
  char host[NI_MAXHOST], port[8];
  struct addrinfo hints, *res = NULL, *ai;
  struct sockaddr_storage ss;
  socklen_t sl = (socklen_t)sizeof ss;
  int bracketed, rc, first_err = 0;
  const char *what = NULL;

  if (sr_split(l->text, host, sizeof host, port, &bracketed) != 0)
    return SR_EXIT_USAGE;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = bracketed ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV | (bracketed ? AI_NUMERICHOST : 0);
  rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0 || res == NULL) {
    sr_err("bad address '%s': %s", l->text, rc != 0 ? gai_strerror(rc) : "no address found");
    fputs("Try '" SR_PROG " --help'.\n", stderr);
    return SR_EXIT_USAGE;
  }
  /* The first address a socket can be bound to; on failure, the first
   * address's error is the one reported. */
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    sockpass_sock_t s = sr_socket(ai->ai_family, for_accept);
    const char *step = "socket";
    if (s != SOCKPASS_INVALID_SOCK) {
      step = "setsockopt";
      if (sr_sock_setup(s, ai->ai_family) == 0) {
        step = "bind";
        if (bind(s, ai->ai_addr, (socklen_t)ai->ai_addrlen) == 0) {
          step = "listen";
          if (listen(s, SOMAXCONN) == 0) {
            l->sock = s;
            break;
          }
        }
      }
    }
    if (first_err == 0) {
      first_err = sr_last_error();
      what = step;
    }
    if (s != SOCKPASS_INVALID_SOCK)
      sr_sock_close(s);
  }
  freeaddrinfo(res);
  if (l->sock == SOCKPASS_INVALID_SOCK) {
    if (sr_is_addrinuse(first_err))
      sr_err("cannot listen on %s: address already in use", l->text);
    else
      sr_err("cannot listen on %s: %s: %s", l->text, what, sr_oserr(first_err));
    return SR_EXIT_LISTEN;
  }
  if (getsockname(l->sock, (struct sockaddr *)&ss, &sl) == 0)
    sr_format_addr((const struct sockaddr *)&ss, sl, l->bound, sizeof l->bound);
  else
    snprintf(l->bound, sizeof l->bound, "%s", l->text);
  return 0;
}

static void sr_close_listeners(sr_opts_t *o) {
  size_t i;
  for (i = 0; i < o->nls; i++)
    if (o->ls[i].sock != SOCKPASS_INVALID_SOCK) {
      sr_sock_close(o->ls[i].sock);
      o->ls[i].sock = SOCKPASS_INVALID_SOCK;
    }
}

/* ==== Children ==== */

typedef struct {
  sockpass_proc_t **p;
  size_t n;
} sr_kids_t;

/* Start the program. 0, or the exit code its failure calls for (after a
 * message). */
/* Children die with the tool, even when it is killed outright (no orphan
 * keeps a port or a connection): where the library can promise it. */
#if defined(_WIN32) || defined(__linux__)
#define SR_SPAWN_FLAGS SOCKPASS_SPAWN_KILL_WITH_PARENT
#else
#define SR_SPAWN_FLAGS 0u
#endif

static int sr_start(sr_opts_t *o, const sockpass_spawn_opts_t *so_in, sockpass_proc_t **proc) {
  sockpass_spawn_opts_t so_copy = *so_in, *so = &so_copy;
  int rc;
  so->flags |= SR_SPAWN_FLAGS;
  rc = sockpass_spawn(o->prog[0], (const char *const *)o->prog, so, proc);
  switch (rc) {
  case 0:
    return 0;
  case SOCKPASS_ENOENT:
    sr_err("%s: not found", o->prog[0]);
    return SR_EXIT_NOTFOUND;
  case SOCKPASS_EACCES:
    sr_err("%s: permission denied", o->prog[0]);
    return SR_EXIT_NOEXEC;
  default:
    sr_err("cannot start %s: %s", o->prog[0], sockpass_strerror(rc));
    return SR_EXIT_FAIL;
  }
}

/* Reap every child that has ended. With last_code, a listen-mode child's
 * code goes there (and 1 is returned when it ended). */
static int sr_reap(sr_kids_t *k, int *last_code) {
  size_t i = 0;
  int ended = 0;
  while (i < k->n) {
    int code = 0;
    if (sockpass_proc_wait(k->p[i], SOCKPASS_NONBLOCK, &code) == 0) {
      sockpass_proc_free(k->p[i]);
      k->p[i] = k->p[--k->n];
      if (last_code != NULL)
        *last_code = code;
      ended = 1;
    } else {
      i++;
    }
  }
  return ended;
}

/* Ask every child to stop, give them SR_GRACE_MS, then stop the rest
 * outright; return when all have ended. */
static void sr_stop_children(sr_kids_t *k) {
  unsigned long long deadline;
  size_t i;
  for (i = 0; i < k->n; i++)
    sockpass_proc_kill(k->p[i]);
  deadline = sr_now_ms() + SR_GRACE_MS;
  for (i = 0; i < k->n; i++) {
    unsigned long long now = sr_now_ms();
    int left = now >= deadline ? 0 : (int)(deadline - now);
    if (sockpass_proc_wait(k->p[i], left, NULL) != 0) {
      sr_force_kill(k->p[i]);
      sockpass_proc_wait(k->p[i], SOCKPASS_WAIT_FOREVER, NULL);
    }
    sockpass_proc_free(k->p[i]);
  }
  k->n = 0;
}

/* ==== The two modes ==== */

static int sr_run_listen(sr_opts_t *o) {
  sockpass_spawn_opts_t so;
  sockpass_sock_t socks[SOCKPASS_MAX_SOCKS];
  const char *names[SOCKPASS_MAX_SOCKS];
  sockpass_proc_t *proc = NULL;
  sr_kids_t kids = {&proc, 0};
  size_t i;
  int rc, code = 0, sig;

  for (i = 0; i < o->nls; i++) {
    socks[i] = o->ls[i].sock;
    names[i] = o->ls[i].name != NULL ? o->ls[i].name : o->ls[i].defname;
  }
  sockpass_spawn_opts_init(&so);
  so.socks = socks;
  so.nsocks = o->nls;
  so.names = names;
  rc = sr_start(o, &so, &proc);
  /* The program has its own copies; ours would only keep the ports bound
   * after it has closed them. */
  sr_close_listeners(o);
  if (rc != 0)
    return rc;
  kids.n = 1;
  for (;;) {
    if ((sig = sr_stop_requested()) != 0) {
      sr_stop_children(&kids);
      return 128 + sig;
    }
    if (sr_children_changed() && sr_reap(&kids, &code))
      return code;
    sr_wait(o, 0, -1, 1);
  }
}

/* Accept and start children while there is room: the rest waits in the
 * backlog. 0, or the exit code that ends the tool; *backoff is set after a
 * failure that may last. */
static int sr_accept_some(sr_opts_t *o, sr_kids_t *k, int *backoff) {
  size_t i;
  for (i = 0; i < o->nls; i++)
    while ((long)k->n < o->max) {
      sockpass_sock_t conn;
      sockpass_spawn_opts_t so;
      sockpass_proc_t *p = NULL;
      int oscode = 0, r = sr_accept(o->ls[i].sock, &conn, &oscode);
      if (r == SR_ACC_EMPTY)
        break; /* the next listener */
      if (r == SR_ACC_RETRY)
        continue;
      if (r == SR_ACC_ERROR) {
        sr_err("accept on %s: %s", o->ls[i].bound, sr_oserr(oscode));
        *backoff = 1;
        return 0;
      }
      sockpass_spawn_opts_init(&so);
      so.stdio = conn;
      r = sr_start(o, &so, &p);
      sr_sock_close(conn); /* the child has its own copy */
      if (r == SR_EXIT_NOTFOUND || r == SR_EXIT_NOEXEC)
        return r; /* no later connection can do better */
      if (r != 0) {
        *backoff = 1;
        return 0;
      }
      k->p[k->n++] = p;
    }
  return 0;
}

static int sr_run_accept(sr_opts_t *o) {
  sr_kids_t kids;
  int sig, rc = 0;

  kids.n = 0;
  kids.p = calloc((size_t)o->max, sizeof *kids.p);
  if (kids.p == NULL) {
    sr_err("out of memory");
    return SR_EXIT_FAIL;
  }
  if (sr_accept_prepare(o) != 0) {
    free(kids.p);
    return SR_EXIT_FAIL;
  }
  for (;;) {
    int backoff = 0, room, busy;
    if ((sig = sr_stop_requested()) != 0) {
      rc = 128 + sig;
      break;
    }
    if (sr_children_changed())
      sr_reap(&kids, NULL);
    if ((rc = sr_accept_some(o, &kids, &backoff)) != 0)
      break;
    room = (long)kids.n < o->max;
    busy = kids.n > 0;
    if (backoff)
      sr_wait(o, 0, SR_BACKOFF_MS, busy);
    else
      sr_wait(o, room, -1, busy);
  }
  sr_stop_children(&kids);
  free(kids.p);
  return rc;
}

int main(int argc, char **argv) {
  sr_opts_t o;
  size_t i;
  int rc, done;

#ifdef _WIN32
  argv = sr_utf8_argv(&argc);
  if (argv == NULL) {
    sr_err("cannot read the command line");
    return SR_EXIT_FAIL;
  }
#endif
  rc = sr_parse(argc, argv, &o, &done);
  if (rc != 0 || done)
    return rc;
  /* Signals are handled before the first child can exist. */
  if (sr_platform_start() != 0)
    return SR_EXIT_FAIL;
  for (i = 0; i < o.nls; i++)
    if ((rc = sr_listen(&o.ls[i], o.accept_mode)) != 0) {
      sr_close_listeners(&o);
      sr_platform_done();
      return rc;
    }
  for (i = 0; i < o.nls; i++)
    fprintf(stderr, SR_PROG ": listening on %s\n", o.ls[i].bound);
  fflush(stderr);
  rc = o.accept_mode ? sr_run_accept(&o) : sr_run_listen(&o);
  sr_close_listeners(&o);
  sr_platform_done();
  free(o.ls);
  return rc;
}
