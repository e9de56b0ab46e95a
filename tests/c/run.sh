#!/usr/bin/env bash
# Builds tests/c/test_c_abi.c twice and runs it against the project's test servers:
#   1. AddressSanitizer + UndefinedBehaviorSanitizer (leak detection on), linked to libjina_net.so;
#   2. linked statically to libjina_net.a, under valgrind (memcheck, leak check, errors fail the run).
# Also checks that include/jina_net.h compiles warning-free as C11 and C++17.
# Expects `cargo build --workspace` to have run (scripts/test.sh does it).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/c-tests
mkdir -p "$out"
lib=target/debug
warn=(-Wall -Wextra -Werror)

echo "-- header compiles as C11 and C++17 with ${warn[*]}"
gcc -std=c11 -pedantic "${warn[@]}" -fsyntax-only -x c include/jina_net.h
g++ -std=c++17 -pedantic "${warn[@]}" -fsyntax-only -x c++ include/jina_net.h

echo "-- C tests, AddressSanitizer + UBSan, shared library"
gcc -std=c11 -g "${warn[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer \
  tests/c/test_c_abi.c -o "$out/test_c_abi_asan" -L"$lib" -ljina_net -Wl,-rpath,"$PWD/$lib" -lpthread
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  "$out/test_c_abi_asan"

echo "-- C tests, static library, valgrind"
gcc -std=c11 -g "${warn[@]}" tests/c/test_c_abi.c -o "$out/test_c_abi_static" \
  "$lib/libjina_net.a" -lpthread -ldl -lm
valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
  "$out/test_c_abi_static"

echo "-- compatibility: a program built against the frozen 0.2.0 header (tests/compat/), ASan + UBSan, current library"
gcc -std=c11 -g "${warn[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer \
  tests/compat/compat.c -o "$out/compat_0_2_0" -L"$lib" -ljina_net -Wl,-rpath,"$PWD/$lib" -lpthread
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  "$out/compat_0_2_0"
