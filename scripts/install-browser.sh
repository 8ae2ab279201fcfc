#!/usr/bin/env bash
# Headless Chromium for the dashboard's browser test: Debian's `chromium` package at
# /usr/bin/chromium (Playwright drives it; its own browser download is not used). Idempotent:
# does nothing when the binary is there. Needs root (or sudo) and the Debian package registry.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    echo "install-browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no apt-get here; install Chromium yourself (the browser test is skipped without it)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-browser: installing chromium needs root (or sudo)" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium
echo "install-browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed"
