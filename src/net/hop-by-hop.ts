/** Headers that belong to one connection (RFC 9110 §7.6.1): a proxy or a forwarder never passes them on. */
export const HOP_BY_HOP: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];
