// Runs the kit's Deno scripts under Node for the integration tests, the way
// a Windmill worker runs a Deno script: main() called with the job's inputs
// by parameter name, Deno.env reading the job's environment, "./x.ts"
// imports resolved to the kit script f/keybrake/x (x.deno.ts), "npm:pkg@v"
// to the package installed in the check cache. Only what the kit uses of
// Deno is provided (Deno.env.get).
//
//   node deno_steps.mjs build <kit dir> <node_modules> <out dir>
//   node deno_steps.mjs run <out dir> <script name> <inputs JSON>
// `run` prints "RESULT <json>", or "ERROR <status> <message>" and exits 1.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [mode, ...rest] = process.argv.slice(2);

if (mode === "build") {
  const [kit, modules, out] = rest.map((p) => path.resolve(p));
  const require = createRequire(path.join(modules, "x.js"));
  const ts = require("typescript");
  fs.mkdirSync(out, { recursive: true });
  const params = {};
  for (const f of fs.readdirSync(kit).filter((f) => f.endsWith(".deno.ts"))) {
    const name = f.slice(0, -".deno.ts".length);
    let src = fs.readFileSync(path.join(kit, f), "utf8");
    src = src.replace(/from "npm:([^"@]+)@[^"]*"/g, (_, pkg) => `from ${JSON.stringify(pathToFileURL(require.resolve(pkg)).href)}`);
    src = src.replace(/from "\.\/([A-Za-z0-9_]+)\.ts"/g, (_, dep) => `from "./${dep}.mjs"`);
    const sf = ts.createSourceFile(f, src, ts.ScriptTarget.ES2022, true);
    const main = sf.statements.find((s) => ts.isFunctionDeclaration(s) && s.name?.text === "main");
    if (main) params[name] = main.parameters.map((p) => p.name.getText(sf));
    const js = ts.transpileModule(src, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } });
    fs.writeFileSync(path.join(out, name + ".mjs"), js.outputText);
  }
  fs.writeFileSync(path.join(out, "params.json"), JSON.stringify(params));
} else if (mode === "run") {
  const [out, name, inputs] = rest;
  globalThis.Deno = { env: { get: (k) => process.env[k] } };
  const params = JSON.parse(fs.readFileSync(path.join(out, "params.json"), "utf8"))[name];
  const args = JSON.parse(inputs);
  const step = await import(pathToFileURL(path.resolve(out, name + ".mjs")).href);
  try {
    const result = await step.main(...params.map((p) => args[p]));
    console.log("\nRESULT " + JSON.stringify(result));
  } catch (err) {
    const status = err?.statusCode ?? err?.cause?.statusCode ?? err?.raw?.statusCode ?? "none";
    console.log(`\nERROR ${status} ${err?.message}`);
    process.exit(1);
  }
} else {
  console.error("usage: deno_steps.mjs build|run …");
  process.exit(2);
}
