import { strict as assert } from "node:assert";
import fc from "fast-check";
import { accessFromScopes, documentScope, type ScopeAccess } from "../../src/index.js";

// Properties of the scope grammar (src/transport/scopes.ts): a built scope grants
// exactly its (tenant, document, access) and nothing else, whatever the names.

/** Characters that could confuse a grammar, so that generated names often collide or nearly do. */
const TRICKY = [
  ":",
  " ",
  "*",
  "/",
  "%",
  "2",
  "A",
  "a",
  "F",
  "~",
  "!",
  "(",
  "'",
  ".",
  "-",
  "_",
  "é",
  "😀",
  "\t",
  "+",
];
const trickyName = fc.string({ unit: fc.constantFrom(...TRICKY), maxLength: 8 });
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code));
/** Any document name a client could send: full Unicode, lone surrogates, near-misses of a scope. */
const anyName = fc.oneof(
  trickyName,
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.string({ unit: fc.oneof(fc.constantFrom(...TRICKY), loneSurrogate), maxLength: 6 }),
);
const validTenant = fc.oneof(
  fc.constantFrom("acme", "globex", "a.b", "_", "-"),
  fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/),
);
/** A request's tenant: none (no resolver), a valid one, or one the transport would never let through. */
const requestTenant = fc.oneof(fc.constant(undefined), validTenant, fc.constantFrom("", "a/b", "*", "acme "));
const access = fc.constantFrom<ScopeAccess>("readonly", "read-write");
const wellFormed = (name: string) => name !== "" && !/\p{Cs}/u.test(name);

/** A scope to build: one document or all of them, with or without a tenant. */
const target = fc.record({
  access,
  tenant: fc.option(validTenant, { nil: undefined }),
  docId: fc.option(anyName.filter(wellFormed), { nil: undefined }),
});
type Target = { access: ScopeAccess; tenant: string | undefined; docId: string | undefined };
const build = ({ access, tenant, docId }: Target): string =>
  docId === undefined
    ? documentScope({ access, tenant, allDocuments: true })
    : documentScope({ access, tenant, docId });

/** Requests near a target: its own (tenant, doc), near-misses of it, and arbitrary ones. */
const nearRequest = (t: Target) =>
  fc.record({
    tenant: fc.oneof(fc.constant(t.tenant), requestTenant),
    docId: fc.oneof(
      fc.constant(t.docId ?? "x"),
      anyName,
      fc.constantFrom(
        `${t.docId ?? ""}:read`,
        `read:${t.docId ?? ""}`,
        `*:read`,
        `${t.tenant ?? ""}/${t.docId ?? ""}`,
        (t.docId ?? "").split(" ")[0] ?? "",
        encodeURIComponent(t.docId ?? ""),
        build(t),
      ),
    ),
  });

const RUNS = { numRuns: 3000 };

describe("scope grammar (documentScope / accessFromScopes)", () => {
  it("a built scope grants exactly its tenant and document (or all of the tenant's), and only its access", () => {
    fc.assert(
      fc.property(
        target.chain((t) => fc.tuple(fc.constant(t), nearRequest(t))),
        ([t, request]) => {
          const matches =
            request.tenant === t.tenant &&
            (t.docId === undefined ? wellFormed(request.docId) : request.docId === t.docId);
          assert.equal(
            accessFromScopes([build(t)], request.docId, request.tenant),
            matches ? t.access : "deny",
          );
        },
      ),
      RUNS,
    );
  });

  it("no string grants anything unless it is the one scope built for that grant; a read scope never grants write", () => {
    const scopeLike = fc.oneof(
      target.map(build),
      fc
        .tuple(
          fc.constantFrom(
            "opstream.read:",
            "opstream.write:",
            "opstream:",
            "opstream.write:acme/",
            "opstream.read:*",
            "",
          ),
          anyName,
          fc.constantFrom("", ":read", "/*", "*"),
        )
        .map((parts) => parts.join("")),
      fc.string({ unit: "binary", maxLength: 24 }),
    );
    fc.assert(
      fc.property(scopeLike, requestTenant, anyName, (scope, tenant, docId) => {
        const granted = accessFromScopes([scope], docId, tenant);
        if (granted === "deny") return;
        const candidates = [
          documentScope({ access: granted, tenant, docId }),
          documentScope({ access: granted, tenant, allDocuments: true }),
        ];
        assert.ok(
          candidates.includes(scope),
          `${JSON.stringify(scope)} granted ${granted} on ${JSON.stringify([tenant, docId])}`,
        );
        if (scope.startsWith("opstream.read:")) assert.equal(granted, "readonly");
      }),
      RUNS,
    );
  });

  it("built scopes contain no whitespace, so a space-separated claim splits back into exactly them", () => {
    fc.assert(
      fc.property(fc.array(target.map(build), { maxLength: 5 }), (scopes) => {
        for (const scope of scopes) assert.doesNotMatch(scope, /\s/);
        assert.deepEqual(scopes.join(" ").split(" ").filter(Boolean), scopes);
      }),
      RUNS,
    );
  });

  it("a list of scopes grants the strongest access any one of them grants", () => {
    fc.assert(
      fc.property(fc.array(target, { maxLength: 4 }), requestTenant, anyName, (targets, tenant, docId) => {
        const each = targets.map((t) => accessFromScopes([build(t)], docId, tenant));
        const expected = each.includes("read-write")
          ? "read-write"
          : each.includes("readonly")
            ? "readonly"
            : "deny";
        assert.equal(accessFromScopes(targets.map(build), docId, tenant), expected);
      }),
      { numRuns: 1000 },
    );
  });
});
