// The messages of PostgreSQL's logical replication protocol (pgoutput, proto_version 1), one
// struct per message, named and laid out as src/include/replication/logicalproto.h names them.
// String and tuple fields are views into the buffer the message was decoded from: they are
// valid while that buffer is (see Decoder).
#pragma once

#include <cstdint>
#include <string_view>
#include <variant>
#include <vector>

#include "base/lsn.h"

namespace tidemark::pgoutput {

/// Microseconds since 2000-01-01 00:00:00 UTC (PostgreSQL's TimestampTz epoch).
using PgTimestamp = int64_t;
inline constexpr int64_t kPgEpochOffsetMicros = 946684800LL * 1000000LL;
inline int64_t toUnixMillis(PgTimestamp ts) { return (ts + kPgEpochOffsetMicros) / 1000; }

struct BeginMessage {  // 'B'
  Lsn final_lsn;       // LSN of the commit record
  PgTimestamp commit_time;
  Xid xid;
};

struct CommitMessage {  // 'C'
  uint8_t flags;        // unused, always 0
  Lsn commit_lsn;       // LSN of the commit record
  Lsn end_lsn;          // end of the commit record: the position to confirm
  PgTimestamp commit_time;
};

struct OriginMessage {  // 'O'
  Lsn origin_lsn;
  std::string_view origin_name;
};

struct RelationColumn {
  bool part_of_key;     // flags bit 1: part of the replica identity
  std::string_view name;
  TypeOid type;
  int32_t typmod;
};

struct RelationMessage {  // 'R'
  RelationId relid;
  std::string_view nspname;
  std::string_view relname;
  char replica_identity;  // 'd' default, 'n' nothing, 'f' full, 'i' index
  std::vector<RelationColumn> columns;
};

struct TypeMessage {  // 'Y'
  TypeOid type;
  std::string_view nspname;
  std::string_view typname;
};

enum class ColumnKind : char {
  Null = 'n',
  UnchangedToast = 'u',
  Text = 't',
  Binary = 'b',
};

struct TupleColumn {
  ColumnKind kind;
  std::string_view value;  // set for Text and Binary
};

using TupleData = std::vector<TupleColumn>;

struct InsertMessage {  // 'I'
  RelationId relid;
  const TupleData* new_tuple;
};

enum class OldTupleKind : char {
  None = 0,
  Key = 'K',  // replica identity columns only
  Full = 'O', // the whole old row (REPLICA IDENTITY FULL)
};

struct UpdateMessage {  // 'U'
  RelationId relid;
  OldTupleKind old_kind;
  const TupleData* old_tuple;  // nullptr when old_kind is None
  const TupleData* new_tuple;
};

struct DeleteMessage {  // 'D'
  RelationId relid;
  OldTupleKind old_kind;  // Key or Full
  const TupleData* old_tuple;
};

struct TruncateMessage {  // 'T'
  bool cascade;
  bool restart_identity;
  std::vector<RelationId> relids;
};

struct LogicalDecodingMessage {  // 'M'
  bool transactional;
  Lsn lsn;
  std::string_view prefix;
  std::string_view content;
};

using Message = std::variant<BeginMessage, CommitMessage, OriginMessage, RelationMessage,
                             TypeMessage, InsertMessage, UpdateMessage, DeleteMessage,
                             TruncateMessage, LogicalDecodingMessage>;

}  // namespace tidemark::pgoutput
