#!/usr/bin/env bash
# Install Debian's chromium and chromium-driver for the browser test (tests/test_board.py), where missing.
# Idempotent: does nothing when both are there. Needs root (CI runs as root) and apt.
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  echo "chromium and chromedriver already installed"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install_browser.sh: chromium/chromedriver missing and not root; run: sudo $0" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium chromium-driver
/usr/bin/chromium --version
/usr/bin/chromedriver --version
