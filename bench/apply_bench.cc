// The ways the PostgreSQL destination can write a batch of rows, side by side on one server:
// what sink/postgres/ chooses between, by batch size.
//
//   copy    the rows by COPY: new rows straight into the table (under a savepoint, as the
//           sink does), changed rows into a temporary staging table, then INSERT ... SELECT ...
//           ON CONFLICT DO UPDATE and TRUNCATE of the staging table
//   values  one multi-row INSERT ... VALUES ($1, ...), (...) ON CONFLICT DO UPDATE, the values
//           as text parameters
//
// Each batch is one destination transaction with the sink's advisory lock and progress update,
// as the sink writes it, with synchronous_commit off so that the commit's flush (the same for
// both) does not hide the statements' cost. Batches of 1 to 1000 rows of the
// benchmark's orders table, new rows and updates of existing ones; each cell runs copy,
// values, copy, values and keeps the mean of each. Prints microseconds per batch and the ratio.
//
//   apply_bench CONNINFO
#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

PGconn* conn = nullptr;

void check(PGresult* r, const char* what) {
  const auto st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_IN) {
    std::fprintf(stderr, "%s: %s", what, PQerrorMessage(conn));
    std::exit(1);
  }
  PQclear(r);
}

void exec(const std::string& sql) { check(PQexec(conn, sql.c_str()), sql.c_str()); }

void copyIn(const std::string& sql, const std::string& data) {
  check(PQexec(conn, sql.c_str()), sql.c_str());
  if (PQputCopyData(conn, data.data(), static_cast<int>(data.size())) != 1 || PQputCopyEnd(conn, nullptr) != 1) {
    std::fprintf(stderr, "COPY: %s", PQerrorMessage(conn));
    std::exit(1);
  }
  check(PQgetResult(conn), "COPY");
  while (PGresult* r = PQgetResult(conn)) PQclear(r);
}

constexpr const char* kColumns = "id, customer_id, amount, status, created_at, note";
constexpr const char* kSets =
    "customer_id = EXCLUDED.customer_id, amount = EXCLUDED.amount, status = EXCLUDED.status, "
    "created_at = EXCLUDED.created_at, note = EXCLUDED.note";

std::vector<std::string> row(long id, int round) {
  return {std::to_string(id), std::to_string(id % 5000), std::to_string(id % 100000 + round) + ".25", "paid",
          "2026-11-30 05:03:54.064127+00", "order note " + std::to_string(id)};
}

void begin() {
  exec("BEGIN");
  exec("SELECT pg_advisory_xact_lock(hashtext('tidemark.sink:bench'))");
}
void commit(long cursor) {
  exec("UPDATE progress SET cursor = " + std::to_string(cursor));
  exec("COMMIT");
}

// One batch of `k` rows from `first`, by COPY; `fresh`: rows not in the table yet.
void batchCopy(long first, int k, bool fresh, int round) {
  std::string data;
  for (long id = first; id < first + k; ++id) {
    const auto r = row(id, round);
    for (size_t i = 0; i < r.size(); ++i) {
      if (i > 0) data += '\t';
      data += r[i];
    }
    data += '\n';
  }
  if (fresh) {
    exec("SAVEPOINT tm_fresh");
    copyIn(std::string("COPY orders (") + kColumns + ") FROM STDIN", data);
    exec("RELEASE SAVEPOINT tm_fresh");
  } else {
    copyIn(std::string("COPY stage (") + kColumns + ") FROM STDIN", data);
    exec(std::string("INSERT INTO orders (") + kColumns + ") SELECT " + kColumns +
         " FROM stage ON CONFLICT (id) DO UPDATE SET " + kSets + "; TRUNCATE stage");
  }
}

// The same batch as one INSERT ... VALUES with parameters.
void batchValues(long first, int k, int round) {
  std::string sql = std::string("INSERT INTO orders (") + kColumns + ") VALUES ";
  std::vector<std::string> values;
  int n = 0;
  for (long id = first; id < first + k; ++id) {
    sql += id > first ? ", (" : "(";
    for (int c = 0; c < 6; ++c) sql += (c > 0 ? ", $" : "$") + std::to_string(++n);
    sql += ")";
    for (auto& v : row(id, round)) values.push_back(std::move(v));
  }
  sql += std::string(" ON CONFLICT (id) DO UPDATE SET ") + kSets;
  std::vector<const char*> params;
  for (const auto& v : values) params.push_back(v.c_str());
  check(PQexecParams(conn, sql.c_str(), n, nullptr, params.data(), nullptr, nullptr, 0), "INSERT ... VALUES");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: apply_bench CONNINFO\n");
    return 2;
  }
  conn = PQconnectdb(argv[1]);
  if (PQstatus(conn) != CONNECTION_OK) {
    std::fprintf(stderr, "connect: %s", PQerrorMessage(conn));
    return 1;
  }
  exec("SET synchronous_commit = off");
  exec("DROP TABLE IF EXISTS orders, progress");
  exec("CREATE TABLE orders (id bigint PRIMARY KEY, customer_id integer NOT NULL, amount numeric(12,2) NOT NULL, "
       "status text NOT NULL, created_at timestamptz NOT NULL, note text)");
  exec("CREATE TABLE progress (cursor bigint)");
  exec("INSERT INTO progress VALUES (0)");
  exec(std::string("CREATE TEMPORARY TABLE stage AS SELECT ") + kColumns + " FROM orders WITH NO DATA");

  std::printf("%-8s %6s %8s %14s %14s %8s\n", "rows", "batch", "batches", "copy us/batch", "values us/batch",
              "copy/values");
  long next_id = 1;
  long cursor = 0;
  for (const bool fresh : {true, false}) {
    for (const int k : {1, 3, 10, 30, 100, 300, 1000}) {
      const int batches = k <= 3 ? 1000 : k <= 30 ? 500 : k <= 300 ? 100 : 40;
      double total[2] = {0, 0};
      for (int round = 0; round < 4; ++round) {
        const bool copy = round % 2 == 0;
        // New rows: ids never used. Updates: the same ids each round, inserted beforehand.
        long first = next_id;
        if (!fresh && round == 0) {
          begin();
          for (int b = 0; b < batches; ++b) batchCopy(first + static_cast<long>(b) * k, k, true, 0);
          commit(++cursor);
        }
        const auto start = std::chrono::steady_clock::now();
        for (int b = 0; b < batches; ++b) {
          begin();
          const long from = first + static_cast<long>(b) * k;
          if (copy) {
            batchCopy(from, k, fresh, round + 1);
          } else {
            batchValues(from, k, round + 1);
          }
          commit(++cursor);
        }
        total[copy ? 0 : 1] += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
        if (fresh) next_id += static_cast<long>(batches) * k;
      }
      if (!fresh) next_id += 1000000;
      const double copy_us = total[0] / 2 / batches;
      const double values_us = total[1] / 2 / batches;
      std::printf("%-8s %6d %8d %14.0f %14.0f %8.2f\n", fresh ? "new" : "updated", k, batches, copy_us, values_us,
                  copy_us / values_us);
      std::fflush(stdout);
    }
  }
  PQfinish(conn);
  return 0;
}
