#!/usr/bin/env bash
# Builds the static release binaries into dist/ with a SHA256SUMS file.
# Called by "make release"; run from anywhere.
set -euo pipefail

cd "$(dirname "$0")/.."

# VERSION may be set by the caller (e.g. CI building a tag); otherwise it is
# taken from git, and "dev" outside a repository or before the first commit.
if [ -z "${VERSION:-}" ]; then
	VERSION=$(git describe --tags --always --dirty 2>/dev/null || true)
	VERSION=${VERSION:-dev}
fi

# cmd dir, then the os/arch pairs it ships for.
targets=(
	"instance-sync linux/amd64 linux/arm64 windows/amd64 darwin/amd64 darwin/arm64"
	"cloud-svc linux/amd64 linux/arm64"
)

sha256() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$@"
	else
		shasum -a 256 "$@"
	fi
}

rm -rf dist
mkdir -p dist
echo "building version $VERSION"

built=()
for t in "${targets[@]}"; do
	read -r cmd platforms <<<"$t"
	# A command that has not landed yet is skipped, not fatal, so the script
	# works while the tree is still growing.
	if ! compgen -G "cmd/$cmd/*.go" >/dev/null; then
		echo "note: cmd/$cmd has no Go files yet; skipping it"
		continue
	fi
	for p in $platforms; do
		os=${p%/*}
		arch=${p#*/}
		out="dist/${cmd}_${os}_${arch}"
		[ "$os" = windows ] && out="$out.exe"
		CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath \
			-ldflags "-s -w -X main.version=$VERSION" -o "$out" "./cmd/$cmd"
		printf '%-40s %10d bytes\n' "$out" "$(wc -c <"$out")"
		built+=("$(basename "$out")")
	done
done

if [ ${#built[@]} -eq 0 ]; then
	echo "error: nothing to build; cmd/instance-sync has no Go files" >&2
	exit 1
fi
(cd dist && sha256 "${built[@]}" >SHA256SUMS)
echo "wrote dist/SHA256SUMS (${#built[@]} binaries)"
