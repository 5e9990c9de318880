// The HTTP edge over real sockets: limits, timeouts, malformed requests, TLS
// (a certificate generated here, verified by the client), and WebSocket
// upgrades over plain TCP and TLS.

#include "support/http_client.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"
#include "support/ws_client.hpp"

#include "wager/gateway/http_server.hpp"
#include "wager/gateway/stream_outbox.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <memory>
#include <mutex>
#include <vector>

using namespace wager;
using namespace std::chrono_literals;

namespace {

http_handler echo = [](http_request r, http_responder w) {
  http_response res;
  res.body = r.method + " " + r.path + " " + std::to_string(r.body.size());
  w(std::move(res));
};

// A raw client: sends bytes, then reads until the server closes or the
// deadline passes. Returns what it read and whether the server closed.
struct raw_result {
  std::string data;
  bool closed = false;
  std::chrono::milliseconds elapsed{0};
};

raw_result raw_exchange(uint16_t port, const std::string& bytes,
                        std::chrono::milliseconds deadline = 5s) {
  raw_result out;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  auto start = std::chrono::steady_clock::now();
  size_t sent = 0;
  while (sent < bytes.size()) {
    auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0)
      break;
    sent += static_cast<size_t>(n);
  }
  timeval tv{0, 50'000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  while (std::chrono::steady_clock::now() - start < deadline) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      out.closed = true;
      break;
    }
    if (n > 0)
      out.data.append(buf, static_cast<size_t>(n));
  }
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - start);
  ::close(fd);
  return out;
}

struct plain_fixture {
  http_server server;
  explicit plain_fixture(http_server_options o = options()) : server(std::move(o), echo) {
    REQUIRE(server.start() == "");
  }
  static http_server_options options() {
    http_server_options o;
    o.port = 0;
    o.read_timeout = 300ms;
    return o;
  }
};

// A self-signed certificate for localhost, made by the openssl tool.
struct cert_files {
  test::temp_dir dir;
  std::string cert = (dir / "cert.pem").string();
  std::string key = (dir / "key.pem").string();
  cert_files() {
    auto cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1"
               " -subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout "
               + key + " -out " + cert + " 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
};

// Echoes every text frame back through the outbox.
websocket_handler echo_stream = [](const http_request&, std::shared_ptr<stream_outbox> box) {
  websocket_callbacks cb;
  cb.on_text = [box](std::string text) { box->push("echo:" + text); };
  cb.on_closed = [] {};
  return cb;
};

} // namespace

TEST_CASE_FIXTURE(plain_fixture, "keep-alive requests are answered on one connection") {
  test::http_client c{"127.0.0.1", server.port()};
  for (int i = 0; i < 3; ++i) {
    auto r = c.post("/x", "{}");
    CHECK(r.status == 200);
    CHECK(r.body == "POST /x 2");
    // The security headers are on every answer; HSTS only over HTTPS
    // (tests/apps/node_tls checks that side).
    CHECK(r.headers["x-content-type-options"] == "nosniff");
    CHECK(r.headers["cache-control"] == "no-store");
    CHECK(r.headers["server"] == "wager");
    CHECK(r.headers.count("strict-transport-security") == 0);
  }
}

TEST_CASE_FIXTURE(plain_fixture, "a client that sends half a request and stalls is disconnected") {
  auto r = raw_exchange(server.port(), "GET /x HTTP/1.1\r\nHost: a\r\n", 5s);
  CHECK(r.closed);
  CHECK(r.data.find("200") == std::string::npos);
  // read_timeout is 300 ms; the deadline only bounds a hang.
  CHECK(r.elapsed < 3s);
}

TEST_CASE_FIXTURE(plain_fixture, "a body over 64 KiB is refused with 413 too_large") {
  test::http_client c{"127.0.0.1", server.port()};
  auto r = c.post("/x", std::string(64 * 1024 + 1, 'a'));
  CHECK(r.status == 413);
  CHECK(r.body.find(R"({"error":{"code":"too_large",)") == 0);
}

TEST_CASE_FIXTURE(plain_fixture, "oversized headers are refused") {
  auto r = raw_exchange(server.port(), "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: "
                                         + std::string(20'000, 'a') + "\r\n\r\n");
  CHECK(r.data.rfind("HTTP/1.1 431", 0) == 0);
  CHECK(r.data.find(R"({"error":{"code":"too_large",)") != std::string::npos);
  CHECK(r.closed);
}

// Regression (issue 19): the answer's code was "bad_request", which is not
// one of shared/API.md's error codes.
TEST_CASE_FIXTURE(plain_fixture, "a malformed request gets 400 invalid_field and the connection closes") {
  auto r = raw_exchange(server.port(), "NOT A REQUEST\r\n\r\n");
  CHECK(r.data.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(r.data.find(R"({"error":{"code":"invalid_field",)") != std::string::npos);
  CHECK(r.closed);
}

TEST_CASE("a bad TLS file makes start() fail with a clear line") {
  cert_files files;
  http_server_options o;
  o.port = 0;
  o.tls_cert_file = files.cert;
  o.tls_key_file = (files.dir / "missing.pem").string();
  http_server s{o, echo};
  auto err = s.start();
  CHECK(err.find("missing.pem") != std::string::npos);
  o.tls_key_file = files.cert; // a certificate is no key
  http_server s2{o, echo};
  CHECK(s2.start().find("TLS key") != std::string::npos);
}

TEST_CASE("the TLS port answers WSS to a verifying client and nothing in the clear") {
  cert_files files;
  http_server_options o;
  o.port = 0;
  o.read_timeout = 500ms;
  o.tls_cert_file = files.cert;
  o.tls_key_file = files.key;
  o.websocket = echo_stream;
  http_server s{o, echo};
  REQUIRE(s.start() == "");

  test::ws_client c{"127.0.0.1", s.port(), {true, files.cert}};
  REQUIRE(c.connect() == "");
  REQUIRE(c.send("hello"));
  CHECK(c.read(5s) == std::optional<std::string>{"echo:hello"});

  auto plain = raw_exchange(s.port(), "GET /x HTTP/1.1\r\nHost: a\r\n\r\n", 3s);
  CHECK(plain.data.find("HTTP/") == std::string::npos);
  CHECK(plain.closed);
}

// A client may send its request in the same segment as the handshake's last
// flight. The server's TLS engine then holds the request before the first
// wait for it: waiting on the socket instead of the stream left such a
// client unanswered until the idle timeout (seen with curl under load).
TEST_CASE("a TLS client whose request rides with its handshake Finished is answered") {
  cert_files files;
  http_server_options o;
  o.port = 0;
  o.tls_cert_file = files.cert;
  o.tls_key_file = files.key;
  o.idle_timeout = 30s;
  http_server s{o, echo};
  REQUIRE(s.start() == "");

  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(s.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  auto* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  // TCP_CORK holds what is written until it is lifted: the client's Finished
  // (written by SSL_connect) and the request leave in one segment.
  int on = 1, off = 0;
  REQUIRE(::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on) == 0);
  REQUIRE(SSL_connect(ssl) == 1);
  std::string request = "GET /riding HTTP/1.1\r\nHost: a\r\n\r\n";
  REQUIRE(SSL_write(ssl, request.data(), static_cast<int>(request.size())) > 0);
  REQUIRE(::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off) == 0);
  std::string answer;
  auto start = std::chrono::steady_clock::now();
  char buf[4096];
  while (answer.find("GET /riding 0") == std::string::npos) {
    int n = SSL_read(ssl, buf, sizeof buf);
    if (n <= 0)
      break;
    answer.append(buf, static_cast<size_t>(n));
  }
  CHECK(answer.find("HTTP/1.1 200") == 0);
  CHECK(answer.find("GET /riding 0") != std::string::npos);
  // Answered at once, not after a timeout.
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
}

TEST_CASE("a client that does not trust the certificate cannot connect") {
  cert_files files, other;
  http_server_options o;
  o.port = 0;
  o.tls_cert_file = files.cert;
  o.tls_key_file = files.key;
  o.websocket = echo_stream;
  http_server s{o, echo};
  REQUIRE(s.start() == "");
  test::ws_client c{"127.0.0.1", s.port(), {true, other.cert}};
  CHECK(c.connect().find("tls handshake") == 0);
}

TEST_CASE("the plain port upgrades the stream path and refuses a plain GET there") {
  http_server_options o = plain_fixture::options();
  o.websocket = echo_stream;
  http_server s{o, echo};
  REQUIRE(s.start() == "");
  test::ws_client c{"127.0.0.1", s.port()};
  REQUIRE(c.connect() == "");
  REQUIRE(c.send("x"));
  CHECK(c.read(5s) == std::optional<std::string>{"echo:x"});
  test::http_client h{"127.0.0.1", s.port()};
  auto plain = h.get("/v1/stream");
  CHECK(plain.status == 426);
  CHECK(plain.body.find(R"({"error":{"code":"upgrade_required",)") == 0);
  CHECK(h.get("/v1/other").status == 200);
}

// Actors may keep a responder or a connection's outbox after the server is
// gone. Using or dropping them then must touch nothing of the server's I/O
// (under AddressSanitizer this was a use-after-free of its io_context).
TEST_CASE("a responder and an outbox kept past the server's end are harmless") {
  std::mutex mutex;
  std::vector<http_responder> responders;
  std::shared_ptr<stream_outbox> outbox;
  http_server_options o = plain_fixture::options();
  o.websocket = [&](const http_request&, std::shared_ptr<stream_outbox> box) {
    std::lock_guard lock{mutex};
    outbox = box;
    return websocket_callbacks{[](std::string) {}, [] {}};
  };
  o.stop_grace = 0ms; // the held responder is never answered before stop
  auto server = std::make_unique<http_server>(o, [&](http_request, http_responder w) {
    std::lock_guard lock{mutex};
    responders.push_back(std::move(w));
  });
  REQUIRE(server->start() == "");
  test::ws_client ws{"127.0.0.1", server->port()};
  REQUIRE(ws.connect() == "");
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  std::string get = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(fd, get.data(), get.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(get.size()));
  REQUIRE(test::wait_until([&] {
    std::lock_guard lock{mutex};
    return responders.size() == 1 && outbox != nullptr;
  }));
  server->stop();
  server.reset();
  responders.front()(error_response(503, "unavailable", "too late"));
  CHECK_FALSE(outbox->push("after the end"));
  responders.clear();
  outbox.reset();
  ::close(fd);
}

namespace {

bool refuses_connections(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool refused = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0;
  ::close(fd);
  return refused;
}

// Answers /slow only when the test says so; everything else at once.
struct held_answer {
  std::mutex mutex;
  std::vector<http_responder> held;

  http_handler handler() {
    return [this](http_request r, http_responder w) {
      if (r.path != "/slow")
        return echo(std::move(r), std::move(w));
      std::lock_guard lock{mutex};
      held.push_back(std::move(w));
    };
  }
  size_t waiting() {
    std::lock_guard lock{mutex};
    return held.size();
  }
  void answer(std::string body) {
    std::lock_guard lock{mutex};
    http_response res;
    res.body = std::move(body);
    held.front()(std::move(res));
    held.clear();
  }
};

} // namespace

TEST_CASE("stop refuses new connections but writes the answers it owes first") {
  held_answer slow;
  http_server server{plain_fixture::options(), slow.handler()};
  REQUIRE(server.start() == "");
  test::http_client waiting{"127.0.0.1", server.port()};
  test::http_client idle{"127.0.0.1", server.port()};
  REQUIRE(idle.get("/first").status == 200); // connected and kept alive
  std::atomic<int> slow_status{-1};
  std::string slow_body;
  std::thread asker{[&] {
    auto r = waiting.get("/slow");
    slow_body = r.body;
    slow_status = r.status;
  }};
  REQUIRE(test::wait_until([&] { return slow.waiting() == 1; }));
  std::atomic<bool> stopped{false};
  std::thread stopper{[&] {
    server.stop();
    stopped = true;
  }};
  REQUIRE(test::wait_until([&] { return refuses_connections(server.port()); }));
  CHECK_FALSE(stopped);
  // A request on a connection already open is still answered, and told
  // the connection closes.
  auto late = idle.get("/late");
  CHECK(late.status == 200);
  CHECK(late.headers["connection"] == "close");
  slow.answer("worth the wait");
  asker.join();
  stopper.join();
  CHECK(slow_status == 200);
  CHECK(slow_body == "worth the wait");
  CHECK(stopped);
}

// Regression (issue 5): the drain endpoint raised the drain from its
// handler, and stop() closed the connection before the 202 was written.
TEST_CASE("an answer whose on_sent stops the server always reaches its client") {
  for (int i = 0; i < 20; ++i) {
    CAPTURE(i);
    std::thread stopper;
    std::mutex mutex;
    std::unique_ptr<http_server> server;
    server = std::make_unique<http_server>(
      plain_fixture::options(), [&](http_request, http_responder w) {
        http_response res;
        res.status = 202;
        res.body = std::string(64 * 1024, 'x'); // more than one write's worth
        res.on_sent = [&] {
          std::lock_guard lock{mutex};
          stopper = std::thread{[&] { server->stop(); }};
        };
        w(std::move(res));
      });
    REQUIRE(server->start() == "");
    test::http_client c{"127.0.0.1", server->port()};
    auto r = c.post("/v1/admin/drain", "{}");
    CHECK(r.status == 202);
    CHECK(r.body.size() == 64 * 1024);
    REQUIRE(test::wait_until([&] {
      std::lock_guard lock{mutex};
      return stopper.joinable();
    }));
    stopper.join();
    server.reset();
  }
}
