# Shared by bin/serve and bin/test: install what is missing, then the Python environment.
# Sourced, not run. Idempotent: a second run installs nothing and takes a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else say "need root to run: $*  (install sudo or run as root)"; return 1
  fi
}

# apt_install CMD:PACKAGE ... — installs PACKAGE when CMD is not found.
apt_install() {
  local missing=()
  for pair in "$@"; do
    local cmd="${pair%%:*}" pkg="${pair#*:}"
    if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then missing+=("$pkg"); fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    say "please install: ${missing[*]} (no apt-get here)"; return 1
  fi
  say "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_env() {
  local extras="$1"
  local py=python3
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { say "Python >= 3.11 is required"; exit 1; }
  if ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then apt_install "no-such-command:python3-venv"; fi
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$py" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$extras"
  if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
    say "installing Python packages ($extras)"
    "$VENV/bin/pip" install -q --upgrade pip "setuptools<82" wheel
    if [ "$extras" = runtime ]; then "$VENV/bin/pip" install -q -e .
    else "$VENV/bin/pip" install -q -e ".[$extras]"; fi
    touch "$stamp"
  fi
}
