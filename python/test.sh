#!/usr/bin/env bash
# Runs the cloud_sync tests against this tree's instance-sync and cloud-svc
# and real restic. Called by "make test" with RESTIC set; skips (exit 0)
# without a usable python3, except under CI=true, where that fails.
set -euo pipefail
cd "$(dirname "$0")"

skip() {
	if [ "${CI:-}" = true ]; then
		echo "python tests: FAIL: $1 (CI=true: required)" >&2
		exit 1
	fi
	echo "python tests: SKIP: $1"
	exit 0
}

command -v python3 >/dev/null || skip "python3 is missing; the cloud_sync package needs Python >= 3.10"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
	skip "$(python3 -V 2>&1) is older than the 3.10 the cloud_sync package needs"

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd .. && go build -o "$bin/instance-sync" ./cmd/instance-sync && go build -o "$bin/cloud-svc" ./cmd/cloud-svc)

export CLOUD_SYNC_TEST_BINARY="$bin/instance-sync" CLOUD_SYNC_TEST_CLOUD_SVC="$bin/cloud-svc"
export INSTANCE_SYNC_TEST_RESTIC="${INSTANCE_SYNC_TEST_RESTIC:-${RESTIC:-}}"
echo "python tests: $(python3 -V 2>&1), instance-sync and cloud-svc from this tree, restic ${INSTANCE_SYNC_TEST_RESTIC:-missing}"
PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s tests -v
