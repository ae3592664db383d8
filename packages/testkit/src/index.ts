export { type ClosedPort, holdClosedPort } from './ports';
export { POSTGRES_URL, postgresAvailable, REDIS_URL, redisAvailable } from './services';
export { readVectorJson, readVectorText, repoRoot, vectorPath } from './vectors';
