#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of the fuzz targets into fuzz/corpus/<target>/.

cmsg: control data as Linux x86_64 lays it out (struct cmsghdr is a size_t
length and two ints, 16 bytes, 8-byte aligned): well-formed SCM_RIGHTS and
SCM_CREDENTIALS messages, both together, and the malformed shapes a walker
must survive (lengths of 0, below the header, past the buffer, cut short).
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SOL_SOCKET, SCM_RIGHTS, SCM_CREDENTIALS = 1, 1, 2
HDR = 16


def align(n):
    return (n + 7) & ~7


def cmsg(level, type_, data, length=None):
    if length is None:
        length = HDR + len(data)
    raw = struct.pack("<Qii", length, level, type_) + data
    return raw + b"\0" * (align(len(raw)) - len(raw))


def rights(*fds):
    return cmsg(SOL_SOCKET, SCM_RIGHTS, struct.pack("<%di" % len(fds), *fds))


def creds(pid=1234, uid=1000, gid=1000):
    return cmsg(SOL_SOCKET, SCM_CREDENTIALS, struct.pack("<iII", pid, uid, gid))


MAGIC, VERSION = 0x4B505053, 1
HELLO, DATA, DISCARD = 1, 2, 3


def frame(type_, pid=0, flags=0, nsocks=0, rec=0, payload=b"", total=None,
          version=VERSION, magic=MAGIC, reserved=(0, 0)):
    if total is None:
        total = 40 + nsocks * rec + len(payload)
    hdr = struct.pack("<IHHIIIIIIII", magic, version, type_, flags, total, pid,
                      nsocks, rec, len(payload), *reserved)
    return hdr + b"\xab" * (nsocks * rec) + payload


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    write("cmsg", "empty", b"")
    write("cmsg", "rights-1", rights(3))
    write("cmsg", "rights-3", rights(3, 4, 5))
    write("cmsg", "rights-253", rights(*range(3, 256)))
    write("cmsg", "creds", creds())
    write("cmsg", "creds-then-rights", creds() + rights(7, 8))
    write("cmsg", "rights-then-creds", rights(7, 8) + creds())
    write("cmsg", "two-rights", rights(3, 4) + rights(5))
    write("cmsg", "other-level", cmsg(41, 50, b"\x01\x02\x03\x04"))
    write("cmsg", "len-zero", cmsg(SOL_SOCKET, SCM_RIGHTS, b"", length=0))
    write("cmsg", "len-short", cmsg(SOL_SOCKET, SCM_RIGHTS, b"", length=8))
    write("cmsg", "len-past-end", cmsg(SOL_SOCKET, SCM_RIGHTS, struct.pack("<i", 3), length=4096))
    write("cmsg", "len-odd", cmsg(SOL_SOCKET, SCM_RIGHTS, struct.pack("<ii", 3, 4), length=HDR + 6))
    write("cmsg", "cut-short", rights(3, 4, 5)[:HDR + 6])
    write("cmsg", "header-only", rights(3)[:HDR - 1])
    write("cmsg", "huge-len", cmsg(SOL_SOCKET, SCM_RIGHTS, struct.pack("<i", 3), length=2**64 - 1))

    write("frame", "empty", b"")
    write("frame", "magic-prefix", b"SPP")
    write("frame", "hello", frame(HELLO, pid=4242))
    write("frame", "hello-req-pair", frame(HELLO, pid=4242, flags=3))
    write("frame", "data-payload", frame(DATA, payload=b"hello"))
    write("frame", "data-rec8", frame(DATA, pid=7, nsocks=2, rec=8, payload=b"x"))
    write("frame", "data-rec628", frame(DATA, pid=7, nsocks=1, rec=628, payload=b"sock"))
    write("frame", "discard-rec8", frame(DISCARD, pid=7, nsocks=3, rec=8))
    write("frame", "stream", frame(HELLO, pid=1, flags=1) + frame(DATA, payload=b"a")
          + frame(DATA, pid=9, nsocks=1, rec=8, payload=b"bc") + frame(DISCARD, pid=9, nsocks=1, rec=8))
    write("frame", "cut-short", frame(DATA, pid=7, nsocks=2, rec=8, payload=b"xyz")[:50])
    write("frame", "header-cut", frame(DATA, payload=b"abc")[:39])
    write("frame", "bad-magic", frame(DATA, payload=b"abc", magic=0x4B505054))
    write("frame", "bad-version", frame(DATA, payload=b"abc", version=2))
    write("frame", "reserved-set", frame(DATA, payload=b"abc", reserved=(0, 1)))
    write("frame", "total-wrong", frame(DATA, payload=b"abc", total=44))
    write("frame", "total-huge", frame(DATA, payload=b"abc", total=0xFFFFFFFF))
    write("frame", "too-many-socks", frame(DATA, pid=7, nsocks=254, rec=8))
    write("frame", "payload-too-big", frame(DATA, payload=b"\0" * 65537))
    write("frame", "empty-data", frame(DATA))
    write("frame", "unknown-type", frame(9, payload=b"abc"))


if __name__ == "__main__":
    main()
