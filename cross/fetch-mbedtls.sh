#!/usr/bin/env bash
# Fetches mbedTLS's Debian source package (2.28.3) through apt and unpacks it
# into $1 (default .build-cross/mbedtls-src). Nothing of it is committed.
#
# The deb-src list is derived at run time from this machine's own apt sources
# (the "Types: deb" stanzas of *.sources, or "deb" lines of *.list, turned into
# deb-src), so no repository host is written into the project. apt checks the
# downloaded files against the signed Sources index.
set -euo pipefail
dest=${1:-.build-cross/mbedtls-src}
version=2.28.3
if [ -f "$dest/include/mbedtls/version.h" ] && grep -q "\"$version\"" "$dest/include/mbedtls/version.h"; then
  exit 0
fi
work=$(mktemp -d /tmp/agent-mbedtls.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/dl"
src="$work/sources.sources"
: >"$src"
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  sed -e 's/^Types:.*\bdeb\b.*$/Types: deb-src/' "$f" >>"$src"
  echo >>"$src"
done
list="$work/sources.list"
: >"$list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  grep -E '^\s*deb\s' "$f" | sed -e 's/^\s*deb\s/deb-src /' >>"$list" || true
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
  if (cd "$work/dl" && apt-get "${opts[@]}" source --download-only "mbedtls=$version-1" >"$work/source.log" 2>&1); then
    ok=1
    break
  fi
  sleep 2
done
if [ $ok != 1 ]; then
  cat "$work/update.log" "$work/source.log" >&2
  echo "fetch-mbedtls: could not download the mbedtls $version source package" >&2
  exit 1
fi
tarball=$(ls "$work/dl"/mbedtls_${version}.orig.tar.* | head -1)
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
tar -xf "$tarball" -C "$dest.tmp" --strip-components=1
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "fetch-mbedtls: unpacked $(basename "$tarball") into $dest" >&2
