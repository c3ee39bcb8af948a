// The dump tool's --json documents use the tools' shared JSON value.
#pragma once

#include "sealcache/tools/json.h"

namespace sealcache::dump {
using tools::Json;
}  // namespace sealcache::dump
