// Verifies a batch's chain where it is shown: in the shopper's browser (or in
// Node >= 20), with WebCrypto only. The rules are those of
// livecore/trace/chain.py (docs/protocol.md, "Verifying a chain offline"):
//   hash(record) = hex(SHA-256(JCS(record))), JCS = RFC 8785;
//   record i carries seq = i, prev = hash(record i-1) (64 zeros for record 0);
//   the head statement {typ, v, batch, seq, head, signed_at, kid} is signed
//   with Ed25519 over JCS(statement).

export const GENESIS = "0".repeat(64);

// RFC 8785 for values JSON can hold: ECMAScript number and string forms are
// exactly JSON.stringify's, so only object keys need sorting (by UTF-16 code
// units, which is what Array.prototype.sort compares).
export function canonical(value) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
}

const subtle = () => globalThis.crypto && globalThis.crypto.subtle;
const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");

export async function sha256hex(text) {
  return hex(await subtle().digest("SHA-256", new TextEncoder().encode(text)));
}

function b64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function keyId(raw) {
  return hex(await subtle().digest("SHA-256", raw)).slice(0, 16);
}

// -> {state: "verified" | "failed" | "unsupported", reason, bad (seq or null), hashes}
export async function verifyChain(records, head, jwk, batch) {
  if (!subtle()) return { state: "unsupported", reason: "no WebCrypto (needs https)", bad: null };
  const hashes = [];
  let prev = GENESIS;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (r.seq !== i || r.batch !== batch) return fail(`record ${i} is out of place`, i, hashes);
    if (r.prev !== prev) {
      return i === 0 ? fail("record 0 does not start the chain", 0, hashes)
        : fail(`record ${i - 1} was changed`, i - 1, hashes);
    }
    prev = await sha256hex(canonical(r));
    hashes.push(prev);
  }
  if (!head || head.batch !== batch || head.seq !== records.length - 1) {
    return fail("the signed head covers other records", records.length - 1, hashes);
  }
  if (head.head !== prev) return fail("the last record was changed", records.length - 1, hashes);
  const raw = b64url(jwk.x);
  if (head.kid !== (await keyId(raw))) return fail("signed by another key", null, hashes);
  let key;
  try {
    key = await subtle().importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
  } catch (err) {
    return { state: "unsupported", reason: `Ed25519 not available: ${err.message}`, bad: null, hashes };
  }
  const { sig, ...statement } = head;
  const ok = await subtle().verify({ name: "Ed25519" }, key, b64url(sig),
    new TextEncoder().encode(canonical(statement)));
  return ok ? { state: "verified", reason: `${records.length} records`, bad: null, hashes }
    : fail("the signature does not verify", null, hashes);
}

function fail(reason, bad, hashes) {
  return { state: "failed", reason, bad, hashes };
}
