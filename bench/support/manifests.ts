/** One YAML file of N ConfigMaps, as a user would keep them in a repo. */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { stringify } from "yaml";

export async function configMapFile(dir: string, namespace: string, count: number, annotations?: Record<string, string>): Promise<string> {
  const docs = Array.from({ length: count }, (_, i) => stringify({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `app-config-${String(i).padStart(3, "0")}`, namespace, ...(annotations ? { annotations } : {}) },
    data: { "settings.yaml": `replicas: ${i % 5}\nlogLevel: info\nfeature-${i}: enabled\n` },
  }));
  const file = path.join(dir, `${namespace}.yaml`);
  await writeFile(file, docs.join("---\n"));
  return file;
}
