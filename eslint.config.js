// Lint rules follow STYLE.md: small units, no floating promises, explicit
// return types at module boundaries, no `any` crossing a module edge.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", ".kubetx/", ".reports/", "webhook-certs/out/", "controlplane/", ".ci/", "chaos/results/", "dist/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/explicit-module-boundary-types": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", ignoreRestSiblings: true }],
      complexity: ["error", 12],
      "max-depth": ["error", 3],
      "max-params": ["error", 4],
      "max-statements": ["error", 25],
    },
  },
  {
    // Tests tell a story step by step; long test bodies are fine.
    files: ["test/**/*.ts", "bench/**/*.ts"],
    rules: { "max-statements": "off", "max-params": "off", "@typescript-eslint/explicit-module-boundary-types": "off" },
  },
  {
    files: ["eslint.config.js"],
    ...tseslint.configs.disableTypeChecked,
  },
);
