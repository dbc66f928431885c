/**
 * The console's calls to the gateway's JSON API. The session is an HttpOnly cookie the browser
 * sends by itself; the CSRF token lives in memory only (never in storage) and goes with every
 * state-changing request.
 */
let csrf: string | undefined;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  const json: unknown = text ? JSON.parse(text) : {};
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string } }).error;
    throw new ApiError(res.status, e?.code ?? 'HTTP_' + res.status, e?.message ?? res.statusText);
  }
  return json as T;
}

export const get = <T>(path: string) => call<T>('GET', path);
export const post = <T>(path: string, body: unknown = {}) => call<T>('POST', path, body);
export const put = <T>(path: string, body: unknown) => call<T>('PUT', path, body);
export const del = <T>(path: string) => call<T>('DELETE', path);

/** Whether a session is open (and its CSRF token, kept in memory). */
export async function resume(): Promise<boolean> {
  try {
    csrf = (await get<{ csrfToken: string }>('/console/api/session')).csrfToken;
    return true;
  } catch {
    return false;
  }
}

export async function login(key: string): Promise<void> {
  csrf = (await post<{ csrfToken: string }>('/console/api/login', { key })).csrfToken;
}

export async function logout(): Promise<void> {
  await post('/console/api/logout');
  csrf = undefined;
}

/** An amount in msat (a decimal string) shown in sat, without floats: "1234567" -> "1,234.567 sat". */
export function sats(msat: string | undefined): string {
  if (msat === undefined) return '';
  const neg = msat.startsWith('-');
  const digits = (neg ? msat.slice(1) : msat).padStart(4, '0');
  const whole = digits.slice(0, -3).replace(/^0+(?=\d)/, '');
  const frac = digits.slice(-3).replace(/0+$/, '');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${neg ? '-' : ''}${grouped}${frac ? '.' + frac : ''} sat`;
}

export const when = (ms: number | undefined) => (ms === undefined ? '' : new Date(ms).toISOString());
