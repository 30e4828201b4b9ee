#!/usr/bin/env bash
# cross/single-module.sh DIR: the release build's single-module form of Sources/ in DIR (made
# anew): every module of Sources/modules.txt, in its order, each file copied as
# DIR/<Module>-<file>.swift with the imports of the other modules dropped, so that all of
# them compile as one module (cross/release.mk; tests/check-modules.sh typechecks the same).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1
names=$(sed -n 's/^\([A-Za-z0-9]*\):.*/\1/p' Sources/modules.txt | tr '\n' ' ')
pattern=$(echo $names | tr ' ' '|')
rm -rf "$dir" && mkdir -p "$dir"
for m in $names; do
    for f in $(find "Sources/$m" -name '*.swift' | sort); do
        sed -E "/^import ($pattern)\$/d" "$f" > "$dir/$m-$(basename "$f")"
    done
done
