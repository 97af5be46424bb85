/** A JSON value reduced to its key sets and value types, recursively (an array by its first element). */
export type Shape = string | Shape[] | { [key: string]: Shape };

/** The shape of `value`: what a published example and our rendering of the same thing must share. */
export function shape(value: unknown): Shape {
  if (Array.isArray(value)) return value.length > 0 ? [shape(value[0])] : [];
  if (value !== null && typeof value === "object") {
    const object = value as Record<string, unknown>;
    return Object.fromEntries(Object.keys(object).sort().map((key) => [key, shape(object[key])]));
  }
  return value === null ? "null" : typeof value;
}

/** `record` without `keys`: for keys an example has, or lacks, for reasons of its own. */
export const without = (record: Record<string, unknown>, ...keys: string[]) =>
  Object.fromEntries(Object.entries(record).filter(([key]) => !keys.includes(key)));
