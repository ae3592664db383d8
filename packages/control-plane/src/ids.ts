import { randomBytes, randomInt } from 'node:crypto';

/**
 * Resource ids: `<prefix>_` + 12 hex digits of the creation time in ms + 16 random hex digits (64 bits).
 * They sort by creation time, so keyset pagination on the id alone lists oldest first, and the random part
 * keeps them unguessable and collision-free across processes.
 */
export const ID_PREFIXES = {
  org: 'org',
  user: 'usr',
  pipeline: 'pl',
  pipelineKey: 'pk',
  pipelineSecret: 'ps',
  integration: 'int',
  refreshToken: 'rt',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

export function newId(kind: IdKind, now: Date): string {
  const time = Math.max(0, Math.min(now.getTime(), 0xffff_ffff_ffff)).toString(16).padStart(12, '0');
  return `${ID_PREFIXES[kind]}_${time}${randomBytes(8).toString('hex')}`;
}

/** What every id parameter must look like before it reaches SQL (a cheap filter for garbage input). */
export const ID_PATTERN = /^[a-z]{2,3}_[0-9a-f]{28}$/;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `length` characters drawn uniformly from [0-9A-Za-z] with the CSPRNG (no modulo bias: `randomInt`). */
export function randomBase62(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE62[randomInt(62)];
  return out;
}
