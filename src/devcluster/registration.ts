/**
 * The webhook configurations kubetx registers. `clientConfig` is a `url`
 * for the dev cluster (the webhook runs on loopback) and a `service` in a
 * real cluster (manifests/).
 */
import type { KubeObject } from "../kube/types.ts";
import { KUBETX_NAMESPACE, KUBETX_USERNAME } from "./identities.ts";

export const WEBHOOK_NAME = "kubetx";
/** Short: the apiserver holds the user's request while it waits for kubetx. */
export const WEBHOOK_TIMEOUT_SECONDS = 5;

export type ClientConfig = { url: string; caBundle: string } | { service: { name: string; namespace: string; path: string; port: number }; caBundle: string };

/** CEL conditions that skip calls kubetx never needs: its own writes and Events. */
export const MATCH_CONDITIONS = [
  { name: "not-kubetx-itself", expression: `request.userInfo.username != '${KUBETX_USERNAME}'` },
  { name: "not-events", expression: "request.resource.resource != 'events'" },
];

/**
 * Never the control plane's own namespaces: kube-node-lease carries every
 * node's heartbeat, and a kubetx outage must not be able to stall those.
 */
export const EXCLUDED_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease", KUBETX_NAMESPACE];

const NAMESPACE_SELECTOR = {
  matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: EXCLUDED_NAMESPACES }],
};

export function validatingWebhookConfiguration(clientConfig: ClientConfig): KubeObject {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name: WEBHOOK_NAME },
    webhooks: [
      {
        name: "validate.kubetx.io",
        admissionReviewVersions: ["v1"],
        clientConfig,
        rules: [{ operations: ["CREATE", "UPDATE", "DELETE"], apiGroups: ["*"], apiVersions: ["*"], resources: ["*"], scope: "Namespaced" }],
        namespaceSelector: NAMESPACE_SELECTOR,
        matchConditions: MATCH_CONDITIONS,
        sideEffects: "NoneOnDryRun",
        failurePolicy: "Fail",
        matchPolicy: "Equivalent",
        timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
      },
      {
        // Transaction records (a user may open and close only their own) and
        // TransactionPolicies (an invalid one is denied, naming the field).
        name: "records.kubetx.io",
        admissionReviewVersions: ["v1"],
        clientConfig,
        rules: [{ operations: ["CREATE", "UPDATE", "DELETE"], apiGroups: ["kubetx.io"], apiVersions: ["*"], resources: ["transactions", "transactionpolicies"], scope: "Cluster" }],
        matchConditions: [MATCH_CONDITIONS[0]],
        sideEffects: "None",
        failurePolicy: "Fail",
        matchPolicy: "Equivalent",
        timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
      },
    ],
  };
}

/** The mutating webhook that only observes: it never patches, it records each write's uid. */
export function mutatingWebhookConfiguration(clientConfig: ClientConfig): KubeObject {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: WEBHOOK_NAME },
    webhooks: [
      {
        name: "observe.kubetx.io",
        admissionReviewVersions: ["v1"],
        clientConfig,
        rules: [{ operations: ["CREATE", "UPDATE", "DELETE"], apiGroups: ["*"], apiVersions: ["*"], resources: ["*"], scope: "Namespaced" }],
        namespaceSelector: NAMESPACE_SELECTOR,
        matchConditions: MATCH_CONDITIONS,
        // Recording an intent in memory is not a side effect on the cluster.
        sideEffects: "None",
        failurePolicy: "Fail",
        matchPolicy: "Equivalent",
        reinvocationPolicy: "Never",
        timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
      },
    ],
  };
}

/** Both configurations, for a server at `base` (https://host:port) or behind a Service. */
export function webhookConfigurations(clientConfigFor: (path: string) => ClientConfig): KubeObject[] {
  return [validatingWebhookConfiguration(clientConfigFor("/validate")), mutatingWebhookConfiguration(clientConfigFor("/observe"))];
}

export const CONFIGURATION_PATHS = {
  ValidatingWebhookConfiguration: "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
  MutatingWebhookConfiguration: "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
} as const;

/** The client config of the kubetx Service in a real cluster (manifests/). */
export function serviceClientConfig(path: string, caBundle: string): ClientConfig {
  return { service: { name: "kubetx", namespace: KUBETX_NAMESPACE, path, port: 443 }, caBundle };
}

/** A url client config for a webhook served at https://host:port. */
export function urlClientConfig(base: string, path: string, caBundle: string): ClientConfig {
  return { url: `${base}${path}`, caBundle };
}
