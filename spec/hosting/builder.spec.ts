import { strict as assert } from "node:assert";
import { join } from "node:path";
import {
  ErrorCodes,
  HybridSnapshotPolicy,
  MemoryDocumentStore,
  ServiceCollection,
  SqliteDocumentStore,
  isOpStreamError,
} from "../../src/index.js";
import { LocalBackplane } from "../../src/backplane/local/local-backplane.js";
import { captureLogger } from "../support/capture-logger.js";
import { tempDir } from "../support/temp.js";

const WARN = 40;

describe("ServiceCollection and the opstream builder", () => {
  it("builds working defaults and logs one warning per unsafe default", async () => {
    const { logger, entries } = captureLogger();
    const services = new ServiceCollection();
    services.addOpStream({ processMetrics: false }).useLogger(logger);
    const host = services.build();
    assert.ok(host.store instanceof MemoryDocumentStore);
    assert.ok(host.backplane instanceof LocalBackplane);
    const warnings = entries().filter((e) => e.level === WARN);
    assert.equal(warnings.length, 3);
    assert.match(warnings[0]!.msg, /in-memory storage.*useSqliteStorage/);
    assert.match(warnings[1]!.msg, /allow-all authorizer.*useAuthorization/);
    assert.match(warnings[2]!.msg, /every origin.*transport\.allowedOrigins/);
    await host.shutdown();
  });

  it("logs no warning once durable storage, an authorizer and allowed origins are configured", async () => {
    const { logger, entries } = captureLogger();
    const services = new ServiceCollection();
    services
      .addOpStream({ processMetrics: false, transport: { allowedOrigins: ["https://app.example.com"] } })
      .useLogger(logger)
      .useSqliteStorage(join(tempDir(), "db.sqlite"))
      .useAuthorization(() => "readonly");
    const host = services.build();
    assert.ok(host.store instanceof SqliteDocumentStore);
    assert.deepEqual(
      entries().filter((e) => e.level === WARN),
      [],
    );
    await host.shutdown();
  });

  it("lets the last use*() call win, and add*() append", async () => {
    const services = new ServiceCollection();
    const policy = new HybridSnapshotPolicy({ maxOps: 7 });
    const calls: string[] = [];
    services
      .addOpStream({ processMetrics: false })
      .useLogger(captureLogger().logger)
      .useSqliteStorage(join(tempDir(), "db.sqlite"))
      .useMemoryStorage()
      .useSnapshotPolicy(new HybridSnapshotPolicy())
      .useSnapshotPolicy(policy)
      .addValidator(() => void calls.push("first"))
      .addValidator(() => void calls.push("second"));
    const host = services.build();
    assert.ok(host.store instanceof MemoryDocumentStore);
    const handle = await host.router.join("doc", {
      id: "p",
      sendUpdate: () => undefined,
      sendAwareness: () => undefined,
      disconnect: () => undefined,
    });
    await handle.apply(new Uint8Array([0, 0]));
    assert.deepEqual(calls, ["first", "second"]);
    handle.leave();
    await host.shutdown();
  });

  it("keeps useNoopBackplane() as a deprecated alias of useLocalBackplane() that warns", async () => {
    const { logger, entries } = captureLogger();
    const services = new ServiceCollection();
    services.addOpStream({ processMetrics: false }).useLogger(logger).useNoopBackplane();
    const host = services.build();
    assert.ok(host.backplane instanceof LocalBackplane);
    assert.ok(entries().some((e) => e.level === WARN && /useNoopBackplane\(\) is deprecated/.test(e.msg)));
    await host.shutdown();
  });

  it("throws BUILDER_SEALED for configuration after build()", async () => {
    const services = new ServiceCollection();
    const builder = services.addOpStream({ processMetrics: false }).useLogger(captureLogger().logger);
    const host = services.build();
    assert.throws(
      () => builder.useMemoryStorage(),
      (error: unknown) =>
        isOpStreamError(error, ErrorCodes.BUILDER_SEALED) && /before services\.build\(\)/.test(error.message),
    );
    assert.throws(
      () => services.addOpStream(),
      (error: unknown) => isOpStreamError(error, ErrorCodes.BUILDER_SEALED),
    );
    await host.shutdown();
  });

  it("throws MISSING_DEPENDENCY with what to fix when addOpStream() was never called", () => {
    assert.throws(
      () => new ServiceCollection().build(),
      (error: unknown) =>
        isOpStreamError(error, ErrorCodes.MISSING_DEPENDENCY) &&
        /call services\.addOpStream\(\)/.test(error.message),
    );
  });

  it("throws INVALID_OPTION for a keep-alive the stock clients would time out on", () => {
    assert.throws(
      () => new ServiceCollection().addOpStream({ transport: { keepAliveIntervalMs: 45_000 } }),
      (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION),
    );
  });
});
