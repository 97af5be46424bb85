import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { PNG } from "pngjs";

/**
 * Browser tests drive Debian's Chromium (`.ci/run` installs it) through playwright-core: headless, no
 * sandbox (tests may run as root), and no network beyond the loopback servers they open.
 */

// jsQR is CommonJS whose types declare an ES default export: load it as what it is.
const require = createRequire(import.meta.url);
const jsQR = require("jsqr") as typeof import("jsqr").default;

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../../../../test-artifacts/screenshots/", import.meta.url));

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** The two widths every page is checked at. */
export const VIEWPORTS = { desktop: { width: 1280, height: 900 }, phone: { width: 360, height: 740 } } as const;

/** Saves a full-page screenshot under test-artifacts/screenshots/ (not committed) and returns it. */
export async function screenshot(page: Page, name: string): Promise<Buffer> {
  await mkdir(ARTIFACTS, { recursive: true });
  const png = await page.screenshot({ fullPage: true });
  await writeFile(path.join(ARTIFACTS, `${name}.png`), png);
  return png;
}

/** The text of the QR code in a PNG, or undefined when none is found. */
export function decodeQr(png: Buffer): string | undefined {
  const image = PNG.sync.read(png);
  return jsQR(new Uint8ClampedArray(image.data.buffer, image.data.byteOffset, image.data.length), image.width, image.height)?.data;
}

const axeSource = readFile(require.resolve("axe-core/axe.min.js"), "utf8");

/** axe-core's serious and critical violations on the page, as "rule: target" lines. */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  await page.addScriptTag({ content: await axeSource });
  return axeProblems(page);
}

/**
 * `accessibilityProblems` for pages served with a strict Content-Security-Policy (`sendPage`), which
 * blocks the inline script tag it adds: axe is evaluated through the DevTools protocol instead, which
 * the policy does not govern, so the page is checked under its real policy.
 */
export async function accessibilityProblemsUnderCsp(page: Page): Promise<string[]> {
  await page.evaluate(await axeSource);
  return axeProblems(page);
}

async function axeProblems(page: Page): Promise<string[]> {
  const results = await page.evaluate(async () => {
    type Violation = { id: string; impact: string | null; nodes: Array<{ target: unknown }> };
    const axe = (globalThis as unknown as { axe: { run(options: object): Promise<{ violations: Violation[] }> } }).axe;
    // Details of violations only (the same violations, found faster): passes are never read.
    return (await axe.run({ resultTypes: ["violations"] })).violations;
  });
  return results
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .flatMap((v) => v.nodes.map((n) => `${v.id}: ${JSON.stringify(n.target)}`));
}
