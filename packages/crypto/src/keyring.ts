import { CobblestoneKey } from './cobblestone';
import { DATA_CLASSES, type DataClass } from './context';
import { CryptoError } from './errors';
import { hkdf } from './hkdf';

export const KEY_LENGTH = 32;
export const KEY_ID_LENGTH = 16;

/**
 * One generation of key material as the v1 format uses it: the seam a KMS/envelope provider plugs into.
 * `id` is written into every ciphertext sealed with this generation and selects it again on open; `dataKey`
 * returns the 32-byte Cobblestone input key (the DEK) of a data class. The local provider derives both from
 * `ENCRYPTION_KEY`; an envelope provider would name a KEK version with `id` and return DEKs it unwrapped
 * (and cached) for it. The keyring asks for each data key once, at construction.
 */
export interface KeyGeneration {
  readonly id: Uint8Array;
  /**
   * The data classes this generation holds keys for (`undefined` = the general key). Default: all of them
   * (direct-derivation mode). An envelope DEK serves exactly one class, so its id in a ciphertext also pins the
   * class: a ciphertext whose context names another class does not open.
   */
  readonly dataClasses?: readonly (DataClass | undefined)[];
  dataKey(dataClass: DataClass | undefined): Uint8Array;
}

const ALL_CLASSES: readonly (DataClass | undefined)[] = Object.freeze([undefined, ...DATA_CLASSES]);

/**
 * HKDF labels: one per derived value, so no key serves two purposes. The key id is a PRF output of the key
 * (it reveals nothing about it, and a different key gets a different id); each data class gets its own DEK.
 */
const KEYRING_SALT = Buffer.from('signal/crypto/keyring/v1', 'latin1');
const KEY_ID_LABEL = Buffer.from('key-id', 'latin1');
const GENERAL_DATA_KEY = 'general';

function dataKeyLabel(dataClass: DataClass | undefined): Buffer {
  return Buffer.from(`data-key/${dataClass ?? GENERAL_DATA_KEY}`, 'latin1');
}

/**
 * The local provider's key generation, from a raw 32-byte key (parsing `ENCRYPTION_KEY` hex is the config
 * package's job). The raw key is not retained: only its id and the derived data keys are.
 */
export function localKeyGeneration(key: Uint8Array): KeyGeneration {
  if (!(key instanceof Uint8Array) || key.byteLength !== KEY_LENGTH) {
    const got = key instanceof Uint8Array ? `${key.byteLength} bytes` : typeof key;
    throw new CryptoError('invalid_key', `encryption key must be exactly ${KEY_LENGTH} bytes (got ${got})`);
  }
  if (key.every((byte) => byte === key[0])) {
    throw new CryptoError('invalid_key', 'encryption key is a placeholder (every byte is the same)');
  }
  const id = hkdf('sha512', key, KEYRING_SALT, KEY_ID_LABEL, KEY_ID_LENGTH);
  const dataKeys = new Map<DataClass | undefined, Buffer>();
  for (const dataClass of [undefined, ...DATA_CLASSES]) {
    dataKeys.set(dataClass, hkdf('sha512', key, KEYRING_SALT, dataKeyLabel(dataClass), KEY_LENGTH));
  }
  return Object.freeze({
    id,
    dataKey(dataClass: DataClass | undefined): Uint8Array {
      const dataKey = dataKeys.get(dataClass);
      if (dataKey === undefined) throw new CryptoError('invalid_key', 'no data key for this data class');
      return dataKey;
    },
  });
}

/** A key generation prepared for use: its id, and one Cobblestone key per data class. */
export class KeyEntry {
  readonly id: Buffer;
  /** Hex fingerprint of `id`: what `check-key`, health, metrics and audit events show. */
  readonly idHex: string;
  /** The data classes this entry holds keys for (`undefined` = the general key). */
  readonly dataClasses: readonly (DataClass | undefined)[];
  readonly #generation: KeyGeneration;
  readonly #keys = new Map<DataClass | undefined, CobblestoneKey>();
  #destroyed = false;

  constructor(generation: KeyGeneration) {
    if (generation.id.byteLength !== KEY_ID_LENGTH) {
      throw new CryptoError(
        'invalid_key',
        `key id must be ${KEY_ID_LENGTH} bytes (got ${generation.id.byteLength})`,
      );
    }
    this.id = Buffer.from(generation.id);
    this.idHex = this.id.toString('hex');
    this.#generation = generation;
    this.dataClasses = generation.dataClasses ?? ALL_CLASSES;
    for (const dataClass of this.dataClasses) {
      this.#keys.set(dataClass, new CobblestoneKey(generation.dataKey(dataClass)));
    }
  }

  cobblestoneKey(dataClass: DataClass | undefined): CobblestoneKey {
    // A zeroed key would still "work" (consistently, under an all-zero pad): never hand it out.
    if (this.#destroyed) throw new CryptoError('key_destroyed', 'this key was destroyed');
    const key = this.#keys.get(dataClass);
    if (key !== undefined) return key;
    if (dataClass === undefined || DATA_CLASSES.includes(dataClass)) {
      // An envelope DEK of another class: the ciphertext was moved out of its class, or the context lies.
      throw new CryptoError(
        'commitment_mismatch',
        'the key this ciphertext names belongs to another data class',
      );
    }
    throw new CryptoError('invalid_context', 'unknown data class');
  }

  /** Zeroes the derived key material (best effort); the entry opens and seals nothing afterwards. */
  destroy(): void {
    this.#destroyed = true;
    for (const key of this.#keys.values()) key.destroy();
  }

  /** Asks the provider again: true when it still answers with a well-formed id and data key for every class. */
  verify(): boolean {
    try {
      if (!this.id.equals(this.#generation.id)) return false;
      return this.dataClasses.every(
        (dataClass) => this.#generation.dataKey(dataClass).byteLength === KEY_LENGTH,
      );
    } catch {
      return false;
    }
  }
}

/**
 * The keys a process holds: the current one (seals everything) and, during a rotation, the previous one (only
 * opens). Dual-key mode needs no state: each ciphertext names its key by id.
 */
export interface Keyring {
  /** `local`, or the name of the KMS provider that supplied the generations. */
  readonly provider: string;
  readonly current: KeyEntry;
  readonly previous: KeyEntry | undefined;
  readonly currentKeyId: string;
  readonly previousKeyId: string | undefined;
  readonly dualKeyMode: boolean;
  /** The entry whose id is `keyId`, if this process holds it. Key ids are public: a plain comparison is fine. */
  find(keyId: Uint8Array): KeyEntry | undefined;
  /** The entry that seals data of `dataClass`: `current` here; an envelope keyring's active DEK of that class. */
  sealingEntry(dataClass: DataClass | undefined): KeyEntry;
  /** True when `keyId` seals new data (the re-encryption job leaves such ciphertexts alone). */
  isCurrent(keyId: Uint8Array): boolean;
  /** Hex ids of every key that seals new data: `[currentKeyId]` here; one active DEK per class in envelope mode. */
  sealingKeyIds(): readonly string[];
  /**
   * Envelope keyrings only: makes the key `keyId` names available to `find` (fetching and unwrapping it
   * through the DEK cache). Resolves when it is held, rejects with a `CryptoError` when it cannot be.
   */
  prepare?(keyId: Uint8Array): Promise<void>;
  /**
   * Envelope keyrings with crypto-shredding only: the DEK that seals `subject`'s data of `dataClass` (created
   * on first use), or undefined when this class has no per-subject DEKs (seal with `sealingEntry`).
   */
  subjectEntry?(dataClass: DataClass | undefined, subject: string): Promise<KeyEntry | undefined>;
  /**
   * `subjectEntry` without I/O (for writers inside a database transaction): the subject's DEK if a
   * `subjectEntry` call made it ready and it is still fresh; undefined when it is not ready; null when this
   * class has no per-subject DEKs (seal with `sealingEntry`).
   */
  readySubjectEntry?(dataClass: DataClass | undefined, subject: string): KeyEntry | null | undefined;
}

export interface KeyringOptions {
  /** The key that seals: a raw 32-byte key (local provider) or a provider's generation. */
  readonly current: Uint8Array | KeyGeneration;
  /** The key being rotated out (`ENCRYPTION_KEY_PREVIOUS`): opens old ciphertexts, never seals. */
  readonly previous?: Uint8Array | KeyGeneration | undefined;
  /** Shown in health and audit events; defaults to `local`. */
  readonly provider?: string;
}

export function createKeyring(options: KeyringOptions): Keyring {
  const current = new KeyEntry(asGeneration(options.current));
  const previous = options.previous === undefined ? undefined : new KeyEntry(asGeneration(options.previous));
  if (previous?.id.equals(current.id)) {
    throw new CryptoError(
      'invalid_key',
      'the previous key is the same as the current key: set the previous key to the old key',
    );
  }
  return Object.freeze({
    provider: options.provider ?? 'local',
    current,
    previous,
    currentKeyId: current.idHex,
    previousKeyId: previous?.idHex,
    dualKeyMode: previous !== undefined,
    find(keyId: Uint8Array): KeyEntry | undefined {
      if (sameId(current.id, keyId)) return current;
      if (previous !== undefined && sameId(previous.id, keyId)) return previous;
      return undefined;
    },
    sealingEntry(): KeyEntry {
      return current;
    },
    isCurrent(keyId: Uint8Array): boolean {
      return sameId(current.id, keyId);
    },
    sealingKeyIds(): readonly string[] {
      return [current.idHex];
    },
  });
}

/** Byte comparison of two key ids: a JS loop beats `Buffer.equals`' native call at 16 bytes, on every open. */
export function sameId(id: Uint8Array, other: Uint8Array): boolean {
  if (other.byteLength !== id.byteLength) return false;
  for (let i = 0; i < id.byteLength; i++) if (id[i] !== other[i]) return false;
  return true;
}

function asGeneration(key: Uint8Array | KeyGeneration): KeyGeneration {
  return key instanceof Uint8Array ? localKeyGeneration(key) : key;
}
