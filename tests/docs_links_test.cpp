// The repository stands alone: its code and docs cite docs/method.md for the
// method's facts, never a specification kept outside the repository, and the
// docs they point to exist.
//
// These tests read the source tree (found from $ADVCL_SOURCE_DIR, this file's
// compile-time path or the test binary's place in build/<variant>/bin) and fail
//   - if a text file of the project's folders mentions the outside
//     specification's file name or the folder it lives in (the needles are
//     assembled at run time, so this file does not match itself);
//   - if README.md names a docs/*.md file that does not exist, or a docs page
//     links to a missing .md page;
//   - if a citation "method.md section N" names a section that docs/method.md
//     does not have (its sections are headed "## N. ...").
// Plain string scans, no std::regex: some scanned files are large.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

bool is_source_root(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p / "README.md", ec) && fs::is_directory(p / "docs", ec) &&
         fs::is_directory(p / "tests", ec);
}

// The repository root, or empty when none of the candidates holds it.
fs::path source_root() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("ADVCL_SOURCE_DIR"); env && *env) candidates.emplace_back(env);
  fs::path here = fs::path(__FILE__).parent_path();  // tests/, relative to the directory make ran in
  candidates.push_back(here.parent_path().empty() ? fs::path(".") : here.parent_path());
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);  // build/<variant>/bin/advcl_tests
  if (!ec) candidates.push_back(exe.parent_path().parent_path().parent_path().parent_path());
  for (const fs::path& c : candidates)
    if (is_source_root(c)) return c;
  return {};
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Files that are text: no NUL byte in the first 8 KiB (skips the golden
// tensors and other binaries).
bool looks_textual(const std::string& s) { return s.substr(0, 8192).find('\0') == std::string::npos; }

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// 1-based line of offset `at`.
int line_of(const std::string& text, size_t at) {
  int line = 1;
  for (size_t i = 0; i < at && i < text.size(); ++i) line += text[i] == '\n';
  return line;
}

// Every text file the project owns: these folders (those that exist) and the
// top-level files. Build outputs live in build/, which is not scanned.
std::vector<fs::path> project_text_files(const fs::path& root) {
  const char* folders[] = {"advcl",   "engine", "nn",      "cuda", "datasets",  "dist", "tests",
                           "bench",   "docs",   "scripts", "fuzz", "tests_mpi", ".ci"};
  std::vector<fs::path> files = {root / "README.md", root / "Makefile"};
  for (const char* f : folders) {
    std::error_code ec;
    if (!fs::is_directory(root / f, ec)) continue;
    for (auto it = fs::recursive_directory_iterator(root / f, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_regular_file(ec) && it->file_size(ec) < (8u << 20)) files.push_back(it->path());
  }
  return files;
}

// Offsets where the uppercase word `word` stands alone (not inside a longer identifier).
std::vector<size_t> whole_word_hits(const std::string& text, const std::string& word) {
  std::vector<size_t> hits;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    bool starts = at == 0 || !is_word_char(text[at - 1]);
    size_t end = at + word.size();
    bool ends = end >= text.size() || !is_word_char(text[end]);
    if (starts && ends) hits.push_back(at);
  }
  return hits;
}

// "docs/NAME.md" strings of `text` (NAME of letters, digits, '_', '-', '/').
std::set<std::string> docs_paths_named(const std::string& text) {
  std::set<std::string> out;
  const std::string prefix = "docs/";
  for (size_t at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at + 1)) {
    if (at > 0 && (is_word_char(text[at - 1]) || text[at - 1] == '/')) continue;  // e.g. "mydocs/"
    size_t end = at + prefix.size();
    while (end < text.size() && (is_word_char(text[end]) || text[end] == '-' || text[end] == '/' || text[end] == '.'))
      ++end;
    std::string path = text.substr(at, end - at);
    while (!path.empty() && path.back() == '.') path.pop_back();  // a sentence's full stop
    if (path.size() > 3 && path.compare(path.size() - 3, 3, ".md") == 0) out.insert(path);
  }
  return out;
}

// Targets of markdown links "](target)" that name a local .md file (anchor dropped).
std::set<std::string> markdown_md_links(const std::string& text) {
  std::set<std::string> out;
  for (size_t at = text.find("]("); at != std::string::npos; at = text.find("](", at + 1)) {
    size_t end = text.find_first_of(")# \n", at + 2);
    if (end == std::string::npos) break;
    std::string target = text.substr(at + 2, end - at - 2);
    if (target.find("://") != std::string::npos) continue;
    if (target.size() > 3 && target.compare(target.size() - 3, 3, ".md") == 0) out.insert(target);
  }
  return out;
}

// Section numbers N cited as "method.md section N", "method.md, section N",
// "[method.md](method.md) section N" or "method.md sections N" (a range "N-M"
// or list "N and M" contributes its first N).
std::vector<std::pair<size_t, int>> method_section_citations(const std::string& text) {
  std::vector<std::pair<size_t, int>> out;
  const std::string name = "method.md";
  for (size_t at = text.find(name); at != std::string::npos; at = text.find(name, at + 1)) {
    size_t p = at + name.size();
    if (p < text.size() && text[p] == ',') ++p;
    while (p < text.size() && (text[p] == ' ' || text[p] == '\n' || text[p] == '(' || text[p] == ')' ||
                               text[p] == ']' || text[p] == '/' || text[p] == '*' || text[p] == '"'))
      ++p;
    size_t word = p;
    if (text.compare(p, 8, "sections") == 0) p += 8;
    else if (text.compare(p, 7, "section") == 0) p += 7;
    if (p == word) continue;
    while (p < text.size() && (text[p] == ' ' || text[p] == '\n')) ++p;
    if (p >= text.size() || !std::isdigit(static_cast<unsigned char>(text[p]))) continue;
    out.emplace_back(at, std::atoi(text.c_str() + p));
  }
  return out;
}

// The numbers N of docs/method.md's "## N. " headings.
std::set<int> method_sections(const std::string& method) {
  std::set<int> out;
  std::istringstream lines(method);
  for (std::string l; std::getline(lines, l);)
    if (l.rfind("## ", 0) == 0 && l.size() > 3 && std::isdigit(static_cast<unsigned char>(l[3])))
      out.insert(std::atoi(l.c_str() + 3));
  return out;
}

}  // namespace

TEST(DocsLinks, SourceTreeIsFound) {
  fs::path root = source_root();
  ASSERT_FALSE(root.empty()) << "repository not found: run from its root or set ADVCL_SOURCE_DIR";
  EXPECT_TRUE(fs::exists(root / "docs" / "method.md"));
}

TEST(DocsLinks, NothingCitesASpecificationOutsideTheRepository) {
  fs::path root = source_root();
  if (root.empty()) GTEST_SKIP() << "repository not found (set ADVCL_SOURCE_DIR)";
  // Assembled here so that this file holds none of them literally.
  const std::string spec_word = std::string("SP") + "EC";
  const std::string spec_file = spec_word + ".md";
  const std::string outside = std::string("..") + "/" + "shared";
  int scanned = 0;
  for (const fs::path& f : project_text_files(root)) {
    std::string text = read_text(f);
    if (!looks_textual(text)) continue;
    ++scanned;
    std::string rel = fs::relative(f, root).string();
    for (const std::string& needle : {spec_file, outside})
      for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ADD_FAILURE() << rel << ":" << line_of(text, at) << " mentions \"" << needle
                      << "\": cite docs/method.md (section N) or state the fact";
    // The bare word, as in "(per the " + spec_word + ")", is the same citation.
    for (size_t at : whole_word_hits(text, spec_word))
      if (text.compare(at, spec_file.size(), spec_file) != 0)  // already reported above
        ADD_FAILURE() << rel << ":" << line_of(text, at) << " mentions \"" << spec_word
                      << "\": cite docs/method.md (section N) or state the fact";
  }
  EXPECT_GT(scanned, 100) << "too few files scanned under " << root << ": wrong root?";
}

TEST(DocsLinks, ReadmeAndDocsLinkOnlyToExistingPages) {
  fs::path root = source_root();
  if (root.empty()) GTEST_SKIP() << "repository not found (set ADVCL_SOURCE_DIR)";
  std::set<std::string> from_readme = docs_paths_named(read_text(root / "README.md"));
  EXPECT_TRUE(from_readme.count("docs/method.md")) << "README.md should point at docs/method.md";
  for (const std::string& p : from_readme) EXPECT_TRUE(fs::exists(root / p)) << "README.md names missing " << p;
  for (const auto& entry : fs::directory_iterator(root / "docs")) {
    if (entry.path().extension() != ".md") continue;
    std::string text = read_text(entry.path());
    std::string page = "docs/" + entry.path().filename().string();
    for (const std::string& target : markdown_md_links(text))
      EXPECT_TRUE(fs::exists(entry.path().parent_path() / target)) << page << " links to missing " << target;
    for (const std::string& p : docs_paths_named(text))
      EXPECT_TRUE(fs::exists(root / p)) << page << " names missing " << p;
  }
}

TEST(DocsLinks, MethodSectionCitationsNameExistingSections) {
  fs::path root = source_root();
  if (root.empty()) GTEST_SKIP() << "repository not found (set ADVCL_SOURCE_DIR)";
  std::set<int> sections = method_sections(read_text(root / "docs" / "method.md"));
  ASSERT_GE(sections.size(), 10u) << "docs/method.md should have numbered sections (\"## N. Title\")";
  int citations = 0;
  for (const fs::path& f : project_text_files(root)) {
    std::string text = read_text(f);
    if (!looks_textual(text)) continue;
    for (const auto& [at, n] : method_section_citations(text)) {
      ++citations;
      EXPECT_TRUE(sections.count(n)) << fs::relative(f, root).string() << ":" << line_of(text, at)
                                     << " cites docs/method.md section " << n << ", which does not exist";
    }
  }
  EXPECT_GT(citations, 0) << "no file cites docs/method.md by section";
}
