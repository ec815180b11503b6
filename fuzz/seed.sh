#!/bin/sh
# Seeds the fuzz corpus: every script in scripts/, and every ```rhai block of the docs
# (docs/*.md, including the generated reference, and README.md), one file each.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/script
cp ../scripts/*.rhai corpus/script/
for doc in ../README.md ../docs/*.md; do
    awk -v out="corpus/script/doc-$(basename "$doc" .md)" '
        /^```rhai/ { n++; file = out "-" n ".rhai"; inblock = 1; next }
        /^```/ { inblock = 0; next }
        inblock { print > file }
    ' "$doc"
done
echo "$(ls corpus/script | wc -l) seeds in fuzz/corpus/script"
