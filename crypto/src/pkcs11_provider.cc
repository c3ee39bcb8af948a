#include "pkcs11_provider.h"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <p11-kit/pkcs11.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "envelope_provider.h"
#include "sealcache/crypto/random.h"
#include "uri_text.h"

namespace sealcache::crypto::internal {
namespace {

constexpr size_t kIvSize = kEnvelopeIvSize;
constexpr size_t kTagSize = kEnvelopeTagSize;
constexpr size_t kTokenLabelSize = 32;

std::string RvName(CK_RV rv) {
  switch (rv) {
    case CKR_PIN_INCORRECT:
      return "CKR_PIN_INCORRECT";
    case CKR_PIN_LOCKED:
      return "CKR_PIN_LOCKED";
    case CKR_KEY_TYPE_INCONSISTENT:
      return "CKR_KEY_TYPE_INCONSISTENT";
    case CKR_MECHANISM_INVALID:
      return "CKR_MECHANISM_INVALID";
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
      return "CKR_KEY_FUNCTION_NOT_PERMITTED";
    case CKR_TOKEN_NOT_PRESENT:
      return "CKR_TOKEN_NOT_PRESENT";
    case CKR_DEVICE_REMOVED:
      return "CKR_DEVICE_REMOVED";
    case CKR_GENERAL_ERROR:
      return "CKR_GENERAL_ERROR";
    case CKR_ENCRYPTED_DATA_INVALID:
      return "CKR_ENCRYPTED_DATA_INVALID";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "CKR 0x%lx", static_cast<unsigned long>(rv));
      return buf;
    }
  }
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) break;
    s.remove_prefix(at + 1);
  }
  return out;
}

std::string TrimLabel(const unsigned char* label) {
  std::string s(reinterpret_cast<const char*>(label), kTokenLabelSize);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

// One loaded module, initialised, with a logged-in session on the token and the key found.
// Everything is undone in the destructor.
class Pkcs11Session final : public KeyServerSession {
 public:
  static Result<std::unique_ptr<Pkcs11Session>> Connect(const Pkcs11Uri& uri) {
    auto s = std::unique_ptr<Pkcs11Session>(new Pkcs11Session(uri));
    SC_RETURN_IF_ERROR(s->Load());
    return s;
  }
  ~Pkcs11Session() override {
    if (session_open_) f_->C_CloseSession(session_);
    if (initialized_) f_->C_Finalize(nullptr);
    if (handle_ != nullptr) dlclose(handle_);
  }

  // AES-256-GCM in the token: iv | ciphertext | tag.
  Result<std::vector<uint8_t>> Seal(std::span<const uint8_t> plain,
                                    std::span<const uint8_t> aad) override {
    std::vector<uint8_t> out(kIvSize + plain.size() + kTagSize);
    SC_RETURN_IF_ERROR(RandomFill(std::span<uint8_t>(out.data(), kIvSize)));
    CK_GCM_PARAMS gcm = Params(out.data(), aad);
    CK_MECHANISM mech = Mechanism(&gcm);
    CK_RV rv = f_->C_EncryptInit(session_, &mech, key_);
    if (rv != CKR_OK) return Failure("start AES-GCM encryption", rv);
    CK_ULONG len = plain.size() + kTagSize;
    rv = f_->C_Encrypt(session_, const_cast<CK_BYTE_PTR>(plain.data()), plain.size(),
                       out.data() + kIvSize, &len);
    if (rv != CKR_OK || len != plain.size() + kTagSize) return Failure("encrypt", rv);
    return out;
  }

  Result<SecretBytes> Open(std::span<const uint8_t> sealed, std::span<const uint8_t> aad) override {
    if (sealed.size() < kIvSize + kTagSize) return Status::Corruption("sealed key is truncated");
    std::vector<uint8_t> iv(sealed.begin(), sealed.begin() + kIvSize);
    CK_GCM_PARAMS gcm = Params(iv.data(), aad);
    CK_MECHANISM mech = Mechanism(&gcm);
    CK_RV rv = f_->C_DecryptInit(session_, &mech, key_);
    if (rv != CKR_OK) return Failure("start AES-GCM decryption", rv);
    const size_t n = sealed.size() - kIvSize - kTagSize;
    SecretBytes out(n + kTagSize);  // some modules want room for the tag
    CK_ULONG len = out.size();
    rv = f_->C_Decrypt(session_, const_cast<CK_BYTE_PTR>(sealed.data() + kIvSize),
                       sealed.size() - kIvSize, out.data(), &len);
    // SoftHSM answers a wrong tag or AAD with CKR_GENERAL_ERROR: every failure is one.
    if (rv != CKR_OK || len != n) {
      return Status::Corruption("does not authenticate under " + Name() + " (" + RvName(rv) + ")");
    }
    return SecretBytes::CopyFrom({out.data(), n});
  }

  std::string Name() const override {
    return "PKCS#11 key '" + uri_.object + "' in token '" + uri_.token + "' (" + uri_.module_path +
           ")";
  }

 private:
  explicit Pkcs11Session(Pkcs11Uri uri) : uri_(std::move(uri)) {}

  static CK_MECHANISM Mechanism(CK_GCM_PARAMS* gcm) {
    CK_MECHANISM m;
    m.mechanism = CKM_AES_GCM;
    m.pParameter = gcm;
    m.ulParameterLen = sizeof(*gcm);
    return m;
  }

  CK_GCM_PARAMS Params(uint8_t* iv, std::span<const uint8_t> aad) const {
    CK_GCM_PARAMS gcm{};
    gcm.pIv = iv;
    gcm.ulIvLen = kIvSize;
    gcm.ulIvBits = kIvSize * 8;
    gcm.pAAD = const_cast<CK_BYTE_PTR>(aad.data());
    gcm.ulAADLen = aad.size();
    gcm.ulTagBits = kTagSize * 8;
    return gcm;
  }

  Status Failure(const std::string& what, CK_RV rv) const {
    return Status::IOError("cannot " + what + " with " + Name() + ": " + RvName(rv));
  }

  Result<std::string> ReadPin() const {
    std::string_view src = uri_.pin_source;
    if (src.empty()) {
      return Status::InvalidArgument("the pkcs11 URI needs pin-source=file:PATH or env:VAR");
    }
    if (src.starts_with("env:")) {
      const char* v = std::getenv(std::string(src.substr(4)).c_str());
      if (v == nullptr) {
        return Status::NotFound("PIN environment variable " + std::string(src.substr(4)) +
                                " is not set");
      }
      return std::string(v);
    }
    if (src.starts_with("file:")) src.remove_prefix(5);
    std::ifstream in{std::string(src)};
    if (!in) return Status::NotFound("cannot read the PIN file " + std::string(src));
    std::string pin;
    std::getline(in, pin);
    while (!pin.empty() && (pin.back() == '\r' || pin.back() == '\n')) pin.pop_back();
    return pin;
  }

  Status Load() {
    handle_ = dlopen(uri_.module_path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) {
      return Status::IOError("cannot load the PKCS#11 module " + uri_.module_path + ": " +
                             dlerror());
    }
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle_, "C_GetFunctionList"));
    if (get == nullptr || get(&f_) != CKR_OK || f_ == nullptr) {
      return Status::IOError(uri_.module_path + " is not a PKCS#11 module");
    }
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = f_->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      return Failure("initialise the module", rv);
    }
    initialized_ = rv == CKR_OK;
    CK_ULONG count = 0;
    rv = f_->C_GetSlotList(CK_TRUE, nullptr, &count);
    if (rv != CKR_OK) return Failure("list slots", rv);
    std::vector<CK_SLOT_ID> slots(count);
    rv = f_->C_GetSlotList(CK_TRUE, slots.data(), &count);
    if (rv != CKR_OK) return Failure("list slots", rv);
    bool found = false;
    CK_SLOT_ID slot = 0;
    for (CK_ULONG i = 0; i < count; ++i) {
      CK_TOKEN_INFO info{};
      if (f_->C_GetTokenInfo(slots[i], &info) == CKR_OK && TrimLabel(info.label) == uri_.token) {
        slot = slots[i];
        found = true;
        break;
      }
    }
    if (!found) {
      return Status::NotFound("no PKCS#11 token labelled '" + uri_.token + "' in " +
                              uri_.module_path);
    }
    rv = f_->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &session_);
    if (rv != CKR_OK) return Failure("open a session", rv);
    session_open_ = true;
    SC_ASSIGN_OR_RETURN(std::string pin, ReadPin());
    rv = f_->C_Login(session_, CKU_USER, reinterpret_cast<CK_UTF8CHAR_PTR>(pin.data()), pin.size());
    OPENSSL_cleanse(pin.data(), pin.size());
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_LEN_RANGE) {
      return Status::PermissionDenied("the PIN for token '" + uri_.token +
                                      "' was refused: " + RvName(rv));
    }
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) return Failure("log in", rv);
    return FindKey();
  }

  Result<std::vector<CK_OBJECT_HANDLE>> Find(std::vector<CK_ATTRIBUTE> tmpl) {
    CK_RV rv = f_->C_FindObjectsInit(session_, tmpl.data(), tmpl.size());
    if (rv != CKR_OK) return Failure("search the token", rv);
    std::vector<CK_OBJECT_HANDLE> found(2);
    CK_ULONG n = 0;
    rv = f_->C_FindObjects(session_, found.data(), found.size(), &n);
    f_->C_FindObjectsFinal(session_);
    if (rv != CKR_OK) return Failure("search the token", rv);
    found.resize(n);
    return found;
  }

  Status FindKey() {
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    std::vector<CK_ATTRIBUTE> named;
    auto attribute = [](CK_ATTRIBUTE_TYPE type, const void* value, size_t len) {
      CK_ATTRIBUTE a;
      a.type = type;
      a.pValue = const_cast<void*>(value);
      a.ulValueLen = len;
      return a;
    };
    if (!uri_.object.empty()) {
      named.push_back(attribute(CKA_LABEL, uri_.object.data(), uri_.object.size()));
    }
    if (!uri_.id.empty()) named.push_back(attribute(CKA_ID, uri_.id.data(), uri_.id.size()));
    std::vector<CK_ATTRIBUTE> secret = named;
    secret.push_back(attribute(CKA_CLASS, &cls, sizeof(cls)));
    SC_ASSIGN_OR_RETURN(auto keys, Find(secret));
    if (keys.empty()) {
      SC_ASSIGN_OR_RETURN(auto any, Find(named));
      if (!any.empty()) {
        return Status::InvalidArgument(Name() + " is not a secret key (wrong type of key)");
      }
      return Status::NotFound("no key " + Name());
    }
    if (keys.size() > 1) {
      return Status::InvalidArgument(Name() + " names more than one key; add id= to the URI");
    }
    CK_KEY_TYPE type = 0;
    CK_ATTRIBUTE attr = attribute(CKA_KEY_TYPE, &type, sizeof(type));
    CK_RV rv = f_->C_GetAttributeValue(session_, keys[0], &attr, 1);
    if (rv != CKR_OK) return Failure("read the key type", rv);
    if (type != CKK_AES) {
      return Status::InvalidArgument(Name() + " is not an AES key (wrong type of key)");
    }
    key_ = keys[0];
    return Status::Ok();
  }

  const Pkcs11Uri uri_;
  void* handle_ = nullptr;
  CK_FUNCTION_LIST_PTR f_ = nullptr;
  bool initialized_ = false;
  bool session_open_ = false;
  CK_SESSION_HANDLE session_ = 0;
  CK_OBJECT_HANDLE key_ = 0;
};

}  // namespace

std::string Pkcs11Uri::ToString() const {
  std::string s = "pkcs11:token=" + token;
  if (!object.empty()) s += ";object=" + object;
  if (!id.empty()) {
    s += ";id=";
    static constexpr char kDigits[] = "0123456789abcdef";
    for (uint8_t b : id) s += std::string("%") + kDigits[b >> 4] + kDigits[b & 15];
  }
  s += "?module-path=" + module_path;
  return s;
}

Result<Pkcs11Uri> ParsePkcs11Uri(std::string_view uri) {
  if (!uri.starts_with("pkcs11:")) return Status::InvalidArgument("not a pkcs11: URI");
  uri.remove_prefix(7);
  const size_t q = uri.find('?');
  const std::string_view path = uri.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? "" : uri.substr(q + 1);
  Pkcs11Uri out;
  for (std::string_view attr : Split(path, ';')) {
    const size_t eq = attr.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument("pkcs11 URI: attribute without a value");
    }
    const std::string_view name = attr.substr(0, eq);
    SC_ASSIGN_OR_RETURN(std::string value, PercentDecode(attr.substr(eq + 1), "pkcs11 URI"));
    if (name == "token") {
      out.token = value;
    } else if (name == "object") {
      out.object = value;
    } else if (name == "id") {
      out.id.assign(value.begin(), value.end());
    } else if (name == "type") {
      if (value != "secret-key") {
        return Status::InvalidArgument("pkcs11 URI: the master key is a secret-key, not " + value);
      }
    } else if (name != "manufacturer" && name != "model" && name != "serial" &&
               name != "library-manufacturer" && name != "library-description" &&
               name != "library-version" && name != "slot-id") {
      return Status::InvalidArgument("pkcs11 URI: unknown attribute " + std::string(name));
    }
  }
  for (std::string_view attr : Split(query, '&')) {
    const size_t eq = attr.find('=');
    const std::string_view name = attr.substr(0, eq);
    SC_ASSIGN_OR_RETURN(
        std::string value,
        PercentDecode(eq == std::string_view::npos ? "" : attr.substr(eq + 1), "pkcs11 URI"));
    if (name == "module-path") {
      out.module_path = value;
    } else if (name == "pin-source") {
      out.pin_source = value;
    } else if (name == "pin-value") {
      return Status::InvalidArgument(
          "pkcs11 URI: pin-value is refused (a command line is visible to every user); use "
          "pin-source=file:PATH or pin-source=env:VAR");
    } else if (!name.empty()) {
      return Status::InvalidArgument("pkcs11 URI: unknown query attribute " + std::string(name));
    }
  }
  if (out.token.empty()) return Status::InvalidArgument("pkcs11 URI: token= is required");
  if (out.object.empty() && out.id.empty()) {
    return Status::InvalidArgument("pkcs11 URI: object= or id= is required");
  }
  if (out.module_path.empty()) {
    return Status::InvalidArgument("pkcs11 URI: module-path= is required");
  }
  return out;
}

Result<std::unique_ptr<MasterKeyProvider>> NewPkcs11Provider(const Pkcs11Uri& uri,
                                                             const MasterKeyOptions& options) {
  EnvelopeProviderSpec spec;
  spec.describe = uri.ToString();
  spec.kind = "pkcs11";
  spec.aad_binding = uri.token + "|" + uri.object;
  spec.connect = [uri]() -> Result<std::unique_ptr<KeyServerSession>> {
    SC_ASSIGN_OR_RETURN(auto session, Pkcs11Session::Connect(uri));
    return std::unique_ptr<KeyServerSession>(std::move(session));
  };
  return NewEnvelopeProvider(std::move(spec), options);
}

}  // namespace sealcache::crypto::internal
