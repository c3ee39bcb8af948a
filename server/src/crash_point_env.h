// TEST BUILDS ONLY (sealcached_faults): crash the server at a named fault point.
//
//   SEALCACHE_CRASH_AT=<point>[:<nth>]   raise(SIGKILL) the nth time (default 1st) execution
//                                        reaches <point>, one of storage::KeyLifecycleFaultPoints()
//   SEALCACHE_FAULT_TRACE=1              print "sealcached: fault point <name>" for each point
//                                        reached, so a test can check the list is complete
//
// The shipped sealcached is built without this file: nothing in it reads these variables.
#pragma once

#include "sealcache/status.h"
#include "sealcache/storage/store.h"

namespace sealcache::server {

inline constexpr char kCrashAtEnv[] = "SEALCACHE_CRASH_AT";
inline constexpr char kFaultTraceEnv[] = "SEALCACHE_FAULT_TRACE";

// Sets options->fault_hook from the environment (leaves it null if neither variable is set).
// InvalidArgument for an unknown point or a bad count.
Status InstallCrashPointFromEnvironment(storage::StoreOptions* options);

}  // namespace sealcache::server
