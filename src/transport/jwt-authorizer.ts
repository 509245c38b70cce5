import { createPublicKey, type KeyObject } from "node:crypto";
import type { JWTPayload, JWTVerifyGetKey } from "jose";
import { ErrorCodes, OpStreamError } from "../errors.js";
import type { AccessGrant, AuthorizationRequest } from "./authorization.js";
import { accessFromScopes } from "./scopes.js";

/** Options of {@link jwtAuthorizer}: exactly one of `secret`, `publicKey` or `jwksUrl`. */
export interface JwtAuthorizerOptions {
  /** Shared secret for HS256/384/512 tokens. */
  secret?: string | Uint8Array;
  /**
   * A PEM public key (SPKI) for RS*, PS*, ES* or EdDSA tokens. Without
   * `algorithms`, tokens of every algorithm the key's type verifies are accepted
   * (RSA: RS256–512 and PS256–512; EC: the curve's ES*; Ed25519: EdDSA).
   */
  publicKey?: string;
  /** A JWKS endpoint (keys fetched and cached by jose, rotated by `kid`). */
  jwksUrl?: string | URL;
  /**
   * Accepted `alg` values. @default ["HS256", "HS384", "HS512"] with `secret`;
   * every algorithm the key fits with `publicKey`; ["RS256", "ES256"] with `jwksUrl`
   */
  algorithms?: string[];
  /** Required `iss`. @default not checked */
  issuer?: string;
  /** Required `aud`. @default not checked */
  audience?: string;
  /** Leeway for `exp` and `nbf`, in seconds. @default 5 */
  clockToleranceSec?: number;
  /**
   * The claim holding the scopes (`opstream.read:…`, `opstream.write:…`; build them
   * with `documentScope`): a space-separated string or an array. @default "scope"
   */
  scopeClaim?: string;
}

/**
 * What a token grants on one document: `expiresAt` is the token's `exp` plus the
 * clock tolerance (the moment the token stops being accepted), when a live
 * connection is closed; `principal` is its `sub`. A missing, malformed, expired or
 * wrongly signed token is an `unauthenticated` denial, a valid one without a
 * matching scope `forbidden`.
 */
export type JwtGrant = AccessGrant;

/**
 * An authorizer for JSON Web Tokens (jose): the signature, `exp`/`nbf` (and
 * `iss`/`aud` when configured) are verified, then the scopes decide the access
 * (see {@link accessFromScopes}): with a tenant resolver only scopes naming the
 * connection's tenant count, so a token for one tenant opens nothing of another.
 * A missing, malformed, expired or wrongly signed token is denied as
 * `unauthenticated` (y-websocket: HTTP 401), a valid token without a scope for the
 * document as `forbidden` (403). Use it as `useAuthorization(jwtAuthorizer(options))`
 * or `useJwtAuthorization(options)`.
 */
export function jwtAuthorizer(
  options: JwtAuthorizerOptions,
): (request: AuthorizationRequest) => Promise<JwtGrant> {
  const sources = [options.secret, options.publicKey, options.jwksUrl].filter((value) => value !== undefined);
  if (sources.length !== 1) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      "jwtAuthorizer needs exactly one of secret, publicKey or jwksUrl.",
      { option: "secret|publicKey|jwksUrl" },
    );
  }
  const publicKey = options.publicKey === undefined ? undefined : parsePublicKey(options.publicKey);
  const algorithms =
    options.algorithms ??
    (options.secret !== undefined
      ? ["HS256", "HS384", "HS512"]
      : publicKey
        ? keyAlgorithms(publicKey)
        : ["RS256", "ES256"]);
  // jose is ESM-only, so it cannot be required on demand like the drivers: it is
  // imported here, when JWTs are configured (not when opstream is), and has loaded
  // long before the first connection needs it.
  const jose = import("jose");
  const key = keySource(jose, options, publicKey);
  const scopeClaim = options.scopeClaim ?? "scope";
  const verifyOptions = {
    algorithms,
    clockTolerance: options.clockToleranceSec ?? 5,
    ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
    ...(options.audience === undefined ? {} : { audience: options.audience }),
  };
  const toleranceMs = verifyOptions.clockTolerance * 1000;
  const unauthenticated: JwtGrant = Object.freeze({ access: "deny", reason: "unauthenticated" });
  return async ({ token, docId, tenant }) => {
    if (!token) return unauthenticated;
    const { errors, jwtVerify } = await jose;
    let payload: JWTPayload;
    try {
      const resolved = await key;
      payload =
        typeof resolved === "function"
          ? (await jwtVerify(token, resolved, verifyOptions)).payload
          : (await jwtVerify(token, resolved, verifyOptions)).payload;
    } catch (error) {
      if (error instanceof errors.JOSEError) return unauthenticated;
      throw error;
    }
    const access = accessFromScopes(scopesOf(payload[scopeClaim]), docId, tenant);
    return {
      access,
      expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 + toleranceMs : undefined,
      ...(access === "deny" ? { reason: "forbidden" as const } : {}),
      ...(typeof payload.sub === "string" && payload.sub !== "" ? { principal: payload.sub } : {}),
    };
  };
}

function keySource(
  jose: Promise<typeof import("jose")>,
  options: JwtAuthorizerOptions,
  publicKey: KeyObject | undefined,
): Promise<Uint8Array | KeyObject | JWTVerifyGetKey> {
  if (options.secret !== undefined) {
    return Promise.resolve(
      typeof options.secret === "string" ? new TextEncoder().encode(options.secret) : options.secret,
    );
  }
  // A KeyObject, not a key imported for one algorithm: jose checks each token's
  // alg against the key, so every algorithm in `algorithms` the key fits verifies.
  if (publicKey) return Promise.resolve(publicKey);
  const jwksUrl = new URL(String(options.jwksUrl));
  return jose.then(({ createRemoteJWKSet }) => createRemoteJWKSet(jwksUrl));
}

/** `publicKey` as a key object; a PEM that is not a usable public key is an INVALID_OPTION. */
function parsePublicKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      `jwtAuthorizer: publicKey is not a usable PEM public key (SPKI): ${(error as Error).message}`,
      { option: "publicKey" },
    );
  }
  if (keyAlgorithms(key).length === 0) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      `jwtAuthorizer: a ${key.asymmetricKeyType ?? "symmetric"} key cannot verify JWTs (RSA, EC P-256/384/521 or Ed25519).`,
      { option: "publicKey" },
    );
  }
  return key;
}

/** The JWS algorithms a public key of this type (and curve) verifies, its usual one first. */
export function keyAlgorithms(key: KeyObject): string[] {
  const type = key.asymmetricKeyType;
  if (type === "rsa") return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
  if (type === "rsa-pss") return ["PS256", "PS384", "PS512"];
  if (type === "ed25519") return ["EdDSA", "Ed25519"];
  if (type === "ec") {
    const byCurve: Record<string, string> = { prime256v1: "ES256", secp384r1: "ES384", secp521r1: "ES512" };
    const alg = byCurve[key.asymmetricKeyDetails?.namedCurve ?? ""];
    return alg === undefined ? [] : [alg];
  }
  return [];
}

/**
 * The scopes of a claim. No valid scope contains a space (document names are
 * percent-encoded), so splitting a string claim cannot cut one in two; anything
 * else odd (tabs, other grammars) stays one unmatched string rather than a guess.
 */
function scopesOf(claim: unknown): string[] {
  if (typeof claim === "string") return claim.split(" ").filter(Boolean);
  if (Array.isArray(claim)) return claim.filter((scope): scope is string => typeof scope === "string");
  return [];
}
