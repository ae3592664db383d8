export { CacheError, type CacheErrorCode, isCacheError } from './errors';
export type { CacheLogger } from './logger';
export {
  createMemoryCache,
  type EvictableFamily,
  type MemoryCacheOptions,
  MemoryCacheStore,
  type MemoryCacheStoreOptions,
  type MemoryPoolUsage,
} from './memory.adapter';
export type { Cache, SetOptions, WindowCount } from './port';
export { type RateLimitDecision, RateLimiter, type RateLimiterOptions } from './rate-limiter';
export { createRedisCache } from './redis.adapter';
export type { RedisCacheOptions, RedisTlsOptions } from './redis-connection';
