#include "pipeline/pipeline.h"

#include <chrono>
#include <memory>
#include <thread>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "common/log.h"
#include "events/envelope.h"
#include "events/relations.h"
#include "pg/replication.h"
#include "pgoutput/decoder.h"
#include "pipeline/source_setup.h"
#include "sinks/sink.h"
#include "state/offset_store.h"

namespace tidemark::pipeline {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// The sinks, the state store, and the position they have reached together.
class Delivery {
 public:
  Delivery(const config::PipelineConfig& cfg, state::OffsetStore& store)
      : store_(store) {
    for (const auto& s : cfg.sinks) sinks_.push_back(sinks::makeSink(s));
  }

  void recover(const std::optional<state::StoredPosition>& stored) {
    for (auto& s : sinks_) {
      std::optional<std::string> cp;
      if (stored) {
        auto it = stored->sinks.find(s->name());
        // A sink added since the last run has no checkpoint: keep what its files hold.
        if (it != stored->sinks.end()) cp = it->second;
      }
      s->recover(cp);
    }
  }

  void write(const events::Event& e) {
    for (auto& s : sinks_) s->write(e);
  }
  void markTransactionEnd() {
    for (auto& s : sinks_) s->markTransactionEnd();
  }
  void rollbackToMark() {
    for (auto& s : sinks_) s->rollbackToMark();
  }
  uint64_t pendingBytes() const {
    uint64_t n = 0;
    for (const auto& s : sinks_) n += s->pendingBytes();
    return n;
  }

  /// Flushes every sink, then saves `position` with their checkpoints. After it returns,
  /// `position.lsn` may be confirmed to the server.
  void makeDurable(state::StoredPosition position) {
    for (auto& s : sinks_) s->flush();
    for (const auto& s : sinks_) position.sinks[s->name()] = s->checkpoint();
    store_.save(position);
  }

 private:
  state::OffsetStore& store_;
  std::vector<std::unique_ptr<sinks::Sink>> sinks_;
};

enum class StopReason { None, Requested, UntilLsn, StreamEnded };

// One connection's worth of streaming. Returns why it stopped; throws on errors.
class Session {
 public:
  Session(const config::PipelineConfig& cfg, const RunOptions& options, Delivery& delivery,
          pg::ReplicationStream& stream, pg::Connection& catalog, const std::string& db,
          state::StoredPosition position, const Logger& log)
      : cfg_(cfg),
        options_(options),
        delivery_(delivery),
        stream_(stream),
        relations_(cfg.topic_prefix, makeCatalog(catalog),
                   [&cfg](std::string_view schema, std::string_view table) {
                     for (const auto& t : cfg.source.tables) {
                       if (t.schema == schema && t.table == table) return true;
                     }
                     return false;
                   }),
        builder_(cfg.topic_prefix, db),
        position_(std::move(position)),
        log_(log) {
    durable_ = pending_ = received_ = position_.lsn;
  }

  StopReason stream(const std::atomic<bool>& stop) {
    last_status_ = Clock::now();
    for (;;) {
      if (stop.load()) return finish(StopReason::Requested);
      if (reached_until_) return finish(StopReason::UntilLsn);
      maybeFlush(false);
      maybeSendStatus();
      pg::Frame frame = stream_.read(nextWait());
      StopReason r = std::visit(
          Overloaded{
              [&](pg::XLogData& d) { onData(d); return StopReason::None; },
              [&](pg::Keepalive& k) { onKeepalive(k); return StopReason::None; },
              [&](pg::Timeout&) { return StopReason::None; },
              [&](pg::StreamEnd&) { return StopReason::StreamEnded; },
          },
          frame);
      if (r == StopReason::StreamEnded) {
        throw Error(ErrorClass::Retriable, "the server ended the replication stream");
      }
    }
  }

  /// After an error: keep the whole transactions already written, make them durable.
  void salvage() {
    if (in_transaction_) delivery_.rollbackToMark();
    in_transaction_ = false;
    makeDurable();
  }

  Lsn durable() const { return durable_; }

 private:
  milliseconds nextWait() const {
    // Wake up for the next status update or flush, and at least every 100 ms to see the stop flag.
    return milliseconds(100);
  }

  void onData(const pg::XLogData& d) {
    if (d.data_start > received_) received_ = d.data_start;
    pgoutput::Message msg = decoder_.decode(d.payload);
    std::visit(Overloaded{
                   [&](const pgoutput::BeginMessage& m) { onBegin(m); },
                   [&](const pgoutput::CommitMessage& m) { onCommit(m); },
                   [&](const pgoutput::OriginMessage&) {},
                   [&](const pgoutput::RelationMessage& m) { relations_.update(m); },
                   [&](const pgoutput::TypeMessage& m) { relations_.invalidateType(m.type); },
                   [&](const pgoutput::InsertMessage& m) {
                     if (skipping_) return;
                     const auto& rel = relation(m.relid);
                     if (!rel.captured) return;
                     delivery_.write(builder_.change('c', rel, d.data_start, nullptr,
                                                     pgoutput::OldTupleKind::None, m.new_tuple));
                   },
                   [&](const pgoutput::UpdateMessage& m) { onUpdate(m, d.data_start); },
                   [&](const pgoutput::DeleteMessage& m) {
                     if (skipping_) return;
                     const auto& rel = relation(m.relid);
                     if (!rel.captured) return;
                     delivery_.write(builder_.change('d', rel, d.data_start, m.old_tuple, m.old_kind, nullptr));
                   },
                   [&](const pgoutput::TruncateMessage& m) {
                     if (skipping_) return;
                     for (RelationId id : m.relids) {
                       const auto& rel = relation(id);
                       if (rel.captured) delivery_.write(builder_.truncate(rel, d.data_start));
                     }
                   },
                   [&](const pgoutput::LogicalDecodingMessage& m) { onMessage(m, d.data_start); },
               },
               msg);
  }

  const events::Relation& relation(RelationId id) {
    const events::Relation* rel = relations_.find(id);
    if (rel == nullptr) {
      throw Error(ErrorClass::Fatal,
                  fmt::format("the server sent a change for relation {} before describing it "
                              "(no Relation message)",
                              id.value));
    }
    return *rel;
  }

  void onBegin(const pgoutput::BeginMessage& m) {
    if (in_transaction_) {
      throw Error(ErrorClass::Fatal, fmt::format("Begin of transaction {} inside another", m.xid.value));
    }
    if (options_.until_lsn && m.final_lsn > *options_.until_lsn) {
      reached_until_ = true;
      skipping_ = true;  // not ours to deliver in this run
      return;
    }
    // The server skips transactions that committed before the start position; this guards
    // against resending one anyway (its data is already durable).
    skipping_ = m.final_lsn < durable_;
    in_transaction_ = !skipping_;
    builder_.beginTransaction(m.xid, m.commit_time);
  }

  void onCommit(const pgoutput::CommitMessage& m) {
    if (skipping_) {
      skipping_ = false;
      return;
    }
    if (!in_transaction_) throw Error(ErrorClass::Fatal, "Commit without Begin");
    in_transaction_ = false;
    builder_.endTransaction(m.commit_lsn);
    delivery_.markTransactionEnd();
    setPending(m.end_lsn);
    if (options_.until_lsn && m.end_lsn >= *options_.until_lsn) reached_until_ = true;
    maybeFlush(false);
  }

  void onUpdate(const pgoutput::UpdateMessage& m, Lsn lsn) {
    if (skipping_) return;
    const auto& rel = relation(m.relid);
    if (!rel.captured) return;
    if (m.old_tuple != nullptr && rel.has_key &&
        events::EnvelopeBuilder::keyChanged(rel, *m.old_tuple, *m.new_tuple)) {
      // As Debezium does: an update that changes the key is a delete of the old key and a
      // create of the new one, so consumers keyed by it see both.
      delivery_.write(builder_.change('d', rel, lsn, m.old_tuple, m.old_kind, nullptr));
      delivery_.write(builder_.change('c', rel, lsn, nullptr, pgoutput::OldTupleKind::None, m.new_tuple));
      return;
    }
    const pgoutput::TupleData* before = m.old_kind == pgoutput::OldTupleKind::Full ? m.old_tuple : nullptr;
    delivery_.write(builder_.change('u', rel, lsn, before, m.old_kind, m.new_tuple));
  }

  void onMessage(const pgoutput::LogicalDecodingMessage& m, Lsn lsn) {
    if (m.transactional) {
      if (skipping_) return;
      delivery_.write(builder_.message(m, lsn, true));
      return;
    }
    // Non-transactional: delivered on its own. Its position is just past it, so a restart
    // from there does not send it again.
    if (lsn < durable_) return;
    delivery_.write(builder_.message(m, lsn, false));
    if (!in_transaction_) {
      delivery_.markTransactionEnd();
      setPending(Lsn{lsn.value() + 1});
    }
  }

  void onKeepalive(const pg::Keepalive& k) {
    if (k.wal_end > received_) received_ = k.wal_end;
    // Everything the server decoded before wal_end has arrived; with no transaction open it is
    // all in the sinks, so wal_end can become the position once they are durable.
    if (!in_transaction_ && !skipping_) {
      setPending(k.wal_end);
      if (options_.until_lsn && k.wal_end >= *options_.until_lsn) reached_until_ = true;
    }
    if (k.reply_requested) sendStatus();
  }

  void setPending(Lsn lsn) {
    if (lsn <= pending_) return;
    if (pending_ == durable_) pending_since_ = Clock::now();
    pending_ = lsn;
  }

  void maybeFlush(bool force) {
    if (in_transaction_ || pending_ <= durable_) {
      // Inside a transaction nothing can become durable yet; bound the buffered bytes only.
      return;
    }
    bool due = force || Clock::now() - pending_since_ >= cfg_.delivery.flush_interval ||
               delivery_.pendingBytes() >= cfg_.delivery.flush_bytes;
    if (due) {
      makeDurable();
      sendStatus();
    }
  }

  void makeDurable() {
    if (pending_ <= durable_) return;
    state::StoredPosition p = position_;
    p.lsn = pending_;
    delivery_.makeDurable(p);
    durable_ = pending_;
  }

  void maybeSendStatus() {
    if (Clock::now() - last_status_ >= cfg_.source.status_interval) sendStatus();
  }

  void sendStatus() {
    stream_.sendStatus(received_, durable_);
    last_status_ = Clock::now();
  }

  StopReason finish(StopReason why) {
    if (in_transaction_) {
      // A clean stop inside a transaction: drop its partial output; the server sends the whole
      // transaction again next time, because its commit was never confirmed.
      delivery_.rollbackToMark();
      in_transaction_ = false;
    }
    makeDurable();
    sendStatus();
    stream_.finish();
    log_.info("stopped at {} ({})", durable_.str(),
              why == StopReason::UntilLsn ? "reached --until-lsn" : "stop requested");
    return why;
  }

  const config::PipelineConfig& cfg_;
  const RunOptions& options_;
  Delivery& delivery_;
  pg::ReplicationStream& stream_;
  pgoutput::Decoder decoder_;
  events::RelationCache relations_;
  events::EnvelopeBuilder builder_;
  state::StoredPosition position_;
  Logger log_;

  Lsn durable_;   // saved in the store (and so confirmable)
  Lsn pending_;   // whole transactions in the sinks up to here, not yet durable
  Lsn received_;  // the furthest position the server has sent
  Clock::time_point pending_since_;
  Clock::time_point last_status_;
  bool in_transaction_ = false;
  bool skipping_ = false;
  bool reached_until_ = false;
};

pg::ConnectOptions connectOptions(const config::SourceConfig& src, const char* what) {
  pg::ConnectOptions o;
  o.dsn = src.dsn;
  o.password = src.password;
  o.connect_timeout = src.connect_timeout;
  o.what = what;
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
  Delivery delivery(cfg, *store);
  bool recovered = false;

  constexpr int kMaxAttempts = 6;
  milliseconds backoff(500);
  for (int attempt = 1;; ++attempt) {
    std::optional<Session> session;
    try {
      std::optional<state::StoredPosition> stored = store->load();
      pg::Connection catalog = pg::Connection::open(connectOptions(cfg.source, "source"));
      pg::ReplicationStream stream = pg::ReplicationStream::open(connectOptions(cfg.source, "source"));
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
      session.emplace(cfg, options, delivery, stream, catalog, system.dbname, position, log);
      session->stream(stop);
      return;
    } catch (const Error& e) {
      if (!e.retriable() || attempt >= kMaxAttempts) {
        if (session) {
          try {
            session->salvage();
          } catch (const Error& inner) {
            log.error("could not make the delivered transactions durable: {}", inner.what());
          }
        }
        throw;
      }
      if (session) session->salvage();
      log.warn("{} (attempt {} of {}; retrying in {} ms)", e.describe(), attempt, kMaxAttempts, backoff.count());
      if (!sleepUnlessStopped(backoff, stop)) return;
      backoff = std::min(backoff * 2, milliseconds(30000));
    }
  }
}

}  // namespace tidemark::pipeline
