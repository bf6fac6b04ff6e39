/* SPDX-License-Identifier: MIT */
/* The portable layer: argument checks, then the backend (src/platform.h). */
#include "platform.h"

#define SP_STR2(x) #x
#define SP_STR(x) SP_STR2(x)

unsigned int sockpass_version(void) { return SOCKPASS_VERSION_HEX; }

const char *sockpass_version_string(void) {
  return SP_STR(SOCKPASS_VERSION_MAJOR) "." SP_STR(SOCKPASS_VERSION_MINOR) "." SP_STR(
      SOCKPASS_VERSION_PATCH);
}

int sockpass_pair(sockpass_chan_t **a, sockpass_chan_t **b) {
  if (a == NULL || b == NULL || a == b)
    return SOCKPASS_EINVAL;
  *a = NULL;
  *b = NULL;
  return sp__pair(a, b);
}

int sockpass_listen(const char *name, sockpass_chan_t **listener) {
  if (listener == NULL)
    return SOCKPASS_EINVAL;
  *listener = NULL;
  if (name == NULL || name[0] == '\0')
    return SOCKPASS_EINVAL;
  return sp__listen(name, listener);
}

int sockpass_accept(sockpass_chan_t *listener, sockpass_chan_t **chan) {
  if (chan == NULL)
    return SOCKPASS_EINVAL;
  *chan = NULL;
  if (listener == NULL)
    return SOCKPASS_EINVAL;
  return sp__accept(listener, chan);
}

int sockpass_connect(const char *name, sockpass_chan_t **chan) {
  if (chan == NULL)
    return SOCKPASS_EINVAL;
  *chan = NULL;
  if (name == NULL || name[0] == '\0')
    return SOCKPASS_EINVAL;
  return sp__connect(name, chan);
}

int sockpass_open(sockpass_handle_t handle, sockpass_chan_t **chan) {
  if (handle == SOCKPASS_INVALID_HANDLE) {
    if (chan != NULL)
      *chan = NULL;
    return SOCKPASS_EBADF;
  }
  if (chan == NULL) {
    /* Ownership was handed to us: keep the promise and close it. */
    sp__close_handle(handle);
    return SOCKPASS_EINVAL;
  }
  *chan = NULL;
  return sp__open(handle, chan);
}

sockpass_handle_t sockpass_handle(sockpass_chan_t *chan) {
  if (chan == NULL)
    return SOCKPASS_INVALID_HANDLE;
  return sp__handle(chan);
}

void sockpass_close(sockpass_chan_t *chan) {
  if (chan != NULL)
    sp__close(chan);
}

int sockpass_set_timeout(sockpass_chan_t *chan, int timeout_ms) {
  if (chan == NULL || timeout_ms < SOCKPASS_WAIT_FOREVER)
    return SOCKPASS_EINVAL;
  return sp__set_timeout(chan, timeout_ms);
}

int sockpass_set_send_timeout(sockpass_chan_t *chan, int timeout_ms) {
  if (chan == NULL || timeout_ms < SOCKPASS_WAIT_FOREVER)
    return SOCKPASS_EINVAL;
  return sp__set_send_timeout(chan, timeout_ms);
}

int sockpass_ready_handle(sockpass_chan_t *chan, sockpass_handle_t *h) {
  if (h == NULL)
    return SOCKPASS_EINVAL;
  *h = SOCKPASS_INVALID_HANDLE;
  if (chan == NULL)
    return SOCKPASS_EINVAL;
  return sp__ready_handle(chan, h);
}

int sockpass_cancel(sockpass_chan_t *chan) {
  if (chan == NULL)
    return SOCKPASS_EINVAL;
  return sp__cancel(chan);
}

int sockpass_cancel_clear(sockpass_chan_t *chan) {
  if (chan == NULL)
    return SOCKPASS_EINVAL;
  return sp__cancel_clear(chan);
}

int sockpass_send(sockpass_chan_t *chan, const sockpass_sock_t *socks, size_t nsocks,
                  const void *data, size_t len) {
  size_t i;
  if (chan == NULL || (nsocks > 0 && socks == NULL) || (len > 0 && data == NULL))
    return SOCKPASS_EINVAL;
  if (nsocks == 0 && len == 0)
    return SOCKPASS_EINVAL;
  if (nsocks > SOCKPASS_MAX_SOCKS)
    return SOCKPASS_ETOOMANY;
  if (len > SOCKPASS_MAX_PAYLOAD)
    return SOCKPASS_EMSGSIZE;
  for (i = 0; i < nsocks; i++)
    if (socks[i] == SOCKPASS_INVALID_SOCK)
      return SOCKPASS_EBADF;
  return sp__send(chan, socks, nsocks, data, len);
}

int sockpass_recv(sockpass_chan_t *chan, sockpass_sock_t *socks, size_t *nsocks, void *buf,
                  size_t *len) {
  size_t room_socks, room_len;
  int rc;
  if (nsocks == NULL || len == NULL)
    return SOCKPASS_EINVAL;
  room_socks = *nsocks;
  room_len = *len;
  *nsocks = 0;
  *len = 0;
  if (chan == NULL || (room_socks > 0 && socks == NULL) || (room_len > 0 && buf == NULL))
    return SOCKPASS_EINVAL;
  if (room_socks > SOCKPASS_MAX_SOCKS)
    room_socks = SOCKPASS_MAX_SOCKS;
  *nsocks = room_socks;
  *len = room_len;
  rc = sp__recv(chan, socks, nsocks, buf, len);
  if (rc < 0) {
    *nsocks = 0;
    *len = 0;
  }
  return rc;
}

int sockpass_adopt(sockpass_sock_t raw, sockpass_sock_t *sock) {
  if (sock == NULL)
    return SOCKPASS_EINVAL;
  *sock = SOCKPASS_INVALID_SOCK;
  if (raw == SOCKPASS_INVALID_SOCK)
    return SOCKPASS_EBADF;
  return sp__adopt(raw, sock);
}

int sockpass_close_sock(sockpass_sock_t sock) {
  if (sock == SOCKPASS_INVALID_SOCK)
    return SOCKPASS_EBADF;
  return sp__close_sock(sock);
}

int sockpass_peer(sockpass_chan_t *chan, sockpass_peer_t *peer) {
  if (peer != NULL) {
    peer->pid = -1;
    peer->uid = -1;
  }
  if (chan == NULL || peer == NULL)
    return SOCKPASS_EINVAL;
  return sp__peer(chan, peer);
}

int sockpass_set_peer_check(sockpass_chan_t *chan, int mode, long pid) {
  if (chan == NULL || (mode != SOCKPASS_PEER_ANY && mode != SOCKPASS_PEER_SAME_USER &&
                       mode != SOCKPASS_PEER_PID) ||
      (mode == SOCKPASS_PEER_PID && pid <= 0))
    return SOCKPASS_EINVAL;
  return sp__set_peer_check(chan, mode, pid);
}
