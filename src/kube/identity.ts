/** Who a client is, and what a user may do, as the apiserver's own reviews say. */
import type { KubeClient } from "./client.ts";

/** The user name the apiserver knows this client's credentials by, if it says. */
export async function selfUsername(client: KubeClient): Promise<string | undefined> {
  return (await selfSubject(client))?.username;
}

/** The user name and groups the apiserver knows this client's credentials by, if it says. */
export async function selfSubject(client: KubeClient): Promise<{ username: string; groups: string[] } | undefined> {
  const review = await client.create<{ status?: { userInfo?: { username?: string; groups?: string[] } } }>(
    "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
  );
  const username = review.status?.userInfo?.username;
  return username ? { username, groups: review.status?.userInfo?.groups ?? [] } : undefined;
}

export interface ResourceAttributes {
  readonly verb: string;
  readonly group?: string;
  readonly version?: string;
  readonly resource: string;
  readonly namespace?: string;
  readonly name?: string;
}

/** A user as the authorizer sees them: name, uid, groups and extra (impersonation and webhooks set these). */
export interface Subject {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

/** Whether RBAC lets `user` do it (a SubjectAccessReview; the client needs create on subjectaccessreviews). */
export async function userMay(client: KubeClient, user: string | Subject, attributes: ResourceAttributes): Promise<boolean> {
  const subject = typeof user === "string" ? { username: user } : user;
  const review = await client.create<{ status?: { allowed?: boolean } }>("/apis/authorization.k8s.io/v1/subjectaccessreviews", {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    spec: {
      user: subject.username,
      ...(subject.uid ? { uid: subject.uid } : {}),
      ...(subject.groups ? { groups: subject.groups } : {}),
      ...(subject.extra ? { extra: subject.extra } : {}),
      resourceAttributes: attributes,
    },
  });
  return review.status?.allowed === true;
}
