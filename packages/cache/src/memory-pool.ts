/** One key of the in-process store. The link and slot fields belong to its pool. */
export interface Entry {
  readonly key: string;
  readonly pool: Pool;
  value: string;
  expiresAt: number;
  /** Index in the pool's expiry heap. */
  slot: number;
  /** Neighbours in the pool's recency list. */
  older: Entry | undefined;
  newer: Entry | undefined;
}

/**
 * One budget of the in-process store: its entries by key (a Map), in recency order (a doubly linked list
 * through the entries: the least recently used is `#oldest`) and in expiry order (a binary min-heap indexed
 * by `Entry.slot`). Every operation is O(1) or O(log n), never a walk: the heap gives the entry that
 * expires first, so an expired entry is dropped before a live one is evicted, and the list gives the least
 * recently used. (Not the Map's own order: in V8, finding the first entry of a Map that had many entries
 * deleted from its front walks over every deleted slot until the table is rehashed, which made each
 * eviction O(n) under steady churn.)
 */
export class Pool {
  readonly name: string;
  readonly maxEntries: number;
  /** false: live entries are never evicted; when full, the store refuses with `capacity` (fail closed). */
  readonly evictsLive: boolean;
  readonly #entries = new Map<string, Entry>();
  readonly #heap: Entry[] = [];
  #oldest: Entry | undefined;
  #newest: Entry | undefined;

  constructor(name: string, maxEntries: number, evictsLive: boolean) {
    this.name = name;
    this.maxEntries = maxEntries;
    this.evictsLive = evictsLive;
  }

  /** Entries held, expired-but-unswept ones included. */
  get size(): number {
    return this.#entries.size;
  }

  get(key: string): Entry | undefined {
    return this.#entries.get(key);
  }

  add(key: string, value: string, expiresAt: number): Entry {
    const entry: Entry = {
      key,
      pool: this,
      value,
      expiresAt,
      slot: this.#heap.length,
      older: undefined,
      newer: undefined,
    };
    this.#entries.set(key, entry);
    this.#append(entry);
    this.#heap.push(entry);
    this.#up(entry.slot);
    return entry;
  }

  /** Gives an entry a new value and TTL in place, and makes it the most recently used. */
  replace(entry: Entry, value: string, expiresAt: number): void {
    entry.value = value;
    entry.expiresAt = expiresAt;
    this.#up(entry.slot);
    this.#down(entry.slot);
    this.touch(entry);
  }

  /** Makes `entry` the most recently used. */
  touch(entry: Entry): void {
    if (this.#newest === entry) return;
    this.#unlink(entry);
    this.#append(entry);
  }

  remove(entry: Entry): void {
    this.#entries.delete(entry.key);
    this.#unlink(entry);
    const last = this.#heap.pop();
    if (last === undefined || last === entry) return;
    this.#heap[entry.slot] = last;
    last.slot = entry.slot;
    this.#up(last.slot);
    this.#down(last.slot);
  }

  /** The entry that expires first. */
  soonestToExpire(): Entry | undefined {
    return this.#heap[0];
  }

  leastRecentlyUsed(): Entry | undefined {
    return this.#oldest;
  }

  clear(): void {
    this.#entries.clear();
    this.#heap.length = 0;
    this.#oldest = undefined;
    this.#newest = undefined;
  }

  #append(entry: Entry): void {
    entry.older = this.#newest;
    entry.newer = undefined;
    if (this.#newest === undefined) this.#oldest = entry;
    else this.#newest.newer = entry;
    this.#newest = entry;
  }

  #unlink(entry: Entry): void {
    if (entry.older === undefined) this.#oldest = entry.newer;
    else entry.older.newer = entry.newer;
    if (entry.newer === undefined) this.#newest = entry.older;
    else entry.newer.older = entry.older;
    entry.older = undefined;
    entry.newer = undefined;
  }

  #up(slot: number): void {
    const heap = this.#heap;
    const entry = heap[slot];
    if (entry === undefined) return;
    let at = slot;
    while (at > 0) {
      const parentAt = (at - 1) >> 1;
      const parent = heap[parentAt];
      if (parent === undefined || parent.expiresAt <= entry.expiresAt) break;
      heap[at] = parent;
      parent.slot = at;
      at = parentAt;
    }
    heap[at] = entry;
    entry.slot = at;
  }

  #down(slot: number): void {
    const heap = this.#heap;
    const entry = heap[slot];
    if (entry === undefined) return;
    let at = slot;
    for (;;) {
      let childAt = 2 * at + 1;
      let child = heap[childAt];
      if (child === undefined) break;
      const right = heap[childAt + 1];
      if (right !== undefined && right.expiresAt < child.expiresAt) {
        childAt += 1;
        child = right;
      }
      if (entry.expiresAt <= child.expiresAt) break;
      heap[at] = child;
      child.slot = at;
      at = childAt;
    }
    heap[at] = entry;
    entry.slot = at;
  }
}
