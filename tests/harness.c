/* SPDX-License-Identifier: MIT */
/* Test harness: roles in threads or re-executed child processes. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#endif

#define SP_CHILD_TIMEOUT_MS sp_scale_ms(60000)

#ifdef _WIN32
static int sp_win_warmup_count(void);
#endif

/* ---------------------------------------------------------------- threads */

struct sp_thread {
  sp_role_fn fn;
  sockpass_chan_t *chan;
  int result;
#ifdef _WIN32
  HANDLE h;
#else
  pthread_t t;
#endif
};

#ifdef _WIN32
static DWORD WINAPI sp_thread_main(LPVOID arg) {
  sp_thread_t *t = arg;
  t->result = t->fn(t->chan);
  return 0;
}
#else
static void *sp_thread_main(void *arg) {
  sp_thread_t *t = arg;
  t->result = t->fn(t->chan);
  return NULL;
}
#endif

sp_thread_t *sp_thread_start(sp_role_fn fn, sockpass_chan_t *chan) {
  sp_thread_t *t = calloc(1, sizeof *t);
  if (t == NULL)
    return NULL;
  t->fn = fn;
  t->chan = chan;
#ifdef _WIN32
  t->h = CreateThread(NULL, 0, sp_thread_main, t, 0, NULL);
  if (t->h == NULL) {
    free(t);
    return NULL;
  }
#else
  if (pthread_create(&t->t, NULL, sp_thread_main, t) != 0) {
    free(t);
    return NULL;
  }
#endif
  return t;
}

int sp_thread_join(sp_thread_t *t) {
  int r;
  if (t == NULL)
    return -1;
#ifdef _WIN32
  WaitForSingleObject(t->h, INFINITE);
  CloseHandle(t->h);
#else
  pthread_join(t->t, NULL);
#endif
  r = t->result;
  free(t);
  return r;
}

/* ---------------------------------------------------------------- children */

struct sp_child {
#ifdef _WIN32
  HANDLE process;
#else
  pid_t pid;
#endif
};

static char *sp_self_path;

#ifdef _WIN32
sp_child_t *sp_spawn_self(const char *args, HANDLE inherit) {
  wchar_t exe[MAX_PATH], cmd[2 * MAX_PATH];
  STARTUPINFOEXW si;
  PROCESS_INFORMATION pi;
  SIZE_T attr_size = 0;
  sp_child_t *c;
  BOOL ok;

  if (GetModuleFileNameW(NULL, exe, MAX_PATH) == 0)
    return NULL;
  _snwprintf(cmd, sizeof cmd / sizeof cmd[0], L"\"%ls\" %hs", exe, args);
  cmd[sizeof cmd / sizeof cmd[0] - 1] = 0;
  if (inherit != NULL && !SetHandleInformation(inherit, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT))
    return NULL;
  memset(&si, 0, sizeof si);
  si.StartupInfo.cb = sizeof si;
  InitializeProcThreadAttributeList(NULL, 1, 0, &attr_size);
  si.lpAttributeList = malloc(attr_size);
  c = calloc(1, sizeof *c);
  ok = si.lpAttributeList != NULL && c != NULL &&
       InitializeProcThreadAttributeList(si.lpAttributeList, 1, 0, &attr_size) &&
       (inherit == NULL ||
        UpdateProcThreadAttribute(si.lpAttributeList, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
                                  &inherit, sizeof inherit, NULL, NULL)) &&
       CreateProcessW(exe, cmd, NULL, NULL, inherit != NULL, EXTENDED_STARTUPINFO_PRESENT, NULL,
                      NULL, &si.StartupInfo, &pi);
  if (inherit != NULL)
    SetHandleInformation(inherit, HANDLE_FLAG_INHERIT, 0);
  if (si.lpAttributeList != NULL) {
    DeleteProcThreadAttributeList(si.lpAttributeList);
    free(si.lpAttributeList);
  }
  if (!ok) {
    free(c);
    return NULL;
  }
  CloseHandle(pi.hThread);
  c->process = pi.hProcess;
  return c;
}

sp_child_t *sp_child_start(const char *role, sockpass_chan_t *end) {
  HANDLE h = sockpass_handle(end);
  char args[256];
  snprintf(args, sizeof args, "--child %s %llu", role, (unsigned long long)(uintptr_t)h);
  return sp_spawn_self(args, h);
}

int sp_child_wait(sp_child_t *c) {
  DWORD code = 1;
  if (c == NULL)
    return -1;
  if (WaitForSingleObject(c->process, SP_CHILD_TIMEOUT_MS) != WAIT_OBJECT_0) {
    TerminateProcess(c->process, 1);
    WaitForSingleObject(c->process, INFINITE);
    code = (DWORD)-1;
  } else {
    GetExitCodeProcess(c->process, &code);
  }
  CloseHandle(c->process);
  free(c);
  return (int)code;
}
#else
sp_child_t *sp_child_start(const char *role, sockpass_chan_t *end) {
  int fd = sockpass_handle(end);
  char fdbuf[32];
  sp_child_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  snprintf(fdbuf, sizeof fdbuf, "%d", fd);
  c->pid = fork();
  if (c->pid < 0) {
    free(c);
    return NULL;
  }
  if (c->pid == 0) {
    /* Only async-signal-safe calls between fork and exec. */
    char *argv[5];
    argv[0] = sp_self_path;
    argv[1] = (char *)"--child";
    argv[2] = (char *)role;
    argv[3] = fdbuf;
    argv[4] = NULL;
    if (fcntl(fd, F_SETFD, 0) < 0)
      _exit(126);
    execv(sp_self_path, argv);
    _exit(127);
  }
  return c;
}

int sp_child_wait(sp_child_t *c) {
  int status = 0, waited = 0;
  pid_t r;
  if (c == NULL)
    return -1;
  for (;;) {
    r = waitpid(c->pid, &status, WNOHANG);
    if (r == c->pid)
      break;
    if (r < 0 && errno != EINTR) {
      free(c);
      return -1;
    }
    if (waited >= SP_CHILD_TIMEOUT_MS) {
      kill(c->pid, SIGKILL);
      waitpid(c->pid, &status, 0);
      free(c);
      return -1;
    }
    sp_sleep_ms(5);
    waited += 5;
  }
  free(c);
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  fprintf(stderr, "child died by signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
  return -1;
}
#endif

/* Role B of sp_run_threads, which on failure cancels A's end: A may be
 * waiting for a message B will now never send. */
static sp_role_fn sp_b_fn;
static sockpass_chan_t *sp_b_peer;

static int sp_b_role(sockpass_chan_t *c) {
  int r = sp_b_fn(c);
  if (r != 0)
    sockpass_cancel(sp_b_peer);
  return r;
}

void sp_run_threads(sp_role_fn a, sp_role_fn b) {
  sockpass_chan_t *ca, *cb;
  sp_thread_t *t;
  int ra, rb;
  assert_sp(sockpass_pair(&ca, &cb), 0);
  sp_b_fn = b;
  sp_b_peer = ca;
  t = sp_thread_start(sp_b_role, cb);
  assert_non_null(t);
  ra = a(ca);
  if (ra != 0) /* unblock B before joining it */
    sockpass_cancel(cb);
  rb = sp_thread_join(t);
  sockpass_close(ca);
  sockpass_close(cb);
  assert_int_equal(ra, 0);
  assert_int_equal(rb, 0);
}

int sp_chan_handed_over;

void sp_run_process(sp_role_fn a, const char *b_role) {
  sockpass_chan_t *ca, *cb;
  sp_child_t *c;
  int ra, rb;
  assert_sp(sockpass_pair(&ca, &cb), 0);
  c = sp_child_start(b_role, cb);
  sockpass_close(cb);
  assert_non_null(c);
  sp_chan_handed_over = 0;
  ra = a(ca);
  if (ra != 0 && !sp_chan_handed_over) /* the child sees EOF and ends */
    sockpass_close(ca);
  rb = sp_child_wait(c);
  if (ra == 0 && !sp_chan_handed_over)
    sockpass_close(ca);
  assert_int_equal(ra, 0);
  assert_int_equal(rb, 0);
}

/* Child mode: open the inherited end, run the role, and check that the role
 * left as many descriptors open as it found. */
static int sp_child_main(const char *role, const char *handle, const sp_role_t *roles,
                         size_t nroles) {
  sockpass_chan_t *chan = NULL;
  size_t i;
  int rc, before, after, result;
  sockpass_handle_t h;
#ifdef _WIN32
  h = (HANDLE)(uintptr_t)_strtoui64(handle, NULL, 10);
#else
  h = atoi(handle);
#endif
  for (i = 0; i < nroles; i++)
    if (strcmp(roles[i].name, role) == 0)
      break;
  if (i == nroles) {
    fprintf(stderr, "unknown child role %s\n", role);
    return 2;
  }
  /* Counted around the whole run: the channel (and whatever it made for
   * itself) is gone again once sockpass_close has run. */
  before = sp_count_fds();
  rc = sockpass_open(h, &chan);
  if (rc != 0) {
    fprintf(stderr, "child %s: sockpass_open: %s\n", role, sockpass_strerror(rc));
    return 3;
  }
#ifdef _WIN32
  /* Winsock keeps state for the process's life once started (by
   * sockpass_open here), and under Wine each thread's first blocking socket
   * call adds an event it keeps until the thread ends. Make that state now
   * and count it as present from the start. */
  before += sp_win_warmup_count();
#endif
  result = roles[i].fn(chan);
  if (!sp_chan_handed_over)
    sockpass_close(chan);
  after = sp_count_fds();
  if (result == 0 && after != before - 1) {
    fprintf(stderr, "child %s: %d descriptors before (with the channel), %d after\n", role,
            before, after);
    return 4;
  }
  return result;
}

int sp_test_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests,
                 size_t ntests, const sp_role_t *roles, size_t nroles) {
  static char self[4096];
  sp_exe_path(self, sizeof self, argv[0]);
  sp_self_path = self;
#ifndef _WIN32
  signal(SIGPIPE, SIG_DFL); /* the library must never raise it */
#endif
  if (argc == 4 && strcmp(argv[1], "--child") == 0)
    return sp_child_main(argv[2], argv[3], roles, nroles);
#ifdef _WIN32
  /* The test process itself uses Winsock from the start, so that handle
   * counts do not move when a test first touches a socket. Children do not:
   * they prove that the library initializes Winsock on its own. */
  sp_net_init();
#endif
  return _cmocka_run_group_tests(group, tests, ntests, NULL, NULL);
}

/* ---------------------------------------------------------------- counts */

#ifdef _WIN32
/* The handles of this process, from the system's handle table
 * (SystemExtendedHandleInformation, class 64): GetProcessHandleCount
 * answers 0 under Wine, which would make every leak check pass. */
typedef struct {
  PVOID object;
  ULONG_PTR pid;
  ULONG_PTR handle;
  ULONG access;
  USHORT backtrace;
  USHORT type;
  ULONG attributes;
  ULONG reserved;
} sp_handle_entry_t;

typedef struct {
  ULONG_PTR count;
  ULONG_PTR reserved;
  sp_handle_entry_t entries[1];
} sp_handle_table_t;

typedef LONG(NTAPI *sp_query_system_fn)(int, PVOID, ULONG, PULONG);

/* One blocking-capable socket call on this thread, so that the per-thread
 * state Winsock keeps (under Wine: an event) exists before counting. */
static void sp_win_warmup(void) {
  struct sockaddr_in sa;
  SOCKET s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s == INVALID_SOCKET)
    return;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, (struct sockaddr *)&sa, sizeof sa);
  closesocket(s);
}

/* The handles of this process; their values go to vals (room for cap) when
 * vals is not NULL. -1 when the table cannot be read. */
static int sp_list_handles(ULONG_PTR *vals, int room) {
  static unsigned char *buf;
  static ULONG cap = 1u << 20;
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  FARPROC p = ntdll != NULL ? GetProcAddress(ntdll, "NtQuerySystemInformation") : NULL;
  sp_query_system_fn query;
  const sp_handle_table_t *t;
  ULONG len = 0;
  ULONG_PTR i, self = (ULONG_PTR)GetCurrentProcessId();
  LONG st;
  int n = 0;
  if (p == NULL)
    return -1;
  query = (sp_query_system_fn)(void (*)(void))p;
  for (;;) {
    if (buf == NULL && (buf = malloc(cap)) == NULL)
      return -1;
    st = query(64, buf, cap, &len);
    if (st != (LONG)0xC0000004L) /* STATUS_INFO_LENGTH_MISMATCH */
      break;
    free(buf);
    buf = NULL;
    cap *= 2;
  }
  if (st < 0)
    return -1;
  t = (const sp_handle_table_t *)buf;
  for (i = 0; i < t->count; i++)
    if (t->entries[i].pid == self) {
      if (vals != NULL && n < room)
        vals[n] = t->entries[i].handle;
      n++;
    }
  return n;
}

static int sp_count_handles(void) { return sp_list_handles(NULL, 0); }

/* How many handles sp_win_warmup leaves for good: new handles that are no
 * file, pipe or socket. Counted by value, because the peer may place a
 * duplicated socket in this process at any moment (WSADuplicateSocketW). */
static int sp_win_warmup_count(void) {
  static ULONG_PTR before[4096], after[4096];
  int nb = sp_list_handles(before, 4096), na, i, j, kept = 0;
  sp_win_warmup();
  na = sp_list_handles(after, 4096);
  if (nb < 0 || na < 0 || nb > 4096 || na > 4096)
    return 0;
  for (i = 0; i < na; i++) {
    for (j = 0; j < nb && before[j] != after[i]; j++)
      ;
    if (j == nb && GetFileType((HANDLE)after[i]) == FILE_TYPE_UNKNOWN)
      kept++;
  }
  return kept;
}
#endif

/* Counting is what every leak check stands on: when it cannot be done the
 * binary stops with a failure instead of comparing numbers that mean nothing
 * (GetProcessHandleCount, the obvious fallback, answers 0 under Wine). */
static void sp_count_unavailable(const char *why) {
  fprintf(stderr, "cannot count this process's descriptors/handles: %s\n", why);
  fflush(stderr);
  abort();
}

int sp_count_fds(void) {
#ifdef _WIN32
  int counted = sp_count_handles();
  if (counted < 0)
    sp_count_unavailable("NtQuerySystemInformation(SystemExtendedHandleInformation) failed");
  return counted;
#else
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  if (d == NULL)
    sp_count_unavailable("/proc/self/fd cannot be opened");
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
#endif
}

int sp_fd_before(void **state) {
  *state = (void *)(intptr_t)sp_count_fds();
  return 0;
}

int sp_fd_after(void **state) {
  int before = (int)(intptr_t)*state, after = sp_count_fds(), tries;
  /* A child that just exited may still be releasing handles we share. */
  for (tries = 0; after != before && tries < 50; tries++) {
    sp_sleep_ms(10);
    after = sp_count_fds();
  }
  if (after != before) {
    fprintf(stderr, "descriptor count: %d before the test, %d after\n", before, after);
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------- network */

void sp_net_init(void) {
#ifdef _WIN32
  static int done;
  WSADATA wd;
  if (!done && WSAStartup(MAKEWORD(2, 2), &wd) == 0) {
    done = 1;
    sp_win_warmup();
  }
#endif
}

static void sp_set_timeouts(sockpass_sock_t s) {
  int t = sp_scale_ms(10000);
#ifdef _WIN32
  DWORD ms = (DWORD)t;
#else
  struct timeval ms = {t / 1000, (t % 1000) * 1000};
#endif
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&ms, sizeof ms);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, (const char *)&ms, sizeof ms);
}

static struct sockaddr_in sp_loopback(unsigned short port) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

unsigned short sp_sock_port(sockpass_sock_t s) {
  struct sockaddr_in sa;
  socklen_t l = sizeof sa;
  memset(&sa, 0, sizeof sa);
  if (getsockname(s, (struct sockaddr *)&sa, &l) != 0)
    return 0;
  return ntohs(sa.sin_port);
}

sockpass_sock_t sp_tcp_listener(unsigned short *port) {
  struct sockaddr_in sa = sp_loopback(0);
  sockpass_sock_t s = socket(AF_INET, SOCK_STREAM, 0);
  if (s == SOCKPASS_INVALID_SOCK)
    return s;
  if (bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s, 64) != 0) {
    sockpass_close_sock(s);
    return SOCKPASS_INVALID_SOCK;
  }
  *port = sp_sock_port(s);
  return s;
}

sockpass_sock_t sp_tcp_connect(unsigned short port) {
  struct sockaddr_in sa = sp_loopback(port);
  sockpass_sock_t s = socket(AF_INET, SOCK_STREAM, 0);
  if (s == SOCKPASS_INVALID_SOCK)
    return s;
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
    sockpass_close_sock(s);
    return SOCKPASS_INVALID_SOCK;
  }
  sp_set_timeouts(s);
  return s;
}

int sp_tcp_pair(sockpass_sock_t *client, sockpass_sock_t *server) {
  unsigned short port = 0;
  sockpass_sock_t l = sp_tcp_listener(&port);
  if (l == SOCKPASS_INVALID_SOCK)
    return -1;
  *client = sp_tcp_connect(port);
  *server = *client == SOCKPASS_INVALID_SOCK ? SOCKPASS_INVALID_SOCK : accept(l, NULL, NULL);
  sockpass_close_sock(l);
  if (*server == SOCKPASS_INVALID_SOCK) {
    if (*client != SOCKPASS_INVALID_SOCK)
      sockpass_close_sock(*client);
    return -1;
  }
  sp_set_timeouts(*server);
  return 0;
}

sockpass_sock_t sp_udp_socket(unsigned short *port) {
  struct sockaddr_in sa = sp_loopback(0);
  sockpass_sock_t s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s == SOCKPASS_INVALID_SOCK)
    return s;
  if (bind(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
    sockpass_close_sock(s);
    return SOCKPASS_INVALID_SOCK;
  }
  *port = sp_sock_port(s);
  return s;
}

int sp_write_all(sockpass_sock_t s, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    int w = (int)send(s, p, (int)n, 0);
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int sp_read_n(sockpass_sock_t s, void *buf, size_t n) {
  char *p = buf;
  sp_set_timeouts(s);
  while (n > 0) {
    int r = (int)recv(s, p, (int)n, 0);
    if (r <= 0)
      return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

#ifndef _WIN32
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
struct cmsghdr *sp_cmsg_next(struct msghdr *m, struct cmsghdr *cm) {
  return CMSG_NXTHDR(m, cm);
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

ssize_t sp_raw_recv(int sock, void *buf, size_t len, int *fds, size_t room, size_t *nfds) {
  union {
    struct cmsghdr align;
    char b[CMSG_SPACE(SOCKPASS_MAX_SOCKS * sizeof(int))];
  } cb;
  struct msghdr m;
  struct iovec iov;
  struct cmsghdr *cm;
  ssize_t n;
  memset(&m, 0, sizeof m);
  iov.iov_base = buf;
  iov.iov_len = len;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = cb.b;
  m.msg_controllen = sizeof cb.b;
  *nfds = 0;
#ifdef MSG_CMSG_CLOEXEC
  n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
#else
  n = recvmsg(sock, &m, 0); /* macOS has no such flag */
#endif
  if (n < 0)
    return n;
  for (cm = CMSG_FIRSTHDR(&m); cm != NULL; cm = sp_cmsg_next(&m, cm)) {
    size_t k, count;
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
      continue;
    count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (k = 0; k < count; k++, (*nfds)++)
      if (*nfds < room)
        memcpy(&fds[*nfds], CMSG_DATA(cm) + k * sizeof(int), sizeof(int));
  }
  return n;
}
#endif

int sp_scale_ms(int ms) {
  /* Read each time: threads call this, and nothing sets the variable later. */
  const char *e = getenv("SOCKPASS_TEST_SCALE");
  int v = e != NULL ? atoi(e) : 1;
  int scale = v >= 1 && v <= 100 ? v : 1;
  return ms > 0x7fffffff / scale ? 0x7fffffff : ms * scale;
}

void sp_sleep_ms(int ms) {
#ifdef _WIN32
  Sleep((DWORD)ms);
#else
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
#endif
}

long sp_thread_id(void) {
#ifdef _WIN32
  return (long)GetCurrentThreadId();
#elif defined(__linux__)
  return (long)syscall(SYS_gettid);
#else
  return 0;
#endif
}

int sp_wait_blocked(long tid, const int *returned) {
  int i, tries = 1000 * sp_slow();
#ifdef __linux__
  /* Blocked means: asleep ('S' in stat) inside poll or ppoll (the first
   * field of /proc/.../syscall is the system call it is in). */
  for (i = 0; i < tries && !__atomic_load_n(returned, __ATOMIC_SEQ_CST); i++) {
    char path[64], buf[512], *st;
    long nr = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    if ((f = fopen(path, "r")) == NULL)
      return 0;
    buf[0] = '\0';
    if (fgets(buf, sizeof buf, f) == NULL)
      buf[0] = '\0';
    fclose(f);
    st = strrchr(buf, ')');
    snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
    if ((f = fopen(path, "r")) != NULL) {
      if (fscanf(f, "%ld", &nr) != 1)
        nr = -1;
      fclose(f);
    }
    if (st != NULL && st[1] == ' ' && st[2] == 'S' &&
#ifdef SYS_poll
        (nr == SYS_poll || nr == SYS_ppoll))
#else
        nr == SYS_ppoll)
#endif
      return 1;
    sp_sleep_ms(10);
  }
  if (!__atomic_load_n(returned, __ATOMIC_SEQ_CST))
    fprintf(stderr, "thread %ld never blocked in poll\n", tid);
  return 0;
#else
  /* No way to look into the thread: the call has not returned after
   * 200 ms, checked every 10 ms. */
  (void)tid;
  (void)tries;
  for (i = 0; i < 20; i++) {
    if (__atomic_load_n(returned, __ATOMIC_SEQ_CST))
      return 0;
    sp_sleep_ms(10);
  }
  return !__atomic_load_n(returned, __ATOMIC_SEQ_CST);
#endif
}

long long sp_now_us(void) {
#ifdef _WIN32
  static LARGE_INTEGER freq;
  LARGE_INTEGER now;
  if (freq.QuadPart == 0)
    QueryPerformanceFrequency(&freq);
  QueryPerformanceCounter(&now);
  return (long long)(now.QuadPart / freq.QuadPart) * 1000000LL +
         (long long)(now.QuadPart % freq.QuadPart) * 1000000LL / freq.QuadPart;
#else
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
#endif
}

int sp_slow(void) {
  const char *v = getenv("SOCKPASS_TEST_SLOW");
  int f = v != NULL ? atoi(v) : 1;
  return f >= 1 ? f : 1;
}

int sp_elapsed_ok(const char *what, int timeout_ms, long long took_us) {
  /* Early by at most a clock tick: Windows counts deadlines in
   * GetTickCount64 steps (about 16 ms), POSIX rounds the remaining time
   * down to whole milliseconds. */
#ifdef _WIN32
  long long early_us = 20000;
#else
  long long early_us = 2000;
#endif
  long long lo = (long long)timeout_ms * 1000 - early_us;
  long long hi = (long long)timeout_ms * 3000 + 1000000LL * sp_slow();
  if (took_us >= lo && took_us <= hi)
    return 1;
  fprintf(stderr, "%s: a wait of %d ms took %lld us (allowed %lld..%lld)\n", what, timeout_ms,
          took_us, lo, hi);
  return 0;
}

void sp_exe_path(char *buf, size_t size, const char *argv0) {
#ifdef _WIN32
  DWORD n = GetModuleFileNameA(NULL, buf, (DWORD)size);
  if (n > 0 && n < size)
    return;
#elif defined(__linux__)
  /* As the kernel knows it (or valgrind, which answers this for the
   * program it runs). */
  ssize_t n = readlink("/proc/self/exe", buf, size - 1);
  if (n > 0) {
    buf[n] = '\0';
    return;
  }
#endif
  snprintf(buf, size, "%s", argv0);
}

long sp_getpid(void) {
#ifdef _WIN32
  return (long)GetCurrentProcessId();
#else
  return (long)getpid();
#endif
}

void sp_put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

uint32_t sp_get32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
