/** A request target in canonical form: what routing, allowlists, metering and the upstream all see. */
export interface CanonicalTarget {
  path: string;
  /** The path and query sent upstream, appended to the service's origin. */
  pathAndSearch: string;
}

/** Segments of unreserved characters that do not start with a dot: no dot segments, nothing to decode. */
const SIMPLE_PATH = /^(?:\/[\w~-][\w.~-]*)*\/?$/;
/** Printable ASCII the URL serializer leaves as it is in a query, without `"`, `#`, `'`, `<`, `>`, `\`. */
const SIMPLE_QUERY = /^(?:\?[!$-&(-;=?-[\]-~]+)?$/;

/**
 * The canonical target of a raw request URL, or undefined when it is not in canonical form: dot
 * segments, backslashes, encoded dots or slashes, and scheme-relative forms that could move the
 * request to another host are refused rather than normalised. Usual paths are checked by two
 * patterns; everything else goes through the WHATWG URL parser and must come out unchanged.
 */
export function canonicalTarget(raw: string): CanonicalTarget | undefined {
  if (raw.charCodeAt(0) !== 0x2f /* / */) return undefined;
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  if (SIMPLE_PATH.test(path) && (q < 0 || SIMPLE_QUERY.test(raw.slice(q)))) {
    return { path, pathAndSearch: raw };
  }
  return parsedTarget(raw);
}

/** The general case, by the URL parser (exported for the tests that compare both ways). */
export function parsedTarget(raw: string): CanonicalTarget | undefined {
  if (!raw.startsWith('/') || raw.startsWith('//') || raw.includes('\\')) return undefined;
  if (/%2e|%2f|%5c/i.test(raw.split('?')[0]!)) return undefined;
  let url: URL;
  try {
    url = new URL(raw, 'http://proxy.invalid');
  } catch {
    return undefined;
  }
  if (url.origin !== 'http://proxy.invalid') return undefined;
  const pathAndSearch = url.pathname + url.search;
  if (pathAndSearch !== raw.split('#')[0]) return undefined;
  return { path: url.pathname, pathAndSearch };
}
