#!/bin/sh
# Installs the Debian packages that building and testing udfhost need, when any is missing, so
# that the README's commands work on a machine that has only git, gcc and make.
set -e
PACKAGES="gcc g++ make autoconf automake libtool pkg-config libtiff-dev libinih-dev libhdf5-dev libpng-dev \
libcriterion-dev python3-dev python3-numpy python3-pytest python3-tqdm python3-tifffile python3-mrcfile python3-h5py mandoc binutils \
libopenmpi-dev openmpi-bin valgrind"
missing=
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "udfhost: please install the equivalents of these Debian packages:$missing" >&2
    exit 1
fi
if [ "$(id -u)" = 0 ]; then
    sudo=
elif command -v sudo >/dev/null 2>&1; then
    sudo=sudo
else
    echo "udfhost: missing packages:$missing; as root run: apt-get install$missing" >&2
    exit 1
fi
echo "udfhost: installing$missing" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
