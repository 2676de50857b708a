/**
 * The composition root: the one place that builds the logger's consumers,
 * clients, stores, the coordinator and the resolver, and wires them into
 * the admission server.
 */
import type { AdmissionRequest, AdmissionResponse } from "./admission/review.ts";
import { observeHandler } from "./admission/observe.ts";
import { validateHandler } from "./admission/validate.ts";
import type { EngineConfig } from "./config/config.ts";
import { ConfigError, flagPolicies } from "./config/config.ts";
import { Journal } from "./journal/journal.ts";
import { createKubeClient, selfUsername, waitForApiserverReady } from "./kube/index.ts";
import { countingRequestPath } from "./kube/request-path.ts";
import type { KubeClient } from "./kube/index.ts";
import { SessionStore } from "./locks/sessions.ts";
import { LockStore } from "./locks/store.ts";
import { NamespaceLabels } from "./policy/namespaces.ts";
import type { Limits } from "./policy/policy.ts";
import type { PolicySource } from "./policy/watch.ts";
import { POLICIES_PATH, PolicyWatcher, staticPolicies } from "./policy/watch.ts";
import { kubeRollbackEvents } from "./resolver/events.ts";
import { Resolver, effectiveQuietMs } from "./resolver/resolver.ts";
import type { ResolverOptions } from "./resolver/resolver.ts";
import { createApp } from "./server/app.ts";
import type { RunningServer, TlsFiles } from "./server/https.ts";
import { listenHttps } from "./server/https.ts";
import { listenMetrics } from "./server/metrics.ts";
import type { Clock } from "./telemetry/clock.ts";
import { pause, systemClock } from "./telemetry/clock.ts";
import type { Logger } from "./telemetry/logger.ts";
import type { Metrics } from "./telemetry/metrics.ts";
import { createMetrics } from "./telemetry/metrics.ts";
import { Coordinator } from "./transactions/coordinator.ts";
import { IntentTracker, reachedValidationByLocks } from "./transactions/intents.ts";
import { failRequester } from "./transactions/failures.ts";
import { CachedAccess } from "./transactions/access.ts";
import type { RequesterFailureDeps } from "./transactions/failures.ts";
import type { ScopeDeps } from "./admission/scope.ts";
import { auditSink } from "./admission/audit-sink.ts";
import { decideRecordAccess } from "./admission/record-access.ts";
import { clientCertificateCheck } from "./server/callers.ts";
import { Sessions } from "./transactions/sessions.ts";
import { TransactionStore } from "./transactions/store.ts";
import { WebhookSync } from "./webhooks/sync.ts";
import { ConnectionGaps } from "./kube/gaps.ts";
import { Informer } from "./kube/informer.ts";
import { LABEL_RESOLVED, LABEL_ROLE, LABEL_TRANSACTION, transactionPath } from "./transactions/model.ts";
import { LOCK_ROLE } from "./locks/record.ts";
import { Pulse } from "./locks/pulse.ts";
import { Discovery } from "./kube/discovery.ts";
import { policyMode } from "./admission/scope.ts";
import type { Transaction } from "./transactions/model.ts";

export interface WebhookServerOptions {
  /** Kubeconfig of kubetx's own identity; absent: in-cluster service account or the default chain. */
  readonly kubeconfig?: string;
  readonly tls: TlsFiles;
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  readonly config: EngineConfig;
  readonly clock?: Clock;
  /** `calls`: apiserver calls made while answering (kube/request-path.ts). */
  readonly onReview?: (path: string, request: AdmissionRequest, response: AdmissionResponse, calls: number) => void;
  /** How long each step of a webhook coverage change is given to reach the apiserver (webhooks/sync.ts DEFAULT_SETTLE_MS). */
  readonly webhookSettleMs?: number;
  /** How often to check the certificate files for a rotation (default 10 s). */
  readonly certReloadMs?: number;
  /** What /metrics serves; a fresh registry when absent. */
  readonly metrics?: Metrics;
  /** Serve /metrics over plain HTTP on this port of `host` (0: any free one); absent: not served. */
  readonly metricsPort?: number;
  /** Wraps the apiserver client every part of kubetx uses: tests hold a chosen call to show a race. */
  readonly wrapClient?: (client: KubeClient) => KubeClient;
  /**
   * Who may call the admission paths (/validate, /observe) and the audit
   * sink: the apiserver, by a client certificate from `caFile` named one
   * of `names` (its WebhookAdmission kubeconfig and its audit webhook
   * kubeconfig present it); anyone else is refused before the body is
   * read. "anyone" only where the apiserver cannot be configured to
   * present a certificate: then a NetworkPolicy must keep everyone but the
   * control plane out (manifests/components/control-plane-only), and the
   * audit sink cannot run.
   */
  readonly apiserverClients: ApiserverClients | "anyone";
}

/** The CA of the client certificate the apiserver presents to kubetx, and the names it may carry. */
export interface ApiserverClients {
  readonly caFile: string;
  readonly names: readonly string[];
}

export interface WebhookServer extends RunningServer {
  readonly client: KubeClient;
  readonly resolver: Resolver;
  /** Whether both webhook configurations are as the policies want them (a sync pass would write nothing). */
  webhooksInStep(): Promise<boolean>;
  /** Where /metrics is served, when it is. */
  readonly metricsPort?: number;
}

/** kubetx's own user name, from the identity in its kubeconfig. */
async function whoAmI(client: KubeClient): Promise<string> {
  const name = await selfUsername(client);
  if (!name) throw new Error("kubetx: the apiserver did not say who kubetx's kubeconfig user is");
  return name;
}

/** Calls `work` every `periodMs` until `signal` aborts; never overlaps itself. */
async function every(periodMs: number, signal: AbortSignal, work: () => Promise<void>): Promise<void> {
  while (!signal.aborted) {
    await work();
    await pause(periodMs, signal);
  }
}

/**
 * Starts watching the policies (when they come from the cluster) and keeps
 * the webhook configurations in step with them, so that an outage of kubetx
 * blocks only the writes a policy covers. `running` resolves once `signal`
 * aborts.
 */
function runPolicies(
  { policies, client, logger, settleMs }: { policies: PolicySource; client: KubeClient; logger: Logger; settleMs: number | undefined },
  signal: AbortSignal,
): { webhooks: WebhookSync; running: Promise<void> } {
  if (policies instanceof PolicyWatcher) void policies.run(signal);
  const webhooks = new WebhookSync({ client, logger, policies: () => policies.view().policies, ready: () => policies.ready, ...(settleMs === undefined ? {} : { settleMs }) });
  const stopListening = policies.onChange(() => webhooks.trigger());
  return { webhooks, running: webhooks.run(signal).finally(stopListening) };
}

/** Every long-lived part of one kubetx process, built from its options. */
interface Engine {
  readonly client: KubeClient;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly store: TransactionStore;
  readonly locks: LockStore;
  readonly policies: PolicySource;
  readonly coordinator: Coordinator;
  readonly namespaces: NamespaceLabels;
  readonly sessions: Sessions;
  readonly failures: RequesterFailureDeps;
  /** Writes seen at /observe: only without the audit sink, which sees every failed write itself (and is not fooled by a slow /validate). */
  readonly intents: IntentTracker | undefined;
  readonly resolver: Resolver;
  /** Watch-backed caches the request path reads instead of the apiserver. */
  readonly caches: readonly { readonly path: string; run(signal: AbortSignal): Promise<void> }[];
  /** Proves how fresh the Lease cache is, for prepared creates admitted from memory. */
  readonly pulse: Pulse;
}

/** kubetx's client, counting the calls each review makes (kube/request-path.ts). */
async function engineClient(options: WebhookServerOptions): Promise<KubeClient> {
  const created = await createKubeClient(options.kubeconfig);
  return countingRequestPath(options.wrapClient ? options.wrapClient(created) : created);
}

/** Policies from the command line's flags when it gives them, else the TransactionPolicy objects, watched. */
function policySource(config: EngineConfig, client: KubeClient, logger: Logger): PolicySource {
  const fromFlags = flagPolicies(config);
  return fromFlags ? staticPolicies(fromFlags) : new PolicyWatcher(client, logger);
}

async function buildEngine(options: WebhookServerOptions): Promise<Engine> {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  const metrics = options.metrics ?? createMetrics();
  const client = await engineClient(options);
  // Either cache failing to reach the apiserver marks a gap the resolver must not commit across (see ConnectionGaps).
  const gaps = new ConnectionGaps(clock);
  const records = new Informer<Transaction>({ client, logger, gaps, what: "unresolved Transaction records", path: transactionPath(), labelSelector: `!${LABEL_RESOLVED}` });
  const leases = new Informer({ client, logger, gaps, what: "kubetx Leases", path: `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(config.namespace)}/leases`, labelSelector: LABEL_ROLE });
  const store = new TransactionStore(client, records);
  const policies = policySource(config, client, logger);
  const limits = (): Limits => policies.view().limits;
  const locks = new LockStore({ client, namespace: config.namespace, ttlSeconds: () => limits().lockTtlSeconds, cache: leases });
  const journal = new Journal(client, config.namespace);
  const sessionStore = new SessionStore(client, config.namespace, () => limits().lockTtlSeconds, leases);
  const timing = {
    periodMs: config.resolverPeriodMs, persistGraceMs: config.persistGraceMs, auditSinkDelayMs: config.auditSinkDelayMs ?? 0, lateWriteMs: config.lateWriteMs,
    // A rejected write is known at most a sink delay later, or, without the sink, an intent grace and a sweep period after /observe saw it.
    intentDelayMs: config.auditSinkDelayMs !== undefined ? 0 : config.intentGraceMs + config.resolverPeriodMs,
  };
  const quietMs = (): number => effectiveQuietMs(limits().quietWindowMs, timing);
  const access = new CachedAccess(client, clock);
  const namespaces = new NamespaceLabels(client, logger);
  const pulse = new Pulse({ client, namespace: config.namespace, identity: config.identity, clock, cache: leases, logger });
  const coordinator = new Coordinator({ store, locks, journal, clock, identity: config.identity, limits, quietMs, metrics, access, pulse });
  const sessions = new Sessions(sessionStore, store, clock, quietMs);
  const failures = { sessions, store, coordinator, logger, quietMs };
  const intents = config.auditSinkDelayMs !== undefined ? undefined : new IntentTracker({
    clock, logger, graceMs: config.intentGraceMs,
    reachedValidation: reachedValidationByLocks(locks, (requester) => sessions.current(requester, "CREATE")),
    failRequester: async (requester, fieldManager, reason, observedAtMs) => void (await failRequester(failures, { requester, fieldManager, reason, receivedAtMs: observedAtMs })),
  });
  const resolver = new Resolver({
    client, store, locks, sessions: sessionStore, journal, clock, logger, identity: config.identity,
    events: kubeRollbackEvents(client, clock, logger),
    gaps,
    timing,
    limits,
    metrics,
    prepare: prepareDeps({ client, access, namespaces, policies, quietMs }),
  });
  wakeOnClients({ records, leases, locks, resolver });
  return { client, clock, metrics, store, locks, policies, coordinator, namespaces, sessions, failures, intents, resolver, caches: [records, leases], pulse };
}

/**
 * Starts a resolver pass at once when a client waits on it (clientWaits),
 * and once the last expected member of an explicit transaction has its
 * lock: counted from the Lease cache, with no apiserver call; a wake costs
 * one pass at most.
 */
function wakeOnClients({ records, leases, locks, resolver }: { records: Informer<Transaction>; leases: Informer; locks: LockStore; resolver: Resolver }): void {
  records.onChange((_, tx) => {
    if (clientWaits(tx)) resolver.wake();
  });
  leases.onChange((type, lease) => {
    const id = lease.metadata?.labels?.[LABEL_TRANSACTION] ?? "";
    const expected = records.get(id)?.spec.expectedMembers;
    if (type !== "ADDED" || lease.metadata?.labels?.[LABEL_ROLE] !== LOCK_ROLE || expected === undefined) return;
    void locks.countLocks(id).then(({ locks: held }) => held.length >= expected && resolver.wake(), () => undefined);
  });
}

/**
 * kubectl tx apply waits on the resolver: it said kubectl is done and waits
 * for the verdict, or waits for its prepare before it runs kubectl. No
 * need to wait for the period too.
 */
function clientWaits(tx: Transaction): boolean {
  if ((tx.status?.phase ?? "Open") !== "Open") return false;
  const state = tx.spec?.clientState;
  return state === "Applied" || state === "Failed" || (tx.spec?.prepare !== undefined && !tx.status?.prepared && !tx.status?.failure);
}

/** What the resolver's prepare needs (resolver/prepare.ts). */
function prepareDeps(o: { client: KubeClient; access: CachedAccess; namespaces: NamespaceLabels; policies: PolicySource; quietMs: () => number }): NonNullable<ResolverOptions["prepare"]> {
  // The requester is never kubetx itself (its webhook checks a record's spec.user), so no self name is needed to judge coverage.
  const scope: ScopeDeps = { namespaces: o.namespaces, policy: () => o.policies.view(), selfUsername: "" };
  return {
    discovery: new Discovery(o.client),
    access: o.access,
    covered: async (target, requester) => (await policyMode(scope, target, requester)) !== "off",
    lockedTiming: () => {
      const { lockTtlSeconds, maxOpenSeconds } = o.policies.view().limits;
      return { lockTtlSeconds, maxOpenSeconds, quietMs: o.quietMs() };
    },
  };
}

/** The HTTPS routes over the engine: the admission handlers and the audit sink when configured, for the apiserver only. */
function appFor(engine: Engine, scope: ScopeDeps, options: WebhookServerOptions): ReturnType<typeof createApp> {
  const { logger, config, apiserverClients } = options;
  const { store, locks, coordinator, sessions, intents, metrics, failures } = engine;
  const sink = config.auditSinkDelayMs !== undefined ? auditSink({ ...scope, store, locks, coordinator, failures, logger }) : undefined;
  const apiserver = apiserverClients === "anyone" ? undefined : clientCertificateCheck(apiserverClients.names);
  return createApp({
    logger,
    ...(sink ? { auditSink: sink } : {}),
    ...(apiserver ? { callers: { audit: apiserver, admission: apiserver } } : {}),
    authorize: decideRecordAccess,
    handlers: {
      "/validate": validateHandler({ ...scope, coordinator, sessions, intents, logger, records: store, locks }),
      "/observe": observeHandler({ ...scope, intents }),
    },
    ready: () => engine.namespaces.ready && engine.policies.ready,
    onReview: (path, request, response, cost) => {
      metrics.reviewed(path, response.auditAnnotations?.decision ?? (response.allowed ? "allowed" : "denied"), cost);
      options.onReview?.(path, request, response, cost.calls);
    },
  });
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const { config, logger } = options;
  if (config.auditSinkDelayMs !== undefined && options.apiserverClients === "anyone") {
    throw new ConfigError("kubetx: the audit sink accepts only the apiserver; give the client CA and the certificate name it presents (--client-ca, --apiserver-client)");
  }
  const engine = await buildEngine(options);
  const { client, policies, resolver, intents, namespaces } = engine;
  const stop = new AbortController();
  // Before the first resolver pass and the first watch: a starting apiserver answers them with 429s and 503s.
  await waitForApiserverReady(client, {
    collections: [...engine.caches.map((cache) => cache.path), POLICIES_PATH],
    signal: stop.signal,
    onWaiting: (reason) => logger.info({ reason }, "waiting for the apiserver to be ready before starting the resolver and the watches"),
  });
  const selfUsername = await whoAmI(client);
  void namespaces.run(stop.signal);
  for (const cache of engine.caches) void cache.run(stop.signal);
  void engine.pulse.run(stop.signal);
  const running = resolver.run(stop.signal);
  const sweeping = intents ? every(config.resolverPeriodMs, stop.signal, () =>
    intents.sweep().catch((error: unknown) => logger.warn({ err: error }, "intent sweep failed"))) : Promise.resolve();
  const { webhooks, running: syncing } = runPolicies({ policies, client, logger, settleMs: options.webhookSettleMs }, stop.signal);
  const app = appFor(engine, { namespaces, policy: () => policies.view(), selfUsername }, options);
  const server = await listenHttps(app, options.tls, {
    host: options.host, port: options.port, logger,
    ...(options.certReloadMs ? { reloadIntervalMs: options.certReloadMs } : {}),
    ...(options.apiserverClients === "anyone" ? {} : { clientCaFile: options.apiserverClients.caFile }),
  });
  const metricsServer = options.metricsPort === undefined ? undefined : await listenMetrics(engine.metrics, options.host, options.metricsPort);
  logger.info({
    port: server.port, metricsPort: metricsServer?.port, identity: config.identity, auditSink: config.auditSinkDelayMs !== undefined,
    callers: options.apiserverClients === "anyone" ? "anyone" : options.apiserverClients.names,
  }, "admission server listening");
  return {
    port: server.port,
    ...(metricsServer ? { metricsPort: metricsServer.port } : {}),
    client,
    resolver,
    webhooksInStep: () => webhooks.inStep(),
    close: async () => {
      stop.abort();
      await Promise.all([running, sweeping, syncing]);
      await server.close();
      await metricsServer?.close();
      client.close();
    },
  };
}
