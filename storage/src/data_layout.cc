#include "sealcache/storage/data_layout.h"

namespace sealcache::storage {
namespace {

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}
bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// For "<dir>/<org>/<rest>" returns <org> and sets `rest`, if `path` is below `dir` by at
// least two levels.
std::optional<std::string> OrgBelow(const std::string& path, const std::string& dir,
                                    std::string* rest = nullptr) {
  const std::string prefix = dir + "/";
  if (!StartsWith(path, prefix)) return std::nullopt;
  auto slash = path.find('/', prefix.size());
  if (slash == std::string::npos) return std::nullopt;
  if (rest != nullptr) *rest = path.substr(slash + 1);
  return path.substr(prefix.size(), slash - prefix.size());
}

const crypto::RingId kNodeRing{crypto::KeyScope::kNode, ""};

}  // namespace

DataLayout::DataLayout(std::string data_dir) : data_dir_(std::move(data_dir)) {
  while (data_dir_.size() > 1 && data_dir_.back() == '/') data_dir_.pop_back();
}

FileClass DataLayout::Classify(const std::string& path) const {
  FileClass c;
  std::string rest;
  if (auto org = OrgBelow(path, orgs_dir(), &rest)) {
    c.org = *org;
    const crypto::RingId org_ring{crypto::KeyScope::kOrg, *org};
    if (StartsWith(rest, "data/")) {
      c.encrypted = true;
      c.kind = EndsWith(rest, ".sst") ? FileKind::kSst : FileKind::kOther;
      c.ring = org_ring;
    } else if (StartsWith(rest, "index/")) {
      c.encrypted = true;
      c.kind = FileKind::kIndexSnapshot;
      c.ring = org_ring;
    } else if (rest.find('/') == std::string::npos && EndsWith(rest, ".log")) {
      // The WAL holds payloads and vectors: node key. The MANIFEST holds only family names,
      // file numbers and key ranges (digests and slots), all plaintext-class data, and stays
      // readable so tools can open the meta family without keys.
      c.encrypted = true;
      c.kind = FileKind::kWal;
      c.ring = kNodeRing;
    }
    return c;
  }
  // The shared instance of stores written before the per-org layout.
  if (auto org = OrgBelow(path, legacy_db_dir() + "/orgs")) {
    c = {true,
         EndsWith(path, ".sst") ? FileKind::kSst : FileKind::kOther,
         {crypto::KeyScope::kOrg, *org},
         *org};
    return c;
  }
  if (auto org = OrgBelow(path, legacy_index_dir())) {
    c = {true, FileKind::kIndexSnapshot, {crypto::KeyScope::kOrg, *org}, *org};
    return c;
  }
  const std::string db_prefix = legacy_db_dir() + "/";
  if (StartsWith(path, db_prefix) && path.find('/', db_prefix.size()) == std::string::npos &&
      EndsWith(path, ".log")) {
    c = {true, FileKind::kWal, kNodeRing, ""};
  }
  return c;
}

}  // namespace sealcache::storage
