#include "advcl/run/finetune_results.h"

#include <cstdio>
#include <sstream>

#include "engine/common.h"

namespace advcl::method {

void FinetuneHistory::add(const EpochEval& e) {
  for (EpochEval& old : evals_)
    if (old.epoch == e.epoch) {
      old = e;
      return;
    }
  auto it = evals_.begin();
  while (it != evals_.end() && it->epoch < e.epoch) ++it;
  evals_.insert(it, e);
}

const EpochEval* FinetuneHistory::best() const {
  const EpochEval* b = nullptr;
  for (const EpochEval& e : evals_)
    if (!b || e.ra > b->ra) b = &e;
  return b;
}

std::string FinetuneHistory::encode() const {
  std::ostringstream os;
  os.precision(17);
  for (const EpochEval& e : evals_)
    os << (os.tellp() > 0 ? ";" : "") << e.epoch << "," << e.n << "," << e.sa << "," << e.ra << "," << e.seconds;
  return os.str();
}

FinetuneHistory FinetuneHistory::decode(const std::string& text, const std::string& source) {
  FinetuneHistory h;
  std::stringstream entries(text);
  for (std::string entry; std::getline(entries, entry, ';');) {
    if (entry.empty()) continue;
    std::stringstream fields(entry);
    EpochEval e;
    char c1 = 0, c2 = 0, c3 = 0, c4 = 0;
    fields >> e.epoch >> c1 >> e.n >> c2 >> e.sa >> c3 >> e.ra >> c4 >> e.seconds;
    if (fields.fail() || c1 != ',' || c2 != ',' || c3 != ',' || c4 != ',' || !(fields >> std::ws).eof())
      fail(source, ": unreadable evaluation history entry '", entry, "'");
    h.add(e);
  }
  return h;
}

namespace {

cli::OrderedJson eval_json(const EpochEval& e) {
  return {{"epoch", e.epoch},
          {"sa", cli::json_number(100.0 * e.sa)},
          {"ra", cli::json_number(100.0 * e.ra)},
          {"n", e.n},
          {"eval_seconds", cli::json_number(e.seconds)}};
}

}  // namespace

std::string results_json(const FinetuneHistory& h, const FinetuneReport& r) {
  cli::OrderedJson evals = cli::OrderedJson::array();
  for (const EpochEval& e : h.evals()) evals.push_back(eval_json(e));
  cli::OrderedJson j{{"mode", r.mode},
                     {"pretrained_checkpoint", r.pretrained},
                     {"finetuned_checkpoint", r.finetuned},
                     {"epochs", r.epochs},
                     {"epochs_done", r.epochs_done},
                     {"units", "percent"},
                     {"attack", r.attack},
                     {"evaluations", evals},
                     {"best", h.best() ? eval_json(*h.best()) : cli::OrderedJson()},
                     {"last", h.last() ? eval_json(*h.last()) : cli::OrderedJson()},
                     {"settings", r.settings.is_null() ? cli::OrderedJson::object() : r.settings},
                     {"options", r.options_json.empty() ? cli::OrderedJson::object()
                                                        : cli::OrderedJson::parse(r.options_json)}};
  return cli::json_members(j);
}

std::string results_table(const FinetuneHistory& h, const FinetuneReport& r) {
  std::ostringstream os;
  char line[160];
  os << r.mode << " finetuning of " << r.pretrained << " (RA: " << r.attack << ")\n";
  os << "  epoch      SA %     RA %\n";
  for (const EpochEval& e : h.evals()) {
    std::snprintf(line, sizeof line, "  %5lld  %8.2f %8.2f%s%s\n", static_cast<long long>(e.epoch), 100 * e.sa,
                  100 * e.ra, &e == h.best() ? "  <- best RA" : "", &e == h.last() ? "  <- last" : "");
    os << line;
  }
  if (h.best() && h.last()) {
    std::snprintf(line, sizeof line, "best RA: epoch %lld  SA %.2f  RA %.2f;  last: epoch %lld  SA %.2f  RA %.2f\n",
                  static_cast<long long>(h.best()->epoch), 100 * h.best()->sa, 100 * h.best()->ra,
                  static_cast<long long>(h.last()->epoch), 100 * h.last()->sa, 100 * h.last()->ra);
    os << line;
  }
  return os.str();
}

}  // namespace advcl::method
