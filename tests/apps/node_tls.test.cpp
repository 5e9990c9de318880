// wager-node's HTTPS port as a penetration check sees it: sslscan (a real
// scanner) for protocols, cipher suites, key exchange groups, renegotiation
// and Heartbleed; curl for the headers of every kind of answer. The same
// check run against a deliberately weak server must find its faults, so it
// cannot pass by finding nothing.

#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <vector>
#include <regex>
#include <set>

using namespace std::chrono_literals;
using wager::test::child_process;

namespace {

std::string read_all(child_process& program) {
  std::string out;
  while (auto line = program.read_line(60s))
    out += *line + "\n";
  return out;
}

// A self-signed certificate for localhost, made by the openssl tool.
struct cert_files {
  wager::test::temp_dir dir;
  std::string cert = (dir / "cert.pem").string();
  std::string key = (dir / "key.pem").string();
  cert_files() {
    auto cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1"
               " -subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout "
               + key + " -out " + cert + " 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
};

uint16_t free_port() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor{
    ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  return acceptor.local_endpoint().port();
}

std::string attribute(const std::string& element, const std::string& name) {
  std::smatch m;
  if (std::regex_search(element, m, std::regex{" " + name + "=\"([^\"]*)\""}))
    return m[1];
  return {};
}

// What a scanner would flag in sslscan's XML: a protocol below TLS 1.2, a
// suite that is weak by sslscan's rating, under 128 bits, or (in TLS 1.2)
// without forward secrecy or an AEAD mode; a key exchange group under 128
// bits; insecure renegotiation; Heartbleed.
std::vector<std::string> scanner_findings(const std::string& xml) {
  std::vector<std::string> found;
  std::regex element{R"(<(protocol|cipher|group|renegotiation|heartbleed) [^>]*>)"};
  int ciphers = 0;
  for (std::sregex_iterator i{xml.begin(), xml.end(), element}, end; i != end; ++i) {
    auto e = i->str();
    auto kind = (*i)[1].str();
    if (kind == "protocol") {
      auto version = attribute(e, "type") + " " + attribute(e, "version");
      if (attribute(e, "enabled") == "1" && version != "tls 1.2" && version != "tls 1.3")
        found.push_back("protocol enabled: " + version);
    } else if (kind == "cipher") {
      ++ciphers;
      auto name = attribute(e, "cipher");
      auto strength = attribute(e, "strength");
      auto version = attribute(e, "sslversion");
      if (strength != "strong" && strength != "acceptable")
        found.push_back("cipher " + name + " rated " + strength);
      if (std::stoi(attribute(e, "bits")) < 128)
        found.push_back("cipher " + name + " under 128 bits");
      if (version == "TLSv1.2"
          && (name.rfind("ECDHE-", 0) != 0
              || (name.find("GCM") == std::string::npos
                  && name.find("CHACHA20") == std::string::npos)))
        found.push_back("TLS 1.2 cipher " + name + " lacks forward secrecy or AEAD");
    } else if (kind == "group") {
      if (std::stoi(attribute(e, "bits")) < 128)
        found.push_back("key exchange group " + attribute(e, "name") + " under 128 bits");
    } else if (kind == "renegotiation") {
      if (attribute(e, "supported") == "1" && attribute(e, "secure") != "1")
        found.push_back("insecure renegotiation");
    } else if (attribute(e, "vulnerable") == "1") {
      found.push_back("heartbleed over " + attribute(e, "sslversion"));
    }
  }
  if (ciphers == 0)
    found.push_back("the scan saw no cipher suite at all");
  return found;
}

std::vector<std::string> scan(uint16_t port) {
  child_process sslscan{WAGER_SSLSCAN,
                        {"--no-colour", "--xml=-", "127.0.0.1:" + std::to_string(port)}};
  auto xml = read_all(sslscan);
  REQUIRE(sslscan.wait(60s) == 0);
  return scanner_findings(xml);
}

// The response headers of one request made with curl over HTTPS, names in
// lower case; "status" holds the status code.
std::map<std::string, std::string> https_headers(const cert_files& certs, uint16_t port,
                                                 const std::string& method,
                                                 const std::string& path) {
  auto host = "localhost:" + std::to_string(port);
  child_process curl{WAGER_CURL,
                     {"-s", "--max-time", "20", "-o", "/dev/null", "-D", "-", "-X", method,
                      "--cacert", certs.cert,
                      "--resolve", host + ":127.0.0.1", "https://" + host + path}};
  std::map<std::string, std::string> headers;
  while (auto line = curl.read_line(30s)) {
    auto text = *line;
    if (!text.empty() && text.back() == '\r')
      text.pop_back();
    if (text.rfind("HTTP/", 0) == 0) {
      headers["status"] = text.substr(text.find(' ') + 1, 3);
      continue;
    }
    auto colon = text.find(':');
    if (colon == std::string::npos)
      continue;
    auto name = text.substr(0, colon);
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    headers[name] = text.substr(text.find_first_not_of(' ', colon + 1));
  }
  REQUIRE(curl.wait(30s) == 0);
  return headers;
}

} // namespace

TEST_CASE("the node's HTTPS port gives a scanner nothing to flag, and every answer its headers") {
  cert_files certs;
  wager::test::temp_dir dir;
  child_process node{wager::test::binary("apps/wager-node"),
                     {"--data-dir", (dir / "data").string(), "--http-port", "0", "--feed-port",
                      "0", "--log-level", "warn", "--admin-key", "an-operator-key-for-tls",
                      "--tls-cert", certs.cert, "--tls-key", certs.key}};
  auto line = node.read_line(30s);
  REQUIRE(line);
  auto ready = boost::json::parse(*line).as_object();
  REQUIRE(ready.at("event").as_string() == "ready");
  std::string http{ready.at("http").as_string()};
  auto port = static_cast<uint16_t>(std::stoi(http.substr(http.rfind(':') + 1)));

  for (auto& finding : scan(port))
    FAIL_CHECK(finding);

  // Answers of every kind: served, operations, not found, unauthorized,
  // wrong method, bad input.
  struct probe {
    const char* method;
    const char* path;
    const char* status;
  };
  for (auto p : {probe{"GET", "/healthz", "200"}, probe{"GET", "/metrics", "200"},
                 probe{"GET", "/v1/markets", "200"}, probe{"GET", "/v1/nothing-here", "404"},
                 probe{"GET", "/v1/admin/health", "401"}, probe{"DELETE", "/healthz", "405"},
                 probe{"POST", "/v1/sessions", "400"}}) {
    CAPTURE(p.method);
    CAPTURE(p.path);
    auto h = https_headers(certs, port, p.method, p.path);
    CHECK(h["status"] == p.status);
    CHECK(h["strict-transport-security"] == "max-age=31536000");
    CHECK(h["x-content-type-options"] == "nosniff");
    CHECK(h["cache-control"] == "no-store");
    CHECK(h["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'");
    CHECK(h["x-frame-options"] == "DENY");
    CHECK(h["referrer-policy"] == "no-referrer");
    // The product, never its version.
    CHECK(h["server"] == "wager");
    CHECK(h.count("x-powered-by") == 0);
  }
}

TEST_CASE("the scanner check finds the faults of a deliberately weak TLS server") {
  cert_files certs;
  auto port = free_port();
  child_process weak{"/usr/bin/openssl",
                     {"s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert",
                      certs.cert, "-key", certs.key, "-www", "-cipher", "ALL:@SECLEVEL=0"}};
  // s_server prints ACCEPT once it listens.
  bool listening = false;
  while (auto line = weak.read_line(30s))
    if ((listening = line->find("ACCEPT") != std::string::npos))
      break;
  REQUIRE(listening);
  auto found = scan(port);
  std::set<std::string> kinds;
  for (auto& f : found)
    kinds.insert(f.substr(0, f.find(' ')));
  CHECK(std::find(found.begin(), found.end(), "protocol enabled: tls 1.0") != found.end());
  CHECK(kinds.count("cipher") == 1);
  CHECK(kinds.count("TLS") == 1);
}
