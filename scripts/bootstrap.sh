#!/usr/bin/env bash
# Create or reuse the project's virtualenv at .venv.
#
# The heavy environment (torch, ray, ...; about 6 GB) lives OUTSIDE the clone, in
#   ${EDITORBOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/editorbot}/venvs/<key>
# where <key> hashes requirements.lock, INSTALL_STEPS below and the Python version. A second clone or
# CI run with the same dependency files reuses it in seconds. `.venv` itself is a tiny overlay
# venv: a .pth file adds the cached site-packages, and editorbot is installed into it in editable
# mode, so several clones can share one cache without pointing it at each other.
#
# How to run: `bash scripts/bootstrap.sh` (the Makefile does it for you). Prints the venv path.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${EDITORBOT_PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$(command -v "$candidate")"; break; fi
  done
fi
PYVER="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
if [[ "$PYVER" != "3.11" ]]; then
  echo "bootstrap: editorbot's lock file is resolved for Python 3.11, found $PYVER at $PYTHON;" \
       "set EDITORBOT_PYTHON to a Python 3.11 interpreter" >&2
  exit 1
fi

# Bump when the way the cache is built changes (not for comment edits), so caches rebuild.
INSTALL_STEPS=1
CACHE_ROOT="${EDITORBOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/editorbot}"
KEY="$({ cat requirements.lock; echo "steps=$INSTALL_STEPS"; } | sha256sum | cut -c1-16)-py$PYVER"
CACHED="$CACHE_ROOT/venvs/$KEY"

# This machine's pip config lists local indexes that may not exist; their warnings are noise.
quiet_pip() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

build_cache() {
  # An interrupted build leaves no `.complete` marker, so the next run throws it away and starts
  # again instead of trusting a half-installed environment.
  rm -rf "$CACHED"
  mkdir -p "$CACHE_ROOT/venvs"
  echo "bootstrap: building the environment cache $CACHED (first run only, a few minutes)" >&2
  "$PYTHON" -m venv "$CACHED"
  quiet_pip "$CACHED/bin/python" -m pip install --quiet --upgrade "pip==26.3" "setuptools==81.0.0" "wheel==0.48.0"
  # torch/torchaudio first: natten builds against the installed torch, and pip would otherwise
  # fetch a second, newer torch into natten's build environment.
  grep -v -i '^natten==' requirements.lock > "$CACHED/requirements-no-natten.txt"
  quiet_pip "$CACHED/bin/python" -m pip install --quiet -r "$CACHED/requirements-no-natten.txt"
  quiet_pip "$CACHED/bin/python" -m pip install --quiet --no-build-isolation --no-deps \
    "$(grep -i '^natten==' requirements.lock)"
  touch "$CACHED/.complete"
  # Keep the three most recently built caches; older ones (about 6 GB each) are removed.
  ls -1dt "$CACHE_ROOT"/venvs/*/ 2>/dev/null | tail -n +4 | xargs -r rm -rf
}

if [[ ! -f "$CACHED/.complete" ]]; then
  mkdir -p "$CACHE_ROOT/venvs"
  # One builder at a time per cache (two clones bootstrapping at once wait for each other).
  exec 9>"$CACHE_ROOT/venvs/.lock"
  flock 9
  if [[ ! -f "$CACHED/.complete" ]]; then build_cache; fi
  flock -u 9
fi

SITE="lib/python$PYVER/site-packages"
if [[ ! -f .venv/.editorbot-key ]] || [[ "$(cat .venv/.editorbot-key)" != "$KEY" ]]; then
  rm -rf .venv
  "$PYTHON" -m venv --without-pip .venv
  # `import site; site.addsitedir(...)` (not a bare path) so the cached .pth files run too.
  echo "import site; site.addsitedir('$CACHED/$SITE')" > ".venv/$SITE/_editorbot_cache.pth"
  # Console scripts of the cached packages (pytest, ruff, mypy, ray, tensorboard), re-pointed at
  # this overlay's interpreter so that they see editorbot.
  for script in "$CACHED"/bin/*; do
    [[ -f "$script" ]] || continue
    name="$(basename "$script")"
    case "$name" in python*|pip*|activate*|Activate*) continue ;; esac
    if head -c 2 "$script" | grep -q '#!' && head -n 1 "$script" | grep -q python; then
      { echo "#!$ROOT/.venv/bin/python"; tail -n +2 "$script"; } > ".venv/bin/$name"
      chmod +x ".venv/bin/$name"
    fi
  done
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e . >/dev/null
  echo "$KEY" > .venv/.editorbot-key
fi

# Editable install records the package path; a moved clone (or a removed egg-link) reinstalls.
if ! .venv/bin/python -c "import editorbot, os, sys; sys.exit(0 if os.path.dirname(os.path.dirname(editorbot.__file__)) == '$ROOT' else 1)" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e . >/dev/null
fi
echo "$ROOT/.venv"
