#!/usr/bin/env bash
# Fails when the committed console API client (web/openapi.json, web/src/api/generated/) no longer
# matches what the backend's OpenAPI document generates. Fix: `make api-client`, then commit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

stale() {
  echo "The console's generated API client is stale: $1"
  echo "Run \`make api-client\` and commit web/openapi.json and web/src/api/generated/."
  exit 1
}

$BIN/selfmart openapi >"$tmp/openapi.json"
if ! diff -q web/openapi.json "$tmp/openapi.json" >/dev/null 2>&1; then
  diff -u web/openapi.json "$tmp/openapi.json" | head -40 || true
  stale "web/openapi.json differs from \`selfmart openapi\`."
fi

(cd web && SELFMART_OPENAPI="$tmp/openapi.json" SELFMART_API_OUT="$tmp/generated" \
  npx --no-install openapi-ts >"$tmp/gen.log" 2>&1) || { cat "$tmp/gen.log"; echo "openapi-ts failed"; exit 1; }
if ! diff -r -q web/src/api/generated "$tmp/generated" >/dev/null; then
  diff -r -u web/src/api/generated "$tmp/generated" | head -40 || true
  stale "web/src/api/generated/ differs from what openapi-ts produces."
fi
echo "api client up to date"
