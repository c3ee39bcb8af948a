#include "kmip_provider.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "envelope_provider.h"
#include "kmip_ttlv.h"
#include "sealcache/crypto/random.h"
#include "uri_text.h"

namespace sealcache::crypto::internal {
namespace {

constexpr int kConnectTimeoutMs = 5'000;
constexpr int kIoTimeoutMs = 10'000;
constexpr size_t kMaxResponseBytes = 64 * 1024;
constexpr size_t kTtlvHeaderSize = 8;  // tag (3) | type (1) | length (4)
constexpr int32_t kProtocolMajor = 1;
constexpr int32_t kProtocolMinor = 4;

// KMIP 1.4 tags (section 9.1.3.1) and enumerations (9.1.3.2) the client uses.
namespace tag {
constexpr uint32_t kAttribute = 0x420008;
constexpr uint32_t kAttributeName = 0x42000A;
constexpr uint32_t kAttributeValue = 0x42000B;
constexpr uint32_t kBatchCount = 0x42000D;
constexpr uint32_t kBatchItem = 0x42000F;
constexpr uint32_t kBlockCipherMode = 0x420011;
constexpr uint32_t kCryptographicAlgorithm = 0x420028;
constexpr uint32_t kCryptographicParameters = 0x42002B;
constexpr uint32_t kIvCounterNonce = 0x42003D;
constexpr uint32_t kOperation = 0x42005C;
constexpr uint32_t kProtocolVersion = 0x420069;
constexpr uint32_t kProtocolVersionMajor = 0x42006A;
constexpr uint32_t kProtocolVersionMinor = 0x42006B;
constexpr uint32_t kRequestHeader = 0x420077;
constexpr uint32_t kRequestMessage = 0x420078;
constexpr uint32_t kRequestPayload = 0x420079;
constexpr uint32_t kResponseMessage = 0x42007B;
constexpr uint32_t kResponsePayload = 0x42007C;
constexpr uint32_t kResultMessage = 0x42007D;
constexpr uint32_t kResultReason = 0x42007E;
constexpr uint32_t kResultStatus = 0x42007F;
constexpr uint32_t kUniqueIdentifier = 0x420094;
constexpr uint32_t kData = 0x4200C2;
constexpr uint32_t kTagLength = 0x4200CE;
constexpr uint32_t kAuthenticatedEncryptionAdditionalData = 0x4200FE;
constexpr uint32_t kAuthenticatedEncryptionTag = 0x4200FF;
}  // namespace tag

enum Operation : uint32_t { kGetAttributes = 0x0B, kEncrypt = 0x1F, kDecrypt = 0x20 };
constexpr uint32_t kResultSuccess = 0;
constexpr uint32_t kReasonItemNotFound = 0x01;
constexpr uint32_t kReasonAuthenticationNotSuccessful = 0x03;
constexpr uint32_t kReasonPermissionDenied = 0x0C;
constexpr uint32_t kBlockCipherModeGcm = 0x09;
constexpr uint32_t kAlgorithmAes = 0x03;
constexpr uint32_t kObjectTypeSymmetricKey = 0x02;
constexpr uint32_t kStateActive = 0x02;
constexpr int32_t kMasterKeyBits = 256;

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

// The PEM file holding this client's private key must be private to its owner, like a
// file: master key.
Status CheckKeyFileMode(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return Status::NotFound("cannot read the KMIP client key " + path + ": " +
                            std::strerror(errno));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return Status::PermissionDenied("the KMIP client key " + path +
                                    " is readable or writable by group or others; chmod 600 it");
  }
  return Status::Ok();
}

// A blocking TCP socket to host:port, connected within kConnectTimeoutMs, with I/O timeouts.
Result<int> ConnectTcp(const std::string& host, uint16_t port, const std::string& where) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return Status::Unavailable("cannot resolve the KMIP server " + where + ": " + gai_strerror(rc));
  }
  std::string last_error = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = poll(&p, 1, kConnectTimeoutMs);
      if (rc == 0) {
        errno = ETIMEDOUT;
        rc = -1;
      } else if (rc > 0) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        errno = err;
        rc = err == 0 ? 0 : -1;
      }
    }
    if (rc == 0) {
      freeaddrinfo(found);
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      timeval tv{kIoTimeoutMs / 1000, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      return fd;
    }
    last_error = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(found);
  return Status::Unavailable("cannot reach the KMIP server " + where + ": " + last_error);
}

bool IsIpAddress(const std::string& host) {
  in6_addr buf{};
  return inet_pton(AF_INET, host.c_str(), &buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), &buf) == 1;
}

// One mutual-TLS connection to the KMIP server, with the key checked to be an active
// AES-256 symmetric key. Each Load or Create of the provider opens its own: the provider is
// used at start and at a rotation, never per request.
class KmipSession final : public KeyServerSession {
 public:
  static Result<std::unique_ptr<KmipSession>> Connect(const KmipUri& uri) {
    auto s = std::unique_ptr<KmipSession>(new KmipSession(uri));
    SC_RETURN_IF_ERROR(s->Handshake());
    SC_RETURN_IF_ERROR(s->CheckKey());
    return s;
  }
  ~KmipSession() override {
    if (ssl_ != nullptr) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
    }
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
  }

  Result<std::vector<uint8_t>> Seal(std::span<const uint8_t> plain,
                                    std::span<const uint8_t> aad) override {
    std::vector<uint8_t> iv(kEnvelopeIvSize);
    SC_RETURN_IF_ERROR(RandomFill(iv));
    std::vector<kmip::Item> payload = {
        kmip::Item::Text(tag::kUniqueIdentifier, uri_.key_id),
        GcmParameters(),
        kmip::Item::Bytes(tag::kData, plain),
        kmip::Item::Bytes(tag::kIvCounterNonce, iv),
        kmip::Item::Bytes(tag::kAuthenticatedEncryptionAdditionalData, aad),
    };
    SC_ASSIGN_OR_RETURN(kmip::Item reply, Call(kEncrypt, std::move(payload), "encrypt"));
    const kmip::Item* data = reply.Find(tag::kData);
    const kmip::Item* mac = reply.Find(tag::kAuthenticatedEncryptionTag);
    const kmip::Item* server_iv = reply.Find(tag::kIvCounterNonce);
    if (data == nullptr || mac == nullptr || data->bytes.size() != plain.size() ||
        mac->bytes.size() != kEnvelopeTagSize || (server_iv != nullptr && server_iv->bytes != iv)) {
      return Status::Internal(Name() + " answered Encrypt without the AES-GCM ciphertext and tag");
    }
    std::vector<uint8_t> out = iv;
    out.insert(out.end(), data->bytes.begin(), data->bytes.end());
    out.insert(out.end(), mac->bytes.begin(), mac->bytes.end());
    return out;
  }

  Result<SecretBytes> Open(std::span<const uint8_t> sealed, std::span<const uint8_t> aad) override {
    if (sealed.size() < kEnvelopeIvSize + kEnvelopeTagSize) {
      return Status::Corruption("sealed key is truncated");
    }
    const size_t n = sealed.size() - kEnvelopeIvSize - kEnvelopeTagSize;
    std::vector<kmip::Item> payload = {
        kmip::Item::Text(tag::kUniqueIdentifier, uri_.key_id),
        GcmParameters(),
        kmip::Item::Bytes(tag::kData, sealed.subspan(kEnvelopeIvSize, n)),
        kmip::Item::Bytes(tag::kIvCounterNonce, sealed.first(kEnvelopeIvSize)),
        kmip::Item::Bytes(tag::kAuthenticatedEncryptionAdditionalData, aad),
        kmip::Item::Bytes(tag::kAuthenticatedEncryptionTag, sealed.last(kEnvelopeTagSize)),
    };
    auto reply = Call(kDecrypt, std::move(payload), "decrypt");
    if (!reply.ok()) {
      // The server reports a wrong tag or AAD as a failed operation (PyKMIP: "Operation
      // failed"): every refusal of the operation itself is an authentication failure.
      if (reply.status().code() != Status::Code::kInternal) return reply.status();
      return Status::Corruption("does not authenticate under " + Name() + " (" +
                                reply.status().message() + ")");
    }
    kmip::Item* data = nullptr;
    for (kmip::Item& i : reply->items) {
      if (i.tag == tag::kData) data = &i;
    }
    if (data == nullptr || data->bytes.size() != n) {
      return Status::Corruption("does not authenticate under " + Name());
    }
    SecretBytes out = SecretBytes::CopyFrom(data->bytes);
    OPENSSL_cleanse(data->bytes.data(), data->bytes.size());
    return out;
  }

  std::string Name() const override {
    return "KMIP key '" + uri_.key_id + "' at " + uri_.host + ":" + std::to_string(uri_.port);
  }

 private:
  explicit KmipSession(KmipUri uri) : uri_(std::move(uri)) {}

  static kmip::Item GcmParameters() {
    return kmip::Item::Structure(
        tag::kCryptographicParameters,
        // In the specification's order (KMIP 1.4, 2.1.5), which servers read in.
        {kmip::Item::Enumeration(tag::kBlockCipherMode, kBlockCipherModeGcm),
         kmip::Item::Enumeration(tag::kCryptographicAlgorithm, kAlgorithmAes),
         kmip::Item::Integer(tag::kTagLength, static_cast<int32_t>(kEnvelopeTagSize))});
  }

  Status Handshake() {
    const std::string where = uri_.host + ":" + std::to_string(uri_.port);
    for (const std::string* f : {&uri_.client_cert, &uri_.client_key, &uri_.ca}) {
      if (f->empty()) {
        return Status::InvalidArgument(
            "the KMIP provider needs client-cert=, client-key= and ca= (or sealcached's "
            "--kmip-client-cert, --kmip-client-key and --kmip-ca)");
      }
    }
    SC_RETURN_IF_ERROR(CheckKeyFileMode(uri_.client_key));
    ERR_clear_error();
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr) return Status::Internal("cannot make a TLS context: " + OpenSslError());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx_, uri_.client_cert.c_str()) != 1) {
      return Status::InvalidArgument("cannot use the KMIP client certificate " + uri_.client_cert +
                                     ": " + OpenSslError());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx_, uri_.client_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx_) != 1) {
      // OpenSSL's text names the file's problem, never the key.
      return Status::InvalidArgument("cannot use the KMIP client key " + uri_.client_key + ": " +
                                     OpenSslError());
    }
    if (SSL_CTX_load_verify_locations(ctx_, uri_.ca.c_str(), nullptr) != 1) {
      return Status::InvalidArgument("cannot use the KMIP CA certificate " + uri_.ca + ": " +
                                     OpenSslError());
    }
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    SC_ASSIGN_OR_RETURN(fd_, ConnectTcp(uri_.host, uri_.port, where));
    ssl_ = SSL_new(ctx_);
    if (ssl_ == nullptr) return Status::Internal("cannot make a TLS session: " + OpenSslError());
    const std::string& name = uri_.server_name.empty() ? uri_.host : uri_.server_name;
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    if (IsIpAddress(name)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
      SSL_set_tlsext_host_name(ssl_, name.c_str());
    }
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) {
      const long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) {
        return Status::PermissionDenied("the certificate of the KMIP server " + where +
                                        " was refused: " + X509_verify_cert_error_string(verify));
      }
      const std::string why = OpenSslError();
      // An alert from the server during the handshake: it refused this client's certificate.
      if (why.find("alert") != std::string::npos) {
        return Status::PermissionDenied("the KMIP server " + where +
                                        " refused this client's certificate (" + why + ")");
      }
      return Status::Unavailable("TLS with the KMIP server " + where + " failed: " + why);
    }
    return Status::Ok();
  }

  // The key must exist, be ours to use, be an active AES-256 symmetric key.
  Status CheckKey() {
    std::vector<kmip::Item> payload = {kmip::Item::Text(tag::kUniqueIdentifier, uri_.key_id)};
    for (const char* a :
         {"Object Type", "Cryptographic Algorithm", "Cryptographic Length", "State"}) {
      payload.push_back(kmip::Item::Text(tag::kAttributeName, a));
    }
    SC_ASSIGN_OR_RETURN(kmip::Item reply,
                        Call(kGetAttributes, std::move(payload), "read the key's attributes"));
    int64_t type = -1, algorithm = -1, bits = -1, state = -1;
    for (const kmip::Item& a : reply.items) {
      if (a.tag != tag::kAttribute) continue;
      const kmip::Item* name = a.Find(tag::kAttributeName);
      const kmip::Item* value = a.Find(tag::kAttributeValue);
      if (name == nullptr || value == nullptr) continue;
      const std::string n(name->bytes.begin(), name->bytes.end());
      if (n == "Object Type") type = value->number;
      if (n == "Cryptographic Algorithm") algorithm = value->number;
      if (n == "Cryptographic Length") bits = value->number;
      if (n == "State") state = value->number;
    }
    if (type != kObjectTypeSymmetricKey || algorithm != kAlgorithmAes || bits != kMasterKeyBits) {
      return Status::InvalidArgument(Name() + " is not an AES-256 key (wrong type of key)");
    }
    if (state != kStateActive) {
      return Status::FailedPrecondition(Name() + " is not active (activate it in the KMS)");
    }
    return Status::Ok();
  }

  // One request of one batch item; the reply's payload, or the failure the server gave.
  // Transport failures are Unavailable; a refused operation is Internal here, mapped by the
  // caller (NotFound, PermissionDenied and authentication reasons are mapped here).
  Result<kmip::Item> Call(uint32_t operation, std::vector<kmip::Item> payload,
                          const std::string& what) {
    using kmip::Item;
    const Item request = Item::Structure(
        tag::kRequestMessage,
        {Item::Structure(
             tag::kRequestHeader,
             {Item::Structure(tag::kProtocolVersion,
                              {Item::Integer(tag::kProtocolVersionMajor, kProtocolMajor),
                               Item::Integer(tag::kProtocolVersionMinor, kProtocolMinor)}),
              Item::Integer(tag::kBatchCount, 1)}),
         Item::Structure(tag::kBatchItem,
                         {Item::Enumeration(tag::kOperation, operation),
                          Item::Structure(tag::kRequestPayload, std::move(payload))})});
    std::vector<uint8_t> bytes = kmip::Encode(request);
    SC_RETURN_IF_ERROR(Write(bytes));
    OPENSSL_cleanse(bytes.data(), bytes.size());
    SC_ASSIGN_OR_RETURN(std::vector<uint8_t> answer, ReadMessage());
    auto decoded = kmip::Decode(answer);
    OPENSSL_cleanse(answer.data(), answer.size());
    if (!decoded.ok() || decoded->tag != tag::kResponseMessage) {
      return Status::Unavailable(Name() + " answered " + what + " with a malformed message");
    }
    const Item* item = decoded->Find(tag::kBatchItem);
    const Item* result = item == nullptr ? nullptr : item->Find(tag::kResultStatus);
    if (result == nullptr) {
      return Status::Unavailable(Name() + " answered " + what + " without a result");
    }
    if (result->number != kResultSuccess) {
      const Item* reason = item->Find(tag::kResultReason);
      const Item* message = item->Find(tag::kResultMessage);
      const std::string text =
          message == nullptr ? "" : std::string(message->bytes.begin(), message->bytes.end());
      const int64_t r = reason == nullptr ? 0 : reason->number;
      const std::string says = "cannot " + what + " with " + Name() + ": " +
                               (text.empty() ? "reason " + std::to_string(r) : text);
      if (r == kReasonItemNotFound) return Status::NotFound(says);
      if (r == kReasonPermissionDenied || r == kReasonAuthenticationNotSuccessful) {
        return Status::PermissionDenied(says);
      }
      return Status::Internal(says);
    }
    const Item* out = item->Find(tag::kResponsePayload);
    if (out == nullptr) {
      return Status::Unavailable(Name() + " answered " + what + " without a payload");
    }
    return *out;
  }

  Status Write(std::span<const uint8_t> bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const int n = SSL_write(ssl_, bytes.data() + done, static_cast<int>(bytes.size() - done));
      if (n <= 0) return Status::Unavailable("lost the connection to " + Name());
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Status ReadExactly(std::span<uint8_t> out) {
    size_t done = 0;
    while (done < out.size()) {
      const int n = SSL_read(ssl_, out.data() + done, static_cast<int>(out.size() - done));
      if (n <= 0) return Status::Unavailable("lost the connection to " + Name());
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Result<std::vector<uint8_t>> ReadMessage() {
    std::vector<uint8_t> message(kTtlvHeaderSize);
    SC_RETURN_IF_ERROR(ReadExactly(message));
    const size_t length = static_cast<size_t>(message[4]) << 24 |
                          static_cast<size_t>(message[5]) << 16 |
                          static_cast<size_t>(message[6]) << 8 | message[7];
    if (length > kMaxResponseBytes) {
      return Status::Unavailable(Name() + " sent a " + std::to_string(length) +
                                 "-byte message, more than a KMIP reply of ours can be");
    }
    message.resize(kTtlvHeaderSize + length);
    SC_RETURN_IF_ERROR(ReadExactly(std::span<uint8_t>(message).subspan(kTtlvHeaderSize)));
    return message;
  }

  const KmipUri uri_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

}  // namespace

std::string KmipUri::ToString() const {
  return "kmip://" + host + ":" + std::to_string(port) + "/" + key_id;
}

Result<KmipUri> ParseKmipUri(std::string_view uri, const MasterKeyOptions& options) {
  constexpr std::string_view kScheme = "kmip://";
  if (!uri.starts_with(kScheme)) return Status::InvalidArgument("not a kmip:// URI");
  uri.remove_prefix(kScheme.size());
  const size_t q = uri.find('?');
  std::string_view query = q == std::string_view::npos ? "" : uri.substr(q + 1);
  uri = uri.substr(0, q);
  const size_t slash = uri.find('/');
  if (slash == std::string_view::npos || slash + 1 == uri.size()) {
    return Status::InvalidArgument("kmip URI: expected kmip://HOST:PORT/KEY_ID");
  }
  const std::string_view authority = uri.substr(0, slash);
  KmipUri out;
  SC_ASSIGN_OR_RETURN(out.key_id, PercentDecode(uri.substr(slash + 1), "kmip URI"));
  const size_t colon = authority.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument("kmip URI: expected HOST:PORT (KMIP's port is 5696)");
  }
  std::string_view host = authority.substr(0, colon);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  out.host = std::string(host);
  const std::string_view port = authority.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    return Status::InvalidArgument("kmip URI: bad port '" + std::string(port) + "'");
  }
  out.port = static_cast<uint16_t>(value);
  out.client_cert = options.kmip_client_cert;
  out.client_key = options.kmip_client_key;
  out.ca = options.kmip_ca;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view attr = query.substr(0, amp);
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
    const size_t eq = attr.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument("kmip URI: query attribute without a value");
    }
    const std::string_view name = attr.substr(0, eq);
    SC_ASSIGN_OR_RETURN(std::string v, PercentDecode(attr.substr(eq + 1), "kmip URI"));
    if (name == "client-cert") {
      out.client_cert = v;
    } else if (name == "client-key") {
      out.client_key = v;
    } else if (name == "ca") {
      out.ca = v;
    } else if (name == "server-name") {
      out.server_name = v;
    } else {
      return Status::InvalidArgument("kmip URI: unknown query attribute " + std::string(name));
    }
  }
  return out;
}

Result<std::unique_ptr<MasterKeyProvider>> NewKmipProvider(const KmipUri& uri,
                                                           const MasterKeyOptions& options) {
  EnvelopeProviderSpec spec;
  spec.describe = uri.ToString();
  spec.kind = "kmip";
  spec.aad_binding = "kmip|" + uri.key_id;
  spec.connect = [uri]() -> Result<std::unique_ptr<KeyServerSession>> {
    SC_ASSIGN_OR_RETURN(auto session, KmipSession::Connect(uri));
    return std::unique_ptr<KeyServerSession>(std::move(session));
  };
  return NewEnvelopeProvider(std::move(spec), options);
}

}  // namespace sealcache::crypto::internal
