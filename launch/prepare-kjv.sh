#!/usr/bin/env bash
# The King James Bible from Debian's bible-kjv package as a text corpus: one file per book (66 documents),
# verse references stripped. Usage: launch/prepare-kjv.sh DIR   (writes DIR/01-Ge.txt … DIR/66-Re.txt)
set -euo pipefail
dir=${1:?usage: launch/prepare-kjv.sh DIR}
command -v bible > /dev/null || { echo "prepare-kjv: the bible program is missing: apt-get install -y bible-kjv" >&2; exit 1; }
if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then echo "prepare-kjv: $dir exists and is not empty; leaving it" >&2; exit 0; fi
mkdir -p "$dir.partial"
bible -f -p /usr/lib "Gen1:1-Rev22:21" | awk -v dir="$dir.partial" '
  { book = $1; sub(/[0-9]+:[0-9]+$/, "", book)
    if (book != last) { if (file) close(file); n++; file = sprintf("%s/%02d-%s.txt", dir, n, book); last = book }
    sub(/^[^ ]+ /, ""); print > file }'
rm -rf "$dir" && mv "$dir.partial" "$dir"
echo "prepare-kjv: $(ls "$dir" | wc -l) books, $(cat "$dir"/*.txt | wc -c) bytes in $dir"
