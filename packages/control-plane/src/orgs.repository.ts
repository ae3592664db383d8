import { isStoreError, type Queryable } from '@signal/store';
import { z } from 'zod';
import { ControlPlaneError } from './errors';
import { newId } from './ids';
import type { Clock, User, UsersRepository } from './users.repository';
import {
  emailSchema,
  nameSchema,
  parseInput,
  parseRow,
  passwordSchema,
  slugify,
  slugSchema,
} from './validation';

export interface Org {
  readonly id: string;
  readonly name: string;
  readonly slug: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

const orgRowSchema = z
  .object({ id: z.string(), name: z.string(), slug: z.string(), created_at: z.date(), updated_at: z.date() })
  .transform(
    (row): Org => ({
      id: row.id,
      name: row.name,
      slug: row.slug,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    }),
  );

const ORG_COLUMNS = 'id, name, slug, created_at, updated_at';

export const newOrgSchema = z.strictObject({
  name: nameSchema,
  slug: slugSchema.optional(),
  owner: z.strictObject({
    email: emailSchema,
    name: nameSchema.nullable().optional(),
    password: passwordSchema,
  }),
});
export type NewOrgInput = z.input<typeof newOrgSchema>;

export interface OrgsRepository {
  /** An org never exists without its owner: both are created in one transaction. */
  createWithOwner(input: NewOrgInput): Promise<{ readonly org: Org; readonly owner: User }>;
  /** Same, inside the caller's transaction. */
  insertWithOwner(q: Queryable, input: NewOrgInput): Promise<{ readonly org: Org; readonly owner: User }>;
  get(orgId: string): Promise<Org | null>;
  getBySlug(q: Pick<Queryable, 'query'>, slug: string): Promise<Org | null>;
}

export function createOrgsRepository(deps: {
  readonly db: {
    query: Queryable['query'];
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  };
  readonly clock: Clock;
  readonly users: Pick<UsersRepository, 'insert'>;
}): OrgsRepository {
  const { db, clock, users } = deps;

  async function insertWithOwner(q: Queryable, raw: NewOrgInput) {
    const input = parseInput(newOrgSchema, raw, 'org');
    const now = clock();
    let rows: unknown[];
    try {
      ({ rows } = await q.query(
        `INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
         RETURNING ${ORG_COLUMNS}`,
        [newId('org', now), input.name, input.slug ?? slugify(input.name), now],
      ));
    } catch (error) {
      if (isStoreError(error) && error.code === 'conflict') {
        throw new ControlPlaneError('conflict', 'an org with this slug already exists');
      }
      throw error;
    }
    const org = parseRow(orgRowSchema, rows[0], 'orgs');
    const owner = await users.insert(q, org.id, { ...input.owner, role: 'owner' });
    return { org, owner };
  }

  return {
    insertWithOwner,
    createWithOwner: (input) => db.transaction((tx) => insertWithOwner(tx, input)),
    async get(orgId) {
      const { rows } = await db.query(`SELECT ${ORG_COLUMNS} FROM orgs WHERE id = $1`, [orgId]);
      return rows[0] === undefined ? null : parseRow(orgRowSchema, rows[0], 'orgs');
    },
    async getBySlug(q, slug) {
      const { rows } = await q.query(`SELECT ${ORG_COLUMNS} FROM orgs WHERE slug = $1`, [slug]);
      return rows[0] === undefined ? null : parseRow(orgRowSchema, rows[0], 'orgs');
    },
  };
}
