# Runs inside the bootstrapped root file system of an instance image (chroot).
set -e
# A container has no consoles, udev or kernel mounts to manage: masking these
# units keeps boot fast and `systemctl is-system-running` clean.
for unit in getty.target console-getty.service systemd-udevd.service \
    systemd-udev-trigger.service systemd-modules-load.service \
    sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
    dev-hugepages.mount systemd-remount-fs.service systemd-firstboot.service; do
  ln -sf /dev/null "/etc/systemd/system/$unit"
done
# Every instance gets its own machine id at boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/*
