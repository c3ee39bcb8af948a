#include "sealcache/client/client.h"

#include <openssl/crypto.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <charconv>
#include <utility>  // before asio in C++20

#include "sealcache/encoding.h"
#include "sealcache/server/frame.h"

namespace sealcache::client {
namespace asio = boost::asio;
using asio::ip::tcp;
using server::EncodeFrame;
using server::kFrameHeaderSize;

namespace {

Status NetError(std::string_view what, const boost::system::error_code& ec) {
  return Status::IOError(std::string(what) + ": " + ec.message());
}

// A redirect is followed at most this many times per call (an org moves once per failover).
constexpr int kMaxRedirects = 3;

class AsioClient final : public Client {
 public:
  explicit AsioClient(const ClientOptions& o) : options_(o), socket_(io_) {}
  ~AsioClient() override { OPENSSL_cleanse(hello_token_.data(), hello_token_.size()); }

  void RememberHello(std::string_view token) {
    OPENSSL_cleanse(hello_token_.data(), hello_token_.size());
    hello_token_.assign(token);
  }

  // A Moved answer names the node that serves the org ("HOST:PORT RESP_HOST:PORT"): connect
  // there instead (same TLS options) and say Hello again with the same token.
  Status Redirect(std::string_view where) {
    const std::string_view native = where.substr(0, where.find(' '));
    const size_t colon = native.rfind(':');
    uint32_t port = 0;
    if (colon == std::string_view::npos ||
        std::from_chars(native.data() + colon + 1, native.data() + native.size(), port).ec !=
            std::errc() ||
        port == 0 || port > 65535) {
      return Status::Internal("the server redirected to an unreadable address: " +
                              std::string(native));
    }
    boost::system::error_code ec;
    tls_.reset();
    socket_.close(ec);
    socket_ = tcp::socket(io_);
    pending_.clear();
    options_.host = std::string(native.substr(0, colon));
    options_.port = static_cast<uint16_t>(port);
    SC_RETURN_IF_ERROR(Open());
    if (hello_token_.empty()) return Status::Ok();
    SC_ASSIGN_OR_RETURN(uint64_t id, Send([&](flatbuffers::FlatBufferBuilder& fbb) {
                          auto t = fbb.CreateString(hello_token_);
                          return std::make_pair(protocol::RequestBody::HelloRequest,
                                                protocol::CreateHelloRequest(fbb, t).Union());
                        }));
    SC_ASSIGN_OR_RETURN(ResponseFrame hello, WaitFor(id));
    return hello.status();
  }

  Status Open() {
    boost::system::error_code ec;
    tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(options_.host, std::to_string(options_.port), ec);
    if (ec) return NetError("cannot resolve " + options_.host, ec);
    asio::connect(socket_, endpoints, ec);
    if (ec) {
      return NetError("cannot connect to " + options_.host + ":" + std::to_string(options_.port),
                      ec);
    }
    socket_.set_option(tcp::no_delay(true), ec);
    if (!options_.tls) return Status::Ok();
    ssl_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    ssl_->set_options(asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (options_.tls_verify) {
      ssl_->set_verify_mode(asio::ssl::verify_peer);
      if (options_.tls_ca_file.empty()) {
        ssl_->set_default_verify_paths(ec);
      } else {
        ssl_->load_verify_file(options_.tls_ca_file, ec);
      }
      if (ec) return NetError("cannot load TLS trust anchors", ec);
    } else {
      ssl_->set_verify_mode(asio::ssl::verify_none);
    }
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, *ssl_);
    if (options_.tls_verify)
      tls_->set_verify_callback(asio::ssl::host_name_verification(options_.host));
    SSL_set_tlsext_host_name(tls_->native_handle(), options_.host.c_str());
    tls_->handshake(asio::ssl::stream_base::client, ec);
    if (ec) return NetError("TLS handshake failed", ec);
    return Status::Ok();
  }

  Result<uint64_t> Send(const BodyBuilder& build) override {
    flatbuffers::FlatBufferBuilder fbb(256);
    auto [type, body] = build(fbb);
    const uint64_t id = next_id_++;
    protocol::RequestBuilder rb(fbb);
    rb.add_id(id);
    rb.add_body_type(type);
    rb.add_body(body);
    fbb.Finish(rb.Finish(), server::kFileIdentifier);
    SC_RETURN_IF_ERROR(SendRaw(EncodeFrame({fbb.GetBufferPointer(), fbb.GetSize()})));
    return id;
  }

  Status SendRaw(std::span<const uint8_t> bytes) override {
    boost::system::error_code ec;
    Write(asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec) return NetError("send failed", ec);
    return Status::Ok();
  }

  Result<ResponseFrame> Receive() override {
    if (!pending_.empty()) {
      ResponseFrame f = std::move(pending_.front());
      pending_.erase(pending_.begin());
      return f;
    }
    return ReadFrame();
  }

  Result<ResponseFrame> ReadFrame() {
    boost::system::error_code ec;
    uint8_t header[kFrameHeaderSize];
    Read(asio::buffer(header), ec);
    if (ec) return NetError("connection closed while reading a response", ec);
    const uint32_t n = server::DecodeFrameLength(header);
    if (n > options_.max_frame_bytes) {
      return Status::ResourceExhausted("response frame of " + std::to_string(n) +
                                       " bytes exceeds the client limit");
    }
    std::vector<uint8_t> body(n);
    Read(asio::buffer(body), ec);
    if (ec) return NetError("connection closed inside a response", ec);
    SC_ASSIGN_OR_RETURN(const protocol::Response* root, server::VerifyResponse(body));
    return ResponseFrame(std::move(body), root);
  }

  Result<ResponseFrame> WaitFor(uint64_t id) {
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if (it->id() == id) {
        ResponseFrame f = std::move(*it);
        pending_.erase(it);
        return f;
      }
    }
    for (;;) {
      SC_ASSIGN_OR_RETURN(ResponseFrame f, ReadFrame());
      if (f.id() == id) return f;
      // id 0 answers a frame the server could not parse at all: it belongs to no call.
      if (f.id() == 0) return f;
      pending_.push_back(std::move(f));
    }
  }

  friend class sealcache::client::Client;

 private:
  template <typename Buffers>
  void Write(const Buffers& b, boost::system::error_code& ec) {
    if (options_.timeout_ms > 0) {
      return Bounded(
          [&](auto done) {
            if (tls_) {
              asio::async_write(*tls_, b, done);
            } else {
              asio::async_write(socket_, b, done);
            }
          },
          ec);
    }
    if (tls_) {
      asio::write(*tls_, b, ec);
    } else {
      asio::write(socket_, b, ec);
    }
  }
  template <typename Buffers>
  void Read(const Buffers& b, boost::system::error_code& ec) {
    if (options_.timeout_ms > 0) {
      return Bounded(
          [&](auto done) {
            if (tls_) {
              asio::async_read(*tls_, b, done);
            } else {
              asio::async_read(socket_, b, done);
            }
          },
          ec);
    }
    if (tls_) {
      asio::read(*tls_, b, ec);
    } else {
      asio::read(socket_, b, ec);
    }
  }
  // Runs one asynchronous read or write for at most options_.timeout_ms. On a timeout the
  // connection is closed: a frame may be half sent or half read.
  template <typename Start>
  void Bounded(const Start& start, boost::system::error_code& ec) {
    bool finished = false;
    start([&](const boost::system::error_code& e, size_t) {
      ec = e;
      finished = true;
    });
    io_.restart();
    io_.run_for(std::chrono::milliseconds(options_.timeout_ms));
    if (finished) return;
    boost::system::error_code ignored;
    socket_.close(ignored);  // completes the operation with operation_aborted
    io_.restart();
    io_.run();
    ec = asio::error::timed_out;
  }

  ClientOptions options_;
  asio::io_context io_;
  tcp::socket socket_;
  std::unique_ptr<asio::ssl::context> ssl_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
  uint64_t next_id_ = 1;
  std::string hello_token_;  // said again after a redirect; wiped when replaced or destroyed
};

using FBB = flatbuffers::FlatBufferBuilder;
using Built = std::pair<protocol::RequestBody, flatbuffers::Offset<void>>;

template <typename T>
Built As(protocol::RequestBody type, flatbuffers::Offset<T> off) {
  return {type, off.Union()};
}

Digest DigestFrom(const flatbuffers::Vector<uint8_t>* v) {
  Digest d{};
  if (v != nullptr && v->size() == d.size()) std::copy(v->begin(), v->end(), d.begin());
  return d;
}

// The body of an OK response of the expected type, or the error it carries.
template <typename T>
Result<const T*> BodyOf(const ResponseFrame& f) {
  SC_RETURN_IF_ERROR(f.status());
  const T* body = f->body_as<T>();
  if (body == nullptr) return Status::Internal("response carries an unexpected body type");
  return body;
}

}  // namespace

Status ResponseFrame::status() const {
  const auto* m = root_->message();
  return server::FromWire(root_->status(), m != nullptr ? m->string_view() : "");
}

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  auto c = std::make_unique<AsioClient>(options);
  SC_RETURN_IF_ERROR(c->Open());
  return std::unique_ptr<Client>(std::move(c));
}

Result<ResponseFrame> Client::Call(const BodyBuilder& build) {
  auto* self = static_cast<AsioClient*>(this);
  for (int redirects = 0;; ++redirects) {
    SC_ASSIGN_OR_RETURN(uint64_t id, Send(build));
    SC_ASSIGN_OR_RETURN(ResponseFrame f, self->WaitFor(id));
    if (f->status() != protocol::StatusCode::MOVED || redirects == kMaxRedirects) return f;
    const auto* where = f->message();
    SC_RETURN_IF_ERROR(self->Redirect(where != nullptr ? where->string_view() : ""));
  }
}

flatbuffers::Offset<protocol::PutRequest> BuildPut(FBB& fbb, const PutArgs& a) {
  auto digest = fbb.CreateVector(a.digest.data(), a.digest.size());
  auto vec = fbb.CreateVector(a.vector.data(), a.vector.size());
  auto payload = fbb.CreateVector(a.payload.data(), a.payload.size());
  auto ns = a.name_space.empty() ? 0 : fbb.CreateString(a.name_space);
  protocol::PutRequestBuilder b(fbb);
  b.add_digest(digest);
  b.add_vector(vec);
  b.add_payload(payload);
  b.add_ttl_ms(a.ttl_ms);
  if (!a.name_space.empty()) b.add_name_space(ns);
  return b.Finish();
}

EntryInfo ToEntryInfo(const protocol::EntryMeta* m, const flatbuffers::Vector<uint8_t>* payload) {
  EntryInfo e;
  if (m != nullptr) {
    e.digest = DigestFrom(m->digest());
    e.created_ms = m->created_ms();
    e.expires_ms = m->expires_ms();
    e.ttl_ms = m->ttl_ms();
    if (m->name_space() != nullptr) e.name_space = m->name_space()->str();
    e.payload_size = m->payload_size();
    e.hits = m->hits();
    e.last_hit_ms = m->last_hit_ms();
  }
  if (payload != nullptr) e.payload.assign(payload->begin(), payload->end());
  return e;
}

Result<std::pair<std::string, bool>> Client::Hello(std::string_view token) {
  static_cast<AsioClient*>(this)->RememberHello(token);
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto t = fbb.CreateString(token);
                        return As(protocol::RequestBody::HelloRequest,
                                  protocol::CreateHelloRequest(fbb, t));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::HelloResponse>(f));
  return std::make_pair(body->org() ? body->org()->str() : std::string(), body->admin());
}

Result<PutInfo> Client::Put(const PutArgs& args) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        return As(protocol::RequestBody::PutRequest, BuildPut(fbb, args));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::PutResponse>(f));
  return PutInfo{body->slot(), body->replaced(), body->expires_ms()};
}

Result<std::vector<Status>> Client::PutBatch(std::span<const PutArgs> items) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        std::vector<flatbuffers::Offset<protocol::PutRequest>> puts;
                        for (const auto& a : items) puts.push_back(BuildPut(fbb, a));
                        auto v = fbb.CreateVector(puts);
                        return As(protocol::RequestBody::PutBatchRequest,
                                  protocol::CreatePutBatchRequest(fbb, v));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::PutBatchResponse>(f));
  std::vector<Status> out;
  if (body->results() != nullptr) {
    for (const auto* r : *body->results()) {
      out.push_back(server::FromWire(r->status(), r->message() ? r->message()->string_view() : ""));
    }
  }
  return out;
}

Result<EntryInfo> Client::Get(const Digest& digest, bool with_payload) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto d = fbb.CreateVector(digest.data(), digest.size());
                        return As(protocol::RequestBody::GetEntryRequest,
                                  protocol::CreateGetEntryRequest(fbb, d, with_payload));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::GetEntryResponse>(f));
  return ToEntryInfo(body->meta(), body->payload());
}

Result<std::vector<LookupHit>> Client::Lookup(const LookupArgs& a) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto v = fbb.CreateVector(a.vector.data(), a.vector.size());
                        auto ns = a.name_space ? fbb.CreateString(*a.name_space) : 0;
                        protocol::LookupRequestBuilder b(fbb);
                        b.add_vector(v);
                        b.add_k(a.k);
                        b.add_min_score(a.min_score);
                        if (a.name_space) b.add_name_space(ns);
                        b.add_with_payload(a.with_payload);
                        return As(protocol::RequestBody::LookupRequest, b.Finish());
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::LookupResponse>(f));
  std::vector<LookupHit> hits;
  if (body->hits() != nullptr) {
    for (const auto* h : *body->hits()) {
      hits.push_back({h->score(), ToEntryInfo(h->meta(), h->payload())});
    }
  }
  return hits;
}

Result<uint64_t> Client::Delete(const Digest& digest) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto d = fbb.CreateVector(digest.data(), digest.size());
                        return As(protocol::RequestBody::DeleteRequest,
                                  protocol::CreateDeleteRequest(fbb, d));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::DeleteResponse>(f));
  return body->removed();
}

Result<int64_t> Client::SetExpiry(const Digest& digest, int64_t expires_ms, int64_t ttl_ms) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto d = fbb.CreateVector(digest.data(), digest.size());
                        return As(protocol::RequestBody::SetExpiryRequest,
                                  protocol::CreateSetExpiryRequest(fbb, d, expires_ms, ttl_ms));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::SetExpiryResponse>(f));
  return body->expires_ms();
}

Result<uint64_t> Client::Invalidate(std::optional<std::string> ns, std::optional<int64_t> older) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto n = ns ? fbb.CreateString(*ns) : 0;
                        protocol::InvalidateRequestBuilder b(fbb);
                        if (ns) b.add_name_space(n);
                        if (older) b.add_older_than_ms(*older);
                        return As(protocol::RequestBody::InvalidateRequest, b.Finish());
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::InvalidateResponse>(f));
  return body->removed();
}

Result<ResponseFrame> Client::Stats() {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        return As(protocol::RequestBody::StatsRequest,
                                  protocol::CreateStatsRequest(fbb));
                      }));
  SC_RETURN_IF_ERROR(BodyOf<protocol::StatsResponse>(f).status());
  return f;
}

Result<int64_t> Client::Ping() {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        return As(protocol::RequestBody::PingRequest,
                                  protocol::CreatePingRequest(fbb));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::PingResponse>(f));
  return body->server_time_ms();
}

Result<OrgCreated> Client::CreateOrg(std::string_view org, uint32_t dimension,
                                     std::string_view index_kind) {
  OrgIndexOptions options;
  options.index_kind = std::string(index_kind);
  return CreateOrg(org, dimension, options);
}

Result<OrgCreated> Client::CreateOrg(std::string_view org, uint32_t dimension,
                                     const OrgIndexOptions& x) {
  SC_ASSIGN_OR_RETURN(
      auto f, Call([&](FBB& fbb) {
        auto o = fbb.CreateString(org);
        auto m = fbb.CreateString("cosine");
        auto k = fbb.CreateString(x.index_kind);
        auto p = x.limits.eviction_policy.empty() ? 0 : fbb.CreateString(x.limits.eviction_policy);
        return As(protocol::RequestBody::CreateOrgRequest,
                  protocol::CreateCreateOrgRequest(fbb, o, dimension, m, k, x.hnsw_m,
                                                   x.ef_construction, x.ef_search, x.seal_threshold,
                                                   x.limits.max_bytes, x.limits.max_entries, p));
      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::CreateOrgResponse>(f));
  return OrgCreated{body->org() ? body->org()->str() : "",
                    body->token() ? body->token()->str() : "",
                    body->token_id() ? body->token_id()->str() : ""};
}

Status Client::DropOrg(std::string_view org) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto o = fbb.CreateString(org);
                        return As(protocol::RequestBody::DropOrgRequest,
                                  protocol::CreateDropOrgRequest(fbb, o));
                      }));
  return BodyOf<protocol::DropOrgResponse>(f).status();
}

Result<uint32_t> Client::RotateKey(std::string_view org) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto o = fbb.CreateString(org);
                        return As(protocol::RequestBody::RotateKeyRequest,
                                  protocol::CreateRotateKeyRequest(fbb, o));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::RotateKeyResponse>(f));
  return body->version();
}

Result<uint64_t> Client::SetOrgLimits(std::string_view org, const OrgLimitsArgs& limits) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto o = fbb.CreateString(org);
                        auto p = fbb.CreateString(limits.eviction_policy);
                        return As(protocol::RequestBody::SetOrgLimitsRequest,
                                  protocol::CreateSetOrgLimitsRequest(fbb, o, limits.max_bytes,
                                                                      limits.max_entries, p));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::SetOrgLimitsResponse>(f));
  return body->evicted();
}

Result<std::string> Client::RotateMasterKey(std::string_view to) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto t = fbb.CreateString(to);
                        return As(protocol::RequestBody::RotateMasterKeyRequest,
                                  protocol::CreateRotateMasterKeyRequest(fbb, t));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::RotateMasterKeyResponse>(f));
  return body->fingerprint() ? body->fingerprint()->str() : std::string();
}

Result<ResponseFrame> Client::KeyStatus(std::string_view org) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto o = fbb.CreateString(org);
                        return As(protocol::RequestBody::KeyStatusRequest,
                                  protocol::CreateKeyStatusRequest(fbb, o));
                      }));
  SC_RETURN_IF_ERROR(BodyOf<protocol::KeyStatusResponse>(f).status());
  return f;
}

Result<ResponseFrame> Client::ListOrgs() {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        return As(protocol::RequestBody::ListOrgsRequest,
                                  protocol::CreateListOrgsRequest(fbb));
                      }));
  SC_RETURN_IF_ERROR(BodyOf<protocol::ListOrgsResponse>(f).status());
  return f;
}

Result<std::pair<std::string, std::string>> Client::IssueToken(std::string_view org) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto o = fbb.CreateString(org);
                        return As(protocol::RequestBody::IssueTokenRequest,
                                  protocol::CreateIssueTokenRequest(fbb, o));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::IssueTokenResponse>(f));
  return std::make_pair(body->token() ? body->token()->str() : "",
                        body->token_id() ? body->token_id()->str() : "");
}

Result<uint64_t> Client::RevokeToken(std::string_view org, std::string_view token_id) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto o = fbb.CreateString(org);
                        auto t = token_id.empty() ? 0 : fbb.CreateString(token_id);
                        protocol::RevokeTokenRequestBuilder b(fbb);
                        b.add_org(o);
                        if (!token_id.empty()) b.add_token_id(t);
                        return As(protocol::RequestBody::RevokeTokenRequest, b.Finish());
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::RevokeTokenResponse>(f));
  return body->revoked();
}

Result<std::pair<std::string, uint64_t>> Client::MoveOrg(std::string_view org,
                                                         std::string_view to_node) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto o = fbb.CreateString(org);
                        auto t = fbb.CreateString(to_node);
                        return As(protocol::RequestBody::MoveOrgRequest,
                                  protocol::CreateMoveOrgRequest(fbb, o, t));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::MoveOrgResponse>(f));
  return std::make_pair(body->node() ? body->node()->str() : "", body->bytes());
}

Result<uint64_t> Client::DrainNode(std::string_view node) {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        auto n = fbb.CreateString(node);
                        return As(protocol::RequestBody::DrainNodeRequest,
                                  protocol::CreateDrainNodeRequest(fbb, n));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::DrainNodeResponse>(f));
  return body->moved();
}

Result<uint64_t> Client::Rebalance() {
  SC_ASSIGN_OR_RETURN(auto f, Call([&](FBB& fbb) {
                        return As(protocol::RequestBody::RebalanceRequest,
                                  protocol::CreateRebalanceRequest(fbb));
                      }));
  SC_ASSIGN_OR_RETURN(auto* body, BodyOf<protocol::RebalanceResponse>(f));
  return body->moved();
}

}  // namespace sealcache::client
