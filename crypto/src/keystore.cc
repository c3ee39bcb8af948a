#include "sealcache/crypto/keystore.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "sealcache/crypto/aead.h"
#include "sealcache/crypto/hash.h"
#include "sealcache/crypto/master_key.h"
#include "sealcache/crypto/random.h"
#include "sealcache/encoding.h"

namespace sealcache::crypto {
namespace {

// Layout constants; see crypto/FORMAT.md.
constexpr char kMagic[8] = {'S', 'C', 'K', 'E', 'Y', 'S', 'T', '\0'};
constexpr size_t kFingerprintSize = 16;
constexpr size_t kHeaderSize = 8 + 2 + 2 + 8 + kFingerprintSize + 4;
constexpr size_t kMacSize = 32;
constexpr size_t kWrappedKeySize = Aead::kOverhead + kDataKeySize;
constexpr std::string_view kWrapInfo = "sealcache keystore wrap v1";
constexpr std::string_view kMacInfo = "sealcache keystore mac v1";
constexpr std::string_view kFingerprintInfo = "sealcache keystore fingerprint v1";
constexpr std::string_view kWrapAadPurpose = "sealcache/keywrap/v1";
// An exported ring: magic | record count (u32) | the records as the keystore stores them.
constexpr char kRingExportMagic[8] = {'S', 'C', 'R', 'I', 'N', 'G', 'X', '1'};

struct DerivedKeys {
  std::unique_ptr<KeyWrapper> wrap;
  SecretBytes mac;
  std::array<uint8_t, kFingerprintSize> fingerprint{};
};

Result<DerivedKeys> Derive(const SecretBytes& master) {
  if (master.size() != kMasterKeySize) {
    return Status::InvalidArgument("master key must be 32 bytes");
  }
  DerivedKeys d;
  SC_ASSIGN_OR_RETURN(d.wrap, KeyWrapper::New(master));
  SC_ASSIGN_OR_RETURN(d.mac, HkdfSha256(master, kMacInfo, 32));
  SC_ASSIGN_OR_RETURN(SecretBytes fp, HkdfSha256(master, kFingerprintInfo, kFingerprintSize));
  std::memcpy(d.fingerprint.data(), fp.data(), kFingerprintSize);
  return d;
}

// AAD = purpose | scope | org length | org | version: binds a wrapped key to its identity.
std::vector<uint8_t> WrapAad(const RingId& ring, uint32_t version) {
  std::vector<uint8_t> aad;
  PutBytes(aad, kWrapAadPurpose);
  PutFixed8(aad, static_cast<uint8_t>(ring.scope));
  PutFixed8(aad, static_cast<uint8_t>(ring.org.size()));
  PutBytes(aad, ring.org);
  PutFixed32(aad, version);
  return aad;
}

struct ParsedRecord {
  KeyInfo info;
  std::span<const uint8_t> wrapped;  // empty when destroyed
};

struct ParsedFile {
  uint16_t format_version = 0;
  uint64_t generation = 0;
  std::array<uint8_t, kFingerprintSize> fingerprint{};
  std::vector<ParsedRecord> records;
  std::span<const uint8_t> body;  // everything the MAC covers
  std::span<const uint8_t> mac;
};

Status Truncated(std::string_view where) {
  return Status::Corruption("truncated keystore: file ends inside " + std::string(where));
}

Result<ParsedRecord> ParseRecord(ByteReader& r, size_t index) {
  ParsedRecord rec;
  const std::string where = "key record " + std::to_string(index);
  uint8_t scope = 0, org_len = 0, state = 0;
  uint64_t created = 0, rotated = 0, destroyed = 0;
  uint16_t wrapped_len = 0;
  std::span<const uint8_t> org;
  if (!r.ReadFixed8(&scope) || !r.ReadFixed8(&org_len) || !r.ReadBytes(org_len, &org) ||
      !r.ReadFixed32(&rec.info.version) || !r.ReadFixed8(&state) || !r.ReadFixed64(&created) ||
      !r.ReadFixed64(&rotated) || !r.ReadFixed64(&destroyed) || !r.ReadFixed16(&wrapped_len) ||
      !r.ReadBytes(wrapped_len, &rec.wrapped)) {
    return Truncated(where);
  }
  if (scope != static_cast<uint8_t>(KeyScope::kNode) &&
      scope != static_cast<uint8_t>(KeyScope::kOrg)) {
    return Status::Corruption(where + " has an unknown scope " + std::to_string(scope));
  }
  if (state < static_cast<uint8_t>(KeyState::kActive) ||
      state > static_cast<uint8_t>(KeyState::kDestroyed)) {
    return Status::Corruption(where + " has an unknown state " + std::to_string(state));
  }
  rec.info.ring.scope = static_cast<KeyScope>(scope);
  rec.info.ring.org.assign(org.begin(), org.end());
  if (rec.info.ring.scope == KeyScope::kOrg) {
    Status valid = ValidateOrgId(rec.info.ring.org);
    if (!valid.ok()) return Status::Corruption(where + ": " + valid.message());
  } else if (!rec.info.ring.org.empty()) {
    return Status::Corruption(where + ": a node key has an org");
  }
  rec.info.state = static_cast<KeyState>(state);
  rec.info.created_ms = static_cast<int64_t>(created);
  rec.info.rotated_ms = static_cast<int64_t>(rotated);
  rec.info.destroyed_ms = static_cast<int64_t>(destroyed);
  bool destroyed_state = rec.info.state == KeyState::kDestroyed;
  if (destroyed_state ? wrapped_len != 0 : wrapped_len != kWrappedKeySize) {
    return Status::Corruption(where + " has a wrapped key of the wrong length");
  }
  return rec;
}

Result<ParsedFile> Parse(std::span<const uint8_t> bytes) {
  ParsedFile f;
  if (bytes.size() < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    if (bytes.size() < sizeof(kMagic)) return Truncated("the header");
    return Status::Corruption("not a sealcache keystore (bad magic)");
  }
  if (bytes.size() < kHeaderSize + kMacSize) return Truncated("the header");
  ByteReader r(bytes.first(bytes.size() - kMacSize));
  std::span<const uint8_t> magic, fingerprint;
  uint16_t reserved = 0;
  uint32_t count = 0;
  r.ReadBytes(sizeof(kMagic), &magic);
  r.ReadFixed16(&f.format_version);
  r.ReadFixed16(&reserved);
  r.ReadFixed64(&f.generation);
  r.ReadBytes(kFingerprintSize, &fingerprint);
  r.ReadFixed32(&count);
  std::memcpy(f.fingerprint.data(), fingerprint.data(), kFingerprintSize);
  if (f.format_version != Keystore::kFormatVersion) {
    return Status::Corruption("keystore format version " + std::to_string(f.format_version) +
                              " is not supported (this build reads version " +
                              std::to_string(Keystore::kFormatVersion) + ")");
  }
  // Each record is at least 40 bytes: reject absurd counts before allocating.
  if (count > bytes.size() / 32) return Truncated("the key records");
  f.records.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    SC_ASSIGN_OR_RETURN(ParsedRecord rec, ParseRecord(r, i));
    f.records.push_back(std::move(rec));
  }
  if (r.remaining() != 0) {
    return Status::Corruption("keystore has " + std::to_string(r.remaining()) +
                              " unexpected bytes after its key records");
  }
  f.body = bytes.first(bytes.size() - kMacSize);
  f.mac = bytes.last(kMacSize);
  return f;
}

// Checks fingerprint and MAC. A wrong master key is told apart from a modified file.
Status Authenticate(const ParsedFile& f, const DerivedKeys& keys, const std::string& path) {
  SC_ASSIGN_OR_RETURN(Sha256Digest mac, HmacSha256(keys.mac, f.body));
  if (ConstantTimeEquals(mac, f.mac)) return Status::Ok();
  if (!ConstantTimeEquals(keys.fingerprint, f.fingerprint)) {
    return Status::PermissionDenied("wrong master key for keystore " + path +
                                    ": it was written under the master key "
                                    "with fingerprint " +
                                    ToHex(f.fingerprint) + ", the key given has fingerprint " +
                                    ToHex(keys.fingerprint));
  }
  return Status::Corruption("keystore " + path +
                            " failed authentication: the file was modified or corrupted");
}

struct KeystoreState {
  std::map<RingId, KeyRing> rings;
  // Wrapped material by (ring, version), so unchanged keys are not re-sealed on every write.
  std::map<std::pair<RingId, uint32_t>, std::vector<uint8_t>> wrapped;
  uint64_t generation = 0;
};

}  // namespace

struct Keystore::Impl {
  std::string path;
  int lock_fd = -1;
  KeystoreOptions options;
  DerivedKeys keys;
  mutable std::shared_mutex mu;
  KeystoreState state;  // GUARDED_BY(mu)
  std::mutex write_mu;  // serialises writers so each starts from the latest state

  ~Impl() {
    if (lock_fd >= 0) close(lock_fd);  // releases the flock
  }
};

namespace {

// One key record as the file stores it (crypto/FORMAT.md): metadata and, unless destroyed,
// the wrapped material.
Status PutRecord(std::vector<uint8_t>& out, const KeyInfo& info, const KeystoreState& state) {
  PutFixed8(out, static_cast<uint8_t>(info.ring.scope));
  PutFixed8(out, static_cast<uint8_t>(info.ring.org.size()));
  PutBytes(out, info.ring.org);
  PutFixed32(out, info.version);
  PutFixed8(out, static_cast<uint8_t>(info.state));
  PutFixed64(out, static_cast<uint64_t>(info.created_ms));
  PutFixed64(out, static_cast<uint64_t>(info.rotated_ms));
  PutFixed64(out, static_cast<uint64_t>(info.destroyed_ms));
  if (info.state == KeyState::kDestroyed) {
    PutFixed16(out, 0);
    return Status::Ok();
  }
  auto it = state.wrapped.find({info.ring, info.version});
  if (it == state.wrapped.end() || it->second.size() != kWrappedKeySize) {
    return Status::Internal("keystore lost the wrapped form of " + info.ring.ToString() +
                            " version " + std::to_string(info.version));
  }
  PutFixed16(out, static_cast<uint16_t>(kWrappedKeySize));
  PutBytes(out, it->second);
  return Status::Ok();
}

Result<std::vector<uint8_t>> Serialize(const KeystoreState& state, const DerivedKeys& keys) {
  std::vector<KeyInfo> infos;
  for (const auto& [id, ring] : state.rings) {
    for (KeyInfo& info : ring.Versions()) infos.push_back(std::move(info));
  }
  std::vector<uint8_t> out;
  PutBytes(out, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(kMagic), 8));
  PutFixed16(out, Keystore::kFormatVersion);
  PutFixed16(out, 0);
  PutFixed64(out, state.generation);
  PutBytes(out, keys.fingerprint);
  PutFixed32(out, static_cast<uint32_t>(infos.size()));
  for (const KeyInfo& info : infos) SC_RETURN_IF_ERROR(PutRecord(out, info, state));
  SC_ASSIGN_OR_RETURN(Sha256Digest mac, HmacSha256(keys.mac, out));
  PutBytes(out, mac);
  return out;
}

Status LockFile(const std::string& path, int* fd_out) {
  const std::string lock_path = path + ".lock";
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::IOError("cannot open " + lock_path + ": " + std::strerror(errno));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return Status::FailedPrecondition(
        "keystore " + path + " is in use by another process (lock held on " + lock_path + ")");
  }
  *fd_out = fd;
  return Status::Ok();
}

// Loads every record of an authenticated file, unwrapping material.
Result<KeystoreState> LoadState(const ParsedFile& f, const DerivedKeys& keys) {
  KeystoreState state;
  state.generation = f.generation;
  for (const ParsedRecord& rec : f.records) {
    const RingId& id = rec.info.ring;
    auto [it, inserted] = state.rings.try_emplace(id, KeyRing(id));
    std::shared_ptr<const SecretBytes> material;
    if (rec.info.state != KeyState::kDestroyed) {
      auto key = keys.wrap->Unwrap(id, rec.info.version, rec.wrapped);
      if (!key.ok()) return key.status();
      material = std::make_shared<const SecretBytes>(std::move(key).value());
      state.wrapped[{id, rec.info.version}].assign(rec.wrapped.begin(), rec.wrapped.end());
    }
    SC_RETURN_IF_ERROR(it->second.Restore(rec.info, std::move(material)));
  }
  for (const auto& [id, ring] : state.rings) {
    bool any_live = false;
    for (const KeyInfo& info : ring.Versions()) any_live |= info.state != KeyState::kDestroyed;
    if (any_live && !ring.has_active()) {
      return Status::Corruption(id.ToString() + " has live key versions but none is ACTIVE");
    }
  }
  return state;
}

}  // namespace

KeyWrapper::KeyWrapper(std::unique_ptr<Aead> aead) : aead_(std::move(aead)) {}
KeyWrapper::~KeyWrapper() = default;

Result<std::unique_ptr<KeyWrapper>> KeyWrapper::New(const SecretBytes& master_key) {
  if (master_key.size() != kMasterKeySize) {
    return Status::InvalidArgument("master key must be 32 bytes");
  }
  SC_ASSIGN_OR_RETURN(SecretBytes wrap_key, HkdfSha256(master_key, kWrapInfo, Aead::kKeySize));
  SC_ASSIGN_OR_RETURN(auto aead, Aead::New(wrap_key));
  return std::unique_ptr<KeyWrapper>(new KeyWrapper(std::move(aead)));
}

Result<std::vector<uint8_t>> KeyWrapper::Wrap(const RingId& ring, uint32_t version,
                                              const SecretBytes& key) const {
  return aead_->Seal(key.span(), WrapAad(ring, version));
}

Result<SecretBytes> KeyWrapper::Unwrap(const RingId& ring, uint32_t version,
                                       std::span<const uint8_t> wrapped) const {
  auto key = aead_->OpenSecret(wrapped, WrapAad(ring, version));
  if (!key.ok()) {
    return Status::Corruption("cannot unwrap " + ring.ToString() + " version " +
                              std::to_string(version) + ": " + key.status().message());
  }
  if (key->size() != kDataKeySize) {
    return Status::Corruption("wrapped key of " + ring.ToString() + " has the wrong length");
  }
  return key;
}

Keystore::Keystore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Keystore::~Keystore() = default;

Result<std::unique_ptr<Keystore>> Keystore::Open(const std::string& path,
                                                 const SecretBytes& master_key,
                                                 KeystoreOptions options) {
  if (options.clock == nullptr) return Status::InvalidArgument("KeystoreOptions.clock is null");
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->options = std::move(options);
  SC_ASSIGN_OR_RETURN(impl->keys, Derive(master_key));
  if (!impl->options.read_only) SC_RETURN_IF_ERROR(LockFile(path, &impl->lock_fd));

  auto bytes = ReadWholeFile(path);
  if (!bytes.ok()) {
    if (!bytes.status().IsNotFound() || !impl->options.create_if_missing ||
        impl->options.read_only) {
      return bytes.status();
    }
    // A new, empty keystore is written at once so the master key is bound to this
    // directory from the first start.
    std::unique_ptr<Keystore> ks(new Keystore(std::move(impl)));
    SC_RETURN_IF_ERROR(ks->Mutate(kKeystoreInit, [](KeystoreState&) { return Status::Ok(); }));
    return ks;
  }
  SC_ASSIGN_OR_RETURN(ParsedFile parsed, Parse(*bytes));
  SC_RETURN_IF_ERROR(Authenticate(parsed, impl->keys, path));
  SC_ASSIGN_OR_RETURN(impl->state, LoadState(parsed, impl->keys));
  return std::unique_ptr<Keystore>(new Keystore(std::move(impl)));
}

Result<KeystoreMetadata> Keystore::ReadMetadata(const std::string& path) {
  SC_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadWholeFile(path));
  SC_ASSIGN_OR_RETURN(ParsedFile parsed, Parse(bytes));
  KeystoreMetadata meta;
  meta.format_version = parsed.format_version;
  meta.generation = parsed.generation;
  meta.master_key_fingerprint = ToHex(parsed.fingerprint);
  for (const ParsedRecord& rec : parsed.records) meta.keys.push_back(rec.info);
  return meta;
}

Status Keystore::Verify(const std::string& path, const SecretBytes& master_key) {
  SC_ASSIGN_OR_RETURN(DerivedKeys keys, Derive(master_key));
  SC_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadWholeFile(path));
  SC_ASSIGN_OR_RETURN(ParsedFile parsed, Parse(bytes));
  SC_RETURN_IF_ERROR(Authenticate(parsed, keys, path));
  return LoadState(parsed, keys).status();
}

Result<std::string> Keystore::Fingerprint(const SecretBytes& master_key) {
  SC_ASSIGN_OR_RETURN(DerivedKeys keys, Derive(master_key));
  return ToHex(keys.fingerprint);
}

std::string KeystoreFaultPoint(std::string_view operation, std::string_view step) {
  return "keystore." + std::string(operation) + "." + std::string(step);
}

Status Keystore::WriteFile(std::string_view operation, std::span<const uint8_t> bytes) {
  FaultHook hook;
  if (impl_->options.fault_hook) {
    hook = [&](std::string_view step) {
      return impl_->options.fault_hook(KeystoreFaultPoint(operation, step));
    };
  }
  return WriteFileAtomically(impl_->path, bytes, hook);
}

template <typename Fn>
Status Keystore::Mutate(std::string_view operation, Fn&& mutate) {
  if (impl_->options.read_only) {
    return Status::FailedPrecondition("keystore " + impl_->path + " is open read-only");
  }
  std::lock_guard<std::mutex> write_lock(impl_->write_mu);
  KeystoreState next;
  {
    std::shared_lock<std::shared_mutex> lock(impl_->mu);
    next = impl_->state;
  }
  SC_RETURN_IF_ERROR(mutate(next));
  // Drop wrapped forms of destroyed versions; wrap new versions.
  for (auto it = next.wrapped.begin(); it != next.wrapped.end();) {
    auto ring = next.rings.find(it->first.first);
    bool live = ring != next.rings.end() && ring->second.Key(it->first.second).ok();
    it = live ? std::next(it) : next.wrapped.erase(it);
  }
  for (const auto& [id, ring] : next.rings) {
    for (const KeyInfo& info : ring.Versions()) {
      if (info.state == KeyState::kDestroyed || next.wrapped.count({id, info.version})) continue;
      SC_ASSIGN_OR_RETURN(auto material, ring.Key(info.version));
      SC_ASSIGN_OR_RETURN(auto blob, impl_->keys.wrap->Wrap(id, info.version, *material));
      next.wrapped[{id, info.version}] = std::move(blob);
    }
  }
  next.generation++;
  SC_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, Serialize(next, impl_->keys));
  SC_RETURN_IF_ERROR(WriteFile(operation, bytes));
  std::unique_lock<std::shared_mutex> lock(impl_->mu);
  impl_->state = std::move(next);
  return Status::Ok();
}

Result<uint32_t> Keystore::CreateRing(const RingId& ring) {
  if (ring.scope == KeyScope::kOrg) SC_RETURN_IF_ERROR(ValidateOrgId(ring.org));
  if (ring.scope == KeyScope::kNode && !ring.org.empty()) {
    return Status::InvalidArgument("the node key ring has no org");
  }
  uint32_t version = 0;
  SC_RETURN_IF_ERROR(Mutate(kKeystoreCreateRing, [&](KeystoreState& s) -> Status {
    auto [it, inserted] = s.rings.try_emplace(ring, KeyRing(ring));
    if (it->second.has_active()) {
      return Status::AlreadyExists(ring.ToString() + " already has an active key");
    }
    SC_ASSIGN_OR_RETURN(SecretBytes material, RandomSecret(kDataKeySize));
    SC_ASSIGN_OR_RETURN(version,
                        it->second.Rotate(std::move(material), impl_->options.clock->NowMillis()));
    return Status::Ok();
  }));
  return version;
}

namespace {
Result<KeyRing*> FindRing(std::map<RingId, KeyRing>& rings, const RingId& ring) {
  auto it = rings.find(ring);
  if (it == rings.end()) return Status::NotFound("unknown " + ring.ToString());
  return &it->second;
}
}  // namespace

Result<uint32_t> Keystore::Rotate(const RingId& ring) {
  uint32_t version = 0;
  SC_RETURN_IF_ERROR(Mutate(kKeystoreRotate, [&](KeystoreState& s) -> Status {
    SC_ASSIGN_OR_RETURN(KeyRing * r, FindRing(s.rings, ring));
    if (!r->has_active()) {
      return Status::FailedPrecondition(ring.ToString() + " was dropped; create it again");
    }
    SC_ASSIGN_OR_RETURN(SecretBytes material, RandomSecret(kDataKeySize));
    SC_ASSIGN_OR_RETURN(version, r->Rotate(std::move(material), impl_->options.clock->NowMillis()));
    return Status::Ok();
  }));
  return version;
}

Status Keystore::Destroy(const RingId& ring, uint32_t version) {
  return Mutate(kKeystoreDestroy, [&](KeystoreState& s) -> Status {
    SC_ASSIGN_OR_RETURN(KeyRing * r, FindRing(s.rings, ring));
    return r->Destroy(version, impl_->options.clock->NowMillis());
  });
}

Status Keystore::DestroyRing(const RingId& ring) {
  return Mutate(kKeystoreDestroyRing, [&](KeystoreState& s) -> Status {
    SC_ASSIGN_OR_RETURN(KeyRing * r, FindRing(s.rings, ring));
    r->DestroyAll(impl_->options.clock->NowMillis());
    return Status::Ok();
  });
}

Status Keystore::RotateMasterKey(const SecretBytes& new_master_key) {
  if (impl_->options.read_only) {
    return Status::FailedPrecondition("keystore " + impl_->path + " is open read-only");
  }
  SC_ASSIGN_OR_RETURN(DerivedKeys new_keys, Derive(new_master_key));
  std::lock_guard<std::mutex> write_lock(impl_->write_mu);
  KeystoreState next;
  {
    std::shared_lock<std::shared_mutex> lock(impl_->mu);
    next = impl_->state;
  }
  next.wrapped.clear();
  for (const auto& [id, ring] : next.rings) {
    for (const KeyInfo& info : ring.Versions()) {
      if (info.state == KeyState::kDestroyed) continue;
      SC_ASSIGN_OR_RETURN(auto material, ring.Key(info.version));
      SC_ASSIGN_OR_RETURN(auto blob, new_keys.wrap->Wrap(id, info.version, *material));
      next.wrapped[{id, info.version}] = std::move(blob);
    }
  }
  next.generation++;
  SC_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, Serialize(next, new_keys));
  SC_RETURN_IF_ERROR(WriteFile(kKeystoreRotateMasterKey, bytes));
  std::unique_lock<std::shared_mutex> lock(impl_->mu);
  impl_->state = std::move(next);
  impl_->keys = std::move(new_keys);
  return Status::Ok();
}

Result<Keystore::ActiveKey> Keystore::Active(const RingId& ring) const {
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  auto it = impl_->state.rings.find(ring);
  if (it == impl_->state.rings.end()) return Status::NotFound("unknown " + ring.ToString());
  SC_ASSIGN_OR_RETURN(uint32_t version, it->second.ActiveVersion());
  SC_ASSIGN_OR_RETURN(auto key, it->second.Key(version));
  return ActiveKey{version, std::move(key)};
}

Result<std::shared_ptr<const SecretBytes>> Keystore::Key(const RingId& ring,
                                                         uint32_t version) const {
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  auto it = impl_->state.rings.find(ring);
  if (it == impl_->state.rings.end()) return Status::NotFound("unknown " + ring.ToString());
  return it->second.Key(version);
}

Result<std::vector<KeyInfo>> Keystore::Versions(const RingId& ring) const {
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  auto it = impl_->state.rings.find(ring);
  if (it == impl_->state.rings.end()) return Status::NotFound("unknown " + ring.ToString());
  return it->second.Versions();
}

bool Keystore::IsLive(const RingId& ring) const {
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  auto it = impl_->state.rings.find(ring);
  return it != impl_->state.rings.end() && it->second.has_active();
}

std::vector<KeyInfo> Keystore::List() const {
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  std::vector<KeyInfo> out;
  for (const auto& [id, ring] : impl_->state.rings) {
    for (KeyInfo& info : ring.Versions()) out.push_back(std::move(info));
  }
  return out;
}

Result<std::vector<uint8_t>> Keystore::ExportRing(const RingId& ring) const {
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  auto it = impl_->state.rings.find(ring);
  if (it == impl_->state.rings.end()) return Status::NotFound("unknown " + ring.ToString());
  if (!it->second.has_active()) {
    return Status::FailedPrecondition(ring.ToString() + " was dropped: nothing to export");
  }
  const std::vector<KeyInfo> versions = it->second.Versions();
  std::vector<uint8_t> out;
  PutBytes(out, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(kRingExportMagic), 8));
  PutFixed32(out, static_cast<uint32_t>(versions.size()));
  for (const KeyInfo& info : versions) SC_RETURN_IF_ERROR(PutRecord(out, info, impl_->state));
  return out;
}

Status Keystore::ImportRing(const RingId& ring, std::span<const uint8_t> exported) {
  if (ring.scope != KeyScope::kOrg) return Status::InvalidArgument("only org rings move");
  SC_RETURN_IF_ERROR(ValidateOrgId(ring.org));
  ByteReader r(exported);
  std::span<const uint8_t> magic;
  uint32_t count = 0;
  if (!r.ReadBytes(sizeof(kRingExportMagic), &magic) ||
      std::memcmp(magic.data(), kRingExportMagic, sizeof(kRingExportMagic)) != 0 ||
      !r.ReadFixed32(&count) || count == 0 || count > exported.size() / 32) {
    return Status::InvalidArgument("not an exported key ring");
  }
  // Everything is checked before anything changes: each record is this ring's, and each
  // wrapped key unwraps under this keystore's master key for its ring and version.
  KeyRing imported(ring);
  std::map<uint32_t, std::vector<uint8_t>> wrapped;
  {
    std::shared_lock<std::shared_mutex> lock(impl_->mu);
    for (uint32_t i = 0; i < count; ++i) {
      auto rec = ParseRecord(r, i);
      if (!rec.ok()) return Status::InvalidArgument("exported key ring: " + rec.status().message());
      if (rec->info.ring != ring) {
        return Status::InvalidArgument("exported key ring holds a key of " +
                                       rec->info.ring.ToString() + ", not of " + ring.ToString());
      }
      std::shared_ptr<const SecretBytes> material;
      if (rec->info.state != KeyState::kDestroyed) {
        auto key = impl_->keys.wrap->Unwrap(ring, rec->info.version, rec->wrapped);
        if (!key.ok()) {
          return Status::PermissionDenied(
              "exported key ring does not unwrap under this node's master key (the nodes of a "
              "cluster must share one): " +
              key.status().message());
        }
        material = std::make_shared<const SecretBytes>(std::move(key).value());
        wrapped[rec->info.version].assign(rec->wrapped.begin(), rec->wrapped.end());
      }
      SC_RETURN_IF_ERROR(imported.Restore(rec->info, std::move(material)));
    }
  }
  if (r.remaining() != 0) return Status::InvalidArgument("exported key ring has trailing bytes");
  if (!imported.has_active()) return Status::InvalidArgument("exported key ring has no ACTIVE key");
  return Mutate(kKeystoreImportRing, [&](KeystoreState& s) -> Status {
    auto it = s.rings.find(ring);
    if (it != s.rings.end() && it->second.has_active()) {
      return Status::AlreadyExists(ring.ToString() + " already has an active key here");
    }
    // Versions of an earlier incarnation here are all destroyed: the imported ring replaces
    // their records (their files are gone, and their material could never unwrap the new
    // files' data keys anyway: a wrapped data key is bound to the material it was sealed
    // under).
    std::erase_if(s.wrapped, [&](const auto& w) { return w.first.first == ring; });
    s.rings.insert_or_assign(ring, imported);
    for (auto& [version, blob] : wrapped) s.wrapped[{ring, version}] = std::move(blob);
    return Status::Ok();
  });
}

std::string Keystore::master_key_fingerprint() const {
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  return ToHex(impl_->keys.fingerprint);
}

const std::string& Keystore::path() const { return impl_->path; }

}  // namespace sealcache::crypto
