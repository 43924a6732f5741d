// The audit's HTTP/1.1 client: one keep-alive connection to the router on loopback, opened
// again when the server closed it. Blocking: the audit replays one request at a time.
// Beast stays inside http_client.cc.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "audit/scenario.h"
#include "base/result.h"

namespace phoenix::audit {

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";
  Pairs headers;  // besides Host, Content-Length (set from the body)
  std::string body;
};

struct HttpResponse {
  int status = 0;
  Pairs headers;
  std::string body;
  double ms = 0;  // from the first byte sent to the last received
  // The first value of a field (case-insensitive), "" when absent.
  std::string Header(std::string_view name) const;
  std::vector<std::string> All(std::string_view name) const;
};

class HttpClient {
 public:
  HttpClient(std::string host, int port);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // A transport failure (refused, reset, timeout) is an Error; any HTTP answer is a response.
  Result<HttpResponse> Send(const HttpRequest& request, std::chrono::milliseconds timeout);
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace phoenix::audit
