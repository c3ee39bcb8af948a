// The CLI's --json documents and put-batch input use the tools' shared JSON value.
#pragma once

#include "sealcache/tools/json.h"

namespace sealcache::cli {
using tools::Json;
using tools::JsonQuote;
}  // namespace sealcache::cli
