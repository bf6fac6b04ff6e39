#!/bin/sh
# SPDX-License-Identifier: MIT
# The Windows consumer: install a mingw-w64 build of sockpass (the default,
# static) into a scratch prefix, build a program against it with
# find_package(sockpass) (the cross-compiling line the README shows) and with
# plain `pkg-config --cflags --libs sockpass`, and run both under Wine.
# usage: check-mingw.sh WIN_BUILD_DIR WORK_DIR [EXTRA_ROOTS]
#   (WINEPREFIX & co. exported; EXTRA_ROOTS: more CMAKE_FIND_ROOT_PATH entries,
#   such as the static libuv a SOCKPASS_WITH_LIBUV install depends on)
set -eu
build=$1
work=$2
roots=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cc=x86_64-w64-mingw32-gcc
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null

cmake -S "$here" -B "$work/cmake" -G Ninja \
  -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-mingw-w64-x86_64.cmake" \
  -DCMAKE_FIND_ROOT_PATH="$work/prefix${roots:+;$roots}" >"$work/cmake.log" 2>&1 ||
  { cat "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/cmake" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
wine "$work/cmake/app.exe"

# Only this prefix's .pc files, none of the build machine's.
PKG_CONFIG_LIBDIR="$work/prefix/lib/pkgconfig"
export PKG_CONFIG_LIBDIR
unset PKG_CONFIG_PATH || true
# shellcheck disable=SC2046 # word splitting of pkg-config's output intended
$cc -o "$work/app-pc.exe" "$here/app.c" $(pkg-config --cflags --libs sockpass)
wine "$work/app-pc.exe"
echo "consumer (Windows): find_package and pkg-config builds both ran under Wine"
