// For `phoenix audit -- TEST-COMMAND`: a loopback HTTP/1.1 proxy that the user's tests talk to
// (BASE_URL). Each request is handed to the audit one at a time, in arrival order, so that it is
// pinned to an instance, its files attributed, and (reborn) its instance replaced before the
// next one is let through. Bodies are buffered whole; Upgrade (WebSocket) is refused with 501.
#pragma once

#include <functional>
#include <memory>

#include "audit/http_client.h"
#include "base/result.h"

namespace phoenix::audit {

class Recorder {
 public:
  // Returns the response to send back; an Error becomes a 502.
  using Handler = std::function<Result<HttpResponse>(HttpRequest)>;
  Recorder();
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  Result<int> Start(Handler handler);  // listens on 127.0.0.1; returns the port
  void Stop();                         // closes every connection, joins the threads

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace phoenix::audit
