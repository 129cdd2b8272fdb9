#!/usr/bin/env bash
# Install exoperiod, its test extras and the `cluster` extra (dask-jobqueue, for SLURM/PBS).
# torch==2.13.0 first: it is a CPU build on this machine's disk, and without it pip would
# pull a multi-GB CUDA build for `torch>=2.2`.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
python -m pip install --quiet --disable-pip-version-check -e ".[test,cluster]"
