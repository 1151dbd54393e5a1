#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build of iopgfuzz's continuous fuzz targets (docs/clusterfuzzlite.md).
#
# Runs inside gcr.io/oss-fuzz-base/base-builder-python, in $SRC/iopgfuzz (the Dockerfile's
# WORKDIR).  For each target T it leaves in $OUT:
#   T, T.pkg              compile_python_fuzzer's wrapper and PyInstaller bundle
#   T_seed_corpus.zip     the binary forms of corpus/differential/*.ops
#   T.dict, T.options     the dictionary (one file, shared) and libFuzzer's options
set -o pipefail

TARGETS="fuzz_v1 fuzz_fixed"

python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else
    f"iopgfuzz needs Python >= 3.11; this builder image has {sys.version.split()[0]}")'

# The package and its dependencies (numpy, hypothesis).  Atheris, PyInstaller and coverage are the
# image's own: the `fuzz` extra is left out so that pip never replaces the image's Atheris build.
pip3 install --no-cache-dir .
python3 -c 'import atheris, numpy, fuzz.campaigns.cflite'

mkdir -p "$WORK/cflite"
for t in $TARGETS; do
  # compile_python_fuzzer rewrites the script it is given in coverage builds: give it a copy.
  cp ".clusterfuzzlite/$t.py" "$WORK/cflite/$t.py"
  # fuzz.target is imported inside fuzz.campaigns.cflite.run(); name it so that PyInstaller
  # surely bundles it.
  compile_python_fuzzer "$WORK/cflite/$t.py" --hidden-import=fuzz.target
  cp .clusterfuzzlite/iopgfuzz.dict "$OUT/$t.dict"
  cp ".clusterfuzzlite/$t.options" "$OUT/$t.options"
done

# One zip per target, named by the OSS-Fuzz convention; reads corpus/differential of this tree.
python3 -m fuzz cflite-seeds "$OUT" $TARGETS
