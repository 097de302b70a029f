/**
 * The JSON Schema subset `response_format: {"type": "json_schema"}` enforces, compiled to a small
 * tree the backend's token mask walks (gpu-backend/engine/json-schema-grammar.ts). Shared: the edge
 * compiles too, so a schema we cannot enforce is a 400 before anything is forwarded.
 *
 * Enforced: type (one or a list), properties, required, additionalProperties (false, true or a
 * schema), items, minItems, maxItems, minimum/maximum/exclusiveMinimum/exclusiveMaximum of
 * integers, enum, const, anyOf (and oneOf, enforced as anyOf), $ref to
 * #/$defs/... or #/definitions/... (recursion included) or #. Annotations are ignored: title,
 * description, default, examples, format, $schema, $id, $comment, deprecated, readOnly, writeOnly.
 * Every other keyword (pattern, minLength, minimum, allOf, ...) is refused rather than ignored.
 */

export type SchemaNode =
  | { kind: "any" }
  | {
      kind: "object";
      props: Map<string, SchemaNode>;
      required: Set<string>;
      /** The schema of keys not in props; null: none allowed. */
      additional: SchemaNode | null;
    }
  | { kind: "array"; items: SchemaNode; min: number; max: number }
  | { kind: "string" }
  /** lo/hi: bounds of an integer (inclusive; null: none). */
  | { kind: "number"; integer: boolean; lo: bigint | null; hi: bigint | null }
  /** One of these JSON texts exactly (enum, const, booleans, null). */
  | { kind: "literal"; texts: string[] }
  | { kind: "union"; options: SchemaNode[] }
  /** A $ref, resolved once its target is compiled (targets may refer back to themselves). */
  | { kind: "ref"; node: SchemaNode | null };

export class SchemaError extends Error {}

const ANNOTATIONS = new Set([
  "title",
  "description",
  "default",
  "examples",
  "format",
  "$schema",
  "$id",
  "$comment",
  "deprecated",
  "readOnly",
  "writeOnly",
  "$defs",
  "definitions",
]);
const ENFORCED = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "minItems",
  "maxItems",
  "enum",
  "const",
  "anyOf",
  "oneOf",
  "$ref",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
]);
const BOUNDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] as const;
const TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);
/** Nodes one schema may compile to (a bound on the work a request can ask of the mask). */
const MAX_NODES = 2000;
const MAX_ENUM = 1000;

type Json = Record<string, unknown>;

export function isJsonObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function count(v: unknown, what: string, at: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0)
    throw new SchemaError(`${at}: '${what}' must be a non-negative integer`);
  return v;
}

/** An integer schema's bounds as inclusive integers (exclusive ones moved inwards). */
function integerBounds(s: Json, at: string): { lo: bigint | null; hi: bigint | null } {
  const num = (k: (typeof BOUNDS)[number]): number | null => {
    const v = s[k];
    if (v === undefined) return null;
    if (typeof v !== "number" || !Number.isFinite(v)) throw new SchemaError(`${at}: '${k}' must be a number`);
    return v;
  };
  const big = (v: number) => BigInt(v); // (whole numbers only: callers round first)
  let lo: bigint | null = null;
  let hi: bigint | null = null;
  const min = num("minimum");
  const xmin = num("exclusiveMinimum");
  const max = num("maximum");
  const xmax = num("exclusiveMaximum");
  if (min !== null) lo = big(Math.ceil(min));
  if (xmin !== null) lo = maxOf(lo, big(Math.floor(xmin) + 1));
  if (max !== null) hi = big(Math.floor(max));
  if (xmax !== null) hi = minOf(hi, big(Math.ceil(xmax) - 1));
  if (lo !== null && hi !== null && lo > hi) throw new SchemaError(`${at}: no integer is within its bounds`);
  return { lo, hi };
}

const maxOf = (a: bigint | null, b: bigint) => (a === null || b > a ? b : a);
const minOf = (a: bigint | null, b: bigint) => (a === null || b < a ? b : a);

/**
 * Compiled schemas by schema object: a request's schema is checked where it is parsed (edge and
 * backend) and used again for its mask, without compiling it each time.
 */
const compiled = new WeakMap<object, SchemaNode>();

export function compileJsonSchema(root: unknown): SchemaNode {
  if (!isJsonObject(root)) throw new SchemaError("the schema must be a JSON object");
  let node = compiled.get(root);
  if (!node) {
    node = compileFresh(root);
    compiled.set(root, node);
  }
  return node;
}

function compileFresh(root: Json): SchemaNode {
  const refs = new Map<string, SchemaNode & { kind: "ref" }>();
  let nodes = 0;

  const resolve = (ref: unknown, at: string): SchemaNode => {
    if (typeof ref !== "string") throw new SchemaError(`${at}: '$ref' must be a string`);
    let existing = refs.get(ref);
    if (existing) return existing;
    let target: unknown;
    let where = ref;
    if (ref === "#") target = root;
    else {
      const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
      if (!m)
        throw new SchemaError(`${at}: only '$ref' to "#", "#/$defs/..." or "#/definitions/..." is supported`);
      const defs = root[m[1]];
      target = isJsonObject(defs) ? defs[m[2]] : undefined;
      where = `${m[1]}.${m[2]}`;
      if (target === undefined) throw new SchemaError(`${at}: '$ref' ${ref} does not exist`);
    }
    existing = { kind: "ref", node: null };
    refs.set(ref, existing);
    existing.node = compile(target, where);
    return existing;
  };

  const compile = (s: unknown, at: string): SchemaNode => {
    if (++nodes > MAX_NODES) throw new SchemaError(`the schema is too large (more than ${MAX_NODES} parts)`);
    if (s === true) return { kind: "any" };
    if (!isJsonObject(s)) throw new SchemaError(`${at}: a schema must be an object`);
    for (const k of Object.keys(s)) {
      if (!ENFORCED.has(k) && !ANNOTATIONS.has(k)) throw new SchemaError(`${at}: '${k}' is not supported`);
    }
    if (s.$ref !== undefined) {
      const others = Object.keys(s).filter((k) => ENFORCED.has(k) && k !== "$ref");
      if (others.length > 0) throw new SchemaError(`${at}: '$ref' cannot be combined with '${others[0]}'`);
      return resolve(s.$ref, at);
    }
    for (const key of ["anyOf", "oneOf"] as const) {
      if (s[key] === undefined) continue;
      const list = s[key];
      if (!Array.isArray(list) || list.length === 0)
        throw new SchemaError(`${at}: '${key}' must be a non-empty list`);
      return { kind: "union", options: list.map((o, i) => compile(o, `${at}.${key}[${i}]`)) };
    }
    if (s.const !== undefined) return { kind: "literal", texts: [JSON.stringify(s.const)] };
    if (s.enum !== undefined) {
      if (!Array.isArray(s.enum) || s.enum.length === 0)
        throw new SchemaError(`${at}: 'enum' must be a non-empty list`);
      if (s.enum.length > MAX_ENUM) throw new SchemaError(`${at}: 'enum' has more than ${MAX_ENUM} values`);
      return { kind: "literal", texts: [...new Set(s.enum.map((v) => JSON.stringify(v)))] };
    }
    let types: string[];
    if (s.type === undefined) {
      if (s.properties !== undefined || s.required !== undefined || s.additionalProperties !== undefined)
        types = ["object"];
      else if (s.items !== undefined || s.minItems !== undefined || s.maxItems !== undefined)
        types = ["array"];
      else return { kind: "any" };
    } else types = Array.isArray(s.type) ? s.type.map(String) : [String(s.type)];
    if (types.length === 0) throw new SchemaError(`${at}: 'type' must not be empty`);
    const bound = BOUNDS.find((k) => s[k] !== undefined);
    if (bound && !types.includes("integer"))
      throw new SchemaError(`${at}: '${bound}' is supported on integers only`);
    const options = types.map((t): SchemaNode => {
      if (!TYPES.has(t)) throw new SchemaError(`${at}: unknown type '${t}'`);
      if (t === "string") return { kind: "string" };
      if (t === "integer") return { kind: "number", integer: true, ...integerBounds(s, at) };
      if (t === "number") {
        const bound = BOUNDS.find((k) => s[k] !== undefined);
        if (bound) throw new SchemaError(`${at}: '${bound}' is supported on integers only`);
        return { kind: "number", integer: false, lo: null, hi: null };
      }
      if (t === "boolean") return { kind: "literal", texts: ["true", "false"] };
      if (t === "null") return { kind: "literal", texts: ["null"] };
      if (t === "array") return compileArray(s, at);
      return compileObject(s, at);
    });
    return options.length === 1 ? options[0] : { kind: "union", options };
  };

  const compileArray = (s: Json, at: string): SchemaNode => {
    const items = s.items === undefined ? ({ kind: "any" } as const) : compile(s.items, `${at}.items`);
    const min = s.minItems === undefined ? 0 : count(s.minItems, "minItems", at);
    const max = s.maxItems === undefined ? Number.POSITIVE_INFINITY : count(s.maxItems, "maxItems", at);
    if (min > max) throw new SchemaError(`${at}: 'minItems' is above 'maxItems'`);
    return { kind: "array", items, min, max };
  };

  const compileObject = (s: Json, at: string): SchemaNode => {
    const props = new Map<string, SchemaNode>();
    if (s.properties !== undefined) {
      if (!isJsonObject(s.properties)) throw new SchemaError(`${at}: 'properties' must be an object`);
      for (const [k, v] of Object.entries(s.properties)) props.set(k, compile(v, `${at}.properties.${k}`));
    }
    const extra = s.additionalProperties;
    const additional =
      extra === undefined || extra === true
        ? ({ kind: "any" } as const)
        : extra === false
          ? null
          : compile(extra, `${at}.additionalProperties`);
    const required = new Set<string>();
    if (s.required !== undefined) {
      if (!Array.isArray(s.required) || s.required.some((r) => typeof r !== "string"))
        throw new SchemaError(`${at}: 'required' must be a list of property names`);
      for (const r of s.required as string[]) {
        if (!props.has(r) && additional === null)
          throw new SchemaError(`${at}: required property '${r}' is not allowed by 'properties'`);
        required.add(r);
      }
    }
    return { kind: "object", props, required, additional };
  };

  const node = compile(root, "schema");
  let top: SchemaNode = node;
  while (top.kind === "ref" && top.node) top = top.node;
  if (top.kind !== "object") throw new SchemaError("the schema's root must be an object ('type': 'object')");
  return node;
}
