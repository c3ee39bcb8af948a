#include "envelope_provider.h"

#include <cstring>
#include <filesystem>

#include "sealcache/crypto/atomic_file.h"
#include "sealcache/crypto/keystore.h"
#include "sealcache/crypto/random.h"

namespace sealcache::crypto::internal {
namespace {

constexpr char kEnvelopeMagic[8] = {'S', 'C', 'M', 'K', 'E', 'N', 'V', '1'};
constexpr size_t kEnvelopeSize =
    sizeof(kEnvelopeMagic) + kEnvelopeIvSize + kMasterKeySize + kEnvelopeTagSize;
// master-key-<keystore fingerprint of the key inside>.<kind>
constexpr std::string_view kEnvelopePrefix = "master-key-";
constexpr std::string_view kEnvelopeKinds[] = {".pkcs11", ".kmip"};

class EnvelopeProvider final : public MasterKeyProvider {
 public:
  EnvelopeProvider(EnvelopeProviderSpec spec, MasterKeyOptions options)
      : spec_(std::move(spec)), options_(std::move(options)) {}

  Result<LoadedMasterKey> Load() const override {
    SC_RETURN_IF_ERROR(CheckDir());
    std::string fingerprint;
    if (!options_.keystore_path.empty() && std::filesystem::exists(options_.keystore_path)) {
      SC_ASSIGN_OR_RETURN(KeystoreMetadata meta, Keystore::ReadMetadata(options_.keystore_path));
      fingerprint = meta.master_key_fingerprint;
    }
    if (fingerprint.empty()) {  // no keystore yet: a new master key
      if (!options_.create_envelope) {
        return Status::NotFound("no keystore in " + options_.envelope_dir +
                                ": start sealcached once with " + Describe());
      }
      return Create();
    }
    const std::string path = EnvelopePath(fingerprint);
    auto bytes = ReadWholeFile(path);
    if (!bytes.ok()) {
      return Status::NotFound("the keystore is under the master key " + fingerprint +
                              ", and there is no envelope " + path +
                              " for it: was it rotated to another provider?");
    }
    if (bytes->size() != kEnvelopeSize ||
        std::memcmp(bytes->data(), kEnvelopeMagic, sizeof(kEnvelopeMagic)) != 0) {
      return Status::Corruption("the master key envelope " + path + " is damaged");
    }
    SC_ASSIGN_OR_RETURN(auto session, Connect());
    auto key = session->Open(
        {bytes->data() + sizeof(kEnvelopeMagic), bytes->size() - sizeof(kEnvelopeMagic)}, Aad());
    if (!key.ok()) {
      if (key.status().code() != Status::Code::kCorruption) return key.status();
      return Status::Corruption("the master key envelope " + path + " " + key.status().message() +
                                " (another key, another server, or a damaged file)");
    }
    if (key->size() != kMasterKeySize) {
      return Status::Corruption("the master key envelope " + path + " holds no master key");
    }
    LoadedMasterKey loaded;
    loaded.key = std::move(key).value();
    return loaded;
  }

  Result<LoadedMasterKey> Create() const override {
    SC_RETURN_IF_ERROR(CheckDir());
    SC_ASSIGN_OR_RETURN(auto session, Connect());
    LoadedMasterKey loaded;
    SC_ASSIGN_OR_RETURN(loaded.key, RandomSecret(kMasterKeySize));
    SC_ASSIGN_OR_RETURN(std::vector<uint8_t> sealed, session->Seal(loaded.key.span(), Aad()));
    if (sealed.size() != kEnvelopeSize - sizeof(kEnvelopeMagic)) {
      return Status::Internal(session->Name() + " sealed the master key into " +
                              std::to_string(sealed.size()) + " bytes");
    }
    std::vector<uint8_t> file(kEnvelopeMagic, kEnvelopeMagic + sizeof(kEnvelopeMagic));
    file.insert(file.end(), sealed.begin(), sealed.end());
    SC_ASSIGN_OR_RETURN(std::string fingerprint, Keystore::Fingerprint(loaded.key));
    std::error_code ec;
    std::filesystem::create_directories(options_.envelope_dir, ec);
    const std::string path = EnvelopePath(fingerprint);
    SC_RETURN_IF_ERROR(WriteFileAtomically(path, file));
    loaded.warnings.push_back("made a new master key, sealed by " + session->Name() + " in " +
                              path);
    return loaded;
  }

  std::string Describe() const override { return spec_.describe; }

 private:
  Status CheckDir() const {
    if (options_.envelope_dir.empty()) {
      return Status::InvalidArgument("the " + spec_.kind +
                                     " provider keeps the master key sealed in the data "
                                     "directory; this tool has none");
    }
    return Status::Ok();
  }
  Result<std::unique_ptr<KeyServerSession>> Connect() const {
    auto session = spec_.connect();
    if (!session.ok()) return session.status().WithContext("master key " + Describe());
    return session;
  }
  std::string EnvelopePath(const std::string& fingerprint) const {
    return options_.envelope_dir + "/" + std::string(kEnvelopePrefix) + fingerprint + "." +
           spec_.kind;
  }
  // Binds the envelope to its purpose and to the server's key that sealed it.
  std::vector<uint8_t> Aad() const {
    const std::string aad = "sealcache master key envelope v1|" + spec_.aad_binding;
    return {aad.begin(), aad.end()};
  }

  const EnvelopeProviderSpec spec_;
  const MasterKeyOptions options_;
};

}  // namespace

std::unique_ptr<MasterKeyProvider> NewEnvelopeProvider(EnvelopeProviderSpec spec,
                                                       MasterKeyOptions options) {
  return std::make_unique<EnvelopeProvider>(std::move(spec), std::move(options));
}

Status RemoveEnvelopesExcept(const std::string& dir, std::string_view fingerprint) {
  std::error_code ec;
  const std::string keep = std::string(kEnvelopePrefix) + std::string(fingerprint) + ".";
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    bool envelope = false;
    for (std::string_view kind : kEnvelopeKinds) envelope |= name.ends_with(kind);
    if (envelope && name.starts_with(kEnvelopePrefix) && !name.starts_with(keep)) {
      std::filesystem::remove(e.path(), ec);
      if (ec) return Status::IOError("cannot remove " + e.path().string() + ": " + ec.message());
    }
  }
  return SyncDirectory(dir);
}

}  // namespace sealcache::crypto::internal
