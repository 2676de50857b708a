export * from "./client.ts";
export * from "./errors.ts";
export * from "./types.ts";
export * from "./apply.ts";
export * from "./identity.ts";
export * from "./names.ts";
export * from "./ready.ts";
