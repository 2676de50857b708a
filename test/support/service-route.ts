/**
 * Routes kubetx's Service to a kubetx engine in the test process, as the
 * install tests (manifests/ and the Helm chart) need: there is no kubelet,
 * so the Deployment never runs a pod, and the apiserver (started with
 * --enable-aggregator-routing=true) reaches a webhook's `service` through
 * the Service's EndpointSlices.
 */
import { networkInterfaces } from "node:os";
import { KUBETX_NAMESPACE } from "../../src/devcluster/identities.ts";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import { createOrReplace } from "../../src/kube/index.ts";

const SERVICE = `/api/v1/namespaces/${KUBETX_NAMESPACE}/services/kubetx`;
const SLICES = `/apis/discovery.k8s.io/v1/namespaces/${KUBETX_NAMESPACE}/endpointslices`;
const BINDINGS = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";
/** The dev cluster's "kubetx is cluster-admin" binding (src/devcluster/bootstrap.ts). */
const DEV_BINDING = `${BINDINGS}/kubetx-dev`;

/**
 * An address of this machine that an EndpointSlice may hold. The apiserver
 * refuses loopback addresses in EndpointSlices ("may not be in the loopback
 * range"), so the engine cannot listen on 127.0.0.1 here. The apiserver
 * checks the certificate for the Service's DNS name, not for this address.
 */
export function machineAddress(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    const found = addresses?.find((a) => a.family === "IPv4" && !a.internal);
    if (found) return found.address;
  }
  throw new Error("this machine has no non-loopback IPv4 address for the test EndpointSlice to point at");
}

/**
 * Makes the Service selector-less (its endpoints are written by hand, not
 * derived from pods) and points its port `https` at host:port through an
 * EndpointSlice named `slice`.
 */
export async function routeServiceTo(admin: KubeClient, slice: string, host: string, port: number): Promise<void> {
  await admin.mergePatch(SERVICE, { spec: { selector: null } });
  await createOrReplace(admin, SLICES, {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: slice, namespace: KUBETX_NAMESPACE, labels: { "kubernetes.io/service-name": "kubetx" } },
    addressType: "IPv4",
    endpoints: [{ addresses: [host], conditions: { ready: true } }],
    // The name of the Service port (443 -> targetPort https) that the webhooks name.
    ports: [{ name: "https", protocol: "TCP", port }],
  });
}

export async function removeSlice(admin: KubeClient, slice: string): Promise<void> {
  await admin.delete(`${SLICES}/${slice}`).catch(() => undefined);
}

/**
 * Removes the dev cluster's cluster-admin binding of kubetx's identity, so
 * only the RBAC under test counts; returns it for restoreDevBinding.
 */
export async function removeDevBinding(admin: KubeClient): Promise<KubeObject> {
  const binding = await admin.get<KubeObject>(DEV_BINDING);
  await admin.delete(DEV_BINDING);
  return binding;
}

export async function restoreDevBinding(admin: KubeClient, binding: KubeObject | undefined): Promise<void> {
  if (!binding) return;
  const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, managedFields: _mf, ...metadata } = binding.metadata ?? {};
  await createOrReplace(admin, BINDINGS, { ...binding, metadata });
}
