// Node-API binding of the native kernels. Tensors stay where the CPU backend keeps them: every
// call passes a Uint8Array over its shared WebAssembly memory (`heap`), and each operand is either
// a byte offset into that memory (a number) or a Uint8Array of its own holding the operand from
// its byte 0 (a tensor the pager moved out of the memory); mixed calls are fine. Each operand's
// extent and alignment are checked against the memory it lies in before any access.
//
//   matmul(heap, threads, a, b, c, M, N, K, lda, ldb, ldc, transA, transB, accumulate,
//          batch, strideA, strideB, strideC, bBf16)                docs/kernels.md `matmul`
//                                  (bBf16 1: B holds bfloat16, widened exactly while packing)
//   attention(heap, threads, q, k, v, mask, out, lse, B, T, S, H, Hkv, Dh, scale, causal,
//             window, softcap)                                     `attention` (mask 0: none)
//   attentionGrad(heap, threads, q, k, v, mask, out, lse, dout, dq, dk, dv, B, T, S, H, Hkv, Dh,
//                 scale, causal, window, softcap)                  `attention_grad`
//   The memory-bound kernels of stream.h, the bits of the wasm kernels (fused 1: the relaxed-SIMD
//   build's `madd` as an FMA; an id outside [0, V) throws a RangeError naming the row):
//   adamw(heap, threads, p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, bc1, bc2, fused)
//   sumsq(heap, threads, x, n, chunk) -> number                    float64 sum of squares
//   affine(heap, threads, x, out, scale, shift, n, fused)
//   add(heap, threads, a, b, out, n)      out = a + b (dense; out may be a or b)
//   trim()        returns the C heap's free memory to the system (malloc_trim; benchmarks)
//   embedding(heap, threads, weight, ids, out, N, D, V, bf16)      (bf16 1: weight holds bfloat16)
//   embeddingGrad(heap, threads, dy, ids, dweight, N, D, V)
//   info()        -> { kernel, available }   the instruction set in use / those this CPU runs
//   select(name)  -> boolean                 "auto", "avx512", "avx2", "scalar" (for tests)
#include <node_api.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdint>

#include "attention.h"
#include "gemm.h"
#include "stream.h"
#include "trim.h"

namespace {

constexpr int MAX_ARGS = 24;

/** The arguments of one call: the heap view and numbers, with checks that throw JS errors. */
class Call {
 public:
  Call(napi_env env, napi_callback_info info, const char* fn, const char* const* names, int count)
      : env_(env), fn_(fn), names_(names), count_(count) {
    size_t argc = MAX_ARGS;
    napi_value argv[MAX_ARGS];
    if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) {
      fail(false, "cannot read the arguments");
      return;
    }
    if (static_cast<int>(argc) != count) {
      fail(false, "expected %d arguments (%s, %s, ...), got %d", count, names[0], names[1], static_cast<int>(argc));
      return;
    }
    bool typed = false;
    napi_typedarray_type type;
    if (napi_is_typedarray(env, argv[0], &typed) != napi_ok || !typed ||
        napi_get_typedarray_info(env, argv[0], &type, &length_, &data_, nullptr, nullptr) != napi_ok ||
        type != napi_uint8_array || data_ == nullptr) {
      fail(false, "heap must be a Uint8Array over the runtime's WebAssembly memory");
      return;
    }
    for (int i = 1; i < count; i++) {
      if (napi_get_value_double(env, argv[i], &v_[i]) == napi_ok) continue;
      // An operand held outside the memory: a Uint8Array of its own bytes.
      if (napi_is_typedarray(env, argv[i], &typed) != napi_ok || !typed ||
          napi_get_typedarray_info(env, argv[i], &type, &hostLength_[i], &hostData_[i], nullptr, nullptr) != napi_ok ||
          type != napi_uint8_array) {
        fail(false, "%s must be a number or a Uint8Array", names[i]);
        return;
      }
      host_[i] = true;
    }
  }

  bool ok() const { return ok_; }
  double operator[](int i) const { return v_[i]; }

  /** Argument i as an integer in [lo, hi]. */
  int64_t integer(int i, double lo, double hi) {
    if (ok_ && host_[i]) fail(false, "%s must be a number, not a Uint8Array", names_[i]);
    const double x = v_[i];
    if (ok_ && !(x >= lo && x <= hi && x == std::floor(x))) fail(true, "%s = %.17g must be an integer in [%.0f, %.0f]", names_[i], x, lo, hi);
    return ok_ ? static_cast<int64_t>(x) : 0;
  }
  int64_t count(int i) { return integer(i, 0, 2147483647.0); }

  /** Whether argument i is the number 0 (an optional operand left out, as attention's mask). */
  bool none(int i) const { return !host_[i] && v_[i] == 0; }

  /**
   * Operand argument i: `rows` rows of `cols` elements at row stride ld, repeated `batch` times
   * at `stride` (all in elements of `bytes` bytes: 4, or 2 for bfloat16), at a byte offset into
   * the heap or from byte 0 of its own Uint8Array; null when any of them is 0 (nothing is read).
   */
  float* operand(int i, double rows, double cols, double ld = -1, double batch = 1, double stride = 0, int bytes = 4) {
    const bool host = host_[i];
    const int64_t at = host ? 0 : integer(i, 0, 4294967295.0);
    if (!ok_ || rows == 0 || cols == 0 || batch == 0) return nullptr;
    if (ld < 0) ld = cols;
    char* base = static_cast<char*>(host ? hostData_[i] : data_);
    const size_t length = host ? hostLength_[i] : length_;
    const double end = at + static_cast<double>(bytes) * ((batch - 1) * stride + (rows - 1) * ld + cols);
    const bool misaligned = (reinterpret_cast<uintptr_t>(base) + at) % bytes != 0;
    if (misaligned || ld < cols || end > static_cast<double>(length) || base == nullptr) {
      if (host) {
        fail(true, "%s, a Uint8Array of %zu bytes (%.0f x %.0f, ld %.0f, batch %.0f, stride %.0f), is misaligned, "
             "has ld < columns, or is shorter than the %.0f bytes it needs", names_[i], length, rows, cols, ld, batch,
             stride, end);
      } else {
        fail(true, "%s at byte %lld (%.0f x %.0f, ld %.0f, batch %.0f, stride %.0f) is misaligned, has ld < columns, "
             "or ends at %.0f past the memory's %zu bytes", names_[i], static_cast<long long>(at), rows, cols, ld, batch,
             stride, end, length);
      }
      return nullptr;
    }
    const char* first = base + at;
    spans_[i] = {first, first + static_cast<size_t>(end - at)};
    return reinterpret_cast<float*>(base + at);
  }

  /** Fails unless the operands i and j (both read by operand()) are disjoint, or the same when `same` is allowed. */
  void disjoint(int i, int j, bool same = false) {
    const Span a = spans_[i], b = spans_[j];
    if (!ok_ || a.begin == nullptr || b.begin == nullptr || a.end <= b.begin || b.end <= a.begin) return;
    if (same && a.begin == b.begin && a.end == b.end) return;
    fail(true, "%s and %s overlap%s", names_[i], names_[j], same ? " (they may only be the same array)" : "");
  }

  template <typename... A>
  void fail(bool range, const char* format, A... args) {
    if (!ok_) return;
    ok_ = false;
    char msg[400];
    int n = std::snprintf(msg, sizeof msg, "tsdpo native %s: ", fn_);
    std::snprintf(msg + n, sizeof msg - n, format, args...);
    if (range) napi_throw_range_error(env_, nullptr, msg);
    else napi_throw_type_error(env_, nullptr, msg);
  }

 private:
  napi_env env_;
  const char* fn_;
  const char* const* names_;
  int count_;
  bool ok_ = true;
  void* data_ = nullptr;
  size_t length_ = 0;
  double v_[MAX_ARGS] = {};
  bool host_[MAX_ARGS] = {};
  void* hostData_[MAX_ARGS] = {};
  size_t hostLength_[MAX_ARGS] = {};
  struct Span {
    const char *begin = nullptr, *end = nullptr;
  };
  Span spans_[MAX_ARGS];
};

int threads_of(double t) { return static_cast<int>(std::fmin(std::fmax(t, 1.0), 256.0)); }

const char* const MATMUL[] = {"heap", "threads", "a", "b", "c", "M", "N", "K", "lda", "ldb", "ldc",
                              "transA", "transB", "accumulate", "batch", "strideA", "strideB", "strideC", "bBf16"};

napi_value Matmul(napi_env env, napi_callback_info info) {
  Call c(env, info, "matmul", MATMUL, 19);
  if (!c.ok()) return nullptr;
  tsdpo::GemmArgs p;
  p.M = c.count(5), p.N = c.count(6), p.K = c.count(7);
  p.lda = c.count(8), p.ldb = c.count(9), p.ldc = c.count(10);
  p.transA = c[11] != 0, p.transB = c[12] != 0, p.accumulate = c[13] != 0;
  p.batch = c.count(14), p.strideA = c.count(15), p.strideB = c.count(16), p.strideC = c.count(17);
  if (c.ok() && p.batch > 1 && p.strideC == 0) c.fail(true, "strideC = 0 with batch = %lld (fold the batch into K)", static_cast<long long>(p.batch));
  const double M = p.M, N = p.N, K = p.K, batch = p.batch;
  p.a = c.operand(2, p.transA ? K : M, p.transA ? M : K, p.lda, batch, p.strideA);
  p.bBf16 = c.integer(18, 0, 1) == 1;
  p.b = c.operand(3, p.transB ? N : K, p.transB ? K : N, p.ldb, batch, p.strideB, p.bBf16 ? 2 : 4);
  p.c = c.operand(4, M, N, p.ldc, batch, p.strideC);
  if (!c.ok() || p.M == 0 || p.N == 0 || p.batch == 0) return nullptr;
  tsdpo::gemm(p, threads_of(c[1]));
  return nullptr;
}

const char* const ATTENTION[] = {"heap", "threads", "q", "k", "v", "mask", "out", "lse", "dout", "dq", "dk", "dv",
                                 "B", "T", "S", "H", "Hkv", "Dh", "scale", "causal", "window", "softcap"};

/** Reads attention's arguments; `grad` calls have dout, dq, dk, dv after lse. */
bool attention_args(Call& c, bool grad, tsdpo::AttentionArgs* a) {
  const int s = grad ? 12 : 8;  // index of B
  a->B = c.integer(s, 1, 2147483647.0), a->T = c.integer(s + 1, 1, 2147483647.0), a->S = c.integer(s + 2, 1, 2147483647.0);
  a->H = c.integer(s + 3, 1, 2147483647.0), a->Hkv = c.integer(s + 4, 1, 2147483647.0), a->Dh = c.integer(s + 5, 1, 2147483647.0);
  a->scale = static_cast<float>(c[s + 6]);
  a->causal = c[s + 7] != 0;
  a->window = c.count(s + 8);
  a->softcap = static_cast<float>(c[s + 9]);
  if (!c.ok()) return false;
  if (a->H % a->Hkv != 0) c.fail(true, "H = %lld is not a multiple of Hkv = %lld", static_cast<long long>(a->H), static_cast<long long>(a->Hkv));
  if (!std::isfinite(c[s + 6])) c.fail(true, "scale = %g must be finite", c[s + 6]);
  if (!(c[s + 9] >= 0) || !std::isfinite(c[s + 9])) c.fail(true, "softcap = %g must be finite and >= 0", c[s + 9]);
  const double B = a->B, T = a->T, S = a->S, H = a->H, Hkv = a->Hkv, Dh = a->Dh;
  a->q = c.operand(2, B * T * H, Dh);
  a->k = c.operand(3, B * S * Hkv, Dh);
  a->v = c.operand(4, B * S * Hkv, Dh);
  a->mask = c.none(5) ? nullptr : c.operand(5, B, S);
  a->out = c.operand(6, B * T * H, Dh);
  a->lse = c.operand(7, B * H, T);
  a->dout = nullptr, a->dq = a->dk = a->dv = nullptr;
  if (grad) {
    a->dout = c.operand(8, B * T * H, Dh);
    a->dq = c.operand(9, B * T * H, Dh);
    a->dk = c.operand(10, B * S * Hkv, Dh);
    a->dv = c.operand(11, B * S * Hkv, Dh);
  }
  return c.ok();
}

napi_value Attention(napi_env env, napi_callback_info info) {
  // Forward calls skip dout, dq, dk, dv: name them accordingly.
  static const char* const names[] = {"heap", "threads", "q", "k", "v", "mask", "out", "lse", "B", "T", "S", "H", "Hkv",
                                      "Dh", "scale", "causal", "window", "softcap"};
  Call c(env, info, "attention", names, 18);
  tsdpo::AttentionArgs a;
  if (!c.ok() || !attention_args(c, false, &a)) return nullptr;
  tsdpo::attention_forward(a, threads_of(c[1]));
  return nullptr;
}

napi_value AttentionGrad(napi_env env, napi_callback_info info) {
  Call c(env, info, "attentionGrad", ATTENTION, 22);
  tsdpo::AttentionArgs a;
  if (!c.ok() || !attention_args(c, true, &a)) return nullptr;
  tsdpo::attention_backward(a, threads_of(c[1]));
  return nullptr;
}

const char* const ADAMW[] = {"heap", "threads", "p", "g", "m", "v", "n", "lr", "beta1", "beta2", "eps", "weightDecay",
                             "bc1", "bc2", "fused"};

napi_value Adamw(napi_env env, napi_callback_info info) {
  Call c(env, info, "adamw", ADAMW, 15);
  if (!c.ok()) return nullptr;
  tsdpo::AdamwArgs a;
  a.n = c.count(6);
  a.p = c.operand(2, 1, a.n), a.g = c.operand(3, 1, a.n), a.m = c.operand(4, 1, a.n), a.v = c.operand(5, 1, a.n);
  for (int i = 2; i < 6; i++)
    for (int j = i + 1; j < 6; j++) c.disjoint(i, j);
  a.lr = c[7], a.beta1 = c[8], a.beta2 = c[9], a.eps = c[10], a.weightDecay = c[11], a.bc1 = c[12], a.bc2 = c[13];
  a.fused = c.integer(14, 0, 1) == 1;
  if (!c.ok() || a.n == 0) return nullptr;
  tsdpo::adamw(a, threads_of(c[1]));
  return nullptr;
}

napi_value Sumsq(napi_env env, napi_callback_info info) {
  static const char* const names[] = {"heap", "threads", "x", "n", "chunk"};
  Call c(env, info, "sumsq", names, 5);
  if (!c.ok()) return nullptr;
  const int64_t n = c.count(3), chunk = c.integer(4, 1, 2147483647.0);
  const float* x = c.operand(2, 1, n);
  if (!c.ok()) return nullptr;
  napi_value out;
  napi_create_double(env, n == 0 ? 0.0 : tsdpo::sumsq(x, n, chunk, threads_of(c[1])), &out);
  return out;
}

napi_value Affine(napi_env env, napi_callback_info info) {
  static const char* const names[] = {"heap", "threads", "x", "out", "scale", "shift", "n", "fused"};
  Call c(env, info, "affine", names, 8);
  if (!c.ok()) return nullptr;
  const int64_t n = c.count(6);
  const float* x = c.operand(2, 1, n);
  float* out = c.operand(3, 1, n);
  c.disjoint(2, 3, true);
  const bool fused = c.integer(7, 0, 1) == 1;
  if (!c.ok() || n == 0) return nullptr;
  // float32 arguments of the wasm kernel: the numbers rounded to nearest as a call rounds them
  tsdpo::affine(x, out, static_cast<float>(c[4]), static_cast<float>(c[5]), n, fused, threads_of(c[1]));
  return nullptr;
}

napi_value Add(napi_env env, napi_callback_info info) {
  static const char* const names[] = {"heap", "threads", "a", "b", "out", "n"};
  Call c(env, info, "add", names, 6);
  if (!c.ok()) return nullptr;
  const int64_t n = c.count(5);
  const float* a = c.operand(2, 1, n);
  const float* b = c.operand(3, 1, n);
  float* out = c.operand(4, 1, n);
  c.disjoint(2, 4, true);
  c.disjoint(3, 4, true);
  if (!c.ok() || n == 0) return nullptr;
  tsdpo::add(a, b, out, n, threads_of(c[1]));
  return nullptr;
}

/** Checks embedding's ids; false (a RangeError thrown) when one lies outside [0, V). */
bool embedding_ids(Call& c, const int32_t* ids, int64_t N, int64_t V) {
  const int64_t r = c.ok() && ids != nullptr ? tsdpo::embedding_check(ids, N, V) : -1;
  if (r >= 0) c.fail(true, "ids[%lld] = %d is outside [0, V = %lld)", static_cast<long long>(r), ids[r], static_cast<long long>(V));
  return c.ok();
}

napi_value Embedding(napi_env env, napi_callback_info info) {
  static const char* const names[] = {"heap", "threads", "weight", "ids", "out", "N", "D", "V", "bf16"};
  Call c(env, info, "embedding", names, 9);
  if (!c.ok()) return nullptr;
  const int64_t N = c.count(5), D = c.count(6), V = c.count(7);
  const bool bf16 = c.integer(8, 0, 1) == 1;
  const void* weight = c.operand(2, V, D, -1, 1, 0, bf16 ? 2 : 4);
  const int32_t* ids = reinterpret_cast<const int32_t*>(c.operand(3, 1, N));
  float* out = c.operand(4, N, D);
  c.disjoint(4, 2), c.disjoint(4, 3);
  if (!embedding_ids(c, ids, N, V) || N == 0 || D == 0) return nullptr;
  tsdpo::embedding(weight, ids, out, N, D, bf16, threads_of(c[1]));
  return nullptr;
}

napi_value EmbeddingGrad(napi_env env, napi_callback_info info) {
  static const char* const names[] = {"heap", "threads", "dy", "ids", "dweight", "N", "D", "V"};
  Call c(env, info, "embeddingGrad", names, 8);
  if (!c.ok()) return nullptr;
  const int64_t N = c.count(5), D = c.count(6), V = c.count(7);
  const float* dy = c.operand(2, N, D);
  const int32_t* ids = reinterpret_cast<const int32_t*>(c.operand(3, 1, N));
  float* dweight = c.operand(4, V, D);
  c.disjoint(4, 2), c.disjoint(4, 3);
  if (!embedding_ids(c, ids, N, V) || N == 0 || D == 0) return nullptr;
  tsdpo::embedding_grad(dy, ids, dweight, N, D, threads_of(c[1]));
  return nullptr;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value out, kernel, available;
  if (napi_create_object(env, &out) != napi_ok ||
      napi_create_string_utf8(env, tsdpo::gemm_selected(), NAPI_AUTO_LENGTH, &kernel) != napi_ok ||
      napi_create_string_utf8(env, tsdpo::gemm_available(), NAPI_AUTO_LENGTH, &available) != napi_ok ||
      napi_set_named_property(env, out, "kernel", kernel) != napi_ok ||
      napi_set_named_property(env, out, "available", available) != napi_ok) {
    return nullptr;
  }
  return out;
}

napi_value Select(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char name[32] = {0};
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) {
    napi_throw_type_error(env, nullptr, "tsdpo native select: expected a kernel name (auto, avx512, avx2, scalar)");
    return nullptr;
  }
  napi_value ok;
  napi_get_boolean(env, tsdpo::gemm_select(name), &ok);
  return ok;
}

/** exp(x, y): y = e^x by the attention kernels' exp (x, y: Float32Arrays of one length), for the tests. */
napi_value Exp(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  float* p[2] = {nullptr, nullptr};
  size_t len[2] = {0, 0};
  bool ok = napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) == napi_ok && argc == 2;
  for (int i = 0; ok && i < 2; i++) {
    napi_typedarray_type type;
    void* data = nullptr;
    ok = napi_get_typedarray_info(env, argv[i], &type, &len[i], &data, nullptr, nullptr) == napi_ok &&
         type == napi_float32_array;
    p[i] = static_cast<float*>(data);
  }
  if (!ok || len[0] != len[1]) {
    napi_throw_type_error(env, nullptr, "tsdpo native exp: expected (x, y), two Float32Arrays of one length");
    return nullptr;
  }
  tsdpo::attention_exp(p[0], p[1], static_cast<int64_t>(len[0]));
  return nullptr;
}

}  // namespace

NAPI_MODULE_INIT() {
  const napi_property_descriptor props[] = {
      {"matmul", nullptr, Matmul, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attention", nullptr, Attention, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"attentionGrad", nullptr, AttentionGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamw", nullptr, Adamw, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sumsq", nullptr, Sumsq, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"affine", nullptr, Affine, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"add", nullptr, Add, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"embedding", nullptr, Embedding, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"embeddingGrad", nullptr, EmbeddingGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"select", nullptr, Select, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"exp", nullptr, Exp, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"trim", nullptr, tsdpo::Trim, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return nullptr;
  return exports;
}
