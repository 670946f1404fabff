#!/usr/bin/env bash
# Install the headless browser the trace viewer's tests and benchmark drive: Debian's `chromium`.
# Idempotent: does nothing when /usr/bin/chromium (or $UNBOUNDED_CHROMIUM) is already there.
# As root with apt-get it installs the package; otherwise it prints what to install and exits 0,
# so the browser tests skip with a reason instead of failing the setup.
set -euo pipefail

BROWSER="${UNBOUNDED_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$BROWSER" ]; then
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "unbounded: installing chromium for the trace viewer's browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1 || true
        if ! apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1; then
            echo "unbounded: could not install chromium with apt-get; the viewer's browser tests will be skipped" >&2
            exit 0
        fi
    fi
    if [ -x "$BROWSER" ]; then
        echo "unbounded: chromium installed at $BROWSER" >&2
    else
        echo "unbounded: chromium installed but $BROWSER is missing; set UNBOUNDED_CHROMIUM to its path" >&2
    fi
    exit 0
fi

cat >&2 <<EOF
unbounded: the trace viewer's browser tests need a Chromium at $BROWSER.
  Debian/Ubuntu:  sudo apt-get install chromium
  elsewhere:      install Chromium and set UNBOUNDED_CHROMIUM=/path/to/chromium
The tests that need it are skipped until then.
EOF
exit 0
