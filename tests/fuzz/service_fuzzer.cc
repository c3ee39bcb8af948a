// libFuzzer target: frame decoding and CacheService::Handle over a real store
// (service_fuzz_input.h). A broken protocol promise aborts, so libFuzzer saves the input.
#include <cstdio>
#include <cstdlib>

#include "service_fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto result = sealcache::fuzz::RunServiceFuzzInput({data, size});
  if (!result.ok()) {
    std::fprintf(stderr, "service fuzz input: %s\n", result.status().ToString().c_str());
    std::abort();
  }
  return 0;
}
