#!/usr/bin/env bash
# Opens every dialog of the real binary on a virtual display (Xvfb +
# zenity), answers them with xdotool, and refreshes the screenshots in
# docs/screenshots/. Needs: apt-get install xvfb zenity imagemagick xdotool.
# CI runs the same test (TestGUI) as part of "make test", into a temp folder.
set -euo pipefail
cd "$(dirname "$0")/.."
make tools >/dev/null
mkdir -p docs/screenshots
INSTANCE_SYNC_SCREENSHOTS="$PWD/docs/screenshots" \
INSTANCE_SYNC_TEST_RESTIC="${INSTANCE_SYNC_TEST_RESTIC:-$PWD/.bin/restic}" \
  go test -count=1 -run '^Test(Windows)?GUI$' -v ./cmd/instance-sync/
ls -l docs/screenshots/
