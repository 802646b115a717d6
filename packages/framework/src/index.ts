/**
 * kopf-ts: Kubernetes operators as a few decorated TypeScript handlers.
 * @packageDocumentation
 */
export {};
