// Errors that end an operation, classified so that callers (retry policy, exit codes) can act
// on the class instead of parsing text. Every message is for an operator: what happened, the
// value involved, and a hint that names the setting or command that fixes it.
#pragma once

#include <stdexcept>
#include <string>

namespace tidemark {

enum class ErrorClass {
  Config,        // bad configuration or usage; fix the file or flags (exit 1)
  Retriable,     // a connection dropped, a server restarted: trying again may succeed
  Fatal,         // trying again will not help (exit 2)
  Poison,        // one record cannot be processed; the stream itself is fine
  PositionLost,  // the source can no longer serve our position (guarantee 2, exit 3)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorClass cls, std::string message, std::string hint = {})
      : std::runtime_error(std::move(message)), class_(cls), hint_(std::move(hint)) {}

  ErrorClass errorClass() const { return class_; }
  const std::string& hint() const { return hint_; }
  bool retriable() const { return class_ == ErrorClass::Retriable; }

  /// The message followed by "Hint: ..." when there is one.
  std::string describe() const;

 private:
  ErrorClass class_;
  std::string hint_;
};

/// Process exit codes (docs/GUARANTEES.md, Exit codes).
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,
  kExitRuntime = 2,
  kExitPositionLost = 3,
};

int exitCodeFor(ErrorClass cls);

}  // namespace tidemark
