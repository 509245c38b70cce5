// The nginx configuration of samples/cluster: opstream nodes behind nginx as you
// would deploy them (OPERATIONS.md, "Behind a reverse proxy"). `npm run cluster`
// and the specs generate it with the ports they picked; print one with
//
//   npx tsx samples/cluster/nginx-config.ts 8080 127.0.0.1:1235 127.0.0.1:1236
//
// and take its `http { … }` part into your own nginx.conf (or its map, upstream
// and server blocks into a file of /etc/nginx/conf.d/).
import { fileURLToPath } from "node:url";

/** An opstream node nginx sends connections to. */
export interface Upstream {
  readonly host: string;
  readonly port: number;
}

/** Options of {@link nginxConfig}. */
export interface NginxConfigOptions {
  /** The port nginx listens on. */
  readonly listenPort: number;
  /** The address nginx listens on. @default "127.0.0.1" */
  readonly listenHost?: string;
  /** The opstream nodes (any node serves any document: no affinity needed). */
  readonly upstreams: readonly Upstream[];
  /** nginx worker processes. @default 1 (in production: `auto`, one per core) */
  readonly workerProcesses?: number | "auto";
  /**
   * A folder for nginx's temporary files, so that it runs as any user without
   * the package's /var/lib/nginx. @default none: nginx's compiled-in paths
   */
  readonly tempDir?: string;
  /** The `access_log` setting. @default "off" */
  readonly accessLog?: string;
}

/**
 * Seconds nginx keeps a proxied connection open without a byte in either
 * direction. It must be above the server's keep-alive (a frame on every idle
 * socket at least every `transport.keepAliveIntervalMs`, 15 s) and its liveness
 * ping (`transport.pingIntervalMs`, 30 s); nginx's default, 60 s, leaves little
 * room, and too short a value drops idle editors every minute.
 */
export const PROXY_TIMEOUT_SECONDS = 75;

/**
 * A complete nginx.conf for opstream nodes behind nginx: WebSocket upgrades
 * passed through, the client's address appended to `X-Forwarded-For` (which
 * opstream believes from a loopback or private-network peer: `transport.trustProxy`),
 * idle timeouts above the server's keep-alive, and a plain round-robin upstream
 * with no sticky sessions. Run it in the foreground with
 * `nginx -p <dir> -c <file> -g 'daemon off; pid <dir>/nginx.pid; error_log stderr;'`
 * (pid and error log are left to that command line).
 */
export function nginxConfig(options: NginxConfigOptions): string {
  const { listenPort, listenHost = "127.0.0.1", upstreams, workerProcesses = 1 } = options;
  if (upstreams.length === 0) throw new Error("nginxConfig: at least one upstream is needed");
  const temp = options.tempDir;
  const tempPaths =
    temp === undefined
      ? []
      : [
          "  # Temporary files under one folder: runs as any user, outside /var/lib/nginx.",
          ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(
            (kind) => `  ${kind}_temp_path ${temp}/${kind}_temp;`,
          ),
          "",
        ];
  return [
    "# opstream nodes behind nginx (samples/cluster/nginx-config.ts; OPERATIONS.md,",
    '# "Behind a reverse proxy").',
    `worker_processes ${workerProcesses};`,
    "",
    "events {",
    "  # Each client holds one WebSocket, and nginx one more to a node for it.",
    "  worker_connections 4096;",
    "}",
    "",
    "http {",
    ...tempPaths,
    `  access_log ${options.accessLog ?? "off"};`,
    "",
    "  # Upgrade requests keep `Connection: upgrade` towards the node; others close.",
    "  map $http_upgrade $connection_upgrade {",
    "    default upgrade;",
    "    ''      close;",
    "  }",
    "",
    "  # Plain round-robin, no sticky sessions: any node serves any document (a node",
    "  # that does not own it relays to the owner). The shared zone keeps the turn and",
    "  # the failed-node marks common to every worker.",
    "  upstream opstream {",
    "    zone opstream 64k;",
    ...upstreams.map(({ host, port }) => `    server ${host}:${port};`),
    "  }",
    "",
    "  server {",
    `    listen ${listenHost}:${listenPort};`,
    "",
    "    location / {",
    "      proxy_pass http://opstream;",
    "      proxy_http_version 1.1;",
    "      proxy_set_header Upgrade $http_upgrade;",
    "      proxy_set_header Connection $connection_upgrade;",
    "      proxy_set_header Host $http_host;",
    "      # The client's address, appended to what it sent: opstream reads it from the",
    "      # right, so a client cannot forge the entry this proxy adds.",
    "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "      proxy_set_header X-Forwarded-Proto $scheme;",
    "      # Above the server's keep-alive (a frame every 15 s on an idle socket) and",
    "      # its 30 s liveness ping: idle editors stay connected.",
    `      proxy_read_timeout ${PROXY_TIMEOUT_SECONDS}s;`,
    `      proxy_send_timeout ${PROXY_TIMEOUT_SECONDS}s;`,
    "      # A node that is down, or answers 503 (draining on SIGTERM, or full), gets the",
    "      # next node's turn before anything reached the client: nobody notices a",
    "      # rolling restart. A 429 (opstream's per-address cap) is the client's answer.",
    "      proxy_next_upstream error timeout http_502 http_503;",
    "      proxy_connect_timeout 5s;",
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");
}

// Run directly: print the configuration for `<listen port> <host:port>...`.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [listen, ...nodes] = process.argv.slice(2);
  if (listen === undefined || nodes.length === 0) {
    process.stderr.write("usage: tsx samples/cluster/nginx-config.ts <listen port> <host:port>...\n");
    process.exit(2);
  }
  const upstreams = nodes.map((node) => {
    const colon = node.lastIndexOf(":");
    return { host: node.slice(0, colon), port: Number(node.slice(colon + 1)) };
  });
  process.stdout.write(nginxConfig({ listenPort: Number(listen), upstreams, workerProcesses: "auto" }));
}
