// Key rings: the versions of one node key or one org key, Tink-keyset style.
//
// Every version has a state:
//   ACTIVE     encrypts new files and decrypts; exactly one per live ring
//   RETIRING   decrypts only; waits until no live file uses it
//   DESTROYED  material erased; the record stays for audit
// Transitions: Rotate() adds a new ACTIVE version and turns the previous ACTIVE into
// RETIRING (the only way a version retires, so a live ring never lacks an ACTIVE version);
// Destroy(v) takes a RETIRING version to DESTROYED; DestroyAll() destroys every version
// (dropping an org), after which the ring has no ACTIVE version until Rotate() revives it.
//
// A KeyRing is a value with no I/O; the Keystore persists it.
// REQUIRES: external synchronization (the Keystore's mutex).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"

namespace sealcache::crypto {

enum class KeyScope : uint8_t { kNode = 1, kOrg = 2 };
enum class KeyState : uint8_t { kActive = 1, kRetiring = 2, kDestroyed = 3 };

std::string_view KeyScopeName(KeyScope scope);  // "node" | "org"
std::string_view KeyStateName(KeyState state);  // "ACTIVE" | "RETIRING" | "DESTROYED"

inline constexpr size_t kDataKeySize = 32;
inline constexpr size_t kMaxOrgIdLength = 64;

// An org id matches [a-z0-9][a-z0-9_-]{0,63}: it becomes a directory and a column family
// name, so nothing that could traverse a path or collide with a separator is accepted.
Status ValidateOrgId(std::string_view org);

// Identifies a ring: the node ring has an empty org.
struct RingId {
  KeyScope scope = KeyScope::kOrg;
  std::string org;
  auto operator<=>(const RingId&) const = default;
  std::string ToString() const;  // "node" or "org acme"
};

// Plaintext metadata of one version (what the dump tool shows without the master key).
struct KeyInfo {
  RingId ring;
  uint32_t version = 0;
  KeyState state = KeyState::kActive;
  int64_t created_ms = 0;
  int64_t rotated_ms = 0;    // when it stopped being ACTIVE; 0 if it still is
  int64_t destroyed_ms = 0;  // 0 unless DESTROYED
};

class KeyRing {
 public:
  explicit KeyRing(RingId id) : id_(std::move(id)) {}

  const RingId& id() const { return id_; }

  // Adds version max+1 as ACTIVE with `material` (kDataKeySize bytes); the previous ACTIVE,
  // if any, becomes RETIRING. Returns the new version.
  Result<uint32_t> Rotate(SecretBytes material, int64_t now_ms);
  // RETIRING -> DESTROYED; the material is dropped (wiped once no reader holds it).
  Status Destroy(uint32_t version, int64_t now_ms);
  // Every non-destroyed version -> DESTROYED.
  void DestroyAll(int64_t now_ms);

  // The ACTIVE version; FailedPrecondition if the ring was dropped.
  Result<uint32_t> ActiveVersion() const;
  // Material of a usable (ACTIVE or RETIRING) version: NotFound for an unknown version,
  // FailedPrecondition for a destroyed one.
  Result<std::shared_ptr<const SecretBytes>> Key(uint32_t version) const;
  Result<KeyInfo> Info(uint32_t version) const;
  std::vector<KeyInfo> Versions() const;  // ascending version
  bool has_active() const;

  // Used by the keystore loader: adds a version record as stored. Checks the ring's
  // invariants (unique version, material present iff not destroyed, at most one ACTIVE).
  Status Restore(KeyInfo info, std::shared_ptr<const SecretBytes> material);

 private:
  struct Version {
    KeyInfo info;
    std::shared_ptr<const SecretBytes> material;  // null once destroyed
  };
  RingId id_;
  std::map<uint32_t, Version> versions_;
};

}  // namespace sealcache::crypto
