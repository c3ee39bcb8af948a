// The input of the Redis-protocol fuzz target, and the one function that runs it (shared by
// the libFuzzer target and the corpus-replay gtest).
//
// Input layout:
//
// | bytes | field |
// |---|---|
// | 0 | session state, taken modulo 4 (SessionState of service_fuzz_input.h); an org or
// |   | admin state is the session an AUTH with that state's token gives |
// | 1 | read size: the rest is fed to the parser 1 + (byte % 64) bytes at a time, as a
// |   | connection receives it |
// | 2.. | bytes as a client would send them to the RESP port |
//
// Each request parsed is executed through the front's command table over the process-wide
// fuzz service, as a RESP connection would, until a protocol error or QUIT. Every request
// must get exactly one reply that parses as RESP2, or RESP3 after HELLO 3; before
// authentication every command but AUTH, HELLO, QUIT and RESET gets an error (-NOAUTH, or,
// as from Redis, an unknown-command or arity error); an org session never gets a non-error
// reply to a SEALCACHE.* command.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "sealcache/status.h"
#include "service_fuzz_input.h"

namespace sealcache::fuzz {

Result<FuzzInputSummary> RunRespFuzzInput(std::span<const uint8_t> input);

// The length of the one RESP reply at the start of `bytes`, or nullopt if it is not one
// (malformed or incomplete).
std::optional<size_t> RespReplyLength(std::string_view bytes);

}  // namespace sealcache::fuzz
