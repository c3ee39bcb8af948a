// Purpose: AES-256-GCM (Aead) and AES-256-CTR (CtrCipher) throughput at the I/O sizes the
// storage engine uses, to compare against `openssl speed -evp aes-256-gcm|aes-256-ctr`.
#include <benchmark/benchmark.h>

#include <vector>

#include "sealcache/crypto/aead.h"
#include "sealcache/crypto/ctr_cipher.h"
#include "sealcache/crypto/hash.h"
#include "sealcache/crypto/random.h"

namespace sealcache::crypto {
namespace {

SecretBytes Key() { return std::move(RandomSecret(32)).value(); }

void BM_AeadSeal(benchmark::State& state) {
  auto aead = std::move(Aead::New(Key())).value();
  std::vector<uint8_t> pt(static_cast<size_t>(state.range(0)), 0x61);
  for (auto _ : state) {
    auto ct = aead->Seal(pt, {});
    benchmark::DoNotOptimize(ct);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

void BM_AeadOpen(benchmark::State& state) {
  auto aead = std::move(Aead::New(Key())).value();
  std::vector<uint8_t> pt(static_cast<size_t>(state.range(0)), 0x61);
  auto ct = std::move(aead->Seal(pt, {})).value();
  for (auto _ : state) {
    auto out = aead->Open(ct, {});
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

// Unaligned offsets, as RocksDB block reads land at arbitrary file offsets.
void BM_CtrApply(benchmark::State& state) {
  auto ctr = std::move(CtrCipher::New(Key(), CtrCipher::Iv{})).value();
  std::vector<uint8_t> buf(static_cast<size_t>(state.range(0)), 0x61);
  uint64_t offset = 7;
  for (auto _ : state) {
    auto s = ctr->Apply(offset, buf.data(), buf.data(), buf.size());
    benchmark::DoNotOptimize(s);
    offset += buf.size() + 13;
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

// A key name's MAC as the Redis front computes one per GET or SET (tag, NUL, a short name).
void BM_HmacKeyMac(benchmark::State& state) {
  auto key = std::move(HmacSha256Key::Create(Key())).value();
  std::vector<uint8_t> name(static_cast<size_t>(state.range(0)), 0x61);
  for (auto _ : state) {
    auto mac = key.Mac(name);
    benchmark::DoNotOptimize(mac);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

BENCHMARK(BM_AeadSeal)->Arg(16)->Arg(1024)->Arg(8192)->Arg(16384);
BENCHMARK(BM_AeadOpen)->Arg(16)->Arg(1024)->Arg(8192)->Arg(16384);
BENCHMARK(BM_CtrApply)->Arg(16)->Arg(1024)->Arg(8192)->Arg(16384)->Arg(65536);
BENCHMARK(BM_CtrApply)->Arg(4096)->Threads(2);
BENCHMARK(BM_HmacKeyMac)->Arg(40)->Arg(1024);

}  // namespace
}  // namespace sealcache::crypto

BENCHMARK_MAIN();
