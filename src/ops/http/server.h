// A small HTTP/1.1 server for the operator endpoint of `tidemark run`: GET only, one request
// per connection, one thread, bounded request size and time. Enough for /healthz, /metrics and
// a status page, and nothing an attacker on the network can use to hold it up for long: a
// client that sends nothing is dropped after a couple of seconds.
//
// With a token, every request must carry `Authorization: Bearer <token>` (compared in constant
// time); the status page may also pass it as `?token=` since a browser cannot add headers to
// its first request.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "base/log.h"

namespace tidemark::http {

struct Request {
  std::string method;
  std::string path;   // without the query string
  std::string query;  // after '?', undecoded
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using Handler = std::function<Response(const Request&)>;

class Server {
 public:
  /// Binds `listen` ("host:port"). Throws Error(Config) when it is malformed or cannot be
  /// bound (the caller decides whether that stops the pipeline).
  Server(const std::string& listen, std::optional<std::string> token, Handler handler, const Logger& log);
  ~Server();

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The port actually bound (useful with port 0).
  int port() const { return port_; }

 private:
  void loop(std::stop_token stop);
  void serve(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::optional<std::string> token_;
  Handler handler_;
  Logger log_;
  std::jthread thread_;
};

/// Constant-time comparison: the time taken does not depend on where the strings differ.
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace tidemark::http
