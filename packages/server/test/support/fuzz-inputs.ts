import { Keypair, StrKey } from "@stellar/stellar-sdk";
import fc from "fast-check";

/**
 * Generators for the API fuzzer: values that follow a route's JSON schema, and the hostile values a
 * real client (or attacker) sends instead. Every generated value is JSON; raw bodies are in
 * fuzz-requests.ts.
 */

export type JsonSchema = {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
  example?: unknown;
  examples?: unknown[];
};

const base64url = (text: string) => Buffer.from(text).toString("base64url");
const key = () => Keypair.random().rawPublicKey();

/** StrKeys with valid checksums: the right kind, and the wrong version byte where a G… account is expected. */
export const strKeys = fc.constantFrom(
  Keypair.random().publicKey(),
  StrKey.encodeMed25519PublicKey(Buffer.concat([key(), Buffer.alloc(8, 7)])),
  StrKey.encodePreAuthTx(key()),
  StrKey.encodeSha256Hash(key()),
  StrKey.encodeContract(key()),
  Keypair.random().secret(),
  "GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN8",
);

/** Numbers in every notation a parser might accept, as text. */
const numberTexts = fc.constantFrom(
  "0x10", "0o17", "0b11", "1e3", "1E-7", "-0", "+1", " 1", "1 ", "1_000", "1,5", "１２", "٣", "Infinity", "NaN", "-1", "0",
  "1.00000001", "0.0000001", "922337203685.4775807", "922337203685.4775808", "9".repeat(40), "00001", ".5", "5.", "",
);

/** Dates that are well-formed text but impossible, out of range or ambiguous. */
const dateTexts = fc.constantFrom(
  "2026-02-30T00:00:00Z", "2026-12-31T23:59:60Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "99999-01-01T00:00:00Z",
  "2026-01-01", "2026-01-01T00:00:00", "2026-01-01T00:00:00+25:00", "2026-13-01T00:00:00Z", "-001000-01-01T00:00:00Z",
  "2026-01-01T00:00:00.1234567Z", "1970-01-01T00:00:00Z", "2026-01-01T24:00:00Z",
);

const texts = fc.oneof(
  fc.constantFrom("\u0000", "a\u0000b", "\ud800", "\udfff", "💸", "e\u0301", "\u202e", "🏳️‍🌈".repeat(20), "'; drop table payments; --", "%00",
    "../../etc/passwd", "<script>alert(1)</script>", "${7*7}", "null", "undefined", "true", "[]", "{}", " ", "\t\n", "x".repeat(100_000)),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
);

/** Cursors shaped like ours (base64url of `date|id`) carrying what a parser must refuse. */
const forgedCursors = fc.tuple(dateTexts, fc.constantFrom("pay_", "evt_", "we_", "del_", "unm_"), fc.string({ unit: "binary", maxLength: 30 })).map(
  ([date, prefix, tail]) => base64url(`${date}|${prefix}${tail}`),
);

/** Ids with a real prefix and a bad tail. */
const forgedIds = fc.tuple(fc.constantFrom("pay_", "evt_", "we_", "del_", "unm_", "rcv_", "mer_", "key_"), fc.oneof(fc.string({ unit: "binary", maxLength: 30 }), fc.stringMatching(/^[0-9A-Za-z]{21,23}$/))).map(
  ([prefix, tail]) => prefix + tail,
);

/** Structures no schema expects: very wide, very long (very deep ones are raw bodies: JSON.stringify would recurse). */
const shapes = fc.constantFrom<unknown>(
  Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i])),
  Array.from({ length: 50_000 }, () => "XLM"),
  Array.from({ length: 5_000 }, (_, i) => ({ code: `C${i}`, issuer: "G" })),
);

/** Any hostile JSON value. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  texts,
  numberTexts,
  dateTexts,
  strKeys,
  forgedIds,
  forgedCursors,
  shapes,
  fc.constantFrom<unknown>(null, true, false, 0, -0, -1, 1.5, 2 ** 53 + 1, 1e308, -1e308, [], {}, [null], { "": "" }),
  fc.double(),
  fc.integer(),
  fc.jsonValue({ maxDepth: 3 }),
);

/** Hostile text for a query string or a path segment. */
export const hostileText: fc.Arbitrary<string> = fc.oneof(texts, numberTexts, dateTexts, strKeys, forgedIds, forgedCursors);

/** How often, against 100, a value is hostile rather than what the schema asks for. */
export type Hostility = number;

/** A value that follows `schema` (resolving `$ref` through `resolve`), with hostile values mixed in at every level. */
export function fromSchema(schema: JsonSchema, resolve: (ref: string) => JsonSchema, hostility: Hostility, depth = 0): fc.Arbitrary<unknown> {
  const s = schema.$ref ? resolve(schema.$ref) : schema;
  const valid = validFromSchema(s, resolve, hostility, depth);
  return hostility === 0 ? valid : fc.oneof({ arbitrary: valid, weight: 100 - hostility }, { arbitrary: hostileValue, weight: hostility });
}

function validFromSchema(s: JsonSchema, resolve: (ref: string) => JsonSchema, hostility: Hostility, depth: number): fc.Arbitrary<unknown> {
  if (s.enum) return fc.constantFrom(...s.enum);
  if (s.const !== undefined) return fc.constant(s.const);
  const branches = s.oneOf ?? s.anyOf;
  if (branches) return fc.oneof(...branches.map((b) => fromSchema(b, resolve, hostility, depth + 1)));
  const type = [s.type ?? "object"].flat().find((t) => t !== "null") ?? "null";
  switch (type) {
    case "string":
      if (s.examples ?? s.example !== undefined) return fc.constantFrom(...(s.examples ?? [s.example]));
      return s.pattern ? fc.oneof(fc.stringMatching(new RegExp(s.pattern)), fc.string({ maxLength: s.maxLength ?? 40 })) : fc.string({ maxLength: Math.min(s.maxLength ?? 40, 200) });
    case "integer":
      return fc.integer({ min: s.minimum ?? -1_000, max: s.maximum ?? 1_000_000 });
    case "number":
      return fc.double({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6, noNaN: true });
    case "boolean":
      return fc.boolean();
    case "array":
      return fc.array(s.items ? fromSchema(s.items, resolve, hostility, depth + 1) : fc.jsonValue(), { maxLength: Math.min(s.maxItems ?? 5, 5) });
    case "object": {
      if (depth > 4) return fc.constant({});
      const properties = Object.entries(s.properties ?? {});
      const required = new Set(s.required ?? []);
      // Well-formed requests carry few optional fields, so that most of them are valid as a whole.
      const optionalFreq = hostility === 0 ? 3 : 1;
      const known = fc
        .tuple(...properties.map(([name, p]) => {
          const value = fromSchema(p, resolve, hostility, depth + 1).map((v) => [name, v] as const);
          return required.has(name) ? value : fc.option(value, { freq: optionalFreq });
        }))
        .map((entries) => Object.fromEntries(entries.filter((e) => e !== null)));
      if (hostility === 0) return known;
      const extra = fc.dictionary(fc.string({ maxLength: 10 }), hostileValue, { maxKeys: 2 });
      return fc.tuple(known, fc.option(extra, { freq: 5 })).map(([k, e]) => ({ ...(e ?? {}), ...k }));
    }
    default:
      return fc.constant(null);
  }
}
