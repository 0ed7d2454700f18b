import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Which addresses outbound calls (webhooks, the `http` job type) may reach. Private, loopback,
 * link-local (with the cloud metadata address), CGNAT, multicast and reserved ranges are refused unless
 * OUTBOUND_ALLOW lists the host name, the address or a range holding it: otherwise a client could make
 * the service call into the network it runs in (SSRF).
 */
export class OutboundPolicy {
  private readonly refused = new BlockList();
  private readonly allowed = new BlockList();
  private readonly allowedHosts = new Set<string>();

  constructor(allow: string[] = []) {
    for (const [network, prefix] of REFUSED_V4) this.refused.addSubnet(network, prefix, 'ipv4');
    for (const [network, prefix] of REFUSED_V6) this.refused.addSubnet(network, prefix, 'ipv6');
    for (const entry of allow) {
      const [address, prefix] = entry.split('/');
      const family = isIP(address ?? '');
      if (family === 0) this.allowedHosts.add(entry.toLowerCase());
      else if (prefix === undefined) this.allowed.addAddress(address!, family === 4 ? 'ipv4' : 'ipv6');
      else this.allowed.addSubnet(address!, Number(prefix), family === 4 ? 'ipv4' : 'ipv6');
    }
  }

  /** Why `address` may not be called (undefined when it may), for a host name the caller asked for. */
  refusal(host: string, address: string): string | undefined {
    if (this.allowedHosts.has(host.toLowerCase())) return undefined;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
    const ip = mapped ?? address;
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (this.allowed.check(ip, family)) return undefined;
    if (this.refused.check(ip, family))
      return `${host} resolves to ${address}, a private, loopback, link-local or reserved address (OUTBOUND_ALLOW can list it)`;
    return undefined;
  }

  /**
   * Why a URL whose host is an address written literally may not be called (undefined when it may, or when the
   * host is a name: names are checked when connecting, see lookupFor). Such a URL skips the lookup.
   */
  literalRefusal(url: URL): string | undefined {
    const literal = url.hostname.replace(/^\[|\]$/g, '');
    return isIP(literal) !== 0 ? this.refusal(url.hostname, literal) : undefined;
  }

  /**
   * A `lookup` for http.request that checks every address at connect time, so a host name that resolves
   * to a public address when checked and a private one when connecting (DNS rebinding) is still refused.
   */
  lookupFor(
    host: string,
  ): (
    hostname: string,
    options: object,
    callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void,
  ) => void {
    return (hostname, options, callback) => {
      dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
        if (error) return callback(error, []);
        const list = addresses;
        for (const { address } of list) {
          const reason = this.refusal(host, address);
          if (reason) return callback(new OutboundRefusedError(reason), []);
        }
        const wantsAll = (options as { all?: boolean }).all === true;
        if (wantsAll) return callback(null, list);
        callback(null, list[0]!.address, list[0]!.family);
      });
    };
  }
}

export class OutboundRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutboundRefusedError';
  }
}

const REFUSED_V4: [string, number][] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];
const REFUSED_V6: [string, number][] = [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
  ['64:ff9b::', 96],
];
