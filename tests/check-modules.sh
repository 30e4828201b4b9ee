#!/usr/bin/env bash
# tests/check-modules.sh: the module rules of Sources/modules.txt (make check-modules).
#   1. every Swift module under Sources/ is listed, and only those;
#   2. the list is in dependency order (a module's dependencies come before it);
#   3. every module imports only what it declares (SwiftPM would let a module import what its
#      dependencies import: such an undeclared edge is refused here);
#   4. the release build's single-module form (all modules as one, their own imports
#      dropped, as cross/release.mk compiles it) typechecks with the host compiler, so two
#      modules sharing an internal name fail here and not in a release build.
# Prints one line per check and "modules: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
list=Sources/modules.txt
pass=0; fail=0
ok()  { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

names=$(sed -n 's/^\([A-Za-z0-9]*\):.*/\1/p' $list | tr '\n' ' ')
deps_of() { sed -n "s/^$1:\(.*\)/\1/p" $list; }

# 1
dirs=$(find Sources -mindepth 1 -maxdepth 1 -type d ! -name CShims -printf '%f\n' | sort)
if [ "$(echo $names | tr " " "\n" | sort)" = "$dirs" ]; then ok "Sources/ holds exactly the listed modules ($(echo $names))"
else bad "Sources/ has $(echo $dirs), the list $(echo $names)"; fi

# 2 and 3
seen=" CShims "
for m in $names; do
    d=$(deps_of "$m")
    missing=""
    for x in $d; do case "$seen" in *" $x "*) ;; *) missing="$missing $x";; esac; done
    [ -z "$missing" ] && ok "$m comes after its dependencies" || bad "$m is listed before its dependencies:$missing"
    seen="$seen$m "
    imports=$(find Sources/$m -name '*.swift' -exec grep -h '^import ' {} + | awk '{print $2}' | sort -u)
    undeclared=""
    for i in $imports; do
        case " CShims $names " in *" $i "*) ;; *) continue;; esac   # system modules (Glibc, ...)
        case " $d " in *" $i "*) ;; *) undeclared="$undeclared $i";; esac
    done
    [ -z "$undeclared" ] && ok "$m imports only what it declares" || bad "$m imports undeclared modules:$undeclared"
done

# 4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash cross/single-module.sh "$tmp/src"
mbed=.build-cross/host/mbedtls
if swiftc -typecheck -parse-as-library -swift-version 5 -module-name agent \
    -I Sources/CShims/include -Xcc -I -Xcc $mbed/include -Xcc -Icross/chachapoly -Xcc -DAGENT_MBEDTLS_THREADING \
    -module-cache-path "$tmp/module-cache" "$tmp"/src/*.swift > "$tmp/out.txt" 2>&1; then
    ok "the single-module form of all $(ls "$tmp"/src/*.swift | wc -l) sources typechecks"
else
    grep -E "error:" "$tmp/out.txt" | head -20
    bad "the single-module form does not typecheck (names shared by two modules?)"
fi
echo "modules: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
