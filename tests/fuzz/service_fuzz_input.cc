#include "service_fuzz_input.h"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "sealcache/crypto/hash.h"
#include "sealcache/crypto/random.h"
#include "sealcache/server/frame.h"
#include "sealcache/server/service.h"

namespace sealcache::fuzz {
namespace {

namespace P = ::sealcache::protocol;
using server::CacheService;
using server::Session;

constexpr size_t kMasterKeyBytes = 32;
// Small: the fuzzer's RSS limit (2 GiB by default) must hold ASan's shadow and quarantine.
constexpr size_t kBlockCacheBytes = 8u << 20;
// Long enough that no background hit flush or snapshot runs during a fixture's life, so an
// input does the same thing each time it runs.
constexpr int64_t kBackgroundPeriodMs = int64_t{3600} * 1000;
constexpr int64_t kSeededTtlMs = int64_t{24} * 3600 * 1000;
// A fixture serves this many inputs, then a fresh one replaces it: bounds the entries, orgs
// and tokens that inputs pile up, and the disk they use.
constexpr uint64_t kInputsPerFixture = 20'000;

Status Broken(std::string_view promise, const P::Request* request) {
  const char* type = request ? P::EnumNameRequestBody(request->body_type()) : "not a Request";
  return Status::Internal(std::string(promise) + " (request: " + type + ")");
}

// The response type PROTOCOL.md pairs with each request type.
P::ResponseBody ResponseTypeFor(P::RequestBody request) {
  using Q = P::RequestBody;
  using R = P::ResponseBody;
  switch (request) {
    case Q::NONE:
      return R::NONE;
    case Q::HelloRequest:
      return R::HelloResponse;
    case Q::PutRequest:
      return R::PutResponse;
    case Q::PutBatchRequest:
      return R::PutBatchResponse;
    case Q::GetEntryRequest:
      return R::GetEntryResponse;
    case Q::LookupRequest:
      return R::LookupResponse;
    case Q::DeleteRequest:
      return R::DeleteResponse;
    case Q::SetExpiryRequest:
      return R::SetExpiryResponse;
    case Q::InvalidateRequest:
      return R::InvalidateResponse;
    case Q::StatsRequest:
      return R::StatsResponse;
    case Q::PingRequest:
      return R::PingResponse;
    case Q::CreateOrgRequest:
      return R::CreateOrgResponse;
    case Q::DropOrgRequest:
      return R::DropOrgResponse;
    case Q::RotateKeyRequest:
      return R::RotateKeyResponse;
    case Q::RotateMasterKeyRequest:
      return R::RotateMasterKeyResponse;
    case Q::KeyStatusRequest:
      return R::KeyStatusResponse;
    case Q::ListOrgsRequest:
      return R::ListOrgsResponse;
    case Q::IssueTokenRequest:
      return R::IssueTokenResponse;
    case Q::RevokeTokenRequest:
      return R::RevokeTokenResponse;
    case Q::SetOrgLimitsRequest:
      return R::SetOrgLimitsResponse;
    case Q::MoveOrgRequest:
      return R::MoveOrgResponse;
    case Q::DrainNodeRequest:
      return R::DrainNodeResponse;
    case Q::ImportOrgRequest:
      return R::ImportOrgResponse;
    case Q::RebalanceRequest:
      return R::RebalanceResponse;
  }
  return R::NONE;
}

// The admin operations (protocol.fbs): a run of the RequestBody union, and those added
// after SetExpiryRequest (master-key rotation, org limits, the cluster's moves).
bool IsAdminOperation(P::RequestBody type) {
  using Q = P::RequestBody;
  return (type >= Q::CreateOrgRequest && type <= Q::RevokeTokenRequest) ||
         type >= Q::RotateMasterKeyRequest;
}

// The token a session of `state` says Hello with ("" for none).
std::string_view TokenFor(SessionState state) {
  switch (state) {
    case SessionState::kUnauthenticated:
      return "";
    case SessionState::kOrgA:
      return kOrgAToken;
    case SessionState::kOrgB:
      return kOrgBToken;
    case SessionState::kAdmin:
      return kAdminToken;
  }
  return "";
}

// The promises of server/PROTOCOL.md that every answer to `request` (null: the body was not
// a Request) must keep, given the session as it was before the request.
Status CheckResponse(const Session& before, const P::Request* request,
                     const P::Response& response) {
  if (request == nullptr) {
    if (response.id() != 0 || response.status() != P::StatusCode::INVALID_ARGUMENT) {
      return Broken("a body that is not a Request must get id 0 and INVALID_ARGUMENT", nullptr);
    }
    return Status::Ok();
  }
  if (response.id() != request->id()) return Broken("response id is not the request id", request);
  if (response.status() != P::StatusCode::OK) {
    if (response.body_type() != P::ResponseBody::NONE) {
      return Broken("an error response carries a body", request);
    }
    return Status::Ok();
  }
  const P::RequestBody type = request->body_type();
  if (response.body() == nullptr || response.body_type() != ResponseTypeFor(type) ||
      response.body_type() == P::ResponseBody::NONE) {
    return Broken("an OK response lacks the body matching its request", request);
  }
  if (type == P::RequestBody::HelloRequest) return Status::Ok();
  if (!before.authenticated) return Broken("an unauthenticated session got OK", request);
  if (IsAdminOperation(type) && !before.admin) {
    return Broken("an org session got OK for an admin operation", request);
  }
  if (!IsAdminOperation(type) && type != P::RequestBody::PingRequest && before.admin) {
    return Broken("an admin session got OK for a data operation", request);
  }
  return Status::Ok();
}

// The body as a client would read it from a hostile server: verified or refused, never
// trusted. Nothing to check beyond "does not crash".
void ReadAsResponse(std::span<const uint8_t> body) {
  auto response = server::VerifyResponse(body);
  if (!response.ok()) return;
  const flatbuffers::String* message = (*response)->message();
  (void)server::FromWire((*response)->status(),
                         message ? message->string_view() : std::string_view());
}

// Handles one frame body; counts it in `summary`.
Status HandleOne(CacheService& service, Session& session, const std::vector<uint8_t>& body,
                 FuzzInputSummary& summary) {
  const Session before = session;
  auto request = server::VerifyRequest(body);
  ReadAsResponse(body);
  const std::vector<uint8_t> response_bytes = service.Handle(session, body);
  ++summary.frames;
  auto response = server::VerifyResponse(response_bytes);
  if (!response.ok()) {
    return Broken("the response does not verify", request.ok() ? *request : nullptr);
  }
  if ((*response)->status() == P::StatusCode::OK) ++summary.ok_responses;
  return CheckResponse(before, request.ok() ? *request : nullptr, **response);
}

// The service, its data directory and its orgs: built once, used by many inputs.
class ServiceFixture {
 public:
  static Result<std::unique_ptr<ServiceFixture>> Create() {
    auto fixture = std::unique_ptr<ServiceFixture>(new ServiceFixture());
    SC_RETURN_IF_ERROR(fixture->Init());
    return fixture;
  }
  ~ServiceFixture() {
    service_.reset();
    if (!dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }
  ServiceFixture(const ServiceFixture&) = delete;
  ServiceFixture& operator=(const ServiceFixture&) = delete;

  CacheService& service() { return *service_; }

  // False once this fixture has served its share of inputs, or an input dropped or replaced
  // one of its orgs (later inputs would no longer reach the org paths).
  bool UsableForAnotherInput() {
    if (++inputs_ > kInputsPerFixture) return false;
    return OrgIsIntact(kOrgA, "hnsw") && OrgIsIntact(kOrgB, "flat");
  }

 private:
  ServiceFixture() = default;

  Status Init() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp ? tmp : "/tmp") + "/sealcache-fuzz.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) return Status::IOError("cannot create " + tmpl);
    dir_ = tmpl;
    SC_ASSIGN_OR_RETURN(crypto::SecretBytes master, crypto::RandomSecret(kMasterKeyBytes));
    // The master key the rotation seed rotates to (a fixed test key; the store is a temp dir).
    setenv("SEALCACHE_FUZZ_ROTATION_KEY", std::string(64, 'a').c_str(), /*overwrite=*/0);
    server::ServiceOptions options;
    options.store.data_dir = dir_ + "/data";
    options.store.reaper_period_ms = 0;
    options.store.block_cache_bytes = kBlockCacheBytes;
    options.hit_flush_period_ms = kBackgroundPeriodMs;
    options.snapshot_period_ms = kBackgroundPeriodMs;
    options.bootstrap_admin_token = false;
    SC_ASSIGN_OR_RETURN(service_, CacheService::Open(std::move(options), master));
    SC_RETURN_IF_ERROR(AddToken(kAdminToken, ""));
    SC_RETURN_IF_ERROR(CreateOrg(kOrgA, "hnsw", kOrgAToken, SessionState::kOrgA));
    return CreateOrg(kOrgB, "flat", kOrgBToken, SessionState::kOrgB);
  }

 public:
  // A session as a connection has it after a Hello with the state's token; an error once an
  // input revoked that token (the fixture is then made anew).
  Result<Session> SessionFor(SessionState state) {
    Session session;
    const std::string_view token = TokenFor(state);
    if (!token.empty()) SC_RETURN_IF_ERROR(ExpectOk(session, HelloBody(0, token)));
    return session;
  }

 private:
  Status CreateOrg(std::string_view org, std::string_view kind, std::string_view token,
                   SessionState state) {
    SC_ASSIGN_OR_RETURN(Session admin, SessionFor(SessionState::kAdmin));
    SC_RETURN_IF_ERROR(ExpectOk(
        admin, CreateOrgBody(1, {.org = org, .dimension = kDimension, .index_kind = kind})));
    SC_RETURN_IF_ERROR(AddToken(token, std::string(org)));
    SC_ASSIGN_OR_RETURN(Session session, SessionFor(state));
    for (uint32_t i = 0; i < kSeededEntries; ++i) {
      const std::string payload = "seeded payload " + std::to_string(i);
      PutFields put{.digest = SeededDigest(i),
                    .vector = SeededVector(i),
                    .payload = {payload.begin(), payload.end()},
                    .ttl_ms = kSeededTtlMs,
                    .name_space = i < kSeededEntries / 2 ? kSeededNamespace : ""};
      SC_RETURN_IF_ERROR(ExpectOk(session, PutBody(2 + i, put)));
    }
    return Status::Ok();
  }

  Status AddToken(std::string_view token, std::string org) {
    const auto hash =
        crypto::Sha256({reinterpret_cast<const uint8_t*>(token.data()), token.size()});
    const std::string id = "fuzz-" + (org.empty() ? std::string("admin") : org);
    return service_->store().AddToken(hash, {std::move(org), id, 0});
  }

  Status ExpectOk(Session& session, const Body& body) {
    const std::vector<uint8_t> bytes = service_->Handle(session, body);
    SC_ASSIGN_OR_RETURN(const P::Response* response, server::VerifyResponse(bytes));
    if (response->status() == P::StatusCode::OK) return Status::Ok();
    const flatbuffers::String* message = response->message();
    return Status::Internal("fuzz fixture setup failed: " +
                            std::string(message ? message->string_view() : ""));
  }

  // The org as Init made it: an input may have dropped it and made another of that name
  // (whose index parameters could make every later Put slow).
  bool OrgIsIntact(std::string_view org, std::string_view kind) {
    auto c = service_->store().GetOrg(org);
    return c.ok() && c->dimension == kDimension && c->index_kind == kind && c->hnsw_m == 0 &&
           c->ef_construction == 0 && c->ef_search == 0 && c->seal_threshold == 0;
  }

  std::string dir_;
  std::unique_ptr<CacheService> service_;
  uint64_t inputs_ = 0;
};

// The process-wide fixture of the fuzz target: opening a store per input would leave the
// fuzzer a few executions per second.
std::unique_ptr<ServiceFixture>& Fixture() {
  static std::unique_ptr<ServiceFixture> fixture;
  return fixture;
}

// The fixture must close its store before RocksDB's own statics are destroyed at exit. Those
// are made when the first store opens, after Fixture()'s static, so they would be destroyed
// first; an exit handler registered after that open runs before them.
void CloseFixtureAtExit() {
  static const bool registered = std::atexit([] { Fixture().reset(); }) == 0;
  (void)registered;
}

}  // namespace

DigestBytes SeededDigest(uint32_t i) {
  DigestBytes d;
  d.fill(static_cast<uint8_t>(0x11 * (i + 1)));
  return d;
}

std::vector<float> SeededVector(uint32_t i) {
  std::vector<float> v(kDimension, 0.25f * static_cast<float>(i + 1));
  v[i % kDimension] = 1.0f;
  return v;
}

Result<FuzzSession> OpenFuzzSession(SessionState state) {
  std::unique_ptr<ServiceFixture>& fixture = Fixture();
  if (fixture == nullptr || !fixture->UsableForAnotherInput()) {
    fixture.reset();
    SC_ASSIGN_OR_RETURN(fixture, ServiceFixture::Create());
    CloseFixtureAtExit();
  }
  auto hello = fixture->SessionFor(state);
  if (!hello.ok()) {  // an earlier input revoked the token
    fixture.reset();
    SC_ASSIGN_OR_RETURN(fixture, ServiceFixture::Create());
    SC_ASSIGN_OR_RETURN(hello, fixture->SessionFor(state));
  }
  return FuzzSession{&fixture->service(), std::move(hello).value()};
}

Result<FuzzInputSummary> RunServiceFuzzInput(std::span<const uint8_t> input) {
  FuzzInputSummary summary;
  if (input.empty()) {
    SC_RETURN_IF_ERROR(OpenFuzzSession(SessionState::kUnauthenticated).status());
    return summary;
  }
  SC_ASSIGN_OR_RETURN(FuzzSession opened,
                      OpenFuzzSession(static_cast<SessionState>(input[0] % kSessionStates)));
  Session session = std::move(opened.session);
  std::span<const uint8_t> frames = input.subspan(1);
  while (frames.size() >= server::kFrameHeaderSize) {
    const uint32_t n = server::DecodeFrameLength(frames.data());
    frames = frames.subspan(server::kFrameHeaderSize);
    // The server answers RESOURCE_EXHAUSTED without reading the body and closes; a short
    // body is a peer that closed mid-frame. Either way no further frame is read.
    if (n > server::kDefaultMaxFrameBytes || frames.size() < n) break;
    // An exact-size copy, so that reading past the body is an ASan finding rather than a
    // silent read of the next frame.
    const std::vector<uint8_t> body(frames.begin(), frames.begin() + n);
    frames = frames.subspan(n);
    SC_RETURN_IF_ERROR(HandleOne(*opened.service, session, body, summary));
  }
  return summary;
}

std::vector<uint8_t> MakeFuzzInput(SessionState state, std::span<const Body> bodies) {
  std::vector<uint8_t> input{static_cast<uint8_t>(state)};
  for (const Body& body : bodies) {
    const std::vector<uint8_t> frame = server::EncodeFrame(body);
    input.insert(input.end(), frame.begin(), frame.end());
  }
  return input;
}

}  // namespace sealcache::fuzz
