#!/bin/sh
# Builds fuzz/corpus/<target>/ seeds (not committed) from shared/pcaps and
# config/*.toml, then adds the committed reproducers of fuzz/regressions/.
# Usage: fuzz/seed.sh   (SGPLANE_SHARED=/path/to/shared to point elsewhere)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python3 "$here/seed.py"
for dir in "$here"/regressions/*/; do
    [ -d "$dir" ] || continue
    target=$(basename "$dir")
    mkdir -p "$here/corpus/$target"
    cp "$dir"* "$here/corpus/$target/" 2>/dev/null || true
done
