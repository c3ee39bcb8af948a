// Keystore: every node and org key version, persisted in one file (`keys/keystore`), format
// in crypto/FORMAT.md.
//
// - Key material is wrapped with AES-256-GCM under a subkey of the master key; the AAD binds
//   purpose, scope, org and version, so a wrapped key cannot be replayed as another org's or
//   another version's key.
// - The whole file is authenticated (HMAC-SHA256 under another subkey of the master key).
//   Any changed, added or removed byte fails Open with a clear error and nothing is loaded.
// - Metadata (scope, org, version, state, times) is plaintext: ReadMetadata() needs no key.
// - Every change is written durably (temp file, fsync, rename, fsync dir) before the call
//   returns, so a key version is on disk before any file can use it. If the write fails the
//   in-memory state is unchanged.
// - One writer at a time: Open takes an exclusive advisory lock on `<path>.lock`, except in
//   read-only mode, which never writes and refuses every change.
//
// Thread-safe.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sealcache/clock.h"
#include "sealcache/crypto/atomic_file.h"
#include "sealcache/crypto/key_ring.h"
#include "sealcache/crypto/secret_bytes.h"
#include "sealcache/status.h"

namespace sealcache::crypto {

class Aead;

struct KeystoreOptions {
  // Required; timestamps of key events. Not owned; must outlive the keystore.
  const Clock* clock = nullptr;
  // Create an empty keystore if the file does not exist.
  bool create_if_missing = true;
  // Open without the lock and refuse every change (tools reading a live store). Implies
  // !create_if_missing.
  bool read_only = false;
  // Tests only: called at every step of every keystore write with the point's name,
  // KeystoreFaultPoint(operation, step); a non-OK status aborts the write there. Null (the
  // default) in production.
  FaultHook fault_hook;
};

// The keystore writes, as named in fault points.
inline constexpr std::string_view kKeystoreInit = "init";  // the empty file at first open
inline constexpr std::string_view kKeystoreCreateRing = "create_ring";
inline constexpr std::string_view kKeystoreRotate = "rotate";
inline constexpr std::string_view kKeystoreDestroy = "destroy";
inline constexpr std::string_view kKeystoreDestroyRing = "destroy_ring";
inline constexpr std::string_view kKeystoreRotateMasterKey = "rotate_master_key";
inline constexpr std::string_view kKeystoreImportRing = "import_ring";

// "keystore.<operation>.<step>", `step` one of kAtomicWriteSteps.
std::string KeystoreFaultPoint(std::string_view operation, std::string_view step);

// Wraps key versions under a subkey of the master key (HKDF-SHA256, info "sealcache keystore
// wrap v1") with AES-256-GCM; AAD = "sealcache/keywrap/v1" | scope | org length | org |
// version, so a blob wrapped for one (scope, org, version) never unwraps as another.
class KeyWrapper {
 public:
  static Result<std::unique_ptr<KeyWrapper>> New(const SecretBytes& master_key);
  ~KeyWrapper();
  Result<std::vector<uint8_t>> Wrap(const RingId& ring, uint32_t version,
                                    const SecretBytes& key) const;
  Result<SecretBytes> Unwrap(const RingId& ring, uint32_t version,
                             std::span<const uint8_t> wrapped) const;

 private:
  explicit KeyWrapper(std::unique_ptr<Aead> aead);
  std::unique_ptr<Aead> aead_;
};

// What ReadMetadata() sees without the master key. Unauthenticated until Verify() passes.
struct KeystoreMetadata {
  uint16_t format_version = 0;
  uint64_t generation = 0;             // +1 on every write
  std::string master_key_fingerprint;  // hex; identifies the master key, reveals nothing
  std::vector<KeyInfo> keys;
};

class Keystore {
 public:
  static constexpr uint16_t kFormatVersion = 1;

  static Result<std::unique_ptr<Keystore>> Open(const std::string& path,
                                                const SecretBytes& master_key,
                                                KeystoreOptions options);
  // Parses the plaintext metadata; does not authenticate it.
  static Result<KeystoreMetadata> ReadMetadata(const std::string& path);
  // Authenticates the whole file and unwraps every key under `master_key`.
  static Status Verify(const std::string& path, const SecretBytes& master_key);
  // The fingerprint a keystore written under `master_key` carries (hex).
  static Result<std::string> Fingerprint(const SecretBytes& master_key);

  ~Keystore();
  Keystore(const Keystore&) = delete;
  Keystore& operator=(const Keystore&) = delete;

  // Creates a ring whose version 1 (or, for a previously dropped org, the next version) is
  // ACTIVE. AlreadyExists if the ring has an ACTIVE version.
  Result<uint32_t> CreateRing(const RingId& ring);
  // New ACTIVE version; the previous one becomes RETIRING. Returns the new version.
  Result<uint32_t> Rotate(const RingId& ring);
  // RETIRING -> DESTROYED; its wrapped material is removed from the file.
  Status Destroy(const RingId& ring, uint32_t version);
  // Destroys every version of the ring (DropOrg). The records stay for audit.
  Status DestroyRing(const RingId& ring);
  // A ring's versions as stored (metadata and key material wrapped under the master key,
  // never a plain key), to move an org to another node holding the same master key.
  // NotFound for an unknown ring, FailedPrecondition for a dropped one.
  Result<std::vector<uint8_t>> ExportRing(const RingId& ring) const;
  // Adds a ring ExportRing made under the same master key. Every record must be `ring`'s and
  // every wrapped key must unwrap here (PermissionDenied under another master key) before
  // anything changes. AlreadyExists if `ring` has an ACTIVE version here; the records of an
  // earlier incarnation (all destroyed) are replaced.
  Status ImportRing(const RingId& ring, std::span<const uint8_t> exported);
  // Re-wraps every key under `new_master_key`; no data file changes.
  Status RotateMasterKey(const SecretBytes& new_master_key);

  struct ActiveKey {
    uint32_t version = 0;
    std::shared_ptr<const SecretBytes> key;
  };
  Result<ActiveKey> Active(const RingId& ring) const;
  // NotFound (unknown ring or version) or FailedPrecondition (destroyed version).
  Result<std::shared_ptr<const SecretBytes>> Key(const RingId& ring, uint32_t version) const;
  Result<std::vector<KeyInfo>> Versions(const RingId& ring) const;
  // True if the ring exists and has an ACTIVE version.
  bool IsLive(const RingId& ring) const;
  std::vector<KeyInfo> List() const;
  std::string master_key_fingerprint() const;
  const std::string& path() const;

 private:
  struct Impl;
  explicit Keystore(std::unique_ptr<Impl> impl);
  // Applies `mutate` to a copy of the state, persists it, and only then publishes it.
  // `operation` names the write in fault points.
  template <typename Fn>
  Status Mutate(std::string_view operation, Fn&& mutate);
  Status WriteFile(std::string_view operation, std::span<const uint8_t> bytes);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sealcache::crypto
