#include "pipeline/pipeline.h"

#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "common/log.h"
#include "pg/replication.h"
#include "pipeline/session.h"
#include "pipeline/source_monitor.h"
#include "pipeline/source_setup.h"
#include "pipeline/status.h"
#include "sinks/sink.h"
#include "state/offset_store.h"

namespace tidemark::pipeline {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

pg::ConnectOptions connectOptions(const config::SourceConfig& src) {
  pg::ConnectOptions o;
  o.dsn = src.dsn;
  o.password = src.password;
  o.connect_timeout = src.connect_timeout;
  o.what = "source";
  return o;
}

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
  StatusFeeder(pg::ReplicationStream& stream, const Session& session, milliseconds interval,
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

// The run's state as `tidemark status` shows it, saved on every change and with the
// session's reports.
class StatusKeeper {
 public:
  StatusKeeper(const config::PipelineConfig& cfg, state::OffsetStore& store, const Logger& log)
      : cfg_(cfg), store_(store), log_(log) {}

  void setMonitor(SourceMonitor* monitor) { monitor_ = monitor; }

  void set(PipelineState state, std::string reason = {}) {
    state_ = state;
    reason_ = std::move(reason);
    save();
  }

  void report(const SessionStatus& session) {
    session_ = session;
    save();
  }

 private:
  void save() {
    StatusInput in;
    in.state = state_;
    in.reason = reason_;
    if (state_ != PipelineState::Stopped && state_ != PipelineState::Failed) in.pid = ::getpid();
    in.session = session_;
    if (monitor_ != nullptr) last_monitor_ = monitor_->snapshot();
    in.monitor = last_monitor_;
    in.now_us = unixMicrosNow();
    try {
      store_.saveStatus(renderStatus(cfg_, in));
    } catch (const Error& e) {
      // The status is for people; failing to save it must not stop the data.
      log_.warn("could not save the status: {}", e.what());
    }
  }

  const config::PipelineConfig& cfg_;
  state::OffsetStore& store_;
  Logger log_;
  SourceMonitor* monitor_ = nullptr;
  MonitorSnapshot last_monitor_;
  PipelineState state_ = PipelineState::Running;
  std::string reason_;
  SessionStatus session_;
};

}  // namespace

void run(const config::PipelineConfig& cfg, const RunOptions& options, const std::atomic<bool>& stop) {
  Logger log("pipeline", {{"pipeline", cfg.name}, {"slot", cfg.source.slot}});
  std::unique_ptr<state::OffsetStore> store = state::openSqliteStore(cfg.state_dir);
  std::vector<std::unique_ptr<sinks::Sink>> sinks;
  for (const auto& s : cfg.sinks) sinks.push_back(sinks::makeSink(s));
  Delivery delivery(std::move(sinks), *store);
  StatusKeeper status(cfg, *store, log);
  std::unique_ptr<SourceMonitor> monitor;
  bool recovered = false;
  // Set from a stall until the stream flows again: the retries in between are part of it.
  std::string stall;

  constexpr int kMaxAttempts = 6;
  milliseconds backoff(500);
  for (int attempt = 1;; ++attempt) {
    // Declared outside the try so that the catch can make its whole transactions durable.
    // Only salvage() is called there, which touches the sinks and the store, not the
    // connections that the try block owned.
    std::optional<Session> session;
    try {
      std::optional<state::StoredPosition> stored = store->load();
      pg::Connection catalog = pg::Connection::open(connectOptions(cfg.source));
      pg::ReplicationStream stream = pg::ReplicationStream::open(connectOptions(cfg.source));
      pg::SystemInfo system = stream.identifySystem();
      HeartbeatTable heartbeat = ensureHeartbeatTable(catalog, cfg, log);
      ensurePublication(catalog, cfg, heartbeat, log);
      StartPoint start = resolveStart(catalog, stream, system, cfg.source, stored, log);

      state::StoredPosition position;
      position.system_identifier = system.system_identifier;
      position.timeline = system.timeline;
      position.slot = cfg.source.slot;
      position.lsn = start.lsn;
      if (!recovered) {
        delivery.recover(stored);
        recovered = true;
      }
      if (!stored) {
        // Record the starting point before streaming, so that from now on every file the
        // sinks write is covered by a stored checkpoint.
        delivery.makeDurable(position);
      }

      if (options.until_lsn && start.lsn >= *options.until_lsn) {
        log.info("already at {}, at or beyond --until-lsn {}", start.lsn.str(), options.until_lsn->str());
        status.set(PipelineState::Stopped, "reached --until-lsn");
        return;
      }
      if (!monitor) {
        bool visible = (cfg.heartbeat.mode == "table" && heartbeat.published) ||
                       cfg.heartbeat.mode == "message";
        monitor = std::make_unique<SourceMonitor>(cfg, visible, heartbeat.problem, log);
        status.setMonitor(monitor.get());
      }
      stream.start(cfg.source.slot, start.lsn, cfg.source.publication);
      log.info("streaming from {} (publication \"{}\")", start.lsn.str(), cfg.source.publication);
      session.emplace(cfg, options, delivery, stream, makeCatalog(catalog), system.dbname, position, log,
                      monitor.get(), [&status](const SessionStatus& s) { status.report(s); });
      status.set(PipelineState::Running);
      if (!stall.empty()) log.info("the stream flows again after the stall");
      stall.clear();
      attempt = 1;
      backoff = milliseconds(500);
      StopReason why;
      {
        StatusFeeder feeder(stream, *session, cfg.source.status_interval, log);
        why = session->stream(stop);
      }
      status.report(session->status());
      status.set(PipelineState::Stopped,
                 why == StopReason::UntilLsn ? "reached --until-lsn" : "stopped by a signal");
      return;
    } catch (const Error& e) {
      bool stalled = dynamic_cast<const StallError*>(&e) != nullptr;
      bool retry = e.retriable() && attempt < kMaxAttempts;
      if (session) {
        try {
          session->salvage();
          status.report(session->status());
        } catch (const Error& inner) {
          log.error("{}", e.describe());
          log.error("then could not make the transactions already written durable: {}", inner.what());
          status.set(PipelineState::Failed, inner.what());
          throw;
        }
      }
      if (!retry) {
        status.set(PipelineState::Failed, e.what());
        throw;
      }
      if (stalled) {
        log.error("{}", e.describe());
        stall = e.what();
        status.set(PipelineState::Stalled, stall);
      } else if (!stall.empty()) {
        log.warn("{} (attempt {} of {} after a stall; retrying in {} ms)", e.describe(), attempt,
                 kMaxAttempts, backoff.count());
        status.set(PipelineState::Stalled, fmt::format("{}; reconnecting: {}", stall, e.what()));
      } else {
        log.warn("{} (attempt {} of {}; retrying in {} ms)", e.describe(), attempt, kMaxAttempts,
                 backoff.count());
        status.set(PipelineState::Retrying, e.what());
      }
      if (!sleepUnlessStopped(backoff, stop)) {
        status.set(PipelineState::Stopped, "stopped by a signal while retrying");
        return;
      }
      backoff = std::min(backoff * 2, milliseconds(30000));
    }
  }
}

}  // namespace tidemark::pipeline
