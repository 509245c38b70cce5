import { strict as assert } from "node:assert";
import { LocalBackplane, LocalBus, LocalOwnership, MemoryDocumentStore } from "../../src/index.js";
import { backplaneContract } from "../contracts/backplane.contract.js";

backplaneContract(
  "local (shared LocalBus)",
  {
    create: (count) => {
      const bus = new LocalBus();
      const nodes = Array.from({ length: count }, () => new LocalBackplane({ bus }));
      return Promise.resolve({
        nodes,
        stop: async () => void (await Promise.all(nodes.map((n) => n.close()))),
      });
    },
  },
  {
    // LocalOwnership leases never expire: the renewal and loss cases do not apply.
    capabilities: { expiringLeases: false },
    create: (count) => {
      const bus = new LocalBus();
      const store = new MemoryDocumentStore();
      const nodes = Array.from({ length: count }, (_, i) => {
        const nodeId = `local-${i + 1}`;
        return { nodeId, ownership: new LocalOwnership(bus, nodeId, store) };
      });
      return Promise.resolve({ nodes, stop: () => Promise.resolve() });
    },
  },
);

describe("LocalOwnership", () => {
  it("gives each document one owner at a time and claims a new epoch with every lease", async () => {
    const bus = new LocalBus();
    const store = new MemoryDocumentStore();
    const one = new LocalOwnership(bus, "one", store);
    const two = new LocalOwnership(bus, "two", store);
    const lease = await one.acquire("doc");
    assert.equal(lease?.epoch, 1);
    assert.equal(await two.acquire("doc"), null, "held by another node");
    assert.equal(await two.ownerOf("doc"), "one");
    await lease?.release();
    assert.equal(lease?.signal.aborted, true);
    assert.equal(await one.ownerOf("doc"), null);
    const next = await two.acquire("doc");
    assert.equal(next?.epoch, 2, "the next owner fences the previous one");
    await next?.release();
  });
});
