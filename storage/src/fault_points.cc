#include "sealcache/storage/fault_points.h"

#include <vector>

#include "sealcache/crypto/atomic_file.h"
#include "sealcache/crypto/keystore.h"

namespace sealcache::storage {
namespace {

std::vector<std::string> AllPoints() {
  std::vector<std::string> points;
  for (std::string_view p :
       {kFaultCreateOrgAfterKey, kFaultCreateOrgAfterFamily, kFaultRotateAfterKeystore,
        kFaultReaperBeforeCompaction, kFaultReaperAfterCompaction, kFaultReaperBeforeDestroy,
        kFaultReaperAfterDestroy, kFaultDropOrgAfterCommit, kFaultDropOrgAfterFamily,
        kFaultDropOrgAfterKeys, kFaultMasterKeyAfterNewKey, kFaultMasterKeyAfterKeystore}) {
    points.emplace_back(p);
  }
  for (std::string_view op :
       {crypto::kKeystoreInit, crypto::kKeystoreCreateRing, crypto::kKeystoreRotate,
        crypto::kKeystoreDestroy, crypto::kKeystoreDestroyRing, crypto::kKeystoreRotateMasterKey}) {
    for (std::string_view step : crypto::kAtomicWriteSteps) {
      points.push_back(crypto::KeystoreFaultPoint(op, step));
    }
  }
  return points;
}

}  // namespace

std::span<const std::string> KeyLifecycleFaultPoints() {
  static const std::vector<std::string> points = AllPoints();
  return points;
}

}  // namespace sealcache::storage
