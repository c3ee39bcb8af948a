#include "sealcache/storage/file_header.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sealcache/crypto/aead.h"
#include "sealcache/encoding.h"

namespace sealcache::storage {
namespace {

constexpr char kMagic[8] = {'S', 'C', 'E', 'N', 'C', 'F', 'I', 'L'};
constexpr size_t kOrgField = crypto::kMaxOrgIdLength;
// Offsets; see storage/FORMAT.md.
constexpr size_t kAadSizeV1 = 8 + 2 + 1 + 1 + 1 + kOrgField + 4 + 16 + 16;  // = 113
constexpr size_t kAadSizeV2 = kAadSizeV1 + 1 + 4;                           // = 118
// Chunks smaller than this would cost more than 1% in tags and nonces; larger than
// kMaxFrameSize would make every read of a few bytes decrypt a megabyte.
constexpr uint32_t kMinChunkSize = 512;
constexpr size_t kWrappedKeySize = crypto::Aead::kOverhead + crypto::kDataKeySize;

}  // namespace

std::string_view FileKindName(FileKind kind) {
  switch (kind) {
    case FileKind::kSst:
      return "sst";
    case FileKind::kWal:
      return "wal";
    case FileKind::kManifest:
      return "manifest";
    case FileKind::kIndexSnapshot:
      return "snapshot";
    case FileKind::kOther:
      return "other";
  }
  return "unknown";
}

std::string_view BodyLayoutName(BodyLayout layout) {
  switch (layout) {
    case BodyLayout::kCtr:
      return "ctr";
    case BodyLayout::kChunks:
      return "chunks";
    case BodyLayout::kFrames:
      return "frames";
  }
  return "unknown";
}

std::vector<uint8_t> HeaderAad(const FileHeader& h) {
  std::vector<uint8_t> out;
  out.reserve(kAadSizeV2);
  PutBytes(out, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(kMagic), 8));
  PutFixed16(out, h.format_version);
  PutFixed8(out, static_cast<uint8_t>(h.kind));
  PutFixed8(out, static_cast<uint8_t>(h.ring.scope));
  PutFixed8(out, static_cast<uint8_t>(h.ring.org.size()));
  std::vector<uint8_t> org(kOrgField, 0);
  std::memcpy(org.data(), h.ring.org.data(), std::min(h.ring.org.size(), kOrgField));
  PutBytes(out, org);
  PutFixed32(out, h.key_version);
  PutBytes(out, h.file_id);
  PutBytes(out, h.iv);
  if (h.format_version >= kFileFormatV2) {
    PutFixed8(out, static_cast<uint8_t>(h.layout));
    PutFixed32(out, h.chunk_size);
  }
  return out;
}

std::vector<uint8_t> EncodeFileHeader(const FileHeader& h) {
  std::vector<uint8_t> out = HeaderAad(h);
  PutFixed16(out, static_cast<uint16_t>(h.wrapped_data_key.size()));
  PutBytes(out, h.wrapped_data_key);
  out.resize(kFileHeaderSize, 0);
  return out;
}

bool HasFileHeaderMagic(std::span<const uint8_t> bytes) {
  return bytes.size() >= sizeof(kMagic) && std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0;
}

Result<FileHeader> ParseFileHeader(std::span<const uint8_t> bytes) {
  if (bytes.size() < kFileHeaderSize) {
    return Status::Corruption("encrypted file header is truncated (" +
                              std::to_string(bytes.size()) + " of 4096 bytes)");
  }
  if (!HasFileHeaderMagic(bytes)) {
    return Status::Corruption("file has no sealcache encryption header (bad magic)");
  }
  ByteReader r(bytes.first(kFileHeaderSize));
  std::span<const uint8_t> skip, org, file_id, iv, wrapped;
  FileHeader h;
  uint8_t kind = 0, scope = 0, org_len = 0;
  uint16_t wrapped_len = 0;
  r.ReadBytes(sizeof(kMagic), &skip);
  r.ReadFixed16(&h.format_version);
  r.ReadFixed8(&kind);
  r.ReadFixed8(&scope);
  r.ReadFixed8(&org_len);
  r.ReadBytes(kOrgField, &org);
  r.ReadFixed32(&h.key_version);
  r.ReadBytes(16, &file_id);
  r.ReadBytes(16, &iv);
  if (h.format_version == kFileFormatV2) {
    uint8_t layout = 0;
    r.ReadFixed8(&layout);
    r.ReadFixed32(&h.chunk_size);
    if (layout != static_cast<uint8_t>(BodyLayout::kChunks) &&
        layout != static_cast<uint8_t>(BodyLayout::kFrames)) {
      return Status::Corruption("encrypted file header has an unknown body layout");
    }
    h.layout = static_cast<BodyLayout>(layout);
    if (h.chunk_size < kMinChunkSize || h.chunk_size > kMaxFrameSize) {
      return Status::Corruption("encrypted file header has an invalid chunk size " +
                                std::to_string(h.chunk_size));
    }
    for (uint8_t b : iv) {
      if (b != 0) return Status::Corruption("encrypted file header: reserved bytes are not zero");
    }
  } else if (h.format_version != kFileFormatV1) {
    return Status::Corruption("encrypted file format version " + std::to_string(h.format_version) +
                              " is not supported");
  }
  r.ReadFixed16(&wrapped_len);
  if (kind < static_cast<uint8_t>(FileKind::kSst) ||
      kind > static_cast<uint8_t>(FileKind::kOther)) {
    return Status::Corruption("encrypted file header has an unknown file kind");
  }
  if (scope != static_cast<uint8_t>(crypto::KeyScope::kNode) &&
      scope != static_cast<uint8_t>(crypto::KeyScope::kOrg)) {
    return Status::Corruption("encrypted file header has an unknown key scope");
  }
  if (org_len > kOrgField || wrapped_len != kWrappedKeySize ||
      !r.ReadBytes(wrapped_len, &wrapped)) {
    return Status::Corruption("encrypted file header has invalid field lengths");
  }
  for (size_t i = org_len; i < kOrgField; ++i) {
    if (org[i] != 0) return Status::Corruption("encrypted file header org field is not padded");
  }
  for (size_t i = r.position(); i < kFileHeaderSize; ++i) {
    if (bytes[i] != 0) return Status::Corruption("encrypted file header padding is not zero");
  }
  h.kind = static_cast<FileKind>(kind);
  h.ring.scope = static_cast<crypto::KeyScope>(scope);
  h.ring.org.assign(org.begin(), org.begin() + org_len);
  if (h.ring.scope == crypto::KeyScope::kOrg) {
    Status valid = crypto::ValidateOrgId(h.ring.org);
    if (!valid.ok()) return Status::Corruption("encrypted file header: " + valid.message());
  } else if (org_len != 0) {
    return Status::Corruption("encrypted file header: a node-key file names an org");
  }
  std::memcpy(h.file_id.data(), file_id.data(), 16);
  std::memcpy(h.iv.data(), iv.data(), 16);
  h.wrapped_data_key.assign(wrapped.begin(), wrapped.end());
  return h;
}

Result<FileHeader> ReadFileHeader(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  std::vector<uint8_t> buf(kFileHeaderSize);
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  buf.resize(got);
  auto h = ParseFileHeader(buf);
  if (!h.ok()) return h.status().WithContext(path);
  return h;
}

}  // namespace sealcache::storage
