#include "crash_point_env.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "sealcache/storage/fault_points.h"

namespace sealcache::server {
namespace {

struct CrashPlan {
  std::string point;  // empty: trace only
  uint64_t nth = 1;
  bool trace = false;
  std::atomic<uint64_t> reached{0};
};

Status ParseCrashAt(std::string_view spec, CrashPlan* plan) {
  const size_t colon = spec.rfind(':');
  plan->point = std::string(spec.substr(0, colon));
  if (colon != std::string_view::npos) {
    std::string_view count = spec.substr(colon + 1);
    auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), plan->nth);
    if (ec != std::errc() || end != count.data() + count.size() || plan->nth == 0) {
      return Status::InvalidArgument(std::string(kCrashAtEnv) + ": bad count '" +
                                     std::string(count) + "' (a number from 1)");
    }
  }
  auto points = storage::KeyLifecycleFaultPoints();
  if (std::find(points.begin(), points.end(), plan->point) == points.end()) {
    return Status::InvalidArgument(std::string(kCrashAtEnv) + ": unknown fault point '" +
                                   plan->point + "'");
  }
  return Status::Ok();
}

Status OnPoint(CrashPlan& plan, std::string_view point) {
  if (plan.trace) {
    std::fprintf(stderr, "sealcached: fault point %.*s\n", static_cast<int>(point.size()),
                 point.data());
  }
  if (point != plan.point || plan.reached.fetch_add(1) + 1 != plan.nth) return Status::Ok();
  std::fprintf(stderr, "sealcached: crashing at fault point %s (time %llu)\n", plan.point.c_str(),
               static_cast<unsigned long long>(plan.nth));
  raise(SIGKILL);
  return Status::Internal("SIGKILL did not stop the process");  // not reached
}

}  // namespace

Status InstallCrashPointFromEnvironment(storage::StoreOptions* options) {
  const char* crash_at = std::getenv(kCrashAtEnv);
  const char* trace = std::getenv(kFaultTraceEnv);
  auto plan = std::make_shared<CrashPlan>();
  plan->trace = trace != nullptr && std::string_view(trace) == "1";
  if (crash_at != nullptr && *crash_at != '\0') {
    SC_RETURN_IF_ERROR(ParseCrashAt(crash_at, plan.get()));
  } else if (!plan->trace) {
    return Status::Ok();
  }
  options->fault_hook = [plan](std::string_view point) { return OnPoint(*plan, point); };
  return Status::Ok();
}

}  // namespace sealcache::server
