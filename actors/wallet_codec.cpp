#include "wager/actors/wallet_codec.hpp"

#include "wager/actors/json_codec.hpp"

namespace wager {

using namespace json_codec;

namespace {

errc code_or_internal(std::string_view code) {
  return parse_code(code).value_or(errc::internal);
}

} // namespace

replayed_answer replay_message(const wallet_state& s, const std::string& bet_key,
                               const std::string& response) {
  replayed_answer out;
  if (response.empty()) {
    if (auto* b = s.find_bet(bet_key))
      out.bet_answer = *b;
    else
      out.error = make_error(errc::unavailable, "the first answer is no longer at hand");
    return out;
  }
  boost::system::error_code ec;
  auto doc = json::parse(response, ec);
  if (ec || !doc.is_object()) {
    out.error = make_error(errc::internal, "unreadable stored answer");
    return out;
  }
  auto& o = doc.get_object();
  if (auto* code = o.if_contains("error"); code && code->is_string()) {
    std::string message;
    if (auto* m = o.if_contains("message"); m && m->is_string())
      message = std::string{m->get_string()};
    if (auto* p = o.if_contains("current_price"); p && p->is_int64())
      out.error = make_error(code_or_internal(code->get_string()), message,
                             format_price(price{static_cast<int32_t>(p->get_int64())}));
    else if (auto* f = o.if_contains("field"); f && f->is_string())
      out.error = make_error(code_or_internal(code->get_string()), message,
                             std::string{f->get_string()});
    else
      out.error = make_error(code_or_internal(code->get_string()), message);
    return out;
  }
  if (auto* b = o.if_contains("bet"); b && b->is_object()) {
    if (auto parsed = bet_from_json(*b)) {
      out.bet_answer = *parsed;
      return out;
    }
  }
  auto receipt = try_decode([&] {
    return wallet_receipt{get_string(o, "transaction_id"), get_money(o, "available"),
                          get_money(o, "held")};
  });
  if (receipt)
    out.receipt = *receipt;
  else
    out.error = make_error(errc::internal, "unreadable stored answer");
  return out;
}

std::string bet_response_json(const wallet_state& s, const std::string& bet_key,
                              const std::string& request) {
  if (auto* b = s.find_bet(bet_key))
    return json::serialize(json::object{{"bet", bet_to_json(*b)}});
  if (auto i = s.requests.find(request); i != s.requests.end() && !i->second.response.empty())
    return i->second.response;
  return error_json(errc::internal, "the bet has no answer", {});
}

std::string pending_bet_json(const std::string& bet, uint64_t hash) {
  return json::serialize(
    json::object{{"bet_id", bet}, {"pending", true}, {"body_hash", std::to_string(hash)}});
}

uint64_t place_bet_hash(const place_bet_cmd& cmd) {
  // A win bet hashes as before each-way bets were taken.
  if (cmd.each_way)
    return body_hash({"bet", cmd.market.value, cmd.selection.value,
                      std::to_string(cmd.stake.minor), std::to_string(cmd.asked.hundredths),
                      to_string(cmd.accept), "each_way"});
  return body_hash({"bet", cmd.market.value, cmd.selection.value,
                    std::to_string(cmd.stake.minor), std::to_string(cmd.asked.hundredths),
                    to_string(cmd.accept)});
}

uint64_t place_slip_hash(const place_slip_cmd& cmd) {
  std::string legs;
  for (auto& l : cmd.legs) {
    legs += l.market.value;
    legs += '\x1f';
    legs += l.selection.value;
    legs += '\x1f';
    legs += std::to_string(l.asked.hundredths);
    legs += '\x1e';
  }
  return body_hash({"slip", to_string(cmd.type), legs, std::to_string(cmd.stake.minor),
                    to_string(cmd.accept), cmd.each_way ? "each_way" : "win"});
}

transactions_page transactions_of(const wallet_state& s, const transactions_query& q) {
  transactions_page page;
  auto& out = page.transactions;
  auto limit = std::clamp<uint32_t>(q.limit, 1, static_cast<uint32_t>(wallet_ledger_max));
  for (auto i = s.ledger.rbegin(); i != s.ledger.rend() && out.size() < limit; ++i) {
    if (q.before_seq != 0 && i->seq >= q.before_seq)
      continue;
    out.push_back({"t" + std::to_string(i->seq), std::string{to_string(i->kind)}, i->amount,
                   i->available_after, i->at_ms, i->ref});
  }
  // The ledger drops its oldest entry only once it holds wallet_ledger_max:
  // below that it holds every entry there ever was.
  page.complete = out.size() == limit || s.ledger.size() < wallet_ledger_max;
  return page;
}

bets_page bets_of(const wallet_state& s, bool settled) {
  bets_page page;
  auto& out = page.bets;
  if (settled) {
    for (auto i = s.settled_bets.rbegin(); i != s.settled_bets.rend(); ++i)
      out.push_back(*i);
    page.complete = s.settled_bets.size() < wallet_settled_bets_max;
  } else {
    for (auto& [id, b] : s.open_bets)
      out.push_back(b);
    std::sort(out.begin(), out.end(),
              [](const bet& a, const bet& b) { return a.placed_at_ms > b.placed_at_ms; });
  }
  return page;
}

} // namespace wager
