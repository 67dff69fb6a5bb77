// A minimal MessagePack codec (https://msgpack.org spec), written for the room channel.
//
//   encode(value) -> Uint8Array      decode(bytes) -> value
//
// Supported: nil, bool, integers (JS numbers that are integers, and BigInt),
// float64 (float32 on decode), str (UTF-8), bin (Uint8Array / ArrayBuffer),
// arrays and maps (plain objects and Map). 64-bit integers decode to a Number
// when they fit in Number.MAX_SAFE_INTEGER, else to a BigInt. Map keys decode
// to strings (the protocol only uses string keys). `undefined` values in
// objects are skipped, like JSON. Ext types decode to {type, data}.

const utf8enc = new TextEncoder();
const utf8dec = new TextDecoder("utf-8");
const TWO32 = 4294967296;

class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }
  ensure(n) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v) { this.ensure(1); this.buf[this.pos++] = v; }
  u16(v) { this.ensure(2); this.view.setUint16(this.pos, v); this.pos += 2; }
  u32(v) { this.ensure(4); this.view.setUint32(this.pos, v); this.pos += 4; }
  bytes(b) { this.ensure(b.length); this.buf.set(b, this.pos); this.pos += b.length; }
  head(type, v) { this.u8(type); if (type === 0xcd) this.u16(v); else this.u32(v); }
}

function encodeInt(w, v) {
  if (v >= 0) {
    if (v < 128) w.u8(v);
    else if (v < 256) { w.u8(0xcc); w.u8(v); }
    else if (v < 65536) { w.u8(0xcd); w.u16(v); }
    else if (v < TWO32) { w.u8(0xce); w.u32(v); }
    else { w.u8(0xcf); w.ensure(8); w.view.setBigUint64(w.pos, BigInt(v)); w.pos += 8; }
  } else {
    if (v >= -32) w.u8(v & 0xff);
    else if (v >= -128) { w.u8(0xd0); w.ensure(1); w.view.setInt8(w.pos++, v); }
    else if (v >= -32768) { w.u8(0xd1); w.ensure(2); w.view.setInt16(w.pos, v); w.pos += 2; }
    else if (v >= -2147483648) { w.u8(0xd2); w.ensure(4); w.view.setInt32(w.pos, v); w.pos += 4; }
    else { w.u8(0xd3); w.ensure(8); w.view.setBigInt64(w.pos, BigInt(v)); w.pos += 8; }
  }
}

function encodeLength(w, n, fix, fixMax, t8, t16, t32) {
  if (n <= fixMax) w.u8(fix | n);
  else if (t8 !== null && n < 256) { w.u8(t8); w.u8(n); }
  else if (n < 65536) { w.u8(t16); w.u16(n); }
  else { w.u8(t32); w.u32(n); }
}

function encodeValue(w, v, depth) {
  if (depth > 64) throw new Error("msgpack: nesting too deep");
  if (v === null || v === undefined) { w.u8(0xc0); return; }
  switch (typeof v) {
    case "boolean": w.u8(v ? 0xc3 : 0xc2); return;
    case "number":
      if (Number.isSafeInteger(v)) encodeInt(w, v);
      else { w.u8(0xcb); w.ensure(8); w.view.setFloat64(w.pos, v); w.pos += 8; }
      return;
    case "bigint":
      if (v >= 0n) {
        if (v > 0xffffffffffffffffn) throw new RangeError("msgpack: integer over 64 bits");
        w.u8(0xcf); w.ensure(8); w.view.setBigUint64(w.pos, v); w.pos += 8;
      } else {
        if (v < -0x8000000000000000n) throw new RangeError("msgpack: integer over 64 bits");
        w.u8(0xd3); w.ensure(8); w.view.setBigInt64(w.pos, v); w.pos += 8;
      }
      return;
    case "string": {
      const b = utf8enc.encode(v);
      encodeLength(w, b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      w.bytes(b);
      return;
    }
    case "object": break;
    default: throw new TypeError(`msgpack: cannot encode ${typeof v}`);
  }
  if (v instanceof Uint8Array || v instanceof ArrayBuffer) {
    const b = v instanceof Uint8Array ? v : new Uint8Array(v);
    if (b.length < 256) { w.u8(0xc4); w.u8(b.length); }
    else if (b.length < 65536) { w.u8(0xc5); w.u16(b.length); }
    else { w.u8(0xc6); w.u32(b.length); }
    w.bytes(b);
    return;
  }
  if (Array.isArray(v)) {
    encodeLength(w, v.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const item of v) encodeValue(w, item, depth + 1);
    return;
  }
  const entries = v instanceof Map ? [...v.entries()]
    : Object.entries(v).filter(([, x]) => x !== undefined);
  encodeLength(w, entries.length, 0x80, 15, null, 0xde, 0xdf);
  for (const [k, x] of entries) {
    encodeValue(w, k, depth + 1);
    encodeValue(w, x, depth + 1);
  }
}

/** Encode one value as MessagePack bytes. */
export function encode(value) {
  const w = new Writer();
  encodeValue(w, value, 0);
  return w.buf.slice(0, w.pos);
}

class Reader {
  constructor(bytes) {
    this.buf = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }
  need(n) {
    if (this.pos + n > this.buf.length) throw new RangeError("msgpack: truncated data");
  }
  u8() { this.need(1); return this.buf[this.pos++]; }
  u16() { this.need(2); const v = this.view.getUint16(this.pos); this.pos += 2; return v; }
  u32() { this.need(4); const v = this.view.getUint32(this.pos); this.pos += 4; return v; }
  take(n) { this.need(n); const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b; }
}

function safe64(big) {
  const n = Number(big);
  return Number.isSafeInteger(n) ? n : big;
}

function str(r, n) { return utf8dec.decode(r.take(n)); }
function bin(r, n) { return new Uint8Array(r.take(n)); }
function arr(r, n, depth) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = decodeValue(r, depth + 1);
  return out;
}
function map(r, n, depth) {
  const out = {};
  for (let i = 0; i < n; i++) {
    const key = decodeValue(r, depth + 1);
    const k = typeof key === "string" ? key : String(key);
    const value = decodeValue(r, depth + 1);
    if (k === "__proto__") Object.defineProperty(out, k, { value, enumerable: true, writable: true });
    else out[k] = value;
  }
  return out;
}
function ext(r, n) {
  r.need(1);
  const type = r.view.getInt8(r.pos);
  r.pos += 1;
  return { type, data: bin(r, n) };
}

function decodeValue(r, depth) {
  if (depth > 256) throw new Error("msgpack: nesting too deep");
  const b = r.u8();
  if (b < 0x80) return b;
  if (b < 0x90) return map(r, b & 0x0f, depth);
  if (b < 0xa0) return arr(r, b & 0x0f, depth);
  if (b < 0xc0) return str(r, b & 0x1f);
  if (b >= 0xe0) return b - 256;
  let v;
  switch (b) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return bin(r, r.u8());
    case 0xc5: return bin(r, r.u16());
    case 0xc6: return bin(r, r.u32());
    case 0xc7: return ext(r, r.u8());
    case 0xc8: return ext(r, r.u16());
    case 0xc9: return ext(r, r.u32());
    case 0xca: r.need(4); v = r.view.getFloat32(r.pos); r.pos += 4; return v;
    case 0xcb: r.need(8); v = r.view.getFloat64(r.pos); r.pos += 8; return v;
    case 0xcc: return r.u8();
    case 0xcd: return r.u16();
    case 0xce: return r.u32();
    case 0xcf: r.need(8); v = r.view.getBigUint64(r.pos); r.pos += 8; return safe64(v);
    case 0xd0: r.need(1); v = r.view.getInt8(r.pos); r.pos += 1; return v;
    case 0xd1: r.need(2); v = r.view.getInt16(r.pos); r.pos += 2; return v;
    case 0xd2: r.need(4); v = r.view.getInt32(r.pos); r.pos += 4; return v;
    case 0xd3: r.need(8); v = r.view.getBigInt64(r.pos); r.pos += 8; return safe64(v);
    case 0xd4: return ext(r, 1);
    case 0xd5: return ext(r, 2);
    case 0xd6: return ext(r, 4);
    case 0xd7: return ext(r, 8);
    case 0xd8: return ext(r, 16);
    case 0xd9: return str(r, r.u8());
    case 0xda: return str(r, r.u16());
    case 0xdb: return str(r, r.u32());
    case 0xdc: return arr(r, r.u16(), depth);
    case 0xdd: return arr(r, r.u32(), depth);
    case 0xde: return map(r, r.u16(), depth);
    case 0xdf: return map(r, r.u32(), depth);
    default: throw new Error(`msgpack: unknown type byte 0x${b.toString(16)}`);
  }
}

/** Decode exactly one MessagePack value from bytes (Uint8Array or ArrayBuffer). */
export function decode(bytes) {
  const r = new Reader(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  const value = decodeValue(r, 0);
  if (r.pos !== r.buf.length) throw new Error("msgpack: trailing bytes after the value");
  return value;
}
