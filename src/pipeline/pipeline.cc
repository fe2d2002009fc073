#include "pipeline/pipeline.h"

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/log.h"
#include "pg/replication.h"
#include "pipeline/session.h"
#include "pipeline/source_setup.h"
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

}  // namespace

void run(const config::PipelineConfig& cfg, const RunOptions& options, const std::atomic<bool>& stop) {
  Logger log("pipeline", {{"pipeline", cfg.name}, {"slot", cfg.source.slot}});
  std::unique_ptr<state::OffsetStore> store = state::openSqliteStore(cfg.state_dir);
  std::vector<std::unique_ptr<sinks::Sink>> sinks;
  for (const auto& s : cfg.sinks) sinks.push_back(sinks::makeSink(s));
  Delivery delivery(std::move(sinks), *store);
  bool recovered = false;

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
      ensurePublication(catalog, cfg.source, log);
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
        return;
      }
      stream.start(cfg.source.slot, start.lsn, cfg.source.publication);
      log.info("streaming from {} (publication \"{}\")", start.lsn.str(), cfg.source.publication);
      session.emplace(cfg, options, delivery, stream, makeCatalog(catalog), system.dbname, position, log);
      session->stream(stop);
      return;
    } catch (const Error& e) {
      bool retry = e.retriable() && attempt < kMaxAttempts;
      if (session) {
        try {
          session->salvage();
        } catch (const Error& inner) {
          log.error("{}", e.describe());
          log.error("then could not make the transactions already written durable: {}", inner.what());
          throw;
        }
      }
      if (!retry) throw;
      log.warn("{} (attempt {} of {}; retrying in {} ms)", e.describe(), attempt, kMaxAttempts,
               backoff.count());
      if (!sleepUnlessStopped(backoff, stop)) return;
      backoff = std::min(backoff * 2, milliseconds(30000));
    }
  }
}

}  // namespace tidemark::pipeline
