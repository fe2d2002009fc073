#include "ops/http/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cctype>
#include <cstring>

#include <fmt/format.h>

#include "base/error.h"
#include "config/config.h"

namespace tidemark::http {

namespace {

constexpr size_t kMaxRequestBytes = 8192;
constexpr int kIoTimeoutMs = 2000;

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 400: return "Bad Request";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

// Reads until the end of the request head, within the size and time bounds.
std::optional<std::string> readHead(int fd) {
  std::string data;
  char buf[2048];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kIoTimeoutMs);
  while (data.find("\r\n\r\n") == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || data.size() > kMaxRequestBytes) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

void writeAll(int fd, std::string_view data) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kIoTimeoutMs);
  while (!data.empty()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return;
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string headerValue(std::string_view head, std::string_view name) {
  size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
    pos += 2;
    size_t end = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos && colon == name.size()) {
      bool same = true;
      for (size_t i = 0; i < colon && same; ++i) {
        same = std::tolower(static_cast<unsigned char>(line[i])) == std::tolower(static_cast<unsigned char>(name[i]));
      }
      if (same) {
        std::string_view v = line.substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        return std::string(v);
      }
    }
  }
  return {};
}

std::string queryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name && pair[name.size()] == '=') {
      return std::string(pair.substr(name.size() + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

}  // namespace

bool constantTimeEquals(std::string_view a, std::string_view b) {
  // Compare over the longer length so that neither the content nor the length of the
  // expected token shows in the timing beyond its being different.
  size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

Server::Server(const std::string& listen, std::optional<std::string> token, Handler handler,
               const Logger& log)
    : token_(std::move(token)), handler_(std::move(handler)), log_(log) {
  const auto address = config::splitListen(listen);
  if (!address) {
    throw Error(ErrorClass::Config, fmt::format("http.listen \"{}\" is not host:port", listen));
  }
  std::string host = address->host;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string& port = address->port;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    throw Error(ErrorClass::Config, fmt::format("http.listen \"{}\": {}", listen, gai_strerror(rc)));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 16) == 0) {
      listen_fd_ = fd;
      break;
    }
    last_error = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  if (listen_fd_ < 0) {
    throw Error(ErrorClass::Config, fmt::format("cannot listen on {}: {}", listen, last_error),
                "set http.listen to a free port, or http.listen: off");
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                     : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  thread_ = std::jthread([this](std::stop_token stop) { loop(stop); });
}

Server::~Server() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void Server::loop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    try {
      serve(fd);
    } catch (const std::exception& e) {
      log_.warn("http: {}", e.what());
    }
    ::close(fd);
  }
}

void Server::serve(int fd) {
  std::optional<std::string> head = readHead(fd);
  Response response;
  Request request;
  if (!head) {
    response = {400, "text/plain; charset=utf-8", "bad request\n"};
  } else {
    size_t sp1 = head->find(' ');
    size_t sp2 = sp1 == std::string::npos ? std::string::npos : head->find(' ', sp1 + 1);
    if (sp2 == std::string::npos) {
      response = {400, "text/plain; charset=utf-8", "bad request\n"};
    } else {
      request.method = head->substr(0, sp1);
      std::string target = head->substr(sp1 + 1, sp2 - sp1 - 1);
      size_t q = target.find('?');
      request.path = target.substr(0, q);
      if (q != std::string::npos) request.query = target.substr(q + 1);
      bool authorized = true;
      if (token_) {
        std::string auth = headerValue(*head, "Authorization");
        std::string presented = auth.starts_with("Bearer ") ? auth.substr(7) : queryParam(request.query, "token");
        authorized = constantTimeEquals(presented, *token_);
      }
      if (!authorized) {
        response = {401, "text/plain; charset=utf-8", "401: a valid bearer token is required (http.token)\n"};
      } else if (request.method != "GET" && request.method != "HEAD") {
        response = {405, "text/plain; charset=utf-8", "only GET\n"};
      } else {
        response = handler_(request);
      }
    }
  }
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n"
      "Connection: close\r\n{}\r\n",
      response.status, reasonPhrase(response.status), response.content_type, response.body.size(),
      response.status == 401 ? "WWW-Authenticate: Bearer\r\n" : "");
  if (request.method != "HEAD") out += response.body;
  writeAll(fd, out);
}

}  // namespace tidemark::http
