/** A string key-value store: Web Storage when the browser allows it, else memory for this page. */
export interface KeyValueStore {
  get(key: string): string | null;
  /** False when the browser refused the write (quota, storage disabled). */
  set(key: string, value: string): boolean;
  remove(key: string): void;
  keys(): string[];
}

function memoryStore(): KeyValueStore {
  const map = new Map<string, string>();
  return {
    get: (key) => map.get(key) ?? null,
    set: (key, value) => {
      map.set(key, value);
      return true;
    },
    remove: (key) => {
      map.delete(key);
    },
    keys: () => [...map.keys()],
  };
}

/**
 * Touching `localStorage` throws in some privacy modes and when cookies are blocked, and writes throw at the
 * quota, so every access is guarded: the SDK degrades to memory instead of breaking the page.
 */
export function webStore(kind: 'localStorage' | 'sessionStorage'): KeyValueStore {
  let storage: Storage;
  try {
    storage = window[kind];
    const probe = '__df_probe';
    storage.setItem(probe, probe);
    storage.removeItem(probe);
  } catch {
    return memoryStore();
  }
  return {
    get: (key) => {
      try {
        return storage.getItem(key);
      } catch {
        return null;
      }
    },
    set: (key, value) => {
      try {
        storage.setItem(key, value);
        return true;
      } catch {
        return false;
      }
    },
    remove: (key) => {
      try {
        storage.removeItem(key);
      } catch {
        // Nothing to do: a key we cannot remove is one we could not read either.
      }
    },
    keys: () => {
      const out: string[] = [];
      try {
        for (let i = 0; i < storage.length; i += 1) {
          const key = storage.key(i);
          if (key !== null) out.push(key);
        }
      } catch {
        // Same as above.
      }
      return out;
    },
  };
}

/** A cookie's raw (still URL-encoded) value, or null. */
export function readCookie(name: string): string | null {
  let all: string;
  try {
    all = document.cookie;
  } catch {
    return null;
  }
  for (const part of all.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

export function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

export function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
