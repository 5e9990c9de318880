// Validates an OpenAPI document against the OpenAPI 3.0 specification
// (swagger-parser: the document's schema and every $ref), then checks what
// the specification allows but this API promises: every success answer
// with a body has a schema, and every operation describes its errors with
// the error body of shared/API.md.
// Usage: node validate.mjs docs/openapi.json
import SwaggerParser from "@apidevtools/swagger-parser";
import { readFileSync } from "node:fs";

const file = process.argv[2];
const problems = [];
try {
  await SwaggerParser.validate(JSON.parse(readFileSync(file, "utf8")));
} catch (err) {
  console.error(`${file}: not valid OpenAPI: ${err.message}`);
  process.exit(1);
}

const doc = JSON.parse(readFileSync(file, "utf8"));
const resolve = (node) =>
  node && node.$ref ? node.$ref.split("/").slice(1).reduce((at, key) => at[key], doc) : node;
const errorSchema = "#/components/schemas/Error";
const noBody = new Set(["101", "202", "204"]);
for (const [path, ops] of Object.entries(doc.paths)) {
  for (const [method, op] of Object.entries(ops)) {
    const where = `${method.toUpperCase()} ${path}`;
    let errors = 0;
    for (const [code, ref] of Object.entries(op.responses)) {
      const response = resolve(ref);
      const schemas = Object.values(response.content ?? {}).map((c) => c.schema);
      if (code.startsWith("2") && !noBody.has(code) && !schemas.some(Boolean))
        problems.push(`${where}: ${code} has no schema`);
      if (/^[45]/.test(code) && schemas.some((s) => s && s.$ref === errorSchema)) errors++;
    }
    const operational = ["/healthz", "/readyz", "/metrics"].includes(path);
    if (!operational && errors === 0) problems.push(`${where}: no error response`);
  }
}
if (JSON.stringify(doc).includes('"type":"null"'))
  problems.push('"type": "null" is not OpenAPI 3.0 (use nullable)');
for (const p of problems) console.error(`${file}: ${p}`);
if (problems.length > 0) process.exit(1);
console.log(`${file}: valid OpenAPI ${doc.openapi}, ${Object.keys(doc.paths).length} paths`);
