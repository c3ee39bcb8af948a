// The CLI's --json documents and put-batch input use the tools' shared JSON value.
#pragma once

#include "sealcache/json.h"

namespace sealcache::cli {
using ::sealcache::Json;
using ::sealcache::JsonQuote;
}  // namespace sealcache::cli
