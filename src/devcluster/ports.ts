import { readFile } from "node:fs/promises";
import net from "node:net";

/** Where ports are chosen when the kernel does not say its ephemeral range: below Linux's default 32768-60999. */
const FALLBACK_EPHEMERAL = { low: 32768, high: 60999 } as const;
/** The lowest port chosen: above the well-known and most registered services' ports. */
const LOWEST_CHOSEN = 10000;
/** Random ports tried before asking the kernel for any free port. */
const ATTEMPTS = 50;

export interface PortRange {
  readonly low: number;
  readonly high: number;
}

/** Parses /proc/sys/net/ipv4/ip_local_port_range ("32768\t60999\n"); undefined when it is not two ports. */
export function parsePortRange(text: string): PortRange | undefined {
  const [low, high] = text.trim().split(/\s+/).map(Number);
  if (!Number.isInteger(low) || !Number.isInteger(high) || low === undefined || high === undefined) return undefined;
  if (low < 1 || high > 65535 || low > high) return undefined;
  return { low, high };
}

/** The ports outside `ephemeral` that freePort chooses from: the larger side of it, above LOWEST_CHOSEN. */
export function candidateRange(ephemeral: PortRange): PortRange {
  const below = { low: LOWEST_CHOSEN, high: ephemeral.low - 1 };
  const above = { low: Math.max(LOWEST_CHOSEN, ephemeral.high + 1), high: 65535 };
  return below.high - below.low >= above.high - above.low ? below : above;
}

async function ephemeralRange(): Promise<PortRange> {
  const text = await readFile("/proc/sys/net/ipv4/ip_local_port_range", "utf8").catch(() => "");
  return parsePortRange(text) ?? FALLBACK_EPHEMERAL;
}

/**
 * A port on 127.0.0.1 that nothing listens on right now, for a process
 * started later to listen on. It is chosen outside the kernel's ephemeral
 * range: a port the kernel handed out (listen on port 0) is the kind it
 * also gives the outgoing connections made in the seconds before that
 * process binds (the apiserver's to etcd, kubectl's), and one of those
 * holding it makes the bind fail with "address already in use".
 */
export async function freePort(): Promise<number> {
  const range = candidateRange(await ephemeralRange());
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = range.low + Math.floor(Math.random() * (range.high - range.low + 1));
    if (await bindable(port)) return port;
  }
  return anyPort();
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function anyPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** True when something already listens on 127.0.0.1:port. */
export async function portInUse(port: number): Promise<boolean> {
  return !(await bindable(port));
}
