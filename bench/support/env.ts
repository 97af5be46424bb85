const isIntegerOfAtLeast = (value: string, min: number) => /^\d+$/.test(value) && Number(value) >= min;

/**
 * A benchmark's numeric setting from the environment. A mistyped value stops the benchmark with the
 * variable's name, rather than running it with NaN and printing figures that mean nothing.
 */
export function benchInt(name: string, fallback: number, { min = 1 } = {}): number {
  const value = process.env[name]?.trim();
  if (value === undefined || value === "") return fallback;
  if (!isIntegerOfAtLeast(value, min)) throw new Error(`${name} must be an integer of at least ${min} (got "${value}")`);
  return Number(value);
}

/** A comma-separated list of such integers, e.g. BENCH_SCALE_PROCESSES=1,2,4. */
export function benchInts(name: string, fallback: number[], { min = 1 } = {}): number[] {
  const value = process.env[name]?.trim();
  if (value === undefined || value === "") return fallback;
  const items = value.split(",").map((item) => item.trim());
  if (!items.every((item) => isIntegerOfAtLeast(item, min))) throw new Error(`${name} must be a comma-separated list of integers of at least ${min} (got "${value}")`);
  return items.map(Number);
}
