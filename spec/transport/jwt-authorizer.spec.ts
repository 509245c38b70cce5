import { strict as assert } from "node:assert";
import type { IncomingMessage } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from "jose";
import { ErrorCodes, isOpStreamError } from "../../src/index.js";
import { accessFromScopes, jwtAuthorizer } from "../../src/transport/jwt-authorizer.js";

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
    assert.equal(accessFromScopes(["opstream:*"], "a"), "read-write");
    assert.equal(accessFromScopes(["opstream:a"], "a"), "read-write");
    assert.equal(accessFromScopes(["opstream:a"], "b"), "deny");
    assert.equal(accessFromScopes(["opstream:a:read"], "a"), "readonly");
    assert.equal(accessFromScopes(["opstream:*:read"], "z"), "readonly");
    assert.equal(accessFromScopes(["opstream:a:read", "opstream:a"], "a"), "read-write");
    assert.equal(accessFromScopes(["other:*"], "a"), "deny");
  });

  it("verifies HS256 tokens: scopes honoured, expiry reported, bad/expired/missing tokens denied", async () => {
    const authorize = jwtAuthorizer({ secret: SECRET });
    const token = await hsToken({ scope: "opstream:doc-a opstream:doc-b:read" });
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
    const expired = await hsToken({ scope: "opstream:*" }, Math.floor(Date.now() / 1000) - 60);
    assert.equal((await authorize({ docId: "doc-a", token: expired, request })).access, "deny");
    const forged = await new SignJWT({ scope: "opstream:*" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("another-secret-of-at-least-32-bytes!!"));
    assert.deepEqual(await authorize({ docId: "doc-a", token: forged, request }), {
      access: "deny",
      reason: "unauthenticated",
    });
  });

  it("reports expiresAt as exp plus the clock tolerance: the moment the token stops being accepted", async () => {
    const exp = Math.floor(Date.now() / 1000) + 60;
    const token = await hsToken({ scope: "opstream:*" }, exp);
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
    const good = await new SignJWT({ scp: ["opstream:*"] })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("https://auth")
      .setAudience("opstream")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(SECRET));
    assert.equal((await authorize({ docId: "x", token: good, request })).access, "read-write");
    const wrongAudience = await new SignJWT({ scp: ["opstream:*"] })
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
    const esToken = await new SignJWT({ scope: "opstream:doc" })
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
      const rsToken = await new SignJWT({ scope: "opstream:doc:read" })
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .setExpirationTime("1h")
        .sign(rs.privateKey);
      assert.equal((await byJwks({ docId: "doc", token: rsToken, request })).access, "readonly");
      assert.equal((await byJwks({ docId: "doc", token: esToken, request })).access, "deny");
    } finally {
      await new Promise((resolve) => jwks.close(resolve));
    }
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
