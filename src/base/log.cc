#include "base/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace tidemark {

namespace {
std::atomic<LogLevel> g_level{LogLevel::Info};

const char* levelName(LogLevel level) {
  switch (level) {
    case LogLevel::Debug:
      return "DEBUG";
    case LogLevel::Info:
      return "INFO";
    case LogLevel::Warn:
      return "WARN";
    case LogLevel::Error:
      return "ERROR";
  }
  return "?";
}
}  // namespace

bool parseLogLevel(std::string_view text, LogLevel& out) {
  if (text == "debug") out = LogLevel::Debug;
  else if (text == "info") out = LogLevel::Info;
  else if (text == "warn") out = LogLevel::Warn;
  else if (text == "error") out = LogLevel::Error;
  else return false;
  return true;
}

void setLogLevel(LogLevel level) { g_level.store(level); }
LogLevel logLevel() { return g_level.load(std::memory_order_relaxed); }

Logger::Logger(std::string module, Context context)
    : module_(std::move(module)), context_(std::move(context)) {
  prefix_ = module_;
  for (const auto& [k, v] : context_) prefix_ += fmt::format(" {}={}", k, v);
}

Logger Logger::with(std::string key, std::string value) const {
  Context c = context_;
  c.emplace_back(std::move(key), std::move(value));
  return Logger(module_, std::move(c));
}

void Logger::write(LogLevel level, std::string_view message) const {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  // One fprintf per line so concurrent writers do not interleave within a line.
  std::string line = fmt::format("{}.{:03}Z {} [{}] {}\n", ts, ms, levelName(level), prefix_, message);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace tidemark
