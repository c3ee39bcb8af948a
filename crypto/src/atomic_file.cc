#include "sealcache/crypto/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sealcache::crypto {
namespace {

Status ErrnoStatus(const std::string& what, const std::string& path) {
  return Status::IOError(what + " " + path + ": " + std::strerror(errno));
}

std::string DirName(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status WriteAll(int fd, std::span<const uint8_t> bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot write", path);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Status SyncDirectory(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open directory", dir);
  int rc = fsync(fd);
  close(fd);
  if (rc != 0) return ErrnoStatus("cannot fsync directory", dir);
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::span<const uint8_t> bytes,
                           const AtomicWriteFaultHook& fault_hook) {
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoStatus("cannot create", tmp);
  Status s = WriteAll(fd, bytes, tmp);
  if (s.ok() && fsync(fd) != 0) s = ErrnoStatus("cannot fsync", tmp);
  close(fd);
  SC_RETURN_IF_ERROR(s);
  SC_RETURN_IF_ERROR(ReachFaultPoint(fault_hook, kAfterTempWrite));
  SC_RETURN_IF_ERROR(ReachFaultPoint(fault_hook, kBeforeRename));
  if (rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("cannot rename onto", path);
  SC_RETURN_IF_ERROR(ReachFaultPoint(fault_hook, kAfterRename));
  return SyncDirectory(DirName(path));
}

Result<std::vector<uint8_t>> ReadWholeFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return ErrnoStatus("cannot open", path);
  }
  std::vector<uint8_t> out;
  struct stat st {};
  if (fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = ErrnoStatus("cannot read", path);
      close(fd);
      return s;
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  close(fd);
  return out;
}

}  // namespace sealcache::crypto
