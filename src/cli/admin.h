// The admin address: a small HTTP/1.1 server on the daemon's loop that answers GET and HEAD
// with what a `page` function returns (admin_pages.h renders /metrics, /status and /). Beast
// stays in admin.cc.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "config/config.h"

namespace boost::asio {
class io_context;
}

namespace phoenix::cli {

struct AdminPage {
  int status = 200;
  std::string content_type;
  std::string body;
};

class AdminServer {
 public:
  // `page` runs on the loop's thread with the request's path (no query); it is only called
  // while the server is started.
  using PageFunction = std::function<AdminPage(std::string_view path)>;
  static Result<std::unique_ptr<AdminServer>> Start(boost::asio::io_context& io,
                                                    const AdminConfig& config, PageFunction page);
  virtual ~AdminServer() = default;
  virtual std::string url() const = 0;  // "http://127.0.0.1:41234"
  virtual void Stop() = 0;              // closes the listener and every connection
};

}  // namespace phoenix::cli
