/**
 * The kube-apiserver's side of talking to kubetx, as files: pure renderers
 * shared by the dev and test control planes and by `kubetx certs`, which
 * writes them for a real cluster's control-plane nodes.
 *
 * - admission webhooks: an AdmissionConfiguration (--admission-control-config-file)
 *   whose WebhookAdmission entries name a kubeconfig with one user per
 *   webhook host, each the client certificate kubetx checks. The apiserver
 *   picks the user by the host it calls: exact `host:port`, then
 *   `*.suffix`, then `*` (k8s.io/apiserver/pkg/util/webhook/authentication.go);
 *   a `service` client config is called as `name.namespace.svc:port`.
 * - the audit webhook backend and the authorization webhook: a kubeconfig
 *   each, naming kubetx's URL, the CA of its serving certificate and the
 *   same client certificate.
 * - an AuthorizationConfiguration (--authorization-config): the cluster's
 *   own authorizers first, then kubetx, asked only about lists and watches
 *   of Transaction records.
 */
import { stringify } from "yaml";

export interface ClientCertificateFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** The user entries of the WebhookAdmission kubeconfig: the same certificate for every host named. */
export function webhookClientsKubeconfig(hosts: readonly string[], client: ClientCertificateFiles): string {
  return stringify({
    apiVersion: "v1", kind: "Config",
    users: hosts.map((name) => ({ name, user: { "client-certificate": client.certFile, "client-key": client.keyFile } })),
  });
}

/** The AdmissionConfiguration: both webhook plugins read the kubeconfig above (an absolute path). */
export function admissionConfiguration(kubeconfigFile: string): string {
  const webhookAdmission = { apiVersion: "apiserver.config.k8s.io/v1", kind: "WebhookAdmissionConfiguration", kubeConfigFile: kubeconfigFile };
  return stringify({
    apiVersion: "apiserver.config.k8s.io/v1", kind: "AdmissionConfiguration",
    plugins: ["ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"].map((name) => ({ name, configuration: webhookAdmission })),
  });
}

/**
 * A kubeconfig for a webhook the apiserver calls by URL: kubetx's /audit or
 * /authorize. `serverName`: the name to check kubetx's certificate for
 * when the URL names an address it does not carry (a Service's ClusterIP,
 * since the apiserver on the host network cannot resolve cluster DNS).
 */
export function webhookKubeconfig(url: string, caFile: string, client: ClientCertificateFiles, serverName?: string): string {
  return stringify({
    apiVersion: "v1", kind: "Config", "current-context": "kubetx",
    clusters: [{ name: "kubetx", cluster: { server: url, "certificate-authority": caFile, ...(serverName ? { "tls-server-name": serverName } : {}) } }],
    users: [{ name: "kube-apiserver", user: { "client-certificate": client.certFile, "client-key": client.keyFile } }],
    contexts: [{ name: "kubetx", context: { cluster: "kubetx", user: "kube-apiserver" } }],
  });
}

/** The requests kubetx's authorization webhook answers; everything else never leaves the apiserver. */
export const AUTHORIZATION_WEBHOOK_MATCH = "has(request.resourceAttributes) && request.resourceAttributes.group == 'kubetx.io' && " +
  "request.resourceAttributes.resource == 'transactions' && request.resourceAttributes.verb in ['list', 'watch']";

/**
 * The AuthorizationConfiguration: `before` (the cluster's own, e.g. Node
 * and RBAC as kubeadm runs them) then kubetx, which can only allow a user
 * their own records. NoOpinion when kubetx cannot answer: users then get
 * what the others grant. Decisions are cached briefly, as a role change is.
 */
export function authorizationConfiguration(kubeconfigFile: string, before: readonly string[]): string {
  return stringify({
    apiVersion: "apiserver.config.k8s.io/v1", kind: "AuthorizationConfiguration",
    authorizers: [
      ...before.map((type) => ({ type, name: type.toLowerCase() })),
      {
        type: "Webhook", name: "kubetx",
        webhook: {
          timeout: "3s", authorizedTTL: "10s", unauthorizedTTL: "10s", failurePolicy: "NoOpinion",
          subjectAccessReviewVersion: "v1", matchConditionSubjectAccessReviewVersion: "v1",
          connectionInfo: { type: "KubeConfigFile", kubeConfigFile: kubeconfigFile },
          matchConditions: [{ expression: AUTHORIZATION_WEBHOOK_MATCH }],
        },
      },
    ],
  });
}
