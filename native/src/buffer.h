// A 64-byte aligned float buffer that grows on demand and is kept for the next call (the packing
// buffers and attention tiles; one per thread where declared thread_local).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace tsdpo {

struct Buffer {
  float* data = nullptr;
  size_t size = 0;

  /** At least n floats (their contents are not kept when it grows). */
  float* get(size_t n) {
    if (n > size) {
      std::free(data);
      data = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
      if (data == nullptr) {
        std::fprintf(stderr, "tsdpo native: out of memory allocating %zu bytes of working space\n", n * sizeof(float));
        std::abort();
      }
      size = n;
    }
    return data;
  }

  ~Buffer() { std::free(data); }
};

}  // namespace tsdpo
