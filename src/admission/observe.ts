/**
 * POST /observe: a mutating webhook that never patches. It records each
 * transparent write's request uid, so that a write the apiserver rejects
 * before validating admission still fails its transaction.
 */
import type { Intent, IntentTracker } from "../transactions/intents.ts";
import type { AdmissionHandler } from "./handler.ts";
import { allowed } from "./response.ts";
import type { AdmissionRequest, AdmissionResponse } from "./review.ts";
import type { ScopeDeps } from "./scope.ts";
import { fieldManagerOf, scopeOf } from "./scope.ts";

/** Without `intents` (the audit sink reports every failed write) it only answers. */
export function observeHandler(deps: ScopeDeps & { readonly intents: IntentTracker | undefined }): AdmissionHandler {
  return {
    async handle(request: AdmissionRequest): Promise<AdmissionResponse> {
      if (request.dryRun) return allowed(request);
      const scope = await scopeOf(request, deps);
      if (scope.kind !== "transparent") return allowed(request);
      deps.intents?.observe(intentOf(request));
      return allowed(request);
    },
  };
}

/** A `generateName` create has no name yet at mutating admission: it is recorded by its prefix. */
function intentOf(request: AdmissionRequest): Omit<Intent, "observedAt" | "observedAtWall"> {
  const fieldManager = fieldManagerOf(request);
  const name = request.name || request.object?.metadata?.name || "";
  const generateName = name === "" ? request.object?.metadata?.generateName : undefined;
  return {
    requester: request.userInfo,
    ref: { ...request.resource, name, ...(request.namespace ? { namespace: request.namespace } : {}) },
    operation: request.operation,
    ...(fieldManager ? { fieldManager } : {}),
    ...(generateName ? { generateName } : {}),
  };
}
