/**
 * kubetx's own namespace and identity (DESIGN.md section 2): the names
 * manifests/ installs, which the dev cluster, the webhook configurations
 * and the CLI all refer to.
 */
export const KUBETX_NAMESPACE = "kubetx-system";
export const KUBETX_SERVICE_ACCOUNT = "kubetx";
export const KUBETX_USERNAME = `system:serviceaccount:${KUBETX_NAMESPACE}:${KUBETX_SERVICE_ACCOUNT}`;
