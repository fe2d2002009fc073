#include "postgres/connection.h"

#include <fmt/format.h>

namespace tidemark::pg {

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// SQLSTATE classes that retrying can fix: connection exceptions (08), insufficient
// resources (53), operator intervention such as a shutdown (57), system errors (58), and
// serialization/deadlock (40).
ErrorClass classifySqlState(std::string_view state) {
  if (state.size() != 5) return ErrorClass::Fatal;
  std::string_view cls = state.substr(0, 2);
  if (cls == "08" || cls == "53" || cls == "57" || cls == "58" || cls == "40") {
    return ErrorClass::Retriable;
  }
  return ErrorClass::Fatal;
}

}  // namespace

ConnectOptions sourceOptions(const config::SourceConfig& source, std::string application_name) {
  ConnectOptions o;
  o.dsn = source.dsn;
  o.password = source.password;
  o.connect_timeout = source.connect_timeout;
  o.application_name = std::move(application_name);
  o.what = "source";
  return o;
}

ConnectOptions destinationOptions(const config::SinkConfig& sink, std::string application_name) {
  ConnectOptions o;
  o.dsn = sink.dsn;
  o.what = fmt::format("destination (sink \"{}\")", sink.name);
  o.application_name = std::move(application_name);
  o.dsn_setting = "sinks[].dsn";
  o.password_setting.clear();
  return o;
}

Connection Connection::open(const ConnectOptions& options) {
  // The dsn goes in as "dbname" with expand_dbname, so a conninfo string or a URI both work;
  // keywords after it override what the dsn says.
  std::vector<const char*> keys;
  std::vector<const char*> values;
  std::string timeout = std::to_string(
      std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(options.connect_timeout).count()));
  keys.push_back("dbname");
  values.push_back(options.dsn.c_str());
  if (options.password) {
    keys.push_back("password");
    values.push_back(options.password->c_str());
  }
  if (options.replication) {
    keys.push_back("replication");
    values.push_back("database");
  }
  keys.push_back("connect_timeout");
  values.push_back(timeout.c_str());
  keys.push_back("application_name");
  values.push_back(options.application_name.c_str());
  // Whatever the dsn or PGCLIENTENCODING say: the server then converts every text value (and
  // every name) of a database in another encoding to UTF-8, the only encoding of JSON. A
  // SQL_ASCII database is not converted (see source.invalid_utf8).
  keys.push_back("client_encoding");
  values.push_back("UTF8");
  // Fixes the text forms of dates, intervals, bytea and floats whatever the server's defaults,
  // so value rendering parses one known form (source/postgres/values.h).
  keys.push_back("options");
  values.push_back(
      "-c DateStyle=ISO -c IntervalStyle=iso_8601 -c TimeZone=UTC -c bytea_output=hex "
      "-c extra_float_digits=3");
  keys.push_back(nullptr);
  values.push_back(nullptr);

  PGconn* raw = PQconnectdbParams(keys.data(), values.data(), 1);
  if (raw == nullptr) throw Error(ErrorClass::Fatal, "libpq could not allocate a connection");
  Connection conn(raw);
  if (PQstatus(raw) != CONNECTION_OK) {
    // libpq's messages never contain the password; they name host, port and user.
    std::string msg = conn.lastError();
    bool auth = msg.find("password authentication failed") != std::string::npos ||
                msg.find("no password supplied") != std::string::npos ||
                msg.find("authentication failed") != std::string::npos ||
                msg.find("no pg_hba.conf entry") != std::string::npos;
    bool missing_db = msg.find("does not exist") != std::string::npos;
    const std::string credentials =
        options.password_setting.empty()
            ? options.dsn_setting
            : fmt::format("{} (or {})", options.dsn_setting, options.password_setting);
    if (auth) {
      throw Error(ErrorClass::Fatal,
                  fmt::format("cannot connect to the {} database: {}", options.what, msg),
                  options.replication
                      ? fmt::format("check the user and password in {}, and that pg_hba.conf has a line "
                                    "allowing this user to connect for replication",
                                    credentials)
                      : fmt::format("check the user and password in {}", credentials));
    }
    if (missing_db) {
      throw Error(ErrorClass::Fatal,
                  fmt::format("cannot connect to the {} database: {}", options.what, msg),
                  fmt::format("check dbname and user in {}", options.dsn_setting));
    }
    throw Error(ErrorClass::Retriable,
                fmt::format("cannot connect to the {} database: {}", options.what, msg),
                fmt::format("check that the server is running and reachable at the host and port in {}",
                            options.dsn_setting));
  }
  // A SQL_ASCII database's text is neither converted nor checked when stored, but the server
  // checks what it sends a UTF8 client and ends the stream at the first byte that is not
  // UTF-8, with no word of which row. Taken as stored, tidemark decides, naming the row
  // (source.invalid_utf8).
  const char* server_encoding = PQparameterStatus(raw, "server_encoding");
  if (server_encoding != nullptr && std::string_view(server_encoding) == "SQL_ASCII" &&
      PQsetClientEncoding(raw, "SQL_ASCII") != 0) {
    throw Error(ErrorClass::Retriable,
                fmt::format("cannot set client_encoding on the {} connection: {}", options.what,
                            conn.lastError()));
  }
  return conn;
}

std::string Connection::lastError() const { return trim(PQerrorMessage(conn_.get())); }

Result Connection::exec(const std::string& sql, std::string_view what) {
  return checked(Result(PQexec(conn_.get(), sql.c_str())), what);
}

Result Connection::checked(Result r, std::string_view what) const {
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
  if (!r || PQstatus(conn_.get()) != CONNECTION_OK) {
    throw ServerError(ErrorClass::Retriable,
                      fmt::format("{} failed: connection lost: {}", what, lastError()), "");
  }
  throw errorFromResult(r.get(), what);
}

Result Connection::execParams(const std::string& sql,
                              const std::vector<std::optional<std::string>>& params,
                              std::string_view what) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return checked(Result(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()),
                                     nullptr, values.data(), nullptr, nullptr, 0)),
                 what);
}

std::string Connection::quoteIdentifier(std::string_view ident) const {
  std::unique_ptr<char, decltype(&PQfreemem)> q(
      PQescapeIdentifier(conn_.get(), ident.data(), ident.size()), &PQfreemem);
  if (!q) throw Error(ErrorClass::Fatal, fmt::format("cannot quote identifier: {}", lastError()));
  return q.get();
}

std::string Connection::quoteLiteral(std::string_view value) const {
  std::unique_ptr<char, decltype(&PQfreemem)> q(
      PQescapeLiteral(conn_.get(), value.data(), value.size()), &PQfreemem);
  if (!q) throw Error(ErrorClass::Fatal, fmt::format("cannot quote literal: {}", lastError()));
  return q.get();
}

ServerError errorFromResult(const PGresult* result, std::string_view what) {
  auto field = [&](int code) -> std::string {
    const char* v = PQresultErrorField(result, code);
    return v ? v : "";
  };
  std::string sqlstate = field(PG_DIAG_SQLSTATE);
  std::string message = field(PG_DIAG_MESSAGE_PRIMARY);
  if (message.empty()) message = trim(PQresultErrorMessage(result));
  std::string detail = field(PG_DIAG_MESSAGE_DETAIL);
  std::string text = fmt::format("{} failed: {}", what, message);
  if (!sqlstate.empty()) text += fmt::format(" (SQLSTATE {})", sqlstate);
  if (!detail.empty()) text += fmt::format("; {}", detail);
  return ServerError(classifySqlState(sqlstate), std::move(text), sqlstate, field(PG_DIAG_MESSAGE_HINT));
}

std::string quoteIdentifierText(std::string_view ident) {
  std::string out = "\"";
  for (char c : ident) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string quoteLiteralText(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

std::string quoteTableText(std::string_view schema, std::string_view table) {
  return quoteIdentifierText(schema) + "." + quoteIdentifierText(table);
}

std::optional<std::string> value(const PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return std::nullopt;
  return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
}

}  // namespace tidemark::pg
