#pragma once

// A real node's client API in-process for the API tests: a platform over a
// temp dir, the client_api, an http_server on a free port, and a real
// keep-alive HTTP client.

#include "wager/actors/platform.hpp"
#include "wager/gateway/api.hpp"
#include "wager/gateway/http_server.hpp"

#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <memory>
#include <string>

namespace wager::test {

namespace json = boost::json;

inline constexpr const char* admin_key = "operator-key-for-tests-0123456789";

inline api_options test_api_options() {
  api_options o;
  o.admin_key = admin_key;
  o.node_id = "test-node";
  // Cheap hashing keeps the tests fast; the format records the count.
  o.auth.pbkdf2_iterations = 1000;
  return o;
}

struct api_node {
  temp_dir dir;
  std::unique_ptr<platform> plat;
  std::unique_ptr<client_api> api;
  std::unique_ptr<http_server> server;
  std::unique_ptr<http_client> client;

  explicit api_node(api_options options = test_api_options()) {
    platform_options po;
    po.data_dir = dir.str();
    po.shards = 16;
    po.call_timeout = std::chrono::seconds{10};
    auto p = platform::start(po);
    REQUIRE(p);
    plat = std::move(*p);
    api = std::make_unique<client_api>(*plat, std::move(options));
    http_server_options so;
    so.port = 0;
    server = std::make_unique<http_server>(
      so, [a = api.get()](http_request r, http_responder w) { a->handle(std::move(r), std::move(w)); });
    REQUIRE(server->start() == "");
    client = std::make_unique<http_client>("127.0.0.1", server->port());
  }

  ~api_node() {
    client.reset();
    server->stop();
    server.reset();
    api.reset();
    plat->stop();
  }

  http_result call(const std::string& method, const std::string& target,
                   const std::string& body = {}, const std::string& bearer = {}) {
    return client->request(method, target, body, bearer);
  }

  // Signs up and logs in; returns the token.
  std::string user(const std::string& name, const std::string& password = "correct horse") {
    auto r = call("POST", "/v1/users",
                  json::serialize(json::object{{"username", name}, {"password", password}}));
    REQUIRE_MESSAGE(r.status == 201, r.body);
    return login(name, password);
  }

  std::string login(const std::string& name, const std::string& password = "correct horse") {
    auto r = call("POST", "/v1/sessions",
                  json::serialize(json::object{{"username", name}, {"password", password}}));
    REQUIRE_MESSAGE(r.status == 201, r.body);
    return std::string{json::parse(r.body).at("token").as_string()};
  }

  // An open market m1 with selections home "2.50" and away "1.80".
  void open_market(const std::string& id = "m1") {
    auto r = call("POST", "/v1/admin/markets",
                  R"({"market_id":")" + id + R"(","event":"A v B","name":"Match odds",)"
                    R"("selections":[{"selection_id":"home","name":"A","price":"2.50"},)"
                    R"({"selection_id":"away","name":"B","price":"1.80"}],)"
                    R"("limits":{"max_stake":100000,"max_liability":1000000}})",
                  admin_key);
    REQUIRE_MESSAGE(r.status == 201, r.body);
    r = call("POST", "/v1/admin/markets/" + id + "/status", R"({"status":"open"})", admin_key);
    REQUIRE_MESSAGE(r.status == 200, r.body);
  }
};

inline json::value body_of(const http_result& r) {
  return json::parse(r.body);
}

inline std::string error_code(const http_result& r) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("error"))
    return "<no error body: " + r.body + ">";
  return std::string{v.at("error").at("code").as_string()};
}

inline std::string error_field(const http_result& r) {
  auto v = json::parse(r.body);
  auto& e = v.at("error").as_object();
  return e.contains("field") ? std::string{e.at("field").as_string()} : std::string{};
}

} // namespace wager::test
