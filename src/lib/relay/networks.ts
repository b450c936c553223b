import ipaddr from 'ipaddr.js';

/** A parsed CIDR block; `text` is its canonical spelling for display and storage. */
export interface Network {
  text: string;
  range: [ipaddr.IPv4 | ipaddr.IPv6, number];
}

/**
 * Reads an address the way it arrives from a socket or a form and returns it in one spelling:
 * IPv4-mapped IPv6 (`::ffff:10.0.0.1`) becomes plain IPv4, IPv6 is compressed and lower-case.
 * Returns undefined for anything that is not an IP address.
 */
export function normalizeIp(text: string): string | undefined {
  // Every SMTP session asks several times, and a relay sees the same few clients all day.
  const known = normalized.get(text);
  if (known !== undefined || normalized.has(text)) return known;
  const result = normalizeUncached(text);
  if (normalized.size >= CACHE_SIZE) normalized.clear();
  normalized.set(text, result);
  return result;
}

const CACHE_SIZE = 4096;
const normalized = new Map<string, string | undefined>();

function normalizeUncached(text: string): string | undefined {
  const bare = text.trim().replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  if (!ipaddr.isValid(bare)) return undefined;
  return ipaddr.process(bare).toString();
}

export function parseNetwork(text: string): Network {
  const t = text.trim();
  if (!t) throw new Error('an empty network');
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  let bits: number;
  if (t.includes('/')) {
    try {
      [addr, bits] = ipaddr.parseCIDR(t);
    } catch {
      throw new Error(`"${t}" is not a CIDR block like 192.168.1.0/24 or 2001:db8::/32`);
    }
  } else {
    const one = normalizeIp(t);
    if (!one) throw new Error(`"${t}" is not an IP address or a CIDR block`);
    addr = ipaddr.parse(one);
    bits = addr.kind() === 'ipv4' ? 32 : 128;
  }
  // A CIDR written on a mapped address (::ffff:10.0.0.0/104) means the IPv4 block it maps.
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    addr = (addr as ipaddr.IPv6).toIPv4Address();
    bits -= 96;
  }
  const base = networkBase(addr, bits);
  return { text: `${base.toString()}/${bits}`, range: [base, bits] };
}

function networkBase(addr: ipaddr.IPv4 | ipaddr.IPv6, bits: number): ipaddr.IPv4 | ipaddr.IPv6 {
  const bytes = addr.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] = bytes[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return ipaddr.fromByteArray(bytes);
}

/** Comma or whitespace separated CIDR blocks; an empty list is allowed (no network is trusted). */
export function parseNetworkList(text: string): Network[] {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  const problems: string[] = [];
  const out: Network[] = [];
  for (const p of parts) {
    try {
      out.push(parseNetwork(p));
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (problems.length) throw new Error(problems.join('; '));
  return out;
}

export function inNetworks(ip: string, networks: readonly Network[]): boolean {
  if (networks.length === 0) return false;
  // Lists are replaced, never changed in place, so a list's answers can be kept with it.
  let answers = membership.get(networks);
  if (!answers) membership.set(networks, (answers = new Map()));
  let answer = answers.get(ip);
  if (answer === undefined) {
    const norm = normalizeIp(ip);
    const addr = norm ? ipaddr.parse(norm) : undefined;
    answer = addr ? networks.some((n) => n.range[0].kind() === addr.kind() && addr.match(n.range)) : false;
    if (answers.size >= CACHE_SIZE) answers.clear();
    answers.set(ip, answer);
  }
  return answer;
}

const membership = new WeakMap<readonly Network[], Map<string, boolean>>();
