#include "wager/gateway/feed_line_framer.hpp"

namespace wager {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' '))
    s.remove_suffix(1);
  return s;
}

} // namespace

void feed_line_framer::consume(std::string_view data, const emit_fn& emit) {
  while (!data.empty()) {
    auto nl = data.find('\n');
    auto piece = data.substr(0, nl);
    if (!skipping_) {
      if (line_.size() + piece.size() > line_max_bytes_) {
        skipping_ = true;
        line_.clear();
      } else {
        line_.append(piece);
      }
    }
    if (nl == std::string_view::npos)
      return;
    if (skipping_)
      emit({}, true);
    else if (auto line = trim(line_); !line.empty())
      emit(line, false);
    line_.clear();
    skipping_ = false;
    data.remove_prefix(nl + 1);
  }
}

} // namespace wager
