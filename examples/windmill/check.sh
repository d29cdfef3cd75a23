#!/usr/bin/env bash
# Checks the Windmill kit with Windmill's own tools, offline. Needs python3,
# node >= 18 and the npm registry on the first run (the packages are cached in
# .cache/windmill-check/ at the repository root, gitignored; KEYBRAKE_NPM_CACHE
# moves it). Run by `make test` (scripts/test.sh) and `make check-examples`.
#  1. python3 -m py_compile on every .py (bytecode goes to a temp dir).
#  2. check.mjs: TypeScript syntax (typescript@5) of every .ts and inline
#     script; both flows against Windmill's OpenFlow schema
#     (testdata/openflow.json, checked equal to the one windmill-cli carries)
#     with ajv; Windmill's own script parsers (the wasm parsers windmill-cli
#     uses to generate a script's schema and its relative-import graph): no
#     parameter becomes a resource type other than `keybrake`, every relative
#     import is a kit script, every step's inputs equal its script's main()
#     parameters in both language sets.
#  3. For each language set, a wmill repo made by `wmill init --use-default`
#     (nonDottedPaths) with the kit copied in as f/keybrake/, then
#     `wmill lint --fail-on-warn`: the flow folders' names and every flow
#     file as `wmill sync push` would take them.
# `wmill generate-metadata` needs a logged-in Windmill server (it starts with
# GET /api/users/whoami and resolves locks there), so it is not run here; the
# schemas it would write come from the same parsers step 2 runs.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${KEYBRAKE_NPM_CACHE:-$root/.cache/windmill-check}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Pinned: the OpenFlow schema in testdata/ is the one windmill-cli@WMILL carries.
WMILL=1.819.0
# stripe@17: what charge.deno.ts imports (npm:stripe@17), for the
# integration tests that run the Deno scripts under Node (testdata/deno_steps.mjs).
pkgs="windmill-cli@$WMILL typescript@5.9.3 yaml@2.8.1 ajv@8.17.1 stripe@17.7.0"

# --install-only: just make the cache (the integration tests' first step).
if [[ "$(cat "$cache/.installed" 2>/dev/null)" != "$pkgs" ]]; then
  echo "== npm: installing $pkgs into $cache"
  rm -rf "$cache" && mkdir -p "$cache"
  # --ignore-scripts: nothing here needs esbuild's postinstall binary check.
  npm install --no-save --no-audit --no-fund --no-package-lock --ignore-scripts --loglevel=error \
    --prefix "$cache" $pkgs >/dev/null
  echo "$pkgs" >"$cache/.installed"
fi
if [[ "${1:-}" == "--install-only" ]]; then
  echo "$cache/node_modules"
  exit 0
fi

echo "== python: py_compile"
for f in "$here"/*.py; do
  PYTHONPYCACHEPREFIX="$tmp/pycache" python3 -m py_compile "$f"
  echo "ok   $(basename "$f")"
done

echo "== windmill parsers, OpenFlow schema, TypeScript syntax"
node "$here/check.mjs" "$here" "$cache/node_modules"

wmill() {
  WMILL_CONFIG_DIR="$tmp/wmill-config" HOME="$tmp/home" node "$cache/node_modules/windmill-cli/esm/main.js" "$@"
}
mkdir -p "$tmp/home"
for set in deno py; do
  repo="$tmp/repo-$set"
  mkdir -p "$repo" && (cd "$repo" && wmill init --use-default --no-bind-profile >/dev/null 2>&1)
  grep -q '^nonDottedPaths: true' "$repo/wmill.yaml" || { echo "FAIL wmill init no longer sets nonDottedPaths: true"; exit 1; }
  mkdir -p "$repo/f/keybrake"
  if [[ $set == deno ]]; then cp "$here"/*.deno.ts "$repo/f/keybrake/"; else cp "$here"/*.py "$repo/f/keybrake/"; fi
  cp -r "$here"/*__flow "$repo/f/keybrake/"
  cp "$here/keybrake.resource-type.yaml" "$repo/"
  if out="$(cd "$repo" && wmill lint --fail-on-warn 2>&1)"; then
    echo "ok   wmill lint ($set set): $(grep -o '[0-9]* file(s) validated[^)]*' <<<"$out" | sed 's/\x1b\[[0-9;]*m//g')"
  else
    echo "FAIL wmill lint ($set set)"; sed 's/\x1b\[[0-9;]*m//g' <<<"$out"; exit 1
  fi
done
echo "windmill kit: all checks passed"
