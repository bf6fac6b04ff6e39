#!/bin/sh
# SPDX-License-Identifier: MIT
# sockpass as a subproject: a parent project with add_subdirectory, one with
# FetchContent, each configured where CMocka cannot be found, builds and runs
# an app that passes a socket, and its ctest lists its own test and no
# sockpass test.
# usage: check.sh add_subdirectory|fetchcontent|hidden WORK_DIR
#   hidden: the control. sockpass itself, tests on, under the same hiding,
#   must fail to configure for want of CMocka (else the hiding hides nothing);
#   and with BUILD_TESTING=OFF (the README's install line) it must build.
set -eu
what=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
rm -rf "$work"
mkdir -p "$work"

# Hide CMocka from every find_* call: each directory that holds its header,
# library or CMake package goes into CMAKE_IGNORE_PATH.
ignore=
for f in $(find /usr /usr/local /opt -name 'cmocka*.h' -o -name 'libcmocka*' \
             -o -name 'cmocka-config.cmake' -o -name 'cmockaConfig.cmake' 2>/dev/null); do
  ignore="$ignore${ignore:+;}$(dirname "$f")"
done
hide="-DCMAKE_IGNORE_PATH=$ignore -DCMAKE_DISABLE_FIND_PACKAGE_cmocka=ON"

if [ "$what" = hidden ]; then
  if cmake -S "$src" -B "$work/build" -DSOCKPASS_BUILD_TESTS=ON "$hide" \
      >"$work/configure.log" 2>&1; then
    echo "subproject: CMocka was found although hidden ($ignore)" >&2
    exit 1
  fi
  grep -q 'CMocka not found' "$work/configure.log" || { cat "$work/configure.log" >&2; exit 1; }
  echo "subproject: with CMocka hidden, sockpass's own tests do not configure (as intended)"
  # The README's install line: sockpass itself, BUILD_TESTING=OFF, no CMocka.
  cmake -S "$src" -B "$work/readme" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF "$hide" \
    >"$work/readme.log" 2>&1 && cmake --build "$work/readme" >>"$work/readme.log" 2>&1 &&
    cmake --install "$work/readme" --prefix "$work/readme-prefix" >>"$work/readme.log" 2>&1 ||
    { cat "$work/readme.log" >&2; exit 1; }
  echo "subproject: with CMocka hidden, BUILD_TESTING=OFF configures, builds and installs sockpass"
  exit 0
fi

cmake -S "$here/$what" -B "$work/build" -G Ninja -DSOCKPASS_SOURCE_DIR="$src" \
  -DFETCHCONTENT_SOURCE_DIR_SOCKPASS="$src" "$hide" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log" >&2; exit 1; }
cmake --build "$work/build" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
"$work/build/app"
# The parent's ctest: exactly its own test.
tests=$(ctest --test-dir "$work/build" -N | sed -nE 's/^ *Test +#[0-9]+: +//p')
if [ "$tests" != parent_app ]; then
  printf 'subproject (%s): the parent lists tests other than its own:\n%s\n' "$what" "$tests" >&2
  exit 1
fi
# Nothing of sockpass installed with the parent (SOCKPASS_INSTALL defaults off).
cmake --install "$work/build" --prefix "$work/prefix" >/dev/null
if [ -n "$(find "$work/prefix" -name '*sockpass*' 2>/dev/null)" ]; then
  echo "subproject ($what): sockpass files installed with the parent:" >&2
  find "$work/prefix" -name '*sockpass*' >&2
  exit 1
fi
echo "subproject ($what): app built and ran, ctest lists only parent_app"
