// What the sample editor's browser specs share: a Chromium and a real `opstream
// serve` on a temp SQLite file, pages opened per user, and the CodeMirror page's
// text and typing.
import { strict as assert } from "node:assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { launchChromium, saveScreenshot } from "./browser.js";
import { spawnServer, type ServerProcess } from "./process.js";

/** Upper bound for each wait in the sample specs; the provider's reconnect backoff tops out at 2.5 s. */
export const WAIT_MS = 15_000;

/** A Chromium, a server on its own SQLite file, and the pages opened on them, by user name. */
export class SampleFixture {
  readonly pages = new Map<string, Page>();
  /** Uncaught page errors (and console errors, where a spec asks for them), prefixed with the user. */
  readonly pageErrors: string[] = [];
  browser: Browser | undefined;
  server: ServerProcess | undefined;
  dir: string | undefined;
  storage = "";

  /** `label` names the temp folder and file, and the screenshots `stop` saves. */
  constructor(private readonly label: string) {}

  async start(): Promise<void> {
    this.browser = await launchChromium();
    this.dir = await mkdtemp(join(tmpdir(), `opstream-${this.label}-`));
    this.storage = join(this.dir, `${this.label}.sqlite`);
    this.server = await spawnServer({ storage: this.storage });
  }

  /** Stops the server with SIGTERM, runs `whileDown`, then starts it again on the same port and file. */
  async restartServer(whileDown?: () => Promise<void>): Promise<void> {
    assert.ok(this.server, "server must be running");
    const port = this.server.port;
    await this.server.stop("SIGTERM");
    await whileDown?.();
    this.server = await spawnServer({ storage: this.storage, port });
  }

  /**
   * Opens the sample page on `docName` as `name`, in its own browser context (no
   * shared storage or BroadcastChannel). `consoleErrors` also records the page's
   * console errors (Chromium logs every failed request there).
   */
  async open(
    name: string,
    docName: string,
    options: { viewport?: { width: number; height: number }; consoleErrors?: boolean } = {},
  ): Promise<Page> {
    assert.ok(this.browser && this.server, "browser and server must be running");
    const context = await this.browser.newContext({
      viewport: options.viewport ?? { width: 1100, height: 640 },
    });
    const opened = await context.newPage();
    opened.on("pageerror", (error) => this.pageErrors.push(`${name}: ${error.message}`));
    if (options.consoleErrors) {
      opened.on("console", (message) => {
        if (message.type() === "error") this.pageErrors.push(`${name} console: ${message.text()}`);
      });
    }
    this.pages.set(name, opened);
    await opened.goto(`${this.server.httpUrl}/?doc=${encodeURIComponent(docName)}&name=${name}`);
    return opened;
  }

  page(name: string): Page {
    const found = this.pages.get(name);
    assert.ok(found, `no page for ${name}`);
    return found;
  }

  /** Closes everything, each step even when one before it failed; `screenshots` saves each page first. */
  async stop(screenshots = false): Promise<void> {
    const failures: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>): Promise<void> => {
      try {
        await step();
      } catch (error) {
        failures.push(error);
      }
    };
    if (screenshots) {
      for (const [name, opened] of this.pages) {
        await attempt(() => saveScreenshot(opened, `${this.label}-${name.toLowerCase()}`));
      }
    }
    await attempt(async () => this.browser?.close());
    await attempt(async () => this.server?.stop("SIGTERM"));
    await attempt(async () => this.dir && rm(this.dir, { recursive: true, force: true }));
    if (failures.length > 0) throw new AggregateError(failures, `${this.label} spec cleanup failed`);
  }
}

/** Waits until both the CodeMirror document and the Y.Text of `page` equal `expected`. */
export async function waitForText(page: Page, expected: string): Promise<void> {
  try {
    await page.waitForFunction(
      (want) => {
        const sample = window.opstreamSample;
        return sample?.view.state.doc.toString() === want && sample.text.toJSON() === want;
      },
      expected,
      { timeout: WAIT_MS },
    );
  } catch (error) {
    const actual = await page.evaluate(() => {
      const sample = window.opstreamSample;
      if (!sample) return "window.opstreamSample is not set";
      return { view: sample.view.state.doc.toString(), ytext: sample.text.toJSON() };
    });
    assert.deepEqual(actual, { view: expected, ytext: expected }, `text never arrived: ${String(error)}`);
  }
}

/** Puts the caret at the end of the document, as a user would, and types `text`. */
export async function typeAtEnd(page: Page, text: string): Promise<void> {
  await page.locator(".cm-content").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type(text);
}
