#!/usr/bin/env bash
# Builds the release into dist/: per-platform archives bundling restic,
# SHA256SUMS, and Scoop and winget manifests. Called by "make release";
# run from anywhere. Arguments go to cmd/isync-release (-check builds twice
# and compares; -platforms=os/arch,... builds some). See README
# "Release builds" for the environment (VERSION, RELEASE_BASE_URL,
# RELEASE_SIGN_PKCS12, RELEASE_SIGN_PASSWORD, RELEASE_SIGN_TIMESTAMP_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./cmd/isync-release "$@"
