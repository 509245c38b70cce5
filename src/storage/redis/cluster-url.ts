import { ErrorCodes, OpStreamError } from "../../errors.js";

/** A Redis Cluster node to connect to first; the client discovers the others from it. */
export interface RedisClusterNode {
  /** Host name or IP address of the node. */
  readonly host: string;
  /** The node's client port (its cluster bus listens on port + 10000). */
  readonly port: number;
}

/** What a `redis-cluster://` URL names: seed nodes and the credentials every node shares. */
export interface RedisClusterUrl {
  readonly nodes: RedisClusterNode[];
  readonly username?: string;
  readonly password?: string;
}

const SCHEME = "redis-cluster://";

/** Whether `value` names a Redis Cluster (`redis-cluster://…`) rather than one Redis server. */
export function isRedisClusterUrl(value: string): boolean {
  return value.startsWith(SCHEME);
}

const invalid = (url: string, why: string): OpStreamError =>
  new OpStreamError(
    ErrorCodes.INVALID_OPTION,
    `Invalid Redis Cluster URL ${JSON.stringify(url.replace(/\/\/[^@/]*@/, "//***@"))}: ${why}. ` +
      `Write redis-cluster://[[user]:password@]host:port[,host:port…], naming one or more nodes of the cluster.`,
    { option: "connectionString" },
  );

/**
 * Parses `redis-cluster://[[user]:password@]host:port[,host:port…]` (WHATWG URLs
 * have no list of hosts, hence by hand). The port defaults to 6379; an IPv6 host
 * is written in brackets. A cluster has only database 0, so a path other than `/`
 * or `/0` is refused, as is anything after it.
 */
export function parseRedisClusterUrl(url: string): RedisClusterUrl {
  if (!isRedisClusterUrl(url)) throw invalid(url, `it does not start with ${SCHEME}`);
  const rest = url.slice(SCHEME.length);
  const at = rest.lastIndexOf("@");
  const userinfo = at === -1 ? undefined : rest.slice(0, at);
  const afterAuth = at === -1 ? rest : rest.slice(at + 1);
  const slash = afterAuth.search(/[/?#]/);
  const hosts = slash === -1 ? afterAuth : afterAuth.slice(0, slash);
  const tail = slash === -1 ? "" : afterAuth.slice(slash);
  if (tail !== "" && tail !== "/" && tail !== "/0")
    throw invalid(url, `"${tail}" follows the hosts (a cluster has only database 0 and takes no parameters)`);
  const nodes = hosts.split(",").map((entry) => {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(entry.trim());
    const port = Number(match?.[2] ?? 6379);
    if (!match?.[1] || port < 1 || port > 65535) throw invalid(url, `"${entry}" is not host:port`);
    return { host: match[1].replace(/^\[(.*)\]$/, "$1"), port };
  });
  if (userinfo === undefined) return { nodes };
  const colon = userinfo.indexOf(":");
  const decode = (part: string): string | undefined => (part === "" ? undefined : decodeURIComponent(part));
  const username = decode(colon === -1 ? userinfo : userinfo.slice(0, colon));
  const password = colon === -1 ? undefined : decode(userinfo.slice(colon + 1));
  return {
    nodes,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
  };
}
