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

// For "<dir>/<org>/<rest>" returns <org>, if `path` is below `dir` by at least two levels.
std::optional<std::string> OrgBelow(const std::string& path, const std::string& dir) {
  const std::string prefix = dir + "/";
  if (!StartsWith(path, prefix)) return std::nullopt;
  auto slash = path.find('/', prefix.size());
  if (slash == std::string::npos) return std::nullopt;
  return path.substr(prefix.size(), slash - prefix.size());
}

}  // namespace

DataLayout::DataLayout(std::string data_dir) : data_dir_(std::move(data_dir)) {
  while (data_dir_.size() > 1 && data_dir_.back() == '/') data_dir_.pop_back();
}

FileClass DataLayout::Classify(const std::string& path) const {
  FileClass c;
  if (auto org = OrgBelow(path, orgs_dir())) {
    c.encrypted = true;
    c.kind = EndsWith(path, ".sst") ? FileKind::kSst : FileKind::kOther;
    c.ring = {crypto::KeyScope::kOrg, *org};
    return c;
  }
  if (auto org = OrgBelow(path, index_dir())) {
    c.encrypted = true;
    c.kind = FileKind::kIndexSnapshot;
    c.ring = {crypto::KeyScope::kOrg, *org};
    return c;
  }
  const std::string db_prefix = db_dir() + "/";
  if (StartsWith(path, db_prefix) && path.find('/', db_prefix.size()) == std::string::npos) {
    const std::string name = path.substr(db_prefix.size());
    // The WAL holds payloads and vectors: node key. The MANIFEST holds only family
    // names, file numbers and key ranges (digests and slots), all plaintext-class data,
    // and stays readable so tools can open the meta family without keys.
    if (EndsWith(name, ".log")) c = {true, FileKind::kWal, {crypto::KeyScope::kNode, ""}};
  }
  return c;
}

}  // namespace sealcache::storage
