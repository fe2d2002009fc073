// Logging: one Logger per module instance, carrying its context (pipeline, slot, sink...) so
// every line says where it comes from. Lines go to stderr, one per call, with a UTC timestamp.
//
//   Logger log("replication", {{"pipeline", "shop"}, {"slot", "tidemark_slot"}});
//   log.info("streaming from {}", lsn.str());
#pragma once

#include <fmt/format.h>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tidemark {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

/// Parses "debug", "info", "warn", "error"; returns false for anything else.
bool parseLogLevel(std::string_view text, LogLevel& out);
void setLogLevel(LogLevel level);
LogLevel logLevel();

class Logger {
 public:
  using Context = std::vector<std::pair<std::string, std::string>>;

  explicit Logger(std::string module, Context context = {});

  /// A logger for the same module with more context appended.
  Logger with(std::string key, std::string value) const;

  template <class... Args>
  void debug(fmt::format_string<Args...> fmt, Args&&... args) const {
    if (logLevel() <= LogLevel::Debug) write(LogLevel::Debug, fmt::format(fmt, std::forward<Args>(args)...));
  }
  template <class... Args>
  void info(fmt::format_string<Args...> fmt, Args&&... args) const {
    if (logLevel() <= LogLevel::Info) write(LogLevel::Info, fmt::format(fmt, std::forward<Args>(args)...));
  }
  template <class... Args>
  void warn(fmt::format_string<Args...> fmt, Args&&... args) const {
    if (logLevel() <= LogLevel::Warn) write(LogLevel::Warn, fmt::format(fmt, std::forward<Args>(args)...));
  }
  template <class... Args>
  void error(fmt::format_string<Args...> fmt, Args&&... args) const {
    write(LogLevel::Error, fmt::format(fmt, std::forward<Args>(args)...));
  }

 private:
  void write(LogLevel level, std::string_view message) const;

  std::string module_;
  Context context_;
  std::string prefix_;  // "module key=value ...", built once
};

}  // namespace tidemark
