import { generateKeyPairSync } from "node:crypto";
import { strict as assert } from "node:assert";
import type { IncomingMessage } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from "jose";
import { ErrorCodes, documentScope, isOpStreamError } from "../../src/index.js";
import { jwtAuthorizer } from "../../src/transport/jwt-authorizer.js";
import { accessFromScopes } from "../../src/transport/scopes.js";

const SECRET = "a-shared-secret-of-at-least-32-bytes!";
const request = {} as IncomingMessage;

async function hsToken(claims: Record<string, unknown>, expiresIn: string | number = "1h"): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(SECRET));
}

describe("jwtAuthorizer", () => {
  it("maps scopes to access per document", () => {
    assert.equal(accessFromScopes(["opstream.write:*"], "a"), "read-write");
    assert.equal(accessFromScopes(["opstream.write:a"], "a"), "read-write");
    assert.equal(accessFromScopes(["opstream.write:a"], "b"), "deny");
    assert.equal(accessFromScopes(["opstream.read:a"], "a"), "readonly");
    assert.equal(accessFromScopes(["opstream.read:*"], "z"), "readonly");
    assert.equal(accessFromScopes(["opstream.read:a", "opstream.write:a"], "a"), "read-write");
    assert.equal(accessFromScopes(["other:*"], "a"), "deny");
  });

  it("grants the 0.x grammar nothing: `opstream:*`, `opstream:<doc>`, `opstream:<doc>:read`", () => {
    for (const [scope, docId] of [
      ["opstream:*", "a"],
      ["opstream:a", "a"],
      ["opstream:*:read", "*:read"],
      ["opstream:foo:read", "foo:read"],
      ["opstream:foo:read", "foo"],
    ] as const) {
      assert.equal(accessFromScopes([scope], docId), "deny", `${scope} on ${docId}`);
    }
  });

  it("honours only scopes of the connection's tenant, and only tenanted ones when there is a tenant", () => {
    const acmeNotes = documentScope({ access: "read-write", tenant: "acme", docId: "notes" });
    assert.equal(acmeNotes, "opstream.write:acme/notes");
    assert.equal(accessFromScopes([acmeNotes], "notes", "acme"), "read-write");
    assert.equal(accessFromScopes([acmeNotes], "notes", "globex"), "deny");
    assert.equal(accessFromScopes([acmeNotes], "notes"), "deny", "without a tenant resolver");
    assert.equal(accessFromScopes([acmeNotes], "acme/notes"), "deny", "the full id is no way around it");
    const everything = documentScope({ access: "read-write", allDocuments: true });
    assert.equal(
      accessFromScopes([everything], "notes", "acme"),
      "deny",
      "an untenanted * is not every tenant's",
    );
    const acmeReader = documentScope({ access: "readonly", tenant: "acme", allDocuments: true });
    assert.equal(acmeReader, "opstream.read:acme/*");
    assert.equal(accessFromScopes([acmeReader], "anything", "acme"), "readonly");
    assert.equal(accessFromScopes([acmeReader], "anything", "acme2"), "deny");
  });

  it("builds scopes with an encoded document name, and refuses to build ambiguous ones", () => {
    assert.equal(documentScope({ access: "readonly", docId: "foo:read" }), "opstream.read:foo%3Aread");
    assert.equal(documentScope({ access: "read-write", docId: "*" }), "opstream.write:%2A");
    assert.equal(documentScope({ access: "read-write", docId: "a b/c%d" }), "opstream.write:a%20b%2Fc%25d");
    assert.equal(
      documentScope({ access: "read-write", docId: "!'()~é" }),
      "opstream.write:%21%27%28%29%7E%C3%A9",
    );
    const invalid = (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION);
    assert.throws(() => documentScope({ access: "readonly", docId: "" }), invalid);
    assert.throws(() => documentScope({ access: "readonly", docId: "\uD800" }), invalid);
    assert.throws(() => documentScope({ access: "readonly", tenant: "a/b", docId: "x" }), invalid);
    assert.throws(() => documentScope({ access: "deny" as "readonly", docId: "x" }), invalid);
    assert.throws(
      () =>
        documentScope({ access: "readonly", docId: "x", allDocuments: true } as unknown as {
          access: "readonly";
          docId: string;
        }),
      invalid,
    );
    assert.equal(accessFromScopes(["opstream.write:%2a"], "*"), "deny", "lower-case hex is not canonical");
    assert.equal(
      accessFromScopes(["opstream.write:%61"], "a"),
      "deny",
      "an escaped kept character is not canonical",
    );
  });

  it("verifies HS256 tokens: scopes honoured, expiry reported, bad/expired/missing tokens denied", async () => {
    const authorize = jwtAuthorizer({ secret: SECRET });
    const token = await hsToken({ scope: "opstream.write:doc-a opstream.read:doc-b" });
    const a = await authorize({ docId: "doc-a", token, request });
    assert.equal(a.access, "read-write");
    assert.ok(a.expiresAt !== undefined && a.expiresAt > Date.now() + 3_500_000);
    assert.equal((await authorize({ docId: "doc-b", token, request })).access, "readonly");
    assert.deepEqual(
      await authorize({ docId: "doc-c", token, request }),
      { access: "deny", reason: "forbidden", expiresAt: a.expiresAt },
      "A's token cannot open C: a valid token without the scope is forbidden (403)",
    );
    assert.equal((await authorize({ docId: "doc-a", token: undefined, request })).reason, "unauthenticated");
    assert.equal((await authorize({ docId: "doc-a", token: undefined, request })).access, "deny");
    assert.equal((await authorize({ docId: "doc-a", token: "not.a.jwt", request })).access, "deny");
    const expired = await hsToken({ scope: "opstream.write:*" }, Math.floor(Date.now() / 1000) - 60);
    assert.equal((await authorize({ docId: "doc-a", token: expired, request })).access, "deny");
    const forged = await new SignJWT({ scope: "opstream.write:*" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("another-secret-of-at-least-32-bytes!!"));
    assert.deepEqual(await authorize({ docId: "doc-a", token: forged, request }), {
      access: "deny",
      reason: "unauthenticated",
    });
  });

  it("takes the tenant from the request, and reports the token's sub as the grant's principal", async () => {
    const authorize = jwtAuthorizer({ secret: SECRET });
    const token = await hsToken({ sub: "user-7", scope: "opstream.write:acme/notes" });
    const grant = await authorize({ docId: "notes", tenant: "acme", token, request });
    assert.equal(grant.access, "read-write");
    assert.equal(grant.principal, "user-7");
    assert.equal((await authorize({ docId: "notes", tenant: "globex", token, request })).access, "deny");
    assert.equal((await authorize({ docId: "notes", token, request })).access, "deny");
    const anonymous = await hsToken({ scope: "opstream.write:*" });
    assert.equal("principal" in (await authorize({ docId: "notes", token: anonymous, request })), false);
  });

  it("reports expiresAt as exp plus the clock tolerance: the moment the token stops being accepted", async () => {
    const exp = Math.floor(Date.now() / 1000) + 60;
    const token = await hsToken({ scope: "opstream.write:*" }, exp);
    assert.equal(
      (await jwtAuthorizer({ secret: SECRET })({ docId: "d", token, request })).expiresAt,
      exp * 1000 + 5000,
    );
    const strict = jwtAuthorizer({ secret: SECRET, clockToleranceSec: 0 });
    assert.equal((await strict({ docId: "d", token, request })).expiresAt, exp * 1000);
  });

  it("checks issuer and audience when configured, and takes scopes from an array claim", async () => {
    const authorize = jwtAuthorizer({
      secret: SECRET,
      issuer: "https://auth",
      audience: "opstream",
      scopeClaim: "scp",
    });
    const good = await new SignJWT({ scp: ["opstream.write:*"] })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("https://auth")
      .setAudience("opstream")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(SECRET));
    assert.equal((await authorize({ docId: "x", token: good, request })).access, "read-write");
    const wrongAudience = await new SignJWT({ scp: ["opstream.write:*"] })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("https://auth")
      .setAudience("someone-else")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(SECRET));
    assert.equal((await authorize({ docId: "x", token: wrongAudience, request })).access, "deny");
  });

  it("verifies ES256 with a PEM public key, and RS256 from a JWKS URL", async () => {
    const es = await generateKeyPair("ES256");
    const byPem = jwtAuthorizer({ publicKey: await exportSPKI(es.publicKey), algorithms: ["ES256"] });
    const esToken = await new SignJWT({ scope: "opstream.write:doc" })
      .setProtectedHeader({ alg: "ES256" })
      .setExpirationTime("1h")
      .sign(es.privateKey);
    assert.equal((await byPem({ docId: "doc", token: esToken, request })).access, "read-write");

    const rs = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(rs.publicKey)), kid: "k1", alg: "RS256" };
    const jwks = createServer((_req, res) =>
      res.setHeader("content-type", "application/json").end(JSON.stringify({ keys: [jwk] })),
    );
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    try {
      const byJwks = jwtAuthorizer({
        jwksUrl: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`,
      });
      const rsToken = await new SignJWT({ scope: "opstream.read:doc" })
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .setExpirationTime("1h")
        .sign(rs.privateKey);
      assert.equal((await byJwks({ docId: "doc", token: rsToken, request })).access, "readonly");
      assert.equal((await byJwks({ docId: "doc", token: esToken, request })).access, "deny");
    } finally {
      await new Promise((resolve) => jwks.close(resolve));
    }
  });

  it("with a public key and no algorithms, verifies tokens of every algorithm the key fits: EC curves, Ed25519, RSA and RSA-PSS", async () => {
    // Node key objects, not WebCrypto keys: one RSA key object signs with every RS* and PS*.
    const keys = {
      ec384: generateKeyPairSync("ec", { namedCurve: "secp384r1" }),
      ec521: generateKeyPairSync("ec", { namedCurve: "secp521r1" }),
      ed25519: generateKeyPairSync("ed25519"),
      rsa: generateKeyPairSync("rsa", { modulusLength: 2048 }),
    };
    for (const [name, tokenAlgs] of [
      ["ec384", ["ES384"]],
      ["ec521", ["ES512"]],
      ["ed25519", ["EdDSA"]],
      ["rsa", ["RS256", "RS512", "PS256"]],
    ] as const) {
      const pair = keys[name];
      const pem = pair.publicKey.export({ type: "spki", format: "pem" }).toString();
      const authorize = jwtAuthorizer({ publicKey: pem });
      for (const alg of tokenAlgs) {
        const token = await new SignJWT({ scope: "opstream.write:doc" })
          .setProtectedHeader({ alg })
          .setExpirationTime("1h")
          .sign(pair.privateKey);
        assert.equal(
          (await authorize({ docId: "doc", token, request })).access,
          "read-write",
          `${alg} token, ${name} key`,
        );
      }
    }
    const other = await generateKeyPair("ES256");
    const foreign = await new SignJWT({ scope: "opstream.write:doc" })
      .setProtectedHeader({ alg: "ES256" })
      .setExpirationTime("1h")
      .sign(other.privateKey);
    const byRsa = jwtAuthorizer({
      publicKey: keys.rsa.publicKey.export({ type: "spki", format: "pem" }).toString(),
    });
    const grant = await byRsa({ docId: "doc", token: foreign, request });
    assert.deepEqual(
      [grant.access, grant.reason],
      ["deny", "unauthenticated"],
      "a token of an algorithm the key does not fit is refused, not an error",
    );
  });

  it("needs exactly one key source", () => {
    assert.throws(
      () => jwtAuthorizer({}),
      (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION),
    );
    assert.throws(
      () => jwtAuthorizer({ secret: SECRET, jwksUrl: "http://x" }),
      (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION),
    );
  });
});
