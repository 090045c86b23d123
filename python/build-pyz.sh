#!/usr/bin/env bash
# Builds cloud-sync.pyz: the cloud_sync package as one file that runs with
# "python cloud-sync.pyz ARGS..." (the predecessor's launcher hook lines),
# handing ARGS to the instance-sync binary beside it. Usage: build-pyz.sh [OUT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-cloud-sync.pyz}")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -r "$here/cloud_sync" "$stage/"
rm -rf "$stage/cloud_sync/__pycache__"
cat >"$stage/__main__.py" <<'PY'
import sys

from cloud_sync.__main__ import main

sys.exit(main(sys.argv[1:]))
PY
python3 -m zipapp "$stage" -p "/usr/bin/env python3" -o "$out"
echo "built $out"
