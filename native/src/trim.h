// trim(): glibc's malloc_trim for JavaScript (trim.cc).
#pragma once
#include <node_api.h>

namespace tsdpo {
napi_value Trim(napi_env env, napi_callback_info info);
}  // namespace tsdpo
