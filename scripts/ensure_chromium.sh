#!/bin/sh
# Called by `make test` before pytest: the browser tests (tests/test_serve_browser.py) drive Debian's
# chromium package. Installs it when missing and we are root (CI); otherwise does nothing, and those
# tests skip with the reason.
if command -v chromium >/dev/null 2>&1 || [ -n "$GANFORGE_CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the browser tests (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
        || echo "could not install chromium; the browser tests will skip"
else
    echo "no chromium and not root: the browser tests will skip (apt-get install chromium to run them)"
fi
exit 0
