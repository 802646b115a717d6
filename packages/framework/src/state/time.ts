/**
 * Timestamps in progress records, as Kopf writes them since 1.37: ISO 8601 in UTC with six
 * fraction digits and an explicit offset (`2026-11-25T15:08:48.123000+00:00`). Older Kopf
 * wrote naive times (`2020-02-14T16:58:25.396364`, fraction absent when zero): those are read
 * as UTC.
 */

/** Formats a time like Python's `datetime.isoformat(timespec='microseconds')` of a UTC time. */
export function formatTime(time: Date): string {
  const iso = time.toISOString(); // 2026-11-25T15:08:48.123Z
  return `${iso.slice(0, 23)}000+00:00`;
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6})\d*)?(Z|[+-]\d{2}:?\d{2})?$/;

/** Parses Kopf's stored times, aware or naive (naive ones are UTC); undefined if malformed. */
export function parseTime(text: string): Date | undefined {
  const m = ISO.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = '', zone] = m;
  const ms = Number(frac.padEnd(6, '0').slice(0, 3));
  let time = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  if (zone && zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    time -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000;
  }
  return new Date(time);
}

/**
 * A stored time as Kopf writes it back after reading it: six fraction digits (cut, not
 * rounded), `Z` as `+00:00`, other offsets kept, naive times kept naive. Undefined if malformed.
 */
export function normalizeTime(text: string): string | undefined {
  const m = ISO.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = '', zone] = m;
  let offset = '';
  if (zone === 'Z') offset = '+00:00';
  else if (zone) offset = zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  return `${y}-${mo}-${d}T${h}:${mi}:${s}.${frac.padEnd(6, '0')}${offset}`;
}
