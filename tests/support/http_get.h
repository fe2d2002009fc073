// A minimal HTTP/1.1 GET for tests of tidemark's endpoint, over a loopback TCP connection.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace tidemark::test {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

/// GET http://127.0.0.1:<port><path>, with extra request headers. Throws std::runtime_error
/// when the connection fails.
HttpReply httpGet(int port, const std::string& path,
                  const std::map<std::string, std::string>& headers = {});

}  // namespace tidemark::test
