/**
 * A self-signed CA and a serving certificate for the webhook server in local development,
 * made with node:crypto only: ECDSA P-256 keys and signatures from node:crypto, and the few
 * X.509 structures (RFC 5280) written here in DER. node:crypto can parse certificates
 * (`X509Certificate`) but not create them; a certificate is a small fixed structure, so this
 * needs no dependency. The result is checked by `X509Certificate` and by the apiserver (Go's
 * crypto/x509) in the tests.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

/** PEM texts: the CA (for the webhook configuration's `caBundle`) and the server's certificate and key. */
export interface WebhookCertificates {
  ca: string;
  cert: string;
  key: string;
}

// --- DER, just what certificates need ---

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(content.length), content]);
}

const sequence = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const octets = (content: Buffer) => tlv(0x04, content);
const bits = (content: Buffer, unused = 0) => tlv(0x03, Buffer.concat([Buffer.from([unused]), content]));
const utf8 = (text: string) => tlv(0x0c, Buffer.from(text, 'utf8'));
const boolean = (value: boolean) => tlv(0x01, Buffer.from([value ? 0xff : 0x00]));
/** A context-specific tag: `[n]`, constructed (EXPLICIT) or primitive (IMPLICIT). */
const tagged = (n: number, content: Buffer, constructed: boolean) =>
  tlv((constructed ? 0xa0 : 0x80) | n, content);

function integer(value: Buffer): Buffer {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0 && value[start + 1]! < 0x80) start++;
  const trimmed = value.subarray(start);
  return tlv(0x02, trimmed[0]! >= 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(date: Date): Buffer {
  const iso = date.toISOString(); // 2026-01-02T03:04:05.678Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '') + 'Z'; // 20260102030405Z
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  return date.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(digits.slice(2), 'ascii'))
    : tlv(0x18, Buffer.from(digits, 'ascii'));
}

const OID = {
  commonName: '2.5.4.3',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};

const name = (cn: string) => sequence(set(sequence(oid(OID.commonName), utf8(cn))));

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octets(value));
}

/** The key identifier: SHA-1 of the subjectPublicKey bits (RFC 5280, 4.2.1.2, method 1). */
function keyId(spki: Buffer): Buffer {
  // The SPKI is SEQUENCE { AlgorithmIdentifier, BIT STRING }; for P-256 the point is the last 65 bytes.
  return createHash('sha1')
    .update(spki.subarray(spki.length - 65))
    .digest();
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

interface CertificateSpec {
  subject: string;
  issuer: string;
  publicKey: KeyObject;
  signingKey: KeyObject;
  issuerKeyId?: Buffer;
  notAfter: Date;
  extensions: Buffer[];
}

function certificate(spec: CertificateSpec): Buffer {
  const spki = spec.publicKey.export({ type: 'spki', format: 'der' });
  const algorithm = sequence(oid(OID.ecdsaWithSha256));
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive and non-zero, as Go requires
  const extensions = [
    ...spec.extensions,
    extension(OID.subjectKeyIdentifier, false, octets(keyId(spki))),
    ...(spec.issuerKeyId
      ? [extension(OID.authorityKeyIdentifier, false, sequence(tagged(0, spec.issuerKeyId, false)))]
      : []),
  ];
  const tbs = sequence(
    tagged(0, integer(Buffer.from([2])), true), // version 3
    integer(serial),
    algorithm,
    name(spec.issuer),
    sequence(time(new Date(Date.now() - 60 * 60 * 1000)), time(spec.notAfter)), // an hour of clock skew
    name(spec.subject),
    spki,
    tagged(3, sequence(...extensions), true),
  );
  const signature = sign('sha256', tbs, spec.signingKey); // DER ECDSA-Sig-Value
  return sequence(tbs, algorithm, bits(signature));
}

function subjectAltNames(hosts: string[]): Buffer {
  return sequence(
    ...hosts.map((host) => {
      const ip = isIP(host);
      if (ip === 4) return tagged(7, Buffer.from(host.split('.').map(Number)), false);
      if (ip === 6) return tagged(7, ipv6Bytes(host), false);
      return tagged(2, Buffer.from(host, 'ascii'), false);
    }),
  );
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail] = address.split('::');
  const parse = (part: string) => (part ? part.split(':') : []);
  const groups =
    tail === undefined
      ? parse(head)
      : [
          ...parse(head),
          ...Array<string>(8 - parse(head).length - parse(tail).length).fill('0'),
          ...parse(tail),
        ];
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

/**
 * A fresh CA (valid 1 year) and a serving certificate signed by it for `hosts` (DNS names or
 * IP addresses, e.g. `127.0.0.1`, `localhost`). Keys are ECDSA P-256.
 */
export function selfSignedCertificates(hosts: string[]): WebhookCertificates {
  if (!hosts.length) throw new Error('A serving certificate needs at least one host name or IP address.');
  const notAfter = new Date(Date.now() + 365 * 24 * 60 * 60 * 1000);
  const caKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caSpki = caKeys.publicKey.export({ type: 'spki', format: 'der' });
  const caName = `kopf-ts webhook CA ${randomBytes(4).toString('hex')}`;
  const ca = certificate({
    subject: caName,
    issuer: caName,
    publicKey: caKeys.publicKey,
    signingKey: caKeys.privateKey,
    notAfter,
    extensions: [
      extension(OID.basicConstraints, true, sequence(boolean(true))),
      extension(OID.keyUsage, true, bits(Buffer.from([0x06]), 1)), // keyCertSign, cRLSign
    ],
  });
  const serverKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const server = certificate({
    subject: hosts[0]!,
    issuer: caName,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    issuerKeyId: keyId(caSpki),
    notAfter,
    extensions: [
      extension(OID.basicConstraints, true, sequence()),
      extension(OID.keyUsage, true, bits(Buffer.from([0x80]), 7)), // digitalSignature
      extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
      extension(OID.subjectAltName, false, subjectAltNames(hosts)),
    ],
  });
  return {
    ca: pem('CERTIFICATE', ca),
    cert: pem('CERTIFICATE', server),
    key: serverKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
