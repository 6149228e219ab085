#!/usr/bin/env bash
# Prints the replace block of e2e/go.mod: one line per staging module of k8s.io/kubernetes
# at the given release, each pinned to the matching v0.<minor>.<patch> module version.
# Usage: scripts/gen-replaces.sh v1.36.3 > /tmp/replaces; paste into e2e/go.mod.
set -euo pipefail
version=${1:?usage: gen-replaces.sh v1.MINOR.PATCH}
staging="v0.${version#v1.}"
modfile=$(cd "$(dirname "$0")/../e2e" && go mod download -json "k8s.io/kubernetes@${version}" |
  sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
echo "replace ("
grep '=> ./staging/src/' "$modfile" | awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}'
echo ")"
