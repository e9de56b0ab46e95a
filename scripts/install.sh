#!/usr/bin/env bash
# Installs libjina_net like a C library (the layout `make install` gives, as cargo-c does):
#
#   $LIBDIR/libjina_net.so.0.2.0          the shared library, DT_SONAME libjina_net.so.0.2
#   $LIBDIR/libjina_net.so.0.2 -> libjina_net.so.0.2.0
#   $LIBDIR/libjina_net.so   -> libjina_net.so.0.2   (for -ljina_net at link time)
#   $LIBDIR/libjina_net.a                  the static library
#   $INCLUDEDIR/jina_net.h, jina_net.hpp   the C header and the C++17 wrapper
#   $PKGCONFIGDIR/jina_net.pc              pkg-config --cflags --libs [--static] jina_net
#
#   scripts/install.sh [VAR=value ...]      (or the same variables in the environment; `make install`)
#     PREFIX=/usr/local  LIBDIR=$PREFIX/lib  INCLUDEDIR=$PREFIX/include  PKGCONFIGDIR=$LIBDIR/pkgconfig
#     DESTDIR=           staging root prepended to every path written (not to the paths in jina_net.pc)
#     PROFILE=release    the cargo profile to build and install (release or debug)
#     CC=cc              the C compiler driver used to link the shared library
#
# The soname: `cargo build` leaves target/<profile>/libjina_net.so without a DT_SONAME, because every
# test suite links that file with -ljina_net and runs it from target/ (LD_LIBRARY_PATH or rpath); with
# a soname the loader would look for a file target/ does not have. This script links the installed
# shared library itself, from the objects cargo already built: the whole static library (the same
# compiled code the cdylib is linked from), with the soname of scripts/soname.sh and a version
# script that exports jina_net_* only. cargo's own outputs are left untouched, so nothing is built twice
# and every suite keeps working.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

for arg in "$@"; do
  case "$arg" in
    PREFIX=* | LIBDIR=* | INCLUDEDIR=* | PKGCONFIGDIR=* | DESTDIR=* | PROFILE=* | CC=*) export "${arg?}" ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $arg (VAR=value: PREFIX LIBDIR INCLUDEDIR PKGCONFIGDIR DESTDIR PROFILE CC)" >&2; exit 2 ;;
  esac
done
PREFIX="${PREFIX:-/usr/local}"
LIBDIR="${LIBDIR:-$PREFIX/lib}"
INCLUDEDIR="${INCLUDEDIR:-$PREFIX/include}"
PKGCONFIGDIR="${PKGCONFIGDIR:-$LIBDIR/pkgconfig}"
DESTDIR="${DESTDIR:-}"
PROFILE="${PROFILE:-release}"
CC="${CC:-cc}"
for d in PREFIX LIBDIR INCLUDEDIR PKGCONFIGDIR; do
  case "${!d}" in /*) ;; *) echo "install.sh: $d must be an absolute path (got ${!d})" >&2; exit 2 ;; esac
done
case "$PROFILE" in
  release) cargo_flags=(--release) ;;
  debug) cargo_flags=() ;;
  *) echo "install.sh: PROFILE must be release or debug" >&2; exit 2 ;;
esac

# The version and the soname (libjina_net.so.0.<minor> before 1.0: see scripts/soname.sh).
{ read -r version; read -r soname; } < <(scripts/soname.sh)
real="libjina_net.so.$version"

# --workspace, as every suite and scripts/bench.sh build: cargo unifies features over the packages
# it builds, so `--lib` alone would compile tokio & co. a second time with other features and
# replace target/<profile>/libjina_net.* with that build.
echo "== cargo build ${cargo_flags[*]} --workspace (libjina_net $version, profile $PROFILE)"
cargo build --locked "${cargo_flags[@]}" --workspace
archive="target/$PROFILE/libjina_net.a"
[ -f "$archive" ] || { echo "install.sh: $archive was not built" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/jina-net-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The libraries are rustc's `--print native-static-libs` for this target (Libs.private below).
native_libs=(-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)
echo "== link $real (soname $soname) from $archive"
CC="$CC" scripts/link-shared.sh "$archive" "$work/$real" "$soname"

# jina_net.pc: paths relative to ${prefix} where they are under it (relocatable with
# pkg-config --define-prefix), absolute otherwise.
rel() { # $1 = path, $2 = variable name of the base, $3 = base
  case "$1" in
    "$3") echo "\${$2}" ;;
    "$3"/*) echo "\${$2}${1#"$3"}" ;;
    *) echo "$1" ;;
  esac
}
pc_libdir="$(rel "$LIBDIR" exec_prefix "$PREFIX")"
pc_includedir="$(rel "$INCLUDEDIR" prefix "$PREFIX")"
cat >"$work/jina_net.pc" <<EOF
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=$pc_libdir
includedir=$pc_includedir

Name: jina_net
Description: The networking of a Jina 3.1 serving system (gRPC connection pool, routing, control plane) with a C ABI
Version: $version
Libs: -L\${libdir} -ljina_net
Libs.private: ${native_libs[*]}
Cflags: -I\${includedir}
EOF

echo "== install into ${DESTDIR}${PREFIX}"
install -d "$DESTDIR$LIBDIR" "$DESTDIR$INCLUDEDIR" "$DESTDIR$PKGCONFIGDIR"
install -m 0755 "$work/$real" "$DESTDIR$LIBDIR/$real"
ln -sfn "$real" "$DESTDIR$LIBDIR/$soname"
ln -sfn "$soname" "$DESTDIR$LIBDIR/libjina_net.so"
install -m 0644 "$archive" "$DESTDIR$LIBDIR/libjina_net.a"
install -m 0644 include/jina_net.h "$DESTDIR$INCLUDEDIR/jina_net.h"
install -m 0644 bindings/cpp/jina_net.hpp "$DESTDIR$INCLUDEDIR/jina_net.hpp"
install -m 0644 "$work/jina_net.pc" "$DESTDIR$PKGCONFIGDIR/jina_net.pc"
for f in "$LIBDIR/$real" "$LIBDIR/$soname" "$LIBDIR/libjina_net.so" "$LIBDIR/libjina_net.a" \
  "$INCLUDEDIR/jina_net.h" "$INCLUDEDIR/jina_net.hpp" "$PKGCONFIGDIR/jina_net.pc"; do
  echo "  $DESTDIR$f"
done

# Refresh the loader cache when installing for real into a directory the loader searches.
if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1 &&
  cat /etc/ld.so.conf /etc/ld.so.conf.d/*.conf 2>/dev/null | grep -qx "$LIBDIR"; then
  echo "== ldconfig"
  ldconfig
fi
