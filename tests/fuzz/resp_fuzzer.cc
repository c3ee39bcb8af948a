// libFuzzer target: the Redis-protocol front's parser and command table over a real store
// (resp_fuzz_input.h). A broken promise aborts, so libFuzzer saves the input.
#include <cstdio>
#include <cstdlib>

#include "resp_fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto result = sealcache::fuzz::RunRespFuzzInput({data, size});
  if (!result.ok()) {
    std::fprintf(stderr, "resp fuzz input: %s\n", result.status().ToString().c_str());
    std::abort();
  }
  return 0;
}
