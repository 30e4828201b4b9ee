#!/usr/bin/env bash
# Fetches mbedTLS's Debian source package, the 3.6 LTS branch, through apt and
# unpacks it into $1 (default .build-cross/mbedtls-src). Nothing of it is
# committed.
#
# Debian 13 "trixie" carries 3.6 (Debian 12's 2.28 is past its support). The
# deb-src list is derived at run time from this machine's own apt sources (the
# "Types: deb" stanzas of *.sources, or "deb" lines of *.list, turned into
# deb-src, this machine's codename replaced by trixie), so no repository host is
# written into the project. apt checks the downloaded files against the signed
# Sources index (Debian's archive keyring has trixie's keys). The newest 3.6.x
# the index offers is taken (trixie-security's, when it has a newer one); any
# other branch is refused.
set -euo pipefail
dest=${1:-.build-cross/mbedtls-src}
branch=3.6
suite=trixie
if [ -f "$dest/include/mbedtls/build_info.h" ] &&
   grep -q "MBEDTLS_VERSION_STRING  *\"$branch\." "$dest/include/mbedtls/build_info.h"; then
  exit 0
fi
codename=$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")
to_suite() {
  if [ -n "$codename" ] && [ "$codename" != "$suite" ]; then sed -e "s/\b$codename\b/$suite/g"; else cat; fi
}
work=$(mktemp -d /tmp/agent-mbedtls.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/dl"
src="$work/sources.sources"
: >"$src"
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  sed -e 's/^Types:.*\bdeb\b.*$/Types: deb-src/' "$f" | to_suite >>"$src"
  echo >>"$src"
done
list="$work/sources.list"
: >"$list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  grep -E '^\s*deb\s' "$f" | sed -e 's/^\s*deb\s/deb-src /' | to_suite >>"$list" || true
done
opts=(-o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$work/lists" -o APT::Sandbox::User=root)
if [ -s "$src" ]; then
  cp "$src" "$work/parts.sources"
  opts+=(-o Dir::Etc::SourceParts="$work/partsdir")
  mkdir -p "$work/partsdir"
  cp "$src" "$work/partsdir/agent.sources"
fi
opts+=(-o Dir::Etc::SourceList="$list")
ok=0
for i in 1 2 3; do
  apt-get "${opts[@]}" update -q >"$work/update.log" 2>&1 || true
  if (cd "$work/dl" && apt-get "${opts[@]}" source --download-only mbedtls >"$work/source.log" 2>&1); then
    ok=1
    break
  fi
  sleep 2
done
if [ $ok != 1 ]; then
  cat "$work/update.log" "$work/source.log" >&2
  echo "fetch-mbedtls: could not download the mbedtls source package of $suite" >&2
  exit 1
fi
tarball=$(ls "$work/dl"/mbedtls_*.orig.tar.* | head -1)
case $(basename "$tarball") in
  mbedtls_$branch.*) ;;
  *) echo "fetch-mbedtls: $suite offers $(basename "$tarball"), not the $branch branch" >&2; exit 1 ;;
esac
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
tar -xf "$tarball" -C "$dest.tmp" --strip-components=1
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "fetch-mbedtls: unpacked $(basename "$tarball") into $dest" >&2
