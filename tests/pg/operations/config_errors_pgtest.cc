// Operator mistakes end the run with the right exit code and a message that points at the
// fix: the key path of a bad setting, the server's reason for a refused login, and never
// the secret itself.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "support/pg_cluster.h"
#include "support/pipeline_fixture.h"

namespace tidemark::test {
namespace {

class ConfigErrorTest : public PgPipelineTest {
 protected:
  static constexpr int kExitUsage = 1;

  // A valid pipeline file in which `from` is replaced by `to`.
  std::filesystem::path configWith(const std::string& from, const std::string& to) {
    auto path = writeConfig(TidemarkConfig({"public.orders"}));
    std::ifstream in(path);
    std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto at = yaml.find(from);
    if (at == std::string::npos) throw std::runtime_error("'" + from + "' not in:\n" + yaml);
    yaml.replace(at, from.size(), to);
    return writeRawConfig(yaml, "broken.yaml");
  }

  void expectConfigError(const std::filesystem::path& config, const std::string& mention) {
    RunResult r = runUntil(config, currentLsn(), std::chrono::seconds(60));
    EXPECT_EQ(r.exitCode, kExitUsage) << r.description;
    EXPECT_NE(r.err.find(mention), std::string::npos)
        << "stderr should mention '" << mention << "'\n" << r.description;
    EXPECT_FALSE(slotExists()) << "a configuration error must stop before touching the source";
  }

  void SetUp() override {
    PgPipelineTest::SetUp();
    sql("CREATE TABLE orders (id int PRIMARY KEY)");
  }
};

TEST_F(ConfigErrorTest, UnknownKeyExitsOneNamingItsPath) {
  expectConfigError(configWith("  slot: ", "  slott: oops\n  slot: "), "source.slott");
}

TEST_F(ConfigErrorTest, WrongTypeExitsOneNamingItsPath) {
  expectConfigError(configWith("flush_interval: 100ms", "flush_interval: banana"),
                    "delivery.flush_interval");
}

TEST_F(ConfigErrorTest, UnknownSinkKindExitsOneNamingItsPath) {
  expectConfigError(configWith("kind: jsonl", "kind: carrier_pigeon"), "sinks[0].kind");
}

TEST_F(ConfigErrorTest, MissingRequiredSourceExitsOneNamingIt) {
  auto path = writeRawConfig("name: t1\nsinks:\n  - name: files\n    kind: jsonl\n    path: " +
                             outDir().string() + "\n");
  expectConfigError(path, "source");
}

TEST_F(ConfigErrorTest, YamlSyntaxErrorExitsOne) {
  auto path = writeRawConfig("name: [t1\nsource: {\n");
  RunResult r = runUntil(path, currentLsn(), std::chrono::seconds(60));
  EXPECT_EQ(r.exitCode, kExitUsage) << r.description;
  EXPECT_FALSE(r.err.empty());
}

TEST_F(ConfigErrorTest, MissingConfigFileExitsOneNamingIt) {
  const auto path = tmp().path() / "does-not-exist.yaml";
  RunResult r = runUntil(path, currentLsn(), std::chrono::seconds(60));
  EXPECT_EQ(r.exitCode, kExitUsage) << r.description;
  EXPECT_NE(r.err.find("does-not-exist.yaml"), std::string::npos) << r.description;
}

TEST_F(ConfigErrorTest, UnknownFlagExitsOne) {
  RunResult r = runTidemark({"run", "--no-such-flag"}, std::chrono::seconds(60));
  EXPECT_EQ(r.exitCode, kExitUsage) << r.description;
}

TEST_F(ConfigErrorTest, MalformedUntilLsnExitsOne) {
  auto config = writeConfig(TidemarkConfig({"public.orders"}));
  RunResult r = runUntil(config, "not-an-lsn", std::chrono::seconds(60));
  EXPECT_EQ(r.exitCode, kExitUsage) << r.description;
}

class AuthenticationTest : public PgPipelineTest {
 protected:
  static constexpr const char* kWrongPassword = "Wr0ng-Pa55word-zz9";

  void expectRefusedWithoutLeak(const TidemarkConfig& config) {
    sql("CREATE TABLE orders (id int PRIMARY KEY)");
    auto path = writeConfig(config);
    RunResult r = runUntil(path, currentLsn(), std::chrono::seconds(180));
    ASSERT_TRUE(r.exitCode.has_value()) << r.description;
    EXPECT_NE(*r.exitCode, 0) << r.description;
    EXPECT_NE(r.err.find("password authentication failed"), std::string::npos)
        << "stderr should carry the server's reason\n" << r.description;
    EXPECT_EQ(r.err.find(kWrongPassword), std::string::npos) << "password leaked to stderr";
    EXPECT_EQ(r.out.find(kWrongPassword), std::string::npos) << "password leaked to stdout";
    EXPECT_EQ(r.err.find(PgCluster::kPasswordUserPassword), std::string::npos);
  }
};

TEST_F(AuthenticationTest, WrongPasswordInDsnFailsClearlyWithoutPrintingIt) {
  expectRefusedWithoutLeak(TidemarkConfig({"public.orders"})
                               .withUser(PgCluster::kPasswordUser)
                               .withDsnPassword(kWrongPassword));
}

TEST_F(AuthenticationTest, WrongPasswordSettingFailsClearlyWithoutPrintingIt) {
  expectRefusedWithoutLeak(TidemarkConfig({"public.orders"})
                               .withUser(PgCluster::kPasswordUser)
                               .withPassword(kWrongPassword));
}

TEST_F(AuthenticationTest, WrongPasswordFileFailsClearlyWithoutPrintingIt) {
  const auto file = tmp().path() / "pgpass.txt";
  {
    std::ofstream out(file);
    out << kWrongPassword << "\n";
  }
  expectRefusedWithoutLeak(TidemarkConfig({"public.orders"})
                               .withUser(PgCluster::kPasswordUser)
                               .withPasswordFile(file.string()));
}

}  // namespace
}  // namespace tidemark::test
