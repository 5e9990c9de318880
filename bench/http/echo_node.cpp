// Benchmark (not a test): HTTP keep-alive requests through wager's
// http_server into a CAF echo actor and back. Measure with wrk:
//   echo_node PORT SCHED_THREADS IO_THREADS &
//   wrk -t2 -c64 -d10s http://127.0.0.1:PORT/echo
// The bridge: the I/O thread anon_sends (body, responder) to the actor; the
// actor calls the responder, which posts the answer to the connection's
// strand. No per-request actor, no blocking.

#include "wager/gateway/http_server.hpp"

#include <caf/all.hpp>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wager::http_responder)

int main(int argc, char** argv) {
  uint16_t port = argc > 1 ? static_cast<uint16_t>(std::atoi(argv[1])) : 8088;
  int sched = argc > 2 ? std::atoi(argv[2]) : 2;
  int io = argc > 3 ? std::atoi(argv[3]) : 1;
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", static_cast<size_t>(sched));
  caf::actor_system sys{cfg};
  auto echo = sys.spawn([]() -> caf::behavior {
    return {[](std::string& body, wager::http_responder& w) {
      wager::http_response r;
      r.body = std::move(body);
      w(std::move(r));
    }};
  });
  wager::http_server_options o;
  o.port = port;
  o.threads = static_cast<uint32_t>(io);
  wager::http_server server{o, [echo](wager::http_request r, wager::http_responder w) {
                              caf::anon_send(echo, std::move(r.path), std::move(w));
                            }};
  auto err = server.start();
  if (!err.empty()) {
    std::cerr << err << "\n";
    return 1;
  }
  std::cout << "listening on " << server.port() << std::endl;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  sigwait(&set, &sig);
  server.stop();
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  return 0;
}
