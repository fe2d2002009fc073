#include "pipeline/pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "config/settings.h"
#include "core/offset_store.h"
#include "log/local/local_log.h"
#include "ops/http/page.h"
#include "ops/http/server.h"
#include "pipeline/log_appender.h"
#include "pipeline/retry.h"
#include "pipeline/sink_set.h"
#include "pipeline/status.h"
#include "source/postgres/capture.h"
#include "source/postgres/position.h"
#include "source/postgres/replication.h"
#include "source/postgres/session.h"
#include "source/postgres/source_monitor.h"
#include "source/postgres/source_setup.h"
#include "state/sqlite_store.h"

namespace tidemark::pipeline {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Sleeps up to `d`, returning early (false) when a stop is requested.
bool sleepUnlessStopped(milliseconds d, const std::atomic<bool>& stop) {
  auto until = Clock::now() + d;
  while (Clock::now() < until) {
    if (stop.load()) return false;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return true;
}

// Keeps status updates going when the reading thread is blocked (a sink that takes long to
// write or fsync), so the server's wal_sender_timeout never ends the connection. It sends
// only what the session has already made durable.
class StatusFeeder {
 public:
  StatusFeeder(pg::ReplicationStream& stream, const pg::Session& session, milliseconds interval,
               const Logger& log)
      : thread_([&stream, &session, interval, log](std::stop_token stop) {
          while (!stop.stop_requested()) {
            std::this_thread::sleep_for(std::min(interval / 2, milliseconds(500)));
            if (Clock::now() - session.lastStatusAt() < interval) continue;
            try {
              stream.sendStatus(session.receivedForFeedback(), session.durableForFeedback());
            } catch (const Error& e) {
              log.debug("status update from the feedback thread failed: {}", e.what());
              return;  // the reading thread sees the broken connection too
            }
          }
        }) {}

 private:
  std::jthread thread_;
};

// The troubleshooting checks for /api/checks, run on a thread of their own: a check opens a
// database connection and may wait for a server that does not answer, and the endpoint's
// thread must keep serving /healthz and /metrics meanwhile. The first run starts with the
// pipeline; the latest document is kept, and a request for one older than kChecksEvery asks
// for a new run and gets the latest at once.
constexpr std::chrono::seconds kChecksEvery{15};

class ChecksRunner {
 public:
  explicit ChecksRunner(std::function<std::string()> checks)
      : checks_(std::move(checks)), thread_([this](std::stop_token stop) { loop(stop); }) {}

  /// The latest document (nothing before the first run ends), and a new run when it is stale.
  std::optional<std::string> latest() {
    std::lock_guard lock(mutex_);
    if (!json_ || Clock::now() - at_ >= kChecksEvery) {
      wanted_ = true;
      wake_.notify_one();
    }
    return json_;
  }

 private:
  void loop(std::stop_token stop) {
    std::unique_lock lock(mutex_);
    while (!stop.stop_requested()) {
      wake_.wait(lock, stop, [this] { return wanted_; });
      if (stop.stop_requested()) return;
      wanted_ = false;
      lock.unlock();
      std::string json;
      try {
        nlohmann::ordered_json doc = nlohmann::ordered_json::parse(checks_());
        doc["checked_at"] = isoTime(unixMicrosNow());
        json = doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
      } catch (const std::exception& e) {
        nlohmann::ordered_json doc;
        doc["error"] = fmt::format("checks failed to run: {}", e.what());
        doc["checked_at"] = isoTime(unixMicrosNow());
        doc["checks"] = nlohmann::ordered_json::array();
        json = doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
      }
      lock.lock();
      json_ = std::move(json);
      at_ = Clock::now();
    }
  }

  std::function<std::string()> checks_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  bool wanted_ = true;  // the first run starts with the pipeline
  std::optional<std::string> json_;
  Clock::time_point at_;
  std::jthread thread_;  // last: stopped and joined first
};

// The HTTP endpoint's routes, over the status board and the checks.
http::Handler routes(const StatusBoard& board, std::shared_ptr<ChecksRunner> checks) {
  return [&board, checks](const http::Request& req) -> http::Response {
    const std::string json_type = "application/json";
    if (req.path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
    if (req.path == "/readyz") {
      PipelineState st = board.state();
      return {st == PipelineState::Running ? 200 : 503, "text/plain; charset=utf-8",
              fmt::format("{}\n", stateName(st))};
    }
    if (req.path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", board.metrics()};
    if (req.path == "/api/status") return {200, json_type, board.json()};
    if (req.path == "/api/history") return {200, json_type, board.history()};
    if (req.path == "/api/checks" && checks) {
      if (auto json = checks->latest()) return {200, json_type, *json};
      return {503, "text/plain; charset=utf-8", "the checks are running; ask again in a few seconds\n"};
    }
    if (req.path == "/" || req.path == "/index.html") {
      return {200, "text/html; charset=utf-8", std::string(http::kStatusPage)};
    }
    return {404, "text/plain; charset=utf-8", "not found\n"};
  };
}

// A transaction larger than this goes to the change log in parts (LogAppender).
constexpr uint64_t kSpillBytes = 4ull << 20;

std::unique_ptr<changelog::LocalLog> openChangeLog(const config::PipelineConfig& cfg, const Logger& log) {
  changelog::LocalLog::Options options;
  options.dir = cfg.state_dir / "log";
  // Segments small enough that a log at buffer.max_bytes can give some back.
  options.segment_bytes = std::clamp<uint64_t>(cfg.buffer.max_bytes / 8, 256 << 10, 64 << 20);
  auto changes = std::make_unique<changelog::LocalLog>(options);
  if (changes->recovery().cut_bytes > 0) {
    log.warn("change log: cut back a torn tail of {} bytes in {} (left by a crash while writing); the "
             "source sends it again",
             changes->recovery().cut_bytes, changes->recovery().segment);
  }
  return changes;
}

// A log that holds records while the store holds no position was left by another run whose
// state store is gone: its records cannot be tied to a position.
void checkLogAgainstStore(const changelog::LocalLog& changes, const std::optional<state::StoredPosition>& stored) {
  if (stored || changes.endOffset() == 0) return;
  throw Error(ErrorClass::Fatal,
              fmt::format("the change log holds {} records, but the state store holds no position: the "
                          "store was removed or replaced",
                          changes.endOffset()),
              "if state.db was moved, move it back; otherwise move the state directory aside (and the "
              "sink output with it) and run again, which starts a new slot");
}

// The LSN of the last transaction end the log holds (the PostgreSQL source writes the LSN as
// its position there), or nothing when it holds none.
std::optional<Lsn> lastLsnInLog(const changelog::LocalLog& changes) {
  const std::optional<std::string>& text = changes.lastPosition();
  if (!text) return std::nullopt;
  auto lsn = Lsn::parse(*text);
  if (!lsn) {
    throw Error(ErrorClass::Fatal,
                fmt::format("change log: the last transaction end holds position \"{}\", which is not an LSN", *text),
                "the change log under state_dir was changed behind tidemark's back, or belongs to "
                "another source; move state_dir aside and run again");
  }
  return lsn;
}

// Where the source resumes: after the last transaction the log holds, which may be past the
// stored position (a crash between the log's commit and the store's save). When the log lost
// committed records (cut or damaged behind tidemark's back), from the last one it still holds,
// if the slot can still send what follows; the start-up check against the slot decides.
Lsn resumePosition(Lsn stored, uint64_t stored_log_end, const changelog::LocalLog& changes, const Logger& log) {
  const std::optional<Lsn> in_log = lastLsnInLog(changes);
  if (changes.endOffset() < stored_log_end) {
    if (!in_log) {
      throw Error(ErrorClass::PositionLost,
                  fmt::format("the change log ends at offset {} and holds no whole transaction, but held {} "
                              "records when position {} was saved: it was removed or cut",
                              changes.endOffset(), stored_log_end, stored.str()),
                  "restore the state directory from a backup; otherwise move it aside (and the sink "
                  "output with it) and run again, which starts a new slot (reload the tables to fill the gap)");
    }
    log.warn("the change log ends at offset {}, but held {} records when {} was saved: records were cut "
             "from it; reading again from {}, after the last whole transaction it holds",
             changes.endOffset(), stored_log_end, stored.str(), in_log->str());
    return *in_log;
  }
  return in_log ? std::max(*in_log, stored) : stored;
}

}  // namespace

namespace {

// One run: the state store, the change log and the sinks, which live as long as the run, and
// the source, which is connected (and reconnected after a retriable error) inside it.
class Runner {
 public:
  Runner(const config::PipelineConfig& cfg, const RunOptions& options, const std::atomic<bool>& stop)
      : cfg_(cfg),
        options_(options),
        stop_(stop),
        log_("pipeline", {{"pipeline", cfg.name}, {"slot", cfg.source.slot}}),
        store_(state::openSqliteStore(cfg.state_dir)),
        changes_(openChangeLog(cfg, log_)),
        sinks_(cfg, *changes_, *store_, log_),
        status_(cfg, [this](const std::string& json) { store_->saveStatus(json); }, log_),
        retry_(cfg.retry, std::random_device{}()) {
    std::optional<state::StoredPosition> stored = store_->load();
    // The sinks start before the source: what the log holds flows to them even while the
    // source cannot be reached.
    sinks_.start(stored, options.reset_sinks);
    checkLogAgainstStore(*changes_, stored);
    appender_.emplace(*changes_, *store_, LogAppender::Options{kSpillBytes, cfg.buffer.max_bytes, cfg.topic_prefix},
                      &sinks_);
    status_.setDelivery(&sinks_, changes_.get());
    startEndpoint();
  }

  void run() {
    for (;;) {
      // Declared outside the try so that the catch can make its whole transactions durable.
      // Only salvage() is called there, which touches the log and the store, not the
      // connections that streamOnce() owned.
      std::optional<pg::Session> session;
      try {
        streamOnce(session);
        return;
      } catch (const Error& e) {
        if (!afterError(e, session)) return;
      }
    }
  }

 private:
  void startEndpoint() {
    if (cfg_.http.listen == "off") return;
    try {
      auto checks = options_.checks ? std::make_shared<ChecksRunner>(options_.checks) : nullptr;
      endpoint_ = std::make_unique<http::Server>(cfg_.http.listen, cfg_.http.token, routes(status_, checks),
                                                 log_.with("http", cfg_.http.listen));
      log_.info("status page and metrics on http://{}:{}/", config::splitListen(cfg_.http.listen)->host,
                endpoint_->port());
    } catch (const Error& e) {
      // The endpoint is for people and monitoring; the data must flow without it.
      log_.warn("{}; running without the HTTP endpoint", e.describe());
    }
  }

  // Connects, checks where to start, and streams until a stop or --until-lsn; throws Error.
  void streamOnce(std::optional<pg::Session>& session) {
    std::optional<pg::Position> stored;
    if (std::optional<state::StoredPosition> saved = store_->load()) {
      stored = pg::decodePosition(saved->source);
      durable_ = std::max(durable_, stored->lsn);
      stored->lsn = resumePosition(stored->lsn, saved->log_end, *changes_, log_);
    }
    pg::Connection catalog = pg::Connection::open(pg::sourceOptions(cfg_.source));
    pg::ReplicationStream stream = pg::ReplicationStream::open(pg::sourceOptions(cfg_.source));
    pg::SystemInfo system = stream.identifySystem();
    pg::HeartbeatTable heartbeat = pg::ensureHeartbeatTable(catalog, cfg_, log_);
    pg::ensurePublication(catalog, cfg_, heartbeat, log_);
    pg::ensureSignalTable(catalog, cfg_, log_);
    // A stored position is checked first: another cluster, or a slot lost, says so before
    // any table does. On a first run the tables come first, so that a table that cannot be
    // captured stops tidemark before a new slot starts holding WAL.
    std::optional<pg::StartPoint> resolved;
    uint32_t rebuilds = stored ? stored->rebuilds : 0;
    bool rebuilt = false;
    if (stored) {
      try {
        resolved = pg::resolveStart(catalog, stream, system, cfg_.source, stored, log_);
      } catch (const Error& e) {
        if (e.errorClass() != ErrorClass::PositionLost || cfg_.source.snapshot_mode != "when_needed") throw;
        // Start over as a first run would, and say so loudly: the changes in the gap are gone;
        // the full read brings every row back, but not the deletes.
        log_.error("{}", e.describe());
        log_.error("source.snapshot.mode is when_needed: starting over from the slot's position (a new slot if it "
                   "is gone or invalidated) with a full snapshot of every captured table; rows deleted in the gap "
                   "stay in the destinations");
        pg::dropInvalidatedSlot(catalog, cfg_.source, log_);
        stored.reset();
        rebuilt = true;
        ++rebuilds;
      }
    }
    // Started over, the tables are taken as they are now, as on a first run: the full read
    // brings their rows whatever became of the ones captured before.
    pg::CaptureSet capture = pg::resolveCapture(
        catalog, cfg_, rebuilt ? std::vector<state::CapturedTable>{} : store_->loadCapture(), options_.accept_recreated, log_);
    if (!resolved) resolved = pg::resolveStart(catalog, stream, system, cfg_.source, stored, log_);
    const pg::StartPoint start = *resolved;

    pg::Position position{.system_identifier = system.system_identifier, .timeline = system.timeline,
                          .slot = cfg_.source.slot, .lsn = start.lsn, .cover = {}, .snapshot_pending = false,
                          .snapshot_tables = {}, .rebuilds = rebuilds, .incremental = {}};
    if (stored) {
      position.cover = stored->cover;
      position.snapshot_pending = stored->snapshot_pending;
      position.snapshot_tables = stored->snapshot_tables;
      position.incremental = stored->incremental;
    }
    // The initial snapshot: on the first run, to finish one that was interrupted, or once per
    // process with mode always.
    const bool resume = stored && stored->snapshot_pending;
    const bool always = cfg_.source.snapshot_mode == "always" && !snapshot_read_;
    const bool snapshot = cfg_.source.snapshot_mode != "never" && (!stored || resume || always);
    const std::string_view reason = rebuilt ? "position_lost" : !stored ? "initial" : "always";
    if (snapshot && resume) {
      log_.warn("the initial snapshot of an earlier run did not finish; it goes on after the last rows the "
                "change log holds");
    }
    position.snapshot_pending = position.snapshot_pending || snapshot;
    // Record the starting point before streaming, so that from now on everything in the log
    // is covered by a stored position.
    if (rebuilt) {
      appender_->restart(position.lsn.str(), pg::encodePosition(position));
    } else if (!stored) {
      appender_->commit(pg::encodePosition(position));
    }
    store_->saveCapture(capture.tables());
    auto makeSession = [&] {
      session.emplace(cfg_, options_.until_lsn, *appender_, stream, pg::makeCatalog(catalog),
                      capture.classifier([&catalog](RelationId relid) { return pg::partitionAncestors(catalog, relid); }),
                      system.dbname, position, log_, monitor_.get(),
                      [this](const pg::SessionStatus& s) { status_.report(s); });
      const std::filesystem::path signals = pg::signalDirectory(cfg_.state_dir);
      session->enableIncremental([this] { return pg::Connection::open(pg::sourceOptions(cfg_.source)); },
                                 [this, signals] { return pg::readSignalFiles(signals, log_); },
                                 [signals](const pg::Signal& s) { pg::removeSignalFile(signals, s); });
    };
    if (snapshot) {
      status_.setState(PipelineState::Running, "reading the initial snapshot");
      makeSession();
      pg::Connection reader = pg::Connection::open(pg::sourceOptions(cfg_.source));
      if (!session->snapshot(reader, capture.tables(), resume, reason, stop_)) {
        finish(core::StopReason::Requested);
        return;
      }
      snapshot_read_ = true;
    }
    if (cfg_.source.snapshot_mode == "initial_only") {
      if (!snapshot) log_.info("source.snapshot.mode is initial_only and the snapshot was read already: nothing to do");
      finish(core::StopReason::Until);
      return;
    }
    if (options_.until_lsn && start.lsn >= *options_.until_lsn) {
      log_.info("already at {}, at or beyond --until-lsn {}", start.lsn.str(), options_.until_lsn->str());
      finish(core::StopReason::Until);
      return;
    }
    watchSource(heartbeat, capture);
    stream.start(cfg_.source.slot, start.lsn, cfg_.source.publication);
    log_.info("streaming from {} (publication \"{}\")", start.lsn.str(), cfg_.source.publication);
    if (!session) makeSession();
    status_.setState(PipelineState::Running);
    if (!stall_.empty()) log_.info("the stream flows again after the stall");
    stall_.clear();
    core::StopReason why;
    {
      StatusFeeder feeder(stream, *session, cfg_.source.status_interval, log_);
      why = session->stream(stop_);
    }
    status_.report(session->status());
    finish(why);
  }

  // The source monitor, started with the first connection, and the tables it checks.
  void watchSource(const pg::HeartbeatTable& heartbeat, const pg::CaptureSet& capture) {
    if (!monitor_) {
      const bool visible =
          (cfg_.heartbeat.mode == "table" && heartbeat.published) || cfg_.heartbeat.mode == "message";
      monitor_ = std::make_unique<pg::SourceMonitor>(cfg_, visible, heartbeat.problem, log_);
      status_.setMonitor(monitor_.get());
    }
    monitor_->watchCapture(capture.tables());
  }

  // The source has stopped; at --until-lsn the run ends once every sink has all the log holds.
  void finish(core::StopReason why) {
    if (why == core::StopReason::Until) {
      status_.setState(PipelineState::Running, "reached --until-lsn; the sinks catch up");
      if (!sinks_.drain(changes_->endOffset(), stop_)) log_.info("stopped before every sink caught up");
    }
    sinks_.stop();
    status_.setState(PipelineState::Stopped,
                     why == core::StopReason::Until ? "reached --until-lsn" : "stopped by a signal");
  }

  // After an error: makes what is whole durable, then throws when the error is not retriable
  // or retry.window is over; otherwise waits before the next attempt. False when a stop was
  // requested meanwhile.
  bool afterError(const Error& e, std::optional<pg::Session>& session) {
    const bool stalled = dynamic_cast<const pg::StallError*>(&e) != nullptr;
    if (session) {
      try {
        session->salvage();
        status_.report(session->status());
        durable_ = std::max(durable_, session->durable());
      } catch (const Error& inner) {
        log_.error("{}", e.describe());
        log_.error("then could not make the change log whole: {}", inner.what());
        status_.setState(PipelineState::Failed, inner.what());
        throw;
      }
    }
    if (!e.retriable()) {
      status_.setState(PipelineState::Failed, e.what());
      throw;
    }
    std::optional<milliseconds> wait = retry_.failed(durable_, Clock::now());
    if (!wait) {
      std::string why = fmt::format("gave up after retrying for {} (retry.window) without getting past {}: {}",
                                    config::formatDuration(cfg_.retry.window), durable_.str(), e.what());
      status_.setState(PipelineState::Failed, why);
      throw Error(ErrorClass::Fatal, why, e.hint());
    }
    status_.countRetry();
    RetryStatus figures{e.what(), retry_.attempt(), retry_.sinceUnixMicros(), retry_.givesUpAtUnixMicros()};
    const std::string plan = fmt::format("attempt {}, retrying in {} ms; retrying since {}, gives up at {}",
                                         retry_.attempt(), wait->count(), isoTime(figures.since_us),
                                         isoTime(figures.gives_up_at_us));
    if (stalled) {
      log_.error("{}", e.describe());
      stall_ = e.what();
      status_.setRetrying(PipelineState::Stalled, stall_, figures);
    } else if (!stall_.empty()) {
      log_.warn("{} ({} after a stall)", e.describe(), plan);
      status_.setRetrying(PipelineState::Stalled, fmt::format("{}; reconnecting: {}", stall_, e.what()), figures);
    } else {
      log_.warn("{} ({})", e.describe(), plan);
      status_.setRetrying(PipelineState::Retrying, e.what(), figures);
    }
    if (!sleepUnlessStopped(*wait, stop_)) {
      status_.setState(PipelineState::Stopped, "stopped by a signal while retrying");
      return false;
    }
    return true;
  }

  const config::PipelineConfig& cfg_;
  const RunOptions& options_;
  const std::atomic<bool>& stop_;
  Logger log_;
  std::unique_ptr<state::OffsetStore> store_;
  std::unique_ptr<changelog::LocalLog> changes_;
  SinkSet sinks_;  // after the log and the store it reads and saves to
  StatusBoard status_;
  std::optional<LogAppender> appender_;
  std::unique_ptr<http::Server> endpoint_;
  std::unique_ptr<pg::SourceMonitor> monitor_;
  std::string stall_;  // set from a stall until the stream flows again
  RetryPolicy retry_;
  Lsn durable_;  // the furthest position made durable, for the retry window
  bool snapshot_read_ = false;  // this process read a snapshot to its end
};

}  // namespace

void run(const config::PipelineConfig& cfg, const RunOptions& options, const std::atomic<bool>& stop) {
  Runner(cfg, options, stop).run();
}

}  // namespace tidemark::pipeline
