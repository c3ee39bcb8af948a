#include "catalog.h"

#include <cstring>

#include "records.h"
#include "sealcache/crypto/aead.h"
#include "sealcache/crypto/atomic_file.h"
#include "sealcache/crypto/random.h"

namespace sealcache::storage::internal {
namespace {

// magic(8) | format(2) | node key version(4) | AES-256-GCM sealed records
constexpr char kMagic[8] = {'S', 'C', 'C', 'A', 'T', 'A', 'L', 'G'};
constexpr uint16_t kFormat = 1;
constexpr size_t kPrefixSize = sizeof(kMagic) + 2 + 4;
constexpr std::string_view kAadLabel = "sealcache/catalog/v1";
constexpr uint8_t kOrgRecord = 'o';
constexpr uint8_t kTokenRecord = 't';
constexpr uint8_t kNameKeyRecord = 'k';
constexpr size_t kNameKeyBytes = 32;
const crypto::RingId kNodeRing{crypto::KeyScope::kNode, ""};

void PutU32(std::vector<uint8_t>* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint32_t GetU32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
void PutBytes(std::vector<uint8_t>* out, std::string_view bytes) {
  PutU32(out, static_cast<uint32_t>(bytes.size()));
  out->insert(out->end(), bytes.begin(), bytes.end());
}

std::vector<uint8_t> Aad(std::span<const uint8_t> prefix) {
  std::vector<uint8_t> aad(kAadLabel.size() + prefix.size());
  std::memcpy(aad.data(), kAadLabel.data(), kAadLabel.size());
  std::memcpy(aad.data() + kAadLabel.size(), prefix.data(), prefix.size());
  return aad;
}

}  // namespace

Result<std::unique_ptr<Catalog>> Catalog::Open(const std::string& path,
                                               const crypto::Keystore* keystore,
                                               bool create_if_missing) {
  std::unique_ptr<Catalog> catalog(new Catalog(path, keystore, /*read_only=*/false));
  SC_RETURN_IF_ERROR(catalog->Load(create_if_missing));
  return catalog;
}

Result<std::unique_ptr<Catalog>> Catalog::OpenReadOnly(const std::string& path,
                                                       const crypto::Keystore* keystore) {
  std::unique_ptr<Catalog> catalog(new Catalog(path, keystore, /*read_only=*/true));
  SC_RETURN_IF_ERROR(catalog->Load(/*create_if_missing=*/false));
  return catalog;
}

Status Catalog::Load(bool create_if_missing) {
  auto bytes = crypto::ReadWholeFile(path_);
  if (bytes.status().IsNotFound() && create_if_missing) return Status::Ok();
  if (!bytes.ok()) return bytes.status().WithContext("catalog " + path_);
  auto corrupt = [&](const std::string& why) {
    return Status::Corruption("catalog " + path_ + " " + why);
  };
  if (bytes->size() < kPrefixSize || std::memcmp(bytes->data(), kMagic, sizeof(kMagic)) != 0) {
    return corrupt("is not a sealcache catalog");
  }
  const uint8_t* p = bytes->data() + sizeof(kMagic);
  const uint16_t format = static_cast<uint16_t>(p[0] | p[1] << 8);
  if (format != kFormat) return corrupt("has unknown format " + std::to_string(format));
  const uint32_t version = GetU32(p + 2);
  SC_ASSIGN_OR_RETURN(auto key, keystore_->Key(kNodeRing, version));
  SC_ASSIGN_OR_RETURN(auto aead, crypto::Aead::New(*key));
  std::span<const uint8_t> all(*bytes);
  auto plain = aead->Open(all.subspan(kPrefixSize), Aad(all.first(kPrefixSize)));
  if (!plain.ok()) return corrupt("fails authentication (changed, or sealed under another key)");

  State state;
  size_t at = 0;
  const std::vector<uint8_t>& r = *plain;
  auto take = [&](std::string* out) {
    if (r.size() - at < 4) return false;
    const uint32_t n = GetU32(r.data() + at);
    at += 4;
    if (r.size() - at < n) return false;
    out->assign(reinterpret_cast<const char*>(r.data() + at), n);
    at += n;
    return true;
  };
  while (at < r.size()) {
    const uint8_t type = r[at++];
    std::string key_bytes, value;
    if (!take(&key_bytes) || !take(&value)) return corrupt("has a truncated record");
    if (type == kOrgRecord) {
      SC_ASSIGN_OR_RETURN(OrgConfig config, DecodeOrgInfo(value));
      state.orgs.emplace(std::move(key_bytes), std::move(config));
    } else if (type == kTokenRecord) {
      SC_ASSIGN_OR_RETURN(TokenRecord token, DecodeToken(value));
      state.tokens.emplace(std::move(key_bytes), std::move(token));
    } else if (type == kNameKeyRecord) {
      if (value.size() != kNameKeyBytes) return corrupt("has a name key of the wrong size");
      auto secret = std::make_shared<crypto::SecretBytes>(kNameKeyBytes);
      std::memcpy(secret->data(), value.data(), kNameKeyBytes);
      std::fill(value.begin(), value.end(), '\0');
      state.name_keys.emplace(std::move(key_bytes), std::move(secret));
    } else {
      return corrupt("has a record of unknown type " + std::to_string(type));
    }
  }
  std::fill(plain->begin(), plain->end(), 0);  // name keys
  state_ = std::move(state);
  return Status::Ok();
}

Status Catalog::Commit(State next) {
  if (read_only_) return Status::FailedPrecondition("the catalog is open read-only");
  std::vector<uint8_t> plain;
  for (const auto& [org, config] : next.orgs) {
    plain.push_back(kOrgRecord);
    PutBytes(&plain, org);
    PutBytes(&plain, EncodeOrgInfo(config));
  }
  for (const auto& [hash, token] : next.tokens) {
    plain.push_back(kTokenRecord);
    PutBytes(&plain, hash);
    PutBytes(&plain, EncodeToken(token));
  }
  for (const auto& [org, secret] : next.name_keys) {
    plain.push_back(kNameKeyRecord);
    PutBytes(&plain, org);
    PutBytes(&plain, {reinterpret_cast<const char*>(secret->data()), secret->size()});
  }
  SC_ASSIGN_OR_RETURN(auto active, keystore_->Active(kNodeRing));
  std::vector<uint8_t> file(kMagic, kMagic + sizeof(kMagic));
  file.push_back(static_cast<uint8_t>(kFormat));
  file.push_back(static_cast<uint8_t>(kFormat >> 8));
  PutU32(&file, active.version);
  SC_ASSIGN_OR_RETURN(auto aead, crypto::Aead::New(*active.key));
  SC_ASSIGN_OR_RETURN(auto sealed, aead->Seal(plain, Aad(file)));
  std::fill(plain.begin(), plain.end(), 0);
  file.insert(file.end(), sealed.begin(), sealed.end());
  SC_RETURN_IF_ERROR(crypto::WriteFileAtomically(path_, file).WithContext("catalog"));
  state_ = std::move(next);
  return Status::Ok();
}

std::map<std::string, OrgConfig> Catalog::Orgs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_.orgs;
}

std::optional<OrgConfig> Catalog::FindOrg(std::string_view org) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.orgs.find(std::string(org));
  if (it == state_.orgs.end()) return std::nullopt;
  return it->second;
}

Status Catalog::AddOrg(const std::string& org, const OrgConfig& config,
                       std::shared_ptr<const crypto::SecretBytes> name_key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_.orgs.count(org)) return Status::AlreadyExists("org " + org + " already exists");
  State next = state_;
  next.orgs.emplace(org, config);
  next.name_keys.erase(org);
  if (name_key != nullptr) next.name_keys.emplace(org, std::move(name_key));
  return Commit(std::move(next));
}

Status Catalog::UpdateOrg(const std::string& org, const OrgConfig& config) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!state_.orgs.count(org)) return Status::NotFound("unknown org " + org);
  State next = state_;
  next.orgs[org] = config;
  return Commit(std::move(next));
}

Status Catalog::RemoveOrg(const std::string& org) {
  std::lock_guard<std::mutex> lock(mu_);
  State next = state_;
  next.orgs.erase(org);
  next.name_keys.erase(org);
  std::erase_if(next.tokens, [&](const auto& t) { return t.second.org == org; });
  return Commit(std::move(next));
}

Status Catalog::AddAll(const std::map<std::string, OrgConfig>& orgs,
                       const std::map<std::string, TokenRecord>& tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  State next = state_;
  next.orgs.insert(orgs.begin(), orgs.end());
  next.tokens.insert(tokens.begin(), tokens.end());
  return Commit(std::move(next));
}

Status Catalog::AddToken(const std::string& token_hash, const TokenRecord& record) {
  std::lock_guard<std::mutex> lock(mu_);
  State next = state_;
  next.tokens[token_hash] = record;
  return Commit(std::move(next));
}

Result<TokenRecord> Catalog::FindToken(const std::string& token_hash) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.tokens.find(token_hash);
  if (it == state_.tokens.end()) return Status::NotFound("unknown token");
  return it->second;
}

Result<std::shared_ptr<const crypto::SecretBytes>> Catalog::NameKey(const std::string& org) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = state_.name_keys.find(org); it != state_.name_keys.end()) return it->second;
  if (!state_.orgs.count(org)) return Status::NotFound("unknown org " + org);
  SC_ASSIGN_OR_RETURN(crypto::SecretBytes fresh, crypto::RandomSecret(kNameKeyBytes));
  auto secret = std::make_shared<const crypto::SecretBytes>(std::move(fresh));
  State next = state_;
  next.name_keys.emplace(org, secret);
  SC_RETURN_IF_ERROR(Commit(std::move(next)));
  return secret;
}

Result<uint64_t> Catalog::RemoveTokens(std::string_view org, std::string_view token_id) {
  std::lock_guard<std::mutex> lock(mu_);
  State next = state_;
  const uint64_t n = std::erase_if(next.tokens, [&](const auto& t) {
    return t.second.org == org && (token_id.empty() || t.second.token_id == token_id);
  });
  if (n == 0) return n;
  SC_RETURN_IF_ERROR(Commit(std::move(next)));
  return n;
}

}  // namespace sealcache::storage::internal
