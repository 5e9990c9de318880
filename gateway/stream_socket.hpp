#pragma once

// The socket side of a WebSocket connection, for http_server.cpp only (it
// pulls in Beast). It reads client frames into websocket_callbacks::on_text
// and writes what the connection's stream_outbox hands it, one frame at a
// time, on the connection's strand. Works over plain TCP and over TLS.

#include "wager/gateway/http_server.hpp"
#include "wager/gateway/stream_outbox.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace wager::detail {

// The only way into the server's I/O from outside it. Responders and outbox
// wake-ups are held by actors, which may keep them after the server stopped
// and its io_context is gone; so they hold no Asio object (no socket, no
// strand executor, no connection), only this gate, and reach the context
// through it while it is open. stop() closes it once the I/O threads are
// joined and before the context dies.
struct io_gate {
  std::mutex mutex;
  std::condition_variable answered;
  boost::asio::io_context* ioc = nullptr; // null: stopped
  uint64_t last_ticket = 0;
  // Connections waiting for a handler's answer, owned here rather than by
  // their responders: a connection must die before its io_context.
  std::unordered_map<uint64_t, std::shared_ptr<void>> parked;
  // Requests read whose answer is not yet written out (parked, posted to
  // their strand, or being written). stop() lets them finish.
  size_t responses_open = 0;
  // stop() began: answers go out with "Connection: close".
  bool stopping = false;

  // A connection owes an answer it will write itself (an error, a 426).
  void response_opened() {
    std::lock_guard lock{mutex};
    ++responses_open;
  }

  // The answer is written (or its connection failed).
  void response_closed() {
    std::lock_guard lock{mutex};
    if (responses_open > 0 && --responses_open == 0)
      answered.notify_all();
  }

  bool is_stopping() {
    std::lock_guard lock{mutex};
    return stopping;
  }

  // Marks the gate stopping: answers written from now on close their
  // connection.
  void begin_stopping() {
    std::lock_guard lock{mutex};
    stopping = true;
  }

  // Marks the gate stopping and waits until every open answer is written,
  // at most `grace`. Whether they all were.
  bool finish_answers(std::chrono::milliseconds grace) {
    std::unique_lock lock{mutex};
    stopping = true;
    return answered.wait_for(lock, grace, [this] { return responses_open == 0; });
  }

  // Runs f on the I/O threads, or drops it when stopped. f must not own a
  // connection (it is destroyed unrun if the server stops first, which is
  // fine, but it must not be the last owner outside the context).
  template <class F>
  void post(F&& f) {
    std::lock_guard lock{mutex};
    if (ioc)
      boost::asio::post(*ioc, std::forward<F>(f));
  }

  // Keeps a connection alive until its answer comes; the ticket's number.
  // The answer counts as open from here.
  uint64_t park(std::shared_ptr<void> connection) {
    std::lock_guard lock{mutex};
    auto id = ++last_ticket;
    if (ioc) {
      parked.emplace(id, std::move(connection));
      ++responses_open;
    }
    return id;
  }

  // The responder was dropped unanswered: the connection ends.
  void abandon(uint64_t id) {
    std::shared_ptr<void> connection;
    {
      std::lock_guard lock{mutex};
      auto it = parked.find(id);
      if (!ioc || it == parked.end())
        return;
      connection = std::move(it->second);
      parked.erase(it);
      if (responses_open > 0 && --responses_open == 0)
        answered.notify_all();
    }
    // Destroyed outside the lock: a connection's destructor may reach the gate.
  }

  // Hands the parked connection to `deliver` (which posts it to its strand),
  // unless the server stopped or the ticket was used.
  template <class F>
  void unpark(uint64_t id, F&& deliver) {
    std::lock_guard lock{mutex};
    auto it = parked.find(id);
    if (!ioc || it == parked.end())
      return;
    auto connection = std::move(it->second);
    parked.erase(it);
    deliver(std::move(connection));
  }

  // Closes the gate; the caller destroys what was parked, before the context.
  std::unordered_map<uint64_t, std::shared_ptr<void>> close() {
    std::lock_guard lock{mutex};
    ioc = nullptr;
    return std::exchange(parked, {});
  }
};

template <class Stream>
class stream_socket : public std::enable_shared_from_this<stream_socket<Stream>> {
public:
  using request_type = boost::beast::http::request<boost::beast::http::string_body>;

  stream_socket(Stream&& stream, const http_server_options& options, http_request request,
                std::shared_ptr<io_gate> gate)
    : ws_(std::move(stream)), options_(options), request_(std::move(request)),
      gate_(std::move(gate)),
      outbox_(std::make_shared<stream_outbox>(
        stream_outbox_limits{options.websocket_reliable_max, 1024})) {}

  ~stream_socket() { closed(); }

  void accept(request_type&& req) {
    upgrade_ = std::move(req);
    namespace websocket = boost::beast::websocket;
    auto& lowest = boost::beast::get_lowest_layer(ws_);
    lowest.expires_never();
    if (options_.websocket_send_buffer_bytes > 0) {
      boost::beast::error_code ec;
      lowest.socket().set_option(
        boost::asio::socket_base::send_buffer_size(options_.websocket_send_buffer_bytes), ec);
    }
    ws_.set_option(websocket::stream_base::timeout::suggested(boost::beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(boost::beast::http::field::server, "wager"); }));
    ws_.read_message_max(options_.websocket_message_max_bytes);
    ws_.async_accept(upgrade_, [self = this->shared_from_this()](boost::beast::error_code ec) {
      if (ec)
        return;
      self->on_accepted();
    });
  }

private:
  void on_accepted() {
    callbacks_ = options_.websocket(request_, outbox_);
    // The outbox lives on in the session actor: its wake-up holds neither
    // this connection nor the strand, only the gate.
    std::weak_ptr<stream_socket> weak = this->shared_from_this();
    outbox_->on_ready([gate = gate_, weak] {
      gate->post([weak] {
        if (auto self = weak.lock())
          boost::asio::post(self->ws_.get_executor(), [self] { self->pump(); });
      });
    });
    read();
    pump();
  }

  void read() {
    ws_.async_read(buffer_, [self = this->shared_from_this()](boost::beast::error_code ec,
                                                              size_t) {
      if (ec)
        return self->closed();
      ws_text(self);
    });
  }

  static void ws_text(const std::shared_ptr<stream_socket>& self) {
    auto text = boost::beast::buffers_to_string(self->buffer_.data());
    self->buffer_.consume(self->buffer_.size());
    if (self->callbacks_.on_text)
      self->callbacks_.on_text(std::move(text));
    self->read();
  }

  // Writes the next frame the outbox has, unless one is being written.
  void pump() {
    if (writing_ || done_)
      return;
    auto next = outbox_->take();
    if (!next)
      return;
    writing_ = true;
    if (next->close) {
      done_ = true;
      namespace websocket = boost::beast::websocket;
      websocket::close_reason reason{websocket::close_code::policy_error, next->reason};
      ws_.async_close(reason, [self = this->shared_from_this()](boost::beast::error_code) {
        self->writing_ = false;
        self->closed();
      });
      return;
    }
    frame_ = std::move(next->text);
    ws_.text(true);
    ws_.async_write(boost::asio::buffer(frame_),
                    [self = this->shared_from_this()](boost::beast::error_code ec, size_t) {
                      self->writing_ = false;
                      if (ec) {
                        self->outbox_->close("write failed", false);
                        return self->closed();
                      }
                      self->pump();
                    });
  }

  void closed() {
    if (closed_)
      return;
    closed_ = true;
    outbox_->close("connection closed", false);
    if (callbacks_.on_closed)
      callbacks_.on_closed();
  }

  boost::beast::websocket::stream<Stream> ws_;
  const http_server_options& options_;
  http_request request_;
  std::shared_ptr<io_gate> gate_;
  request_type upgrade_;
  std::shared_ptr<stream_outbox> outbox_;
  websocket_callbacks callbacks_;
  boost::beast::flat_buffer buffer_;
  std::string frame_;
  bool writing_ = false;
  bool done_ = false;
  bool closed_ = false;
};

} // namespace wager::detail
