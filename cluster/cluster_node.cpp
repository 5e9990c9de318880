#include "wager/cluster/cluster_node.hpp"

#include "wager/cluster/agent.hpp"
#include "wager/cluster/entity_messages.hpp"
#include "wager/cluster/protocol.hpp"
#include "wager/runtime/directory_placement.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/send.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <memory>

namespace wager {

namespace {

using bio_ptr = std::unique_ptr<BIO, decltype([](BIO* p) { BIO_free(p); })>;
using x509_ptr = std::unique_ptr<X509, decltype([](X509* p) { X509_free(p); })>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype([](EVP_PKEY* p) { EVP_PKEY_free(p); })>;
using store_ptr =
  std::unique_ptr<X509_STORE, decltype([](X509_STORE* p) { X509_STORE_free(p); })>;
using store_ctx_ptr =
  std::unique_ptr<X509_STORE_CTX, decltype([](X509_STORE_CTX* p) { X509_STORE_CTX_free(p); })>;

std::string openssl_reason() {
  auto code = ERR_get_error();
  ERR_clear_error();
  if (code == 0)
    return "not PEM";
  char text[256] = {};
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

bio_ptr open_file(const std::string& path, std::string& error) {
  bio_ptr bio{BIO_new_file(path.c_str(), "r")};
  if (!bio)
    error = "cannot read cluster TLS file '" + path + "'";
  ERR_clear_error();
  return bio;
}

x509_ptr read_certificate(const std::string& path, std::string& error) {
  auto bio = open_file(path, error);
  if (!bio)
    return nullptr;
  x509_ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)};
  if (!cert)
    error = "cluster TLS file '" + path + "' holds no PEM certificate: " + openssl_reason();
  return cert;
}

} // namespace

std::string check_cluster_tls(const cluster_tls_files& files) {
  std::string error;
  auto cert = read_certificate(files.cert, error);
  if (!cert)
    return error;
  auto ca = read_certificate(files.ca, error);
  if (!ca)
    return error;
  auto key_bio = open_file(files.key, error);
  if (!key_bio)
    return error;
  // A passphrase-protected key would make OpenSSL prompt on the terminal;
  // the empty callback refuses it instead.
  pkey_ptr key{PEM_read_bio_PrivateKey(
    key_bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr)};
  if (!key)
    return "cluster TLS file '" + files.key
           + "' holds no unencrypted PEM private key: " + openssl_reason();
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return "cluster TLS key '" + files.key + "' does not belong to the certificate '"
           + files.cert + "'";
  }
  store_ptr store{X509_STORE_new()};
  store_ctx_ptr ctx{X509_STORE_CTX_new()};
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca.get()) != 1
      || X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1)
    return "cannot check cluster TLS certificate '" + files.cert + "': " + openssl_reason();
  if (X509_verify_cert(ctx.get()) != 1) {
    auto why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
    ERR_clear_error();
    return "cluster TLS certificate '" + files.cert + "' is not valid under the CA '" + files.ca
           + "': " + why;
  }
  return {};
}

void configure_cluster(caf::actor_system_config& cfg, const cluster_tls_files& tls) {
  add_cluster_message_types(cfg);
  add_entity_command_types(cfg);
  if (!tls.enabled())
    return;
  cfg.load<caf::openssl::manager>();
  cfg.set("openssl.certificate", tls.cert);
  cfg.set("openssl.key", tls.key);
  cfg.set("openssl.cafile", tls.ca);
}

namespace {

// Answers every message with errc::unavailable: where routed messages go
// while their shard's owner, or the way to it, is unknown. The caller
// retries; a one-way message is dropped.
using refuse_atom = caf::atom_constant<caf::atom("wc_refuse")>;

caf::behavior refuser(caf::event_based_actor* self) {
  self->set_default_handler(
    [](caf::scheduled_actor* me, caf::message_view&) -> caf::result<caf::message> {
      // An error for a one-way message would reach its sender as a message.
      if (!me->current_message_id().is_request())
        return caf::delegated<caf::message>{};
      return make_error(errc::unavailable, "shard owner unknown, retry");
    });
  return {[](refuse_atom) {}};
}

} // namespace

std::unique_ptr<cluster_node> cluster_node::start(caf::actor_system& sys, metrics& m,
                                                  cluster_options options, std::string& error) {
  std::unique_ptr<cluster_node> node{new cluster_node};
  node->shared_ = std::make_shared<detail::cluster_shared>();
  auto host = options.host;
  auto port = options.port;
  auto tls = options.tls;
  auto dir = options.dir;
  if (dir) {
    node->shared_->refuser = sys.spawn(refuser);
    // Until the agent's first view, no shard has a known owner.
    node->shared_->routes.assign(options.shards, shard_route{node->shared_->refuser});
  }
  node->agent_ = spawn_cluster_agent(sys, m, std::move(options), node->shared_);
  auto bound = tls ? caf::openssl::publish(node->agent_, port, host.c_str(), true)
                   : sys.middleman().publish(node->agent_, port, host.c_str(), true);
  if (!bound) {
    error = "cannot open cluster port " + host + ":" + std::to_string(port) + ": "
            + sys.render(bound.error());
    node->stop();
    return nullptr;
  }
  node->port_ = *bound;
  node->address_ = host + ":" + std::to_string(*bound);
  begin_cluster_agent(node->agent_, node->address_);
  if (dir) {
    node->dir_ = dir;
    set_directory_placement(dir, [shared = node->shared_](uint32_t shard) {
      std::lock_guard guard{shared->mutex};
      return shard < shared->routes.size() ? shared->routes[shard] : shard_route{shared->refuser};
    });
  }
  return node;
}

cluster_node::~cluster_node() {
  stop();
}

cluster_view cluster_node::view() const {
  std::lock_guard guard{shared_->mutex};
  return shared_->view;
}

void cluster_node::leave() {
  if (agent_ && !leave_cluster(agent_, std::chrono::seconds{5}))
    log().warn("cluster: the agent did not confirm that this node left");
}

void cluster_node::stop() {
  if (!agent_)
    return;
  caf::anon_send_exit(agent_, caf::exit_reason::user_shutdown);
  agent_ = caf::actor{};
  caf::actor refuser;
  {
    std::lock_guard guard{shared_->mutex};
    refuser = shared_->refuser;
    // The last placement stays in the directory until it stops: what still
    // reaches this node (a peer that has not heard it left) goes on to the
    // shards' owners, and a shard given away is never served here again,
    // which would make a second live copy of its entities. A shard whose
    // owner is unknown waits (unreachable_hold), then fails: the refuser
    // stops below.
    for (auto& route : shared_->routes)
      if (route.owner == refuser)
        route.unreachable = true;
  }
  dir_ = directory{};
  if (refuser)
    caf::anon_send_exit(refuser, caf::exit_reason::user_shutdown);
}

} // namespace wager
