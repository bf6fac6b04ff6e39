/* SPDX-License-Identifier: MIT */
/*
 * bench_prefork_load: connections per second served by examples/prefork,
 * end to end over loopback, in its two modes:
 *
 *   inherited  every worker accepts on the listener it inherited;
 *   dispatch   the parent accepts and hands each connection to a worker
 *              with sockpass_send, the worker takes it with sockpass_recv.
 *
 * The program starts `prefork --serve --port 0 --workers N` once per mode
 * (the kernel picks a free port, prefork prints it), waits until each one
 * answers, then runs its own load client against them in alternating rounds
 * (inherited, dispatch, inherited, ...), so that a drift of the machine
 * touches both modes alike. A round: C threads, each in a loop for D seconds
 * opening a connection to 127.0.0.1:PORT, sending one line, reading the reply
 * up to the server's close, checking it ("<line> pid=<worker pid>"), closing.
 * Latency is that whole cycle, socket() to close(). At the end both servers
 * are stopped by their pid (SIGTERM; their workers see their channel close
 * and exit) and a table gives, per mode, the median over the rounds of the
 * connections per second, of the p50 and of the p99 latency, and the errors.
 *
 *   bench_prefork_load [--prefork PATH] [--workers N] [--concurrency C]
 *                      [--duration SECONDS] [--rounds R] [--warmup SECONDS]
 *   bench_prefork_load --client PORT [...]   the client alone, against a
 *                      server already listening on 127.0.0.1:PORT
 *
 * Linux and other POSIX systems; a benchmark, never a ctest test.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#ifndef SP_BENCH_PREFORK
#define SP_BENCH_PREFORK "" /* no built prefork known: --prefork is required */
#endif

#define MAX_THREADS 256
#define IO_TIMEOUT_MS 2000 /* the longest one connect, send or recv may take */
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000
#define MAX_ROUNDS 101
#define MAX_WORKERS 16 /* prefork's own limit */

enum { MODE_INHERITED, MODE_DISPATCH, NMODES };
static const char *const mode_name[NMODES] = {"inherited", "dispatch"};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* ---- The load client ---- */

struct client {
  pthread_t thread;
  int id;
  unsigned short port;
  uint64_t deadline; /* no connection is started after it */
  /* results */
  uint64_t *lat; /* ns per successful connection */
  size_t nlat, cap;
  long err_connect, err_io, err_reply;
  long pid[MAX_WORKERS], served[MAX_WORKERS]; /* answers per worker pid */
  int npid;
};

static void set_timeouts(int s) {
  struct timeval tv = {IO_TIMEOUT_MS / 1000, (IO_TIMEOUT_MS % 1000) * 1000};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* Linux: bounds connect too */
}

/* One connection: send "<req>\n", read to the server's close into reply.
 * Returns 0, or 1 (connect failed), 2 (send/recv failed), 3 (wrong reply). */
static int one_connection(unsigned short port, const char *req, long *pid_out) {
  struct sockaddr_in a;
  char line[64], reply[256];
  size_t got = 0, rl = strlen(req);
  int s, n, len, rc = 0;
  long pid = 0;

  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
    return 1;
  set_timeouts(s);
  if (connect(s, (const struct sockaddr *)&a, sizeof a) != 0) {
    close(s);
    return 1;
  }
  len = snprintf(line, sizeof line, "%s\n", req);
  if (send(s, line, (size_t)len, MSG_NOSIGNAL) != len) {
    close(s);
    return 2;
  }
  while (got < sizeof reply - 1 && (n = (int)recv(s, reply + got, sizeof reply - 1 - got, 0)) > 0)
    got += (size_t)n;
  if (n < 0 && got == 0)
    rc = 2;
  close(s);
  if (rc != 0)
    return rc;
  reply[got] = '\0';
  /* Exactly one line: the request, " pid=", the worker's pid. */
  if (got < rl + 7 || memcmp(reply, req, rl) != 0 || sscanf(reply + rl, " pid=%ld", &pid) != 1 ||
      pid <= 0 || reply[got - 1] != '\n' || strchr(reply, '\n') != reply + got - 1)
    return 3;
  if (pid_out != NULL)
    *pid_out = pid;
  return 0;
}

static void *client_thread(void *arg) {
  struct client *c = arg;
  unsigned long seq = 0;
  char req[48];

  while (now_ns() < c->deadline) {
    uint64_t t0 = now_ns(), t1;
    long pid = 0;
    int rc, j;
    snprintf(req, sizeof req, "load %d.%lu", c->id, ++seq);
    rc = one_connection(c->port, req, &pid);
    t1 = now_ns();
    if (rc == 1) {
      c->err_connect++;
      sleep_ms(1); /* a refused or timed out connect: do not spin on it */
    } else if (rc == 2) {
      c->err_io++;
    } else if (rc == 3) {
      c->err_reply++;
    } else {
      if (c->nlat == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4096;
        uint64_t *p = realloc(c->lat, cap * sizeof *p);
        if (p == NULL)
          break; /* counted as far as we got */
        c->lat = p;
        c->cap = cap;
      }
      c->lat[c->nlat++] = t1 - t0;
      for (j = 0; j < c->npid && c->pid[j] != pid; j++)
        ;
      if (j == c->npid && j < MAX_WORKERS)
        c->pid[c->npid++] = pid;
      if (j < MAX_WORKERS)
        c->served[j]++;
    }
  }
  return NULL;
}

struct round_result {
  double conn_per_s, p50_ms, p99_ms;
  double top_share; /* the busiest worker's share of the answers, in % */
  int workers_seen;
  long ok, errors, err_connect, err_io, err_reply;
};

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t percentile(const uint64_t *v, size_t n, double p) {
  size_t rank;
  if (n == 0)
    return 0;
  rank = (size_t)(p / 100.0 * (double)n + 0.999999);
  if (rank < 1)
    rank = 1;
  return v[(rank > n ? n : rank) - 1];
}

/* One round: conc threads for duration_ms against 127.0.0.1:port. */
static int run_round(unsigned short port, int conc, int duration_ms, struct round_result *r) {
  struct client *c = calloc((size_t)conc, sizeof *c);
  uint64_t start, elapsed, *all;
  size_t total = 0, k;
  long pid[MAX_WORKERS], served[MAX_WORKERS], top = 0;
  int i, j, n, npid = 0, started = 0;

  memset(r, 0, sizeof *r);
  if (c == NULL)
    return -1;
  start = now_ns();
  for (i = 0; i < conc; i++) {
    c[i].id = i;
    c[i].port = port;
    c[i].deadline = start + (uint64_t)duration_ms * 1000000u;
    if (pthread_create(&c[i].thread, NULL, client_thread, &c[i]) != 0) {
      fprintf(stderr, "bench_prefork_load: pthread_create failed\n");
      break;
    }
    started++;
  }
  for (i = 0; i < started; i++)
    pthread_join(c[i].thread, NULL);
  elapsed = now_ns() - start; /* includes the connections still open at the deadline */
  for (i = 0; i < started; i++)
    total += c[i].nlat;
  all = malloc((total ? total : 1) * sizeof *all);
  for (i = 0, k = 0; i < started; i++) {
    if (all != NULL)
      memcpy(all + k, c[i].lat, c[i].nlat * sizeof *all);
    k += c[i].nlat;
    r->err_connect += c[i].err_connect;
    r->err_io += c[i].err_io;
    r->err_reply += c[i].err_reply;
    for (j = 0; j < c[i].npid; j++) {
      for (n = 0; n < npid && pid[n] != c[i].pid[j]; n++)
        ;
      if (n == npid && n < MAX_WORKERS) {
        pid[npid] = c[i].pid[j];
        served[npid++] = 0;
      }
      if (n < MAX_WORKERS)
        served[n] += c[i].served[j];
    }
    free(c[i].lat);
  }
  free(c);
  if (all == NULL || started < conc) {
    free(all);
    return -1;
  }
  qsort(all, total, sizeof *all, cmp_u64);
  r->ok = (long)total;
  r->errors = r->err_connect + r->err_io + r->err_reply;
  for (n = 0; n < npid; n++)
    top = served[n] > top ? served[n] : top;
  r->workers_seen = npid;
  r->top_share = total ? 100.0 * (double)top / (double)total : 0;
  r->conn_per_s = (double)total / ((double)elapsed / 1e9);
  r->p50_ms = (double)percentile(all, total, 50) / 1e6;
  r->p99_ms = (double)percentile(all, total, 99) / 1e6;
  free(all);
  return 0;
}

/* ---- The servers under test ---- */

struct server {
  int mode;
  pid_t pid; /* prefork's parent process, our child */
  int out;   /* read end of its stdout */
  unsigned short port;
};

/* Start `prefork --serve --port 0 --workers N [--dispatch]` and read the port
 * it prints. 0 on success. */
static int start_server(struct server *sv, const char *prefork, int mode, int workers) {
  char nw[16], buf[512];
  const char *argv[9];
  int fds[2], argc = 0;
  size_t got = 0;
  uint64_t deadline = now_ns() + (uint64_t)START_TIMEOUT_MS * 1000000u;

  sv->mode = mode;
  sv->pid = -1;
  sv->out = -1;
  snprintf(nw, sizeof nw, "%d", workers);
  argv[argc++] = prefork;
  argv[argc++] = "--serve";
  argv[argc++] = "--port";
  argv[argc++] = "0";
  argv[argc++] = "--workers";
  argv[argc++] = nw;
  if (mode == MODE_DISPATCH)
    argv[argc++] = "--dispatch";
  argv[argc] = NULL;
  if (pipe2(fds, O_CLOEXEC) != 0) {
    perror("bench_prefork_load: pipe");
    return -1;
  }
  sv->pid = fork();
  if (sv->pid < 0) {
    perror("bench_prefork_load: fork");
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (sv->pid == 0) {
    dup2(fds[1], STDOUT_FILENO); /* dup2 clears FD_CLOEXEC on the copy */
    execv(prefork, (char *const *)argv);
    fprintf(stderr, "bench_prefork_load: exec %s: %s\n", prefork, strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  sv->out = fds[0];
  /* Its first line: "prefork: listening on 127.0.0.1:PORT, ..." */
  while (got < sizeof buf - 1) {
    struct pollfd p = {sv->out, POLLIN, 0};
    int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
    const char *at;
    ssize_t n;
    unsigned port;
    if (left <= 0 || poll(&p, 1, (int)left) <= 0)
      break;
    if ((n = read(sv->out, buf + got, sizeof buf - 1 - got)) <= 0)
      break;
    got += (size_t)n;
    buf[got] = '\0';
    if ((at = strstr(buf, "listening on 127.0.0.1:")) != NULL && strchr(at, '\n') != NULL &&
        sscanf(at, "listening on 127.0.0.1:%u", &port) == 1 && port > 0 && port < 65536) {
      sv->port = (unsigned short)port;
      return 0;
    }
  }
  fprintf(stderr, "bench_prefork_load: %s (%s) did not report its port\n", prefork,
          mode_name[mode]);
  return -1;
}

/* Until a request is answered, for at most START_TIMEOUT_MS. */
static int wait_answering(unsigned short port) {
  uint64_t deadline = now_ns() + (uint64_t)START_TIMEOUT_MS * 1000000u;
  do {
    if (one_connection(port, "probe", NULL) == 0)
      return 0;
    sleep_ms(20);
  } while (now_ns() < deadline);
  fprintf(stderr, "bench_prefork_load: nothing answers on 127.0.0.1:%u\n", (unsigned)port);
  return -1;
}

/* SIGTERM to our child, wait for it; SIGKILL only if it does not go. Its
 * workers see their channel to it close and exit by themselves. */
static int stop_server(struct server *sv) {
  uint64_t deadline = now_ns() + (uint64_t)STOP_TIMEOUT_MS * 1000000u;
  int status = 0, rc = -1;
  pid_t w = 0;

  if (sv->pid <= 0)
    return 0;
  kill(sv->pid, SIGTERM);
  while ((w = waitpid(sv->pid, &status, WNOHANG)) == 0 && now_ns() < deadline)
    sleep_ms(10);
  if (w == sv->pid) {
    rc = WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM ? 0 : -1;
  } else {
    fprintf(stderr, "bench_prefork_load: prefork %ld ignores SIGTERM, killing it\n", (long)sv->pid);
    kill(sv->pid, SIGKILL);
    waitpid(sv->pid, &status, 0);
  }
  if (sv->out >= 0)
    close(sv->out);
  sv->pid = -1;
  sv->out = -1;
  return rc;
}

/* The workers, orphaned when their parent went, were handed to us (we are a
 * subreaper on Linux): wait for all of them, for a bounded time. Returns how
 * many were still running at the end. */
static int reap_workers(int *reaped) {
  uint64_t deadline = now_ns() + (uint64_t)STOP_TIMEOUT_MS * 1000000u;
  *reaped = 0;
  for (;;) {
    int status;
    pid_t w = waitpid(-1, &status, WNOHANG);
    if (w > 0) {
      (*reaped)++;
      continue;
    }
    if (w < 0 && errno == ECHILD)
      return 0;
    if (now_ns() >= deadline)
      return 1; /* at least one is still running */
    sleep_ms(10);
  }
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void print_round(const char *what, int round, const struct round_result *r) {
  printf("%-9s round %2d: %7.0f conn/s  p50 %6.3f ms  p99 %6.3f ms  ok %7ld  busiest of %d "
         "workers %4.1f%%  errors %ld",
         what, round, r->conn_per_s, r->p50_ms, r->p99_ms, r->ok, r->workers_seen, r->top_share,
         r->errors);
  if (r->errors)
    printf(" (connect %ld, io %ld, reply %ld)", r->err_connect, r->err_io, r->err_reply);
  printf("\n");
  fflush(stdout);
}

static void usage(void) {
  fprintf(
      stderr,
      "usage: bench_prefork_load [--prefork PATH] [--workers N] [--concurrency C]\n"
      "                          [--duration SECONDS] [--rounds R] [--warmup SECONDS]\n"
      "       bench_prefork_load --client PORT [--concurrency C] [--duration S] [--rounds R]\n");
}

int main(int argc, char **argv) {
  const char *prefork = SP_BENCH_PREFORK;
  int workers = 4, conc = 16, rounds = 5, client_port = 0, i, m, rc = 0;
  double duration = 3.0, warmup = 1.0;
  struct server sv[NMODES];
  struct round_result res[NMODES][MAX_ROUNDS];
  int started = 0;

  for (i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL)
      break;
    if (strcmp(o, "--prefork") == 0)
      prefork = v;
    else if (strcmp(o, "--workers") == 0)
      workers = atoi(v);
    else if (strcmp(o, "--concurrency") == 0)
      conc = atoi(v);
    else if (strcmp(o, "--duration") == 0)
      duration = atof(v);
    else if (strcmp(o, "--rounds") == 0)
      rounds = atoi(v);
    else if (strcmp(o, "--warmup") == 0)
      warmup = atof(v);
    else if (strcmp(o, "--client") == 0)
      client_port = atoi(v);
    else
      break;
    i++;
  }
  if (i < argc || workers < 1 || workers > MAX_WORKERS || conc < 1 || conc > MAX_THREADS ||
      !(duration > 0 && duration <= 600) || rounds < 1 || rounds > MAX_ROUNDS ||
      !(warmup >= 0 && warmup <= 60) || client_port < 0 || client_port > 65535) {
    usage();
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  if (client_port > 0) { /* the client alone */
    for (i = 0; i < rounds; i++) {
      if (run_round((unsigned short)client_port, conc, (int)(duration * 1000), &res[0][i]) < 0)
        return 1;
      print_round("client", i + 1, &res[0][i]);
    }
    return 0;
  }
  if (prefork[0] == '\0' || access(prefork, X_OK) != 0) {
    fprintf(stderr, "bench_prefork_load: no prefork program%s%s: pass --prefork PATH\n",
            prefork[0] ? " at " : "", prefork);
    return 2;
  }
#ifdef __linux__
  /* Orphaned workers come to us rather than to pid 1, so that we can wait
   * for them to be gone at the end. */
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
#endif

  printf("prefork end to end: %s, %d workers, %d client threads, %.1f s x %d rounds per mode,"
         " %ld CPUs\n",
         prefork, workers, conc, duration, rounds, sysconf(_SC_NPROCESSORS_ONLN));
  for (m = 0; m < NMODES; m++) {
    if (start_server(&sv[m], prefork, m, workers) < 0 || wait_answering(sv[m].port) < 0) {
      rc = 1;
      started = m + 1;
      goto stop;
    }
    started = m + 1;
    printf("%-9s: prefork pid %ld on 127.0.0.1:%u\n", mode_name[m], (long)sv[m].pid,
           (unsigned)sv[m].port);
  }
  fflush(stdout);

  if (warmup > 0)
    for (m = 0; m < NMODES; m++) { /* not counted: page faults, first accepts, caches */
      struct round_result w;
      if (run_round(sv[m].port, conc, (int)(warmup * 1000), &w) < 0) {
        rc = 1;
        goto stop;
      }
    }
  for (i = 0; i < rounds; i++)
    for (m = 0; m < NMODES; m++) {
      if (run_round(sv[m].port, conc, (int)(duration * 1000), &res[m][i]) < 0) {
        rc = 1;
        goto stop;
      }
      print_round(mode_name[m], i + 1, &res[m][i]);
    }

  {
    double med[NMODES];
    printf("\n%-10s %10s %8s %8s %7s %9s  %s\n", "mode", "conn/s", "p50 ms", "p99 ms", "errors",
           "busiest", "conn/s min-max");
    for (m = 0; m < NMODES; m++) {
      double cps[MAX_ROUNDS], p50[MAX_ROUNDS], p99[MAX_ROUNDS], top[MAX_ROUNDS], lo, hi;
      long errors = 0;
      for (i = 0; i < rounds; i++) {
        cps[i] = res[m][i].conn_per_s;
        p50[i] = res[m][i].p50_ms;
        p99[i] = res[m][i].p99_ms;
        top[i] = res[m][i].top_share;
        errors += res[m][i].errors;
      }
      med[m] = median(cps, rounds); /* sorts cps */
      lo = cps[0];
      hi = cps[rounds - 1];
      printf("%-10s %10.0f %8.3f %8.3f %7ld %8.1f%%  %.0f-%.0f\n", mode_name[m], med[m],
             median(p50, rounds), median(p99, rounds), errors, median(top, rounds), lo, hi);
      if (errors > 0)
        rc = 1;
    }
    printf("dispatch/inherited: %.2f (median conn/s; medians over %d rounds of %.1f s)\n",
           med[MODE_INHERITED] > 0 ? med[MODE_DISPATCH] / med[MODE_INHERITED] : 0.0, rounds,
           duration);
  }

stop:
  for (m = 0; m < started; m++)
    if (stop_server(&sv[m]) < 0) {
      fprintf(stderr, "bench_prefork_load: %s server did not stop on SIGTERM\n", mode_name[m]);
      rc = 1;
    }
  {
    int reaped = 0, left = reap_workers(&reaped);
    if (left) {
      fprintf(stderr, "bench_prefork_load: workers still running %d s after their parent\n",
              STOP_TIMEOUT_MS / 1000);
      rc = 1;
    }
#ifdef __linux__
    else
      printf("stopped: %d prefork parents by SIGTERM, %d workers exited after them\n", started,
             reaped);
#endif
  }
  fflush(stdout);
  return rc;
}
