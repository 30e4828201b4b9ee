#!/usr/bin/env bash
# Prints the stripped sizes of the release binaries; fails if one exceeds its
# budget (aarch64 and armv7: 512 KiB, the devices' binaries; x86_64: 640 KiB), or if Swift's Unicode tables crept back in (a String compared,
# hashed or sliced by Character somewhere: use Wire.Text instead).
set -euo pipefail
printf '%-22s %10s %8s %8s\n' binary bytes KiB budget
status=0
for b in "$@"; do
  s=$(stat -c %s "$b")
  case "$(basename "$b")" in
    *x86_64*) limit=$((640 * 1024)) ;;
    *) limit=$((512 * 1024)) ;;
  esac
  printf '%-22s %10d %8.1f %7d%%\n' "$(basename "$b")" "$s" "$(awk "BEGIN{print $s/1024}")" "$((s * 100 / limit))"
  if [ "$s" -gt "$limit" ]; then echo "  $(basename "$b") is over its $((limit / 1024)) KiB budget" >&2; status=1; fi
  if [ -f "$b.unstripped" ] && nm "$b.unstripped" 2>/dev/null | grep -qE '_swift_stdlib_(normData|graphemeBreakProperties|nfd_decomp)'; then
    echo "  $(basename "$b") links Swift's Unicode tables (~60 KB): some String is compared, hashed or sliced by Character" >&2
    status=1
  fi
done
exit $status
