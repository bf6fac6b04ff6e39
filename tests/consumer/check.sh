#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the build into a scratch prefix, then build a program against it
# with find_package(sockpass) and with pkg-config, and run both.
# usage: check.sh BUILD_DIR WORK_DIR
set -eu
build=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/app"
if cmake -S "$here" -B "$work/cmake-0.2" -DCMAKE_PREFIX_PATH="$work/prefix" -DSOCKPASS_WANT=0.2 \
    >"$work/cmake-0.2.log" 2>&1; then
  echo "consumer: find_package(sockpass 0.2) accepted a 0.1 install" >&2
  exit 1
fi
PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib64/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig"
export PKG_CONFIG_PATH
# Plain --libs (no --static): a static-only install names its system libraries in Libs.
cc -o "$work/app-pc" "$here/app.c" $(pkg-config --cflags --libs sockpass)
"$work/app-pc"
# sockpass_uv, when this build has it (SOCKPASS_WITH_LIBUV).
if [ -f "$work/prefix/lib/cmake/sockpass/sockpass_uvTargets.cmake" ] ||
  ls "$work"/prefix/lib*/cmake/sockpass/sockpass_uvTargets.cmake >/dev/null 2>&1 ||
  ls "$work"/prefix/lib/*/cmake/sockpass/sockpass_uvTargets.cmake >/dev/null 2>&1; then
  cmake -S "$here/uv" -B "$work/cmake-uv" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
  cmake --build "$work/cmake-uv" >/dev/null
  "$work/cmake-uv/uvapp"
  cc -D_GNU_SOURCE -o "$work/uvapp-pc" "$here/uv/uvapp.c" $(pkg-config --cflags sockpass_uv) \
    $(pkg-config --libs --static sockpass_uv)
  "$work/uvapp-pc"
  echo "consumer: sockpass_uv by find_package and pkg-config both ran"
fi
echo "consumer: find_package and pkg-config builds both ran"
