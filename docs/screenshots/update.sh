#!/bin/sh
# update.sh copies the README's screenshots from the last run of the browser
# tests (go test ./web/e2e, which writes web/e2e/testdata/screenshots/) and
# shrinks them with Debian's pngquant.
#
# Usage: go test ./web/e2e && sh docs/screenshots/update.sh
set -eu
cd "$(dirname "$0")"
src=../../web/e2e/testdata/screenshots
for name in 14-records 12-transcript-notes 25-live-recording 15-export-dialog 20-destroy-confirm 24-status phone-records; do
  if [ -f "$src/$name.png" ]; then
    pngquant --force --strip --quality=60-85 --speed 1 --output "$name.png" "$src/$name.png"
  else
    echo "update.sh: $name.png not in the last test run; kept the old one" >&2
  fi
done
ls -l *.png
