import { Lumenpay, LumenpayError, type LumenpayOptions } from "../../src/index.js";
import { buildTestApp, seedMerchant, type TestApp } from "../../../server/test/support/app.js";

export interface RunningApi {
  test: TestApp;
  /** Where the real server listens, on 127.0.0.1. */
  url: string;
  /** A new merchant and its API key, so each test sees only its own rows. */
  merchant(): Promise<{ id: string; apiKey: string }>;
  close(): Promise<void>;
}

/** The whole server over its own database, listening on a free port. */
export async function startApi(options: Parameters<typeof buildTestApp>[0] = {}): Promise<RunningApi> {
  const test = await buildTestApp(options);
  const url = await test.app.listen({ host: "127.0.0.1", port: 0 });
  return {
    test,
    url,
    async merchant() {
      const { merchant, apiKey } = await seedMerchant(test);
      return { id: merchant.id, apiKey };
    },
    close: () => test.close(),
  };
}

/** A client whose waits between retries are recorded in `delays` and not waited out. */
export function recordingClient(options: LumenpayOptions): { lumenpay: Lumenpay; delays: number[] } {
  const delays: number[] = [];
  const lumenpay = new Lumenpay({
    ...options,
    sleep: async (ms) => {
      delays.push(ms);
    },
  });
  return { lumenpay, delays };
}

/** Every item of an async iterable, in order. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** The `LumenpayError` a call rejects with, so a test can look at all its fields; throws if it resolves or rejects otherwise. */
export async function failure(call: Promise<unknown>): Promise<LumenpayError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof LumenpayError)) throw new Error(`expected a LumenpayError, got ${String(error)}`);
  return error;
}
