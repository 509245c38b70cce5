import { strict as assert } from "node:assert";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey } from "jose";
import { jwtOptionsFromFlags } from "../src/cli-jwt.js";
import { documentScope } from "../src/transport/scopes.js";
import { connectClient, synced } from "./support/clients.js";
import { runCli, waitUntilServing, type CliProcess } from "./support/cli-process.js";
import { freePort } from "./support/ports.js";
import { tempDir } from "./support/temp.js";
import { refusedWith } from "./support/upgrade.js";

const SCOPE = documentScope({ access: "read-write", allDocuments: true });

/** A token with every document's write scope, signed with `key` (expires in an hour). */
function sign(key: CryptoKey, alg: string, claims: { iss?: string; aud?: string; kid?: string } = {}) {
  const jwt = new SignJWT({ scope: SCOPE })
    .setProtectedHeader({ alg, ...(claims.kid ? { kid: claims.kid } : {}) })
    .setExpirationTime("1h");
  if (claims.iss) jwt.setIssuer(claims.iss);
  if (claims.aud) jwt.setAudience(claims.aud);
  return jwt.sign(key);
}

/** `opstream serve` on a free port with `args`; resolves once it serves. */
async function serve(args: string[]): Promise<{ cli: CliProcess; url: string }> {
  const port = await freePort();
  const storage = join(tempDir(), "jwt.sqlite");
  const cli = runCli([
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--storage",
    storage,
    "--no-sample",
    ...args,
  ]);
  await waitUntilServing(cli, port);
  return { cli, url: `ws://127.0.0.1:${port}` };
}

/** A stock client that syncs `doc` with `token` (in the query, as y-websocket sends params). */
async function editsWith(url: string, doc: string, token: string): Promise<void> {
  const client = connectClient(url, doc, { params: { token } });
  try {
    await synced(client);
    client.text.insert(0, "signed");
  } finally {
    client.destroy();
  }
}

describe("CLI JWT flags", () => {
  it("--jwt-public-key accepts tokens of the matching private key and refuses foreign and unsigned ones", async () => {
    const own = await generateKeyPair("ES256", { extractable: true });
    const foreign = await generateKeyPair("ES256");
    const keyFile = join(tempDir(), "public.pem");
    writeFileSync(keyFile, await exportSPKI(own.publicKey));
    const { cli, url } = await serve(["--jwt-public-key", keyFile]);
    try {
      await editsWith(url, "pk-doc", await sign(own.privateKey, "ES256"));
      assert.equal(await refusedWith(`${url}/pk-doc?token=${await sign(foreign.privateKey, "ES256")}`), 401);
      const unsigned = new UnsecuredJWT({ scope: SCOPE }).setExpirationTime("1h").encode();
      assert.equal(await refusedWith(`${url}/pk-doc?token=${unsigned}`), 401, "alg none");
      assert.equal(await refusedWith(`${url}/pk-doc`), 401, "no token");
    } finally {
      assert.equal(await cli.stop(), 0, `graceful exit; stderr: ${cli.stderr()}`);
    }
  });

  it("--jwt-jwks-url verifies with the endpoint's keys, and --jwt-issuer/--jwt-audience are required claims", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: "key-1", alg: "RS256", use: "sig" };
    const jwks: Server = createServer((_request, response) => {
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify({ keys: [jwk] }));
    }).listen(0, "127.0.0.1");
    await once(jwks, "listening");
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    const { cli, url } = await serve([
      "--jwt-jwks-url",
      jwksUrl,
      "--jwt-issuer",
      "https://issuer.example",
      "--jwt-audience",
      "opstream",
    ]);
    try {
      const claims = { kid: "key-1", iss: "https://issuer.example", aud: "opstream" };
      await editsWith(url, "jwks-doc", await sign(privateKey, "RS256", claims));
      const otherIssuer = await sign(privateKey, "RS256", { ...claims, iss: "https://elsewhere.example" });
      assert.equal(await refusedWith(`${url}/jwks-doc?token=${otherIssuer}`), 401, "another issuer");
      const otherAudience = await sign(privateKey, "RS256", { ...claims, aud: "someone-else" });
      assert.equal(await refusedWith(`${url}/jwks-doc?token=${otherAudience}`), 401, "another audience");
    } finally {
      assert.equal(await cli.stop(), 0, `graceful exit; stderr: ${cli.stderr()}`);
      jwks.close();
    }
  });

  it("refuses to start with two key sources, naming both", async () => {
    const cli = runCli(["serve", "--port", "0", "--storage", join(tempDir(), "x.sqlite")], {
      OPSTREAM_JWT_SECRET: "a secret of at least thirty-two bytes",
      OPSTREAM_JWT_JWKS_URL: "http://127.0.0.1:1/jwks",
    });
    assert.equal(await cli.exited, 1, "exit code 1");
    assert.match(cli.stderr(), /--jwt-secret and --jwt-jwks-url are mutually exclusive/);
  });

  describe("mapping onto useJwtAuthorization()", () => {
    it("leaves the algorithms to the key unless --jwt-algorithms names some the key fits", async () => {
      const { publicKey } = await generateKeyPair("RS256", { extractable: true });
      const pem = await exportSPKI(publicKey);
      assert.equal(jwtOptionsFromFlags({ publicKey: pem })?.algorithms, undefined, "the key decides");
      assert.deepEqual(jwtOptionsFromFlags({ publicKey: pem, algorithms: "PS256,RS512" })?.algorithms, [
        "PS256",
        "RS512",
      ]);
      assert.throws(
        () => jwtOptionsFromFlags({ publicKey: pem, algorithms: "ES256" }),
        /the key verifies \(RS256, RS384, RS512, PS256, PS384, PS512\); got ES256/,
      );
    });

    it("refuses a claim check without a key source, a private key, and an unreadable file", () => {
      assert.throws(() => jwtOptionsFromFlags({ issuer: "x" }), /--jwt-issuer needs one of --jwt-secret/);
      assert.throws(
        () =>
          jwtOptionsFromFlags({
            publicKey: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
          }),
        /wants a PEM public key/,
      );
      assert.throws(() => jwtOptionsFromFlags({ publicKey: join(tempDir(), "missing.pem") }), /cannot read/);
      assert.equal(jwtOptionsFromFlags({}), undefined, "no flag: no JWT authorization");
    });
  });
});
