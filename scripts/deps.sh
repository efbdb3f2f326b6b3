#!/usr/bin/env bash
# Installs the Debian 12 packages qtworker needs (as root, or through sudo).
set -euo pipefail
pkgs=(build-essential meson ninja-build pkg-config qt6-base-dev libgtest-dev
      xvfb xauth binutils doxygen cmake valgrind "$@")
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
