// The `sinks` check: can each destination take events? For jsonl that is a directory tidemark
// may create files in; proven by creating and removing one probe file, as permissions, a
// read-only mount or a full quota only show when writing. For postgres, a database tidemark can
// connect to and create its schemas and tables in (or whose tables exist already), read only.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "ops/check/check.h"
#include "postgres/connection.h"

namespace tidemark::check {

namespace {

struct Probe {
  bool ok = false;
  std::string saw;
  std::string fix;
};

Probe probeDirectory(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) {
      return {false, fmt::format("{} is not a directory", dir.string()),
              fmt::format("point the sink's path at a directory, or move {} away", dir.string())};
    }
    const fs::path probe = dir / fmt::format(".tidemark-check-{}", ::getpid());
    int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      return {false, fmt::format("cannot create a file in {}: {}", dir.string(), std::strerror(errno)),
              fmt::format("give the user tidemark runs as write access to {} (chown/chmod), or "
                          "point the sink's path elsewhere",
                          dir.string())};
    }
    const char byte = '\n';
    const bool wrote = ::write(fd, &byte, 1) == 1;
    const int write_errno = errno;
    ::close(fd);
    ::unlink(probe.c_str());
    if (!wrote) {
      return {false, fmt::format("cannot write to {}: {}", dir.string(), std::strerror(write_errno)),
              fmt::format("free space on the file system of {}", dir.string())};
    }
    return {true, fmt::format("{} is writable", dir.string()), {}};
  }
  // Missing: tidemark run creates it. It can if the nearest existing ancestor lets it.
  fs::path ancestor = dir.parent_path();
  while (!ancestor.empty() && !fs::exists(ancestor, ec)) {
    if (ancestor == ancestor.parent_path()) break;
    ancestor = ancestor.parent_path();
  }
  if (ancestor.empty()) ancestor = ".";
  if (!fs::is_directory(ancestor, ec)) {
    return {false, fmt::format("{} does not exist and {} is not a directory", dir.string(), ancestor.string()),
            "point the sink's path at a directory"};
  }
  if (::access(ancestor.c_str(), W_OK | X_OK) != 0) {
    return {false,
            fmt::format("{} does not exist, and it cannot be created in {}: {}", dir.string(),
                        ancestor.string(), std::strerror(errno)),
            fmt::format("mkdir -p {} as a user who may, and give the user tidemark runs as write "
                        "access to it",
                        dir.string())};
  }
  return {true, fmt::format("{} does not exist yet; tidemark run creates it in {}", dir.string(),
                            ancestor.string()),
          {}};
}

// A PostgreSQL destination: reachable, and the user may create what the sink creates (its
// schema tidemark, and the target tables) or they exist already. Reads only.
Probe probeDatabase(const config::SinkConfig& sink) {
  try {
    pg::Connection c = pg::Connection::open(pg::destinationOptions(sink, "tidemark check"));
    pg::Result r = c.exec(
        "SELECT current_user, current_database(), has_database_privilege(current_database(), 'CREATE'), "
        "to_regclass('tidemark.sink_progress') IS NOT NULL",
        "reading the destination's privileges");
    const std::string user = PQgetvalue(r.get(), 0, 0);
    const std::string db = PQgetvalue(r.get(), 0, 1);
    const bool create = std::string_view(PQgetvalue(r.get(), 0, 2)) == "t";
    const bool progress = std::string_view(PQgetvalue(r.get(), 0, 3)) == "t";
    if (!create && !progress) {
      return {false,
              fmt::format("database {} as {}: may not create schemas, and tidemark.sink_progress does not exist", db,
                          user),
              fmt::format("GRANT CREATE ON DATABASE {} TO {} (at the destination), or create schema tidemark and "
                          "the target tables for it",
                          pg::quoteIdentifierText(db), pg::quoteIdentifierText(user))};
    }
    return {true,
            fmt::format("database {} as {}, {}", db, user,
                        progress ? "tidemark.sink_progress exists" : "may create its schemas and tables"),
            {}};
  } catch (const Error& e) {
    return {false, e.what(), e.hint().empty() ? "check sinks[].dsn" : e.hint()};
  }
}

}  // namespace

CheckResult checkSinks(const std::vector<config::SinkConfig>& sinks) {
  CheckResult r{"sinks", "sinks", Outcome::Pass, "", ""};
  for (const auto& sink : sinks) {
    std::string saw;
    if (sink.kind == "jsonl") {
      Probe p = probeDirectory(sink.path);
      saw = fmt::format("{} (jsonl): {}", sink.name, p.saw);
      if (!p.ok) {
        r.outcome = Outcome::Fail;
        r.fix += (r.fix.empty() ? "" : "; ") + fmt::format("{}: {}", sink.name, p.fix);
      }
    } else if (sink.kind == "stdout") {
      saw = fmt::format("{} (stdout): standard output", sink.name);
    } else if (sink.kind == "postgres") {
      Probe p = probeDatabase(sink);
      saw = fmt::format("{} (postgres): {}", sink.name, p.saw);
      if (!p.ok) {
        r.outcome = Outcome::Fail;
        r.fix += (r.fix.empty() ? "" : "; ") + fmt::format("{}: {}", sink.name, p.fix);
      }
    } else {
      saw = fmt::format("{} ({}): not checked, an unknown kind", sink.name, sink.kind);
      r.outcome = Outcome::Fail;
      r.fix += (r.fix.empty() ? "" : "; ") + fmt::format("{}: use kind jsonl, stdout or postgres", sink.name);
    }
    r.saw += (r.saw.empty() ? "" : "; ") + saw;
  }
  if (sinks.empty()) {
    r.outcome = Outcome::Fail;
    r.saw = "no sinks configured";
    r.fix = "add at least one entry under sinks:";
  }
  return r;
}

}  // namespace tidemark::check
