import { hash } from 'node:crypto';

export type HashName = 'sha1' | 'sha256' | 'sha512';

const HASHES: Readonly<Record<HashName, { readonly blockSize: number; readonly digestLength: number }>> = {
  sha1: { blockSize: 64, digestLength: 20 },
  sha256: { blockSize: 64, digestLength: 32 },
  sha512: { blockSize: 128, digestLength: 64 },
};

/** Room for the message after the pad before the scratch buffer has to grow (covers every v1 context). */
const INITIAL_MESSAGE_ROOM = 512;

/**
 * HMAC (RFC 2104) over node's one-shot `crypto.hash`, with the padded key blocks prepared once per key.
 *
 * Why not `createHmac`: on Node 20 / OpenSSL 3 each `createHmac(...).update().digest()` costs ~3 µs of object
 * and EVP set-up, and every v1 seal and open runs two HMAC-SHA-512 (a 76-byte HKDF-Expand). Two one-shot
 * hashes with a `binary` (latin1) digest cost about a third of that. The construction is the textbook one:
 * H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)), K zero-padded to the block size (hashed first when longer). It is
 * cross-checked against `createHmac` and against every HKDF and Cobblestone vector in the tests.
 *
 * Hazard: the scratch buffers hold key-derived bytes, so they are allocated with `allocUnsafeSlow` (never
 * from Buffer's shared pool, whose memory is handed out again by `allocUnsafe`) and wiped when replaced.
 * Methods are synchronous and re-entrancy free, so one instance can reuse its scratch across calls.
 */
export class HmacKey {
  readonly #hash: HashName;
  readonly #blockSize: number;
  readonly #digestLength: number;
  /** K ⊕ ipad, followed by room for the message: the inner hash input, built in place. */
  #inner: Buffer;
  /** K ⊕ opad, followed by the inner digest: the outer hash input. */
  readonly #outer: Buffer;
  /** Views of `#inner` by length: the hot path hashes the same few lengths over and over. */
  readonly #views = new Map<number, Buffer>();

  constructor(hashName: HashName, key: Uint8Array) {
    const { blockSize, digestLength } = HASHES[hashName];
    const k = key.byteLength > blockSize ? hash(hashName, key, 'buffer') : key;
    this.#hash = hashName;
    this.#blockSize = blockSize;
    this.#digestLength = digestLength;
    this.#inner = Buffer.allocUnsafeSlow(blockSize + INITIAL_MESSAGE_ROOM);
    this.#outer = Buffer.allocUnsafeSlow(blockSize + digestLength);
    writeHmacPad(k, IPAD, this.#inner, blockSize);
    writeHmacPad(k, OPAD, this.#outer, blockSize);
    if (k !== key) k.fill(0);
  }

  get digestLength(): number {
    return this.#digestLength;
  }

  /** HMAC(K, message), in memory of its own (not Buffer's shared pool): the result is often a key. */
  digest(message: Uint8Array): Buffer {
    const end = this.#blockSize + message.byteLength;
    this.#reserve(end);
    this.#inner.set(message, this.#blockSize);
    const out = Buffer.allocUnsafeSlow(this.#digestLength);
    out.write(this.#mac(end), 0, this.#digestLength, 'latin1');
    this.#inner.fill(0, this.#blockSize, end);
    return out;
  }

  /**
   * HKDF-Expand (RFC 5869 §2.3) with this key as the PRK: writes `length` bytes of OKM into `out` at `offset`.
   * T(1) = HMAC(PRK, info ‖ 0x01), T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i).
   */
  expandInto(info: Uint8Array, out: Buffer, offset: number, length: number): void {
    this.expandPrefixInto(asBuffer(info), info.byteLength, out, offset, length);
  }

  /** `expandInto` with info = `info[0, infoLength)`, for callers that build info in a reused buffer. */
  expandPrefixInto(info: Buffer, infoLength: number, out: Buffer, offset: number, length: number): void {
    const b = this.#blockSize;
    const h = this.#digestLength;
    checkExpandLength(this.#hash, length);
    if (offset < 0 || offset + length > out.length) throw new RangeError('HKDF-Expand output does not fit');
    if (infoLength > info.length) throw new RangeError('HKDF-Expand info length exceeds its buffer');
    if (length === 0) return;
    const n = Math.ceil(length / h);
    this.#reserve(b + h + infoLength + 1);
    const inner = this.#inner;

    // T(1): the message sits right after the pad.
    info.copy(inner, b, 0, infoLength);
    inner[b + infoLength] = 1;
    let t = this.#mac(b + infoLength + 1);
    out.write(t, offset, Math.min(h, length), 'latin1');
    if (n === 1) return;

    // T(2..n): move info right once to make room for T(i-1) in front of it.
    inner.copyWithin(b + h, b, b + infoLength);
    const counterAt = b + h + infoLength;
    for (let i = 2; i <= n; i++) {
      inner.write(t, b, h, 'latin1');
      inner[counterAt] = i;
      t = this.#mac(counterAt + 1);
      const done = (i - 1) * h;
      out.write(t, offset + done, Math.min(h, length - done), 'latin1');
    }
  }

  /** The HMAC of `#inner[blockSize, innerLength)`, as a latin1 string (one char per byte). */
  #mac(innerLength: number): string {
    let view = this.#views.get(innerLength);
    if (view === undefined) {
      if (this.#views.size >= 8) this.#views.clear();
      view = this.#inner.subarray(0, innerLength);
      this.#views.set(innerLength, view);
    }
    const innerDigest = hash(this.#hash, view, 'binary');
    this.#outer.write(innerDigest, this.#blockSize, this.#digestLength, 'latin1');
    return hash(this.#hash, this.#outer, 'binary');
  }

  #reserve(size: number): void {
    const current = this.#inner;
    if (current.length >= size) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(size, current.length * 2));
    current.copy(grown, 0, 0, this.#blockSize);
    current.fill(0);
    this.#inner = grown;
    this.#views.clear();
  }
}

export const IPAD = 0x36;
export const OPAD = 0x5c;

/**
 * Writes an HMAC key block, K ⊕ pad with K zero-padded to `blockSize`, into `out[0, blockSize)`. K must be
 * at most one block (longer keys are hashed first, see `HmacKey`).
 */
export function writeHmacPad(key: Uint8Array, pad: number, out: Buffer, blockSize: number): void {
  if (key.byteLength > blockSize) throw new RangeError('HMAC key longer than a block must be hashed first');
  out.fill(pad, 0, blockSize);
  for (let i = 0; i < key.byteLength; i++) out[i] = (key[i] ?? 0) ^ pad;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * HKDF-Extract (RFC 5869 §2.2): PRK = HMAC-Hash(salt, IKM). An empty salt needs no special case: HMAC pads
 * its key with zeros to the block size, so "" and HashLen zero bytes give the same PRK, as the RFC requires.
 */
export function hkdfExtract(hashName: HashName, salt: Uint8Array, ikm: Uint8Array): Buffer {
  return new HmacKey(hashName, salt).digest(ikm);
}

/** HKDF output is limited to 255 blocks (RFC 5869 §2.3); a longer request is a programming error. */
function checkExpandLength(hashName: HashName, length: number): void {
  const max = 255 * HASHES[hashName].digestLength;
  if (!Number.isInteger(length) || length < 0 || length > max) {
    throw new RangeError(`HKDF-Expand output must be 0..${max} bytes (got ${length})`);
  }
}

/** HKDF-Expand (RFC 5869 §2.3) into fresh memory. */
export function hkdfExpand(hashName: HashName, prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  checkExpandLength(hashName, length);
  const out = Buffer.allocUnsafeSlow(length);
  new HmacKey(hashName, prk).expandInto(info, out, 0, length);
  return out;
}

/** HKDF (RFC 5869): Extract then Expand. */
export function hkdf(
  hashName: HashName,
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Buffer {
  const prk = hkdfExtract(hashName, salt, ikm);
  try {
    return hkdfExpand(hashName, prk, info, length);
  } finally {
    prk.fill(0);
  }
}
