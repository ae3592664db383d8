/**
 * Cookies as a consent tool or a vendor pixel would leave them on the page. Tests write `document.cookie`
 * directly because that is exactly what those scripts do and what the SDK reads back.
 */
export function setCookie(name: string, value: string): void {
  // biome-ignore lint/suspicious/noDocumentCookie: simulating a third-party script that sets a cookie
  document.cookie = `${name}=${value}; path=/`;
}

export function clearCookies(): void {
  for (const part of document.cookie.split(';')) {
    const name = part.split('=')[0]?.trim();
    // biome-ignore lint/suspicious/noDocumentCookie: expiring what setCookie wrote
    if (name) document.cookie = `${name}=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT`;
  }
}
