/**
 * Certificates for the local control plane and the webhook, made with the
 * openssl command (present wherever ca-certificates is installed): a CA, and
 * serving certificates it signs. Existing files are kept, so restarts and
 * kubeconfigs stay valid; a serving certificate is made again only when it
 * could no longer serve (another CA, other names, a key that does not match,
 * or close to expiry).
 */
import { execFile } from "node:child_process";
import { X509Certificate, createPrivateKey, generateKeyPairSync } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { exists } from "./files.ts";

const run = promisify(execFile);

/** Ten years: a dev CA should outlive every checkout that uses it. */
const CA_DAYS = 3650;
/** 825 days: the longest serving certificate lifetime that TLS clients accept. */
const SERVING_DAYS = 825;
/** A serving certificate this close to expiry is made again rather than reused. */
const RENEW_BEFORE_MS = 30 * 24 * 60 * 60 * 1000;

export interface CertificateAuthority {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface ServingCertificate {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface ServingCertificateRequest {
  readonly ca: CertificateAuthority;
  readonly outDir: string;
  /** File name stem: `<name>.crt` and `<name>.key`. */
  readonly name: string;
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  /** serverAuth (default) for a server, clientAuth for a client that proves who it is with the certificate. */
  readonly usage?: "serverAuth" | "clientAuth";
}

export class CertificateError extends Error {
  override readonly name = "CertificateError";
}

/** The DNS names a Service `kubetx` in `kubetx-system` answers to inside a cluster. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

export async function ensureCertificateAuthority(dir: string, commonName: string): Promise<CertificateAuthority> {
  const ca = { certFile: path.join(dir, "ca.crt"), keyFile: path.join(dir, "ca.key") };
  if ((await exists(ca.certFile)) && (await exists(ca.keyFile))) return ca;
  await mkdir(dir, { recursive: true });
  await openssl([
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", ca.keyFile, "-out", ca.certFile, "-days", String(CA_DAYS), "-subj", `/CN=${commonName}`,
    "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return ca;
}

export async function ensureServingCertificate(request: ServingCertificateRequest): Promise<ServingCertificate> {
  const cert = { certFile: path.join(request.outDir, `${request.name}.crt`), keyFile: path.join(request.outDir, `${request.name}.key`) };
  if (await stillServes(cert, request)) return cert;
  await mkdir(request.outDir, { recursive: true });
  const csr = path.join(request.outDir, `${request.name}.csr`);
  const ext = path.join(request.outDir, `${request.name}.ext`);
  const sans = [...request.dnsNames.map((d) => `DNS:${d}`), ...request.ipAddresses.map((ip) => `IP:${ip}`)];
  await writeFile(ext, [
    ...(sans.length > 0 ? [`subjectAltName=${sans.join(",")}`] : []),
    `extendedKeyUsage=${request.usage ?? "serverAuth"}`,
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "basicConstraints=critical,CA:FALSE",
    "",
  ].join("\n"));
  try {
    await openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", cert.keyFile, "-out", csr, "-subj", `/CN=${request.commonName}`]);
    await openssl(["x509", "-req", "-in", csr, "-CA", request.ca.certFile, "-CAkey", request.ca.keyFile,
      "-CAcreateserial", "-days", String(SERVING_DAYS), "-out", cert.certFile, "-extfile", ext]);
  } finally {
    await rm(csr, { force: true });
    await rm(ext, { force: true });
  }
  return cert;
}

/**
 * A client certificate: how the apiserver proves to kubetx that a call
 * (an AdmissionReview, an audit batch) comes from it. `commonName` is the
 * name kubetx checks.
 */
export function ensureClientCertificate(request: { ca: CertificateAuthority; outDir: string; name: string; commonName: string }): Promise<ServingCertificate> {
  return ensureServingCertificate({ ...request, dnsNames: [], ipAddresses: [], usage: "clientAuth" });
}

/**
 * True when the existing pair may be reused: signed by the request's CA,
 * covering every requested name, matching its key and not about to expire.
 * Anything else (missing or unreadable files, a CA made again, a changed
 * `--service`) means it has to be made again.
 */
async function stillServes(cert: ServingCertificate, request: ServingCertificateRequest): Promise<boolean> {
  try {
    const [leaf, ca, key] = await Promise.all([readFile(cert.certFile), readFile(request.ca.certFile), readFile(cert.keyFile)]);
    const certificate = new X509Certificate(leaf);
    const authority = new X509Certificate(ca);
    return certificate.checkIssued(authority) && certificate.verify(authority.publicKey)
      && certificate.checkPrivateKey(createPrivateKey(key))
      && certificate.validToDate.getTime() - Date.now() > RENEW_BEFORE_MS
      && request.dnsNames.every((name) => certificate.checkHost(name, { subject: "never", wildcards: false }) === name)
      && request.ipAddresses.every((ip) => certificate.checkIP(ip) === ip);
  } catch {
    return false;
  }
}

/** The key pair the apiserver signs and checks service-account tokens with. */
export async function ensureServiceAccountKeys(dir: string): Promise<{ publicKeyFile: string; privateKeyFile: string }> {
  const keys = { publicKeyFile: path.join(dir, "sa.pub"), privateKeyFile: path.join(dir, "sa.key") };
  if ((await exists(keys.publicKeyFile)) && (await exists(keys.privateKeyFile))) return keys;
  await mkdir(dir, { recursive: true });
  const pair = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  await writeFile(keys.privateKeyFile, pair.privateKey, { mode: 0o600 });
  await writeFile(keys.publicKeyFile, pair.publicKey);
  return keys;
}

/** The CA as base64 PEM: the form of a webhook's `caBundle` and a kubeconfig's `certificate-authority-data`. */
export async function caBundle(ca: CertificateAuthority): Promise<string> {
  return (await readFile(ca.certFile)).toString("base64");
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args);
  } catch (error) {
    const err = error as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === "ENOENT") {
      throw new CertificateError("kubetx: the openssl command is not installed; install it (Debian: apt-get install openssl)", { cause: error });
    }
    throw new CertificateError(`kubetx: openssl ${args[0]} failed: ${err.stderr?.trim() ?? err.message}`, { cause: error });
  }
}

