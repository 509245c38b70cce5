import { strict as assert } from "node:assert";
import { ErrorCodes, ServiceCollection, isOpStreamError, type LogLevel } from "../../src/index.js";
import { resolveLogLevel } from "../../src/logging/logger.js";
import { captureLogger } from "../support/capture-logger.js";

describe("the logLevel option", () => {
  it("sets the default logger's level, over OPSTREAM_LOG_LEVEL", async () => {
    const services = new ServiceCollection();
    services.addOpStream({ logLevel: "error" }).useMemoryStorage(); // quiet: no startup warnings
    const host = services.build();
    try {
      assert.equal(host.logger.level, "error");
    } finally {
      await host.shutdown();
    }
    assert.equal(resolveLogLevel("debug", { OPSTREAM_LOG_LEVEL: "error" }), "debug", "the option wins");
    assert.equal(resolveLogLevel(undefined, { OPSTREAM_LOG_LEVEL: "error" }), "error", "then the variable");
    assert.equal(resolveLogLevel(undefined, {}), "info", "then info");
  });

  it("refuses an unknown level with INVALID_OPTION, naming where it came from", () => {
    assert.throws(
      () => new ServiceCollection().addOpStream({ logLevel: "loud" as LogLevel }),
      (error: unknown) =>
        isOpStreamError(error, ErrorCodes.INVALID_OPTION) &&
        error.message.startsWith("logLevel must be one of"),
    );
    assert.throws(
      () => resolveLogLevel(undefined, { OPSTREAM_LOG_LEVEL: "warning" }),
      (error: unknown) =>
        isOpStreamError(error, ErrorCodes.INVALID_OPTION) &&
        error.message.startsWith("OPSTREAM_LOG_LEVEL must be"),
    );
  });

  it("leaves a logger given to useLogger() at its own level", async () => {
    const { logger } = captureLogger();
    logger.level = "debug";
    const services = new ServiceCollection();
    services.addOpStream().useMemoryStorage().useLogger(logger);
    const host = services.build();
    try {
      assert.equal(host.logger.level, "debug");
    } finally {
      await host.shutdown();
    }
  });
});
