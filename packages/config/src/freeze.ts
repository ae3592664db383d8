import { isSecret } from './secret';

/** Freezes a plain object graph in place (Secrets are already frozen and keep their private value). */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || isSecret(value) || Object.isFrozen(value)) return value;
  for (const child of Object.values(value)) deepFreeze(child);
  return Object.freeze(value);
}
