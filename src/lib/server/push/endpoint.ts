import dns from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import ipaddr from 'ipaddr.js';

/**
 * Where a push may go. A push endpoint comes from the browser, so it is untrusted: it must be
 * https and must not reach into our own network (private, loopback, link-local, ...). It is
 * checked when stored, and again at every send, where the check runs inside the connection's own
 * DNS lookup so that a name cannot resolve to something else between the check and the connect.
 */
export interface EndpointPolicy {
  /** Tests only: lets endpoints on 127.0.0.1 / ::1 / localhost through (never private networks). */
  allowLoopback?: boolean;
}

export class EndpointError extends Error {
  override name = 'EndpointError';
}

const MAX_LENGTH = 2048;

/** Throws EndpointError unless `endpoint` is an https URL that may be pushed to. */
export function checkEndpoint(endpoint: string, policy: EndpointPolicy = {}): URL {
  if (endpoint.length > MAX_LENGTH) throw new EndpointError('the push endpoint is too long');
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new EndpointError('the push endpoint is not a URL');
  }
  if (url.protocol !== 'https:') throw new EndpointError('the push endpoint must be https');
  if (url.username || url.password) throw new EndpointError('the push endpoint must not carry credentials');
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (ipaddr.isValid(host)) {
    checkAddress(host, policy);
  } else if (host === 'localhost' || host.endsWith('.localhost')) {
    if (!policy.allowLoopback) throw new EndpointError('the push endpoint must not point at this machine');
  } else if (!host.includes('.') || host.endsWith('.local') || host.endsWith('.internal')) {
    throw new EndpointError('the push endpoint must name a public host');
  }
  return url;
}

/** Throws EndpointError unless `address` is a public unicast address (or loopback, when allowed). */
export function checkAddress(address: string, policy: EndpointPolicy = {}): void {
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.process(address);
  } catch {
    throw new EndpointError(`not an IP address: ${address}`);
  }
  const range = ip.range();
  if (range === 'unicast') return;
  if (range === 'loopback' && policy.allowLoopback) return;
  throw new EndpointError(`the push endpoint must not point at a ${range} address (${ip.toString()})`);
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for sockets (http.Agent option) that resolves as usual and then refuses any address
 * that checkAddress refuses, so the check holds for the address actually connected to.
 */
export function guardedLookup(policy: EndpointPolicy) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      try {
        for (const a of addresses) checkAddress(a.address, policy);
      } catch (e) {
        return callback(Object.assign(e as Error, { code: 'EPUSHADDRESS' }) as NodeJS.ErrnoException, '');
      }
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '');
      if (options.all) callback(null, addresses);
      else callback(null, first.address, first.family);
    });
  };
}
