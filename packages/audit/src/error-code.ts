/** The stable `code` of an error for logs (never its message, which may come from a driver). */
export function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string')
    return err.code;
  return 'unknown';
}
