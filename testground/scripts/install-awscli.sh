#!/usr/bin/env bash
# Installs the AWS CLI (v1, the one PyPI serves; the commands deploy/aws/aws-setup.sh uses read the
# same in v2) into a virtualenv of its own in the cache, once. Not into moto's: awscli pins its own
# botocore. The tests run aws-setup.sh with it against the ground's SQS/EventBridge server.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
AWSCLI_VERSION="1.46.2"
AWSCLI_VENV="$CACHE_DIR/awscli-$AWSCLI_VERSION"
install_venv "$AWSCLI_VENV" "awscli==$AWSCLI_VERSION" "$AWSCLI_VENV/bin/aws" --version
# The last line of output is always the aws command's path (tests read it).
echo "$AWSCLI_VENV/bin/aws"
