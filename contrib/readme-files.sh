#!/bin/sh
# The files README.md links to by relative path (docs, images, other Markdown), one per
# line, each once: `make dist` puts them into the tarball at the same paths, so README's
# links work there too. tests/packaging.rs checks that every one exists.
set -eu
cd "$(dirname "$0")/.."
grep -o '](\([^)]*\))' README.md |
  sed -e 's/^](//' -e 's/)$//' -e 's/#.*$//' -e 's/ .*$//' |
  grep -v -e '^$' -e '://' -e '^mailto:' |
  sort -u
