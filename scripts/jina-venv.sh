#!/usr/bin/env bash
# Makes sure a Python with jina 3.1.0 exists and prints its interpreter path (the only line on
# stdout; progress and errors go to stderr). Used by tests/interop/run.sh, bindings/python/test.sh and
# bench/python/run_pool_compare.sh.
#
#   PY="$(scripts/jina-venv.sh PREFIX)"     # PREFIX names the caller in messages ("interop", ...)
#
# - If JINA_NET_INTEROP_PYTHON is set, that interpreter is used (and must work).
# - Else a venv in $JINA_NET_INTEROP_VENV (default: ${XDG_CACHE_HOME:-$HOME/.cache}/jina-net/venv-jina-3.1.0),
#   created once (~70 s) and reused while it imports the pinned versions; one creator at a time
#   (flock), as several checkouts may run suites concurrently.
# Anything broken fails with a message: the suites using it never skip.
set -euo pipefail

WHO="${1:-jina-venv}"
say() { echo "$WHO: $*" >&2; }
die() {
    echo "$WHO: FAILED: $*" >&2
    echo "$WHO: no Python with jina 3.1.0; the suite cannot run and is not skipped. Fix the above (or set JINA_NET_INTEROP_VENV / JINA_NET_INTEROP_BASE_PYTHON / JINA_NET_INTEROP_PYTHON) and rerun" >&2
    exit 1
}

# jina 3.1.0 imports only with these: plain `jina==3.1.0` pulls docarray 0.41 (does not import),
# protobuf >= 4 does not import either, numpy 2 breaks docarray 0.9.
PINS=("jina==3.1.0" "docarray==0.9.18" "protobuf==3.20.3" "numpy<2")
CHECK='
import sys
import jina, docarray, numpy, grpc
import google.protobuf as pb
got = (jina.__version__, docarray.__version__, pb.__version__, numpy.__version__.split(".")[0])
want = ("3.1.0", "0.9.18", "3.20.3", "1")
if got != want:
    sys.exit(f"versions (jina, docarray, protobuf, numpy major) are {got}, want {want}")
from jina.serve.networking import GrpcConnectionPool
from jina.serve.runtimes.head import HeadRuntime
from jina.serve.runtimes.worker import WorkerRuntime
from jina.parsers import set_pod_parser
from cli.api import executor_native
'

check_python() { # $1 = interpreter; prints why on failure
    [ -x "$1" ] || { echo "$1 is not an executable"; return 1; }
    "$1" -c "$CHECK" 2>&1 | tail -5
    return "${PIPESTATUS[0]}"
}

base_python() {
    if [ -n "${JINA_NET_INTEROP_BASE_PYTHON:-}" ]; then
        echo "$JINA_NET_INTEROP_BASE_PYTHON"
        return
    fi
    # jina 3.1.0 with numpy<2 needs Python <= 3.12; the facts of the interop suite were established on 3.11
    for p in python3.11 python3.10 python3.12 python3; do
        if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(not ((3, 8) <= sys.version_info[:2] <= (3, 12)))' 2>/dev/null; then
            command -v "$p"
            return
        fi
    done
    return 1
}

create_venv() { # $1 = final venv directory
    local venv="$1" tmp="$1.partial.$$" base log
    base="$(base_python)" || die "no Python 3.8-3.12 found (tried python3.11, python3.10, python3.12, python3); set JINA_NET_INTEROP_BASE_PYTHON"
    say "creating the jina 3.1.0 venv in $venv with $base ($("$base" --version 2>&1)), about 70 s"
    mkdir -p "$(dirname "$venv")"
    rm -rf "$tmp"
    if ! "$base" -m venv "$tmp" 2>"$tmp.err"; then
        cat "$tmp.err" >&2
        # Debian's python3 comes without ensurepip unless python3-venv is installed
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && grep -qi "ensurepip\|python3.*-venv" "$tmp.err"; then
            say "installing Debian's python3-venv"
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } >/dev/null ||
                die "apt-get install python3-venv failed"
            rm -rf "$tmp"
            "$base" -m venv "$tmp" >&2 || die "$base -m venv $tmp failed"
        else
            die "$base -m venv $tmp failed"
        fi
    fi
    rm -f "$tmp.err"
    log="$(dirname "$venv")/pip-install.log"
    if ! "$tmp/bin/python" -m pip install --disable-pip-version-check --no-input "${PINS[@]}" >"$log" 2>&1; then
        tail -30 "$log" >&2
        rm -rf "$tmp"
        die "pip install ${PINS[*]} failed (full log: $log)"
    fi
    local why
    if ! why="$(check_python "$tmp/bin/python")"; then
        echo "$why" >&2
        rm -rf "$tmp"
        die "the fresh venv does not import jina 3.1.0 (pip log: $log)"
    fi
    rm -rf "$venv"
    mv "$tmp" "$venv"
}

if [ -n "${JINA_NET_INTEROP_PYTHON:-}" ]; then
    PY="$JINA_NET_INTEROP_PYTHON"
    say "using JINA_NET_INTEROP_PYTHON=$PY"
    why="$(check_python "$PY")" || { echo "$why" >&2; die "JINA_NET_INTEROP_PYTHON=$PY is set but cannot run jina 3.1.0"; }
else
    VENV="${JINA_NET_INTEROP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/jina-net/venv-jina-3.1.0}"
    PY="$VENV/bin/python"
    mkdir -p "$(dirname "$VENV")"
    # one creator at a time (another checkout may run a suite concurrently)
    exec 9>"$VENV.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w 600 9 || die "timed out waiting for the lock $VENV.lock"
    fi
    if why="$(check_python "$PY" 2>&1)"; then
        say "reusing the venv $VENV"
    else
        if [ -e "$VENV" ]; then
            say "the cached venv $VENV is unusable: $why"
            [ -f "$VENV/pyvenv.cfg" ] || die "$VENV exists and is not a venv; not touching it (remove it or set JINA_NET_INTEROP_VENV)"
        fi
        create_venv "$VENV"
        why="$(check_python "$PY")" || { echo "$why" >&2; die "the venv $VENV does not work after creation"; }
    fi
    exec 9>&-
fi
say "$("$PY" -c 'import sys, jina, docarray, google.protobuf as pb; print(f"Python {sys.version.split()[0]}, jina {jina.__version__}, docarray {docarray.__version__}, protobuf {pb.__version__}")')"
echo "$PY"
