#!/usr/bin/env bash
# Syntax check of the Windmill examples, for CI. Needs python3, node >= 18 and
# the npm registry; no Deno, no stripe package, no network beyond npm.
#  1. python3 -m py_compile on every .py (bytecode goes to a temp dir).
#  2. typescript@5 + yaml@2 into a temp dir; every .ts (and the inline script
#     in flow.yaml) through ts.transpileModule: any syntactic diagnostic fails.
#     Only syntax is checked, so `npm:` imports and `Deno` globals are fine.
#  3. flow.yaml parses, and each f/keybrake/<name> step exists as both
#     <name>.deno.ts and <name>.py with main() parameters equal to the step's
#     input_transforms, so either language set can back the flow.
# Exits non-zero on the first failing stage.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== python: py_compile"
for f in "$here"/*.py; do
  PYTHONPYCACHEPREFIX="$tmp/pycache" python3 -m py_compile "$f"
  echo "ok   $(basename "$f")"
done
python3 - "$here" >"$tmp/py_params.json" <<'EOF'
import ast, json, pathlib, sys
out = {}
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.py")):
    for node in ast.parse(p.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            out[p.stem] = [a.arg for a in node.args.args]
print(json.dumps(out))
EOF

echo "== typescript: installing typescript@5 yaml@2 into a temp dir"
npm install --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
  --prefix "$tmp" typescript@5 yaml@2 >/dev/null

node - "$here" "$tmp" <<'EOF'
const fs = require("fs");
const path = require("path");
const [here, tmp] = process.argv.slice(2);
const ts = require(path.join(tmp, "node_modules", "typescript"));
const YAML = require(path.join(tmp, "node_modules", "yaml"));
console.log(`   typescript ${ts.version}`);

let passed = 0, failed = 0;
const ok = (what) => { passed++; console.log(`ok   ${what}`); };
const bad = (what, why) => { failed++; console.log(`FAIL ${what}: ${why}`); };

function syntax(name, src) {
  const out = ts.transpileModule(src, {
    fileName: name,
    reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  });
  const diags = out.diagnostics || [];
  if (diags.length === 0) return ok(name);
  for (const d of diags) {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : null;
    bad(name, at ? `${at.line + 1}:${at.character + 1} ${msg}` : msg);
  }
}

function tsMainParams(src) {
  const sf = ts.createSourceFile("x.ts", src, ts.ScriptTarget.ES2022, true);
  for (const s of sf.statements) {
    if (ts.isFunctionDeclaration(s) && s.name && s.name.text === "main") {
      return s.parameters.map((p) => p.name.getText(sf));
    }
  }
  return null;
}

const tsFiles = fs.readdirSync(here).filter((f) => f.endsWith(".ts")).sort();
for (const f of tsFiles) syntax(f, fs.readFileSync(path.join(here, f), "utf8"));

console.log("== flow.yaml");
let flow;
try {
  flow = YAML.parse(fs.readFileSync(path.join(here, "flow.yaml"), "utf8"));
  ok("flow.yaml parses");
} catch (e) {
  bad("flow.yaml", e.message);
}
if (flow) {
  const pyParams = JSON.parse(fs.readFileSync(path.join(tmp, "py_params.json"), "utf8"));
  const steps = [];
  const walk = (mods) => {
    for (const m of mods || []) {
      steps.push(m);
      if (m.value && m.value.modules) walk(m.value.modules);
    }
  };
  walk(flow.value.modules);
  if (flow.value.failure_module) steps.push(flow.value.failure_module);
  const same = (a, b) => a.length === b.length && a.every((x) => b.includes(x));
  for (const m of steps) {
    const v = m.value;
    if (v.type === "rawscript") syntax(`flow.yaml#${m.id} (inline ${v.language})`, v.content);
    if (v.type !== "script") continue;
    const name = path.basename(v.path);
    const inputs = Object.keys(v.input_transforms || {});
    const tsFile = path.join(here, `${name}.deno.ts`);
    const tsp = fs.existsSync(tsFile) ? tsMainParams(fs.readFileSync(tsFile, "utf8")) : null;
    const pyp = pyParams[name] || null;
    const what = `flow.yaml#${m.id} -> ${v.path}`;
    if (!tsp) bad(what, `no main() in ${name}.deno.ts`);
    else if (!pyp) bad(what, `no main() in ${name}.py`);
    else if (!same(tsp, inputs)) bad(what, `inputs [${inputs}] != ${name}.deno.ts main(${tsp})`);
    else if (!same(pyp, inputs)) bad(what, `inputs [${inputs}] != ${name}.py main(${pyp})`);
    else ok(`${what} (inputs match .deno.ts and .py)`);
  }
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
EOF
