// The lost-state report: what an incarnation wrote into its writable layer, which dies with it.
// The layer is an overlayfs upper directory: a file there was created or changed (copied up),
// a 0:0 character device is a whiteout (a deleted file), an "opaque" directory replaced the
// one below.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace phoenix::sandbox {

enum class Change { kCreated, kModified, kDeleted };
const char* ToString(Change change);

struct LostFile {
  std::string path;  // relative to the app root; absolute in the private /tmp, /var/tmp, /dev/shm
  uint64_t bytes = 0;
  Change change = Change::kCreated;
  int64_t mtime_ns = 0;  // tells a file written again from one left alone
};

struct LostState {
  std::vector<LostFile> files;    // state that dies with the incarnation
  std::vector<LostFile> scratch;  // under filesystem.writable: expected, listed apart
  uint64_t bytes = 0;             // of `files`
  uint64_t scratch_bytes = 0;
};

// True when `path` (relative) is at or under one of the `writable` prefixes ("tmp/", "tmp",
// "logs/app.log").
bool IsScratch(const std::string& path, const std::vector<std::string>& writable);

// Walks `upper`, comparing with `lower` (the app root) to tell created from modified.
// Directories are not reported themselves (copy-up parents, empty new folders): their files are.
Result<LostState> ScanLayer(const std::string& upper, const std::string& lower,
                            const std::vector<std::string>& writable);

// Adds to `into.files` what is left in `dir`, an incarnation's private /tmp (or /var/tmp,
// /dev/shm), each file as `shown_as`/its path ("/tmp/upload_3f2a"): it dies with the
// incarnation as its layer does. Sockets and FIFOs hold no data and are left out.
Status ScanPrivateScratch(const std::string& dir, const std::string& shown_as, LostState& into);

}  // namespace phoenix::sandbox
