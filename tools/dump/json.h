// The dump tool's --json documents use the tools' shared JSON value.
#pragma once

#include "sealcache/json.h"

namespace sealcache::dump {
using ::sealcache::Json;
}  // namespace sealcache::dump
