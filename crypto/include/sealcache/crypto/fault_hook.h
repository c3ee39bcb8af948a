// FaultHook: named crash points in code whose crash safety matters (the keystore's atomic
// replace, key rotation, retirement, DropOrg). Tests pass a hook through the options of the
// Keystore or the Store; production code leaves it null and every point is a no-op.
//
// The hook is called with the point's name when execution reaches it. A non-OK status
// aborts the operation there, as an I/O error would; a hook that kills the process (the
// test-only sealcached_faults does `raise(SIGKILL)`) simulates a crash at that instant.
// There is no global state: a hook lives in the options of the object that calls it.
#pragma once

#include <functional>
#include <string_view>

#include "sealcache/status.h"

namespace sealcache::crypto {

using FaultHook = std::function<Status(std::string_view point)>;

inline Status ReachFaultPoint(const FaultHook& hook, std::string_view point) {
  return hook ? hook(point) : Status::Ok();
}

}  // namespace sealcache::crypto
