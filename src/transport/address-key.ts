import { isIPv6 } from "node:net";

/**
 * The key a client address is counted under by the per-address connection cap.
 * An IPv6 host usually holds a whole /64 (SLAAC, privacy addresses), so per
 * exact address one client could open a near-unlimited number of connections:
 * IPv6 addresses are masked to `ipv6PrefixLength` bits (128 = the address),
 * written `groups/prefix`. An IPv4-mapped address (`::ffff:192.0.2.1`, what a
 * dual-stack socket reports for an IPv4 client) counts as the IPv4 address. A
 * zone (`%eth0`) is dropped. Anything else (IPv4, or whatever a custom
 * `clientAddress` returns) is its own key. Applied to its own result it changes
 * nothing.
 */
export function addressKey(address: string, ipv6PrefixLength: number): string {
  const zone = address.indexOf("%");
  const bare = zone === -1 ? address : address.slice(0, zone);
  if (!isIPv6(bare)) return address;
  const groups = ipv6Groups(bare);
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    const [high = 0, low = 0] = groups.slice(6);
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join(".");
  }
  const masked = groups.map((group, i) => group & groupMask(ipv6PrefixLength - 16 * i));
  const text = masked.map((group) => group.toString(16)).join(":");
  return ipv6PrefixLength >= 128 ? text : `${text}/${ipv6PrefixLength}`;
}

/** The mask of a 16-bit group of which the first `bits` (clamped to 0–16) are kept. */
function groupMask(bits: number): number {
  const kept = Math.min(16, Math.max(0, bits));
  return (0xffff << (16 - kept)) & 0xffff;
}

/** The 8 groups of an address `isIPv6` accepted (so well-formed): `::` expanded, a dotted tail as two groups. */
function ipv6Groups(address: string): number[] {
  const parse = (part: string): number[] =>
    part === ""
      ? []
      : part.split(":").flatMap((group) => (group.includes(".") ? ipv4Groups(group) : [parseInt(group, 16)]));
  const gap = address.indexOf("::");
  if (gap === -1) return parse(address);
  const left = parse(address.slice(0, gap));
  const right = parse(address.slice(gap + 2));
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function ipv4Groups(dotted: string): number[] {
  const [a = 0, b = 0, c = 0, d = 0] = dotted.split(".").map(Number);
  return [(a << 8) | b, (c << 8) | d];
}
