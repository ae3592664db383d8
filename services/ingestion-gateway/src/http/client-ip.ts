// Moved to @signal/http (shared with the Identity Hub's per-client rate limits); kept so imports stay put.
export { clientIp, trustedProxies } from '@signal/http';
