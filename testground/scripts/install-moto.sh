#!/usr/bin/env bash
# Installs moto's server (SQS and EventBridge) from PyPI into a virtualenv in the cache, once.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
install_venv "$MOTO_VENV" "moto[server]==$MOTO_VERSION"
