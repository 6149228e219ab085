#!/usr/bin/env bash
# Installs, idempotently and only what is missing, the Debian packages burstlet builds with
# (DESIGN.md section 2), libnftables (`burstlet netproxy` programs the pod's NAT with it), and
# iproute2, with which the testbed makes its veth pair and netns. Safe to run on every `make`
# invocation: it does nothing when all packages are present.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  clang clang-tidy clang-format libclang-rt-14-dev
  libboost1.81-all-dev libboost-json1.81-dev libboost-url1.81-dev libssl-dev zlib1g-dev
  libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev prometheus-cpp-dev
  libnftables-dev nftables
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-matplotlib curl
  iproute2
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
