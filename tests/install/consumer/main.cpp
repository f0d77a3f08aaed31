// An outside project using an installed medload.
#include <iostream>

#include <medload/core/hash.h>
#include <medload/core/version.h>

int main() {
  const bool ok = medload::hash64_text("abc") == 0x44BC2CF5AD770999ULL;
  std::cout << "medload " << medload::kVersion << (ok ? " ok" : " wrong hash") << '\n';
  return ok ? 0 : 1;
}
