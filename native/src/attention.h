// Native fused attention, forward and backward, with the semantics of the `attention` and
// `attention_grad` kernels (docs/kernels.md; reference: src/backend/ref/attention.ts).
//
// Shapes: q [B, T, H, Dh]; k, v [B, S, Hkv, Dh]; mask [B, S] (1 keep, 0 padding) or null;
// out [B, T, H, Dh]; lse [B, H, T]. Query head h reads kv head h / (H / Hkv); query i sits at
// position i + S - T; causal: keys j <= pos; window w > 0: also j > pos - w; softcap c > 0:
// s = c tanh(s / c) before masking. A query without keys gets out 0, lse -inf.
#pragma once

#include <cstdint>

namespace tsdpo {

struct AttentionArgs {
  const float *q, *k, *v, *mask;  // mask may be null
  float *out, *lse;
  // Backward only: dout (read), dq, dk, dv (written, not accumulated).
  const float* dout;
  float *dq, *dk, *dv;
  int64_t B, T, S, H, Hkv, Dh;
  float scale;
  bool causal;
  int64_t window;
  float softcap;
};

/** out, lse = attention(q, k, v); work units (batch, head, block of queries) claimed by `threads` threads. */
void attention_forward(const AttentionArgs& a, int threads);

/** dq, dk, dv given dout, out and lse; one work unit per (batch, kv head). */
void attention_backward(const AttentionArgs& a, int threads);

/** y = e^x over n floats by the attention kernels' exp (the selected instruction set's), for the tests. */
void attention_exp(const float* x, float* y, int64_t n);

}  // namespace tsdpo
