import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A configuration value that must never be printed: keys, passwords, tokens, connection strings with
 * credentials. Every way of turning it into text (`String()`, template literals, `JSON.stringify`,
 * `util.inspect`, pino serialisation) yields `[redacted]`; only `reveal()` gives the value, and only code
 * that needs the value (a keyring, a driver) should call it.
 */
export class Secret<T = string> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
    Object.freeze(this);
  }

  reveal(): T {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

export function isSecret(value: unknown): value is Secret<unknown> {
  return value instanceof Secret;
}
