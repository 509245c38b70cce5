import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { ServiceCollection } from "../../src/index.js";
import { testLogger } from "../support/server.js";

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** Every `METHOD /path` a router answers, its nested routers included. */
function routesOf(stack: readonly Layer[], into: string[] = []): string[] {
  for (const layer of stack) {
    if (layer.route) {
      for (const method of Object.keys(layer.route.methods))
        into.push(`${method.toUpperCase()} ${layer.route.path}`);
    } else if (layer.handle?.stack) routesOf(layer.handle.stack, into);
  }
  return into;
}

/** Every `METHOD /path` docs/openapi.yaml documents, in express's `:param` form. */
function documentedRoutes(): string[] {
  const routes: string[] = [];
  let path: string | undefined;
  for (const line of readFileSync(new URL("../../docs/openapi.yaml", import.meta.url), "utf8").split("\n")) {
    const pathMatch = /^ {2}(\/\S+):$/.exec(line);
    if (pathMatch) {
      path = pathMatch[1]!.replace(/\{(\w+)\}/g, ":$1");
      continue;
    }
    if (/^\S/.test(line)) path = undefined; // the next top-level key ends `paths`
    const methodMatch = /^ {4}(get|post|put|patch|delete):$/.exec(line);
    if (path && methodMatch) routes.push(`${methodMatch[1]!.toUpperCase()} ${path}`);
  }
  return routes;
}

describe("docs/openapi.yaml", () => {
  it("documents exactly the management API's routes", async () => {
    const services = new ServiceCollection();
    services.addOpStream({ processMetrics: false }).useMemoryStorage().useLogger(testLogger());
    const host = services.build();
    try {
      const served = routesOf((host.http() as unknown as { stack: Layer[] }).stack)
        .filter((route) => route.includes(" /api/documents"))
        .sort();
      assert.ok(served.length >= 9, `found the routes: ${served.join(", ")}`);
      assert.deepEqual(documentedRoutes().sort(), served);
    } finally {
      await host.shutdown();
    }
  });
});
