// libpq, wrapped, for every connection tidemark makes to PostgreSQL (the source, a destination,
// the tools): RAII for PGconn and PGresult, connection set-up that never prints a
// password, and errors classified by what retrying could do (a refused connection may be
// retried; a wrong password or a missing privilege will not fix itself).
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "config/config.h"

namespace tidemark::pg {

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, PgResultDeleter>;

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};

struct ConnectOptions {
  std::string dsn;                       // libpq conninfo or URI
  std::optional<std::string> password;   // overrides the dsn's
  bool replication = false;              // replication=database (walsender)
  std::chrono::milliseconds connect_timeout{10000};
  std::string application_name = "tidemark";
  std::string what = "source";           // names the connection in errors ("source", "catalog")
  /// The settings that hold the dsn and the password, named in hints.
  std::string dsn_setting = "source.dsn";
  std::string password_setting = "source.password / source.password_file";  // empty: none
};

/// Options for connecting to a pipeline's source: its dsn, password and connect timeout.
ConnectOptions sourceOptions(const config::SourceConfig& source, std::string application_name = "tidemark");
/// Options for connecting to a postgres sink's database (sinks[].dsn).
ConnectOptions destinationOptions(const config::SinkConfig& sink, std::string application_name);

/// A server error, with its SQLSTATE when there is one.
class ServerError : public Error {
 public:
  ServerError(ErrorClass cls, std::string message, std::string sqlstate, std::string hint = {})
      : Error(cls, std::move(message), std::move(hint)), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string sqlstate_;
};

class Connection {
 public:
  /// Connects, forcing the session settings tidemark's value parsing relies on (DateStyle,
  /// IntervalStyle, TimeZone, bytea_output, extra_float_digits) and client_encoding UTF8.
  /// Throws ServerError.
  static Connection open(const ConnectOptions& options);

  PGconn* raw() const { return conn_.get(); }

  /// Runs one statement (simple query protocol) and returns its result; throws ServerError
  /// on failure. `what` describes the statement for the error message.
  Result exec(const std::string& sql, std::string_view what);
  /// Same, with text parameters ($1, $2...).
  Result execParams(const std::string& sql, const std::vector<std::optional<std::string>>& params,
                    std::string_view what);

  /// Quotes an identifier ("My Table") for SQL text.
  std::string quoteIdentifier(std::string_view ident) const;
  /// Quotes a literal ('it''s') for SQL text.
  std::string quoteLiteral(std::string_view value) const;

  /// Server version as PQserverVersion gives it (150004).
  int serverVersion() const { return PQserverVersion(conn_.get()); }

  /// The error message libpq holds for this connection, trimmed.
  std::string lastError() const;

 private:
  explicit Connection(PGconn* c) : conn_(c) {}
  /// Returns `r` if it succeeded; otherwise throws ServerError (retriable if the connection
  /// is gone).
  Result checked(Result r, std::string_view what) const;
  std::unique_ptr<PGconn, PgConnDeleter> conn_;
};

/// Builds a ServerError from a failed result: class from the SQLSTATE, message with the
/// primary text, detail and hint from the server.
ServerError errorFromResult(const PGresult* result, std::string_view what);

/// An identifier always double-quoted, quotes doubled ("My ""Table"""), for SQL printed
/// without a connection (tidemark setup). Valid for UTF-8 server encodings.
std::string quoteIdentifierText(std::string_view ident);
/// A string literal, quotes doubled ('it''s'); standard_conforming_strings is on by default.
std::string quoteLiteralText(std::string_view value);
/// "schema"."table".
std::string quoteTableText(std::string_view schema, std::string_view table);

/// Rows of a result as optional strings, for small catalog queries.
std::optional<std::string> value(const PGresult* r, int row, int col);

}  // namespace tidemark::pg
