#!/usr/bin/env node
/**
 * `kubetx`: the server, the local dev cluster, and admin commands.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { caBundle, ensureCertificateAuthority, ensureServingCertificate, serviceDnsNames } from "../devcluster/certs.ts";
import { DEMO_NAMESPACE, startDev } from "../devcluster/dev.ts";
import { KUBETX_NAMESPACE, KUBETX_SERVICE_ACCOUNT } from "../devcluster/identities.ts";
import { ensureChartTools } from "../devcluster/helm.ts";
import { DEFAULT_NODE_DIR, writeNodeFiles } from "../devcluster/node-files.ts";
import { defaultCacheDir, ensureBinaries } from "../devcluster/toolchain.ts";
import type { ConfigInput } from "../config/config.ts";
import { loadConfig } from "../config/config.ts";
import type { ApiserverClients } from "../main.ts";
import { startWebhookServer } from "../main.ts";
import { createLogger } from "../telemetry/logger.ts";
import { UsageError, reportFailure } from "./errors.ts";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const MODULE_DIR = path.join(REPO_ROOT, "controlplane");
const HELM_MODULE_DIR = path.join(REPO_ROOT, "tools", "helm");
const CERT_MANAGER_MODULE_DIR = path.join(REPO_ROOT, "tools", "certmanager-check");

const HELP = `kubetx: all-or-nothing kubectl apply, enforced at admission

Usage:
  kubetx dev [--dir DIR] [--port N] [--webhook-port N] [--metrics-port N] [--no-audit-sink] [ENGINE FLAGS]
      Build (once) and start a local cluster minus the kubelet (etcd,
      kube-apiserver, kube-controller-manager, kube-scheduler: Pods are
      scheduled for but never run) with the kubetx webhook registered, in
      the foreground. Writes DIR/kubeconfig (admin), DIR/alice.kubeconfig,
      DIR/bob.kubeconfig and DIR/audit.log. The apiserver also sends its
      audit events to kubetx's audit sink (/audit), so a plain kubectl apply
      with a misspelt field rolls back; --no-audit-sink leaves that out.
      Prints "kubetx dev: ready" once a write to an opted-in namespace has
      gone through the webhook. Ctrl-C stops every process it started.
      Only the apiserver may call the webhook port: it presents a client
      certificate (DIR/pki/apiserver-webhook-client.crt) through its
      --admission-control-config-file. /metrics is on --metrics-port.
      Defaults: --dir .kubetx/dev, --port 6443 (apiserver), --webhook-port 9443,
      --metrics-port 9090.
  kubetx serve --tls-cert FILE --tls-key FILE (--client-ca FILE | --no-client-auth)
               [--apiserver-client NAME[,NAME]] [--kubeconfig FILE] [--host H] [--port N]
               [--metrics-port N] [--identity NAME] [--audit-sink [--audit-sink-delay MS]] [ENGINE FLAGS]
      Run the admission server and resolver alone (what the Deployment in
      manifests/ runs). Without --kubeconfig it uses the in-cluster service
      account (or KUBECONFIG / ~/.kube/config). Defaults: --host 0.0.0.0,
      --port 8443, --metrics-port 9090, --identity HOSTNAME-PID.
      --client-ca FILE: only the apiserver may call the webhooks and the
      audit sink: it must present a client certificate signed by this CA
      and named --apiserver-client (default kube-apiserver; several
      comma-separated), through its --admission-control-config-file
      (manifests/README.md says how); anyone else gets 401 or 403.
      --no-client-auth: accept any caller, where the apiserver cannot be
      configured; then keep everyone but the control plane out with a
      NetworkPolicy (manifests/components/control-plane-only).
      --metrics-port N: /metrics over plain HTTP on its own port (0: off).
      --audit-sink: receive the apiserver's audit webhook batches at
      /audit (needs --client-ca): writes rejected before admission fail
      their transparent transaction, and members' own outcomes decide
      whether they persisted. --audit-sink-delay: how late an event may
      arrive (default 1000 ms; transparent transactions close this much
      after their quiet window).
  kubetx certs --out DIR [--service NAME] [--namespace NS] [--service-ip IP] [--node-dir DIR]
      Make a CA and a webhook serving certificate (SANs: IP 127.0.0.1 and the
      Service's DNS names) in DIR, and print
      the caBundle (base64 PEM). Also the apiserver's client certificate
      from a CA of its own (DIR/apiserver-client-ca/ca.crt is what kubetx
      serve --client-ca checks) and, in DIR/control-plane/, the files each
      control-plane node needs in --node-dir (default /etc/kubernetes/kubetx):
      the admission configuration and kubeconfig, and with --service-ip the
      audit and authorization webhook kubeconfigs and authorization.yaml.
  kubetx controlplane build
      Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler
      and kubectl into the cache if missing and print where they are.
  kubetx tools build
      Build the chart's test tools into the cache if missing and print where
      they are: helm (the version tools/helm/go.mod pins) and
      certmanager-check (tools/certmanager-check/).

Engine flags:
  --policy-source cluster|flags
                            cluster (default): follow the TransactionPolicy objects,
                            reloading on change; flags: one policy from the flags
                            below, covering namespaces labelled kubetx.io/enabled=true
  --lock-ttl SECONDS        with flags: how long a dead coordinator's locks last (default 15)
  --max-open SECONDS        with flags: roll back a transaction still open after this (default 60)
  --quiet-window MS         with flags: close a count-less transaction after this silence (default 2000);
                            a transparent one closes later by the time a late failure takes to be
                            known: the --audit-sink-delay, or without the sink the intent grace
                            (1000 ms, or half the window if less: then a write /observe saw and
                            /validate never did counts as rejected) plus a --resolver-period
  --resolver-period MS      how often open transactions are checked (default 250)
  --late-write-window MS    after a rollback, how long to hold the locks of members whose
                            write kubetx allowed but has not seen land (another webhook may
                            still hold it); set it to your slowest validating webhook's
                            timeout (default 10000; with --audit-sink the hold ends as soon
                            as those requests' outcomes arrive); with --audit-sink also the
                            longest a write the apiserver received but has not finished
                            keeps its requester's transparent transaction open

Environment:
  KUBETX_CACHE_DIR   where control-plane and tool builds are kept (default ~/.cache/kubetx)
  KUBETX_LOG_LEVEL   pino log level (default info)
`;

type Say = (line: string) => void;

/** The common name of the client certificate kubetx dev gives the apiserver, and the default one kubetx expects. */
const DEFAULT_APISERVER_CLIENT = "kube-apiserver";
/** Prometheus' own default port; /metrics lives apart from the webhook port. */
const DEFAULT_METRICS_PORT = 9090;

/** Flags that tune the transaction engine; the defaults are the built-in policy's. */
const ENGINE_FLAGS = {
  "lock-ttl": { type: "string" },
  "max-open": { type: "string" },
  "quiet-window": { type: "string" },
  "resolver-period": { type: "string" },
  "policy-source": { type: "string" },
  "audit-sink": { type: "boolean" },
  "audit-sink-delay": { type: "string" },
  "late-write-window": { type: "string" },
} as const;

function engineFlags(values: Record<string, string | boolean | undefined>): ConfigInput {
  const pick = (flag: string): string | undefined => (typeof values[flag] === "string" ? values[flag] : undefined);
  const out: { -readonly [K in keyof ConfigInput]: ConfigInput[K] } = {};
  const ttl = pick("lock-ttl");
  if (ttl) out.lockTtlSeconds = ttl;
  const maxOpen = pick("max-open");
  if (maxOpen) out.maxOpenSeconds = maxOpen;
  const quiet = pick("quiet-window");
  if (quiet) out.quietWindowMs = quiet;
  const period = pick("resolver-period");
  if (period) out.resolverPeriodMs = period;
  const source = pick("policy-source");
  if (source) out.policySource = source;
  if (values["audit-sink"] === true) out.auditSink = true;
  const delay = pick("audit-sink-delay");
  if (delay) out.auditSinkDelayMs = delay;
  const late = pick("late-write-window");
  if (late) out.lateWriteMs = late;
  return out;
}

/**
 * Resolves on the first SIGINT or SIGTERM. Later signals are absorbed (a
 * terminal and a wrapper often both forward Ctrl-C), so they cannot cut
 * the shutdown short and orphan a child.
 */
function shutdownSignal(warn: Say): Promise<void> {
  return new Promise<void>((resolve) => {
    let received = false;
    const onSignal = (): void => {
      if (received) warn("kubetx: already stopping; waiting for child processes to exit");
      received = true;
      resolve();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

async function main(argv: string[], say: Say, warn: Say): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "dev":
      return dev(rest, say, warn);
    case "serve":
      return serve(rest, warn);
    case "certs":
      return certs(rest, say);
    case "controlplane":
      return controlplane(rest, say, warn);
    case "tools":
      return tools(rest, say, warn);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      say(HELP);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`kubetx: unknown command '${command}'; run 'kubetx --help'`);
  }
}

function parse<T extends Record<string, { type: "string" | "boolean"; default?: string | boolean }>>(args: string[], options: T): ReturnType<typeof parseArgs<{ options: T; allowPositionals: false }>>["values"] {
  try {
    return parseArgs({ args, options, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(`kubetx: ${(error as Error).message}; run 'kubetx --help'`);
  }
}

/** --client-ca or, said out loud, --no-client-auth: kubetx never accepts any caller by default. */
function callersFlag(clientCa: string | undefined, noClientAuth: boolean, names: string): ApiserverClients | "anyone" {
  if (clientCa && noClientAuth) throw new UsageError("kubetx serve: give either --client-ca or --no-client-auth, not both");
  if (noClientAuth) return "anyone";
  if (!clientCa) {
    throw new UsageError("kubetx serve: --client-ca FILE is required: the CA of the client certificate the apiserver presents to kubetx (manifests/README.md, \"Only the apiserver may call kubetx\"); " +
      "where the apiserver cannot be configured, pass --no-client-auth and apply the NetworkPolicy in manifests/components/control-plane-only");
  }
  const list = names.split(",").map((n) => n.trim()).filter(Boolean);
  if (list.length === 0) throw new UsageError("kubetx serve: --apiserver-client needs at least one certificate name");
  return { caFile: clientCa, names: list };
}

function portFlag(value: string | undefined, flag: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`kubetx: ${flag} must be a port number from 1 to 65535, got '${value}'`);
  return port;
}

function buildBinaries(warn: Say): ReturnType<typeof ensureBinaries> {
  return ensureBinaries({ moduleDir: MODULE_DIR, cacheDir: defaultCacheDir(process.env), onProgress: warn });
}

async function dev(args: string[], say: Say, warn: Say): Promise<number> {
  const values = parse(args, {
    dir: { type: "string", default: ".kubetx/dev" },
    port: { type: "string", default: "6443" },
    "webhook-port": { type: "string", default: "9443" },
    "metrics-port": { type: "string", default: String(DEFAULT_METRICS_PORT) },
    "no-audit-sink": { type: "boolean" },
    ...ENGINE_FLAGS,
  });
  const dir = path.resolve(values.dir);
  const logger = createLogger({ level: process.env.KUBETX_LOG_LEVEL ?? "info" });
  const started = Date.now();
  // Listen for Ctrl-C from the start: a signal during the build or start-up
  // stops everything as soon as start-up returns.
  const stopRequested = shutdownSignal(warn);
  // dev wires the apiserver's audit webhook to kubetx unless told not to.
  const config = loadConfig({ ...engineFlags(values), auditSink: values["no-audit-sink"] !== true });
  const cluster = await startDev({
    config,
    repoRoot: REPO_ROOT,
    dir,
    apiserverPort: portFlag(values.port, "--port"),
    webhookPort: portFlag(values["webhook-port"], "--webhook-port"),
    metricsPort: portFlag(values["metrics-port"], "--metrics-port"),
    binaries: () => buildBinaries(warn),
    logger,
    say,
  });
  say(`kubetx dev: ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  say(`  apiserver  ${cluster.controlPlane.server}`);
  say(`  try:       export PATH=${cluster.binDir}:$PATH KUBECONFIG=${cluster.controlPlane.kubeconfigs.alice}`);
  say(`             kubectl tx apply -n ${DEMO_NAMESPACE} -f examples/app/`);
  say(`             kubectl tx list`);
  say(`  admin:     ${cluster.controlPlane.kubeconfigs.admin}`);
  say(`  users:     ${cluster.controlPlane.kubeconfigs.alice}, ${cluster.controlPlane.kubeconfigs.bob}`);
  say(`  audit log: ${cluster.controlPlane.auditLog}`);
  say(`  metrics:   http://127.0.0.1:${cluster.metricsPort}/metrics`);
  say("Ctrl-C stops everything.");
  await stopRequested;
  say("kubetx dev: stopping");
  await cluster.stop();
  say("kubetx dev: stopped");
  return 0;
}

async function serve(args: string[], warn: Say): Promise<number> {
  const values = parse(args, {
    kubeconfig: { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    host: { type: "string", default: "0.0.0.0" },
    port: { type: "string", default: "8443" },
    "metrics-port": { type: "string", default: String(DEFAULT_METRICS_PORT) },
    identity: { type: "string" },
    "client-ca": { type: "string" },
    "no-client-auth": { type: "boolean" },
    "apiserver-client": { type: "string", default: DEFAULT_APISERVER_CLIENT },
    ...ENGINE_FLAGS,
  });
  for (const flag of ["tls-cert", "tls-key"] as const) {
    if (!values[flag]) throw new UsageError(`kubetx serve: --${flag} is required; run 'kubetx --help'`);
  }
  const logger = createLogger({ level: process.env.KUBETX_LOG_LEVEL ?? "info" });
  const metricsPort = values["metrics-port"] === "0" ? undefined : portFlag(values["metrics-port"], "--metrics-port");
  const server = await startWebhookServer({
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    tls: { certFile: values["tls-cert"] as string, keyFile: values["tls-key"] as string },
    host: values.host,
    port: portFlag(values.port, "--port"),
    ...(metricsPort ? { metricsPort } : {}),
    logger,
    config: loadConfig({ ...engineFlags(values), ...(values.identity ? { identity: values.identity } : {}) }),
    apiserverClients: callersFlag(values["client-ca"], values["no-client-auth"] === true, values["apiserver-client"]),
  });
  await shutdownSignal(warn);
  await server.close();
  return 0;
}

async function certs(args: string[], say: Say): Promise<number> {
  const values = parse(args, {
    out: { type: "string" },
    service: { type: "string", default: KUBETX_SERVICE_ACCOUNT },
    namespace: { type: "string", default: KUBETX_NAMESPACE },
    "service-ip": { type: "string" },
    "node-dir": { type: "string", default: DEFAULT_NODE_DIR },
  });
  if (!values.out) throw new UsageError("kubetx certs: --out DIR is required");
  const out = path.resolve(values.out);
  const ca = await ensureCertificateAuthority(out, "kubetx-webhook-ca");
  const serving = await ensureServingCertificate({
    ca, outDir: out, name: "tls", commonName: `${values.service}.${values.namespace}.svc`,
    dnsNames: serviceDnsNames(values.service, values.namespace), ipAddresses: ["127.0.0.1"],
  });
  const node = await writeNodeFiles({
    out, servingCa: ca, service: values.service, namespace: values.namespace, nodeDir: values["node-dir"],
    ...(values["service-ip"] ? { serviceIp: values["service-ip"] } : {}),
  });
  process.stderr.write(`kubetx certs: CA ${ca.certFile}, serving certificate ${serving.certFile}, key ${serving.keyFile}\n`);
  process.stderr.write(`kubetx certs: the apiserver's client CA ${node.clientCa.certFile}; for each control-plane node's ${values["node-dir"]}: ${node.dir}/ (${node.written.join(", ")})\n`);
  say(await caBundle(ca));
  return 0;
}

async function controlplane(args: string[], say: Say, warn: Say): Promise<number> {
  if (args[0] !== "build") throw new UsageError("kubetx: usage: kubetx controlplane build");
  const binaries = await buildBinaries(warn);
  const rows = [
    ["etcd", binaries.etcd], ["kube-apiserver", binaries.kubeApiserver], ["kube-controller-manager", binaries.kubeControllerManager],
    ["kube-scheduler", binaries.kubeScheduler], ["kubectl", binaries.kubectl],
  ] as const;
  for (const [name, file] of rows) say(`${name.padEnd(25)}${file}`);
  return 0;
}

async function tools(args: string[], say: Say, warn: Say): Promise<number> {
  if (args[0] !== "build") throw new UsageError("kubetx: usage: kubetx tools build");
  const built = await ensureChartTools({
    helmModuleDir: HELM_MODULE_DIR, certManagerModuleDir: CERT_MANAGER_MODULE_DIR, cacheDir: defaultCacheDir(process.env), onProgress: warn,
  });
  say(`helm ${built.helmVersion}  ${built.helm}\ncertmanager-check (cert-manager ${built.certManagerVersion})  ${built.certManagerCheck}`);
  return 0;
}

const say: Say = (line) => process.stdout.write(`${line}\n`);
const warn: Say = (line) => process.stderr.write(`${line}\n`);
main(process.argv.slice(2), say, warn).then(
  (code) => process.exit(code),
  (error: unknown) => process.exit(reportFailure(error, warn)),
);
