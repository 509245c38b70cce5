// Headless Chromium for the browser specs: Debian's /usr/bin/chromium driven by
// playwright-core (no browser download), screenshots into .artifacts/.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Where specs save screenshots for a person to look at (git-ignored). */
export const ARTIFACTS = fileURLToPath(new URL("../../.artifacts/", import.meta.url));

/** Launches Debian's Chromium, or fails with the command that installs it. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error("Chromium is missing: run `apt-get install -y chromium`");
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** Saves a screenshot of `page` as `.artifacts/<name>.png`. */
export async function saveScreenshot(page: Page, name: string): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}
