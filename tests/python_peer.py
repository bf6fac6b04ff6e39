# SPDX-License-Identifier: MIT
"""A plain SCM_RIGHTS peer written with Python's socket.send_fds / recv_fds.

Run by test_python with the descriptor of a SOCK_SEQPACKET channel end as its
only argument. It receives a TCP connection, talks over it, then sends back one
end of a socketpair of its own and writes through the other end.
"""
import socket
import sys


def main() -> int:
    chan = socket.socket(fileno=int(sys.argv[1]))
    msg, fds, flags, _ = socket.recv_fds(chan, 1024, 8)
    if msg != b"to-python" or len(fds) != 2 or flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        print(f"python peer: got {msg!r} with {len(fds)} descriptors, flags {flags}", file=sys.stderr)
        return 1
    conn = socket.socket(fileno=fds[0])
    udp = socket.socket(fileno=fds[1])
    if conn.type != socket.SOCK_STREAM or udp.type != socket.SOCK_DGRAM:
        print("python peer: unexpected socket types", file=sys.stderr)
        return 1
    conn.sendall(b"hello from python")
    conn.close()
    udp.close()

    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    socket.send_fds(chan, [b"from-python"], [theirs.fileno()])
    theirs.close()
    mine.sendall(b"over the passed socket")
    mine.close()
    # Wait for the C side to finish before closing the channel.
    if chan.recv(16) != b"bye":
        print("python peer: no goodbye", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
