import type { HookEvents, HookName, OpStreamBuilder } from "../../src/index.js";
import { HOOK_EVENTS } from "../../src/hooks.js";

/** One hook call as a spec saw it. */
export type Recorded = { [E in HookName]: { readonly name: E; readonly event: HookEvents[E] } }[HookName];

/** Registers a handler for every hook event on `builder` that appends what it is told to `into`. */
export function recordHooks(builder: OpStreamBuilder, into: Recorded[]): OpStreamBuilder {
  for (const name of HOOK_EVENTS) on(builder, name, into);
  return builder;
}

function on<E extends HookName>(builder: OpStreamBuilder, name: E, into: Recorded[]): void {
  builder.on(name, (event) => {
    into.push({ name, event } as Recorded);
  });
}

/** The recorded calls of `name`, with their payloads typed. */
export function calls<E extends HookName>(recorded: readonly Recorded[], name: E): HookEvents[E][] {
  return recorded.flatMap((r) => (r.name === name ? [r.event as HookEvents[E]] : []));
}

/**
 * The names of the calls about `docId`, in order, without `awareness` (it
 * interleaves with edits as clients send it) and with runs of `change` folded into one.
 */
export function lifecycle(recorded: readonly Recorded[], docId: string): string[] {
  const names: string[] = [];
  for (const { name, event } of recorded) {
    if (name === "awareness" || !("docId" in event) || event.docId !== docId) continue;
    if (name === "change" && names.at(-1) === "change") continue;
    names.push(name);
  }
  return names;
}
