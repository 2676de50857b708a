/** Guards writes of TransactionPolicy objects: an invalid one is denied with every bad field named. */
import { validatePolicySpec } from "../policy/validate.ts";
import { allowed, denied } from "./response.ts";
import type { AdmissionRequest, AdmissionResponse } from "./review.ts";

export function guardPolicy(request: AdmissionRequest): AdmissionResponse {
  if (request.operation === "DELETE") return allowed(request, { auditAnnotations: { decision: "policy" } });
  const check = validatePolicySpec(request.object?.spec);
  if (check.ok) return allowed(request, { auditAnnotations: { decision: "policy" } });
  return denied(request, `TransactionPolicy ${request.name ?? ""} is invalid: ${check.problems.join("; ")}. Fix these fields and apply again`, {
    auditAnnotations: { decision: "denied" },
  });
}
