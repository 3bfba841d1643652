// The remote-shard path against real xapian-tcpsrv processes on loopback.
#include <gtest/gtest.h>

#include "steper/retrieve.h"
#include "tcpsrv.h"
#include "test_util.h"

namespace steper::retrieve {
namespace {

using testing::TcpShardServer;
using testing::TempDir;

// Two shards that split one corpus; the union is indexed locally as well.
class RemoteShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string a, b;
    const char* words[] = {"river", "mountain", "forest", "desert", "island", "valley", "glacier", "canyon"};
    for (int i = 0; i < 80; ++i) {
      std::string text = std::string(words[i % 8]) + " " + words[(i * 3) % 8] + " item" + std::to_string(i);
      std::string line = data::to_json(data::Passage{"p" + std::to_string(i), "T" + std::to_string(i), text}).dump() + "\n";
      (i % 2 ? a : b) += line;
    }
    testing::write_file(dir / "a.jsonl", a);
    testing::write_file(dir / "b.jsonl", b);
    testing::write_file(dir / "all.jsonl", a + b);
    build_index(dir / "a.jsonl", dir / "ia");
    build_index(dir / "b.jsonl", dir / "ib");
    build_index(dir / "all.jsonl", dir / "iall");
  }
  TempDir dir;
};

std::vector<std::pair<std::string, double>> ranked(const std::vector<Hit>& hits) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& h : hits) out.emplace_back(h.id, h.score);
  return out;
}

void expect_same(const std::vector<Hit>& got, const std::vector<Hit>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i].score, want[i].score, 1e-9) << i;
    // Equal scores may tie-break differently across shards; compare score sets.
  }
  auto g = ranked(got), w = ranked(want);
  std::sort(g.begin(), g.end());
  std::sort(w.begin(), w.end());
  for (std::size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i].second, w[i].second, 1e-9);
}

TEST_F(RemoteShardTest, OneRemoteShardMatchesLocal) {
  TcpShardServer server(STEPER_XAPIAN_TCPSRV, {dir / "ia"});
  auto remote = open_retriever(server.spec());
  auto local = open_retriever(dir / "ia");
  for (const char* q : {"mountain desert", "item7", "valley canyon island"}) {
    auto r = remote->search(q, 5);
    ASSERT_FALSE(r.empty()) << q;
    EXPECT_EQ(ranked(r), ranked(local->search(q, 5))) << q;
    EXPECT_FALSE(r[0].text.empty());
  }
  IndexInfo info = read_index_info(server.spec());
  EXPECT_EQ(info.documents, 40u);
  EXPECT_TRUE(info.complete);
}

TEST_F(RemoteShardTest, TwoRemoteShardsSearchAsOneCorpus) {
  TcpShardServer sa(STEPER_XAPIAN_TCPSRV, {dir / "ia"});
  TcpShardServer sb(STEPER_XAPIAN_TCPSRV, {dir / "ib"});
  SearchOptions options;
  options.threads = 2;
  auto sharded = open_retriever(sa.spec() + "," + sb.spec(), options);
  auto whole = open_retriever(dir / "iall");
  // BM25 statistics are global over shards: scores equal the single index's.
  for (const char* q : {"river", "mountain desert", "item3 item50", "valley"}) {
    expect_same(sharded->search(q, 10), whole->search(q, 10));
  }
  auto batch = sharded->search_batch({"item1", "item2", "item3", "item4"}, 1);
  ASSERT_EQ(batch.size(), 4u);
  EXPECT_EQ(batch[0][0].id, "p1");
  EXPECT_EQ(batch[3][0].id, "p4");
  // A mixed spec, local folder plus remote shard, works the same way.
  expect_same(open_retriever(dir / "ia," + sb.spec())->search("forest", 10), whole->search("forest", 10));
  EXPECT_EQ(read_index_info(sa.spec() + "," + sb.spec()).documents, 80u);
}

TEST_F(RemoteShardTest, UnreachableShardIsARuntimeErrorWithAHint) {
  int port = testing::free_port();  // nothing listens there
  SearchOptions options;
  options.remote_timeout_ms = 2000;
  try {
    open_retriever("tcp://127.0.0.1:" + std::to_string(port), options);
    FAIL();
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach index shard"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("xapian-tcpsrv"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace steper::retrieve
