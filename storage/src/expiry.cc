#include "expiry.h"

#include <limits>

#include "records.h"

namespace sealcache::storage::internal {
namespace {

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

class ExpiryPropertiesCollector final : public rocksdb::TablePropertiesCollector {
 public:
  rocksdb::Status AddUserKey(const rocksdb::Slice& key, const rocksdb::Slice& value,
                             rocksdb::EntryType type, rocksdb::SequenceNumber, uint64_t) override {
    if (type != rocksdb::kEntryPut || !HasExpiryPrefix(View(key))) return rocksdb::Status::OK();
    if (auto expiry = ValueExpiry(View(value))) {
      min_ = std::min(min_, *expiry);
      max_ = std::max(max_, *expiry);
      any_ = true;
    }
    return rocksdb::Status::OK();
  }

  rocksdb::Status Finish(rocksdb::UserCollectedProperties* props) override {
    *props = GetReadableProperties();
    return rocksdb::Status::OK();
  }

  rocksdb::UserCollectedProperties GetReadableProperties() const override {
    return {{kMinExpiryProperty, std::to_string(any_ ? min_ : 0)},
            {kMaxExpiryProperty, std::to_string(any_ ? max_ : 0)}};
  }

  const char* Name() const override { return "SealcacheExpiryPropertiesCollector"; }

 private:
  bool any_ = false;
  int64_t min_ = std::numeric_limits<int64_t>::max();
  int64_t max_ = std::numeric_limits<int64_t>::min();
};

class ExpiryPropertiesCollectorFactory final : public rocksdb::TablePropertiesCollectorFactory {
 public:
  rocksdb::TablePropertiesCollector* CreateTablePropertiesCollector(
      rocksdb::TablePropertiesCollectorFactory::Context) override {
    return new ExpiryPropertiesCollector();
  }
  const char* Name() const override { return "SealcacheExpiryPropertiesCollectorFactory"; }
};

class MaxSlotMergeOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    uint64_t a = existing != nullptr ? DecodeSlot(View(*existing)).value_or(0) : 0;
    uint64_t b = DecodeSlot(View(value)).value_or(0);
    *new_value = EncodeSlot(std::max(a, b));
    return true;
  }
  const char* Name() const override { return "SealcacheMaxSlotMergeOperator"; }
};

}  // namespace

bool ExpiryCompactionFilter::Filter(int, const rocksdb::Slice& key, const rocksdb::Slice& value,
                                    std::string*, bool*) const {
  if (!HasExpiryPrefix(View(key))) return false;
  auto expiry = ValueExpiry(View(value));
  return expiry.has_value() && *expiry <= clock_->NowMillis();
}

std::shared_ptr<rocksdb::TablePropertiesCollectorFactory> NewExpiryPropertiesCollectorFactory() {
  return std::make_shared<ExpiryPropertiesCollectorFactory>();
}

std::shared_ptr<rocksdb::MergeOperator> NewMaxSlotMergeOperator() {
  return std::make_shared<MaxSlotMergeOperator>();
}

int64_t MaxExpiryOf(const rocksdb::TableProperties& props) {
  auto it = props.user_collected_properties.find(kMaxExpiryProperty);
  if (it == props.user_collected_properties.end()) return 0;
  try {
    return std::stoll(it->second);
  } catch (...) {
    return 0;
  }
}

}  // namespace sealcache::storage::internal
