// Returning the C heap's free memory to the OS after a load (Node, glibc), for bench:memory
// --load-only. Node's ArrayBuffers are malloc'd; glibc keeps freed ones mapped for reuse, so the
// host copies of a load can stay resident after they are garbage. The native addon's trim()
// (native/src/trim.cc) calls malloc_trim(0); without the addon, or off glibc, this does nothing.
import { requireAddon } from '#host';

const ADDON = '../../native/build/Release/tsdpo_native.node';

let trim: (() => boolean) | null | undefined;

/** malloc_trim(0) through the native addon: true when memory was released, false when nothing was (or no addon). */
export function trimHeap(): boolean {
  if (trim === undefined) {
    try {
      const addon = requireAddon(ADDON, import.meta.url) as { trim?: () => boolean };
      trim = typeof addon.trim === 'function' ? addon.trim : null;
    } catch {
      trim = null; // no addon built (TSDPO_NATIVE=0 at install, no compiler): nothing to trim with
    }
  }
  return trim !== null && trim();
}
