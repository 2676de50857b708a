/**
 * The webhook configurations kubetx is installed with: what `kubetx dev`,
 * the tests and manifests/webhooks.yaml register. This is the starting
 * point: its object entries cover what the default TransactionPolicy
 * (manifests/policy/default.yaml) covers, and once kubetx runs, sync.ts
 * keeps them in step with the policies that really exist. `clientConfig` is
 * a `url` for the dev cluster (the webhook runs on loopback) and a `service`
 * in a real cluster (manifests/).
 */
import type { KubeObject } from "../kube/types.ts";
import { KUBETX_NAMESPACE } from "../kube/names.ts";
import type { NamedPolicy } from "../policy/combine.ts";
import { POLICY_DEFAULTS } from "../policy/policy.ts";
import type { MatchCondition } from "./coverage.ts";
import { MATCH_CONDITIONS, NAMES_TRANSACTION_CONDITION, objectWebhooks } from "./coverage.ts";

/** Both configurations are named `kubetx`. */
export const WEBHOOK_NAME = "kubetx";
/** Object writes, validating: lock, journal, join a transaction. */
export const VALIDATE_WEBHOOK = "validate.kubetx.io";
/** Object writes, mutating (never patches): records intent. */
export const OBSERVE_WEBHOOK = "observe.kubetx.io";
/** kubetx's own Transaction and TransactionPolicy objects; never narrowed by policy. */
export const RECORDS_WEBHOOK = "records.kubetx.io";
/** Short: the apiserver holds the user's request while it waits for kubetx. */
export const WEBHOOK_TIMEOUT_SECONDS = 5;

export type ClientConfig = { url: string; caBundle: string } | { service: { name: string; namespace: string; path: string; port: number }; caBundle: string };

/** The policies the installed configurations start from: the default one, as manifests/policy/ ships it. */
const STARTING_POLICIES: readonly NamedPolicy[] = [{ name: "default", spec: POLICY_DEFAULTS }];

export function validatingWebhookConfiguration(clientConfig: ClientConfig, policies: readonly NamedPolicy[] = STARTING_POLICIES): KubeObject {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name: WEBHOOK_NAME },
    webhooks: [
      ...objectWebhooks(policies, VALIDATE_WEBHOOK).map((match) => ({
        ...match,
        admissionReviewVersions: ["v1"],
        clientConfig,
        sideEffects: "NoneOnDryRun",
        failurePolicy: "Fail",
        matchPolicy: "Equivalent",
        timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
      })),
      {
        // Transaction records (a user may open and close only their own) and
        // TransactionPolicies (an invalid one is denied, naming the field).
        name: RECORDS_WEBHOOK,
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
export function mutatingWebhookConfiguration(clientConfig: ClientConfig, policies: readonly NamedPolicy[] = STARTING_POLICIES): KubeObject {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: WEBHOOK_NAME },
    webhooks: objectWebhooks(policies, OBSERVE_WEBHOOK, OBSERVE_CONDITIONS).map((match) => ({
      ...match,
      admissionReviewVersions: ["v1"],
      clientConfig,
      // Recording an intent in memory is not a side effect on the cluster.
      sideEffects: "None",
      failurePolicy: "Fail",
      matchPolicy: "Equivalent",
      reinvocationPolicy: "Never",
      timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
    })),
  };
}

/**
 * Both configurations, for a server at `base` (https://host:port) or behind
 * a Service, covering what `policies` cover (by default the default
 * policy's coverage, as manifests/ installs it).
 */
export function webhookConfigurations(clientConfigFor: (path: string) => ClientConfig, policies: readonly NamedPolicy[] = STARTING_POLICIES): KubeObject[] {
  return [validatingWebhookConfiguration(clientConfigFor("/validate"), policies), mutatingWebhookConfiguration(clientConfigFor("/observe"), policies)];
}

export const CONFIGURATION_PATHS = {
  ValidatingWebhookConfiguration: "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
  MutatingWebhookConfiguration: "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
} as const;

export type ConfigurationKind = keyof typeof CONFIGURATION_PATHS;

/** What only `/observe` skips: writes that name their transaction, which it has nothing to record for. */
const OBSERVE_CONDITIONS: readonly MatchCondition[] = [NAMES_TRANSACTION_CONDITION];

/**
 * The configurations whose object entries kubetx keeps in step with the
 * policies, the name each one's entries derive from, and the conditions
 * its entries add to the policy's.
 */
export const MANAGED_CONFIGURATIONS: readonly { readonly kind: ConfigurationKind; readonly baseName: string; readonly extraConditions: readonly MatchCondition[] }[] = [
  { kind: "ValidatingWebhookConfiguration", baseName: VALIDATE_WEBHOOK, extraConditions: [] },
  { kind: "MutatingWebhookConfiguration", baseName: OBSERVE_WEBHOOK, extraConditions: OBSERVE_CONDITIONS },
];

/** The client config of the kubetx Service in a real cluster (manifests/). */
export function serviceClientConfig(path: string, caBundle: string): ClientConfig {
  return { service: { name: "kubetx", namespace: KUBETX_NAMESPACE, path, port: 443 }, caBundle };
}

/** A url client config for a webhook served at https://host:port. */
export function urlClientConfig(base: string, path: string, caBundle: string): ClientConfig {
  return { url: `${base}${path}`, caBundle };
}
