import { createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { keyAlgorithms, type JwtAuthorizerOptions } from "./transport/jwt-authorizer.js";

/** The JWT flags of `opstream serve` as given (flag, else its OPSTREAM_JWT_* variable). */
export interface JwtFlags {
  readonly secret?: string | undefined;
  readonly publicKey?: string | undefined;
  readonly jwksUrl?: string | undefined;
  readonly issuer?: string | undefined;
  readonly audience?: string | undefined;
  readonly algorithms?: string | undefined;
}

/** The flags naming where keys come from: exactly one of them turns JWT authorization on. */
const KEY_SOURCES = [
  ["secret", "--jwt-secret"],
  ["publicKey", "--jwt-public-key"],
  ["jwksUrl", "--jwt-jwks-url"],
] as const;

/**
 * What `useJwtAuthorization()` gets from the CLI's JWT flags, or undefined when
 * none is given (no JWT authorization). Throws an Error that names the flags when
 * they contradict each other, or when the public key cannot be used, so the node
 * refuses to start instead of refusing every client.
 */
export function jwtOptionsFromFlags(flags: JwtFlags): JwtAuthorizerOptions | undefined {
  const sources = KEY_SOURCES.filter(([key]) => flags[key] !== undefined);
  const checks = (["issuer", "audience", "algorithms"] as const).filter((key) => flags[key] !== undefined);
  if (sources.length > 1) {
    throw new Error(
      `${sources.map(([, flag]) => flag).join(" and ")} are mutually exclusive (flags or their OPSTREAM_JWT_* variables): give one of --jwt-secret, --jwt-public-key or --jwt-jwks-url.`,
    );
  }
  const [source] = sources;
  if (source === undefined) {
    if (checks.length === 0) return undefined;
    throw new Error(
      `--jwt-${checks[0]} needs one of --jwt-secret, --jwt-public-key or --jwt-jwks-url to verify tokens with.`,
    );
  }
  const listed = flags.algorithms
    ?.split(",")
    .map((alg) => alg.trim())
    .filter(Boolean);
  const options: JwtAuthorizerOptions = {
    ...(flags.issuer === undefined ? {} : { issuer: flags.issuer }),
    ...(flags.audience === undefined ? {} : { audience: flags.audience }),
    ...(listed === undefined ? {} : { algorithms: listed }),
  };
  if (flags.secret !== undefined) return { ...options, secret: flags.secret };
  if (flags.jwksUrl !== undefined) {
    if (!URL.canParse(flags.jwksUrl)) throw new Error(`--jwt-jwks-url wants a URL, got ${flags.jwksUrl}`);
    return { ...options, jwksUrl: flags.jwksUrl };
  }
  const pem = readPublicKey(flags.publicKey ?? "");
  checkKeyAlgorithms(pem, listed);
  return { ...options, publicKey: pem };
}

/** `--jwt-public-key`: the PEM itself (a variable holding the key), or the path of a PEM file. */
function readPublicKey(value: string): string {
  const pem = value.trimStart().startsWith("-----BEGIN") ? value : readKeyFile(value);
  if (!pem.includes("-----BEGIN PUBLIC KEY-----")) {
    throw new Error(
      "--jwt-public-key wants a PEM public key (-----BEGIN PUBLIC KEY-----, SPKI); export it with `openssl pkey -pubout`.",
    );
  }
  return pem;
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`--jwt-public-key: cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Refuses, at start-up, a public key that cannot verify JWTs, or `--jwt-algorithms`
 * naming an algorithm the key does not fit (a token of it could never verify).
 */
function checkKeyAlgorithms(pem: string, listed: string[] | undefined): void {
  let key;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new Error(`--jwt-public-key: not a usable public key: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const fitting = keyAlgorithms(key);
  if (fitting.length === 0) {
    throw new Error(
      `--jwt-public-key: a ${key.asymmetricKeyType ?? "unknown"} key cannot verify JWTs (RSA, EC P-256/384/521 or Ed25519).`,
    );
  }
  const unfit = (listed ?? []).filter((alg) => !fitting.includes(alg));
  if (listed?.length === 0 || unfit.length > 0) {
    throw new Error(
      `--jwt-algorithms with --jwt-public-key wants algorithms the key verifies (${fitting.join(", ")}); got ${listed?.join(",") ?? ""}.`,
    );
  }
}
