/* SPDX-License-Identifier: MIT */
/*
 * sockpass on a libuv loop. docs/uv.md explains the design; in short:
 *   - a wrapped sockpass channel never blocks the loop: its receives and
 *     accepts are non-blocking and run when the channel's readiness object
 *     (sockpass_ready_handle) fires. On POSIX that object is the channel's
 *     descriptor, watched by a uv_poll_t, and sends are non-blocking too,
 *     resumed when the descriptor is writable. On Windows it is an event:
 *     one RegisterWaitForSingleObject (the system's wait thread pool, not a
 *     thread per channel) wakes the loop through a uv_async_t; sends, which
 *     may wait for room in the pipe, and the close, which may wait for the
 *     peer's BYE_ACK, run as uv_queue_work items, one at a time per channel.
 *   - an IPC channel is libuv's own uv_pipe_t with ipc = 1: libuv writes and
 *     reads its wire format; this file turns its reads and pending handles
 *     into messages with sockets, and sockets into handles for uv_write2.
 */
#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#endif
#include "sockpass_uv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

enum { SPUV_CHAN, SPUV_LISTENER, SPUV_IPC };

/* Messages one wake delivers before giving other handles a turn. */
#define SPUV_BATCH 64

typedef struct spuv_send {
  struct spuv_send *next;
  sockpass_uv_chan_t *chan;
  sockpass_uv_send_cb cb;
  void *arg;
  int status;
  size_t nsocks, len;
  sockpass_sock_t *socks; /* borrowed values, after the struct */
  unsigned char *data;    /* copied payload, after the sockets */
  /* IPC only: libuv's write and the handle that carries the socket. */
  uv_write_t wreq;
  uv_handle_t *carrier;
} spuv_send_t;

typedef struct {
  spuv_send_t *head, *tail;
} spuv_queue_t;

struct sockpass_uv_chan {
  uv_loop_t *loop;
  int kind;
  sockpass_chan_t *chan; /* SPUV_CHAN, SPUV_LISTENER */
  uv_pipe_t *pipe;       /* SPUV_IPC */
  void *data;
  sockpass_uv_recv_cb recv_cb;
  sockpass_uv_accept_cb accept_cb;
  sockpass_uv_close_cb close_cb;
  int reading;  /* recv_start or accept_start in force */
  int closing;
  int open_handles; /* our uv handles not yet closed */
  spuv_queue_t waiting; /* sends not yet out, in order */
  spuv_queue_t done;    /* finished sends whose callbacks are due */
  uv_idle_t idle;       /* runs due callbacks outside the calls that queue them */
  int idle_on;
  sockpass_sock_t *socks; /* receive room: SOCKPASS_MAX_SOCKS */
  unsigned char *buf;     /* receive room: SOCKPASS_MAX_PAYLOAD */
#ifdef _WIN32
  uv_async_t async;
  HANDLE wait;  /* the registered wait on the readiness event, or NULL */
  int work_busy; /* a uv_queue_work item of this channel is in flight */
  int chan_gone; /* the sockpass channel has been closed */
  int handles_closed; /* uv_close called on async and idle */
  spuv_queue_t inflight; /* the sends the work item carries */
  uv_work_t work;
#else
  uv_poll_t poll;
  int poll_events;
#endif
};

/* ---- Errors ---- */

static int spuv_err(int uverr) {
  switch (uverr) {
  case 0:
    return 0;
  case UV_ENOMEM:
    return SOCKPASS_ENOMEM;
  case UV_EBADF:
    return SOCKPASS_EBADF;
  case UV_EINVAL:
    return SOCKPASS_EINVAL;
  case UV_ENOTSOCK:
    return SOCKPASS_ENOTSOCK;
  case UV_EMFILE:
  case UV_ENFILE:
    return SOCKPASS_EMFILE;
  case UV_EOF:
  case UV_EPIPE:
  case UV_ECONNRESET:
    return SOCKPASS_EOF;
  case UV_ECANCELED:
    return SOCKPASS_ECANCELED;
  case UV_EAGAIN:
    return SOCKPASS_EAGAIN;
  case UV_ENOTSUP:
    return SOCKPASS_ENOTSUP;
  case UV_EACCES:
    return SOCKPASS_EACCES;
  case UV_ETIMEDOUT:
    return SOCKPASS_ETIMEDOUT;
  case UV_EPROTO:
    return SOCKPASS_EPROTO;
  default:
#ifdef _WIN32
    return SOCKPASS_ESYS;
#else
    return SOCKPASS_SYSERR(-uverr);
#endif
  }
}

/* ---- Send queues and callbacks ---- */

static void spuv_push(spuv_queue_t *q, spuv_send_t *r) {
  r->next = NULL;
  if (q->tail != NULL)
    q->tail->next = r;
  else
    q->head = r;
  q->tail = r;
}

static spuv_send_t *spuv_pop(spuv_queue_t *q) {
  spuv_send_t *r = q->head;
  if (r != NULL) {
    q->head = r->next;
    if (q->head == NULL)
      q->tail = NULL;
  }
  return r;
}

static void spuv_finish(spuv_send_t *r) {
  sockpass_uv_chan_t *c = r->chan;
  sockpass_uv_send_cb cb = r->cb;
  void *arg = r->arg;
  int status = r->status;
  free(r);
  if (cb != NULL)
    cb(c, status, arg);
}

static void spuv_run_done(sockpass_uv_chan_t *c) {
  spuv_send_t *r;
  while ((r = spuv_pop(&c->done)) != NULL)
    spuv_finish(r);
}

static void spuv_idle_cb(uv_idle_t *idle) {
  sockpass_uv_chan_t *c = idle->data;
  uv_idle_stop(idle);
  c->idle_on = 0;
  spuv_run_done(c);
}

/* A send finished while the caller is still inside sockpass_uv_send: its
 * callback runs on the next loop turn. */
static void spuv_defer(sockpass_uv_chan_t *c, spuv_send_t *r) {
  spuv_push(&c->done, r);
  if (!c->idle_on) {
    uv_idle_start(&c->idle, spuv_idle_cb);
    c->idle_on = 1;
  }
}

static void spuv_fail_waiting(sockpass_uv_chan_t *c, int status) {
  spuv_send_t *r;
  while ((r = spuv_pop(&c->waiting)) != NULL) {
    r->status = status;
    spuv_push(&c->done, r);
  }
}

/* ---- Receiving and accepting on a wrapped channel ---- */

static int spuv_room(sockpass_uv_chan_t *c) {
  if (c->buf == NULL)
    c->buf = malloc(SOCKPASS_MAX_PAYLOAD);
  if (c->socks == NULL)
    c->socks = malloc(SOCKPASS_MAX_SOCKS * sizeof *c->socks);
  return c->buf != NULL && c->socks != NULL ? 0 : SOCKPASS_ENOMEM;
}

static void spuv_stop_reading(sockpass_uv_chan_t *c);

/* Receive what is there, without waiting. */
static void spuv_drain(sockpass_uv_chan_t *c) {
  int i, rc;
  for (i = 0; i < SPUV_BATCH && c->reading && !c->closing; i++) {
    if (c->kind == SPUV_LISTENER) {
      sockpass_chan_t *nc = NULL;
      rc = sockpass_accept(c->chan, &nc);
      if (rc == SOCKPASS_EAGAIN)
        return;
      if (rc < 0)
        spuv_stop_reading(c);
      c->accept_cb(c, rc, nc);
    } else {
      size_t n = SOCKPASS_MAX_SOCKS, len = SOCKPASS_MAX_PAYLOAD;
      rc = sockpass_recv(c->chan, c->socks, &n, c->buf, &len);
      if (rc == SOCKPASS_EAGAIN)
        return;
      if (rc < 0 && rc != SOCKPASS_ETRUNC && rc != SOCKPASS_EMFILE)
        spuv_stop_reading(c);
      if (rc < 0)
        c->recv_cb(c, rc, NULL, 0, NULL, 0);
      else
        c->recv_cb(c, 0, c->socks, n, c->buf, len);
    }
  }
}

#ifdef _WIN32
/* ---- Windows: readiness event, wait pool, work items ---- */

static void CALLBACK spuv_wait_cb(void *ctx, BOOLEAN timed_out) {
  sockpass_uv_chan_t *c = ctx;
  (void)timed_out;
  uv_async_send(&c->async);
}

static void spuv_unregister(sockpass_uv_chan_t *c) {
  if (c->wait != NULL) {
    /* Waits for a callback in progress, which only calls uv_async_send. */
    UnregisterWaitEx(c->wait, INVALID_HANDLE_VALUE);
    c->wait = NULL;
  }
}

static int spuv_arm(sockpass_uv_chan_t *c) {
  sockpass_handle_t ev;
  int rc;
  if (c->wait != NULL || !c->reading || c->closing)
    return 0;
  if ((rc = sockpass_ready_handle(c->chan, &ev)) < 0)
    return rc;
  if (!RegisterWaitForSingleObject(&c->wait, ev, spuv_wait_cb, c, INFINITE,
                                   WT_EXECUTEONLYONCE | WT_EXECUTEINWAITTHREAD)) {
    c->wait = NULL;
    return SOCKPASS_SYSERR(GetLastError());
  }
  return 0;
}

static void spuv_async_cb(uv_async_t *async) {
  sockpass_uv_chan_t *c = async->data;
  int rc;
  spuv_unregister(c);
  spuv_drain(c);
  if (c->reading && !c->closing && (rc = spuv_arm(c)) < 0) {
    spuv_stop_reading(c);
    if (c->kind == SPUV_LISTENER)
      c->accept_cb(c, rc, NULL);
    else
      c->recv_cb(c, rc, NULL, 0, NULL, 0);
  }
}

static int spuv_watch(sockpass_uv_chan_t *c) { return spuv_arm(c); }

static void spuv_stop_reading(sockpass_uv_chan_t *c) {
  c->reading = 0;
  spuv_unregister(c);
}

static void spuv_finalize(sockpass_uv_chan_t *c);
static void spuv_kick(sockpass_uv_chan_t *c);

static void spuv_send_work(uv_work_t *w) {
  sockpass_uv_chan_t *c = w->data;
  spuv_send_t *r;
  for (r = c->inflight.head; r != NULL; r = r->next)
    r->status = sockpass_send(c->chan, r->socks, r->nsocks, r->data, r->len);
}

static void spuv_send_after(uv_work_t *w, int status) {
  sockpass_uv_chan_t *c = w->data;
  spuv_queue_t batch = c->inflight;
  spuv_send_t *r;
  /* Callbacks may send again, and so start the next work item. */
  c->inflight.head = c->inflight.tail = NULL;
  c->work_busy = 0;
  while ((r = spuv_pop(&batch)) != NULL) {
    if (status == UV_ECANCELED)
      r->status = SOCKPASS_ECANCELED;
    spuv_finish(r);
  }
  if (c->closing)
    spuv_finalize(c);
  else
    spuv_kick(c);
}

/* Start a work item for the sends waiting, if none is in flight. */
static void spuv_kick(sockpass_uv_chan_t *c) {
  if (c->work_busy || c->waiting.head == NULL || c->closing)
    return;
  c->inflight = c->waiting;
  c->waiting.head = c->waiting.tail = NULL;
  c->work.data = c;
  if (uv_queue_work(c->loop, &c->work, spuv_send_work, spuv_send_after) != 0) {
    spuv_send_t *r;
    while ((r = spuv_pop(&c->inflight)) != NULL) {
      r->status = SOCKPASS_ENOMEM;
      spuv_defer(c, r);
    }
    return;
  }
  c->work_busy = 1;
}

static int spuv_chan_send(sockpass_uv_chan_t *c, spuv_send_t *r) {
  spuv_push(&c->waiting, r);
  spuv_kick(c);
  return 0;
}

static int spuv_chan_init(sockpass_uv_chan_t *c) {
  int rc;
  if ((rc = sockpass_set_timeout(c->chan, SOCKPASS_NONBLOCK)) < 0 ||
      (rc = sockpass_set_send_timeout(c->chan, SOCKPASS_WAIT_FOREVER)) < 0)
    return rc;
  if ((rc = uv_async_init(c->loop, &c->async, spuv_async_cb)) != 0)
    return spuv_err(rc);
  c->async.data = c;
  c->open_handles++;
  return 0;
}

static void spuv_handle_closed(uv_handle_t *h);

static void spuv_close_work(uv_work_t *w) {
  sockpass_uv_chan_t *c = w->data;
  sockpass_close(c->chan); /* may wait briefly for the peer's BYE_ACK */
}

static void spuv_close_after(uv_work_t *w, int status) {
  sockpass_uv_chan_t *c = w->data;
  (void)status;
  c->chan = NULL;
  c->chan_gone = 1;
  c->work_busy = 0;
  spuv_finalize(c);
}

/* Closing, once no work item is in flight: close the sockpass channel in
 * the pool, then the loop handles. */
static void spuv_finalize(sockpass_uv_chan_t *c) {
  if (c->work_busy)
    return;
  if (!c->chan_gone) {
    c->work.data = c;
    if (uv_queue_work(c->loop, &c->work, spuv_close_work, spuv_close_after) == 0) {
      c->work_busy = 1;
      return;
    }
    sockpass_close(c->chan);
    c->chan = NULL;
    c->chan_gone = 1;
  }
  if (c->handles_closed)
    return;
  c->handles_closed = 1;
  spuv_fail_waiting(c, SOCKPASS_ECANCELED);
  spuv_run_done(c);
  uv_close((uv_handle_t *)&c->async, spuv_handle_closed);
  uv_close((uv_handle_t *)&c->idle, spuv_handle_closed);
}

static void spuv_chan_close(sockpass_uv_chan_t *c) {
  spuv_unregister(c);
  if (c->work_busy && c->inflight.head != NULL)
    sockpass_cancel(c->chan); /* a send waiting for room gives up */
  spuv_fail_waiting(c, SOCKPASS_ECANCELED);
  spuv_finalize(c);
}

#else
/* ---- POSIX: a uv_poll_t on the channel's descriptor ---- */

static void spuv_flush(sockpass_uv_chan_t *c);

static int spuv_set_events(sockpass_uv_chan_t *c);

static void spuv_poll_cb(uv_poll_t *p, int status, int events) {
  sockpass_uv_chan_t *c = p->data;
  if (status < 0) {
    /* The descriptor itself failed: the calls below report why. */
    events = (c->reading ? UV_READABLE : 0) | (c->waiting.head ? UV_WRITABLE : 0);
  }
  if ((events & UV_WRITABLE) && !c->closing)
    spuv_flush(c);
  if ((events & UV_READABLE) && !c->closing)
    spuv_drain(c);
  if (!c->closing)
    spuv_set_events(c);
}

static int spuv_set_events(sockpass_uv_chan_t *c) {
  int want = (c->reading ? UV_READABLE : 0) | (c->waiting.head != NULL ? UV_WRITABLE : 0);
  int rc = 0;
  if (want == c->poll_events)
    return 0;
  rc = want ? uv_poll_start(&c->poll, want, spuv_poll_cb) : uv_poll_stop(&c->poll);
  if (rc == 0)
    c->poll_events = want;
  return spuv_err(rc);
}

static int spuv_watch(sockpass_uv_chan_t *c) { return spuv_set_events(c); }

static void spuv_stop_reading(sockpass_uv_chan_t *c) {
  c->reading = 0;
  if (!c->closing)
    spuv_set_events(c);
}

/* Send what waits, in order, until the socket is full. */
static void spuv_flush(sockpass_uv_chan_t *c) {
  spuv_send_t *r;
  while ((r = c->waiting.head) != NULL) {
    int rc = sockpass_send(c->chan, r->socks, r->nsocks, r->data, r->len);
    if (rc == SOCKPASS_EAGAIN)
      break;
    spuv_pop(&c->waiting);
    r->status = rc;
    spuv_push(&c->done, r);
  }
  spuv_run_done(c);
}

static int spuv_chan_send(sockpass_uv_chan_t *c, spuv_send_t *r) {
  int rc;
  if (c->waiting.head != NULL) {
    spuv_push(&c->waiting, r); /* behind others: the watcher is on already */
    return 0;
  }
  rc = sockpass_send(c->chan, r->socks, r->nsocks, r->data, r->len);
  if (rc != SOCKPASS_EAGAIN) {
    r->status = rc;
    spuv_defer(c, r);
    return 0;
  }
  spuv_push(&c->waiting, r);
  if ((rc = spuv_set_events(c)) < 0) {
    /* Nothing would ever resume it: refuse it instead. */
    c->waiting.head = c->waiting.tail = NULL;
    return rc;
  }
  return 0;
}

static int spuv_chan_init(sockpass_uv_chan_t *c) {
  int rc;
  if ((rc = sockpass_set_timeout(c->chan, SOCKPASS_NONBLOCK)) < 0)
    return rc;
  if ((rc = uv_poll_init(c->loop, &c->poll, sockpass_handle(c->chan))) != 0)
    return spuv_err(rc);
  c->poll.data = c;
  c->open_handles++;
  return 0;
}

static void spuv_handle_closed(uv_handle_t *h);

static void spuv_chan_close(sockpass_uv_chan_t *c) {
  uv_poll_stop(&c->poll);
  spuv_fail_waiting(c, SOCKPASS_ECANCELED);
  spuv_run_done(c);
  uv_close((uv_handle_t *)&c->poll, spuv_handle_closed);
  uv_close((uv_handle_t *)&c->idle, spuv_handle_closed);
}
#endif

/* ---- IPC channels: libuv's own pipe ---- */

#ifdef _WIN32
typedef SOCKET spuv_raw_t;

/* A socket of this process's own, not tied to any completion port. */
static int spuv_dup_sock(SOCKET s, SOCKET *out) {
  WSAPROTOCOL_INFOW info;
  SOCKET d;
  if (WSADuplicateSocketW(s, GetCurrentProcessId(), &info) != 0)
    return WSAGetLastError() == WSAENOTSOCK ? SOCKPASS_ENOTSOCK : SOCKPASS_EBADF;
  d = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0,
                 WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (d == INVALID_SOCKET)
    return WSAGetLastError() == WSAEMFILE ? SOCKPASS_EMFILE : SOCKPASS_SYSERR(WSAGetLastError());
  *out = d;
  return 0;
}

static int spuv_sock_type(SOCKET s, int *type) {
  int len = (int)sizeof *type;
  if (getsockopt(s, SOL_SOCKET, SO_TYPE, (char *)type, &len) != 0)
    return WSAGetLastError() == WSAENOTSOCK ? SOCKPASS_ENOTSOCK : SOCKPASS_EBADF;
  return 0;
}
#else
static int spuv_dup_sock(int fd, int *out) {
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0)
    return errno == EMFILE || errno == ENFILE ? SOCKPASS_EMFILE
           : errno == EBADF                   ? SOCKPASS_EBADF
                                              : SOCKPASS_SYSERR(errno);
  *out = d;
  return 0;
}

static int spuv_sock_type(int fd, int *type) {
  socklen_t len = sizeof *type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, type, &len) != 0)
    return errno == ENOTSOCK ? SOCKPASS_ENOTSOCK : errno == EBADF ? SOCKPASS_EBADF
                                                                    : SOCKPASS_SYSERR(errno);
  return 0;
}
#endif

static void spuv_free_handle(uv_handle_t *h) { free(h); }

/* The socket of a pending handle of the IPC pipe, as a socket of our own. */
static int spuv_take_pending(sockpass_uv_chan_t *c, sockpass_sock_t *out) {
  uv_handle_type t = uv_pipe_pending_type(c->pipe);
  uv_handle_t *h;
  uv_os_fd_t fd;
  int rc;
  if (t == UV_TCP) {
    h = malloc(sizeof(uv_tcp_t));
    rc = h == NULL ? UV_ENOMEM : uv_tcp_init(c->loop, (uv_tcp_t *)h);
  } else if (t == UV_NAMED_PIPE) {
    h = malloc(sizeof(uv_pipe_t));
    rc = h == NULL ? UV_ENOMEM : uv_pipe_init(c->loop, (uv_pipe_t *)h, 0);
  } else if (t == UV_UDP) {
    h = malloc(sizeof(uv_udp_t));
    rc = h == NULL ? UV_ENOMEM : uv_udp_init(c->loop, (uv_udp_t *)h);
  } else {
    return SOCKPASS_EPROTO;
  }
  if (rc != 0) {
    free(h);
    return spuv_err(rc);
  }
  rc = uv_accept((uv_stream_t *)c->pipe, (uv_stream_t *)h);
  if (rc == 0 && (rc = uv_fileno(h, &fd)) == 0)
    rc = spuv_dup_sock((sockpass_sock_t)(uintptr_t)fd, out);
  else
    rc = spuv_err(rc);
  uv_close(h, spuv_free_handle);
  return rc;
}

static void spuv_ipc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  sockpass_uv_chan_t *c = h->data;
  (void)hint;
  *buf = uv_buf_init((char *)c->buf, SOCKPASS_MAX_PAYLOAD);
}

static void spuv_ipc_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  sockpass_uv_chan_t *c = s->data;
  size_t n = 0, i;
  int rc = 0;
  (void)buf;
  if (nread == 0 || c->closing)
    return; /* nothing this time */
  if (nread < 0) {
    c->reading = 0;
    uv_read_stop(s);
    c->recv_cb(c, spuv_err((int)nread), NULL, 0, NULL, 0);
    return;
  }
  /* Take every handle that came with these bytes; if one cannot be taken,
   * the rest are taken and closed too, so that none stays behind. */
  while (uv_pipe_pending_count(c->pipe) > 0) {
    sockpass_sock_t sk;
    int r = spuv_take_pending(c, &sk);
    if (r < 0) {
      rc = rc < 0 ? rc : r;
      if (uv_pipe_pending_count(c->pipe) > 0 && r == SOCKPASS_EPROTO)
        break; /* a type libuv cannot accept: the pipe is no longer usable */
      continue;
    }
    if (n < SOCKPASS_MAX_SOCKS)
      c->socks[n++] = sk;
    else {
      sockpass_close_sock(sk);
      rc = rc < 0 ? rc : SOCKPASS_ETRUNC;
    }
  }
  if (rc < 0) {
    for (i = 0; i < n; i++)
      sockpass_close_sock(c->socks[i]);
    if (rc == SOCKPASS_EPROTO) {
      c->reading = 0;
      uv_read_stop(s);
    }
    c->recv_cb(c, rc, NULL, 0, NULL, 0);
    return;
  }
  c->recv_cb(c, 0, c->socks, n, c->buf, (size_t)nread);
}

static void spuv_ipc_written(uv_write_t *w, int status) {
  spuv_send_t *r = w->data;
  if (r->carrier != NULL)
    uv_close(r->carrier, spuv_free_handle);
  r->status = spuv_err(status);
  spuv_finish(r);
}

/* A handle libuv can write with uv_write2, holding a copy of sock. */
static int spuv_carrier(sockpass_uv_chan_t *c, sockpass_sock_t sock, uv_handle_t **out) {
  sockpass_sock_t d;
  int type, rc;
  uv_handle_t *h = NULL;
  if ((rc = spuv_sock_type(sock, &type)) < 0)
    return rc;
#ifdef _WIN32
  if (type != SOCK_STREAM)
    return SOCKPASS_ENOTSUP;
#else
  if (type != SOCK_STREAM && type != SOCK_DGRAM)
    return SOCKPASS_ENOTSUP;
#endif
  if ((rc = spuv_dup_sock(sock, &d)) < 0)
    return rc;
  h = malloc(type == SOCK_STREAM ? sizeof(uv_tcp_t) : sizeof(uv_udp_t));
  if (h == NULL) {
    sockpass_close_sock(d);
    return SOCKPASS_ENOMEM;
  }
  rc = type == SOCK_STREAM ? uv_tcp_init(c->loop, (uv_tcp_t *)h) : uv_udp_init(c->loop, (uv_udp_t *)h);
  if (rc != 0) {
    free(h);
    sockpass_close_sock(d);
    return spuv_err(rc);
  }
  rc = type == SOCK_STREAM ? uv_tcp_open((uv_tcp_t *)h, (uv_os_sock_t)d)
                           : uv_udp_open((uv_udp_t *)h, (uv_os_sock_t)d);
  if (rc != 0) {
    uv_close(h, spuv_free_handle); /* the handle does not own d */
    sockpass_close_sock(d);
    return spuv_err(rc);
  }
  *out = h;
  return 0;
}

static int spuv_ipc_send(sockpass_uv_chan_t *c, spuv_send_t *r) {
  uv_buf_t b = uv_buf_init((char *)r->data, (unsigned int)r->len);
  int rc;
  r->carrier = NULL;
  r->wreq.data = r;
  if (r->nsocks > 1)
    return SOCKPASS_ETOOMANY;
  if (r->nsocks == 1 && r->len == 0)
    return SOCKPASS_EINVAL;
  if (r->nsocks == 1 && (rc = spuv_carrier(c, r->socks[0], &r->carrier)) < 0)
    return rc;
  if (r->carrier != NULL)
    rc = uv_write2(&r->wreq, (uv_stream_t *)c->pipe, &b, 1, (uv_stream_t *)r->carrier,
                   spuv_ipc_written);
  else
    rc = uv_write(&r->wreq, (uv_stream_t *)c->pipe, &b, 1, spuv_ipc_written);
  if (rc != 0) {
    if (r->carrier != NULL)
      uv_close(r->carrier, spuv_free_handle);
    return spuv_err(rc);
  }
  return 0;
}

/* ---- Life cycle ---- */

static void spuv_release(sockpass_uv_chan_t *c) {
  sockpass_uv_close_cb cb = c->close_cb;
#ifndef _WIN32
  /* After the uv_poll_t is closed: libuv must not watch a closed descriptor. */
  if (c->chan != NULL)
    sockpass_close(c->chan);
#endif
  free(c->buf);
  free(c->socks);
  if (cb != NULL)
    cb(c);
  free(c);
}

static void spuv_handle_closed(uv_handle_t *h) {
  sockpass_uv_chan_t *c = h->data;
  if (--c->open_handles == 0)
    spuv_release(c);
}

static sockpass_uv_chan_t *spuv_new(uv_loop_t *loop, int kind) {
  sockpass_uv_chan_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->loop = loop;
  c->kind = kind;
  if (uv_idle_init(loop, &c->idle) != 0) {
    free(c);
    return NULL;
  }
  c->idle.data = c;
  c->open_handles = 1;
  return c;
}

/* A channel whose setup failed: nothing of the caller's is touched. */
static void spuv_abandon(sockpass_uv_chan_t *c) {
  c->closing = 1;
#ifdef _WIN32
  if (c->open_handles > 1)
    uv_close((uv_handle_t *)&c->async, spuv_handle_closed);
#else
  if (c->open_handles > 1)
    uv_close((uv_handle_t *)&c->poll, spuv_handle_closed);
#endif
  uv_close((uv_handle_t *)&c->idle, spuv_handle_closed);
}

int sockpass_uv_open(uv_loop_t *loop, sockpass_chan_t *chan, sockpass_uv_chan_t **out) {
  sockpass_uv_chan_t *c;
  int rc;
  if (out == NULL)
    return SOCKPASS_EINVAL;
  *out = NULL;
  if (loop == NULL || chan == NULL)
    return SOCKPASS_EINVAL;
  if ((c = spuv_new(loop, SPUV_CHAN)) == NULL)
    return SOCKPASS_ENOMEM;
  c->chan = chan;
  if ((rc = spuv_chan_init(c)) < 0) {
    c->chan = NULL;
    spuv_abandon(c);
    return rc;
  }
  *out = c;
  return 0;
}

int sockpass_uv_ipc_open(uv_loop_t *loop, uv_pipe_t *pipe, sockpass_uv_chan_t **out) {
  sockpass_uv_chan_t *c;
  if (out == NULL)
    return SOCKPASS_EINVAL;
  *out = NULL;
  if (loop == NULL || pipe == NULL || !pipe->ipc || pipe->loop != loop)
    return SOCKPASS_EINVAL;
  if ((c = spuv_new(loop, SPUV_IPC)) == NULL)
    return SOCKPASS_ENOMEM;
  c->pipe = pipe;
  pipe->data = c;
  c->open_handles++; /* the pipe, closed with the channel */
  *out = c;
  return 0;
}

void sockpass_uv_set_data(sockpass_uv_chan_t *chan, void *data) { chan->data = data; }

void *sockpass_uv_get_data(const sockpass_uv_chan_t *chan) { return chan->data; }

uv_loop_t *sockpass_uv_loop(const sockpass_uv_chan_t *chan) { return chan->loop; }

int sockpass_uv_recv_start(sockpass_uv_chan_t *c, sockpass_uv_recv_cb cb) {
  int rc;
  if (c == NULL || cb == NULL || c->closing || c->kind == SPUV_LISTENER)
    return SOCKPASS_EINVAL;
  if ((rc = spuv_room(c)) < 0)
    return rc;
  c->recv_cb = cb;
  if (c->reading)
    return 0;
  c->reading = 1;
  if (c->kind == SPUV_IPC)
    rc = spuv_err(uv_read_start((uv_stream_t *)c->pipe, spuv_ipc_alloc, spuv_ipc_read));
  else
    rc = spuv_watch(c);
  if (rc < 0)
    c->reading = 0;
  return rc;
}

int sockpass_uv_recv_stop(sockpass_uv_chan_t *c) {
  if (c == NULL || c->kind == SPUV_LISTENER)
    return SOCKPASS_EINVAL;
  if (!c->reading)
    return 0;
  if (c->kind == SPUV_IPC) {
    c->reading = 0;
    return spuv_err(uv_read_stop((uv_stream_t *)c->pipe));
  }
  spuv_stop_reading(c);
  return 0;
}

int sockpass_uv_accept_start(sockpass_uv_chan_t *c, sockpass_uv_accept_cb cb) {
  int rc;
  if (c == NULL || cb == NULL || c->closing || c->kind == SPUV_IPC)
    return SOCKPASS_EINVAL;
  if (c->kind == SPUV_CHAN && (c->reading || c->waiting.head != NULL))
    return SOCKPASS_EINVAL; /* in use as a connected channel */
  /* From now on a listener: on a connected channel the first accept says
   * SOCKPASS_EINVAL through cb. */
  c->kind = SPUV_LISTENER;
  c->accept_cb = cb;
  if (c->reading)
    return 0;
  c->reading = 1;
  if ((rc = spuv_watch(c)) < 0)
    c->reading = 0;
  return rc;
}

int sockpass_uv_accept_stop(sockpass_uv_chan_t *c) {
  if (c == NULL || c->kind != SPUV_LISTENER)
    return SOCKPASS_EINVAL;
  if (c->reading)
    spuv_stop_reading(c);
  return 0;
}

int sockpass_uv_send(sockpass_uv_chan_t *c, const sockpass_sock_t *socks, size_t nsocks,
                     const void *data, size_t len, sockpass_uv_send_cb cb, void *arg) {
  spuv_send_t *r;
  size_t i;
  int rc;
  if (c == NULL || c->closing || c->kind == SPUV_LISTENER || (nsocks > 0 && socks == NULL) ||
      (len > 0 && data == NULL) || (nsocks == 0 && len == 0))
    return SOCKPASS_EINVAL;
  if (nsocks > SOCKPASS_MAX_SOCKS)
    return SOCKPASS_ETOOMANY;
  if (len > SOCKPASS_MAX_PAYLOAD)
    return SOCKPASS_EMSGSIZE;
  for (i = 0; i < nsocks; i++)
    if (socks[i] == SOCKPASS_INVALID_SOCK)
      return SOCKPASS_EBADF;
  r = malloc(sizeof *r + nsocks * sizeof *socks + len);
  if (r == NULL)
    return SOCKPASS_ENOMEM;
  memset(r, 0, sizeof *r);
  r->chan = c;
  r->cb = cb;
  r->arg = arg;
  r->nsocks = nsocks;
  r->len = len;
  r->socks = (sockpass_sock_t *)(void *)(r + 1);
  r->data = (unsigned char *)(r->socks + nsocks);
  if (nsocks > 0)
    memcpy(r->socks, socks, nsocks * sizeof *socks);
  if (len > 0)
    memcpy(r->data, data, len);
  rc = c->kind == SPUV_IPC ? spuv_ipc_send(c, r) : spuv_chan_send(c, r);
  if (rc < 0)
    free(r);
  return rc;
}

static void spuv_pipe_closed(uv_handle_t *h) {
  sockpass_uv_chan_t *c = h->data;
  if (--c->open_handles == 0)
    spuv_release(c);
}

void sockpass_uv_close(sockpass_uv_chan_t *c, sockpass_uv_close_cb cb) {
  if (c == NULL || c->closing)
    return;
  c->closing = 1;
  c->reading = 0;
  c->close_cb = cb;
  if (c->kind == SPUV_IPC) {
    /* libuv cancels the writes in flight (their callbacks run first). */
    uv_close((uv_handle_t *)c->pipe, spuv_pipe_closed);
    spuv_run_done(c);
    uv_close((uv_handle_t *)&c->idle, spuv_handle_closed);
    return;
  }
  spuv_chan_close(c);
}

/* ---- Sockets and handles ---- */

int sockpass_uv_tcp_open(uv_loop_t *loop, uv_tcp_t *tcp, sockpass_sock_t sock) {
  int type, rc;
  if (loop == NULL || tcp == NULL)
    return SOCKPASS_EINVAL;
  if (sock == SOCKPASS_INVALID_SOCK)
    return SOCKPASS_EBADF;
  /* The loop initialized Winsock already; sockpass_adopt's check is for
   * values that arrived by other routes and have not been adopted. */
  if ((rc = spuv_sock_type(sock, &type)) < 0)
    return rc;
  if (type != SOCK_STREAM)
    return SOCKPASS_EINVAL;
  if ((rc = uv_tcp_init(loop, tcp)) != 0)
    return spuv_err(rc);
  if ((rc = uv_tcp_open(tcp, (uv_os_sock_t)sock)) != 0) {
    uv_close((uv_handle_t *)tcp, NULL);
    return spuv_err(rc);
  }
  return 0;
}

int sockpass_uv_udp_open(uv_loop_t *loop, uv_udp_t *udp, sockpass_sock_t sock) {
  int type, rc;
  if (loop == NULL || udp == NULL)
    return SOCKPASS_EINVAL;
  if (sock == SOCKPASS_INVALID_SOCK)
    return SOCKPASS_EBADF;
  if ((rc = spuv_sock_type(sock, &type)) < 0)
    return rc;
  if (type != SOCK_DGRAM)
    return SOCKPASS_EINVAL;
  if ((rc = uv_udp_init(loop, udp)) != 0)
    return spuv_err(rc);
  if ((rc = uv_udp_open(udp, (uv_os_sock_t)sock)) != 0) {
    uv_close((uv_handle_t *)udp, NULL);
    return spuv_err(rc);
  }
  return 0;
}

int sockpass_uv_handle_sock(const uv_handle_t *handle, sockpass_sock_t *sock) {
  uv_os_fd_t fd;
  int rc;
  if (sock == NULL)
    return SOCKPASS_EINVAL;
  *sock = SOCKPASS_INVALID_SOCK;
  if (handle == NULL || (handle->type != UV_TCP && handle->type != UV_UDP))
    return SOCKPASS_EINVAL;
  if ((rc = uv_fileno(handle, &fd)) != 0)
    return SOCKPASS_EBADF;
  *sock = (sockpass_sock_t)(uintptr_t)fd;
  return 0;
}
