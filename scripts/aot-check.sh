#!/usr/bin/env bash
# Publishes samples/Netmem.AotSample with Native AOT and runs it. Fails on any trimming or AOT
# warning (IL2xxx, IL3xxx) and on a non-zero exit of the native binary. Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
log="$out/publish.log"
case "$(uname -m)" in
  aarch64|arm64) rid=linux-arm64 ;;
  *) rid=linux-x64 ;;
esac
extra=()
# Native AOT links with clang; where only a versioned clang or gcc is installed, use that.
if ! command -v clang >/dev/null 2>&1; then
  for cc in clang-19 clang-18 clang-17 clang-16 clang-15 clang-14 gcc; do
    if command -v "$cc" >/dev/null 2>&1; then extra+=("-p:CppCompilerAndLinker=$cc"); break; fi
  done
fi
dotnet publish samples/Netmem.AotSample -c Release -r "$rid" -p:PublishAot=true \
  -p:TreatWarningsAsErrors=true -o "$out/bin" "${extra[@]}" 2>&1 | tee "$log"
if grep -E "warning IL[23][0-9]{3}" "$log"; then
  echo "aot-check: trimming or AOT warnings (above)" >&2
  exit 1
fi
"$out/bin/Netmem.AotSample"
echo "aot-check: published and ran $(du -h "$out/bin/Netmem.AotSample" | cut -f1) native binary"
