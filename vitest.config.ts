import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    reporters: ["default", ["json", { outputFile: ".reports/vitest.json" }]],
    projects: [
      {
        // Some unit tests start openssl or a CLI as a child process: on a loaded 2-core machine that can take more than vitest's default 5 s.
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 30_000 },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          // One control plane for the whole run, started before any file.
          globalSetup: ["test/support/global-setup.ts", "test/support/helm-setup.ts"],
          // Files share one apiserver and one webhook registration: one at a time.
          fileParallelism: false,
          testTimeout: 90_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
