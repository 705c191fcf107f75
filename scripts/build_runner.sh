#!/usr/bin/env bash
# Build the C++ on-device runner (runners/android) against the executorch wheel's libraries.
#   scripts/build_runner.sh host      -> runners/android/build-host/atom_runner
#   scripts/build_runner.sh aarch64   -> runners/android/build-aarch64/atom_runner (cross, g++-aarch64-linux-gnu)
# Idempotent: configures once, then make only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-host}"
root="$PWD"
venv="$root/.venv"
cmake_bin="$venv/bin/cmake"
[ -x "$cmake_bin" ] || { echo "build_runner: $cmake_bin missing (pip install 'cmake>=3.28' into .venv)" >&2; exit 1; }
jobs="${ATOM_BUILD_JOBS:-2}"
case "$target" in
  host)
    et_root="$("$venv/bin/python" -c 'import executorch; print(list(executorch.__path__)[0])')"
    build="$root/runners/android/build-host"
    extra=()
    ;;
  aarch64)
    cache="$root/runners/android/build-deps/executorch-aarch64"
    if [ ! -f "$cache/executorch/share/cmake/executorch-config.cmake" ]; then
      version="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("executorch"))')"
      mkdir -p "$cache/wheel"
      "$venv/bin/pip" download --no-deps --only-binary=:all: --platform manylinux_2_28_aarch64 \
        --python-version 3.11 -d "$cache/wheel" "executorch==$version"
      "$venv/bin/python" - "$cache" <<'PY'
import sys, zipfile, glob, os
cache = sys.argv[1]
whl = glob.glob(os.path.join(cache, "wheel", "executorch-*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.startswith(("executorch/lib/", "executorch/include/", "executorch/share/")):
            z.extract(n, cache)
PY
    fi
    et_root="$cache/executorch"
    build="$root/runners/android/build-aarch64"
    extra=(-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64
           -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ -DCMAKE_FIND_ROOT_PATH=/usr/aarch64-linux-gnu)
    ;;
  *) echo "usage: $0 [host|aarch64]" >&2; exit 2 ;;
esac
if [ ! -f "$build/CMakeCache.txt" ]; then
  nice "$cmake_bin" -S runners/android -B "$build" -DCMAKE_BUILD_TYPE=Release -DEXECUTORCH_ROOT="$et_root" "${extra[@]}" >/dev/null
fi
nice "$cmake_bin" --build "$build" -j "$jobs" >&2
echo "$build/atom_runner"
