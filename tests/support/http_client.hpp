#pragma once

// A real HTTP/1.1 client over a real socket, for tests: one keep-alive
// connection, blocking calls with a deadline.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace wager::test {

struct http_result {
  int status = 0; // 0: no answer (connection failed or closed)
  std::string body;
  std::map<std::string, std::string> headers; // lower-case names
};

class http_client {
public:
  http_client(std::string host, uint16_t port,
              std::chrono::milliseconds timeout = std::chrono::seconds{10});
  ~http_client();
  http_client(http_client&&) noexcept;
  http_client& operator=(http_client&&) noexcept;

  // Connects from this local address (e.g. "127.0.0.2") instead of the one
  // the kernel picks.
  http_client& from(std::string source_address);

  http_result request(const std::string& method, const std::string& target,
                      const std::string& body = {}, const std::string& bearer = {});
  http_result get(const std::string& target, const std::string& bearer = {}) {
    return request("GET", target, {}, bearer);
  }
  http_result post(const std::string& target, const std::string& body,
                   const std::string& bearer = {}) {
    return request("POST", target, body, bearer);
  }

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// "127.0.0.1:8080" -> host and port.
std::pair<std::string, uint16_t> split_address(const std::string& address);

} // namespace wager::test
