import type { Logger } from "../../src/telemetry/logger.ts";
import type { AdmissionHandler } from "../../src/admission/handler.ts";
import { allowed } from "../../src/admission/response.ts";
import type { AdmissionRequest, AdmissionResponse } from "../../src/admission/review.ts";

/** Allows every request and logs who wrote what; never the object body. */
export function allowAllHandler(logger: Logger): AdmissionHandler {
  return {
    handle(request: AdmissionRequest): Promise<AdmissionResponse> {
      logger.info(
        {
          uid: request.uid,
          operation: request.operation,
          resource: request.resource,
          namespace: request.namespace,
          name: request.name,
          user: request.userInfo.username,
          dryRun: request.dryRun ?? false,
        },
        "admission review",
      );
      return Promise.resolve(allowed(request));
    },
  };
}
