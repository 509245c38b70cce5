import { ErrorCodes, OpStreamError } from "../errors.js";
import { OpStreamBuilder } from "./builder.js";
import { OpStreamHost } from "./host.js";
import type { Token } from "./token.js";
import { Tokens } from "./tokens.js";
import type { OpStreamOptions } from "./options.js";

/** Creates a service from the provider (so it can ask for its dependencies). */
export type Factory<T> = (provider: ServiceProvider) => T;

/**
 * A small typed container with explicit tokens: `use*()` registers a singleton
 * (the last registration wins), `add*()` appends to a collection. No decorators,
 * no reflection. Applications call `addOpStream()` and `build()`; the tokens and
 * `set`/`add` are internal (custom implementations go through the builder's `use*()`).
 */
export class ServiceCollection {
  private readonly singletons = new Map<Token<unknown>, Factory<unknown>>();
  private readonly collections = new Map<Token<unknown>, Factory<unknown>[]>();
  private sealed = false;
  private builder: OpStreamBuilder | undefined;

  /** @internal Registers `factory` as the singleton for `token`, replacing any earlier one. */
  set<T>(token: Token<T>, factory: Factory<T>): this {
    this.assertOpen(`set(${token.name})`);
    this.singletons.set(token, factory);
    return this;
  }

  /** @internal Appends `factory` to the collection `token`. */
  add<T>(token: Token<T>, factory: Factory<T>): this {
    this.assertOpen(`add(${token.name})`);
    const list = this.collections.get(token) ?? [];
    list.push(factory);
    this.collections.set(token, list);
    return this;
  }

  /** @internal Whether a singleton is registered for `token`. */
  has(token: Token<unknown>): boolean {
    return this.singletons.has(token);
  }

  /** Registers opstream with working defaults and returns its builder (once; later calls return the same builder). */
  addOpStream(options: OpStreamOptions = {}): OpStreamBuilder {
    this.assertOpen("addOpStream()");
    this.builder ??= new OpStreamBuilder(this, options);
    return this.builder;
  }

  /** Seals the collection and builds the opstream host. */
  build(): OpStreamHost {
    if (!this.singletons.has(Tokens.Options)) {
      throw new OpStreamError(
        ErrorCodes.MISSING_DEPENDENCY,
        "Nothing to build: call services.addOpStream() before services.build().",
        { missing: Tokens.Options.name },
      );
    }
    this.sealed = true;
    const provider = new ServiceProvider(this.singletons, this.collections);
    const host = new OpStreamHost(provider);
    this.builder?.logStartupWarnings(host.logger);
    return host;
  }

  /** @internal */
  assertOpen(call: string): void {
    if (this.sealed) {
      throw new OpStreamError(
        ErrorCodes.BUILDER_SEALED,
        `${call} was called after build(). Register every service before services.build().`,
        { call },
      );
    }
  }
}

/** Resolves services registered in a {@link ServiceCollection}; each singleton is created once. */
export class ServiceProvider {
  private readonly instances = new Map<Token<unknown>, unknown>();
  private readonly resolving = new Set<Token<unknown>>();

  constructor(
    private readonly singletons: ReadonlyMap<Token<unknown>, Factory<unknown>>,
    private readonly collections: ReadonlyMap<Token<unknown>, Factory<unknown>[]>,
  ) {}

  get<T>(token: Token<T>): T {
    if (this.instances.has(token)) return this.instances.get(token) as T;
    const factory = this.singletons.get(token);
    if (!factory) {
      throw new OpStreamError(
        ErrorCodes.MISSING_DEPENDENCY,
        `No service is registered for ${token.name}. Register one with the builder (see docs/configuration.md, "Builder").`,
        { missing: token.name },
      );
    }
    if (this.resolving.has(token)) {
      throw new OpStreamError(ErrorCodes.MISSING_DEPENDENCY, `${token.name} depends on itself.`, {
        cycle: [...this.resolving].map((t) => t.name),
      });
    }
    this.resolving.add(token);
    try {
      const instance = factory(this) as T;
      this.instances.set(token, instance);
      return instance;
    } finally {
      this.resolving.delete(token);
    }
  }

  getAll<T>(token: Token<T>): T[] {
    return (this.collections.get(token) ?? []).map((factory) => factory(this) as T);
  }
}
