/* SPDX-License-Identifier: MIT */
/* POSIX channels: AF_UNIX sockets carrying SCM_RIGHTS. One message is one
 * sendmsg: the payload verbatim plus the descriptors, no header of ours. */
#include "sockpass_config.h"
#include "platform.h"
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#ifdef SOCKPASS_HAVE_EVENTFD
#include <sys/eventfd.h>
#endif

#ifdef SOCKPASS_HAVE_MSG_NOSIGNAL
#define SP_MSG_NOSIGNAL MSG_NOSIGNAL
#else
#define SP_MSG_NOSIGNAL 0 /* SO_NOSIGPIPE is set on every channel instead */
#endif
#ifdef SOCKPASS_HAVE_MSG_CMSG_CLOEXEC
#define SP_MSG_CMSG_CLOEXEC MSG_CMSG_CLOEXEC
#else
#define SP_MSG_CMSG_CLOEXEC 0 /* FD_CLOEXEC is set after the fact: see docs/api.md */
#endif
#ifdef SOCKPASS_HAVE_SOCK_CLOEXEC
#define SP_SOCK_CLOEXEC SOCK_CLOEXEC
#else
#define SP_SOCK_CLOEXEC 0
#endif
#ifdef SOCKPASS_HAVE_SOCK_SEQPACKET
#define SP_CHAN_TYPE SOCK_SEQPACKET
#else
#define SP_CHAN_TYPE SOCK_STREAM /* macOS has no AF_UNIX SOCK_SEQPACKET */
#endif

struct sockpass_chan {
  int fd;
  int type;     /* SOCK_SEQPACKET, SOCK_DGRAM or SOCK_STREAM */
  int listener; /* made by sp__listen */
  int timeout_ms;      /* receive and accept */
  int send_timeout_ms; /* send */
  int cancelled;
  /* Set when the next receive will most likely have to wait: this end sent
   * since its last receive (a request now waits for its answer), or its
   * last receive found nothing queued. sp__recv then polls before its first
   * recvmsg instead of after it. A hint only: a wrong guess costs one poll
   * that returns at once, a right one saves a recvmsg that fails. */
  int rx_expect_wait;
  /* Made on first wait or cancel; -1 before. wake_rd is published last with
   * release order, so a thread that sees it also sees wake_wr. */
  int wake_rd, wake_wr;
  pthread_mutex_t lock; /* guards making the wake descriptors */
  pthread_mutex_t send_lock; /* streams: one message at a time */
  int check_mode; /* listener: SOCKPASS_PEER_*, applied by sp__accept */
  long check_pid;
  char *path; /* listener: socket file to remove on close */
  dev_t path_dev;
  ino_t path_ino;
};

/* Deadline of one call, fixed at its first wait. */
typedef struct {
  int set;
  struct timespec at;
} sp_deadline_t;

static int sp_errno(void) { return sp__translate(errno); }
static int sp_peer_ok(int fd, int mode, long pid);

static int sp_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0 || (!(fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0))
    return sp_errno();
  return 0;
}

/* Whether the kernel made a new descriptor close-on-exec atomically. */
#ifdef SOCKPASS_HAVE_SOCK_CLOEXEC
#define SP_MADE_CLOEXEC 1
#else
#define SP_MADE_CLOEXEC 0
#endif
#ifdef SOCKPASS_HAVE_ACCEPT4
#define SP_ACCEPTED_CLOEXEC 1
#else
#define SP_ACCEPTED_CLOEXEC 0
#endif

/* Per-channel socket setup: close-on-exec where the kernel did not already
 * set it, and SIGPIPE off where MSG_NOSIGNAL is missing. */
static int sp_sockopts(int fd, int is_cloexec) {
  int rc;
  if (!is_cloexec && (rc = sp_cloexec(fd)) < 0)
    return rc;
#if !defined(SOCKPASS_HAVE_MSG_NOSIGNAL) && defined(SOCKPASS_HAVE_SO_NOSIGPIPE)
  {
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) < 0)
      return sp_errno();
  }
#endif
  return 0;
}

static int sp_chan_new(int fd, int type, sockpass_chan_t **out) {
  sockpass_chan_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return SOCKPASS_ENOMEM;
  c->fd = fd;
  c->type = type;
  c->timeout_ms = SOCKPASS_WAIT_FOREVER;
  c->send_timeout_ms = SOCKPASS_WAIT_FOREVER;
  c->wake_rd = c->wake_wr = -1;
  if (pthread_mutex_init(&c->lock, NULL) != 0) {
    free(c);
    return SOCKPASS_ENOMEM;
  }
  if (pthread_mutex_init(&c->send_lock, NULL) != 0) {
    pthread_mutex_destroy(&c->lock);
    free(c);
    return SOCKPASS_ENOMEM;
  }
  *out = c;
  return 0;
}

/* ---- Waiting, timeouts and cancellation ---- */

static int sp_make_wake(sockpass_chan_t *c) {
  int rc = 0;
  pthread_mutex_lock(&c->lock);
  if (c->wake_rd < 0) {
#ifdef SOCKPASS_HAVE_EVENTFD
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
      rc = sp_errno();
    } else {
      c->wake_wr = fd;
      __atomic_store_n(&c->wake_rd, fd, __ATOMIC_RELEASE);
    }
#else
    int p[2];
#ifdef SOCKPASS_HAVE_PIPE2
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
      rc = sp_errno();
    }
#else
    if (pipe(p) < 0) {
      rc = sp_errno();
    } else if (sp_cloexec(p[0]) < 0 || sp_cloexec(p[1]) < 0 ||
               fcntl(p[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(p[1], F_SETFL, O_NONBLOCK) < 0) {
      rc = sp_errno();
      close(p[0]);
      close(p[1]);
    }
#endif
    if (rc == 0) {
      c->wake_wr = p[1];
      __atomic_store_n(&c->wake_rd, p[0], __ATOMIC_RELEASE);
    }
#endif
  }
  pthread_mutex_unlock(&c->lock);
  return rc;
}

static void sp_wake_signal(sockpass_chan_t *c) {
#ifdef SOCKPASS_HAVE_EVENTFD
  uint64_t one = 1;
  ssize_t r = write(c->wake_wr, &one, sizeof one);
#else
  char one = 1;
  ssize_t r = write(c->wake_wr, &one, 1);
#endif
  (void)r; /* a full pipe or counter is already readable: the wake stands */
}

static int sp_wake_fd(sockpass_chan_t *c) {
  return __atomic_load_n(&c->wake_rd, __ATOMIC_ACQUIRE);
}

static void sp_wake_drain(int fd) {
  char buf[64];
  while (read(fd, buf, sizeof buf) > 0)
    ;
}

int sp__set_timeout(sockpass_chan_t *c, int timeout_ms) {
  __atomic_store_n(&c->timeout_ms, timeout_ms, __ATOMIC_RELAXED);
  __atomic_store_n(&c->send_timeout_ms, timeout_ms, __ATOMIC_RELAXED);
  return 0;
}

int sp__set_send_timeout(sockpass_chan_t *c, int timeout_ms) {
  __atomic_store_n(&c->send_timeout_ms, timeout_ms, __ATOMIC_RELAXED);
  return 0;
}

int sp__cancel(sockpass_chan_t *c) {
  int rc;
  __atomic_store_n(&c->cancelled, 1, __ATOMIC_SEQ_CST);
  rc = sp_make_wake(c);
  if (rc < 0)
    return rc;
  sp_wake_signal(c);
  return 0;
}

int sp__cancel_clear(sockpass_chan_t *c) {
  int fd = sp_wake_fd(c);
  __atomic_store_n(&c->cancelled, 0, __ATOMIC_SEQ_CST);
  if (fd >= 0)
    sp_wake_drain(fd);
  return 0;
}

static int sp_remaining_ms(sp_deadline_t *d, int timeout_ms) {
  struct timespec now;
  long long ms;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (!d->set) {
    d->set = 1;
    d->at = now;
    d->at.tv_sec += timeout_ms / 1000;
    d->at.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (d->at.tv_nsec >= 1000000000L) {
      d->at.tv_sec++;
      d->at.tv_nsec -= 1000000000L;
    }
  }
  ms = (long long)(d->at.tv_sec - now.tv_sec) * 1000 + (d->at.tv_nsec - now.tv_nsec) / 1000000;
  if (ms < 0)
    return 0;
  return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/* Wait until fd is ready for events, the deadline passes, or the channel is
 * cancelled. 0 means "try the operation again". */
static int sp_wait(sockpass_chan_t *c, short events, sp_deadline_t *d, int honour_limits) {
  struct pollfd pfd[2];
  int timeout = !honour_limits     ? SOCKPASS_WAIT_FOREVER
                : events == POLLOUT ? __atomic_load_n(&c->send_timeout_ms, __ATOMIC_RELAXED)
                                    : __atomic_load_n(&c->timeout_ms, __ATOMIC_RELAXED);
  int wait_ms, r, rc, wake = -1;

  if (timeout == 0)
    return SOCKPASS_EAGAIN;
  if (honour_limits) {
    /* Made before the cancel flag is read: a cancel that sets the flag after
     * this read signals a descriptor the poll below already watches. */
    if ((wake = sp_wake_fd(c)) < 0) {
      if ((rc = sp_make_wake(c)) < 0)
        return rc;
      wake = sp_wake_fd(c);
    }
    if (__atomic_load_n(&c->cancelled, __ATOMIC_SEQ_CST))
      return SOCKPASS_ECANCELED;
  }
  wait_ms = timeout < 0 ? -1 : sp_remaining_ms(d, timeout);
  if (timeout > 0 && wait_ms == 0)
    return SOCKPASS_ETIMEDOUT;
  pfd[0].fd = c->fd;
  pfd[0].events = events;
  pfd[0].revents = 0;
  pfd[1].fd = wake;
  pfd[1].events = POLLIN;
  pfd[1].revents = 0;
  r = poll(pfd, honour_limits ? 2 : 1, wait_ms);
  if (r < 0)
    return errno == EINTR ? 0 : sp_errno();
  if (r == 0)
    return SOCKPASS_ETIMEDOUT;
  if (honour_limits && (pfd[1].revents & POLLIN) &&
      __atomic_load_n(&c->cancelled, __ATOMIC_SEQ_CST) && pfd[0].revents == 0)
    return SOCKPASS_ECANCELED;
  return 0; /* ready, or an error/hang-up the operation itself will report */
}

/* ---- Creating channels ---- */

int sp__pair(sockpass_chan_t **a, sockpass_chan_t **b) {
  int sv[2], rc;
  if (socketpair(AF_UNIX, SP_CHAN_TYPE | SP_SOCK_CLOEXEC, 0, sv) < 0)
    return sp_errno();
  if ((rc = sp_sockopts(sv[0], SP_MADE_CLOEXEC)) < 0 ||
      (rc = sp_sockopts(sv[1], SP_MADE_CLOEXEC)) < 0)
    goto fail;
  if ((rc = sp_chan_new(sv[0], SP_CHAN_TYPE, a)) < 0)
    goto fail;
  if ((rc = sp_chan_new(sv[1], SP_CHAN_TYPE, b)) < 0) {
    sv[0] = -1;
    sp__close(*a);
    *a = NULL;
    goto fail;
  }
  return 0;
fail:
  if (sv[0] >= 0)
    close(sv[0]);
  close(sv[1]);
  return rc;
}

/* Fill a sockaddr_un from a name: a path, or on Linux "@name" for the
 * abstract namespace. */
static int sp_addr(const char *name, struct sockaddr_un *sa, socklen_t *len) {
  size_t n = strlen(name);
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
#ifdef __linux__
  if (name[0] == '@') {
    if (n - 1 > sizeof sa->sun_path - 1)
      return SOCKPASS_ENAMETOOLONG;
    memcpy(sa->sun_path + 1, name + 1, n - 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    return 0;
  }
#endif
  if (n >= sizeof sa->sun_path)
    return SOCKPASS_ENAMETOOLONG;
  memcpy(sa->sun_path, name, n + 1);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return 0;
}

static int sp_socket(int type, int *out) {
  int fd = socket(AF_UNIX, type | SP_SOCK_CLOEXEC, 0), rc;
  if (fd < 0)
    return sp_errno();
  if ((rc = sp_sockopts(fd, SP_MADE_CLOEXEC)) < 0) {
    close(fd);
    return rc;
  }
  *out = fd;
  return 0;
}

/* A path that holds a socket nobody listens on may be replaced; a live
 * socket or any other file may not. */
static int sp_path_is_stale(const struct sockaddr_un *sa, socklen_t len) {
  struct stat st;
  int fd = -1, r, e;
  if (lstat(sa->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
    return 0;
  if (sp_socket(SP_CHAN_TYPE, &fd) < 0)
    return 0;
  r = connect(fd, (const struct sockaddr *)sa, len);
  e = errno;
  close(fd);
  return r < 0 && e == ECONNREFUSED;
}

int sp__listen(const char *name, sockpass_chan_t **out) {
  struct sockaddr_un sa;
  socklen_t len;
  int fd = -1, rc, fl, is_path;
  struct stat st;

  if ((rc = sp_addr(name, &sa, &len)) < 0)
    return rc;
  is_path = sa.sun_path[0] != '\0';
  if ((rc = sp_socket(SP_CHAN_TYPE, &fd)) < 0)
    return rc;
  /* Linux gives the socket file the mode of the socket's inode: set it
   * before bind so the file is never reachable by others, not even briefly. */
  if (is_path)
    (void)fchmod(fd, S_IRUSR | S_IWUSR);
  if (bind(fd, (struct sockaddr *)&sa, len) < 0) {
    rc = sp_errno();
    if (rc == SOCKPASS_EADDRINUSE && is_path && sp_path_is_stale(&sa, len) &&
        unlink(sa.sun_path) == 0 && bind(fd, (struct sockaddr *)&sa, len) == 0)
      rc = 0;
    if (rc < 0)
      goto fail;
  }
  if (is_path) {
    /* Where fchmod on a socket has no effect (BSDs, macOS), tighten now. */
    if (chmod(sa.sun_path, S_IRUSR | S_IWUSR) < 0 || lstat(sa.sun_path, &st) < 0) {
      rc = sp_errno();
      unlink(sa.sun_path);
      goto fail;
    }
  }
  if (listen(fd, SOMAXCONN) < 0 || (fl = fcntl(fd, F_GETFL)) < 0 ||
      fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    rc = sp_errno();
    if (is_path)
      unlink(sa.sun_path);
    goto fail;
  }
  if ((rc = sp_chan_new(fd, SP_CHAN_TYPE, out)) < 0) {
    if (is_path)
      unlink(sa.sun_path);
    goto fail;
  }
  (*out)->listener = 1;
  (*out)->check_mode = SOCKPASS_PEER_SAME_USER;
  if (is_path) {
    (*out)->path = strdup(sa.sun_path);
    (*out)->path_dev = st.st_dev;
    (*out)->path_ino = st.st_ino;
  }
  return 0;
fail:
  close(fd);
  return rc;
}

int sp__accept(sockpass_chan_t *l, sockpass_chan_t **out) {
  sp_deadline_t d = {0};
  int fd, rc;
  if (!l->listener)
    return SOCKPASS_EINVAL;
  for (;;) {
#ifdef SOCKPASS_HAVE_ACCEPT4
    fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
#else
    fd = accept(l->fd, NULL, NULL);
#endif
    if (fd >= 0) {
      /* A peer that fails the check is closed before it can send. */
      if ((rc = sp_peer_ok(fd, l->check_mode, l->check_pid)) == 0)
        break;
      close(fd);
      if (rc != SOCKPASS_EPERM)
        return rc;
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return sp_errno();
    if ((rc = sp_wait(l, POLLIN, &d, 1)) < 0)
      return rc;
  }
  if ((rc = sp_sockopts(fd, SP_ACCEPTED_CLOEXEC)) < 0 ||
      (rc = sp_chan_new(fd, l->type, out)) < 0) {
    close(fd);
    return rc;
  }
  return 0;
}

int sp__connect(const char *name, sockpass_chan_t **out) {
  struct sockaddr_un sa;
  socklen_t len;
  int fd = -1, rc;
  if ((rc = sp_addr(name, &sa, &len)) < 0)
    return rc;
  if ((rc = sp_socket(SP_CHAN_TYPE, &fd)) < 0)
    return rc;
  while (connect(fd, (struct sockaddr *)&sa, len) < 0) {
    if (errno == EINTR)
      continue; /* Unix-domain connect completes or fails at once */
    rc = sp_errno();
    close(fd);
    return rc;
  }
  if ((rc = sp_chan_new(fd, SP_CHAN_TYPE, out)) < 0)
    close(fd);
  return rc;
}

int sp__open(sockpass_handle_t fd, sockpass_chan_t **out) {
  int type = 0, rc;
  socklen_t tl = sizeof type;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;

  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0) {
    rc = sp_errno();
    if (rc != SOCKPASS_EBADF)
      close(fd);
    return rc;
  }
  memset(&ss, 0, sizeof ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
    rc = sp_errno();
  else if (ss.ss_family != AF_UNIX)
    rc = SOCKPASS_ENOTSUP;
  else if (type != SOCK_SEQPACKET && type != SOCK_DGRAM && type != SOCK_STREAM)
    rc = SOCKPASS_ENOTSUP;
  else if ((rc = sp_sockopts(fd, 0)) == 0) /* a descriptor from elsewhere */
    rc = sp_chan_new(fd, type, out);
  if (rc < 0)
    close(fd);
  return rc;
}

void sp__close_handle(sockpass_handle_t fd) { close(fd); }

sockpass_handle_t sp__handle(sockpass_chan_t *c) { return c->fd; }

/* The kernel queue is the only one: the descriptor's POLLIN says it all. */
int sp__ready_handle(sockpass_chan_t *c, sockpass_handle_t *h) {
  *h = c->fd;
  return 0;
}

void sp__close(sockpass_chan_t *c) {
  struct stat st;
  if (c->path != NULL) {
    /* Remove the socket file only if it is still the one this listener made. */
    if (lstat(c->path, &st) == 0 && st.st_dev == c->path_dev && st.st_ino == c->path_ino)
      unlink(c->path);
    free(c->path);
  }
  close(c->fd);
  if (c->wake_rd >= 0)
    close(c->wake_rd);
  if (c->wake_wr >= 0 && c->wake_wr != c->wake_rd)
    close(c->wake_wr);
  pthread_mutex_destroy(&c->lock);
  pthread_mutex_destroy(&c->send_lock);
  free(c);
}

/* ---- Messages ---- */

typedef union {
  struct cmsghdr align;
  unsigned char buf[SP_CMSG_ROOM];
} sp_cmsgbuf_t;

/* Finish a stream message after a partial write: the descriptors went with
 * the first byte, so the rest goes without them, whatever the timeout. */
static int sp_send_rest(sockpass_chan_t *c, const char *p, size_t left) {
  sp_deadline_t d = {0};
  int rc;
  while (left > 0) {
    ssize_t n = send(c->fd, p, left, SP_MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      p += n;
      left -= (size_t)n;
      continue;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return sp_errno();
    if ((rc = sp_wait(c, POLLOUT, &d, 0)) < 0)
      return rc;
  }
  return 0;
}

int sp__send(sockpass_chan_t *c, const sockpass_sock_t *socks, size_t nsocks, const void *data,
             size_t len) {
  sp_cmsgbuf_t cbuf;
  struct msghdr msg;
  struct iovec iov;
  sp_deadline_t d = {0};
  int rc = 0, stream = c->type == SOCK_STREAM;
  ssize_t n;

  if (c->listener)
    return SOCKPASS_EINVAL;
  if (stream && len == 0)
    return SOCKPASS_EINVAL; /* a stream carries descriptors only with bytes */
  memset(&msg, 0, sizeof msg);
  iov.iov_base = (void *)data;
  iov.iov_len = len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nsocks > 0) {
    struct cmsghdr *cm;
    memset(&cbuf, 0, CMSG_SPACE(nsocks * sizeof(int)));
    msg.msg_control = cbuf.buf;
    msg.msg_controllen = CMSG_SPACE(nsocks * sizeof(int));
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nsocks * sizeof(int));
    memcpy(CMSG_DATA(cm), socks, nsocks * sizeof(int));
  }
  if (stream)
    pthread_mutex_lock(&c->send_lock);
  for (;;) {
    n = sendmsg(c->fd, &msg, SP_MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0)
      break;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      rc = sp_errno();
      break;
    }
    if ((rc = sp_wait(c, POLLOUT, &d, 1)) < 0)
      break;
  }
  if (rc == 0 && stream && (size_t)n < len)
    rc = sp_send_rest(c, (const char *)data + n, len - (size_t)n);
  if (stream)
    pthread_mutex_unlock(&c->send_lock);
  if (rc == 0 && !__atomic_load_n(&c->rx_expect_wait, __ATOMIC_RELAXED))
    __atomic_store_n(&c->rx_expect_wait, 1, __ATOMIC_RELAXED);
  return rc;
}

static void sp_close_all(const int *fds, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    close(fds[i]);
}

int sp__recv(sockpass_chan_t *c, sockpass_sock_t *socks, size_t *nsocks, void *buf, size_t *len) {
  sp_cmsgbuf_t cbuf;
  int fds[SP_CMSG_MAXFDS];
  struct msghdr msg;
  struct iovec iov;
  sp_deadline_t d = {0};
  size_t nfds, lost, other, room = *nsocks;
  ssize_t n;
  int rc;

  *nsocks = 0;
  if (c->listener)
    return SOCKPASS_EINVAL;
  if (c->type == SOCK_STREAM && *len == 0)
    return SOCKPASS_EINVAL; /* a stream returns descriptors only with bytes */
  /* Poll first when the queue is probably empty. Whatever this wait says
   * (ready, timed out, cancelled, non-blocking) the loop below goes on as
   * it would without it: a message already queued is still returned, and
   * the loop's own wait gives the same answer again if none is. */
  if (__atomic_load_n(&c->rx_expect_wait, __ATOMIC_RELAXED)) {
    __atomic_store_n(&c->rx_expect_wait, 0, __ATOMIC_RELAXED);
    (void)sp_wait(c, POLLIN, &d, 1);
  }
  for (;;) {
    memset(&msg, 0, sizeof msg);
    iov.iov_base = buf;
    iov.iov_len = *len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.buf;
    msg.msg_controllen = sizeof cbuf.buf;
    n = recvmsg(c->fd, &msg, SP_MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n >= 0)
      break;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return sp_errno();
    __atomic_store_n(&c->rx_expect_wait, 1, __ATOMIC_RELAXED);
    if ((rc = sp_wait(c, POLLIN, &d, 1)) < 0)
      return rc;
  }
  nfds = sp__cmsg_fds(&msg, fds, SP_CMSG_MAXFDS, &lost, &other);
#if !defined(SOCKPASS_HAVE_MSG_CMSG_CLOEXEC)
  {
    size_t i;
    for (i = 0; i < nfds; i++)
      (void)sp_cloexec(fds[i]);
  }
#endif
  if (msg.msg_flags & MSG_CTRUNC) {
    /* The kernel stops installing descriptors when the table is full and
     * reports it this way; tell that apart from a peer that sent more than
     * any message may carry. Probe before closing what did arrive. */
    int probe = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
    rc = probe < 0 && errno == EMFILE ? SOCKPASS_EMFILE : SOCKPASS_ETRUNC;
    if (probe >= 0)
      close(probe);
    sp_close_all(fds, nfds);
    return rc;
  }
  if (msg.msg_flags & MSG_TRUNC || nfds > room || lost > 0) {
    sp_close_all(fds, nfds);
    return SOCKPASS_ETRUNC;
  }
  if (n == 0 && nfds == 0 && c->type == SOCK_STREAM)
    return SOCKPASS_EOF;
  if (n == 0 && nfds == 0 && c->type == SOCK_SEQPACKET) {
    /* The peer's close and an empty record look alike to recvmsg. A closed
     * peer leaves the socket hung up; a live one sent an empty record, which
     * sockpass never does: a protocol error, and the channel goes on. */
    struct pollfd p;
    p.fd = c->fd;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP))
      return SOCKPASS_EOF;
    return SOCKPASS_EPROTO;
  }
  if (nfds > 0)
    memcpy(socks, fds, nfds * sizeof(int));
  *nsocks = nfds;
  *len = (size_t)n;
  return 0;
}

/* What the kernel recorded about the peer of fd when it connected. */
static int sp_fd_peer(int fd, sockpass_peer_t *peer) {
#if defined(SOCKPASS_HAVE_SO_PEERCRED)
  struct ucred uc;
  socklen_t l = sizeof uc;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) < 0)
    return sp_errno();
  peer->pid = (long)uc.pid;
  peer->uid = (long)uc.uid;
  return 0;
#elif defined(SOCKPASS_HAVE_GETPEEREID)
  uid_t uid;
  gid_t gid;
  if (getpeereid(fd, &uid, &gid) < 0)
    return sp_errno();
  peer->uid = (long)uid;
#if defined(LOCAL_PEERPID)
  {
    pid_t pid;
    socklen_t l = sizeof pid;
    if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &pid, &l) == 0)
      peer->pid = (long)pid;
  }
#endif
  return 0;
#else
  (void)fd;
  (void)peer;
  return SOCKPASS_ENOTSUP;
#endif
}

static int sp_peer_ok(int fd, int mode, long pid) {
  sockpass_peer_t p = {-1, -1};
  int rc;
  if (mode == SOCKPASS_PEER_ANY)
    return 0;
  if ((rc = sp_fd_peer(fd, &p)) < 0)
    return rc;
  if (mode == SOCKPASS_PEER_SAME_USER)
    return p.uid >= 0 && (uid_t)p.uid == geteuid() ? 0 : SOCKPASS_EPERM;
  if (p.pid < 0)
    return SOCKPASS_ENOTSUP; /* this OS does not report the peer's pid */
  return p.pid == pid ? 0 : SOCKPASS_EPERM;
}

int sp__peer(sockpass_chan_t *c, sockpass_peer_t *peer) { return sp_fd_peer(c->fd, peer); }

int sp__set_peer_check(sockpass_chan_t *c, int mode, long pid) {
  if (!c->listener)
    return sp_peer_ok(c->fd, mode, pid);
  c->check_mode = mode;
  c->check_pid = pid;
  return 0;
}

void sp__close_quiet(sockpass_chan_t *c) {
  /* The end lives on in a child: a listener's socket file stays too. */
  free(c->path);
  c->path = NULL;
  sp__close(c);
}
