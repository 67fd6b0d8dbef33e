# Runs inside the bootstrapped root file system of the Python base image (chroot).
set -e
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/*
