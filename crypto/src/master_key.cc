#include "sealcache/crypto/master_key.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "envelope_provider.h"
#include "kmip_provider.h"
#include "pkcs11_provider.h"
#include "sealcache/crypto/random.h"
#include "uri_text.h"

namespace sealcache::crypto {
namespace {

constexpr size_t kHexKeySize = 2 * kMasterKeySize;
// Anything larger than a hex key plus line ending is not a key file.
constexpr size_t kMaxKeyFileSize = kHexKeySize + 2;

// Decodes 64 hex characters into a 32-byte secret.
Result<SecretBytes> DecodeHexKey(const char* hex, size_t n, std::string_view source) {
  if (n != kHexKeySize) {
    return Status::InvalidArgument(std::string(source) +
                                   ": a master key is 32 raw bytes or 64 hex characters");
  }
  SecretBytes key(kMasterKeySize);
  for (size_t i = 0; i < kMasterKeySize; ++i) {
    int hi = internal::HexDigitValue(hex[2 * i]);
    int lo = internal::HexDigitValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument(std::string(source) +
                                     ": master key contains a non-hex character");
    }
    key.data()[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return key;
}

std::string ModeString(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

class FileMasterKeyProvider final : public MasterKeyProvider {
 public:
  explicit FileMasterKeyProvider(std::string path) : path_(std::move(path)) {}

  Result<LoadedMasterKey> Load() const override {
    int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      return Status::IOError("cannot open master key file " + path_ + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      close(fd);
      return Status::InvalidArgument("master key file " + path_ + " is not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
      close(fd);
      return Status::PermissionDenied(
          "master key file " + path_ + " has mode " + ModeString(st.st_mode) +
          " and is accessible by group or others; refusing to use it. Fix with: chmod 600 " +
          path_);
    }
    SecretBytes buf(kMaxKeyFileSize + 1);
    ssize_t n = 0;
    size_t total = 0;
    while (total < buf.size() && (n = read(fd, buf.data() + total, buf.size() - total)) > 0) {
      total += static_cast<size_t>(n);
    }
    int read_errno = errno;
    close(fd);
    if (n < 0) {
      return Status::IOError("cannot read master key file " + path_ + ": " +
                             std::strerror(read_errno));
    }
    LoadedMasterKey loaded;
    if (total == kMasterKeySize) {
      loaded.key = SecretBytes::CopyFrom({buf.data(), kMasterKeySize});
      return loaded;
    }
    size_t len = total;
    while (len > 0 && (buf.data()[len - 1] == '\n' || buf.data()[len - 1] == '\r')) --len;
    SC_ASSIGN_OR_RETURN(loaded.key, DecodeHexKey(reinterpret_cast<const char*>(buf.data()), len,
                                                 "master key file " + path_));
    return loaded;
  }

  std::string Describe() const override { return "file:" + path_; }

 private:
  std::string path_;
};

class EnvMasterKeyProvider final : public MasterKeyProvider {
 public:
  explicit EnvMasterKeyProvider(std::string var) : var_(std::move(var)) {}

  Result<LoadedMasterKey> Load() const override {
    const char* value = std::getenv(var_.c_str());
    if (value == nullptr) {
      return Status::NotFound("environment variable " + var_ + " (master key) is not set");
    }
    LoadedMasterKey loaded;
    SC_ASSIGN_OR_RETURN(loaded.key,
                        DecodeHexKey(value, std::strlen(value), "environment variable " + var_));
    loaded.warnings.push_back(
        "master key read from environment variable " + var_ +
        ": for development only (other processes of this user can read it from "
        "/proc/<pid>/environ); use file:PATH with mode 0600 in production");
    return loaded;
  }

  std::string Describe() const override { return "env:" + var_; }

 private:
  std::string var_;
};

}  // namespace

Result<std::unique_ptr<MasterKeyProvider>> MasterKeyProviderFromSpec(
    std::string_view spec, const MasterKeyOptions& options) {
  // A spec reaches the server's log and the audit trail (a master-key rotation names its
  // provider there): one with a control character, a newline that would start a forged log
  // line for instance, is refused before anything is read, and not repeated in the error.
  for (size_t i = 0; i < spec.size(); ++i) {
    const auto byte = static_cast<unsigned char>(spec[i]);
    if (byte < 0x20 || byte == 0x7f) {
      return Status::InvalidArgument("master key spec has a control character at byte " +
                                     std::to_string(i));
    }
  }
  auto colon = spec.find(':');
  if (colon == std::string_view::npos || colon + 1 == spec.size()) {
    return Status::InvalidArgument(
        "master key spec must be file:PATH or env:VAR (got something without a value)");
  }
  std::string_view kind = spec.substr(0, colon);
  std::string value(spec.substr(colon + 1));
  if (kind == "file") return std::unique_ptr<MasterKeyProvider>(new FileMasterKeyProvider(value));
  if (kind == "env") return std::unique_ptr<MasterKeyProvider>(new EnvMasterKeyProvider(value));
  if (kind == "pkcs11") {
    SC_ASSIGN_OR_RETURN(internal::Pkcs11Uri uri, internal::ParsePkcs11Uri(spec));
    return internal::NewPkcs11Provider(uri, options);
  }
  if (kind == "kmip") {
    SC_ASSIGN_OR_RETURN(internal::KmipUri uri, internal::ParseKmipUri(spec, options));
    return internal::NewKmipProvider(uri, options);
  }
  return Status::InvalidArgument(
      "unknown master key provider '" + std::string(kind) +
      "' (expected file:PATH, env:VAR, pkcs11:URI or kmip://HOST:PORT/KEY_ID)");
}

Status RemoveMasterKeyEnvelopesExcept(const std::string& envelope_dir,
                                      std::string_view fingerprint) {
  return internal::RemoveEnvelopesExcept(envelope_dir, fingerprint);
}

Status CreateMasterKeyFile(const std::string& path) {
  SC_ASSIGN_OR_RETURN(SecretBytes key, RandomSecret(kMasterKeySize));
  SecretBytes hex(kHexKeySize + 1);
  static constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < kMasterKeySize; ++i) {
    hex.data()[2 * i] = static_cast<uint8_t>(kDigits[key.data()[i] >> 4]);
    hex.data()[2 * i + 1] = static_cast<uint8_t>(kDigits[key.data()[i] & 0xf]);
  }
  hex.data()[kHexKeySize] = '\n';
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Status::AlreadyExists("master key file " + path + " exists");
    return Status::IOError("cannot create master key file " + path + ": " + std::strerror(errno));
  }
  bool ok = write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) &&
            fchmod(fd, 0600) == 0 && fsync(fd) == 0;
  int write_errno = errno;
  close(fd);
  if (!ok) {
    unlink(path.c_str());
    return Status::IOError("cannot write master key file " + path + ": " +
                           std::strerror(write_errno));
  }
  return Status::Ok();
}

std::string ToHex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 0xf]);
  }
  return s;
}

Result<std::vector<uint8_t>> ParseHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return Status::InvalidArgument("hex string has an odd length");
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = internal::HexDigitValue(hex[2 * i]);
    int lo = internal::HexDigitValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::InvalidArgument("hex string has a non-hex character");
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

}  // namespace sealcache::crypto
