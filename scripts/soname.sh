#!/usr/bin/env bash
# Prints the version of libjina_net (Cargo.toml) and its soname, one per line:
#   0.2.0
#   libjina_net.so.0.2
# The soname changes with every ABI break: before 1.0 a break bumps the minor version, so the soname
# carries major.minor (libjina_net.so.0.<minor>); from 1.0 on a break bumps the major version and the
# soname carries it alone (libjina_net.so.<major>), as cargo-c names Rust C libraries.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's/^version = "\([0-9][0-9.]*\)"$/\1/p' "$root/Cargo.toml" | head -1)"
[ -n "$version" ] || { echo "soname.sh: no version in Cargo.toml" >&2; exit 1; }
major="${version%%.*}"
rest="${version#*.}"
minor="${rest%%.*}"
if [ "$major" = 0 ]; then
  soname="libjina_net.so.0.$minor"
else
  soname="libjina_net.so.$major"
fi
echo "$version"
echo "$soname"
