#!/usr/bin/env python3
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


if __name__ == "__main__":
    main()
