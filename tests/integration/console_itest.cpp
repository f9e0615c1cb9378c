// The console in a real browser: headless Chromium, driven
// over the DevTools protocol by tests/browser/console.mjs, against a real
// stack: with devsim (commands answered, events and state published), load a
// box, send a command and see its reply, watch live events and see one
// arrive; with a box offline, queue two commands with a ttl from the form,
// see them in the Queue panel, cancel one with its button, and see the queue
// drain once the box is online. Skipped when chromium or node is not
// installed (scripts/deps installs both). Plus what needs no browser: the
// page is served, same-origin.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

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

  void SetUp() override {
    StackTest::SetUp();
    chromium_ = find_program({"chromium", "chromium-browser", "google-chrome"});
    node_ = find_program({"node", "nodejs"});
  }
  bool have_browser() const { return !chromium_.empty() && !node_.empty(); }

  // Starts tests/browser/console.mjs on gateway `gw` with `scenario` (its
  // arguments after the profile directory).
  Process start_browser(int gw, const std::vector<std::string>& scenario) {
    std::vector<std::string> argv{node_, "--experimental-websocket", "--no-warnings",
                                  BOXGATE_SOURCE_DIR "/tests/browser/console.mjs",
                                  "http://127.0.0.1:" + std::to_string(gw), chromium_,
                                  stack->tmp().path() + "/chromium-profile"};
    argv.insert(argv.end(), scenario.begin(), scenario.end());
    return Process("console-browser", argv, stack->tmp().path());
  }

  // Waits for the script to exit by itself (it has its own 60 s deadline).
  void expect_passed(Process& browser) {
    std::optional<int> status = browser.wait_exit(90s);
    if (!status) browser.kill9();
    EXPECT_EQ(status, 0) << browser.log() << "\n" << stack->logs();
    EXPECT_NE(browser.log().find("PASS"), std::string::npos) << browser.log();
  }

 private:
  std::string chromium_;
  std::string node_;
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
  if (!have_browser()) GTEST_SKIP() << "chromium or node not installed (scripts/deps installs them)";
  int gw = stack->add_gateway();
  stack->add_bridge();
  stack->add_devsim({"--boxes", "2", "--event-rate", "20", "--state-every-ms", "200"});
  ASSERT_TRUE(test::eventually([&] { return get(gw, "/v1/devices/box-1/state").status == 200; }, 10s))
      << stack->logs();
  Process browser = start_browser(gw, {});
  expect_passed(browser);
}

TEST_F(ConsoleTest, QueuesCancelsAndDrainsCommandsInChromium) {
  if (!have_browser()) GTEST_SKIP() << "chromium or node not installed (scripts/deps installs them)";
  int gw = stack->add_gateway();
  stack->add_bridge();
  const std::string box = "box-q";
  set_presence(box, false, gw);
  const std::string online_file = stack->tmp().path() + "/box-online";
  Process browser = start_browser(gw, {"queue", box, online_file});

  // The page queued two commands and cancelled the first: bring the box online.
  ASSERT_TRUE(test::eventually(
      [&] { return browser.log().find("ok: one cancelled") != std::string::npos || !browser.running(); }, 60s))
      << browser.log();
  std::string log = browser.log();
  ASSERT_NE(log.find("ok: one cancelled"), std::string::npos) << log << "\n" << stack->logs();
  auto ids_at = log.find("ids: ");
  ASSERT_NE(ids_at, std::string::npos) << log;
  std::istringstream ids(log.substr(ids_at + 5, log.find('\n', ids_at) - ids_at - 5));
  std::string cancelled, kept;
  ids >> cancelled >> kept;
  EXPECT_EQ(test::get(gw, command_path(box) + "/" + cancelled).json().value("state", ""), "cancelled");

  ProbeDevice device(stack->mqtt_port(), "dev/" + box + "/request/+", ProbeDevice::echo());
  set_presence(box, true, gw);
  std::ofstream(online_file) << "online\n";
  expect_passed(browser);

  // The device got the command left in the queue, and only that one.
  ASSERT_TRUE(device.probe().wait_for(1, 5s)) << stack->logs();
  EXPECT_FALSE(device.probe().wait_for(2, 300ms)) << "the cancelled command was sent";
  EXPECT_EQ(last_level(device.commands().front().topic), kept);
  EXPECT_EQ(test::get(gw, command_path(box) + "/" + kept).json().value("state", ""), "succeeded");
}

}  // namespace
}  // namespace boxgate::itest
