// Fused causal attention without a T x S score matrix (flash-style: Dao et al. 2022): the forward
// keeps, per query row, a running max and sum of exp(scores) (online softmax) and rescales its
// output accumulator once per tile of keys; the backward recomputes probabilities from the saved
// log-sum-exp. Shapes and semantics: src/backend/ref/attention.ts (GQA, padding mask, causal with
// queries at positions i + S - T, sliding window, softcap).
//
// Layout: one thread per query row (forward, dq) or per key row (dk, dv), 64 rows per workgroup;
// the other side streams through shared memory in tiles of TILE rows, where every thread reads
// the same element at the same time (a broadcast). q, the accumulators and the tile's scores stay
// in registers, so the head size Dh is compiled into each variant.
import type { AttentionArgs, KernelArgs } from '../../../core/kernels.js';
import { MATH, SPECIAL } from '../wgsl.js';
import { buf, bufOr, f32Only, release, scratch, type Ctx } from './context.js';

const ROWS = 64;

const PARAMS = [
  ['B', 'u32'],
  ['T', 'u32'],
  ['S', 'u32'],
  ['H', 'u32'],
  ['Hkv', 'u32'],
  ['scale', 'f32'],
  ['causal', 'u32'],
  ['window', 'u32'],
  ['softcap', 'f32'],
  ['has_mask', 'u32'],
] as const;

function params(a: AttentionArgs): number[] {
  return [a.B, a.T, a.S, a.H, a.Hkv, a.scale, a.causal ? 1 : 0, a.window, a.softcap, a.mask ? 1 : 0];
}

/** Rows per shared-memory tile: the largest power of two <= 32 whose two Dh-wide tiles fit. */
function tileRows(ctx: Ctx, Dh: number): number {
  const limit = ctx.rt.limits.maxComputeWorkgroupStorageSize - 512;
  let t = 32;
  while (t > 1 && 8 * t * Dh + 8 * t > limit) t /= 2;
  return t;
}

/** Shared helpers: constants, key admission (causal, window), soft-capped scores. */
function common(Dh: number, tile: number): string {
  return `${SPECIAL}${MATH}
const DH = ${Dh}u;
const ROWS = ${ROWS}u;
const TILE = ${tile}u;

// Whether the query at absolute position pos may attend to key j (padding is checked apart).
fn allowed(pos: i32, j: i32) -> bool {
  if (P.causal == 1u && j > pos) { return false; }
  if (P.window > 0u && pos - j >= i32(P.window)) { return false; }
  return true;
}

// s = scale q.k, soft-capped as c tanh(s / c) when c > 0 (Gemma 2).
fn cap(s: f32) -> f32 {
  return select(s, P.softcap * tanh_(s / P.softcap), P.softcap > 0.0);
}
`;
}

/** Keys [jBeg, jEnd) that any query of the block starting at row i0 may see (uniform per workgroup). */
const KEY_RANGE = /* wgsl */ `
  let shift = i32(P.S) - i32(P.T);
  let lastPos = i32(min(P.T, i0 + ROWS)) - 1 + shift;
  var jEnd = i32(P.S);
  if (P.causal == 1u) { jEnd = min(jEnd, lastPos + 1); }
  var jBeg = 0;
  if (P.window > 0u) { jBeg = max(0, i32(i0) + shift - i32(P.window) + 1); }
`;

/** Loads keys and values [j0, j0 + TILE) of kv head g into Ks, Vs, and their padding mask into Ms (0 past jEnd). */
const LOAD_KV = /* wgsl */ `
    workgroupBarrier();
    for (var e = li; e < TILE * DH; e += ROWS) {
      let j = j0 + i32(e / DH);
      var kv = 0.0;
      var vv = 0.0;
      if (j < jEnd) {
        let at = ((b * P.S + u32(j)) * P.Hkv + g) * DH + e % DH;
        kv = k_in[at];
        vv = v_in[at];
      }
      Ks[e] = kv;
      Vs[e] = vv;
    }
    if (li < TILE) {
      let j = j0 + i32(li);
      var mv = 0.0;
      if (j < jEnd) { mv = select(1.0, mask[b * P.S + u32(j)], P.has_mask == 1u); }
      Ms[li] = mv;
    }
    workgroupBarrier();
`;

function forwardSource(Dh: number, tile: number): string {
  return `${common(Dh, tile)}
var<workgroup> Ks: array<f32, ${tile * Dh}>;
var<workgroup> Vs: array<f32, ${tile * Dh}>;
var<workgroup> Ms: array<f32, ${tile}>;

@compute @workgroup_size(${ROWS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let b = wid.z;
  let h = wid.y;
  let i0 = wid.x * ROWS;
  let i = i0 + li;
  let g = h / (P.H / P.Hkv);
  let valid = i < P.T;
  ${KEY_RANGE}
  let pos = i32(i) + shift;
  let qBase = ((b * P.T + min(i, P.T - 1u)) * P.H + h) * DH;
  var q: array<f32, ${Dh}>;
  var o: array<f32, ${Dh}>;
  for (var d = 0u; d < DH; d++) { q[d] = q_in[qBase + d]; o[d] = 0.0; }
  let ninf = neg_inf();
  var m = ninf;
  var l = 0.0;
  for (var j0 = jBeg; j0 < jEnd; j0 += i32(TILE)) {
    ${LOAD_KV}
    if (valid) {
      var sc: array<f32, ${tile}>;
      var tmax = ninf;
      for (var jj = 0u; jj < TILE; jj++) {
        var s = ninf;
        if (Ms[jj] != 0.0 && allowed(pos, j0 + i32(jj))) {
          var dot = 0.0;
          for (var d = 0u; d < DH; d++) { dot = fma(q[d], Ks[jj * DH + d], dot); }
          s = cap(P.scale * dot);
        }
        sc[jj] = s;
        tmax = max(tmax, s);
      }
      if (tmax != ninf) {
        // Rescale the accumulators once per tile to the new running max.
        let mNew = max(m, tmax);
        let alpha = select(exp(m - mNew), 0.0, m == ninf);
        l *= alpha;
        for (var d = 0u; d < DH; d++) { o[d] *= alpha; }
        for (var jj = 0u; jj < TILE; jj++) {
          if (sc[jj] != ninf) {
            let p = exp(sc[jj] - mNew);
            l += p;
            for (var d = 0u; d < DH; d++) { o[d] = fma(p, Vs[jj * DH + d], o[d]); }
          }
        }
        m = mNew;
      }
    }
  }
  if (!valid) { return; }
  // A query with no allowed key gets out 0 and lse -inf.
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var d = 0u; d < DH; d++) { out[qBase + d] = o[d] * inv; }
  lse[(b * P.H + h) * P.T + i] = select(m + log(l), ninf, l == 0.0);
}`;
}

/** D[b, h, i] = dout_i . out_i, stored like lse [B, H, T]. */
function deltaSource(Dh: number): string {
  return `
@compute @workgroup_size(${ROWS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let t = (wid.y * nwg.x + wid.x) * ${ROWS}u + li;
  if (t >= P.B * P.T * P.H) { return; }
  let h = t % P.H;
  let i = (t / P.H) % P.T;
  let b = t / (P.H * P.T);
  var s = 0.0;
  for (var d = 0u; d < ${Dh}u; d++) { s = fma(dout[t * ${Dh}u + d], out[t * ${Dh}u + d], s); }
  delta[(b * P.H + h) * P.T + i] = s;
}`;
}

/** dq_i = scale sum_j dS_ij k_j with dS_ij = P_ij (dout_i . v_j - D_i) (times 1 - tanh^2 when capped). */
function dqSource(Dh: number, tile: number): string {
  return `${common(Dh, tile)}
var<workgroup> Ks: array<f32, ${tile * Dh}>;
var<workgroup> Vs: array<f32, ${tile * Dh}>;
var<workgroup> Ms: array<f32, ${tile}>;

@compute @workgroup_size(${ROWS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let b = wid.z;
  let h = wid.y;
  let i0 = wid.x * ROWS;
  let i = i0 + li;
  let g = h / (P.H / P.Hkv);
  let ninf = neg_inf();
  let iv = min(i, P.T - 1u);
  let L = lse[(b * P.H + h) * P.T + iv];
  let Di = delta[(b * P.H + h) * P.T + iv];
  let valid = i < P.T && L != ninf;
  ${KEY_RANGE}
  let pos = i32(i) + shift;
  let qBase = ((b * P.T + iv) * P.H + h) * DH;
  var q: array<f32, ${Dh}>;
  var dO: array<f32, ${Dh}>;
  var dq: array<f32, ${Dh}>;
  for (var d = 0u; d < DH; d++) { q[d] = q_in[qBase + d]; dO[d] = dout[qBase + d]; dq[d] = 0.0; }
  for (var j0 = jBeg; j0 < jEnd; j0 += i32(TILE)) {
    ${LOAD_KV}
    if (valid) {
      for (var jj = 0u; jj < TILE; jj++) {
        if (Ms[jj] != 0.0 && allowed(pos, j0 + i32(jj))) {
          var dot = 0.0;
          var dp = 0.0;
          for (var d = 0u; d < DH; d++) {
            dot = fma(q[d], Ks[jj * DH + d], dot);
            dp = fma(dO[d], Vs[jj * DH + d], dp);
          }
          let s = cap(P.scale * dot);
          let p = exp(s - L);
          var ds = p * (dp - Di);
          if (P.softcap > 0.0) { let tc = s / P.softcap; ds *= 1.0 - tc * tc; }
          let f = P.scale * ds;
          for (var d = 0u; d < DH; d++) { dq[d] = fma(f, Ks[jj * DH + d], dq[d]); }
        }
      }
    }
  }
  if (i >= P.T) { return; }
  for (var d = 0u; d < DH; d++) { dq_out[qBase + d] = dq[d]; }
}`;
}

/**
 * One thread per key j of kv head g: dv_j = sum_i P_ij dout_i and dk_j = scale sum_i dS_ij q_i
 * over every query head of the group and every query that may see j.
 */
function dkvSource(Dh: number, tile: number): string {
  return `${common(Dh, tile)}
var<workgroup> Qs: array<f32, ${tile * Dh}>;
var<workgroup> Os: array<f32, ${tile * Dh}>;
var<workgroup> Ls: array<f32, ${tile}>;
var<workgroup> Ds: array<f32, ${tile}>;

@compute @workgroup_size(${ROWS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let b = wid.z;
  let g = wid.y;
  let j0 = wid.x * ROWS;
  let j = j0 + li;
  let group = P.H / P.Hkv;
  let ninf = neg_inf();
  let jv = min(j, P.S - 1u);
  let kvBase = ((b * P.S + jv) * P.Hkv + g) * DH;
  let keep = j < P.S && (P.has_mask == 0u || mask[b * P.S + jv] != 0.0);
  // Queries [iBeg, iEnd) that may see some key of this block.
  let shift = i32(P.S) - i32(P.T);
  let jLast = i32(min(P.S, j0 + ROWS)) - 1;
  var iBeg = 0;
  if (P.causal == 1u) { iBeg = max(0, i32(j0) - shift); }
  var iEnd = i32(P.T);
  if (P.window > 0u) { iEnd = min(iEnd, jLast + i32(P.window) - shift); }
  var kr: array<f32, ${Dh}>;
  var vr: array<f32, ${Dh}>;
  var dk: array<f32, ${Dh}>;
  var dv: array<f32, ${Dh}>;
  for (var d = 0u; d < DH; d++) { kr[d] = k_in[kvBase + d]; vr[d] = v_in[kvBase + d]; dk[d] = 0.0; dv[d] = 0.0; }
  for (var r = 0u; r < group; r++) {
    let h = g * group + r;
    for (var i0 = iBeg; i0 < iEnd; i0 += i32(TILE)) {
      workgroupBarrier();
      for (var e = li; e < TILE * DH; e += ROWS) {
        let i = i0 + i32(e / DH);
        var qv = 0.0;
        var ov = 0.0;
        if (i < iEnd) {
          let at = ((b * P.T + u32(i)) * P.H + h) * DH + e % DH;
          qv = q_in[at];
          ov = dout[at];
        }
        Qs[e] = qv;
        Os[e] = ov;
      }
      if (li < TILE) {
        let i = i0 + i32(li);
        var lv = ninf;
        var dv0 = 0.0;
        if (i < iEnd) {
          lv = lse[(b * P.H + h) * P.T + u32(i)];
          dv0 = delta[(b * P.H + h) * P.T + u32(i)];
        }
        Ls[li] = lv;
        Ds[li] = dv0;
      }
      workgroupBarrier();
      if (keep) {
        for (var ii = 0u; ii < TILE; ii++) {
          let L = Ls[ii];
          if (L == ninf || !allowed(i0 + i32(ii) + shift, i32(j))) { continue; }
          var dot = 0.0;
          var dp = 0.0;
          for (var d = 0u; d < DH; d++) {
            dot = fma(Qs[ii * DH + d], kr[d], dot);
            dp = fma(Os[ii * DH + d], vr[d], dp);
          }
          let s = cap(P.scale * dot);
          let p = exp(s - L);
          var ds = p * (dp - Ds[ii]);
          if (P.softcap > 0.0) { let tc = s / P.softcap; ds *= 1.0 - tc * tc; }
          let f = P.scale * ds;
          for (var d = 0u; d < DH; d++) {
            dv[d] = fma(p, Os[ii * DH + d], dv[d]);
            dk[d] = fma(f, Qs[ii * DH + d], dk[d]);
          }
        }
      }
    }
  }
  if (j >= P.S) { return; }
  for (var d = 0u; d < DH; d++) { dk_out[kvBase + d] = dk[d]; dv_out[kvBase + d] = dv[d]; }
}`;
}

function check(a: AttentionArgs): void {
  f32Only('attention', a.q, a.k, a.v, a.mask);
  if (a.Hkv === 0 || a.H % a.Hkv !== 0)
    throw new Error(`webgpu attention: heads ${a.H} must be a multiple of kv heads ${a.Hkv}`);
  if (a.T > a.S) throw new Error(`webgpu attention: T = ${a.T} queries but only S = ${a.S} keys`);
}

export function attention(ctx: Ctx, a: KernelArgs['attention']): void {
  check(a);
  if (a.B * a.T * a.H === 0) return;
  const tile = tileRows(ctx, a.Dh);
  const k = ctx.rt.kernel(`attention_${a.Dh}_${tile}`, () => ({
    name: `attention (head size ${a.Dh})`,
    params: PARAMS,
    buffers: [
      ['q_in', 'f32', 'read'],
      ['k_in', 'f32', 'read'],
      ['v_in', 'f32', 'read'],
      ['mask', 'f32', 'read'],
      ['out', 'f32', 'read_write'],
      ['lse', 'f32', 'read_write'],
    ],
    body: forwardSource(a.Dh, tile),
  }));
  ctx.rt.run(k, [buf(a.q), buf(a.k), buf(a.v), bufOr(ctx, a.mask), buf(a.out), buf(a.lse)], params(a), [
    Math.ceil(a.T / ROWS),
    a.H,
    a.B,
  ]);
}

export function attentionGrad(ctx: Ctx, a: KernelArgs['attentionGrad']): void {
  check(a);
  if (a.B * a.S * a.Hkv === 0) return;
  const tile = tileRows(ctx, a.Dh);
  const rows = a.B * a.T * a.H;
  const delta = scratch(ctx, rows);
  if (rows > 0) {
    const kd = ctx.rt.kernel(`attention_delta_${a.Dh}`, () => ({
      name: 'attention backward (D = dout . out)',
      params: PARAMS,
      buffers: [
        ['dout', 'f32', 'read'],
        ['out', 'f32', 'read'],
        ['delta', 'f32', 'read_write'],
      ],
      body: deltaSource(a.Dh),
    }));
    const groups = Math.ceil(rows / ROWS);
    const gy = Math.ceil(groups / 65535);
    ctx.rt.run(kd, [buf(a.dout), buf(a.out), delta], params(a), [Math.ceil(groups / gy), gy]);
    const kq = ctx.rt.kernel(`attention_dq_${a.Dh}_${tile}`, () => ({
      name: `attention backward dq (head size ${a.Dh})`,
      params: PARAMS,
      buffers: [
        ['q_in', 'f32', 'read'],
        ['k_in', 'f32', 'read'],
        ['v_in', 'f32', 'read'],
        ['mask', 'f32', 'read'],
        ['lse', 'f32', 'read'],
        ['delta', 'f32', 'read'],
        ['dout', 'f32', 'read'],
        ['dq_out', 'f32', 'read_write'],
      ],
      body: dqSource(a.Dh, tile),
    }));
    ctx.rt.run(
      kq,
      [buf(a.q), buf(a.k), buf(a.v), bufOr(ctx, a.mask), buf(a.lse), delta, buf(a.dout), buf(a.dq)],
      params(a),
      [Math.ceil(a.T / ROWS), a.H, a.B],
    );
  }
  const kkv = ctx.rt.kernel(`attention_dkv_${a.Dh}_${tile}`, () => ({
    name: `attention backward dk, dv (head size ${a.Dh})`,
    params: PARAMS,
    buffers: [
      ['q_in', 'f32', 'read'],
      ['k_in', 'f32', 'read'],
      ['v_in', 'f32', 'read'],
      ['mask', 'f32', 'read'],
      ['lse', 'f32', 'read'],
      ['delta', 'f32', 'read'],
      ['dout', 'f32', 'read'],
      ['dk_out', 'f32', 'read_write'],
      ['dv_out', 'f32', 'read_write'],
    ],
    body: dkvSource(a.Dh, tile),
  }));
  ctx.rt.run(
    kkv,
    [buf(a.q), buf(a.k), buf(a.v), bufOr(ctx, a.mask), buf(a.lse), delta, buf(a.dout), buf(a.dk), buf(a.dv)],
    params(a),
    [Math.ceil(a.S / ROWS), a.Hkv, a.B],
  );
  release(ctx, delta);
}
