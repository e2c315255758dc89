// Shape arithmetic: sizes, strides, broadcasting, and error messages that show shapes.
export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides in elements. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** numpy broadcasting of two shapes; throws naming both. */
export function broadcastShapes(a: Shape, b: Shape, op: string): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1,
      db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes ${fmt(a)} and ${fmt(b)} do not broadcast (dim ${i - n}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides that read a tensor of `shape` as if broadcast to `target` (0 on broadcast dims). */
export function broadcastStrides(shape: Shape, target: Shape): number[] {
  const own = stridesOf(shape),
    off = target.length - shape.length;
  return target.map((_, i) => (i < off || shape[i - off] === 1 ? 0 : own[i - off]));
}

/** Normalises a possibly negative axis; throws naming the op and shape. */
export function axisOf(axis: number, ndim: number, op: string): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim || !Number.isInteger(a)) throw new Error(`${op}: axis ${axis} out of range for ${ndim} dims`);
  return a;
}

/**
 * Merges adjacent dims that are contiguous in every stride set, so kernels iterate over fewer,
 * longer dims. Returns the merged shape and strides (same order as given).
 */
export function collapseDims(
  shape: Shape,
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => outStrides[k][last] === s[i] * shape[i])) {
      outShape[last] *= shape[i];
      strides.forEach((s, k) => {
        outStrides[k][last] = s[i];
      });
    } else {
      outShape.push(shape[i]);
      strides.forEach((s, k) => outStrides[k].push(s[i]));
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    outStrides.forEach((s) => s.push(1));
  }
  return { shape: outShape, strides: outStrides };
}
