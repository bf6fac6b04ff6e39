/* SPDX-License-Identifier: MIT */
/*
 * Windows channels: named pipes in message mode carrying frames (src/frame.h).
 * docs/protocol.md describes the frame, the HELLO handshake that tells a
 * sender which process reads the other end, and the lifetimes of sockets.
 *
 * Locks: rlock serializes reading (and the read buffer), wlock writing (and
 * the write buffer). When both are needed, rlock is taken first.
 */
#include "win.h"

#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define SP_PIPE_PREFIX "\\\\.\\pipe\\"
#define SP_PIPE_PREFIX_LEN 9
#define SP_PIPE_NAME_MAX 256          /* characters, the OS's limit */
#define SP_PIPE_QUOTA (256 * 1024)    /* advisory buffer: above the largest frame */
#define SP_READ_ROOM 4096             /* the least a read asks for */
#define SP_PUMP_CAP (4 * 1024 * 1024) /* buffered frames a sender reads past */
#define SP_CONNECT_WAIT_MS 5000       /* connect: how long all instances may be busy */
#define SP_TARGET_SLICE_MS 20

enum { SP_KIND_CHAN, SP_KIND_LISTENER };
enum { SP_ORIGIN_PAIR, SP_ORIGIN_NAMED, SP_ORIGIN_OPEN };

struct sockpass_chan {
  HANDLE h; /* the pipe; for a listener, the instance waiting for a client */
  int kind, origin;
  volatile LONG timeout_ms;      /* receive and accept */
  volatile LONG send_timeout_ms; /* send */
  HANDLE cancel_ev; /* manual reset: set by sockpass_cancel until cleared */

  CRITICAL_SECTION rlock;
  OVERLAPPED rov;
  unsigned char *rbuf; /* frames read and not yet consumed, from rbuf[0] */
  size_t rcap, rlen;
  int rerr; /* sticky: SOCKPASS_EPROTO once the stream cannot be trusted */

  CRITICAL_SECTION wlock;
  OVERLAPPED wov;
  int wpending;  /* a HELLO write is in flight on wov */
  size_t wowed;  /* a DISCARD frame at wbuf[0] that must go out first */
  int werr;      /* sticky: SOCKPASS_EPROTO after half a frame went out */
  unsigned char hello[SP_FRAME_HDR_SIZE];
  unsigned char *wbuf;
  size_t wcap;

  volatile LONG peer_pid; /* from the newest HELLO; 0 while none */
  HANDLE hello_ev;        /* manual reset: set once peer_pid is known */
  sockpass_chan_t *sibling; /* the other end of a pair, while open here */

  wchar_t *name; /* a listener's pipe name */
  int check_mode; /* a listener's peer check (SOCKPASS_PEER_*), for accept */
  long check_pid;

  /* Readiness (sp__ready_handle), under rlock. A channel keeps a read of
   * the pipe in flight into abuf on aov, whose event is what the caller
   * waits on; its bytes join rbuf when a receive collects it. A listener
   * keeps its ConnectNamedPipe in flight on rov instead. */
  OVERLAPPED aov;
  unsigned char *abuf;
  int apending; /* a read-ahead is in flight on aov */
  int cpending; /* a listener's ConnectNamedPipe is in flight on rov */
};

/* Guards every sibling pointer: closing one end clears its sibling's. */
static SRWLOCK sp_sibling_lock = SRWLOCK_INIT;
static volatile LONG sp_pair_counter;

/* ---- Deadlines ---- */

typedef struct {
  int mode; /* -1 forever, 0 non-blocking, 1 until end */
  ULONGLONG end;
} sp_deadline_t;

static void sp_deadline_start(sp_deadline_t *d, LONG ms) {
  d->mode = ms < 0 ? -1 : ms == 0 ? 0 : 1;
  d->end = ms > 0 ? GetTickCount64() + (ULONGLONG)ms : 0;
}

static DWORD sp_deadline_left(const sp_deadline_t *d) {
  ULONGLONG now;
  if (d->mode < 0)
    return INFINITE;
  if (d->mode == 0)
    return 0;
  now = GetTickCount64();
  return now >= d->end ? 0 : (DWORD)(d->end - now);
}

static int sp_deadline_err(const sp_deadline_t *d) {
  return d->mode == 0 ? SOCKPASS_EAGAIN : SOCKPASS_ETIMEDOUT;
}

/* ---- Overlapped I/O with timeout and cancel ---- */

/* Wait for an operation on ov that returned ERROR_IO_PENDING. Returns 0
 * when it finished (*err is its own result, *n its bytes), or the timeout /
 * cancel code after cancelling it; *n then says what moved anyway. */
static int sp_io_wait(sockpass_chan_t *c, OVERLAPPED *ov, const sp_deadline_t *d, DWORD *n,
                      DWORD *err) {
  HANDLE hs[2];
  DWORD w;
  int why;
  hs[0] = ov->hEvent;
  hs[1] = c->cancel_ev;
  *n = 0;
  w = WaitForMultipleObjects(2, hs, FALSE, sp_deadline_left(d));
  if (w == WAIT_OBJECT_0) {
    *err = GetOverlappedResult(c->h, ov, n, FALSE) ? 0 : GetLastError();
    return 0;
  }
  why = w == WAIT_OBJECT_0 + 1 ? SOCKPASS_ECANCELED
        : w == WAIT_TIMEOUT    ? sp_deadline_err(d)
                               : sp__win_error();
  CancelIoEx(c->h, ov);
  if (GetOverlappedResult(c->h, ov, n, TRUE)) {
    *err = 0;
    return 0; /* it completed before the cancel took hold */
  }
  *err = GetLastError();
  if (*err == ERROR_OPERATION_ABORTED)
    return why;
  return 0;
}

/* Start an overlapped operation's bookkeeping after the call that began it:
 * ok is its return value. */
static int sp_io_finish(sockpass_chan_t *c, OVERLAPPED *ov, BOOL ok, const sp_deadline_t *d,
                        DWORD *n, DWORD *err) {
  *n = 0;
  *err = 0;
  if (!ok) {
    *err = GetLastError();
    if (*err == ERROR_IO_PENDING)
      return sp_io_wait(c, ov, d, n, err);
    if (*err != ERROR_MORE_DATA)
      return 0;
  }
  if (!GetOverlappedResult(c->h, ov, n, FALSE))
    *err = GetLastError();
  return 0;
}

/* ---- Buffers ---- */

static int sp_grow(unsigned char **buf, size_t *cap, size_t want) {
  size_t ncap = *cap ? *cap : SP_READ_ROOM;
  unsigned char *p;
  if (*cap >= want)
    return 0;
  while (ncap < want)
    ncap *= 2;
  p = realloc(*buf, ncap);
  if (p == NULL)
    return SOCKPASS_ENOMEM;
  *buf = p;
  *cap = ncap;
  return 0;
}

static void sp_consume(sockpass_chan_t *c, size_t n) {
  memmove(c->rbuf, c->rbuf + n, c->rlen - n);
  c->rlen -= n;
}

/* ---- Writing ---- */

static int sp_write_raw(sockpass_chan_t *c, const unsigned char *buf, size_t len,
                        const sp_deadline_t *d) {
  DWORD n, err;
  int rc;
  BOOL ok = WriteFile(c->h, buf, (DWORD)len, NULL, &c->wov);
  rc = sp_io_finish(c, &c->wov, ok, d, &n, &err);
  if (rc < 0) {
    if (n != 0)
      c->werr = SOCKPASS_EPROTO; /* half a frame went out: framing is lost */
    return rc;
  }
  if (err != 0)
    return sp__translate((int)err);
  if (n != len) {
    c->werr = SOCKPASS_EPROTO;
    return c->werr;
  }
  return 0;
}

/* Under wlock: finish what earlier calls left for this one (a HELLO in
 * flight, a DISCARD owed), so frames never interleave. */
static int sp_write_settle(sockpass_chan_t *c, const sp_deadline_t *d) {
  DWORD n, err;
  int rc;
  if (c->werr)
    return c->werr;
  if (c->wpending) {
    rc = sp_io_wait(c, &c->wov, d, &n, &err);
    c->wpending = 0; /* delivered, failed or cancelled whole: a HELLO is tiny */
    if (rc < 0 && n == 0)
      return rc;
  }
  if (c->wowed > 0) {
    if ((rc = sp_write_raw(c, c->wbuf, c->wowed, d)) < 0 && rc != SOCKPASS_EOF)
      return rc;
    c->wowed = 0;
  }
  return 0;
}

/* Write a control frame (HELLO, BYE_ACK) without waiting for the peer to
 * read it: the write may stay in flight (c->hello is its buffer) and the
 * next writer finishes it. */
static void sp_control_async(sockpass_chan_t *c, uint32_t type, uint32_t flags) {
  sp_frame_t f;
  DWORD n;
  EnterCriticalSection(&c->wlock);
  if (c->wpending && !HasOverlappedIoCompleted(&c->wov) && type == SP_FRAME_HELLO) {
    /* A HELLO is still on its way: it carries the same pid. */
    LeaveCriticalSection(&c->wlock);
    return;
  }
  if (c->wpending) {
    /* Only a BYE_ACK waits here, and the peer that asked for it reads. */
    GetOverlappedResult(c->h, &c->wov, &n, TRUE);
    c->wpending = 0;
  }
  if (c->werr == 0 && c->wowed == 0) {
    sp_frame_control(&f, type, (uint32_t)GetCurrentProcessId(), flags);
    sp_frame_encode(c->hello, &f);
    if (!WriteFile(c->h, c->hello, SP_FRAME_HDR_SIZE, NULL, &c->wov) &&
        GetLastError() == ERROR_IO_PENDING)
      c->wpending = 1;
    /* Any other failure means the peer is gone; reads will say so. */
  }
  LeaveCriticalSection(&c->wlock);
}

/* Under wlock, with wbuf holding a DATA frame whose first n records were
 * duplicated for pid: turn it into a DISCARD frame, so that the target
 * claims and closes them. It goes out now if the pipe takes it at once,
 * else before the next frame. */
static void sp_owe_discard(sockpass_chan_t *c, uint32_t pid, size_t n) {
  sp_frame_t f;
  sp_deadline_t now;
  if (pid == GetCurrentProcessId()) {
    /* Duplicated for this very process: claim and close them here. */
    sp__sock_drop(c->wbuf + SP_FRAME_HDR_SIZE, n);
    return;
  }
  sp_frame_data(&f, SP_FRAME_DISCARD, pid, (uint32_t)n, SP_REC_SIZE, 0);
  sp_frame_encode(c->wbuf, &f);
  c->wowed = f.total;
  sp_deadline_start(&now, 0);
  if (c->werr == 0 && sp_write_raw(c, c->wbuf, c->wowed, &now) != SOCKPASS_EAGAIN)
    c->wowed = 0;
}

/* ---- Reading ---- */

/* Under rlock: n bytes the read-ahead brought join rbuf. Losing them would
 * lose the framing, so a failure poisons the channel. */
static int sp_ahead_keep(sockpass_chan_t *c, DWORD n) {
  if (n == 0)
    return 0;
  if (sp_grow(&c->rbuf, &c->rcap, c->rlen + n) < 0) {
    c->rerr = SOCKPASS_EPROTO;
    return SOCKPASS_ENOMEM;
  }
  memcpy(c->rbuf + c->rlen, c->abuf, n);
  c->rlen += n;
  return 0;
}

/* Under rlock: collect the read that sp__ready_handle left in flight,
 * waiting as d allows; a non-blocking caller leaves it in flight when it
 * has not finished (SOCKPASS_EAGAIN). */
static int sp_ahead_take(sockpass_chan_t *c, const sp_deadline_t *d) {
  DWORD n = 0, err = 0;
  int rc = 0, kept;
  if (d->mode == 0) {
    if (!GetOverlappedResult(c->h, &c->aov, &n, FALSE)) {
      err = GetLastError();
      if (err == ERROR_IO_INCOMPLETE)
        return SOCKPASS_EAGAIN;
    }
  } else {
    rc = sp_io_wait(c, &c->aov, d, &n, &err);
  }
  c->apending = 0;
  kept = sp_ahead_keep(c, n);
  if (rc < 0 || kept < 0)
    return rc < 0 ? rc : kept;
  /* Aborted (the thread that armed it ended): nothing lost, read again. */
  if (err != 0 && err != ERROR_MORE_DATA && err != ERROR_OPERATION_ABORTED)
    return sp__translate((int)err);
  return 0;
}

/* Stop a read-ahead in flight and keep what it brought (closing). */
static void sp_ahead_cancel(sockpass_chan_t *c) {
  DWORD n = 0;
  if (!c->apending)
    return;
  CancelIoEx(c->h, &c->aov);
  GetOverlappedResult(c->h, &c->aov, &n, TRUE);
  c->apending = 0;
  sp_ahead_keep(c, n);
}

/* Under rlock: read what the pipe holds into rbuf, waiting as d allows.
 * need is the buffer size the frame being assembled requires. */
static int sp_fill(sockpass_chan_t *c, const sp_deadline_t *d, size_t need) {
  DWORD n, err, avail = 0;
  size_t want = c->rlen + SP_READ_ROOM, room;
  int rc;
  BOOL ok;
  if (c->apending)
    return sp_ahead_take(c, d);
  if (want < need)
    want = need;
  if ((rc = sp_grow(&c->rbuf, &c->rcap, want)) < 0)
    return rc;
  if (d->mode == 0) {
    /* Non-blocking: read only what is already there. */
    if (!PeekNamedPipe(c->h, NULL, 0, NULL, &avail, NULL))
      return sp__win_error();
    if (avail == 0)
      return SOCKPASS_EAGAIN;
  }
  room = c->rcap - c->rlen;
  if (room > 0x7fffffff)
    room = 0x7fffffff;
  ok = ReadFile(c->h, c->rbuf + c->rlen, (DWORD)room, NULL, &c->rov);
  rc = sp_io_finish(c, &c->rov, ok, d, &n, &err);
  c->rlen += n; /* bytes that arrived stay, whatever else happened */
  if (rc < 0)
    return rc;
  if (err != 0 && err != ERROR_MORE_DATA)
    return sp__translate((int)err);
  return 0;
}

static DWORD sp_known_target(sockpass_chan_t *c) {
  DWORD pid = (DWORD)InterlockedCompareExchange(&c->peer_pid, 0, 0);
  if (pid == 0 && c->origin == SP_ORIGIN_PAIR) {
    AcquireSRWLockShared(&sp_sibling_lock);
    if (c->sibling != NULL)
      pid = GetCurrentProcessId();
    ReleaseSRWLockShared(&sp_sibling_lock);
  }
  return pid;
}

/* Under rlock: act on a control frame. */
static void sp_control(sockpass_chan_t *c, const sp_frame_t *f, const unsigned char *frame) {
  if (f->type == SP_FRAME_HELLO) {
    /* A pair's own ends know each other; the HELLO written when the pair
     * was made is for a process that opens an end later. */
    if (!((f->flags & SP_FRAME_F_PAIR) != 0 && c->origin == SP_ORIGIN_PAIR)) {
      InterlockedExchange(&c->peer_pid, (LONG)f->pid);
      SetEvent(c->hello_ev);
    }
    if ((f->flags & SP_FRAME_F_REQ) != 0)
      sp_control_async(c, SP_FRAME_HELLO, 0);
  } else if (f->type == SP_FRAME_DISCARD) {
    if (f->pid == GetCurrentProcessId())
      sp__sock_drop(frame + SP_FRAME_HDR_SIZE, f->nsocks);
  } else if (f->type == SP_FRAME_BYE) {
    /* The process we would send to stops reading: until another one
     * announces itself, a send with sockets waits (and sees EOF when the
     * last holder of the other end has gone). */
    if ((DWORD)InterlockedCompareExchange(&c->peer_pid, 0, (LONG)f->pid) == f->pid)
      ResetEvent(c->hello_ev);
    sp_control_async(c, SP_FRAME_BYE_ACK, 0);
  }
  /* A BYE_ACK matters only to a closing channel (sp_close_drain). */
}

/* Under rlock: handle and remove every whole control frame in rbuf. Returns
 * 1 when a whole DATA frame starts rbuf (*f), 0 when more bytes are needed
 * (*need is the buffer size wanted), or an error. */
static int sp_scan(sockpass_chan_t *c, sp_frame_t *f, size_t *need) {
  size_t off = 0;
  int have = 0, r;
  sp_frame_t g;
  if (c->rerr)
    return c->rerr;
  for (;;) {
    r = sp_frame_decode(c->rbuf + off, c->rlen - off, SP_REC_SIZE, &g);
    if (r == SP_FRAME_BAD) {
      c->rerr = SOCKPASS_EPROTO;
      return c->rerr;
    }
    if (r == SP_FRAME_MORE) {
      *need = off + (g.total ? g.total : SP_FRAME_HDR_SIZE);
      return have;
    }
    if (g.type == SP_FRAME_DATA) {
      if (off == 0) {
        *f = g;
        have = 1;
      }
      off += g.total;
      continue;
    }
    sp_control(c, &g, c->rbuf + off);
    memmove(c->rbuf + off, c->rbuf + off + g.total, c->rlen - off - g.total);
    c->rlen -= g.total;
  }
}

/* Under rlock: read every frame already waiting, and wait for a HELLO as d
 * allows while no target is known. */
static int sp_pump(sockpass_chan_t *c, const sp_deadline_t *d) {
  sp_frame_t f;
  sp_deadline_t now;
  size_t need = 0;
  int rc;
  sp_deadline_start(&now, 0);
  for (;;) {
    if ((rc = sp_scan(c, &f, &need)) < 0)
      return rc;
    if (c->rlen >= SP_PUMP_CAP && sp_known_target(c) != 0)
      return 0;
    rc = sp_fill(c, &now, need);
    if (rc == 0)
      continue;
    if (sp_known_target(c) != 0)
      return 0; /* EAGAIN, or EOF that the write will report */
    if (rc != SOCKPASS_EAGAIN)
      return rc;
    if ((rc = sp_fill(c, d, need)) < 0)
      return rc;
  }
}

/* The process that reads the other end: see "The handshake" in
 * docs/protocol.md. */
static int sp_target(sockpass_chan_t *c, const sp_deadline_t *d, DWORD *pid) {
  HANDLE hs[2];
  DWORD left, w;
  int rc;
  for (;;) {
    if (TryEnterCriticalSection(&c->rlock)) {
      rc = sp_pump(c, d);
      LeaveCriticalSection(&c->rlock);
      if (rc < 0)
        return rc;
      *pid = sp_known_target(c);
      return *pid != 0 ? 0 : SOCKPASS_EPROTO;
    }
    /* Another thread is reading and acts on HELLOs as they come. */
    if ((*pid = sp_known_target(c)) != 0)
      return 0;
    left = sp_deadline_left(d);
    if (d->mode == 0)
      return SOCKPASS_EAGAIN;
    hs[0] = c->hello_ev;
    hs[1] = c->cancel_ev;
    w = WaitForMultipleObjects(2, hs, FALSE, left < SP_TARGET_SLICE_MS ? left : SP_TARGET_SLICE_MS);
    if (w == WAIT_OBJECT_0 + 1)
      return SOCKPASS_ECANCELED;
    if (w == WAIT_TIMEOUT && left == 0)
      return SOCKPASS_ETIMEDOUT;
  }
}

/* ---- Creating and closing channels ---- */

static int sp_chan_new(HANDLE h, int kind, int origin, sockpass_chan_t **out) {
  sockpass_chan_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return SOCKPASS_ENOMEM;
  c->h = h;
  c->kind = kind;
  c->origin = origin;
  c->timeout_ms = SOCKPASS_WAIT_FOREVER;
  c->send_timeout_ms = SOCKPASS_WAIT_FOREVER;
  c->cancel_ev = CreateEventW(NULL, TRUE, FALSE, NULL);
  c->hello_ev = CreateEventW(NULL, TRUE, FALSE, NULL);
  c->rov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
  c->wov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
  c->aov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
  c->rcap = SP_READ_ROOM;
  c->rbuf = malloc(c->rcap);
  if (c->cancel_ev == NULL || c->hello_ev == NULL || c->rov.hEvent == NULL ||
      c->wov.hEvent == NULL || c->aov.hEvent == NULL || c->rbuf == NULL) {
    int rc = c->rbuf == NULL ? SOCKPASS_ENOMEM : sp__win_error();
    if (c->cancel_ev)
      CloseHandle(c->cancel_ev);
    if (c->hello_ev)
      CloseHandle(c->hello_ev);
    if (c->rov.hEvent)
      CloseHandle(c->rov.hEvent);
    if (c->wov.hEvent)
      CloseHandle(c->wov.hEvent);
    if (c->aov.hEvent)
      CloseHandle(c->aov.hEvent);
    free(c->rbuf);
    free(c);
    return rc;
  }
  InitializeCriticalSection(&c->rlock);
  InitializeCriticalSection(&c->wlock);
  *out = c;
  return 0;
}

/* Closing: release every socket duplicated for this process that is still
 * in the buffer and, with announce, in the pipe: first tell the peer (BYE)
 * and read until it confirms (BYE_ACK) that nothing more comes, the pipe
 * breaks, or it stays quiet for SP_BYE_QUIET_MS; see docs/protocol.md.
 * Without announce (a pair end closed while its other end is open here, an
 * end handed to a child) the pipe is left alone: a child may hold this end
 * and read on. */
#define SP_BYE_QUIET_MS 20
#define SP_BYE_MAX_MS 500

static void sp_close_drain(sockpass_chan_t *c, int announce) {
  sp_deadline_t now, quiet;
  sp_frame_t f;
  ULONGLONG end = GetTickCount64() + SP_BYE_MAX_MS;
  DWORD self = GetCurrentProcessId();
  int acked = !announce, r = SP_FRAME_MORE, rc = 0;
  sp_deadline_start(&now, 0);
  if (announce) {
    EnterCriticalSection(&c->wlock);
    if (sp_write_settle(c, &now) < 0) {
      acked = 1;
    } else {
      sp_frame_control(&f, SP_FRAME_BYE, self, 0);
      sp_frame_encode(c->hello, &f);
      if (sp_write_raw(c, c->hello, SP_FRAME_HDR_SIZE, &now) < 0)
        acked = 1; /* the peer is gone, or not reading at all */
    }
    LeaveCriticalSection(&c->wlock);
  }
  for (;;) {
    /* Poisoned or not: the whole frames before any bad bytes were checked,
     * and their records name sockets duplicated for this process. */
    while ((r = sp_frame_decode(c->rbuf, c->rlen, SP_REC_SIZE, &f)) == SP_FRAME_OK) {
      if ((f.type == SP_FRAME_DATA || f.type == SP_FRAME_DISCARD) && f.nsocks > 0 &&
          f.pid == self)
        sp__sock_drop(c->rbuf + SP_FRAME_HDR_SIZE, f.nsocks);
      else if (f.type == SP_FRAME_BYE_ACK)
        acked = 1;
      sp_consume(c, f.total);
    }
    if (!announce || c->rerr != 0 || r == SP_FRAME_BAD || rc < 0 || GetTickCount64() >= end)
      break;
    rc = sp_fill(c, &now, r == SP_FRAME_MORE && f.total ? f.total : 0);
    if (rc == SOCKPASS_EAGAIN && !acked) {
      sp_deadline_start(&quiet, SP_BYE_QUIET_MS);
      rc = sp_fill(c, &quiet, f.total);
    }
    if (rc == SOCKPASS_EAGAIN || rc == SOCKPASS_ETIMEDOUT)
      break; /* nothing more waiting, and the peer is quiet */
  }
  /* A frame cut short (the peer closed or stopped in the middle of it):
   * the records of it that arrived whole name sockets duplicated for this
   * process all the same. */
  if (sp_frame_decode(c->rbuf, c->rlen, SP_REC_SIZE, &f) != SP_FRAME_BAD &&
      (f.type == SP_FRAME_DATA || f.type == SP_FRAME_DISCARD) && f.nsocks > 0 && f.pid == self) {
    size_t whole = (c->rlen - SP_FRAME_HDR_SIZE) / SP_REC_SIZE;
    sp__sock_drop(c->rbuf + SP_FRAME_HDR_SIZE, whole < f.nsocks ? whole : f.nsocks);
  }
}

/* quiet: the end now belongs to a child, which reads and writes on; the
 * peer must not hear a BYE from this process. */
static void sp_close(sockpass_chan_t *c, int quiet) {
  DWORD n;
  sp_deadline_t now;
  int announce = !quiet;
  if (c->origin == SP_ORIGIN_PAIR) {
    AcquireSRWLockExclusive(&sp_sibling_lock);
    /* While the other end is open in this process, the peer is us. */
    announce = announce && c->sibling == NULL;
    if (c->sibling != NULL)
      c->sibling->sibling = NULL;
    c->sibling = NULL;
    ReleaseSRWLockExclusive(&sp_sibling_lock);
  }
  if (c->kind == SP_KIND_LISTENER && c->cpending) {
    CancelIoEx(c->h, &c->rov);
    GetOverlappedResult(c->h, &c->rov, &n, TRUE);
  }
  if (c->kind == SP_KIND_CHAN) {
    ResetEvent(c->cancel_ev); /* the drain must not be cut short */
    sp_ahead_cancel(c);       /* its bytes may name sockets to claim */
    sp_close_drain(c, announce);
    if (c->wpending && !HasOverlappedIoCompleted(&c->wov))
      CancelIoEx(c->h, &c->wov);
    if (c->wpending)
      GetOverlappedResult(c->h, &c->wov, &n, TRUE);
    c->wpending = 0;
    if (c->wowed > 0 && c->werr == 0) {
      /* Last chance for sockets nobody will claim; see docs/protocol.md. */
      sp_deadline_start(&now, 0);
      sp_write_raw(c, c->wbuf, c->wowed, &now);
    }
  }
  CloseHandle(c->h);
  CloseHandle(c->cancel_ev);
  CloseHandle(c->hello_ev);
  CloseHandle(c->rov.hEvent);
  CloseHandle(c->wov.hEvent);
  CloseHandle(c->aov.hEvent);
  DeleteCriticalSection(&c->rlock);
  DeleteCriticalSection(&c->wlock);
  free(c->rbuf);
  free(c->wbuf);
  free(c->abuf);
  free(c->name);
  free(c);
}

void sp__close(sockpass_chan_t *c) { sp_close(c, 0); }

void sp__close_quiet(sockpass_chan_t *c) { sp_close(c, 1); }

void sp__close_handle(sockpass_handle_t handle) { CloseHandle(handle); }

sockpass_handle_t sp__handle(sockpass_chan_t *c) { return c->h; }

/* Arm the readiness event: see sockpass_ready_handle in sockpass.h. */
int sp__ready_handle(sockpass_chan_t *c, sockpass_handle_t *h) {
  sp_frame_t f;
  size_t need = 0;
  DWORD err = 0;
  int rc = 0;
  EnterCriticalSection(&c->rlock);
  if (c->kind == SP_KIND_LISTENER) {
    if (!c->cpending) {
      ResetEvent(c->rov.hEvent);
      if (!ConnectNamedPipe(c->h, &c->rov) && (err = GetLastError()) == ERROR_IO_PENDING)
        c->cpending = 1;
      else
        SetEvent(c->rov.hEvent); /* a client is there, or an error accept reports */
    }
    *h = c->rov.hEvent;
  } else {
    if (sp_scan(c, &f, &need) != 0) {
      SetEvent(c->aov.hEvent); /* a whole message, or an error, waits here */
    } else if (!c->apending) {
      if (c->abuf == NULL && (c->abuf = malloc(SP_READ_ROOM)) == NULL) {
        rc = SOCKPASS_ENOMEM;
      } else {
        ResetEvent(c->aov.hEvent);
        if (ReadFile(c->h, c->abuf, SP_READ_ROOM, NULL, &c->aov) ||
            (err = GetLastError()) == ERROR_IO_PENDING || err == ERROR_MORE_DATA)
          c->apending = 1; /* done or not, its completion signals the event */
        else
          SetEvent(c->aov.hEvent); /* a broken pipe or the like: recv reports it */
      }
    }
    *h = c->aov.hEvent;
  }
  LeaveCriticalSection(&c->rlock);
  return rc;
}

/* The security descriptor of every pipe: full access for the current user
 * only, nothing inherited. Built once. */
static INIT_ONCE sp_sd_once = INIT_ONCE_STATIC_INIT;
static PSECURITY_DESCRIPTOR sp_sd;

static BOOL CALLBACK sp_sd_build(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  union {
    TOKEN_USER tu;
    unsigned char bytes[512];
  } u;
  HANDLE tok;
  DWORD len = 0;
  LPWSTR sid = NULL;
  wchar_t sddl[256];
  BOOL ok;
  (void)once;
  (void)param;
  (void)ctx;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
    return FALSE;
  ok = GetTokenInformation(tok, TokenUser, &u, sizeof u, &len);
  CloseHandle(tok);
  if (!ok || !ConvertSidToStringSidW(u.tu.User.Sid, &sid))
    return FALSE;
  /* D:P = a protected DACL; one ACE: GENERIC_ALL for this user. */
  _snwprintf(sddl, sizeof sddl / sizeof sddl[0], L"D:P(A;;GA;;;%ls)", sid);
  sddl[sizeof sddl / sizeof sddl[0] - 1] = 0;
  LocalFree(sid);
  return ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sp_sd,
                                                              NULL);
}

static int sp_security(SECURITY_ATTRIBUTES *sa) {
  if (!InitOnceExecuteOnce(&sp_sd_once, sp_sd_build, NULL, NULL))
    return sp__win_error();
  sa->nLength = sizeof *sa;
  sa->lpSecurityDescriptor = sp_sd;
  sa->bInheritHandle = FALSE;
  return 0;
}

static HANDLE sp_pipe_create(const wchar_t *name, int first, DWORD instances) {
  SECURITY_ATTRIBUTES sa;
  int rc = sp_security(&sa);
  if (rc < 0) {
    SetLastError(ERROR_ACCESS_DENIED);
    return INVALID_HANDLE_VALUE;
  }
  return CreateNamedPipeW(name,
                          PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED |
                              (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
                          PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT |
                              PIPE_REJECT_REMOTE_CLIENTS,
                          instances, SP_PIPE_QUOTA, SP_PIPE_QUOTA, 0, &sa);
}

/* Does a pipe of this name exist? FILE_FLAG_FIRST_PIPE_INSTANCE answers
 * that on Windows; this check in front of it also holds where the flag is
 * not enforced (Wine). It never connects to the pipe. */
static int sp_pipe_exists(const wchar_t *name) {
  if (WaitNamedPipeW(name, 1))
    return 1;
  return GetLastError() == ERROR_SEM_TIMEOUT;
}

static HANDLE sp_pipe_open(const wchar_t *name) {
  HANDLE h = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                         FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                         NULL);
  DWORD mode = PIPE_READMODE_MESSAGE;
  if (h != INVALID_HANDLE_VALUE && !SetNamedPipeHandleState(h, &mode, NULL, NULL)) {
    DWORD err = GetLastError();
    CloseHandle(h);
    SetLastError(err);
    return INVALID_HANDLE_VALUE;
  }
  return h;
}

/* "\\.\pipe\x" or a bare "x", UTF-8, as a wide pipe path. */
static int sp_pipe_name(const char *name, wchar_t **out) {
  const char *prefix = SP_PIPE_PREFIX;
  size_t i, plen = 0;
  int n, has = 1;
  wchar_t *w;
  for (i = 0; i < SP_PIPE_PREFIX_LEN; i++) {
    char a = name[i], b = prefix[i];
    if (a >= 'A' && a <= 'Z')
      a = (char)(a - 'A' + 'a');
    if (a != b) {
      has = 0;
      break;
    }
  }
  if (!has) {
    if (name[0] == '\\' && name[1] == '\\')
      return SOCKPASS_EINVAL; /* another host or device: local pipes only */
    plen = SP_PIPE_PREFIX_LEN;
  } else if (name[SP_PIPE_PREFIX_LEN] == '\0') {
    return SOCKPASS_EINVAL;
  }
  n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1, NULL, 0);
  if (n <= 0)
    return SOCKPASS_EINVAL;
  if (plen + (size_t)n - 1 > SP_PIPE_NAME_MAX)
    return SOCKPASS_ENAMETOOLONG;
  w = malloc((plen + (size_t)n) * sizeof *w);
  if (w == NULL)
    return SOCKPASS_ENOMEM;
  for (i = 0; i < plen; i++)
    w[i] = (wchar_t)prefix[i];
  MultiByteToWideChar(CP_UTF8, 0, name, -1, w + plen, n);
  *out = w;
  return 0;
}

/* Both ends of a fresh pipe, made here. */
int sp__pair(sockpass_chan_t **a, sockpass_chan_t **b) {
  wchar_t name[96];
  HANDLE s = INVALID_HANDLE_VALUE, cl;
  LARGE_INTEGER qpc;
  DWORD err = 0;
  int rc, tries;

  if ((rc = sp__wsa_init()) < 0)
    return rc;
  for (tries = 0; tries < 16 && s == INVALID_HANDLE_VALUE; tries++) {
    QueryPerformanceCounter(&qpc);
    _snwprintf(name, sizeof name / sizeof name[0], L"\\\\.\\pipe\\sockpass-%lu-%ld-%08lx",
               (unsigned long)GetCurrentProcessId(), (long)InterlockedIncrement(&sp_pair_counter),
               (unsigned long)(qpc.LowPart ^ (DWORD)qpc.HighPart));
    name[sizeof name / sizeof name[0] - 1] = 0;
    if (sp_pipe_exists(name)) {
      err = ERROR_ACCESS_DENIED;
      continue;
    }
    s = sp_pipe_create(name, 1, 1);
    if (s == INVALID_HANDLE_VALUE) {
      err = GetLastError();
      if (err != ERROR_ACCESS_DENIED && err != ERROR_PIPE_BUSY)
        break; /* anything but "the name is taken" */
    }
  }
  if (s == INVALID_HANDLE_VALUE)
    return sp__translate((int)err);
  cl = sp_pipe_open(name);
  if (cl == INVALID_HANDLE_VALUE) {
    rc = sp__win_error();
    CloseHandle(s);
    return rc;
  }
  if ((rc = sp_chan_new(s, SP_KIND_CHAN, SP_ORIGIN_PAIR, a)) < 0) {
    CloseHandle(s);
    CloseHandle(cl);
    return rc;
  }
  if ((rc = sp_chan_new(cl, SP_KIND_CHAN, SP_ORIGIN_PAIR, b)) < 0) {
    sp__close(*a);
    *a = NULL;
    CloseHandle(cl);
    return rc;
  }
  /* The client opened the instance, so it is connected already. */
  if (!ConnectNamedPipe(s, &(*a)->rov) && GetLastError() == ERROR_IO_PENDING) {
    DWORD n;
    GetOverlappedResult(s, &(*a)->rov, &n, TRUE);
  }
  AcquireSRWLockExclusive(&sp_sibling_lock);
  (*a)->sibling = *b;
  (*b)->sibling = *a;
  ReleaseSRWLockExclusive(&sp_sibling_lock);
  sp_control_async(*a, SP_FRAME_HELLO, SP_FRAME_F_PAIR);
  sp_control_async(*b, SP_FRAME_HELLO, SP_FRAME_F_PAIR);
  return 0;
}

int sp__listen(const char *name, sockpass_chan_t **out) {
  wchar_t *w = NULL;
  HANDLE h;
  DWORD err;
  int rc;
  if ((rc = sp__wsa_init()) < 0 || (rc = sp_pipe_name(name, &w)) < 0)
    return rc;
  if (sp_pipe_exists(w)) {
    free(w);
    return SOCKPASS_EADDRINUSE;
  }
  h = sp_pipe_create(w, 1, PIPE_UNLIMITED_INSTANCES);
  if (h == INVALID_HANDLE_VALUE) {
    err = GetLastError();
    free(w);
    /* FILE_FLAG_FIRST_PIPE_INSTANCE: someone holds the name already. */
    if (err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY)
      return SOCKPASS_EADDRINUSE;
    return sp__translate((int)err);
  }
  if ((rc = sp_chan_new(h, SP_KIND_LISTENER, SP_ORIGIN_NAMED, out)) == 0)
    (*out)->check_mode = SOCKPASS_PEER_SAME_USER;
  if (rc < 0) {
    CloseHandle(h);
    free(w);
    return rc;
  }
  (*out)->name = w;
  return 0;
}

int sp__accept(sockpass_chan_t *l, sockpass_chan_t **out) {
  sp_deadline_t d;
  HANDLE next, conn;
  DWORD n, err;
  int rc;
  BOOL ok;
  if (l->kind != SP_KIND_LISTENER)
    return SOCKPASS_EINVAL;
  sp_deadline_start(&d, InterlockedCompareExchange(&l->timeout_ms, 0, 0));
  EnterCriticalSection(&l->rlock);
  for (;;) {
    if (l->cpending) {
      /* sp__ready_handle left one in flight: collect it, or leave it be. */
      n = 0;
      err = 0;
      if (d.mode == 0 && !GetOverlappedResult(l->h, &l->rov, &n, FALSE) &&
          (err = GetLastError()) == ERROR_IO_INCOMPLETE) {
        rc = SOCKPASS_EAGAIN;
        goto out;
      }
      if (d.mode != 0)
        rc = sp_io_wait(l, &l->rov, &d, &n, &err);
      l->cpending = 0;
      if (rc < 0)
        goto out;
    } else {
      ResetEvent(l->rov.hEvent);
      ok = ConnectNamedPipe(l->h, &l->rov);
      err = ok ? 0 : GetLastError();
      if (err == ERROR_IO_PENDING && d.mode == 0) {
        l->cpending = 1; /* stays in flight: readiness and the next accept use it */
        rc = SOCKPASS_EAGAIN;
        goto out;
      }
      if (err == ERROR_IO_PENDING) {
        if ((rc = sp_io_wait(l, &l->rov, &d, &n, &err)) < 0)
          goto out;
      }
    }
    if (err == 0 || err == ERROR_PIPE_CONNECTED) {
      /* A client that fails the check is cut off before it can send. */
      rc = sp__pipe_peer_ok(l->h, l->check_mode, l->check_pid);
      if (rc == 0)
        break;
      DisconnectNamedPipe(l->h);
      if (rc != SOCKPASS_EPERM)
        goto out;
      continue;
    }
    if (err == ERROR_NO_DATA) {
      /* A client came and went before we looked: take the next one. */
      DisconnectNamedPipe(l->h);
      continue;
    }
    rc = sp__translate((int)err);
    goto out;
  }
  /* Put the next instance in place before handing this one over, so that
   * a client never finds the name without a listening instance. */
  next = sp_pipe_create(l->name, 0, PIPE_UNLIMITED_INSTANCES);
  if (next == INVALID_HANDLE_VALUE) {
    rc = sp__win_error();
    DisconnectNamedPipe(l->h);
    goto out;
  }
  conn = l->h;
  l->h = next;
  if ((rc = sp_chan_new(conn, SP_KIND_CHAN, SP_ORIGIN_NAMED, out)) < 0) {
    CloseHandle(conn);
    goto out;
  }
  sp_control_async(*out, SP_FRAME_HELLO, 0);
out:
  LeaveCriticalSection(&l->rlock);
  return rc;
}

int sp__connect(const char *name, sockpass_chan_t **out) {
  wchar_t *w = NULL;
  HANDLE h;
  ULONGLONG end = GetTickCount64() + SP_CONNECT_WAIT_MS, now;
  DWORD err;
  int rc;
  if ((rc = sp__wsa_init()) < 0 || (rc = sp_pipe_name(name, &w)) < 0)
    return rc;
  for (;;) {
    h = sp_pipe_open(w);
    if (h != INVALID_HANDLE_VALUE)
      break;
    err = GetLastError();
    now = GetTickCount64();
    if (err != ERROR_PIPE_BUSY || now >= end) {
      free(w);
      return err == ERROR_PIPE_BUSY ? SOCKPASS_ETIMEDOUT : sp__translate((int)err);
    }
    /* Every instance is taken; the listener makes a new one on accept. */
    WaitNamedPipeW(w, (DWORD)(end - now) < 100 ? (DWORD)(end - now) : 100);
  }
  free(w);
  if ((rc = sp_chan_new(h, SP_KIND_CHAN, SP_ORIGIN_NAMED, out)) < 0) {
    CloseHandle(h);
    return rc;
  }
  sp_control_async(*out, SP_FRAME_HELLO, 0);
  return 0;
}

/* Is h open for overlapped I/O? Timeouts and cancel need it. */
typedef LONG(NTAPI *sp_nt_query_file_fn)(HANDLE, void *, void *, ULONG, int);

static int sp_is_overlapped(HANDLE h) {
  struct {
    void *status;
    ULONG_PTR information;
  } iosb;
  ULONG mode = 0;
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  FARPROC p = ntdll ? GetProcAddress(ntdll, "NtQueryInformationFile") : NULL;
  sp_nt_query_file_fn query;
  if (p == NULL)
    return 1; /* cannot tell: trust the caller */
  query = (sp_nt_query_file_fn)(void (*)(void))p;
  /* 16 = FileModeInformation; 0x30 = FILE_SYNCHRONOUS_IO_(NON)ALERT. */
  if (query(h, &iosb, &mode, sizeof mode, 16) < 0)
    return 1;
  return (mode & 0x30) == 0;
}

int sp__open(sockpass_handle_t h, sockpass_chan_t **out) {
  DWORD hflags, pflags = 0, mode = PIPE_READMODE_MESSAGE;
  int rc;
  if (!GetHandleInformation(h, &hflags))
    return SOCKPASS_EBADF;
  if ((rc = sp__wsa_init()) < 0)
    goto fail;
  if (GetFileType(h) != FILE_TYPE_PIPE || !GetNamedPipeInfo(h, &pflags, NULL, NULL, NULL) ||
      !sp_is_overlapped(h)) {
    rc = SOCKPASS_ENOTSUP; /* a file, a socket, or a pipe without overlapped I/O */
    goto fail;
  }
  if ((pflags & PIPE_TYPE_MESSAGE) != 0)
    SetNamedPipeHandleState(h, &mode, NULL, NULL);
  /* This process owns it now; a child gets it only when asked for. */
  SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0);
  if ((rc = sp_chan_new(h, SP_KIND_CHAN, SP_ORIGIN_OPEN, out)) < 0)
    goto fail;
  /* Announce the process that reads this end from now on, and ask the
   * peer's reader to announce itself. */
  sp_control_async(*out, SP_FRAME_HELLO, SP_FRAME_F_REQ);
  return 0;
fail:
  CloseHandle(h);
  return rc;
}

/* ---- Timeouts and cancel ---- */

int sp__set_timeout(sockpass_chan_t *c, int timeout_ms) {
  InterlockedExchange(&c->timeout_ms, timeout_ms);
  InterlockedExchange(&c->send_timeout_ms, timeout_ms);
  return 0;
}

int sp__set_send_timeout(sockpass_chan_t *c, int timeout_ms) {
  InterlockedExchange(&c->send_timeout_ms, timeout_ms);
  return 0;
}

int sp__cancel(sockpass_chan_t *c) {
  if (!SetEvent(c->cancel_ev))
    return sp__win_error();
  return 0;
}

int sp__cancel_clear(sockpass_chan_t *c) {
  if (!ResetEvent(c->cancel_ev))
    return sp__win_error();
  return 0;
}

/* ---- Messages ---- */

int sp__send(sockpass_chan_t *c, const sockpass_sock_t *socks, size_t nsocks, const void *data,
             size_t len) {
  sp_deadline_t d;
  sp_frame_t f;
  DWORD pid = 0;
  size_t total, i;
  int rc = 0;

  if (c->kind != SP_KIND_CHAN)
    return SOCKPASS_EINVAL;
  sp_deadline_start(&d, InterlockedCompareExchange(&c->send_timeout_ms, 0, 0));
  if (nsocks > 0) {
    if ((rc = sp__wsa_init()) < 0 || (rc = sp_target(c, &d, &pid)) < 0)
      return rc;
  }
  total = SP_FRAME_HDR_SIZE + nsocks * SP_REC_SIZE + len;
  EnterCriticalSection(&c->wlock);
  if ((rc = sp_write_settle(c, &d)) < 0 || (rc = sp_grow(&c->wbuf, &c->wcap, total)) < 0)
    goto out;
  for (i = 0; i < nsocks; i++)
    if ((rc = sp__sock_dup(socks[i], pid, c->wbuf + SP_FRAME_HDR_SIZE + i * SP_REC_SIZE)) < 0)
      break;
  if (rc < 0) {
    /* All or nothing: the ones already duplicated go back as a DISCARD. */
    if (i > 0)
      sp_owe_discard(c, pid, i);
    if (rc == SOCKPASS_EINVAL) {
      /* WSADuplicateSocketW says EINVAL for a target that has gone. */
      HANDLE p = OpenProcess(SYNCHRONIZE, FALSE, pid);
      if (p == NULL)
        rc = SOCKPASS_EOF;
      else
        CloseHandle(p);
    }
    goto out;
  }
  sp_frame_data(&f, SP_FRAME_DATA, pid, (uint32_t)nsocks, SP_REC_SIZE, (uint32_t)len);
  sp_frame_encode(c->wbuf, &f);
  if (len > 0)
    memcpy(c->wbuf + SP_FRAME_HDR_SIZE + nsocks * SP_REC_SIZE, data, len);
  rc = sp_write_raw(c, c->wbuf, total, &d);
  if (rc < 0 && nsocks > 0 && c->werr == 0 && (rc != SOCKPASS_EOF || pid == GetCurrentProcessId()))
    sp_owe_discard(c, pid, nsocks); /* nothing went out: take the duplicates back */
out:
  LeaveCriticalSection(&c->wlock);
  return rc;
}

/* Under rlock: the DATA frame f starts rbuf. Hand it over or drop it whole. */
static int sp_deliver(sockpass_chan_t *c, const sp_frame_t *f, sockpass_sock_t *socks,
                      size_t *nsocks, void *buf, size_t *len) {
  const unsigned char *recs = c->rbuf + SP_FRAME_HDR_SIZE;
  size_t i, j;
  int rc = 0;

  if (f->nsocks > 0 && f->pid != GetCurrentProcessId()) {
    /* Duplicated for another process (a stale HELLO): the handles live
     * there, not here. Send them back as a DISCARD, so that process, if it
     * reads the other end, claims and closes them. */
    EnterCriticalSection(&c->wlock);
    if (sp_write_settle(c, &(sp_deadline_t){0, 0}) == 0 &&
        sp_grow(&c->wbuf, &c->wcap, SP_FRAME_HDR_SIZE + (size_t)f->nsocks * SP_REC_SIZE) == 0) {
      memcpy(c->wbuf + SP_FRAME_HDR_SIZE, recs, (size_t)f->nsocks * SP_REC_SIZE);
      sp_owe_discard(c, f->pid, f->nsocks);
    }
    LeaveCriticalSection(&c->wlock);
    rc = SOCKPASS_EPROTO;
  } else if (f->nsocks > *nsocks || f->payload > *len) {
    sp__sock_drop(recs, f->nsocks);
    rc = SOCKPASS_ETRUNC;
  } else {
    for (i = 0; i < f->nsocks; i++)
      if ((rc = sp__sock_rebuild(recs + i * SP_REC_SIZE, &socks[i])) < 0)
        break;
    if (rc < 0) {
      for (j = 0; j < i; j++) {
        closesocket(socks[j]);
        socks[j] = SOCKPASS_INVALID_SOCK;
      }
      sp__sock_drop(recs + (i + 1) * SP_REC_SIZE, f->nsocks - i - 1);
      /* A record this process cannot claim is the peer's doing, unless the
       * process is out of room or Winsock has been stopped under it. */
      if (rc != SOCKPASS_EMFILE && rc != SOCKPASS_ENOMEM && rc != SOCKPASS_EWINSOCK)
        rc = SOCKPASS_EPROTO;
    } else {
      if (f->payload > 0)
        memcpy(buf, recs + (size_t)f->nsocks * SP_REC_SIZE, f->payload);
      *nsocks = f->nsocks;
      *len = f->payload;
    }
  }
  sp_consume(c, f->total);
  return rc;
}

int sp__recv(sockpass_chan_t *c, sockpass_sock_t *socks, size_t *nsocks, void *buf,
             size_t *len) {
  sp_deadline_t d;
  sp_frame_t f;
  size_t need = 0;
  int rc;
  if (c->kind != SP_KIND_CHAN)
    return SOCKPASS_EINVAL;
  if ((rc = sp__wsa_init()) < 0)
    return rc;
  sp_deadline_start(&d, InterlockedCompareExchange(&c->timeout_ms, 0, 0));
  EnterCriticalSection(&c->rlock);
  for (;;) {
    rc = sp_scan(c, &f, &need);
    if (rc < 0)
      break;
    if (rc == 1) {
      rc = sp_deliver(c, &f, socks, nsocks, buf, len);
      break;
    }
    if ((rc = sp_fill(c, &d, need)) < 0)
      break;
  }
  LeaveCriticalSection(&c->rlock);
  return rc;
}

int sp__set_peer_check(sockpass_chan_t *c, int mode, long pid) {
  if (c->kind != SP_KIND_LISTENER)
    return sp__pipe_peer_ok(c->h, mode, pid);
  c->check_mode = mode;
  c->check_pid = pid;
  return 0;
}

int sp__peer(sockpass_chan_t *c, sockpass_peer_t *peer) {
  sp_deadline_t now;
  sp_frame_t f;
  size_t need = 0;
  DWORD pid;
  if (c->kind != SP_KIND_CHAN)
    return SOCKPASS_EINVAL;
  /* Take in HELLOs that are already waiting, without blocking. */
  if (TryEnterCriticalSection(&c->rlock)) {
    sp_deadline_start(&now, 0);
    while (sp_scan(c, &f, &need) >= 0 && c->rlen < SP_PUMP_CAP && sp_fill(c, &now, need) == 0)
      ;
    LeaveCriticalSection(&c->rlock);
  }
  pid = sp_known_target(c);
  peer->pid = pid != 0 ? (long)pid : -1;
  peer->uid = -1;
  return 0;
}
