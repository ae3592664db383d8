export type { DataflyErrorCode } from './browser/client';
export { createClient, DataflyError } from './browser/client';
export { boot } from './browser/loader';
export type {
  ConsentCategories,
  ConsentCategory,
  ConsentContext,
  CrossDomainContext,
  CrossDomainOptions,
  DataflyApi,
  DataflyOptions,
  EventBody,
  EventContext,
  EventType,
  Logger,
  PageContext,
  Properties,
} from './browser/types';
export { VERSION } from './browser/version';
export type { SdkBundle } from './build';
export { buildSdk, SDK_GZIP_BUDGET_BYTES } from './build';
