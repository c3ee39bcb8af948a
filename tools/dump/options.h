// Command line of sealcache-dump and its exit codes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sealcache/status.h"

namespace sealcache::dump {

// Exit codes (also listed in --help).
inline constexpr int kExitOk = 0;
inline constexpr int kExitProblems = 1;  // files/verify/keys found something wrong
inline constexpr int kExitUsage = 2;     // bad command line
inline constexpr int kExitError = 3;     // could not inspect (no store, unknown org, bad key)

inline constexpr uint64_t kDefaultEntryLimit = 100;
inline constexpr int64_t kDefaultRotationIntervalDays = 90;

struct DumpOptions {
  std::string data_dir;
  std::string command;
  bool json = false;
  bool help = false;
  std::optional<std::string> master_key_spec;
  std::optional<std::string> org;
  std::optional<std::string> name_space;
  std::optional<std::string> digest_hex;
  bool include_expired = false;
  uint64_t limit = kDefaultEntryLimit;
  std::optional<int64_t> now_ms;  // default: the system clock
  int64_t rotation_interval_days = kDefaultRotationIntervalDays;
};

// Parses argv (without argv[0]). InvalidArgument with a message fit for the user.
Result<DumpOptions> ParseArgs(const std::vector<std::string>& args);

// The --help text.
const char* UsageText();

}  // namespace sealcache::dump
