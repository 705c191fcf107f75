#include "runtime_log.h"

#include <cstdlib>
#include <string_view>

#include <executorch/runtime/platform/platform.h>

namespace atom {

static void drop(et_timestamp_t, et_pal_log_level_t, const char*, const char*, size_t, const char*, size_t) {}

void quiet_runtime_logs() {
  const char* verbose = std::getenv("ATOM_VERBOSE");
  if (verbose && *verbose && std::string_view(verbose) != "0") return;
  executorch::runtime::register_pal(executorch::runtime::PalImpl::create(drop, __FILE__));
}

}  // namespace atom
