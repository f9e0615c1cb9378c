#include "commands/command_status.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "boxgate/json_scan.hpp"

namespace boxgate::gateway {

using Clock = std::chrono::steady_clock;

// How long past a command's deadline a long poll may still wait: the holder
// reads the result key once more and notes the end in the record.
constexpr std::chrono::milliseconds kPastDeadline{1000};

std::string status_body(const CommandRecord& record, const CommandStatus& status,
                        const std::optional<std::string>& reply) {
  nlohmann::ordered_json doc = {{"request_id", record.request_id},
                                {"box_id", record.box_id},
                                {"state", state_name(status.state)},
                                {"mode", mode_name(record.mode)},
                                {"accepted_ms", record.accepted_ms},
                                {"deadline_ms", record.deadline_ms},
                                {"gateway", record.gateway}};
  if (status.late) doc["late"] = true;
  if (record.delivered) doc["delivered"] = *record.delivered;
  if (record.finished_ms) doc["finished_ms"] = *record.finished_ms;
  if (record.ttl_ms) doc["ttl_ms"] = *record.ttl_ms;
  if (record.sent_ms) doc["sent_ms"] = *record.sent_ms;
  bool raw_reply = reply && json::scan(*reply).ok();
  if (reply && !raw_reply) doc["reply_text"] = *reply;
  std::string out = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (raw_reply) {
    // The device's JSON verbatim, as the command endpoint returns it.
    out.pop_back();
    out += R"(,"reply":)";
    out += *reply;
    out += '}';
  }
  return out;
}

struct CommandStatusReader::Watch final : redis::Subscriber::Listener {
  Watch(CommandStatusReader& reader, std::uint64_t handle, BoxId b, RequestId i, std::string ch,
        std::chrono::milliseconds wait, Done d)
      : reader(reader),
        handle(handle),
        box(std::move(b)),
        id(std::move(i)),
        channel(std::move(ch)),
        wait(wait),
        done(std::move(d)),
        timer(reader.loop_, [this] {
          final_look = true;
          this->reader.look(*this);
        }) {}

  void on_subscribed() override { reader.look(*this); }  // a reply may have come before
  void on_message(std::string_view) override { reader.look(*this); }
  void on_resubscribed() override { reader.look(*this); }

  CommandStatusReader& reader;
  std::uint64_t handle;
  BoxId box;
  RequestId id;
  std::string channel;
  std::chrono::milliseconds wait;
  Done done;
  Timer timer;
  bool subscribed = false;
  bool final_look = false;
};

CommandStatusReader::CommandStatusReader(EventLoop& loop, const Topics& topics, ReplyChannels& channels,
                                         StateStore& state, ops::Metrics& metrics)
    : loop_(loop),
      topics_(topics),
      channels_(channels),
      state_(state),
      reads_(metrics.counter("boxgate_command_status_reads_total", "command status reads (GET .../commands/{id})")),
      long_polls_(metrics.gauge("boxgate_command_status_long_polls", "status reads waiting for their command")) {}

CommandStatusReader::~CommandStatusReader() {
  for (auto& [handle, w] : watches_) {
    if (w->subscribed) channels_.unsubscribe(w->channel, w.get());
  }
}

CommandStatusReader::Watch* CommandStatusReader::find(std::uint64_t handle) const {
  auto it = watches_.find(handle);
  return it == watches_.end() ? nullptr : it->second.get();
}

std::uint64_t CommandStatusReader::read(const BoxId& box, const RequestId& id, std::chrono::milliseconds wait,
                                        Done done) {
  reads_.inc();
  std::uint64_t handle = next_handle_++;
  auto w = std::make_unique<Watch>(*this, handle, box, id, topics_.response_channel(box, id), wait, std::move(done));
  Watch& watch = *w;
  watches_.emplace(handle, std::move(w));
  look(watch);
  return handle;
}

void CommandStatusReader::look(Watch& w) {
  std::uint64_t handle = w.handle;
  bool sent = get_pair(state_, topics_.command_key(w.box, w.id), w.channel,
                       [this, handle](bool ok, std::optional<std::string> record, std::optional<std::string> reply) {
                         Watch* again = find(handle);
                         if (!again) return;
                         if (!ok) return answer(*again, {StatusAnswer::Kind::unavailable, {}});
                         // A reply without a record is nobody's: not shown.
                         std::optional<CommandRecord> parsed = record ? parse_record(*record) : std::nullopt;
                         if (!parsed) return answer(*again, {StatusAnswer::Kind::unknown, {}});
                         CommandStatus status = status_of(*parsed, reply.has_value(), now_ms());
                         if (status.state == CommandState::pending && !again->final_look && again->wait.count() > 0) {
                           if (again->subscribed || again->timer.pending()) return;  // keep waiting
                           // Not beyond the command's own end (plus the holder's last read).
                           auto left = std::chrono::milliseconds(std::max<std::int64_t>(
                                           0, parsed->deadline_ms - now_ms())) + kPastDeadline;
                           again->timer.start(std::min(again->wait, left));
                           long_polls_.set(static_cast<std::int64_t>(watches_.size()));
                           // busy (being released) or Redis away: the timer's
                           // final look answers.
                           again->subscribed = true;
                           if (channels_.subscribe(again->channel, again) != redis::Subscriber::Result::ok) {
                             if (Watch* still = find(handle)) still->subscribed = false;
                           }
                           return;
                         }
                         answer(*again, {StatusAnswer::Kind::found, status_body(*parsed, status, reply)});
                       });
  if (!sent) answer(w, {StatusAnswer::Kind::unavailable, {}});
}

std::unique_ptr<CommandStatusReader::Watch> CommandStatusReader::take(std::uint64_t handle) {
  auto it = watches_.find(handle);
  if (it == watches_.end()) return nullptr;
  std::unique_ptr<Watch> owned = std::move(it->second);
  watches_.erase(it);
  if (owned->subscribed) channels_.unsubscribe(owned->channel, owned.get());
  long_polls_.set(static_cast<std::int64_t>(watches_.size()));
  return owned;
}

void CommandStatusReader::answer(Watch& w, StatusAnswer&& a) {
  std::unique_ptr<Watch> owned = take(w.handle);
  if (!owned) return;
  Done done = std::move(owned->done);
  owned.reset();
  done(std::move(a));
}

void CommandStatusReader::cancel(std::uint64_t handle) { take(handle); }

}  // namespace boxgate::gateway
