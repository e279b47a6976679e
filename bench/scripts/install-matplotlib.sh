#!/usr/bin/env bash
# Installs matplotlib (PyPI) into a virtualenv of its own in the test ground's cache, once, for the
# benchmark's PNG plots (bench/plot.py). Nothing else uses it. The last line of output is always the
# virtualenv's python, which bench/run.ts reads.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../testground/scripts/lib.sh"
MATPLOTLIB_VERSION="3.10.9"
PLOT_VENV="$CACHE_DIR/matplotlib-$MATPLOTLIB_VERSION"
if [[ -f "$PLOT_VENV/.complete" ]]; then
  echo "cached: $PLOT_VENV"
  echo "$PLOT_VENV/bin/python"
  exit 0
fi
# Made in place (a virtualenv cannot be moved) and marked complete last: an interrupted install is redone.
rm -rf "$PLOT_VENV"
python3 -m venv "$PLOT_VENV"
"$PLOT_VENV/bin/pip" install --quiet --disable-pip-version-check "matplotlib==$MATPLOTLIB_VERSION"
"$PLOT_VENV/bin/python" -c 'import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot'
touch "$PLOT_VENV/.complete"
echo "installed matplotlib $MATPLOTLIB_VERSION into $PLOT_VENV"
echo "$PLOT_VENV/bin/python"
