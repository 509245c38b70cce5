// The sample editor's history panel, end to end: a real Chromium, the built CLI
// as a real process, a real SQLite file. Alice saves a version through the panel,
// Bob edits, Alice sees what changed since, restores the version (both pages get
// it live, on the same WebSocket) and undoes the restore.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import type { Locator, Page } from "playwright-core";
import { saveScreenshot } from "../support/browser.js";
import { SampleFixture, WAIT_MS, typeAtEnd, waitForText } from "../support/sample-page.js";

const DRAFT = "First draft.";
const ADDITION = " Bob's addition.";
const FULL_TEXT = DRAFT + ADDITION;

/** What the spec keeps in a page to tell whether its provider ever reconnected. */
interface SocketWatch {
  socket: unknown;
  statuses: string[];
}

/** Runs in the page: remembers the provider's current WebSocket and records every status change from now on. */
function watchSocket(): void {
  const sample = window.opstreamSample;
  if (!sample) throw new Error("window.opstreamSample is not set");
  const watch: SocketWatch = { socket: sample.provider.ws, statuses: [] };
  sample.provider.on("status", ({ status }) => watch.statuses.push(status));
  (window as unknown as { socketWatch: SocketWatch }).socketWatch = watch;
}

/** Runs in the page: whether the provider is connected on the WebSocket `watchSocket` saw, and its status changes since. */
function socketState(): { connected: boolean; sameSocket: boolean; statuses: string[] } {
  const sample = window.opstreamSample;
  const watch = (window as unknown as { socketWatch?: SocketWatch }).socketWatch;
  return {
    connected: sample?.provider.wsconnected === true,
    sameSocket: watch !== undefined && sample?.provider.ws === watch.socket,
    statuses: watch?.statuses ?? [],
  };
}

/** The panel's entry for a version of `kind` whose label reads `label`. */
function versionItem(page: Page, kind: string, label: string): Locator {
  return page.locator(`#history-versions [data-version-id][data-kind="${kind}"]`, {
    has: page.locator(".history-version-label", { hasText: new RegExp(`^${label}$`) }),
  });
}

/** Waits until the panel says the selected version equals now, showing `text` unmarked. */
async function assertNoChangesShown(page: Page, text: string): Promise<void> {
  await page
    .locator("#history-diff .history-note", { hasText: "No changes since this version." })
    .waitFor({ timeout: WAIT_MS });
  assert.deepEqual(await page.evaluate(diffMarks), {
    added: "",
    removed: "",
    all: `No changes since this version.${text}`,
  });
}

/** The labels of the panel's list, top (newest) first. */
function listedLabels(page: Page): Promise<string[]> {
  return page.locator("#history-versions .history-version-label").allTextContents();
}

/** Selects the entry and waits until its preview shows `preview` and the restore button is enabled. */
async function selectVersion(page: Page, item: Locator, preview: string): Promise<void> {
  await item.click();
  assert.equal(await item.getAttribute("aria-pressed"), "true");
  await page.waitForFunction(
    (want) =>
      document.getElementById("history-preview")?.textContent === want &&
      !(document.getElementById("history-restore") as HTMLButtonElement | null)?.disabled,
    preview,
    { timeout: WAIT_MS },
  );
}

/** The marked ranges of `#history-diff`: the text of every added and removed span, joined. */
function diffMarks(): { added: string; removed: string; all: string } {
  // No local helper function: tsx would wrap it in a `__name()` the page does not have.
  const diff = document.getElementById("history-diff");
  const [added, removed] = ['ins[data-change="added"]', 'del[data-change="removed"]'].map((selector) =>
    Array.from(diff?.querySelectorAll(selector) ?? [], (node) => node.textContent ?? "").join(""),
  );
  return { added: added ?? "", removed: removed ?? "", all: diff?.textContent ?? "" };
}

describe("sample editor history panel in a real browser", function () {
  this.timeout(60_000);

  const docName = `history-${randomUUID()}`;
  const sample = new SampleFixture("history");
  const page = (name: string): Page => sample.page(name);

  /** Opens the sample as `name`, waits for it to connect, and starts watching its WebSocket. */
  async function open(name: string): Promise<Page> {
    // A 404 or 403 from the history endpoint would show as a console error.
    const opened = await sample.open(name, docName, {
      viewport: { width: 1200, height: 820 },
      consoleErrors: true,
    });
    await opened.locator('#status[data-status="connected"]').waitFor({ state: "attached", timeout: WAIT_MS });
    await opened.evaluate(watchSocket);
    return opened;
  }

  async function assertNoReconnect(name: string): Promise<void> {
    const state = await page(name).evaluate(socketState);
    assert.deepEqual(state, { connected: true, sameSocket: true, statuses: [] }, `${name} reconnected`);
  }

  before(() => sample.start());
  after(() => sample.stop());

  it("saves a named version through the panel", async () => {
    const [alice, bob] = await Promise.all([open("Alice"), open("Bob")]);
    await typeAtEnd(alice, DRAFT);
    // Bob having it means the server has it: the version is taken on the server.
    await waitForText(bob, DRAFT);
    await alice.locator("#history-name").fill("v1");
    await alice.getByRole("button", { name: "Save version" }).click();
    await versionItem(alice, "named", "Named: v1").waitFor({ timeout: WAIT_MS });
    assert.equal(await alice.locator("#history-message").textContent(), "Saved “v1”.");
    assert.equal(await alice.locator("#history-name").inputValue(), "");
    await saveScreenshot(alice, "history-alice-saved");
  });

  it("shows the version's content and what changed since, marked", async () => {
    const [alice, bob] = [page("Alice"), page("Bob")];
    await typeAtEnd(bob, ADDITION);
    await Promise.all([waitForText(alice, FULL_TEXT), waitForText(bob, FULL_TEXT)]);
    await selectVersion(alice, versionItem(alice, "named", "Named: v1"), DRAFT);
    assert.deepEqual(await alice.evaluate(diffMarks), { added: ADDITION, removed: "", all: FULL_TEXT });
    const ins = alice.locator('#history-diff ins[data-change="added"]').first();
    assert.match(await ins.evaluate((node) => getComputedStyle(node).textDecorationLine), /underline/);
    await saveScreenshot(alice, "history-alice-diff");
  });

  it("restores the version on both pages live, without reconnecting", async () => {
    const [alice, bob] = [page("Alice"), page("Bob")];
    await alice.locator("#history-restore").click();
    await Promise.all([waitForText(alice, DRAFT), waitForText(bob, DRAFT)]);
    await Promise.all([assertNoReconnect("Alice"), assertNoReconnect("Bob")]);
    await versionItem(alice, "restore", "Restored: v1").waitFor({ timeout: WAIT_MS });
    assert.deepEqual((await listedLabels(alice)).slice(0, 3), [
      "Restored: v1",
      "Before restore",
      "Named: v1",
    ]);
    assert.match((await alice.locator("#history-message").textContent()) ?? "", /^Restored “v1”/);
    // The selected version is now what the document holds: nothing changed since.
    await assertNoChangesShown(alice, DRAFT);
    // Bob's panel finds the new versions on its own (its timer).
    await versionItem(bob, "restore", "Restored: v1").waitFor({ timeout: WAIT_MS });
    await saveScreenshot(alice, "history-alice-restored");
    await saveScreenshot(bob, "history-bob-restored");
  });

  it("undoes the restore by restoring the before-restore version", async () => {
    const [alice, bob] = [page("Alice"), page("Bob")];
    await selectVersion(alice, versionItem(alice, "before-restore", "Before restore"), FULL_TEXT);
    await alice.locator("#history-restore").click();
    await Promise.all([waitForText(alice, FULL_TEXT), waitForText(bob, FULL_TEXT)]);
    await Promise.all([assertNoReconnect("Alice"), assertNoReconnect("Bob")]);
    await alice.waitForFunction(
      () => document.querySelectorAll('#history-versions [data-kind="restore"]').length === 2,
      undefined,
      { timeout: WAIT_MS },
    );
    assert.deepEqual(await listedLabels(alice), [
      "Restored: before restore",
      "Before restore",
      "Restored: v1",
      "Before restore",
      "Named: v1",
    ]);
    // The text is what it was before the first restore: the diff compares text, not Yjs items.
    await assertNoChangesShown(alice, FULL_TEXT);
    await saveScreenshot(alice, "history-alice-undone");
    assert.deepEqual(sample.pageErrors, []);
  });
});
