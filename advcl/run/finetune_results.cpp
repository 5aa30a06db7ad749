#include "advcl/run/finetune_results.h"

#include <cstdio>
#include <sstream>

#include "advcl/run/run_dir.h"
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

std::string pct(double v) { return cli::json_num(100.0 * v); }

std::string eval_json(const EpochEval& e) {
  return "{\"epoch\": " + std::to_string(e.epoch) + ", \"sa\": " + pct(e.sa) + ", \"ra\": " + pct(e.ra) +
         ", \"n\": " + std::to_string(e.n) + ", \"eval_seconds\": " + cli::json_num(e.seconds) + "}";
}

}  // namespace

std::string results_json(const FinetuneHistory& h, const FinetuneReport& r) {
  std::ostringstream os;
  os << "{\n"
     << "  \"mode\": " << cli::json_str(r.mode) << ",\n"
     << "  \"pretrained_checkpoint\": " << cli::json_str(r.pretrained) << ",\n"
     << "  \"finetuned_checkpoint\": " << cli::json_str(r.finetuned) << ",\n"
     << "  \"epochs\": " << r.epochs << ",\n"
     << "  \"epochs_done\": " << r.epochs_done << ",\n"
     << "  \"units\": \"percent\",\n"
     << "  \"attack\": " << cli::json_str(r.attack) << ",\n"
     << "  \"evaluations\": [";
  for (size_t i = 0; i < h.evals().size(); ++i) os << (i ? ",\n    " : "\n    ") << eval_json(h.evals()[i]);
  os << (h.empty() ? "],\n" : "\n  ],\n");
  os << "  \"best\": " << (h.best() ? eval_json(*h.best()) : "null") << ",\n"
     << "  \"last\": " << (h.last() ? eval_json(*h.last()) : "null") << ",\n"
     << "  \"settings\": " << (r.settings_json.empty() ? "{}" : r.settings_json) << ",\n"
     << "  \"options\": " << (r.options_json.empty() ? "{}" : r.options_json) << "\n"
     << "}\n";
  return os.str();
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
