// The audit's runs (runner.cc): a child `phoenix up --audit` driven over its control socket.
#pragma once

#include <sys/types.h>

#include <boost/json/fwd.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "audit/audit.h"
#include "audit/http_client.h"
#include "base/result.h"

namespace phoenix::audit {

struct ScannedFile {
  std::string path;
  uint64_t bytes = 0;
  std::string change;
  int64_t mtime_ns = 0;
};

struct Incarnation {
  std::string instance;
  int number = 0;
  bool ready = false;
  std::string layer;
  std::vector<ScannedFile> files;
};

// One `phoenix up --audit` with its own state folder under `work_dir`; stopped (and waited
// for) when destroyed.
class Child {
 public:
  Child() = default;
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  Status Start(const AuditOptions& options, int instances, const std::string& work_dir);
  // Until web.1..web.N each have one incarnation, ready (newer than `newer_than` says).
  Status WaitReady(int instances, std::chrono::seconds timeout,
                   const std::map<std::string, int>& newer_than);
  Result<std::vector<Incarnation>> Scan(const std::string& instance);
  Result<std::string> Call(const std::string& request);  // one control request, its answer
  void Stop();
  int port() const { return port_; }
  const std::string& log() const { return log_; }

 private:
  static Status MakeDir(const std::string& path);
  static std::vector<Incarnation> ParseScan(const boost::json::value& v);
  bool Alive();
  std::string SocketPath();
  std::string DescribeExit() const;

  pid_t pid_ = -1;
  int exit_status_ = 0;
  int port_ = 0;
  std::string work_, log_, socket_;
};

using Seen = std::map<std::string, std::pair<uint64_t, int64_t>>;  // path -> bytes, mtime

// A file a request uploaded (a multipart part with a filename), to find its bytes on disk.
struct UploadedPart {
  std::string name, filename, bytes;
};
// The file parts of a multipart/form-data body (RFC 7578); none when it is not one.
std::vector<UploadedPart> FileParts(std::string_view content_type, std::string_view body);

struct RunPlan {
  std::string name;
  int instances = 1;
  bool reborn = false;
};

// Starts the run's `phoenix up --audit` and waits for its instances.
Status StartRun(Child& child, const AuditOptions& options, const RunPlan& plan,
                const std::string& work_dir, RunResult& run);

class Driver {
 public:
  Driver(Child& child, const RunPlan& plan, RunResult& run);
  // Files that appeared since the last scan, attributed to `step` (0: boot).
  void ScanInto(int step, std::vector<FileWrite>& into);
  // Sends request `index` (0-based) to the instance the plan gives it; records `out`.
  std::optional<HttpResponse> Exchange(size_t index, HttpRequest request, Outcome& out,
                                       const std::vector<UploadedPart>& file_parts = {});
  // (reborn) Replaces web.1 and waits until its successor is ready and it is gone.
  Status Rebirth(size_t index);
  void Close() { client_.Close(); }

 private:
  Child& child_;
  const RunPlan& plan_;
  RunResult& run_;
  HttpClient client_;
  std::map<std::string, Seen> seen_;  // "web.1#1" -> its files as last seen
};

RunResult Replay(const AuditOptions& options, const Scenario& scenario, const RunPlan& plan,
                 const std::string& work_dir,
                 const std::function<void(const std::string&)>& progress);

// Runs the user's test command against a recording proxy in front of the run's phoenix.
RunResult RecordCommand(const AuditOptions& options, const RunPlan& plan,
                        const std::string& work_dir,
                        const std::function<void(const std::string&)>& progress);

}  // namespace phoenix::audit
