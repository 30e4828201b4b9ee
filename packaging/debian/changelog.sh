#!/usr/bin/env bash
# debian/changelog.sh VERSION EPOCH: the package's Debian-format changelog
# (one entry per package version; the project's history is CHANGELOG.md,
# shipped in the tarballs and /usr/share/doc/agent of make install).
set -euo pipefail
version=$1 epoch=$2
cat <<END
agent ($version) unstable; urgency=medium

  * Release $version: see CHANGELOG.md of the project.

 -- agent authors <agent@example.invalid>  $(LC_ALL=C date -u -R -d @"$epoch")
END
