#!/usr/bin/env bash
# Links the installed form of libjina_net from cargo's static library:
#   scripts/link-shared.sh ARCHIVE OUTPUT SONAME
# The whole archive (the same compiled code cargo's cdylib is linked from), DT_SONAME SONAME, and a
# version script that exports the jina_net_* functions only: Rust's std, tokio, ring's C code stay
# local. Used by scripts/install.sh and scripts/abi-check.sh. CC (default cc) is the linker driver.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: scripts/link-shared.sh ARCHIVE OUTPUT SONAME" >&2; exit 2; }
archive="$1" out="$2" soname="$3"
[ -f "$archive" ] || { echo "link-shared.sh: $archive was not built" >&2; exit 1; }
map="$(mktemp "${TMPDIR:-/tmp}/jina_net.map.XXXXXX")"
trap 'rm -f "$map"' EXIT
printf '{\n  global:\n    jina_net_*;\n  local:\n    *;\n};\n' >"$map"
# The libraries are rustc's `--print native-static-libs` for this target (also Libs.private of jina_net.pc).
"${CC:-cc}" -shared -o "$out" \
  -Wl,-soname,"$soname" -Wl,--version-script="$map" \
  -Wl,--gc-sections -Wl,-O1 -Wl,-z,relro,-z,now -Wl,-z,noexecstack -Wl,--as-needed \
  -Wl,--whole-archive "$archive" -Wl,--no-whole-archive -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
