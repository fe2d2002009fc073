#include "source/postgres/snapshot.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/error.h"

namespace tidemark::pg {

namespace {

std::string text(PGresult* r, int row, int col) { return std::string(PQgetvalue(r, row, col), PQgetlength(r, row, col)); }

}  // namespace

SnapshotStart beginSnapshot(Connection& conn, bool assign_xid) {
  conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "beginning the snapshot transaction");
  // The snapshot is taken by this first statement; the insert position is read after it, so
  // every transaction it sees committed before that position.
  Result r = conn.exec(fmt::format("SELECT pg_current_snapshot()::text, pg_current_wal_insert_lsn()::text, "
                                   "(extract(epoch FROM now()) * 1000000)::int8, {}",
                                   assign_xid ? "pg_current_xact_id()::text" : "NULL"),
                       "reading the snapshot's transactions");
  const auto through = Lsn::parse(text(r.get(), 0, 1));
  if (!through) throw Error(ErrorClass::Fatal, "pg_current_wal_insert_lsn() returned no LSN");
  SnapshotStart s;
  s.cover = SnapshotCover::parse(text(r.get(), 0, 0), *through);
  s.started_us = std::stoll(text(r.get(), 0, 2));
  if (!PQgetisnull(r.get(), 0, 3)) s.txid = std::stoull(text(r.get(), 0, 3));
  return s;
}

SnapshotRelation describeForSnapshot(Connection& conn, const state::CapturedTable& table) {
  // The columns pgoutput sends (not dropped, not generated), in order, flagged as part of the
  // replica identity as pgoutput flags them.
  Result r = conn.execParams(
      "SELECT c.relreplident::text || c.relkind::text, a.attname, a.atttypid::int8, a.atttypmod, format_type(a.atttypid, a.atttypmod), "
      "  CASE c.relreplident WHEN 'f' THEN true WHEN 'n' THEN false "
      "  ELSE coalesce(a.attnum = ANY ((SELECT i.indkey FROM pg_index i WHERE i.indrelid = c.oid AND "
      "    CASE c.relreplident WHEN 'i' THEN i.indisreplident ELSE i.indisprimary END LIMIT 1)::int2[]), false) END "
      "FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
      "WHERE c.oid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
      {std::to_string(table.relid.value)}, fmt::format("reading the columns of {}.{}", table.schema, table.table));
  const int rows = PQntuples(r.get());
  if (rows == 0) {
    throw Error(ErrorClass::Fatal,
                fmt::format("captured table {}.{} (oid {}) has no columns in the snapshot", table.schema, table.table,
                            table.relid.value),
                "it was dropped or recreated since tidemark resolved it; run again");
  }
  SnapshotRelation out;
  out.storage.reserve(static_cast<size_t>(rows) + 2);
  out.storage.push_back(table.schema);
  out.storage.push_back(table.table);
  out.message.relid = table.relid;
  out.message.nspname = out.storage[0];
  out.message.relname = out.storage[1];
  out.message.replica_identity = PQgetvalue(r.get(), 0, 0)[0];
  out.kind = PQgetvalue(r.get(), 0, 0)[1];
  std::string columns;
  for (int i = 0; i < rows; ++i) {
    out.storage.push_back(text(r.get(), i, 1));
    pgoutput::RelationColumn c;
    c.name = out.storage.back();
    c.type = static_cast<TypeOid>(std::stoul(text(r.get(), i, 2)));
    c.typmod = static_cast<int32_t>(std::stol(text(r.get(), i, 3)));
    out.types.push_back(text(r.get(), i, 4));
    c.part_of_key = text(r.get(), i, 5) == "t";
    out.message.columns.push_back(c);
    if (!columns.empty()) columns += ", ";
    columns += quoteIdentifierText(c.name);
  }
  out.select = fmt::format("SELECT {} FROM {}", columns, quoteTableText(table.schema, table.table));

  // The key to read in the order of: the primary key's columns, else the replica identity
  // index's, in the index's order.
  Result key = conn.execParams(
      "SELECT a.attname "
      "FROM (SELECT i.indkey FROM pg_index i WHERE i.indrelid = $1::oid AND (i.indisprimary OR i.indisreplident) "
      "      ORDER BY i.indisprimary DESC LIMIT 1) i "
      "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n) "
      "JOIN pg_attribute a ON a.attrelid = $1::oid AND a.attnum = k.attnum ORDER BY k.n",
      {std::to_string(table.relid.value)}, fmt::format("reading the key of {}.{}", table.schema, table.table));
  for (int i = 0; i < PQntuples(key.get()); ++i) {
    const std::string name = text(key.get(), i, 0);
    size_t at = 0;
    while (at < out.message.columns.size() && out.message.columns[at].name != name) ++at;
    if (at == out.message.columns.size()) {
      // A key column pgoutput does not send (a generated one): no order to resume by.
      out.key.clear();
      break;
    }
    out.key.push_back(at);
  }
  return out;
}

std::string SnapshotRelation::query(bool after, bool until, std::optional<std::string_view> filter,
                                    std::optional<uint64_t> limit) const {
  const std::string columns = keyColumns();
  auto values = [&](size_t first) {
    std::string out;
    for (size_t i = 0; i < key.size(); ++i) out += fmt::format("{}${}::{}", i > 0 ? ", " : "", first + i, types[key[i]]);
    return out;
  };
  std::string q = select;
  std::string where;
  size_t next = 1;
  if (after && !key.empty()) {
    where = fmt::format("({}) > ({})", columns, values(next));
    next += key.size();
  }
  if (until && !key.empty()) where += fmt::format("{}({}) <= ({})", where.empty() ? "" : " AND ", columns, values(next));
  if (filter) where += fmt::format("{}({})", where.empty() ? "" : " AND ", *filter);
  if (!where.empty()) q += " WHERE " + where;
  if (!key.empty()) q += " ORDER BY " + columns;
  if (limit) q += fmt::format(" LIMIT {}", *limit);
  return q;
}

std::string SnapshotRelation::keyColumns(std::string_view suffix) const {
  std::string out;
  for (size_t i = 0; i < key.size(); ++i) {
    out += fmt::format("{}{}{}", i > 0 ? ", " : "", quoteIdentifierText(message.columns[key[i]].name), suffix);
  }
  return out;
}

std::string SnapshotRelation::lastKeyQuery() const {
  return fmt::format("SELECT {} FROM {} ORDER BY {} LIMIT 1", keyColumns(),
                     quoteTableText(message.nspname, message.relname), keyColumns(" DESC"));
}

bool SnapshotRelation::orderBy(std::string_view name) {
  for (size_t at = 0; at < message.columns.size(); ++at) {
    if (message.columns[at].name == name) {
      key = {at};
      return true;
    }
  }
  return false;
}

std::string exportSnapshot(Connection& conn) {
  Result r = conn.exec("SELECT pg_export_snapshot()", "exporting the snapshot for the other readers");
  return text(r.get(), 0, 0);
}

void importSnapshot(Connection& conn, const std::string& exported) {
  conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "beginning a snapshot reader's transaction");
  conn.exec("SET TRANSACTION SNAPSHOT " + quoteLiteralText(exported), "importing the snapshot");
}

std::vector<std::vector<std::string>> splitKeys(Connection& conn, const SnapshotRelation& relation, size_t parts,
                                                uint64_t estimated_rows) {
  std::vector<std::vector<std::string>> out;
  if (parts < 2 || relation.key.empty()) return out;
  const std::string columns = relation.keyColumns();
  // About 200 keys per part; SYSTEM samples whole pages, so the keys come cheap and in runs.
  // Too few pages may come up (each is taken by chance): then ten times as many, up to all.
  const double wanted = 200.0 * static_cast<double>(parts);
  double percent =
      estimated_rows == 0 ? 100.0 : std::clamp(100.0 * wanted / static_cast<double>(estimated_rows), 0.001, 100.0);
  Result r;
  int sampled = 0;
  for (;;) {
    r = conn.exec(fmt::format("SELECT {} FROM {} TABLESAMPLE SYSTEM ({:.3f}) ORDER BY {}", columns,
                              quoteTableText(relation.message.nspname, relation.message.relname), percent, columns),
                  fmt::format("sampling the keys of {}.{}", relation.message.nspname, relation.message.relname));
    sampled = PQntuples(r.get());
    if (static_cast<double>(sampled) >= wanted / 2 || percent >= 100.0) break;
    percent = std::min(100.0, percent * 10);
  }
  if (static_cast<size_t>(sampled) < parts * 4) return out;  // too few to split by
  for (size_t p = 1; p < parts; ++p) {
    const int row = static_cast<int>(p * static_cast<size_t>(sampled) / parts);
    std::vector<std::string> key;
    for (int c = 0; c < PQnfields(r.get()); ++c) key.push_back(text(r.get(), row, c));
    out.push_back(std::move(key));
  }
  return out;
}

std::optional<uint64_t> estimatedRows(Connection& conn, const state::CapturedTable& table) {
  Result r = conn.execParams("SELECT reltuples::int8 FROM pg_class WHERE oid = $1::oid", {std::to_string(table.relid.value)},
                             fmt::format("estimating the rows of {}.{}", table.schema, table.table));
  if (PQntuples(r.get()) == 0) return std::nullopt;
  const long long n = std::stoll(text(r.get(), 0, 0));
  if (n < 0) return std::nullopt;  // -1: never analyzed
  return static_cast<uint64_t>(n);
}

SnapshotRow snapshotRow(PGresult* result, int row) {
  const int columns = PQnfields(result);
  SnapshotRow out;
  out.reserve(static_cast<size_t>(columns));
  for (int c = 0; c < columns; ++c) {
    if (PQgetisnull(result, row, c)) out.emplace_back(std::nullopt);
    else out.emplace_back(std::string(PQgetvalue(result, row, c), PQgetlength(result, row, c)));
  }
  return out;
}

void asTuple(const SnapshotRow& row, pgoutput::TupleData& tuple) {
  tuple.clear();
  for (const auto& v : row) {
    tuple.push_back(v ? pgoutput::TupleColumn{pgoutput::ColumnKind::Text, *v}
                      : pgoutput::TupleColumn{pgoutput::ColumnKind::Null, {}});
  }
}

SnapshotCursor::SnapshotCursor(Connection& conn, const SnapshotRelation& relation,
                               const std::optional<std::vector<std::string>>& after, uint64_t chunk,
                               const std::optional<std::vector<std::string>>& until)
    : conn_(conn), chunk_(chunk) {
  const bool resume = after && !relation.key.empty();
  const bool bounded = until && !relation.key.empty();
  if ((resume && after->size() != relation.key.size()) || (bounded && until->size() != relation.key.size())) {
    throw Error(ErrorClass::Fatal,
                fmt::format("the stored snapshot position of {}.{} has a key of {} value(s), but its key has {} "
                            "column(s) now",
                            relation.message.nspname, relation.message.relname,
                            resume && after->size() != relation.key.size() ? after->size() : until->size(),
                            relation.key.size()),
                "its key changed while the snapshot was interrupted; move state_dir aside and run again, which "
                "snapshots every table anew");
  }
  std::vector<std::optional<std::string>> params;
  if (resume) params.assign(after->begin(), after->end());
  if (bounded) params.insert(params.end(), until->begin(), until->end());
  conn_.execParams("DECLARE tm_snapshot NO SCROLL CURSOR FOR " + relation.query(resume, bounded), params,
                   fmt::format("opening a cursor on {}.{}", relation.message.nspname, relation.message.relname));
}

SnapshotCursor::~SnapshotCursor() {
  try {
    conn_.exec("CLOSE tm_snapshot", "closing the snapshot cursor");
  } catch (const Error&) {
    // The transaction failed or the connection is gone: the cursor is gone with it.
  }
}

Result SnapshotCursor::next() {
  return conn_.exec(fmt::format("FETCH FORWARD {} FROM tm_snapshot", chunk_), "reading rows of a captured table");
}

}  // namespace tidemark::pg
