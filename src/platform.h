/* SPDX-License-Identifier: MIT */
/*
 * The backend contract: the functions each OS implements, once in src/posix/
 * and once in src/win/. The portable layer (src/sockpass.c) is the only
 * caller, and it has checked the arguments first:
 *   - every pointer the public contract requires is non-NULL,
 *   - nsocks <= SOCKPASS_MAX_SOCKS, len <= SOCKPASS_MAX_PAYLOAD, a buffer is
 *     non-NULL whenever its room or count is non-zero,
 *   - sockets and handles are not the invalid value,
 *   - output pointers have been cleared (NULL, 0) before the call.
 * Each function returns 0 or a negative SOCKPASS_E* code, translated from the
 * OS error with sp__translate(). Backend headers add nothing the portable
 * layer relies on; the struct sockpass_chan is the backend's own.
 */
#ifndef SOCKPASS_PLATFORM_H
#define SOCKPASS_PLATFORM_H

#include "sockpass.h"

/* Two connected channels in this process. */
int sp__pair(sockpass_chan_t **a, sockpass_chan_t **b);

/* A listener on name (already checked non-empty), an accepted channel, a
 * connected channel. The backend checks the name's length and syntax. */
int sp__listen(const char *name, sockpass_chan_t **listener);
int sp__accept(sockpass_chan_t *listener, sockpass_chan_t **chan);
int sp__connect(const char *name, sockpass_chan_t **chan);

/* A channel of an existing handle. Closes handle on error. */
int sp__open(sockpass_handle_t handle, sockpass_chan_t **chan);

/* Close a handle the library owns but could not turn into a channel. */
void sp__close_handle(sockpass_handle_t handle);

sockpass_handle_t sp__handle(sockpass_chan_t *chan);
void sp__close(sockpass_chan_t *chan);

/* timeout_ms >= -1. sp__set_timeout sets the receive/accept and the send
 * timeout, sp__set_send_timeout the send timeout alone. */
int sp__set_timeout(sockpass_chan_t *chan, int timeout_ms);
int sp__set_send_timeout(sockpass_chan_t *chan, int timeout_ms);

/* The object a caller waits on for "a receive or accept would not block"
 * (sockpass_ready_handle), armed. */
int sp__ready_handle(sockpass_chan_t *chan, sockpass_handle_t *h);
int sp__cancel(sockpass_chan_t *chan);
int sp__cancel_clear(sockpass_chan_t *chan);

/* One message: all or nothing. nsocks + len > 0. */
int sp__send(sockpass_chan_t *chan, const sockpass_sock_t *socks, size_t nsocks,
             const void *data, size_t len);

/* One message. *nsocks and *len are the room (already clamped to the limits)
 * and become the counts. On error *nsocks must be 0 and nothing handed over. */
int sp__recv(sockpass_chan_t *chan, sockpass_sock_t *socks, size_t *nsocks,
             void *buf, size_t *len);

int sp__adopt(sockpass_sock_t raw, sockpass_sock_t *sock);
int sp__close_sock(sockpass_sock_t sock);
int sp__peer(sockpass_chan_t *chan, sockpass_peer_t *peer);

/* Peer check (mode and pid already checked). A listener stores it for
 * sp__accept, which drops peers that fail it; a connected channel checks its
 * peer now: 0, SOCKPASS_EPERM, or an error. Listeners start with
 * SOCKPASS_PEER_SAME_USER. */
int sp__set_peer_check(sockpass_chan_t *chan, int mode, long pid);

/* The OS's error code (errno, GetLastError, WSAGetLastError) as a SOCKPASS_E*
 * code, or SOCKPASS_SYSERR(code) when it has none. */
int sp__translate(int oscode);

/* The OS's text for an OS error code, written to buf (always terminated).
 * Keeps errno and GetLastError() as they were. */
void sp__sys_strerror(int oscode, char *buf, size_t size);

/* Close a channel whose end now belongs to a child: without telling the
 * peer (no BYE on Windows), so the child can go on using it. */
void sp__close_quiet(sockpass_chan_t *chan);

/* ---- Spawning (docs/inherit.md) ----
 * The portable layer (src/spawn.c) has checked: file and argv[0] non-NULL,
 * opts non-NULL, nsocks <= SOCKPASS_MAX_SOCKS, no invalid socket in socks,
 * flags 0; names is NULL or the names joined with ':' (each checked). */
int sp__spawn(const char *file, const char *const *argv, const sockpass_spawn_opts_t *opts,
              const char *names, sockpass_proc_t **proc);
long sp__proc_pid(const sockpass_proc_t *proc);
int sp__proc_wait(sockpass_proc_t *proc, int timeout_ms, int *exit_code);
int sp__proc_kill(sockpass_proc_t *proc);
void sp__proc_free(sockpass_proc_t *proc);

/* What a starter left in the environment, read once per process. */
typedef struct {
  int err;                /* 0, or why the sockets cannot be handed over */
  size_t nsocks;          /* sockets in socks */
  sockpass_sock_t *socks; /* malloc'd, adopted; NULL when nsocks is 0 */
  char *names;            /* malloc'd names joined with ':', or NULL */
  sockpass_handle_t chan; /* the channel end, or SOCKPASS_INVALID_HANDLE */
} sp_inherit_t;

/* Read the variables, remove them from the environment, adopt each socket.
 * st arrives zeroed with chan invalid. */
void sp__inherited_read(sp_inherit_t *st);

/* Atomically take st->chan, leaving SOCKPASS_INVALID_HANDLE behind. */
sockpass_handle_t sp__inherit_take_chan(sp_inherit_t *st);

/* Run fn exactly once per process, whichever thread comes first; the others
 * wait until it has returned. */
void sp__once(void (*fn)(void));

#endif /* SOCKPASS_PLATFORM_H */
