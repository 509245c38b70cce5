import { SignJWT } from "jose";

/** The secret the specs' `useJwtAuthorization({ secret })` servers verify with. */
export const JWT_SECRET = "spec-secret-of-at-least-thirty-two-bytes!";

/**
 * An HS256 token with `scope` (scopes built with `documentScope`, joined with
 * spaces), expiring at `exp` (seconds since the epoch; default in an hour).
 */
export function signToken(scope: string, exp = Math.floor(Date.now() / 1000) + 3600): Promise<string> {
  return new SignJWT({ scope })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(JWT_SECRET));
}
