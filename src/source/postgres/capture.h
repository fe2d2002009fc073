// Which relations a pipeline captures, and whether the source still sends their changes.
//
// A captured table is a name in source.tables and, once resolved on the source, a relation
// OID, which the state store keeps (state::CapturedTable). Names change (ALTER TABLE RENAME,
// SET SCHEMA); OIDs do not, and a table dropped and created again gets a new one. So:
//
//   - the stream is matched by OID first, then by name (CaptureSet::classifier), and a
//     partition's rows arriving under the partition's own name go to its captured ancestor;
//     nothing of a captured table is dropped because its name changed;
//   - at start, and every little while as the pipeline runs (SourceMonitor), the catalog is
//     read (readCaptureFacts) and judged (judgeCapture, facts in, verdict with fix out, no
//     I/O): a captured table that is gone, renamed, replaced by another of its name, left the
//     publication, or published under its partitions' names stops the pipeline with exit 3 (a
//     hole in the stream: docs/GUARANTEES.md, guarantee 2) or 1 (configuration), with the fix.
//     `tidemark check` reports the same verdicts.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/log.h"
#include "config/config.h"
#include "core/offset_store.h"
#include "postgres/connection.h"
#include "source/postgres/relations.h"

namespace tidemark::pg {

struct PublicationFacts {
  bool exists = false;
  bool all_tables = false;
  bool via_root = false;  // publish_via_partition_root
};

/// One table of source.tables as the catalog shows it now.
struct TableFacts {
  config::TableName table;
  std::optional<RelationId> relid;  // nothing: no table of that name
  /// When there is none, a table whose name differs only in case (did you mean...?).
  std::optional<config::TableName> similar;
  bool partitioned = false;
  /// The publication sends its rows under its own name (pg_publication_tables lists it).
  bool published = false;
  /// A partitioned table whose partitions are listed instead: publish_via_partition_root off.
  bool partitions_published = false;
  /// A partition whose rows the publication sends as this ancestor's.
  std::optional<config::TableName> published_ancestor;
  /// The relation captured under this name before (state store), and what it is called now
  /// (nothing when it no longer exists).
  std::optional<RelationId> stored_relid;
  std::optional<config::TableName> stored_now;
};

struct CaptureFacts {
  PublicationFacts publication;
  std::vector<TableFacts> tables;  // in source.tables order
};

/// Reads the facts for every table of source.tables (one catalog query, plus one for the
/// stored relations' names). `stored`: the relations captured before.
CaptureFacts readCaptureFacts(pg::Connection& conn, const config::PipelineConfig& cfg,
                              const std::vector<state::CapturedTable>& stored);

struct CaptureProblem {
  config::TableName table;
  ErrorClass cls = ErrorClass::Config;  // PositionLost when changes already went missing
  std::string what;
  std::string fix;
};

/// The verdict on the facts: one problem per table that cannot be captured as it is.
/// `accept_recreated`: tables whose new relation the operator accepts (run
/// --accept-recreated).
std::vector<CaptureProblem> judgeCapture(const CaptureFacts& facts, const config::PipelineConfig& cfg,
                                         const std::vector<config::TableName>& accept_recreated = {});

/// One error for all the problems, a line each: PositionLost if any is, else Config.
Error captureError(const std::vector<CaptureProblem>& problems);

/// The captured tables with the relations they are, and how the stream maps to them.
class CaptureSet {
 public:
  CaptureSet(const config::PipelineConfig& cfg, std::vector<state::CapturedTable> tables);

  const std::vector<state::CapturedTable>& tables() const { return tables_; }

  /// Partitions' ancestors, nearest first, from the catalog; may be empty (no lookups).
  using Ancestors = std::function<std::vector<RelationId>(RelationId)>;

  /// Classifies a relation of the stream: a captured table by OID, then by name; the heartbeat
  /// table; a partition of a captured table; or another published table, skipped. The
  /// returned function refers to this set, which must outlive it.
  events::Classifier classifier(Ancestors ancestors = {}) const;

 private:
  const config::PipelineConfig& cfg_;
  std::vector<state::CapturedTable> tables_;
};

/// At start: reads and judges the facts against the stored capture (throws captureError on
/// any problem), and returns the set to stream with; logs accepted re-created tables.
CaptureSet resolveCapture(pg::Connection& conn, const config::PipelineConfig& cfg,
                          const std::vector<state::CapturedTable>& stored,
                          const std::vector<config::TableName>& accept_recreated, const Logger& log);

/// A partition's ancestors, nearest first (pg_partition_ancestors), over `conn`.
std::vector<RelationId> partitionAncestors(pg::Connection& conn, RelationId relid);

}  // namespace tidemark::pg
