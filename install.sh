#!/usr/bin/env bash
# Install everything symile-data needs into ./.venv (idempotent; fast when nothing changed).
#   system: espeak-ng (offline TTS for the demo), via apt when we are root or have sudo
#   python: torch (TORCH_SPEC, default torch==2.13.0), then this package with [dev] extras
#   audio decoding in `datasets` (Audio features): torchcodec + ffmpeg's libraries, only with a
#   CUDA torch (torchcodec's PyPI wheels link libtorch_cuda); CPU installs read Audio columns
#   as raw bytes and decode them with soundfile (docs/publish.md)
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3.12 python3.10 python3; do
    if command -v "$c" >/dev/null 2>&1; then PY=$c; break; fi
  done
fi
[ -n "$PY" ] || { echo "install.sh: no python3 found; install Python >= 3.10" >&2; exit 1; }

apt_install() {
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; else
    echo "install.sh: cannot install '$*' (not root, no passwordless sudo)." >&2
    echo "  Run: sudo apt-get install -y $*   -- until then the offline speech stage fails with a clear error." >&2
    return 0
  fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! command -v espeak-ng >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then apt_install espeak-ng; else
    echo "install.sh: espeak-ng not found and no apt-get; install espeak-ng for offline speech" >&2
  fi
fi
if ! "$PY" -c "import venv, ensurepip" >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 && apt_install "$(basename "$PY")-venv" || true
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.symile-installed-$(cat pyproject.toml install.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first, pinned: with no torch present a loose requirement could pull a different build
  .venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
  .venv/bin/python -m pip install -q -e ".[dev]"
  if .venv/bin/python -c "import sys, torch; sys.exit(0 if torch.version.cuda else 1)"; then
    command -v ffmpeg >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && apt_install ffmpeg; }
    .venv/bin/python -m pip install -q -e ".[audio]"
  else
    echo "install.sh: CPU torch: skipping torchcodec (datasets Audio -> read bytes, decode with soundfile)"
  fi
  rm -f .venv/.symile-installed-*; touch "$stamp"
fi
echo "install.sh: environment ready in .venv ($(.venv/bin/python --version))"
