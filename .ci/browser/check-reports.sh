#!/usr/bin/env bash
# Browser test of the cbflow HTML reports: loads every sub-<label>.html and group.html of
# REPORT_DIR in headless Chromium (Debian's /usr/bin/chromium), fails on console errors, broken
# images, network requests and external resources, and saves screenshots to ARTEFACT_DIR.
# Called by .ci/run after `cbflow demo`.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 REPORT_DIR ARTEFACT_DIR" >&2
    exit 2
fi
report_dir=$1
artefact_dir=$2

if [ ! -x /usr/bin/chromium ]; then
    echo "/usr/bin/chromium is missing: apt-get install -y --no-install-recommends chromium" >&2
    exit 1
fi
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
    echo "node and npm are needed (Node 20)" >&2
    exit 1
fi
if [ ! -d "$report_dir" ]; then
    echo "$report_dir: no such directory" >&2
    exit 1
fi

here=$(cd "$(dirname "$0")" && pwd)
# playwright-core at the version of package-lock.json; it drives the system Chromium and
# downloads no browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
mkdir -p "$artefact_dir"
node "$here/check-reports.js" "$report_dir" "$artefact_dir"
