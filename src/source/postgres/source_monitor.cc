#include "source/postgres/source_monitor.h"

#include <fmt/format.h>

#include "base/clock.h"
#include "base/error.h"
#include "postgres/connection.h"

namespace tidemark::pg {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kSlotEvery{2000};
constexpr std::chrono::milliseconds kCaptureEvery{10000};
// After a failure (the source is down), before the next attempt, so that a refused connection
// does not spin.
constexpr std::chrono::milliseconds kRetryPause{1000};

std::string qualified(pg::Connection& conn, const config::TableName& t) {
  return conn.quoteIdentifier(t.schema) + "." + conn.quoteIdentifier(t.table);
}

std::optional<int64_t> int64Value(const PGresult* r, int row, int col) {
  auto v = pg::value(r, row, col);
  if (!v) return std::nullopt;
  return std::stoll(*v);
}

}  // namespace

SourceMonitor::SourceMonitor(const config::PipelineConfig& cfg, bool writes_visible,
                             std::string setup_problem, const Logger& log)
    : cfg_(cfg), writes_visible_(writes_visible), log_(log) {
  snapshot_.problem = std::move(setup_problem);
  thread_ = std::thread([this] { loop(); });
}

SourceMonitor::~SourceMonitor() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void SourceMonitor::noteCapturedChange() {
  last_captured_change_us_.store(unixMicrosNow(), std::memory_order_relaxed);
}

MonitorSnapshot SourceMonitor::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

void SourceMonitor::watchCapture(std::vector<state::CapturedTable> tables) {
  {
    std::lock_guard lock(mutex_);
    capture_ = std::move(tables);
    capture_problems_.clear();
  }
  wake_.notify_all();
}

std::vector<CaptureProblem> SourceMonitor::captureProblems() const {
  std::lock_guard lock(mutex_);
  return capture_problems_;
}

void SourceMonitor::pause(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, d, [this] { return stopping_; });
}

void SourceMonitor::beat(pg::Connection& conn, bool writes, bool reads_back) {
  const config::HeartbeatConfig& hb = cfg_.heartbeat;
  const bool table_mode = hb.mode == "table";
  std::optional<int64_t> written;
  bool idle = !hb.hibernate ||
              unixMicrosNow() - last_captured_change_us_.load(std::memory_order_relaxed) >=
                  std::chrono::duration_cast<std::chrono::microseconds>(hb.interval).count();
  if (writes && idle) {
    std::string problem;
    try {
      if (table_mode) {
        pg::Result r = conn.execParams(
            fmt::format("INSERT INTO {} (pipeline, ts) VALUES ($1, clock_timestamp()) "
                        "ON CONFLICT (pipeline) DO UPDATE SET ts = excluded.ts "
                        "RETURNING (extract(epoch FROM ts) * 1000000)::bigint",
                        qualified(conn, hb.table)),
            {cfg_.name}, "writing the heartbeat row");
        written = int64Value(r.get(), 0, 0);
      } else if (hb.mode == "message") {
        pg::Result r = conn.execParams(
            "SELECT pg_logical_emit_message(true, 'tidemark_heartbeat', "
            "json_build_object('pipeline', $1::text, 'ts_us', t.us)::text), t.us "
            "FROM (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS us) t",
            {cfg_.name}, "emitting the heartbeat message");
        written = int64Value(r.get(), 0, 1);
      } else {
        written = unixMicrosNow();
        conn.exec(hb.query, "running heartbeat.query");
      }
    } catch (const pg::ServerError& e) {
      if (e.retriable()) throw;
      problem = fmt::format("writing the Layer 2 heartbeat failed: {}{}", e.what(),
                            e.sqlstate() == "42501"
                                ? fmt::format(" (grant the user SELECT, INSERT, UPDATE on {} "
                                              "and USAGE on its schema)",
                                              hb.table.str())
                                : "");
      written.reset();
    }
    std::lock_guard lock(mutex_);
    if (problem != snapshot_.problem && !problem.empty()) log_.warn("{}", problem);
    snapshot_.problem = problem;
  } else if (reads_back) {
    std::string problem;
    try {
      pg::Result r = conn.execParams(
          fmt::format("SELECT (extract(epoch FROM ts) * 1000000)::bigint FROM {} WHERE pipeline = $1",
                      qualified(conn, hb.table)),
          {cfg_.name}, "reading the heartbeat row");
      if (PQntuples(r.get()) > 0) written = int64Value(r.get(), 0, 0);
    } catch (const pg::ServerError& e) {
      if (e.retriable()) throw;
      problem = fmt::format("reading the Layer 2 heartbeat failed: {} (the heartbeat table needs "
                            "columns pipeline text and ts timestamptz, readable by the user: "
                            "tidemark setup prints its DDL and grants)",
                            e.what());
    }
    std::lock_guard lock(mutex_);
    if (problem != snapshot_.problem && !problem.empty()) log_.warn("{}", problem);
    snapshot_.problem = problem;
  }
  if (written) {
    std::lock_guard lock(mutex_);
    if (snapshot_.last_written_us != written) {
      snapshot_.last_written_us = written;
      snapshot_.last_written_seen = Clock::now();
    }
  }
}

void SourceMonitor::sampleSlot(pg::Connection& conn) {
  pg::Result r = conn.execParams(
      "SELECT confirmed_flush_lsn::text, restart_lsn::text, "
      "pg_wal_lsn_diff(w.lsn, restart_lsn)::bigint, wal_status, safe_wal_size, active, "
      "w.lsn::text, pg_wal_lsn_diff(w.lsn, confirmed_flush_lsn)::bigint "
      "FROM pg_replication_slots, (SELECT CASE WHEN pg_is_in_recovery() THEN "
      "pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END AS lsn) w "
      "WHERE slot_name = $1",
      {cfg_.source.slot}, "reading the slot's figures");
  std::optional<SlotFigures> figures;
  if (PQntuples(r.get()) > 0) {
    SlotFigures f;
    if (auto v = pg::value(r.get(), 0, 0)) f.confirmed_flush_lsn = Lsn::parse(*v);
    if (auto v = pg::value(r.get(), 0, 1)) f.restart_lsn = Lsn::parse(*v);
    f.retained_wal_bytes = int64Value(r.get(), 0, 2);
    f.wal_status = pg::value(r.get(), 0, 3);
    f.safe_wal_size = int64Value(r.get(), 0, 4);
    f.active = pg::value(r.get(), 0, 5) == "t";
    if (auto v = pg::value(r.get(), 0, 6)) f.current_wal_lsn = Lsn::parse(*v);
    f.lag_bytes = int64Value(r.get(), 0, 7);
    f.checked_at_us = unixMicrosNow();
    figures = f;
  }
  std::lock_guard lock(mutex_);
  snapshot_.slot = figures;
}

void SourceMonitor::checkCapture(pg::Connection& conn, const std::vector<state::CapturedTable>& capture) {
  std::vector<CaptureProblem> problems = judgeCapture(readCaptureFacts(conn, cfg_, capture), cfg_);
  for (const auto& p : problems) {
    log_.error("{} (found by the check of the captured tables)", p.what);
  }
  std::lock_guard lock(mutex_);
  // Only for the capture still watched: the session may have moved on meanwhile.
  if (capture_ == capture) capture_problems_ = std::move(problems);
}

void SourceMonitor::loop() {
  const config::HeartbeatConfig& hb = cfg_.heartbeat;
  const std::string setup_problem = snapshot().problem;
  const bool table_mode = hb.mode == "table";
  // In read-only mode nothing is written; a table that comes through the stream is read back.
  const bool writes = !cfg_.source.read_only && hb.mode != "off" && setup_problem.empty();
  const bool reads_back = cfg_.source.read_only && table_mode && writes_visible_;

  std::unique_ptr<pg::Connection> conn;
  std::string last_error;
  Clock::time_point next_beat = Clock::now();
  Clock::time_point next_slot = Clock::now();
  Clock::time_point next_capture = Clock::now();
  const auto capture_every = std::min<std::chrono::milliseconds>(hb.interval, kCaptureEvery);
  std::optional<std::vector<state::CapturedTable>> checked;  // the capture last checked

  for (;;) {
    std::optional<std::vector<state::CapturedTable>> capture;
    {
      std::unique_lock lock(mutex_);
      auto next = std::min({next_beat, next_slot, next_capture});
      // A new capture to watch is checked at once.
      if (wake_.wait_until(lock, next, [&] { return stopping_ || capture_ != checked; })) {
        if (stopping_) return;
      }
      capture = capture_;
    }
    const bool new_capture = capture != checked;
    checked = capture;
    try {
      if (!conn) {
        conn = std::make_unique<pg::Connection>(
            pg::Connection::open(pg::sourceOptions(cfg_.source, "tidemark-monitor")));
        // Heartbeats must never wait long on a lock behind the application's writes.
        conn->exec("SET statement_timeout = '10s'", "setting statement_timeout");
      }
      auto now = Clock::now();
      if (now >= next_beat) {
        next_beat = now + cfg_.heartbeat.interval;
        beat(*conn, writes, reads_back);
      }
      if (now >= next_slot) {
        next_slot = now + kSlotEvery;
        sampleSlot(*conn);
      }
      if (capture && (now >= next_capture || new_capture)) {
        next_capture = now + capture_every;
        checkCapture(*conn, *capture);
      }
      last_error.clear();
    } catch (const Error& e) {
      // The monitor never stops the pipeline; it reports and tries again on its next turn.
      if (e.describe() != last_error) log_.warn("source monitor: {}", e.describe());
      last_error = e.describe();
      conn.reset();
      pause(kRetryPause);
    } catch (const std::exception& e) {
      if (e.what() != last_error) log_.warn("source monitor: {}", e.what());
      last_error = e.what();
      conn.reset();
      pause(kRetryPause);
    }
  }
}

}  // namespace tidemark::pg
