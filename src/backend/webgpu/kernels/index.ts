// The WebGPU kernel table: every entry of KernelArgs, bound to one context.
import type { KernelTable } from '../../../core/kernels.js';
import type { Ctx } from './context.js';
import * as attn from './attention.js';
import * as ew from './elementwise.js';
import * as emb from './embedding.js';
import * as mm from './matmul.js';
import * as norm from './norm.js';
import * as opt from './optim.js';
import * as rnd from './random.js';
import * as red from './reduce.js';
import * as rope from './rope.js';
import * as sm from './softmax.js';

export function makeKernels(ctx: Ctx): KernelTable {
  return {
    fill: (a) => ew.fill(ctx, a),
    copy: (a) => ew.copy(ctx, a),
    cast: (a) => ew.cast(ctx, a),
    unary: (a) => ew.unary(ctx, a),
    unaryGrad: (a) => ew.unaryGrad(ctx, a),
    binary: (a) => ew.binary(ctx, a),
    where: (a) => ew.where(ctx, a),
    affine: (a) => ew.affine(ctx, a),
    reduce: (a) => red.reduce(ctx, a),
    sumSquares: (a) => red.sumSquares(ctx, a),
    matmul: (a) => mm.matmul(ctx, a),
    softmax: (a) => sm.softmax(ctx, a),
    softmaxGrad: (a) => sm.softmaxGrad(ctx, a),
    logSoftmaxGather: (a) => sm.logSoftmaxGather(ctx, a),
    logSoftmaxGatherGrad: (a) => sm.logSoftmaxGatherGrad(ctx, a),
    embedding: (a) => emb.embedding(ctx, a),
    embeddingGrad: (a) => emb.embeddingGrad(ctx, a),
    layerNorm: (a) => norm.layerNorm(ctx, a),
    layerNormGrad: (a) => norm.layerNormGrad(ctx, a),
    layerNormWGrad: (a) => norm.layerNormWGrad(ctx, a),
    rmsNorm: (a) => norm.rmsNorm(ctx, a),
    rmsNormGrad: (a) => norm.rmsNormGrad(ctx, a),
    rmsNormWGrad: (a) => norm.rmsNormWGrad(ctx, a),
    rope: (a) => rope.rope(ctx, a),
    attention: (a) => attn.attention(ctx, a),
    attentionGrad: (a) => attn.attentionGrad(ctx, a),
    adamw: (a) => opt.adamw(ctx, a),
    rmsprop: (a) => opt.rmsprop(ctx, a),
    sgd: (a) => opt.sgd(ctx, a),
    dropoutMask: (a) => rnd.dropoutMask(ctx, a),
  };
}
