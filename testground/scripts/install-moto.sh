#!/usr/bin/env bash
# Installs moto's server (SQS and EventBridge) from PyPI into a virtualenv in the cache, once.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [[ -f "$MOTO_VENV/.complete" ]]; then
  echo "cached: $MOTO_VENV"
  exit 0
fi
# A virtualenv cannot be moved (its scripts name its path), so it is made in place and marked
# complete last: an interrupted install is redone from scratch.
rm -rf "$MOTO_VENV"
python3 -m venv "$MOTO_VENV"
"$MOTO_VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
touch "$MOTO_VENV/.complete"
echo "installed moto $MOTO_VERSION into $MOTO_VENV"
