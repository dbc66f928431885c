/**
 * RFC 9110 challenges out of a `WWW-Authenticate` value. `fetch` joins repeated header lines with
 * `", "`, so one value may hold several challenges: a new one starts where a token is not
 * followed by `=` (the scheme), e.g. `LSAT macaroon="…", invoice="…", L402 macaroon="…", …`.
 * Parameter names are lowercased; a repeated parameter keeps its first value; a token68
 * credential (no parameters) is kept as `token68`.
 */
export interface ParsedChallenge {
  scheme: string;
  params: Record<string, string>;
  token68?: string;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;

export function parseWwwAuthenticate(value: string): ParsedChallenge[] {
  const out: ParsedChallenge[] = [];
  let s = value;
  let current: ParsedChallenge | undefined;
  const skip = (): void => {
    s = s.replace(/^[\s,]+/, '');
  };
  skip();
  while (s.length > 0) {
    const name = TOKEN.exec(s)?.[0];
    if (!name) break; // not a challenge list we can read: stop at what we have
    const rest = s.slice(name.length);
    const eq = /^\s*=\s*/.exec(rest);
    if (!eq || !current || /^\s*=\s*=/.test(rest)) {
      // A scheme (a token not followed by `=`), possibly with a token68 after it.
      current = { scheme: name, params: {} };
      out.push(current);
      s = rest.replace(/^\s+/, '');
      // A token68 ends at a comma or the end; `name=value` (a parameter) does not start one.
      const t68 = /^([A-Za-z0-9._~+/-]+=*)\s*(?:,|$)/.exec(s);
      if (t68 && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*=\s*[^=\s,]/.test(s)) {
        current.token68 = t68[1]!;
        s = s.slice(t68[1]!.length);
      }
      skip();
      continue;
    }
    s = rest.slice(eq[0].length);
    let v: string;
    if (s.startsWith('"')) {
      let i = 1;
      v = '';
      for (; i < s.length && s[i] !== '"'; i++) {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        v += s[i];
      }
      s = s.slice(i + 1);
    } else {
      v = /^[^,\s]*/.exec(s)![0];
      s = s.slice(v.length);
    }
    const key = name.toLowerCase();
    if (!(key in current.params)) current.params[key] = v;
    skip();
  }
  return out;
}
