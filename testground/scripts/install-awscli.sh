#!/usr/bin/env bash
# Installs the AWS CLI (v1, the one PyPI serves; the commands deploy/aws/aws-setup.sh uses read the
# same in v2) into a virtualenv of its own in the cache, once. Not into moto's: awscli pins its own
# botocore. The tests run aws-setup.sh with it against the ground's SQS/EventBridge server.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
AWSCLI_VERSION="1.46.2"
AWSCLI_VENV="$CACHE_DIR/awscli-$AWSCLI_VERSION"
# The last line of output is always the aws command's path (tests read it).
if [[ -f "$AWSCLI_VENV/.complete" ]]; then
  echo "cached: $AWSCLI_VENV"
  echo "$AWSCLI_VENV/bin/aws"
  exit 0
fi
# Made in place (a virtualenv cannot be moved) and marked complete last: an interrupted install is redone.
rm -rf "$AWSCLI_VENV"
python3 -m venv "$AWSCLI_VENV"
"$AWSCLI_VENV/bin/pip" install --quiet --disable-pip-version-check "awscli==$AWSCLI_VERSION"
"$AWSCLI_VENV/bin/aws" --version
touch "$AWSCLI_VENV/.complete"
echo "installed awscli $AWSCLI_VERSION into $AWSCLI_VENV"
echo "$AWSCLI_VENV/bin/aws"
