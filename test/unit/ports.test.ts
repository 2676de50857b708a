import { readFile } from "node:fs/promises";
import net from "node:net";
import { describe, expect, it } from "vitest";
import { candidateRange, freePort, parsePortRange, portInUse } from "../../src/devcluster/ports.ts";

describe("choosing ports for the control plane", () => {
  it("reads the kernel's ephemeral range, and nothing that is not one", () => {
    expect(parsePortRange("32768\t60999\n")).toEqual({ low: 32768, high: 60999 });
    expect(parsePortRange("1024 65535")).toEqual({ low: 1024, high: 65535 });
    expect(parsePortRange("")).toBeUndefined();
    expect(parsePortRange("60999 32768")).toBeUndefined();
    expect(parsePortRange("0 70000")).toBeUndefined();
  });

  it("chooses from the larger side outside the ephemeral range", () => {
    expect(candidateRange({ low: 32768, high: 60999 })).toEqual({ low: 10000, high: 32767 });
    expect(candidateRange({ low: 10500, high: 30000 })).toEqual({ low: 30001, high: 65535 });
  });

  it("gives a port outside the ephemeral range that can be listened on", async () => {
    const ephemeral = parsePortRange(await readFile("/proc/sys/net/ipv4/ip_local_port_range", "utf8").catch(() => "")) ?? { low: 32768, high: 60999 };
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(10000);
      expect(port < ephemeral.low || port > ephemeral.high).toBe(true);
      expect(await portInUse(port)).toBe(false);
    }
  });

  it("says a port is in use while something listens on it", async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const address = server.address();
      if (typeof address !== "object" || !address) throw new Error("no address");
      expect(await portInUse(address.port)).toBe(true);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
