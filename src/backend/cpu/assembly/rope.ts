// Rotary position embedding (rotate-half convention); work unit: (b, t) positions.
import { madd, splat } from './math';
import { loadPartial, storePartial, copyRow } from './vec';

/** Rotates k lanes at i of one head (k = 4 inlines to plain vector code). */
@inline function ropeStep(px: usize, po: usize, pc: usize, ps: usize, hoff: usize, vsign: v128, i: i32, k: i32): void {
  const o = <usize>i << 2;
  const c = k == 4 ? v128.load(pc + o) : loadPartial(pc + o, k, 0);
  const s = f32x4.mul(k == 4 ? v128.load(ps + o) : loadPartial(ps + o, k, 0), vsign);
  const x1 = k == 4 ? v128.load(px + o) : loadPartial(px + o, k, 0);
  const x2 = k == 4 ? v128.load(px + hoff + o) : loadPartial(px + hoff + o, k, 0);
  const o1 = madd(x1, c, f32x4.neg(f32x4.mul(x2, s)));
  const o2 = madd(x2, c, f32x4.mul(x1, s));
  if (k == 4) {
    v128.store(po + o, o1);
    v128.store(po + hoff + o, o2);
  } else {
    storePartial(po + o, o1, k);
    storePartial(po + hoff + o, o2, k);
  }
}

/**
 * x, out [B, T, H, Dh]; cos, sin [B, T, R/2]. For i < R/2:
 *   o[i] = x[i] c - s x[i + R/2] sn,  o[i + R/2] = x[i + R/2] c + s x[i] sn   (s = sign)
 * dims >= R copied; out may be x.
 */
export function rope(x: usize, cos: usize, sin: usize, out: usize, B: i32, T: i32, H: i32, Dh: i32, R: i32, sign: f32,
  start: i32, end: i32, scratch: usize): i32 {
  if ((R & 1) != 0 || R > Dh) return 3;
  const half = R >> 1;
  const vsign = splat(sign);
  for (let bt = start; bt < end; bt++) {
    const pc = cos + ((<usize>bt * <usize>half) << 2), ps = sin + ((<usize>bt * <usize>half) << 2);
    for (let h = 0; h < H; h++) {
      const base = (<usize>(bt * H + h) * <usize>Dh) << 2;
      const px = x + base, po = out + base, hoff = <usize>half << 2;
      let i = 0;
      for (; i + 4 <= half; i += 4) ropeStep(px, po, pc, ps, hoff, vsign, i, 4);
      if (i < half) ropeStep(px, po, pc, ps, hoff, vsign, i, half - i);
      if (out != x && R < Dh) copyRow(po + (<usize>R << 2), px + (<usize>R << 2), Dh - R);
    }
  }
  return 0;
}
