export type { DataflyErrorCode } from './browser/client';
export { createClient, DataflyError } from './browser/client';
export { crossDomainLinker, TOKEN_PARAM } from './browser/cross-domain';
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
  LinkClick,
  Logger,
  PageContext,
  Properties,
} from './browser/types';
export { VERSION } from './browser/version';
export type { SdkBundle } from './build';
export { buildSdk, SDK_GZIP_BUDGET_BYTES } from './build';
