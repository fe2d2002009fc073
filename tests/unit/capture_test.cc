// Which relations a pipeline captures: the verdicts on what the catalog shows (judgeCapture),
// and how the stream's relations map to the captured tables (CaptureSet::classifier).
#include "source/postgres/capture.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/assertions.h"

namespace tidemark::pg {
namespace {

using test::contains;

class CaptureJudgement : public ::testing::Test {
 protected:
  CaptureJudgement() {
    cfg.name = cfg.topic_prefix = "shop";
    cfg.source.publication = "shop_pub";
    cfg.source.tables = {{"public", "orders"}};
    facts.publication = {true, false, true};
  }

  // public.orders as relation 100, published under its own name.
  TableFacts& orders() {
    if (facts.tables.empty()) {
      TableFacts f;
      f.table = {"public", "orders"};
      f.relid = RelationId{100};
      f.published = true;
      facts.tables.push_back(f);
    }
    return facts.tables[0];
  }
  void capturedBefore(uint32_t relid, std::optional<config::TableName> now_named) {
    orders().stored_relid = RelationId{relid};
    orders().stored_now = std::move(now_named);
  }
  CaptureProblem only(const std::vector<config::TableName>& accept = {}) {
    std::vector<CaptureProblem> problems = judgeCapture(facts, cfg, accept);
    EXPECT_EQ(problems.size(), 1u);
    return problems.empty() ? CaptureProblem{} : problems[0];
  }

  config::PipelineConfig cfg;
  CaptureFacts facts;
};

TEST_F(CaptureJudgement, APublishedTableCapturedAsBeforeIsFine) {
  orders();
  EXPECT_TRUE(judgeCapture(facts, cfg).empty());
  capturedBefore(100, config::TableName{"public", "orders"});
  EXPECT_TRUE(judgeCapture(facts, cfg).empty());
}

TEST_F(CaptureJudgement, AMissingTableIsAConfigurationError) {
  orders().relid.reset();
  orders().published = false;
  CaptureProblem p = only();
  EXPECT_EQ(p.cls, ErrorClass::Config);
  EXPECT_TRUE(contains(p.what, "table \"public\".\"orders\" does not exist"));
  EXPECT_TRUE(contains(p.fix, "remove public.orders from source.tables"));
}

TEST_F(CaptureJudgement, AMissingTableNamesOneThatDiffersOnlyInCase) {
  cfg.source.tables = {{"sales", "order items"}};
  TableFacts f;
  f.table = {"sales", "order items"};
  f.similar = config::TableName{"Sales", "Order Items"};
  facts.tables = {f};
  CaptureProblem p = only();
  EXPECT_EQ(p.what, "table \"sales\".\"order items\" does not exist; did you mean \"Sales\".\"Order Items\"?");
  EXPECT_TRUE(contains(p.fix, "'\"Sales\".\"Order Items\"'"));
}

TEST_F(CaptureJudgement, ACapturedTableDroppedIsAHoleInTheStream) {
  orders().relid.reset();
  orders().published = false;
  capturedBefore(100, std::nullopt);
  CaptureProblem p = only();
  EXPECT_EQ(p.cls, ErrorClass::PositionLost);
  EXPECT_TRUE(contains(p.what, "captured table public.orders was dropped (relation 100 no longer exists)"));
}

TEST_F(CaptureJudgement, ARenamedOrMovedTableNamesItsNewNameAndBothWaysOn) {
  orders().relid.reset();
  orders().published = false;
  capturedBefore(100, config::TableName{"archive", "orders_old"});
  CaptureProblem p = only();
  EXPECT_EQ(p.cls, ErrorClass::PositionLost);
  EXPECT_TRUE(contains(p.what, "captured table public.orders was renamed: relation 100 is now archive.orders_old"));
  EXPECT_TRUE(contains(p.fix, "ALTER TABLE \"archive\".\"orders_old\" SET SCHEMA \"public\";"));
  EXPECT_TRUE(contains(p.fix, "ALTER TABLE \"public\".\"orders_old\" RENAME TO \"orders\";"));
  EXPECT_TRUE(contains(p.fix, "replace public.orders with archive.orders_old in source.tables"));
  EXPECT_TRUE(contains(p.fix, "topic shop.archive.orders_old"));
}

TEST_F(CaptureJudgement, ATableDroppedAndCreatedAgainNeedsToBeAccepted) {
  capturedBefore(90, std::nullopt);  // relation 100 is the new table of that name
  CaptureProblem p = only();
  EXPECT_EQ(p.cls, ErrorClass::PositionLost);
  EXPECT_TRUE(contains(p.what, "was dropped and created again: it is relation 100 now, not 90"));
  EXPECT_TRUE(contains(p.fix, "--accept-recreated public.orders"));
  EXPECT_TRUE(judgeCapture(facts, cfg, {{"public", "orders"}}).empty());

  // Renamed away, and a new table took the name.
  capturedBefore(90, config::TableName{"public", "orders_old"});
  EXPECT_TRUE(contains(only().what, "the relation captured before is now public.orders_old"));
}

TEST_F(CaptureJudgement, ATableThatLeftThePublicationIsAHoleANewOneIsConfiguration) {
  orders().published = false;
  CaptureProblem p = only();
  EXPECT_EQ(p.cls, ErrorClass::Config);
  EXPECT_TRUE(contains(p.fix, "ALTER PUBLICATION \"shop_pub\" ADD TABLE \"public\".\"orders\";"));

  capturedBefore(100, config::TableName{"public", "orders"});
  p = only();
  EXPECT_EQ(p.cls, ErrorClass::PositionLost);
  EXPECT_TRUE(contains(p.what, "captured table public.orders is no longer in publication \"shop_pub\""));
  EXPECT_TRUE(contains(p.fix, "ADD TABLE \"public\".\"orders\"; then run again"));
  EXPECT_TRUE(contains(p.fix, "snapshot"));
}

TEST_F(CaptureJudgement, PartitionsPublishedUnderTheirOwnNamesNeedTheRoot) {
  orders().partitioned = true;
  orders().published = false;
  orders().partitions_published = true;
  facts.publication.via_root = false;
  CaptureProblem p = only();
  EXPECT_EQ(p.cls, ErrorClass::Config);
  EXPECT_TRUE(contains(p.what, "under its partitions' names"));
  EXPECT_EQ(p.fix, "ALTER PUBLICATION \"shop_pub\" SET (publish_via_partition_root = true);");
}

TEST_F(CaptureJudgement, APartitionPublishedAsItsAncestorSaysCaptureTheAncestor) {
  orders().published = false;
  orders().published_ancestor = config::TableName{"public", "all_orders"};
  CaptureProblem p = only();
  EXPECT_TRUE(contains(p.what, "public.orders is a partition of public.all_orders"));
  EXPECT_TRUE(contains(p.fix, "capture public.all_orders instead of public.orders"));
}

TEST_F(CaptureJudgement, AMissingPublicationIsNamed) {
  orders().published = false;
  facts.publication = {};
  EXPECT_TRUE(contains(only().what, "publication \"shop_pub\" does not exist"));
  EXPECT_TRUE(contains(only().fix, "WITH (publish_via_partition_root = true)"));
}

TEST_F(CaptureJudgement, OneErrorForAllProblemsWithTheGravestClass) {
  orders().published = false;
  TableFacts gone;
  gone.table = {"public", "gone"};
  gone.stored_relid = RelationId{7};
  facts.tables.push_back(gone);
  cfg.source.tables.push_back(gone.table);
  std::vector<CaptureProblem> problems = judgeCapture(facts, cfg);
  ASSERT_EQ(problems.size(), 2u);
  Error e = captureError(problems);
  EXPECT_EQ(e.errorClass(), ErrorClass::PositionLost);
  // A line each.
  EXPECT_TRUE(contains(e.what(), "does not include public.orders\ncaptured table public.gone was dropped"));
}

class CaptureClassifier : public ::testing::Test {
 protected:
  CaptureClassifier() {
    cfg.name = cfg.topic_prefix = "shop";
    cfg.source.publication = "shop_pub";
    cfg.source.tables = {{"public", "orders"}, {"public", "measurements"}};
    cfg.source.topics = {{{"public", "measurements"}, "shop.metrics"}};
  }
  config::PipelineConfig cfg;
  CaptureSet set{cfg, {{"public", "orders", RelationId{100}}, {"public", "measurements", RelationId{200}}}};
};

TEST_F(CaptureClassifier, CapturedTablesByOidKeepTheirNameAndTopicWhenRenamed) {
  events::Classifier classify = set.classifier();
  events::RelationTarget t = classify(RelationId{100}, "public", "orders");
  EXPECT_EQ(t.role, events::RelationRole::Captured);
  EXPECT_EQ(t.topic, "shop.public.orders");
  EXPECT_TRUE(t.note.empty());

  t = classify(RelationId{100}, "archive", "orders_v2");
  EXPECT_EQ(t.role, events::RelationRole::Captured);
  EXPECT_EQ(t.schema, "public");
  EXPECT_EQ(t.table, "orders");
  EXPECT_EQ(t.topic, "shop.public.orders");
  EXPECT_TRUE(contains(t.note, "appears as archive.orders_v2 (renamed or moved)"));

  EXPECT_EQ(classify(RelationId{200}, "public", "measurements").topic, "shop.metrics");
}

TEST_F(CaptureClassifier, AnotherRelationOfACapturedNameIsCapturedAndSaidSo) {
  events::RelationTarget t = set.classifier()(RelationId{150}, "public", "orders");
  EXPECT_EQ(t.role, events::RelationRole::Captured);
  EXPECT_TRUE(contains(t.note, "an earlier or later table of that name"));
}

TEST_F(CaptureClassifier, PartitionRowsUnderTheirOwnNameGoToTheCapturedAncestor) {
  std::vector<RelationId> asked;
  events::Classifier classify = set.classifier([&](RelationId relid) {
    asked.push_back(relid);
    return relid == RelationId{201} ? std::vector<RelationId>{RelationId{210}, RelationId{200}}
                                    : std::vector<RelationId>{};
  });
  events::RelationTarget t = classify(RelationId{201}, "public", "measurements_2026");
  EXPECT_EQ(t.role, events::RelationRole::Captured);
  EXPECT_EQ(t.table, "measurements");
  EXPECT_EQ(t.topic, "shop.metrics");
  EXPECT_TRUE(contains(t.note, "a partition of captured table public.measurements"));

  t = classify(RelationId{300}, "public", "audit");
  EXPECT_EQ(t.role, events::RelationRole::Other);
  EXPECT_TRUE(contains(t.note, "publication \"shop_pub\" also publishes it, but it is not in source.tables"));
  // Captured tables are recognized without asking the catalog.
  classify(RelationId{100}, "public", "orders");
  EXPECT_EQ(asked, (std::vector<RelationId>{RelationId{201}, RelationId{300}}));
}

TEST_F(CaptureClassifier, TidemarksOwnTables) {
  events::Classifier classify = set.classifier();
  events::RelationTarget hb = classify(RelationId{5}, "tidemark", "tidemark_heartbeat");
  EXPECT_EQ(hb.role, events::RelationRole::Heartbeat);
  EXPECT_EQ(hb.topic, "shop.tidemark.tidemark_heartbeat");
  events::RelationTarget sig = classify(RelationId{6}, "tidemark", "tidemark_signal");
  EXPECT_EQ(sig.role, events::RelationRole::Other);
  EXPECT_EQ(sig.note, "the signal table");
}

}  // namespace
}  // namespace tidemark::pg
