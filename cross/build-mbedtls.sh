#!/usr/bin/env bash
# Builds mbedTLS (the 3.6 source fetched by cross/fetch-mbedtls.sh) with
# agent's configuration (cross/mbedtls_config.h, cross/crypto_config.h) into
# DEST/{include,lib}. One configuration for every build: the release targets,
# the host build the unit tests use, and the fuzz build.
#
#   build-mbedtls.sh SRC DEST CC AR CFLAGS...
#
# Our ChaCha20/Poly1305 (MBEDTLS_CHACHA20_ALT/POLY1305_ALT) is not part of the
# libraries: its objects go into every link beside them, and its alt headers
# must be on the include path (CFLAGS). The P-256 core behind mbedTLS's PSA
# driver glue (3rdparty/p256-m) is taken out of libmbedcrypto.a when
# AGENT_P256_OURS=1: our cross/p256 objects replace it in the link.
set -euo pipefail
src=$1 dest=$2 cc=$3 ar=$4
shift 4
cflags="$*"
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$dest"
mkdir -p "$dest/lib"
cp -r "$src/library" "$src/include" "$src/3rdparty" "$src/scripts" "$src/framework" "$dest/"
cp "$here/mbedtls_config.h" "$dest/include/mbedtls/mbedtls_config.h"
cp "$here/crypto_config.h" "$dest/include/psa/crypto_config.h"
make -s -C "$dest/library" CC="$cc" AR="$ar" CFLAGS="$cflags -I../include" \
  libmbedcrypto.a libmbedx509.a libmbedtls.a >/dev/null
mv "$dest"/library/libmbed*.a "$dest/lib/"
if [ "${AGENT_P256_OURS:-0}" = 1 ]; then
  "$ar" d "$dest/lib/libmbedcrypto.a" p256-m.o
fi
rm -rf "$dest/library" "$dest/3rdparty" "$dest/scripts" "$dest/framework"
