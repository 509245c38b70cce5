/** How a collaborator appears to the others: y-codemirror.next reads `user` from awareness. */
export interface SampleUser {
  name: string;
  /** Caret and name-tag colour. */
  color: string;
  /** Selection background: the colour with a low alpha. */
  colorLight: string;
}

const NAMES = ["Ada", "Alan", "Barbara", "Donald", "Edsger", "Frances", "Grace", "Ken", "Leslie", "Margaret"];
const COLORS = ["#30bced", "#6eeb83", "#ffbc42", "#ee6352", "#9ac2c9", "#8acb88", "#1be7ff", "#d291bc"];

function pick<T>(items: readonly T[]): T {
  const item = items[Math.floor(Math.random() * items.length)];
  if (item === undefined) throw new Error("pick() needs a non-empty list");
  return item;
}

/** A random colour and either `name` or a random name. */
export function makeUser(name: string | null): SampleUser {
  const color = pick(COLORS);
  return { name: name?.trim() || pick(NAMES), color, colorLight: `${color}33` };
}

/** The `user` field of an awareness state, if it has the expected shape. */
export function userOf(state: Record<string, unknown>): SampleUser | undefined {
  const user = state.user;
  if (typeof user !== "object" || user === null) return undefined;
  const { name, color, colorLight } = user as Partial<Record<keyof SampleUser, unknown>>;
  if (typeof name !== "string" || typeof color !== "string") return undefined;
  return { name, color, colorLight: typeof colorLight === "string" ? colorLight : `${color}33` };
}
