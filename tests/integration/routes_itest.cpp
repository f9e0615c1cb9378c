// The route table (src/gateway/routes.cpp) against a real gateway: every API
// call writes one access-log line, the fleet stream GET /v1/events included
// (docs/contract.md promises one per API call); every route answers a wrong
// method with the same 405 (Allow and body naming the one method it takes).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

using test::HttpResult;

std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

class RoutesTest : public StackTest {
 protected:
  RoutesTest() : StackTest("routes") {}
};

TEST_F(RoutesTest, FleetEventsCallsWriteOneAccessLineEach) {
  int gw = stack->add_gateway({"--log-level", "info"});
  auto c = client(gw);
  // Without Accept: text/event-stream the call ends at once (406), so its line is written at once.
  HttpResult refused = get(*c, "/v1/events");
  EXPECT_EQ(refused.status, 406) << refused.body;
  HttpResult bad_query = get(*c, "/v1/events?limit=5");
  EXPECT_EQ(bad_query.status, 400) << bad_query.body;
  ASSERT_TRUE(stack->gateway().wait_for_log("[access] GET fleet_events box - request -: 400 invalid_query in ", 5s))
      << stack->gateway().log_tail();
  std::string log = stack->gateway().log();
  EXPECT_EQ(occurrences(log, "[access] GET fleet_events box - request -: 406 not_acceptable in "), 1u) << log;
  EXPECT_EQ(occurrences(log, "[access] GET fleet_events "), 2u) << "one line per call, no more";
}

TEST_F(RoutesTest, EveryRouteAnswersAWrongMethodWithTheSame405) {
  int gw = stack->add_gateway({"--log-level", "info"});
  auto c = client(gw);
  struct Route {
    std::string path;
    const char* takes;  // its Allow header: the methods of its rows, in table order
    const char* wrong;  // a method it does not take
    bool api;           // an API call: logged
  };
  const std::vector<Route> routes = {
      {"/v1/devices/box-1/commands", "POST, GET", "DELETE", true},
      {"/v1/devices/box-1/commands/id-1", "GET, DELETE", "POST", true},
      {"/v1/devices/box-1/messages", "POST", "GET", true},
      {"/v1/devices/box-1", "GET", "POST", true},
      {"/v1/devices/box-1/state", "GET", "POST", true},
      {"/v1/devices/box-1/events", "GET", "DELETE", true},
      {"/v1/events", "GET", "POST", true},
      {"/console", "GET", "POST", false},
      {"/openapi.yaml", "GET", "POST", false},
      {"/healthz", "GET", "POST", false},
      {"/readyz", "GET", "POST", false},
      {"/metrics", "GET", "POST", false},
  };
  for (const Route& route : routes) {
    HttpResult r;
    std::string wrong = route.wrong;
    if (wrong == "POST") {
      r = post(*c, route.path, "{}");
    } else if (wrong == "GET") {
      r = get(*c, route.path);
    } else {
      auto res = c->Delete(route.path);
      ASSERT_TRUE(res) << route.path;
      r.status = res->status;
      r.body = res->body;
      r.headers = res->headers;
    }
    EXPECT_EQ(r.status, 405) << route.path << ": " << r.body;
    EXPECT_EQ(r.header("Allow"), route.takes) << route.path;
    EXPECT_EQ(r.body, std::string(R"({"error":"method_not_allowed","message":"use )") + route.takes + "\"}")
        << route.path;
  }
  // Every API call of them has its access line; the console, the document
  // and the ops endpoints are not API calls.
  ASSERT_TRUE(stack->gateway().wait_for_log("[access] POST fleet_events box - request -: 405 ", 5s))
      << stack->gateway().log_tail();
  std::string log = stack->gateway().log();
  EXPECT_EQ(occurrences(log, ": 405 "), 7u) << log;
  for (auto [method, endpoint] : {std::pair{"DELETE", "command"}, {"POST", "status"}, {"GET", "message"},
                                   {"POST", "device"}, {"POST", "state"}, {"DELETE", "events"}}) {
    EXPECT_EQ(occurrences(log, std::string("[access] ") + method + " " + endpoint + " box box-1 request -: 405 "), 1u)
        << endpoint << "\n" << log;
  }
}

}  // namespace
}  // namespace boxgate::itest
