// GET /openapi.yaml: docs/openapi.yaml as compiled into
// the gateway, next to /healthz, with no token; and the answers every path
// gives to a method it does not take. tests/docs/openapi_check.py holds the
// document against every answer the integration tests see.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

std::string source_file(const std::string& relative) {
  std::ifstream in(BOXGATE_SOURCE_DIR "/" + relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class OpenApiTest : public StackTest {
 protected:
  OpenApiTest() : StackTest("openapi") {}
};

TEST_F(OpenApiTest, ServedAsYamlWithTheOpsEndpointsAndNoToken) {
  const std::string doc = source_file("docs/openapi.yaml");
  ASSERT_GT(doc.size(), 1000u);
  // Tokens configured: the document still needs none, like /healthz.
  const std::string hash(64, 'a');
  int gw = stack->add_gateway({"--api-tokens", "ops:" + hash + ":*"});
  HttpResult r = get(gw, "/openapi.yaml");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Type"), "application/yaml");
  EXPECT_EQ(r.body, doc) << "the gateway serves another docs/openapi.yaml than the source tree's: rebuild";

  auto c = client(gw);
  HttpResult wrong = post(*c, "/openapi.yaml", "{}");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.error_code(), "method_not_allowed");
  EXPECT_EQ(wrong.header("Allow"), "GET");
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    HttpResult not_get = post(*c, path, "{}");
    EXPECT_EQ(not_get.status, 405) << path;
    EXPECT_EQ(not_get.error_code(), "method_not_allowed") << path;
  }
  auto delete_commands = c->Delete(command_path("box-1"));  // the method check comes before the token
  ASSERT_TRUE(delete_commands);
  EXPECT_EQ(delete_commands->status, 405) << delete_commands->body;
  EXPECT_EQ(delete_commands->get_header_value("Allow"), "POST, GET");
  HttpResult post_status = post(*c, "/v1/devices/box-1/commands/some-id", "{}");
  EXPECT_EQ(post_status.status, 405) << post_status.body;
  EXPECT_EQ(post_status.header("Allow"), "GET, DELETE");
  HttpResult unrouted = get(*c, "/v1/devices/box-1/other");
  EXPECT_EQ(unrouted.status, 404);
  EXPECT_EQ(unrouted.error_code(), "not_found");
}

TEST_F(OpenApiTest, OnTheOpsListenerWhenOpsPortIsSet) {
  int ops = test::free_port();
  int gw = test::free_port();
  Process gateway = test::start_gateway(stack->tmp(), gw, stack->redis().port(), stack->mqtt_port(),
                                        {"--ops-host", "127.0.0.1", "--ops-port", std::to_string(ops)}, {}, ops);
  HttpResult there = get(ops, "/openapi.yaml");
  EXPECT_EQ(there.status, 200);
  EXPECT_EQ(there.header("Content-Type"), "application/yaml");
  HttpResult api = get(gw, "/openapi.yaml");
  EXPECT_EQ(api.status, 404) << api.body;
  EXPECT_EQ(api.error_code(), "not_found");
  EXPECT_EQ(gateway.stop(), 0) << gateway.log_tail();
}

}  // namespace
}  // namespace boxgate::itest
