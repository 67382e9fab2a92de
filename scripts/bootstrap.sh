#!/usr/bin/env bash
# One-time set-up on a Debian 12 machine, as root: system packages and the project's virtualenv.
# Idempotent: a second run only checks. Used by scripts/run.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# debootstrap: the local Asterisk root; sip-tester: sipp, the SIP test peer; prometheus: promtool for
# the rule tests; chromium + chromium-driver: the pages' browser tests; fonts-wqy-microhei: Chinese in them.
packages=(debootstrap sip-tester ca-certificates prometheus chromium chromium-driver fonts-wqy-microhei)
python3 -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3-venv)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "bootstrap: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
# Reinstall only when the project's dependencies changed.
stamp=.venv/.hotline-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test]'
    touch "$stamp"
fi
