// trim(): hands the C heap's free memory back to the OS (glibc's malloc_trim). V8's ArrayBuffers
// are malloc'd, and glibc keeps the memory of freed ones mapped for reuse: after a model is loaded
// that memory is resident but unused. Returns true when memory was released; elsewhere (not glibc)
// it does nothing and returns false.
#include "trim.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace tsdpo {

napi_value Trim(napi_env env, napi_callback_info) {
  bool released = false;
#if defined(__GLIBC__)
  released = malloc_trim(0) != 0;
#endif
  napi_value out;
  if (napi_get_boolean(env, released, &out) != napi_ok) return nullptr;
  return out;
}

}  // namespace tsdpo
