/** What a login produces: where the apiserver is and how to authenticate to it. */
export interface ConnectionInfo {
  /** `https://host:port` (a path prefix is allowed). */
  server: string;
  /** PEM of the CA(s) to trust; the system's CAs when absent. */
  ca?: string | Buffer;
  /** Skip TLS verification (insecure; for development clusters only). */
  insecure?: boolean;
  /** A bearer token. */
  token?: string;
  /** A file to read the bearer token from, re-read when it changes (ServiceAccount tokens rotate). */
  tokenFile?: string;
  /** Client certificate and key (PEM). */
  certificate?: string | Buffer;
  privateKey?: string | Buffer;
  /** Basic authentication. */
  username?: string;
  password?: string;
  /** Extra headers to send (e.g. from an auth provider). */
  headers?: Record<string, string>;
  /** The namespace of the context, if any. */
  defaultNamespace?: string;
  /** Among several logins, the highest priority is used. */
  priority?: number;
  /** When these credentials stop being valid, if known. */
  expiration?: Date;
  /** Where they came from, for logs: e.g. `kubeconfig context kind-kind`. */
  source?: string;
}
