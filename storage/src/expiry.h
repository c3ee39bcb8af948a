// TTL machinery for both column families. Private to storage/.
//
// ExpiryCompactionFilter: drops entry, payload and vector records whose expiry has passed
//   (RocksDB turns a dropped record into a tombstone, so no older version resurfaces).
// ExpiryPropertiesCollector: records the min and max expiry of the records in each SST as
//   table properties "sealcache.min_expiry_ms" / "sealcache.max_expiry_ms"; the key reaper
//   uses the max to know when every record in a file has expired.
// MaxSlotMergeOperator: merges the per-org "next slot" counter by maximum, so concurrent
//   puts never move it backwards and a slot number is never reused.
#pragma once

#include <rocksdb/compaction_filter.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/table_properties.h>

#include <memory>

#include "sealcache/clock.h"

namespace sealcache::storage::internal {

inline constexpr char kMinExpiryProperty[] = "sealcache.min_expiry_ms";
inline constexpr char kMaxExpiryProperty[] = "sealcache.max_expiry_ms";

class ExpiryCompactionFilter final : public rocksdb::CompactionFilter {
 public:
  explicit ExpiryCompactionFilter(const Clock* clock) : clock_(clock) {}
  bool Filter(int level, const rocksdb::Slice& key, const rocksdb::Slice& value,
              std::string* new_value, bool* value_changed) const override;
  const char* Name() const override { return "SealcacheExpiryCompactionFilter"; }

 private:
  const Clock* clock_;
};

std::shared_ptr<rocksdb::TablePropertiesCollectorFactory> NewExpiryPropertiesCollectorFactory();

std::shared_ptr<rocksdb::MergeOperator> NewMaxSlotMergeOperator();

// Reads the max expiry property of a table; 0 when the table has no expiring record.
int64_t MaxExpiryOf(const rocksdb::TableProperties& props);

}  // namespace sealcache::storage::internal
