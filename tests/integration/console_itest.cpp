// The console in a real browser: headless Chromium, driven
// over the DevTools protocol by tests/browser/console.mjs, against a real
// stack with devsim (commands answered, events and state published): load a
// box, send a command and see its reply, watch live events and see one
// arrive. Skipped when chromium or node is not installed (scripts/deps
// installs both). Plus what needs no browser: the page is served, same-origin.

#include <gtest/gtest.h>

#include <unistd.h>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

std::string find_program(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    for (const char* dir : {"/usr/bin/", "/usr/local/bin/", "/bin/"}) {
      std::string path = std::string(dir) + name;
      if (::access(path.c_str(), X_OK) == 0) return path;
    }
  }
  return "";
}

class ConsoleTest : public StackTest {
 protected:
  ConsoleTest() : StackTest("console") {}
};

TEST_F(ConsoleTest, PageIsServedWithItsScriptAndNoExternalAssets) {
  int gw = stack->add_gateway();
  auto c = client(gw);
  auto page = c->Get("/console");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("connect-src 'self'"), std::string::npos);
  EXPECT_NE(page->body.find("new EventSource"), std::string::npos);
  EXPECT_EQ(page->body.find("http://"), std::string::npos) << "no external assets";
  EXPECT_EQ(page->body.find("https://"), std::string::npos) << "no external assets";
  EXPECT_EQ(page->body.find("src=\""), std::string::npos) << "no external scripts or images";
}

TEST_F(ConsoleTest, SendsACommandAndShowsItsReplyAndALiveEventInChromium) {
  std::string chromium = find_program({"chromium", "chromium-browser", "google-chrome"});
  std::string node = find_program({"node", "nodejs"});
  if (chromium.empty() || node.empty()) GTEST_SKIP() << "chromium or node not installed (scripts/deps installs them)";
  int gw = stack->add_gateway();
  stack->add_bridge();
  stack->add_devsim({"--boxes", "2", "--event-rate", "20", "--state-every-ms", "200"});
  ASSERT_TRUE(test::eventually([&] { return get(gw, "/v1/devices/box-1/state").status == 200; }, 10s))
      << stack->logs();
  std::string script = BOXGATE_SOURCE_DIR "/tests/browser/console.mjs";
  Process browser("console-browser",
                  {node, "--experimental-websocket", "--no-warnings", script, "http://127.0.0.1:" + std::to_string(gw),
                   chromium, stack->tmp().path() + "/chromium-profile"},
                  stack->tmp().path());
  std::optional<int> status = browser.wait_exit(90s);
  if (!status) browser.kill9();
  EXPECT_EQ(status, 0) << browser.log() << "\n" << stack->logs();
  EXPECT_NE(browser.log().find("PASS"), std::string::npos) << browser.log();
}

}  // namespace
}  // namespace boxgate::itest
