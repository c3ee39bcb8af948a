// What the crash tests share: deterministic entries (digest, payload and vector from one id),
// key status as plain values, a pipelined checker of entries, and the keystore's wrapped key
// material read straight from the file (crypto/FORMAT.md), so a test can prove that a
// destroyed version's material is gone from disk.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "sealcache/client/client.h"
#include "sealcache/crypto/atomic_file.h"
#include "test_support.h"

namespace sealcache::crash {

inline constexpr float kSelfMatchScore = 0.999f;  // a stored vector looked up by itself

// The entry with id `id` of the org with salt `org_salt`: every field follows from the id,
// and no two (salt, id) pairs share a digest.
inline client::Digest DigestOf(uint64_t org_salt, uint64_t id) {
  client::Digest d{};
  std::mt19937_64 rng(id * 0x9E3779B97F4A7C15ull + org_salt * 0xC2B2AE3D27D4EB4Full + 1);
  for (auto& b : d) b = static_cast<uint8_t>(rng());
  // The id in the last 8 bytes keeps digests unique whatever the generator does.
  for (int i = 0; i < 8; ++i) d[24 + i] = static_cast<uint8_t>(id >> (8 * i));
  d[23] = static_cast<uint8_t>(org_salt);
  return d;
}
inline std::string PayloadOf(uint64_t org_salt, uint64_t id) {
  return "payload org " + std::to_string(org_salt) + " id " + std::to_string(id) + " " +
         std::string(16 + id % 200, static_cast<char>('a' + id % 26));
}
inline std::vector<float> VectorOf(uint32_t dim, uint64_t org_salt, uint64_t id) {
  return test::MakeVector(dim, (org_salt << 48) ^ (id + 1));
}
inline std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string Text(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

// A positive integer from the environment, or `fallback`.
inline uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v, &end, 10);
  return (end != nullptr && *end == '\0') ? n : fallback;
}

struct KeyVersionView {
  uint32_t version = 0;
  std::string state;  // ACTIVE | RETIRING | DESTROYED
};

// KeyStatus of `org` as plain values; NotFound for an unknown org.
inline Result<std::vector<KeyVersionView>> KeyVersions(client::Client& admin,
                                                       const std::string& org) {
  SC_ASSIGN_OR_RETURN(auto frame, admin.KeyStatus(org));
  std::vector<KeyVersionView> out;
  const auto* body = frame->body_as_KeyStatusResponse();
  if (body != nullptr && body->versions() != nullptr) {
    for (const auto* v : *body->versions()) {
      out.push_back({v->version(), v->state() ? v->state()->str() : ""});
    }
  }
  return out;
}

// The org's ring must be: versions 1..n in order, exactly one ACTIVE and it is n. Returns n.
inline uint32_t ExpectWellFormedRing(const std::vector<KeyVersionView>& versions,
                                     const std::string& org) {
  int active = 0;
  for (size_t i = 0; i < versions.size(); ++i) {
    EXPECT_EQ(versions[i].version, i + 1) << org << ": key versions not contiguous from 1";
    if (versions[i].state == "ACTIVE") {
      ++active;
      EXPECT_EQ(i + 1, versions.size()) << org << ": the ACTIVE version is not the newest";
    } else {
      EXPECT_TRUE(versions[i].state == "RETIRING" || versions[i].state == "DESTROYED")
          << org << " version " << versions[i].version << " has state " << versions[i].state;
    }
  }
  EXPECT_EQ(active, 1) << org << ": a live ring must have exactly one ACTIVE version";
  return static_cast<uint32_t>(versions.size());
}

inline std::map<std::string, bool> ListOrgNames(client::Client& admin) {
  std::map<std::string, bool> out;
  auto frame = admin.ListOrgs();
  EXPECT_TRUE(frame.ok()) << frame.status().ToString();
  if (!frame.ok()) return out;
  const auto* body = (*frame)->body_as_ListOrgsResponse();
  if (body != nullptr && body->orgs() != nullptr) {
    for (const auto* o : *body->orgs()) out[o->org()->str()] = true;
  }
  return out;
}

// Gets many digests over one connection, `depth` requests in flight at a time. Each result
// is the entry or the error status (NotFound for a miss).
inline std::vector<Result<client::EntryInfo>> PipelinedGet(client::Client& c,
                                                           const std::vector<client::Digest>& ds,
                                                           size_t depth = 64) {
  std::vector<Result<client::EntryInfo>> out(ds.size(), Status::Internal("no response"));
  std::map<uint64_t, size_t> pending;  // request id -> index
  size_t next = 0;
  while (next < ds.size() || !pending.empty()) {
    while (next < ds.size() && pending.size() < depth) {
      const client::Digest& d = ds[next];
      auto id = c.Send([&](flatbuffers::FlatBufferBuilder& fbb) {
        auto v = fbb.CreateVector(d.data(), d.size());
        return std::make_pair(protocol::RequestBody::GetEntryRequest,
                              protocol::CreateGetEntryRequest(fbb, v, true).Union());
      });
      if (!id.ok()) return out;
      pending[*id] = next++;
    }
    auto frame = c.Receive();
    if (!frame.ok()) return out;
    auto it = pending.find(frame->id());
    if (it == pending.end()) continue;
    Status s = frame->status();
    if (s.ok()) {
      const auto* body = (*frame)->body_as_GetEntryResponse();
      out[it->second] = client::ToEntryInfo(body->meta(), body->payload());
    } else {
      out[it->second] = s;
    }
    pending.erase(it);
  }
  return out;
}

// The wrapped material of (org, version) as stored in the keystore file, parsed per
// crypto/FORMAT.md; nullopt if the file has no such record or the version has none
// (DESTROYED). Parsing failures fail the test.
inline std::optional<std::vector<uint8_t>> WrappedMaterialInKeystore(
    const std::vector<uint8_t>& file, const std::string& org, uint32_t version) {
  constexpr size_t kHeader = 8 + 2 + 2 + 8 + 16 + 4;
  constexpr size_t kMac = 32;
  constexpr uint8_t kOrgScope = 2;
  if (file.size() < kHeader + kMac) {
    ADD_FAILURE() << "keystore shorter than its header";
    return std::nullopt;
  }
  auto u = [&](size_t at, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{file[at + i]} << (8 * i);
    return v;
  };
  const uint64_t count = u(36, 4);
  size_t at = kHeader;
  for (uint64_t r = 0; r < count; ++r) {
    if (at + 2 > file.size() - kMac) {
      ADD_FAILURE() << "keystore record " << r << " runs past the file";
      return std::nullopt;
    }
    const uint8_t scope = file[at];
    const size_t org_len = file[at + 1];
    const std::string rec_org(file.begin() + at + 2, file.begin() + at + 2 + org_len);
    size_t p = at + 2 + org_len;
    const uint32_t rec_version = static_cast<uint32_t>(u(p, 4));
    p += 4 + 1 + 8 + 8 + 8;
    const size_t wrapped_len = u(p, 2);
    p += 2;
    if (p + wrapped_len > file.size() - kMac) {
      ADD_FAILURE() << "keystore record " << r << " runs past the file";
      return std::nullopt;
    }
    if (scope == kOrgScope && rec_org == org && rec_version == version) {
      if (wrapped_len == 0) return std::nullopt;
      return std::vector<uint8_t>(file.begin() + p, file.begin() + p + wrapped_len);
    }
    at = p + wrapped_len;
  }
  EXPECT_EQ(at, file.size() - kMac) << "keystore has bytes after its last record";
  return std::nullopt;
}

inline bool FileContains(const std::string& path, const std::vector<uint8_t>& needle) {
  auto bytes = crypto::ReadWholeFile(path);
  if (!bytes.ok()) return false;
  return std::search(bytes->begin(), bytes->end(), needle.begin(), needle.end()) != bytes->end();
}

}  // namespace sealcache::crash
