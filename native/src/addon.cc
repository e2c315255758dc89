// Node-API binding of the native kernels. Tensors stay in the CPU backend's shared WebAssembly
// memory: every call passes a Uint8Array over that memory plus byte offsets into it, and each
// operand's extent is checked against the array's length before any access.
//
//   matmul(heap, threads, a, b, c, M, N, K, lda, ldb, ldc, transA, transB, accumulate,
//          batch, strideA, strideB, strideC)       -> undefined (docs/kernels.md, `matmul`)
//   info()                                          -> { kernel, available }
//   select(name)                                    -> boolean ("auto", "avx512", "avx2", "scalar")
#include <node_api.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "gemm.h"

namespace {

#define CHECK(call)                                         \
  do {                                                      \
    if ((call) != napi_ok) {                                \
      napi_throw_error(env, nullptr, "tsdpo native: " #call " failed"); \
      return nullptr;                                       \
    }                                                       \
  } while (0)

napi_value Throw(napi_env env, bool range, const char* message) {
  if (range) napi_throw_range_error(env, nullptr, message);
  else napi_throw_type_error(env, nullptr, message);
  return nullptr;
}

/** Bytes touched by a [rows, cols] matrix with row stride ld, repeated batch times at stride. */
double extent_bytes(double batch, double stride, double rows, double cols, double ld) {
  return 4.0 * ((batch - 1) * stride + (rows - 1) * ld + cols);
}

constexpr int ARGC = 18;
const char* const NAMES[ARGC] = {"heap", "threads", "a", "b", "c", "M", "N", "K", "lda", "ldb", "ldc",
                                 "transA", "transB", "accumulate", "batch", "strideA", "strideB", "strideC"};

napi_value Matmul(napi_env env, napi_callback_info info) {
  size_t argc = ARGC;
  napi_value argv[ARGC];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != ARGC) return Throw(env, false, "tsdpo native matmul: expected 18 arguments (heap, threads, a, b, c, M, N, K, ...)");
  bool isTyped = false;
  CHECK(napi_is_typedarray(env, argv[0], &isTyped));
  if (!isTyped) return Throw(env, false, "tsdpo native matmul: heap must be a Uint8Array over the runtime's memory");
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  CHECK(napi_get_typedarray_info(env, argv[0], &type, &length, &data, nullptr, nullptr));
  if (type != napi_uint8_array || data == nullptr) return Throw(env, false, "tsdpo native matmul: heap must be a non-empty Uint8Array");
  double v[ARGC];
  for (int i = 1; i < ARGC; i++) {
    CHECK(napi_get_value_double(env, argv[i], &v[i]));
    // Byte offsets (a, b, c) span the 4 GiB of wasm32 memory; sizes and strides are int32.
    const bool address = i >= 2 && i <= 4;
    if (!(v[i] >= 0 && v[i] <= (address ? 4294967295.0 : 2147483647.0) && v[i] == std::floor(v[i]))) {
      char msg[160];
      std::snprintf(msg, sizeof msg, "tsdpo native matmul: %s = %.17g must be a non-negative %s", NAMES[i], v[i],
                    address ? "byte offset below 2^32" : "int32");
      return Throw(env, true, msg);
    }
  }
  const double M = v[5], N = v[6], K = v[7], lda = v[8], ldb = v[9], ldc = v[10], batch = v[14];
  const bool transA = v[11] != 0, transB = v[12] != 0;
  if (M == 0 || N == 0 || batch == 0) return nullptr;
  // Each operand must lie inside the memory (an operand with a zero dimension is not read).
  struct Operand { const char* name; double at, rows, cols, ld, stride; } ops[3] = {
      {"a", v[2], transA ? K : M, transA ? M : K, lda, v[15]},
      {"b", v[3], transB ? N : K, transB ? K : N, ldb, v[16]},
      {"c", v[4], M, N, ldc, v[17]},
  };
  for (const Operand& o : ops) {
    if (o.rows == 0 || o.cols == 0) continue;
    const double end = o.at + extent_bytes(batch, o.stride, o.rows, o.cols, o.ld);
    if (std::fmod(o.at, 4.0) != 0 || o.ld < o.cols || end > static_cast<double>(length)) {
      char msg[240];
      std::snprintf(msg, sizeof msg, "tsdpo native matmul: %s at byte %.0f (%.0f x %.0f, ld %.0f, batch %.0f, stride %.0f) "
                    "is misaligned, has ld < columns, or ends at %.0f past the memory's %zu bytes",
                    o.name, o.at, o.rows, o.cols, o.ld, batch, o.stride, end, length);
      return Throw(env, true, msg);
    }
  }
  if (batch > 1 && v[17] == 0) return Throw(env, true, "tsdpo native matmul: strideC = 0 with batch > 1 (fold the batch into K)");
  const float* base = static_cast<const float*>(data);
  tsdpo::GemmArgs p;
  p.a = base + static_cast<int64_t>(v[2]) / 4;
  p.b = base + static_cast<int64_t>(v[3]) / 4;
  p.c = const_cast<float*>(base) + static_cast<int64_t>(v[4]) / 4;
  p.M = static_cast<int64_t>(M), p.N = static_cast<int64_t>(N), p.K = static_cast<int64_t>(K);
  p.lda = static_cast<int64_t>(lda), p.ldb = static_cast<int64_t>(ldb), p.ldc = static_cast<int64_t>(ldc);
  p.transA = transA, p.transB = transB, p.accumulate = v[13] != 0;
  p.batch = static_cast<int64_t>(batch);
  p.strideA = static_cast<int64_t>(v[15]), p.strideB = static_cast<int64_t>(v[16]), p.strideC = static_cast<int64_t>(v[17]);
  const int threads = static_cast<int>(std::fmin(std::fmax(v[1], 1.0), 256.0));
  tsdpo::gemm(p, threads);
  return nullptr;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value out, kernel, available;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_string_utf8(env, tsdpo::gemm_selected(), NAPI_AUTO_LENGTH, &kernel));
  CHECK(napi_create_string_utf8(env, tsdpo::gemm_available(), NAPI_AUTO_LENGTH, &available));
  CHECK(napi_set_named_property(env, out, "kernel", kernel));
  CHECK(napi_set_named_property(env, out, "available", available));
  return out;
}

napi_value Select(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  char name[32] = {0};
  size_t len = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) {
    return Throw(env, false, "tsdpo native select: expected a kernel name (auto, avx512, avx2, scalar)");
  }
  napi_value ok;
  CHECK(napi_get_boolean(env, tsdpo::gemm_select(name), &ok));
  return ok;
}

}  // namespace

NAPI_MODULE_INIT() {
  const napi_property_descriptor props[] = {
      {"matmul", nullptr, Matmul, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"select", nullptr, Select, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return nullptr;
  return exports;
}
