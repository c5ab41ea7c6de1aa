#!/usr/bin/env bash
# scripts/browser.sh
#
# Makes sure the browser tests (tests/web) have what they drive: Debian's
# chromium (CHROMIUM_PATH, default /usr/bin/chromium; Playwright launches it
# by its path and never downloads a browser) and a Chinese font (without
# one chromium draws Chinese as boxes in the screenshots). Installs the
# missing ones from Debian's packages when run as root with apt-get;
# otherwise says what to install and fails. Idempotent; never prompts.
# HULIAN_APT_UPDATED=1: the caller already ran apt-get update.
set -euo pipefail

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
missing=()
[[ -x "$chromium" ]] || missing+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-microhei)

if ((${#missing[@]})); then
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "browser.sh: the browser tests need ${missing[*]} (Debian packages); install them as root" >&2
        exit 1
    fi
    echo "browser.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    if [[ "${HULIAN_APT_UPDATED:-0}" != 1 ]]; then
        apt-get -o DPkg::Lock::Timeout=300 update -q >&2
    fi
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}" >&2
fi
"$chromium" --version 2>/dev/null | head -n 1
