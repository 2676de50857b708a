/**
 * `kubectl tx version`: the plugin's version, and the version of kubetx
 * installed in the cluster where one read finds it cheaply: the
 * `app.kubernetes.io/version` label the Helm chart puts on the
 * ValidatingWebhookConfiguration `kubetx` (the image tag it runs). Reading
 * it needs get on validatingwebhookconfigurations (an admin); otherwise
 * the server line says why it is unknown. Nothing else is looked up.
 */
import { parseArgs } from "node:util";
import type { KubeClient } from "../../kube/client.ts";
import { Forbidden, NotFound } from "../../kube/errors.ts";
import type { KubeObject } from "../../kube/types.ts";
import type { ReviewDeps } from "./cluster-read.ts";
import { apiMessage, withClient } from "./cluster-read.ts";
import { EXIT, usageError } from "./errors.ts";
import type { ClusterFlags } from "./review-args.ts";

export const VERSION_HELP = `kubectl tx version: the plugin's version, and kubetx's in the cluster

Usage:
  kubectl tx version [--client] [--kubeconfig FILE] [--context NAME]

Prints two lines:
  plugin: 0.1.0          this kubectl-tx (its package.json version)
  server: 0.1.0          kubetx in the cluster: the app.kubernetes.io/version
                         label of the ValidatingWebhookConfiguration kubetx,
                         which the Helm chart sets to the image tag it runs
When the server's version cannot be read in one request, the server line
says why ("unknown (...)": no permission to read webhook configurations,
installed without the label, e.g. from manifests/) or that kubetx is not
installed. Nothing else is looked up, and the exit code is 0 either way
unless the kubeconfig cannot be used (then 1).

Flags:
      --client             print the plugin line only; do not contact the cluster
      --kubeconfig FILE    the kubeconfig to use (default: as kubectl picks it)
      --context NAME       the kubeconfig context to use
`;

/** Where the chart records the version it installed. */
export const VERSION_LABEL = "app.kubernetes.io/version";
const WEBHOOK_CONFIGURATION = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/kubetx";
const VERSION_HELP_COMMAND = "kubectl tx version --help";

export interface VersionOptions extends ClusterFlags {
  readonly clientOnly: boolean;
}

export type VersionCommand =
  | { readonly kind: "help"; readonly text: string }
  | { readonly kind: "version"; readonly options: VersionOptions };

export interface VersionDeps extends ReviewDeps {
  /** This plugin's version (package.json). */
  readonly pluginVersion: string;
}

const FLAGS = { client: { type: "boolean" }, kubeconfig: { type: "string" }, context: { type: "string" }, help: { type: "boolean", short: "h" } } as const;

export function parseVersion(args: readonly string[]): VersionCommand {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof FLAGS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...args], options: FLAGS, allowPositionals: true, strict: true });
  } catch (error) {
    const first = (error as Error).message.split(". ")[0] ?? "bad arguments";
    throw usageError(first.charAt(0).toLowerCase() + first.slice(1), VERSION_HELP_COMMAND);
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: "help", text: VERSION_HELP };
  if (positionals.length > 0) throw usageError(`version takes no arguments, got '${positionals.join(" ")}'`, VERSION_HELP_COMMAND);
  return {
    kind: "version",
    options: {
      clientOnly: values.client ?? false,
      ...(values.kubeconfig === undefined ? {} : { kubeconfig: values.kubeconfig }),
      ...(values.context === undefined ? {} : { context: values.context }),
    },
  };
}

/** The server line, from the webhook configuration or the error reading it. */
export function serverLine(read: { readonly object: KubeObject } | { readonly error: unknown }): string {
  if ("error" in read) {
    if (read.error instanceof NotFound) return "server: kubetx is not installed (no validatingwebhookconfiguration kubetx)";
    if (read.error instanceof Forbidden) return "server: unknown (you may not read validatingwebhookconfigurations; an admin can)";
    return `server: unknown (${apiMessage(read.error)})`;
  }
  const version = read.object.metadata?.labels?.[VERSION_LABEL];
  return version
    ? `server: ${version}`
    : `server: unknown (validatingwebhookconfiguration kubetx has no ${VERSION_LABEL} label; the Helm chart sets it, manifests/ does not)`;
}

async function readServer(client: KubeClient): Promise<string> {
  try {
    return serverLine({ object: await client.get<KubeObject>(WEBHOOK_CONFIGURATION) });
  } catch (error) {
    return serverLine({ error });
  }
}

export async function runVersion(command: VersionCommand, deps: VersionDeps): Promise<number> {
  if (command.kind === "help") {
    deps.say(command.text);
    return EXIT.ok;
  }
  deps.say(`plugin: ${deps.pluginVersion}`);
  if (command.options.clientOnly) return EXIT.ok;
  deps.say(await withClient(command.options, deps, readServer));
  return EXIT.ok;
}
