/* SPDX-License-Identifier: MIT */
/*
 * uv-prefork: a libuv server whose dispatcher accepts TCP connections on its
 * loop and hands each one to one of N worker processes over sockpass_uv
 * channels; each worker serves its connections on a loop of its own.
 *
 *   uv-prefork --demo [--workers N] [--conns M]
 *       dispatcher on 127.0.0.1 (a free port), N workers (default 3), and a
 *       loopback client of its own that makes M connections (default 60),
 *       checks every answer, prints the counts per worker and PASS or FAIL.
 *   uv-prefork --listen PORT [--workers N]
 *       the same server on 127.0.0.1:PORT until Ctrl+C / SIGINT.
 *   uv-prefork --worker
 *       (started by the dispatcher) serve the connections that arrive on the
 *       channel end sockpass_spawn gave.
 *
 * The protocol: the client sends one line, the worker answers
 * "<worker pid> <the line upper-cased>\n" and closes.
 */
#include <sockpass_uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/time.h>
#include <unistd.h>
#endif
#ifndef _WIN32
#include <sys/time.h>
#include <unistd.h>
#endif

#define MAX_WORKERS 16

static uv_loop_t *loop;

/* ---------------------------------------------------------------- worker */

typedef struct {
  uv_tcp_t tcp;
  char buf[256];
  size_t have;
  uv_write_t w;
  char out[300];
} conn_t;

static void conn_closed(uv_handle_t *h) { free(h->data); }

static void conn_written(uv_write_t *w, int status) {
  conn_t *c = w->data;
  (void)status;
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  conn_t *c = h->data;
  (void)hint;
  *b = uv_buf_init(c->buf + c->have, (unsigned int)(sizeof c->buf - 1 - c->have));
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn_t *c = s->data;
  char *nl;
  size_t i, len;
  uv_buf_t out;
  (void)b;
  if (n < 0 || (n > 0 && c->have + (size_t)n >= sizeof c->buf - 1)) {
    uv_close((uv_handle_t *)s, conn_closed);
    return;
  }
  c->have += (size_t)n;
  c->buf[c->have] = '\0';
  if ((nl = strchr(c->buf, '\n')) == NULL)
    return; /* the line is not complete yet */
  uv_read_stop(s);
  len = (size_t)(nl - c->buf);
  for (i = 0; i < len; i++)
    if (c->buf[i] >= 'a' && c->buf[i] <= 'z')
      c->buf[i] = (char)(c->buf[i] - 'a' + 'A');
  snprintf(c->out, sizeof c->out, "%ld %.*s\n", (long)uv_os_getpid(), (int)len, c->buf);
  out = uv_buf_init(c->out, (unsigned int)strlen(c->out));
  c->w.data = c;
  if (uv_write(&c->w, s, &out, 1, conn_written) != 0)
    uv_close((uv_handle_t *)s, conn_closed);
}

/* A connection arrived from the dispatcher: it is ours, as a uv_tcp_t. */
static void worker_recv(sockpass_uv_chan_t *ch, int status, sockpass_sock_t *socks, size_t n,
                        const void *data, size_t len) {
  size_t i;
  (void)data;
  (void)len;
  if (status < 0) {
    if (status != SOCKPASS_EOF)
      fprintf(stderr, "worker %ld: %s\n", (long)uv_os_getpid(), sockpass_strerror(status));
    if (status != SOCKPASS_ETRUNC && status != SOCKPASS_EMFILE)
      sockpass_uv_close(ch, NULL); /* the dispatcher is gone: stop */
    return;
  }
  for (i = 0; i < n; i++) {
    conn_t *c = calloc(1, sizeof *c);
    if (c == NULL || sockpass_uv_tcp_open(loop, &c->tcp, socks[i]) != 0) {
      sockpass_close_sock(socks[i]);
      free(c);
      continue;
    }
    c->tcp.data = c;
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read) != 0)
      uv_close((uv_handle_t *)&c->tcp, conn_closed);
  }
}

static int worker_main(void) {
  sockpass_chan_t *chan;
  sockpass_uv_chan_t *uc;
  int rc = sockpass_inherited_chan(&chan);
  if (rc != 0) {
    fprintf(stderr, "worker: no channel from the dispatcher: %s\n", sockpass_strerror(rc));
    return 1;
  }
  loop = uv_default_loop();
  if ((rc = sockpass_uv_open(loop, chan, &uc)) != 0 ||
      (rc = sockpass_uv_recv_start(uc, worker_recv)) != 0) {
    fprintf(stderr, "worker: %s\n", sockpass_strerror(rc));
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return 0;
}

/* ------------------------------------------------------------ dispatcher */

static sockpass_uv_chan_t *workers[MAX_WORKERS];
static sockpass_proc_t *procs[MAX_WORKERS];
static int nworkers = 3, next_worker, handed, failed_handoffs;
static uv_tcp_t server;
static char self_path[4096];

static void tcp_free(uv_handle_t *h) { free(h); }

/* The worker has its copy now (or the send failed): ours goes. */
static void handed_over(sockpass_uv_chan_t *ch, int status, void *arg) {
  (void)ch;
  if (status == 0)
    handed++;
  else
    failed_handoffs++;
  uv_close((uv_handle_t *)arg, tcp_free);
}

static void on_connection(uv_stream_t *srv, int status) {
  uv_tcp_t *c;
  sockpass_sock_t s;
  if (status != 0)
    return;
  c = malloc(sizeof *c);
  if (c == NULL || uv_tcp_init(loop, c) != 0) {
    free(c);
    return;
  }
  if (uv_accept(srv, (uv_stream_t *)c) != 0 || sockpass_uv_handle_sock((uv_handle_t *)c, &s) != 0 ||
      sockpass_uv_send(workers[next_worker], &s, 1, "c", 1, handed_over, c) != 0) {
    failed_handoffs++;
    uv_close((uv_handle_t *)c, tcp_free);
    return;
  }
  next_worker = (next_worker + 1) % nworkers;
}

static int start_workers(void) {
  int i, rc;
  size_t n = sizeof self_path;
  if (uv_exepath(self_path, &n) != 0)
    return SOCKPASS_ENOENT;
  for (i = 0; i < nworkers; i++) {
    sockpass_chan_t *mine, *theirs;
    sockpass_spawn_opts_t o;
    const char *const argv[] = {self_path, "--worker", NULL};
    if ((rc = sockpass_pair(&mine, &theirs)) != 0)
      return rc;
    sockpass_spawn_opts_init(&o);
    o.chan = theirs; /* the worker's from now on */
    if ((rc = sockpass_spawn(self_path, argv, &o, &procs[i])) != 0) {
      sockpass_close(mine);
      sockpass_close(theirs);
      return rc;
    }
    if ((rc = sockpass_uv_open(loop, mine, &workers[i])) != 0)
      return rc;
  }
  return 0;
}

static void stop_workers(void) {
  int i, code;
  for (i = 0; i < nworkers; i++) {
    if (workers[i] != NULL)
      sockpass_uv_close(workers[i], NULL); /* the worker reads EOF and ends */
    workers[i] = NULL;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  for (i = 0; i < nworkers; i++) {
    if (procs[i] == NULL)
      continue;
    if (sockpass_proc_wait(procs[i], 10000, &code) != 0) {
      sockpass_proc_kill(procs[i]);
      sockpass_proc_wait(procs[i], SOCKPASS_WAIT_FOREVER, &code);
    }
    sockpass_proc_free(procs[i]);
    procs[i] = NULL;
  }
}

/* ---------------------------------------------------------------- client */

typedef struct {
  int port, conns;
  int ok, bad;
  long pids[MAX_WORKERS];
  int per[MAX_WORKERS];
  uv_async_t done;
} client_t;

static int client_one(client_t *cl, int i) {
  uv_os_sock_t s;
  struct sockaddr_in a;
  char line[64], want[64], got[128];
  size_t have = 0;
  long pid;
  int k, r;
#ifdef _WIN32
  DWORD tmo = 10000;
#else
  struct timeval tmo = {10, 0};
#endif
  s = socket(AF_INET, SOCK_STREAM, 0);
  uv_ip4_addr("127.0.0.1", cl->port, &a);
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&tmo, sizeof tmo);
  if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
#ifdef _WIN32
    closesocket(s);
#else
    close(s);
#endif
    return -1;
  }
  snprintf(line, sizeof line, "hello %d\n", i);
  snprintf(want, sizeof want, "HELLO %d", i);
  send(s, line, (int)strlen(line), 0);
  while (have < sizeof got - 1 && (r = (int)recv(s, got + have, (int)(sizeof got - 1 - have), 0)) > 0)
    have += (size_t)r;
#ifdef _WIN32
  closesocket(s);
#else
  close(s);
#endif
  got[have] = '\0';
  if (sscanf(got, "%ld", &pid) != 1 || strstr(got, want) == NULL)
    return -1;
  for (k = 0; k < MAX_WORKERS && cl->pids[k] != 0 && cl->pids[k] != pid; k++)
    ;
  if (k == MAX_WORKERS)
    return -1;
  cl->pids[k] = pid;
  cl->per[k]++;
  return 0;
}

static void client_thread(void *arg) {
  client_t *cl = arg;
  int i;
  for (i = 0; i < cl->conns; i++) {
    if (client_one(cl, i) == 0)
      cl->ok++;
    else
      cl->bad++;
  }
  uv_async_send(&cl->done);
}

static void client_done(uv_async_t *a) {
  uv_close((uv_handle_t *)a, NULL);
  uv_close((uv_handle_t *)&server, NULL);
}

static uv_signal_t sigint;

static void on_sigint(uv_signal_t *s, int signum) {
  (void)signum;
  uv_close((uv_handle_t *)s, NULL);
  uv_close((uv_handle_t *)&server, NULL);
}

int main(int argc, char **argv) {
  int i, demo = 0, port = 0, conns = 60, rc;
  struct sockaddr_in addr;
  client_t cl;
  uv_thread_t th;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--worker") == 0)
      return worker_main();
    if (strcmp(argv[i], "--demo") == 0)
      demo = 1;
    else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
      port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
      nworkers = atoi(argv[++i]);
    else if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
      conns = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: uv-prefork --demo [--workers N] [--conns M] | --listen PORT "
                      "[--workers N]\n");
      return 2;
    }
  }
  if ((!demo && port <= 0) || nworkers < 1 || nworkers > MAX_WORKERS || conns < 1) {
    fprintf(stderr, "uv-prefork: give --demo or --listen PORT; 1 to %d workers\n", MAX_WORKERS);
    return 2;
  }
  loop = uv_default_loop();
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", port, &addr);
  if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&server, 128, on_connection) != 0) {
    fprintf(stderr, "uv-prefork: cannot listen on 127.0.0.1:%d\n", port);
    return 3;
  }
  if ((rc = start_workers()) != 0) {
    fprintf(stderr, "uv-prefork: starting workers: %s\n", sockpass_strerror(rc));
    return 1;
  }
  if (!demo) {
    printf("uv-prefork: %d workers serving 127.0.0.1:%d (Ctrl+C stops)\n", nworkers, port);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigint, on_sigint, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    stop_workers();
    return 0;
  }
  {
    int len = sizeof addr;
    uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len);
  }
  memset(&cl, 0, sizeof cl);
  cl.port = ntohs(addr.sin_port);
  cl.conns = conns;
  uv_async_init(loop, &cl.done, client_done);
  printf("uv-prefork: dispatcher on 127.0.0.1:%d, %d workers, %d connections\n", cl.port,
         nworkers, conns);
  uv_thread_create(&th, client_thread, &cl);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_thread_join(&th);
  stop_workers();
  for (i = 0; i < MAX_WORKERS && cl.pids[i] != 0; i++)
    printf("  worker %ld served %d\n", cl.pids[i], cl.per[i]);
  printf("%d of %d connections answered correctly by %d workers; %d handed over, %d hand-overs "
         "failed: %s\n",
         cl.ok, conns, i, handed, failed_handoffs,
         cl.ok == conns && i == nworkers && failed_handoffs == 0 ? "PASS" : "FAIL");
  uv_loop_close(loop);
  return cl.ok == conns && i == nworkers && failed_handoffs == 0 ? 0 : 1;
}
