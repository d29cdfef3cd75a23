// Offline checks of the Windmill kit with Windmill's own parsers and schema;
// run by check.sh: node check.mjs <kit dir> <node_modules>. Prints one line
// per check and exits 1 on any failure.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [here, modules] = process.argv.slice(2).map((p) => path.resolve(p));
const require = createRequire(path.join(modules, "x.js"));
const ts = require("typescript");
const YAML = require("yaml");
const Ajv = require("ajv");

let passed = 0, failed = 0;
const ok = (what) => { passed++; console.log(`ok   ${what}`); };
const bad = (what, why) => { failed++; console.log(`FAIL ${what}: ${why}`); };

async function wasm(pkg) {
  const dir = path.join(modules, pkg);
  const mod = await import(path.join(dir, "windmill_parser_wasm.js"));
  await mod.default({ module_or_path: fs.readFileSync(path.join(dir, "windmill_parser_wasm_bg.wasm")) });
  return mod;
}
const tsParser = await wasm("windmill-parser-wasm-ts");
const pyParser = await wasm("windmill-parser-wasm-py");
const pyImports = await wasm("windmill-parser-wasm-py-imports");

// 1. TypeScript syntax.
function syntax(name, src) {
  const out = ts.transpileModule(src, {
    fileName: name, reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  });
  const d = (out.diagnostics || [])[0];
  if (!d) return ok(`${name}: TypeScript syntax`);
  const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : null;
  bad(name, `${at ? `${at.line + 1}:${at.character + 1} ` : ""}${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
}

// 2. Scripts through Windmill's parsers, as f/keybrake/<name>.
const RESOURCE_TYPES = ["keybrake"]; // the one resource type the kit ships
const scripts = {}; // windmill path -> {deno: params, py: params}
const files = fs.readdirSync(here).sort();
const kitPath = (f) => "f/keybrake/" + f.replace(/(\.deno)?\.ts$|\.py$/, "");
for (const f of files.filter((f) => f.endsWith(".deno.ts") || f.endsWith(".py"))) {
  const src = fs.readFileSync(path.join(here, f), "utf8");
  const lang = f.endsWith(".py") ? "py" : "deno";
  if (lang === "deno") syntax(f, src);
  const sig = JSON.parse(lang === "py" ? pyParser.parse_python(src) : tsParser.parse_deno(src));
  const imports = lang === "py" ? pyImports.parse_py_relative_imports(src, kitPath(f))
    : tsParser.parse_ts_relative_imports(src, kitPath(f));
  (scripts[kitPath(f)] ??= {})[lang] = sig.auto_kind === "lib" ? null : sig.args.map((a) => a.name);
  const resources = sig.args.flatMap((a) => {
    const t = a.typ || {};
    if (t.resource) return [`${a.name}: resource "${t.resource}"`];
    if (t.object && t.object.name) return [`${a.name}: resource "${t.object.name}"`];
    return [];
  }).filter((r) => !RESOURCE_TYPES.some((rt) => r.endsWith(`"${rt}"`)));
  if (resources.length) bad(f, `Windmill would make these parameters resource types: ${resources.join(", ")}`);
  else ok(`${f}: parameters (${sig.auto_kind === "lib" ? "library, no main" : sig.args.map((a) => a.name).join(", ")})`);
  const missing = imports.filter((p) => !files.some((g) => (g.endsWith(lang === "py" ? ".py" : ".deno.ts")) && kitPath(g) === p));
  if (missing.length) bad(f, `relative imports of no kit script: ${missing.join(", ")}`);
  else if (imports.length) ok(`${f}: relative imports ${imports.join(", ")} are kit scripts`);
}

// 3. Flows: the OpenFlow schema, then each step's inputs.
const openflow = JSON.parse(fs.readFileSync(path.join(here, "testdata", "openflow.json"), "utf8"));
const cliSource = fs.readFileSync(path.join(modules, "windmill-cli", "esm", "main.js"), "utf8");
const at = cliSource.indexOf("openflow_default = {");
if (at < 0 || !cliSource.slice(at, at + 200).includes(`version: "${openflow.info.version}"`)) {
  bad("testdata/openflow.json", `windmill-cli carries another OpenFlow version than ${openflow.info.version}`);
} else ok(`testdata/openflow.json is windmill-cli's OpenFlow spec ${openflow.info.version}`);
const ajv = new Ajv({ strict: false, allErrors: true, discriminator: true, validateFormats: false });
ajv.addSchema(openflow, "openflow");
const validate = ajv.getSchema("openflow#/components/schemas/OpenFlow");

for (const dir of files.filter((f) => f.endsWith("__flow"))) {
  const name = `${dir}/flow.yaml`;
  let flow;
  try {
    flow = YAML.parse(fs.readFileSync(path.join(here, name), "utf8"));
  } catch (e) {
    bad(name, e.message);
    continue;
  }
  if (validate(flow)) ok(`${name}: valid OpenFlow`);
  else bad(name, validate.errors.map((e) => `${e.instancePath} ${e.message}`).join("; "));
  const steps = [];
  const walk = (mods) => mods?.forEach((m) => { steps.push(m); walk(m.value?.modules); });
  walk(flow.value.modules);
  if (flow.value.failure_module) steps.push(flow.value.failure_module);
  const same = (a, b) => a.length === b.length && a.every((x) => b.includes(x));
  for (const m of steps) {
    const v = m.value;
    if (v.type === "rawscript") syntax(`${name}#${m.id} (inline ${v.language})`, v.content);
    if (v.type !== "script") continue;
    const inputs = Object.keys(v.input_transforms || {});
    const what = `${name}#${m.id} -> ${v.path}`;
    const s = scripts[v.path];
    if (!s?.deno || !s?.py) bad(what, "needs both a .deno.ts and a .py script with a main()");
    else if (!same(s.deno, inputs)) bad(what, `inputs [${inputs}] != .deno.ts main(${s.deno})`);
    else if (!same(s.py, inputs)) bad(what, `inputs [${inputs}] != .py main(${s.py})`);
    else ok(`${what}: inputs match main() of both sets`);
  }
  // The run label and key id of the error handler come from the flow, never
  // from WM_FLOW_JOB_ID (the iteration's id inside a parallel for-each).
  const fm = flow.value.failure_module?.value?.input_transforms || {};
  if (fm.run_label?.expr !== "results.issue_key.agent_run_label") {
    bad(`${name}#failure`, "run_label must be results.issue_key.agent_run_label");
  } else ok(`${name}#failure: revokes by results.issue_key.agent_run_label`);
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
