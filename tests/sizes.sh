#!/usr/bin/env bash
# Prints the stripped sizes of the release binaries; fails if one exceeds 512 KiB.
set -euo pipefail
limit=$((512 * 1024))
printf '%-22s %10s %8s\n' binary bytes KiB
status=0
for b in "$@"; do
  s=$(stat -c %s "$b")
  printf '%-22s %10d %8.1f\n' "$(basename "$b")" "$s" "$(awk "BEGIN{print $s/1024}")"
  if [ "$s" -gt "$limit" ]; then echo "  over the 512 KiB budget" >&2; status=1; fi
done
exit $status
