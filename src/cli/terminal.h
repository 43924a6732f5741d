// The terminal of `phoenix up`: instance output prefixed Foreman-style ("web.1   | ..."), our
// own lines as "phoenix | ...", coloured when stdout is a TTY. Each line goes out in one
// write(2), so two instances' lines are never torn into one.
#pragma once

#include <map>
#include <string>

#include "config/config.h"

namespace phoenix::cli {

class Terminal {
 public:
  explicit Terminal(const Config& config);
  void Instance(const std::string& instance, const std::string& line);
  void System(const std::string& line);

 private:
  void Write(const std::string& name, const std::string& colour, const std::string& line);
  const std::string& ColourOf(const std::string& instance);
  bool tty_;
  size_t width_ = 7;
  std::map<std::string, std::string> colours_;
};

}  // namespace phoenix::cli
