import { beforeAll, describe, expect, it } from "vitest";
import { createNamespace, kubectl, uniqueName } from "../support/cluster.ts";

describe("the dev users", () => {
  const namespace = uniqueName("users");
  beforeAll(() => createNamespace(namespace));

  it("lets alice apply a ConfigMap with kubectl", async () => {
    const manifest = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-alice\n  namespace: ${namespace}\ndata:\n  greeting: hello\n`;
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: manifest });
    expect(applied.stderr).toBe("");
    expect(applied.stdout).toContain("configmap/from-alice created");
    const read = await kubectl(["-n", namespace, "get", "configmap", "from-alice", "-o", "jsonpath={.data.greeting}"], { user: "alice" });
    expect(read.stdout).toBe("hello");
  });

  it("denies alice reading Secrets in kubetx-system", async () => {
    const result = await kubectl(["-n", "kubetx-system", "get", "secrets"], { user: "alice" });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('User "alice" cannot list resource "secrets"');
  });

  it("denies bob creating anything in kubetx-system", async () => {
    const result = await kubectl(["-n", "kubetx-system", "create", "configmap", "sneaky"], { user: "bob" });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("forbidden");
  });
});
