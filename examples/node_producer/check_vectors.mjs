// Checks the JSON golden vectors and JSON Schemas of wire/ outside Python: every JSON job
// and result vector parses to the documented values, validates against the schema, and the
// signed vector verifies with HMAC-SHA256 as SPEC.md §8 describes; structurally invalid
// messages fail the schema. Usage: node check_vectors.mjs [path/to/wire]
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";
import { isInteger, isSafeNumber, parse } from "lossless-json";

const wire = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), "..", "..", "wire");
const load = (name) => JSON.parse(readFileSync(join(wire, name), "utf8"));
const exact = (text) =>
  parse(text, undefined, (n) => (isInteger(n) && !isSafeNumber(n) ? BigInt(n) : Number(n)));

// the vectors' tagged notation, for the values a JSON reader can meet
function untag(v) {
  if (Array.isArray(v)) return v.map(untag);
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0].startsWith("$")) {
      const [tag, x] = [keys[0], v[keys[0]]];
      if (tag === "$int") return BigInt(x);
      if (tag === "$float") return x === "nan" ? NaN : x === "inf" ? Infinity : -Infinity;
      throw new Error(`tag ${tag} cannot appear in a JSON message`);
    }
    return Object.fromEntries(keys.map((k) => [k, untag(v[k])]));
  }
  return v;
}

function same(a, b) {
  if (typeof a === "number" && typeof b === "number") return Object.is(a, b) || a === b;
  if (typeof a !== typeof b) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (a && typeof a === "object") {
    const ka = Object.keys(a), kb = Object.keys(b ?? {});
    return ka.length === kb.length && ka.every((k) => same(a[k], b[k]));
  }
  return a === b;
}

const ajv = new Ajv2020({ strict: false });
const schemas = { job: ajv.compile(load("schema/job.schema.json")), result: ajv.compile(load("schema/result.schema.json")) };
let passed = 0, failed = 0;
function check(name, ok, detail = "") {
  if (ok) passed++;
  else { failed++; console.log(`FAIL ${name} ${detail}`); }
}

for (const v of load("vectors/jobs.json").vectors.filter((v) => v.format === "json")) {
  const msg = exact(v.encoded);
  const expected = v.direction === "both" ? v.input : v.expected;
  check(`${v.name} schema`, schemas.job(JSON.parse(v.encoded)), JSON.stringify(schemas.job.errors));
  check(`${v.name} metadata`, msg.id === expected.id && msg.function === expected.function
        && (msg.queue ?? "default") === expected.queue && (msg.try ?? 1) === expected.try
        && msg.enqueued_ms === expected.enqueued_ms);
  check(`${v.name} args`, same(msg.args ?? [], untag(v.decoded.args)), JSON.stringify(v.decoded.args));
  check(`${v.name} kwargs`, same(msg.kwargs ?? {}, untag(v.decoded.kwargs)));
  if (v.signing_key) {
    const text = Buffer.from(v.encoded, "utf8");
    const signed = text.subarray(0, 1).toString() === "{" && text.subarray(-74, -66).toString() === ',"sig":"';
    const mac = createHmac("sha256", v.signing_key).update(text.subarray(1, -74)).digest("hex");
    check(`${v.name} signature`, signed && mac === text.subarray(-66, -2).toString());
  }
}
for (const v of load("vectors/results.json").vectors.filter((v) => v.format === "json")) {
  const msg = exact(v.encoded);
  const expected = v.direction === "both" ? v.input : v.expected;
  check(`${v.name} schema`, schemas.result(JSON.parse(v.encoded)), JSON.stringify(schemas.result.errors));
  check(`${v.name} outcome`, msg.outcome === expected.outcome && msg.id === expected.id
        && (msg.try ?? 1) === expected.try && msg.finished_ms === expected.finished_ms);
  if (msg.outcome === "success") check(`${v.name} value`, same(msg.value ?? null, untag(v.decoded.value)));
  else check(`${v.name} error record`, typeof msg.error.type === "string" && msg.error.type === expected.error.type
             && msg.error.message === expected.error.message);
}
const structural = new Set(["invalid_envelope", "unsupported_version", "format_refused"]);
for (const v of load("vectors/invalid.json").vectors) {
  if (!("encoded" in v) || !structural.has(v.reason)) continue;
  let doc;
  try { doc = JSON.parse(v.encoded); } catch { continue; }
  check(`invalid ${v.name} refused by schema`, !schemas[v.kind](doc));
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
