// The console's one way to the HTTP API: same origin, the session cookie, the CSRF token on
// every unsafe request. The token lives only in this module's memory, never in storage.

const BASE = '/api/v1';
let csrfToken = null;
const expiryListeners = [];

/** An error answered by the API: HTTP status, stable code, a sentence, maybe a field. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

export function setCsrfToken(token) {
  csrfToken = token || null;
}

/** Called with the error when the server says the session has ended. */
export function onSessionExpired(listener) {
  expiryListeners.push(listener);
}

function isUnsafe(method) {
  return !['GET', 'HEAD', 'OPTIONS'].includes(method);
}

/** Sends one request; answers the parsed JSON body (or null) or throws an ApiError. */
export async function request(method, path, body, options = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (isUnsafe(method) && csrfToken) headers['x-csrf-token'] = csrfToken;
  let response;
  try {
    response = await fetch(BASE + path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', e.message);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (options.page && response.ok) {
    return { items: data || [], next: response.headers.get('x-next-cursor') };
  }
  if (!response.ok) {
    const code = (data && data.code) || `http_${response.status}`;
    const message = (data && data.message) || response.statusText;
    const error = new ApiError(response.status, code, message, data && data.field);
    if (response.status === 401 && !options.quiet) {
      expiryListeners.forEach((listener) => listener(error));
    }
    throw error;
  }
  return data;
}

export const get = (path, options) => request('GET', path, undefined, options);

/** One page of a list: `{items, next}`, `next` being the cursor of the following page. */
export const getPage = (path, params = {}) =>
  request('GET', `${path}${query(params)}`, undefined, { page: true });

/** Every item of a list's pages, up to `max` items (the console's queues are short). */
export async function getAll(path, params = {}, max = 2000) {
  const items = [];
  let cursor = null;
  do {
    const page = await getPage(path, { ...params, limit: 500, cursor });
    items.push(...page.items);
    cursor = page.next;
  } while (cursor && items.length < max);
  return items;
}
export const post = (path, body, options) =>
  request('POST', path, body === undefined ? {} : body, options);
export const del = (path, options) => request('DELETE', path, undefined, options);

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export function mediaUrl(hash) {
  return `${BASE}/media/${encodeURIComponent(hash)}`;
}

export function thumbnailUrl(hash, max = 320) {
  return `${BASE}/media/${encodeURIComponent(hash)}/thumbnail?max=${max}`;
}
