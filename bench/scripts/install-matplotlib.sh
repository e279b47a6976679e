#!/usr/bin/env bash
# Installs matplotlib (PyPI) into a virtualenv of its own in the test ground's cache, once, for the
# benchmark's PNG plots (bench/plot.py). Nothing else uses it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../testground/scripts/lib.sh"
MATPLOTLIB_VERSION="3.10.9"
PLOT_VENV="$CACHE_DIR/matplotlib-$MATPLOTLIB_VERSION"
install_venv "$PLOT_VENV" "matplotlib==$MATPLOTLIB_VERSION" "$PLOT_VENV/bin/python" -c 'import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot'
# The last line of output is always the virtualenv's python, which bench/run.ts reads.
echo "$PLOT_VENV/bin/python"
