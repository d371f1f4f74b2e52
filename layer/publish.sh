#!/usr/bin/env bash
# Publishes the zips that `make layer` writes as new versions of two layers, NAME-x86_64
# and NAME-arm64, in REGION, and prints the LayerVersionArn of each.
#
#   layer/publish.sh REGION [NAME]        NAME defaults to lambda-otel
#
# DRY_RUN=1 prints the aws commands instead of running them; it does not need aws.
# DIST_DIR reads the zips from another directory than dist/ at the repository root.
set -euo pipefail

usage() {
	echo "usage: layer/publish.sh REGION [NAME]   (DRY_RUN=1 prints the commands instead)" >&2
	exit 2
}
[[ $# -eq 1 || $# -eq 2 ]] || usage
region=$1
name=${2:-lambda-otel}
[[ -n $region && -n $name ]] || usage

# Only bash builtins up to the aws call, so that a dry run works with any PATH.
src=${BASH_SOURCE[0]}
[[ $src == */* ]] && here=${src%/*} || here=.
root=$(cd "$here/.." && pwd)
dist=${DIST_DIR:-$root/dist}

archs=(x86_64 arm64)
# The runtimes listed on the layer are metadata for discovery; the extension itself runs
# with any runtime. Lambda accepts at most 15.
runtimes=(
	provided.al2023 provided.al2
	nodejs22.x nodejs20.x
	python3.13 python3.12 python3.11
	java21 java17
	dotnet8
	ruby3.4 ruby3.3
)
if ((${#runtimes[@]} > 15)); then
	echo "publish.sh: ${#runtimes[@]} compatible runtimes listed, Lambda accepts at most 15" >&2
	exit 1
fi

# Check everything before publishing anything, so that a failure never publishes one
# architecture without the other.
for arch in "${archs[@]}"; do
	if [[ ! -f $dist/lambda-otel-$arch.zip ]]; then
		echo "publish.sh: $dist/lambda-otel-$arch.zip is missing: run make layer first" >&2
		exit 1
	fi
done
dry_run=0
case ${DRY_RUN:-0} in
0 | "") ;;
*) dry_run=1 ;;
esac
if ((!dry_run)) && ! command -v aws >/dev/null; then
	echo "publish.sh: aws (the AWS CLI) is not on PATH: install it, or run with DRY_RUN=1 to see the commands" >&2
	exit 1
fi

version=
if command -v git >/dev/null; then
	version=$(git -C "$root" describe --tags --always --dirty 2>/dev/null || true)
fi

# No --license-info: the repository has no LICENSE file to name.
for arch in "${archs[@]}"; do
	cmd=(aws lambda publish-layer-version
		--region "$region"
		--layer-name "$name-$arch"
		--description "lambda-otel${version:+ $version} for $arch: Lambda Telemetry API to OpenTelemetry over OTLP"
		--zip-file "fileb://$dist/lambda-otel-$arch.zip"
		--compatible-architectures "$arch"
		--compatible-runtimes "${runtimes[@]}"
		--query LayerVersionArn --output text)
	if ((dry_run)); then
		line=$(printf ' %q' "${cmd[@]}")
		echo "${line:1}"
	else
		arn=$("${cmd[@]}")
		echo "$arch $arn"
	fi
done
