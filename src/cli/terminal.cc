#include "cli/terminal.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "os/line_sink.h"

namespace phoenix::cli {

Terminal::Terminal(const Config& config) : tty_(isatty(STDOUT_FILENO)) {
  for (const auto& p : config.processes) {
    // Room for "type.NN" so columns stay aligned as instances are added.
    width_ = std::max(width_, p.type.size() + 3);
  }
}

const std::string& Terminal::ColourOf(const std::string& instance) {
  static const char* kPalette[] = {"36", "33", "32", "35", "34", "96", "93", "92", "95", "94"};
  auto it = colours_.find(instance);
  if (it != colours_.end()) return it->second;
  return colours_[instance] = kPalette[colours_.size() % std::size(kPalette)];
}

void Terminal::Instance(const std::string& instance, const std::string& line) {
  Write(instance, ColourOf(instance), line);
}

void Terminal::System(const std::string& line) { Write("phoenix", "1", line); }

void Terminal::Write(const std::string& name, const std::string& colour, const std::string& line) {
  std::string out = tty_ ? fmt::format("\x1b[{}m{:<{}} |\x1b[0m {}\n", colour, name, width_, line)
                         : fmt::format("{:<{}} | {}\n", name, width_, line);
  os::Stdout().Write(out);  // never blocks: a terminal nobody reads must not stop the supervisor
}

}  // namespace phoenix::cli
