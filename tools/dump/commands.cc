// Helpers shared by the commands that read the database.
#include "commands.h"

namespace sealcache::dump {

Result<std::unique_ptr<storage::StoreView>> OpenView(const CommandContext& ctx) {
  storage::StoreViewOptions options;
  options.data_dir = ctx.layout.data_dir();
  options.master_key = ctx.master_key ? &*ctx.master_key : nullptr;
  return storage::StoreView::Open(options);
}

std::string ViewMode(const storage::StoreView& view) {
  if (view.plaintext_benchmark()) return "plaintext-benchmark";
  return view.full() ? "keyed" : "keyless";
}

std::string ViewNote(const storage::StoreView& view) {
  if (view.plaintext_benchmark()) {
    return "plaintext benchmark store (nothing is encrypted): all data read, WAL replayed";
  }
  if (view.full()) return "keyed view: WAL replayed, includes unflushed writes";
  return "keyless view: state as of the last flush (the WAL is encrypted under the node key "
         "and was not read; pass --master-key to include unflushed writes)";
}

}  // namespace sealcache::dump
