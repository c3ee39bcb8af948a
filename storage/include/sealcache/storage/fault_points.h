// The crash points of key lifecycle code reachable through a Store, in one list: the
// test-only server refuses to crash at a name that is not here, and the crash tests run every
// one of them, so a point added here is covered without touching a test.
//
// A Store calls StoreOptions::fault_hook with these names (its keystore's writes included);
// with no hook, as in production, every point is a no-op.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace sealcache::storage {

// CreateOrg: the key ring is durable, the column family not yet created.
inline constexpr std::string_view kFaultCreateOrgAfterKey = "create_org.after_key";
// CreateOrg: the column family exists, the OrgInfo commit record not yet written.
inline constexpr std::string_view kFaultCreateOrgAfterFamily = "create_org.after_family";
// RotateKey: the new version is durable in the keystore, the audit record not yet written.
inline constexpr std::string_view kFaultRotateAfterKeystore = "rotate.after_keystore";
// Reaper: about to compact away a file under a retiring version whose entries all expired.
inline constexpr std::string_view kFaultReaperBeforeCompaction = "reaper.before_compaction";
// Reaper: that compaction finished.
inline constexpr std::string_view kFaultReaperAfterCompaction = "reaper.after_compaction";
// Reaper: decided that no live file uses the retiring version; not yet destroyed.
inline constexpr std::string_view kFaultReaperBeforeDestroy = "reaper.before_destroy";
// Reaper: the version is destroyed in the keystore, the audit record not yet written.
inline constexpr std::string_view kFaultReaperAfterDestroy = "reaper.after_destroy";
// DropOrg: the meta commit (OrgInfo, entries and tokens removed) is durable; the column
// family still exists and every key version is still live.
inline constexpr std::string_view kFaultDropOrgAfterCommit = "drop_org.after_commit";
// DropOrg: the column family is dropped; the key ring is still live.
inline constexpr std::string_view kFaultDropOrgAfterFamily = "drop_org.after_family";
// DropOrg: every key version is destroyed; index files and the audit record remain.
inline constexpr std::string_view kFaultDropOrgAfterKeys = "drop_org.after_keys";
// Master-key rotation (the server's): the new master key is made (for an HSM or a KMS, its
// envelope written beside the old one); the keystore is not yet re-wrapped.
inline constexpr std::string_view kFaultMasterKeyAfterNewKey = "master_key.after_new_key";
// Master-key rotation: the keystore is re-wrapped under the new key (the commit point); the
// other keys' envelopes are not yet removed.
inline constexpr std::string_view kFaultMasterKeyAfterKeystore = "master_key.after_keystore";

// Every point above and every keystore write point a Store can reach
// (crypto::KeystoreFaultPoint for init, create_ring, rotate, destroy, destroy_ring and
// rotate_master_key).
std::span<const std::string> KeyLifecycleFaultPoints();

}  // namespace sealcache::storage
