#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python baseline for bench_handoff: socket.send_fds / socket.recv_fds.

Both ends are Python: this process forks a receiver that closes every
descriptor it gets, and answers b'a' to a message b'e' (end of round).

    handoff_py.py SENDER_CPU RECEIVER_CPU      (-1: do not pin)

Then reads commands on stdin, one per line:
    K N   send N messages of K descriptors each, then b'e'; wait for b'a';
          print the elapsed nanoseconds on stdout
    q     stop the receiver and exit
"""
import os
import socket
import sys
import time


def pin(cpu):
    if cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def receiver(sock):
    recv_fds = socket.recv_fds
    close = os.close
    while True:
        msg, fds, _flags, _addr = recv_fds(sock, 16, 253)
        for fd in fds:
            close(fd)
        if not msg or msg == b"q":
            os._exit(0)
        if msg == b"e":
            sock.send(b"a")


def main():
    cpu_send, cpu_recv = int(sys.argv[1]), int(sys.argv[2])
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pool = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(64)]
    pid = os.fork()
    if pid == 0:
        a.close()
        pin(cpu_recv)
        receiver(b)
    b.close()
    pin(cpu_send)
    fdlist = [s.fileno() for s in pool]
    send_fds = socket.send_fds
    payload = [b"d"]
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "q":
            break
        k, n = int(words[0]), int(words[1])
        fds = fdlist[:k]
        t0 = time.perf_counter_ns()
        for _ in range(n):
            send_fds(a, payload, fds)
        a.send(b"e")
        a.recv(16)
        print(time.perf_counter_ns() - t0, flush=True)
    a.send(b"q")
    os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
