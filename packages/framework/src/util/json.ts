/**
 * JSON as Python's `json` module reads and writes it, so that what kopf-ts stores on objects
 * is byte-identical to what Kopf stores (docs/state.md).
 *
 * - {@link parseJson} keeps what `JSON.parse` loses: the source order of integer-like keys
 *   (JavaScript enumerates `"2"` before `"a"` whatever the text says), integers beyond 2^53
 *   (parsed as `bigint`), and whether an integral number was written as a float (`2.0`,
 *   `1e+21`). The order and float marks are kept in non-enumerable symbol properties, so the
 *   parsed values are plain objects, arrays, strings, numbers and booleans for everyone else.
 * - {@link dumpJson} writes like `json.dumps(value, separators=(',', ':'))`: ASCII only
 *   (`\uXXXX` escapes), Python's float repr (`1e-07`, `1.5e+16`, `2.0`), keys in source order.
 */

/** Source order of an object's keys, where it differs from JavaScript's enumeration order. */
const KEY_ORDER = Symbol.for('kopf-ts.json.keyOrder');
/** Keys (or array indexes) whose integral number was written as a float literal. */
const FLOATS = Symbol.for('kopf-ts.json.floats');

/** A JSON value as kopf-ts handles it; integers beyond 2^53 are bigints. */
export type JsonValue =
  null | boolean | number | bigint | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

type Marked = { [KEY_ORDER]?: string[]; [FLOATS]?: Set<string | number> };

function hide(target: object, symbol: symbol, value: unknown): void {
  Object.defineProperty(target, symbol, { value, enumerable: false, configurable: true, writable: true });
}

/** The key order to write an object with: its source order where recorded. */
export function keysOf(obj: object): string[] {
  const own = Object.keys(obj);
  const order = (obj as Marked)[KEY_ORDER];
  if (!order) return own;
  const present = new Set(own);
  const ordered = order.filter((k) => present.has(k));
  if (ordered.length === own.length) return ordered;
  const seen = new Set(ordered);
  return [...ordered, ...own.filter((k) => !seen.has(k))];
}

/** Records `order` as the object's key order to write with, where JavaScript's differs. */
export function setKeyOrder(obj: object, order: string[]): void {
  const own = Object.keys(obj);
  if (own.some((k, i) => k !== order[i])) hide(obj, KEY_ORDER, order);
}

/** Copies the hidden source order and float marks from one object to another (a clone). */
export function copyMarks(from: object, to: object): void {
  const order = (from as Marked)[KEY_ORDER];
  if (order) hide(to, KEY_ORDER, order);
  const floats = (from as Marked)[FLOATS];
  if (floats) hide(to, FLOATS, floats);
}

/** A deep copy that keeps the hidden marks; bigints and strings are shared. */
export function cloneJson<T extends JsonValue>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    const copy = value.map((v) => cloneJson(v));
    copyMarks(value, copy);
    return copy as T;
  }
  const copy: JsonObject = {};
  for (const key of Object.keys(value)) setKey(copy, key, cloneJson(value[key]!));
  copyMarks(value, copy);
  return copy as T;
}

/** Sets a key safely (`__proto__` becomes an own property, as with JSON.parse). */
export function setKey(obj: JsonObject, key: string, value: JsonValue): void {
  if (key === '__proto__')
    Object.defineProperty(obj, key, { value, enumerable: true, configurable: true, writable: true });
  else obj[key] = value;
}

// Texts without these features parse identically with the (much faster) built-in parser.
// False positives (the patterns inside strings) only cost speed; a miss is impossible because
// every number token follows `:`, `,` or `[`, and every key follows `{` or `,`.
const NEEDS_EXACT =
  /[{,]\s*"(?:0|[1-9]\d*)"\s*:|[:,[]\s*-?\d+(?:\.\d+)?[eE]|[:,[]\s*-?\d+\.0+\s*[,}\]]|[:,[]\s*-?\d{16}/;

/** Parses JSON text keeping key order, big integers and float literals (see module docs). */
export function parseJson(text: string): JsonValue {
  if (!NEEDS_EXACT.test(text) && !/^\s*-?\d/.test(text)) {
    try {
      return JSON.parse(text) as JsonValue;
    } catch {
      // Python's extensions (NaN, Infinity) or a real error: the exact parser tells which.
    }
  }
  return new Parser(text).parseDocument();
}

class Parser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parseDocument(): JsonValue {
    this.skipWs();
    const value = this.parseValue();
    this.skipWs();
    if (this.pos !== this.text.length) this.fail('unexpected data after the JSON value');
    return value;
  }

  private fail(message: string): never {
    throw new SyntaxError(`${message} at position ${this.pos}`);
  }

  private skipWs(): void {
    const t = this.text;
    let c = t.charCodeAt(this.pos);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = t.charCodeAt(++this.pos);
  }

  private parseValue(): JsonValue {
    const c = this.text.charCodeAt(this.pos);
    if (c === 0x7b) return this.parseObject();
    if (c === 0x5b) return this.parseArray();
    if (c === 0x22) return this.parseString();
    if (this.text.startsWith('NaN', this.pos)) return ((this.pos += 3), NaN);
    if (this.text.startsWith('Infinity', this.pos)) return ((this.pos += 8), Infinity);
    if (this.text.startsWith('-Infinity', this.pos)) return ((this.pos += 9), -Infinity);
    if (this.numberAhead()) return this.parseNumber().value;
    if (this.text.startsWith('true', this.pos)) return ((this.pos += 4), true);
    if (this.text.startsWith('false', this.pos)) return ((this.pos += 5), false);
    if (this.text.startsWith('null', this.pos)) return ((this.pos += 4), null);
    return this.fail('unexpected character');
  }

  private numberAhead(): boolean {
    let c = this.text.charCodeAt(this.pos);
    if (c === 0x2d) c = this.text.charCodeAt(this.pos + 1);
    return c >= 0x30 && c <= 0x39;
  }

  private parseObject(): JsonObject {
    const obj: JsonObject = {};
    const order: string[] = [];
    let floats: Set<string> | undefined;
    this.pos++;
    this.skipWs();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return obj;
    }
    for (;;) {
      if (this.text.charCodeAt(this.pos) !== 0x22) this.fail('expected a key');
      const key = this.parseString();
      this.skipWs();
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.fail("expected ':'");
      this.pos++;
      this.skipWs();
      let value: JsonValue;
      if (this.numberAhead()) {
        const number = this.parseNumber();
        value = number.value;
        if (number.integralFloat) (floats ??= new Set()).add(key);
        else floats?.delete(key);
      } else {
        value = this.parseValue();
        floats?.delete(key);
      }
      if (!Object.prototype.hasOwnProperty.call(obj, key)) order.push(key);
      setKey(obj, key, value);
      this.skipWs();
      const next = this.text.charCodeAt(this.pos++);
      if (next === 0x2c) {
        this.skipWs();
        continue;
      }
      if (next === 0x7d) break;
      this.pos--;
      this.fail("expected ',' or '}'");
    }
    setKeyOrder(obj, order);
    if (floats?.size) hide(obj, FLOATS, floats);
    return obj;
  }

  private parseArray(): JsonValue[] {
    const arr: JsonValue[] = [];
    let floats: Set<number> | undefined;
    this.pos++;
    this.skipWs();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return arr;
    }
    for (;;) {
      if (this.numberAhead()) {
        const number = this.parseNumber();
        if (number.integralFloat) (floats ??= new Set()).add(arr.length);
        arr.push(number.value);
      } else {
        arr.push(this.parseValue());
      }
      this.skipWs();
      const next = this.text.charCodeAt(this.pos++);
      if (next === 0x2c) {
        this.skipWs();
        continue;
      }
      if (next === 0x5d) break;
      this.pos--;
      this.fail("expected ',' or ']'");
    }
    if (floats) hide(arr, FLOATS, floats);
    return arr;
  }

  private parseString(): string {
    const t = this.text;
    const start = this.pos + 1;
    const end = t.indexOf('"', start);
    if (end < 0) this.fail('unterminated string');
    const slash = t.indexOf('\\', start);
    if (slash < 0 || slash > end) {
      const s = t.slice(start, end);
      // eslint-disable-next-line no-control-regex
      if (/[\u0000-\u001f]/.test(s)) this.fail('control character in string');
      this.pos = end + 1;
      return s;
    }
    let out = '';
    let i = start;
    for (;;) {
      const c = t.charCodeAt(i);
      if (c === 0x22) break;
      if (Number.isNaN(c)) this.fail('unterminated string');
      if (c < 0x20) this.fail('control character in string');
      if (c !== 0x5c) {
        out += t[i++];
        continue;
      }
      const e = t[i + 1];
      i += 2;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const hex = t.slice(i, i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          this.pos = i;
          this.fail('bad escape');
      }
    }
    this.pos = i + 1;
    return out;
  }

  private parseNumber(): { value: number | bigint; integralFloat: boolean } {
    const t = this.text;
    const start = this.pos;
    let i = start;
    if (t.charCodeAt(i) === 0x2d) i++;
    const digitsStart = i;
    while (t.charCodeAt(i) >= 0x30 && t.charCodeAt(i) <= 0x39) i++;
    if (i === digitsStart || (t.charCodeAt(digitsStart) === 0x30 && i - digitsStart > 1))
      this.fail('bad number');
    let isFloat = false;
    if (t.charCodeAt(i) === 0x2e) {
      isFloat = true;
      const f = ++i;
      while (t.charCodeAt(i) >= 0x30 && t.charCodeAt(i) <= 0x39) i++;
      if (i === f) this.fail('bad number');
    }
    const e = t.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      isFloat = true;
      i++;
      if (t.charCodeAt(i) === 0x2b || t.charCodeAt(i) === 0x2d) i++;
      const d = i;
      while (t.charCodeAt(i) >= 0x30 && t.charCodeAt(i) <= 0x39) i++;
      if (i === d) this.fail('bad number');
    }
    this.pos = i;
    const literal = t.slice(start, i);
    if (isFloat) {
      const value = Number(literal);
      return { value, integralFloat: Number.isInteger(value) };
    }
    if (i - digitsStart < 16) return { value: Number(literal), integralFloat: false };
    const value = Number(literal);
    return { value: Number.isSafeInteger(value) ? value : BigInt(literal), integralFloat: false };
  }
}

/** Writes a value as Python's `json.dumps(value, separators=(',', ':'))` would. */
export function dumpJson(value: unknown): string {
  return write(value, false);
}

function write(value: unknown, asFloat: boolean): string {
  switch (typeof value) {
    case 'string':
      return pyString(value);
    case 'number':
      return asFloat || !Number.isInteger(value) ? pyFloat(value) : pyInt(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      throw new TypeError(`cannot write a ${typeof value} as JSON`);
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    const floats = (value as Marked)[FLOATS];
    const parts = value.map((v: unknown, i) =>
      v === undefined ? 'null' : write(v, floats?.has(i) ?? false),
    );
    return `[${parts.join(',')}]`;
  }
  const withToJson = value as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === 'function') return write(withToJson.toJSON(), false);
  const floats = (value as Marked)[FLOATS];
  const parts: string[] = [];
  for (const key of keysOf(value)) {
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    parts.push(`${pyString(key)}:${write(v, floats?.has(key) ?? false)}`);
  }
  return `{${parts.join(',')}}`;
}

function pyInt(n: number): string {
  if (Object.is(n, -0)) return '0';
  return Math.abs(n) < 1e21 ? String(n) : BigInt(n).toString();
}

/** Python's `float.__repr__`: shortest round-trip digits, exponent when < 1e-4 or >= 1e16. */
export function pyFloat(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
  const [mantissa = '', exponent = '0'] = n.toExponential().split('e');
  const negative = mantissa.startsWith('-') || Object.is(n, -0);
  const digits = mantissa.replace('-', '').replace('.', '');
  const e = Number(exponent);
  let body: string;
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  } else if (e >= 0) {
    const int = digits.slice(0, e + 1).padEnd(e + 1, '0');
    body = `${int}.${digits.slice(e + 1) || '0'}`;
  } else {
    body = `0.${'0'.repeat(-e - 1)}${digits}`;
  }
  return negative ? `-${body}` : body;
}

// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\u007f-\uffff]/;
const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

/** Python's `json.dumps` of a string with `ensure_ascii=True`. */
export function pyString(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const code = s.charCodeAt(i);
    if (code >= 0x20 && code < 0x7f && ch !== '"' && ch !== '\\') out += ch;
    else out += SHORT_ESCAPES[ch] ?? `\\u${code.toString(16).padStart(4, '0')}`;
  }
  return `${out}"`;
}

/** A JSON value as text for messages and keys: strings as they are, null/absent as ''. */
export function textOf(value: JsonValue | undefined): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? dumpJson(value) : String(value);
}
