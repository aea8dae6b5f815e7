#!/usr/bin/env bash
# The manifest tests render the overlays with `kubectl kustomize`. When no kubectl is installed,
# Debian's (package kubernetes-client) is: the overlays are written in the kustomize dialect its
# embedded kustomize 2.0.3 understands, which current kubectl (kustomize 5) still accepts.
set -euo pipefail
command -v "${KUBECTL:-kubectl}" >/dev/null && exit 0
echo "kubectl: installing Debian's kubernetes-client"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq kubernetes-client >/dev/null
