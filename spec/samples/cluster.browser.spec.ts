// The Tiptap sample on a cluster, end to end: a real Chromium, three real
// `opstream serve` processes on a real redis-server, and nginx in front (the
// sample's configuration: round-robin, no sticky sessions). One page edits
// through @hocuspocus/provider, the other through y-websocket's WebsocketProvider,
// both on the same Y.XmlFragment; then the document's owner is killed with
// SIGKILL while both keep typing.
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import type { Browser, Page } from "playwright-core";
import { PROVIDER_LABELS, type ProviderKind } from "../../samples/editor/src/providers.js";
import type { OpStreamTiptapSample } from "../../samples/editor/src/tiptap.js";
import { ownersOf, proxyFor } from "../cluster/support.js";
import { launchChromium, saveScreenshot } from "../support/browser.js";
import { startCluster, type Cluster } from "../support/cluster.js";
import { eventually } from "../support/eventually.js";
import type { Nginx } from "../support/nginx.js";

/** Each wait while every node is up. */
const WAIT_MS = 15_000;
/**
 * Each wait across the failover: the killed owner's lease (3 s in specs) must run
 * out before another node takes the document, and each provider retries on its
 * own backoff (Hocuspocus: 1 s doubling, with jitter).
 */
const FAILOVER_WAIT_MS = 45_000;

type Status = "connected" | "connecting" | "disconnected";

/** The two users, each on its own provider. */
const USERS: ReadonlyArray<{ name: string; provider: ProviderKind }> = [
  { name: "Alice", provider: "hocuspocus" },
  { name: "Bob", provider: "y-websocket" },
];

/** What a page shows and holds, read in the page. */
interface PageState {
  /** The editor's text, one line per paragraph. */
  text: string;
  /** The Y.XmlFragment as XML: equal on two pages means equal shared content. */
  xml: string;
  /** Updates Yjs holds back for missing dependencies (a gap, not success). */
  pending: boolean;
}

/** Runs in the page. */
function readPage(): PageState | string {
  const sample: OpStreamTiptapSample | undefined = window.opstreamTiptap;
  if (!sample) return "window.opstreamTiptap is not set";
  return {
    text: sample.editor.getText({ blockSeparator: "\n" }),
    xml: sample.fragment.toJSON(),
    pending: sample.doc.store.pendingStructs !== null,
  };
}

async function stateOf(page: Page): Promise<PageState> {
  const state = await page.evaluate(readPage);
  if (typeof state === "string") assert.fail(state);
  return state;
}

async function waitForStatus(page: Page, status: Status, timeout = WAIT_MS): Promise<void> {
  await page.locator(`#status[data-status="${status}"]`).waitFor({ state: "attached", timeout });
}

/** Waits until the remote caret of the user called `name` is drawn in `page`. */
async function waitForCaretOf(page: Page, name: string, timeout = WAIT_MS): Promise<void> {
  await page
    .locator(".collaboration-carets__caret", {
      has: page.locator(".collaboration-carets__label", { hasText: name }),
    })
    .waitFor({ state: "visible", timeout });
}

/** Puts the caret at the end of the document, as a user would, and types `text`. */
async function typeAtEnd(page: Page, text: string): Promise<void> {
  await page.locator(".tiptap").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type(text);
}

describe("Tiptap sample on a 3-node cluster behind nginx (Chromium)", function () {
  this.timeout(180_000);

  const docName = `tiptap-e2e-${randomUUID()}`;
  const pages = new Map<string, Page>();
  const pageErrors: string[] = [];
  /** Everything typed so far, by anyone. */
  const typed: string[] = [];
  /** Every status each page's provider reported, in order (a reconnect can be too quick to see on screen). */
  const statusLog = new Map<string, string[]>();
  let browser: Browser | undefined;
  let cluster: Cluster | undefined;
  let proxy: Nginx | undefined;

  function page(name: string): Page {
    const found = pages.get(name);
    assert.ok(found, `no page for ${name}`);
    return found;
  }

  const alice = () => page("Alice");
  const bob = () => page("Bob");

  async function type(name: string, text: string): Promise<void> {
    await typeAtEnd(page(name), text);
    typed.push(text);
  }

  /**
   * Waits until both pages hold the same shared content, with no pending updates,
   * and its text contains everything typed; returns that text.
   */
  async function waitForConvergence(timeoutMs: number): Promise<string> {
    return eventually(
      async () => {
        const [a, b] = await Promise.all([stateOf(alice()), stateOf(bob())]);
        assert.equal(a.xml, b.xml, "both pages hold the same XmlFragment");
        assert.equal(a.text, b.text, "both editors show the same text");
        assert.ok(!a.pending && !b.pending, "no page holds updates with missing dependencies");
        for (const text of typed)
          assert.ok(a.text.includes(text), `"${text}" is in ${JSON.stringify(a.text)}`);
        return a.text;
      },
      timeoutMs,
      100,
    );
  }

  /** Waits until each page lists itself first, then the other user, and nobody else. */
  async function waitForPresence(timeoutMs: number): Promise<void> {
    await eventually(async () => {
      assert.deepEqual(await alice().locator("#peers li").allTextContents(), ["Alice (you)", "Bob"]);
      assert.deepEqual(await bob().locator("#peers li").allTextContents(), ["Bob (you)", "Alice"]);
    }, timeoutMs);
  }

  async function screenshots(stage: string): Promise<void> {
    for (const [name, opened] of pages)
      await saveScreenshot(opened, `cluster-tiptap-${name.toLowerCase()}-${stage}`);
  }

  before(async () => {
    browser = await launchChromium();
    cluster = await startCluster(3, { sample: true });
    proxy = await proxyFor(cluster);
  });

  after(async () => {
    const failures: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>): Promise<void> => {
      try {
        await step();
      } catch (error) {
        failures.push(error);
      }
    };
    // Whatever happened, a person can look at the pages as they ended.
    for (const [name, opened] of pages)
      await attempt(() => saveScreenshot(opened, `cluster-tiptap-${name.toLowerCase()}-final`));
    await attempt(async () => browser?.close());
    await attempt(async () => proxy?.close());
    await attempt(async () => cluster?.stop());
    if (failures.length > 0) throw new AggregateError(failures, "cluster browser spec cleanup failed");
  });

  it("opens the Tiptap page through nginx, one user on each provider", async () => {
    assert.ok(browser && proxy);
    for (const user of USERS) {
      // One context each: no shared storage, no BroadcastChannel between them.
      const context = await browser.newContext({ viewport: { width: 1100, height: 560 } });
      const opened = await context.newPage();
      opened.on("pageerror", (error) => pageErrors.push(`${user.name}: ${error.message}`));
      pages.set(user.name, opened);
      const log: string[] = [];
      statusLog.set(user.name, log);
      await opened.exposeFunction("recordStatus", (status: string) => log.push(status));
      const query = new URLSearchParams({ doc: docName, provider: user.provider, name: user.name });
      await opened.goto(`http://127.0.0.1:${proxy.port}/tiptap.html?${query.toString()}`);
      await opened.evaluate(() => {
        const page = window as unknown as { recordStatus(status: string): void };
        window.opstreamTiptap?.connection.onStatus((status) => page.recordStatus(status));
      });
    }
    await Promise.all([waitForStatus(alice(), "connected"), waitForStatus(bob(), "connected")]);
    for (const user of USERS) {
      const opened = page(user.name);
      assert.equal(await opened.locator("#doc-name").textContent(), docName);
      assert.equal(await opened.evaluate(() => window.opstreamTiptap?.kind), user.provider);
    }
  });

  it("syncs typing both ways between the two providers", async () => {
    const [first, second] = USERS.map(
      ({ name, provider }) => `${name} types through ${PROVIDER_LABELS[provider]}.`,
    );
    assert.ok(first && second);
    await type("Alice", first);
    await waitForConvergence(WAIT_MS);
    await type("Bob", ` ${second}`);
    const text = await waitForConvergence(WAIT_MS);
    assert.equal(text, `${first} ${second}`);
  });

  it("shows each user the other's caret and both in the presence list", async () => {
    await Promise.all([waitForCaretOf(alice(), "Bob"), waitForCaretOf(bob(), "Alice")]);
    await waitForPresence(WAIT_MS);
    await screenshots("before-kill");
  });

  it("converges on every keystroke after kill -9 of the document's owner, both pages still typing", async () => {
    assert.ok(cluster);
    const [owner, ...others] = await ownersOf(cluster.nodes, docName);
    assert.ok(owner !== undefined && others.length === 0, `exactly one node owns ${docName}`);
    const killed = cluster.nodes[owner];
    assert.ok(killed);
    for (const log of statusLog.values()) log.length = 0;
    await killed.stop("SIGKILL");

    // Straight away: whichever page lost its connection types offline, the other
    // may be on a node still looking for the new owner.
    await type("Alice", " Alice keeps typing.");
    await type("Bob", " So does Bob.");
    await Promise.all([
      waitForStatus(alice(), "connected", FAILOVER_WAIT_MS),
      waitForStatus(bob(), "connected", FAILOVER_WAIT_MS),
    ]);
    await waitForConvergence(FAILOVER_WAIT_MS);
    // The first page to open made its node the owner, so at least its socket died with it.
    assert.ok(
      [...statusLog.values()].some((log) => log.includes("disconnected")),
      `a page lost its connection with the owner: ${JSON.stringify([...statusLog])}`,
    );

    // Once both are back: the new owner takes edits from both providers.
    await type("Alice", " Alice again.");
    await type("Bob", " Bob again.");
    const text = await waitForConvergence(FAILOVER_WAIT_MS);
    assert.equal(text.length, typed.join("").length, "nothing was typed twice");

    const live = cluster.nodes.filter((_, index) => index !== owner);
    await eventually(async () => {
      assert.equal((await ownersOf(live, docName)).length, 1, "one live node owns the document");
    }, FAILOVER_WAIT_MS);

    await Promise.all([
      waitForCaretOf(alice(), "Bob", FAILOVER_WAIT_MS),
      waitForCaretOf(bob(), "Alice", FAILOVER_WAIT_MS),
    ]);
    await waitForPresence(FAILOVER_WAIT_MS);
    await screenshots("after-kill");
    assert.deepEqual(pageErrors, []);
  });
});
