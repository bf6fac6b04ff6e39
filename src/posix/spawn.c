/* SPDX-License-Identifier: MIT */
/* POSIX: start a program with a chosen list of sockets (fork + execve) and,
 * in the started program, read what the starter gave (systemd's
 * LISTEN_FDS protocol). See docs/inherit.md. */
#include "sockpass_config.h"
#include "platform.h"
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#ifdef __linux__
#include <sys/syscall.h>
#endif

extern char **environ;

struct sockpass_proc {
  pid_t pid;
  int pidfd; /* Linux: for waits with a timeout; -1 elsewhere */
  int done;
  int code;
};

/* The variables sockpass_spawn sets and sockpass_inherited reads. */
static const char *const sp_vars[] = {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
                                      "SOCKPASS_CHANNEL"};
#define SP_NVARS (sizeof sp_vars / sizeof sp_vars[0])

static int sp_is_var(const char *entry) {
  size_t i, n;
  for (i = 0; i < SP_NVARS; i++) {
    n = strlen(sp_vars[i]);
    if (strncmp(entry, sp_vars[i], n) == 0 && entry[n] == '=')
      return 1;
  }
  return 0;
}

/* The program to run: file itself when it names a directory, else the first
 * executable PATH entry, as execvp would pick it. Resolved before fork, so
 * the child only calls execve and a missing program is reported at once. */
static int sp_resolve(const char *file, char **out) {
  const char *path, *p, *end;
  size_t flen = strlen(file), dlen;
  int saw_eacces = 0;
  char *buf;
  struct stat st;
  if (strchr(file, '/') != NULL) {
    if (access(file, X_OK) < 0)
      return sp__translate(errno);
    *out = strdup(file);
    return *out != NULL ? 0 : SOCKPASS_ENOMEM;
  }
  path = getenv("PATH");
  if (path == NULL || path[0] == '\0')
    path = "/usr/local/bin:/usr/bin:/bin";
  for (p = path;; p = end + 1) {
    end = strchr(p, ':');
    if (end == NULL)
      end = p + strlen(p);
    dlen = (size_t)(end - p);
    buf = malloc(dlen + flen + 3);
    if (buf == NULL)
      return SOCKPASS_ENOMEM;
    if (dlen == 0) /* an empty entry means the current directory */
      memcpy(buf, ".", (dlen = 1));
    else
      memcpy(buf, p, dlen);
    buf[dlen] = '/';
    memcpy(buf + dlen + 1, file, flen + 1);
    if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(buf, X_OK) == 0) {
        *out = buf;
        return 0;
      }
      saw_eacces = 1;
    }
    free(buf);
    if (*end == '\0')
      break;
  }
  return saw_eacces ? SOCKPASS_EACCES : SOCKPASS_ENOENT;
}

/* The child's environment: this process's, without stale copies of the
 * protocol variables, plus the new ones. LISTEN_PID is written by the child
 * into pidvar once it knows its pid. */
typedef struct {
  char **envp;
  char *pidvar; /* "LISTEN_PID=" + room for the digits, or NULL */
  char *fdsvar, *namesvar, *chanvar;
} sp_env_t;

static void sp_env_free(sp_env_t *e) {
  free(e->envp);
  free(e->pidvar);
  free(e->fdsvar);
  free(e->namesvar);
  free(e->chanvar);
}

static char *sp_concat(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 1);
  if (s != NULL) {
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
  }
  return s;
}

static int sp_env_build(sp_env_t *e, size_t nsocks, const char *names, int chan_fd) {
  size_t n = 0, i, k = 0;
  char num[24];
  memset(e, 0, sizeof *e);
  while (environ != NULL && environ[n] != NULL)
    n++;
  e->envp = calloc(n + 5, sizeof *e->envp);
  if (e->envp == NULL)
    return SOCKPASS_ENOMEM;
  for (i = 0; i < n; i++)
    if (!sp_is_var(environ[i]))
      e->envp[k++] = environ[i];
  if (nsocks == 0 && chan_fd < 0)
    return 0;
  snprintf(num, sizeof num, "%zu", nsocks);
  e->pidvar = calloc(1, sizeof "LISTEN_PID=" + 24);
  e->fdsvar = sp_concat("LISTEN_FDS=", num);
  if (e->pidvar == NULL || e->fdsvar == NULL)
    return SOCKPASS_ENOMEM;
  memcpy(e->pidvar, "LISTEN_PID=", sizeof "LISTEN_PID=");
  e->envp[k++] = e->pidvar;
  e->envp[k++] = e->fdsvar;
  if (names != NULL) {
    if ((e->namesvar = sp_concat("LISTEN_FDNAMES=", names)) == NULL)
      return SOCKPASS_ENOMEM;
    e->envp[k++] = e->namesvar;
  }
  if (chan_fd >= 0) {
    snprintf(num, sizeof num, "%d", chan_fd);
    if ((e->chanvar = sp_concat("SOCKPASS_CHANNEL=", num)) == NULL)
      return SOCKPASS_ENOMEM;
    e->envp[k++] = e->chanvar;
  }
  return 0;
}

/* Async-signal-safe decimal formatting, for the child. */
static void sp_put_pid(char *dst, long v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n > 0)
    *dst++ = tmp[--n];
  *dst = '\0';
}

/* Close every descriptor from lo to hi included. */
static void sp_close_range(int lo, int hi, int maxfd) {
  int fd;
  if (lo > hi)
    return;
#if defined(__linux__) && defined(SYS_close_range)
  if (syscall(SYS_close_range, (unsigned)lo, (unsigned)hi, 0u) == 0)
    return;
#endif
  if (hi > maxfd)
    hi = maxfd;
  for (fd = lo; fd <= hi; fd++)
    close(fd);
}

/* The child, between fork and execve: only async-signal-safe calls. The
 * sources are first moved above every target, so that placing one never
 * overwrites another; then everything that is not a target is closed. */
static void sp_child(const char *path, char *const *argv, sp_env_t *env,
                     const sockpass_spawn_opts_t *o, int chan_fd, int errfd, int maxfd,
                     pid_t parent) {
  int base = 3 + (int)o->nsocks + 1, top, fd, e, sig;
  int moved[SOCKPASS_MAX_SOCKS + 2];
  size_t i, n = o->nsocks;
  struct sigaction sa;
  sigset_t none;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &sa, NULL); /* fails harmlessly for the reserved ones */

  /* The error pipe first, at the lowest place above every target. */
  if ((errfd = fcntl(errfd, F_DUPFD_CLOEXEC, base)) < 0)
    _exit(127);
  top = errfd;
#ifdef __linux__
  if (o->flags & SOCKPASS_SPAWN_KILL_WITH_PARENT) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
      goto fail;
    /* The parent may have died before the line above took effect: then
     * nobody would send the signal, so end now. */
    if (getppid() != parent)
      _exit(127);
  }
#else
  (void)parent;
#endif
  for (i = 0; i < n; i++) {
    if ((moved[i] = fcntl(o->socks[i], F_DUPFD_CLOEXEC, base)) < 0)
      goto fail;
  }
  if (chan_fd >= 0 && (moved[n] = fcntl(chan_fd, F_DUPFD_CLOEXEC, base)) < 0)
    goto fail;
  if (o->stdio != SOCKPASS_INVALID_SOCK &&
      (moved[n + 1] = fcntl(o->stdio, F_DUPFD_CLOEXEC, base)) < 0)
    goto fail;
  /* dup2 clears close-on-exec on the new descriptor. */
  for (i = 0; i < n; i++)
    if (dup2(moved[i], 3 + (int)i) < 0)
      goto fail;
  if (chan_fd >= 0 && dup2(moved[n], 3 + (int)n) < 0)
    goto fail;
  if (o->stdio != SOCKPASS_INVALID_SOCK &&
      (dup2(moved[n + 1], 0) < 0 || dup2(moved[n + 1], 1) < 0))
    goto fail;
  /* Everything above the targets goes, except the error pipe. */
  fd = 3 + (int)n + (chan_fd >= 0 ? 1 : 0);
  sp_close_range(fd, top - 1, maxfd);
  sp_close_range(top + 1, INT_MAX, maxfd);
  if (env->pidvar != NULL)
    sp_put_pid(env->pidvar + sizeof "LISTEN_PID=" - 1, (long)getpid());
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execve(path, argv, env->envp);
fail:
  e = errno;
  while (write(errfd, &e, sizeof e) < 0 && errno == EINTR) {
  }
  _exit(127);
}

int sp__spawn(const char *file, const char *const *argv, const sockpass_spawn_opts_t *o,
              const char *names, sockpass_proc_t **out) {
  sp_env_t env;
  sockpass_proc_t *p = NULL;
  char *path = NULL;
  int chan_fd = o->chan != NULL ? sp__handle(o->chan) : -1;
  int pfd[2] = {-1, -1}, rc, e = 0, maxfd;
  size_t i;
  ssize_t r;
  pid_t pid, self = getpid();
  sigset_t all, old;
  long omax;

  memset(&env, 0, sizeof env);
#ifndef __linux__
  if (o->flags & SOCKPASS_SPAWN_KILL_WITH_PARENT)
    return SOCKPASS_ENOTSUP; /* no PR_SET_PDEATHSIG here */
#endif
  for (i = 0; i < o->nsocks; i++)
    if ((rc = sp__is_sock(o->socks[i])) < 0)
      return rc;
  if (o->stdio != SOCKPASS_INVALID_SOCK && (rc = sp__is_sock(o->stdio)) < 0)
    return rc;
  if ((rc = sp_resolve(file, &path)) < 0)
    return rc;
  rc = sp_env_build(&env, o->nsocks, names, chan_fd >= 0 ? 3 + (int)o->nsocks : -1);
  if (rc < 0)
    goto done;
  p = calloc(1, sizeof *p);
  if (p == NULL) {
    rc = SOCKPASS_ENOMEM;
    goto done;
  }
  p->pidfd = -1;
#ifdef SOCKPASS_HAVE_PIPE2
  rc = pipe2(pfd, O_CLOEXEC);
#else
  rc = pipe(pfd);
  if (rc == 0) {
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
  }
#endif
  if (rc < 0) {
    rc = sp__translate(errno);
    goto done;
  }
  omax = sysconf(_SC_OPEN_MAX);
  maxfd = omax > 0 && omax < INT_MAX ? (int)omax : 65536;

  /* No signal handler of this process may run in the child before exec. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid = fork();
  if (pid == 0)
    sp_child(path, (char *const *)argv, &env, o, chan_fd, pfd[1], maxfd, self);
  e = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(pfd[1]);
  if (pid < 0) {
    close(pfd[0]);
    rc = sp__translate(e);
    goto done;
  }
  /* EOF: execve succeeded (the pipe was close-on-exec). An int: it failed. */
  while ((r = read(pfd[0], &e, sizeof e)) < 0 && errno == EINTR) {
  }
  close(pfd[0]);
  if (r == (ssize_t)sizeof e) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    rc = sp__translate(e);
    goto done;
  }
  p->pid = pid;
#if defined(__linux__) && defined(SYS_pidfd_open)
  p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* -1 on old kernels: fine */
#endif
  if (o->chan != NULL)
    sp__close_quiet(o->chan);
  *out = p;
  p = NULL;
  rc = 0;
done:
  free(p);
  free(path);
  sp_env_free(&env);
  return rc;
}

long sp__proc_pid(const sockpass_proc_t *p) { return (long)p->pid; }

static int sp_reap(sockpass_proc_t *p, int flags) {
  int st;
  pid_t r;
  while ((r = waitpid(p->pid, &st, flags)) < 0 && errno == EINTR) {
  }
  if (r < 0)
    return sp__translate(errno);
  if (r == 0)
    return SOCKPASS_EAGAIN;
  p->done = 1;
  p->code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
  if (p->pidfd >= 0) {
    close(p->pidfd);
    p->pidfd = -1;
  }
  return 0;
}

static long long sp_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sp__proc_wait(sockpass_proc_t *p, int timeout_ms, int *exit_code) {
  int rc = 0;
  long long end;
  if (!p->done) {
    if (timeout_ms == SOCKPASS_WAIT_FOREVER) {
      rc = sp_reap(p, 0);
    } else {
      end = sp_now_ms() + timeout_ms;
      while ((rc = sp_reap(p, WNOHANG)) == SOCKPASS_EAGAIN && timeout_ms > 0) {
        long long left = end - sp_now_ms();
        if (left <= 0) {
          rc = SOCKPASS_ETIMEDOUT;
          break;
        }
        if (p->pidfd >= 0) {
          struct pollfd pf = {p->pidfd, POLLIN, 0};
          poll(&pf, 1, left > INT_MAX ? INT_MAX : (int)left);
        } else {
          struct timespec ts = {0, (left < 5 ? left : 5) * 1000000L};
          nanosleep(&ts, NULL);
        }
      }
    }
  }
  if (rc == 0 && exit_code != NULL)
    *exit_code = p->code;
  return rc;
}

int sp__proc_kill(sockpass_proc_t *p) {
  if (p->done)
    return 0;
  if (kill(p->pid, SIGTERM) < 0 && errno != ESRCH)
    return sp__translate(errno);
  return 0;
}

void sp__proc_free(sockpass_proc_t *p) {
  if (p->pidfd >= 0)
    close(p->pidfd);
  free(p);
}

/* ---- In the started program ---- */

static int sp_parse_int(const char *s, long max, long *out) {
  char *end;
  long v;
  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max)
    return -1;
  *out = v;
  return 0;
}

void sp__inherited_read(sp_inherit_t *st) {
  char *val[SP_NVARS];
  long pid, n, chan, i;
  int rc;
  size_t k;
  const char *s;
  for (k = 0; k < SP_NVARS; k++) {
    s = getenv(sp_vars[k]);
    val[k] = s != NULL ? strdup(s) : NULL;
    if (!st->keep_env)
      unsetenv(sp_vars[k]);
  }
  /* Meant for this process? If not, a parent left them: not ours. */
  if (sp_parse_int(val[0], LONG_MAX, &pid) < 0 || pid != (long)getpid())
    goto done;
  if (val[1] != NULL && sp_parse_int(val[1], INT_MAX - 3, &n) < 0) {
    st->err = SOCKPASS_EPROTO;
    goto done;
  }
  if (val[1] == NULL)
    n = 0;
  if (val[3] != NULL) {
    if (sp_parse_int(val[3], INT_MAX, &chan) < 0 || chan < 3 + n) {
      st->err = SOCKPASS_EPROTO;
      goto done;
    }
    if (sp__adopt((int)chan, &st->chan) < 0)
      st->chan = -1; /* not a socket: no channel to hand over */
  }
  if (!sp__names_match(val[2], (size_t)n)) {
    st->err = SOCKPASS_EPROTO; /* the descriptors are left as they are */
    goto done;
  }
  st->names = val[2];
  val[2] = NULL;
  if (n == 0)
    goto done;
  st->socks = malloc((size_t)n * sizeof *st->socks);
  if (st->socks == NULL) {
    st->err = SOCKPASS_ENOMEM;
    goto done;
  }
  /* Close-on-exec on every one, as systemd's sd_listen_fds does, then check
   * that each is a socket. */
  for (i = 0; i < n; i++)
    fcntl(3 + (int)i, F_SETFD, FD_CLOEXEC);
  for (i = 0; i < n; i++) {
    if ((rc = sp__adopt(3 + (int)i, &st->socks[i])) < 0) {
      st->err = rc;
      free(st->socks);
      st->socks = NULL;
      goto done;
    }
  }
  st->nsocks = (size_t)n;
done:
  for (k = 0; k < SP_NVARS; k++)
    free(val[k]);
}

sockpass_handle_t sp__inherit_take_chan(sp_inherit_t *st) {
  return __atomic_exchange_n(&st->chan, -1, __ATOMIC_ACQ_REL);
}

static pthread_once_t sp_once_ctl = PTHREAD_ONCE_INIT;

void sp__once(void (*fn)(void)) { pthread_once(&sp_once_ctl, fn); }
