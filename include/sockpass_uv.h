/* SPDX-License-Identifier: MIT */
/*
 * sockpass_uv: sockpass on a libuv event loop (docs/uv.md).
 *
 * A separate library (CMake target sockpass::sockpass_uv, pkg-config
 * sockpass_uv), built with -DSOCKPASS_WITH_LIBUV=ON; the core library never
 * links libuv.
 *
 * Two kinds of asynchronous channel, one API:
 *   - sockpass_uv_open wraps any sockpass channel (sockpass_pair,
 *     sockpass_accept, sockpass_connect, sockpass_open, sockpass_inherited_chan)
 *     and speaks sockpass's own protocol: up to SOCKPASS_MAX_SOCKS sockets
 *     and SOCKPASS_MAX_PAYLOAD bytes per message, all or nothing, to a peer
 *     using either the blocking API or sockpass_uv. A listener wrapped the
 *     same way accepts channels by callback.
 *   - sockpass_uv_ipc_open takes a libuv IPC pipe (uv_pipe_init(loop, p, 1),
 *     opened, for instance the stdio pipe uv_spawn makes) and speaks libuv's
 *     own IPC protocol on it, so the peer can be a plain libuv program (or
 *     Node). What such a peer can take is narrower: see sockpass_uv_send.
 *
 * Every function must be called on the loop's thread. Callbacks run on it.
 * Functions return 0 or a negative SOCKPASS_E* code (sockpass_strerror).
 */
#ifndef SOCKPASS_UV_H
#define SOCKPASS_UV_H

#include <uv.h>

#include "sockpass.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SOCKPASS_STATIC)
#define SOCKPASS_UV_EXTERN
#elif defined(_WIN32)
#if defined(SOCKPASS_UV_BUILDING)
#define SOCKPASS_UV_EXTERN __declspec(dllexport)
#else
#define SOCKPASS_UV_EXTERN __declspec(dllimport)
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define SOCKPASS_UV_EXTERN __attribute__((visibility("default")))
#else
#define SOCKPASS_UV_EXTERN
#endif

typedef struct sockpass_uv_chan sockpass_uv_chan_t;

/* One message, or why none could be delivered.
 *   status 0: nsocks sockets and len bytes arrived as one message. The
 *     sockets belong to the callback from now on: keep them (close them
 *     later with sockpass_close_sock, or give them to sockpass_uv_tcp_open)
 *     or close them before returning. data is valid until the callback
 *     returns.
 *   status < 0: the same code the blocking sockpass_recv gives, and no
 *     socket is handed over (nothing leaks: a message that did not fit was
 *     dropped whole, its sockets closed). SOCKPASS_ETRUNC and
 *     SOCKPASS_EMFILE leave the channel receiving; after any other code
 *     (SOCKPASS_EOF when the peer closed, SOCKPASS_EPROTO for a hostile or
 *     broken frame) receiving has stopped.
 * On an IPC channel (sockpass_uv_ipc_open) a "message" is what one read of
 * the stream brought: libuv IPC has no message boundaries, so bytes of
 * several writes may arrive together or one write's bytes in parts, and the
 * sockets arrive with the bytes they travelled with. */
typedef void (*sockpass_uv_recv_cb)(sockpass_uv_chan_t *chan, int status,
                                    sockpass_sock_t *socks, size_t nsocks,
                                    const void *data, size_t len);

/* A send finished: 0 when the whole message went out, or the error the
 * blocking sockpass_send gives (SOCKPASS_EOF for a closed peer), or
 * SOCKPASS_ECANCELED when the channel was closed before it could go. On
 * error nothing of the message reached the peer. */
typedef void (*sockpass_uv_send_cb)(sockpass_uv_chan_t *chan, int status, void *arg);

/* A new channel from a listener (status 0; the blocking channel is handed
 * over: wrap it with sockpass_uv_open, or close it), or an error (chan
 * NULL). After an error, accepting has stopped. */
typedef void (*sockpass_uv_accept_cb)(sockpass_uv_chan_t *listener, int status,
                                      sockpass_chan_t *chan);

/* The channel is closed and its memory gone after this returns. */
typedef void (*sockpass_uv_close_cb)(sockpass_uv_chan_t *chan);

/* Wrap a sockpass channel or listener for loop. On success the channel is
 * handed to sockpass_uv (sockpass_uv_close closes it) and *out is set; on
 * error chan is still the caller's. The wrapped channel's timeouts are set
 * for loop use: do not use chan directly afterwards. */
SOCKPASS_UV_EXTERN int sockpass_uv_open(uv_loop_t *loop, sockpass_chan_t *chan,
                                        sockpass_uv_chan_t **out);

/* Speak libuv's IPC protocol on pipe: a uv_pipe_t initialized with ipc = 1
 * on loop and opened or connected (uv_pipe_open, uv_spawn's UV_CREATE_PIPE,
 * uv_pipe_connect). On success the pipe is the channel's: sockpass_uv_close
 * closes it, and its memory must stay valid until the close callback; its
 * data field is the channel's. SOCKPASS_EINVAL for a pipe without ipc. */
SOCKPASS_UV_EXTERN int sockpass_uv_ipc_open(uv_loop_t *loop, uv_pipe_t *pipe,
                                            sockpass_uv_chan_t **out);

/* User data, the loop. */
SOCKPASS_UV_EXTERN void sockpass_uv_set_data(sockpass_uv_chan_t *chan, void *data);
SOCKPASS_UV_EXTERN void *sockpass_uv_get_data(const sockpass_uv_chan_t *chan);
SOCKPASS_UV_EXTERN uv_loop_t *sockpass_uv_loop(const sockpass_uv_chan_t *chan);

/* Deliver messages to cb until sockpass_uv_recv_stop, an error that stops
 * receiving, or close. Like uv_read_start, a started channel keeps the
 * loop alive. SOCKPASS_EINVAL on a listener or a closing channel. */
SOCKPASS_UV_EXTERN int sockpass_uv_recv_start(sockpass_uv_chan_t *chan, sockpass_uv_recv_cb cb);
SOCKPASS_UV_EXTERN int sockpass_uv_recv_stop(sockpass_uv_chan_t *chan);

/* Send nsocks sockets and len bytes as one message; cb(chan, status, arg)
 * runs when it went out or failed, never before this call returns.
 * Messages go out in the order of the calls. The payload is copied; the
 * sockets are borrowed until cb runs (as uv_write2 borrows its handle):
 * keep them open until then. The limits and argument errors are those of
 * sockpass_send, returned at once (cb is then not called).
 * On an IPC channel (a plain libuv peer reads with uv_read_start,
 * uv_pipe_pending_count and uv_accept) a message carries at most one socket
 * (else SOCKPASS_ETOOMANY) and a message with a socket at least one byte
 * (else SOCKPASS_EINVAL); on Windows that socket must be a TCP socket
 * (else SOCKPASS_ENOTSUP), as libuv transfers nothing else there. */
SOCKPASS_UV_EXTERN int sockpass_uv_send(sockpass_uv_chan_t *chan, const sockpass_sock_t *socks,
                                        size_t nsocks, const void *data, size_t len,
                                        sockpass_uv_send_cb cb, void *arg);

/* On a wrapped listener: call cb for every channel accepted, until
 * sockpass_uv_accept_stop or close. The listener's peer check applies. */
SOCKPASS_UV_EXTERN int sockpass_uv_accept_start(sockpass_uv_chan_t *listener,
                                                sockpass_uv_accept_cb cb);
SOCKPASS_UV_EXTERN int sockpass_uv_accept_stop(sockpass_uv_chan_t *listener);

/* Stop everything and close the channel (and its sockpass channel or
 * pipe). Sends still waiting complete with SOCKPASS_ECANCELED, then cb (may
 * be NULL) runs; the channel's memory is freed after cb. Call once. */
SOCKPASS_UV_EXTERN void sockpass_uv_close(sockpass_uv_chan_t *chan, sockpass_uv_close_cb cb);

/* ---- Sockets and libuv handles ---- */

/* Make sock a uv_tcp_t (uv_udp_t) on loop, ready for uv_listen / uv_accept
 * or uv_read_start / uv_write (uv_udp_recv_start / uv_udp_send); on Windows
 * it joins the loop's completion port. Winsock is initialized first. On
 * success sock belongs to the handle (uv_close closes it). On error sock is
 * still the caller's and the handle memory is untouched:
 * SOCKPASS_ENOTSOCK when sock is not a socket, SOCKPASS_EINVAL when it is
 * not a stream (datagram) socket. */
SOCKPASS_UV_EXTERN int sockpass_uv_tcp_open(uv_loop_t *loop, uv_tcp_t *tcp, sockpass_sock_t sock);
SOCKPASS_UV_EXTERN int sockpass_uv_udp_open(uv_loop_t *loop, uv_udp_t *udp, sockpass_sock_t sock);

/* The socket of a uv_tcp_t or uv_udp_t, borrowed: to send it with
 * sockpass_uv_send or sockpass_send. SOCKPASS_EBADF when the handle has no
 * socket yet, SOCKPASS_EINVAL for another handle type. */
SOCKPASS_UV_EXTERN int sockpass_uv_handle_sock(const uv_handle_t *handle, sockpass_sock_t *sock);

#ifdef __cplusplus
}
#endif

#endif /* SOCKPASS_UV_H */
