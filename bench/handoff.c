/* SPDX-License-Identifier: MIT */
/* bench_handoff: what handing sockets to another process costs, against the
 * floor (raw sendmsg/recvmsg with SCM_RIGHTS on SOCK_SEQPACKET) and against
 * libuv's uv_write2 and Python's socket.send_fds, all measured in one run.
 *
 * Method (a shared 2-core machine drifts, ratios taken together hold): the
 * parent is the sender, pinned to one core; each variant has its own
 * receiver child, forked once and pinned to the other core, which closes
 * every socket it receives. The variants take turns in short rounds (the
 * order rotates every round); a round is N messages and an end marker the
 * receiver acknowledges, timed by the sender. Each figure is the median over
 * rounds; each ratio is the median of the per-round ratios.
 *
 * Modes: throughput, latency (one socket out, one byte back), alloc (heap
 * allocations per message in steady state, counted by interposing malloc in
 * this executable) and memory (per open channel). See docs/performance.md.
 *
 * Windows (run under Wine by scripts/bench): raw is WSADuplicateSocketW and
 * one WriteFile on a pipe, against sockpass and libuv, throughput and latency
 * only; see the _WIN32 part below.
 */
#include <sockpass.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SP_BENCH_HAVE_LIBUV
#include <uv.h>
#endif

#define POOL 64 /* sockets the sender hands out, the same ones every time */
#define MAX_ROUNDS 201
#define MAX_K 64

/* ---- Shared by both parts: errors, medians, the --variants list ---- */

static void die_sp(const char *what, int rc) {
  fprintf(stderr, "bench_handoff: %s: %s\n", what, sockpass_strerror(rc));
  exit(1);
}


static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(const double *v, int n) {
  double t[MAX_ROUNDS];
  memcpy(t, v, (size_t)n * sizeof *t);
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Is w one of the comma-separated words of list? */
static int has_word(const char *list, const char *w) {
  size_t n = strlen(w);
  const char *p = list;
  while ((p = strstr(p, w)) != NULL) {
    if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
      return 1;
    p += n;
  }
  return 0;
}

#ifdef SP_BENCH_HAVE_LIBUV
/* libuv: stop on an error; one static buffer for every read; free a handle
 * closed by uv_close. */
static void uvb_check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "bench_handoff: %s: %s\n", what, uv_strerror(rc));
    exit(1);
  }
}

static void uvb_alloc_cb(uv_handle_t *h, size_t want, uv_buf_t *buf) {
  static char space[65536];
  (void)h;
  (void)want;
  *buf = uv_buf_init(space, sizeof space);
}

static void uvb_free_cb(uv_handle_t *h) { free(h); }
#endif

#ifdef _WIN32
/* Windows (measured under Wine): the parent sends, a child started from this
 * same executable (no fork) receives and closes every socket. raw is the
 * floor: WSADuplicateSocketW for the child's pid, one WriteFile of the
 * WSAPROTOCOL_INFOW records on a message-mode named pipe; the child does one
 * ReadFile, WSASocketW(FROM_PROTOCOL_INFO) and closesocket per socket.
 * sockpass is sockpass_send / sockpass_recv on a sockpass_pair whose other
 * end the child got with sockpass_spawn (opts.chan). libuv is uv_write2 on
 * the IPC pipe uv_spawn gives the child as its fd 3, one socket per write
 * (see its part). Same rounds, rotation, medians and output as the POSIX
 * part.
 *
 * The sockets handed out are connected loopback TCP sockets (libuv on
 * Windows sends only connected or bound ones), the same for every variant.
 * The receiver's answer to an end marker carries how many sockets it took
 * in since its previous answer; the sender checks that against what it
 * sent. */
#include <winsock2.h>
#include <windows.h>

#ifdef SP_BENCH_HAVE_LIBUV
#include <signal.h>
#endif

#define REC ((size_t)sizeof(WSAPROTOCOL_INFOW))
#define RAW_MAX (1 + MAX_K * REC)
#define ANS_LEN 9 /* 'a' and the uint64_t count of sockets received */

static void die_win(const char *what) {
  fprintf(stderr, "bench_handoff: %s: error %lu, WSA %d\n", what, (unsigned long)GetLastError(),
          WSAGetLastError());
  exit(1);
}

static LARGE_INTEGER g_freq;

static uint64_t now_ns(void) {
  LARGE_INTEGER c;
  QueryPerformanceCounter(&c);
  return (uint64_t)(c.QuadPart / g_freq.QuadPart) * 1000000000u +
         (uint64_t)(c.QuadPart % g_freq.QuadPart) * 1000000000u / (uint64_t)g_freq.QuadPart;
}

static int g_cpu_send = -1, g_cpu_recv = -1;

static void pin(int cpu) {
  if (cpu >= 0 && cpu < 64)
    (void)SetThreadAffinityMask(GetCurrentThread(), (DWORD_PTR)1 << cpu);
}

static void choose_cpus(void) {
  DWORD_PTR pm = 0, sm = 0;
  int i, n = 0;
  if (!GetProcessAffinityMask(GetCurrentProcess(), &pm, &sm))
    return;
  for (i = 0; i < 64 && n < 2; i++)
    if (pm & ((DWORD_PTR)1 << i)) {
      if (n++ == 0)
        g_cpu_send = i;
      else
        g_cpu_recv = i;
    }
  if (n < 2)
    g_cpu_send = g_cpu_recv = -1;
}

static SOCKET g_pool[POOL], g_peer[POOL];

static SOCKET tcp_socket(void) {
  SOCKET s = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                        WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET)
    die_win("WSASocketW");
  return s;
}

/* POOL connected loopback sockets; their peers stay open here. */
static void make_pool(void) {
  struct sockaddr_in a;
  int i, len = (int)sizeof a;
  SOCKET l = tcp_socket();
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, POOL) != 0 ||
      getsockname(l, (struct sockaddr *)&a, &len) != 0)
    die_win("listen");
  for (i = 0; i < POOL; i++) {
    g_pool[i] = tcp_socket();
    if (connect(g_pool[i], (struct sockaddr *)&a, sizeof a) != 0)
      die_win("connect");
    if ((g_peer[i] = accept(l, NULL, NULL)) == INVALID_SOCKET)
      die_win("accept");
    /* Not for the children: uv_spawn lets every inheritable handle through. */
    (void)SetHandleInformation((HANDLE)g_peer[i], HANDLE_FLAG_INHERIT, 0);
  }
  closesocket(l);
}

/* The count in an answer against what was sent since the previous one. */
static void check_count(const char *name, const char *ans, uint64_t want) {
  uint64_t got;
  memcpy(&got, ans + 1, sizeof got);
  if (got != want) {
    fprintf(stderr, "bench_handoff: %s receiver took in %llu sockets, %llu were sent\n", name,
            (unsigned long long)got, (unsigned long long)want);
    exit(1);
  }
}

typedef struct variant variant_t;
struct variant {
  const char *name;
  int per_write; /* sockets per message it can carry: 0 = any, 1 = one */
  int (*start)(variant_t *v);
  void (*round)(variant_t *v, int k, int n, uint64_t *ns);
  void (*ping)(variant_t *v, uint64_t *ns);
  void (*stop)(variant_t *v);
  sockpass_proc_t *proc;
  DWORD pid;
  HANDLE pipe;
  sockpass_chan_t *chan;
  int enabled;
};

/* Start this executable as "--child ROLE CPU ARG". */
static sockpass_proc_t *spawn_child(const char *role, const char *arg, sockpass_chan_t *chan) {
  char exe[MAX_PATH], cpu[16];
  const char *argv[6];
  sockpass_spawn_opts_t opts;
  sockpass_proc_t *proc;
  int rc;
  DWORD n = GetModuleFileNameA(NULL, exe, sizeof exe);
  if (n == 0 || n >= sizeof exe)
    die_win("GetModuleFileNameA");
  snprintf(cpu, sizeof cpu, "%d", g_cpu_recv);
  argv[0] = exe;
  argv[1] = "--child";
  argv[2] = role;
  argv[3] = cpu;
  argv[4] = arg;
  argv[5] = NULL;
  sockpass_spawn_opts_init(&opts);
  opts.chan = chan;
  fflush(NULL);
  if ((rc = sockpass_spawn(exe, argv, &opts, &proc)) < 0)
    die_sp("sockpass_spawn", rc);
  return proc;
}

static void reap(variant_t *v) {
  int code = -1;
  if (v->proc == NULL)
    return;
  if (sockpass_proc_wait(v->proc, 20000, &code) < 0) {
    sockpass_proc_kill(v->proc);
    sockpass_proc_wait(v->proc, SOCKPASS_WAIT_FOREVER, &code);
  }
  if (code != 0)
    fprintf(stderr, "bench_handoff: %s receiver exited with %d\n", v->name, code);
  sockpass_proc_free(v->proc);
  v->proc = NULL;
}

/* ---- raw: WSADuplicateSocketW + one WriteFile / ReadFile + WSASocketW ---- */

static void raw_send(variant_t *v, int k, char what) {
  static unsigned char buf[RAW_MAX];
  WSAPROTOCOL_INFOW info;
  DWORD n;
  int i;
  buf[0] = (unsigned char)what;
  for (i = 0; i < k; i++) {
    if (WSADuplicateSocketW(g_pool[i], v->pid, &info) != 0)
      die_win("WSADuplicateSocketW");
    memcpy(buf + 1 + (size_t)i * REC, &info, REC);
  }
  if (!WriteFile(v->pipe, buf, (DWORD)(1 + (size_t)k * REC), &n, NULL) ||
      n != 1 + (size_t)k * REC)
    die_win("WriteFile");
}

static void raw_answer(variant_t *v, uint64_t want) {
  char ans[ANS_LEN];
  DWORD n;
  if (!ReadFile(v->pipe, ans, sizeof ans, &n, NULL) || n != sizeof ans || ans[0] != 'a') {
    fprintf(stderr, "bench_handoff: bad answer from raw receiver\n");
    exit(1);
  }
  check_count("raw", ans, want);
}

static int raw_child(const char *name) {
  static unsigned char buf[RAW_MAX];
  DWORD mode = PIPE_READMODE_MESSAGE;
  uint64_t got = 0;
  HANDLE h = CreateFileA(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
  if (h == INVALID_HANDLE_VALUE)
    die_win("CreateFileA");
  if (!SetNamedPipeHandleState(h, &mode, NULL, NULL))
    die_win("SetNamedPipeHandleState");
  for (;;) {
    WSAPROTOCOL_INFOW info;
    DWORD n, i, k;
    if (!ReadFile(h, buf, sizeof buf, &n, NULL))
      return GetLastError() == ERROR_BROKEN_PIPE ? 0 : 1;
    if (n == 0)
      continue;
    k = (n - 1) / (DWORD)REC;
    for (i = 0; i < k; i++) {
      SOCKET s;
      memcpy(&info, buf + 1 + (size_t)i * REC, REC);
      s = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0,
                     WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
      if (s == INVALID_SOCKET)
        die_win("WSASocketW(FROM_PROTOCOL_INFO)");
      closesocket(s);
      got++;
    }
    if (buf[0] == 'e') {
      char ans[ANS_LEN] = {'a'};
      memcpy(ans + 1, &got, sizeof got);
      got = 0;
      if (!WriteFile(h, ans, sizeof ans, &n, NULL))
        return 1;
    } else if (buf[0] == 'q') {
      return 0;
    }
  }
}

static int raw_start(variant_t *v) {
  char name[96];
  snprintf(name, sizeof name, "\\\\.\\pipe\\sockpass-bench-%lu-raw",
           (unsigned long)GetCurrentProcessId());
  v->pipe = CreateNamedPipeA(name, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
                             PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT |
                                 PIPE_REJECT_REMOTE_CLIENTS,
                             1, 256 * 1024, 256 * 1024, 0, NULL);
  if (v->pipe == INVALID_HANDLE_VALUE)
    die_win("CreateNamedPipeA");
  v->proc = spawn_child("raw", name, NULL);
  v->pid = (DWORD)sockpass_proc_pid(v->proc);
  if (!ConnectNamedPipe(v->pipe, NULL) && GetLastError() != ERROR_PIPE_CONNECTED)
    die_win("ConnectNamedPipe");
  return 0;
}

static void raw_round(variant_t *v, int k, int n, uint64_t *ns) {
  uint64_t t0 = now_ns();
  int i;
  for (i = 0; i < n; i++)
    raw_send(v, k, 'd');
  raw_send(v, 0, 'e');
  raw_answer(v, (uint64_t)k * (uint64_t)n);
  *ns = now_ns() - t0;
}

static void raw_ping(variant_t *v, uint64_t *ns) {
  uint64_t t0 = now_ns();
  raw_send(v, 1, 'e');
  raw_answer(v, 1);
  *ns = now_ns() - t0;
}

static void raw_stop(variant_t *v) {
  raw_send(v, 0, 'q');
  CloseHandle(v->pipe);
  reap(v);
}

/* ---- sockpass: sockpass_send / sockpass_recv, the end given by sockpass_spawn ---- */

static int sp_child(void) {
  sockpass_chan_t *c;
  sockpass_sock_t socks[SOCKPASS_MAX_SOCKS];
  char buf[16];
  uint64_t got = 0;
  int rc = sockpass_inherited_chan(&c);
  if (rc < 0)
    die_sp("sockpass_inherited_chan", rc);
  for (;;) {
    size_t ns = SOCKPASS_MAX_SOCKS, len = sizeof buf, i;
    rc = sockpass_recv(c, socks, &ns, buf, &len);
    if (rc == SOCKPASS_EOF)
      break;
    if (rc < 0)
      die_sp("sockpass_recv", rc);
    for (i = 0; i < ns; i++)
      closesocket(socks[i]);
    got += ns;
    if (len == 1 && buf[0] == 'e') {
      char ans[ANS_LEN] = {'a'};
      memcpy(ans + 1, &got, sizeof got);
      got = 0;
      if ((rc = sockpass_send(c, NULL, 0, ans, sizeof ans)) < 0)
        die_sp("sockpass_send", rc);
    } else if (len == 1 && buf[0] == 'q') {
      break;
    }
  }
  sockpass_close(c);
  return 0;
}

static void sp_answer(variant_t *v, uint64_t want) {
  char ans[ANS_LEN];
  size_t ns = 0, len = sizeof ans;
  int rc = sockpass_recv(v->chan, NULL, &ns, ans, &len);
  if (rc < 0)
    die_sp("sockpass_recv", rc);
  if (len != sizeof ans || ans[0] != 'a') {
    fprintf(stderr, "bench_handoff: bad answer from sockpass receiver\n");
    exit(1);
  }
  check_count("sockpass", ans, want);
}

static int sp_start(variant_t *v) {
  sockpass_chan_t *a, *b;
  int rc = sockpass_pair(&a, &b);
  if (rc < 0)
    die_sp("sockpass_pair", rc);
  v->proc = spawn_child("sockpass", "-", b);
  v->chan = a;
  return 0;
}

static void sp_round(variant_t *v, int k, int n, uint64_t *ns) {
  uint64_t t0 = now_ns();
  int i, rc;
  for (i = 0; i < n; i++)
    if ((rc = sockpass_send(v->chan, g_pool, (size_t)k, "d", 1)) < 0)
      die_sp("sockpass_send", rc);
  if ((rc = sockpass_send(v->chan, NULL, 0, "e", 1)) < 0)
    die_sp("sockpass_send", rc);
  sp_answer(v, (uint64_t)k * (uint64_t)n);
  *ns = now_ns() - t0;
}

static void sp_ping(variant_t *v, uint64_t *ns) {
  uint64_t t0 = now_ns();
  int rc = sockpass_send(v->chan, g_pool, 1, "e", 1);
  if (rc < 0)
    die_sp("sockpass_send", rc);
  sp_answer(v, 1);
  *ns = now_ns() - t0;
}

static void sp_stop(variant_t *v) {
  (void)sockpass_send(v->chan, NULL, 0, "q", 1);
  sockpass_close(v->chan);
  reap(v);
}

/* ---- libuv: uv_write2 over an IPC pipe, one handle per write ---- */
#ifdef SP_BENCH_HAVE_LIBUV
/* The way libuv does IPC on Windows: uv_spawn creates the pipe as the child's
 * fd 3 and tells the parent's end the child's pid (uv_write2 duplicates each
 * socket for it with WSADuplicateSocketW); the child opens it with
 * uv_pipe_open(pipe, 3). Each uv_write2 carries one TCP handle and the byte
 * 'd'; the end marker 'e' is a plain uv_write (in latency, 'e' carries the
 * socket: one write per round trip). 256 writes in flight, as on POSIX. The
 * receiver uv_accept()s every pending handle into a uv_tcp_t and uv_close()s
 * it. */

#define UV_WINDOW 256 /* writes in flight */

static uv_loop_t *g_uv_loop;
static uv_pipe_t g_uv_pipe;
static uv_process_t g_uv_proc;
static uv_timer_t g_uv_timer;
static uv_tcp_t g_uv_pool[POOL];
static uv_write_t g_uv_reqs[UV_WINDOW];
static long g_uv_total, g_uv_issued, g_uv_done;
static int g_uv_k, g_uv_ping, g_uv_answered, g_uv_stopping;
static char g_uv_ans[ANS_LEN];
static size_t g_uv_ans_len;

/* Receiver: accept every pending handle and close it; answer 'e' with the
 * count. */
static uint64_t g_uv_got;

typedef struct {
  uv_write_t req;
  char ans[ANS_LEN];
} uvb_answer_t;

static void uvb_rx_answered(uv_write_t *req, int status) {
  if (status != UV_ECANCELED)
    uvb_check(status, "uv_write");
  free(req); /* the uvb_answer_t, req is its first member */
}

static void uvb_rx_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  ssize_t i;
  while (uv_pipe_pending_count((uv_pipe_t *)s) > 0) {
    uv_tcp_t *h = malloc(sizeof *h);
    if (h == NULL)
      exit(1);
    uvb_check(uv_tcp_init(g_uv_loop, h), "uv_tcp_init");
    uvb_check(uv_accept(s, (uv_stream_t *)h), "uv_accept");
    uv_close((uv_handle_t *)h, uvb_free_cb);
    g_uv_got++;
  }
  if (n < 0) {
    uv_close((uv_handle_t *)s, NULL);
    return;
  }
  for (i = 0; i < n; i++) {
    if (buf->base[i] == 'e') {
      uvb_answer_t *a = malloc(sizeof *a);
      uv_buf_t b;
      if (a == NULL)
        exit(1);
      a->ans[0] = 'a';
      memcpy(a->ans + 1, &g_uv_got, sizeof g_uv_got);
      g_uv_got = 0;
      b = uv_buf_init(a->ans, sizeof a->ans);
      uvb_check(uv_write(&a->req, s, &b, 1, uvb_rx_answered), "uv_write");
    } else if (buf->base[i] == 'q') {
      uv_close((uv_handle_t *)s, NULL);
      return;
    }
  }
}

static int uvb_child(void) {
  g_uv_loop = uv_default_loop();
  uvb_check(uv_pipe_init(g_uv_loop, &g_uv_pipe, 1), "uv_pipe_init");
  uvb_check(uv_pipe_open(&g_uv_pipe, 3), "uv_pipe_open(3)");
  uvb_check(uv_read_start((uv_stream_t *)&g_uv_pipe, uvb_alloc_cb, uvb_rx_read_cb),
            "uv_read_start");
  uv_run(g_uv_loop, UV_RUN_DEFAULT);
  return 0;
}

/* Sender. */
static void uvb_maybe_done(void) {
  if (g_uv_answered && g_uv_done == g_uv_total)
    uv_stop(g_uv_loop);
}

static void uvb_issue(uv_write_t *req);

static void uvb_tx_write_cb(uv_write_t *req, int status) {
  uvb_check(status, "uv_write2");
  g_uv_done++;
  if (g_uv_issued < g_uv_total)
    uvb_issue(req);
  else
    uvb_maybe_done();
}

static void uvb_issue(uv_write_t *req) {
  static char d = 'd', e = 'e';
  long i = g_uv_issued++;
  uv_buf_t b;
  if (i == g_uv_total - 1 && !g_uv_ping) { /* the end marker */
    b = uv_buf_init(&e, 1);
    uvb_check(uv_write(req, (uv_stream_t *)&g_uv_pipe, &b, 1, uvb_tx_write_cb), "uv_write");
  } else {
    b = uv_buf_init(g_uv_ping ? &e : &d, 1);
    uvb_check(uv_write2(req, (uv_stream_t *)&g_uv_pipe, &b, 1,
                        (uv_stream_t *)&g_uv_pool[i % g_uv_k], uvb_tx_write_cb),
              "uv_write2");
  }
}

static void uvb_tx_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  ssize_t i;
  (void)s;
  if (n < 0) {
    fprintf(stderr, "bench_handoff: libuv receiver went away (%s)\n", uv_strerror((int)n));
    exit(1);
  }
  for (i = 0; i < n; i++) {
    g_uv_ans[g_uv_ans_len++] = buf->base[i];
    if (g_uv_ans_len == sizeof g_uv_ans) {
      if (g_uv_ans[0] != 'a' || g_uv_answered) {
        fprintf(stderr, "bench_handoff: bad answer from libuv receiver\n");
        exit(1);
      }
      g_uv_ans_len = 0;
      g_uv_answered = 1;
      uvb_maybe_done();
    }
  }
}

static void uvb_exit_cb(uv_process_t *p, int64_t status, int sig) {
  if (!g_uv_stopping) {
    fprintf(stderr, "bench_handoff: libuv receiver exited early (%lld, signal %d)\n",
            (long long)status, sig);
    exit(1);
  }
  if (status != 0 || sig != 0)
    fprintf(stderr, "bench_handoff: libuv receiver exited with %lld (signal %d)\n",
            (long long)status, sig);
  uv_close((uv_handle_t *)p, NULL);
  uv_close((uv_handle_t *)&g_uv_timer, NULL);
}

static int uvb_start(variant_t *v) {
  char exe[MAX_PATH], cpu[16];
  char *args[6];
  uv_process_options_t o;
  uv_stdio_container_t stdio[4];
  DWORD n = GetModuleFileNameA(NULL, exe, sizeof exe);
  int i;
  if (n == 0 || n >= sizeof exe)
    die_win("GetModuleFileNameA");
  g_uv_loop = uv_default_loop();
  for (i = 0; i < POOL; i++) { /* libuv's own handles to the pool's sockets */
    WSAPROTOCOL_INFOW info;
    SOCKET s;
    if (WSADuplicateSocketW(g_pool[i], GetCurrentProcessId(), &info) != 0)
      die_win("WSADuplicateSocketW");
    s = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0,
                   WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET)
      die_win("WSASocketW(FROM_PROTOCOL_INFO)");
    uvb_check(uv_tcp_init(g_uv_loop, &g_uv_pool[i]), "uv_tcp_init");
    uvb_check(uv_tcp_open(&g_uv_pool[i], s), "uv_tcp_open");
  }
  uvb_check(uv_pipe_init(g_uv_loop, &g_uv_pipe, 1), "uv_pipe_init");
  snprintf(cpu, sizeof cpu, "%d", g_cpu_recv);
  args[0] = exe;
  args[1] = "--child";
  args[2] = "libuv";
  args[3] = cpu;
  args[4] = "-";
  args[5] = NULL;
  memset(&o, 0, sizeof o);
  memset(stdio, 0, sizeof stdio);
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = 1;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  stdio[3].flags = (uv_stdio_flags)(UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE);
  stdio[3].data.stream = (uv_stream_t *)&g_uv_pipe;
  o.file = exe;
  o.args = args;
  o.stdio = stdio;
  o.stdio_count = 4;
  o.exit_cb = uvb_exit_cb;
  fflush(NULL);
  uvb_check(uv_spawn(g_uv_loop, &g_uv_proc, &o), "uv_spawn");
  v->pid = (DWORD)g_uv_proc.pid;
  uvb_check(uv_read_start((uv_stream_t *)&g_uv_pipe, uvb_alloc_cb, uvb_tx_read_cb),
            "uv_read_start");
  return 0;
}

/* `writes` handles, k different sockets in turn, then the end marker; or in
 * ping, one handle on the end marker. Waits for the answer and checks its
 * count. */
static void uvb_send(int k, long writes, int ping) {
  long i;
  g_uv_k = k;
  g_uv_ping = ping;
  g_uv_total = ping ? 1 : writes + 1;
  g_uv_issued = g_uv_done = 0;
  g_uv_answered = 0;
  for (i = 0; i < UV_WINDOW && g_uv_issued < g_uv_total; i++)
    uvb_issue(&g_uv_reqs[i]);
  uv_run(g_uv_loop, UV_RUN_DEFAULT);
  if (!g_uv_answered || g_uv_done != g_uv_total) {
    fprintf(stderr, "bench_handoff: libuv loop ended before the round did\n");
    exit(1);
  }
  check_count("libuv", g_uv_ans, (uint64_t)writes);
}

static void uvb_round(variant_t *v, int k, int n, uint64_t *ns) {
  uint64_t t0 = now_ns();
  (void)v;
  uvb_send(k, (long)k * n, 0); /* k sockets = k writes of one handle each */
  *ns = now_ns() - t0;
}

static void uvb_ping(variant_t *v, uint64_t *ns) {
  uint64_t t0 = now_ns();
  (void)v;
  uvb_send(1, 1, 1);
  *ns = now_ns() - t0;
}

static void uvb_kill_cb(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "bench_handoff: libuv receiver did not exit, killing it\n");
  (void)uv_process_kill(&g_uv_proc, SIGKILL);
}

static void uvb_quit_cb(uv_write_t *req, int status) {
  (void)req;
  (void)status;
  uv_close((uv_handle_t *)&g_uv_pipe, NULL);
}

static void uvb_stop(variant_t *v) {
  static char q = 'q';
  uv_buf_t b = uv_buf_init(&q, 1);
  int i;
  (void)v;
  g_uv_stopping = 1;
  uv_read_stop((uv_stream_t *)&g_uv_pipe);
  if (uv_write(&g_uv_reqs[0], (uv_stream_t *)&g_uv_pipe, &b, 1, uvb_quit_cb) < 0)
    uv_close((uv_handle_t *)&g_uv_pipe, NULL);
  for (i = 0; i < POOL; i++)
    uv_close((uv_handle_t *)&g_uv_pool[i], NULL);
  uvb_check(uv_timer_init(g_uv_loop, &g_uv_timer), "uv_timer_init");
  uvb_check(uv_timer_start(&g_uv_timer, uvb_kill_cb, 20000, 0), "uv_timer_start");
  uv_run(g_uv_loop, UV_RUN_DEFAULT); /* until the child exited and all is closed */
}
#endif /* SP_BENCH_HAVE_LIBUV */

enum { V_RAW, V_SP, V_UV, NV };

static variant_t g_var[NV] = {
    {"raw", 0, raw_start, raw_round, raw_ping, raw_stop, NULL, 0, NULL, NULL, 1},
    {"sockpass", 0, sp_start, sp_round, sp_ping, sp_stop, NULL, 0, NULL, NULL, 1},
#ifdef SP_BENCH_HAVE_LIBUV
    {"libuv", 1, uvb_start, uvb_round, uvb_ping, uvb_stop, NULL, 0, NULL, NULL, 1},
#else
    {"libuv", 1, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0},
#endif
};

static int g_rounds = 11;
static double g_scale = 1.0;
static int g_ks[3] = {1, 16, 64}, g_nk = 3;
static int g_msgs = 2000;

static int msgs_for(int k) {
  /* About 200 ms of raw sending per round under Wine on the reference
   * machine: far fewer than on Linux, every socket costs wineserver calls. */
  int n = k == 1 ? 1000 : k <= 16 ? 100 : 25;
  n = (int)(n * g_scale);
  return n < 10 ? 10 : n;
}

static void throughput(void) {
  static double ns_per_sock[3][NV][MAX_ROUNDS];
  int ki, r, j;

  printf("== Handoff throughput (Windows): parent -> child, the receiver closes every socket ==\n");
  printf("%d rounds, variants alternating (order rotates each round); sender on CPU %d, "
         "receiver on CPU %d\n",
         g_rounds, g_cpu_send, g_cpu_recv);
  for (ki = 0; ki < g_nk; ki++)
    for (j = 0; j < NV; j++) {
      uint64_t ns;
      if (g_var[j].enabled)
        g_var[j].round(&g_var[j], g_ks[ki], msgs_for(g_ks[ki]) / 4 + 1, &ns);
    }
  for (r = 0; r < g_rounds; r++)
    for (ki = 0; ki < g_nk; ki++)
      for (j = 0; j < NV; j++) {
        int vi = (j + r) % NV, k = g_ks[ki], n = msgs_for(k);
        uint64_t ns;
        if (!g_var[vi].enabled)
          continue;
        g_var[vi].round(&g_var[vi], k, n, &ns);
        ns_per_sock[ki][vi][r] = (double)ns / ((double)n * k);
      }

  printf("\n%-6s %-10s %12s %12s %10s %10s  %s\n", "socks", "variant", "messages/s", "sockets/s",
         "time/raw", "raw/time", "time/raw over rounds");
  printf("%-6s %-10s %12s %12s %10s %10s  %s\n", "/msg", "", "", "", "(median)", "", "[min .. max]");
  for (ki = 0; ki < g_nk; ki++) {
    int k = g_ks[ki];
    for (j = 0; j < NV; j++) {
      double ratio[MAX_ROUNDS], rate[MAX_ROUNDS], med, socks_s, lo, hi;
      if (!g_var[j].enabled)
        continue;
      for (r = 0; r < g_rounds; r++) {
        ratio[r] = ns_per_sock[ki][j][r] / ns_per_sock[ki][V_RAW][r];
        rate[r] = 1e9 / ns_per_sock[ki][j][r];
      }
      med = median(ratio, g_rounds);
      lo = hi = ratio[0];
      for (r = 1; r < g_rounds; r++) {
        lo = ratio[r] < lo ? ratio[r] : lo;
        hi = ratio[r] > hi ? ratio[r] : hi;
      }
      socks_s = median(rate, g_rounds);
      printf("%-6d %-10s %12.0f %12.0f %10.3f %10.3f  [%.2f .. %.2f]%s\n", k, g_var[j].name,
             g_var[j].per_write == 1 ? socks_s : socks_s / k, socks_s, med, 1.0 / med, lo, hi,
             g_var[j].per_write == 1 && k > 1 ? "  (one socket per write)" : "");
    }
  }
  printf("\nGoals (median of per-round ratios):\n");
  for (ki = 0; ki < g_nk; ki++) {
    double ratio[MAX_ROUNDS];
    int k = g_ks[ki];
    if (!g_var[V_SP].enabled)
      break;
    for (r = 0; r < g_rounds; r++)
      ratio[r] = ns_per_sock[ki][V_SP][r] / ns_per_sock[ki][V_RAW][r];
    printf("  %2d socket%s/message: sockpass time / raw time = %.3f  (goal <= 1.10: %s)\n", k,
           k == 1 ? " " : "s", median(ratio, g_rounds),
           median(ratio, g_rounds) <= 1.10 ? "met" : "NOT met");
    if (k != 1 || !g_var[V_UV].enabled)
      continue;
    for (r = 0; r < g_rounds; r++)
      ratio[r] = ns_per_sock[ki][V_UV][r] / ns_per_sock[ki][V_SP][r];
    printf("   1 socket /message: sockpass messages/s / libuv's = %.2f  (goal >= 2: %s)\n",
           median(ratio, g_rounds), median(ratio, g_rounds) >= 2.0 ? "met" : "NOT met");
  }
#ifndef SP_BENCH_HAVE_LIBUV
  printf("  libuv: not built for Windows here (no baseline)\n");
#endif
  printf("\n");
}

static void latency(void) {
  enum { PER_ROUND = 500 };
  static uint64_t samples[NV][MAX_ROUNDS * PER_ROUND];
  double p50r[NV][MAX_ROUNDS];
  int r, j, i;

  printf("== Latency (Windows): one socket sent, the receiver closes it and answers "
         "(round trip) ==\n");
  printf("%d rounds of %d round trips per variant, alternating\n", g_rounds, PER_ROUND);
  for (j = 0; j < NV; j++)
    for (i = 0; i < 100 && g_var[j].enabled; i++) {
      uint64_t ns;
      g_var[j].ping(&g_var[j], &ns);
    }
  for (r = 0; r < g_rounds; r++)
    for (j = 0; j < NV; j++) {
      int vi = (j + r) % NV;
      uint64_t *s = samples[vi] + (size_t)r * PER_ROUND;
      if (!g_var[vi].enabled)
        continue;
      for (i = 0; i < PER_ROUND; i++)
        g_var[vi].ping(&g_var[vi], &s[i]);
      qsort(s, PER_ROUND, sizeof *s, cmp_u64);
      p50r[vi][r] = (double)s[PER_ROUND / 2];
    }
  printf("\n%-10s %10s %10s %14s\n", "variant", "p50 (us)", "p99 (us)", "p50/raw p50");
  for (j = 0; j < NV; j++) {
    size_t n = (size_t)g_rounds * PER_ROUND;
    double ratio[MAX_ROUNDS];
    if (!g_var[j].enabled)
      continue;
    qsort(samples[j], n, sizeof samples[j][0], cmp_u64);
    for (r = 0; r < g_rounds; r++)
      ratio[r] = p50r[j][r] / p50r[V_RAW][r];
    printf("%-10s %10.2f %10.2f %14.3f\n", g_var[j].name, samples[j][n / 2] / 1e3,
           samples[j][n * 99 / 100] / 1e3, median(ratio, g_rounds));
  }
  printf("(p50/raw p50: median over rounds of each round's p50 ratio)\n\n");
}

static void single(const char *mode) {
  int j, i;
  uint64_t ns, t0;
  for (j = 0; j < NV; j++)
    if (g_var[j].enabled)
      break;
  if (j == NV) {
    fprintf(stderr, "bench_handoff: --mode %s needs one variant in --variants\n", mode);
    exit(2);
  }
  g_var[j].start(&g_var[j]);
  pin(g_cpu_send);
  if (strcmp(mode, "send") == 0) {
    g_var[j].round(&g_var[j], g_ks[0], g_msgs, &ns);
    printf("%s: %d messages of %d socket(s) in %.1f ms%s\n", g_var[j].name, g_msgs, g_ks[0],
           ns / 1e6, g_var[j].per_write == 1 && g_ks[0] > 1 ? " (one socket per write)" : "");
  } else {
    t0 = now_ns();
    for (i = 0; i < g_msgs; i++)
      g_var[j].ping(&g_var[j], &ns);
    printf("%s: %d round trips in %.1f ms\n", g_var[j].name, g_msgs, (now_ns() - t0) / 1e6);
  }
  g_var[j].stop(&g_var[j]);
}

static void usage(void) {
  fprintf(stderr,
          "usage: bench_handoff [--mode all|throughput|latency] [--rounds N] [--scale X]\n"
          "                     [--socks 1,16,64] [--variants raw,sockpass,libuv] [--no-pin]\n"
          "       bench_handoff --mode send|pingpong --variants NAME [--socks K] [--msgs N]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *mode = "all", *variants = NULL;
  int i, pinning = 1, single_mode;
  WSADATA wsa;

  QueryPerformanceFrequency(&g_freq);
  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
    die_win("WSAStartup");
  if (argc == 5 && strcmp(argv[1], "--child") == 0) {
    pin(atoi(argv[3]));
    if (strcmp(argv[2], "raw") == 0)
      return raw_child(argv[4]);
#ifdef SP_BENCH_HAVE_LIBUV
    if (strcmp(argv[2], "libuv") == 0)
      return uvb_child();
#endif
    return sp_child();
  }
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--no-pin") == 0) {
      pinning = 0;
      continue;
    }
    if (v == NULL)
      usage();
    i++;
    if (strcmp(a, "--mode") == 0)
      mode = v;
    else if (strcmp(a, "--rounds") == 0)
      g_rounds = atoi(v);
    else if (strcmp(a, "--scale") == 0)
      g_scale = atof(v);
    else if (strcmp(a, "--variants") == 0)
      variants = v;
    else if (strcmp(a, "--msgs") == 0)
      g_msgs = atoi(v);
    else if (strcmp(a, "--socks") == 0) {
      g_nk = sscanf(v, "%d,%d,%d", &g_ks[0], &g_ks[1], &g_ks[2]);
      if (g_nk < 1)
        usage();
    } else
      usage();
  }
  if (g_rounds < 1 || g_rounds > MAX_ROUNDS || g_scale <= 0 || g_msgs < 1)
    usage();
  for (i = 0; i < g_nk; i++)
    if (g_ks[i] < 1 || g_ks[i] > MAX_K)
      usage();
  single_mode = strcmp(mode, "send") == 0 || strcmp(mode, "pingpong") == 0;
  if (!single_mode && strcmp(mode, "all") != 0 && strcmp(mode, "throughput") != 0 &&
      strcmp(mode, "latency") != 0)
    usage();
  if (variants != NULL)
    for (i = 0; i < NV; i++)
      if ((i != V_RAW || single_mode) && !has_word(variants, g_var[i].name))
        g_var[i].enabled = 0; /* raw is the floor: always measured */
  setvbuf(stdout, NULL, _IONBF, 0);
  if (pinning)
    choose_cpus();
  make_pool();
  if (single_mode) {
    single(mode);
    return 0;
  }
  printf("sockpass %s; bench_handoff (Windows), mode %s\n\n", sockpass_version_string(), mode);
  for (i = 0; i < NV; i++)
    if (g_var[i].enabled)
      g_var[i].start(&g_var[i]);
  pin(g_cpu_send);
  if (strcmp(mode, "throughput") == 0 || strcmp(mode, "all") == 0)
    throughput();
  if (strcmp(mode, "latency") == 0 || strcmp(mode, "all") == 0)
    latency();
  for (i = 0; i < NV; i++)
    if (g_var[i].enabled)
      g_var[i].stop(&g_var[i]);
  return 0;
}

#else /* POSIX */

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <netinet/in.h>


/* ---- Allocation counter: this executable's malloc wraps glibc's ---- */

static uint64_t g_allocs;      /* malloc, calloc, realloc calls */
static uint64_t g_alloc_bytes; /* bytes asked for */

#ifdef SP_BENCH_COUNT_MALLOC
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

#define SP_EXPORT __attribute__((visibility("default")))
SP_EXPORT void *malloc(size_t n);
SP_EXPORT void *calloc(size_t n, size_t m);
SP_EXPORT void *realloc(void *p, size_t n);
SP_EXPORT void free(void *p);

void *malloc(size_t n) {
  __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&g_alloc_bytes, n, __ATOMIC_RELAXED);
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t m) {
  __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&g_alloc_bytes, n * m, __ATOMIC_RELAXED);
  return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n) {
  __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&g_alloc_bytes, n, __ATOMIC_RELAXED);
  return __libc_realloc(p, n);
}
void free(void *p) { __libc_free(p); }
#define SP_HAVE_COUNTER 1
#else
#define SP_HAVE_COUNTER 0
#endif

static uint64_t allocs_now(void) { return __atomic_load_n(&g_allocs, __ATOMIC_RELAXED); }

/* ---- Small helpers ---- */

static void die(const char *what) {
  fprintf(stderr, "bench_handoff: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int g_cpu_send = -1, g_cpu_recv = -1;

static void pin(int cpu) {
  cpu_set_t set;
  if (cpu < 0)
    return;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) < 0)
    die("sched_setaffinity");
}

/* The first two CPUs this process may run on: sender and receiver. */
static void choose_cpus(void) {
  cpu_set_t set;
  int i, n = 0;
  if (sched_getaffinity(0, sizeof set, &set) < 0)
    return;
  for (i = 0; i < CPU_SETSIZE && n < 2; i++)
    if (CPU_ISSET(i, &set)) {
      if (n++ == 0)
        g_cpu_send = i;
      else
        g_cpu_recv = i;
    }
  if (n < 2)
    g_cpu_send = g_cpu_recv = -1; /* one CPU: pinning both to it would serialize */
}

static int g_pool[POOL];

static void make_pool(void) {
  int i;
  for (i = 0; i < POOL; i++)
    if ((g_pool[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
      die("socket");
}

/* Close every SCM_RIGHTS descriptor in a received message. */
static size_t close_cmsg_fds(struct msghdr *msg) {
  struct cmsghdr *cm;
  size_t n = 0;
  for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
      size_t i, k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      int fd;
      for (i = 0; i < k; i++) {
        memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
        close(fd);
        n++;
      }
    }
  }
  return n;
}

/* ---- Wire between sender and receiver, the same for every C variant ----
 * A data message is the byte 'd' with K sockets. 'e' ends a round: the
 * receiver answers 'a' followed by the allocations it made since its last
 * answer (uint64_t). 'q' (or EOF) stops the receiver. */

typedef struct {
  uint64_t ns;        /* sender's time for the round */
  uint64_t tx_allocs; /* sender's allocations in the round */
  uint64_t rx_allocs; /* receiver's allocations since its previous answer */
} round_t;

typedef struct variant variant_t;
struct variant {
  const char *name;
  int per_write; /* sockets per message it can carry: 0 = any, 1 = one */
  int (*start)(variant_t *v);
  void (*round)(variant_t *v, int k, int n, round_t *r);
  void (*ping)(variant_t *v, round_t *r); /* one socket out, one answer back */
  void (*stop)(variant_t *v);
  pid_t pid;
  int fd;
  sockpass_chan_t *chan;
  FILE *to, *from; /* python */
  int enabled;
};

static pid_t fork_receiver(void) {
  pid_t pid;
  fflush(NULL);
  pid = fork();
  if (pid < 0)
    die("fork");
  if (pid == 0)
    pin(g_cpu_recv);
  return pid;
}

static void reap(variant_t *v) {
  int st;
  if (v->pid > 0)
    waitpid(v->pid, &st, 0);
  v->pid = 0;
}

/* ---- raw: sendmsg / recvmsg with SCM_RIGHTS on SOCK_SEQPACKET ---- */

typedef union {
  struct cmsghdr align;
  unsigned char buf[CMSG_SPACE(253 * sizeof(int))];
} cbuf_t;

static void raw_send(int fd, const int *socks, int k, char what) {
  cbuf_t cb;
  struct msghdr msg;
  struct iovec iov;
  memset(&msg, 0, sizeof msg);
  iov.iov_base = &what;
  iov.iov_len = 1;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (k > 0) {
    struct cmsghdr *cm;
    msg.msg_control = cb.buf;
    msg.msg_controllen = CMSG_SPACE((size_t)k * sizeof(int));
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN((size_t)k * sizeof(int));
    memcpy(CMSG_DATA(cm), socks, (size_t)k * sizeof(int));
  }
  while (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0)
    if (errno != EINTR)
      die("sendmsg");
}

static void raw_receiver(int fd) {
  cbuf_t cb;
  struct msghdr msg;
  struct iovec iov;
  char buf[16];
  uint64_t mark = allocs_now();
  for (;;) {
    ssize_t n;
    memset(&msg, 0, sizeof msg);
    iov.iov_base = buf;
    iov.iov_len = sizeof buf;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cb.buf;
    msg.msg_controllen = sizeof cb.buf;
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      _exit(n < 0);
    close_cmsg_fds(&msg);
    if (buf[0] == 'e') {
      char ans[1 + sizeof(uint64_t)];
      uint64_t a = allocs_now() - mark;
      ans[0] = 'a';
      memcpy(ans + 1, &a, sizeof a);
      if (send(fd, ans, sizeof ans, MSG_NOSIGNAL) < 0)
        _exit(1);
      mark = allocs_now();
    } else if (buf[0] == 'q') {
      _exit(0);
    }
  }
}

static void read_answer(int fd, round_t *r) {
  char ans[1 + sizeof(uint64_t)];
  ssize_t n;
  while ((n = recv(fd, ans, sizeof ans, 0)) < 0 && errno == EINTR)
    ;
  if (n != (ssize_t)sizeof ans || ans[0] != 'a') {
    fprintf(stderr, "bench_handoff: bad answer from receiver\n");
    exit(1);
  }
  memcpy(&r->rx_allocs, ans + 1, sizeof r->rx_allocs);
}

static int raw_start(variant_t *v) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
    die("socketpair");
  v->pid = fork_receiver();
  if (v->pid == 0) {
    close(sv[0]);
    raw_receiver(sv[1]);
  }
  close(sv[1]);
  v->fd = sv[0];
  return 0;
}

static void raw_round(variant_t *v, int k, int n, round_t *r) {
  cbuf_t cb;
  struct msghdr msg;
  struct iovec iov;
  struct cmsghdr *cm;
  char d = 'd';
  uint64_t a0 = allocs_now(), t0 = now_ns();
  int i;
  memset(&msg, 0, sizeof msg);
  iov.iov_base = &d;
  iov.iov_len = 1;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cb.buf;
  msg.msg_controllen = CMSG_SPACE((size_t)k * sizeof(int));
  cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN((size_t)k * sizeof(int));
  memcpy(CMSG_DATA(cm), g_pool, (size_t)k * sizeof(int));
  for (i = 0; i < n; i++)
    while (sendmsg(v->fd, &msg, MSG_NOSIGNAL) < 0)
      if (errno != EINTR)
        die("sendmsg");
  raw_send(v->fd, NULL, 0, 'e');
  read_answer(v->fd, r);
  r->ns = now_ns() - t0;
  r->tx_allocs = allocs_now() - a0;
}

static void raw_ping(variant_t *v, round_t *r) {
  uint64_t t0 = now_ns();
  raw_send(v->fd, g_pool, 1, 'e');
  read_answer(v->fd, r);
  r->ns = now_ns() - t0;
}

static void fd_stop(variant_t *v) {
  raw_send(v->fd, NULL, 0, 'q');
  close(v->fd);
  reap(v);
}

/* ---- sockpass: sockpass_send / sockpass_recv ---- */

static void sp_receiver(sockpass_chan_t *c) {
  sockpass_sock_t socks[SOCKPASS_MAX_SOCKS];
  char buf[16];
  uint64_t mark = allocs_now();
  for (;;) {
    size_t ns = SOCKPASS_MAX_SOCKS, len = sizeof buf, i;
    int rc = sockpass_recv(c, socks, &ns, buf, &len);
    if (rc == SOCKPASS_EOF)
      _exit(0);
    if (rc < 0)
      die_sp("sockpass_recv", rc);
    for (i = 0; i < ns; i++)
      close(socks[i]);
    if (len == 1 && buf[0] == 'e') {
      char ans[1 + sizeof(uint64_t)];
      uint64_t a = allocs_now() - mark;
      ans[0] = 'a';
      memcpy(ans + 1, &a, sizeof a);
      if ((rc = sockpass_send(c, NULL, 0, ans, sizeof ans)) < 0)
        die_sp("sockpass_send", rc);
      mark = allocs_now();
    } else if (len == 1 && buf[0] == 'q') {
      _exit(0);
    }
  }
}

static void sp_read_answer(sockpass_chan_t *c, round_t *r) {
  char ans[1 + sizeof(uint64_t)];
  size_t ns = 0, len = sizeof ans;
  int rc = sockpass_recv(c, NULL, &ns, ans, &len);
  if (rc < 0)
    die_sp("sockpass_recv", rc);
  if (len != sizeof ans || ans[0] != 'a') {
    fprintf(stderr, "bench_handoff: bad answer from receiver\n");
    exit(1);
  }
  memcpy(&r->rx_allocs, ans + 1, sizeof r->rx_allocs);
}

static int sp_start(variant_t *v) {
  sockpass_chan_t *a, *b;
  int rc = sockpass_pair(&a, &b);
  if (rc < 0)
    die_sp("sockpass_pair", rc);
  v->pid = fork_receiver();
  if (v->pid == 0) {
    sockpass_close(a);
    sp_receiver(b);
  }
  sockpass_close(b);
  v->chan = a;
  return 0;
}

static void sp_round(variant_t *v, int k, int n, round_t *r) {
  uint64_t a0 = allocs_now(), t0 = now_ns();
  int i, rc;
  for (i = 0; i < n; i++)
    if ((rc = sockpass_send(v->chan, g_pool, (size_t)k, "d", 1)) < 0)
      die_sp("sockpass_send", rc);
  if ((rc = sockpass_send(v->chan, NULL, 0, "e", 1)) < 0)
    die_sp("sockpass_send", rc);
  sp_read_answer(v->chan, r);
  r->ns = now_ns() - t0;
  r->tx_allocs = allocs_now() - a0;
}

static void sp_ping(variant_t *v, round_t *r) {
  uint64_t t0 = now_ns();
  int rc = sockpass_send(v->chan, g_pool, 1, "e", 1);
  if (rc < 0)
    die_sp("sockpass_send", rc);
  sp_read_answer(v->chan, r);
  r->ns = now_ns() - t0;
}

static void sp_stop(variant_t *v) {
  (void)sockpass_send(v->chan, NULL, 0, "q", 1);
  sockpass_close(v->chan);
  reap(v);
}

/* ---- libuv: uv_write2 over an IPC pipe, one handle per write ---- */
#ifdef SP_BENCH_HAVE_LIBUV

#define UV_WINDOW 256 /* writes in flight */

static uv_loop_t *g_uv_loop;
static uv_pipe_t g_uv_pipe;
static uv_tcp_t g_uv_pool[POOL];
static uv_write_t g_uv_reqs[UV_WINDOW];
static long g_uv_total, g_uv_issued, g_uv_done;
static int g_uv_k;
static round_t *g_uv_round;

/* Receiver: accept every pending handle and close it; answer 'e'. */
static void uvb_rx_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  static uint64_t mark;
  static int marked;
  ssize_t i;
  if (!marked) {
    mark = allocs_now();
    marked = 1;
  }
  while (uv_pipe_pending_count((uv_pipe_t *)s) > 0) {
    uv_tcp_t *h = malloc(sizeof *h);
    if (h == NULL)
      exit(1);
    uvb_check(uv_tcp_init(g_uv_loop, h), "uv_tcp_init");
    uvb_check(uv_accept(s, (uv_stream_t *)h), "uv_accept");
    uv_close((uv_handle_t *)h, uvb_free_cb);
  }
  if (n < 0) {
    uv_stop(g_uv_loop);
    return;
  }
  for (i = 0; i < n; i++) {
    if (buf->base[i] == 'e') {
      char ans[1 + sizeof(uint64_t)];
      uint64_t a = allocs_now() - mark;
      uv_buf_t b = uv_buf_init(ans, sizeof ans);
      ans[0] = 'a';
      memcpy(ans + 1, &a, sizeof a);
      if (uv_try_write(s, &b, 1) != (int)sizeof ans)
        exit(1);
      mark = allocs_now();
    } else if (buf->base[i] == 'q') {
      uv_stop(g_uv_loop);
      return;
    }
  }
}

static void uvb_issue(uv_write_t *req);

static void uvb_tx_write_cb(uv_write_t *req, int status) {
  uvb_check(status, "uv_write2");
  g_uv_done++;
  if (g_uv_issued < g_uv_total)
    uvb_issue(req);
  else if (g_uv_done == g_uv_total)
    uv_stop(g_uv_loop);
}

static void uvb_issue(uv_write_t *req) {
  static char d = 'd', e = 'e';
  long i = g_uv_issued++;
  uv_buf_t b;
  if (i == g_uv_total - 1) { /* the end marker */
    b = uv_buf_init(&e, 1);
    uvb_check(uv_write(req, (uv_stream_t *)&g_uv_pipe, &b, 1, uvb_tx_write_cb), "uv_write");
  } else {
    b = uv_buf_init(&d, 1);
    uvb_check(uv_write2(req, (uv_stream_t *)&g_uv_pipe, &b, 1,
                       (uv_stream_t *)&g_uv_pool[i % g_uv_k], uvb_tx_write_cb),
             "uv_write2");
  }
}

static void uvb_tx_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)s;
  if (n < 0) {
    fprintf(stderr, "bench_handoff: libuv receiver went away\n");
    exit(1);
  }
  if (n == 1 + (ssize_t)sizeof(uint64_t) && buf->base[0] == 'a') {
    memcpy(&g_uv_round->rx_allocs, buf->base + 1, sizeof(uint64_t));
    uv_read_stop(s);
    uv_stop(g_uv_loop);
  }
}

static int uvb_start(variant_t *v) {
  int sv[2], i;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    die("socketpair");
  v->pid = fork_receiver();
  if (v->pid == 0) {
    close(sv[0]);
    g_uv_loop = uv_default_loop();
    uvb_check(uv_pipe_init(g_uv_loop, &g_uv_pipe, 1), "uv_pipe_init");
    uvb_check(uv_pipe_open(&g_uv_pipe, sv[1]), "uv_pipe_open");
    uvb_check(uv_read_start((uv_stream_t *)&g_uv_pipe, uvb_alloc_cb, uvb_rx_read_cb),
             "uv_read_start");
    uv_run(g_uv_loop, UV_RUN_DEFAULT);
    _exit(0);
  }
  close(sv[1]);
  g_uv_loop = uv_default_loop();
  uvb_check(uv_pipe_init(g_uv_loop, &g_uv_pipe, 1), "uv_pipe_init");
  uvb_check(uv_pipe_open(&g_uv_pipe, sv[0]), "uv_pipe_open");
  for (i = 0; i < POOL; i++) {
    int fd = dup(g_pool[i]); /* libuv makes its sockets non-blocking: keep ours apart */
    if (fd < 0)
      die("dup");
    uvb_check(uv_tcp_init(g_uv_loop, &g_uv_pool[i]), "uv_tcp_init");
    uvb_check(uv_tcp_open(&g_uv_pool[i], fd), "uv_tcp_open");
  }
  return 0;
}

/* k sockets = k writes of one handle each: what libuv can do. */
static void uvb_send(int k, long writes, round_t *r) {
  long i;
  g_uv_k = k;
  g_uv_total = writes + 1;
  g_uv_issued = g_uv_done = 0;
  g_uv_round = r;
  for (i = 0; i < UV_WINDOW && g_uv_issued < g_uv_total; i++)
    uvb_issue(&g_uv_reqs[i]);
  uv_run(g_uv_loop, UV_RUN_DEFAULT);
  uvb_check(uv_read_start((uv_stream_t *)&g_uv_pipe, uvb_alloc_cb, uvb_tx_read_cb),
           "uv_read_start");
  uv_run(g_uv_loop, UV_RUN_DEFAULT);
}

static void uvb_round(variant_t *v, int k, int n, round_t *r) {
  uint64_t a0 = allocs_now(), t0 = now_ns();
  (void)v;
  uvb_send(k, (long)k * n, r);
  r->ns = now_ns() - t0;
  r->tx_allocs = allocs_now() - a0;
}

static void uvb_ping(variant_t *v, round_t *r) {
  uint64_t t0 = now_ns();
  (void)v;
  uvb_send(1, 1, r); /* the handle rides on 'd', then 'e' asks the answer */
  r->ns = now_ns() - t0;
}

static void uvb_stop(variant_t *v) {
  int i;
  char q = 'q';
  uv_buf_t b = uv_buf_init(&q, 1);
  (void)uv_try_write((uv_stream_t *)&g_uv_pipe, &b, 1);
  for (i = 0; i < POOL; i++)
    uv_close((uv_handle_t *)&g_uv_pool[i], NULL);
  uv_close((uv_handle_t *)&g_uv_pipe, NULL);
  uv_run(g_uv_loop, UV_RUN_DEFAULT);
  reap(v);
}
#endif /* SP_BENCH_HAVE_LIBUV */

/* ---- Python: socket.send_fds / recv_fds, both ends in Python ---- */

static const char *g_python =
#ifdef SP_BENCH_PYTHON
    SP_BENCH_PYTHON;
#else
    "python3";
#endif
static const char *g_pyscript =
#ifdef SP_BENCH_PYSCRIPT
    SP_BENCH_PYSCRIPT;
#else
    NULL;
#endif

static int py_start(variant_t *v) {
  int in[2], out[2];
  char cs[16], cr[16];
  if (g_pyscript == NULL)
    return -1;
  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
    die("pipe2");
  snprintf(cs, sizeof cs, "%d", g_cpu_send);
  snprintf(cr, sizeof cr, "%d", g_cpu_recv);
  fflush(NULL);
  v->pid = fork();
  if (v->pid < 0)
    die("fork");
  if (v->pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    execl(g_python, g_python, g_pyscript, cs, cr, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  v->to = fdopen(in[1], "w");
  v->from = fdopen(out[0], "r");
  if (v->to == NULL || v->from == NULL)
    die("fdopen");
  return 0;
}

static void py_round(variant_t *v, int k, int n, round_t *r) {
  unsigned long long ns;
  fprintf(v->to, "%d %d\n", k, n);
  fflush(v->to);
  if (fscanf(v->from, "%llu", &ns) != 1) {
    fprintf(stderr, "bench_handoff: the Python baseline failed (%s %s)\n", g_python,
            g_pyscript);
    exit(1);
  }
  r->ns = ns;
  r->tx_allocs = r->rx_allocs = 0;
}

static void py_stop(variant_t *v) {
  fprintf(v->to, "q\n");
  fclose(v->to);
  fclose(v->from);
  reap(v);
}

/* ---- The variants ---- */

enum { V_RAW, V_SP, V_UV, V_PY, NV };

static variant_t g_var[NV] = {
    {"raw", 0, raw_start, raw_round, raw_ping, fd_stop, 0, -1, NULL, NULL, NULL, 1},
    {"sockpass", 0, sp_start, sp_round, sp_ping, sp_stop, 0, -1, NULL, NULL, NULL, 1},
#ifdef SP_BENCH_HAVE_LIBUV
    {"libuv", 1, uvb_start, uvb_round, uvb_ping, uvb_stop, 0, -1, NULL, NULL, NULL, 1},
#else
    {"libuv", 1, NULL, NULL, NULL, NULL, 0, -1, NULL, NULL, NULL, 0},
#endif
    {"python", 0, py_start, py_round, NULL, py_stop, 0, -1, NULL, NULL, NULL, 1},
};

/* ---- Options ---- */

static int g_rounds = 11;
static double g_scale = 1.0;
static int g_ks[3] = {1, 16, 64}, g_nk = 3;
static int g_pairs = 4000;

static int msgs_for(int k) {
  /* About 40 ms of raw sending per round on the reference machine. */
  int n = k == 1 ? 16000 : k <= 16 ? 4000 : 1500;
  n = (int)(n * g_scale);
  return n < 10 ? 10 : n;
}

static void start_all(void) {
  int i;
  for (i = 0; i < NV; i++)
    if (g_var[i].enabled && g_var[i].start != NULL && g_var[i].start(&g_var[i]) < 0) {
      fprintf(stderr, "bench_handoff: %s baseline unavailable, left out\n", g_var[i].name);
      g_var[i].enabled = 0;
    }
}

static void stop_all(void) {
  int i;
  for (i = 0; i < NV; i++)
    if (g_var[i].enabled && g_var[i].stop != NULL)
      g_var[i].stop(&g_var[i]);
}

/* ---- Throughput ---- */

static void throughput(void) {
  static double ns_per_sock[3][NV][MAX_ROUNDS];
  int ki, r, j;

  printf("== Handoff throughput: parent -> child, the receiver closes every socket ==\n");
  printf("%d rounds, variants alternating (order rotates each round); sender on CPU %d, "
         "receiver on CPU %d\n",
         g_rounds, g_cpu_send, g_cpu_recv);
  for (ki = 0; ki < g_nk; ki++) { /* one warm-up round, not counted */
    for (j = 0; j < NV; j++) {
      round_t rr;
      if (g_var[j].enabled)
        g_var[j].round(&g_var[j], g_ks[ki], msgs_for(g_ks[ki]) / 4 + 1, &rr);
    }
  }
  for (r = 0; r < g_rounds; r++)
    for (ki = 0; ki < g_nk; ki++)
      for (j = 0; j < NV; j++) {
        int vi = (j + r) % NV, k = g_ks[ki], n = msgs_for(k);
        round_t rr;
        if (!g_var[vi].enabled)
          continue;
        g_var[vi].round(&g_var[vi], k, n, &rr);
        ns_per_sock[ki][vi][r] = (double)rr.ns / ((double)n * k);
      }

  printf("\n%-6s %-10s %12s %12s %10s %10s  %s\n", "socks", "variant", "messages/s", "sockets/s",
         "time/raw", "raw/time", "time/raw over rounds");
  printf("%-6s %-10s %12s %12s %10s %10s  %s\n", "/msg", "", "", "", "(median)", "", "[min .. max]");
  for (ki = 0; ki < g_nk; ki++) {
    int k = g_ks[ki];
    for (j = 0; j < NV; j++) {
      double ratio[MAX_ROUNDS], rate[MAX_ROUNDS], med_ratio, socks_s, msgs_s, lo, hi;
      if (!g_var[j].enabled)
        continue;
      for (r = 0; r < g_rounds; r++) {
        ratio[r] = ns_per_sock[ki][j][r] / ns_per_sock[ki][V_RAW][r];
        rate[r] = 1e9 / ns_per_sock[ki][j][r];
      }
      med_ratio = median(ratio, g_rounds);
      lo = hi = ratio[0];
      for (r = 1; r < g_rounds; r++) {
        lo = ratio[r] < lo ? ratio[r] : lo;
        hi = ratio[r] > hi ? ratio[r] : hi;
      }
      socks_s = median(rate, g_rounds);
      msgs_s = g_var[j].per_write == 1 ? socks_s : socks_s / k;
      printf("%-6d %-10s %12.0f %12.0f %10.3f %10.3f  [%.2f .. %.2f]%s\n", k, g_var[j].name,
             msgs_s, socks_s, med_ratio, 1.0 / med_ratio, lo, hi,
             g_var[j].per_write == 1 && k > 1 ? "  (one socket per write)" : "");
    }
  }

  printf("\nGoals (median of per-round ratios):\n");
  for (ki = 0; ki < g_nk; ki++) {
    double ratio[MAX_ROUNDS];
    int k = g_ks[ki];
    if (k != 1 && k != 64)
      continue;
    for (r = 0; r < g_rounds; r++)
      ratio[r] = ns_per_sock[ki][V_SP][r] / ns_per_sock[ki][V_RAW][r];
    printf("  %2d socket%s/message: sockpass time / raw time = %.3f  (goal <= 1.05: %s)\n", k,
           k == 1 ? " " : "s", median(ratio, g_rounds),
           median(ratio, g_rounds) <= 1.05 ? "met" : "NOT met");
    if (k != 1)
      continue;
    if (g_var[V_UV].enabled) {
      for (r = 0; r < g_rounds; r++)
        ratio[r] = ns_per_sock[ki][V_UV][r] / ns_per_sock[ki][V_SP][r];
      printf("   1 socket /message: sockpass messages/s / libuv's = %.2f  (goal >= 1.9: %s)\n",
             median(ratio, g_rounds), median(ratio, g_rounds) >= 1.9 ? "met" : "NOT met");
    }
    if (g_var[V_PY].enabled) {
      for (r = 0; r < g_rounds; r++)
        ratio[r] = ns_per_sock[ki][V_PY][r] / ns_per_sock[ki][V_SP][r];
      printf("   1 socket /message: sockpass messages/s / Python's = %.2f  (goal >= 2: %s)\n",
             median(ratio, g_rounds), median(ratio, g_rounds) >= 2.0 ? "met" : "NOT met");
    }
  }
  printf("\n");
}

/* ---- Latency: one socket out, a one-byte answer back ---- */

static void latency(void) {
  enum { PER_ROUND = 2000 };
  static uint64_t samples[NV][MAX_ROUNDS * PER_ROUND];
  double p50r[NV][MAX_ROUNDS];
  int r, j, i, nv = 0;
  int lat[NV];

  for (j = 0; j < NV; j++)
    if (g_var[j].enabled && g_var[j].ping != NULL)
      lat[nv++] = j;
  printf("== Latency: one socket sent, the receiver closes it and answers (round trip) ==\n");
  printf("%d rounds of %d round trips per variant, alternating\n", g_rounds, PER_ROUND);
  for (j = 0; j < nv; j++)
    for (i = 0; i < 200; i++) { /* warm-up */
      round_t rr;
      g_var[lat[j]].ping(&g_var[lat[j]], &rr);
    }
  for (r = 0; r < g_rounds; r++)
    for (j = 0; j < nv; j++) {
      int vi = lat[(j + r) % nv];
      uint64_t *s = samples[vi] + (size_t)r * PER_ROUND;
      for (i = 0; i < PER_ROUND; i++) {
        round_t rr;
        g_var[vi].ping(&g_var[vi], &rr);
        s[i] = rr.ns;
      }
      qsort(s, PER_ROUND, sizeof *s, cmp_u64);
      p50r[vi][r] = (double)s[PER_ROUND / 2];
    }
  printf("\n%-10s %10s %10s %14s\n", "variant", "p50 (us)", "p99 (us)", "p50/raw p50");
  for (j = 0; j < nv; j++) {
    int vi = lat[j];
    size_t n = (size_t)g_rounds * PER_ROUND;
    double ratio[MAX_ROUNDS];
    qsort(samples[vi], n, sizeof samples[vi][0], cmp_u64);
    for (r = 0; r < g_rounds; r++)
      ratio[r] = p50r[vi][r] / p50r[V_RAW][r];
    printf("%-10s %10.2f %10.2f %14.3f\n", g_var[vi].name, samples[vi][n / 2] / 1e3,
           samples[vi][n * 99 / 100] / 1e3, median(ratio, g_rounds));
  }
  printf("(p50/raw p50: median over rounds of each round's p50 ratio)\n\n");
}

/* ---- Allocations per message in steady state ---- */

static void allocs(void) {
  int ki, j;
  printf("== Heap allocations per message, steady state (malloc/calloc/realloc calls) ==\n");
  if (!SP_HAVE_COUNTER) {
    printf("(not counted: this build does not interpose malloc)\n\n");
    return;
  }
  printf("%-6s %-10s %14s %14s\n", "socks", "variant", "sender", "receiver");
  for (ki = 0; ki < g_nk; ki++)
    for (j = 0; j < NV; j++) {
      round_t rr;
      int k = g_ks[ki], n = 10000;
      double per;
      if (!g_var[j].enabled || j == V_PY)
        continue;
      g_var[j].round(&g_var[j], k, 100, &rr); /* steady state first */
      g_var[j].round(&g_var[j], k, n, &rr);
      per = g_var[j].per_write == 1 ? (double)n * k : (double)n;
      printf("%-6d %-10s %14.4f %14.4f%s\n", k, g_var[j].name, rr.tx_allocs / per,
             rr.rx_allocs / per, g_var[j].per_write == 1 ? "  (per write)" : "");
    }
  printf("(each round also carries the end marker and the answer: 2 messages more)\n\n");
}

/* ---- Memory per open channel ---- */

static long rss_kb(void) {
  long pages = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL || fscanf(f, "%ld %ld", &pages, &rss) != 2)
    rss = -1;
  if (f)
    fclose(f);
  return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static long slab_kb(void) {
  char line[256];
  long v = -1;
  FILE *f = fopen("/proc/meminfo", "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Slab: %ld kB", &v) == 1)
      break;
  fclose(f);
  return v;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

typedef struct {
  long rss, slab;
  uint64_t allocs, bytes;
  int fds;
} snap_t;

static void snap(snap_t *s) {
  s->rss = rss_kb();
  s->slab = slab_kb();
  s->allocs = allocs_now();
  s->bytes = __atomic_load_n(&g_alloc_bytes, __ATOMIC_RELAXED);
  s->fds = count_fds();
}

static void print_delta(const char *what, const snap_t *a, const snap_t *b, int chans) {
  printf("%-34s %8.2f %10.1f %10.0f %10.0f %12.0f\n", what, (double)(b->fds - a->fds) / chans,
         (double)(b->allocs - a->allocs) / chans, (double)(b->bytes - a->bytes) / chans,
         (double)(b->rss - a->rss) * 1024 / chans, (double)(b->slab - a->slab) * 1024 / chans);
}

/* Runs in a child of its own, so that nothing else moves its numbers. */
static void memory_child(void) {
  sockpass_chan_t **ch = calloc((size_t)g_pairs * 2, sizeof *ch);
  int *raw = calloc((size_t)g_pairs * 2, sizeof *raw);
  snap_t s0, s1, s2, s3;
  int i, rc, chans = g_pairs * 2;
  if (ch == NULL || raw == NULL)
    _exit(1);
  printf("%-34s %8s %10s %10s %10s %12s\n", "per channel (one end of a pair)", "fds", "allocs",
         "heap B", "RSS B", "kernel slab B");
  snap(&s0);
  for (i = 0; i < g_pairs; i++)
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, raw + 2 * i) < 0)
      die("socketpair");
  snap(&s1);
  print_delta("raw socketpair(SOCK_SEQPACKET)", &s0, &s1, chans);
  for (i = 0; i < chans; i++)
    close(raw[i]);
  usleep(200000); /* closed sockets are freed after an RCU grace period */
  snap(&s0);
  for (i = 0; i < g_pairs; i++)
    if ((rc = sockpass_pair(&ch[2 * i], &ch[2 * i + 1])) < 0)
      die_sp("sockpass_pair", rc);
  snap(&s2);
  print_delta("sockpass_pair, fresh", &s0, &s2, chans);
  /* A channel makes its wake-up descriptor on its first wait or cancel. */
  for (i = 0; i < chans; i++) {
    sockpass_cancel(ch[i]);
    sockpass_cancel_clear(ch[i]);
  }
  snap(&s3);
  print_delta("sockpass_pair, after a first wait", &s0, &s3, chans);
  print_delta("  (the wait's part alone)", &s2, &s3, chans);
  printf("(kernel slab: /proc/meminfo Slab, machine-wide, so other work on the machine\n"
         " moves it; heap B: bytes asked of malloc; RSS: this process)\n\n");
  _exit(0);
}

static void memory(void) {
  pid_t pid;
  int st;
  printf("== Memory per open channel: %d pairs (%d channels) ==\n", g_pairs, 2 * g_pairs);
  fflush(NULL);
  pid = fork();
  if (pid < 0)
    die("fork");
  if (pid == 0)
    memory_child();
  waitpid(pid, &st, 0);
}

/* ---- One variant alone, for system call counts (strace -c -f, perf) ---- */

static int g_msgs = 20000;

static void single(const char *mode) {
  int j, i;
  round_t rr;
  for (j = 0; j < NV; j++)
    if (g_var[j].enabled)
      break;
  if (j == NV) {
    fprintf(stderr, "bench_handoff: --mode %s needs one variant in --variants\n", mode);
    exit(2);
  }
  if (g_var[j].start(&g_var[j]) < 0)
    exit(1);
  pin(g_cpu_send);
  if (strcmp(mode, "send") == 0) {
    g_var[j].round(&g_var[j], g_ks[0], g_msgs, &rr);
    printf("%s: %d messages of %d socket(s) in %.1f ms\n", g_var[j].name, g_msgs, g_ks[0],
           rr.ns / 1e6);
  } else if (g_var[j].ping != NULL) {
    uint64_t t0 = now_ns();
    for (i = 0; i < g_msgs; i++)
      g_var[j].ping(&g_var[j], &rr);
    printf("%s: %d round trips in %.1f ms\n", g_var[j].name, g_msgs, (now_ns() - t0) / 1e6);
  }
  g_var[j].stop(&g_var[j]);
}

/* ---- main ---- */

static void usage(void) {
  fprintf(stderr,
          "usage: bench_handoff [--mode all|throughput|latency|alloc|memory] [--rounds N]\n"
          "                     [--scale X] [--socks 1,16,64] [--variants raw,sockpass,libuv,python]\n"
          "                     [--pairs N] [--python PATH] [--pyscript PATH] [--no-pin]\n"
          "       bench_handoff --mode send|pingpong --variants NAME [--socks K] [--msgs N]\n"
          "         (one variant alone: N messages, or N round trips; for strace -c -f)\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *mode = "all", *variants = NULL;
  int i, pinning = 1, single_mode;
  struct rlimit rl;

  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--no-pin") == 0) {
      pinning = 0;
      continue;
    }
    if (v == NULL)
      usage();
    i++;
    if (strcmp(a, "--mode") == 0)
      mode = v;
    else if (strcmp(a, "--rounds") == 0)
      g_rounds = atoi(v);
    else if (strcmp(a, "--scale") == 0)
      g_scale = atof(v);
    else if (strcmp(a, "--variants") == 0)
      variants = v;
    else if (strcmp(a, "--msgs") == 0)
      g_msgs = atoi(v);
    else if (strcmp(a, "--pairs") == 0)
      g_pairs = atoi(v);
    else if (strcmp(a, "--python") == 0)
      g_python = v;
    else if (strcmp(a, "--pyscript") == 0)
      g_pyscript = v;
    else if (strcmp(a, "--socks") == 0) {
      g_nk = sscanf(v, "%d,%d,%d", &g_ks[0], &g_ks[1], &g_ks[2]);
      if (g_nk < 1)
        usage();
    } else
      usage();
  }
  if (g_rounds < 1 || g_rounds > MAX_ROUNDS || g_scale <= 0 || g_pairs < 1)
    usage();
  for (i = 0; i < g_nk; i++)
    if (g_ks[i] < 1 || g_ks[i] > MAX_K)
      usage();
  single_mode = strcmp(mode, "send") == 0 || strcmp(mode, "pingpong") == 0;
  if (variants != NULL)
    for (i = 0; i < NV; i++)
      if ((i != V_RAW || single_mode) && !has_word(variants, g_var[i].name))
        g_var[i].enabled = 0; /* raw is the floor: always measured */

  signal(SIGPIPE, SIG_IGN);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (pinning)
    choose_cpus();

  if (single_mode) {
    make_pool();
    single(mode);
    return 0;
  }
  printf("sockpass %s; bench_handoff, mode %s\n\n", sockpass_version_string(), mode);
  if (strcmp(mode, "memory") == 0 || strcmp(mode, "all") == 0)
    memory();
  make_pool();
  if (strcmp(mode, "memory") != 0) {
    start_all();
    pin(g_cpu_send);
    if (strcmp(mode, "throughput") == 0 || strcmp(mode, "all") == 0)
      throughput();
    if (strcmp(mode, "latency") == 0 || strcmp(mode, "all") == 0)
      latency();
    if (strcmp(mode, "alloc") == 0 || strcmp(mode, "all") == 0)
      allocs();
    stop_all();
  }
  return 0;
}

#endif /* POSIX */
