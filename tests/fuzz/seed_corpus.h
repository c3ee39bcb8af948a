// The seed corpus of the service fuzz target (tests/fuzz/corpus/): named inputs in the
// layout of service_fuzz_input.h. `seed-*` inputs are answered OK frame by frame and
// together hold a valid frame of every request type; `refusal-*` inputs are answered with
// errors only. tests/fuzz/make_seed_corpus writes them; the corpus-replay test checks that
// the committed files are what it writes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sealcache::fuzz {

struct SeedInput {
  std::string name;  // file name in the corpus directory
  std::vector<uint8_t> bytes;
};

inline constexpr char kSeedPrefix[] = "seed-";
inline constexpr char kRefusalPrefix[] = "refusal-";

std::vector<SeedInput> SeedCorpus();

}  // namespace sealcache::fuzz
