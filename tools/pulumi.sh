#!/usr/bin/env bash
# Makes a Pulumi CLI compatible with the pinned Python SDK available, and prints the
# folder that holds it. A `pulumi` already on PATH at a compatible version is used as is;
# otherwise the CLI and the Python language host are built from Go modules into
# .tools/bin (see tools/pulumi-cli/go.mod). A second run finds the build and does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
sdk_version=$(sed -n 's/^pulumi==\([0-9.]*\).*/\1/p' requirements.txt)
tools_bin="$PWD/.tools/bin"

version_ok() { # $1: a `pulumi version` output such as v3.192.0
  python3 - "$1" "$sdk_version" <<'PY'
import sys
have = tuple(int(p) for p in sys.argv[1].lstrip("v").split("-")[0].split(".")[:3])
want = tuple(int(p) for p in sys.argv[2].split("."))
sys.exit(0 if have[0] == want[0] and have >= want else 1)
PY
}

if [ -x "$tools_bin/pulumi" ] && version_ok "$("$tools_bin/pulumi" version)"; then
  echo "$tools_bin"; exit 0
fi
if command -v pulumi >/dev/null 2>&1 && version_ok "$(pulumi version)" \
   && command -v pulumi-language-python >/dev/null 2>&1; then
  dirname "$(command -v pulumi)"; exit 0
fi

command -v go >/dev/null 2>&1 || { echo "tools/pulumi.sh: no compatible pulumi on PATH and no Go toolchain to build one; install Pulumi (https://www.pulumi.com/docs/install/) or Go" >&2; exit 1; }
echo "tools/pulumi.sh: building the Pulumi CLI v$sdk_version from Go modules (a few minutes, once)" >&2
mkdir -p "$tools_bin"
cd tools/pulumi-cli
# The language host has no release tags; its pseudo-version is not in the checksum database.
export GONOSUMDB=github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python
export GOFLAGS=-mod=mod
go build -tags osusergo,grpcnotrace \
  -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$sdk_version" \
  -o "$tools_bin/" \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
  github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 >&2
sdk_dir=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
install -m 0755 "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$tools_bin/"
install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$tools_bin/"
"$tools_bin/pulumi" version >&2
echo "$tools_bin"
