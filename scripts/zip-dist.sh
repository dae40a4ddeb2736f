#!/bin/sh
# zip-dist.sh DIST ZIP: zips a staged app (what `make package` leaves in dist/) for a Linux
# Functions host, so that the handler can be executed there. Info-ZIP stores each entry's Unix
# mode; a zip made without modes (Windows tools, azd before 1.26) loses the execute bit, and the
# host then never starts. The handler's architecture and its stored mode are checked, not assumed.
set -eu
if [ $# -ne 2 ]; then
	echo "usage: $0 DIST ZIP" >&2
	exit 2
fi
dist=$1
zip=$2
for tool in zip unzip od; do
	command -v "$tool" >/dev/null 2>&1 || { echo "zip-dist: '$tool' is required" >&2; exit 1; }
done
[ -f "$dist/handler" ] || { echo "zip-dist: $dist/handler is missing; run 'make package'" >&2; exit 1; }
[ -f "$dist/host.json" ] || { echo "zip-dist: $dist/host.json is missing; run 'make package'" >&2; exit 1; }
if [ "$(od -An -c -N4 "$dist/handler" | tr -d ' ')" != '177ELF' ]; then
	echo "zip-dist: $dist/handler is not a Linux (ELF) executable; 'make package' builds GOOS=linux GOARCH=amd64" >&2
	exit 1
fi
chmod 0755 "$dist/handler" # whatever the local umask, the zip carries 0755

case $zip in
/*) out=$zip ;;
*) out=$(pwd)/$zip ;;
esac
mkdir -p "$(dirname "$out")"
rm -f "$out"
(cd "$dist" && zip -q -r -X "$out" .)
mode=$(unzip -Z "$out" handler | awk '{print $1}')
if [ "$mode" != "-rwxr-xr-x" ]; then
	echo "zip-dist: $zip stores handler as '$mode', not -rwxr-xr-x; package on Linux, macOS or WSL (not a Windows file system)" >&2
	exit 1
fi
echo "zip-dist: $zip ($(unzip -Z1 "$out" | tr '\n' ' '))"
