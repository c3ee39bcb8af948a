#include "sealcache/crypto/key_ring.h"

namespace sealcache::crypto {

std::string_view KeyScopeName(KeyScope scope) { return scope == KeyScope::kNode ? "node" : "org"; }

std::string_view KeyStateName(KeyState state) {
  switch (state) {
    case KeyState::kActive:
      return "ACTIVE";
    case KeyState::kRetiring:
      return "RETIRING";
    case KeyState::kDestroyed:
      return "DESTROYED";
  }
  return "UNKNOWN";
}

Status ValidateOrgId(std::string_view org) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("invalid org id: " + std::string(why) +
                                   " (must match [a-z0-9][a-z0-9_-]{0,63})");
  };
  if (org.empty()) return bad("empty");
  if (org.size() > kMaxOrgIdLength) return bad("longer than 64 characters");
  for (size_t i = 0; i < org.size(); ++i) {
    char c = org[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum) continue;
    if (i > 0 && (c == '_' || c == '-')) continue;
    return bad(i == 0 ? "must start with a lower-case letter or digit"
                      : "contains a character other than a-z, 0-9, '_' or '-'");
  }
  return Status::Ok();
}

std::string RingId::ToString() const {
  return scope == KeyScope::kNode ? std::string("node") : "org " + org;
}

Result<uint32_t> KeyRing::Rotate(SecretBytes material, int64_t now_ms) {
  if (material.size() != kDataKeySize) {
    return Status::InvalidArgument("key material must be 32 bytes");
  }
  uint32_t next = versions_.empty() ? 1 : versions_.rbegin()->first + 1;
  if (next == 0) return Status::ResourceExhausted("key version numbers exhausted");
  for (auto& [v, entry] : versions_) {
    if (entry.info.state == KeyState::kActive) {
      entry.info.state = KeyState::kRetiring;
      entry.info.rotated_ms = now_ms;
    }
  }
  Version entry;
  entry.info = KeyInfo{id_, next, KeyState::kActive, now_ms, 0, 0};
  entry.material = std::make_shared<const SecretBytes>(std::move(material));
  versions_.emplace(next, std::move(entry));
  return next;
}

Status KeyRing::Destroy(uint32_t version, int64_t now_ms) {
  auto it = versions_.find(version);
  if (it == versions_.end()) {
    return Status::NotFound("unknown key version " + std::to_string(version) + " of " +
                            id_.ToString());
  }
  KeyInfo& info = it->second.info;
  if (info.state == KeyState::kActive) {
    return Status::FailedPrecondition("key version " + std::to_string(version) + " of " +
                                      id_.ToString() + " is ACTIVE; rotate before destroying it");
  }
  if (info.state == KeyState::kDestroyed) {
    return Status::FailedPrecondition("key version " + std::to_string(version) + " of " +
                                      id_.ToString() + " is already destroyed");
  }
  info.state = KeyState::kDestroyed;
  info.destroyed_ms = now_ms;
  it->second.material.reset();
  return Status::Ok();
}

void KeyRing::DestroyAll(int64_t now_ms) {
  for (auto& [v, entry] : versions_) {
    if (entry.info.state == KeyState::kDestroyed) continue;
    if (entry.info.state == KeyState::kActive) entry.info.rotated_ms = now_ms;
    entry.info.state = KeyState::kDestroyed;
    entry.info.destroyed_ms = now_ms;
    entry.material.reset();
  }
}

bool KeyRing::has_active() const {
  for (const auto& [v, entry] : versions_) {
    if (entry.info.state == KeyState::kActive) return true;
  }
  return false;
}

Result<uint32_t> KeyRing::ActiveVersion() const {
  for (const auto& [v, entry] : versions_) {
    if (entry.info.state == KeyState::kActive) return v;
  }
  return Status::FailedPrecondition(id_.ToString() + " has no active key (it was dropped)");
}

Result<std::shared_ptr<const SecretBytes>> KeyRing::Key(uint32_t version) const {
  auto it = versions_.find(version);
  if (it == versions_.end()) {
    return Status::NotFound("unknown key version " + std::to_string(version) + " of " +
                            id_.ToString());
  }
  if (it->second.info.state == KeyState::kDestroyed) {
    return Status::FailedPrecondition("key version " + std::to_string(version) + " of " +
                                      id_.ToString() +
                                      " was destroyed; data written under it is unreadable");
  }
  return it->second.material;
}

Result<KeyInfo> KeyRing::Info(uint32_t version) const {
  auto it = versions_.find(version);
  if (it == versions_.end()) {
    return Status::NotFound("unknown key version " + std::to_string(version) + " of " +
                            id_.ToString());
  }
  return it->second.info;
}

std::vector<KeyInfo> KeyRing::Versions() const {
  std::vector<KeyInfo> out;
  out.reserve(versions_.size());
  for (const auto& [v, entry] : versions_) out.push_back(entry.info);
  return out;
}

Status KeyRing::Restore(KeyInfo info, std::shared_ptr<const SecretBytes> material) {
  if (info.version == 0) return Status::Corruption("key version 0 is not valid");
  if (versions_.count(info.version) != 0) {
    return Status::Corruption("duplicate key version " + std::to_string(info.version) + " of " +
                              id_.ToString());
  }
  bool destroyed = info.state == KeyState::kDestroyed;
  if (destroyed != (material == nullptr)) {
    return Status::Corruption("key version " + std::to_string(info.version) + " of " +
                              id_.ToString() + " has material inconsistent with its state");
  }
  if (info.state == KeyState::kActive && has_active()) {
    return Status::Corruption(id_.ToString() + " has more than one ACTIVE key version");
  }
  info.ring = id_;
  versions_.emplace(info.version, Version{std::move(info), std::move(material)});
  return Status::Ok();
}

}  // namespace sealcache::crypto
