#!/bin/sh
# Installs the built libgtl into a temporary prefix, then builds and runs two
# external consumers against it: one through find_package(gtl) (CMake), one
# through pkg-config. Arguments: <build dir> <source dir of the consumer>.
set -eu
build=$1
consumer=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -n1)
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "== CMake consumer (find_package(gtl))"
cmake -S "$consumer" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
"$tmp/cmake-build/consumer"

echo "== pkg-config consumer"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror $(pkg-config --cflags gtl) "$consumer/main.c" -o "$tmp/pc-consumer" \
   $(pkg-config --libs gtl)
"$tmp/pc-consumer"

echo "== every installed header compiles on its own"
for h in "$tmp"/prefix/include/gtl/*.h; do
  printf '#include <gtl/%s>\n' "$(basename "$h")" | cc -std=c11 -Wall -Werror -fsyntax-only \
    -I"$tmp/prefix/include" -x c -
done
echo "package checks passed"
