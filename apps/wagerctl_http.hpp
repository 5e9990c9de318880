#pragma once

// The small HTTP client wagerctl talks to a node's admin endpoints with: one
// request per call, over HTTP or HTTPS, with a deadline on the whole
// exchange. Beast and Asio stay inside wagerctl_http.cpp, so the rest of
// wagerctl compiles without them.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace wager::ctl {

// Where a node is: "http://127.0.0.1:8080" or "https://node-1:8443/prefix".
struct node_url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string base_path; // without a trailing '/'; empty for none
};

// Parses a node URL; nullopt with `error` set when it is not one.
std::optional<node_url> parse_node_url(std::string_view text, std::string& error);

struct http_call {
  std::string method; // "GET", "POST"
  std::string path;   // "/v1/admin/health", appended to the URL's base path
  std::string body;   // sent as application/json when not empty
  std::string bearer; // the admin key
  std::chrono::milliseconds timeout{10000}; // the whole exchange
  std::string ca_file; // HTTPS: trust this CA (PEM) besides the system's
};

struct http_answer {
  int status = 0;    // 0: no answer; see `error`
  std::string body;
  std::string error; // why there was no answer: connect, TLS, timeout
};

http_answer send(const node_url& url, const http_call& call);

} // namespace wager::ctl
