import type { AdmissionRequest, AdmissionResponse } from "./review.ts";

/** One seam per webhook path: the HTTP layer calls it and never looks inside. */
export interface AdmissionHandler {
  handle(request: AdmissionRequest, signal: AbortSignal): Promise<AdmissionResponse>;
}
