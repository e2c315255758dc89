// What the CPU runtime needs from its host, for Node (worker_threads, fs, v8 flags) and for
// browsers (Web Workers, fetch): host/node.ts or host/web.ts. Node's is imported only on the Node
// path, through '#host' (package.json's "imports"), which a bundler for browsers resolves to
// host/web.ts: neither a browser bundle nor a page loading these modules unbundled meets a Node module.
import { cpuPlatform as webPlatform } from '../../host/web.js';
import type { Platform } from '../../host/types.js';

export type { Platform, WorkerHandle } from '../../host/types.js';

export const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

let platform: Promise<Platform> | null = null;

export function loadPlatform(): Promise<Platform> {
  platform ??= isNode ? import('#host').then((host) => host.cpuPlatform()) : Promise.resolve(webPlatform());
  return platform;
}
