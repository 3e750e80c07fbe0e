#!/usr/bin/env bash
# npm-ci.sh DIR: installs DIR's locked npm packages, skipping `npm ci` when package-lock.json
# has not changed since the last install (the stamp lives in node_modules).
set -euo pipefail
cd "$1"
stamp=node_modules/.opg-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
