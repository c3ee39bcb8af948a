// Whole-file reads and crash-safe whole-file replacement.
//
// WriteFileAtomically: write PATH.tmp (mode 0600), fsync it, rename over PATH, fsync the
// directory. A crash at any point leaves either the old file or the new one at PATH, never a
// mix; a leftover PATH.tmp is ignored by readers and replaced by the next write.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sealcache/crypto/fault_hook.h"
#include "sealcache/status.h"

namespace sealcache::crypto {

// Test-only fault injection: called at each step below; a non-OK status aborts the write
// there, as a crash would.
using AtomicWriteFaultHook = FaultHook;
inline constexpr std::string_view kAfterTempWrite = "after_temp_write";  // temp file synced
inline constexpr std::string_view kBeforeRename = "before_rename";
inline constexpr std::string_view kAfterRename = "after_rename";  // directory not yet synced
inline constexpr std::string_view kAtomicWriteSteps[] = {kAfterTempWrite, kBeforeRename,
                                                         kAfterRename};

Status WriteFileAtomically(const std::string& path, std::span<const uint8_t> bytes,
                           const AtomicWriteFaultHook& fault_hook = nullptr);

// Reads a whole file. NotFound if it does not exist.
Result<std::vector<uint8_t>> ReadWholeFile(const std::string& path);

// fsyncs a directory so a rename or create inside it is durable.
Status SyncDirectory(const std::string& dir);

}  // namespace sealcache::crypto
